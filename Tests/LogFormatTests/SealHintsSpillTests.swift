// The hints of a log waiting behind another log's seal wait in an unnamed file instead of memory: read back, they
// are the hints that were spilled, and the writer's seals from them are recovery's seals.
import Foundation
import TestSupport
import Testing

@testable import LogFormat

@Suite struct SealHintsSpillTests {
    /// Descriptors of this process open on unnamed files in `directory` (O_TMPFILE: "directory/#inode (deleted)").
    static func unnamedFiles(in directory: String) -> Int {
        // The kernel names the directory by its canonical path (TempDir's may hold "//").
        guard let resolved = realpath(directory, nil) else { return 0 }
        let canonical = String(cString: resolved)
        free(resolved)
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { fd in
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = readlink("/proc/self/fd/" + fd, &buffer, buffer.count - 1)
            guard n > 0 else { return false }
            let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return target.hasPrefix(canonical + "/#") && target.hasSuffix("(deleted)")
        }.count
    }

    static func same(_ a: SealHints, _ b: SealHints) -> Bool {
        guard a.count == b.count, a.names == b.names else { return false }
        return (0..<a.count).allSatisfy { i in
            let x = a[i]
            let y = b[i]
            return x.leaf == y.leaf && x.traceID == y.traceID && x.start == y.start && x.size == y.size
                && x.user == y.user && x.service == y.service && x.isEdgeAccess == y.isEdgeAccess
        }
    }

    /// Spilled and read back: the same records (a whole chunk, a partial last one, one record), no memory kept by
    /// the spilled copy, and the file gone once no hints name it.
    @Test(arguments: [1, SealHints.chunkSize, 2 * SealHints.chunkSize + 77])
    func readBackIsWhatWasSpilled(count: Int) throws {
        try TempDir.with { tmp in
            var hints = SealHints()
            for n in 0..<count {
                var leaf = [UInt8](repeating: 0, count: 32)
                leaf[n % 32] = UInt8(truncatingIfNeeded: n)
                leaf[31] = UInt8(truncatingIfNeeded: n >> 8)
                hints.append(
                    SealHints.Record(
                        leaf: Digest32(bytes: leaf)!, traceID: TraceID(high: 9, low: UInt64(n)),
                        start: UInt64(n) * 1_000, size: UInt32(n % 5000), user: UInt32(n % 11),
                        service: UInt32(n % 3), isEdgeAccess: n % 4 == 0))
            }
            let original = hints
            do {
                var spilled = hints
                spilled.spill(in: tmp.path)
                #expect(spilled.isSpilled)
                #expect(Self.unnamedFiles(in: tmp.path) == 1)
                let back = try spilled.loaded()
                #expect(!back.isSpilled)
                #expect(Self.same(back, original))
                // Nothing was left with a name in the directory.
                #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path).isEmpty)
            }
            #expect(Self.unnamedFiles(in: tmp.path) == 0)
            // Where no file can be made, the hints stay in memory and read as before.
            hints.spill(in: tmp.path + "/missing")
            #expect(!hints.isSpilled)
            #expect(Self.same(try hints.loaded(), original))
        }
    }

    /// Logs retired while another waits for its seal keep their hints in files; laid out, they are the files
    /// recovery seals from a copy of the same logs, and no file is left open.
    @Test func logsWaitingBehindASealAreSealedAsRecoveryWould() throws {
        try TempDir.with { tmp in
            let (a, b) = SealHintsTests.twoDirectories(tmp)
            var options = SealHintsTests.smallBlocks
            options.maxSegmentRecords = 1_000
            let writer = try SegmentWriter(directory: a, options: options, logger: quietLogger)
            let events = SealHintsTests.events(3_600, seed: 21)
            for chunk in stride(from: 0, to: events.count, by: 200) {
                try writer.append(events[chunk..<min(chunk + 200, events.count)])
                try writer.flush()
                _ = try writer.rollIfNeeded(layOut: false)
            }
            try writer.sync()
            #expect(writer.retiredLogCount == 3)
            // The first waits in memory (nothing ahead of it), the two behind it in files.
            #expect(Self.unnamedFiles(in: a.segmentsPath) == 2)
            try FileManager.default.copyItem(atPath: a.root, toPath: b.root)
            let sealed = try writer.layOutRetired()
            #expect(sealed.count == 3)
            #expect(Self.unnamedFiles(in: a.segmentsPath) == 0)
            // Recovery seals the open log too.
            #expect(try writer.seal() != nil)
            let recovered = try SegmentWriter(directory: b, options: options, logger: quietLogger)
            #expect(recovered.recoveries.filter { $0.action == .sealed }.count == 4)
            let ours = try a.currentCatalog(repair: false).entries.map(\.relativePath)
            let theirs = try b.currentCatalog(repair: false).entries.map(\.relativePath)
            #expect(ours.count == 4)
            #expect(ours == theirs)
            for path in ours {
                #expect(
                    try SealHintsTests.withoutFooter(a.path(relative: path))
                        == SealHintsTests.withoutFooter(b.path(relative: path)), "\(path)")
            }
        }
    }
}
