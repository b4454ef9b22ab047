// `KeyFacts` answers for a key only when it has the bytes of the key noted at its position: the same `String`,
// another `String` with the same bytes (small, or large in other storage), never a key a byte off, a prefix, or a
// canonically equivalent key with other bytes, and never for a position nothing was noted at.
import Testing

@testable import CollectorParsers

@Suite struct KeyFactsTests {
    @Test func aFactIsForTheSameBytesAtTheSamePosition() {
        let long = "upstream_http_x_user_email"
        var facts = KeyFacts<Int>()
        facts.note(7, for: "status", at: 0)
        facts.note(9, for: long, at: 2)
        // The same String, and the same bytes made anew (a small string, and a large one in storage of its own).
        #expect(facts.fact(for: "status", at: 0) == 7)
        #expect(facts.fact(for: String(decoding: Array("status".utf8), as: UTF8.self), at: 0) == 7)
        #expect(facts.fact(for: long, at: 2) == 9)
        let copy = String(decoding: Array(long.utf8), as: UTF8.self)
        #expect(StringBits(copy) != StringBits(long) || copy.utf8.count <= 15)
        #expect(facts.fact(for: copy, at: 2) == 9)
        // Other bytes, other positions, positions never noted.
        #expect(facts.fact(for: "statuS", at: 0) == nil)
        #expect(facts.fact(for: "statu", at: 0) == nil)
        #expect(facts.fact(for: "status ", at: 0) == nil)
        #expect(facts.fact(for: "upstream_http_x_user_emaiL", at: 2) == nil)
        #expect(facts.fact(for: "status", at: 2) == nil)
        #expect(facts.fact(for: "status", at: 1) == nil)
        #expect(facts.fact(for: "", at: 1) == nil)
        #expect(facts.fact(for: "status", at: 3) == nil)
        // Canonically equivalent, other bytes: another key.
        facts.note(1, for: "caf\u{E9}", at: 1)
        #expect(facts.fact(for: "cafe\u{301}", at: 1) == nil)
        #expect(facts.fact(for: "caf\u{E9}", at: 1) == 1)
        // A later note replaces the earlier one.
        facts.note(8, for: "msec", at: 0)
        #expect(facts.fact(for: "status", at: 0) == nil)
        #expect(facts.fact(for: "msec", at: 0) == 8)
    }

    @Test func aDisabledMemoNotesNothing() {
        var facts = KeyFacts<Bool>(enabled: false)
        facts.note(true, for: "status", at: 0)
        #expect(facts.fact(for: "status", at: 0) == nil)
    }
}
