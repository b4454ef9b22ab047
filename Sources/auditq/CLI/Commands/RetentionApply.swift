import ArgumentParser
import AuditQuery
import RemoteStore
import StoreQuery

extension AuditQ.Retention {
    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "apply",
            abstract:
                "Archive, expire (leaving tombstones) and finish interrupted work; safe to run again at any time.")
        @OptionGroup var options: PolicyOptions
        /// Test hook, not an interface: waits this long between the job's steps, so the retention CLI test can
        /// SIGKILL a real run part-way. Hidden from --help; nothing else should pass it.
        @Option(help: .hidden) var stepDelayMs: UInt64 = 0

        func run() throws {
            let policy = try options.policy()
            let zone = try options.zoneOptions.zone
            var failed = false
            for bucket in try options.store.remotes() {
                let report = try bucket.applyRetention(policy: policy, now: options.instant)
                print(report, at: bucket.location, zone: zone)
                failed = failed || !report.problems.isEmpty
            }
            for d in try options.directories() {
                var job = RetentionJob(directory: d, policy: policy)
                job.stepDelayNanos = stepDelayMs * 1_000_000
                let report = try job.apply(now: options.instant)
                if report.busy {
                    note("auditq: \(d.root): another retention job is running; nothing done")
                    continue
                }
                print(report, at: d.root, zone: zone)
                failed = failed || !report.problems.isEmpty
            }
            if failed { throw ExitCode(ExitStatus.failure) }
        }

        /// What was done where, and what was held (by a legal hold or, in a bucket, by Object Lock).
        func print(_ report: RetentionJob.Report, at place: String, zone: TimeZoneSpec) {
            let items = report.done + report.plan.items.filter { $0.action == .held }
            let unchanged = report.plan.unchanged
            if options.output.json {
                Swift.print(
                    RetentionOutput.json(
                        items, now: report.plan.now, unchanged: unchanged, problems: report.problems, applied: true))
            } else {
                Swift.print("\(place):")
                Swift.print(
                    RetentionOutput.table(
                        items, unchanged: unchanged, problems: report.problems, applied: true, zone: zone))
            }
        }
    }
}
