import ArgumentParser
import AuditQuery
import RemoteStore
import StoreQuery

extension AuditQ.Retention {
    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plan",
            abstract: "Dry run: which segments would be archived, expired or held, with bytes before and after.")
        @OptionGroup var options: PolicyOptions

        func run() throws {
            let policy = try options.policy()
            let zone = try options.zoneOptions.zone
            for bucket in try options.store.remotes() {
                let plan = try bucket.retentionPlan(policy: policy, now: options.instant)
                if options.output.json {
                    print(RetentionOutput.json(plan.items, now: plan.now, unchanged: plan.unchanged, applied: false))
                } else {
                    print("\(bucket.location):")
                    print(RetentionOutput.table(plan.items, unchanged: plan.unchanged, applied: false, zone: zone))
                }
            }
            for d in try options.directories() {
                let plan = try RetentionJob(directory: d, policy: policy).plan(now: options.instant)
                if options.output.json {
                    print(RetentionOutput.json(plan.items, now: plan.now, unchanged: plan.unchanged, applied: false))
                } else {
                    print("\(d.root):")
                    print(RetentionOutput.table(plan.items, unchanged: plan.unchanged, applied: false, zone: zone))
                }
            }
        }
    }
}
