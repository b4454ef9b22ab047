import Foundation
import Testing
@testable import LogFormat

/// Runs the real executables: collector seeds a data directory, auditq queries and verifies it.
@Suite(.serialized) struct CLITests {
    static let binaries = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ tool: String, _ arguments: [String]) throws -> Run {
        let p = Process()
        p.executableURL = binaries.appendingPathComponent(tool)
        p.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// A data directory with 3,000 synthetic requests in several sealed segments; its path, the heaviest user,
    /// and the number of sealed segments the collector reported.
    static func seeded() throws -> (String, String, Int) {
        let dir = NSTemporaryDirectory() + "/auditq-cli-\(UInt64.random(in: 0...UInt64.max))"
        let seed = try run("collector", ["ingest-synthetic", "--data", dir, "--requests", "3000", "--segment-events", "5000"])
        #expect(seed.status == 0, "\(seed.stderr)")
        #expect(seed.stdout.contains("sealed segments"))
        let user = try run("collector", ["ingest-synthetic", "--print-heavy-user"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let words = seed.stdout.split(separator: " ")
        let segments = try #require(words.firstIndex(of: "sealed").flatMap { Int(words[$0 - 1]) })
        return (dir, user, segments)
    }

    @Test func searchTraceStatsAndVerify() throws {
        let (dir, user, segments) = try Self.seeded()
        #expect(segments >= 3)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let stats = try Self.run("auditq", ["stats", "--data", dir])
        #expect(stats.status == 0)
        #expect(stats.stdout.contains("sealed segments: \(segments)\n"))

        let search = try Self.run("auditq", ["search", "--data", dir, "--user", user, "--limit", "3"])
        #expect(search.status == 0)
        let lines = search.stdout.split(separator: "\n")
        #expect(lines.count == 4)  // header and three events
        #expect(lines.dropFirst().allSatisfy { $0.contains(user) && $0.contains("edge-nginx") })

        let traceID = String(try #require(lines.dropFirst().first?.split(separator: " ").last))
        let trace = try Self.run("auditq", ["trace", "--data", dir, traceID])
        #expect(trace.status == 0)
        #expect(trace.stdout.hasPrefix("edge-nginx [edge]"))
        #expect(trace.stdout.contains("[sidecar]"))
        #expect(!trace.stdout.contains("orphan"))

        let verify = try Self.run("auditq", ["verify", "--data", dir])
        #expect(verify.status == 0)
        #expect(verify.stdout.contains("\(segments)/\(segments) segments valid"))

        // Tamper with one byte of one sealed segment: verify fails with exit 3 and names the file.
        let segment = dir + "/segments/" + (try DataDirectory(dir).listSegmentFiles().sealed[1])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        bytes[200] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let tampered = try Self.run("auditq", ["verify", "--data", dir])
        #expect(tampered.status == 3)
        #expect(tampered.stdout.contains(segment))
        #expect(tampered.stdout.contains("\(segments - 1)/\(segments) segments valid"))
    }

    @Test func noMatchesIsNotAnErrorAndBadInputIsAUsageError() throws {
        let (dir, _, _) = try Self.seeded()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let none = try Self.run("auditq", ["search", "--data", dir, "--user", "nobody-at-all"])
        #expect(none.status == 0)
        #expect(none.stdout.isEmpty)
        #expect(none.stderr.contains("no matching events"))

        let badTrace = try Self.run("auditq", ["trace", "--data", dir, "xyz"])
        #expect(badTrace.status == 64)
        #expect(badTrace.stderr.contains("32 hex digits"))
        let badDate = try Self.run("auditq", ["search", "--data", dir, "--date", "2026-02-30"])
        #expect(badDate.status == 64)
        #expect(badDate.stderr.contains("cannot read time"))
        let missing = try Self.run("auditq", ["stats", "--data", dir + "/nope"])
        #expect(missing.status == 64)
    }
}
