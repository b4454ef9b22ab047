import Foundation
import LogFormat
import OTLPProto
import PropertyBased
import Synchronization
import Testing

@testable import OTLPBridge
@testable import SyntheticTraffic

/// The wire decoder against the path it replaces (swift-protobuf's decoder, then `OTLPMapping`): on every input
/// both refuse, or both give the same events and the same rejected items.
@Suite struct OTLPWireDecoderTests {
    enum Signal: CaseIterable { case traces, logs }

    /// The old path's answer, nil when swift-protobuf refuses the bytes.
    static func reference(_ bytes: [UInt8], _ signal: Signal) -> OTLPMapping.Imported? {
        switch signal {
        case .traces: (try? OTLPTraceRequest(serializedBytes: bytes)).map { OTLPMapping.events(from: $0) }
        case .logs: (try? OTLPLogsRequest(serializedBytes: bytes)).map { OTLPMapping.events(from: $0) }
        }
    }

    static func decoded(_ bytes: [UInt8], _ signal: Signal) -> Result<OTLPMapping.Imported, OTLPWireError> {
        switch signal {
        case .traces: Result { () throws(OTLPWireError) in try OTLPWireDecoder.traces(protobuf: bytes) }
        case .logs: Result { () throws(OTLPWireError) in try OTLPWireDecoder.logs(protobuf: bytes) }
        }
    }

    /// Events compare with `==`, except that a NaN attribute is never equal to itself: then the record bytes and
    /// the full dump (every field, NaN printed as such) must agree.
    static func same(_ a: AuditEvent, _ b: AuditEvent) -> Bool {
        if a == b { return true }
        var da = ""
        var db = ""
        dump(a, to: &da)
        dump(b, to: &db)
        return da == db && RecordCodec.encode(a) == RecordCodec.encode(b)
    }

    /// Checks agreement; returns whether the bytes were accepted (nil when the two disagree).
    @discardableResult
    static func expectAgreement(
        _ bytes: [UInt8], _ signal: Signal, _ what: @autoclosure () -> String = "",
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> Bool? {
        let old = reference(bytes, signal)
        switch (old, decoded(bytes, signal)) {
        case (nil, .failure): return false
        case (let old?, .success(let new)):
            let events = old.events.count == new.events.count && zip(old.events, new.events).allSatisfy(same)
            #expect(events, "events differ \(what())", sourceLocation: sourceLocation)
            #expect(old.rejected == new.rejected, "rejected items differ \(what())", sourceLocation: sourceLocation)
            return events && old.rejected == new.rejected ? true : nil
        case (nil, .success(let new)):
            Issue.record(
                "swift-protobuf refuses, the wire decoder accepts \(new.events.count) events \(what())",
                sourceLocation: sourceLocation)
            return nil
        case (_?, .failure(let error)):
            Issue.record(
                "swift-protobuf accepts, the wire decoder refuses: \(error) \(what())", sourceLocation: sourceLocation)
            return nil
        }
    }

    // MARK: Real payloads

    static let corpus: [(name: String, bytes: [UInt8])] = {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus/otlp-proto")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().compactMap { name in
            (try? Data(contentsOf: dir.appendingPathComponent(name))).map { (name, Array($0)) }
        }
    }()

    @Test func everyPayloadOfTheSDKCorpusDecodesTheSame() throws {
        #expect(Self.corpus.contains { $0.name.hasPrefix("python-sdk-traces") })
        #expect(Self.corpus.contains { $0.name.hasPrefix("python-sdk-logs") })
        for (name, bytes) in Self.corpus {
            let signal: Signal = name.contains("logs") ? .logs : .traces
            #expect(Self.expectAgreement(bytes, signal, name) == true, "\(name) was refused")
            let events = try Self.decoded(bytes, signal).get().events
            #expect(!events.isEmpty, "\(name) gave no events")
        }
    }

    @Test func generatedTrafficDecodesTheSame() throws {
        var g = TrafficGenerator(seed: 11)
        let spans = g.nextEvents(3_000).filter { $0.kind == .span }
        let request = OTLPMapping.traceRequest(from: spans)
        #expect(request.resourceSpans.count > 10)
        let bytes: [UInt8] = try request.serializedBytes()
        #expect(Self.expectAgreement(bytes, .traces) == true)
        #expect(try OTLPWireDecoder.traces(protobuf: bytes).events.count == spans.count)
    }

    /// Access events exported as log records (`auditq --format otlp`) come back as the same access events, with the
    /// service they named, as swift-protobuf's path brings them; a damaged carrier attribute is rejected by both.
    @Test func accessEventsAsLogRecordsDecodeTheSame() throws {
        let events = AccessLogRecordTests.accessEvents()
        let bytes: [UInt8] = try OTLPMapping.logsRequest(from: events).serializedBytes()
        #expect(Self.expectAgreement(bytes, .logs) == true)
        let imported = try OTLPWireDecoder.logs(protobuf: bytes)
        #expect(imported.rejected.isEmpty)
        #expect(imported.events.count == events.count)
        #expect(imported.events.allSatisfy { $0.kind == .access })
        #expect(Set(imported.events.map(\.service)) == Set(events.map(\.service)))
        var request = OTLPMapping.logsRequest(from: Array(events.prefix(1)))
        request.resourceLogs[0].scopeLogs[0].logRecords[0].attributes.append(
            .with {
                $0.key = "auditq.access.http.status_code"
                $0.value = .with { $0.stringValue = "200" }
            })
        let damaged: [UInt8] = try request.serializedBytes()
        #expect(Self.expectAgreement(damaged, .logs) == true)
        #expect(try OTLPWireDecoder.logs(protobuf: damaged).rejected.count == 1)
    }

