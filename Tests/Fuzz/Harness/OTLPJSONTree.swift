// The OTLP/JSON decoder the collector had before its one-pass scanner (Sources/Collector/Parsers/OTLPJSON.swift):
// a JSON tree, then swift-protobuf's request message (to be mapped by `OTLPMapping.events(from:)`). Kept
// unchanged as the reference the property tests and the otlp-json fuzz target compare the scanner against.
// Its rules: trace and span ids are hex (base64 accepted), enums are integers (names accepted), 64-bit
// integers are decimal strings (numbers accepted), keys are lowerCamelCase (snake_case accepted), unknown
// fields are ignored.
import CollectorParsers
import Foundation
import LogFormat
import OTLPBridge
import OTLPProto

public enum OTLPJSONTree {
    public typealias DecodeError = OTLPJSON.DecodeError

    public static func traceRequest(from body: [UInt8]) throws(DecodeError) -> OTLPTraceRequest {
        let root = try parse(body)
        var request = OTLPTraceRequest()
        for (r, rs) in try array(root, ["resourceSpans", "resource_spans"], "").enumerated() {
            let rp = "resourceSpans[\(r)]"
            var out = Opentelemetry_Proto_Trace_V1_ResourceSpans()
            if let res = member(rs, ["resource"]) { out.resource = try resource(res, rp + ".resource") }
            out.schemaURL = try string(rs, ["schemaUrl", "schema_url"], rp)
            for (s, ss) in try array(rs, ["scopeSpans", "scope_spans"], rp).enumerated() {
                let sp = rp + ".scopeSpans[\(s)]"
                var scopeSpans = Opentelemetry_Proto_Trace_V1_ScopeSpans()
                if let sc = member(ss, ["scope"]) { scopeSpans.scope = try scope(sc, sp + ".scope") }
                scopeSpans.schemaURL = try string(ss, ["schemaUrl", "schema_url"], sp)
                for (i, span) in try array(ss, ["spans"], sp).enumerated() {
                    scopeSpans.spans.append(try self.span(span, sp + ".spans[\(i)]"))
                }
                out.scopeSpans.append(scopeSpans)
            }
            request.resourceSpans.append(out)
        }
        return request
    }

    public static func logsRequest(from body: [UInt8]) throws(DecodeError) -> OTLPLogsRequest {
        let root = try parse(body)
        var request = OTLPLogsRequest()
        for (r, rl) in try array(root, ["resourceLogs", "resource_logs"], "").enumerated() {
            let rp = "resourceLogs[\(r)]"
            var out = Opentelemetry_Proto_Logs_V1_ResourceLogs()
            if let res = member(rl, ["resource"]) { out.resource = try resource(res, rp + ".resource") }
            out.schemaURL = try string(rl, ["schemaUrl", "schema_url"], rp)
            for (s, sl) in try array(rl, ["scopeLogs", "scope_logs"], rp).enumerated() {
                let sp = rp + ".scopeLogs[\(s)]"
                var scopeLogs = Opentelemetry_Proto_Logs_V1_ScopeLogs()
                if let sc = member(sl, ["scope"]) { scopeLogs.scope = try scope(sc, sp + ".scope") }
                scopeLogs.schemaURL = try string(sl, ["schemaUrl", "schema_url"], sp)
                for (i, log) in try array(sl, ["logRecords", "log_records"], sp).enumerated() {
                    scopeLogs.logRecords.append(try logRecord(log, sp + ".logRecords[\(i)]"))
                }
                out.scopeLogs.append(scopeLogs)
            }
            request.resourceLogs.append(out)
        }
        return request
    }

    // MARK: Messages

