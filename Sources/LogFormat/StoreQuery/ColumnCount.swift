// Counting without building events: a column block gives each row's shape (service, source, kind, status, HTTP
// method, route and status, workload), its times and ids, and where a grouping or condition needs them its
// user's subject and HTTP target. Retry copies are recognised exactly: rows are keyed by (trace id, span id,
// start), and only rows whose key repeats are decoded in full and compared.
import LogFormat

extension AuditStore {
    /// `count` of a query without terms, from the columns of column blocks and by decoding row blocks: see
    /// `count`. Returns the groups and their counts. `unsealed`: the unsealed segments' readers, when opened already.
    package func countFromColumns(
        _ query: EventQuery, by keys: [CountKey], unsealed: [SegmentReader]? = nil
    ) throws(LogFormatError) -> [[String]: Int] {
        var counter = ColumnCounter(query: query, keys: keys)
        for reader in try unsealedReaders(unsealed) { try counter.add(reader) }
        for handle in handles where query.timeRange.map(handle.entry.overlaps) ?? true {
            let reader: SegmentReader
            do { reader = try handle.reader() } catch  where handle.expired { continue }
            try counter.add(reader)
        }
        return counter.groups()
    }

    /// `given`, or the unsealed segments' readers opened now.
    func unsealedReaders(_ given: [SegmentReader]?) throws(LogFormatError) -> [SegmentReader] {
        if let given { return given }
        return try openSegmentReaders()
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
    /// When set, only rows of these traces are counted (the correction of a count from rollups).
    var onlyTraces: Set<TraceID>?

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
        let inRange = reader.blocks.indices.filter { b in
            range.map { reader.blocks[b].maxTime >= $0.lowerBound && reader.blocks[b].minTime <= $0.upperBound }
                ?? true
        }
        if !(reader.file is MappedFile) { try reader.prefetchBlocks(inRange) }
        if !query.includeDuplicates { seen.reserve(Self.expectedRows(reader, inRange, range), keys: true) }
        for b in inRange {
            guard reader.isColumnBlock(b) else {
                try addRows(reader, r, b)
                continue
            }
            if let block = try countRows(reader, b) { try add(block, reader: r, block: b) }
        }
    }

    /// The rows of column block `b` of `reader` as counting reads them; nil when the block holds none in range.
    func countRows(_ reader: SegmentReader, _ b: Int) throws(LogFormatError) -> ColumnCountBlock? {
        let range = query.timeRange
        let identities = identities
        let http = http
        // Each column read is checked by its own CRC; the columns a count does not read are not checked
        // (columns.md, "Reading some columns").
        return try reader.withColumnBlock(b, payloadCRC: false) { (payload, segment, rows) throws(LogFormatError) in
            try ColumnBlock.countRows(
                payload, segment: segment, expectedRows: rows, timeRange: range, identities: identities, http: http)
        }
    }

    /// Adds blocks of `reader` already read: a column block as `countRows` gave it, a row block (nil) decoded here.
    mutating func add(_ reader: SegmentReader, blocks: [(block: Int, rows: ColumnCountBlock?)]) throws(LogFormatError) {
        let r = readers.count
        readers.append(reader)
        for (b, rows) in blocks {
            if let rows { try add(rows, reader: r, block: b) } else { try addRows(reader, r, b) }
        }
    }

    /// About how many rows of `blocks` of `reader` start in `range`: each block's count times the share of its
    /// time span that the range covers, and an eighth more. Sizing the key table once for them costs fewer fresh
    /// pages than growing it block by block (each growth copies the keys).
    static func expectedRows(_ reader: SegmentReader, _ blocks: [Int], _ range: ClosedRange<UInt64>?) -> Int {
        var rows = 0.0
        for b in blocks {
            let location = reader.blocks[b]
            let count = Double(location.recordCount)
            guard let range, location.maxTime > location.minTime else {
                rows += count
                continue
            }
            let low = max(range.lowerBound, location.minTime)
            let high = min(range.upperBound, location.maxTime)
            guard high >= low else { continue }
            rows += count * (Double(high - low) + 1) / (Double(location.maxTime - location.minTime) + 1)
        }
        return Int(rows * 1.125)
    }

