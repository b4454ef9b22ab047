// OTLP <-> AuditEvent. Import validates each span and log record (one bad item is rejected with a reason,
// the rest of the request is kept) and keeps every attribute, event and link exactly as sent: it decodes only.
// The audit fields (source, user, workload, HTTP facts) are derived from well-known attributes by the rules in
// `deriveAuditFields`, which the collector's normalising stage applies once to every event. Export gives back
// what was received: `export(import(request)) == request` for valid requests, up to grouping.
import Foundation
import LogFormat
import OTLPProto

public typealias OTLPTraceRequest = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest
public typealias OTLPLogsRequest = Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest
public typealias OTLPSpan = Opentelemetry_Proto_Trace_V1_Span
public typealias OTLPAnyValue = Opentelemetry_Proto_Common_V1_AnyValue
public typealias OTLPKeyValue = Opentelemetry_Proto_Common_V1_KeyValue

/// Which attribute keys name the user, in order of preference (the collector's configuration sets these).
public struct IdentityKeys: Sendable, Hashable {
    public var subject: [String] = ["user.id", "enduser.id", "user.email", "user.name"]
    public var email: [String] = ["user.email"]
    public var groups: [String] = ["user.roles", "enduser.role"]
    public init() {}
}

/// An item of a request that was not stored, and why.
public struct RejectedItem: Sendable, Hashable, CustomStringConvertible {
    /// Position in the request: resource index, scope index, item index.
    public var resource: Int
    public var scope: Int
    public var item: Int
    public var reason: String

    package init(resource: Int, scope: Int, item: Int, reason: String) {
        self.resource = resource
        self.scope = scope
        self.item = item
        self.reason = reason
    }

    public var description: String { "resource \(resource) scope \(scope) item \(item): \(reason)" }
}

public enum OTLPMapping {
    public struct Imported: Sendable {
        public var events: [AuditEvent] = []
        public var rejected: [RejectedItem] = []

        public init(events: [AuditEvent] = [], rejected: [RejectedItem] = []) {
            self.events = events
            self.rejected = rejected
        }
    }

    // MARK: Import

    public static func events(from request: OTLPTraceRequest) -> Imported {
        var out = Imported()
        for (r, rs) in request.resourceSpans.enumerated() {
            importResource(
                rs.resource, schemaURL: rs.schemaURL, index: r,
                scopes: rs.scopeSpans.map { ($0.scope, $0.schemaURL, $0.spans) },
                into: &out, convert: { (span) throws(Invalid) in try event(from: span) })
        }
        return out
    }

    public static func events(from request: OTLPLogsRequest) -> Imported {
        var out = Imported()
        for (r, rl) in request.resourceLogs.enumerated() {
            importResource(
                rl.resource, schemaURL: rl.schemaURL, index: r,
                scopes: rl.scopeLogs.map { ($0.scope, $0.schemaURL, $0.logRecords) },
                into: &out, convert: { (log) throws(Invalid) in try event(from: log) })
        }
        return out
    }

    /// The items of one resource: each converted and stamped with its resource and scope, or rejected with its
    /// position and reason.
    private static func importResource<Item>(
        _ resource: Opentelemetry_Proto_Resource_V1_Resource, schemaURL: String, index r: Int,
        scopes: [(Opentelemetry_Proto_Common_V1_InstrumentationScope, String, [Item])],
        into out: inout Imported, convert: (Item) throws(Invalid) -> AuditEvent
    ) {
        let resourceAttributes = resource.attributes.map(attribute)
        let service = resourceAttributes.value(forKey: "service.name")?.stringValue ?? "unknown_service"
        for (s, (otlpScope, scopeSchemaURL, items)) in scopes.enumerated() {
            let scope = InstrumentationScope(
                name: otlpScope.name, version: otlpScope.version, attributes: otlpScope.attributes.map(attribute),
                droppedAttributesCount: otlpScope.droppedAttributesCount)
            for (i, item) in items.enumerated() {
                do throws(Invalid) {
                    var e = try convert(item)
                    // An access event from a log record may name its service itself (AccessLogRecord).
                    if e.service.isEmpty { e.service = service }
                    e.resourceAttributes = resourceAttributes
                    e.resourceDroppedAttributesCount = resource.droppedAttributesCount
                    e.resourceSchemaURL = schemaURL
                    e.scope = scope
                    e.scopeSchemaURL = scopeSchemaURL
                    out.events.append(e)
                } catch {
                    out.rejected.append(RejectedItem(resource: r, scope: s, item: i, reason: error.reason))
                }
            }
        }
    }

