// The normalisation stage: every event, from every receiver, passes here after decoding and before it is queued
// for writing (one call site, `IngestService.append`). Receivers only decode: their events arrive raw (source
// unknown, attributes as sent). In order:
//
// 0. audit fields, derived once here: source, user, HTTP facts and workload, by the receiver's rules — the
//    access-log field map (`AccessEventMapping.deriveAuditFields`, configured by `AccessEventOptions`) for
//    access events, the well-known OTLP attributes (`OTLPMapping.deriveAuditFields`, configured by
//    `IdentityKeys`) for spans and logs from OTLP and Zipkin; an access event that came as an OTLP log record
//    (`AccessLogRecord`) keeps the fields it carried. Only `normalize(_:from:)`, the ingest path,
//    takes this step: it knows the receiver. `normalize(_:)` runs steps 1-4 on events whose fields are set;
// 1. redaction (Redaction.swift) of every string the record stores: attributes at every level (nested lists
//    and arrays, event, link, scope and resource attributes, keys too), names, status message, trace state,
//    body, schema URLs, the HTTP target, the user fields; what was removed is listed in `audit.redacted`;
// 2. identity: the JWTs the redaction removed are decoded (and verified with the JWKS when configured); their
//    claims become the user identity when no configured attribute or edge field named the user (the design's
//    order of trust), or enrich it when they name the same user; the claims, the verification outcome and the
//    token's SHA-256 are kept in `audit.token`, the token never;
// 3. workload identity: a SPIFFE id from the calling workload's mesh attributes, Envoy peer SANs or
//    `x-forwarded-client-cert` (`URI=`), overriding what step 0 guessed (for OTLP it takes the
//    first `spiffe://` value of any attribute, which in an XFCC header is the proxy's own `By=`);
// 4. legacy semantic-convention names (`http.method`, `http.status_code`, `http.url`, `peer.service`,
//    `db.system`, …) gain their current names beside the original, listed in `audit.semconv_mapped` so an
//    exporter can give back exactly what was sent.
//
// Hot path: an event with nothing to redact and no legacy names costs one table-driven byte pass per string
// and no allocation (see Benchmarks/).
import CollectorParsers
import Foundation
import LogFormat
import OTLPBridge

public struct NormalizerOptions: Sendable {
    public var redaction = RedactionPolicy()
    /// Verification keys for bearer JWTs; nil: tokens are only decoded.
    public var jwks: JWKSSource? = nil
    /// How the claims of a token whose signature verified are judged (`exp`, `nbf`, `aud`).
    public var tokenPolicy = TokenPolicy()
    /// At most this many JWTs of one event are decoded (a hostile event may carry thousands).
    public var maxTokensPerEvent = 4
    public init() {}
}

public struct Normalizer: Sendable {
    /// Attribute keys the stage adds. Senders' attributes with these keys are kept as sent.
    public static let redactedKey = "audit.redacted"
    public static let tokenKey = "audit.token"
    public static let semconvKey = "audit.semconv_mapped"
    /// The collector's own annotations are the attributes under `audit.`. A sender's attributes there are kept,
    /// renamed under `sender.audit.`, so that nothing a client sends can pass for what the collector noted
    /// (redaction, the token's claims, the authenticated sender).
    public static let reservedPrefix = "audit."
    public static let movedPrefix = "sender."

    let options: NormalizerOptions
    let redactor: Redactor
    /// Which attributes name the user on spans and logs (the collector's `identity` keys).
    public var identity: IdentityKeys {
        didSet { identityKeys = OTLPMapping.AuditFieldKeys(identity) }
    }
    /// The access-log field map (user, email and group fields).
    public var access: AccessEventOptions {
        didSet { accessKeys = AccessEventMapping.FieldKeys(access) }
    }
    private var accessKeys: AccessEventMapping.FieldKeys
    private var identityKeys: OTLPMapping.AuditFieldKeys

    public init(
        options: NormalizerOptions = NormalizerOptions(), identity: IdentityKeys = IdentityKeys(),
        access: AccessEventOptions = AccessEventOptions()
    ) {
        self.options = options
        redactor = Redactor(policy: options.redaction)
        self.identity = identity
        self.access = access
        accessKeys = AccessEventMapping.FieldKeys(access)
        identityKeys = OTLPMapping.AuditFieldKeys(identity)
    }

