import PropertyBased
import SyntheticTraffic
import Testing

@testable import LogFormat

private func encoded(_ s: String) -> [UInt8] {
    var w = BinaryWriter()
    TokenizedString.encode(s, into: &w)
    return w.bytes
}

private func decoded(_ bytes: [UInt8]) throws(LogFormatError) -> String {
    try bytes.withBytes { (b) throws(LogFormatError) -> String in
        var r = BinaryReader(b)
        let s = try TokenizedString.decode(&r)
        guard r.remaining == 0 else { throw LogFormatError(.malformed, "\(r.remaining) bytes left") }
        return s
    }
}

/// Strings made of the pieces tokens are built from, glued in every way: hex of both cases, dashes, dots,
/// digits, letters, underscores, spaces and non-ASCII text.
private func stressString(_ g: inout SplitMix64) -> String {
    let parts = [
        "4bf92f3577b34da6a3ce929d0e0e4736", "4BF92F3577B34DA6", "00f067aa0ba902b7", "f067aa0ba902b7",
        "123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000", "123e4567-E89B-12d3-a456-4266",
        "10.0.0.1", "192.168.001.1", "256.1.1.1", "1.2.3", "0.0.0.0", "255.255.255.255", ".", "-", "_", "/", " ",
        "a", "Z", "7", "ümlaut", "日本", "🔐", "?id=", "&x-request-id=", "0", "00", "abcdefABCDEF0123",
        "12345", "0000123", "u-007049", "9999999999999999999", "18446744073709551615", "100022336",
    ]
    let n = Int(g.next() % 9)
    return (0..<n).map { _ in parts[Int(g.next() % UInt64(parts.count))] }.joined()
}

@Suite struct TokenizedStringTests {
    @Test(arguments: [
        "", "plain text", "GET /api/v1/orders/4bf92f3577b34da6a3ce929d0e0e4736?page=2",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "123e4567-e89b-12d3-a456-426614174000",
        "ID 123E4567-E89B-12D3-A456-426614174000.", "client 203.0.113.9:443", "10.0.0.1", "010.0.0.1",
        "1.2.3.4.5", "1.2.3.4a", "x4bf92f3577b34da6a3ce929d0e0e4736", "4bf92f3577b34da6a3ce929d0e0e473",
        "4Bf92f3577b34da6a3ce929d0e0e4736", "deadbeefdeadbeef_", "ümlaut 🔐 4bf92f3577b34da6a3ce929d0e0e4736",
    ])
    func roundTrips(_ s: String) throws {
        #expect(try decoded(encoded(s)) == s)
    }

    /// Ids become bytes: a trace id in a URL costs 16 bytes and a header, not 32 digits. (A header is one byte for
    /// pieces of fewer than 8 bytes, two up to 1023.)
    @Test func idsAreStoredAsBytes() {
        #expect(encoded("4bf92f3577b34da6a3ce929d0e0e4736").count == 2 + 16)
        #expect(encoded("123e4567-e89b-12d3-a456-426614174000").count == 1 + 16)
        #expect(encoded("203.0.113.9").count == 1 + 4)
        #expect(encoded("/t/4bf92f3577b34da6a3ce929d0e0e4736").count == (1 + 3) + (2 + 16))
        // Not ids: mixed case, odd length, glued to a word, a leading zero.
        #expect(encoded("4Bf92f3577b34da6a3ce929d0e0e4736").count == 2 + 32)
        #expect(encoded("4bf92f3577b34da6a3ce929d0e0e473").count == 2 + 31)
        #expect(encoded("x4bf92f3577b34da6a3ce929d0e0e4736").count == 2 + 33)
        #expect(encoded("010.0.0.1").count == 2 + 9)
    }

    /// Decimal words of 5 to 19 digits become numbers, leading zeros kept by the length.
    @Test func decimalsAreStoredAsNumbers() throws {
        #expect(encoded("100022336").count == 2 + 4)
        #expect(encoded("u-007049").count == (1 + 2) + (1 + 2))
        #expect(encoded("/v1/stock/SKU-56872").count == (2 + 14) + (1 + 3))
        for s in ["00000", "0000000000000000000", "9999999999999999999", "u-007049", "SKU-00001.5"] {
            #expect(try decoded(encoded(s)) == s)
        }
        // Not decimals: four digits, twenty (an even run of 16 or more is hex), glued to a word.
        #expect(encoded("1234").count == 1 + 4)
        #expect(encoded("18446744073709551615").count == 2 + 10)
        #expect(encoded("a12345").count == 1 + 6)
    }

    @Test func roundTripsOnStressStrings() async {
        await propertyCheck(count: 2_000, input: Gen.uint64()) { seed in
            var g = SplitMix64(seed: seed)
            let s = stressString(&g)
            #expect((try? decoded(encoded(s))) == s, "seed \(seed): \(s.debugDescription)")
        }
    }

