import Foundation
import LogFormat
import OTLPProto
import Testing

@testable import OTLPBridge
@testable import SyntheticTraffic

@Suite struct OTLPMappingTests {
    /// Realistic spans from the project's generator.
    static func spans(_ n: Int, seed: UInt64 = 7) -> [AuditEvent] {
        var g = TrafficGenerator(seed: seed)
        return g.nextEvents(n * 2).filter { $0.kind == .span }.prefix(n).map { $0 }
    }

    @Test func whatAClientSentComesBackOut() throws {
        let request = OTLPMapping.traceRequest(from: Self.spans(400))
        #expect(request.resourceSpans.count > 1)
        // Over the wire and back: parse the serialized request, import, export again.
        let wire: Data = try request.serializedBytes()
        let parsed = try OTLPTraceRequest(serializedBytes: wire)
        let imported = OTLPMapping.events(from: parsed)
        #expect(imported.rejected.isEmpty)
        #expect(imported.events.count == 400)
        let again = OTLPMapping.traceRequest(from: imported.events)
        #expect(again == request)
        let againWire: Data = try again.serializedBytes()
        #expect(againWire == wire)
    }

    @Test func importedEventsSurviveTheStoreExactly() throws {
        let imported = OTLPMapping.events(from: OTLPMapping.traceRequest(from: Self.spans(50)))
        for e in imported.events {
            #expect(try RecordCodec.decode(RecordCodec.encode(e)) == e)
        }
    }

    @Test func badSpansAreRejectedWithReasonsAndTheRestKept() throws {
        var request = OTLPMapping.traceRequest(from: Self.spans(5))
        var spans = request.resourceSpans[0].scopeSpans[0].spans
        var short = spans[0]
        short.traceID = short.traceID.prefix(15)
        var zero = spans[0]
        zero.spanID = Data(repeating: 0, count: 8)
        var badParent = spans[0]
        badParent.parentSpanID = Data([1, 2, 3])
        var badKind = spans[0]
        badKind.kind = .UNRECOGNIZED(9)
        spans += [short, zero, badParent, badKind]
        request.resourceSpans[0].scopeSpans[0].spans = spans
        let result = OTLPMapping.events(from: request)
        let total = request.resourceSpans.reduce(0) { $0 + $1.scopeSpans.reduce(0) { $0 + $1.spans.count } }
        #expect(result.events.count == total - 4)
        #expect(
            result.rejected.map(\.reason) == [
                "trace_id must be 16 bytes, got 15", "span_id is all zeros", "parent_span_id must be 8 bytes, got 3",
                "unknown span kind 9",
            ])
        #expect(result.rejected.first?.description.hasPrefix("resource 0 scope 0 item") == true)
    }

    @Test func auditFieldsComeFromWellKnownAttributes() throws {
        var span = OTLPSpan()
        span.traceID = Data(repeating: 1, count: 16)
        span.spanID = Data(repeating: 2, count: 8)
        span.kind = .server
        func kv(_ k: String, _ v: AttributeValue) -> OTLPKeyValue { OTLPMapping.keyValue(Attribute(k, v)) }
        span.attributes = [
            kv("enduser.id", .string("alice")), kv("user.email", .string("alice@example.com")),
            kv("user.roles", .array([.string("auditors"), .string("admins")])), kv("http.method", .string("GET")),
            kv("http.target", .string("/api/v1/orders?page=2")), kv("http.status_code", .int(403)),
            kv("net.peer.ip", .string("10.0.0.7")),
            kv("peer.identity", .string("spiffe://cluster.local/ns/shop/sa/orders")),
        ]
        var request = OTLPTraceRequest()
        var rs = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        rs.resource.attributes = [kv("service.name", .string("orders")), kv("istio.mesh_id", .string("mesh1"))]
        var ss = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        ss.spans = [span]
        rs.scopeSpans = [ss]
        request.resourceSpans = [rs]
        // The audit fields are the normalising stage's: the bridge only decodes.
        let raw = try #require(OTLPMapping.events(from: request).events.first)
        #expect(raw.user == nil && raw.http == nil && raw.workload == nil && raw.source == .unknown)
        var e = raw
        OTLPMapping.deriveAuditFields(&e, identity: IdentityKeys())
        #expect(e.service == "orders")
        #expect(
            e.user
                == UserIdentity(
                    subject: "alice", email: "alice@example.com", groups: ["auditors", "admins"], origin: .attribute))
        #expect(
            e.http
                == HTTPFacts(method: "GET", target: "/api/v1/orders?page=2", statusCode: 403, clientAddress: "10.0.0.7")
        )
        #expect(e.workload == "spiffe://cluster.local/ns/shop/sa/orders")
        #expect(e.source == .sidecar)
        #expect(e.attributes.count == 8)  // nothing removed
    }

    /// Configured identity keys of any shape are found: the key filter (length and first byte) passes over
    /// the rest without hashing them, never over one of these.
    @Test(arguments: [
        "", "u", "Ümlaut.id", "\u{7F}x", String(repeating: "k", count: 63), String(repeating: "k", count: 64),
        String(repeating: "user.", count: 30),
    ])
    func configuredKeysOfEveryLengthAndFirstByteNameTheUser(key: String) {
        var identity = IdentityKeys()
        identity.subject = [key]
        var e = AuditEvent(
            kind: .span, startTimeUnixNano: 1, traceID: TraceID(high: 1, low: 2), spanID: SpanID(value: 3),
            attributes: [
                Attribute("user.idx", .string("not this")), Attribute(key + "x", .string("nor this")),
                Attribute(key, .string("carol")),
            ])
        OTLPMapping.deriveAuditFields(&e, identity: identity)
        #expect(e.user?.subject == "carol")
    }

    @Test func logRecordsImportWithOptionalIds() throws {
        var log = Opentelemetry_Proto_Logs_V1_LogRecord()
        log.timeUnixNano = 1_700_000_000_000_000_000
        log.observedTimeUnixNano = 1_700_000_000_000_000_123
        log.severityNumber = .warn
        log.severityText = "WARN"
        log.body = OTLPMapping.anyValue(.string("login failed"))
        log.eventName = "auth.failure"
        log.attributes = [OTLPMapping.keyValue(Attribute("user.id", .string("bob")))]
        var withBadID = log
        withBadID.traceID = Data([1, 2])
        var request = OTLPLogsRequest()
        var rl = Opentelemetry_Proto_Logs_V1_ResourceLogs()
        var sl = Opentelemetry_Proto_Logs_V1_ScopeLogs()
        sl.logRecords = [log, withBadID]
        rl.scopeLogs = [sl]
        request.resourceLogs = [rl]
        let result = OTLPMapping.events(from: request)
        var e = try #require(result.events.first)
        OTLPMapping.deriveAuditFields(&e, identity: IdentityKeys())
        #expect(result.rejected.map(\.reason) == ["trace_id must be 16 bytes, got 2"])
        #expect(e.kind == .log)
        #expect(e.traceID.isZero)
        #expect(e.severityNumber == 13)
        #expect(e.body == .string("login failed"))
        #expect(e.eventName == "auth.failure")
        #expect(e.user?.subject == "bob")
        #expect(e.service == "unknown_service")
    }

    @Test(arguments: [1, 5, 17, 60])
    func truncatedProtobufIsRefusedByTheDecoder(cut: Int) throws {
        let wire: Data = try OTLPMapping.traceRequest(from: Self.spans(3)).serializedBytes()
        #expect(throws: (any Error).self) { try OTLPTraceRequest(serializedBytes: wire.prefix(wire.count - cut)) }
    }
}

