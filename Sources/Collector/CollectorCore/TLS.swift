// TLS for every TCP listener (OTLP/HTTP and access NDJSON, OTLP/gRPC, Zipkin, syslog TCP), mTLS against a CA
// bundle (per listener: client certificates required, or optional for token-only senders), and the reload of certificate and key on SIGHUP: new connections get the new pair,
// connections already open keep theirs (each keeps the SSL context it was accepted with).
import Crypto
import Foundation
import Logging
import NIOCertificateReloading
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS
import X509

/// The listeners' TLS settings: a certificate chain and key (PEM), and with `clientCAFile` mutual TLS — every
/// client must present a certificate that CA bundle signed.
public struct TLSSettings: Sendable, Equatable {
    public var certificateFile: String
    public var keyFile: String
    /// PEM CA bundle for client certificates; empty: clients are not asked for one.
    public var clientCAFile: String

    public init(certificateFile: String, keyFile: String, clientCAFile: String = "") {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
    }

    public var mutual: Bool { !clientCAFile.isEmpty }
}

/// With a CA bundle configured, what one TCP listener asks of its clients (`client_certificates` in the
/// configuration, per listener).
public enum ClientCertificates: String, Sendable, Equatable, CaseIterable {
    /// The handshake fails without a certificate the CA bundle signed (mTLS): the default.
    case required
    /// A certificate is asked for and, when one is presented, it must be one the CA bundle signed (it then names
    /// the sender); a client without one completes the handshake and names itself with a bearer token, as the
    /// senders file says (without a senders file it is not asked to).
    case optional
}

public struct TLSSetupError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ message: String) { description = message }
}

/// The current certificate chain and key, read from their files at start and again on `reload()`. Handshakes
/// ask it for the pair (NIOSSL's context callback), so a reload reaches every listener at once.
public final class ReloadableCertificates: CertificateReloader {
    public let settings: TLSSettings
    private let current: NIOLockedValueBox<NIOSSLContextConfigurationOverride>
    /// The SHA-256 of the leaf in use, hex: the log line of a reload names it.
    private let fingerprint: NIOLockedValueBox<String>

    public init(settings: TLSSettings) throws(TLSSetupError) {
        self.settings = settings
        let (override, print) = try Self.read(settings)
        current = NIOLockedValueBox(override)
        fingerprint = NIOLockedValueBox(print)
    }

    public var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride { current.withLockedValue { $0 } }

    public var leafFingerprint: String { fingerprint.withLockedValue { $0 } }

    /// Reads the files again. On any problem the pair in use stays and the error says what is wrong.
    @discardableResult
    public func reload() throws(TLSSetupError) -> String {
        let (override, print) = try Self.read(settings)
        current.withLockedValue { $0 = override }
        fingerprint.withLockedValue { $0 = print }
        return print
    }

    static func read(_ settings: TLSSettings) throws(TLSSetupError) -> (NIOSSLContextConfigurationOverride, String) {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(settings.certificateFile) } catch {
            throw TLSSetupError("\(settings.certificateFile): not a readable PEM certificate chain (\(error))")
        }
        guard let leaf = chain.first else {
            throw TLSSetupError("\(settings.certificateFile): no certificate in the file")
        }
        let key: NIOSSLPrivateKey
        do { try FilePermissions.checkNotWorldReadable(settings.keyFile, what: "the TLS private key") } catch {
            throw TLSSetupError(error.description)
        }
        do {
            key = try NIOSSLPrivateKey(file: settings.keyFile, format: .pem)
        } catch {
            throw TLSSetupError("\(settings.keyFile): not a readable PEM private key (\(error))")
        }
        // The pair must match: a context built from it fails otherwise, before any client sees it.
        var probe = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        probe.minimumTLSVersion = .tlsv12
        do { _ = try NIOSSLContext(configuration: probe) } catch {
            throw TLSSetupError(
                "\(settings.keyFile) does not match the certificate in \(settings.certificateFile) (\(error))")
        }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = chain.map { .certificate($0) }
        override.privateKey = .privateKey(key)
        let der = (try? leaf.toDERBytes()) ?? []
        return (override, Hex.sha256(der))
    }

    /// A server configuration whose pair comes from this reloader; with mTLS, clients must present a
    /// certificate the CA bundle signed, or with `clientCertificates` `.optional` may present one (host names
    /// are not checked: clients have none to check).
    public func serverConfiguration(
        alpn: [String] = [], clientCertificates: ClientCertificates = .required
    ) throws(TLSSetupError) -> TLSConfiguration {
        let initial = sslContextConfigurationOverride
        guard let chain = initial.certificateChain, let key = initial.privateKey else {
            throw TLSSetupError("no certificate and key loaded")
        }
        var config = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
        config.minimumTLSVersion = .tlsv12
        config.applicationProtocols = alpn
        if settings.mutual {
            config.trustRoots = .certificates(try Self.caBundle(settings.clientCAFile))
            config.certificateVerification =
                clientCertificates == .required ? .noHostnameVerification : .optionalVerification
        }
        config.setCertificateReloader(self)
        return config
    }

    /// The NIOSSL context of one listener's connections.
    public func serverContext(
        alpn: [String] = [], clientCertificates: ClientCertificates = .required
    ) throws(TLSSetupError) -> NIOSSLContext {
        let configuration = try serverConfiguration(alpn: alpn, clientCertificates: clientCertificates)
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw TLSSetupError("\(error)")
        }
    }

    static func caBundle(_ path: String) throws(TLSSetupError) -> [NIOSSLCertificate] {
        let roots: [NIOSSLCertificate]
        do { roots = try NIOSSLCertificate.fromPEMFile(path) } catch {
            throw TLSSetupError("\(path): not a readable PEM CA bundle (\(error))")
        }
        guard !roots.isEmpty else { throw TLSSetupError("\(path): no CA certificate in the bundle") }
        return roots
    }
}

