// Where a record decoder's strings come from. Decoding a record builds a `String` for each of its strings: for one
// of 16 bytes or more that is an allocation, a UTF-8 check and a copy, and freeing the event later a release and a
// free. A seal decodes every record of a segment, whose longer strings (attribute keys, names, routes, user agents,
// users) mostly repeat, so its decoder takes them from `SharedStrings` instead: one `String` per distinct bytes,
// shared by every event that holds it.

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

/// One `String` per distinct bytes of 16 or more (shorter ones are stored inside the `String` value, without an
/// allocation). Holds at most `maxEntries` strings and starts afresh when full: unique strings (request ids, targets
/// with ids in them) would otherwise fill it for the rest of the seal, and keep a few MiB alive at the collector's
/// memory peak; the strings that repeat are back in it after a few rows.
struct SharedStrings: RecordStrings {
    static let maxEntries = 1 << 14
    /// Below this many bytes a `String` is stored in place.
    static let minLength = 16
    private var index = ByteKeyTable(capacity: 4096)
    private var strings: [String] = []

    mutating func string(_ bytes: UnsafeRawBufferPointer) -> String {
        guard bytes.count >= Self.minLength else { return String(decoding: bytes, as: UTF8.self) }
        if let i = index.value(bytes) { return strings[Int(i)] }
        let s = String(decoding: bytes, as: UTF8.self)
        if strings.count == Self.maxEntries {
            index = ByteKeyTable(capacity: 4096)
            strings.removeAll(keepingCapacity: true)
        }
        index.insert(bytes, UInt64(strings.count))
        strings.append(s)
        return s
    }
}
