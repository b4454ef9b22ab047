import Foundation
import ObjectStore
import RemoteStore
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

/// The `auditq` executable with `--store`, against a real RGW: what a user runs.
@Suite(.enabled(if: RGWTestStore.configured, Comment(rawValue: RGWTestStore.why)))
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
}
