// Record lines written straight from the column blocks (`RowJSON`) against the lines of the decoded events
// (`RecordJSON.line`): byte for byte, for generated, hostile and SDK-shaped events in hot (LZ4) and archive (zlib)
// blocks, for every row or a few, and for a store's answers (`searchHandles`, `activityHandles`) against
// `search` and `activity`, retry duplicates included.
import Foundation
import PropertyBased
import StoreQuery
import SyntheticTraffic
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat

/// Strings JSON must escape, and their neighbours that it must not.
private let escapes = [
    "\"", "\\", "\u{0}", "\u{1}", "\u{8}", "\u{c}", "\u{1f}", "\u{7f}", "\n\r\t", "\u{2028}", "\u{2029}",
    "\u{2027}", "€\u{2028}x", "é", "日本", "🔐", "a\"b\\c", "</script>", "",
]

/// `RandomEvents.make` with values no generator makes by chance: doubles JSON cannot hold, integers past 2^53,
/// bytes of every base64 padding, strings needing every escape (in keys, values, names, users, targets, bodies,
/// span events and links), repeated keys, nesting.
private func hostile(_ seed: UInt64) -> AuditEvent {
    var g = SplitMix(seed)
    var e = RandomEvents.make(seed: seed)
    func s() -> String {
        escapes[Int(g.next() % UInt64(escapes.count))] + escapes[Int(g.next() % UInt64(escapes.count))]
    }
    var extra: [Attribute] = [
        Attribute(s(), .double(.nan)), Attribute("inf", .double(.infinity)), Attribute("-inf", .double(-.infinity)),
        Attribute("-0", .double(-0.0)), Attribute("small", .double(1e-5)), Attribute("big", .double(5e20)),
        Attribute("one", .double(1)), Attribute("2^53", .int(1 << 53)), Attribute("2^53+1", .int(1 << 53 + 1)),
        Attribute("-2^53-1", .int(-(1 << 53) - 1)), Attribute("min", .int(.min)),
        Attribute("b0", .bytes([])), Attribute("b1", .bytes([0xff])), Attribute("b2", .bytes([0, 1])),
        Attribute("b3", .bytes([1, 2, 3])), Attribute("b4", .bytes([0xfb, 0xff, 0xbf, 0x00])),
        Attribute(s(), .string(s())), Attribute("dup", .bool(true)), Attribute("dup", .bool(false)),
        Attribute("", .empty), Attribute("arr", .array([.empty, .string(s()), .array([]), .keyValueList([])])),
        Attribute("kv", .keyValueList([Attribute(s(), .keyValueList([Attribute(s(), .int(-1))]))])),
    ]
    extra.shuffle(using: &g)
    e.attributes += extra.prefix(Int(g.next() % UInt64(extra.count + 1)))
    e.name = s()
    e.statusMessage = g.next() % 2 == 0 ? s() : ""
    e.traceState = g.next() % 2 == 0 ? s() : ""
    switch g.next() % 4 {
    case 0: e.body = nil
    case 1: e.body = .string(s())
    case 2: e.body = .keyValueList(extra)
    default: break
    }
    if g.next() % 2 == 0 {
        e.user = UserIdentity(
            subject: s(), email: g.next() % 2 == 0 ? s() : nil, groups: [s(), "", s()],
            issuer: g.next() % 2 == 0 ? s() : nil, origin: .verifiedToken,
            tokenFingerprint: g.next() % 2 == 0 ? [0, 0xab, 0xff] : nil)
    }
    if g.next() % 2 == 0 {
        e.http = HTTPFacts(
            method: g.next() % 2 == 0 ? s() : nil, target: g.next() % 2 == 0 ? "/" + s() : nil,
            route: g.next() % 2 == 0 ? s() : nil, statusCode: UInt16(g.next() % 600),
            clientAddress: g.next() % 2 == 0 ? s() : nil)
    }
    if g.next() % 3 == 0 { e.workload = s() }
    if g.next() % 2 == 0 {
        e.events.append(SpanEvent(timeUnixNano: e.startTimeUnixNano &- 1, name: s(), attributes: extra))
        e.links.append(
            SpanLink(
                traceID: e.traceID, spanID: e.spanID, traceState: s(), attributes: extra,
                droppedAttributesCount: UInt32(g.next() % 3), flags: .max))
    }
    e.resourceAttributes = [Attribute(s(), .string(s()))] + (g.next() % 2 == 0 ? extra : [])
    e.scope = InstrumentationScope(name: s(), version: g.next() % 2 == 0 ? s() : "", attributes: extra)
    return e
}

