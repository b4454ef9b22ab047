// `search` as handles, answered in pieces in its order while it is read. A search's records go out by start time
// across segments, so `searchHandles` holds every block it reads until the last segment is read, and a heavy day's
// blocks (tens of MB of rows and tables) are each on fresh pages, a fault each. The segments are read in order of
// their first time; once every piece of reading that could hold a record before time `t` has been read, the
// records before `t` are final and can be written, and their blocks freed for the next pieces' to reuse.
import LogFormat

extension AuditStore {
    /// `searchHandles(query)` as pieces of reading and a merge of what they read into batches: `read(i)` for each
    /// piece (on any thread, in any order), `Merge.add` for each piece read (one at a time), which gives the
    /// batches that became final, in order. The batches' handles, one after another, are `searchHandles`' handles,
    /// record for record (duplicates dropped the same way); a batch holds no block that only earlier ones name. Nil
    /// when `searchHandles` is nil (the query needs decoded events). The index look-ups and the unsealed segments'
    /// records are read here, on this thread.
    public func searchInOrder(_ query: EventQuery, includeOpenSegments: Bool = true) throws(LogFormatError)
        -> SearchInOrder?
    {
        guard Self.answersAsHandles(query) else { return nil }
        let unsealed = try unsealedHandles(query, includeOpenSegments)
        let asked = try askedSegments(query)
        let rowsAsked = asked.reduce(0) { $0 + $1.ordinals.count }
        let shared = rowsAsked >= rowsWorthSharing.load(ordering: .relaxed)
        // Shared, each segment is read in two parts cut at a block, one after the other: two cores read a segment
        // at once, so that it is final sooner and the last one leaves no core idle.
        let pieces =
            shared
            ? Self.halves(asked.map { ($0.reader, $0.ordinals) }, adjacent: true)
            : asked.indices.map { ($0, asked[$0].ordinals[...]) }
        let readers = asked.map(\.reader)
        return SearchInOrder(
            shared: shared, readers: readers, pieces: pieces,
            earliest: pieces.map { Self.earliest(readers[$0.0], $0.1) }, timeRange: query.timeRange, cache: cache,
            includeDuplicates: query.includeDuplicates, unsealed: unsealed)
    }

    /// The earliest start a record at `ordinals` (ascending) can have: the first time of the earliest block holding
    /// any (0 when one is in no block: reading it fails).
    static func earliest(_ reader: SegmentReader, _ ordinals: ArraySlice<UInt32>) -> UInt64 {
        var t = UInt64.max
        var k = ordinals.startIndex
        while k < ordinals.endIndex {
            guard let b = reader.blockIndex(forOrdinal: ordinals[k]) else { return 0 }
            let block = reader.blocks[b]
            t = min(t, block.minTime)
            let end = block.firstOrdinal + block.recordCount
            while k < ordinals.endIndex && ordinals[k] < end { k += 1 }
        }
        return t
    }
}

/// A search planned by `AuditStore.searchInOrder`: the pieces of reading left, and how to merge what they read into
/// the answer's batches.
public struct SearchInOrder: Sendable {
    /// Whether there are enough rows to read them on every core (`AuditStore`'s threshold).
    public let shared: Bool
    let readers: [SegmentReader]
    /// (index into `readers`, ordinals): a segment's rows, or a part of them cut at a block.
    let pieces: [(Int, ArraySlice<UInt32>)]
    /// Per piece, the earliest start one of its records can have (its blocks' first times).
    let earliest: [UInt64]
    let timeRange: ClosedRange<UInt64>?
    let cache: BlockCache
    let includeDuplicates: Bool
    /// The unsealed segments' records, read already.
    let unsealed: RecordHandles

    /// How many pieces there are to read.
    public var count: Int { pieces.count }

    /// The rows of piece `i`, in no particular order, for `Merge.add`.
    public func read(_ i: Int) throws(LogFormatError) -> RecordHandles {
        let (k, ordinals) = pieces[i]
        var rows = RecordHandles()
        try readers[k].rowHandles(at: Array(ordinals), timeRange: timeRange, cache: cache, into: &rows)
        return rows
    }

