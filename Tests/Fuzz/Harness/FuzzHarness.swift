// The fuzz targets: each runs one input through the same calls a receiver (or the store) makes on bytes from the
// network (or the disk), and checks cheap invariants. A failed invariant is a `preconditionFailure`, which
// libFuzzer reports as a crash with the input; `run` itself must never crash on any input.
import CollectorParsers
import Foundation
import LogFormat
import OTLPBridge
import OTLPProto
import SwiftProtobuf
import SyntheticTraffic

public enum FuzzTarget: String, CaseIterable, Sendable {
    /// OTLP/HTTP and OTLP/gRPC protobuf bodies: ExportTraceServiceRequest and ExportLogsServiceRequest, mapped.
    case otlpProto = "otlp-proto"
    /// OTLP/HTTP JSON bodies (traces and logs), mapped.
    case otlpJSON = "otlp-json"
    /// Zipkin v2 JSON bodies.
    case zipkin
    /// NDJSON access-event bodies (nginx / Envoy access lines).
    case accessNDJSON = "access-ndjson"
    /// Syslog messages (RFC 3164 and 5424) and an RFC 6587 TCP stream cut into frames.
    case syslog
    /// Bearer tokens: JWT decoding, redaction of what looks like a secret, SPIFFE / XFCC identities, traceparent.
    case jwt
    /// The store's readers: a whole segment file, the recovery scanner, one record, the catalog.
    case segment

    /// Runs one input. Returns how many events (or records) the input yielded, for the replayer's report.
    @discardableResult
    public func run(_ bytes: [UInt8]) -> Int {
        switch self {
        case .otlpProto: return FuzzHarness.otlpProto(bytes)
        case .otlpJSON: return FuzzHarness.otlpJSON(bytes)
        case .zipkin: return FuzzHarness.zipkin(bytes)
        case .accessNDJSON: return FuzzHarness.accessNDJSON(bytes)
        case .syslog: return FuzzHarness.syslog(bytes)
        case .jwt: return FuzzHarness.jwt(bytes)
        case .segment: return FuzzHarness.segment(bytes)
        }
    }
}

public enum FuzzHarness {
    /// Every event a parser accepted must survive the record codec: encoding the decoded record gives the
    /// same bytes (bytes, not events: a NaN attribute is never == itself).
    static func checkRecordRoundTrip(_ events: [AuditEvent]) {
        for e in events {
            let encoded = RecordCodec.encode(e)
            let decoded: AuditEvent
            do { decoded = try RecordCodec.decode(encoded) } catch {
                preconditionFailure("an accepted event does not decode from its own record: \(error)")
            }
            precondition(
                RecordCodec.encode(decoded) == encoded, "an accepted event does not round-trip the record codec")
        }
    }

    /// The receivers' decoder (`OTLPWireDecoder`) on the input as traces and as logs, with swift-protobuf + the
    /// mapping as its oracle: both refuse, or both give the same events and rejected items.
    static func otlpProto(_ bytes: [UInt8]) -> Int {
        var n = 0
        let traces = Result { () throws(OTLPWireError) in try OTLPWireDecoder.traces(protobuf: bytes) }
        let oldTraces = (try? OTLPTraceRequest(serializedBytes: bytes)).map { OTLPMapping.events(from: $0) }
        checkSame(traces, oldTraces, "traces")
        if case .success(var imported) = traces {
            OTLPMapping.deriveAuditFields(&imported.events, identity: IdentityKeys())
            checkRecordRoundTrip(imported.events)
            // What auditq exports must be encodable again.
            let back = OTLPMapping.traceRequest(from: imported.events)
            precondition((try? back.serializedBytes() as [UInt8]) != nil, "an imported request does not re-encode")
            n += imported.events.count
        }
        let logs = Result { () throws(OTLPWireError) in try OTLPWireDecoder.logs(protobuf: bytes) }
        let oldLogs = (try? OTLPLogsRequest(serializedBytes: bytes)).map { OTLPMapping.events(from: $0) }
        checkSame(logs, oldLogs, "logs")
        if case .success(let imported) = logs {
            checkRecordRoundTrip(imported.events)
            n += imported.events.count
        }
        return n
    }

