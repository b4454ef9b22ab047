import Crypto
import Foundation
import ObjectStore
import RemoteStore
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

/// `auditq retention plan|apply --store` against a real RGW bucket with Object Lock: expiry leaves tombstones,
/// legal holds and COMPLIANCE locks keep segments (a lock is reported as a hold, not an error), the chain verifies
/// across tombstones, and a held segment deleted behind the job's back is named by verify.
@Suite(.ownThreads, .enabled(if: RGWTestStore.configured, Comment(rawValue: RGWTestStore.why)))
struct BucketRetentionTests {
    static let auditq = ChildProcess.product("auditq")

    struct Item: Equatable {
        var action: String
        var sequence: UInt64
        var holds: [String]
    }

    static func items(_ json: String) throws -> [Item] {
        let o = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        return (o?["items"] as? [[String: Any]] ?? []).map {
            Item(
                action: $0["action"] as? String ?? "?", sequence: UInt64($0["sequence"] as? Int ?? -1),
                holds: $0["holds"] as? [String] ?? [])
        }.sorted { $0.sequence < $1.sequence }
    }

    @Test func expiryHoldsAndObjectLockOnTheBucket() async throws {
        // Segments of 2023-11-14/15 in a bucket with Object Lock; the two oldest under COMPLIANCE for a day.
        let tmp = TempDir("bucket-retention")
        defer { tmp.remove() }
        var options = WriterOptions()
        options.targetBlockBytes = 2 << 10
        options.maxSegmentBytes = 12 << 10
        options.columnBlockRows = 7
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        let events = (0..<1_200).map { i in RandomEvents.small(seed: 77 &* 1_000_003 &+ UInt64(i)) }
        for chunk in stride(from: 0, to: events.count, by: 25) {
            try writer.append(events[chunk..<min(events.count, chunk + 25)])
            try writer.flush()
            try writer.rollIfNeeded()
        }
        try writer.close()
        let s3 = try RGWTestStore.client()
        let location = S3Location(bucket: try await RGWTestStore.freshBucket(s3, objectLock: true), prefix: "audit")
        let entries = try tmp.dataDirectory.currentCatalog(repair: false).entries.sorted { $0.sequence < $1.sequence }
        #expect(entries.count >= 6)
        var keys: [UInt64: String] = [:]
        for (i, entry) in entries.enumerated() {
            let bytes = try FileIO.readFile(tmp.dataDirectory.path(relative: entry.relativePath))
            let key = BucketLayout.segmentKey(entry.seal)
            let sha = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            let lock = i < 2 ? ObjectLock(mode: .compliance, retainUntil: Date().addingTimeInterval(86_400)) : nil
            _ = try await s3.put(location, key: key, body: bytes, metadata: ["sha256": sha], lock: lock)
            keys[entry.sequence] = key
        }
        let locked = Set(entries.prefix(2).map(\.sequence))
        let heldSequence = entries[3].sequence
        let policy = tmp.path + "/policy.yaml"
        try """
        retention:
          expire_after_days: 30
          legal_holds:
            - {name: case-1, segments: [\(heldSequence)]}
            - {name: case-u, user: user-7, from: 2023-11-15T01:00:00Z, to: 2023-11-15T05:00:00Z}
        """.write(toFile: policy, atomically: true, encoding: .utf8)
        let config = tmp.path + "/s3.env"
        try ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]
            .compactMap { k in RGWTestStore.environment[k].map { "\(k)=\($0)" } }.joined(separator: "\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let store = "s3://\(location.bucket)/audit"
        let now = ["--config", policy, "--now", "2024-06-01T00:00:00Z"]
        func auditq(_ arguments: [String], s3: Bool = true) throws -> ChildOutput {
            try ChildProcess.run(
                Self.auditq,
                arguments + (s3 ? ["--s3-config", config, "--cache-dir", tmp.path + "/cache"] : []),
                environment: ["PATH": "/usr/bin:/bin", "NO_COLOR": "1"])
        }

        // The plan over the bucket is the plan over the same data local, but for the locks.
        let local = try auditq(
            ["retention", "plan", "--data", tmp.dataDirectory.root, "--format", "json"] + now, s3: false)
        #expect(local.status == 0, "\(local.stderr)")
        let plan = try auditq(["retention", "plan", "--store", store, "--format", "json"] + now)
        #expect(plan.status == 0, "\(plan.stderr)")
        let expected = try Self.items(local.stdout).map { i -> Item in
            guard locked.contains(i.sequence) else { return i }
            return Item(action: "held", sequence: i.sequence, holds: i.holds + [BucketSegments.objectLockHold])
        }
        let planned = try Self.items(plan.stdout)
        #expect(planned == expected, "\(plan.stdout)")
        #expect(planned.filter { $0.action == "held" }.count >= 3, "\(plan.stdout)")
        #expect(
            planned.contains { $0.action == "held" && $0.holds.contains("case-u") }, "a user hold read over the bucket")
        let expiring = Set(planned.filter { $0.action == "expire" }.map(\.sequence))
        #expect(!expiring.isEmpty)

        // Apply: exit 0 with the locked segments held (not errors), every other expired one gone, tombstoned.
        let applied = try auditq(["retention", "apply", "--store", store] + now)
        #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
        #expect(applied.stdout.contains("Object Lock"), "\(applied.stdout)")
        for (sequence, key) in keys {
            let segment = try await s3.head(location, key: key)
            let tomb = try await s3.head(
                location, key: BucketLayout.tombstoneKey(node: entries[0].nodeID, sequence: sequence))
            if expiring.contains(sequence) {
                #expect(segment == nil, "\(key) expired")
                #expect(tomb != nil, "\(key) has its tombstone")
            } else {
                #expect(segment != nil, "\(key) kept")
                #expect(tomb == nil, "\(key) has no tombstone")
            }
        }
        // The locked versions are still there and still locked.
        for s in locked { #expect(try await s3.head(location, key: keys[s]!)?.lockMode == "COMPLIANCE") }

        // Again: nothing more to do.
        let again = try auditq(["retention", "apply", "--store", store, "--format", "json"] + now)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try Self.items(again.stdout).allSatisfy { $0.action == "held" }, "\(again.stdout)")

        // The chain verifies across segments and tombstones, alone and with the local directory.
        let clean = try auditq(["verify", "--store", store])
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        let both = try auditq(["verify", "--store", store, "--data", tmp.dataDirectory.root])
        #expect(both.status == 0, "\(both.stdout)\(both.stderr)")
        // Queries over the bucket see only what is left.
        let stats = try auditq(["stats", "--store", store, "--format", "json"])
        let left = entries.count - expiring.count
        #expect(stats.stdout.contains("\"tier\":\"remote\",\"segments\":\(left)"), "\(stats.stdout)")

        // A held segment deleted behind the job's back (no lock on it) is named by verify.
        try await s3.delete(location, key: keys[heldSequence]!)
        let broken = try auditq(["verify", "--store", store])
        #expect(broken.status == 3, "\(broken.stdout)\(broken.stderr)")
        #expect(broken.stdout.contains("segment \(heldSequence) of node"), "\(broken.stdout)")
    }
}
