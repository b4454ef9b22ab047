// The redaction scanner jumps from candidate to candidate eight bytes at a time (`ByteClass.nextTrigger`): `=`
// and `:` anywhere, `e`, `b` and `B` only after a byte that is not base64url. It may stop early (the first byte of
// each word is taken to follow a boundary; the last few bytes are tested alone, on the table) but never late, or
// the scanner would miss a secret. Byte values around each test (0x80 and above, the case partner of `b`, bytes
// one off each trigger and each end of the base64url ranges) make the words' borrows and carries show.
import PropertyBased
import TestSupport
import Testing

@testable import CollectorParsers

@Suite struct ByteClassTests {
    static let near: [UInt8] = [
        0x65, 0x3D, 0x3A, 0x22, 0x62, 0x42, 0x64, 0x66, 0x3C, 0x3E, 0x39, 0x3B, 0x21, 0x23, 0x61, 0x63, 0x41, 0x43,
        0x45, 0x00, 0x80, 0xE5, 0xBD, 0xFF, 0x20, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x40, 0x5A, 0x5B, 0x5E, 0x5F, 0x60,
        0x7A, 0x7B, 0x0D, 0x10, 0x19, 0xC5, 0xE2, 0xC2,
    ]

    static func isBase64URL(_ b: UInt8) -> Bool { ByteClass.table[Int(b)] & ByteClass.base64URL != 0 }

    /// Where a byte may start a detection, given the byte before it (nil: none known).
    static func isCandidate(_ b: UInt8, after previous: UInt8?) -> Bool {
        switch b {
        case UInt8(ascii: "="), UInt8(ascii: ":"): true
        case UInt8(ascii: "e"), UInt8(ascii: "b"), UInt8(ascii: "B"): previous.map { !isBase64URL($0) } ?? true
        default: false
        }
    }

    static func bytes(_ g: inout SplitMix, count n: Int) -> [UInt8] {
        (0..<n).map { _ in
            g.next() % 4 == 0 ? near[Int(g.next() % UInt64(near.count))] : UInt8(0x61 + g.next() % 26)
        }
    }

    @Test func theNextTriggerIsNeverPastACandidate() async {
        await propertyCheck(count: 5_000, input: Gen.uint64()) { seed in
            var g = SplitMix(seed)
            let n = Int(g.next() % 64)
            let bytes = Self.bytes(&g, count: n)
            let start = Int(g.next() % UInt64(n + 1))
            // The first byte the scanner must look at: a candidate given the byte before it in the buffer.
            var strict = start
            while strict < n, !Self.isCandidate(bytes[strict], after: strict > 0 ? bytes[strict - 1] : nil) {
                strict += 1
            }
            // Exactly where the search lands: whole words from `start`, each word's first byte taken to follow a
            // boundary; then the tail, byte by byte on the table.
            let wordsEnd = start + (n - start) / 8 * 8
            var expected = start
            while expected < wordsEnd,
                !Self.isCandidate(bytes[expected], after: (expected - start) % 8 == 0 ? nil : bytes[expected - 1])
            {
                expected += 1
            }
            if expected == wordsEnd {
                while expected < n, ByteClass.table[Int(bytes[expected])] & ByteClass.trigger == 0 { expected += 1 }
            }
            let found = bytes.withUnsafeBufferPointer { ByteClass.nextTrigger($0, from: start) }
            #expect(found == expected, "\(bytes) from \(start)")
            #expect(found <= strict, "\(bytes) from \(start): past a candidate at \(strict)")
        }
    }

    /// The values the redaction scanner meets most hold many `e`s and `b`s inside words and hex ids, and no
    /// candidate: the search stops at few of them (a word's first byte, the last few bytes), not at each.
    @Test func wordsAndHexIdsArePassedMostlyWhole() {
        let text = Array(
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
                + "853b559647364cea92f89756082a4514 employees,sales ingrid.fischer11@example.com").utf8)
        let onTheTable = text.filter { ByteClass.table[Int($0)] & ByteClass.trigger != 0 }.count
        var stops = 0
        var i = 0
        while true {
            i = text.withUnsafeBufferPointer { ByteClass.nextTrigger($0, from: i) }
            guard i < text.count else { break }
            stops += 1
            i += 1
        }
        #expect(onTheTable >= 12)
        #expect(stops * 3 <= onTheTable, "\(stops) stops for \(onTheTable) trigger bytes")
    }

    @Test func betweenIsExactForEveryByte() async {
        await propertyCheck(count: 2_000, input: Gen.uint64()) { seed in
            var g = SplitMix(seed)
            let low = UInt8(g.next() % 128)
            let high = UInt8(min(128, UInt64(low) + 1 + g.next() % 40))
            var word: UInt64 = 0
            var bytes: [UInt8] = []
            for k in 0..<8 {
                let b =
                    g.next() % 3 == 0
                    ? UInt8(truncatingIfNeeded: g.next()) : UInt8(truncatingIfNeeded: Int(low) + Int(g.next() % 4) - 1)
                bytes.append(b)
                word |= UInt64(b) << (8 * UInt64(k))
            }
            let mask = ByteWord.between(word, low, high)
            for k in 0..<8 {
                let flagged = mask >> (8 * UInt64(k) + 7) & 1 == 1
                #expect(flagged == (bytes[k] > low && bytes[k] < high), "\(bytes) in (\(low), \(high)) at \(k)")
            }
        }
    }
}
