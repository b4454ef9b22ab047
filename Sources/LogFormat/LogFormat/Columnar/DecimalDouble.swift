// Doubles that were written as short decimals (a request time of `0.021`), stored as the decimal they spell
// (docs/format/columns.md, "Revisions", value tag 0x81): `m` × 10^`e` takes two or three bytes where the bit
// pattern takes eight. Only doubles that come back bit for bit are stored so.

package enum DecimalDouble {
    /// Most significant digits stored: 17 always round-trip a double and fit in 63 bits.
    static let maximumDigits = 17
    /// Exponents a decimal is read with: a double needs at most 10^±(308 + 17 digits).
    static let exponents: ClosedRange<Int64> = -400...400

    /// `(m, e)` with `d` the double nearest to m × 10^e, from `d`'s shortest decimal form; nil when `d` is not
    /// finite, is −0, or does not come back exactly.
    package static func split(_ d: Double) -> (m: Int64, e: Int64)? {
        guard d.isFinite else { return nil }
        var m: Int64 = 0
        var digits = 0
        var e: Int64 = 0
        var negative = false
        var fraction = false
        var exponent: Int64 = 0
        var exponentNegative = false
        var inExponent = false
        // Swift's description is the shortest form that round-trips: "0.021", "12920.0", "1e-05", "1.5e+20".
        for c in d.description.utf8 {
            switch c {
            case UInt8(ascii: "-") where inExponent: exponentNegative = true
            case UInt8(ascii: "-"): negative = true
            case UInt8(ascii: "+"): break
            case UInt8(ascii: "."): fraction = true
            case UInt8(ascii: "e"): inExponent = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                let v = Int64(c - UInt8(ascii: "0"))
                if inExponent {
                    exponent = exponent * 10 + v
                    guard exponent < 1000 else { return nil }
                } else {
                    if m > 0 || v > 0 { digits += 1 }
                    guard digits <= maximumDigits else { return nil }
                    m = m * 10 + v
                    if fraction { e -= 1 }
                }
            default: return nil
            }
        }
        e += exponentNegative ? -exponent : exponent
        while m != 0 && m % 10 == 0 {
            m /= 10
            e += 1
        }
        if m == 0 { e = 0 }
        if negative { m = -m }
        guard let back = value(m: m, e: e), back.bitPattern == d.bitPattern else { return nil }
        return (m, e)
    }

    /// The double nearest to m × 10^e (correctly rounded, as parsing its decimal text is); nil for an exponent
    /// outside `exponents`, which no writer stores.
    package static func value(m: Int64, e: Int64) -> Double? {
        guard exponents.contains(e) else { return nil }
        // Clinger's fast path: m and 10^|e| are exact doubles, so one multiplication or division rounds correctly
        // (most stored decimals: a duration in milliseconds is m × 10^-3). Parsing the text is the general case.
        if m.magnitude < 1 << 53 && e.magnitude <= 22 {
            // 10^k for k ≤ 22 is exact, and so is every product on the way to it.
            var p = 1.0
            for _ in 0..<e.magnitude { p *= 10 }
            return e < 0 ? Double(m) / p : Double(m) * p
        }
        return Double("\(m)e\(e)")
    }
}
