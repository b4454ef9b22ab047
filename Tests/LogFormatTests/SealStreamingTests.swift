// A seal writes its blocks to the temporary file as they are made instead of building the whole file in memory:
// the bytes must be the ones built whole, and a write that fails part-way must leave no sealed file behind and the
// write-ahead log able to seal again.
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import LogFormat

/// Fails the `nth` write to a sealed file's temporary (`….tmp`), letting `allowed` bytes of it through.
private final class FailingTemporaryWrites: WriteFaults {
    private let writes = Mutex(0)
    let nth: Int
    let allowed: Int

    init(nth: Int, allowed: Int) {
        self.nth = nth
        self.allowed = allowed
    }

    var count: Int { writes.withLock { $0 } }

    func fault(path: String, offset: Int, count: Int) -> (allowed: Int, errno: Int32)? {
        guard path.hasSuffix(".tmp") else { return nil }
        let n = writes.withLock { w in
            w += 1
            return w
        }
        return n == nth ? (allowed, ENOSPC) : nil
    }
}

@Suite struct SealStreamingTests {
    /// A log of several hundred blocks' worth of records.
    static func log(_ tmp: TempDir) throws -> String {
        var options = WriterOptions()
        options.targetBlockBytes = 8 << 10
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        try writer.append(SealHintsTests.events(6_000, seed: 5))
        try writer.flush()
        return tmp.dataDirectory.segmentsPath + "/"
            + (try #require(try tmp.dataDirectory.listSegmentFiles().open.first))
    }

    static func seal(
        _ wal: String, to target: String, in tmp: TempDir, flushBytes: Int, faults: (any WriteFaults)? = nil
    ) throws -> ColumnSealResult {
        try ColumnSealer.seal(
            walPath: wal, targetPath: tmp.path + "/" + target, directory: tmp.path, codec: .lz4, blockRows: 128,
            previous: (0, .zero), signer: nil, faults: faults, flushBytes: flushBytes)
    }

    /// Written after every block, or in a few writes, or once at the end: the same file, the same result.
    @Test func theFileIsTheSameHoweverOftenItIsWritten() throws {
        try TempDir.with { tmp in
            let wal = try Self.log(tmp)
            let whole = try Self.seal(wal, to: "whole.seg", in: tmp, flushBytes: .max)
            let counter = FailingTemporaryWrites(nth: 0, allowed: 0)
            let eachBlock = try Self.seal(wal, to: "each.seg", in: tmp, flushBytes: 1, faults: counter)
            let some = try Self.seal(wal, to: "some.seg", in: tmp, flushBytes: 64 << 10)
            // More writes than one: the blocks did go out before the end.
            #expect(counter.count > 10)
            #expect(eachBlock.blockCount > 10)
            let bytes = try SealHintsTests.withoutFooter(tmp.path + "/whole.seg")
            #expect(try SealHintsTests.withoutFooter(tmp.path + "/each.seg") == bytes)
            #expect(try SealHintsTests.withoutFooter(tmp.path + "/some.seg") == bytes)
            for r in [eachBlock, some] {
                #expect(r.fileSize == whole.fileSize)
                #expect(r.blockCount == whole.blockCount)
                #expect(r.seal.merkleRoot == whole.seal.merkleRoot)
            }
            let reader = try SegmentReader(path: tmp.path + "/each.seg", sealed: true)
            #expect(try reader.scan().count == 6_000)
        }
    }

    /// A write that fails after some blocks went out (part of it written) fails the seal: no sealed file, no
    /// temporary left, the log untouched; sealing again then gives the file sealed without a fault.
    @Test(arguments: [1, 2, 7])
    func aFailedWriteLeavesNothingAndTheLogSealsAgain(nth: Int) throws {
        try TempDir.with { tmp in
            let wal = try Self.log(tmp)
            let logBytes = try FileIO.readFile(wal)
            let faults = FailingTemporaryWrites(nth: nth, allowed: 100)
            #expect(throws: LogFormatError.self) {
                _ = try Self.seal(wal, to: "x.seg", in: tmp, flushBytes: 1, faults: faults)
            }
            #expect(faults.count == nth)
            #expect(!FileManager.default.fileExists(atPath: tmp.path + "/x.seg"))
            #expect(!FileManager.default.fileExists(atPath: tmp.path + "/x.seg.tmp"))
            #expect(try FileIO.readFile(wal) == logBytes)
            _ = try Self.seal(wal, to: "x.seg", in: tmp, flushBytes: 1)
            _ = try Self.seal(wal, to: "y.seg", in: tmp, flushBytes: .max)
            #expect(
                try SealHintsTests.withoutFooter(tmp.path + "/x.seg")
                    == SealHintsTests.withoutFooter(tmp.path + "/y.seg"))
        }
    }
}
