import Dispatch
import Foundation
import Testing

@testable import TestSupport

/// Tests that block a thread run on `BlockingExecutor`; the cooperative pool (one thread per core) must stay
/// free for everything else meanwhile.
@Suite struct BlockingExecutorTests {
    /// More blocked jobs than the cooperative pool has threads, each released only by a task on that pool: on
    /// the pool itself they would starve the releasing task and every wait would time out.
    @Test func blockedJobsLeaveTheCooperativePoolFree() async {
        let blocked = ProcessInfo.processInfo.activeProcessorCount + 2
        let gate = DispatchSemaphore(value: 0)
        let released = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<blocked {
                group.addTask {
                    await withTaskExecutorPreference(BlockingExecutor.shared) {
                        gate.wait(timeout: .now() + 60) == .success
                    }
                }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(50))
                for _ in 0..<blocked { gate.signal() }
                return true
            }
            var all = 0
            for await ok in group where ok { all += 1 }
            return all
        }
        #expect(released == blocked + 1)
    }

    /// Jobs that all wait for one another, queued back to back while the executor's threads are idle: each needs
    /// a thread of its own, including those queued before a woken idle thread has taken its job (which once
    /// left the last job queued behind a blocked one until its wait ran out).
    @Test func jobsQueuedTogetherEachGetAThread() async {
        let executor = BlockingExecutor(maxThreads: 256)
        for round in 1...24 {
            let count = round + 1  // one more than the idle threads the rounds before left
            let barrier = Barrier(count)
            let tasks = (0..<count).map { _ in
                Task(executorPreference: executor) { barrier.arriveAndWait(seconds: 10) }
            }
            var met = 0
            for task in tasks where await task.value { met += 1 }
            #expect(met == count, "round \(round): \(met) of \(count) jobs met")
            if met != count { break }
        }
    }
}

/// Lets `count` threads through once all of them have arrived, or each after `seconds`.
private final class Barrier: @unchecked Sendable {
    // @unchecked: `arrived` is guarded by `condition`.
    private let condition = NSCondition()
    private var arrived = 0
    private let count: Int

    init(_ count: Int) { self.count = count }

    /// Whether all arrived before the deadline.
    func arriveAndWait(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        defer { condition.unlock() }
        arrived += 1
        condition.broadcast()
        while arrived < count {
            if !condition.wait(until: deadline) { return arrived >= count }
        }
        return true
    }
}
