import PropertyBased
import SyntheticTraffic
import TestSupport
import Testing

@testable import LogFormat

/// The transcoder (`ColumnBlock.canonicalRows`) against the reference it replaces: decode the block into events,
/// encode each with `RecordCodec`. The Merkle leaves are hashed over these bytes, so they must be equal byte for
/// byte, and a block the decoder refuses must be refused with the same class of error.
private enum Outcome: Equatable {
    case rows([UInt8], Int)
    case error(LogFormatError.Code)
}

private func viaEvents(_ block: [UInt8], _ segment: SegmentDictionary? = nil) -> Outcome {
    do throws(LogFormatError) {
        let events = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b, segment: segment) }
        var w = BinaryWriter()
        for e in events {
            let r = RecordCodec.encode(e)
            w.uvarint(r.count)
            w.raw(r)
        }
        return .rows(w.bytes, events.count)
    } catch {
        return .error(error.code)
    }
}

private func viaColumns(_ block: [UInt8], _ segment: SegmentDictionary? = nil) -> Outcome {
    do throws(LogFormatError) {
        var w = BinaryWriter()
        let n = try block.withBytes { (b) throws(LogFormatError) in
            try ColumnBlock.canonicalRows(b, segment: segment, into: &w)
        }
        return .rows(w.bytes, n)
    } catch {
        return .error(error.code)
    }
}

/// The rows of `events` as a row block holds them: `(uvarint n, record)*`.
private func rows(_ events: [AuditEvent]) -> [UInt8] {
    var w = BinaryWriter()
    for e in events {
        let r = RecordCodec.encode(e)
        w.uvarint(r.count)
        w.raw(r)
    }
    return w.bytes
}

/// Values no generator makes by chance: NaN payloads and negative zero, repeated keys, empty against absent,
/// bytes that are not UTF-8, nesting at the deepest a reader takes, every optional part present or not.
func hostile(_ seed: UInt64) -> AuditEvent {
    var g = SplitMix(seed)
    var e = RandomEvents.make(seed: seed)
    func deep(_ n: Int) -> AttributeValue {
        var v = AttributeValue.int(-1)
        for k in 0..<n {
            v = k % 2 == 0 ? .array([v, .empty]) : .keyValueList([Attribute("k", v), Attribute("k", .empty)])
        }
        return v
    }
    let nan = Double(bitPattern: 0x7ff8_0000_dead_beef | (g.next() & 0xffff))
    var extra: [Attribute] = [
        Attribute("nan", .double(nan)), Attribute("snan", .double(Double(bitPattern: 0x7ff0_0000_0000_0001))),
        Attribute("-0", .double(-0.0)), Attribute("dup", .string("a")), Attribute("dup", .string("")),
        Attribute("", .empty), Attribute("bytes", .bytes([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80])),
        Attribute("empty bytes", .bytes([])),
        Attribute("deep", deep(Int(g.next() % UInt64(RecordCodec.maxValueDepth)))),
        Attribute("min", .int(.min)), Attribute("max", .int(.max)),
        // Doubles a revision 2 shape stores as decimals, and ones at the edges of that.
        Attribute("decimal", .double(0.021)), Attribute("tiny", .double(.leastNonzeroMagnitude)),
        Attribute("one", .double(1)),
        Attribute("huge", .double(.greatestFiniteMagnitude)), Attribute("17 digits", .double(0.1 + 0.2)),
        Attribute("inf", .double(-.infinity)),
    ]
    extra.shuffle(using: &g)
    e.attributes += extra.prefix(Int(g.next() % UInt64(extra.count + 1)))
    switch g.next() % 4 {
    case 0: e.body = nil
    case 1: e.body = .string("")
    case 2: e.body = deep(RecordCodec.maxValueDepth - 1)
    default: e.body = .bytes([0xc3, 0x28])
    }
    if g.next() % 3 == 0 {
        e.user = UserIdentity(
            subject: "", email: g.next() % 2 == 0 ? "" : nil, groups: ["", "g", "g"],
            issuer: g.next() % 2 == 0 ? "" : nil,
            origin: .unknown, tokenFingerprint: g.next() % 2 == 0 ? [] : nil)
    }
    if g.next() % 3 == 0 {
        e.http = HTTPFacts(
            method: g.next() % 2 == 0 ? "" : nil, target: g.next() % 2 == 0 ? "" : nil, route: nil,
            statusCode: UInt16(truncatingIfNeeded: g.next()), clientAddress: g.next() % 2 == 0 ? "" : nil)
    }
    if g.next() % 3 == 0 { e.workload = g.next() % 2 == 0 ? "" : nil }
    if g.next() % 2 == 0 {
        e.events.append(
            SpanEvent(
                timeUnixNano: e.startTimeUnixNano &- 1, name: "", attributes: extra, droppedAttributesCount: .max))
        e.links.append(
            SpanLink(
                traceID: e.traceID, spanID: e.spanID, traceState: "", attributes: extra, droppedAttributesCount: 0,
                flags: .max))
    }
    e.droppedAttributesCount = UInt32(truncatingIfNeeded: g.next())
    return e
}

