import Foundation
import LogFormat
import Logging
import OTLPBridge
import OTLPProto
import StoreQuery
import SyntheticTraffic
import TestSupport
import Testing

@testable import CollectorCore
@testable import CollectorParsers

#if canImport(Glibc)
    import Glibc
#endif

/// A hostile corpus goes through the receivers and the real DurableLog / SegmentWriter (and the real collector
/// process); then every file of the data directory is read: its raw bytes, every block decompressed, every
/// record decoded. No secret may appear anywhere.
@Suite(.serialized, .ownThreads) struct SecretsNeverReachDiskTests {
    /// The corpus: what is sent, and the secret strings that must not be stored.
    struct Corpus {
        var traces: OTLPTraceRequest
        var logsJSON: String
        var accessLines: String
        var secrets: [String]
        var aliceToken: String
    }

    static func corpus(tokens: TokenFixtures) throws -> Corpus {
        var secrets: [String] = []
        func secret(_ s: String) -> String {
            secrets.append(s)
            return s
        }
        let alice = try tokens.edToken(TokenFixtures.aliceClaims)
        let bob = TokenFixtures.unsigned(#"{"sub":"bob","email":"bob@example.com","roles":"reader writer"}"#)
        for t in [alice, bob] {
            secrets.append(t)
            secrets += t.split(separator: ".").dropFirst().map(String.init)  // the claims and signature segments
        }
        var e = span([
            Attribute("http.request.header.authorization", .array([.string("Bearer " + alice)])),
            Attribute("HTTP.REQUEST.HEADER.COOKIE", .string("sid=" + secret("CookieSid1234567"))),
            Attribute("http.response.header.set-cookie", .string("sid=" + secret("SetCookie7654321") + "; HttpOnly")),
            Attribute("http.request.header.proxy-authorization", .string("Basic " + secret("cHJveHk6cGFzc3dvcmQ="))),
            Attribute("url.full", .string("https://api.example.com/cb?code=" + secret("AuthCode0001") + "&state=ok")),
            Attribute("http.target", .string("/login?password=" + secret("Hunter2Hunter2"))),
            Attribute(
                "nested",
                .keyValueList([
                    Attribute("list", .array([.string("x"), .keyValueList([Attribute("t", .string("jwt " + bob))])]))
                ])),
            Attribute("db.password", .string(secret("DbPassw0rd!"))),
            Attribute("raw", .bytes(Array("token=\(secret("RawBytesToken9"))\u{FF}".utf8) + [0xFE])),
        ])
        e.name = "POST /reset/" + bob
        e.statusMessage = #"refresh failed: {"refresh_token":"\#(secret("RefreshTok555"))"}"#
        e.events = [
            SpanEvent(
                timeUnixNano: 1, name: "exception",
                attributes: [Attribute("exception.message", .string("bad token " + bob))])
        ]
        e.links = [
            SpanLink(
                traceID: TraceID(high: 7, low: 7), spanID: SpanID(value: 7),
                attributes: [Attribute("auth", .string("Bearer " + secret("LinkBearer888")))])
        ]
        e.resourceAttributes = [
            Attribute("service.name", .string("api")), Attribute("deploy.api_key", .string(secret("ResourceKey321"))),
        ]
        let traces = OTLPMapping.traceRequest(from: [e])

        let logsJSON = """
            {"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"auth"}}]},
             "scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000",
               "body":{"stringValue":"token response {\\"access_token\\":\\"\(secret("LogAccessTok42"))\\",\\"id_token\\":\\"\(bob)\\"}"},
               "attributes":[{"key":"http.request.header.authorization","value":{"stringValue":"Bearer \(secret("LogOpaque77"))"}}]}]}]}]}
            """
        let accessLines = [
            #"{"msec":"1700000000.5","request_uri":"/items?access_token=\#(secret("NginxQueryTok1"))","status":"200","remote_user":"carol","http_authorization":"Bearer \#(alice)","http_cookie":"s=\#(secret("NginxCookie2"))","request_id":"4bf92f3577b34da6a3ce929d0e0e4736"}"#,
            #"{"start_time":"2023-11-14T22:13:20.000Z","method":"GET","path":"/cb?id_token=\#(bob)&code=\#(secret("IstioCode3"))","response_code":"200","duration":"5","request_id":"6f1c2b9e-1111-2222-3333-444455556666","upstream_cluster":"outbound|80||api","authority":"api","x_forwarded_client_cert":"By=spiffe://cluster.local/ns/a/sa/api;URI=spiffe://cluster.local/ns/b/sa/web"}"#,
        ].joined(separator: "\n")
        return Corpus(traces: traces, logsJSON: logsJSON, accessLines: accessLines, secrets: secrets, aliceToken: alice)
    }

    /// Every file under `dir`, raw; every block of every segment, decompressed; every record, decoded.
    static func assertNoSecret(in dir: String, _ secrets: [String]) throws -> [AuditEvent] {
        let (events, leaks) = try leaks(in: dir, secrets)
        for leak in leaks { Issue.record(Comment(rawValue: leak)) }
        return events
    }

    /// Whether `n` occurs in `h` (memchr for the first byte, then memcmp: fast enough for thousands of needles).
    static func contains(_ h: UnsafeRawBufferPointer, _ n: UnsafeRawBufferPointer) -> Bool {
        guard n.count > 0, h.count >= n.count, let base = h.baseAddress, let needle = n.baseAddress else {
            return false
        }
        var start = base
        let end = base + (h.count - n.count + 1)
        while start < end {
            guard let hit = memchr(start, Int32(n[0]), end - start) else { return false }
            if memcmp(hit, needle, n.count) == 0 { return true }
            start = UnsafeRawPointer(hit) + 1
        }
        return false
    }

    /// The stored events, and each place a secret was found (raw file bytes, decompressed blocks, records).
    static func leaks(in dir: String, _ secrets: [String]) throws -> ([AuditEvent], [String]) {
        var leaks: [String] = []
        let needles = secrets.map { Array($0.utf8) }
        func scan(_ bytes: [UInt8], _ what: String) {
            bytes.withUnsafeBytes { haystack in
                for (s, needle) in zip(secrets, needles) where !needle.isEmpty {
                    let found = needle.withUnsafeBytes { n in Self.contains(haystack, n) }
                    if found { leaks.append("\(what) holds the secret \(s)") }
                }
            }
        }
        var files = 0
        var blocks = 0
        let enumerator = FileManager.default.enumerator(atPath: dir)
        while let relative = enumerator?.nextObject() as? String {
            let path = dir + "/" + relative
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else { continue }
            files += 1
            scan(Array(try Data(contentsOf: URL(fileURLWithPath: path))), path)
            if path.hasSuffix(DataDirectory.sealedSuffix) || path.hasSuffix(DataDirectory.openSuffix) {
                let reader = try SegmentReader(path: path, sealed: path.hasSuffix(DataDirectory.sealedSuffix))
                for b in reader.blocks.indices {
                    scan(try reader.blockPayload(b), "\(path) block \(b) (decompressed)")
                    blocks += 1
                }
            }
        }
        #expect(files >= 3 && blocks >= 1)
        var all = EventQuery()
        all.includeDuplicates = true
        let events = try AuditStore(directories: [DataDirectory(dir)]).search(all).map(\.event)
        for kind in EventKind.allCases {
            let text = events.filter { $0.kind == kind }.flatMap(allStrings).joined(separator: "\n")
            scan(Array(text.utf8), "a decoded \(kind) record")
        }
        return (events, leaks)
    }

    @Test func randomHostileTreesWrittenThroughTheDurableLogLeakNothing() async throws {
        let dir = NSTemporaryDirectory() + "/leakprop-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let logs = CapturedLogs()
        let logger = logs.logger()
        let log = try DurableLog(directory: DataDirectory(dir), logger: logger)
        let service = IngestService(log: log, normalizer: testNormalizer(), logger: logger)
        var secrets: [String] = []
        var events: [AuditEvent] = []
        var seeds = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
        for _ in 0..<300 {
            let (e, s) = RedactionTests.hostileEvent(seed: seeds.next())
            events.append(e)
            secrets += s
        }
        // Through the receiver as OTLP protobuf, so the wire format and the mapping are part of the test.
        let r = await service.handle(
            method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: nil,
            body: try OTLPMapping.traceRequest(from: events).serializedBytes())
        #expect(r.status == 200)
        try await log.close()
        let (stored, leaks) = try Self.leaks(in: dir, secrets)
        #expect(stored.count == events.count)
        #expect(leaks.isEmpty, "\(leaks.prefix(5))")
        Self.assertNoSecretLogged(logs, secrets)
    }

    /// No secret in any message or metadata of what the services logged.
    static func assertNoSecretLogged(_ logs: CapturedLogs, _ secrets: [String]) {
        let entries = logs.all
        let leaks = entries.flatMap { entry in
            secrets.filter { !$0.isEmpty && entry.rendered.contains($0) }.map { "\(entry.message): \($0)" }
        }
        #expect(leaks.isEmpty, "\(leaks.prefix(5))")
    }

    @Test func theLeakDetectorFindsSecretsWrittenWithoutTheNormalizer() async throws {
        // A control: the same corpus written raw must be caught in the raw bytes, the decompressed blocks (the
        // LZ4 blocks hide some secrets from a raw scan) and the decoded records.
        let corpus = try Self.corpus(tokens: TokenFixtures())
        let dir = NSTemporaryDirectory() + "/leakctl-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let log = try DurableLog(directory: DataDirectory(dir), logger: logger)
        _ = try await log.append(OTLPMapping.events(from: corpus.traces).events)
        try await log.close()
        let (_, leaks) = try Self.leaks(in: dir, corpus.secrets)
        #expect(leaks.contains { $0.contains("(decompressed)") })
        #expect(leaks.contains { $0.hasPrefix("a decoded span record") })
        #expect(Set(corpus.secrets.filter { s in leaks.contains { $0.hasSuffix(s) } }).count >= 10)
    }

    static func check(_ events: [AuditEvent], _ corpus: Corpus) {
        #expect(events.count == 4)
        let span = events.first { $0.kind == .span }
        #expect(span?.user?.subject == "alice")
        #expect(span?.user?.tokenFingerprint != nil)
        #expect(redactedList(span!).count >= 12)
        let log = events.first { $0.kind == .log }
        #expect(log?.user?.subject == "bob")  // from the id_token in the body
        let edge = events.first { $0.kind == .access && $0.source == .edge }
        #expect(edge?.user?.subject == "carol")  // the edge's field wins over the token
        #expect(edge?.http?.target?.hasPrefix("/items?access_token=[redacted:param.access_token") == true)
        let mesh = events.first { $0.kind == .access && $0.source == .sidecar }
        #expect(mesh?.workload == "spiffe://cluster.local/ns/b/sa/web")
        #expect(mesh?.user?.subject == "bob")
    }

    @Test func inProcessThroughTheReceiversAndTheDurableLog() async throws {
        let corpus = try Self.corpus(tokens: TokenFixtures())
        let dir = NSTemporaryDirectory() + "/leak-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let logs = CapturedLogs()
        let logger = logs.logger()
        let log = try DurableLog(directory: DataDirectory(dir), logger: logger)
        let service = IngestService(log: log, normalizer: testNormalizer(), logger: logger)
        let a = await service.handle(
            method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: nil,
            body: try corpus.traces.serializedBytes())
        let b = await service.handle(
            method: "POST", path: "/v1/logs", contentType: "application/json", contentEncoding: nil,
            body: Array(corpus.logsJSON.utf8))
        let c = await service.handle(
            method: "POST", path: "/v1/access", contentType: "application/x-ndjson", contentEncoding: nil,
            body: Array(corpus.accessLines.utf8))
        #expect([a.status, b.status, c.status] as [Int] == [200, 200, 200])
        // Check the active segment too, before sealing.
        _ = try Self.assertNoSecret(in: dir, corpus.secrets)
        // A sender refused for a bearer token nobody holds is logged; the token must not be.
        service.replaceSenders(SenderAuthenticator(senders: []))
        let refused = service.authorize(
            .otlpHTTPTraces, authorization: "Bearer \(corpus.aliceToken)", identity: nil, peer: nil)
        #expect(throws: AuthRefusal.self) { try refused.get() }
        try await log.close()
        Self.check(try Self.assertNoSecret(in: dir, corpus.secrets), corpus)
        #expect(logs.all.contains { $0.message == "refused a sender" })
        Self.assertNoSecretLogged(logs, corpus.secrets + [corpus.aliceToken])
    }

    @Test func throughTheRealCollectorProcess() async throws {
        let tokens = TokenFixtures()
        let corpus = try Self.corpus(tokens: tokens)
        let dir = CollectorProcessTests.tempDir()
        let config = NSTemporaryDirectory() + "/leakcfg-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: config)
        }
        try tokens.jwks.write(toFile: config + "/jwks.json", atomically: true, encoding: .utf8)
        try "a-collector-secret-of-some-length\n".write(toFile: config + "/hmac", atomically: true, encoding: .utf8)
        let c = try CollectorProcessTests.Running(
            data: dir,
            extra: [
                "--fsync", "always", "--jwks-file", config + "/jwks.json", "--redaction-hmac-secret-file",
                config + "/hmac",
            ])
        #expect(
            try await c.post("/v1/traces", try corpus.traces.serializedBytes(), type: "application/x-protobuf").0 == 200
        )
        #expect(try await c.post("/v1/logs", Array(corpus.logsJSON.utf8), type: "application/json").0 == 200)
        #expect(try await c.post("/v1/access", Array(corpus.accessLines.utf8), type: "application/x-ndjson").0 == 200)
        c.stop(signal: SIGTERM)
        #expect(c.process.terminationStatus == 0)
        let events = try Self.assertNoSecret(in: dir, corpus.secrets)
        Self.check(events, corpus)
        // The process verified alice's token with the JWKS and fingerprinted markers with its secret.
        let span = events.first { $0.kind == .span }!
        #expect(span.user?.origin == .verifiedToken)
        let marker = span.attributes.value(forKey: "db.password")?.stringValue ?? ""
        var expected = NormalizerOptions()
        expected.redaction.hmacSecret = Array("a-collector-secret-of-some-length".utf8)
        #expect(
            marker
                == Fingerprinter(secret: expected.redaction.hmacSecret).marker(.key, secret: Array("DbPassw0rd!".utf8)))
    }
}
