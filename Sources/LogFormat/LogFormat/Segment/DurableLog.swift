// Group commit over a SegmentWriter: many callers append concurrently; one writer queue takes everything
// pending, writes it as blocks, fsyncs once under the policy, and then tells every caller its batch is
// durable. Acknowledged means durable (../shared/DESIGN.md, "Collector").
import CPlatform
import Dispatch
import Logging
import Synchronization

/// When appended data is made durable, and so when a caller is told its batch is durable.
public enum FsyncPolicy: Sendable, Hashable, CustomStringConvertible {
    /// Reply after an fsync that covers the batch; concurrent batches share one fsync.
    case always
    /// Reply once the batch is written to the file (it survives a process crash); fsync at least every
    /// `milliseconds`, so a power loss costs at most that window.
    case interval(milliseconds: Int)
    /// Reply once written; fsync only when a segment is sealed.
    case never

    public var description: String {
        switch self {
        case .always: "always"
        case .interval(let ms): "interval(\(ms)ms)"
        case .never: "never"
        }
    }
}

/// Told what the writer queue does, as it happens: the hook for metrics. Called on the writer queue (`sealed`
/// also on the sealer's queue), so an observer must be quick, safe to call from two threads, and must not call
/// back into the log.
public protocol DurableLogObserver: Sendable {
    /// One group commit: `events` from `batches` appends were written (and synced under `always`).
    func committed(events: Int, batches: Int, bytesWritten: UInt64)
    /// An fsync took `nanos`.
    func synced(nanos: UInt64)
    /// A segment was sealed.
    func sealed(_ entry: CatalogEntry)
    /// A write, flush or sync failed; the batches it covered were refused.
    func failed(_ error: LogFormatError)
}

public final class DurableLog: Sendable {
    public struct Options: Sendable {
        public var writer = WriterOptions()
        public var fsync: FsyncPolicy = .interval(milliseconds: 50)
        /// Events waiting for the writer beyond which `append` refuses with `.busy` (backpressure).
        public var maxPendingEvents = 200_000
        /// Added to the nice value of the thread that lays out sealed segments (Linux), so that receivers and
        /// the writer come first while a seal runs (a segment is durable in its log before it is laid out);
        /// 0: the process's priority. When more than `lowPriorityBacklog` logs await their lay-out, the seal
        /// goes on at the process's priority, so a collector at full load cannot fall behind for ever.
        public var sealNiceIncrement: Int32 = 10
        /// Retired logs (the one being laid out included) up to which the lay-out runs at the lower priority.
        public var lowPriorityBacklog = 2
        public init() {}
    }

    /// Counters for metrics and tests.
    public struct Statistics: Sendable {
        public var pendingEvents = 0
        public var appendedEvents: UInt64 = 0
        public var commits: UInt64 = 0
        public var fsyncs: UInt64 = 0
        public var lastFsyncNanos: UInt64 = 0
        public var segmentsSealed: UInt64 = 0
        public var bytesWritten: UInt64 = 0
        public var refusedEvents: UInt64 = 0
        /// The last write, flush or fsync failed (disk full, I/O error) and no later one has succeeded.
        public var writeFailing = false
    }

    private struct Pending {
        var batch: PreparedBatch
        var origin: String?
        var continuation: CheckedContinuation<AppendReceipt, any Error>
    }

    private struct State {
        var pending: [Pending] = []
        var drainScheduled = false
        var layOutScheduled = false
        var closed = false
        var stats = Statistics()
    }

