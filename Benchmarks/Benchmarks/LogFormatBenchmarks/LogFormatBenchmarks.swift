import Benchmark
import LogFormat

let benchmarks: @Sendable () -> Void = {
    Benchmark("placeholder") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(RecordCodec.encode(AuditEvent(kind: .span, startTimeUnixNano: 1))) }
    }
}