    /// Every prefix of every corpus payload, and every byte of it replaced by values that change its meaning
    /// (a continuation bit, another wire type, a longer length, zero): the damage lands in tags, lengths,
    /// varints, ids and strings at every depth.
    @Test func everyCutAndEveryDamagedByteOfTheCorpusIsJudgedTheSame() {
        var accepted = 0
        var refused = 0
        for (name, bytes) in Self.corpus {
            let signal: Signal = name.contains("logs") ? .logs : .traces
            var variants: [[UInt8]] = (0..<bytes.count).map { Array(bytes.prefix($0)) }
            for i in bytes.indices {
                for damage: (UInt8) -> UInt8 in [{ $0 ^ 0x80 }, { $0 ^ 0x07 }, { $0 &+ 1 }, { _ in 0 }, { _ in 0xFF }] {
                    var v = bytes
                    v[i] = damage(v[i])
                    variants.append(v)
                }
            }
            for v in variants {
                switch Self.expectAgreement(v, signal, name) {
                case true?: accepted += 1
                case false?: refused += 1
                case nil: break
                }
            }
        }
        // Damage must have produced both outcomes, or the comparison proved little.
        #expect(accepted > 100)
        #expect(refused > 100)
    }

    // MARK: Generated messages

    /// Counts over a property run, so it can show it met every case it claims to cover.
    final class Coverage: Sendable {
        let counts = Mutex<[String: Int]>([:])
        func note(_ what: String) { counts.withLock { $0[what, default: 0] += 1 } }
        subscript(what: String) -> Int { counts.withLock { $0[what] ?? 0 } }
    }

    @Test(arguments: Signal.allCases)
    func randomWireMessagesDecodeTheSame(signal: Signal) async {
        let coverage = Coverage()
        await propertyCheck(count: 400, input: Gen.uint64()) { seed in
            var w = RandomWire(seed: seed)
            let bytes = w.request(signal == .traces ? .traceRequest : .logsRequest)
            for feature in w.features { coverage.note(feature) }
            switch Self.expectAgreement(bytes, signal, "seed \(seed)") {
            case true?:
                coverage.note("accepted")
                if let r = Self.reference(bytes, signal) {
                    if !r.rejected.isEmpty { coverage.note("items rejected") }
                    if !r.events.isEmpty { coverage.note("events") }
                }
            case false?: coverage.note("refused")
            case nil: break
            }
        }
        for feature in [
            "accepted", "refused", "events", "items rejected", "unknown field", "unknown group", "wrong wire type",
            "repeated singular", "padded varint", "invalid UTF-8", "maximal varint", "long string", "string", "bool",
            "int", "double", "array", "kvlist", "bytes",
        ] {
            #expect(coverage[feature] > 0, "no generated message had: \(feature)")
        }
    }

    // MARK: Named cases

    /// A hand-built request around one span's fields (or one log record's), to place damage exactly.
    static func request(_ signal: Signal, item: [UInt8]) -> [UInt8] {
        let scope = W.field(2, item)
        let resource = W.field(2, scope)
        return W.field(1, resource)
    }

    static let goodSpan: [UInt8] =
        W.field(1, [UInt8](repeating: 1, count: 16)) + W.field(2, [UInt8](repeating: 2, count: 8))
        + W.field(5, Array("GET /".utf8))

