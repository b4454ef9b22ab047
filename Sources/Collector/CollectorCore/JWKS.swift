// The verification keys of bearer JWTs: one JWKS (RFC 7517) as read, through jwt-kit, which turns each JSON Web
// Key into a signature algorithm (RS*, PS*, ES*, EdDSA). Verification then runs synchronously on the ingest
// path. A verified token's signature was checked with a key whose `kid` (when the token names one) and
// algorithm match. Reading the set again (rotation) is `JWKSSource`'s; judging `exp`, `nbf` and `aud` is
// `TokenPolicy`'s.
import Foundation
import JWTKit
import Synchronization

/// Why a JWKS file could not be used. Tests compare codes.
public struct JWKSError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The file could not be read.
        case unreadable
        /// Not a JSON object with a `keys` array.
        case notAJWKS
        /// No key in the set can verify signatures.
        case noUsableKey
    }
    public var code: Code
    public var message: String
    public var description: String { message }
}

/// How the signature of a token was judged.
public enum TokenVerification: Sendable, Hashable, CustomStringConvertible {
    case verified(keyID: String, algorithm: String)
    /// A JWKS is configured and the signature did not verify (the reason says why).
    case failed(String)
    /// No JWKS is configured: the claims were only decoded.
    case notConfigured

    public var description: String {
        switch self {
        case .verified(let kid, let alg): return "verified (kid \(kid), \(alg))"
        case .failed(let why): return "not verified: \(why)"
        case .notConfigured: return "decoded only: no JWKS configured"
        }
    }
}

/// Verification keys by key id, each with the algorithms it may verify.
public struct JWKSKeySet: Sendable {
    struct Key: Sendable {
        var keyID: String
        /// Named by the JWKS (`kid`), or `#n` for the n-th key when it has none.
        var named: Bool
        var algorithms: [String: any JWTAlgorithm]
    }

    let keys: [Key]
    /// Keys that were left out, and why (a key for encryption, an unsupported type, bad parameters).
    public let skipped: [String]
    /// Outcomes by token fingerprint: a token is reused for many requests, a signature check costs 50–500 µs.
    let cache = VerificationCache()

    public var keyIDs: [String] { keys.map(\.keyID) }

    /// Whether a key of the set is named `kid` by the JWKS.
    public func hasNamedKey(_ kid: String) -> Bool { keys.contains { $0.named && $0.keyID == kid } }

