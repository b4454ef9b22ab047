// The completeness ledger (issue 17): every sealed segment ends with what each receiver and each authenticated
// sender delivered, accepted, rejected (by reason) and dropped in the segment's period, covered by its seal.
// In process: the writer hook's exactness and a tampered ledger failing verification. Over real processes: a
// collector taking refused and accepted traffic from two senders, restarted cleanly and killed with SIGKILL, and
// `auditq completeness`, `search` and `evidence`/`verify --bundle` over what it stored.
import Foundation
import LogFormat
import Logging
import OTLPBridge
import StoreQuery
import TestSupport
import Testing

@testable import CollectorCore

@Suite(.serialized, .ownThreads) struct LedgerTests {
    static let logger = Logger(label: "ledger-tests")

    static func event(_ i: Int, service: String = "orders") -> AuditEvent {
        AuditEvent(
            kind: .span, startTimeUnixNano: 1_700_000_000_000_000_000 + UInt64(i) * 1_000, service: service,
            source: .app)
    }

    /// The ledger records of a sealed segment file, decoded.
    static func ledgers(_ path: String) throws -> [LedgerRecord] {
        let reader = try SegmentReader(path: path, sealed: true)
        return try reader.scan(timeRange: nil).map(\.event).filter(LedgerRecord.isLedger).map { try LedgerRecord($0) }
    }

    // MARK: In process

    @Test func eachSegmentEndsWithTheLedgerOfItsAppendsAndATamperedLedgerFailsVerification() async throws {
        let dir = TempDir()
        let ledger = CompletenessLedger()
        var options = DurableLog.Options()
        options.fsync = .always
        options.writer.trailer = ledger
        options.writer.sealLayout = .rows
        options.writer.codec = .none  // record bytes stay readable in the file, to be tampered with below
        let log = try DurableLog(directory: DataDirectory(dir.path), options: options, logger: Self.logger)
        let mesh = CompletenessLedger.origin(receiver: "otlp_http_traces", sender: "mesh")
        // Counted by receivers as requests arrive; accepted only as the writer takes the batches.
        ledger.received("otlp_http_traces", sender: "mesh", items: 9)
        ledger.rejected("otlp_http_traces", sender: "mesh", reason: "string_limit", items: 2)
        _ = try await log.append((0..<4).map { Self.event($0) }, origin: mesh)
        _ = try await log.append((4..<7).map { Self.event($0) }, origin: mesh)
        _ = try await log.append([Self.event(7, service: "edge")], origin: "access_ndjson")
        let first = try #require(try await log.sealNow())
        // The next period: its own counts only.
        ledger.received("access_ndjson", sender: nil, items: 2)
        _ = try await log.append([Self.event(8), Self.event(9)], origin: "access_ndjson")
        try await log.close()

        let d = DataDirectory(dir.path)
        let entries = try d.currentCatalog(repair: false).entries.sorted { $0.sequence < $1.sequence }
        #expect(entries.count == 2)
        let a = try Self.ledgers(d.path(relative: first.relativePath))
        #expect(a.count == 1)
        let l = try #require(a.first)
        #expect(l.firstPeriod && !l.final)
        #expect(
            l.receivers["otlp_http_traces"]
                == LedgerCounts(received: 9, accepted: 7, rejected: ["string_limit": 2]))
        #expect(l.receivers["access_ndjson"] == LedgerCounts(accepted: 1))
        #expect(l.senders == ["mesh": LedgerCounts(received: 9, accepted: 7, rejected: ["string_limit": 2])])
        #expect(first.seal.recordCount == 9)  // 8 events and the ledger, under the seal
        let b = try Self.ledgers(d.path(relative: entries[1].relativePath))
        #expect(b.count == 1)
        #expect(b.first?.receivers == ["access_ndjson": LedgerCounts(received: 2, accepted: 2)])
        #expect(b.first?.periodStart == l.periodEnd && b.first?.final == true && b.first?.firstPeriod == false)

