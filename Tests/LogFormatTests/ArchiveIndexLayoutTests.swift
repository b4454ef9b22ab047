// The archive tier's index layouts (docs/format/index.md): users whose posting lists count from the previous term's
// end (layout 9) and trace ids by their first three bytes (layout 10). They answer what the hot tier's layouts answer
// (a trace look-up: the blocks of every trace sharing the shorter prefix), their bytes are a function of the terms,
// and hostile lists and chunks are refused as malformed, never a trap.
import PropertyBased
import TestSupport
import Testing

@testable import LogFormat

@Suite struct ArchiveIndexLayoutTests {
    /// Ascending distinct ordinals from `seed`, in runs and single ordinals, below 2^32.
    static func ordinals(seed: UInt64, count: Int) -> [UInt32] {
        var g = SplitMix(seed)
        var out: [UInt32] = []
        var next = UInt64(g.next() % 3 == 0 ? UInt64(UInt32.max) - 5_000 : g.next() % 200_000)
        while out.count < count && next <= UInt64(UInt32.max) {
            let run = g.next() % 4 == 0 ? 1 + g.next() % 6 : 1
            for _ in 0..<run where out.count < count && next <= UInt64(UInt32.max) {
                out.append(UInt32(next))
                next += 1
            }
            next += g.next() % 3 == 0 ? g.next() % 100_000 : g.next() % 6
        }
        return out
    }

