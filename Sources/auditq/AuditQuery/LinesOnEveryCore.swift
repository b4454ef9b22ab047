// A large answer's lines rendered on every core and written in order. Rendering a heavy user's day is about a third
// of the process (25 MB of JSON for 18,664 events); its lines do not depend on each other, so the items are cut into
// runs, each core renders the next run not yet taken with a renderer of its own, and the runs are written in order:
// the bytes are those of rendering the items one after another.
import Dispatch
import Foundation
import LogFormat
import Synchronization

/// Renders one line per item (each followed by a newline) on every core and hands the bytes to `write` in item order,
/// in pieces of about `flushBytes` or a run at a time; `write` is called by one core at a time, with bytes valid
/// for the call. `render` appends an item's line to the run's buffer, raw memory (`LineArena`): rendered there
/// rather than into a row's own memory and copied into an array, a heavy day's 25 MB are written once. The items are cut
/// into runs of about `run` items, each continued to where `key` changes (up to twice `run`), so that a run's items
/// mostly share what a renderer keeps per key (a block's rendered strings and shapes). Each core makes its own
/// renderer with `renderer`. The run whose turn it is streams out as it is rendered; a run rendered ahead of its turn
/// is held until then, with at most two runs per core taken and not yet written. When rendering throws, what came
/// before the failing item is written (all of it, or up to its last piece) and nothing after it, and the error is
/// thrown. `cores`: at most this many threads (one renders on the caller's).
public func writeLinesOnEveryCore<T: Sendable, R, E: Error>(
    _ items: [T], run: Int, key: (T) -> Int32, cores: Int = onlineCores,
    flushBytes: Int = 128 << 10, renderer: @Sendable () -> R,
    _ render: @Sendable (inout R, T, LineArena) throws(E) -> Void,
    write: @Sendable (UnsafeBufferPointer<UInt8>) -> Void
) throws(E) {
    let runs = Runs.cut(items, run: run, key: key)
    let state = Mutex(Runs.State<E>())
    let next = Atomic<Int>(0)
    let workers = max(1, min(cores, runs.count))
    // At most this many runs taken and not yet written: when the reader of the output is slower than the cores, runs
    // rendered ahead would otherwise be held without bound (a whole activity's 165 MB behind a slow pipe).
    let ahead = DispatchSemaphore(value: 2 * workers)
    // Places taken and not given back: a failure leaves some (runs never written), and libdispatch traps when a
    // semaphore below its starting value is freed, so they are given back at the end.
    let held = Atomic<Int>(0)
    @Sendable func take() {
        ahead.wait()
        held.add(1, ordering: .relaxed)
    }
    @Sendable func give() {
        held.subtract(1, ordering: .relaxed)
        ahead.signal()
    }
    let core = CallerCore()
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
        var r = renderer()
        var buffer = Runs.buffer()
        while true {
            take()
            core.step()
            let k = next.add(1, ordering: .relaxed).oldValue
            // After a failure nothing more is written, so nothing frees a place: pass the place on to whoever waits.
            guard k < runs.count, state.withLock({ $0.failure == nil }) else {
                give()
                return
            }
            // A run held whole has its buffer's pages reused for a later run: fresh pages are a fault each.
            var streaming = false
            var failure: E?
            // Asked again only once another `flushBytes` is held: the lock is the other cores' too.
            var ask = flushBytes
            do throws(E) {
                for i in runs[k] {
                    try render(&r, items[i], buffer)
                    buffer.arena.byte(UInt8(ascii: "\n"))
                    guard buffer.arena.count >= ask else { continue }
                    if !streaming { streaming = state.withLock { $0.startStreaming(k) } }
                    if streaming {
                        write(buffer.arena.bytes)
                        buffer.arena.removeAll()
                    } else {
                        ask = buffer.arena.count + flushBytes
                    }
                }
            } catch {
                failure = error
            }
            if streaming && failure == nil {
                write(buffer.arena.bytes)
                buffer.arena.removeAll()
            }
            if streaming || failure != nil { give() }
            var turn = state.withLock { s in
                if let failure { s.failed(k, failure) }
                if streaming {
                    s.writing = false
                } else if failure == nil {
                    s.ready[k] = buffer
                    buffer = s.spare.popLast() ?? Runs.buffer()
                }
                return s.takeTurn()
            }
            // This core writes while the next run in order is ready and no other core is writing.
            while let out = turn {
                turn = nil
                write(out.arena.bytes)
                give()
                out.arena.removeAll()
                turn = state.withLock { s in
                    s.spare.append(out)
                    s.writing = false
                    return s.takeTurn()
                }
            }
            if failure != nil { return }
        }
    }
    for _ in 0..<held.load(ordering: .relaxed) { ahead.signal() }
    if let (_, error) = state.withLock({ $0.failure }) { throw error }
}

/// The processors online, as libdispatch counts the threads `concurrentPerform` runs on. Not
/// `ProcessInfo.activeProcessorCount`: that reads the cgroup's CPU quota from files through Foundation's URL and
/// makes the Swift runtime scan the binary's protocol conformances, on the one thread, between a heavy question's
/// reading and its writing (about a fifth of a millisecond), for a bound the dispatch threads would not keep anyway.
public let onlineCores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))

/// How `writeLinesOnEveryCore` cuts its items and hands the runs from core to core.
enum Runs {
    /// A new buffer for a run, sized to take one without growing (each growth copies it).
    static func buffer() -> LineArena { LineArena(capacity: 1 << 20) }

    /// `items`' indices cut into runs of at least `run` items (the last may be shorter), each continued while `key`
    /// stays the same, up to twice `run`.
    static func cut<T>(_ items: [T], run: Int, key: (T) -> Int32) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var a = 0
        while a < items.count {
            var b = min(a + run, items.count)
            while b < items.count && b < a + 2 * run && key(items[b]) == key(items[b - 1]) { b += 1 }
            out.append(a..<b)
            a = b
        }
        return out
    }

    /// The runs rendered and not yet written, whose turn it is, and the first failure.
    struct State<E: Error>: ~Copyable {
        var ready: [Int: LineArena] = [:]
        /// The next run to write.
        var next = 0
        /// A core is writing (at most one, so runs go out in order).
        var writing = false
        /// Buffers already written, to render into again.
        var spare: [LineArena] = []
        /// The first run that failed and its error: it and the runs after it are never written.
        var failure: (Int, E)?

        mutating func failed(_ k: Int, _ error: E) {
            if failure.map({ k < $0.0 }) ?? true { failure = (k, error) }
        }

        /// The next run's bytes, when they are ready, nobody is writing and no earlier run failed; the caller then
        /// writes them and hands the buffer back.
        mutating func takeTurn() -> LineArena? {
            guard !writing, failure.map({ next < $0.0 }) ?? true, let bytes = ready.removeValue(forKey: next) else {
                return nil
            }
            writing = true
            next += 1
            return bytes
        }

        /// Whether run `k`, still being rendered, may write what it has and stream the rest: it is next, nobody is
        /// writing and no earlier run failed. The caller then writes and clears `writing` when the run ends.
        mutating func startStreaming(_ k: Int) -> Bool {
            guard !writing, next == k, failure.map({ k < $0.0 }) ?? true else { return false }
            writing = true
            next += 1
            return true
        }
    }
}
