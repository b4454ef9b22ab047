import Crypto
import Foundation
import ObjectStore
import RemoteStore
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

/// `verify` over a bucket and the local directories together, against a real RGW.
@Suite(.ownThreads, .enabled(if: RGWTestStore.configured, Comment(rawValue: RGWTestStore.why)))
struct BucketVerifyTests {
    func verify(_ shipped: ShippedStore, local: [DataDirectory]) async throws -> CombinedVerification {
        try await onThread {
            let outcomes = local.map { (directory: $0, outcome: Verifier.verifyDirectory($0)) }
            return try shipped.bucket().verify(local: outcomes, options: VerifyOptions())
        }
    }

    /// The shipper's ledger entry for a segment (`<data>/shipped/<seq>.seg`: key, size, SHA-256, when checked).
    func writeLedger(_ shipped: ShippedStore) throws {
        let ledger = shipped.directory.root + "/shipped"
        try FileIO.makeDirectories(ledger)
        for (seq, key) in shipped.keys {
            let name = DataDirectory.fileName(sequence: seq, sealed: true)
            let bytes = try FileIO.readFile(shipped.directory.segmentsPath + "/" + name)
            let sha = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            try FileIO.writeAtomically(
                Array("\(shipped.location.key(key))\n\(bytes.count)\n\(sha)\n1700000000\n".utf8),
                to: ledger + "/" + name, directory: ledger)
        }
    }

    @Test func theChainVerifiesAcrossLocalAndRemote() async throws {
        let shipped = try await ShippedStore.make(seed: 21)
        defer { shipped.tmp.remove() }
        let clean = try await verify(shipped, local: [])
        #expect(clean.isValid, "\(clean.bucket.problems + clean.chainProblems)")
        #expect(clean.bucket.segments.count == shipped.keys.count)
        #expect(clean.bucket.segments.allSatisfy { $0.path.hasPrefix("s3://\(shipped.location.bucket)/audit/") })

        // The collector removed its oldest segments after shipping: alone, the directory's chain has a gap;
        // with the bucket, every chain is whole.
        let entries = try shipped.directory.currentCatalog(repair: false).entries
        for e in entries.prefix(entries.count / 2) {
            try FileIO.remove(shipped.directory.path(relative: e.relativePath))
        }
        try shipped.directory.saveCatalog(try shipped.directory.rebuildCatalog().catalog)
        let alone = Verifier.verifyDirectory(shipped.directory)
        #expect(alone.problems.contains { $0.kind == .missingSegment }, "the local chain alone has a gap")
        let together = try await verify(shipped, local: [shipped.directory])
        #expect(together.isValid, "\(together.local.flatMap(\.outcome.problems) + together.chainProblems)")
    }

    @Test func aSegmentDeletedFromTheBucketIsNamed() async throws {
        var shipped = try await ShippedStore.make(seed: 22)
        defer { shipped.tmp.remove() }
        try writeLedger(shipped)
        let sequences = shipped.keys.keys.sorted()
        let gone = sequences[sequences.count / 2]
        let key = shipped.keys[gone]!
        try await shipped.s3.delete(shipped.location, key: key)
        shipped.keys[gone] = nil
        let url = "s3://\(shipped.location.bucket)/audit/\(key)"

        // From the bucket alone: the chain names the missing sequence at the segment after it.
        let remote = try await verify(shipped, local: [])
        #expect(!remote.isValid)
        let chain = remote.chainProblems.filter { $0.kind == .missingSegment }
        #expect(chain.count == 1)
        #expect(chain.first?.expected?.hasPrefix("segment \(gone) of node") == true, "\(chain)")

        // With the collector's directory (its copy removed after shipping): the ledger names the object's key.
        try FileIO.remove(shipped.directory.segmentsPath + "/" + DataDirectory.fileName(sequence: gone, sealed: true))
        try shipped.directory.saveCatalog(try shipped.directory.rebuildCatalog().catalog)
        let both = try await verify(shipped, local: [shipped.directory])
        #expect(
            both.bucket.storeProblems.contains { $0.kind == .missingSegment && $0.file == url },
            "\(both.bucket.problems)")
        #expect(both.chainProblems.contains { $0.kind == .missingSegment })
    }

    @Test func aFlippedByteInAStoredObjectIsCaughtAndNamed() async throws {
        let shipped = try await ShippedStore.make(seed: 23)
        defer { shipped.tmp.remove() }
        // Queries first: the cache holds the good bytes; verify fetches afresh and must not be fooled by them.
        _ = try await onThread { try AuditStore(directories: [], remotes: [try shipped.bucket()]) }
        let (_, key) = shipped.keys.sorted { $0.key < $1.key }[1]
        var bytes = try await shipped.s3.get(shipped.location, key: key).bytes
        bytes[bytes.count / 3] ^= 0x04
        // An overwrite with the stored SHA-256 left as shipped (what a bit flip at rest looks like to a reader).
        let head = try #require(try await shipped.s3.head(shipped.location, key: key))
        _ = try await shipped.s3.put(
            shipped.location, key: key, body: bytes, createOnly: false, metadata: ["sha256": head.metadata["sha256"]!])
        let outcome = try await verify(shipped, local: [])
        #expect(!outcome.isValid)
        let url = "s3://\(shipped.location.bucket)/audit/\(key)"
        let named = outcome.bucket.problems.filter { $0.file == url }
        #expect(named.contains { $0.detail == "the object differs from what was shipped" }, "\(named)")
        #expect(named.contains { $0.kind != .blockDamaged || $0.detail != "the object differs from what was shipped" })
        #expect(
            outcome.bucket.problems.allSatisfy { $0.file == url }, "only the damaged object: \(outcome.bucket.problems)"
        )
        #expect(outcome.bucket.validSegmentCount == shipped.keys.count - 1)
    }
}
