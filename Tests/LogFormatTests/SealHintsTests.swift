// A seal from what the writer kept of its records (`SealHints`: leaves hashed at ingest, the order's fields) writes
// the file a seal from the log alone writes, as recovery after a crash does; hints that do not match the log are
// refused, and the writer then seals from the log alone.
import Foundation
import SyntheticTraffic
import TestSupport
import Testing

@testable import LogFormat

@Suite struct SealHintsTests {
    /// Traces of 1 to 7 records, some with a user on their edge record, some without any, some without a trace id.
    static func events(_ count: Int, seed: UInt64 = 0) -> [AuditEvent] {
        (0..<count).map { i in
            var e = RandomEvents.small(seed: seed &+ UInt64(i))
            e.traceID = i % 97 == 0 ? .zero : TraceID(high: 7, low: UInt64((i * 31) % (count / 4 + 1)))
            return e
        }
    }

    /// Everything but the footer, whose seal holds the time of sealing (and the CRC over it).
    static func withoutFooter(_ path: String) throws -> [UInt8] {
        Array(try FileIO.readFile(path).dropLast(FormatConstants.footerSize))
    }

    static func sealedFile(_ dir: DataDirectory) throws -> String {
        let entries = try dir.currentCatalog(repair: false).entries
        try #require(entries.count == 1)
        return dir.path(relative: entries[0].relativePath)
    }

    /// Writer options for many small blocks.
    static var smallBlocks: WriterOptions {
        var options = WriterOptions()
        options.targetBlockBytes = 4 << 10
        options.columnBlockRows = 64
        return options
    }

    /// A data directory for the writer and one for a copy of it.
    static func twoDirectories(_ tmp: TempDir) -> (DataDirectory, DataDirectory) {
        (DataDirectory(tmp.path + "/a"), DataDirectory(tmp.path + "/b"))
    }

    /// What the writer would keep of the log at `path`, read back from it.
    static func hints(of path: String) throws -> SealHints {
        var hints = SealHints()
        let (_, records) = try WALRecords.read(path: path)
        for i in 0..<records.count {
            try records.withRecord(i) { (r) throws(LogFormatError) in
                let (terms, start) = try Verifier.indexedFields(r)
                hints.append(hints.hint(r, leaf: MerkleTree.leafHash(r), terms: terms, start: start))
            }
        }
        return hints
    }

