// Small, fast, seedable random number generators for synthetic data. Not for cryptography.
import LogFormat

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014).
///
/// Used to expand a 64-bit seed into the state of `Xoshiro256StarStar`, and (through `mix`) as a cheap,
/// stateless hash for deriving stable per-user and per-pod details from an index.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { self.state = seed }

    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.finalize(state)
    }

    /// The SplitMix64 output function applied to `x + golden gamma`: a stateless 64-bit mixer.
    @inlinable
    public static func mix(_ x: UInt64) -> UInt64 {
        finalize(x &+ 0x9E37_79B9_7F4A_7C15)
    }

    @inlinable
    static func finalize(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** 1.0 (Blackman and Vigna, 2018): 256 bits of state, period 2^256 − 1, a few ns per draw.
///
/// Deterministic for a seed on every platform, unlike `SystemRandomNumberGenerator`; the helpers below
/// (`below`, `unit`, `chance`) are defined here too so their results do not depend on the standard
/// library's sampling algorithms.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    @usableFromInline var s0: UInt64
    @usableFromInline var s1: UInt64
    @usableFromInline var s2: UInt64
    @usableFromInline var s3: UInt64

    /// Seeds the 256-bit state with four SplitMix64 outputs, as the authors recommend.
    public init(seed: UInt64) {
        var seeder = SplitMix64(seed: seed)
        (s0, s1, s2, s3) = (seeder.next(), seeder.next(), seeder.next(), seeder.next())
    }

    /// Uses the given state words as they are. An all-zero state would only ever produce zeros, so it is
    /// replaced by the state `init(seed: 0)` gives.
    public init(state: (UInt64, UInt64, UInt64, UInt64)) {
        if state == (0, 0, 0, 0) {
            var seeder = SplitMix64(seed: 0)
            (s0, s1, s2, s3) = (seeder.next(), seeder.next(), seeder.next(), seeder.next())
        } else {
            (s0, s1, s2, s3) = state
        }
    }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = Self.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = Self.rotl(s3, 45)
        return result
    }

    @inlinable
    static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

    /// A uniform integer in `0..<bound` (Lemire's multiply-and-reject method, unbiased). `bound` must be > 0.
    @inlinable
    public mutating func below(_ bound: UInt64) -> UInt64 {
        precondition(bound > 0, "bound must be positive")
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold {
                product = next().multipliedFullWidth(by: bound)
            }
        }
        return product.high
    }

    /// A uniform integer in `0..<bound`. `bound` must be > 0.
    @inlinable
    public mutating func below(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: below(UInt64(bound)))
    }

    /// A uniform double in [0, 1) with 53 random bits.
    @inlinable
    public mutating func unit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// True with probability `p`.
    @inlinable
    public mutating func chance(_ p: Double) -> Bool { unit() < p }

    /// A value in `low...high` skewed toward `low`: `low + (high − low)·u^power`, a cheap long-tailed shape
    /// for latencies and sizes (power 1 is uniform).
    @inlinable
    public mutating func skewed(_ low: UInt64, _ high: UInt64, power: Int = 2) -> UInt64 {
        var u = unit()
        let base = u
        var p = power
        while p > 1 {
            u *= base
            p -= 1
        }
        return low &+ UInt64(Double(high &- low) * u)
    }
}