/// Hostile events sharing trace ids and parents (so runs form and parents are named by position).
func hostileTraces(_ seed: UInt64, _ count: Int) -> [AuditEvent] {
    var events = (0..<UInt64(count)).map { $0 % 2 == 0 ? hostile(seed &+ $0) : RandomEvents.make(seed: seed &+ $0) }
    for i in events.indices where i % 3 != 0 {
        events[i].traceID = events[i - i % 3].traceID
        events[i].parentSpanID = events[i - 1].spanID
    }
    // Request ids that are the trace id (revision 2 keeps them in the shape), in another case, or another trace's;
    // and ids of their own (revision 3 keeps a run's once): as hex and as a UUID, in several rows of a run, twice
    // in a row, a second id in a run, and spellings that are not the id (upper case, one digit short).
    for i in events.indices where i % 2 == 1 {
        let hex = events[i].traceID.hex
        let own = OwnRequestID.hex(events[i].traceID)
        let ids = [
            hex, own, hex.uppercased(), OwnRequestID.uuid(own), events[i - 1].traceID.hex, own.uppercased(),
            String(hex.dropLast()), OwnRequestID.hex(events[i - 1].traceID), String(own.dropLast()),
            OwnRequestID.uuid(own).uppercased(),
        ]
        events[i].attributes.insert(Attribute("request_id", .string(ids[i / 2 % ids.count])), at: 0)
        if i % 4 == 3 { events[i].attributes.append(Attribute("guid:x-request-id", .string(OwnRequestID.uuid(own)))) }
    }
    // The row's own traceparent (revision 4 keeps only its flags byte), with flags of every kind, and spellings
    // that are not the row's: upper case, version 01, a digit short, a space after, another span's ids.
    for i in events.indices where i % 3 == 1 {
        let flags = UInt8(truncatingIfNeeded: seed &+ UInt64(i) &* 37)
        let own = "00-\(events[i].traceID.hex)-\(events[i].spanID.hex)-" + HexCoding.encode([flags])
        let variants = [
            own, own.uppercased(), "01" + own.dropFirst(2), String(own.dropLast()), own + " ",
            "00-\(events[i].traceID.hex)-\(events[i - 1].spanID.hex)-01", own,
        ]
        events[i].attributes.append(Attribute("traceparent", .string(variants[i / 3 % variants.count])))
    }
    // A request's hops carry its target (revision 2 stores a repeat within the run as 0).
    for i in events.indices where i % 3 == 2 && events[i].http != nil {
        let target = events[i - 1].http?.target ?? events[i - 2].http?.target
        events[i].http?.target = target
    }
    return tracesOf(events)
}

@Suite struct CanonicalRowsTests {
    /// For generated and hostile events in every codec: the transcoder's bytes are the encoded decoded events,
    /// which are the encoded events themselves.
    @Test func randomAndHostileEventsGiveTheEncodedRecords() async {
        await propertyCheck(count: 60, input: Gen.uint64(), Gen.int(in: 0...24)) { seed, count in
            let events = hostileTraces(seed, count)
            for codec in [CompressionCodec.lz4, .zlib, .none] {
                guard let block = try? ColumnBlock.encode(events, codec: codec) else {
                    Issue.record("seed \(seed): encoding failed")
                    return
                }
                let expected = viaEvents(block)
                #expect(expected == .rows(rows(events), events.count), "seed \(seed), \(codec): the reference")
                #expect(viaColumns(block) == expected, "seed \(seed), \(count) events, \(codec)")
            }
        }
    }

    /// Realistic traffic (the SDK-shaped generator), many blocks' worth.
    @Test func generatedTrafficGivesTheEncodedRecords() throws {
        var g = TrafficGenerator(seed: 21)
        for _ in 0..<4 {
            let events = tracesOf(g.nextEvents(2_000))
            let block = try ColumnBlock.encode(events, codec: .lz4)
            #expect(viaColumns(block) == .rows(rows(events), events.count))
            #expect(viaColumns(block) == viaEvents(block))
        }
    }

