// Where a record decoder's strings come from. Decoding a record builds a `String` for each of its strings: for one
// of 16 bytes or more that is an allocation, a UTF-8 check and a copy, and freeing the event later a release and a
// free. A seal decodes every record of a segment, whose longer strings (attribute keys, names, routes, user agents,
// users) mostly repeat, so its decoder takes them from `SharedStrings` instead: the events holding the same bytes
// share one `String`.
#if canImport(Glibc)
    import Glibc
#endif

/// The strings of the records a decoder reads.
protocol RecordStrings {
    /// The string spelled by `bytes` (invalid UTF-8 repaired, as `String(decoding:as:)` does).
    mutating func string(_ bytes: UnsafeRawBufferPointer) -> String
}

extension RecordStrings {
    /// Reads a length-prefixed string.
    @inline(__always) mutating func string(_ r: inout BinaryReader) throws(LogFormatError) -> String {
        string(try r.lengthPrefixedSlice())
    }

    /// Reads an optional string (`uvarint n`: 0 none, else n - 1 bytes).
    @inline(__always) mutating func optionalString(_ r: inout BinaryReader) throws(LogFormatError) -> String? {
        let start = r.offset
        let n = try r.uvarint()
        if n == 0 { return nil }
        guard n - 1 <= UInt64(r.remaining) else {
            throw LogFormatError(.truncated, "a string of \(n - 1) bytes runs past the end", offset: start)
        }
        return string(try r.rawSlice(Int(n - 1)))
    }
}

/// A new `String` for every string read.
struct FreshStrings: RecordStrings {
    @inline(__always) mutating func string(_ bytes: UnsafeRawBufferPointer) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

/// The `String`s of recent bytes of 16 or more (shorter ones are stored inside the `String` value, without an
/// allocation): a direct-mapped cache of `slotCount` slots by hash, each holding the last string that fell in it.
/// Bounded by construction, so unique strings (request ids, targets with ids in them) only displace others, and a
/// hit costs a hash, one slot and a comparison.
struct SharedStrings: RecordStrings {
    static let slotCount = 1 << 13
    /// Below this many bytes a `String` is stored in place.
    static let minLength = 16
    private var slots = [(hash: UInt64, string: String)](repeating: (0, ""), count: slotCount)
    private static let seed = UInt64.random(in: .min ... .max)

    mutating func string(_ bytes: UnsafeRawBufferPointer) -> String {
        guard bytes.count >= Self.minLength else { return String(decoding: bytes, as: UTF8.self) }
        let h = ByteKeyTable.hash(bytes, seed: Self.seed)
        let slot = Int(truncatingIfNeeded: h) & (Self.slotCount - 1)
        return slots.withUnsafeMutableBufferPointer { slots in
            if slots[slot].hash == h, Self.equal(&slots[slot].string, bytes) { return slots[slot].string }
            let s = String(decoding: bytes, as: UTF8.self)
            slots[slot] = (h, s)
            return s
        }
    }

    /// Whether `s` is spelled by exactly `bytes` (a string made from repaired bytes is not, and is made again).
    private static func equal(_ s: inout String, _ bytes: UnsafeRawBufferPointer) -> Bool {
        s.withUTF8 { u in u.count == bytes.count && memcmp(u.baseAddress!, bytes.baseAddress!, u.count) == 0 }
    }
}
