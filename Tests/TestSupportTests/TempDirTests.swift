import Foundation
import TestSupport
import Testing

/// The temporary directory lives exactly as long as the test says.
@Suite struct TempDirTests {
    struct Planned: Error {}

    @Test func theScopedFormRemovesTheDirectoryAfterTheBodyAndAfterAThrow() throws {
        let kept = try TempDir.with("tempdir-test") { dir in
            try Data("x".utf8).write(to: URL(fileURLWithPath: dir.path + "/file"))
            #expect(FileManager.default.fileExists(atPath: dir.path + "/file"))
            return dir.path
        }
        #expect(!FileManager.default.fileExists(atPath: kept))
        var thrownIn = ""
        #expect(throws: Planned.self) {
            try TempDir.with("tempdir-test") { dir in
                thrownIn = dir.path
                throw Planned()
            }
        }
        #expect(!thrownIn.isEmpty && !FileManager.default.fileExists(atPath: thrownIn))
    }

    /// Nothing removes the directory but `remove()`: not the value's last use, not its copies going away.
    @Test func onlyRemoveRemovesIt() {
        var path = ""
        do {
            let dir = TempDir("tempdir-test")
            path = dir.path
        }
        #expect(FileManager.default.fileExists(atPath: path))
        let again = TempDir("tempdir-test")
        again.remove()
        #expect(!FileManager.default.fileExists(atPath: again.path))
        try? FileManager.default.removeItem(atPath: path)
    }
}
