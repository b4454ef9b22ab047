// Who reached a service, workload, route or dataset: the downstream records that match, their traces, and the
// user of each trace's request (the downstream hop does not carry the user, so it is found by the trace join).
import LogFormat

/// What was reached. Every condition that is set must hold for a record to count as reaching it.
public struct ReachTarget: Sendable, Hashable {
    /// `service.name`, exactly (an index term).
    public var service: String?
    /// Workload identity (SPIFFE id), exactly (an index term).
    public var workload: String?
    /// Prefix of the HTTP route or target (path and query).
    public var pathPrefix: String?
    /// `db.namespace` (or the older `db.name`) of a client span: the database or SQL pool.
    public var dbNamespace: String?
    /// `db.collection.name` (or the older `db.sql.table`) of a client span: the table.
    public var dbTable: String?

    public init(
        service: String? = nil, workload: String? = nil, pathPrefix: String? = nil, dbNamespace: String? = nil,
        dbTable: String? = nil
    ) {
        self.service = service
        self.workload = workload
        self.pathPrefix = pathPrefix
        self.dbNamespace = dbNamespace
        self.dbTable = dbTable
    }

    public var isEmpty: Bool {
        service == nil && workload == nil && pathPrefix == nil && dbNamespace == nil && dbTable == nil
    }

    /// The index terms among the conditions.
    public var terms: [EventQuery.Term] {
        var t: [EventQuery.Term] = []
        if let service { t.append(.service(service)) }
        if let workload { t.append(.workload(workload)) }
        return t
    }

    public static let namespaceKeys = ["db.namespace", "db.name"]
    public static let tableKeys = ["db.collection.name", "db.sql.table"]

    /// Whether `e` reaches the target (time aside).
    public func matches(_ e: AuditEvent) -> Bool {
        if let service, e.service != service { return false }
        if let workload, e.workload != workload { return false }
        if let pathPrefix {
            let target = e.http?.target ?? ""
            let route = e.http?.route ?? ""
            if !(target.hasPrefix(pathPrefix) || route.hasPrefix(pathPrefix)) { return false }
        }
        if let dbNamespace, !Self.has(e, Self.namespaceKeys, dbNamespace) { return false }
        if let dbTable, !Self.has(e, Self.tableKeys, dbTable) { return false }
        return true
    }

    static func has(_ e: AuditEvent, _ keys: [String], _ value: String) -> Bool {
        e.attributes.contains { keys.contains($0.key) && $0.value == .string(value) }
    }
}

/// One user who reached a target, with what their requests did.
public struct Reacher: Sendable, Hashable {
    /// The user's subject.
    public var user: String
    /// The first email seen for the user, if any.
    public var email: String?
    /// An identity from a client certificate (origin `certificate`) or a SPIFFE id (`spiffe://…`) as subject.
    public var serviceAccount: Bool
    /// Requests (traces; an event without a trace id is a request of its own) that reached the target.
    public var requests: Int
    /// Earliest and latest start of a record of theirs that reached the target.
    public var firstTime: UInt64
    public var lastTime: UInt64
    /// Requests the edge answered with HTTP 401 or 403.
    public var denied: Int
    /// Requests whose request record or a record reaching the target failed: OTLP error or HTTP 5xx.
    public var failed: Int
    /// The earliest few trace ids, oldest first.
    public var exampleTraces: [TraceID]

    public init(
        user: String, email: String?, serviceAccount: Bool, requests: Int, firstTime: UInt64, lastTime: UInt64,
        denied: Int, failed: Int, exampleTraces: [TraceID]
    ) {
        self.user = user
        self.email = email
        self.serviceAccount = serviceAccount
        self.requests = requests
        self.firstTime = firstTime
        self.lastTime = lastTime
        self.denied = denied
        self.failed = failed
        self.exampleTraces = exampleTraces
    }

    /// The rule for service accounts, shared by the store and the tests.
    public static func isServiceAccount(_ u: UserIdentity) -> Bool {
        u.origin == .certificate || u.subject.hasPrefix("spiffe://")
    }

    public static let exampleCount = 3
}

