// The pieces of JSON text (`JSONSink`) written into an arena of raw memory (`ByteArena`, the rows of `RowJSON`)
// against the same pieces appended to an array (`JSONWriter`, every other writer) and against the standard library's
// decimal and hex text: numbers at every digit count, ids, base64, doubles, and an arena that starts too small and
// grows between and inside pieces; strings copied whole when `JSONString.isPlain` says nothing in them needs an
// escape, against the escaper.
import Foundation
import JSONText
import PropertyBased
import SyntheticTraffic
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat

/// One piece of JSON text, drawn from a seed.
private enum Piece {
    case raw
    case byte(UInt8)
    case decimal(UInt64)
    case quoted(UInt64)
    case integer(Int64)
    case double(Double)
    case trace(TraceID)
    case span(SpanID)
    case hex(UInt64)
    case base64([UInt8])
    case text(String)
    case dropped(UInt32)

    static func draw(_ g: inout SplitMix64) -> Piece {
        let r = g.next()
        // Mostly numbers near a power of ten (each digit count, and the pairs' edges), else anything.
        let power = UInt64(1) &* [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000][Int(r % 9)]
        let number = (r >> 8) % 2 == 0 ? g.next() >> (g.next() % 64) : power &+ (g.next() % 3) &- 1
        switch (r >> 16) % 12 {
        case 0: return .raw
        case 1: return .byte(UInt8(truncatingIfNeeded: g.next()))
        case 2: return .decimal(number)
        case 3: return .quoted(number)
        case 4: return .integer(g.next() % 2 == 0 ? Int64(bitPattern: g.next()) : -Int64(number % (1 << 60)))
        case 5:
            let doubles: [Double] = [
                0.1, 1, -0.0, 1e-5, 5e20, .nan, .infinity, -.infinity, Double(bitPattern: g.next()),
            ]
            return .double(doubles[Int(g.next() % 9)])
        case 6: return .trace(TraceID(high: g.next(), low: g.next()))
        case 7: return .span(SpanID(value: g.next()))
        case 8: return .hex(g.next())
        case 9: return .base64((0..<Int(g.next() % 7)).map { _ in UInt8(truncatingIfNeeded: g.next()) })
        case 10:
            let texts = ["", "é", "a\"b", String(repeating: "x", count: Int(g.next() % 300))]
            return .text(texts[Int(g.next() % 4)])
        default: return .dropped(UInt32(truncatingIfNeeded: number))
        }
    }

