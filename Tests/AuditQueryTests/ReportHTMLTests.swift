import Foundation
import Logging
import StoreQuery
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat

/// Debian's Chromium, if installed (`make test` installs it).
let installedChromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}

/// `report.html` of an evidence bundle, opened by a real browser: Chromium, headless, renders it to a screenshot
/// and dumps the DOM it built; the rows and bars must be those of the bundle's own records, placed by their
/// times, and nothing from the data (hostile service, user and route names) may become markup.
@Suite(
    .ownThreads,
    .enabled(if: installedChromium != nil, "Chromium is not installed (`make test` installs Debian's chromium)"))
struct ReportHTMLTests {
    /// A signed store with two requests of a user whose name is markup, through services named like markup.
    final class HostileStore: @unchecked Sendable {
        // @unchecked: set in init, only read afterwards.
        let dir: TempDir
        let directory: DataDirectory
        let signer = SealSigner.generate()
        let user = "\"><img src=x onerror=alert(1)>"
        let day: ClosedRange<UInt64> = 1_793_577_600_000_000_000...1_793_663_999_999_999_999
        static let hostileService = "<script>alert('svc')</script>"
        let ms: UInt64 = 1_000_000

        init() throws {
            dir = TempDir("report-html")
            directory = DataDirectory(dir.path + "/data")
            var options = WriterOptions()
            options.signer = signer
            var logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            logger.logLevel = .critical
            let writer = try SegmentWriter(directory: directory, options: options, logger: logger)
            let t0: UInt64 = 1_793_613_600_000_000_000
            var events: [AuditEvent] = []
            for (n, start) in [t0, t0 + 60_000 * ms].enumerated() {
                let trace = TraceID(high: 0xC0DE, low: UInt64(n + 1))
                let base = UInt64(n * 10)
                func hop(
                    _ id: UInt64, parent: UInt64?, _ service: String, _ source: EventSource, at: UInt64, ms d: UInt64,
                    kind: EventKind = .span, attributes: [Attribute] = [], status: UInt16 = 200
                ) -> AuditEvent {
                    AuditEvent(
                        kind: kind, startTimeUnixNano: start + at * ms, endTimeUnixNano: start + (at + d) * ms,
                        traceID: trace, spanID: SpanID(value: base + id),
                        parentSpanID: parent.map { SpanID(value: base + $0) },
                        spanKind: .server, name: "\(service) op", service: service, source: source,
                        user: kind == .access ? UserIdentity(subject: user, origin: .edge) : nil,
                        http: HTTPFacts(method: "GET", target: "/r?q=<b>&x=\"1\"", statusCode: status),
                        attributes: attributes)
                }
                events += [
                    hop(1, parent: nil, "edge-nginx", .edge, at: 0, ms: 40, kind: .access),
                    hop(2, parent: 1, "orders.commerce", .sidecar, at: 2, ms: 35),
                    hop(3, parent: 2, Self.hostileService, .app, at: 3, ms: 30, status: n == 1 ? 503 : 200),
                    hop(
                        4, parent: 3, "reports", .app, at: 10, ms: 20,
                        attributes: [
                            Attribute("db.system.name", .string("mssql")), Attribute("db.namespace", .string("sales")),
                        ]),
                ]
            }
            _ = try writer.append(events)
            _ = try writer.seal()
        }
    }

