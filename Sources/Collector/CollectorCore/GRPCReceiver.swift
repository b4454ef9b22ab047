// OTLP/gRPC on 4317 (grpc-swift 2 over HTTP/2): TraceService/Export and LogsService/Export with the same
// rule as HTTP — the reply is sent once the kept items are durable. Backpressure and a full disk answer
// UNAVAILABLE with a RetryInfo detail (grpc-status-details-bin); bad data INVALID_ARGUMENT; a message over
// the size limit RESOURCE_EXHAUSTED without RetryInfo (so clients do not retry it); rejected items come back
// as partial success. gzip and deflate request compression are accepted.
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import LogFormat
import Logging
import NIOCore
import NIOSSL
import OTLPBridge
import OTLPGRPC
import OTLPProto
import ServiceLifecycle
import SwiftProtobuf

/// Request messages reach the handler as bytes, so the collector applies its own size limit (answering
/// RESOURCE_EXHAUSTED as a proper status) and names decoding errors itself (INVALID_ARGUMENT, counted).
struct RawRequestBytes: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

/// TraceService/Export and LogsService/Export over one `IngestService`.
public struct OTLPGRPCServices: RegistrableRPCService {
    let ingest: IngestService

    public init(ingest: IngestService) { self.ingest = ingest }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        typealias Traces = Opentelemetry_Proto_Collector_Trace_V1_TraceService
        typealias Logs = Opentelemetry_Proto_Collector_Logs_V1_LogsService
        register(OTLPTraceRequest.self, Traces.Method.Export.descriptor, &router)
        register(OTLPLogsRequest.self, Logs.Method.Export.descriptor, &router)
    }

    /// One Export method: the sender decided from the call's metadata and certificate, then the shared path.
    private func register<Request: OTLPExport, Transport: ServerTransport>(
        _: Request.Type, _ method: MethodDescriptor, _ router: inout RPCRouter<Transport>
    ) {
        let ingest = self.ingest
        router.registerHandler(
            forMethod: method, deserializer: RawRequestBytes(), serializer: ProtobufSerializer<Request.Response>()
        ) { request, context in
            let sender = try GRPCReceiver.authorize(
                request.metadata, context, ingest: ingest, receiver: Request.grpcReceiver)
            let bytes = try await ServerRequest(stream: request).message
            let response = try await GRPCReceiver.export(bytes, as: Request.self, from: sender, ingest: ingest)
            return StreamingServerResponse(single: ServerResponse(message: response))
        }
    }
}

public enum GRPCReceiver {
    /// The largest HTTP/2 frame a client may send (SETTINGS_MAX_FRAME_SIZE; HTTP/2's default and floor is 16 KB).
    static let maxFrameSize = 1 << 20
    /// The flow-control window the server keeps open, per stream and for the connection.
    static let targetWindowSize = 8 << 20
    /// The call's sender (bearer token in the `authorization` metadata and/or the client certificate), or
    /// UNAUTHENTICATED / PERMISSION_DENIED.
    static func authorize(
        _ metadata: Metadata, _ context: ServerContext, ingest: IngestService, receiver: Receiver
    ) throws(GoogleRPCStatus) -> SenderContext {
        let certificate = (context.transportSpecific as? HTTP2ServerTransport.Posix.Context)?.peerCertificate
        let authorization = metadata[stringValues: "authorization"].first(where: { _ in true })
        switch ingest.authorize(
            receiver, authorization: authorization, identity: certificate.map(PeerIdentity.of),
            peer: socketAddress(context.remotePeer))
        {
        case .success(let sender): return sender
        case .failure(let refusal):
            let code: RPCError.Code = refusal.kind == .unauthenticated ? .unauthenticated : .permissionDenied
            ingest.metrics.answeredGRPC(receiver.label, code: "\(code)")
            throw GoogleRPCStatus(code: code, message: refusal.message, details: [])
        }
    }

