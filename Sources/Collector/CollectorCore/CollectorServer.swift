// The HTTP binding of the receivers (OTLP/HTTP on 4318 and NDJSON access events), health and metrics endpoints, and the
// services that run under swift-service-lifecycle: on SIGTERM/SIGINT the server stops accepting and finishes
// its requests first, then the log writes what is pending and seals.
import HTTPTypes
import Hummingbird
import LogFormat
import Logging
import NIOCore
import ServiceLifecycle

public enum CollectorServer {
    /// Seconds a connection may stay without a complete request part before the server closes it: without it,
    /// slow or stalled clients (slowloris) hold connections, and their buffers, forever. Exporters reconnect.
    public static let idleTimeoutSeconds: Int64 = 10

    /// An application serving `ingest` on `host:port` (port 0 picks a free one; `onRunning` learns it): the OTLP
    /// and access-event routes with health and metrics, or with `zipkin` the Zipkin v2 route alone (port 9411).
    public static func application(
        ingest: IngestService, host: String, port: Int, zipkin: Bool = false, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router()
        let wireLimit = ingest.limits.maxBodyBytes
        for route in zipkin ? ["/api/v2/spans"] : ["/v1/traces", "/v1/logs", "/v1/access"] {
            router.post(RouterPath(route)) { request, _ -> Response in
                let contentType = request.headers[.contentType]
                let answer: IngestResponse
                do {
                    let buffer = try await request.body.collect(upTo: wireLimit)
                    answer = await ingest.handle(
                        method: "POST", path: route, contentType: contentType,
                        contentEncoding: request.headers[.contentEncoding], body: Array(buffer.readableBytesView))
                } catch let error as HTTPError where error.status == .contentTooLarge {
                    answer = ingest.bodyTooLarge(route: route, contentType: contentType)
                }
                return response(answer)
            }
        }
        if zipkin {
            return Application(
                router: router,
                server: .http1(configuration: .init(idleTimeout: .seconds(idleTimeoutSeconds))),
                configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "audit-collector-zipkin"),
                onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
                logger: logger)
        }
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/metrics") { _, _ -> Response in
            response(IngestResponse(
                status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                body: ingest.metrics.exposition(log: ingest.log)))
        }
        router.get("/readyz") { _, _ -> Response in
            ingest.isAccepting
                ? response(IngestResponse(status: 200, headers: [:], body: Array("ready\n".utf8)))
                : response(IngestResponse(status: 503, headers: ["Retry-After": "1"], body: Array("not accepting\n".utf8)))
        }
        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(idleTimeoutSeconds))),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "audit-collector"),
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
