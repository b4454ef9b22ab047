// The receivers' logic, independent of the HTTP server that carries it: content negotiation, decompression
// with a cap, decoding, per-item validation and limits, the durable append, and the protocol's answers
// (OTLP partial success, google.rpc.Status errors, 503 + Retry-After when the disk cannot keep up).
import Foundation
import LogFormat
import Logging
import OTLPProto
import SwiftProtobuf

public struct IngestLimits: Sendable, Hashable {
    /// Largest request body after decompression (OTLP recommends 64 MiB); larger gets 413.
    public var maxBodyBytes = 64 << 20
    /// Most attributes one record may carry (its own, not its resource's).
    public var maxAttributesPerRecord = 1_024
    /// Longest string (attribute key or value, name) in bytes.
    public var maxStringBytes = 256 << 10
    /// Longest NDJSON line in bytes.
    public var maxAccessLineBytes = 1 << 20
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
    /// Redaction, identity and workload normalisation, applied to every event before it is queued.
    public let normalizer: Normalizer
    private let logger: Logger

    public init(
        log: DurableLog, limits: IngestLimits = IngestLimits(), identity: IdentityKeys = IdentityKeys(),
        access: AccessEventOptions = AccessEventOptions(), normalizer: Normalizer = Normalizer(), logger: Logger
    ) {
        self.log = log
        self.limits = limits
        self.identity = identity
        self.access = access
        self.normalizer = normalizer
        self.logger = logger
    }

    enum Encoding { case protobuf, json }

    /// Handles one request. `contentType` and `contentEncoding` are the header values as received.
    public func handle(
        method: String, path: String, contentType: String?, contentEncoding: String?, body: [UInt8]
    ) async -> IngestResponse {
        let route = path.split(separator: "?").first.map(String.init) ?? path
        guard ["/v1/traces", "/v1/logs", "/v1/access"].contains(route) else {
            return plain(404, "no receiver at \(route): use /v1/traces, /v1/logs or /v1/access")
        }
        guard method == "POST" else { return plain(405, "\(route) accepts POST only", extra: ["Allow": "POST"]) }
        let mediaType = (contentType ?? "").split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        let encoding: Encoding
        switch (route, mediaType) {
        case ("/v1/access", "application/x-ndjson"), ("/v1/access", "application/json"), ("/v1/access", "text/plain"):
            encoding = .json
        case ("/v1/access", _):
            return plain(415, "/v1/access takes application/x-ndjson, not \(mediaType.isEmpty ? "no content type" : mediaType)")
        case (_, "application/x-protobuf"): encoding = .protobuf
        case (_, "application/json"): encoding = .json
        default:
            return plain(415, "\(route) takes application/x-protobuf or application/json, not \(mediaType.isEmpty ? "no content type" : mediaType)")
        }
        // Decompress, capped.
        var payload = body
        switch (contentEncoding ?? "identity").lowercased() {
        case "identity", "": guard body.count <= limits.maxBodyBytes else { return tooLarge(route, encoding) }
        case "gzip", "deflate":
            switch BodyInflation.inflate(body, limit: limits.maxBodyBytes) {
            case .success(let bytes): payload = bytes
            case .failure(.tooLarge): return tooLarge(route, encoding)
            case .failure(.invalid(let why)): return rpcError(400, code: 3, "bad \(contentEncoding ?? "") body: \(why)", route, encoding)
            }
        case let other:
            return plain(415, "content encoding \(other) is not supported: use gzip or none")
        }
        switch route {
        case "/v1/access": return await ingestAccess(payload)
        case "/v1/traces": return await ingestTraces(payload, encoding)
        default: return await ingestLogs(payload, encoding)
        }
    }

    // MARK: Routes

