import Foundation
import GRPCCore
import LogFormat
import OTLPBridge
import OTLPProto
import StoreQuery
import SwiftProtobuf
import TestSupport
import Testing

@testable import CollectorCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Hostile input against the real `collector serve` process over loopback, on every receiver: slow and
/// oversized requests, compression bombs, deep nesting, a million attributes, bytes that are not text, ids of
/// the wrong length, timestamps at the edges. Each time: the collector stays up, the answer is the right error,
/// and afterwards the store verifies (`auditq verify`) and holds what was accepted.
@Suite(.serialized, .ownThreads) struct HostileInputTests {
    /// A collector on a fresh data dir; `body` runs against it, then it is stopped with SIGTERM (it seals) and
    /// the data dir is verified by the real `auditq verify`. Returns every stored event.
    static func withCollector(
        extra: [String] = [], _ body: (CollectorProcessTests.Running) async throws -> Void
    ) async throws -> [AuditEvent] {
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let c = try CollectorProcessTests.Running(data: data, extra: extra)
        defer { if c.process.isRunning { c.stop(signal: SIGKILL) } }
        try await body(c)
        #expect(try await c.get("/healthz") == 200, "the collector is still up")
        c.stop(signal: SIGTERM)
        #expect(c.process.terminationStatus == 0)
        let verify = try run("auditq", ["verify", "--data", data])
        #expect(verify.status == 0, "auditq verify: \(verify.output)")
        return try AuditStore(directories: [DataDirectory(data)]).search(EventQuery()).map(\.event)
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let r = try ChildProcess.run(ChildProcess.product(tool), arguments)
        return (r.status, r.stdout + r.stderr)
    }

    /// A raw TCP connection to a loopback port, with a receive timeout.
    final class Raw {
        let fd: Int32

        init(port: Int, timeoutSeconds: Int = 10) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard rc == 0 else {
                close(fd)
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        /// Sends everything; false when the peer has closed.
        @discardableResult
        func send(_ bytes: [UInt8]) -> Bool {
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return false }
                sent += n
            }
            return true
        }

