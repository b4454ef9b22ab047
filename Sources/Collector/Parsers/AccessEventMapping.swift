// Access events from the edge (nginx `escape=json` log lines) and the mesh (Istio/Envoy JSON access logs)
// become AuditEvents of kind `access`. The field maps are documented in docs/access-events.md. Every
// field of the line is kept as an attribute; strings with invalid UTF-8 (nginx passes bytes >= 0x80 raw)
// are kept as bytes, and repaired text is used only for the first-class fields.
import LogFormat
import OTLPBridge

public struct AccessEventOptions: Sendable, Hashable {
    /// Fields an edge sets after it verified the caller, in order of preference.
    public var userFields = ["remote_user", "upstream_http_x_user_id", "http_x_user_id", "http_x_user", "user_id"]
    public var emailFields = ["upstream_http_x_user_email", "http_x_user_email", "user_email"]
    public var groupFields = ["upstream_http_x_user_groups", "http_x_user_groups", "user_groups"]
    /// Service name of nginx lines without a `service` field.
    public var edgeService = "edge-nginx"
    /// Service name of Istio lines without a `service` field.
    public var meshService = "istio-proxy"
    public init() {}
}

public enum AccessEventMapping {
    public struct LineError: Error, Sendable, Hashable, CustomStringConvertible {
        /// 1-based line number within the request body.
        public var line: Int
        public var reason: String
        public var description: String { "line \(line): \(reason)" }
    }

    /// Parses an NDJSON body: each non-empty line is one event. Bad lines are reported, good ones kept. Lines
    /// are read in place (`LineScanner`), a line the fast path leaves aside by the general scanner. A body whose
    /// events hold more than `maxValues` attributes and nested values (`ValueCount`) is refused at the line that
    /// goes over: a line is bounded by `maxLineBytes`, but a body of lines of two-byte array elements became
    /// fifteen times its size in events.
    public static func events(
        fromNDJSON body: [UInt8], options: AccessEventOptions = AccessEventOptions(), maxLineBytes: Int = 1 << 20,
        maxValues: Int = .max
    ) throws(RequestLimitExceeded) -> (events: [AuditEvent], errors: [LineError]) {
        var events: [AuditEvent] = []
        var errors: [LineError] = []
        var scanner = LineScanner()
        var valuesLeft = maxValues
        body.withUnsafeBufferPointer { all in
            var newlines = 1
            for c in all where c == 0x0A { newlines += 1 }
            events.reserveCapacity(newlines)
            var lineNumber = 0
            var start = 0
            while start <= all.count {
                var end = start
                while end < all.count, all[end] != 0x0A { end += 1 }
                lineNumber += 1
                defer { start = end + 1 }
                var last = end
                if last > start, all[last - 1] == 0x0D { last -= 1 }
                let line = UnsafeBufferPointer(rebasing: all[start..<last])
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                guard line.count <= maxLineBytes else {
                    errors.append(
                        LineError(
                            line: lineNumber,
                            reason: "line of \(line.count) bytes exceeds the \(maxLineBytes)-byte limit"))
                    continue
                }
                do throws(Refusal) {
                    if let e = try scanner.event(line, options: options) {
                        events.append(e)
                    } else {
                        events.append(try event(generalLine: Array(line), options: options))
                    }
                } catch let reason {
                    errors.append(LineError(line: lineNumber, reason: reason.message))
                    continue
                }
                valuesLeft -= ValueCount.of(events[events.count - 1].attributes)
                if valuesLeft < 0 { return }
            }
        }
        if valuesLeft < 0 { throw RequestLimitExceeded(values: maxValues) }
        return (events, errors)
    }

    /// How many lines an NDJSON body holds that are not blank, when that is more than `limit`; nil otherwise. A
    /// line can be two bytes and its event several hundred, so a request's lines are bounded before they are
    /// decoded. Counted only when the body is long enough to hold more than `limit` lines.
    public static func linesOverLimit(_ body: [UInt8], limit: Int) -> Int? {
        guard (body.count + 1) / 2 > limit else { return nil }
        // Blank as `events(fromNDJSON:)` judges it: spaces and tabs only, once one CR before the newline is dropped.
        var lines = 0
        var blank = true
        var blankThenCR = false
        for c in body {
            switch c {
            case 0x0A:
                if !blank && !blankThenCR { lines += 1 }
                blank = true
                blankThenCR = false
            case 0x0D:
                blankThenCR = blank
                blank = false
            case 0x20, 0x09:
                blankThenCR = false
            default:
                blank = false
                blankThenCR = false
            }
        }
        if !blank && !blankThenCR { lines += 1 }
        return lines > limit ? lines : nil
    }

