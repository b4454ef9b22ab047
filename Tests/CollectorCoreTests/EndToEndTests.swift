import Crypto
import Foundation
import LogFormat
import StoreQuery
import TestSupport
import Testing

@testable import CollectorCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Debian's nginx, if installed.
let installedNginx: String? = ["/usr/sbin/nginx", "/usr/bin/nginx"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}

/// The whole pipeline with software nobody here wrote: Debian's nginx as the edge (bearer JWT checked with
/// `auth_request`, user headers and `traceparent` set, JSON access lines over syslog UDP), three services
/// instrumented with the OpenTelemetry Python SDK exporting over OTLP/HTTP, OTLP/gRPC and Zipkin (the last
/// one queries an analytics SQL pool), the real `collector`, then the real `auditq`. Every configuration and
/// program comes from `examples/` as a user would take it.
@Suite(
    .ownThreads, .serialized,
    .enabled(if: installedNginx != nil, "nginx is not installed (`make test` installs Debian's nginx-core)"))
struct EndToEndTests {
    static let examples = PythonSDKTests.root.appendingPathComponent("examples")
    static let auditq = CollectorProcessTests.binary.deletingLastPathComponent().appendingPathComponent("auditq").path
    static let nginx = installedNginx
    static let jwtKey = "e2e-edge-key-\(UInt64.random(in: 0...UInt64.max))"

    /// An HS256 JWT (RFC 7519) signed with `key`.
    static func token(_ subject: String, groups: [String] = [], key: String = jwtKey, expires: TimeInterval = 3600)
        -> String
    {
        func b64url(_ d: Data) -> String {
            d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let claims: [String: Any] = [
            "sub": subject, "email": "\(subject)@example.com", "groups": groups, "iss": "https://idp.example",
            "exp": Int(Date().timeIntervalSince1970 + expires),
        ]
        let header = b64url(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = b64url(try! JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys]))
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data((header + "." + payload).utf8), using: SymmetricKey(data: Data(key.utf8)))
        return header + "." + payload + "." + b64url(Data(mac))
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A helper process that prints `{"port": N}` on its first line once it listens.
    final class Child: @unchecked Sendable {
        // @unchecked: set once in init, then read.
        let process: ChildProcess
        let port: Int

        init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
            process = try ChildProcess(
                executable, arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
            let text = try process.waitForStdout("its port", within: 60) { $0.contains("\n") }
            guard let line = text.split(separator: "\n").first,
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let port = object["port"] as? Int
            else {
                process.stop(signal: SIGKILL)
                let errors = process.stderrSoFar
                throw Failure(description: "\(arguments.first ?? executable) did not start: \(text) \(errors)")
            }
            self.port = port
        }

        /// SIGKILL: a child of the test process may inherit a signal mask that blocks SIGTERM.
        func stop() {
            process.stop(signal: SIGKILL)
        }
    }