    struct Bad: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var code: OTLPWireError.Code
        var testDescription: String { name }
    }

    static let bad: [Bad] = [
        Bad(name: "truncated varint", bytes: request(.traces, item: goodSpan + [0x30, 0x80]), code: .malformed),
        Bad(
            name: "varint of 11 bytes",
            bytes: request(.traces, item: goodSpan + [0x30] + [UInt8](repeating: 0x80, count: 10) + [0]),
            code: .malformed),
        Bad(name: "length past the end", bytes: [0x0A, 0x05, 0x12, 0x00], code: .truncated),
        Bad(name: "length of 2 GiB", bytes: [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x07], code: .malformed),
        Bad(name: "wire type 6", bytes: request(.traces, item: goodSpan + [0x0E]), code: .malformed),
        Bad(name: "wire type 7", bytes: [0x0F], code: .malformed),
        Bad(name: "field number 0", bytes: request(.traces, item: goodSpan + [0x00, 0x01]), code: .malformed),
        Bad(name: "end group never started", bytes: request(.traces, item: goodSpan + [0x1C]), code: .malformed),
        Bad(
            name: "group never closed", bytes: request(.traces, item: goodSpan + [0xA3, 0x01, 0x08, 0x01]),
            code: .truncated),
        Bad(
            name: "group closed by another number", bytes: request(.traces, item: goodSpan + [0xA3, 0x01, 0xAC, 0x01]),
            code: .malformed),
        Bad(name: "fixed64 cut short", bytes: request(.traces, item: goodSpan + [0x39, 1, 2, 3]), code: .truncated),
        Bad(name: "fixed32 cut short", bytes: request(.traces, item: goodSpan + [0x85, 0x01, 1]), code: .truncated),
        Bad(name: "tag of 6 bytes", bytes: [0x88, 0x80, 0x80, 0x80, 0x80, 0x00], code: .malformed),
        Bad(
            name: "span name not UTF-8", bytes: request(.traces, item: goodSpan + W.field(5, [0xFF, 0xFE])),
            code: .invalidUTF8),
        Bad(
            name: "attribute key not UTF-8",
            bytes: request(.traces, item: goodSpan + W.field(9, W.field(1, [0xC0, 0x80]))), code: .invalidUTF8),
        Bad(
            name: "long attribute key not UTF-8 (the key table's path)",
            bytes: request(
                .traces, item: goodSpan + W.field(9, W.field(1, Array("http.response.".utf8) + [0xC0, 0x80]))),
            code: .invalidUTF8),
        Bad(
            name: "a lone surrogate in a log body",
            bytes: request(.logs, item: W.field(5, W.field(1, [0xED, 0xA0, 0x80]))), code: .invalidUTF8),
    ]

    @Test(arguments: bad)
    func malformedInputIsRefusedWithItsReason(_ bad: Bad) throws {
        let signal: Signal = bad.name.contains("log") ? .logs : .traces
        #expect(Self.expectAgreement(bad.bytes, signal) == false)
        guard case .failure(let error) = Self.decoded(bad.bytes, signal) else { return }
        #expect(error.code == bad.code, "\(error)")
        #expect(error.offset >= 0 && error.offset < bad.bytes.count)
    }

    /// The events' array is sized once from the request's framing (grown by doubling, 600 spans would leave room
    /// for 1,024), across resources and scopes and past fields of other numbers; a count of items that will all
    /// be refused reserves no more than the limit.
    @Test func theEventsAreSizedOnceFromTheCountOfItems() throws {
        let spans = [UInt8](repeating: 0, count: 200).flatMap { _ in W.field(2, Self.goodSpan) }
        let scope = W.field(1, W.field(1, Array("lib".utf8))) + spans
        let resource = W.field(2, scope) + W.field(2, scope) + W.field(3, Array("https://schema".utf8))
        let bytes = W.field(1, resource) + W.field(9, [1, 2, 3]) + W.field(1, W.field(2, scope))
        #expect(Self.expectAgreement(bytes, .traces) == true)
        let imported = try OTLPWireDecoder.traces(protobuf: bytes)
        #expect(imported.events.count == 600)
        #expect(imported.events.capacity < 700, "capacity \(imported.events.capacity)")

        let empties = W.field(1, W.field(2, (0..<100_000).reduce(into: [UInt8]()) { s, _ in s += [0x12, 0x00] }))
        let all = try OTLPWireDecoder.traces(protobuf: empties)
        #expect(all.events.isEmpty && all.rejected.count == 100_000)
        #expect(all.events.capacity < OTLPWireDecoder.reservedEventsLimit * 2, "capacity \(all.events.capacity)")
    }

    /// `maxItems`: a request of exactly that many spans or log records (counted over resources and scopes)
    /// decodes; one more is refused as too many, naming the count; damage before the limit is still malformed.
    @Test(arguments: Signal.allCases)
    func moreItemsThanTheLimitAreRefusedBeforeDecoding(signal: Signal) throws {
        let scope = (0..<3).flatMap { _ in W.field(2, signal == .traces ? Self.goodSpan : []) }
        let bytes = W.field(1, W.field(2, scope) + W.field(2, scope)) + W.field(1, W.field(2, scope))
        func decode(_ bytes: [UInt8], _ limit: Int) throws(OTLPWireError) -> OTLPMapping.Imported {
            signal == .traces
                ? try OTLPWireDecoder.traces(protobuf: bytes, maxItems: limit)
                : try OTLPWireDecoder.logs(protobuf: bytes, maxItems: limit)
        }
        #expect(try decode(bytes, 9).events.count == 9)
        let error = #expect(throws: OTLPWireError.self) { try decode(bytes, 8) }
        #expect(error?.code == .tooManyItems)
        #expect(error?.message == "the request holds 9 items, more than the limit of 8 per request")
        let damaged = W.field(1, W.field(2, [0x0F] + W.field(2, [])))
        #expect((#expect(throws: OTLPWireError.self) { try decode(damaged, 0) })?.code == .malformed)
    }

    // MARK: The value limit

    typealias KeyValue = Opentelemetry_Proto_Common_V1_KeyValue
    typealias AnyValue = Opentelemetry_Proto_Common_V1_AnyValue

    /// What `maxValues` counts, from swift-protobuf's tree of the request: attributes at every level, the
    /// elements of array and key-value list values inside them and in log bodies, span events and links.
    static func values(_ kvs: [KeyValue]) -> Int { kvs.count + kvs.reduce(0) { $0 + values($1.value) } }
    static func values(_ v: AnyValue) -> Int {
        switch v.value {
        case .arrayValue(let a)?: a.values.count + a.values.reduce(0) { $0 + values($1) }
        case .kvlistValue(let l)?: values(l.values)
        default: 0
        }
    }
    static func values(_ bytes: [UInt8], _ signal: Signal) -> Int? {
        switch signal {
        case .traces:
            guard let r = try? OTLPTraceRequest(serializedBytes: bytes) else { return nil }
            return r.resourceSpans.reduce(0) { n, rs in
                n + values(rs.resource.attributes)
                    + rs.scopeSpans.reduce(0) { n, ss in
                        n + values(ss.scope.attributes)
                            + ss.spans.reduce(0) { n, s in
                                n + values(s.attributes) + s.events.count + s.links.count
                                    + s.events.reduce(0) { $0 + values($1.attributes) }
                                    + s.links.reduce(0) { $0 + values($1.attributes) }
                            }
                    }
            }
        case .logs:
            guard let r = try? OTLPLogsRequest(serializedBytes: bytes) else { return nil }
            return r.resourceLogs.reduce(0) { n, rl in
                n + values(rl.resource.attributes)
                    + rl.scopeLogs.reduce(0) { n, sl in
                        n + values(sl.scope.attributes)
                            + sl.logRecords.reduce(0) { $0 + values($1.attributes) + values($1.body) }
                    }
            }
        }
    }

    static func decode(_ bytes: [UInt8], _ signal: Signal, maxValues: Int) throws(OTLPWireError)
        -> OTLPMapping.Imported
    {
        signal == .traces
            ? try OTLPWireDecoder.traces(protobuf: bytes, maxValues: maxValues)
            : try OTLPWireDecoder.logs(protobuf: bytes, maxValues: maxValues)
    }

    /// A request with a value of every kind the limit counts, at every level.
    static func everyKindOfValue(_ signal: Signal) throws -> [UInt8] {
        func kv(_ key: String, _ value: AnyValue = AnyValue()) -> KeyValue {
            var a = KeyValue()
            a.key = key
            a.value = value
            return a
        }
        func string(_ s: String) -> AnyValue {
            var v = AnyValue()
            v.stringValue = s
            return v
        }
        var list = AnyValue()
        list.kvlistValue.values = [kv("a", string("1")), kv("b")]
        var array = AnyValue()
        array.arrayValue.values = [string("x"), AnyValue(), list, string("y")]
        var resource = Opentelemetry_Proto_Resource_V1_Resource()
        resource.attributes = [kv("service.name", string("checkout")), kv("host", array)]
        var scope = Opentelemetry_Proto_Common_V1_InstrumentationScope()
        scope.attributes = [kv("scope.key", list)]
        switch signal {
        case .traces:
            var span = Opentelemetry_Proto_Trace_V1_Span()
            span.traceID = Data(repeating: 1, count: 16)
            span.spanID = Data(repeating: 2, count: 8)
            span.attributes = [kv("k1", string("v")), kv("k2", array), kv("k3")]
            var event = Opentelemetry_Proto_Trace_V1_Span.Event()
            event.attributes = [kv("e", list)]
            var link = Opentelemetry_Proto_Trace_V1_Span.Link()
            link.traceID = Data(repeating: 3, count: 16)
            link.spanID = Data(repeating: 4, count: 8)
            link.attributes = [kv("l1"), kv("l2", array)]
            span.events = [event, Opentelemetry_Proto_Trace_V1_Span.Event()]
            span.links = [link]
            var ss = Opentelemetry_Proto_Trace_V1_ScopeSpans()
            ss.scope = scope
            ss.spans = [span, span]
            var rs = Opentelemetry_Proto_Trace_V1_ResourceSpans()
            rs.resource = resource
            rs.scopeSpans = [ss]
            var request = OTLPTraceRequest()
            request.resourceSpans = [rs]
            return try request.serializedBytes()
        case .logs:
            var record = Opentelemetry_Proto_Logs_V1_LogRecord()
            record.body = array
            record.attributes = [kv("k1", list), kv("k2")]
            var sl = Opentelemetry_Proto_Logs_V1_ScopeLogs()
            sl.scope = scope
            sl.logRecords = [record, record]
            var rl = Opentelemetry_Proto_Logs_V1_ResourceLogs()
            rl.resource = resource
            rl.scopeLogs = [sl]
            var request = OTLPLogsRequest()
            request.resourceLogs = [rl]
            return try request.serializedBytes()
        }
    }

    /// `maxValues`: a request holding exactly that many values decodes as without the limit; one fewer allowed
    /// refuses it as too many, naming the limit, wherever the value over it lies.
    @Test(arguments: Signal.allCases)
    func moreValuesThanTheLimitAreRefused(signal: Signal) throws {
        let bytes = try Self.everyKindOfValue(signal)
        let count = try #require(Self.values(bytes, signal))
        #expect(count == (signal == .traces ? 8 + 3 + 2 * 23 : 8 + 3 + 2 * 10))
        let unbounded = try Self.decode(bytes, signal, maxValues: .max)
        let atLimit = try Self.decode(bytes, signal, maxValues: count)
        #expect(atLimit.events == unbounded.events && atLimit.rejected == unbounded.rejected)
        for limit in [0, 1, count / 2, count - 1] {
            let error = #expect(throws: OTLPWireError.self) { try Self.decode(bytes, signal, maxValues: limit) }
            #expect(error?.code == .tooManyValues && error?.isOverRequestLimit == true)
            #expect(error?.message.contains("more than \(limit) attributes, array and list values") == true)
        }
    }

    /// The count is swift-protobuf's tree's wherever a value is not replaced by a later one of its field: random
    /// wire messages (unknown fields, merges, every value kind) are refused one value under it, and taken at it
    /// when they hold no value a later one replaces.
    @Test(arguments: Signal.allCases)
    func randomWireMessagesAreCountedAsTheirTreeHolds(signal: Signal) async {
        await propertyCheck(count: 300, input: Gen.uint64()) { seed in
            var w = RandomWire(seed: seed)
            let bytes = w.request(signal == .traces ? .traceRequest : .logsRequest)
            guard let count = Self.values(bytes, signal), count > 0 else { return }
            let under = Result { () throws(OTLPWireError) in try Self.decode(bytes, signal, maxValues: count - 1) }
            guard case .failure(let error) = under else {
                Issue.record("seed \(seed): taken with \(count) values and a limit of \(count - 1)")
                return
            }
            // Malformed input is refused for its damage, wherever that lies before the value over the limit.
            #expect(error.code == .tooManyValues || Self.reference(bytes, signal) == nil, "seed \(seed): \(error)")
        }
    }

    /// Realistic traffic is counted exactly: taken at its count, refused one under it.
    @Test func generatedTrafficIsCountedExactly() throws {
        var g = TrafficGenerator(seed: 12)
        let spans = g.nextEvents(2_000).filter { $0.kind == .span }
        let bytes: [UInt8] = try OTLPMapping.traceRequest(from: spans).serializedBytes()
        let count = try #require(Self.values(bytes, .traces))
        #expect(count > spans.count * 2)
        #expect(try Self.decode(bytes, .traces, maxValues: count).events.count == spans.count)
        #expect(throws: OTLPWireError.self) { try Self.decode(bytes, .traces, maxValues: count - 1) }
    }

    /// Arrays nested `depth` times in one attribute value: both decoders allow the same depth and no more.
    @Test func nestingIsBoundedAtTheSameDepthAsSwiftProtobuf() throws {
        func nested(_ depth: Int) -> [UInt8] {
            var value = W.field(1, Array("leaf".utf8))
            for _ in 0..<depth { value = W.field(5, W.field(1, value)) }
            return Self.request(
                .traces, item: Self.goodSpan + W.field(9, W.field(1, Array("k".utf8)) + W.field(2, value)))
        }
        var deepestAccepted: Int?
        for depth in 40...60 {
            let bytes = nested(depth)
            let judged: Bool? = Self.expectAgreement(bytes, .traces, "depth \(depth)")
            guard let accepted = judged else { continue }
            if accepted {
                deepestAccepted = depth
            } else {
                guard case .failure(let error) = Self.decoded(bytes, .traces) else { continue }
                #expect(error.code == .depthLimit)
            }
        }
        let deepest = try #require(deepestAccepted)
        #expect(deepest < 60, "the limit was never reached")
        // Unknown groups count as nesting too.
        var group: [UInt8] = [0x08, 0x01]
        for _ in 0..<120 { group = [0xA3, 0x01] + group + [0xA4, 0x01] }
        #expect(Self.expectAgreement(Self.request(.traces, item: Self.goodSpan + group), .traces) == false)
    }

    /// Repeated singular fields merge as protobuf says, in any order: the resource after the spans and twice,
    /// a status split in two, an attribute's value sent twice (arrays and lists extend, scalars replace), a log
    /// body that is present but empty.
    @Test func repeatedSingularFieldsMergeAsProtobufSays() throws {
        let kv = { (k: String, v: [UInt8]) in W.field(1, Array(k.utf8)) + W.field(2, v) }
        let array = { (items: [[UInt8]]) in W.field(5, items.map { W.field(1, $0) }.reduce([], +)) }
        let attribute =
            kv("user.roles", array([W.field(1, Array("a".utf8))]))
            + W.field(2, array([W.tag(3, 0) + W.varint(7)]))
        let string = W.field(1, Array("x".utf8))
        let replaced = kv("k", string) + W.field(2, array([string])) + W.field(2, W.tag(3, 0) + W.varint(1))
        let span =
            Self.goodSpan + W.field(9, attribute) + W.field(9, replaced) + W.field(15, W.field(2, Array("half".utf8)))
            + W.field(15, W.tag(3, 0) + W.varint(2)) + W.tag(6, 0) + W.varint(2) + W.tag(6, 0) + W.varint(3)
        let resource = { (name: String) in W.field(1, W.field(1, kv("service.name", W.field(1, Array(name.utf8))))) }
        let scopeSpans = W.field(2, W.field(2, span) + W.field(1, W.field(1, Array("scope".utf8))))
        let bytes = W.field(1, resource("first") + scopeSpans + resource("second") + W.field(3, Array("s".utf8)))
        #expect(Self.expectAgreement(bytes, .traces) == true)
        let e = try #require(try OTLPWireDecoder.traces(protobuf: bytes).events.first)
        #expect(e.attributes[0].value == .array([.string("a"), .int(7)]))
        #expect(e.attributes[1].value == .int(1))
        #expect(e.statusCode == .error && e.statusMessage == "half")
        #expect(e.spanKind == .client)
        #expect(e.resourceAttributes.count == 2 && e.service == "first")
        #expect(e.scope.name == "scope" && e.resourceSchemaURL == "s")

        let emptyBody = Self.request(.logs, item: W.field(5, []))
        #expect(Self.expectAgreement(emptyBody, .logs) == true)
        #expect(try OTLPWireDecoder.logs(protobuf: emptyBody).events.first?.body == .empty)
        let noBody = Self.request(.logs, item: W.field(3, Array("INFO".utf8)))
        #expect(Self.expectAgreement(noBody, .logs) == true)
        #expect(try OTLPWireDecoder.logs(protobuf: noBody).events.first?.body == nil)
    }

    /// Every AnyValue kind at its extremes, built with swift-protobuf and read back by both.
    @Test func extremeValuesOfEveryKindDecodeTheSame() throws {
        let values: [AttributeValue] = [
            .empty, .string(""), .string(String(repeating: "é", count: 100_000)), .bool(true), .bool(false),
            .int(.min), .int(.max), .int(0), .double(.nan), .double(-0.0), .double(.infinity),
            .double(.leastNonzeroMagnitude), .bytes([]), .bytes([UInt8](repeating: 0xFF, count: 70_000)), .array([]),
            .keyValueList([]), .array([.array([.keyValueList([Attribute("", .bytes([0]))])])]),
        ]
        var span = OTLPSpan()
        span.traceID = Data(repeating: 0xFF, count: 16)
        span.spanID = Data(repeating: 0xFF, count: 8)
        span.startTimeUnixNano = .max
        span.endTimeUnixNano = .max
        span.flags = .max
        span.droppedAttributesCount = .max
        span.droppedEventsCount = .max
        span.droppedLinksCount = .max
        span.kind = .consumer
        span.attributes = values.enumerated().map { OTLPMapping.keyValue(Attribute("v\($0.offset)", $0.element)) }
        var request = OTLPTraceRequest()
        var rs = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        var ss = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        ss.spans = [span, OTLPSpan()]
        rs.scopeSpans = [ss]
        request.resourceSpans = [rs, Opentelemetry_Proto_Trace_V1_ResourceSpans()]
        let bytes: [UInt8] = try request.serializedBytes()
        #expect(Self.expectAgreement(bytes, .traces) == true)
        let imported = try OTLPWireDecoder.traces(protobuf: bytes)
        #expect(imported.events.count == 1 && imported.rejected.count == 1)
        #expect(Self.expectAgreement([], .traces) == true)
        #expect(Self.expectAgreement([], .logs) == true)
    }
}

