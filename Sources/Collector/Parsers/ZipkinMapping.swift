// Zipkin v2 JSON spans (POST /api/v2/spans) -> AuditEvent. Envoy/Istio sidecars and older services report this
// way. Every field is kept: ids (64-bit trace ids padded on the left to 128 bits), times (microseconds ->
// nanoseconds), kind, tags (attributes), annotations (span events), both endpoints, and the debug and shared
// flags (attributes named below, documented in docs/collector.md).
import LogFormat

public enum ZipkinMapping {
    /// Attribute keys that carry the Zipkin fields OTLP has no place for.
    public enum Keys {
        public static let localIPv4 = "zipkin.local_endpoint.ipv4"
        public static let localIPv6 = "zipkin.local_endpoint.ipv6"
        public static let localPort = "zipkin.local_endpoint.port"
        public static let remoteService = "zipkin.remote_endpoint.service_name"
        public static let remoteIPv4 = "zipkin.remote_endpoint.ipv4"
        public static let remoteIPv6 = "zipkin.remote_endpoint.ipv6"
        public static let remotePort = "zipkin.remote_endpoint.port"
        public static let debug = "zipkin.debug"
        public static let shared = "zipkin.shared"
        /// A trace id sent as 16 hex digits, so the padding can be undone.
        public static let traceID64 = "zipkin.trace_id_64"
    }

    /// The instrumentation scope every Zipkin span is filed under.
    public static let scopeName = "zipkin.v2"

    public struct Rejected: Sendable, Hashable {
        /// Position of the span in the array.
        public var index: Int
        public var reason: String

        public init(index: Int, reason: String) {
            self.index = index
            self.reason = reason
        }
    }

    struct Invalid: Error {
        var reason: String
    }

    /// Parses a body (a JSON array of spans) in one pass, straight into events. A body that is not a JSON array
    /// throws; a bad span is rejected with its index and reason while the others are kept. Of a member written
    /// twice the first counts (tags keep every one); a span's reason is the first in the order of `event(_:)`'s
    /// checks, whatever order the span's members come in; strings are decoded leniently (U+FFFD for bytes that
    /// are not UTF-8). Results and errors are those of the earlier tree path (Tests/Fuzz/Harness/ZipkinTree.swift).
    public static func events(fromJSON body: [UInt8]) throws(JSONSyntaxError) -> (
        events: [AuditEvent], rejected: [Rejected]
    ) {
        var unbounded = Int.max
        return try events(fromJSON: body, valuesLeft: &unbounded)
    }

    /// `events(fromJSON:)`, taking each tag and annotation read from `valuesLeft`: when it falls below zero,
    /// reading stops and the result is partial (the caller refuses the body). A tag can be five bytes (`"":0,`)
    /// and an attribute tens of bytes, so a body's values are bounded as they are read.
    public static func events(fromJSON body: [UInt8], valuesLeft: inout Int) throws(JSONSyntaxError) -> (
        events: [AuditEvent], rejected: [Rejected]
    ) {
        var p = ByteJSONParser(bytes: body)
        p.skipSpace()
        guard case .array = try p.token(depth: 0) else {
            try ByteJSONParser.validate(body)  // a syntax error anywhere comes first
            throw JSONSyntaxError(offset: 0, message: "a Zipkin v2 body is a JSON array of spans")
        }
        var events: [AuditEvent] = []
        var rejected: [Rejected] = []
        if p.beginArray() {
            var i = 0
            repeat {
                let fields = try SpanFields(&p, depth: 1, valuesLeft: &valuesLeft)
                guard valuesLeft >= 0 else { return (events, rejected) }
                do throws(Invalid) {
                    events.append(try event(fields))
                } catch {
                    rejected.append(Rejected(index: i, reason: error.reason))
                }
                i += 1
            } while try p.nextElement()
        }
        try p.end()
        return (events, rejected)
    }

    /// More than `limit` when a body's array holds more elements than that (counted up to `limit + 1`), nil
    /// otherwise or when the body is not an array (decoding says why). A span can be three bytes (`{},`) and its
    /// event or rejection far more, so a request's spans are bounded before they are decoded. Counted only when the
    /// body is long enough to hold more than `limit`.
    public static func spansOverLimit(_ body: [UInt8], limit: Int) -> Int? {
        guard (body.count + 1) / 3 > limit else { return nil }
        var p = ByteJSONParser(bytes: body)
        p.skipSpace()
        guard case .array? = try? p.token(depth: 0), p.beginArray() else { return nil }
        var spans = 0
        repeat {
            guard (try? p.skipValue(depth: 1)) != nil else { return nil }
            spans += 1
            if spans > limit { return spans }
        } while (try? p.nextElement()) == true
        return nil
    }

