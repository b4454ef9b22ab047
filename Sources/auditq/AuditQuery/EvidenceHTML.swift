// `report.html` of an evidence bundle: the answer of `report.txt` for a browser, as one self-contained file
// (inline CSS, no script, no font or image to fetch, so it opens the same offline years later). The query, the
// integrity the bundle rests on (seals, signatures, proofs), a table of the requests, and each request's trace
// as a waterfall: one row per stored record, a bar placed by its start and end within the trace, coloured and
// labelled by hop (edge, sidecar, service, analytics). Like every derived file it is rebuilt by `verify --bundle`
// and compared byte for byte, so it holds nothing that is not in the proven records, the seals and the query:
// no clock, no locale, percentages from integer arithmetic. Every piece of text from the data is escaped.
import LogFormat
import StoreQuery

/// HTML text escaping: the five characters that can end text or an attribute value become references, and
/// characters HTML does not allow as text become U+FFFD, so nothing from the data can open an element.
public enum HTMLText {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n": out.unicodeScalars.append(c)
            default:
                // C0 and C1 controls and the noncharacters (U+FDD0…U+FDEF, U+xFFFE, U+xFFFF) are not allowed as text.
                let v = c.value
                let forbidden =
                    v < 0x20 || (0x7F...0x9F).contains(v) || (0xFDD0...0xFDEF).contains(v) || v & 0xFFFE == 0xFFFE
                if forbidden { out += "\u{FFFD}" } else { out.unicodeScalars.append(c) }
            }
        }
        return out
    }
}

/// The part of a trace a record is: what the waterfall colours and labels it by.
public enum EvidenceHop: String, Sendable, CaseIterable {
    case edge, sidecar, service, analytics, other

    /// A client span that names a database system or namespace is the analytics hop, whatever its source;
    /// otherwise the source says it (an access event of unknown source is still the edge's).
    public init(_ e: AuditEvent) {
        if e.attributes.contains(where: { $0.key.hasPrefix("db.system") || ReachTarget.namespaceKeys.contains($0.key) })
        {
            self = .analytics
            return
        }
        switch e.source {
        case .edge: self = .edge
        case .sidecar: self = .sidecar
        case .app: self = .service
        case .unknown: self = e.kind == .access ? .edge : .other
        }
    }
}

enum EvidenceHTML {
    struct Request {
        var head: AuditEvent?
        var traceID: String
        var records: [StoredRecord]
        /// Access bundles: the user of the request, and the records that reached the target (marked `reached`).
        var user: String? = nil
        var reached: Set<RecordLocation> = []
    }

    static func render(query: EvidenceQuery, requests: [Request], seals: [SegmentSeal]) -> String {
        let h = HTMLText.escape
        var o = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Audit evidence: activity of \(h(query.user))</title>
            <style>\(style)</style>
            </head>
            <body>
            <h1>Audit evidence: activity of <span class="user">\(h(query.user))</span></h1>

            """
        o += querySection(query)
        o += verificationSection(records: query.records, omitted: query.unsealedRecordsOmitted, seals: seals)
        o += requestsSection(requests)
        for (n, q) in requests.enumerated() { o += traceSection(n + 1, q) }
        o += "</body>\n</html>\n"
        return o
    }

    /// `report.html` of an access bundle: the query, the verification status, who reached the target (the
    /// answer), the requests, and each request's trace as a waterfall with the records that reached it marked.
    static func renderAccess(
        query: AccessEvidenceQuery, answer: Reach, requests: [Request], seals: [SegmentSeal]
    ) -> String {
        let h = HTMLText.escape
        let target = query.target.description
        var o = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Audit evidence: who reached \(h(target))</title>
            <style>\(style)\(accessStyle)</style>
            </head>
            <body>
            <h1>Audit evidence: who reached <span class="target">\(h(target))</span></h1>

            """
        let rows: [(String, String)] = [
            ("target", target),
            ("range", "\(query.from) … \(query.to) (end exclusive; day boundaries in \(query.timeZone))"),
            ("run by", "\(query.runBy) on \(query.host) at \(query.runAt) with auditq \(query.toolVersion)"),
            ("command", query.commandLine.joined(separator: " ")),
            ("data", query.dataDirectories.joined(separator: ", ")),
            ("answer", AccessEvidence.answerLine(query)),
        ]
        o += "<section id=\"query\">\n<h2>Query</h2>\n<dl>\n"
        for (k, v) in rows {
            o += "<dt>\(k)</dt><dd class=\"\(k.split(separator: " ").joined(separator: "-"))\">\(h(v))</dd>\n"
        }
        o += "</dl>\n</section>\n"
        o += verificationSection(records: query.records, omitted: query.unsealedRecordsOmitted, seals: seals)
        var anchors: [String: Int] = [:]
        for (n, q) in requests.enumerated() where anchors[q.traceID] == nil { anchors[q.traceID] = n + 1 }
        o += usersSection(answer, anchors: anchors)
        o += requestsSection(requests, users: true)
        for (n, q) in requests.enumerated() { o += traceSection(n + 1, q) }
        o += "</body>\n</html>\n"
        return o
    }

