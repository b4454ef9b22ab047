// Was anything missed: the collectors' completeness ledgers (`LedgerRecord`) over a time range, summed per
// receiver and per sender, with what they cannot vouch for: periods no ledger covers (a crash loses the counts of
// the period it interrupted), segments without a ledger, ledgers that disagree with their segment.
import LogFormat

/// The answer of `AuditStore.completeness(_:)`.
public struct CompletenessReport: Sendable {
    /// A ledger found, where it is stored.
    public struct Ledger: Sendable {
        public var location: RecordLocation
        public var record: LedgerRecord
        /// Records of its segment other than ledgers (what `accepted` must add up to).
        public var segmentRecords: UInt64
    }

    /// A sealed segment the ledgers cannot vouch for, or one with something to look at.
    public struct SegmentNote: Sendable, Hashable {
        public enum Kind: String, Sendable {
            /// No ledger: the segment was recovered after a crash (or written before ledgers): its period's
            /// received and rejected counts are unknown.
            case noLedger = "no_ledger"
            /// A ledger that does not read, or more than one, or whose accepted count differs from the records.
            case badLedger = "bad_ledger"
            /// Items were rejected or dropped in its period.
            case losses
        }
        public var node: NodeID
        public var sequence: UInt64
        public var kind: Kind
        public var detail: String
    }

    /// Time of one node that no ledger covers.
    public struct Gap: Sendable, Hashable {
        public enum Kind: String, Sendable {
            /// The collector stopped cleanly (its last ledger is final) and started again later: nothing was
            /// received meanwhile, but senders may have failed to deliver.
            case stopped
            /// The collector did not stop cleanly (a crash): what it received in this time is unknown.
            case unknown
        }
        public var node: NodeID
        public var from: UInt64
        public var to: UInt64
        public var kind: Kind
        public var detail: String
    }

    public var range: ClosedRange<UInt64>?
    /// Ledgers whose period overlaps the range, by node and period.
    public var ledgers: [Ledger] = []
    public var receivers: [String: LedgerCounts] = [:]
    public var senders: [String: LedgerCounts] = [:]
    /// Sealed segments considered (with a ledger in the range, or without one and records in the range).
    public var segments = 0
    public var notes: [SegmentNote] = []
    public var gaps: [Gap] = []
    /// Unsealed segments: their period is still being counted (in /metrics), not yet in a ledger.
    public var openSegments = 0

    /// The earliest start and latest end of the ledgers' periods (they may reach outside the range).
    public var covered: (from: UInt64, to: UInt64)? {
        guard let first = ledgers.map(\.record.periodStart).min(), let last = ledgers.map(\.record.periodEnd).max()
        else { return nil }
        return (first, last)
    }

    /// True when every segment in the range has a good ledger and no time is unaccounted for.
    public var isComplete: Bool {
        !ledgers.isEmpty && gaps.allSatisfy { $0.kind == .stopped }
            && notes.allSatisfy { $0.kind == .losses }
    }
}

