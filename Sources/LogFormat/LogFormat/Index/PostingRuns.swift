// Posting lists of a version 2 index (docs/format/index.md, "Postings as runs"). Sealed order puts a user's,
// a service's or a workload's records next to each other, so a list is mostly runs of consecutive ordinals:
// each run costs two varints instead of one per record.
//
// postings = token*      token = uvarint(gap << 1 | isRun) [uvarint(runLength − 2) when isRun]
// `gap` is the distance from the ordinal after the previous token's last (0 before the first token) to this
// token's first ordinal. A writer makes a run of every stretch of two or more consecutive ordinals.
//
// Layout 9 (archive users): a list's first token counts from `base`, the end of the previous term's list in its
// group, with a signed gap: uvarint(zigzag(first − base) << 1 | isRun); the later tokens are as above.

enum PostingRuns {
    static func encode(_ ordinals: [UInt32], into w: inout BinaryWriter) { encode(ordinals, from: nil, into: &w) }

    /// `ordinals` as tokens; with a `base` (layout 9) the first token is a signed gap from it (the end of the previous
    /// term's list), without one an unsigned gap from 0.
    static func encode(_ ordinals: [UInt32], from base: UInt64?, into w: inout BinaryWriter) {
        var next = base ?? 0
        var i = 0
        while i < ordinals.count {
            let first = UInt64(ordinals[i])
            var j = i + 1
            while j < ordinals.count && UInt64(ordinals[j]) == first + UInt64(j - i) { j += 1 }
            let length = j - i
            let gap = i == 0 && base != nil ? zigzag(Int64(first) - Int64(next)) : first - next
            w.uvarint(gap << 1 | (length >= 2 ? 1 : 0))
            if length >= 2 { w.uvarint(UInt64(length - 2)) }
            next = first + UInt64(length)
            i = j
        }
    }

    @inline(__always) static func zigzag(_ d: Int64) -> UInt64 {
        d >= 0 ? UInt64(d) << 1 : (UInt64(-(d + 1)) << 1) | 1
    }

    /// Layout 9: exactly `count` ordinals whose first token is a signed gap from `base`, checked as `decode` checks;
    /// returns the list's end (its last ordinal + 1; `base` for an empty list), the next list's base.
    @discardableResult
    static func decode(_ r: inout BinaryReader, count: Int, from base: UInt64, into out: inout [UInt32]?)
        throws(LogFormatError) -> UInt64
    {
        let have = out?.count ?? 0
        out?.reserveCapacity(have + count)
        var next = base
        var decoded = 0
        while decoded < count {
            let (gap, length) = try token(&r, left: count - decoded)
            var first: UInt64
            if decoded == 0 && gap & 1 == 1 {
                // zigzag: odd is a step back from the previous list's end.
                let back = (gap >> 1) + 1
                guard back <= next else { throw LogFormatError(.malformed, "a posting list starts before record 0") }
                first = next - back
            } else {
                first = next + (decoded == 0 ? gap >> 1 : gap)  // gaps are below 2^63, `next` below 2^33
            }
            try check(first, length)
            if out != nil { for k in 0..<length { out!.append(UInt32(first + UInt64(k))) } }
            next = first + UInt64(length)
            decoded += length
        }
        return next
    }

    /// One token: its gap field (`token >> 1`) and how many ordinals it covers, a run no longer than `left`.
    @inline(__always) private static func token(_ r: inout BinaryReader, left: Int) throws(LogFormatError) -> (
        gap: UInt64, length: Int
    ) {
        let token = try r.uvarint()
        guard token & 1 == 1 else { return (token >> 1, 1) }
        let extra = try r.uvarint()
        guard extra <= UInt64(left), extra + 2 <= UInt64(left) else {
            throw LogFormatError(.malformed, "a posting run is longer than its list")
        }
        return (token >> 1, Int(extra) + 2)
    }

    /// Every ordinal of a token fits in 32 bits.
    @inline(__always) private static func check(_ first: UInt64, _ length: Int) throws(LogFormatError) {
        guard first <= UInt64(UInt32.max), first + UInt64(length) - 1 <= UInt64(UInt32.max) else {
            throw LogFormatError(.malformed, "a posting list names an ordinal above 2^32 − 1")
        }
    }

    /// Decodes exactly `count` ordinals from `r`, checking that they ascend strictly and fit in 32 bits.
    static func decode(_ r: inout BinaryReader, count: Int, into out: inout [UInt32]) throws(LogFormatError) {
        out.reserveCapacity(out.count + count)
        var next: UInt64 = 0
        var decoded = 0
        while decoded < count {
            let (gap, length) = try token(&r, left: count - decoded)
            let first = next + gap  // the gap below 2^63, `next` below 2^33
            try check(first, length)
            for k in 0..<length { out.append(UInt32(first + UInt64(k))) }
            next = first + UInt64(length)
            decoded += length
        }
    }
}
