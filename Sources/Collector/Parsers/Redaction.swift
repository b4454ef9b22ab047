// Redaction: secrets never reach disk. Three detectors, all over raw UTF-8 bytes:
//
// - keys: attribute keys that name a credential-bearing header (`Authorization`, `Proxy-Authorization`,
//   `Cookie`, `Set-Cookie`, in any case, as OTel `http.request.header.*` keys or nginx `http_*` variables)
//   or a configured key; the whole value goes;
// - values: a single table-driven pass over each string (and bytes) value finds JWT-shaped tokens, token-
//   looking query parameters (`access_token=…`, also as JSON members `"access_token":"…"`) and credentials
//   after `Bearer` / `Basic`; only the secret part goes.
//
// A removed secret becomes a marker that names what it was and, when the collector has an HMAC secret, a
// keyed fingerprint for correlation: `[redacted:jwt:h=3f9a0b1c2d3e4f50]`. The fingerprint is HMAC-SHA256
// (never a bare hash: a bare hash of a short password is a dictionary look-up away), truncated to 64 bits.
// The hot path (nothing to redact) allocates nothing: it reads each value's contiguous UTF-8 in place.
import Crypto
import LogFormat

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the redactor removes, beyond what it always removes (the four credential headers and JWTs).
public struct RedactionPolicy: Sendable, Hashable {
    /// Extra attribute keys or header names whose whole value is a secret. Matched case-insensitively with
    /// `_` and `-` alike, against the whole key, its last dotted component, or the header name in an
    /// `http.request.header.*` / nginx `http_*` key.
    public var keys: [String] = RedactionPolicy.defaultKeys
    /// Query parameters (and JSON members) whose value is a secret, matched case-insensitively.
    public var queryParameters: [String] = RedactionPolicy.defaultQueryParameters
    /// The collector's secret for keyed fingerprints; empty: markers carry no fingerprint.
    public var hmacSecret: [UInt8] = []

    public static let defaultKeys = [
        "password", "passwd", "secret", "client_secret", "api_key", "x-api-key", "access_token", "refresh_token",
        "id_token", "private_key", "x-amz-security-token",
    ]
    public static let defaultQueryParameters = [
        "access_token", "id_token", "refresh_token", "code", "password", "client_secret", "token", "api_key",
        "apikey", "sig", "x-amz-signature", "x-amz-security-token",
    ]
    /// Always secret, whatever the configuration says.
    public static let credentialHeaders = ["authorization", "proxy-authorization", "cookie", "set-cookie"]

    public init() {}
}

/// What a marker says was removed. The raw values appear in stored markers and `audit.redacted`: never rename.
public enum SecretKind: Sendable, Hashable {
    /// The value of a credential header (`authorization`, `cookie`, …), named.
    case header(String)
    /// The value of a configured key.
    case key
    /// A JWT-shaped token.
    case jwt
    /// The value of a token-looking query parameter or JSON member, named.
    case parameter(String)
    /// The credential after `Bearer` or `Basic` in free text.
    case credential

    var label: String {
        switch self {
        case .header(let name): return name
        case .key: return "key"
        case .jwt: return "jwt"
        case .parameter(let name): return "param." + name
        case .credential: return "credential"
        }
    }
}

// MARK: Byte classes

/// Byte classes for the scanners, one table look-up per byte.
enum ByteClass {
    static let base64URL: UInt8 = 1  // A-Z a-z 0-9 - _
    static let trigger: UInt8 = 2  // bytes that may start a detection: e = : " b B
    static let paramName: UInt8 = 4  // characters of a parameter name: base64URL plus . ~ %
    static let tokenChar: UInt8 = 8  // characters of an opaque credential: base64URL plus . ~ + / =

