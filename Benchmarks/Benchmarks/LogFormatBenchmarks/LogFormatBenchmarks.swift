// Micro-benchmarks of the storage core on the realistic synthetic traffic (TrafficGenerator).
//
// The query benchmarks run over a data set of AUDIT_BENCH_EVENTS events (default 10,000,000) in at least 100
// sealed segments, built once into AUDIT_BENCH_DATA (default /tmp/audit-trail-bench-<events>) and reused.
// Queries are warm: the store, its mapped segments and its block cache live across iterations.
import AuditQuery
import Benchmark
import Foundation
import LogFormat
import Logging
import StoreQuery
import SyntheticTraffic

/// Benchmark state shared across iterations; written once in a setup hook before measuring starts.
final class Fixture: @unchecked Sendable {
    // @unchecked: every field is assigned inside `lock` once, then only read.
    static let shared = Fixture()
    private let lock = NSLock()
    private var _store: AuditStore?
    private var _configuration: TrafficGenerator.Configuration?
    private var _writeBatch: [AuditEvent] = []
    private var _traceIDs: [TraceID] = []

    static let events = Int(ProcessInfo.processInfo.environment["AUDIT_BENCH_EVENTS"] ?? "") ?? 10_000_000
    static let days = 7
    static let segmentRecords = 100_000
    static var dataPath: String {
        ProcessInfo.processInfo.environment["AUDIT_BENCH_DATA"] ?? "/tmp/audit-trail-bench-\(events)"
    }

    static var logger: Logger {
        var l = Logger(label: "bench")
        l.logLevel = .error
        return l
    }

    var configuration: TrafficGenerator.Configuration {
        lock.withLock {
            if let c = _configuration { return c }
            var c = TrafficGenerator.Configuration()
            c.days = Self.days
            c.requestsPerDay = Int(Double(Self.events) / TrafficGenerator.meanEventsPerRequest / Double(Self.days))
            _configuration = c
            return c
        }
    }

    /// The query data set, built on first use (a marker file records that the build finished).
    func store() throws -> AuditStore {
        let c = configuration
        return try lock.withLock {
            if let s = _store { return s }
            let dir = DataDirectory(Self.dataPath)
            let marker = Self.dataPath + "/complete-\(c.requestsPerDay)x\(c.days)-\(c.seed)"
            if !FileManager.default.fileExists(atPath: marker) {
                try? FileManager.default.removeItem(atPath: Self.dataPath)
                var options = WriterOptions()
                options.maxSegmentRecords = Self.segmentRecords
                FileHandle.standardError.write(
                    Data("building the \(Self.events)-event data set in \(Self.dataPath)…\n".utf8))
                let s = try SyntheticLoad.write(
                    into: dir, configuration: c, requests: c.requestsPerDay * c.days, options: options,
                    logger: Self.logger)
                let perEvent = Double(s.bytesWritten) / Double(s.events)
                let summary =
                    "\(s.events) events, \(s.segmentsSealed) segments, \(s.bytesWritten) bytes, "
                    + String(
                        format: "%.1f bytes/event, written at %.0f events/s\n", perEvent,
                        Double(s.events) / (Double(s.writeNanos) / 1e9))
                FileHandle.standardError.write(Data(summary.utf8))
                precondition(
                    FileManager.default.createFile(atPath: marker, contents: Data(summary.utf8)),
                    "cannot write \(marker)")
            }
            let s = try AuditStore(directories: [dir], cacheBytes: 512 << 20)
            _store = s
            return s
        }
    }

    /// 100,000 pre-generated events for the write benchmark.
    var writeBatch: [AuditEvent] {
        lock.withLock {
            if _writeBatch.isEmpty {
                var g = TrafficGenerator(seed: 99)
                _writeBatch = g.nextEvents(100_000)
            }
            return _writeBatch
        }
    }

