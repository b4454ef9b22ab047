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

    private struct State {
        var entries: [Key: (payload: [UInt8], tick: UInt64)] = [:]
        var bytes = 0
        var tick: UInt64 = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0
    }

    public let capacityBytes: Int
    private let state = Mutex(State())

    /// `capacityBytes` bounds the decompressed bytes held; 0 disables caching.
    public init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    public func get(_ key: Key) -> [UInt8]? {
        state.withLock { s in
            s.tick += 1
            guard var e = s.entries[key] else {
                s.misses += 1
                return nil
            }
            s.hits += 1
            e.tick = s.tick
            s.entries[key] = e
            return e.payload
        }
    }

    public func put(_ key: Key, _ payload: [UInt8]) {
        guard capacityBytes > 0, payload.count <= capacityBytes / 4 else { return }
        state.withLock { s in
            s.tick += 1
            if let old = s.entries[key] { s.bytes -= old.payload.count }
            s.entries[key] = (payload, s.tick)
            s.bytes += payload.count
            if s.bytes > capacityBytes {
                // Evict the least recently used half of the bound in one pass (amortised O(1) per insert).
                let victims = s.entries.sorted { $0.value.tick < $1.value.tick }
                for (k, v) in victims {
                    guard s.bytes > capacityBytes / 2 else { break }
                    s.entries[k] = nil
                    s.bytes -= v.payload.count
                }
            }
        }
    }

    /// Decompressed bytes held, hits and misses so far.
    public var statistics: (bytes: Int, hits: UInt64, misses: UInt64) {
        state.withLock { ($0.bytes, $0.hits, $0.misses) }
    }
}
