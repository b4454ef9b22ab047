// `activityHandles` reads the blocks of a user's rows once for the user's rows and the rows of their traces
// (`SegmentReader.rowHandles(withTraceRunsOf:)`), and the trace look-up takes what it can from there. Its lines must
// be `activity`'s, byte for byte, wherever the traces lie: across column blocks of one row or a few, across
// segments and nodes, in version 1 (row) and version 2 (column) segments of one directory, with retry copies, hops
// that carry the user again, requests without a trace id, limits and time ranges. A damaged block is refused as the
// event path refuses it.
import Foundation
import PropertyBased
import StoreQuery
import Synchronization
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat

/// A count shared with a property's runs.
private final class Counter: Sendable {
    let n = Atomic<Int>(0)
}

@Suite struct ActivityHandlesTests {
    static let base: UInt64 = 1_793_613_600_000_000_000  // 2026-11-02T10:00:00Z
    static let ms: UInt64 = 1_000_000

    /// One hop of a trace; the user's own when `user` is set (the edge's access event when `edge`).
    static func hop(
        _ trace: TraceID, _ span: UInt64, parent: UInt64?, start: UInt64, user: String?, edge: Bool
    ) -> AuditEvent {
        AuditEvent(
            kind: edge ? .access : .span, startTimeUnixNano: start, endTimeUnixNano: start + 3 * ms, traceID: trace,
            spanID: SpanID(value: span), parentSpanID: parent.map { SpanID(value: $0) }, flags: 1,
            spanKind: .server, name: "op \(span % 5)", service: edge ? "edge" : "svc\(span % 3)",
            source: edge ? .edge : .app, user: user.map { UserIdentity(subject: $0, origin: .edge) },
            http: edge ? HTTPFacts(method: "GET", target: "/t/\(span)", statusCode: 200) : nil, statusCode: .unset,
            attributes: [Attribute("n", .int(Int64(span)))], resourceAttributes: [])
    }

    /// One to three directories (a node each), each with two to five sealed segments written one writer at a time,
    /// each writer laying out as columns (blocks of one to three rows, so that traces cross blocks, or one block for
    /// the segment, so that a trace's hops cut off from its request share a block with the user's rows) or sealing
    /// rows in place (version 1), and sometimes an unsealed tail. Traces of up to twelve hops, the user's (`u1`,
    /// `u2`) or nobody's, are cut between consecutive segments; some hops carry the user again, some events have no
    /// trace id, and some are stored again (retry copies).
    static func build(root: String, seed: UInt64) throws -> ([DataDirectory], [SegmentWriter]) {
        var rng = SplitMix(seed)
        var directories: [DataDirectory] = []
        var tails: [SegmentWriter] = []
        var written: [AuditEvent] = []
        var span: UInt64 = 0
        func trace(_ rng: inout SplitMix, window: UInt64) -> [AuditEvent] {
            let users: [String?] = ["u1", "u1", "u2", nil]
            let user = users[Int(rng.next() % 4)]
            let start = base + (window + rng.next() % 8) * ms
            span += 1
            guard rng.next() % 8 != 0 else {
                return [hop(TraceID(high: 0, low: 0), span, parent: nil, start: start, user: user, edge: true)]
            }
            let id = TraceID(high: rng.next(), low: rng.next())
            let root = span
            var hops = [hop(id, root, parent: nil, start: start, user: user, edge: user != nil || rng.next() % 2 == 0)]
            for _ in 0..<Int(rng.next() % 12) {
                span += 1
                let again = rng.next() % 6 == 0 ? user : nil
                hops.append(
                    hop(id, span, parent: root, start: start + (rng.next() % 4) * ms, user: again, edge: false))
            }
            return hops
        }
        for d in 0..<Int.random(in: 1...3, using: &rng) {
            let directory = try SearchLimitPropertyTests.nodeDirectory(root + "/data\(d)", &rng)
            var carried: [AuditEvent] = []
            let segments = Int.random(in: 2...5, using: &rng)
            for s in 0...segments {
                var options = WriterOptions()
                options.sealLayout = rng.next() % 3 == 0 ? .rows : .columns
                options.columnBlockRows = [1, 2, 3, 4096][Int(rng.next() % 4)]
                let writer = try SegmentWriter(directory: directory, options: options, logger: quietLogger)
                let window = UInt64.random(in: 0...60, using: &rng)
                var events = carried
                carried = []
                for _ in 0..<Int(1 + rng.next() % 6) {
                    var hops = trace(&rng, window: window)
                    // A trace cut between this segment and the next.
                    if hops.count > 1 && rng.next() % 3 == 0 {
                        let cut = Int(1 + rng.next() % UInt64(hops.count - 1))
                        carried = Array(hops[cut...])
                        hops.removeLast(hops.count - cut)
                    }
                    events += hops
                }
                for _ in 0..<Int(rng.next() % 3) where !written.isEmpty {
                    events.append(written[Int(rng.next() % UInt64(written.count))])  // a retry copy
                }
                written += events
                _ = try writer.append(events)
                if s < segments || rng.next() % 2 == 0 {
                    try writer.close()
                } else {
                    try writer.flush()  // the unsealed tail, read by scanning
                    tails.append(writer)
                    break
                }
            }
            directories.append(directory)
        }
        return (directories, tails)
    }