        // The store sums both; queries leave the ledgers out unless asked.
        let store = try AuditStore(directories: [d])
        let report = try store.completeness(nil)
        #expect(report.isComplete && report.gaps.isEmpty, "\(report.notes) \(report.gaps)")
        // The rejections are listed against their segment.
        #expect(report.notes.map(\.kind) == [.losses] && report.notes.first?.sequence == first.sequence)
        #expect(report.receivers["access_ndjson"]?.accepted == 3 && report.receivers["otlp_http_traces"]?.accepted == 7)
        // A range takes the ledgers whose period overlaps it: here only the second's.
        let second = try #require(b.first)
        let late = try store.completeness((second.periodStart + 1)...second.periodEnd)
        #expect(late.ledgers.count == 1 && late.receivers == ["access_ndjson": LedgerCounts(received: 2, accepted: 2)])
        #expect(late.isComplete && late.notes.isEmpty)
        #expect(try store.search(EventQuery(terms: [])).count == 10)
        #expect(try store.search(EventQuery(terms: [.init(.service, .string(LedgerRecord.service))])).isEmpty)
        var all = EventQuery(terms: [])
        all.filter.includeLedgers = true
        #expect(try store.search(all).count == 12)

        // Change one digit of the first ledger's text, and mend both block CRCs so only the seal can tell.
        let path = d.path(relative: first.relativePath)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let needle = Array("completeness ledger: received ".utf8)
        let at = try #require(
            (0...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle })
        let digit = at + needle.count
        #expect(bytes[digit] == UInt8(ascii: "9"))  // the 9 received over OTLP; the access event was only accepted
        bytes[digit] = UInt8(ascii: "8")
        var offset = FormatConstants.fileHeaderSize
        while true {
            let stored =
                Int(bytes[offset + 8]) | Int(bytes[offset + 9]) << 8 | Int(bytes[offset + 10]) << 16
                | Int(bytes[offset + 11]) << 24
            if digit < offset + 48 + stored {
                let crc = Checksum.crc32(bytes[(offset + 48)..<(offset + 48 + stored)])
                for k in 0..<4 { bytes[offset + 40 + k] = UInt8(truncatingIfNeeded: crc >> (8 * k)) }
                let headerCRC = Checksum.crc32(bytes[offset..<(offset + 44)])
                for k in 0..<4 { bytes[offset + 44 + k] = UInt8(truncatingIfNeeded: headerCRC >> (8 * k)) }
                break
            }
            offset += 48 + stored
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let verified = Verifier.verifySegment(path: path)
        #expect(!verified.isValid)
        #expect(verified.problems.contains { $0.kind == .rootMismatch }, "\(verified.problems)")
        #expect(!verified.problems.contains { $0.kind == .blockDamaged }, "\(verified.problems)")
    }

    @Test func aSegmentMissingFromTheStoreLeavesItsPeriodUnknown() async throws {
        let dir = TempDir()
        let ledger = CompletenessLedger()
        var options = DurableLog.Options()
        options.writer.trailer = ledger
        let log = try DurableLog(directory: DataDirectory(dir.path), options: options, logger: Self.logger)
        var sealed: [CatalogEntry] = []
        for k in 0..<3 {
            _ = try await log.append([Self.event(k)], origin: "access_ndjson")
            sealed.append(try #require(try await log.sealNow()))
        }
        try await log.close()
        let d = DataDirectory(dir.path)
        // The middle segment is gone (as if expired, quarantined or never copied), and so is the catalog naming it.
        try FileManager.default.removeItem(atPath: d.path(relative: sealed[1].relativePath))
        try FileManager.default.removeItem(atPath: d.catalogPath)
        let report = try AuditStore(directories: [d]).completeness(nil)
        #expect(report.ledgers.count == 2 && report.receivers["access_ndjson"]?.accepted == 2)
        #expect(report.gaps.count == 1 && report.gaps.first?.kind == .unknown, "\(report.gaps)")
        #expect(report.gaps.first?.detail.contains("not in the store") == true)
        #expect(!report.isComplete)
    }

    @Test func aSegmentThatFailsToCloseGetsOneLedgerWhenItFinallyDoes() async throws {
        // A refused close (here: nothing to write, then a trailer that is asked twice) must not leave two ledgers.
        let dir = TempDir()
        let ledger = CompletenessLedger()
        var options = WriterOptions()
        options.trailer = ledger
        let writer = try SegmentWriter(directory: DataDirectory(dir.path), options: options, logger: Self.logger)
        try writer.append([Self.event(1)])
        ledger.appended(origin: "access_ndjson", count: 1)
        // Asked for its records but never told they were written (as when the close fails): nothing is lost.
        _ = ledger.trailer(closing: writer.activeSequence, final: false)
        let entry = try #require(try writer.seal())
        let found = try Self.ledgers(DataDirectory(dir.path).path(relative: entry.relativePath))
        #expect(found.count == 1)
        #expect(found.first?.receivers["access_ndjson"]?.accepted == 1)
        #expect(ledger.current.receivers.isEmpty)
    }
}

