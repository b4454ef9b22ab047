// What the normalising stage worked out about each attribute key of the event before, by position: the events of
// one batch (every line of an NDJSON post, every span of a service) repeat the same keys in the same order, most
// of them the same `String`s (the decoders share them), so a key with the bytes of the one at its position before
// has that key's answers: whether redaction found it clean, its slot in the access field map, whether it may name
// a workload. One array for all three, so a batch allocates once for them (the clean path's allocation count is a
// committed threshold).
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

package struct KeyNotes {
    struct Entry {
        /// Held so that its bytes can be compared and its storage outlives `bits`.
        var key: String
        /// The key's representation: equal bits are the same bytes (a small string's bytes are its bits; a large
        /// string's bits name its storage, which is not written once shared), compared without a reference count.
        var bits: StringBits
        /// Neither a secret's name nor holding one: redaction neither classifies nor scans it again.
        var clean = false
        /// Its slot in the access field map: -2 not worked out yet, -1 none.
        var slot = -2
        /// Whether it may name a workload: 0 not worked out yet, 1 may, 2 may not.
        var identity: UInt8 = 0

        init(_ key: String) {
            self.key = key
            bits = StringBits(key)
        }
    }

    private var entries: [Entry] = []
    /// False: nothing is noted (an event alone has no event before it, and noting would allocate).
    let enabled: Bool

    package init(enabled: Bool = true) {
        self.enabled = enabled
    }

    /// Whether the entry at `position` is for a key with the bytes of `key`.
    @inline(__always) private func matches(_ key: String, at position: Int) -> Bool {
        guard position < entries.count else { return false }
        if entries[position].bits == StringBits(key) { return true }
        return Self.sameBytes(entries[position].key, key)
    }

    /// The entry at `position`, made for `key` (its answers forgotten) unless it is for `key` already; nil when
    /// nothing is noted.
    private mutating func entry(for key: String, at position: Int) -> Int? {
        // Lists longer than this are rare and gain little.
        guard enabled, position < 256 else { return nil }
        // Room for a usual list at once, rather than growing 1, 2, 4, … for the first event.
        if entries.capacity == 0 { entries.reserveCapacity(32) }
        while entries.count <= position { entries.append(Entry("")) }
        if !matches(key, at: position) { entries[position] = Entry(key) }
        return position
    }

    @inline(__always) func isClean(_ key: String, at position: Int) -> Bool {
        matches(key, at: position) && entries[position].clean
    }

    mutating func noteClean(_ key: String, at position: Int) {
        if let i = entry(for: key, at: position) { entries[i].clean = true }
    }

    /// The field map's slot noted for `key` at `position` (nil inside: none), or nil when not worked out.
    @inline(__always) func slot(of key: String, at position: Int) -> Int?? {
        guard matches(key, at: position), entries[position].slot != -2 else { return nil }
        let s = entries[position].slot
        return .some(s < 0 ? nil : s)
    }

    mutating func noteSlot(_ slot: Int?, of key: String, at position: Int) {
        if let i = entry(for: key, at: position) { entries[i].slot = slot ?? -1 }
    }

    /// Whether `key` at `position` may name a workload, or nil when not worked out.
    @inline(__always) func mayHoldIdentity(_ key: String, at position: Int) -> Bool? {
        guard matches(key, at: position), entries[position].identity != 0 else { return nil }
        return entries[position].identity == 1
    }

    mutating func noteIdentity(_ may: Bool, of key: String, at position: Int) {
        if let i = entry(for: key, at: position) { entries[i].identity = may ? 1 : 2 }
    }

    /// Byte equality, not `==`: canonically equivalent keys with other bytes are other keys.
    static func sameBytes(_ a: String, _ b: String) -> Bool {
        var a = a
        var b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                guard x.count == y.count else { return false }
                guard x.count > 0, let p = x.baseAddress, let q = y.baseAddress else { return true }
                return p == q || memcmp(p, q, x.count) == 0
            }
        }
    }
}

/// The two words of a `String` value.
struct StringBits: Equatable {
    let low: UInt64
    let high: UInt64

    @inline(__always) init(_ s: String) {
        (low, high) = unsafeBitCast(s, to: (UInt64, UInt64).self)
    }
}
