import ArgumentParser
import AuditQuery

extension AuditQ {
    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stats",
            abstract: "Segments per tier, events, bytes, compression and time coverage.")
        @OptionGroup var data: DataOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var output: ReportFormatOptions
        @OptionGroup var zoneOptions: ZoneOptions
        @Flag(help: "Bytes of the sealed segments by part of the file (each column, each index section), per event.")
        var layout = false

        func run() throws {
            let zone = try zoneOptions.zone
            if layout {
                let parts = try StoreStats.layout(try store.openStore(data))
                if output.json {
                    let fields = parts.parts.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",")
                    print("{\"events\":\(parts.events),\"parts\":{\(fields)}}")
                } else {
                    print(StoreStats.layoutTable(parts))
                }
                return
            }
            let stats = try StoreStats.collect(try store.openStore(data))
            print(output.json ? stats.json() : stats.table(zone: zone))
        }
    }
}
