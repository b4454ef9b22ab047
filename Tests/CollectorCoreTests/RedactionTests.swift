import Foundation
import LogFormat
import PropertyBased
import SyntheticTraffic
import Testing

@testable import CollectorCore
@testable import CollectorParsers

/// What the redactor removes, where, and what it leaves alone.
@Suite struct RedactionTests {
    static let opaque = "s3cr3t-Opaque-Credential-91f2"

    @Test(arguments: [
        "http.request.header.authorization", "HTTP.REQUEST.HEADER.AUTHORIZATION",
        "http.request.header.proxy-authorization",
        "http.response.header.set-cookie", "http.request.header.Cookie", "http_authorization", "http_cookie",
        "Authorization", "proxy_authorization", "sent_http_set_cookie", "upstream_http_authorization", "cookie_session",
        "req_authorization", "app.Authorization",
    ])
    func credentialHeaderKeysLoseTheirWholeValue(key: String) {
        var e = span([Attribute(key, .string("Bearer " + Self.opaque)), Attribute("http.route", .string("/items"))])
        testNormalizer().normalize(&e)
        #expect(!allStrings(e).contains { $0.contains(Self.opaque) })
        let value = e.attributes.first { $0.key == key }?.value.stringValue ?? ""
        #expect(value.hasPrefix("[redacted:") || value.hasPrefix("Bearer [redacted:"))
        #expect(redactedList(e).count == 1)
        #expect(redactedList(e).first?.hasPrefix("attributes." + key + "=") == true)
        #expect(e.attributes.value(forKey: "http.route") == .string("/items"))
    }