    /// The text of a scalar as Zipkin reads it: a string's bytes, a number as written, a boolean's name; nil for
    /// null, arrays and objects.
    static func text(_ t: ByteJSONParser.Token, _ p: ByteJSONParser) -> ArraySlice<UInt8>? {
        switch t {
        case .string(let b): b
        case .number(let r): p.bytes[r]
        case .bool(let b): ArraySlice((b ? "true" : "false").utf8)
        default: nil
        }
    }

    static func string(_ b: ArraySlice<UInt8>) -> String { String(decoding: b, as: UTF8.self) }

    /// A number field: absent (or null), a number as written, or something else.
    enum NumberField {
        case absent
        case number(ArraySlice<UInt8>)
        case other

        init(_ t: ByteJSONParser.Token, _ p: ByteJSONParser) {
            switch t {
            case .null: self = .absent
            case .number(let r): self = .number(p.bytes[r])
            default: self = .other
            }
        }

        func value(_ what: String) throws(Invalid) -> UInt64? {
            switch self {
            case .absent: return nil
            case .number(let n):
                if (1...19).contains(n.count), let v = ByteJSONParser.digits(n) { return v }
                guard let value = UInt64(ZipkinMapping.string(n)) else {
                    throw Invalid(reason: "\(what) must be a non-negative integer, got \(ZipkinMapping.string(n))")
                }
                return value
            case .other: throw Invalid(reason: "\(what) must be a number")
            }
        }
    }

    /// One span's members as read in its single pass: scalars as written, the nested values already mapped, each
    /// with the reason it would be refused; `event(_:)` then checks them in order.
    struct SpanFields {
        var isObject = true
        var traceID: ArraySlice<UInt8>?
        var id: ArraySlice<UInt8>?
        var parentID: ArraySlice<UInt8>?
        var kind: ArraySlice<UInt8>?
        var name: ArraySlice<UInt8>?
        var timestamp = NumberField.absent
        var duration = NumberField.absent
        var tags: Result<(attributes: [Attribute], error: String?), Invalid> = .success(([], nil))
        var local: Result<Endpoint?, Invalid> = .success(nil)
        var remote: Result<Endpoint?, Invalid> = .success(nil)
        var debug: Result<Bool?, Invalid> = .success(nil)
        var shared: Result<Bool?, Invalid> = .success(nil)
        var annotations: Result<[SpanEvent], Invalid> = .success([])

        static let names = [
            "traceId", "id", "parentId", "kind", "name", "timestamp", "duration", "tags", "localEndpoint",
            "remoteEndpoint", "debug", "shared", "annotations",
        ]

        /// Reads the span at `depth` (anything else is read past and refused), taking its tags and annotations from
        /// `valuesLeft` (those past zero are read past, not kept).
        init(_ p: inout ByteJSONParser, depth: Int, valuesLeft: inout Int) throws(JSONSyntaxError) {
            let start = p.i
            guard case .object = try p.token(depth: depth) else {
                p.i = start
                try p.skipValue(depth: depth)
                isObject = false
                return
            }
            guard p.beginObject() else { return }
            var seen: UInt16 = 0
            let d = depth + 1
            repeat {
                let key = try p.memberName()
                guard let field = Self.names.firstIndex(where: { key.elementsEqual($0.utf8) }), seen & (1 << field) == 0
                else {
                    try p.skipValue(depth: d)
                    continue
                }
                seen |= 1 << field
                let vs = p.i
                switch field {
                case 0: traceID = text(try p.token(depth: d), p)
                case 1: id = text(try p.token(depth: d), p)
                case 2: parentID = text(try p.token(depth: d), p)
                case 3: kind = text(try p.token(depth: d), p)
                case 4: name = text(try p.token(depth: d), p)
                case 5: timestamp = NumberField(try p.token(depth: d), p)
                case 6: duration = NumberField(try p.token(depth: d), p)
                case 7: tags = try Self.tags(&p, depth: d, valuesLeft: &valuesLeft)
                case 8: local = try endpoint(&p, depth: d, "localEndpoint")
                case 9: remote = try endpoint(&p, depth: d, "remoteEndpoint")
                case 10: debug = try Self.flag(&p, depth: d, "debug")
                case 11: shared = try Self.flag(&p, depth: d, "shared")
                default: annotations = try Self.annotations(&p, depth: d, valuesLeft: &valuesLeft)
                }
                // A nested value the field did not take (an array where text was expected) is read past here.
                if p.i == vs { try p.skipValue(depth: d) }
            } while try p.nextMember()
        }

