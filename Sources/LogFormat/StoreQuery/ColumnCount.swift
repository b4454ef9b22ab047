// Counting without building events: a column block gives each row's shape (service, source, kind, status, HTTP
// method, route and status, workload), its times and ids, and where a grouping or condition needs them its
// user's subject and HTTP target. Retry copies are recognised exactly: rows are keyed by (trace id, span id,
// start), and only rows whose key repeats are decoded in full and compared.
import LogFormat

extension AuditStore {
    /// `count` of a query without terms, from the columns of column blocks and by decoding row blocks: see
    /// `count`. Returns the groups and their counts.
    package func countFromColumns(_ query: EventQuery, by keys: [CountKey]) throws(LogFormatError) -> [[String]: Int] {
        var counter = ColumnCounter(query: query, keys: keys)
        for reader in try openSegmentReaders() { try counter.add(reader) }
        for handle in handles where query.timeRange.map(handle.entry.overlaps) ?? true {
            let reader: SegmentReader
            do { reader = try handle.reader() } catch  where handle.expired { continue }
            try counter.add(reader)
        }
        return counter.groups()
    }
}

/// Counts rows of segments block by block; see `AuditStore.countFromColumns`.
struct ColumnCounter {
    let query: EventQuery
    let keys: [CountKey]
    let identities: Bool
    let http: Bool
    /// Counts by group number; the groups' values are in `groupValues`.
    var counts: [Int] = []
    var groupValues: [[String]] = []
    var groupNumbers: [[String]: Int] = [:]
    var readers: [SegmentReader] = []
    /// The first stored row of each (trace id, span id, start) seen, and the canonical bytes of each distinct
    /// event seen under a key that repeated.
    var seen = RowKeyTable()
    var firsts: [RowPlace] = []
    var distinct: [Int: [[UInt8]]] = [:]
    /// The last row block decoded to compare a repeated row, kept for the next repeat in it.
    var decoded: (reader: Int, block: Int, events: [AuditEvent])?

    struct RowPlace {
        var reader: Int32
        var block: Int32
        var row: Int32
    }

    init(query: EventQuery, keys: [CountKey]) {
        self.query = query
        self.keys = keys
        identities = keys.contains(.user)
        http = keys.contains(.route) || query.filter.pathPrefix != nil
    }

    func groups() -> [[String]: Int] {
        var out: [[String]: Int] = [:]
        for (i, values) in groupValues.enumerated() where counts[i] > 0 { out[values] = counts[i] }
        return out
    }

    mutating func group(_ values: [String]) -> Int {
        if let g = groupNumbers[values] { return g }
        groupNumbers[values] = counts.count
        groupValues.append(values)
        counts.append(0)
        return counts.count - 1
    }

    mutating func add(_ reader: SegmentReader) throws(LogFormatError) {
        let r = readers.count
        readers.append(reader)
        let range = query.timeRange
        if !(reader.file is MappedFile) {
            try reader.prefetchBlocks(
                reader.blocks.indices.filter { b in
                    range.map { reader.blocks[b].maxTime >= $0.lowerBound && reader.blocks[b].minTime <= $0.upperBound }
                        ?? true
                })
        }
        if !query.includeDuplicates {
            // Room for every row of the blocks in range, so the key table does not grow while rows are added.
            seen.reserve(
                reader.blocks.reduce(0) { n, l in
                    range.map { l.maxTime < $0.lowerBound || l.minTime > $0.upperBound } ?? false
                        ? n : n + Int(l.recordCount)
                })
        }
        for (b, location) in reader.blocks.enumerated() {
            if let range, location.maxTime < range.lowerBound || location.minTime > range.upperBound { continue }
            if reader.isColumnBlock(b) {
                let block = try reader.withColumnBlock(b) { (payload, segment, rows) throws(LogFormatError) in
                    try ColumnBlock.countRows(
                        payload, segment: segment, expectedRows: rows, timeRange: range, identities: identities,
                        http: http)
                }
                if let block { try add(block, reader: r, block: b) }
                continue
            }
            for (row, e) in try reader.blockEvents(b).enumerated() where query.matches(e) {
                if !query.includeDuplicates {
                    let place = RowPlace(reader: Int32(r), block: Int32(b), row: Int32(row))
                    guard try admit(e.traceID, e.spanID, e.startTimeUnixNano, place, known: e) else { continue }
                }
                counts[group(keys.map { $0.value(e) })] += 1
            }
        }
    }

