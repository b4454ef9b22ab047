// The store's queries through record handles (`searchHandles`, `activityHandles`, `traceHandles`) give the event
// path's answers: the same records in the same order, and each column read through a handle (times, kind, source,
// service, name, statuses, HTTP method and target, user) equal to the field of the event the event path builds, and
// each row's JSON to the event's, in version 1 (row), version 2 (column) and mixed directories, with retry copies,
// unsealed tails and time ranges, read afresh and from a long-lived store's cache.
import Foundation
import PropertyBased
import StoreQuery
import Synchronization
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat

@Suite struct HandleQueryTests {
    /// `handles` (of `all`) name the records of `records`, in order, and each column reads as its event's field.
    static func expectSame(
        _ all: RecordHandles, _ handles: [RecordHandle], _ records: [StoredRecord], _ what: String
    ) throws {
        #expect(handles.map(\.location) == records.map(\.location), "\(what): records")
        guard handles.count == records.count else { return }
        var writer = RowJSON(all)
        var memo = EventJSONMemo()
        for (h, r) in zip(handles, records) {
            var line: [UInt8] = []
            var expected: [UInt8] = []
            try writer.line(h, into: &line)
            RecordJSON.line(r, into: &expected, memo: &memo)
            #expect(String(decoding: line, as: UTF8.self) == String(decoding: expected, as: UTF8.self), "\(what): JSON")
            let e = r.event
            #expect(h.start == e.startTimeUnixNano && all.end(h) == e.endTimeUnixNano, "\(what): times")
            #expect(all.durationNanos(h) == e.durationNanos, "\(what): duration")
            #expect(h.traceID == e.traceID && h.spanID == e.spanID, "\(what): ids")
            #expect(all.kind(h) == e.kind && all.source(h) == e.source, "\(what): kind, source")
            #expect(try all.service(h) == e.service && all.name(h) == e.name, "\(what): service, name")
            #expect(all.statusCode(h) == e.statusCode, "\(what): status")
            #expect(all.httpStatus(h) == e.http?.statusCode ?? 0, "\(what): HTTP status")
            #expect(try all.httpMethod(h) == e.http?.method, "\(what): HTTP method")
            #expect(try all.httpTarget(h) == e.http?.target, "\(what): HTTP target")
            #expect(try all.userSubject(h) == e.user?.subject, "\(what): user")
            #expect(try all.event(h) == e, "\(what): event")
        }
    }

