// The store: plans a query over the catalogs of one or more data directories, answers term + time-range
// queries from the segment indexes, trace-id look-ups across segments, and reads the active (unsealed)
// segments by scanning, so a query sees what a running collector has acknowledged.
import Dispatch
import LogFormat
import Synchronization

/// A conjunction of index terms over a time range of record start times.
public struct EventQuery: Sendable, Hashable {
    public var terms: [Term]
    public var timeRange: ClosedRange<UInt64>?
    /// At most this many records: the earliest by (start time, location), after duplicates are dropped.
    public var limit: Int?
    /// Keep exact duplicates (the same event stored twice, as client retries produce). Off by default: a
    /// query shows each event once; verification and evidence always see every stored copy.
    public var includeDuplicates = false
    /// Conditions on fields the index does not cover (status, HTTP method, path, duration), checked on the
    /// decoded records; `limit` counts only records that pass.
    public var filter = EventFilter()

    public struct Term: Sendable, Hashable {
        public var field: IndexField
        public var value: IndexTerm
        public init(_ field: IndexField, _ value: IndexTerm) {
            self.field = field
            self.value = value
        }
        public static func user(_ s: String) -> Term { Term(.user, .string(s)) }
        public static func group(_ s: String) -> Term { Term(.group, .string(s)) }
        public static func service(_ s: String) -> Term { Term(.service, .string(s)) }
        public static func workload(_ s: String) -> Term { Term(.workload, .string(s)) }
        public static func trace(_ t: TraceID) -> Term { Term(.traceID, .trace(t)) }
    }

    public init(
        terms: [Term] = [], timeRange: ClosedRange<UInt64>? = nil, limit: Int? = nil,
        filter: EventFilter = EventFilter()
    ) {
        self.terms = terms
        self.timeRange = timeRange
        self.limit = limit
        self.filter = filter
    }

    /// Whether an event satisfies the query (used for unsealed segments and for checking the index).
    public func matches(_ event: AuditEvent) -> Bool {
        if let timeRange, !timeRange.contains(event.startTimeUnixNano) { return false }
        return filter.matches(event) && terms.allSatisfy { IndexTerms.matches(event, $0.field, $0.value) }
    }
}

/// Conditions on decoded events that the index cannot answer. Every condition that is set must hold.
public struct EventFilter: Sendable, Hashable {
    public enum Status: Sendable, Hashable {
        /// OTLP status error, or an HTTP status of 500 or more.
        case error
        /// Neither an OTLP error nor an HTTP status of 400 or more.
        case ok
        /// An exact HTTP status code.
        case http(UInt16)
        /// An HTTP status class: 4 for 4xx, 5 for 5xx.
        case httpClass(UInt16)
    }

    public var status: Status?
    /// HTTP method, compared case-insensitively.
    public var method: String?
    /// Prefix of the HTTP target (path and query) or route.
    public var pathPrefix: String?
    /// Events lasting at least this long.
    public var minDurationNanos: Int64?
    /// Also the collector's completeness ledgers (`LedgerRecord`), which queries leave out unless asked.
    public var includeLedgers = false

    public init(status: Status? = nil, method: String? = nil, pathPrefix: String? = nil, minDurationNanos: Int64? = nil)
    {
        self.status = status
        self.method = method
        self.pathPrefix = pathPrefix
        self.minDurationNanos = minDurationNanos
    }

    public var isEmpty: Bool { status == nil && method == nil && pathPrefix == nil && minDurationNanos == nil }

    public func matches(_ e: AuditEvent) -> Bool {
        if !includeLedgers, LedgerRecord.isLedger(e) { return false }
        if let status {
            let code = e.http?.statusCode ?? 0
            switch status {
            case .error: if !(e.statusCode == .error || code >= 500) { return false }
            case .ok: if e.statusCode == .error || code >= 400 { return false }
            case .http(let c): if code != c { return false }
            case .httpClass(let k): if code / 100 != k { return false }
            }
        }
        if let method, e.http?.method?.uppercased() != method.uppercased() { return false }
        if let pathPrefix {
            let target = e.http?.target ?? ""
            let route = e.http?.route ?? ""
            if !(target.hasPrefix(pathPrefix) || route.hasPrefix(pathPrefix)) { return false }
        }
        if let minDurationNanos, e.durationNanos < minDurationNanos { return false }
        return true
    }
}