/// The answer to "who reached this".
public struct Reach: Sendable, Hashable {
    /// Users by subject.
    public var users: [Reacher]
    /// Traces that reached the target but hold no event with a user (oldest first).
    public var unattributedTraces: [TraceID]
    /// Records that reached the target, each event once.
    public var matchedRecords: Int

    public init(users: [Reacher], unattributedTraces: [TraceID], matchedRecords: Int) {
        self.users = users
        self.unattributedTraces = unattributedTraces
        self.matchedRecords = matchedRecords
    }
}

extension AuditStore {
    /// Records in `timeRange` that reach `target`, each event once, by start time. Index-driven for service and
    /// workload (posting lists, then the other conditions on the decoded records); a scan with the conditions as
    /// a filter otherwise. Unsealed segments are scanned.
    public func records(reaching target: ReachTarget, timeRange: ClosedRange<UInt64>?) throws(LogFormatError)
        -> [StoredRecord]
    {
        var out: [StoredRecord] = []
        let terms = target.terms
        let test: (AuditEvent) -> Bool = { e in
            (timeRange?.contains(e.startTimeUnixNano) ?? true) && target.matches(e)
        }
        for reader in try openSegmentReaders() {
            out += try reader.scan(timeRange: timeRange, filter: test)
        }
        for handle in handles where timeRange.map(handle.entry.overlaps) ?? true {
            let reader: SegmentReader
            do { reader = try handle.reader() } catch  where handle.expired { continue }
            if terms.isEmpty {
                out += try reader.scan(timeRange: timeRange, cache: cache, filter: test)
            } else {
                let ordinals = try postings(reader, terms, timeRange: timeRange)
                guard !ordinals.isEmpty else { continue }
                let found = try reader.records(at: ordinals, timeRange: timeRange, cache: cache)
                out += found.filter { test($0.event) }
            }
        }
        Self.sortByTime(&out)
        return Self.droppingDuplicates(out)
    }

    /// Who reached `target` in `timeRange`: the records that reach it, the traces they belong to (looked up in
    /// the segments within `traceSlackNanos` of each record, in every data directory), and per trace the user of
    /// its request — the edge's access event that carries a user, else the earliest event that carries one.
    public func reachers(
        of target: ReachTarget, timeRange: ClosedRange<UInt64>?, traceSlackNanos: UInt64 = 3_600 * 1_000_000_000
    ) throws(LogFormatError) -> Reach {
        Reach.answer(try reachRequests(of: target, timeRange: timeRange, traceSlackNanos: traceSlackNanos))
    }

    /// The requests that reached `target` in `timeRange`, each with the records of it that did and its whole
    /// trace (every stored copy when `includeDuplicates`): what `reachers` counts, and what an evidence bundle of
    /// the answer holds. Oldest first, by the first record that reached the target.
    public func reachRequests(
        of target: ReachTarget, timeRange: ClosedRange<UInt64>?, traceSlackNanos: UInt64 = 3_600 * 1_000_000_000,
        includeDuplicates: Bool = false
    ) throws(LogFormatError) -> [Reach.Request] {
        let matched = try records(reaching: target, timeRange: timeRange)
        let traces = try self.traces(
            around: matched.map { ($0.event.traceID, $0.event.startTimeUnixNano) }, slackNanos: traceSlackNanos,
            includeDuplicates: includeDuplicates)
        var order: [TraceID] = []
        var matchedByTrace: [TraceID: [StoredRecord]] = [:]
        var requests: [Reach.Request] = []
        for r in matched {
            let id = r.event.traceID
            if id.isZero {
                requests.append(Reach.Request(id: nil, hops: [r], trace: [r]))
                continue
            }
            if matchedByTrace[id] == nil { order.append(id) }
            matchedByTrace[id, default: []].append(r)
        }
        for id in order {
            let hops = matchedByTrace[id]!
            // Every hop is in its trace; should a lookup miss one, the trace still holds it.
            var trace = traces[id] ?? []
            let held = Set(trace.map(\.location))
            let missing = hops.filter { !held.contains($0.location) }
            if !missing.isEmpty {
                trace += missing
                Self.sortByTime(&trace)
            }
            requests.append(Reach.Request(id: id, hops: hops, trace: trace))
        }
        return Reach.ordered(requests)
    }

}