    /// The rows are written into the caller's buffer in place: given room for them, it is never copied. (Handing
    /// the visitor's own buffer to one of its methods once shared it, and every append copied the block so far:
    /// verify took 50 times as long, and every answer was still right.)
    @Test func theRowsAreWrittenInPlaceNotCopiedPerAppend() throws {
        var g = TrafficGenerator(seed: 22)
        let events = tracesOf(g.nextEvents(2_000))
        let block = try ColumnBlock.encode(events, codec: .lz4)
        let expected = rows(events)
        var w = BinaryWriter(capacity: expected.count)
        let before = w.bytes.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        let n = try block.withBytes { (b) throws(LogFormatError) in
            try ColumnBlock.canonicalRows(b, into: &w)
        }
        #expect(n == events.count)
        #expect(w.bytes == expected)
        #expect(w.bytes.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == before)
    }

    /// Blocks whose strings are partly in a segment dictionary: ids below its size name its strings.
    @Test func segmentDictionaryStrings() async {
        await propertyCheck(count: 30, input: Gen.uint64(), Gen.int(in: 1...20)) { seed, count in
            let events = hostileTraces(seed, count)
            var g = TrafficGenerator(seed: seed)
            let traffic = tracesOf(g.nextEvents(50))
            var shared: [String] = ["", "unused"]
            for e in traffic + events.prefix(2) {
                for s in [e.name, e.service] + e.attributes.map(\.key) where !shared.contains(s) { shared.append(s) }
            }
            let ids = Dictionary(shared.enumerated().map { ($1, UInt64($0)) }, uniquingKeysWith: { a, _ in a })
            let dictionary = SegmentDictionary(strings: shared)
            for batch in [events, traffic] {
                guard let block = try? ColumnBlock.encode(batch, codec: .lz4, level: 6, shared: ids).payload else {
                    Issue.record("seed \(seed): encoding failed")
                    return
                }
                #expect(viaColumns(block, dictionary) == .rows(rows(batch), batch.count), "seed \(seed)")
                // Without the dictionary, or with too short a one, both refuse the block alike.
                #expect(viaColumns(block) == viaEvents(block), "seed \(seed)")
                let short = SegmentDictionary(strings: Array(shared.prefix(1)))
                #expect(viaColumns(block, short) == viaEvents(block, short), "seed \(seed)")
            }
        }
    }

    @Test func anEmptyBlock() throws {
        let block = try ColumnBlock.encode([], codec: .lz4)
        #expect(viaColumns(block) == .rows([], 0))
    }

    /// Records of 127 bytes or fewer, and of 16384 or more, take a length prefix of other than two bytes.
    @Test func shortAndLongRecords() throws {
        let t = TraceID(high: 1, low: 2)
        let short = AuditEvent(kind: .span, startTimeUnixNano: 1, traceID: t, spanID: SpanID(value: 1))
        var long = AuditEvent(kind: .span, startTimeUnixNano: 2, traceID: t, spanID: SpanID(value: 2))
        long.attributes = [Attribute("big", .string(String(repeating: "y", count: 40_000)))]
        var mid = AuditEvent(kind: .log, startTimeUnixNano: 3, traceID: t, spanID: SpanID(value: 3))
        mid.body = .string(String(repeating: "z", count: 100))
        let events = [short, long, mid, short]
        #expect(RecordCodec.encode(short).count < 128)
        let block = try ColumnBlock.encode(events, codec: .lz4)
        #expect(viaColumns(block) == .rows(rows(events), 4))
    }

    /// Cuts and flips of a whole block: both refuse it, with the same class of error.
    @Test func damagedBlocksAreRefusedAlike() throws {
        var g = TrafficGenerator(seed: 3)
        let block = try ColumnBlock.encode(tracesOf(g.nextEvents(60)), codec: .lz4)
        for n in 0..<block.count {
            let cut = Array(block[0..<n])
            #expect(viaColumns(cut) == viaEvents(cut), "cut at \(n)")
            var flipped = block
            flipped[n] ^= 0x5A
            #expect(viaColumns(flipped) == viaEvents(flipped), "flip at \(n)")
        }
    }

    /// Columns that pass their CRCs but lie (a hostile writer, as in ColumnBlockTests): the transcoder gives the
    /// reference's bytes or its class of error, for every column damaged.
    @Test func hostileColumnsWithGoodChecksumsAreTranscodedOrRefusedAlike() async throws {
        var g = TrafficGenerator(seed: 8)
        let events = tracesOf(g.nextEvents(40)) + hostileTraces(99, 12)
        let block = try ColumnBlock.encode(events, codec: .none)
        let columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
        await propertyCheck(count: 1_000, input: Gen.uint64()) { seed in
            let (c, id) = lyingColumns(columns, seed: seed)
            let damaged = ColumnBlock.assemble(c)
            #expect(viaColumns(damaged) == viaEvents(damaged), "seed \(seed), column \(id)")
        }
    }
}

extension ColumnBlock {
    /// A block of these columns, uncompressed, with good CRCs (what a hostile writer can make).
    static func assemble(_ columns: [ColumnID: [UInt8]]) -> [UInt8] {
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
}
