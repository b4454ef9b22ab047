// Merkle tree tests: the RFC 6962 reference vectors, a naive recursive model of the RFC definitions, an edge-case
// catalogue for the verifiers, and property tests for proofs and the accumulator.

import LogFormat
import PropertyBased
import Testing

// MARK: - Helpers

/// Bytes from an even-length hex string (test data only: traps on bad input).
func hexBytes(_ s: String) -> [UInt8] {
    let digits = Array(s.utf8)
    precondition(digits.count % 2 == 0, "odd-length hex")
    return stride(from: 0, to: digits.count, by: 2).map { i in
        UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16)!
    }
}

func digest(_ hex: String) -> Digest32 {
    guard let d = Digest32(hex: hex) else { preconditionFailure("bad digest hex \(hex)") }
    return d
}

/// The same digest with one bit of one byte flipped.
func flipped(_ d: Digest32, byte: Int, bit: Int = 0) -> Digest32 {
    var b = d.bytes
    b[byte % 32] ^= UInt8(1) << UInt8(bit % 8)
    return Digest32(bytes: b)!
}

/// Deterministic distinct leaf hashes for a tree of `n` leaves.
func sampleLeaves(_ n: Int, seed: UInt64 = 0) -> [Digest32] {
    (0..<n).map { i in
        withUnsafeBytes(of: (seed &+ UInt64(i)).littleEndian) { MerkleTree.leafHash($0) }
    }
}

/// A naive model written straight from the recursive definitions of RFC 9162 section 2.1 (MTH, PATH,
/// PROOF/SUBPROOF), to check the iterative implementation against. It shares only the two hash primitives,
/// which the reference vectors pin down on their own.
enum NaiveMerkle {
    static func k(_ n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    static func mth(_ d: ArraySlice<Digest32>) -> Digest32 {
        switch d.count {
        case 0: return MerkleTree.emptyRoot
        case 1: return d.first!
        default:
            let split = d.startIndex + k(d.count)
            return MerkleTree.nodeHash(mth(d[d.startIndex..<split]), mth(d[split...]))
        }
    }

    static func path(_ m: Int, _ d: ArraySlice<Digest32>) -> [Digest32] {
        if d.count <= 1 { return [] }
        let kk = k(d.count)
        let split = d.startIndex + kk
        if m < kk { return path(m, d[..<split]) + [mth(d[split...])] }
        return path(m - kk, d[split...]) + [mth(d[..<split])]
    }

    static func proof(_ m: Int, _ d: ArraySlice<Digest32>) -> [Digest32] {
        if m == 0 { return [] }
        return subproof(m, d, true)
    }

    static func subproof(_ m: Int, _ d: ArraySlice<Digest32>, _ b: Bool) -> [Digest32] {
        if m == d.count { return b ? [] : [mth(d)] }
        let kk = k(d.count)
        let split = d.startIndex + kk
        if m <= kk { return subproof(m, d[..<split], b) + [mth(d[split...])] }
        return subproof(m - kk, d[split...], false) + [mth(d[..<split])]
    }
}

// MARK: - Reference vectors

/// The RFC 6962 reference test data (certificate-transparency's merkle_tree_test, also used by
/// transparency-dev/merkle): eight leaf inputs, the root of every prefix, and some proofs.
enum RFC6962Vectors {
    static let leafInputs: [[UInt8]] = [
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
    ].map(hexBytes)

    static var leafHashes: [Digest32] { leafInputs.map { MerkleTree.leafHash($0) } }

    /// `roots[n]` is the root of the tree of the first n leaves.
    static let roots: [String] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]

    struct Path: Sendable, CustomTestStringConvertible {
        var leafIndex: Int
        var treeSize: Int
        var proof: [String]
        var testDescription: String { "leaf \(leafIndex) of \(treeSize)" }
    }