    static let table: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 256)
        for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { t[Int(b)] |= base64URL | paramName | tokenChar }
        for b in UInt8(ascii: "a")...UInt8(ascii: "z") { t[Int(b)] |= base64URL | paramName | tokenChar }
        for b in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(b)] |= base64URL | paramName | tokenChar }
        for c in "-_" { t[Int(c.asciiValue!)] |= base64URL | paramName | tokenChar }
        for c in ".~%" { t[Int(c.asciiValue!)] |= paramName }
        for c in ".~+/=" { t[Int(c.asciiValue!)] |= tokenChar }
        for c in "e=:\"bB" { t[Int(c.asciiValue!)] |= trigger }
        return t
    }()

    /// The second character of a base64url JSON object: `{` is 011110|11, so the next sextet starts 11.
    @inline(__always) static func isObjectSecond(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "w") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
            || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
    }

    @inline(__always) static func lower(_ b: UInt8) -> UInt8 {
        b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b | 0x20 : b
    }

    /// Folds case and treats `_` as `-`, so `HTTP_Authorization` and `http-authorization` compare equal.
    @inline(__always) static func fold(_ b: UInt8) -> UInt8 {
        b == UInt8(ascii: "_") ? UInt8(ascii: "-") : lower(b)
    }
}

/// A secret found inside a value: its byte range and what it is.
struct SecretSpan: Sendable, Hashable {
    var range: Range<Int>
    var kind: SecretKind
}

/// The value scanner. Patterns are folded once at start; scanning reads bytes in place.
struct SecretScanner: Sendable {
    /// Folded parameter names, each with its original spelling for markers.
    let parameters: [[UInt8]]
    let parameterNames: [String]
    /// Bit n set when some parameter has n bytes (names longer than 63 always checked).
    let parameterLengths: UInt64

    init(queryParameters: [String]) {
        let folded = queryParameters.map { Array($0.utf8).map(ByteClass.fold) }
        parameters = folded
        parameterNames = queryParameters.map { $0.lowercased() }
        var mask: UInt64 = 0
        for p in folded { mask |= p.count < 64 ? 1 << UInt64(p.count) : 1 << 63 }
        parameterLengths = mask
    }

    /// Appends every secret in `p` to `out`, in order and without overlap. Allocates only when it finds one.
    func scan(_ p: UnsafeBufferPointer<UInt8>, into out: inout [SecretSpan]) {
        let n = p.count
        guard n >= 4 else { return }
        let table = ByteClass.table
        var i = 0
        while i < n {
            let b = p[i]
            if table[Int(b)] & ByteClass.trigger == 0 {
                i += 1
                continue
            }
            let atBoundary = i == 0 || table[Int(p[i - 1])] & ByteClass.base64URL == 0
            switch b {
            case UInt8(ascii: "e"):
                if atBoundary, i + 1 < n, ByteClass.isObjectSecond(p[i + 1]), let end = JWTShape.end(p, from: i) {
                    out.append(SecretSpan(range: i..<end, kind: .jwt))
                    i = end
                    continue
                }
            case UInt8(ascii: "="):
                if let (name, valueEnd) = parameter(p, equalsAt: i), valueEnd > i + 1 {
                    if !isMarker(p, at: i + 1) {
                        out.append(SecretSpan(range: (i + 1)..<valueEnd, kind: kind(p, (i + 1)..<valueEnd, name)))
                    }
                    i = valueEnd
                    continue
                }
            case UInt8(ascii: ":"):
                if let (name, value) = jsonMember(p, colonAt: i) {
                    if !isMarker(p, at: value.lowerBound) {
                        out.append(SecretSpan(range: value, kind: kind(p, value, name)))
                    }
                    i = value.upperBound
                    continue
                }
            case UInt8(ascii: "b"), UInt8(ascii: "B"):
                if atBoundary, let credential = schemeCredential(p, at: i) {
                    if !isMarker(p, at: credential.lowerBound) {
                        // A JWT after Bearer is named as a JWT (so identity can use it).
                        let kind: SecretKind =
                            JWTShape.end(p, from: credential.lowerBound) == credential.upperBound ? .jwt : .credential
                        out.append(SecretSpan(range: credential, kind: kind))
                    }
                    i = credential.upperBound
                    continue
                }
            default: break
            }
            i += 1
        }
    }