    @Test func headerArraysAndNonStringValuesAreRedactedToo() {
        var e = span([
            Attribute(
                "http.request.header.authorization",
                .array([.string("Basic dXNlcjpwYXNzd29yZA=="), .string(Self.opaque)])),
            Attribute("http.request.header.cookie", .keyValueList([Attribute("session", .string(Self.opaque))])),
            Attribute("password", .int(123_456_789)),
            Attribute("http.response.header.set-cookie", .bytes(Array(Self.opaque.utf8))),
        ])
        testNormalizer().normalize(&e)
        let text = allStrings(e).joined(separator: "\n")
        #expect(!text.contains(Self.opaque))
        #expect(!text.contains("dXNlcjpwYXNzd29yZA"))
        #expect(!text.contains("123456789"))
        #expect(
            e.attributes[0].value
                == .array([
                    .string(
                        "Basic "
                            + Fingerprinter(secret: testHMACSecret).marker(
                                .header("authorization"), secret: Array("dXNlcjpwYXNzd29yZA==".utf8))),
                    .string(
                        Fingerprinter(secret: testHMACSecret).marker(
                            .header("authorization"), secret: Array(Self.opaque.utf8))),
                ]))
        #expect(redactedList(e).count == 5)
    }

    @Test(arguments: [
        ("/callback?code=AUTHCODE123&state=xyz", "AUTHCODE123", "/callback?code=[redacted:param.code:h="),
        (
            "https://api.example.com/x?a=1&access_token=TOK456#frag", "TOK456",
            "https://api.example.com/x?a=1&access_token=[redacted:param.access_token:h="
        ),
        ("/login?user=bob&Password=hunter2", "hunter2", "/login?user=bob&Password=[redacted:param.password:h="),
        (
            "https://app/#id_token=IDTOK789&token_type=bearer", "IDTOK789",
            "https://app/#id_token=[redacted:param.id_token:h="
        ),
        ("access_token=ONLYQUERY", "ONLYQUERY", "access_token=[redacted:param.access_token:h="),
        (
            #"{"token_type":"bearer","refresh_token":"REFRESH42","expires_in":3600}"#, "REFRESH42",
            #"{"token_type":"bearer","refresh_token":"[redacted:param.refresh_token:h="#
        ),
        (
            "sending Authorization: Bearer OPAQUEBEARER77 upstream", "OPAQUEBEARER77",
            "sending Authorization: Bearer [redacted:credential:h="
        ),
        (
            "blob.core.windows.net/c/f?sv=2022&sig=SASSIG%2Fabc&se=2026", "SASSIG%2Fabc",
            "blob.core.windows.net/c/f?sv=2022&sig=[redacted:param.sig:h="
        ),
    ])
    func tokenLookingParametersAndCredentialsInValues(text: String, secret: String, prefix: String) {
        var e = span([Attribute("url.full", .string(text))])
        e.http = HTTPFacts(method: "GET", target: text, statusCode: 200)
        testNormalizer().normalize(&e)
        #expect(!allStrings(e).contains { $0.contains(secret) })
        #expect(e.attributes[0].value.stringValue?.hasPrefix(prefix) == true, "\(e.attributes[0].value)")
        #expect(e.http?.target?.hasPrefix(prefix) == true)
        #expect(redactedList(e).contains { $0.hasPrefix("http.target=") })
    }

    @Test func jwtsAreFoundInEveryFieldTheRecordStores() throws {
        let jwt = TokenFixtures.unsigned(TokenFixtures.aliceClaims)
        let signature = String(jwt.split(separator: ".")[2])
        var e = span([
            Attribute(
                "nested",
                .keyValueList([
                    Attribute("deeper", .array([.string("x"), .keyValueList([Attribute("t", .string("tok " + jwt))])]))
                ])),
            Attribute(jwt, .string("a key that is a token")),
            Attribute("raw", .bytes(Array(("\u{1}" + jwt).utf8) + [0xFF])),
        ])
        e.name = "GET /reset/" + jwt
        e.traceState = "vendor=" + jwt
        e.statusMessage = "bad token " + jwt
        e.events = [
            SpanEvent(
                timeUnixNano: 1, name: jwt,
                attributes: [Attribute("exception.message", .string("token \(jwt) expired"))])
        ]
        e.links = [
            SpanLink(
                traceID: TraceID(high: 9, low: 9), spanID: SpanID(value: 9), traceState: jwt,
                attributes: [Attribute("l", .string(jwt))])
        ]
        e.resourceAttributes = [Attribute("service.name", .string("api")), Attribute("r", .array([.string(jwt)]))]
        e.scope = InstrumentationScope(name: jwt, version: "1", attributes: [Attribute("s", .string(jwt))])
        e.body = .keyValueList([Attribute("b", .string(jwt))])
        e.resourceSchemaURL = "https://x/?" + jwt
        e.http = HTTPFacts(
            method: "GET", target: "/reset/" + jwt, route: "/reset/{token}", statusCode: 200, clientAddress: "10.0.0.1")
        e.workload = jwt
        testNormalizer().normalize(&e)
        let strings = allStrings(e)
        #expect(!strings.contains { $0.contains(signature) })
        #expect(!strings.contains { $0.contains(jwt.split(separator: ".")[1]) })
        // The token became the identity (decoded only), and its claims are kept.
        #expect(e.user?.subject == "alice")
        #expect(e.user?.origin == .decodedToken)
        #expect(redactedList(e).count >= 17)
        #expect(e.attributes[1].key.hasPrefix("[redacted:jwt:h="))
        #expect(e.workload == nil)  // a redacted token is no workload identity
    }

    @Test(arguments: [
        "external-service.ns.svc.cluster.local", "example.com", "/api/v1/items?id=5&page=2", "code review at 10",
        "a = b", "Bearer", "Bearer x", "eyJ", "1.2.3", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        "SELECT * FROM sales WHERE region = 'EU' AND code = 5", "eyJhbGciOi.notjson.x", "exabytes.per.second.metric",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Bearer Bearer", "basic income",
        "bearer tokens are issued", "Basic authentication",
        "codes=1&tokens=2", "error.type", "ewogICJ0ZXN0IjogMQp9.abc", "",
    ])
    func innocentValuesAreLeftAlone(text: String) {
        var e = span([Attribute("v", .string(text)), Attribute("url.query", .string(text))])
        let before = e
        testNormalizer().normalize(&e)
        #expect(e == before)
    }

    @Test func markersCarryAKeyedFingerprintOnlyWithASecret() {
        let jwt = TokenFixtures.unsigned(#"{"sub":"x"}"#)
        func marker(_ n: Normalizer) -> String {
            var e = span([Attribute("m", .string(jwt))])
            n.normalize(&e)
            return e.attributes[0].value.stringValue ?? ""
        }
        let keyed = marker(testNormalizer())
        #expect(keyed.hasPrefix("[redacted:jwt:h=") && keyed.count == "[redacted:jwt:h=".count + 16 + 1)
        #expect(marker(testNormalizer()) == keyed)  // the same secret correlates
        var other = NormalizerOptions()
        other.redaction.hmacSecret = Array("another-collector-secret-000000".utf8)
        #expect(marker(Normalizer(options: other)) != keyed)
        #expect(marker(testNormalizer(hmac: false)) == "[redacted:jwt]")
    }

    @Test func configuredKeysAndParametersReplaceTheDefaults() {
        var o = NormalizerOptions()
        o.redaction.keys = ["x-tenant-secret"]
        o.redaction.queryParameters = ["session"]
        let n = Normalizer(options: o)
        var e = span([
            Attribute("http.request.header.x_tenant_secret", .string("T1")), Attribute("db.password", .string("P1")),
            Attribute("url.full", .string("/a?session=S1&code=C1")),
            Attribute("http.request.header.authorization", .string("A1")),
        ])
        n.normalize(&e)
        #expect(e.attributes[0].value.stringValue == "[redacted:key]")
        #expect(e.attributes[1].value.stringValue == "P1")  // no longer a configured key
        #expect(e.attributes[2].value.stringValue == "/a?session=[redacted:param.session]&code=C1")
        #expect(e.attributes[3].value.stringValue == "[redacted:authorization]")  // always, whatever is configured
    }

    @Test func alreadyRedactedValuesAreNotRedactedAgain() {
        var e = span([Attribute("url.full", .string("/cb?code=SECRETCODE"))])
        let n = testNormalizer()
        n.normalize(&e)
        let once = e.attributes[0]
        var again = span([once])
        n.normalize(&again)
        #expect(again.attributes == [once])
    }

    @Test func theDefaultsMatchTheDocumentedLists() {
        let p = RedactionPolicy()
        #expect(p.keys == CollectorConfig().redactionKeys)
        #expect(
            p.queryParameters.contains("access_token") && p.queryParameters.contains("id_token")
                && p.queryParameters.contains("code"))
        #expect(RedactionPolicy.credentialHeaders == ["authorization", "proxy-authorization", "cookie", "set-cookie"])
    }

    // MARK: Property: random attribute trees never leak

    /// A random tree of attributes with secrets planted in keys, values, nested lists and arrays.
    static func hostileEvent(seed: UInt64) -> (AuditEvent, [String]) {
        var rng = SplitMix64(seed: seed)
        var secrets: [String] = []
        func word() -> String {
            let words = [
                "items", "GET", "200", "alpha.beta", "x=1", "a b", "eyJ", "Bearer", "code", "", "é", "spiffe://td/x",
            ]
            return words[Int(rng.next() % UInt64(words.count))]
        }
        func secret() -> String {
            let tag = String(rng.next() % 1_000_000_000_000, radix: 36)
            let kind = rng.next() % 5
            let s: String
            switch kind {
            case 0:
                s = TokenFixtures.unsigned(#"{"sub":"u\#(tag)","jti":"\#(tag)"}"#)
                secrets.append(String(s.split(separator: ".")[2]))
                return s
            case 1:
                s = "opaque\(tag)XYZ"
                secrets.append(s)
                return "Bearer " + s
            case 2:
                s = "pw\(tag)Q"
                secrets.append(s)
                return "/login?password=" + s + "&next=/"
            case 3:
                s = "ck\(tag)Z"
                secrets.append(s)
                return "access_token=" + s
            default:
                s = "bs\(tag)K"
                secrets.append(s)
                return #"{"client_secret":"\#(s)"}"#
            }
        }
        func value(depth: Int) -> AttributeValue {
            switch rng.next() % (depth > 3 ? 4 : 7) {
            case 0: return .string(word())
            case 1: return .string(word() + " " + secret() + " " + word())
            case 2: return .int(Int64(bitPattern: rng.next()))
            case 3: return .bytes(Array((secret() + "\u{FF}").utf8))
            case 4, 5: return .array((0..<(rng.next() % 4)).map { _ in value(depth: depth + 1) })
            default: return .keyValueList(attributes(depth: depth + 1))
            }
        }
        func attributes(depth: Int) -> [Attribute] {
            (0..<(1 + rng.next() % 5)).map { _ in
                switch rng.next() % 6 {
                case 0:
                    let headers = [
                        "http.request.header.authorization", "HTTP_COOKIE", "http.response.header.set-cookie",
                        "Proxy-Authorization",
                    ]
                    let s = "hdr\(rng.next() % 1_000_000)V"
                    secrets.append(s)
                    return Attribute(
                        headers[Int(rng.next() % 4)], rng.next() % 2 == 0 ? .string(s) : .array([.string("Basic " + s)])
                    )
                case 1: return Attribute(secret(), .string(word()))
                default: return Attribute(word(), value(depth: depth))
                }
            }
        }
        var e = span(attributes(depth: 0))
        e.resourceAttributes = attributes(depth: 1)
        e.events = [SpanEvent(timeUnixNano: 1, name: secret(), attributes: attributes(depth: 1))]
        e.links = [
            SpanLink(
                traceID: TraceID(high: 1, low: 1), spanID: SpanID(value: 1), traceState: secret(),
                attributes: attributes(depth: 1))
        ]
        e.statusMessage = secret()
        e.body = value(depth: 0)
        return (e, secrets)
    }

    @Test func randomAttributeTreesNeverLeakASecret() async {
        let n = testNormalizer()
        await propertyCheck(count: 300, input: Gen.uint64()) { seed in
            var (e, secrets) = Self.hostileEvent(seed: seed)
            n.normalize(&e)
            let strings = allStrings(e)
            for s in secrets where strings.contains(where: { $0.contains(s) }) {
                Issue.record("seed \(seed): \(s) survived")
            }
            // Idempotent: a second pass finds nothing new to redact. The first pass's note, met again as if a
            // client had sent it, is kept under the sender's prefix (the `audit.` namespace is the collector's).
            var again = e
            n.normalize(&again)
            #expect(redactedList(again).isEmpty)
            let moved = Normalizer.movedPrefix + Normalizer.redactedKey
            #expect(again.attributes.value(forKey: moved) == e.attributes.value(forKey: Normalizer.redactedKey))
        }
    }
}
