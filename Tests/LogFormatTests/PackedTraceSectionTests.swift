// The packed trace section (index layout 7, docs/format/index.md "Packed trace entries"): any ascending list of
// (prefix, block) entries round-trips and answers every look-up as the fixed-width layout does; hostile chunks are
// refused with `malformed`, never a trap or a wrong answer.
import PropertyBased
import TestSupport
import Testing

@testable import LogFormat

@Suite struct PackedTraceSectionTests {
    /// Distinct ascending entries `prefix << 32 | block` from `seed`: random prefixes (some shared by several blocks,
    /// some at 0 and 2^32 − 1) over `blocks` blocks.
    static func entries(seed: UInt64, count: Int, blocks: Int) -> [UInt64] {
        var g = SplitMix(seed)
        var set = Set<UInt64>()
        let dense = g.next() % 2 == 0
        while set.count < count {
            let prefix: UInt64 =
                switch g.next() % 16 {
                case 0: 0
                case 1: UInt64(UInt32.max)
                default: dense ? g.next() % 5_000 : g.next() & 0xffff_ffff
                }
            set.insert(prefix << 32 | g.next() % UInt64(blocks))
        }
        return set.sorted()
    }

    /// Decodes every chunk of a section the way a reader does, given its entry count.
    static func decode(_ bytes: [UInt8], count: Int, blocks: Int) throws(LogFormatError) -> [UInt64] {
        let chunks = PackedTraceSection.chunkCount(count)
        return try bytes.withBytes { (b) throws(LogFormatError) -> [UInt64] in
            var out: [UInt64] = []
            func u32(_ at: Int) -> Int {
                Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            }
            for k in 0..<chunks {
                let f = k * PackedTraceSection.fenceSize
                let end = k + 1 < chunks ? u32(f + PackedTraceSection.fenceSize + 4) : b.count
                let chunk = UnsafeRawBufferPointer(rebasing: b[u32(f + 4)..<end])
                #expect(Checksum.crc32(chunk) == UInt32(u32(f + 8)))
                out += try PackedTraceSection.decodeChunk(
                    chunk, first: UInt32(u32(f)),
                    count: min(FormatConstants.traceChunkEntries, count - k * FormatConstants.traceChunkEntries),
                    blockCount: blocks)
            }
            return out
        }
    }

