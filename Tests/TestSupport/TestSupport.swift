// Seeded test inputs shared by the test targets: random events, a quiet logger, a short SplitMix.
import Foundation
import LogFormat
import Logging
import SyntheticTraffic

public let quietLogger: Logger = {
    var l = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    l.logLevel = .critical
    return l
}()

/// The library's SplitMix64, with a shorter initialiser for building test inputs from a seed.
public typealias SplitMix = SplitMix64

extension SplitMix64 {
    public init(_ seed: UInt64) { self.init(seed: seed) }
}

/// Builds events covering every field and value type from a seed: empty, huge and non-ASCII values included.
public enum RandomEvents {
    public static let samples = [
        "", "a", "ümlaut", "日本語テキスト", "emoji 🔐🧾", "quote\"back\\slash", "nul\u{0}byte", "tab\tnew\nline",
    ]

    public static func string(_ g: inout SplitMix) -> String {
        switch g.next() % 10 {
        case 0: return ""
        case 1: return String(repeating: "x", count: Int(g.next() % 70_000))  // huge
        case 2, 3: return samples[Int(g.next() % UInt64(samples.count))]
        default:
            let n = Int(g.next() % 24)
            return String((0..<n).map { _ in Character(UnicodeScalar(UInt8(97 + g.next() % 26))) })
        }
    }

    public static func value(_ g: inout SplitMix, depth: Int = 0) -> AttributeValue {
        switch g.next() % (depth > 3 ? 6 : 8) {
        case 0: return .empty
        case 1: return .string(string(&g))
        case 2: return .bool(g.next() % 2 == 0)
        case 3: return .int(Int64(bitPattern: g.next()))
        case 4:
            let d = Double(bitPattern: g.next())
            return .double(d.isNaN ? 0.5 : d)
        case 5: return .bytes((0..<Int(g.next() % 40)).map { _ in UInt8(truncatingIfNeeded: g.next()) })
        case 6: return .array((0..<Int(g.next() % 4)).map { _ in value(&g, depth: depth + 1) })
        default: return .keyValueList(attributes(&g, max: 3, depth: depth + 1))
        }
    }

    public static func attributes(_ g: inout SplitMix, max: UInt64 = 6, depth: Int = 0) -> [Attribute] {
        (0..<Int(g.next() % (max + 1))).map { _ in Attribute(string(&g), value(&g, depth: depth)) }
    }

    public static func traceID(_ g: inout SplitMix) -> TraceID { TraceID(high: g.next(), low: g.next()) }