public final class AuditStore: Sendable {
    public let directories: [DataDirectory]
    /// Sealed segments elsewhere (an object store); a segment also present in a directory is read locally.
    public let remotes: [any RemoteSegments]
    public let cache: BlockCache
    /// Rows asked of the blocks of several segments from which `searchHandles` reads them on every core: below it,
    /// starting the threads costs more than they save (a light user's day is a few rows in a few blocks, about 0.6 ms
    /// each). Tests lower it to take the shared path over small stores.
    package let rowsWorthSharing = Atomic<Int>(1_000)
    /// Segments a look-up of trace ids must open (not yet opened) before it opens them and reads their traces on
    /// every core: opening one is about 15 µs, starting the threads about 100. A trace by id over a cold store opens
    /// every segment. Tests lower it to take the shared path over small stores.
    package let segmentsWorthSharing = Atomic<Int>(16)

    /// A sealed segment known to the store, with its reader opened on first use and then kept (warm).
    final class SegmentHandle: Sendable {
        let directory: DataDirectory
        let entry: CatalogEntry
        let path: String
        /// Where the segment is when it is not in `directory` (whose root is then the remote's location).
        let remote: (any RemoteSegments)?
        private let opened = Mutex<SegmentReader?>(nil)

        init(directory: DataDirectory, entry: CatalogEntry, remote: (any RemoteSegments)? = nil) {
            self.directory = directory
            self.entry = entry
            self.remote = remote
            path = directory.path(relative: entry.relativePath)
        }

        func reader() throws(LogFormatError) -> SegmentReader {
            if let r = opened.withLock({ $0 }) { return r }
            if let remote {
                let r = try remote.open(entry)
                opened.withLock { $0 = r }
                return r
            }
            let r: SegmentReader
            do {
                r = try SegmentReader(path: path, sealed: true)
            } catch {
                // A retention job moved the segment to the archive tier after the catalog was read: the archive
                // copy has the same seal and records. (A reader opened earlier keeps its mapping of the old file.)
                let moved = directory.archivePath + "/" + (path.split(separator: "/").last.map(String.init) ?? "")
                guard !FileIO.exists(path), moved != path, FileIO.exists(moved) else { throw error }
                r = try SegmentReader(path: moved, sealed: true)
            }
            opened.withLock { $0 = r }
            return r
        }

        /// Whether `reader()` has opened the segment already.
        var isOpen: Bool { opened.withLock { $0 != nil } }

        /// True when the segment expired by policy after the catalog was read.
        var expired: Bool {
            remote == nil && !FileIO.exists(path) && FileIO.exists(directory.tombstonePath(sequence: entry.sequence))
        }
    }

    private let snapshot = Mutex([SegmentHandle]())

    /// Opens the store over `directories`; reads their catalogs (rebuilding in memory any that is missing or
    /// stale, without writing to a directory a collector may own).
    /// `cacheDecodedBlocks`: keep decoded column blocks for later questions (a long-lived store); a process that
    /// asks one question passes false (see `BlockCache.keepsEvents`).
    /// `provisional`: open the remotes on their last listing when they have one in their cache while a fresh one
    /// is in flight (`RemoteSegments.provisionalEntries`); ask only through `answer`, which settles it.
    public init(
        directories: [DataDirectory], remotes: [any RemoteSegments] = [], cacheBytes: Int = 256 << 20,
        cacheDecodedBlocks: Bool = true, provisional: Bool = false
    ) throws(LogFormatError) {
        self.directories = directories
        self.remotes = remotes
        cache = BlockCache(capacityBytes: cacheBytes, keepsEvents: cacheDecodedBlocks)
        try refresh(provisional: provisional)
    }

    /// Whether a remote was opened on provisional entries not yet settled.
    private let unsettled = Mutex(false)

    /// Re-reads the catalogs, so segments sealed since are seen. Readers of local segments still listed are kept;
    /// remote ones are opened again (over the objects' cache files, so nothing is fetched again).
    public func refresh() throws(LogFormatError) { try refresh(provisional: false) }

