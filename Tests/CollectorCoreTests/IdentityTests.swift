import Crypto
import Foundation
import LogFormat
import Testing

@testable import CollectorCore
@testable import CollectorParsers

/// User identity from tokens (decoded, verified), its order of trust, workload identity, legacy names.
@Suite struct IdentityTests {
    let tokens = TokenFixtures()

    func bearer(_ token: String, _ extra: [Attribute] = []) -> AuditEvent {
        span([Attribute("http.request.header.authorization", .string("Bearer " + token))] + extra)
    }

    @Test func aDecodedTokenNamesTheUserAndOnlyItsFingerprintIsKept() throws {
        let token = try tokens.edToken(TokenFixtures.aliceClaims)
        var e = bearer(token)
        testNormalizer().normalize(&e)
        let user = try #require(e.user)
        #expect(user.subject == "alice")
        #expect(user.email == "alice@example.com")
        #expect(user.groups == ["auditors", "admins"])
        #expect(user.issuer == "https://idp.example.com")
        #expect(user.origin == .decodedToken)
        #expect(user.tokenFingerprint == Array(SHA256.hash(data: Array(token.utf8))))
        let record = tokenRecord(e)
        #expect(record.value(forKey: "verification") == .string("decoded only: no JWKS configured"))
        #expect(record.value(forKey: "sha256") == .string(HexCoding.encode(SHA256.hash(data: Array(token.utf8)))))
        #expect(record.value(forKey: "use") == .string("names user"))
        #expect(record.value(forKey: "kid") == .string("ed-1"))
        guard case .keyValueList(let claims)? = record.value(forKey: "claims") else {
            Issue.record("no claims")
            return
        }
        #expect(claims.value(forKey: "sub") == .string("alice"))
        #expect(claims.value(forKey: "exp") == .int(4_102_444_800))
        #expect(!allStrings(e).contains { $0.contains(token.split(separator: ".")[2]) })
    }

    @Test func tokensSignedByAJWKSKeyAreVerified() async throws {
        let keys = try await tokens.jwksKeySet()
        #expect(Set(keys.keyIDs) == ["ed-1", "ec-1"])
        for token in [try tokens.edToken(TokenFixtures.aliceClaims), try tokens.esToken(TokenFixtures.aliceClaims)] {
            var e = bearer(token)
            testNormalizer(jwks: keys).normalize(&e)
            #expect(e.user?.origin == .verifiedToken)
            var again = bearer(token)  // the second time from the cache, with the same answer
            testNormalizer(jwks: keys).normalize(&again)
            #expect(again == e)
            #expect(tokenRecord(e).value(forKey: "verification")?.stringValue?.hasPrefix("verified (kid e") == true)
        }
    }