    public static func make(seed: UInt64) -> AuditEvent {
        var g = SplitMix(seed)
        let start = g.next() % 4_000_000_000_000_000_000
        var e = AuditEvent(
            kind: EventKind.allCases[Int(g.next() % 3)], startTimeUnixNano: start,
            endTimeUnixNano: g.next() % 5 == 0 ? start &- 5 : start &+ g.next() % 10_000_000_000,
            observedTimeUnixNano: g.next() % 2 == 0 ? 0 : g.next(), traceID: traceID(&g),
            spanID: SpanID(value: g.next()), parentSpanID: g.next() % 3 == 0 ? nil : SpanID(value: g.next()),
            traceState: g.next() % 4 == 0 ? "vendor=abc,other=1" : "", flags: UInt32(truncatingIfNeeded: g.next()),
            spanKind: SpanKind.allCases[Int(g.next() % 6)], name: string(&g), service: "svc-\(g.next() % 7)",
            source: EventSource.allCases[Int(g.next() % 4)], statusCode: StatusCode.allCases[Int(g.next() % 3)],
            statusMessage: string(&g), severityNumber: UInt8(g.next() % 25), severityText: string(&g),
            eventName: string(&g))
        if g.next() % 2 == 0 {
            e.user = UserIdentity(
                subject: "user-\(g.next() % 50)", email: g.next() % 2 == 0 ? "u\(g.next() % 50)@example.com" : nil,
                groups: (0..<Int(g.next() % 3)).map { "group-\($0)" }, issuer: g.next() % 2 == 0 ? "https://idp" : nil,
                origin: IdentityOrigin.allCases[Int(g.next() % 6)],
                tokenFingerprint: g.next() % 2 == 0 ? (0..<32).map { _ in UInt8(truncatingIfNeeded: g.next()) } : nil)
        }
        if g.next() % 2 == 0 { e.workload = "spiffe://cluster.local/ns/n\(g.next() % 3)/sa/s\(g.next() % 3)" }
        if g.next() % 2 == 0 {
            e.http = HTTPFacts(
                method: g.next() % 5 == 0 ? nil : "GET", target: "/p/\(g.next() % 100)?q=\(string(&g))",
                route: g.next() % 2 == 0 ? "/p/{id}" : nil, statusCode: UInt16(g.next() % 600),
                clientAddress: g.next() % 2 == 0 ? "10.1.2.3" : nil)
        }
        if g.next() % 3 == 0 { e.body = value(&g) }
        e.attributes = attributes(&g, max: 10)
        e.droppedAttributesCount = UInt32(g.next() % 3)
        e.events = (0..<Int(g.next() % 3)).map { _ in
            SpanEvent(
                timeUnixNano: g.next(), name: string(&g), attributes: attributes(&g),
                droppedAttributesCount: UInt32(g.next() % 2))
        }
        e.droppedEventsCount = UInt32(g.next() % 2)
        e.links = (0..<Int(g.next() % 3)).map { _ in
            SpanLink(
                traceID: traceID(&g), spanID: SpanID(value: g.next()), traceState: string(&g),
                attributes: attributes(&g),
                droppedAttributesCount: UInt32(g.next() % 2), flags: UInt32(g.next() % 0x400))
        }
        e.droppedLinksCount = UInt32(g.next() % 2)
        e.resourceAttributes = [Attribute("service.name", .string(e.service))] + attributes(&g)
        e.resourceDroppedAttributesCount = UInt32(g.next() % 2)
        e.resourceSchemaURL = g.next() % 2 == 0 ? "https://opentelemetry.io/schemas/1.44.0" : ""
        e.scope = InstrumentationScope(
            name: string(&g), version: "1.2.3", attributes: attributes(&g), droppedAttributesCount: UInt32(g.next() % 2)
        )
        e.scopeSchemaURL = g.next() % 3 == 0 ? "s" : ""
        return e
    }

    /// Small events for store tests: few users, services and traces so that queries have many hits.
    public static func small(seed: UInt64, timeBase: UInt64 = 1_700_000_000_000_000_000) -> AuditEvent {
        var g = SplitMix(seed)
        var e = AuditEvent(
            kind: g.next() % 4 == 0 ? .access : .span, startTimeUnixNano: timeBase + g.next() % 86_400_000_000_000,
            traceID: TraceID(high: 1, low: g.next() % 200 + 1), spanID: SpanID(value: g.next()),
            name: "op-\(g.next() % 5)", service: "svc-\(g.next() % 6)")
        if g.next() % 3 == 0 {
            e.user = UserIdentity(
                subject: "user-\(g.next() % 12)", email: g.next() % 2 == 0 ? "user-\(g.next() % 12)@example.com" : nil,
                groups: g.next() % 2 == 0 ? ["admins"] : ["staff", "readers"])
        }
        if g.next() % 2 == 0 { e.workload = "spiffe://td/ns/a/sa/sa\(g.next() % 3)" }
        e.attributes = [Attribute("k", .int(Int64(g.next() % 1000)))]
        return e
    }
}

extension AuditEvent {
    /// Equality that compares doubles by bit pattern (NaN-safe) via the canonical encoding.
    public func isIdentical(to other: AuditEvent) -> Bool {
        RecordCodec.encode(self) == RecordCodec.encode(other) && self == other
    }
}

/// Request ids of a trace's own (not its trace id), as an edge that draws them makes them: the same for every row of
/// the trace, as 32 lowercase hex digits or spelled as a UUID.
public enum OwnRequestID {
    /// 32 lowercase hex digits, a function of the trace id.
    public static func hex(_ t: TraceID) -> String { TraceID(high: ~t.high, low: t.low &* 0x9E37_79B9_7F4A_7C15).hex }

    /// 32 hex digits spelled 8-4-4-4-12.
    public static func uuid(_ hex: String) -> String {
        let u = Array(hex)
        return [u[0..<8], u[8..<12], u[12..<16], u[16..<20], u[20..<32]].map { String($0) }.joined(separator: "-")
    }
}
