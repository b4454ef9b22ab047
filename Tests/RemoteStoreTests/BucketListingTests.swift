import Foundation
import ObjectStore
import RemoteStore
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

/// A store opened on the bucket's last listing while a fresh LIST runs, and look-ups that fetch only the index
/// parts they read, against RGW.
@Suite(.ownThreads, .enabled(if: RGWTestStore.configured, Comment(rawValue: RGWTestStore.why)))
struct BucketListingTests {
    /// A bucket whose opening fetches only the footer (and then the index head): the test's segments are a few KiB,
    /// so auditq's 16 KiB tail would fetch them whole.
    static func bucket(_ shipped: ShippedStore) throws -> BucketSegments {
        BucketSegments(
            client: shipped.s3, location: shipped.location,
            cache: try RangeCacheDirectory(root: shipped.cacheRoot, capacityBytes: 64 << 20),
            tailBytes: FormatConstants.footerSize)
    }

    /// Each trace's answer, in order.
    static func traces(_ store: AuditStore, _ ids: [TraceID]) throws(LogFormatError) -> [[String]] {
        var out: [[String]] = []
        for id in ids { out.append(answer(try store.trace(id))) }
        return out
    }

    @Test func aStoreOpenedOnTheLastListingAnswersExactlyAsOnTheFreshOne() async throws {
        let shipped = try await ShippedStore.make(count: 900, seed: 21)
        defer { shipped.tmp.remove() }
        let keys = shipped.keys.sorted { $0.key < $1.key }
        let (addedSequence, addedKey) = keys[keys.count / 2]
        let (deletedSequence, deletedKey) = keys[1]
        let addedBytes = try await shipped.s3.get(shipped.location, key: addedKey).bytes
        try await shipped.s3.delete(shipped.location, key: addedKey)
        let ids = stride(from: UInt64(0), through: 400, by: 3).map(ShippedStore.trace)

        // The first process: no listing saved yet, so it lists first; it warms the cache and saves its listing
        // (which lacks `added`).
        try await onThread {
            let b = try Self.bucket(shipped)
            b.startListing()
            let store = try AuditStore(directories: [], remotes: [b], provisional: true)
            #expect(b.stats.provisionalOpenings == 0, "no listing was saved yet")
            #expect(!store.sealedSegments.contains { $0.entry.sequence == addedSequence })
            _ = try store.answer { (s) throws(LogFormatError) in try Self.traces(s, ids) }
        }
        // Between two runs: `added` is shipped, `deleted` is deleted.
        _ = try await shipped.s3.put(shipped.location, key: addedKey, body: addedBytes)
        try await shipped.s3.delete(shipped.location, key: deletedKey)

        try await onThread {
            let local = try AuditStore(directories: [shipped.directory])
            let all = try ids.map { try local.trace($0) }
            #expect(all.contains { $0.contains { $0.location.segmentSequence == deletedSequence } })
            #expect(all.contains { $0.contains { $0.location.segmentSequence == addedSequence } })
            let expected = all.map { answer($0.filter { $0.location.segmentSequence != deletedSequence }) }

            let b = try Self.bucket(shipped)
            b.startListing()
            let store = try AuditStore(directories: [], remotes: [b], provisional: true)
            #expect(b.stats.provisionalOpenings == 1, "opened on the saved listing")
            #expect(store.sealedSegments.contains { $0.entry.sequence == deletedSequence })
            #expect(!store.sealedSegments.contains { $0.entry.sequence == addedSequence })
            var passes = 0
            let got = try store.answer { (s) throws(LogFormatError) -> [[String]] in
                passes += 1
                return try Self.traces(s, ids)
            }
            #expect(passes == 2, "the listing changed: answered again on the fresh one")
            #expect(got == expected)
            #expect(!store.sealedSegments.contains { $0.entry.sequence == deletedSequence })
            #expect(store.sealedSegments.contains { $0.entry.sequence == addedSequence })

            // Nothing changed since: one pass, nothing fetched, the same answer.
            let c = try Self.bucket(shipped)
            c.startListing()
            let third = try AuditStore(directories: [], remotes: [c], provisional: true)
            #expect(c.stats.provisionalOpenings == 1)
            var once = 0
            let again = try third.answer { (s) throws(LogFormatError) -> [[String]] in
                once += 1
                return try Self.traces(s, ids)
            }
            #expect(once == 1)
            #expect(again == expected)
            #expect(c.stats.gets == 0, "\(c.stats.summary)")
            #expect(c.stats.lists == 1)
        }
    }

