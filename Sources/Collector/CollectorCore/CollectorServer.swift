// The HTTP binding of the receivers (OTLP/HTTP on 4318 and NDJSON access events), health and metrics endpoints, and the
// services that run under swift-service-lifecycle: on SIGTERM/SIGINT the server stops accepting and finishes
// its requests first, then the log writes what is pending and seals.
import HTTPTypes
import Hummingbird
import HummingbirdCore
import LogFormat
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOSSL
import ServiceLifecycle

public enum CollectorServer {
    /// Seconds a connection may stay without a complete request part before the server closes it: without it,
    /// slow or stalled clients (slowloris) hold connections, and their buffers, forever. Exporters reconnect.
    public static let idleTimeoutSeconds: Int64 = 10

    /// An application serving `ingest` on `host:port` (port 0 picks a free one; `onRunning` learns it): the OTLP
    /// and access-event routes with health and metrics, or with `zipkin` the Zipkin v2 route alone (port 9411).
    /// With `tls`, HTTPS (and with its CA bundle, mutual TLS: the client certificate names the sender;
    /// `clientCertificates` says whether clients must present one). `idleTimeout` is `idleTimeoutSeconds` in
    /// service; tests on a loaded machine may give more.
    public static func application(
        ingest: IngestService, host: String, port: Int, zipkin: Bool = false, tls: ReloadableCertificates? = nil,
        clientCertificates: ClientCertificates = .required, idleTimeout: TimeAmount = .seconds(idleTimeoutSeconds),
        logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws(TLSSetupError) -> some ApplicationProtocol {
        let router = Router(context: IngestRequestContext.self)
        let wireLimit = ingest.limits.maxBodyBytes
        let mutual = tls?.settings.mutual ?? false
        let receivers: [Receiver] = zipkin ? [.zipkin] : [.otlpHTTPTraces, .otlpHTTPLogs, .accessNDJSON]
        for receiver in receivers {
            guard let route = receiver.route else { continue }
            router.post(RouterPath(route)) { request, context -> Response in
                let contentType = request.headers[.contentType]
                let identity = mutual ? await PeerIdentity.of(channel: context.channel) : nil
                let sender: SenderContext
                switch ingest.authorize(
                    receiver, authorization: request.headers[.authorization], identity: identity,
                    peer: context.channel.remoteAddress)
                {
                case .success(let s): sender = s
                case .failure(let refusal):
                    return response(ingest.refusedSender(refusal, receiver: receiver, contentType: contentType))
                }
                let answer: IngestResponse
                do {
                    let buffer = try await request.body.collect(upTo: wireLimit)
                    answer = await ingest.handle(
                        method: "POST", path: route, contentType: contentType,
                        contentEncoding: request.headers[.contentEncoding], body: Array(buffer.readableBytesView),
                        sender: sender)
                } catch let error as HTTPError where error.status == .contentTooLarge {
                    answer = ingest.bodyTooLarge(receiver: receiver, contentType: contentType, sender: sender.name)
                } catch is NIOTooManyBytesError {
                    // What `collect(upTo:)` throws for a body over the limit.
                    answer = ingest.bodyTooLarge(receiver: receiver, contentType: contentType, sender: sender.name)
                }
                return response(answer)
            }
        }
        // Without an idle timeout, slow or stalled clients (slowloris) would hold connections forever.
        // Request heads over the decoder's limits (80 KiB) get 431, which says what is wrong, not a bare 400.
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [HeaderOverflowAnswer()], idleTimeout: idleTimeout,
            httpDecoderConfiguration: .init())
        let server: HTTPServerBuilder
        if let tls {
            let sslContext: NIOSSLContext
            do { sslContext = try tls.serverContext(alpn: ["http/1.1"], clientCertificates: clientCertificates) } catch
            {
                throw TLSSetupError("the HTTPS listener on \(host):\(port): \(error)")
            }
            let listener = zipkin ? "zipkin" : "http"
            server = HTTPServerBuilder { responder in
                CountingTLSChannel(
                    base: HTTP1Channel(responder: responder, configuration: http1), sslContext: sslContext,
                    listener: listener,
                    metrics: ingest.metrics)
            }
        } else {
            server = .http1(configuration: http1)
        }
        if zipkin {
            return Application(
                router: router, server: server,
                configuration: ApplicationConfiguration(
                    address: .hostname(host, port: port), serverName: "audit-collector-zipkin"),
                onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
                logger: logger)
        }
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/metrics") { _, _ -> Response in
            response(
                IngestResponse(
                    status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                    body: ingest.metrics.exposition(log: ingest.log)))
        }
        router.get("/readyz") { _, _ -> Response in
            ingest.isAccepting
                ? response(IngestResponse(status: 200, headers: [:], body: Array("ready\n".utf8)))
                : response(
                    IngestResponse(status: 503, headers: ["Retry-After": "1"], body: Array("not accepting\n".utf8)))
        }
        return Application(
            router: router, server: server,
            configuration: ApplicationConfiguration(
                address: .hostname(host, port: port), serverName: "audit-collector"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    static func response(_ r: IngestResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in r.headers {
            if let n = HTTPField.Name(name) { fields[n] = value }
        }
        return Response(
            status: HTTPResponse.Status(code: r.status), headers: fields,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: r.body)))
    }
}

/// TLS in front of an HTTP/1.1 channel, with failed handshakes counted (Hummingbird's own TLS channel has no
/// place for the counter).
struct CountingTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let sslContext: NIOSSLContext
    let listener: String
    let metrics: CollectorMetrics

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try HandshakeFailureCounter.addTLS(to: channel, context: sslContext, listener: listener, metrics: metrics)
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Hummingbird's request context plus the connection, for the peer address and the client certificate.
public struct IngestRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Runs until graceful shutdown, then writes everything pending and seals the active segment.
public struct DurableLogService: Service {
    public let log: DurableLog
    let logger: Logger

    public init(log: DurableLog, logger: Logger) {
        self.log = log
        self.logger = logger
    }

    public func run() async throws {
        try? await gracefulShutdown()
        logger.info("draining and sealing")
        try await log.close()
        logger.info("sealed; stopped")
    }
}

/// Answers 431 (Request Header Fields Too Large, RFC 6585) and closes when the HTTP decoder meets a request head
/// over its limits; other parse errors go on to Hummingbird, which answers 400.
final class HeaderOverflowAnswer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart
    private var answered = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parse = error as? HTTPParserError, parse == .headerOverflow else {
            context.fireErrorCaught(error)
            return
        }
        guard !answered else { return }
        answered = true
        let head = HTTPResponse(
            status: .init(code: 431, reasonPhrase: "Request Header Fields Too Large"),
            headerFields: [.connection: "close", .contentLength: "0"])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
