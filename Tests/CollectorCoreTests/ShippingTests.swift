import Foundation
import LogFormat
import OTLPBridge
import ObjectStore
import StoreQuery
import TestSupport
import Testing

@testable import CollectorCore

/// The `shipping:` section of the collector's file.
@Suite(.ownThreads) struct ShippingConfigTests {
    @Test func shippingSectionIsReadAndChecked() throws {
        let c = try CollectorConfig.parse(
            yaml: """
                shipping:
                  store: s3://audit/eu-1
                  endpoint: http://127.0.0.1:7480
                  keep_local_seconds: 86400
                  object_lock_days: 2555
                  local_budget_bytes: 10737418240
                """)
        #expect(c.shipping.enabled)
        #expect(c.shipping.store == "s3://audit/eu-1")
        #expect(c.shipping.keepLocalSeconds == 86_400)
        #expect(c.shipping.objectLockDays == 2_555)
        #expect(c.shipping.localBudgetBytes == 10 << 30)
        #expect(c.shipping.intervalSeconds == ShippingPolicy().intervalSeconds)
        #expect(try CollectorConfig.parse(yaml: "data: x\n").shipping.enabled == false)
        do {
            _ = try CollectorConfig.parse(
                yaml: "shipping:\n  store: audit/eu-1\n  keep_local: 3\n  object_lock_days: -1\n", source: "c.yaml")
            Issue.record("a bad shipping section was accepted")
        } catch {
            #expect(error.messages.contains("c.yaml: unknown key shipping.keep_local"))
            #expect(error.messages.contains("c.yaml: shipping.object_lock_days must be at least 0, found -1"))
            #expect(error.messages.contains { $0.hasPrefix("c.yaml: shipping.store:") })
        }
    }

    @Test func keysAreByNodeAndDay() {
        let node = NodeID(high: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210)
        // 2026-12-04T23:59:59Z to 2026-12-06T00:00:01Z.
        let seal = SegmentSeal(
            nodeID: node, sequence: 42, recordCount: 1, minTime: 1_796_428_799_000_000_000,
            maxTime: 1_796_515_201_000_000_000, merkleRoot: Digest32(bytes: [UInt8](repeating: 1, count: 32))!,
            previousSequence: 41, previousRoot: Digest32(bytes: [UInt8](repeating: 2, count: 32))!,
            sealedAtUnixNano: 0)
        #expect(
            ShippingLayout.segmentKey(seal) == "0123456789abcdeffedcba9876543210/2026-12-04/0000000000000042.seg")
        #expect(ShippingLayout.spanDays(seal) == 2)
        #expect(
            ShippingLayout.tombstoneKey(node: node, sequence: 7)
                == "0123456789abcdeffedcba9876543210/tombstones/0000000000000007.tomb")
    }
}

/// A Ceph cluster of the test's own (scripts/ceph-rgw.sh on free ports in a temporary dir), so its gateway can be
/// stopped and started without disturbing the store other suites use.
final class OwnRGW: Sendable {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/ceph-rgw.sh").path
    let dir: String
    let environment: [String: String]
    let endpoint: String

    init() throws {
        let base = Int.random(in: 20_000...29_000) / 100 * 100
        // One spelling of the path throughout: the script knows its daemons by the conf path on their command line.
        dir =
            URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
                "rgw-\(UInt64.random(in: 0...UInt64.max))"
            ).standardizedFileURL.path
        var env = ProcessInfo.processInfo.environment
        env["CEPH_RGW_DIR"] = dir
        env["MON_PORT"] = "\(base)"
        env["RGW_PORT"] = "\(base + 1)"
        env["MS_PORT_MIN"] = "\(base + 10)"
        env["MS_PORT_MAX"] = "\(base + 99)"
        env["S3_ACCESS_KEY"] = env["AWS_ACCESS_KEY_ID"]
        env["S3_SECRET_KEY"] = env["AWS_SECRET_ACCESS_KEY"]
        env["SKIP_APT"] = "1"
        environment = env
        endpoint = "http://127.0.0.1:\(base + 1)"
        try run("start")
    }

    /// Runs the script to its exit (not to the end of its output, which the daemons it starts would keep open),
    /// with SIGTERM and SIGINT set back to default: a test process may ignore them, and ignored signals are
    /// inherited, so the daemons would then shrug off the script's SIGTERM.
    func run(_ command: String) throws {
        let log = dir + ".log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? output.close() }
        try output.seekToEnd()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["--default-signal=TERM,INT", "/bin/bash", Self.script, command]
        p.environment = environment
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = output
        p.standardError = output
        try p.run()
        let deadline = Date().addingTimeInterval(180)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning { p.terminate() }
        guard !p.isRunning, p.terminationStatus == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw ChildProcessFailure("ceph-rgw.sh \(command) failed or hung: \(text)")
        }
    }

    func stop() {
        try? run("stop")
        try? FileManager.default.removeItem(atPath: dir + ".log")
    }

    func client() throws -> S3Client {
        var env = ProcessInfo.processInfo.environment
        env["AWS_ENDPOINT_URL"] = endpoint
        return try S3Client(S3Configuration.fromEnvironment(env))
    }
}

