// The redaction scanner jumps from trigger byte to trigger byte eight bytes at a time (`ByteClass.nextTrigger`):
// from any start it must land where a byte-at-a-time look-up in the table lands, whatever byte values surround
// the trigger (0x80 and above, the case partner of `b`, bytes one off each trigger).
import PropertyBased
import TestSupport
import Testing

@testable import CollectorParsers

@Suite struct ByteClassTests {
    @Test func theNextTriggerIsWhereTheTableSays() async {
        let near: [UInt8] = [
            0x65, 0x3D, 0x3A, 0x22, 0x62, 0x42, 0x64, 0x66, 0x3C, 0x3E, 0x39, 0x3B, 0x21, 0x23, 0x61, 0x63, 0x41, 0x43,
            0x45, 0x00, 0x80, 0xE5, 0xBD, 0xFF, 0x20,
        ]
        await propertyCheck(count: 3_000, input: Gen.uint64()) { seed in
            var g = SplitMix(seed)
            let n = Int(g.next() % 48)
            let bytes = (0..<n).map { _ in
                g.next() % 5 == 0 ? near[Int(g.next() % UInt64(near.count))] : UInt8(0x66 + g.next() % 20)
            }
            let start = Int(g.next() % UInt64(n + 1))
            var expected = start
            while expected < n, ByteClass.table[Int(bytes[expected])] & ByteClass.trigger == 0 { expected += 1 }
            let found = bytes.withUnsafeBufferPointer { ByteClass.nextTrigger($0, from: start) }
            #expect(found == expected, "\(bytes) from \(start)")
        }
    }
}
