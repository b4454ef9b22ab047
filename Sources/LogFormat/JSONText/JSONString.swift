// The one JSON string escaper of the package (RFC 8259), shared by everything that writes JSON text: auditq's
// outputs and evidence bundles, and the collector's rendering of access lines. One escaper, so every JSON this
// project writes quotes a string the same way.

/// JSON string quoting. `"` and `\` are escaped; control characters below U+0020 become `\b \f \n \r \t` or
/// `\u00XX`; U+2028 and U+2029 become `\u2028` and `\u2029`, so a line is also valid JavaScript. Everything
/// else, non-ASCII text included, passes through as UTF-8.
public enum JSONString {
    /// `s` quoted and escaped, as a String.
    public static func quote(_ s: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count + 2)
        appendQuoted(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `s` quoted and escaped to `buffer`.
    public static func appendQuoted(_ s: String, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { appendEscaped($0, to: &buffer) }
        buffer.append(UInt8(ascii: "\""))
    }

    /// Appends the escaped form of the UTF-8 bytes `utf8` (no quotes) to `buffer`. Runs that need no escape
    /// are copied whole; they are found eight bytes at a time.
    public static func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>, to buffer: inout [UInt8]) {
        var runStart = 0
        var i = 0
        let count = utf8.count
        while i < count {
            while i + 8 <= count,
                !mayNeedEscape(UnsafeRawPointer(utf8.baseAddress! + i).loadUnaligned(as: UInt64.self))
            {
                i += 8
            }
            guard i < count else { break }
            let b = utf8[i]
            let escape: StaticString?
            var skip = 1
            switch b {
            case UInt8(ascii: "\""): escape = "\\\""
            case UInt8(ascii: "\\"): escape = "\\\\"
            case 0x08: escape = "\\b"
            case 0x09: escape = "\\t"
            case 0x0a: escape = "\\n"
            case 0x0c: escape = "\\f"
            case 0x0d: escape = "\\r"
            case 0x00..<0x20: escape = ""  // \u00XX, written below
            case 0xe2 where i + 2 < count && utf8[i + 1] == 0x80 && (utf8[i + 2] == 0xa8 || utf8[i + 2] == 0xa9):
                escape = utf8[i + 2] == 0xa8 ? "\\u2028" : "\\u2029"
                skip = 3
            default: escape = nil
            }
            if let escape {
                if runStart < i { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
                if escape.utf8CodeUnitCount == 0 {
                    buffer.append(contentsOf: [
                        UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                        hexDigits[Int(b >> 4)], hexDigits[Int(b & 0x0f)],
                    ])
                } else {
                    buffer.append(
                        contentsOf: UnsafeBufferPointer(start: escape.utf8Start, count: escape.utf8CodeUnitCount))
                }
                i += skip
                runStart = i
            } else {
                i += 1
            }
        }
        if runStart < count { buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<count])) }
    }

    /// Whether `utf8` escaped is `utf8` itself: none of its bytes is one the escaper looks at (below 0x20, `"`, `\\`,
    /// or 0xE2, the lead byte of U+2028 and U+2029). A writer copies such a string as it is; the others it escapes.
    public static func isPlain(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = utf8.count
        var i = 0
        while i + 8 <= count {
            if mayNeedEscape(UnsafeRawPointer(utf8.baseAddress! + i).loadUnaligned(as: UInt64.self)) { return false }
            i += 8
        }
        while i < count {
            let b = utf8[i]
            if b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b == 0xE2 { return false }
            i += 1
        }
        return true
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Whether any of the eight bytes of `v` is one the escaper looks at: below 0x20, `"`, `\\`, or 0xE2 (the lead
    /// byte of U+2028 and U+2029). Each test is exact for the word as a whole (a byte below 0x20, or equal to the
    /// value: the high bit of some byte of the result is set exactly then), which is all this needs.
    @inline(__always) static func mayNeedEscape(_ v: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func anyZero(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & high }
        let control = (v &- ones &* 0x20) & ~v & high
        return control | anyZero(v ^ (ones &* 0x22)) | anyZero(v ^ (ones &* 0x5C)) | anyZero(v ^ (ones &* 0xE2)) != 0
    }
}
