// The collector's configuration: a YAML file, then environment variables, then flags (flags win). Unknown keys
// are errors (a misspelt limit must not silently fall back to its default). docs/configuration.md lists every key.
import Foundation
import LogFormat
import Logging
import OTLPBridge
import StoreQuery
import Yams

public struct CollectorConfig: Sendable, Equatable {
    public var data = "./data"
    public var otlpHTTPAddress = "127.0.0.1:4318"
    /// OTLP/gRPC listener; "off" disables it.
    public var otlpGRPCAddress = "127.0.0.1:4317"
    /// Zipkin v2 JSON listener (POST /api/v2/spans); "off" disables it.
    public var zipkinAddress = "127.0.0.1:9411"
    /// Syslog listeners for nginx access lines (UDP: RFC 3164 as nginx sends it; TCP: RFC 6587 framing of
    /// RFC 5424 or 3164 messages); "off" disables either.
    public var syslogUDPAddress = "127.0.0.1:5514"
    public var syslogTCPAddress = "127.0.0.1:5514"
    /// A syslog TCP connection that sends nothing for this long (while the collector waits to read) is closed.
    public var syslogTCPIdleTimeoutSeconds = 300
    /// A gRPC connection without an RPC for this long is closed (GOAWAY); clients reconnect when they next send.
    public var grpcIdleTimeoutSeconds = 300
    /// SO_RCVBUF of the syslog UDP socket: what the kernel holds while the collector is busy (a burst of 100,000
    /// lines/s for 50 ms is about 10 MiB of kernel accounting). Linux caps it at net.core.rmem_max (the
    /// effective size is logged and exported as a metric).
    public var syslogUDPReceiveBufferBytes = 32 << 20
    public var allowPlaintextRemote = false
    public var fsync = "interval"
    public var fsyncIntervalMs = 50
    public var segmentBytes = 256 << 20
    public var segmentAgeSeconds = 3_600
    /// How much lower than the receivers a seal's lay-out runs (nice increment, 0–19): a seal is CPU the receivers
    /// could use, and the segment is durable in its log before it is laid out, so it can wait for idle moments
    /// (when more than two logs await their lay-out, it runs at the collector's priority).
    public var sealNice = 10
    public var maxBodyBytes = 64 << 20
    public var maxPendingEvents = 200_000
    public var maxAttributesPerRecord = 1_024
    public var maxItemsPerRequest = IngestLimits().maxItemsPerRequest
    public var maxValuesPerRequest = IngestLimits().maxValuesPerRequest
    public var maxStringBytes = 256 << 10
    public var userAttributes = IdentityKeys().subject
    public var emailAttributes = IdentityKeys().email
    public var groupAttributes = IdentityKeys().groups
    /// A JWKS file whose keys verify bearer JWTs; empty: tokens are only decoded.
    public var jwksFile = ""
    /// An http(s) URL serving the JWKS (an identity provider's `jwks_uri`); exclusive with `jwksFile`.
    public var jwksURL = ""
    /// How often the JWKS (file or URL) is read again; 0: only at start and for unknown `kid`s.
    public var jwksRefreshSeconds = 3_600
    /// Least time between two reads of the JWKS asked for by tokens naming a `kid` it lacks.
    public var jwksUnknownKidMinSeconds = 30
    /// Clock difference tolerated when judging a verified token's `exp` and `nbf`.
    public var tokenLeewaySeconds = 60
    /// A verified token's `aud` must name one of these; empty: the audience is not judged.
    public var tokenAudiences: [String] = []
    public var redactionKeys = RedactionPolicy.defaultKeys
    public var redactionQueryParameters = RedactionPolicy.defaultQueryParameters
    /// A file holding the collector's HMAC secret for redaction fingerprints (at least 16 bytes).
    public var hmacSecretFile = ""
    /// The HMAC secret itself, from AUDIT_COLLECTOR_REDACTION_HMAC_SECRET only (never from the file or a flag,
    /// where it would be readable by others).
    public var hmacSecret = ""
    public var logLevel = "info"
    /// TLS on every TCP listener: certificate chain and key (PEM); both or neither.
    public var tlsCertFile = ""
    public var tlsKeyFile = ""
    /// A PEM CA bundle: with it, the TCP listeners ask for client certificates it signed (mTLS), and require
    /// one unless the listener's `client_certificates` is `optional`.
    public var tlsClientCAFile = ""
    /// Per TCP listener, with the CA bundle: must clients present a certificate (`required`, the default), or may
    /// they name themselves with a bearer token instead (`optional`: a certificate presented is still checked).
    public var clientCertificates = [ClientCertificateListener: ClientCertificates](
        uniqueKeysWithValues: ClientCertificateListener.allCases.map { ($0, .required) })
    /// The senders file (hashed bearer tokens and mTLS identities, with their receivers and sources); empty:
    /// no sender authentication.
    public var sendersFile = ""
    /// The Ed25519 key that signs every seal (`collector keygen` makes one); empty: seals are unsigned.
    public var signingKeyFile = ""