    func ingestTraces(_ body: [UInt8], _ encoding: Encoding) async -> IngestResponse {
        let request: OTLPTraceRequest
        switch encoding {
        case .protobuf:
            do { request = try OTLPTraceRequest(serializedBytes: body) } catch {
                return rpcError(400, code: 3, "malformed ExportTraceServiceRequest protobuf: \(error)", "/v1/traces", encoding)
            }
        case .json:
            do { request = try OTLPJSON.traceRequest(from: body) } catch {
                return rpcError(400, code: 3, "malformed OTLP/JSON traces: \(error)", "/v1/traces", encoding)
            }
        }
        var imported = OTLPMapping.events(from: request, identity: identity)
        enforceLimits(&imported)
        return await store(imported, route: "/v1/traces", encoding: encoding) { rejected, message in
            var response = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse()
            if rejected > 0 || !message.isEmpty {
                response.partialSuccess.rejectedSpans = Int64(rejected)
                response.partialSuccess.errorMessage = message
            }
            return response
        }
    }

    func ingestLogs(_ body: [UInt8], _ encoding: Encoding) async -> IngestResponse {
        let request: OTLPLogsRequest
        switch encoding {
        case .protobuf:
            do { request = try OTLPLogsRequest(serializedBytes: body) } catch {
                return rpcError(400, code: 3, "malformed ExportLogsServiceRequest protobuf: \(error)", "/v1/logs", encoding)
            }
        case .json:
            do { request = try OTLPJSON.logsRequest(from: body) } catch {
                return rpcError(400, code: 3, "malformed OTLP/JSON logs: \(error)", "/v1/logs", encoding)
            }
        }
        var imported = OTLPMapping.events(from: request, identity: identity)
        enforceLimits(&imported)
        return await store(imported, route: "/v1/logs", encoding: encoding) { rejected, message in
            var response = Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceResponse()
            if rejected > 0 || !message.isEmpty {
                response.partialSuccess.rejectedLogRecords = Int64(rejected)
                response.partialSuccess.errorMessage = message
            }
            return response
        }
    }

