// The completeness ledger: the record a collector appends to each segment just before it closes it, saying what
// each receiver and each authenticated sender delivered, what was accepted, rejected (by reason) and dropped
// before it could be read, for the segment's period. The seal covers it like any record. The contract:
// docs/format/ledger.md. The collector writes it (CollectorCore's `CompletenessLedger`); auditq reads it here.
import LogFormat

/// What one receiver or one sender delivered in a ledger period.
public struct LedgerCounts: Sendable, Hashable {
    /// Items decoded from requests (before limits); refused whole requests count 1 when their items are unknown.
    public var received: UInt64 = 0
    /// Items written into the segment (durable with it).
    public var accepted: UInt64 = 0
    /// Items refused, by reason (the `reason` label of `audit_collector_rejected_items_total`).
    public var rejected: [String: UInt64] = [:]
    /// Items lost before the collector could read them (kernel drops on the syslog UDP socket).
    public var dropped: UInt64 = 0

    public init(received: UInt64 = 0, accepted: UInt64 = 0, rejected: [String: UInt64] = [:], dropped: UInt64 = 0) {
        self.received = received
        self.accepted = accepted
        self.rejected = rejected
        self.dropped = dropped
    }

    public var rejectedTotal: UInt64 { rejected.values.reduce(0, &+) }
    public var isZero: Bool { received == 0 && accepted == 0 && dropped == 0 && rejectedTotal == 0 }

    public mutating func add(_ other: LedgerCounts) {
        received &+= other.received
        accepted &+= other.accepted
        dropped &+= other.dropped
        for (reason, n) in other.rejected { rejected[reason, default: 0] &+= n }
    }

    /// Takes `other` (counts already recorded) away; a count never goes below zero.
    public mutating func subtract(_ other: LedgerCounts) {
        received -= min(received, other.received)
        accepted -= min(accepted, other.accepted)
        dropped -= min(dropped, other.dropped)
        for (reason, n) in other.rejected {
            let left = (rejected[reason] ?? 0) - min(rejected[reason] ?? 0, n)
            rejected[reason] = left == 0 ? nil : left
        }
    }
}

/// One ledger record, decoded.
public struct LedgerRecord: Sendable, Hashable {
    /// The version of the attribute set this code writes and reads.
    public static let version: Int64 = 1
    /// The service name and event name of every ledger record.
    public static let service = "audit-collector"
    public static let eventName = CountRollupKind.ledgerEventName  // the count rollup tells ledgers by these too
    public static let scopeName = "audit-collector/ledger"

    /// The attribute keys (under `audit.`, which the collector reserves: a sender's `audit.*` keys are renamed).
    public enum Key {
        public static let version = CountRollupKind.ledgerVersionKey
        public static let periodStart = "audit.ledger.period_start"
        public static let periodEnd = "audit.ledger.period_end"
        public static let firstPeriod = "audit.ledger.first_period"
        public static let final = "audit.ledger.final"
        public static let receivers = "audit.ledger.receivers"
        public static let senders = "audit.ledger.senders"
    }

    /// The period the counts cover, Unix ns, end exclusive.
    public var periodStart: UInt64
    public var periodEnd: UInt64
    /// The first period after the collector started (it starts when the process did).
    public var firstPeriod: Bool
    /// Written as the collector shut down: nothing follows until it starts again.
    public var final: Bool
    /// By receiver label (`otlp_http_traces`, `syslog_udp`, …).
    public var receivers: [String: LedgerCounts]
    /// By sender name (the senders file's `name`); only requests of authenticated senders count here.
    public var senders: [String: LedgerCounts]

    public init(
        periodStart: UInt64, periodEnd: UInt64, firstPeriod: Bool, final: Bool,
        receivers: [String: LedgerCounts], senders: [String: LedgerCounts]
    ) {
        self.periodStart = periodStart
        self.periodEnd = periodEnd
        self.firstPeriod = firstPeriod
        self.final = final
        self.receivers = receivers
        self.senders = senders
    }

    /// True for a ledger record: a log record with the event name and the version key. Nothing a client sends
    /// can pass for one, since the collector renames every client `audit.*` key to `sender.audit.*`.
    public static func isLedger(_ e: AuditEvent) -> Bool {
        e.kind == .log && e.eventName == eventName && e.attributes.contains { $0.key == Key.version }
    }

