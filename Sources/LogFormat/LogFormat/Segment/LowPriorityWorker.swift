import Foundation
import Synchronization

// A serial worker on a thread of its own, optionally at a lower scheduling priority (a higher nice value), for the
// lay-out of sealed segments. Sealing runs after the acknowledgements (a segment's records are durable in its
// write-ahead log before it is laid out), so it can wait while receivers have work: on a machine whose cores the
// receivers fill, a seal at the same priority took a core from them for the seconds it ran. libdispatch on Linux
// gives its queues no thread priority, and a worker thread of its pool cannot be given one back once lowered
// (raising priority again needs CAP_SYS_NICE), so this owns its thread. A seal must not wait for ever, though: when
// `lowerWhile` says the work is falling behind, the lowered thread hands the jobs to a fresh one at the process's
// priority, and ends.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

final class LowPriorityWorker: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var running = false
    }

    private let state = Mutex(State())
    /// Added to the nice value of the worker's thread; 0 runs it at the priority of the process.
    let niceIncrement: Int32
    /// Asked before each job: false means the work is falling behind, so the jobs go on at the process's priority.
    private let lowerWhile: @Sendable () -> Bool

    init(niceIncrement: Int32, lowerWhile: @escaping @Sendable () -> Bool = { true }) {
        self.niceIncrement = niceIncrement
        self.lowerWhile = lowerWhile
    }

    /// Runs `job` after the jobs given before it, one at a time, on the worker's thread. The thread is started
    /// for the first job and ends when none is left, so an idle log holds no thread.
    func async(_ job: @escaping @Sendable () -> Void) {
        let start = state.withLock { s in
            s.jobs.append(job)
            defer { s.running = true }
            return !s.running
        }
        guard start else { return }
        Thread.detachNewThread { [self] in run() }
    }

    /// Each job runs at the priority `lowerWhile` asks for just before it.
    private func run() {
        var lowered = false
        while true {
            let low = lowerWhile()
            if lowered && !low {
                // This thread cannot be raised again: the jobs go on on a new one, at the process's priority. A thread
                // inherits its creator's nice value, so a thread of the dispatch pool (never lowered) starts it.
                DispatchQueue.global().async { Thread.detachNewThread { [self] in run() } }
                return
            }
            if low && !lowered { lowered = lowerPriority() }
            guard let next = take() else { return }
            next()
        }
    }

    private func take() -> (@Sendable () -> Void)? {
        state.withLock { s in
            guard !s.jobs.isEmpty else {
                s.running = false
                return nil
            }
            return s.jobs.removeFirst()
        }
    }

    /// On Linux the nice value belongs to the thread: `setpriority(PRIO_PROCESS, 0, …)` sets the calling
    /// thread's. A refusal only leaves the thread at the process's priority. True when the thread was lowered.
    private func lowerPriority() -> Bool {
        #if os(Linux)
            guard niceIncrement > 0 else { return false }
            errno = 0
            let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            guard errno == 0 else { return false }
            return setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, current + niceIncrement) == 0
        #else
            return false
        #endif
    }
}