extension AuditStore {
    /// Sums the ledgers whose period overlaps `range` (nil: all), per receiver and sender, and says what they
    /// cannot vouch for. Ledgers are found through each segment's service index (`LedgerRecord.service`).
    public func completeness(_ range: ClosedRange<UInt64>?) throws(LogFormatError) -> CompletenessReport {
        var report = CompletenessReport(range: range)
        func overlaps(_ l: LedgerRecord) -> Bool {
            guard let range else { return true }
            return l.periodEnd > range.lowerBound && l.periodStart <= range.upperBound
        }
        struct Seen {
            var entry: CatalogEntry
            var ledgers: [(RecordLocation, LedgerRecord)] = []
            var malformed: [String] = []
        }
        var byNode: [NodeID: [Seen]] = [:]
        let term = EventQuery.Term(.service, .string(LedgerRecord.service))
        for handle in handles {
            let reader: SegmentReader
            do { reader = try handle.reader() } catch  where handle.expired { continue }
            var seen = Seen(entry: handle.entry)
            let ordinals = try postings(reader, [term])
            if !ordinals.isEmpty {
                for r in try reader.records(at: ordinals, timeRange: nil, cache: cache)
                where LedgerRecord.isLedger(r.event) {
                    do throws(LedgerRecord.Malformed) {
                        seen.ledgers.append((r.location, try LedgerRecord(r.event)))
                    } catch {
                        seen.malformed.append("ordinal \(r.location.ordinal): \(error)")
                    }
                }
            }
            byNode[handle.entry.nodeID, default: []].append(seen)
        }
        for (node, all) in byNode {
            let segments = all.sorted { $0.entry.sequence < $1.entry.sequence }
            var previous: LedgerRecord?
            var previousSequence: UInt64 = 0
            var unledgered: [UInt64] = []
            for s in segments {
                let held = UInt64(s.entry.seal.recordCount) - UInt64(s.ledgers.count + s.malformed.count)
                let inRange =
                    s.ledgers.contains { overlaps($0.1) } || (range.map(s.entry.overlaps) ?? true)
                if s.ledgers.isEmpty && s.malformed.isEmpty {
                    unledgered.append(s.entry.sequence)
                    if inRange {
                        report.segments += 1
                        report.notes.append(
                            .init(
                                node: node, sequence: s.entry.sequence, kind: .noLedger,
                                detail:
                                    "\(held) records, no ledger: the period's received and rejected counts are unknown")
                        )
                    }
                    continue
                }
                guard inRange else {
                    previous = s.ledgers.last?.1 ?? previous
                    previousSequence = s.entry.sequence
                    unledgered.removeAll()
                    continue
                }
                report.segments += 1
                var problems = s.malformed
                if s.ledgers.count > 1 { problems.append("\(s.ledgers.count) ledgers") }
                let accepted = s.ledgers.reduce(UInt64(0)) { $0 + $1.1.receivers.values.reduce(0) { $0 + $1.accepted } }
                if s.malformed.isEmpty && accepted != held {
                    problems.append("the ledger counts \(accepted) accepted, the segment holds \(held) records")
                }
                if !problems.isEmpty {
                    report.notes.append(
                        .init(
                            node: node, sequence: s.entry.sequence, kind: .badLedger,
                            detail: problems.joined(separator: "; ")))
                }
                for (location, l) in s.ledgers.sorted(by: { $0.1.periodStart < $1.1.periodStart }) {
                    if let p = previous, l.periodStart > p.periodEnd {
                        var gap: CompletenessReport.Gap
                        if !unledgered.isEmpty {
                            gap = .init(
                                node: node, from: p.periodEnd, to: l.periodStart, kind: .unknown,
                                detail:
                                    "segment\(unledgered.count == 1 ? "" : "s") \(unledgered.map(String.init).joined(separator: ", ")) "
                                    + "without a ledger: the collector stopped without sealing (a crash)")
                        } else if p.final && l.firstPeriod {
                            gap = .init(
                                node: node, from: p.periodEnd, to: l.periodStart, kind: .stopped,
                                detail: "the collector was stopped")
                        } else {
                            gap = .init(
                                node: node, from: p.periodEnd, to: l.periodStart, kind: .unknown,
                                detail:
                                    l.firstPeriod
                                    ? "the collector stopped without a final ledger (a crash)" : "no ledger covers it")
                        }
                        // Sequences between the two ledgers' segments that the store does not hold (expired by
                        // retention, quarantined, or not copied here): whatever they said is not known.
                        let between = s.entry.sequence &- previousSequence &- 1
                        if previousSequence > 0, between > UInt64(unledgered.count) {
                            gap.kind = .unknown
                            gap.detail +=
                                "; \(between - UInt64(unledgered.count)) segment(s) between \(previousSequence) and "
                                + "\(s.entry.sequence) are not in the store (expired, quarantined or not copied)"
                        }
                        if range.map({ gap.to > $0.lowerBound && gap.from <= $0.upperBound }) ?? true {
                            report.gaps.append(gap)
                        }
                    }
                    previous = l
                    previousSequence = s.entry.sequence
                    unledgered.removeAll()
                    guard overlaps(l) else { continue }
                    let records = held
                    report.ledgers.append(.init(location: location, record: l, segmentRecords: records))
                    for (name, c) in l.receivers { report.receivers[name, default: LedgerCounts()].add(c) }
                    for (name, c) in l.senders { report.senders[name, default: LedgerCounts()].add(c) }
                    var lost = LedgerCounts()
                    for c in l.receivers.values { lost.add(c) }
                    if lost.rejectedTotal > 0 || lost.dropped > 0 {
                        var parts: [String] = []
                        if lost.rejectedTotal > 0 {
                            let reasons = lost.rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                            parts.append("\(lost.rejectedTotal) rejected (\(reasons.joined(separator: ", ")))")
                        }
                        if lost.dropped > 0 { parts.append("\(lost.dropped) dropped before they could be read") }
                        report.notes.append(
                            .init(
                                node: node, sequence: s.entry.sequence, kind: .losses,
                                detail: parts.joined(separator: ", ")))
                    }
                }
            }
        }
        report.ledgers.sort {
            ($0.location.nodeID, $0.record.periodStart, $0.location.segmentSequence)
                < ($1.location.nodeID, $1.record.periodStart, $1.location.segmentSequence)
        }
        report.notes.sort { ($0.node, $0.sequence, $0.kind.rawValue) < ($1.node, $1.sequence, $1.kind.rawValue) }
        report.gaps.sort { ($0.node, $0.from) < ($1.node, $1.from) }
        report.openSegments = try openSegmentReaders().count
        return report
    }
}

extension AuditStore {
    /// The ledger records of one sealed segment (normally one), through its service index.
    public func ledgerRecords(node: NodeID, sequence: UInt64) throws(LogFormatError) -> [StoredRecord] {
        guard let handle = handles.first(where: { $0.entry.nodeID == node && $0.entry.sequence == sequence }) else {
            return []
        }
        let reader = try handle.reader()
        let ordinals = try postings(reader, [EventQuery.Term(.service, .string(LedgerRecord.service))])
        guard !ordinals.isEmpty else { return [] }
        return try reader.records(at: ordinals, timeRange: nil, cache: cache).filter { LedgerRecord.isLedger($0.event) }
    }
}
