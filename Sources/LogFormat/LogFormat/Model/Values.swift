// Identifiers and attribute values of the event model.

/// A 16-byte W3C / OTLP trace id, stored inline (two words) so events carry no heap allocation for it.
public struct TraceID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Big-endian halves: `high` holds bytes 0–7, `low` bytes 8–15, so ordering matches byte order.
    public var high: UInt64
    public var low: UInt64

    public static let zero = TraceID(high: 0, low: 0)

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From exactly 16 bytes; nil otherwise.
    @inlinable
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        if let contiguous = bytes.withContiguousStorageIfAvailable({ TraceID(raw: UnsafeRawBufferPointer($0)) }),
            let id = contiguous
        {
            self = id
            return
        }
        var h: UInt64 = 0
        var l: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
        }
        self.init(high: h, low: l)
    }

    /// From exactly 16 raw bytes (the hot path of every receiver: two unaligned big-endian loads).
    @inlinable
    public init?(raw: UnsafeRawBufferPointer) {
        guard raw.count == 16 else { return nil }
        self.init(
            high: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
            low: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }

    /// From 32 hex digits (either case), or 16 hex digits padded on the left with zeros (64-bit Zipkin ids).
    public init?(hex: some StringProtocol) {
        var text = String(hex)
        guard let id = text.withUTF8({ TraceID(hexDigits: $0) }) else { return nil }
        self = id
    }

    /// From 32 hex digits, or 16 (a 64-bit Zipkin id, zero-padded on the left), in place.
    @inlinable
    public init?(hexDigits u: UnsafeBufferPointer<UInt8>) {
        if u.count == 32 {
            guard let h = HexCoding.word(UnsafeBufferPointer(rebasing: u[0..<16])),
                let l = HexCoding.word(UnsafeBufferPointer(rebasing: u[16..<32]))
            else { return nil }
            self.init(high: h, low: l)
        } else if u.count == 16 {
            guard let l = HexCoding.word(u) else { return nil }
            self.init(high: 0, low: l)
        } else {
            return nil
        }
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift)))
        }
        for shift in stride(from: 56, through: 0, by: -8) {
            out.append(UInt8(truncatingIfNeeded: low >> UInt64(shift)))
        }
        return out
    }

    public var isZero: Bool { high == 0 && low == 0 }

    /// 32 lowercase hex digits.
    public var hex: String { HexCoding.encode(bytes) }
    public var description: String { hex }

    public static func < (a: TraceID, b: TraceID) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }
}

/// An 8-byte span id, stored inline as a big-endian word.
public struct SpanID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt64

    public static let zero = SpanID(value: 0)

    public init(value: UInt64) { self.value = value }

    @inlinable
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 8 else { return nil }
        var v: UInt64 = 0
        for b in bytes { v = v << 8 | UInt64(b) }
        self.value = v
    }

    /// From exactly 8 raw bytes.
    @inlinable
    public init?(raw: UnsafeRawBufferPointer) {
        guard raw.count == 8 else { return nil }
        self.init(value: UInt64(bigEndian: raw.loadUnaligned(as: UInt64.self)))
    }

    public init?(hex: some StringProtocol) {
        var text = String(hex)
        guard let v = text.withUTF8({ $0.count == 16 ? HexCoding.word($0) : nil }) else { return nil }
        self.init(value: v)
    }

    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> UInt64(56 - 8 * $0)) }
    }

    public var isZero: Bool { value == 0 }
    public var hex: String { HexCoding.encode(bytes) }
    public var description: String { hex }

    public static func < (a: SpanID, b: SpanID) -> Bool { a.value < b.value }
}

/// A key and its value, as OTLP's `KeyValue`.
public struct Attribute: Sendable, Hashable {
    public var key: String
    public var value: AttributeValue

    public init(_ key: String, _ value: AttributeValue) {
        self.key = key
        self.value = value
    }
}

