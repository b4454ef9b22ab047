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

        /// When the work falls behind (`lowerWhile` turns false), the jobs after the current one run at the
        /// process's priority, in order; once it catches up, they run lowered again.
        @Test func jobsGoOnAtTheProcessPriorityWhenBehind() async {
            let base = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            let behind = Mutex(false)
            let worker = LowPriorityWorker(niceIncrement: 7) { !behind.withLock { $0 } }
            let seen = Mutex([(job: Int, nice: Int32)]())
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                for i in 0..<4 {
                    worker.async {
                        if i == 1 { behind.withLock { $0 = true } }
                        seen.withLock { $0.append((i, getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0))) }
                    }
                }
                worker.async { done.resume() }
            }
            let behindRun = seen.withLock { $0 }
            #expect(behindRun.map(\.job) == [0, 1, 2, 3])
            #expect(behindRun.map(\.nice) == [min(base + 7, 19), min(base + 7, 19), base, base])
            behind.withLock { $0 = false }
            let nice = await withCheckedContinuation { (c: CheckedContinuation<Int32, Never>) in
                worker.async { c.resume(returning: getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)) }
            }
            #expect(nice == min(base + 7, 19))
        }
    #endif
}
