// OTLP/JSON requests -> AuditEvent in one pass over the bytes, without a JSON tree or swift-protobuf messages:
// the receivers' path for OTLP/HTTP JSON bodies, as OTLPWireDecoder is for protobuf ones. OTLP/JSON is not plain
// proto3 JSON: trace and span ids are hex (some exporters send base64: accepted too), enums are integers (names
// accepted), 64-bit integers are decimal strings (numbers accepted), keys are lowerCamelCase (snake_case
// accepted), unknown fields are ignored.
//
// The result is exactly that of the earlier path (a JSON tree, then an `ExportTraceServiceRequest` /
// `ExportLogsServiceRequest`, then `OTLPMapping.events(from:)`), kept in Tests/Fuzz/Harness/OTLPJSONTree.swift
// as the reference the property tests and the fuzz target compare against. Its rules, which this file keeps:
// - The whole body is JSON first: a syntax error anywhere (ByteJSONParser's message and offset) wins over any
//   other error.
// - Of a member written twice (under either spelling) the first counts; a first `null` means absent. Inside an
//   AnyValue every member counts, the last value field winning.
// - Each message checks its fields in a fixed order (the order of the `rank` tables below), whatever order the
//   body writes them in; items of a list in order. So the error reported is the first in that order, not in
//   the body's: a member's error is held until the object ends, and only an earlier-ranked member can replace it.
// - A list item that is not an object is refused ("expected an object"), except a KeyValue (an empty key with
//   no value) and a status (ignored).
// - Strings are decoded leniently: bytes that are not UTF-8 become U+FFFD.
import Foundation
import LogFormat
import OTLPBridge

public enum OTLPJSON {
    public struct DecodeError: Error, Sendable, Hashable, CustomStringConvertible {
        /// Where in the document, e.g. `resourceSpans[0].scopeSpans[1].spans[3].startTimeUnixNano`.
        public var path: String
        public var message: String
        /// Set when the body held more items or values than this limit of the caller's (not malformed: too large).
        public var requestLimit: Int? = nil
        public var description: String { path.isEmpty ? message : "\(path): \(message)" }
        public var isOverRequestLimit: Bool { requestLimit != nil }

        public init(path: String, message: String, requestLimit: Int? = nil) {
            self.path = path
            self.message = message
            self.requestLimit = requestLimit
        }

        /// The same error seen from the enclosing value, which reached it through `step`.
        func under(_ step: String) -> DecodeError {
            DecodeError(
                path: path.isEmpty ? step : step + "." + path, message: message, requestLimit: requestLimit)
        }
    }

    /// An `ExportTraceServiceRequest` in OTLP/JSON, decoded and mapped. A body of more than `maxItems` spans, or
    /// of more than `maxValues` attributes, array and list values, span events and links, is refused
    /// (`requestLimit` set) when the next one starts.
    public static func traces(json body: [UInt8], maxItems: Int = .max, maxValues: Int = .max) throws(DecodeError)
        -> OTLPMapping.Imported
    {
        try decode(body, .span, maxItems, maxValues)
    }

    /// An `ExportLogsServiceRequest` in OTLP/JSON, decoded and mapped; `maxItems` and `maxValues` as for traces.
    public static func logs(json body: [UInt8], maxItems: Int = .max, maxValues: Int = .max) throws(DecodeError)
        -> OTLPMapping.Imported
    {
        try decode(body, .log, maxItems, maxValues)
    }

    static func decode(
        _ body: [UInt8], _ item: OTLPJSONScanner.Item, _ maxItems: Int = .max, _ maxValues: Int = .max
    ) throws(DecodeError) -> OTLPMapping.Imported {
        var scanner = OTLPJSONScanner(body, item, maxItems: maxItems, maxValues: maxValues)
        do throws(OTLPJSONScanner.Failure) {
            try scanner.request()
            return scanner.out
        } catch {
            switch error {
            case .tooManyItems:
                throw DecodeError(
                    path: "", message: "the request holds more than \(maxItems) items, the limit per request",
                    requestLimit: maxItems)
            case .tooManyValues:
                throw DecodeError(path: "", message: ValueCount.overLimit(maxValues), requestLimit: maxValues)
            case .syntax(let e): throw DecodeError(path: "", message: "malformed JSON: \(e)")
            case .semantic(let e):
                // A syntax error after the member that failed still comes first.
                do throws(JSONSyntaxError) { try ByteJSONParser.validate(body) } catch {
                    throw DecodeError(path: "", message: "malformed JSON: \(error)")
                }
                throw e
            }
        }
    }

    // MARK: Scalars (text as sent, the rules of every field of a kind)

