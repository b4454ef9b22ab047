// The retention policy applied to a bucket's segments (docs/object-store.md, "Retention on the bucket"): expiry
// leaves a tombstone object beside the node's segments before the segment object is deleted, legal holds are the
// policy's, and an object under Object Lock is not deleted before its date: it is reported as held by the lock.
// The archive tier has no meaning in the bucket (objects are create-only, so a segment is never rewritten there):
// a segment old enough for it stays as shipped.
import Crypto
import Foundation
import LogFormat
import ObjectStore
import StoreQuery

extension BucketSegments {
    /// The name the plan gives a segment that Object Lock keeps, in `holds`.
    public static let objectLockHold = "object-lock"

    /// What applying `policy` at `now` would do to the bucket's segments: expire (tombstone, then delete), hold
    /// (a legal hold or Object Lock keeps it), finish (a tombstone is already there: an interrupted run; the
    /// segment object goes). Segments not old enough, and those old enough only for the archive tier, are counted
    /// unchanged. Object Lock is read with a HEAD of each segment old enough to expire.
    public func retentionPlan(policy: RetentionPolicy, now: UInt64) throws -> RetentionPlan {
        let entries = try self.entries()
        let tombstones = try Blocking.run { () async throws -> Set<String> in
            self.stats.listed()
            let root = self.bucket.prefix.isEmpty ? "" : self.bucket.prefix + "/"
            let keys = try await self.client.listAll(bucket: self.bucket.bucket, prefix: root).map {
                String($0.key.dropFirst(root.count))
            }
            return Set(
                keys.filter {
                    if case .tombstone? = BucketLayout.parse($0) { return true }
                    return false
                })
        }
        let day = UnixTime.nanosPerDay
        var items: [RetentionPlan.Item] = []
        var candidates: [(RetentionPlan.Item, CatalogEntry)] = []
        var unchanged = 0
        for entry in entries {
            let seal = entry.seal
            var item = RetentionPlan.Item(
                action: .expire, relativePath: entry.relativePath, nodeID: seal.nodeID, sequence: seal.sequence,
                tier: entry.tier, recordCount: seal.recordCount, minTime: seal.minTime, maxTime: seal.maxTime,
                bytesBefore: entry.fileSize, bytesAfter: entry.fileSize, holds: [], note: "")
            if tombstones.contains(BucketLayout.tombstoneKey(node: seal.nodeID, sequence: seal.sequence)) {
                item.action = .finish
                item.bytesAfter = 0
                item.note = "its tombstone is in the bucket: the segment object goes"
                items.append(item)
                continue
            }
            let age = now > seal.maxTime ? now - seal.maxTime : 0
            guard let days = policy.expireAfterDays, age >= UInt64(days) * day else {
                unchanged += 1
                continue
            }
            item.holds = try RetentionJob.holds(policy, covering: entry) { () throws(LogFormatError) in
                try self.open(entry)
            }
            item.note = "newest record \(age / day) days old"
            candidates.append((item, entry))
        }
        // Object Lock: the retention date each candidate's current version carries.
        let candidateKeys = candidates.map(\.1.relativePath)
        let locks = try Blocking.run {
            try await concurrentMap(candidateKeys, width: self.width) { key in
                try await self.client.head(self.bucket, key: key)
            }
        }
        for ((candidate, _), head) in zip(candidates, locks) {
            var item = candidate
            if let head, Self.lockedUntil(head, now: now) != nil {
                item.holds.append(Self.objectLockHold)
                item.note =
                    "Object Lock \(head.lockMode ?? "") until \(head.lockRetainUntil ?? "?")"
                    + (item.holds.count > 1 ? "; held by " + item.holds.dropLast().joined(separator: ", ") : "")
            } else if !item.holds.isEmpty {
                item.note = "held by " + item.holds.joined(separator: ", ")
            }
            if item.holds.isEmpty {
                item.bytesAfter = UInt64(Tombstone.fixedSize + 4 + policy.summary.utf8.count + 2)
            } else {
                item.action = .held
            }
            items.append(item)
        }
        items.sort { ($0.nodeID, $0.sequence) < ($1.nodeID, $1.sequence) }
        return RetentionPlan(now: now, items: items, unchanged: unchanged)
    }