    /// The wire decoder's answer against swift-protobuf's. Events are compared by their record bytes (every
    /// field), which a NaN attribute does not spoil as `==` would.
    static func checkSame(
        _ new: Result<OTLPMapping.Imported, some Error>, _ old: OTLPMapping.Imported?, _ signal: String
    ) {
        switch (new, old) {
        case (.failure, nil): return
        case (.success(let new), let old?):
            precondition(new.rejected == old.rejected, "\(signal): the decoders reject different items")
            precondition(new.events.count == old.events.count, "\(signal): the decoders give different events")
            for (a, b) in zip(new.events, old.events) {
                precondition(
                    RecordCodec.encode(a) == RecordCodec.encode(b), "\(signal): the decoders give different events")
            }
        case (.success, nil): preconditionFailure("\(signal): swift-protobuf refuses what the wire decoder accepts")
        case (.failure(let e), _?):
            preconditionFailure("\(signal): the wire decoder refuses what swift-protobuf accepts: \(e)")
        }
    }

    /// The receivers' one-pass OTLP/JSON decoder on the input as traces and as logs, with the JSON tree +
    /// swift-protobuf message + mapping it replaced (OTLPJSONTree) as its oracle: the same events and rejected
    /// items, or the same error.
    static func otlpJSON(_ bytes: [UInt8]) -> Int {
        var n = 0
        let traces = Result { () throws(OTLPJSON.DecodeError) in try OTLPJSON.traces(json: bytes) }
        let oldTraces = Result { () throws(OTLPJSON.DecodeError) in
            OTLPMapping.events(from: try OTLPJSONTree.traceRequest(from: bytes))
        }
        checkSame(traces, oldTraces, "OTLP/JSON traces")
        if case .success(let imported) = traces {
            checkRecordRoundTrip(imported.events)
            n += imported.events.count
        }
        let logs = Result { () throws(OTLPJSON.DecodeError) in try OTLPJSON.logs(json: bytes) }
        let oldLogs = Result { () throws(OTLPJSON.DecodeError) in
            OTLPMapping.events(from: try OTLPJSONTree.logsRequest(from: bytes))
        }
        checkSame(logs, oldLogs, "OTLP/JSON logs")
        if case .success(let imported) = logs {
            checkRecordRoundTrip(imported.events)
            n += imported.events.count
        }
        return n
    }

    /// Two decoders' answers: the same error, or the same events and rejected items.
    static func checkSame(
        _ new: Result<OTLPMapping.Imported, OTLPJSON.DecodeError>,
        _ old: Result<OTLPMapping.Imported, OTLPJSON.DecodeError>, _ signal: String
    ) {
        switch (new, old) {
        case (.failure(let a), .failure(let b)):
            precondition(a == b, "\(signal): the decoders refuse differently: \(a) / \(b)")
        case (.success(let a), .failure(let b)):
            preconditionFailure("\(signal): the reference refuses what the scanner accepts: \(b); \(a.events.count)")
        case (.failure(let a), .success):
            preconditionFailure("\(signal): the scanner refuses what the reference accepts: \(a)")
        case (.success(let a), .success(let b)):
            checkSame(Result<OTLPMapping.Imported, OTLPJSON.DecodeError>.success(a), b, signal)
        }
    }

    /// The receivers' one-pass Zipkin decoder, with the tree path it replaced (ZipkinTree) as its oracle: the
    /// same error, or the same events and rejected spans.
    static func zipkin(_ bytes: [UInt8]) -> Int {
        let new = Result { () throws(JSONSyntaxError) in try ZipkinMapping.events(fromJSON: bytes) }
        let old = Result { () throws(JSONSyntaxError) in try ZipkinTree.events(fromJSON: bytes) }
        switch (new, old) {
        case (.failure(let a), .failure(let b)): precondition(a == b, "zipkin: the decoders refuse differently")
        case (.success(let a), .success(let b)):
            precondition(a.rejected == b.rejected, "zipkin: the decoders reject different spans")
            precondition(
                a.events.map(RecordCodec.encode) == b.events.map(RecordCodec.encode),
                "zipkin: the decoders give different events")
        default: preconditionFailure("zipkin: one decoder refuses what the other accepts")
        }
        guard case .success(var parsed) = new else { return 0 }
        OTLPMapping.deriveAuditFields(&parsed.events, identity: IdentityKeys())
        checkRecordRoundTrip(parsed.events)
        return parsed.events.count
    }