        /// Reads until the peer closes or the timeout; returns what arrived and whether the peer closed.
        func readToEnd() -> (bytes: [UInt8], closed: Bool) {
            var out: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n == 0 { return (out, true) }
                if n < 0 { return (out, errno == ECONNRESET) }
                out += buffer[0..<n]
            }
        }

        /// The status code of the first response line, if one arrived.
        static func status(_ bytes: [UInt8]) -> Int? {
            let text = String(decoding: bytes.prefix(64), as: UTF8.self)
            guard text.hasPrefix("HTTP/1.1 ") else { return nil }
            return Int(text.dropFirst(9).prefix(3))
        }
    }

    static func spans(seed: UInt64, _ n: Int) -> [AuditEvent] { CollectorProcessTests.spans(seed: seed, n) }

    /// Posts `body` to `url` (gzip-encoded when `gzip` says it is): the status and the answer's text.
    static func post(_ url: String, type: String, gzip: Bool = false, _ body: [UInt8]) async throws -> (Int?, String) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue(type, forHTTPHeaderField: "Content-Type")
        if gzip { request.setValue("gzip", forHTTPHeaderField: "Content-Encoding") }
        request.httpBody = Data(body)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode, String(decoding: data, as: UTF8.self))
    }

    static func protobuf(_ request: OTLPTraceRequest) throws -> [UInt8] { try request.serializedBytes() }

    // MARK: Slow and oversized requests

    /// Slowloris: many connections that send half a request head and then trickle or stall, on every TCP
    /// listener. The collector keeps serving others meanwhile, and closes the HTTP ones after its idle timeout.
    @Test func slowlorisConnectionsDoNotStarveOthersAndAreClosed() async throws {
        let events = try await Self.withCollector { c in
            var slow: [Raw] = []
            for i in 0..<40 {
                let http = try Raw(port: i % 2 == 0 ? c.port : c.zipkinPort, timeoutSeconds: 1)
                http.send(Array("POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-\(i): ".utf8))
                slow.append(http)
            }
            for _ in 0..<10 {
                let grpc = try Raw(port: c.grpcPort, timeoutSeconds: 1)
                grpc.send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n".utf8))  // half the HTTP/2 preface
                slow.append(grpc)
                let syslog = try Raw(port: c.syslogTCPPort, timeoutSeconds: 1)
                syslog.send(Array("512 <134>1 2026-11-02T10:00:00Z edge nginx - - - {\"msec\":".utf8))
                slow.append(syslog)
            }
            // A trickle: one more byte of header every 200 ms, for 2 s.
            for _ in 0..<10 {
                for s in slow.prefix(40) { s.send(Array("a".utf8)) }
                try await Task.sleep(for: .milliseconds(200))
            }
            // Others are served meanwhile, on every protocol.
            #expect(try await c.get("/healthz") == 200)
            let (status, _) = try await c.post(
                "/v1/traces", try Self.protobuf(OTLPMapping.traceRequest(from: Self.spans(seed: 31, 20))),
                type: "application/x-protobuf")
            #expect(status == 200)
            try await GRPCReceiverTests.withClients(port: c.grpcPort) { traces, _, _ in
                let ok = try await traces.export(OTLPMapping.traceRequest(from: Self.spans(seed: 32, 5)))
                #expect(!ok.hasPartialSuccess)
            }
            let (zipkin, _) = try await ZipkinTests.post(
                "http://127.0.0.1:\(c.zipkinPort)", Array(ZipkinTests.envoySpan.utf8))
            #expect(zipkin == 202)
            // The stalled HTTP connections are closed by the server once idle for longer than its timeout, with
            // no response (no request was ever complete).
            let deadline = Date().addingTimeInterval(Double(CollectorServer.idleTimeoutSeconds) + 10)
            for s in slow.prefix(40) {
                var closed = false
                while !closed, Date() < deadline { closed = s.readToEnd().closed }
                #expect(closed, "a stalled HTTP connection stays open past the idle timeout")
            }
        }
        #expect(events.count == 26)
    }

    /// A request head far over the HTTP decoder's limits (80 KiB of header fields) is refused with 431, not
    /// buffered.
    @Test(arguments: [(200_000, 1), (2_000, 2_000)])
    func hugeHeadersAreRefused(valueBytes: Int, count: Int) async throws {
        let events = try await Self.withCollector { c in
            for port in [c.port, c.zipkinPort] {
                let raw = try Raw(port: port)
                var head = "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
                for i in 0..<count { head += "X-Big-\(i): \(String(repeating: "h", count: valueBytes))\r\n" }
                head += "Content-Length: 0\r\n\r\n"
                raw.send(Array(head.utf8))
                let (bytes, closed) = raw.readToEnd()
                let status = Raw.status(bytes)
                // Bad input gets a clear 4xx (DESIGN) that names what is wrong: Request Header Fields Too Large.
                let answered = try #require(status, "port \(port): no status line (closed: \(closed))")
                #expect(answered == 431, "status \(answered)")
                #expect(closed)
            }
        }
        #expect(events.isEmpty)
    }

    // MARK: Compression bombs

    /// 64 MiB of zeros gzipped to ~64 KB, against a 1 MiB body limit, on each HTTP route: 413 without inflating
    /// past the limit; over gRPC, RESOURCE_EXHAUSTED.
    @Test func gzipBombsAre413OnEveryRoute() async throws {
        let bomb = IngestServiceTests.gzip([UInt8](repeating: 0, count: 64 << 20))
        #expect(bomb.count < 200_000)
        let events = try await Self.withCollector(extra: ["--max-body-bytes", "1048576"]) { c in
            for (base, path, type) in [
                (c.base, "/v1/traces", "application/x-protobuf"), (c.base, "/v1/logs", "application/json"),
                (c.base, "/v1/access", "application/x-ndjson"),
                ("http://127.0.0.1:\(c.zipkinPort)", "/api/v2/spans", "application/json"),
            ] {
                var request = URLRequest(url: URL(string: base + path)!)
                request.httpMethod = "POST"
                request.setValue(type, forHTTPHeaderField: "Content-Type")
                request.setValue("gzip", forHTTPHeaderField: "Content-Encoding")
                request.httpBody = Data(bomb)
                let (_, response) = try await URLSession.shared.data(for: request)
                #expect((response as? HTTPURLResponse)?.statusCode == 413, "\(path)")
            }
            // gRPC: a gzip-compressed message of 8 MiB (8 KB on the wire) inflates past the transport's cap
            // (twice the limit), and a plain one of 3 MiB declares more: both RESOURCE_EXHAUSTED without
            // RetryInfo (do not retry), never the transport's bare reset (UNAVAILABLE, which clients retry).
            try await GRPCReceiverTests.withClients(port: c.grpcPort) { traces, _, _ in
                var spans = Self.spans(seed: 33, 1)
                spans[0].attributes.append(Attribute("zeros", .string(String(repeating: "0", count: 8 << 20))))
                let error = await #expect(throws: RPCError.self) {
                    try await traces.export(OTLPMapping.traceRequest(from: spans), options: GRPCReceiverTests.gzip)
                }
                #expect(error?.code == .resourceExhausted, "\(String(describing: error))")
                #expect(error?.message.contains("inflates past the limit of 1048576 bytes") == true)
                var plain = Self.spans(seed: 35, 1)
                plain[0].attributes.append(Attribute("zeros", .string(String(repeating: "0", count: 3 << 20))))
                let declared = await #expect(throws: RPCError.self) {
                    try await traces.export(OTLPMapping.traceRequest(from: plain))
                }
                #expect(declared?.code == .resourceExhausted, "\(String(describing: declared))")
                #expect(declared?.message.contains("over the limit of 1048576 bytes") == true)
                for refused in [error, declared] {
                    #expect((try? refused?.unpackGoogleRPCStatus())??.details.contains { $0.retryInfo != nil } != true)
                }
                // The same connection still works.
                let ok = try await traces.export(OTLPMapping.traceRequest(from: Self.spans(seed: 38, 2)))
                #expect(!ok.hasPartialSuccess)
            }
            let m = try await c.metrics()
            #expect(m["audit_collector_rpcs_total{receiver=\"otlp_grpc_traces\",code=\"resourceExhausted\"}"] == 2)
            #expect(m["audit_collector_rejected_items_total{receiver=\"otlp_grpc_traces\",reason=\"too_large\"}"] == 2)
            // And then real data is still taken.
            let (status, _) = try await c.post(
                "/v1/traces", try Self.protobuf(OTLPMapping.traceRequest(from: Self.spans(seed: 34, 3))),
                type: "application/x-protobuf")
            #expect(status == 200)
        }
        #expect(events.count == 3 + 2)
    }

    // MARK: Item bombs

    /// Bodies of many tiny items (an empty log record is two bytes of protobuf, `{}` three of JSON, and each
    /// became an event of several hundred bytes: a 2 KB gzip body held a million), against a limit of 1,000
    /// items per request, on every route that takes many items: 413 (gRPC: RESOURCE_EXHAUSTED) before they
    /// become events, nothing of them stored; a request at the limit is taken whole.
    @Test func requestsOfMoreItemsThanTheLimitAre413OnEveryRoute() async throws {
        // A request of `records` in one scope (empty ones: two bytes each on the wire).
        func logsRequest(_ records: [Opentelemetry_Proto_Logs_V1_LogRecord]) -> OTLPLogsRequest {
            var scope = Opentelemetry_Proto_Logs_V1_ScopeLogs()
            scope.logRecords = records
            var resource = Opentelemetry_Proto_Logs_V1_ResourceLogs()
            resource.scopeLogs = [scope]
            var request = OTLPLogsRequest()
            request.resourceLogs = [resource]
            return request
        }
        func logs(_ n: Int) throws -> [UInt8] {
            try logsRequest(Array(repeating: Opentelemetry_Proto_Logs_V1_LogRecord(), count: n)).serializedBytes()
        }
        // Each with a time of its own, so none is a repeat of another.
        func timedLogs(_ n: Int) throws -> [UInt8] {
            let records = (1...n).map { i in
                var record = Opentelemetry_Proto_Logs_V1_LogRecord()
                record.timeUnixNano = UInt64(i)
                return record
            }
            return try logsRequest(records).serializedBytes()
        }
        let million = IngestServiceTests.gzip(try logs(1_000_000))
        #expect(million.count < 20_000)
        let events = try await Self.withCollector(extra: ["--max-items-per-request", "1000"]) { c in
            let zipkin = "http://127.0.0.1:\(c.zipkinPort)"
            let jsonLogs =
                #"{"resourceLogs":[{"scopeLogs":[{"logRecords":["#
                + Array(repeating: "{}", count: 1001)
                .joined(separator: ",") + "]}]}]}"
            for (base, path, type, gzip, body, says) in [
                (c.base, "/v1/logs", "application/x-protobuf", true, million, "1000000 items"),
                (c.base, "/v1/logs", "application/x-protobuf", false, try logs(1001), "1001 items"),
                (c.base, "/v1/logs", "application/json", false, Array(jsonLogs.utf8), "more than 1000 items"),
                (
                    c.base, "/v1/access", "application/x-ndjson", false,
                    Array(String(repeating: #"{"status":"200"}"# + "\n\n", count: 1001).utf8), "1001 lines"
                ),
                (
                    zipkin, "/api/v2/spans", "application/json", false,
                    Array(("[" + Array(repeating: "{}", count: 1001).joined(separator: ",") + "]").utf8),
                    "more than 1000 spans"
                ),
            ] {
                let (status, text) = try await Self.post(base + path, type: type, gzip: gzip, body)
                #expect(status == 413, "\(path) \(type): \(text)")
                #expect(text.contains(says) && text.contains("smaller requests"), "\(path) \(type): \(text)")
            }
            try await GRPCReceiverTests.withClients(port: c.grpcPort) { _, logsClient, _ in
                let refused = await #expect(throws: RPCError.self) {
                    try await logsClient.export(logsRequest(Array(repeating: .init(), count: 1001)))
                }
                #expect(refused?.code == .resourceExhausted, "\(String(describing: refused))")
                #expect(refused?.message.contains("1001 items, more than the limit of 1000") == true)
            }
            let m = try await c.metrics()
            #expect(m["audit_collector_rejected_items_total{receiver=\"otlp_http_logs\",reason=\"too_large\"}"] == 3)
            #expect(m["audit_collector_rejected_items_total{receiver=\"access_ndjson\",reason=\"too_large\"}"] == 1)
            #expect(m["audit_collector_rejected_items_total{receiver=\"zipkin_json\",reason=\"too_large\"}"] == 1)
            #expect(m["audit_collector_rejected_items_total{receiver=\"otlp_grpc_logs\",reason=\"too_large\"}"] == 1)
            // At the limit, the request is taken.
            let (status, _) = try await c.post("/v1/logs", try timedLogs(1000), type: "application/x-protobuf")
            #expect(status == 200)
        }
        #expect(events.count == 1000, "\(events.count) events stored")
        #expect(events.allSatisfy { $0.kind == .log })
    }

    /// A request of more attributes, array and list values, span events and links than the limit gets 413 on
    /// every route (RESOURCE_EXHAUSTED over gRPC), however small its body: an empty attribute is two bytes of
    /// protobuf and tens of bytes once decoded, so the body limit did not bound a request's memory (a 60 MB span
    /// of them took the collector to 1.4 GB). Nothing of a refused request is stored; one at the limit is.
    @Test func requestsOfMoreValuesThanTheLimitAre413OnEveryRoute() async throws {
        typealias KeyValue = Opentelemetry_Proto_Common_V1_KeyValue
        func traces(attributes: Int = 0, arrayElements: Int = 0, events: Int = 0) throws -> OTLPTraceRequest {
            var span = Opentelemetry_Proto_Trace_V1_Span()
            span.traceID = Data(repeating: 1, count: 16)
            span.spanID = Data(repeating: 2, count: 8)
            span.name = "GET /orders"
            span.startTimeUnixNano = 1_700_000_000_000_000_000
            span.endTimeUnixNano = span.startTimeUnixNano + 1_000
            span.attributes = (0..<attributes).map { i in
                var a = KeyValue()
                a.key = "k\(i % 1000)"
                return a
            }
            if arrayElements > 0 {
                var a = KeyValue()
                a.key = "list"
                a.value.arrayValue.values = Array(repeating: .init(), count: arrayElements)
                span.attributes.append(a)
            }
            span.events = Array(repeating: .init(), count: events)
            var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
            scope.spans = [span]
            var resource = Opentelemetry_Proto_Trace_V1_ResourceSpans()
            resource.scopeSpans = [scope]
            var request = OTLPTraceRequest()
            request.resourceSpans = [resource]
            return request
        }
        let million = IngestServiceTests.gzip(try traces(attributes: 1_000_000).serializedBytes())
        #expect(million.count < 100_000)
        let elements = (0..<1_001).map { _ in "{}" }.joined(separator: ",")
        let jsonTraces =
            #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"01010101010101010101010101010101","#
            + #""spanId":"0202020202020202","name":"x","attributes":[{"key":"k","value":{"arrayValue":{"values":["#
            + elements + "]}}}]}]}]}]}"
        let ndjson =
            #"{"msec":"1700000000.123","status":"200","a":["# + (0..<600).map(String.init).joined(separator: ",")
            + "]}\n" + #"{"msec":"1700000000.124","status":"200","b":["#
            + (0..<600).map(String.init).joined(separator: ",") + "]}\n"
        let zipkinTags = (0..<1_001).map { #""t\#($0)":"v""# }.joined(separator: ",")
        let zipkinBody =
            #"[{"traceId":"0101010101010101","id":"0202020202020202","name":"x","timestamp":1700000000000000,"#
            + #""tags":{"# + zipkinTags + "}}]"
        let events = try await Self.withCollector(extra: ["--max-values-per-request", "1000"]) { c in
            let zipkin = "http://127.0.0.1:\(c.zipkinPort)"
            for (base, path, type, gzip, body) in [
                (c.base, "/v1/traces", "application/x-protobuf", true, million),
                (
                    c.base, "/v1/traces", "application/x-protobuf", false,
                    try traces(attributes: 1_001).serializedBytes()
                ),
                (
                    c.base, "/v1/traces", "application/x-protobuf", false,
                    try traces(arrayElements: 1_000).serializedBytes()
                ),
                (c.base, "/v1/traces", "application/x-protobuf", false, try traces(events: 1_001).serializedBytes()),
                (c.base, "/v1/traces", "application/json", false, Array(jsonTraces.utf8)),
                (c.base, "/v1/access", "application/x-ndjson", false, Array(ndjson.utf8)),
                (zipkin, "/api/v2/spans", "application/json", false, Array(zipkinBody.utf8)),
            ] {
                let (status, text) = try await Self.post(base + path, type: type, gzip: gzip, body)
                #expect(status == 413, "\(path) \(type): \(text)")
                #expect(
                    text.contains("more than 1000 attributes, array and list values, span events and links")
                        && text.contains("smaller requests"), "\(path) \(type): \(text)")
            }
            try await GRPCReceiverTests.withClients(port: c.grpcPort) { tracesClient, _, _ in
                let refused = await #expect(throws: RPCError.self) {
                    try await tracesClient.export(traces(attributes: 600, events: 401))
                }
                #expect(refused?.code == .resourceExhausted, "\(String(describing: refused))")
                #expect(refused?.message.contains("more than 1000 attributes") == true)
            }
            let m = try await c.metrics()
            #expect(m["audit_collector_rejected_items_total{receiver=\"otlp_http_traces\",reason=\"too_large\"}"] == 5)
            #expect(m["audit_collector_rejected_items_total{receiver=\"access_ndjson\",reason=\"too_large\"}"] == 1)
            #expect(m["audit_collector_rejected_items_total{receiver=\"zipkin_json\",reason=\"too_large\"}"] == 1)
            #expect(m["audit_collector_rejected_items_total{receiver=\"otlp_grpc_traces\",reason=\"too_large\"}"] == 1)
            // At the limit, the request is taken: 999 attributes and one holding an array of one value.
            let (status, _) = try await c.post(
                "/v1/traces", try traces(attributes: 998, arrayElements: 1).serializedBytes(),
                type: "application/x-protobuf")
            #expect(status == 200)
        }
        #expect(events.count == 1, "\(events.count) events stored")
        #expect(events.first?.attributes.count == 999)
    }

    // MARK: Deep nesting and a million attributes

    /// JSON nested 100,000 deep on every JSON route: a 400 that names the depth, no stack overflow.
    @Test func deeplyNestedJSONIs400OnEveryJSONRoute() async throws {
        let depth = 100_000
        let otlp =
            #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","attributes":[{"key":"deep","value":"#
            + String(repeating: #"{"arrayValue":{"values":["#, count: depth) + String(repeating: "]}}", count: depth)
            + "}]}]}]}]}"
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let objects = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        let events = try await Self.withCollector { c in
            let zipkin = "http://127.0.0.1:\(c.zipkinPort)"
            for (base, path, type, body) in [
                (c.base, "/v1/traces", "application/json", otlp), (c.base, "/v1/logs", "application/json", arrays),
                (c.base, "/v1/access", "application/x-ndjson", objects),
                (zipkin, "/api/v2/spans", "application/json", arrays),
            ] {
                var request = URLRequest(url: URL(string: base + path)!)
                request.httpMethod = "POST"
                request.setValue(type, forHTTPHeaderField: "Content-Type")
                request.httpBody = Data(body.utf8)
                let (data, response) = try await URLSession.shared.data(for: request)
                let text = String(decoding: data, as: UTF8.self)
                #expect((response as? HTTPURLResponse)?.statusCode == 400, "\(path): \(text.prefix(200))")
                #expect(
                    text.contains("deep") || text.contains("depth") || text.contains("nest"),
                    "\(path): \(text.prefix(200))")
            }
        }
        #expect(events.isEmpty)
    }

    /// A span with 10^6 attributes (15 MB of protobuf) is rejected alone (partial success names it); the other
    /// spans of the request are stored. Over OTLP/HTTP: gRPC ends in the same `store(traces:)` (GRPCReceiverTests).
    @Test func aMillionAttributesRejectTheSpanNotTheRequest() async throws {
        var spans = Self.spans(seed: 35, 3)
        spans[1].attributes = (0..<1_000_000).map { Attribute("k\($0 % 1000)", .int(Int64($0))) }
        let request = OTLPMapping.traceRequest(from: spans)
        let events = try await Self.withCollector { c in
            let (status, body) = try await c.post(
                "/v1/traces", try Self.protobuf(request), type: "application/x-protobuf")
            #expect(status == 200)
            let response = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse(serializedBytes: body)
            #expect(response.partialSuccess.rejectedSpans == 1)
            #expect(
                response.partialSuccess.errorMessage.contains("1000000 attributes"),
                "\(response.partialSuccess.errorMessage)")
        }
        #expect(events.count == 2)
        #expect(!events.contains { $0.attributes.count > 1_024 })
    }

    // MARK: Bytes that are not text

    /// Invalid UTF-8 and NUL bytes: refused where the wire format forbids them (protobuf strings), kept
    /// verbatim where JSON escapes allow them, never a crash, and what is stored reads back.
    @Test func invalidUTF8AndNULBytes() async throws {
        let events = try await Self.withCollector { c in
            // Protobuf string fields must be UTF-8: a span name of 0xFF 0xFE is a malformed request.
            var span = Opentelemetry_Proto_Trace_V1_Span()
            span.traceID = Data(repeating: 1, count: 16)
            span.spanID = Data(repeating: 2, count: 8)
            span.name = "placeholder"
            var request = OTLPTraceRequest()
            var rs = Opentelemetry_Proto_Trace_V1_ResourceSpans()
            var ss = Opentelemetry_Proto_Trace_V1_ScopeSpans()
            ss.spans = [span]
            rs.scopeSpans = [ss]
            request.resourceSpans = [rs]
            var bytes = try Self.protobuf(request)
            let name = Array("placeholder".utf8)
            let at = try #require(bytes.indices.first { bytes[$0...].starts(with: name) })
            bytes.replaceSubrange(at..<(at + 2), with: [0xFF, 0xFE])
            let (status, _) = try await c.post("/v1/traces", bytes, type: "application/x-protobuf")
            #expect(status == 400)

            // JSON bodies with raw invalid UTF-8 and NUL bytes, and \u0000 escapes.
            let zipkin =
                Array(
                    #"[{"traceId":"463ac35c9f6413ad","id":"0020000000000001","name":"nul\u0000name","localEndpoint":{"serviceName":"svc-"#
                        .utf8)
                + [0xFF, 0x00, 0xC3] + Array(#""},"timestamp":1793613600123456,"duration":1}]"#.utf8)
            // A raw NUL inside a JSON string is not JSON (RFC 8259 wants control bytes escaped): the body is bad
            // input, a 400 naming the fault (the \u0000 escape in the name alone would be fine).
            let (z, zReport) = try await ZipkinTests.post("http://127.0.0.1:\(c.zipkinPort)", zipkin)
            #expect(z == 400, "\(zReport)")
            #expect(zReport.contains("control byte"), "\(zReport)")
            let access =
                Array(
                    #"{"msec":"1793613600.125","request_uri":"/nul\u0000","status":"200","remote_user":"nul-user","x":""#
                        .utf8)
                + [0x00, 0xFF, 0xFE] + Array("\"}\n".utf8)
            // The same for an access line; its only line refused, the request is a 400 listing it (raw bytes >= 0x80
            // alone are kept, as nginx writes them).
            let (a, report) = try await c.post("/v1/access", access, type: "application/x-ndjson")
            let aReport = String(decoding: report, as: UTF8.self)
            #expect(a == 400, "\(aReport)")
            #expect(aReport.contains(#""line":1"#), "\(aReport)")

            // Syslog datagrams and a TCP stream with NULs and invalid UTF-8.
            SyslogTests.udpSend(
                [
                    [0x3C, 0x31, 0x39, 0x30, 0x3E, 0x00, 0xFF, 0xFE, 0x00],
                    Array("<190>Nov  2 10:00:00 h nginx: ".utf8) + [0, 0xFF, 0x7B],
                ], port: c.syslogUDPPort)
            try SyslogTests.tcpSend(
                [
                    [0x00, 0x00, 0xFF, 0x0A],
                    Array("<190>Nov  2 10:00:00 h nginx: \(SyslogTests.accessLine(1, user: "after-nul"))\n".utf8),
                ], port: c.syslogTCPPort)
            try await Task.sleep(for: .milliseconds(500))
        }
        // Whatever was stored reads back: every event decodes (the search above) and the store verified. The
        // access line after the NUL frame on the TCP stream is among them, so the check below is not vacuous.
        #expect(events.contains { $0.user?.subject == "after-nul" }, "\(events.map(\.service))")
        #expect(events.allSatisfy { !$0.service.isEmpty })
    }

    // MARK: Ids and timestamps

    /// Trace and span ids of the wrong length are rejected item by item on every receiver; the good ones stored.
    @Test func idsOfTheWrongLengthAreRejectedOneByOne() async throws {
        let events = try await Self.withCollector { c in
            var request = OTLPMapping.traceRequest(from: Self.spans(seed: 36, 4))
            request.resourceSpans[0].scopeSpans[0].spans[0].traceID = Data(repeating: 7, count: 15)
            request.resourceSpans[0].scopeSpans[0].spans[1].spanID = Data(repeating: 7, count: 9)
            let (status, body) = try await c.post(
                "/v1/traces", try Self.protobuf(request), type: "application/x-protobuf")
            #expect(status == 200)
            #expect(
                try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse(serializedBytes: body)
                    .partialSuccess.rejectedSpans == 2)
            try await GRPCReceiverTests.withClients(port: c.grpcPort) { traces, _, _ in
                let answer = try await traces.export(request)
                #expect(answer.partialSuccess.rejectedSpans == 2)
            }
            // OTLP/JSON: the same, answered in JSON.
            let json =
                #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8e","spanId":"eee19b7ec3c1b174","name":"x"}]}]}]}"#
            let (j, text) = try await c.post("/v1/traces", Array(json.utf8), type: "application/json")
            #expect(j == 200)
            #expect(String(decoding: text, as: UTF8.self).contains("trace_id must be 16 bytes, got 3"))
            // Zipkin: a 10-hex-digit trace id rejects that span alone.
            let zipkin =
                #"[{"traceId":"463ac35c9f","id":"0020000000000001","name":"a","timestamp":1793613600123456,"duration":1},"#
                + #"{"traceId":"463ac35c9f6413ad","id":"0020000000000002","name":"b","timestamp":1793613600123456,"duration":1}]"#
            let (z, report) = try await ZipkinTests.post("http://127.0.0.1:\(c.zipkinPort)", Array(zipkin.utf8))
            #expect(z == 202)
            #expect(report.contains(#""span":0"#), "\(report)")
        }
        // A retried export is stored twice and queried once: the gRPC copy of the two good spans does not add.
        #expect(events.count == 2 + 1)
    }

    /// Timestamps at 0 and far in the future are stored as sent (OTLP: 0 means unknown) and the store, its
    /// time index and `auditq verify` cope with them.
    @Test func timestampsAtZeroAndFarInTheFuture() async throws {
        var spans = Self.spans(seed: 37, 3)
        spans[0].startTimeUnixNano = 0
        spans[0].endTimeUnixNano = 0
        spans[1].startTimeUnixNano = UInt64.max - 1
        spans[1].endTimeUnixNano = UInt64.max
        spans[2].startTimeUnixNano = 18_000_000_000_000_000_000  // the year 2540
        spans[2].endTimeUnixNano = 18_000_000_000_000_000_001
        let events = try await Self.withCollector { c in
            let (status, body) = try await c.post(
                "/v1/traces", try Self.protobuf(OTLPMapping.traceRequest(from: spans)), type: "application/x-protobuf")
            #expect(status == 200, "\(String(decoding: body, as: UTF8.self))")
            // Zipkin's microseconds: 0, the last representable nanosecond's microsecond, and one whose end
            // overflows 64-bit nanoseconds (rejected alone, named).
            let zipkin =
                #"[{"traceId":"463ac35c9f6413ad","id":"0020000000000003","name":"zero","timestamp":0,"duration":0},"#
                + #"{"traceId":"463ac35c9f6413ad","id":"0020000000000004","name":"far","timestamp":18446744073709551,"duration":0},"#
                + #"{"traceId":"463ac35c9f6413ad","id":"0020000000000005","name":"over","timestamp":18446744073709551,"duration":1}]"#
            let (z, report) = try await ZipkinTests.post("http://127.0.0.1:\(c.zipkinPort)", Array(zipkin.utf8))
            #expect(z == 202)
            #expect(report.contains(#""span":2"#) && report.contains("out of range"), "\(report)")
        }
        let starts = Set(events.map(\.startTimeUnixNano))
        #expect(starts.contains(0))
        #expect(starts.contains(UInt64.max - 1))
        #expect(starts.contains(18_446_744_073_709_551_000))
        #expect(events.count == 5)
    }
}