    public struct Refusal: Error, Sendable, Hashable {
        public var message: String
    }

    /// The fields of an access line the mapping reads, by their names in nginx and Envoy/Istio formats.
    enum Field: Int, CaseIterable {
        case msec, timeISO8601, startTime, timestamp, requestTime, duration, requestID, xRequestID, traceparent
        case httpTraceparent, traceID, service, requestMethod, method, requestURI, path, uri, args, status
        case responseCode, remoteAddr, downstreamRemoteAddress, xForwardedFor, upstreamResponseTime, upstreamCluster

        var name: String {
            switch self {
            case .msec: "msec"
            case .timeISO8601: "time_iso8601"
            case .startTime: "start_time"
            case .timestamp: "timestamp"
            case .requestTime: "request_time"
            case .duration: "duration"
            case .requestID: "request_id"
            case .xRequestID: "x_request_id"
            case .traceparent: "traceparent"
            case .httpTraceparent: "http_traceparent"
            case .traceID: "trace_id"
            case .service: "service"
            case .requestMethod: "request_method"
            case .method: "method"
            case .requestURI: "request_uri"
            case .path: "path"
            case .uri: "uri"
            case .args: "args"
            case .status: "status"
            case .responseCode: "response_code"
            case .remoteAddr: "remote_addr"
            case .downstreamRemoteAddress: "downstream_remote_address"
            case .xForwardedFor: "x_forwarded_for"
            case .upstreamResponseTime: "upstream_response_time"
            case .upstreamCluster: "upstream_cluster"
            }
        }