/// The test S3 user's keys (make test exports them after starting RGW); each suite that ships starts a cluster of
/// its own with them.
let s3KeysConfigured =
    ProcessInfo.processInfo.environment["AWS_ACCESS_KEY_ID"] != nil
    && ProcessInfo.processInfo.environment["AWS_SECRET_ACCESS_KEY"] != nil

/// The real `collector serve` shipping to a real RGW.
@Suite(
    .serialized, .ownThreads,
    .enabled(if: s3KeysConfigured, "needs AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (make test)"))
struct ShippingTests {
    static func config(_ data: String, _ body: String) throws -> String {
        let path = data + ".yaml"
        try body.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func poll(
        _ what: String, _ collector: CollectorProcessTests.Running, within seconds: Double = 60,
        _ done: () async throws -> Bool
    ) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await done() { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        // What the shipper shows, so that a timeout says which side stopped.
        let shipping = ((try? await collector.metrics()) ?? [:]).filter {
            $0.key.contains("ship") || $0.key.contains("local_segment")
        }
        let shown = shipping.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let said = String(collector.process.stderrSoFar.suffix(3000))
        Issue.record(Comment(rawValue: "timed out waiting for \(what); metrics: \(shown); the collector said: \(said)"))
        throw ChildProcessFailure("timed out waiting for \(what)")
    }

    /// Sealed segments in the catalog that the ledger under `<data>/shipped` does not name yet.
    static func unshipped(_ data: String) throws -> Int {
        let ledger = Set((try? FileManager.default.contentsOfDirectory(atPath: data + "/shipped")) ?? [])
        return try DataDirectory(data).loadCatalog().entries.filter {
            !ledger.contains(DataDirectory.fileName(sequence: $0.sequence, sealed: true))
        }.count
    }

    static func post(_ c: CollectorProcessTests.Running, seed: UInt64, spans: Int) async throws -> Int {
        let request: [UInt8] = try OTLPMapping.traceRequest(from: CollectorProcessTests.spans(seed: seed, spans))
            .serializedBytes()
        return try await c.post("/v1/traces", request, type: "application/x-protobuf").0
    }

    @Test func shipsThroughAnOutageNothingTwiceNothingLost() async throws {
        let store = try OwnRGW()
        defer { store.stop() }
        let s3 = try store.client()
        let bucket = "ship-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        try await s3.createBucket(bucket)
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let config = try Self.config(
            data,
            """
            storage:
              segment_bytes: 8192
            shipping:
              store: s3://\(bucket)/audit
              endpoint: \(store.endpoint)
              interval_seconds: 1
              max_backoff_seconds: 1
              request_timeout_seconds: 3
              keep_local_seconds: 0
            """)
        defer { try? FileManager.default.removeItem(atPath: config) }
        var sent = 0
        var collector = try CollectorProcessTests.Running(data: data, extra: ["--config", config])

        // Shipping while the store is up.
        for seed in 1...3 {
            #expect(try await Self.post(collector, seed: UInt64(seed), spans: 120) == 200)
            sent += 120
        }
        try await Self.poll("the first segments shipped", collector) {
            let m = try await collector.metrics()
            return (m["audit_collector_shipped_objects_total"] ?? 0) >= 1
                && m["audit_collector_ship_backlog_objects"] == 0
        }

        // The store goes away: the collector still acknowledges, sealed segments wait, the backlog shows.
        try store.run("gateway-stop")
        for seed in 4...6 {
            #expect(try await Self.post(collector, seed: UInt64(seed), spans: 120) == 200)
            sent += 120
        }
        try await Self.poll("a backlog while the store is down", collector) {
            let m = try await collector.metrics()
            return (m["audit_collector_ship_backlog_objects"] ?? 0) >= 1
                && (m["audit_collector_ship_failures_total"] ?? 0) >= 1
        }
        // A restart during the outage: the segment sealed at shutdown (these few spans, too few to fill one) joins
        // the backlog, which outlives the process. With the store down nothing can ship between the count below
        // and the new process, so what the new process ships is exactly the rest: nothing twice, nothing lost.
        #expect(try await Self.post(collector, seed: 7, spans: 10) == 200)
        sent += 10
        collector.stop(signal: SIGTERM)
        let waiting = try Self.unshipped(data)
        #expect(waiting >= 2, "the backlog and the shutdown's segment")
        collector = try CollectorProcessTests.Running(data: data, extra: ["--config", config])
        try await Self.poll("failures counted by the restarted collector while the store is down", collector) {
            (try await collector.metrics()["audit_collector_ship_failures_total"] ?? 0) >= 1
        }
        // Back: what waited ships.
        try store.run("gateway-start")
        try await Self.poll("the backlog shipped after the restart", collector) {
            let m = try await collector.metrics()
            return m["audit_collector_ship_backlog_objects"] == 0
                && (m["audit_collector_shipped_objects_total"] ?? 0) >= Double(waiting)
        }
        let shippedAfterRestart = try await collector.metrics()["audit_collector_shipped_objects_total"] ?? -1
        // Shipped and verified, kept 0 s: local retention removes all but the newest sealed segment on its next
        // pass, which may come after the backlog's last upload.
        try await Self.poll("local retention after shipping", collector) {
            try DataDirectory(data).loadCatalog().entries.count == 1
        }
        collector.stop(signal: SIGTERM)

        let node = try DataDirectory(data).readNodeID()
        let objects = try await s3.listAll(bucket: bucket, prefix: "audit/")
        let segments = objects.filter { $0.key.hasSuffix(".seg") }
        #expect(segments.allSatisfy { $0.key.hasPrefix("audit/\(node.hex)/") })
        // Every sequence once, under one name; and what the restarted collector shipped is exactly the rest.
        let sequences = segments.compactMap {
            DataDirectory.sequence(ofFileName: String($0.key.split(separator: "/").last!))
        }
        #expect(Set(sequences).count == segments.count)
        let ledger = try FileManager.default.contentsOfDirectory(atPath: data + "/shipped").filter {
            $0.hasSuffix(".seg")
        }
        #expect(ledger.count == segments.count)
        #expect(shippedAfterRestart == Double(waiting))
        // Nothing posted since the restart, so the shutdown sealed nothing new: still only the newest one is local.
        #expect(try DataDirectory(data).loadCatalog().entries.count == 1)

        // Nothing lost: the bucket's objects alone make a directory that verifies and holds every span sent.
        let rebuilt = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: rebuilt) }
        let dir = DataDirectory(rebuilt)
        try dir.create()
        try (node.hex + "\n").write(toFile: dir.nodeIDPath, atomically: true, encoding: .utf8)
        for object in segments {
            let bytes = try await s3.get(S3Location(bucket: bucket, prefix: ""), key: object.key).bytes
            let name = String(object.key.split(separator: "/").last!)
            try Data(bytes).write(to: URL(fileURLWithPath: dir.segmentsPath + "/" + name))
        }
        let records = try ShippingTests.spanRecords(in: dir)
        #expect(records == sent)
        let outcome = Verifier.verifyDirectory(dir)
        #expect(outcome.problems.isEmpty, "\(outcome.problems)")
    }

    @Test func spentDiskBudgetRefusesLikeAFullDisk() async throws {
        // A store nobody answers for: nothing ships, so the budget is soon spent.
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let config = try Self.config(
            data,
            """
            storage:
              segment_bytes: 8192
            shipping:
              store: s3://nowhere/audit
              endpoint: http://127.0.0.1:9
              interval_seconds: 1
              max_backoff_seconds: 1
              request_timeout_seconds: 2
              local_budget_bytes: 16384
            """)
        defer { try? FileManager.default.removeItem(atPath: config) }
        let collector = try CollectorProcessTests.Running(data: data, extra: ["--config", config])
        var seed: UInt64 = 1
        var acknowledged = 0
        var refused = false
        let deadline = Date().addingTimeInterval(60)
        while !refused && Date() < deadline {
            let status = try await Self.post(collector, seed: seed, spans: 40)
            #expect(status == 200 || status == 503)
            if status == 200 { acknowledged += 40 }
            refused = status == 503
            seed += 1
            if !refused { try await Task.sleep(for: .milliseconds(300)) }
        }
        #expect(refused)
        let m = try await collector.metrics()
        #expect((m["audit_collector_local_segment_bytes"] ?? 0) >= 16_384)
        #expect(
            (m["audit_collector_rejected_items_total{receiver=\"otlp_http_traces\",reason=\"disk_full\"}"] ?? 0) > 0)
        #expect(try await collector.get("/healthz") == 200)
        collector.stop(signal: SIGTERM)
        // Everything acknowledged before the refusal is on disk, and nothing refused is.
        let stored = try ShippingTests.spanRecords(in: DataDirectory(data))
        #expect(stored == acknowledged)
    }

    /// Records of the sealed segments in `dir`, not counting the completeness ledger each segment ends with.
    static func spanRecords(in dir: DataDirectory) throws -> Int {
        var n = 0
        for entry in try dir.currentCatalog(repair: true).entries {
            let reader = try SegmentReader(path: dir.path(relative: entry.relativePath), sealed: true)
            n += try reader.scan().filter { !LedgerRecord.isLedger($0.event) }.count
        }
        return n
    }
}
