// Queries answered as record handles: `search`, `activity` and trace look-ups that read each column block the
// answer needs once and hold its rows (segment, block, row) instead of building an `AuditEvent` per record. A caller
// reads only the columns it shows (`RecordHandles` column accessors) or renders rows straight from their blocks
// (auditq's JSON); either way the answer is the event path's, record for record (HandleQueryTests).
import Dispatch
import LogFormat
import Synchronization

extension AuditStore {
    /// `search` as handles: the same records in the same order, duplicates dropped the same way, each a row of a
    /// column block read once for the whole answer (or a decoded record where there are no columns). Read the
    /// columns wanted through the handles (`RecordHandles.service(_:)`, `userSubject(_:)`, …) or render rows
    /// straight from their blocks. Nil when the query needs decoded events (no index term, a filter, a limit, or a
    /// service term, which must leave ledgers out): then `search` answers it.
    public func searchHandles(_ query: EventQuery, includeOpenSegments: Bool = true) throws(LogFormatError)
        -> RecordHandles?
    {
        var read: [ObjectIdentifier: [Int: Int32]] = [:]
        return try searchHandles(query, includeOpenSegments: includeOpenSegments, keepingTraceRuns: false, read: &read)
    }

    /// `searchHandles`; with `keepingTraceRuns`, each column block read also keeps the rows of the records' traces
    /// (`SegmentReader.rowHandles(withTraceRunsOf:…)`), and `read` gets, per segment handle, the blocks read, for
    /// `traceHandles(…, reusing:)`.
    private func searchHandles(
        _ query: EventQuery, includeOpenSegments: Bool, keepingTraceRuns: Bool,
        read: inout [ObjectIdentifier: [Int: Int32]]
    ) throws(LogFormatError) -> RecordHandles? {
        guard Self.answersAsHandles(query) else { return nil }
        var out = try unsealedHandles(query, includeOpenSegments)
        // The index look-ups on this thread (a light question ends about there); then the blocks of the segments
        // that hold rows, on every core when there are enough rows to share (segments are independent), taken in
        // segment order.
        let asked = try askedSegments(query)
        let rowsAsked = asked.reduce(0) { $0 + $1.ordinals.count }
        let shared = rowsAsked >= rowsWorthSharing.load(ordering: .relaxed)
        // Shared, a search reads each segment's rows in two parts split at a block: the first parts of every
        // segment, then the second ones. A heavy day's 15 segments of about equal size left one core idle for the
        // time of the last one; halves taken last even the cores out, and a second part finds its segment's
        // dictionary read by the first. (Not when trace runs are kept: `read` names a segment's blocks.)
        let parts = shared && !keepingTraceRuns ? Self.halves(asked.map { ($0.reader, $0.ordinals) }) : []
        let tasks = parts.isEmpty ? asked.indices.map { ($0, asked[$0].ordinals[...]) } : parts
        let readers = asked.map(\.reader)
        let found = Self.onEveryCore(tasks.count, if: shared) { (i) throws(LogFormatError) -> SegmentRows in
            let (k, ordinals) = tasks[i]
            let reader = readers[k]
            var rows = SegmentRows()
            if keepingTraceRuns {
                try reader.rowHandles(
                    withTraceRunsOf: Array(ordinals), timeRange: query.timeRange, cache: cache, into: &rows.handles,
                    read: &rows.read)
            } else {
                try reader.rowHandles(
                    at: Array(ordinals), timeRange: query.timeRange, cache: cache, into: &rows.handles)
            }
            return rows
        }
        out.handles.reserveCapacity(out.handles.count + rowsAsked)
        // In segment order, each segment's first part before its second (tasks are in that order when not split).
        let order =
            parts.isEmpty
            ? Array(tasks.indices)
            : tasks.indices.sorted {
                (tasks[$0].0, $0) < (tasks[$1].0, $1)
            }
        for i in order {
            let rows = try found[i].get()
            let offset = out.append(contentsOf: rows.handles)
            if keepingTraceRuns {
                read[ObjectIdentifier(asked[tasks[i].0].handle)] = rows.read.mapValues { $0 + offset }
            }
        }
        var sorted = out.handles
        out.handles = []
        Self.sortByTime(&sorted)
        if !query.includeDuplicates { try Self.dropDuplicates(&sorted, out) }
        out.handles = sorted
        return out
    }

