// The collector's Prometheus metrics, made through the swift-metrics API with an explicit Prometheus factory
// (no process-wide bootstrap, so several collectors can live in one test process). GET /metrics serves them
// in the Prometheus text format.
import CoreMetrics
import Foundation
import LogFormat
import Prometheus
import Synchronization

/// Why an item or a request was refused; the `reason` label of the rejection counters.
public enum RejectionReason: String, Sendable, CaseIterable {
    /// An item broke the attributes-per-record limit.
    case attributeLimit = "attribute_limit"
    /// An item held a string longer than the limit.
    case stringLimit = "string_limit"
    /// An item the mapping could not accept (bad ids, bad values).
    case invalidItem = "invalid_item"
    /// An NDJSON line that is not a valid access event.
    case invalidLine = "invalid_line"
    /// A body that does not decode as the declared content.
    case malformed
    /// A body larger than the limit after decompression, or holding more items than the limit.
    case tooLarge = "too_large"
    /// A content type or encoding the route does not take.
    case unsupportedMediaType = "unsupported_media_type"
    /// The ingest queue was full (backpressure).
    case queueFull = "queue_full"
    /// The disk is full.
    case diskFull = "disk_full"
    /// Writing failed for another reason.
    case writeError = "write_error"

    /// Reasons that refuse a whole request before its items are decoded (and so before `received` counts them).
    public var beforeDecoding: Bool { self == .malformed || self == .tooLarge || self == .unsupportedMediaType }
}

public final class CollectorMetrics: Sendable, DurableLogObserver {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    /// The receivers, as the `receiver` label names them.
    public static let receivers = [
        "otlp_http_traces", "otlp_http_logs", "access_ndjson", "otlp_grpc_traces", "otlp_grpc_logs", "zipkin_json",
        "syslog_udp", "syslog_tcp",
    ]

    private struct PerReceiver: Sendable {
        let received: CoreMetrics.Counter
        let accepted: CoreMetrics.Counter
        let requestItems: Recorder
        let ackLatency: CoreMetrics.Timer
    }
    private let perReceiver: [String: PerReceiver]
    private let queueDepth: CoreMetrics.Gauge
    private let queueCapacity: CoreMetrics.Gauge
    private let commitEvents: Recorder
    private let commits: CoreMetrics.Counter
    private let eventsWritten: CoreMetrics.Counter
    private let fsyncLatency: CoreMetrics.Timer
    private let segmentsSealed: CoreMetrics.Counter
    private let segmentBytesSealed: CoreMetrics.Counter
    private let bytesWritten: CoreMetrics.Counter
    private let writeErrors: CoreMetrics.Counter
    private let recoveredRecords: CoreMetrics.Counter
    private let truncatedBytes: CoreMetrics.Counter
    private let udpKernelDrops: CoreMetrics.Gauge
    private let udpReceiveBuffer: CoreMetrics.Gauge
    private let udpReadPauses: CoreMetrics.Counter
    /// The syslog UDP port whose kernel drops are exposed (0: none).
    public let kernelDropsPort = Atomic<Int>(0)
    /// The same counts per segment period, written into each segment (give it to the log's writer options as
    /// its `trailer`). Accepted items are counted there as they are written, not by `accepted`.
    public let ledger: CompletenessLedger
    /// Counters with labels only known as they happen (reason, status code), made once each.
    private let dynamic = Mutex([String: CoreMetrics.Counter]())

