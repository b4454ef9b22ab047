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
    /// How many events `query` matches (each event once), grouped by `keys`; largest group first, then by values.
    /// `query.limit` is ignored.
    public func count(_ query: EventQuery, by keys: [CountKey]) throws(LogFormatError) -> [CountGroup] {
        var q = query
        q.limit = nil
        var groups: [[String]: Int] = [:]
        for r in try search(q) { groups[keys.map { $0.value(r.event) }, default: 0] += 1 }
        return groups.map { CountGroup(values: $0.key, count: $0.value) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.values.lexicographicallyPrecedes($1.values) }
    }
}
