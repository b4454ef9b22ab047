// `AuditStore.reachers(of:timeRange:)` (who reached a service, workload, route or dataset): edge cases on a
// crafted store, and a brute-force check against every stored record on generated stores spread over two data
// directories.
import Foundation
import PropertyBased
import StoreQuery
import SyntheticTraffic
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat

/// Writes `batches` into a fresh data directory under `root`, one sealed segment each, and `tail` into an
/// unsealed one. The writer is returned so the tail stays open while a store reads it.
func writeDataDirectory(
    _ root: String, _ name: String, node: NodeID, batches: [[AuditEvent]], tail: [AuditEvent] = [],
    signer: SealSigner? = nil
) throws -> (DataDirectory, SegmentWriter) {
    let directory = DataDirectory(root + "/" + name)
    try FileManager.default.createDirectory(atPath: directory.root, withIntermediateDirectories: true)
    try (node.hex + "\n").write(toFile: directory.nodeIDPath, atomically: true, encoding: .utf8)
    var options = WriterOptions()
    options.signer = signer
    let writer = try SegmentWriter(directory: directory, options: options, logger: quietLogger)
    for batch in batches where !batch.isEmpty {
        _ = try writer.append(batch)
        _ = try writer.seal()
    }
    if !tail.isEmpty {
        _ = try writer.append(tail)
        try writer.flush()
    }
    return (directory, writer)
}

/// Two data directories (two collectors): the edge's records of each request in one, the mesh's in the other.
final class ReachStore: @unchecked Sendable {
    // @unchecked: every property is set in init and only read afterwards.
    let root: String
    let edgeDirectory: DataDirectory
    let meshDirectory: DataDirectory
    let writers: [SegmentWriter]
    static let t0: UInt64 = 1_793_613_600_000_000_000  // 2026-11-02T10:00:00Z
    static let ms: UInt64 = 1_000_000
    static let alice1 = TraceID(high: 0xC1, low: 1)
    static let bobDenied = TraceID(high: 0xC1, low: 2)
    static let etl = TraceID(high: 0xC1, low: 3)
    static let nobody = TraceID(high: 0xC1, low: 4)
    static let alice2 = TraceID(high: 0xC1, low: 5)
    static let etlSubject = "spiffe://cluster.local/ns/batch/sa/etl"
    static let ordersWorkload = "spiffe://cluster.local/ns/shop/sa/orders"

    static func event(
        _ trace: TraceID, _ id: UInt64, parent: UInt64?, service: String, source: EventSource, startMs: UInt64,
        user: UserIdentity? = nil, http: HTTPFacts? = nil, status: StatusCode = .unset, kind: EventKind = .span,
        workload: String? = nil, attributes: [Attribute] = []
    ) -> AuditEvent {
        let start = t0 + startMs * ms
        return AuditEvent(
            kind: kind, startTimeUnixNano: start, endTimeUnixNano: start + 5 * ms, traceID: trace,
            spanID: SpanID(value: id), parentSpanID: parent.map { SpanID(value: $0) }, flags: 1, spanKind: .server,
            name: "\(service) op", service: service, source: source, user: user, workload: workload, http: http,
            statusCode: status, attributes: attributes, resourceAttributes: [])
    }

    static func person(_ s: String) -> UserIdentity {
        UserIdentity(subject: s, email: "\(s)@example.com", groups: [], origin: .edge)
    }

    static let dataset = [
        Attribute("db.namespace", .string("salesdw")), Attribute("db.collection.name", .string("dbo.orders")),
    ]

