// Sealing by lay-out, cut short at each step (docs/format/segment.md, "Sealing and recovery"): the write-ahead log
// left alone, a half-written `.seg.tmp`, and the log beside a sealed file that does or does not hold it.
import Foundation
import LogFormat
import TestSupport
import Testing

@testable import LogFormat

@Suite struct LayOutRecoveryTests {
    /// Events of 40 traces, 5 records each, users on the first record of each trace.
    static let events: [AuditEvent] = (0..<200).map { i in
        var e = RandomEvents.small(seed: UInt64(i))
        e.traceID = TraceID(high: 1, low: UInt64(i / 5))
        return e
    }

    /// Writes the events to a fresh directory without sealing: the write-ahead log is left as a crash leaves it.
    func writeLog(_ dir: DataDirectory) throws -> String {
        let writer = try SegmentWriter(directory: dir, logger: quietLogger)
        try writer.append(Self.events)
        try writer.flush()
        try writer.sync()
        return dir.segmentsPath + "/" + (try #require(try dir.listSegmentFiles().open.first))
    }

    func sealedSpanIDs(_ dir: DataDirectory) throws -> [SpanID] {
        let writerCatalog = try dir.currentCatalog(repair: false)
        var out: [SpanID] = []
        for entry in writerCatalog.entries {
            let reader = try SegmentReader(path: dir.path(relative: entry.relativePath), sealed: true)
            out += try reader.scan().map(\.event.spanID)
        }
        return out.sorted()
    }

    @Test func aLogLeftBehindIsLaidOutOnStart() throws {
        try TempDir.with { tmp in
            let dir = tmp.dataDirectory
            _ = try writeLog(dir)
            let writer = try SegmentWriter(directory: dir, logger: quietLogger)
            #expect(writer.recoveries.map(\.action) == [.sealed])
            #expect(try dir.listSegmentFiles().open.isEmpty)
            #expect(try sealedSpanIDs(dir) == Self.events.map(\.spanID).sorted())
        }
    }

    @Test func aHalfWrittenLayOutIsDiscardedAndDoneAgain() throws {
        try TempDir.with { tmp in
            let dir = tmp.dataDirectory
            let log = try writeLog(dir)
            let tmpFile = log.replacingOccurrences(of: ".open", with: ".seg.tmp")
            try Data(repeating: 0x5A, count: 5000).write(to: URL(fileURLWithPath: tmpFile))
            let writer = try SegmentWriter(directory: dir, logger: quietLogger)
            #expect(!FileManager.default.fileExists(atPath: tmpFile))
            #expect(writer.catalog.entries.count == 1)
            #expect(try sealedSpanIDs(dir) == Self.events.map(\.spanID).sorted())
        }
    }

    /// Seals the log, then puts a copy of it back beside the sealed file: a crash after the rename and before
    /// the log was removed. Returns the log's path and the sealed file's.
    func sealAndRestoreLog(_ dir: DataDirectory) throws -> (log: String, sealed: String) {
        let log = try writeLog(dir)
        let copy = log + ".copy"
        try FileManager.default.copyItem(atPath: log, toPath: copy)
        _ = try SegmentWriter(directory: dir, logger: quietLogger)
        #expect(!FileManager.default.fileExists(atPath: log))
        try FileManager.default.moveItem(atPath: copy, toPath: log)
        return (log, log.replacingOccurrences(of: ".open", with: ".seg"))
    }

    @Test func aLogBesideTheFileSealedFromItIsRemoved() throws {
        try TempDir.with { tmp in
            let dir = tmp.dataDirectory
            let (log, sealed) = try sealAndRestoreLog(dir)
            let before = try Data(contentsOf: URL(fileURLWithPath: sealed))
            let writer = try SegmentWriter(directory: dir, logger: quietLogger)
            #expect(writer.recoveries.map(\.action) == [.logRemoved])
            #expect(!FileManager.default.fileExists(atPath: log))
            #expect(try Data(contentsOf: URL(fileURLWithPath: sealed)) == before)
            #expect(writer.catalog.entries.count == 1)
            #expect(try sealedSpanIDs(dir) == Self.events.map(\.spanID).sorted())
        }
    }

    @Test func aDamagedSealedFileBesideItsLogIsQuarantinedAndSealedAgain() throws {
        try TempDir.with { tmp in
            let dir = tmp.dataDirectory
            let (log, sealed) = try sealAndRestoreLog(dir)
            let reader = try SegmentReader(path: sealed, sealed: true)
            let root = try #require(reader.footer).seal.merkleRoot
            // A byte inside the first block's payload: the footer and index still read, the records do not.
            try Damage.flip(sealed, at: Int(reader.blocks[0].offset) + FormatConstants.blockHeaderSize + 20)
            let writer = try SegmentWriter(directory: dir, logger: quietLogger)
            #expect(writer.recoveries.map(\.action) == [.sealed])
            #expect(FileManager.default.fileExists(atPath: sealed + ".damaged"))
            #expect(!FileManager.default.fileExists(atPath: log))
            #expect(writer.catalog.entries.count == 1)
            // The same log gives the same records in the same order: the same root, chained as before.
            #expect(writer.catalog.entries.first?.seal.merkleRoot == root)
            #expect(try sealedSpanIDs(dir) == Self.events.map(\.spanID).sorted())
        }
    }
}
