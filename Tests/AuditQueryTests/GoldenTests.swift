// Golden tests of the auditq executable, after swift-argument-parser's MathExampleTests: every command's --help,
// each output format on a fixed data set, and the exit status of each kind of outcome, compared whole.
//
// The expected texts are the files in Golden/, one per case: the command line, the exit status, stdout and stderr.
// A difference fails the test. To accept new output on purpose, regenerate and review the diff:
//     UPDATE_GOLDEN=1 swift test --filter GoldenTests
import Foundation
import Logging
import TestSupport
import Testing

@testable import LogFormat

/// A data set written the same way every time: a fixed node id and fixed events in two sealed segments, so every
/// byte auditq prints is stable. Its folder is removed by `remove()`, called by the test when it is done.
struct GoldenStore {
    static let t0: UInt64 = 1_793_613_600_000_000_000  // 2026-11-02T10:00:00Z
    static let ms: UInt64 = 1_000_000
    static let node = NodeID(high: 0x0123_4567_89AB_CDEF, low: 0x0FED_CBA9_8765_4321)
    static let trace1 = TraceID(high: 0xA1, low: 1)
    static let trace2 = TraceID(high: 0xA1, low: 2)
    static let trace3 = TraceID(high: 0xB0, low: 3)

    let root: String
    var data: String { root + "/data" }

    static func span(
        _ trace: TraceID, _ id: UInt64, parent: UInt64?, service: String, source: EventSource, startMs: UInt64,
        durationMs: UInt64, user: String? = nil, http: HTTPFacts? = nil, status: StatusCode = .unset,
        kind: EventKind = .span
    ) -> AuditEvent {
        let start = t0 + startMs * ms
        return AuditEvent(
            kind: kind, startTimeUnixNano: start, endTimeUnixNano: start + durationMs * ms, traceID: trace,
            spanID: SpanID(value: id), parentSpanID: parent.map { SpanID(value: $0) }, flags: 1, spanKind: .server,
            name: "\(service) op", service: service, source: source,
            user: user.map { UserIdentity(subject: $0, email: "\($0)@example.com", groups: ["staff"], origin: .edge) },
            http: http, statusCode: status, attributes: [Attribute("k", .string("v\(id)"))],
            resourceAttributes: [Attribute("service.name", .string(service))])
    }

