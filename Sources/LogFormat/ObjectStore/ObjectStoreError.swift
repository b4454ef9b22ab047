// The module's one error type, shaped like swift-nio's FileSystemError: a code that can grow, a message for
// humans, the HTTP status and S3 error code when the store answered, an underlying cause, where it was raised.
public struct ObjectStoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// The key (or bucket) does not exist: 404.
        public static let notFound = Code(name: "notFound")
        /// A create-only PUT met an existing object: 412.
        public static let alreadyExists = Code(name: "alreadyExists")
        /// The store refused the credentials or the signature (403 SignatureDoesNotMatch, InvalidAccessKeyId,
        /// AccessDenied).
        public static let accessDenied = Code(name: "accessDenied")
        /// A range the object does not have: 416.
        public static let invalidRange = Code(name: "invalidRange")
        /// Fewer bytes came back than were asked for and the object claims to have.
        public static let truncated = Code(name: "truncated")
        /// Any other answer the store gives with an error status.
        public static let serverError = Code(name: "serverError")
        /// An answer that is not what S3 says it should be (unparsable listing, wrong Content-Range).
        public static let badResponse = Code(name: "badResponse")
        /// No answer: connection refused, reset, timed out.
        public static let transport = Code(name: "transport")
        /// A missing or malformed setting (endpoint, credentials, store URL).
        public static let invalidConfiguration = Code(name: "invalidConfiguration")
    }

    public var code: Code
    public var message: String
    public var status: Int?
    public var s3Code: String?
    public var underlying: (any Error)?
    public var file: String
    public var line: Int

    public init(
        _ code: Code, _ message: String, status: Int? = nil, s3Code: String? = nil, underlying: (any Error)? = nil,
        file: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.status = status
        self.s3Code = s3Code
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    /// True for what may pass by itself: no answer, a 5xx, throttling. A retry loop retries only these.
    public var isRetryable: Bool {
        code == .transport || (code == .serverError && (status.map { $0 >= 500 || $0 == 429 } ?? true))
    }

    public var description: String {
        var s = "\(code): \(message)"
        if let status { s += " (HTTP \(status)" + (s3Code.map { " \($0)" } ?? "") + ")" }
        if let underlying { s += ": \(underlying)" }
        return s
    }
}
