// An access event as an OTLP log record, and back (docs/otlp-export.md). OTLP has no access-event signal, so
// `auditq --format otlp` sends access events as log records beside the spans, and a collector's OTLP logs
// receiver takes such a record back as the access event it was. The record's own fields carry what they can
// (time = start, observed time, trace and span id, flags, severity, body, attributes, resource, scope); the
// event's other fields travel as attributes under `auditq.access.`, which import consumes. The prefix is not
// the collector's reserved `audit.` (a sender's `audit.*` is kept as `sender.audit.*`). The record's event name
// `auditq.access` says it is one; its own event name, when it had one, travels as `auditq.access.event_name`.
//
// Never rename a key: exported files and second collectors depend on them.
import Foundation
import LogFormat
import OTLPProto

public enum AccessLogRecord {
    /// The `event_name` of a log record that carries an access event.
    public static let eventName = "auditq.access"
    public static let prefix = "auditq.access."

    enum Key {
        static let endTime = prefix + "end_time_unix_nano"  // int (the end, ns since the epoch)
        static let parentSpanID = prefix + "parent_span_id"  // string, 16 hex
        static let spanKind = prefix + "span_kind"  // int, OTLP SpanKind
        static let traceState = prefix + "trace_state"
        static let name = prefix + "name"
        static let service = prefix + "service"  // when the resource's service.name does not say it
        static let eventName = prefix + "event_name"
        static let source = prefix + "source"  // edge | sidecar | app | unknown
        static let subject = prefix + "user.subject"
        static let email = prefix + "user.email"
        static let groups = prefix + "user.groups"  // array of strings
        static let issuer = prefix + "user.issuer"
        static let origin = prefix + "user.origin"  // attribute | edge | verified_token | …
        static let tokenSHA256 = prefix + "user.token_sha256"  // string, hex
        static let workload = prefix + "workload"
        static let method = prefix + "http.method"
        static let target = prefix + "http.target"
        static let route = prefix + "http.route"
        static let statusCode = prefix + "http.status_code"  // int
        static let clientAddress = prefix + "http.client_address"
        static let otelStatusCode = prefix + "status_code"  // int, OTLP Status code (1 ok, 2 error)
        static let statusMessage = prefix + "status_message"
    }

    static let sources: [EventSource: String] = [.unknown: "unknown", .edge: "edge", .sidecar: "sidecar", .app: "app"]
    static let origins: [IdentityOrigin: String] = [
        .unknown: "unknown", .attribute: "attribute", .edge: "edge", .verifiedToken: "verified_token",
        .decodedToken: "decoded_token", .certificate: "certificate",
    ]

    /// The log record of an access or log event (a log event is exported as it came).
    public static func logRecord(from e: AuditEvent) -> Opentelemetry_Proto_Logs_V1_LogRecord {
        var l = Opentelemetry_Proto_Logs_V1_LogRecord()
        l.timeUnixNano = e.startTimeUnixNano
        l.observedTimeUnixNano = e.observedTimeUnixNano
        if !e.traceID.isZero { l.traceID = Data(e.traceID.bytes) }
        if !e.spanID.isZero { l.spanID = Data(e.spanID.bytes) }
        l.flags = e.flags
        l.severityNumber = Opentelemetry_Proto_Logs_V1_SeverityNumber(rawValue: Int(e.severityNumber)) ?? .unspecified
        l.severityText = e.severityText
        if let body = e.body { l.body = OTLPMapping.anyValue(body) }
        l.attributes = e.attributes.map(OTLPMapping.keyValue)
        l.droppedAttributesCount = e.droppedAttributesCount
        guard e.kind == .access else {
            l.eventName = e.eventName
            return l
        }
        l.eventName = eventName
        var carried: [Attribute] = []
        // Optional fields are written when set, even empty; the others when not empty (import's default).
        func put(_ key: String, _ value: String?) {
            if let value { carried.append(Attribute(key, .string(value))) }
        }
        func putText(_ key: String, _ value: String) {
            if !value.isEmpty { carried.append(Attribute(key, .string(value))) }
        }
        carried.append(Attribute(Key.endTime, .int(Int64(bitPattern: e.endTimeUnixNano))))
        put(Key.parentSpanID, e.parentSpanID?.hex)
        if e.spanKind != .unspecified { carried.append(Attribute(Key.spanKind, .int(Int64(e.spanKind.rawValue)))) }
        putText(Key.traceState, e.traceState)
        putText(Key.name, e.name)
        if e.resourceAttributes.value(forKey: "service.name")?.stringValue != e.service { put(Key.service, e.service) }
        putText(Key.eventName, e.eventName)
        put(Key.source, sources[e.source])
        if let u = e.user {
            // The subject is written even when empty: it is what says there was a user.
            put(Key.subject, u.subject)
            put(Key.email, u.email)
            if !u.groups.isEmpty { carried.append(Attribute(Key.groups, .array(u.groups.map(AttributeValue.string)))) }
            put(Key.issuer, u.issuer)
            put(Key.origin, origins[u.origin])
            put(Key.tokenSHA256, u.tokenFingerprint.map(HexCoding.encode))
        }
        put(Key.workload, e.workload)
        if let h = e.http {
            put(Key.method, h.method)
            put(Key.target, h.target)
            put(Key.route, h.route)
            carried.append(Attribute(Key.statusCode, .int(Int64(h.statusCode))))
            put(Key.clientAddress, h.clientAddress)
        }
        if e.statusCode != .unset { carried.append(Attribute(Key.otelStatusCode, .int(Int64(e.statusCode.rawValue)))) }
        putText(Key.statusMessage, e.statusMessage)
        l.attributes += carried.map(OTLPMapping.keyValue)
        return l
    }

