// The trace section of layouts 7 and 10 (docs/format/index.md, "Packed trace entries"): the (trace-id prefix, block)
// entries of layouts 2 and 3 (layout 10: prefixes of three bytes, not four), sorted the same way, in chunks of 512
// whose prefixes are stored as Rice-coded gaps and blocks in as few bits as the chunk's largest needs: about 3.1
// bytes an entry instead of 6.
//
// section = fence{chunks} chunk{chunks}
// fence   = u32 first prefix  u32 offset (of the chunk, from the section's start)  u32 crc32 (of the chunk's bytes)
// chunk   = u8 k  u8 blockBits  bits   ; first entry: block; then per entry: unary(gap >> k), gap's k low bits, block

enum PackedTraceSection {
    /// Bytes of one fence: first prefix, chunk offset, chunk CRC.
    static let fenceSize = 12

    /// Number of chunks of a section of `entries` entries.
    static func chunkCount(_ entries: Int) -> Int {
        (entries + FormatConstants.traceChunkEntries - 1) / FormatConstants.traceChunkEntries
    }

    /// The section for `pairs` (`prefix << 32 | block`, ascending, distinct) and the CRC of its fences.
    static func encode(_ pairs: [UInt64]) -> (bytes: [UInt8], crc: UInt32) {
        let chunks = chunkCount(pairs.count)
        var bodies: [[UInt8]] = []
        bodies.reserveCapacity(chunks)
        var at = 0
        while at < pairs.count {
            let end = min(at + FormatConstants.traceChunkEntries, pairs.count)
            bodies.append(encodeChunk(pairs[at..<end]))
            at = end
        }
        var w = BinaryWriter(capacity: chunks * fenceSize + bodies.reduce(0) { $0 + $1.count })
        var offset = chunks * fenceSize
        for (k, body) in bodies.enumerated() {
            w.u32(UInt32(pairs[k * FormatConstants.traceChunkEntries] >> 32))
            w.u32(UInt32(offset))
            w.u32(Checksum.crc32(body))
            offset += body.count
        }
        let crc = Checksum.crc32(w.bytes)
        for body in bodies { w.raw(body) }
        return (w.bytes, crc)
    }

    /// One chunk: the Rice parameter that makes it shortest (the smallest such), the block width, the bits.
    static func encodeChunk(_ pairs: ArraySlice<UInt64>) -> [UInt8] {
        var maxBlock: UInt64 = 0
        for p in pairs { maxBlock = max(maxBlock, p & 0xffff_ffff) }
        let blockBits = maxBlock == 0 ? 0 : 64 - maxBlock.leadingZeroBitCount
        var gaps: [UInt64] = []
        gaps.reserveCapacity(pairs.count)
        var previous = pairs.first! >> 32
        for p in pairs.dropFirst() {
            gaps.append((p >> 32) - previous)
            previous = p >> 32
        }
        var k = 0
        var best = UInt64.max
        for candidate in 0...31 {
            var bits: UInt64 = 0
            for g in gaps { bits += (g >> UInt64(candidate)) + 1 + UInt64(candidate) }
            if bits < best {
                best = bits
                k = candidate
            }
        }
        var bits = BitWriter()
        bits.bytes.append(UInt8(k))
        bits.bytes.append(UInt8(blockBits))
        bits.put(pairs.first! & 0xffff_ffff, blockBits)
        for (g, p) in zip(gaps, pairs.dropFirst()) {
            var q = g >> UInt64(k)
            while q > 0 {
                let n = Int(min(q, 32))
                bits.put((1 << UInt64(n)) - 1, n)
                q -= UInt64(n)
            }
            bits.put(0, 1)
            bits.put(g & ((1 << UInt64(k)) - 1), k)
            bits.put(p & 0xffff_ffff, blockBits)
        }
        return bits.finish()
    }