    public let options: Options
    public let nodeID: NodeID
    public let recoveries: [RecoveryReport]
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "audit.segment-writer")
    // Touched only on `queue`, which serialises every use; `QueueBound` checks that on every access.
    private let writerOnQueue: QueueBound<SegmentWriter>
    private let timerOnQueue: QueueBound<DispatchSourceTimer?>
    private var writer: SegmentWriter { writerOnQueue.value }
    /// Lays out retired logs on a thread of its own (at a lower priority when `sealNiceIncrement` says so), so
    /// appends go on while a segment is sealed.
    private let sealQueue: LowPriorityWorker
    private let sealer: Sealer
    private var timer: DispatchSourceTimer? {
        get { timerOnQueue.value }
        set { timerOnQueue.value = newValue }
    }
    private let logger: Logger
    private let observer: (any DurableLogObserver)?

    public init(
        directory: DataDirectory, options: Options = Options(), observer: (any DurableLogObserver)? = nil,
        logger: Logger
    ) throws(LogFormatError) {
        self.options = options
        self.logger = logger
        self.observer = observer
        let writer = try SegmentWriter(directory: directory, options: options.writer, logger: logger)
        nodeID = writer.nodeID
        recoveries = writer.recoveries
        writerOnQueue = QueueBound(writer, queue: queue)
        let sealer = Sealer(writer)
        self.sealer = sealer
        let backlog = options.lowPriorityBacklog
        sealQueue = LowPriorityWorker(niceIncrement: options.sealNiceIncrement) { [sealer] in
            sealer.retiredLogCount <= backlog
        }
        let tickMillis: Int
        switch options.fsync {
        case .interval(let ms): tickMillis = max(1, ms)
        default: tickMillis = 1_000
        }
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now() + .milliseconds(tickMillis), repeating: .milliseconds(tickMillis))
        timerOnQueue = QueueBound(t, queue: queue)
        t.setEventHandler { [weak self] in self?.tick() }
        t.resume()
    }

    public var statistics: Statistics { state.withLock { $0.stats } }

    /// True while the log takes appends: not closed, its queue below the limit, and its last write good.
    /// (Appends are still tried while writes fail, and the writer queue retries on its own, so the log
    /// notices by itself when space returns.)
    public var isAccepting: Bool {
        state.withLock { !$0.closed && $0.stats.pendingEvents < options.maxPendingEvents && !$0.stats.writeFailing }
    }

    /// Appends `events` and returns once they are durable under the fsync policy. Throws `.busy`
    /// at once when too much is pending (the caller should answer "retry later"), `.invalidState` after
    /// `close()`, or the write error that prevented durability.
    /// `origin` labels the batch for the writer's `SegmentTrailer`, which is told, once the batch is part of a
    /// segment, how many records came under that label.
    public func append(_ events: [AuditEvent], origin: String? = nil) async throws -> AppendReceipt {
        // Encoding, hashing and term extraction happen here, on the caller's thread, in parallel with other
        // callers; the writer queue then only copies, compresses and writes.
        let batch = try PreparedBatch(events)
        return try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<AppendReceipt, any Error>) in
            let outcome: LogFormatError? = state.withLock { s in
                if s.closed { return LogFormatError(.invalidState, "the log is closed") }
                if s.stats.pendingEvents + batch.count > options.maxPendingEvents && s.stats.pendingEvents > 0 {
                    s.stats.refusedEvents += UInt64(batch.count)
                    return LogFormatError(
                        .busy, "ingest queue full: \(s.stats.pendingEvents) events waiting for the disk")
                }
                s.pending.append(Pending(batch: batch, origin: origin, continuation: continuation))
                s.stats.pendingEvents += batch.count
                return nil
            }
            if let outcome {
                continuation.resume(throwing: outcome)
                return
            }
            scheduleDrain()
        }
    }

    private func scheduleDrain() {
        let schedule = state.withLock { s in
            if s.drainScheduled { return false }
            s.drainScheduled = true
            return true
        }
        if schedule { queue.async { self.drain() } }
    }

    /// Runs on `queue`: takes everything pending, writes it, syncs per policy, resumes the callers.
    private func drain() {
        while true {
            let batch: [Pending] = state.withLock { s in
                let b = s.pending
                s.pending.removeAll()
                if b.isEmpty { s.drainScheduled = false }
                return b
            }
            if batch.isEmpty { return }
            // Refused means not stored: when the group's flush or fsync fails, every batch of the group is
            // refused, so the writer goes back to this mark (a failing append already rolled back its own batch).
            let groupStart = writer.mark()
            var receipts: [Result<AppendReceipt, LogFormatError>] = []
            receipts.reserveCapacity(batch.count)
            for item in batch {
                do throws(LogFormatError) {
                    receipts.append(.success(try writer.append(item.batch)))
                } catch {
                    receipts.append(.failure(error))
                }
            }
            var commitError: LogFormatError?
            var fsyncNanos: UInt64 = 0
            do throws(LogFormatError) {
                try writer.flush()
                if options.fsync == .always {
                    let t0 = FileIO.monotonicNanos()
                    try writer.sync()
                    fsyncNanos = FileIO.monotonicNanos() - t0
                }
            } catch {
                commitError = error
                writer.rollBack(to: groupStart)
            }
            let count = batch.reduce(0) { $0 + $1.batch.count }
            let written = writer.bytesWritten
            if let observer {
                if let commitError {
                    observer.failed(commitError)
                } else {
                    let stored = receipts.reduce(0) { $0 + ((try? $1.get())?.count ?? 0) }
                    let before = state.withLock { $0.stats.bytesWritten }
                    observer.committed(events: stored, batches: batch.count, bytesWritten: written &- before)
                    if fsyncNanos > 0 { observer.synced(nanos: fsyncNanos) }
                }
                for case .failure(let e) in receipts { observer.failed(e) }
            }
            // Before any roll below, so the trailer sees this group as part of the segment it went into.
            if commitError == nil, let trailer = options.writer.trailer {
                for (item, receipt) in zip(batch, receipts) {
                    if let origin = item.origin, case .success(let r) = receipt {
                        trailer.appended(origin: origin, count: r.count)
                    }
                }
            }
            state.withLock { s in
                s.stats.pendingEvents -= count
                s.stats.commits += 1
                if fsyncNanos > 0 {
                    s.stats.fsyncs += 1
                    s.stats.lastFsyncNanos = fsyncNanos
                }
                s.stats.bytesWritten = written
                s.stats.writeFailing =
                    commitError != nil
                    || receipts.contains { r in
                        if case .failure(let e) = r { return e.code == .io }
                        return false
                    }
                if commitError == nil {
                    s.stats.appendedEvents += UInt64(receipts.reduce(0) { $0 + ((try? $1.get())?.count ?? 0) })
                }
            }
            for (item, receipt) in zip(batch, receipts) {
                switch (receipt, commitError) {
                case (.success(let r), nil): item.continuation.resume(returning: r)
                case (.success, let e?): item.continuation.resume(throwing: e)
                case (.failure(let e), _): item.continuation.resume(throwing: e)
                }
            }
            if commitError == nil { rollIfNeeded() }
        }
    }

    private func rollIfNeeded() {
        do throws(LogFormatError) {
            if let entry = try writer.rollIfNeeded(layOut: false) { reportSealed([entry]) }
        } catch {
            logger.error("sealing a full segment failed; will retry", metadata: ["error": "\(error)"])
        }
        if writer.hasRetiredLogs { scheduleLayOut() }
    }

    private func reportSealed(_ entries: [CatalogEntry]) {
        guard !entries.isEmpty else { return }
        state.withLock { $0.stats.segmentsSealed += UInt64(entries.count) }
        for e in entries { observer?.sealed(e) }
    }

    /// Lays out the retired logs (and publishes what awaits publishing) on `sealQueue`, once at a time.
    private func scheduleLayOut() {
        let start = state.withLock { s in
            defer { s.layOutScheduled = true }
            return !s.layOutScheduled
        }
        guard start else { return }
        sealQueue.async { self.layOutNext() }
    }

    /// One log per job, so that the worker can change its priority between two (see `lowPriorityBacklog`).
    private func layOutNext() {
        var failed = false
        do throws(LogFormatError) {
            reportSealed(try sealer.layOutRetired(limit: 1))
        } catch {
            failed = true
            logger.error("laying out a sealed segment failed; will retry", metadata: ["error": "\(error)"])
        }
        // A lay-out frees about 100 MB at once (a part of records, its decoded events, the file's buffer), which
        // malloc's arenas kept resident: the next burst of ingest then raised the collector's peak on top of it
        // (bench-ingest's syslog phase, beside a seal: 324-340 MiB without this, 295-299 with; BENCHMARKS.md).
        _ = cplatform_release_free_pages()
        // A log retired while this ran is laid out next; after a failure the next tick tries again.
        let again = state.withLock { s in
            let more = !failed && sealer.hasRetiredLogs && !s.closed
            if !more { s.layOutScheduled = false }
            return more
        }
        if again { sealQueue.async { self.layOutNext() } }
    }

    /// Periodic work on `queue`: noticing that writes work again after a failure (refused batches were
    /// rolled back, so there is nothing of theirs to retry), the interval fsync and the age-based roll.
    private func tick() {
        if writer.hasUnwrittenBlock {
            do throws(LogFormatError) {
                try writer.probeSpace()
                state.withLock { $0.stats.writeFailing = false }
                logger.notice("writing again after a failed write")
            } catch {
                return  // still failing; the next tick tries again
            }
        }
        // Publishing waits for a lay-out in progress: it runs on the sealer's queue, not here.
        if sealer.hasRetiredLogs || sealer.hasUnpublishedSeals { scheduleLayOut() }
        if case .interval = options.fsync, writer.needsSync {
            let t0 = FileIO.monotonicNanos()
            do throws(LogFormatError) {
                try writer.sync()
                let dt = FileIO.monotonicNanos() - t0
                state.withLock {
                    $0.stats.fsyncs += 1
                    $0.stats.lastFsyncNanos = dt
                }
                observer?.synced(nanos: dt)
            } catch {
                observer?.failed(error)
                logger.error("interval fsync failed", metadata: ["error": "\(error)"])
            }
        }
        if !writer.hasBufferedRecords { rollIfNeeded() }
    }

    /// Holds the writer queue until the returned pause is resumed: appends queue up (and, past
    /// `maxPendingEvents`, are refused) but nothing is written. For maintenance that needs the files still
    /// (a consistent copy of the active segment) and for tests of backpressure.
    package func pauseWriter() -> WriterPause {
        let pause = WriterPause()
        queue.async { pause.semaphore.wait() }
        return pause
    }

    package final class WriterPause: Sendable {
        fileprivate let semaphore = DispatchSemaphore(value: 0)
        private let resumed = Mutex(false)
        /// Lets the writer go on; calling it again does nothing.
        package func resume() {
            let first = resumed.withLock { r in
                defer { r = true }
                return !r
            }
            if first { semaphore.signal() }
        }
        deinit { resume() }
    }

    /// Seals the active segment now (waits for pending appends first).
    public func sealNow() async throws -> CatalogEntry? {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<CatalogEntry?, any Error>) in
            queue.async {
                self.drain()
                do throws(LogFormatError) {
                    let entries = try self.sealAll()
                    self.reportSealed(entries)
                    c.resume(returning: entries.last)
                } catch {
                    c.resume(throwing: error)
                }
            }
        }
    }

    /// Stops accepting, writes everything pending, seals the active segment and fsyncs.
    public func close() async throws {
        state.withLock { $0.closed = true }
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            queue.async {
                self.timer?.cancel()
                self.timer = nil
                self.drain()
                do throws(LogFormatError) {
                    // What `writer.close()` would do (it only seals), once: a second final seal would ask the
                    // trailer again.
                    self.reportSealed(try self.sealAll(final: true))
                    c.resume()
                } catch {
                    c.resume(throwing: error)
                }
            }
        }
        // A lay-out that ran on the sealer queue while this sealed the rest has its segment in the catalog but may
        // not have counted it yet: wait for that queue's last turn, so statistics after close are complete.
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in sealQueue.async { c.resume() } }
    }
}