extension Reach {
    /// One request that reached a target: the records of it that did, and every record of its trace.
    public struct Request: Sendable {
        /// The trace; nil for a record without a trace id, which is a request of its own.
        public var id: TraceID?
        /// The records that reached the target, by (start time, location), each event once.
        public var hops: [StoredRecord]
        /// Every record of the trace, the hops included.
        public var trace: [StoredRecord]

        public init(id: TraceID?, hops: [StoredRecord], trace: [StoredRecord]) {
            self.id = id
            self.hops = hops
            self.trace = trace
        }

        /// The request of the records `trace` (one trace's, or a single record without a trace id) as far as
        /// they reach `target` in `timeRange`; nil when none does. What an evidence bundle's verifier recomputes.
        public init?(trace: [StoredRecord], target: ReachTarget, timeRange: ClosedRange<UInt64>?) {
            var hops = trace.filter {
                (timeRange?.contains($0.event.startTimeUnixNano) ?? true) && target.matches($0.event)
            }
            guard !hops.isEmpty else { return nil }
            AuditStore.sortByTime(&hops)
            hops = AuditStore.droppingDuplicates(hops)
            let id = hops[0].event.traceID
            self.init(id: id.isZero ? nil : id, hops: hops, trace: trace)
        }

        /// The record the user is taken from: of the trace's records that carry a user, by (start time,
        /// location), the edge's access event, else the earliest.
        public var userRecord: StoredRecord? {
            var withUser = trace.filter { $0.event.user != nil }
            AuditStore.sortByTime(&withUser)
            return withUser.first { $0.event.source == .edge || $0.event.kind == .access } ?? withUser.first
        }

        /// Denied: the user's record is the edge's answer 401 or 403.
        public var denied: Bool {
            userRecord?.event.http.map { $0.statusCode == 401 || $0.statusCode == 403 } ?? false
        }

        /// Failed: the user's record or a record reaching the target has an OTLP error or HTTP 5xx.
        public var failed: Bool {
            ((userRecord.map { [$0] } ?? []) + hops).contains { Reach.failed($0.event) }
        }
    }

    /// `requests` oldest first, by the first record of each that reached the target (then its location).
    public static func ordered(_ requests: [Request]) -> [Request] {
        requests.filter { !$0.hops.isEmpty }.sorted {
            ($0.hops[0].event.startTimeUnixNano, $0.hops[0].location)
                < ($1.hops[0].event.startTimeUnixNano, $1.hops[0].location)
        }
    }

    /// The answer from the requests: per user (of each request's `userRecord`) the requests, first and last
    /// time a record of theirs reached the target, denied and failed ones, the earliest few trace ids; traces
    /// without any user apart. A pure function of the records, so a bundle's verifier recomputes it.
    public static func answer(_ all: [Request]) -> Reach {
        var users: [String: Reacher] = [:]
        var unattributed: [(UInt64, TraceID)] = []
        var matched = 0
        for q in ordered(all) {
            matched += q.hops.count
            let first = q.hops[0].event.startTimeUnixNano
            let last = q.hops[q.hops.count - 1].event.startTimeUnixNano
            guard let user = q.userRecord?.event.user else {
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
            if q.denied { u.denied += 1 }
            if q.failed { u.failed += 1 }
            if u.email == nil {
                var withUser = q.trace.filter { $0.event.user != nil }
                AuditStore.sortByTime(&withUser)
                u.email = withUser.lazy.compactMap { $0.event.user?.email }.first
            }
            if Reacher.isServiceAccount(user) { u.serviceAccount = true }
            // Requests come oldest first, so the first few are the earliest examples.
            if let id = q.id, u.exampleTraces.count < Reacher.exampleCount { u.exampleTraces.append(id) }
            users[user.subject] = u
        }
        return Reach(
            users: users.values.sorted { $0.user < $1.user },
            unattributedTraces: unattributed.sorted { $0 < $1 }.map(\.1), matchedRecords: matched)
    }

    /// OTLP error or HTTP 5xx.
    static func failed(_ e: AuditEvent) -> Bool { e.statusCode == .error || (e.http?.statusCode ?? 0) >= 500 }
}
