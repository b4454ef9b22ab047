// A temporary directory whose lifetime the test states, never the optimiser.
import Foundation
import LogFormat

/// A fresh directory under the system temp dir. Nothing removes it behind the test's back: the old class
/// removed its folder in `deinit`, and Swift may end a value's lifetime at its last use, so a test that
/// last named `tmp` before reading files under `tmp.path` could find them gone. Use the scoped form,
/// `try TempDir.with { tmp in … }`, or say when it goes: `let tmp = TempDir(); defer { tmp.remove() }`.
public struct TempDir: Sendable {
    public let path: String

    /// Creates the directory now (mkdtemp, mode 0700).
    public init(_ label: String = "logformat") {
        var template = Array((NSTemporaryDirectory() + "/\(label)-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let made else { fatalError("mkdtemp \(label): errno \(errno)") }
        path = String(cString: made)
    }

    /// The directory and everything under it.
    public func remove() { try? FileManager.default.removeItem(atPath: path) }

    public var dataDirectory: DataDirectory { DataDirectory(path + "/data") }

    /// Runs `body` with a fresh directory and removes it afterwards, whether `body` returns or throws.
    public static func with<R>(_ label: String = "logformat", _ body: (TempDir) throws -> R) rethrows -> R {
        let dir = TempDir(label)
        defer { dir.remove() }
        return try body(dir)
    }

    public static func with<R>(
        _ label: String = "logformat", isolation: isolated (any Actor)? = #isolation,
        _ body: (TempDir) async throws -> R
    ) async rethrows -> R {
        let dir = TempDir(label)
        defer { dir.remove() }
        return try await body(dir)
    }
}
