// The seal's decoder takes a record's longer strings from `SharedStrings`: whatever bytes it is given, in whatever
// order and however often, each string must be the one `String(decoding:as:)` makes of them, byte for byte, also
// when two spellings fall in one slot and when the bytes are not UTF-8.
import PropertyBased
import TestSupport
import Testing

@testable import LogFormat

@Suite struct SharedStringsTests {
    /// A pool of byte strings of 0–40 bytes: ASCII words, multi-byte UTF-8, invalid UTF-8 and near-duplicates (one
    /// byte apart), drawn from `seed`.
    static func pool(seed: UInt64, size: Int) -> [[UInt8]] {
        var g = SplitMix(seed)
        var out: [[UInt8]] = []
        for _ in 0..<size {
            let n = Int(g.next() % 41)
            var b: [UInt8]
            switch g.next() % 4 {
            case 0: b = (0..<n).map { _ in UInt8(0x61 + g.next() % 26) }
            case 1: b = Array(String(repeating: "é→", count: n / 5 + 1).utf8.prefix(n))
            case 2: b = (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            default:
                b = out.last ?? []
                if !b.isEmpty { b[Int(g.next() % UInt64(b.count))] ^= 1 }
            }
            out.append(b)
        }
        return out
    }

    @Test func everyStringIsTheOneItsBytesMake() async {
        await propertyCheck(count: 60, input: Gen.uint64(), Gen.int(in: 1...400)) { seed, size in
            let pool = Self.pool(seed: seed, size: size)
            var shared = SharedStrings()
            var g = SplitMix(seed ^ 0x5eed)
            for _ in 0..<(size * 8) {
                let bytes = pool[Int(g.next() % UInt64(pool.count))]
                let got = bytes.withUnsafeBytes { shared.string($0) }
                let made = String(decoding: bytes, as: UTF8.self)
                #expect(Array(got.utf8) == Array(made.utf8), "\(bytes)")
            }
        }
    }

    /// More distinct strings than slots: each still comes back right, and one met again soon after is the same
    /// `String` storage (shared, not made again).
    @Test func manyMoreStringsThanSlotsStayRight() {
        var shared = SharedStrings()
        let count = SharedStrings.slotCount * 3
        for i in 0..<count {
            let bytes = Array("attribute.key.number.\(i)".utf8)
            let first = bytes.withUnsafeBytes { shared.string($0) }
            let again = bytes.withUnsafeBytes { shared.string($0) }
            #expect(first == "attribute.key.number.\(i)")
            var a = first
            var b = again
            #expect(a.withUTF8 { $0.baseAddress } == b.withUTF8 { $0.baseAddress }, "met twice in a row: one String")
        }
    }
}
