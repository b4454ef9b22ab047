// `auditq stats`: what the store holds, per tier and in all: segments, events, bytes on disk, the bytes the
// records take uncompressed (so the compression ratio), and the time the events cover.
import LogFormat
import StoreQuery

public struct StoreStats: Sendable {
    public struct Tier: Sendable {
        public var name: String
        public var segments = 0
        public var events: UInt64 = 0
        /// File sizes, headers, index and footer included.
        public var bytesOnDisk: UInt64 = 0
        /// Canonical record bytes (uncompressed) and their stored (compressed) block payloads.
        public var rawBytes: UInt64 = 0
        public var storedBytes: UInt64 = 0
        public var minTime: UInt64?
        public var maxTime: UInt64?

        mutating func add(events: UInt64, file: UInt64, blocks: [BlockLocation], min: UInt64?, max: UInt64?) {
            segments += 1
            self.events += events
            bytesOnDisk += file
            for b in blocks {
                rawBytes += UInt64(b.rawLength)
                storedBytes += UInt64(b.storedLength)
            }
            if let min, events > 0 { minTime = Swift.min(minTime ?? .max, min) }
            if let max, events > 0 { maxTime = Swift.max(maxTime ?? 0, max) }
        }

        public var compressionRatio: Double? { storedBytes > 0 ? Double(rawBytes) / Double(storedBytes) : nil }
        public var bytesPerEvent: Double? { events > 0 ? Double(bytesOnDisk) / Double(events) : nil }
    }

    /// hot, archive, remote (in an object store, with --store), unsealed (active segments), and the total.
    public var tiers: [Tier]
    public var directories: Int
    /// Segments expired by policy, from their tombstones (not part of the total: their records are gone;
    /// bytes on disk are the tombstones').
    public var expired = Tier(name: "expired")
    /// The same counts per node (collector) that wrote the segments, every tier together, by node id; shown when
    /// the store reads a bucket (`--store`: every node in it).
    public var nodes: [Tier] = []
    public var showsNodes = false

    public var total: Tier {
        var t = Tier(name: "total")
        for x in tiers {
            t.segments += x.segments
            t.events += x.events
            t.bytesOnDisk += x.bytesOnDisk
            t.rawBytes += x.rawBytes
            t.storedBytes += x.storedBytes
            if let m = x.minTime { t.minTime = min(t.minTime ?? .max, m) }
            if let m = x.maxTime { t.maxTime = max(t.maxTime ?? 0, m) }
        }
        return t
    }

    public static func collect(_ store: AuditStore) throws(LogFormatError) -> StoreStats {
        var hot = Tier(name: "hot")
        var archive = Tier(name: "archive")
        var open = Tier(name: "unsealed")
        // Segments read from an object store (and not also in a local directory).
        var remote = Tier(name: "remote")
        let remoteRoots = Set(store.remotes.map(\.location))
        var nodes: [NodeID: Tier] = [:]
        for (directory, entry) in store.sealedSegments {
            let reader = try store.reader(directory, entry)
            let seal = entry.seal
            nodes[entry.nodeID, default: Tier(name: entry.nodeID.hex)].add(
                events: seal.recordCount, file: entry.fileSize, blocks: reader.blocks, min: seal.minTime,
                max: seal.maxTime)
            if remoteRoots.contains(directory.root) {
                remote.add(
                    events: seal.recordCount, file: entry.fileSize, blocks: reader.blocks, min: seal.minTime,
                    max: seal.maxTime)
            } else if entry.tier == .archive {
                archive.add(
                    events: seal.recordCount, file: entry.fileSize, blocks: reader.blocks, min: seal.minTime,
                    max: seal.maxTime)
            } else {
                hot.add(
                    events: seal.recordCount, file: entry.fileSize, blocks: reader.blocks, min: seal.minTime,
                    max: seal.maxTime)
            }
        }
        for reader in try store.openSegmentReaders() {
            open.add(
                events: UInt64(reader.recordCount), file: UInt64(reader.file.count), blocks: reader.blocks,
                min: reader.blocks.map(\.minTime).min(), max: reader.blocks.map(\.maxTime).max())
            nodes[reader.nodeID, default: Tier(name: reader.nodeID.hex)].add(
                events: UInt64(reader.recordCount), file: UInt64(reader.file.count), blocks: reader.blocks,
                min: reader.blocks.map(\.minTime).min(), max: reader.blocks.map(\.maxTime).max())
        }
        var expired = Tier(name: "expired")
        for d in store.directories {
            for (path, t) in try d.loadTombstones().tombstones {
                expired.add(
                    events: t.seal.recordCount, file: UInt64(FileIO.fileSize(path: path) ?? 0), blocks: [],
                    min: t.seal.minTime,
                    max: t.seal.maxTime)
            }
        }
        var stats = StoreStats(
            tiers: [hot, archive] + (store.remotes.isEmpty ? [] : [remote]) + [open],
            directories: store.directories.count, expired: expired)
        stats.nodes = nodes.values.sorted { $0.name < $1.name }
        stats.showsNodes = !store.remotes.isEmpty
        return stats
    }

