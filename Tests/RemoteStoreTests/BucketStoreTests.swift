import Crypto
import Foundation
import ObjectStore
import RemoteStore
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

/// Runs `body` on a thread of its own: the store's readers block while the S3 client works in Swift's pool, so
/// they must not run in it.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}

/// A data directory of sealed v2 segments, shipped to a fresh bucket under the collector's key layout.
struct ShippedStore {
    let tmp: TempDir
    let s3: S3Client
    let location: S3Location
    let events: [AuditEvent]
    /// Key (relative to the prefix) of each sealed segment, by sequence.
    var keys: [UInt64: String] = [:]

    var directory: DataDirectory { tmp.dataDirectory }
    var cacheRoot: String { tmp.path + "/cache" }

    /// Trace `low` of the generated events with random leading bytes, as W3C trace ids have: the index maps a
    /// trace id's first four bytes to blocks, and ids that all shared them would send a look-up to every block.
    static func trace(_ low: UInt64) -> TraceID {
        TraceID(high: (low &+ 1) &* 0x9E37_79B9_7F4A_7C15, low: low)
    }

    static func make(count: Int = 1_200, seed: UInt64 = 11, segmentBytes: Int = 12 << 10) async throws -> ShippedStore {
        let tmp = TempDir("remote")
        var options = WriterOptions()
        options.targetBlockBytes = 2 << 10
        options.maxSegmentBytes = segmentBytes
        options.columnBlockRows = 7
        let events = (0..<count).map { i in
            var e = RandomEvents.small(seed: seed &* 1_000_003 &+ UInt64(i))
            e.traceID = Self.trace(e.traceID.low)
            return e
        }
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        for chunk in stride(from: 0, to: count, by: 25) {
            try writer.append(events[chunk..<min(count, chunk + 25)])
            try writer.flush()
            try writer.rollIfNeeded()
        }
        try writer.close()
        let s3 = try RGWTestStore.client()
        var store = ShippedStore(
            tmp: tmp, s3: s3, location: S3Location(bucket: try await RGWTestStore.freshBucket(s3), prefix: "audit"),
            events: events)
        for entry in try tmp.dataDirectory.currentCatalog(repair: false).entries {
            let bytes = try FileIO.readFile(tmp.dataDirectory.path(relative: entry.relativePath))
            let key = BucketLayout.segmentKey(entry.seal)
            let sha = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            _ = try await s3.put(store.location, key: key, body: bytes, metadata: ["sha256": sha])
            _ = try await s3.put(
                store.location, key: BucketLayout.spanKey(node: entry.nodeID, days: BucketLayout.spanDays(entry.seal)),
                body: [], createOnly: false)
            store.keys[entry.sequence] = key
        }
        return store
    }

    /// The bucket as a query reads it. The test segments are a few KiB, so the tail read at open is cut to 1 KiB
    /// (the footer and part of the index; the rest of the index in a second round), or it would fetch them whole.
    func bucket(cache: String? = nil, capacity: Int = 64 << 20, timeRange: ClosedRange<UInt64>? = nil) throws
        -> BucketSegments
    {
        BucketSegments(
            client: s3, location: location,
            cache: try RangeCacheDirectory(root: cache ?? cacheRoot, capacityBytes: capacity), timeRange: timeRange,
            tailBytes: 1 << 10)
    }

    var bytesInBucket: Int {
        get throws {
            try directory.currentCatalog(repair: false).entries.reduce(0) { $0 + Int($1.fileSize) }
        }
    }
}

/// What a query answers, comparable across stores: each record's location and event.
func answer(_ records: [StoredRecord]) -> [String] {
    records.map {
        "\($0.location.segmentSequence)/\($0.location.ordinal) \($0.event.spanID) \($0.event.startTimeUnixNano)"
    }
}

@Suite(.ownThreads, .enabled(if: RGWTestStore.configured, Comment(rawValue: RGWTestStore.why)))
struct BucketStoreTests {
    static let users = (0..<12).map { "user-\($0)" }
    static let day = (lo: UInt64(1_700_000_000_000_000_000), hi: UInt64(1_700_086_400_000_000_000))

