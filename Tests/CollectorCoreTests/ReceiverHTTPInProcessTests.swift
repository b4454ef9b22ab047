import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LogFormat
import Logging
import NIOCore
import OTLPBridge
import OTLPProto
import Testing

@testable import CollectorCore

/// The HTTP receivers' edge cases, answered by the real router and handlers. Where a case is about the wire
/// (headers, bodies as a client sees them), the same test body runs in process (`.router`) and over a real
/// socket (`.live`), as hummingbird's Application+Test does; the precise ones run in process only.
@Suite struct ReceiverHTTPInProcessTests {
    typealias Fixture = IngestServiceTests.Fixture

    static func setup(_ mode: String) -> TestingSetup { mode == "live" ? .live : .router }

    static func app(_ f: Fixture) throws -> some ApplicationProtocol {
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        // The live client connects before the test body runs; on a loaded machine that can be more than the
        // service's 10 s idle timeout before the first request, so these tests give the connection longer.
        return try CollectorServer.application(
            ingest: f.service, host: "127.0.0.1", port: 0, idleTimeout: .seconds(300), logger: logger)
    }

    static func text(_ r: TestResponse) -> String { String(buffer: r.body) }

    @Test(arguments: ["router", "live"])
    func aWrongContentTypeIs415AndNamesIt(mode: String) async throws {
        let f = try Fixture()
        try await Self.app(f).test(Self.setup(mode)) { client in
            try await client.execute(
                uri: "/v1/traces", method: .post, headers: [.contentType: "text/csv"], body: ByteBuffer(string: "a,b")
            ) { r in
                #expect(r.status == .unsupportedMediaType)
                #expect(Self.text(r) == "/v1/traces takes application/x-protobuf or application/json, not text/csv\n")
            }
            try await client.execute(uri: "/v1/logs", method: .post, body: ByteBuffer(string: "{}")) { r in
                #expect(r.status == .unsupportedMediaType)
                #expect(Self.text(r).hasSuffix("not no content type\n"))
            }
            try await client.execute(
                uri: "/v1/access", method: .post, headers: [.contentType: "application/x-protobuf"],
                body: ByteBuffer(string: "x")
            ) { r in
                #expect(r.status == .unsupportedMediaType)
                #expect(Self.text(r) == "/v1/access takes application/x-ndjson, not application/x-protobuf\n")
            }
        }
        try await f.log.close()
        #expect(try f.stored().isEmpty)
    }

