// The Zipkin v2 JSON decoder the collector had before its one-pass scanner (Sources/Collector/Parsers/
// ZipkinMapping.swift): a JSON tree, then the mapping. Kept unchanged as the reference the property tests and the
// zipkin fuzz target compare the scanner against.
import CollectorParsers
import LogFormat

public enum ZipkinTree {
    public typealias Keys = ZipkinMapping.Keys
    public typealias Rejected = ZipkinMapping.Rejected
    static let scopeName = ZipkinMapping.scopeName

    struct Invalid: Error {
        var reason: String
    }

    struct Endpoint {
        var service: String?
        var ipv4: String?
        var ipv6: String?
        var port: Int64?
    }

    /// Parses a body (a JSON array of spans). A body that is not a JSON array throws; a bad span is rejected
    /// with its index and reason while the others are kept.
    public static func events(fromJSON body: [UInt8]) throws(JSONSyntaxError) -> (
        events: [AuditEvent], rejected: [Rejected]
    ) {
        guard case .array(let items) = try ByteJSONParser.parse(body) else {
            throw JSONSyntaxError(offset: 0, message: "a Zipkin v2 body is a JSON array of spans")
        }
        var events: [AuditEvent] = []
        var rejected: [Rejected] = []
        events.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            do throws(Invalid) {
                events.append(try event(from: item))
            } catch {
                rejected.append(Rejected(index: i, reason: error.reason))
            }
        }
        return (events, rejected)
    }

    static func text(_ v: JSONValue?) -> String? {
        switch v {
        case .string(let b)?: String(decoding: b, as: UTF8.self)
        case .number(let n)?: n
        case .bool(let b)?: b ? "true" : "false"
        default: nil
        }
    }

    static func number(_ v: JSONValue?, _ what: String) throws(Invalid) -> UInt64? {
        switch v {
        case nil, .null?: return nil
        case .number(let n)?:
            guard let value = UInt64(n) else {
                throw Invalid(reason: "\(what) must be a non-negative integer, got \(n)")
            }
            return value
        default: throw Invalid(reason: "\(what) must be a number")
        }
    }

    static func event(from item: JSONValue) throws(Invalid) -> AuditEvent {
        guard case .object(let members) = item else { throw Invalid(reason: "a span must be a JSON object") }
        var fields: [String: JSONValue] = [:]
        for (k, v) in members where fields[k] == nil { fields[k] = v }

        guard let traceText = text(fields["traceId"]), traceText.utf8.count == 16 || traceText.utf8.count == 32,
            let trace = TraceID(hex: traceText)
        else { throw Invalid(reason: "traceId must be 16 or 32 hex digits") }
        guard !trace.isZero else { throw Invalid(reason: "traceId is all zeros") }
        guard let idText = text(fields["id"]), let spanID = SpanID(hex: idText) else {
            throw Invalid(reason: "id must be 16 hex digits")
        }
        guard !spanID.isZero else { throw Invalid(reason: "id is all zeros") }
        var parent: SpanID?
        if let p = text(fields["parentId"]) {
            guard let id = SpanID(hex: p), !id.isZero else {
                throw Invalid(reason: "parentId must be 16 hex digits, not all zeros")
            }
            parent = id
        }
        guard let micros = try number(fields["timestamp"], "timestamp") else {
            throw Invalid(reason: "timestamp (epoch microseconds) is required for an audit record")
        }
        let duration = try number(fields["duration"], "duration") ?? 0
        let (start, startOverflow) = micros.multipliedReportingOverflow(by: 1_000)
        let (length, lengthOverflow) = duration.multipliedReportingOverflow(by: 1_000)
        guard !startOverflow, !lengthOverflow, start.addingReportingOverflow(length).overflow == false else {
            throw Invalid(reason: "timestamp or duration out of range")
        }

        let kind: SpanKind
        switch text(fields["kind"]) {
        case nil: kind = .unspecified
        case "CLIENT": kind = .client
        case "SERVER": kind = .server
        case "PRODUCER": kind = .producer
        case "CONSUMER": kind = .consumer
        case let other?: throw Invalid(reason: "kind must be CLIENT, SERVER, PRODUCER or CONSUMER, not \(other)")
        }

        var attributes: [Attribute] = []
        var status = StatusCode.unset
        var statusMessage = ""
        switch fields["tags"] {
        case nil, .null?: break
        case .object(let tags)?:
            for (key, value) in tags {
                guard let v = text(value) else { throw Invalid(reason: "tag \(key) must be a string") }
                attributes.append(Attribute(key, .string(v)))
                if key == "error" {
                    status = .error
                    statusMessage = v
                }
            }
        default: throw Invalid(reason: "tags must be an object of strings")
        }

        var service = "unknown_service"
        var resource: [Attribute] = []
        if let local = try endpoint(fields["localEndpoint"], "localEndpoint") {
            if let name = local.service {
                service = name
                resource.append(Attribute("service.name", .string(name)))
            }
            if let ip = local.ipv4 { attributes.append(Attribute(Keys.localIPv4, .string(ip))) }
            if let ip = local.ipv6 { attributes.append(Attribute(Keys.localIPv6, .string(ip))) }
            if let port = local.port { attributes.append(Attribute(Keys.localPort, .int(port))) }
        }
        if let remote = try endpoint(fields["remoteEndpoint"], "remoteEndpoint") {
            if let name = remote.service {
                attributes.append(Attribute(Keys.remoteService, .string(name)))
                if !attributes.contains(where: { $0.key == "peer.service" }) {
                    attributes.append(Attribute("peer.service", .string(name)))
                }
            }
            if let ip = remote.ipv4 { attributes.append(Attribute(Keys.remoteIPv4, .string(ip))) }
            if let ip = remote.ipv6 { attributes.append(Attribute(Keys.remoteIPv6, .string(ip))) }
            if let port = remote.port { attributes.append(Attribute(Keys.remotePort, .int(port))) }
        }
        for flag in [("debug", Keys.debug), ("shared", Keys.shared)] {
            switch fields[flag.0] {
            case nil, .null?: break
            case .bool(let b)?: attributes.append(Attribute(flag.1, .bool(b)))
            default: throw Invalid(reason: "\(flag.0) must be true or false")
            }
        }
        if traceText.utf8.count == 16 { attributes.append(Attribute(Keys.traceID64, .bool(true))) }

        var events: [SpanEvent] = []
        switch fields["annotations"] {
        case nil, .null?: break
        case .array(let list)?:
            for a in list {
                guard case .object(let m) = a else { throw Invalid(reason: "an annotation must be an object") }
                let af = Dictionary(m, uniquingKeysWith: { first, _ in first })
                guard let t = try number(af["timestamp"], "annotation timestamp"), let value = text(af["value"]) else {
                    throw Invalid(reason: "an annotation needs a timestamp and a value")
                }
                let (ns, overflow) = t.multipliedReportingOverflow(by: 1_000)
                guard !overflow else { throw Invalid(reason: "annotation timestamp out of range") }
                events.append(SpanEvent(timeUnixNano: ns, name: value))
            }
        default: throw Invalid(reason: "annotations must be an array")
        }

        var e = AuditEvent(
            kind: .span, startTimeUnixNano: start, endTimeUnixNano: start + length, traceID: trace, spanID: spanID,
            parentSpanID: parent, spanKind: kind, name: text(fields["name"]) ?? "", statusCode: status,
            statusMessage: statusMessage, attributes: attributes, events: events)
        e.service = service
        e.resourceAttributes = resource
        e.scope = InstrumentationScope(name: scopeName)
        return e
    }

    static func endpoint(_ v: JSONValue?, _ what: String) throws(Invalid) -> Endpoint? {
        switch v {
        case nil, .null?: return nil
        case .object(let m)?:
            let f = Dictionary(m, uniquingKeysWith: { first, _ in first })
            var e = Endpoint(service: text(f["serviceName"]), ipv4: text(f["ipv4"]), ipv6: text(f["ipv6"]))
            if let p = try number(f["port"], "\(what).port") {
                guard p <= 65_535 else { throw Invalid(reason: "\(what).port must be at most 65535") }
                e.port = Int64(p)
            }
            return e
        default: throw Invalid(reason: "\(what) must be an object")
        }
    }
}
