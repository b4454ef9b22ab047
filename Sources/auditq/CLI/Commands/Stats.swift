import ArgumentParser
import AuditQuery

extension AuditQ {
    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Segments per tier, events, bytes, compression and time coverage.")
        @OptionGroup var data: DataOptions
        @OptionGroup var output: ReportFormatOptions
        @OptionGroup var zoneOptions: ZoneOptions

        func run() throws {
            let zone = try zoneOptions.zone
            let stats = try StoreStats.collect(try data.openStore())
            print(output.json ? stats.json() : stats.table(zone: zone))
        }
    }
}