    @Test(arguments: ["router", "live"])
    func aBadGzipBodyIs400WithAStatusInTheRequestsEncoding(mode: String) async throws {
        let f = try Fixture()
        try await Self.app(f).test(Self.setup(mode)) { client in
            let headers: HTTPFields = [.contentType: "application/x-protobuf", .contentEncoding: "gzip"]
            let badGzip = ByteBuffer(bytes: [0x1F, 0x8B, 0x08, 0, 1, 2, 3])
            try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: badGzip) { r in
                #expect(r.status == .badRequest)
                #expect(r.headers[.contentType] == "application/x-protobuf")
                let status = try Google_Rpc_Status(serializedBytes: Array(buffer: r.body))
                #expect(status.code == 3)
                #expect(status.message.hasPrefix("bad gzip body:"))
            }
            // Access lines answer in JSON whatever the request asks.
            try await client.execute(
                uri: "/v1/access", method: .post,
                headers: [.contentType: "application/x-ndjson", .contentEncoding: "gzip"],
                body: ByteBuffer(string: "nope")
            ) { r in
                #expect(r.status == .badRequest)
                #expect(r.headers[.contentType] == "application/json")
                let status = try Google_Rpc_Status(jsonUTF8Bytes: Array(buffer: r.body))
                #expect(status.code == 3)
            }
        }
        try await f.log.close()
    }

    @Test(arguments: ["router", "live"])
    func anOversizedBodyIs413OnTheWireAndAfterInflation(mode: String) async throws {
        var limits = IngestLimits()
        limits.maxBodyBytes = 1_024
        let f = try Fixture(limits: limits)
        let big: [UInt8] = try OTLPMapping.traceRequest(from: IngestServiceTests.spans(40)).serializedBytes()
        #expect(big.count > 1_024)
        let bomb = IngestServiceTests.gzip([UInt8](repeating: 0x41, count: 64 << 10))
        #expect(bomb.count < 1_024)
        try await Self.app(f).test(Self.setup(mode)) { client in
            for (body, encoding) in [(big, nil), (bomb, "gzip")] as [([UInt8], String?)] {
                var headers: HTTPFields = [.contentType: "application/x-protobuf"]
                if let encoding { headers[.contentEncoding] = encoding }
                let buffer = ByteBuffer(bytes: body)
                try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: buffer) { r in
                    #expect(r.status == .contentTooLarge)
                    let status = try Google_Rpc_Status(serializedBytes: Array(buffer: r.body))
                    #expect(status.code == 8)
                    #expect(status.message == "request body exceeds 1024 bytes after decompression")
                }
            }
        }
        try await f.log.close()
        #expect(try f.stored().isEmpty)
    }

    @Test(arguments: ["router", "live"])
    func oneBadSpanIsAPartialSuccessAndTheRestIsStored(mode: String) async throws {
        let f = try Fixture()
        var request = OTLPMapping.traceRequest(from: IngestServiceTests.spans(5))
        request.resourceSpans[0].scopeSpans[0].spans[0].traceID = Data([1, 2])
        let body: [UInt8] = try request.serializedBytes()
        try await Self.app(f).test(Self.setup(mode)) { client in
            try await client.execute(
                uri: "/v1/traces", method: .post, headers: [.contentType: "application/x-protobuf"],
                body: ByteBuffer(bytes: body)
            ) { r in
                #expect(r.status == .ok)
                let response = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse(
                    serializedBytes: Array(buffer: r.body))
                #expect(response.partialSuccess.rejectedSpans == 1)
                #expect(response.partialSuccess.errorMessage.contains("trace_id must be 16 bytes, got 2"))
            }
        }
        try await f.log.close()
        #expect(try f.stored().count == 4)
    }

    @Test(.timeLimit(.minutes(10))) func aFullQueueIs503WithRetryAfterAndRetryInfo() async throws {
        var options = DurableLog.Options()
        options.maxPendingEvents = 1
        options.fsync = .always
        let f = try Fixture(options: options)
        let body: [UInt8] = try OTLPMapping.traceRequest(from: IngestServiceTests.spans(3)).serializedBytes()
        let pause = f.log.pauseWriter()
        try await Self.app(f).test(.router) { client in
            let headers: HTTPFields = [.contentType: "application/x-protobuf"]
            let buffer = ByteBuffer(bytes: body)
            // The first request's batch waits in the queue while the writer is held; the next is refused.
            let first = Task {
                try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: buffer) { $0.status }
            }
            // No deadline of its own: a whole-suite run can leave this task no thread for a minute and more
            // (the pool is two threads wide and every test of the run is queued on it); the time limit
            // guards a hang.
            while f.log.statistics.pendingEvents == 0 {
                try await Task.sleep(for: .milliseconds(1))
            }
            try await client.execute(uri: "/v1/traces", method: .post, headers: headers, body: buffer) { r in
                #expect(r.status == .serviceUnavailable)
                #expect(r.headers[.retryAfter] == "1")
                let status = try Google_Rpc_Status(serializedBytes: Array(buffer: r.body))
                #expect(status.code == 14)
                #expect(status.message.hasPrefix("collector busy: ingest queue full"))
                #expect(status.details.first?.isA(Google_Rpc_RetryInfo.self) == true)
            }
            pause.resume()
            #expect(try await first.value == .ok)
        }
        pause.resume()
        try await f.log.close()
        #expect(try f.stored().count == 3)
    }
}
