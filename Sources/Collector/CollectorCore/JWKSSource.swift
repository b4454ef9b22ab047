// Where the JWKS comes from and when it is read again, and how a verified token's claims are judged.
//
// An identity provider rotates its signing keys: a new `kid` appears in its JWKS before tokens signed with it
// arrive, and the old key leaves later. A JWKS read once at start stops verifying every token after the first
// rotation, so the source is read again on a period and, when a token names a `kid` the set lacks, at once —
// at most once per `unknownKeyInterval`, so a sender cannot make the collector hammer the identity provider
// with made-up `kid`s. The request that met the unknown `kid` waits for that one fetch (see
// `IngestService.append`), so the first token signed with a new key is judged with it.
import AsyncHTTPClient
import CollectorParsers
import Foundation
import LogFormat
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The claims checks on a token whose signature verified: `exp` and `nbf` against the collector's clock with a
/// leeway, and `aud` against the configured audiences.
public struct TokenPolicy: Sendable, Equatable {
    /// Clock difference tolerated either way, in seconds.
    public var leewaySeconds = 60
    /// The token's `aud` must name one of these; empty: the audience is not judged.
    public var audiences: [String] = []

    public init(leewaySeconds: Int = 60, audiences: [String] = []) {
        self.leewaySeconds = leewaySeconds
        self.audiences = audiences
    }

    /// What the claims say at `now` (Unix seconds). A time claim that is not a number fails the check it
    /// belongs to: a signed token with a malformed `exp` is not one to trust for longer.
    public func judge(_ token: CompactJWT, now: Double) -> TokenValidity {
        let leeway = Double(max(0, leewaySeconds))
        if let exp = Self.claim(token, "exp") {
            guard let t = Double(exp), now - leeway < t else { return .expired(exp) }
        }
        if let nbf = Self.claim(token, "nbf") {
            guard let t = Double(nbf), now + leeway >= t else { return .notYetValid(nbf) }
        }
        if !audiences.isEmpty {
            let aud = Self.audiences(token)
            if !aud.contains(where: audiences.contains) { return .wrongAudience(aud) }
        }
        return .valid
    }

    /// `aud`: one string or an array of strings (RFC 7519 4.1.3).
    static func audiences(_ token: CompactJWT) -> [String] {
        switch token.claims.first(where: { $0.0 == "aud" })?.1 {
        case .string(let b)?: return [String(decoding: b, as: UTF8.self)]
        case .array(let values)?:
            return values.compactMap {
                if case .string(let b) = $0 { String(decoding: b, as: UTF8.self) } else { nil }
            }
        default: return []
        }
    }

    static func claim(_ token: CompactJWT, _ key: String) -> String? {
        guard let v = token.claims.first(where: { $0.0 == key })?.1 else { return nil }
        switch v {
        case .number(let n): return n
        case .string(let b): return String(decoding: b.prefix(64), as: UTF8.self)
        default: return "not a number"
        }
    }
}

/// The outcome of `TokenPolicy.judge`; `identityOrigin` is what a token user's origin then says.
public enum TokenValidity: Sendable, Hashable, CustomStringConvertible {
    case valid
    /// `exp` (as sent) had passed by more than the leeway.
    case expired(String)
    /// `nbf` (as sent) was more than the leeway ahead.
    case notYetValid(String)
    /// The token's audiences, none of them configured.
    case wrongAudience([String])

    public var description: String {
        switch self {
        case .valid: "valid"
        case .expired(let exp): "expired: exp \(exp)"
        case .notYetValid(let nbf): "not yet valid: nbf \(nbf)"
        case .wrongAudience(let aud):
            aud.isEmpty ? "wrong audience: none named" : "wrong audience: \(aud.prefix(8).joined(separator: ", "))"
        }
    }

    public var identityOrigin: IdentityOrigin {
        switch self {
        case .valid: .verifiedToken
        case .expired: .expiredToken
        case .notYetValid: .notYetValidToken
        case .wrongAudience: .wrongAudienceToken
        }
    }
}

/// The JWKS the collector verifies with, and where to read it again: a file (`identity.jwks_file`) or an
/// HTTP(S) URL (`identity.jwks_url`). Verification reads the current set without waiting; fetches replace it
/// whole, and a fetch that fails keeps the set there was.
public final class JWKSSource: Sendable {
    public enum Location: Sendable, Equatable, CustomStringConvertible {
        case file(String)
        case url(String)
        public var description: String {
            switch self {
            case .file(let p): p
            case .url(let u): u
            }
        }
    }

    /// Where the set is read again; nil: a fixed set (tests, or keys given in process).
    public let location: Location?
    /// How often the set is read again; zero: never on a schedule.
    public let refreshInterval: Duration
    /// Least time between two fetches asked for by unknown `kid`s.
    public let unknownKeyInterval: Duration
    /// Unknown `kid`s remembered until the next fetch (a hostile sender may send thousands).
    static let maxWanted = 64
    let logger: Logger

    private struct State: Sendable {
        var keys: JWKSKeySet
        var wanted: Set<String> = []
        var lastUnknownKeyFetch: ContinuousClock.Instant?
        var inFlight: Task<Bool, Never>?
        var fetches = 0
    }
    private let state: Mutex<State>

