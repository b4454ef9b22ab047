// The value detector of redaction: one table-driven pass over a string's UTF-8 finds JWT-shaped tokens, token-
// looking query parameters and credentials after an authorization scheme.

// MARK: Byte classes

/// Byte classes for the scanners, one table look-up per byte.
enum ByteClass {
    static let base64URL: UInt8 = 1  // A-Z a-z 0-9 - _
    static let trigger: UInt8 = 2  // bytes that may start a detection: e = : b B
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
        for c in "e=:bB" { t[Int(c.asciiValue!)] |= trigger }
        return t
    }()

    /// The index of the first byte at or after `start` where the scanner may find something, or `p.count`: `=` or
    /// `:`, or `e`, `b` or `B` after a byte that is not base64url (a JWT and an authorization scheme start a word;
    /// the scanner checks that again). Eight bytes at a time: most bytes of the values redaction scans (targets,
    /// user agents, e-mail addresses, hex ids) start nothing, and most of their `e`s and `b`s are inside words,
    /// where leaving the word loop for each was most of the scan. It may stop early (the first byte of each word is
    /// taken to follow a boundary, the last few bytes are tested alone), never late.
    @inline(__always) static func nextTrigger(_ p: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        ByteWord.firstIndex(
            in: p, from: start,
            word: { v in
                // `b` and `B` differ only in 0x20; so do the two cases of each letter.
                let folded = v | ByteWord.splat(0x20)
                // Exact per byte, as it is negated below: letters, digits, `-`, `_`.
                let base64URL =
                    ByteWord.between(folded, 0x60, 0x7B) | ByteWord.between(v, 0x2F, 0x3A)
                    | ByteWord.between(v, 0x2C, 0x2E) | ByteWord.between(v, 0x5E, 0x60)
                let afterBoundary = ~(base64URL << 8) & ByteWord.highs
                return (ByteWord.equal(v, 0x65) | ByteWord.equal(folded, 0x62)) & afterBoundary
                    | ByteWord.equal(v, 0x3D) | ByteWord.equal(v, 0x3A)
            },
            byte: { table[Int($0)] & trigger != 0 })
    }

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
        while true {
            i = ByteClass.nextTrigger(p, from: i)
            guard i < n else { break }
            let b = p[i]
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