    static let paths: [Path] = [
        Path(leafIndex: 0, treeSize: 1, proof: []),
        Path(
            leafIndex: 0, treeSize: 8,
            proof: [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]),
        Path(
            leafIndex: 5, treeSize: 8,
            proof: [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]),
        Path(leafIndex: 2, treeSize: 3, proof: ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        Path(
            leafIndex: 1, treeSize: 5,
            proof: [
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ]),
    ]

    struct Consistency: Sendable, CustomTestStringConvertible {
        var oldSize: Int
        var newSize: Int
        var proof: [String]
        var testDescription: String { "\(oldSize) -> \(newSize)" }
    }

    static let consistency: [Consistency] = [
        Consistency(oldSize: 1, newSize: 1, proof: []),
        Consistency(
            oldSize: 1, newSize: 8,
            proof: [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]),
        Consistency(
            oldSize: 6, newSize: 8,
            proof: [
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]),
        Consistency(
            oldSize: 2, newSize: 5,
            proof: [
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ]),
    ]
}

@Suite struct MerkleReferenceVectorTests {
    @Test func emptyTreeIsSHA256OfNothing() {
        #expect(MerkleTree.emptyRoot.hex == RFC6962Vectors.roots[0])
        #expect(MerkleTree.root(leafHashes: []) == MerkleTree.emptyRoot)
        #expect(MerkleAccumulator().root == MerkleTree.emptyRoot)
    }

    @Test(arguments: 0...8) func rootOfEachPrefix(size: Int) {
        let leaves = Array(RFC6962Vectors.leafHashes.prefix(size))
        #expect(MerkleTree.root(leafHashes: leaves).hex == RFC6962Vectors.roots[size])
        var acc = MerkleAccumulator()
        for h in leaves { acc.append(h) }
        #expect(acc.root.hex == RFC6962Vectors.roots[size])
    }

    @Test func leafHashOverloadsAgree() {
        for input in RFC6962Vectors.leafInputs {
            let viaPointer = input.withUnsafeBytes { MerkleTree.leafHash($0) }
            #expect(viaPointer == MerkleTree.leafHash(input))
        }
        // The root of a one-leaf tree is the leaf hash of "": SHA-256(0x00).
        #expect(MerkleTree.leafHash([]).hex == RFC6962Vectors.roots[1])
    }

    @Test func nodeHashOfTheFirstTwoLeaves() {
        let h = RFC6962Vectors.leafHashes
        #expect(MerkleTree.nodeHash(h[0], h[1]).hex == RFC6962Vectors.roots[2])
        #expect(MerkleTree.nodeHash(h[1], h[0]) != MerkleTree.nodeHash(h[0], h[1]))
    }

    @Test(arguments: RFC6962Vectors.paths) func referenceInclusionProof(_ v: RFC6962Vectors.Path) throws {
        let leaves = Array(RFC6962Vectors.leafHashes.prefix(v.treeSize))
        let proof = try MerkleTree.inclusionProof(leafIndex: v.leafIndex, leafHashes: leaves)
        #expect(proof.map(\.hex) == v.proof)
        let root = digest(RFC6962Vectors.roots[v.treeSize])
        #expect(
            MerkleTree.verifyInclusion(
                leafHash: leaves[v.leafIndex], leafIndex: v.leafIndex, treeSize: v.treeSize, proof: proof, root: root))
    }

    @Test(arguments: RFC6962Vectors.consistency)
    func referenceConsistencyProof(_ v: RFC6962Vectors.Consistency) throws {
        let leaves = Array(RFC6962Vectors.leafHashes.prefix(v.newSize))
        let proof = try MerkleTree.consistencyProof(oldSize: v.oldSize, leafHashes: leaves)
        #expect(proof.map(\.hex) == v.proof)
        #expect(
            MerkleTree.verifyConsistency(
                oldSize: v.oldSize, newSize: v.newSize, oldRoot: digest(RFC6962Vectors.roots[v.oldSize]),
                newRoot: digest(RFC6962Vectors.roots[v.newSize]), proof: proof))
    }
}

// MARK: - Against the naive model

