import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import LogFormat
import OTLPBridge
import OTLPGRPC
import OTLPProto
import StoreQuery
import Testing

@testable import CollectorCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// OTLP/gRPC against a real collector process over loopback HTTP/2, with grpc-swift 2's client.
@Suite(.serialized) struct GRPCReceiverTests {
    typealias TraceClient = Opentelemetry_Proto_Collector_Trace_V1_TraceService.Client<HTTP2ClientTransport.Posix>
    typealias LogsClient = Opentelemetry_Proto_Collector_Logs_V1_LogsService.Client<HTTP2ClientTransport.Posix>

    static func withClients<R: Sendable>(
        port: Int, _ body: (TraceClient, LogsClient, GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext,
            config: .defaults { $0.compression.enabledAlgorithms = .all })
        return try await withGRPCClient(transport: transport) { client in
            try await body(TraceClient(wrapping: client), LogsClient(wrapping: client), client)
        }
    }

    static var gzip: CallOptions {
        var options = CallOptions.defaults
        options.compression = .gzip
        return options
    }

    /// Passes bytes through as they are, to put garbage on the wire.
    struct RawBytes: MessageSerializer, MessageDeserializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
        func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
            serializedMessageBytes.withUnsafeBytes { Array($0) }
        }
    }

    @Test func exportsAreStoredBeforeTheReplyWithPartialSuccessAndCompression() async throws {
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let c = try CollectorProcessTests.Running(data: data, extra: ["--fsync", "always"])
        defer { if c.process.isRunning { c.stop(signal: SIGKILL) } }
        #expect(c.grpcPort > 0)
        let spans = CollectorProcessTests.spans(seed: 21, 80)
        var withBadSpan = OTLPMapping.traceRequest(from: Array(spans[40...]))
        withBadSpan.resourceSpans[0].scopeSpans[0].spans[0].traceID = Data(repeating: 0, count: 16)
        var logs = OTLPLogsRequest()
        var record = Opentelemetry_Proto_Logs_V1_LogRecord()
        record.timeUnixNano = 1_793_613_600_000_000_000
        record.severityNumber = .info
        record.body.stringValue = "user alice exported the report"
        logs.resourceLogs = [.with { $0.scopeLogs = [.with { $0.logRecords = [record] }] }]

        try await Self.withClients(port: c.grpcPort) { traces, logsClient, _ in
            let plain = try await traces.export(OTLPMapping.traceRequest(from: Array(spans[..<40])))
            #expect(!plain.hasPartialSuccess)
            let partial = try await traces.export(withBadSpan, options: Self.gzip)
            #expect(partial.partialSuccess.rejectedSpans == 1)
            #expect(partial.partialSuccess.errorMessage.contains("all zeros"))
            let logged = try await logsClient.export(logs, options: Self.gzip)
            #expect(!logged.hasPartialSuccess)
        }
        // Acknowledged means durable: readable now, before shutdown.
        let stored = try AuditStore(directories: [DataDirectory(data)]).search(EventQuery())
        #expect(stored.count == 80)  // 79 spans and the log record
        let sentIDs = Set(spans.dropFirst(41).map(\.spanID) + spans.prefix(40).map(\.spanID))
        #expect(Set(stored.filter { $0.event.kind == .span }.map(\.event.spanID)) == sentIDs)
        #expect(stored.contains { $0.event.kind == .log && $0.event.body == .string("user alice exported the report") })
        let metrics = try await c.metrics()
        #expect(metrics[#"audit_collector_accepted_items_total{receiver="otlp_grpc_traces"}"#] == 79)
        #expect(
            metrics[#"audit_collector_rejected_items_total{receiver="otlp_grpc_traces",reason="invalid_item"}"#] == 1)
        #expect(metrics[#"audit_collector_rpcs_total{receiver="otlp_grpc_traces",code="ok"}"#] == 2)
        c.stop(signal: SIGTERM)
        #expect(c.process.terminationStatus == 0)
    }

    /// The server's first SETTINGS frame, read off a raw socket after the HTTP/2 preface: it lets a client send
    /// an export of a few hundred KB in one frame without waiting on window updates.
    @Test func theServerOffersLargeFramesAndAWideWindow() async throws {
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let c = try CollectorProcessTests.Running(data: data)
        defer { if c.process.isRunning { c.stop(signal: SIGKILL) } }
        let raw = try HostileInputTests.Raw(port: c.grpcPort, timeoutSeconds: 2)
        raw.send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0])
        let bytes = raw.readToEnd().bytes
        // A frame: 24-bit length, type, flags, stream; SETTINGS (type 4) holds 16-bit ids and 32-bit values.
        func be(_ b: ArraySlice<UInt8>) -> Int { b.reduce(0) { $0 << 8 | Int($1) } }
        var settings: [Int: Int] = [:]
        var at = 0
        while at + 9 <= bytes.count {
            let length = be(bytes[at..<at + 3])
            guard at + 9 + length <= bytes.count else { break }
            if bytes[at + 3] == 4 && bytes[at + 4] & 1 == 0 {
                for e in stride(from: at + 9, to: at + 9 + length, by: 6) {
                    settings[be(bytes[e..<e + 2])] = be(bytes[e + 2..<e + 6])
                }
                break
            }
            at += 9 + length
        }
        #expect(settings[5] == GRPCReceiver.maxFrameSize, "SETTINGS_MAX_FRAME_SIZE in \(settings)")
        #expect(settings[4] == GRPCReceiver.targetWindowSize, "SETTINGS_INITIAL_WINDOW_SIZE in \(settings)")
    }

    @Test func garbageIsInvalidArgumentAndOversizeIsResourceExhaustedWithoutRetryInfo() async throws {
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let c = try CollectorProcessTests.Running(data: data, extra: ["--max-body-bytes", "65536"])
        defer { if c.process.isRunning { c.stop(signal: SIGKILL) } }
        try await Self.withClients(port: c.grpcPort) { traces, _, client in
            // Garbage where an ExportTraceServiceRequest belongs.
            let garbage: [UInt8] = [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]
            let error = await #expect(throws: RPCError.self) {
                try await client.unary(
                    request: ClientRequest(message: garbage),
                    descriptor: Opentelemetry_Proto_Collector_Trace_V1_TraceService.Method.Export.descriptor,
                    serializer: RawBytes(), deserializer: RawBytes(), options: .defaults
                ) { try $0.message }
            }
            #expect(error?.code == .invalidArgument)

            // Over the size limit (before or after decompression): RESOURCE_EXHAUSTED, nothing to retry.
            // (Between the limit and the transport's headroom of twice the limit, where the handler answers.)
            var spans = CollectorProcessTests.spans(seed: 22, 400)
            while (try OTLPMapping.traceRequest(from: spans).serializedBytes() as [UInt8]).count > 110_000 {
                spans.removeLast(10)
            }
            let big = OTLPMapping.traceRequest(from: spans)
            #expect((try big.serializedBytes() as [UInt8]).count > 65536)
            for options in [CallOptions.defaults, Self.gzip] {
                let tooBig = await #expect(throws: RPCError.self) { try await traces.export(big, options: options) }
                #expect(tooBig?.code == .resourceExhausted, "\(String(describing: tooBig))")
                #expect((try? tooBig?.unpackGoogleRPCStatus())??.details.contains { $0.retryInfo != nil } != true)
            }
            // The connection and the collector are fine afterwards.
            let ok = try await traces.export(OTLPMapping.traceRequest(from: CollectorProcessTests.spans(seed: 23, 5)))
            #expect(!ok.hasPartialSuccess)
        }
        c.stop(signal: SIGTERM)
        #expect(c.process.terminationStatus == 0)
        #expect(try AuditStore(directories: [DataDirectory(data)]).search(EventQuery()).count == 5)
    }

    @Test func refusalsMapToRetryableStatusesWithRetryInfo() throws {
        let dir = NSTemporaryDirectory() + "/grpc-status-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try DurableLog(directory: DataDirectory(dir), logger: MetricsTests.quiet)
        var limits = IngestLimits()
        limits.retryAfterSeconds = 3
        let ingest = IngestService(log: log, limits: limits, logger: MetricsTests.quiet)
        for kind in [IngestService.Refusal.Kind.busy, .unavailable] {
            let status = GRPCReceiver.status(
                for: .init(kind: kind, message: "m"), ingest: ingest, receiver: .otlpGRPCTraces)
            #expect(status.code == .unavailable)
            #expect(status.details.compactMap(\.retryInfo).first?.delay == .seconds(3))
        }
        #expect(
            GRPCReceiver.status(for: .init(kind: .invalid, message: "m"), ingest: ingest, receiver: .otlpGRPCLogs).code
                == .invalidArgument)
        #expect(
            GRPCReceiver.status(for: .init(kind: .invalid, message: "m"), ingest: ingest, receiver: .otlpGRPCLogs)
                .details.isEmpty)
        #expect(
            GRPCReceiver.status(for: .init(kind: .internalError, message: "m"), ingest: ingest, receiver: .otlpGRPCLogs)
                .code == .internalError)
    }
}
