import ArgumentParser
import AuditQuery
import LogFormat
import StoreQuery

extension AuditQ {
    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Events matching all the given conditions and the time range.")
        @OptionGroup var data: DataOptions
        @OptionGroup var time: TimeOptions
        @OptionGroup var output: FormatOptions
        @OptionGroup var filters: FilterOptions
        @Option(help: "User subject or email.") var user: String?
        @Option(help: "Group or role.") var group: String?
        @Option(help: "Service name.") var service: String?
        @Option(help: "Workload identity (SPIFFE id).") var workload: String?
        @Option(help: "Trace id (32 hex digits).") var trace: String?
        @Option(help: "At most this many events.") var limit: Int?
        @Flag(help: "Table output: also print each event's whole trace as a tree.") var traces = false

        func validate() throws {
            if let trace, trace.count != 32 || TraceID(hex: trace) == nil {
                throw ValidationError("--trace needs 32 hex digits")
            }
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() throws {
            let store = try data.openStore()
            var terms: [EventQuery.Term] = []
            if let user { terms.append(.user(user)) }
            if let group { terms.append(.group(group)) }
            if let service { terms.append(.service(service)) }
            if let workload { terms.append(.workload(workload)) }
            if let trace, let id = TraceID(hex: trace) { terms.append(.trace(id)) }
            let zone = try time.zone
            let range = try time.range()
            progress("searching…")
            let query = EventQuery(terms: terms, timeRange: range, limit: limit, filter: try filters.filter())
            let records = try store.search(query)
            progressDone()
            guard !records.isEmpty else {
                note("no matching events")
                return
            }
            emit(records, format: try output.resolved(), zone: zone, palette: output.palette)
            if traces, try output.resolved() == .table {
                let ids = Array(Set(records.map(\.event.traceID).filter { !$0.isZero }))
                let found = try store.traces(ids)
                for id in ids.sorted() {
                    print("\ntrace \(id.hex)")
                    print(Rendering.traceTree(found[id] ?? [], zone: zone, palette: output.palette))
                }
            }
        }
    }
}
