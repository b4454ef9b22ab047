import PropertyBased
import SyntheticTraffic
import Testing

@testable import LogFormat

/// Random records in arrival order: a few users, services and traces, shuffled arrival, shared start times.
private func randomRecords(seed: UInt64, count: Int) -> [SealOrderFields] {
    var g = SplitMix64(seed: seed)
    let users = ["alice", "bob", "zoë", "", "carol@example.com"]
    let services = ["edge", "orders", "db", "analytics"]
    let traces = max(1, count / 3)
    return (0..<count).map { _ in
        let t = g.next() % UInt64(traces + 1)  // trace 0 stands for "no trace id"
        let hasUser = g.next() % 3 == 0
        return SealOrderFields(
            traceID: t == 0 ? TraceID(high: 0, low: 0) : TraceID(high: t, low: 7),
            startTimeUnixNano: 1_000 + g.next() % 50,
            user: hasUser ? users[Int(g.next() % UInt64(users.count))] : nil,
            service: services[Int(g.next() % UInt64(services.count))],
            isEdgeAccess: g.next() % 4 == 0)
    }
}

/// The order written out from its definition, the slow way: for checking `SealOrder` against.
private func referenceOrder(_ records: [SealOrderFields]) -> [Int] {
    struct Key {
        var hasUser: Bool
        var name: [UInt8]
        var traceStart: UInt64
        var traceID: TraceID
        var groupFirstArrival: Int
        var start: UInt64
        var arrival: Int
    }
    var keys: [Key] = []
    for (i, r) in records.enumerated() {
        let members =
            r.traceID.isZero ? [i] : records.indices.filter { records[$0].traceID == r.traceID }
        let byTime = members.sorted { (records[$0].startTimeUnixNano, $0) < (records[$1].startTimeUnixNano, $1) }
        let named =
            byTime.first { records[$0].isEdgeAccess && records[$0].user != nil }
            ?? byTime.first { records[$0].user != nil }
        let name = named.flatMap { records[$0].user }
        keys.append(
            Key(
                hasUser: name != nil, name: Array((name ?? records[byTime[0]].service).utf8),
                traceStart: records[byTime[0]].startTimeUnixNano, traceID: r.traceID,
                groupFirstArrival: byTime[0], start: r.startTimeUnixNano, arrival: i))
    }
    return keys.indices.sorted { x, y in
        let a = keys[x]
        let b = keys[y]
        if a.hasUser != b.hasUser { return a.hasUser }
        if a.name != b.name { return a.name.lexicographicallyPrecedes(b.name) }
        if a.traceStart != b.traceStart { return a.traceStart < b.traceStart }
        if a.traceID != b.traceID { return a.traceID < b.traceID }
        if a.groupFirstArrival != b.groupFirstArrival { return a.groupFirstArrival < b.groupFirstArrival }
        return (a.start, a.arrival) < (b.start, b.arrival)
    }
}

@Suite struct SealOrderTests {
    @Test func emptyAndSingle() {
        #expect(SealOrder.permutation([]).isEmpty)
        let one = SealOrderFields(
            traceID: TraceID(high: 1, low: 2), startTimeUnixNano: 5, user: nil, service: "s", isEdgeAccess: false)
        #expect(SealOrder.permutation([one]) == [0])
    }

    /// The edge's user names the trace even when a downstream hop carries another user and starts earlier.
    @Test func theEdgeUserNamesTheTrace() {
        let t1 = TraceID(high: 1, low: 1)
        let t2 = TraceID(high: 2, low: 2)
        let records = [
            SealOrderFields(traceID: t1, startTimeUnixNano: 10, user: "zed", service: "api", isEdgeAccess: true),
            SealOrderFields(traceID: t2, startTimeUnixNano: 20, user: "amy", service: "api", isEdgeAccess: true),
            SealOrderFields(traceID: t1, startTimeUnixNano: 5, user: "amy", service: "db", isEdgeAccess: false),
            SealOrderFields(traceID: t2, startTimeUnixNano: 25, user: nil, service: "db", isEdgeAccess: false),
            SealOrderFields(traceID: .zero, startTimeUnixNano: 1, user: nil, service: "cron", isEdgeAccess: false),
        ]
        // amy's trace t2 (edge + db hop), then zed's trace t1 (db hop first by time, then the edge), then cron.
        #expect(SealOrder.permutation(records) == [1, 3, 2, 0, 4])
    }

    @Test func matchesTheDefinitionOnRandomRecords() async {
        await propertyCheck(count: 200, input: Gen.uint64(), Gen.int(in: 0...120)) { seed, count in
            let records = randomRecords(seed: seed, count: count)
            let order = SealOrder.permutation(records)
            #expect(order.sorted() == Array(records.indices), "not a permutation (seed \(seed))")
            #expect(order == referenceOrder(records), "seed \(seed), \(count) records")
            // Every trace is one contiguous run.
            var seen = Set<TraceID>()
            var previous: TraceID?
            for i in order where !records[i].traceID.isZero {
                let t = records[i].traceID
                if t != previous { #expect(seen.insert(t).inserted, "trace \(t) split (seed \(seed))") }
                previous = t
            }
        }
    }
}
