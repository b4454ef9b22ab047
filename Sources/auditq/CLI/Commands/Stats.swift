import ArgumentParser
import AuditQuery

extension AuditQ {
    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Segments per tier, events, bytes, compression and time coverage.")
        @OptionGroup var data: DataOptions
        @OptionGroup var output: ReportFormatOptions
        @OptionGroup var zoneOptions: ZoneOptions
        @Flag(help: "Bytes of the sealed segments by part of the file (each column, each index section), per event.")
        var layout = false

        func run() throws {
            let zone = try zoneOptions.zone
            if layout {
                let parts = try StoreStats.layout(try data.openStore())
                if output.json {
                    let fields = parts.parts.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",")
                    print("{\"events\":\(parts.events),\"parts\":{\(fields)}}")
                } else {
                    print(StoreStats.layoutTable(parts))
                }
                return
            }
            let stats = try StoreStats.collect(try data.openStore())
            print(output.json ? stats.json() : stats.table(zone: zone))
        }
    }
}