    /// gRPC's peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000") as an address.
    static func socketAddress(_ peer: String) -> NIOCore.SocketAddress? {
        var text = Substring(peer)
        if text.hasPrefix("ipv4:") || text.hasPrefix("ipv6:") { text = text.dropFirst(5) } else { return nil }
        // NIO traps on a port outside 0...65535, so it is checked here.
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65_535).contains(port)
        else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return try? NIOCore.SocketAddress(ipAddress: String(host), port: port)
    }

    /// One Export call: size limit, decoding, the durable store, and the status for whatever went wrong.
    static func export<Request: OTLPExport>(
        _ bytes: [UInt8], as _: Request.Type, from sender: SenderContext, ingest: IngestService
    ) async throws(GoogleRPCStatus) -> Request.Response {
        let receiver = sender.receiver
        try checkSize(bytes, ingest: ingest, receiver: receiver, sender: sender.name)
        let imported: OTLPMapping.Imported
        do throws(OTLPWireError) {
            imported = try Request.imported(
                protobuf: bytes, maxItems: ingest.limits.maxItemsPerRequest,
                maxValues: ingest.limits.maxValuesPerRequest)
        } catch {
            if error.isOverRequestLimit {
                throw tooLarge(
                    IngestService.overRequestLimitMessage(error.message), ingest: ingest, receiver: receiver,
                    sender: sender.name)
            }
            throw invalid(
                "malformed \(Request.protoMessageName) protobuf: \(error)", ingest: ingest, receiver: receiver,
                sender: sender.name)
        }
        do {
            let response = Request.response(try await ingest.store(consume imported, from: sender))
            ingest.metrics.answeredGRPC(receiver.label, code: "ok")
            return response
        } catch {
            throw status(for: error, ingest: ingest, receiver: receiver)
        }
    }

    /// Over the limit (after decompression): RESOURCE_EXHAUSTED without RetryInfo — resending cannot help.
    static func checkSize(_ bytes: [UInt8], ingest: IngestService, receiver: Receiver, sender: String? = nil)
        throws(GoogleRPCStatus)
    {
        guard bytes.count > ingest.limits.maxBodyBytes else { return }
        throw tooLarge(
            "request message of \(bytes.count) bytes exceeds the limit of \(ingest.limits.maxBodyBytes) bytes after decompression",
            ingest: ingest, receiver: receiver, sender: sender)
    }

    /// RESOURCE_EXHAUSTED without RetryInfo, counted as `too_large`: a message over the size limit, or one of
    /// more items than the limit.
    static func tooLarge(_ message: String, ingest: IngestService, receiver: Receiver, sender: String? = nil)
        -> GoogleRPCStatus
    {
        ingest.metrics.rejected(receiver.label, sender: sender, reason: .tooLarge)
        ingest.metrics.answeredGRPC(receiver.label, code: "\(RPCError.Code.resourceExhausted)")
        return GoogleRPCStatus(code: .resourceExhausted, message: message, details: [])
    }

    static func invalid(_ message: String, ingest: IngestService, receiver: Receiver, sender: String? = nil)
        -> GoogleRPCStatus
    {
        ingest.metrics.rejected(receiver.label, sender: sender, reason: .malformed)
        ingest.metrics.answeredGRPC(receiver.label, code: "\(RPCError.Code.invalidArgument)")
        return GoogleRPCStatus(code: .invalidArgument, message: message, details: [])
    }

    /// The gRPC status for a refusal: a `google.rpc.Status` with RetryInfo where a retry can succeed.
    static func status(
        for refusal: IngestService.Refusal, ingest: IngestService, receiver: Receiver
    ) -> GoogleRPCStatus {
        let status: GoogleRPCStatus
        switch refusal.kind {
        case .busy, .unavailable:
            status = GoogleRPCStatus(
                code: .unavailable, message: refusal.message,
                details: [.retryInfo(delay: .seconds(ingest.limits.retryAfterSeconds))])
        case .invalid:
            status = GoogleRPCStatus(code: .invalidArgument, message: refusal.message, details: [])
        case .internalError:
            status = GoogleRPCStatus(code: .internalError, message: refusal.message, details: [])
        }
        ingest.metrics.answeredGRPC(receiver.label, code: "\(status.code)")
        return status
    }

    /// A gRPC server for `ingest` on `host:port` (port 0: any free port), with request compression accepted
    /// and the message size limit of the HTTP receivers. A connection without an RPC for `idleTimeout` is
    /// closed (GOAWAY; one that sends nothing for twice as long is cut): clients reconnect when they next
    /// export, and stalled or abandoned ones free their socket.
    ///
    /// TLS is ours, not the transport's: its TLS settings cannot make a client certificate optional, nor let
    /// failed handshakes be counted. The transport runs as if in plain text and each connection gets our TLS
    /// handler in front of its HTTP/2 pipeline (the transport still reads the client certificate from it).
    public static func server(
        ingest: IngestService, host: String, port: Int, tls: ReloadableCertificates? = nil,
        clientCertificates: ClientCertificates = .required, idleTimeout: Duration = .seconds(300)
    ) throws(TLSSetupError) -> GRPCServer<HTTP2ServerTransport.Posix> {
        let sslContext: NIOSSLContext?
        do {
            sslContext = try tls?.serverContext(alpn: ["grpc-exp", "h2"], clientCertificates: clientCertificates)
        } catch { throw TLSSetupError("the gRPC listener's TLS: \(error)") }
        let metrics = ingest.metrics
        let transport = HTTP2ServerTransport.Posix(
            address: host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port),
            transportSecurity: .plaintext,
            config: .defaults { config in
                config.compression.enabledAlgorithms = [.gzip, .deflate]
                config.connection.maxIdleTime = idleTimeout
                // An export is a message of a few hundred KB: with HTTP/2's 16 KB frames and a 64 KB window it
                // came in a dozen frames, the client waiting on window updates between them.
                config.http2.maxFrameSize = GRPCReceiver.maxFrameSize
                config.http2.targetWindowSize = GRPCReceiver.targetWindowSize
                // The idle GOAWAY closes only once the client acknowledges a PING, which a stalled or vanished
                // client never does (nor does the transport's keepalive cut it): a connection that sends not
                // a byte for twice the idle time is closed outright.
                let silence = TimeAmount(idleTimeout * 2)
                config.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            try HandshakeFailureCounter.addTLS(
                                to: channel, context: sslContext, listener: "grpc", metrics: metrics, first: true)
                        }
                        // In front of TLS: a handshake that never finishes counts as silence too.
                        try channel.pipeline.syncOperations.addHandler(
                            IdleReadCloser(timeout: silence), position: .first)
                    }
                }
                // The transport closes the stream of a message over its own cap without an answer (a reset: the
                // client sees UNAVAILABLE and retries), so it gets headroom: messages up to twice the limit reach
                // the handler, which answers RESOURCE_EXHAUSTED with its reason; larger ones, and compressed ones
                // inflating past the cap, are answered RESOURCE_EXHAUSTED by GRPCOversizeAnswer before the reset.
                let cap = max(ingest.limits.maxBodyBytes * 2, ingest.limits.maxBodyBytes + (1 << 20))
                config.rpc.maxRequestPayloadSize = cap
                // Past the cap the transport would reset the stream; this answers RESOURCE_EXHAUSTED first.
                let limit = ingest.limits.maxBodyBytes
                config.channelDebuggingCallbacks.onAcceptHTTP2Stream = { stream in
                    stream.eventLoop.makeCompletedFuture {
                        let answer = GRPCOversizeAnswer(cap: cap, limit: limit) { path in
                            let receiver: Receiver = path.contains("LogsService") ? .otlpGRPCLogs : .otlpGRPCTraces
                            metrics.rejected(receiver.label, reason: .tooLarge)
                            metrics.answeredGRPC(receiver.label, code: "\(RPCError.Code.resourceExhausted)")
                        }
                        try stream.pipeline.syncOperations.addHandler(answer, position: .first)
                    }
                }
            })
        return GRPCServer(transport: transport, services: [OTLPGRPCServices(ingest: ingest)])
    }
}

/// Runs a gRPC server under swift-service-lifecycle: graceful shutdown stops accepting new RPCs and lets the
/// ones in flight finish (their data reaches the log before it drains).
public struct GRPCServerService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let onListening: @Sendable (Int) async -> Void

    public init(
        server: GRPCServer<HTTP2ServerTransport.Posix>, onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.server = server
        self.onListening = onListening
    }

    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                try await withGracefulShutdownHandler {
                    try await server.serve()
                } onGracefulShutdown: {
                    server.beginGracefulShutdown()
                }
            }
            if let address = try await server.listeningAddress, let port = address.ipv4?.port ?? address.ipv6?.port {
                await onListening(port)
            }
        }
    }
}