    /// A merge of the pieces' rows; its first batches (`Merge.start`) are the unsealed records before every piece.
    public func merge() -> Merge {
        Merge(earliest: earliest, includeDuplicates: includeDuplicates, pending: unsealed)
    }

    /// The rows read and not yet handed out, and the time before which every record has been handed out.
    public struct Merge: Sendable {
        let earliest: [UInt64]
        let includeDuplicates: Bool
        var pending: RecordHandles
        var read: [Bool]
        /// Every record before this time is in a batch handed out, and none after it.
        var done: UInt64 = 0
        /// The first piece not read yet (those before it are).
        var unread = 0

        init(earliest: [UInt64], includeDuplicates: Bool, pending: RecordHandles) {
            self.earliest = earliest
            self.includeDuplicates = includeDuplicates
            self.pending = pending
            read = [Bool](repeating: false, count: earliest.count)
        }

        /// The batches final before any piece is read (the unsealed records before every piece's first time; all
        /// of the answer when there are no pieces).
        public mutating func start() throws(LogFormatError) -> [RecordHandles] {
            try batches()
        }

        /// Takes piece `i`'s rows (each piece once); returns the batches that became final, in order. A row
        /// before the time already handed out (a block holding a record before its stated first time) is refused:
        /// the answer could not be in order.
        public mutating func add(_ i: Int, _ rows: RecordHandles) throws(LogFormatError) -> [RecordHandles] {
            precondition(!read[i], "piece \(i) merged twice")
            if let early = rows.handles.first(where: { $0.start < done }) {
                throw LogFormatError(
                    .malformed,
                    "segment \(early.location.segmentSequence): record \(early.location.ordinal) starts before "
                        + "the first time of its block")
            }
            read[i] = true
            // Taken as it is when nothing is pending (after a batch that took all): no copy.
            if pending.handles.isEmpty && pending.blocks.isEmpty && pending.records.isEmpty {
                pending = rows
            } else {
                pending.append(contentsOf: rows)
            }
            while unread < read.count && read[unread] { unread += 1 }
            return try batches()
        }

        /// The pending records before the earliest time an unread piece can hold, as a batch.
        mutating func batches() throws(LogFormatError) -> [RecordHandles] {
            var until = UInt64.max
            for i in unread..<read.count where !read[i] { until = min(until, earliest[i]) }
            let all = until == .max
            guard all || until > done else { return [] }
            var handles = pending.handles
            pending.handles = []
            AuditStore.sortByTime(&handles)
            let n = all ? handles.count : handles.partitionPoint { $0.start >= until }
            done = all ? .max : until
            guard n > 0 else {
                pending.handles = handles
                return []
            }
            // The records after the cut stay pending, with only the blocks and records they name; the batch keeps
            // the pending blocks as they are, no copy (those it does not name are the pending records', or of
            // records dropped or outside the time range, and go with it).
            let rest = n == handles.count ? RecordHandles() : Self.taking(handles[n...], of: pending)
            handles.removeLast(handles.count - n)
            // Duplicates have the same start time: a record's copies are all in the batch or all pending.
            if !includeDuplicates { try AuditStore.dropDuplicates(&handles, pending) }
            var batch = pending
            batch.handles = handles
            pending = rest
            return [batch]
        }

        /// `handles` (of `all`) with only the blocks and records they name, renumbered.
        static func taking(_ handles: ArraySlice<RecordHandle>, of all: RecordHandles) -> RecordHandles {
            var out = RecordHandles()
            var moved = [Int32](repeating: -1, count: all.blocks.count)
            out.handles.reserveCapacity(handles.count)
            for var h in handles {
                if h.block >= 0 {
                    let b = Int(h.block)
                    if moved[b] < 0 {
                        moved[b] = Int32(out.blocks.count)
                        out.blocks.append(all.blocks[b])
                    }
                    h.block = moved[b]
                } else {
                    out.records.append(all.records[Int(h.item)])
                    h.item = Int32(out.records.count - 1)
                }
                out.handles.append(h)
            }
            return out
        }
    }
}

extension Array {
    /// The index of the first element for which `after` holds, the array being partitioned by it (false, then
    /// true): a binary search.
    fileprivate func partitionPoint(_ after: (Element) -> Bool) -> Int {
        var (low, high) = (0, count)
        while low < high {
            let mid = (low + high) / 2
            if after(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
