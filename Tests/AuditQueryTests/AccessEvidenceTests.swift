// Evidence bundles of an access answer (`auditq evidence --service …`): written from signed segments of two
// collectors, verified offline, the answer recomputed from the proven records; tampered with, each change caught
// and named; rendered by Chromium, the users' rows and every trace's bars in the DOM; per-user bundles unchanged.
import Foundation
import StoreQuery
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat

@Suite struct AccessEvidenceTests {
    static func query(_ target: ReachTarget, _ range: ClosedRange<UInt64>) -> AccessEvidenceQuery {
        AccessEvidenceQuery(
            target: BundleTarget(target), fromUnixNano: String(range.lowerBound),
            toUnixNano: String(range.upperBound + 1), from: TimeExpression.format(range.lowerBound),
            to: TimeExpression.format(range.upperBound + 1), timeZone: "UTC", dataDirectories: ["/edge", "/mesh"],
            commandLine: ["auditq", "evidence", "--service", "orders"], runBy: "tester", host: "test-host",
            runAt: "2026-11-27T12:00:00.000000000Z", toolVersion: AuditQVersion.current)
    }

    /// The bundle of who reached `target` that day, from the two signed collectors of `ReachStore`.
    static func bundle(_ target: ReachTarget = ReachTarget(service: "orders")) throws -> (
        ReachStore, String, SealVerifierKey, EvidenceBundle.Summary
    ) {
        let s = try ReachStore(signer: SealSigner.generate())
        let store = try s.both
        let requests = try store.reachRequests(of: target, timeRange: s.day, includeDuplicates: true)
        let out = s.root + "/bundle"
        let summary = try AccessEvidence.write(requests: requests, query: query(target, s.day), store: store, to: out)
        return (s, out, try #require(s.signer).publicKey, summary)
    }

    static func read(_ dir: String, _ name: String) throws -> String { try EvidenceBundleTests.read(dir, name) }
    static func write(_ dir: String, _ name: String, _ text: String) throws {
        try EvidenceBundleTests.write(dir, name, text)
    }
    static func lines(_ dir: String, _ name: String) throws -> [String] {
        EvidenceBundleTests.lines(try read(dir, name))
    }
    static func object(_ line: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    /// The forger's last step for an access bundle: the manifest brought in line, kind and version kept.
    static func refreshManifest(_ dir: String) throws {
        try EvidenceBundleTests.refreshManifest(dir)
        let m = try read(dir, EvidenceBundle.manifestName)
        try write(
            dir, EvidenceBundle.manifestName,
            m.replacingOccurrences(
                of: "\"version\":\(EvidenceBundle.formatVersion)}",
                with: "\"kind\":\"access\",\"version\":\(AccessEvidence.formatVersion)}"))
    }

    @Test func aBundleOfWhoReachedAServiceVerifiesAndStatesWhatTheProvenRecordsGive() throws {
        let (s, dir, key, summary) = try Self.bundle()
        _ = s
        let verified = BundleVerifier.verify(bundle: dir, publicKeys: [key], requireSignatures: true)
        #expect(verified.isValid, "\(verified.problems)")
        // Three sealed segments (one of the edge, two of the mesh), all signed.
        #expect(verified.signaturesValid == 3 && verified.sealsChecked == 3)
        #expect(verified.filesValid == AccessEvidence.fileNames.count)
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        #expect(files == Set(AccessEvidence.fileNames + [EvidenceBundle.manifestName]))
        #expect(try Self.read(dir, EvidenceBundle.manifestName).hasSuffix("\"kind\":\"access\",\"version\":4}\n"))

        // Orders was reached by alice's first request, the trace without a user, and alice's second request,
        // whose edge record (the only one with her name) is not sealed yet: left out, so in the bundle that
        // trace has no user. Live, alice has two requests.
        let live = try s.both.reachers(of: ReachTarget(service: "orders"), timeRange: s.day)
        #expect(live.users.map(\.requests) == [2])
        let query = try JSONDecoder().decode(
            AccessEvidenceQuery.self, from: Data(try Self.read(dir, "query.json").utf8))
        #expect(query.unsealedRecordsOmitted == 1)
        #expect(query.users == 1 && query.requests == 3 && query.unattributedTraces == 2)
        #expect(summary.users == 1 && summary.requests == 3)
        let answer = try Self.lines(dir, "access.ndjson").map(Self.object)
        #expect(answer.count == 1)
        #expect(answer[0]["user"] as? String == "alice")
        #expect(answer[0]["requests"] as? Int == 1)
        #expect(answer[0]["example_traces"] as? [String] == [ReachStore.alice1.hex])
        let traces = try Self.lines(dir, "traces.ndjson").map(Self.object)
        #expect(
            traces.compactMap { $0["trace_id"] as? String }
                == [ReachStore.alice1.hex, ReachStore.nobody.hex, ReachStore.alice2.hex])
        #expect(traces.map { $0["user"] as? String } == ["alice", nil, nil])
        // Alice's first trace: edge, sidecar, app (twice: a retried export), synapse (twice); the sidecar and the
        // first copy of the app span reached orders.
        let first = try #require(traces[0]["records"] as? [[String: Any]])
        #expect(first.count == 6)
        #expect((traces[0]["reached"] as? [[String: Any]])?.count == 2)
        #expect(try Self.lines(dir, "events.ndjson").count == query.records)
        #expect(query.records == 6 + 1 + 1)
        let report = try Self.read(dir, "report.txt")
        #expect(report.contains("AUDIT EVIDENCE: who reached service orders"))
        #expect(report.contains("traces without any user: \(ReachStore.nobody.hex) \(ReachStore.alice2.hex)"))
        #expect(report.contains("retry copy of"))
        #expect(report.contains("completeness: "))
    }

    /// Where every record is sealed, the bundle's answer is `auditq access`'s, byte for byte: a dataset reached by
    /// a person and a service account.
    @Test func whereEverythingIsSealedTheAnswerIsTheAccessCommandsAnswer() throws {
        let target = ReachTarget(dbNamespace: "salesdw", dbTable: "dbo.orders")
        let (s, dir, key, _) = try Self.bundle(target)
        let verified = BundleVerifier.verify(bundle: dir, publicKeys: [key])
        #expect(verified.isValid, "\(verified.problems)")
        let live = try s.both.reachers(of: target, timeRange: s.day)
        #expect(live.users.map(\.user) == ["alice", ReachStore.etlSubject])
        #expect(try Self.read(dir, "access.ndjson") == live.users.map { ReachOutput.jsonLine($0) + "\n" }.joined())
        #expect(try Self.read(dir, "access.csv") == ReachOutput.csv(live.users))
        #expect(try Self.read(dir, "report.txt").contains(ReachOutput.table(live.users)))
    }

    @Test func nothingReachedIsABundleThatSaysSo() throws {
        let (s, dir, key, summary) = try Self.bundle(ReachTarget(service: "no-such-service"))
        _ = s
        #expect(summary.requests == 0)
        let verified = BundleVerifier.verify(bundle: dir, publicKeys: [key])
        #expect(verified.isValid, "\(verified.problems)")
        #expect(try Self.read(dir, "access.ndjson").isEmpty)
        #expect(try Self.read(dir, "report.txt").contains("no user's request reached it in this range"))
    }

    enum Tamper: String, CaseIterable, Sendable {
        case flipByteInProofRecord, editAuditPath, editAnswerAndFixManifest, editAnswerCSVAndFixManifest,
            editReportAndFixManifest, editReportHTMLAndFixManifest, removeTraceAndFixManifest,
            removeTraceAndItsProofsAndFixManifest, giveATraceAnotherUserAndFixManifest, editQueryTargetAndFixManifest,
            editQueryCountsAndFixManifest, forgeSignature, relabelAsActivityBundle, removeReachedRecordFromTrace
    }

    @Test(arguments: Tamper.allCases)
    func everyTamperingIsCaughtAndNamed(_ tamper: Tamper) throws {
        let (s, dir, key, _) = try Self.bundle()
        _ = s
        var expectFiles: [String] = []
        func edit(_ name: String, _ change: (inout [String]) throws -> Void) throws {
            var lines = try Self.lines(dir, name)
            try change(&lines)
            try Self.write(dir, name, lines.map { $0 + "\n" }.joined())
            try Self.refreshManifest(dir)
        }
        func reencode(_ o: [String: Any]) throws -> String {
            String(
                decoding: try JSONSerialization.data(
                    withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes]),
                as: UTF8.self)
        }
        switch tamper {
        case .flipByteInProofRecord:
            try edit("proofs.ndjson") { lines in
                var o = try Self.object(lines[0])
                var record = [UInt8](try #require(Data(base64Encoded: o["canonical"] as! String)))
                record[record.count / 2] ^= 0x01
                o["canonical"] = Data(record).base64EncodedString()
                lines[0] = try reencode(o)
            }
            expectFiles = ["proofs.ndjson"]
        case .editAuditPath:
            try edit("proofs.ndjson") { lines in
                var o = try Self.object(lines[1])
                var path = try #require(o["audit_path"] as? [String])
                path[0] = String(repeating: "ab", count: 32)
                o["audit_path"] = path
                lines[1] = try reencode(o)
            }
            expectFiles = ["proofs.ndjson"]
        case .editAnswerAndFixManifest:
            try edit("access.ndjson") { lines in
                lines[0] = lines[0].replacingOccurrences(of: "\"requests\":1", with: "\"requests\":2")
            }
            expectFiles = ["access.ndjson"]
        case .editAnswerCSVAndFixManifest:
            // Alice was never denied, says the bundle; the forger says once.
            let csv = try Self.read(dir, "access.csv")
            try Self.write(dir, "access.csv", csv.replacingOccurrences(of: ",false,1,0,0,", with: ",false,1,1,0,"))
            #expect(try Self.read(dir, "access.csv") != csv)
            try Self.refreshManifest(dir)
            expectFiles = ["access.csv"]
        case .editReportAndFixManifest:
            let report = try Self.read(dir, "report.txt")
            try Self.write(dir, "report.txt", report.replacingOccurrences(of: "alice", with: "carol"))
            try Self.refreshManifest(dir)
            expectFiles = ["report.txt"]
        case .editReportHTMLAndFixManifest:
            let page = try Self.read(dir, "report.html")
            try Self.write(
                dir, "report.html", page.replacingOccurrences(of: "data-user=\"alice\"", with: "data-user=\"carol\""))
            try Self.refreshManifest(dir)
            expectFiles = ["report.html"]
        case .removeTraceAndFixManifest:
            try edit("traces.ndjson") { $0.remove(at: 0) }
            expectFiles = ["traces.ndjson", "access.ndjson", "query.json", "events.ndjson"]
        case .removeTraceAndItsProofsAndFixManifest:
            // A careful forger drops alice's trace with its proofs: what is left no longer gives the answer stated.
            let trace = try Self.object(try Self.lines(dir, "traces.ndjson")[0])
            let gone = Set(
                try #require(trace["records"] as? [[String: Any]]).map {
                    "\"record\":{\"node\":\"\($0["node"]!)\",\"ordinal\":\($0["ordinal"]!),\"segment\":\($0["segment"]!)}"
                })
            try edit("proofs.ndjson") { lines in lines.removeAll { l in gone.contains { l.contains($0) } } }
            #expect(try Self.lines(dir, "proofs.ndjson").count < 8)
            try edit("traces.ndjson") { $0.remove(at: 0) }
            expectFiles = ["access.ndjson", "query.json"]
        case .giveATraceAnotherUserAndFixManifest:
            try edit("traces.ndjson") { lines in
                var o = try Self.object(lines[1])
                o["user"] = "mallory"
                lines[1] = try reencode(o)
            }
            expectFiles = ["traces.ndjson"]
        case .editQueryTargetAndFixManifest:
            let q = try Self.read(dir, "query.json")
            try Self.write(
                dir, "query.json", q.replacingOccurrences(of: "\"service\":\"orders\"", with: "\"service\":\"reports\"")
            )
            try Self.refreshManifest(dir)
            expectFiles = ["traces.ndjson"]
        case .editQueryCountsAndFixManifest:
            let q = try Self.read(dir, "query.json")
            try Self.write(dir, "query.json", q.replacingOccurrences(of: "\"users\":1", with: "\"users\":2"))
            try Self.refreshManifest(dir)
            expectFiles = ["query.json"]
        case .forgeSignature:
            try edit("seals.ndjson") { lines in
                var o = try Self.object(lines[0])
                var sig = [UInt8](try #require(Data(base64Encoded: o["signature"] as! String)))
                sig[7] ^= 1
                o["signature"] = Data(sig).base64EncodedString()
                lines[0] = try reencode(o)
            }
            expectFiles = ["seals.ndjson"]
        case .relabelAsActivityBundle:
            try EvidenceBundleTests.refreshManifest(dir)  // no kind: a per-user bundle of version 3
            expectFiles = [EvidenceBundle.manifestName]
        case .removeReachedRecordFromTrace:
            // Alice's sidecar span (the first that reached orders) taken out of her trace's records.
            try edit("traces.ndjson") { lines in
                var o = try Self.object(lines[0])
                var records = try #require(o["records"] as? [[String: Any]])
                let reached = try #require((o["reached"] as? [[String: Any]])?.first)
                func at(_ l: [String: Any]) -> String { "\(l["node"]!)/\(l["segment"]!)/\(l["ordinal"]!)" }
                records.removeAll { at($0) == at(reached) }
                o["records"] = records
                lines[0] = try reencode(o)
            }
            expectFiles = ["traces.ndjson", "access.ndjson"]
        }
        let outcome = BundleVerifier.verify(bundle: dir, publicKeys: [key])
        #expect(!outcome.isValid, "\(tamper) went unnoticed")
        let named = Set(outcome.problems.map(\.file))
        for f in expectFiles {
            #expect(named.contains(f), "\(tamper): no problem names \(f); got \(outcome.problems)")
        }
        switch tamper {
        case .flipByteInProofRecord:
            #expect(outcome.problems.contains { $0.file == "proofs.ndjson" && $0.line == 1 && $0.record != nil })
        case .editAuditPath:
            #expect(
                outcome.problems.contains { $0.file == "proofs.ndjson" && $0.line == 2 && $0.kind == .rootMismatch })
        case .editAnswerAndFixManifest:
            #expect(outcome.problems.contains { $0.file == "access.ndjson" && $0.line == 1 })
        case .removeTraceAndFixManifest:
            // The trace is named: its proven records are listed by no line.
            #expect(
                outcome.problems.contains {
                    $0.file == "traces.ndjson" && $0.expected == "a line for trace \(ReachStore.alice1.hex)"
                })
        case .removeTraceAndItsProofsAndFixManifest:
            #expect(outcome.problems.contains { $0.file == "access.ndjson" && $0.line == 1 })
        case .giveATraceAnotherUserAndFixManifest:
            #expect(
                outcome.problems.contains {
                    $0.file == "traces.ndjson" && $0.line == 2 && $0.found?.contains("mallory") == true
                })
        case .editQueryTargetAndFixManifest:
            #expect(outcome.problems.contains { $0.detail.contains("did not reach the target") })
        case .forgeSignature:
            #expect(outcome.problems.contains { $0.kind == .signatureInvalid && $0.line == 1 })
        case .relabelAsActivityBundle:
            #expect(outcome.problems.contains { $0.expected == "activity.ndjson" })
        default: break
        }
    }

    /// Per-user bundles are still written as version 3 without a kind, and verify; an access bundle is refused
    /// as a kind before version 4.
    @Test func perUserBundlesAreUnchangedAndStillVerify() throws {
        let (s, dir, key) = try EvidenceBundleTests.bundle()
        _ = s
        let manifest = try Self.read(dir, EvidenceBundle.manifestName)
        #expect(manifest.hasSuffix("\"format\":\"auditq-evidence\",\"version\":3}\n"))
        #expect(!manifest.contains("\"kind\""))
        let outcome = BundleVerifier.verify(bundle: dir, publicKeys: [key])
        #expect(outcome.isValid, "\(outcome.problems)")

        let (r, access, accessKey, _) = try Self.bundle()
        _ = r
        let m = try Self.read(access, EvidenceBundle.manifestName)
        try Self.write(
            access, EvidenceBundle.manifestName, m.replacingOccurrences(of: "\"version\":4", with: "\"version\":3"))
        let old = BundleVerifier.verify(bundle: access, publicKeys: [accessKey])
        #expect(
            old.problems.contains { $0.file == EvidenceBundle.manifestName && $0.found == "kind access in version 3" })
    }

    /// A per-user bundle written by auditq 0.5.0 before access bundles existed (`collector ingest-synthetic
    /// --requests 300`, then `auditq evidence --user u-001598 --date 2025-03-03`; kept in Bundles/): this auditq
    /// still verifies it, report.html and report.txt rebuilt byte for byte.
    @Test func aPerUserBundleWrittenBeforeAccessBundlesStillVerifies() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Bundles/activity-v3-before-access").path
        let outcome = BundleVerifier.verify(bundle: dir)
        #expect(outcome.isValid, "\(outcome.problems)")
        #expect(outcome.filesValid == 10 && outcome.proofsValid == 5)
    }

    @Test(.enabled(if: installedChromium != nil, "Chromium is not installed (`make test` installs Debian's chromium)"))
    func chromiumRendersTheUsersAndEveryTraceOfTheBundle() throws {
        let (s, dir, _, _) = try Self.bundle(ReachTarget(service: "synapse"))
        let answer = try Self.lines(dir, "access.ndjson").map(Self.object)
        let traces = try Self.lines(dir, "traces.ndjson").map(Self.object)
        #expect(answer.count == 2 && traces.count == 2)
        func location(_ o: [String: Any]) -> String { "\(o["node"]!)/\(o["segment"]!)/\(o["ordinal"]!)" }
        var eventAt: [String: [String: Any]] = [:]
        for line in try Self.lines(dir, "events.ndjson") {
            let o = try Self.object(line)
            eventAt[location(try #require(o["record"] as? [String: Any]))] = o["event"] as? [String: Any]
        }

        let page = URL(fileURLWithPath: dir + "/report.html").absoluteString
        let dom = try ReportHTMLTests.chromium(["--dump-dom", page], profile: s.root + "/profile-dom").stdout
        #expect(!dom.contains("<script"))
        let title = try #require(try ReportHTMLTests.matches("<title>(.*?)</title>", in: dom).first?.first)
        #expect(title == "Audit evidence: who reached service synapse")

        // One row per user of access.ndjson, with its counts and links to the example traces' sections.
        let users = try ReportHTMLTests.matches(
            "<tr class=\"user( service-account)?( flagged)?\" data-user=\"([^\"]*)\" data-requests=\"(\\d+)\" "
                + "data-denied=\"(\\d+)\" data-failed=\"(\\d+)\">(.*?)</tr>", in: dom)
        #expect(users.map { ReportHTMLTests.unescape($0[2]) } == answer.map { $0["user"] as! String })
        #expect(users.map { Int($0[3])! } == answer.map { $0["requests"] as! Int })
        #expect(users.map { Int($0[4])! } == answer.map { $0["denied"] as! Int })
        #expect(users.map { Int($0[5])! } == answer.map { $0["failed"] as! Int })
        #expect(users.map { $0[0] == " service-account" } == answer.map { $0["service_account"] as! Bool })
        for (row, user) in zip(users, answer) {
            for id in user["example_traces"] as! [String] {
                let n = try #require(traces.firstIndex { $0["trace_id"] as? String == id }) + 1
                #expect(row[6].contains("<a href=\"#request-\(n)\">\(id)</a>"))
            }
        }

        // Every trace a waterfall: one row and one bar per record of traces.ndjson, the reached ones marked.
        let sections = try ReportHTMLTests.matches(
            "<section class=\"trace\" id=\"request-(\\d+)\" data-trace-id=\"([0-9a-f]+)\">(.*?)</section>", in: dom)
        #expect(sections.map { $0[1] } == traces.map { $0["trace_id"] as! String })
        for (section, trace) in zip(sections, traces) {
            let records = try #require(trace["records"] as? [[String: Any]]).map(location)
            let reached = try #require(trace["reached"] as? [[String: Any]]).map(location)
            let rows = try ReportHTMLTests.matches(
                "<tr class=\"hop ([a-z]+)([^\"]*)\" data-hop=\"[a-z]+\" data-service=\"([^\"]*)\" "
                    + "data-record=\"([^\"]+)\".*?<div class=\"bar ([a-z]+)\" style=\"left:([0-9.]+)%;width:([0-9.]+)%\"",
                in: section[2])
            #expect(rows.map { $0[3] }.sorted() == records.sorted())
            #expect(Set(rows.filter { $0[1].contains("reached") }.map { $0[3] }) == Set(reached))
            for row in rows {
                let e = try #require(eventAt[row[3]])
                #expect(ReportHTMLTests.unescape(row[2]) == e["service"] as? String)
                #expect(row[0] == row[4])
                #expect(Double(row[6])! >= 0 && Double(row[5])! + Double(row[6])! <= 100.0)
            }
        }
        let png = s.root + "/access.png"
        _ = try ReportHTMLTests.chromium(
            ["--window-size=1200,900", "--screenshot=" + png, page], profile: s.root + "/profile-shot")
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: png)))
        #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        #expect(bytes.count > 20_000)
    }
}
