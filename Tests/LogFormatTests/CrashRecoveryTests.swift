import Foundation
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

/// Runs the real writer process (SegmentCrashWriter), kills it with SIGKILL at random moments many times, and
/// checks that every batch it reported durable is readable afterwards and that nothing unreadable remains.
@Suite(.serialized, .ownThreads) struct CrashRecoveryTests {
    static var writerBinary: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("SegmentCrashWriter")
    }

    struct Durable: Hashable {
        var run: UInt64
        var batch: UInt64
        var count: Int
    }

    /// Starts the writer, lets it run `millis`, kills it with SIGKILL, and returns the batches it acknowledged.
    func runAndKill(data: String, run: UInt64, policy: String, millis: Int) throws -> [Durable] {
        let process = try ChildProcess(Self.writerBinary.path, [data, String(run), policy, String(64 << 10)])
        // Wait for "ready" (recovery done) before the clock starts, so each run writes for a while.
        try process.waitForStdout("ready", within: 30) { $0.contains("ready") }
        usleep(UInt32(millis * 1_000))
        let killed = process.stop(signal: SIGKILL, within: 30)
        #expect(killed.graceful, "the writer did not die of SIGKILL within 30 s")
        return killed.output.stdout.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 4, parts[0] == "durable", let r = UInt64(parts[1]), let b = UInt64(parts[2]),
                let c = Int(parts[3])
            else { return nil }
            return Durable(run: r, batch: b, count: c)
        }
    }

    @Test(arguments: ["always", "interval"])
    func everyAcknowledgedBatchSurvivesRepeatedSIGKILL(policy: String) throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.writerBinary.path), "build SegmentCrashWriter first")
        let tmp = TempDir("crash")
        defer { tmp.remove() }
        let data = tmp.path + "/data"
        var rng = SplitMix(policy == "always" ? 1 : 2)
        var acknowledged: [Durable] = []
        let runs: UInt64 = 12
        for run in 1...runs {
            acknowledged += try runAndKill(data: data, run: run, policy: policy, millis: 30 + Int(rng.next() % 300))
        }
        #expect(acknowledged.count > 100, "the writer acknowledged too little to test anything")

        // Recovery: opening a writer seals whatever the last kill left open.
        let writer = try SegmentWriter(directory: DataDirectory(data), logger: quietLogger)
        try writer.close()
        #expect(try DataDirectory(data).listSegmentFiles().open.isEmpty)

        // Nothing unreadable remains: every sealed segment opens and every block decodes.
        let store = try AuditStore(directories: [DataDirectory(data)])
        var stored: [TraceID: Int] = [:]
        var total = 0
        for (dir, entry) in store.sealedSegments {
            let reader = try store.reader(dir, entry)
            let records = try reader.scan()
            #expect(records.count == Int(entry.seal.recordCount))
            for r in records { stored[r.event.traceID, default: 0] += 1 }
            total += records.count
        }
        // Every acknowledged batch is there, whole (a batch is one trace id).
        var missing = 0
        for d in acknowledged {
            let n = stored[TraceID(high: d.run, low: d.batch)] ?? 0
            if n < d.count { missing += 1 }
        }
        #expect(missing == 0, "\(missing) of \(acknowledged.count) acknowledged batches were lost")
        // Recovery never duplicates: each batch was appended once, so no trace holds more than its count.
        #expect(stored.values.allSatisfy { $0 <= 9 })
        #expect(total >= acknowledged.reduce(0) { $0 + $1.count })
    }
}
