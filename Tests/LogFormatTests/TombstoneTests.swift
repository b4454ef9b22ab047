import Testing

@testable import LogFormat

@Suite struct TombstoneTests {
    static func tombstone(policy: String) -> Tombstone {
        let seal = SegmentSeal(
            nodeID: NodeID(high: 1, low: 2), sequence: 7, recordCount: 3, minTime: 10, maxTime: 20,
            merkleRoot: .zero, previousSequence: 0, previousRoot: .zero, sealedAtUnixNano: 30)
        return Tombstone(
            seal: seal, signature: [UInt8](repeating: 0, count: FormatConstants.signatureSize), tier: .hot,
            blockCount: 1, fileSize: 4096, expiredAtUnixNano: 99, expireAfterNanos: 5, policy: policy)
    }

    /// A policy longer than the limit is cut between scalars: what decodes is exactly the text kept, and its
    /// bytes are a prefix of the original's.
    @Test(arguments: [0, 1, 2, 3])
    func longPolicyIsCutAtAScalarBoundary(shift: Int) throws {
        let limit = FormatConstants.tombstoneMaxPolicyBytes
        let policy = String(repeating: "a", count: limit - 4 + shift) + String(repeating: "🔐", count: 10)
        let decoded = try Tombstone.decode(Self.tombstone(policy: policy).encoded())
        #expect(decoded.policy.utf8.count <= limit)
        #expect(decoded.policy.utf8.count > limit - 4)
        #expect(policy.utf8.starts(with: decoded.policy.utf8))
        #expect(!decoded.policy.unicodeScalars.contains("\u{FFFD}"))
    }

    @Test func shortPolicyIsKeptWhole() throws {
        let decoded = try Tombstone.decode(Self.tombstone(policy: "expire after 30 days · 🔐").encoded())
        #expect(decoded.policy == "expire after 30 days · 🔐")
    }
}