        static let byName: [String: Field] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.name, $0) })
    }

    /// A line's members as attributes, read in one pass, with where the first occurrence of each known field is
    /// (and, for a number, its text as written: "0.0050" must not become "0.005").
    struct ScannedLine {
        enum Known {
            case absent
            case attribute(Int)
            case number(String)
        }

        var attributes: [Attribute] = []
        var known = [Known](repeating: .absent, count: Field.allCases.count)

        mutating func add(_ key: String, _ value: ByteJSONParser.ScannedValue) {
            let attribute: AttributeValue
            var number: String?
            switch value {
            case .string(let b):
                attribute = String(validating: b, as: UTF8.self).map(AttributeValue.string) ?? .bytes(Array(b))
            case .number(let n):
                attribute = AccessEventMapping.attributeValue(.number(n))
                number = n
            case .bool(let b): attribute = .bool(b)
            case .null: attribute = .empty
            case .nested(let v): attribute = AccessEventMapping.attributeValue(v)
            }
            if let field = Field.byName[key], case .absent = known[field.rawValue] {
                known[field.rawValue] = number.map(Known.number) ?? .attribute(attributes.count)
            }
            attributes.append(Attribute(key, attribute))
        }

        func has(_ field: Field) -> Bool {
            if case .absent = known[field.rawValue] { return false }
            return true
        }

        /// The text of a field; nil when absent, empty, "-" (nginx and Envoy's "no value"), or not a scalar;
        /// bytes that are not UTF-8 repaired.
        func text(_ field: Field) -> String? {
            let s: String
            switch known[field.rawValue] {
            case .absent: return nil
            case .number(let n): return n
            case .attribute(let i):
                switch attributes[i].value {
                case .string(let v): s = v
                case .bytes(let b): s = String(decoding: b, as: UTF8.self)
                case .bool(let b): return b ? "true" : "false"
                default: return nil
                }
            }
            return s.isEmpty || s == "-" ? nil : s
        }
    }

    /// One access-log line (a JSON object) as an event: read in place by `LineScanner`, or, when it has what
    /// the fast path leaves aside (escapes, nested values, errors), by the general scanner.
    public static func event(fromLine line: [UInt8], options: AccessEventOptions = AccessEventOptions()) throws(Refusal)
        -> AuditEvent
    {
        try event(fromLine: line[...], options: options)
    }

    /// The same for a line inside larger bytes (a syslog message's body): only a line the fast path leaves aside
    /// is copied, for the general scanner.
    public static func event(fromLine line: ArraySlice<UInt8>, options: AccessEventOptions = AccessEventOptions())
        throws(Refusal) -> AuditEvent
    {
        var scanner = LineScanner()
        let fast = try line.withUnsafeBufferPointer { b throws(Refusal) in try scanner.event(b, options: options) }
        if let fast { return fast }
        return try event(generalLine: Array(line), options: options)
    }

    /// One access-log line (a JSON object) as an event, in one pass: each member becomes an attribute as it is
    /// read, and the fields the mapping needs are found by where they landed. Takes every line; the reference
    /// of `LineScanner`, which gives the same event or leaves the line to this.
    package static func event(generalLine line: [UInt8], options: AccessEventOptions = AccessEventOptions())
        throws(Refusal)
        -> AuditEvent
    {
        var fields = ScannedLine()
        fields.attributes.reserveCapacity(32)
        let isObject: Bool
        do { isObject = try ByteJSONParser.scanObject(line) { fields.add($0, $1) } } catch {
            throw Refusal(message: "not JSON: \(error)")
        }
        guard isObject else {
            do { _ = try ByteJSONParser.parse(line) } catch { throw Refusal(message: "not JSON: \(error)") }
            throw Refusal(message: "a line must be a JSON object")
        }
        return try event(from: fields, options: options)
    }

    static func event(from fields: ScannedLine, options: AccessEventOptions) throws(Refusal) -> AuditEvent {
        try event(text: fields.text, has: fields.has, attributes: fields.attributes, options: options)
    }

    /// The event of a line's members (`attributes`, in order) given how to read a field's text (as
    /// `ScannedLine.text`) and whether it is present: one mapping for both scanners.
    static func event(
        text: (Field) -> String?, has: (Field) -> Bool, attributes: [Attribute], options: AccessEventOptions
    ) throws(Refusal) -> AuditEvent {
        let istio = has(.startTime) && (has(.responseCode) || has(.upstreamCluster))
        // Time. nginx's msec and time_iso8601 are when the line was written, at the end of the request, so the
        // request started request_time earlier; Envoy's start_time is the start.
        var start: UInt64
        var loggedAtEnd = true
        if let msec = text(.msec), let ns = decimalNanos(msec, unit: 1_000_000_000) {
            start = ns
        } else if let iso = text(.timeISO8601), let ns = UnixTime.parseInstant(iso) {
            start = ns
        } else if let iso = text(.startTime) ?? text(.timestamp), let ns = UnixTime.parseInstant(iso) {
            start = ns
            loggedAtEnd = false
        } else {
            throw Refusal(message: "no readable time: give msec, time_iso8601 or start_time (ISO 8601 with an offset)")
        }
        var duration: UInt64 = 0
        if let seconds = text(.requestTime), let ns = decimalNanos(seconds, unit: 1_000_000_000) {
            duration = ns
            if loggedAtEnd { start -= min(start, ns) }
        } else if let ms = text(.duration), let ns = decimalNanos(ms, unit: 1_000_000) {
            duration = ns
        }

        // Trace: what the edge forwarded, else what the client sent, else a trace-id field, else request_id.
        let requestID = text(.requestID) ?? text(.xRequestID)
        let forwarded = text(.traceparent).flatMap(TraceParent.init)
        let incoming = text(.httpTraceparent).flatMap(TraceParent.init)
        var traceID = TraceID.zero
        var spanID = SpanID.zero
        var parent: SpanID? = nil
        var flags: UInt32 = 0
        if let forwarded {
            traceID = forwarded.traceID
            spanID = forwarded.parentID
            flags = UInt32(forwarded.flags)
            if let incoming, incoming.traceID == forwarded.traceID, incoming.parentID != forwarded.parentID {
                parent = incoming.parentID
            }
        } else if let incoming {
            traceID = incoming.traceID
            parent = incoming.parentID
            flags = UInt32(incoming.flags)
        } else if let raw = text(.traceID), raw.utf8.count == 32 || raw.utf8.count == 16, let t = TraceID(hex: raw),
            !t.isZero
        {
            // Envoy's %TRACE_ID%: 32 hex digits, or 16 under a 64-bit (Zipkin B3) tracer, padded on the left.
            traceID = t
        } else if let r = requestID, r.utf8.count == 32, let t = TraceID(hex: r), !t.isZero {
            traceID = t
        }
        if spanID.isZero {
            // A deterministic id, so a retried line yields the same event (and deduplicates): FNV-1a of the
            // request id, else of the keys in order and the start's low byte.
            var h = fnvBasis
            if let requestID {
                h = fnv1a(requestID.utf8, h)
            } else {
                for a in attributes { h = fnv1a(a.key.utf8, h) }
                h = fnv1a(CollectionOfOne(UInt8(start & 0xff)), h)
            }
            spanID = SpanID(value: h | 1)
        }

        var event = AuditEvent(
            kind: .access, startTimeUnixNano: start, endTimeUnixNano: start &+ duration, traceID: traceID,
            spanID: spanID, parentSpanID: parent, flags: flags, spanKind: .server)
        // The audit fields (source, user, HTTP facts, workload) are left to the normalising stage, which reads
        // them from these same fields (`deriveAuditFields`); the record's own name and status are set here.
        event.service = text(.service) ?? (istio ? options.meshService : options.edgeService)
        let fieldsRead = EdgeFields(text)
        event.name = requestName(method: fieldsRead.method, target: fieldsRead.target)
        if fieldsRead.status >= 500 { event.statusCode = .error }
        event.attributes = attributes
        // nginx lists one upstream time per attempt (", " between retries, " : " between internal redirects).
        if let list = text(.upstreamResponseTime), let (attempts, seconds) = upstreamTimes(list), attempts > 1 {
            event.attributes.append(Attribute("nginx.upstream.attempts", .int(Int64(attempts))))
            event.attributes.append(Attribute("nginx.upstream.response_time_total", .double(seconds)))
        }
        return event
    }

    /// "METHOD path" (the target up to its query), either alone, or "access": as
    /// `[method, target.split(separator: "?").first ?? target].compactMap { $0 }.joined(separator: " ")` would
    /// say it, by Characters, with one String built.
    static func requestName(method: String?, target: String?) -> String {
        guard let target else { return method ?? "access" }
        // An ASCII target is read as bytes: its Characters are its bytes but for "\r\n", which holds no "?".
        // Walking it by Characters (grapheme breaking per step) was a third of building each access event.
        var bytes = target
        let ascii = bytes.withUTF8 { t -> String? in
            guard t.allSatisfy({ $0 < 0x80 }) else { return nil }
            let question = UInt8(ascii: "?")
            var start = 0
            while start < t.count, t[start] == question { start += 1 }
            var end = t.count
            if start == t.count {
                start = 0
            } else {
                end = t[start...].firstIndex(of: question) ?? t.count
            }
            let path = UnsafeBufferPointer(rebasing: t[start..<end])
            guard var method else { return path.isEmpty ? "access" : String(decoding: path, as: UTF8.self) }
            return method.withUTF8 { m in
                String(unsafeUninitializedCapacity: m.count + 1 + path.count) { out in
                    var i = out.initialize(fromContentsOf: m)
                    out[i] = UInt8(ascii: " ")
                    i += 1
                    i += UnsafeMutableBufferPointer(rebasing: out[i...]).initialize(fromContentsOf: path)
                    return i
                }
            }
        }
        return ascii ?? requestNameByCharacters(method: method, target: target)
    }

    /// `requestName` by Characters, for a target that is not ASCII.
    static func requestNameByCharacters(method: String?, target: String) -> String {
        // The first non-empty piece between "?"s, or the whole target when there is none.
        var start = target.startIndex
        while start < target.endIndex, target[start] == "?" { start = target.index(after: start) }
        let path: Substring
        if start == target.endIndex {
            path = target[...]
        } else {
            path = target[start..<(target[start...].firstIndex(of: "?") ?? target.endIndex)]
        }
        guard let method else { return path.isEmpty ? "access" : String(path) }
        var name = method
        name.reserveCapacity(method.utf8.count + 1 + path.utf8.count)
        name += " "
        name += path
        return name
    }

    /// The HTTP facts of an access line, read by field (`text` as `ScannedLine.text`).
    struct EdgeFields {
        var method: String?
        var target: String?
        var status: UInt16
        var client: String?

        init(_ text: (Field) -> String?) {
            method = text(.requestMethod) ?? text(.method)
            target = text(.requestURI) ?? text(.path) ?? text(.uri).map { u in text(.args).map { u + "?" + $0 } ?? u }
            status = (text(.status) ?? text(.responseCode)).flatMap { UInt16($0) } ?? 0
            client = text(.remoteAddr) ?? text(.downstreamRemoteAddress) ?? text(.xForwardedFor)
        }
    }

    /// The keys `deriveAuditFields` reads, each given a slot: made once per set of options (the normaliser
    /// keeps one), so deriving an event's fields looks each attribute key up once and builds nothing. A class,
    /// so that the closures that read it hold one reference: as a struct each copy of it retained its seven
    /// arrays and dictionaries, and the optimiser made one per event.
    public final class FieldKeys: Sendable {
        let slotOf: [String: Int]
        /// `slotOf` by bytes, when every key in it is ASCII; nil when one is not.
        let asciiSlots: ByteKeyTable?
        let users: [Int]
        let emails: [Int]
        let groups: [Int]
        let peers: [Int]
        /// Per `Field`, its slot.
        let fields: [Int]

        public init(_ options: AccessEventOptions) {
            var slotOf: [String: Int] = [:]
            func slot(_ key: String) -> Int {
                if let s = slotOf[key] { return s }
                slotOf[key] = slotOf.count
                return slotOf.count - 1
            }
            users = options.userFields.map(slot)
            emails = options.emailFields.map(slot)
            groups = options.groupFields.map(slot)
            peers = AccessEventMapping.peerFields.map(slot)
            fields = Field.allCases.map { slot($0.name) }
            self.slotOf = slotOf
            if slotOf.keys.allSatisfy({ $0.utf8.allSatisfy { $0 < 0x80 } }) {
                asciiSlots = ByteKeyTable(slotOf.mapValues { UInt64($0) })
            } else {
                asciiSlots = nil
            }
        }

        /// The slot of `key`, as `slotOf[key]` finds it, without hashing the key through `Hasher` (a SipHash per
        /// attribute of every line was the look-up's cost). Two ASCII strings are equal `String`s exactly when
        /// their bytes are, so a key found by its bytes is the same key, and an ASCII key not found is in no
        /// slot; a key that is not ASCII may still equal one of them as a `String` (U+212A KELVIN SIGN is
        /// canonically "K"), so it is asked of the dictionary. `table` is the caller's copy of `asciiSlots`.
        func slot(of key: String, _ table: inout ByteKeyTable?) -> Int? {
            guard table != nil else { return slotOf[key] }
            var bytes = key
            let (found, ascii) = bytes.withUTF8 { b -> (UInt64?, Bool) in
                if let v = table!.value(UnsafeRawBufferPointer(b)) { return (v, true) }
                return (nil, b.allSatisfy { $0 < 0x80 })
            }
            if let found { return Int(found) }
            return ascii ? nil : slotOf[key]
        }
    }

    /// The audit fields of a raw access event, from the line's fields as its attributes keep them (the first of
    /// a repeated key, as the decoder reads them): source (edge, or sidecar for Envoy/Istio lines), the user
    /// the edge verified, the HTTP facts, and a SPIFFE workload from the TLS peer fields.
    public static func deriveAuditFields(_ event: inout AuditEvent, options: AccessEventOptions) {
        deriveAuditFields(&event, keys: FieldKeys(options))
    }

    /// As `deriveAuditFields(_:options:)` with the options' keys made once. Called by the normalising stage
    /// only, once per event.
    public static func deriveAuditFields(_ event: inout AuditEvent, keys: FieldKeys) {
        var notes = KeyNotes(enabled: false)
        deriveAuditFields(&event, keys: keys, notes: &notes)
    }

    /// The same, with the caller's notes on the keys of the events before, kept from event to event: a key with
    /// the bytes of the one at its position before has its slot without a look-up (`KeyNotes`).
    package static func deriveAuditFields(_ event: inout AuditEvent, keys: FieldKeys, notes: inout KeyNotes) {
        let attributes = event.attributes
        let slotCount = keys.slotOf.count
        // The caller's copy of the byte table, made at the first key not in the notes rather than for every event.
        var table: ByteKeyTable? = nil
        var tableCopied = false
        func slot(_ key: String, at position: Int) -> Int? {
            if let known = notes.slot(of: key, at: position) { return known }
            if !tableCopied {
                table = keys.asciiSlots
                tableCopied = true
            }
            let s = keys.slot(of: key, &table)
            notes.noteSlot(s, of: key, at: position)
            return s
        }
        withUnsafeTemporaryAllocation(of: Int.self, capacity: slotCount) { first in
            // The index of the first attribute of each slot's key, or -1.
            first.initialize(repeating: -1)
            var missing = slotCount
            for i in attributes.indices {
                guard let s = slot(attributes[i].key, at: i), first[s] < 0 else { continue }
                first[s] = i
                missing -= 1
                if missing == 0 { break }
            }
            /// As `ScannedLine.text` reads a field: nil when absent, empty, "-", or not a scalar; bytes repaired.
            func text(_ slot: Int) -> String? {
                let i = first[slot]
                guard i >= 0 else { return nil }
                let s: String
                switch attributes[i].value {
                case .string(let v): s = v
                case .bytes(let b): s = String(decoding: b, as: UTF8.self)
                case .int(let i): return String(i)
                case .double(let d): return String(d)
                case .bool(let b): return b ? "true" : "false"
                default: return nil
                }
                return s.isEmpty || s == "-" ? nil : s
            }
            func firstText(_ slots: [Int]) -> String? {
                for s in slots { if let t = text(s) { return t } }
                return nil
            }
            func has(_ f: Field) -> Bool { first[keys.fields[f.rawValue]] >= 0 }
            let istio = has(.startTime) && (has(.responseCode) || has(.upstreamCluster))
            event.source = istio ? .sidecar : .edge
            if let subject = firstText(keys.users) {
                var groups: [String] = []
                if let g = firstText(keys.groups) { groups = Self.groups(g) }
                event.user = UserIdentity(
                    subject: subject, email: firstText(keys.emails), groups: groups, origin: .edge)
            }
            let facts = EdgeFields { text(keys.fields[$0.rawValue]) }
            event.http = HTTPFacts(
                method: facts.method, target: facts.target, statusCode: facts.status, clientAddress: facts.client)
            var workload: String?
            for s in keys.peers {
                guard let t = text(s) else { continue }
                if t.contains("spiffe://") {
                    workload =
                        t.range(of: "spiffe://").map {
                            String(t[$0.lowerBound...].prefix { $0 != "," && $0 != " " })
                        } ?? t
                    break
                }
            }
            event.workload = workload
        }
    }

    /// A comma-separated group list, each trimmed of spaces, empty ones dropped: as
    /// `list.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }`, read as bytes when
    /// the list is ASCII (its Characters are then its bytes), each group made from its bytes.
    static func groups(_ list: String) -> [String] {
        var text = list
        return text.withUTF8 { u -> [String] in
            guard u.allSatisfy({ $0 < 0x80 }) else {
                return list.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
            }
            var out: [String] = []
            var start = 0
            while start <= u.count {
                var end = start
                while end < u.count, u[end] != UInt8(ascii: ",") { end += 1 }
                var s = start
                var e = end
                while s < e, u[s] == 0x20 { s += 1 }
                while e > s, u[e - 1] == 0x20 { e -= 1 }
                if s < e { out.append(String(decoding: UnsafeBufferPointer(rebasing: u[s..<e]), as: UTF8.self)) }
                start = end + 1
            }
            return out
        }
    }

    /// The TLS peer fields that may name a SPIFFE workload, most specific first.
    static let peerFields = ["ssl_client_s_dn", "ssl_client_san", "downstream_peer_uri_san", "upstream_peer_uri_san"]

    /// The number of attempts in an nginx upstream list and the sum of their times (`-` counts as an attempt
    /// without a time); nil when the list is not one.
    static func upstreamTimes(_ list: String) -> (Int, Double)? {
        // An ASCII list is read in place (its Characters are its bytes); any other by Characters below.
        var copy = list
        let ascii = copy.withUTF8 { b -> (read: Bool, times: (Int, Double)?) in
            guard b.allSatisfy({ $0 < 0x80 }) else { return (false, nil) }
            var attempts = 0
            var total = 0.0
            var start = 0
            for i in 0...b.count where i == b.count || b[i] == UInt8(ascii: ":") || b[i] == UInt8(ascii: ",") {
                var s = start
                var e = i
                start = i + 1
                while s < e, b[s] == 0x20 { s += 1 }
                while e > s, b[e - 1] == 0x20 { e -= 1 }
                attempts += 1
                if e - s == 1, b[s] == UInt8(ascii: "-") { continue }
                guard let v = Double(String(decoding: UnsafeBufferPointer(rebasing: b[s..<e]), as: UTF8.self)), v >= 0
                else { return (true, nil) }
                total += v
            }
            return (true, (attempts, total))
        }
        if ascii.read { return ascii.times }
        var attempts = 0
        var total = 0.0
        for group in list.split(separator: ":", omittingEmptySubsequences: false) {
            for entry in group.split(separator: ",", omittingEmptySubsequences: false) {
                let t = entry.trimming(" ")
                attempts += 1
                if t == "-" { continue }
                guard let v = Double(t), v >= 0 else { return nil }
                total += v
            }
        }
        return (attempts, total)
    }

    /// A JSON value as an attribute value: strings that are not valid UTF-8 are kept as bytes.
    static func attributeValue(_ v: JSONValue) -> AttributeValue {
        switch v {
        case .string(let b):
            if let s = String(validating: b, as: UTF8.self) { return .string(s) }
            return .bytes(b)
        case .number(let n):
            if let i = Int64(n) { return .int(i) }
            if let d = Double(n) { return .double(d) }
            return .string(n)
        case .bool(let b): return .bool(b)
        case .null: return .empty
        case .array(let values): return .array(values.map(attributeValue))
        case .object(let members): return .keyValueList(members.map { Attribute($0.0, attributeValue($0.1)) })
        }
    }

    /// "1700000000.123" in `unit`-nanosecond units (seconds: 1e9, milliseconds: 1e6) without floating point.
    /// ASCII digits only, read in place: `Character.isNumber` also let through digits of other scripts and
    /// numerals such as "½", whose missing `wholeNumberValue` trapped on the force-unwrap that followed.
    static func decimalNanos(_ s: String, unit: UInt64) -> UInt64? {
        var text = s
        return text.withUTF8 { b -> UInt64? in
            func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
            let dot = b.firstIndex(of: UInt8(ascii: ".")) ?? b.count
            guard dot > 0 else { return nil }
            var whole: UInt64 = 0
            for c in b[0..<dot] {
                guard isDigit(c) else { return nil }
                let (times10, o1) = whole.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
                guard !o1, !o2 else { return nil }
                whole = sum
            }
            var nanos = whole.multipliedReportingOverflow(by: unit)
            guard !nanos.overflow else { return nil }
            if dot < b.count {
                let digits = b[(dot + 1)...]
                guard !digits.isEmpty, digits.allSatisfy(isDigit) else { return nil }
                var fraction: UInt64 = 0
                var scale = unit
                for c in digits.prefix(18) {
                    scale /= 10
                    fraction += UInt64(c - UInt8(ascii: "0")) * scale
                    if scale == 0 { break }
                }
                nanos.partialValue += fraction
            }
            return nanos.partialValue
        }
    }

    static let fnvBasis: UInt64 = 0xcbf2_9ce4_8422_2325

    static func fnv1a(_ bytes: [UInt8]) -> UInt64 { fnv1a(bytes, fnvBasis) }

    /// FNV-1a continued over `bytes` from `h`.
    static func fnv1a(_ bytes: some Sequence<UInt8>, _ start: UInt64) -> UInt64 {
        var h = start
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }
}