    /// A parameter's value is named as a JWT when it is one (an `id_token`), so identity can read it.
    private func kind(_ p: UnsafeBufferPointer<UInt8>, _ value: Range<Int>, _ name: Int) -> SecretKind {
        if value.count > 12, p[value.lowerBound] == UInt8(ascii: "e"),
            ByteClass.isObjectSecond(p[value.lowerBound + 1]),
            JWTShape.end(p, from: value.lowerBound) == value.upperBound
        {
            return .jwt
        }
        return .parameter(parameterNames[name])
    }

    /// `name=value` with `name` a configured parameter, preceded by the start, `?`, `&`, `;`, `#`, a space or
    /// a quote: the parameter's index and where its value ends (`&`, `#`, `;`, whitespace, a quote, or the end).
    private func parameter(_ p: UnsafeBufferPointer<UInt8>, equalsAt eq: Int) -> (Int, Int)? {
        var start = eq
        let table = ByteClass.table
        while start > 0, table[Int(p[start - 1])] & ByteClass.paramName != 0 { start -= 1 }
        let length = eq - start
        guard length > 0, parameterLengths & (length < 64 ? 1 << UInt64(length) : 1 << 63) != 0 else { return nil }
        if start > 0 {
            switch p[start - 1] {
            case UInt8(ascii: "?"), UInt8(ascii: "&"), UInt8(ascii: ";"), UInt8(ascii: "#"), UInt8(ascii: " "),
                UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: ","), UInt8(ascii: "\t"), UInt8(ascii: "\n"):
                break
            default: return nil
            }
        }
        guard let index = match(p, start..<eq) else { return nil }
        var end = eq + 1
        while end < p.count {
            switch p[end] {
            case UInt8(ascii: "&"), UInt8(ascii: "#"), UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\""),
                UInt8(ascii: "'"), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: ","):
                return (index, end)
            default: end += 1
            }
        }
        return (index, end)
    }

    /// `"name" : "value"` with `name` a configured parameter: the value's range inside its quotes.
    private func jsonMember(_ p: UnsafeBufferPointer<UInt8>, colonAt colon: Int) -> (Int, Range<Int>)? {
        var q = colon - 1
        while q >= 0, p[q] == UInt8(ascii: " ") || p[q] == UInt8(ascii: "\t") { q -= 1 }
        guard q >= 1, p[q] == UInt8(ascii: "\"") else { return nil }
        var start = q
        while start > 0, ByteClass.table[Int(p[start - 1])] & ByteClass.paramName != 0 { start -= 1 }
        guard start >= 1, p[start - 1] == UInt8(ascii: "\""), let index = match(p, start..<q) else { return nil }
        var v = colon + 1
        while v < p.count, p[v] == UInt8(ascii: " ") || p[v] == UInt8(ascii: "\t") { v += 1 }
        guard v < p.count, p[v] == UInt8(ascii: "\"") else { return nil }
        var end = v + 1
        while end < p.count, p[end] != UInt8(ascii: "\"") {
            end += p[end] == UInt8(ascii: "\\") ? 2 : 1
        }
        end = min(end, p.count)
        guard end > v + 1 else { return nil }
        return (index, (v + 1)..<end)
    }

    /// `Bearer <credential>` or `Basic <credential>` (any case, one or more spaces): the credential's range,
    /// when it has at least 6 token characters.
    private func schemeCredential(_ p: UnsafeBufferPointer<UInt8>, at i: Int) -> Range<Int>? {
        let n = p.count
        var k: Int
        let basic: Bool
        if i + 6 < n, Self.equalFolded(p, i, "bearer") {
            k = i + 6
            basic = false
        } else if i + 5 < n, Self.equalFolded(p, i, "basic") {
            k = i + 5
            basic = true
        } else {
            return nil
        }
        guard k < n, p[k] == UInt8(ascii: " ") else { return nil }
        while k < n, p[k] == UInt8(ascii: " ") { k += 1 }
        let start = k
        while k < n, ByteClass.table[Int(p[k])] & ByteClass.tokenChar != 0 { k += 1 }
        guard k - start >= 6 else { return nil }
        let credential = UnsafeBufferPointer(rebasing: p[start..<k])
        if basic {
            // Basic credentials are base64 of `user:password`: prose ("basic income") is not.
            guard let decoded = Base64URL.decode(credential, 0..<credential.count), decoded.contains(UInt8(ascii: ":"))
            else { return nil }
        } else {
            // Opaque bearer tokens have digits, capitals or punctuation; a lowercase word ("bearer tokens") does not.
            guard credential.contains(where: { !($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) }) else {
                return nil
            }
            // `Bearer Bearer x`: go on to the second.
            if k - start == 6 && Self.equalFolded(p, start, "bearer") { return nil }
        }
        return start..<k
    }

    private static func equalFolded(_ p: UnsafeBufferPointer<UInt8>, _ at: Int, _ word: StaticString) -> Bool {
        let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for j in 0..<w.count where ByteClass.lower(p[at + j]) != w[j] { return false }
        return true
    }

    private func match(_ p: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Int? {
        outer: for (index, pattern) in parameters.enumerated() where pattern.count == r.count {
            for (j, b) in pattern.enumerated() where ByteClass.fold(p[r.lowerBound + j]) != b { continue outer }
            return index
        }
        return nil
    }

    /// True when a marker starts at `i` (a value redacted before is not redacted again).
    private func isMarker(_ p: UnsafeBufferPointer<UInt8>, at i: Int) -> Bool {
        Redactor.markerPrefix.withUTF8Buffer { m in
            guard i + m.count <= p.count else { return false }
            for j in 0..<m.count where p[i + j] != m[j] { return false }
            return true
        }
    }
}

