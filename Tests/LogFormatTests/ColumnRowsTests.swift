import PropertyBased
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
            #expect(found.shapes[Int(row.shape)].hasParent ? row.parent == e.parentSpanID : e.parentSpanID == nil)
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

    /// Columns that pass their CRCs but lie: the rows are the decoder's events or its class of error, for every
    /// column damaged; every row is checked although only some are asked for.
    @Test func hostileColumnsWithGoodChecksumsAreReadOrRefusedAlike() async throws {
        var g = TrafficGenerator(seed: 8)
        let events = tracesOf(g.nextEvents(40)) + hostileTraces(99, 12)
        let block = try ColumnBlock.encode(events, codec: .none)
        let columns = try block.withBytes { (b) throws(LogFormatError) in try ColumnBlock.columns(b) }
        await propertyCheck(count: 1_000, input: Gen.uint64()) { seed in
            let (c, id) = lyingColumns(columns, seed: seed)
            let damaged = ColumnBlock.assemble(c)
            let rows = [Int(seed % UInt64(events.count))]
            #expect(
                viaRows(damaged, rows: rows, expected: events.count)
                    == viaDecoder(damaged, rows: rows, expected: events.count), "seed \(seed), column \(id)")
        }
    }
}
