import Crypto
import Foundation
import ObjectStore
import TestSupport
import Testing

@Suite(.enabled(if: RGWTestStore.configured, Comment(rawValue: RGWTestStore.why)))
struct S3ClientTests {
    func bytes(_ n: Int, seed: UInt8 = 7) -> [UInt8] {
        (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    @Test func putHeadGetDeleteRoundTrip() async throws {
        let s3 = try RGWTestStore.client()
        let at = S3Location(bucket: try await RGWTestStore.freshBucket(s3), prefix: "p/q")
        let body = bytes(100_000)
        let sha = SHA256.hash(data: body).map { String(format: "%02x", $0) }.joined()
        let put = try await s3.put(at, key: "n1/2026-12-04/0001.seg", body: body, metadata: ["sha256": sha])
        guard case .created = put else {
            Issue.record("expected created, got \(put)")
            return
        }
        let info = try #require(try await s3.head(at, key: "n1/2026-12-04/0001.seg"))
        #expect(info.size == 100_000)
        #expect(info.metadata["sha256"] == sha)
        let whole = try await s3.get(at, key: "n1/2026-12-04/0001.seg")
        #expect(whole.bytes == body)
        #expect(whole.objectSize == 100_000)
        // The prefix is part of the key the store holds.
        let listed = try await s3.listAll(bucket: at.bucket, prefix: "p/q/")
        #expect(listed.map(\.key) == ["p/q/n1/2026-12-04/0001.seg"])
        try await s3.delete(at, key: "n1/2026-12-04/0001.seg")
        #expect(try await s3.head(at, key: "n1/2026-12-04/0001.seg") == nil)
    }

    @Test func createOnlyPutRefusesToOverwrite() async throws {
        let s3 = try RGWTestStore.client()
        let at = S3Location(bucket: try await RGWTestStore.freshBucket(s3), prefix: "")
        let first = try await s3.put(at, key: "k", body: Array("one".utf8))
        #expect(first != .alreadyExists)
        let second = try await s3.put(at, key: "k", body: Array("two".utf8))
        #expect(second == .alreadyExists)
        #expect(try await s3.get(at, key: "k").bytes == Array("one".utf8))
        // Without create-only, the same key is replaced: the guard is the header, not the store.
        _ = try await s3.put(at, key: "k", body: Array("three".utf8), createOnly: false)
        #expect(try await s3.get(at, key: "k").bytes == Array("three".utf8))
    }

    @Test func rangedGets() async throws {
        let s3 = try RGWTestStore.client()
        let at = S3Location(bucket: try await RGWTestStore.freshBucket(s3), prefix: "r")
        let body = bytes(10_000, seed: 3)
        _ = try await s3.put(at, key: "obj", body: body)
        let mid = try await s3.get(at, key: "obj", range: 1_000..<2_000)
        #expect(mid.bytes == Array(body[1_000..<2_000]))
        #expect(mid.offset == 1_000)
        #expect(mid.objectSize == 10_000)
        #expect(try await s3.getExactly(at, key: "obj", range: 9_990..<10_000) == Array(body[9_990...]))
        // Past the end: the store sends what there is, and asking for exactly that range is an error.
        let tail = try await s3.get(at, key: "obj", range: 9_900..<10_100)
        #expect(tail.bytes == Array(body[9_900...]))
        let truncated = await #expect(throws: ObjectStoreError.self) {
            try await s3.getExactly(at, key: "obj", range: 9_900..<10_100)
        }
        #expect(truncated?.code == .truncated)
        // Wholly past the end: 416.
        let beyond = await #expect(throws: ObjectStoreError.self) {
            try await s3.get(at, key: "obj", range: 20_000..<20_010)
        }
        #expect(beyond?.code == .invalidRange)
        #expect(beyond?.status == 416)
    }

