import Foundation
import StoreQuery
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Runs the real executables: collector seeds a data directory, auditq queries and verifies it. Expected
/// answers come from a brute-force pass over every stored record, never from the code under test.
@Suite(.serialized, .ownThreads) struct CLITests {
    static let binaries = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ tool: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Run {
        let r = try ChildProcess.run(binaries.appendingPathComponent(tool).path, arguments, environment: environment)
        return Run(status: r.status, stdout: r.stdout, stderr: r.stderr)
    }

    /// A data directory with 3,000 synthetic requests in several sealed segments; its path, the heaviest user,
    /// and the number of sealed segments the collector reported.
    static func seeded() throws -> (String, String, Int) {
        let dir = NSTemporaryDirectory() + "/auditq-cli-\(UInt64.random(in: 0...UInt64.max))"
        let seed = try run(
            "collector", ["ingest-synthetic", "--data", dir, "--requests", "3000", "--segment-events", "5000"])
        #expect(seed.status == 0, "\(seed.stderr)")
        #expect(seed.stdout.contains("sealed segments"))
        let user = try run("collector", ["ingest-synthetic", "--print-heavy-user"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let words = seed.stdout.split(separator: " ")
        let segments = try #require(words.firstIndex(of: "sealed").flatMap { Int(words[$0 - 1]) })
        return (dir, user, segments)
    }

    static func firstDay() throws -> String {
        try run("collector", ["ingest-synthetic", "--print-first-day"]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    static func dayRange(_ day: String) throws -> ClosedRange<UInt64> {
        let start = try #require(UnixTime.parseDay(Substring(day)))
        return start...(start + UnixTime.nanosPerDay - 1)
    }

    /// Every stored record, each event once: the brute-force reference.
    static func everything(_ dir: String) throws -> [StoredRecord] {
        try AuditStore(directories: [DataDirectory(dir)]).search(EventQuery())
    }

    static func jsonLines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test func searchTraceStatsAndVerify() throws {
        let (dir, user, segments) = try Self.seeded()
        #expect(segments >= 3)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let stats = try Self.run("auditq", ["stats", "--data", dir])
        #expect(stats.status == 0)
        let hot = try #require(stats.stdout.split(separator: "\n").first { $0.hasPrefix("hot ") })
        #expect(hot.split(separator: " ", omittingEmptySubsequences: true)[1] == "\(segments)")
        let statsJSON = try #require(
            try JSONSerialization.jsonObject(
                with: Data(try Self.run("auditq", ["stats", "--data", dir, "--format", "json"]).stdout.utf8))
                as? [String: Any])
        let total = try #require(statsJSON["total"] as? [String: Any])
        let sealedEvents = try DataDirectory(dir).rebuildCatalog().catalog.entries.reduce(0) {
            $0 + Int($1.seal.recordCount)
        }
        #expect(total["events"] as? Int == sealedEvents)
        #expect((total["compression_ratio"] as? Double ?? 0) > 1)

        let search = try Self.run("auditq", ["search", "--data", dir, "--user", user, "--limit", "3"])
        #expect(search.status == 0)
        let lines = search.stdout.split(separator: "\n")
        #expect(lines.count == 4)  // header and three events
        #expect(lines.dropFirst().allSatisfy { $0.contains(user) && $0.contains("edge-nginx") })

        let traceID = String(try #require(lines.dropFirst().first?.split(separator: " ").last))
        let trace = try Self.run("auditq", ["trace", "--data", dir, traceID])
        #expect(trace.status == 0)
        let treeLines = trace.stdout.split(separator: "\n")
        #expect(treeLines[0].hasPrefix("SPAN"))
        #expect(treeLines[1].hasPrefix("edge-nginx [edge]"))
        #expect(trace.stdout.contains("[sidecar]"))
        let expectedCount = try Self.everything(dir).filter { $0.event.traceID.hex == traceID }.count
        #expect(treeLines.count == expectedCount + 2)  // header, one line per record, summary
        #expect(trace.stdout.contains("\(expectedCount) records"))
        #expect(trace.stdout.contains("0 orphans, 0 duplicate copies"))

        let verify = try Self.run("auditq", ["verify", "--data", dir])
        #expect(verify.status == 0)
        #expect(verify.stdout.contains("\(segments)/\(segments) segments valid"))

        // Tamper with one byte of one sealed segment: verify fails with exit 3 and names the file.
        let segment = dir + "/segments/" + (try DataDirectory(dir).listSegmentFiles().sealed[1])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        bytes[200] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let tampered = try Self.run("auditq", ["verify", "--data", dir])
        #expect(tampered.status == 3)
        #expect(tampered.stdout.contains(segment))
        #expect(tampered.stdout.contains("\(segments - 1)/\(segments) segments valid"))
        // A query that reads the damaged block stops with exit 4 and names the file.
        let damaged = try Self.run("auditq", ["search", "--data", dir])
        #expect(damaged.status == 4)
        #expect(damaged.stderr.contains("damaged data in \(segment)"))
    }

    @Test func activityGivesEachRequestWithItsWholeTrace() throws {
        let (dir, user, _) = try Self.seeded()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let day = try Self.firstDay()
        let run = try Self.run(
            "auditq", ["activity", "--data", dir, "--user", user, "--date", day, "--format", "json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("time range: \(day)T00:00:00.000000000Z"))
        let lines = try Self.jsonLines(run.stdout)

        // Brute force: the user's events that day, grouped by trace, and every record of those traces.
        let range = try Self.dayRange(day)
        let all = try Self.everything(dir)
        let mine = all.filter { r in
            range.contains(r.event.startTimeUnixNano) && (r.event.user?.subject == user || r.event.user?.email == user)
        }
        let traces = Set(mine.map(\.event.traceID))
        #expect(lines.count == traces.count)
        #expect(lines.count > 10)
        var hopsDownstream = 0
        for line in lines {
            let id = try #require(line["trace_id"] as? String)
            let trace = try #require(line["trace"] as? [[String: Any]])
            let expected = all.filter { $0.event.traceID.hex == id }
            #expect(trace.count == expected.count, "trace \(id)")
            let events = trace.compactMap { $0["event"] as? [String: Any] }
            hopsDownstream += events.filter { $0["user"] == nil }.count
            #expect(Set(events.compactMap { $0["span_id"] as? String }) == Set(expected.map(\.event.spanID.hex)))
        }
        #expect(hopsDownstream > 0)  // hops that do not carry the user were found by trace id

        let table = try Self.run("auditq", ["activity", "--data", dir, "--user", user, "--date", day])
        #expect(table.stdout.split(separator: "\n").count == traces.count + 1)
        let csv = try Self.run("auditq", ["activity", "--data", dir, "--user", user, "--date", day, "--format", "csv"])
        let expectedRows = lines.reduce(0) { $0 + (($1["trace"] as? [Any])?.count ?? 0) }
        #expect(csv.stdout.split(separator: "\r\n").count == expectedRows + 1)
        let failedOnly = try Self.run(
            "auditq",
            ["activity", "--data", dir, "--user", user, "--date", day, "--status", "error", "--format", "json"])
        let failedExpected = Set(
            mine.filter {
                $0.event.source == .edge && ($0.event.statusCode == .error || ($0.event.http?.statusCode ?? 0) >= 500)
            }.map(\.event.traceID))
        #expect(try Self.jsonLines(failedOnly.stdout).count == failedExpected.count)
    }

    @Test(arguments: [
        (["--service", "edge-nginx", "--method", "GET"], "GET edge"),
        (["--status", "error"], "errors"),
        (["--status", "4xx"], "4xx"),
        (["--path-prefix", "/api/"], "path"),
        (["--min-duration", "200ms"], "slow"),
    ])
    func searchFiltersMatchBruteForce(extra: [String], label: String) throws {
        let (dir, _, _) = try Self.seeded()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let day = try Self.firstDay()
        let run = try Self.run("auditq", ["search", "--data", dir, "--date", day, "--format", "json"] + extra)
        #expect(run.status == 0, "\(run.stderr)")
        let got = try run.stdout.isEmpty ? [] : Self.jsonLines(run.stdout)
        let range = try Self.dayRange(day)
        let expected = try Self.everything(dir).filter { r in
            let e = r.event
            guard range.contains(e.startTimeUnixNano) else { return false }
            var i = 0
            while i < extra.count {
                let v = extra[i + 1]
                switch extra[i] {
                case "--service": if e.service != v { return false }
                case "--method": if e.http?.method != v { return false }
                case "--status" where v == "error":
                    if !(e.statusCode == .error || (e.http?.statusCode ?? 0) >= 500) { return false }
                case "--status": if (e.http?.statusCode ?? 0) / 100 != 4 { return false }
                case "--path-prefix":
                    if !((e.http?.target ?? "").hasPrefix(v) || (e.http?.route ?? "").hasPrefix(v)) { return false }
                case "--min-duration": if e.durationNanos < 200_000_000 { return false }
                default: Issue.record("unknown option \(extra[i])")
                }
                i += 2
            }
            return true
        }
        #expect(got.count == expected.count, "\(label)")
        #expect(expected.count > 0, "\(label): the data set should have such events")
        let gotIDs = got.compactMap { ($0["event"] as? [String: Any])?["span_id"] as? String }
        #expect(Set(gotIDs) == Set(expected.map(\.event.spanID.hex)), "\(label)")
    }

    @Test func usageErrorsNoMatchesAndTimeZones() throws {
        let (dir, _, _) = try Self.seeded()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let none = try Self.run("auditq", ["search", "--data", dir, "--user", "nobody-at-all"])
        #expect(none.status == 0)
        #expect(none.stdout.isEmpty)
        #expect(none.stderr.contains("no matching events"))
        let noActivity = try Self.run(
            "auditq", ["activity", "--data", dir, "--user", "nobody-at-all", "--date", "yesterday"])
        #expect(noActivity.status == 0)
        #expect(noActivity.stderr.contains("no requests by nobody-at-all"))

        for (args, message) in [
            (["trace", "--data", dir, "xyz"], "32 hex digits"),
            (["search", "--data", dir, "--date", "2026-02-30"], "cannot read time"),
            (["search", "--data", dir, "--format", "xml"], "--format is one of"),
            (["search", "--data", dir, "--date", "today", "--tz", "Mars/Olympus"], "unknown time zone"),
            (["search", "--data", dir, "--date", "today", "--from", "2026-01-01"], "either --date or --from/--to"),
            (["search", "--data", dir, "--min-duration", "soon"], "--min-duration"),
            (["search", "--data", dir, "--status", "teapot"], "--status"),
            (["search", "--data", dir, "--no-such-option"], "Unknown option"),
            (["stats", "--data", dir + "/nope"], "no data directory"),
            (["evidence", "--data", dir, "--user", "u", "--out", dir + "-b"], "give --date or --from/--to"),
        ] {
            let r = try Self.run("auditq", args)
            #expect(r.status == 2, "\(args)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        }

        // Day boundaries in a zone; the resolved range is printed.
        let day = try Self.firstDay()
        let zoned = try Self.run("auditq", ["search", "--data", dir, "--date", day, "--tz", "+02:00", "--limit", "1"])
        #expect(zoned.stderr.contains("time range: \(day)T00:00:00.000000000+02:00 … "))
        #expect(zoned.stderr.contains("day boundaries in +02:00"))
        let berlin = try Self.run(
            "auditq", ["search", "--data", dir, "--from", day, "--to", day, "--tz", "Europe/Berlin", "--limit", "1"])
        #expect(berlin.status == 0)
        #expect(
            berlin.stderr.contains("T00:00:00.000000000+01:00") || berlin.stderr.contains("T00:00:00.000000000+02:00"))
        // AUDITQ_DATA names the data directory when --data is absent.
        var env = ProcessInfo.processInfo.environment
        env["AUDITQ_DATA"] = dir
        let viaEnv = try Self.run("auditq", ["stats"], environment: env)
        #expect(viaEnv.status == 0)
        #expect(viaEnv.stdout.contains("hot "))
    }

    @Test func evidenceBundleFromTheCommandLineVerifiesOfflineAndTamperingFails() throws {
        let (dir, user, _) = try Self.seeded()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let day = try Self.firstDay()
        let out = dir + "-bundle"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let made = try Self.run(
            "auditq", ["evidence", "--data", dir, "--user", user, "--from", day, "--to", day, "--out", out])
        #expect(made.status == 0, "\(made.stderr)")
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
        #expect(files == Set(EvidenceBundle.fileNames + [EvidenceBundle.manifestName]))
        let query = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/query.json")))
                as? [String: Any])
        #expect(query["user"] as? String == user)
        #expect(query["tool_version"] as? String == AuditQVersion.current)
        #expect((query["command_line"] as? [String])?.contains("evidence") == true)

        // The bundle's requests are exactly the user's traces that day (all segments are sealed here).
        let range = try Self.dayRange(day)
        let all = try Self.everything(dir)
        let traces = Set(
            all.filter { range.contains($0.event.startTimeUnixNano) && $0.event.user?.subject == user }.map(
                \.event.traceID))
        #expect(query["requests"] as? Int == traces.count)
        var every = EventQuery()
        every.includeDuplicates = true  // evidence keeps every stored copy
        let stored = try AuditStore(directories: [DataDirectory(dir)]).search(every)
        #expect(query["records"] as? Int == stored.filter { traces.contains($0.event.traceID) }.count)

        // Verified offline: the data directory is moved away first.
        try FileManager.default.moveItem(atPath: dir, toPath: dir + "-away")
        defer { try? FileManager.default.moveItem(atPath: dir + "-away", toPath: dir) }
        let ok = try Self.run("auditq", ["verify", "--bundle", out])
        #expect(ok.status == 0, "\(ok.stdout)")
        #expect(ok.stdout.contains("0 problems"))

        var report = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out + "/report.txt")))
        report[report.count / 2] ^= 0x01
        try Data(report).write(to: URL(fileURLWithPath: out + "/report.txt"))
        let bad = try Self.run("auditq", ["verify", "--bundle", out])
        #expect(bad.status == 3)
        #expect(bad.stdout.contains("report.txt: hash does not match"))
    }

    /// `auditq evidence --db-namespace` over segments the collector wrote: the bundle's answer is `auditq access`'s
    /// (every segment is sealed), it verifies offline, and an edited answer is named.
    @Test func accessEvidenceBundleFromTheCommandLineIsTheAccessAnswerAndVerifiesOffline() throws {
        let (dir, _, _) = try Self.seeded()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let day = try Self.firstDay()
        let out = dir + "-access-bundle"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let target = ["--db-namespace", "salesdw"]
        let access = try Self.run("auditq", ["access", "--data", dir, "--date", day, "--format", "json"] + target)
        #expect(access.status == 0, "\(access.stderr)")
        #expect(!access.stdout.isEmpty)
        let made = try Self.run(
            "auditq", ["evidence", "--data", dir, "--from", day, "--to", day, "--out", out] + target)
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stdout.contains(" users, "))
        let answer = try String(contentsOfFile: out + "/access.ndjson", encoding: .utf8)
        #expect(answer == access.stdout)
        let both = try Self.run(
            "auditq", ["evidence", "--data", dir, "--date", day, "--user", "u", "--out", out + "-x"] + target)
        #expect(both.status == 2)
        #expect(both.stderr.contains("give --user, or what was reached"))

        try FileManager.default.moveItem(atPath: dir, toPath: dir + "-away")
        defer { try? FileManager.default.moveItem(atPath: dir + "-away", toPath: dir) }
        let ok = try Self.run("auditq", ["verify", "--bundle", out])
        #expect(ok.status == 0, "\(ok.stdout)")
        #expect(ok.stdout.contains("0 problems"))
        try answer.replacingOccurrences(of: "\"denied\":0", with: "\"denied\":1")
            .write(toFile: out + "/access.ndjson", atomically: false, encoding: .utf8)
        let bad = try Self.run("auditq", ["verify", "--bundle", out])
        #expect(bad.status == 3)
        #expect(bad.stdout.contains("access.ndjson: hash does not match"))
        #expect(bad.stdout.contains("access.ndjson line 1"))
    }

    /// A running `collector serve` on a free port.
    final class Collector: @unchecked Sendable {
        // @unchecked: set once in init, then read.
        let process: ChildProcess
        let base: String

        init(data: String) throws {
            // Only the OTLP/HTTP listener: the others would also print a port and take default ones.
            process = try ChildProcess(
                CLITests.binaries.appendingPathComponent("collector").path,
                [
                    "serve", "--data", data, "--otlp-http", "127.0.0.1:0", "--otlp-grpc", "off", "--zipkin", "off",
                    "--syslog-udp", "off", "--syslog-tcp", "off", "--log-level", "warning",
                ])
            let text = try process.waitForStdout("its address", within: 30) { $0.contains("\n") }
            guard let r = text.range(of: "http://127.0.0.1:"),
                let port = Int(text[r.upperBound...].prefix { $0.isNumber })
            else {
                process.stop(signal: SIGKILL)
                throw CocoaError(
                    .fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "collector did not start: \(text)"])
            }
            base = "http://127.0.0.1:\(port)"
        }

        func post(_ path: String, _ body: Data, type: String) async throws -> (Int, Data) {
            var request = URLRequest(url: URL(string: base + path)!)
            request.httpMethod = "POST"
            request.setValue(type, forHTTPHeaderField: "Content-Type")
            request.httpBody = body
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
        }

        func stop() {
            if !process.stop(signal: SIGTERM, within: 60).graceful {
                Issue.record("the collector did not exit within 60 s of SIGTERM; killed")
            }
        }
    }

