import Crypto
import Foundation
import LogFormat
import Logging
import OTLPBridge
import StoreQuery
import TestSupport
import Testing

@testable import CollectorCore

/// Ed25519 signing keys by `kid`, the JWKS that publishes a chosen few, and tokens they sign (swift-crypto, apart
/// from jwt-kit, which verifies).
struct RotatingKeys {
    var keys: [String: Curve25519.Signing.PrivateKey] = [:]

    mutating func add(_ kid: String) { keys[kid] = Curve25519.Signing.PrivateKey() }

    func jwks(_ kids: [String]) -> String {
        let members = kids.map { kid in
            #"{"kty":"OKP","crv":"Ed25519","kid":"\#(kid)","alg":"EdDSA","use":"sig","x":"\#(TokenFixtures.b64url(keys[kid]!.publicKey.rawRepresentation))"}"#
        }
        return #"{"keys":["# + members.joined(separator: ",") + "]}"
    }

    func token(_ kid: String, _ claims: String) throws -> String {
        let input =
            TokenFixtures.b64url(#"{"alg":"EdDSA","typ":"JWT","kid":"\#(kid)"}"#) + "."
            + TokenFixtures.b64url(claims)
        return input + "." + TokenFixtures.b64url(try keys[kid]!.signature(for: Array(input.utf8)))
    }

    static func claims(sub: String = "alice", aud: String = #""api""#, exp: Int? = nil, nbf: Int? = nil) -> String {
        var members = [#""sub":"\#(sub)""#, #""aud":\#(aud)"#]
        if let exp { members.append(#""exp":\#(exp)"#) }
        if let nbf { members.append(#""nbf":\#(nbf)"#) }
        return "{" + members.joined(separator: ",") + "}"
    }
}

/// `exp`, `nbf` (with the leeway) and `aud` of tokens whose signature verified, judged when they arrive.
@Suite(.ownThreads) struct TokenValidityTests {
    let keys: RotatingKeys = {
        var k = RotatingKeys()
        k.add("k1")
        return k
    }()

    func judged(_ claims: String, policy: TokenPolicy = TokenPolicy()) async throws -> AuditEvent {
        let set = try await JWKSKeySet.parse(Array(keys.jwks(["k1"]).utf8))
        var e = span([
            Attribute("http.request.header.authorization", .string("Bearer " + (try keys.token("k1", claims))))
        ])
        testNormalizer(jwks: set, policy: policy).normalize(&e)
        return e
    }

    static var now: Int { Int(Date().timeIntervalSince1970) }

    @Test(
        arguments: [
            // (exp, nbf relative to now; leeway; expected origin)
            (-3_600, nil, 60, IdentityOrigin.expiredToken),
            (-30, nil, 60, .verifiedToken),  // within the leeway
            (-30, nil, 0, .expiredToken),
            (3_600, nil, 60, .verifiedToken),
            (3_600, 600, 60, .notYetValidToken),
            (3_600, 30, 60, .verifiedToken),  // within the leeway
            (3_600, -60, 0, .verifiedToken),
        ] as [(Int, Int?, Int, IdentityOrigin)])
    func timeClaimsAreJudgedWithTheLeeway(exp: Int, nbf: Int?, leeway: Int, origin: IdentityOrigin) async throws {
        let claims = RotatingKeys.claims(exp: Self.now + exp, nbf: nbf.map { Self.now + $0 })
        let e = try await judged(claims, policy: TokenPolicy(leewaySeconds: leeway))
        #expect(e.user?.subject == "alice")
        #expect(e.user?.origin == origin)
        let validity = tokenRecord(e).value(forKey: "validity")?.stringValue ?? ""
        switch origin {
        case .expiredToken: #expect(validity == "expired: exp \(Self.now + exp)" || validity.hasPrefix("expired: exp "))
        case .notYetValidToken: #expect(validity.hasPrefix("not yet valid: nbf "))
        default: #expect(validity == "valid")
        }
    }

    @Test(
        arguments: [
            (#""api""#, ["api"], IdentityOrigin.verifiedToken),
            (#"["web","api"]"#, ["api"], .verifiedToken),
            (#""web""#, ["api", "admin"], .wrongAudienceToken),
            (#"[]"#, ["api"], .wrongAudienceToken),
            (#""web""#, [], .verifiedToken),  // no audience configured: not judged
        ] as [(String, [String], IdentityOrigin)])
    func theAudienceMustBeAConfiguredOne(aud: String, audiences: [String], origin: IdentityOrigin) async throws {
        let claims = RotatingKeys.claims(aud: aud, exp: Self.now + 600)
        let e = try await judged(claims, policy: TokenPolicy(audiences: audiences))
        #expect(e.user?.origin == origin)
        if origin == .wrongAudienceToken {
            #expect(tokenRecord(e).value(forKey: "validity")?.stringValue?.hasPrefix("wrong audience") == true)
        }
    }

    @Test func aMalformedExpIsExpiredAndAnUnverifiedTokenIsOnlyDecoded() async throws {
        let e = try await judged(#"{"sub":"alice","exp":"tomorrow"}"#)
        #expect(e.user?.origin == .expiredToken)
        // A token the JWKS cannot verify: its claims are not judged, the origin stays decodedToken.
        var other = RotatingKeys()
        other.add("k1")
        let set = try await JWKSKeySet.parse(Array(keys.jwks(["k1"]).utf8))
        var forged = span([
            Attribute(
                "http.request.header.authorization",
                .string("Bearer " + (try other.token("k1", RotatingKeys.claims(exp: Self.now - 3_600)))))
        ])
        testNormalizer(jwks: set).normalize(&forged)
        #expect(forged.user?.origin == .decodedToken)
        #expect(tokenRecord(forged).value(forKey: "validity") == nil)
    }

    @Test func aValidTokenWinsOverAnExpiredOneOnTheSameEvent() async throws {
        let set = try await JWKSKeySet.parse(Array(keys.jwks(["k1"]).utf8))
        let expired = try keys.token("k1", RotatingKeys.claims(exp: Self.now - 3_600))
        let valid = try keys.token("k1", RotatingKeys.claims(exp: Self.now + 3_600))
        var e = span([
            Attribute("http.request.header.authorization", .string("Bearer " + expired)),
            Attribute("http.request.header.x-forwarded-access-token", .string(valid)),
        ])
        testNormalizer(jwks: set).normalize(&e)
        #expect(e.user?.origin == .verifiedToken)
    }
}

/// The JWKS read from a real HTTP server on loopback whose keys rotate: an unknown `kid` makes the collector
/// read it again (at most once per interval), and it is read again on its period.
@Suite(.serialized, .ownThreads) struct JWKSRotationTests {
    final class Server: @unchecked Sendable {
        // @unchecked: immutable after init; ChildProcess is thread-safe.
        let dir: TempDir
        let process: ChildProcess
        let url: String

        init(_ jwks: String) throws {
            dir = TempDir("jwks")
            process = try ChildProcess(
                "/usr/bin/python3",
                [PythonSDKTests.root.appendingPathComponent("Tests/clients/jwks_server.py").path, dir.path])
            let port = try process.waitForStdout("its port") { $0.contains("\n") }
                .split(separator: "\n")[0]
            url = "http://127.0.0.1:\(port)/jwks.json"
            try serve(jwks)
        }

        /// Replaces the published set at once (rename), as an identity provider's rotation does.
        func serve(_ jwks: String) throws {
            try jwks.write(toFile: dir.path + "/jwks.next", atomically: false, encoding: .utf8)
            guard rename(dir.path + "/jwks.next", dir.path + "/jwks.json") == 0 else {
                throw ChildProcessFailure("rename failed")
            }
        }

        /// How many times the set was served, after a pause for the server's line to reach the pipe (it prints
        /// before it answers).
        func served() async throws -> Int {
            try await Task.sleep(for: .milliseconds(100))
            return process.stdoutSoFar.split(separator: "\n").filter { $0.hasPrefix("GET ") }.count
        }

        deinit {
            _ = process.stop(signal: SIGKILL, within: 5)
            dir.remove()
        }
    }

    static let logger: Logger = {
        var l = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        l.logLevel = .critical
        return l
    }()

    /// Stores one span carrying `token` through the ingest service and returns what was stored.
    static func store(_ token: String, _ service: IngestService, _ dir: TempDir) async throws -> AuditEvent? {
        var e = span([Attribute("http.request.header.authorization", .string("Bearer " + token))])
        e.spanID = SpanID(value: UInt64.random(in: 1...UInt64.max))
        let r = await service.handle(
            method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: nil,
            body: try OTLPMapping.traceRequest(from: [e]).serializedBytes())
        #expect(r.status == 200)
        var query = EventQuery()
        query.includeDuplicates = true
        return try AuditStore(directories: [dir.dataDirectory]).search(query).map(\.event)
            .first { $0.spanID == e.spanID }
    }

    @Test func anUnknownKidIsFetchedOnceAndTheFirstTokenOfANewKeyVerifies() async throws {
        var keys = RotatingKeys()
        keys.add("k1")
        keys.add("k2")
        let server = try Server(keys.jwks(["k1"]))
        let source = try await JWKSSource.load(
            .url(server.url), refreshInterval: .zero, unknownKeyInterval: .seconds(3_600), logger: Self.logger)
        #expect(source.keys.keyIDs == ["k1"])
        #expect(try await server.served() == 1)
        let dir = TempDir("jwks-ingest")
        defer { dir.remove() }
        var options = NormalizerOptions()
        options.jwks = source
        let log = try DurableLog(directory: dir.dataDirectory, logger: Self.logger)
        let service = IngestService(log: log, normalizer: Normalizer(options: options), logger: Self.logger)
        let claims = RotatingKeys.claims(exp: Int(Date().timeIntervalSince1970) + 600)

        let before = try await Self.store(try keys.token("k1", claims), service, dir)
        #expect(before?.user?.origin == .verifiedToken)
        #expect(try await server.served() == 1)  // a known kid costs no fetch

        // The provider rotates: k2 is published and signs the next token, which must verify at once.
        try server.serve(keys.jwks(["k1", "k2"]))
        let rotated = try await Self.store(try keys.token("k2", claims), service, dir)
        #expect(rotated?.user?.origin == .verifiedToken)
        #expect(try await server.served() == 2)
        #expect(source.keys.keyIDs == ["k1", "k2"])

        // Made-up kids: at most one fetch per interval (here none more within the hour), and they stay unverified.
        for n in 0..<20 {
            var forger = RotatingKeys()
            forger.add("made-up-\(n)")
            let stored = try await Self.store(try forger.token("made-up-\(n)", claims), service, dir)
            #expect(stored?.user?.origin == .decodedToken)
        }
        #expect(try await server.served() == 2)
        try await log.close()
    }

    @Test func aMadeUpKidCostsOneFetchPerInterval() async throws {
        var keys = RotatingKeys()
        keys.add("k1")
        let server = try Server(keys.jwks(["k1"]))
        let source = try await JWKSSource.load(
            .url(server.url), refreshInterval: .zero, unknownKeyInterval: .seconds(1), logger: Self.logger)
        let claims = RotatingKeys.claims(exp: Int(Date().timeIntervalSince1970) + 600)
        let start = ContinuousClock.now
        var forger = RotatingKeys()
        forger.add("nope")
        let forged = try CompactJWT(try forger.token("nope", claims))
        // Concurrent requests naming an unknown kid share one fetch; later ones within the second fetch nothing.
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    _ = source.verify(forged)
                    _ = await source.fetchForUnknownKeys()
                }
            }
        }
        #expect(try await server.served() == 2)
        for _ in 0..<8 {
            _ = source.verify(forged)
            _ = await source.fetchForUnknownKeys()
        }
        // At most one fetch per interval (a second) since the first, which came after `start`: within a second
        // that is none; on a loaded machine these calls may span several intervals, one fetch each at most.
        let elapsed = ContinuousClock.now - start
        let served = try await server.served()
        if elapsed < .seconds(1) {
            #expect(served == 2)
        } else {
            let intervals = Int(elapsed.components.seconds)
            #expect(served >= 2 && served <= 2 + intervals, "\(served) fetches in \(elapsed)")
        }
        try await Task.sleep(for: .milliseconds(1_100))
        _ = source.verify(forged)
        #expect(await source.fetchForUnknownKeys() == false)  // fetched again, still no such kid
        #expect(try await server.served() >= 3)
    }

    @Test func aSetPastAMebibyteIsRefusedAndTheKeysThereWereStay() async throws {
        var keys = RotatingKeys()
        keys.add("k1")
        let padded = #"{"keys":[],"pad":""# + String(repeating: "x", count: 1 << 20) + #""}"#
        let server = try Server(padded)
        await #expect {
            _ = try await JWKSSource.load(.url(server.url), logger: Self.logger)
        } throws: { error in
            guard let error = error as? JWKSError else { return false }
            return error.code == .unreadable && error.message.contains("cannot fetch the JWKS from \(server.url)")
        }
        try server.serve(keys.jwks(["k1"]))
        let source = try await JWKSSource.load(.url(server.url), logger: Self.logger)
        try server.serve(padded)
        #expect(await source.refresh(reason: "test") == nil)
        #expect(source.keys.keyIDs == ["k1"])
    }

    @Test func theSetIsReadAgainOnItsPeriodAndARetiredKeyStopsVerifying() async throws {
        var keys = RotatingKeys()
        keys.add("k1")
        keys.add("k3")
        let server = try Server(keys.jwks(["k1"]))
        let source = try await JWKSSource.load(
            .url(server.url), refreshInterval: .milliseconds(200), unknownKeyInterval: .seconds(3_600),
            logger: Self.logger)
        let claims = RotatingKeys.claims(exp: Int(Date().timeIntervalSince1970) + 600)
        let old = try CompactJWT(try keys.token("k1", claims))
        guard case .verified = source.verify(old) else {
            Issue.record("k1 should verify before the rotation")
            return
        }
        let refresher = Task { try await JWKSRefreshService(source: source).run() }
        defer { refresher.cancel() }
        try server.serve(keys.jwks(["k3"]))
        let deadline = ContinuousClock.now + .seconds(10)
        while source.keys.keyIDs != ["k3"], ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(source.keys.keyIDs == ["k3"])
        #expect(try await server.served() >= 2)
        guard case .failed = source.verify(old) else {
            Issue.record("a retired key must not verify")
            return
        }
        guard case .verified = source.verify(try CompactJWT(try keys.token("k3", claims))) else {
            Issue.record("the new key must verify")
            return
        }
        // A set that cannot be used (the provider serves garbage) keeps the keys there were.
        try server.serve("not json")
        let served = try await server.served()
        while try await server.served() < served + 2, ContinuousClock.now < deadline + .seconds(10) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(source.keys.keyIDs == ["k3"])
    }
}