    /// The writer's own seal (with the hints it kept, across batches, blocks of both streams and a batch refused and
    /// rolled back) and recovery's seal of a copy of the same log (without them) write the same file.
    @Test func theWritersSealIsRecoverysSeal() throws {
        try TempDir.with { tmp in
            let (a, b) = Self.twoDirectories(tmp)
            var options = Self.smallBlocks
            let faults = FailingWrites(failing: 2, allowed: 100)
            options.writeFaults = faults
            let writer = try SegmentWriter(directory: a, options: options, logger: quietLogger)
            let events = Self.events(3_000)
            for chunk in stride(from: 0, to: 2_000, by: 250) {
                try writer.append(events[chunk..<(chunk + 250)])
            }
            try writer.flush()
            // A batch whose second block write fails is rolled back: the hints forget its records.
            faults.arm()
            #expect(throws: LogFormatError.self) { try writer.append(events[2_000..<2_600]) }
            faults.disarm()
            try writer.append(events[2_600...])
            try writer.flush()
            try writer.sync()
            try FileManager.default.copyItem(atPath: a.root, toPath: b.root)
            #expect(try writer.seal() != nil)
            options.writeFaults = nil
            let recovered = try SegmentWriter(directory: b, options: options, logger: quietLogger)
            #expect(recovered.recoveries.map(\.action) == [.sealed])
            let sealedA = try Self.sealedFile(a)
            let sealedB = try Self.sealedFile(b)
            #expect(try SegmentReader(path: sealedA, sealed: true).scan().count == 2_400)
            #expect(try Self.withoutFooter(sealedA) == Self.withoutFooter(sealedB))
            #expect(
                try SegmentReader(path: sealedA, sealed: true).footer?.seal.merkleRoot
                    == SegmentReader(path: sealedB, sealed: true).footer?.seal.merkleRoot)
        }
    }

    /// SDK-shaped traffic, as the collector writes it: the writer's seal and recovery's seal of a copy of its log give
    /// the same file. `AUDIT_SEAL_HINTS_EVENTS` sets the count (a full segment, about 230,000 events of 128 MiB of
    /// records, is laid out in parts).
    @Test func generatedTrafficSealsTheSameWithHints() throws {
        let count = ProcessInfo.processInfo.environment["AUDIT_SEAL_HINTS_EVENTS"].flatMap { Int($0) } ?? 6_000
        try TempDir.with { tmp in
            let a = DataDirectory(tmp.path + "/a")
            let b = DataDirectory(tmp.path + "/b")
            var options = WriterOptions()
            options.maxSegmentRawBytes = Int.max
            let writer = try SegmentWriter(directory: a, options: options, logger: quietLogger)
            var g = TrafficGenerator(seed: 5)
            var left = count
            while left > 0 {
                let n = min(left, 500)
                try writer.append(g.nextEvents(n))
                left -= n
            }
            try writer.flush()
            try writer.sync()
            try FileManager.default.copyItem(atPath: a.root, toPath: b.root)
            #expect(try writer.seal() != nil)
            _ = try SegmentWriter(directory: b, logger: quietLogger)
            #expect(try Self.withoutFooter(try Self.sealedFile(a)) == Self.withoutFooter(try Self.sealedFile(b)))
        }
    }

    /// With hints, whole or in parts, the file is the one sealed from the log alone.
    @Test(arguments: [1, 40_000, Int.max])
    func hintsGiveTheFileOfTheLogAlone(budget: Int) throws {
        try TempDir.with { tmp in
            var options = WriterOptions()
            options.targetBlockBytes = 8 << 10
            let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
            try writer.append(Self.events(4_000, seed: 11))
            try writer.flush()
            let wal =
                tmp.dataDirectory.segmentsPath + "/"
                + (try #require(try tmp.dataDirectory.listSegmentFiles().open.first))
            func sealed(_ target: String, hints: SealHints?) throws -> [UInt8] {
                _ = try ColumnSealer.seal(
                    walPath: wal, targetPath: tmp.path + "/" + target, directory: tmp.path, codec: .lz4, blockRows: 256,
                    previous: (0, .zero), signer: nil, faults: nil, recordsInMemory: budget, hints: hints)
                return try Self.withoutFooter(tmp.path + "/" + target)
            }
            let alone = try sealed("alone.seg", hints: nil)
            #expect(try sealed("hinted.seg", hints: try Self.hints(of: wal)) == alone)
        }
    }

    /// Hints that miss a record, claim one more, or give a record another size are refused with `.integrity`.
    @Test(arguments: [1, Int.max])
    func hintsThatDoNotMatchTheLogAreRefused(budget: Int) throws {
        try TempDir.with { tmp in
            let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
            try writer.append(Self.events(500, seed: 3))
            try writer.flush()
            let wal =
                tmp.dataDirectory.segmentsPath + "/"
                + (try #require(try tmp.dataDirectory.listSegmentFiles().open.first))
            let good = try Self.hints(of: wal)
            var fewer = good
            fewer.truncate(to: fewer.count - 1)
            var more = good
            more.append(good[0])
            var resized = good
            resized[250].size += 1
            for (name, hints) in [("fewer", fewer), ("more", more), ("resized", resized)] {
                do throws(LogFormatError) {
                    _ = try ColumnSealer.seal(
                        walPath: wal, targetPath: tmp.path + "/x.seg", directory: tmp.path, codec: .lz4,
                        blockRows: 64, previous: (0, .zero), signer: nil, faults: nil, recordsInMemory: budget,
                        hints: hints)
                    Issue.record("\(name): sealed")
                } catch {
                    #expect(error.code == .integrity, "\(name): \(error)")
                }
                #expect(!FileManager.default.fileExists(atPath: tmp.path + "/x.seg"), "\(name)")
            }
        }
    }
}

/// The hints' chunked storage against a plain array: appends across chunk boundaries, rolled-back batches of every
/// size (to a chunk's end, into the middle of one, to nothing) and changes in place read back alike.
@Suite struct SealHintsStorageTests {
    static func record(_ n: Int) -> SealHints.Record {
        SealHints.Record(
            leaf: .zero, traceID: TraceID(high: 1, low: UInt64(n)), start: UInt64(n), size: UInt32(n & 0xFFFF),
            user: UInt32(n % 7), service: UInt32(n % 3), isEdgeAccess: n % 5 == 0)
    }

    @Test(arguments: [0, 1, 2, 3])
    func chunksReadAsOneArray(seed: UInt64) {
        var rng = Xoshiro256StarStar(seed: seed)
        var hints = SealHints()
        var model: [SealHints.Record] = []
        var n = 0
        var most = 0
        for _ in 0..<60 {
            switch rng.next() % 8 {
            case 0...4:
                let batch = (0..<Int(rng.next() % 4000)).map { _ in
                    n += 1
                    return Self.record(n)
                }
                hints.append(contentsOf: batch)
                model += batch
            case 5:
                // Back to a chunk boundary, into a chunk, or to nothing.
                let boundary = model.count / SealHints.chunkSize * SealHints.chunkSize
                let to = [0, boundary, Int(rng.next() % UInt64(model.count + 1))][Int(rng.next() % 3)]
                hints.truncate(to: to)
                model.removeLast(model.count - min(to, model.count))
            default:
                guard !model.isEmpty else { continue }
                let i = Int(rng.next() % UInt64(model.count))
                hints[i].size += 1
                model[i].size += 1
            }
            #expect(hints.count == model.count)
            #expect(
                (0..<50).allSatisfy { _ in
                    model.isEmpty
                        || { i in hints[i].traceID == model[i].traceID }(Int(rng.next() % UInt64(model.count)))
                })
            most = max(most, model.count)
        }
        #expect(most > 2 * SealHints.chunkSize, "the storage must be tested across chunks")
        #expect(
            (0..<model.count).allSatisfy { hints[$0].traceID == model[$0].traceID && hints[$0].size == model[$0].size })
    }
}
