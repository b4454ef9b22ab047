import ArgumentParser
import AuditQuery
import Foundation
import LogFormat
import StoreQuery

extension AuditQ {
    struct Activity: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "activity",
            abstract: "What a user did: one entry per request, each with the whole trace it started.",
            discussion: """
                Without a time option, today (in --tz). Downstream hops need not carry the user: they are found by \
                trace id.
                """)
        @OptionGroup var data: DataOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var time: TimeOptions
        @OptionGroup var output: FormatOptions
        @OptionGroup var filters: FilterOptions
        @Option(help: "User subject or email.") var user: String
        @Option(help: "At most this many requests.") var limit: Int?
        @Flag(help: "Table output: print each request's trace as a tree under it.") var tree = false

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() throws {
            let zone = try time.zone
            guard let range = try time.range(fallback: "today") else { return }
            let store = try self.store.openStore(
                data, timeRange: StoreOptions.withTraceReach(range), provisional: true)
            progress("reading the requests of \(user) and their traces…")
            let (user, filter, limit) = (self.user, try filters.filter(), self.limit)
            // JSON is written straight from the column blocks when no filter needs decoded events.
            if try output.resolved() == .json,
                let (all, requests) = try store.answer({ (s) throws(LogFormatError) in
                    try s.activityHandles(user: user, timeRange: range, filter: filter, limit: limit)
                })
            {
                progressDone()
                guard !requests.isEmpty else {
                    note("no requests by \(user) in that range")
                    return
                }
                let hops = requests.reduce(0) { $0 + $1.trace.count }
                note("\(requests.count) requests by \(user), \(hops) records in their traces")
                try writeLinesOnEveryCore(requests, run: 128, key: \.request.block, renderer: RowJSON(all)) {
                    (writer, q, buffer) throws(LogFormatError) in
                    try writer.activityLine(
                        request: q.request, userEvents: q.userEvents.count, trace: q.trace, into: buffer)
                }
                exitAfterAnswer()
            }
            let requests = try store.answer { (s) throws(LogFormatError) -> [UserRequest] in
                try s.activity(user: user, timeRange: range, filter: filter, limit: limit)
            }
            progressDone()
            guard !requests.isEmpty else {
                note("no requests by \(user) in that range")
                return
            }
            let hops = requests.reduce(0) { $0 + $1.trace.count }
            note("\(requests.count) requests by \(user), \(hops) records in their traces")
            switch try output.resolved() {
            case .table:
                if tree {
                    for q in requests {
                        print(Rendering.activityTable([q], zone: zone, palette: output.palette))
                        print(Rendering.traceTree(q.trace, zone: zone, palette: output.palette) + "\n")
                    }
                } else {
                    print(Rendering.activityTable(requests, zone: zone, palette: output.palette))
                }
            case .json:
                var memo = EventJSONMemo()
                writeLines(requests) { RecordJSON.activityLine($0, into: &$1, memo: &memo) }
            case .csv:
                var out = (CSVOutput.columns + ["request"]).joined(separator: ",") + "\r\n"
                for (n, q) in requests.enumerated() {
                    for r in q.trace { out += CSVOutput.row(r, extra: [String(n + 1)]) + "\r\n" }
                }
                FileHandle.standardOutput.write(Data(out.utf8))
            case .otlp: emitOTLP(requests.flatMap { $0.trace.map(\.event) })
            }
            exitAfterAnswer()
        }
    }
}
