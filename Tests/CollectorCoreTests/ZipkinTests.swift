import Foundation
import LogFormat
import OTLPBridge
import StoreQuery
import TestSupport
import Testing

@testable import CollectorCore
@testable import CollectorParsers

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Zipkin v2 JSON: the mapping in process, hostile bodies, and the real OpenTelemetry Python SDK's Zipkin JSON
/// exporter against a real collector.
@Suite(.serialized, .ownThreads) struct ZipkinTests {
    static let envoySpan = #"""
        [{"traceId":"463ac35c9f6413ad","parentId":"a2fb4a1d1a96d312","id":"0020000000000001","kind":"CLIENT",
          "name":"get /api/orders","timestamp":1793613600123456,"duration":2500,"debug":true,"shared":false,
          "localEndpoint":{"serviceName":"frontend-sidecar","ipv4":"10.1.2.3","port":15001},
          "remoteEndpoint":{"serviceName":"orders","ipv6":"2001:db8::1","port":8080},
          "annotations":[{"timestamp":1793613600123500,"value":"cs"},{"timestamp":1793613600125900,"value":"cr"}],
          "tags":{"http.method":"GET","http.url":"http://orders/api/orders?page=2","http.status_code":"200",
                  "upstream_cluster":"outbound|8080||orders.default.svc.cluster.local","guid:x-request-id":"6f1c-9a",
                  "error":"upstream reset"}}]
        """#

    @Test func everyZipkinFieldIsKept() throws {
        let (events, rejected) = try ZipkinMapping.events(fromJSON: Array(Self.envoySpan.utf8))
        #expect(rejected.isEmpty)
        var e = try #require(events.first)
        OTLPMapping.deriveAuditFields(&e, identity: IdentityKeys())
        #expect(e.traceID.hex == "0000000000000000463ac35c9f6413ad")  // 64-bit ids padded on the left
        #expect(e.spanID.hex == "0020000000000001")
        #expect(e.parentSpanID?.hex == "a2fb4a1d1a96d312")
        #expect(e.spanKind == .client)
        #expect(e.startTimeUnixNano == 1_793_613_600_123_456_000)  // microseconds -> nanoseconds
        #expect(e.endTimeUnixNano - e.startTimeUnixNano == 2_500_000)
        #expect(e.service == "frontend-sidecar")
        #expect(e.resourceAttributes == [Attribute("service.name", .string("frontend-sidecar"))])
        #expect(e.events.map(\.name) == ["cs", "cr"])
        #expect(e.events.map(\.timeUnixNano) == [1_793_613_600_123_500_000, 1_793_613_600_125_900_000])
        let a = Dictionary(e.attributes.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        #expect(a["http.method"] == .string("GET"))
        #expect(a["guid:x-request-id"] == .string("6f1c-9a"))
        #expect(a[ZipkinMapping.Keys.localIPv4] == .string("10.1.2.3"))
        #expect(a[ZipkinMapping.Keys.localPort] == .int(15001))
        #expect(a[ZipkinMapping.Keys.remoteService] == .string("orders"))
        #expect(a["peer.service"] == .string("orders"))
        #expect(a[ZipkinMapping.Keys.remoteIPv6] == .string("2001:db8::1"))
        #expect(a[ZipkinMapping.Keys.remotePort] == .int(8080))
        #expect(a[ZipkinMapping.Keys.debug] == .bool(true))
        #expect(a[ZipkinMapping.Keys.shared] == .bool(false))
        #expect(a[ZipkinMapping.Keys.traceID64] == .bool(true))
        #expect(e.statusCode == .error)
        #expect(e.statusMessage == "upstream reset")
        // Audit fields: HTTP facts from the legacy tag names, and an Envoy sidecar by its tags.
        #expect(e.http?.method == "GET")
        #expect(e.http?.target == "http://orders/api/orders?page=2")
        #expect(e.http?.statusCode == 200)
        #expect(e.source == .sidecar)
    }

    @Test(arguments: [
        (#"{"traceId":"1"}"#, "JSON array"),
        (#"[{"traceId":"zz3ac35c9f6413ad","id":"0020000000000001","timestamp":1}]"#, "traceId"),
        (#"[{"traceId":"00000000000000000000000000000000","id":"0020000000000001","timestamp":1}]"#, "all zeros"),
        (#"[{"traceId":"463ac35c9f6413ad","id":"0020","timestamp":1}]"#, "id must be 16 hex"),
        (#"[{"traceId":"463ac35c9f6413ad","id":"0020000000000001"}]"#, "timestamp"),
        (#"[{"traceId":"463ac35c9f6413ad","id":"0020000000000001","timestamp":-5}]"#, "non-negative"),
        (#"[{"traceId":"463ac35c9f6413ad","id":"0020000000000001","timestamp":18446744073709552}]"#, "out of range"),
        (#"[{"traceId":"463ac35c9f6413ad","id":"0020000000000001","timestamp":1,"kind":"SIDEWAYS"}]"#, "kind"),
        (#"[{"traceId":"463ac35c9f6413ad","id":"0020000000000001","timestamp":1,"tags":{"a":{"b":1}}}]"#, "tag a"),
        (
            #"[{"traceId":"463ac35c9f6413ad","id":"0020000000000001","timestamp":1,"localEndpoint":{"port":70000}}]"#,
            "65535"
        ),
        (
            #"[{"traceId":"463ac35c9f6413ad","id":"0020000000000001","timestamp":1,"annotations":[{"value":"x"}]}]"#,
            "annotation"
        ),
        (#"[7]"#, "JSON object"),
    ])
    func badSpansAreNamed(body: String, reason: String) {
        do {
            let (events, rejected) = try ZipkinMapping.events(fromJSON: Array(body.utf8))
            #expect(events.isEmpty)
            #expect(rejected.count == 1)
            #expect(rejected.first?.reason.contains(reason) == true, "\(rejected)")
        } catch {
            #expect(error.description.contains(reason), "\(error)")
        }
    }

    @Test func truncatedBodiesAreMalformedNeverACrash() {
        let body = Array(Self.envoySpan.utf8)
        for cut in stride(from: 1, to: body.count, by: 7) {
            let result = try? ZipkinMapping.events(fromJSON: Array(body.prefix(cut)))
            #expect(result == nil || result!.events.isEmpty)
        }
    }

    static func post(_ base: String, _ body: [UInt8], type: String = "application/json") async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: base + "/api/v2/spans")!)
        request.httpMethod = "POST"
        request.setValue(type, forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    @Test func theReceiverAnswers202AndNamesRejectedSpans() async throws {
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let c = try CollectorProcessTests.Running(data: data)
        defer { if c.process.isRunning { c.stop(signal: SIGKILL) } }
        let zipkin = "http://127.0.0.1:\(c.zipkinPort)"
        #expect(try await Self.post(zipkin, Array(Self.envoySpan.utf8)).0 == 202)
        let mixed = #"[{"traceId":"463ac35c9f6413ad","id":"0020000000000002","timestamp":1793613600000000},{"id":"x"}]"#
        let (status, report) = try await Self.post(zipkin, Array(mixed.utf8))
        #expect(status == 202)
        #expect(report.contains(#""span":1"#) && report.contains("traceId"))
        #expect(try await Self.post(zipkin, Array("[{".utf8)).0 == 400)
        #expect(try await Self.post(zipkin, [0x0A], type: "application/x-protobuf").0 == 415)
        #expect(try await Self.post(zipkin, Array("[]".utf8)).0 == 202)
        // The OTLP port does not serve Zipkin, nor the Zipkin port OTLP.
        #expect(try await Self.post(c.base, Array("[]".utf8)).0 == 404)
        c.stop(signal: SIGTERM)
        let stored = try AuditStore(directories: [DataDirectory(data)]).search(EventQuery())
        #expect(Set(stored.map(\.event.spanID.hex)) == ["0020000000000001", "0020000000000002"])
    }

    @Test func thePythonSDKsZipkinExporterArrivesIntact() async throws {
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let c = try CollectorProcessTests.Running(data: data, extra: ["--fsync", "always"])
        defer { if c.process.isRunning { c.stop(signal: SIGKILL) } }
        let script = PythonSDKTests.root.appendingPathComponent("Tests/clients/zipkin_export.py").path
        let python = try PythonSDKTests.python(".venv-otel")
        let p = try ChildProcess.run(python, [script, "http://127.0.0.1:\(c.zipkinPort)"])
        let printed = p.stdoutData
        #expect(p.status == 0, "\(p.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: printed) as? [String: Any])
        #expect(report["results"] as? [String] == ["SUCCESS", "SUCCESS"])
        let sent = try #require(report["spans"] as? [[String: Any]])
        let stored = try AuditStore(directories: [DataDirectory(data)]).search(EventQuery()).map(\.event)
        #expect(stored.count == 2)
        for s in sent {
            let got = try #require(stored.first { $0.spanID.hex == s["span_id"] as? String })
            #expect(got.traceID.hex == s["trace_id"] as? String)
            #expect(got.parentSpanID?.hex == s["parent_span_id"] as? String)
            #expect(got.name == s["name"] as? String)
            #expect(got.service == "checkout")
            #expect("\(got.spanKind)".uppercased() == s["kind"] as? String)
            // Zipkin carries microseconds: equal to within the exporter's rounding.
            let start = try #require((s["start"] as? NSNumber)?.uint64Value)
            let end = try #require((s["end"] as? NSNumber)?.uint64Value)
            #expect(max(got.startTimeUnixNano, start) - min(got.startTimeUnixNano, start) < 1_000)
            #expect(max(got.endTimeUnixNano, end) - min(got.endTimeUnixNano, end) < 2_000)
            for (key, value) in s["attributes"] as? [String: String] ?? [:] {
                #expect(got.attributes.value(forKey: key) == .string(value), "\(key)")
            }
            let events = s["events"] as? [[String: Any]] ?? []
            #expect(got.events.count == events.count)
            if let message = s["status_message"] as? String, !message.isEmpty {
                #expect(got.statusCode == .error)
                #expect(got.statusMessage == message)
            }
        }
        let server = try #require(stored.first { $0.spanKind == .server })
        #expect(server.user?.subject == "carol")
        #expect(server.http?.method == "POST")
        #expect(server.http?.statusCode == 201)
        c.stop(signal: SIGTERM)
    }
}
