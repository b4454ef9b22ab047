// Output of `auditq completeness`. Field names are stable: fields are only ever added at the end.
//
// NDJSON, one object per line, each with a "type":
//   {"type":"summary","from":…,"to":…,"complete":bool,"ledgers":n,"segments":n,"open_segments":n,
//    "covered_from":…,"covered_to":…}                                 (times as text and *_unix_nano strings)
//   {"type":"receiver"|"sender","name":…,"received":n,"accepted":n,"rejected":n,"dropped":n,
//    "rejected_by_reason":{"<reason>":n,…}}                            (sorted by name)
//   {"type":"gap","node":…,"from":…,"to":…,"kind":"unknown"|"stopped","detail":…}
//   {"type":"segment","node":…,"segment":n,"kind":"no_ledger"|"bad_ledger"|"losses","detail":…}
// CSV: the receiver and sender rows: type,name,received,accepted,rejected,dropped,rejected_by_reason
// ("reason=n;…").
import JSONText
import LogFormat
import StoreQuery

public enum CompletenessOutput {
    static func reasons(_ c: LedgerCounts, separator: String = ", ", equals: String = " ") -> String {
        c.rejected.sorted { $0.key < $1.key }.map { "\($0.key)\(equals)\($0.value)" }.joined(separator: separator)
    }

    public static func table(_ r: CompletenessReport, zone: TimeZoneSpec = .utc) -> String {
        var out = ""
        for (title, counts) in [("RECEIVER", r.receivers), ("SENDER", r.senders)] where !counts.isEmpty {
            var rows = [[title, "RECEIVED", "ACCEPTED", "REJECTED", "DROPPED", "REJECTED BY REASON"]]
            var total = LedgerCounts()
            for (name, c) in counts.sorted(by: { $0.key < $1.key }) {
                total.add(c)
                rows.append([
                    name, String(c.received), String(c.accepted), String(c.rejectedTotal), String(c.dropped),
                    reasons(c),
                ])
            }
            if title == "RECEIVER" {
                rows.append([
                    "(all)", String(total.received), String(total.accepted), String(total.rejectedTotal),
                    String(total.dropped), reasons(total),
                ])
            }
            out += Rendering.align(rows) + "\n\n"
        }
        out += summary(r, zone: zone)
        for g in r.gaps {
            out +=
                "\ngap \(g.kind.rawValue): node \(g.node) \(TimeExpression.format(g.from, zone: zone)) … "
                + "\(TimeExpression.format(g.to, zone: zone)): \(g.detail)"
        }
        for n in r.notes {
            out += "\nsegment \(n.node)/\(n.sequence) \(n.kind.rawValue): \(n.detail)"
        }
        return out
    }

    static func summary(_ r: CompletenessReport, zone: TimeZoneSpec) -> String {
        var s = r.isComplete ? "complete: " : "NOT complete: "
        s += "\(r.ledgers.count) ledger\(r.ledgers.count == 1 ? "" : "s") over \(r.segments) sealed segment"
        s += r.segments == 1 ? "" : "s"
        if let c = r.covered {
            s += ", covering \(TimeExpression.format(c.from, zone: zone)) … \(TimeExpression.format(c.to, zone: zone))"
        }
        let unknown = r.gaps.filter { $0.kind == .unknown }.count
        let stopped = r.gaps.count - unknown
        let noLedger = r.notes.filter { $0.kind == .noLedger }.count
        let bad = r.notes.filter { $0.kind == .badLedger }.count
        var issues: [String] = []
        if unknown > 0 { issues.append("\(unknown) unknown period\(unknown == 1 ? "" : "s")") }
        if stopped > 0 { issues.append("\(stopped) stop\(stopped == 1 ? "" : "s")") }
        if noLedger > 0 { issues.append("\(noLedger) segment\(noLedger == 1 ? "" : "s") without a ledger") }
        if bad > 0 { issues.append("\(bad) bad ledger\(bad == 1 ? "" : "s")") }
        if r.openSegments > 0 {
            issues.append("\(r.openSegments) open segment\(r.openSegments == 1 ? "" : "s") still counting")
        }
        if !issues.isEmpty { s += "; " + issues.joined(separator: ", ") }
        return s
    }

    static func time(_ key: String, _ ns: UInt64, zone: TimeZoneSpec) -> String {
        JSONString.quote(key) + ":" + JSONString.quote(TimeExpression.format(ns, zone: zone)) + ","
            + JSONString.quote(key + "_unix_nano") + ":" + JSONString.quote(String(ns))
    }

    public static func jsonLines(_ r: CompletenessReport, zone: TimeZoneSpec = .utc) -> [String] {
        var lines: [String] = []
        var s = "{\"type\":\"summary\""
        if let range = r.range {
            s += "," + time("from", range.lowerBound, zone: zone) + "," + time("to", range.upperBound, zone: zone)
        }
        s += ",\"complete\":\(r.isComplete),\"ledgers\":\(r.ledgers.count),\"segments\":\(r.segments)"
        s += ",\"open_segments\":\(r.openSegments)"
        if let c = r.covered {
            s += "," + time("covered_from", c.from, zone: zone) + "," + time("covered_to", c.to, zone: zone)
        }
        lines.append(s + "}")
        for (type, counts) in [("receiver", r.receivers), ("sender", r.senders)] {
            for (name, c) in counts.sorted(by: { $0.key < $1.key }) {
                var l = "{\"type\":\"\(type)\",\"name\":" + JSONString.quote(name)
                l += ",\"received\":\(c.received),\"accepted\":\(c.accepted),\"rejected\":\(c.rejectedTotal)"
                l += ",\"dropped\":\(c.dropped),\"rejected_by_reason\":{"
                l += c.rejected.sorted { $0.key < $1.key }.map { JSONString.quote($0.key) + ":\($0.value)" }
                    .joined(separator: ",")
                lines.append(l + "}}")
            }
        }
        for g in r.gaps {
            lines.append(
                "{\"type\":\"gap\",\"node\":\"\(g.node)\"," + time("from", g.from, zone: zone) + ","
                    + time("to", g.to, zone: zone) + ",\"kind\":\"\(g.kind.rawValue)\",\"detail\":"
                    + JSONString.quote(g.detail) + "}")
        }
        for n in r.notes {
            lines.append(
                "{\"type\":\"segment\",\"node\":\"\(n.node)\",\"segment\":\(n.sequence),\"kind\":\"\(n.kind.rawValue)\","
                    + "\"detail\":" + JSONString.quote(n.detail) + "}")
        }
        return lines
    }

    public static func csv(_ r: CompletenessReport) -> String {
        var out = "type,name,received,accepted,rejected,dropped,rejected_by_reason\r\n"
        for (type, counts) in [("receiver", r.receivers), ("sender", r.senders)] {
            for (name, c) in counts.sorted(by: { $0.key < $1.key }) {
                out +=
                    [
                        type, name, String(c.received), String(c.accepted), String(c.rejectedTotal), String(c.dropped),
                        reasons(c, separator: ";", equals: "="),
                    ].map(CSVOutput.field).joined(separator: ",") + "\r\n"
            }
        }
        return out
    }
}