    /// One day of the data set: the third (a weekday in the middle of the range).
    var day: ClosedRange<UInt64> {
        let start = configuration.startUnixNano + 2 * 86_400_000_000_000
        return start...(start + 86_400_000_000_000 - 1)
    }

    /// The store and the question "what did the heavy (or light) user do on the middle day".
    func userDay(heavy: Bool) throws -> (AuditStore, EventQuery) {
        let c = configuration
        let user = heavy ? TrafficGenerator.heavyUser(for: c) : TrafficGenerator.lightUser(for: c)
        return (try store(), EventQuery(terms: [.user(user)], timeRange: day))
    }

    /// Trace ids of some requests of the middle day, for trace look-ups.
    func sampleTraceIDs() throws -> [TraceID] {
        if let ids = lock.withLock({ _traceIDs.isEmpty ? nil : _traceIDs }) { return ids }
        let s = try store()
        let hour = day.lowerBound + 12 * 3_600_000_000_000
        let events = try s.search(
            EventQuery(terms: [.service("edge-nginx")], timeRange: hour...(hour + 60_000_000_000), limit: 500))
        let ids = events.map(\.event.traceID)
        lock.withLock { _traceIDs = ids }
        return ids
    }
}

/// Measures `body` over the sample trace ids, one look-up per iteration.
func lookUpSampleTraces(_ benchmark: Benchmark, _ body: (AuditStore, TraceID) throws -> Void) throws {
    let store = try Fixture.shared.store()
    let ids = try Fixture.shared.sampleTraceIDs()
    var k = 0
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
        try body(store, ids[k % ids.count])
        k += 1
    }
}

/// Reads the columns of auditq's table (time, kind, source, service, user, what, status, duration, trace) of every
/// record `found` holds, as a writer of that table would, and returns a sum of them for `blackHole`.
func tableColumns(_ found: RecordHandles) throws -> Int {
    var sum = 0
    for h in found.handles {
        sum &+= Int(truncatingIfNeeded: h.start) &+ Int(truncatingIfNeeded: found.durationNanos(h))
        sum &+= try Int(found.kind(h).rawValue) &+ Int(found.source(h).rawValue) &+ found.service(h).utf8.count
        sum &+= try found.userSubject(h)?.utf8.count ?? 0
        sum &+= try found.httpMethod(h) == nil ? found.name(h).utf8.count : found.httpTarget(h)?.utf8.count ?? 0
        sum &+= Int(found.httpStatus(h)) &+ Int(found.statusCode(h).rawValue)
        sum &+= Int(truncatingIfNeeded: h.traceID.low)
    }
    return sum
}

/// The lines `auditq search --format json` writes for `found`, rendered into memory as auditq renders them (a
/// buffer handed on at 128 KiB and reused, here without the write); their byte count.
func searchJSON(_ found: RecordHandles) throws -> Int {
    var writer = RowJSON(found)
    var out = JSONLines()
    for h in found.handles {
        try writer.line(h, into: &out.buffer)
        out.endLine()
    }
    return out.count
}

/// The lines `auditq activity --format json` writes for `requests` (rows of `all`), rendered as `searchJSON` renders
/// its lines; their byte count.
func activityJSON(_ all: RecordHandles, _ requests: [RequestHandles]) throws -> Int {
    var writer = RowJSON(all)
    var out = JSONLines()
    for q in requests {
        try writer.activityLine(
            request: q.request, userEvents: q.userEvents.count, trace: q.trace, into: &out.buffer)
        out.endLine()
    }
    return out.count
}

/// auditq's output buffer: lines appended, the buffer emptied (auditq writes it out) once it holds 128 KiB.
struct JSONLines {
    var buffer: [UInt8] = []
    var written = 0

    init() { buffer.reserveCapacity(128 << 10 + 32 << 10) }

    mutating func endLine() {
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 128 << 10 {
            written += buffer.count
            buffer.removeAll(keepingCapacity: true)
        }
    }

    var count: Int { written + buffer.count }
}