    @Test func tokensThatDoNotVerifyAreOnlyDecodedAndSayWhy() async throws {
        let keys = try await tokens.jwksKeySet()
        let good = try tokens.edToken(TokenFixtures.aliceClaims)
        let parts = good.split(separator: ".").map(String.init)
        let forged = parts[0] + "." + TokenFixtures.b64url(#"{"sub":"mallory"}"#) + "." + parts[2]
        let cases: [(String, String)] = [
            (forged, "not verified: signature does not verify"),
            (try tokens.edToken(TokenFixtures.aliceClaims, kid: "nope"), "not verified: no key with kid nope"),
            (
                TokenFixtures.unsigned(TokenFixtures.aliceClaims, header: #"{"alg":"none"}"#),
                "not verified: alg none is never accepted"
            ),
            (
                TokenFixtures.unsigned(TokenFixtures.aliceClaims, header: #"{"alg":"HS256","kid":"ed-1"}"#),
                "not verified: no key for algorithm HS256"
            ),
            (try tokens.edToken(TokenFixtures.aliceClaims, kid: nil), "verified (kid ed-1, EdDSA)"),
        ]
        for (token, expected) in cases {
            var e = bearer(token)
            testNormalizer(jwks: keys).normalize(&e)
            #expect(tokenRecord(e).value(forKey: "verification") == .string(expected))
            #expect(tokenRecord(e).value(forKey: "alg") != nil)
            #expect(e.user?.origin == (expected.hasPrefix("verified") ? .verifiedToken : .decodedToken))
        }
    }

    @Test func attributeAndEdgeIdentitiesComeFirstAndTheTokenConfirmsOrIsIgnored() throws {
        let token = try tokens.edToken(TokenFixtures.aliceClaims)
        // A configured attribute named someone else: it stays; the token is recorded as ignored.
        var other = bearer(token)
        other.user = UserIdentity(subject: "bob", origin: .attribute)
        testNormalizer().normalize(&other)
        #expect(other.user == UserIdentity(subject: "bob", origin: .attribute))
        #expect(tokenRecord(other).value(forKey: "use") == .string("ignored: names alice, the event names bob"))
        // The edge named the same user: the token adds email, groups, issuer and its fingerprint.
        let line =
            #"{"msec":"1700000000.5","request_uri":"/x","status":"200","remote_user":"alice","http_authorization":"Bearer \#(token)"}"#
        var access = try AccessEventMapping.event(fromLine: Array(line.utf8))
        testNormalizer().deriveAuditFields(&access, from: .accessNDJSON)
        testNormalizer().normalize(&access)
        #expect(access.user?.origin == .edge)
        #expect(access.user?.email == "alice@example.com")
        #expect(access.user?.issuer == "https://idp.example.com")
        #expect(access.user?.tokenFingerprint == Array(SHA256.hash(data: Array(token.utf8))))
        #expect(tokenRecord(access).value(forKey: "use") == .string("confirms user"))
        #expect(!allStrings(access).contains { $0.contains(token) })
    }

    @Test(arguments: [
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9", "a JWS has 3 dot-separated parts, this token has 2"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.sig.x.y", "a JWE (5 parts): its claims are encrypted"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.!!!", "the signature is not base64url"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ.c2ln", "the payload is not a JSON object"),
        ("eyJhbGciOiJIUzI1NiJ9.WzEsMiwzXQ.c2ln", "the payload is not a JSON object"),
        ("eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJhbGljZSJ9.c2ln", "the header names no alg"),
    ])
    func malformedTokensGetPreciseProblems(token: String, problem: String) {
        #expect { try CompactJWT(token) } throws: { ($0 as? CompactJWT.Problem)?.message == problem }
    }

    @Test func hostileTokensAreRedactedAsOpaqueSecretsWithoutACrash() {
        let huge = "eyJhbGciOiJIUzI1NiJ9." + String(repeating: "eyJh", count: 10_000) + ".c2ln"
        let truncated = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9"
        let deep =
            TokenFixtures.b64url(#"{"alg":"x"}"#) + "." + TokenFixtures.b64url(String(repeating: "[", count: 5000))
            + ".c2ln"
        for token in [huge, truncated, deep, truncated + ".", "Bearer " + truncated] {
            var e = bearer(token, [Attribute("note", .string("seen " + token))])
            testNormalizer().normalize(&e)
            #expect(!allStrings(e).contains { $0.contains("eyJzdWIiOiJhbGljZSJ9") || $0.contains("eyJheyJh") })
            #expect(e.user == nil)
        }
    }

    @Test func hostileJWKSFilesGetPreciseErrors() async throws {
        func code(_ text: String) async -> JWKSError.Code? {
            do {
                _ = try await JWKSKeySet.parse(Array(text.utf8))
                return nil
            } catch { return error.code }
        }
        #expect(await code("not json") == .notAJWKS)
        #expect(await code(#"{"kees":[]}"#) == .notAJWKS)
        #expect(await code(#"[1,2]"#) == .notAJWKS)
        #expect(await code(#"{"keys":[]}"#) == .noUsableKey)
        #expect(await code(#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#) == .noUsableKey)
        #expect(await code(#"{"keys":[{"kty":"EC","crv":"P-256","kid":"bad","x":"AAAA","y":"AAAA"}]}"#) == .noUsableKey)
        #expect(await code(#"{"keys":[{"kty":"RSA","kid":"r","n":"!!","e":"AQAB"}]}"#) == .noUsableKey)
        do {
            _ = try await JWKSKeySet.load(path: "/nonexistent/jwks.json")
            Issue.record("loaded a missing file")
        } catch { #expect(error.code == .unreadable) }
        // Good keys load; unusable ones are skipped with their reason.
        let mixed = try JSONSerialization.jsonObject(with: Data(tokens.jwks.utf8)) as! [String: Any]
        var keys = mixed["keys"] as! [Any]
        keys.append(["kty": "RSA", "kid": "enc-1", "use": "enc", "n": "AQAB", "e": "AQAB"])
        keys.append(["kty": "OKP", "crv": "Ed25519", "kid": "priv", "x": "AAAA", "d": "AAAA"])
        keys.append("junk")
        let set = try await JWKSKeySet.parse(Array(try JSONSerialization.data(withJSONObject: ["keys": keys])))
        #expect(set.keyIDs == ["ed-1", "ec-1"])
        #expect(
            set.skipped == [
                "key 2 (kid enc-1): use enc, not sig",
                "key 3 (kid priv): a private key; a JWKS for verification holds public keys only",
                "key 4: not a JSON object",
            ])
    }

    // MARK: Workload identity

    @Test(arguments: [
        ("spiffe://cluster.local/ns/shop/sa/api", true), ("spiffe://example.org", true),
        ("spiffe://td/a/b.c_d-e", true),
        ("SPIFFE://cluster.local/ns/a", false), ("spiffe://Cluster.local/ns/a", false), ("spiffe:///ns/a", false),
        ("spiffe://td/ns//a", false), ("spiffe://td/ns/../a", false), ("spiffe://td/ns/a?x=1", false),
        ("spiffe://td/ns/a/", false),
        ("spiffe://td:8080/a", false), ("https://td/a", false),
    ])
    func spiffeIDsAreValidated(id: String, valid: Bool) {
        #expect((WorkloadIdentity.spiffeID(Substring(id)) != nil) == valid)
    }

    @Test func theCallersWorkloadComesFromXFCCPeerSANsAndMeshAttributes() {
        let xfcc =
            #"By=spiffe://cluster.local/ns/shop/sa/api;Hash=abc;Subject="CN=x,O=y";URI=spiffe://cluster.local/ns/web/sa/frontend,By=spiffe://cluster.local/ns/shop/sa/api;URI=spiffe://cluster.local/ns/edge/sa/gateway"#
        var a = span([Attribute("http.request.header.x-forwarded-client-cert", .string(xfcc))])
        a.workload = "spiffe://cluster.local/ns/shop/sa/api"  // what the mapping guessed (the proxy's own By=)
        testNormalizer().normalize(&a)
        #expect(a.workload == "spiffe://cluster.local/ns/edge/sa/gateway")

        var b = span([
            Attribute(
                "upstream_peer", .keyValueList([Attribute("uri_san", .string("spiffe://cluster.local/ns/db/sa/sql"))])),
            Attribute("downstream_peer_uri_san", .string("spiffe://cluster.local/ns/web/sa/frontend")),
        ])
        testNormalizer().normalize(&b)
        #expect(b.workload == "spiffe://cluster.local/ns/web/sa/frontend")

        var c = span([
            Attribute(
                "upstream_peer", .keyValueList([Attribute("uri_san", .string("spiffe://cluster.local/ns/db/sa/sql"))]))
        ])
        testNormalizer().normalize(&c)
        #expect(c.workload == "spiffe://cluster.local/ns/db/sa/sql")

        let line =
            #"{"msec":"1700000000.5","request_uri":"/x","status":"200","ssl_client_s_dn":"CN=gw,O=edge","ssl_client_san":"DNS:gw.local, URI:spiffe://edge.example/ns/edge/sa/gw"}"#
        var d = try! AccessEventMapping.event(fromLine: Array(line.utf8))
        testNormalizer().normalize(&d)
        #expect(d.workload == "spiffe://edge.example/ns/edge/sa/gw")

        var e = span([Attribute("x", .string("spiffe://bad domain/x"))])
        e.workload = "spiffe://bad domain/x"
        testNormalizer().normalize(&e)
        #expect(e.workload == nil)
    }

    // MARK: Legacy semantic-convention names

    @Test func legacyNamesGainTheirCurrentNamesBesideTheOriginal() {
        var e = span([
            Attribute("http.method", .string("GET")), Attribute("http.status_code", .string("503")),
            Attribute("http.target", .string("/items?page=2")), Attribute("peer.service", .string("analytics")),
            Attribute("db.system", .string("mssql")), Attribute("http.url", .string("https://x/y")),
            Attribute("url.full", .string("https://already/there")),
            Attribute("enduser.role", .string("admin, auditor")),
        ])
        testNormalizer().normalize(&e)
        #expect(e.attributes.value(forKey: "http.method") == .string("GET"))
        #expect(e.attributes.value(forKey: "http.request.method") == .string("GET"))
        #expect(e.attributes.value(forKey: "http.response.status_code") == .int(503))
        #expect(e.attributes.value(forKey: "url.path") == .string("/items"))
        #expect(e.attributes.value(forKey: "url.query") == .string("page=2"))
        #expect(e.attributes.value(forKey: "service.peer.name") == .string("analytics"))
        #expect(e.attributes.value(forKey: "db.system.name") == .string("microsoft.sql_server"))
        #expect(e.attributes.value(forKey: "url.full") == .string("https://already/there"))  // the current one wins
        #expect(e.attributes.value(forKey: "user.roles") == .array([.string("admin"), .string("auditor")]))
        #expect(
            e.attributes.value(forKey: Normalizer.semconvKey)
                == .array(
                    [
                        "http.method>http.request.method", "http.status_code>http.response.status_code",
                        "http.target>url.path",
                        "http.target>url.query", "peer.service>service.peer.name", "db.system>db.system.name",
                        "enduser.role>user.roles",
                    ].map(AttributeValue.string)))
        var current = span([Attribute("http.request.method", .string("GET"))])
        let before = current
        testNormalizer().normalize(&current)
        #expect(current == before)
    }
}
