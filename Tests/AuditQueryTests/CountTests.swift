// `AuditStore.count(_:by:)` (how many events, grouped): the crafted two-directory store of AccessTests, and a
// brute-force check against every distinct stored event on generated stores.
import Foundation
import PropertyBased
import StoreQuery
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
}