    static let edge: [AuditEvent] = [
        event(
            alice1, 1, parent: nil, service: "edge", source: .edge, startMs: 0, user: person("alice"),
            http: HTTPFacts(method: "GET", target: "/orders/7", statusCode: 200), kind: .access),
        event(
            bobDenied, 11, parent: nil, service: "edge", source: .edge, startMs: 10, user: person("bob"),
            http: HTTPFacts(method: "GET", target: "/admin/users", statusCode: 403), kind: .access),
        event(
            alice2, 41, parent: nil, service: "edge", source: .edge, startMs: 60_000, user: person("alice"),
            http: HTTPFacts(method: "POST", target: "/orders", statusCode: 502), kind: .access),
    ]
    static let mesh: [AuditEvent] = [
        event(alice1, 2, parent: 1, service: "orders", source: .sidecar, startMs: 1, workload: ordersWorkload),
        event(alice1, 3, parent: 2, service: "orders", source: .app, startMs: 2),
        event(alice1, 4, parent: 3, service: "synapse", source: .app, startMs: 3, attributes: dataset),
        // A batch job with a client certificate: its identity is on the sidecar's span.
        event(
            etl, 21, parent: nil, service: "reporting", source: .sidecar, startMs: 20,
            user: UserIdentity(subject: etlSubject, origin: .certificate)),
        event(etl, 22, parent: 21, service: "synapse", source: .app, startMs: 21, attributes: dataset),
        // A trace without any user.
        event(nobody, 31, parent: nil, service: "orders", source: .app, startMs: 30),
        event(alice2, 42, parent: 41, service: "orders", source: .app, startMs: 60_001, status: .error),
    ]

    /// Signs the seals of both collectors with `signer`, when given.
    let signer: SealSigner?

    init(signer: SealSigner? = nil) throws {
        self.signer = signer
        let tmp = TempDir("auditq-reach")
        root = tmp.path
        let (a, wa) = try writeDataDirectory(
            root, "edge", node: NodeID(high: 1, low: 1), batches: [Array(Self.edge.prefix(2))],
            tail: [Self.edge[2]], signer: signer)
        // Records 3, 4 and 21 are stored twice, in both sealed segments (a retried export).
        let (b, wb) = try writeDataDirectory(
            root, "mesh", node: NodeID(high: 2, low: 2), batches: [Array(Self.mesh.prefix(4)), Array(Self.mesh[1...])],
            signer: signer)
        edgeDirectory = a
        meshDirectory = b
        writers = [wa, wb]
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    var day: ClosedRange<UInt64> { 1_793_577_600_000_000_000...(1_793_577_600_000_000_000 + 86_400_000_000_000 - 1) }
    var both: AuditStore { get throws { try AuditStore(directories: [edgeDirectory, meshDirectory]) } }
}

@Suite struct AccessTests {
    @Test func usersAreFoundThroughTheTraceJoinAcrossDataDirectories() throws {
        let s = try ReachStore()
        let reach = try s.both.reachers(of: ReachTarget(service: "orders"), timeRange: s.day)
        #expect(reach.users.map(\.user) == ["alice"])
        let alice = try #require(reach.users.first)
        #expect(alice.requests == 2)
        #expect(alice.denied == 0)
        #expect(alice.failed == 1)
        #expect(alice.email == "alice@example.com")
        #expect(alice.serviceAccount == false)
        #expect(alice.firstTime == ReachStore.t0 + 1 * ReachStore.ms)
        #expect(alice.lastTime == ReachStore.t0 + 60_001 * ReachStore.ms)
        #expect(alice.exampleTraces == [ReachStore.alice1, ReachStore.alice2])
        #expect(reach.unattributedTraces == [ReachStore.nobody])
        // Orders' app span of the first request is stored twice (a retried export): it counts once.
        #expect(reach.matchedRecords == 4)
        // Without the edge's data directory, no user is known: the traces are reported as unattributed.
        let meshOnly = try AuditStore(directories: [s.meshDirectory])
        let partial = try meshOnly.reachers(of: ReachTarget(service: "orders"), timeRange: s.day)
        #expect(partial.users.isEmpty)
        #expect(Set(partial.unattributedTraces) == [ReachStore.alice1, ReachStore.nobody, ReachStore.alice2])
    }