    /// The answer: one row per user, with links to the sections of their example traces.
    static func usersSection(_ answer: Reach, anchors: [String: Int]) -> String {
        let h = HTMLText.escape
        func link(_ id: TraceID) -> String {
            anchors[id.hex].map { "<a href=\"#request-\($0)\">\(id.hex)</a>" } ?? id.hex
        }
        var o = "<section id=\"users\">\n<h2>Who reached it</h2>\n"
        if answer.users.isEmpty {
            o += "<p class=\"none\">No user's request reached it in this range.</p>\n"
        } else {
            o += "<table class=\"users\">\n<thead><tr><th>user</th><th>kind</th><th>requests</th><th>denied</th>"
            o += "<th>failed</th><th>first</th><th>last</th><th>example traces</th></tr></thead>\n<tbody>\n"
            for u in answer.users {
                var classes = "user"
                if u.serviceAccount { classes += " service-account" }
                if u.denied > 0 || u.failed > 0 { classes += " flagged" }
                o += "<tr class=\"\(classes)\" data-user=\"\(h(u.user))\" data-requests=\"\(u.requests)\" "
                o += "data-denied=\"\(u.denied)\" data-failed=\"\(u.failed)\">"
                o += "<td class=\"user\">\(h(u.user))"
                if let email = u.email, email != u.user { o += "<div class=\"email\">\(h(email))</div>" }
                o += "</td><td>\(u.serviceAccount ? "service account" : "person")</td><td>\(u.requests)</td>"
                o += "<td class=\"denied\">\(u.denied)</td><td class=\"failed\">\(u.failed)</td>"
                o += "<td class=\"time\">\(h(TimeExpression.format(u.firstTime)))</td>"
                o += "<td class=\"time\">\(h(TimeExpression.format(u.lastTime)))</td>"
                o += "<td class=\"hash\">\(u.exampleTraces.map(link).joined(separator: " "))</td></tr>\n"
            }
            o += "</tbody>\n</table>\n"
        }
        if !answer.unattributedTraces.isEmpty {
            o += "<p class=\"unattributed\">\(answer.unattributedTraces.count) trace"
            o += answer.unattributedTraces.count == 1 ? "" : "s"
            o += " reached it without any user: <span class=\"hash\">"
            o += answer.unattributedTraces.map(link).joined(separator: " ") + "</span></p>\n"
        }
        return o + "</section>\n"
    }

    static func querySection(_ q: EvidenceQuery) -> String {
        let h = HTMLText.escape
        let rows: [(String, String)] = [
            ("user", q.user),
            ("range", "\(q.from) … \(q.to) (end exclusive; day boundaries in \(q.timeZone))"),
            ("run by", "\(q.runBy) on \(q.host) at \(q.runAt) with auditq \(q.toolVersion)"),
            ("command", q.commandLine.joined(separator: " ")),
            ("data", q.dataDirectories.joined(separator: ", ")),
            ("answer", "\(q.requests) requests, \(q.records) records"),
        ]
        var o = "<section id=\"query\">\n<h2>Query</h2>\n<dl>\n"
        for (k, v) in rows {
            o += "<dt>\(k)</dt><dd class=\"\(k.split(separator: " ").joined(separator: "-"))\">\(h(v))</dd>\n"
        }
        return o + "</dl>\n</section>\n"
    }

