import Foundation
import TestSupport
import Testing

@testable import CollectorCore

@Suite(.ownThreads) struct CollectorConfigTests {
    static let full = """
        data: /var/lib/audit
        receivers:
          otlp_http:
            address: 127.0.0.1:14318
            allow_plaintext_remote: false
          syslog:
            udp_receive_buffer_bytes: 8388608
        storage:
          fsync: always
          fsync_interval_ms: 20
          segment_bytes: 1048576
          segment_age_seconds: 60
          seal_nice: 5
        limits:
          max_body_bytes: 2048
          max_pending_events: 10
          max_attributes_per_record: 64
          max_string_bytes: 512
        identity:
          user_attributes: [enduser.id, user.id]
          email_attributes: [enduser.email]
          group_attributes: [enduser.groups]
          jwks_file: /etc/audit/jwks.json
        redaction:
          keys: [x-tenant-key]
          query_parameters: [session]
          hmac_secret_file: /etc/audit/hmac
        log_level: debug
        """

    @Test func everyKeyIsRead() throws {
        let c = try CollectorConfig.parse(yaml: Self.full)
        #expect(c.data == "/var/lib/audit")
        #expect(c.otlpHTTPAddress == "127.0.0.1:14318")
        #expect(c.syslogUDPReceiveBufferBytes == 8 << 20)
        #expect(c.fsync == "always")
        #expect(c.fsyncIntervalMs == 20)
        #expect(c.segmentBytes == 1_048_576)
        #expect(c.segmentAgeSeconds == 60)
        #expect(c.sealNice == 5)
        #expect(c.maxBodyBytes == 2048)
        #expect(c.maxPendingEvents == 10)
        #expect(c.maxAttributesPerRecord == 64)
        #expect(c.maxStringBytes == 512)
        #expect(c.userAttributes == ["enduser.id", "user.id"])
        #expect(c.emailAttributes == ["enduser.email"])
        #expect(c.groupAttributes == ["enduser.groups"])
        #expect(c.jwksFile == "/etc/audit/jwks.json")
        #expect(c.redactionKeys == ["x-tenant-key"])
        #expect(c.redactionQueryParameters == ["session"])
        #expect(c.hmacSecretFile == "/etc/audit/hmac")
        #expect(c.logLevel == "debug")
        #expect(c.identityKeys.email == ["enduser.email"])
    }