        /// `tags`: every member in order, each a string (or number or boolean); "error" sets the status.
        static func tags(
            _ p: inout ByteJSONParser, depth: Int, valuesLeft: inout Int
        ) throws(JSONSyntaxError) -> Result<(attributes: [Attribute], error: String?), Invalid> {
            switch try p.token(depth: depth) {
            case .null: return .success(([], nil))
            case .object: break
            default: return .failure(Invalid(reason: "tags must be an object of strings"))
            }
            var attributes: [Attribute] = []
            var error: String? = nil
            var refused: Invalid? = nil
            guard p.beginObject() else { return .success((attributes, error)) }
            attributes.reserveCapacity(16)
            repeat {
                valuesLeft -= 1
                guard valuesLeft >= 0 else {
                    _ = try p.memberName()
                    try p.skipValue(depth: depth + 1)
                    continue
                }
                let key = string(try p.memberName())
                let start = p.i
                let value = text(try p.token(depth: depth + 1), p)
                guard refused == nil else {
                    p.i = start
                    try p.skipValue(depth: depth + 1)
                    continue
                }
                guard let value else {
                    refused = Invalid(reason: "tag \(key) must be a string")
                    p.i = start
                    try p.skipValue(depth: depth + 1)
                    continue
                }
                let v = string(value)
                attributes.append(Attribute(key, .string(v)))
                if key == "error" { error = v }
            } while try p.nextMember()
            if let refused { return .failure(refused) }
            return .success((attributes, error))
        }

        static func flag(_ p: inout ByteJSONParser, depth: Int, _ what: String) throws(JSONSyntaxError) -> Result<
            Bool?, Invalid
        > {
            switch try p.token(depth: depth) {
            case .null: .success(nil)
            case .bool(let b): .success(b)
            default: .failure(Invalid(reason: "\(what) must be true or false"))
            }
        }

        /// `annotations`: each an object with a timestamp and a value, checked in order.
        static func annotations(
            _ p: inout ByteJSONParser, depth: Int, valuesLeft: inout Int
        ) throws(JSONSyntaxError) -> Result<[SpanEvent], Invalid> {
            switch try p.token(depth: depth) {
            case .null: return .success([])
            case .array: break
            default: return .failure(Invalid(reason: "annotations must be an array"))
            }
            var events: [SpanEvent] = []
            var refused: Invalid? = nil
            guard p.beginArray() else { return .success(events) }
            repeat {
                let start = p.i
                valuesLeft -= 1
                guard valuesLeft >= 0 else {
                    try p.skipValue(depth: depth + 1)
                    continue
                }
                guard refused == nil, case .object = try p.token(depth: depth + 1) else {
                    if refused == nil { refused = Invalid(reason: "an annotation must be an object") }
                    p.i = start
                    try p.skipValue(depth: depth + 1)
                    continue
                }
                var timestamp = NumberField.absent
                var value: ArraySlice<UInt8>? = nil
                var seen: UInt8 = 0
                if p.beginObject() {
                    repeat {
                        let key = try p.memberName()
                        let vs = p.i
                        if key.elementsEqual("timestamp".utf8), seen & 1 == 0 {
                            seen |= 1
                            timestamp = NumberField(try p.token(depth: depth + 2), p)
                        } else if key.elementsEqual("value".utf8), seen & 2 == 0 {
                            seen |= 2
                            value = text(try p.token(depth: depth + 2), p)
                        }
                        if p.i == vs { try p.skipValue(depth: depth + 2) }
                    } while try p.nextMember()
                }
                do throws(Invalid) {
                    guard let t = try timestamp.value("annotation timestamp"), let value else {
                        throw Invalid(reason: "an annotation needs a timestamp and a value")
                    }
                    let (ns, overflow) = t.multipliedReportingOverflow(by: 1_000)
                    guard !overflow else { throw Invalid(reason: "annotation timestamp out of range") }
                    events.append(SpanEvent(timeUnixNano: ns, name: string(value)))
                } catch {
                    refused = error
                }
            } while try p.nextElement()
            if let refused { return .failure(refused) }
            return .success(events)
        }
    }