    /// The whole stage for raw events as `receiver` decoded them: their audit fields derived, then steps 1-4.
    public func normalize(_ events: inout [AuditEvent], from receiver: Receiver) {
        // Whether a span's reporter is a mesh proxy depends on its scope and resource only, which the events
        // of one scope share (the same arrays, so comparing them is an identity check): judged once per scope.
        var last: (scope: String, resource: [Attribute], proxy: Bool)?
        var resource = SharedResource([], redactor: redactor)
        var keys = KeyNotes()
        for i in events.indices {
            // Events are read in place (`events[i]`): a copy of one would retain its ~20 references.
            if resource.attributes != events[i].resourceAttributes {
                resource = SharedResource(events[i].resourceAttributes, redactor: redactor)
            }
            if Self.usesAccessRules(receiver) {
                AccessEventMapping.deriveAuditFields(&events[i], keys: accessKeys, notes: &keys)
            } else if events[i].kind == .access {
                // An access event from OTLP logs (AccessLogRecord) arrives with its fields set by its edge.
            } else {
                let proxy: Bool
                if let last, last.scope == events[i].scope.name, last.resource == events[i].resourceAttributes {
                    proxy = last.proxy
                } else {
                    proxy = OTLPMapping.reportedByProxy(events[i].scope.name, events[i].resourceAttributes)
                    last = (events[i].scope.name, events[i].resourceAttributes, proxy)
                }
                let guess = resource.spiffePrefixed
                OTLPMapping.deriveAuditFields(&events[i], keys: identityKeys, reportedByProxy: proxy) { _ in guess }
            }
            normalize(&events[i], resource: resource, keys: &keys)
        }
    }

    public func normalize(_ events: inout [AuditEvent]) {
        var keys = KeyNotes()
        for i in events.indices { normalize(&events[i], resource: nil, keys: &keys) }
    }

    /// Steps 1-4, for an event whose audit fields are already set.
    public func normalize(_ e: inout AuditEvent) {
        var keys = KeyNotes(enabled: false)
        normalize(&e, resource: nil, keys: &keys)
    }

    /// Steps 1-4; `resource`, when it describes the event's resource attributes, saves their redaction and
    /// SPIFFE look-up; `keys`, kept from event to event, what was worked out about the attribute keys at the
    /// same positions in the event before (`KeyNotes`: clean for redaction, whether they may name a workload).
    func normalize(_ e: inout AuditEvent, resource: SharedResource?, keys: inout KeyNotes) {
        // Only a clean list is taken as it is; one that redaction changes is handled event by event, as sent.
        let clean = resource.map { $0.clean && $0.attributes == e.resourceAttributes } ?? false
        Self.moveReservedKeys(&e.attributes)
        if !clean { Self.moveReservedKeys(&e.resourceAttributes) }
        var notes = Redactor.Notes()
        redact(&e, &notes, resourceClean: clean, keys: &keys)
        if !notes.tokens.isEmpty { applyTokens(&e, notes.tokens) }
        let spiffeID = clean ? resource?.spiffeID : nil
        let found = WorkloadIdentity.workload(of: e, notes: &keys) { list in
            clean ? spiffeID : WorkloadIdentity.resourceSPIFFEID(list)
        }
        if let workload = found {
            if e.workload != workload { e.workload = workload }
        } else if let w = e.workload, !WorkloadIdentity.isSPIFFEID(w) {
            // The mapping's guess is kept only when it is a well-formed SPIFFE id (a redacted one is not).
            e.workload = nil
        }
        mapSemanticConventions(&e)
        if !notes.removed.isEmpty {
            e.attributes.append(Attribute(Self.redactedKey, .array(notes.removed.map(AttributeValue.string))))
        }
    }

    /// What depends on a resource attribute list alone, worked out once for the events that share it: the
    /// decoders give every span of a resource the same array, so a batch holds a few lists many times over.
    /// Used only for a list equal to `attributes` (an identity check first; equal lists get equal answers).
    struct SharedResource {
        let attributes: [Attribute]
        /// No reserved key and nothing to redact: steps 1 and 2 leave the list as sent.
        let clean: Bool
        /// `WorkloadIdentity.resourceSPIFFEID` of the list.
        let spiffeID: String?
        /// `OTLPMapping.resourceWorkload` of the list.
        let spiffePrefixed: String?

        init(_ attributes: [Attribute], redactor: Redactor) {
            self.attributes = attributes
            var list = attributes
            var ignored = Redactor.Notes()
            clean =
                !attributes.contains { Normalizer.isReserved($0.key) }
                && !redactor.redact(&list, at: { "resource" }, &ignored)
            spiffeID = WorkloadIdentity.resourceSPIFFEID(attributes)
            spiffePrefixed = OTLPMapping.resourceWorkload(attributes)
        }
    }