    // MARK: Retention (kept apart from receivers and TLS/auth to keep merges easy)
    /// The `retention:` section: archive and expiry ages, legal holds, and how often the collector runs the job
    /// itself (`schedule_interval_seconds`; 0 leaves it to `auditq retention apply` from cron). The section is
    /// parsed by `RetentionPolicy`, which auditq shares.
    public var retention = RetentionPolicy()
    // MARK: Shipping to object storage (kept apart too)
    /// The `shipping:` section: the bucket, Object Lock, how long shipped segments stay local, the disk budget.
    public var shipping = ShippingPolicy()
    // MARK: -

    public init() {}

    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var messages: [String]
        public var description: String { messages.joined(separator: "\n") }
    }

    /// Every key of the file, with its dotted path.
    static let keys: [String] = [
        "data", "receivers.otlp_http.address", "receivers.otlp_http.allow_plaintext_remote",
        "receivers.otlp_grpc.address", "receivers.zipkin.address", "receivers.syslog.udp_address",
        "receivers.syslog.tcp_address", "receivers.syslog.tcp_idle_timeout_seconds",
        "receivers.otlp_grpc.idle_timeout_seconds", "receivers.syslog.udp_receive_buffer_bytes", "storage.fsync",
        "storage.fsync_interval_ms", "storage.segment_bytes", "storage.segment_age_seconds", "storage.seal_nice",
        "limits.max_body_bytes",
        "limits.max_pending_events", "limits.max_attributes_per_record", "limits.max_string_bytes",
        "limits.max_items_per_request", "limits.max_values_per_request",
        "identity.user_attributes", "identity.email_attributes", "identity.group_attributes", "identity.jwks_file",
        "identity.jwks_url", "identity.jwks_refresh_seconds", "identity.jwks_unknown_kid_min_seconds",
        "identity.token_leeway_seconds", "identity.token_audiences",
        "redaction.keys", "redaction.query_parameters", "redaction.hmac_secret_file", "log_level",
        "tls.cert_file", "tls.key_file", "tls.client_ca_file", "auth.senders_file", "storage.signing_key_file",
        "receivers.otlp_http.client_certificates", "receivers.otlp_grpc.client_certificates",
        "receivers.zipkin.client_certificates", "receivers.syslog.tcp_client_certificates",
        // Retention: one key here; RetentionPolicy checks what is inside.
        "retention",
        // Shipping: one key here; ShippingPolicy checks what is inside.
        "shipping",
    ]

    /// Reads a YAML document over `base` (the defaults). Every problem is reported, not just the first.
    /// With `checkValues` false only unknown keys and wrong types are problems, so later layers (environment,
    /// flags) can still fix a value before the merged result is checked.
    public static func parse(
        yaml text: String, over base: CollectorConfig = CollectorConfig(), source: String = "config",
        checkValues: Bool = true
    ) throws(Problem) -> CollectorConfig {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch {
            throw Problem(messages: ["\(source): not valid YAML: \(error)"])
        }
        guard let root else { return base }
        guard let map = root as? [String: Any] else {
            throw Problem(messages: ["\(source): the top level must be a mapping"])
        }
        var flat: [String: Any] = [:]
        var problems: [String] = []
        func walk(_ m: [String: Any], _ prefix: String) {
            for (k, v) in m {
                let path = prefix.isEmpty ? k : prefix + "." + k
                if let sub = v as? [String: Any], !keys.contains(path) {
                    if keys.contains(where: { $0.hasPrefix(path + ".") }) {
                        walk(sub, path)
                    } else {
                        problems.append("\(source): unknown key \(path)")
                    }
                } else if keys.contains(path) {
                    flat[path] = v
                } else {
                    problems.append("\(source): unknown key \(path)")
                }
            }
        }
        walk(map, "")
        var c = base
        func string(_ k: String, _ set: (String) -> Void) {
            guard let v = flat[k] else { return }
            if let s = v as? String { set(s) } else { problems.append("\(source): \(k) must be a string") }
        }
        func int(_ k: String, _ set: (Int) -> Void) {
            guard let v = flat[k] else { return }
            if let i = v as? Int { set(i) } else { problems.append("\(source): \(k) must be an integer") }
        }
        func bool(_ k: String, _ set: (Bool) -> Void) {
            guard let v = flat[k] else { return }
            if let b = v as? Bool { set(b) } else { problems.append("\(source): \(k) must be true or false") }
        }
        string("data") { c.data = $0 }
        string("receivers.otlp_http.address") { c.otlpHTTPAddress = $0 }
        bool("receivers.otlp_http.allow_plaintext_remote") { c.allowPlaintextRemote = $0 }
        string("receivers.otlp_grpc.address") { c.otlpGRPCAddress = $0 }
        string("receivers.zipkin.address") { c.zipkinAddress = $0 }
        string("receivers.syslog.udp_address") { c.syslogUDPAddress = $0 }
        string("receivers.syslog.tcp_address") { c.syslogTCPAddress = $0 }
        int("receivers.syslog.tcp_idle_timeout_seconds") { c.syslogTCPIdleTimeoutSeconds = $0 }
        int("receivers.otlp_grpc.idle_timeout_seconds") { c.grpcIdleTimeoutSeconds = $0 }
        int("receivers.syslog.udp_receive_buffer_bytes") { c.syslogUDPReceiveBufferBytes = $0 }
        string("storage.fsync") { c.fsync = $0 }
        int("storage.fsync_interval_ms") { c.fsyncIntervalMs = $0 }
        int("storage.segment_bytes") { c.segmentBytes = $0 }
        int("storage.segment_age_seconds") { c.segmentAgeSeconds = $0 }
        int("storage.seal_nice") { c.sealNice = $0 }
        int("limits.max_body_bytes") { c.maxBodyBytes = $0 }
        int("limits.max_pending_events") { c.maxPendingEvents = $0 }
        int("limits.max_attributes_per_record") { c.maxAttributesPerRecord = $0 }
        int("limits.max_string_bytes") { c.maxStringBytes = $0 }
        int("limits.max_items_per_request") { c.maxItemsPerRequest = $0 }
        int("limits.max_values_per_request") { c.maxValuesPerRequest = $0 }
        func list(_ k: String, _ set: ([String]) -> Void) {
            guard let v = flat[k] else { return }
            if let list = v as? [Any], list.allSatisfy({ $0 is String }) {
                set(list.compactMap { $0 as? String })
            } else {
                problems.append("\(source): \(k) must be a list of strings")
            }
        }
        list("identity.user_attributes") { c.userAttributes = $0 }
        list("identity.email_attributes") { c.emailAttributes = $0 }
        list("identity.group_attributes") { c.groupAttributes = $0 }
        string("identity.jwks_file") { c.jwksFile = $0 }
        string("identity.jwks_url") { c.jwksURL = $0 }
        int("identity.jwks_refresh_seconds") { c.jwksRefreshSeconds = $0 }
        int("identity.jwks_unknown_kid_min_seconds") { c.jwksUnknownKidMinSeconds = $0 }
        int("identity.token_leeway_seconds") { c.tokenLeewaySeconds = $0 }
        list("identity.token_audiences") { c.tokenAudiences = $0 }
        list("redaction.keys") { c.redactionKeys = $0 }
        list("redaction.query_parameters") { c.redactionQueryParameters = $0 }
        string("redaction.hmac_secret_file") { c.hmacSecretFile = $0 }
        string("log_level") { c.logLevel = $0 }
        string("tls.cert_file") { c.tlsCertFile = $0 }
        string("tls.key_file") { c.tlsKeyFile = $0 }
        string("tls.client_ca_file") { c.tlsClientCAFile = $0 }
        string("auth.senders_file") { c.sendersFile = $0 }
        for listener in ClientCertificateListener.allCases {
            string(listener.key) { text in
                if let mode = ClientCertificates(rawValue: text) {
                    c.clientCertificates[listener] = mode
                } else {
                    problems.append(
                        "\(source): \(listener.key) must be required or optional, not \(text.debugDescription)")
                }
            }
        }
        string("storage.signing_key_file") { c.signingKeyFile = $0 }
        if flat["retention"] != nil {
            do { c.retention = try RetentionPolicy.parse(yaml: text, source: source) } catch {
                problems += error.messages
            }
        }
        if flat["shipping"] != nil {
            do { c.shipping = try ShippingPolicy.parse(yaml: text, source: source) } catch {
                problems += error.messages
            }
        }
        if checkValues { problems += c.problems().map { "\(source): \($0)" } }
        guard problems.isEmpty else { throw Problem(messages: problems.sorted()) }
        return c
    }

    /// Environment variables AUDIT_COLLECTOR_<KEY> (e.g. AUDIT_COLLECTOR_DATA, AUDIT_COLLECTOR_FSYNC). Only
    /// unparsable numbers are problems here; the merged values are checked with `problems()`.
    public func applying(environment env: [String: String]) throws(Problem) -> CollectorConfig {
        var c = self
        var problems: [String] = []
        func int(_ name: String, _ set: (Int) -> Void) {
            guard let v = env[name] else { return }
            if let i = Int(v) {
                set(i)
            } else {
                problems.append("\(name) must be an integer, got \(v.debugDescription)")
            }
        }
        if let v = env["AUDIT_COLLECTOR_DATA"] { c.data = v }
        if env["AUDIT_COLLECTOR_ALLOW_PLAINTEXT_REMOTE"] == "true" { c.allowPlaintextRemote = true }
        if let v = env["AUDIT_COLLECTOR_OTLP_HTTP"] { c.otlpHTTPAddress = v }
        if let v = env["AUDIT_COLLECTOR_OTLP_GRPC"] { c.otlpGRPCAddress = v }
        if let v = env["AUDIT_COLLECTOR_ZIPKIN"] { c.zipkinAddress = v }
        if let v = env["AUDIT_COLLECTOR_SYSLOG_UDP"] { c.syslogUDPAddress = v }
        if let v = env["AUDIT_COLLECTOR_SYSLOG_TCP"] { c.syslogTCPAddress = v }
        if let v = env["AUDIT_COLLECTOR_FSYNC"] { c.fsync = v }
        if let v = env["AUDIT_COLLECTOR_LOG_LEVEL"] { c.logLevel = v }
        if let v = env["AUDIT_COLLECTOR_JWKS_FILE"] { c.jwksFile = v }
        if let v = env["AUDIT_COLLECTOR_JWKS_URL"] { c.jwksURL = v }
        if let v = env["AUDIT_COLLECTOR_REDACTION_HMAC_SECRET_FILE"] { c.hmacSecretFile = v }
        if let v = env["AUDIT_COLLECTOR_REDACTION_HMAC_SECRET"] { c.hmacSecret = v }
        if let v = env["AUDIT_COLLECTOR_TLS_CERT_FILE"] { c.tlsCertFile = v }
        if let v = env["AUDIT_COLLECTOR_TLS_KEY_FILE"] { c.tlsKeyFile = v }
        if let v = env["AUDIT_COLLECTOR_TLS_CLIENT_CA_FILE"] { c.tlsClientCAFile = v }
        if let v = env["AUDIT_COLLECTOR_SENDERS_FILE"] { c.sendersFile = v }
        if let v = env["AUDIT_COLLECTOR_OPTIONAL_CLIENT_CERTIFICATES"] {
            do { try c.makeClientCertificatesOptional(v) } catch { problems += error.messages }
        }
        if let v = env["AUDIT_COLLECTOR_SIGNING_KEY_FILE"] { c.signingKeyFile = v }
        int("AUDIT_COLLECTOR_FSYNC_INTERVAL_MS") { c.fsyncIntervalMs = $0 }
        int("AUDIT_COLLECTOR_SEAL_NICE") { c.sealNice = $0 }
        int("AUDIT_COLLECTOR_MAX_BODY_BYTES") { c.maxBodyBytes = $0 }
        int("AUDIT_COLLECTOR_MAX_PENDING_EVENTS") { c.maxPendingEvents = $0 }
        int("AUDIT_COLLECTOR_MAX_ITEMS_PER_REQUEST") { c.maxItemsPerRequest = $0 }
        int("AUDIT_COLLECTOR_MAX_VALUES_PER_REQUEST") { c.maxValuesPerRequest = $0 }
        int("AUDIT_COLLECTOR_SYSLOG_UDP_RECEIVE_BUFFER_BYTES") { c.syslogUDPReceiveBufferBytes = $0 }
        guard problems.isEmpty else { throw Problem(messages: problems) }
        return c
    }

    /// What is wrong with the values themselves.
    public func problems() -> [String] {
        var p: [String] = []
        if !["always", "interval", "never"].contains(fsync) {
            p.append("fsync must be always, interval or never, not \(fsync.debugDescription)")
        }
        for (name, v) in [
            ("fsync_interval_ms", fsyncIntervalMs), ("segment_bytes", segmentBytes),
            ("segment_age_seconds", segmentAgeSeconds),
            ("max_body_bytes", maxBodyBytes), ("max_pending_events", maxPendingEvents),
            ("max_attributes_per_record", maxAttributesPerRecord), ("max_string_bytes", maxStringBytes),
            ("max_items_per_request", maxItemsPerRequest), ("max_values_per_request", maxValuesPerRequest),
            ("tcp_idle_timeout_seconds", syslogTCPIdleTimeoutSeconds), ("idle_timeout_seconds", grpcIdleTimeoutSeconds),
            ("udp_receive_buffer_bytes", syslogUDPReceiveBufferBytes),
        ] where v <= 0 {
            p.append("\(name) must be positive, not \(v)")
        }
        for (name, v) in [
            ("jwks_refresh_seconds", jwksRefreshSeconds), ("jwks_unknown_kid_min_seconds", jwksUnknownKidMinSeconds),
            ("token_leeway_seconds", tokenLeewaySeconds),
        ] where v < 0 {
            p.append("\(name) must not be negative, not \(v)")
        }
        if !(0...19).contains(sealNice) { p.append("seal_nice must be 0 to 19, not \(sealNice)") }
        if !jwksFile.isEmpty && !jwksURL.isEmpty {
            p.append("give the JWKS once: identity.jwks_file or identity.jwks_url, not both")
        }
        if !jwksURL.isEmpty && !(jwksURL.hasPrefix("https://") || jwksURL.hasPrefix("http://")) {
            p.append("identity.jwks_url must be an http or https URL, not \(jwksURL.debugDescription)")
        }
        if !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) {
            p.append("log_level \(logLevel.debugDescription) is not a log level")
        }
        if !hmacSecret.isEmpty && !hmacSecretFile.isEmpty {
            p.append(
                "give the redaction HMAC secret once: AUDIT_COLLECTOR_REDACTION_HMAC_SECRET or hmac_secret_file, not both"
            )
        }
        if !hmacSecret.isEmpty && hmacSecret.utf8.count < Self.minimumSecretBytes {
            p.append("the redaction HMAC secret must have at least \(Self.minimumSecretBytes) bytes")
        }
        if redactionQueryParameters.contains(where: \.isEmpty) || redactionKeys.contains(where: \.isEmpty) {
            p.append("redaction keys and query parameters must not be empty strings")
        }
        if tlsCertFile.isEmpty != tlsKeyFile.isEmpty {
            p.append("TLS needs both tls.cert_file and tls.key_file")
        }
        if !tlsClientCAFile.isEmpty && tlsCertFile.isEmpty {
            p.append("tls.client_ca_file (mTLS) needs tls.cert_file and tls.key_file")
        }
        for (listener, mode) in clientCertificates.sorted(by: { $0.key.rawValue < $1.key.rawValue })
        where mode == .optional && tlsClientCAFile.isEmpty {
            p.append(
                "\(listener.key) optional needs tls.client_ca_file: without a CA bundle no listener asks for certificates"
            )
        }
        // (name, address, required, carried over TCP and so under TLS when it is on)
        for (name, text, required, tcp) in [
            ("otlp_http", otlpHTTPAddress, true, true), ("otlp_grpc", otlpGRPCAddress, false, true),
            ("zipkin", zipkinAddress, false, true),
            ("syslog udp", syslogUDPAddress, false, false), ("syslog tcp", syslogTCPAddress, false, true),
        ] {
            if !required && text == "off" { continue }
            guard let (host, _) = try? Self.parseAddress(text) else {
                p.append("\(name) address must be HOST:PORT\(required ? "" : " or off"), not \(text.debugDescription)")
                continue
            }
            let encrypted = tcp && tls != nil
            if !allowPlaintextRemote, !encrypted, !Self.isLoopback(host) {
                p.append(
                    "\(name) on \(host) is not a loopback address: plain text leaves this machine only with allow_plaintext_remote\(tcp ? " (or configure tls)" : "")"
                )
            }
        }
        return p
    }

    /// What `listener` asks of its clients with the CA bundle.
    public func clientCertificates(_ listener: ClientCertificateListener) -> ClientCertificates {
        clientCertificates[listener] ?? .required
    }

    /// Makes certificates optional on the listeners named in a comma-separated list (`otlp_http,syslog_tcp`):
    /// the flag and environment form of the per-listener `client_certificates` keys.
    public mutating func makeClientCertificatesOptional(_ list: String) throws(Problem) {
        var problems: [String] = []
        for name in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            if let listener = ClientCertificateListener(rawValue: name) {
                clientCertificates[listener] = .optional
            } else {
                problems.append(
                    "no TCP listener is called \(name.debugDescription); use \(ClientCertificateListener.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
        }
        guard problems.isEmpty else { throw Problem(messages: problems) }
    }

    /// The TLS settings, nil when TLS is off.
    public var tls: TLSSettings? {
        tlsCertFile.isEmpty || tlsKeyFile.isEmpty
            ? nil : TLSSettings(certificateFile: tlsCertFile, keyFile: tlsKeyFile, clientCAFile: tlsClientCAFile)
    }

    /// The OTLP/HTTP listener's host and port.
    public func address() throws(Problem) -> (host: String, port: Int) { try Self.parseAddress(otlpHTTPAddress) }

    /// The OTLP/gRPC listener's host and port, or nil when it is off.
    public func grpcAddress() throws(Problem) -> (host: String, port: Int)? {
        otlpGRPCAddress == "off" ? nil : try Self.parseAddress(otlpGRPCAddress)
    }

    /// The Zipkin listener's host and port, or nil when it is off.
    public func zipkinListenAddress() throws(Problem) -> (host: String, port: Int)? {
        zipkinAddress == "off" ? nil : try Self.parseAddress(zipkinAddress)
    }

    /// The syslog listeners' addresses, nil where off.
    public func syslogAddresses() throws(Problem) -> (udp: (host: String, port: Int)?, tcp: (host: String, port: Int)?)
    {
        (
            syslogUDPAddress == "off" ? nil : try Self.parseAddress(syslogUDPAddress),
            syslogTCPAddress == "off" ? nil : try Self.parseAddress(syslogTCPAddress)
        )
    }

    static func parseAddress(_ text: String) throws(Problem) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"),
            let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port)
        else { throw Problem(messages: ["bad address \(text)"]) }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw Problem(messages: ["bad address \(text)"]) }
        return (host, port)
    }

    static let minimumSecretBytes = 16

    /// The normalisation stage's options: reads the HMAC secret file and the JWKS (file or URL). Errors name
    /// the file or URL.
    public func normalizerOptions(logger: Logger = Logger(label: "audit.collector")) async throws(Problem)
        -> NormalizerOptions
    {
        var o = NormalizerOptions()
        o.redaction.keys = redactionKeys
        o.redaction.queryParameters = redactionQueryParameters
        if !hmacSecret.isEmpty { o.redaction.hmacSecret = Array(hmacSecret.utf8) }
        if !hmacSecretFile.isEmpty {
            guard let data = FileManager.default.contents(atPath: hmacSecretFile) else {
                throw Problem(messages: ["cannot read the redaction HMAC secret file \(hmacSecretFile)"])
            }
            var secret = Array(data)
            while let last = secret.last, last == 0x0A || last == 0x0D { secret.removeLast() }
            guard secret.count >= Self.minimumSecretBytes else {
                throw Problem(messages: [
                    "\(hmacSecretFile): the redaction HMAC secret must have at least \(Self.minimumSecretBytes) bytes"
                ])
            }
            o.redaction.hmacSecret = secret
        }
        let location: JWKSSource.Location? =
            !jwksFile.isEmpty ? .file(jwksFile) : !jwksURL.isEmpty ? .url(jwksURL) : nil
        if let location {
            do {
                o.jwks = try await JWKSSource.load(
                    location, refreshInterval: .seconds(jwksRefreshSeconds),
                    unknownKeyInterval: .seconds(jwksUnknownKidMinSeconds), logger: logger)
            } catch { throw Problem(messages: [error.message]) }
        }
        o.tokenPolicy = TokenPolicy(leewaySeconds: tokenLeewaySeconds, audiences: tokenAudiences)
        return o
    }

    /// The identity keys the mappings read.
    public var identityKeys: IdentityKeys {
        var k = IdentityKeys()
        k.subject = userAttributes
        k.email = emailAttributes
        k.groups = groupAttributes
        return k
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// The TCP listeners, by the names the senders file and the flags use.
public enum ClientCertificateListener: String, Sendable, CaseIterable, Hashable {
    case otlpHTTP = "otlp_http"
    case otlpGRPC = "otlp_grpc"
    case zipkin
    case syslogTCP = "syslog_tcp"

    /// Its key in the configuration file.
    public var key: String {
        switch self {
        case .otlpHTTP: "receivers.otlp_http.client_certificates"
        case .otlpGRPC: "receivers.otlp_grpc.client_certificates"
        case .zipkin: "receivers.zipkin.client_certificates"
        case .syslogTCP: "receivers.syslog.tcp_client_certificates"
        }
    }
}
