// The project's load generator (like OpenTelemetry's telemetrygen): sends the synthetic edge + mesh traffic
// to a collector as it arrives in production — spans over OTLP/HTTP protobuf, edge access events as nginx
// NDJSON lines — over N concurrent connections, at a fixed rate or as fast as acknowledged, and reports
// throughput and acknowledgement latency percentiles. Refusals (503) are retried after Retry-After.
import Dispatch
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import LogFormat
import OTLPBridge
import OTLPGRPC
import SwiftProtobuf
import Synchronization

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
    /// How the traffic travels: OTLP/HTTP + NDJSON (everything), OTLP/gRPC (spans only), syslog over UDP
    /// (edge access lines only, nginx-framed, one per datagram; `baseURL` is then `udp://host:port` or
    /// `http://host:port` naming the syslog port), edge access lines only as NDJSON posts (as a log shipper
    /// forwards nginx's file), or spans only as OTLP/HTTP JSON or as Zipkin v2 JSON (`baseURL` naming the Zipkin
    /// port).
    public var transport: Transport = .http
    /// gRPC over TLS, trusting this PEM CA bundle (the collector's `--tls-cert` issuer).
    public var grpcCAFile: String?
    /// Sent as `Authorization: Bearer …` (gRPC metadata, HTTP header) to a collector with sender authentication.
    public var bearerToken: String?

    public enum Transport: String, Sendable, CaseIterable {
        case http, grpc
        case syslogUDP = "syslog-udp"
        case accessNDJSON = "access-ndjson"
        case otlpJSON = "otlp-json"
        case zipkin
    }

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

    mutating func merge(_ part: LoadReport) {
        posts += part.posts
        spans += part.spans
        accessEvents += part.accessEvents
        refusedAndRetried += part.refusedAndRetried
        failed += part.failed
        latencies += part.latencies
    }

    public func percentile(_ p: Double) -> Double {
        guard !latencies.isEmpty else { return 0 }
        let i = min(latencies.count - 1, Int((Double(latencies.count) * p).rounded(.up)) - 1)
        return Double(latencies[max(0, i)]) / 1e6
    }

    public var description: String {
        let events = spans + accessEvents
        return String(
            format:
                "%d events (%d spans, %d access) in %d posts over %.2f s: %.0f events/s (%.0f spans/s); ack latency ms p50 %.1f p90 %.1f p99 %.1f max %.1f; %d refused and retried, %d failed",
            events, spans, accessEvents, posts, seconds, Double(events) / max(seconds, 1e-9),
            Double(spans) / max(seconds, 1e-9), percentile(0.5),
            percentile(0.9), percentile(0.99), percentile(1.0), refusedAndRetried, failed)
    }
}

public enum LoadGenerator {
    /// One prepared HTTP post.
    struct Post: Sendable {
        var path: String
        var contentType: String
        var body: [UInt8]
        var spans: Int
        var accessEvents: Int
    }

    /// Builds every post before the clock starts, so the generator's own work (synthesising traffic, mapping it
    /// to OTLP, serialising) does not compete with the collector for the CPU while it is measured.
    static func prepare(_ config: LoadGeneratorConfig) -> [Post] {
        var generator = TrafficGenerator(configuration: config.traffic)
        var batches: [[AuditEvent]] = []
        var remaining = config.requests
        while remaining > 0 {
            let n = min(config.requestsPerPost, remaining)
            remaining -= n
            var events: [AuditEvent] = []
            for _ in 0..<n { events += generator.nextRequest() }
            batches.append(events)
        }
        // Serialising is the slow part and each batch is independent: spread it over the cores.
        let allBatches = batches
        let slots = Mutex([[Post]](repeating: [], count: allBatches.count))
        // Transports that carry access lines only never send spans: skip serialising them.
        let accessOnly = config.transport == .syslogUDP || config.transport == .accessNDJSON
        DispatchQueue.concurrentPerform(iterations: allBatches.count) { i in
            var posts: [Post] = []
            let spans = accessOnly ? [] : allBatches[i].filter { $0.kind == .span }.map(withSemanticAttributes)
            let access = allBatches[i].filter { $0.kind == .access }
            if !spans.isEmpty, let post = jsonPost(spans, config.transport) {
                posts.append(post)
            } else if !spans.isEmpty,
                let body: [UInt8] = try? OTLPMapping.traceRequest(from: spans).serializedBytes()
            {
                posts.append(
                    Post(
                        path: "/v1/traces", contentType: "application/x-protobuf", body: body, spans: spans.count,
                        accessEvents: 0))
            }
            if !access.isEmpty {
                let body = Array(access.map { NginxAccessLine.render($0) + "\n" }.joined().utf8)
                posts.append(
                    Post(
                        path: "/v1/access", contentType: "application/x-ndjson", body: body, spans: 0,
                        accessEvents: access.count))
            }
            slots.withLock { $0[i] = posts }
        }
        return slots.withLock { $0.flatMap { $0 } }
    }

