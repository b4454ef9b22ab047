// `AuditStore.count(_:by:)` (how many events, grouped): the crafted two-directory store of AccessTests, and a
// brute-force check against every distinct stored event on generated stores.
import Foundation
import PropertyBased
import StoreQuery
import SyntheticTraffic
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat

@Suite struct CountTests {
    @Test func countsEachEventOnceByEveryKey() throws {
        let s = try ReachStore()
        let store = try s.both
        let byService = try store.count(EventQuery(timeRange: s.day), by: [.service])
        #expect(
            byService == [
                CountGroup(values: ["orders"], count: 4), CountGroup(values: ["edge"], count: 3),
                CountGroup(values: ["synapse"], count: 2), CountGroup(values: ["reporting"], count: 1),
            ])
        let byEdge = try store.count(EventQuery(timeRange: s.day), by: [.edgeStatus, .statusClass])
        #expect(
            byEdge == [
                CountGroup(values: ["-", "unset"], count: 6), CountGroup(values: ["-", "error"], count: 1),
                CountGroup(values: ["200", "2xx"], count: 1), CountGroup(values: ["403", "4xx"], count: 1),
                CountGroup(values: ["502", "5xx"], count: 1),
            ])
        let routes = try store.count(
            EventQuery(terms: [.service("edge")], timeRange: s.day, filter: EventFilter(method: "GET")),
            by: [.route, .user])
        #expect(
            routes == [
                CountGroup(values: ["/admin/users", "bob"], count: 1),
                CountGroup(values: ["/orders/7", "alice"], count: 1),
            ])
        #expect(try store.count(EventQuery(timeRange: 0...1), by: [.service]).isEmpty)
        #expect(try store.count(EventQuery(terms: [.service("no-such")], timeRange: s.day), by: [.user]).isEmpty)
        #expect(
            CountOutput.jsonLine(byEdge[0], keys: [.edgeStatus, .statusClass])
                == "{\"edge_status\":\"-\",\"status_class\":\"unset\",\"count\":6}")
    }

    @Test func countEqualsBruteForce() async throws {
        await propertyCheck(count: 20, input: Gen.uint64(in: 0...UInt64.max), Gen.int(in: 0...6), Gen.int(in: 0...3)) {
            seed, key, condition in
            let tmp = TempDir("auditq-count-prop")
            defer { tmp.remove() }
            let (directories, writers, events) = try ReachPropertyTests.build(root: tmp.path, seed: seed)
            let keys = [CountKey.allCases[key]] + (key % 2 == 0 ? [.statusClass] : [])
            let times = events.map(\.startTimeUnixNano).sorted()
            let range = times[times.count / 4]...times[times.count * 3 / 4]
            var query = EventQuery(timeRange: range)
            switch condition {
            case 1: query.terms = [.service("orders")]
            case 2: query.filter = EventFilter(status: .error)
            case 3: query.filter = EventFilter(pathPrefix: "/api")
            default: break
            }
            var groups: [[String]: Int] = [:]
            for e in Set(events) where query.matches(e) { groups[keys.map { $0.value(e) }, default: 0] += 1 }
            let want = groups.map { CountGroup(values: $0.key, count: $0.value) }.sorted {
                $0.count != $1.count ? $0.count > $1.count : $0.values.lexicographicallyPrecedes($1.values)
            }
            let got = try AuditStore(directories: directories).count(query, by: keys)
            #expect(got == want, "seed \(seed), keys \(keys), condition \(condition)")
            withExtendedLifetime(writers) {}
        }
    }

    /// Counting from the columns equals counting decoded events and a brute-force count of the distinct events,
    /// on stores of version 1 (rows), version 2 (columns, small blocks so time ranges cut them) and both, with
    /// retry copies, events sharing ids and start with another but differing in content, and open segments;
    /// for every grouping, with and without each condition.
    @Test func countFromColumnsEqualsDecodedEventsAndBruteForce() async throws {
        await propertyCheck(
            count: 40, input: Gen.uint64(in: 0...UInt64.max), Gen.int(in: 0...2), Gen.int(in: 0...9)
        ) { seed, layout, condition in
            let tmp = TempDir("auditq-count-columns")
            defer { tmp.remove() }
            let layouts: [[SealLayout]] = [[.rows], [.columns], [.rows, .columns]]
            let (directories, writers, stored) = try Self.build(root: tmp.path, seed: seed, layouts: layouts[layout])
            var rng = SplitMix(seed ^ 0x5EED)
            let times = stored.map(\.startTimeUnixNano).sorted()
            let a = times[Int.random(in: 0..<times.count, using: &rng)]
            let b = times[Int.random(in: 0..<times.count, using: &rng)]
            var query = EventQuery(timeRange: Int.random(in: 0..<6, using: &rng) == 0 ? nil : min(a, b)...max(a, b))
            Self.apply(condition: condition, to: &query)
            let store = try AuditStore(directories: directories)
            for (i, key) in CountKey.allCases.enumerated() {
                let keys = [key] + (i % 2 == 0 ? [CountKey.allCases[(i + 3) % CountKey.allCases.count]] : [])
                var groups: [[String]: Int] = [:]
                let events = query.includeDuplicates ? stored : Array(Set(stored))
                for e in events where query.matches(e) { groups[keys.map { $0.value(e) }, default: 0] += 1 }
                let columns = try store.countFromColumns(query, by: keys)
                #expect(columns == groups, "seed \(seed), layouts \(layouts[layout]), keys \(keys), \(condition)")
                #expect(try store.countByEvents(query, by: keys) == groups, "seed \(seed), keys \(keys)")
            }
            withExtendedLifetime(writers) {}
        }
    }

    /// A count checks the CRC of each column it reads, not the block's payload CRC (docs/format/columns.md,
    /// "Reading some columns"): a flipped byte in a column it does not read (values) leaves its answer as it was,
    /// while a search, which decodes whole rows, reports the damage; a flipped byte in a column it reads (times)
    /// is a checksum mismatch. Retry copies are counted (`includeDuplicates`): comparing two rows with one key
    /// decodes them whole, which checks the block's CRC as every whole decode does.
    @Test(arguments: [ColumnID.values, .times])
    func countChecksTheColumnsItReads(_ column: ColumnID) throws {
        let tmp = TempDir("auditq-count-crc")
        defer { tmp.remove() }
        let (directories, writers, _) = try Self.build(root: tmp.path, seed: 17, layouts: [.columns])
        var query = EventQuery()
        query.includeDuplicates = true
        let before = try AuditStore(directories: directories).countFromColumns(query, by: [.service])
        let directory = directories[0]
        let name = try directory.listSegmentFiles().sealed.sorted()[0]
        let path = directory.segmentsPath + "/" + name
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // The first block's column entries: u16 count, u16 reserved, then 16 bytes each; the columns follow.
        let reader = try SegmentReader(path: path, sealed: true)
        #expect(reader.isColumnBlock(0))
        let payload = Int(reader.blocks[0].offset) + 48
        let entries = Int(bytes[payload]) | Int(bytes[payload + 1]) << 8
        var at = payload + 4 + 16 * entries
        var flipped = false
        for e in 0..<entries {
            let entry = payload + 4 + 16 * e
            let stored = (0..<4).reduce(0) { $0 | Int(bytes[entry + 4 + $1]) << (8 * $1) }
            if bytes[entry] == column.rawValue, stored > 0 {
                bytes[at + stored / 2] ^= 0x5A
                flipped = true
            }
            at += stored
        }
        #expect(flipped, "column \(column) not found in the first block")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let store = try AuditStore(directories: directories)
        if column == .values {
            #expect(try store.countFromColumns(query, by: [.service]) == before)
            #expect(throws: LogFormatError.self) { try store.search(query) }
        } else {
            do {
                _ = try store.countFromColumns(query, by: [.service])
                Issue.record("a count read a damaged times column")
            } catch {
                #expect(error.code == .checksumMismatch, "\(error)")
            }
        }
        withExtendedLifetime(writers) {}
    }

    /// Condition `n` of the property tests: 0 none, 1–4 status and method filters, 5 a path prefix, 6 a minimum
    /// duration, 7 retry copies kept, 8 ledger records kept.
    static func apply(condition n: Int, to query: inout EventQuery) {
        switch n {
        case 1: query.filter = EventFilter(status: .error)
        case 2: query.filter = EventFilter(status: .ok)
        case 3: query.filter = EventFilter(status: .httpClass(4))
        case 4: query.filter = EventFilter(status: .http(200), method: "get")
        case 5: query.filter = EventFilter(pathPrefix: "/api")
        case 6: query.filter = EventFilter(minDurationNanos: 20_000_000)
        case 7: query.includeDuplicates = true
        case 8: query.filter.includeLedgers = true
        default: break
        }
    }

    /// Directories of generated traffic, one per layout, each in several sealed segments (and some in an open
    /// one); returns every stored record, retry copies included. `countRollups`: per directory, whether its version
    /// 2 segments carry the count rollup (default: all). `openTail`: whether the first directory keeps some
    /// records unsealed (default: each directory at random). `withoutTrace`: also copies of some events without a
    /// trace id, ledger records and a log that only looks like one.
    static func build(
        root: String, seed: UInt64, layouts: [SealLayout], countRollups: [Bool]? = nil, openTail: Bool? = nil,
        withoutTrace: Bool = false
    ) throws -> ([DataDirectory], [SegmentWriter], [AuditEvent]) {
        var g = TrafficGenerator(
            configuration: .init(
                seed: seed, userCount: 12, days: 1, requestsPerDay: 400, serviceCount: 5, deniedFraction: 0.1,
                errorFraction: 0.1, analyticsFraction: 0.3))
        var events = (0..<50).flatMap { _ in g.nextRequest() }
        var rng = SplitMix(seed)
        // Another event with the ids and start of one stored: distinct, so counted apart.
        for e in events where Int.random(in: 0..<30, using: &rng) == 0 {
            var other = e
            other.name += " (other)"
            events.append(other)
        }
        if withoutTrace {
            for e in events where Int.random(in: 0..<20, using: &rng) == 0 {
                var loose = e
                loose.traceID = TraceID(high: 0, low: 0)
                events.append(loose)
            }
            for e in events.prefix(3) {
                let ledger = LedgerRecord(
                    periodStart: e.startTimeUnixNano, periodEnd: e.startTimeUnixNano + 1, firstPeriod: false,
                    final: false, receivers: [:], senders: [:]
                ).event
                var named = ledger
                named.attributes = []
                events += [ledger, named]
            }
        }
        var stored: [AuditEvent] = []
        for e in events {
            stored.append(e)
            if Int.random(in: 0..<6, using: &rng) == 0 { stored.append(e) }  // a retry copy
        }
        stored.shuffle(using: &rng)
        var directories: [DataDirectory] = []
        var writers: [SegmentWriter] = []
        let share = (stored.count + layouts.count - 1) / layouts.count
        for (d, layout) in layouts.enumerated() {
            let directory = DataDirectory(root + "/data\(d)")
            try FileManager.default.createDirectory(atPath: directory.root, withIntermediateDirectories: true)
            try (NodeID(high: rng.next(), low: rng.next()).hex + "\n").write(
                toFile: directory.nodeIDPath, atomically: true, encoding: .utf8)
            var options = WriterOptions()
            options.sealLayout = layout
            options.countRollup = countRollups?[d] ?? true
            options.columnBlockRows = 16
            options.targetBlockBytes = 4096
            let writer = try SegmentWriter(directory: directory, options: options, logger: quietLogger)
            var part = Array(stored[min(stored.count, d * share)..<min(stored.count, (d + 1) * share)])
            let tail: [AuditEvent]
            if let openTail {
                tail = openTail && d == 0 ? Array(part.suffix(Int.random(in: 1...30, using: &rng))) : []
            } else {
                tail = Bool.random(using: &rng) ? Array(part.suffix(Int.random(in: 0...30, using: &rng))) : []
            }
            part.removeLast(tail.count)
            while !part.isEmpty {
                let n = min(part.count, Int.random(in: 1...200, using: &rng))
                _ = try writer.append(Array(part.prefix(n)))
                _ = try writer.seal()
                part.removeFirst(n)
            }
            if !tail.isEmpty {
                _ = try writer.append(tail)
                try writer.flush()
            }
            directories.append(directory)
            writers.append(writer)
        }
        return (directories, writers, stored)
    }
}