/// The cheap shape test for a compact JWS/JWE, and its decoding.
enum JWTShape {
    /// Where the token starting at `i` ends, when it is JWT-shaped: a base64url segment of at least 10
    /// characters that decodes to a JSON object naming `alg` (a JOSE header), or whose next segment decodes to
    /// a JSON object (the claims of a token with a damaged header), followed by `.` and the other segments.
    /// The caller has checked the first two characters (`e`, then `w`–`z`, a digit, `-` or `_`).
    static func end(_ p: UnsafeBufferPointer<UInt8>, from i: Int) -> Int? {
        let table = ByteClass.table
        let n = p.count
        var k = i
        while k < n, table[Int(p[k])] & ByteClass.base64URL != 0 { k += 1 }
        let headerEnd = k
        while k < n, p[k] == UInt8(ascii: "=") { k += 1 }  // lenient: padded segments
        guard headerEnd - i >= 10, k < n, p[k] == UInt8(ascii: "."), objectStart(p, i) else { return nil }
        // The rest of the token: base64url segments and dots.
        var end = k
        while end < n,
            table[Int(p[end])] & ByteClass.base64URL != 0 || p[end] == UInt8(ascii: ".") || p[end] == UInt8(ascii: "=")
        {
            end += 1
        }
        // Not just a dotted name such as `external-service.ns.svc`: the header or the claims must be JSON.
        if let header = Base64URL.decode(p, i..<headerEnd), isJSONObject(header, requiring: "alg") { return end }
        var s = k + 1
        while s < end, p[s] == UInt8(ascii: ".") { s += 1 }
        var e = s
        while e < end, table[Int(p[e])] & ByteClass.base64URL != 0 { e += 1 }
        if e - s >= 4, p[s] == UInt8(ascii: "e"), ByteClass.isObjectSecond(p[s + 1]), objectStart(p, s),
            let claims = Base64URL.decode(p, s..<e), isJSONObject(claims, requiring: nil)
        {
            return end
        }
        return nil
    }

