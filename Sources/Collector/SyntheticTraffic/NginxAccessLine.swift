// An event rendered as the JSON access line nginx writes with the project's `log_format` (the inverse of
// `AccessEventMapping`'s field map), for the load generator's syslog and NDJSON traffic and the fuzz seeds.
import CollectorParsers
import JSONText
import LogFormat

public enum NginxAccessLine {
    /// The nginx `escape=json` line an edge would have logged for `event`: the inverse of the field map for
    /// time, trace context, user, HTTP facts and duration, plus the event's other string attributes. Used by
    /// the load generator and the demo to send access events as nginx does.
    public static func render(_ event: AuditEvent) -> String {
        var fields: [(String, String)] = []
        // nginx writes the line when the request ends: msec is the end, in milliseconds, as request_time is.
        let duration = UInt64(max(0, event.durationNanos))
        let endMillis = event.startTimeUnixNano / 1_000_000 + duration / 1_000_000
        fields.append(("msec", "\(endMillis / 1_000).\(pad3(endMillis % 1_000))"))
        if !event.traceID.isZero {
            fields.append(("request_id", event.traceID.hex))
            fields.append(
                (
                    "traceparent",
                    TraceParent(
                        traceID: event.traceID, parentID: event.spanID,
                        flags: UInt8(truncatingIfNeeded: event.flags | 1)
                    ).header
                ))
        }
        if let parent = event.parentSpanID, !event.traceID.isZero {
            fields.append(("http_traceparent", TraceParent(traceID: event.traceID, parentID: parent).header))
        }
        if let user = event.user {
            fields.append(("upstream_http_x_user_id", user.subject))
            if let email = user.email { fields.append(("upstream_http_x_user_email", email)) }
            if !user.groups.isEmpty {
                fields.append(("upstream_http_x_user_groups", user.groups.joined(separator: ",")))
            }
        }
        if let http = event.http {
            if let m = http.method { fields.append(("request_method", m)) }
            if let t = http.target { fields.append(("request_uri", t)) }
            if http.statusCode != 0 { fields.append(("status", String(http.statusCode))) }
            if let c = http.clientAddress { fields.append(("remote_addr", c)) }
        }
        fields.append(("request_time", "\(duration / 1_000_000_000).\(pad3(duration / 1_000_000 % 1_000))"))
        let taken = Set(fields.map(\.0))
        for a in event.attributes where !taken.contains(a.key) {
            if case .string(let s) = a.value { fields.append((a.key, s)) }
        }
        return "{" + fields.map { JSONString.quote($0.0) + ":" + JSONString.quote($0.1) }.joined(separator: ",") + "}"
    }

    static func pad3(_ v: UInt64) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, 3 - s.count)) + s
    }
}