    /// Counts the rows of a column block that pass the query's filter.
    mutating func add(_ block: ColumnCountBlock, reader r: Int, block b: Int) throws(LogFormatError) {
        let filter = query.filter
        // Per shape: whether its rows can pass, whether its route already passes the path prefix, the group when
        // every key is the shape's, and each key's value when the shape decides it (nil: the row's subject or
        // target decides).
        var pass: [Bool] = []
        var routePasses: [Bool] = []
        var shapeGroup: [Int] = []
        var shapeValues: [[String?]] = []
        for s in block.shapes {
            pass.append(Self.passes(s, filter))
            routePasses.append(filter.pathPrefix.map { (s.hasHTTP ? s.route ?? "" : "").hasPrefix($0) } ?? true)
            let values = keys.map { Self.value($0, s) }
            shapeValues.append(values)
            shapeGroup.append(values.contains { $0 == nil } ? -1 : group(values.map { $0! }))
        }
        for row in block.rows where pass[Int(row.shape)] {
            let shape = Int(row.shape)
            if let min = filter.minDurationNanos, Int64(bitPattern: row.end &- row.start) < min { continue }
            if let prefix = filter.pathPrefix, !routePasses[shape], !(block.string(row.target) ?? "").hasPrefix(prefix)
            {
                continue
            }
            if !query.includeDuplicates {
                let place = RowPlace(reader: Int32(r), block: Int32(b), row: row.row)
                guard try admit(row.traceID, row.spanID, row.start, place, known: nil) else { continue }
            }
            let g = shapeGroup[shape]
            if g >= 0 {
                counts[g] += 1
                continue
            }
            let values = zip(keys, shapeValues[shape]).map { key, v in
                v ?? Self.rowValue(key, block.shapes[shape], row, block)
            }
            counts[group(values)] += 1
        }
    }

    /// Whether rows of shape `s` can pass `filter` (the duration and the target are the row's).
    static func passes(_ s: ColumnCountShape, _ filter: EventFilter) -> Bool {
        if !filter.includeLedgers, s.kind == .log, s.eventName == LedgerRecord.eventName,
            s.attributeKeys.contains(LedgerRecord.Key.version)
        {
            return false
        }
        if let status = filter.status {
            let code = s.hasHTTP ? s.httpStatus : 0
            switch status {
            case .error: if !(s.status == .error || code >= 500) { return false }
            case .ok: if s.status == .error || code >= 400 { return false }
            case .http(let c): if code != c { return false }
            case .httpClass(let k): if code / 100 != k { return false }
            }
        }
        if let method = filter.method {
            guard s.hasHTTP, let m = s.method, m.uppercased() == method.uppercased() else { return false }
        }
        return true
    }

    /// `key.value` of every row of shape `s`, or nil when it depends on the row (its subject or target).
    static func value(_ key: CountKey, _ s: ColumnCountShape) -> String? {
        switch key {
        case .service: return s.service.isEmpty ? "-" : s.service
        case .user: return s.hasUser ? nil : "-"
        case .workload: return s.workload ?? "-"
        case .statusClass:
            if s.hasHTTP, s.httpStatus != 0 { return "\(s.httpStatus / 100)xx" }
            switch s.status {
            case .error: return "error"
            case .ok: return "ok"
            case .unset: return "unset"
            }
        case .route:
            guard s.hasHTTP else { return "-" }
            if let route = s.route, !route.isEmpty { return route }
            return s.hasTarget ? nil : "-"
        case .edgeStatus:
            guard s.source == .edge || s.kind == .access, s.hasHTTP, s.httpStatus != 0 else { return "-" }
            return String(s.httpStatus)
        case .source: return "\(s.source)"
        }
    }