/// A minimal protobuf writer for hand-built and random messages.
enum W {
    static func varint(_ v: UInt64, padding: Int = 0) -> [UInt8] {
        var out: [UInt8] = []
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        // Non-minimal encodings (extra 0x80 ... 0x00 groups) are legal up to 10 bytes.
        if padding > 0 {
            out.append(UInt8(v) | 0x80)
            for _ in 1..<padding { out.append(0x80) }
            out.append(0)
        } else {
            out.append(UInt8(v))
        }
        return out
    }

    static func tag(_ field: Int, _ wire: UInt8) -> [UInt8] { varint(UInt64(field) << 3 | UInt64(wire)) }

    /// A length-delimited field.
    static func field(_ number: Int, _ body: [UInt8]) -> [UInt8] { tag(number, 2) + varint(UInt64(body.count)) + body }
}

/// Random OTLP wire messages from a seed: every field of the schema zero, one or more times, in schema or
/// shuffled order, with unknown fields and groups, known fields under another wire type, padded varints, edge
/// values, ids of every length, and now and then a string that is not UTF-8.
struct RandomWire {
    enum Message {
        case traceRequest, logsRequest, resourceSpans, resourceLogs, resource, scopeSpans, scopeLogs, scope, span
        case event, link, status, logRecord, keyValue, anyValue, arrayValue, keyValueList
    }