    /// Whether `query` can be answered as handles: it names an index term and needs no decoded events (no filter,
    /// no limit, no service term, which must leave ledgers out).
    static func answersAsHandles(_ query: EventQuery) -> Bool {
        let filter = query.filter
        return !query.terms.isEmpty && filter.isEmpty && query.limit == nil
            && (filter.includeLedgers || !query.terms.contains(where: { $0.field == .service }))
    }

    /// The unsealed segments' records `query` asks for, as handles (none unless `include`).
    func unsealedHandles(_ query: EventQuery, _ include: Bool) throws(LogFormatError) -> RecordHandles {
        var out = RecordHandles()
        guard include else { return out }
        for reader in try openSegmentReaders() {
            for record in try reader.scan(timeRange: query.timeRange, filter: query.matches) { out.append(record) }
        }
        return out
    }

    /// The sealed segments `query`'s time range meets, by their first time, with the ordinals of their records
    /// that its terms name (ascending; segments without any left out): the index look-ups, on this thread.
    func askedSegments(_ query: EventQuery) throws(LogFormatError) -> [(
        handle: SegmentHandle, reader: SegmentReader, ordinals: [UInt32]
    )] {
        let sealed = handles.filter { query.timeRange.map($0.entry.overlaps) ?? true }
            .sorted { ($0.entry.seal.minTime, $0.path) < ($1.entry.seal.minTime, $1.path) }
        var asked: [(handle: SegmentHandle, reader: SegmentReader, ordinals: [UInt32])] = []
        for handle in sealed {
            let reader: SegmentReader
            do { reader = try handle.reader() } catch  where handle.expired { continue }
            let ordinals = try postings(reader, query.terms)
            if !ordinals.isEmpty { asked.append((handle, reader, ordinals)) }
        }
        return asked
    }

    /// Each segment's ordinals (ascending) cut in two at a block near their middle, as (segment, ordinals): the
    /// first parts of every segment in segment order, then the second parts of those that have one (a segment
    /// whose rows lie in one block is not cut); with `adjacent`, each segment's second part right after its first.
    static func halves(_ segments: [(SegmentReader, [UInt32])], adjacent: Bool = false) -> [(Int, ArraySlice<UInt32>)] {
        var first: [(Int, ArraySlice<UInt32>)] = []
        var second: [(Int, ArraySlice<UInt32>)] = []
        for (k, (reader, ordinals)) in segments.enumerated() {
            let cut = ordinals.count < 2 ? 0 : blockCut(reader, ordinals)
            guard cut > 0 && cut < ordinals.count else {
                first.append((k, ordinals[...]))
                continue
            }
            first.append((k, ordinals[..<cut]))
            if adjacent { first.append((k, ordinals[cut...])) } else { second.append((k, ordinals[cut...])) }
        }
        return first + second
    }

    /// Where to cut `ordinals` (ascending, at least two) so that no block's rows are on both sides: at the start of
    /// the middle ordinal's block, or when that is the first, at the end of it; 0 or `ordinals.count` for no cut.
    static func blockCut(_ reader: SegmentReader, _ ordinals: [UInt32]) -> Int {
        let mid = ordinals.count / 2
        guard let b = reader.blockIndex(forOrdinal: ordinals[mid]) else { return 0 }
        let block = reader.blocks[b]
        let start = ordinals.firstIndex { $0 >= block.firstOrdinal } ?? ordinals.count
        if start > 0 { return start }
        return ordinals.firstIndex { $0 >= block.firstOrdinal + block.recordCount } ?? ordinals.count
    }

    /// What one segment gave `searchHandles`: its rows, and the blocks read (block number → index in
    /// `handles.blocks`).
    struct SegmentRows: Sendable {
        var handles = RecordHandles()
        var read: [Int: Int32] = [:]
    }

