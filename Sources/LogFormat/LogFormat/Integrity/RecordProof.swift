// Inclusion proofs for single records: what an auditor needs to check that one event was part of a sealed
// segment, without the rest of the segment: the record's canonical bytes, its RFC 6962 audit path to the
// Merkle root, and the seal (with its signature) that holds the root.

/// Proof that one record belongs to a sealed segment.
public struct RecordProof: Sendable, Hashable {
    public var location: RecordLocation
    /// The record's canonical bytes (the Merkle leaf data).
    public var record: [UInt8]
    /// Audit path from the leaf to the root (RFC 9162 §2.1.3), leaf side first.
    public var path: [Digest32]
    /// The seal of the segment: its `recordCount` is the tree size, `merkleRoot` the root.
    public var seal: SegmentSeal
    /// The Ed25519 signature over `seal.encoded()`, when the seal is signed.
    public var signature: [UInt8]?

    /// The event the proof is about.
    public func event() throws(LogFormatError) -> AuditEvent { try RecordCodec.decode(record) }

    /// Checks the proof: the record hashes up the path to the seal's root at its position, the location
    /// names the sealed segment, and — when `key` is given — the seal's signature verifies with it.
    /// Returns the problems found; empty means the proof holds.
    public func problems(publicKey key: SealVerifierKey? = nil) -> [String] {
        var out: [String] = []
        if location.nodeID != seal.nodeID || location.segmentSequence != seal.sequence {
            out.append(
                "the proof is for segment \(location.nodeID)/\(location.segmentSequence) but carries the seal of \(seal.nodeID)/\(seal.sequence)"
            )
        }
        let leaf = MerkleTree.leafHash(record)
        if UInt64(location.ordinal) >= seal.recordCount
            || !MerkleTree.verifyInclusion(
                leafHash: leaf, leafIndex: Int(location.ordinal), treeSize: Int(seal.recordCount), proof: path,
                root: seal.merkleRoot)
        {
            out.append(
                "record \(location.ordinal) does not hash to the seal's Merkle root \(seal.merkleRoot.hex) along its audit path"
            )
        }
        if let key {
            if !seal.isSigned {
                out.append("the seal is not signed")
            } else if key.keyID != seal.signingKeyID {
                out.append("the seal was signed by key \(Verifier.hexKeyID(seal.signingKeyID)), not \(key.keyIDHex)")
            } else if !key.isValidSignature(signature ?? [], for: seal.encoded()) {
                out.append("the seal's Ed25519 signature does not verify")
            }
        }
        return out
    }
}

extension SegmentReader {
    /// The canonical bytes of every record, in ordinal order (the Merkle leaves' data).
    public func allRecordBytes() throws(LogFormatError) -> [[UInt8]] {
        // Every block at once: a segment in an object store fetches them in one batch, not a block at a time.
        try prefetchBlocks(blocks.indices)
        var out: [[UInt8]] = []
        out.reserveCapacity(Int(recordCount))
        for b in blocks.indices {
            try forEachRecord(inBlock: b) { (_, record) throws(LogFormatError) in out.append(Array(record)) }
        }
        return out
    }

    /// Inclusion proofs for records of this sealed segment at `ordinals`. The segment's records are read and
    /// hashed once, however many proofs are asked for.
    public func proofs(for ordinals: [UInt32]) throws(LogFormatError) -> [RecordProof] {
        guard let footer else {
            throw LogFormatError(.invalidState, "inclusion proofs need a sealed segment", path: path)
        }
        let records = try allRecordBytes()
        let leaves = records.map { MerkleTree.leafHash($0) }
        guard MerkleTree.root(leafHashes: leaves) == footer.seal.merkleRoot else {
            throw LogFormatError(
                .integrity, "the records do not hash to the seal's Merkle root: run verify on this segment", path: path)
        }
        let tree = MerkleLevels(leaves: leaves)
        var out: [RecordProof] = []
        for ordinal in ordinals {
            guard Int(ordinal) < records.count else {
                throw LogFormatError(
                    .invalidState, "record \(ordinal) is past the \(records.count) records of the segment", path: path)
            }
            out.append(
                RecordProof(
                    location: RecordLocation(nodeID: nodeID, segmentSequence: sequence, ordinal: ordinal),
                    record: records[Int(ordinal)],
                    path: tree.inclusionProof(leafIndex: Int(ordinal)),
                    seal: footer.seal, signature: footer.seal.isSigned ? footer.signature : nil))
        }
        return out
    }
}

/// All aligned perfect subtree hashes of an RFC 6962 tree, so many inclusion proofs cost O(log² n) each
/// instead of O(n): level j holds the hashes of leaves [i·2^j, (i+1)·2^j) for every complete such range.
public struct MerkleLevels: Sendable {
    public let levels: [[Digest32]]

    public init(leaves: [Digest32]) {
        var levels = [leaves]
        while let last = levels.last, last.count >= 2 {
            var next: [Digest32] = []
            next.reserveCapacity(last.count / 2)
            var i = 0
            while i + 1 < last.count {
                next.append(MerkleTree.nodeHash(last[i], last[i + 1]))
                i += 2
            }
            levels.append(next)
        }
        self.levels = levels
    }

    public var size: Int { levels[0].count }

    /// MTH(D[a:b]) of RFC 6962.
    public func hash(_ a: Int, _ b: Int) -> Digest32 {
        let n = b - a
        if n == 0 { return MerkleTree.emptyRoot }
        if n & (n - 1) == 0, a % n == 0 {
            return levels[n.trailingZeroBitCount][a / n]
        }
        let k = Self.largestPowerOfTwo(below: n)
        return MerkleTree.nodeHash(hash(a, a + k), hash(a + k, b))
    }

    /// PATH(m, D[0:n]) of RFC 6962: sibling hashes from the leaf up.
    public func inclusionProof(leafIndex m: Int) -> [Digest32] {
        var path: [Digest32] = []
        var a = 0
        var b = size
        var stack: [Digest32] = []
        while b - a > 1 {
            let k = Self.largestPowerOfTwo(below: b - a)
            if m < a + k {
                stack.append(hash(a + k, b))
                b = a + k
            } else {
                stack.append(hash(a, a + k))
                a += k
            }
        }
        // Collected root-side first; the path lists the leaf side first.
        path = stack.reversed()
        return path
    }

    static func largestPowerOfTwo(below n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }
}
