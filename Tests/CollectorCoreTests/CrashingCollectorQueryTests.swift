// Readers survive a live writer (issue 16), end to end: `auditq search` runs in a loop against the data directory
// of a real collector that takes OTLP/HTTP traffic and is killed with SIGKILL and restarted, again and again (each
// restart recovers the torn tail the kill left, cutting the `.open` file under the readers). No auditq may die of
// a signal or fail, and every answer holds only records the final store holds: a prefix of the truth.
import Dispatch
import Foundation
import LogFormat
import OTLPBridge
import StoreQuery
import Synchronization
import TestSupport
import Testing

@testable import CollectorCore

@Suite(.serialized, .ownThreads) struct CrashingCollectorQueryTests {
    /// One answer of `auditq search --format json`: its (trace id, span id) pairs.
    static func records(_ ndjson: String) throws -> Set<String> {
        var keys = Set<String>()
        for line in ndjson.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let event = try #require(object?["event"] as? [String: Any], "\(line)")
            keys.insert("\(event["trace_id"] as? String ?? "-")/\(event["span_id"] as? String ?? "-")")
        }
        return keys
    }

    @Test func auditqQueriesSurviveACollectorKilledAndRestartedUnderTraffic() async throws {
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let auditq = ChildProcess.product("auditq")

        // The readers: auditq in a loop from the first restart to the last, on its own thread.
        let stopReading = Atomic(false)
        let answers = Mutex<[Set<String>]>([])
        let failures = Mutex<[String]>([])
        let reading = DispatchGroup()
        DispatchQueue.global().async(group: reading) {
            var run = 0
            while !stopReading.load(ordering: .acquiring) {
                run += 1
                guard FileManager.default.fileExists(atPath: data + "/segments") else {
                    usleep(20_000)
                    continue
                }
                do {
                    let r = try ChildProcess.run(auditq, ["search", "--data", data, "--format", "json"], within: 60)
                    if r.signalled || r.status != 0 {
                        failures.withLock {
                            $0.append(
                                "run \(run): status \(r.status), signalled \(r.signalled): \(r.stderr.prefix(300))")
                        }
                    } else {
                        let keys = try Self.records(r.stdout)
                        answers.withLock { $0.append(keys) }
                    }
                } catch {
                    failures.withLock { $0.append("run \(run): \(error)") }
                }
            }
        }

        // The writer: rounds of OTLP/HTTP traffic from four clients, each round ended by SIGKILL. Small
        // segments, so that seals and fresh `.open` files come and go under the readers too.
        var acknowledged = Set<String>()
        let kills = 5
        for round in 0..<kills {
            let c = try CollectorProcessTests.Running(
                data: data,
                extra: ["--fsync", "interval", "--fsync-interval-ms", "5", "--segment-bytes", String(256 << 10)])
            // The kill comes after the round's time and once this round has some acknowledged traffic (a loaded
            // machine, say the whole suite running in parallel, can spend the round's time starting the process).
            let acknowledgedThisRound = AcknowledgedCount()
            let sent = await withTaskGroup(of: Set<String>.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var mine = Set<String>()
                        for i in 0..<2_000 {
                            let spans = CollectorProcessTests.spans(
                                seed: UInt64(round * 1_000_000 + worker * 10_000 + i), 8)
                            guard let body: [UInt8] = try? OTLPMapping.traceRequest(from: spans).serializedBytes(),
                                let (status, _) = try? await c.post("/v1/traces", body, type: "application/x-protobuf")
                            else { break }  // the process was killed
                            if status == 200 {
                                for s in spans { mine.insert("\(s.traceID.hex)/\(s.spanID.hex)") }
                                acknowledgedThisRound.value.add(spans.count, ordering: .relaxed)
                            }
                        }
                        return mine
                    }
                }
                group.addTask {
                    try? await Task.sleep(for: .milliseconds(600 + round * 200))
                    let deadline = ContinuousClock.now + .seconds(60)
                    while acknowledgedThisRound.value.load(ordering: .relaxed) < 200, ContinuousClock.now < deadline {
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                    c.stop(signal: SIGKILL)
                    return []
                }
                return await group.reduce(into: Set<String>()) { $0.formUnion($1) }
            }
            acknowledged.formUnion(sent)
        }
        // Once more: recovery of the last kill, under the readers too; then a clean stop.
        let last = try CollectorProcessTests.Running(data: data)
        try await Task.sleep(for: .milliseconds(500))
        // The readers go on until they have given ten answers: on a loaded machine a round's auditq runs are few.
        let enough = ContinuousClock.now + .seconds(120)
        while answers.withLock({ $0.count }) < 10, ContinuousClock.now < enough {
            try await Task.sleep(for: .milliseconds(200))
        }
        last.stop(signal: SIGTERM)
        stopReading.store(true, ordering: .releasing)
        reading.wait()

        var every = EventQuery()
        every.includeDuplicates = true
        let truth = Set(
            try AuditStore(directories: [DataDirectory(data)]).search(every).map {
                "\($0.event.traceID.hex)/\($0.event.spanID.hex)"
            })
        #expect(acknowledged.count > 500, "too little traffic was acknowledged to test anything")
        #expect(acknowledged.subtracting(truth).isEmpty, "acknowledged spans are missing from the final store")

        let failed = failures.withLock { $0 }
        let seen = answers.withLock { $0 }
        #expect(failed.isEmpty, "\(failed.count) auditq runs failed: \(failed.prefix(5))")
        #expect(seen.count >= 10, "only \(seen.count) auditq answers")
        #expect(seen.contains { !$0.isEmpty }, "every answer was empty")
        for (n, answer) in seen.enumerated() {
            let unknown = answer.subtracting(truth)
            #expect(unknown.isEmpty, "answer \(n) holds \(unknown.count) records the final store does not")
        }
    }
}

/// Spans acknowledged in one round, shared by its writers and its killer.
private final class AcknowledgedCount: Sendable {
    let value = Atomic(0)
}