    @Test func aUserWithOnlyDeniedRequests() throws {
        let s = try ReachStore()
        let reach = try s.both.reachers(of: ReachTarget(pathPrefix: "/admin"), timeRange: s.day)
        #expect(reach.users.count == 1)
        let bob = try #require(reach.users.first)
        #expect(bob.user == "bob")
        #expect(bob.requests == 1)
        #expect(bob.denied == 1)
        #expect(bob.failed == 0)
        #expect(bob.exampleTraces == [ReachStore.bobDenied])
    }

    @Test func datasetsAndServiceAccounts() throws {
        let s = try ReachStore()
        let store = try s.both
        for target in [
            ReachTarget(dbNamespace: "salesdw"), ReachTarget(dbTable: "dbo.orders"),
            ReachTarget(dbNamespace: "salesdw", dbTable: "dbo.orders"), ReachTarget(service: "synapse"),
        ] {
            let reach = try store.reachers(of: target, timeRange: s.day)
            #expect(reach.users.map(\.user) == ["alice", ReachStore.etlSubject], "\(target)")
            #expect(reach.users.map(\.serviceAccount) == [false, true], "\(target)")
            #expect(reach.users.map(\.requests) == [1, 1], "\(target)")
        }
        #expect(try store.reachers(of: ReachTarget(dbTable: "dbo.other"), timeRange: s.day).users.isEmpty)
        #expect(try store.reachers(of: ReachTarget(dbNamespace: "dbo.orders"), timeRange: s.day).users.isEmpty)
        let byWorkload = try store.reachers(of: ReachTarget(workload: ReachStore.ordersWorkload), timeRange: s.day)
        #expect(byWorkload.users.map(\.user) == ["alice"])
        #expect(byWorkload.users.first?.exampleTraces == [ReachStore.alice1])
    }

    @Test func emptyRangesAndUnknownTargetsFindNobody() throws {
        let s = try ReachStore()
        let store = try s.both
        let before = 0...(ReachStore.t0 - 1)
        #expect(
            try store.reachers(of: ReachTarget(service: "orders"), timeRange: before)
                == Reach(
                    users: [], unattributedTraces: [], matchedRecords: 0))
        #expect(try store.reachers(of: ReachTarget(service: "no-such"), timeRange: s.day).users.isEmpty)
        #expect(try store.reachers(of: ReachTarget(pathPrefix: "/nowhere"), timeRange: s.day).users.isEmpty)
        // The range applies to the record that reached the target, not to the request: alice's second request
        // only, whose hop to orders starts 1 ms after it.
        let late = (ReachStore.t0 + 60_001 * ReachStore.ms)...(ReachStore.t0 + 60_001 * ReachStore.ms)
        let reach = try store.reachers(of: ReachTarget(service: "orders"), timeRange: late)
        #expect(reach.users.map(\.requests) == [1])
        #expect(reach.users.first?.exampleTraces == [ReachStore.alice2])
    }

    @Test func outputSchemas() throws {
        let s = try ReachStore()
        let reach = try s.both.reachers(of: ReachTarget(dbNamespace: "salesdw"), timeRange: s.day)
        let line = ReachOutput.jsonLine(reach.users[1])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["user"] as? String == ReachStore.etlSubject)
        #expect(object["service_account"] as? Bool == true)
        #expect(object["email"] is NSNull)
        #expect(object["example_traces"] as? [String] == [ReachStore.etl.hex])
        #expect(object["first_time_unix_nano"] as? String == String(ReachStore.t0 + 21 * ReachStore.ms))
        let csv = ReachOutput.csv(reach.users).split(separator: "\r\n")
        #expect(csv.count == 3)
        #expect(csv[0] == ReachOutput.csvColumns.joined(separator: ","))
    }
}

