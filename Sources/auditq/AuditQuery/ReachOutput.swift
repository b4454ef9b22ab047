// Output of `auditq access` (who reached a target). Field names are stable: fields are only ever added at the end.
//
// NDJSON, one line per user, by subject
//   {"user":"<subject>","email":"<email>"|null,"service_account":<bool>,"requests":<n>,"denied":<n>,"failed":<n>,
//    "first_time":"<RFC 3339, UTC>","first_time_unix_nano":"<n>","last_time":"…","last_time_unix_nano":"<n>",
//    "example_traces":["<32 hex>", …]}
// CSV: a header row, then the same fields (example traces joined by spaces).
import JSONText
import LogFormat
import StoreQuery

public enum ReachOutput {
    public static let csvColumns = [
        "user", "email", "service_account", "requests", "denied", "failed", "first_time", "first_time_unix_nano",
        "last_time", "last_time_unix_nano", "example_traces",
    ]

    public static func table(_ users: [Reacher], zone: TimeZoneSpec = .utc, palette: Palette = .off) -> String {
        var rows = [["USER", "KIND", "REQUESTS", "DENIED", "FAILED", "FIRST", "LAST", "EXAMPLE TRACES"]]
        var flagged: Set<Int> = []
        for u in users {
            if u.denied > 0 || u.failed > 0 { flagged.insert(rows.count) }
            rows.append([
                u.user, u.serviceAccount ? "service" : "user", String(u.requests), String(u.denied), String(u.failed),
                TimeExpression.format(u.firstTime, zone: zone), TimeExpression.format(u.lastTime, zone: zone),
                u.exampleTraces.isEmpty ? "-" : u.exampleTraces.map(\.hex).joined(separator: " "),
            ])
        }
        return Rendering.align(rows, highlight: flagged, palette: palette)
    }

    public static func jsonLine(_ u: Reacher) -> String {
        "{\"user\":" + JSONString.quote(u.user) + ",\"email\":" + (u.email.map(JSONString.quote) ?? "null")
            + ",\"service_account\":\(u.serviceAccount),\"requests\":\(u.requests),\"denied\":\(u.denied)"
            + ",\"failed\":\(u.failed),\"first_time\":\"\(TimeExpression.format(u.firstTime))\""
            + ",\"first_time_unix_nano\":\"\(u.firstTime)\",\"last_time\":\"\(TimeExpression.format(u.lastTime))\""
            + ",\"last_time_unix_nano\":\"\(u.lastTime)\",\"example_traces\":["
            + u.exampleTraces.map { "\"\($0.hex)\"" }.joined(separator: ",") + "]}"
    }

    public static func csv(_ users: [Reacher]) -> String {
        var out = csvColumns.joined(separator: ",") + "\r\n"
        for u in users {
            let cells = [
                u.user, u.email ?? "", String(u.serviceAccount), String(u.requests), String(u.denied),
                String(u.failed), TimeExpression.format(u.firstTime), String(u.firstTime),
                TimeExpression.format(u.lastTime), String(u.lastTime),
                u.exampleTraces.map(\.hex).joined(separator: " "),
            ]
            out += cells.map(CSVOutput.field).joined(separator: ",") + "\r\n"
        }
        return out
    }
}