    static func verificationSection(records: Int, omitted: Int, seals: [SegmentSeal]) -> String {
        let h = HTMLText.escape
        let ordered = seals.sorted { ($0.nodeID.hex, $0.sequence) < ($1.nodeID.hex, $1.sequence) }
        let signed = ordered.filter(\.isSigned)
        let keys = Set(signed.map { Verifier.hexKeyID($0.signingKeyID) }).sorted()
        var o = "<section id=\"verification\">\n<h2>Verification</h2>\n"
        o += "<p class=\"verdict \(omitted == 0 ? "complete" : "partial")\">"
        o += "<strong>\(records) records proven</strong> against the Merkle roots of \(ordered.count) sealed "
        o += "segment\(ordered.count == 1 ? "" : "s"); "
        o += signed.isEmpty ? "no seal is signed" : "\(signed.count) of \(ordered.count) seals signed with Ed25519 "
        o += keys.isEmpty ? "" : "(key \(keys.joined(separator: ", ")))"
        o +=
            omitted == 0
            ? "." : "; \(omitted) records left out (segment not yet sealed)."
        o += "</p>\n<p>Every record on this page is in <code>proofs.ndjson</code> with its RFC 6962 inclusion proof "
        o += "against its segment's root, and auditq checked each proof when it wrote the bundle. This page is derived "
        o += "from those records: <code>auditq verify --bundle &lt;this directory&gt; --public-key FILE</code> checks "
        o += "every proof and signature again, offline, rebuilds this page and compares it byte for byte.</p>\n"
        o += "<table class=\"seals\">\n<thead><tr><th>node</th><th>segment</th><th>records</th><th>Merkle root</th>"
        o += "<th>sealed at</th><th>signature</th></tr></thead>\n<tbody>\n"
        for s in ordered {
            o += "<tr><td class=\"hash\">\(s.nodeID.hex)</td><td>\(s.sequence)</td><td>\(s.recordCount)</td>"
            o +=
                "<td class=\"hash\">\(s.merkleRoot.hex)</td><td class=\"time\">\(h(UnixTime.format(s.sealedAtUnixNano)))</td>"
            o += "<td>\(s.isSigned ? "Ed25519, key " + Verifier.hexKeyID(s.signingKeyID) : "unsigned")</td></tr>\n"
        }
        return o + "</tbody>\n</table>\n</section>\n"
    }

    /// The table of requests; with `users` (access bundles) a column of each request's user.
    static func requestsSection(_ requests: [Request], users: Bool = false) -> String {
        let h = HTMLText.escape
        var o = "<section id=\"requests\">\n<h2>Requests</h2>\n"
        o += "<table class=\"requests\">\n<thead><tr><th>#</th><th>time</th>\(users ? "<th>user</th>" : "")"
        o += "<th>request</th><th>status</th>"
        o += "<th>duration</th><th>records</th><th>errors</th><th>trace</th></tr></thead>\n<tbody>\n"
        for (i, q) in requests.enumerated() {
            let errors = q.records.filter { Rendering.isError($0.event) }.count
            o += "<tr class=\"request\(errors > 0 ? " error" : "")\" data-trace-id=\"\(h(q.traceID))\">"
            o += "<td><a href=\"#request-\(i + 1)\">\(i + 1)</a></td>"
            let user = users ? "<td class=\"user\">\(h(q.user ?? "(no user)"))</td>" : ""
            if let e = q.head {
                o += "<td class=\"time\">\(h(TimeExpression.format(e.startTimeUnixNano)))</td>\(user)"
                o += "<td class=\"what\">\(h(Rendering.what(e)))</td>"
                o += "<td>\(h(Rendering.status(e)))</td><td>\(h(Rendering.duration(e.durationNanos)))</td>"
            } else {
                o += "<td>?</td>\(user)<td class=\"what\">?</td><td>?</td><td>?</td>"
            }
            o += "<td>\(q.records.count)</td><td>\(errors)</td><td class=\"hash\">\(h(q.traceID))</td></tr>\n"
        }
        o += "</tbody>\n</table>\n<p class=\"legend\">"
        for hop in EvidenceHop.allCases {
            o += "<span><span class=\"swatch \(hop.rawValue)\"></span>\(hop.rawValue)</span> "
        }
        return o + "</p>\n</section>\n"
    }