@Suite struct MerkleModelTests {
    @Test func rootMatchesRecursiveDefinition() {
        for n in 0...130 {
            let leaves = sampleLeaves(n, seed: 7)
            #expect(MerkleTree.root(leafHashes: leaves) == NaiveMerkle.mth(leaves[...]), "n = \(n)")
        }
    }

    @Test func everyInclusionProofMatchesPATH() throws {
        for n in 1...40 {
            let leaves = sampleLeaves(n, seed: 11)
            for i in 0..<n {
                let proof = try MerkleTree.inclusionProof(leafIndex: i, leafHashes: leaves)
                #expect(proof == NaiveMerkle.path(i, leaves[...]), "leaf \(i) of \(n)")
            }
        }
    }

    @Test func everyConsistencyProofMatchesPROOF() throws {
        for n in 1...40 {
            let leaves = sampleLeaves(n, seed: 13)
            for m in 0...n {
                let proof = try MerkleTree.consistencyProof(oldSize: m, leafHashes: leaves)
                #expect(proof == NaiveMerkle.proof(m, leaves[...]), "\(m) -> \(n)")
            }
        }
    }
}

// MARK: - Edge cases

@Suite struct MerkleEdgeCaseTests {
    let leaves = sampleLeaves(13, seed: 3)
    var root: Digest32 { MerkleTree.root(leafHashes: leaves) }

