// The collector's own retention schedule (`retention.schedule_interval_seconds`): the same job as
// `auditq retention apply`, run at start-up and then every interval, on a thread of its own so the ingest path
// never waits for it. The directory's retention lock keeps it from overlapping a cron-run auditq.
import Dispatch
import LogFormat
import Logging
import ServiceLifecycle
import StoreQuery

public struct RetentionService: Service {
    public let job: RetentionJob
    public let intervalSeconds: Int
    let logger: Logger

    public init(directory: DataDirectory, policy: RetentionPolicy, logger: Logger) {
        job = RetentionJob(directory: directory, policy: policy)
        intervalSeconds = max(policy.scheduleIntervalSeconds, 1)
        self.logger = logger
    }

    /// One run, off the cooperative thread pool.
    public func runOnce() async -> RetentionJob.Report? {
        let job = self.job
        let logger = self.logger
        return await withCheckedContinuation { (c: CheckedContinuation<RetentionJob.Report?, Never>) in
            DispatchQueue.global(qos: .utility).async {
                do {
                    let report = try job.apply(logger: logger)
                    if report.busy {
                        logger.info("retention: another job holds the lock; skipped this run")
                    } else {
                        logger.info(
                            "retention run",
                            metadata: [
                                "archived": "\(report.done.filter { $0.action == .archive }.count)",
                                "expired": "\(report.done.filter { $0.action == .expire }.count)",
                                "held": "\(report.plan.count(.held))", "problems": "\(report.problems.count)",
                            ])
                        for p in report.problems { logger.error("retention problem", metadata: ["problem": "\(p)"]) }
                    }
                    c.resume(returning: report)
                } catch {
                    logger.error("retention run failed", metadata: ["error": "\(error)"])
                    c.resume(returning: nil)
                }
            }
        }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully {
            _ = await runOnce()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(intervalSeconds)) }
        }
    }
}