    /// Hex (either case) or, leniently, base64; other text is kept as its bytes so the id check names its length.
    static func idBytes(_ text: String) -> Data {
        if text.isEmpty { return Data() }
        if text.utf8.count == 32 || text.utf8.count == 16, let bytes = HexCoding.decode(text) { return Data(bytes) }
        if let data = Data(base64Encoded: text) { return data }
        return Data(text.utf8)
    }

    static func unsigned(_ text: String, _ name: String, max: UInt64) throws(DecodeError) -> UInt64 {
        guard let value = UInt64(text), value <= max else {
            throw DecodeError(path: name, message: "\(text.debugDescription) is not an unsigned integer up to \(max)")
        }
        return value
    }

    static func signed(_ text: String, _ name: String) throws(DecodeError) -> Int64 {
        guard let value = Int64(text) else {
            throw DecodeError(path: name, message: "\(text.debugDescription) is not a 64-bit integer")
        }
        return value
    }

    /// A double from a number, or from a string (also "NaN", "Infinity", "-Infinity"); nil otherwise.
    static func double(number text: String) -> Double? { Double(text) }

    static func double(string text: String) -> Double? {
        switch text {
        case "NaN": .nan
        case "Infinity": .infinity
        case "-Infinity": -.infinity
        case let s: Double(s)
        }
    }

    static let spanKindNames: [String: Int64] = [
        "SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
        "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5,
    ]
    static let statusNames: [String: Int64] = ["STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2]

    /// An enum written as a number (an int32) or a string (a name, or any 64-bit integer); nil otherwise. Unknown
    /// values pass through for the mapping to reject with a reason.
    static func enumValue(number text: String) -> Int64? {
        guard let i = Int64(text), (Int64(Int32.min)...Int64(Int32.max)).contains(i) else { return nil }
        return i
    }

    static func enumValue(string text: String, names: [String: Int64]) -> Int64? { names[text] ?? Int64(text) }

    static let integerExpected = "expected an integer (number or decimal string)"
}

/// The walk over one request. Every read either returns what it read (the parser past the value) or throws:
/// syntax errors stop everything; an error in what the JSON says (`semantic`) is held by the enclosing object
/// as described at the top of the file.
struct OTLPJSONScanner {
    enum Item { case span, log }

    enum Failure: Error {
        case syntax(JSONSyntaxError)
        case semantic(OTLPJSON.DecodeError)
        /// One item more than `maxItems` began.
        case tooManyItems
        /// One attribute, array or list value, span event or link more than `maxValues` began.
        case tooManyValues
    }

    typealias DecodeError = OTLPJSON.DecodeError

    var p: ByteJSONParser
    var out = OTLPMapping.Imported()
    let item: Item
    /// Items (events and rejected ones) a body may hold: an empty log record (`{}`) is three bytes and an event
    /// of several hundred.
    let maxItems: Int
    /// Attributes, array and list values, span events and links the body may still hold: `{}` is three bytes and
    /// an attribute tens.
    var valuesLeft: Int

    init(_ bytes: [UInt8], _ item: Item, maxItems: Int = .max, maxValues: Int = .max) {
        p = ByteJSONParser(bytes: bytes)
        self.item = item
        self.maxItems = maxItems
        valuesLeft = maxValues
    }

    /// Takes one attribute, array or list value, span event or link from the body's budget.
    @inline(__always) mutating func countValue() throws(Failure) {
        valuesLeft -= 1
        if valuesLeft < 0 { throw .tooManyValues }
    }

    // MARK: Parser steps, syntax errors wrapped

    mutating func token(_ depth: Int) throws(Failure) -> ByteJSONParser.Token {
        do throws(JSONSyntaxError) { return try p.token(depth: depth) } catch { throw .syntax(error) }
    }

    mutating func skip(_ depth: Int) throws(Failure) {
        do throws(JSONSyntaxError) { try p.skipValue(depth: depth) } catch { throw .syntax(error) }
    }

    mutating func memberName() throws(Failure) -> ArraySlice<UInt8> {
        do throws(JSONSyntaxError) { return try p.memberName() } catch { throw .syntax(error) }
    }

    mutating func nextMember() throws(Failure) -> Bool {
        do throws(JSONSyntaxError) { return try p.nextMember() } catch { throw .syntax(error) }
    }

    mutating func nextElement() throws(Failure) -> Bool {
        do throws(JSONSyntaxError) { return try p.nextElement() } catch { throw .syntax(error) }
    }

    // MARK: Structure

