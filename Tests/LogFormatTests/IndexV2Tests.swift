// The version 2 index: postings as runs round-trip for any ascending list, and a sealed segment's index answers
// every term exactly, trace ids included when their first four bytes collide across blocks.
import Foundation
import PropertyBased
import Testing
import TestSupport

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

    /// Events of traces whose ids share their first four bytes, spread over several blocks.
    static func collidingTraces() -> [AuditEvent] {
        var events: [AuditEvent] = []
        for t in 0..<40 {
            let trace = TraceID(high: 0xABCD_EF01_0000_0000 | UInt64(t % 3), low: UInt64(t))
            for k in 0..<(t % 5 + 1) {
                var e = RandomEvents.small(seed: UInt64(t * 10 + k))
                e.traceID = trace
                e.user = UserIdentity(subject: "user-\(t % 4)", groups: ["g\(t % 2)"])
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
        #expect(index.version == FormatConstants.indexVersion)
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
        // The verifier rebuilds the same bytes.
        let result = Verifier.verifySegment(path: reader.path)
        #expect(result.problems.isEmpty, "\(result.problems)")
    }
}
