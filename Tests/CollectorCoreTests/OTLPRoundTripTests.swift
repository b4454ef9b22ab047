import Foundation
import LogFormat
import OTLPBridge
import OTLPProto
import StoreQuery
import SyntheticTraffic
import TestSupport
import Testing

@testable import CollectorCore

/// `auditq search --format otlp` of one collector's store, posted to a second collector, gives back every
/// record: spans over /v1/traces, and access events and log records as OTLP log records over /v1/logs (the
/// AccessLogRecord convention). Both collectors and auditq are the real executables.
@Suite(.serialized, .ownThreads) struct OTLPRoundTripTests {
    /// What the first collector noted (`audit.*`) the second was told by a sender: it keeps it as `sender.audit.*`.
    static func asRelayed(_ e: AuditEvent) -> AuditEvent {
        var e = e
        func move(_ list: inout [Attribute]) {
            for i in list.indices where list[i].key.hasPrefix("audit.") { list[i].key = "sender." + list[i].key }
        }
        move(&e.attributes)
        move(&e.resourceAttributes)
        return e
    }

    static func logRecord(
        _ body: String, severity: Opentelemetry_Proto_Logs_V1_SeverityNumber, trace: TraceID?, at: UInt64,
        attributes: [(String, String)]
    ) -> Opentelemetry_Proto_Logs_V1_LogRecord {
        var l = Opentelemetry_Proto_Logs_V1_LogRecord()
        l.timeUnixNano = at
        l.observedTimeUnixNano = at + 5_000
        l.severityNumber = severity
        l.severityText = "\(severity)"
        l.body.stringValue = body
        if let trace {
            l.traceID = Data(trace.bytes)
            l.spanID = Data(SpanID(value: 0x5151).bytes)
            l.flags = 1
        }
        l.attributes = attributes.map { k, v in
            var kv = OTLPKeyValue()
            kv.key = k
            kv.value.stringValue = v
            return kv
        }
        return l
    }

    static func sorted(_ events: [AuditEvent]) -> [AuditEvent] {
        events.sorted {
            ($0.kind.rawValue, $0.startTimeUnixNano, $0.traceID.hex, $0.spanID.hex, $0.name)
                < ($1.kind.rawValue, $1.startTimeUnixNano, $1.traceID.hex, $1.spanID.hex, $1.name)
        }
    }