    static let first: [AuditEvent] = [
        span(
            trace1, 1, parent: nil, service: "edge-nginx", source: .edge, startMs: 0, durationMs: 100, user: "alice",
            http: HTTPFacts(method: "GET", target: "/orders/7", statusCode: 200), kind: .access),
        span(trace1, 2, parent: 1, service: "orders-sidecar", source: .sidecar, startMs: 1, durationMs: 90),
        span(trace1, 3, parent: 2, service: "orders", source: .app, startMs: 2, durationMs: 80),
        span(
            trace3, 21, parent: nil, service: "edge-nginx", source: .edge, startMs: 5, durationMs: 10, user: "bob",
            http: HTTPFacts(method: "GET", target: "/orders/9", statusCode: 404), kind: .access),
    ]
    static let second: [AuditEvent] = [
        span(trace1, 4, parent: 3, service: "cache", source: .app, startMs: 10, durationMs: 2),
        span(
            trace2, 11, parent: nil, service: "edge-nginx", source: .edge, startMs: 3_600_000, durationMs: 30,
            user: "alice", http: HTTPFacts(method: "POST", target: "/reports", statusCode: 503), status: .error,
            kind: .access),
        span(trace2, 12, parent: 11, service: "reports", source: .app, startMs: 3_600_001, durationMs: 20),
    ]

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/auditq-golden-XXXXXX").utf8CString)
        root = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
        let directory = DataDirectory(root + "/data")
        try FileManager.default.createDirectory(atPath: directory.root, withIntermediateDirectories: true)
        try (Self.node.hex + "\n").write(toFile: directory.nodeIDPath, atomically: true, encoding: .utf8)
        let writer = try SegmentWriter(directory: directory, options: WriterOptions(), logger: CraftedStore.logger)
        _ = try writer.append(Self.first)
        _ = try writer.seal()
        _ = try writer.append(Self.second)
        _ = try writer.seal()
        try writer.close()
        let policy = "retention:\n  archive_after_days: 2\n  expire_after_days: 10\n"
        try policy.write(toFile: root + "/policy.yaml", atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

@Suite(.serialized, .ownThreads) struct GoldenTests {
    /// One run of the auditq binary. The one place this suite starts a process: swap it for the shared launcher.
    static func auditq(_ arguments: [String]) throws -> CLITests.Run {
        // A fixed environment: no $AUDITQ_DATA, no $COLUMNS (help wraps at 80), no colour.
        try CLITests.run("auditq", arguments, environment: ["NO_COLOR": "1", "PATH": "/usr/bin:/bin"])
    }

    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Golden")

    /// Runs `auditq arguments` (with `<root>` standing for the data set's folder) and compares the whole
    /// transcript with Golden/`name`.txt; with UPDATE_GOLDEN=1 it writes the file instead.
    static func check(
        _ name: String, _ arguments: [String], status: Int32, root: String = "",
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let run = try auditq(arguments.map { $0.replacingOccurrences(of: "<root>", with: root) })
        func placeholder(_ s: String) -> String { root.isEmpty ? s : s.replacingOccurrences(of: root, with: "<root>") }
        let transcript = """
            $ auditq \(arguments.joined(separator: " "))
            exit status \(run.status)
            --- stdout
            \(placeholder(run.stdout))--- stderr
            \(placeholder(run.stderr))
            """
        #expect(run.status == status, "auditq \(arguments): \(run.stderr)", sourceLocation: sourceLocation)
        let file = goldenDirectory.appendingPathComponent(name + ".txt")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: goldenDirectory, withIntermediateDirectories: true)
            try Data(transcript.utf8).write(to: file)
            return
        }
        guard let expected = try? String(contentsOf: file, encoding: .utf8) else {
            Issue.record("no golden file \(name).txt: run with UPDATE_GOLDEN=1", sourceLocation: sourceLocation)
            return
        }
        #expect(transcript == expected, "Golden/\(name).txt differs", sourceLocation: sourceLocation)
    }

    static let helpCases: [(String, [String])] = [
        ("help-auditq", ["--help"]),
        ("help-activity", ["activity", "--help"]),
        ("help-access", ["access", "--help"]),
        ("help-search", ["search", "--help"]),
        ("help-count", ["count", "--help"]),
        ("help-completeness", ["completeness", "--help"]),
        ("help-trace", ["trace", "--help"]),
        ("help-stats", ["stats", "--help"]),
        ("help-evidence", ["evidence", "--help"]),
        ("help-verify", ["verify", "--help"]),
        ("help-retention", ["retention", "--help"]),
        ("help-retention-plan", ["retention", "plan", "--help"]),
        ("help-retention-apply", ["retention", "apply", "--help"]),
    ]

    @Test(arguments: helpCases) func help(name: String, arguments: [String]) throws {
        try Self.check(name, arguments, status: 0)
    }

    static let day = ["--data", "<root>/data", "--date", "2026-11-02"]
    static let trace1 = GoldenStore.trace1.hex

