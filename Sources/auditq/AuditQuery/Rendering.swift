// Plain-text rendering of query results: a table of events, a table of a user's requests, and a trace as a
// tree with a compact waterfall. Nothing is adjusted: raw timestamps are printed as stored.
import LogFormat
import StoreQuery

public enum Rendering {
    /// One line per event: time, kind, source, service, user, what, status, duration, trace id.
    public static func table(_ records: [StoredRecord], zone: TimeZoneSpec = .utc, palette: Palette = .off) -> String {
        var rows = [["TIME", "KIND", "SOURCE", "SERVICE", "USER", "WHAT", "STATUS", "DURATION", "TRACE"]]
        var failed: Set<Int> = []
        for r in records {
            let e = r.event
            if isError(e) { failed.insert(rows.count) }
            rows.append([
                TimeExpression.format(e.startTimeUnixNano, zone: zone), "\(e.kind)", "\(e.source)", e.service,
                e.user?.subject ?? "-", what(e), status(e), duration(e.durationNanos),
                e.traceID.isZero ? "-" : e.traceID.hex,
            ])
        }
        return align(rows, highlight: failed, palette: palette)
    }

    /// One line per request a user made: its time, what it was, outcome, duration, and the trace it started.
    public static func activityTable(_ requests: [UserRequest], zone: TimeZoneSpec = .utc, palette: Palette = .off)
        -> String
    {
        var rows = [["TIME", "WHAT", "STATUS", "DURATION", "HOPS", "ERRORS", "SERVICES", "TRACE"]]
        var failed: Set<Int> = []
        for q in requests {
            let e = q.request.event
            let errors = q.trace.filter { isError($0.event) }.count
            if errors > 0 { failed.insert(rows.count) }
            var services: [String] = []
            for r in q.trace where !services.contains(r.event.service) { services.append(r.event.service) }
            let shown =
                services.prefix(4).joined(separator: ",") + (services.count > 4 ? ",+\(services.count - 4)" : "")
            rows.append([
                TimeExpression.format(e.startTimeUnixNano, zone: zone), what(e), status(e), duration(e.durationNanos),
                String(q.trace.count), String(errors), shown, e.traceID.isZero ? "-" : e.traceID.hex,
            ])
        }
        return align(rows, highlight: failed, palette: palette)
    }

    static func isError(_ e: AuditEvent) -> Bool { e.statusCode == .error || (e.http?.statusCode ?? 0) >= 500 }

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
        let a = ns.magnitude
        let s: String
        if a < 1_000 {
            s = "\(a)ns"
        } else if a < 1_000_000 {
            s = "\(a / 1_000)µs"
        } else if a < 1_000_000_000 {
            s = "\(a / 1_000_000).\(a / 100_000 % 10)ms"
        } else {
            s = "\(a / 1_000_000_000).\(a / 100_000_000 % 10)s"
        }
        return ns < 0 ? "-" + s : s
    }

    static func align(_ rows: [[String]], highlight: Set<Int> = [], palette: Palette = .off) -> String {
        guard let first = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: first.count)
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.enumerated().map { n, row in
            let line = row.enumerated().map { i, c in
                i == row.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count)
            }.joined(separator: "  ")
            if n == 0 { return palette.bold(line) }
            return highlight.contains(n) ? palette.error(line) : line
        }.joined(separator: "\n")
    }

    /// The records of one trace as a tree with a waterfall (see `TraceAnalysis`).
    public static func traceTree(
        _ records: [StoredRecord], zone: TimeZoneSpec = .utc, palette: Palette = .off, width: Int = 24
    ) -> String {
        let analysis = TraceAnalysis(records)
        var rows = [["SPAN", "STATUS", "DURATION", "START", "WATERFALL", "SPAN ID", "NOTES"]]
        var marked: Set<Int> = []
        for node in analysis.ordered {
            let e = node.record.event
            let notes = node.notes
            if !notes.isEmpty || isError(e) { marked.insert(rows.count) }
            rows.append([
                String(repeating: "  ", count: node.depth) + "\(e.service) [\(e.source)] \(what(e))", status(e),
                duration(e.durationNanos), TimeExpression.format(e.startTimeUnixNano, zone: zone),
                analysis.bar(e, width: width), e.spanID.hex, notes.joined(separator: "; "),
            ])
        }
        var out = align(rows, highlight: marked, palette: palette)
        out += "\n" + analysis.summary
        return out
    }
}

/// The shape of one trace: parent/child links by span id, and what does not fit — orphans (the parent span
/// is not in the store), duplicate copies of a span (retries store events twice; a copy with different
/// content is called out), and clock skew (a child starting before or ending after its parent by at least
/// the combined precision of the two records' times: see `timePrecisionNanos`). Nothing is corrected; the
/// notes say what was found.
public struct TraceAnalysis: Sendable {
    public struct Node: Sendable {
        public var record: StoredRecord
        public var depth: Int
        /// The parent span id names a span that is not in the trace.
        public var orphan: Bool
        /// The first stored copy of the same span, when this record is another copy.
        public var duplicateOf: RecordLocation?
        /// Whether a duplicate differs from the first copy in any field.
        public var conflicting: Bool
        /// How far the child starts before its parent, in ns: the raw difference of the stored times, set only
        /// when it is clock skew (at least the combined precision of child and parent), nil otherwise.
        public var startsBeforeParent: UInt64?
        /// How far the child ends after its parent, in ns; like `startsBeforeParent`, set only when flagged.
        public var endsAfterParent: UInt64?

