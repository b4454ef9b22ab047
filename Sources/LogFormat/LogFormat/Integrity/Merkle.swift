// Merkle trees in the style of RFC 6962 section 2.1 / RFC 9162 section 2.1: leaf hash SHA-256(0x00 ‖ data),
// node hash SHA-256(0x01 ‖ left ‖ right), a tree of n > 1 leaves split at the largest power of two below n,
// and the empty tree hashing to SHA-256 of no bytes. The prefixes live in FormatConstants; the rules are
// summarised in ../shared/PROTOCOLS.md, "Merkle trees".

import Crypto

// MARK: - Digest32

/// A 32-byte hash (a SHA-256 digest or a Merkle tree hash), stored inline so that no value allocates.
public struct Digest32: Sendable, Hashable, CustomStringConvertible {
    /// Four words holding the 32 bytes in memory order (a homogeneous tuple is laid out contiguously).
    private var storage: (UInt64, UInt64, UInt64, UInt64)

    /// The byte count of every digest.
    public static let byteCount = 32

    /// The all-zero digest (a placeholder, e.g. "no previous segment"; not the root of any tree).
    public static let zero = Digest32(storage: (0, 0, 0, 0))

    private init(storage: (UInt64, UInt64, UInt64, UInt64)) {
        self.storage = storage
    }

    /// Copies exactly 32 bytes; the caller guarantees the count.
    init(unchecked raw: UnsafeRawBufferPointer) {
        assert(raw.count == Digest32.byteCount)
        storage = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: raw) }
    }

    /// Takes the bytes of a swift-crypto SHA-256 digest.
    init(_ digest: SHA256.Digest) {
        self = digest.withUnsafeBytes { Digest32(unchecked: $0) }
    }

    /// A digest from exactly 32 bytes, or nil for any other count.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Digest32.byteCount else { return nil }
        self = bytes.withUnsafeBytes { Digest32(unchecked: $0) }
    }

    /// A digest from exactly 32 raw bytes, or nil for any other count.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == Digest32.byteCount else { return nil }
        self.init(unchecked: bytes)
    }

    /// A digest from 64 hexadecimal digits (either case), or nil if the text is anything else.
    public init?(hex: String) {
        var raw: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let ok = withUnsafeMutableBytes(of: &raw) { out -> Bool in
            var i = 0
            var high: UInt8? = nil
            for c in hex.utf8 {
                guard i < Digest32.byteCount, let v = Digest32.hexValue(c) else { return false }
                if let h = high {
                    out[i] = h << 4 | v
                    i += 1
                    high = nil
                } else {
                    high = v
                }
            }
            return i == Digest32.byteCount && high == nil
        }
        guard ok else { return nil }
        storage = raw
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c &- UInt8(ascii: "A") &+ 10
        default: nil
        }
    }

    /// The 32 bytes as a new array.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The 32 bytes as 64 lowercase hexadecimal digits.
    public var hex: String {
        withUnsafeBytes { raw in
            String(unsafeUninitializedCapacity: 2 * Digest32.byteCount) { out in
                for (i, b) in raw.enumerated() {
                    let hi = b >> 4
                    let lo = b & 0x0f
                    out[2 * i] = hi < 10 ? hi &+ UInt8(ascii: "0") : hi &+ (UInt8(ascii: "a") &- 10)
                    out[2 * i + 1] = lo < 10 ? lo &+ UInt8(ascii: "0") : lo &+ (UInt8(ascii: "a") &- 10)
                }
                return 2 * Digest32.byteCount
            }
        }
    }

    /// The hex form.
    public var description: String { hex }

    /// Calls `body` with the 32 bytes, without copying them to the heap.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var copy = storage
        return try Swift.withUnsafeBytes(of: &copy) { (raw) throws(E) -> R in try body(raw) }
    }

    /// Byte-wise equality.
    public static func == (a: Digest32, b: Digest32) -> Bool {
        a.storage.0 == b.storage.0 && a.storage.1 == b.storage.1 && a.storage.2 == b.storage.2
            && a.storage.3 == b.storage.3
    }

    /// The first 8 bytes as a number: for tables of digests, which are uniformly random already.
    package var firstWord: UInt64 { storage.0 }

    /// Hashes all 32 bytes.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0)
        hasher.combine(storage.1)
        hasher.combine(storage.2)
        hasher.combine(storage.3)
    }
}

