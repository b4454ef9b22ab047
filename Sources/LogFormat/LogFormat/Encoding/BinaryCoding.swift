// Little-endian fixed-width integers, LEB128 unsigned varints and length-prefixed bytes: the primitives
// every on-disk structure of LogFormat is written with (see docs/format/README.md, "Primitives").

/// Appends primitives to a growable byte array.
public struct BinaryWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    @inlinable public mutating func u8(_ v: UInt8) { bytes.append(v) }

    @inlinable public mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
    }

    @inlinable public mutating func u32(_ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inlinable public mutating func u64(_ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inlinable public mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }

    /// Big-endian 64 bits, used for ids so their stored bytes are the wire bytes.
    @inlinable public mutating func u64BigEndian(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// LEB128 unsigned varint (at most 10 bytes).
    @inlinable public mutating func uvarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    @inlinable public mutating func uvarint(_ value: Int) { uvarint(UInt64(value)) }

    /// Bytes `uvarint(value)` writes.
    @inlinable public static func uvarintSize(_ value: UInt64) -> Int {
        var n = 1
        var v = value
        while v >= 0x80 {
            v >>= 7
            n += 1
        }
        return n
    }

    /// Zig-zag signed varint.
    @inlinable public mutating func svarint(_ value: Int64) {
        uvarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    @inlinable public mutating func raw(_ data: some Sequence<UInt8>) { bytes.append(contentsOf: data) }

    @inlinable public mutating func raw(_ data: UnsafeRawBufferPointer) { bytes.append(contentsOf: data) }

    /// `uvarint length | bytes`.
    @inlinable public mutating func lengthPrefixed(_ data: [UInt8]) {
        uvarint(data.count)
        bytes.append(contentsOf: data)
    }

    /// `uvarint length | UTF-8 bytes`.
    @inlinable public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            uvarint(utf8.count)
            bytes.append(contentsOf: utf8)
        }
    }

    /// `uvarint 0` for nil, else `uvarint (length + 1) | UTF-8 bytes`.
    @inlinable public mutating func optionalString(_ s: String?) {
        guard var s else {
            bytes.append(0)
            return
        }
        s.withUTF8 { utf8 in
            uvarint(utf8.count + 1)
            bytes.append(contentsOf: utf8)
        }
    }

    /// Overwrites 4 bytes at `offset` with a little-endian value (for back-patched lengths and checksums).
    @inlinable public mutating func patchU32(_ v: UInt32, at offset: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: v)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: v >> 8)
        bytes[offset + 2] = UInt8(truncatingIfNeeded: v >> 16)
        bytes[offset + 3] = UInt8(truncatingIfNeeded: v >> 24)
    }
}

/// Reads primitives from a byte buffer, throwing `LogFormatError` with the offset on truncation or damage.
/// The buffer must outlive the reader (it is used inside `withUnsafeBytes` scopes or over mapped files).
public struct BinaryReader {
    public let buffer: UnsafeRawBufferPointer
    public var offset: Int

    public init(_ buffer: UnsafeRawBufferPointer, offset: Int = 0) {
        self.buffer = buffer
        self.offset = offset
    }

    public var remaining: Int { buffer.count - offset }
    public var isAtEnd: Bool { offset >= buffer.count }

    @inline(__always) private func need(_ n: Int, _ what: StaticString) throws(LogFormatError) {
        guard n >= 0, n <= buffer.count - offset else {
            throw LogFormatError(
                .truncated, "\(what) needs \(n) bytes but \(buffer.count - offset) remain", offset: offset)
        }
    }

    @inlinable public mutating func u8() throws(LogFormatError) -> UInt8 {
        guard offset < buffer.count else {
            throw LogFormatError(.truncated, "a 1-byte field runs past the end", offset: offset)
        }
        defer { offset += 1 }
        return buffer[offset]
    }

    public mutating func u16() throws(LogFormatError) -> UInt16 {
        try need(2, "a 2-byte field")
        defer { offset += 2 }
        return UInt16(buffer[offset]) | UInt16(buffer[offset + 1]) << 8
    }

