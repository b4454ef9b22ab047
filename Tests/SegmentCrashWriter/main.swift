// A writer process for the SIGKILL crash-recovery test: appends batches through DurableLog from several
// concurrent tasks and prints `durable <run> <batch> <count>` once a batch is acknowledged, until killed.
//
// usage: SegmentCrashWriter DATA_DIR RUN_ID POLICY(always|interval|never) [MAX_SEGMENT_BYTES]
import Foundation
import LogFormat
import Logging

let args = CommandLine.arguments
guard args.count >= 4, let run = UInt64(args[2]) else {
    FileHandle.standardError.write(
        Data("usage: SegmentCrashWriter DATA_DIR RUN_ID always|interval|never [MAX_SEGMENT_BYTES]\n".utf8))
    exit(2)
}
var options = DurableLog.Options()
switch args[3] {
case "always": options.fsync = .always
case "never": options.fsync = .never
default: options.fsync = .interval(milliseconds: 5)
}
options.writer.targetBlockBytes = 8 << 10
options.writer.maxSegmentBytes = args.count > 4 ? Int(args[4]) ?? (256 << 10) : 256 << 10

/// The events of batch `batch` of run `run`: ids encode (run, batch, index) so the test can check them.
func batchEvents(run: UInt64, batch: UInt64, count: Int) -> [AuditEvent] {
    var events: [AuditEvent] = []
    for i in 0..<count {
        let start: UInt64 = 1_700_000_000_000_000_000 + batch * 1_000 + UInt64(i)
        let payload = String(repeating: "p", count: Int(batch % 50) * 10)
        var e = AuditEvent(kind: i == 0 ? .access : .span, startTimeUnixNano: start)
        e.traceID = TraceID(high: run, low: batch)
        e.spanID = SpanID(value: batch << 16 | UInt64(i))
        e.name = "op-\(i)"
        e.service = "svc-\(i % 4)"
        if i == 0 { e.user = UserIdentity(subject: "user-\(batch % 7)") }
        e.attributes = [Attribute("payload", .string(payload))]
        events.append(e)
    }
    return events
}

let log: DurableLog
do {
    log = try DurableLog(directory: DataDirectory(args[1]), options: options, logger: Logger(label: "crash-writer"))
} catch {
    FileHandle.standardError.write(Data("open failed: \(error)\n".utf8))
    exit(1)
}
for r in log.recoveries { FileHandle.standardError.write(Data("recovered: \(r)\n".utf8)) }
// Unbuffered writes: a line is out of the process before the next batch starts.
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
say("ready")

let lock = NSLock()
await withTaskGroup(of: Void.self) { group in
    for worker in 0..<4 {
        group.addTask {
            var batch = UInt64(worker)
            while true {
                let count = 1 + Int(batch % 9)
                do {
                    _ = try await log.append(batchEvents(run: run, batch: batch, count: count))
                    lock.withLock { say("durable \(run) \(batch) \(count)") }
                } catch {
                    FileHandle.standardError.write(Data("append failed: \(error)\n".utf8))
                }
                batch += 4
            }
        }
    }
}
