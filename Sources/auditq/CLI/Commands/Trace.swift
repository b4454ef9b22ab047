import ArgumentParser
import AuditQuery
import Foundation
import LogFormat
import StoreQuery

extension AuditQ {
    struct Trace: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "trace",
            abstract: "One trace as a tree across every hop, with timings and a waterfall.",
            discussion: """
                Every stored copy is shown: retries as copies, orphans and clock skew as notes; times are as stored.

                A child is clock skew only when it starts before or ends after its parent by at least the two \
                records' time precision: 1 ms for an access event (nginx and Envoy log milliseconds), exact for \
                spans and log records. In --format json, starts_before_parent_ns and ends_after_parent_ns give \
                the raw difference and appear only on a flagged record.
                """)
        @OptionGroup var data: DataOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var output: FormatOptions
        @OptionGroup var zoneOptions: ZoneOptions
        @Argument(help: "Trace id (32 hex digits).") var id: String

        func validate() throws {
            if TraceID(hex: id) == nil || id.count != 32 { throw ValidationError("a trace id is 32 hex digits") }
        }

        func run() throws {
            let zone = try zoneOptions.zone
            let traceID = TraceID(hex: id)!
            // Opened on the bucket's last listing while the fresh one is fetched; `answer` settles on the fresh one.
            let records = try store.openStore(data, provisional: true).answer {
                (s) throws(LogFormatError) -> [StoredRecord] in try s.trace(traceID, includeDuplicates: true)
            }
            guard !records.isEmpty else {
                note("no events for trace \(id)")
                return
            }
            switch try output.resolved() {
            case .table: print(Rendering.traceTree(records, zone: zone, palette: output.palette))
            case .json:
                let analysis = TraceAnalysis(records)
                for node in analysis.ordered {
                    var extra: [(String, String)] = [("depth", String(node.depth)), ("orphan", String(node.orphan))]
                    if let d = node.duplicateOf { extra.append(("duplicate_of", RecordJSON.location(d))) }
                    // Only when flagged as clock skew (beyond both records' time precision), as the raw
                    // difference of the stored times in ns; a child within that precision has neither field.
                    if let s = node.startsBeforeParent { extra.append(("starts_before_parent_ns", String(s))) }
                    if let s = node.endsAfterParent { extra.append(("ends_after_parent_ns", String(s))) }
                    print(RecordJSON.line(node.record, extra: extra))
                }
            case .csv:
                let ordered = TraceAnalysis(records).ordered.map(\.record)
                FileHandle.standardOutput.write(Data(CSVOutput.table(ordered).utf8))
            case .otlp: emitOTLP(AuditStore.droppingDuplicates(records).map(\.event))
            }
        }
    }
}
