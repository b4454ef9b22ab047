// A small S3 client over async-http-client: path-style requests signed with SigV4, plain bodies whose SHA-256 is
// signed in x-amz-content-sha256 (RGW 16 refuses the streaming checksum-trailer mode newer SDKs default to).
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// Where the store is and who we are to it.
public struct S3Configuration: Sendable, Equatable {
    /// `http://host:port` (or https); path-style: the bucket is the first path segment.
    public var endpoint: String
    public var region: String
    public var credentials: S3Credentials
    /// Per-request deadline.
    public var timeoutSeconds: Int64

    public init(endpoint: String, region: String = "us-east-1", credentials: S3Credentials, timeoutSeconds: Int64 = 60)
    {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.region = region
        self.credentials = credentials
        self.timeoutSeconds = timeoutSeconds
    }

    /// From the usual AWS variables: AWS_ENDPOINT_URL (S3_ENDPOINT as a fallback), AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (AWS_DEFAULT_REGION, then us-east-1).
    public static func fromEnvironment(_ env: [String: String]) throws(ObjectStoreError) -> S3Configuration {
        guard let endpoint = env["AWS_ENDPOINT_URL_S3"] ?? env["AWS_ENDPOINT_URL"] ?? env["S3_ENDPOINT"],
            !endpoint.isEmpty
        else {
            throw ObjectStoreError(
                .invalidConfiguration, "AWS_ENDPOINT_URL is not set (the S3 endpoint, e.g. http://127.0.0.1:7480)")
        }
        guard let key = env["AWS_ACCESS_KEY_ID"], let secret = env["AWS_SECRET_ACCESS_KEY"], !key.isEmpty,
            !secret.isEmpty
        else {
            throw ObjectStoreError(.invalidConfiguration, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
        }
        let region = env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1"
        return S3Configuration(
            endpoint: endpoint, region: region.isEmpty ? "us-east-1" : region,
            credentials: S3Credentials(
                accessKeyID: key, secretAccessKey: secret,
                sessionToken: env["AWS_SESSION_TOKEN"].flatMap {
                    $0.isEmpty ? nil : $0
                }))
    }
}

/// `s3://bucket/prefix`: a bucket and a key prefix inside it (no leading or trailing slash; may be empty).
public struct S3Location: Sendable, Hashable, CustomStringConvertible {
    public var bucket: String
    public var prefix: String

    public init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix.split(separator: "/").joined(separator: "/")
    }

    public init(url: String) throws(ObjectStoreError) {
        guard url.hasPrefix("s3://") else {
            throw ObjectStoreError(.invalidConfiguration, "\(url.debugDescription) is not an s3://bucket/prefix URL")
        }
        let rest = url.dropFirst(5)
        let bucket = rest.prefix { $0 != "/" }
        guard !bucket.isEmpty else { throw ObjectStoreError(.invalidConfiguration, "\(url) names no bucket") }
        self.init(bucket: String(bucket), prefix: String(rest.dropFirst(bucket.count)))
    }

    /// `prefix/rest`, or `rest` when the prefix is empty.
    public func key(_ rest: String) -> String { prefix.isEmpty ? rest : prefix + "/" + rest }

    public var description: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/\(prefix)") }
}

/// What HEAD tells of an object.
public struct ObjectInfo: Sendable, Equatable {
    public var size: UInt64
    public var etag: String?
    /// `x-amz-meta-*` values, by name without the prefix (lower case).
    public var metadata: [String: String]
    public var versionID: String?
    public var lockMode: String?
    public var lockRetainUntil: String?
}

/// One object of a listing.
public struct ListedObject: Sendable, Equatable {
    public var key: String
    public var size: UInt64
    public var etag: String?
}

public struct ListPage: Sendable, Equatable {
    public var objects: [ListedObject]
    public var commonPrefixes: [String]
    public var nextContinuationToken: String?
}

/// Object Lock for one PUT: the mode (COMPLIANCE: nobody, not even the bucket's owner, may delete the version or
/// shorten its retention before the date) and the date it holds until.
public struct ObjectLock: Sendable, Equatable {
    public enum Mode: String, Sendable {
        case compliance = "COMPLIANCE"
        case governance = "GOVERNANCE"
    }
    public var mode: Mode
    public var retainUntil: Date

    public init(mode: Mode, retainUntil: Date) {
        self.mode = mode
        self.retainUntil = retainUntil
    }
}

public enum PutOutcome: Sendable, Equatable {
    case created(etag: String?)
    /// A create-only PUT found the key taken (HTTP 412); the caller compares what is there.
    case alreadyExists
}

public struct RangedData: Sendable {
    public var bytes: [UInt8]
    /// First byte's offset in the object.
    public var offset: UInt64
    /// The object's whole size, from Content-Range (or the body's size for a plain 200).
    public var objectSize: UInt64
}

