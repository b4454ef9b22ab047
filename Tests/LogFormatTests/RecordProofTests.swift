import PropertyBased
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

@Suite struct RecordProofTests {
    @Test func levelProofsEqualTheReferenceProofs() async {
        await propertyCheck(count: 80, input: Gen.int(in: 1...300)) { n in
            let leaves = (0..<n).map {
                MerkleTree.leafHash([UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)])
            }
            let levels = MerkleLevels(leaves: leaves)
            #expect(levels.hash(0, n) == MerkleTree.root(leafHashes: leaves))
            for m in Set([0, n - 1, n / 2, n / 3]) {
                #expect(
                    levels.inclusionProof(leafIndex: m)
                        == (try? MerkleTree.inclusionProof(leafIndex: m, leafHashes: leaves)))
            }
        }
    }

    func sealedStore(_ tmp: TempDir, signer: SealSigner? = nil) throws -> AuditStore {
        var options = WriterOptions()
        options.signer = signer
        options.targetBlockBytes = 4 << 10
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        for s in 0..<3 {
            try writer.append((0..<150).map { RandomEvents.small(seed: UInt64(s * 1000 + $0)) })
            try writer.seal()
        }
        return try AuditStore(directories: [tmp.dataDirectory])
    }

    @Test func proofsForQueryResultsVerifyAgainstTheirSeals() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let signer = SealSigner.generate()
        let store = try sealedStore(tmp, signer: signer)
        let found = try store.search(EventQuery(terms: [.service("svc-2")]))
        #expect(found.count > 10)
        let proofs = try store.proofs(for: found.map(\.location))
        #expect(proofs.count == found.count)
        for proof in proofs {
            #expect(proof.problems(publicKey: signer.publicKey).isEmpty)
            #expect((1...8).contains(proof.path.count))  // at most ceil(log2 150) siblings
        }
        let byLocation = Dictionary(uniqueKeysWithValues: proofs.map { ($0.location, $0) })
        for r in found { #expect(try byLocation[r.location]?.event() == r.event) }
    }

    @Test func tamperedProofsAreRefusedWithAReason() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let signer = SealSigner.generate()
        let store = try sealedStore(tmp, signer: signer)
        let r = try #require(try store.search(EventQuery(terms: [.service("svc-1")])).first)
        let proof = try #require(try store.proofs(for: [r.location]).first)

        var edited = proof
        edited.record[edited.record.count - 1] ^= 1
        #expect(edited.problems().contains { $0.contains("does not hash to the seal's Merkle root") })

        var moved = proof
        moved.location.ordinal = (proof.location.ordinal + 1) % UInt32(proof.seal.recordCount)
        #expect(!moved.problems().isEmpty)

        var forgedSeal = proof
        forgedSeal.seal.maxTime += 1  // the root still matches, the signature does not
        #expect(forgedSeal.problems().isEmpty)
        #expect(forgedSeal.problems(publicKey: signer.publicKey) == ["the seal's Ed25519 signature does not verify"])

        #expect(proof.problems(publicKey: SealSigner.generate().publicKey).first?.contains("signed by key") == true)
    }

    @Test func recordsOfUnsealedSegmentsHaveNoProofYet() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        try writer.append([RandomEvents.small(seed: 1)])
        try writer.flush()
        let store = try AuditStore(directories: [tmp.dataDirectory])
        let r = try #require(try store.search(EventQuery()).first)
        #expect(try store.proofs(for: [r.location]).isEmpty)
    }
}