    /// A TCP port that was free a moment ago (nginx cannot be told to take port 0 and say which it got).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(fd, p, length) == 0 && getsockname(fd, p, &length) == 0
            }
        }
        guard bound else { throw Failure(description: "bind: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Collector, token verifier, three instrumented services and nginx, all on loopback, in a temporary
    /// directory.
    final class Stack: @unchecked Sendable {
        // @unchecked: the collector is replaced only by `restartCollector`, which the tests call while no
        // other task reads it.
        let dir = CollectorProcessTests.tempDir()
        var data: String { dir + "/data" }
        private(set) var collector: CollectorProcessTests.Running
        let collectorOptions: [String]
        var helpers: [Child] = []
        var services: [String: Child] = [:]
        private(set) var nginx: ChildProcess?
        private(set) var edge = ""

        init(collectorOptions: [String] = []) throws {
            try FileManager.default.createDirectory(atPath: dir + "/nginx/tmp", withIntermediateDirectories: true)
            self.collectorOptions = collectorOptions
            collector = try CollectorProcessTests.Running(
                data: dir + "/data", extra: ["--syslog-tcp", "off"] + collectorOptions)
            let python = try PythonSDKTests.python(".venv-otel")
            do {
                let verifier = try Child(
                    python, [EndToEndTests.examples.appendingPathComponent("nginx/jwt_verifier.py").path],
                    environment: ["AUDIT_EDGE_JWT_KEY": EndToEndTests.jwtKey])
                helpers.append(verifier)
                let service = EndToEndTests.examples.appendingPathComponent("otel-python/service.py").path
                let analytics = try Child(
                    python,
                    [
                        service, "--name", "analytics", "--exporter", "zipkin",
                        "--endpoint", "http://127.0.0.1:\(collector.zipkinPort)",
                        "--database", dir + "/analytics.sqlite",
                    ])
                let orders = try Child(
                    python,
                    [
                        service, "--name", "orders", "--exporter", "otlp-grpc",
                        "--endpoint", "http://127.0.0.1:\(collector.grpcPort)",
                        "--downstream", "http://127.0.0.1:\(analytics.port)",
                    ])
                let frontend = try Child(
                    python,
                    [
                        service, "--name", "frontend", "--exporter", "otlp-http",
                        "--endpoint", collector.base,
                        "--downstream", "http://127.0.0.1:\(orders.port)",
                    ])
                services = ["analytics": analytics, "orders": orders, "frontend": frontend]
                helpers += [analytics, orders, frontend]

                // The example configuration, with this run's addresses in place of its placeholders.
                let edgePort = try EndToEndTests.freePort()
                var conf = try String(
                    contentsOf: EndToEndTests.examples.appendingPathComponent("nginx/edge.conf.template"),
                    encoding: .utf8)
                for (k, v) in [
                    ("@EDGE_PORT@", edgePort), ("@VERIFIER_PORT@", verifier.port), ("@UPSTREAM_PORT@", frontend.port),
                    ("@SYSLOG_PORT@", collector.syslogUDPPort),
                ] {
                    conf = conf.replacingOccurrences(of: k, with: String(v))
                }
                guard conf.range(of: "@[A-Z_]+_PORT@", options: .regularExpression) == nil else {
                    throw Failure(description: "a placeholder of edge.conf.template was not replaced")
                }
                try conf.write(toFile: dir + "/nginx/edge.conf", atomically: true, encoding: .utf8)
                let nginx = try ChildProcess(
                    EndToEndTests.nginx!,
                    [
                        "-p", dir + "/nginx/", "-c", dir + "/nginx/edge.conf", "-e", dir + "/nginx/error.log",
                        "-g", "daemon off;",
                    ])
                self.nginx = nginx
                edge = "http://127.0.0.1:\(edgePort)"
                let deadline = Date().addingTimeInterval(20)
                while (try? String(contentsOfFile: dir + "/nginx/nginx.pid", encoding: .utf8)) == nil
                    || !Self.accepts(edgePort)
                {
                    guard nginx.isRunning, Date() < deadline else {
                        let log = (try? String(contentsOfFile: dir + "/nginx/error.log", encoding: .utf8)) ?? ""
                        throw Failure(description: "nginx did not start: \(log)")
                    }
                    usleep(50_000)
                }
            } catch {
                stop()
                throw error
            }
        }

        static func accepts(_ port: Int) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
        }

        /// One request through the edge; the HTTP status.
        func request(_ target: String, token: String?, traceparent: String? = nil) async throws -> Int {
            var r = URLRequest(url: URL(string: edge + target)!)
            if let token { r.setValue("Bearer " + token, forHTTPHeaderField: "Authorization") }
            if let traceparent { r.setValue(traceparent, forHTTPHeaderField: "traceparent") }
            let (_, response) = try await URLSession.shared.data(for: r)
            return (response as? HTTPURLResponse)?.statusCode ?? 0
        }

        /// Has every service export what it holds, then returns what the collector acknowledged to each
        /// (trace id, span id) and how many spans failed to export.
        func flushAndAcknowledged() async throws -> (acked: [String: Set<[String]>], failed: Int) {
            var acked: [String: Set<[String]>] = [:]
            var failed = 0
            for (name, service) in services {
                var flush = URLRequest(url: URL(string: "http://127.0.0.1:\(service.port)/_flush")!)
                flush.httpMethod = "POST"
                flush.timeoutInterval = 60
                _ = try await URLSession.shared.data(for: flush)
                let (body, _) = try await URLSession.shared.data(
                    from: URL(string: "http://127.0.0.1:\(service.port)/_acked")!)
                let object = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
                acked[name] = Set(try #require(object["acked"] as? [[String]]))
                failed += object["failed"] as? Int ?? 0
            }
            return (acked, failed)
        }

        /// Kills the collector with SIGKILL and starts it again on the same data directory and ports.
        /// SIGKILL, then `whileDown` (the collector stays down until it returns), then a new collector on the same
        /// data and ports.
        func restartCollector(whileDown: () async -> Void = {}) async throws {
            collector.stop(signal: SIGKILL)
            await whileDown()
            let ports = [
                "--otlp-http", "127.0.0.1:\(collector.port)", "--otlp-grpc", "127.0.0.1:\(collector.grpcPort)",
                "--zipkin", "127.0.0.1:\(collector.zipkinPort)", "--syslog-udp", "127.0.0.1:\(collector.syslogUDPPort)",
            ]
            collector = try CollectorProcessTests.Running(
                data: data, extra: ["--syslog-tcp", "off"] + collectorOptions + ports)
        }

        /// Waits until the store holds `count` edge access events (syslog over UDP is not acknowledged).
        func waitForEdgeEvents(_ count: Int) throws {
            let deadline = Date().addingTimeInterval(20)
            var seen = 0
            repeat {
                seen = try AuditStore(directories: [DataDirectory(data)]).search(
                    EventQuery(terms: [.service("edge-nginx")])
                ).count
                if seen >= count { return }
                usleep(100_000)
            } while Date() < deadline
            throw Failure(description: "only \(seen) of \(count) nginx access lines reached the store")
        }

        func stop() {
            nginx?.stop(signal: SIGTERM)
            for h in helpers { h.stop() }
            if collector.process.isRunning { collector.stop(signal: SIGTERM) }
        }
    }

    /// Runs auditq; exit status, stdout, stderr.
    static func auditq(_ arguments: [String]) throws -> (Int32, String, String) {
        let r = try ChildProcess.run(auditq, arguments)
        return (r.status, r.stdout, r.stderr)
    }

    static func ndjson(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    /// A request a scenario sends, and what the edge must answer.
    struct Sent {
        let user: String?
        let target: String
        let status: Int
        let traceparent: String?
    }

    static func randomHex(_ digits: Int) -> String {
        String((0..<digits).map { _ in "0123456789abcdef".randomElement()! })
    }

    @Test func usersRequestsAreReconstructedAcrossEdgeAndServicesAndTheEvidenceVerifies() async throws {
        let stack = try Stack(collectorOptions: ["--fsync", "always"])
        defer {
            stack.stop()
            try? FileManager.default.removeItem(atPath: stack.dir)
        }
        let tokens = [
            "alice": Self.token("alice", groups: ["admins"]), "bob": Self.token("bob"), "carol": Self.token("carol"),
        ]
        let clientTrace = Self.randomHex(32)
        let clientParent = Self.randomHex(16)
        let plan: [Sent] = [
            Sent(user: "alice", target: "/api/orders?r=a1", status: 200, traceparent: nil),
            Sent(
                user: "alice", target: "/api/orders?r=a2", status: 200,
                traceparent: "00-\(clientTrace)-\(clientParent)-01"),
            Sent(user: "alice", target: "/admin/report?r=a3", status: 200, traceparent: nil),
            Sent(user: "alice", target: "/api/fail?r=a4", status: 500, traceparent: nil),
            Sent(user: "bob", target: "/api/orders?r=b1", status: 200, traceparent: nil),
            Sent(user: "bob", target: "/admin/report?r=b2", status: 403, traceparent: nil),
            Sent(
                user: "bob", target: "/api/fail?r=b3", status: 500,
                traceparent: "00-\(Self.randomHex(32))-\(Self.randomHex(16))-01"),
            Sent(user: "carol", target: "/api/orders?r=c1", status: 200, traceparent: nil),
            Sent(user: nil, target: "/api/orders?r=x1", status: 401, traceparent: nil),  // no token
            // A token signed with another key.
            Sent(user: nil, target: "/api/orders?r=x2", status: 401, traceparent: nil),
            Sent(user: nil, target: "/api/orders?r=x3", status: 401, traceparent: nil),  // an expired token
        ]
        for sent in plan {
            let token: String? =
                switch sent.target {
                case "/api/orders?r=x1": nil
                case "/api/orders?r=x2": Self.token("mallory", key: "not-the-edge-key")
                case "/api/orders?r=x3": Self.token("alice", expires: -60)
                default: tokens[sent.user!]
                }
            let status = try await stack.request(sent.target, token: token, traceparent: sent.traceparent)
            #expect(status == sent.status, "\(sent.target)")
        }
        let passed = plan.filter { $0.status == 200 || $0.status == 500 }.count
        let (acked, failed) = try await stack.flushAndAcknowledged()
        #expect(failed == 0)
        for service in ["frontend", "orders", "analytics"] {
            #expect(
                acked[service]?.count == 2 * passed,
                "\(service): a server and a client span per request that passed the edge")
        }
        try stack.waitForEdgeEvents(plan.count)

        for user in ["alice", "bob", "carol"] {
            let (status, out, errors) = try Self.auditq([
                "activity", "--data", stack.data, "--user", user, "--date", "today", "--format", "json",
            ])
            #expect(status == 0, "\(errors)")
            let lines = try Self.ndjson(out)
            let mine = plan.filter { $0.user == user }
            #expect(lines.count == mine.count, "\(user): \(out)")
            var targets: [String] = []
            for line in lines {
                let request = try #require((line["request"] as? [String: Any])?["event"] as? [String: Any])
                let http = try #require(request["http"] as? [String: Any])
                let target = try #require(http["target"] as? String)
                targets.append(target)
                let sent = try #require(mine.first { $0.target == target }, "\(user) did not send \(target)")
                try Self.checkTree(line, request: request, sent: sent, user: user)
            }
            #expect(Set(targets) == Set(mine.map(\.target)), "exactly \(user)'s requests")
            #expect(targets.count == Set(targets).count, "each request once")
        }

        // Refused at the edge without a valid token: logged with no user, and nothing went downstream.
        let (status401, denied, _) = try Self.auditq([
            "search", "--data", stack.data, "--status", "401", "--date", "today", "--format", "json",
        ])
        #expect(status401 == 0)
        let refused = try Self.ndjson(denied).compactMap { $0["event"] as? [String: Any] }
        #expect(refused.count == 3)
        for event in refused {
            #expect(event["user"] == nil)
            let trace = try #require(event["trace_id"] as? String)
            let (_, whole, _) = try Self.auditq(["trace", "--data", stack.data, trace, "--format", "json"])
            #expect(try Self.ndjson(whole).count == 1, "a refused request has no downstream trace")
        }

        // Seal, then the evidence for one user, checked without the data; then a flipped byte is named.
        stack.collector.stop(signal: SIGTERM)
        #expect(stack.collector.process.terminationStatus == 0)
        let bundle = stack.dir + "/evidence"
        let (evidence, summary, evidenceErrors) = try Self.auditq([
            "evidence", "--data", stack.data, "--user", "alice", "--date", "today", "--out", bundle,
        ])
        #expect(evidence == 0, "\(summary) \(evidenceErrors)")
        #expect((summary + evidenceErrors).contains("4 requests"), "\(summary) \(evidenceErrors)")
        let (bundleStatus, bundleReport, _) = try Self.auditq(["verify", "--bundle", bundle])
        #expect(bundleStatus == 0, "\(bundleReport)")
        #expect(bundleReport.contains(" 0 problems"), "\(bundleReport)")
        let (verifyStatus, verifyReport, _) = try Self.auditq(["verify", "--data", stack.data])
        #expect(verifyStatus == 0, "\(verifyReport)")

        let segments = try FileManager.default.contentsOfDirectory(atPath: stack.data + "/segments").filter {
            $0.hasSuffix(".seg")
        }.sorted()
        let segment = try #require(segments.first)
        let path = stack.data + "/segments/" + segment
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0x20
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (tampered, tamperedOut, tamperedErrors) = try Self.auditq(["verify", "--data", stack.data])
        let tamperedReport = tamperedOut + tamperedErrors
        #expect(tampered == 3, "\(tamperedReport)")
        #expect(tamperedReport.contains(segment), "verify names the damaged segment: \(tamperedReport)")
    }

    /// One activity line: the edge's access event is the request and the root of the services' tree.
    static func checkTree(_ line: [String: Any], request: [String: Any], sent: Sent, user: String) throws {
        let traceID = try #require(line["trace_id"] as? String)
        let records = try #require(line["trace"] as? [[String: Any]]).compactMap { $0["event"] as? [String: Any] }
        #expect(request["kind"] as? String == "access")
        #expect(request["source"] as? String == "edge")
        #expect((request["user"] as? [String: Any])?["subject"] as? String == user)
        #expect((request["user"] as? [String: Any])?["origin"] as? String == "edge")
        #expect((request["http"] as? [String: Any])?["status_code"] as? Int == sent.status)
        #expect(request["trace_id"] as? String == traceID)
        let attributes = try #require(request["attributes"] as? [String: Any])
        if let traceparent = sent.traceparent {
            // The client's trace continues; its span is the edge event's parent.
            let parts = traceparent.split(separator: "-").map(String.init)
            #expect(traceID == parts[1])
            #expect(request["parent_span_id"] as? String == parts[2])
        } else {
            // The edge started the trace from its request id.
            #expect(traceID == attributes["request_id"] as? String)
            #expect(request["parent_span_id"] == nil)
        }
        if sent.status == 403 {
            #expect(records.count == 1, "a request refused at the edge has no downstream trace")
            return
        }
        #expect(
            records.count == 7, "edge + server and client span of three services: \(records.map { $0["name"] ?? "?" })")
        func span(_ service: String, _ kind: String) throws -> [String: Any] {
            let found = records.filter {
                $0["service"] as? String == service && $0["span_kind"] as? String == kind
                    && $0["kind"] as? String == "span"
            }
            #expect(found.count == 1, "\(service) \(kind)")
            return try #require(found.first, "no \(kind) span of \(service) in \(traceID)")
        }
        let chain = try [
            request, span("frontend", "server"), span("frontend", "client"), span("orders", "server"),
            span("orders", "client"), span("analytics", "server"), span("analytics", "client"),
        ]
        for (parent, child) in zip(chain, chain.dropFirst()) {
            #expect(child["trace_id"] as? String == traceID)
            #expect(
                child["parent_span_id"] as? String == parent["span_id"] as? String,
                "\(child["service"] ?? "?") \(child["span_kind"] ?? "?") hangs under \(parent["service"] ?? "?") \(parent["span_kind"] ?? "?")"
            )
        }
        // The edge's request encloses the first service's span (nginx's times have millisecond resolution).
        func nanos(_ e: [String: Any], _ key: String) -> Int64 { Int64(e[key] as? String ?? "") ?? -1 }
        let slack: Int64 = 2_000_000
        #expect(nanos(request, "start_time_unix_nano") <= nanos(chain[1], "start_time_unix_nano") + slack)
        #expect(nanos(request, "end_time_unix_nano") + slack >= nanos(chain[1], "end_time_unix_nano"))
        for server in [chain[1], chain[3], chain[5]] {
            #expect(
                (server["user"] as? [String: Any])?["subject"] as? String == user,
                "the edge's user reached \(server["service"] ?? "?")")
        }
        let database = chain[6]
        let dbAttributes = try #require(database["attributes"] as? [String: Any])
        #expect(dbAttributes["db.system.name"] as? String == "sqlite")
        #expect(dbAttributes["server.address"] as? String == "analytics-pool.sql.internal")
        #expect((dbAttributes["db.query.text"] as? String)?.hasPrefix("SELECT") == true)
        let failed = sent.status == 500
        #expect(((database["status"] as? [String: Any])?["code"] as? String == "error") == failed)
        #expect(((request["status"] as? [String: Any])?["code"] as? String == "error") == failed)
    }

    /// Which phase of the collector's life the traffic is in (0 before the kill, 1 killed, 2 restarted), and how
    /// many requests were sent in each.
    final class Phase: @unchecked Sendable {
        // @unchecked: every access holds the lock.
        private let lock = NSLock()
        private var phase = 0
        private var counts = [0, 0, 0]
        var current: Int { lock.withLock { phase } }
        var requests: [Int] { lock.withLock { counts } }
        func advance() { lock.withLock { phase += 1 } }
        func count(_ p: Int) { lock.withLock { counts[p] += 1 } }
    }

    @Test func aCollectorKilledMidTrafficLosesNothingTheExportersHadAcknowledged() async throws {
        let stack = try Stack(collectorOptions: ["--fsync", "interval", "--fsync-interval-ms", "20"])
        defer {
            stack.stop()
            try? FileManager.default.removeItem(atPath: stack.dir)
        }
        let tokens = ["alice": Self.token("alice"), "bob": Self.token("bob")]
        let phase = Phase()
        // Three clients send requests while the collector is killed with SIGKILL and started again.
        let answered = await withTaskGroup(of: [Int].self) { group in
            for client in 0..<3 {
                group.addTask {
                    var statuses: [Int] = []
                    // At least 40 each, and on until the restarted collector has had some traffic too.
                    for i in 0..<400 where i < 40 || phase.requests[2] < 30 {
                        let user = client == 0 ? "alice" : "bob"
                        let sentIn = phase.current
                        statuses.append(
                            (try? await stack.request("/api/orders?c=\(client)&i=\(i)", token: tokens[user])) ?? 0)
                        phase.count(sentIn)
                        try? await Task.sleep(nanoseconds: 40_000_000)
                    }
                    return statuses
                }
            }
            group.addTask {
                // Phases are judged by traffic, not by the clock, so a slow machine still sees requests before the
                // kill, while the collector is down, and after it is back.
                func waitFor(_ p: Int, _ n: Int) async {
                    let deadline = Date().addingTimeInterval(60)
                    while phase.requests[p] < n, Date() < deadline { try? await Task.sleep(nanoseconds: 20_000_000) }
                }
                await waitFor(0, 15)
                phase.advance()  // killed
                do { try await stack.restartCollector { await waitFor(1, 3) } } catch {
                    Issue.record("restart failed: \(error)")
                }
                phase.advance()  // running again
                return []
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        // The services answer whatever happens to the collector: exporting is in the background.
        #expect(answered.count >= 120)
        #expect(answered.allSatisfy { $0 == 200 })
        #expect(
            phase.requests.allSatisfy { $0 > 0 }, "requests before, during and after the restart: \(phase.requests)")

        let (acked, _) = try await stack.flushAndAcknowledged()
        let all = acked.values.reduce(into: Set<[String]>()) { $0.formUnion($1) }
        #expect(all.count > 100, "too little was acknowledged to test anything: \(all.count)")
        stack.collector.stop(signal: SIGTERM)
        let stored = Set(
            try AuditStore(directories: [DataDirectory(stack.data)]).search(EventQuery()).map {
                [$0.event.traceID.hex, $0.event.spanID.hex]
            })
        let lost = all.subtracting(stored)
        #expect(lost.isEmpty, "\(lost.count) of \(all.count) acknowledged spans are missing, e.g. \(lost.prefix(3))")
        let (verifyStatus, verifyReport, _) = try Self.auditq(["verify", "--data", stack.data])
        #expect(verifyStatus == 0, "\(verifyReport)")
    }
}
