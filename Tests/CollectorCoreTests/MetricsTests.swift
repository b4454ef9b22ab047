import Foundation
import LogFormat
import Logging
import OTLPBridge
import OTLPProto
import SyntheticTraffic
import Testing

@testable import CollectorCore

/// The Prometheus exposition counts exactly what the receivers and the log did.
@Suite struct MetricsTests {
    static let quiet: Logger = {
        var l = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        l.logLevel = .critical
        return l
    }()

    /// Sample lines of the text format by series (`name{labels}` exactly as emitted), summed if repeated.
    static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else {
                continue
            }
            out[String(line[..<space]), default: 0] += v
        }
        return out
    }

    static func spans(_ n: Int, seed: UInt64 = 5) -> [AuditEvent] {
        var g = TrafficGenerator(seed: seed)
        return Array(g.nextEvents(n * 3).filter { $0.kind == .span }.prefix(n))
    }

    @Test func countsReceivedAcceptedAndRejectedByReason() async throws {
        let dir = NSTemporaryDirectory() + "/metrics-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let metrics = CollectorMetrics()
        let log = try DurableLog(directory: DataDirectory(dir), observer: metrics, logger: Self.quiet)
        var limits = IngestLimits()
        limits.maxAttributesPerRecord = 40
        let service = IngestService(log: log, limits: limits, metrics: metrics, logger: Self.quiet)
        func post(_ path: String, _ type: String, _ body: [UInt8]) async -> Int {
            await service.handle(method: "POST", path: path, contentType: type, contentEncoding: nil, body: body).status
        }

        // 30 good spans; then 10 spans of which one has a bad span id and one too many attributes.
        #expect(
            await post(
                "/v1/traces", "application/x-protobuf",
                try OTLPMapping.traceRequest(from: Self.spans(30)).serializedBytes()) == 200)
        var mixed = Self.spans(10, seed: 6)
        mixed[3].attributes = (0..<41).map { Attribute("k\($0)", .int(Int64($0))) }
        var request = OTLPMapping.traceRequest(from: mixed)
        request.resourceSpans[0].scopeSpans[0].spans[0].spanID = Data([1, 2, 3])
        #expect(await post("/v1/traces", "application/x-protobuf", try request.serializedBytes()) == 200)
        // A body that is not protobuf, a wrong content type, and NDJSON with one good and one bad line.
        #expect(await post("/v1/traces", "application/x-protobuf", [0xFF, 0xFF, 0xFF]) == 400)
        #expect(await post("/v1/logs", "text/csv", [0x61]) == 415)
        let good =
            #"{"time_iso8601":"2026-11-02T10:00:00+00:00","request_method":"GET","uri":"/a","status":"200","remote_user":"alice"}"#
        #expect(await post("/v1/access", "application/x-ndjson", Array((good + "\n{not json\n").utf8)) == 200)
        _ = try await log.sealNow()

        let text = String(decoding: metrics.exposition(log: log), as: UTF8.self)
        let s = Self.samples(text)
        #expect(s[#"audit_collector_received_items_total{receiver="otlp_http_traces"}"#] == 40)
        #expect(s[#"audit_collector_accepted_items_total{receiver="otlp_http_traces"}"#] == 38)
        #expect(s[#"audit_collector_rejected_items_total{receiver="otlp_http_traces",reason="invalid_item"}"#] == 1)
        #expect(s[#"audit_collector_rejected_items_total{receiver="otlp_http_traces",reason="attribute_limit"}"#] == 1)
        #expect(s[#"audit_collector_rejected_items_total{receiver="otlp_http_traces",reason="malformed"}"#] == 1)
        #expect(
            s[#"audit_collector_rejected_items_total{receiver="otlp_http_logs",reason="unsupported_media_type"}"#] == 1)
        #expect(s[#"audit_collector_received_items_total{receiver="access_ndjson"}"#] == 2)
        #expect(s[#"audit_collector_accepted_items_total{receiver="access_ndjson"}"#] == 1)
        #expect(s[#"audit_collector_rejected_items_total{receiver="access_ndjson",reason="invalid_line"}"#] == 1)
        #expect(s[#"audit_collector_requests_total{receiver="otlp_http_traces",code="200"}"#] == 2)
        #expect(s[#"audit_collector_requests_total{receiver="otlp_http_traces",code="400"}"#] == 1)
        #expect(s[#"audit_collector_requests_total{receiver="otlp_http_logs",code="415"}"#] == 1)
        // The log: 39 events written in group commits, one segment sealed, its bytes counted, no errors.
        #expect(s["audit_collector_events_written_total"] == 39)
        #expect(s["audit_collector_segments_sealed_total"] == 1)
        let sealedBytes = try #require(s["audit_collector_sealed_segment_bytes_total"])
        let segmentFiles = try FileManager.default.contentsOfDirectory(atPath: dir + "/segments").filter {
            $0.hasSuffix(".seg")
        }
        let onDisk = try segmentFiles.reduce(0.0) {
            $0 + Double((try FileManager.default.attributesOfItem(atPath: dir + "/segments/" + $1)[.size] as? Int) ?? 0)
        }
        #expect(sealedBytes == onDisk)
        #expect((s["audit_collector_bytes_written_total"] ?? 0) > 0)
        #expect(s["audit_collector_write_errors_total"] == 0)
        #expect(s["audit_collector_queue_events"] == 0)
        #expect(s["audit_collector_queue_capacity_events"] == Double(log.options.maxPendingEvents))
        // Histograms: three requests decoded items on the traces route (30, 10 and … the malformed one decoded
        // nothing), and the ack latency of the two stored requests.
        #expect(s[#"audit_collector_request_items_count{receiver="otlp_http_traces"}"#] == 2)
        #expect(s[#"audit_collector_request_items_sum{receiver="otlp_http_traces"}"#] == 40)
        #expect(s[#"audit_collector_ack_latency_seconds_count{receiver="otlp_http_traces"}"#] == 2)
        #expect(text.contains("# TYPE audit_collector_ack_latency_seconds histogram"))
        #expect((s["audit_collector_commits_total"] ?? 0) >= 1)
        try await log.close()
    }

    @Test func fsyncLatencyIsAHistogramUnderTheAlwaysPolicy() async throws {
        let dir = NSTemporaryDirectory() + "/metrics-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let metrics = CollectorMetrics()
        var options = DurableLog.Options()
        options.fsync = .always
        let log = try DurableLog(directory: DataDirectory(dir), options: options, observer: metrics, logger: Self.quiet)
        for i in 0..<5 { _ = try await log.append(Self.spans(4, seed: UInt64(i))) }
        let s = Self.samples(String(decoding: metrics.exposition(log: log), as: UTF8.self))
        let fsyncs = try #require(s["audit_collector_fsync_duration_seconds_count"])
        #expect(fsyncs == Double(log.statistics.fsyncs))
        #expect(fsyncs >= 1)
        #expect(s[#"audit_collector_fsync_duration_seconds_bucket{le="+Inf"}"#] == fsyncs)
        #expect(s["audit_collector_commit_events_sum"] == 20)
        try await log.close()
    }

    @Test func recoveryOutcomesAreCounted() async throws {
        let dir = NSTemporaryDirectory() + "/metrics-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A writer that "crashes": its blocks are written but it never seals.
        do {
            let writer = try SegmentWriter(directory: DataDirectory(dir), logger: Self.quiet)
            _ = try writer.append(Self.spans(25))
            try writer.flush()
        }
        let metrics = CollectorMetrics()
        let log = try DurableLog(directory: DataDirectory(dir), observer: metrics, logger: Self.quiet)
        metrics.recovered(log.recoveries)
        let s = Self.samples(String(decoding: metrics.exposition(log: log), as: UTF8.self))
        #expect(s[#"audit_collector_recoveries_total{action="sealed"}"#] == 1)
        #expect(s["audit_collector_recovered_records_total"] == 25)
        #expect(s["audit_collector_recovery_truncated_bytes_total"] == 0)
        try await log.close()
    }
}