@Suite struct LoadGeneratorTests {
    @Test func spansCarryTheirHTTPFactsAsSemanticAttributesOnTheWire() throws {
        var g = TrafficGenerator(seed: 4)
        let spans = g.nextEvents(300).filter { $0.kind == .span && $0.http != nil }
        #expect(!spans.isEmpty)
        var imported = OTLPMapping.events(
            from: OTLPMapping.traceRequest(from: spans.map(LoadGenerator.withSemanticAttributes)))
        for i in imported.events.indices {
            OTLPMapping.deriveAuditFields(&imported.events[i], identity: IdentityKeys())
        }
        #expect(imported.events.count == spans.count)
        let byID = Dictionary(uniqueKeysWithValues: imported.events.map { ($0.spanID, $0) })
        for sent in spans {
            let got = try #require(byID[sent.spanID])  // export groups by resource, so match by id
            #expect(got.http?.method == sent.http?.method)
            #expect(got.http?.target == sent.http?.target)
            #expect(got.http?.statusCode == sent.http?.statusCode)
        }
        // Events that already carry such attributes are sent unchanged.
        let once = spans.map(LoadGenerator.withSemanticAttributes)
        #expect(once.map(LoadGenerator.withSemanticAttributes) == once)
    }
}

@Suite struct HTTPClientTests {
    @Test(arguments: [
        ("http://127.0.0.1:4318", "127.0.0.1", 4318),
        ("http://localhost:9/v1/traces", "localhost", 9),
        ("http://[::1]:4318/", "::1", 4318),
        ("http://collector.example", "collector.example", 80),
    ])
    func targetsParse(url: String, host: String, port: Int) throws {
        let t = try #require(HTTPTarget(url: url))
        #expect(t.host == host)
        #expect(t.port == port)
    }

    @Test(arguments: ["https://127.0.0.1:4318", "http://:80", "http://h:0", "http://h:99999", "http://[::1", "ftp://h"])
    func badTargetsAreRefused(url: String) {
        #expect(HTTPTarget(url: url) == nil)
    }

    @Test func aLoadGeneratorWithNoCollectorStopsAndCountsEveryPost() async throws {
        // A port nothing listens on: bind one, learn it, close it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        close(fd)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        var config = LoadGeneratorConfig(baseURL: "http://127.0.0.1:\(port)", requests: 40)
        config.requestsPerPost = 10
        config.connections = 2
        let report = await LoadGenerator.run(config)
        #expect(report.posts == 0)
        // 4 span posts and 4 access posts, none acknowledged: the two in flight failed after their retries,
        // and the first worker to see the collector gone counted the six never sent (no one retried them).
        #expect(report.failed == 8)
        #expect(report.refusedAndRetried == 0)
    }
}