    public init(
        keys: JWKSKeySet, location: Location? = nil, refreshInterval: Duration = .seconds(3_600),
        unknownKeyInterval: Duration = .seconds(30), logger: Logger = Logger(label: "audit.jwks")
    ) {
        state = Mutex(State(keys: keys))
        self.location = location
        self.refreshInterval = refreshInterval
        self.unknownKeyInterval = unknownKeyInterval
        self.logger = logger
    }

    /// Reads the set from `location` for the first time; an unusable set is an error (the collector does not
    /// start with a JWKS it cannot use).
    public static func load(
        _ location: Location, refreshInterval: Duration = .seconds(3_600),
        unknownKeyInterval: Duration = .seconds(30), logger: Logger = Logger(label: "audit.jwks")
    ) async throws(JWKSError) -> JWKSSource {
        let keys = try await read(location)
        return JWKSSource(
            keys: keys, location: location, refreshInterval: refreshInterval, unknownKeyInterval: unknownKeyInterval,
            logger: logger)
    }

    static func read(_ location: Location) async throws(JWKSError) -> JWKSKeySet {
        switch location {
        case .file(let path):
            return try await JWKSKeySet.load(path: path)
        case .url(let text):
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? "") else {
                throw JWKSError(code: .unreadable, message: "\(text) is not an http or https URL")
            }
            // AsyncHTTPClient, not URLSession: cancelling a task inside FoundationNetworking's async `data(for:)`
            // could deadlock on Linux (the refresher is cancelled at shutdown), and its body has no size cap.
            var request = HTTPClientRequest(url: text)
            request.headers.add(name: "Accept", value: "application/json")
            let body: [UInt8]
            let status: UInt
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                status = response.status.code
                // A JWKS is a few kB; the file reader's cap holds here too.
                body = Array(buffer: try await response.body.collect(upTo: 1 << 20))
            } catch {
                throw JWKSError(code: .unreadable, message: "cannot fetch the JWKS from \(text): \(error)")
            }
            guard status == 200 else {
                throw JWKSError(code: .unreadable, message: "cannot fetch the JWKS from \(text): HTTP \(status)")
            }
            return try await JWKSKeySet.parse(body, source: text)
        }
    }

    public var keys: JWKSKeySet { state.withLock { $0.keys } }
    /// How many times the set was read again after the first.
    public var fetches: Int { state.withLock { $0.fetches } }

    /// Checks the token's signature with the current set; a `kid` the set lacks is remembered for
    /// `fetchForUnknownKeys`.
    public func verify(_ token: CompactJWT) -> TokenVerification {
        let keys = self.keys
        let outcome = keys.verify(token)
        if case .failed = outcome, location != nil, let kid = token.keyID, !keys.hasNamedKey(kid) {
            state.withLock { s in
                if s.wanted.count < Self.maxWanted { s.wanted.insert(String(kid.prefix(128))) }
            }
        }
        return outcome
    }

    /// Whether a token named a `kid` the set lacks since the last fetch.
    public var wantsUnknownKeys: Bool { location != nil && state.withLock { !$0.wanted.isEmpty } }

    /// Reads the set again because tokens named `kid`s it lacks, unless that was done less than
    /// `unknownKeyInterval` ago; a fetch already under way is shared. True when the new set has one of them.
    public func fetchForUnknownKeys() async -> Bool {
        let task: Task<Bool, Never>? = state.withLock { s in
            if let running = s.inFlight { return running }
            guard !s.wanted.isEmpty else { return nil }
            let now = ContinuousClock.now
            let wanted = s.wanted
            s.wanted = []
            if let last = s.lastUnknownKeyFetch, now - last < unknownKeyInterval { return nil }
            s.lastUnknownKeyFetch = now
            let task = Task { [self] in
                defer { state.withLock { $0.inFlight = nil } }
                guard let keys = await refresh(reason: "unknown kid") else { return false }
                return wanted.contains(where: keys.hasNamedKey)
            }
            s.inFlight = task
            return task
        }
        guard let task else { return false }
        return await task.value
    }

    /// Reads the set again now; nil (logged) when it cannot be used, and the old set stays.
    @discardableResult
    public func refresh(reason: String) async -> JWKSKeySet? {
        guard let location else { return nil }
        do {
            let keys = try await Self.read(location)
            let before = state.withLock { s in
                let before = s.keys.keyIDs
                s.keys = keys
                s.fetches += 1
                return before
            }
            if before != keys.keyIDs {
                logger.info(
                    "JWKS keys changed",
                    metadata: ["jwks": "\(location)", "reason": "\(reason)", "keys": "\(keys.keyIDs)"])
            }
            return keys
        } catch {
            logger.warning(
                "JWKS fetch failed; keeping the keys there were",
                metadata: ["jwks": "\(location)", "reason": "\(reason)", "error": "\(error.message)"])
            return nil
        }
    }
}

/// Reads the JWKS again every `refreshInterval` until shutdown.
public struct JWKSRefreshService: Service {
    public let source: JWKSSource

    public init(source: JWKSSource) { self.source = source }

    public func run() async throws {
        guard source.location != nil, source.refreshInterval > .zero else { return }
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: source.refreshInterval) }
            } catch { return }
            await source.refresh(reason: "period")
        }
    }
}
