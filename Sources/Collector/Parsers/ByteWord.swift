// Searches eight bytes at a time for the scanners' hot loops (the access-line scanner's string ends, redaction's
// trigger bytes): each byte of a 64-bit word is tested at once, and the lowest flagged byte is the first match.

enum ByteWord {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let highs: UInt64 = 0x8080_8080_8080_8080

    /// `b` in every byte of a word.
    @inline(__always) static func splat(_ b: UInt8) -> UInt64 { ones &* UInt64(b) }

    /// The high bit of each byte of `v` below `n` (n ≤ 128). Borrows only run upward, so the lowest flagged byte is
    /// exact (bytes above it may be flagged falsely, which a search for the first never reads).
    @inline(__always) static func below(_ v: UInt64, _ n: UInt8) -> UInt64 { (v &- splat(n)) & ~v & highs }

    /// The high bit of each byte of `v` equal to `b` (exact for the lowest, as `below`).
    @inline(__always) static func equal(_ v: UInt64, _ b: UInt8) -> UInt64 { below(v ^ splat(b), 1) }

    /// The high bit of each byte of `v` strictly between `low` and `high` (low < 128, high ≤ 128), exact for every
    /// byte: the seven low bits are compared with no borrow or carry between bytes, and bytes of 128 and more are
    /// never flagged. For masks that are negated, where a false flag would hide a match.
    @inline(__always) static func between(_ v: UInt64, _ low: UInt8, _ high: UInt8) -> UInt64 {
        let seven = v & splat(0x7F)
        return (splat(127 &+ high) &- seven) & ~v & (seven &+ splat(127 &- low)) & highs
    }

    /// The first index at or after `start` whose byte matches, or `p.count`: whole words through `word` (a byte's
    /// high bit set where it matches, exact for the lowest), the last few bytes through `byte`.
    @inline(__always) static func firstIndex(
        in p: UnsafeBufferPointer<UInt8>, from start: Int, word: (UInt64) -> UInt64, byte: (UInt8) -> Bool
    ) -> Int {
        var j = start
        if let base = p.baseAddress {
            let raw = UnsafeRawPointer(base)
            while j + 8 <= p.count {
                let hit = word(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: j, as: UInt64.self)))
                if hit != 0 { return j + hit.trailingZeroBitCount >> 3 }
                j += 8
            }
        }
        while j < p.count, !byte(p[j]) { j += 1 }
        return j
    }
}