        public var notes: [String] {
            var out: [String] = []
            if orphan, let p = record.event.parentSpanID { out.append("orphan: parent \(p.hex) not found") }
            if let d = duplicateOf {
                out.append(
                    (conflicting ? "conflicting copy" : "retry copy")
                        + " of \(d.nodeID.hex.prefix(8))/\(d.segmentSequence)/\(d.ordinal)")
            }
            if let s = startsBeforeParent {
                out.append("clock skew: starts \(Rendering.duration(Int64(s))) before its parent")
            }
            if let s = endsAfterParent {
                out.append("clock skew: ends \(Rendering.duration(Int64(s))) after its parent")
            }
            if record.event.durationNanos < 0 { out.append("ends before it starts") }
            return out
        }
    }

    public private(set) var ordered: [Node] = []
    public let origin: UInt64
    public let end: UInt64

    public init(_ records: [StoredRecord]) {
        let sorted = records.sorted {
            ($0.event.startTimeUnixNano, $0.location) < ($1.event.startTimeUnixNano, $1.location)
        }
        origin = sorted.map(\.event.startTimeUnixNano).min() ?? 0
        end = max(origin, sorted.map { max($0.event.endTimeUnixNano, $0.event.startTimeUnixNano) }.max() ?? 0)
        // The first stored copy of each span is the one others hang under; later copies are listed beside it.
        var primary: [SpanID: StoredRecord] = [:]
        var copies: [SpanID: [StoredRecord]] = [:]
        for r in sorted where !r.event.spanID.isZero {
            let id = r.event.spanID
            if let p = primary[id] {
                if r.location < p.location {
                    primary[id] = r
                    copies[id, default: []].append(p)
                } else {
                    copies[id, default: []].append(r)
                }
            } else {
                primary[id] = r
            }
        }
        var children: [SpanID: [StoredRecord]] = [:]
        var roots: [StoredRecord] = []
        for r in sorted where r.event.spanID.isZero || primary[r.event.spanID]?.location == r.location {
            if let parent = r.event.parentSpanID, parent != r.event.spanID, primary[parent] != nil {
                children[parent, default: []].append(r)
            } else {
                roots.append(r)
            }
        }
        var out: [Node] = []
        var visited = Set<RecordLocation>()
        func visit(_ r: StoredRecord, depth: Int, parent: AuditEvent?) {
            guard visited.insert(r.location).inserted else { return }
            let e = r.event
            var node = Node(
                record: r, depth: depth,
                orphan: parent == nil && e.parentSpanID != nil && primary[e.parentSpanID!] == nil,
                duplicateOf: nil, conflicting: false)
            if let p = parent {
                // A difference smaller than what the two records' clocks can resolve is not skew.
                let tolerance = Self.timePrecisionNanos(e) + Self.timePrecisionNanos(p)
                if e.startTimeUnixNano < p.startTimeUnixNano, p.startTimeUnixNano - e.startTimeUnixNano >= tolerance {
                    node.startsBeforeParent = p.startTimeUnixNano - e.startTimeUnixNano
                }
                if e.endTimeUnixNano > p.endTimeUnixNano, p.endTimeUnixNano >= p.startTimeUnixNano,
                    e.endTimeUnixNano - p.endTimeUnixNano >= tolerance
                {
                    node.endsAfterParent = e.endTimeUnixNano - p.endTimeUnixNano
                }
            }
            out.append(node)
            for c in copies[e.spanID] ?? [] where visited.insert(c.location).inserted {
                var copy = Node(
                    record: c, depth: depth, orphan: node.orphan, duplicateOf: r.location, conflicting: c.event != e)
                copy.startsBeforeParent = node.startsBeforeParent
                copy.endsAfterParent = node.endsAfterParent
                out.append(copy)
            }
            for c in children[e.spanID] ?? [] { visit(c, depth: depth + 1, parent: e) }
        }
        for r in roots { visit(r, depth: 0, parent: nil) }
        // Anything left (a parent cycle) is shown at the top level rather than dropped.
        for r in sorted where !visited.contains(r.location) { visit(r, depth: 0, parent: nil) }
        ordered = out
    }

    /// How finely a record's start and end times are known, in ns. Access events come from nginx (`msec` and
    /// `request_time`) or Envoy (`START_TIME` and `DURATION`), which log milliseconds, so their times are only
    /// known to ±1 ms; spans and log records carry the nanoseconds their SDK measured and count as exact.
    public static func timePrecisionNanos(_ e: AuditEvent) -> UInt64 {
        switch e.kind {
        case .access: 1_000_000
        case .span, .log: 0
        }
    }

    public var orphanCount: Int { ordered.filter(\.orphan).count }
    public var duplicateCount: Int { ordered.filter { $0.duplicateOf != nil }.count }
    public var skewCount: Int { ordered.filter { $0.startsBeforeParent != nil || $0.endsAfterParent != nil }.count }

    public var summary: String {
        "\(ordered.count) records, \(Set(ordered.map(\.record.event.service)).count) services, "
            + "\(Rendering.duration(Int64(end - origin))) from first start to last end; "
            + "\(orphanCount) orphans, \(duplicateCount) duplicate copies, \(skewCount) with clock skew"
    }

    /// A bar of `width` cells placing the event within the trace's span of time.
    public func bar(_ e: AuditEvent, width: Int) -> String {
        let total = max(1, end - origin)
        let startCell = Int((e.startTimeUnixNano.subtractingClamped(origin)) * UInt64(width) / total)
        let endTime = max(e.startTimeUnixNano, e.endTimeUnixNano)
        var endCell = Int((endTime.subtractingClamped(origin)) * UInt64(width) / total)
        endCell = min(width, max(endCell, startCell + 1))
        let a = min(startCell, width - 1)
        return String(repeating: "·", count: a) + String(repeating: "█", count: endCell - a)
            + String(repeating: "·", count: width - endCell)
    }
}