    static func span(_ v: JSONValue, _ p: String) throws(DecodeError) -> OTLPSpan {
        var s = OTLPSpan()
        s.traceID = try id(v, ["traceId", "trace_id"], p)
        s.spanID = try id(v, ["spanId", "span_id"], p)
        s.parentSpanID = try id(v, ["parentSpanId", "parent_span_id"], p)
        s.traceState = try string(v, ["traceState", "trace_state"], p)
        s.flags = UInt32(truncatingIfNeeded: try integer(v, ["flags"], p, max: UInt64(UInt32.max)))
        s.name = try string(v, ["name"], p)
        s.kind = OTLPSpan.SpanKind(rawValue: Int(try enumValue(v, ["kind"], p, names: spanKindNames))) ?? .unspecified
        s.startTimeUnixNano = try integer(v, ["startTimeUnixNano", "start_time_unix_nano"], p)
        s.endTimeUnixNano = try integer(v, ["endTimeUnixNano", "end_time_unix_nano"], p)
        s.attributes = try attributes(v, p)
        s.droppedAttributesCount = try count(v, ["droppedAttributesCount", "dropped_attributes_count"], p)
        for (i, e) in try array(v, ["events"], p).enumerated() {
            let ep = p + ".events[\(i)]"
            var event = OTLPSpan.Event()
            event.timeUnixNano = try integer(e, ["timeUnixNano", "time_unix_nano"], ep)
            event.name = try string(e, ["name"], ep)
            event.attributes = try attributes(e, ep)
            event.droppedAttributesCount = try count(e, ["droppedAttributesCount", "dropped_attributes_count"], ep)
            s.events.append(event)
        }
        s.droppedEventsCount = try count(v, ["droppedEventsCount", "dropped_events_count"], p)
        for (i, l) in try array(v, ["links"], p).enumerated() {
            let lp = p + ".links[\(i)]"
            var link = OTLPSpan.Link()
            link.traceID = try id(l, ["traceId", "trace_id"], lp)
            link.spanID = try id(l, ["spanId", "span_id"], lp)
            link.traceState = try string(l, ["traceState", "trace_state"], lp)
            link.attributes = try attributes(l, lp)
            link.droppedAttributesCount = try count(l, ["droppedAttributesCount", "dropped_attributes_count"], lp)
            link.flags = UInt32(truncatingIfNeeded: try integer(l, ["flags"], lp, max: UInt64(UInt32.max)))
            s.links.append(link)
        }
        s.droppedLinksCount = try count(v, ["droppedLinksCount", "dropped_links_count"], p)
        if let status = member(v, ["status"]) {
            s.status.message = try string(status, ["message"], p + ".status")
            s.status.code =
                Opentelemetry_Proto_Trace_V1_Status.StatusCode(
                    rawValue: Int(try enumValue(status, ["code"], p + ".status", names: statusNames))) ?? .unset
        }
        return s
    }

    static func logRecord(_ v: JSONValue, _ p: String) throws(DecodeError) -> Opentelemetry_Proto_Logs_V1_LogRecord {
        var l = Opentelemetry_Proto_Logs_V1_LogRecord()
        l.timeUnixNano = try integer(v, ["timeUnixNano", "time_unix_nano"], p)
        l.observedTimeUnixNano = try integer(v, ["observedTimeUnixNano", "observed_time_unix_nano"], p)
        l.severityNumber =
            Opentelemetry_Proto_Logs_V1_SeverityNumber(
                rawValue: Int(try enumValue(v, ["severityNumber", "severity_number"], p, names: [:]))) ?? .unspecified
        l.severityText = try string(v, ["severityText", "severity_text"], p)
        if let body = member(v, ["body"]) { l.body = try anyValue(body, p + ".body") }
        l.attributes = try attributes(v, p)
        l.droppedAttributesCount = try count(v, ["droppedAttributesCount", "dropped_attributes_count"], p)
        l.flags = UInt32(truncatingIfNeeded: try integer(v, ["flags"], p, max: UInt64(UInt32.max)))
        l.traceID = try id(v, ["traceId", "trace_id"], p)
        l.spanID = try id(v, ["spanId", "span_id"], p)
        l.eventName = try string(v, ["eventName", "event_name"], p)
        return l
    }