    /// `key.value` of a row whose shape leaves it to the row.
    static func rowValue(_ key: CountKey, _ s: ColumnCountShape, _ row: ColumnCountRow, _ b: ColumnCountBlock)
        -> String
    {
        switch key {
        case .user: return b.string(row.subject) ?? "-"
        case .route:
            guard let target = b.string(row.target), !target.isEmpty else { return "-" }
            return String(target.prefix { $0 != "?" })
        default: return value(key, s) ?? "-"
        }
    }

    /// Whether the row at `place` (keyed by trace id, span id and start) is not a stored copy of a row already
    /// counted. The first row of each key is admitted without decoding it; a row whose key repeats is decoded,
    /// with the earlier one, and compared by its canonical bytes. `known` is the row's event when decoded already.
    mutating func admit(
        _ trace: TraceID, _ span: SpanID, _ start: UInt64, _ place: RowPlace, known: AuditEvent?
    ) throws(LogFormatError) -> Bool {
        guard let first = seen.insert(trace, span, start, Int32(firsts.count)) else {
            firsts.append(place)
            return true
        }
        let f = Int(first)
        var list: [[UInt8]]
        if let have = distinct[f] { list = have } else { list = [RecordCodec.encode(try event(at: firsts[f]))] }
        let e: AuditEvent
        if let known { e = known } else { e = try event(at: place) }
        let bytes = RecordCodec.encode(e)
        if list.contains(bytes) {
            distinct[f] = list
            return false
        }
        list.append(bytes)
        distinct[f] = list
        return true
    }

    /// The stored event at `place`.
    mutating func event(at place: RowPlace) throws(LogFormatError) -> AuditEvent {
        let reader = readers[Int(place.reader)]
        let b = Int(place.block)
        if reader.isColumnBlock(b) { return try reader.blockEvents(b, rows: [Int(place.row)])[0] }
        if let d = decoded, d.reader == Int(place.reader), d.block == b { return d.events[Int(place.row)] }
        let events = try reader.blockEvents(b)
        decoded = (Int(place.reader), b, events)
        return events[Int(place.row)]
    }
}

/// An open-addressing table from (trace id, span id, start) to the number of the first row seen with them.
/// Span ids are random, so a cheap mix of the key spreads it well.
struct RowKeyTable {
    struct Entry {
        var high: UInt64
        var low: UInt64
        var span: UInt64
        var start: UInt64
        /// The row's number; -1 for an empty slot.
        var value: Int32
    }
    private var entries: [Entry] = []
    private var count = 0
    private var mask = -1

    /// Inserts the key with `value` and returns nil; when the key is present already, returns its value.
    mutating func insert(_ trace: TraceID, _ span: SpanID, _ start: UInt64, _ value: Int32) -> Int32? {
        if (count + 1) * 2 > mask + 1 { grow() }
        var h = (span.value ^ start ^ trace.low ^ trace.high) &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        let m = mask
        var i = Int(truncatingIfNeeded: h) & m
        let found = entries.withUnsafeMutableBufferPointer { e -> Int32? in
            while e[i].value >= 0 {
                if e[i].span == span.value, e[i].start == start, e[i].low == trace.low, e[i].high == trace.high {
                    return e[i].value
                }
                i = (i + 1) & m
            }
            e[i] = Entry(high: trace.high, low: trace.low, span: span.value, start: start, value: value)
            return nil
        }
        if found == nil { count += 1 }
        return found
    }

    /// Makes room for `more` keys besides those held, without growing again.
    mutating func reserve(_ more: Int) {
        while (count + more) * 2 > mask + 1 { grow() }
    }

    private mutating func grow() {
        let old = entries
        let size = max(1 << 12, (mask + 1) * 2)
        entries = Array(repeating: Entry(high: 0, low: 0, span: 0, start: 0, value: -1), count: size)
        mask = size - 1
        count = 0
        for e in old where e.value >= 0 {
            _ = insert(TraceID(high: e.high, low: e.low), SpanID(value: e.span), e.start, e.value)
        }
    }
}