    /// The rows of a row block (decoded) that the query counts.
    mutating func addRows(_ reader: SegmentReader, _ r: Int, _ b: Int) throws(LogFormatError) {
        for (row, e) in try reader.blockEvents(b).enumerated() where query.matches(e) {
            if let only = onlyTraces, !only.contains(e.traceID) { continue }
            if !query.includeDuplicates {
                let place = RowPlace(reader: Int32(r), block: Int32(b), row: Int32(row))
                guard try admit(e.traceID, e.spanID, e.startTimeUnixNano, place, known: e) else { continue }
            }
            counts[group(keys.map { $0.value(e) })] += 1
        }
    }

    /// Counts the rows of a column block that pass the query's filter.
    mutating func add(_ block: ColumnCountBlock, reader r: Int, block b: Int) throws(LogFormatError) {
        let filter = query.filter
        // Room for the rows in range, not every row of the block: a user-ordered block overlaps most time ranges
        // but holds few of their rows, and a table sized for all of them costs more in page faults than counting.
        if !query.includeDuplicates, onlyTraces == nil { seen.reserve(block.rows.count) }
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
            if let only = onlyTraces, !only.contains(row.traceID) { continue }
            let shape = Int(row.shape)
            if let min = filter.minDurationNanos, Int64(bitPattern: row.end &- row.start) < min { continue }
            if let prefix = filter.pathPrefix, !routePasses[shape],
                !((try block.string(row.target)) ?? "").hasPrefix(prefix)
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
            var values: [String] = []
            values.reserveCapacity(keys.count)
            for (key, v) in zip(keys, shapeValues[shape]) {
                if let v {
                    values.append(v)
                } else {
                    values.append(try Self.rowValue(key, block.shapes[shape], row, block))
                }
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
        throws(LogFormatError) -> String
    {
        switch key {
        case .user: return try b.string(row.subject) ?? "-"
        case .route:
            guard let target = try b.string(row.target), !target.isEmpty else { return "-" }
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
        guard let first = seen.insert(trace, span, start) else {
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
/// The keys are kept in insertion order beside a table of their numbers (4 bytes a slot), so the table stays in
/// cache and grows cheaply; span ids are random, so a cheap mix of the key spreads it well.
struct RowKeyTable {
    struct Key: Equatable {
        var high: UInt64
        var low: UInt64
        var span: UInt64
        var start: UInt64
    }
    /// The keys inserted, by number.
    private var keys: [Key] = []
    /// Key numbers; -1 for an empty slot.
    private var slots: [Int32] = []
    private var mask = -1

    private static func hash(_ k: Key) -> Int {
        var h = (k.span ^ k.start ^ k.low ^ k.high) &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
        return Int(truncatingIfNeeded: h)
    }

    /// Inserts the key as number `count` (the keys held so far) and returns nil; when the key is present
    /// already, returns its number.
    mutating func insert(_ trace: TraceID, _ span: SpanID, _ start: UInt64) -> Int32? {
        if (keys.count + 1) * 2 > mask + 1 { grow() }
        let key = Key(high: trace.high, low: trace.low, span: span.value, start: start)
        let m = mask
        var i = Self.hash(key) & m
        let found = keys.withUnsafeBufferPointer { k in
            slots.withUnsafeMutableBufferPointer { s -> Int32? in
                while s[i] >= 0 {
                    if k[Int(s[i])] == key { return s[i] }
                    i = (i + 1) & m
                }
                s[i] = Int32(k.count)
                return nil
            }
        }
        if found == nil { keys.append(key) }
        return found
    }

    /// Makes room for `more` keys besides those held, without growing again; with `keys`, also in the list of
    /// keys (for an estimate made once: reserving the list again for a few more keys would copy it each time).
    mutating func reserve(_ more: Int, keys reserveKeys: Bool = false) {
        while (keys.count + more) * 2 > mask + 1 { grow() }
        if reserveKeys { keys.reserveCapacity(keys.count + more) }
    }

    private mutating func grow() {
        let size = max(1 << 12, (mask + 1) * 2)
        slots = Array(repeating: -1, count: size)
        mask = size - 1
        let m = mask
        keys.withUnsafeBufferPointer { k in
            slots.withUnsafeMutableBufferPointer { s in
                for n in k.indices {
                    var i = Self.hash(k[n]) & m
                    while s[i] >= 0 { i = (i + 1) & m }
                    s[i] = Int32(n)
                }
            }
        }
    }
}