    /// Renames a sender's `audit.*` keys (and a bare `audit`) to `sender.audit.*`, in place; order is kept.
    static func moveReservedKeys(_ list: inout [Attribute]) {
        guard list.contains(where: { isReserved($0.key) }) else { return }
        for i in list.indices where isReserved(list[i].key) { list[i].key = movedPrefix + list[i].key }
    }

    static func isReserved(_ key: String) -> Bool {
        let u = key.utf8
        guard u.count >= 5, u.first == UInt8(ascii: "a") else { return false }
        return key == "audit" || key.hasPrefix(reservedPrefix)
    }

    // MARK: Audit fields

    /// Step 0: the audit fields of a raw event, by the rules of the receiver that decoded it.
    public func deriveAuditFields(_ e: inout AuditEvent, from receiver: Receiver) {
        if Self.usesAccessRules(receiver) {
            AccessEventMapping.deriveAuditFields(&e, keys: accessKeys)
        } else if e.kind != .access {
            // An access event from OTLP logs (AccessLogRecord) arrives with its fields set by its edge.
            OTLPMapping.deriveAuditFields(&e, keys: identityKeys)
        }
    }

    /// Access lines (NDJSON, syslog) follow the access-log field map; spans and logs (OTLP, Zipkin) the
    /// well-known OTLP attributes.
    static func usesAccessRules(_ receiver: Receiver) -> Bool {
        switch receiver {
        case .accessNDJSON, .syslogUDP, .syslogTCP: true
        case .otlpHTTPTraces, .otlpHTTPLogs, .otlpGRPCTraces, .otlpGRPCLogs, .zipkin: false
        }
    }

    // MARK: Redaction of every field

    func redact(
        _ e: inout AuditEvent, _ notes: inout Redactor.Notes, resourceClean: Bool = false, keys: inout KeyNotes
    ) {
        let r = redactor
        func text(_ s: inout String, _ location: StaticString) {
            if let x = r.redact(s, at: { location.description }, &notes) { s = x }
        }
        // Lists are redacted in local copies and stored back only when changed: a mutable access to
        // `e.events[i]` would copy the (shared) events array even when nothing is redacted.
        var list = e.attributes
        if redactor.redact(&list, at: { "attributes" }, &notes, keys: &keys) { e.attributes = list }
        if !resourceClean {
            list = e.resourceAttributes
            if !list.isEmpty, redactor.redact(&list, at: { "resource" }, &notes) { e.resourceAttributes = list }
        }
        list = e.scope.attributes
        if !list.isEmpty, redactor.redact(&list, at: { "scope" }, &notes) { e.scope.attributes = list }
        // The same for span events and links: read from a copy, store the whole list back only when changed.
        if !e.events.isEmpty {
            var events = e.events
            var changed = false
            for (i, event) in e.events.enumerated() {
                if let x = r.redact(event.name, at: { "events[\(i)].name" }, &notes) {
                    events[i].name = x
                    changed = true
                }
                list = event.attributes
                if !list.isEmpty, redactor.redact(&list, at: { "events[\(i)]" }, &notes) {
                    events[i].attributes = list
                    changed = true
                }
            }
            if changed { e.events = events }
        }
        if !e.links.isEmpty {
            var links = e.links
            var changed = false
            for (i, link) in e.links.enumerated() {
                if let x = r.redact(link.traceState, at: { "links[\(i)].trace_state" }, &notes) {
                    links[i].traceState = x
                    changed = true
                }
                list = link.attributes
                if !list.isEmpty, redactor.redact(&list, at: { "links[\(i)]" }, &notes) {
                    links[i].attributes = list
                    changed = true
                }
            }
            if changed { e.links = links }
        }
        text(&e.name, "name")
        text(&e.traceState, "trace_state")
        text(&e.statusMessage, "status.message")
        text(&e.service, "service")
        text(&e.severityText, "severity_text")
        text(&e.eventName, "event_name")
        text(&e.resourceSchemaURL, "resource.schema_url")
        text(&e.scopeSchemaURL, "scope.schema_url")
        text(&e.scope.name, "scope.name")
        text(&e.scope.version, "scope.version")
        if let body = e.body, let x = r.redact(body, at: { "body" }, &notes) { e.body = x }
        if let w = e.workload, let x = r.redact(w, at: { "workload" }, &notes) { e.workload = x }
        // The HTTP facts and the user are read where they lie, field by field, and written field by field: a copy
        // of either (`if var user = e.user`) retained and released every reference it holds, for every event.
        if e.http != nil {
            func field(_ v: String?, _ location: StaticString, _ set: (inout HTTPFacts, String) -> Void) {
                if let s = v, let x = r.redact(s, at: { location.description }, &notes) { set(&e.http!, x) }
            }
            field(e.http!.target, "http.target") { $0.target = $1 }
            field(e.http!.method, "http.method") { $0.method = $1 }
            field(e.http!.route, "http.route") { $0.route = $1 }
            field(e.http!.clientAddress, "http.client_address") { $0.clientAddress = $1 }
        }
        if e.user != nil {
            if let x = r.redact(e.user!.subject, at: { "user.subject" }, &notes) { e.user!.subject = x }
            if let email = e.user!.email, let x = r.redact(email, at: { "user.email" }, &notes) { e.user!.email = x }
            if let issuer = e.user!.issuer, let x = r.redact(issuer, at: { "user.issuer" }, &notes) {
                e.user!.issuer = x
            }
            for i in e.user!.groups.indices {
                if let x = r.redact(e.user!.groups[i], at: { "user.groups[\(i)]" }, &notes) { e.user!.groups[i] = x }
            }
        }
    }