    /// Bytes of the sealed segments by part of the file, summed over the store (`stats --layout`), with each
    /// part's bytes per event.
    public static func layout(_ store: AuditStore) throws(LogFormatError) -> (parts: [(String, UInt64)], events: UInt64)
    {
        var parts: [String: UInt64] = [:]
        var events: UInt64 = 0
        for (directory, entry) in store.sealedSegments {
            events += entry.seal.recordCount
            for (name, n) in try store.reader(directory, entry).layoutBytes() { parts[name, default: 0] += UInt64(n) }
        }
        return (parts.sorted { $0.value > $1.value }.map { ($0.key, $0.value) }, events)
    }

    public static func layoutTable(_ layout: (parts: [(String, UInt64)], events: UInt64)) -> String {
        var rows = [["PART", "BYTES", "BYTES/EVENT"]]
        let total = layout.parts.reduce(0) { $0 + $1.1 }
        for (name, n) in layout.parts + [("total", total)] {
            rows.append([
                name, String(n), layout.events > 0 ? fixed(Double(n) / Double(layout.events), 2) : "-",
            ])
        }
        return Rendering.align(rows)
    }

    public func table(zone: TimeZoneSpec) -> String {
        let tierTable = Self.rows("TIER", tiers + [total] + (expired.segments > 0 ? [expired] : []), zone: zone)
        guard showsNodes else { return tierTable }
        return tierTable + "\n\n" + Self.rows("NODE", nodes + [total], zone: zone)
    }

    private static func rows(_ first: String, _ tiers: [Tier], zone: TimeZoneSpec) -> String {
        var rows = [
            [first, "SEGMENTS", "EVENTS", "BYTES ON DISK", "BYTES/EVENT", "RAW BYTES", "COMPRESSION", "FROM", "TO"]
        ]
        for t in tiers {
            rows.append([
                t.name, String(t.segments), String(t.events), String(t.bytesOnDisk),
                t.bytesPerEvent.map { fixed($0, 1) } ?? "-",
                String(t.rawBytes), t.compressionRatio.map { fixed($0, 2) + "x" } ?? "-",
                t.minTime.map { TimeExpression.format($0, zone: zone) } ?? "-",
                t.maxTime.map { TimeExpression.format($0, zone: zone) } ?? "-",
            ])
        }
        return Rendering.align(rows)
    }

    /// One JSON object: {"directories", "tiers": [{"tier", "segments", "events", "bytes_on_disk", "raw_bytes",
    /// "stored_block_bytes", "compression_ratio", "min_time_unix_nano", "max_time_unix_nano"}], "total": {…},
    /// "expired": {…}}, and "nodes": [{"node": id, the same fields}] when nodes are shown.
    public func json() -> String {
        func tier(_ t: Tier, key: String = "tier") -> String {
            "{\"\(key)\":\"\(t.name)\",\"segments\":\(t.segments),\"events\":\(t.events),\"bytes_on_disk\":\(t.bytesOnDisk),"
                + "\"raw_bytes\":\(t.rawBytes),\"stored_block_bytes\":\(t.storedBytes),"
                + "\"compression_ratio\":\(t.compressionRatio.map { fixed($0, 3) } ?? "null"),"
                + "\"min_time_unix_nano\":\(t.minTime.map { "\"\($0)\"" } ?? "null"),"
                + "\"max_time_unix_nano\":\(t.maxTime.map { "\"\($0)\"" } ?? "null")}"
        }
        var out = "{\"directories\":\(directories),\"tiers\":["
        out += tiers.map { tier($0) }.joined(separator: ",")
        out += "],\"total\":" + tier(total)
        out += ",\"expired\":" + tier(expired)
        if showsNodes { out += ",\"nodes\":[" + nodes.map { tier($0, key: "node") }.joined(separator: ",") + "]" }
        return out + "}"
    }
}

/// `v` with `digits` decimals, without Foundation's locale-dependent formatting.
func fixed(_ v: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let n = Int((v * scale).rounded())
    let whole = n / Int(scale)
    let frac = String(abs(n % Int(scale)))
    return digits == 0 ? String(whole) : "\(whole)." + String(repeating: "0", count: digits - frac.count) + frac
}

/// Durations an auditor types: `250ms`, `1.5s`, `2m`, `100us`, `800ns`, `1h`.
public enum DurationExpression {
    public static func parse(_ text: String) -> Int64? {
        let units: [(String, Double)] = [
            ("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
        ]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
                let v = Double(number), v >= 0
            else {
                return nil
            }
            return Int64(v * scale)
        }
        return nil
    }
}
