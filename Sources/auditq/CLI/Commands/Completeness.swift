import ArgumentParser
import AuditQuery
import Foundation
import StoreQuery

extension AuditQ {
    struct Completeness: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "completeness",
            abstract: "Was anything missed: the collectors' ledgers over a time range, per receiver and per sender.",
            discussion: """
                Every sealed segment ends with its collector's ledger for the segment's period: what each receiver \
                and each authenticated sender delivered (received), what was stored (accepted), what was refused \
                and why (rejected), and what the kernel dropped before it could be read (syslog UDP). The seal \
                covers it like any record. This sums the ledgers whose period overlaps the range (without a time \
                option, all of them) and says what they cannot vouch for: a time of a collector that no ledger \
                covers (a crash loses the counts of the period it interrupted; "stopped" when it was shut down \
                cleanly), a segment without a ledger (recovered after a crash), a ledger that disagrees with its \
                segment. Segments with rejections or drops are listed too.

                Exit status 3 when something is unknown (a gap other than a clean stop, a segment without a \
                ledger or with a bad one), 0 otherwise, rejections and drops included. --format json prints \
                NDJSON (a summary line, then receivers, senders, gaps and segments); --format csv the \
                receiver and sender rows. The record: docs/format/ledger.md.
                """)
        @OptionGroup var data: DataOptions
        @OptionGroup var time: TimeOptions
        @Option(help: "Output: table (default), json (NDJSON) or csv.") var format: String = "table"

        func validate() throws {
            guard ["table", "json", "csv"].contains(format) else {
                throw ValidationError("--format is one of table, json, csv")
            }
        }

        func run() throws {
            let store = try data.openStore()
            let range = try time.range()
            let zone = try time.zone
            progress("reading ledgers…")
            let report = try store.completeness(range)
            progressDone()
            if report.ledgers.isEmpty && report.notes.isEmpty {
                note("no ledgers and no sealed segments in the range")
            }
            switch format {
            case "json": print(CompletenessOutput.jsonLines(report, zone: zone).joined(separator: "\n"))
            case "csv": FileHandle.standardOutput.write(Data(CompletenessOutput.csv(report).utf8))
            default: print(CompletenessOutput.table(report, zone: zone))
            }
            if !report.isComplete && !(report.ledgers.isEmpty && report.notes.isEmpty) {
                throw ExitCode(ExitStatus.problemsFound)
            }
        }
    }
}
