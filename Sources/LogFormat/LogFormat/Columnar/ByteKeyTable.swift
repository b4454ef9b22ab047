// A map from byte strings to ids for the column encoder's tables (strings, shapes, resources), which look up
// every string, shape and resource of every row a seal lays out, for the resources a seal's record decoding
// shares (`SharedResources`), and for the collector's look-up of access-line keys (`AccessEventMapping.FieldKeys`). Swift's `Dictionary` hashes each key with SipHash
// through `Hasher` (a `[UInt8]` key byte by byte) and compares `String`s by canonical equivalence; here a key is
// its bytes, hashed a word at a time, and compared with `memcmp` (in a seal's profile, `StringTable.id` alone
// was 14 % and `Hasher`'s functions 12 % of the samples). Keys are compared as bytes, so two strings that are canonically equivalent but spelled differently
// get ids of their own (the blocks store bytes, so each comes back as it was).
#if canImport(Glibc)
    import Glibc
#endif

/// Byte strings → `UInt64`, open addressing with linear probing; keys are copied into one buffer.
package struct ByteKeyTable: Sendable {
    /// Per slot: 0 empty, else 1 + the entry's index. The slot count is a power of two.
    private var slots: [Int32]
    private var hashes: [UInt64] = []
    private var values: [UInt64] = []
    /// Entry `i`'s key is `keys[keyStarts[i]..<keyStarts[i + 1]]`.
    private var keys: [UInt8] = []
    private var keyStarts: [Int] = [0]
    private let seed = ByteKeyTable.processSeed

    /// Drawn once per process, as `Hasher`'s seed is, so that no input can be made to collide in every collector.
    private static let processSeed = UInt64.random(in: .min ... .max)

    package var count: Int { values.count }

    package init(capacity: Int = 64) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        slots = Array(repeating: 0, count: n)
    }

    package init(_ dictionary: [String: UInt64]) {
        self.init(capacity: dictionary.count)
        for (key, value) in dictionary { insert(key, value) }
    }

    // Look-ups are `mutating` though they change nothing: called in place, they use the table where it lies. As
    // non-mutating calls from the encoder's mutating methods, the optimizer copied the table for each look-up (a
    // retain and release of each of its arrays), which took longer than the look-up.

    package mutating func value(_ key: String) -> UInt64? {
        if let found = key.utf8.withContiguousStorageIfAvailable({ find(UnsafeRawBufferPointer($0)) }) { return found }
        var native = key
        return native.withUTF8 { find(UnsafeRawBufferPointer($0)) }
    }

    package mutating func value(_ key: [UInt8]) -> UInt64? { key.withUnsafeBytes { find($0) } }

    package mutating func value(_ key: UnsafeRawBufferPointer) -> UInt64? { find(key) }

    /// Adds `key`, which the table does not hold yet.
    package mutating func insert(_ key: String, _ value: UInt64) {
        if key.utf8.withContiguousStorageIfAvailable({ add(UnsafeRawBufferPointer($0), value) }) != nil { return }
        var native = key
        native.withUTF8 { add(UnsafeRawBufferPointer($0), value) }
    }

    package mutating func insert(_ key: [UInt8], _ value: UInt64) { key.withUnsafeBytes { add($0, value) } }

    package mutating func insert(_ key: UnsafeRawBufferPointer, _ value: UInt64) { add(key, value) }

    /// Adds one to the value of `key` (a key not held yet is added with 0 first) and returns the sum: a count of
    /// occurrences in one look-up.
    package mutating func addOne(to key: String) -> UInt64 {
        if let n = key.utf8.withContiguousStorageIfAvailable({ addOne(UnsafeRawBufferPointer($0)) }) { return n }
        var native = key
        return native.withUTF8 { addOne(UnsafeRawBufferPointer($0)) }
    }

    private mutating func addOne(_ key: UnsafeRawBufferPointer) -> UInt64 {
        let h = Self.hash(key, seed: seed)
        if let e = entry(key, hash: h) {
            values[e] += 1
            return values[e]
        }
        add(key, 1, hash: h)
        return 1
    }

    private mutating func find(_ key: UnsafeRawBufferPointer) -> UInt64? {
        entry(key, hash: Self.hash(key, seed: seed)).map { values[$0] }
    }

    /// The index of `key`'s entry, or nil.
    private mutating func entry(_ key: UnsafeRawBufferPointer, hash h: UInt64) -> Int? {
        let mask = slots.count - 1
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let e = Int(slots[s]) - 1
            if e < 0 { return nil }
            if hashes[e] == h {
                let start = keyStarts[e]
                let n = keyStarts[e + 1] - start
                if n == key.count
                    && (n == 0 || keys.withUnsafeBytes { memcmp($0.baseAddress! + start, key.baseAddress!, n) == 0 })
                {
                    return e
                }
            }
            s = (s + 1) & mask
        }
    }

    private mutating func add(_ key: UnsafeRawBufferPointer, _ value: UInt64) {
        add(key, value, hash: Self.hash(key, seed: seed))
    }

    private mutating func add(_ key: UnsafeRawBufferPointer, _ value: UInt64, hash h: UInt64) {
        if (values.count + 1) * 2 > slots.count { grow() }
        hashes.append(h)
        values.append(value)
        keys.append(contentsOf: key)
        keyStarts.append(keys.count)
        place(values.count - 1, hash: h)
    }

    private mutating func place(_ e: Int, hash h: UInt64) {
        let mask = slots.count - 1
        var s = Int(truncatingIfNeeded: h) & mask
        while slots[s] != 0 { s = (s + 1) & mask }
        slots[s] = Int32(e + 1)
    }

    private mutating func grow() {
        slots = Array(repeating: 0, count: slots.count * 2)
        for e in 0..<values.count { place(e, hash: hashes[e]) }
    }

    /// A word-at-a-time multiply–xor hash (wyhash's mixing step). Ids come from the order of insertion, never
    /// from the hash, so the seed does not change what the encoder writes.
    static func hash(_ b: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let k0: UInt64 = 0xa076_1d64_78bd_642f
        let k1: UInt64 = 0xe703_7ed1_a0b4_28db
        func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
            let p = a.multipliedFullWidth(by: b)
            return p.high ^ p.low
        }
        var h = mix(seed ^ k0, UInt64(b.count) ^ k1)
        var i = 0
        while i + 8 <= b.count {
            h = mix(h ^ b.loadUnaligned(fromByteOffset: i, as: UInt64.self), k1)
            i += 8
        }
        if i < b.count {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < b.count {
                tail |= UInt64(b[i]) << shift
                shift += 8
                i += 1
            }
            h = mix(h ^ tail, k1)
        }
        return mix(h, k0)
    }
}
