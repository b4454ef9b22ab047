import Synchronization
import Testing

@testable import LogFormat

#if canImport(Glibc)
    import Glibc
#endif

/// The worker that lays out sealed segments: a serial queue on a thread of its own at a lower priority.
@Suite struct LowPriorityWorkerTests {
    final class Log: Sendable {
        let state = Mutex((order: [Int](), running: 0, overlapped: false))
    }

    /// Jobs run in the order given, one at a time, also when given while one runs and after the thread ended.
    @Test func jobsRunInOrderOneAtATime() async {
        let worker = LowPriorityWorker(niceIncrement: 5)
        let log = Log()
        for round in 0..<3 {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                for i in 0..<50 {
                    worker.async {
                        log.state.withLock {
                            $0.running += 1
                            if $0.running > 1 { $0.overlapped = true }
                        }
                        usleep(UInt32(i % 3) * 100)
                        log.state.withLock {
                            $0.order.append(round * 50 + i)
                            $0.running -= 1
                        }
                    }
                }
                worker.async { done.resume() }
            }
        }
        let seen = log.state.withLock { $0 }
        #expect(seen.order == Array(0..<150))
        #expect(!seen.overlapped)
    }

    #if os(Linux)
        /// The jobs' thread runs at the process's nice value plus the increment (the priority a seal runs at).
        @Test func jobsRunAtTheLowerPriority() async {
            let base = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            let worker = LowPriorityWorker(niceIncrement: 7)
            let nice = await withCheckedContinuation { (c: CheckedContinuation<Int32, Never>) in
                worker.async { c.resume(returning: getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)) }
            }
            #expect(nice == min(base + 7, 19))
            // The caller's own thread is left as it was.
            #expect(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) == base)
        }
    #endif
}