    /// `activity`'s lines through `RecordJSON` and `activityHandles`' through `RowJSON`.
    static func lines(
        _ store: AuditStore, user: String, range: ClosedRange<UInt64>, limit: Int?, includeDuplicates: Bool
    ) throws -> (expected: [UInt8], got: [UInt8]) {
        let requests = try store.activity(
            user: user, timeRange: range, limit: limit, includeDuplicates: includeDuplicates)
        var expected: [UInt8] = []
        var memo = EventJSONMemo()
        for q in requests {
            RecordJSON.activityLine(q, into: &expected, memo: &memo)
            expected.append(UInt8(ascii: "\n"))
        }
        guard
            let (all, handles) = try store.activityHandles(
                user: user, timeRange: range, limit: limit, includeDuplicates: includeDuplicates)
        else { return (expected, []) }
        var writer = RowJSON(all)
        var got: [UInt8] = []
        for q in handles {
            try writer.activityLine(request: q.request, userEvents: q.userEvents.count, trace: q.trace, into: &got)
            got.append(UInt8(ascii: "\n"))
        }
        return (expected, got)
    }

    /// Whether some trace of `user` has rows in two column blocks of one segment (what the one read must get right).
    static func aTraceCrossesBlocks(_ directories: [DataDirectory], user: String) throws -> Bool {
        for d in directories {
            for name in try d.listSegmentFiles().sealed {
                let reader = try SegmentReader(path: d.segmentsPath + "/" + name, sealed: true)
                guard reader.blocks.count > 1, reader.isColumnBlock(0) else { continue }
                let mine = try reader.ordinals(.user, key: Array(user.utf8))
                let ids = Set(try reader.records(at: mine).map(\.event.traceID)).filter { !$0.isZero }
                for id in ids {
                    let blocks = Set(try reader.traceOrdinals([id]).compactMap(reader.blockIndex(forOrdinal:)))
                    if blocks.count > 1 { return true }
                }
            }
        }
        return false
    }

    @Test func activityLinesEqualTheEventPathWhereverTheTracesLie() async throws {
        let crossed = Counter()
        await propertyCheck(count: 40, input: Gen.uint64(in: 0...UInt64.max), Gen.bool, Gen.bool, Gen.int(in: 0...4)) {
            seed, timed, includeDuplicates, limit in
            try TempDir.with("auditq-activity-handles") { root in
                let (directories, tails) = try Self.build(root: root.path, seed: seed)
                if try Self.aTraceCrossesBlocks(directories, user: "u1") { crossed.n.add(1, ordering: .relaxed) }
                let range = timed ? (Self.base + 20 * Self.ms)...(Self.base + 50 * Self.ms) : 0...UInt64.max
                let store = try AuditStore(directories: directories, cacheDecodedBlocks: false)
                for user in ["u1", "u2"] {
                    let (expected, got) = try Self.lines(
                        store, user: user, range: range, limit: limit == 0 ? nil : limit,
                        includeDuplicates: includeDuplicates)
                    #expect(!got.isEmpty || expected.isEmpty, "seed \(seed): no handles")
                    #expect(
                        String(decoding: got, as: UTF8.self) == String(decoding: expected, as: UTF8.self),
                        "seed \(seed), \(user), timed \(timed), duplicates \(includeDuplicates), limit \(limit)")
                }
                withExtendedLifetime(tails) {}
            }
        }
        // The inputs must reach the case the one read exists for, or the property says little.
        #expect(crossed.n.load(ordering: .relaxed) > 5)
    }

    /// Every byte of every block of the user's segments flipped in turn (a sample of them): `activityHandles`
    /// refuses exactly when `activity` does, with the same error code, and otherwise gives its lines.
    @Test func aDamagedBlockIsRefusedAsTheEventPathRefusesIt() throws {
        try TempDir.with("auditq-activity-damage") { root in
            let directory = DataDirectory(root.path + "/data")
            var options = WriterOptions()
            options.columnBlockRows = 2
            let writer = try SegmentWriter(directory: directory, options: options, logger: quietLogger)
            var rng = SplitMix(5)
            var events: [AuditEvent] = []
            var span: UInt64 = 0
            for t in 0..<6 {
                let id = TraceID(high: 9, low: UInt64(t + 1))
                span += 1
                let root = span
                events.append(
                    Self.hop(id, root, parent: nil, start: Self.base, user: t % 3 == 2 ? "u2" : "u1", edge: true))
                for _ in 0..<Int(1 + rng.next() % 5) {
                    span += 1
                    events.append(Self.hop(id, span, parent: root, start: Self.base + Self.ms, user: nil, edge: false))
                }
            }
            _ = try writer.append(events)
            try writer.close()
            let name = try #require(try directory.listSegmentFiles().sealed.first)
            let path = directory.segmentsPath + "/" + name
            var refused = 0
            try flippingSampledBytesOfEachBlock(path) { b, offset in
                let store = try AuditStore(directories: [directory], cacheDecodedBlocks: false)
                let reference = Result { () throws(LogFormatError) in
                    try store.activity(user: "u1", timeRange: 0...UInt64.max).count
                }
                let fresh = try AuditStore(directories: [directory], cacheDecodedBlocks: false)
                let got = Result { () throws(LogFormatError) in
                    try fresh.activityHandles(user: "u1", timeRange: 0...UInt64.max)?.requests.count
                }
                let place = "block \(b), offset \(offset)"
                if try expectSameOutcome(
                    reference, got, place,
                    same: { a, c in
                        #expect(a == c, "\(place)")
                        let (expected, lines) = try Self.lines(
                            fresh, user: "u1", range: 0...UInt64.max, limit: nil, includeDuplicates: false)
                        #expect(
                            String(decoding: lines, as: UTF8.self) == String(decoding: expected, as: UTF8.self),
                            "\(place)")
                    })
                {
                    refused += 1
                }
            }
            #expect(refused > 0)
        }
    }
}