    /// `work(i)` for each `i` in `0..<count`, on every core when `shared` (`DispatchQueue.concurrentPerform` takes
    /// them in order, each core the next one free), else in order on this thread; the results by index. Errors are
    /// results too: the caller meets the first in index order, as a loop would have.
    static func onEveryCore<T: Sendable>(
        _ count: Int, if shared: Bool, _ work: @Sendable (Int) throws(LogFormatError) -> T
    ) -> [Result<T, LogFormatError>] {
        guard count > 1, shared else {
            return (0..<count).map { i in Result { () throws(LogFormatError) in try work(i) } }
        }
        let results = Mutex([Result<T, LogFormatError>?](repeating: nil, count: count))
        let core = CallerCore()
        DispatchQueue.concurrentPerform(iterations: count) { i in
            core.step()
            let r = Result { () throws(LogFormatError) in try work(i) }
            results.withLock { $0[i] = r }
        }
        return results.withLock { $0.map { $0! } }
    }

    static func sortByTime(_ handles: inout [RecordHandle]) {
        handles.sort { ($0.start, $0.location) < ($1.start, $1.location) }
    }

    /// `dropDuplicates` over handles into `all`: the same records kept. Events are built only for handles with the
    /// same start time, trace and span id as one kept before them, which only retries produce.
    static func dropDuplicates(_ handles: inout [RecordHandle], _ all: RecordHandles) throws(LogFormatError) {
        try dropDuplicates(&handles, start: \.start, traceID: \.traceID, spanID: \.spanID) {
            (a, b) throws(LogFormatError) in try all.event(a) == all.event(b)
        }
    }

    /// `trace(_:near:includeDuplicates:)` as handles: every record of trace `id` in the segments whose time range
    /// overlaps `near` (all when nil) and in the unsealed ones, by start time, duplicates dropped unless kept.
    public func traceHandles(
        _ id: TraceID, near: ClosedRange<UInt64>? = nil, includeOpenSegments: Bool = true,
        includeDuplicates: Bool = false
    ) throws(LogFormatError) -> RecordHandles {
        var all = RecordHandles()
        guard !id.isZero else { return all }
        let found = try traceHandles(
            [id], includeOpenSegments: includeOpenSegments, includeDuplicates: includeDuplicates, into: &all
        ) { handle in near.map(handle.entry.overlaps) ?? true ? [id] : [] }
        all.handles = found[id] ?? []
        return all
    }

    /// `traces(around:slackNanos:)` as handles appended to `all`: every record of each trace, sorted, duplicates
    /// dropped as `traces` drops them. Blocks in `reusing` (per segment handle, as `searchHandles` kept them in
    /// `all`) that hold all the rows asked of them are not read again.
    package func traceHandles(
        around requests: [(id: TraceID, time: UInt64)], slackNanos: UInt64, includeOpenSegments: Bool = true,
        includeDuplicates: Bool = false, into all: inout RecordHandles,
        reusing read: [ObjectIdentifier: [Int: Int32]] = [:]
    ) throws(LogFormatError) -> [TraceID: [RecordHandle]] {
        let sorted = requests.filter { !$0.id.isZero }.sorted { $0.time < $1.time }
        guard !sorted.isEmpty else { return [:] }
        let wanted = Set(sorted.map(\.id))
        return try traceHandles(
            wanted, includeOpenSegments: includeOpenSegments, includeDuplicates: includeDuplicates, into: &all,
            reusing: read,
            idsFor: Self.traceIDs(near: sorted, slackNanos: slackNanos, distinct: wanted.count == sorted.count))
    }

