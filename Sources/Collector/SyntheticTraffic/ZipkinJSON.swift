// Spans as Zipkin v2 JSON (what Envoy sidecars and Zipkin exporters post to /api/v2/spans), for the load
// generator's zipkin transport and the ingest benchmarks.
import Foundation
import LogFormat

public enum ZipkinJSON {
    /// A Zipkin v2 span with the event's ids, times, kind, endpoint and string tags.
    public static func span(_ e: AuditEvent) -> String {
        func quoted(_ s: String) -> String {
            let data =
                (try? JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed])) ?? Data("\"\"".utf8)
            return String(decoding: data, as: UTF8.self)
        }
        var fields = [
            "\"traceId\":\"\(e.traceID.hex)\"", "\"id\":\"\(e.spanID.hex)\"", "\"name\":\(quoted(e.name))",
            "\"timestamp\":\(e.startTimeUnixNano / 1000)",
            "\"duration\":\(max(1, (e.endTimeUnixNano &- e.startTimeUnixNano) / 1000))",
            "\"localEndpoint\":{\"serviceName\":\(quoted(e.service))}",
        ]
        if let p = e.parentSpanID, !p.isZero { fields.append("\"parentId\":\"\(p.hex)\"") }
        switch e.spanKind {
        case .server: fields.append("\"kind\":\"SERVER\"")
        case .client: fields.append("\"kind\":\"CLIENT\"")
        default: break
        }
        var tags: [String] = []
        for a in e.attributes {
            switch a.value {
            case .string(let s): tags.append("\(quoted(a.key)):\(quoted(s))")
            case .int(let i): tags.append("\(quoted(a.key)):\"\(i)\"")
            case .bool(let b): tags.append("\(quoted(a.key)):\"\(b)\"")
            default: continue
            }
        }
        fields.append("\"tags\":{\(tags.joined(separator: ","))}")
        return "{" + fields.joined(separator: ",") + "}"
    }
}
