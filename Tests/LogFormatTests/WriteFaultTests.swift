// Refused means not stored: a batch whose write fails part of the way is cut off again, whole, and nothing of
// it reaches the store later (issue 16). Writes are failed through the `WriteFaults` seam.
import Foundation
import PropertyBased
import Synchronization
import TestSupport
import Testing

@testable import LogFormat

/// Fails chosen writes to `.open` segment files after the header (block and seal writes): while armed, write
/// number n (counted from 1 over those writes) fails when `plan(n)` says so, after `allowed` bytes.
final class FailingWrites: WriteFaults {
    private let state = Mutex((armed: false, writes: 0))
    private let plan: @Sendable (Int) -> (allowed: Int, errno: Int32)?

    init(plan: @escaping @Sendable (Int) -> (allowed: Int, errno: Int32)?) { self.plan = plan }

    /// Fails only the `nth` write after arming, letting `allowed` bytes of it through.
    convenience init(failing nth: Int, allowed: Int = 10) {
        self.init { $0 == nth ? (allowed, ENOSPC) : nil }
    }

    func arm() { state.withLock { $0 = (true, 0) } }
    func disarm() { state.withLock { $0.armed = false } }
    var writesSinceArmed: Int { state.withLock { $0.writes } }

    func fault(path: String, offset: Int, count: Int) -> (allowed: Int, errno: Int32)? {
        guard path.hasSuffix(".open"), offset > 0 else { return nil }
        let n: Int? = state.withLock { s in
            guard s.armed else { return nil }
            s.writes += 1
            return s.writes
        }
        return n.flatMap(plan)
    }
}

enum FaultEvents {
    /// A batch of `count` small events whose span IDs are `first..<first + count`: the key that tells records apart.
    static func batch(_ first: UInt64, _ count: Int) -> [AuditEvent] {
        (0..<UInt64(count)).map {
            var e = RandomEvents.small(seed: first + $0)
            e.spanID = SpanID(value: first + $0)
            return e
        }
    }

    /// Span IDs of every record in the directory, after a writer has reopened it (recovering any unsealed segment).
    static func stored(_ dir: DataDirectory) throws -> [UInt64] {
        let writer = try SegmentWriter(directory: dir, logger: quietLogger)
        var ids: [UInt64] = []
        for entry in writer.catalog.entries {
            let reader = try SegmentReader(path: dir.path(relative: entry.relativePath), sealed: true)
            ids += try reader.scan().map(\.event.spanID.value)
        }
        #expect(try dir.listSegmentFiles().open.isEmpty)
        return ids.sorted()
    }
}

@Suite struct WriteFaultTests {
    static func options(_ faults: FailingWrites) -> DurableLog.Options {
        var options = DurableLog.Options()
        options.writer.targetBlockBytes = 2 << 10
        options.writer.writeFaults = faults
        options.fsync = .interval(milliseconds: 5)
        return options
    }

    @Test func aBatchWhoseSecondBlockWriteFailsIsNeverStored() async throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let faults = FailingWrites(failing: 2, allowed: 100)
        let log = try DurableLog(directory: tmp.dataDirectory, options: Self.options(faults), logger: quietLogger)
        _ = try await log.append(FaultEvents.batch(1, 20))
        _ = try await log.append(FaultEvents.batch(100, 20))
        faults.arm()
        // 400 small events fill several 2 KiB blocks: the first is written, the second fails.
        await #expect(throws: LogFormatError.self) { try await log.append(FaultEvents.batch(1_000, 400)) }
        #expect(faults.writesSinceArmed == 2)
        faults.disarm()
        // Ticks (failed-write retries, interval fsyncs) run meanwhile; none may write the refused batch.
        try await Task.sleep(for: .milliseconds(100))
        _ = try await log.append(FaultEvents.batch(5_000, 30))
        _ = try await log.sealNow()
        _ = try await log.append(FaultEvents.batch(6_000, 3))
        try await log.close()
        let expected: [UInt64] = Array(1..<21) + Array(100..<120) + Array(5_000..<5_030) + Array(6_000..<6_003)
        #expect(try FaultEvents.stored(tmp.dataDirectory) == expected)
    }

    @Test func aSegmentWriterBatchIsCutOffWholeWhenABlockWriteFails() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let faults = FailingWrites(failing: 2, allowed: 0)
        var options = WriterOptions()
        options.targetBlockBytes = 2 << 10
        options.writeFaults = faults
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        try writer.append(FaultEvents.batch(1, 50))
        try writer.flush()
        // Buffered, not yet written: an earlier batch's records wait in the blocks the failing batch fills.
        try writer.append(FaultEvents.batch(100, 3))
        let before = writer.activeFileBytes
        faults.arm()
        #expect(throws: LogFormatError.self) { try writer.append(FaultEvents.batch(1_000, 400)) }
        faults.disarm()
        #expect(writer.activeFileBytes == before)
        let openFile = try tmp.dataDirectory.listSegmentFiles().open[0]
        #expect(Damage.size(tmp.dataDirectory.segmentsPath + "/" + openFile) == before)
        try writer.flush()
        try writer.append(FaultEvents.batch(2_000, 5))
        try writer.seal()
        let expected: [UInt64] = Array(1..<51) + Array(100..<103) + Array(2_000..<2_005)
        #expect(try FaultEvents.stored(tmp.dataDirectory) == expected)
    }

    /// Random batches appended concurrently while random writes fail part of the way: what is stored is exactly
    /// the batches that were acknowledged, each once.
    @Test func storedRecordsAreExactlyTheAcknowledgedBatches() async throws {
        await propertyCheck(count: 25, input: Gen.uint64(), Gen.int(in: 1...5)) { seed, everyNth in
            let tmp = TempDir()
            defer { tmp.remove() }
            let faults = FailingWrites { n in
                var g = SplitMix(seed &+ UInt64(n))
                return g.next() % UInt64(everyNth + 1) == 0 ? (Int(g.next() % 3000), ENOSPC) : nil
            }
            let log = try DurableLog(directory: tmp.dataDirectory, options: Self.options(faults), logger: quietLogger)
            faults.arm()
            var g = SplitMix(seed)
            let sizes = (0..<12).map { _ in Int(g.next() % 120) + 1 }
            let acknowledged = await withTaskGroup(of: [UInt64].self) { group in
                for (i, size) in sizes.enumerated() {
                    group.addTask {
                        let first = UInt64(i) * 1_000
                        guard (try? await log.append(FaultEvents.batch(first, size))) != nil else { return [] }
                        return (first..<first + UInt64(size)).map { $0 }
                    }
                }
                return await group.reduce(into: [UInt64]()) { $0 += $1 }
            }
            faults.disarm()
            try await log.close()
            #expect(try FaultEvents.stored(tmp.dataDirectory) == acknowledged.sorted(), "seed \(seed)")
        }
    }
}
