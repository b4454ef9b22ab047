// The project's load generator (like OpenTelemetry's telemetrygen): sends the synthetic edge + mesh traffic
// to a collector as it arrives in production — spans over OTLP/HTTP protobuf, edge access events as nginx
// NDJSON lines — over N concurrent connections, at a fixed rate or as fast as acknowledged, and reports
// throughput and acknowledgement latency percentiles. Refusals (503) are retried after Retry-After.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LogFormat
import OTLPBridge

public struct LoadGeneratorConfig: Sendable {
    public var baseURL: String
    /// Synthetic requests to send (each is one access event plus 3–12 spans).
    public var requests: Int
    /// Synthetic requests per HTTP post.
    public var requestsPerPost = 50
    public var connections = 4
    /// Target events per second; 0 sends as fast as the collector acknowledges.
    public var eventsPerSecond = 0
    public var traffic = TrafficGenerator.Configuration()

    public init(baseURL: String, requests: Int) {
        self.baseURL = baseURL
        self.requests = requests
    }
}

public struct LoadReport: Sendable, CustomStringConvertible {
    public var posts = 0
    public var spans = 0
    public var accessEvents = 0
    public var refusedAndRetried = 0
    public var failed = 0
    public var seconds = 0.0
    /// Acknowledgement latencies of successful posts, nanoseconds, sorted.
    public var latencies: [UInt64] = []

    public func percentile(_ p: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        let i = min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)
        return Double(latencies[max(0, i)]) / 1e6
    }

    public var description: String {
        let events = spans + accessEvents
        return String(
            format: "%d events (%d spans, %d access) in %d posts over %.2f s: %.0f events/s; ack latency ms p50 %.1f p90 %.1f p99 %.1f max %.1f; %d refused and retried, %d failed",
            events, spans, accessEvents, posts, seconds, Double(events) / max(seconds, 1e-9), percentile(0.5),
            percentile(0.9), percentile(0.99), percentile(1.0), refusedAndRetried, failed)
    }
}

public enum LoadGenerator {
    /// Hands out batches of synthetic requests to the workers.
    actor Source {
        var generator: TrafficGenerator
        var remaining: Int
        let perBatch: Int

        init(_ config: LoadGeneratorConfig) {
            generator = TrafficGenerator(configuration: config.traffic)
            remaining = config.requests
            perBatch = config.requestsPerPost
        }

        func next() -> [AuditEvent]? {
            guard remaining > 0 else { return nil }
            let n = min(perBatch, remaining)
            remaining -= n
            var events: [AuditEvent] = []
            for _ in 0..<n { events += generator.nextRequest() }
            return events
        }
    }

    public static func run(_ config: LoadGeneratorConfig) async -> LoadReport {
        let source = Source(config)
        let session = URLSession(configuration: .ephemeral)
        let start = Date()
        let perWorkerRate = config.eventsPerSecond > 0 ? Double(config.eventsPerSecond) / Double(config.connections) : 0
        var report = await withTaskGroup(of: LoadReport.self) { group in
            for _ in 0..<config.connections {
                group.addTask {
                    var mine = LoadReport()
                    let workerStart = Date()
                    var sentEvents = 0
                    while let batch = await source.next() {
                        let spans = batch.filter { $0.kind == .span }.map(withSemanticAttributes)
                        let access = batch.filter { $0.kind == .access }
                        if !spans.isEmpty, let body: Data = try? OTLPMapping.traceRequest(from: spans).serializedBytes() {
                            await post(session, config.baseURL + "/v1/traces", body, "application/x-protobuf", &mine)
                            mine.spans += spans.count
                        }
                        if !access.isEmpty {
                            let body = Data(access.map { AccessEventMapping.nginxLine(for: $0) + "\n" }.joined().utf8)
                            await post(session, config.baseURL + "/v1/access", body, "application/x-ndjson", &mine)
                            mine.accessEvents += access.count
                        }
                        sentEvents += batch.count
                        if perWorkerRate > 0 {
                            let due = Double(sentEvents) / perWorkerRate - Date().timeIntervalSince(workerStart)
                            if due > 0 { try? await Task.sleep(nanoseconds: UInt64(due * 1e9)) }
                        }
                    }
                    return mine
                }
            }
            return await group.reduce(into: LoadReport()) { all, part in
                all.posts += part.posts
                all.spans += part.spans
                all.accessEvents += part.accessEvents
                all.refusedAndRetried += part.refusedAndRetried
                all.failed += part.failed
                all.latencies += part.latencies
            }
        }
        report.seconds = Date().timeIntervalSince(start)
        report.latencies.sort()
        return report
    }

    /// The generator stores HTTP facts as first-class fields only (as the collector does after deriving them);
    /// an instrumented service sends them as semantic-convention attributes, so that is what goes on the wire.
    static func withSemanticAttributes(_ event: AuditEvent) -> AuditEvent {
        guard let http = event.http else { return event }
        let known: Set<String> = ["http.request.method", "http.method", "url.path", "http.target", "url.full", "http.url",
                                  "http.response.status_code", "http.status_code"]
        guard !event.attributes.contains(where: { known.contains($0.key) }) else { return event }
        var e = event
        if let method = http.method { e.attributes.append(Attribute("http.request.method", .string(method))) }
        if let target = http.target {
            let parts = target.split(separator: "?", maxSplits: 1)
            e.attributes.append(Attribute("url.path", .string(String(parts.first ?? ""))))
            if parts.count == 2 { e.attributes.append(Attribute("url.query", .string(String(parts[1])))) }
        }
        if let route = http.route { e.attributes.append(Attribute("http.route", .string(route))) }
        if http.statusCode != 0 { e.attributes.append(Attribute("http.response.status_code", .int(Int64(http.statusCode)))) }
        if let client = http.clientAddress { e.attributes.append(Attribute("client.address", .string(client))) }
        return e
    }

    /// Posts until acknowledged: a 503 waits Retry-After and tries again; anything else counts as failed.
    static func post(_ session: URLSession, _ url: String, _ body: Data, _ type: String, _ report: inout LoadReport) async {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue(type, forHTTPHeaderField: "Content-Type")
        request.httpBody = body
        for _ in 0..<100 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            guard let (_, response) = try? await session.data(for: request), let http = response as? HTTPURLResponse else {
                report.failed += 1
                return
            }
            if http.statusCode == 200 {
                report.posts += 1
                report.latencies.append(DispatchTime.now().uptimeNanoseconds - t0)
                return
            }
            if http.statusCode == 503 || http.statusCode == 429 {
                report.refusedAndRetried += 1
                let wait = Double(http.value(forHTTPHeaderField: "Retry-After") ?? "1") ?? 1
                try? await Task.sleep(nanoseconds: UInt64(wait * 1e9))
                continue
            }
            report.failed += 1
            return
        }
        report.failed += 1
    }
}
