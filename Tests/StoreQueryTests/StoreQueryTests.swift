import Foundation
import Logging
import PropertyBased
import SyntheticTraffic
import TestSupport
import Testing

@testable import LogFormat
@testable import StoreQuery

/// The store's index answers must be identical to a brute-force scan of every record.
@Suite struct StoreQueryTests {
    /// Writes `count` small events into several sealed segments plus an unsealed tail; returns them. The first
    /// half is sealed as version 1 (rows, in place), the rest laid out as version 2 in column blocks of a few
    /// rows (so traces are cut across blocks), its first half with the index layouts of writers before the compact
    /// term layouts (docs/format/index.md): every store answer runs over a mixed directory.
    func populate(_ dir: DataDirectory, count: Int, seed: UInt64) throws -> [AuditEvent] {
        var options = WriterOptions()
        options.targetBlockBytes = 2 << 10
        options.maxSegmentBytes = 12 << 10
        options.columnBlockRows = 7
        var rows = options
        rows.sealLayout = .rows
        let events = (0..<count).map { RandomEvents.small(seed: seed &* 1_000_003 &+ UInt64($0)) }
        let half = count / 50 * 25
        do {
            let v1 = try SegmentWriter(directory: dir, options: rows, logger: quietLogger)
            for chunk in stride(from: 0, to: half, by: 25) {
                try v1.append(events[chunk..<min(half, chunk + 25)])
                try v1.flush()
                try v1.rollIfNeeded()
            }
            try v1.close()
        }
        let older = half + (count - half) / 50 * 25
        do {
            var layoutOne = options
            layoutOne.compactIndexTerms = false
            let v2 = try SegmentWriter(directory: dir, options: layoutOne, logger: quietLogger)
            for chunk in stride(from: half, to: older, by: 25) {
                try v2.append(events[chunk..<min(older, chunk + 25)])
                try v2.flush()
                try v2.rollIfNeeded()
            }
            try v2.close()
        }
        let writer = try SegmentWriter(directory: dir, options: options, logger: quietLogger)
        for chunk in stride(from: older, to: count, by: 25) {
            try writer.append(events[chunk..<min(count, chunk + 25)])
            try writer.flush()
            try writer.rollIfNeeded()
        }
        _ = writer  // left unsealed on purpose: the store must read the open segment too
        return events
    }

    func sealedVersions(_ dir: DataDirectory) throws -> Set<UInt16> {
        Set(
            try dir.listSegmentFiles().sealed.map {
                try SegmentReader(path: dir.segmentsPath + "/" + $0, sealed: true).header.version
            })
    }

    /// Whether the version 2 sealed segments' indexes use the compact term layouts.
    func compactIndexes(_ dir: DataDirectory) throws -> Set<Bool> {
        Set(
            try dir.listSegmentFiles().sealed.compactMap {
                let reader = try SegmentReader(path: dir.segmentsPath + "/" + $0, sealed: true)
                return reader.header.version >= 2 ? reader.index?.compactTerms : nil
            })
    }

    static let terms: [EventQuery.Term] = [
        .user("user-3"), .user("user-7@example.com"), .group("admins"), .group("readers"), .service("svc-2"),
        .service("svc-5"), .workload("spiffe://td/ns/a/sa/sa1"), .user("nobody"), .trace(TraceID(high: 1, low: 17)),
    ]

