// The compact term layouts of a version 2 index (docs/format/index.md): users in packed groups (layout 5),
// services, workloads and groups listing blocks (layout 4). They answer what layout 1 answers for the same
// terms, every byte of them is under a checksum, and a hostile section is refused with a code that says what is
// wrong — "unsupported" for a layout this reader does not know, never "damaged".
import Foundation
import PropertyBased
import TestSupport
import Testing

@testable import LogFormat

@Suite struct IndexLayoutTests {
    /// An index of `count` random events in blocks of `perBlock`, with many users (most with an e-mail), a few
    /// groups, services and workloads.
    static func builder(seed: UInt64, count: Int, perBlock: Int, compact: Bool) -> IndexBuilder {
        var g = SplitMix(seed)
        var b = IndexBuilder(version: FormatConstants.indexVersion, compactTerms: compact)
        for i in 0..<count {
            var e = RandomEvents.small(seed: seed &+ UInt64(i))
            let u = g.next() % 300
            e.user =
                g.next() % 3 == 0
                ? nil
                : UserIdentity(
                    subject: u == 0 ? "" : "u-\(u)", email: u % 4 == 0 ? nil : "first.last\(u)@example.com",
                    groups: (0..<Int(g.next() % 3)).map { "group-\(($0 + Int(u)) % 5)" })
            e.workload = g.next() % 2 == 0 ? nil : "wl-\(g.next() % 4)"
            b.add(e, ordinal: UInt32(i))
        }
        addBlocks(&b, count: count, perBlock: perBlock)
        return b
    }

    /// Blocks of `perBlock` records over `count` records, in order.
    static func addBlocks(_ b: inout IndexBuilder, count: Int, perBlock: Int) {
        var first = 0
        while first < count {
            let n = min(perBlock, count - first)
            b.addBlock(
                BlockLocation(
                    offset: UInt64(first), firstOrdinal: UInt32(first), recordCount: UInt32(n), minTime: 0, maxTime: 0,
                    storedLength: 0, rawLength: 0))
            first += n
        }
    }

    /// Undoing a failed batch (`truncate`) leaves the index that the records before the cut build alone: terms
    /// only the cut records named are gone, the others keep their ordinals before the cut.
    @Test func aTruncatedBuilderIsOneOfTheRecordsBeforeTheCut() async {
        await propertyCheck(count: 25, input: Gen.uint64(), Gen.int(in: 0...600), Gen.int(in: 1...50)) {
            seed, count, perBlock in
            // The writer cuts where a batch began, after a whole block.
            let cut = min(count, perBlock * Int(seed % UInt64(count / perBlock + 1)))
            for compact in [false, true] {
                var truncated = Self.builder(seed: seed, count: count, perBlock: perBlock, compact: compact)
                truncated.truncate(blocks: (cut + perBlock - 1) / perBlock, records: UInt32(cut))
                let expected = Self.builder(seed: seed, count: cut, perBlock: perBlock, compact: compact)
                #expect(truncated.termCount == expected.termCount, "seed \(seed), cut \(cut) of \(count)")
                #expect(truncated.serialize() == expected.serialize(), "seed \(seed), cut \(cut) of \(count)")
            }
        }
    }

    static func withView<R>(_ payload: [UInt8], _ body: (SegmentIndexView) throws -> R) throws -> R {
        try payload.withUnsafeBytes { try body(try SegmentIndexView(payload: $0, owner: nil)) }
    }