/// Events of a few traces in sealed order, half hostile, parents inside their traces.
private func hostileTraces(_ seed: UInt64, _ count: Int) -> [AuditEvent] {
    var events = (0..<UInt64(count)).map { $0 % 2 == 0 ? hostile(seed &+ $0) : RandomEvents.make(seed: seed &+ $0) }
    for i in events.indices where i % 3 != 0 {
        events[i].traceID = events[i - i % 3].traceID
        events[i].parentSpanID = events[i - 1].spanID
    }
    // Request ids that are the trace id (a revision 2 block keeps them in the shape) or another trace's, and ids of
    // the trace's own as hex or a UUID (revision 3 keeps a run's once, and a row read alone holds it), twice in a row.
    for i in events.indices where i % 2 == 1 {
        let own = OwnRequestID.hex(events[i].traceID)
        let ids = [events[i].traceID.hex, events[i - 1].traceID.hex, own, OwnRequestID.uuid(own)]
        events[i].attributes.append(Attribute("guid:x-request-id", .string(ids[i / 2 % 4])))
        if i % 4 == 3 { events[i].attributes.insert(Attribute("request_id", .string(own)), at: 0) }
    }
    // The row's own traceparent (revision 4 keeps its flags byte) and one that is not (another span's).
    for i in events.indices where i % 3 == 1 {
        let flags = HexCoding.encode([UInt8(truncatingIfNeeded: seed &+ UInt64(i) &* 29)])
        let span = (i % 2 == 0 ? events[i] : events[i - 1]).spanID.hex
        events[i].attributes.append(Attribute("traceparent", .string("00-\(events[i].traceID.hex)-\(span)-\(flags)")))
    }
    // A request's hops carry its target (revision 2 stores a repeat within the run as 0).
    for i in events.indices where i % 3 == 2 && events[i].http != nil {
        let target = events[i - 1].http?.target ?? events[i - 2].http?.target
        events[i].http?.target = target
    }
    return SealOrder.permutation(events.map { SealOrderFields($0) }).map { events[$0] }
}

private let node = NodeID(high: 0x0123_4567_89ab_cdef, low: 42)

/// The lines of rows `rows` of `block` both ways: (RowJSON, RecordJSON of the decoded events).
private func lines(_ block: [UInt8], rows: [Int], count: Int, first: UInt32 = 7) throws(LogFormatError)
    -> (String, String)
{
    let (found, events) = try block.withBytes { (b) throws(LogFormatError) in
        (
            try ColumnBlock.rows(b, rows: rows, segment: nil, expectedRows: count, timeRange: nil),
            try ColumnBlock.decode(b, rows: rows)
        )
    }
    var handles = RecordHandles()
    handles.append(found, node: node, sequence: 3, firstOrdinal: first)
    var writer = RowJSON(handles)
    var got: [UInt8] = []
    for h in handles.handles {
        try writer.line(h, into: &got)
        got.append(10)
    }
    var expected: [UInt8] = []
    var memo = EventJSONMemo()
    for (row, e) in zip(rows, events) {
        let location = RecordLocation(nodeID: node, segmentSequence: 3, ordinal: first + UInt32(row))
        RecordJSON.line(StoredRecord(event: e, location: location), into: &expected, memo: &memo)
        expected.append(10)
    }
    // The handles carry the rows' own fields.
    for (h, e) in zip(handles.handles, events) {
        #expect(h.start == e.startTimeUnixNano && h.traceID == e.traceID && h.spanID == e.spanID)
        #expect(RecordCodec.encode(try handles.event(h)) == RecordCodec.encode(e))
    }
    return (String(decoding: got, as: UTF8.self), String(decoding: expected, as: UTF8.self))
}

