// A trace run's request id (columns.md, value tags 0x83 and 0x84): 16 random bytes that a request's edge event and
// its sidecar spans all carry as text (nginx's `$request_id` as 32 hex digits, Envoy's `x-request-id` often as a
// UUID). Revision 3 stores the bytes once per run and names each use by its spelling.

/// The 16 bytes of a run's request id, big-endian in two words.
package struct RunRequestID: Equatable, Sendable {
    package var high: UInt64
    package var low: UInt64

    package init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The id `s` spells and the shape tag of that spelling: 32 lowercase hex digits (0x83) or a lowercase UUID
    /// (0x84); nil for anything else (the tags must give back `s` byte for byte).
    static func parse(_ s: String) -> (RunRequestID, tag: UInt8)? {
        let n = s.utf8.count
        guard n == 32 || n == 36 else { return nil }
        var s = s
        return s.withUTF8 { u -> (RunRequestID, tag: UInt8)? in
            var words: (UInt64, UInt64) = (0, 0)
            var digits = 0
            for (i, c) in u.enumerated() {
                if n == 36 && (i == 8 || i == 13 || i == 18 || i == 23) {
                    guard c == UInt8(ascii: "-") else { return nil }
                    continue
                }
                guard let d = HexCoding.lowercaseDigit(c) else { return nil }
                if digits < 16 { words.0 = words.0 << 4 | UInt64(d) } else { words.1 = words.1 << 4 | UInt64(d) }
                digits += 1
            }
            let tag = n == 32 ? ColumnBlock.ShapeTag.runRequestIDHex : ColumnBlock.ShapeTag.runRequestIDUUID
            return (RunRequestID(high: words.0, low: words.1), tag)
        }
    }

    /// The stored form: 16 bytes.
    static func read(_ r: inout BinaryReader) throws(LogFormatError) -> RunRequestID {
        RunRequestID(high: try r.u64BigEndian(), low: try r.u64BigEndian())
    }

    func write(to w: inout BinaryWriter) {
        w.u64BigEndian(high)
        w.u64BigEndian(low)
    }

    /// The stored form appended to bytes held for a row read apart from its run.
    func append(to out: inout [UInt8]) {
        for word in [high, low] {
            for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: word >> UInt64(56 - 8 * i))) }
        }
    }

    /// The text of `tag`'s spelling (32 or 36 bytes), passed to `body` without allocating.
    package func withText<R>(_ tag: UInt8, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let uuid = tag == ColumnBlock.ShapeTag.runRequestIDUUID
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 36) { b in
            var at = 0
            var word = high
            for i in 0..<32 {
                if i == 16 { word = low }
                if uuid && (i == 8 || i == 12 || i == 16 || i == 20) {
                    b[at] = UInt8(ascii: "-")
                    at += 1
                }
                let d = UInt8(truncatingIfNeeded: word >> 60)
                word <<= 4
                b[at] = d < 10 ? UInt8(ascii: "0") &+ d : UInt8(ascii: "a") &+ d &- 10
                at += 1
            }
            return body(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: b[0..<at])))
        }
    }

    /// The text of `tag`'s spelling.
    func text(_ tag: UInt8) -> String { withText(tag) { String(decoding: $0, as: UTF8.self) } }
}