extension BinaryWriter {
    /// Appends the 32 bytes of a digest, unframed.
    public mutating func digest(_ d: Digest32) {
        d.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }
}

extension BinaryReader {
    /// Reads 32 unframed bytes as a digest.
    public mutating func digest() throws(LogFormatError) -> Digest32 {
        guard remaining >= Digest32.byteCount else {
            throw LogFormatError(
                .truncated, "a 32-byte hash needs 32 bytes but \(max(remaining, 0)) remain", offset: offset)
        }
        return Digest32(unchecked: try rawSlice(Digest32.byteCount))
    }
}

// MARK: - Tree hashing and proofs

/// RFC 6962 / RFC 9162 Merkle tree hashing, audit paths and consistency proofs over leaf hashes.
public enum MerkleTree {
    /// The root of the empty tree: SHA-256 of no bytes.
    public static let emptyRoot = Digest32(SHA256.hash(data: [UInt8]()))

    /// The leaf hash SHA-256(0x00 ‖ data).
    public static func leafHash(_ data: UnsafeRawBufferPointer) -> Digest32 {
        var h = SHA256()
        withUnsafeBytes(of: FormatConstants.merkleLeafPrefix) { h.update(bufferPointer: $0) }
        h.update(bufferPointer: data)
        return Digest32(h.finalize())
    }

    /// The leaf hash SHA-256(0x00 ‖ data).
    public static func leafHash(_ data: [UInt8]) -> Digest32 {
        data.withUnsafeBytes { leafHash($0) }
    }