    /// The records of the traces in `wanted`, each segment asked for the ids `idsFor` gives it, appended to `all`'s
    /// blocks (not to its handles) and returned by trace, sorted, duplicates dropped unless kept.
    private func traceHandles(
        _ wanted: Set<TraceID>, includeOpenSegments: Bool, includeDuplicates: Bool, into all: inout RecordHandles,
        reusing read: [ObjectIdentifier: [Int: Int32]] = [:], idsFor: (SegmentHandle) -> [TraceID]
    ) throws(LogFormatError) -> [TraceID: [RecordHandle]] {
        let first = all.handles.count
        for handle in handles {
            let ids = idsFor(handle)
            guard !ids.isEmpty else { continue }
            let reader: SegmentReader
            do { reader = try handle.reader() } catch  where handle.expired { continue }
            let ordinals = try reader.traceOrdinals(ids, cache: cache)
            guard !ordinals.isEmpty else { continue }
            try reader.rowHandles(
                at: ordinals, cache: cache, into: &all, reusing: read[ObjectIdentifier(handle)] ?? [:])
        }
        if includeOpenSegments {
            for reader in try openSegmentReaders() {
                for record in try reader.scan(filter: { wanted.contains($0.traceID) }) { all.append(record) }
            }
        }
        // A trace's rows come in runs (a block holds them together): one look-up per run, not per row.
        var out: [TraceID: [RecordHandle]] = [:]
        var a = first
        while a < all.handles.count {
            let id = all.handles[a].traceID
            var b = a + 1
            while b < all.handles.count && all.handles[b].traceID == id { b += 1 }
            out[id, default: []].append(contentsOf: all.handles[a..<b])
            a = b
        }
        all.handles.removeLast(all.handles.count - first)
        for k in Array(out.keys) {
            Self.sortByTime(&out[k]!)
            if !includeDuplicates { try Self.dropDuplicates(&out[k]!, all) }
        }
        return out
    }

    /// `activity` as handles: the same requests, each with the same records in the same order. The user's blocks
    /// are read once for their rows and the rows of their traces; `records` holds every block read, and each
    /// request's handles name rows of it. Nil when `filter` is set (it needs decoded events): then `activity`
    /// answers.
    public func activityHandles(
        user: String, timeRange: ClosedRange<UInt64>, filter: EventFilter = EventFilter(), limit: Int? = nil,
        traceSlackNanos: UInt64 = 3_600 * 1_000_000_000, includeDuplicates: Bool = false
    ) throws(LogFormatError) -> (records: RecordHandles, requests: [RequestHandles])? {
        guard filter.isEmpty else { return nil }
        var query = EventQuery(terms: [.user(user)], timeRange: timeRange)
        query.includeDuplicates = includeDuplicates
        // Without a limit every request's trace is read, and most of its rows lie in the blocks of the user's own
        // (sealing orders traces by the user of their edge event): those blocks are read once for both.
        var read: [ObjectIdentifier: [Int: Int32]] = [:]
        guard
            var all = try searchHandles(
                query, includeOpenSegments: true, keepingTraceRuns: limit == nil, read: &read)
        else { return nil }
        var order: [TraceID] = []
        var byTrace: [TraceID: [RecordHandle]] = [:]
        var requests: [RequestHandles] = []
        for e in all.handles {
            let id = e.traceID
            if id.isZero {
                requests.append(RequestHandles(request: e, userEvents: [e], trace: [e]))
                continue
            }
            if byTrace[id] == nil { order.append(id) }
            byTrace[id, default: []].append(e)
        }
        for id in order {
            let mine = byTrace[id]!
            let request = mine.first { all.isEdgeOrAccess($0) } ?? mine[0]
            requests.append(RequestHandles(request: request, userEvents: mine, trace: []))
        }
        requests.sort { ($0.request.start, $0.request.location) < ($1.request.start, $1.request.location) }
        if let limit, requests.count > limit { requests.removeLast(requests.count - limit) }
        let wanted = requests.filter { !$0.request.traceID.isZero }
        let traces = try traceHandles(
            around: wanted.map { ($0.request.traceID, $0.userEvents[0].start) }, slackNanos: traceSlackNanos,
            includeDuplicates: includeDuplicates, into: &all, reusing: read)
        for i in requests.indices where !requests[i].request.traceID.isZero {
            requests[i].trace = traces[requests[i].request.traceID] ?? requests[i].userEvents
        }
        return (all, requests)
    }
}

/// One request of `activityHandles`: `UserRequest` as handles (rows of the answer's `RecordHandles`).
public struct RequestHandles: Sendable {
    /// The record of the request: the edge's access event when there is one, else the user's first event.
    public var request: RecordHandle
    /// Every event of the trace that carries the user.
    public var userEvents: [RecordHandle]
    /// Every record of the trace, the request included, by start time.
    public var trace: [RecordHandle]
}