    /// The entries of a chunk (`prefix << 32 | block`), `count` of them starting at prefix `first` (its fence's),
    /// checked: a known Rice parameter and block width, blocks below `blockCount`, entries strictly ascending,
    /// prefixes within `prefixBits` bits (32, or 24 in layout 10; the fence's too), and the bits ending in the
    /// chunk's last byte with zero padding. With `stopAbove`, the decoding stops at the first entry whose prefix is
    /// above it (a single look-up needs no more; the entries read are checked as above, the rest and the padding are
    /// not).
    static func decodeChunk(
        _ b: UnsafeRawBufferPointer, first: UInt32, count: Int, blockCount: Int, prefixBits: Int = 32,
        stopAbove: UInt32? = nil
    ) throws(LogFormatError) -> [UInt64] {
        let limit: UInt64 = (1 << UInt64(prefixBits)) - 1
        guard UInt64(first) <= limit else {
            throw LogFormatError(.malformed, "a trace chunk's first prefix is wider than \(prefixBits) bits")
        }
        guard b.count >= 2 else { throw LogFormatError(.malformed, "a trace chunk shorter than its header") }
        let k = Int(b[0])
        let blockBits = Int(b[1])
        guard k <= 31, blockBits <= 32 else {
            throw LogFormatError(.malformed, "a trace chunk with Rice parameter \(k) and block width \(blockBits)")
        }
        var r = BitReader(UnsafeRawBufferPointer(rebasing: b[2...]))
        var out: [UInt64] = []
        out.reserveCapacity(stopAbove == nil ? count : 16)
        var prefix = UInt64(first)
        var block = try r.take(blockBits)
        guard block < UInt64(blockCount) else {
            throw LogFormatError(.malformed, "the trace section names block \(block) of \(blockCount)")
        }
        out.append(prefix << 32 | block)
        let stop = stopAbove.map(UInt64.init) ?? limit
        var i = 1
        while i < count && prefix <= stop {
            let q = try r.unary(max: limit >> UInt64(k))
            let gap = q << UInt64(k) | (try r.take(k))
            let previousBlock = block
            block = try r.take(blockBits)
            prefix += gap
            guard prefix <= limit else { throw LogFormatError(.malformed, "a trace chunk's prefix overflows") }
            guard block < UInt64(blockCount) else {
                throw LogFormatError(.malformed, "the trace section names block \(block) of \(blockCount)")
            }
            guard gap > 0 || block > previousBlock else {
                throw LogFormatError(.malformed, "a trace chunk's entries are not strictly ascending")
            }
            out.append(prefix << 32 | block)
            i += 1
        }
        if i == count { try r.finish() }
        return out
    }

    /// Bits appended least significant first, into bytes filled from their lowest bit.
    struct BitWriter {
        var bytes: [UInt8] = []
        var word: UInt64 = 0
        var used = 0

        mutating func put(_ value: UInt64, _ n: Int) {
            guard n > 0 else { return }
            var v = value
            var left = n
            while left > 0 {
                let take = min(left, 64 - used)
                let part = take == 64 ? v : v & ((1 << UInt64(take)) - 1)
                word |= part << UInt64(used)
                used += take
                left -= take
                v = take == 64 ? 0 : v >> UInt64(take)
                while used >= 8 {
                    bytes.append(UInt8(truncatingIfNeeded: word))
                    word >>= 8
                    used -= 8
                }
            }
        }

        mutating func finish() -> [UInt8] {
            if used > 0 { bytes.append(UInt8(truncatingIfNeeded: word)) }
            return bytes
        }
    }

    /// Reads what `BitWriter` wrote, eight bytes at a time; running past the bytes is malformed.
    struct BitReader {
        let b: UnsafeRawBufferPointer
        var bit = 0
        let bits: Int

        init(_ b: UnsafeRawBufferPointer) {
            self.b = b
            bits = b.count * 8
        }

        /// The next 57 or more bits (zeros past the end), the first in the lowest bit.
        @inline(__always) func peek() -> UInt64 {
            let byte = bit >> 3
            var w: UInt64 = 0
            if byte + 8 <= b.count {
                w = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: byte, as: UInt64.self))
            } else {
                for j in byte..<b.count { w |= UInt64(b[j]) << UInt64(8 * (j - byte)) }
            }
            return w >> UInt64(bit & 7)
        }

        /// `n` bits, `n` ≤ 32.
        @inline(__always) mutating func take(_ n: Int) throws(LogFormatError) -> UInt64 {
            guard n > 0 else { return 0 }
            guard bit + n <= bits else { throw LogFormatError(.malformed, "a trace chunk ends early") }
            let v = peek() & ((1 << UInt64(n)) - 1)
            bit += n
            return v
        }

        /// A count of 1 bits ended by a 0 bit (which is read too); more than `max` ones is malformed.
        @inline(__always) mutating func unary(max: UInt64) throws(LogFormatError) -> UInt64 {
            var q: UInt64 = 0
            while true {
                let ones = (~peek()).trailingZeroBitCount
                let run = Swift.min(ones, 56)
                guard bit + run < bits || (run < 56 && bit + run + 1 <= bits) else {
                    throw LogFormatError(.malformed, "a trace chunk ends early")
                }
                q += UInt64(run)
                bit += run
                guard q <= max else { throw LogFormatError(.malformed, "a trace chunk's gap overflows") }
                if run < 56 {
                    bit += 1  // the 0 bit
                    return q
                }
            }
        }

        /// The bits end in the last byte, and the rest of it is zero.
        func finish() throws(LogFormatError) {
            guard (bit + 7) / 8 == b.count else {
                throw LogFormatError(.malformed, "a trace chunk holds \(bits - bit) bits past its entries")
            }
            if bit & 7 != 0, UInt64(b[bit >> 3]) >> UInt64(bit & 7) != 0 {
                throw LogFormatError(.malformed, "a trace chunk's padding bits are not zero")
            }
        }
    }
}