    public mutating func u32() throws(LogFormatError) -> UInt32 {
        try need(4, "a 4-byte field")
        defer { offset += 4 }
        return UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    public mutating func u64() throws(LogFormatError) -> UInt64 {
        try need(8, "an 8-byte field")
        defer { offset += 8 }
        return UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    public mutating func i64() throws(LogFormatError) -> Int64 { Int64(bitPattern: try u64()) }

    @inline(__always) public mutating func u64BigEndian() throws(LogFormatError) -> UInt64 {
        try need(8, "an 8-byte id")
        defer { offset += 8 }
        return UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// A varint. One or two bytes (string ids, counts and tags) are read here, inlined into the caller; longer
    /// ones by `uvarintSlow`, which reports every error.
    @inlinable @inline(__always) public mutating func uvarint() throws(LogFormatError) -> UInt64 {
        if offset + 1 < buffer.count {
            let b = buffer[offset]
            if b < 0x80 {
                offset += 1
                return UInt64(b)
            }
            let c = buffer[offset + 1]
            if c < 0x80 {
                offset += 2
                return UInt64(b & 0x7f) | UInt64(c) << 7
            }
        } else if offset < buffer.count, buffer[offset] < 0x80 {
            offset += 1
            return UInt64(buffer[offset - 1])
        }
        return try uvarintSlow()
    }

    @usableFromInline mutating func uvarintSlow() throws(LogFormatError) -> UInt64 {
        // Three to eight bytes (times and durations in nanoseconds, of varying length: a loop's exit was a branch
        // mispredicted about once a varint) with at least nine left: the eight bytes read as one word, the first
        // without a continuation bit found by its trailing zeros, and the 7-bit groups gathered pairwise in three
        // steps. Eight bytes hold 56 bits, so none can overflow. A longer or damaged varint, or one near the end, is
        // read below with every check.
        if buffer.count - offset >= 9 {
            let word = UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            let ends = ~word & 0x8080_8080_8080_8080
            if ends != 0 {
                let bits = ends.trailingZeroBitCount + 1  // 8 × the varint's length
                var x = (bits == 64 ? word : word & (UInt64(1) << UInt64(bits) &- 1)) & 0x7f7f_7f7f_7f7f_7f7f
                x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1)
                x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2)
                x = (x & 0x0000_0000_0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4)
                offset += bits >> 3
                return x
            }
        }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = offset
        while true {
            guard offset < buffer.count else {
                throw LogFormatError(.truncated, "a varint runs past the end", offset: start)
            }
            let b = buffer[offset]
            offset += 1
            if shift == 63 && b > 1 {
                throw LogFormatError(.malformed, "a varint overflows 64 bits", offset: start)
            }
            result |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw LogFormatError(.malformed, "a varint is longer than 10 bytes", offset: start) }
        }
    }

    /// A varint that must fit `limit` (a count or a length); larger values are reported as damage. Inlined (the
    /// walk over a block's rows reads one per row and several per row's parts), its error made out of line.
    @inlinable @inline(__always) public mutating func uvarint(max limit: Int, _ what: StaticString)
        throws(LogFormatError) -> Int
    {
        let start = offset
        let v = try uvarint()
        guard v <= UInt64(limit) else { throw Self.exceeds(v, limit, what, at: start) }
        return Int(v)
    }

    @usableFromInline static func exceeds(_ v: UInt64, _ limit: Int, _ what: StaticString, at start: Int)
        -> LogFormatError
    {
        LogFormatError(.malformed, "\(what) \(v) exceeds the limit \(limit)", offset: start)
    }

    @inlinable @inline(__always) public mutating func svarint() throws(LogFormatError) -> Int64 {
        let u = try uvarint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// `n` raw bytes as a slice of the underlying buffer (no copy).
    @inline(__always) public mutating func rawSlice(_ n: Int) throws(LogFormatError) -> UnsafeRawBufferPointer {
        try need(n, "a byte string")
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + n])
    }

    public mutating func bytes(_ n: Int) throws(LogFormatError) -> [UInt8] { Array(try rawSlice(n)) }

    public mutating func lengthPrefixedSlice() throws(LogFormatError) -> UnsafeRawBufferPointer {
        let n = try uvarint(max: remaining, "a length")
        return try rawSlice(n)
    }

    public mutating func string() throws(LogFormatError) -> String {
        let slice = try lengthPrefixedSlice()
        return String(decoding: slice, as: UTF8.self)
    }

    public mutating func optionalString() throws(LogFormatError) -> String? {
        let start = offset
        let n = try uvarint()
        if n == 0 { return nil }
        guard n - 1 <= UInt64(remaining) else {
            throw LogFormatError(.truncated, "a string of \(n - 1) bytes runs past the end", offset: start)
        }
        return String(decoding: try rawSlice(Int(n - 1)), as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` that keeps the typed `LogFormatError` (the standard one erases it).
    @inlinable public func withBytes<R>(
        _ body: (UnsafeRawBufferPointer) throws(LogFormatError) -> R
    ) throws(LogFormatError) -> R {
        let result: Result<R, LogFormatError> = withUnsafeBytes { buffer in
            Result { () throws(LogFormatError) -> R in try body(buffer) }
        }
        return try result.get()
    }
}