    func write<S: JSONSink>(_ w: inout S) {
        switch self {
        case .raw: w.raw(#","dropped_attributes_count":"#)
        case .byte(let b): w.byte(b)
        case .decimal(let v): w.decimal(v)
        case .quoted(let v): w.quotedDecimal(v)
        case .integer(let v): w.integer(v)
        case .double(let d): w.double(d)
        case .trace(let id): w.traceID(id)
        case .span(let id): w.spanID(id)
        case .hex(let v): w.hex64(v)
        case .base64(let bytes): w.base64(bytes)
        case .text(let s): w.text(s)
        case .dropped(let n): w.droppedCount(n, key: #","dropped_events_count":"#)
        }
    }

    /// The text the standard library gives for the numbers and ids (nil for the other pieces).
    var expected: String? {
        func hex(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        switch self {
        case .decimal(let v): return String(v)
        case .quoted(let v): return "\"\(v)\""
        case .integer(let v): return v.magnitude <= 1 << 53 ? String(v) : "\"\(v)\""
        case .trace(let id): return "\"" + hex(id.high) + hex(id.low) + "\""
        case .span(let id): return "\"" + hex(id.value) + "\""
        case .hex(let v): return hex(v)
        case .dropped(let n): return n == 0 ? "" : #","dropped_events_count":"# + String(n)
        default: return nil
        }
    }
}

@Suite("JSONSink")
struct JSONSinkTests {
    @Test func anArenaWritesWhatAnArrayDoes() async {
        await propertyCheck(count: 500, input: Gen.uint64(), Gen.int(in: 1...64)) { seed, capacity in
            var g = SplitMix64(seed: seed)
            let pieces = (0..<Int(g.next() % 200)).map { _ in Piece.draw(&g) }
            var arena = ByteArena(capacity: capacity)
            defer { arena.deallocate() }
            var writer = JSONWriter(buffer: [])
            for p in pieces {
                let before = arena.count
                p.write(&arena)
                p.write(&writer)
                if let expected = p.expected {
                    #expect(Array(arena.bytes[before...]) == Array(expected.utf8), "\(p)")
                }
            }
            #expect(Array(arena.bytes) == writer.buffer, "\(pieces)")
        }
    }

    @Test func decimalsAtEveryDigitCount() {
        var power: UInt64 = 1
        for _ in 0..<20 {
            for v in [power &- 1, power, power &+ 1, power &* 5, power &* 9 &+ (power &- 1)] {
                var arena = ByteArena(capacity: 1)
                defer { arena.deallocate() }
                arena.decimal(v)
                arena.quotedDecimal(v)
                #expect(String(decoding: arena.bytes, as: UTF8.self) == "\(v)\"\(v)\"")
            }
            power = power &* 10
        }
        var arena = ByteArena(capacity: 1)
        defer { arena.deallocate() }
        arena.quotedDecimal(.max)
        arena.integer(.min)
        arena.integer(-(1 << 53))
        #expect(String(decoding: arena.bytes, as: UTF8.self) == "\"\(UInt64.max)\"\"\(Int64.min)\"-\(1 << 53)")
    }

    /// A string is plain exactly when none of its bytes is one the escaper looks at, and escaping a plain string
    /// changes nothing; quoted into an arena, any string is the escaper's text in quotes. Random bytes drawn mostly from those the escaper looks at (and their neighbours), invalid
    /// UTF-8 included, at every length up to 40 and so at every offset of the eight-byte words.
    @Test func plainStringsAreThoseTheEscaperLeavesAlone() async {
        let alphabet: [UInt8] = [
            0x22, 0x5C, 0x00, 0x08, 0x0A, 0x1F, 0x20, 0x21, 0x41, 0x7F, 0x80, 0xA8, 0xA9, 0xE1, 0xE2, 0xE3, 0xFF,
        ]
        await propertyCheck(count: 3_000, input: Gen.uint64(), Gen.int(in: 0...40)) { seed, length in
            var g = SplitMix64(seed: seed)
            let plainOnly = g.next() % 2 == 0
            let bytes = (0..<length).map { _ -> UInt8 in
                let r = g.next()
                let b =
                    r % 3 == 0
                    ? alphabet[Int((r >> 8) % UInt64(alphabet.count))] : UInt8(truncatingIfNeeded: r >> 16)
                // Half the strings have none of the escaper's bytes, so both answers are common.
                return plainOnly && (b < 0x20 || b == 0x22 || b == 0x5C || b == 0xE2) ? 0x41 : b
            }
            var escaped: [UInt8] = []
            var arena = ByteArena(capacity: 1)
            defer { arena.deallocate() }
            bytes.withUnsafeBufferPointer { p in
                JSONString.appendEscaped(p, to: &escaped)
                let looked = bytes.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0xE2 }
                #expect(JSONString.isPlain(p) == !looked, "\(bytes)")
                if JSONString.isPlain(p) { #expect(escaped == bytes, "\(bytes)") }
                arena.quoted(p)
            }
            #expect(Array(arena.bytes) == [0x22] + escaped + [0x22], "\(bytes)")
            let s = String(decoding: bytes, as: UTF8.self)
            var writer = JSONWriter(buffer: [])
            var fromString = ByteArena(capacity: 1)
            defer { fromString.deallocate() }
            writer.string(s)
            fromString.string(s)
            #expect(Array(fromString.bytes) == writer.buffer, "\(bytes)")
        }
    }

    /// Decimals written from their digits are the description of their double: every digit count up to 16 at every
    /// exponent from 10^-25 to 10^20 (so on both sides of each edge of the short form), non-canonical mantissas
    /// (trailing zeros), negatives, and the decimal forms of random doubles of every magnitude.
    @Test func shortDecimalsAreTheDescriptionOfTheirDouble() async {
        var written = 0
        let mantissas: [Int64] = [
            1, 5, 9, 10, 12, 21, 99, 100, 101, 125, 1292, 12_345_678, 100_000_000_000_000, 123_456_789_012_345,
            999_999_999_999_999, 1_000_000_000_000_000, 1_234_567_890_123_456, .max, .min,
        ]
        for m in mantissas {
            for e in Int64(-25)...20 {
                for (m, e) in [(m, e), (0 &- m, e), (m &* 10, e - 1)] where shortDecimalMatches(m, e) { written += 1 }
            }
        }
        #expect(written > 500)
        await propertyCheck(count: 3_000, input: Gen.uint64(), Gen.int(in: -30...30)) { seed, shift in
            let d = Double(bitPattern: seed >> 12 | 0x3FF0_0000_0000_0000) * pow(10, Double(shift))
            if let (m, e) = DecimalDouble.split(d) { _ = shortDecimalMatches(m, e) }
            _ = shortDecimalMatches(Int64(bitPattern: seed) >> (seed % 64), Int64(shift))
        }
    }
}

/// Whether the arena wrote m × 10^e from its digits, expecting then the description of its double and otherwise
/// nothing written.
private func shortDecimalMatches(_ m: Int64, _ e: Int64) -> Bool {
    guard let d = DecimalDouble.value(m: m, e: e) else { return false }
    var arena = ByteArena(capacity: 1)
    defer { arena.deallocate() }
    guard arena.shortDecimal(m, e) else {
        #expect(arena.count == 0)
        return false
    }
    #expect(String(decoding: arena.bytes, as: UTF8.self) == d.description, "\(m) \(e)")
    return true
}