    /// `--format otlp` output goes into a second, real collector over OTLP/HTTP JSON; what that collector stores
    /// must export to exactly the same OTLP spans as the originals.
    @Test func otlpOutputRoundTripsThroughACollector() async throws {
        let (dir, _, _) = try Self.seeded()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let day = try Self.firstDay()
        let exported = try Self.run(
            "auditq", ["search", "--data", dir, "--date", day, "--service", "orders", "--format", "otlp"])
        #expect(exported.status == 0, "\(exported.stderr)")
        let range = try Self.dayRange(day)
        let originals = try Self.everything(dir).filter {
            $0.event.service == "orders" && $0.event.kind == .span && range.contains($0.event.startTimeUnixNano)
        }.map(\.event)
        #expect(originals.count > 10)

        let second = dir + "-second"
        defer { try? FileManager.default.removeItem(atPath: second) }
        let collector = try Collector(data: second)
        let (status, body) = try await collector.post(
            "/v1/traces", Data(exported.stdout.utf8), type: "application/json")
        #expect(status == 200, "\(String(decoding: body, as: UTF8.self))")
        // While the collector still runs, what it acknowledged is readable from its active segment.
        let live = try Self.run("auditq", ["search", "--data", second, "--format", "json"])
        #expect(live.status == 0, "\(live.stderr)")
        #expect(live.stdout.split(separator: "\n").count == originals.count)
        let liveStats = try Self.run("auditq", ["stats", "--data", second, "--format", "json"])
        #expect(liveStats.stdout.contains("\"tier\":\"unsealed\",\"segments\":1,\"events\":\(originals.count)"))
        collector.stop()
        let stored = try Self.everything(second).map(\.event)
        #expect(stored.count == originals.count)
        // Each event as its own one-span OTLP request: ids, times, attributes, events, links, status, resource, scope.
        func otlp(_ events: [AuditEvent]) -> [String] { events.map { OTLPExport.json([$0]) }.sorted() }
        #expect(otlp(stored) == otlp(originals))
    }
}
