import Foundation
import LogFormat
import StoreQuery
import TestSupport
import Testing

@testable import CollectorCore

/// The OpenTelemetry Python SDK (from PyPI, installed by `make clients`) exports to a real collector process
/// over loopback, with the protobuf exporter (gzip) and the JSON exporter; the stored events must carry
/// exactly what the SDK says it sent.
@Suite(.serialized, .ownThreads) struct PythonSDKTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func python(_ venv: String) throws -> String {
        let path = root.appendingPathComponent("\(venv)/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw CocoaError(
                .fileNoSuchFile,
                userInfo: [NSLocalizedDescriptionKey: "\(path) is missing: run `make clients` (make test does)"])
        }
        return path
    }

    /// Runs the exporter script and returns what it printed.
    static func export(venv: String, base: String, args: [String]) throws -> [String: Any] {
        try run(
            venv: venv, script: root.appendingPathComponent("Tests/clients/otel_export.py").path, args: [base] + args)
    }

    /// Runs a client script in a virtualenv; it must exit 0 and print a JSON object as its last line.
    static func run(venv: String, script: String, args: [String], environment: [String: String]? = nil) throws
        -> [String: Any]
    {
        let p = try ChildProcess.run(try python(venv), [script] + args, environment: environment)
        let errors = p.stderr
        let last = p.stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard p.status == 0, let json = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        else {
            let message = "\(script) failed (\(p.status)): \(errors)"
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: message])
        }
        return json
    }

    /// A tagged value from the SDK's report ({"s": …}, {"i": "…"}, {"d": …}, {"b": …}, {"a": […]}) as the
    /// attribute value the collector must have stored.
    static func expected(_ v: Any) -> AttributeValue? {
        guard let tagged = v as? [String: Any], let (tag, value) = tagged.first else { return nil }
        switch tag {
        case "s": return (value as? String).map { .string($0) }
        case "i": return (value as? String).flatMap(Int64.init).map { .int($0) }
        case "d": return (value as? Double).map { .double($0) } ?? (value as? NSNumber).map { .double($0.doubleValue) }
        case "b": return (value as? Bool).map { .bool($0) }
        case "a": return (value as? [Any]).map { .array($0.compactMap(expected)) }
        default: return nil
        }
    }

    @Test(arguments: [
        (".venv-otel", ["protobuf", "gzip"]), (".venv-otel-json", ["json"]), (".venv-otel", ["grpc", "gzip"]),
    ])
    func sdkSpansAndLogsArriveExactly(venv: String, args: [String]) async throws {
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let collector = try CollectorProcessTests.Running(data: data, extra: ["--fsync", "always"])
        defer { collector.stop(signal: SIGTERM) }
        let base = args[0] == "grpc" ? "http://127.0.0.1:\(collector.grpcPort)" : collector.base
        let report = try Self.export(venv: venv, base: base, args: args)
        #expect(report["span_results"] as? [String] == ["SUCCESS", "SUCCESS"])
        #expect(report["log_results"] as? [String] == ["SUCCESS"])

        let store = try AuditStore(directories: [DataDirectory(data)])
        let stored = try store.search(EventQuery()).map(\.event)
        let spans = try #require(report["spans"] as? [[String: Any]])
        #expect(stored.filter { $0.kind == .span }.count == spans.count)
        for sent in spans {
            let e = try #require(
                stored.first { $0.spanID.hex == sent["span_id"] as? String },
                "span \(sent["span_id"] ?? "?") not stored")
            #expect(e.traceID.hex == sent["trace_id"] as? String)
            #expect(e.parentSpanID?.hex == sent["parent_span_id"] as? String)
            #expect(e.name == sent["name"] as? String)
            #expect(Int(e.spanKind.rawValue) == (sent["kind"] as? Int ?? -9) + 1)  // Python's SpanKind counts from 0
            #expect(e.startTimeUnixNano == (sent["start"] as? NSNumber)?.uint64Value)
            #expect(e.endTimeUnixNano == (sent["end"] as? NSNumber)?.uint64Value)
            #expect(Int(e.statusCode.rawValue) == sent["status"] as? Int)
            #expect(e.statusMessage == sent["status_message"] as? String)
            let attributes = try #require(sent["attributes"] as? [String: Any])
            #expect(e.attributes.count == attributes.count)
            for (key, value) in attributes {
                // The collector's namespace is reserved: what a client sends under `audit.` is kept, moved.
                let stored = key.hasPrefix("audit.") ? "sender." + key : key
                #expect(e.attributes.value(forKey: stored) == Self.expected(value), "attribute \(key)")
                if stored != key { #expect(e.attributes.value(forKey: key) == nil, "\(key) stored as sent") }
            }
            let events = try #require(sent["events"] as? [[String: Any]])
            #expect(e.events.map(\.name) == events.compactMap { $0["name"] as? String })
            #expect(e.events.map(\.timeUnixNano) == events.compactMap { ($0["time"] as? NSNumber)?.uint64Value })
            let links = try #require(sent["links"] as? [[String: Any]])
            #expect(e.links.map(\.spanID.hex) == links.compactMap { $0["span_id"] as? String })
            #expect(e.service == "orders")
            #expect(e.resourceAttributes.value(forKey: "service.version") == .string("1.2.3"))
            #expect(e.resourceAttributes.value(forKey: "telemetry.sdk.language") == .string("python"))
            #expect(e.scope.name == "audit.test")
        }
        // The server span names its user: the user -> trace join works for it.
        let mine = try store.search(EventQuery(terms: [.user("alice")]))
        #expect(mine.count == 1)
        #expect(mine.first?.event.user?.groups == ["auditors", "admins"])
        #expect(mine.first?.event.http?.target == "/api/v1/orders?page=2")
        let log = try #require(stored.first { $0.kind == .log })
        #expect(log.body == .string("login failed"))
        #expect(log.severityNumber == 13)
        #expect(log.user?.subject == "bob")
    }
}