    static func accessNDJSON(_ bytes: [UInt8]) -> Int {
        guard let (events, errors) = try? AccessEventMapping.events(fromNDJSON: bytes, maxLineBytes: 1 << 20) else {
            preconditionFailure("ndjson: refused for its values with no limit on them")
        }
        checkRecordRoundTrip(events)
        // The value limit: refused exactly when the events' attributes and nested values are more; otherwise the
        // same result.
        let limit = 64
        let values = events.reduce(0) { $0 + ValueCount.of($1.attributes) }
        switch Result(catching: { () throws(RequestLimitExceeded) in
            try AccessEventMapping.events(fromNDJSON: bytes, maxLineBytes: 1 << 20, maxValues: limit)
        }) {
        case .success(let bounded):
            precondition(values <= limit, "ndjson: \(values) values taken with a limit of \(limit)")
            precondition(bounded.events == events && bounded.errors == errors, "ndjson: the limit changed the result")
        case .failure:
            precondition(values > limit, "ndjson: refused for its values at \(values) of \(limit)")
        }
        // Differential: where the fast path takes a line, the general scanner gives the same event or refusal.
        for raw in bytes.split(separator: 0x0A) {
            var line = Array(raw)
            if line.last == 0x0D { line.removeLast() }
            let fast = Result { () throws(AccessEventMapping.Refusal) in
                try AccessEventMapping.fastPathEvent(line: line)
            }
            let general = Result { () throws(AccessEventMapping.Refusal) in
                try AccessEventMapping.event(generalLine: line)
            }
            switch (fast, general) {
            case (.success(nil), _): continue
            case (.success(let a?), .success(let b)):
                precondition(a == b, "the access fast path and the general scanner give different events")
            case (.failure(let a), .failure(let b)):
                precondition(a.message == b.message, "the access fast path and the general scanner refuse differently")
            default: preconditionFailure("the access fast path and the general scanner disagree on a line")
            }
        }
        // The load generator's writer of access lines must write what the parser reads back.
        for e in events { _ = try? AccessEventMapping.event(fromLine: Array(NginxAccessLine.render(e).utf8)) }
        return events.count
    }