    /// Buckets: batch sizes in items, latencies in seconds (1 ms … 5 s).
    static let sizeBuckets: [Double] = [1, 5, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000]
    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .seconds(5),
    ]

    public init(ledger: CompletenessLedger = CompletenessLedger()) {
        self.ledger = ledger
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultValueHistogramBuckets = Self.sizeBuckets
        factory.defaultDurationHistogramBuckets = Self.latencyBuckets
        self.registry = registry
        self.factory = factory
        var per: [String: PerReceiver] = [:]
        for r in Self.receivers {
            let d = [("receiver", r)]
            per[r] = PerReceiver(
                received: Counter(label: "audit_collector_received_items_total", dimensions: d, factory: factory),
                accepted: Counter(label: "audit_collector_accepted_items_total", dimensions: d, factory: factory),
                requestItems: Recorder(
                    label: "audit_collector_request_items", dimensions: d, aggregate: true, factory: factory),
                ackLatency: Timer(label: "audit_collector_ack_latency_seconds", dimensions: d, factory: factory))
        }
        perReceiver = per
        queueDepth = Gauge(label: "audit_collector_queue_events", factory: factory)
        queueCapacity = Gauge(label: "audit_collector_queue_capacity_events", factory: factory)
        commitEvents = Recorder(
            label: "audit_collector_commit_events", dimensions: [], aggregate: true, factory: factory)
        commits = Counter(label: "audit_collector_commits_total", factory: factory)
        eventsWritten = Counter(label: "audit_collector_events_written_total", factory: factory)
        fsyncLatency = Timer(label: "audit_collector_fsync_duration_seconds", factory: factory)
        segmentsSealed = Counter(label: "audit_collector_segments_sealed_total", factory: factory)
        segmentBytesSealed = Counter(label: "audit_collector_sealed_segment_bytes_total", factory: factory)
        bytesWritten = Counter(label: "audit_collector_bytes_written_total", factory: factory)
        writeErrors = Counter(label: "audit_collector_write_errors_total", factory: factory)
        recoveredRecords = Counter(label: "audit_collector_recovered_records_total", factory: factory)
        truncatedBytes = Counter(label: "audit_collector_recovery_truncated_bytes_total", factory: factory)
        udpKernelDrops = Gauge(label: "audit_collector_syslog_udp_kernel_drops", factory: factory)
        udpReceiveBuffer = Gauge(label: "audit_collector_syslog_udp_receive_buffer_bytes", factory: factory)
        udpReadPauses = Counter(label: "audit_collector_syslog_udp_read_pauses_total", factory: factory)
    }

    /// The receive buffer the kernel granted the syslog UDP socket (SO_RCVBUF as read back).
    public func syslogUDPReceiveBuffer(bytes: Int) { udpReceiveBuffer.record(Int64(bytes)) }

    /// The syslog UDP receiver's buffer filled, so the socket is read no further until it has room.
    func syslogUDPReadPaused() { udpReadPauses.increment() }

    private func counter(_ name: String, _ labels: [(String, String)]) -> CoreMetrics.Counter {
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        return dynamic.withLock { made in
            if let c = made[key] { return c }
            let c = Counter(label: name, dimensions: labels, factory: factory)
            made[key] = c
            return c
        }
    }

    // MARK: Receivers

    /// A request decoded into `items` items (before limits).
    public func received(_ receiver: String, sender: String? = nil, items: Int) {
        ledger.received(receiver, sender: sender, items: items)
        guard let r = perReceiver[receiver] else { return }
        r.received.increment(by: Int64(items))
        r.requestItems.record(items)
    }

    /// `items` items of a request are durable; the request waited `nanos` for that.
    public func accepted(_ receiver: String, items: Int, waitedNanos: UInt64) {
        guard let r = perReceiver[receiver] else { return }
        r.accepted.increment(by: Int64(items))
        r.ackLatency.recordNanoseconds(Int64(clamping: waitedNanos))
    }

    /// `items` items refused for `reason` (a whole request counts its items when known, else 1).
    public func rejected(_ receiver: String, sender: String? = nil, reason: RejectionReason, items: Int = 1) {
        guard items > 0 else { return }
        // A request refused before it was decoded was never counted as received: the ledger counts it as one
        // item received and rejected, so that received = accepted + rejected holds there.
        if reason.beforeDecoding { ledger.received(receiver, sender: sender, items: items) }
        ledger.rejected(receiver, sender: sender, reason: reason.rawValue, items: items)
        counter("audit_collector_rejected_items_total", [("receiver", receiver), ("reason", reason.rawValue)])
            .increment(by: Int64(items))
    }

    /// An RPC answered with gRPC status `code` (`ok`, `unavailable`, …).
    public func answeredGRPC(_ receiver: String, code: String) {
        counter("audit_collector_rpcs_total", [("receiver", receiver), ("code", code)]).increment()
    }

    /// A request or connection refused by sender authentication (`reason`: missing_credentials, unknown_token,
    /// unknown_identity, bad_credentials, identity_mismatch, receiver_not_allowed, source_not_allowed), on
    /// `receiver` (its ledger name); `sender` when the credential named one (a 403). The ledger counts it as one
    /// item received and rejected as `auth_<reason>`, so an auditor sees refused senders where the evidence is.
    public func authRefused(_ kind: ReceiverKind, receiver: String, sender: String?, reason: String) {
        counter("audit_collector_auth_refusals_total", [("receiver", kind.rawValue), ("reason", reason)])
            .increment()
        ledger.received(receiver, sender: sender, items: 1)
        ledger.rejected(receiver, sender: sender, reason: "auth_" + reason, items: 1)
    }

    /// A TLS handshake that failed on `listener` (http, zipkin, syslog_tcp).
    public func tlsHandshakeFailed(listener: String) {
        counter("audit_collector_tls_handshake_failures_total", [("listener", listener)]).increment()
    }

    /// A senders-file reload on SIGHUP, `outcome` ok or failed.
    public func sendersReload(outcome: String) {
        counter("audit_collector_senders_reloads_total", [("outcome", outcome)]).increment()
    }

    /// A TLS certificate reload on SIGHUP, `outcome` ok or failed.
    public func certificateReload(outcome: String) {
        counter("audit_collector_tls_reloads_total", [("outcome", outcome)]).increment()
    }

    /// A request answered with HTTP `status`.
    public func answered(_ receiver: String, status: Int) {
        counter("audit_collector_requests_total", [("receiver", receiver), ("code", String(status))]).increment()
    }

    // MARK: The log

    /// What recovery did at start-up.
    public func recovered(_ reports: [RecoveryReport]) {
        for r in reports {
            counter("audit_collector_recoveries_total", [("action", r.action.rawValue)]).increment()
            recoveredRecords.increment(by: Int64(r.recordsRecovered))
            truncatedBytes.increment(by: Int64(r.bytesTruncated))
        }
    }

    public func committed(events: Int, batches: Int, bytesWritten written: UInt64) {
        commits.increment()
        commitEvents.record(events)
        eventsWritten.increment(by: Int64(events))
        bytesWritten.increment(by: Int64(clamping: written))
    }

    public func synced(nanos: UInt64) { fsyncLatency.recordNanoseconds(Int64(clamping: nanos)) }

    public func sealed(_ entry: CatalogEntry) {
        segmentsSealed.increment()
        segmentBytesSealed.increment(by: Int64(clamping: entry.fileSize))
    }

    public func failed(_ error: LogFormatError) { writeErrors.increment() }

    /// The Prometheus text exposition, with the queue gauges read from `log` now.
    public func exposition(log: DurableLog) -> [UInt8] {
        queueDepth.record(log.statistics.pendingEvents)
        queueCapacity.record(log.options.maxPendingEvents)
        let port = kernelDropsPort.load(ordering: .relaxed)
        if port > 0, let drops = SyslogReceiver.kernelDrops(port: port) {
            udpKernelDrops.record(Int64(clamping: drops))
        }
        return registry.emitToBuffer()
    }
}