    /// Whether the 4 base64url characters at `i` decode to `{` and then a quote, a space, a line break or `}`:
    /// what a JSON object starts with. Rejects words like `exception-handler.x` before any decoding.
    @inline(__always) static func objectStart(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> Bool {
        guard i + 4 <= p.count else { return false }
        let v = Base64URL.values
        let a = v[Int(p[i])]
        let b = v[Int(p[i + 1])]
        let c = v[Int(p[i + 2])]
        guard a != 0xFF, b != 0xFF, c != 0xFF, (a << 2 | b >> 4) == UInt8(ascii: "{") else { return false }
        let second = (b & 0x0F) << 4 | c >> 2
        return second == UInt8(ascii: "\"") || second == UInt8(ascii: " ") || second == UInt8(ascii: "\n")
            || second == UInt8(ascii: "\r") || second == UInt8(ascii: "\t") || second == UInt8(ascii: "}")
    }

    static func isJSONObject(_ bytes: [UInt8], requiring key: String?) -> Bool {
        guard case .object(let members)? = try? ByteJSONParser.parse(bytes) else { return false }
        guard let key else { return !members.isEmpty }
        return members.contains { $0.0 == key }
    }
}

/// Base64url (RFC 4648 §5) decoding, lenient about padding; nil on any other byte or an impossible length.
enum Base64URL {
    static let values: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8.enumerated() {
            t[Int(c)] = UInt8(i)
        }
        t[Int(UInt8(ascii: "+"))] = 62
        t[Int(UInt8(ascii: "/"))] = 63
        return t
    }()