    /// Reads and checks a JWKS file; a key that cannot verify is skipped with its reason, a file without any
    /// usable key is an error.
    public static func load(path: String) async throws(JWKSError) -> JWKSKeySet {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw JWKSError(code: .unreadable, message: "cannot read JWKS file \(path): \(error.localizedDescription)")
        }
        return try await parse(Array(data), source: path)
    }

    public static func parse(_ bytes: [UInt8], source: String = "JWKS") async throws(JWKSError) -> JWKSKeySet {
        guard bytes.count <= 1 << 20 else {
            throw JWKSError(
                code: .notAJWKS, message: "\(source): \(bytes.count) bytes is too large for a JWKS (1 MiB at most)")
        }
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: Data(bytes)) } catch {
            throw JWKSError(code: .notAJWKS, message: "\(source): not JSON")
        }
        guard let object = root as? [String: Any], let list = object["keys"] as? [Any] else {
            throw JWKSError(code: .notAJWKS, message: "\(source): a JWKS is a JSON object with a \"keys\" array")
        }
        var keys: [Key] = []
        var skipped: [String] = []
        for (n, entry) in list.enumerated() {
            guard let member = entry as? [String: Any] else {
                skipped.append("key \(n): not a JSON object")
                continue
            }
            let name = (member["kid"] as? String).map { "key \(n) (kid \($0))" } ?? "key \(n)"
            if let use = member["use"] as? String, use != "sig" {
                skipped.append("\(name): use \(use), not sig")
                continue
            }
            let kty = member["kty"] as? String ?? ""
            let candidates: [String]
            if let alg = member["alg"] as? String {
                candidates = [alg]
            } else {
                switch kty {
                case "RSA": candidates = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
                case "EC": candidates = ["ES256", "ES384", "ES512"]
                case "OKP": candidates = ["EdDSA"]
                default: candidates = []
                }
            }
            guard !candidates.isEmpty, ["RSA", "EC", "OKP"].contains(kty) else {
                skipped.append("\(name): key type \(kty.isEmpty ? "missing" : kty) cannot verify signatures here")
                continue
            }
            if member["d"] != nil {
                skipped.append("\(name): a private key; a JWKS for verification holds public keys only")
                continue
            }
            let keyID = member["kid"] as? String ?? "#\(n)"
            var withID = member
            withID["kid"] = keyID
            let jwk: JWK
            do {
                let json = try JSONSerialization.data(withJSONObject: withID)
                jwk = try JWK(json: String(decoding: json, as: UTF8.self))
            } catch {
                skipped.append("\(name): not a JSON Web Key jwt-kit can read: \(Self.describe(error))")
                continue
            }
            var algorithms: [String: any JWTAlgorithm] = [:]
            var lastProblem = "no algorithm fits"
            for alg in candidates {
                // A collection per algorithm: jwt-kit keeps the first signer it makes for a key without `alg`.
                let collection = JWTKeyCollection()
                do {
                    try await collection.add(jwk: jwk)
                    let algorithm = try await collection.getKey(for: JWKIdentifier(string: keyID), alg: alg)
                    if algorithm.name == alg { algorithms[alg] = algorithm }
                } catch {
                    lastProblem = Self.describe(error)
                }
            }
            guard !algorithms.isEmpty else {
                skipped.append("\(name): \(lastProblem)")
                continue
            }
            keys.append(Key(keyID: keyID, named: member["kid"] is String, algorithms: algorithms))
        }
        guard !keys.isEmpty else {
            throw JWKSError(
                code: .noUsableKey,
                message: "\(source): no key can verify signatures"
                    + (skipped.isEmpty ? "" : " (" + skipped.joined(separator: "; ") + ")"))
        }
        return JWKSKeySet(keys: keys, skipped: skipped)
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? JWTError { return e.reason ?? e.errorType.description }
        return String(describing: error)
    }

    /// Checks the token's signature: with the key its `kid` names, or (without a `kid`) each key that
    /// supports its algorithm. `none` never verifies.
    public func verify(_ token: CompactJWT) -> TokenVerification {
        if let known = cache.outcome(token.fingerprint) { return known }
        let outcome = check(token)
        cache.remember(token.fingerprint, outcome)
        return outcome
    }

    func check(_ token: CompactJWT) -> TokenVerification {
        guard let alg = token.algorithm, alg.lowercased() != "none" else {
            return .failed("alg none is never accepted")
        }
        let candidates: [Key]
        if let kid = token.keyID {
            candidates = keys.filter { $0.named && $0.keyID == kid }
            if candidates.isEmpty { return .failed("no key with kid \(kid)") }
        } else {
            candidates = keys
        }
        var supported = false
        for key in candidates.prefix(16) {
            guard let algorithm = key.algorithms[alg] else { continue }
            supported = true
            if (try? algorithm.verify(token.signature, signs: token.signingInput)) == true {
                return .verified(keyID: key.keyID, algorithm: alg)
            }
        }
        return .failed(supported ? "signature does not verify" : "no key for algorithm \(alg)")
    }
}

/// A bounded map from token fingerprint (SHA-256 of the whole token, so a changed signature is another
/// entry) to its verification outcome. Emptied when full: simple, and a refill costs one check per token.
final class VerificationCache: Sendable {
    static let capacity = 16_384
    private let map = Mutex<[[UInt8]: TokenVerification]>([:])

    func outcome(_ fingerprint: [UInt8]) -> TokenVerification? {
        map.withLock { $0[fingerprint] }
    }

    func remember(_ fingerprint: [UInt8], _ outcome: TokenVerification) {
        map.withLock {
            if $0.count >= Self.capacity { $0.removeAll(keepingCapacity: true) }
            $0[fingerprint] = outcome
        }
    }
}