    @Test func entriesRoundTrip() async {
        await propertyCheck(count: 150, input: Gen.uint64(), Gen.int(in: 1...2_000), Gen.int(in: 1...300)) {
            seed, count, blocks in
            let list = Self.entries(seed: seed, count: count, blocks: blocks)
            let (bytes, _) = PackedTraceSection.encode(list)
            do {
                let back = try Self.decode(bytes, count: list.count, blocks: blocks)
                #expect(back == list)
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test func edges() throws {
        for list: [UInt64] in [
            [0], [UInt64(UInt32.max) << 32], [0, 1, 2], [0, UInt64(UInt32.max) << 32 | 70_000],
            (0..<513).map { UInt64($0) << 32 }, (0..<1_100).map { UInt64($0 / 3) << 32 | UInt64($0 % 3) },
        ] {
            let blocks = Int(list.map { $0 & 0xffff_ffff }.max()!) + 1
            let (bytes, _) = PackedTraceSection.encode(list)
            #expect(try Self.decode(bytes, count: list.count, blocks: blocks) == list)
        }
    }

    /// A look-up's first read of a chunk stops at the first entry past its prefix: what it reads is the start of the
    /// whole chunk's entries.
    @Test func partialDecodingIsAPrefixOfTheWhole() async {
        await propertyCheck(count: 100, input: Gen.uint64(), Gen.int(in: 1...512)) { seed, count in
            let list = Self.entries(seed: seed, count: count, blocks: 30)
            let chunk = PackedTraceSection.encodeChunk(list[...])
            var g = SplitMix(seed)
            let stop = UInt32(list[Int(g.next() % UInt64(list.count))] >> 32)
            #expect(throws: Never.self) {
                try chunk.withBytes { (b) throws(LogFormatError) in
                    let part = try PackedTraceSection.decodeChunk(
                        b, first: UInt32(list[0] >> 32), count: list.count, blockCount: 30, stopAbove: stop)
                    #expect(Array(list.prefix(part.count)) == part)
                    #expect(part.count == list.count || part.last! >> 32 > UInt64(stop))
                    #expect(part.dropLast().allSatisfy { $0 >> 32 <= UInt64(stop) })
                }
            }
        }
    }

    /// Random prefixes of 15,000 traces over 25 blocks (a segment of 100,000 events): about 3.1 bytes an entry.
    @Test func randomPrefixesTakeAboutThreeBytes() {
        var g = SplitMix(42)
        let list = Set((0..<15_000).map { _ in (g.next() & 0xffff_ffff) << 32 | g.next() % 25 }).sorted()
        let (bytes, _) = PackedTraceSection.encode(list)
        #expect(bytes.count < list.count * 33 / 10)
        #expect(bytes.count > list.count * 28 / 10)
    }

    /// One chunk of three entries (prefixes 10, 13, 13; blocks 1, 0, 2), then damaged in every way the reader checks.
    @Test func hostileChunksAreMalformed() throws {
        let good = PackedTraceSection.encodeChunk([10 << 32 | 1, 13 << 32 | 0, 13 << 32 | 2])
        func decode(_ chunk: [UInt8], count: Int = 3, blocks: Int = 3) throws(LogFormatError) -> [UInt64] {
            try chunk.withBytes { (b) throws(LogFormatError) in
                try PackedTraceSection.decodeChunk(b, first: 10, count: count, blockCount: blocks)
            }
        }
        #expect(try decode(good) == [10 << 32 | 1, 13 << 32 | 0, 13 << 32 | 2])
        var cases: [(String, [UInt8], Int, Int)] = [
            ("empty", [], 3, 3),
            ("header only", Array(good.prefix(2)), 3, 3),
            ("cut short", Array(good.dropLast()), 3, 3),
            ("a byte too many", good + [0], 3, 3),
            ("fewer blocks", good, 3, 2),
            ("more entries than bits", good, 40, 3),
        ]
        var k = good
        k[0] = 32
        cases.append(("Rice parameter 32", k, 3, 3))
        var width = good
        width[1] = 33
        cases.append(("block width 33", width, 3, 3))
        var padding = good
        padding[padding.count - 1] |= 0x80
        cases.append(("padding bits", padding, 3, 3))
        // Gap 0 with the same block (an entry twice).
        cases.append(
            ("not ascending", PackedTraceSection.encodeChunk([10 << 32 | 1, 13 << 32 | 2, 13 << 32 | 2]), 3, 3))
        // A gap that carries the prefix past 2^32 − 1: first prefix 10, a gap of 2^32 − 1.
        cases.append(
            ("prefix overflow", PackedTraceSection.encodeChunk([0, UInt64(UInt32.max) << 32]), 2, 3))
        for (what, chunk, count, blocks) in cases {
            #expect(throws: LogFormatError.self, "\(what)") { _ = try decode(chunk, count: count, blocks: blocks) }
            do {
                _ = try decode(chunk, count: count, blocks: blocks)
            } catch {
                #expect(error.code == .malformed, "\(what): \(error)")
            }
        }
    }

    /// The packed and the fixed-width layouts answer every trace look-up the same, and the fixed one (written before
    /// layout 7) is still read.
    @Test func bothLayoutsAnswerTheSame() throws {
        var g = SplitMix(7)
        var blocks: [BlockLocation] = []
        for b in 0..<40 {
            let offset = UInt64(64 + b * 100)
            let first = UInt32(b * 10)
            blocks.append(
                BlockLocation(
                    offset: offset, firstOrdinal: first, recordCount: 10, minTime: 0, maxTime: 0, storedLength: 52,
                    rawLength: 52))
        }
        // 1,500 traces, prefixes drawn from a small range so that many share one, each in one to three blocks.
        var traces: [(TraceID, [UInt32])] = []
        for t in 0..<1_500 {
            let id = TraceID(high: (g.next() % 900) << 32 | UInt64(t), low: g.next())
            let first = UInt32(g.next() % 398)
            traces.append((id, Array(first...first + UInt32(g.next() % 3))))
        }
        var payloads: [[UInt8]] = []
        for packed in [true, false] {
            var builder = IndexBuilder(version: FormatConstants.indexVersion, packedTraces: packed)
            for b in blocks { builder.addBlock(b) }
            // Added in ordinal order, as a writer adds records.
            for (o, id) in traces.flatMap({ t in t.1.map { ($0, t.0) } }).sorted(by: { $0.0 < $1.0 }) {
                var e = RandomEvents.small(seed: UInt64(o))
                e.traceID = id
                e.user = nil
                builder.add(RecordTerms(e), ordinal: o)
            }
            payloads.append(builder.serialize())
        }
        #expect(payloads[0].count < payloads[1].count)
        try payloads[0].withUnsafeBytes { p0 in
            try payloads[1].withUnsafeBytes { p1 in
                let views = [
                    try SegmentIndexView(payload: p0, owner: nil), try SegmentIndexView(payload: p1, owner: nil),
                ]
                #expect(views[0].packedTraces && !views[1].packedTraces)
                for (id, _) in traces.prefix(400) {
                    #expect(try views[0].traceBlocks(id) == views[1].traceBlocks(id))
                }
                for prefix: UInt64 in [0, 899, 900, 12_345, UInt64(UInt32.max)] {
                    let id = TraceID(high: prefix << 32, low: 0)
                    #expect(try views[0].traceBlocks(id) == views[1].traceBlocks(id))
                }
                let all0 = try views[0].allTracePrefixes()
                let all1 = try views[1].allTracePrefixes()
                #expect(all0.map(\.prefix) == all1.map(\.prefix) && all0.map(\.block) == all1.map(\.block))
                try views[0].checkSections()
            }
        }
    }
}
