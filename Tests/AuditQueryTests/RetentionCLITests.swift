// `auditq retention plan|apply` run as real processes: the plan, the apply, idempotence, stats per tier, and a
// real SIGKILL of `auditq retention apply` at seeded points of its progress, with `auditq verify` passing after
// every kill.
import Foundation
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat

@Suite(.serialized, .ownThreads) struct RetentionCLITests {
    typealias CLI = CLITests

    /// Seven days of synthetic traffic from 2025-03-03 in segments of 1,500 events.
    static func seeded(requests: Int = 2_000) throws -> String {
        let dir = NSTemporaryDirectory() + "/auditq-ret-\(UInt64.random(in: 0...UInt64.max))"
        let seed = try CLI.run(
            "collector",
            ["ingest-synthetic", "--data", dir, "--requests", "\(requests)", "--days", "7", "--segment-events", "1500"])
        #expect(seed.status == 0, "\(seed.stderr)")
        return dir
    }

    static func writePolicy(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "/retention-\(UInt64.random(in: 0...UInt64.max)).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Start 2025-03-03; with expiry at 10 days and "now" on 2025-03-16, segments whose newest record is before
    /// 2025-03-06 expire and the rest are archived.
    static let policyYAML = """
        data: ./data
        retention:
          archive_after_days: 2
          expire_after_days: 10
        """
    static let now = "2025-03-16T00:00:00Z"

    static func events(_ dir: String) throws -> Int {
        let json = try CLI.run("auditq", ["stats", "--data", dir, "--format", "json"]).stdout
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        return try #require((stats["total"] as? [String: Any])?["events"] as? Int)
    }

    @Test func planApplyIdempotentAndStats() throws {
        let dir = try Self.seeded()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = try Self.writePolicy(Self.policyYAML)
        let catalog = try DataDirectory(dir).loadCatalog()
        let cutoff = try #require(UnixTime.parseInstant(Self.now)) - 10 * UnixTime.nanosPerDay
        let expiring = catalog.entries.filter { $0.seal.maxTime <= cutoff }
        #expect(!expiring.isEmpty && expiring.count < catalog.entries.count)

        let plan = try CLI.run(
            "auditq", ["retention", "plan", "--data", dir, "--config", policy, "--now", Self.now, "--format", "json"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let planned = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        let items = try #require(planned["items"] as? [[String: Any]])
        #expect(items.filter { $0["action"] as? String == "expire" }.count == expiring.count)
        #expect(items.filter { $0["action"] as? String == "archive" }.count == catalog.entries.count - expiring.count)
        #expect(try DataDirectory(dir).loadCatalog() == catalog, "plan changes nothing")

        let keptEvents = catalog.entries.filter { $0.seal.maxTime > cutoff }.reduce(0) { $0 + Int($1.seal.recordCount) }
        let apply = try CLI.run("auditq", ["retention", "apply", "--data", dir, "--policy", policy, "--now", Self.now])
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(
            apply.stdout.contains(
                "\(catalog.entries.count - expiring.count) archived, \(expiring.count) expired, 0 held"))
        #expect(try Self.events(dir) == keptEvents)

        let stats = try CLI.run("auditq", ["stats", "--data", dir]).stdout
        let archiveRow = try #require(stats.split(separator: "\n").first { $0.hasPrefix("archive ") })
        #expect(
            archiveRow.split(separator: " ", omittingEmptySubsequences: true)[1]
                == "\(catalog.entries.count - expiring.count)")
        let expiredRow = try #require(stats.split(separator: "\n").first { $0.hasPrefix("expired ") })
        #expect(expiredRow.split(separator: " ", omittingEmptySubsequences: true)[1] == "\(expiring.count)")

        let verify = try CLI.run("auditq", ["verify", "--data", dir])
        #expect(verify.status == 0, "\(verify.stdout)")
        #expect(verify.stdout.contains("\(expiring.count) segment"))
        #expect(verify.stdout.contains("expired by policy"))

        let again = try CLI.run("auditq", ["retention", "apply", "--data", dir, "--policy", policy, "--now", Self.now])
        #expect(again.status == 0)
        #expect(again.stdout.contains("0 archived, 0 expired, 0 held, 0 finished"))

        // A bad policy: exit 2 and the key named.
        let bad = try Self.writePolicy("retention:\n  expire_after_days: soon\n")
        let refused = try CLI.run("auditq", ["retention", "plan", "--data", dir, "--policy", bad])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("retention.expire_after_days must be an integer, found the string \"soon\""))
    }

    /// What the data directory holds: every file with its size and inode, lock files left out (taking a lock
    /// is not progress). A retention step writes, renames or removes a file, so each step changes this.
    static func snapshot(_ dir: String) -> Set<String> {
        Set(
            (FileManager.default.subpaths(atPath: dir) ?? []).filter { !$0.hasSuffix(".lock") }.map { name in
                var st = stat()
                return stat(dir + "/" + name, &st) == 0 ? "\(name) \(st.st_size) \(st.st_ino)" : name
            })
    }

    /// Kills a real `auditq retention apply` with SIGKILL, each run after it has changed the data directory a
    /// seeded number of times (1 to 4, watched from outside), so every kill lands mid-way and the test does not
    /// depend on how fast the machine is; after every kill `auditq verify` passes and no record the policy keeps
    /// is lost. RETENTION_KILL_SEED replays another sequence of kill points; failures print the seed.
    @Test func sigkillDuringApply() throws {
        let seed = ProcessInfo.processInfo.environment["RETENTION_KILL_SEED"].flatMap { UInt64($0) } ?? 20_250_316
        var rng = SplitMix(seed)
        let dir = try Self.seeded(requests: 3_000)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = try Self.writePolicy(Self.policyYAML)
        let catalog = try DataDirectory(dir).loadCatalog()
        let cutoff = try #require(UnixTime.parseInstant(Self.now)) - 10 * UnixTime.nanosPerDay
        let kept = catalog.entries.filter { $0.seal.maxTime > cutoff }
        let keptRecords = Set(
            try CLI.everything(dir).filter { r in kept.contains { $0.sequence == r.location.segmentSequence } }.map(
                \.location))
        var kills = 0
        for attempt in 0..<8 {
            let killAfter = 1 + Int(rng.next() % 4)
            let arguments = [
                "retention", "apply", "--data", dir, "--policy", policy, "--now", Self.now, "--step-delay-ms", "15",
            ]
            let child = try ChildProcess(CLI.binaries.appendingPathComponent("auditq").path, arguments)
            var changes = 0
            var last = Self.snapshot(dir)
            let deadline = Date().addingTimeInterval(60)
            while changes < killAfter, child.isRunning, Date() < deadline {
                usleep(1_000)
                let now = Self.snapshot(dir)
                if now != last {
                    changes += 1
                    last = now
                }
            }
            #expect(changes >= killAfter || !child.isRunning, "seed \(seed), attempt \(attempt): no progress in 60 s")
            let wasRunning = child.isRunning
            let output = child.stop(signal: SIGKILL, within: 60).output
            if wasRunning && output.signalled && output.status == SIGKILL { kills += 1 }
            let verify = try CLI.run("auditq", ["verify", "--data", dir])
            #expect(verify.status == 0, "seed \(seed), after kill \(kills) (attempt \(attempt)): \(verify.stdout)")
            let now = Set(try CLI.everything(dir).map(\.location))
            #expect(keptRecords.isSubset(of: now), "seed \(seed): a kept record is missing after kill \(kills)")
            if !wasRunning {
                #expect(output.succeeded, "seed \(seed), attempt \(attempt): \(output.stderr)")
                break
            }
        }
        #expect(kills >= 2, "seed \(seed): the job was killed mid-way at least twice")
        // A run left alone finishes whatever the killed ones left; the one after it has nothing to do.
        let finish = try CLI.run(
            "auditq", ["retention", "apply", "--data", dir, "--policy", policy, "--now", Self.now])
        #expect(finish.status == 0, "\(finish.stderr)")
        let again = try CLI.run("auditq", ["retention", "apply", "--data", dir, "--policy", policy, "--now", Self.now])
        #expect(again.stdout.contains("0 archived, 0 expired, 0 held, 0 finished"), "\(again.stdout)")
        #expect(Set(try CLI.everything(dir).map(\.location)) == keptRecords)
        let tombstones = try DataDirectory(dir).loadTombstones().tombstones.map(\.tombstone.seal.sequence).sorted()
        #expect(tombstones == catalog.entries.filter { $0.seal.maxTime <= cutoff }.map(\.sequence).sorted())
        #expect(try DataDirectory(dir).loadCatalog().entries.allSatisfy { $0.tier == .archive })
        #expect(try DataDirectory(dir).listSegmentFiles().sealed.isEmpty)
        #expect(try FileIO.listDirectory(DataDirectory(dir).archivePath).allSatisfy { $0.hasSuffix(".seg") })
    }
}
