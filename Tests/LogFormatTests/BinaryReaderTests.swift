import PropertyBased
import SyntheticTraffic
import TestSupport
import Testing

@testable import LogFormat

/// A varint read the plain way, one checked byte at a time: what `BinaryReader.uvarint` must say of any bytes.
private func referenceVarint(_ bytes: [UInt8], at start: Int) -> String {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    var offset = start
    while true {
        guard offset < bytes.count else { return "truncated a varint runs past the end" }
        let b = bytes[offset]
        offset += 1
        if shift == 63 && b > 1 { return "malformed a varint overflows 64 bits" }
        result |= UInt64(b & 0x7f) << shift
        if b < 0x80 { return "ok \(result) at \(offset)" }
        shift += 7
        if shift > 63 { return "malformed a varint is longer than 10 bytes" }
    }
}

@Suite struct BinaryReaderTests {
    /// Varints of every length from 1 to 10 bytes, whole, cut short, made overlong or overflowing, read from
    /// anywhere in a buffer with 0 to 12 bytes after them (so the unchecked path for long varints and the checked
    /// one both meet every kind): the value and the bytes consumed, or the error, are the plain reader's.
    @Test func varintsReadAsTheCheckedLoopReadsThem() async {
        await propertyCheck(count: 6_000, input: Gen.uint64(), Gen.int(in: 0...64)) { seed, bits in
            var g = SplitMix64(seed: seed)
            let value = bits == 64 ? g.next() : g.next() & ((UInt64(1) << UInt64(bits)) - 1)
            var w = BinaryWriter()
            w.uvarint(value)
            var varint = w.bytes
            switch g.next() % 6 {
            case 0: varint.removeLast(Int(g.next() % UInt64(varint.count)))  // cut short
            case 1:  // the same value spelled longer, or longer than any varint
                varint[varint.count - 1] |= 0x80
                varint += Array(repeating: 0x80, count: Int(g.next() % 4)) + [UInt8(g.next() % 3)]
            case 2:  // 64 bits or more
                varint = Array(repeating: 0xff, count: 9) + [UInt8(truncatingIfNeeded: g.next())]
            default: break
            }
            let before = (0..<Int(g.next() % 4)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            let after = (0..<Int(g.next() % 13)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            let bytes = before + varint + after
            let read = bytes.withUnsafeBytes { b -> String in
                var r = BinaryReader(b, offset: before.count)
                do throws(LogFormatError) {
                    let v = try r.uvarint()
                    return "ok \(v) at \(r.offset)"
                } catch {
                    return "\(error.code) \(error.message)"
                }
            }
            #expect(read == referenceVarint(bytes, at: before.count), "\(bytes) from \(before.count)")
        }
    }
}