    /// The record as stored: a log event of the collector, at the period's end.
    public var event: AuditEvent {
        func list(_ counts: [String: LedgerCounts], drops: Bool) -> AttributeValue {
            .keyValueList(
                counts.sorted { $0.key < $1.key }.map { name, c in
                    var fields: [Attribute] = [
                        Attribute("received", .int(Int64(clamping: c.received))),
                        Attribute("accepted", .int(Int64(clamping: c.accepted))),
                        Attribute(
                            "rejected",
                            .keyValueList(
                                c.rejected.sorted { $0.key < $1.key }.map {
                                    Attribute($0.key, .int(Int64(clamping: $0.value)))
                                })),
                    ]
                    if drops { fields.append(Attribute("dropped", .int(Int64(clamping: c.dropped)))) }
                    return Attribute(name, .keyValueList(fields))
                })
        }
        let total = receivers.values.reduce(into: LedgerCounts()) { $0.add($1) }
        return AuditEvent(
            kind: .log, startTimeUnixNano: periodEnd, endTimeUnixNano: periodEnd, observedTimeUnixNano: periodEnd,
            service: Self.service, severityNumber: 9, severityText: "INFO",
            body: .string(
                "completeness ledger: received \(total.received), accepted \(total.accepted), rejected "
                    + "\(total.rejectedTotal), dropped \(total.dropped)"),
            eventName: Self.eventName,
            attributes: [
                Attribute(Key.version, .int(Self.version)),
                Attribute(Key.periodStart, .int(Int64(clamping: periodStart))),
                Attribute(Key.periodEnd, .int(Int64(clamping: periodEnd))),
                Attribute(Key.firstPeriod, .bool(firstPeriod)),
                Attribute(Key.final, .bool(final)),
                Attribute(Key.receivers, list(receivers, drops: true)),
                Attribute(Key.senders, list(senders, drops: false)),
            ],
            resourceAttributes: [Attribute("service.name", .string(Self.service))],
            scope: InstrumentationScope(name: Self.scopeName))
    }

    /// Why a record that claims to be a ledger cannot be read as one.
    public struct Malformed: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Reads a ledger record (`isLedger(e)` must hold). Unknown keys are ignored; a missing or mistyped
    /// required one, or a version other than 1, is malformed.
    public init(_ e: AuditEvent) throws(Malformed) {
        func value(_ key: String) -> AttributeValue? { e.attributes.first { $0.key == key }?.value }
        func int(_ v: AttributeValue?, _ what: String) throws(Malformed) -> UInt64 {
            guard case .int(let n)? = v, n >= 0 else { throw Malformed(description: "\(what) is not a count") }
            return UInt64(n)
        }
        func bool(_ key: String) throws(Malformed) -> Bool {
            guard case .bool(let b)? = value(key) else { throw Malformed(description: "\(key) is not a boolean") }
            return b
        }
        func counts(_ key: String) throws(Malformed) -> [String: LedgerCounts] {
            guard case .keyValueList(let entries)? = value(key) else {
                throw Malformed(description: "\(key) is not a key-value list")
            }
            var out: [String: LedgerCounts] = [:]
            for entry in entries {
                guard case .keyValueList(let fields) = entry.value else {
                    throw Malformed(description: "\(key).\(entry.key) is not a key-value list")
                }
                func field(_ name: String) -> AttributeValue? { fields.first { $0.key == name }?.value }
                var c = LedgerCounts()
                c.received = try int(field("received"), "\(key).\(entry.key).received")
                c.accepted = try int(field("accepted"), "\(key).\(entry.key).accepted")
                if let d = field("dropped") { c.dropped = try int(d, "\(key).\(entry.key).dropped") }
                guard case .keyValueList(let reasons)? = field("rejected") else {
                    throw Malformed(description: "\(key).\(entry.key).rejected is not a key-value list")
                }
                for r in reasons {
                    c.rejected[r.key, default: 0] += try int(r.value, "\(key).\(entry.key).rejected.\(r.key)")
                }
                out[entry.key, default: LedgerCounts()].add(c)
            }
            return out
        }
        guard case .int(let v)? = value(Key.version), v == Self.version else {
            throw Malformed(description: "\(Key.version) is not \(Self.version)")
        }
        periodStart = try int(value(Key.periodStart), Key.periodStart)
        periodEnd = try int(value(Key.periodEnd), Key.periodEnd)
        guard periodStart <= periodEnd else { throw Malformed(description: "the period ends before it starts") }
        firstPeriod = try bool(Key.firstPeriod)
        final = try bool(Key.final)
        receivers = try counts(Key.receivers)
        senders = try counts(Key.senders)
    }
}