public final class S3Client: Sendable {
    public let configuration: S3Configuration
    let signer: SigV4Signer
    let http: HTTPClient
    let hostHeader: String
    /// Largest answer body read into memory (a listing page or an object).
    public static let maxBodyBytes = 1 << 30

    public init(_ configuration: S3Configuration, http: HTTPClient = .shared) throws(ObjectStoreError) {
        self.configuration = configuration
        signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region)
        self.http = http
        let e = configuration.endpoint
        guard let schemeEnd = e.range(of: "://"), ["http", "https"].contains(e[..<schemeEnd.lowerBound]) else {
            throw ObjectStoreError(.invalidConfiguration, "endpoint \(e.debugDescription) is not an http(s) URL")
        }
        let authority = e[schemeEnd.upperBound...].prefix { $0 != "/" }
        guard !authority.isEmpty, e[schemeEnd.upperBound...].count == authority.count else {
            throw ObjectStoreError(.invalidConfiguration, "endpoint \(e.debugDescription) must be scheme://host[:port]")
        }
        hostHeader = String(authority)
    }

    // MARK: Buckets

    /// Creates the bucket; one we already own is fine. With `objectLock`, versioning and Object Lock are enabled
    /// on it (they can only be turned on at creation).
    public func createBucket(_ bucket: String, objectLock: Bool = false) async throws(ObjectStoreError) {
        let r = try await send(
            "PUT", bucket: bucket, key: nil,
            extraHeaders: objectLock ? [("x-amz-bucket-object-lock-enabled", "true")] : [])
        if r.status == 200 { return }
        if r.status == 409, r.s3Code == "BucketAlreadyOwnedByYou" { return }
        throw r.error("create bucket \(bucket)")
    }

    // MARK: Objects

    /// PUT of a whole body, its SHA-256 signed. With `createOnly`, `If-None-Match: *` makes the store refuse to
    /// replace an existing key (412 → `.alreadyExists`). `metadata` becomes `x-amz-meta-*`.
    public func put(
        _ location: S3Location, key: String, body: [UInt8], createOnly: Bool = true, metadata: [String: String] = [:],
        lock: ObjectLock? = nil
    ) async throws(ObjectStoreError) -> PutOutcome {
        var headers: [(String, String)] = [
            ("content-md5", Data(Insecure.MD5.hash(data: body)).base64EncodedString()),
            ("content-type", "application/octet-stream"),
        ]
        if createOnly { headers.append(("if-none-match", "*")) }
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { headers.append(("x-amz-meta-\(k.lowercased())", v)) }
        if let lock {
            headers.append(("x-amz-object-lock-mode", lock.mode.rawValue))
            headers.append(("x-amz-object-lock-retain-until-date", Self.iso8601(lock.retainUntil)))
        }
        let r = try await send(
            "PUT", bucket: location.bucket, key: location.key(key), extraHeaders: headers, body: body)
        switch r.status {
        case 200: return .created(etag: r.headers.first(name: "etag"))
        case 412: return .alreadyExists
        default: throw r.error("PUT \(location.key(key))")
        }
    }

    /// HEAD; nil when there is no such object.
    public func head(_ location: S3Location, key: String) async throws(ObjectStoreError) -> ObjectInfo? {
        let r = try await send("HEAD", bucket: location.bucket, key: location.key(key))
        if r.status == 404 { return nil }
        guard r.status == 200 else { throw r.error("HEAD \(location.key(key))") }
        guard let size = r.headers.first(name: "content-length").flatMap(UInt64.init) else {
            throw ObjectStoreError(.badResponse, "HEAD \(location.key(key)): no Content-Length", status: r.status)
        }
        var metadata: [String: String] = [:]
        for h in r.headers where h.name.lowercased().hasPrefix("x-amz-meta-") {
            metadata[String(h.name.lowercased().dropFirst("x-amz-meta-".count))] = h.value
        }
        return ObjectInfo(
            size: size, etag: r.headers.first(name: "etag"), metadata: metadata,
            versionID: r.headers.first(name: "x-amz-version-id"),
            lockMode: r.headers.first(name: "x-amz-object-lock-mode"),
            lockRetainUntil: r.headers.first(name: "x-amz-object-lock-retain-until-date"))
    }

    /// GET of the whole object, or of `range` (byte offsets, end exclusive). What the store sends back is checked
    /// against its Content-Range; a range past the end comes back shorter (see `getExactly`).
    public func get(_ location: S3Location, key: String, range: Range<UInt64>? = nil) async throws(ObjectStoreError)
        -> RangedData
    {
        var headers: [(String, String)] = []
        if let range {
            guard !range.isEmpty else { throw ObjectStoreError(.invalidRange, "empty range \(range)") }
            headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)"))
        }
        let what = "GET \(location.key(key))" + (range.map { " bytes \($0.lowerBound)..<\($0.upperBound)" } ?? "")
        let r = try await send("GET", bucket: location.bucket, key: location.key(key), extraHeaders: headers)
        switch r.status {
        case 200:
            // A server may ignore Range and send everything; cut out what was asked for.
            let size = UInt64(r.body.count)
            guard let range else { return RangedData(bytes: r.body, offset: 0, objectSize: size) }
            let lo = Int(min(range.lowerBound, size))
            let hi = Int(min(range.upperBound, size))
            return RangedData(bytes: Array(r.body[lo..<hi]), offset: UInt64(lo), objectSize: size)
        case 206:
            guard let cr = r.headers.first(name: "content-range"), let parsed = Self.parseContentRange(cr) else {
                throw ObjectStoreError(.badResponse, "\(what): 206 without a valid Content-Range", status: 206)
            }
            guard parsed.end - parsed.start + 1 == UInt64(r.body.count), parsed.start == range?.lowerBound else {
                throw ObjectStoreError(
                    .truncated, "\(what): Content-Range \(cr) but \(r.body.count) bytes came", status: 206)
            }
            return RangedData(bytes: r.body, offset: parsed.start, objectSize: parsed.total)
        default:
            throw r.error(what)
        }
    }

    /// GET of exactly `range`: fewer bytes (the object is shorter than the caller believes) is `.truncated`.
    public func getExactly(_ location: S3Location, key: String, range: Range<UInt64>) async throws(ObjectStoreError)
        -> [UInt8]
    {
        let d = try await get(location, key: key, range: range)
        guard d.offset == range.lowerBound, UInt64(d.bytes.count) == range.upperBound - range.lowerBound else {
            throw ObjectStoreError(
                .truncated,
                "GET \(location.key(key)) bytes \(range.lowerBound)..<\(range.upperBound): the object has "
                    + "\(d.objectSize) bytes, \(d.bytes.count) came")
        }
        return d.bytes
    }

    /// DELETE (of the current version, or of `versionID`). Deleting a missing key succeeds, as in S3.
    public func delete(_ location: S3Location, key: String, versionID: String? = nil) async throws(ObjectStoreError) {
        let r = try await send(
            "DELETE", bucket: location.bucket, key: location.key(key),
            query: versionID.map { [("versionId", $0)] } ?? [])
        guard r.status == 204 || r.status == 200 else { throw r.error("DELETE \(location.key(key))") }
    }

    /// One page of ListObjectsV2 under `prefix` (a full key prefix, not relative to the location's).
    public func listPage(
        bucket: String, prefix: String, delimiter: String? = nil, continuationToken: String? = nil,
        startAfter: String? = nil, maxKeys: Int? = nil
    ) async throws(ObjectStoreError) -> ListPage {
        var query: [(String, String)] = [("list-type", "2"), ("prefix", prefix)]
        if let delimiter { query.append(("delimiter", delimiter)) }
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        if let startAfter { query.append(("start-after", startAfter)) }
        if let maxKeys { query.append(("max-keys", String(maxKeys))) }
        let r = try await send("GET", bucket: bucket, key: nil, query: query)
        guard r.status == 200 else { throw r.error("LIST \(bucket)/\(prefix)") }
        let text = Substring(decoding: r.body, as: UTF8.self)
        guard XMLScan.contains("<ListBucketResult", in: text) else {
            throw ObjectStoreError(.badResponse, "LIST \(bucket)/\(prefix): not a ListBucketResult", status: r.status)
        }
        var objects: [ListedObject] = []
        for c in XMLScan.all("Contents", in: text) {
            guard let key = XMLScan.first("Key", in: c), let size = XMLScan.first("Size", in: c).flatMap(UInt64.init)
            else { throw ObjectStoreError(.badResponse, "LIST \(bucket)/\(prefix): an entry without Key or Size") }
            objects.append(ListedObject(key: key, size: size, etag: XMLScan.first("ETag", in: c)))
        }
        let prefixes = XMLScan.all("CommonPrefixes", in: text).compactMap { XMLScan.first("Prefix", in: $0) }
        let truncated = XMLScan.first("IsTruncated", in: text) == "true"
        let next = XMLScan.first("NextContinuationToken", in: text)
        if truncated && next == nil {
            throw ObjectStoreError(.badResponse, "LIST \(bucket)/\(prefix): truncated without a continuation token")
        }
        return ListPage(objects: objects, commonPrefixes: prefixes, nextContinuationToken: truncated ? next : nil)
    }

    /// Every object under `prefix`, following continuation tokens.
    public func listAll(bucket: String, prefix: String, startAfter: String? = nil) async throws(ObjectStoreError)
        -> [ListedObject]
    {
        var out: [ListedObject] = []
        var token: String?
        repeat {
            let page = try await listPage(
                bucket: bucket, prefix: prefix, continuationToken: token, startAfter: token == nil ? startAfter : nil)
            out += page.objects
            token = page.nextContinuationToken
        } while token != nil
        return out
    }

    /// The names one level below `prefix` (which should end in `/`), e.g. the nodes or days of a layout.
    public func listPrefixes(bucket: String, prefix: String) async throws(ObjectStoreError) -> [String] {
        var out: [String] = []
        var token: String?
        repeat {
            let page = try await listPage(bucket: bucket, prefix: prefix, delimiter: "/", continuationToken: token)
            out += page.commonPrefixes
            token = page.nextContinuationToken
        } while token != nil
        return out
    }

    // MARK: Transport

    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        var s3Code: String?
        var s3Message: String?

        func error(_ what: String) -> ObjectStoreError {
            let code: ObjectStoreError.Code =
                switch status {
                case 404: .notFound
                case 412: .alreadyExists
                case 416: .invalidRange
                case 401, 403: .accessDenied
                default: .serverError
                }
            return ObjectStoreError(
                code, "\(what): " + (s3Message ?? s3Code ?? "HTTP \(status)"), status: status, s3Code: s3Code)
        }
    }

    func send(
        _ method: String, bucket: String, key: String?, query: [(String, String)] = [],
        extraHeaders: [(String, String)] = [], body: [UInt8] = []
    ) async throws(ObjectStoreError) -> Answer {
        let path =
            "/" + SigV4Signer.uriEncode(bucket, keepSlash: false)
            + (key.map { "/" + SigV4Signer.uriEncode($0, keepSlash: true) } ?? "")
        let payloadHash = SigV4Signer.hex(SHA256.hash(data: body))
        var headers = extraHeaders + [("host", hostHeader), ("x-amz-content-sha256", payloadHash)]
        let signature = signer.sign(
            method: method, path: path, query: query, headers: headers, payloadHash: payloadHash, date: Date())
        headers.append(("x-amz-date", signature.amzDate))
        if let token = configuration.credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        headers.append(("authorization", signature.authorization))
        let q = SigV4Signer.canonicalQuery(query)
        var request = HTTPClientRequest(url: configuration.endpoint + path + (q.isEmpty ? "" : "?" + q))
        request.method = HTTPMethod(rawValue: method)
        for (n, v) in headers { request.headers.add(name: n, value: v) }
        if !body.isEmpty || method == "PUT" { request.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            let response = try await http.execute(request, timeout: .seconds(configuration.timeoutSeconds))
            var buffer = try await response.body.collect(upTo: Self.maxBodyBytes)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            var answer = Answer(status: Int(response.status.code), headers: response.headers, body: bytes)
            if answer.status >= 300, !bytes.isEmpty {
                let text = Substring(decoding: bytes, as: UTF8.self)
                answer.s3Code = XMLScan.first("Code", in: text)
                answer.s3Message = XMLScan.first("Message", in: text).flatMap { $0.isEmpty ? nil : $0 }
            }
            if answer.status >= 300, answer.s3Code == nil {
                // HEAD answers carry no body; name the usual causes by status.
                answer.s3Code = answer.status == 404 ? "NotFound" : answer.status == 403 ? "Forbidden" : nil
            }
            return answer
        } catch {
            throw ObjectStoreError(
                .transport, "\(method) \(path): no answer from \(configuration.endpoint)", underlying: error)
        }
    }

    static func parseContentRange(_ s: String) -> (start: UInt64, end: UInt64, total: UInt64)? {
        // "bytes START-END/TOTAL"
        guard s.hasPrefix("bytes ") else { return nil }
        let parts = s.dropFirst(6).split(separator: "/")
        guard parts.count == 2, let total = UInt64(parts[1]) else { return nil }
        let se = parts[0].split(separator: "-")
        guard se.count == 2, let start = UInt64(se[0]), let end = UInt64(se[1]), start <= end, end < total else {
            return nil
        }
        return (start, end, total)
    }

    /// `2026-12-04T17:00:00Z`, as Object Lock headers take it.
    public static func iso8601(_ date: Date) -> String {
        let d = SigV4Signer.amzDate(date)
        let c = Array(d)
        return "\(String(c[0..<4]))-\(String(c[4..<6]))-\(String(c[6..<8]))T\(String(c[9..<11])):"
            + "\(String(c[11..<13])):\(String(c[13..<15]))Z"
    }
}