    func ingestAccess(_ body: [UInt8]) async -> IngestResponse {
        let (events, errors) = AccessEventMapping.events(fromNDJSON: body, options: access, maxLineBytes: limits.maxAccessLineBytes)
        var kept: [AuditEvent] = []
        var lineErrors = errors.map { (line: $0.line, reason: $0.reason) }
        // Line numbers of the good events, to name any that break a limit.
        var goodLines: [Int] = []
        var n = 0
        let bad = Set(errors.map(\.line))
        for raw in body.split(separator: 0x0A, omittingEmptySubsequences: false) {
            n += 1
            if bad.contains(n) || raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            goodLines.append(n)
        }
        for (i, e) in events.enumerated() {
            if let why = violation(e) { lineErrors.append((goodLines[i], why)) } else { kept.append(e) }
        }
        lineErrors.sort { $0.line < $1.line }
        let report: ([String: Any]) -> [UInt8] = { obj in
            Array((try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data())
        }
        let rejected = lineErrors.map { ["line": $0.line, "reason": $0.reason] as [String: Any] }
        if kept.isEmpty {
            if lineErrors.isEmpty { return IngestResponse(status: 200, headers: json, body: report(["accepted": 0, "rejected": []])) }
            return IngestResponse(status: 400, headers: json, body: report(["accepted": 0, "rejected": rejected]))
        }
        if let failure = await append(kept) { return failure(.json, "/v1/access") }
        return IngestResponse(status: 200, headers: json, body: report(["accepted": kept.count, "rejected": rejected]))
    }

    // MARK: Storing

    private func store<Response: SwiftProtobuf.Message>(
        _ imported: OTLPMapping.Imported, route: String, encoding: Encoding,
        response: (Int, String) -> Response
    ) async -> IngestResponse {
        let message = Self.summary(imported.rejected)
        if !imported.events.isEmpty, let failure = await append(imported.events) { return failure(encoding, route) }
        return encode(response(imported.rejected.count, message), status: 200, encoding)
    }

    /// Appends and waits until durable; on failure returns how to answer.
    private func append(_ events: [AuditEvent]) async -> ((Encoding, String) -> IngestResponse)? {
        // The one call site of the normalisation stage: every receiver's events pass here.
        var events = events
        normalizer.normalize(&events)
        do {
            _ = try await log.append(events)
            return nil
        } catch let error as LogFormatError {
            let retry = String(limits.retryAfterSeconds)
            switch error.code {
            case .limitExceeded where error.message.contains("queue full"):
                return { e, r in self.rpcError(503, code: 14, "collector busy: \(error.message); retry later", r, e, extra: ["Retry-After": retry]) }
            case .limitExceeded:
                return { e, r in self.rpcError(400, code: 3, error.message, r, e) }
            case .io:
                logger.error("write failed; refusing until the disk recovers", metadata: ["error": "\(error)"])
                let why = FileIO.isOutOfSpace(error) ? "the collector's disk is full" : "the collector cannot write"
                return { e, r in self.rpcError(503, code: 14, "\(why); nothing from this request was stored, retry later", r, e, extra: ["Retry-After": retry]) }
            default:
                return { e, r in self.rpcError(503, code: 14, "not stored: \(error.message)", r, e, extra: ["Retry-After": retry]) }
            }
        } catch {
            return { e, r in self.rpcError(500, code: 13, "not stored: \(error)", r, e) }
        }
    }

    // MARK: Limits

    func enforceLimits(_ imported: inout OTLPMapping.Imported) {
        var kept: [AuditEvent] = []
        kept.reserveCapacity(imported.events.count)
        for (i, e) in imported.events.enumerated() {
            if let why = violation(e) {
                imported.rejected.append(RejectedItem(resource: -1, scope: -1, item: i, reason: why))
            } else {
                kept.append(e)
            }
        }
        imported.events = kept
    }

    /// Why `e` breaks a limit, or nil.
    func violation(_ e: AuditEvent) -> String? {
        if e.attributes.count > limits.maxAttributesPerRecord {
            return "\(e.attributes.count) attributes, more than the limit of \(limits.maxAttributesPerRecord)"
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
        let attributeSets = [e.attributes] + e.events.map(\.attributes) + e.links.map(\.attributes)
        if long(e.name) || attributeSets.contains(where: { $0.contains { long($0.key) || bad($0.value) } })
            || e.body.map(bad) == true
        {
            return "a string longer than \(max) bytes"
        }
        return nil
    }

    static func summary(_ rejected: [RejectedItem]) -> String {
        guard !rejected.isEmpty else { return "" }
        let shown = rejected.prefix(5).map(\.description).joined(separator: "; ")
        return "\(rejected.count) rejected: \(shown)" + (rejected.count > 5 ? "; …" : "")
    }

    // MARK: Answers

    /// The 413 answer for a body the HTTP layer refused to read past the limit.
    public func bodyTooLarge(route: String, contentType: String?) -> IngestResponse {
        tooLarge(route, (contentType ?? "").lowercased().hasPrefix("application/x-protobuf") ? .protobuf : .json)
    }

    /// False once the log is closed or while its queue is full: what /readyz reports.
    public var isAccepting: Bool { log.isAccepting }

    private let json = ["Content-Type": "application/json"]

    private func plain(_ status: Int, _ message: String, extra: [String: String] = [:]) -> IngestResponse {
        IngestResponse(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"].merging(extra) { $1 }, body: Array((message + "\n").utf8))
    }

    private func tooLarge(_ route: String, _ encoding: Encoding) -> IngestResponse {
        rpcError(413, code: 8, "request body exceeds \(limits.maxBodyBytes) bytes after decompression", route, encoding)
    }

    /// A `google.rpc.Status` body in the request's encoding (access routes answer in JSON).
    func rpcError(
        _ status: Int, code: Int32, _ message: String, _ route: String, _ encoding: Encoding, extra: [String: String] = [:]
    ) -> IngestResponse {
        var s = Google_Rpc_Status()
        s.code = code
        s.message = message
        if status == 503 {
            var retry = Google_Rpc_RetryInfo()
            retry.retryDelay.seconds = Int64(limits.retryAfterSeconds)
            if let any = try? Google_Protobuf_Any(message: retry) { s.details = [any] }
        }
        var r = encode(s, status: status, route == "/v1/access" ? .json : encoding)
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
