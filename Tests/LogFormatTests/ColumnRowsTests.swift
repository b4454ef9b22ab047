import PropertyBased
import Synchronization
import SyntheticTraffic
import TestSupport
import Testing

@testable import LogFormat

/// The rows a writer reads for output (`ColumnBlock.rows`) against the decoder: the same fields and events for the
/// rows asked for, and for a damaged or lying block the decoder's class of error, never a trap.
private enum Outcome: Equatable {
    /// Each event's canonical bytes (events holding NaN are never `==`, their bytes are).
    case rows([[UInt8]])
    case error(LogFormatError.Code)
}

/// The decoder's answer, with the row-count check every reader of a sealed block makes.
private func viaDecoder(_ block: [UInt8], rows: [Int], expected: Int) -> Outcome {
    do throws(LogFormatError) {
        let all = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.decode(b) }
        guard all.count == expected else { return .error(.malformed) }
        return .rows(rows.map { RecordCodec.encode(all[$0]) })
    } catch {
        return .error(error.code)
    }
}

/// The rows' own fields checked against their events, then the events built from the rows.
private func viaRows(_ block: [UInt8], rows: [Int], expected: Int) -> Outcome {
    do throws(LogFormatError) {
        let found = try block.withBytes { (b) throws(LogFormatError) in
            try ColumnBlock.rows(b, rows: rows, segment: nil, expectedRows: expected, timeRange: nil)
        }
        var events: [[UInt8]] = []
        for (i, row) in found.rows.enumerated() {
            let e = try found.event(i)
            #expect(row.start == e.startTimeUnixNano && row.end == e.endTimeUnixNano)
            #expect(row.observed == e.observedTimeUnixNano && row.traceID == e.traceID && row.spanID == e.spanID)
            #expect(found.layouts[Int(row.shape)].hasParent ? row.parent == e.parentSpanID : e.parentSpanID == nil)
            events.append(RecordCodec.encode(e))
        }
        #expect(found.rows.map { Int($0.row) } == rows)
        return .rows(events)
    } catch {
        return .error(error.code)
    }
}

@Suite struct ColumnRowsTests {
    @Test func rowsAreTheDecodedEvents() async {
        await propertyCheck(count: 40, input: Gen.uint64(), Gen.int(in: 0...24)) { seed, count in
            let events = hostileTraces(seed, count)
            var g = SplitMix(seed)
            let some = events.indices.filter { _ in g.next() % 2 == 0 }
            for codec in [CompressionCodec.lz4, .zlib] {
                guard let block = try? ColumnBlock.encode(events, codec: codec) else {
                    Issue.record("seed \(seed): encoding failed")
                    return
                }
                #expect(
                    viaRows(block, rows: some, expected: count) == .rows(some.map { RecordCodec.encode(events[$0]) }),
                    "seed \(seed)")
            }
        }
    }

    /// A block whose header claims another row count, or rows it does not hold, is refused.
    @Test func rowCountsAreChecked() throws {
        let events = hostileTraces(5, 9)
        let block = try ColumnBlock.encode(events, codec: .lz4)
        #expect(viaRows(block, rows: [0], expected: 8) == .error(.malformed))
        #expect(viaRows(block, rows: [0], expected: 10) == .error(.malformed))
        #expect(viaRows(block, rows: [9], expected: 9) == .error(.malformed))
    }

    /// Cuts and flips of a whole block: refused as the decoder refuses them.
    @Test func damagedBlocksAreRefusedAlike() throws {
        var g = TrafficGenerator(seed: 4)
        let events = tracesOf(g.nextEvents(50))
        let block = try ColumnBlock.encode(events, codec: .lz4)
        let rows = [0, 7, 30]
        for n in 0..<block.count {
            let cut = Array(block[0..<n])
            #expect(viaRows(cut, rows: rows, expected: 50) == viaDecoder(cut, rows: rows, expected: 50), "cut \(n)")
            var flipped = block
            flipped[n] ^= 0x5A
            #expect(
                viaRows(flipped, rows: rows, expected: 50) == viaDecoder(flipped, rows: rows, expected: 50),
                "flip \(n)")
        }
    }

    /// Columns that pass their CRCs but lie: when the last row is asked for (so every row is read), the rows are
    /// the decoder's events or its class of error, for every column damaged. With fewer rows asked, the rows after
    /// the last asked for are only counted: the answer is the decoder's rows, or an error where the decoder has
    /// one (reading less, the reader may meet the damage in another column first: a lying trace-runs column was
    /// "truncated" for row 0 where the whole decode had found a parent "malformed"), or rows where the decoder
    /// fails only because of what lies after them (asking for the last row as well then fails as it does).
    @Test func hostileColumnsWithGoodChecksumsAreReadOrRefusedAlike() async throws {
        var g = TrafficGenerator(seed: 8)
        let events = tracesOf(g.nextEvents(40)) + hostileTraces(99, 12)
        let block = try ColumnBlock.encode(events, codec: .none)
        let columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
        let last = events.count - 1
        let readBeforeTheEnd = Mutex(0)
        await propertyCheck(count: 1_000, input: Gen.uint64()) { seed in
            let (c, id) = lyingColumns(columns, seed: seed)
            let damaged = ColumnBlock.assemble(c)
            let row = Int(seed % UInt64(events.count))
            let whole = row == last ? [row] : [row, last]
            let decoded = viaDecoder(damaged, rows: whole, expected: events.count)
            #expect(viaRows(damaged, rows: whole, expected: events.count) == decoded, "seed \(seed), column \(id)")
            let one = viaRows(damaged, rows: [row], expected: events.count)
            switch (one, decoded) {
            case (.rows(let got), .rows(let all)): #expect(got == [all[0]], "seed \(seed), column \(id)")
            case (.error, .error): break
            case (.rows, .error):
                #expect(row < last, "seed \(seed), column \(id)")
                readBeforeTheEnd.withLock { $0 += 1 }
            default: Issue.record("seed \(seed), column \(id): \(one) against the decoder's \(decoded)")
            }
        }
        // The property met damage that lies after the rows read, or it says nothing about them.
        #expect(readBeforeTheEnd.withLock { $0 } > 0)
    }

    /// A block whose rows after the last asked for lie (a values column cut short) gives the rows asked for, which
    /// are the block's, and is refused as the decoder refuses it once its last row is asked for.
    @Test func rowsAfterTheLastAskedAreNotRead() throws {
        var g = TrafficGenerator(seed: 12)
        let events = tracesOf(g.nextEvents(60))
        let block = try ColumnBlock.encode(events, codec: .none)
        var columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
        columns[.values]?.removeLast()
        let damaged = ColumnBlock.assemble(columns)
        let n = events.count
        #expect(viaDecoder(damaged, rows: [0], expected: n) == .error(.truncated))
        #expect(viaRows(damaged, rows: [0, 1], expected: n) == .rows([0, 1].map { RecordCodec.encode(events[$0]) }))
        #expect(viaRows(damaged, rows: [0, n - 1], expected: n) == .error(.truncated))
        // The row count is still checked against the header.
        #expect(viaRows(damaged, rows: [0], expected: n - 1) == .error(.malformed))
        #expect(viaRows(damaged, rows: [0], expected: n + 1) == .error(.malformed))
    }
}

