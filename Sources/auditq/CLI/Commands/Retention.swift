import ArgumentParser
import AuditQuery
import Foundation
import LogFormat
import StoreQuery

extension AuditQ {
    struct Retention: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "retention",
            abstract: "Archive and expire sealed segments by the retention policy, honouring legal holds.",
            // One paragraph without hard-wrapped indentation: argument-parser reflows it to the terminal.
            discussion: """
                The policy is the retention: section of the collector's YAML file (--config) or of a file of its own \
                (--policy). `plan` is a dry run; `apply` does the work, crash-safe and idempotent: run it from cron \
                or a Kubernetes CronJob while the collector writes. Exit status: 0 done (or another job was running: \
                nothing done, said on stderr), 1 a segment could not be handled (named; the next run retries), 2 a \
                usage or policy error.
                """,
            subcommands: [Plan.self, Apply.self])

        /// What `plan` and `apply` share: the directories, the policy, the instant, and how to print.
        struct PolicyOptions: ParsableArguments {
            @OptionGroup var data: DataOptions
            @OptionGroup var store: StoreOptions
            @Option(
                name: [.customLong("config"), .customLong("policy")],
                help: "The YAML file with the retention: section.")
            var policyFile: String
            @OptionGroup var output: ReportFormatOptions
            @Option(help: "Evaluate the policy as of this instant (ISO 8601 with offset, or Unix ns) instead of now.")
            var now: String?
            @OptionGroup var zoneOptions: ZoneOptions

            func validate() throws {
                if let now, UnixTime.parseInstant(now) == nil && UInt64(now) == nil {
                    throw ValidationError(
                        "--now must be an ISO 8601 instant with an offset (2026-11-02T10:00:00Z) or Unix ns")
                }
            }

            func policy() throws -> RetentionPolicy {
                guard let data = FileManager.default.contents(atPath: policyFile) else {
                    throw ValidationError("cannot read the policy file \(policyFile)")
                }
                do {
                    return try RetentionPolicy.parse(yaml: String(decoding: data, as: UTF8.self), source: policyFile)
                } catch {
                    throw ValidationError(error.description)
                }
            }

            /// The data directories: --data (else $AUDITQ_DATA or ./data), none when only --store is given.
            func directories() throws -> [DataDirectory] { try store.localDirectories(data) }

            var instant: UInt64 { now.flatMap { UnixTime.parseInstant($0) ?? UInt64($0) } ?? FileIO.nowUnixNano() }
        }
    }
}