/// OTLP's `AnyValue`: every value type, including an empty value (no field set).
///
/// Not `indirect`: the recursive cases hold arrays, which are references already, so no case needs a box of its
/// own. (An `indirect` enum allocated one box per value: one malloc and one free per attribute of every event.)
public enum AttributeValue: Sendable, Hashable {
    case empty
    case string(String)
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case bytes([UInt8])
    case array([AttributeValue])
    case keyValueList([Attribute])

    /// The string payload, if this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Equality that treats doubles by bit pattern, so NaN round-trips compare equal and -0 differs from +0.
    public func isIdentical(to other: AttributeValue) -> Bool {
        switch (self, other) {
        case (.double(let a), .double(let b)): return a.bitPattern == b.bitPattern
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.isIdentical(to: $1) }
        case (.keyValueList(let a), .keyValueList(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value.isIdentical(to: $1.value) }
        default: return self == other
        }
    }
}

extension Array where Element == Attribute {
    /// The first value stored under `key`.
    public func value(forKey key: String) -> AttributeValue? {
        first { $0.key == key }?.value
    }
}

/// Lowercase hex encoding and case-insensitive decoding.
public enum HexCoding {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the 16 lowercase hex digits of `word`, most significant first, without allocating.
    package static func appendDigits(of word: UInt64, to out: inout BinaryWriter) {
        // Sixteen digits into a buffer and one append: a byte at a time was most of writing a trace id (verify
        // writes one per request id that is its trace id).
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { b in
            for i in 0..<16 { b[i] = digitCharacter(UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * i)) & 0x0f) }
            out.raw(UnsafeRawBufferPointer(b))
        }
    }

    /// The lowercase hex digit of `d` (0…15).
    @inline(__always) package static func digitCharacter(_ d: UInt8) -> UInt8 {
        d < 10 ? UInt8(ascii: "0") &+ d : UInt8(ascii: "a") &+ d &- 10
    }

    /// The value of one hex digit (either case), or nil.
    @inlinable @inline(__always)
    public static func digit(_ c: UInt8) -> UInt8? {
        if let d = lowercaseDigit(c) { return d }
        guard c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F") else { return nil }
        return c &- UInt8(ascii: "A") &+ 10
    }

    /// The value of one lowercase hex digit, or nil (an uppercase one too: text that must be spelt back exactly).
    @inlinable @inline(__always)
    public static func lowercaseDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c &- UInt8(ascii: "a") &+ 10
        default: nil
        }
    }

    /// Up to 16 hex digits (either case, or lowercase only) as a big-endian word, in place and without allocating;
    /// nil on any other byte or more than 16 digits. The hot path of ids in text (traceparent headers, access lines,
    /// JSON).
    @inlinable
    public static func word(_ text: UnsafeBufferPointer<UInt8>, lowercaseOnly: Bool = false) -> UInt64? {
        guard text.count <= 16 else { return nil }
        var v: UInt64 = 0
        for c in text {
            guard let d = lowercaseOnly ? lowercaseDigit(c) : digit(c) else { return nil }
            v = v << 4 | UInt64(d)
        }
        return v
    }

    /// Decodes an even number of hex digits (either case); nil on any other byte.
    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        if let done = text.withContiguousStorageIfAvailable({ decode(contiguous: $0) }) { return done }
        return decode(contiguous: Array(text))
    }

    static func decode(contiguous text: [UInt8]) -> [UInt8]? {
        text.withUnsafeBufferPointer { decode(contiguous: $0) }
    }

    static func decode(contiguous text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(text.count / 2)
        var high: UInt8? = nil
        for c in text {
            guard let v = digit(c) else { return nil }
            if let h = high {
                out.append(h << 4 | v)
                high = nil
            } else {
                high = v
            }
        }
        return out
    }

    public static func decode(_ text: String) -> [UInt8]? { decode(Array(text.utf8)) }
}