    /// Why one item (span or log record) is rejected.
    package struct Invalid: Error {
        package var reason: String
        package init(reason: String) { self.reason = reason }
    }

    static func traceID(_ bytes: Data, _ what: String, required: Bool) throws(Invalid) -> TraceID {
        try traceID(count: bytes.count, bytes.withUnsafeBytes { TraceID(raw: $0) } ?? .zero, what, required: required)
    }

    static func spanID(_ bytes: Data, _ what: String, required: Bool) throws(Invalid) -> SpanID {
        try spanID(count: bytes.count, bytes.withUnsafeBytes { SpanID(raw: $0) } ?? .zero, what, required: required)
    }

    /// The rule for a trace id field of `count` bytes that read as `id` (when `count` is 16). Shared by every
    /// decoder, so they give the same reasons.
    package static func traceID(count: Int, _ id: TraceID, _ what: String, required: Bool) throws(Invalid) -> TraceID {
        if count == 0 && !required { return .zero }
        guard count == 16 else { throw Invalid(reason: "\(what) must be 16 bytes, got \(count)") }
        guard !id.isZero || !required else { throw Invalid(reason: "\(what) is all zeros") }
        return id
    }

    /// The rule for a span id field of `count` bytes that read as `id` (when `count` is 8).
    package static func spanID(count: Int, _ id: SpanID, _ what: String, required: Bool) throws(Invalid) -> SpanID {
        if count == 0 && !required { return .zero }
        guard count == 8 else { throw Invalid(reason: "\(what) must be 8 bytes, got \(count)") }
        guard !id.isZero || !required else { throw Invalid(reason: "\(what) is all zeros") }
        return id
    }

    package static func spanKind(_ raw: Int) throws(Invalid) -> SpanKind {
        guard (0...5).contains(raw), let kind = SpanKind(rawValue: UInt8(raw)) else {
            throw Invalid(reason: "unknown span kind \(raw)")
        }
        return kind
    }

    package static func statusCode(_ raw: Int) throws(Invalid) -> StatusCode {
        guard (0...2).contains(raw), let code = StatusCode(rawValue: UInt8(raw)) else {
            throw Invalid(reason: "unknown status code \(raw)")
        }
        return code
    }

    package static func severity(_ raw: Int) throws(Invalid) -> UInt8 {
        guard (0...24).contains(raw) else { throw Invalid(reason: "severity_number \(raw) is outside 0-24") }
        return UInt8(raw)
    }

    /// An access event exported as a log record (AccessLogRecord) comes back as the access event it was.
    package static func restoreAccessEvent(_ e: inout AuditEvent) throws(Invalid) {
        guard e.eventName == AccessLogRecord.eventName else { return }
        do throws(AccessLogRecord.Invalid) { try AccessLogRecord.restore(&e) } catch {
            throw Invalid(reason: error.reason)
        }
    }