    @Test func queriesOverTheBucketEqualTheSameDataLocal() async throws {
        let shipped = try await ShippedStore.make()
        defer { shipped.tmp.remove() }
        let total = try shipped.bytesInBucket
        try await onThread {
            let local = try AuditStore(directories: [shipped.directory])
            #expect(local.sealedSegments.count > 5)
            // Cold: a trace by id opens every segment's footer and index and reads only the blocks it needs.
            let cold = try shipped.bucket()
            let remote = try AuditStore(directories: [], remotes: [cold])
            #expect(remote.sealedSegments.count == local.sealedSegments.count)
            let openBytes = cold.stats.bytes
            let trace = ShippedStore.trace(17)
            #expect(answer(try remote.trace(trace)) == answer(try local.trace(trace)))
            #expect(!(try local.trace(trace)).isEmpty)
            #expect(cold.stats.bytes > openBytes, "the trace's blocks were fetched")
            #expect(cold.stats.bytes < total, "only ranges: \(cold.stats.bytes) of \(total) bytes")
            for user in Self.users {
                let q = EventQuery(terms: [.user(user)], timeRange: Self.day.lo...Self.day.hi)
                #expect(answer(try remote.search(q)) == answer(try local.search(q)), "\(user)")
                let a = try remote.activity(user: user, timeRange: Self.day.lo...Self.day.hi)
                let b = try local.activity(user: user, timeRange: Self.day.lo...Self.day.hi)
                #expect(a.map { answer($0.trace) } == b.map { answer($0.trace) }, "\(user)")
            }
            for low in stride(from: UInt64(1), through: 200, by: 13) {
                let id = ShippedStore.trace(low)
                #expect(answer(try remote.trace(id)) == answer(try local.trace(id)))
            }

            // Warm: another store (another process) over the same cache fetches nothing, and answers the same.
            let warm = try shipped.bucket()
            let again = try AuditStore(directories: [], remotes: [warm])
            for user in Self.users {
                let q = EventQuery(terms: [.user(user)], timeRange: Self.day.lo...Self.day.hi)
                #expect(answer(try again.search(q)) == answer(try local.search(q)))
            }
            #expect(warm.stats.gets == 0, "warm: \(warm.stats.summary)")

            // Listing by day: the days of the range (and those a span marker reaches back from) are listed.
            let ranged = try shipped.bucket(timeRange: Self.day.hi...(Self.day.hi + 1))
            let late = try AuditStore(directories: [], remotes: [ranged])
            let q = EventQuery(terms: [.user("user-3")], timeRange: (Self.day.hi - 3_600_000_000_000)...Self.day.hi)
            #expect(answer(try late.search(q)) == answer(try local.search(q)))
        }
    }

    @Test func localAndRemoteTogetherReadEachSegmentOnce() async throws {
        let shipped = try await ShippedStore.make(seed: 12)
        defer { shipped.tmp.remove() }
        try await onThread {
            let all = try AuditStore(directories: [shipped.directory])
            let allAnswers = try Self.users.map { u in
                answer(try all.search(EventQuery(terms: [.user(u)], timeRange: Self.day.lo...Self.day.hi)))
            }
            // The collector removed its oldest shipped segments locally; the rest are in both places.
            let entries = try shipped.directory.currentCatalog(repair: false).entries
            for e in entries.prefix(entries.count / 2) {
                try FileIO.remove(shipped.directory.path(relative: e.relativePath))
            }
            let both = try AuditStore(directories: [shipped.directory], remotes: [try shipped.bucket()])
            #expect(both.sealedSegments.count == entries.count)
            for (u, expected) in zip(Self.users, allAnswers) {
                let q = EventQuery(terms: [.user(u)], timeRange: Self.day.lo...Self.day.hi)
                #expect(answer(try both.search(q)) == expected, "\(u)")
                var withCopies = q
                withCopies.includeDuplicates = true
                #expect(answer(try both.search(withCopies)).count == expected.count, "no segment read twice")
            }
        }
    }

    @Test func theCacheStaysWithinItsBound() async throws {
        let shipped = try await ShippedStore.make(seed: 13)
        defer { shipped.tmp.remove() }
        let bound = 48 << 10
        try await onThread {
            let local = try AuditStore(directories: [shipped.directory])
            let bucket = try shipped.bucket(capacity: bound)
            let remote = try AuditStore(directories: [], remotes: [bucket])
            for user in Self.users {
                let q = EventQuery(terms: [.user(user)], timeRange: Self.day.lo...Self.day.hi)
                #expect(answer(try remote.search(q)) == answer(try local.search(q)))
            }
            #expect(bucket.cache.allocatedBytes() > bound, "the test fills more than the bound")
            let removed = bucket.cache.trim()
            #expect(removed.objects > 0)
            #expect(bucket.cache.allocatedBytes() <= bound)
            // Evicted objects are fetched again; answers do not change.
            let refetch = try shipped.bucket(capacity: bound)
            let after = try AuditStore(directories: [], remotes: [refetch])
            #expect(refetch.stats.gets > 0)
            for user in Self.users.prefix(4) {
                let q = EventQuery(terms: [.user(user)], timeRange: Self.day.lo...Self.day.hi)
                #expect(answer(try after.search(q)) == answer(try local.search(q)))
            }
        }
    }