    public static func run(_ config: LoadGeneratorConfig) async -> LoadReport {
        let posts = prepare(config)
        switch config.transport {
        case .http, .otlpJSON, .zipkin:
            let sent = config.transport == .http ? posts : posts.filter { $0.spans > 0 }
            return await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: send(sent, config)) }
            }
        case .accessNDJSON:
            let sent = posts.filter { $0.accessEvents > 0 }
            return await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: send(sent, config)) }
            }
        case .grpc:
            return await sendGRPC(posts.filter { $0.path == "/v1/traces" }, config)
        case .syslogUDP:
            let datagrams = posts.filter { $0.path == "/v1/access" }.flatMap { post in
                post.body.split(separator: 0x0A).map { Array("<190>Nov  2 10:00:00 loadgen nginx: ".utf8) + $0 }
            }
            return await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: sendDatagrams(datagrams, config)) }
            }
        }
    }

    /// Spans over OTLP/gRPC, one client (HTTP/2 connection) per `connections`, unary Export calls carrying the
    /// prepared protobuf bytes as they are. UNAVAILABLE is retried after the RetryInfo delay (or 1 s).
    static func sendGRPC(_ posts: [Post], _ config: LoadGeneratorConfig) async -> LoadReport {
        let target = HTTPTarget(config.baseURL)
        let next = SharedIndex()
        let start = DispatchTime.now().uptimeNanoseconds
        let perWorkerRate = config.eventsPerSecond > 0 ? Double(config.eventsPerSecond) / Double(config.connections) : 0
        let metadata: Metadata = config.bearerToken.map { ["authorization": "Bearer \($0)"] } ?? [:]
        var report = await withTaskGroup(of: LoadReport.self) { group in
            for _ in 0..<config.connections {
                group.addTask {
                    var mine = LoadReport()
                    do {
                        let security: HTTP2ClientTransport.Posix.TransportSecurity =
                            if let ca = config.grpcCAFile {
                                .tls { $0.trustRoots = .certificates([.file(path: ca, format: .pem)]) }
                            } else {
                                .plaintext
                            }
                        // An address literal is its own target: as a DNS name it would be sent as the TLS server
                        // name, which may not be an IP address.
                        let resolved: any ResolvableTarget =
                            !isAddressLiteral(target.host)
                            ? .dns(host: target.host, port: target.port)
                            : target.host.contains(":")
                                ? .ipv6(address: target.host, port: target.port)
                                : .ipv4(address: target.host, port: target.port)
                        let transport = try HTTP2ClientTransport.Posix(target: resolved, transportSecurity: security)
                        try await withGRPCClient(transport: transport) { client in
                            var sent = 0
                            while true {
                                let i = next.take()
                                guard i < posts.count else { break }
                                await exportOverGRPC(posts[i], client, metadata, &mine)
                                mine.spans += posts[i].spans
                                sent += posts[i].spans
                                if perWorkerRate > 0 {
                                    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                                    let due = Double(sent) / perWorkerRate - elapsed
                                    if due > 0 { try? await Task.sleep(for: .seconds(min(due, 10))) }
                                }
                            }
                        }
                    } catch {
                        mine.failed += 1
                    }
                    return mine
                }
            }
            return await group.reduce(into: LoadReport()) { all, part in all.merge(part) }
        }
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        report.latencies.sort()
        return report
    }

    /// Whether `host` is an IPv4 or IPv6 address literal rather than a name.
    static func isAddressLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    static func exportOverGRPC(
        _ post: Post, _ client: GRPCClient<HTTP2ClientTransport.Posix>, _ metadata: Metadata, _ report: inout LoadReport
    ) async {
        for _ in 0..<100 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            do {
                _ = try await client.unary(
                    request: ClientRequest(message: post.body, metadata: metadata),
                    descriptor: Opentelemetry_Proto_Collector_Trace_V1_TraceService.Method.Export.descriptor,
                    serializer: PassThroughBytes(), deserializer: PassThroughBytes(), options: .defaults
                ) { try $0.message }
                report.posts += 1
                report.latencies.append(DispatchTime.now().uptimeNanoseconds - t0)
                return
            } catch let error as RPCError where error.code == .unavailable {
                report.refusedAndRetried += 1
                let delay =
                    (try? error.unpackGoogleRPCStatus())?.details.compactMap(\.retryInfo).first?.delay ?? .seconds(1)
                try? await Task.sleep(for: delay)
            } catch {
                report.failed += 1
                return
            }
        }
        report.failed += 1
    }

    /// Access lines as syslog datagrams from `connections` sockets, at the rate asked or as fast as the
    /// sockets take them. UDP has no acknowledgement: the report counts what was sent; compare with the
    /// collector's accepted count (metrics) for the loss.
    static func sendDatagrams(_ datagrams: [[UInt8]], _ config: LoadGeneratorConfig) -> LoadReport {
        let target = HTTPTarget(config.baseURL.replacingOccurrences(of: "udp://", with: "http://"))
        let next = Atomic<Int>(0)
        let parts = Mutex([LoadReport]())
        let group = DispatchGroup()
        let start = DispatchTime.now().uptimeNanoseconds
        let perWorkerRate = config.eventsPerSecond > 0 ? Double(config.eventsPerSecond) / Double(config.connections) : 0
        for _ in 0..<config.connections {
            group.enter()
            Thread.detachNewThread {
                var mine = LoadReport()
                let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
                var addr = sockaddr_in()
                addr.sin_family = sa_family_t(AF_INET)
                addr.sin_port = in_port_t(UInt16(target.port).bigEndian)
                addr.sin_addr.s_addr = inet_addr(target.host == "localhost" ? "127.0.0.1" : target.host)
                var sent = 0
                while true {
                    let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard i < datagrams.count else { break }
                    let rc = datagrams[i].withUnsafeBytes { b in
                        withUnsafePointer(to: &addr) {
                            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                            }
                        }
                    }
                    if rc < 0 { mine.failed += 1 } else { mine.accessEvents += 1 }
                    sent += 1
                    if perWorkerRate > 0, sent % 16 == 0 {
                        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                        let due = Double(sent) / perWorkerRate - elapsed
                        if due > 0 { usleep(useconds_t(min(due, 10) * 1e6)) }
                    }
                }
                close(fd)
                parts.withLock { $0.append(mine) }
                group.leave()
            }
        }
        group.wait()
        var report = parts.withLock { $0.reduce(into: LoadReport()) { $0.merge($1) } }
        report.posts = report.accessEvents
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return report
    }

    /// Sends `posts` over `config.connections` keep-alive connections, one thread each (blocking sockets: the
    /// cheapest client there is, so the machine's cores go to the collector under test).
    static func send(_ posts: [Post], _ config: LoadGeneratorConfig) -> LoadReport {
        let next = Atomic<Int>(0)
        let unreachable = Atomic<Bool>(false)
        let parts = Mutex([LoadReport]())
        let group = DispatchGroup()
        let start = DispatchTime.now().uptimeNanoseconds
        let perWorkerRate = config.eventsPerSecond > 0 ? Double(config.eventsPerSecond) / Double(config.connections) : 0
        let target = HTTPTarget(config.baseURL)
        let headers = config.bearerToken.map { [("Authorization", "Bearer \($0)")] } ?? []
        for _ in 0..<config.connections {
            group.enter()
            Thread.detachNewThread {
                var mine = LoadReport()
                var connection: HTTPClientConnection?
                var sentEvents = 0
                while true {
                    let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard i < posts.count, !unreachable.load(ordering: .relaxed) else { break }
                    let post = posts[i]
                    if !deliver(post, to: target, over: &connection, headers: headers, &mine) {
                        // The collector is gone: stop everyone rather than retry every remaining post; the first
                        // worker to notice counts the posts never sent.
                        if unreachable.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
                            mine.failed += max(0, posts.count - next.load(ordering: .relaxed))
                        }
                        break
                    }
                    mine.spans += post.spans
                    mine.accessEvents += post.accessEvents
                    sentEvents += post.spans + post.accessEvents
                    if perWorkerRate > 0 {
                        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                        let due = Double(sentEvents) / perWorkerRate - elapsed
                        if due > 0 { usleep(useconds_t(min(due, 10) * 1e6)) }
                    }
                }
                parts.withLock { $0.append(mine) }
                group.leave()
            }
        }
        group.wait()
        var report = parts.withLock { $0.reduce(into: LoadReport()) { $0.merge($1) } }
        report.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        report.latencies.sort()
        return report
    }

    /// Posts until acknowledged: a 503 or 429 waits Retry-After and tries again; a broken connection is
    /// reopened and the post resent; any other answer counts as failed. Returns false when the collector
    /// cannot be reached at all (20 attempts in a row, about a second).
    static func deliver(
        _ post: Post, to target: HTTPTarget, over connection: inout HTTPClientConnection?,
        headers: [(String, String)] = [],
        _ report: inout LoadReport
    ) -> Bool {
        var unreachableInARow = 0
        for _ in 0..<100 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            do {
                if connection == nil { connection = try HTTPClientConnection(target) }
                let answer = try connection!.post(
                    post.path, contentType: post.contentType, body: post.body, headers: headers)
                if !connection!.isReusable { connection = nil }
                unreachableInARow = 0
                if answer.status == 200 || answer.status == 202 {  // 202: Zipkin's answer
                    report.posts += 1
                    report.latencies.append(DispatchTime.now().uptimeNanoseconds - t0)
                    return true
                }
                if answer.status == 503 || answer.status == 429 {
                    report.refusedAndRetried += 1
                    usleep(useconds_t(max(0.05, min(Double(answer.retryAfter ?? 1), 30)) * 1e6))
                    continue
                }
                report.failed += 1
                return true
            } catch {
                connection = nil
                unreachableInARow += 1
                if unreachableInARow >= 20 {
                    report.failed += 1
                    return false
                }
                usleep(50_000)
            }
        }
        report.failed += 1
        return true
    }

    /// Spans as the JSON transports send them: OTLP/HTTP JSON (swift-protobuf's proto3 JSON with enums as numbers:
    /// ids in base64, which OTLP/JSON receivers accept besides hex) or a Zipkin v2 array. Nil for other transports.
    static func jsonPost(_ spans: [AuditEvent], _ transport: LoadGeneratorConfig.Transport) -> Post? {
        switch transport {
        case .otlpJSON:
            var options = JSONEncodingOptions()
            options.alwaysPrintEnumsAsInts = true
            guard let body: [UInt8] = try? OTLPMapping.traceRequest(from: spans).jsonUTF8Bytes(options: options) else {
                return nil
            }
            return Post(
                path: "/v1/traces", contentType: "application/json", body: body, spans: spans.count, accessEvents: 0)
        case .zipkin:
            let body = Array(("[" + spans.map(ZipkinJSON.span).joined(separator: ",") + "]").utf8)
            return Post(
                path: "/api/v2/spans", contentType: "application/json", body: body, spans: spans.count, accessEvents: 0)
        default: return nil
        }
    }

    /// The generator stores HTTP facts as first-class fields only (as the collector does after deriving them);
    /// an instrumented service sends them as semantic-convention attributes, so that is what goes on the wire.
    static func withSemanticAttributes(_ event: AuditEvent) -> AuditEvent {
        guard let http = event.http else { return event }
        let known: Set<String> = [
            "http.request.method", "http.method", "url.path", "http.target", "url.full", "http.url",
            "http.response.status_code", "http.status_code",
        ]
        guard !event.attributes.contains(where: { known.contains($0.key) }) else { return event }
        var e = event
        if let method = http.method { e.attributes.append(Attribute("http.request.method", .string(method))) }
        if let target = http.target {
            let parts = target.split(separator: "?", maxSplits: 1)
            e.attributes.append(Attribute("url.path", .string(String(parts.first ?? ""))))
            if parts.count == 2 { e.attributes.append(Attribute("url.query", .string(String(parts[1])))) }
        }
        if let route = http.route { e.attributes.append(Attribute("http.route", .string(route))) }
        if http.statusCode != 0 {
            e.attributes.append(Attribute("http.response.status_code", .int(Int64(http.statusCode))))
        }
        if let client = http.clientAddress { e.attributes.append(Attribute("client.address", .string(client))) }
        return e
    }
}

/// Bytes in, bytes out: the load generator sends prepared protobuf as it is.
struct PassThroughBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

/// A counter workers take indexes from.
final class SharedIndex: Sendable {
    private let value = Atomic<Int>(0)
    func take() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}