    static func decode(_ p: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> [UInt8]? {
        var end = r.upperBound
        while end > r.lowerBound, p[end - 1] == UInt8(ascii: "=") { end -= 1 }
        let count = end - r.lowerBound
        guard count % 4 != 1 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for j in r.lowerBound..<end {
            let v = values[Int(p[j])]
            guard v != 0xFF else { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }

    static func decode(_ s: Substring) -> [UInt8]? {
        var s = String(s)
        return s.withUTF8 { decode($0, 0..<$0.count) }
    }
}

/// Classifies attribute keys. Folded patterns are built once; classifying reads the key in place.
struct KeyClassifier: Sendable {
    /// Folded credential header names with their display names.
    let headers: [[UInt8]]
    let headerNames: [String]
    let keys: [[UInt8]]
    /// Bit n set when a pattern has n bytes.
    let lengths: UInt64

    static let headerPrefixes: [[UInt8]] = [
        "http.request.header.", "http.response.header.", "http-", "sent-http-", "upstream-http-", "req-", "resp-",
        "request-header-", "response-header-",
    ].map { Array($0.utf8) }
    static let cookiePrefix = Array("cookie-".utf8)

    init(keys configured: [String]) {
        headers = RedactionPolicy.credentialHeaders.map { Array($0.utf8).map(ByteClass.fold) }
        headerNames = RedactionPolicy.credentialHeaders
        keys = configured.map { Array($0.utf8).map(ByteClass.fold) }.filter { !$0.isEmpty }
        var mask: UInt64 = 0
        for p in headers + keys { mask |= p.count < 64 ? 1 << UInt64(p.count) : 1 << 63 }
        lengths = mask
    }

    /// What the value of the attribute `key` is, when it is a secret as a whole.
    func classify(_ key: String) -> SecretKind? {
        var key = key
        return key.withUTF8 { classify($0) }
    }

    func classify(_ k: UnsafeBufferPointer<UInt8>) -> SecretKind? {
        let n = k.count
        guard n >= 3 else { return nil }
        // Candidates: the whole key, its last dotted component, the header name after a known prefix.
        if let kind = match(k, 0..<n) { return kind }
        var lastDot = -1
        for j in stride(from: n - 1, through: 0, by: -1) where k[j] == UInt8(ascii: ".") {
            lastDot = j
            break
        }
        if lastDot >= 0, lastDot + 1 < n, let kind = match(k, (lastDot + 1)..<n) { return kind }
        for prefix in Self.headerPrefixes where prefix.count < n && hasFoldedPrefix(k, prefix) {
            if let kind = match(k, prefix.count..<n) { return kind }
        }
        // nginx `$cookie_NAME`: the value of one cookie.
        if n > Self.cookiePrefix.count, hasFoldedPrefix(k, Self.cookiePrefix) { return .header("cookie") }
        return nil
    }

    private func hasFoldedPrefix(_ k: UnsafeBufferPointer<UInt8>, _ prefix: [UInt8]) -> Bool {
        for (j, b) in prefix.enumerated() where ByteClass.fold(k[j]) != b { return false }
        return true
    }

    private func match(_ k: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> SecretKind? {
        let length = r.count
        guard lengths & (length < 64 ? 1 << UInt64(length) : 1 << 63) != 0 else { return nil }
        func equal(_ pattern: [UInt8]) -> Bool {
            guard pattern.count == length else { return false }
            for (j, b) in pattern.enumerated() where ByteClass.fold(k[r.lowerBound + j]) != b { return false }
            return true
        }
        for (i, h) in headers.enumerated() where equal(h) { return .header(headerNames[i]) }
        for key in keys where equal(key) { return .key }
        return nil
    }
}

/// Keyed fingerprints and markers.
struct Fingerprinter: Sendable {
    let key: SymmetricKey?

    init(secret: [UInt8]) {
        key = secret.isEmpty ? nil : SymmetricKey(data: secret)
    }

    /// `[redacted:KIND:h=16 hex]`, or `[redacted:KIND]` without a secret.
    func marker(_ kind: SecretKind, secret: some Sequence<UInt8>) -> String {
        guard let key else { return Redactor.markerPrefix.description + kind.label + "]" }
        var mac = HMAC<SHA256>(key: key)
        mac.update(data: Array(secret))
        let digest = Array(mac.finalize()).prefix(8)
        return Redactor.markerPrefix.description + kind.label + ":h=" + HexCoding.encode(digest) + "]"
    }
}

/// Applies a `RedactionPolicy` to the fields of an event, noting each removal and keeping each JWT it removed
/// (in memory only) so the identity stage can read its claims.
package struct Redactor: Sendable {
    static let markerPrefix: StaticString = "[redacted:"
    /// Authorization schemes kept in front of a redacted credential (`Bearer [redacted:authorization:h=…]`).
    static let schemes: Set<String> = [
        "bearer", "basic", "digest", "negotiate", "ntlm", "dpop", "token", "aws4-hmac-sha256",
    ]

    let scanner: SecretScanner
    let classifier: KeyClassifier
    let fingerprinter: Fingerprinter

    package init(policy: RedactionPolicy) {
        scanner = SecretScanner(queryParameters: policy.queryParameters)
        classifier = KeyClassifier(keys: policy.keys)
        fingerprinter = Fingerprinter(secret: policy.hmacSecret)
    }

    /// What one event's redaction did.
    package struct Notes {
        /// `location=kind` for each removal, in the order found.
        package var removed: [String] = []
        /// JWTs removed, with whether they were the value of a credential header.
        package var tokens: [(token: String, fromHeader: Bool)] = []

        package var isEmpty: Bool { removed.isEmpty && tokens.isEmpty }

        package init() {}
    }

    // MARK: Strings and bytes

    /// The redacted text, or nil when `s` holds no secret.
    package func redact(_ s: String, at location: () -> String, _ notes: inout Notes) -> String? {
        var spans: [SecretSpan] = []
        var s = s
        return s.withUTF8 { p -> String? in
            scanner.scan(p, into: &spans)
            guard !spans.isEmpty else { return nil }
            return String(decoding: replace(p, spans, at: location, &notes), as: UTF8.self)
        }
    }

    package func redact(bytes b: [UInt8], at location: () -> String, _ notes: inout Notes) -> [UInt8]? {
        var spans: [SecretSpan] = []
        return b.withUnsafeBufferPointer { p -> [UInt8]? in
            scanner.scan(p, into: &spans)
            guard !spans.isEmpty else { return nil }
            return replace(p, spans, at: location, &notes)
        }
    }

    private func replace(
        _ p: UnsafeBufferPointer<UInt8>, _ spans: [SecretSpan], at location: () -> String, _ notes: inout Notes
    ) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(p.count + 32 * spans.count)
        var last = 0
        let here = location()
        for span in spans {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: p[last..<span.range.lowerBound]))
            let secret = UnsafeBufferPointer(rebasing: p[span.range])
            out.append(contentsOf: fingerprinter.marker(span.kind, secret: secret).utf8)
            if span.kind == .jwt { notes.tokens.append((String(decoding: secret, as: UTF8.self), false)) }
            notes.removed.append(here + "=" + span.kind.label)
            last = span.range.upperBound
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: p[last...]))
        return out
    }

