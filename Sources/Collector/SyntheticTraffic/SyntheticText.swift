// Hex, decimal and address formatting for the generator's hot path, without Foundation.
import LogFormat

/// Hex, decimal and address formatting for the hot path (the standard library's `String(_:radix:)` and
/// interpolation are fine for short values, but not for fixed-width or zero-padded output).
enum SyntheticText {
    @inline(__always)
    static func hexDigit(_ v: UInt64) -> UInt8 {
        let n = UInt8(truncatingIfNeeded: v & 0x0f)
        return n < 10 ? 0x30 + n : 0x57 + n
    }

    /// 32 lowercase hex digits.
    static func hex(_ id: TraceID) -> String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            for i in 0..<16 {
                buffer[i] = hexDigit(id.high >> UInt64(60 - 4 * i))
                buffer[16 + i] = hexDigit(id.low >> UInt64(60 - 4 * i))
            }
            return 32
        }
    }

    /// 16 lowercase hex digits.
    static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            for i in 0..<16 { buffer[i] = hexDigit(value >> UInt64(60 - 4 * i)) }
            return 16
        }
    }

    /// `value` in decimal, zero-padded on the left to at least `width` digits.
    static func padded(_ value: Int, width: Int) -> String {
        precondition(value >= 0, "value must not be negative")
        var digits = 1
        var v = value / 10
        while v > 0 {
            digits += 1
            v /= 10
        }
        let length = max(width, digits)
        return String(unsafeUninitializedCapacity: length) { b in
            var v = value
            for i in stride(from: length - 1, through: 0, by: -1) {
                b[i] = 0x30 + UInt8(v % 10)
                v /= 10
            }
            return length
        }
    }

    /// `u-000123`: a user subject.
    static func subject(_ index: Int) -> String {
        "u-" + padded(index, width: 6)
    }

    /// Nanoseconds as seconds with millisecond precision, as nginx writes times: `0.118`.
    static func seconds(nanos: UInt64) -> String {
        let millis = (nanos + 500_000) / 1_000_000
        return String(millis / 1000) + "." + padded(Int(millis % 1000), width: 3)
    }

    /// A lowercase RFC 9562 version-4 UUID from two random words.
    static func uuid(_ a: UInt64, _ b: UInt64) -> String {
        let hi = a & ~0xF000 | 0x4000
        let lo = b & ~(0xC << 60) | (0x8 << 60)
        let h = hex(hi)
        let l = hex(lo)
        let hc = Array(h.utf8)
        let lc = Array(l.utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        out += hc[0..<8]
        out.append(UInt8(ascii: "-"))
        out += hc[8..<12]
        out.append(UInt8(ascii: "-"))
        out += hc[12..<16]
        out.append(UInt8(ascii: "-"))
        out += lc[0..<4]
        out.append(UInt8(ascii: "-"))
        out += lc[4..<16]
        return String(decoding: out, as: UTF8.self)
    }

    static func ipv4(_ a: Int, _ b: Int, _ c: Int, _ d: Int) -> String {
        var s = String(a)
        s += "."
        s += String(b)
        s += "."
        s += String(c)
        s += "."
        s += String(d)
        return s
    }

    /// Kubernetes-style random name suffix (`7d9f8c6b5`, `x2k9p`): consonants and digits without vowels.
    static func podSuffix(_ value: UInt64, length: Int) -> String {
        let alphabet: [UInt8] = Array("bcdfghjklmnpqrstvwxz2456789".utf8)
        var v = value
        return String(unsafeUninitializedCapacity: length) { b in
            for i in 0..<length {
                b[i] = alphabet[Int(v % UInt64(alphabet.count))]
                v /= UInt64(alphabet.count)
            }
            return length
        }
    }
}