    @Test func proofGeneratorsRejectOutOfRangeArguments() {
        for bad in [-1, 13, 14, Int.max] {
            let error = try? #require(throws: LogFormatError.self) {
                try MerkleTree.inclusionProof(leafIndex: bad, leafHashes: leaves)
            }
            #expect(error?.code == .malformed)
        }
        for bad in [-1, 14, Int.max] {
            let error = try? #require(throws: LogFormatError.self) {
                try MerkleTree.consistencyProof(oldSize: bad, leafHashes: leaves)
            }
            #expect(error?.code == .malformed)
        }
        #expect(throws: LogFormatError.self) { try MerkleTree.inclusionProof(leafIndex: 0, leafHashes: []) }
        #expect((try? MerkleTree.consistencyProof(oldSize: 0, leafHashes: [])) == [])
    }

    @Test func singleLeafTree() throws {
        let one = [leaves[0]]
        #expect(MerkleTree.root(leafHashes: one) == leaves[0])
        #expect(try MerkleTree.inclusionProof(leafIndex: 0, leafHashes: one).isEmpty)
        #expect(MerkleTree.verifyInclusion(leafHash: leaves[0], leafIndex: 0, treeSize: 1, proof: [], root: leaves[0]))
        #expect(!MerkleTree.verifyInclusion(leafHash: leaves[1], leafIndex: 0, treeSize: 1, proof: [], root: leaves[0]))
        #expect(
            !MerkleTree.verifyInclusion(
                leafHash: leaves[0], leafIndex: 0, treeSize: 1, proof: [leaves[1]], root: leaves[0]))
    }

    @Test func inclusionVerifierRejectsBadShapes() throws {
        let proof = try MerkleTree.inclusionProof(leafIndex: 6, leafHashes: leaves)
        let leaf = leaves[6]
        func check(_ index: Int, _ size: Int, _ p: [Digest32], _ r: Digest32) -> Bool {
            MerkleTree.verifyInclusion(leafHash: leaf, leafIndex: index, treeSize: size, proof: p, root: r)
        }
        #expect(check(6, 13, proof, root))
        #expect(!check(-1, 13, proof, root))
        #expect(!check(13, 13, proof, root))
        #expect(!check(6, 0, proof, root))
        #expect(!check(6, -5, proof, root))
        #expect(!check(6, 13, [], root))
        #expect(!check(6, 13, proof + [root], root))
        #expect(!check(6, 13, proof + [.zero], root))
        #expect(!check(6, 13, Array(proof.dropLast()), root))
        #expect(!check(6, 13, [.zero] + proof, root))
        #expect(!check(6, 13, proof.reversed(), root))
        #expect(!check(6, 13, proof, MerkleTree.emptyRoot))
        #expect(!MerkleTree.verifyInclusion(leafHash: leaves[5], leafIndex: 6, treeSize: 13, proof: proof, root: root))
        for j in proof.indices {
            var p = proof
            p[j] = MerkleTree.emptyRoot
            #expect(!check(6, 13, p, root))
        }
    }

    @Test func consistencyVerifierSpecialSizes() {
        let r13 = root
        let r5 = MerkleTree.root(leafHashes: Array(leaves.prefix(5)))
        func check(_ m: Int, _ n: Int, _ a: Digest32, _ b: Digest32, _ p: [Digest32]) -> Bool {
            MerkleTree.verifyConsistency(oldSize: m, newSize: n, oldRoot: a, newRoot: b, proof: p)
        }
        // Equal sizes: equal roots and no proof.
        #expect(check(13, 13, r13, r13, []))
        #expect(!check(13, 13, r13, r5, []))
        #expect(!check(13, 13, r13, r13, [r13]))
        #expect(check(0, 0, MerkleTree.emptyRoot, MerkleTree.emptyRoot, []))
        // The empty tree is a prefix of every tree, given its true root and no proof.
        #expect(check(0, 13, MerkleTree.emptyRoot, r13, []))
        #expect(!check(0, 13, .zero, r13, []))
        #expect(!check(0, 13, MerkleTree.emptyRoot, r13, [r13]))
        // Time travel and nonsense sizes.
        #expect(!check(13, 5, r13, r5, []))
        #expect(!check(-1, 5, r13, r5, []))
        // A proper prefix needs a proof.
        #expect(!check(5, 13, r5, r13, []))
    }

    @Test func consistencyVerifierRejectsBadProofs() throws {
        let r5 = MerkleTree.root(leafHashes: Array(leaves.prefix(5)))
        let r13 = root
        let proof = try MerkleTree.consistencyProof(oldSize: 5, leafHashes: leaves)
        func check(_ m: Int, _ n: Int, _ a: Digest32, _ b: Digest32, _ p: [Digest32]) -> Bool {
            MerkleTree.verifyConsistency(oldSize: m, newSize: n, oldRoot: a, newRoot: b, proof: p)
        }
        #expect(check(5, 13, r5, r13, proof))
        #expect(!check(4, 13, r5, r13, proof))
        #expect(!check(6, 13, r5, r13, proof))
        #expect(!check(5 ^ 2, 13, r5, r13, proof))
        #expect(!check(5, 26, r5, r13, proof))
        #expect(!check(5, 6, r5, r13, proof))
        #expect(!check(5, 13, r13, r5, proof))
        #expect(!check(5, 13, r5, .zero, proof))
        #expect(!check(5, 13, .zero, r13, proof))
        #expect(!check(5, 13, r5, r13, proof + [proof.last!]))
        #expect(!check(5, 13, r5, r13, Array(proof.dropLast())))
        #expect(!check(5, 13, r5, r13, [.zero] + proof))
        #expect(!check(5, 13, r5, r13, [proof[0]] + proof))
        for j in proof.indices {
            var p = proof
            p[j] = MerkleTree.emptyRoot
            #expect(!check(5, 13, r5, r13, p))
        }
    }
}

// MARK: - Digest32

@Suite struct Digest32Tests {
    let sample = digest(RFC6962Vectors.roots[8])

    @Test func hexAndBytesRoundTrip() {
        #expect(sample.hex == RFC6962Vectors.roots[8])
        #expect(sample.description == sample.hex)
        #expect(sample.bytes == hexBytes(RFC6962Vectors.roots[8]))
        #expect(Digest32(bytes: sample.bytes) == sample)
        #expect(Digest32(hex: RFC6962Vectors.roots[8].uppercased()) == sample)
        let viaPointer = sample.bytes.withUnsafeBytes { Digest32(bytes: $0) }
        #expect(viaPointer == sample)
        #expect(Digest32.zero.bytes == [UInt8](repeating: 0, count: 32))
        #expect(Digest32.zero.hex == String(repeating: "0", count: 64))
        #expect(Digest32(hex: String(repeating: "0", count: 64)) == .zero)
    }

