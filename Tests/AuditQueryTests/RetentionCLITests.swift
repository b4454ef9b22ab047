// `auditq retention plan|apply` run as real processes: the plan, the apply, idempotence, stats per tier, and a
// real SIGKILL of `auditq retention apply` at random moments, with `auditq verify` passing after every kill.
import Foundation
import Testing
@testable import AuditQuery
@testable import LogFormat

@Suite(.serialized) struct RetentionCLITests {
    typealias CLI = CLITests

    /// Seven days of synthetic traffic from 2025-03-03 in segments of 1,500 events.
    static func seeded(requests: Int = 2_000) throws -> String {
        let dir = NSTemporaryDirectory() + "/auditq-ret-\(UInt64.random(in: 0...UInt64.max))"
        let seed = try CLI.run("collector", ["ingest-synthetic", "--data", dir, "--requests", "\(requests)", "--days", "7", "--segment-events", "1500"])
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

        let plan = try CLI.run("auditq", ["retention", "plan", "--data", dir, "--config", policy, "--now", Self.now, "--format", "json"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let planned = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        let items = try #require(planned["items"] as? [[String: Any]])
        #expect(items.filter { $0["action"] as? String == "expire" }.count == expiring.count)
        #expect(items.filter { $0["action"] as? String == "archive" }.count == catalog.entries.count - expiring.count)
        #expect(try DataDirectory(dir).loadCatalog() == catalog, "plan changes nothing")

        let keptEvents = catalog.entries.filter { $0.seal.maxTime > cutoff }.reduce(0) { $0 + Int($1.seal.recordCount) }
        let apply = try CLI.run("auditq", ["retention", "apply", "--data", dir, "--policy", policy, "--now", Self.now])
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(apply.stdout.contains("\(catalog.entries.count - expiring.count) archived, \(expiring.count) expired, 0 held"))
        #expect(try Self.events(dir) == keptEvents)

        let stats = try CLI.run("auditq", ["stats", "--data", dir]).stdout
        let archiveRow = try #require(stats.split(separator: "\n").first { $0.hasPrefix("archive ") })
        #expect(archiveRow.split(separator: " ", omittingEmptySubsequences: true)[1] == "\(catalog.entries.count - expiring.count)")
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

    /// Kills a real `auditq retention apply` with SIGKILL at random moments until one run completes; after every
    /// kill `auditq verify` passes and no record the policy keeps is lost.
    @Test func sigkillDuringApply() throws {
        let dir = try Self.seeded(requests: 3_000)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = try Self.writePolicy(Self.policyYAML)
        let catalog = try DataDirectory(dir).loadCatalog()
        let cutoff = try #require(UnixTime.parseInstant(Self.now)) - 10 * UnixTime.nanosPerDay
        let kept = catalog.entries.filter { $0.seal.maxTime > cutoff }
        let keptRecords = Set(try CLI.everything(dir).filter { r in kept.contains { $0.sequence == r.location.segmentSequence } }.map(\.location))
        var kills = 0
        var rng = SystemRandomNumberGenerator()
        for attempt in 0..<8 {
            let p = Process()
            p.executableURL = CLI.binaries.appendingPathComponent("auditq")
            p.arguments = ["retention", "apply", "--data", dir, "--policy", policy, "--now", Self.now, "--step-delay-ms", "15"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32.random(in: 30_000...400_000, using: &rng))
            let wasRunning = p.isRunning
            if wasRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            if wasRunning && p.terminationReason == .uncaughtSignal { kills += 1 }
            let verify = try CLI.run("auditq", ["verify", "--data", dir])
            #expect(verify.status == 0, "after kill \(kills) (attempt \(attempt)): \(verify.stdout)")
            let now = Set(try CLI.everything(dir).map(\.location))
            #expect(keptRecords.isSubset(of: now), "a kept record is missing after kill \(kills)")
            if !wasRunning && p.terminationStatus == 0 { break }
        }
        #expect(kills >= 2, "the job was killed mid-way at least twice")
        // A run left alone finishes whatever the killed ones left; the one after it has nothing to do.
        let finish = try CLI.run("auditq", ["retention", "apply", "--data", dir, "--policy", policy, "--now", Self.now])
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