    /// Damaged bytes give an error or some string, never a trap or a read past the end.
    @Test func hostileBytesNeverTrap() async {
        await propertyCheck(count: 2_000, input: Gen.uint64(), Gen.int(in: 0...40)) { seed, count in
            var g = SplitMix64(seed: seed)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            _ = try? decoded(bytes)
        }
    }

    @Test(arguments: [
        ([UInt8](), LogFormatError.Code.truncated),  // no header
        ([0x0E], .malformed),  // kind 7 is reserved
        ([0x50], .truncated),  // text of 5 bytes, none there
        ([0x06, 1, 2, 3], .truncated),  // a UUID of 3 bytes
        ([0x16, 0], .malformed),  // a UUID with a length
        ([0x01], .truncated),  // "another piece follows", and none does
        ([0x20, 0xff, 0xfe], .malformed),  // text that is not UTF-8
        ([0x5C], .truncated),  // a decimal of 5 digits without its value
        ([0x5C, 0xA0, 0x8D, 0x06], .malformed),  // 100000 does not fit in 5 digits
        ([0x3C, 1], .malformed),  // a decimal of 3 digits is never written
        ([0xCC, 0x02, 1], .malformed),  // nor one of 20
    ])
    func damageIsNamed(_ bytes: [UInt8], _ code: LogFormatError.Code) {
        #expect(throws: LogFormatError.self) { try decoded(bytes) }
        do {
            _ = try decoded(bytes)
        } catch {
            #expect(error.code == code, "\(bytes): \(error)")
        }
    }

    /// `check` (which string tables use so that strings are built only when named) says exactly what `decode`
    /// says of any bytes: the same verdict, the same error, the same bytes consumed. Inputs are valid encodings of
    /// stress strings, with bytes flipped, cut or spliced together (text pieces that split a character among them).
    @Test func checkingAgreesWithDecoding() async {
        await propertyCheck(count: 4_000, input: Gen.uint64(), Gen.int(in: 0...6)) { seed, damage in
            var g = SplitMix64(seed: seed)
            var bytes = encoded(stressString(&g)) + encoded(stressString(&g))
            for _ in 0..<damage where !bytes.isEmpty {
                switch g.next() % 4 {
                case 0: bytes[Int(g.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: g.next() | 1)
                case 1: bytes.removeLast(Int(g.next() % UInt64(bytes.count)))
                case 2: bytes.insert(UInt8(truncatingIfNeeded: g.next()), at: Int(g.next() % UInt64(bytes.count)))
                default: bytes = [0x11, 0xC3, 0x10 | UInt8(g.next() % 2), 0xA9] + bytes  // "é" cut in two pieces
                }
            }
            func outcome(_ body: (inout BinaryReader) throws(LogFormatError) -> Void) -> String {
                bytes.withUnsafeBytes { b in
                    var r = BinaryReader(b)
                    do throws(LogFormatError) {
                        try body(&r)
                        return "ok \(r.offset)"
                    } catch {
                        return "\(error.code) \(error.message)"
                    }
                }
            }
            var scratch: [UInt8] = []
            let decodedOutcome = outcome { (r) throws(LogFormatError) in _ = try TokenizedString.decode(&r) }
            let checkedOutcome = outcome { (r) throws(LogFormatError) in
                try TokenizedString.check(&r, scratch: &scratch)
            }
            #expect(decodedOutcome == checkedOutcome, "\(bytes)")
        }
    }

    /// The UTF-8 check the string tables use agrees with the standard library's on random and near-valid bytes.
    @Test func utf8CheckAgreesWithTheStandardLibrary() async {
        let seeds: [[UInt8]] = [
            Array("plain ascii".utf8), Array("ümlaut 日本 🔐".utf8), [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80],
            [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF], [0xEF, 0xBF, 0xBF], [0xF4, 0x8F, 0xBF, 0xBF], [0xC3],
        ]
        await propertyCheck(count: 4_000, input: Gen.uint64(), Gen.int(in: 0...24)) { seed, count in
            var g = SplitMix64(seed: seed)
            var bytes = seeds[Int(g.next() % UInt64(seeds.count))]
            for _ in 0..<count {
                switch g.next() % 3 {
                case 0: bytes.append(UInt8(truncatingIfNeeded: g.next()))
                case 1: bytes.append(0x80 | UInt8(g.next() % 64))
                default: bytes += seeds[Int(g.next() % UInt64(seeds.count))]
                }
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            #expect(bytes.withUnsafeBufferPointer(UTF8Check.isValid) == expected, "\(bytes)")
        }
    }
}