    /// The interior node hash SHA-256(0x01 ‖ left ‖ right).
    public static func nodeHash(_ left: Digest32, _ right: Digest32) -> Digest32 {
        // One 65-byte update from a stack buffer: no heap traffic of our own.
        withUnsafeTemporaryAllocation(byteCount: 1 + 2 * Digest32.byteCount, alignment: 8) { buf in
            buf[0] = FormatConstants.merkleNodePrefix
            left.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buf[1..<33]).copyMemory(from: $0) }
            right.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buf[33..<65]).copyMemory(from: $0) }
            var h = SHA256()
            h.update(bufferPointer: UnsafeRawBufferPointer(buf))
            return Digest32(h.finalize())
        }
    }

    /// The Merkle tree hash MTH(D[n]) of the given leaf hashes, in O(n) time and O(log n) space.
    public static func root(leafHashes: [Digest32]) -> Digest32 {
        leafHashes.withUnsafeBufferPointer { subtreeRoot($0) }
    }

    /// The audit path for `leafIndex` in the tree of all `leafHashes`, sibling of the leaf first
    /// (RFC 6962 section 2.1.1, RFC 9162 section 2.1.3.1).
    public static func inclusionProof(leafIndex: Int, leafHashes: [Digest32]) throws(LogFormatError) -> [Digest32] {
        let n = leafHashes.count
        guard leafIndex >= 0, leafIndex < n else {
            throw LogFormatError(.malformed, "leaf index \(leafIndex) is not in a tree of \(n) leaves")
        }
        return leafHashes.withUnsafeBufferPointer { all in
            // Walk down from the root; each step records the root of the subtree the leaf is not in.
            var path: [Digest32] = []
            path.reserveCapacity(Int.bitWidth - (n - 1).leadingZeroBitCount)
            var lo = 0
            var hi = n
            while hi - lo > 1 {
                let k = largestPowerOfTwo(below: hi - lo)
                if leafIndex < lo + k {
                    path.append(subtreeRoot(all, lo + k..<hi))
                    hi = lo + k
                } else {
                    path.append(subtreeRoot(all, lo..<lo + k))
                    lo += k
                }
            }
            path.reverse()
            return path
        }
    }

    /// Checks an audit path with the algorithm of RFC 9162 section 2.1.3.2.
    public static func verifyInclusion(
        leafHash: Digest32, leafIndex: Int, treeSize: Int, proof: [Digest32], root: Digest32
    ) -> Bool {
        guard leafIndex >= 0, leafIndex < treeSize else { return false }
        var fn = leafIndex
        var sn = treeSize - 1
        var r = leafHash
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// The proof that the tree of the first `oldSize` leaves is a prefix of the tree of all `leafHashes`
    /// (RFC 9162 section 2.1.4.1); empty when `oldSize` is 0 or the whole tree.
    public static func consistencyProof(oldSize: Int, leafHashes: [Digest32]) throws(LogFormatError) -> [Digest32] {
        let n = leafHashes.count
        guard oldSize >= 0, oldSize <= n else {
            throw LogFormatError(.malformed, "old tree size \(oldSize) is not within a tree of \(n) leaves")
        }
        if oldSize == 0 || oldSize == n { return [] }
        return leafHashes.withUnsafeBufferPointer { all in
            // SUBPROOF(m, D[lo:hi], b) unrolled: each step appends the hash of the half the old tree does not
            // end in; the step that reaches a subtree equal to the old tree's remainder adds that subtree
            // (unless it is the whole old tree, which the verifier already has). Built outer-first, so reversed.
            var proof: [Digest32] = []
            proof.reserveCapacity(2 * (Int.bitWidth - (n - 1).leadingZeroBitCount))
            var lo = 0
            var hi = n
            var m = oldSize
            var isWholeOldTree = true
            while m != hi - lo {
                let k = largestPowerOfTwo(below: hi - lo)
                if m <= k {
                    proof.append(subtreeRoot(all, lo + k..<hi))
                    hi = lo + k
                } else {
                    proof.append(subtreeRoot(all, lo..<lo + k))
                    lo += k
                    m -= k
                    isWholeOldTree = false
                }
            }
            if !isWholeOldTree { proof.append(subtreeRoot(all, lo..<hi)) }
            proof.reverse()
            return proof
        }
    }

    /// Checks a consistency proof with the algorithm of RFC 9162 section 2.1.4.2. Equal sizes need equal
    /// roots and an empty proof; an old size of 0 needs the empty-tree root and an empty proof.
    public static func verifyConsistency(
        oldSize: Int, newSize: Int, oldRoot: Digest32, newRoot: Digest32, proof: [Digest32]
    ) -> Bool {
        guard oldSize >= 0, oldSize <= newSize else { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        if oldSize == 0 { return proof.isEmpty && oldRoot == emptyRoot }
        guard !proof.isEmpty else { return false }

        // When the old size is a power of two the old root is the first path element (the RFC prepends it).
        var next = proof.startIndex
        let seed: Digest32
        if oldSize & (oldSize - 1) == 0 {
            seed = oldRoot
        } else {
            seed = proof[next]
            next += 1
        }
        var fn = oldSize - 1
        var sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = seed
        var sr = seed
        while next < proof.endIndex {
            let c = proof[next]
            next += 1
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && fr == oldRoot && sr == newRoot
    }

    // MARK: Internals

    /// The largest power of two strictly less than `n` (n >= 2).
    @inline(__always) static func largestPowerOfTwo(below n: Int) -> Int {
        assert(n >= 2)
        return 1 << (Int.bitWidth - 1 - (n - 1).leadingZeroBitCount)
    }

    /// MTH of `leaves[range]`.
    static func subtreeRoot(_ leaves: UnsafeBufferPointer<Digest32>, _ range: Range<Int>) -> Digest32 {
        subtreeRoot(UnsafeBufferPointer(rebasing: leaves[range]))
    }

    /// MTH of all of `leaves`: the compact-range fold. Leaves are pushed onto a stack of perfect-subtree roots,
    /// merging equal sizes as a binary counter carries; the remaining roots (largest first) are then folded
    /// right to left, which is exactly RFC 6962's split at the largest power of two. The stack lives on the
    /// call stack (at most one entry per bit of the count).
    static func subtreeRoot(_ leaves: UnsafeBufferPointer<Digest32>) -> Digest32 {
        let n = leaves.count
        if n == 0 { return emptyRoot }
        if n == 1 { return leaves[0] }
        return withUnsafeTemporaryAllocation(of: Digest32.self, capacity: Int.bitWidth) { stack in
            var depth = 0
            for i in 0..<n {
                var h = leaves[i]
                var carry = i
                while carry & 1 == 1 {
                    depth -= 1
                    h = nodeHash(stack[depth], h)
                    carry >>= 1
                }
                stack.initializeElement(at: depth, to: h)
                depth += 1
            }
            depth -= 1
            var r = stack[depth]
            while depth > 0 {
                depth -= 1
                r = nodeHash(stack[depth], r)
            }
            return r
        }
    }
}

// MARK: - Incremental builder

/// Builds a Merkle tree one leaf hash at a time, keeping only the roots of its perfect subtrees (O(log n)),
/// and optionally every leaf hash so that proofs can be produced.
public struct MerkleAccumulator: Sendable {
    /// The number of leaves appended so far.
    public private(set) var count: Int = 0
    /// Roots of the perfect subtrees that make up the tree, largest (leftmost) first; one per set bit of `count`.
    public private(set) var peaks: [Digest32] = []
    /// Every leaf hash appended, in order, when the accumulator retains them; otherwise empty.
    public private(set) var leafHashes: [Digest32] = []
    /// Whether `leafHashes` is kept (needed for proofs).
    public let retainsLeafHashes: Bool

    /// An empty tree; pass `retainingLeafHashes: true` to be able to produce proofs later.
    public init(retainingLeafHashes: Bool = false) {
        retainsLeafHashes = retainingLeafHashes
        peaks.reserveCapacity(Int.bitWidth)
    }

    /// Resumes a tree from a saved `count` and `peaks` (as read from those properties); leaf hashes are not kept.
    public init(restoringCount count: Int, peaks: [Digest32]) throws(LogFormatError) {
        guard count >= 0, peaks.count == count.nonzeroBitCount else {
            throw LogFormatError(
                .malformed,
                "a Merkle tree of \(count) leaves has \(max(count, 0).nonzeroBitCount) peaks, not \(peaks.count)")
        }
        self.init(retainingLeafHashes: false)
        self.count = count
        self.peaks.append(contentsOf: peaks)
    }

    /// Appends one leaf hash (from `MerkleTree.leafHash`).
    public mutating func append(_ leafHash: Digest32) {
        var h = leafHash
        var carry = count
        while carry & 1 == 1 {
            h = MerkleTree.nodeHash(peaks.removeLast(), h)
            carry >>= 1
        }
        peaks.append(h)
        count += 1
        if retainsLeafHashes { leafHashes.append(leafHash) }
    }

    /// Hashes `data` as a leaf and appends it.
    public mutating func append(leafData data: UnsafeRawBufferPointer) {
        append(MerkleTree.leafHash(data))
    }

    /// The root of the tree of all leaves so far; equal to `MerkleTree.root(leafHashes:)` over them.
    public var root: Digest32 {
        guard var r = peaks.last else { return MerkleTree.emptyRoot }
        var i = peaks.count - 1
        while i > 0 {
            i -= 1
            r = MerkleTree.nodeHash(peaks[i], r)
        }
        return r
    }

    /// The audit path for `leafIndex` in the current tree; needs retained leaf hashes.
    public func inclusionProof(leafIndex: Int) throws(LogFormatError) -> [Digest32] {
        try requireLeafHashes()
        return try MerkleTree.inclusionProof(leafIndex: leafIndex, leafHashes: leafHashes)
    }

    /// The consistency proof from the tree of the first `oldSize` leaves to the current tree; needs retained
    /// leaf hashes.
    public func consistencyProof(oldSize: Int) throws(LogFormatError) -> [Digest32] {
        try requireLeafHashes()
        return try MerkleTree.consistencyProof(oldSize: oldSize, leafHashes: leafHashes)
    }

    private func requireLeafHashes() throws(LogFormatError) {
        guard retainsLeafHashes else {
            throw LogFormatError(
                .invalidState, "this Merkle accumulator does not keep leaf hashes, so it cannot produce proofs")
        }
    }
}