    static func traceSection(_ n: Int, _ q: Request) -> String {
        let h = HTMLText.escape
        let analysis = TraceAnalysis(q.records)
        let total = max(1, analysis.end - analysis.origin)
        var o = "<section class=\"trace\" id=\"request-\(n)\" data-trace-id=\"\(h(q.traceID))\">\n"
        o += "<h2>Request \(n): "
        if let e = q.head {
            o += "\(h(TimeExpression.format(e.startTimeUnixNano))) \(h(Rendering.what(e))) \(h(Rendering.status(e)))"
        } else {
            o += "?"
        }
        o +=
            "</h2>\n<p class=\"summary\">trace <span class=\"hash\">\(h(q.traceID))</span>: \(h(analysis.summary))</p>\n"
        o += "<table class=\"waterfall\">\n<thead><tr><th class=\"label\">hop</th><th class=\"status\">status</th>"
        o +=
            "<th class=\"duration\">duration</th><th class=\"record\">record</th><th class=\"lane\"><div class=\"axis\">"
        for quarter in 0...4 {
            let at = UInt64(quarter) * (analysis.end - analysis.origin) / 4
            o += "<span style=\"left:\(quarter * 25)%\">\(h(Rendering.duration(Int64(at))))</span>"
        }
        o += "</div></th></tr></thead>\n<tbody>\n"
        for node in analysis.ordered {
            let e = node.record.event
            let hop = EvidenceHop(e)
            let start = e.startTimeUnixNano - analysis.origin
            let end = max(e.startTimeUnixNano, e.endTimeUnixNano) - analysis.origin
            let left = basisPoints(start, of: total)
            let width = min(basisPoints(end, of: total), 10_000) - left
            let notes = node.notes
            let location = BundleLocation(node.record.location)
            var classes = "hop \(hop.rawValue)"
            if Rendering.isError(e) { classes += " error" }
            if !notes.isEmpty { classes += " noted" }
            if q.reached.contains(node.record.location) { classes += " reached" }
            o += "<tr class=\"\(classes)\" data-hop=\"\(hop.rawValue)\" data-service=\"\(h(e.service))\" "
            o += "data-record=\"\(h(location.description))\" data-start-unix-nano=\"\(e.startTimeUnixNano)\" "
            o += "data-end-unix-nano=\"\(e.endTimeUnixNano)\">"
            o += "<td class=\"label\" style=\"padding-left:\(node.depth)em\"><span class=\"service\">\(h(e.service))"
            o +=
                "</span> <span class=\"kind\">\(hop.rawValue)</span> <span class=\"what\">\(h(Rendering.what(e)))</span>"
            for note in notes { o += "<div class=\"note\">\(h(note))</div>" }
            o += "</td><td>\(h(Rendering.status(e)))</td><td>\(h(Rendering.duration(e.durationNanos)))</td>"
            o +=
                "<td class=\"record\">\(h(String(location.node.prefix(8))))/\(location.segment)/\(location.ordinal)</td>"
            // The service name goes inside a wide bar, else beside it on the side with room.
            let side = width >= 3_000 ? "inside" : left + width <= 6_000 ? "after" : "before"
            o +=
                "<td class=\"lane\"><div class=\"bar \(hop.rawValue)\" style=\"left:\(percent(left));width:\(percent(width))\" "
            o += "title=\"\(h(e.service)) (\(hop.rawValue)): \(h(Rendering.duration(e.durationNanos)))\">"
            o += "<span class=\"tag \(side)\">\(h(e.service))</span></div></td></tr>\n"
        }
        return o + "</tbody>\n</table>\n</section>\n"
    }