    @Test func redactionAndIdentityFilesAreReadAndCheckedAtStart() async throws {
        let dir = NSTemporaryDirectory() + "/cfgsecrets-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "0123456789abcdef-long-enough\n".write(toFile: dir + "/hmac", atomically: true, encoding: .utf8)
        try "short\n".write(toFile: dir + "/short", atomically: true, encoding: .utf8)
        try TokenFixtures().jwks.write(toFile: dir + "/jwks.json", atomically: true, encoding: .utf8)
        try #"{"keys":"none"}"#.write(toFile: dir + "/bad.json", atomically: true, encoding: .utf8)
        var c = CollectorConfig()
        c.hmacSecretFile = dir + "/hmac"
        c.jwksFile = dir + "/jwks.json"
        let o = try await c.normalizerOptions()
        #expect(o.redaction.hmacSecret == Array("0123456789abcdef-long-enough".utf8))  // the newline is not part of it
        #expect(o.jwks?.keys.keyIDs == ["ed-1", "ec-1"])
        func problem(_ change: (inout CollectorConfig) -> Void) async -> String {
            var bad = CollectorConfig()
            change(&bad)
            do {
                _ = try await bad.normalizerOptions()
                return ""
            } catch { return error.description }
        }
        #expect(await problem { $0.hmacSecretFile = dir + "/short" }.contains("at least 16 bytes"))
        #expect(
            await problem { $0.hmacSecretFile = dir + "/missing" }.contains(
                "cannot read the redaction HMAC secret file"))
        #expect(
            await problem { $0.jwksFile = dir + "/bad.json" }.contains("a JWKS is a JSON object with a \"keys\" array"))
        let env = try CollectorConfig().applying(environment: [
            "AUDIT_COLLECTOR_REDACTION_HMAC_SECRET": "x", "AUDIT_COLLECTOR_REDACTION_HMAC_SECRET_FILE": dir + "/hmac",
            "AUDIT_COLLECTOR_JWKS_FILE": "/j.json",
        ])
        #expect(env.jwksFile == "/j.json")
        #expect(env.problems().contains { $0.contains("not both") })
        #expect(env.problems().contains { $0.contains("at least 16 bytes") })
        #expect(throws: CollectorConfig.Problem.self) {
            try CollectorConfig.parse(yaml: "redaction:\n  keys: password\n")
        }
        #expect(throws: CollectorConfig.Problem.self) {
            try CollectorConfig.parse(yaml: "redaction:\n  hmac_secret: inline\n")
        }
    }

    @Test func emptyFileKeepsTheDefaults() throws {
        #expect(try CollectorConfig.parse(yaml: "") == CollectorConfig())
    }

    @Test func everyProblemIsReportedAtOnce() {
        let bad = """
            data: 5
            storag:
              fsync: always
            storage:
              fsync: sometimes
              segment_bytes: -1
              seal_nice: 20
            limits:
              max_body_byte: 10
            receivers:
              otlp_http:
                address: 0.0.0.0:4318
            """
        #expect { try CollectorConfig.parse(yaml: bad, source: "c.yaml") } throws: { error in
            guard let p = error as? CollectorConfig.Problem else { return false }
            let text = p.description
            return text.contains("c.yaml: data must be a string") && text.contains("unknown key storag")
                && text.contains("unknown key limits.max_body_byte")
                && text.contains("fsync must be always, interval or never")
                && text.contains("segment_bytes must be positive") && text.contains("0.0.0.0 is not a loopback address")
                && text.contains("seal_nice must be 0 to 19, not 20")
        }
    }

    @Test func everyListenerAddressIsCheckedAndOffTurnsItOff() throws {
        let bad = """
            receivers:
              otlp_grpc:
                address: "4317"
              zipkin:
                address: 0.0.0.0:9411
              syslog:
                udp_address: "127.0.0.1:99999"
                tcp_address: "[::1]"
            """
        #expect { try CollectorConfig.parse(yaml: bad, source: "l.yaml") } throws: { error in
            guard let p = error as? CollectorConfig.Problem else { return false }
            let text = p.description
            return text.contains("otlp_grpc address must be HOST:PORT or off, not \"4317\"")
                && text.contains("0.0.0.0 is not a loopback address")
                && text.contains("syslog udp address must be HOST:PORT or off")
                && text.contains("syslog tcp address must be HOST:PORT or off")
        }
        let off = try CollectorConfig.parse(
            yaml: "receivers: {otlp_grpc: {address: \"off\"}, zipkin: {address: \"off\"}}"
        )
        .applying(environment: ["AUDIT_COLLECTOR_SYSLOG_UDP": "off", "AUDIT_COLLECTOR_SYSLOG_TCP": "127.0.0.1:6514"])
        #expect(try off.grpcAddress() == nil)
        #expect(try off.zipkinListenAddress() == nil)
        #expect(try off.syslogAddresses().udp == nil)
        #expect(try off.syslogAddresses().tcp?.port == 6514)
        // The HTTP listener cannot be turned off: it carries health and metrics.
        #expect(
            CollectorConfig.parse(yamlProblems: "receivers: {otlp_http: {address: \"off\"}}").contains {
                $0.contains("otlp_http address must be HOST:PORT, not")
            })
    }

    @Test func clientCertificatesArePerListenerAndOptionalNeedsACABundle() throws {
        let tls = "tls: {cert_file: /c.pem, key_file: /k.pem, client_ca_file: /ca.pem}\n"
        let c = try CollectorConfig.parse(
            yaml: tls + """
                receivers:
                  otlp_http: {client_certificates: optional}
                  syslog: {tcp_client_certificates: optional}
                """)
        #expect(c.clientCertificates(.otlpHTTP) == .optional)
        #expect(c.clientCertificates(.otlpGRPC) == .required)
        #expect(c.clientCertificates(.zipkin) == .required)
        #expect(c.clientCertificates(.syslogTCP) == .optional)
        // The environment (and the flag) name the listeners made optional.
        let env = try CollectorConfig.parse(yaml: tls).applying(environment: [
            "AUDIT_COLLECTOR_OPTIONAL_CLIENT_CERTIFICATES": "otlp_grpc, zipkin"
        ])
        #expect(
            ClientCertificateListener.allCases.filter { env.clientCertificates($0) == .optional } == [
                .otlpGRPC, .zipkin,
            ])
        #expect(throws: CollectorConfig.Problem.self) {
            try CollectorConfig().applying(environment: ["AUDIT_COLLECTOR_OPTIONAL_CLIENT_CERTIFICATES": "otlp"])
        }
        let problems = CollectorConfig.parse(
            yamlProblems: """
                receivers:
                  zipkin: {client_certificates: maybe}
                  otlp_grpc: {client_certificates: optional}
                """)
        #expect(problems.contains { $0.contains("receivers.zipkin.client_certificates must be required or optional") })
        #expect(
            problems.contains {
                $0.contains("receivers.otlp_grpc.client_certificates optional needs tls.client_ca_file")
            })
        #expect(problems.count == 2)
    }

    @Test func notYAMLIsNamed() {
        #expect(throws: CollectorConfig.Problem.self) { try CollectorConfig.parse(yaml: "data: [unclosed") }
        #expect(throws: CollectorConfig.Problem.self) { try CollectorConfig.parse(yaml: "- a\n- b") }
    }

    @Test func environmentOverridesTheFile() throws {
        let c = try CollectorConfig.parse(yaml: Self.full).applying(environment: [
            "AUDIT_COLLECTOR_DATA": "/tmp/x", "AUDIT_COLLECTOR_FSYNC": "never",
            "AUDIT_COLLECTOR_MAX_PENDING_EVENTS": "99", "AUDIT_COLLECTOR_SYSLOG_UDP_RECEIVE_BUFFER_BYTES": "1048576",
            "AUDIT_COLLECTOR_SEAL_NICE": "10",
        ])
        #expect(c.sealNice == 10)
        #expect(c.syslogUDPReceiveBufferBytes == 1 << 20)
        #expect(c.data == "/tmp/x")
        #expect(c.fsync == "never")
        #expect(c.maxPendingEvents == 99)
        #expect(throws: CollectorConfig.Problem.self) {
            try CollectorConfig().applying(environment: ["AUDIT_COLLECTOR_MAX_BODY_BYTES": "lots"])
        }
        // A bad value from the environment shows when the merged configuration is checked.
        #expect(try CollectorConfig().applying(environment: ["AUDIT_COLLECTOR_FSYNC": "often"]).problems().count == 1)
    }

    @Test func checkConfigExitsZeroOrTwo() throws {
        let dir = NSTemporaryDirectory() + "/cfg-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.full.write(toFile: dir + "/good.yaml", atomically: true, encoding: .utf8)
        try "storage:\n  fsync: often\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        func run(_ args: [String]) throws -> (Int32, String) {
            let r = try ChildProcess.run(CollectorProcessTests.binary.path, args)
            return (r.status, r.stdout + r.stderr)
        }
        let good = try run(["--check-config", dir + "/good.yaml"])
        #expect(good.0 == 0)
        #expect(good.1.contains("valid"))
        let bad = try run(["--check-config", dir + "/bad.yaml"])
        #expect(bad.0 == 2)
        #expect(bad.1.contains("fsync must be always, interval or never, not \"often\""))
        let flagWins = try run([
            "serve", "--config", dir + "/bad.yaml", "--fsync", "always", "--otlp-http", "10.0.0.1:1",
        ])
        #expect(flagWins.0 == 64)  // the fsync flag fixes the file, the address is refused
        #expect(flagWins.1.contains("10.0.0.1 is not a loopback address"))
        #expect(!flagWins.1.contains("often"))
    }
}

@Suite(.ownThreads) struct ExampleConfigTests {
    @Test func theShippedExampleIsValidAndEqualsTheDefaults() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("examples/collector.yaml"), encoding: .utf8)
        #expect(try CollectorConfig.parse(yaml: text, source: "examples/collector.yaml") == CollectorConfig())
    }
}

extension CollectorConfig {
    /// The problems of a document, or none.
    static func parse(yamlProblems text: String) -> [String] {
        do {
            _ = try parse(yaml: text)
            return []
        } catch {
            return error.messages
        }
    }
}