/// Who a client certificate names: its first SPIFFE URI SAN, else its first URI SAN, else its subject (RFC 4514).
public enum PeerIdentity {
    public static func of(_ certificate: X509.Certificate) -> String {
        var uris: [String] = []
        if let names = try? certificate.extensions.subjectAlternativeNames {
            for name in names {
                if case .uniformResourceIdentifier(let uri) = name { uris.append(uri) }
            }
        }
        if let spiffe = uris.first(where: { $0.lowercased().hasPrefix("spiffe://") }) { return spiffe }
        if let uri = uris.first { return uri }
        return certificate.subject.description
    }

    public static func of(_ certificate: NIOSSLCertificate) -> String? {
        guard let der = try? certificate.toDERBytes(), let parsed = try? X509.Certificate(derEncoded: der) else {
            return nil
        }
        return of(parsed)
    }

    /// The identity of a TLS channel's client certificate, nil without one (or without TLS).
    public static func of(channel: any Channel) async -> String? {
        guard let certificate = try? await channel.nioSSL_peerCertificate().get() else { return nil }
        return of(certificate)
    }
}

enum Hex {
    static func sha256(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}

/// A connection's client-certificate identity, taken when its handshake completes (later the connection may
/// already be closed, with data still to read, and its pipeline gone).
public final class TLSPeer: Sendable {
    private let value = NIOLockedValueBox<String?>(nil)
    public init() {}
    public var identity: String? { value.withLockedValue { $0 } }
    func set(_ identity: String?) { value.withLockedValue { $0 = identity } }
}

/// Counts handshakes that fail (no client certificate, one of another CA, a client that does not trust us,
/// plain text on a TLS port), per listener, then lets the error close the connection as before.
final class HandshakeFailureCounter: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    let listener: String
    let metrics: CollectorMetrics
    let peer: TLSPeer?

    init(listener: String, metrics: CollectorMetrics, peer: TLSPeer?) {
        self.listener = listener
        self.metrics = metrics
        self.peer = peer
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Past the handshake: later errors are the connection's, not the handshake's.
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            if let peer, let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate() {
                peer.set(PeerIdentity.of(certificate))
            }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        metrics.tlsHandshakeFailed(listener: listener)
        context.fireErrorCaught(error)
    }

    /// Adds TLS and the counter to a fresh connection's pipeline: at its end, or with `first` in front of what
    /// is there already (the gRPC transport has laid out its pipeline when it lets us add to it).
    static func addTLS(
        to channel: any Channel, context: NIOSSLContext, listener: String, metrics: CollectorMetrics,
        peer: TLSPeer? = nil, first: Bool = false
    ) throws {
        let counter = HandshakeFailureCounter(listener: listener, metrics: metrics, peer: peer)
        let tls = NIOSSLServerHandler(context: context)
        if first {
            try channel.pipeline.syncOperations.addHandler(counter, position: .first)
            try channel.pipeline.syncOperations.addHandler(tls, position: .first)
        } else {
            try channel.pipeline.syncOperations.addHandler(tls)
            try channel.pipeline.syncOperations.addHandler(counter)
        }
    }
}
