// Sender authentication: who may send, over which receivers, from where. Senders are listed in a YAML file of
// hashed bearer tokens and/or mTLS identities; a request names its sender by an `Authorization: Bearer` token
// (HTTP header, gRPC metadata) or by its client certificate. The decision, and the sender's name and
// certificate identity that every stored event then carries, are made here; the bindings only answer.
import Crypto
import Foundation
import NIOCore
import Yams

/// The receivers a sender can be allowed to use (the names the senders file uses).
public enum ReceiverKind: String, Sendable, CaseIterable {
    case otlpHTTP = "otlp_http"
    case otlpGRPC = "otlp_grpc"
    case zipkin
    case access
    case syslogTCP = "syslog_tcp"
}

/// Who sent the request being stored and over which receiver: decided by the binding and passed, as a value,
/// down to the store call, which writes it onto every event as `audit.sender` (the authenticated sender's name)
/// and `audit.sender.identity` (the client certificate's SPIFFE id or subject).
public struct SenderContext: Sendable, Equatable {
    public var receiver: Receiver
    /// The authenticated sender's name; nil without a senders file.
    public var name: String?
    /// The client certificate's identity (mTLS), if any.
    public var identity: String?
    /// The peer's address, where the transport knows it.
    public var peer: SocketAddress?

    public init(receiver: Receiver, name: String? = nil, identity: String? = nil, peer: SocketAddress? = nil) {
        self.receiver = receiver
        self.name = name
        self.identity = identity
        self.peer = peer
    }

    public static let nameKey = "audit.sender"
    public static let identityKey = "audit.sender.identity"
}

public struct Sender: Sendable, Equatable {
    public var name: String
    /// SHA-256 of the bearer token, 32 bytes; nil: this sender has no token.
    public var tokenHash: [UInt8]?
    /// Client-certificate identities (SPIFFE URI or subject) that name this sender.
    public var identities: [String]
    public var receivers: Set<ReceiverKind>
    /// Source networks it may connect from; empty: anywhere.
    public var sources: [CIDR]
}

/// Why a request was refused: `unauthenticated` (401 / UNAUTHENTICATED) when no sender could be named,
/// `forbidden` (403 / PERMISSION_DENIED) when a known sender is outside its rights.
public struct AuthRefusal: Error, Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case unauthenticated, forbidden }
    public var kind: Kind
    /// The metric label.
    public var reason: String
    /// Said to the client and logged; never contains a credential.
    public var message: String
    public var sender: String?
}

public struct SenderAuthenticator: Sendable {
    public let senders: [Sender]
    private let byToken: [[UInt8]: Int]
    private let byIdentity: [String: Int]

    public init(senders: [Sender]) {
        self.senders = senders
        var byToken: [[UInt8]: Int] = [:]
        var byIdentity: [String: Int] = [:]
        for (i, s) in senders.enumerated() {
            if let h = s.tokenHash { byToken[h] = i }
            for id in s.identities { byIdentity[id] = i }
        }
        self.byToken = byToken
        self.byIdentity = byIdentity
    }

