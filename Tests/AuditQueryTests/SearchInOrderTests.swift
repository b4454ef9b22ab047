// `searchInOrder` hands a search's answer out in batches as its pieces are read: one batch after another they must
// be `searchHandles`' answer, record for record and line for line, whatever order the pieces are read in, with
// segments whose times interleave, retry copies across segments, unsealed tails, several nodes and time ranges; no
// batch may hold a block only earlier batches name (so that blocks are freed once their lines are written); and a
// record before the time already handed out is refused rather than written out of order.
import Foundation
import PropertyBased
import Synchronization
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat
@testable import StoreQuery

@Suite struct SearchInOrderTests {
    /// Every batch of `search`, its pieces merged in `order`: the batches of the start, then of each piece.
    static func batches(_ search: SearchInOrder, order: [Int]) throws -> [[RecordHandles]] {
        var merge = search.merge()
        var out = [try merge.start()]
        for i in order { out.append(try merge.add(i, try search.read(i))) }
        return out
    }

    /// The batches, one after another, are `found`'s answer; none holds a block that only earlier ones name.
    /// (A batch may hold the block of a copy it dropped, which an earlier batch named: `copiesKept` checks blocks.)
    static func expectSame(
        _ batches: [RecordHandles], _ found: RecordHandles, _ what: String, copiesKept: Bool = true
    ) throws {
        #expect(batches.flatMap { $0.handles.map(\.location) } == found.handles.map(\.location), "\(what): records")
        var expected = RowJSON(found)
        var lines: [[UInt8]] = []
        for h in found.handles {
            var line: [UInt8] = []
            try expected.line(h, into: &line)
            lines.append(line)
        }
        // No batch holds a block that only earlier batches name: a block is let go after its last line.
        let named = batches.map { b in
            Set(b.handles.filter { $0.block >= 0 }.map { ObjectIdentifier(b.blocks[Int($0.block)]) })
        }
        for k in batches.indices where copiesKept {
            let before = named[..<k].reduce(into: Set<ObjectIdentifier>()) { $0.formUnion($1) }
            let fromHere = named[k...].reduce(into: Set<ObjectIdentifier>()) { $0.formUnion($1) }
            let stale = batches[k].blocks.filter {
                before.contains(ObjectIdentifier($0)) && !fromHere.contains(ObjectIdentifier($0))
            }
            #expect(stale.isEmpty, "\(what): batch \(k) holds \(stale.count) blocks of earlier batches only")
        }
        var got: [[UInt8]] = []
        for batch in batches {
            #expect(!batch.handles.isEmpty, "\(what): an empty batch")
            var writer = RowJSON(batch)
            for h in batch.handles {
                var line: [UInt8] = []
                try writer.line(h, into: &line)
                got.append(line)
            }
        }
        #expect(got == lines, "\(what): JSON")
    }

    @Test func theBatchesAreTheSearchInAnyReadingOrder() async {
        await propertyCheck(count: 40, input: Gen.uint64(in: 0...UInt64.max), Gen.bool, Gen.bool, Gen.bool) {
            seed, timed, shared, copies in
            try TempDir.with("store-search-in-order") { root in
                let (directories, tails) = try ActivityHandlesTests.build(root: root.path, seed: seed)
                let base = ActivityHandlesTests.base
                let ms = ActivityHandlesTests.ms
                let range = timed ? (base + 20 * ms)...(base + 50 * ms) : 0...UInt64.max
                let store = try AuditStore(directories: directories)
                if shared { store.rowsWorthSharing.store(0, ordering: .relaxed) }
                var rng = SplitMix(seed)
                for user in ["u1", "u2", "nobody"] {
                    var query = EventQuery(terms: [.user(user)], timeRange: range)
                    query.includeDuplicates = copies
                    let found = try #require(try store.searchHandles(query))
                    let search = try #require(try store.searchInOrder(query))
                    #expect(search.shared == shared || found.handles.count >= 1_000)
                    let inOrder = try Self.batches(search, order: Array(0..<search.count))
                    try Self.expectSame(
                        inOrder.flatMap { $0 }, found, "seed \(seed), \(user), in order", copiesKept: copies)
                    let shuffled = try Self.batches(search, order: Array(0..<search.count).shuffled(using: &rng))
                    try Self.expectSame(
                        shuffled.flatMap { $0 }, found, "seed \(seed), \(user), shuffled", copiesKept: copies)
                }
                withExtendedLifetime(tails) {}
            }
        }
    }

