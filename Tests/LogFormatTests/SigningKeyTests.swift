// Ed25519 seal keys: RFC 8032 vectors, sign/verify round trips, and the key-file catalogue (permissions,
// whitespace, bad base64, wrong lengths, missing and odd files).

import LogFormat
import Testing

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

// MARK: - Helpers

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct KeyDir {
    let path: String

    init() throws {
        var template = Array("/tmp/logformat-keys-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TempDirError() }
        path = String(cString: made)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ contents: String, mode: mode_t) throws -> String {
        try write(name, Array(contents.utf8), mode: mode)
    }

    func write(_ name: String, _ bytes: [UInt8], mode: mode_t) throws -> String {
        let p = file(name)
        let fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw TempDirError() }
        defer { close(fd) }
        let n = bytes.withUnsafeBytes { writeAll(fd, $0) }
        guard n == bytes.count, chmod(p, mode) == 0 else { throw TempDirError() }
        return p
    }

    func mode(of name: String) -> mode_t? {
        var st = stat()
        guard stat(file(name), &st) == 0 else { return nil }
        return st.st_mode & 0o7777
    }

    func remove() {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if name != "." && name != ".." {
                    let p = file(name)
                    if unlink(p) != 0 { rmdir(p) }
                }
            }
            closedir(dir)
        }
        rmdir(path)
    }
}

struct TempDirError: Error {}

/// `write(2)`, named so that `KeyDir.write` does not shadow it.
private func writeAll(_ fd: Int32, _ buf: UnsafeRawBufferPointer) -> Int { write(fd, buf.baseAddress, buf.count) }

func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

/// RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (message 0x72).
enum RFC8032 {
    static let secret1 = hexBytes("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    static let public1 = hexBytes("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    static let signature1 = hexBytes(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
            + "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    static let public2 = hexBytes("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    static let message2: [UInt8] = [0x72]
    static let signature2 = hexBytes(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
            + "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
}

// MARK: - Keys and signatures

@Suite struct SealKeyTests {
    @Test func rfc8032SeedGivesThePublishedPublicKey() throws {
        let signer = try SealSigner(rawRepresentation: RFC8032.secret1)
        #expect(signer.publicKey.rawRepresentation == RFC8032.public1)
        // Ed25519 is deterministic (RFC 8032 section 5.1.6); some backends add randomness, so only verify.
        let signature = try signer.sign([])
        #expect(signature.count == 64)
        #expect(signer.publicKey.isValidSignature(signature, for: []))
    }

    @Test func rfc8032SignaturesVerify() throws {
        let key1 = try SealVerifierKey(rawRepresentation: RFC8032.public1)
        #expect(key1.isValidSignature(RFC8032.signature1, for: []))
        let key2 = try SealVerifierKey(rawRepresentation: RFC8032.public2)
        #expect(key2.isValidSignature(RFC8032.signature2, for: RFC8032.message2))
        #expect(!key2.isValidSignature(RFC8032.signature1, for: []))
        #expect(!key1.isValidSignature(RFC8032.signature2, for: RFC8032.message2))
    }

    @Test func keyIDIsTheFirstEightBytesOfSHA256BigEndian() throws {
        // SHA-256(d75a9801…511a) starts 21fe31dfa154a261 (computed independently with Python's hashlib).
        let key = try SealVerifierKey(rawRepresentation: RFC8032.public1)
        #expect(key.keyID == 0x21fe_31df_a154_a261)
        #expect(key.keyIDHex == "21fe31dfa154a261")
    }

    @Test func signAndVerifyRoundTrip() throws {
        let signer = SealSigner.generate()
        let message = Array("seal: segment 42, root 5dc9da79".utf8)
        let signature = try signer.sign(message)
        #expect(signature.count == 64)
        #expect(signer.publicKey.isValidSignature(signature, for: message))
        #expect(!SealSigner.generate().publicKey.isValidSignature(signature, for: message))
        #expect(SealSigner.generate().publicKey != signer.publicKey)
    }

    @Test(arguments: [0, 1, 17, 30]) func flippedMessageByteFails(_ position: Int) throws {
        let signer = SealSigner.generate()
        let message = (0..<31).map { UInt8($0) }
        let signature = try signer.sign(message)
        var bad = message
        bad[position] ^= 0x01
        #expect(!signer.publicKey.isValidSignature(signature, for: bad))
        #expect(!signer.publicKey.isValidSignature(signature, for: message + [0]))
        #expect(!signer.publicKey.isValidSignature(signature, for: Array(message.dropLast())))
    }

    @Test(arguments: [0, 1, 31, 32, 33, 63]) func flippedSignatureByteFails(_ position: Int) throws {
        let signer = SealSigner.generate()
        let message = Array("record".utf8)
        var signature = try signer.sign(message)
        signature[position] ^= 0x80
        #expect(!signer.publicKey.isValidSignature(signature, for: message))
    }

    @Test func wrongSignatureLengthsFail() throws {
        let signer = SealSigner.generate()
        let signature = try signer.sign([1, 2, 3])
        #expect(!signer.publicKey.isValidSignature([], for: [1, 2, 3]))
        #expect(!signer.publicKey.isValidSignature(Array(signature.dropLast()), for: [1, 2, 3]))
        #expect(!signer.publicKey.isValidSignature(signature + [0], for: [1, 2, 3]))
    }

    @Test(arguments: [0, 16, 31, 33, 64]) func rawKeysOfTheWrongLengthAreRefused(_ count: Int) {
        let bytes = [UInt8](repeating: 7, count: count)
        let e1 = try? #require(throws: LogFormatError.self) { try SealSigner(rawRepresentation: bytes) }
        #expect(e1?.code == .badKey)
        let e2 = try? #require(throws: LogFormatError.self) { try SealVerifierKey(rawRepresentation: bytes) }
        #expect(e2?.code == .badKey)
    }

    @Test func base64RoundTripAndEquality() throws {
        let key = SealSigner.generate().publicKey
        let again = try SealVerifierKey(base64: "  " + key.base64 + "\n")
        #expect(again == key)
        #expect(again.keyID == key.keyID)
        #expect(Set([key, again]).count == 1)
        let e = try? #require(throws: LogFormatError.self) { try SealVerifierKey(base64: "not base64!") }
        #expect(e?.code == .badKey)
    }

    @Test func signerNeverPrintsItsSecret() throws {
        let signer = try SealSigner(rawRepresentation: RFC8032.secret1)
        let secret = base64(RFC8032.secret1)
        for text in [String(describing: signer), String(reflecting: signer), "\(signer)"] {
            #expect(!text.contains(secret))
            #expect(!text.lowercased().contains("9d61b19d"))
            #expect(text.contains(signer.publicKey.keyIDHex))
        }
        var dumped = ""
        dump(signer, to: &dumped)
        #expect(!dumped.contains(secret))
        #expect(!dumped.lowercased().contains("9d61b19d"))
    }
}

// MARK: - Key files

@Suite struct KeyFileTests {
    @Test func privateKeyFileWithMode0600Loads() throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        let path = try dir.write("seal.key", base64(RFC8032.secret1) + "\n", mode: 0o600)
        let signer = try SealSigner.load(from: path)
        #expect(signer.publicKey.rawRepresentation == RFC8032.public1)
        let readOnly = try dir.write("ro.key", base64(RFC8032.secret1), mode: 0o400)
        #expect(try SealSigner.load(from: readOnly).publicKey == signer.publicKey)
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o777] as [mode_t])
    func privateKeyFileOpenToOthersIsRefused(_ mode: mode_t) throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        let path = try dir.write("seal.key", base64(RFC8032.secret1) + "\n", mode: mode)
        let error = try #require(throws: LogFormatError.self) { try SealSigner.load(from: path) }
        #expect(error.code == .badKey)
        #expect(error.path == path)
        #expect(error.message.contains(path))
        let octal = String(mode, radix: 8)
        #expect(error.message.contains("0" + octal), "message should name the mode: \(error.message)")
    }

