import Foundation
import TestSupport
import Testing

/// `scripts/test-watchdog.py`, which `make test` runs the suite under: a run that hangs must end in a failure that
/// names what was running and shows its stacks, and a run that ends must pass its status through untouched.
@Suite(.ownThreads) struct TestWatchdogTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/test-watchdog.py").path
    static let gdb = ["/usr/bin/gdb", "/usr/local/bin/gdb"].contains {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static func watchdog(_ options: [String], _ shell: String) throws -> ChildOutput {
        try ChildProcess.run("/usr/bin/python3", [script] + options + ["--", "/bin/sh", "-c", shell], within: 120)
    }

    /// The part of the output after the summary's heading.
    static func summary(_ output: ChildOutput) -> String {
        output.stdout.components(separatedBy: "=== test-watchdog summary ===").dropFirst().joined()
    }

    static func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

    /// A test process (a program named like one) that stops printing: the run fails with 124, the summary names
    /// the test started and not ended (not the one that ended), the process's stacks are printed, and it is gone.
    @Test(.enabled(if: gdb, "gdb is missing: make test installs it"))
    func aSilentRunFailsNamingTheTestStillRunningWithItsStacks() throws {
        let tmp = TempDir("watchdog")
        defer { tmp.remove() }
        let fake = tmp.path + "/fake-PackageTests.xctest"
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: fake)
        let started = Date()
        let output = try Self.watchdog(
            ["--silence", "2"],
            """
            echo "◇ Test stillRunning() started."; echo "◇ Test quick() started."
            echo "✔ Test quick() passed after 0.1 seconds."; echo $$ > \(tmp.path)/pid; exec \(fake) 60
            """)
        #expect(output.status == 124 && !output.signalled)
        let summary = Self.summary(output)
        #expect(summary.contains("stillRunning()"), "\(output.stdout)")
        #expect(!summary.contains("quick()"))
        #expect(output.stdout.contains("stacks of"), "\(output.stdout)")
        let written = try String(contentsOfFile: tmp.path + "/pid", encoding: .utf8)
        let pid = try #require(Int32(written.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(!Self.isAlive(pid), "the hung process was left running")
        #expect(Date().timeIntervalSince(started) < 45, "the watchdog waited for the command instead of killing it")
    }

    /// With an event stream, the tests running come from it (the console says nothing here), and a run whose
    /// stream says it ended but whose process stays is stopped after the exit grace, not the silence.
    @Test func aRunThatEndedButDoesNotExitIsStoppedAfterTheGrace() throws {
        let tmp = TempDir("watchdog")
        defer { tmp.remove() }
        let events = tmp.path + "/events.jsonl"
        func event(_ kind: String, _ test: String) -> String {
            #"{"kind":"event","payload":{"kind":"\#(kind)","testID":"M.S/\#(test)/F.swift:1:1"},"version":0}"#
        }
        let stream = [
            event("testStarted", "ended()"), event("testStarted", "left()"), event("testEnded", "ended()"),
        ]
        let silent = try Self.watchdog(
            ["--silence", "2", "--events", events],
            stream.map { "echo '\($0)' >> \(events)" }.joined(separator: "; ") + "; exec sleep 60")
        #expect(silent.status == 124)
        #expect(Self.summary(silent).contains("M.S/left()"), "\(silent.stdout)")
        #expect(!Self.summary(silent).contains("M.S/ended()"))

        let runEnded = #"{"kind":"event","payload":{"kind":"runEnded"},"version":0}"#
        let started = Date()
        let lingering = try Self.watchdog(
            ["--silence", "100", "--exit-grace", "2", "--events", events],
            "echo '\(runEnded)' >> \(events); exec sleep 60")
        #expect(lingering.status == 124)
        #expect(lingering.stdout.contains("the test run ended"), "\(lingering.stdout)")
        #expect(Date().timeIntervalSince(started) < 60, "stopped by the grace, not by the command's end")
    }

    /// A run that ends by itself keeps its status and output (stderr joins stdout, in order), and reports how long
    /// it was quiet.
    @Test func aRunThatEndsKeepsItsStatusAndOutput() throws {
        let output = try Self.watchdog(["--silence", "30"], "echo one; echo two >&2; exit 3")
        #expect(output.status == 3 && !output.signalled)
        #expect(output.stdout == "one\ntwo\n")
        #expect(output.stderr.contains("longest silence"))
    }
}