    indirect enum Kind {
        case string, key
        case id(Int)
        case varint, fixed32, fixed64
        case message(Message)
    }

    struct Field {
        var number: Int
        var kind: Kind
        var repeated = false
    }

    var state: UInt64
    var depth = 0
    private(set) var features: Set<String> = []

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    static func schema(_ m: Message) -> [Field] {
        switch m {
        case .traceRequest: [Field(number: 1, kind: .message(.resourceSpans), repeated: true)]
        case .logsRequest: [Field(number: 1, kind: .message(.resourceLogs), repeated: true)]
        case .resourceSpans:
            [
                Field(number: 1, kind: .message(.resource)),
                Field(number: 2, kind: .message(.scopeSpans), repeated: true), Field(number: 3, kind: .string),
            ]
        case .resourceLogs:
            [
                Field(number: 1, kind: .message(.resource)),
                Field(number: 2, kind: .message(.scopeLogs), repeated: true), Field(number: 3, kind: .string),
            ]
        case .resource:
            [Field(number: 1, kind: .message(.keyValue), repeated: true), Field(number: 2, kind: .varint)]
        case .scopeSpans:
            [
                Field(number: 1, kind: .message(.scope)), Field(number: 2, kind: .message(.span), repeated: true),
                Field(number: 3, kind: .string),
            ]
        case .scopeLogs:
            [
                Field(number: 1, kind: .message(.scope)),
                Field(number: 2, kind: .message(.logRecord), repeated: true), Field(number: 3, kind: .string),
            ]
        case .scope:
            [
                Field(number: 1, kind: .string), Field(number: 2, kind: .string),
                Field(number: 3, kind: .message(.keyValue), repeated: true), Field(number: 4, kind: .varint),
            ]
        case .span:
            [
                Field(number: 1, kind: .id(16)), Field(number: 2, kind: .id(8)), Field(number: 3, kind: .string),
                Field(number: 4, kind: .id(8)), Field(number: 5, kind: .string), Field(number: 6, kind: .varint),
                Field(number: 7, kind: .fixed64), Field(number: 8, kind: .fixed64),
                Field(number: 9, kind: .message(.keyValue), repeated: true), Field(number: 10, kind: .varint),
                Field(number: 11, kind: .message(.event), repeated: true), Field(number: 12, kind: .varint),
                Field(number: 13, kind: .message(.link), repeated: true), Field(number: 14, kind: .varint),
                Field(number: 15, kind: .message(.status)), Field(number: 16, kind: .fixed32),
            ]
        case .event:
            [
                Field(number: 1, kind: .fixed64), Field(number: 2, kind: .string),
                Field(number: 3, kind: .message(.keyValue), repeated: true), Field(number: 4, kind: .varint),
            ]
        case .link:
            [
                Field(number: 1, kind: .id(16)), Field(number: 2, kind: .id(8)), Field(number: 3, kind: .string),
                Field(number: 4, kind: .message(.keyValue), repeated: true), Field(number: 5, kind: .varint),
                Field(number: 6, kind: .fixed32),
            ]
        case .status: [Field(number: 2, kind: .string), Field(number: 3, kind: .varint)]
        case .logRecord:
            [
                Field(number: 1, kind: .fixed64), Field(number: 11, kind: .fixed64), Field(number: 2, kind: .varint),
                Field(number: 3, kind: .string), Field(number: 5, kind: .message(.anyValue)),
                Field(number: 6, kind: .message(.keyValue), repeated: true), Field(number: 7, kind: .varint),
                Field(number: 8, kind: .fixed32), Field(number: 9, kind: .id(16)), Field(number: 10, kind: .id(8)),
                Field(number: 12, kind: .string),
            ]
        case .keyValue: [Field(number: 1, kind: .key), Field(number: 2, kind: .message(.anyValue))]
        case .anyValue: []  // a oneof: written by `anyValue()`
        case .arrayValue: [Field(number: 1, kind: .message(.anyValue), repeated: true)]
        case .keyValueList: [Field(number: 1, kind: .message(.keyValue), repeated: true)]
        }
    }