    @Test func compactLayoutsAnswerWhatLayoutOneAnswers() async {
        await propertyCheck(count: 25, input: Gen.uint64(), Gen.int(in: 0...900), Gen.int(in: 1...50)) {
            seed, count, perBlock in
            let plain = Self.builder(seed: seed, count: count, perBlock: perBlock, compact: false).serialize()
            let compact = Self.builder(seed: seed, count: count, perBlock: perBlock, compact: true).serialize()
            #expect(throws: Never.self) {
                try Self.withView(plain) { p in
                    try Self.withView(compact) { c in
                        #expect(p.compactTerms == false)
                        #expect(c.compactTerms == (count > 0))
                        try c.checkSections()
                        let blocks = p.blocks
                        for field in [IndexField.user, .group, .service, .workload] {
                            let terms = try p.allTerms(field)
                            #expect(try c.allTerms(field).map(\.0) == terms.map(\.0))
                            #expect(c.postingsMapToBlocks(field) == (field != .user && !terms.isEmpty))
                            for (key, ordinals) in terms {
                                if c.postingsMapToBlocks(field) {
                                    let expected = Array(
                                        Set(
                                            ordinals.map { o in
                                                blocks.firstIndex {
                                                    o >= $0.firstOrdinal && o < $0.firstOrdinal + $0.recordCount
                                                }!
                                            })
                                    ).sorted()
                                    #expect(try c.termBlocks(field, key: key) == expected)
                                } else {
                                    #expect(try c.postings(field, key: key) == ordinals)
                                }
                            }
                            #expect(try c.termBlocks(field, key: Array("absent".utf8)).isEmpty)
                        }
                        #expect(try c.postings(.user, key: Array("u-9999".utf8)).isEmpty)
                    }
                }
            }
        }
    }

    @Test func compactIndexIsSmaller() throws {
        let plain = Self.builder(seed: 7, count: 5_000, perBlock: 100, compact: false).serialize()
        let compact = Self.builder(seed: 7, count: 5_000, perBlock: 100, compact: true).serialize()
        #expect(compact.count * 2 < plain.count, "\(compact.count) vs \(plain.count)")
    }

    /// docs/format/index.md, "Worked example (version 2, layout 4)", byte for byte.
    @Test func workedExampleOfLayoutFour() {
        let (bytes, crc) = Self.section([("inventory", [0]), ("orders", [0])], .blockTerms)
        var expected: [UInt8] = [1, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0]
        expected += [0, 9] + Array("inventory".utf8) + [1, 1, 0]
        expected += [0, 6] + Array("orders".utf8) + [1, 0]
        let groupCRC = Checksum.crc32(expected[12...])
        withUnsafeBytes(of: groupCRC.littleEndian) { for (i, b) in $0.enumerated() { expected[8 + i] = b } }
        #expect(bytes == expected)
        #expect(bytes.count == 36)
        #expect(crc == Checksum.crc32(expected[..<12]))
        // Layout 1 keeps the two lists of ordinals: a byte more here, a byte a record on real segments.
        #expect(Self.section([("inventory", [1]), ("orders", [0])], .terms).0.count == 37)
    }

    /// A packed group that zlib would not shrink is stored as is, `rawLength` 0; the empty key (a user whose
    /// subject is empty) can be a group's first key either way.
    @Test func smallPackedGroupsAreStoredAsIs() throws {
        let (bytes, _) = Self.section([("", [0]), ("a", [1, 2])], .packedTerms)
        // Table (12), then: shared 0, key length 0, rawLength 0, then the lists and the second term as layout 1.
        #expect(Array(bytes[12...]) == [0, 0, 0, 1, 1, 0, 0, 1, UInt8(ascii: "a"), 2, 2, 3, 0])
        // 64 terms in memcmp order (`someone.10@` before `someone.1@`).
        let many = (0..<64).map { ("someone.\($0)@example.com", [UInt32($0)]) }
            .sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
        let big = Self.section(many, .packedTerms).0
        #expect(big[12 + 2 + "someone.0@example.com".utf8.count] != 0)  // compressed: its inflated length
        for terms in [[("", [UInt32(0)]), ("a", [1, 2])], many] {
            let (section, crc) = Self.section(terms, .packedTerms)
            let payload = Self.assemble(blockCount: 10, [(.user, 5, terms.count, section, crc)])
            try Self.withView(payload) { view in
                try view.checkSections()
                for (key, list) in terms { #expect(try view.postings(.user, key: Array(key.utf8)) == list) }
                #expect(try view.allTerms(.user).map(\.0) == terms.map { Array($0.0.utf8) })
            }
        }
    }

    /// A version 2 segment sealed before the compact layouts (layout 1 for every string field) and one sealed
    /// now answer every term exactly, and each verifies: the verifier rebuilds the layouts the segment holds.
    @Test(arguments: [false, true]) func segmentsOfEitherLayoutAnswerAndVerify(compact: Bool) throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var options = WriterOptions()
        options.columnBlockRows = 7
        options.compactIndexTerms = compact
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        var events = IndexV2Tests.collidingTraces()
        for i in events.indices where i % 3 == 0 { events[i].workload = "spiffe://td/ns/n/sa/sa\(i % 4)" }
        try writer.append(events)
        let entry = try #require(try writer.seal())
        let reader = try SegmentReader(path: tmp.dataDirectory.path(relative: entry.relativePath), sealed: true)
        let index = try #require(reader.index)
        #expect(index.compactTerms == compact)
        #expect(index.postingsMapToBlocks(.service) == compact)
        var expected: [IndexField: [[UInt8]: Set<UInt32>]] = [:]
        for record in try reader.scan() {
            IndexTerms.forEach(record.event) { field, term in
                expected[field, default: [:]][term.keyBytes, default: []].insert(record.location.ordinal)
            }
        }
        #expect(expected[.workload] != nil && expected[.group] != nil)
        for (field, terms) in expected {
            for (key, ordinals) in terms { #expect(try reader.ordinals(field, key: key) == ordinals.sorted()) }
            #expect(try reader.ordinals(field, key: Array("absent".utf8)).isEmpty)
        }
        let result = Verifier.verifySegment(path: reader.path)
        #expect(result.problems.isEmpty, "\(result.problems)")
    }

    // MARK: Hostile payloads

    /// A version 2 payload of `blocks` blocks of 10 records and the given sections, CRCs right: the shape a
    /// writer makes, with whatever lies the caller put inside the sections.
    static func assemble(blockCount: Int, _ sections: [(IndexField, UInt8, Int, [UInt8], UInt32)]) -> [UInt8] {
        var w = BinaryWriter(capacity: 256)
        w.u16(FormatConstants.indexVersion)
        w.u16(UInt16(sections.count))
        w.u32(UInt32(blockCount))
        for b in 0..<blockCount {
            BlockLocation(
                offset: UInt64(b), firstOrdinal: UInt32(b * 10), recordCount: 10, minTime: 0, maxTime: 0,
                storedLength: 0, rawLength: 0
            ).write(into: &w)
        }
        var offset = w.count + sections.count * FormatConstants.sectionEntrySize + 4
        for (field, layout, termCount, bytes, crc) in sections {
            w.u8(field.rawValue)
            w.u8(layout)
            w.u16(0)
            w.u32(UInt32(termCount))
            w.u32(UInt32(offset))
            w.u32(UInt32(bytes.count))
            w.u32(crc)
            offset += bytes.count
        }
        w.u32(Checksum.crc32(w.bytes))
        for s in sections { w.raw(s.3) }
        return w.bytes
    }

    static func section(_ terms: [(String, [UInt32])], _ layout: IndexSectionLayout) -> ([UInt8], UInt32) {
        IndexBuilder.termGroups(terms.map { (Array($0.0.utf8), $0.1) }, layout: layout)
    }

    static func code(_ payload: [UInt8], _ body: (SegmentIndexView) throws -> Void) -> LogFormatError.Code? {
        do {
            try withView(payload, body)
            return nil
        } catch let error as LogFormatError {
            return error.code
        } catch {
            return nil
        }
    }

    @Test func unknownLayoutIsUnsupportedNotDamaged() {
        let (bytes, crc) = Self.section([("svc", [0])], .blockTerms)
        for layout: UInt8 in [11, 255] {
            #expect(
                Self.code(Self.assemble(blockCount: 2, [(.service, layout, 1, bytes, crc)])) { _ in }
                    == .unsupportedVersion)
        }
        // Known layouts on the wrong field are damage (7: packed trace entries, 8: wide packed terms).
        #expect(Self.code(Self.assemble(blockCount: 2, [(.service, 7, 1, bytes, crc)])) { _ in } == .malformed)
        #expect(Self.code(Self.assemble(blockCount: 2, [(.service, 10, 1, bytes, crc)])) { _ in } == .malformed)
        #expect(Self.code(Self.assemble(blockCount: 2, [(.traceID, 9, 1, bytes, crc)])) { _ in } == .malformed)
        #expect(Self.code(Self.assemble(blockCount: 2, [(.user, 4, 1, bytes, crc)])) { _ in } == .malformed)
        #expect(Self.code(Self.assemble(blockCount: 2, [(.traceID, 5, 1, bytes, crc)])) { _ in } == .malformed)
        #expect(Self.code(Self.assemble(blockCount: 2, [(.service, 4, 1, bytes, crc)])) { _ in } == nil)
    }

    @Test func blockListsNamingMissingBlocksAreMalformed() {
        let key = Array("svc".utf8)
        // Block 2 of 2, a count above the block count, a count the runs do not fill.
        for (list, count) in [([UInt32(2)], 1), ([0, 1, 2], 3), ([0], 2)] {
            var w = BinaryWriter(capacity: 32)
            PostingRuns.encode(list, into: &w)
            var group = BinaryWriter(capacity: 32)
            group.uvarint(0)
            group.uvarint(key.count)
            group.raw(key)
            group.uvarint(count)
            group.uvarint(w.count)
            group.raw(w.bytes)
            var table = BinaryWriter(capacity: 16)
            table.u32(1)
            table.u32(12)
            table.u32(Checksum.crc32(group.bytes))
            let payload = Self.assemble(
                blockCount: 2, [(.service, 4, 1, table.bytes + group.bytes, Checksum.crc32(table.bytes))])
            #expect(Self.code(payload) { _ = try $0.termBlocks(.service, key: key) } == .malformed, "\(list) \(count)")
            #expect(Self.code(payload) { try $0.checkSections() } == .malformed)
        }
    }

    @Test func lyingTermCountsAreMalformed() {
        let (bytes, crc) = Self.section((0..<20).map { ("svc-\($0)", [UInt32($0 % 2)]) }, .blockTerms)
        // 20 terms make 2 groups; a directory claiming 40 (3 groups) or 10 (1 group) does not hold its table.
        for claimed in [40, 10, 0] {
            let payload = Self.assemble(blockCount: 2, [(.service, 4, claimed, bytes, crc)])
            #expect(Self.code(payload) { _ = try $0.termBlocks(.service, key: Array("svc-3".utf8)) } == .malformed)
        }
        // 33 terms claimed over 2 groups of 16 (the second group holding 4): its bytes are not its terms.
        let payload = Self.assemble(blockCount: 2, [(.service, 4, 17, bytes, crc)])
        #expect(Self.code(payload) { try $0.checkSections() } == .malformed)
    }

    @Test func packedGroupLiesAreRefused() throws {
        let terms = (0..<100).map { ("user-\($0)@example.com", [UInt32($0)]) }
        let (bytes, crc) = Self.section(terms, .packedTerms)
        let good = Self.assemble(blockCount: 10, [(.user, 5, terms.count, bytes, crc)])
        var got: [UInt32] = []
        #expect(Self.code(good) { got = try $0.postings(.user, key: Array("user-70@example.com".utf8)) } == nil)
        #expect(got == [70])
        // The inflated length of the first group (after its first key) told one byte short, then far too long:
        // the group's CRC made right again, so only the length is wrong.
        let firstKey = Array("user-0@example.com".utf8)
        let lengthAt = 4 + 2 * 8 + 2 + firstKey.count
        var rawLength = 0
        var lengthBytes = 0
        while true {
            let byte = bytes[lengthAt + lengthBytes]
            rawLength |= Int(byte & 0x7F) << (7 * lengthBytes)
            lengthBytes += 1
            if byte < 0x80 { break }
        }
        let group1 = Int(bytes[4 + 8]) | Int(bytes[4 + 9]) << 8
        for (claimed, expected) in [
            (rawLength - 1, LogFormatError.Code.compression),
            (FormatConstants.maxPackedGroupBytes + 1, .malformed),
        ] {
            var w = BinaryWriter(capacity: 8)
            w.uvarint(claimed)
            var lied = Array(bytes[..<lengthAt]) + w.bytes + Array(bytes[(lengthAt + lengthBytes)...])
            let shift = w.count - lengthBytes
            // Group 1 moves by `shift`; group 0's CRC covers its new bytes.
            let newGroup1 = group1 + shift
            lied[4 + 8] = UInt8(newGroup1 & 0xFF)
            lied[4 + 9] = UInt8(newGroup1 >> 8 & 0xFF)
            let g0crc = Checksum.crc32(lied[(4 + 16)..<newGroup1])
            withUnsafeBytes(of: g0crc.littleEndian) { for (i, b) in $0.enumerated() { lied[4 + 4 + i] = b } }
            let tableCRC = Checksum.crc32(lied[..<(4 + 16)])
            let payload = Self.assemble(blockCount: 10, [(.user, 5, terms.count, lied, tableCRC)])
            #expect(Self.code(payload) { _ = try $0.postings(.user, key: firstKey) } == expected, "\(claimed)")
            // The second group is untouched and still answers.
            got = []
            #expect(Self.code(payload) { got = try $0.postings(.user, key: Array("user-70@example.com".utf8)) } == nil)
            #expect(got == [70])
        }
    }

    @Test func everyCutAndFlipOfACompactIndexIsCaught() throws {
        Self.expectEveryCutAndFlipCaught(
            Self.builder(seed: 11, count: 400, perBlock: 40, compact: true).serialize(), step: 7, seed: 5)
    }

    /// Cuts of `payload` every `step` bytes and 400 random byte flips: each is refused by a full check.
    static func expectEveryCutAndFlipCaught(_ payload: [UInt8], step: Int, seed: UInt64) {
        for cut in stride(from: 0, to: payload.count, by: step) {
            #expect(Self.code(Array(payload[..<cut])) { try $0.checkSections() } != nil, "cut at \(cut)")
        }
        var rng = SplitMix(seed)
        for _ in 0..<400 {
            var damaged = payload
            let at = Int(rng.next() % UInt64(payload.count))
            damaged[at] ^= UInt8(1 + rng.next() % 255)
            #expect(Self.code(damaged) { try $0.checkSections() } != nil, "flip at \(at)")
        }
    }
}
