// The key layout of a bucket that collectors ship to (docs/object-store.md, "Key layout"): written by the
// collector's shipper, read by `auditq --store`.
import Glibc
import LogFormat

/// Object keys in the bucket. By day, so a query lists only the days its time range needs:
///
///     <prefix>/<node>/<yyyy-mm-dd>/<seq>.seg     a sealed segment, under the UTC day of its first record
///     <prefix>/<node>/tombstones/<seq>.tomb      a tombstone (what is left of a segment expired by policy)
///     <prefix>/<node>/span/<days>                empty: this node has a segment whose records reach `days` days
///                                                past the day it is filed under (so a planner looks that far back)
///
/// `<node>` is the 32-hex-digit node id, `<seq>` the 16-digit sequence of the local file name.
public enum BucketLayout {
    public static let nanosPerDay: UInt64 = 86_400_000_000_000

    public static func day(ofUnixNano t: UInt64) -> String {
        var secs = time_t(t / 1_000_000_000)
        var tm = tm()
        gmtime_r(&secs, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))"
    }

    public static func segmentKey(_ seal: SegmentSeal) -> String {
        "\(seal.nodeID.hex)/\(day(ofUnixNano: seal.minTime))/"
            + DataDirectory.fileName(sequence: seal.sequence, sealed: true)
    }

    public static func tombstoneKey(node: NodeID, sequence: UInt64) -> String {
        "\(node.hex)/tombstones/\(DataDirectory.fileName(sequence: sequence, sealed: true).dropLast(4))"
            + DataDirectory.tombstoneSuffix
    }

    /// Whole days between the day a segment is filed under and the day of its last record.
    public static func spanDays(_ seal: SegmentSeal) -> Int {
        Int(seal.maxTime / nanosPerDay) - Int(seal.minTime / nanosPerDay)
    }

    public static func spanKey(node: NodeID, days: Int) -> String { "\(node.hex)/span/\(days)" }

    /// What a key (relative to the location's prefix) names.
    public enum Parsed: Sendable, Hashable {
        case segment(node: NodeID, day: String, sequence: UInt64)
        case tombstone(node: NodeID, sequence: UInt64)
        case span(node: NodeID, days: Int)
    }

    /// Parses a relative key of the layout; nil for anything else.
    public static func parse(_ key: String) -> Parsed? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, let node = NodeID(hex: String(parts[0])) else { return nil }
        let name = String(parts[2])
        if parts[1] == "span" { return Int(name).map { .span(node: node, days: $0) } }
        if parts[1] == "tombstones" {
            guard name.hasSuffix(DataDirectory.tombstoneSuffix), let seq = DataDirectory.sequence(ofFileName: name)
            else { return nil }
            return .tombstone(node: node, sequence: seq)
        }
        guard parts[1].count == 10, name.hasSuffix(DataDirectory.sealedSuffix),
            let seq = DataDirectory.sequence(ofFileName: name)
        else { return nil }
        return .segment(node: node, day: String(parts[1]), sequence: seq)
    }

    /// The days (`yyyy-mm-dd`) a query of `range` lists for a node whose segments reach `span` days past the day
    /// they are filed under.
    public static func days(covering range: ClosedRange<UInt64>, span: Int) -> [String] {
        let first = Int(range.lowerBound / nanosPerDay) - max(0, span)
        let last = Int(range.upperBound / nanosPerDay)
        guard first <= last else { return [] }
        return (max(0, first)...last).map { day(ofUnixNano: UInt64($0) * nanosPerDay) }
    }
}
