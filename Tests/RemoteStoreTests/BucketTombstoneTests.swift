import Foundation
import ObjectStore
import RemoteStore
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

/// Retention on the bucket when a tombstone is already under a segment's key, against RGW: written by an
/// interrupted run or by the collector's own local expiry (same seal: the job finishes, deleting the segment), or
/// a tombstone of another node's segment under the key (refused and named; the segment stays).
@Suite(.ownThreads, .enabled(if: RGWTestStore.configured, Comment(rawValue: RGWTestStore.why)))
struct BucketTombstoneTests {
    static let policy = RetentionPolicy(expireAfterDays: 30)
    /// 2024-06-01T00:00:00Z: every test segment (November 2023) is old enough to expire.
    static let now: UInt64 = 1_717_200_000_000_000_000

    /// The tombstone of the sealed segment at `path` as a job applying `policy` at `at` writes it.
    static func tombstone(_ path: String, policy: String, at: UInt64) throws -> [UInt8] {
        let reader = try SegmentReader(path: path, sealed: true)
        let footer = try #require(reader.footer)
        return Tombstone(
            seal: footer.seal, signature: footer.signature, tier: .hot, blockCount: footer.blockCount,
            fileSize: UInt64(reader.file.count), expiredAtUnixNano: at,
            expireAfterNanos: 30 * UnixTime.nanosPerDay, policy: policy
        ).encoded()
    }

    @Test func aTombstoneAlreadyThereIsFinishedNotWrittenAgain() async throws {
        let shipped = try await ShippedStore.make(count: 600, seed: 41)
        defer { shipped.tmp.remove() }
        let entries = try shipped.directory.currentCatalog(repair: false).entries.sorted { $0.sequence < $1.sequence }
        let first = entries[0]
        let node = first.nodeID
        // The collector expired it locally (its own policy line and instant) and shipped the tombstone; or a run
        // was killed between writing the tombstone and deleting the segment.
        let written = try Self.tombstone(
            shipped.directory.path(relative: first.relativePath), policy: "collector local expiry",
            at: Self.now - 86_400_000_000_000)
        let tombKey = BucketLayout.tombstoneKey(node: node, sequence: first.sequence)
        _ = try await shipped.s3.put(shipped.location, key: tombKey, body: written)

        let bucket = try shipped.bucket()
        let plan = try await onThread { try bucket.retentionPlan(policy: Self.policy, now: Self.now) }
        let actions = Dictionary(uniqueKeysWithValues: plan.items.map { ($0.sequence, $0.action) })
        #expect(actions[first.sequence] == .finish, "\(plan.items)")
        #expect(entries.dropFirst().allSatisfy { actions[$0.sequence] == .expire }, "\(plan.items)")

        let report = try await onThread { try bucket.applyRetention(policy: Self.policy, now: Self.now) }
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.done.count == entries.count)
        for e in entries {
            #expect(try await shipped.s3.head(shipped.location, key: shipped.keys[e.sequence]!) == nil, "\(e.sequence)")
            let tomb = BucketLayout.tombstoneKey(node: node, sequence: e.sequence)
            #expect(try await shipped.s3.head(shipped.location, key: tomb) != nil, "\(e.sequence) tombstoned")
        }
        // The tombstone that was there is kept as it was: not replaced by this run's.
        #expect(try await shipped.s3.get(shipped.location, key: tombKey).bytes == written)
        // Nothing left to do; the bucket's chain runs through the tombstones.
        let again = try await onThread { try bucket.retentionPlan(policy: Self.policy, now: Self.now) }
        #expect(again.items.isEmpty, "\(again.items)")
    }

    @Test func aTombstoneOfAnotherNodesSegmentUnderTheKeyIsRefused() async throws {
        let shipped = try await ShippedStore.make(count: 600, seed: 42)
        defer { shipped.tmp.remove() }
        // A segment of another node (another writer, so another node id) with the same sequence number.
        let other = TempDir("other-node")
        defer { other.remove() }
        var options = WriterOptions()
        options.targetBlockBytes = 2 << 10
        options.maxSegmentBytes = 12 << 10
        options.columnBlockRows = 7
        let writer = try SegmentWriter(directory: other.dataDirectory, options: options, logger: quietLogger)
        try writer.append((0..<300).map { RandomEvents.small(seed: 9_000 + UInt64($0)) })
        try writer.close()
        let foreign = try #require(try other.dataDirectory.currentCatalog(repair: false).entries.first)
        let entries = try shipped.directory.currentCatalog(repair: false).entries.sorted { $0.sequence < $1.sequence }
        let target = try #require(entries.first { $0.sequence == foreign.sequence })
        #expect(foreign.nodeID != target.nodeID)
        let tombKey = BucketLayout.tombstoneKey(node: target.nodeID, sequence: target.sequence)
        _ = try await shipped.s3.put(
            shipped.location, key: tombKey,
            body: try Self.tombstone(
                other.dataDirectory.path(relative: foreign.relativePath), policy: "another node's", at: Self.now))

        let bucket = try shipped.bucket()
        let report = try await onThread { try bucket.applyRetention(policy: Self.policy, now: Self.now) }
        // The job names the object and the conflict, deletes nothing under that key, and expires the rest.
        #expect(report.problems.count == 1, "\(report.problems)")
        let url = "s3://\(shipped.location.bucket)/audit/\(tombKey)"
        #expect(report.problems.first?.contains(url) == true, "\(report.problems)")
        #expect(report.problems.first?.contains("another seal") == true, "\(report.problems)")
        #expect(
            try await shipped.s3.head(shipped.location, key: shipped.keys[target.sequence]!) != nil, "the segment stays"
        )
        #expect(report.done.count == entries.count - 1)
        for e in entries where e.sequence != target.sequence {
            #expect(try await shipped.s3.head(shipped.location, key: shipped.keys[e.sequence]!) == nil)
        }
    }
}
