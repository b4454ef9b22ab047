import ArgumentParser
import AuditQuery
import Foundation
import StoreQuery

extension AuditQ {
    struct Access: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "access",
            abstract: "Who reached a service, workload, route or dataset: every user whose requests got there.",
            discussion: """
                Without a time option, today (in --tz). The records that reach the target are found in the index \
                (--service, --workload) or by a scan (--path-prefix, --db-namespace, --table); each one's trace is \
                then read, in every data directory, and the user of its request taken from the edge's access event \
                (else the earliest event with a user), since downstream hops do not carry the user.

                Per user: requests (traces that reached the target), denied (the edge answered 401 or 403), failed \
                (the request or a record reaching the target has an OTLP error or HTTP 5xx), the first and last \
                time a record of theirs reached it, and up to three example trace ids. A service account is an \
                identity taken from a client certificate (origin certificate) or whose subject is a SPIFFE id \
                (spiffe://…). Traces that reached the target without any user are counted on stderr.

                --format json prints one line per user: {"user", "email" (or null), "service_account", \
                "requests", "denied", "failed", "first_time", "first_time_unix_nano", "last_time", \
                "last_time_unix_nano", "example_traces": [32 hex, …]}; --format csv the same columns. An evidence \
                bundle of the same answer, verifiable offline: auditq evidence with the same options and --out DIR.
                """)
        @OptionGroup var data: DataOptions
        @OptionGroup var time: TimeOptions
        @Option(help: "Output: table (default), json (NDJSON, one line per user) or csv.") var format: String = "table"
        @OptionGroup var reached: TargetOptions

        var target: ReachTarget { reached.target }

        func validate() throws {
            guard ["table", "json", "csv"].contains(format) else {
                throw ValidationError("--format is one of table, json, csv")
            }
            if target.isEmpty {
                throw ValidationError(
                    "name what was reached: --service, --workload, --path-prefix, --db-namespace or --table")
            }
        }

        func run() throws {
            let store = try data.openStore()
            let zone = try time.zone
            guard let range = try time.range(fallback: "today") else { return }
            progress("reading what reached it and their traces…")
            let reach = try store.reachers(of: target, timeRange: range)
            progressDone()
            if !reach.unattributedTraces.isEmpty {
                let shown = reach.unattributedTraces.prefix(3).map(\.hex).joined(separator: " ")
                note("\(reach.unattributedTraces.count) traces reached it without any user event (\(shown))")
            }
            guard !reach.users.isEmpty else {
                note("no user reached it in that range")
                return
            }
            let requests = reach.users.reduce(0) { $0 + $1.requests }
            note("\(reach.users.count) users, \(requests) requests, \(reach.matchedRecords) records reached it")
            switch format {
            case "json": print(reach.users.map(ReachOutput.jsonLine).joined(separator: "\n"))
            case "csv": FileHandle.standardOutput.write(Data(ReachOutput.csv(reach.users).utf8))
            default:
                let palette = Palette(
                    enabled: stdoutIsTerminal && environmentValue("NO_COLOR") == nil)
                print(ReachOutput.table(reach.users, zone: zone, palette: palette))
            }
        }
    }
}

/// What was reached: the options `access` and `evidence` share.
struct TargetOptions: ParsableArguments {
    @Option(help: "Service name (service.name).") var service: String?
    @Option(help: "Workload identity (SPIFFE id).") var workload: String?
    @Option(name: .customLong("path-prefix"), help: "Prefix of the HTTP route or target.") var pathPrefix: String?
    @Option(
        name: .customLong("db-namespace"),
        help: "Database or SQL pool of a client span (db.namespace, or db.name).")
    var dbNamespace: String?
    @Option(help: "Table of a client span (db.collection.name, or db.sql.table).") var table: String?

    var target: ReachTarget {
        ReachTarget(
            service: service, workload: workload, pathPrefix: pathPrefix, dbNamespace: dbNamespace, dbTable: table)
    }
}
