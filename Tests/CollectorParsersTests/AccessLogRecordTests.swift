import Foundation
import LogFormat
import OTLPProto
import Testing

@testable import OTLPBridge
@testable import SyntheticTraffic

/// The AccessLogRecord convention: an access event as an OTLP log record and back, for every field; log
/// records as they came; and carrier attributes of the wrong shape rejected with a reason, not guessed.
@Suite struct AccessLogRecordTests {
    /// Access events of the generator, and one with every field set, an empty e-mail and a service that the
    /// resource does not name.
    static func accessEvents() -> [AuditEvent] {
        var g = TrafficGenerator(seed: 3)
        var events = g.nextEvents(200).filter { $0.kind == .access }
        var full = events[0]
        full.parentSpanID = SpanID(value: 0xABCD)
        full.traceState = "vendor=1"
        full.eventName = "nginx.access"
        full.service = "edge-west"
        full.workload = "spiffe://example.org/ns/edge/sa/nginx"
        full.user = UserIdentity(
            subject: "alice", email: "", groups: ["a", "b"], issuer: "https://idp", origin: .verifiedToken,
            tokenFingerprint: Array(repeating: 0xAB, count: 32))
        full.http = HTTPFacts(method: "GET", target: "/x?y=1", route: "/x", statusCode: 403, clientAddress: "192.0.2.1")
        full.statusCode = .error
        full.statusMessage = "denied"
        full.severityNumber = 13
        full.severityText = "WARN"
        full.body = .string("denied by policy")
        events.append(full)
        return events
    }

    @Test func accessEventsComeBackAsTheSameAccessEventsOverTheWire() throws {
        let events = Self.accessEvents()
        let request = OTLPMapping.logsRequest(from: events)
        let records = request.resourceLogs.flatMap(\.scopeLogs).flatMap(\.logRecords)
        #expect(records.count == events.count)
        #expect(records.allSatisfy { $0.eventName == AccessLogRecord.eventName })
        // Nothing the collector reserves is used to carry the fields.
        #expect(records.flatMap(\.attributes).allSatisfy { !$0.key.hasPrefix("audit.") })
        let wire: Data = try request.serializedBytes()
        let imported = OTLPMapping.events(from: try OTLPLogsRequest(serializedBytes: wire))
        #expect(imported.rejected.isEmpty)
        // Grouped by resource and scope on the way, so compared in one order.
        func ordered(_ list: [AuditEvent]) -> [AuditEvent] {
            list.sorted { ($0.traceID.hex, $0.spanID.hex, $0.service) < ($1.traceID.hex, $1.spanID.hex, $1.service) }
        }
        for (got, sent) in zip(ordered(imported.events), ordered(events)) where got != sent {
            Issue.record("changed on the way:\nsent \(sent)\ngot  \(got)")
        }
        #expect(imported.events.count == events.count)
    }

    @Test func logRecordsAreExportedAsTheyCame() throws {
        var log = AuditEvent(
            kind: .log, startTimeUnixNano: 1_700_000_000_000_000_000, observedTimeUnixNano: 1_700_000_000_000_000_500,
            traceID: TraceID(high: 1, low: 2), spanID: SpanID(value: 3), flags: 1, service: "billing",
            severityNumber: 17, severityText: "ERROR", body: .keyValueList([Attribute("code", .int(7))]),
            eventName: "billing.failed", attributes: [Attribute("invoice", .string("INV-1"))],
            resourceAttributes: [Attribute("service.name", .string("billing"))])
        log.scope = InstrumentationScope(name: "billing", version: "2")
        let imported = OTLPMapping.events(from: OTLPMapping.logsRequest(from: [log]))
        #expect(imported.rejected.isEmpty)
        #expect(imported.events == [log])
        // Spans are not log records.
        #expect(OTLPMapping.logsRequest(from: Self.spansOnly()).resourceLogs.isEmpty)
    }

    static func spansOnly() -> [AuditEvent] {
        var g = TrafficGenerator(seed: 4)
        return g.nextEvents(50).filter { $0.kind == .span }
    }

    @Test(arguments: [
        ("auditq.access.end_time_unix_nano", "soon", "must be an integer"),
        ("auditq.access.http.status_code", "200", "must be an integer"),
        ("auditq.access.source", "cdn", "is not edge, sidecar, app or unknown"),
        ("auditq.access.user.origin", "rumour", "is not an identity origin"),
        ("auditq.access.parent_span_id", "xyz", "is not 16 hex"),
        ("auditq.access.user.token_sha256", "zz", "is not hex"),
        ("auditq.access.colour", "blue", "unknown access-event attribute"),
    ])
    func carrierAttributesOfTheWrongShapeAreRejected(key: String, value: String, reason: String) throws {
        var request = OTLPMapping.logsRequest(from: Array(Self.accessEvents().prefix(2)))
        var records = request.resourceLogs[0].scopeLogs[0].logRecords
        records[0].attributes.removeAll { $0.key == key }
        var kv = OTLPKeyValue()
        kv.key = key
        kv.value.stringValue = value
        records[0].attributes.append(kv)
        if key == "auditq.access.user.origin" || key == "auditq.access.user.token_sha256" {
            var subject = OTLPKeyValue()
            subject.key = "auditq.access.user.subject"
            subject.value.stringValue = "u"
            records[0].attributes.removeAll { $0.key == subject.key }
            records[0].attributes.append(subject)
        }
        request.resourceLogs[0].scopeLogs[0].logRecords = records
        let imported = OTLPMapping.events(from: request)
        #expect(imported.rejected.count == 1)
        #expect(imported.rejected.first?.reason.contains(key) == true)
        #expect(imported.rejected.first?.reason.contains(reason) == true, "\(imported.rejected)")
        // The rest of the request is kept.
        #expect(imported.events.count == records.count - 1)
    }
}