    struct Invalid: Error {
        var reason: String
    }

    /// Completes `e`, imported from a log record with the access event name, into the access event it carries:
    /// the `auditq.access.*` attributes become its fields and are removed; every other attribute stays.
    static func restore(_ e: inout AuditEvent) throws(Invalid) {
        var kept: [Attribute] = []
        var fields: [String: AttributeValue] = [:]
        for a in e.attributes {
            if a.key.hasPrefix(prefix) { fields[a.key] = a.value } else { kept.append(a) }
        }
        func string(_ key: String) throws(Invalid) -> String? {
            guard let v = fields[key] else { return nil }
            guard case .string(let s) = v else { throw Invalid(reason: "\(key) must be a string") }
            return s
        }
        func int(_ key: String, _ range: ClosedRange<Int64>) throws(Invalid) -> Int64? {
            guard let v = fields[key] else { return nil }
            guard case .int(let i) = v, range.contains(i) else {
                throw Invalid(reason: "\(key) must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return i
        }
        let known: Set<String> = [
            Key.endTime, Key.parentSpanID, Key.spanKind, Key.traceState, Key.name, Key.service, Key.eventName,
            Key.source,
            Key.subject, Key.email, Key.groups, Key.issuer, Key.origin, Key.tokenSHA256, Key.workload, Key.method,
            Key.target, Key.route, Key.statusCode, Key.clientAddress, Key.otelStatusCode, Key.statusMessage,
        ]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw Invalid(reason: "unknown access-event attribute \(unknown)")
        }
        e.kind = .access
        e.eventName = try string(Key.eventName) ?? ""
        if let end = try int(Key.endTime, Int64.min...Int64.max) { e.endTimeUnixNano = UInt64(bitPattern: end) }
        if let p = try string(Key.parentSpanID) {
            guard let id = SpanID(hex: p), !id.isZero else {
                throw Invalid(reason: "\(Key.parentSpanID) is not 16 hex")
            }
            e.parentSpanID = id
        }
        if let k = try int(Key.spanKind, 0...5) { e.spanKind = SpanKind(rawValue: UInt8(k)) ?? .unspecified }
        e.traceState = try string(Key.traceState) ?? ""
        e.name = try string(Key.name) ?? ""
        // Left empty, the resource's service.name is the service, as for any record.
        e.service = try string(Key.service) ?? ""
        if let s = try string(Key.source) {
            guard let source = sources.first(where: { $0.value == s })?.key else {
                throw Invalid(reason: "\(Key.source) \(s) is not edge, sidecar, app or unknown")
            }
            e.source = source
        }
        if let subject = try string(Key.subject) {
            var groups: [String] = []
            if let g = fields[Key.groups] {
                guard case .array(let values) = g, let strings = Optional(values.compactMap(\.stringValue)),
                    strings.count == values.count
                else { throw Invalid(reason: "\(Key.groups) must be an array of strings") }
                groups = strings
            }
            var origin = IdentityOrigin.unknown
            if let o = try string(Key.origin) {
                guard let found = origins.first(where: { $0.value == o })?.key else {
                    throw Invalid(reason: "\(Key.origin) \(o) is not an identity origin")
                }
                origin = found
            }
            var fingerprint: [UInt8]?
            if let t = try string(Key.tokenSHA256) {
                guard let bytes = hexBytes(t) else { throw Invalid(reason: "\(Key.tokenSHA256) is not hex") }
                fingerprint = bytes
            }
            e.user = UserIdentity(
                subject: subject, email: try string(Key.email), groups: groups, issuer: try string(Key.issuer),
                origin: origin, tokenFingerprint: fingerprint)
        }
        e.workload = try string(Key.workload)
        if let status = try int(Key.statusCode, 0...Int64(UInt16.max)) {
            e.http = HTTPFacts(
                method: try string(Key.method), target: try string(Key.target), route: try string(Key.route),
                statusCode: UInt16(status), clientAddress: try string(Key.clientAddress))
        }
        if let c = try int(Key.otelStatusCode, 0...2) { e.statusCode = StatusCode(rawValue: UInt8(c)) ?? .unset }
        e.statusMessage = try string(Key.statusMessage) ?? ""
        e.attributes = kept
    }

    static func hexBytes(_ s: String) -> [UInt8]? {
        let digits = Array(s.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }
}
