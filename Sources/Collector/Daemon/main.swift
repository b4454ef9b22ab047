// collector: the audit-trail collector daemon. Its receivers arrive with the collector issues; today it can
// seed a data directory with realistic synthetic traffic through the same writer.
import ArgumentParser
import Foundation
import LogFormat
import Logging

@main
struct Collector: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collector",
        abstract: "The audit-trail collector.",
        subcommands: [IngestSynthetic.self])

    struct IngestSynthetic: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ingest-synthetic",
            abstract: "Write realistic synthetic edge + mesh traffic into a data directory and seal it.",
            discussion: """
                Each request is one nginx edge access event plus 3-12 sidecar, service and analytics spans; users are \
                Zipf-skewed; start times follow a day/night curve over --days days from --start.
                """)

        @Option(help: "Data directory.") var data = "./data"
        @Option(help: "Requests to generate (about 6.9 events each).") var requests = 100_000
        @Option(help: "Days the traffic spans.") var days = 1
        @Option(help: "First day, YYYY-MM-DD (UTC). Default: the generator's fixed start day.") var start: String?
        @Option(help: "Random seed.") var seed: UInt64 = 1
        @Option(help: "Distinct users.") var users = 50_000
        @Option(help: "fsync policy per batch: always, interval or never.") var fsync = "interval"
        @Option(help: "Seal a segment after this many events.") var segmentEvents = 1_000_000
        @Flag(help: "Print the heaviest user's subject and exit.") var printHeavyUser = false
        @Flag(help: "Print a light user's subject (Zipf rank users/2) and exit.") var printLightUser = false
        @Flag(help: "Print the first day of the traffic (YYYY-MM-DD) and exit.") var printFirstDay = false

        func validate() throws {
            guard requests > 0, days > 0, users > 0, segmentEvents > 0 else {
                throw ValidationError("--requests, --days, --users and --segment-events must be positive")
            }
            guard ["always", "interval", "never"].contains(fsync) else {
                throw ValidationError("--fsync is always, interval or never")
            }
            if let start, Self.day(start) == nil { throw ValidationError("--start is a day like 2026-11-02") }
        }

        static func day(_ s: String) -> UInt64? { UnixTime.parseDay(Substring(s)) }

        var generatorConfiguration: TrafficGenerator.Configuration {
            var c = TrafficGenerator.Configuration()
            c.seed = seed
            c.userCount = users
            c.days = days
            c.requestsPerDay = max(1, requests / days)
            if let start, let ns = Self.day(start) { c.startUnixNano = ns }
            return c
        }

        func run() throws {
            let c = generatorConfiguration
            if printHeavyUser {
                print(TrafficGenerator.heavyUser(for: c))
                return
            }
            if printLightUser {
                print(TrafficGenerator.lightUser(for: c))
                return
            }
            if printFirstDay {
                print(UnixTime.formatDay(c.startUnixNano))
                return
            }
            var options = WriterOptions()
            options.maxSegmentRecords = segmentEvents
            let policy: FsyncPolicy = fsync == "always" ? .always : fsync == "never" ? .never : .interval(milliseconds: 50)
            var logger = Logger(label: "collector")
            logger.logLevel = .warning
            let summary = try SyntheticLoad.write(
                into: DataDirectory(data), configuration: c, requests: requests, options: options, fsync: policy,
                logger: logger)
            let seconds = Double(summary.writeNanos) / 1e9
            print(
                "wrote \(summary.events) events (\(summary.requests) requests) into \(summary.segmentsSealed) sealed segments, "
                    + "\(summary.bytesWritten) bytes (\(String(format: "%.1f", Double(summary.bytesWritten) / Double(max(1, summary.events)))) bytes/event) "
                    + "in \(String(format: "%.2f", seconds)) s of writing (\(Int(Double(summary.events) / max(seconds, 1e-9))) events/s)")
        }
    }
}