    /// The retention date of an object's lock when it is still in the future at `now`, in Unix ns.
    static func lockedUntil(_ info: ObjectInfo, now: UInt64) -> UInt64? {
        guard let text = info.lockRetainUntil, info.lockMode != nil else { return nil }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        guard let date = f.date(from: text) ?? plain.date(from: text) else {
            return UInt64.max  // a lock whose date cannot be read is taken as holding
        }
        let until = UInt64(max(0, date.timeIntervalSince1970) * 1e9)
        return until > now ? until : nil
    }

    /// Applies `policy` at `now`: for each segment to expire, its tombstone is written create-only under
    /// `<node>/tombstones/<seq>.tomb` and checked, then the segment object is deleted (with its version id on a
    /// versioned bucket, so the bytes go, not just the current name). A segment under Object Lock is held, never
    /// an error; a DELETE the store refuses is reported and retried by the next run. A run killed between the two
    /// steps leaves the tombstone beside the segment, which the next run finishes.
    public func applyRetention(policy: RetentionPolicy, now: UInt64) throws -> RetentionJob.Report {
        let plan = try retentionPlan(policy: policy, now: now)
        var done: [RetentionPlan.Item] = []
        var problems: [String] = []
        for item in plan.items where item.action == .expire || item.action == .finish {
            do {
                var finished = item
                finished.bytesAfter = try Blocking.run { try await self.expireObject(item, policy: policy, now: now) }
                done.append(finished)
            } catch {
                problems.append("\(url(item.relativePath)): \(error)")
            }
        }
        return RetentionJob.Report(plan: plan, done: done, problems: problems)
    }

    /// Tombstone (unless already there, for `finish`), then delete. Returns the tombstone's size.
    func expireObject(_ item: RetentionPlan.Item, policy: RetentionPolicy, now: UInt64) async throws -> UInt64 {
        let key = BucketLayout.tombstoneKey(node: item.nodeID, sequence: item.sequence)
        guard let head = try await client.head(bucket, key: item.relativePath) else {
            throw LogFormatError(.io, "listed, then gone", path: url(item.relativePath))
        }
        if Self.lockedUntil(head, now: now) != nil {
            throw LogFormatError(
                .invalidState, "under Object Lock until \(head.lockRetainUntil ?? "?")", path: url(item.relativePath))
        }
        let file = try cacheFile(
            ListedSegment(
                key: item.relativePath, node: item.nodeID, sequence: item.sequence, size: Int(item.bytesBefore),
                etag: (head.etag ?? "").filter { $0 != "\"" && !$0.isWhitespace }))
        let reader = try SegmentReader(source: file, sealed: true)
        guard let footer = reader.footer, let days = policy.expireAfterDays else {
            throw LogFormatError(.invalidState, "not sealed or no expiry in the policy", path: url(item.relativePath))
        }
        let tombstone = Tombstone(
            seal: footer.seal, signature: footer.signature, tier: item.tier, blockCount: footer.blockCount,
            fileSize: item.bytesBefore, expiredAtUnixNano: now, expireAfterNanos: UInt64(days) * UnixTime.nanosPerDay,
            policy: policy.summary)
        let encoded = tombstone.encoded()
        let sha = SHA256.hash(data: encoded).map { String(format: "%02x", $0) }.joined()
        let size: UInt64
        if case .alreadyExists = try await client.put(bucket, key: key, body: encoded, metadata: ["sha256": sha]) {
            // Written by an interrupted run, or shipped by the collector after a local expiry: it must record
            // this very segment (its policy line and instant may differ).
            let bytes = try await client.get(bucket, key: key).bytes
            guard try Tombstone.decode(bytes, path: url(key)).seal == footer.seal else {
                throw LogFormatError(.integrity, "a tombstone of another seal is under this key", path: url(key))
            }
            size = UInt64(bytes.count)
        } else {
            guard let check = try await client.head(bucket, key: key), check.size == UInt64(encoded.count),
                check.metadata["sha256"] == sha
            else {
                throw LogFormatError(.io, "the tombstone did not read back as written", path: url(key))
            }
            size = UInt64(encoded.count)
        }
        try await client.delete(bucket, key: item.relativePath, versionID: head.versionID)
        return size
    }
}
