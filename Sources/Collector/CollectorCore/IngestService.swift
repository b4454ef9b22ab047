// The receivers' logic, independent of the HTTP server that carries it: content negotiation, decompression
// with a cap, decoding, per-item validation and limits, the durable append, and the protocol's answers
// (OTLP partial success, google.rpc.Status errors, 503 + Retry-After when the disk cannot keep up).
import Foundation
import LogFormat
import Logging
import NIOCore
import OTLPBridge
import OTLPProto
import SwiftProtobuf
import Synchronization

public struct IngestLimits: Sendable, Hashable {
    /// Largest request body after decompression (OTLP recommends 64 MiB); larger gets 413.
    public var maxBodyBytes = 64 << 20
    /// Most attributes one record may carry (its own, not its resource's).
    public var maxAttributesPerRecord = 1_024
    /// Longest string (attribute key or value, name) in bytes.
    public var maxStringBytes = 256 << 10
    /// Longest NDJSON line in bytes.
    public var maxAccessLineBytes = 1 << 20
    /// Most items (spans, log records, access lines) one request may hold; more gets 413. An item can be two bytes
    /// and its event several hundred, so the body limit alone does not bound a request's memory.
    public var maxItemsPerRequest = 100_000
    /// Most attributes, array and list values, span events and links (Zipkin: tags and annotations) one request
    /// may hold, at every level; more gets 413. Each can be two bytes and tens of bytes once decoded.
    public var maxValuesPerRequest = 2_000_000
    /// Seconds a client is told to wait when the collector is saturated.
    public var retryAfterSeconds = 1
    public init() {}
}

/// What an HTTP binding sends back.
public struct IngestResponse: Sendable, Hashable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]
}

public final class IngestService: Sendable {
    public let log: DurableLog
    public let limits: IngestLimits
    public let identity: IdentityKeys
    public let access: AccessEventOptions
    public let metrics: CollectorMetrics
    /// Closed by the shipper while the local disk budget is spent (see Shipping.swift).
    public let localSpace = LocalSpaceGate()
    /// Audit fields, redaction, identity and workload normalisation, applied to every event before it is queued.
    public let normalizer: Normalizer
    /// Who may send; nil: anyone who reaches a listener (loopback-only unless configured otherwise). SIGHUP
    /// replaces it with the senders file's new contents.
    public var senders: SenderAuthenticator? { sendersBox.withLock { $0 } }
    private let sendersBox: Mutex<SenderAuthenticator?>
    private let logger: Logger

    public init(
        log: DurableLog, limits: IngestLimits = IngestLimits(), identity: IdentityKeys = IdentityKeys(),
        access: AccessEventOptions = AccessEventOptions(), metrics: CollectorMetrics = CollectorMetrics(),
        normalizer: Normalizer = Normalizer(), senders: SenderAuthenticator? = nil, logger: Logger
    ) {
        self.sendersBox = Mutex(senders)
        self.log = log
        self.limits = limits
        self.identity = identity
        self.access = access
        self.metrics = metrics
        // The normalising stage derives the audit fields with the same keys the service was given.
        var normalizer = normalizer
        normalizer.identity = identity
        normalizer.access = access
        self.normalizer = normalizer
        self.logger = logger
    }

    enum Encoding { case protobuf, json }

    /// Handles one request. `contentType` and `contentEncoding` are the header values as received; `sender`
    /// is who the binding found sent it (nil: nobody in particular, over the route's receiver).
    public func handle(
        method: String, path: String, contentType: String?, contentEncoding: String?, body: [UInt8],
        sender: SenderContext? = nil
    ) async -> IngestResponse {
        let route = path.split(separator: "?").first.map(String.init) ?? path
        guard let receiver = Receiver(route: route) else {
            return plain(
                404,
                "no receiver at \(route): use /v1/traces, /v1/logs or /v1/access (or /api/v2/spans on the Zipkin port)")
        }
        // The route names the receiver; a sender decided for another one would be the binding's mistake.
        var context = sender ?? SenderContext(receiver: receiver)
        context.receiver = receiver
        let answer = await dispatch(
            method: method, contentType: contentType, contentEncoding: contentEncoding, body: body, context)
        metrics.answered(receiver.label, status: answer.status)
        return answer
    }

