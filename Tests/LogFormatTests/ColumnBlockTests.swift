import PropertyBased
import SyntheticTraffic
import TestSupport
import Testing

@testable import LogFormat

private func canonical(_ events: [AuditEvent]) -> [[UInt8]] { events.map(RecordCodec.encode) }

private func roundTrip(_ events: [AuditEvent], codec: CompressionCodec = .lz4) throws -> [AuditEvent] {
    let block = try ColumnBlock.encode(events, codec: codec)
    return try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }
}

/// Whether a two-row block of columns `c` is refused by every reader of rows: the decoder, held rows and canonical
/// rows.
private func refusedByEveryRowReader(_ c: [ColumnID: [UInt8]]) -> Bool {
    let payload = ColumnBlock.assemble(c)
    var w = BinaryWriter()
    let decode = try? payload.withBytes { (bytes) throws(LogFormatError) in try ColumnBlock.decode(bytes) }
    let rows = try? payload.withBytes { (bytes) throws(LogFormatError) in
        try ColumnBlock.rows(bytes, rows: [0, 1], segment: nil, expectedRows: 2, timeRange: nil)
    }
    let canonical = try? payload.withBytes { (bytes) throws(LogFormatError) in
        try ColumnBlock.canonicalRows(bytes, into: &w)
    }
    return decode == nil && rows == nil && canonical == nil
}

@Suite struct ColumnBlockTests {
    /// The seal's encode, which moves each event out of the array for its row and back, gives the payload and own
    /// strings of the by-value encode and hands back the events as they were (in the zlib case the rows are
    /// encoded twice, so each event goes out and back twice).
    @Test func lendingEncodeGivesTheSamePayloadAndTheEventsBack() async {
        await propertyCheck(count: 30, input: Gen.uint64(), Gen.int(in: 0...24)) { seed, count in
            let events = (0..<UInt64(count)).map { RandomEvents.make(seed: seed &+ $0) }
            for codec in [CompressionCodec.lz4, .zlib, .none] {
                let byValue = try? ColumnBlock.encode(events, codec: codec, level: 6, shared: ByteKeyTable())
                // Made again, not copied: the array is then the encoder's alone, as the seal's is.
                var lent = (0..<UInt64(count)).map { RandomEvents.make(seed: seed &+ $0) }
                let lending = try? ColumnBlock.encode(lending: &lent, codec: codec, level: 6, shared: ByteKeyTable())
                #expect(lending?.payload == byValue?.payload, "seed \(seed), \(count) events, \(codec)")
                #expect(lending?.own == byValue?.own, "seed \(seed), \(count) events, \(codec)")
                #expect(canonical(lent) == canonical(events), "seed \(seed), \(count) events, \(codec)")
            }
        }
    }

    /// Every field of every kind of event comes back with the same canonical bytes: hostile values included
    /// (huge and non-ASCII strings, NaN payloads, nested values, end before start, repeated keys).
    @Test func randomEventsRoundTripToTheSameCanonicalBytes() async {
        await propertyCheck(count: 50, input: Gen.uint64(), Gen.int(in: 0...24)) { seed, count in
            let events = (0..<UInt64(count)).map { RandomEvents.make(seed: seed &+ $0) }
            for codec in [CompressionCodec.lz4, .zlib, .none] {
                let back = try? roundTrip(events, codec: codec)
                #expect(back.map(canonical) == canonical(events), "seed \(seed), \(count) events, \(codec)")
            }
            // The archive's level.
            let archived = try? ColumnBlock.encode(events, codec: .zlib, level: 9).withBytes {
                (b) throws(LogFormatError) in try ColumnBlock.decode(b)
            }
            #expect(archived.map(canonical) == canonical(events), "seed \(seed), level 9")
        }
    }

    /// Realistic traffic in sealed order: same canonical bytes, and parents found inside their trace.
    @Test func generatedTrafficRoundTrips() throws {
        var g = TrafficGenerator(seed: 11)
        let events = tracesOf(g.nextEvents(3_000))
        let back = try roundTrip(events)
        #expect(canonical(back) == canonical(events))
    }

