// Where the record encoder's primitives go (`RecordCodec.write`): one description of the canonical layout, run
// once to count a record's bytes (`ByteCounter`) and once to store them into space of that size
// (`RawByteSink`), with no capacity or uniqueness check per primitive. `BinaryWriter` takes them as well, for
// the column code that writes attribute values into its own buffers.

/// The primitives of docs/format/README.md ("Primitives") that records are made of. The composite ones are written
/// once, below, on top of these.
protocol RecordByteSink {
    mutating func u8(_ v: UInt8)
    mutating func u16(_ v: UInt16)
    mutating func u64(_ v: UInt64)
    mutating func u64BigEndian(_ v: UInt64)
    mutating func uvarint(_ value: UInt64)
    mutating func raw(_ data: UnsafeRawBufferPointer)
    /// `uvarint length | UTF-8 bytes` (a requirement so that `ByteCounter` can count without reading the bytes).
    mutating func string(_ s: String)
    /// `uvarint 0` for nil, else `uvarint (length + 1) | UTF-8 bytes`.
    mutating func optionalString(_ s: String?)
}

extension RecordByteSink {
    @inline(__always) mutating func uvarint(_ value: Int) { uvarint(UInt64(value)) }

    /// Zig-zag signed varint.
    @inline(__always) mutating func svarint(_ value: Int64) {
        uvarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// `uvarint length | bytes`.
    @inline(__always) mutating func lengthPrefixed(_ data: [UInt8]) {
        uvarint(data.count)
        data.withUnsafeBytes { raw($0) }
    }

    @inline(__always) mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            uvarint(utf8.count)
            raw(UnsafeRawBufferPointer(utf8))
        }
    }

    @inline(__always) mutating func optionalString(_ s: String?) {
        guard var s else { return u8(0) }
        s.withUTF8 { utf8 in
            uvarint(utf8.count + 1)
            raw(UnsafeRawBufferPointer(utf8))
        }
    }
}

extension BinaryWriter: RecordByteSink {}

/// Counts the bytes the primitives would take.
struct ByteCounter: RecordByteSink {
    private(set) var count = 0

    @inline(__always) mutating func u8(_ v: UInt8) { count += 1 }
    @inline(__always) mutating func u16(_ v: UInt16) { count += 2 }
    @inline(__always) mutating func u64(_ v: UInt64) { count += 8 }
    @inline(__always) mutating func u64BigEndian(_ v: UInt64) { count += 8 }
    @inline(__always) mutating func uvarint(_ value: UInt64) { count += BinaryWriter.uvarintSize(value) }
    // `utf8.count` of a native string is stored, not counted: no walk over its bytes.
    @inline(__always) mutating func string(_ s: String) {
        uvarint(s.utf8.count)
        count += s.utf8.count
    }
    @inline(__always) mutating func optionalString(_ s: String?) {
        guard let s else {
            count += 1
            return
        }
        uvarint(s.utf8.count + 1)
        count += s.utf8.count
    }
    @inline(__always) mutating func raw(_ data: UnsafeRawBufferPointer) { count += data.count }
}

/// Stores the primitives from `base` on; the caller has made room for every byte (`ByteCounter`'s count).
struct RawByteSink: RecordByteSink {
    private let base: UnsafeMutableRawPointer
    private(set) var offset = 0

    init(_ base: UnsafeMutableRawPointer) { self.base = base }

    /// Zeros to make room with, a page at a time.
    private static let zeros = [UInt8](repeating: 0, count: 4096)

    /// Appends `count` bytes to `bytes` for a sink to overwrite: copied from a buffer of zeros, which is a copy in
    /// any build (appending `repeatElement(0, count:)` went a byte at a time in debug builds, and a temporary
    /// buffer copied afterwards was a heap allocation for every record over a kilobyte).
    static func makeRoom(_ count: Int, in bytes: inout [UInt8]) {
        var left = count
        zeros.withUnsafeBytes { z in
            while left > 0 {
                let n = Swift.min(left, z.count)
                bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: z[0..<n]))
                left -= n
            }
        }
    }

    @inline(__always) mutating func u8(_ v: UInt8) {
        base.storeBytes(of: v, toByteOffset: offset, as: UInt8.self)
        offset += 1
    }
    @inline(__always) mutating func u16(_ v: UInt16) {
        base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt16.self)
        offset += 2
    }
    @inline(__always) mutating func u64(_ v: UInt64) {
        base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt64.self)
        offset += 8
    }
    @inline(__always) mutating func u64BigEndian(_ v: UInt64) {
        base.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt64.self)
        offset += 8
    }
    @inline(__always) mutating func uvarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            u8(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        u8(UInt8(truncatingIfNeeded: v))
    }
    @inline(__always) mutating func raw(_ data: UnsafeRawBufferPointer) {
        guard let from = data.baseAddress, data.count > 0 else { return }
        (base + offset).copyMemory(from: from, byteCount: data.count)
        offset += data.count
    }
}