@Suite struct RowJSONTests {
    /// Generated and hostile events, hot and archive blocks, every row and a random few.
    @Test func rowsGiveTheLinesOfTheirEvents() async {
        await propertyCheck(count: 60, input: Gen.uint64(), Gen.int(in: 0...24)) { seed, count in
            let events = hostileTraces(seed, count)
            var g = SplitMix(seed)
            for codec in [CompressionCodec.lz4, .zlib] {
                do {
                    let block = try ColumnBlock.encode(events, codec: codec)
                    let all = Array(0..<events.count)
                    let (got, expected) = try lines(block, rows: all, count: events.count)
                    #expect(got == expected, "seed \(seed), \(count) events, \(codec)")
                    #expect(expected.split(separator: "\n").count == events.count)
                    let some = all.filter { _ in g.next() % 3 == 0 }
                    let (gotSome, expectedSome) = try lines(block, rows: some, count: events.count)
                    #expect(gotSome == expectedSome, "seed \(seed), rows \(some), \(codec)")
                } catch {
                    Issue.record("seed \(seed): \(error)")
                }
            }
        }
    }

    /// SDK-shaped traffic (resources of 8 to 15 attributes, scopes), many rows sharing shapes and resources.
    @Test func generatedTrafficGivesTheLinesOfItsEvents() throws {
        var g = TrafficGenerator(seed: 5)
        for codec in [CompressionCodec.lz4, .zlib] {
            let traffic = tracesInSealedOrder(g.nextEvents(1_500))
            let block = try ColumnBlock.encode(traffic, codec: codec)
            let (got, expected) = try lines(block, rows: Array(0..<traffic.count), count: traffic.count)
            #expect(got == expected, "\(codec)")
            let (gotSome, expectedSome) = try lines(
                block, rows: Array(stride(from: 3, to: traffic.count, by: 7)), count: traffic.count)
            #expect(gotSome == expectedSome, "\(codec)")
        }
    }

    /// Blocks whose strings are partly in the segment dictionary: rows read through it give the same lines.
    @Test func segmentDictionaryStrings() throws {
        var g = TrafficGenerator(seed: 9)
        let traffic = tracesInSealedOrder(g.nextEvents(300)) + hostileTraces(17, 12)
        var shared: [String] = [""]
        for e in traffic.prefix(40) {
            for s in [e.name, e.service] + e.attributes.map(\.key) where !shared.contains(s) { shared.append(s) }
        }
        let ids = Dictionary(shared.enumerated().map { ($1, UInt64($0)) }, uniquingKeysWith: { a, _ in a })
        let dictionary = SegmentDictionary(strings: shared)
        let block = try ColumnBlock.encode(traffic, codec: .lz4, level: 6, shared: ids).payload
        let rows = Array(stride(from: 0, to: traffic.count, by: 2))
        let (found, events) = try block.withBytes { (b) throws(LogFormatError) in
            (
                try ColumnBlock.rows(b, rows: rows, segment: dictionary, expectedRows: traffic.count, timeRange: nil),
                try ColumnBlock.decode(b, rows: rows, segment: dictionary)
            )
        }
        var handles = RecordHandles()
        handles.append(found, node: node, sequence: 1, firstOrdinal: 0)
        var writer = RowJSON(handles)
        var memo = EventJSONMemo()
        for (h, e) in zip(handles.handles, events) {
            var got: [UInt8] = []
            try writer.line(h, into: &got)
            var expected: [UInt8] = []
            RecordJSON.line(StoredRecord(event: e, location: h.location), into: &expected, memo: &memo)
            #expect(got == expected)
        }
        #expect(handles.handles.count == rows.count)
    }

    /// A time range keeps the rows whose start lies in it, as `records(at:timeRange:)` does.
    @Test func aTimeRangeKeepsTheRowsStartingInIt() throws {
        let events = hostileTraces(77, 24)
        let block = try ColumnBlock.encode(events, codec: .lz4)
        let starts = events.map(\.startTimeUnixNano).sorted()
        let range = starts[6]...starts[17]
        let found = try block.withBytes { (b) throws(LogFormatError) in
            try ColumnBlock.rows(
                b, rows: Array(0..<events.count), segment: nil, expectedRows: events.count, timeRange: range)
        }
        #expect(
            found.rows.map(\.row)
                == events.indices.filter { range.contains(events[$0].startTimeUnixNano) }.map(Int32.init))
    }
}