    mutating func request(_ m: Message) -> [UInt8] { message(m) }

    mutating func message(_ m: Message) -> [UInt8] {
        depth += 1
        defer { depth -= 1 }
        if m == .anyValue { return anyValue() }
        var fields: [[UInt8]] = []
        for f in Self.schema(m) {
            var count: Int
            if f.repeated {
                // Fewer children further down, so messages stay small.
                count = below(depth < 4 ? 4 : 3)
            } else {
                count = below(10) < 3 ? 0 : 1
                if chance(8) {
                    count = 2
                    features.insert("repeated singular")
                }
            }
            for _ in 0..<count { fields.append(field(f.number, f.kind)) }
        }
        if chance(10) {
            fields.append(unknownField())
        }
        if chance(5), let f = Self.schema(m).randomElement(using: &self) {
            fields.append(wrongWire(f.number, f.kind))
        }
        if chance(30) { fields.shuffle(using: &self) }
        return fields.reduce([], +)
    }

    mutating func anyValue() -> [UInt8] {
        var out: [UInt8] = []
        for _ in 0..<(chance(10) ? 2 : chance(10) ? 0 : 1) {
            let choice = depth > 9 ? below(5) : below(7)
            switch choice {
            case 0:
                features.insert("string")
                out += field(1, .string)
            case 1:
                features.insert("bool")
                out += W.tag(2, 0) + W.varint(chance(50) ? 0 : varintValue())
            case 2:
                features.insert("int")
                out += W.tag(3, 0) + W.varint(varintValue())
            case 3:
                features.insert("double")
                out += W.tag(4, 1) + fixed(8)
            case 4:
                features.insert("bytes")
                out += W.field(7, (0..<below(20)).map { _ in UInt8(truncatingIfNeeded: next()) })
            case 5:
                features.insert("array")
                out += W.field(5, message(.arrayValue))
            default:
                features.insert("kvlist")
                out += W.field(6, message(.keyValueList))
            }
        }
        if chance(5) { out += unknownField() }
        return out
    }