/// Generated traffic split over two data directories at random (so a trace's user event is often in the other
/// one), in several sealed segments and an unsealed tail, with retried copies; the store's answers must equal
/// a brute-force computation over every stored record.
@Suite struct ReachPropertyTests {
    static func build(root: String, seed: UInt64) throws -> ([DataDirectory], [SegmentWriter], [AuditEvent]) {
        var g = TrafficGenerator(
            configuration: .init(
                seed: seed, userCount: 12, days: 1, requestsPerDay: 400, serviceCount: 5, deniedFraction: 0.1,
                errorFraction: 0.1, analyticsFraction: 0.3))
        var events = (0..<60).flatMap { _ in g.nextRequest() }
        var rng = SplitMix(seed)
        // A few events without a trace id, some of them carrying a user.
        for (i, e) in events.enumerated() where Int.random(in: 0..<40, using: &rng) == 0 {
            var copy = e
            copy.traceID = .zero
            copy.spanID = SpanID(value: UInt64(i + 1))
            events.append(copy)
        }
        var parts: [[[AuditEvent]]] = [[[]], [[]]]
        for e in events {
            let d = Int.random(in: 0...1, using: &rng)
            let copies = Int.random(in: 0..<10, using: &rng) == 0 ? 2 : 1
            for _ in 0..<copies {
                if Int.random(in: 0..<25, using: &rng) == 0 { parts[d].append([]) }
                parts[d][parts[d].count - 1].append(e)
            }
        }
        var directories: [DataDirectory] = []
        var writers: [SegmentWriter] = []
        for d in 0...1 {
            let tail = parts[d].count > 1 && Bool.random(using: &rng) ? parts[d].removeLast() : []
            let (directory, writer) = try writeDataDirectory(
                root, "data\(d)", node: NodeID(high: rng.next(), low: rng.next()), batches: parts[d], tail: tail)
            directories.append(directory)
            writers.append(writer)
        }
        return (directories, writers, events)
    }

    static func string(_ e: AuditEvent, _ keys: [String]) -> String? {
        for a in e.attributes where keys.contains(a.key) { if case .string(let s) = a.value { return s } }
        return nil
    }

    /// The answer computed from every distinct event, without the index or the trace look-ups.
    static func expected(_ events: Set<AuditEvent>, _ target: ReachTarget, _ range: ClosedRange<UInt64>) -> Reach {
        func reaches(_ e: AuditEvent) -> Bool {
            guard range.contains(e.startTimeUnixNano) else { return false }
            if let s = target.service, e.service != s { return false }
            if let w = target.workload, e.workload != w { return false }
            if let p = target.pathPrefix,
                !((e.http?.target ?? "").hasPrefix(p) || (e.http?.route ?? "").hasPrefix(p))
            {
                return false
            }
            if let n = target.dbNamespace, string(e, ["db.namespace", "db.name"]) != n { return false }
            if let t = target.dbTable, string(e, ["db.collection.name", "db.sql.table"]) != t { return false }
            return true
        }
        let byTrace = Dictionary(grouping: events, by: \.traceID)
        let matched = events.filter(reaches)
        var requests: [(hops: [AuditEvent], trace: [AuditEvent], id: TraceID?)] = []
        for e in matched where e.traceID.isZero { requests.append(([e], [e], nil)) }
        for (id, hops) in Dictionary(grouping: matched.filter { !$0.traceID.isZero }, by: \.traceID) {
            requests.append((hops, byTrace[id] ?? [], id))
        }
        var users: [String: Reacher] = [:]
        var unattributed: [(UInt64, TraceID)] = []
        for q in requests {
            let first = q.hops.map(\.startTimeUnixNano).min()!
            let last = q.hops.map(\.startTimeUnixNano).max()!
            let withUser = q.trace.filter { $0.user != nil }.sorted {
                ($0.startTimeUnixNano, $0.spanID.value) < ($1.startTimeUnixNano, $1.spanID.value)
            }
            guard let request = withUser.first(where: { $0.source == .edge || $0.kind == .access }) ?? withUser.first,
                let user = request.user
            else {
                if let id = q.id { unattributed.append((first, id)) }
                continue
            }
            var u =
                users[user.subject]
                ?? Reacher(
                    user: user.subject, email: nil, serviceAccount: false, requests: 0, firstTime: first,
                    lastTime: last, denied: 0, failed: 0, exampleTraces: [])
            u.requests += 1
            u.firstTime = min(u.firstTime, first)
            u.lastTime = max(u.lastTime, last)
            let code = request.http?.statusCode ?? 0
            if code == 401 || code == 403 { u.denied += 1 }
            if ([request] + q.hops).contains(where: { $0.statusCode == .error || ($0.http?.statusCode ?? 0) >= 500 }) {
                u.failed += 1
            }
            if u.email == nil { u.email = withUser.compactMap { $0.user?.email }.first }
            if user.origin == .certificate || user.subject.hasPrefix("spiffe://") { u.serviceAccount = true }
            if let id = q.id { u.exampleTraces.append(id) }
            users[user.subject] = u
        }
        let firstTimes = Dictionary(
            grouping: matched.filter { !$0.traceID.isZero }, by: \.traceID
        ).mapValues { $0.map(\.startTimeUnixNano).min()! }
        var list = users.values.map { u in
            var u = u
            u.exampleTraces = Array(
                u.exampleTraces.sorted { (firstTimes[$0]!, $0) < (firstTimes[$1]!, $1) }.prefix(Reacher.exampleCount))
            return u
        }
        list.sort { $0.user < $1.user }
        return Reach(
            users: list, unattributedTraces: unattributed.sorted { $0 < $1 }.map(\.1), matchedRecords: matched.count)
    }