    // MARK: Values

    /// The redacted value, or nil when `v` holds no secret.
    package func redact(_ v: AttributeValue, at location: () -> String, _ notes: inout Notes) -> AttributeValue? {
        switch v {
        case .string(let s): return redact(s, at: location, &notes).map(AttributeValue.string)
        case .bytes(let b): return redact(bytes: b, at: location, &notes).map(AttributeValue.bytes)
        case .array(let values):
            var copy: [AttributeValue]? = nil
            for (i, element) in values.enumerated() {
                if let r = redact(element, at: { location() + "[\(i)]" }, &notes) {
                    if copy == nil { copy = values }
                    copy![i] = r
                }
            }
            return copy.map(AttributeValue.array)
        case .keyValueList(let list):
            var copy = list
            return redact(&copy, at: location, &notes) ? .keyValueList(copy) : nil
        case .empty, .bool, .int, .double: return nil
        }
    }

    /// The keys of the last attribute list, by position, that were neither a secret's name nor held one: the
    /// lists of a batch from one sender (every line of an NDJSON post, every span of a service) repeat the same
    /// keys in the same order, often the same `String`s, so a key with the same bytes as the one at its position
    /// before needs neither the key classification nor the key scan (both read only the key's bytes).
    package struct CleanKeys {
        var keys: [String?] = []
        /// False: nothing is noted (an event normalised alone has no event before it, and noting would allocate).
        let enabled: Bool

        package init(enabled: Bool = true) {
            self.enabled = enabled
        }

        /// True when `key` has the bytes of the clean key at `position`.
        @inline(__always) func contains(_ key: String, at position: Int) -> Bool {
            guard position < keys.count, let clean = keys[position] else { return false }
            return Self.sameBytes(clean, key)
        }

        mutating func note(_ key: String, at position: Int) {
            // Lists longer than this are rare and gain little.
            guard enabled, position < 256 else { return }
            // Room for a usual list at once, rather than growing 1, 2, 4, … for the first event.
            if keys.capacity == 0 { keys.reserveCapacity(32) }
            while keys.count <= position { keys.append(nil) }
            keys[position] = key
        }

        /// Byte equality, not `==`: canonically equivalent keys with other bytes classify apart.
        static func sameBytes(_ a: String, _ b: String) -> Bool {
            var a = a
            var b = b
            return a.withUTF8 { x in
                b.withUTF8 { y in
                    guard x.count == y.count else { return false }
                    guard x.count > 0, let p = x.baseAddress, let q = y.baseAddress else { return true }
                    return p == q || memcmp(p, q, x.count) == 0
                }
            }
        }
    }

    /// Redacts a list of attributes in place; true when anything changed.
    ///
    /// Reads go to `original`, a copy that shares the list's storage, and `attributes` is written only when a
    /// secret was found: a loop that may write through `inout` lets the optimiser make the array unique before
    /// the loop, which copied every list of every event (an allocation each) even when nothing was redacted.
    @discardableResult
    package func redact(_ attributes: inout [Attribute], at location: () -> String, _ notes: inout Notes) -> Bool {
        var cleanKeys = CleanKeys(enabled: false)
        return redact(&attributes, at: location, &notes, cleanKeys: &cleanKeys)
    }

