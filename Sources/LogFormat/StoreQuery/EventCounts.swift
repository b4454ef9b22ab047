// How many: counts of the events a query matches, grouped by fields an auditor asks about.
import LogFormat

/// A field events are grouped by in `AuditStore.count`.
public enum CountKey: String, Sendable, Hashable, CaseIterable {
    case service, user, workload
    case statusClass = "status-class"
    case route
    case edgeStatus = "edge-status"
    case source

    /// The group of `e` under this key; "-" when the event has no value for it.
    public func value(_ e: AuditEvent) -> String {
        switch self {
        case .service: return e.service.isEmpty ? "-" : e.service
        case .user: return e.user?.subject ?? "-"
        case .workload: return e.workload ?? "-"
        case .statusClass:
            if let code = e.http?.statusCode, code != 0 { return "\(code / 100)xx" }
            switch e.statusCode {
            case .error: return "error"
            case .ok: return "ok"
            case .unset: return "unset"
            }
        case .route:
            if let route = e.http?.route, !route.isEmpty { return route }
            guard let target = e.http?.target, !target.isEmpty else { return "-" }
            return String(target.prefix { $0 != "?" })
        case .edgeStatus:
            guard e.source == .edge || e.kind == .access, let code = e.http?.statusCode, code != 0 else { return "-" }
            return String(code)
        case .source: return "\(e.source)"
        }
    }
}

/// One group of `AuditStore.count`: its values in the order of the keys, and how many events it holds.
public struct CountGroup: Sendable, Hashable {
    public var values: [String]
    public var count: Int
    public init(values: [String], count: Int) {
        self.values = values
        self.count = count
    }
}

extension AuditStore {
    /// How many events `query` matches, grouped by `keys`; largest group first, then by values. `query.limit` is
    /// ignored. Each event counts once unless `query.includeDuplicates`: stored retry copies are recognised by
    /// trace id, span id and start time, and rows sharing those are compared whole.
    ///
    /// A query without terms over whole hours, grouped and filtered by fields the segments' count rollups keep, is
    /// summed from them (`countFromRollups`). Any other query without terms is counted block by block: a column block (version 2 segments) from the columns its
    /// grouping and conditions need, without building events (`countFromColumns`); a row block (version 1, the
    /// open segments) by decoding its records. A query with terms takes `countByEvents`.
    public func count(_ query: EventQuery, by keys: [CountKey]) throws(LogFormatError) -> [CountGroup] {
        let groups: [[String]: Int]
        if !query.terms.isEmpty {
            groups = try countByEvents(query, by: keys)
        } else {
            // Unsealed segments opened once: a rollup cannot answer when one overlaps the range.
            let unsealed = try openSegmentReaders()
            if let summed = try countFromRollups(query, by: keys, unsealed: unsealed) {
                groups = summed
            } else {
                groups = try countFromColumns(query, by: keys, unsealed: unsealed)
            }
        }
        return groups.map { CountGroup(values: $0.key, count: $0.value) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.values.lexicographicallyPrecedes($1.values) }
    }

    /// `count` by decoding every record the query's time range and posting lists reach (sealed segments through
    /// their posting lists when the query has terms, else by a scan; unsealed segments by a scan), dropping
    /// retry copies by a fingerprint of the whole event. Records are visited, not kept.
    package func countByEvents(_ query: EventQuery, by keys: [CountKey]) throws(LogFormatError) -> [[String]: Int] {
        var groups: [[String]: Int] = [:]
        var seen = Set<EventFingerprint>()
        func add(_ e: AuditEvent) {
            if !query.includeDuplicates, !seen.insert(EventFingerprint(e)).inserted { return }
            groups[keys.map { $0.value(e) }, default: 0] += 1
        }
        for reader in try openSegmentReaders() {
            _ = try reader.scan(timeRange: query.timeRange) { e in
                if query.matches(e) { add(e) }
                return false
            }
        }
        let filter = query.filter
        for handle in handles where query.timeRange.map(handle.entry.overlaps) ?? true {
            let reader: SegmentReader
            do { reader = try handle.reader() } catch  where handle.expired { continue }
            if query.terms.isEmpty {
                _ = try reader.scan(timeRange: query.timeRange, cache: cache) { e in
                    if filter.matches(e) { add(e) }
                    return false
                }
            } else {
                let ordinals = try postings(reader, query.terms, timeRange: query.timeRange)
                guard !ordinals.isEmpty else { continue }
                for r in try reader.records(at: ordinals, timeRange: query.timeRange, cache: cache)
                where filter.matches(r.event) {
                    add(r.event)
                }
            }
        }
        return groups
    }
}

/// What tells stored copies of one event apart from other events without keeping the events: ids, start time and
/// a hash of every field (equal events hash equally; distinct events with the same ids and start time collide with
/// probability 2^-64).
struct EventFingerprint: Hashable {
    var traceID: TraceID
    var spanID: SpanID
    var start: UInt64
    var hash: Int

    init(_ e: AuditEvent) {
        traceID = e.traceID
        spanID = e.spanID
        start = e.startTimeUnixNano
        hash = e.hashValue
    }
}
