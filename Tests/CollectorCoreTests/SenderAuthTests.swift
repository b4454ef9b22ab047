import Foundation
import NIOCore
import PropertyBased
import Testing

@testable import CollectorCore

/// The senders file and the authorisation decision, without a server.
struct SenderAuthTests {
    static func hash(_ token: String) -> String { Hex.sha256(Array(token.utf8)) }

    static let file = """
        senders:
          - name: mesh
            token_sha256: \(hash("mesh-token-0123456789"))
            receivers: [otlp_http, otlp_grpc]
          - name: edge
            identities: ["spiffe://cluster.local/ns/edge/sa/nginx"]
            receivers: [syslog_tcp, access]
            sources: [10.1.0.0/16, "::1"]
          - name: bound
            token_sha256: \(hash("bound-token-0123456789"))
            identities: ["spiffe://cluster.local/ns/batch/sa/exporter"]
            receivers: [otlp_grpc]
        """

    static let peer = try! SocketAddress(ipAddress: "127.0.0.1", port: 5000)

    @Test func everyDecision() throws {
        let auth = try SenderAuthenticator.parse(yaml: Self.file, source: "senders.yaml")
        func decide(_ r: ReceiverKind, _ header: String?, _ id: String? = nil, _ peer: SocketAddress? = Self.peer)
            -> String
        {
            switch auth.authorize(receiver: r, authorization: header, identity: id, peer: peer) {
            case .success(let s): return "ok:" + s.name
            case .failure(let f): return (f.kind == .unauthenticated ? "401:" : "403:") + f.reason
            }
        }
        #expect(decide(.otlpHTTP, "Bearer mesh-token-0123456789") == "ok:mesh")
        #expect(decide(.otlpHTTP, "bearer   mesh-token-0123456789 ") == "ok:mesh")
        #expect(decide(.zipkin, "Bearer mesh-token-0123456789") == "403:receiver_not_allowed")
        #expect(decide(.otlpHTTP, "Bearer mesh-token-012345678") == "401:unknown_token")
        #expect(decide(.otlpHTTP, "Basic bWVzaDp4") == "401:bad_credentials")
        #expect(decide(.otlpHTTP, "Bearer") == "401:bad_credentials")
        #expect(decide(.otlpHTTP, "Bearer a b") == "401:bad_credentials")
        #expect(decide(.otlpHTTP, nil) == "401:missing_credentials")
        #expect(decide(.syslogTCP, nil, "spiffe://cluster.local/ns/edge/sa/nginx") == "403:source_not_allowed")
        #expect(
            decide(
                .syslogTCP, nil, "spiffe://cluster.local/ns/edge/sa/nginx",
                try SocketAddress(ipAddress: "10.1.2.3", port: 1)) == "ok:edge")
        #expect(
            decide(
                .access, nil, "spiffe://cluster.local/ns/edge/sa/nginx", try SocketAddress(ipAddress: "::1", port: 1))
                == "ok:edge")
        #expect(
            decide(
                .access, nil, "spiffe://cluster.local/ns/edge/sa/nginx",
                try SocketAddress(ipAddress: "::ffff:10.1.9.9", port: 1)) == "ok:edge")
        #expect(decide(.access, nil, "spiffe://cluster.local/ns/other/sa/x") == "401:unknown_identity")
        // A token bound to certificates is refused on a connection without the right one.
        #expect(decide(.otlpGRPC, "Bearer bound-token-0123456789") == "403:identity_mismatch")
        #expect(
            decide(.otlpGRPC, "Bearer bound-token-0123456789", "spiffe://cluster.local/ns/batch/sa/exporter")
                == "ok:bound")
    }

    @Test func refusalsNeverRepeatTheCredential() throws {
        let auth = try SenderAuthenticator.parse(yaml: Self.file, source: "senders.yaml")
        for header in ["Bearer guessed-secret-value", "Basic guessed-secret-value", "Bearer mesh-token-0123456789"] {
            for r in ReceiverKind.allCases {
                if case .failure(let f) = auth.authorize(
                    receiver: r, authorization: header, identity: nil, peer: Self.peer)
                {
                    #expect(!f.message.contains("guessed-secret-value") && !f.message.contains("mesh-token"))
                }
            }
        }
    }

    @Test func fileProblemsAreAllNamed() {
        let bad = """
            senders:
              - name: a
                token_sha256: abc
                receivers: [otlp_http, carrier_pigeon]
                sources: [300.1.1.1/8, 10.0.0.0/33]
                colour: blue
              - name: a
                receivers: [zipkin]
              - token_sha256: \(Self.hash("x"))
            """
        #expect {
            try SenderAuthenticator.parse(yaml: bad, source: "s.yaml")
        } throws: { error in
            let text = "\(error)"
            return text.contains("s.yaml: senders[0]: token_sha256 must be 64 hex digits")
                && text.contains("unknown receiver carrier_pigeon") && text.contains("source 300.1.1.1/8 is not")
                && text.contains("source 10.0.0.0/33 is not") && text.contains("senders[0]: unknown key colour")
                && text.contains("senders[1]: the name a is used twice")
                && text.contains("senders[1]: a needs token_sha256 or identities")
                && text.contains("senders[2]: needs a name")
        }
        #expect(throws: SenderAuthenticator.FileProblem.self) {
            try SenderAuthenticator.parse(yaml: "senders: 3", source: "s")
        }
        #expect(throws: SenderAuthenticator.FileProblem.self) { try SenderAuthenticator.parse(yaml: "[", source: "s") }
        let dup = """
            senders:
              - {name: a, token_sha256: \(Self.hash("t")), receivers: [access]}
              - {name: b, token_sha256: \(Self.hash("t")), receivers: [access]}
            """
        #expect(throws: SenderAuthenticator.FileProblem.self) { try SenderAuthenticator.parse(yaml: dup, source: "s") }
    }

    @Test func aReadableSendersFileIsRefused() throws {
        let path = NSTemporaryDirectory() + "/senders-\(UInt64.random(in: 0...UInt64.max)).yaml"
        defer { unlink(path) }
        try Data(Self.file.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o644)
        #expect {
            try SenderAuthenticator.load(path: path)
        } throws: { "\($0)".contains("has mode 644") && "\($0)".contains("chmod 600") }
        chmod(path, 0o600)
        #expect(try SenderAuthenticator.load(path: path).senders.count == 3)
    }

    /// An address is inside every network made from it by any prefix, and outside once a bit under the
    /// prefix is flipped.
    @Test func cidrMembership() async {
        await propertyCheck(input: Gen.uint32(), Gen.int(in: 1...32)) { address, prefix in
            let octets = (0..<4).map { UInt8(truncatingIfNeeded: address >> (24 - 8 * UInt32($0))) }
            let text = octets.map(String.init).joined(separator: ".")
            let net = CIDR("\(text)/\(prefix)")!
            #expect(net.contains(try! SocketAddress(ipAddress: text, port: 1)))
            let flipped = address ^ (UInt32(1) << UInt32(32 - prefix))
            let other = (0..<4).map { String(UInt8(truncatingIfNeeded: flipped >> (24 - 8 * UInt32($0)))) }.joined(
                separator: ".")
            #expect(!net.contains(try! SocketAddress(ipAddress: other, port: 1)))
        }
        #expect(CIDR("10.0.0.0/0")!.contains(try! SocketAddress(ipAddress: "192.168.1.1", port: 1)))
        #expect(!CIDR("::1")!.contains(try! SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(CIDR("fd00::/8")!.contains(try! SocketAddress(ipAddress: "fd12::1", port: 1)))
        #expect(CIDR("") == nil && CIDR("10.0.0.0/") == nil && CIDR("host.example") == nil)
    }

    /// gRPC's peer description becomes the address the sources are checked against; anything else is no address.
    @Test func grpcPeerStrings() {
        #expect(GRPCReceiver.socketAddress("ipv4:127.0.0.1:5000")?.ipAddress == "127.0.0.1")
        #expect(GRPCReceiver.socketAddress("ipv6:[::1]:5000")?.ipAddress == "::1")
        for hostile in [
            "", "ipv4:", "ipv4:127.0.0.1", "ipv4:127.0.0.1:", "ipv4:127.0.0.1:99999", "ipv4:127.0.0.1:-1",
            "ipv4:300.1.1.1:5",
            "ipv6:[::1]", "ipv6:[]:5", "unix:/tmp/socket", "in-process", "ipv4:127.0.0.1:5000\u{0}",
            String(repeating: "ipv4:", count: 10_000),
        ] {
            #expect(GRPCReceiver.socketAddress(hostile) == nil, "\(hostile.prefix(40))")
        }
    }

    @Test func tlsSettingsAreCheckedWithTheListeners() throws {
        var c = CollectorConfig()
        c.otlpHTTPAddress = "0.0.0.0:4318"
        c.syslogUDPAddress = "0.0.0.0:5514"
        c.tlsCertFile = "/etc/c.pem"
        #expect(c.problems().contains("TLS needs both tls.cert_file and tls.key_file"))
        c.tlsKeyFile = "/etc/c.key"
        // TLS covers the TCP listeners; UDP syslog stays plain text and so stays on loopback.
        #expect(
            c.problems() == [
                "syslog udp on 0.0.0.0 is not a loopback address: plain text leaves this machine only with allow_plaintext_remote"
            ])
        let yaml = """
            tls: {cert_file: /a.pem, key_file: /a.key, client_ca_file: /ca.pem}
            auth: {senders_file: /s.yaml}
            storage: {signing_key_file: /k}
            """
        let parsed = try CollectorConfig.parse(yaml: yaml)
        #expect(parsed.tls == TLSSettings(certificateFile: "/a.pem", keyFile: "/a.key", clientCAFile: "/ca.pem"))
        #expect(parsed.sendersFile == "/s.yaml" && parsed.signingKeyFile == "/k")
        var mtlsOnly = CollectorConfig()
        mtlsOnly.tlsClientCAFile = "/ca.pem"
        #expect(mtlsOnly.problems().contains("tls.client_ca_file (mTLS) needs tls.cert_file and tls.key_file"))
    }
}