func scratchDirectory() -> String {
    let path = NSTemporaryDirectory() + "/audit-bench-write-\(UInt64.random(in: 0...UInt64.max))"
    return path
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident],
        warmupIterations: 2,
        maxDuration: .seconds(10),
        maxIterations: 2_000
    )
    let fixture = Fixture.shared

    // MARK: Writing

    Benchmark(
        "write: encode+hash+index+compress+write 100k events (no fsync)",
        configuration: .init(
            metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident], maxIterations: 30)
    ) { benchmark in
        let batch = fixture.writeBatch
        let path = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var options = WriterOptions()
        options.maxSegmentRecords = 200_000
        let writer = try SegmentWriter(directory: DataDirectory(path), options: options, logger: Fixture.logger)
        benchmark.startMeasurement()
        var i = 0
        while i < batch.count {
            try writer.append(batch[i..<min(i + 1_000, batch.count)])
            i += 1_000
        }
        try writer.flush()
        benchmark.stopMeasurement()
        blackHole(writer.bytesWritten)
    } setup: {
        _ = fixture.writeBatch
    }

    Benchmark(
        "write: seal a 100k-event segment (index, Merkle root, footer, fsync)",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal], maxIterations: 30)
    ) { benchmark in
        let batch = fixture.writeBatch
        let path = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try SegmentWriter(directory: DataDirectory(path), logger: Fixture.logger)
        try writer.append(batch)
        try writer.flush()
        benchmark.startMeasurement()
        blackHole(try writer.seal())
        benchmark.stopMeasurement()
    } setup: {
        _ = fixture.writeBatch
    }

    // MARK: Records

    Benchmark(
        "codec: encode one realistic record",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .kilo)
    ) {
        benchmark in
        let events = Array(fixture.writeBatch.prefix(1_000))
        var w = BinaryWriter(capacity: 4_096)
        for _ in benchmark.scaledIterations {
            for e in events {
                w.bytes.removeAll(keepingCapacity: true)
                RecordCodec.encode(e, into: &w)
            }
        }
        blackHole(w.count)
    }

    Benchmark(
        "codec: decode one realistic record",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .kilo)
    ) {
        benchmark in
        let records = fixture.writeBatch.prefix(1_000).map { RecordCodec.encode($0) }
        for _ in benchmark.scaledIterations {
            for r in records { blackHole(try RecordCodec.decode(r)) }
        }
    }

    // MARK: Queries (warm, in process)

    Benchmark("query: light user, one day") { benchmark in
        let store = try fixture.store()
        let user = TrafficGenerator.lightUser(for: fixture.configuration)
        let q = EventQuery(terms: [.user(user)], timeRange: fixture.day)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try store.search(q, includeOpenSegments: false)) }
    } setup: {
        _ = try fixture.store()
    }

    Benchmark("query: heavy user, one day") { benchmark in
        let store = try fixture.store()
        let user = TrafficGenerator.heavyUser(for: fixture.configuration)
        let q = EventQuery(terms: [.user(user)], timeRange: fixture.day)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try store.search(q, includeOpenSegments: false)) }
    } setup: {
        _ = try fixture.store()
    }

    Benchmark("query: trace by id (no time hint, all segments)") { benchmark in
        try lookUpSampleTraces(benchmark) { store, id in
            blackHole(try store.traces([id], includeOpenSegments: false))
        }
    } setup: {
        _ = try fixture.sampleTraceIDs()
    }

    Benchmark(
        "query: user-to-traces join, heavy user, one day",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident], maxIterations: 100)
    ) {
        benchmark in
        let store = try fixture.store()
        let user = TrafficGenerator.heavyUser(for: fixture.configuration)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try store.userTraces(user: user, timeRange: fixture.day)) }
    } setup: {
        _ = try fixture.store()
    }

    Benchmark("query: one service, one hour") { benchmark in
        let store = try fixture.store()
        let hour = fixture.day.lowerBound + 14 * 3_600_000_000_000
        let q = EventQuery(terms: [.service("orders")], timeRange: hour...(hour + 3_600_000_000_000 - 1))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try store.search(q, includeOpenSegments: false)) }
    } setup: {
        _ = try fixture.store()
    }

    // MARK: Queries through record handles (warm, in process): what auditq answers from
    // CPU time beside wall clock: on a machine others share, it tells the query's work from time spent waiting.

    let handles = Benchmark.Configuration(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident])

    Benchmark("query (handles): heavy user, one day, table columns", configuration: handles) { benchmark in
        let (store, q) = try fixture.userDay(heavy: true)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try tableColumns(try store.searchHandles(q)!)) }
    } setup: {
        let (store, q) = try fixture.userDay(heavy: true)
        let n = try store.searchHandles(q)!.handles.count
        FileHandle.standardError.write(Data("heavy user, one day: \(n) events\n".utf8))
    }

    Benchmark("query (handles): heavy user, one day, as JSON", configuration: handles) { benchmark in
        let (store, q) = try fixture.userDay(heavy: true)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try searchJSON(try store.searchHandles(q)!)) }
    } setup: {
        _ = try fixture.store()
    }

    Benchmark("query (handles): light user, one day, table columns", configuration: handles) { benchmark in
        let (store, q) = try fixture.userDay(heavy: false)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try tableColumns(try store.searchHandles(q)!)) }
    } setup: {
        _ = try fixture.store()
    }

    let activity = Benchmark.Configuration(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident], maxIterations: 200)

    Benchmark("query (handles): heavy user's requests with their traces, one day", configuration: activity) {
        benchmark in
        let (store, q) = try fixture.userDay(heavy: true)
        let user = TrafficGenerator.heavyUser(for: fixture.configuration)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let (all, requests) = try store.activityHandles(user: user, timeRange: q.timeRange!)!
            // The activity table's columns: each request's own, and each hop's status and service.
            var sum = 0
            for q in requests {
                sum &+= try Int(all.httpStatus(q.request)) &+ all.service(q.request).utf8.count
                for h in q.trace { sum &+= Int(all.httpStatus(h)) &+ Int(all.statusCode(h).rawValue) }
            }
            blackHole(sum)
        }
    } setup: {
        let (store, q) = try fixture.userDay(heavy: true)
        let user = TrafficGenerator.heavyUser(for: fixture.configuration)
        let (_, requests) = try store.activityHandles(user: user, timeRange: q.timeRange!)!
        let hops = requests.reduce(0) { $0 + $1.trace.count }
        let line = "heavy user's activity: \(requests.count) requests, \(hops) records\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    Benchmark("query (handles): heavy user's requests with their traces, one day, as JSON", configuration: activity) {
        benchmark in
        let (store, q) = try fixture.userDay(heavy: true)
        let user = TrafficGenerator.heavyUser(for: fixture.configuration)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let (all, requests) = try store.activityHandles(user: user, timeRange: q.timeRange!)!
            blackHole(try activityJSON(all, requests))
        }
    } setup: {
        _ = try fixture.store()
    }

    Benchmark("query (handles): trace by id (no time hint, all segments)", configuration: handles) { benchmark in
        try lookUpSampleTraces(benchmark) { store, id in
            blackHole(try tableColumns(try store.traceHandles(id, includeOpenSegments: false)))
        }
    } setup: {
        _ = try fixture.sampleTraceIDs()
    }

    // MARK: Verification

    Benchmark(
        "verify: one sealed 100k-event segment",
        configuration: .init(metrics: [.wallClock, .throughput], maxIterations: 20)
    ) {
        benchmark in
        let store = try fixture.store()
        let (dir, entry) = store.sealedSegments[store.sealedSegments.count / 2]
        let path = dir.path(relative: entry.relativePath)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(Verifier.verifySegment(path: path)) }
    } setup: {
        _ = try fixture.store()
    }
}