    mutating func field(_ number: Int, _ kind: Kind) -> [UInt8] {
        switch kind {
        case .string: return W.field(number, string())
        case .key:
            let keys = [
                "service.name", "user.id", "enduser.id", "user.email", "user.roles", "http.method", "http.target",
                "http.status_code", "url.path", "client.address", "guid:x-request-id", "peer", "",
                // Longer than a small string, so they go through the decoder's per-request key table: keys of
                // one length differing in one byte, and the longest key the table keeps and one past it.
                "http.response.status_code", "http.response.status_codf", "network.protocol.version",
                "user_agent.original", String(repeating: "k", count: 128), String(repeating: "k", count: 129),
            ]
            return W.field(number, chance(80) ? Array(keys[below(keys.count)].utf8) : string())
        case .id(let n):
            let length = chance(85) ? n : below(20)
            let zero = chance(5)
            return W.field(number, (0..<length).map { _ in zero ? 0 : UInt8(truncatingIfNeeded: next()) })
        case .varint: return W.tag(number, 0) + varint()
        case .fixed32: return W.tag(number, 5) + fixed(4)
        case .fixed64: return W.tag(number, 1) + fixed(8)
        case .message(let m): return W.field(number, message(m))
        }
    }

    mutating func varintValue() -> UInt64 {
        let edges: [UInt64] = [
            0, 1, 2, 3, 5, 6, 24, 25, 127, 128, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x1_0000_0000, .max, .max - 1,
            UInt64(bitPattern: -1), UInt64(bitPattern: Int64.min),
        ]
        let v = chance(70) ? edges[below(edges.count)] : next() >> UInt64(below(64))
        if v >= 1 << 63 { features.insert("maximal varint") }
        return v
    }

