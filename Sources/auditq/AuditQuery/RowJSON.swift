// Record lines written straight from the column blocks: what `RecordJSON.line` prints for a record's event, byte
// for byte, without building the event. Per block, each dictionary string is quoted and escaped once (when a row
// first uses it) and copied for every row after; each shape's fixed members (names, service, status, method, route,
// attribute keys, dropped counts) and each resource with its scope are rendered once. A row adds its times, ids and
// what its columns hold (user, HTTP target and client, attribute values, body, span events, links). The
// differential tests in RowJSONTests hold this to `EventJSON` over the decoded events.
import LogFormat
import StoreQuery

/// Writes the records of `RecordHandles` as JSON lines: `auditq search` and `activity --format json`, byte for byte.
public struct RowJSON {
    let all: RecordHandles
    var memo = EventJSONMemo()
    var blocks: [BlockJSON?]
    /// The blocks in `blocks`, oldest first: at most `blocksKept` are kept, so that a block's tables are freed and
    /// their memory reused for a later block's (fresh pages are a fault each; a heavy day reads 19 blocks on each
    /// core). The lines of a search come block after block, an activity's trace records from the blocks near their
    /// request's; a block dropped and asked again is rendered again, to the same bytes.
    var kept: [Int] = []
    static let blocksKept = 4
    /// Where a row's event is written before it is appended to the caller's buffer in one piece.
    let line = LineArena()

    public init(_ handles: RecordHandles) {
        all = handles
        blocks = Array(repeating: nil, count: handles.blocks.count)
    }

    /// Appends `{"record":…,"event":…}` for `h` (no newline): what `RecordJSON.line` appends for its record.
    public mutating func line(_ h: RecordHandle, into buffer: inout [UInt8]) throws(LogFormatError) {
        // Written into memory of its own with a capacity check per piece, then appended in one piece: appending
        // each of a row's few dozen pieces to the array was a tenth of a heavy search.
        var w = line.arena
        defer { line.arena = w }
        w.removeAll()
        try line(h, into: &w)
        buffer.append(contentsOf: w.bytes)
    }

    /// `line(_:into:)` appended to `out` in place (a run's buffer of `writeLinesOnEveryCore`). When it throws, `out`
    /// may end in part of the line.
    public mutating func line(_ h: RecordHandle, into out: LineArena) throws(LogFormatError) {
        var w = out.arena
        defer { out.arena = w }
        try line(h, into: &w)
    }

    mutating func line(_ h: RecordHandle, into w: inout ByteArena) throws(LogFormatError) {
        guard h.block >= 0 else {
            var bytes: [UInt8] = []
            RecordJSON.line(all.records[Int(h.item)], into: &bytes, memo: &memo)
            w.append(bytes)
            return
        }
        let b = Int(h.block)
        let block: BlockJSON
        if let cached = blocks[b] {
            block = cached
        } else {
            block = BlockJSON(all.blocks[b])
            blocks[b] = block
            kept.append(b)
            if kept.count > Self.blocksKept { blocks[kept.removeFirst()] = nil }
        }
        RecordJSON.recordHead(h.location, into: &w, memo: &memo)
        try block.event(Int(h.item), &w)
        w.byte(UInt8(ascii: "}"))
    }

    /// Appends one `activity` line (no newline): what `RecordJSON.activityLine` appends for the request whose own
    /// record is `request`, whose trace is `trace` and which has `userEvents` events of the user.
    public mutating func activityLine(
        request: RecordHandle, userEvents: Int, trace: [RecordHandle], into buffer: inout [UInt8]
    ) throws(LogFormatError) {
        var w = line.arena
        defer { line.arena = w }
        w.removeAll()
        try activityLine(request: request, userEvents: userEvents, trace: trace, into: &w)
        buffer.append(contentsOf: w.bytes)
    }

    /// `activityLine(request:userEvents:trace:into:)` appended to `out` in place (a run's buffer of
    /// `writeLinesOnEveryCore`). When it throws, `out` may end in part of the line.
    public mutating func activityLine(
        request: RecordHandle, userEvents: Int, trace: [RecordHandle], into out: LineArena
    ) throws(LogFormatError) {
        var w = out.arena
        defer { out.arena = w }
        try activityLine(request: request, userEvents: userEvents, trace: trace, into: &w)
    }