    static func chromium(_ args: [String], profile: String) throws -> ChildOutput {
        // Root (as in CI) needs --no-sandbox; a profile of its own keeps runs apart.
        let out = try ChildProcess.run(
            installedChromium!,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                "--user-data-dir=" + profile,
            ] + args, within: 120)
        #expect(out.succeeded, "chromium failed: \(out.stderr.suffix(2_000))")
        return out
    }

    /// Undoes the escaping of Chromium's DOM serialiser (text and attribute values).
    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&nbsp;", with: "\u{A0}").replacingOccurrences(of: "&amp;", with: "&")
    }

    static func matches(_ pattern: String, in text: String) throws -> [[String]] {
        let re = try NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators])
        let ns = text as NSString
        return re.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
            (1..<m.numberOfRanges).map {
                m.range(at: $0).location == NSNotFound ? "" : ns.substring(with: m.range(at: $0))
            }
        }
    }

    @Test func chromiumRendersEveryRowAndBarOfTheBundleAndNoMarkupFromTheData() throws {
        let s = try HostileStore()
        defer { s.dir.remove() }
        let store = try AuditStore(directories: [s.directory])
        let requests = try store.activity(user: s.user, timeRange: s.day, includeDuplicates: true)
        let out = s.dir.path + "/bundle"
        _ = try EvidenceBundle.write(
            requests: requests, query: EvidenceBundleTests.query(s.user, s.day), store: store, to: out)
        let verified = BundleVerifier.verify(bundle: out, publicKeys: [s.signer.publicKey], requireSignatures: true)
        #expect(verified.isValid, "\(verified.problems)")
        let manifest = try EvidenceBundleTests.read(out, EvidenceBundle.manifestName)
        #expect(manifest.contains("\"path\":\"report.html\""))

        // What the bundle holds: each request's records (activity.ndjson) and each record's event (events.ndjson).
        var eventAt: [String: [String: Any]] = [:]
        for line in EvidenceBundleTests.lines(try EvidenceBundleTests.read(out, "events.ndjson")) {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let r = try #require(o["record"] as? [String: Any])
            eventAt["\(r["node"]!)/\(r["segment"]!)/\(r["ordinal"]!)"] = try #require(o["event"] as? [String: Any])
        }
        var traces: [[String]] = []
        var traceIDs: [String] = []
        for line in EvidenceBundleTests.lines(try EvidenceBundleTests.read(out, "activity.ndjson")) {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let records = try #require(o["records"] as? [[String: Any]])
            traces.append(records.map { "\($0["node"]!)/\($0["segment"]!)/\($0["ordinal"]!)" })
            traceIDs.append(try #require(o["trace_id"] as? String))
        }
        #expect(traces.count == 2 && traces.allSatisfy { $0.count == 4 })

        let page = URL(fileURLWithPath: out + "/report.html").absoluteString
        let dom = try Self.chromium(["--dump-dom", page], profile: s.dir.path + "/profile-dom").stdout
        // Nothing from the data became an element: the page has no script, no image, and the names are text.
        #expect(!dom.contains("<script"))
        #expect(!dom.contains("<img"))
        #expect(dom.contains("&lt;script&gt;alert('svc')&lt;/script&gt;"))
        let title = try #require(try Self.matches("<title>(.*?)</title>", in: dom).first?.first)
        #expect(Self.unescape(title) == "Audit evidence: activity of \(s.user)")

        let sections = try Self.matches(
            "<section class=\"trace\" id=\"request-(\\d+)\" data-trace-id=\"([0-9a-f]+)\">(.*?)</section>", in: dom)
        #expect(sections.map { $0[1] } == traceIDs)
        for (section, records) in zip(sections, traces) {
            let rows = try Self.matches(
                "<tr class=\"hop ([a-z]+)[^\"]*\" data-hop=\"([a-z]+)\" data-service=\"([^\"]*)\" "
                    + "data-record=\"([^\"]+)\".*?<div class=\"bar ([a-z]+)\" style=\"left:([0-9.]+)%;width:([0-9.]+)%\""
                    + "[^>]*><span class=\"tag [a-z]+\">([^<]*)</span></div></td></tr>",
                in: section[2])
            // One row and one bar per record of the request, each the record the bundle lists.
            #expect(rows.count == records.count)
            #expect(Set(rows.map { $0[3] }) == Set(records))
            let times = records.map { r -> (UInt64, UInt64) in
                let e = eventAt[r]!
                return (UInt64(e["start_time_unix_nano"] as! String)!, UInt64(e["end_time_unix_nano"] as! String)!)
            }
            let origin = times.map(\.0).min()!
            let total = times.map(\.1).max()! - origin
            for row in rows {
                let e = try #require(eventAt[row[3]])
                let service = try #require(e["service"] as? String)
                // Labelled by service and hop: the row's service, the bar's tag, the hop class from the source.
                #expect(Self.unescape(row[2]) == service)
                #expect(Self.unescape(row[7]) == service)
                let attributes = e["attributes"] as? [String: Any] ?? [:]
                let expectedHop =
                    attributes["db.namespace"] != nil
                    ? "analytics" : ["edge": "edge", "sidecar": "sidecar", "app": "service"][e["source"] as! String]!
                #expect(row[0] == expectedHop && row[1] == expectedHop && row[4] == expectedHop)
                // Placed by time: left edge at the start, width the duration, as fractions of the trace.
                let start = UInt64(e["start_time_unix_nano"] as! String)!
                let end = UInt64(e["end_time_unix_nano"] as! String)!
                let left = try #require(Double(row[5]))
                let width = try #require(Double(row[6]))
                #expect(abs(left - Double(start - origin) / Double(total) * 100) < 0.02, "\(row)")
                #expect(abs(width - Double(end - start) / Double(total) * 100) < 0.03, "\(row)")
            }
        }
        // The request table and the verification status say what the bundle holds.
        let requestRows = try Self.matches("<tr class=\"request( error)?\" data-trace-id=\"([0-9a-f]+)\">", in: dom)
        #expect(requestRows.map { $0[1] } == traceIDs)
        // The second request's service answered 503: its row is marked.
        #expect(requestRows.map { $0[0] } == ["", " error"])
        let seals = EvidenceBundleTests.lines(try EvidenceBundleTests.read(out, "seals.ndjson"))
        let keyID = try #require(
            (try JSONSerialization.jsonObject(with: Data(seals[0].utf8)) as? [String: Any])?["signing_key_id"]
                as? String)
        #expect(
            dom.contains(
                "<strong>\(eventAt.count) records proven</strong> against the Merkle roots of 1 sealed segment"))
        #expect(dom.contains("Ed25519, key \(keyID)"))

        // The screenshot: a PNG of the window's size, with the page painted on it.
        let png = s.dir.path + "/report.png"
        _ = try Self.chromium(
            ["--window-size=1200,900", "--screenshot=" + png, page], profile: s.dir.path + "/profile-shot")
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: png)))
        #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        func be32(_ at: Int) -> Int { bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        #expect(be32(16) == 1200 && be32(20) == 900)
        // A blank page compresses to a few kilobytes; text, tables and coloured bars do not.
        #expect(bytes.count > 20_000)
    }
}