/// The row layouts read straight from a block's shapes column (`Decoder.rowLayout`, what `ColumnBlock.rows` reads)
/// against those taken from the built shapes, and a lying shapes column refused alike.
@Suite struct RowLayoutTests {
    private static func layouts(_ block: [UInt8], build: Bool) -> Result<ColumnBlock.RowLayouts, LogFormatError> {
        Result { () throws(LogFormatError) in
            try block.withBytes { (b) throws(LogFormatError) in
                var d = try ColumnBlock.Decoder(try ColumnBlock.columns(b))
                try d.tables(buildShapes: build)
                return d.layouts
            }
        }
    }

    private static func same(_ a: ColumnBlock.RowLayouts, _ b: ColumnBlock.RowLayouts) -> Bool {
        a.tags == b.tags && a.layouts.count == b.layouts.count
            && zip(a.layouts, b.layouts).allSatisfy { x, y in
                x.kind == y.kind && x.source == y.source && x.parts == y.parts && x.httpParts == y.httpParts
                    && x.hasEmail == y.hasEmail && x.hasFingerprint == y.hasFingerprint && x.groupCount == y.groupCount
                    && x.eventCount == y.eventCount && x.linkCount == y.linkCount && x.resource == y.resource
                    && x.tagStart == y.tagStart && x.tagCount == y.tagCount
            }
    }

    @Test func layoutsAreTheBuiltShapes() async {
        await propertyCheck(count: 40, input: Gen.uint64(), Gen.int(in: 1...30)) { seed, count in
            var g = TrafficGenerator(seed: seed)
            let events = tracesOf(g.nextEvents(count)) + hostileTraces(seed, count)
            guard let block = try? ColumnBlock.encode(events, codec: .lz4) else {
                Issue.record("seed \(seed): encoding failed")
                return
            }
            switch (Self.layouts(block, build: false), Self.layouts(block, build: true)) {
            case (.success(let read), .success(let built)): #expect(Self.same(read, built), "seed \(seed)")
            default: Issue.record("seed \(seed): a block as written is refused")
            }
        }
    }

    @Test func lyingShapesAreRefusedAlike() async throws {
        var g = TrafficGenerator(seed: 21)
        let events = tracesOf(g.nextEvents(40)) + hostileTraces(7, 12)
        let block = try ColumnBlock.encode(events, codec: .none)
        let columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
        await propertyCheck(count: 500, input: Gen.uint64()) { seed in
            var c = columns
            var rng = SplitMix(seed)
            var shapes = c[.shapes] ?? []
            for _ in 0..<(1 + rng.next() % 3) {
                shapes[Int(rng.next() % UInt64(shapes.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.next() % 4 == 0 { shapes.removeLast(Int(rng.next() % UInt64(shapes.count))) }
            c[.shapes] = shapes
            let damaged = ColumnBlock.assemble(c)
            switch (Self.layouts(damaged, build: false), Self.layouts(damaged, build: true)) {
            case (.success(let read), .success(let built)): #expect(Self.same(read, built), "seed \(seed)")
            case (.failure(let a), .failure(let b)): #expect(a.code == b.code, "seed \(seed): \(a) against \(b)")
            case (let a, let b): Issue.record("seed \(seed): \(a) against the built shapes' \(b)")
            }
        }
    }
}