    @Test func spansAccessEventsAndLogsSurviveASecondCollector() async throws {
        let tmp = TempDir("otlp-round-trip")
        defer { tmp.remove() }
        var generator = TrafficGenerator(seed: 17)
        let generated = generator.nextEvents(300)
        let spans = generated.filter { $0.kind == .span }
        let access = generated.filter { $0.kind == .access }
        #expect(!spans.isEmpty && !access.isEmpty)

        // The first collector, fed as an edge and a mesh would: spans over OTLP, the edge's access lines as
        // NDJSON, and an app's log records over OTLP logs (one with a sender's forged audit.* attribute).
        let first = try CollectorProcessTests.Running(data: tmp.path + "/first")
        let (tracesStatus, _) = try await first.post(
            "/v1/traces", try OTLPMapping.traceRequest(from: spans).serializedBytes(), type: "application/x-protobuf")
        #expect(tracesStatus == 200)
        // One more request whose query carries a token: the first collector redacts it and notes that it did.
        let tokenLine =
            #"{"msec":"1793613600.125","request_uri":"/x?access_token=SECRET123","status":"200","#
            + #""upstream_http_x_user_id":"alice"}"#
        let lines = (access.map(NginxAccessLine.render) + [tokenLine]).joined(separator: "\n") + "\n"
        let (accessStatus, _) = try await first.post("/v1/access", Array(lines.utf8), type: "application/x-ndjson")
        #expect(accessStatus == 200)
        var logs = OTLPLogsRequest()
        var resourceLogs = Opentelemetry_Proto_Logs_V1_ResourceLogs()
        var service = OTLPKeyValue()
        service.key = "service.name"
        service.value.stringValue = "billing"
        resourceLogs.resource.attributes = [service]
        var scopeLogs = Opentelemetry_Proto_Logs_V1_ScopeLogs()
        scopeLogs.scope.name = "billing.audit"
        scopeLogs.logRecords = [
            Self.logRecord(
                "invoice exported", severity: .info, trace: access[0].traceID, at: access[0].startTimeUnixNano + 1_000,
                attributes: [("invoice.id", "INV-7"), ("user.id", "u-logger")]),
            Self.logRecord(
                "export failed", severity: .error, trace: nil, at: access[0].startTimeUnixNano + 2_000,
                attributes: [("audit.approved_by", "nobody")]),
        ]
        resourceLogs.scopeLogs = [scopeLogs]
        logs.resourceLogs = [resourceLogs]
        let (logsStatus, _) = try await first.post(
            "/v1/logs", try logs.serializedBytes(), type: "application/x-protobuf")
        #expect(logsStatus == 200)
        first.stop(signal: SIGTERM)
        let stored = try AuditStore(directories: [DataDirectory(tmp.path + "/first")]).search(EventQuery())
        #expect(stored.count == spans.count + access.count + 3)
        #expect(stored.contains { $0.event.attributes.contains { $0.key == "sender.audit.approved_by" } })

        // auditq exports the whole store: a line of spans, a line of access events and log records.
        let export = try ChildProcess.run(
            ChildProcess.product("auditq"),
            ["search", "--data", tmp.path + "/first", "--from", "2000-01-01", "--to", "2100-01-01", "--format", "otlp"])
        #expect(export.succeeded, "\(export.stderr)")
        let exported = export.stdout.split(separator: "\n").map(String.init)
        #expect(exported.count == 2)
        #expect(exported.first?.hasPrefix("{\"resourceSpans\":") == true)
        #expect(exported.last?.hasPrefix("{\"resourceLogs\":") == true)
        #expect(exported.last?.contains("\"eventName\":\"\(AccessLogRecord.eventName)\"") == true)

        // The second collector takes both lines as any OTLP/HTTP JSON client would send them.
        let second = try CollectorProcessTests.Running(data: tmp.path + "/second")
        let (spanReply, spanBody) = try await second.post(
            "/v1/traces", Array(exported[0].utf8), type: "application/json")
        #expect(spanReply == 200, "\(String(decoding: spanBody, as: UTF8.self))")
        let (logReply, logBody) = try await second.post("/v1/logs", Array(exported[1].utf8), type: "application/json")
        #expect(logReply == 200, "\(String(decoding: logBody, as: UTF8.self))")
        #expect(!String(decoding: logBody, as: UTF8.self).contains("rejected"))
        second.stop(signal: SIGTERM)
        let relayed = try AuditStore(directories: [DataDirectory(tmp.path + "/second")]).search(EventQuery())

        // Every record came back the same, field for field and attribute for attribute, as the same kind; only
        // what the first collector noted under audit.* is now the sender's (sender.audit.*).
        let expected = Self.sorted(stored.map { Self.asRelayed($0.event) })
        let got = Self.sorted(relayed.map(\.event))
        #expect(got.count == expected.count)
        for (g, e) in zip(got, expected) where g != e {
            Issue.record("a record changed on the way through:\nexpected \(e)\ngot      \(g)")
            break
        }
        for kind in EventKind.allCases {
            #expect(got.filter { $0.kind == kind }.count == stored.filter { $0.event.kind == kind }.count)
        }
        // The edge's notes (the redacted token, its claims) reach the second store as the relaying sender's.
        let edgeNotes = Set(stored.filter { $0.event.kind == .access }.flatMap(\.event.attributes).map(\.key))
            .filter { $0.hasPrefix("audit.") }
        #expect(!edgeNotes.isEmpty)
        let relayedKeys = Set(got.flatMap(\.attributes).map(\.key))
        #expect(edgeNotes.allSatisfy { relayedKeys.contains("sender." + $0) && !relayedKeys.contains($0) })
        // The user of each request is still found through the access events of the second store.
        let user = try #require(access.first?.user?.subject)
        let store = try AuditStore(directories: [DataDirectory(tmp.path + "/second")])
        #expect(try store.search(EventQuery(terms: [.user(user)])).contains { $0.event.kind == .access })
    }
}