    /// With `cached`, the store keeps decoded blocks (a long-lived store: the handle path keeps each column block's
    /// every row, `BlockCache.getOutputRows`), and every question is asked twice, the second time from the cache.
    /// With `shared`, the segments' blocks are read on every core however few rows are asked, and trace look-ups
    /// open and read segments on every core however few there are.
    @Test func handlesAndTheirColumnsEqualTheEventPath() async {
        await propertyCheck(count: 40, input: Gen.uint64(in: 0...UInt64.max), Gen.bool, Gen.bool, Gen.bool) {
            seed, timed, cached, shared in
            try TempDir.with("store-handle-queries") { root in
                let (directories, tails) = try ActivityHandlesTests.build(root: root.path, seed: seed)
                let base = ActivityHandlesTests.base
                let ms = ActivityHandlesTests.ms
                let range = timed ? (base + 20 * ms)...(base + 50 * ms) : 0...UInt64.max
                let store = try AuditStore(directories: directories, cacheDecodedBlocks: cached)
                if shared {
                    store.rowsWorthSharing.store(0, ordering: .relaxed)
                    store.segmentsWorthSharing.store(0, ordering: .relaxed)
                }
                for user in cached ? ["u1", "u2", "u1", "u2"] : ["u1", "u2"] {
                    let query = EventQuery(terms: [.user(user)], timeRange: range)
                    let events = try store.search(query)
                    let found = try #require(try store.searchHandles(query))
                    try Self.expectSame(found, found.handles, events, "seed \(seed), search \(user)")

                    let requests = try store.activity(user: user, timeRange: range)
                    let (all, got) = try #require(try store.activityHandles(user: user, timeRange: range))
                    #expect(got.count == requests.count, "seed \(seed), activity \(user)")
                    for (q, r) in zip(got, requests) {
                        try Self.expectSame(all, [q.request], [r.request], "seed \(seed), request of \(user)")
                        try Self.expectSame(all, q.userEvents, r.userEvents, "seed \(seed), user events of \(user)")
                        try Self.expectSame(all, q.trace, r.trace, "seed \(seed), trace of a request of \(user)")
                    }

                    // The user's events repeat a trace id when a hop carries the user again; asked once per trace
                    // (distinct ids, as `activity` asks) the look-up finds the same records.
                    let pairs = events.map { ($0.event.traceID, $0.event.startTimeUnixNano) }
                    var first: [TraceID: UInt64] = [:]
                    for (id, time) in pairs where first[id] == nil { first[id] = time }
                    let slack: UInt64 = 3_600_000_000_000
                    let repeated = try store.traces(around: pairs, slackNanos: slack)
                    let once = try store.traces(around: first.map { ($0.key, $0.value) }, slackNanos: slack)
                    #expect(
                        repeated.mapValues { $0.map(\.location) } == once.mapValues { $0.map(\.location) },
                        "seed \(seed), traces around the events of \(user)")

                    for id in Set(events.map(\.event.traceID)) where !id.isZero {
                        let trace = try store.trace(id)
                        let handles = try store.traceHandles(id)
                        try Self.expectSame(handles, handles.handles, trace, "seed \(seed), trace \(id.hex)")
                        let near = try store.trace(id, near: range, includeDuplicates: true)
                        let nearHandles = try store.traceHandles(id, near: range, includeDuplicates: true)
                        try Self.expectSame(
                            nearHandles, nearHandles.handles, near, "seed \(seed), trace \(id.hex) near, copies")
                    }
                }
                #expect(try store.traceHandles(TraceID(high: 7, low: 7)).handles.isEmpty)
                withExtendedLifetime(tails) {}
            }
        }
    }

    /// A trace's column block damaged (a byte of it flipped, each in turn over a sample): `traceHandles` refuses
    /// exactly when `trace` does, with the same error code, and otherwise gives its records.
    @Test func aDamagedBlockIsRefusedAsTheEventPathRefusesIt() throws {
        try TempDir.with("store-handle-trace-damage") { root in
            let directory = DataDirectory(root.path + "/data")
            var options = WriterOptions()
            options.columnBlockRows = 3
            let writer = try SegmentWriter(directory: directory, options: options, logger: quietLogger)
            let id = TraceID(high: 9, low: 1)
            var events: [AuditEvent] = []
            for span in 1...5 {
                events.append(
                    ActivityHandlesTests.hop(
                        id, UInt64(span), parent: span == 1 ? nil : 1, start: ActivityHandlesTests.base,
                        user: span == 1 ? "u1" : nil, edge: span == 1))
            }
            _ = try writer.append(events)
            try writer.close()
            let name = try #require(try directory.listSegmentFiles().sealed.first)
            let path = directory.segmentsPath + "/" + name
            var refused = 0
            try flippingSampledBytesOfEachBlock(path) { b, offset in
                let expected = Result { () throws(LogFormatError) in
                    try AuditStore(directories: [directory], cacheDecodedBlocks: false).trace(id)
                }
                let fresh = try AuditStore(directories: [directory], cacheDecodedBlocks: false)
                let got = Result { () throws(LogFormatError) in try fresh.traceHandles(id) }
                if try expectSameOutcome(
                    expected, got, "block \(b), offset \(offset)",
                    same: { records, handles in
                        try Self.expectSame(handles, handles.handles, records, "block \(b), offset \(offset)")
                    })
                {
                    refused += 1
                }
            }
            #expect(refused > 0)
        }
    }
}

/// Checks that two paths made the same of one (perhaps damaged) input: both answered, and `same` compares the
/// answers, or both refused it with the same error code. True when both refused.
func expectSameOutcome<A, B>(
    _ reference: Result<A, LogFormatError>, _ got: Result<B, LogFormatError>, _ place: String,
    same: (A, B) throws -> Void
) rethrows -> Bool {
    switch (reference, got) {
    case (.success(let a), .success(let b)):
        try same(a, b)
        return false
    case (.failure(let x), .failure(let y)):
        #expect(x.code == y.code, "\(place): \(x.message) / \(y.message)")
        return true
    default:
        Issue.record("\(place): \(reference) against \(got)")
        return false
    }
}

/// Calls `body` with each of about 24 offsets of every block of the segment at `path` (and 64 bytes past the last
/// block's start), the file as sealed but for that one byte flipped.
func flippingSampledBytesOfEachBlock(_ path: String, _ body: (_ block: Int, _ offset: Int) throws -> Void) throws {
    let blocks = try SegmentReader(path: path, sealed: true).blocks
    let original = try Data(contentsOf: URL(fileURLWithPath: path))
    for b in blocks.indices {
        let start = Int(blocks[b].offset)
        let end = b + 1 < blocks.count ? Int(blocks[b + 1].offset) : start + 64
        for offset in stride(from: start, to: end, by: max(1, (end - start) / 24)) {
            try original.write(to: URL(fileURLWithPath: path))
            try Damage.flip(path, at: offset, mask: UInt8(1 + offset % 255))
            try body(b, offset)
        }
    }
}