    /// The same, with the clean keys of the lists redacted before (the caller's, kept from list to list).
    @discardableResult
    package func redact(
        _ attributes: inout [Attribute], at location: () -> String, _ notes: inout Notes,
        cleanKeys: inout CleanKeys
    ) -> Bool {
        let original = attributes
        var copy: [Attribute]? = nil
        for i in original.indices {
            let attribute = original[i]
            var key = attribute.key
            // A key seen clean at this position in the list before is neither classified nor scanned again.
            if !cleanKeys.contains(key, at: i) {
                if let kind = classifier.classify(key) {
                    // The key names a secret: the whole value goes (JWTs inside are kept in memory for identity).
                    // A variable of this branch: one that the closure in `path` captures is boxed on the heap, and
                    // boxing `key` cost an allocation for every attribute of every event.
                    var secretKey = key
                    if let k = redact(secretKey, at: { location() + ".<key>" }, &notes) { secretKey = k }
                    let path = { location() + "." + secretKey }
                    if copy == nil { copy = original }
                    copy![i] = Attribute(secretKey, redactWhole(attribute.value, kind, at: path, &notes))
                    continue
                }
                if let k = redact(key, at: { location() + ".<key>" }, &notes) {
                    key = k
                    if copy == nil { copy = original }
                    copy![i].key = k
                } else {
                    cleanKeys.note(key, at: i)
                }
            }
            if let v = redact(attribute.value, at: { location() + "." + key }, &notes) {
                if copy == nil { copy = original }
                copy![i].value = v
            }
        }
        guard let copy else { return false }
        attributes = copy
        return true
    }

    /// The whole of `v` replaced by markers, keeping the shape of arrays and lists and an authorization scheme.
    func redactWhole(_ v: AttributeValue, _ kind: SecretKind, at location: () -> String, _ notes: inout Notes)
        -> AttributeValue
    {
        switch v {
        case .empty: return .empty
        case .string(let s) where Self.isMarker(s):
            return v  // redacted before: nothing left to remove
        case .string(let s):
            // Keep any JWT for identity: a bearer token, or one inside a cookie.
            var spans: [SecretSpan] = []
            var text = s
            text.withUTF8 { scanner.scan($0, into: &spans) }
            let bytes = Array(s.utf8)
            for span in spans where span.kind == .jwt {
                notes.tokens.append((String(decoding: bytes[span.range], as: UTF8.self), true))
            }
            notes.removed.append(location() + "=" + kind.label)
            var scheme = ""
            var secret = Substring(s)
            if let space = s.firstIndex(of: " "), Self.schemes.contains(s[..<space].lowercased()) {
                scheme = String(s[..<space]) + " "
                secret = s[space...].drop { $0 == " " }
            }
            return .string(scheme + fingerprinter.marker(kind, secret: Array(secret.utf8)))
        case .bytes(let b):
            notes.removed.append(location() + "=" + kind.label)
            return .string(fingerprinter.marker(kind, secret: b))
        case .bool, .int, .double:
            notes.removed.append(location() + "=" + kind.label)
            return .string(fingerprinter.marker(kind, secret: Array(Self.scalarText(v).utf8)))
        case .array(let values):
            return .array(
                values.enumerated().map { i, e in redactWhole(e, kind, at: { location() + "[\(i)]" }, &notes) })
        case .keyValueList(let list):
            return .keyValueList(
                list.map { a in
                    var key = a.key
                    if let k = redact(key, at: { location() + ".<key>" }, &notes) { key = k }
                    return Attribute(key, redactWhole(a.value, kind, at: { location() + "." + key }, &notes))
                })
        }
    }

    /// A marker, alone or after an authorization scheme.
    static func isMarker(_ s: String) -> Bool {
        let prefix = markerPrefix.description
        if s.hasPrefix(prefix) { return s.hasSuffix("]") && !s.dropLast().contains("]") }
        guard let space = s.firstIndex(of: " ") else { return false }
        let rest = s[s.index(after: space)...]
        return rest.hasPrefix(prefix) && rest.hasSuffix("]") && !rest.dropLast().contains("]")
    }

    static func scalarText(_ v: AttributeValue) -> String {
        switch v {
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        default: return ""
        }
    }
}