    /// A span's fields, checked in order (the first failing check names the span's reason) and mapped.
    static func event(_ fields: SpanFields) throws(Invalid) -> AuditEvent {
        guard fields.isObject else { throw Invalid(reason: "a span must be a JSON object") }
        guard let traceText = fields.traceID, traceText.count == 16 || traceText.count == 32,
            let trace = traceText.withUnsafeBufferPointer({ TraceID(hexDigits: $0) })
        else { throw Invalid(reason: "traceId must be 16 or 32 hex digits") }
        guard !trace.isZero else { throw Invalid(reason: "traceId is all zeros") }
        guard let spanID = fields.id.flatMap(Self.spanID) else { throw Invalid(reason: "id must be 16 hex digits") }
        guard !spanID.isZero else { throw Invalid(reason: "id is all zeros") }
        var parent: SpanID?
        if let p = fields.parentID {
            guard let id = Self.spanID(p), !id.isZero else {
                throw Invalid(reason: "parentId must be 16 hex digits, not all zeros")
            }
            parent = id
        }
        guard let micros = try fields.timestamp.value("timestamp") else {
            throw Invalid(reason: "timestamp (epoch microseconds) is required for an audit record")
        }
        let duration = try fields.duration.value("duration") ?? 0
        let (start, startOverflow) = micros.multipliedReportingOverflow(by: 1_000)
        let (length, lengthOverflow) = duration.multipliedReportingOverflow(by: 1_000)
        guard !startOverflow, !lengthOverflow, start.addingReportingOverflow(length).overflow == false else {
            throw Invalid(reason: "timestamp or duration out of range")
        }

        let kind: SpanKind
        switch fields.kind.map(string) {
        case nil: kind = .unspecified
        case "CLIENT": kind = .client
        case "SERVER": kind = .server
        case "PRODUCER": kind = .producer
        case "CONSUMER": kind = .consumer
        case let other?: throw Invalid(reason: "kind must be CLIENT, SERVER, PRODUCER or CONSUMER, not \(other)")
        }

        let tagged = try fields.tags.get()
        var attributes = tagged.attributes
        let error = tagged.error
        let status = error == nil ? StatusCode.unset : .error
        var service = "unknown_service"
        var resource: [Attribute] = []
        if let local = try fields.local.get() {
            if let name = local.service {
                service = name
                resource.append(Attribute("service.name", .string(name)))
            }
            if let ip = local.ipv4 { attributes.append(Attribute(Keys.localIPv4, .string(ip))) }
            if let ip = local.ipv6 { attributes.append(Attribute(Keys.localIPv6, .string(ip))) }
            if let port = local.port { attributes.append(Attribute(Keys.localPort, .int(port))) }
        }
        if let remote = try fields.remote.get() {
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
        if let b = try fields.debug.get() { attributes.append(Attribute(Keys.debug, .bool(b))) }
        if let b = try fields.shared.get() { attributes.append(Attribute(Keys.shared, .bool(b))) }
        if traceText.count == 16 { attributes.append(Attribute(Keys.traceID64, .bool(true))) }
        let events = try fields.annotations.get()

        var e = AuditEvent(
            kind: .span, startTimeUnixNano: start, endTimeUnixNano: start + length, traceID: trace, spanID: spanID,
            parentSpanID: parent, spanKind: kind, name: fields.name.map(string) ?? "", statusCode: status,
            statusMessage: error ?? "", attributes: attributes, events: events)
        e.service = service
        e.resourceAttributes = resource
        e.scope = InstrumentationScope(name: scopeName)
        return e
    }

    static func spanID(_ text: ArraySlice<UInt8>) -> SpanID? {
        guard text.count == 16 else { return nil }
        return text.withUnsafeBufferPointer { HexCoding.word($0) }.map(SpanID.init(value:))
    }

    struct Endpoint {
        var service: String?
        var ipv4: String?
        var ipv6: String?
        var port: Int64?
    }

    /// `localEndpoint` / `remoteEndpoint` at `depth`: an object (first member of a name counts) or null.
    static func endpoint(
        _ p: inout ByteJSONParser, depth: Int, _ what: String
    ) throws(JSONSyntaxError) -> Result<Endpoint?, Invalid> {
        switch try p.token(depth: depth) {
        case .null: return .success(nil)
        case .object: break
        default: return .failure(Invalid(reason: "\(what) must be an object"))
        }
        var e = Endpoint()
        var port = NumberField.absent
        guard p.beginObject() else { return .success(e) }
        var seen: UInt8 = 0
        repeat {
            let key = try p.memberName()
            let start = p.i
            let field: UInt8? =
                key.elementsEqual("serviceName".utf8)
                ? 0
                : key.elementsEqual("ipv4".utf8)
                    ? 1
                    : key.elementsEqual("ipv6".utf8)
                        ? 2
                        : key.elementsEqual("port".utf8) ? 3 : nil
            if let field, seen & (1 << field) == 0 {
                seen |= 1 << field
                let t = try p.token(depth: depth + 1)
                switch field {
                case 0: e.service = text(t, p).map(string)
                case 1: e.ipv4 = text(t, p).map(string)
                case 2: e.ipv6 = text(t, p).map(string)
                default: port = NumberField(t, p)
                }
            }
            if p.i == start { try p.skipValue(depth: depth + 1) }
        } while try p.nextMember()
        do throws(Invalid) {
            if let port = try port.value("\(what).port") {
                guard port <= 65_535 else { throw Invalid(reason: "\(what).port must be at most 65535") }
                e.port = Int64(port)
            }
        } catch {
            return .failure(error)
        }
        return .success(e)
    }
}