    // MARK: Identity from tokens

    /// Decodes (and verifies) the removed JWTs, header tokens first; the best one names or enriches the user.
    func applyTokens(_ e: inout AuditEvent, _ found: [(token: String, fromHeader: Bool)]) {
        let ordered = found.filter(\.fromHeader) + found.filter { !$0.fromHeader }
        var seen = Set<String>()
        // The best token: verified with claims that hold, else verified, else the first decoded.
        var best: (jwt: CompactJWT, verification: TokenVerification, validity: TokenValidity?)? = nil
        var problems: [String] = []
        // Judged against the collector's clock when the event arrives, not the event's own (sender-set) time.
        let now = Date().timeIntervalSince1970
        for (token, _) in ordered where seen.insert(token).inserted {
            if seen.count > options.maxTokensPerEvent { break }
            let jwt: CompactJWT
            do { jwt = try CompactJWT(token) } catch {
                problems.append(error.message)
                continue
            }
            let verification = options.jwks.map { $0.verify(jwt) } ?? .notConfigured
            if case .verified = verification {
                let validity = options.tokenPolicy.judge(jwt, now: now)
                if validity == .valid || best?.validity == nil { best = (jwt, verification, validity) }
                if validity == .valid { break }
                continue
            }
            if best == nil { best = (jwt, verification, nil) }
        }
        guard let (jwt, verification, validity) = best else {
            // Only unreadable tokens: they were redacted as opaque secrets; say why they named nobody.
            e.attributes.append(
                Attribute(
                    Self.tokenKey, .keyValueList([Attribute("problem", .string(problems.joined(separator: "; ")))])))
            return
        }
        var claims = jwt.claimAttributes()
        // Claims are sender data too: a claim that holds a secret is redacted like any attribute.
        var ignored = Redactor.Notes()
        redactor.redact(&claims, at: { "audit.token.claims" }, &ignored)
        var used = "ignored"
        if let tokenUser = jwt.user(origin: validity?.identityOrigin ?? .decodedToken) {
            var tokenUser = tokenUser
            var scratch = Redactor.Notes()
            if let s = redactor.redact(tokenUser.subject, at: { "" }, &scratch) { tokenUser.subject = s }
            if let m = tokenUser.email, let s = redactor.redact(m, at: { "" }, &scratch) { tokenUser.email = s }
            if let iss = tokenUser.issuer, let s = redactor.redact(iss, at: { "" }, &scratch) { tokenUser.issuer = s }
            if var user = e.user {
                if user.subject == tokenUser.subject || (tokenUser.email != nil && user.subject == tokenUser.email) {
                    // The same user: the token adds what the other source lacked.
                    if user.email == nil { user.email = tokenUser.email }
                    if user.groups.isEmpty { user.groups = tokenUser.groups }
                    if user.issuer == nil { user.issuer = tokenUser.issuer }
                    user.tokenFingerprint = tokenUser.tokenFingerprint
                    e.user = user
                    used = "confirms user"
                } else {
                    used = "ignored: names \(tokenUser.subject), the event names \(user.subject)"
                }
            } else {
                e.user = tokenUser
                used = "names user"
            }
        }
        var token: [Attribute] = [
            Attribute("verification", .string(verification.description)),
            Attribute("sha256", .string(HexCoding.encode(jwt.fingerprint))),
            Attribute("use", .string(used)),
            Attribute("claims", .keyValueList(claims)),
        ]
        // The header is sender data: bounded, and redacted like any value.
        if let kid = jwt.keyID {
            let bounded = String(kid.prefix(128))
            token.insert(Attribute("kid", .string(redactor.redact(bounded, at: { "" }, &ignored) ?? bounded)), at: 1)
        }
        if let alg = jwt.algorithm {
            let bounded = String(alg.prefix(32))
            token.insert(Attribute("alg", .string(redactor.redact(bounded, at: { "" }, &ignored) ?? bounded)), at: 1)
        }
        if let validity {
            // Right after `verification`: why a verified token's origin is not `verifiedToken`.
            let at = token.firstIndex { $0.key == "verification" }.map { $0 + 1 } ?? token.endIndex
            token.insert(Attribute("validity", .string(validity.description)), at: at)
        }
        if !problems.isEmpty { token.append(Attribute("problem", .string(problems.joined(separator: "; ")))) }
        e.attributes.append(Attribute(Self.tokenKey, .keyValueList(token)))
    }

