import Foundation
import PropertyBased
import Synchronization
import SyntheticTraffic
import TestSupport
import Testing

@testable import LogFormat

/// The segment dictionary (docs/format/dictionary.md): strings shared by a segment's column blocks, stored once.
@Suite struct SegmentDictionaryTests {
    /// Seals `events` as one version 2 segment of blocks of `blockRows` rows; returns the file's path.
    func seal(
        _ events: [AuditEvent], _ tmp: TempDir, blockRows: Int = 16, codec: CompressionCodec = .lz4,
        signer: SealSigner? = nil
    ) throws -> String {
        var options = WriterOptions()
        options.codec = codec
        options.columnBlockRows = blockRows
        options.signer = signer
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        try writer.append(events)
        let entry = try #require(try writer.seal())
        return tmp.dataDirectory.path(relative: entry.relativePath)
    }

    /// The canonical bytes of `events` in sealed order.
    func sealedCanonical(_ events: [AuditEvent]) -> [[UInt8]] {
        SealOrder.permutation(events.map { SealOrderFields($0) }).map { RecordCodec.encode(events[$0]) }
    }

    func readCanonical(_ path: String) throws -> [[UInt8]] {
        let reader = try SegmentReader(path: path, sealed: true)
        return try reader.scan().map { RecordCodec.encode($0.event) }
    }

    /// SDK-shaped traffic: blocks share their keys, services and resource values through the dictionary, every
    /// record comes back with its canonical bytes, and the file is smaller than the same blocks without it.
    @Test func generatedTrafficRoundTripsThroughTheDictionary() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var g = TrafficGenerator(seed: 21)
        let events = g.nextEvents(4_000)
        let path = try seal(events, tmp, blockRows: 512)
        let reader = try SegmentReader(path: path, sealed: true)
        let range = try #require(reader.dictionaryRange)
        let dictionary = try #require(try reader.segmentDictionary())
        #expect(dictionary.count > 10)
        // Every block says how many segment strings it uses (the first: none yet), so older readers refuse it.
        let used = try reader.blocks.indices.map { b in
            let stored = UnsafeRawBufferPointer(rebasing: reader.file.bytes[reader.blockRange(b)].dropFirst(48))
            return try #require(try ColumnBlock.columns(stored)[.segmentStrings])
        }
        #expect(used.first == [0])
        #expect(used.last != [0])
        #expect(range.upperBound == Int(reader.footer!.indexOffset))
        #expect(try readCanonical(path) == sealedCanonical(events))