    static func event(from span: OTLPSpan) throws(Invalid) -> AuditEvent {
        let trace = try traceID(span.traceID, "trace_id", required: true)
        let spanID = try spanID(span.spanID, "span_id", required: true)
        var parent: SpanID? = nil
        if !span.parentSpanID.isEmpty {
            let p = try self.spanID(span.parentSpanID, "parent_span_id", required: true)
            parent = p
        }
        let kind = try spanKind(span.kind.rawValue)
        let status = try statusCode(span.status.code.rawValue)
        var links: [SpanLink] = []
        for link in span.links {
            links.append(
                SpanLink(
                    traceID: try traceID(link.traceID, "link trace_id", required: true),
                    spanID: try self.spanID(link.spanID, "link span_id", required: true),
                    traceState: link.traceState, attributes: link.attributes.map(attribute),
                    droppedAttributesCount: link.droppedAttributesCount, flags: link.flags))
        }
        return AuditEvent(
            kind: .span, startTimeUnixNano: span.startTimeUnixNano, endTimeUnixNano: span.endTimeUnixNano,
            traceID: trace, spanID: spanID, parentSpanID: parent, traceState: span.traceState, flags: span.flags,
            spanKind: kind, name: span.name, statusCode: status, statusMessage: span.status.message,
            attributes: span.attributes.map(attribute), droppedAttributesCount: span.droppedAttributesCount,
            events: span.events.map {
                SpanEvent(
                    timeUnixNano: $0.timeUnixNano, name: $0.name, attributes: $0.attributes.map(attribute),
                    droppedAttributesCount: $0.droppedAttributesCount)
            },
            droppedEventsCount: span.droppedEventsCount, links: links, droppedLinksCount: span.droppedLinksCount)
    }

    static func event(from log: Opentelemetry_Proto_Logs_V1_LogRecord) throws(Invalid) -> AuditEvent {
        let severity = try self.severity(log.severityNumber.rawValue)
        // On log records the ids are optional; when present they must have the right length.
        let trace = try traceID(log.traceID, "trace_id", required: false)
        let span = try spanID(log.spanID, "span_id", required: false)
        var e = AuditEvent(
            kind: .log, startTimeUnixNano: log.timeUnixNano, observedTimeUnixNano: log.observedTimeUnixNano,
            traceID: trace, spanID: span, flags: log.flags, severityNumber: severity,
            severityText: log.severityText, body: log.hasBody ? value(log.body) : nil, eventName: log.eventName,
            attributes: log.attributes.map(attribute), droppedAttributesCount: log.droppedAttributesCount)
        try restoreAccessEvent(&e)
        return e
    }

    static func attribute(_ kv: OTLPKeyValue) -> Attribute {
        Attribute(kv.key, kv.hasValue ? value(kv.value) : .empty)
    }

    static func value(_ v: OTLPAnyValue) -> AttributeValue {
        switch v.value {
        case .none: return .empty
        case .stringValue(let s): return .string(s)
        case .boolValue(let b): return .bool(b)
        case .intValue(let i): return .int(i)
        case .doubleValue(let d): return .double(d)
        case .bytesValue(let b): return .bytes(Array(b))
        case .arrayValue(let a): return .array(a.values.map(value))
        case .kvlistValue(let l): return .keyValueList(l.values.map(attribute))
        }
    }

    // MARK: Audit fields

    /// What a well-known attribute key says about an event, and its preference among the keys saying the same.
    public struct AuditFieldKeys: Sendable {
        enum Role: Sendable {
            case subject, email, groups, method, urlPath, urlQuery, target, status, route, client
        }
        /// A key can play several roles (`user.email` names the subject when nothing better does, and the email).
        let roles: [String: [(role: Role, rank: Int)]]
        /// Per key length below 64, a bit for each first byte (modulo 64) of a key in `roles`: most attribute
        /// keys are passed over on these two facts, without hashing the key.
        let firstBytes: [UInt64]

        /// Whether `key` may be in `roles` (false: it is not).
        @inline(__always) func mayPlayARole(_ key: String) -> Bool {
            let u = key.utf8
            let n = u.count
            guard n < 64, let first = u.first else { return n >= 64 || roles[""] != nil }
            return firstBytes[n] & (1 &<< UInt64(first & 63)) != 0
        }

        public init(_ identity: IdentityKeys) {
            var r: [String: [(role: Role, rank: Int)]] = [:]
            func add(_ role: Role, _ keys: [String]) {
                for (i, k) in keys.enumerated() where !(r[k] ?? []).contains(where: { $0.role == role }) {
                    r[k, default: []].append((role, i))
                }
            }
            add(.subject, identity.subject)
            add(.email, identity.email)
            add(.groups, identity.groups)
            add(.method, ["http.request.method", "http.method"])
            add(.urlPath, ["url.path"])
            add(.urlQuery, ["url.query"])
            add(.target, ["http.target", "url.full", "http.url", "http.path"])
            add(.status, ["http.response.status_code", "http.status_code"])
            add(.route, ["http.route"])
            add(.client, ["client.address", "net.sock.peer.addr", "http.client_ip", "net.peer.ip"])
            roles = r
            var bits = [UInt64](repeating: 0, count: 64)
            for key in r.keys where key.utf8.count < 64 {
                if let first = key.utf8.first { bits[key.utf8.count] |= 1 << UInt64(first & 63) }
            }
            firstBytes = bits
        }
    }

