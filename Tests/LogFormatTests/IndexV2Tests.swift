// The version 2 index: postings as runs round-trip for any ascending list, and a sealed segment's index answers
// every term exactly, trace ids included when their first four bytes collide across blocks.
import Foundation
import PropertyBased
import TestSupport
import Testing

@testable import LogFormat

@Suite struct IndexV2Tests {
    /// An ascending list of ordinals made of runs and gaps, from `seed`.
    static func ordinals(seed: UInt64, count: Int) -> [UInt32] {
        var g = SplitMix(seed)
        var out: [UInt32] = []
        var next: UInt64 = g.next() % 3 == 0 ? 0 : g.next() % 1_000
        while out.count < count && next < UInt64(UInt32.max) {
            let run = g.next() % 4 == 0 ? 1 : Int(g.next() % 40) + 1
            for k in 0..<run where out.count < count && next + UInt64(k) <= UInt64(UInt32.max) {
                out.append(UInt32(next + UInt64(k)))
            }
            next += UInt64(run) + g.next() % (g.next() % 2 == 0 ? 3 : 100_000)
        }
        return out
    }

    @Test func postingRunsRoundTrip() async {
        await propertyCheck(count: 200, input: Gen.uint64(), Gen.int(in: 0...3_000)) { seed, count in
            let list = Self.ordinals(seed: seed, count: count)
            var w = BinaryWriter(capacity: 64)
            PostingRuns.encode(list, into: &w)
            w.bytes.withUnsafeBytes { b in
                var back: [UInt32] = []
                var r = BinaryReader(b)
                #expect(throws: Never.self) { try PostingRuns.decode(&r, count: list.count, into: &back) }
                #expect(back == list)
                #expect(r.remaining == 0)
            }
        }
    }

    @Test func postingRunsAtTheEdges() throws {
        for list: [UInt32] in [[], [0], [0, 1], [UInt32.max], [UInt32.max - 1, UInt32.max], [5, 7, 8, 9, 20]] {
            var w = BinaryWriter(capacity: 16)
            PostingRuns.encode(list, into: &w)
            try w.bytes.withUnsafeBytes { b in
                var back: [UInt32] = []
                var r = BinaryReader(b)
                try PostingRuns.decode(&r, count: list.count, into: &back)
                #expect(back == list)
            }
        }
        // A run of 100,000 consecutive ordinals is two bytes of token and three of length.
        var w = BinaryWriter(capacity: 16)
        PostingRuns.encode(Array(0..<100_000), into: &w)
        #expect(w.count == 4)
    }

    @Test func hostileRunsAreRefused() {
        // A run longer than the list says, and a run past 2^32 − 1.
        for (bytes, count): ([UInt8], Int) in [([0x01, 0x05], 3), ([0xFE, 0xFF, 0xFF, 0xFF, 0x1F, 0x01], 2)] {
            bytes.withUnsafeBytes { b in
                var r = BinaryReader(b)
                var out: [UInt32] = []
                #expect(throws: LogFormatError.self) { try PostingRuns.decode(&r, count: count, into: &out) }
            }
        }
    }