        // The same records without sharing: bigger.
        let without = try layOut(events, sharesStrings: false)
        let size = try Data(contentsOf: URL(fileURLWithPath: path)).count
        #expect(size < without.count, "with the dictionary \(size) B, without \(without.count) B")
    }

    /// Hostile and random events in any number of small blocks: decode(encode(records)) is exact.
    @Test func randomEventsRoundTripThroughSegmentsWithADictionary() async {
        await propertyCheck(count: 12, input: Gen.uint64(), Gen.int(in: 1...120), Gen.int(in: 1...9)) {
            seed, count, rows in
            let tmp = TempDir()
            defer { tmp.remove() }
            // Half the events repeat strings of the others, so blocks share some.
            let events = (0..<UInt64(count)).map { i in
                i % 2 == 0 ? RandomEvents.make(seed: seed &+ i) : RandomEvents.small(seed: (seed &+ i) % 7)
            }
            for codec in [CompressionCodec.lz4, .zlib] {
                let back = try? readCanonical(seal(events, tmp, blockRows: rows, codec: codec))
                #expect(back == sealedCanonical(events), "seed \(seed), \(count) events, \(rows) rows, \(codec)")
            }
        }
    }

    /// A version 2 segment written before the dictionary (no block 4, no column 13) reads and verifies as before.
    @Test func segmentsWithoutADictionaryStayReadable() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var g = TrafficGenerator(seed: 4)
        let events = g.nextEvents(600)
        let path = tmp.path + "/old.seg"
        try Data(try layOut(events, sharesStrings: false)).write(to: URL(fileURLWithPath: path))
        let reader = try SegmentReader(path: path, sealed: true)
        #expect(reader.dictionaryRange == nil)
        #expect(try reader.segmentDictionary() == nil)
        for b in reader.blocks.indices {
            let stored = UnsafeRawBufferPointer(rebasing: reader.file.bytes[reader.blockRange(b)].dropFirst(48))
            #expect(try ColumnBlock.columns(stored)[.segmentStrings] == nil)
        }
        #expect(try readCanonical(path) == sealedCanonical(events))
        let v = Verifier.verifySegment(path: path)
        #expect(v.problems.isEmpty, "\(v.problems)")
    }

    /// A whole sealed file laid out in memory (as `ColumnSealer` does), with or without the dictionary.
    func layOut(_ events: [AuditEvent], sharesStrings: Bool, blockRows: Int = 512) throws -> [UInt8] {
        var records = WALRecords()
        for e in events {
            records.bytes += RecordCodec.encode(e)
            records.starts.append(records.bytes.count)
        }
        let order = try ColumnSealer.order(of: records)
        let header = SegmentFileHeader(
            version: FormatConstants.segmentVersionColumns, nodeID: NodeID(high: 1, low: 2), sequence: 1,
            createdUnixNano: 1)
        var body = ColumnSealer.LaidOut(header: header)
        body.sharesStrings = sharesStrings
        try body.add(records: records, order: order, codec: .lz4, level: 6, blockRows: blockRows)
        let trailer = try SealTrailer.build(
            index: body.index, nodeID: header.nodeID, sequence: 1, recordCount: UInt32(order.count),
            minTime: body.minTime, maxTime: body.maxTime, root: body.merkle.root, previous: (0, Digest32.zero),
            signer: nil, indexOffset: body.out.count)
        body.out.raw(trailer.bytes)
        return body.out.bytes
    }

    // MARK: Hostile dictionaries

    /// A sealed file with a dictionary, and where its dictionary block lies.
    func fileWithDictionary(_ tmp: TempDir) throws -> (path: String, bytes: [UInt8], range: Range<Int>) {
        var g = TrafficGenerator(seed: 9)
        let path = try seal(g.nextEvents(300), tmp, blockRows: 32)
        let reader = try SegmentReader(path: path, sealed: true)
        let range = try #require(reader.dictionaryRange)
        return (path, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), range)
    }

    /// `bytes` with the dictionary block at `range` replaced by `block` (index and footer moved to follow it).
    func replacingDictionary(_ bytes: [UInt8], _ range: Range<Int>, with block: [UInt8]) throws -> [UInt8] {
        let footer = try bytes.withBytes { (b) throws(LogFormatError) in try SegmentFooter.parse(fileBytes: b) }
        let index = bytes[Int(footer.indexOffset)..<Int(footer.indexOffset + footer.indexLength)]
        var out = Array(bytes[0..<range.lowerBound]) + block
        let moved = SegmentFooter(
            seal: footer.seal, signature: footer.signature, indexOffset: UInt64(out.count),
            indexLength: footer.indexLength, blockCount: footer.blockCount)
        out += index
        out += moved.encoded()
        return out
    }

    /// Reads every record; the error, if any.
    func readError(_ bytes: [UInt8], _ tmp: TempDir) throws -> LogFormatError? {
        let path = tmp.path + "/hostile.seg"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            _ = try SegmentReader(path: path, sealed: true).scan()
            return nil
        } catch {
            return error
        }
    }

    @Test func everyFlippedByteOfTheDictionaryIsDetected() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (_, bytes, range) = try fileWithDictionary(tmp)
        for offset in range {
            var damaged = bytes
            damaged[offset] ^= 0x24
            let e = try readError(damaged, tmp)
            #expect(e != nil, "a flip at \(offset) went unnoticed")
            #expect(e?.path?.hasSuffix("hostile.seg") == true)
        }
        // A flip in the payload is named as the dictionary's checksum.
        var damaged = bytes
        damaged[range.lowerBound + FormatConstants.blockHeaderSize + 3] ^= 1
        let e = try #require(try readError(damaged, tmp))
        #expect(e.code == .checksumMismatch)
        #expect(e.message.contains("segment dictionary"))
        #expect(e.offset == range.lowerBound + FormatConstants.blockHeaderSize)
    }

    @Test func truncatedDictionaryBlock() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (_, bytes, range) = try fileWithDictionary(tmp)
        for cut in [1, 10, range.count - FormatConstants.blockHeaderSize, range.count - 20] {
            let e = try #require(
                try readError(try replacingDictionary(bytes, range, with: Array(bytes[range].dropLast(cut))), tmp))
            #expect([.truncated, .badMagic].contains(e.code), "\(cut): \(e)")
        }
    }

    /// A dictionary claiming more than a block may hold (header CRC made good) is refused before allocating.
    @Test func oversizedDictionaryBlock() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (_, bytes, range) = try fileWithDictionary(tmp)
        var header = try bytes.withBytes { (b) throws(LogFormatError) in
            try BlockHeader.parse(UnsafeRawBufferPointer(rebasing: b[range]))
        }
        header.rawLength = UInt32(FormatConstants.maxBlockPayload + 1)
        var w = BinaryWriter()
        header.write(into: &w)
        let block = w.bytes + bytes[(range.lowerBound + FormatConstants.blockHeaderSize)..<range.upperBound]
        let e = try #require(try readError(try replacingDictionary(bytes, range, with: block), tmp))
        #expect(e.code == .malformed && e.message.contains("64 MiB"), "\(e)")

        // A count larger than the payload can hold, with good checksums.
        var payload = BinaryWriter()
        payload.uvarint(1_000_000)
        TokenizedString.encode("only one", into: &payload)
        let lying = try SegmentDictionary.block(payload.bytes, codec: .lz4, level: 6)
        let e2 = try #require(try readError(try replacingDictionary(bytes, range, with: lying), tmp))
        #expect(e2.code == .malformed && e2.message.contains("segment dictionary"), "\(e2)")
    }

    /// Blocks naming more strings than the dictionary holds, or a dictionary the segment does not have.
    @Test func idsPastTheDictionaryAreErrors() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (_, bytes, range) = try fileWithDictionary(tmp)
        var payload = BinaryWriter()
        payload.uvarint(1)
        TokenizedString.encode("x", into: &payload)
        let small = try SegmentDictionary.block(payload.bytes, codec: .lz4, level: 6)
        let e = try #require(try readError(try replacingDictionary(bytes, range, with: small), tmp))
        #expect(e.code == .malformed)
        #expect(e.message.contains("strings of the segment dictionary, the segment has 1"), "\(e)")

        let none = try #require(try readError(try replacingDictionary(bytes, range, with: []), tmp))
        #expect(none.message.contains("the segment has no dictionary"), "\(none)")

        // Something else where the dictionary belongs: a copy of the first block.
        let reader = try SegmentReader(path: tmp.path + "/hostile.seg", sealed: true)
        let first = Array(bytes[reader.blockRange(0)])
        let other = try #require(try readError(try replacingDictionary(bytes, range, with: first), tmp))
        #expect(other.message.contains("not a segment dictionary"), "\(other)")
    }

    // MARK: Remote byte sources

    /// Serves ranges of a local file, as an object store would, and remembers what was asked for.
    final class FileFetcher: RangeFetcher {
        let bytes: [UInt8]
        let asked = Mutex<[Range<Int>]>([])
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        func fetch(_ ranges: [Range<Int>]) throws(LogFormatError) -> [[UInt8]] {
            asked.withLock { $0 += ranges }
            return ranges.map { Array(bytes[$0]) }
        }
    }

    /// Through a sparse cache (the S3 reader's byte source), the dictionary is fetched before it is read — with
    /// the first blocks a query asks for — and the records are those of the local file.
    @Test func readsThroughARemoteByteSource() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, bytes, range) = try fileWithDictionary(tmp)
        let local = try SegmentReader(path: path, sealed: true)
        let fetcher = FileFetcher(bytes)
        let cache = try RangeCacheDirectory(root: tmp.path + "/cache", capacityBytes: 1 << 30)
        let source = try cache.open(
            object: "seg", identity: "etag-1", size: bytes.count, displayPath: "s3://bucket/seg", fetcher: fetcher)
        let remote = try SegmentReader(source: source, sealed: true)
        #expect(remote.dictionaryRange == range)
        #expect(!fetcher.asked.withLock { $0 }.contains { $0.overlaps(range) })
        let wanted: [UInt32] = [1, 2, UInt32(local.recordCount) - 1]
        let got = try remote.records(at: wanted).map { RecordCodec.encode($0.event) }
        #expect(got == (try local.records(at: wanted)).map { RecordCodec.encode($0.event) })
        #expect(fetcher.asked.withLock { $0 }.contains { $0.overlaps(range) })
        #expect(try remote.scan().map { RecordCodec.encode($0.event) } == readCanonical(path))
    }

    // MARK: Verification and the archive tier

    @Test func verifierIsCleanAndFindsAFlippedDictionaryByte() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, bytes, range) = try fileWithDictionary(tmp)
        let clean = Verifier.verifySegment(path: path, options: VerifyOptions(decodeAll: true))
        #expect(clean.problems.isEmpty, "\(clean.problems)")
        var damaged = bytes
        damaged[range.upperBound - 2] ^= 0x80
        try Data(damaged).write(to: URL(fileURLWithPath: path))
        let v = Verifier.verifySegment(path: path)
        #expect(
            v.problems.contains { $0.kind == .blockDamaged && $0.offset == range.lowerBound + 48 },
            "\(v.problems)")
        #expect(!v.problems.isEmpty)
    }

    /// The archive copy has a dictionary of its own (zlib), the same records, seal and signature, and verifies.
    @Test func archiveTierKeepsRootAndSignature() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let signer = try SealSigner(rawRepresentation: RFC8032.secret1)
        var g = TrafficGenerator(seed: 17)
        let events = g.nextEvents(3_000)
        let path = try seal(events, tmp, blockRows: 256, signer: signer)
        let hot = try SegmentReader(path: path, sealed: true)
        let archived = try SegmentArchiver.archived(hot, blockRows: 1_024)
        let archivePath = tmp.path + "/archived.seg"
        try Data(archived).write(to: URL(fileURLWithPath: archivePath))
        let cold = try SegmentReader(path: archivePath, sealed: true)
        let range = try #require(cold.dictionaryRange)
        let header = try archived.withBytes { (b) throws(LogFormatError) in
            try BlockHeader.parse(UnsafeRawBufferPointer(rebasing: b[range]))
        }
        #expect(header.type == .dictionary && header.codec == .zlib)
        #expect(cold.footer?.seal.encoded() == hot.footer?.seal.encoded())
        #expect(cold.footer?.signature == hot.footer?.signature)
        #expect(try readCanonical(archivePath) == sealedCanonical(events))
        let key = try SealVerifierKey(rawRepresentation: RFC8032.public1)
        let v = Verifier.verifySegment(
            path: archivePath, options: VerifyOptions(publicKeys: [key], requireSignatures: true))
        #expect(v.problems.isEmpty, "\(v.problems)")
        #expect(v.signatureChecked)
        // The index in the archive's layouts (users' lists from the previous term's end, three-byte trace prefixes)
        // answers what the hot one does: the same users' records, every trace's blocks among those it names.
        let hotIndex = try #require(hot.index)
        let coldIndex = try #require(cold.index)
        #expect(coldIndex.relativeUserLists && coldIndex.shortTracePrefixes && coldIndex.widePackedUsers)
        #expect(!hotIndex.relativeUserLists && !hotIndex.shortTracePrefixes)
        let users = try hotIndex.allTerms(.user)
        #expect(!users.isEmpty)
        #expect(try coldIndex.allTerms(.user).map(\.0) == users.map(\.0))
        for (key, ordinals) in users { #expect(try coldIndex.postings(.user, key: key) == ordinals) }
        var holding: [TraceID: Set<Int>] = [:]
        for record in try cold.scan() where !record.event.traceID.isZero {
            holding[record.event.traceID, default: []].insert(
                coldIndex.blockIndex(forOrdinal: record.location.ordinal)!)
        }
        #expect(holding.count > 100)
        for (trace, blocks) in holding { #expect(blocks.isSubset(of: Set(try coldIndex.traceBlocks(trace)))) }
        // With the archive's own block size (65,536 rows, 32 MiB of records) the 3,000 records are one block,
        // smaller than three, with the same records, and verified.
        let whole = try SegmentArchiver.archived(hot)
        let wholePath = tmp.path + "/whole.seg"
        try Data(whole).write(to: URL(fileURLWithPath: wholePath))
        #expect(try SegmentReader(path: wholePath, sealed: true).blocks.count == 1)
        #expect(whole.count < archived.count)
        #expect(try readCanonical(wholePath) == sealedCanonical(events))
        let w = Verifier.verifySegment(
            path: wholePath, options: VerifyOptions(publicKeys: [key], requireSignatures: true))
        #expect(w.problems.isEmpty, "\(w.problems)")
    }

    /// A block is cut at a trace boundary after its rows, or inside a trace at four times the rows or at the raw
    /// bytes given (the archive's are larger than sealing's).
    @Test func blocksAreCutAtTheRawBytesGiven() {
        let order = Array(0..<100)
        let trace: (Int) -> TraceID? = { TraceID(high: 1, low: UInt64($0 / 10)) }
        let size: (Int) -> Int = { _ in 1_000 }
        #expect(ColumnSealer.blockEnd(order: order, from: 0, rows: 15, size: size, trace: trace) == 20)
        #expect(
            ColumnSealer.blockEnd(order: order, from: 0, rows: 15, maxRawBytes: 12_000, size: size, trace: trace)
                == 12)
        #expect(ColumnSealer.blockEnd(order: order, from: 0, rows: 2, size: size, trace: trace) == 8)
        #expect(ColumnSealer.maxArchiveBlockRawBytes > ColumnSealer.maxBlockRawBytes)
        #expect(ColumnSealer.maxArchiveBlockRawBytes <= FormatConstants.maxBlockPayload / 2)
    }

    /// The second block to hold a string promotes it, in the order the blocks name them; a string one block holds
    /// stays in that block. Against a model on random blocks drawn from a small pool (so strings come back often),
    /// with equal strings as different objects, an empty string and non-ASCII ones.
    @Test func theSecondBlockToHoldAStringPromotesIt() async {
        var b = SegmentDictionaryBuilder()
        b.blockWritten(own: ["a-long-string-one", "only-once", "x"])
        #expect(b.strings.isEmpty)
        b.blockWritten(own: ["x", "a-long-string-one", "other"])
        #expect(b.strings == ["x", "a-long-string-one"])
        b.blockWritten(own: ["other", "third"])
        #expect(b.strings == ["x", "a-long-string-one", "other"])

        let pool = ["", "a", "é", "e\u{301}", "user-0001", "service.namespace", "日本語のテキスト"] + (0..<40).map { "s\($0)" }
        await propertyCheck(count: 100, input: Gen.uint64()) { seed in
            var rng = Xoshiro256StarStar(seed: seed)
            var builder = SegmentDictionaryBuilder()
            var held: Set<[UInt8]> = []
            var promoted: [String] = []
            for _ in 0..<Int(rng.next() % 12) {
                // A block's own strings are distinct (by bytes) and never one promoted already.
                var own: [String] = []
                var inBlock: Set<[UInt8]> = []
                for _ in 0..<Int(rng.next() % 10) {
                    let s = String(decoding: Array(pool[Int(rng.next() % UInt64(pool.count))].utf8), as: UTF8.self)
                    let bytes = Array(s.utf8)
                    guard !promoted.contains(where: { Array($0.utf8) == bytes }), inBlock.insert(bytes).inserted
                    else { continue }
                    own.append(s)
                }
                builder.blockWritten(own: own)
                for s in own {
                    if held.remove(Array(s.utf8)) == nil { held.insert(Array(s.utf8)) } else { promoted.append(s) }
                }
            }
            #expect(builder.strings.map { Array($0.utf8) } == promoted.map { Array($0.utf8) }, "seed \(seed)")
        }
    }

    /// `ByteKeyTable.addOne` counts each key by its bytes, through the table's growth, as a dictionary does.
    @Test func byteKeyTableCountsKeys() async {
        await propertyCheck(count: 50, input: Gen.uint64()) { seed in
            var rng = Xoshiro256StarStar(seed: seed)
            var table = ByteKeyTable(capacity: 4)
            var model: [[UInt8]: UInt64] = [:]
            for _ in 0..<3_000 {
                let n = rng.next() % 700
                // Lengths 0 to 20 bytes, so the word-at-a-time hash meets tails of every size.
                let key = String(repeating: "k", count: Int(n % 21)) + (n % 3 == 0 ? "ä\(n)" : "\(n)")
                let count = table.addOne(to: key)
                model[Array(key.utf8), default: 0] += 1
                #expect(count == model[Array(key.utf8)], "seed \(seed), key \(key)")
            }
            #expect(table.count == model.count)
            for (key, count) in model { #expect(table.value(key) == count) }
        }
    }
}