    mutating func activityLine(
        request: RecordHandle, userEvents: Int, trace: [RecordHandle], into w: inout ByteArena
    ) throws(LogFormatError) {
        w.raw(#"{"request":"#)
        try line(request, into: &w)
        w.raw(#","trace_id":""#)
        w.hex64(request.traceID.high)
        w.hex64(request.traceID.low)
        w.raw(#"","hops":"#)
        w.decimal(UInt64(trace.count))
        w.raw(#","user_events":"#)
        w.decimal(UInt64(userEvents))
        w.raw(#","trace":["#)
        for i in trace.indices {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            try line(trace[i], into: &w)
        }
        w.raw("]}")
    }
}

/// Raw memory that lines are written into, freed with it: a `RowJSON`'s own for a row, and the runs' buffers of
/// `writeLinesOnEveryCore`. Sendable because one thread at a time uses it: a run's buffer is handed from core to
/// core under a lock.
public final class LineArena: @unchecked Sendable {
    @exclusivity(unchecked) var arena: ByteArena

    init(capacity: Int = 16 << 10) { arena = ByteArena(capacity: capacity) }

    deinit { arena.deallocate() }
}

/// One column block's rendering tables, filled as rows use them.
final class BlockJSON {
    typealias Tag = RecordCodec.ValueTag
    let rows: ColumnRows
    /// Quoted, escaped strings back to back; the string in slot `i` (`ColumnRows.slot`) is `text[start[i]..<end[i]]`
    /// once `start[i] >= 0`.
    @exclusivity(unchecked) var text = ByteArena()
    @exclusivity(unchecked) var start: [Int32]
    @exclusivity(unchecked) var end: [Int32]
    @exclusivity(unchecked) var shapes: [ShapeJSON?]
    /// Where each resource's `resource` and `scope` members lie in `fixed`, once rendered.
    @exclusivity(unchecked) var resources: [Range<Int>?]
    /// The rendered fixed members of shapes and resources, back to back (plain ranges into one array, so that
    /// writing a row takes no reference count per member).
    @exclusivity(unchecked) var fixed = ByteArena()
    /// Each shape's attribute keys, as ranges of `fixed`; shape `s`'s key `k` is `keys[s.keys + k]`.
    @exclusivity(unchecked) var keys: [Range<Int>] = []
    /// A link's attributes, rendered before the link's flags that the JSON puts first.
    ///
    /// These tables are unchecked for exclusive access (the checks were a twentieth of the writer's time): one
    /// thread uses a `BlockJSON`, and no access to one of them overlaps another access to the same one (the
    /// scratch writer is lent while strings are added to `text`, a different property).
    @exclusivity(unchecked) var scratch = ByteArena(capacity: 1024)
    /// The last trace id a request id repeated (shape tag `traceIDString`), quoted: the rows of one trace follow
    /// each other, and encoding the hex again for each was a twentieth of a heavy user's activity.
    @exclusivity(unchecked) var lastTraceID = TraceID(high: 0, low: 0)
    @exclusivity(unchecked) var lastTraceText: [UInt8] = []
    /// The last run's request id (shape tags 0x83, 0x84) with the tag it was spelled by, quoted: likewise repeated by
    /// the rows of a trace.
    @exclusivity(unchecked) var lastRequestID = RunRequestID(high: 0, low: 0)
    @exclusivity(unchecked) var lastRequestTag: UInt8 = 0
    @exclusivity(unchecked) var lastRequestText: [UInt8] = []
    /// `rows.slot` of each string id, kept here: a call into the storage library per string was a fiftieth of a
    /// heavy search.
    let slots: [Int32]

    init(_ rows: ColumnRows) {
        self.rows = rows
        slots = rows.slotTable
        start = Array(repeating: -1, count: rows.stringCount)
        end = Array(repeating: 0, count: rows.stringCount)
        shapes = Array(repeating: nil, count: rows.layouts.count)
        resources = Array(repeating: nil, count: rows.resources.count)
    }

    deinit {
        text.deallocate()
        fixed.deallocate()
        scratch.deallocate()
    }

    /// The fixed members of a shape's rows, rendered: where each lies in `fixed`.
    struct ShapeJSON {
        /// `[,"trace_state"],"flags","span_kind","name","service","source"`.
        var head: Range<Int>
        /// After a user's groups: `],"issuer"?,"origin"`.
        var userTail: Range<Int>
        /// `,"workload"` or nothing.
        var workload: Range<Int>
        /// `"method":…,` or nothing.
        var method: Range<Int>
        /// `"route":…,` (when there is one) `"status_code":…`.
        var routeStatus: Range<Int>
        /// `,"status":{…}` or nothing, then `,"severity_number","severity_text"` when the row has the log members.
        var statusSeverity: Range<Int>
        var hasLogMembers: Bool
        /// `,"event_name":…` (when the row has the log members), then `,"attributes":{`.
        var eventNameAttributes: Range<Int>
        /// `"key":` of each attribute, after a comma but the first: from `BlockJSON.keys[keys]` on.
        var keys: Int
        /// `}` and `,"dropped_attributes_count"` when not 0.
        var afterAttributes: Range<Int>
        var droppedEvents: Range<Int>
        var droppedLinks: Range<Int>
    }

    /// Appends `fixed[range]`.
    @inline(__always) func put(_ range: Range<Int>, _ w: inout ByteArena) { w.append(fixed.slice(range)) }

    /// Shape `i`'s fixed members, rendered from its stored bytes (`ColumnRows.shapeReader`: columns.md, "shapes")
    /// with the block's quoted strings, which its rows share, in the JSON's order rather than the bytes'.
    func shape(_ i: Int) throws(LogFormatError) -> ShapeJSON {
        if let s = shapes[i] { return s }
        let layout = rows.layouts[i]
        // Rendered straight into `fixed` (not into an array first, then copied); each member's place is a range, so
        // the attribute keys, which come first in the bytes, are rendered first. No nested functions: a local one
        // captures is checked for exclusive access at run time (a fifth of this function's time).
        var w = fixed
        defer { fixed = w }
        // Reads memory `rows` owns, which `self` keeps alive.
        var r = rows.shapeReader(i)
        let h = try r.shapeHead(resources: rows.resources.count)
        var mark = w.count
        let firstKey = keys.count
        for k in 0..<h.attributeCount {
            if k > 0 { w.byte(UInt8(ascii: ",")) }
            let (key, tag) = try r.shapeAttribute(revision: rows.revision)
            try string(key, &w)
            w.byte(UInt8(ascii: ":"))
            // A value the same in every row of the shape is written here, once.
            if tag == ColumnBlock.ShapeTag.constant { try value(try r.tag(), &r, &w, depth: 0) }
            keys.append(Self.take(&mark, w))
        }
        let t = try r.shapeTail(parts: h.parts)

        try traceStateAndFlags(h.traceState, h.flags, &w)
        w.raw(",\"span_kind\":\"")
        w.raw(JSONWriter.name(h.spanKind))
        w.raw("\",\"name\":")
        try string(h.name, &w)
        w.raw(",\"service\":")
        try string(h.service, &w)
        w.raw(",\"source\":\"")
        w.raw(JSONWriter.name(h.source))
        w.raw("\"")
        let head = Self.take(&mark, w)
        w.raw("]")
        if t.issuer >= 0 {
            w.raw(",\"issuer\":")
            try string(t.issuer, &w)
        }
        w.raw(",\"origin\":\"")
        w.raw(JSONWriter.name(t.origin))
        w.raw("\"")
        let userTail = Self.take(&mark, w)
        if t.workload >= 0 {
            w.raw(",\"workload\":")
            try string(t.workload, &w)
        }
        let workloadRange = Self.take(&mark, w)
        if t.method >= 0 {
            w.raw("\"method\":")
            try string(t.method, &w)
            w.byte(UInt8(ascii: ","))
        }
        let methodRange = Self.take(&mark, w)
        if t.route >= 0 {
            w.raw("\"route\":")
            try string(t.route, &w)
            w.byte(UInt8(ascii: ","))
        }
        w.raw("\"status_code\":")
        w.decimal(UInt64(t.httpStatus))
        let routeStatus = Self.take(&mark, w)
        let hasMessage = try !isEmpty(h.statusMessage)
        if h.status != .unset || hasMessage {
            w.raw(",\"status\":{\"code\":\"")
            w.raw(JSONWriter.name(h.status))
            w.raw("\"")
            if hasMessage {
                w.raw(",\"message\":")
                try string(h.statusMessage, &w)
            }
            w.raw("}")
        }
        // Both strings looked at first: `||` takes its right side as a closure, whose errors are untyped.
        let hasSeverityText = try !isEmpty(h.severityText)
        let hasEventName = try !isEmpty(h.eventName)
        let hasLogMembers = h.kind == .log || h.severity != 0 || hasSeverityText || layout.hasBody || hasEventName
        if hasLogMembers {
            w.raw(",\"severity_number\":")
            w.decimal(UInt64(h.severity))
            w.raw(",\"severity_text\":")
            try string(h.severityText, &w)
        }
        let statusSeverity = Self.take(&mark, w)
        if hasLogMembers {
            w.raw(",\"event_name\":")
            try string(h.eventName, &w)
        }
        w.raw(",\"attributes\":{")
        let eventNameAttributes = Self.take(&mark, w)
        w.byte(UInt8(ascii: "}"))
        w.droppedCount(t.droppedAttributes, key: ",\"dropped_attributes_count\":")
        let afterAttributes = Self.take(&mark, w)
        w.droppedCount(t.droppedEvents, key: ",\"dropped_events_count\":")
        let droppedEventsRange = Self.take(&mark, w)
        w.droppedCount(t.droppedLinks, key: ",\"dropped_links_count\":")
        let droppedLinksRange = Self.take(&mark, w)
        let out = ShapeJSON(
            head: head, userTail: userTail, workload: workloadRange, method: methodRange,
            routeStatus: routeStatus, statusSeverity: statusSeverity, hasLogMembers: hasLogMembers,
            eventNameAttributes: eventNameAttributes, keys: firstKey, afterAttributes: afterAttributes,
            droppedEvents: droppedEventsRange, droppedLinks: droppedLinksRange)
        shapes[i] = out
        return out
    }

    /// What was written to `w` since `mark`, which moves to its end.
    @inline(__always) private static func take(_ mark: inout Int, _ w: ByteArena) -> Range<Int> {
        defer { mark = w.count }
        return mark..<w.count
    }

    /// The `resource` and `scope` members of resource `i`, rendered: where they lie in `fixed`.
    func resource(_ i: Int) -> Range<Int> {
        if let r = resources[i] { return r }
        let r = rows.resources[i]
        var w = fixed
        defer { fixed = w }
        let start = w.count
        w.resourceAndScope(
            attributes: r.attributes, dropped: r.dropped, schemaURL: r.schemaURL, scope: r.scope,
            scopeSchemaURL: r.scopeSchemaURL)
        let range = start..<w.count
        resources[i] = range
        return range
    }

    /// Dictionary string `id`, quoted and escaped.
    @inline(__always) func string(_ id: Int, _ w: inout ByteArena) throws(LogFormatError) {
        let i = try slot(id)
        if start[i] < 0 {
            start[i] = Int32(text.count)
            withExtendedLifetime(rows) { text.quoted(rows.utf8(i)) }
            end[i] = Int32(text.count)
        }
        w.append(text.slice(Int(start[i])..<Int(end[i])))
    }

    /// `,"trace_state":…` when string `state` is not empty, then `,"flags":…`: as a span and a link write them.
    func traceStateAndFlags(_ state: Int, _ flags: UInt32, _ w: inout ByteArena) throws(LogFormatError) {
        if try !isEmpty(state) {
            w.raw(",\"trace_state\":")
            try string(state, &w)
        }
        w.raw(",\"flags\":")
        w.decimal(UInt64(flags))
    }

    /// Whether dictionary string `id` is empty.
    func isEmpty(_ id: Int) throws(LogFormatError) -> Bool { rows.utf8(try slot(id)).isEmpty }

    /// The place of string `id` in the rows' strings; every string a row names has one (`ColumnBlock.rows` keeps
    /// them), so a miss is a reader out of step with the walk: an error, not a trap.
    @inline(__always) func slot(_ id: Int) throws(LogFormatError) -> Int {
        let i = Int(slots[id])
        guard i >= 0 else { throw LogFormatError(.malformed, "column block: string \(id) is not one the rows name") }
        return i
    }

    /// The event object of row `item` (an index into `rows.rows`): `EventJSON.render` of its event.
    func event(_ item: Int, _ w: inout ByteArena) throws(LogFormatError) {
        let row = rows.rows[item]
        // The row's layout (plain values) for what varies by shape: taking the shape (a class) per row was a tenth of
        // the writer's time in reference counting.
        let s = rows.layouts[Int(row.shape)]
        let sj = try shape(Int(row.shape))
        w.raw("{\"kind\":\"")
        w.raw(JSONWriter.name(s.kind))
        w.raw("\",\"start_time_unix_nano\":")
        w.quotedDecimal(row.start)
        w.raw(",\"end_time_unix_nano\":")
        w.quotedDecimal(row.end)
        if s.kind == .log || row.observed != 0 {
            w.raw(",\"observed_time_unix_nano\":")
            w.quotedDecimal(row.observed)
        }
        w.raw(",\"duration_ns\":")
        w.integer(Int64(bitPattern: row.end &- row.start))
        w.raw(",\"trace_id\":")
        w.traceID(row.traceID)
        w.raw(",\"span_id\":")
        w.spanID(row.spanID)
        if s.hasParent {
            w.raw(",\"parent_span_id\":")
            w.spanID(row.parent)
        }
        put(sj.head, &w)
        // The readers read memory `rows` owns, which `self` keeps alive.
        var r = rows.readers(item)
        do {
            if s.hasUser {
                w.raw(",\"user\":{\"subject\":")
                try string(try r.user.string(), &w)
                if s.hasEmail {
                    w.raw(",\"email\":")
                    try string(try r.user.string(), &w)
                }
                w.raw(",\"groups\":[")
                for g in 0..<s.groupCount {
                    if g > 0 { w.byte(UInt8(ascii: ",")) }
                    try string(try r.user.string(), &w)
                }
                put(sj.userTail, &w)
                if s.hasFingerprint {
                    let n = try r.user.count("a fingerprint length")
                    w.raw(",\"token_fingerprint\":\"")
                    for b in try r.user.bytes(n) {
                        w.byte(JSONWriter.hexDigits[Int(b >> 4)])
                        w.byte(JSONWriter.hexDigits[Int(b & 0x0f)])
                    }
                    w.raw("\"")
                }
                w.raw("}")
            }
            put(sj.workload, &w)
            if s.hasHTTP {
                w.raw(",\"http\":{")
                put(sj.method, &w)
                if s.hasTarget {
                    w.raw("\"target\":")
                    try string(try r.http.string(), &w)
                    w.byte(UInt8(ascii: ","))
                }
                put(sj.routeStatus, &w)
                if s.hasClientAddress {
                    w.raw(",\"client_address\":")
                    try string(try r.http.string(), &w)
                }
                w.byte(UInt8(ascii: "}"))
            }
            put(sj.statusSeverity, &w)
            if sj.hasLogMembers && s.hasBody {
                w.raw(",\"body\":")
                try value(try r.extra.tag(), &r.extra, &w, depth: 0)
            }
            put(sj.eventNameAttributes, &w)
            // A held row's first use of its run's request id holds the bytes (ColumnBlock.rows).
            var requestID: RunRequestID?
            for k in 0..<s.tagCount {
                put(keys[sj.keys + k], &w)
                switch rows.tags[s.tagStart + k] {
                case ColumnBlock.ShapeTag.traceIDString:
                    if lastTraceText.isEmpty || lastTraceID != row.traceID {
                        var t = JSONWriter(buffer: [])
                        t.traceID(row.traceID)
                        lastTraceText = t.buffer
                        lastTraceID = row.traceID
                    }
                    w.append(lastTraceText)
                case ColumnBlock.ShapeTag.constant: break
                case ColumnBlock.ShapeTag.traceParent:
                    // RowTraceParent's text, written in place (no buffer per row).
                    let flags = try r.value.u8()
                    w.raw("\"00-")
                    w.hex64(row.traceID.high)
                    w.hex64(row.traceID.low)
                    w.byte(UInt8(ascii: "-"))
                    w.hex64(row.spanID.value)
                    w.byte(UInt8(ascii: "-"))
                    w.byte(HexCoding.digitCharacter(flags >> 4))
                    w.byte(HexCoding.digitCharacter(flags & 0x0f))
                    w.byte(UInt8(ascii: "\""))
                case let tag where ColumnBlock.ShapeTag.isRunRequestID(tag):
                    if requestID == nil { requestID = try r.value.runRequestID() }
                    guard let id = requestID else { break }
                    if lastRequestText.isEmpty || lastRequestID != id || lastRequestTag != tag {
                        lastRequestText = [UInt8(ascii: "\"")]
                        id.withText(tag) { lastRequestText.append(contentsOf: $0) }
                        lastRequestText.append(UInt8(ascii: "\""))
                        lastRequestID = id
                        lastRequestTag = tag
                    }
                    w.append(lastRequestText)
                case ColumnBlock.ShapeTag.decimalDouble:
                    // Most are written from their digits; the others through the double, as before.
                    let (m, e) = try r.value.decimalParts()
                    if !w.shortDecimal(m, e) { w.double(try ColumnRowReader.decimalDouble(m: m, e: e)) }
                case let tag: try value(tag, &r.value, &w, depth: 0)
                }
            }
            put(sj.afterAttributes, &w)
            if s.eventCount > 0 {
                w.raw(",\"events\":[")
                for i in 0..<s.eventCount {
                    if i > 0 { w.byte(UInt8(ascii: ",")) }
                    w.raw("{\"time_unix_nano\":")
                    w.quotedDecimal(row.start &+ UInt64(bitPattern: try r.extra.svarint()))
                    w.raw(",\"name\":")
                    try string(try r.extra.string(), &w)
                    w.raw(",\"attributes\":")
                    try attributes(&r.extra, &w, depth: 0)
                    w.droppedCount(try r.extra.count32(), key: ",\"dropped_attributes_count\":")
                    w.byte(UInt8(ascii: "}"))
                }
                w.raw("]")
            }
            put(sj.droppedEvents, &w)
            if s.linkCount > 0 {
                w.raw(",\"links\":[")
                for i in 0..<s.linkCount {
                    if i > 0 { w.byte(UInt8(ascii: ",")) }
                    let trace = TraceID(high: try r.extra.u64BigEndian(), low: try r.extra.u64BigEndian())
                    let span = SpanID(value: try r.extra.u64BigEndian())
                    let state = try r.extra.string()
                    scratch.removeAll()
                    try attributes(&r.extra, &scratch, depth: 0)
                    let dropped = try r.extra.count32()
                    let flags = try r.extra.count32()
                    w.raw("{\"trace_id\":")
                    w.traceID(trace)
                    w.raw(",\"span_id\":")
                    w.spanID(span)
                    try traceStateAndFlags(state, flags, &w)
                    w.raw(",\"attributes\":")
                    w.append(scratch.bytes)
                    w.droppedCount(dropped, key: ",\"dropped_attributes_count\":")
                    w.byte(UInt8(ascii: "}"))
                }
                w.raw("]")
            }
            put(sj.droppedLinks, &w)
        }
        put(resource(s.resource), &w)
        w.byte(UInt8(ascii: "}"))
    }

    /// A value's body after its tag, as `JSONWriter.value` writes the decoded value.
    func value(_ tag: UInt8, _ r: inout ColumnRowReader, _ w: inout ByteArena, depth: Int) throws(LogFormatError) {
        try ColumnRowReader.checkDepth(depth)
        switch tag {
        case Tag.empty: w.raw("null")
        case Tag.string: try string(try r.string(), &w)
        case Tag.boolFalse: w.raw("false")
        case Tag.boolTrue: w.raw("true")
        case Tag.int: w.integer(try r.svarint())
        case Tag.double: w.double(Double(bitPattern: try r.u64()))
        case Tag.bytes: w.base64(try r.bytes(try r.count("a bytes length")))
        case Tag.array:
            let n = try r.count("an array length")
            w.byte(UInt8(ascii: "["))
            for i in 0..<n {
                if i > 0 { w.byte(UInt8(ascii: ",")) }
                try value(try r.tag(), &r, &w, depth: depth + 1)
            }
            w.byte(UInt8(ascii: "]"))
        case Tag.keyValueList: try attributes(&r, &w, depth: depth + 1)
        default: throw LogFormatError(.malformed, "column block: unknown value tag \(tag)")
        }
    }

    /// `uvarint count (key, full value){count}` as a JSON object.
    func attributes(_ r: inout ColumnRowReader, _ w: inout ByteArena, depth: Int) throws(LogFormatError) {
        let n = try r.count("an attribute count")
        w.byte(UInt8(ascii: "{"))
        for i in 0..<n {
            if i > 0 { w.byte(UInt8(ascii: ",")) }
            try string(try r.string(), &w)
            w.byte(UInt8(ascii: ":"))
            try value(try r.tag(), &r, &w, depth: depth)
        }
        w.byte(UInt8(ascii: "}"))
    }
}