    /// `body`'s answer exactly as over the remotes' fresh listings. A store opened provisionally answers on the
    /// last listing while the fresh one is in flight; then it waits for it, and when it differs (a segment added,
    /// deleted or replaced) refreshes (remote readers opened again over their cache files, new segments fetched)
    /// and answers again. An error met on the provisional listing (an object deleted since) counts only if the
    /// fresh one gives it again.
    public func answer<T>(_ body: (AuditStore) throws(LogFormatError) -> T) throws(LogFormatError) -> T {
        let first: Result<T, LogFormatError>
        do throws(LogFormatError) { first = .success(try body(self)) } catch { first = .failure(error) }
        if try settle() { return try body(self) }
        return try first.get()
    }

    /// Waits for the fresh listings of remotes opened provisionally; true when one differed and the store was
    /// refreshed to it.
    public func settle() throws(LogFormatError) -> Bool {
        guard
            unsettled.withLock({ v in
                defer { v = false }
                return v
            })
        else { return false }
        var changed = false
        for remote in remotes where try remote.settle() { changed = true }
        if changed {
            // Blocks read on the provisional listing are keyed by node and sequence, which a replaced object keeps.
            cache.removeAll()
            try refresh(provisional: false)
        }
        return changed
    }

    private func refresh(provisional: Bool) throws(LogFormatError) {
        let old = Dictionary(snapshot.withLock { $0 }.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        var handles: [SegmentHandle] = []
        for d in directories {
            for entry in try d.currentCatalog(repair: false).entries {
                let path = d.path(relative: entry.relativePath)
                if let h = old[path], h.entry == entry {
                    handles.append(h)
                } else {
                    handles.append(SegmentHandle(directory: d, entry: entry))
                }
            }
        }
        var local = Set(handles.map { SegmentID(node: $0.entry.nodeID, sequence: $0.entry.sequence) })
        var anyProvisional = false
        for remote in remotes {
            let root = DataDirectory(remote.location)
            var entries: [CatalogEntry]
            if provisional, let p = remote.provisionalEntries() {
                entries = p
                anyProvisional = true
            } else {
                entries = try remote.entries()
            }
            for entry in entries
            where local.insert(SegmentID(node: entry.nodeID, sequence: entry.sequence)).inserted {
                // Opened afresh: an object replaced under its key (another ETag) may carry the same seal, and its
                // reader must read the new object (the remote opens its cache file by key and ETag).
                handles.append(SegmentHandle(directory: root, entry: entry, remote: remote))
            }
        }
        let fresh = handles
        snapshot.withLock { $0 = fresh }
        unsettled.withLock { $0 = anyProvisional }
    }

    /// `work` over the readers of `handles` when some are read from a remote that fetches on demand. They are
    /// taken in order on this thread while they find everything in the local cache (a warm query starts no
    /// thread); from the first that had to fetch, the rest run on threads of their own, up to `width` at a time, so
    /// that their round trips overlap (the reader code is the same; its byte source fetches what it touches). Nil
    /// when there is nothing to overlap (local only, or one remote segment): the caller then reads in order. A
    /// handle that expired, or whose work threw, holds its error for the caller to meet in order.
    func overlappingRemote<T: Sendable>(
        _ handles: [SegmentHandle], width: Int = 16,
        _ work: @escaping @Sendable (Int, SegmentReader) throws(LogFormatError) -> T
    ) -> [Result<T, LogFormatError>?]? {
        let remote = handles.indices.filter { handles[$0].remote?.fetchesOnDemand ?? false }
        guard remote.count > 1 else { return nil }
        let results = Mutex([Result<T, LogFormatError>?](repeating: nil, count: handles.count))
        @Sendable func run(_ i: Int) {
            let r = Result { () throws(LogFormatError) -> T in try work(i, try handles[i].reader()) }
            results.withLock { $0[i] = r }
        }
        func requests() -> Int { remotes.reduce(0) { $0 + $1.requestsMade } }
        let before = requests()
        var k = 0
        while k < remote.count {
            run(remote[k])
            k += 1
            if requests() != before { break }
        }
        let rest = Array(remote[k...])
        guard !rest.isEmpty else { return results.withLock { $0 } }
        let next = Atomic<Int>(0)
        let group = DispatchGroup()
        for w in 0..<min(width, rest.count) {
            // A serial queue of its own each: a thread that may block on its fetches without holding up the others.
            DispatchQueue(label: "audit-store.remote.\(w)").async(group: group) {
                while true {
                    let n = next.add(1, ordering: .relaxed).oldValue
                    guard n < rest.count else { return }
                    run(rest[n])
                }
            }
        }
        group.wait()
        return results.withLock { $0 }
    }

    var handles: [SegmentHandle] { snapshot.withLock { $0 } }

    struct SegmentID: Hashable {
        var node: NodeID
        var sequence: UInt64
    }

    /// Every sealed segment the store knows, with its directory.
    public var sealedSegments: [(directory: DataDirectory, entry: CatalogEntry)] {
        handles.map { ($0.directory, $0.entry) }
    }

    /// The reader of a sealed segment (opened once, then kept).
    public func reader(_ directory: DataDirectory, _ entry: CatalogEntry) throws(LogFormatError) -> SegmentReader {
        let path = directory.path(relative: entry.relativePath)
        if let h = handles.first(where: { $0.path == path }) { return try h.reader() }
        return try SegmentReader(path: path, sealed: true)
    }

    /// Readers of the unsealed segments, opened afresh on every call (they grow).
    public func openSegmentReaders() throws(LogFormatError) -> [SegmentReader] {
        var out: [SegmentReader] = []
        let sealed = Set(handles.map(\.path))
        for d in directories {
            for name in try d.listSegmentFiles().open {
                // A write-ahead log whose sealed file the catalog already names (laid out, log not yet removed)
                // is read from the sealed file; reading both would show its records twice.
                if let sequence = DataDirectory.sequence(ofFileName: name) {
                    let sealedPath = d.segmentsPath + "/" + DataDirectory.fileName(sequence: sequence, sealed: true)
                    if sealed.contains(sealedPath) { continue }
                }
                do {
                    out.append(try SegmentReader(path: d.segmentsPath + "/" + name, sealed: false))
                } catch  where error.code == .io && !FileIO.exists(d.segmentsPath + "/" + name) {
                    continue  // sealed (renamed) between listing and opening: the catalog has it after refresh()
                } catch  where error.code == .truncated {
                    continue  // created, header not yet written
                }
            }
        }
        return out
    }

    /// Records matching `query`, ordered by start time (ties by location). With a limit, exactly the first
    /// `limit` of that order (after duplicates are dropped), whatever the catalog order of nodes and directories.
    public func search(_ query: EventQuery, includeOpenSegments: Bool = true) throws(LogFormatError) -> [StoredRecord] {
        var out: [StoredRecord] = []
        let filter = query.filter
        // Unsealed segments have no catalog time range, so with a limit they are read first, whole: then the
        // cut below sees them and sealed segments are only asked to beat what they hold.
        if includeOpenSegments {
            for reader in try openSegmentReaders() {
                out += try reader.scan(timeRange: query.timeRange, filter: query.matches)
            }
        }
        // Sealed segments by their earliest record. Once `limit` records are held, a segment whose earliest
        // record starts after the last one held cannot contribute, and neither can any after it.
        var cutoff: UInt64? = nil
        if let limit = query.limit { cutoff = keepEarliest(&out, limit, query.includeDuplicates) }
        let sealed = handles.filter { query.timeRange.map($0.entry.overlaps) ?? true }
            .sorted { ($0.entry.seal.minTime, $0.path) < ($1.entry.seal.minTime, $1.path) }
        // Remote segments are looked up, and their blocks fetched, several at a time first (with a limit only
        // looked up: the cutoff below may make their blocks unnecessary).
        let terms = query.terms
        let timeRange = query.timeRange
        let fetchBlocks = query.limit == nil
        let early = overlappingRemote(sealed) { (_, reader) throws(LogFormatError) -> [UInt32] in
            guard !terms.isEmpty else {
                if fetchBlocks { try reader.prefetchBlocks(reader.blocks(overlapping: timeRange)) }
                return []
            }
            let ordinals = try self.postings(reader, terms, timeRange: timeRange)
            if fetchBlocks && !ordinals.isEmpty {
                try reader.prefetchBlocks(reader.blocks(holding: ordinals, timeRange: timeRange))
            }
            return ordinals
        }
        for (n, handle) in sealed.enumerated() {
            if let cutoff, handle.entry.seal.minTime > cutoff { break }
            let reader: SegmentReader
            do { reader = try handle.reader() } catch  where handle.expired { continue }
            let before = out.count
            if query.terms.isEmpty {
                out += try reader.scan(timeRange: query.timeRange, cache: cache, filter: filter.matches)
            } else {
                let ordinals: [UInt32]
                if case .success(let o)? = early?[n] {
                    ordinals = o
                } else {
                    ordinals = try postings(reader, query.terms, timeRange: query.timeRange)
                }
                if !ordinals.isEmpty {
                    try reader.records(at: ordinals, timeRange: query.timeRange, cache: cache, into: &out)
                }
                // Only a service term can select a ledger record (it has no user, workload, group or trace id).
                if !filter.isEmpty || (!filter.includeLedgers && query.terms.contains { $0.field == .service }) {
                    var kept = before
                    for i in before..<out.count where filter.matches(out[i].event) {
                        out.swapAt(kept, i)
                        kept += 1
                    }
                    out.removeLast(out.count - kept)
                }
            }
            if let limit = query.limit, out.count > before {
                cutoff = keepEarliest(&out, limit, query.includeDuplicates)
            }
        }
        Self.sortByTime(&out)
        if !query.includeDuplicates { Self.dropDuplicates(&out) }
        if let limit = query.limit, out.count > limit { out.removeLast(out.count - limit) }
        return out
    }

    static func sortByTime(_ records: inout [StoredRecord]) {
        records.sort { ($0.event.startTimeUnixNano, $0.location) < ($1.event.startTimeUnixNano, $1.location) }
    }

    /// Cuts `records` to the first `limit` by (start time, location), duplicates dropped unless kept, and returns
    /// the start time of the last one kept once there are `limit` of them (nil while there are fewer). Safe to
    /// apply as records arrive: a record cut here sorts after `limit` distinct ones and more records only push it
    /// further back; a later copy of a kept event has the same start time, so it is read before the cutoff stops
    /// the visit, and the copy with the smaller location stays.
    private func keepEarliest(_ records: inout [StoredRecord], _ limit: Int, _ includeDuplicates: Bool) -> UInt64? {
        guard records.count >= limit else { return nil }
        Self.sortByTime(&records)
        if !includeDuplicates { Self.dropDuplicates(&records) }
        guard records.count >= limit else { return nil }
        records.removeLast(records.count - limit)
        return records[limit - 1].event.startTimeUnixNano
    }

    /// Drops records equal to an earlier one (by value: every field), keeping the first stored copy. Client
    /// retries (OTLP is at-least-once) store the same event twice; storage keeps both, because the Merkle tree
    /// commits to what was received, and queries show it once. `records` must be sorted by start time, which
    /// makes duplicates neighbours within a run of equal start times.
    public static func droppingDuplicates(_ records: [StoredRecord]) -> [StoredRecord] {
        var out = records
        dropDuplicates(&out)
        return out
    }

    /// `droppingDuplicates` in place: records are moved, never copied (a copy retains each of an event's
    /// references, which a heavy user's thousands of records make a visible cost).
    public static func dropDuplicates(_ records: inout [StoredRecord]) {
        dropDuplicates(
            &records, start: \.event.startTimeUnixNano, traceID: \.event.traceID, spanID: \.event.spanID,
            equal: { $0.event == $1.event })
    }

    /// The one duplicate check of records and of handles: `items` sorted by start time, each compared (`equal`,
    /// whole events) only with the items kept before it that have its start time, trace id and span id; the
    /// first of equal items stays. Items are moved, never copied.
    static func dropDuplicates<T, E: Error>(
        _ items: inout [T], start: (T) -> UInt64, traceID: (T) -> TraceID, spanID: (T) -> SpanID,
        equal: (T, T) throws(E) -> Bool
    ) throws(E) {
        var kept = 0
        var runStart = 0
        for i in items.indices {
            if kept > 0, start(items[kept - 1]) != start(items[i]) { runStart = kept }
            var duplicate = false
            for j in runStart..<kept
            where spanID(items[j]) == spanID(items[i]) && traceID(items[j]) == traceID(items[i]) {
                if try equal(items[j], items[i]) {
                    duplicate = true
                    break
                }
            }
            if !duplicate {
                if kept != i { items.swapAt(kept, i) }
                kept += 1
            }
        }
        items.removeLast(items.count - kept)
    }

    /// Intersection of the posting lists of `terms` in one segment, smallest list first. With `timeRange`, records
    /// of blocks outside it may be left out (the caller keeps only records in the range).
    public func postings(
        _ reader: SegmentReader, _ terms: [EventQuery.Term], timeRange: ClosedRange<UInt64>? = nil
    ) throws(LogFormatError) -> [UInt32] {
        guard reader.index != nil else { return [] }
        var lists: [[UInt32]] = []
        for t in terms {
            let p = try reader.ordinals(t.field, key: t.value.keyBytes, cache: cache, timeRange: timeRange)
            if p.isEmpty { return [] }
            lists.append(p)
        }
        lists.sort { $0.count < $1.count }
        var result = lists[0]
        for l in lists.dropFirst() {
            result = intersectSorted(result, l)
            if result.isEmpty { break }
        }
        return result
    }

    /// Every record of each trace in `ids`, across all segments whose time range overlaps `near` (all
    /// segments when nil). One pass over the segments serves all ids. `includeDuplicates` keeps every stored
    /// copy of an event (as retries produce); by default each event appears once.
    public func traces(
        _ ids: [TraceID], near: ClosedRange<UInt64>? = nil, includeOpenSegments: Bool = true,
        includeDuplicates: Bool = false
    ) throws(LogFormatError) -> [TraceID: [StoredRecord]] {
        guard !ids.isEmpty else { return [:] }
        let unique = Array(Set(ids))
        let keys = unique.map(\.bytes)
        return try collectTraces(
            Set(unique), includeOpenSegments: includeOpenSegments, includeDuplicates: includeDuplicates
        ) {
            handle in near.map(handle.entry.overlaps) ?? true ? keys : []
        }
    }

    /// Every record of the traces started by `requests`, each trace looked up only in the segments whose time
    /// range comes within `slackNanos` of its request's start (a trace's hops start near its request), so a
    /// segment is asked only for the traces that can be in it.
    public func traces(
        around requests: [(id: TraceID, time: UInt64)], slackNanos: UInt64, includeOpenSegments: Bool = true,
        includeDuplicates: Bool = false
    ) throws(LogFormatError) -> [TraceID: [StoredRecord]] {
        let sorted = requests.filter { !$0.id.isZero }.sorted { $0.time < $1.time }
        guard !sorted.isEmpty else { return [:] }
        let wanted = Set(sorted.map(\.id))
        let idsFor = Self.traceIDs(near: sorted, slackNanos: slackNanos, distinct: wanted.count == sorted.count)
        return try collectTraces(
            wanted, includeOpenSegments: includeOpenSegments, includeDuplicates: includeDuplicates
        ) { idsFor($0).map(\.bytes) }
    }

    /// For each segment, the traces of `sorted` (by time) whose request comes within `slackNanos` of the segment's
    /// time range, each once. `distinct`: no id appears twice in `sorted` (one request per trace, as `activity`
    /// asks), so a segment's ids need no set to drop repeats (hashing trace ids was about an eighth of a heavy
    /// activity through handles).
    static func traceIDs(near sorted: [(id: TraceID, time: UInt64)], slackNanos: UInt64, distinct: Bool)
        -> (SegmentHandle) -> [TraceID]
    {
        let times = sorted.map(\.time)
        return { handle in
            let seal = handle.entry.seal
            guard seal.recordCount > 0 else { return [] }
            let lo = seal.minTime.subtractingClamped(slackNanos)
            let hi = seal.maxTime.addingClamped(slackNanos)
            // First request at or after `lo`.
            var a = 0
            var b = times.count
            while a < b {
                let m = (a + b) / 2
                if times[m] < lo { a = m + 1 } else { b = m }
            }
            var end = a
            while end < sorted.count && sorted[end].time <= hi { end += 1 }
            if distinct { return sorted[a..<end].map(\.id) }
            var seen = Set<TraceID>()
            var ids: [TraceID] = []
            for k in a..<end where seen.insert(sorted[k].id).inserted { ids.append(sorted[k].id) }
            return ids
        }
    }

    private func collectTraces(
        _ wanted: Set<TraceID>, includeOpenSegments: Bool, includeDuplicates: Bool,
        keysFor: (SegmentHandle) -> [[UInt8]]
    ) throws(LogFormatError) -> [TraceID: [StoredRecord]] {
        var out: [TraceID: [StoredRecord]] = [:]
        var found: [StoredRecord] = []
        let asked = handles.map { (handle: $0, keys: keysFor($0)) }.filter { !$0.keys.isEmpty }
        let cache = self.cache
        let keysOf = asked.map(\.keys)
        let handlesAsked = asked.map(\.handle)
        @Sendable func lookUp(_ i: Int, _ reader: SegmentReader) throws(LogFormatError) -> [StoredRecord] {
            let ordinals = try Self.traceOrdinals(reader, keys: keysOf[i], cache: cache)
            return ordinals.isEmpty ? [] : try reader.records(at: ordinals, cache: cache)
        }
        // Remote segments are looked up and read several at a time first; local ones that must be opened on every
        // core when there are enough of them. The loop below takes their records in order (and meets any error
        // again, in order).
        let unopened = handlesAsked.count { !$0.isOpen }
        let early =
            overlappingRemote(handlesAsked, lookUp)
            ?? (unopened >= segmentsWorthSharing.load(ordering: .relaxed)
                ? Self.onEveryCore(handlesAsked.count, if: true) { (i) throws(LogFormatError) in
                    try lookUp(i, try handlesAsked[i].reader())
                }.map { Optional($0) } : nil)
        for (n, (handle, keys)) in asked.enumerated() {
            if case .success(let records)? = early?[n] {
                for record in records { out[record.event.traceID, default: []].append(record) }
                continue
            }
            let reader: SegmentReader
            do { reader = try handle.reader() } catch  where handle.expired { continue }
            let ordinals = try Self.traceOrdinals(reader, keys: keys, cache: cache)
            guard !ordinals.isEmpty else { continue }
            found.removeAll(keepingCapacity: true)
            try reader.records(at: ordinals, cache: cache, into: &found)
            // Moved, not copied; each trace is sorted below.
            while let record = found.popLast() { out[record.event.traceID, default: []].append(record) }
        }
        if includeOpenSegments {
            for reader in try openSegmentReaders() {
                for record in try reader.scan(filter: { wanted.contains($0.traceID) }) {
                    out[record.event.traceID, default: []].append(record)
                }
            }
        }
        // In place: the keys first, so that no copy of the dictionary is alive while its values change.
        for k in Array(out.keys) {
            out[k]!.sort { ($0.event.startTimeUnixNano, $0.location) < ($1.event.startTimeUnixNano, $1.location) }
            if !includeDuplicates { Self.dropDuplicates(&out[k]!) }
        }
        return out
    }

    /// The ordinals, ascending, of the records whose trace id key is one of `keys` (none without an index).
    static func traceOrdinals(_ reader: SegmentReader, keys: [[UInt8]], cache: BlockCache) throws(LogFormatError)
        -> [UInt32]
    {
        guard reader.index != nil else { return [] }
        var ordinals: [UInt32] = []
        for key in keys { ordinals += try reader.ordinals(.traceID, key: key, cache: cache) }
        ordinals.sort()
        return ordinals
    }

    /// Every record of one trace.
    public func trace(
        _ id: TraceID, near: ClosedRange<UInt64>? = nil, includeDuplicates: Bool = false
    ) throws(LogFormatError) -> [StoredRecord] {
        try traces([id], near: near, includeDuplicates: includeDuplicates)[id] ?? []
    }

    /// The user-to-traces join: each event carrying `user` in `timeRange`, with every record of the trace it
    /// belongs to (downstream hops need not carry the user). Each trace is looked up in the segments within
    /// `traceSlackNanos` of its event.
    public func userTraces(
        user: String, timeRange: ClosedRange<UInt64>, traceSlackNanos: UInt64 = 3_600 * 1_000_000_000
    ) throws(LogFormatError) -> [(event: StoredRecord, trace: [StoredRecord])] {
        let events = try search(EventQuery(terms: [.user(user)], timeRange: timeRange))
        let traces = try self.traces(
            around: events.map { ($0.event.traceID, $0.event.startTimeUnixNano) }, slackNanos: traceSlackNanos)
        return events.map { ($0, $0.event.traceID.isZero ? [$0] : traces[$0.event.traceID] ?? [$0]) }
    }

    /// What a user did: one entry per request the user made (per trace the user's events belong to; an event
    /// without a trace id is a request of its own), with every record of that trace, oldest request first.
    /// `filter` applies to each request's record and `limit` to the requests that pass; only the traces of the
    /// requests returned are read. `includeDuplicates` keeps every stored copy of an event (evidence shows what
    /// was stored).
    public func activity(
        user: String, timeRange: ClosedRange<UInt64>, filter: EventFilter = EventFilter(), limit: Int? = nil,
        traceSlackNanos: UInt64 = 3_600 * 1_000_000_000, includeDuplicates: Bool = false
    ) throws(LogFormatError) -> [UserRequest] {
        var query = EventQuery(terms: [.user(user)], timeRange: timeRange)
        query.includeDuplicates = includeDuplicates
        let events = try search(query)
        var order: [TraceID] = []
        var byTrace: [TraceID: [StoredRecord]] = [:]
        var requests: [UserRequest] = []
        for e in events {
            let id = e.event.traceID
            if id.isZero {
                requests.append(UserRequest(request: e, userEvents: [e], trace: [e]))
                continue
            }
            if byTrace[id] == nil { order.append(id) }
            byTrace[id, default: []].append(e)
        }
        for id in order {
            let mine = byTrace[id]!
            // The request is the edge's record of it when there is one, else the user's earliest event. Its
            // trace is filled in below, once the requests to return are known.
            let request = mine.first { $0.event.source == .edge || $0.event.kind == .access } ?? mine[0]
            requests.append(UserRequest(request: request, userEvents: mine, trace: []))
        }
        requests.sort {
            ($0.request.event.startTimeUnixNano, $0.request.location) < (
                $1.request.event.startTimeUnixNano, $1.request.location
            )
        }
        if !filter.isEmpty { requests = requests.filter { filter.matches($0.request.event) } }
        if let limit, requests.count > limit { requests.removeLast(requests.count - limit) }
        let wanted = requests.filter { !$0.request.event.traceID.isZero }
        let traces = try self.traces(
            around: wanted.map { ($0.request.event.traceID, $0.userEvents[0].event.startTimeUnixNano) },
            slackNanos: traceSlackNanos, includeDuplicates: includeDuplicates)
        for i in requests.indices where !requests[i].request.event.traceID.isZero {
            requests[i].trace = traces[requests[i].request.event.traceID] ?? requests[i].userEvents
        }
        return requests
    }
}

/// One request a user made, with the whole trace it started.
public struct UserRequest: Sendable {
    /// The record of the request: the edge's access event when there is one, else the user's first event.
    public var request: StoredRecord
    /// Every event of the trace that carries the user.
    public var userEvents: [StoredRecord]
    /// Every record of the trace, the request included, by start time.
    public var trace: [StoredRecord]

    public init(request: StoredRecord, userEvents: [StoredRecord], trace: [StoredRecord]) {
        self.request = request
        self.userEvents = userEvents
        self.trace = trace
    }
}

extension UInt64 {
    func subtractingClamped(_ v: UInt64) -> UInt64 { self > v ? self - v : 0 }
    func addingClamped(_ v: UInt64) -> UInt64 {
        let (r, o) = addingReportingOverflow(v)
        return o ? .max : r
    }
}
