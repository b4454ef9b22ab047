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
            let (streaming, failure) = Runs.render(
                runs[k], of: items, &r, into: buffer, flushBytes: flushBytes, render,
                startStreaming: { state.withLock { $0.startStreaming(k) } }, write: write)
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
            // Only once a failure is recorded: a core this place wakes must see it, or it renders a run that is never
            // written and then waits for a place that nobody gives back.
            if streaming || failure != nil { give() }
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

/// Items whose lines `writeLinesInOrder` writes one after another, with what a renderer of them is made from.
public struct LineBatch<C: Sendable, T: Sendable>: Sendable {
    public var context: C
    public var items: [T]

    public init(_ context: C, _ items: [T]) {
        self.context = context
        self.items = items
    }
}

/// `writeLinesOnEveryCore` of items that are read on the same cores as they are rendered: `read(i)` for each `i` in
/// `0..<reads` (taken in order, on any core), and `merge(i, piece)` (one at a time, in the order reads end) gives
/// the batches that became final, whose lines go out after `first`'s and earlier batches'. A core renders the next
/// run of items when one is there and fewer than two runs per core are taken and not written, and reads otherwise
/// (while fewer than eight runs per core wait to be taken, and no more than four per core past the first read not
/// ended: a slow writer or a slow read holds back the reading too);
/// a batch's context goes once its last run is taken and the renderers made of it (`renderer`, one per core and
/// batch) have moved on, so that later reading reuses its memory (fresh pages are a fault each). Runs are cut as
/// `writeLinesOnEveryCore` cuts them, within a batch.
///
/// A failure stops the taking of reads and runs: the lines of runs taken before it may be written (those before a
/// failing item only, as `writeLinesOnEveryCore` writes them), nothing after it; the error thrown is the first read
/// failure in read order if there is one, else the merge's failure, else the first rendering failure. Returns how
/// many items the batches held.
public func writeLinesInOrder<P: Sendable, C: Sendable, T: Sendable, R, E: Error>(
    first: [LineBatch<C, T>], reads: Int, read: @Sendable (Int) throws(E) -> P,
    merge: @Sendable (Int, P) throws(E) -> [LineBatch<C, T>], run: Int, key: @Sendable (T) -> Int32,
    cores: Int = onlineCores, flushBytes: Int = 128 << 10, renderer: @Sendable (C) -> R,
    _ render: @Sendable (inout R, T, LineArena) throws(E) -> Void,
    write: @Sendable (UnsafeBufferPointer<UInt8>) -> Void
) throws(E) -> Int {
    let state = Mutex(Pipeline<C, T, E>(reads: reads))
    state.withLock { s in
        for b in first { s.add(b, run: run, key: key) }
    }
    let workers = max(1, min(cores, reads + state.withLock { $0.runs.count }))
    let limit = 2 * workers
    let merging = Mutex(())
    // Cores with nothing to take wait here; whoever changes what there is to take wakes them.
    let wake = DispatchSemaphore(value: 0)
    @Sendable func wakeIdle(_ n: Int) { for _ in 0..<n { wake.signal() } }
    let core = CallerCore()
    @Sendable func work(_: Int) {
        var r: R?
        var rendering = -1
        var buffer = Runs.buffer()
        while true {
            switch state.withLock({ $0.next(reads: reads, limit: limit) }) {
            case .exit:
                return
            case .wait:
                wake.wait()
            case .read(let i):
                core.step()
                let piece = Result { () throws(E) in try read(i) }
                // Merged under a lock of their own, one at a time, each adding its batches before the next: the
                // cores' lock is held for no more than a few assignments (a core preempted while holding it would
                // stop the other).
                wakeIdle(
                    merging.withLock { _ in
                        var made = Result<[LineBatch<C, T>], E>.success([])
                        if case .success(let p) = piece, !state.withLock({ $0.readFailure != nil }) {
                            made = Result { () throws(E) in try merge(i, p) }
                        }
                        return state.withLock { $0.ended(i, piece, made, run: run, key: key) }
                    })
            case .render(let k, let b, let context, let items, let range):
                core.step()
                if b != rendering {
                    r = nil
                    r = renderer(context)
                    rendering = b
                }
                let (streaming, failure) = Runs.render(
                    range, of: items, &r!, into: buffer, flushBytes: flushBytes, render,
                    startStreaming: { state.withLock { $0.writes.startStreaming(k) } }, write: write)
                var (turn, woken) = state.withLock { s in
                    if let failure { s.writes.failed(k, failure) }
                    if streaming || failure != nil { s.taken -= 1 }
                    if streaming {
                        s.writes.writing = false
                    } else if failure == nil {
                        s.writes.ready[k] = buffer
                        buffer = s.writes.spare.popLast() ?? Runs.buffer()
                    }
                    return (s.writes.takeTurn(), s.takeIdle())
                }
                wakeIdle(woken)
                while let out = turn {
                    turn = nil
                    write(out.arena.bytes)
                    out.arena.removeAll()
                    (turn, woken) = state.withLock { s in
                        s.taken -= 1
                        s.writes.spare.append(out)
                        s.writes.writing = false
                        return (s.writes.takeTurn(), s.takeIdle())
                    }
                    wakeIdle(woken)
                }
            }
        }
    }
    if workers == 1 {
        work(0)
    } else {
        DispatchQueue.concurrentPerform(iterations: workers) { work($0) }
    }
    return try state.withLock { s throws(E) -> Int in
        if let (_, error) = s.readFailure { throw error }
        if let (_, error) = s.writes.failure { throw error }
        return s.items
    }
}