    /// With and without decoded blocks kept (auditq keeps none: it decodes only the rows it needs).
    @Test(arguments: [true, false]) func termAndTimeQueriesEqualBruteForce(cacheDecodedBlocks: Bool) async throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let events = try populate(tmp.dataDirectory, count: 1_500, seed: 5)
        let store = try AuditStore(directories: [tmp.dataDirectory], cacheDecodedBlocks: cacheDecodedBlocks)
        #expect(store.sealedSegments.count > 3)
        #expect(try sealedVersions(tmp.dataDirectory) == [1, 2])
        #expect(try compactIndexes(tmp.dataDirectory) == [false, true])
        let base: UInt64 = 1_700_000_000_000_000_000
        let day: UInt64 = 86_400_000_000_000
        await propertyCheck(
            count: 60,
            input: Gen.int(in: 0...(Self.terms.count - 1)), Gen.int(in: -1...(Self.terms.count - 1)),
            Gen.uint64(in: 0...day), Gen.uint64(in: 0...day), Gen.bool
        ) { a, b, t1, t2, timed in
            var terms = [Self.terms[a]]
            if b >= 0 && b != a { terms.append(Self.terms[b]) }
            let range: ClosedRange<UInt64>? = timed ? (base + min(t1, t2))...(base + max(t1, t2)) : nil
            let query = EventQuery(terms: terms, timeRange: range)
            let expected = events.filter(query.matches).map(\.spanID).sorted()
            let got = (try? store.search(query))?.map(\.event.spanID).sorted()
            #expect(got == expected, "query \(terms) \(String(describing: range))")
        }
    }

    @Test(arguments: [true, false]) func traceLookupsAcrossSegmentsEqualBruteForce(cacheDecodedBlocks: Bool) throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let events = try populate(tmp.dataDirectory, count: 1_200, seed: 9)
        let store = try AuditStore(directories: [tmp.dataDirectory], cacheDecodedBlocks: cacheDecodedBlocks)
        #expect(try sealedVersions(tmp.dataDirectory) == [1, 2])
        for low in UInt64(1)...40 {
            let id = TraceID(high: 1, low: low)
            let expected = events.filter { $0.traceID == id }.map(\.spanID).sorted()
            #expect(try store.trace(id).map(\.event.spanID).sorted() == expected)
        }
        let ids = (UInt64(1)...200).map { TraceID(high: 1, low: $0) }
        let all = try store.traces(ids)
        #expect(all.values.reduce(0) { $0 + $1.count } == events.count)
    }

    /// A trace look-up over several damaged segments names the first of them in the store's order, every time.
    @Test func aTraceLookupOverDamagedSegmentsNamesTheFirstInOrder() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        _ = try populate(tmp.dataDirectory, count: 1_200, seed: 9)
        let sealed = try AuditStore(directories: [tmp.dataDirectory]).sealedSegments
        #expect(sealed.count >= 5)
        // The footer's magic of two segments, one early and one late in the order, overwritten.
        let paths = [sealed[3], sealed[sealed.count - 2]].map { $0.directory.path(relative: $0.entry.relativePath) }
        for path in paths {
            let handle = try #require(FileHandle(forUpdatingAtPath: path))
            try handle.seek(toOffset: try handle.seekToEnd() - 8)
            try handle.write(contentsOf: Data("NOTSEALD".utf8))
            try handle.close()
        }
        let store = try AuditStore(directories: [tmp.dataDirectory])
        for _ in 0..<5 {
            do {
                _ = try store.trace(TraceID(high: 1, low: 7))
                Issue.record("a damaged segment was not refused")
            } catch {
                #expect(error.code == .badMagic && error.path == paths[0], "\(error)")
            }
        }
    }

    @Test func userToTracesJoinReturnsWholeTraces() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let events = try populate(tmp.dataDirectory, count: 800, seed: 11)
        let store = try AuditStore(directories: [tmp.dataDirectory])
        let range: ClosedRange<UInt64> = 0...UInt64.max
        let joined = try store.userTraces(user: "user-4", timeRange: range)
        let mine = events.filter { IndexTerms.matches($0, .user, .string("user-4")) }
        #expect(joined.count == mine.count)
        for (event, trace) in joined {
            let expected = events.filter { $0.traceID == event.event.traceID }.count
            #expect(trace.count == expected)
        }
    }

    @Test func severalDataDirectoriesAreQueriedTogether() throws {
        let a = TempDir()
        defer { a.remove() }
        let b = TempDir()
        defer { b.remove() }
        let ea = try populate(a.dataDirectory, count: 300, seed: 1)
        let eb = try populate(b.dataDirectory, count: 300, seed: 2)
        let store = try AuditStore(directories: [a.dataDirectory, b.dataDirectory])
        let q = EventQuery(terms: [.service("svc-1")])
        #expect(try store.search(q).count == (ea + eb).filter(q.matches).count)
        #expect(try a.dataDirectory.readNodeID() != b.dataDirectory.readNodeID())
    }

    @Test func limitStopsEarly() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        _ = try populate(tmp.dataDirectory, count: 500, seed: 3)
        let store = try AuditStore(directories: [tmp.dataDirectory])
        #expect(try store.search(EventQuery(terms: [.service("svc-1")], limit: 5)).count == 5)
    }

    @Test func warmQueriesHitTheBlockCache() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        _ = try populate(tmp.dataDirectory, count: 500, seed: 4)
        let store = try AuditStore(directories: [tmp.dataDirectory])
        let q = EventQuery(terms: [.user("user-2")])
        let first = try store.search(q)
        let hitsBefore = store.cache.statistics.hits
        #expect(try store.search(q).map(\.location) == first.map(\.location))
        #expect(store.cache.statistics.hits > hitsBefore)
    }
}

