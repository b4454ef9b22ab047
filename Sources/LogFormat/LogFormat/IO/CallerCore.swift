// Work shared among threads on every core (`DispatchQueue.concurrentPerform`) starts on the caller's thread and on
// a helper the dispatch pool wakes. On this project's machine the helper often woke on the caller's processor and
// stayed there for the first 10–16 ms of a heavy question, the two threads taking turns of 4 ms on one core while the
// other idled (a `sched_switch` trace of the process). `CallerCore` moves a helper found on the caller's processor
// to another once, without pinning it.
import CPlatform
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where the thread that shares out some work runs, for the threads helping it: each calls `step()` as it takes a
/// piece of the work.
package final class CallerCore: Sendable {
    private let cpu: Atomic<Int32>
    private let caller: pthread_t

    /// Made on the caller's thread.
    package init() {
        cpu = Atomic(cplatform_current_cpu())
        caller = pthread_self()
    }

    /// On the caller's thread, notes its processor; on another, moves the thread to another processor when it runs
    /// on the caller's (its affinity narrowed and widened again: not pinned).
    package func step() {
        if pthread_equal(pthread_self(), caller) != 0 {
            cpu.store(cplatform_current_cpu(), ordering: .relaxed)
        } else {
            _ = cplatform_leave_cpu(cpu.load(ordering: .relaxed))
        }
    }
}