    @Test(arguments: [
        "", "0", String(repeating: "a", count: 63), String(repeating: "a", count: 65),
        String(repeating: "a", count: 66), String(repeating: "g", count: 64), String(repeating: "a", count: 62) + " a",
        String(repeating: "a", count: 62) + "é", "0x" + String(repeating: "a", count: 62),
    ])
    func badHexIsRejected(_ text: String) {
        #expect(Digest32(hex: text) == nil)
    }

    @Test(arguments: [0, 1, 31, 33, 64]) func wrongByteCountIsRejected(_ count: Int) {
        #expect(Digest32(bytes: [UInt8](repeating: 1, count: count)) == nil)
    }

    @Test func hashableDistinguishesEveryByte() {
        var set: Set<Digest32> = [sample]
        for i in 0..<32 { set.insert(flipped(sample, byte: i, bit: i)) }
        #expect(set.count == 33)
        #expect(set.contains(digest(RFC6962Vectors.roots[8])))
    }

    @Test func binaryRoundTrip() throws {
        var w = BinaryWriter()
        w.u8(0xAB)
        w.digest(sample)
        w.digest(.zero)
        w.u8(0xCD)
        #expect(w.count == 1 + 32 + 32 + 1)
        let (a, d1, d2, b, atEnd) = try w.bytes.withUnsafeBytes { raw in
            var r = BinaryReader(raw)
            return (try r.u8(), try r.digest(), try r.digest(), try r.u8(), r.isAtEnd)
        }
        #expect(a == 0xAB && b == 0xCD && atEnd)
        #expect(d1 == sample)
        #expect(d2 == .zero)
    }

    @Test func truncatedDigestThrows() {
        let bytes = [UInt8](sample.bytes.prefix(31))
        bytes.withUnsafeBytes { raw in
            var r = BinaryReader(raw)
            let error = try? #require(throws: LogFormatError.self) { try r.digest() }
            #expect(error?.code == .truncated)
            #expect(r.offset == 0)
        }
    }
}

// MARK: - Accumulator

@Suite struct MerkleAccumulatorTests {
    @Test func proofsNeedRetainedLeaves() {
        var acc = MerkleAccumulator()
        for h in sampleLeaves(5) { acc.append(h) }
        #expect(acc.leafHashes.isEmpty)
        let e1 = try? #require(throws: LogFormatError.self) { try acc.inclusionProof(leafIndex: 0) }
        #expect(e1?.code == .invalidState)
        let e2 = try? #require(throws: LogFormatError.self) { try acc.consistencyProof(oldSize: 1) }
        #expect(e2?.code == .invalidState)
    }

    @Test func peaksFollowTheBitsOfTheCount() {
        var acc = MerkleAccumulator()
        for (i, h) in sampleLeaves(100).enumerated() {
            acc.append(h)
            #expect(acc.count == i + 1)
            #expect(acc.peaks.count == (i + 1).nonzeroBitCount)
        }
    }

    @Test func leafDataAppendHashesAsALeaf() {
        var a = MerkleAccumulator()
        var b = MerkleAccumulator()
        for input in RFC6962Vectors.leafInputs {
            input.withUnsafeBytes { a.append(leafData: $0) }
            b.append(MerkleTree.leafHash(input))
        }
        #expect(a.root == b.root)
        #expect(a.root.hex == RFC6962Vectors.roots[8])
    }

