// The key detector of redaction: attribute keys that name a credential-bearing header or a configured key.

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
