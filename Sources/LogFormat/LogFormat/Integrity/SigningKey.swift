// Ed25519 keys for sealing segments (swift-crypto's Curve25519.Signing). A key file holds the base64 of the
// 32 raw key bytes (the private seed, or the public key for `<path>.pub`) and may end in whitespace. A
// private key file must be private: readable or writable by group or others is refused.

import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Signs segment seals with an Ed25519 private key.
///
/// `@unchecked Sendable`: the only stored state is a `let` of swift-crypto's `PrivateKey` (a value type that
/// swift-crypto 3.12 does not yet mark `Sendable`) and our own `Sendable` public key. Nothing mutates the key
/// after initialisation: signing only reads it, so sharing it across threads is safe.
public struct SealSigner: @unchecked Sendable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    private let key: Curve25519.Signing.PrivateKey
    /// The public half, for verifiers and for naming the key in a seal.
    public let publicKey: SealVerifierKey

    private init(key: Curve25519.Signing.PrivateKey) {
        self.key = key
        // A public key derived by swift-crypto always has the right length.
        self.publicKey = SealVerifierKey(validated: Array(key.publicKey.rawRepresentation))
    }

    /// A signer from the 32-byte raw private key (the Ed25519 seed).
    public init(rawRepresentation raw: [UInt8]) throws(LogFormatError) {
        guard raw.count == KeyFile.rawKeyBytes else {
            throw LogFormatError(
                .badKey, "an Ed25519 private key is \(KeyFile.rawKeyBytes) bytes, not \(raw.count)")
        }
        do {
            self.init(key: try Curve25519.Signing.PrivateKey(rawRepresentation: raw))
        } catch {
            throw LogFormatError(.badKey, "swift-crypto rejected the Ed25519 private key", cause: error)
        }
    }

    /// A new random key.
    public static func generate() -> SealSigner {
        SealSigner(key: Curve25519.Signing.PrivateKey())
    }

    /// Loads a private key file, refusing one that group or others can read or write.
    public static func load(from path: String) throws(LogFormatError) -> SealSigner {
        let raw = try KeyFile.read(path, what: "private key", requirePrivate: true)
        do {
            return try SealSigner(rawRepresentation: raw)
        } catch {
            throw error.at(path: path)
        }
    }

    /// The 64-byte Ed25519 signature of `bytes`.
    public func sign(_ bytes: [UInt8]) throws(LogFormatError) -> [UInt8] {
        do {
            return Array(try key.signature(for: bytes))
        } catch {
            throw LogFormatError(.integrity, "Ed25519 signing failed", cause: error)
        }
    }

    /// Writes the private key file (mode 0600, never overwriting one) and the public key beside it as
    /// `<path>.pub`.
    public func write(to path: String) throws(LogFormatError) {
        let seed = Array(key.rawRepresentation)
        try KeyFile.write(
            Array((Data(seed).base64EncodedString() + "\n").utf8), to: path, mode: 0o600, exclusive: true)
        do {
            try publicKey.write(to: path + ".pub")
        } catch {
            // Leave no private key without its public half.
            unlink(path)
            throw error
        }
    }

    /// Names the key by its id only, so a signer never prints its secret.
    public var description: String { "SealSigner(keyID: \(publicKey.keyIDHex))" }
    /// Same as `description`.
    public var debugDescription: String { description }
    /// Shows only the key id to `dump` and debuggers.
    public var customMirror: Mirror { Mirror(self, children: ["keyID": publicKey.keyIDHex]) }
}

/// An Ed25519 public key that checks seal signatures.
public struct SealVerifierKey: Sendable, Hashable, CustomStringConvertible {
    /// The 32 raw public key bytes.
    public let rawRepresentation: [UInt8]
    /// The first 8 bytes of SHA-256 of the raw key, big-endian: a short name for the key in seals.
    public let keyID: UInt64

