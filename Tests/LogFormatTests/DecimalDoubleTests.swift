import PropertyBased
import Testing

@testable import LogFormat

/// Doubles stored as decimals (docs/format/columns.md, "Revisions", tag 0x81) come back bit for bit, and only
/// those that do are stored so.
@Suite struct DecimalDoubleTests {
    @Test(
        arguments: [
            (0.021, 21, -3), (12920, 1292, 1), (1e-5, 1, -5), (5e20, 5, 20), (-1.5, -15, -1), (0, 0, 0), (1, 1, 0),
            (0.1 + 0.2, 30_000_000_000_000_004, -17), (.leastNonzeroMagnitude, 5, -324),
            (1.7976931348623157e308, 17_976_931_348_623_157, 292),
        ] as [(Double, Int64, Int64)])
    func decimalsSplitAndComeBack(d: Double, m: Int64, e: Int64) throws {
        let split = try #require(DecimalDouble.split(d))
        #expect(split.m == m && split.e == e)
        #expect(DecimalDouble.value(m: m, e: e)?.bitPattern == d.bitPattern)
    }

    @Test(arguments: [-0.0, .nan, -.nan, .infinity, -.infinity, .signalingNaN])
    func whatIsNotADecimalIsNotSplit(d: Double) {
        #expect(DecimalDouble.split(d) == nil)
    }

    /// Any bit pattern: split or not, what is split comes back exactly.
    @Test func anyDoubleThatSplitsComesBack() async {
        await propertyCheck(count: 2_000, input: Gen.uint64()) { bits in
            let d = Double(bitPattern: bits)
            if let (m, e) = DecimalDouble.split(d) {
                #expect(DecimalDouble.value(m: m, e: e)?.bitPattern == bits, "\(d)")
            } else {
                #expect(!d.isFinite || d == 0, "\(d) has a decimal form")
            }
        }
    }

    /// The fast path (m and 10^|e| exact) gives what parsing the decimal's text gives.
    @Test func theFastPathIsTheParse() async {
        await propertyCheck(count: 3_000, input: Gen.uint64()) { x in
            let m = Int64(bitPattern: x) >> 11
            let e = Int64(x % 45) - 22
            #expect(DecimalDouble.value(m: m, e: e)?.bitPattern == Double("\(m)e\(e)")?.bitPattern, "\(m)e\(e)")
        }
    }

    /// Hostile decimals read back as some double or as nothing, never a trap.
    @Test func hostileDecimalsAreDoublesOrNothing() {
        for (m, e) in [(Int64.min, 0), (.max, 400), (1, 401), (1, -401), (-1, .min), (0, .max)] as [(Int64, Int64)] {
            let d = DecimalDouble.value(m: m, e: e)
            #expect(DecimalDouble.exponents.contains(e) == (d != nil))
        }
    }
}