    @Test func reachersEqualBruteForce() async throws {
        await propertyCheck(count: 25, input: Gen.uint64(in: 0...UInt64.max), Gen.int(in: 0...5), Gen.bool) {
            seed, kind, narrow in
            let tmp = TempDir("auditq-reach-prop")
            defer { tmp.remove() }
            let (directories, writers, events) = try Self.build(root: tmp.path, seed: seed)
            let distinct = Set(events)
            var rng = SplitMix(seed ^ 0x5EED)
            func pick(_ values: [String]) -> String? {
                values.isEmpty ? nil : values.sorted()[Int.random(in: 0..<values.count, using: &rng)]
            }
            let target: ReachTarget
            switch kind {
            case 0: target = ReachTarget(service: pick(Array(Set(events.map(\.service)))) ?? "-")
            case 1: target = ReachTarget(workload: pick(Array(Set(events.compactMap(\.workload)))) ?? "-")
            case 2:
                let paths = events.compactMap { $0.http?.route ?? $0.http?.target }
                let prefix = pick(Array(Set(paths))).map { String($0.prefix(Int.random(in: 1...8, using: &rng))) }
                target = ReachTarget(pathPrefix: prefix ?? "/")
            case 3:
                target = ReachTarget(
                    dbNamespace: pick(Array(Set(events.compactMap { Self.string($0, ["db.namespace"]) }))) ?? "-")
            case 4:
                target = ReachTarget(
                    dbTable: pick(Array(Set(events.compactMap { Self.string($0, ["db.collection.name"]) }))) ?? "-")
            default: target = ReachTarget(service: "no-such-service")
            }
            let times = events.map(\.startTimeUnixNano).sorted()
            var range = times[0]...times[times.count - 1]
            if narrow {
                let a = times[Int.random(in: 0..<times.count, using: &rng)]
                let b = times[Int.random(in: 0..<times.count, using: &rng)]
                range = min(a, b)...max(a, b)
            }
            let got = try AuditStore(directories: directories).reachers(of: target, timeRange: range)
            let want = Self.expected(distinct, target, range)
            #expect(got == want, "seed \(seed), target \(target), range \(range)")
            if kind == 5 { #expect(got.users.isEmpty) }
            // Over the whole range every kind of target is reached by someone: the check is not vacuous.
            if kind < 5 && !narrow { #expect(!want.users.isEmpty && !want.users.allSatisfy { $0.requests == 0 }) }
            withExtendedLifetime(writers) {}
        }
    }
}
