// What the normalising stage worked out about each attribute key of the event before, by position: the events of
// one batch (every line of an NDJSON post, every span of a service) repeat the same keys in the same order, most
// of them the same `String`s (the decoders share them), so a key with the bytes of the one at its position before
// has that key's answer. Redaction's clean keys, the access field map's slots and the workload step's identity
// keys each keep one.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fact per attribute position, about the key last seen there.
struct KeyFacts<Fact> {
    /// The keys, held so that their bytes can be compared and their storage outlives `bits`.
    private var keys: [String] = []
    /// Each key's representation: equal bits are the same bytes (a small string's bytes are its bits; a large
    /// string's bits name its storage, which is not written once shared), read without a reference count.
    private var bits: [StringBits] = []
    /// nil where no key was noted.
    private var facts: [Fact?] = []
    /// False: nothing is noted (an event alone has no event before it, and noting would allocate).
    let enabled: Bool

    init(enabled: Bool = true) {
        self.enabled = enabled
    }

    /// The fact noted for the key at `position` when `key` has its bytes.
    @inline(__always) func fact(for key: String, at position: Int) -> Fact? {
        guard position < facts.count, let fact = facts[position] else { return nil }
        if bits[position] == StringBits(key) { return fact }
        return Self.sameBytes(keys[position], key) ? fact : nil
    }

    mutating func note(_ fact: Fact, for key: String, at position: Int) {
        // Lists longer than this are rare and gain little.
        guard enabled, position < 256 else { return }
        // Room for a usual list at once, rather than growing 1, 2, 4, … for the first event.
        if keys.capacity == 0 {
            keys.reserveCapacity(32)
            bits.reserveCapacity(32)
            facts.reserveCapacity(32)
        }
        while keys.count <= position {
            keys.append("")
            bits.append(StringBits(""))
            facts.append(nil)
        }
        keys[position] = key
        bits[position] = StringBits(key)
        facts[position] = fact
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
