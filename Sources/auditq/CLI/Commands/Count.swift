import ArgumentParser
import AuditQuery
import Foundation
import StoreQuery

extension AuditQ {
    struct Count: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "count",
            abstract: "How many events match, grouped by service, user, workload, status class, route or edge status.",
            discussion: """
                The conditions are those of search; without a time option, all the data. Each event is counted \
                once (stored retry copies are not). Groups: service; user (subject); workload; status-class (2xx \
                … 5xx from the HTTP status, else the OTLP status: ok, error, unset); route (the HTTP route, else \
                the target without its query); edge-status (the HTTP status of edge access events); source (edge, \
                sidecar, app). An event without a value is counted under "-". Largest group first.

                --format json prints one line per group: {"<key>": "<value>", …, "count": n}, each key as given \
                to --by with "-" written "_" (status_class, edge_status); --format csv the same columns.
                """)
        @OptionGroup var data: DataOptions
        @OptionGroup var time: TimeOptions
        @Option(help: "Output: table (default), json (NDJSON, one line per group) or csv.") var format: String = "table"
        @OptionGroup var filters: FilterOptions
        @OptionGroup var terms: TermOptions
        @Option(
            help: ArgumentHelp(
                "Group by this (repeatable): \(CountKey.allCases.map(\.rawValue).joined(separator: ", ")).",
                valueName: "key"))
        var by: [String] = []

        func validate() throws {
            guard ["table", "json", "csv"].contains(format) else {
                throw ValidationError("--format is one of table, json, csv")
            }
            if by.isEmpty { throw ValidationError("--by is needed at least once") }
            _ = try keys()
        }

        func keys() throws -> [CountKey] {
            try by.map { name in
                guard let k = CountKey(rawValue: name) else {
                    throw ValidationError(
                        "--by \(name): use \(CountKey.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return k
            }
        }

        func run() throws {
            let store = try data.openStore()
            let keys = try keys()
            let range = try time.range()
            progress("counting…")
            let query = EventQuery(terms: terms.terms, timeRange: range, filter: try filters.filter())
            let groups = try store.count(query, by: keys)
            progressDone()
            guard !groups.isEmpty else {
                note("no matching events")
                return
            }
            note("\(groups.reduce(0) { $0 + $1.count }) events in \(groups.count) groups")
            switch format {
            case "json": print(groups.map { CountOutput.jsonLine($0, keys: keys) }.joined(separator: "\n"))
            case "csv": FileHandle.standardOutput.write(Data(CountOutput.csv(groups, keys: keys).utf8))
            default: print(CountOutput.table(groups, keys: keys))
            }
        }
    }
}