    @Test func aSavedListingIsReusedOnlyWhileYoungEnough() async throws {
        var shipped = try await ShippedStore.make(count: 600, seed: 15)
        defer { shipped.tmp.remove() }
        func bucket(_ maxAge: Int) throws -> BucketSegments {
            BucketSegments(
                client: shipped.s3, location: shipped.location,
                cache: try RangeCacheDirectory(root: shipped.cacheRoot, capacityBytes: 64 << 20),
                listingMaxAgeSeconds: maxAge)
        }
        let first = try bucket(3_600)
        let before = try await onThread { try first.entries().count }
        #expect(first.stats.lists == 1)
        // A segment shipped since: a listing reused within its age does not see it; a fresh one does.
        let (sequence, key) = shipped.keys.sorted { $0.key < $1.key }.last!
        let bytes = try await shipped.s3.get(shipped.location, key: key).bytes
        let newKey = key.replacingOccurrences(
            of: DataDirectory.fileName(sequence: sequence, sealed: true), with: "9999999999999999.seg")
        _ = try await shipped.s3.put(shipped.location, key: newKey, body: bytes)
        shipped.keys[9_999_999_999_999_999] = newKey
        let reused = try bucket(3_600)
        #expect(try await onThread { try reused.entries().count } == before)
        #expect(reused.stats.lists == 0)
        let fresh = try bucket(0)
        #expect(try await onThread { try fresh.entries().count } == before + 1)
        #expect(fresh.stats.lists == 1)
    }

    @Test func aReplacedObjectDoesNotInheritTheCachedRanges() async throws {
        let shipped = try await ShippedStore.make(count: 300, seed: 14)
        defer { shipped.tmp.remove() }
        let key = shipped.keys.sorted { $0.key < $1.key }.first!.value
        _ = try await onThread { try AuditStore(directories: [], remotes: [try shipped.bucket()]) }
        // Replace the object with different bytes of the same size: a new ETag, so the cache starts over.
        let original = try await shipped.s3.get(shipped.location, key: key).bytes
        var damaged = original
        damaged[FormatConstants.fileHeaderSize + 60] ^= 0x40
        _ = try await shipped.s3.put(shipped.location, key: key, body: damaged, createOnly: false)
        let fresh = try shipped.bucket()
        try await onThread {
            let store = try AuditStore(directories: [], remotes: [fresh])
            #expect(fresh.stats.gets > 0)
            // The flipped byte is in the first block: reading it fails and names the object.
            do {
                _ = try store.search(EventQuery(terms: [], timeRange: nil))
                Issue.record("the damaged block was read without complaint")
            } catch let error as LogFormatError {
                #expect(error.path == "s3://\(shipped.location.bucket)/audit/\(key)", "\(error)")
                #expect(error.code == .checksumMismatch)
            }
        }
    }
}

@Suite struct RangeArithmeticTests {
    @Test(arguments: [
        ([0..<10, 20..<30], [5..<25], [0..<30]),
        ([0..<10], [10..<20], [0..<20]),
        ([], [3..<4, 1..<2], [1..<2, 3..<4]),
        ([0..<5], [1..<2], [0..<5]),
    ])
    func union(a: [Range<Int>], b: [Range<Int>], expected: [Range<Int>]) {
        #expect(SparseCacheFile.union(a, b) == expected)
    }

    @Test(arguments: [
        ([0..<100], [10..<20, 50..<60], [0..<10, 20..<50, 60..<100]),
        ([10..<20], [0..<100], []),
        ([0..<10, 5..<30], [], [0..<30]),
        ([0..<10], [10..<20], [0..<10]),
        ([15..<25], [0..<20], [20..<25]),
    ])
    func subtract(wanted: [Range<Int>], present: [Range<Int>], expected: [Range<Int>]) {
        #expect(SparseCacheFile.subtract(wanted, present) == expected)
    }

    @Test func coalesceJoinsRangesCloserThanTheGap() {
        #expect(SparseCacheFile.coalesce([0..<10, 15..<20, 100..<110], gap: 10) == [0..<20, 100..<110])
        #expect(SparseCacheFile.coalesce([0..<10, 20..<30], gap: 10) == [0..<10, 20..<30])
    }
}