extension DurableLog {
    /// Runs on `queue`: seals the active segment and every retired log now (waiting for a lay-out in progress).
    fileprivate func sealAll(final: Bool = false) throws(LogFormatError) -> [CatalogEntry] {
        switch writer.options.sealLayout {
        case .columns:
            try writer.retire(final: final)
            return try sealer.layOutRetired()
        case .rows:
            return try writer.seal(final: final).map { [$0] } ?? []
        }
    }

    /// The part of the writer that laying out uses, for `sealQueue`: `layOutRetired()` touches only the
    /// writer's sealing state, which is behind its own locks (see `SegmentWriter.SealState`), never the active
    /// segment or the buffers that `queue` owns.
    fileprivate final class Sealer: @unchecked Sendable {
        private let writer: SegmentWriter
        init(_ writer: SegmentWriter) { self.writer = writer }
        func layOutRetired(limit: Int = .max) throws(LogFormatError) -> [CatalogEntry] {
            try writer.layOutRetired(limit: limit)
        }
        var hasRetiredLogs: Bool { writer.hasRetiredLogs }
        var retiredLogCount: Int { writer.retiredLogCount }
        var hasUnpublishedSeals: Bool { writer.hasUnpublishedSeals }
    }
}

/// A value that lives on one dispatch queue, as swift-nio's `NIOLoopBound` lives on one event loop: it is
/// handed over at init (before anything else can see it) and afterwards every read and write checks, at run
/// time, that it runs on `queue`. That check is the invariant that makes `@unchecked Sendable` safe here.
final class QueueBound<Value>: @unchecked Sendable {
    private let queue: DispatchQueue
    private var stored: Value

    init(_ value: Value, queue: DispatchQueue) {
        self.queue = queue
        self.stored = value
    }

    var value: Value {
        get {
            dispatchPrecondition(condition: .onQueue(queue))
            return stored
        }
        set {
            dispatchPrecondition(condition: .onQueue(queue))
            stored = newValue
        }
    }
}