    /// decode(encode(list)) is the list from any base, the end returned is the next list's base, and the bytes are a
    /// function of the list (encoding what was decoded gives the same bytes).
    @Test func relativeListsRoundTrip() async {
        await propertyCheck(count: 300, input: Gen.uint64(), Gen.int(in: 0...40), Gen.uint64()) { seed, count, b in
            let list = Self.ordinals(seed: seed, count: count)
            let base = b % 3 == 0 ? 0 : b % (UInt64(UInt32.max) + 1)
            var w = BinaryWriter(capacity: 64)
            PostingRuns.encode(list, from: base, into: &w)
            #expect(throws: Never.self) {
                try w.bytes.withBytes { (raw) throws(LogFormatError) in
                    var r = BinaryReader(raw)
                    var back: [UInt32]? = []
                    let end = try PostingRuns.decode(&r, count: list.count, from: base, into: &back)
                    #expect(r.remaining == 0)
                    #expect(back == list)
                    #expect(end == (list.last.map { UInt64($0) + 1 } ?? base))
                    var again = BinaryWriter(capacity: 64)
                    PostingRuns.encode(back ?? [], from: base, into: &again)
                    #expect(again.bytes == w.bytes)
                }
            }
        }
    }

    @Test func hostileRelativeListsAreMalformed() {
        func decode(_ bytes: [UInt8], count: Int, base: UInt64) -> LogFormatError.Code? {
            do {
                try bytes.withBytes { (raw) throws(LogFormatError) in
                    var r = BinaryReader(raw)
                    var out: [UInt32]? = []
                    try PostingRuns.decode(&r, count: count, from: base, into: &out)
                }
                return nil
            } catch {
                return error.code
            }
        }
        // zigzag(−6) = 11: six records before base 5 is record −1.
        #expect(decode([11 << 1], count: 1, base: 5) == .malformed)
        #expect(decode([11 << 1], count: 1, base: 6) == nil)
        // A run of 2 + 3 records in a list of 4.
        #expect(decode([1, 3], count: 4, base: 0) == .malformed)
        // Past 2^32 − 1: a gap of 2^32 from base 0 (zigzag 2^33).
        var w = BinaryWriter(capacity: 16)
        w.uvarint(UInt64(1) << 34)
        #expect(decode(w.bytes, count: 1, base: 0) == .malformed)
        // Fewer tokens than the count: the bytes run out.
        #expect(decode([4], count: 2, base: 0) != nil)
    }

    /// An index of `count` records sorted by user (as sealing lays them out): each user's records a few apart,
    /// subjects and e-mails (in another order), some records without a user.
    static func builder(seed: UInt64, count: Int, layout: IndexSectionLayout, short: Bool = false) -> IndexBuilder {
        var g = SplitMix(seed)
        var b = IndexBuilder(
            version: FormatConstants.indexVersionRollup, widePackedUsers: layout != .packedTerms,
            relativeUserLists: layout == .relativeWidePackedTerms, shortTracePrefixes: short)
        var user = 0
        var trace: UInt64 = seed
        for i in 0..<count {
            var e = RandomEvents.small(seed: seed &+ UInt64(i))
            if g.next() % 5 == 0 { user += 1 + Int(g.next() % 3) }
            if g.next() % 3 == 0 { trace &+= 1 }
            e.traceID = TraceID(high: trace &* 0x9E37_79B9_7F4A_7C15, low: 1)
            let digits = String(user)
            e.user =
                g.next() % 3 == 0
                ? nil
                : UserIdentity(
                    subject: user == 0 ? "" : "u-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits,
                    email: user % 5 == 0 ? nil : "\(["ana", "bo", "cy"][user % 3]).n\(user % 97)@example.com",
                    groups: [])
            b.add(e, ordinal: UInt32(i))
        }
        IndexLayoutTests.addBlocks(&b, count: count, perBlock: 100)
        return b
    }

    /// Layout 9 answers every user look-up as layouts 5 and 8 do, checks, is smaller than layout 8 on records in
    /// user order, and the verifier's rebuild (the same builder options, from the view) gives the same bytes.
    @Test func relativeUserListsAnswerWhatLayoutEightAnswers() async {
        await propertyCheck(count: 20, input: Gen.uint64(), Gen.int(in: 0...3_000)) { seed, count in
            let payloads = [IndexSectionLayout.packedTerms, .widePackedTerms, .relativeWidePackedTerms].map {
                Self.builder(seed: seed, count: count, layout: $0).serialize()
            }
            #expect(throws: Never.self) {
                try IndexLayoutTests.withView(payloads[1]) { wide in
                    try IndexLayoutTests.withView(payloads[2]) { relative in
                        try IndexLayoutTests.withView(payloads[0]) { narrow in
                            #expect(relative.relativeUserLists == (count > 0 && relative.termCount(.user) > 0))
                            #expect(!wide.relativeUserLists)
                            try relative.checkSections()
                            let terms = try wide.allTerms(.user)
                            #expect(try relative.allTerms(.user).map(\.0) == terms.map(\.0))
                            #expect(try relative.allTerms(.user).map(\.1) == terms.map(\.1))
                            #expect(try narrow.allTerms(.user).map(\.1) == terms.map(\.1))
                            for (key, list) in terms { #expect(try relative.postings(.user, key: key) == list) }
                            for absent in ["", "u-9999999", "zz", "ana"]
                            where !terms.contains(where: { $0.0 == Array(absent.utf8) }) {
                                #expect(try relative.postings(.user, key: Array(absent.utf8)).isEmpty)
                            }
                        }
                    }
                }
            }
            if count > 1_000 {
                #expect(payloads[2].count < payloads[1].count, "\(payloads[2].count) vs \(payloads[1].count)")
            }
        }
    }

    /// A layout 9 group whose list starts before record 0, names a record past the block table, or whose back
    /// reference is its first term is malformed on look-up and on a full check.
    @Test func hostileRelativeGroupsAreMalformed() {
        func payload(_ lists: [(String, Int, [UInt8])]) -> [UInt8] {
            var body = BinaryWriter(capacity: 64)
            var previous: [UInt8] = []
            for (t, (key, count, list)) in lists.enumerated() {
                let k = Array(key.utf8)
                if t > 0 {
                    var shared = 0
                    while shared < min(previous.count, k.count) && previous[shared] == k[shared] { shared += 1 }
                    body.uvarint(shared)
                    body.uvarint(k.count - shared)
                    body.raw(k[shared...])
                }
                body.uvarint(count)
                body.uvarint(list.count)
                body.raw(list)
                previous = k
            }
            var group = BinaryWriter(capacity: 64)
            let first = Array(lists[0].0.utf8)
            group.uvarint(0)
            group.uvarint(first.count)
            group.raw(first)
            group.uvarint(0)  // stored as is
            group.raw(body.bytes)
            var table = BinaryWriter(capacity: 16)
            table.u32(1)
            table.u32(12)
            table.u32(Checksum.crc32(group.bytes))
            return IndexLayoutTests.assemble(
                blockCount: 2,
                [
                    (
                        .user, IndexSectionLayout.relativeWidePackedTerms.rawValue, lists.count,
                        table.bytes + group.bytes,
                        Checksum.crc32(table.bytes)
                    )
                ])
        }
        // a → [3], b → [4, 5] (zigzag 0, run), c → the same as b: well formed.
        let good = payload([("a", 1, [6 << 1]), ("b", 2, [1, 0]), ("c", 2, [])])
        var got: [UInt32] = []
        #expect(IndexLayoutTests.code(good) { got = try $0.postings(.user, key: Array("c".utf8)) } == nil)
        #expect(got == [4, 5])
        #expect(IndexLayoutTests.code(good) { try $0.checkSections() } == nil)
        let cases: [(String, String, [(String, Int, [UInt8])])] = [
            ("before record 0", "b", [("a", 1, [6 << 1]), ("b", 1, [9 << 1])]),  // 3 + 1 − 5
            ("past the block table", "a", [("a", 1, [40 << 1])]),  // record 20 of 20
            ("first term refers back", "a", [("a", 1, [])]),
            ("run past the count", "a", [("a", 2, [1, 1])]),
        ]
        for (what, key, lists) in cases {
            let p = payload(lists)
            #expect(
                IndexLayoutTests.code(p) { _ = try $0.postings(.user, key: Array(key.utf8)) } == .malformed, "\(what)")
            #expect(IndexLayoutTests.code(p) { try $0.checkSections() } == .malformed, "\(what)")
        }
    }

    /// Traces whose ids share prefixes of three and four bytes in 40 blocks.
    static func traces(seed: UInt64) -> [(TraceID, [UInt32])] {
        var g = SplitMix(seed)
        return (0..<1_500).map { t in
            // First three bytes from a small range (many shared), the fourth free: layout 10 merges what 7 tells apart.
            let high = (g.next() % 700) << 40 | (g.next() % 4) << 32 | UInt64(t)
            let first = UInt32(g.next() % 398)
            return (TraceID(high: high, low: g.next()), Array(first...first + UInt32(g.next() % 3)))
        }
    }

    static func traceIndex(_ traces: [(TraceID, [UInt32])], short: Bool) -> [UInt8] {
        var builder = IndexBuilder(version: FormatConstants.indexVersionRollup, shortTracePrefixes: short)
        for b in 0..<40 {
            builder.addBlock(
                BlockLocation(
                    offset: UInt64(64 + b * 100), firstOrdinal: UInt32(b * 10), recordCount: 10, minTime: 0,
                    maxTime: 0, storedLength: 52, rawLength: 52))
        }
        for (o, id) in traces.flatMap({ t in t.1.map { ($0, t.0) } }).sorted(by: { $0.0 < $1.0 }) {
            var e = RandomEvents.small(seed: UInt64(o))
            e.traceID = id
            e.user = nil
            builder.add(RecordTerms(e), ordinal: o)
        }
        return builder.serialize()
    }

    /// Layout 10 names, for any id, exactly the blocks of the traces sharing its first three bytes (layout 7: four),
    /// so it never misses a block a trace is in; its prefixes are the ids' first three bytes; it is smaller.
    @Test func threeBytePrefixesNameEveryBlockOfTheirTraces() throws {
        let traces = Self.traces(seed: 9)
        let long = Self.traceIndex(traces, short: false)
        let short = Self.traceIndex(traces, short: true)
        #expect(short.count < long.count)
        func expected(_ id: TraceID, bits: Int) -> [Int] {
            let shift = UInt64(64 - bits)
            let blocks = traces.filter { $0.0.high >> shift == id.high >> shift }.flatMap { $0.1.map { Int($0 / 10) } }
            return Array(Set(blocks)).sorted()
        }
        try IndexLayoutTests.withView(long) { l in
            try IndexLayoutTests.withView(short) { s in
                #expect(s.shortTracePrefixes && !l.shortTracePrefixes)
                #expect(s.tracePrefixBits == 24 && l.tracePrefixBits == 32 && s.packedTraces)
                try s.checkSections()
                for (id, _) in traces.prefix(500) {
                    #expect(try s.traceBlocks(id) == expected(id, bits: 24))
                    #expect(try l.traceBlocks(id) == expected(id, bits: 32))
                }
                for high: UInt64 in [0, 699 << 40, 700 << 40, UInt64.max] {
                    let id = TraceID(high: high, low: 1)
                    #expect(try s.traceBlocks(id) == expected(id, bits: 24))
                }
                let all = try s.allTracePrefixes()
                #expect(all.allSatisfy { $0.prefix < 1 << 24 })
                let wanted = Set(traces.flatMap { t in t.1.map { (t.0.high >> 40) << 32 | UInt64($0 / 10) } })
                #expect(all.map { UInt64($0.prefix) << 32 | UInt64($0.block) } == wanted.sorted())
            }
        }
    }

    /// A layout 10 chunk or fence holding a prefix of more than 24 bits is malformed; the same chunk read as layout 7
    /// is not.
    @Test func widePrefixesInLayoutTenAreMalformed() throws {
        let chunk = PackedTraceSection.encodeChunk([0, UInt64(1 << 24) << 32])
        func decode(first: UInt32, bits: Int) -> LogFormatError.Code? {
            do {
                _ = try chunk.withBytes { (b) throws(LogFormatError) in
                    try PackedTraceSection.decodeChunk(b, first: first, count: 2, blockCount: 1, prefixBits: bits)
                }
                return nil
            } catch {
                return error.code
            }
        }
        #expect(decode(first: 0, bits: 32) == nil)
        #expect(decode(first: 0, bits: 24) == .malformed)
        let small = PackedTraceSection.encodeChunk([0, UInt64(5) << 32])
        #expect(
            try small.withBytes { (b) throws(LogFormatError) in
                try PackedTraceSection.decodeChunk(b, first: 1 << 24, count: 2, blockCount: 1, prefixBits: 32).count
            } == 2)
        #expect(throws: LogFormatError.self) {
            _ = try small.withBytes { (b) throws(LogFormatError) in
                try PackedTraceSection.decodeChunk(b, first: 1 << 24, count: 2, blockCount: 1, prefixBits: 24)
            }
        }
        // A whole section: an entry past 2^24 − 1, CRCs right, refused on look-up and on a full check.
        let (bytes, crc) = PackedTraceSection.encode([1 << 32, UInt64(1 << 24) << 32])
        let p = IndexLayoutTests.assemble(
            blockCount: 1, [(.traceID, IndexSectionLayout.tracePacked24.rawValue, 2, bytes, crc)])
        #expect(IndexLayoutTests.code(p) { try $0.checkSections() } == .malformed)
        #expect(
            IndexLayoutTests.code(p) { _ = try $0.traceBlocks(TraceID(high: UInt64.max, low: 0)) } == .malformed)
        let q = IndexLayoutTests.assemble(
            blockCount: 1, [(.traceID, IndexSectionLayout.tracePacked.rawValue, 2, bytes, crc)])
        #expect(IndexLayoutTests.code(q) { try $0.checkSections() } == nil)
    }

    /// Every cut and byte flip of an archive index (layouts 9 and 10) is caught by a full check.
    @Test func everyCutAndFlipOfAnArchiveIndexIsCaught() throws {
        let payload = Self.builder(seed: 3, count: 600, layout: .relativeWidePackedTerms, short: true).serialize()
        try IndexLayoutTests.withView(payload) { v in
            #expect(v.relativeUserLists && v.shortTracePrefixes)
            try v.checkSections()
        }
        IndexLayoutTests.expectEveryCutAndFlipCaught(payload, step: 5, seed: 8)
    }
}