    static func resource(_ v: JSONValue, _ p: String) throws(DecodeError) -> Opentelemetry_Proto_Resource_V1_Resource {
        var r = Opentelemetry_Proto_Resource_V1_Resource()
        r.attributes = try attributes(v, p)
        r.droppedAttributesCount = try count(v, ["droppedAttributesCount", "dropped_attributes_count"], p)
        return r
    }

    static func scope(_ v: JSONValue, _ p: String) throws(DecodeError)
        -> Opentelemetry_Proto_Common_V1_InstrumentationScope
    {
        var s = Opentelemetry_Proto_Common_V1_InstrumentationScope()
        s.name = try string(v, ["name"], p)
        s.version = try string(v, ["version"], p)
        s.attributes = try attributes(v, p)
        s.droppedAttributesCount = try count(v, ["droppedAttributesCount", "dropped_attributes_count"], p)
        return s
    }

    static func attributes(_ v: JSONValue, _ p: String) throws(DecodeError) -> [OTLPKeyValue] {
        try keyValues(array(v, ["attributes"], p), p + ".attributes")
    }

    static func keyValues(_ list: [JSONValue], _ p: String) throws(DecodeError) -> [OTLPKeyValue] {
        var out: [OTLPKeyValue] = []
        out.reserveCapacity(list.count)
        for (i, kv) in list.enumerated() {
            var o = OTLPKeyValue()
            o.key = try string(kv, ["key"], p + "[\(i)]")
            if let value = member(kv, ["value"]) { o.value = try anyValue(value, p + "[\(i)].value") }
            out.append(o)
        }
        return out
    }

    static func anyValue(_ v: JSONValue, _ p: String, depth: Int = 0) throws(DecodeError) -> OTLPAnyValue {
        guard depth < 64 else { throw DecodeError(path: p, message: "values nested deeper than 64 levels") }
        guard case .object(let members) = v else {
            throw DecodeError(path: p, message: "an AnyValue must be an object")
        }
        var o = OTLPAnyValue()
        for (key, value) in members {
            switch key {
            case "stringValue", "string_value":
                guard case .string(let b) = value else {
                    throw DecodeError(path: p, message: "stringValue must be a string")
                }
                o.stringValue = String(decoding: b, as: UTF8.self)
            case "boolValue", "bool_value":
                guard case .bool(let b) = value else {
                    throw DecodeError(path: p, message: "boolValue must be true or false")
                }
                o.boolValue = b
            case "intValue", "int_value":
                o.intValue = try signed(value, p + ".intValue")
            case "doubleValue", "double_value":
                o.doubleValue = try double(value, p + ".doubleValue")
            case "bytesValue", "bytes_value":
                guard case .string(let b) = value, let data = Data(base64Encoded: Data(b)) else {
                    throw DecodeError(path: p, message: "bytesValue must be base64")
                }
                o.bytesValue = data
            case "arrayValue", "array_value":
                var a = Opentelemetry_Proto_Common_V1_ArrayValue()
                for (i, item) in try array(value, ["values"], p + ".arrayValue").enumerated() {
                    a.values.append(try anyValue(item, p + ".arrayValue.values[\(i)]", depth: depth + 1))
                }
                o.arrayValue = a
            case "kvlistValue", "kvlist_value":
                var l = Opentelemetry_Proto_Common_V1_KeyValueList()
                l.values = try keyValues(array(value, ["values"], p + ".kvlistValue"), p + ".kvlistValue.values")
                o.kvlistValue = l
            default: continue  // unknown fields are ignored
            }
        }
        return o
    }

    // MARK: Scalars

    static func parse(_ body: [UInt8]) throws(DecodeError) -> JSONValue {
        do { return try ByteJSONParser.parse(body) } catch {
            throw DecodeError(path: "", message: "malformed JSON: \(error)")
        }
    }

    static func member(_ v: JSONValue, _ keys: [String]) -> JSONValue? {
        guard case .object(let members) = v else { return nil }
        for (k, value) in members where keys.contains(k) {
            if value == .null { return nil }
            return value
        }
        return nil
    }

