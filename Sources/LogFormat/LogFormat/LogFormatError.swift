/// The one error type of LogFormat, shaped like swift-nio's `FileSystemError`: a `code` that can grow
/// without breaking callers, a message for humans, the file and byte offset it concerns where known,
/// an underlying cause, and where in our code it was raised. Tests compare codes.
public struct LogFormatError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// Bytes ended before a structure was complete.
        public static let truncated = Code("truncated")
        /// A magic number did not match: not our file, or not where we expected a structure.
        public static let badMagic = Code("badMagic")
        /// The file or structure is of a newer format version than this reader knows.
        public static let unsupportedVersion = Code("unsupportedVersion")
        /// A stored checksum does not match the bytes.
        public static let checksumMismatch = Code("checksumMismatch")
        /// A structure is well framed but its content is invalid (bad length, unknown code, bad varint).
        public static let malformed = Code("malformed")
        /// Compression or decompression failed.
        public static let compression = Code("compression")
        /// A system call failed (open, write, fsync, rename, mmap …).
        public static let io = Code("io")
        /// A value is outside what the format can hold (record too large, too many records).
        public static let limitExceeded = Code("limitExceeded")
        /// The log cannot take more now (its queue of appends waiting for the disk is full); nothing was
        /// taken, and the same call can succeed later. Callers answer "retry later" (backpressure).
        public static let busy = Code("busy")
        /// An operation is not valid in the current state (appending to a sealed segment, a closed writer).
        public static let invalidState = Code("invalidState")
        /// An integrity check failed (Merkle root, chain, signature, inclusion proof).
        public static let integrity = Code("integrity")
        /// A job was stopped at one of its crash points (tests that model a crash between durable steps).
        public static let interrupted = Code("interrupted")
        /// A key file is unusable (wrong size, wrong permissions).
        public static let badKey = Code("badKey")
    }

    public var code: Code
    public var message: String
    /// The file concerned, when there is one.
    public var path: String?
    /// The byte offset in `path` (or in the buffer being decoded) where the problem was found.
    public var offset: Int?
    public var cause: (any Error)?
    public var location: String

    public init(
        _ code: Code, _ message: String, path: String? = nil, offset: Int? = nil, cause: (any Error)? = nil,
        file: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.cause = cause
        self.location = "\(file):\(line)"
    }

    /// The same error, naming the file and shifting the offset by `base` (for errors raised on a slice).
    public func at(path: String?, base: Int = 0) -> LogFormatError {
        var copy = self
        if copy.path == nil { copy.path = path }
        if let o = copy.offset { copy.offset = o + base } else { copy.offset = base == 0 ? nil : base }
        return copy
    }

    public var description: String {
        var s = "\(code): \(message)"
        if let path {
            s += " [file \(path)" + (offset.map { " at offset \($0)" } ?? "") + "]"
        } else if let offset {
            s += " [at offset \(offset)]"
        }
        if let cause { s += " (cause: \(cause))" }
        return s
    }
}