    @Test func damagedTermGroupIsFoundWhenUsed() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var options = WriterOptions()
        options.columnBlockRows = 7
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        // Enough users for several packed groups of 64 terms.
        let many = (0..<150).map { u in
            var e = RandomEvents.small(seed: UInt64(1_000 + u))
            e.user = UserIdentity(subject: "many-\(u)", email: "many.\(u)@example.com", groups: [])
            return e
        }
        try writer.append(Self.collidingTraces() + many)
        let entry = try #require(try writer.seal())
        let path = tmp.dataDirectory.path(relative: entry.relativePath)
        let users = try #require(try SegmentReader(path: path, sealed: true).index?.allTerms(.user))
        #expect(users.count > 2 * FormatConstants.termsPerPackedGroup)
        // The user section comes first; its last group holds the last keys, its first key stored whole and the
        // rest compressed. Damage a byte of the compressed rest.
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        let lastKey = try #require(users.last?.0)
        let groupFirst = users[
            (users.count - 1) / FormatConstants.termsPerPackedGroup * FormatConstants.termsPerPackedGroup
        ].0
        let at = try #require(file.range(of: Data(groupFirst), options: .backwards)?.upperBound)
        try Damage.flip(path, at: at + 3)
        let reader = try SegmentReader(path: path, sealed: true)
        #expect(try !reader.ordinals(.user, key: users[0].0).isEmpty)  // another group: still answers
        do {
            _ = try reader.ordinals(.user, key: lastKey)
            Issue.record("a damaged term group was used")
        } catch {
            #expect(error.code == .checksumMismatch)
            #expect(error.message.contains("index term group"))
            #expect(error.path == path)
        }
    }

    /// A trace chunk's checksum is checked once per reader when it passes, and on every look-up while it fails: a
    /// damaged chunk is refused each time it is used, and look-ups into another chunk still answer.
    @Test func damagedTraceChunkIsRefusedEveryTimeItIsUsed() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        // More traces than one chunk holds; the prefix (the id's first four bytes) of trace i is 0xC0DE0000 + i.
        let count = FormatConstants.traceChunkEntries + 300
        let ids = (0..<count).map { TraceID(high: (0xC0DE_0000 + UInt64($0)) << 32 | 7, low: UInt64($0)) }
        try writer.append(
            ids.enumerated().map { (i, id) in
                var e = RandomEvents.small(seed: UInt64(i))
                e.traceID = id
                return e
            })
        let entry = try #require(try writer.seal())
        let path = tmp.dataDirectory.path(relative: entry.relativePath)
        let healthy = try SegmentReader(path: path, sealed: true)
        let inFirst = try healthy.ordinals(.traceID, key: ids[10].bytes)
        #expect(inFirst.count == 1)
        // A trace in the second chunk of the packed section (layout 7): the chunk's fence holds its first prefix
        // (little-endian, once in the file), then its offset from the section's start; damage the chunk's last byte.
        let late = count - 5
        let fence = withUnsafeBytes(of: UInt32(0xC0DE_0000 + FormatConstants.traceChunkEntries).littleEndian) {
            Data($0)
        }
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        let at = try #require(file.range(of: fence))
        #expect(file.range(of: fence, in: at.upperBound..<file.count) == nil)
        let offset = file[at.upperBound..<at.upperBound + 4].withUnsafeBytes { Int($0.loadUnaligned(as: UInt32.self)) }
        let sectionStart = at.lowerBound - PackedTraceSection.fenceSize
        // The trace section is the last before the rollup; the chunk ends where the rollup section begins, so
        // damage a byte inside the chunk: its header's block width.
        try Damage.flip(path, at: sectionStart + offset + 1)
        let reader = try SegmentReader(path: path, sealed: true)
        for _ in 0..<2 {
            #expect(try reader.ordinals(.traceID, key: ids[10].bytes) == inFirst)
            #expect(
                try reader.traceOrdinals([ids[10], ids[11]])
                    == (inFirst + healthy.ordinals(.traceID, key: ids[11].bytes)).sorted())
            do {
                _ = try reader.traceOrdinals([ids[10], ids[late]])
                Issue.record("a damaged trace chunk was used")
            } catch {
                #expect(error.code == .checksumMismatch)
                #expect(error.message.contains("trace chunk 1"))
                #expect(error.path == path)
            }
        }
    }

    /// Events of traces whose ids share their first four bytes, spread over several blocks.
    static func collidingTraces() -> [AuditEvent] {
        var events: [AuditEvent] = []
        for t in 0..<40 {
            let trace = TraceID(high: 0xABCD_EF01_0000_0000 | UInt64(t % 3), low: UInt64(t))
            for k in 0..<(t % 5 + 1) {
                var e = RandomEvents.small(seed: UInt64(t * 10 + k))
                e.traceID = trace
                // 25 users, some with an e-mail (its postings equal the subject's, stored once), over several
                // groups of 16 terms.
                e.user = UserIdentity(
                    subject: "user-\(t % 25)", email: t % 25 % 3 == 0 ? "user-\(t % 25)@example.com" : nil,
                    groups: ["g\(t % 2)"])
                events.append(e)
            }
        }
        return events
    }

    @Test func sealedIndexAnswersEveryTermExactly() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var options = WriterOptions()
        options.columnBlockRows = 7
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        let events = Self.collidingTraces()
        try writer.append(events)
        let entry = try #require(try writer.seal())
        let reader = try SegmentReader(path: tmp.dataDirectory.path(relative: entry.relativePath), sealed: true)
        let index = try #require(reader.index)
        #expect(index.version == FormatConstants.indexVersionRollup)
        #expect(reader.blocks.count > 5)
        let stored = try reader.scan()
        #expect(stored.count == events.count)
        var expected: [IndexField: [[UInt8]: [UInt32]]] = [:]
        for record in stored {
            IndexTerms.forEach(record.event) { field, term in
                expected[field, default: [:]][term.keyBytes, default: []].append(record.location.ordinal)
            }
        }
        for (field, terms) in expected {
            for (key, ordinals) in terms {
                let got = try reader.ordinals(field, key: key)
                #expect(got == Array(Set(ordinals)).sorted(), "\(field): \(got) vs \(ordinals)")
            }
        }
        // Every trace shares its prefix with a dozen others, in other blocks: none of their records leak in.
        #expect(try reader.ordinals(.traceID, key: TraceID(high: 0xABCD_EF01_0000_0000, low: 999).bytes).isEmpty)
        #expect(try reader.ordinals(.user, key: Array("nobody".utf8)).isEmpty)
        try reader.checkIndex()
        // Every key of the user section is a term of the expected set, and the other way round.
        let users = try index.allTerms(.user)
        #expect(users.count == expected[.user]?.count)
        #expect(users.count > FormatConstants.termsPerGroup)
        for (key, ordinals) in users { #expect(expected[.user]?[key].map { Array(Set($0)).sorted() } == ordinals) }
        // The verifier rebuilds the same bytes.
        let result = Verifier.verifySegment(path: reader.path)
        #expect(result.problems.isEmpty, "\(result.problems)")
    }
}
