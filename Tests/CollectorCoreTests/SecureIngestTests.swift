import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import LogFormat
import OTLPBridge
import OTLPGRPC
import StoreQuery
import TestSupport
import Testing

@testable import CollectorCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A throwaway PKI made with the openssl command: a CA, two server certificates for 127.0.0.1 (the second
/// for the reload test), a client certificate carrying a SPIFFE id, and a client certificate of another CA.
struct TestPKI {
    let dir: String
    static let clientSPIFFE = "spiffe://cluster.local/ns/edge/sa/nginx"

    init() throws {
        dir = CollectorProcessTests.tempDir() + "-pki"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try ca("ca")
        try ca("rogue-ca")
        try leaf("server", ca: "ca", ext: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
        try leaf("server2", ca: "ca", ext: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
        try leaf("client", ca: "ca", ext: "subjectAltName=URI:\(Self.clientSPIFFE)\nextendedKeyUsage=clientAuth")
        try leaf(
            "subject-client", ca: "ca", ext: "extendedKeyUsage=clientAuth", subject: "/O=Example/CN=batch-exporter")
        try leaf(
            "rogue-client", ca: "rogue-ca", ext: "subjectAltName=URI:\(Self.clientSPIFFE)\nextendedKeyUsage=clientAuth")
    }

    func path(_ name: String) -> String { dir + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }

    private func ca(_ name: String) throws {
        try Self.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            path(name + ".key"),
            "-out", path(name + ".pem"), "-days", "2", "-subj", "/CN=\(name)",
        ])
        chmod(path(name + ".key"), 0o600)
    }

    private func leaf(_ name: String, ca: String, ext: String, subject: String? = nil) throws {
        try Self.openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path(name + ".key"),
            "-out", path(name + ".csr"), "-subj", subject ?? "/CN=\(name)",
        ])
        chmod(path(name + ".key"), 0o600)
        try Data((ext + "\nbasicConstraints=CA:FALSE\n").utf8).write(to: URL(fileURLWithPath: path(name + ".ext")))
        try Self.openssl([
            "x509", "-req", "-in", path(name + ".csr"), "-CA", path(ca + ".pem"), "-CAkey", path(ca + ".key"),
            "-CAcreateserial", "-out", path(name + ".pem"), "-days", "2", "-extfile", path(name + ".ext"),
        ])
    }

    static func openssl(_ args: [String]) throws {
        let p = try ChildProcess.run("/usr/bin/openssl", args)
        guard p.status == 0 else {
            let message = "openssl \(args.first ?? ""): \(p.stderr)"
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: message])
        }
    }

    /// SHA-256 of a PEM certificate's DER, hex (what the client script prints for the peer certificate).
    func fingerprint(_ name: String) throws -> String {
        let text = try ChildProcess.run(
            "/usr/bin/openssl", ["x509", "-in", path(name + ".pem"), "-noout", "-fingerprint", "-sha256"]
        ).stdout
        return String(text.split(separator: "=").last ?? "").replacingOccurrences(of: ":", with: "").lowercased()
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// TLS, mTLS, sender authentication, the certificate reload and the signing key, against the real collector
/// with real clients: the OpenTelemetry Python SDK's exporters, Python's ssl module, grpc-swift and curl.
@Suite(.serialized, .ownThreads) struct SecureIngestTests {
    static let script = PythonSDKTests.root.appendingPathComponent("Tests/clients/secure_export.py").path

    /// Runs the client script; returns its JSON output. requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE win
    /// over a session's own CA file (a known requests behaviour), which would hide the exporter's
    /// certificate_file: the client must not inherit them.
    static func client(_ args: [String]) throws -> [String: Any] {
        try PythonSDKTests.run(
            venv: ".venv-otel", script: script, args: args,
            environment: ProcessInfo.processInfo.environment.filter {
                !["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"].contains($0.key)
            })
    }

    /// `curl` over HTTPS: (status, body); status 0 when the connection or handshake failed.
    static func curl(_ url: String, ca: String, extra: [String] = []) throws -> (Int, String) {
        let arguments = ["-s", "--cacert", ca, "-o", "-", "-w", "\n%{http_code}", url] + extra
        let text = try ChildProcess.run("/usr/bin/curl", arguments, within: 60).stdout
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    static func stored(_ data: String) throws -> [AuditEvent] {
        try AuditStore(directories: [DataDirectory(data)]).search(EventQuery()).map(\.event)
    }

    static func attribute(_ e: AuditEvent, _ key: String) -> String? {
        if case .string(let s)? = e.attributes.first(where: { $0.key == key })?.value { return s }
        return nil
    }

    @Test func mutualTLSOnHTTPGRPCAndSyslogRecordsTheClientIdentity() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let collector = try CollectorProcessTests.Running(
            data: data,
            extra: [
                "--fsync", "always", "--tls-cert", pki.path("server.pem"), "--tls-key", pki.path("server.key"),
                "--tls-client-ca", pki.path("ca.pem"),
            ])
        defer { collector.stop(signal: SIGTERM) }
        let ca = pki.path("ca.pem")
        let https = "https://127.0.0.1:\(collector.port)"
        let mine = ["--cert", pki.path("client.pem"), "--key", pki.path("client.key")]

        let overHTTP = try Self.client(["spans", "http", https, ca] + mine)
        #expect(overHTTP["results"] as? [String] == ["SUCCESS", "SUCCESS", "SUCCESS"])
        let overGRPC = try Self.client(["spans", "grpc", "127.0.0.1:\(collector.grpcPort)", ca] + mine)
        #expect(overGRPC["results"] as? [String] == ["SUCCESS", "SUCCESS", "SUCCESS"])
        let bySubject = try Self.client([
            "spans", "http", https, ca, "--cert", pki.path("subject-client.pem"), "--key",
            pki.path("subject-client.key"), "--count", "1",
        ])
        #expect(bySubject["results"] as? [String] == ["SUCCESS"])
        _ = try Self.client([
            "syslog", "127.0.0.1", String(collector.syslogTCPPort), ca, "--cert", pki.path("client.pem"), "--key",
            pki.path("client.key"),
            "<190>Nov  2 10:00:00 edge-1 nginx: \(SyslogTests.line)",
        ])

        // Refused: no client certificate, a certificate of another CA, plain text on the TLS port.
        let anonymous = try Self.client(["spans", "http", https, ca, "--count", "1"])
        #expect(anonymous["results"] as? [String] == ["FAILURE"])
        let rogue = try Self.client([
            "spans", "http", https, ca, "--cert", pki.path("rogue-client.pem"), "--key", pki.path("rogue-client.key"),
            "--count", "1",
        ])
        #expect(rogue["results"] as? [String] == ["FAILURE"])
        let plain = try Self.curl("http://127.0.0.1:\(collector.port)/healthz", ca: ca)
        #expect(plain.0 == 0)
        // Under TLS 1.3 the client may finish its side of the handshake (and write) before the server refuses
        // it: whether the write fails or not, nothing of it may be stored (the final count says so).
        _ = try? Self.client([
            "syslog", "127.0.0.1", String(collector.syslogTCPPort), ca,
            "<190>Nov  2 10:00:00 edge-1 nginx: \(SyslogTests.line)",
        ])
        // Each refused handshake is counted, per listener (the exporter retried, so at least once each).
        let (status, text) = try Self.curl(
            "https://127.0.0.1:\(collector.port)/metrics", ca: ca,
            extra: ["--cert", pki.path("client.pem"), "--key", pki.path("client.key")])
        #expect(status == 200)
        let failures = MetricsTests.samples(text)
        #expect((failures["audit_collector_tls_handshake_failures_total{listener=\"http\"}"] ?? 0) >= 3)
        #expect((failures["audit_collector_tls_handshake_failures_total{listener=\"syslog_tcp\"}"] ?? 0) >= 1)

        // Every accepted event names the certificate's SPIFFE id (or its subject); the refused sent nothing.
        var events: [AuditEvent] = []
        for _ in 0..<50 {
            events = try Self.stored(data)
            if events.count >= 8 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let sent = Set(((overHTTP["trace_ids"] as? [String]) ?? []) + ((overGRPC["trace_ids"] as? [String]) ?? []))
        let spans = events.filter { sent.contains($0.traceID.hex) }
        #expect(spans.count == 6)
        #expect(spans.allSatisfy { Self.attribute($0, SenderContext.identityKey) == TestPKI.clientSPIFFE })
        #expect(spans.allSatisfy { Self.attribute($0, SenderContext.nameKey) == nil })
        let subjectSpan = try #require(events.first { $0.traceID.hex == (bySubject["trace_ids"] as? [String])?.first })
        #expect(Self.attribute(subjectSpan, SenderContext.identityKey) == "CN=batch-exporter,O=Example")
        let access = try #require(events.first { $0.kind == .access })
        #expect(Self.attribute(access, SenderContext.identityKey) == TestPKI.clientSPIFFE)
        #expect(events.count == 8)
    }

    static let meshToken = "mesh-0123456789abcdef-secret"
    static let edgeToken = "edge-fedcba9876543210-secret"

    static func sendersFile(_ dir: String, mode: mode_t = 0o600) throws -> String {
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
                sources: [10.0.0.0/8]
            """.utf8
        ).write(to: URL(fileURLWithPath: path))
        chmod(path, mode)
        return path
    }

    static func post(_ url: String, token: String?, body: [UInt8] = [], type: String = "application/json") async throws
        -> (Int, String, String?)
    {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.httpBody = Data(body)
        request.setValue(type, forHTTPHeaderField: "Content-Type")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        return (
            http.statusCode, String(decoding: data, as: UTF8.self), http.value(forHTTPHeaderField: "WWW-Authenticate")
        )
    }

    @Test func senderAuthenticationAnswers401And403AndNamesTheSender() async throws {
        let data = CollectorProcessTests.tempDir()
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let senders = try Self.sendersFile(data)
        try FileManager.default.copyItem(atPath: senders, toPath: data + "/senders.yaml.orig")
        let collector = try CollectorProcessTests.Running(
            data: data + "/store", extra: ["--fsync", "always", "--senders-file", senders])
        defer { collector.stop(signal: SIGTERM) }

        // A span claiming to be from another sender: the collector's own stamp must replace it.
        var spoofed = CollectorProcessTests.spans(seed: 91, 1)
        spoofed[0].attributes.append(Attribute(SenderContext.nameKey, .string("edge")))
        let body = try OTLPMapping.traceRequest(from: spoofed).serializedBytes() as [UInt8]
        let traces = collector.base + "/v1/traces"
        let none = try await Self.post(traces, token: nil, body: body, type: "application/x-protobuf")
        #expect(none.0 == 401 && none.2 == "Bearer realm=\"audit-collector\"")
        let wrong = try await Self.post(traces, token: "not-a-token", body: body, type: "application/x-protobuf")
        #expect(wrong.0 == 401)
        #expect(try await Self.post(traces, token: Self.edgeToken, body: body, type: "application/x-protobuf").0 == 403)
        let edgeFromLoopback = try await Self.post(
            collector.base + "/v1/access", token: Self.edgeToken, body: Array("{}\n".utf8), type: "application/x-ndjson"
        )
        #expect(edgeFromLoopback.0 == 403 && edgeFromLoopback.1.contains("may not send from 127.0.0.1"))
        let zipkin = try await Self.post(
            "http://127.0.0.1:\(collector.zipkinPort)/api/v2/spans", token: Self.meshToken, body: Array("[]".utf8))
        #expect(zipkin.0 == 403 && zipkin.1.contains("may not use the zipkin receiver"))
        #expect(try await Self.post(traces, token: Self.meshToken, body: body, type: "application/x-protobuf").0 == 200)
        // Health and metrics stay open to probes.
        #expect(try await collector.get("/healthz") == 200)

        // gRPC: the token travels in the authorization metadata.
        try await GRPCReceiverTests.withClients(port: collector.grpcPort) { traces, _, _ in
            let request = OTLPMapping.traceRequest(from: CollectorProcessTests.spans(seed: 92, 2))
            let refused = await #expect(throws: RPCError.self) { try await traces.export(request) }
            #expect(refused?.code == .unauthenticated)
            let forbidden = await #expect(throws: RPCError.self) {
                try await traces.export(request, metadata: ["authorization": "Bearer \(Self.edgeToken)"])
            }
            #expect(forbidden?.code == .permissionDenied)
            _ = try await traces.export(request, metadata: ["authorization": "Bearer \(Self.meshToken)"])
        }

        let stored = try Self.stored(data + "/store")
        #expect(stored.count == 3)
        #expect(stored.allSatisfy { Self.attribute($0, SenderContext.nameKey) == "mesh" })
        #expect(stored.allSatisfy { $0.attributes.filter { $0.key == SenderContext.nameKey }.count == 1 })
        let m = try await collector.metrics()
        #expect(m["audit_collector_auth_refusals_total{receiver=\"otlp_http\",reason=\"missing_credentials\"}"] == 1)
        #expect(m["audit_collector_auth_refusals_total{receiver=\"otlp_http\",reason=\"unknown_token\"}"] == 1)
        #expect(m["audit_collector_auth_refusals_total{receiver=\"otlp_http\",reason=\"receiver_not_allowed\"}"] == 1)
        #expect(m["audit_collector_auth_refusals_total{receiver=\"access\",reason=\"source_not_allowed\"}"] == 1)
        #expect(m["audit_collector_auth_refusals_total{receiver=\"zipkin\",reason=\"receiver_not_allowed\"}"] == 1)
        #expect(m["audit_collector_auth_refusals_total{receiver=\"otlp_grpc\",reason=\"missing_credentials\"}"] == 1)
        #expect(m["audit_collector_auth_refusals_total{receiver=\"otlp_grpc\",reason=\"receiver_not_allowed\"}"] == 1)

        // SIGHUP reads the senders file again: mesh may now use Zipkin; a broken file keeps the senders in use.
        try Data("senders: [".utf8).write(to: URL(fileURLWithPath: senders))
        kill(collector.process.processIdentifier, SIGHUP)
        try await waitForMetric("audit_collector_senders_reloads_total{outcome=\"failed\"}", 1) {
            try await collector.metrics()
        }
        #expect(try await Self.post(traces, token: Self.meshToken, body: body, type: "application/x-protobuf").0 == 200)
        let widened = try String(contentsOfFile: data + "/senders.yaml.orig", encoding: .utf8)
            .replacingOccurrences(
                of: "receivers: [otlp_http, otlp_grpc]", with: "receivers: [otlp_http, otlp_grpc, zipkin]")
        try Data(widened.utf8).write(to: URL(fileURLWithPath: senders))
        kill(collector.process.processIdentifier, SIGHUP)
        try await waitForMetric("audit_collector_senders_reloads_total{outcome=\"ok\"}", 1) {
            try await collector.metrics()
        }
        #expect(
            try await Self.post(
                "http://127.0.0.1:\(collector.zipkinPort)/api/v2/spans", token: Self.meshToken, body: Array("[]".utf8)
            ).0 == 202)
    }

    /// The metric label of each TCP listener's failed handshakes.
    static func handshakeLabel(_ listener: ClientCertificateListener) -> String {
        switch listener {
        case .otlpHTTP: "http"
        case .otlpGRPC: "grpc"
        case .zipkin: "zipkin"
        case .syslogTCP: "syslog_tcp"
        }
    }

    /// One Zipkin v2 span of trace `trace` (32 hex digits), as a JSON body.
    static func zipkinSpan(_ trace: String) -> String {
        #"[{"traceId":"\#(trace)","id":"0020000000000001","name":"get /x","timestamp":1793613600123456,"#
            + #""duration":25,"localEndpoint":{"serviceName":"mesh-sidecar"}}]"#
    }

    /// With a CA bundle, one listener at a time makes client certificates optional: there a sender without one
    /// completes the handshake and names itself with its bearer token (syslog, which has no token, is then
    /// refused as unauthenticated, after the handshake), while a certificate presented must still be one the CA
    /// signed; every other listener still refuses the handshake without a certificate. Real clients: the
    /// OpenTelemetry SDK over HTTPS and gRPC, curl for Zipkin, Python's ssl module for syslog.
    @Test(arguments: ClientCertificateListener.allCases)
    func clientCertificatesCanBeOptionalOnOneListener(_ optional: ClientCertificateListener) async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let data = CollectorProcessTests.tempDir()
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let senders = data + "/senders.yaml"
        try Data(
            """
            senders:
              - name: mesh
                token_sha256: \(Hex.sha256(Array(Self.meshToken.utf8)))
                receivers: [otlp_http, otlp_grpc, zipkin]
              - name: nginx
                identities: [\(TestPKI.clientSPIFFE)]
                receivers: [otlp_http, otlp_grpc, zipkin, syslog_tcp]
            """.utf8
        ).write(to: URL(fileURLWithPath: senders))
        chmod(senders, 0o600)
        let collector = try CollectorProcessTests.Running(
            data: data + "/store",
            extra: [
                "--fsync", "always", "--tls-cert", pki.path("server.pem"), "--tls-key", pki.path("server.key"),
                "--tls-client-ca", pki.path("ca.pem"), "--senders-file", senders,
                "--optional-client-certificates", optional.rawValue,
            ])
        defer { collector.stop(signal: SIGTERM) }
        let ca = pki.path("ca.pem")
        let https = "https://127.0.0.1:\(collector.port)"
        let grpc = "127.0.0.1:\(collector.grpcPort)"
        let zipkin = "https://127.0.0.1:\(collector.zipkinPort)/api/v2/spans"
        let mine = ["--cert", pki.path("client.pem"), "--key", pki.path("client.key")]
        let token = ["--token", Self.meshToken]
        func zipkinPost(_ trace: String, _ extra: [String]) throws -> Int {
            try Self.curl(
                zipkin, ca: ca,
                extra: ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", Self.zipkinSpan(trace)]
                    + extra
            ).0
        }
        func metrics() throws -> [String: Double] {
            let (status, text) = try Self.curl(
                https + "/metrics", ca: ca, extra: ["--cert", pki.path("client.pem"), "--key", pki.path("client.key")])
            #expect(status == 200)
            return MetricsTests.samples(text)
        }
        func handshakeFailures(_ listener: ClientCertificateListener) throws -> Double {
            try metrics()["audit_collector_tls_handshake_failures_total{listener=\"\(Self.handshakeLabel(listener))\"}"]
                ?? 0
        }

        // A certificate the CA signed is taken everywhere, whatever the listener's mode, and names the sender.
        let certHTTP = try Self.client(["spans", "http", https, ca, "--count", "1"] + mine)
        #expect(certHTTP["results"] as? [String] == ["SUCCESS"])
        let certGRPC = try Self.client(["spans", "grpc", grpc, ca, "--count", "1"] + mine)
        #expect(certGRPC["results"] as? [String] == ["SUCCESS"])
        let certZipkinTrace = "1000000000000000000000000000000a"
        #expect(try zipkinPost(certZipkinTrace, mine) == 202)
        _ = try Self.client(
            ["syslog", "127.0.0.1", String(collector.syslogTCPPort), ca] + mine + [
                "<190>Nov  2 10:00:00 edge-1 nginx: \(SyslogTests.line)"
            ])

        // Token only, no certificate: in on the optional listener, refused at the handshake everywhere else.
        let tokenHTTP = try Self.client(["spans", "http", https, ca, "--count", "1"] + token)
        #expect(tokenHTTP["results"] as? [String] == [optional == .otlpHTTP ? "SUCCESS" : "FAILURE"])
        let tokenGRPC = try Self.client(["spans", "grpc", grpc, ca, "--count", "1"] + token)
        #expect(tokenGRPC["results"] as? [String] == [optional == .otlpGRPC ? "SUCCESS" : "FAILURE"])
        let tokenZipkinTrace = "2000000000000000000000000000000b"
        let tokenZipkin = try zipkinPost(tokenZipkinTrace, ["-H", "Authorization: Bearer \(Self.meshToken)"])
        #expect(tokenZipkin == (optional == .zipkin ? 202 : 0))
        // Syslog has no token: without a certificate the connection is refused, after the handshake where the
        // certificate is optional (a sender that cannot be named), at it elsewhere.
        _ = try? Self.client([
            "syslog", "127.0.0.1", String(collector.syslogTCPPort), ca,
            "<190>Nov  2 10:00:01 edge-1 nginx: \(SyslogTests.line)",
        ])
        if optional == .syslogTCP {
            try await waitForMetric(
                "audit_collector_auth_refusals_total{receiver=\"syslog_tcp\",reason=\"missing_credentials\"}", 1
            ) { try metrics() }
        }
        // Neither token nor certificate on the optional listener: past the handshake, then 401.
        switch optional {
        case .otlpHTTP:
            #expect(
                try Self.curl(
                    https + "/v1/traces", ca: ca,
                    extra: ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "{}"]
                ).0 == 401)
        case .zipkin: #expect(try zipkinPost("3000000000000000000000000000000c", []) == 401)
        case .otlpGRPC, .syslogTCP: break
        }
        // Each listener that requires certificates refused the token-only client at the handshake; the optional
        // one refused none so far. There a certificate of another CA is still refused.
        for listener in ClientCertificateListener.allCases {
            let failures = try handshakeFailures(listener)
            if listener == optional {
                #expect(failures == 0, "\(listener)")
            } else {
                #expect(failures >= 1, "\(listener)")
            }
        }
        let rogue = ["--cert", pki.path("rogue-client.pem"), "--key", pki.path("rogue-client.key")]
        switch optional {
        case .otlpHTTP:
            let refused = try Self.client(["spans", "http", https, ca, "--count", "1"] + rogue + token)
            #expect(refused["results"] as? [String] == ["FAILURE"])
        case .otlpGRPC:
            let refused = try Self.client(["spans", "grpc", grpc, ca, "--count", "1"] + rogue + token)
            #expect(refused["results"] as? [String] == ["FAILURE"])
        case .zipkin:
            #expect(
                try zipkinPost(
                    "4000000000000000000000000000000d", rogue + ["-H", "Authorization: Bearer \(Self.meshToken)"])
                    == 0)
        case .syslogTCP:
            _ = try? Self.client(
                ["syslog", "127.0.0.1", String(collector.syslogTCPPort), ca] + rogue + [
                    "<190>Nov  2 10:00:02 edge-1 nginx: \(SyslogTests.line)"
                ])
        }
        for _ in 0..<100 {
            if try handshakeFailures(optional) >= 1 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try handshakeFailures(optional) >= 1)

        // What was stored: the certificate senders under their identity, the token sender under its name alone.
        let certTraces = Set(
            ((certHTTP["trace_ids"] as? [String]) ?? []) + ((certGRPC["trace_ids"] as? [String]) ?? [])
                + [certZipkinTrace])
        var tokenTraces: Set<String> = []
        if optional == .otlpHTTP { tokenTraces.formUnion((tokenHTTP["trace_ids"] as? [String]) ?? []) }
        if optional == .otlpGRPC { tokenTraces.formUnion((tokenGRPC["trace_ids"] as? [String]) ?? []) }
        if optional == .zipkin { tokenTraces.insert(tokenZipkinTrace) }
        let expected = certTraces.count + 1 + tokenTraces.count
        var events: [AuditEvent] = []
        for _ in 0..<50 {
            events = try Self.stored(data + "/store")
            if events.count >= expected { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(events.count == expected)
        for event in events {
            let trace = event.traceID.hex
            if event.kind == .access || certTraces.contains(trace) {
                #expect(Self.attribute(event, SenderContext.identityKey) == TestPKI.clientSPIFFE, "\(trace)")
                #expect(Self.attribute(event, SenderContext.nameKey) == "nginx", "\(trace)")
            } else {
                #expect(tokenTraces.contains(trace), "\(trace) was not sent by an accepted client")
                #expect(Self.attribute(event, SenderContext.identityKey) == nil, "\(trace)")
                #expect(Self.attribute(event, SenderContext.nameKey) == "mesh", "\(trace)")
            }
        }
    }

    @Test func sighupReloadsTheCertificateWhileOpenConnectionsKeepTheirs() async throws {
        let pki = try TestPKI()
        defer { pki.remove() }
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let live = pki.path("live")
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
        func install(_ name: String) throws {
            for ext in ["pem", "key"] {
                try? FileManager.default.removeItem(atPath: "\(live)/tls.\(ext)")
                try FileManager.default.copyItem(atPath: pki.path("\(name).\(ext)"), toPath: "\(live)/tls.\(ext)")
            }
            chmod("\(live)/tls.key", 0o600)
        }
        try install("server")
        let collector = try CollectorProcessTests.Running(
            data: data, extra: ["--tls-cert", "\(live)/tls.pem", "--tls-key", "\(live)/tls.key"])
        defer { collector.stop(signal: SIGTERM) }
        let ca = pki.path("ca.pem")

        // One connection opened before the reload…
        let held = try ChildProcess(
            try PythonSDKTests.python(".venv-otel"),
            [Self.script, "keepalive", "127.0.0.1", String(collector.port), ca], stdin: true)
        defer { held.stop(signal: SIGKILL) }
        let (firstLine, consumed) = try held.line(after: 0)
        let first = try JSONSerialization.jsonObject(with: Data(firstLine.utf8)) as? [String: Any]
        #expect(first?["status"] as? Int == 200)
        #expect(first?["fingerprint"] as? String == (try pki.fingerprint("server")))

        // …a broken pair is refused and the old one kept; then the new pair is taken.
        try Data("not a key".utf8).write(to: URL(fileURLWithPath: "\(live)/tls.key"))
        kill(collector.process.processIdentifier, SIGHUP)
        try await waitForMetric("audit_collector_tls_reloads_total{outcome=\"failed\"}", 1) {
            try Self.metricsOverTLS(ca: ca, port: collector.port)
        }
        let stillOld = try Self.client(["keepalive", "127.0.0.1", String(collector.port), ca])
        #expect(stillOld["fingerprint"] as? String == (try pki.fingerprint("server")))
        try install("server2")
        kill(collector.process.processIdentifier, SIGHUP)
        try await waitForMetric("audit_collector_tls_reloads_total{outcome=\"ok\"}", 1) {
            try Self.metricsOverTLS(ca: ca, port: collector.port)
        }

        // New connections see the new certificate; the held one still works, on the old.
        let fresh = try Self.client(["keepalive", "127.0.0.1", String(collector.port), ca])
        #expect(fresh["status"] as? Int == 200)
        #expect(fresh["fingerprint"] as? String == (try pki.fingerprint("server2")))
        held.write("go\n")
        let secondLine = try held.line(after: consumed).line
        let second = try JSONSerialization.jsonObject(with: Data(secondLine.utf8)) as? [String: Any]
        #expect(try held.wait(within: 60).succeeded)
        #expect(second?["status"] as? Int == 200)
        #expect(second?["fingerprint"] as? String == (try pki.fingerprint("server")))
    }

    /// Polls `samples` until the series `name` has `value` (the collector applies SIGHUP asynchronously).
    func waitForMetric(_ name: String, _ value: Double, samples: () async throws -> [String: Double]) async throws {
        for _ in 0..<100 {
            if try await samples()[name] == value { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("metric \(name) never reached \(value)")
    }

    /// The metrics of a TLS listener, read with curl trusting `ca`.
    static func metricsOverTLS(ca: String, port: Int) throws -> [String: Double] {
        let (status, text) = try curl("https://127.0.0.1:\(port)/metrics", ca: ca)
        return status == 200 ? MetricsTests.samples(text) : [:]
    }

    @Test func sealsAreSignedWithAPrivateKeyAndEveryFileIsPrivate() async throws {
        let dir = CollectorProcessTests.tempDir()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = dir + "/seal.key"
        let keygen = try ChildProcess.run(CollectorProcessTests.binary.path, ["keygen", "--out", key])
        #expect(keygen.status == 0, "\(keygen.stderr)")
        var st = stat()
        #expect(stat(key, &st) == 0 && st.st_mode & 0o777 == 0o600)

        // A key others can read is refused, naming the file and the fix.
        chmod(key, 0o644)
        let refused = try ChildProcess.run(
            CollectorProcessTests.binary.path,
            ["serve", "--data", dir + "/store", "--otlp-http", "127.0.0.1:0", "--signing-key", key], within: 60)
        let message = refused.stderr
        #expect(refused.status != 0)
        #expect(message.contains(key) && message.contains("chmod 600"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/store"))

        chmod(key, 0o600)
        let data = dir + "/store"
        let collector = try CollectorProcessTests.Running(
            data: data, extra: ["--fsync", "always", "--signing-key", key])
        let body =
            try OTLPMapping.traceRequest(from: CollectorProcessTests.spans(seed: 93, 20)).serializedBytes() as [UInt8]
        #expect(try await collector.post("/v1/traces", body, type: "application/x-protobuf").0 == 200)
        collector.stop(signal: SIGTERM)

        let verify = try ChildProcess.run(
            ChildProcess.product("auditq"),
            ["verify", "--data", data, "--public-key", key + ".pub", "--require-signatures"])
        #expect(verify.status == 0, "\(verify.stdout)")

        // Directories 0700, files 0600, whatever the umask of whoever started the collector.
        let walker = FileManager.default.enumerator(atPath: data)
        var checked = 0
        #expect(stat(data, &st) == 0 && st.st_mode & 0o777 == 0o700)
        while let name = walker?.nextObject() as? String {
            guard stat(data + "/" + name, &st) == 0 else { continue }
            let directory = st.st_mode & S_IFMT == S_IFDIR
            #expect(
                st.st_mode & 0o777 == (directory ? 0o700 : 0o600),
                "\(name) has mode \(String(st.st_mode & 0o777, radix: 8))")
            checked += 1
        }
        #expect(checked >= 3)
    }
}
