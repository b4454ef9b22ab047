// `KeyNotes` answers for a key only when it has the bytes of the key noted at its position: the same `String`,
// another `String` with the same bytes (small, or large in other storage), never a key a byte off, a prefix, or a
// canonically equivalent key with other bytes, and never for a position nothing was noted at. A note for another
// key at a position forgets what was noted there before.
import Testing

@testable import CollectorParsers

@Suite struct KeyNotesTests {
    @Test func answersAreForTheSameBytesAtTheSamePosition() {
        let long = "upstream_http_x_user_email"
        var notes = KeyNotes()
        notes.noteSlot(7, of: "status", at: 0)
        notes.noteClean("status", at: 0)
        notes.noteIdentity(false, of: long, at: 2)
        // The same String, and the same bytes made anew (a small string, and a large one in storage of its own).
        #expect(notes.slot(of: "status", at: 0) == .some(7))
        #expect(notes.isClean(String(decoding: Array("status".utf8), as: UTF8.self), at: 0))
        #expect(notes.mayHoldIdentity(long, at: 2) == false)
        let copy = String(decoding: Array(long.utf8), as: UTF8.self)
        #expect(StringBits(copy) != StringBits(long))
        #expect(notes.mayHoldIdentity(copy, at: 2) == false)
        // Not worked out yet for this key: no answer, not a guess.
        #expect(notes.mayHoldIdentity("status", at: 0) == nil)
        #expect(notes.slot(of: long, at: 2) == nil)
        #expect(!notes.isClean(long, at: 2))
        // A slot of none is an answer too.
        notes.noteSlot(nil, of: long, at: 2)
        #expect(notes.slot(of: long, at: 2) == .some(nil))
        // Other bytes, other positions, positions never noted.
        for (key, position) in [
            ("statuS", 0), ("statu", 0), ("status ", 0), ("status", 1), ("", 1), ("status", 2), ("status", 3),
        ] {
            #expect(notes.slot(of: key, at: position) == nil, "\(key) at \(position)")
            #expect(!notes.isClean(key, at: position), "\(key) at \(position)")
        }
        #expect(notes.mayHoldIdentity("upstream_http_x_user_emaiL", at: 2) == nil)
        // Canonically equivalent, other bytes: another key.
        notes.noteClean("caf\u{E9}", at: 1)
        #expect(!notes.isClean("cafe\u{301}", at: 1))
        #expect(notes.isClean("caf\u{E9}", at: 1))
        // Another key at a position: what was noted for the one before is gone.
        notes.noteIdentity(true, of: "msec", at: 0)
        #expect(notes.slot(of: "status", at: 0) == nil)
        #expect(!notes.isClean("status", at: 0))
        #expect(notes.slot(of: "msec", at: 0) == nil)
        #expect(notes.mayHoldIdentity("msec", at: 0) == true)
    }

    @Test func disabledNotesNoteNothing() {
        var notes = KeyNotes(enabled: false)
        notes.noteClean("status", at: 0)
        notes.noteSlot(3, of: "status", at: 0)
        #expect(!notes.isClean("status", at: 0))
        #expect(notes.slot(of: "status", at: 0) == nil)
    }
}