    @Test func aDeletedSegmentWhoseBlocksWereNotCachedIsDroppedNotAnError() async throws {
        let shipped = try await ShippedStore.make(count: 600, seed: 23)
        defer { shipped.tmp.remove() }
        // Opening warms footers and index heads only; the blocks of the deleted segment were never fetched.
        try await onThread { _ = try AuditStore(directories: [], remotes: [try Self.bucket(shipped)]) }
        let (deletedSequence, deletedKey) = shipped.keys.sorted { $0.key < $1.key }[2]
        try await shipped.s3.delete(shipped.location, key: deletedKey)
        try await onThread {
            let local = try AuditStore(directories: [shipped.directory])
            let b = try Self.bucket(shipped)
            let store = try AuditStore(directories: [], remotes: [b], provisional: true)
            #expect(b.stats.provisionalOpenings == 1)
            let q = EventQuery(terms: [], timeRange: nil)
            let got = try store.answer { (s) throws(LogFormatError) in answer(try s.search(q)) }
            #expect(got == answer(try local.search(q).filter { $0.location.segmentSequence != deletedSequence }))
        }
    }

    @Test func anObjectReplacedUnderItsKeyIsReadAfreshNotFromTheLastListingsCache() async throws {
        let shipped = try await ShippedStore.make(count: 300, seed: 24)
        defer { shipped.tmp.remove() }
        let key = shipped.keys.sorted { $0.key < $1.key }.first!.value
        // The first process reads every block (the cache holds the original bytes) and saves its listing.
        let q = EventQuery(terms: [], timeRange: nil)
        try await onThread {
            _ = try AuditStore(directories: [], remotes: [try Self.bucket(shipped)]).search(q)
        }
        // The object is replaced by one with a flipped byte in its first block: same size and seal, new ETag.
        var damaged = try await shipped.s3.get(shipped.location, key: key).bytes
        damaged[FormatConstants.fileHeaderSize + 60] ^= 0x40
        _ = try await shipped.s3.put(shipped.location, key: key, body: damaged, createOnly: false)
        try await onThread {
            let b = try Self.bucket(shipped)
            let store = try AuditStore(directories: [], remotes: [b], provisional: true)
            #expect(b.stats.provisionalOpenings == 1)
            do {
                _ = try store.answer { (s) throws(LogFormatError) in try s.search(q) }
                Issue.record("the replaced object's damaged block was not read: \(b.stats.summary)")
            } catch let error as LogFormatError {
                #expect(error.code == .checksumMismatch, "\(error)")
                #expect(error.path == "s3://\(shipped.location.bucket)/audit/\(key)", "\(error)")
            }
        }
    }

    @Test func aColdLookUpFetchesTheIndexPartsItReadsNotTheIndex() async throws {
        // Segments of about 64 KiB: the header and the footer are further apart than the cache joins ranges.
        let shipped = try await ShippedStore.make(count: 6_000, seed: 22, segmentBytes: 64 << 10)
        defer { shipped.tmp.remove() }
        try await onThread {
            let local = try AuditStore(directories: [shipped.directory])
            let b = try Self.bucket(shipped)
            let store = try AuditStore(directories: [], remotes: [b])
            #expect(store.sealedSegments.count >= 3)
            /// Bytes of the segments' indexes in the cache, of the indexes, of their heads and trace sections.
            func indexBytes() throws -> (present: Int, total: Int, heads: Int, traces: Int) {
                var (present, total, heads, traces) = (0, 0, 0, 0)
                for (d, e) in store.sealedSegments {
                    let r = try store.reader(d, e)
                    let f = try #require(r.file as? SparseCacheFile)
                    let footer = try #require(r.footer)
                    let index = Int(footer.indexOffset)..<Int(footer.indexOffset + footer.indexLength)
                    total += index.count
                    present += f.presentRanges.reduce(0) { $0 + $1.clamped(to: index).count }
                    heads += min(index.count, FormatConstants.blockHeaderSize + SegmentReader.indexHeadGuess(footer))
                    traces += Dictionary(uniqueKeysWithValues: try #require(r.index).partSizes)["index trace"] ?? 0
                }
                return (present, total, heads, traces)
            }
            // Opening reads each index's head (block header, block table, section directory, head CRC) only.
            let opened = try indexBytes()
            #expect(opened.present <= opened.heads, "\(opened)")
            let id = ShippedStore.trace(17)
            #expect(!(try local.trace(id)).isEmpty)
            #expect(answer(try store.trace(id)) == answer(try local.trace(id)))
            // A trace: the trace section (small enough here to come whole), none of the other sections.
            let traced = try indexBytes()
            #expect(traced.present > opened.present)
            #expect(traced.present <= traced.heads + traced.traces, "\(traced)")
            #expect(traced.present < traced.total, "\(traced)")
            for user in BucketStoreTests.users.prefix(3) {
                let q = EventQuery(terms: [.user(user)], timeRange: nil)
                #expect(answer(try store.search(q)) == answer(try local.search(q)))
            }
            let searched = try indexBytes()
            #expect(searched.present > traced.present)
            #expect(searched.present < searched.total, "\(searched)")
            // Checking every section reads them all: over the same cache, what is missing is fetched, and intact.
            for (d, e) in store.sealedSegments { try store.reader(d, e).checkIndex() }
            #expect(try indexBytes().present == searched.total)
        }
    }
}
