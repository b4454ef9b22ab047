// `--format otlp`: the spans found, as one OTLP/JSON ExportTraceServiceRequest that any OpenTelemetry backend
// (or our collector's /v1/traces) can ingest again. The message comes from OTLPBridge's mapping, so ids, times,
// attributes, events, links, resource and scope are the ones received; the JSON follows the OTLP rules, not
// plain proto3 JSON: hex trace and span ids, integer enums, 64-bit integers as decimal strings, camelCase keys.
// Access events and log records follow as a second line, one OTLP/JSON ExportLogsServiceRequest (for /v1/logs):
// log records as received, access events as log records by the AccessLogRecord convention, which the
// collector's OTLP logs receiver takes back as access events (docs/otlp-export.md).
import Foundation
import JSONText
import LogFormat
import OTLPBridge
import OTLPProto

public enum OTLPExport {
    /// One line of OTLP/JSON for the span events among `events`.
    public static func json(_ events: [AuditEvent]) -> String {
        var w = OTLPJSONWriter()
        w.request(OTLPMapping.traceRequest(from: events))
        return w.out
    }

    /// One line of OTLP/JSON for the access and log events among `events`; nil when there are none.
    public static func logsJSON(_ events: [AuditEvent]) -> String? {
        guard events.contains(where: { $0.kind != .span }) else { return nil }
        var w = OTLPJSONWriter()
        w.request(OTLPMapping.logsRequest(from: events))
        return w.out
    }
}

struct OTLPJSONWriter {
    var out = ""

    mutating func raw(_ s: String) { out += s }
    mutating func key(_ k: String) { out += "\"" + k + "\":" }
    mutating func string(_ s: String) { out += JSONString.quote(s) }
    mutating func hex(_ d: Data) { out += "\"" + HexCoding.encode(d) + "\"" }
    mutating func decimalString(_ v: UInt64) { out += "\"\(v)\"" }

    mutating func list<T>(_ items: [T], _ body: (inout OTLPJSONWriter, T) -> Void) {
        out += "["
        for (i, item) in items.enumerated() {
            if i > 0 { out += "," }
            body(&self, item)
        }
        out += "]"
    }

    mutating func request(_ r: Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest) {
        raw("{")
        key("resourceSpans")
        list(r.resourceSpans) { w, rs in
            w.raw("{")
            w.key("resource")
            w.resource(rs.resource)
            w.raw(",")
            w.key("scopeSpans")
            w.list(rs.scopeSpans) { w, ss in
                w.raw("{")
                w.key("scope")
                w.scope(ss.scope)
                w.raw(",")
                w.key("spans")
                w.list(ss.spans) { w, s in w.span(s) }
                w.schemaURL(ss.schemaURL)
                w.raw("}")
            }
            w.schemaURL(rs.schemaURL)
            w.raw("}")
        }
        raw("}")
    }

    /// `,"schemaUrl":…` when there is one.
    mutating func schemaURL(_ url: String) {
        guard !url.isEmpty else { return }
        raw(",")
        key("schemaUrl")
        string(url)
    }

    mutating func resource(_ r: Opentelemetry_Proto_Resource_V1_Resource) {
        raw("{")
        key("attributes")
        attributes(r.attributes)
        if r.droppedAttributesCount != 0 { raw(",\"droppedAttributesCount\":\(r.droppedAttributesCount)") }
        raw("}")
    }

    mutating func scope(_ s: Opentelemetry_Proto_Common_V1_InstrumentationScope) {
        raw("{")
        key("name")
        string(s.name)
        if !s.version.isEmpty {
            raw(",")
            key("version")
            string(s.version)
        }
        if !s.attributes.isEmpty {
            raw(",")
            key("attributes")
            attributes(s.attributes)
        }
        if s.droppedAttributesCount != 0 { raw(",\"droppedAttributesCount\":\(s.droppedAttributesCount)") }
        raw("}")
    }

    mutating func request(_ r: Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest) {
        raw("{")
        key("resourceLogs")
        list(r.resourceLogs) { w, rl in
            w.raw("{")
            w.key("resource")
            w.resource(rl.resource)
            w.raw(",")
            w.key("scopeLogs")
            w.list(rl.scopeLogs) { w, sl in
                w.raw("{")
                w.key("scope")
                w.scope(sl.scope)
                w.raw(",")
                w.key("logRecords")
                w.list(sl.logRecords) { w, l in w.logRecord(l) }
                w.schemaURL(sl.schemaURL)
                w.raw("}")
            }
            w.schemaURL(rl.schemaURL)
            w.raw("}")
        }
        raw("}")
    }