    private func dispatch(
        method: String, contentType: String?, contentEncoding: String?, body: [UInt8], _ context: SenderContext
    ) async -> IngestResponse {
        let receiver = context.receiver
        let route = receiver.route ?? ""
        guard method == "POST" else { return plain(405, "\(route) accepts POST only", extra: ["Allow": "POST"]) }
        let mediaType =
            (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            ?? ""
        let named = mediaType.isEmpty ? "no content type" : mediaType
        let encoding: Encoding
        switch (receiver, mediaType) {
        case (.accessNDJSON, "application/x-ndjson"), (.accessNDJSON, "application/json"),
            (.accessNDJSON, "text/plain"):
            encoding = .json
        case (.zipkin, "application/json"): encoding = .json
        case (.zipkin, _):
            metrics.rejected(receiver.label, sender: context.name, reason: .unsupportedMediaType)
            return plain(415, "/api/v2/spans takes Zipkin v2 JSON (application/json), not \(named)")
        case (.accessNDJSON, _):
            metrics.rejected(receiver.label, sender: context.name, reason: .unsupportedMediaType)
            return plain(415, "/v1/access takes application/x-ndjson, not \(named)")
        case (_, "application/x-protobuf"): encoding = .protobuf
        case (_, "application/json"): encoding = .json
        default:
            metrics.rejected(receiver.label, sender: context.name, reason: .unsupportedMediaType)
            return plain(415, "\(route) takes application/x-protobuf or application/json, not \(named)")
        }
        // Decompress, capped.
        var payload = body
        switch (contentEncoding ?? "identity").lowercased() {
        case "identity", "":
            guard body.count <= limits.maxBodyBytes else { return tooLarge(receiver, encoding, sender: context.name) }
        case "gzip", "deflate":
            switch BodyInflation.inflate(body, limit: limits.maxBodyBytes) {
            case .success(let bytes): payload = bytes
            case .failure(.tooLarge): return tooLarge(receiver, encoding, sender: context.name)
            case .failure(.invalid(let why)):
                metrics.rejected(receiver.label, sender: context.name, reason: .malformed)
                return rpcError(400, code: 3, "bad \(contentEncoding ?? "") body: \(why)", receiver, encoding)
            }
        case let other:
            metrics.rejected(receiver.label, sender: context.name, reason: .unsupportedMediaType)
            return plain(415, "content encoding \(other) is not supported: use gzip or none")
        }
        switch receiver {
        case .accessNDJSON: return await ingestAccess(payload, context)
        case .zipkin: return await ingestZipkin(payload, context)
        case .otlpHTTPLogs: return await ingestOTLP(payload, encoding, as: OTLPLogsRequest.self, context)
        default: return await ingestOTLP(payload, encoding, as: OTLPTraceRequest.self, context)
        }
    }

    // MARK: Routes

    /// OTLP/HTTP traces or logs: decode in the request's encoding, then the path every OTLP binding shares.
    func ingestOTLP<Request: OTLPExport>(
        _ body: [UInt8], _ encoding: Encoding, as _: Request.Type, _ context: SenderContext
    ) async -> IngestResponse {
        let imported: OTLPMapping.Imported
        switch encoding {
        case .protobuf:
            do throws(OTLPWireError) {
                imported = try Request.imported(
                    protobuf: body, maxItems: limits.maxItemsPerRequest, maxValues: limits.maxValuesPerRequest)
            } catch {
                if error.isOverRequestLimit { return overRequestLimit(error.message, context, encoding) }
                metrics.rejected(context.receiver.label, sender: context.name, reason: .malformed)
                let what = "malformed \(Request.shortName) protobuf: \(error)"
                return rpcError(400, code: 3, what, context.receiver, encoding)
            }
        case .json:
            do throws(OTLPJSON.DecodeError) {
                imported = try Request.imported(
                    json: body, maxItems: limits.maxItemsPerRequest, maxValues: limits.maxValuesPerRequest)
            } catch {
                if error.isOverRequestLimit { return overRequestLimit(error.message, context, encoding) }
                metrics.rejected(context.receiver.label, sender: context.name, reason: .malformed)
                let what = "malformed OTLP/JSON \(Request.signal): \(error)"
                return rpcError(400, code: 3, what, context.receiver, encoding)
            }
        }
        do {
            let outcome = try await store(consume imported, from: context)
            return encode(Request.response(outcome), status: 200, encoding)
        } catch {
            return answer(error, context.receiver, encoding)
        }
    }

    func ingestAccess(_ body: [UInt8], _ context: SenderContext) async -> IngestResponse {
        let receiver = context.receiver.label
        let limit = limits.maxItemsPerRequest
        if let lines = AccessEventMapping.linesOverLimit(body, limit: limit) {
            let what = "the request holds \(lines) lines, more than the limit of \(limit) per request"
            return overRequestLimit(what, context, .json)
        }
        let events: [AuditEvent]
        let errors: [AccessEventMapping.LineError]
        do throws(RequestLimitExceeded) {
            (events, errors) = try AccessEventMapping.events(
                fromNDJSON: body, options: access, maxLineBytes: limits.maxAccessLineBytes,
                maxValues: limits.maxValuesPerRequest)
        } catch {
            return overRequestLimit(error.message, context, .json)
        }
        var lineErrors = errors.map { (line: $0.line, reason: $0.reason) }
        metrics.received(receiver, sender: context.name, items: events.count + errors.count)
        metrics.rejected(receiver, sender: context.name, reason: .invalidLine, items: errors.count)
        // Line numbers of the good events, to name any that break a limit: worked out only when one does (it
        // splits the whole body again).
        var goodLines: [Int]? = nil
        let kept = withinLimits(consume events) { i, broken in
            metrics.rejected(receiver, sender: context.name, reason: broken.reason)
            if goodLines == nil { goodLines = Self.goodLineNumbers(body, bad: Set(errors.map(\.line))) }
            lineErrors.append((goodLines![i], broken.message))
        }
        lineErrors.sort { $0.line < $1.line }
        let rejected = lineErrors.map { ["line": $0.line, "reason": $0.reason] as [String: Any] }
        if kept.isEmpty {
            if lineErrors.isEmpty {
                return IngestResponse(status: 200, headers: json, body: Self.accessReport(accepted: 0, rejected: []))
            }
            return IngestResponse(status: 400, headers: json, body: Self.accessReport(accepted: 0, rejected: rejected))
        }
        let accepted = kept.count
        do throws(Refusal) {
            try await append(consume kept, from: context)
        } catch {
            return answer(error, context.receiver, .json)
        }
        return IngestResponse(
            status: 200, headers: json, body: Self.accessReport(accepted: accepted, rejected: rejected))
    }

    /// The numbers of the lines of `body` that hold an event: not blank and not among `bad`.
    static func goodLineNumbers(_ body: [UInt8], bad: Set<Int>) -> [Int] {
        var goodLines: [Int] = []
        var n = 0
        for raw in body.split(separator: 0x0A, omittingEmptySubsequences: false) {
            n += 1
            if bad.contains(n) || raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            goodLines.append(n)
        }
        return goodLines
    }

    /// The answer to an NDJSON post: `{"accepted":N,"rejected":[…]}` as `JSONSerialization` writes it with
    /// sorted keys; when nothing was rejected, written directly, as it is for almost every post.
    static func accessReport(accepted: Int, rejected: [[String: Any]]) -> [UInt8] {
        if rejected.isEmpty { return Array("{\"accepted\":\(accepted),\"rejected\":[]}".utf8) }
        let obj: [String: Any] = ["accepted": accepted, "rejected": rejected]
        return Array((try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data())
    }

    /// Zipkin v2 JSON: 202 once the good spans are durable; a body naming the rejected spans when there are any.
    func ingestZipkin(_ body: [UInt8], _ context: SenderContext) async -> IngestResponse {
        let receiver = context.receiver.label
        let parsed: (events: [AuditEvent], rejected: [ZipkinMapping.Rejected])
        if ZipkinMapping.spansOverLimit(body, limit: limits.maxItemsPerRequest) != nil {
            let what = "the request holds more than \(limits.maxItemsPerRequest) spans, the limit per request"
            return overRequestLimit(what, context, .json)
        }
        var valuesLeft = limits.maxValuesPerRequest
        do {
            parsed = try ZipkinMapping.events(fromJSON: body, valuesLeft: &valuesLeft)
        } catch {
            metrics.rejected(receiver, sender: context.name, reason: .malformed)
            return rpcError(400, code: 3, "malformed Zipkin v2 JSON: \(error)", context.receiver, .json)
        }
        if valuesLeft < 0 { return overRequestLimit(ValueCount.overLimit(limits.maxValuesPerRequest), context, .json) }
        var imported = OTLPMapping.Imported(
            events: parsed.events,
            rejected: parsed.rejected.map { RejectedItem(resource: -1, scope: -1, item: $0.index, reason: $0.reason) })
        enforceLimits(&imported, receiver: receiver, sender: context.name)
        let rejected = imported.rejected.map { ["span": $0.item, "reason": $0.reason] as [String: Any] }
        let report: ([String: Any]) -> [UInt8] = { obj in
            Array((try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data())
        }
        if imported.events.isEmpty {
            if rejected.isEmpty { return IngestResponse(status: 202, headers: [:], body: []) }
            return IngestResponse(status: 400, headers: json, body: report(["accepted": 0, "rejected": rejected]))
        }
        let events = imported.events
        imported.events = []
        let accepted = events.count
        do throws(Refusal) {
            try await append(consume events, from: context)
        } catch {
            return answer(error, context.receiver, .json)
        }
        if rejected.isEmpty { return IngestResponse(status: 202, headers: [:], body: []) }
        return IngestResponse(status: 202, headers: json, body: report(["accepted": accepted, "rejected": rejected]))
    }

    // MARK: Storing (shared by every protocol binding)

    /// Why nothing of a request was stored, in protocol-neutral terms; each binding maps it to its own answer.
    public struct Refusal: Error, Sendable {
        public enum Kind: Sendable {
            /// The queue is full: retry after a while (HTTP 503 + Retry-After, gRPC UNAVAILABLE + RetryInfo).
            case busy
            /// The disk is full or failing: retry later, same answers as `busy`.
            case unavailable
            /// The data itself is unacceptable: do not retry (HTTP 400, gRPC INVALID_ARGUMENT).
            case invalid
            /// A bug or an unexpected failure (HTTP 500, gRPC INTERNAL).
            case internalError
        }
        public var kind: Kind
        public var message: String
    }

    /// What was stored of a request: the items rejected one by one (OTLP partial success).
    public struct Stored: Sendable {
        public var rejected: Int
        public var message: String

        public var traceResponse: Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse {
            var response = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse()
            if rejected > 0 || !message.isEmpty {
                response.partialSuccess.rejectedSpans = Int64(rejected)
                response.partialSuccess.errorMessage = message
            }
            return response
        }

        public var logsResponse: Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceResponse {
            var response = Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceResponse()
            if rejected > 0 || !message.isEmpty {
                response.partialSuccess.rejectedLogRecords = Int64(rejected)
                response.partialSuccess.errorMessage = message
            }
            return response
        }
    }

    /// Validates, limits and durably stores a decoded OTLP request (traces or logs, over HTTP or gRPC); returns
    /// once the kept items are durable.
    public func store<Request: OTLPExport>(
        _ request: Request, from sender: SenderContext
    ) async throws(Refusal) -> Stored {
        try await store(request.imported(), from: sender)
    }

    /// The same for a request already decoded into events (the protobuf receivers decode straight into them).
    public func store(_ imported: consuming OTLPMapping.Imported, from sender: SenderContext) async throws(Refusal)
        -> Stored
    {
        enforceLimits(&imported, receiver: sender.receiver.label, sender: sender.name)
        // The events move on alone: a second reference to their array would make the normaliser copy it
        // (every event's ~20 references retained) at its first write.
        let events = imported.events
        imported.events = []
        if !events.isEmpty { try await append(consume events, from: sender) }
        return Stored(rejected: imported.rejected.count, message: Self.summary(imported.rejected))
    }

    /// Stores access events decoded by a receiver of its own (syslog): each is checked against the limits
    /// (refused ones counted), the rest appended and durable on return. Returns how many were stored.
    public func store(accessEvents events: consuming [AuditEvent], from sender: SenderContext) async throws(Refusal)
        -> Int
    {
        let kept = withinLimits(consume events) { _, broken in
            metrics.rejected(sender.receiver.label, sender: sender.name, reason: broken.reason)
        }
        let count = kept.count
        if count > 0 { try await append(consume kept, from: sender) }
        return count
    }

    /// Normalises (the one call site of that stage: every receiver's events pass here), stamps the sender,
    /// appends and waits until durable. The log's `busy` code is the retryable refusal; other codes as below.
    private func append(_ events: consuming [AuditEvent], from sender: SenderContext) async throws(Refusal) {
        let receiver = sender.receiver.label
        if let why = localSpace.refusing {
            metrics.rejected(receiver, sender: sender.name, reason: .diskFull, items: events.count)
            throw Refusal(kind: .unavailable, message: why)
        }
        // The events as received are kept only when a JWKS that can be read again is configured: normalising
        // writes into every event, so a kept copy costs a copy of the array and a retain of each event's parts.
        let original = normalizer.options.jwks?.location != nil ? copy events : nil
        normalizer.normalize(&events, from: sender.receiver)
        if let original, let jwks = normalizer.options.jwks, jwks.wantsUnknownKeys, await jwks.fetchForUnknownKeys() {
            // A token named a key the JWKS has only now (a rotation): judge this request's tokens again with it,
            // from the events as received.
            events = original
            normalizer.normalize(&events, from: sender.receiver)
        }
        Self.stampSender(&events, sender)
        let started = FileIO.monotonicNanos()
        do {
            _ = try await log.append(
                events, origin: CompletenessLedger.origin(receiver: receiver, sender: sender.name))
            metrics.accepted(receiver, items: events.count, waitedNanos: FileIO.monotonicNanos() - started)
        } catch let error as LogFormatError {
            let reason: RejectionReason =
                switch error.code {
                case .busy: .queueFull
                case .limitExceeded: .invalidItem
                case .io where FileIO.isOutOfSpace(error): .diskFull
                default: .writeError
                }
            metrics.rejected(receiver, sender: sender.name, reason: reason, items: events.count)
            switch error.code {
            case .busy:
                throw Refusal(kind: .busy, message: "collector busy: \(error.message); retry later")
            case .limitExceeded:
                throw Refusal(kind: .invalid, message: error.message)
            case .io:
                if shouldLogWriteFailure() {
                    logger.error(
                        FileIO.isOutOfSpace(error)
                            ? "the disk is full; refusing writes until space returns"
                            : "write failed; refusing until the disk recovers", metadata: ["error": "\(error)"])
                }
                let why = FileIO.isOutOfSpace(error) ? "the collector's disk is full" : "the collector cannot write"
                throw Refusal(
                    kind: .unavailable, message: "\(why); this request is not acknowledged, send it again later")
            default:
                throw Refusal(kind: .unavailable, message: "not stored: \(error.message)")
            }
        } catch {
            metrics.rejected(receiver, sender: sender.name, reason: .writeError, items: events.count)
            throw Refusal(kind: .internalError, message: "not stored: \(error)")
        }
    }

    /// The HTTP answer to a refusal, in the request's encoding.
    private func answer(_ refusal: Refusal, _ receiver: Receiver, _ encoding: Encoding) -> IngestResponse {
        switch refusal.kind {
        case .busy, .unavailable:
            rpcError(
                503, code: 14, refusal.message, receiver, encoding,
                extra: ["Retry-After": String(limits.retryAfterSeconds)])
        case .invalid: rpcError(400, code: 3, refusal.message, receiver, encoding)
        case .internalError: rpcError(500, code: 13, refusal.message, receiver, encoding)
        }
    }

    /// While the disk is full every request fails the same way: log it once per 10 s, not once per request.
    private let lastWriteFailureLog = Mutex<UInt64>(0)
    private func shouldLogWriteFailure() -> Bool {
        let now = FileIO.monotonicNanos()
        return lastWriteFailureLog.withLock { last in
            guard last == 0 || now &- last >= 10_000_000_000 else { return false }
            last = now
            return true
        }
    }

    // MARK: Limits

    /// Drops the items that break a limit (naming them in `rejected`) and counts what was received and refused.
    func enforceLimits(_ imported: inout OTLPMapping.Imported, receiver: String, sender: String? = nil) {
        metrics.received(receiver, sender: sender, items: imported.events.count + imported.rejected.count)
        metrics.rejected(receiver, sender: sender, reason: .invalidItem, items: imported.rejected.count)
        let events = imported.events
        imported.events = []
        var refused: [RejectedItem] = []
        imported.events = withinLimits(consume events) { i, broken in
            metrics.rejected(receiver, sender: sender, reason: broken.reason)
            refused.append(RejectedItem(resource: -1, scope: -1, item: i, reason: broken.message))
        }
        imported.rejected += refused
    }

    /// The events that break no limit, in order; `refused` hears of each other one (its index and why). When
    /// none breaks a limit, the array itself comes back: no copy, no retain of the events' parts.
    func withinLimits(
        _ events: consuming [AuditEvent], refused: (Int, LimitViolation) -> Void
    ) -> [AuditEvent] {
        guard let first = events.firstIndex(where: { violation($0) != nil }) else { return events }
        var kept: [AuditEvent] = []
        kept.reserveCapacity(events.count - 1)
        kept.append(contentsOf: events[..<first])
        for i in first..<events.count {
            if let broken = violation(events[i]) { refused(i, broken) } else { kept.append(events[i]) }
        }
        return kept
    }

    struct LimitViolation {
        var reason: RejectionReason
        var message: String
    }

    /// Which limit `e` breaks and how, or nil.
    func violation(_ e: AuditEvent) -> LimitViolation? {
        let maxAttributes = limits.maxAttributesPerRecord
        if e.attributes.count > maxAttributes {
            return LimitViolation(
                reason: .attributeLimit,
                message: "\(e.attributes.count) attributes, more than the limit of \(maxAttributes)")
        }
        // Span events and links count against the same limit: each one's attributes, and how many there are.
        if e.events.count + e.links.count > maxAttributes {
            return LimitViolation(
                reason: .attributeLimit,
                message: "\(e.events.count) events and \(e.links.count) links, more than the limit of \(maxAttributes)")
        }
        if let crowded = e.events.lazy.map(\.attributes.count).first(where: { $0 > maxAttributes })
            ?? e.links.lazy.map(\.attributes.count).first(where: { $0 > maxAttributes })
        {
            return LimitViolation(
                reason: .attributeLimit,
                message: "a span event or link with \(crowded) attributes, more than the limit of \(maxAttributes)")
        }
        let max = limits.maxStringBytes
        func long(_ s: String) -> Bool { s.utf8.count > max }
        func bad(_ v: AttributeValue) -> Bool {
            switch v {
            case .string(let s): return long(s)
            case .bytes(let b): return b.count > max
            case .array(let a): return a.contains(where: bad)
            case .keyValueList(let l): return l.contains { long($0.key) || bad($0.value) }
            default: return false
            }
        }
        // Attribute lists checked where they are (a list of the lists was an allocation per event).
        func tooLong(_ list: [Attribute]) -> Bool { list.contains { long($0.key) || bad($0.value) } }
        if long(e.name) || tooLong(e.attributes) || e.events.contains(where: { tooLong($0.attributes) })
            || e.links.contains(where: { tooLong($0.attributes) }) || e.body.map(bad) == true
        {
            return LimitViolation(reason: .stringLimit, message: "a string longer than \(max) bytes")
        }
        return nil
    }

    static func summary(_ rejected: [RejectedItem]) -> String {
        guard !rejected.isEmpty else { return "" }
        let shown = rejected.prefix(5).map(\.description).joined(separator: "; ")
        return "\(rejected.count) rejected: \(shown)" + (rejected.count > 5 ? "; …" : "")
    }

    // MARK: Senders

    /// Takes a new list of senders (the senders file read again); requests already decided keep their answer.
    public func replaceSenders(_ senders: SenderAuthenticator) {
        sendersBox.withLock { $0 = senders }
    }

    /// The sender of a request, or the refusal (counted and logged, without the credential). Without a
    /// senders file everyone is let in, and the client certificate's identity, if any, is still recorded.
    public func authorize(
        _ receiver: Receiver, authorization: String?, identity: String?, peer: SocketAddress?
    ) -> Result<SenderContext, AuthRefusal> {
        let anonymous = SenderContext(receiver: receiver, identity: identity, peer: peer)
        guard let senders, let kind = receiver.senderKind else { return .success(anonymous) }
        switch senders.authorize(receiver: kind, authorization: authorization, identity: identity, peer: peer) {
        case .success(let sender):
            return .success(SenderContext(receiver: receiver, name: sender.name, identity: identity, peer: peer))
        case .failure(let refusal):
            let sender = refusal.kind == .forbidden ? refusal.sender : nil
            metrics.authRefused(kind, receiver: receiver.label, sender: sender, reason: refusal.reason)
            logger.warning(
                "refused a sender",
                metadata: [
                    "receiver": "\(kind.rawValue)", "reason": "\(refusal.reason)", "peer": "\(peer?.ipAddress ?? "?")",
                    "sender": "\(refusal.sender ?? "-")", "identity": "\(identity ?? "-")",
                ])
            return .failure(refusal)
        }
    }

    /// The HTTP answer to a refused sender: 401 with a Bearer challenge, or 403, as a `google.rpc.Status`.
    public func refusedSender(_ refusal: AuthRefusal, receiver: Receiver, contentType: String?) -> IngestResponse {
        let encoding: Encoding =
            (contentType ?? "").lowercased().hasPrefix("application/x-protobuf") ? .protobuf : .json
        let answer =
            switch refusal.kind {
            case .unauthenticated:
                rpcError(
                    401, code: 16, refusal.message, receiver, encoding,
                    extra: ["WWW-Authenticate": "Bearer realm=\"audit-collector\""])
            case .forbidden:
                rpcError(403, code: 7, refusal.message, receiver, encoding)
            }
        metrics.answered(receiver.label, status: answer.status)
        return answer
    }

    /// Writes the sender onto every event. Whatever a client sent under `audit.` the normaliser has already
    /// moved under `sender.audit.`, so these keys are the collector's alone.
    static func stampSender(_ events: inout [AuditEvent], _ sender: SenderContext) {
        var stamp: [Attribute] = []
        if let name = sender.name { stamp.append(Attribute(SenderContext.nameKey, .string(name))) }
        if let identity = sender.identity { stamp.append(Attribute(SenderContext.identityKey, .string(identity))) }
        guard !stamp.isEmpty else { return }
        for i in events.indices { events[i].attributes.append(contentsOf: stamp) }
    }

    // MARK: Answers

    /// The 413 answer for a body the HTTP layer refused to read past the limit.
    public func bodyTooLarge(receiver: Receiver, contentType: String?, sender: String? = nil) -> IngestResponse {
        let protobuf = (contentType ?? "").lowercased().hasPrefix("application/x-protobuf")
        let answer = tooLarge(receiver, protobuf ? .protobuf : .json, sender: sender)
        metrics.answered(receiver.label, status: answer.status)
        return answer
    }

    /// False once the log is closed or while its queue is full: what /readyz reports.
    public var isAccepting: Bool { log.isAccepting }

    private let json = ["Content-Type": "application/json"]

    private func plain(_ status: Int, _ message: String, extra: [String: String] = [:]) -> IngestResponse {
        IngestResponse(
            status: status, headers: ["Content-Type": "text/plain; charset=utf-8"].merging(extra) { $1 },
            body: Array((message + "\n").utf8))
    }

    /// 413 for a body over its size limit, or (with `message`) a request of more items or values than the limit:
    /// resending cannot help.
    private func tooLarge(
        _ receiver: Receiver, _ encoding: Encoding, sender: String? = nil, message: String? = nil
    ) -> IngestResponse {
        metrics.rejected(receiver.label, sender: sender, reason: .tooLarge)
        let message = message ?? "request body exceeds \(limits.maxBodyBytes) bytes after decompression"
        return rpcError(413, code: 8, message, receiver, encoding)
    }

    /// A request of more items or values than `maxItemsPerRequest` or `maxValuesPerRequest`: 413, as for a body over
    /// its limit (resending it cannot help).
    private func overRequestLimit(_ what: String, _ context: SenderContext, _ encoding: Encoding) -> IngestResponse {
        tooLarge(context.receiver, encoding, sender: context.name, message: Self.overRequestLimitMessage(what))
    }

    static func overRequestLimitMessage(_ what: String) -> String { "\(what); send them in smaller requests" }

    /// A `google.rpc.Status` body in the request's encoding (access routes answer in JSON).
    func rpcError(
        _ status: Int, code: Int32, _ message: String, _ receiver: Receiver, _ encoding: Encoding,
        extra: [String: String] = [:]
    ) -> IngestResponse {
        var s = Google_Rpc_Status()
        s.code = code
        s.message = message
        if status == 503 {
            var retry = Google_Rpc_RetryInfo()
            retry.retryDelay.seconds = Int64(limits.retryAfterSeconds)
            if let any = try? Google_Protobuf_Any(message: retry) { s.details = [any] }
        }
        var r = encode(s, status: status, receiver.answersInJSON ? .json : encoding)
        r.headers.merge(extra) { $1 }
        return r
    }

    private func encode(_ message: some SwiftProtobuf.Message, status: Int, _ encoding: Encoding) -> IngestResponse {
        switch encoding {
        case .protobuf:
            let bytes: [UInt8] = (try? message.serializedBytes()) ?? []
            return IngestResponse(status: status, headers: ["Content-Type": "application/x-protobuf"], body: bytes)
        case .json:
            let text = (try? message.jsonString()) ?? "{}"
            return IngestResponse(status: status, headers: json, body: Array(text.utf8))
        }
    }
}
