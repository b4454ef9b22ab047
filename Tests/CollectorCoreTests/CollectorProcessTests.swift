import Foundation
import LogFormat
import OTLPBridge
import OTLPProto
import StoreQuery
import SyntheticTraffic
import TestSupport
import Testing

@testable import CollectorCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The real `collector serve` process over loopback HTTP: answers, graceful SIGTERM, and SIGKILL recovery.
@Suite(.serialized, .ownThreads) struct CollectorProcessTests {
    static let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("collector")

    final class Running: @unchecked Sendable {
        // @unchecked: set once in init, then read.
        let process: ChildProcess
        var port = 0
        var grpcPort = 0
        var zipkinPort = 0
        var syslogUDPPort = 0
        var syslogTCPPort = 0
        let base: String

        init(data: String, extra: [String] = []) throws {
            process = try ChildProcess(
                CollectorProcessTests.binary.path,
                [
                    "serve", "--data", data, "--otlp-http", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0", "--zipkin",
                    "127.0.0.1:0",
                    "--syslog-udp", "127.0.0.1:0", "--syslog-tcp", "127.0.0.1:0",
                    "--log-level", "warning",
                ] + extra)
            // Both listeners print their bound port on a line of their own, in either order.
            var text = ""
            func port(_ scheme: String) -> Int? {
                for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                    // A TLS listener's HTTP line says https.
                    if let r = line.range(of: scheme + "://127.0.0.1:") ?? line.range(of: scheme + "s://127.0.0.1:") {
                        return Int(line[r.upperBound...].prefix { $0.isNumber })
                    }
                }
                return nil
            }
            func wanted(_ flag: String) -> Bool {
                !zip(extra, extra.dropFirst()).contains { $0 == flag && $1 == "off" }
            }
            let listeners = [
                ("--otlp-grpc", "grpc"), ("--zipkin", "zipkin"), ("--syslog-udp", "syslog-udp"),
                ("--syslog-tcp", "syslog-tcp"),
            ]
            try process.waitForStdout("the port of every listener", within: 30) { printed in
                text = printed
                return port("http") != nil && !listeners.contains(where: { wanted($0.0) && port($0.1) == nil })
            }
            guard let p = port("http") else { throw ChildProcessFailure("collector did not start: \(text)") }
            self.port = p
            grpcPort = port("grpc") ?? 0
            zipkinPort = port("zipkin") ?? 0
            syslogUDPPort = port("syslog-udp") ?? 0
            syslogTCPPort = port("syslog-tcp") ?? 0
            base = "http://127.0.0.1:\(p)"
        }

        func post(_ path: String, _ body: [UInt8], type: String) async throws -> (Int, Data) {
            var request = URLRequest(url: URL(string: base + path)!)
            request.httpMethod = "POST"
            request.setValue(type, forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(body)
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
        }

        /// The collector's Prometheus samples, by series.
        func metrics() async throws -> [String: Double] {
            let (text, _) = try await URLSession.shared.data(from: URL(string: base + "/metrics")!)
            return MetricsTests.samples(String(decoding: text, as: UTF8.self))
        }

        func get(_ path: String) async throws -> Int {
            let (_, response) = try await URLSession.shared.data(from: URL(string: base + path)!)
            return (response as? HTTPURLResponse)?.statusCode ?? 0
        }

        /// Sends `signal` and waits for the exit; a collector still running after 60 s is killed and reported.
        func stop(signal: Int32) {
            if !process.stop(signal: signal, within: 60).graceful {
                Issue.record("the collector did not exit within 60 s of signal \(signal); killed")
            }
        }
    }

    static func tempDir() -> String { NSTemporaryDirectory() + "/collector-\(UInt64.random(in: 0...UInt64.max))" }

    static func spans(seed: UInt64, _ n: Int) -> [AuditEvent] {
        var g = TrafficGenerator(seed: seed)
        return Array(g.nextEvents(n * 2).filter { $0.kind == .span }.prefix(n))
    }

    @Test func servesStoresAndSealsOnSIGTERM() async throws {
        let data = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let c = try Running(data: data, extra: ["--fsync", "always"])
        #expect(try await c.get("/healthz") == 200)
        #expect(try await c.get("/readyz") == 200)
        let spans = Self.spans(seed: 5, 120)
        let (status, body) = try await c.post(
            "/v1/traces", try OTLPMapping.traceRequest(from: spans).serializedBytes(), type: "application/x-protobuf")
        #expect(status == 200)
        #expect(body.isEmpty)
        let line = #"{"msec":"1793613600.125","request_uri":"/x","status":"200","upstream_http_x_user_id":"alice"}"#
        let (accessStatus, report) = try await c.post("/v1/access", Array(line.utf8), type: "application/x-ndjson")
        #expect(accessStatus == 200)
        #expect(String(decoding: report, as: UTF8.self).contains(#""accepted":1"#))
        let (bad, _) = try await c.post("/v1/traces", [1, 2, 3], type: "text/xml")
        #expect(bad == 415)
        // Prometheus scrapes the same counts over HTTP.
        let (metricsText, metricsResponse) = try await URLSession.shared.data(from: URL(string: c.base + "/metrics")!)
        #expect(
            (metricsResponse as? HTTPURLResponse)?.value(forHTTPHeaderField: "Content-Type")?.hasPrefix(
                "text/plain; version=0.0.4") == true)
        let samples = MetricsTests.samples(String(decoding: metricsText, as: UTF8.self))
        #expect(samples[#"audit_collector_accepted_items_total{receiver="otlp_http_traces"}"#] == 120)
        #expect(samples[#"audit_collector_accepted_items_total{receiver="access_ndjson"}"#] == 1)
        #expect(samples[#"audit_collector_requests_total{receiver="otlp_http_traces",code="415"}"#] == 1)
        #expect(samples["audit_collector_events_written_total"] == 121)
        #expect((samples["audit_collector_fsync_duration_seconds_count"] ?? 0) >= 1)