    @Test func listingPagesAndPrefixes() async throws {
        let s3 = try RGWTestStore.client()
        let bucket = try await RGWTestStore.freshBucket(s3)
        let at = S3Location(bucket: bucket, prefix: "")
        var keys: [String] = []
        for day in ["2026-12-01", "2026-12-02", "2026-12-03"] {
            for seq in 1...9 { keys.append("node-a/\(day)/\(String(format: "%016d", seq)).seg") }
        }
        keys.append("node-b/2026-12-02/0000000000000001.seg")
        for k in keys { _ = try await s3.put(at, key: k, body: [1]) }
        // Pages of 10 follow continuation tokens.
        let page1 = try await s3.listPage(bucket: bucket, prefix: "node-a/", maxKeys: 10)
        #expect(page1.objects.count == 10)
        #expect(page1.nextContinuationToken != nil)
        let page2 = try await s3.listPage(
            bucket: bucket, prefix: "node-a/", continuationToken: page1.nextContinuationToken, maxKeys: 10)
        #expect(page2.objects.first?.key == keys[10])
        let all = try await s3.listAll(bucket: bucket, prefix: "node-a/")
        #expect(all.map(\.key) == keys.filter { $0.hasPrefix("node-a/") }.sorted())
        // One day only, and the levels of the layout.
        #expect(try await s3.listAll(bucket: bucket, prefix: "node-a/2026-12-02/").count == 9)
        #expect(try await s3.listPrefixes(bucket: bucket, prefix: "") == ["node-a/", "node-b/"])
        #expect(
            try await s3.listPrefixes(bucket: bucket, prefix: "node-a/") == [
                "node-a/2026-12-01/", "node-a/2026-12-02/", "node-a/2026-12-03/",
            ])
        #expect(try await s3.listAll(bucket: bucket, prefix: "node-a/2026-12-02/", startAfter: keys[12]).count == 5)
    }

    @Test func missingKeysAndBuckets() async throws {
        let s3 = try RGWTestStore.client()
        let at = S3Location(bucket: try await RGWTestStore.freshBucket(s3), prefix: "")
        #expect(try await s3.head(at, key: "nothing") == nil)
        let get = await #expect(throws: ObjectStoreError.self) { try await s3.get(at, key: "nothing") }
        #expect(get?.code == .notFound)
        #expect(get?.s3Code == "NoSuchKey")
        let list = await #expect(throws: ObjectStoreError.self) {
            try await s3.listPage(bucket: "no-such-bucket-\(UUID().uuidString.lowercased().prefix(8))", prefix: "")
        }
        #expect(list?.code == .notFound)
        #expect(list?.s3Code == "NoSuchBucket")
    }

    @Test func wrongCredentialsAreRefused() async throws {
        let good = try RGWTestStore.client()
        let bucket = try await RGWTestStore.freshBucket(good)
        var wrongSecret = good.configuration
        wrongSecret.credentials.secretAccessKey += "x"
        let e1 = await #expect(throws: ObjectStoreError.self) {
            try await S3Client(wrongSecret).put(S3Location(bucket: bucket, prefix: ""), key: "k", body: [1])
        }
        #expect(e1?.code == .accessDenied)
        #expect(e1?.s3Code == "SignatureDoesNotMatch")
        #expect(e1?.isRetryable == false)
        var unknownKey = good.configuration
        unknownKey.credentials.accessKeyID = "NOSUCHACCESSKEY00001"
        let e2 = await #expect(throws: ObjectStoreError.self) {
            try await S3Client(unknownKey).listPage(bucket: bucket, prefix: "")
        }
        #expect(e2?.code == .accessDenied)
        #expect(e2?.s3Code == "InvalidAccessKeyId")
        // Nothing was written by the refused PUT.
        #expect(try await good.head(S3Location(bucket: bucket, prefix: ""), key: "k") == nil)
    }

    @Test func objectLockComplianceKeepsTheVersion() async throws {
        let s3 = try RGWTestStore.client()
        let at = S3Location(bucket: try await RGWTestStore.freshBucket(s3, objectLock: true), prefix: "")
        let until = Date().addingTimeInterval(86_400)
        _ = try await s3.put(
            at, key: "sealed", body: Array("evidence".utf8), lock: ObjectLock(mode: .compliance, retainUntil: until))
        let info = try #require(try await s3.head(at, key: "sealed"))
        #expect(info.lockMode == "COMPLIANCE")
        #expect(info.lockRetainUntil?.hasPrefix(String(S3Client.iso8601(until).prefix(16))) == true)
        let version = try #require(info.versionID)
        let refused = await #expect(throws: ObjectStoreError.self) {
            try await s3.delete(at, key: "sealed", versionID: version)
        }
        #expect(refused?.code == .accessDenied)
        #expect(try await s3.get(at, key: "sealed").bytes == Array("evidence".utf8))
    }

    @Test func noServerIsATransportErrorWorthRetrying() async throws {
        // A port nothing listens on: bind one, learn its number, close it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let port = UInt16(bigEndian: addr.sin_port)
        close(fd)
        var config = try RGWTestStore.client().configuration
        config.endpoint = "http://127.0.0.1:\(port)"
        config.timeoutSeconds = 5
        let e = await #expect(throws: ObjectStoreError.self) {
            try await S3Client(config).head(S3Location(bucket: "b", prefix: ""), key: "k")
        }
        #expect(e?.code == .transport)
        #expect(e?.isRetryable == true)
    }
}

/// What needs no store.
@Suite struct S3LocationTests {
    @Test(arguments: ["s3://b", "s3://b/", "s3://b/p", "s3://b/p/q/", "s3://b//p"])
    func storeURLs(_ url: String) throws {
        let l = try S3Location(url: url)
        #expect(l.bucket == "b")
        #expect(!l.prefix.hasPrefix("/") && !l.prefix.hasSuffix("/"))
        #expect(l.key("x") == (l.prefix.isEmpty ? "x" : l.prefix + "/x"))
    }

    @Test(arguments: ["b/p", "s3://", "s3:///p", "http://b/p"])
    func notStoreURLs(_ url: String) {
        #expect(throws: ObjectStoreError.self) { try S3Location(url: url) }
    }

    @Test func environmentNamesWhatIsMissing() {
        let e = #expect(throws: ObjectStoreError.self) {
            try S3Configuration.fromEnvironment(["AWS_ENDPOINT_URL": "http://127.0.0.1:1"])
        }
        #expect(e?.code == .invalidConfiguration)
        #expect(e?.message.contains("AWS_ACCESS_KEY_ID") == true)
        let c = try? S3Configuration.fromEnvironment([
            "AWS_ENDPOINT_URL": "http://127.0.0.1:1/", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
        ])
        #expect(c?.endpoint == "http://127.0.0.1:1")
        #expect(c?.region == "us-east-1")
    }
}
