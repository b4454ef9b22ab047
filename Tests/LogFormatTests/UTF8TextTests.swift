import LogFormat
import PropertyBased
import Testing

/// `UTF8Text.string(validating:)` is `String(validating:as:)` with a fast path for ASCII: the answers must agree.
@Suite struct UTF8TextTests {
    static let pieces: [[UInt8]] = [
        Array("a".utf8), Array("spiffe://td/x".utf8), Array("é".utf8), Array("€".utf8), Array("𝄞".utf8),
        [0x80], [0xC3], [0xE2, 0x82], [0xF0, 0x9D, 0x84], [0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0x00], [0x7F],
    ]

    @Test func agreesWithTheStandardLibraryOnValidAndInvalidBytes() async {
        await propertyCheck(count: 2_000, input: Gen.uint64(), Gen.int(in: 0...40)) { seed, count in
            var state = seed
            var bytes: [UInt8] = []
            for _ in 0..<count {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                // Mostly ASCII, as keys and values are, with a piece of something else now and then.
                let pick = Int(state >> 33)
                bytes += pick % 4 == 0 ? Self.pieces[pick % Self.pieces.count] : [UInt8(pick % 0x80)]
            }
            bytes.withUnsafeBufferPointer { p in
                #expect(UTF8Text.string(validating: p) == String(validating: p, as: UTF8.self), "\(bytes)")
                #expect(UTF8Text.isASCII(p) == p.allSatisfy { $0 < 0x80 })
            }
        }
    }

    @Test(arguments: 0...17) func everyPositionOfAHighByteIsSeen(at: Int) {
        var bytes = [UInt8](repeating: UInt8(ascii: "x"), count: 17)
        if at < 17 { bytes[at] = 0xC3 }
        bytes.withUnsafeBufferPointer { p in
            #expect(UTF8Text.isASCII(p) == (at == 17))
            #expect(UTF8Text.string(validating: p) == String(validating: p, as: UTF8.self))
        }
    }
}