    public struct FileProblem: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Reads a senders file:
    ///
    ///     senders:
    ///       - name: edge-nginx
    ///         token_sha256: 3b5d…            # hex SHA-256 of the bearer token
    ///         identities: [spiffe://…]       # client-certificate identities
    ///         receivers: [otlp_http, access]
    ///         sources: [10.0.0.0/8]          # optional
    ///
    /// Every problem is reported with its entry; the file must not be readable by group or others.
    public static func load(path: String) throws(FileProblem) -> SenderAuthenticator {
        do { try FilePermissions.checkNotWorldReadable(path, what: "the senders file") } catch {
            throw FileProblem(description: error.description)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileProblem(description: "cannot read the senders file \(path)")
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self), source: path)
    }

    public static func parse(yaml text: String, source: String) throws(FileProblem) -> SenderAuthenticator {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch {
            throw FileProblem(description: "\(source): not valid YAML: \(error)")
        }
        guard let map = root as? [String: Any], let list = map["senders"] as? [Any] else {
            throw FileProblem(description: "\(source): expected a top-level `senders:` list")
        }
        if let extra = map.keys.first(where: { $0 != "senders" }) {
            throw FileProblem(description: "\(source): unknown key \(extra)")
        }
        var problems: [String] = []
        var senders: [Sender] = []
        var names = Set<String>()
        var tokens = Set<[UInt8]>()
        var identities = Set<String>()
        let known: Set<String> = ["name", "token_sha256", "identities", "receivers", "sources"]
        for (n, item) in list.enumerated() {
            let at = "\(source): senders[\(n)]"
            guard let entry = item as? [String: Any] else {
                problems.append("\(at) must be a mapping")
                continue
            }
            for key in entry.keys where !known.contains(key) { problems.append("\(at): unknown key \(key)") }
            guard let name = entry["name"] as? String, !name.isEmpty else {
                problems.append("\(at): needs a name")
                continue
            }
            if !names.insert(name).inserted { problems.append("\(at): the name \(name) is used twice") }
            var sender = Sender(name: name, tokenHash: nil, identities: [], receivers: [], sources: [])
            if let hex = entry["token_sha256"] {
                if let hex = hex as? String, let hash = Self.bytes(hex: hex), hash.count == 32 {
                    sender.tokenHash = hash
                    if !tokens.insert(hash).inserted {
                        problems.append("\(at): the same token is given to two senders")
                    }
                } else {
                    problems.append("\(at): token_sha256 must be 64 hex digits (the SHA-256 of the token)")
                }
            }
            if let ids = entry["identities"] {
                if let ids = ids as? [Any], ids.allSatisfy({ ($0 as? String)?.isEmpty == false }) {
                    sender.identities = ids.compactMap { $0 as? String }
                    for id in sender.identities where !identities.insert(id).inserted {
                        problems.append("\(at): the identity \(id) is given to two senders")
                    }
                } else {
                    problems.append("\(at): identities must be a list of non-empty strings")
                }
            }
            if sender.tokenHash == nil && sender.identities.isEmpty {
                problems.append("\(at): \(name) needs token_sha256 or identities")
            }
            if let list = entry["receivers"] as? [Any], !list.isEmpty {
                for r in list {
                    if let r = r as? String, let kind = ReceiverKind(rawValue: r) {
                        sender.receivers.insert(kind)
                    } else {
                        problems.append(
                            "\(at): unknown receiver \(r); use \(ReceiverKind.allCases.map(\.rawValue).joined(separator: ", "))"
                        )
                    }
                }
            } else {
                problems.append(
                    "\(at): receivers must list what \(name) may use (\(ReceiverKind.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
            if let list = entry["sources"] {
                if let list = list as? [Any] {
                    for s in list {
                        if let s = s as? String, let cidr = CIDR(s) {
                            sender.sources.append(cidr)
                        } else {
                            problems.append("\(at): source \(s) is not an address or CIDR network")
                        }
                    }
                } else {
                    problems.append("\(at): sources must be a list of CIDR networks")
                }
            }
            senders.append(sender)
        }
        guard problems.isEmpty else { throw FileProblem(description: problems.joined(separator: "\n")) }
        return SenderAuthenticator(senders: senders)
    }

    static func bytes(hex: String) -> [UInt8]? {
        let utf8 = Array(hex.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = Self.nibble(utf8[i]), let lo = Self.nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The sender of a request, or why it is refused. `authorization` is the Authorization header (or gRPC
    /// metadata) as received; `identity` the client certificate's; `peer` the remote address.
    public func authorize(
        receiver: ReceiverKind, authorization: String?, identity: String?, peer: SocketAddress?
    ) -> Result<Sender, AuthRefusal> {
        let index: Int
        if let authorization {
            guard let token = Self.bearerToken(authorization) else {
                return .failure(
                    AuthRefusal(
                        kind: .unauthenticated, reason: "bad_credentials",
                        message: "the Authorization header must be `Bearer <token>`", sender: nil))
            }
            guard let i = byToken[Array(SHA256.hash(data: Array(token.utf8)))] else {
                return .failure(
                    AuthRefusal(
                        kind: .unauthenticated, reason: "unknown_token", message: "the bearer token is not valid",
                        sender: nil))
            }
            index = i
            let s = senders[i]
            if !s.identities.isEmpty, !s.identities.contains(identity ?? "") {
                return .failure(
                    AuthRefusal(
                        kind: .forbidden, reason: "identity_mismatch",
                        message:
                            "sender \(s.name)'s token is bound to client certificates; this connection's is \(identity.map { "\($0)" } ?? "absent")",
                        sender: s.name))
            }
        } else if let identity {
            guard let i = byIdentity[identity] else {
                return .failure(
                    AuthRefusal(
                        kind: .unauthenticated, reason: "unknown_identity",
                        message: "client certificate identity \(identity) is not a known sender", sender: nil))
            }
            index = i
        } else {
            return .failure(
                AuthRefusal(
                    kind: .unauthenticated, reason: "missing_credentials",
                    message: "credentials required: a bearer token or a client certificate", sender: nil))
        }
        let sender = senders[index]
        guard sender.receivers.contains(receiver) else {
            return .failure(
                AuthRefusal(
                    kind: .forbidden, reason: "receiver_not_allowed",
                    message: "sender \(sender.name) may not use the \(receiver.rawValue) receiver", sender: sender.name)
            )
        }
        if !sender.sources.isEmpty {
            guard let peer, sender.sources.contains(where: { $0.contains(peer) }) else {
                return .failure(
                    AuthRefusal(
                        kind: .forbidden, reason: "source_not_allowed",
                        message: "sender \(sender.name) may not send from \(peer?.ipAddress ?? "this address")",
                        sender: sender.name))
            }
        }
        return .success(sender)
    }

    /// The token of `Bearer <token>` (the scheme in any case), nil for anything else.
    static func bearerToken(_ header: String) -> Substring? {
        let trimmed = header.drop(while: { $0 == " " })
        guard trimmed.count > 7, trimmed.prefix(7).lowercased() == "bearer " else { return nil }
        let token = trimmed.dropFirst(7).drop(while: { $0 == " " })
        let end = token.lastIndex(where: { $0 != " " }).map { token.index(after: $0) } ?? token.startIndex
        let result = token[token.startIndex..<end]
        return result.isEmpty || result.contains(" ") ? nil : result
    }
}

/// An IPv4 or IPv6 network, e.g. 10.0.0.0/8, ::1/128, or a single address.
public struct CIDR: Sendable, Equatable {
    let network: [UInt8]
    let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = CIDR.parse(String(parts[0])) else { return nil }
        let bits = address.count * 8
        let prefix: Int
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...bits).contains(p) else { return nil }
            prefix = p
        } else {
            prefix = bits
        }
        network = address
        self.prefix = prefix
    }

    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Whether `peer` lies in this network; an IPv4-mapped IPv6 peer (::ffff:a.b.c.d) matches IPv4 networks.
    public func contains(_ peer: SocketAddress) -> Bool {
        guard let ip = peer.ipAddress, var address = CIDR.parse(ip) else { return false }
        if network.count == 4 && address.count == 16 && address[0..<10].allSatisfy({ $0 == 0 }) && address[10] == 0xFF
            && address[11] == 0xFF
        {
            address = Array(address[12...])
        }
        guard address.count == network.count else { return false }
        var remaining = prefix
        for i in 0..<network.count where remaining > 0 {
            let take = min(8, remaining)
            let mask: UInt8 = take == 8 ? 0xFF : ~(0xFF >> UInt8(take))
            if address[i] & mask != network[i] & mask { return false }
            remaining -= take
        }
        return true
    }
}

/// Checks on files that hold secrets.
public enum FilePermissions {
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Refuses a file that group or others may read or write, or that is not a regular file.
    public static func checkNotWorldReadable(_ path: String, what: String) throws(Problem) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw Problem(description: "cannot read \(what) \(path): \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw Problem(description: "\(what) \(path) is not a regular file")
        }
        let mode = st.st_mode & 0o777
        if mode & 0o077 != 0 {
            throw Problem(
                description:
                    "\(what) \(path) has mode \(String(mode, radix: 8)): group or others may read it; refusing to start (chmod 600 \(path))"
            )
        }
    }
}