extension RowJSONTests {
    /// Columns that pass their CRCs but lie (one to three bytes of one column overwritten, sometimes its tail cut):
    /// the lines are those of the decoder's events, or the decoder's class of error; never a trap.
    @Test func lyingColumnsGiveTheDecodersLinesOrItsError() async throws {
        var g = TrafficGenerator(seed: 8)
        let events = tracesInSealedOrder(g.nextEvents(30)) + hostileTraces(99, 10)
        let block = try ColumnBlock.encode(events, codec: .none)
        let columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
        await propertyCheck(count: 600, input: Gen.uint64()) { seed in
            var rng = SplitMix(seed)
            var c = columns
            let id = ColumnID.allCases[Int(rng.next() % UInt64(ColumnID.allCases.count))]
            var bytes = c[id] ?? []
            if !bytes.isEmpty {
                for _ in 0..<(1 + rng.next() % 3) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
                if rng.next() % 4 == 0 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count))) }
            }
            c[id] = bytes
            let damaged = assemble(c)
            let rows = events.indices.filter { _ in rng.next() % 4 == 0 }
            let reference: Result<[AuditEvent], LogFormatError> = Result { () throws(LogFormatError) in
                let all = try damaged.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }
                guard all.count == events.count else { throw LogFormatError(.malformed, "row count") }
                return rows.map { all[$0] }
            }
            let got: Result<(String, String), LogFormatError> = Result { () throws(LogFormatError) in
                try lines(damaged, rows: rows, count: events.count)
            }
            switch (reference, got) {
            case (.success, .success(let (a, b))): #expect(a == b, "seed \(seed), column \(id)")
            case (.failure(let x), .failure(let y)): #expect(x.code == y.code, "seed \(seed), column \(id)")
            case (.success, .failure(let y)): Issue.record("seed \(seed), column \(id): refused, \(y.message)")
            case (.failure(let x), .success): Issue.record("seed \(seed), column \(id): read, \(x.message)")
            }
        }
    }
}

extension RowJSONTests {
    /// Every byte of the resources column overwritten in turn, with one row asked for: a damaged resource that no
    /// asked-for row names is refused as the decoder refuses it (the rows' reader checks every resource but builds
    /// only those its rows name), and otherwise the row's line is the decoder's.
    @Test func aDamagedResourceNoRowNamesIsRefusedAsTheDecoderRefusesIt() throws {
        var g = TrafficGenerator(seed: 21)
        let events = tracesInSealedOrder(g.nextEvents(40))
        let block = try ColumnBlock.encode(events, codec: .none)
        let columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
        let resources = try #require(columns[.resources])
        #expect(resources.first.map { $0 > 2 } == true)  // several resources: row 0 names one of them
        var refused = 0
        for offset in resources.indices {
            for value: UInt8 in [0x7F, 0xFF] where resources[offset] != value {
                var c = columns
                c[.resources]![offset] = value
                let damaged = assemble(c)
                let reference = Result { () throws(LogFormatError) in
                    try damaged.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }.count
                }
                let got = Result { () throws(LogFormatError) in
                    try damaged.withBytes { (b) throws(LogFormatError) in
                        try ColumnBlock.rows(b, rows: [0], segment: nil, expectedRows: events.count, timeRange: nil)
                    }.rows.count
                }
                switch (reference, got) {
                case (.success, .success):
                    let (a, b) = try lines(damaged, rows: [0], count: events.count)
                    #expect(a == b, "offset \(offset), value \(value)")
                case (.failure(let x), .failure(let y)):
                    #expect(x.code == y.code, "offset \(offset), value \(value)")
                    refused += 1
                case (.success, .failure(let y)):
                    Issue.record("offset \(offset), value \(value): refused, \(y.message)")
                case (.failure(let x), .success):
                    Issue.record("offset \(offset), value \(value): read, \(x.message)")
                }
            }
        }
        #expect(refused > 0)
    }
}

/// A block of these columns, uncompressed, with good CRCs (what a hostile writer can make).
private func assemble(_ columns: [ColumnID: [UInt8]]) -> [UInt8] {
    let ids = columns.keys.sorted { $0.rawValue < $1.rawValue }
    var w = BinaryWriter()
    w.u16(UInt16(ids.count))
    w.u16(0)
    for id in ids {
        let bytes = columns[id] ?? []
        w.u8(id.rawValue)
        w.u8(CompressionCodec.none.rawValue)
        w.u16(0)
        w.u32(UInt32(bytes.count))
        w.u32(UInt32(bytes.count))
        w.u32(Checksum.crc32(bytes))
    }
    for id in ids { w.raw(columns[id] ?? []) }
    return w.bytes
}