    @Test func publicKeyFileNeedsNoPrivacy() throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        let path = try dir.write("seal.key.pub", base64(RFC8032.public1) + "\n", mode: 0o644)
        let key = try SealVerifierKey.load(from: path)
        #expect(key.rawRepresentation == RFC8032.public1)
    }

    @Test(arguments: [
        "  \(base64(RFC8032.secret1))", "\(base64(RFC8032.secret1))\n", "\n\t \(base64(RFC8032.secret1)) \r\n\n",
    ])
    func surroundingWhitespaceIsTolerated(_ contents: String) throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        let path = try dir.write("seal.key", contents, mode: 0o600)
        #expect(try SealSigner.load(from: path).publicKey.rawRepresentation == RFC8032.public1)
    }

    struct BadContents: Sendable, CustomTestStringConvertible {
        var name: String
        var contents: String
        var mentions: String
        var testDescription: String { name }
    }

    static let badContents: [BadContents] = [
        BadContents(name: "empty", contents: "", mentions: "empty"),
        BadContents(name: "only whitespace", contents: " \n\n", mentions: "empty"),
        BadContents(name: "not base64", contents: "this is not a key!\n", mentions: "base64"),
        BadContents(name: "bad padding", contents: String(base64(RFC8032.secret1).dropLast()), mentions: "base64"),
        BadContents(
            name: "whitespace inside", contents: "nWGxne/9WmC6hEr0kuwsxERJ xWl7MmkZcDusAxyuf2A=", mentions: "base64"),
        BadContents(name: "31 bytes", contents: base64(Array(RFC8032.secret1.dropLast())), mentions: "31 bytes"),
        BadContents(name: "33 bytes", contents: base64(RFC8032.secret1 + [0]), mentions: "33 bytes"),
        BadContents(
            name: "64-byte expanded key", contents: base64(RFC8032.secret1 + RFC8032.public1), mentions: "64 bytes"),
        BadContents(
            name: "hex instead of base64",
            contents: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", mentions: "48 bytes"),
    ]

    @Test(arguments: badContents) func malformedPrivateKeyFileIsRefused(_ bad: BadContents) throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        let path = try dir.write("seal.key", bad.contents, mode: 0o600)
        let error = try #require(throws: LogFormatError.self) { try SealSigner.load(from: path) }
        #expect(error.code == .badKey)
        #expect(error.message.contains(path))
        #expect(error.message.contains(bad.mentions), "\(error.message)")
    }

    @Test(arguments: badContents) func malformedPublicKeyFileIsRefused(_ bad: BadContents) throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        let path = try dir.write("seal.key.pub", bad.contents, mode: 0o644)
        let error = try #require(throws: LogFormatError.self) { try SealVerifierKey.load(from: path) }
        #expect(error.code == .badKey)
        #expect(error.message.contains(path))
    }

    @Test func oversizedFileIsRefused() throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        let path = try dir.write("seal.key", String(repeating: "A", count: 5000), mode: 0o600)
        let error = try #require(throws: LogFormatError.self) { try SealSigner.load(from: path) }
        #expect(error.code == .badKey)
        #expect(error.message.contains("too large"))
    }

    @Test func missingFileIsAnIOError() throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        let path = dir.file("absent.key")
        let e1 = try #require(throws: LogFormatError.self) { try SealSigner.load(from: path) }
        #expect(e1.code == .io)
        #expect(e1.message.contains(path))
        let e2 = try #require(throws: LogFormatError.self) { try SealVerifierKey.load(from: path + ".pub") }
        #expect(e2.code == .io)
    }

    @Test func directoryIsNotAKeyFile() throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        #expect(mkdir(dir.file("sub"), 0o700) == 0)
        let error = try #require(throws: LogFormatError.self) { try SealSigner.load(from: dir.file("sub")) }
        #expect(error.code == .badKey)
        #expect(error.message.contains("not a regular file"))
    }

    @Test func writeCreatesPrivateAndPublicFiles() throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        let signer = SealSigner.generate()
        let path = dir.file("seal.key")
        try signer.write(to: path)
        #expect(dir.mode(of: "seal.key") == 0o600)
        #expect(dir.mode(of: "seal.key.pub") == 0o644)

        let loaded = try SealSigner.load(from: path)
        #expect(loaded.publicKey == signer.publicKey)
        #expect(try SealVerifierKey.load(from: path + ".pub") == signer.publicKey)
        let message = Array("written and reloaded".utf8)
        #expect(signer.publicKey.isValidSignature(try loaded.sign(message), for: message))
    }

    @Test func writeNeverOverwritesAPrivateKey() throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        let first = SealSigner.generate()
        let path = dir.file("seal.key")
        try first.write(to: path)
        let error = try #require(throws: LogFormatError.self) { try SealSigner.generate().write(to: path) }
        #expect(error.code == .io)
        #expect(error.message.contains("overwrite"))
        #expect(try SealSigner.load(from: path).publicKey == first.publicKey)
        #expect(try SealVerifierKey.load(from: path + ".pub") == first.publicKey)
    }

    @Test func writeIntoAMissingDirectoryFails() throws {
        let dir = try KeyDir()
        defer { dir.remove() }
        let error = try #require(throws: LogFormatError.self) {
            try SealSigner.generate().write(to: dir.file("no/such/dir/seal.key"))
        }
        #expect(error.code == .io)
    }
}
