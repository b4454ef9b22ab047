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
            switch condition {
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

    /// Directories of generated traffic, one per layout, each in several sealed segments (and some in an open
    /// one); returns every stored record, retry copies included.
    static func build(root: String, seed: UInt64, layouts: [SealLayout]) throws -> (
        [DataDirectory], [SegmentWriter], [AuditEvent]
    ) {
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
            options.columnBlockRows = 16
            options.targetBlockBytes = 4096
            let writer = try SegmentWriter(directory: directory, options: options, logger: quietLogger)
            var part = Array(stored[min(stored.count, d * share)..<min(stored.count, (d + 1) * share)])
            let tail = Bool.random(using: &rng) ? Array(part.suffix(Int.random(in: 0...30, using: &rng))) : []
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
