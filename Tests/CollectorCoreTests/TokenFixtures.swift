import Crypto
import Foundation
import LogFormat

@testable import CollectorCore

/// Real signed JWTs and the JWKS that verifies them, made with swift-crypto (independently of jwt-kit, which
/// the collector verifies with).
struct TokenFixtures {
    let ed = Curve25519.Signing.PrivateKey()
    let p256 = P256.Signing.PrivateKey()

    static func b64url(_ bytes: some Sequence<UInt8>) -> String {
        Data(Array(bytes)).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func b64url(_ json: String) -> String { b64url(Array(json.utf8)) }

    /// The JWKS with the Ed25519 key (kid `ed-1`) and the P-256 key (kid `ec-1`, no `alg`).
    var jwks: String {
        let x963 = Array(p256.publicKey.x963Representation)  // 0x04 ‖ x ‖ y
        return """
            {"keys":[
              {"kty":"OKP","crv":"Ed25519","kid":"ed-1","alg":"EdDSA","use":"sig","x":"\(Self.b64url(ed.publicKey.rawRepresentation))"},
              {"kty":"EC","crv":"P-256","kid":"ec-1","x":"\(Self.b64url(x963[1...32]))","y":"\(Self.b64url(x963[33...64]))"}
            ]}
            """
    }

    func jwksKeySet() async throws -> JWKSKeySet { try await JWKSKeySet.parse(Array(jwks.utf8)) }

    /// An EdDSA token with `claims` (a JSON object), kid `ed-1` unless given.
    func edToken(_ claims: String, kid: String? = "ed-1") throws -> String {
        let header = kid.map { #"{"alg":"EdDSA","typ":"JWT","kid":"\#($0)"}"# } ?? #"{"alg":"EdDSA","typ":"JWT"}"#
        let input = Self.b64url(header) + "." + Self.b64url(claims)
        return input + "." + Self.b64url(try ed.signature(for: Array(input.utf8)))
    }

    func esToken(_ claims: String) throws -> String {
        let input = Self.b64url(#"{"alg":"ES256","kid":"ec-1"}"#) + "." + Self.b64url(claims)
        return input + "." + Self.b64url(try p256.signature(for: Array(input.utf8)).rawRepresentation)
    }

    /// A token nobody can verify (random signature), header as given.
    static func unsigned(_ claims: String, header: String = #"{"alg":"RS256","typ":"JWT"}"#) -> String {
        b64url(header) + "." + b64url(claims) + "." + b64url((0..<64).map { _ in UInt8.random(in: 0...255) })
    }

    static let aliceClaims =
        #"{"sub":"alice","email":"alice@example.com","groups":["auditors","admins"],"iss":"https://idp.example.com","aud":"api","exp":4102444800}"#
}

/// Every string an event holds, flattened (for leak checks).
func allStrings(_ e: AuditEvent) -> [String] {
    var out: [String] = [
        e.name, e.traceState, e.service, e.statusMessage, e.severityText, e.eventName, e.resourceSchemaURL,
        e.scopeSchemaURL, e.scope.name, e.scope.version,
    ]
    func value(_ v: AttributeValue) {
        switch v {
        case .string(let s): out.append(s)
        case .bytes(let b): out.append(String(decoding: b, as: UTF8.self))
        case .array(let a): a.forEach(value)
        case .keyValueList(let l): attributes(l)
        default: break
        }
    }
    func attributes(_ list: [Attribute]) {
        for a in list {
            out.append(a.key)
            value(a.value)
        }
    }
    attributes(e.attributes)
    attributes(e.resourceAttributes)
    attributes(e.scope.attributes)
    for ev in e.events {
        out.append(ev.name)
        attributes(ev.attributes)
    }
    for l in e.links {
        out.append(l.traceState)
        attributes(l.attributes)
    }
    if let b = e.body { value(b) }
    if let w = e.workload { out.append(w) }
    if let h = e.http { out += [h.method, h.target, h.route, h.clientAddress].compactMap { $0 } }
    if let u = e.user { out += [u.subject, u.email, u.issuer].compactMap { $0 } + u.groups }
    return out
}

func redactedList(_ e: AuditEvent) -> [String] {
    guard case .array(let values)? = e.attributes.value(forKey: Normalizer.redactedKey) else { return [] }
    return values.compactMap(\.stringValue)
}

func tokenRecord(_ e: AuditEvent) -> [Attribute] {
    guard case .keyValueList(let l)? = e.attributes.value(forKey: Normalizer.tokenKey) else { return [] }
    return l
}

func span(_ attributes: [Attribute] = []) -> AuditEvent {
    AuditEvent(
        kind: .span, startTimeUnixNano: 1_700_000_000_000_000_000, endTimeUnixNano: 1_700_000_000_100_000_000,
        traceID: TraceID(high: 1, low: 2), spanID: SpanID(value: 3), name: "GET /items", service: "api",
        attributes: attributes)
}

let testHMACSecret = Array("collector-test-secret-0123456789".utf8)

func testNormalizer(hmac: Bool = true, jwks: JWKSKeySet? = nil, policy: TokenPolicy = TokenPolicy()) -> Normalizer {
    var o = NormalizerOptions()
    if hmac { o.redaction.hmacSecret = testHMACSecret }
    o.jwks = jwks.map { JWKSSource(keys: $0) }
    o.tokenPolicy = policy
    return Normalizer(options: o)
}