    mutating func logRecord(_ l: Opentelemetry_Proto_Logs_V1_LogRecord) {
        raw("{\"timeUnixNano\":")
        decimalString(l.timeUnixNano)
        raw(",\"observedTimeUnixNano\":")
        decimalString(l.observedTimeUnixNano)
        if l.severityNumber.rawValue != 0 { raw(",\"severityNumber\":\(l.severityNumber.rawValue)") }
        if !l.severityText.isEmpty {
            raw(",\"severityText\":")
            string(l.severityText)
        }
        if l.hasBody {
            raw(",\"body\":")
            value(l.body)
        }
        raw(",\"attributes\":")
        attributes(l.attributes)
        if l.droppedAttributesCount != 0 { raw(",\"droppedAttributesCount\":\(l.droppedAttributesCount)") }
        if l.flags != 0 { raw(",\"flags\":\(l.flags)") }
        if !l.traceID.isEmpty {
            raw(",\"traceId\":")
            hex(l.traceID)
        }
        if !l.spanID.isEmpty {
            raw(",\"spanId\":")
            hex(l.spanID)
        }
        if !l.eventName.isEmpty {
            raw(",\"eventName\":")
            string(l.eventName)
        }
        raw("}")
    }

    mutating func span(_ s: Opentelemetry_Proto_Trace_V1_Span) {
        raw("{\"traceId\":")
        hex(s.traceID)
        raw(",\"spanId\":")
        hex(s.spanID)
        if !s.parentSpanID.isEmpty {
            raw(",\"parentSpanId\":")
            hex(s.parentSpanID)
        }
        if !s.traceState.isEmpty {
            raw(",\"traceState\":")
            string(s.traceState)
        }
        raw(",\"flags\":\(s.flags),\"name\":")
        string(s.name)
        raw(",\"kind\":\(s.kind.rawValue),\"startTimeUnixNano\":")
        decimalString(s.startTimeUnixNano)
        raw(",\"endTimeUnixNano\":")
        decimalString(s.endTimeUnixNano)
        raw(",\"attributes\":")
        attributes(s.attributes)
        if s.droppedAttributesCount != 0 { raw(",\"droppedAttributesCount\":\(s.droppedAttributesCount)") }
        if !s.events.isEmpty {
            raw(",\"events\":")
            list(s.events) { w, e in
                w.raw("{\"timeUnixNano\":")
                w.decimalString(e.timeUnixNano)
                w.raw(",\"name\":")
                w.string(e.name)
                w.raw(",\"attributes\":")
                w.attributes(e.attributes)
                if e.droppedAttributesCount != 0 { w.raw(",\"droppedAttributesCount\":\(e.droppedAttributesCount)") }
                w.raw("}")
            }
        }
        if s.droppedEventsCount != 0 { raw(",\"droppedEventsCount\":\(s.droppedEventsCount)") }
        if !s.links.isEmpty {
            raw(",\"links\":")
            list(s.links) { w, l in
                w.raw("{\"traceId\":")
                w.hex(l.traceID)
                w.raw(",\"spanId\":")
                w.hex(l.spanID)
                if !l.traceState.isEmpty {
                    w.raw(",\"traceState\":")
                    w.string(l.traceState)
                }
                w.raw(",\"attributes\":")
                w.attributes(l.attributes)
                if l.droppedAttributesCount != 0 { w.raw(",\"droppedAttributesCount\":\(l.droppedAttributesCount)") }
                w.raw(",\"flags\":\(l.flags)}")
            }
        }
        if s.droppedLinksCount != 0 { raw(",\"droppedLinksCount\":\(s.droppedLinksCount)") }
        if s.hasStatus {
            raw(",\"status\":{")
            if !s.status.message.isEmpty {
                key("message")
                string(s.status.message)
                raw(",")
            }
            raw("\"code\":\(s.status.code.rawValue)}")
        }
        raw("}")
    }

    mutating func attributes(_ kvs: [Opentelemetry_Proto_Common_V1_KeyValue]) {
        list(kvs) { w, kv in
            w.raw("{\"key\":")
            w.string(kv.key)
            if kv.hasValue {
                w.raw(",\"value\":")
                w.value(kv.value)
            }
            w.raw("}")
        }
    }

    mutating func value(_ v: Opentelemetry_Proto_Common_V1_AnyValue) {
        switch v.value {
        case nil: raw("{}")
        case .stringValue(let s):
            raw("{\"stringValue\":")
            string(s)
            raw("}")
        case .boolValue(let b): raw("{\"boolValue\":\(b)}")
        case .intValue(let i): raw("{\"intValue\":\"\(i)\"}")
        case .doubleValue(let d):
            if d.isNaN {
                raw("{\"doubleValue\":\"NaN\"}")
            } else if d.isInfinite {
                raw("{\"doubleValue\":\"\(d < 0 ? "-Infinity" : "Infinity")\"}")
            } else {
                raw("{\"doubleValue\":\(d)}")
            }
        case .bytesValue(let b): raw("{\"bytesValue\":\"\(b.base64EncodedString())\"}")
        case .arrayValue(let a):
            raw("{\"arrayValue\":{\"values\":")
            list(a.values) { w, item in w.value(item) }
            raw("}}")
        case .kvlistValue(let l):
            raw("{\"kvlistValue\":{\"values\":")
            attributes(l.values)
            raw("}}")
        }
    }
}
