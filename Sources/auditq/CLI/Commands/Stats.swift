import ArgumentParser
import AuditQuery

extension AuditQ {
    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Segments per tier, events, bytes, compression and time coverage.")
        @OptionGroup var data: DataOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var output: ReportFormatOptions
        @OptionGroup var zoneOptions: ZoneOptions

        func run() throws {
            let zone = try zoneOptions.zone
            let stats = try StoreStats.collect(try store.openStore(data))
            print(output.json ? stats.json() : stats.table(zone: zone))
        }
    }
}
