// Identity at ingest: the claims of a bearer JWT (decoded, and verified against a JWKS when one is configured)
// and workload identity (SPIFFE ids from mesh attributes, Envoy's peer URI SANs, `x-forwarded-client-cert`).
// Tokens are read in memory only; what is stored is the claims and the token's SHA-256 fingerprint.
import Crypto
import LogFormat

/// A compact JWS, split and decoded. Parsing never trusts the token: every failure is a precise `Problem`.
public struct CompactJWT: Sendable {
    public struct Problem: Error, Sendable, Hashable, CustomStringConvertible {
        public enum Code: String, Sendable, Hashable {
            case tooLarge, notThreeParts, encrypted, badBase64, notJSONObject, badHeader, badSignature
        }
        public var code: Code
        public var message: String
        public var description: String { message }
    }

    /// Longest token read (bigger ones are still redacted, as opaque secrets).
    public static let maxBytes = 16 << 10

    /// The JOSE header's members.
    public var header: [(String, JSONValue)]
    /// The claims.
    public var claims: [(String, JSONValue)]
    /// `header.payload` as sent: what the signature covers.
    public var signingInput: [UInt8]
    public var signature: [UInt8]
    /// SHA-256 of the token as sent.
    public var fingerprint: [UInt8]

    public var algorithm: String? { Self.text(header, "alg") }
    public var keyID: String? { Self.text(header, "kid") }

    public init(_ token: String) throws(Problem) {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maxBytes else {
            throw Problem(code: .tooLarge, message: "token of \(bytes.count) bytes exceeds \(Self.maxBytes)")
        }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        if parts.count == 5 { throw Problem(code: .encrypted, message: "a JWE (5 parts): its claims are encrypted") }
        guard parts.count == 3 else {
            throw Problem(
                code: .notThreeParts, message: "a JWS has 3 dot-separated parts, this token has \(parts.count)")
        }
        func decode(_ part: ArraySlice<UInt8>, _ what: String) throws(Problem) -> [UInt8] {
            let array = Array(part)
            guard let raw = array.withUnsafeBufferPointer({ Base64URL.decode($0, 0..<$0.count) }) else {
                throw Problem(code: .badBase64, message: "the \(what) is not base64url")
            }
            return raw
        }
        func object(_ raw: [UInt8], _ what: String) throws(Problem) -> [(String, JSONValue)] {
            guard case .object(let members)? = try? ByteJSONParser.parse(raw) else {
                throw Problem(code: .notJSONObject, message: "the \(what) is not a JSON object")
            }
            return members
        }
        header = try object(try decode(parts[0], "header"), "header")
        claims = try object(try decode(parts[1], "payload"), "payload")
        signature = try decode(parts[2], "signature")
        guard let alg = Self.text(header, "alg") else {
            throw Problem(code: .badHeader, message: "the header names no alg")
        }
        guard !signature.isEmpty || alg.lowercased() == "none" else {
            throw Problem(code: .badSignature, message: "the signature is empty")
        }
        signingInput = Array(bytes[..<(parts[0].count + 1 + parts[1].count)])
        fingerprint = Array(SHA256.hash(data: bytes))
    }

    static func text(_ members: [(String, JSONValue)], _ key: String) -> String? {
        guard let v = members.first(where: { $0.0 == key })?.1 else { return nil }
        switch v {
        case .string(let b): return String(validating: b, as: UTF8.self)
        case .number(let n): return n
        default: return nil
        }
    }

    /// A claim as a list of strings: a JSON array of strings, or a string split on spaces and commas.
    static func list(_ members: [(String, JSONValue)], _ key: String) -> [String] {
        switch members.first(where: { $0.0 == key })?.1 {
        case .array(let values)?:
            return values.compactMap {
                if case .string(let b) = $0 { return String(validating: b, as: UTF8.self) } else { return nil }
            }
        case .string(let b)?:
            return String(decoding: b, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        default: return []
        }
    }

    /// The claims kept in the record (standard registered and identity claims).
    static let keptClaims = [
        "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "azp", "client_id", "scope", "email", "preferred_username",
        "name", "groups", "roles", "tid", "oid",
    ]

    /// The user these claims describe: subject from `sub` (else `preferred_username`, `email`, `client_id`),
    /// groups from `groups` and `roles`.
    package func user(origin: IdentityOrigin) -> UserIdentity? {
        let email = Self.text(claims, "email")
        guard
            let subject = [
                Self.text(claims, "sub"), Self.text(claims, "preferred_username"), email,
                Self.text(claims, "client_id"),
            ]
            .lazy.compactMap({ $0 }).first(where: { !$0.isEmpty })
        else { return nil }
        var groups = Self.list(claims, "groups")
        for r in Self.list(claims, "roles") where !groups.contains(r) { groups.append(r) }
        return UserIdentity(
            subject: subject, email: email, groups: groups, issuer: Self.text(claims, "iss"), origin: origin,
            tokenFingerprint: fingerprint)
    }

    /// The kept claims as attributes.
    package func claimAttributes() -> [Attribute] {
        var out: [Attribute] = []
        for key in Self.keptClaims {
            guard let v = claims.first(where: { $0.0 == key })?.1 else { continue }
            out.append(Attribute(key, AccessEventMapping.attributeValue(v)))
        }
        return out
    }
}

/// SPIFFE ids (`spiffe://trust-domain/path`) and where the mesh puts them.
public enum WorkloadIdentity {
    /// `s` when it is a SPIFFE id: lowercase scheme, a trust domain of `[a-z0-9._-]`, a path of non-empty
    /// segments of `[A-Za-z0-9._-]` (not `.` or `..`), no query or fragment, at most 2048 bytes.
    public static func spiffeID(_ s: Substring) -> String? {
        isSPIFFEID(s) ? String(s) : nil
    }