    static func syslog(_ bytes: [UInt8]) -> Int {
        var n = 0
        func one(_ message: [UInt8]) {
            guard let parsed = try? Syslog.parse(message) else { return }
            if let e = try? Syslog.event(from: parsed, peer: "127.0.0.1:514", options: AccessEventOptions()) {
                checkRecordRoundTrip([e])
                n += 1
            }
        }
        // The datagram path (UDP: one message per packet).
        one(bytes)
        // The stream path (TCP): the same bytes cut into chunks of a size taken from the first byte.
        let chunk = max(1, Int(bytes.first ?? 1))
        var framer = SyslogFramer(maxFrameBytes: 64 << 10)
        var offset = 0
        streaming: while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            framer.append(bytes[offset..<end])
            offset = end
            while let out = framer.next() {
                switch out {
                case .frame(let frame): one(frame)
                case .fatal: break streaming
                }
            }
            framer.compactIfWorthIt()
            precondition(framer.pendingBytes <= bytes.count, "the framer holds more bytes than it was given")
        }
        return n
    }

    static func jwt(_ bytes: [UInt8]) -> Int {
        let text = String(decoding: bytes, as: UTF8.self)
        var n = 0
        if let token = try? CompactJWT(text) {
            _ = token.algorithm
            _ = token.keyID
            _ = token.user(origin: .decodedToken)
            _ = token.claimAttributes()
            n += 1
        }
        // What the normaliser does with a header value that may hold a token.
        let redactor = Redactor(policy: RedactionPolicy())
        var notes = Redactor.Notes()
        if let redacted = redactor.redact(text, at: { "http.request.header.authorization" }, &notes) {
            precondition(!notes.isEmpty, "a value was redacted without a note of what was removed")
            n += 1
            // Redacting twice removes nothing more.
            var again = Redactor.Notes()
            precondition(redactor.redact(redacted, at: { "again" }, &again) == nil || !again.removed.isEmpty)
        }
        _ = redactor.redact(bytes: bytes, at: { "bytes" }, &notes)
        if WorkloadIdentity.xfccClient(text) != nil { n += 1 }
        if WorkloadIdentity.embeddedSPIFFEID(text) != nil { n += 1 }
        if WorkloadIdentity.spiffeID(text[...]) != nil { n += 1 }
        if TraceParent(text) != nil { n += 1 }
        return n
    }

    /// The first byte picks the reader; the rest is its input.
    static func segment(_ input: [UInt8]) -> Int {
        guard let mode = input.first else { return 0 }
        let bytes = Array(input.dropFirst())
        switch mode % 4 {
        case 0:
            // A whole sealed segment file, as the store opens it.
            let path = scratchFile()
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return 0 }
            defer { unlink(path) }
            guard let reader = try? SegmentReader(path: path, sealed: true) else { return 0 }
            // The index is checked lazily, section by section: look up what a query would, hostile bytes or not.
            _ = try? reader.checkIndex()
            var looked = 0
            for (field, key) in [
                (IndexField.user, Array("alice".utf8)), (.service, Array("orders".utf8)),
                (.traceID, [UInt8](repeating: 0, count: 16)), (.group, []),
            ] {
                if let ordinals = try? reader.ordinals(field, key: key) {
                    precondition(
                        ordinals.allSatisfy { $0 < reader.recordCount }, "the index named a record past the end")
                    looked += ordinals.count
                }
            }
            // Every block's rows straight from its columns (what verify hashes) against decoding and encoding
            // the events: the same bytes, or the same class of error.
            for b in reader.blocks.indices {
                let fast = Result { () throws(LogFormatError) in try reader.blockPayload(b) }
                let slow = Result { () throws(LogFormatError) in try reader.blockPayloadViaEvents(b) }
                switch (fast, slow) {
                case (.success(let x), .success(let y)):
                    precondition(x == y, "block \(b): the transcoder's rows differ")
                case (.failure(let x), .failure(let y)):
                    precondition(
                        x.code == y.code, "block \(b): the transcoder fails with \(x.code), the decoder \(y.code)")
                default: preconditionFailure("block \(b): the transcoder and the decoder disagree: \(fast) / \(slow)")
                }
            }
            guard let records = try? reader.scan() else { return looked }
            for r in records.prefix(8) {
                guard let ordinals = try? reader.ordinals(.traceID, key: r.event.traceID.bytes) else { continue }
                precondition(
                    ordinals.allSatisfy { $0 < reader.recordCount }, "a trace look-up named a record past the end")
            }
            return records.count
        case 1:
            // Recovery of an unsealed segment: walk the blocks and decode every record.
            var n = 0
            _ = bytes.withUnsafeBytes { raw in
                SegmentScanner.scan(raw, decode: true) { (_, _, record) throws(LogFormatError) in
                    _ = try RecordCodec.decode(record)
                    n += 1
                }
            }
            return n
        case 2:
            guard let event = try? RecordCodec.decode(bytes) else { return 0 }
            checkRecordRoundTrip([event])
            return 1
        default:
            guard let catalog = try? Catalog.decode(bytes) else { return 0 }
            // A catalog read back must encode to what decodes to the same catalog again.
            let again = try? Catalog.decode(catalog.encoded())
            precondition(again?.encoded() == catalog.encoded(), "a decoded catalog does not round-trip")
            return 1
        }
    }

    /// A per-process scratch file on a RAM disk when there is one.
    static func scratchFile() -> String {
        let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        return dir + "/auditfuzz-\(getpid()).seg"
    }
}
