import LogFormat
import Testing

@testable import CollectorCore

/// The collector's annotations live under `audit.`; whatever a sender puts there is kept under
/// `sender.audit.`, so nothing a client sends can pass for what the collector noted.
@Suite struct ReservedNamespaceTests {
    static func span(_ attributes: [Attribute], resource: [Attribute] = []) -> AuditEvent {
        var e = AuditEvent(
            kind: .span, startTimeUnixNano: 1, traceID: TraceID(high: 1, low: 2), spanID: SpanID(value: 3))
        e.attributes = attributes
        e.resourceAttributes = resource
        return e
    }

    @Test func aSendersAuditKeysAreMovedInOrderWithTheirValues() {
        var e = Self.span(
            [
                Attribute("a", .int(1)), Attribute("audit.redacted", .array([.string("x")])),
                Attribute("audit", .bool(true)), Attribute("auditor", .string("kept")),
                Attribute("sender.audit.sender", .string("already moved")), Attribute("audit.sender", .string("me")),
            ],
            resource: [Attribute("audit.token", .string("t"))])
        Normalizer().normalize(&e)
        #expect(
            e.attributes == [
                Attribute("a", .int(1)), Attribute("sender.audit.redacted", .array([.string("x")])),
                Attribute("sender.audit", .bool(true)), Attribute("auditor", .string("kept")),
                Attribute("sender.audit.sender", .string("already moved")),
                Attribute("sender.audit.sender", .string("me")),
            ])
        #expect(e.resourceAttributes == [Attribute("sender.audit.token", .string("t"))])
    }

    /// The collector's own notes stand beside the moved ones: its redaction list and the sender it
    /// authenticated, never the client's.
    @Test func theCollectorsNotesAreItsOwn() {
        var events = [
            Self.span([
                Attribute("http.request.header.authorization", .string("Basic dXNlcjpwYXNz")),
                Attribute("audit.redacted", .array([])), Attribute("audit.sender", .string("forged")),
            ])
        ]
        testNormalizer().normalize(&events, from: .otlpHTTPTraces)
        IngestService.stampSender(&events, SenderContext(receiver: .otlpHTTPTraces, name: "edge-1"))
        let e = events[0]
        #expect(e.attributes.value(forKey: "sender.audit.redacted") == .array([]))
        #expect(e.attributes.value(forKey: "sender.audit.sender") == .string("forged"))
        #expect(e.attributes.value(forKey: "audit.sender") == .string("edge-1"))
        #expect(e.attributes.filter { $0.key == "audit.sender" }.count == 1)
        let redacted = e.attributes.value(forKey: Normalizer.redactedKey)
        #expect(redacted == .array([.string("attributes.http.request.header.authorization=authorization")]))
    }
}