    /// Reads the object at `depth` member by member: `fields` names the fields it knows (camelCase and snake_case,
    /// in the check order, at most 32), `read` reads the first occurrence of each by its place; others are skipped. A field's error is
    /// held until the object ends and replaced only by one of a lower rank. False, reading nothing, when the
    /// value is not an object.
    mutating func object(
        _ depth: Int, fields: [(String, String)], read: (inout OTLPJSONScanner, Int) throws(Failure) -> Void
    ) throws(Failure) -> Bool {
        let start = p.i
        guard case .object = try token(depth) else {
            p.i = start
            return false
        }
        var seen: UInt32 = 0
        var held: (rank: Int, error: DecodeError)? = nil
        if p.beginObject() {
            repeat {
                let name = try memberName()
                let valueStart = p.i
                let field = Self.rank(name, in: fields)
                guard let r = field, seen & (1 << r) == 0, r < held?.rank ?? Int.max else {
                    if let r = field { seen |= 1 << r }
                    try skip(depth + 1)
                    continue
                }
                seen |= 1 << r
                do throws(Failure) { try read(&self, r) } catch {
                    guard case .semantic(let e) = error else { throw error }
                    held = (r, e)
                    p.i = valueStart
                    try skip(depth + 1)
                }
            } while try nextMember()
        }
        if let held { throw .semantic(held.error) }
        return true
    }

    /// A message that must be an object (`null` counts as absent where the field is read, not here).
    mutating func message(
        _ depth: Int, fields: [(String, String)], read: (inout OTLPJSONScanner, Int) throws(Failure) -> Void
    ) throws(Failure) {
        guard try object(depth, fields: fields, read: read) else {
            throw .semantic(DecodeError(path: "", message: "expected an object"))
        }
    }

    /// A list field named `name`: each element read in order (an element's error names its index); `null` is
    /// an empty list.
    mutating func list(
        _ depth: Int, _ name: String, element: (inout OTLPJSONScanner, Int) throws(Failure) -> Void
    ) throws(Failure) {
        switch try token(depth) {
        case .null: return
        case .array: break
        default: throw .semantic(DecodeError(path: name, message: "expected an array"))
        }
        guard p.beginArray() else { return }
        var n = 0
        repeat {
            do throws(Failure) { try element(&self, n) } catch {
                guard case .semantic(let e) = error else { throw error }
                throw .semantic(e.under("\(name)[\(n)]"))
            }
            n += 1
        } while try nextElement()
    }

    /// Runs `body`, naming `step` in its errors.
    mutating func under<T>(
        _ step: String, _ body: (inout OTLPJSONScanner) throws(Failure) -> T
    ) throws(Failure) -> T {
        do throws(Failure) { return try body(&self) } catch {
            guard case .semantic(let e) = error else { throw error }
            throw .semantic(e.under(step))
        }
    }

    // MARK: Scalar fields (null: the default)

    /// The text of a string token (not necessarily UTF-8, decoded leniently).
    @inline(__always)
    static func text(_ b: ArraySlice<UInt8>) -> String { String(decoding: b, as: UTF8.self) }

    func text(_ r: Range<Int>) -> String { String(decoding: p.bytes[r], as: UTF8.self) }

    mutating func string(_ depth: Int, _ name: String) throws(Failure) -> String {
        switch try token(depth) {
        case .string(let b): return Self.text(b)
        case .null: return ""
        default: throw .semantic(DecodeError(path: name, message: "expected a string"))
        }
    }

    /// An unsigned integer up to `max`, as a number or a decimal string.
    mutating func unsigned(_ depth: Int, _ name: String, max: UInt64 = .max) throws(Failure) -> UInt64 {
        let digits: ArraySlice<UInt8>
        switch try token(depth) {
        case .number(let r): digits = p.bytes[r]
        case .string(let b): digits = b
        case .null: return 0
        default: throw .semantic(DecodeError(path: name, message: OTLPJSON.integerExpected))
        }
        // Plain digits (nanosecond times: 19 of them) without making a String; anything else as the rules say.
        if (1...19).contains(digits.count), let v = ByteJSONParser.digits(digits), v <= max { return v }
        do throws(DecodeError) { return try OTLPJSON.unsigned(Self.text(digits), name, max: max) } catch {
            throw .semantic(error)
        }
    }

    mutating func count(_ depth: Int, _ name: String) throws(Failure) -> UInt32 {
        UInt32(try unsigned(depth, name, max: UInt64(UInt32.max)))
    }

    mutating func enumValue(_ depth: Int, _ name: String, names: [String: Int64]) throws(Failure) -> Int {
        let value: Int64?
        switch try token(depth) {
        case .number(let r): value = OTLPJSON.enumValue(number: text(r))
        case .string(let b):
            // A name (swift-protobuf's default) found by its bytes; other text by the rule.
            if let named = names.first(where: { b.elementsEqual($0.key.utf8) }) { return Int(named.value) }
            value = OTLPJSON.enumValue(string: Self.text(b), names: names)
        case .null: return 0
        default: value = nil
        }
        guard let value else { throw .semantic(DecodeError(path: name, message: "expected an enum number")) }
        return Int(value)
    }

