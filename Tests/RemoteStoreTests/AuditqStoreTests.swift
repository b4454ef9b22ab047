import Foundation
import ObjectStore
import RemoteStore
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

/// The `auditq` executable with `--store`, against a real RGW: what a user runs.
@Suite(.ownThreads, .enabled(if: RGWTestStore.configured, Comment(rawValue: RGWTestStore.why)))
struct AuditqStoreTests {
    static let auditq = ChildProcess.product("auditq")

    /// auditq with the store's endpoint and keys only in a config file (none in the environment), the cache in
    /// the test's directory, and the fetch figures on stderr.
    func run(_ shipped: ShippedStore, _ arguments: [String]) throws -> ChildOutput {
        let config = shipped.tmp.path + "/s3.env"
        let env = RGWTestStore.environment
        if !FileManager.default.fileExists(atPath: config) {
            let text =
                ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]
                .compactMap { k in env[k].map { "\(k)=\($0)" } }.joined(separator: "\n") + "\n"
            try text.write(toFile: config, atomically: true, encoding: .utf8)
        }
        return try ChildProcess.run(
            Self.auditq, arguments + ["--s3-config", config, "--cache-dir", shipped.cacheRoot],
            environment: ["PATH": "/usr/bin:/bin", "NO_COLOR": "1", "AUDITQ_FETCH_STATS": "1"])
    }

    @Test func traceAndVerifyOverTheBucket() async throws {
        let shipped = try await ShippedStore.make(seed: 31)
        defer { shipped.tmp.remove() }
        let store = "s3://\(shipped.location.bucket)/audit"
        let trace = ShippedStore.trace(42).hex
        let local = try ChildProcess.run(
            Self.auditq, ["trace", "--data", shipped.directory.root, trace, "--format", "json"],
            environment: ["PATH": "/usr/bin:/bin"])
        #expect(local.status == 0)
        #expect(!local.stdout.isEmpty)
        let cold = try run(shipped, ["trace", "--store", store, trace, "--format", "json"])
        #expect(cold.status == 0, "\(cold.stderr)")
        #expect(cold.stdout == local.stdout)
        #expect(cold.stderr.contains("ranged GET"), "\(cold.stderr)")
        let warm = try run(shipped, ["trace", "--store", store, trace, "--format", "json"])
        #expect(warm.stdout == local.stdout)
        #expect(warm.stderr.contains(" 0 ranged GET, 0 bytes fetched"), "\(warm.stderr)")

        let clean = try run(shipped, ["verify", "--store", store])
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        #expect(clean.stdout.contains("\(store): \(shipped.keys.count)/\(shipped.keys.count) segments valid"))

        // A segment deleted from the bucket: verify says so (exit 3) and names the missing sequence.
        let (sequence, key) = shipped.keys.sorted { $0.key < $1.key }[2]
        try await shipped.s3.delete(shipped.location, key: key)
        let broken = try run(shipped, ["verify", "--store", store])
        #expect(broken.status == 3, "\(broken.stdout)\(broken.stderr)")
        #expect(broken.stdout.contains("segment \(sequence) of node"), "\(broken.stdout)")
    }

    /// `evidence --store`: the bundle of a user's day drawn from the bucket alone holds exactly what the bundle
    /// from the same data local holds (records, proofs, seals, ledgers), and verifies offline the same way; only
    /// where the data came from (query.json, the reports' header) differs.
    @Test func evidenceFromTheBucketEqualsEvidenceFromLocalData() async throws {
        let shipped = try await ShippedStore.make(seed: 33)
        defer { shipped.tmp.remove() }
        let store = "s3://\(shipped.location.bucket)/audit"
        let range = ["--from", "2023-11-14", "--to", "2023-11-15", "--user", "user-5"]
        let localOut = shipped.tmp.path + "/local-bundle"
        let remoteOut = shipped.tmp.path + "/remote-bundle"
        let local = try ChildProcess.run(
            Self.auditq, ["evidence", "--data", shipped.directory.root, "--out", localOut] + range,
            environment: ["PATH": "/usr/bin:/bin", "NO_COLOR": "1"])
        #expect(local.status == 0, "\(local.stderr)")
        let remote = try run(shipped, ["evidence", "--store", store, "--out", remoteOut] + range)
        #expect(remote.status == 0, "\(remote.stderr)")
        #expect(remote.stderr.contains("ranged GET"), "\(remote.stderr)")
        // The same summary line, but for the directory it names.
        #expect(
            remote.stdout.replacingOccurrences(of: remoteOut, with: "OUT")
                == local.stdout.replacingOccurrences(of: localOut, with: "OUT"))
        #expect(local.stdout.contains("records with inclusion proofs"), "\(local.stdout)")
        #expect(!local.stdout.contains(": 0 requests"), "the user has requests that day: \(local.stdout)")
        for name in [
            "activity.ndjson", "events.ndjson", "events.csv", "proofs.ndjson", "seals.ndjson", "ledgers.ndjson",
        ] {
            let a = try FileIO.readFile(localOut + "/" + name)
            let b = try FileIO.readFile(remoteOut + "/" + name)
            #expect(a == b, "\(name) differs")
        }
        let query = String(decoding: try FileIO.readFile(remoteOut + "/query.json"), as: UTF8.self)
        #expect(query.contains(store), "the bundle says where its data came from: \(query)")

        for dir in [localOut, remoteOut] {
            let checked = try ChildProcess.run(
                Self.auditq, ["verify", "--bundle", dir], environment: ["PATH": "/usr/bin:/bin", "NO_COLOR": "1"])
            #expect(checked.status == 0, "\(dir): \(checked.stdout)\(checked.stderr)")
        }
        let a = try ChildProcess.run(
            Self.auditq, ["verify", "--bundle", localOut], environment: ["PATH": "/usr/bin:/bin"])
        let b = try ChildProcess.run(
            Self.auditq, ["verify", "--bundle", remoteOut], environment: ["PATH": "/usr/bin:/bin"])
        #expect(
            a.stdout.replacingOccurrences(of: localOut, with: "OUT")
                == b.stdout.replacingOccurrences(of: remoteOut, with: "OUT"))

        // A record changed in the bucket's bundle is caught offline, as in any other bundle.
        let events = remoteOut + "/events.ndjson"
        var bytes = try FileIO.readFile(events)
        if let i = bytes.firstIndex(of: UInt8(ascii: "u")) { bytes[i] = UInt8(ascii: "U") }
        try FileIO.writeAtomically(bytes, to: events, directory: remoteOut)
        let tampered = try ChildProcess.run(
            Self.auditq, ["verify", "--bundle", remoteOut], environment: ["PATH": "/usr/bin:/bin"])
        #expect(tampered.status == 3, "\(tampered.stdout)")
    }

    /// `stats --store`: the bucket's segments as the remote tier, with the same events and bytes as the same
    /// segments local.
    @Test func statsOverTheBucket() async throws {
        let shipped = try await ShippedStore.make(seed: 34)
        defer { shipped.tmp.remove() }
        let store = "s3://\(shipped.location.bucket)/audit"
        let local = try ChildProcess.run(
            Self.auditq, ["stats", "--data", shipped.directory.root, "--format", "json"],
            environment: ["PATH": "/usr/bin:/bin"])
        #expect(local.status == 0, "\(local.stderr)")
        let remote = try run(shipped, ["stats", "--store", store, "--format", "json"])
        #expect(remote.status == 0, "\(remote.stderr)")
        func tier(_ json: String, _ name: String) throws -> [String: Any] {
            let o = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
            let tiers = o?["tiers"] as? [[String: Any]] ?? []
            return tiers.first { $0["tier"] as? String == name } ?? [:]
        }
        let hot = try tier(local.stdout, "hot")
        let bucket = try tier(remote.stdout, "remote")
        #expect((hot["segments"] as? Int) == shipped.keys.count, "\(local.stdout)")
        for field in ["segments", "events", "bytes_on_disk", "raw_bytes", "stored_block_bytes"] {
            #expect(
                (hot[field] as? Int) != nil && (hot[field] as? Int) == (bucket[field] as? Int),
                "\(field): \(remote.stdout)")
        }
    }

    @Test func statsPerNodeOverTheBucket() async throws {
        let shipped = try await ShippedStore.make(count: 600, seed: 36)
        defer { shipped.tmp.remove() }
        // A second collector's segments in the same bucket (another writer: another node id).
        let other = TempDir("second-node")
        defer { other.remove() }
        var options = WriterOptions()
        options.targetBlockBytes = 2 << 10
        options.maxSegmentBytes = 12 << 10
        options.columnBlockRows = 7
        let writer = try SegmentWriter(directory: other.dataDirectory, options: options, logger: quietLogger)
        for chunk in 0..<12 {
            try writer.append((0..<25).map { RandomEvents.small(seed: 5_000 + UInt64(chunk * 25 + $0)) })
            try writer.flush()
            try writer.rollIfNeeded()
        }
        try writer.close()
        for entry in try other.dataDirectory.currentCatalog(repair: false).entries {
            let bytes = try FileIO.readFile(other.dataDirectory.path(relative: entry.relativePath))
            _ = try await shipped.s3.put(shipped.location, key: BucketLayout.segmentKey(entry.seal), body: bytes)
        }
        let store = "s3://\(shipped.location.bucket)/audit"
        func local(_ dir: DataDirectory) throws -> [String: Any] {
            let out = try ChildProcess.run(
                Self.auditq, ["stats", "--data", dir.root, "--format", "json"], environment: ["PATH": "/usr/bin:/bin"])
            #expect(out.status == 0, "\(out.stderr)")
            let o = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
            return (o?["tiers"] as? [[String: Any]] ?? []).first { $0["tier"] as? String == "hot" } ?? [:]
        }
        let remote = try run(shipped, ["stats", "--store", store, "--format", "json"])
        #expect(remote.status == 0, "\(remote.stderr)")
        let o = try JSONSerialization.jsonObject(with: Data(remote.stdout.utf8)) as? [String: Any]
        let nodes = o?["nodes"] as? [[String: Any]] ?? []
        let total = o?["total"] as? [String: Any] ?? [:]
        let first = try shipped.directory.currentCatalog(repair: false).entries[0].nodeID.hex
        let second = try other.dataDirectory.currentCatalog(repair: false).entries[0].nodeID.hex
        #expect(Set(nodes.compactMap { $0["node"] as? String }) == [first, second], "\(remote.stdout)")
        // Each node's row is that node's data counted locally; the rows add up to the total.
        for (hex, dir) in [(first, shipped.directory), (second, other.dataDirectory)] {
            let row = nodes.first { $0["node"] as? String == hex } ?? [:]
            let expected = try local(dir)
            for field in ["segments", "events", "bytes_on_disk", "raw_bytes", "stored_block_bytes"] {
                #expect((row[field] as? Int) != nil && (row[field] as? Int) == (expected[field] as? Int), "\(field)")
            }
        }
        for field in ["segments", "events", "bytes_on_disk"] {
            #expect(nodes.reduce(0) { $0 + ($1[field] as? Int ?? 0) } == total[field] as? Int, "\(field)")
        }
        // The table shows a row per node under the tiers.
        let table = try run(shipped, ["stats", "--store", store])
        #expect(table.stdout.contains("NODE"), "\(table.stdout)")
        #expect(table.stdout.contains(first) && table.stdout.contains(second), "\(table.stdout)")
    }
}
