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

    /// Redacts a list of attributes in place; true when anything changed.
    ///
    /// Reads go to `original`, a copy that shares the list's storage, and `attributes` is written only when a
    /// secret was found: a loop that may write through `inout` lets the optimiser make the array unique before
    /// the loop, which copied every list of every event (an allocation each) even when nothing was redacted.
    @discardableResult
    package func redact(_ attributes: inout [Attribute], at location: () -> String, _ notes: inout Notes) -> Bool {
        var keys = KeyNotes(enabled: false)
        return redact(&attributes, at: location, &notes, keys: &keys)
    }

    /// The same, with the caller's notes on the keys of the lists redacted before, kept from list to list: a key
    /// seen clean at its position before (`KeyNotes`) is neither classified nor scanned again.
    @discardableResult
    package func redact(
        _ attributes: inout [Attribute], at location: () -> String, _ notes: inout Notes, keys: inout KeyNotes
    ) -> Bool {
        let original = attributes
        var copy: [Attribute]? = nil
        for i in original.indices {
            let attribute = original[i]
            var key = attribute.key
            // A key seen clean at this position in the list before is neither classified nor scanned again.
            if !keys.isClean(key, at: i) {
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
                    keys.noteClean(key, at: i)
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