    /// The same test, in place over the bytes (no allocation: it runs for every sidecar event).
    public static func isSPIFFEID(_ s: some StringProtocol) -> Bool {
        let u = s.utf8
        // The first byte before the generic prefix test: this runs on every string value of every event.
        guard u.count <= 2048, u.count > 9, u.first == UInt8(ascii: "s"), s.hasPrefix("spiffe://") else { return false }
        var i = u.index(u.startIndex, offsetBy: 9)
        var domain = 0
        while i < u.endIndex, u[i] != UInt8(ascii: "/") {
            let b = u[i]
            guard (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x2D || b == 0x5F else {
                return false
            }
            domain += 1
            i = u.index(after: i)
        }
        guard domain > 0 else { return false }
        // Each segment after a slash: non-empty, not `.` or `..`, of [A-Za-z0-9._-].
        while i < u.endIndex {
            i = u.index(after: i)  // past the slash
            var length = 0
            var dots = 0
            while i < u.endIndex, u[i] != UInt8(ascii: "/") {
                let b = u[i]
                guard ByteClass.table[Int(b)] & ByteClass.base64URL != 0 || b == 0x2E else { return false }
                length += 1
                if b == 0x2E { dots += 1 }
                i = u.index(after: i)
            }
            guard length > 0, !(dots == length && length <= 2) else { return false }
        }
        return true
    }

    /// The first SPIFFE id inside free text (a SAN list, a DN, `URI=…`), ending at a delimiter.
    public static func embeddedSPIFFEID(_ s: String) -> String? {
        var rest = Substring(s)
        while let r = rest.range(of: "spiffe://") {
            let candidate = rest[r.lowerBound...].prefix { !",; \t\"'<>|".contains($0) }
            if let id = spiffeID(candidate) { return id }
            rest = rest[r.upperBound...]
        }
        return nil
    }

    /// The client's SPIFFE id in an `x-forwarded-client-cert` header: the `URI=` of the last element (the
    /// element the nearest proxy added; `By=` is that proxy's own identity, not the client's).
    public static func xfccClient(_ header: String) -> String? {
        for element in splitOutsideQuotes(header, ",").reversed() {
            for pair in splitOutsideQuotes(element, ";") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, kv[0].trimming(" ").lowercased() == "uri" else { continue }
                var value = kv[1].trimming(" ")
                if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 {
                    value = String(value.dropFirst().dropLast())
                }
                if let id = spiffeID(Substring(value)) { return id }
            }
        }
        return nil
    }

    static func splitOutsideQuotes(_ s: some StringProtocol, _ separator: Character) -> [Substring] {
        var out: [Substring] = []
        var quoted = false
        var start = s.startIndex
        var i = s.startIndex
        let whole = Substring(s)
        while i < s.endIndex {
            let c = s[i]
            if c == "\"" {
                quoted.toggle()
            } else if c == "\\" && quoted {
                i = s.index(after: i)
                if i == s.endIndex { break }
            } else if c == separator && !quoted {
                out.append(whole[start..<i])
                start = s.index(after: i)
            }
            i = s.index(after: i)
        }
        out.append(whole[start..<s.endIndex])
        return out
    }

    /// Keys that carry the calling workload's identity, most specific first (folded: lowercase, `_` as `-`).
    static let clientKeys = [
        "downstream-peer-uri-san", "source.principal", "x-forwarded-client-cert",
        "http.request.header.x-forwarded-client-cert",
        "http-x-forwarded-client-cert", "ssl-client-san", "ssl-client-s-dn", "downstream-peer",
        "source.workload.spiffe-id",
        "client.spiffe-id",
    ]
    /// Keys that carry the peer's identity when the caller's is not known.
    static let peerKeys = [
        "upstream-peer-uri-san", "destination.principal", "upstream-peer", "peer.spiffe-id", "spiffe.id",
    ]

    static let foldedClientKeys = clientKeys.map { Array($0.utf8) }
    static let foldedPeerKeys = peerKeys.map { Array($0.utf8) }

