// A user's rows and the rows of their traces from one read of each block (`auditq activity`). Sealing orders a
// segment's traces by the user of their edge event (segment.md), so the other hops of a user's requests sit in the
// blocks that hold the user's own rows: those blocks are read once, keeping the rows of the user's traces as well,
// and the trace look-up that follows finds its rows there instead of walking the same blocks again.

extension SegmentReader {
    /// `rowHandles(at: ordinals, timeRange:)`, each column block read keeping also every row of its runs of the
    /// traces those records belong to (trace ids from the blocks' trace-run columns, over all the blocks read, so a
    /// trace crossing a block boundary is kept on both sides). Handles are appended only for `ordinals` in
    /// `timeRange`; `read` gets each column block read (block number → its index in `out.blocks`), for
    /// `rowHandles(at:…, reusing:)`. Every block read is checked whole, as `rowHandles` checks it.
    package func rowHandles(
        withTraceRunsOf ordinals: [UInt32], timeRange: ClosedRange<UInt64>?, cache: BlockCache? = nil,
        into out: inout RecordHandles, read: inout [Int: Int32]
    ) throws(LogFormatError) {
        if !(file is MappedFile) { try prefetchBlocks(blocks(holding: ordinals, timeRange: timeRange)) }
        var asked: [(b: Int, location: BlockLocation, wanted: [UInt32])] = []
        try forEachBlock(holding: ordinals, timeRange: timeRange) { (b, location, wanted) in
            asked.append((b, location, wanted))
        }
        // The traces of the asked-for records, from the trace runs of their column blocks.
        var runs: [Int: [(TraceID, Range<UInt32>)]] = [:]
        var traces = Set<TraceID>()
        for (b, _, wanted) in asked where isColumnBlock(b) {
            let blockRuns = try traceRuns(b, cache: cache)
            var k = 0
            for o in wanted {
                while k < blockRuns.count && blockRuns[k].1.upperBound <= o { k += 1 }
                if k < blockRuns.count && blockRuns[k].1.contains(o) { traces.insert(blockRuns[k].0) }
            }
            runs[b] = blockRuns
        }
        var decoded: [StoredRecord] = []
        for (b, location, wanted) in asked {
            guard let blockRuns = runs[b] else {
                // A row block: decoded as `rowHandles` decodes it; its traces are looked up afterwards.
                decoded.removeAll(keepingCapacity: true)
                try records(at: wanted, timeRange: timeRange, cache: cache, into: &decoded)
                for record in decoded { out.append(record) }
                continue
            }
            let first = location.firstOrdinal
            var rows: [Int] = []
            for (id, range) in blockRuns where traces.contains(id) {
                for o in range { rows.append(Int(o - first)) }
            }
            var whole = try cachedColumnRows(b, cache: cache)
            if whole == nil { whole = try columnRows(b, rows, timeRange: nil) }
            guard let held = whole else { continue }
            let k = out.append(block: held)
            read[b] = k
            // The asked-for rows among those held (every one is: each lies in a kept run).
            let added = out.appendRows(
                wanted.map { Int($0 - first) }, of: k, timeRange: timeRange, node: header.nodeID,
                sequence: header.sequence, firstOrdinal: first)
            guard added else {
                throw LogFormatError(
                    .malformed, "block \(b)'s trace runs do not hold the records asked of it", path: path,
                    offset: Int(location.offset))
            }
        }
    }

    /// `ordinals(.traceID, key:)` of each of `ids`, together and ascending. With a version 2 index each block's trace
    /// runs are gone through once for all the ids the index places in it, rather than once per id.
    package func traceOrdinals(_ ids: [TraceID], cache: BlockCache? = nil) throws(LogFormatError) -> [UInt32] {
        guard let index else { return [] }
        guard index.postingsMapToBlocks(.traceID) else {
            var out: [UInt32] = []
            for id in ids { out += try ordinals(.traceID, key: id.bytes, cache: cache) }
            return out.sorted()
        }
        var byBlock: [Int: Set<TraceID>] = [:]
        do throws(LogFormatError) {
            for id in ids {
                for b in try index.traceBlocks(id) { byBlock[b, default: []].insert(id) }
            }
        } catch {
            throw error.path == nil
                ? error.at(path: path, base: Int(footer!.indexOffset) + FormatConstants.blockHeaderSize) : error
        }
        var out: [UInt32] = []
        for b in byBlock.keys.sorted() {
            let wanted = byBlock[b]!
            for (id, range) in try traceRuns(b, cache: cache) where wanted.contains(id) {
                out.append(contentsOf: range)
            }
        }
        return out
    }
}