    mutating func varint() -> [UInt8] {
        let v = varintValue()
        let minimal = W.varint(v).count
        if minimal < 10 && chance(10) {
            features.insert("padded varint")
            return W.varint(v, padding: 1 + below(10 - minimal))
        }
        return W.varint(v)
    }

    mutating func fixed(_ n: Int) -> [UInt8] {
        let edges: [UInt64] = [0, .max, 0x7FF8_0000_0000_0000, 0x8000_0000_0000_0000, 0x7FF0_0000_0000_0000]
        let v = chance(40) ? edges[below(edges.count)] : next()
        return (0..<n).map { UInt8(truncatingIfNeeded: v >> UInt64(8 * $0)) }
    }

    mutating func string() -> [UInt8] {
        switch below(100) {
        case 0..<2:
            features.insert("invalid UTF-8")
            return [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80]][below(5)]
        case 2..<3:
            features.insert("long string")
            return [UInt8](repeating: 0x61, count: 20_000 + below(50_000))
        case 3..<20: return []
        default:
            let words = [
                "GET", "/api/v1/orders", "ünïcødé ✓", "spiffe://cluster.local/ns/a/sa/b", "orders", "𝄞", "a,b",
            ]
            return Array(words[below(words.count)].utf8)
        }
    }

    /// A field of a number no message here uses, under every wire type, groups included.
    mutating func unknownField() -> [UInt8] {
        let numbers = [17, 99, 1000, 4095, 536_870_911]
        let n = numbers[below(numbers.count)]
        switch below(5) {
        case 0:
            features.insert("unknown field")
            return W.tag(n, 0) + varint()
        case 1:
            features.insert("unknown field")
            return W.tag(n, 1) + fixed(8)
        case 2:
            features.insert("unknown field")
            return W.field(n, string())
        case 3:
            features.insert("unknown field")
            return W.tag(n, 5) + fixed(4)
        default:
            features.insert("unknown group")
            return W.tag(n, 3) + W.tag(1, 0) + varint() + W.field(2, string()) + W.tag(n, 4)
        }
    }

    /// A known field under a wire type it does not have: protobuf skips it as unknown.
    mutating func wrongWire(_ number: Int, _ kind: Kind) -> [UInt8] {
        features.insert("wrong wire type")
        switch kind {
        case .varint: return W.tag(number, 5) + fixed(4)
        case .fixed32, .fixed64: return W.tag(number, 0) + varint()
        default: return chance(50) ? W.tag(number, 0) + varint() : W.tag(number, 1) + fixed(8)
        }
    }
}

extension RandomWire: RandomNumberGenerator {}