    /// Fills service-independent audit fields from well-known attributes; the attributes themselves stay. The
    /// rules of the OTLP and Zipkin receivers, applied by the collector's normalising stage (once per event).
    public static func deriveAuditFields(_ e: inout AuditEvent, identity: IdentityKeys) {
        deriveAuditFields(
            &e, keys: AuditFieldKeys(identity), reportedByProxy: reportedByProxy(e.scope.name, e.resourceAttributes))
    }

    /// The same with the key table built once (the normalising stage keeps one).
    public static func deriveAuditFields(_ e: inout AuditEvent, keys: AuditFieldKeys) {
        deriveAuditFields(&e, keys: keys, reportedByProxy: reportedByProxy(e.scope.name, e.resourceAttributes))
    }

    /// The same for a whole batch, building the key table once.
    public static func deriveAuditFields(_ events: inout [AuditEvent], identity: IdentityKeys) {
        let keys = AuditFieldKeys(identity)
        for i in events.indices {
            let proxy = reportedByProxy(events[i].scope.name, events[i].resourceAttributes)
            deriveAuditFields(&events[i], keys: keys, reportedByProxy: proxy)
        }
    }

    /// One pass over the attributes: each key is looked up once in `keys` (the hot path of every span).
    /// `reportedByProxy` is `reportedByProxy(e.scope.name, e.resourceAttributes)`, which a caller working
    /// through a batch computes once per scope.
    public static func deriveAuditFields(_ e: inout AuditEvent, keys: AuditFieldKeys, reportedByProxy: Bool) {
        deriveAuditFields(&e, keys: keys, reportedByProxy: reportedByProxy) { resourceWorkload($0) }
    }

    /// The first resource attribute value that starts `spiffe://`: the workload when no span attribute names one.
    public static func resourceWorkload(_ resourceAttributes: [Attribute]) -> String? {
        resourceAttributes.lazy.compactMap(\.value.stringValue).first(where: isSPIFFEPrefixed)
    }

    /// Whether `s` starts `spiffe://`, read in place (a generic `starts(with:)` cost more than the rest of a
    /// span's audit fields).
    @inline(__always) static func isSPIFFEPrefixed(_ s: String) -> Bool {
        let u = s.utf8
        guard u.count >= 9, u.first == UInt8(ascii: "s") else { return false }
        var s = s
        return s.withUTF8 { p in
            let prefix: StaticString = "spiffe://"
            return memcmp(p.baseAddress!, prefix.utf8Start, 9) == 0
        }
    }

