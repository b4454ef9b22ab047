import Dispatch
import Foundation
import TestSupport
import Testing

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
}