    /// Three segments of one node whose times interleave, the third holding a retry copy of a record of the first:
    /// read in order, the first batch comes out after the first segment (its records before the second's first
    /// time), and the copy is dropped wherever it lies.
    @Test func segmentsWhoseTimesInterleave() throws {
        try TempDir.with("store-search-interleaved") { root in
            var rng = SplitMix(14)
            let directory = try SearchLimitPropertyTests.nodeDirectory(root.path + "/data", &rng)
            let ms = ActivityHandlesTests.ms
            func at(_ t: UInt64, _ span: UInt64) -> AuditEvent {
                ActivityHandlesTests.hop(
                    TraceID(high: 1, low: span), span, parent: nil, start: ActivityHandlesTests.base + t * ms,
                    user: "u1", edge: true)
            }
            let first = [at(0, 1), at(20, 2), at(40, 3)]
            let segments = [first, [at(10, 4), at(30, 5), at(50, 6)], [at(60, 7), first[1], at(25, 8)]]
            for events in segments {
                var options = WriterOptions()
                options.columnBlockRows = 2
                let writer = try SegmentWriter(directory: directory, options: options, logger: quietLogger)
                _ = try writer.append(events)
                try writer.close()
            }
            let store = try AuditStore(directories: [directory])
            let query = EventQuery(terms: [.user("u1")], timeRange: nil)
            let found = try #require(try store.searchHandles(query))
            #expect(found.handles.count == 8)
            // A segment a piece (too few rows to share).
            let search = try #require(try store.searchInOrder(query))
            #expect(search.count == 3)
            let batches = try Self.batches(search, order: Array(0..<search.count))
            try Self.expectSame(batches.flatMap { $0 }, found, "interleaved")
            // The first segment's record at 0 is out before the second segment is read: nothing else of the first
            // can precede the second's first time (10).
            let starts = batches.map { $0.flatMap { $0.handles.map { ($0.start - ActivityHandlesTests.base) / ms } } }
            let firstOut = try #require(starts.firstIndex { !$0.isEmpty })
            #expect(starts[firstOut] == [0])
            #expect(starts.flatMap { $0 } == [0, 10, 20, 25, 30, 40, 50, 60])
            for order in [[2, 1, 0], [1, 2, 0], [0, 2, 1]] {
                try Self.expectSame(
                    try Self.batches(search, order: order).flatMap { $0 }, found, "interleaved, order \(order)")
            }
            // Shared: each segment read in two parts cut at a block.
            store.rowsWorthSharing.store(0, ordering: .relaxed)
            let halves = try #require(try store.searchInOrder(query))
            #expect(halves.count > 3)
            try Self.expectSame(
                try Self.batches(halves, order: Array((0..<halves.count).reversed())).flatMap { $0 }, found, "in parts")
        }
    }

    /// A piece holding a record before the time already handed out (a block whose stated first time is later than
    /// a record of it) is refused: the answer could not stay in order.
    @Test func aRecordBeforeWhatWasHandedOutIsRefused() throws {
        let ms = ActivityHandlesTests.ms
        func rows(_ times: [UInt64], ordinal: UInt32) -> RecordHandles {
            var out = RecordHandles()
            for (k, t) in times.enumerated() {
                let event = ActivityHandlesTests.hop(
                    TraceID(high: 2, low: t), t, parent: nil, start: t * ms, user: "u1", edge: true)
                out.append(
                    StoredRecord(
                        event: event,
                        location: RecordLocation(
                            nodeID: NodeID(high: 0, low: 1), segmentSequence: 1, ordinal: ordinal + UInt32(k))))
            }
            return out
        }
        var merge = SearchInOrder.Merge(
            earliest: [100 * ms, 50 * ms], includeDuplicates: false, pending: rows([], ordinal: 0))
        #expect(try merge.start().isEmpty)
        // Piece 1 read first: its records before piece 0's earliest time (100) are final.
        let out = try merge.add(1, rows([60, 120], ordinal: 10))
        #expect(out.map { $0.handles.map(\.start) } == [[60 * ms]])
        // Piece 0 says its records start at 100 or later, yet holds one at 90.
        #expect(throws: LogFormatError.self) { _ = try merge.add(0, rows([90], ordinal: 20)) }
    }
}
