import CCRC32
import CZlib
import Foundation
import SyntheticTraffic
import Testing

@testable import LogFormat

/// CRC-32 the plain way, one bit at a time (reflected polynomial 0xEDB88320, starting from and finishing with all
/// ones): what `Checksum.crc32` must say of any bytes, whichever way it computes it.
private func bitwiseCRC32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xffff_ffff
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xedb8_8320 : crc >> 1 }
    }
    return ~crc
}

/// Whether this processor has what `ccrc32_fold` needs (so that the tests below know it must take the bytes).
private let foldAvailable: Bool = {
    #if arch(x86_64)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return false }
        let set = Set(flags.split(separator: " "))
        return set.contains("pclmulqdq") && set.contains("sse4_1")
    #else
        return false
    #endif
}()

@Suite struct CRC32Tests {
    /// The check value of CRC-32/ISO-HDLC, and nothing for no bytes.
    @Test func knownValues() {
        #expect(Checksum.crc32(Array("123456789".utf8)) == 0xcbf4_3926)
        #expect(Checksum.crc32([UInt8]()) == 0)
        #expect(Checksum.crc32(UnsafeRawBufferPointer(start: nil, count: 0)) == 0)
    }

    /// Every length from 0 to 1,100 bytes (below, at and across the folded path's 64-byte start and 16-byte
    /// steps), at three alignments, of random bytes: the bitwise CRC.
    @Test func everyLengthIsTheBitwiseCRC() {
        var rng = SplitMix64(seed: 0x6372_6333_32)
        let bytes = (0..<1_200).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for length in 0...1_100 {
            for offset in 0..<3 {
                let slice = bytes[offset..<offset + length]
                #expect(Checksum.crc32(slice) == bitwiseCRC32(slice), "length \(length) at \(offset)")
            }
        }
    }

    /// The folded path continues any CRC as zlib does: random starting values and lengths to 64 KiB, the fold's
    /// bytes then zlib's for the rest, against zlib over all of them. Where the processor has PCLMULQDQ the fold must
    /// take every whole 16 bytes from 64 on (so the comparison is of the fold, not of zlib with itself).
    @Test func foldContinuesZlibsCRC() {
        var rng = SplitMix64(seed: 0x666f_6c64)
        let bytes = (0..<(64 << 10) + 16).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes.withUnsafeBufferPointer { all in
            for _ in 0..<400 {
                let length = Int.random(in: 0...(64 << 10), using: &rng)
                let offset = Int.random(in: 0...15, using: &rng)
                let start = UInt32.random(in: 0...UInt32.max, using: &rng)
                let p = all.baseAddress! + offset
                var crc = start
                let done = ccrc32_fold(&crc, p, length)
                #expect(done == (foldAvailable && length >= 64 ? length & ~15 : 0))
                let total = CZlib.crc32(uLong(crc), p + done, uInt(length - done))
                #expect(total == CZlib.crc32(uLong(start), p, uInt(length)), "length \(length) from \(start)")
            }
        }
    }
}