    /// Decoding chosen rows gives exactly those rows of a whole decode, for hostile events and any subset
    /// (parents named by position point at rows that were skipped).
    @Test func chosenRowsAreTheRowsOfAWholeDecode() async {
        await propertyCheck(count: 40, input: Gen.uint64(), Gen.int(in: 1...30), Gen.uint64()) { seed, count, pick in
            var events = (0..<UInt64(count)).map { RandomEvents.make(seed: seed &+ $0) }
            // Share trace ids and parents, so runs form and skipped rows are named as parents.
            for i in events.indices where i % 3 != 0 {
                events[i].traceID = events[i - i % 3].traceID
                events[i].parentSpanID = events[i - 1].spanID
            }
            let rows = (0..<count).filter { (pick >> UInt64($0 % 64)) & 1 == 1 }
            guard let block = try? ColumnBlock.encode(tracesOf(events), codec: .lz4) else {
                Issue.record("encoding failed")
                return
            }
            let all = try? block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }
            let chosen = try? block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b, rows: rows) }
            #expect(chosen.map(canonical) == all.map { a in canonical(rows.map { a[$0] }) }, "seed \(seed)")
        }
    }

    @Test func askingForARowPastTheBlockIsAnError() throws {
        var g = TrafficGenerator(seed: 3)
        let block = try ColumnBlock.encode(tracesOf(g.nextEvents(20)), codec: .lz4)
        #expect(throws: LogFormatError.self) {
            try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b, rows: [3, 20]) }
        }
    }

    /// The point of the layout: realistic traffic takes far fewer bytes than the same records as rows.
    @Test func columnsAreSmallerThanRows() throws {
        var g = TrafficGenerator(seed: 5)
        let events = tracesOf(g.nextEvents(5_000))
        let columns = try ColumnBlock.encode(events, codec: .lz4)
        var rows: [UInt8] = []
        let raw = canonical(events).flatMap { $0 }
        try raw.withBytes { (b) throws(LogFormatError) in try BlockCompression.compress(b, codec: .lz4, into: &rows) }
        let perEvent = Double(columns.count) / Double(events.count)
        print("column block: \(perEvent) bytes/event; rows with LZ4: \(Double(rows.count) / Double(events.count))")
        #expect(columns.count * 2 < rows.count, "columns \(columns.count) B, rows \(rows.count) B")
    }

    /// Blocks of every revision (docs/format/columns.md, "Revisions") give back the same canonical bytes: revision
    /// 1, which blocks written before the revision column are, and revision 2 stay readable.
    @Test func bothRevisionsRoundTrip() async {
        await propertyCheck(count: 40, input: Gen.uint64(), Gen.int(in: 0...24)) { seed, count in
            let events = hostileTraces(seed, count)
            for revision in [
                ColumnBlock.Revision.first, ColumnBlock.Revision.parentTimes, ColumnBlock.Revision.runRequestIDs,
                ColumnBlock.Revision.current,
            ] {
                for codec in [CompressionCodec.lz4, .zlib] {
                    let back = try? ColumnBlock.encode(
                        events, codec: codec, level: 6, shared: [:], revision: revision
                    ).payload.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }
                    #expect(back.map(canonical) == canonical(events), "seed \(seed), revision \(revision), \(codec)")
                }
            }
        }
    }

    /// Revision 2 keeps request ids that are the trace id in the shape, decimal doubles as decimals and times from
    /// the parent row: generated traffic takes fewer bytes in those columns, and comes back the same.
    @Test func revisionTwoIsSmallerWhereItSaysItIs() throws {
        var g = TrafficGenerator(seed: 12)
        let events = tracesOf(g.nextEvents(4_000))
        func sizes(_ revision: UInt64) throws -> [ColumnID: Int] {
            let block = try ColumnBlock.encode(events, codec: .lz4, level: 6, shared: [:], revision: revision).payload
            let back = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }
            #expect(canonical(back) == canonical(events))
            let columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
            #expect(columns[.revision] == (revision == 1 ? nil : [UInt8(revision)]))
            return columns.mapValues(\.count)
        }
        let one = try sizes(ColumnBlock.Revision.first)
        let two = try sizes(ColumnBlock.Revision.parentTimes)
        print(
            "revision 1 → 2, raw bytes per column: \(ColumnID.allCases.map { "\($0) \(one[$0] ?? 0) → \(two[$0] ?? 0)" })"
        )
        #expect(two[.values]! * 3 < one[.values]! * 2)
        #expect(two[.dictionary]! < one[.dictionary]!)
        #expect(two[.times]! < one[.times]!)
        #expect(two[.http]! < one[.http]!)
        // Request ids here are the trace id and no event holds a traceparent: revisions 3 and 4 write these events
        // as revision 2 does.
        let three = try sizes(ColumnBlock.Revision.runRequestIDs)
        #expect(three.filter { $0.key != .revision } == two.filter { $0.key != .revision })
        let four = try sizes(ColumnBlock.Revision.current)
        #expect(four.filter { $0.key != .revision } == two.filter { $0.key != .revision })
        #expect(three.filter { $0.key != .revision } == two.filter { $0.key != .revision })
    }

    /// Revision 3 keeps a request id that is not the trace id once per trace run (columns.md, tags 0x83 and 0x84):
    /// traffic whose edge draws its request ids takes no dictionary entry and no string id per row for them, the
    /// values column holds 16 bytes per trace, and the events come back the same.
    @Test func revisionThreeStoresARunsRequestIDOnce() throws {
        var c = TrafficGenerator.Configuration(seed: 14)
        c.independentRequestIDs = true
        var g = TrafficGenerator(configuration: c)
        let events = tracesOf(g.nextEvents(4_000))
        let traces = Set(events.map(\.traceID)).count
        func sizes(_ revision: UInt64) throws -> [ColumnID: Int] {
            let block = try ColumnBlock.encode(events, codec: .none, level: 6, shared: [:], revision: revision).payload
            let back = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }
            #expect(canonical(back) == canonical(events))
            var w = BinaryWriter()
            _ = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.canonicalRows(b, into: &w) }
            #expect(
                w.bytes
                    == canonical(events).flatMap { c in
                        var n = BinaryWriter()
                        n.uvarint(c.count)
                        return n.bytes + c
                    })
            return try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }.mapValues(\.count)
        }
        let two = try sizes(ColumnBlock.Revision.parentTimes)
        let three = try sizes(ColumnBlock.Revision.runRequestIDs)
        print(
            "revision 2 → 3 with drawn request ids, \(events.count) events, \(traces) traces: dictionary \(two[.dictionary]!) → \(three[.dictionary]!), values \(two[.values]!) → \(three[.values]!)"
        )
        // Each trace's id was a 17-byte dictionary entry and an id in each row that carries it.
        #expect(two[.dictionary]! - three[.dictionary]! >= 17 * traces * 9 / 10)
        #expect(three[.values]! - two[.values]! <= 16 * traces - traces)
        #expect(three[.dictionary]! + three[.values]! + 2 * traces < two[.dictionary]! + two[.values]!)
    }

    /// The writer's choices (columns.md, "How the writer orders and compresses"): the most used shapes have one-byte
    /// numbers and each part of the shapes column is in byte order; a zlib block's own strings are in memcmp order;
    /// every codec gives back the same rows, and LZ4 blocks (HC for the structured columns) are smaller than
    /// the fast encoder alone would make them.
    @Test func writerOrdersShapesAndZlibStrings() throws {
        var c = TrafficGenerator.Configuration(seed: 15)
        c.independentRequestIDs = true
        var g = TrafficGenerator(configuration: c)
        let events = tracesOf(g.nextEvents(4_000))
        for codec in [CompressionCodec.none, .lz4, .zlib] {
            let block = try ColumnBlock.encode(events, codec: codec)
            let back = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }
            #expect(canonical(back) == canonical(events), "\(codec)")
            let columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
            // Rows per shape number.
            let uses = try #require(columns[.rowShapes]).withBytes { (b) throws(LogFormatError) -> [Int: Int] in
                var r = BinaryReader(b)
                var uses: [Int: Int] = [:]
                while r.remaining > 0 { uses[Int(try r.uvarint()), default: 0] += 1 }
                return uses
            }
            let shapeCount = uses.keys.max()! + 1
            #expect(shapeCount > 127)
            // Every shape numbered from 127 on is used by no more rows than any of the first 127.
            let leastOfFirst = (0..<127).map { uses[$0] ?? 0 }.min()!
            let mostOfRest = (127..<shapeCount).map { uses[$0] ?? 0 }.max()!
            #expect(leastOfFirst >= mostOfRest, "\(codec)")
            // Own strings: memcmp order in a zlib block, first use otherwise.
            let strings = try #require(columns[.dictionary]).withBytes { (b) throws(LogFormatError) -> [[UInt8]] in
                var r = BinaryReader(b)
                var out: [[UInt8]] = []
                for _ in 0..<Int(try r.uvarint()) { out.append(Array(try TokenizedString.decode(&r).utf8)) }
                return out
            }
            let sorted = strings.sorted { $0.lexicographicallyPrecedes($1) }
            if codec == .zlib { #expect(strings == sorted) } else { #expect(strings != sorted) }
        }
        // LZ4: every column but span ids, times and trace runs through the HC encoder.
        let lz4 = try ColumnBlock.encode(events, codec: .lz4)
        let raw = try ColumnBlock.encode(events, codec: .none)
        var fast: [ColumnID: Int] = [:]
        for (id, column) in try raw.withBytes({ (b) throws(LogFormatError) in try ColumnBlock.columns(b) }) {
            var out: [UInt8] = []
            try column.withBytes { (b) throws(LogFormatError) in
                try BlockCompression.compress(b, codec: .lz4, into: &out)
            }
            fast[id] = column.isEmpty ? 0 : out.count
        }
        let stored = try lz4.withBytes { (b) throws(LogFormatError) in try ColumnBlock.storedSizes(b) }
        let shapes = try #require(stored.first { $0.0 == "column shapes" }?.1)
        #expect(shapes < fast[.shapes]! * 9 / 10)
        // Span ids (random) do not shrink: stored as is, with codec 0, fewer bytes than LZ4 makes of them.
        let spanIDs = 8 * events.count
        #expect(fast[.spanIDs]! > spanIDs)
        for block in [lz4, try ColumnBlock.encode(events, codec: .zlib, level: 9)] {
            let sizes = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.storedSizes(b) }
            #expect(sizes.first { $0.0 == "column spanIDs" }?.1 == spanIDs)
            #expect(try Self.columnCodecs(block)[.spanIDs] == CompressionCodec.none)
            #expect(try Self.columnCodecs(block)[.shapes] != CompressionCodec.none)
        }
    }

    /// Each column's codec, as its entry names it.
    static func columnCodecs(_ block: [UInt8]) throws -> [ColumnID: CompressionCodec] {
        try block.withBytes { (b) throws(LogFormatError) -> [ColumnID: CompressionCodec] in
            var r = BinaryReader(b)
            let count = Int(try r.u16())
            _ = try r.u16()
            var out: [ColumnID: CompressionCodec] = [:]
            for _ in 0..<count {
                let id = try r.u8()
                let codec = try r.u8()
                _ = try r.rawSlice(14)
                out[ColumnID(rawValue: id)!] = CompressionCodec(rawValue: codec)!
            }
            return out
        }
    }

    /// A revision this reader does not know is unsupported, however the block is read; a revision column that
    /// is damaged is malformed; the shape-only value tags in a revision 1 block are malformed.
    @Test func unknownRevisionsAreUnsupported() throws {
        var g = TrafficGenerator(seed: 13)
        let events = tracesOf(g.nextEvents(50))
        let block = try ColumnBlock.encode(events, codec: .none)
        let columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
        func code(_ c: [ColumnID: [UInt8]]) -> [LogFormatError.Code?] {
            let payload = ColumnBlock.assemble(c)
            func code(_ body: (UnsafeRawBufferPointer) throws(LogFormatError) -> Void) -> LogFormatError.Code? {
                do throws(LogFormatError) {
                    try payload.withBytes(body)
                    return nil
                } catch {
                    return error.code
                }
            }
            return [
                code { b throws(LogFormatError) in _ = try ColumnBlock.decode(b) },
                code { b throws(LogFormatError) in _ = try ColumnBlock.traceRuns(b) },
                code { b throws(LogFormatError) in
                    _ = try ColumnBlock.countRows(
                        b, segment: nil, expectedRows: 50, timeRange: nil, identities: false, http: false)
                },
                code { b throws(LogFormatError) in
                    var w = BinaryWriter()
                    _ = try ColumnBlock.canonicalRows(b, into: &w)
                },
            ]
        }
        #expect(code(columns) == [nil, nil, nil, nil])
        for revision: [UInt8] in [[0], [1], [5], [0xff, 0x01]] {
            var c = columns
            c[.revision] = revision
            #expect(code(c) == Array(repeating: .unsupportedVersion, count: 4), "revision \(revision)")
        }
        for damaged: [UInt8] in [[], [2, 0], [0x82]] {
            var c = columns
            c[.revision] = damaged
            #expect(code(c).allSatisfy { $0 == .malformed || $0 == .truncated }, "revision column \(damaged)")
        }
        // Revision 2's times and value tags read as revision 1: the tags are refused.
        var c = columns
        c[.revision] = nil
        #expect(code(c)[0] == .malformed)
    }

    /// Revision 3's request id tags (0x83, 0x84) in a block of an earlier revision are malformed; a run's first use
    /// without its 16 bytes is truncated or malformed; for every reader of rows.
    @Test func runRequestIDsThatLieAreMalformed() throws {
        let t = TraceID(high: 5, low: 6)
        let own = OwnRequestID.hex(t)
        var a = AuditEvent(kind: .span, startTimeUnixNano: 1_000, traceID: t, spanID: SpanID(value: 1))
        a.attributes = [Attribute("request_id", .string(own)), Attribute("n", .int(7))]
        var b = a
        b.spanID = SpanID(value: 2)
        b.parentSpanID = a.spanID
        b.attributes = [Attribute("x-request-id", .string(OwnRequestID.uuid(own))), Attribute("n", .int(8))]
        let block = try ColumnBlock.encode([a, b], codec: .none)
        let columns = try block.withBytes { (bytes) throws(LogFormatError) in try ColumnBlock.columns(bytes) }
        // Row a holds the 16 bytes; row b nothing (each int is its one-row shape's constant).
        #expect(columns[.values]?.count == 16)
        #expect(!refusedByEveryRowReader(columns))
        var c = columns
        c[.revision] = [2]
        #expect(refusedByEveryRowReader(c), "revision 3's tags in a revision 2 block")
        c = columns
        c[.values] = Array(columns[.values]![0..<15])
        #expect(refusedByEveryRowReader(c), "a first use with 15 bytes")
        c = columns
        c[.values] = Array(columns[.values]![16...])
        #expect(refusedByEveryRowReader(c), "a first use without its bytes")
    }

    /// Revision 4 keeps a row's own traceparent as its flags byte (columns.md, tag 0x85): access lines that log it
    /// beside the ids it names take a byte for it, not a dictionary entry and an id, and come back the same. The tag
    /// in a block of an earlier revision is malformed, and a row without its byte truncated or malformed, for every
    /// reader of rows.
    @Test func revisionFourKeepsARowsTraceParentAsItsFlags() throws {
        var events: [AuditEvent] = []
        for i in 0..<40 {
            var e = AuditEvent(
                kind: .access, startTimeUnixNano: 1_000 + UInt64(i), traceID: TraceID(high: 5, low: UInt64(i)),
                spanID: SpanID(value: 0x1234_5678_9abc_def0 &+ UInt64(i)))
            let flags = i % 4 == 0 ? "00" : "01"
            e.attributes = [
                Attribute("traceparent", .string("00-\(e.traceID.hex)-\(e.spanID.hex)-\(flags)")),
                Attribute("n", .int(Int64(i))),
            ]
            events.append(e)
        }
        func columns(_ revision: UInt64) throws -> [ColumnID: [UInt8]] {
            let block = try ColumnBlock.encode(events, codec: .none, level: 6, shared: [:], revision: revision)
            return try block.payload.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
        }
        let three = try columns(ColumnBlock.Revision.runRequestIDs)
        let four = try columns(ColumnBlock.Revision.current)
        let back = try ColumnBlock.assemble(four).withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }
        #expect(canonical(back) == canonical(events))
        print(
            "revision 3 → 4, 40 rows with their traceparent: dictionary \(three[.dictionary]!.count) → \(four[.dictionary]!.count), values \(three[.values]!.count) → \(four[.values]!.count)"
        )
        // Forty 55-byte strings were dictionary entries, each named by an id in its row; now a byte a row.
        #expect(three[.dictionary]!.count - four[.dictionary]!.count >= 40 * 25)
        #expect(four[.values]!.count <= three[.values]!.count)
        // Two rows of one shape, for the readers of rows: each holds its flags byte and nothing else.
        var two = Array(events[0..<2])
        for i in two.indices { two[i].attributes.removeLast() }
        let pair = try ColumnBlock.encode(two, codec: .none).withBytes {
            (b) throws(LogFormatError) in try ColumnBlock.columns(b)
        }
        #expect(pair[.values] == [0, 1])
        #expect(!refusedByEveryRowReader(pair))
        var c = pair
        c[.revision] = [3]
        #expect(refusedByEveryRowReader(c), "revision 4's tag in a revision 3 block")
        c = pair
        c[.values] = [0]
        #expect(refusedByEveryRowReader(c), "the second row without its flags byte")
    }

    /// What revision 2 adds, lying with good checksums: a target repeating none, a constant naming a string past
    /// the table, a decimal with an exponent no double needs. Each is malformed, for every reader of rows.
    @Test func revisionTwoReferencesThatLieAreMalformed() throws {
        let t = TraceID(high: 5, low: 6)
        var a = AuditEvent(kind: .span, startTimeUnixNano: 1_000, traceID: t, spanID: SpanID(value: 1))
        a.http = HTTPFacts(method: "GET", target: "/a", route: nil, statusCode: 200, clientAddress: nil)
        a.attributes = [Attribute("mesh", .string("m")), Attribute("time", .double(0.021))]
        var b = a
        b.spanID = SpanID(value: 2)
        b.parentSpanID = a.spanID
        b.attributes[1] = Attribute("time", .double(0.5))
        let block = try ColumnBlock.encode([a, b], codec: .none)
        let columns = try block.withBytes { (bytes) throws(LogFormatError) in try ColumnBlock.columns(bytes) }
        // Row a names its target as id + 1, row b repeats it; the decimals are 21e-3 and 5e-1; "m" is in the shape.
        #expect(columns[.http]?.last == 0)
        #expect(columns[.values] == [42, 5, 10, 1])
        #expect(!refusedByEveryRowReader(columns))
        var c = columns
        c[.http] = [0, 0]
        #expect(refusedByEveryRowReader(c), "a target repeating none")
        c = columns
        c[.values] = [42, 0xA0, 0x1F, 10, 1]
        #expect(refusedByEveryRowReader(c), "an exponent of 1000")
        c = columns
        var shapes = try #require(c[.shapes])
        let at = try #require(shapes.firstIndex(of: ColumnBlock.ShapeTag.constant))
        shapes[at + 2] = 0x7f
        c[.shapes] = shapes
        #expect(
            refusedByEveryRowReader(c), "a constant naming string 127 of a table of \(columns[.dictionary]?.first ?? 0)"
        )
    }

    @Test func anEmptyBlockRoundTrips() throws {
        #expect(try roundTrip([]).isEmpty)
    }

    /// A parent that is in the trace but later in it (a child that started first), and one outside the block.
    @Test func parentsOutsideTheRunOrLaterInItAreKept() throws {
        let t = TraceID(high: 9, low: 9)
        var child = AuditEvent(kind: .span, startTimeUnixNano: 100, traceID: t, spanID: SpanID(value: 2))
        child.parentSpanID = SpanID(value: 1)
        let parent = AuditEvent(kind: .span, startTimeUnixNano: 150, traceID: t, spanID: SpanID(value: 1))
        var orphan = AuditEvent(kind: .span, startTimeUnixNano: 160, traceID: t, spanID: SpanID(value: 3))
        orphan.parentSpanID = SpanID(value: 77)
        var own = AuditEvent(kind: .span, startTimeUnixNano: 170, traceID: t, spanID: SpanID(value: 4))
        own.parentSpanID = SpanID(value: 4)
        let events = [child, parent, orphan, own]
        #expect(canonical(try roundTrip(events)) == canonical(events))
    }

    /// Damage is an error, never a trap: every cut and a flip at every byte of a small block.
    @Test(arguments: [(CompressionCodec.lz4, Int32(6)), (.zlib, 9)])
    func damagedBlocksAreErrorsNotTraps(codec: CompressionCodec, level: Int32) throws {
        var g = TrafficGenerator(seed: 3)
        let events = tracesOf(g.nextEvents(60))
        let block = try ColumnBlock.encode(events, codec: codec, level: level)
        // Span ids stored as is beside compressed columns: the flips below reach both kinds.
        #expect(try Self.columnCodecs(block)[.spanIDs] == CompressionCodec.none)
        for n in 0..<block.count {
            let cut = Array(block[0..<n])
            #expect(throws: LogFormatError.self) {
                try cut.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }
            }
            var flipped = block
            flipped[n] ^= 0x5A
            // A flip in a column's bytes fails its CRC; in the directory it is caught as it is read.
            #expect(throws: LogFormatError.self) {
                try flipped.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }
            }
        }
    }

    /// Columns that pass their CRCs but lie (a hostile writer): decoding fails cleanly or yields events,
    /// never traps. The columns are re-encoded with good CRCs after random bytes are changed.
    @Test func hostileColumnsWithGoodChecksums() async throws {
        var g = TrafficGenerator(seed: 8)
        let events = tracesOf(g.nextEvents(40))
        let block = try ColumnBlock.encode(events, codec: .none)
        let columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
        await propertyCheck(count: 400, input: Gen.uint64()) { seed in
            let (c, _) = lyingColumns(columns, seed: seed)
            var d = try? ColumnBlock.Decoder(c)
            _ = try? d?.events()
        }
    }

    /// The rows counting reads (shape, ids, times, subject, target) are those of a whole decode, for hostile
    /// events and any time range.
    @Test func countRowsAreTheRowsOfAWholeDecode() async {
        await propertyCheck(count: 60, input: Gen.uint64(), Gen.int(in: 0...30), Gen.uint64()) { seed, count, cut in
            var events = (0..<UInt64(count)).map { RandomEvents.make(seed: seed &+ $0) }
            for i in events.indices where i % 3 != 0 { events[i].traceID = events[i - i % 3].traceID }
            // Parents inside the run (revision 2 counts their times from the parent's), and one outside it.
            for i in events.indices where i % 3 == 2 {
                events[i].parentSpanID = events[i - 1 - i % 2].spanID
                let target = events[i - 1].http?.target
                if events[i].http != nil { events[i].http?.target = target }
            }
            // Observed at the start (as the collector's ledgers are): stored as a difference of 0.
            for i in events.indices where i % 4 == 1 && events[i].startTimeUnixNano != 0 {
                events[i].observedTimeUnixNano = events[i].startTimeUnixNano
            }
            guard let block = try? ColumnBlock.encode(tracesOf(events), codec: .lz4) else {
                Issue.record("encoding failed")
                return
            }
            let all = (try? block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }) ?? []
            let starts = all.map(\.startTimeUnixNano).sorted()
            let ends = starts.isEmpty ? [] : [Int(cut % UInt64(starts.count)), Int((cut >> 8) % UInt64(starts.count))]
            let range = ends.isEmpty || cut % 5 == 0 ? nil : starts[ends.min()!]...starts[ends.max()!]
            for (identities, http) in [(false, false), (true, false), (false, true), (true, true)] {
                let got = try? block.withBytes { (b) throws(LogFormatError) in
                    try ColumnBlock.countRows(
                        b, segment: nil, expectedRows: all.count, timeRange: range, identities: identities, http: http)
                }
                guard let got else {
                    Issue.record("countRows failed, seed \(seed)")
                    return
                }
                let want = all.indices.filter { range?.contains(all[$0].startTimeUnixNano) ?? true }
                #expect(got.rows.map { Int($0.row) } == want, "seed \(seed)")
                for r in got.rows {
                    let e = all[Int(r.row)]
                    let s = got.shapes[Int(r.shape)]
                    #expect(r.traceID == e.traceID && r.spanID == e.spanID && r.start == e.startTimeUnixNano)
                    #expect(r.end == e.endTimeUnixNano && s.service == e.service && s.kind == e.kind)
                    #expect(s.source == e.source && s.status == e.statusCode && s.workload == e.workload)
                    if e.kind == .log {
                        #expect(s.eventName == e.eventName && s.attributeKeys == e.attributes.map(\.key))
                    } else {
                        #expect(s.eventName == "" && s.attributeKeys.isEmpty)
                    }
                    #expect(s.hasUser == (e.user != nil) && s.hasHTTP == (e.http != nil))
                    #expect(s.method == e.http?.method && s.route == e.http?.route)
                    #expect(s.httpStatus == (e.http?.statusCode ?? 0) && s.hasTarget == (e.http?.target != nil))
                    #expect((try? got.string(r.subject)) == (identities ? e.user?.subject : nil), "seed \(seed)")
                    #expect((try? got.string(r.target)) == (http ? e.http?.target : nil), "seed \(seed)")
                }
            }
        }
    }

    /// A block whose header gives another row count, and damage to the columns counting reads, are errors.
    @Test func damagedBlocksAreCountErrorsNotTraps() throws {
        var g = TrafficGenerator(seed: 5)
        let events = tracesOf(g.nextEvents(60))
        let block = try ColumnBlock.encode(events, codec: .lz4)
        func count(_ bytes: [UInt8], rows: Int = 60) throws(LogFormatError) -> ColumnCountBlock {
            try bytes.withBytes { (b) throws(LogFormatError) in
                try ColumnBlock.countRows(
                    b, segment: nil, expectedRows: rows, timeRange: nil, identities: true, http: true)
            }
        }
        let whole = try count(block)
        #expect(whole.rows.count == 60)
        do {
            _ = try count(block, rows: 61)
            Issue.record("a block of 60 rows counted as 61")
        } catch {
            #expect(error.message.contains("holds 60 rows, its header says 61"))
        }
        for n in 0..<block.count {
            #expect(throws: LogFormatError.self) { try count(Array(block[0..<n])) }
            var flipped = block
            flipped[n] ^= 0x5A
            // A flip in a column counting reads fails its CRC; in one it does not read (parents, values,
            // extras), the rows are those of the whole block (a count does not check the block's CRC:
            // docs/format/columns.md, "Reading some columns").
            if let rows = try? count(flipped) {
                #expect(rows.rows.map(\.spanID) == whole.rows.map(\.spanID), "flip at \(n)")
            }
        }
    }

    /// Columns that pass their CRCs but lie: counting fails with an error naming what is wrong, or yields rows,
    /// never traps.
    @Test func hostileColumnsWithGoodChecksumsWhenCounting() async throws {
        var g = TrafficGenerator(seed: 9)
        let events = tracesOf(g.nextEvents(40))
        let block = try ColumnBlock.encode(events, codec: .none)
        let columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
        await propertyCheck(count: 400, input: Gen.uint64()) { seed in
            let (c, _) = lyingColumns(columns, seed: seed)
            do throws(LogFormatError) {
                _ = try ColumnBlock.countRows(
                    columns: c, segment: nil, expectedRows: 40, timeRange: nil, identities: true, http: true)
            } catch {
                #expect(!error.message.isEmpty)
            }
        }
    }
}