@Suite struct DeduplicationTests {
    @Test func retriedBatchesAreStoredTwiceAndShownOnce() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        let batch = (0..<40).map { RandomEvents.small(seed: UInt64($0)) }
        try writer.append(batch)
        try writer.seal()
        try writer.append(batch)  // the client retried: same events again, in a later segment
        try writer.flush()
        // Two events that differ only in an attribute are not duplicates.
        var twin = batch[0]
        twin.attributes.append(Attribute("retry", .bool(true)))
        try writer.append([twin])
        try writer.flush()
        let store = try AuditStore(directories: [tmp.dataDirectory])
        let shown = try store.search(EventQuery())
        #expect(shown.count == 41)
        var all = EventQuery()
        all.includeDuplicates = true
        #expect(try store.search(all).count == 81)
        // The first stored copy is the one kept.
        #expect(shown.allSatisfy { $0.location.segmentSequence == 1 || $0.event == twin })
        let trace = batch[0].traceID
        #expect(try store.trace(trace).count == batch.filter { $0.traceID == trace }.count + 1)
    }
}

extension DeduplicationTests {
    /// In-place deduplication keeps exactly what the definition keeps: the first stored copy of each event, in
    /// order, over runs of equal start times with copies anywhere in the run.
    @Test func dropDuplicatesKeepsTheFirstCopyOfEachEvent() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...60), Gen.uint64(in: 0...UInt64.max)) { n, seed in
            var g = SplitMix64(seed: seed)
            let distinct = (0..<6).map { RandomEvents.small(seed: seed &+ UInt64($0)) }
            var records: [StoredRecord] = []
            for i in 0..<n {
                var e = distinct[Int(g.next() % 6)]
                e.startTimeUnixNano = g.next() % 3  // few start times: long runs of equal times
                let location = RecordLocation(nodeID: NodeID(high: 0, low: 1), segmentSequence: 1, ordinal: UInt32(i))
                records.append(StoredRecord(event: e, location: location))
            }
            AuditStore.sortByTime(&records)
            var expected: [StoredRecord] = []
            for r in records where !expected.contains(where: { $0.event == r.event }) { expected.append(r) }
            var got = records
            AuditStore.dropDuplicates(&got)
            #expect(got.map(\.location) == expected.map(\.location))
        }
    }
}

@Suite struct LaidOutSegmentReadingTests {
    @Test func aLogBesideItsCataloguedSealedFileIsNotReadTwice() throws {
        try TempDir.with { tmp in
            let dir = tmp.dataDirectory
            let events = (0..<120).map { RandomEvents.small(seed: UInt64($0)) }
            let writer = try SegmentWriter(directory: dir, logger: Logger(label: "test"))
            try writer.append(events)
            try writer.flush()
            try writer.sync()
            let log = dir.segmentsPath + "/" + (try #require(try dir.listSegmentFiles().open.first))
            let copy = log + ".copy"
            try FileManager.default.copyItem(atPath: log, toPath: copy)
            try writer.seal()
            // As between the sealed file entering the catalog and the log's removal.
            try FileManager.default.moveItem(atPath: copy, toPath: log)
            let found = try AuditStore(directories: [dir]).search(EventQuery())
            #expect(found.map(\.event.spanID).sorted() == events.map(\.spanID).sorted())
        }
    }
}
