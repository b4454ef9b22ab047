// A bounded cache of decompressed blocks of sealed segments, shared by the queries of one process.
import Synchronization

public final class BlockCache: Sendable {
    /// A block by the records it holds, not by its position: the hot and archive copies of a segment cut their
    /// blocks differently (archiving merges them), and the same ordinal range is the same raw payload in both.
    public struct Key: Hashable, Sendable {
        public var nodeID: NodeID
        public var sequence: UInt64
        public var firstOrdinal: UInt32
        public var recordCount: UInt32
    }

    /// A block as rows (its decompressed payload), as decoded events (a column block, which has no row payload to
    /// keep), or as a column block's every row read for output (`ColumnRows`, what queries through handles read).
    private enum Entry {
        case rows([UInt8])
        case events([AuditEvent])
        case output(ColumnRows)

        /// Bytes held, estimated for events from what a decoded span with SDK resources takes.
        var size: Int {
            switch self {
            case .rows(let p): p.count
            case .events(let e): e.count * 1024
            case .output(let r): r.bytesHeld
            }
        }

        /// Events and rows for output are kept side by side: a process asks both of a block (the event path and
        /// the handle path), and neither should evict the other.
        var form: Form { if case .output = self { .output } else { .decoded } }
    }

    private enum Form { case decoded, output }

    private struct Slot: Hashable {
        var key: Key
        var form: Form
    }

    private struct State {
        var entries: [Slot: (entry: Entry, tick: UInt64)] = [:]
        var bytes = 0
        var tick: UInt64 = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0
    }

    public let capacityBytes: Int
    /// Whether decoded column blocks are kept. A process that asks one question reads a block about once, and
    /// copying events out of the cache costs a retain per reference they hold: it decodes only the rows it
    /// needs instead.
    public let keepsEvents: Bool
    private let state = Mutex(State())

    /// `capacityBytes` bounds the decompressed bytes held; 0 disables caching.
    public init(capacityBytes: Int, keepsEvents: Bool = true) {
        self.capacityBytes = capacityBytes
        self.keepsEvents = keepsEvents
    }

    /// Drops everything held: the segments read may have changed under their names (an object replaced in a
    /// bucket keeps its node and sequence, which key this cache).
    public func removeAll() {
        state.withLock { s in
            s.entries.removeAll()
            s.bytes = 0
        }
    }

    public func get(_ key: Key) -> [UInt8]? {
        guard case .rows(let p) = lookUp(key) else { return nil }
        return p
    }

    public func put(_ key: Key, _ payload: [UInt8]) { store(key, .rows(payload)) }

    public func getEvents(_ key: Key) -> [AuditEvent]? {
        guard case .events(let e) = lookUp(key) else { return nil }
        return e
    }

    public func putEvents(_ key: Key, _ events: [AuditEvent]) {
        if keepsEvents { store(key, .events(events)) }
    }

    /// Every row of a column block read for output, kept like decoded events (only when `keepsEvents`).
    package func getOutputRows(_ key: Key) -> ColumnRows? {
        guard case .output(let r) = lookUp(key, .output) else { return nil }
        return r
    }

    package func putOutputRows(_ key: Key, _ rows: ColumnRows) {
        if keepsEvents { store(key, .output(rows)) }
    }

    private func lookUp(_ key: Key, _ form: Form = .decoded) -> Entry? {
        state.withLock { s in
            s.tick += 1
            let slot = Slot(key: key, form: form)
            guard var e = s.entries[slot] else {
                s.misses += 1
                return nil
            }
            s.hits += 1
            e.tick = s.tick
            s.entries[slot] = e
            return e.entry
        }
    }

    private func store(_ key: Key, _ entry: Entry) {
        let size = entry.size
        guard capacityBytes > 0, size <= capacityBytes / 4 else { return }
        state.withLock { s in
            s.tick += 1
            let slot = Slot(key: key, form: entry.form)
            if let old = s.entries[slot] { s.bytes -= old.entry.size }
            s.entries[slot] = (entry, s.tick)
            s.bytes += size
            if s.bytes > capacityBytes {
                // Evict the least recently used half of the bound in one pass (amortised O(1) per insert).
                let victims = s.entries.sorted { $0.value.tick < $1.value.tick }
                for (k, v) in victims {
                    guard s.bytes > capacityBytes / 2 else { break }
                    s.entries[k] = nil
                    s.bytes -= v.entry.size
                }
            }
        }
    }

    /// Bytes held (decoded events estimated), hits and misses so far.
    public var statistics: (bytes: Int, hits: UInt64, misses: UInt64) {
        state.withLock { ($0.bytes, $0.hits, $0.misses) }
    }
}