    static let outputCases: [(String, [String])] = [
        ("search-table", ["search"] + day),
        ("search-json", ["search"] + day + ["--format", "json"]),
        ("search-csv", ["search"] + day + ["--format", "csv"]),
        ("search-otlp", ["search"] + day + ["--format", "otlp"]),
        ("search-limit-filter", ["search"] + day + ["--method", "get", "--limit", "1", "--tz", "+02:00"]),
        ("search-traces", ["search"] + day + ["--user", "bob", "--traces"]),
        ("search-none", ["search"] + day + ["--user", "nobody"]),
        ("activity-table", ["activity"] + day + ["--user", "alice"]),
        ("activity-tree", ["activity"] + day + ["--user", "alice", "--tree"]),
        ("activity-json", ["activity"] + day + ["--user", "alice", "--format", "json"]),
        ("activity-csv", ["activity"] + day + ["--user", "alice", "--format", "csv"]),
        ("activity-otlp", ["activity"] + day + ["--user", "alice", "--format", "otlp"]),
        ("activity-status", ["activity"] + day + ["--user", "alice", "--status", "5xx", "--limit", "1"]),
        ("access-table", ["access"] + day + ["--path-prefix", "/orders"]),
        ("access-json", ["access"] + day + ["--path-prefix", "/orders", "--format", "json"]),
        ("access-csv", ["access"] + day + ["--service", "reports", "--format", "csv"]),
        ("access-none", ["access"] + day + ["--service", "no-such-service"]),
        ("count-table", ["count"] + day + ["--by", "service"]),
        ("count-json", ["count"] + day + ["--by", "service", "--by", "status-class", "--format", "json"]),
        ("count-csv", ["count"] + day + ["--by", "user", "--by", "edge-status", "--format", "csv"]),
        ("count-filter", ["count"] + day + ["--by", "route", "--method", "get", "--user", "alice"]),
        ("trace-table", ["trace", "--data", "<root>/data", trace1]),
        ("trace-json", ["trace", "--data", "<root>/data", trace1, "--format", "json"]),
        ("trace-csv", ["trace", "--data", "<root>/data", trace1, "--format", "csv"]),
        ("trace-otlp", ["trace", "--data", "<root>/data", trace1, "--format", "otlp"]),
        ("stats-table", ["stats", "--data", "<root>/data"]),
        ("stats-json", ["stats", "--data", "<root>/data", "--format", "json"]),
        ("verify-ok", ["verify", "--data", "<root>/data"]),
        (
            "retention-plan",
            ["retention", "plan", "--data", "<root>/data", "--policy", "<root>/policy.yaml"]
                + ["--now", "2026-11-20T00:00:00Z"]
        ),
    ]

    @Test func outputFormats() throws {
        let store = try GoldenStore()
        defer { store.remove() }
        for (name, arguments) in Self.outputCases {
            try Self.check(name, arguments, status: 0, root: store.root)
        }
    }

    /// Each documented exit status, on purpose: 0 above; 1, 2, 3 and 4 here.
    @Test func exitStatuses() throws {
        let store = try GoldenStore()
        defer { store.remove() }
        let data = ["--data", "<root>/data"]
        try Self.check("exit-2-unknown-option", ["search"] + data + ["--no-such-option"], status: 2, root: store.root)
        try Self.check("exit-2-bad-value", ["search"] + data + ["--status", "teapot"], status: 2, root: store.root)
        try Self.check("exit-2-bad-zone", ["stats"] + data + ["--tz", "Mars/Olympus"], status: 2, root: store.root)
        try Self.check("exit-2-no-data", ["stats", "--data", "<root>/nope"], status: 2, root: store.root)
        try Self.check(
            "exit-2-bad-store", ["trace", "--store", "bucket/prefix", Self.trace1], status: 2, root: store.root)
        // No endpoint in the (fixed) environment: a usage error that says which variable is missing.
        try Self.check(
            "exit-2-store-no-endpoint", ["trace", "--store", "s3://b/p", Self.trace1], status: 2, root: store.root)
        try Self.check(
            "exit-1-unreadable-key", ["verify"] + data + ["--public-key", "<root>/missing.pub"], status: 1,
            root: store.root)
        // One flipped byte inside a data block of the first segment.
        let directory = DataDirectory(store.data)
        let segment = directory.segmentsPath + "/" + (try directory.listSegmentFiles().sealed.sorted()[0])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        bytes[200] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        try Self.check("exit-3-verify-problems", ["verify"] + data, status: 3, root: store.root)
        try Self.check("exit-4-damaged-data", ["search"] + data, status: 4, root: store.root)
    }
}