    /// `part / total` in hundredths of a percent, rounded down; integer arithmetic, so the page is the same
    /// everywhere (a part beyond ~1.8e15 ns, three weeks, is scaled down first rather than overflow).
    static func basisPoints(_ part: UInt64, of total: UInt64) -> Int {
        let (high, low) = part.multipliedFullWidth(by: 10_000)
        return Int(total.dividingFullWidth((high, low)).quotient)
    }

    static func percent(_ bp: Int) -> String {
        let frac = bp % 100
        return "\(bp / 100).\(frac < 10 ? "0" : "")\(frac)%"
    }

    /// Added to `style` in access reports only (per-user reports are rebuilt byte for byte by older rules).
    static let accessStyle = """
        .target{font-family:ui-monospace,"DejaVu Sans Mono",monospace}td.user{white-space:nowrap}
        tr.user.flagged td.denied,tr.user.flagged td.failed{color:#b3261e;font-weight:600}
        .email{font-size:12px;color:#5b6473}.unattributed{color:#8a5a00}table.users td.hash{min-width:240px}
        tr.reached td.label{box-shadow:inset 3px 0 0 #1d2430;font-weight:600}

        """

    static let style = """

        body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#1d2430;\
        background:#fff}
        h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:24px 0 8px}
        .user{font-family:ui-monospace,"DejaVu Sans Mono",monospace}
        dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}dt{color:#5b6473}dd{margin:0}
        code,.hash,td.record,dd.command{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
        table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;vertical-align:top}
        thead th{border-bottom:1px solid #c9ced6;color:#5b6473;font-weight:600}tbody tr{border-bottom:1px solid #eef0f3}
        .verdict{padding:8px 12px;border-radius:4px}.verdict.complete{background:#e6f4ea}.verdict.partial{background:#fff4d6}
        tr.error td{color:#b3261e}tr.noted .note{color:#8a5a00;font-size:12px}
        table.waterfall{table-layout:fixed}table.waterfall th.label{width:34%}table.waterfall th.lane{width:40%}
        table.waterfall th.status{width:6%}table.waterfall th.duration{width:8%}table.waterfall th.record{width:12%}
        td.time{white-space:nowrap}.hash{word-break:break-all}
        td.label{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
        .kind{font-size:11px;color:#5b6473;border:1px solid #c9ced6;border-radius:3px;padding:0 3px}
        th.lane,td.lane{position:relative}td.lane{overflow:hidden}.axis{position:relative;height:1.4em}
        .axis span{position:absolute;transform:translateX(-50%);font-weight:400;font-size:11px}
        .axis span:first-child{transform:none}.axis span:last-child{transform:translateX(-100%)}
        td.lane{background:repeating-linear-gradient(90deg,#f4f5f7 0,#f4f5f7 1px,transparent 1px,transparent 25%)}
        .bar{position:absolute;top:5px;height:14px;min-width:2px;border-radius:2px}
        .legend{font-size:12px;color:#5b6473}.legend>span{margin-right:14px}
        .swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
        .bar.edge,.swatch.edge{background:#3b6fd8}.bar.sidecar,.swatch.sidecar{background:#8e6bd1}
        .bar.service,.swatch.service{background:#2e9d6a}.bar.analytics,.swatch.analytics{background:#d9822b}
        .bar.other,.swatch.other{background:#7b8594}
        tr.error .bar{outline:2px solid #b3261e}
        .tag{position:absolute;top:0;line-height:14px;white-space:nowrap;font-size:11px;color:#1d2430}
        .tag.after{left:100%;margin-left:4px}.tag.before{right:100%;margin-right:4px}
        .tag.inside{left:4px;right:4px;overflow:hidden;text-overflow:ellipsis;color:#fff}

        """
}
