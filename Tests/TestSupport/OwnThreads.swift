// Swift's cooperative pool has one thread per core, two on this machine, and the test runner queues every test
// of the run on it. A test that blocks a thread (a child process waited for, a synchronous sleep) holds one of
// the two for as long as it waits, and two such tests stall every other test of the process. Suites that block
// run their tests, and the tasks those tests start, on threads of their own.
import Foundation
import Testing

/// `@Suite(.ownThreads)`: the suite's tests (and the tasks they start) run on `BlockingExecutor.shared`, whose
/// threads may block without starving the cooperative pool.
public struct OwnThreads: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTaskExecutorPreference(BlockingExecutor.shared) { try await function() }
    }
}

extension Trait where Self == OwnThreads {
    /// The suite's tests block threads (child processes, synchronous waits): run them off the cooperative pool.
    public static var ownThreads: Self { Self() }
}

/// A task executor that starts a thread whenever a job arrives and no idle thread is left for it (up to
/// `maxThreads`), so a job never waits behind a blocked one. Idle threads stay for the next job.
public final class BlockingExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: every stored var is guarded by `condition`.
    public static let shared = BlockingExecutor(maxThreads: 1_024)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0
    private var threads = 0
    private var idle = 0
    private let maxThreads: Int

    init(maxThreads: Int) { self.maxThreads = maxThreads }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        // More jobs waiting than idle threads: a woken thread counts as idle until it takes the lock again, so
        // two jobs queued in that moment would otherwise share it, the second behind the first.
        let start = jobs.count - head > idle && threads < maxThreads
        if start { threads += 1 }
        condition.signal()
        condition.unlock()
        if start {
            let thread = Thread { [self] in work() }
            thread.name = "blocking-test"
            thread.start()
        }
    }

    private func work() {
        let executor = asUnownedTaskExecutor()
        while true {
            condition.lock()
            while head == jobs.count {
                idle += 1
                condition.wait()
                idle -= 1
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            condition.unlock()
            job.runSynchronously(on: executor)
        }
    }
}