/// What `writeLinesInOrder`'s cores share: the batches and their runs, what is taken, what waits to be written.
struct Pipeline<C: Sendable, T: Sendable, E: Error>: ~Copyable {
    var writes = Runs.State<E>()
    /// The batches whose runs are not all taken (nil after).
    var batches: [LineBatch<C, T>?] = []
    /// Per batch, its runs not yet taken.
    var untaken: [Int] = []
    var runs: [(batch: Int, items: Range<Int>)] = []
    var nextRun = 0
    /// Runs taken and neither written nor failed.
    var taken = 0
    var nextRead = 0
    var readsEnded = 0
    /// Which reads have ended, and the first that has not.
    var ended: [Bool]
    var unended = 0
    /// The first read that failed, in read order, or the merge that failed, and its error.
    var readFailure: (Int, E)?
    /// Cores waiting for something to take.
    var idle = 0
    var items = 0

    init(reads: Int) { ended = [Bool](repeating: false, count: reads) }

    enum Job {
        case read(Int)
        /// Run `k`, of batch `b` (its context and items), its items `range`.
        case render(Int, Int, C, [T], Range<Int>)
        case wait
        case exit
    }

    mutating func add(_ batch: LineBatch<C, T>, run: Int, key: (T) -> Int32) {
        let cut = Runs.cut(batch.items, run: run, key: key)
        guard !cut.isEmpty else { return }
        items += batch.items.count
        untaken.append(cut.count)
        batches.append(batch)
        for r in cut { runs.append((batches.count - 1, r)) }
    }

    /// What a core takes next: a run while fewer than `limit` are taken and not written, else a read while fewer
    /// than `4 * limit` runs wait to be taken and it is fewer than `2 * limit` past the first read not ended, else
    /// it waits (for a read to end or a run to be written) or, when
    /// everything is taken or something failed, ends.
    mutating func next(reads: Int, limit: Int) -> Job {
        if readFailure != nil || writes.failure != nil { return .exit }
        if nextRun < runs.count && taken < limit {
            let k = nextRun
            nextRun += 1
            taken += 1
            let (b, range) = runs[k]
            let batch = batches[b]!
            untaken[b] -= 1
            if untaken[b] == 0 { batches[b] = nil }
            return .render(k, b, batch.context, batch.items, range)
        }
        // Not while `4 * limit` runs wait to be taken: a writer slower than the cores would have every piece read
        // and held (a heavy day's blocks behind a slow pipe); nor `2 * limit` reads past the first not ended, which
        // holds back the batches of those after it. (Wider bounds than the rendering's: a core whose partner was
        // preempted keeps reading meanwhile, as it would before any line is written; on a quiet machine the runs
        // are taken as they come and neither bound is met.)
        if nextRead < reads && runs.count - nextRun < 4 * limit && nextRead < unended + 2 * limit {
            nextRead += 1
            return .read(nextRead - 1)
        }
        if readsEnded == reads && nextRun == runs.count { return .exit }
        idle += 1
        return .wait
    }

    /// Read `i` ended with `piece`, which merged into `made` (not merged after a failure): its batches' runs
    /// added. Returns how many cores to wake.
    mutating func ended<P>(
        _ i: Int, _ piece: Result<P, E>, _ made: Result<[LineBatch<C, T>], E>, run: Int, key: (T) -> Int32
    ) -> Int {
        readsEnded += 1
        ended[i] = true
        while unended < ended.count && ended[unended] { unended += 1 }
        if case .failure(let error) = piece {
            if readFailure.map({ i < $0.0 }) ?? true { readFailure = (i, error) }
        } else if readFailure == nil {
            switch made {
            case .success(let batches): for b in batches { add(b, run: run, key: key) }
            case .failure(let error): readFailure = (i, error)
            }
        }
        return takeIdle()
    }

    /// The cores waiting, which the caller wakes.
    mutating func takeIdle() -> Int {
        defer { idle = 0 }
        return idle
    }
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

    /// Renders the lines of `items[range]` into `buffer`, each followed by a newline. Once `flushBytes` are held,
    /// asks `startStreaming` whether the run may go out now (it is next, nobody is writing); then writes what it
    /// holds and streams the rest, the last of it included. Otherwise the whole run stays in `buffer`. Returns
    /// whether it streamed, and the failure that ended it (after which nothing more of it is written).
    static func render<T, R, E: Error>(
        _ range: Range<Int>, of items: [T], _ r: inout R, into buffer: LineArena, flushBytes: Int,
        _ render: (inout R, T, LineArena) throws(E) -> Void, startStreaming: () -> Bool,
        write: (UnsafeBufferPointer<UInt8>) -> Void
    ) -> (streaming: Bool, failure: E?) {
        var streaming = false
        // Asked again only once another `flushBytes` is held: the lock is the other cores' too.
        var ask = flushBytes
        do throws(E) {
            for i in range {
                try render(&r, items[i], buffer)
                buffer.arena.byte(UInt8(ascii: "\n"))
                guard buffer.arena.count >= ask else { continue }
                if !streaming { streaming = startStreaming() }
                if streaming {
                    write(buffer.arena.bytes)
                    buffer.arena.removeAll()
                } else {
                    ask = buffer.arena.count + flushBytes
                }
            }
        } catch {
            return (streaming, error)
        }
        if streaming {
            write(buffer.arena.bytes)
            buffer.arena.removeAll()
        }
        return (streaming, nil)
    }

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
