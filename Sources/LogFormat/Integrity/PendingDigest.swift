// TEMPORARY stand-in until the integrity branch merges; replaced by Merkle.swift.
import Crypto

public struct Digest32: Sendable, Hashable {
    public var a: UInt64, b: UInt64, c: UInt64, d: UInt64
    public static let zero = Digest32(a: 0, b: 0, c: 0, d: 0)
    public init(a: UInt64, b: UInt64, c: UInt64, d: UInt64) { self.a = a; self.b = b; self.c = c; self.d = d }
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        let arr = Array(bytes)
        func word(_ i: Int) -> UInt64 { arr[i..<i + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        self.init(a: word(0), b: word(8), c: word(16), d: word(24))
    }
    public var bytes: [UInt8] {
        [a, b, c, d].flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> UInt64(56 - 8 * $0)) } }
    }
    public var hex: String { HexCoding.encode(bytes) }
    public func write(into w: inout BinaryWriter) { for x in [a, b, c, d] { w.u64BigEndian(x) } }
    public init(from r: inout BinaryReader) throws(LogFormatError) {
        self.init(a: try r.u64BigEndian(), b: try r.u64BigEndian(), c: try r.u64BigEndian(), d: try r.u64BigEndian())
    }
}

public enum MerkleTree {
    public static func leafHash(_ data: UnsafeRawBufferPointer) -> Digest32 {
        var h = SHA256()
        h.update(data: [0])
        h.update(bufferPointer: data)
        return Digest32(bytes: Array(h.finalize()))!
    }
    public static func nodeHash(_ l: Digest32, _ r: Digest32) -> Digest32 {
        var h = SHA256()
        h.update(data: [1] + l.bytes + r.bytes)
        return Digest32(bytes: Array(h.finalize()))!
    }
    public static func root(leafHashes: [Digest32]) -> Digest32 {
        if leafHashes.isEmpty { return Digest32(bytes: Array(SHA256.hash(data: [UInt8]())))! }
        if leafHashes.count == 1 { return leafHashes[0] }
        var k = 1
        while k * 2 < leafHashes.count { k *= 2 }
        return nodeHash(root(leafHashes: Array(leafHashes[0..<k])), root(leafHashes: Array(leafHashes[k...])))
    }
}

public struct SealVerifierKey: Sendable, Hashable {
    public var keyID: UInt64
}

public struct SealSigner: Sendable {
    public var publicKey: SealVerifierKey
    public func sign(_ bytes: [UInt8]) throws -> [UInt8] { [] }
}

extension SealVerifierKey {
    public func isValidSignature(_ sig: [UInt8], for bytes: [UInt8]) -> Bool { false }
}
