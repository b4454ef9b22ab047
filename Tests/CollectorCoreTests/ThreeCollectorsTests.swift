import Foundation
import LogFormat
import ObjectStore
import RemoteStore
import StoreQuery
import TestSupport
import Testing

@testable import CollectorCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Issue 18's test: three collectors behind Debian's nginx as the load balancer (an `upstream` for OTLP/HTTP and
/// Zipkin, `grpc_pass` for OTLP/gRPC), each shipping to one RGW bucket; the end-to-end suite's edge and
/// OpenTelemetry SDK services send through it, so one trace's spans land on different collectors; one collector is
/// SIGKILLed mid-traffic and restarted. Then queries over the bucket alone return every user's requests with
/// complete traces, nothing an exporter saw acknowledged is missing, verify over the bucket is clean, and a byte
/// flipped in one stored object is caught and named.
@Suite(
    .ownThreads, .serialized,
    .enabled(if: installedNginx != nil, "nginx is not installed (`make test` installs Debian's nginx-core)"),
    .enabled(
        if: ProcessInfo.processInfo.environment["AWS_ENDPOINT_URL"] != nil && s3KeysConfigured,
        "needs an S3 endpoint in AWS_ENDPOINT_URL (make test starts Ceph RGW)"))
struct ThreeCollectorsTests {
    typealias Child = EndToEndTests.Child

    /// Runs `body` on a thread of its own (the bucket store blocks while the S3 client works in Swift's pool).
    func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            Thread { c.resume(with: Result { try body() }) }.start()
        }
    }

    @Test func oneBucketQueryAnswersForThreeCollectorsBehindNginx() async throws {
        let env = ProcessInfo.processInfo.environment
        let s3 = try S3Client(S3Configuration.fromEnvironment(env))
        let bucket = "three-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        try await s3.createBucket(bucket)
        let location = S3Location(bucket: bucket, prefix: "audit")
        let dir = CollectorProcessTests.tempDir()
        try FileManager.default.createDirectory(atPath: dir + "/lb/tmp", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/edge/tmp", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        // Three collectors, each with its own data directory, sealing small segments and shipping them.
        var configs: [String] = []
        var collectors: [CollectorProcessTests.Running] = []
        var helpers: [Child] = []
        var processes: [ChildProcess] = []
        defer {
            for p in processes { p.stop(signal: SIGTERM) }
            for h in helpers { h.stop() }
            for c in collectors where c.process.isRunning { c.stop(signal: SIGTERM) }
        }
        for i in 0..<3 {
            configs.append(
                try ShippingTests.config(
                    dir + "/c\(i)",
                    """
                    storage:
                      segment_bytes: 16384
                    shipping:
                      store: s3://\(bucket)/audit
                      interval_seconds: 1
                      max_backoff_seconds: 1
                      request_timeout_seconds: 5
                    """))
            collectors.append(
                try CollectorProcessTests.Running(
                    data: dir + "/c\(i)", extra: ["--config", configs[i], "--syslog-tcp", "off", "--fsync", "always"]))
        }

        // The load balancer.
        let lb = (
            http: try EndToEndTests.freePort(), grpc: try EndToEndTests.freePort(), zipkin: try EndToEndTests.freePort()
        )
        func servers(_ port: (CollectorProcessTests.Running) -> Int) -> String {
            collectors.map { "server 127.0.0.1:\(port($0)) max_fails=1 fail_timeout=2s;" }.joined(separator: " ")
        }
        let lbConf = """
            worker_processes 1;
            pid lb.pid;
            error_log error.log warn;
            events { worker_connections 512; }
            http {
                client_body_temp_path tmp/client_body;
                proxy_temp_path tmp/proxy;
                fastcgi_temp_path tmp/fastcgi;
                uwsgi_temp_path tmp/uwsgi;
                scgi_temp_path tmp/scgi;
                access_log off;
                upstream otlp_http { \(servers { $0.port }) }
                upstream otlp_grpc { \(servers { $0.grpcPort }) }
                upstream zipkin { \(servers { $0.zipkinPort }) }
                server {
                    listen 127.0.0.1:\(lb.http);
                    location / {
                        proxy_pass http://otlp_http;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_next_upstream error timeout http_502 http_503 non_idempotent;
                    }
                }
                server {
                    listen 127.0.0.1:\(lb.zipkin);
                    location / {
                        proxy_pass http://zipkin;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_next_upstream error timeout http_502 http_503 non_idempotent;
                    }
                }
                server {
                    listen 127.0.0.1:\(lb.grpc) http2;
                    location / {
                        grpc_pass grpc://otlp_grpc;
                        grpc_next_upstream error timeout http_502 http_503 non_idempotent;
                    }
                }
            }
            """
        try lbConf.write(toFile: dir + "/lb/lb.conf", atomically: true, encoding: .utf8)
        processes.append(
            try ChildProcess(
                EndToEndTests.nginx!,
                ["-p", dir + "/lb/", "-c", dir + "/lb/lb.conf", "-e", dir + "/lb/error.log", "-g", "daemon off;"]))

        // The end-to-end suite's services, exporting through the load balancer, and its edge.
        let python = try PythonSDKTests.python(".venv-otel")
        let verifier = try Child(
            python, [EndToEndTests.examples.appendingPathComponent("nginx/jwt_verifier.py").path],
            environment: ["AUDIT_EDGE_JWT_KEY": EndToEndTests.jwtKey])
        helpers.append(verifier)
        let service = EndToEndTests.examples.appendingPathComponent("otel-python/service.py").path
        let analytics = try Child(
            python,
            [
                service, "--name", "analytics", "--exporter", "zipkin", "--endpoint", "http://127.0.0.1:\(lb.zipkin)",
                "--database", dir + "/analytics.sqlite",
            ])
        helpers.append(analytics)
        let orders = try Child(
            python,
            [
                service, "--name", "orders", "--exporter", "otlp-grpc", "--endpoint", "http://127.0.0.1:\(lb.grpc)",
                "--downstream", "http://127.0.0.1:\(analytics.port)",
            ])
        helpers.append(orders)
        let frontend = try Child(
            python,
            [
                service, "--name", "frontend", "--exporter", "otlp-http", "--endpoint", "http://127.0.0.1:\(lb.http)",
                "--downstream", "http://127.0.0.1:\(orders.port)",
            ])
        helpers.append(frontend)
        let services = ["analytics": analytics, "orders": orders, "frontend": frontend]
        let edgePort = try EndToEndTests.freePort()
        var edgeConf = try String(
            contentsOf: EndToEndTests.examples.appendingPathComponent("nginx/edge.conf.template"), encoding: .utf8)
        for (k, v) in [
            ("@EDGE_PORT@", edgePort), ("@VERIFIER_PORT@", verifier.port), ("@UPSTREAM_PORT@", frontend.port),
            ("@SYSLOG_PORT@", collectors[0].syslogUDPPort),
        ] {
            edgeConf = edgeConf.replacingOccurrences(of: k, with: String(v))
        }
        try edgeConf.write(toFile: dir + "/edge/edge.conf", atomically: true, encoding: .utf8)
        processes.append(
            try ChildProcess(
                EndToEndTests.nginx!,
                [
                    "-p", dir + "/edge/", "-c", dir + "/edge/edge.conf", "-e", dir + "/edge/error.log", "-g",
                    "daemon off;",
                ]
            ))
        let deadline = Date().addingTimeInterval(20)
        while !(EndToEndTests.Stack.accepts(edgePort) && EndToEndTests.Stack.accepts(lb.http)
            && EndToEndTests.Stack.accepts(lb.grpc))
        {
            guard Date() < deadline else {
                let logs = ["lb", "edge"].map {
                    (try? String(contentsOfFile: dir + "/\($0)/error.log", encoding: .utf8)) ?? ""
                }
                throw EndToEndTests.Failure(description: "nginx did not start: \(logs)")
            }
            usleep(50_000)
        }

        // Traffic from three users; halfway, the second collector is SIGKILLed and started again.
        let users = ["alice", "bob", "carol"]
        let tokens = Dictionary(uniqueKeysWithValues: users.map { ($0, EndToEndTests.token($0)) })
        var sent: [String: Int] = [:]
        func request(_ user: String, _ n: Int) async throws {
            var r = URLRequest(url: URL(string: "http://127.0.0.1:\(edgePort)/api/orders?r=\(user)-\(n)")!)
            r.setValue("Bearer " + tokens[user]!, forHTTPHeaderField: "Authorization")
            let (_, response) = try await URLSession.shared.data(for: r)
            #expect((response as? HTTPURLResponse)?.statusCode == 200, "\(user) \(n)")
            sent[user, default: 0] += 1
        }
        for n in 0..<8 { for u in users { try await request(u, n) } }
        let killed = collectors[1]
        killed.stop(signal: SIGKILL)
        for n in 8..<12 { for u in users { try await request(u, n) } }
        collectors[1] = try CollectorProcessTests.Running(
            data: dir + "/c1",
            extra: [
                "--config", configs[1], "--syslog-tcp", "off", "--fsync", "always", "--otlp-http",
                "127.0.0.1:\(killed.port)", "--otlp-grpc", "127.0.0.1:\(killed.grpcPort)", "--zipkin",
                "127.0.0.1:\(killed.zipkinPort)", "--syslog-udp", "127.0.0.1:\(killed.syslogUDPPort)",
            ])
        for n in 12..<16 { for u in users { try await request(u, n) } }
        // nginx spreads the exporters' posts over the collectors in turn, but there are few posts (the SDKs batch)
        // and the restarted collector is skipped for 2 s after its failures: a run can leave one collector with
        // nothing to ship, and the bucket with two nodes. More requests, each round flushed, until every
        // collector has stored spans of its own.
        func flushAll() async throws {
            for (_, s) in services {
                var flush = URLRequest(url: URL(string: "http://127.0.0.1:\(s.port)/_flush")!)
                flush.httpMethod = "POST"
                flush.timeoutInterval = 60
                _ = try await URLSession.shared.data(for: flush)
            }
        }
        func hasSpans(_ i: Int) throws -> Bool {
            let store = try AuditStore(directories: [DataDirectory(dir + "/c\(i)")])
            return try services.keys.contains { name in
                try store.search(EventQuery(terms: [.service(name)])).contains { $0.event.kind == .span }
            }
        }
        var round = 16
        try await flushAll()
        while try collectors.indices.contains(where: { try !hasSpans($0) }) {
            guard round < 64 else { throw EndToEndTests.Failure(description: "a collector received no spans") }
            for u in users { try await request(u, round) }
            round += 1
            try await flushAll()
        }

        // What the exporters saw acknowledged.
        var acked: Set<[String]> = []
        var failed = 0
        for (_, s) in services {
            var flush = URLRequest(url: URL(string: "http://127.0.0.1:\(s.port)/_flush")!)
            flush.httpMethod = "POST"
            flush.timeoutInterval = 60
            _ = try await URLSession.shared.data(for: flush)
            let (body, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(s.port)/_acked")!)
            let object = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
            acked.formUnion(try #require(object["acked"] as? [[String]]))
            failed += object["failed"] as? Int ?? 0
        }
        #expect(failed == 0)
        let requests = sent.values.reduce(0, +)
        #expect(acked.count == 6 * requests, "a server and a client span per service per request")
        // The edge's access lines (syslog over UDP, not acknowledged) reach the first collector.
        let edgeDeadline = Date().addingTimeInterval(20)
        while try AuditStore(directories: [DataDirectory(dir + "/c0")]).search(
            EventQuery(terms: [.service("edge-nginx")])
        ).count < requests {
            guard Date() < edgeDeadline else {
                throw EndToEndTests.Failure(description: "the edge's access lines did not all arrive")
            }
            usleep(100_000)
        }

        // Seal and ship everything: SIGTERM seals the open segment; started again, each collector ships it.
        for i in collectors.indices {
            collectors[i].stop(signal: SIGTERM)
            collectors[i] = try CollectorProcessTests.Running(
                data: dir + "/c\(i)", extra: ["--config", configs[i], "--syslog-tcp", "off"])
            let c = collectors[i]
            // Shipped: every sealed segment of the directory has its ledger entry (written once the stored object
            // is checked).
            let data = DataDirectory(dir + "/c\(i)")
            let shipDeadline = Date().addingTimeInterval(60)
            while true {
                let sealed = Set(try data.currentCatalog(repair: false).entries.map(\.sequence))
                let shipped = Set(
                    ((try? FileManager.default.contentsOfDirectory(atPath: data.root + "/shipped")) ?? [])
                        .filter { $0.hasSuffix(".seg") }.compactMap(DataDirectory.sequence(ofFileName:)))
                if !sealed.isEmpty && sealed.isSubset(of: shipped) { break }
                guard Date() < shipDeadline else {
                    throw EndToEndTests.Failure(
                        description: "collector \(i): \(sealed.subtracting(shipped).sorted()) not shipped")
                }
                usleep(200_000)
            }
            c.stop(signal: SIGTERM)
        }

        // One store over the bucket alone: three nodes, every acknowledged span, every user's requests whole.
        let cache = dir + "/cache"
        let ackedSpans = acked
        let answers = try await onThread {
            () throws -> (nodes: Int, spans: Set<[String]>, activity: [String: [UserRequest]]) in
            let remote = BucketSegments(
                client: s3, location: location, cache: try RangeCacheDirectory(root: cache, capacityBytes: 256 << 20))
            let store = try AuditStore(directories: [], remotes: [remote])
            let nodes = Set(store.sealedSegments.map(\.entry.nodeID)).count
            let traces = Set(ackedSpans.map { $0[0] }).compactMap(TraceID.init(hex:))
            let found = try store.traces(traces)
            let spans = Set(found.values.flatMap { $0 }.map { [$0.event.traceID.hex, $0.event.spanID.hex] })
            let now = FileIO.nowUnixNano()
            var activity: [String: [UserRequest]] = [:]
            for u in users {
                activity[u] = try store.activity(user: u, timeRange: (now - 3_600_000_000_000)...now)
            }
            return (nodes, spans, activity)
        }
        #expect(answers.nodes == 3)
        #expect(
            acked.subtracting(answers.spans).isEmpty,
            "acknowledged but not in the bucket: \(acked.subtracting(answers.spans))")
        let ackedByTrace = Dictionary(grouping: acked, by: { $0[0] })
        var spread = 0
        for u in users {
            let mine = answers.activity[u] ?? []
            #expect(mine.count == sent[u], "\(u): \(mine.count) requests of \(sent[u] ?? 0)")
            for r in mine {
                #expect(r.request.event.source == .edge)
                let trace = r.request.event.traceID.hex
                let spans = Set(r.trace.map { [$0.event.traceID.hex, $0.event.spanID.hex] })
                #expect(Set(ackedByTrace[trace] ?? []).isSubset(of: spans), "\(u): trace \(trace) is incomplete")
                #expect(r.trace.count == 1 + (ackedByTrace[trace]?.count ?? 0), "\(u): trace \(trace)")
                if Set(r.trace.map(\.location.nodeID)).count > 1 { spread += 1 }
            }
        }
        #expect(spread > 0, "some trace's spans landed on different collectors")

        // verify over the bucket is clean; a byte flipped in one stored object is caught and named.
        let clean = try await onThread {
            try BucketSegments(
                client: s3, location: location, cache: try RangeCacheDirectory(root: cache, capacityBytes: 256 << 20)
            ).verify(local: [], options: VerifyOptions())
        }
        #expect(clean.isValid, "\(clean.bucket.problems + clean.chainProblems)")
        let objects = try await s3.listAll(bucket: bucket, prefix: "audit/").filter { $0.key.hasSuffix(".seg") }
        let victim = try #require(objects.first)
        let relative = String(victim.key.dropFirst("audit/".count))
        var bytes = try await s3.get(location, key: relative).bytes
        bytes[bytes.count / 2] ^= 0x10
        _ = try await s3.put(location, key: relative, body: bytes, createOnly: false)
        let damaged = try await onThread {
            try BucketSegments(
                client: s3, location: location, cache: try RangeCacheDirectory(root: cache, capacityBytes: 256 << 20)
            ).verify(local: [], options: VerifyOptions())
        }
        #expect(!damaged.isValid)
        #expect(
            damaged.bucket.problems.contains { $0.file == "s3://\(bucket)/\(victim.key)" }, "\(damaged.bucket.problems)"
        )
    }
}
