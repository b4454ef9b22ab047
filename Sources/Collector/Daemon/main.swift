// collector: the audit-trail collector daemon. Its receivers arrive with the collector issues; today it can
// seed a data directory with realistic synthetic traffic through the same writer.
import ArgumentParser
import CollectorCore
import Foundation
import LogFormat
import Logging
import OTLPBridge
import ObjectStore
import ServiceLifecycle
import SyntheticTraffic

/// Keeps the SIGHUP source alive for the life of the process; set once, at start, before any other task reads it.
nonisolated(unsafe) var reloadSignal: (any DispatchSourceSignal)?

@main
struct Collector: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collector",
        abstract: "The audit-trail collector.",
        subcommands: [Serve.self, LoadGen.self, IngestSynthetic.self, KeyGen.self],
        defaultSubcommand: Serve.self)

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Receive OTLP/HTTP spans and logs and NDJSON access events; store them durably.",
            discussion: """
                Endpoints: OTLP/gRPC TraceService and LogsService Export (--otlp-grpc); POST /v1/traces and /v1/logs (application/x-protobuf or application/json, gzip allowed), \
                POST /v1/access (application/x-ndjson), GET /healthz, GET /readyz, GET /metrics (Prometheus). A request is answered only once \
                its events are durable under the fsync policy; when the disk cannot keep up the answer is 503 with \
                Retry-After. SIGTERM or SIGINT: stop accepting, finish requests, write, seal.
                """)

        @Option(help: "A YAML configuration file (flags and AUDIT_COLLECTOR_* environment variables override it).")
        var config: String?
        @Option(help: "Check this configuration file, print every problem, and exit (0 valid, 2 invalid).")
        var checkConfig: String?
        @Option(help: "Data directory (default ./data).") var data: String?
        @Option(
            name: .customLong("otlp-http"),
            help: "Address of the OTLP/HTTP and access-event listener (default 127.0.0.1:4318; port 0: any free port).")
        var otlpHTTP: String?
        @Option(
            name: .customLong("otlp-grpc"),
            help: "Address of the OTLP/gRPC listener (default 127.0.0.1:4317; port 0: any free port; off: none).")
        var otlpGRPC: String?
        @Option(help: "Address of the Zipkin v2 JSON listener, POST /api/v2/spans (default 127.0.0.1:9411; off: none).")
        var zipkin: String?
        @Option(
            name: .customLong("syslog-udp"),
            help: "Address of the syslog UDP listener for nginx access lines (default 127.0.0.1:5514; off: none).")
        var syslogUDP: String?
        @Option(
            name: .customLong("syslog-tcp"),
            help: "Address of the syslog TCP listener, RFC 6587 framing (default 127.0.0.1:5514; off: none).")
        var syslogTCP: String?
        @Flag(help: "Allow a plain-text listener on a non-loopback address.") var allowPlaintextRemote = false
        @Option(help: "fsync policy: always, interval or never (default interval).") var fsync: String?
        @Option(help: "Interval of the interval fsync policy, milliseconds (default 50).") var fsyncIntervalMs: Int?
        @Option(help: "Largest request body after decompression, bytes (default 64 MiB).") var maxBodyBytes: Int?
        @Option(help: "Events waiting for the disk beyond which requests get 503 (default 200000).")
        var maxPendingEvents: Int?
        @Option(help: "Spans, log records or access lines one request may hold; more get 413 (default 100000).")
        var maxItemsPerRequest: Int?
        @Option(
            help:
                "Attributes, array and list values, span events and links one request may hold; more get 413 (default 2000000)."
        )
        var maxValuesPerRequest: Int?
        @Option(help: "Seal a segment at this size, bytes (default 256 MiB).") var segmentBytes: Int?
        @Option(help: "Seal a segment at this age, seconds (default 3600).") var segmentAgeSeconds: Int?
        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default info).") var logLevel:
            String?
        @Option(help: "A JWKS file whose keys verify bearer JWTs found in events (default: decode only).") var jwksFile:
            String?
        @Option(help: "A file holding the secret for keyed fingerprints of redacted values (at least 16 bytes).")
        var redactionHmacSecretFile: String?
        @Option(
            help: "An http(s) URL serving the JWKS (instead of --jwks-file), read again hourly and on unknown kids.")
        var jwksUrl: String?
        @Option(
            name: .customLong("tls-cert"), help: "PEM certificate chain: TLS on every TCP listener (with --tls-key).")
        var tlsCert: String?
        @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert (mode 0600). SIGHUP reloads both.")
        var tlsKey: String?
        @Option(
            name: .customLong("tls-client-ca"), help: "PEM CA bundle: require client certificates it signed (mTLS).")
        var tlsClientCA: String?
        @Option(
            name: .customLong("optional-client-certificates"),
            help: """
                With --tls-client-ca, TCP listeners where a client certificate is optional (senders without one \
                show a bearer token): a comma-separated list of otlp_http, otlp_grpc, zipkin, syslog_tcp.
                """)
        var optionalClientCertificates: String?
        @Option(
            help: "The senders file: hashed bearer tokens and mTLS identities, each with its receivers and sources.")
        var sendersFile: String?
        @Option(help: "Ed25519 key file (mode 0600) that signs every seal; `collector keygen` makes one.")
        var signingKey: String?

        /// Defaults, then the file, then the environment, then flags.
        func resolved() throws -> CollectorConfig {
            var c = CollectorConfig()
            if let config {
                let text: String
                do { text = try String(contentsOfFile: config, encoding: .utf8) } catch {
                    throw ValidationError("cannot read \(config): \(error.localizedDescription)")
                }
                do { c = try CollectorConfig.parse(yaml: text, over: c, source: config, checkValues: false) } catch {
                    throw ValidationError(error.description)
                }
            }
            do { c = try c.applying(environment: ProcessInfo.processInfo.environment) } catch {
                throw ValidationError(error.description)
            }
            if let data { c.data = data }
            if let otlpHTTP { c.otlpHTTPAddress = otlpHTTP }
            if let otlpGRPC { c.otlpGRPCAddress = otlpGRPC }
            if let zipkin { c.zipkinAddress = zipkin }
            if let syslogUDP { c.syslogUDPAddress = syslogUDP }
            if let syslogTCP { c.syslogTCPAddress = syslogTCP }
            if allowPlaintextRemote { c.allowPlaintextRemote = true }
            if let fsync { c.fsync = fsync }
            if let fsyncIntervalMs { c.fsyncIntervalMs = fsyncIntervalMs }
            if let maxBodyBytes { c.maxBodyBytes = maxBodyBytes }
            if let maxPendingEvents { c.maxPendingEvents = maxPendingEvents }
            if let maxItemsPerRequest { c.maxItemsPerRequest = maxItemsPerRequest }
            if let maxValuesPerRequest { c.maxValuesPerRequest = maxValuesPerRequest }
            if let segmentBytes { c.segmentBytes = segmentBytes }
            if let segmentAgeSeconds { c.segmentAgeSeconds = segmentAgeSeconds }
            if let logLevel { c.logLevel = logLevel }
            if let jwksFile { c.jwksFile = jwksFile }
            if let jwksUrl { c.jwksURL = jwksUrl }
            if let redactionHmacSecretFile { c.hmacSecretFile = redactionHmacSecretFile }
            if let tlsCert { c.tlsCertFile = tlsCert }
            if let tlsKey { c.tlsKeyFile = tlsKey }
            if let tlsClientCA { c.tlsClientCAFile = tlsClientCA }
            if let optionalClientCertificates {
                do { try c.makeClientCertificatesOptional(optionalClientCertificates) } catch {
                    throw ValidationError(error.description)
                }
            }
            if let sendersFile { c.sendersFile = sendersFile }
            if let signingKey { c.signingKeyFile = signingKey }
            let problems = c.problems()
            guard problems.isEmpty else { throw ValidationError(problems.joined(separator: "\n")) }
            return c
        }

        func validate() throws {
            if checkConfig == nil { _ = try resolved() }
        }

        func run() async throws {
            if let checkConfig {
                do {
                    let text = try String(contentsOfFile: checkConfig, encoding: .utf8)
                    _ = try CollectorConfig.parse(yaml: text, source: checkConfig)
                    print("\(checkConfig): valid")
                    return
                } catch let problem as CollectorConfig.Problem {
                    FileHandle.standardError.write(Data((problem.description + "\n").utf8))
                    throw ExitCode(2)
                } catch {
                    FileHandle.standardError.write(
                        Data("cannot read \(checkConfig): \(error.localizedDescription)\n".utf8))
                    throw ExitCode(2)
                }
            }
            let c = try resolved()
            let level = Logger.Level(rawValue: c.logLevel) ?? .info
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = level
                return h
            }
            let logger = Logger(label: "collector")
            var options = DurableLog.Options()
            options.fsync =
                c.fsync == "always" ? .always : c.fsync == "never" ? .never : .interval(milliseconds: c.fsyncIntervalMs)
            options.maxPendingEvents = c.maxPendingEvents
            options.writer.maxSegmentBytes = c.segmentBytes
            options.writer.maxSegmentAgeNanos = UInt64(c.segmentAgeSeconds) * 1_000_000_000
            options.sealNiceIncrement = Int32(c.sealNice)
            if !c.signingKeyFile.isEmpty {
                // Refuses a key that group or others can read, with the file and the chmod to run.
                do { options.writer.signer = try SealSigner.load(from: c.signingKeyFile) } catch {
                    throw ValidationError("the seal signing key: \(error.message)")
                }
            }
            // Everything sent reaches this process's files: never let group or others read them.
            umask(0o077)
            let tls: ReloadableCertificates?
            do { tls = try c.tls.map { try ReloadableCertificates(settings: $0) } } catch {
                throw ValidationError("TLS: \(error)")
            }
            var senders: SenderAuthenticator?
            if !c.sendersFile.isEmpty {
                do { senders = try SenderAuthenticator.load(path: c.sendersFile) } catch {
                    throw ValidationError(error.description)
                }
            }
            let metrics = CollectorMetrics()
            // Every segment ends with the completeness ledger of its period (docs/format/ledger.md).
            options.writer.trailer = metrics.ledger
            let log = try DurableLog(
                directory: DataDirectory(c.data), options: options, observer: metrics, logger: logger)
            for r in log.recoveries { logger.warning("recovered", metadata: ["report": "\(r)"]) }
            metrics.recovered(log.recoveries)
            var limits = IngestLimits()
            limits.maxBodyBytes = c.maxBodyBytes
            limits.maxAttributesPerRecord = c.maxAttributesPerRecord
            limits.maxStringBytes = c.maxStringBytes
            limits.maxItemsPerRequest = c.maxItemsPerRequest
            limits.maxValuesPerRequest = c.maxValuesPerRequest
            let normalization: NormalizerOptions
            do { normalization = try await c.normalizerOptions(logger: logger) } catch {
                throw ValidationError(error.description)
            }
            if let jwks = normalization.jwks {
                logger.info(
                    "verifying bearer JWTs",
                    metadata: [
                        "jwks": "\(jwks.location.map(String.init(describing:)) ?? "")", "keys": "\(jwks.keys.keyIDs)",
                    ])
                for s in jwks.keys.skipped { logger.warning("JWKS key skipped", metadata: ["why": "\(s)"]) }
            }
            if normalization.redaction.hmacSecret.isEmpty {
                logger.notice("no redaction HMAC secret: redaction markers carry no fingerprint")
            }
            let ingest = IngestService(
                log: log, limits: limits, identity: c.identityKeys, metrics: metrics,
                normalizer: Normalizer(options: normalization), senders: senders, logger: logger)
            if let senders {
                logger.info("sender authentication on", metadata: ["senders": "\(senders.senders.count)"])
            }
            /// What a listener's line says of its security.
            @Sendable func security(_ listener: ClientCertificateListener) -> String {
                guard let tls else { return "" }
                guard tls.settings.mutual else { return " (tls)" }
                return c.clientCertificates(listener) == .required ? " (mtls)" : " (mtls, certificate optional)"
            }
            if let tls {
                logger.info(
                    "TLS on", metadata: ["certificate": "\(tls.leafFingerprint)", "mutual": "\(tls.settings.mutual)"])
                let optional = ClientCertificateListener.allCases.filter { c.clientCertificates($0) == .optional }
                if tls.settings.mutual, !optional.isEmpty, senders == nil {
                    logger.warning(
                        "client certificates are optional but there is no senders file: anyone who completes TLS may send",
                        metadata: ["listeners": "\(optional.map(\.rawValue).joined(separator: ","))"])
                }
            }
            if tls != nil || senders != nil {
                Self.reloadOnSIGHUP(
                    tls: tls, sendersFile: senders == nil ? nil : c.sendersFile, ingest: ingest, logger: logger)
            }
            let (host, port) = try c.address()
            let app = try CollectorServer.application(
                ingest: ingest, host: host, port: port, tls: tls, clientCertificates: c.clientCertificates(.otlpHTTP),
                logger: logger
            ) { bound in
                // Tests and scripts read this line to learn the port.
                let scheme = tls == nil ? "http" : "https"
                FileHandle.standardOutput.write(
                    Data("listening on \(scheme)://\(host):\(bound) node \(log.nodeID)\(security(.otlpHTTP))\n".utf8))
            }
            // Shut down in reverse order: the receivers stop first, then the log drains and seals.
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: DurableLogService(log: log, logger: logger)), .init(service: app),
            ]
            if let (grpcHost, grpcPort) = try c.grpcAddress() {
                let server = try GRPCReceiver.server(
                    ingest: ingest, host: grpcHost, port: grpcPort, tls: tls,
                    clientCertificates: c.clientCertificates(.otlpGRPC), idleTimeout: .seconds(c.grpcIdleTimeoutSeconds)
                )
                services.append(
                    .init(
                        service: GRPCServerService(server: server) { bound in
                            FileHandle.standardOutput.write(
                                Data("listening on grpc://\(grpcHost):\(bound)\(security(.otlpGRPC))\n".utf8))
                        }))
            }
            if let (zipkinHost, zipkinPort) = try c.zipkinListenAddress() {
                let zipkinApp = try CollectorServer.application(
                    ingest: ingest, host: zipkinHost, port: zipkinPort, zipkin: true, tls: tls,
                    clientCertificates: c.clientCertificates(.zipkin), logger: logger
                ) { bound in
                    FileHandle.standardOutput.write(
                        Data("listening on zipkin://\(zipkinHost):\(bound)\(security(.zipkin))\n".utf8))
                }
                services.append(.init(service: zipkinApp))
            }
            let syslog = try c.syslogAddresses()
            if syslog.udp != nil || syslog.tcp != nil {
                let receiver = SyslogReceiver(ingest: ingest, logger: logger)
                services.append(
                    .init(
                        service: SyslogService(
                            receiver: receiver, udp: syslog.udp, tcp: syslog.tcp, tls: tls,
                            clientCertificates: c.clientCertificates(.syslogTCP),
                            idleTimeout: .seconds(Int64(c.syslogTCPIdleTimeoutSeconds)),
                            udpReceiveBufferBytes: c.syslogUDPReceiveBufferBytes, logger: logger
                        ) { transport, bound in
                            let host = transport == "udp" ? syslog.udp?.host ?? "" : syslog.tcp?.host ?? ""
                            let note = transport == "udp" ? "" : security(.syslogTCP)
                            FileHandle.standardOutput.write(
                                Data("listening on syslog-\(transport)://\(host):\(bound)\(note)\n".utf8))
                        }))
            }
            if let jwks = normalization.jwks {
                services.append(.init(service: JWKSRefreshService(source: jwks)))
            }
            if c.retention.scheduleIntervalSeconds > 0 {
                logger.info(
                    "retention scheduled",
                    metadata: [
                        "every_seconds": "\(c.retention.scheduleIntervalSeconds)", "policy": "\(c.retention.summary)",
                    ])
                services.append(
                    .init(
                        service: RetentionService(directory: DataDirectory(c.data), policy: c.retention, logger: logger)
                    ))
            }
            if c.shipping.enabled {
                let shipper: SegmentShipper
                do {
                    let client = try S3Client(
                        c.shipping.s3Configuration(environment: ProcessInfo.processInfo.environment))
                    shipper = try SegmentShipper(
                        directory: DataDirectory(c.data), policy: c.shipping, client: client, gate: ingest.localSpace,
                        registry: metrics.registry, logger: logger)
                } catch { throw ValidationError("shipping: \(error.message)") }
                logger.info("shipping sealed segments", metadata: ["store": "\(shipper.location)"])
                services.append(.init(service: ShippingService(shipper: shipper)))
            }
            let group = ServiceGroup(
                configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }

        /// SIGHUP reads the certificate and key again (connections already open keep the pair they began
        /// with) and the senders file. Whatever fails to load is logged and counted, and the old one stays.
        static func reloadOnSIGHUP(
            tls: ReloadableCertificates?, sendersFile: String?, ingest: IngestService, logger: Logger
        ) {
            signal(SIGHUP, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
            source.setEventHandler {
                if let tls {
                    do {
                        let fingerprint = try tls.reload()
                        ingest.metrics.certificateReload(outcome: "ok")
                        logger.notice("TLS certificate reloaded", metadata: ["certificate": "\(fingerprint)"])
                    } catch {
                        ingest.metrics.certificateReload(outcome: "failed")
                        logger.error(
                            "TLS reload failed; keeping the certificate in use", metadata: ["error": "\(error)"])
                    }
                }
                if let sendersFile {
                    do {
                        let senders = try SenderAuthenticator.load(path: sendersFile)
                        ingest.replaceSenders(senders)
                        ingest.metrics.sendersReload(outcome: "ok")
                        logger.notice("senders reloaded", metadata: ["senders": "\(senders.senders.count)"])
                    } catch {
                        ingest.metrics.sendersReload(outcome: "failed")
                        logger.error(
                            "senders reload failed; keeping the senders in use", metadata: ["error": "\(error)"])
                    }
                }
            }
            source.resume()
            reloadSignal = source
        }
    }

    /// Writes a new Ed25519 seal-signing key (mode 0600) and its public key beside it (`.pub`, for auditq).
    struct KeyGen: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keygen",
            abstract: "Create the Ed25519 key that signs seals (--signing-key), and its public key.")
        @Option(help: "Where to write the private key; the public key goes to the same path plus .pub.") var out: String

        func run() throws {
            let signer = SealSigner.generate()
            do {
                try signer.write(to: out)
            } catch {
                FileHandle.standardError.write(Data("\(error.message)\n".utf8))
                throw ExitCode(1)
            }
            print("private key: \(out) (mode 0600)\npublic key:  \(out).pub (give it to auditq verify --public-key)")
        }
    }

    struct LoadGen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "loadgen",
            abstract: "Send realistic synthetic edge + mesh traffic to a collector and report throughput and latency.",
            discussion: """
                Spans go over OTLP/HTTP protobuf to /v1/traces, edge access events as nginx NDJSON lines to /v1/access. \
                Each synthetic request is one access event plus 3-12 spans; refusals (503) are retried after Retry-After.
                """)

        @Option(help: "Collector address: http://HOST:PORT of the OTLP/HTTP, OTLP/gRPC, syslog UDP or Zipkin port.")
        var to =
            "http://127.0.0.1:4318"
        @Option(
            help:
                "http (OTLP/HTTP spans + NDJSON access events), grpc (OTLP/gRPC spans only), syslog-udp (nginx access lines only), access-ndjson (nginx access lines only, as NDJSON posts to /v1/access), otlp-json (OTLP/HTTP JSON spans only) or zipkin (Zipkin v2 JSON spans only, to the Zipkin port)."
        )
        var transport = "http"
        @Option(name: .customLong("grpc-ca"), help: "With --transport grpc: use TLS, trusting this PEM CA bundle.")
        var grpcCA: String?
        @Option(help: "A file holding a bearer token to send (for a collector with --senders-file).") var tokenFile:
            String?
        @Option(help: "Synthetic requests to send.") var requests = 10_000
        @Option(help: "Synthetic requests per HTTP post.") var requestsPerPost = 50
        @Option(help: "Concurrent connections.") var connections = 4
        @Option(help: "Events per second; 0 sends as fast as acknowledged.") var rate = 0
        @Option(help: "Days the traffic spans.") var days = 1
        @Option(help: "First day, YYYY-MM-DD (UTC). Default: today.") var start: String?
        @Option(help: "Random seed.") var seed: UInt64 = 1
        @Option(help: "Distinct users.") var users = 50_000

        func validate() throws {
            guard requests > 0, requestsPerPost > 0, connections > 0, rate >= 0, days > 0, users > 0 else {
                throw ValidationError("counts must be positive (rate may be 0)")
            }
            if let start, UnixTime.parseDay(Substring(start)) == nil {
                throw ValidationError("--start is a day like 2026-11-02")
            }
            guard HTTPTarget(url: to.replacingOccurrences(of: "udp://", with: "http://")) != nil else {
                throw ValidationError("--to is an http://host:port URL")
            }
            guard LoadGeneratorConfig.Transport(rawValue: transport) != nil else {
                throw ValidationError("--transport is http, grpc, syslog-udp, access-ndjson, otlp-json or zipkin")
            }
        }

        func run() async throws {
            var config = LoadGeneratorConfig(
                baseURL: to.hasSuffix("/") ? String(to.dropLast()) : to, requests: requests)
            config.requestsPerPost = requestsPerPost
            config.connections = connections
            config.eventsPerSecond = rate
            config.transport = LoadGeneratorConfig.Transport(rawValue: transport) ?? .http
            config.grpcCAFile = grpcCA
            if let tokenFile {
                guard let data = FileManager.default.contents(atPath: tokenFile) else {
                    throw ValidationError("cannot read \(tokenFile)")
                }
                config.bearerToken = String(decoding: data, as: UTF8.self).trimmingCharacters(
                    in: .whitespacesAndNewlines)
            }
            config.traffic.seed = seed
            config.traffic.userCount = users
            config.traffic.days = days
            config.traffic.requestsPerDay = max(1, requests / days)
            let today = FileIO.nowUnixNano() / UnixTime.nanosPerDay * UnixTime.nanosPerDay
            config.traffic.startUnixNano = start.flatMap { UnixTime.parseDay(Substring($0)) } ?? today
            let report = await LoadGenerator.run(config)
            print(report)
            if report.failed > 0 { throw ExitCode(1) }
        }
    }

    struct IngestSynthetic: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ingest-synthetic",
            abstract: "Write realistic synthetic edge + mesh traffic into a data directory and seal it.",
            discussion: """
                Each request is one nginx edge access event plus 3-12 sidecar, service and analytics spans; users are \
                Zipf-skewed; start times follow a day/night curve over --days days from --start.
                """)

        @Option(help: "Data directory.") var data = "./data"
        @Option(help: "Requests to generate (about 6.9 events each).") var requests = 100_000
        @Option(help: "Days the traffic spans.") var days = 1
        @Option(help: "First day, YYYY-MM-DD (UTC). Default: the generator's fixed start day.") var start: String?
        @Option(help: "Random seed.") var seed: UInt64 = 1
        @Option(help: "Distinct users.") var users = 50_000
        @Option(help: "fsync policy per batch: always, interval or never.") var fsync = "interval"
        @Option(help: "Seal a segment after this many events.") var segmentEvents = 1_000_000
        @Flag(
            name: .customLong("independent-request-ids"),
            help: "Request ids drawn on their own, not the trace id (as at an edge that does not reuse it).")
        var independentRequestIDs = false
        @Flag(help: "Print the heaviest user's subject and exit.") var printHeavyUser = false
        @Flag(help: "Print a light user's subject (Zipf rank users/2) and exit.") var printLightUser = false
        @Flag(help: "Print the first day of the traffic (YYYY-MM-DD) and exit.") var printFirstDay = false

        func validate() throws {
            guard requests > 0, days > 0, users > 0, segmentEvents > 0 else {
                throw ValidationError("--requests, --days, --users and --segment-events must be positive")
            }
            guard ["always", "interval", "never"].contains(fsync) else {
                throw ValidationError("--fsync is always, interval or never")
            }
            if let start, Self.day(start) == nil { throw ValidationError("--start is a day like 2026-11-02") }
        }

        static func day(_ s: String) -> UInt64? { UnixTime.parseDay(Substring(s)) }

        var generatorConfiguration: TrafficGenerator.Configuration {
            var c = TrafficGenerator.Configuration()
            c.seed = seed
            c.userCount = users
            c.independentRequestIDs = independentRequestIDs
            c.days = days
            c.requestsPerDay = max(1, requests / days)
            if let start, let ns = Self.day(start) { c.startUnixNano = ns }
            return c
        }

        func run() throws {
            let c = generatorConfiguration
            if printHeavyUser {
                print(TrafficGenerator.heavyUser(for: c))
                return
            }
            if printLightUser {
                print(TrafficGenerator.lightUser(for: c))
                return
            }
            if printFirstDay {
                print(UnixTime.formatDay(c.startUnixNano))
                return
            }
            var options = WriterOptions()
            options.maxSegmentRecords = segmentEvents
            let policy: FsyncPolicy =
                fsync == "always" ? .always : fsync == "never" ? .never : .interval(milliseconds: 50)
            var logger = Logger(label: "collector")
            logger.logLevel = .warning
            let summary = try SyntheticLoad.write(
                into: DataDirectory(data), configuration: c, requests: requests, options: options, fsync: policy,
                logger: logger)
            let seconds = Double(summary.writeNanos) / 1e9
            print(
                "wrote \(summary.events) events (\(summary.requests) requests) into \(summary.segmentsSealed) sealed segments, "
                    + "\(summary.bytesWritten) bytes (\(String(format: "%.1f", Double(summary.bytesWritten) / Double(max(1, summary.events)))) bytes/event) "
                    + "in \(String(format: "%.2f", seconds)) s of writing (\(Int(Double(summary.events) / max(seconds, 1e-9))) events/s)"
            )
        }
    }
}