    // MARK: Semantic conventions

    /// Legacy key → current key (semantic conventions v1.44; PROTOCOLS.md).
    static let legacy: [String: String] = [
        "http.method": "http.request.method",
        "http.status_code": "http.response.status_code",
        "http.url": "url.full",
        "http.scheme": "url.scheme",
        "http.user_agent": "user_agent.original",
        "http.client_ip": "client.address",
        "net.sock.peer.addr": "client.address",
        "net.peer.ip": "client.address",
        "net.host.name": "server.address",
        "net.host.port": "server.port",
        "peer.service": "service.peer.name",
        "db.system": "db.system.name",
        "db.statement": "db.query.text",
        "db.name": "db.namespace",
        "enduser.role": "user.roles",
        // http.target splits into url.path and url.query (below).
        "http.target": "url.path",
    ]
    /// The legacy keys by byte length, so most keys are passed over with one array look-up and no hashing.
    static let legacyByLength: [[String]] = {
        var t = [[String]](repeating: [], count: 64)
        for k in legacy.keys { t[k.utf8.count].append(k) }
        return t
    }()
    /// Legacy `db.system` values with a different current value.
    static let dbSystems = ["mssql": "microsoft.sql_server"]

    func mapSemanticConventions(_ e: inout AuditEvent) {
        var found: [Int]? = nil
        for (i, a) in e.attributes.enumerated() {
            let n = a.key.utf8.count
            guard n < 64, Self.legacyByLength[n].contains(a.key) else { continue }
            found = (found ?? []) + [i]
        }
        guard let found else { return }
        var added: [AttributeValue] = []
        var present = Set(e.attributes.map(\.key))
        for i in found {
            let a = e.attributes[i]
            let current = Self.legacy[a.key]!
            var additions: [Attribute] = []
            switch a.key {
            case "http.target":
                guard let target = a.value.stringValue else { continue }
                let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                additions.append(Attribute("url.path", .string(String(parts[0]))))
                if parts.count == 2 { additions.append(Attribute("url.query", .string(String(parts[1])))) }
            case "http.status_code":
                if case .string(let s) = a.value, let code = Int64(s) {
                    additions.append(Attribute(current, .int(code)))
                } else {
                    additions.append(Attribute(current, a.value))
                }
            case "db.system":
                let value = a.value.stringValue.flatMap { Self.dbSystems[$0] }.map(AttributeValue.string) ?? a.value
                additions.append(Attribute(current, value))
            case "enduser.role":
                if case .string(let s) = a.value {
                    additions.append(
                        Attribute(current, .array(s.split(separator: ",").map { .string(String($0).trimmingSpaces) })))
                } else {
                    additions.append(Attribute(current, a.value))
                }
            default:
                additions.append(Attribute(current, a.value))
            }
            for addition in additions where present.insert(addition.key).inserted {
                e.attributes.append(addition)
                added.append(.string(a.key + ">" + addition.key))
            }
        }
        if !added.isEmpty { e.attributes.append(Attribute(Self.semconvKey, .array(added))) }
    }
}