    /// Builds from bytes already known to be 32 long.
    fileprivate init(validated raw: [UInt8]) {
        precondition(raw.count == KeyFile.rawKeyBytes)
        rawRepresentation = raw
        keyID = SHA256.hash(data: raw).withUnsafeBytes { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    /// A key from its 32 raw bytes.
    public init(rawRepresentation raw: [UInt8]) throws(LogFormatError) {
        guard raw.count == KeyFile.rawKeyBytes else {
            throw LogFormatError(.badKey, "an Ed25519 public key is \(KeyFile.rawKeyBytes) bytes, not \(raw.count)")
        }
        do {
            _ = try Curve25519.Signing.PublicKey(rawRepresentation: raw)
        } catch {
            throw LogFormatError(.badKey, "swift-crypto rejected the Ed25519 public key", cause: error)
        }
        self.init(validated: raw)
    }

    /// A key from the base64 of its 32 raw bytes (surrounding whitespace allowed).
    public init(base64: String) throws(LogFormatError) {
        self = try SealVerifierKey(rawRepresentation: try KeyFile.decode(Array(base64.utf8), what: "public key"))
    }

    /// Loads a public key file (the base64 of the 32 raw bytes).
    public static func load(from path: String) throws(LogFormatError) -> SealVerifierKey {
        let raw = try KeyFile.read(path, what: "public key", requirePrivate: false)
        do {
            return try SealVerifierKey(rawRepresentation: raw)
        } catch {
            throw error.at(path: path)
        }
    }

    /// Writes the public key file (mode 0644, replacing any file there).
    public func write(to path: String) throws(LogFormatError) {
        try KeyFile.write(Array((base64 + "\n").utf8), to: path, mode: 0o644, exclusive: false)
    }

    /// The base64 of the 32 raw bytes.
    public var base64: String { Data(rawRepresentation).base64EncodedString() }

    /// `keyID` as 16 lowercase hex digits.
    public var keyIDHex: String {
        let s = String(keyID, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// Whether `signature` is a valid Ed25519 signature of `bytes` by this key.
    public func isValidSignature(_ signature: [UInt8], for bytes: [UInt8]) -> Bool {
        guard signature.count == FormatConstants.signatureSize,
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: rawRepresentation)
        else { return false }
        return key.isValidSignature(signature, for: bytes)
    }

    /// The key id and base64 key.
    public var description: String { "SealVerifierKey(keyID: \(keyIDHex), \(base64))" }

    /// Keys are equal when their raw bytes are.
    public static func == (a: SealVerifierKey, b: SealVerifierKey) -> Bool {
        a.rawRepresentation == b.rawRepresentation
    }

    /// Hashes the raw bytes.
    public func hash(into hasher: inout Hasher) { hasher.combine(rawRepresentation) }
}

// MARK: - Key files

/// Reading and writing the small base64 key files, with POSIX calls so that errors name errno.
enum KeyFile {
    static let rawKeyBytes = 32
    /// Anything larger is not one of our key files.
    static let maxFileBytes = 4096

    /// Reads and decodes a key file. With `requirePrivate`, the permission check runs on the opened file
    /// (fstat), so the file checked is the file read.
    static func read(_ path: String, what: String, requirePrivate: Bool) throws(LogFormatError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("cannot open \(what) file", path: path) }
        defer { close(fd) }

        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ioError("cannot stat \(what) file", path: path) }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw LogFormatError(.badKey, "\(what) file \(path) is not a regular file", path: path)
        }
        let permissions = st.st_mode & 0o7777
        if requirePrivate && permissions & 0o077 != 0 {
            throw LogFormatError(
                .badKey,
                "\(what) file \(path) has mode \(octal(permissions)): group or others may read or write it;"
                    + " refusing to use it (run chmod 600 on it)",
                path: path)
        }
        guard st.st_size <= maxFileBytes else {
            throw LogFormatError(
                .badKey, "\(what) file \(path) is \(st.st_size) bytes, too large to be a key file", path: path)
        }

        var contents = [UInt8](repeating: 0, count: maxFileBytes + 1)
        var filled = 0
        while filled < contents.count {
            let n = contents.withUnsafeMutableBytes { buf in
                posixRead(fd, buf.baseAddress! + filled, buf.count - filled)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("cannot read \(what) file", path: path)
            }
            if n == 0 { break }
            filled += n
        }
        guard filled <= maxFileBytes else {
            throw LogFormatError(.badKey, "\(what) file \(path) is too large to be a key file", path: path)
        }
        do {
            return try decode(Array(contents[..<filled]), what: what)
        } catch {
            throw LogFormatError(error.code, "\(what) file \(path): \(error.message)", path: path)
        }
    }

    /// Decodes base64 text that may be padded with whitespace into exactly `rawKeyBytes` bytes.
    static func decode(_ text: [UInt8], what: String) throws(LogFormatError) -> [UInt8] {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0a || $0 == 0x0d }
        let trimmed = text.drop(while: isSpace).reversed().drop(while: isSpace).reversed()
        guard !trimmed.isEmpty else {
            throw LogFormatError(.badKey, "the \(what) is empty; expected the base64 of \(rawKeyBytes) bytes")
        }
        guard let decoded = Data(base64Encoded: String(decoding: trimmed, as: UTF8.self)) else {
            throw LogFormatError(
                .badKey, "the \(what) is not valid base64; expected the base64 of \(rawKeyBytes) bytes")
        }
        guard decoded.count == rawKeyBytes else {
            throw LogFormatError(
                .badKey, "the \(what) decodes to \(decoded.count) bytes; an Ed25519 key is \(rawKeyBytes) bytes")
        }
        return Array(decoded)
    }

    /// Creates (or with `exclusive: false` replaces) `path` with exactly `mode`, writes `contents` and syncs.
    static func write(_ contents: [UInt8], to path: String, mode: mode_t, exclusive: Bool) throws(LogFormatError) {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC)
        let fd = open(path, flags, mode)
        guard fd >= 0 else {
            let reason = errno == EEXIST ? "refusing to overwrite existing key file" : "cannot create key file"
            throw ioError(reason, path: path)
        }
        var ok = false
        defer {
            close(fd)
            if !ok && exclusive { unlink(path) }
        }
        // The umask may have narrowed the mode, and a replaced file keeps its old one: set it exactly.
        guard fchmod(fd, mode) == 0 else { throw ioError("cannot set the mode of key file", path: path) }
        var written = 0
        while written < contents.count {
            let n = contents.withUnsafeBytes { buf in
                posixWrite(fd, buf.baseAddress! + written, buf.count - written)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("cannot write key file", path: path)
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw ioError("cannot sync key file", path: path) }
        ok = true
    }

    /// A mode as four octal digits, e.g. "0644".
    static func octal(_ mode: mode_t) -> String {
        let s = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    static func ioError(_ what: String, path: String) -> LogFormatError {
        let code = errno
        return LogFormatError(.io, "\(what) \(path): \(String(cString: strerror(code))) (errno \(code))", path: path)
    }
}

// `read` and `write` are shadowed inside types that have methods of those names; these name the C calls.
@inline(__always) private func posixRead(_ fd: Int32, _ buf: UnsafeMutableRawPointer, _ n: Int) -> Int {
    read(fd, buf, n)
}

@inline(__always) private func posixWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ n: Int) -> Int {
    write(fd, buf, n)
}
