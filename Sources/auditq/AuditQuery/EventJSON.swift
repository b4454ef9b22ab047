// A stable JSON rendering of `AuditEvent`: auditq's `--format json` schema and the NDJSON line format.
//
// Written by hand (no Foundation, no JSONEncoder) so that the output is byte-for-byte stable: one event
// has exactly one rendering, fields always come in the order documented below, and nothing depends on a
// platform's dictionary order or number formatting.
import JSONText
import LogFormat

/// Renders an `AuditEvent` as one compact JSON object (no whitespace, no trailing newline).
///
/// ## Schema
///
/// Fields appear in this order. As in OTLP JSON, a member whose value is empty or the default is
/// omitted (never written as `null`); the members marked "always" are written for every event.
///
/// | key | type | notes |
/// |---|---|---|
/// | `kind` | string | always: `span`, `access` or `log` |
/// | `start_time_unix_nano` | string | always; decimal. Times are strings, as in OTLP JSON, because they exceed 2^53 |
/// | `end_time_unix_nano` | string | always; decimal, kept as sent even when before the start |
/// | `observed_time_unix_nano` | string | logs only (or when non-zero); decimal |
/// | `duration_ns` | integer | always; end − start, may be negative; a decimal string if its magnitude exceeds 2^53 |
/// | `trace_id` | string | always; 32 lowercase hex, all zeros when the event has none |
/// | `span_id` | string | always; 16 lowercase hex, all zeros when the event has none |
/// | `parent_span_id` | string | 16 lowercase hex; omitted for roots |
/// | `trace_state` | string | W3C `tracestate`; omitted when empty |
/// | `flags` | integer | always; OTLP flags: W3C trace flags in the low 8 bits, 0x100/0x200 is-remote bits |
/// | `span_kind` | string | always: `unspecified`, `internal`, `server`, `client`, `producer`, `consumer` |
/// | `name` | string | always |
/// | `service` | string | always; `service.name` of the reporting process |
/// | `source` | string | always: `unknown`, `edge`, `sidecar`, `app` |
/// | `user` | object | omitted when unknown; see below |
/// | `workload` | string | workload identity (e.g. a SPIFFE id); omitted when unknown |
/// | `http` | object | omitted when the event has no HTTP facts; see below |
/// | `status` | object | `{"code": "unset" \| "ok" \| "error", "message"?: string}`; omitted when unset without a message |
/// | `severity_number` | integer | logs only (or when set): OTLP severity 0–24 |
/// | `severity_text` | string | logs only (or when set), may be `""` |
/// | `body` | value | logs only, omitted when absent; an attribute value (below) |
/// | `event_name` | string | logs only (or when set), may be `""` |
/// | `attributes` | object | always; key → value, in the order received |
/// | `dropped_attributes_count` | integer | omitted when 0 |
/// | `events` | array | `{"time_unix_nano": string, "name", "attributes", "dropped_attributes_count"?}`; omitted when empty |
/// | `dropped_events_count` | integer | omitted when 0 |
/// | `links` | array | `{"trace_id", "span_id", "trace_state"?, "flags", "attributes", "dropped_attributes_count"?}`; omitted when empty |
/// | `dropped_links_count` | integer | omitted when 0 |
/// | `resource` | object | `{"attributes": object, "schema_url"?, "dropped_attributes_count"?}`; omitted when all empty |
/// | `scope` | object | `{"name", "version"?, "attributes"?, "dropped_attributes_count"?, "schema_url"?}`; omitted when all empty |
///
/// Inside `events` and `links`, `attributes` is always written (`{}` when empty).
///
/// `user` is `{"subject": string, "email"?: string, "groups": [string], "issuer"?: string, "origin": string,
/// "token_fingerprint"?: string}` where `origin` is `unknown`, `attribute`, `edge`, `verified_token`,
/// `decoded_token`, `certificate`, `expired_token`, `not_yet_valid_token` or `wrong_audience_token` and `token_fingerprint` is the token's SHA-256 in lowercase hex.
///
/// `http` is `{"method"?: string, "target"?: string, "route"?: string, "status_code": integer,
/// "client_address"?: string}`; `status_code` is 0 when unknown.
///
/// ## Attribute values
///
/// Attribute objects (`attributes`, `resource.attributes`, key-value lists) map each key to its value
/// rendered as native JSON:
///
/// - string → string; bool → `true`/`false`; empty (no value set) → `null`;
/// - int → integer, or a decimal string when its magnitude exceeds 2^53 (beyond which JSON numbers are
///   not exact in most parsers);
/// - double → number in its shortest round-trip form (`1.0`, `0.1`, `1e-05`); NaN and the infinities,
///   which JSON cannot express, as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`;
/// - bytes → standard base64 string with padding;
/// - array → array; key-value list → object (nested by the same rules).
///
/// A key the sender repeated is written again, in order (RFC 8259 allows repeated names; most parsers
/// keep the last one).
///
/// ## Strings
///
/// `"` and `\` are escaped, control characters below U+0020 become `\b \f \n \r \t` or `\u00XX`, and
/// U+2028/U+2029 become `\u2028`/`\u2029` so a line is also valid JavaScript. Everything else, including
/// non-ASCII text, is passed through as UTF-8.
public enum EventJSON {
    /// One compact JSON object for `event`.
    public static func render(_ event: AuditEvent) -> String {
        var buffer = [UInt8]()
        buffer.reserveCapacity(1024)
        render(event, into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Appends the JSON object for `event` to `buffer` (no newline), for writers that batch many lines.
    public static func render(_ event: AuditEvent, into buffer: inout [UInt8]) {
        var memo = EventJSONMemo()
        render(event, into: &buffer, memo: &memo)
    }

    /// As `render(_:into:)`, reusing the resource and scope members `memo` holds from the previous event when
    /// this one shares them.
    public static func render(_ event: AuditEvent, into buffer: inout [UInt8], memo: inout EventJSONMemo) {
        var w = JSONWriter(buffer: buffer)
        buffer = []  // hand the storage to the writer so appends do not copy it
        w.event(event, memo: &memo)
        buffer = w.buffer
    }

    /// Newline-delimited JSON: one rendered event per line, each line ending in `\n`.
    public static func ndjson(_ events: some Sequence<AuditEvent>) -> String {
        var buffer = [UInt8]()
        buffer.reserveCapacity(events.underestimatedCount * 900)
        for event in events {
            render(event, into: &buffer)
            buffer.append(UInt8(ascii: "\n"))
        }
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// The rendered `resource` and `scope` members of recent events, reused for an event that has the same ones. Events
/// decoded from one block share their resource's attribute storage, so "the same" is first asked of the storage
/// (cheap) and then of the few plain fields; holding the arrays keeps that storage from being freed and reused
/// while it is compared. A span's resource is often half its JSON; a trace's hops alternate between a few
/// services, so a few dozen are kept.
public struct EventJSONMemo {
    struct Entry {
        var resourceAttributes: [Attribute]
        var resourceSchemaURL: String
        var resourceDropped: UInt32
        var scope: InstrumentationScope
        var scopeSchemaURL: String
        var rendered: [UInt8]

        func matches(_ e: AuditEvent) -> Bool {
            EventJSONMemo.same(resourceAttributes, e.resourceAttributes)
                && EventJSONMemo.same(scope.attributes, e.scope.attributes)
                && resourceDropped == e.resourceDroppedAttributesCount && resourceSchemaURL == e.resourceSchemaURL
                && scope.name == e.scope.name && scope.version == e.scope.version
                && scope.droppedAttributesCount == e.scope.droppedAttributesCount && scopeSchemaURL == e.scopeSchemaURL
        }
    }

    var entries: [Entry] = []
    var next = 0
    /// The `record` object's text up to the ordinal, for the segment of the last record written.
    var segment: (node: NodeID, sequence: UInt64, prefix: [UInt8])?
    static let capacity = 32

    public init() {}

    func lookup(_ e: AuditEvent) -> Int? { entries.firstIndex { $0.matches(e) } }

    /// The same storage (so the same contents), or both empty.
    static func same(_ a: [Attribute], _ b: [Attribute]) -> Bool {
        if a.isEmpty && b.isEmpty { return true }
        return a.count == b.count
            && a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in x.baseAddress == y.baseAddress } }
    }

    mutating func remember(_ e: AuditEvent, _ bytes: ArraySlice<UInt8>) {
        let entry = Entry(
            resourceAttributes: e.resourceAttributes, resourceSchemaURL: e.resourceSchemaURL,
            resourceDropped: e.resourceDroppedAttributesCount, scope: e.scope, scopeSchemaURL: e.scopeSchemaURL,
            rendered: Array(bytes))
        if entries.count < Self.capacity {
            entries.append(entry)
        } else {
            entries[next] = entry
            next = (next + 1) % Self.capacity
        }
    }
}

/// Appends JSON tokens to a byte buffer: an event's members here, the pieces (`raw`, numbers, ids) from `JSONSink`.
struct JSONWriter: JSONSink {
    var buffer: [UInt8]

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
    static let base64Alphabet: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    /// 2^53: the largest magnitude up to which every integer is exact as an IEEE double.
    static let exactIntegerLimit: UInt64 = 1 << 53

    // MARK: Events

    mutating func event(_ e: AuditEvent) {
        var memo = EventJSONMemo()
        event(e, memo: &memo)
    }

    mutating func event(_ e: AuditEvent, memo: inout EventJSONMemo) {
        let isLog = e.kind == .log
        raw("{\"kind\":\"")
        raw(Self.name(e.kind))
        raw("\",\"start_time_unix_nano\":")
        quotedDecimal(e.startTimeUnixNano)
        raw(",\"end_time_unix_nano\":")
        quotedDecimal(e.endTimeUnixNano)
        if isLog || e.observedTimeUnixNano != 0 {
            raw(",\"observed_time_unix_nano\":")
            quotedDecimal(e.observedTimeUnixNano)
        }
        raw(",\"duration_ns\":")
        integer(e.durationNanos)
        raw(",\"trace_id\":")
        traceID(e.traceID)
        raw(",\"span_id\":")
        spanID(e.spanID)
        if let parent = e.parentSpanID {
            raw(",\"parent_span_id\":")
            spanID(parent)
        }
        if !e.traceState.isEmpty {
            raw(",\"trace_state\":")
            string(e.traceState)
        }
        raw(",\"flags\":")
        decimal(UInt64(e.flags))
        raw(",\"span_kind\":\"")
        raw(Self.name(e.spanKind))
        raw("\",\"name\":")
        string(e.name)
        raw(",\"service\":")
        string(e.service)
        raw(",\"source\":\"")
        raw(Self.name(e.source))
        raw("\"")
        if let user = e.user {
            raw(",\"user\":")
            self.user(user)
        }
        if let workload = e.workload {
            raw(",\"workload\":")
            string(workload)
        }
        if let http = e.http {
            raw(",\"http\":")
            self.http(http)
        }
        if e.statusCode != .unset || !e.statusMessage.isEmpty {
            raw(",\"status\":{\"code\":\"")
            raw(Self.name(e.statusCode))
            raw("\"")
            if !e.statusMessage.isEmpty {
                raw(",\"message\":")
                string(e.statusMessage)
            }
            raw("}")
        }
        if isLog || e.severityNumber != 0 || !e.severityText.isEmpty || e.body != nil || !e.eventName.isEmpty {
            raw(",\"severity_number\":")
            decimal(UInt64(e.severityNumber))
            raw(",\"severity_text\":")
            string(e.severityText)
            if let body = e.body {
                raw(",\"body\":")
                value(body)
            }
            raw(",\"event_name\":")
            string(e.eventName)
        }
        raw(",\"attributes\":")
        attributes(e.attributes)
        droppedCount(e.droppedAttributesCount, key: ",\"dropped_attributes_count\":")
        if !e.events.isEmpty {
            raw(",\"events\":[")
            for (i, spanEvent) in e.events.enumerated() {
                if i > 0 { byte(UInt8(ascii: ",")) }
                self.spanEvent(spanEvent)
            }
            raw("]")
        }
        droppedCount(e.droppedEventsCount, key: ",\"dropped_events_count\":")
        if !e.links.isEmpty {
            raw(",\"links\":[")
            for (i, link) in e.links.enumerated() {
                if i > 0 { byte(UInt8(ascii: ",")) }
                self.link(link)
            }
            raw("]")
        }
        droppedCount(e.droppedLinksCount, key: ",\"dropped_links_count\":")
        if let hit = memo.lookup(e) {
            buffer.append(contentsOf: memo.entries[hit].rendered)
        } else {
            let start = buffer.count
            resourceAndScope(e)
            memo.remember(e, buffer[start...])
        }
        byte(UInt8(ascii: "}"))
    }

    /// The `resource` and `scope` members, each omitted when empty.
    private mutating func resourceAndScope(_ e: AuditEvent) {
        resourceAndScope(
            attributes: e.resourceAttributes, dropped: e.resourceDroppedAttributesCount, schemaURL: e.resourceSchemaURL,
            scope: e.scope, scopeSchemaURL: e.scopeSchemaURL)
    }

    private mutating func user(_ u: UserIdentity) {
        raw("{\"subject\":")
        string(u.subject)
        if let email = u.email {
            raw(",\"email\":")
            string(email)
        }
        raw(",\"groups\":[")
        for (i, group) in u.groups.enumerated() {
            if i > 0 { byte(UInt8(ascii: ",")) }
            string(group)
        }
        raw("]")
        if let issuer = u.issuer {
            raw(",\"issuer\":")
            string(issuer)
        }
        raw(",\"origin\":\"")
        raw(Self.name(u.origin))
        raw("\"")
        if let fingerprint = u.tokenFingerprint {
            raw(",\"token_fingerprint\":\"")
            for b in fingerprint {
                byte(Self.hexDigits[Int(b >> 4)])
                byte(Self.hexDigits[Int(b & 0x0f)])
            }
            raw("\"")
        }
        raw("}")
    }

    private mutating func http(_ h: HTTPFacts) {
        byte(UInt8(ascii: "{"))
        if let method = h.method {
            raw("\"method\":")
            string(method)
            byte(UInt8(ascii: ","))
        }
        if let target = h.target {
            raw("\"target\":")
            string(target)
            byte(UInt8(ascii: ","))
        }
        if let route = h.route {
            raw("\"route\":")
            string(route)
            byte(UInt8(ascii: ","))
        }
        raw("\"status_code\":")
        decimal(UInt64(h.statusCode))
        if let client = h.clientAddress {
            raw(",\"client_address\":")
            string(client)
        }
        byte(UInt8(ascii: "}"))
    }

    private mutating func spanEvent(_ e: SpanEvent) {
        raw("{\"time_unix_nano\":")
        quotedDecimal(e.timeUnixNano)
        raw(",\"name\":")
        string(e.name)
        raw(",\"attributes\":")
        attributes(e.attributes)
        droppedCount(e.droppedAttributesCount, key: ",\"dropped_attributes_count\":")
        byte(UInt8(ascii: "}"))
    }

    private mutating func link(_ l: SpanLink) {
        raw("{\"trace_id\":")
        traceID(l.traceID)
        raw(",\"span_id\":")
        spanID(l.spanID)
        if !l.traceState.isEmpty {
            raw(",\"trace_state\":")
            string(l.traceState)
        }
        raw(",\"flags\":")
        decimal(UInt64(l.flags))
        raw(",\"attributes\":")
        attributes(l.attributes)
        droppedCount(l.droppedAttributesCount, key: ",\"dropped_attributes_count\":")
        byte(UInt8(ascii: "}"))
    }

    // MARK: Strings

    /// A quoted, escaped JSON string.
    mutating func string(_ s: String) {
        JSONString.appendQuoted(s, to: &buffer)
    }

    // MARK: The sink (the pieces themselves: `JSONSink`)

    @inline(__always)
    mutating func byte(_ b: UInt8) { buffer.append(b) }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawPointer, count: Int) {
        buffer.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: count))
    }

    /// Appends `value` in decimal to `buffer` (for writers outside an event).
    static func appendDecimal(_ value: UInt64, to buffer: inout [UInt8]) {
        var w = JSONWriter(buffer: buffer)
        buffer = []
        w.decimal(value)
        buffer = w.buffer
    }

    /// The 8 lowercase hex digits of the low 32 bits of `x`, most significant first, as the bytes of a `UInt64` in
    /// memory order.
    @inline(__always) static func hexDigits(_ x: UInt64) -> UInt64 {
        // Each nibble to a byte of its own (the least significant nibble in the least significant byte), then the
        // bytes reversed so the most significant digit comes first.
        var t = x & 0xFFFF_FFFF
        t = (t | t << 16) & 0x0000_FFFF_0000_FFFF
        t = (t | t << 8) & 0x00FF_00FF_00FF_00FF
        t = (t | t << 4) & 0x0F0F_0F0F_0F0F_0F0F
        t = t.byteSwapped
        // "0" + n, and 39 more ("a" - "0" - 10) where n > 9: each byte on its own, no carries.
        let letters = (t &+ 0x0606_0606_0606_0606) >> 4 & 0x0101_0101_0101_0101
        return (t &+ 0x3030_3030_3030_3030 &+ letters &* 39).littleEndian
    }

    // MARK: Enum names (part of the schema: never rename)

    static func name(_ kind: EventKind) -> StaticString {
        switch kind {
        case .span: "span"
        case .access: "access"
        case .log: "log"
        }
    }

    static func name(_ kind: SpanKind) -> StaticString {
        switch kind {
        case .unspecified: "unspecified"
        case .internal: "internal"
        case .server: "server"
        case .client: "client"
        case .producer: "producer"
        case .consumer: "consumer"
        }
    }

    static func name(_ source: EventSource) -> StaticString {
        switch source {
        case .unknown: "unknown"
        case .edge: "edge"
        case .sidecar: "sidecar"
        case .app: "app"
        }
    }

    static func name(_ code: StatusCode) -> StaticString {
        switch code {
        case .unset: "unset"
        case .ok: "ok"
        case .error: "error"
        }
    }

    static func name(_ origin: IdentityOrigin) -> StaticString {
        switch origin {
        case .unknown: "unknown"
        case .attribute: "attribute"
        case .edge: "edge"
        case .verifiedToken: "verified_token"
        case .decodedToken: "decoded_token"
        case .certificate: "certificate"
        case .expiredToken: "expired_token"
        case .notYetValidToken: "not_yet_valid_token"
        case .wrongAudienceToken: "wrong_audience_token"
        }
    }
}