private func tracesInSealedOrder(_ events: [AuditEvent]) -> [AuditEvent] {
    SealOrder.permutation(events.map { SealOrderFields($0) }).map { events[$0] }
}

/// The store's answers as handles written by `RowJSON` against its answers as records written by `RecordJSON`:
/// several nodes, overlapping segments, retry copies in other segments and nodes, open tails.
@Suite struct RowJSONStoreTests {
    @Test func searchAndActivityLinesEqualTheEventPath() async throws {
        await propertyCheck(count: 40, input: Gen.uint64(in: 0...UInt64.max), Gen.bool, Gen.bool) {
            seed, timed, includeDuplicates in
            var template = Array((NSTemporaryDirectory() + "/auditq-rowjson-XXXXXX").utf8CString)
            let root = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
            defer { try? FileManager.default.removeItem(atPath: root) }
            let (directories, writers) = try SearchLimitPropertyTests.build(root: root, seed: seed)
            let base = SearchLimitPropertyTests.base
            let ms = SearchLimitPropertyTests.ms
            let range = timed ? (base + 20 * ms)...(base + 50 * ms) : base...(base + 100 * ms)
            var query = EventQuery(terms: [.user("u1")], timeRange: range)
            query.includeDuplicates = includeDuplicates
            let store = try AuditStore(directories: directories, cacheDecodedBlocks: false)

            let records = try store.search(query)
            var expected: [UInt8] = []
            var memo = EventJSONMemo()
            for r in records { RecordJSON.line(r, into: &expected, memo: &memo) }
            guard let found = try store.searchHandles(query) else {
                Issue.record("a user query must be answered by handles")
                return
            }
            var writer = RowJSON(found)
            var got: [UInt8] = []
            for h in found.handles { try writer.line(h, into: &got) }
            #expect(found.handles.map(\.location) == records.map(\.location), "seed \(seed)")
            #expect(got == expected, "seed \(seed), timed \(timed), duplicates \(includeDuplicates)")

            let requests = try store.activity(user: "u1", timeRange: range, includeDuplicates: includeDuplicates)
            var expectedActivity: [UInt8] = []
            memo = EventJSONMemo()
            for q in requests { RecordJSON.activityLine(q, into: &expectedActivity, memo: &memo) }
            guard
                let (all, handles) = try store.activityHandles(
                    user: "u1", timeRange: range, includeDuplicates: includeDuplicates)
            else {
                Issue.record("activity without a filter must be answered by handles")
                return
            }
            var activityWriter = RowJSON(all)
            var gotActivity: [UInt8] = []
            for q in handles {
                try activityWriter.activityLine(
                    request: q.request, userEvents: q.userEvents.count, trace: q.trace, into: &gotActivity)
            }
            #expect(gotActivity == expectedActivity, "seed \(seed), activity")
            withExtendedLifetime(writers) {}
        }
    }

    /// Queries the handles do not answer (they need decoded events) are left to `search` and `activity`.
    @Test func filtersLimitsAndServiceTermsKeepTheEventPath() throws {
        let root = NSTemporaryDirectory() + "/auditq-rowjson-none-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (directories, writers) = try SearchLimitPropertyTests.build(root: root, seed: 1)
        let store = try AuditStore(directories: directories)
        #expect(try store.searchHandles(EventQuery(terms: [.user("u1")], limit: 3)) == nil)
        #expect(try store.searchHandles(EventQuery(terms: [])) == nil)
        #expect(try store.searchHandles(EventQuery(terms: [.service("svc")])) == nil)
        #expect(
            try store.searchHandles(EventQuery(terms: [.user("u1")], filter: EventFilter(method: "GET"))) == nil)
        #expect(try store.searchHandles(EventQuery(terms: [.user("u1")])) != nil)
        #expect(
            try store.activityHandles(
                user: "u1", timeRange: 0...UInt64.max, filter: EventFilter(status: .error)) == nil)
        withExtendedLifetime(writers) {}
    }
}