// MARK: Real processes

extension LedgerTests {
    static let meshToken = "mesh-ledger-0123456789abcdef"
    static let edgeToken = "edge-ledger-fedcba9876543210"

    static func sendersFile(_ dir: String) throws -> String {
        func hash(_ s: String) -> String { Hex.sha256(Array(s.utf8)) }
        let path = dir + "/senders.yaml"
        try Data(
            """
            senders:
              - name: mesh
                token_sha256: \(hash(meshToken))
                receivers: [otlp_http, otlp_grpc]
              - name: edge
                token_sha256: \(hash(edgeToken))
                receivers: [access]
            """.utf8
        ).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    static func post(_ base: String, _ path: String, token: String, _ body: [UInt8], type: String) async throws -> Int {
        try await SecureIngestTests.post(base + path, token: token, body: body, type: type).0
    }

    static func accessLines(_ n: Int, from: Int) -> String {
        (0..<n).map { i in
            #"{"msec":"1793613600.\#(String(format: "%03d", from + i))","request_method":"GET","request_uri":"/orders/\#(from + i)","status":"200","upstream_http_x_user_id":"alice"}"#
        }.joined(separator: "\n") + "\n"
    }

    /// One round of traffic from both senders, with refused input of each kind; returns what each sent and
    /// what the collector answered, as the ledger must count it.
    static func traffic(_ c: CollectorProcessTests.Running, seed: UInt64) async throws -> (
        mesh: LedgerCounts, edge: LedgerCounts, syslog: LedgerCounts, traces: LedgerCounts
    ) {
        var mesh = LedgerCounts()
        for k in 0..<3 {
            let spans = CollectorProcessTests.spans(seed: seed + UInt64(k), 10)
            let body: [UInt8] = try OTLPMapping.traceRequest(from: spans).serializedBytes()
            #expect(try await post(c.base, "/v1/traces", token: meshToken, body, type: "application/x-protobuf") == 200)
            mesh.received += 10
            mesh.accepted += 10
        }
        // Malformed protobuf, a content type the route does not take, a body over --max-body-bytes.
        #expect(
            try await post(c.base, "/v1/traces", token: meshToken, [1, 2, 3], type: "application/x-protobuf") == 400)
        #expect(try await post(c.base, "/v1/traces", token: meshToken, [1, 2, 3], type: "text/xml") == 415)
        let big: [UInt8] = try OTLPMapping.traceRequest(from: CollectorProcessTests.spans(seed: seed + 9, 200))
            .serializedBytes()
        #expect(big.count > 16_384)
        #expect(try await post(c.base, "/v1/traces", token: meshToken, big, type: "application/x-protobuf") == 413)
        mesh.received += 3
        mesh.rejected = ["malformed": 1, "unsupported_media_type": 1, "too_large": 1]
        // Refused by sender authentication: a token nobody holds (401, no sender), and the edge's token on a
        // receiver the edge may not use (403, counted under the edge too).
        let spans = CollectorProcessTests.spans(seed: seed + 20, 2)
        let refused: [UInt8] = try OTLPMapping.traceRequest(from: spans).serializedBytes()
        #expect(
            try await post(c.base, "/v1/traces", token: "not-a-sender-token", refused, type: "application/x-protobuf")
                == 401)
        #expect(try await post(c.base, "/v1/traces", token: edgeToken, refused, type: "application/x-protobuf") == 403)
        var traces = mesh
        traces.received += 2
        traces.rejected["auth_unknown_token"] = 1
        traces.rejected["auth_receiver_not_allowed"] = 1
        var edge = LedgerCounts(received: 1, rejected: ["auth_receiver_not_allowed": 1])
        // Access lines: four good, two that are not access events.
        let lines = accessLines(4, from: Int(seed % 500)) + "not json\n{\"msec\": [1]}\n"
        #expect(
            try await post(c.base, "/v1/access", token: edgeToken, Array(lines.utf8), type: "application/x-ndjson")
                == 200)
        edge.received += 6
        edge.accepted += 4
        edge.rejected["invalid_line"] = 2
        // Syslog over UDP, no sender: two nginx lines and one that is not syslog. Wait until all three are read
        // and the two stored (acknowledged: a SIGKILL after this loses none of them).
        func udp(_ what: String) async throws -> Double {
            try await c.metrics()["audit_collector_\(what)_items_total{receiver=\"syslog_udp\"}"] ?? 0
        }
        let before = (try await udp("received"), try await udp("accepted"))
        let good = Array("<190>Nov  2 10:00:00 edge-1 nginx: \(SyslogTests.line)".utf8)
        SyslogTests.udpSend([good, good, Array("garbage".utf8)], port: c.syslogUDPPort)
        var now = before
        for _ in 0..<400 where now.0 < before.0 + 3 || now.1 < before.1 + 2 {
            try await Task.sleep(for: .milliseconds(25))
            now = (try await udp("received"), try await udp("accepted"))
        }
        #expect(now.0 == before.0 + 3 && now.1 == before.1 + 2)
        let syslog = LedgerCounts(received: 3, accepted: 2, rejected: ["invalid_line": 1])
        return (mesh, edge, syslog, traces)
    }

    @Test func ledgersOfARestartedCollectorAddUpToWhatTheSendersSentAndProveInBundles() async throws {
        let data = CollectorProcessTests.tempDir()
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let senders = try Self.sendersFile(data)
        let store = data + "/store"
        let args = [
            "--fsync", "always", "--senders-file", senders, "--max-body-bytes", "16384", "--segment-bytes", "2048",
        ]
        var expected = (mesh: LedgerCounts(), edge: LedgerCounts(), syslog: LedgerCounts(), traces: LedgerCounts())
        for round in 0..<2 {
            let c = try CollectorProcessTests.Running(data: store, extra: args)
            let sent = try await Self.traffic(c, seed: UInt64(round * 100 + 1))
            expected.mesh.add(sent.mesh)
            expected.edge.add(sent.edge)
            expected.syslog.add(sent.syslog)
            expected.traces.add(sent.traces)
            c.stop(signal: SIGTERM)
        }

        let auditq = ChildProcess.product("auditq")
        let r = try ChildProcess.run(auditq, ["completeness", "--data", store, "--format", "json"], within: 60)
        #expect(r.status == 0, "\(r.stderr)\n\(r.stdout)")
        var lines: [String: [String: Any]] = [:]
        for line in r.stdout.split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            lines["\(o["type"] ?? "")/\(o["name"] ?? "")"] = o
        }
        func counts(_ key: String) -> LedgerCounts? {
            guard let o = lines[key] else { return nil }
            return LedgerCounts(
                received: (o["received"] as? NSNumber)?.uint64Value ?? 0,
                accepted: (o["accepted"] as? NSNumber)?.uint64Value ?? 0,
                rejected: ((o["rejected_by_reason"] as? [String: NSNumber]) ?? [:]).mapValues(\.uint64Value),
                dropped: (o["dropped"] as? NSNumber)?.uint64Value ?? 0)
        }
        #expect(counts("sender/mesh") == expected.mesh)
        #expect(counts("sender/edge") == expected.edge)
        #expect(counts("receiver/otlp_http_traces") == expected.traces)
        // The edge's refused request went to the traces receiver: the access receiver has the rest of its counts.
        var access = expected.edge
        access.received -= access.rejected.removeValue(forKey: "auth_receiver_not_allowed") ?? 0
        #expect(access.received == 12)
        #expect(counts("receiver/access_ndjson") == access)
        #expect(counts("receiver/syslog_udp") == expected.syslog)  // nothing dropped by the kernel on loopback
        #expect(lines.keys.filter { $0.hasPrefix("sender/") }.count == 2, "syslog has no sender")
        let summary = try #require(lines["summary/"])
        #expect(summary["complete"] as? Bool == true)
        #expect(((summary["segments"] as? NSNumber)?.intValue ?? 0) > 2, "small segments: several per run")
        // The restart is a clean stop between two runs, said as such; no segment lacks a ledger.
        #expect(lines.keys.filter { $0.hasPrefix("gap/") }.count == 1)
        #expect(r.stdout.contains(#""kind":"stopped""#))
        #expect(!r.stdout.contains("no_ledger") && !r.stdout.contains("bad_ledger"))
        // Segments with rejections are listed.
        #expect(r.stdout.contains(#""kind":"losses""#))

        // Queries do not show the ledgers unless asked.
        let search = try ChildProcess.run(
            auditq, ["search", "--data", store, "--service", LedgerRecord.service, "--format", "json"], within: 60)
        #expect(search.status == 0 && search.stdout.isEmpty, "\(search.stdout.prefix(300))")
        let asked = try ChildProcess.run(
            auditq,
            ["search", "--data", store, "--service", LedgerRecord.service, "--include-ledgers", "--format", "json"],
            within: 60)
        #expect(asked.stdout.split(separator: "\n").count == ((summary["ledgers"] as? NSNumber)?.intValue ?? -1))
        let count = try ChildProcess.run(
            auditq, ["count", "--data", store, "--by", "service", "--format", "csv"], within: 60)
        #expect(count.status == 0 && !count.stdout.contains(LedgerRecord.service), "\(count.stderr)")

        // An evidence bundle of alice's requests carries the ledgers of its segments, proven, and verifies.
        let bundle = data + "/bundle"
        let ev = try ChildProcess.run(
            auditq,
            [
                "evidence", "--data", store, "--user", "alice", "--from", "2026-11-01T00:00:00Z", "--to",
                "2026-11-04T00:00:00Z", "--out", bundle,
            ], within: 60)
        #expect(ev.status == 0, "\(ev.stderr)")
        let ledgerLines = try String(contentsOfFile: bundle + "/ledgers.ndjson", encoding: .utf8)
            .split(separator: "\n")
        #expect(!ledgerLines.isEmpty)
        let segments = Set(
            try String(contentsOfFile: bundle + "/activity.ndjson", encoding: .utf8).split(separator: "\n")
                .flatMap { line -> [String] in
                    let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    return ((o?["records"] as? [[String: Any]]) ?? []).map { "\($0["node"]!)/\($0["segment"]!)" }
                })
        #expect(ledgerLines.count == segments.count, "one ledger per segment drawn on")
        #expect(try String(contentsOfFile: bundle + "/report.txt", encoding: .utf8).contains("completeness: "))
        let ok = try ChildProcess.run(auditq, ["verify", "--bundle", bundle], within: 60)
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")

        // A ledger's proven bytes changed (and the manifest mended to match) fail: its proof no longer holds.
        let proofsPath = bundle + "/proofs.ndjson"
        var proofs = try String(contentsOfFile: proofsPath, encoding: .utf8).split(separator: "\n").map(String.init)
        let firstLedger = try #require(
            try JSONSerialization.jsonObject(with: Data(ledgerLines[0].utf8)) as? [String: Any])
        let ledgerAt = try #require(firstLedger["record"] as? [String: Any])
        let index = try #require(
            proofs.firstIndex {
                $0.contains(#""ordinal":\#(ledgerAt["ordinal"]!)"#)
                    && $0.contains(#""segment":\#(ledgerAt["segment"]!)"#)
            })
        var proof = try #require(try JSONSerialization.jsonObject(with: Data(proofs[index].utf8)) as? [String: Any])
        var canonical = [UInt8](try #require(Data(base64Encoded: proof["canonical"] as! String)))
        let needle = Array("completeness ledger: received ".utf8)
        let at = try #require(
            (0...(canonical.count - needle.count)).first { Array(canonical[$0..<($0 + needle.count)]) == needle })
        canonical[at + needle.count] =
            canonical[at + needle.count] == UInt8(ascii: "1") ? UInt8(ascii: "2") : UInt8(ascii: "1")
        proof["canonical"] = Data(canonical).base64EncodedString()
        proofs[index] = String(
            decoding: try JSONSerialization.data(
                withJSONObject: proof, options: [.sortedKeys, .withoutEscapingSlashes]),
            as: UTF8.self)
        try Data((proofs.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: proofsPath))
        try Self.mendManifest(bundle)
        let bad = try ChildProcess.run(auditq, ["verify", "--bundle", bundle], within: 60)
        #expect(bad.status == 3, "\(bad.stdout)\(bad.stderr)")
        #expect(bad.stdout.contains("proofs.ndjson") || bad.stderr.contains("proofs.ndjson"))
    }

    /// Real kernel drops: the collector is stopped (SIGSTOP) while syslog datagrams arrive at a socket whose
    /// receive buffer holds a few of them, so the kernel drops the rest. The ledger must say so, exactly: every
    /// datagram sent was either read (and stored) or counted as dropped, and the period shows as a loss.
    @Test func kernelDropsOnSyslogUDPAreCountedInTheLedgerExactly() async throws {
        let data = CollectorProcessTests.tempDir()
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let config = data + "/collector.yaml"
        try Data("receivers:\n  syslog:\n    udp_receive_buffer_bytes: 4096\n".utf8)
            .write(to: URL(fileURLWithPath: config))
        let store = data + "/store"
        let c = try CollectorProcessTests.Running(data: store, extra: ["--config", config, "--fsync", "always"])
        let line = Array("<190>Nov  2 10:00:00 edge-1 nginx: \(SyslogTests.line)".utf8)
        c.process.signal(SIGSTOP)
        let sent = Self.udpSendCounted(Array(repeating: line, count: 400), port: c.syslogUDPPort)
        c.process.signal(SIGCONT)
        #expect(sent == 400)
        // Wait until everything the kernel kept has been read: received + kernel drops account for every datagram.
        func sample(_ name: String) async throws -> UInt64 { UInt64(try await c.metrics()[name] ?? 0) }
        var read: UInt64 = 0
        var drops: UInt64 = 0
        for _ in 0..<400 {
            read = try await sample(#"audit_collector_received_items_total{receiver="syslog_udp"}"#)
            drops = try await sample("audit_collector_syslog_udp_kernel_drops")
            if read + drops >= UInt64(sent) { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect(drops > 0, "a 4 KiB receive buffer cannot hold 400 datagrams")
        #expect(read + drops == UInt64(sent))
        c.stop(signal: SIGTERM)

        let r = try ChildProcess.run(
            ChildProcess.product("auditq"), ["completeness", "--data", store, "--format", "json"], within: 60)
        let objects = try r.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let udp = try #require(
            objects.first { $0["type"] as? String == "receiver" && $0["name"] as? String == "syslog_udp" })
        #expect((udp["dropped"] as? NSNumber)?.uint64Value == drops)
        #expect((udp["received"] as? NSNumber)?.uint64Value == read)
        #expect((udp["accepted"] as? NSNumber)?.uint64Value == read)
        #expect(objects.contains { $0["kind"] as? String == "losses" }, "\(r.stdout)")
    }

    /// Sends each datagram once; the number sendto accepted.
    static func udpSendCounted(_ datagrams: [[UInt8]], port: Int) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var sent = 0
        for d in datagrams {
            let n = d.withUnsafeBytes { b in
                withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            if n == d.count { sent += 1 }
        }
        return sent
    }

    /// Rewrites manifest.json to match the files as they are now.
    static func mendManifest(_ bundle: String) throws {
        let path = bundle + "/manifest.json"
        var m = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let files = (m["files"] as? [[String: Any]] ?? []).map { f -> [String: Any] in
            let name = f["path"] as! String
            let bytes = (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: bundle + "/" + name)))) ?? []
            return ["path": name, "bytes": bytes.count, "sha256": Hex.sha256(bytes)]
        }
        m["files"] = files
        try JSONSerialization.data(withJSONObject: m, options: [.sortedKeys, .withoutEscapingSlashes])
            .write(to: URL(fileURLWithPath: path))
    }

    @Test func aKilledCollectorsRecoveredSegmentSaysItsPeriodIsUnknownAndTheRestStayExact() async throws {
        let data = CollectorProcessTests.tempDir()
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let senders = try Self.sendersFile(data)
        let store = data + "/store"
        let args = [
            "--fsync", "always", "--senders-file", senders, "--max-body-bytes", "16384", "--segment-bytes", "2048",
        ]
        var accepted: UInt64 = 0
        for round in 0..<3 {
            // The killed run keeps one segment open (no size roll), so the kill always leaves one to recover.
            let c = try CollectorProcessTests.Running(data: store, extra: round == 1 ? Array(args.prefix(6)) : args)
            let sent = try await Self.traffic(c, seed: UInt64(round * 100 + 7))
            accepted += sent.mesh.accepted + sent.edge.accepted + sent.syslog.accepted
            c.stop(signal: round == 1 ? SIGKILL : SIGTERM)
        }
        let s = try AuditStore(directories: [DataDirectory(store)])
        let report = try s.completeness(nil)
        // The segment the kill left open was recovered without a ledger: its period is unknown, said as a gap
        // and a segment note; every other segment's ledger matches its records exactly, none twice.
        let unknown = report.gaps.filter { $0.kind == .unknown }
        #expect(unknown.count == 1, "\(report.gaps)")
        #expect(unknown.first?.detail.contains("without a ledger") == true)
        // The killed run sealed nothing with a ledger: from the first run's final ledger to the third run's first
        // one is one unknown stretch (the stop before the killed run included).
        #expect(report.gaps.count == 1, "\(report.gaps)")
        let noLedger = report.notes.filter { $0.kind == .noLedger }
        #expect(noLedger.count == 1, "\(report.notes)")
        #expect(!report.notes.contains { $0.kind == .badLedger }, "\(report.notes)")
        #expect(!report.isComplete)
        // What the ledgers say was accepted, plus the records of the unledgered segment, is every acknowledged item.
        let unledgered = s.sealedSegments.filter { e in noLedger.contains { $0.sequence == e.entry.sequence } }
            .reduce(UInt64(0)) { $0 + UInt64($1.entry.seal.recordCount) }
        let ledgered = report.receivers.values.reduce(UInt64(0)) { $0 + $1.accepted }
        #expect(ledgered + unledgered == accepted)
        let auditq = ChildProcess.product("auditq")
        let r = try ChildProcess.run(auditq, ["completeness", "--data", store], within: 60)
        #expect(r.status == 3, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("NOT complete") && r.stdout.contains("gap unknown"), "\(r.stdout)")
    }
}
