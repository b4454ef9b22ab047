// Plain-text rendering of query results: a table of events and an indented trace tree.
import LogFormat

public enum Rendering {
    /// One line per event: time, kind, service, user, name/target, status, duration, trace id.
    public static func table(_ records: [StoredRecord]) -> String {
        var rows = [["TIME (UTC)", "KIND", "SOURCE", "SERVICE", "USER", "WHAT", "STATUS", "DURATION", "TRACE"]]
        for r in records {
            let e = r.event
            rows.append([
                TimeExpression.format(e.startTimeUnixNano), "\(e.kind)", "\(e.source)", e.service,
                e.user?.subject ?? "-", what(e), status(e), duration(e.durationNanos), e.traceID.isZero ? "-" : e.traceID.hex,
            ])
        }
        return align(rows)
    }

    static func what(_ e: AuditEvent) -> String {
        if let http = e.http, let method = http.method { return "\(method) \(http.target ?? http.route ?? "")" }
        return e.name
    }

    static func status(_ e: AuditEvent) -> String {
        if let code = e.http?.statusCode, code != 0 { return String(code) }
        switch e.statusCode {
        case .unset: return "-"
        case .ok: return "ok"
        case .error: return "error"
        }
    }

    public static func duration(_ ns: Int64) -> String {
        let a = abs(ns)
        let s: String
        if a < 1_000 { s = "\(a)ns" } else if a < 1_000_000 { s = "\(a / 1_000)µs" } else if a < 1_000_000_000 {
            s = "\(a / 1_000_000).\(a / 100_000 % 10)ms"
        } else { s = "\(a / 1_000_000_000).\(a / 100_000_000 % 10)s" }
        return ns < 0 ? "-" + s : s
    }

    static func align(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: first.count)
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { row in
            row.enumerated().map { i, c in i == row.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }
                .joined(separator: "  ")
        }.joined(separator: "\n")
    }

    /// The records of one trace as a tree by parent span id; records whose parent is absent are shown as
    /// roots marked "(orphan)" unless they are true roots.
    public static func traceTree(_ records: [StoredRecord]) -> String {
        let bySpan = Dictionary(records.map { ($0.event.spanID, $0) }, uniquingKeysWith: { a, _ in a })
        var children: [SpanID: [StoredRecord]] = [:]
        var roots: [StoredRecord] = []
        for r in records {
            if let parent = r.event.parentSpanID, bySpan[parent] != nil, parent != r.event.spanID {
                children[parent, default: []].append(r)
            } else {
                roots.append(r)
            }
        }
        let origin = records.map(\.event.startTimeUnixNano).min() ?? 0
        var lines: [String] = []
        var visited = Set<SpanID>()
        func walk(_ r: StoredRecord, depth: Int) {
            let e = r.event
            guard visited.insert(e.spanID).inserted || depth == 0 else { return }
            let orphan = depth == 0 && e.parentSpanID != nil ? " (orphan: parent \(e.parentSpanID!.hex) not found)" : ""
            let offset = e.startTimeUnixNano >= origin ? "+" + duration(Int64(e.startTimeUnixNano - origin)) : "?"
            lines.append(
                String(repeating: "  ", count: depth) + "\(e.service) [\(e.source)] \(what(e)) \(status(e)) "
                    + "\(duration(e.durationNanos)) at \(offset) span \(e.spanID.hex)\(orphan)")
            for c in (children[e.spanID] ?? []).sorted(by: { $0.event.startTimeUnixNano < $1.event.startTimeUnixNano }) {
                walk(c, depth: depth + 1)
            }
        }
        for r in roots.sorted(by: { $0.event.startTimeUnixNano < $1.event.startTimeUnixNano }) { walk(r, depth: 0) }
        return lines.joined(separator: "\n")
    }
}
