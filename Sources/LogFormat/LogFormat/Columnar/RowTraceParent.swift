// A row's own W3C `traceparent` as text (columns.md, value tag 0x85): `00-<trace id>-<span id>-<flags>`, the ids
// those of the row in lowercase hex. An nginx edge logs it beside the ids it was lifted into, so every access line
// spelled the row's 24 bytes of ids again in a string of its own; revision 4 stores only the flags byte.

package enum RowTraceParent {
    /// The text's length: `00-` 32 digits `-` 16 digits `-` 2 digits.
    package static let length = 55

    /// The flags byte of `s` when `s` is exactly the traceparent of the row with these ids (version `00`, every
    /// digit lowercase, so the text comes back byte for byte); nil for any other string.
    package static func flags(_ s: String, traceID: TraceID, spanID: SpanID) -> UInt8? {
        guard s.utf8.count == length else { return nil }
        var s = s
        return s.withUTF8 { u -> UInt8? in
            func word(at i: Int) -> UInt64? {
                HexCoding.word(UnsafeBufferPointer(rebasing: u[i..<i + 16]), lowercaseOnly: true)
            }
            guard u[0] == UInt8(ascii: "0"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "-"),
                u[35] == UInt8(ascii: "-"), u[52] == UInt8(ascii: "-"),
                word(at: 3) == traceID.high, word(at: 19) == traceID.low, word(at: 36) == spanID.value,
                let high = HexCoding.lowercaseDigit(u[53]), let low = HexCoding.lowercaseDigit(u[54])
            else { return nil }
            return high << 4 | low
        }
    }

    /// The flags byte of a string `flags(_:traceID:spanID:)` accepted already: its last two digits.
    package static func acceptedFlags(_ s: String) -> UInt8 {
        let u = s.utf8
        let high = HexCoding.lowercaseDigit(u[u.index(u.endIndex, offsetBy: -2)]) ?? 0
        return high << 4 | (HexCoding.lowercaseDigit(u[u.index(before: u.endIndex)]) ?? 0)
    }

    /// Appends the text for a row's ids and a flags byte.
    package static func append(traceID: TraceID, spanID: SpanID, flags: UInt8, to out: inout BinaryWriter) {
        out.raw("00-".utf8)
        HexCoding.appendDigits(of: traceID.high, to: &out)
        HexCoding.appendDigits(of: traceID.low, to: &out)
        out.u8(UInt8(ascii: "-"))
        HexCoding.appendDigits(of: spanID.value, to: &out)
        out.u8(UInt8(ascii: "-"))
        out.u8(HexCoding.digitCharacter(flags >> 4))
        out.u8(HexCoding.digitCharacter(flags & 0x0f))
    }

    /// The text as a `String`.
    package static func text(traceID: TraceID, spanID: SpanID, flags: UInt8) -> String {
        var w = BinaryWriter(capacity: length)
        append(traceID: traceID, spanID: spanID, flags: flags, to: &w)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
