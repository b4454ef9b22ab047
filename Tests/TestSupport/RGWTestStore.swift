import Foundation
import ObjectStore

/// The S3 store the tests talk to: the endpoint and keys `make test` exports after `scripts/ceph-rgw.sh start`
/// (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). Suites that need it are enabled only when it is
/// configured, and say so. Shared by the object-store and remote-store suites.
public enum RGWTestStore {
    public static let environment = ProcessInfo.processInfo.environment
    public static var configured: Bool { (try? S3Configuration.fromEnvironment(environment)) != nil }
    public static let why = "needs an S3 endpoint in AWS_ENDPOINT_URL; make test starts Ceph RGW (scripts/ceph-rgw.sh)"

    public static func client() throws -> S3Client {
        try S3Client(S3Configuration.fromEnvironment(environment))
    }

    /// A bucket of its own for each test, so tests run in parallel and leave each other alone.
    public static func freshBucket(_ client: S3Client, objectLock: Bool = false) async throws -> String {
        let name = "t-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        try await client.createBucket(name, objectLock: objectLock)
        return name
    }
}
