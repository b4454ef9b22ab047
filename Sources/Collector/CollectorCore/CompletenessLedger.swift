// The collector's completeness ledger: the counts of /metrics (received, accepted, rejected by reason, kernel
// drops), kept per segment period and per receiver and sender, and written into each segment as its last record
// (a `SegmentTrailer`), so the seal covers them. The record's shape: `LedgerRecord`, docs/format/ledger.md.
import LogFormat
import StoreQuery
import Synchronization

public final class CompletenessLedger: SegmentTrailer {
    private struct Offer {
        var receivers: [String: LedgerCounts]
        var senders: [String: LedgerCounts]
        var periodEnd: UInt64
        var drops: UInt64
    }

    private struct State {
        var receivers: [String: LedgerCounts] = [:]
        var senders: [String: LedgerCounts] = [:]
        var periodStart: UInt64
        var firstPeriod = true
        /// Kernel drops already in a ledger (the socket's counter is cumulative from its creation).
        var dropsRecorded: UInt64 = 0
        /// What the last trailer said, taken away from the counts once it is durable.
        var offered: Offer?
        /// The socket's drops read as it closed: its counter goes with it, and the last ledger is written after.
        var dropsAtClose: UInt64?
    }

    private let state: Mutex<State>
    /// The syslog UDP socket's kernel drops so far, given its port (nil: not readable).
    private let kernelDrops: @Sendable (Int) -> UInt64?
    /// The syslog UDP port whose kernel drops count under `syslog_udp` (0: none).
    public let kernelDropsPort = Atomic<Int>(0)
    private let clock: @Sendable () -> UInt64

    /// The receiver that kernel drops are counted under.
    public static let dropsReceiver = "syslog_udp"

    /// A ledger whose first period starts now (the collector's start).
    public init(
        kernelDrops: @escaping @Sendable (Int) -> UInt64? = { SyslogReceiver.kernelDrops(port: $0) },
        clock: @escaping @Sendable () -> UInt64 = { FileIO.nowUnixNano() }
    ) {
        self.kernelDrops = kernelDrops
        self.clock = clock
        state = Mutex(State(periodStart: clock()))
    }

    /// The origin label of appends from `receiver` on behalf of `sender` (see `DurableLog.append(_:origin:)`).
    public static func origin(receiver: String, sender: String?) -> String {
        sender.map { receiver + "\u{1F}" + $0 } ?? receiver
    }

    // MARK: Counting (any thread)

    func received(_ receiver: String, sender: String?, items: Int) {
        guard items > 0 else { return }
        state.withLock { s in
            s.receivers[receiver, default: LedgerCounts()].received &+= UInt64(items)
            if let sender { s.senders[sender, default: LedgerCounts()].received &+= UInt64(items) }
        }
    }

    func rejected(_ receiver: String, sender: String?, reason: String, items: Int) {
        guard items > 0 else { return }
        state.withLock { s in
            s.receivers[receiver, default: LedgerCounts()].rejected[reason, default: 0] &+= UInt64(items)
            if let sender { s.senders[sender, default: LedgerCounts()].rejected[reason, default: 0] &+= UInt64(items) }
        }
    }

    /// The counts of the period in progress (what /metrics would add up to since the last ledger).
    public var current: (receivers: [String: LedgerCounts], senders: [String: LedgerCounts]) {
        state.withLock { ($0.receivers, $0.senders) }
    }

    // MARK: SegmentTrailer (the writer queue)

    public func appended(origin: String, count: Int) {
        let parts = origin.split(separator: "\u{1F}", maxSplits: 1, omittingEmptySubsequences: false)
        let receiver = String(parts[0])
        let sender = parts.count > 1 ? String(parts[1]) : nil
        state.withLock { s in
            s.receivers[receiver, default: LedgerCounts()].accepted &+= UInt64(count)
            if let sender { s.senders[sender, default: LedgerCounts()].accepted &+= UInt64(count) }
        }
    }

    /// Called as the syslog UDP socket is about to close (shutdown): takes its last drops reading, since the
    /// kernel forgets the socket's counter with it and the final ledger is written once the listeners are closed.
    public func udpSocketClosing() {
        let port = kernelDropsPort.exchange(0, ordering: .relaxed)
        guard port > 0, let drops = kernelDrops(port) else { return }
        state.withLock { $0.dropsAtClose = drops }
    }

    public func trailer(closing sequence: UInt64?, final: Bool) -> [AuditEvent] {
        let port = kernelDropsPort.load(ordering: .relaxed)
        let live = port > 0 ? kernelDrops(port) : nil
        let now = clock()
        return state.withLock { s -> [AuditEvent] in
            let drops = live ?? s.dropsAtClose
            var receivers = s.receivers
            var newDrops = s.dropsRecorded
            if let drops {
                // A new socket (a restart of the listener) starts its counter again from zero.
                let delta = drops >= s.dropsRecorded ? drops - s.dropsRecorded : drops
                if delta > 0 { receivers[Self.dropsReceiver, default: LedgerCounts()].dropped &+= delta }
                newDrops = drops
            }
            // No segment open and nothing to say: no segment is opened just for an empty ledger.
            if sequence == nil, receivers.values.allSatisfy(\.isZero), s.senders.values.allSatisfy(\.isZero) {
                s.offered = nil
                return []
            }
            let end = max(now, s.periodStart)
            s.offered = Offer(receivers: receivers, senders: s.senders, periodEnd: end, drops: newDrops)
            let record = LedgerRecord(
                periodStart: s.periodStart, periodEnd: end, firstPeriod: s.firstPeriod, final: final,
                receivers: receivers.filter { !$0.value.isZero }, senders: s.senders.filter { !$0.value.isZero })
            return [record.event]
        }
    }

    public func trailerWritten(segment sequence: UInt64) {
        state.withLock { s in
            guard let offer = s.offered else { return }
            s.offered = nil
            for (name, c) in offer.receivers {
                var left = s.receivers[name] ?? LedgerCounts()
                var taken = c
                taken.dropped = 0  // drops were added to the offer, not to the running counts
                left.subtract(taken)
                s.receivers[name] = left.isZero ? nil : left
            }
            for (name, c) in offer.senders {
                var left = s.senders[name] ?? LedgerCounts()
                left.subtract(c)
                s.senders[name] = left.isZero ? nil : left
            }
            s.dropsRecorded = offer.drops
            s.periodStart = offer.periodEnd
            s.firstPeriod = false
        }
    }
}
