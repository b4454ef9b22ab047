// Strings with machine ids inside them, stored shorter (docs/design/logformat-v2.md, "Columns"): request ids,
// trace ids in URLs, UUIDs and client addresses are random, so no compressor shrinks their hex or decimal text;
// stored as the bytes they spell they take half or less. Everything else stays text, and decoding gives back
// exactly the string that was encoded, byte for byte, for every string: canonical record bytes are rebuilt from
// these columns and must hash to the sealed Merkle root.
//
// tokenized = piece+
// piece     = uvarint header  body            ; header = length << 4 | kind << 1 | more (1: another piece follows)
// body      = <length bytes>                  ; kind 0 text (UTF-8 as written), 1 lowercase hex, 2 uppercase hex
//           | <16 bytes>                      ; kind 3 lowercase UUID, 4 uppercase UUID (length 0)
//           | <4 bytes>                       ; kind 5 IPv4 dotted quad (length 0)
//           | uvarint value                   ; kind 6 decimal: `length` digits, zero-padded, value < 10^length
// The hex kinds hold length bytes that are written as 2 × length hex digits. Kind 7 is reserved.

package enum TokenizedString {
    /// Piece kinds: stored in columns, never renumber.
    enum Kind: UInt8 {
        case text = 0
        case hexLower = 1
        case hexUpper = 2
        case uuidLower = 3
        case uuidUpper = 4
        case ipv4 = 5
        /// A word of 5…19 decimal digits (ids and numbers in paths, subjects): its value, padded back to its length.
        case decimal = 6
    }

    /// Shortest and longest runs of decimal digits stored as a number (19 digits always fit in 64 bits).
    static let minimumDecimalDigits = 5
    static let maximumDecimalDigits = 19

    /// Shortest run of hex digits stored as bytes: shorter runs are mostly words ("cafe", "added") or numbers.
    static let minimumHexDigits = 16

    /// Appends the tokenized form of `s`.
    package static func encode(_ s: String, into w: inout BinaryWriter) {
        var s = s
        s.withUTF8 { encode(utf8: $0, into: &w) }
    }

    package static func encode(utf8 u: UnsafeBufferPointer<UInt8>, into w: inout BinaryWriter) {
        var pieces: [(kind: Kind, start: Int, end: Int)] = []
        var textStart = 0
        var i = 0
        while i < u.count {
            // Tokens start only where a word starts, so a token is never cut out of a longer run of its alphabet.
            if i > 0 && isWordByte(u[i - 1]) {
                i += 1
                continue
            }
            if let (kind, end) = token(u, at: i) {
                if textStart < i { pieces.append((.text, textStart, i)) }
                pieces.append((kind, i, end))
                i = end
                textStart = end
            } else {
                i += 1
            }
        }
        if textStart < u.count || pieces.isEmpty { pieces.append((.text, textStart, u.count)) }
        for (n, p) in pieces.enumerated() {
            let more: UInt64 = n + 1 < pieces.count ? 1 : 0
            let kind = UInt64(p.kind.rawValue) << 1
            switch p.kind {
            case .text:
                w.uvarint(UInt64(p.end - p.start) << 4 | kind | more)
                w.raw(UnsafeBufferPointer(rebasing: u[p.start..<p.end]))
            case .hexLower, .hexUpper:
                w.uvarint(UInt64((p.end - p.start) / 2) << 4 | kind | more)
                var j = p.start
                while j < p.end {
                    w.u8(hexValue(u[j])! << 4 | hexValue(u[j + 1])!)
                    j += 2
                }
            case .uuidLower, .uuidUpper:
                w.uvarint(kind | more)
                var j = p.start
                while j < p.end {
                    if u[j] == UInt8(ascii: "-") { j += 1 }
                    w.u8(hexValue(u[j])! << 4 | hexValue(u[j + 1])!)
                    j += 2
                }
            case .ipv4:
                w.uvarint(kind | more)
                var value = 0
                for j in p.start..<p.end {
                    if u[j] == UInt8(ascii: ".") {
                        w.u8(UInt8(value))
                        value = 0
                    } else {
                        value = value * 10 + Int(u[j] - UInt8(ascii: "0"))
                    }
                }
                w.u8(UInt8(value))
            case .decimal:
                w.uvarint(UInt64(p.end - p.start) << 4 | kind | more)
                var value: UInt64 = 0
                for j in p.start..<p.end { value = value * 10 + UInt64(u[j] - UInt8(ascii: "0")) }
                w.uvarint(value)
            }
        }
    }

    /// Reads one tokenized string. Damage is an error, never a trap: lengths are checked against what is left.
    package static func decode(_ r: inout BinaryReader) throws(LogFormatError) -> String {
        var out: [UInt8] = []
        try decode(&r, appendingTo: &out)
        return try string(out)
    }

    /// The decoded bytes of a tokenized string as a `String`, refused when they are not UTF-8.
    package static func string(_ bytes: [UInt8]) throws(LogFormatError) -> String {
        guard let s = bytes.withUnsafeBufferPointer(UTF8Text.string(validating:)) else {
            throw LogFormatError(.malformed, "tokenized string: the text is not UTF-8")
        }
        return s
    }

    /// Steps over one tokenized string, making every check `decode` makes, in the same order and with the same
    /// errors, without building it: a table of strings is checked whole when it is read and its strings are
    /// built when rows name them. `scratch` is reused between calls (the text pieces, tokens as one ASCII byte).
    package static func check(_ r: inout BinaryReader, scratch: inout [UInt8]) throws(LogFormatError) {
        // Most strings' text is ASCII, and tokens spell ASCII: then the text is UTF-8, and its bytes need not be
        // gathered first. Only a string with a byte of 0x80 or more in a text piece is stepped over again with its
        // text gathered (a block's table of strings is checked whole each time the block is read).
        let start = r.offset
        var ascii = true
        try stepPieces(&r) { text in
            if ascii { ascii = UTF8Text.isASCII(text.assumingMemoryBound(to: UInt8.self)) }
        } token: {
        }
        if ascii { return }
        r.offset = start
        scratch.removeAll(keepingCapacity: true)
        try stepPieces(&r) {
            scratch.append(contentsOf: $0)
        } token: {
            scratch.append(UInt8(ascii: "0"))
        }
        // Tokens spell ASCII, so the text is UTF-8 exactly when the text pieces with an ASCII byte for each token
        // are: a multi-byte character cut by a token is invalid either way.
        guard scratch.withUnsafeBufferPointer(UTF8Check.isValid) else {
            throw LogFormatError(.malformed, "tokenized string: the text is not UTF-8")
        }
    }

    /// Steps over one tokenized string's pieces with every check `decode` makes of them, in the same order and with
    /// the same errors: each text piece's bytes go to `text`, and `token` is called for each token that spells
    /// something.
    @inline(__always) private static func stepPieces(
        _ r: inout BinaryReader, text: (UnsafeRawBufferPointer) -> Void, token: () -> Void
    ) throws(LogFormatError) {
        var more = true
        while more {
            let (kind, length, last) = try piece(&r)
            more = !last
            switch kind {
            case .text:
                text(try r.rawSlice(Int(length)))
            case .hexLower, .hexUpper:
                _ = try r.rawSlice(Int(length))
                if length > 0 { token() }
            case .uuidLower, .uuidUpper:
                guard length == 0 else { throw LogFormatError(.malformed, "tokenized string: a UUID has a length") }
                _ = try r.rawSlice(16)
                token()
            case .ipv4:
                guard length == 0 else { throw LogFormatError(.malformed, "tokenized string: an address has a length") }
                _ = try r.rawSlice(4)
                token()
            case .decimal:
                _ = try decimal(&r, digits: length)
                token()
            }
        }
    }

    /// The next piece's header: its kind, length, and whether it is the string's last, with the length checked
    /// against what is left (a decimal's length counts digits, not bytes).
    private static func piece(_ r: inout BinaryReader) throws(LogFormatError) -> (Kind, UInt64, last: Bool) {
        let header = try r.uvarint()
        let length = header >> 4
        guard let kind = Kind(rawValue: UInt8(header >> 1 & 7)) else {
            throw LogFormatError(.malformed, "tokenized string: unknown piece kind \(header >> 1 & 7)")
        }
        guard length <= UInt64(r.remaining) || kind == .decimal else {
            throw LogFormatError(.truncated, "tokenized string: a piece of \(length) bytes runs past the column")
        }
        return (kind, length, header & 1 == 0)
    }

    /// A decimal piece's value, checked to fit its `digits` (5…19).
    private static func decimal(_ r: inout BinaryReader, digits: UInt64) throws(LogFormatError) -> UInt64 {
        guard digits >= UInt64(minimumDecimalDigits), digits <= UInt64(maximumDecimalDigits) else {
            throw LogFormatError(.malformed, "tokenized string: a decimal of \(digits) digits")
        }
        let value = try r.uvarint()
        guard value < powersOfTen[Int(digits)] else {
            throw LogFormatError(.malformed, "tokenized string: \(value) has more than \(digits) digits")
        }
        return value
    }

    /// Appends the bytes of one tokenized string to `out` (not checked for UTF-8: `decode` and `check` do that).
    package static func decode(_ r: inout BinaryReader, appendingTo out: inout [UInt8]) throws(LogFormatError) {
        var more = true
        while more {
            let (kind, length, last) = try piece(&r)
            more = !last
            switch kind {
            case .text:
                out.append(contentsOf: try r.rawSlice(Int(length)))
            case .hexLower, .hexUpper:
                let digits = kind == .hexLower ? lowerDigits : upperDigits
                for b in try r.rawSlice(Int(length)) {
                    out.append(digits[Int(b >> 4)])
                    out.append(digits[Int(b & 15)])
                }
            case .uuidLower, .uuidUpper:
                guard length == 0 else { throw LogFormatError(.malformed, "tokenized string: a UUID has a length") }
                let digits = kind == .uuidLower ? lowerDigits : upperDigits
                for (n, b) in try r.rawSlice(16).enumerated() {
                    if n == 4 || n == 6 || n == 8 || n == 10 { out.append(UInt8(ascii: "-")) }
                    out.append(digits[Int(b >> 4)])
                    out.append(digits[Int(b & 15)])
                }
            case .ipv4:
                guard length == 0 else { throw LogFormatError(.malformed, "tokenized string: an address has a length") }
                for (n, b) in try r.rawSlice(4).enumerated() {
                    if n > 0 { out.append(UInt8(ascii: ".")) }
                    appendDecimal(b, to: &out)
                }
            case .decimal:
                var value = try decimal(&r, digits: length)
                out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: Int(length)))
                var k = out.count - 1
                while value > 0 {
                    out[k] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                    k -= 1
                }
            }
        }
    }

    // MARK: Recognising tokens

    /// The token starting at `i`, if any, and where it ends.
    static func token(_ u: UnsafeBufferPointer<UInt8>, at i: Int) -> (Kind, Int)? {
        if let kind = uuid(u, at: i) { return (kind, i + 36) }
        if let (kind, end) = hexRun(u, at: i) { return (kind, end) }
        if let end = ipv4(u, at: i) { return (.ipv4, end) }
        if let end = decimalRun(u, at: i) { return (.decimal, end) }
        return nil
    }

    /// A whole word of 5…19 decimal digits (leading zeros allowed: the length keeps them).
    static func decimalRun(_ u: UnsafeBufferPointer<UInt8>, at i: Int) -> Int? {
        var j = i
        while j < u.count, j - i <= maximumDecimalDigits, u[j] >= UInt8(ascii: "0"), u[j] <= UInt8(ascii: "9") {
            j += 1
        }
        let n = j - i
        guard n >= minimumDecimalDigits, n <= maximumDecimalDigits, j == u.count || !isWordByte(u[j]) else {
            return nil
        }
        return j
    }

    /// 8-4-4-4-12 hex digits of one case, not followed by another word byte.
    static func uuid(_ u: UnsafeBufferPointer<UInt8>, at i: Int) -> Kind? {
        guard i + 36 <= u.count, i + 36 == u.count || !isWordByte(u[i + 36]) else { return nil }
        var lower = false
        var upper = false
        for j in 0..<36 {
            let b = u[i + j]
            if j == 8 || j == 13 || j == 18 || j == 23 {
                guard b == UInt8(ascii: "-") else { return nil }
                continue
            }
            guard hexValue(b) != nil else { return nil }
            if b >= UInt8(ascii: "a") { lower = true } else if b >= UInt8(ascii: "A") { upper = true }
        }
        if lower && upper { return nil }
        return upper ? .uuidUpper : .uuidLower
    }

    /// A whole word of hex digits of one case, of even length and at least `minimumHexDigits`.
    static func hexRun(_ u: UnsafeBufferPointer<UInt8>, at i: Int) -> (Kind, Int)? {
        var j = i
        var lower = false
        var upper = false
        while j < u.count, hexValue(u[j]) != nil {
            if u[j] >= UInt8(ascii: "a") { lower = true } else if u[j] >= UInt8(ascii: "A") { upper = true }
            j += 1
        }
        let n = j - i
        guard n >= minimumHexDigits, n % 2 == 0, !(lower && upper), j == u.count || !isWordByte(u[j]) else {
            return nil
        }
        return (upper ? .hexUpper : .hexLower, j)
    }

    /// Four decimal numbers 0…255 without leading zeros, joined by dots, not followed by a digit or a dot and digit.
    static func ipv4(_ u: UnsafeBufferPointer<UInt8>, at i: Int) -> Int? {
        var j = i
        for part in 0..<4 {
            if part > 0 {
                guard j < u.count, u[j] == UInt8(ascii: ".") else { return nil }
                j += 1
            }
            let start = j
            var value = 0
            while j < u.count, j - start < 3, u[j] >= UInt8(ascii: "0"), u[j] <= UInt8(ascii: "9") {
                value = value * 10 + Int(u[j] - UInt8(ascii: "0"))
                j += 1
            }
            let digits = j - start
            guard digits > 0, value <= 255, digits == 1 || u[start] != UInt8(ascii: "0") else { return nil }
        }
        guard j == u.count || !isWordByte(u[j]) else { return nil }
        return j
    }

    // MARK: Bytes

    /// Letters, digits and `_`: what a token must not be glued to.
    @inline(__always) static func isWordByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
            || (b | 0x20 >= UInt8(ascii: "a") && b | 0x20 <= UInt8(ascii: "z"))
            || b == UInt8(ascii: "_")
    }

    @inline(__always) static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// 10^n for n ≤ 19 (10^19 < 2^64).
    static let powersOfTen: [UInt64] = (0...19).map { n in (0..<n).reduce(UInt64(1)) { p, _ in p * 10 } }

    static let lowerDigits: [UInt8] = Array("0123456789abcdef".utf8)
    static let upperDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    static func appendDecimal(_ v: UInt8, to out: inout [UInt8]) {
        if v >= 100 { out.append(UInt8(ascii: "0") + v / 100) }
        if v >= 10 { out.append(UInt8(ascii: "0") + v / 10 % 10) }
        out.append(UInt8(ascii: "0") + v % 10)
    }
}