    /// The position of `key` in `list` (folded patterns), comparing in place without allocating.
    static func index(of key: String, in list: [[UInt8]]) -> Int? {
        var key = key
        return key.withUTF8 { k in
            outer: for (i, pattern) in list.enumerated() where pattern.count == k.count {
                for j in 0..<k.count where ByteClass.fold(k[j]) != pattern[j] { continue outer }
                return i
            }
            return nil
        }
    }

    /// The workload identity of an event: the calling workload's SPIFFE id from the client keys, then the
    /// peer keys, then any attribute value that is a SPIFFE id, then a resource attribute.
    package static func workload(of e: AuditEvent) -> String? {
        workload(of: e) { resourceSPIFFEID($0) }
    }

    /// The first resource attribute value that is a SPIFFE id (the last resort of `workload(of:)`).
    package static func resourceSPIFFEID(_ resourceAttributes: [Attribute]) -> String? {
        for a in resourceAttributes {
            if case .string(let s) = a.value, isSPIFFEID(s) { return s }
        }
        return nil
    }

    /// The same, with `resourceSPIFFEID(e.resourceAttributes)` supplied by a caller that works it out once per
    /// resource.
    package static func workload(of e: AuditEvent, resourceSPIFFEID: ([Attribute]) -> String?) -> String? {
        var notes = KeyNotes(enabled: false)
        return workload(of: e, notes: &notes, resourceSPIFFEID: resourceSPIFFEID)
    }

    /// The same, with the caller's notes on the keys of the events before, kept from event to event: whether a
    /// key with the bytes of the one at its position before may name a workload is not worked out again.
    package static func workload(
        of e: AuditEvent, notes: inout KeyNotes, resourceSPIFFEID: ([Attribute]) -> String?
    ) -> String? {
        // Cheap pass: only keys that can hold an identity are folded and compared.
        var client: String? = nil
        var clientRank = Int.max
        var peer: String? = nil
        var peerRank = Int.max
        var any: String? = nil
        for (position, a) in e.attributes.enumerated() {
            if any == nil, case .string(let s) = a.value, isSPIFFEID(s) { any = s }
            let may: Bool
            if let known = notes.mayHoldIdentity(a.key, at: position) {
                may = known
            } else {
                may = mayHoldIdentity(a.key)
                notes.noteIdentity(may, of: a.key, at: position)
            }
            guard may else { continue }
            if let rank = index(of: a.key, in: foldedClientKeys), rank < clientRank,
                let id = extract(a.value, xfcc: clientKeys[rank].hasSuffix("forwarded-client-cert"))
            {
                client = id
                clientRank = rank
            } else if let rank = index(of: a.key, in: foldedPeerKeys), rank < peerRank,
                let id = extract(a.value, xfcc: false)
            {
                peer = id
                peerRank = rank
            }
        }
        return client ?? peer ?? any ?? resourceSPIFFEID(e.resourceAttributes)
    }

    /// Whether a key may be one of the identity keys: contains `peer`, `principal`, `client`, `cert` or `spif`.
    @inline(__always) static func mayHoldIdentity(_ key: String) -> Bool {
        var key = key
        return key.withUTF8 { k in
            guard k.count >= 8 else { return false }
            for j in 0..<(k.count - 3) {
                switch ByteClass.lower(k[j]) {
                case UInt8(ascii: "p"), UInt8(ascii: "c"), UInt8(ascii: "s"):
                    let a = ByteClass.lower(k[j + 1])
                    let b = ByteClass.lower(k[j + 2])
                    let c = ByteClass.lower(k[j + 3])
                    // "peer", "prin(cipal)", "clie(nt)", "cert", "spif(fe)"
                    if (a == UInt8(ascii: "e") && b == UInt8(ascii: "e") && c == UInt8(ascii: "r"))
                        || (a == UInt8(ascii: "r") && b == UInt8(ascii: "i") && c == UInt8(ascii: "n"))
                        || (a == UInt8(ascii: "l") && b == UInt8(ascii: "i") && c == UInt8(ascii: "e"))
                        || (a == UInt8(ascii: "e") && b == UInt8(ascii: "r") && c == UInt8(ascii: "t"))
                        || (a == UInt8(ascii: "p") && b == UInt8(ascii: "i") && c == UInt8(ascii: "f"))
                    {
                        return true
                    }
                default: continue
                }
            }
            return false
        }
    }

    /// A SPIFFE id inside a value: a string (an XFCC header when `xfcc`), or nested in a list (Envoy's peer
    /// metadata) or an array.
    static func extract(_ v: AttributeValue, xfcc: Bool) -> String? {
        switch v {
        case .string(let s):
            if xfcc { return xfccClient(s) }
            return isSPIFFEID(s) ? s : embeddedSPIFFEID(s)
        case .array(let values): return values.lazy.compactMap { extract($0, xfcc: xfcc) }.first
        case .keyValueList(let list): return list.lazy.compactMap { extract($0.value, xfcc: xfcc) }.first
        default: return nil
        }
    }
}

extension Substring {
    func trimming(_ set: String) -> String {
        var s = self
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
