// `search --limit N` over several data directories (one node each) must give exactly the earliest N records by
// (start time, location) after duplicates are dropped, whatever the catalog order of nodes and segments.
import Foundation
import PropertyBased
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

@Suite struct SearchLimitPropertyTests {
    static let base: UInt64 = 1_793_613_600_000_000_000  // 2026-11-02T10:00:00Z
    static let ms: UInt64 = 1_000_000

    static func event(_ n: UInt64, start: UInt64, user: String) -> AuditEvent {
        AuditEvent(
            kind: .span, startTimeUnixNano: start, endTimeUnixNano: start + 5 * ms, traceID: TraceID(high: 7, low: n),
            spanID: SpanID(value: n), parentSpanID: nil, flags: 1, spanKind: .server, name: "op \(n)", service: "svc",
            source: .app, user: UserIdentity(subject: user, origin: .edge), http: nil, statusCode: .unset,
            attributes: [], resourceAttributes: [])
    }

    /// Two to four data directories, each its own node with a random id, each with one to four sealed segments
    /// over random, overlapping time windows (coarse times, so start times tie), some events stored again in
    /// another segment or node (retry copies), and sometimes an unsealed tail. The writers are returned so the
    /// tails stay open while the store reads them.
    static func build(root: String, seed: UInt64) throws -> ([DataDirectory], [SegmentWriter]) {
        var rng = SplitMix(seed)
        var directories: [DataDirectory] = []
        var writers: [SegmentWriter] = []
        var written: [AuditEvent] = []
        var n: UInt64 = 0
        func nextEvent(_ rng: inout SplitMix, window: UInt64) -> AuditEvent {
            if !written.isEmpty, Int.random(in: 0..<5, using: &rng) == 0 {
                return written[Int.random(in: 0..<written.count, using: &rng)]  // a retry copy
            }
            n += 1
            let start = base + (window + UInt64.random(in: 0...8, using: &rng)) * ms
            let e = event(n, start: start, user: Bool.random(using: &rng) ? "u1" : "u2")
            written.append(e)
            return e
        }
        for d in 0..<Int.random(in: 2...4, using: &rng) {
            let directory = try nodeDirectory(root + "/data\(d)", &rng)
            let writer = try SegmentWriter(directory: directory, options: WriterOptions(), logger: CraftedStore.logger)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let window = UInt64.random(in: 0...60, using: &rng)
                let events = (0..<Int.random(in: 1...6, using: &rng)).map { _ in nextEvent(&rng, window: window) }
                _ = try writer.append(events)
                _ = try writer.seal()
            }
            if Bool.random(using: &rng) {
                let window = UInt64.random(in: 0...60, using: &rng)
                let events = (0..<Int.random(in: 1...3, using: &rng)).map { _ in nextEvent(&rng, window: window) }
                _ = try writer.append(events)
                try writer.flush()
            }
            directories.append(directory)
            writers.append(writer)
        }
        return (directories, writers)
    }

    /// A new data directory at `path` with a node id of its own, drawn from `rng`.
    static func nodeDirectory(_ path: String, _ rng: inout SplitMix) throws -> DataDirectory {
        let directory = DataDirectory(path)
        try FileManager.default.createDirectory(atPath: directory.root, withIntermediateDirectories: true)
        let node = NodeID(high: rng.next(), low: rng.next())
        try (node.hex + "\n").write(toFile: directory.nodeIDPath, atomically: true, encoding: .utf8)
        return directory
    }

    /// Every stored record of every segment file, read file by file without the store, each stored copy.
    static func everyRecord(_ directories: [DataDirectory]) throws -> [StoredRecord] {
        var out: [StoredRecord] = []
        for d in directories {
            let files = try d.listSegmentFiles()
            for (names, sealed) in [(files.sealed, true), (files.open, false)] {
                for name in names { out += try SegmentReader(path: d.segmentsPath + "/" + name, sealed: sealed).scan() }
            }
        }
        return out
    }

    @Test func limitGivesTheEarliestRecordsAcrossNodes() async throws {
        await propertyCheck(
            count: 60, input: Gen.uint64(in: 0...UInt64.max), Gen.int(in: 1...14), Gen.bool, Gen.bool, Gen.bool
        ) { seed, limit, byUser, timed, includeDuplicates in
            var template = Array((NSTemporaryDirectory() + "/auditq-limit-XXXXXX").utf8CString)
            let root = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
            defer { try? FileManager.default.removeItem(atPath: root) }
            let (directories, writers) = try Self.build(root: root, seed: seed)
            let range: ClosedRange<UInt64>? = timed ? (Self.base + 20 * Self.ms)...(Self.base + 50 * Self.ms) : nil
            var query = EventQuery(terms: byUser ? [.user("u1")] : [], timeRange: range, limit: limit)
            query.includeDuplicates = includeDuplicates

            // Brute force: every record, the conditions checked here, sorted, each event's first copy, cut.
            var expected = try Self.everyRecord(directories).filter {
                (range?.contains($0.event.startTimeUnixNano) ?? true) && (!byUser || $0.event.user?.subject == "u1")
            }
            expected.sort { ($0.event.startTimeUnixNano, $0.location) < ($1.event.startTimeUnixNano, $1.location) }
            if !includeDuplicates {
                var kept: [StoredRecord] = []
                for r in expected where !kept.contains(where: { $0.event == r.event }) { kept.append(r) }
                expected = kept
            }
            expected = Array(expected.prefix(limit))

            let got = try AuditStore(directories: directories).search(query)
            #expect(
                got.map(\.location) == expected.map(\.location),
                "seed \(seed), limit \(limit), user \(byUser), timed \(timed), duplicates \(includeDuplicates)")
            withExtendedLifetime(writers) {}
        }
    }
}