    /// An id as the bytes it stands for: how many, and as a trace id (16) or span id (8) when that many.
    struct ID {
        var count = 0
        var trace = TraceID.zero
        var span = SpanID.zero

        func traceID(_ what: String, required: Bool) throws(OTLPMapping.Invalid) -> TraceID {
            try OTLPMapping.traceID(count: count, trace, what, required: required)
        }

        func spanID(_ what: String, required: Bool) throws(OTLPMapping.Invalid) -> SpanID {
            try OTLPMapping.spanID(count: count, span, what, required: required)
        }
    }

    mutating func id(_ depth: Int, _ name: String) throws(Failure) -> ID {
        let b: ArraySlice<UInt8>
        switch try token(depth) {
        case .string(let s): b = s
        case .null: return ID()
        default: throw .semantic(DecodeError(path: name, message: "expected a string"))
        }
        // 32 or 16 hex digits, in place; anything else (base64, or text the check will refuse) as the rules say.
        if b.count == 32 || b.count == 16 {
            let parsed = b.withUnsafeBufferPointer { u -> ID? in
                if u.count == 32 {
                    guard let t = TraceID(hexDigits: u) else { return nil }
                    return ID(count: 16, trace: t)
                }
                guard let v = HexCoding.word(u) else { return nil }
                return ID(count: 8, span: SpanID(value: v))
            }
            if let parsed { return parsed }
        }
        // Canonical base64 of 16 or 8 bytes (swift-protobuf's JSON and some exporters), in place.
        if b.count == 24 || b.count == 12, let parsed = b.withUnsafeBufferPointer(Self.base64ID) { return parsed }
        let data = OTLPJSON.idBytes(Self.text(b))
        return data.withUnsafeBytes { raw in
            ID(count: raw.count, trace: TraceID(raw: raw) ?? .zero, span: SpanID(raw: raw) ?? .zero)
        }
    }