    static func array(_ v: JSONValue, _ keys: [String], _ p: String) throws(DecodeError) -> [JSONValue] {
        guard case .object = v else { throw DecodeError(path: p, message: "expected an object") }
        guard let m = member(v, keys) else { return [] }
        guard case .array(let items) = m else {
            throw DecodeError(path: join(p, keys[0]), message: "expected an array")
        }
        return items
    }

    static func string(_ v: JSONValue, _ keys: [String], _ p: String) throws(DecodeError) -> String {
        guard let m = member(v, keys) else { return "" }
        guard case .string(let b) = m else { throw DecodeError(path: join(p, keys[0]), message: "expected a string") }
        return String(decoding: b, as: UTF8.self)
    }

    /// Hex (either case) or, leniently, base64; other text is kept as its bytes so the id check names it.
    static func id(_ v: JSONValue, _ keys: [String], _ p: String) throws(DecodeError) -> Data {
        let text = try string(v, keys, p)
        if text.isEmpty { return Data() }
        if text.utf8.count == 32 || text.utf8.count == 16, let bytes = HexCoding.decode(text) { return Data(bytes) }
        if let data = Data(base64Encoded: text) { return data }
        return Data(text.utf8)
    }

    static func integer(_ v: JSONValue, _ keys: [String], _ p: String, max: UInt64 = .max) throws(DecodeError) -> UInt64
    {
        guard let m = member(v, keys) else { return 0 }
        let text: String
        switch m {
        case .number(let n): text = n
        case .string(let b): text = String(decoding: b, as: UTF8.self)
        default: throw DecodeError(path: join(p, keys[0]), message: "expected an integer (number or decimal string)")
        }
        guard let value = UInt64(text), value <= max else {
            throw DecodeError(
                path: join(p, keys[0]), message: "\(text.debugDescription) is not an unsigned integer up to \(max)")
        }
        return value
    }

    static func count(_ v: JSONValue, _ keys: [String], _ p: String) throws(DecodeError) -> UInt32 {
        UInt32(try integer(v, keys, p, max: UInt64(UInt32.max)))
    }

    static func signed(_ v: JSONValue, _ p: String) throws(DecodeError) -> Int64 {
        let text: String
        switch v {
        case .number(let n): text = n
        case .string(let b): text = String(decoding: b, as: UTF8.self)
        default: throw DecodeError(path: p, message: "expected an integer (number or decimal string)")
        }
        guard let value = Int64(text) else {
            throw DecodeError(path: p, message: "\(text.debugDescription) is not a 64-bit integer")
        }
        return value
    }

    static func double(_ v: JSONValue, _ p: String) throws(DecodeError) -> Double {
        switch v {
        case .number(let n):
            if let d = Double(n) { return d }
        case .string(let b):
            switch String(decoding: b, as: UTF8.self) {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            case let s: if let d = Double(s) { return d }
            }
        default: break
        }
        throw DecodeError(path: p, message: "expected a number")
    }

    static let spanKindNames: [String: Int64] = [
        "SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
        "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5,
    ]
    static let statusNames: [String: Int64] = ["STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2]

    /// OTLP/JSON enums are integers; names are accepted too. Unknown values pass through for the mapping to
    /// reject with a reason.
    static func enumValue(_ v: JSONValue, _ keys: [String], _ p: String, names: [String: Int64]) throws(DecodeError)
        -> Int64
    {
        guard let m = member(v, keys) else { return 0 }
        switch m {
        case .number(let n):
            if let i = Int64(n), (Int64(Int32.min)...Int64(Int32.max)).contains(i) { return i }
        case .string(let b):
            let s = String(decoding: b, as: UTF8.self)
            if let i = names[s] ?? Int64(s) { return i }
        default: break
        }
        throw DecodeError(path: join(p, keys[0]), message: "expected an enum number")
    }

    static func join(_ p: String, _ key: String) -> String { p.isEmpty ? key : p + "." + key }
}