    @Test func restoredAccumulatorContinuesIdentically() throws {
        let leaves = sampleLeaves(77, seed: 5)
        for cut in [0, 1, 2, 31, 32, 33, 50] {
            var original = MerkleAccumulator()
            for h in leaves[..<cut] { original.append(h) }
            var restored = try MerkleAccumulator(restoringCount: original.count, peaks: original.peaks)
            #expect(restored.root == original.root)
            for h in leaves[cut...] {
                original.append(h)
                restored.append(h)
            }
            #expect(restored.root == original.root)
            #expect(restored.root == MerkleTree.root(leafHashes: leaves))
        }
    }

    @Test func restoreRejectsAWrongNumberOfPeaks() {
        let peaks = sampleLeaves(3)
        for (count, n) in [(5, 3), (5, 1), (0, 1), (-1, 0), (7, 2)] {
            let error = try? #require(throws: LogFormatError.self) {
                try MerkleAccumulator(restoringCount: count, peaks: Array(peaks.prefix(n)))
            }
            #expect(error?.code == .malformed)
        }
    }
}

// MARK: - Properties

@Suite struct MerklePropertyTests {
    @Test func inclusionProofsVerifyAndTamperingFails() async {
        await propertyCheck(
            count: 150, input: Gen.int(in: 1...300), Gen.int(in: 0...Int.max), Gen.int(in: 0...Int.max), Gen.uint64()
        ) { n, pick, pick2, seed in
            // Leaves for twice the size, so that trees of other sizes can be compared.
            let all = sampleLeaves(2 * n + 1, seed: seed)
            let leaves = Array(all.prefix(n))
            let root = MerkleTree.root(leafHashes: leaves)
            for index in Set([pick % n, 0, n - 1]) {
                guard let proof = try? MerkleTree.inclusionProof(leafIndex: index, leafHashes: leaves) else {
                    Issue.record("no proof for leaf \(index) of \(n)")
                    return
                }
                let leaf = leaves[index]
                func verifies(_ i: Int, _ size: Int, _ p: [Digest32], _ r: Digest32, leaf l: Digest32? = nil) -> Bool {
                    MerkleTree.verifyInclusion(leafHash: l ?? leaf, leafIndex: i, treeSize: size, proof: p, root: r)
                }
                #expect(verifies(index, n, proof, root), "leaf \(index) of \(n)")
                if !proof.isEmpty {
                    var bad = proof
                    let j = pick2 % proof.count
                    bad[j] = flipped(bad[j], byte: pick2 / 7, bit: pick2 / 11)
                    #expect(!verifies(index, n, bad, root), "flipped proof element \(j), leaf \(index) of \(n)")
                }
                #expect(!verifies(index, n, proof, root, leaf: flipped(leaf, byte: pick2)))
                #expect(!verifies(index, n, proof, flipped(root, byte: pick2)))
                if n > 1 {
                    #expect(!verifies((index + 1) % n, n, proof, root), "leaf \(index) of \(n) as the next leaf")
                    #expect(!verifies((index + n - 1) % n, n, proof, root), "leaf \(index) of \(n) as the previous")
                }
                // Claimed under another tree size, with that tree's own root or with this root.
                for other in [n - 1, n + 1, 2 * n] where other > index && other != n {
                    let otherRoot = MerkleTree.root(leafHashes: Array(all.prefix(other)))
                    #expect(!verifies(index, other, proof, otherRoot), "leaf \(index) of \(n) claimed in \(other)")
                }
                #expect(!verifies(index, 2 * n, proof, root), "leaf \(index) of \(n) with size \(2 * n)")
                if n > 1 { #expect(!verifies(index, n / 2, proof, root), "leaf \(index) of \(n) with size \(n / 2)") }
            }
        }
    }

    @Test func consistencyProofsVerifyAndTamperingFails() async {
        await propertyCheck(
            count: 150, input: Gen.int(in: 1...300), Gen.int(in: 0...Int.max), Gen.int(in: 0...Int.max), Gen.uint64()
        ) { n, pickM, pick2, seed in
            let m = 1 + pickM % n
            let leaves = sampleLeaves(n, seed: seed)
            let oldRoot = MerkleTree.root(leafHashes: Array(leaves.prefix(m)))
            let newRoot = MerkleTree.root(leafHashes: leaves)
            guard let proof = try? MerkleTree.consistencyProof(oldSize: m, leafHashes: leaves) else {
                Issue.record("no consistency proof \(m) -> \(n)")
                return
            }
            func verifies(_ a: Int, _ b: Int, _ ra: Digest32, _ rb: Digest32, _ p: [Digest32]) -> Bool {
                MerkleTree.verifyConsistency(oldSize: a, newSize: b, oldRoot: ra, newRoot: rb, proof: p)
            }
            #expect(verifies(m, n, oldRoot, newRoot, proof), "\(m) -> \(n)")
            #expect(proof.isEmpty == (m == n))
            guard m < n else { return }

            var bad = proof
            let j = pick2 % proof.count
            bad[j] = flipped(bad[j], byte: pick2 / 7, bit: pick2 / 11)
            #expect(!verifies(m, n, oldRoot, newRoot, bad), "flipped element \(j) of \(m) -> \(n)")
            #expect(!verifies(m, n, oldRoot, newRoot, Array(proof.dropLast())), "truncated \(m) -> \(n)")
            #expect(!verifies(m, n, oldRoot, newRoot, proof + [proof[j]]), "extended \(m) -> \(n)")
            #expect(!verifies(m, n, newRoot, oldRoot, proof), "swapped roots \(m) -> \(n)")
            #expect(!verifies(m, n, flipped(oldRoot, byte: pick2), newRoot, proof), "bad old root \(m) -> \(n)")
            #expect(!verifies(m, n, oldRoot, flipped(newRoot, byte: pick2), proof), "bad new root \(m) -> \(n)")
            for otherM in [m - 1, m + 1] where otherM >= 1 && otherM < n {
                #expect(!verifies(otherM, n, oldRoot, newRoot, proof), "\(m) -> \(n) claimed as \(otherM) -> \(n)")
                let otherRoot = MerkleTree.root(leafHashes: Array(leaves.prefix(otherM)))
                #expect(!verifies(otherM, n, otherRoot, newRoot, proof), "\(m) -> \(n) used for \(otherM) -> \(n)")
            }
            // A proof binds the new size only together with its root (a checkpoint signs both): claimed for
            // another size, with that tree's root, it fails; with this root, RFC 9162's shape checks catch 2n.
            #expect(!verifies(m, 2 * n, oldRoot, newRoot, proof), "\(m) -> \(n) claimed as \(m) -> \(2 * n)")
            for otherN in [n - 1, n + 1, 2 * n] where otherN > m {
                let otherRoot = MerkleTree.root(leafHashes: sampleLeaves(otherN, seed: seed))
                #expect(!verifies(m, otherN, oldRoot, otherRoot, proof), "\(m) -> \(n) used for \(m) -> \(otherN)")
            }
        }
    }

    @Test func accumulatorMatchesBatchAtEveryPrefix() async {
        await propertyCheck(count: 60, input: Gen.int(in: 1...300), Gen.uint64(), Gen.int(in: 0...Int.max)) {
            n, seed, pick in
            let leaves = sampleLeaves(n, seed: seed)
            var acc = MerkleAccumulator(retainingLeafHashes: true)
            for i in 0..<n {
                acc.append(leaves[i])
                let batch = MerkleTree.root(leafHashes: Array(leaves[...i]))
                if acc.root != batch {
                    Issue.record("accumulator and batch roots differ at size \(i + 1) of \(n)")
                    return
                }
            }
            #expect(acc.leafHashes == leaves)
            let index = pick % n
            #expect(
                (try? acc.inclusionProof(leafIndex: index))
                    == (try? MerkleTree.inclusionProof(leafIndex: index, leafHashes: leaves)))
            let m = pick % (n + 1)
            #expect(
                (try? acc.consistencyProof(oldSize: m))
                    == (try? MerkleTree.consistencyProof(oldSize: m, leafHashes: leaves)))
        }
    }
}