    /// The id in 24 (16 bytes) or 12 (8 bytes) characters of padded base64 whose unused low bits are zero: what
    /// any encoder writes, and what Foundation's decoder (the rule for other text) decodes the same way. Nil for
    /// anything else.
    static func base64ID(_ u: UnsafeBufferPointer<UInt8>) -> ID? {
        let count = u.count == 24 ? 16 : 8
        let chars = count == 16 ? 22 : 11
        for pad in chars..<u.count where u[pad] != UInt8(ascii: "=") { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for c in u[0..<(chars - 1)] {
            guard let v = sextet(c) else { return nil }
            high = high << 6 | low >> 58
            low = low << 6 | UInt64(v)
        }
        // The last character holds 2 (16 bytes) or 4 (8 bytes) bits of the id, then zeros.
        guard let last = sextet(u[chars - 1]) else { return nil }
        if count == 16 {
            guard last & 0x0F == 0 else { return nil }
            high = high << 2 | low >> 62
            low = low << 2 | UInt64(last >> 4)
            return ID(count: 16, trace: TraceID(high: high, low: low))
        }
        guard last & 0x03 == 0 else { return nil }
        return ID(count: 8, span: SpanID(value: low << 4 | UInt64(last >> 2)))
    }

    @inline(__always)
    static func sextet(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }

    // MARK: Requests

    /// `{"resourceSpans": [...]}` or `{"resourceLogs": [...]}`, then the end of the body.
    mutating func request() throws(Failure) {
        p.skipSpace()
        let (camel, snake) = item == .span ? ("resourceSpans", "resource_spans") : ("resourceLogs", "resource_logs")
        let isObject = try object(0, fields: [(camel, snake)]) {
            (s, _) throws(Failure) in
            try s.list(1, camel) { (s, r) throws(Failure) in try s.resourceItems(2, index: r) }
        }
        if !isObject {
            try skip(0)
            throw .semantic(DecodeError(path: "", message: "expected an object"))
        }
        do throws(JSONSyntaxError) { try p.end() } catch { throw .syntax(error) }
    }

    /// Where one scope's items landed in `out.events`, to stamp them once the resource is known.
    struct ScopeRun {
        var scope = InstrumentationScope()
        var schemaURL = ""
        var events: Range<Int>
    }

    static let resourceSpansFields = [
        ("resource", "resource"), ("schemaUrl", "schema_url"), ("scopeSpans", "scope_spans"),
    ]
    static let resourceLogsFields = [
        ("resource", "resource"), ("schemaUrl", "schema_url"), ("scopeLogs", "scope_logs"),
    ]

    /// `ResourceSpans` / `ResourceLogs`: resource, schemaUrl, scopeSpans / scopeLogs. The resource may come
    /// after the items, so events are stamped when the object ends.
    mutating func resourceItems(_ depth: Int, index r: Int) throws(Failure) {
        var attributes: [Attribute] = []
        var dropped: UInt32 = 0
        var schemaURL = ""
        var runs: [ScopeRun] = []
        let fields = item == .span ? Self.resourceSpansFields : Self.resourceLogsFields
        try message(depth, fields: fields) { (s, field) throws(Failure) in
            switch field {
            case 0:
                try s.under("resource") { (s) throws(Failure) in
                    try s.resource(depth + 1, &attributes, &dropped)
                }
            case 1: schemaURL = try s.string(depth + 1, "schemaUrl")
            default:
                try s.list(depth + 1, fields[2].0) { (s, i) throws(Failure) in
                    let first = s.out.events.count
                    var run = ScopeRun(events: first..<first)
                    try s.scopeItems(depth + 2, resource: r, scope: i, run: &run)
                    run.events = first..<s.out.events.count
                    runs.append(run)
                }
            }
        }
        let service = attributes.value(forKey: "service.name")?.stringValue ?? "unknown_service"
        for run in runs {
            for i in run.events {
                // An access event from a log record may name its service itself (AccessLogRecord).
                if out.events[i].service.isEmpty { out.events[i].service = service }
                out.events[i].resourceAttributes = attributes
                out.events[i].resourceDroppedAttributesCount = dropped
                out.events[i].resourceSchemaURL = schemaURL
                out.events[i].scope = run.scope
                out.events[i].scopeSchemaURL = run.schemaURL
            }
        }
    }

    /// `Resource`: attributes, droppedAttributesCount (`null`: absent).
    mutating func resource(_ depth: Int, _ attributes: inout [Attribute], _ dropped: inout UInt32) throws(Failure) {
        if case .null = try peek(depth) { return try skip(depth) }
        try message(depth, fields: Self.resourceFields) { (s, field) throws(Failure) in
            if field == 0 {
                attributes = try s.attributes(depth + 1)
            } else {
                dropped = try s.count(depth + 1, "droppedAttributesCount")
            }
        }
    }

    static let resourceFields = [("attributes", "attributes"), ("droppedAttributesCount", "dropped_attributes_count")]

    /// The token at `depth` without reading past it.
    mutating func peek(_ depth: Int) throws(Failure) -> ByteJSONParser.Token {
        let start = p.i
        defer { p.i = start }
        return try token(depth)
    }

    /// `ScopeSpans` / `ScopeLogs`: scope, schemaUrl, spans / logRecords.
    mutating func scopeItems(
        _ depth: Int, resource r: Int, scope s: Int, run: inout ScopeRun
    ) throws(Failure) {
        let fields = item == .span ? Self.scopeSpansFields : Self.scopeLogsFields
        try message(depth, fields: fields) { (sc, field) throws(Failure) in
            switch field {
            case 0:
                if case .null = try sc.peek(depth + 1) { return try sc.skip(depth + 1) }
                try sc.under("scope") { (sc) throws(Failure) in run.scope = try sc.scope(depth + 1) }
            case 1: run.schemaURL = try sc.string(depth + 1, "schemaUrl")
            default:
                try sc.list(depth + 1, fields[2].0) { (sc, i) throws(Failure) in
                    guard sc.out.events.count + sc.out.rejected.count < sc.maxItems else { throw .tooManyItems }
                    let result = try sc.item == .span ? sc.span(depth + 2) : sc.logRecord(depth + 2)
                    switch result {
                    case .success(let e): sc.out.events.append(e)
                    case .failure(let invalid):
                        sc.out.rejected.append(RejectedItem(resource: r, scope: s, item: i, reason: invalid.reason))
                    }
                }
            }
        }
    }

    static let scopeSpansFields = [("scope", "scope"), ("schemaUrl", "schema_url"), ("spans", "spans")]
    static let scopeLogsFields = [("scope", "scope"), ("schemaUrl", "schema_url"), ("logRecords", "log_records")]

    /// `InstrumentationScope`: name, version, attributes, droppedAttributesCount.
    mutating func scope(_ depth: Int) throws(Failure) -> InstrumentationScope {
        var scope = InstrumentationScope()
        try message(depth, fields: Self.scopeFields) { (s, field) throws(Failure) in
            switch field {
            case 0: scope.name = try s.string(depth + 1, "name")
            case 1: scope.version = try s.string(depth + 1, "version")
            case 2: scope.attributes = try s.attributes(depth + 1)
            default: scope.droppedAttributesCount = try s.count(depth + 1, "droppedAttributesCount")
            }
        }
        return scope
    }

    static let scopeFields = [("name", "name"), ("version", "version")] + resourceFields

    // MARK: Spans

    /// Span fields in the order they are checked.
    static let spanFields: [(String, String)] = [
        ("traceId", "trace_id"), ("spanId", "span_id"), ("parentSpanId", "parent_span_id"),
        ("traceState", "trace_state"), ("flags", "flags"), ("name", "name"), ("kind", "kind"),
        ("startTimeUnixNano", "start_time_unix_nano"), ("endTimeUnixNano", "end_time_unix_nano"),
        ("attributes", "attributes"), ("droppedAttributesCount", "dropped_attributes_count"), ("events", "events"),
        ("droppedEventsCount", "dropped_events_count"), ("links", "links"),
        ("droppedLinksCount", "dropped_links_count"), ("status", "status"),
    ]

    static func rank(_ k: ArraySlice<UInt8>, in fields: [(String, String)]) -> Int? {
        for (n, f) in fields.enumerated() where k.elementsEqual(f.0.utf8) || k.elementsEqual(f.1.utf8) {
            return n
        }
        return nil
    }

    /// A link as read, checked after the span's own ids as the mapping does.
    struct RawLink {
        var traceID = ID()
        var spanID = ID()
        var traceState = ""
        var attributes: [Attribute] = []
        var dropped: UInt32 = 0
        var flags: UInt32 = 0
    }

    mutating func span(_ depth: Int) throws(Failure) -> Result<AuditEvent, OTLPMapping.Invalid> {
        var traceID = ID()
        var spanID = ID()
        var parentID = ID()
        var traceState = ""
        var flags: UInt32 = 0
        var name = ""
        var kind = 0
        var start: UInt64 = 0
        var end: UInt64 = 0
        var attributes: [Attribute] = []
        var dropped: UInt32 = 0
        var events: [SpanEvent] = []
        var droppedEvents: UInt32 = 0
        var links: [RawLink] = []
        var droppedLinks: UInt32 = 0
        var statusMessage = ""
        var statusCode = 0
        let d = depth + 1
        try message(depth, fields: Self.spanFields) { (s, field) throws(Failure) in
            switch field {
            case 0: traceID = try s.id(d, "traceId")
            case 1: spanID = try s.id(d, "spanId")
            case 2: parentID = try s.id(d, "parentSpanId")
            case 3: traceState = try s.string(d, "traceState")
            case 4: flags = UInt32(try s.unsigned(d, "flags", max: UInt64(UInt32.max)))
            case 5: name = try s.string(d, "name")
            case 6: kind = try s.enumValue(d, "kind", names: OTLPJSON.spanKindNames)
            case 7: start = try s.unsigned(d, "startTimeUnixNano")
            case 8: end = try s.unsigned(d, "endTimeUnixNano")
            case 9: attributes = try s.attributes(d)
            case 10: dropped = try s.count(d, "droppedAttributesCount")
            case 11:
                try s.list(d, "events") { (s, _) throws(Failure) in
                    try s.countValue()
                    events.append(try s.spanEvent(d + 1))
                }
            case 12: droppedEvents = try s.count(d, "droppedEventsCount")
            case 13:
                try s.list(d, "links") { (s, _) throws(Failure) in
                    try s.countValue()
                    links.append(try s.link(d + 1))
                }
            case 14: droppedLinks = try s.count(d, "droppedLinksCount")
            default:
                // A status that is not an object says nothing.
                let statusStart = s.p.i
                let isObject = try s.object(d, fields: Self.statusFields) { (s, field) throws(Failure) in
                    if field == 0 {
                        statusMessage = try s.under("status") { (s) throws(Failure) in try s.string(d + 1, "message") }
                    } else {
                        statusCode = try s.under("status") { (s) throws(Failure) in
                            try s.enumValue(d + 1, "code", names: OTLPJSON.statusNames)
                        }
                    }
                }
                if !isObject {
                    s.p.i = statusStart
                    try s.skip(d)
                }
            }
        }
        do throws(OTLPMapping.Invalid) {
            let trace = try traceID.traceID("trace_id", required: true)
            let span = try spanID.spanID("span_id", required: true)
            var parent: SpanID? = nil
            if parentID.count != 0 { parent = try parentID.spanID("parent_span_id", required: true) }
            let spanKind = try OTLPMapping.spanKind(kind)
            let status = try OTLPMapping.statusCode(statusCode)
            var spanLinks: [SpanLink] = []
            spanLinks.reserveCapacity(links.count)
            for l in links {
                spanLinks.append(
                    SpanLink(
                        traceID: try l.traceID.traceID("link trace_id", required: true),
                        spanID: try l.spanID.spanID("link span_id", required: true), traceState: l.traceState,
                        attributes: l.attributes, droppedAttributesCount: l.dropped, flags: l.flags))
            }
            return .success(
                AuditEvent(
                    kind: .span, startTimeUnixNano: start, endTimeUnixNano: end, traceID: trace, spanID: span,
                    parentSpanID: parent, traceState: traceState, flags: flags, spanKind: spanKind, name: name,
                    statusCode: status, statusMessage: statusMessage, attributes: attributes,
                    droppedAttributesCount: dropped, events: events, droppedEventsCount: droppedEvents,
                    links: spanLinks, droppedLinksCount: droppedLinks))
        } catch {
            return .failure(error)
        }
    }

    static let statusFields = [("message", "message"), ("code", "code")]

    static let eventFields: [(String, String)] = [
        ("timeUnixNano", "time_unix_nano"), ("name", "name"), ("attributes", "attributes"),
        ("droppedAttributesCount", "dropped_attributes_count"),
    ]

    /// `Span.Event`: timeUnixNano, name, attributes, droppedAttributesCount.
    mutating func spanEvent(_ depth: Int) throws(Failure) -> SpanEvent {
        var e = SpanEvent(timeUnixNano: 0, name: "")
        try message(depth, fields: Self.eventFields) { (s, field) throws(Failure) in
            switch field {
            case 0: e.timeUnixNano = try s.unsigned(depth + 1, "timeUnixNano")
            case 1: e.name = try s.string(depth + 1, "name")
            case 2: e.attributes = try s.attributes(depth + 1)
            default: e.droppedAttributesCount = try s.count(depth + 1, "droppedAttributesCount")
            }
        }
        return e
    }

    static let linkFields: [(String, String)] = [
        ("traceId", "trace_id"), ("spanId", "span_id"), ("traceState", "trace_state"), ("attributes", "attributes"),
        ("droppedAttributesCount", "dropped_attributes_count"), ("flags", "flags"),
    ]

    /// `Span.Link`: traceId, spanId, traceState, attributes, droppedAttributesCount, flags.
    mutating func link(_ depth: Int) throws(Failure) -> RawLink {
        var l = RawLink()
        try message(depth, fields: Self.linkFields) { (s, field) throws(Failure) in
            switch field {
            case 0: l.traceID = try s.id(depth + 1, "traceId")
            case 1: l.spanID = try s.id(depth + 1, "spanId")
            case 2: l.traceState = try s.string(depth + 1, "traceState")
            case 3: l.attributes = try s.attributes(depth + 1)
            case 4: l.dropped = try s.count(depth + 1, "droppedAttributesCount")
            default: l.flags = UInt32(try s.unsigned(depth + 1, "flags", max: UInt64(UInt32.max)))
            }
        }
        return l
    }

    // MARK: Log records

    static let logFields: [(String, String)] = [
        ("timeUnixNano", "time_unix_nano"), ("observedTimeUnixNano", "observed_time_unix_nano"),
        ("severityNumber", "severity_number"), ("severityText", "severity_text"), ("body", "body"),
        ("attributes", "attributes"), ("droppedAttributesCount", "dropped_attributes_count"), ("flags", "flags"),
        ("traceId", "trace_id"), ("spanId", "span_id"), ("eventName", "event_name"),
    ]

    mutating func logRecord(_ depth: Int) throws(Failure) -> Result<AuditEvent, OTLPMapping.Invalid> {
        var time: UInt64 = 0
        var observed: UInt64 = 0
        var severity = 0
        var severityText = ""
        var body: AttributeValue? = nil
        var attributes: [Attribute] = []
        var dropped: UInt32 = 0
        var flags: UInt32 = 0
        var traceID = ID()
        var spanID = ID()
        var eventName = ""
        let d = depth + 1
        try message(depth, fields: Self.logFields) { (s, field) throws(Failure) in
            switch field {
            case 0: time = try s.unsigned(d, "timeUnixNano")
            case 1: observed = try s.unsigned(d, "observedTimeUnixNano")
            case 2: severity = try s.enumValue(d, "severityNumber", names: [:])
            case 3: severityText = try s.string(d, "severityText")
            case 4:
                if case .null = try s.peek(d) {
                    try s.skip(d)
                    return
                }
                body = try s.under("body") { (s) throws(Failure) in try s.anyValue(d) }
            case 5: attributes = try s.attributes(d)
            case 6: dropped = try s.count(d, "droppedAttributesCount")
            case 7: flags = UInt32(try s.unsigned(d, "flags", max: UInt64(UInt32.max)))
            case 8: traceID = try s.id(d, "traceId")
            case 9: spanID = try s.id(d, "spanId")
            default: eventName = try s.string(d, "eventName")
            }
        }
        do throws(OTLPMapping.Invalid) {
            let severityNumber = try OTLPMapping.severity(severity)
            // On log records the ids are optional; when present they must have the right length.
            let trace = try traceID.traceID("trace_id", required: false)
            let span = try spanID.spanID("span_id", required: false)
            var e = AuditEvent(
                kind: .log, startTimeUnixNano: time, observedTimeUnixNano: observed, traceID: trace, spanID: span,
                flags: flags, severityNumber: severityNumber, severityText: severityText, body: body,
                eventName: eventName, attributes: attributes, droppedAttributesCount: dropped)
            try OTLPMapping.restoreAccessEvent(&e)
            return .success(e)
        } catch {
            return .failure(error)
        }
    }

    // MARK: Attributes and values

    /// An `attributes` list of KeyValues.
    mutating func attributes(_ depth: Int) throws(Failure) -> [Attribute] {
        var out: [Attribute] = []
        try list(depth, "attributes") { (s, _) throws(Failure) in
            if out.isEmpty { out.reserveCapacity(16) }
            out.append(try s.keyValue(depth + 1))
        }
        return out
    }

    /// A `KeyValue`: key, value. One that is not an object is an empty key without a value.
    mutating func keyValue(_ depth: Int) throws(Failure) -> Attribute {
        try countValue()
        var key = ""
        var value = AttributeValue.empty
        let isObject = try object(depth, fields: Self.keyValueFields) { (s, field) throws(Failure) in
            if field == 0 {
                key = try s.string(depth + 1, "key")
            } else {
                if case .null = try s.peek(depth + 1) {
                    try s.skip(depth + 1)
                    return
                }
                value = try s.under("value") { (s) throws(Failure) in try s.anyValue(depth + 1) }
            }
        }
        if !isObject { try skip(depth) }
        return Attribute(key, value)
    }

    static let keyValueFields = [("key", "key"), ("value", "value")]
    static let valuesFields = [("values", "values")]

    /// An `AnyValue` object. Every member counts, in order: the last value field wins, the first error stops.
    mutating func anyValue(_ depth: Int) throws(Failure) -> AttributeValue {
        guard case .object = try peek(depth) else {
            throw .semantic(DecodeError(path: "", message: "an AnyValue must be an object"))
        }
        _ = try token(depth)
        var value = AttributeValue.empty
        guard p.beginObject() else { return value }
        let d = depth + 1
        repeat {
            let name = try memberName()
            switch Self.anyValueField(name) {
            case 0:
                guard case .string(let b) = try token(d) else {
                    throw .semantic(DecodeError(path: "", message: "stringValue must be a string"))
                }
                value = .string(Self.text(b))
            case 1:
                guard case .bool(let b) = try token(d) else {
                    throw .semantic(DecodeError(path: "", message: "boolValue must be true or false"))
                }
                value = .bool(b)
            case 2:
                let text: String
                switch try token(d) {
                case .number(let r): text = self.text(r)
                case .string(let b): text = Self.text(b)
                default: throw .semantic(DecodeError(path: "intValue", message: OTLPJSON.integerExpected))
                }
                do throws(DecodeError) { value = .int(try OTLPJSON.signed(text, "intValue")) } catch {
                    throw .semantic(error)
                }
            case 3:
                let v: Double?
                switch try token(d) {
                case .number(let r): v = OTLPJSON.double(number: text(r))
                case .string(let b): v = OTLPJSON.double(string: Self.text(b))
                default: v = nil
                }
                guard let v else { throw .semantic(DecodeError(path: "doubleValue", message: "expected a number")) }
                value = .double(v)
            case 4:
                guard case .string(let b) = try token(d), let data = Data(base64Encoded: Data(b)) else {
                    throw .semantic(DecodeError(path: "", message: "bytesValue must be base64"))
                }
                value = .bytes(Array(data))
            case 5:
                var values: [AttributeValue] = []
                try under("arrayValue") { (s) throws(Failure) in
                    try s.message(d, fields: Self.valuesFields) { (s, _) throws(Failure) in
                        try s.list(d + 1, "values") { (s, _) throws(Failure) in
                            try s.countValue()
                            values.append(try s.anyValue(d + 2))
                        }
                    }
                }
                value = .array(values)
            case 6:
                var list: [Attribute] = []
                try under("kvlistValue") { (s) throws(Failure) in
                    try s.message(d, fields: Self.valuesFields) { (s, _) throws(Failure) in
                        try s.list(d + 1, "values") { (s, _) throws(Failure) in list.append(try s.keyValue(d + 2)) }
                    }
                }
                value = .keyValueList(list)
            default: try skip(d)  // unknown fields are ignored
            }
        } while try nextMember()
        return value
    }

    static let anyValueFields: [(String, String)] = [
        ("stringValue", "string_value"), ("boolValue", "bool_value"), ("intValue", "int_value"),
        ("doubleValue", "double_value"), ("bytesValue", "bytes_value"), ("arrayValue", "array_value"),
        ("kvlistValue", "kvlist_value"),
    ]

    static func anyValueField(_ k: ArraySlice<UInt8>) -> Int? { rank(k, in: anyValueFields) }
}