        c.stop(signal: SIGTERM)
        #expect(c.process.terminationStatus == 0)
        let dir = DataDirectory(data)
        #expect(try dir.listSegmentFiles().open.isEmpty)  // sealed on the way out
        #expect(Verifier.verifyDirectory(dir).isValid)
        let stored = try AuditStore(directories: [dir]).search(EventQuery())
        #expect(stored.count == 121)
        #expect(try AuditStore(directories: [dir]).search(EventQuery(terms: [.user("alice")])).count == 1)
    }

    @Test func acknowledgedSpansSurviveSIGKILLAndRecoveryAddsNoDuplicates() async throws {
        let data = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        var acknowledged: [TraceID: Int] = [:]
        for round in 0..<3 {
            let c = try Running(data: data, extra: ["--fsync", "interval", "--fsync-interval-ms", "5"])
            let sent = await withTaskGroup(of: [TraceID: Int].self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var mine: [TraceID: Int] = [:]
                        for i in 0..<400 {
                            let spans = Self.spans(seed: UInt64(round * 100_000 + worker * 1_000 + i), 8)
                            guard let body: [UInt8] = try? OTLPMapping.traceRequest(from: spans).serializedBytes(),
                                let (status, _) = try? await c.post("/v1/traces", body, type: "application/x-protobuf")
                            else { break }  // the process was killed
                            if status == 200 { for s in spans { mine[s.traceID, default: 0] += 1 } }
                        }
                        return mine
                    }
                }
                group.addTask {
                    try? await Task.sleep(nanoseconds: UInt64(300 + round * 150) * 1_000_000)
                    c.stop(signal: SIGKILL)
                    return [:]
                }
                return await group.reduce(into: [TraceID: Int]()) { all, part in all.merge(part, uniquingKeysWith: +) }
            }
            acknowledged.merge(sent, uniquingKeysWith: +)
        }
        #expect(acknowledged.values.reduce(0, +) > 100, "too little traffic was acknowledged to test anything")
        // Restart once more: recovery seals what the last kill left; then stop cleanly.
        let last = try Running(data: data)
        last.stop(signal: SIGTERM)
        let store = try AuditStore(directories: [DataDirectory(data)])
        var stored: [TraceID: Int] = [:]
        for r in try store.search(EventQuery()) { stored[r.event.traceID, default: 0] += 1 }
        let lost = acknowledged.filter { (stored[$0.key] ?? 0) < $0.value }
        #expect(lost.isEmpty, "\(lost.count) acknowledged traces are missing spans")
        // Each request was sent once, so a trace holds no more spans than were sent for it.
        let extra = stored.filter { $0.value > (acknowledged[$0.key] ?? 0) + 8 }
        #expect(extra.isEmpty)
        #expect(Verifier.verifyDirectory(DataDirectory(data)).isValid)
    }

    @Test func loadGeneratorTrafficIsAllAcknowledgedAndStored() async throws {
        let data = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let c = try Running(data: data)
        let loadgen = try ChildProcess.run(
            Self.binary.path,
            ["loadgen", "--to", c.base, "--requests", "300", "--requests-per-post", "25", "--connections", "3"])
        let report = loadgen.stdout
        #expect(loadgen.status == 0, "\(loadgen.stderr)")
        #expect(report.contains("300 access"))
        #expect(report.contains("0 failed"))
        let sent = try #require(Int(report.prefix { $0.isNumber }))
        c.stop(signal: SIGTERM)
        let store = try AuditStore(directories: [DataDirectory(data)])
        #expect(try store.search(EventQuery()).count == sent)
        #expect(try store.search(EventQuery(terms: [.service("edge-nginx")])).count == 300)
    }

    @Test func loadGeneratorAccessLinesAloneAreAllStored() async throws {
        let data = Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let c = try Running(data: data)
        let loadgen = try ChildProcess.run(
            Self.binary.path,
            [
                "loadgen", "--to", c.base, "--transport", "access-ndjson", "--requests", "400",
                "--requests-per-post", "150", "--connections", "2",
            ])
        let report = loadgen.stdout
        #expect(loadgen.status == 0, "\(loadgen.stderr)")
        // Access lines only: no span is sent, every request's edge line is, in ceil(400 / 150) posts.
        #expect(report.hasPrefix("400 events (0 spans, 400 access) in 3 posts"), "\(report)")
        #expect(report.contains("0 failed"))
        c.stop(signal: SIGTERM)
        let store = try AuditStore(directories: [DataDirectory(data)])
        let stored = try store.search(EventQuery())
        #expect(stored.count == 400)
        #expect(stored.allSatisfy { $0.event.kind == .access && $0.event.service == "edge-nginx" })
    }
}