    /// The same, with `resourceWorkload(e.resourceAttributes)` supplied by a caller that works it out once per
    /// resource (the events of one resource share its list).
    public static func deriveAuditFields(
        _ e: inout AuditEvent, keys: AuditFieldKeys, reportedByProxy: Bool,
        resourceWorkload: ([Attribute]) -> String?
    ) {
        typealias Role = AuditFieldKeys.Role
        // The best (lowest-ranked) non-empty string per role, and the status as a number.
        var best = BestValues()  // on the stack: an array here was an allocation per span
        func slot(_ role: Role) -> Int {
            switch role {
            case .subject: 0
            case .email: 1
            case .groups: 2
            case .method: 3
            case .urlPath: 4
            case .urlQuery: 5
            case .target: 6
            case .status: 7
            case .route: 8
            case .client: 9
            }
        }
        var status: (rank: Int, code: UInt16)?
        var groups: [(rank: Int, values: [String])] = []
        var workload: String?
        var proxyAttribute = false
        for a in e.attributes {
            let keyLength = a.key.utf8.count
            if (keyLength == 17 && a.key == "guid:x-request-id") || (keyLength == 16 && a.key == "upstream_cluster") {
                proxyAttribute = true
            }
            if workload == nil, case .string(let v) = a.value, isSPIFFEPrefixed(v) { workload = v }
            guard keys.mayPlayARole(a.key), let roles = keys.roles[a.key] else { continue }
            for (role, rank) in roles {
                switch (role, a.value) {
                case (.status, .int(let i)):
                    if status == nil || rank < status!.rank { status = (rank, UInt16(clamping: i)) }
                case (.status, .string(let t)):
                    if let v = UInt16(t), status == nil || rank < status!.rank { status = (rank, v) }
                case (.groups, .string(let t)):
                    groups.append(
                        (rank, t.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }))
                case (.groups, .array(let values)):
                    groups.append((rank, values.compactMap(\.stringValue)))
                case (_, .string(let t)) where !t.isEmpty:
                    let i = slot(role)
                    best.offer(t, rank: rank, at: i)
                default:
                    break
                }
            }
        }
        if let subject = best.value(at: slot(.subject)) {
            let allGroups =
                groups.count > 1 ? groups.sorted { $0.rank < $1.rank }.flatMap(\.values) : groups.first?.values ?? []
            e.user = UserIdentity(
                subject: subject, email: best.value(at: slot(.email)), groups: allGroups, origin: .attribute)
        }
        let method = best.value(at: slot(.method))
        let query = best.value(at: slot(.urlQuery))
        let path = best.value(at: slot(.urlPath)).map { p in query.map { p + "?" + $0 } ?? p }
        let target = path ?? best.value(at: slot(.target))
        let code = status?.code ?? 0
        if method != nil || target != nil || code != 0 {
            e.http = HTTPFacts(
                method: method, target: target, route: best.value(at: slot(.route)), statusCode: code,
                clientAddress: best.value(at: slot(.client)))
        }
        if e.workload == nil { e.workload = workload ?? resourceWorkload(e.resourceAttributes) }
        e.source = reportedByProxy || proxyAttribute ? .sidecar : .app
    }

    /// Ten slots of the best (lowest-ranked) value per role, held inline so deriving allocates nothing. Ranks and
    /// values are apart, each a tuple of one type read through a pointer: slots of `(rank, value)?` were copied
    /// through the runtime's generic tuple witnesses on every read.
    struct BestValues {
        private var ranks: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) = (
            .max, .max, .max, .max, .max, .max, .max, .max, .max, .max
        )
        private var values: (String, String, String, String, String, String, String, String, String, String) = (
            "", "", "", "", "", "", "", "", "", ""
        )

        /// The value of slot `i` (0..<10), nil when none was offered. Mutating only to read the values in place
        /// (`withUnsafeBytes(of:)` on a value would copy all ten strings).
        mutating func value(at i: Int) -> String? {
            precondition(i >= 0 && i < 10)
            let rank = withUnsafeBytes(of: &ranks) { $0.bindMemory(to: Int.self)[i] }
            guard rank != .max else { return nil }
            return withUnsafeMutableBytes(of: &values) { $0.bindMemory(to: String.self)[i] }
        }

        /// Keeps `value` in slot `i` when no value of a lower rank is there.
        mutating func offer(_ value: String, rank: Int, at i: Int) {
            precondition(i >= 0 && i < 10 && rank < .max)
            let better = withUnsafeMutableBytes(of: &ranks) { r in
                let p = r.bindMemory(to: Int.self)
                guard rank < p[i] else { return false }
                p[i] = rank
                return true
            }
            if better { withUnsafeMutableBytes(of: &values) { $0.bindMemory(to: String.self)[i] = value } }
        }
    }

    /// Whether the reporting process is a mesh proxy (Envoy, Istio, Linkerd), judged from its scope name and
    /// resource attribute keys; computed once per scope, not per span.
    public static func reportedByProxy(_ scopeName: String, _ resourceAttributes: [Attribute]) -> Bool {
        // In place over the bytes (no arrays): it runs once per scope of every request.
        let markers: [StaticString] = ["envoy", "istio", "linkerd"]
        var scope = scopeName
        let inScope = scope.withUTF8 { s in markers.contains { m in containsIgnoringASCIICase(s, m) } }
        if inScope { return true }
        return resourceAttributes.contains { a in
            var key = a.key
            return key.withUTF8 { k in
                // A marker at the start of the key (its first 7 bytes), e.g. `istio.` or `envoy_`.
                let head = UnsafeBufferPointer(rebasing: k.prefix(7))
                return markers.contains { m in
                    m.utf8CodeUnitCount <= head.count
                        && containsIgnoringASCIICase(UnsafeBufferPointer(rebasing: head.prefix(m.utf8CodeUnitCount)), m)
                }
            }
        }
    }

    /// Whether `needle` (lowercase ASCII) occurs in `haystack`, comparing ASCII letters without case.
    static func containsIgnoringASCIICase(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: StaticString) -> Bool {
        let n = needle.utf8CodeUnitCount
        guard n <= haystack.count else { return false }
        let p = needle.utf8Start
        outer: for start in 0...(haystack.count - n) {
            for k in 0..<n {
                var c = haystack[start + k]
                if c >= 0x41 && c <= 0x5A { c |= 0x20 }
                if c != p[k] { continue outer }
            }
            return true
        }
        return false
    }

    // MARK: Export

    /// An OTLP logs request carrying the access and log events among `events` (AccessLogRecord), grouped by
    /// resource and scope as received, like `traceRequest`.
    public static func logsRequest(from events: [AuditEvent]) -> OTLPLogsRequest {
        var request = OTLPLogsRequest()
        let groups = groupedByResourceAndScope(events) { $0.kind == .access || $0.kind == .log }
        request.resourceLogs = groups.map { scopes in
            var rl = Opentelemetry_Proto_Logs_V1_ResourceLogs()
            rl.resource = resource(of: scopes[0][0])
            rl.schemaURL = scopes[0][0].resourceSchemaURL
            rl.scopeLogs = scopes.map { group in
                var sl = Opentelemetry_Proto_Logs_V1_ScopeLogs()
                sl.scope = scope(of: group[0])
                sl.schemaURL = group[0].scopeSchemaURL
                sl.logRecords = group.map(AccessLogRecord.logRecord(from:))
                return sl
            }
            return rl
        }
        return request
    }

    /// An OTLP trace request carrying `events` (spans only), grouped by resource and scope as received.
    public static func traceRequest(from events: [AuditEvent]) -> OTLPTraceRequest {
        var request = OTLPTraceRequest()
        request.resourceSpans = groupedByResourceAndScope(events) { $0.kind == .span }.map { scopes in
            var rs = Opentelemetry_Proto_Trace_V1_ResourceSpans()
            rs.resource = resource(of: scopes[0][0])
            rs.schemaURL = scopes[0][0].resourceSchemaURL
            rs.scopeSpans = scopes.map { group in
                var ss = Opentelemetry_Proto_Trace_V1_ScopeSpans()
                ss.scope = scope(of: group[0])
                ss.schemaURL = group[0].scopeSchemaURL
                ss.spans = group.map(span(from:))
                return ss
            }
            return rs
        }
        return request
    }

    /// The events `keep` accepts, by resource and then by scope within it, each in order of first appearance:
    /// the nesting of both OTLP requests. Every group holds at least one event.
    private static func groupedByResourceAndScope(
        _ events: [AuditEvent], where keep: (AuditEvent) -> Bool
    ) -> [[[AuditEvent]]] {
        var resources: [[[AuditEvent]]] = []
        var resourceIndex: [ResourceKey: Int] = [:]
        var scopeIndex: [ScopeKey: Int] = [:]
        for e in events where keep(e) {
            let rk = ResourceKey(
                attributes: e.resourceAttributes, dropped: e.resourceDroppedAttributesCount, schema: e.resourceSchemaURL
            )
            let r: Int
            if let existing = resourceIndex[rk] {
                r = existing
            } else {
                resources.append([])
                r = resources.count - 1
                resourceIndex[rk] = r
            }
            let sk = ScopeKey(resource: r, scope: e.scope, schema: e.scopeSchemaURL)
            if let s = scopeIndex[sk] {
                resources[r][s].append(e)
            } else {
                scopeIndex[sk] = resources[r].count
                resources[r].append([e])
            }
        }
        return resources
    }

    struct ResourceKey: Hashable {
        var attributes: [Attribute]
        var dropped: UInt32
        var schema: String
    }

    struct ScopeKey: Hashable {
        var resource: Int
        var scope: InstrumentationScope
        var schema: String
    }

    public static func span(from e: AuditEvent) -> OTLPSpan {
        var s = OTLPSpan()
        s.traceID = Data(e.traceID.bytes)
        s.spanID = Data(e.spanID.bytes)
        if let parent = e.parentSpanID { s.parentSpanID = Data(parent.bytes) }
        s.traceState = e.traceState
        s.flags = e.flags
        s.name = e.name
        s.kind = OTLPSpan.SpanKind(rawValue: Int(e.spanKind.rawValue)) ?? .unspecified
        s.startTimeUnixNano = e.startTimeUnixNano
        s.endTimeUnixNano = e.endTimeUnixNano
        s.attributes = e.attributes.map(keyValue)
        s.droppedAttributesCount = e.droppedAttributesCount
        s.events = e.events.map { ev in
            var o = OTLPSpan.Event()
            o.timeUnixNano = ev.timeUnixNano
            o.name = ev.name
            o.attributes = ev.attributes.map(keyValue)
            o.droppedAttributesCount = ev.droppedAttributesCount
            return o
        }
        s.droppedEventsCount = e.droppedEventsCount
        s.links = e.links.map { l in
            var o = OTLPSpan.Link()
            o.traceID = Data(l.traceID.bytes)
            o.spanID = Data(l.spanID.bytes)
            o.traceState = l.traceState
            o.attributes = l.attributes.map(keyValue)
            o.droppedAttributesCount = l.droppedAttributesCount
            o.flags = l.flags
            return o
        }
        s.droppedLinksCount = e.droppedLinksCount
        if e.statusCode != .unset || !e.statusMessage.isEmpty {
            s.status.code =
                Opentelemetry_Proto_Trace_V1_Status.StatusCode(rawValue: Int(e.statusCode.rawValue)) ?? .unset
            s.status.message = e.statusMessage
        }
        return s
    }

    /// The OTLP resource and scope an event was received with: shared by the trace and the logs request.
    static func resource(of e: AuditEvent) -> Opentelemetry_Proto_Resource_V1_Resource {
        var r = Opentelemetry_Proto_Resource_V1_Resource()
        r.attributes = e.resourceAttributes.map(keyValue)
        r.droppedAttributesCount = e.resourceDroppedAttributesCount
        return r
    }

    static func scope(of e: AuditEvent) -> Opentelemetry_Proto_Common_V1_InstrumentationScope {
        var s = Opentelemetry_Proto_Common_V1_InstrumentationScope()
        s.name = e.scope.name
        s.version = e.scope.version
        s.attributes = e.scope.attributes.map(keyValue)
        s.droppedAttributesCount = e.scope.droppedAttributesCount
        return s
    }

    static func keyValue(_ a: Attribute) -> OTLPKeyValue {
        var kv = OTLPKeyValue()
        kv.key = a.key
        if a.value != .empty { kv.value = anyValue(a.value) }
        return kv
    }

    static func anyValue(_ v: AttributeValue) -> OTLPAnyValue {
        var o = OTLPAnyValue()
        switch v {
        case .empty: break
        case .string(let s): o.stringValue = s
        case .bool(let b): o.boolValue = b
        case .int(let i): o.intValue = i
        case .double(let d): o.doubleValue = d
        case .bytes(let b): o.bytesValue = Data(b)
        case .array(let values):
            var a = Opentelemetry_Proto_Common_V1_ArrayValue()
            a.values = values.map(anyValue)
            o.arrayValue = a
        case .keyValueList(let list):
            var l = Opentelemetry_Proto_Common_V1_KeyValueList()
            l.values = list.map(keyValue)
            o.kvlistValue = l
        }
        return o
    }
}

extension String {
    package var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
