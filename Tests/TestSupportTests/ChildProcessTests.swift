import Foundation
import TestSupport
import Testing

/// The launcher every process test uses: it must never hang on a chatty child, and its deadlines must fire
/// even when the child prints nothing.
@Suite(.ownThreads) struct ChildProcessTests {
    static let mebibyte = 1 << 20

    /// 1 MiB on stderr first, then 1 MiB on stdout: a launcher that reads stdout to its end before touching
    /// stderr waits forever here (the child blocks once the stderr pipe holds 64 KiB).
    @Test func aChildWritingAMebibyteToEachStreamCompletes() throws {
        let script = "head -c \(Self.mebibyte) /dev/zero >&2; head -c \(Self.mebibyte) /dev/zero; exit 3"
        let output = try ChildProcess.run("/bin/sh", ["-c", script], within: 60)
        #expect(output.stderrData.count == Self.mebibyte)
        #expect(output.stdoutData.count == Self.mebibyte)
        #expect(output.status == 3 && !output.signalled)
    }

    @Test func bothStreamsInterleavedCompleteToo() throws {
        let script = "(head -c \(Self.mebibyte) /dev/zero >&2 &); head -c \(Self.mebibyte) /dev/zero; wait"
        let output = try ChildProcess.run("/bin/sh", ["-c", script], within: 60)
        #expect(output.stdoutData.count == Self.mebibyte)
        #expect(output.stderrData.count == Self.mebibyte)
    }

    /// A child that sleeps past the deadline is killed, and the wait says so instead of blocking.
    @Test func aChildSleepingPastTheDeadlineIsKilledAndReported() throws {
        let started = Date()
        let child = try ChildProcess("/bin/sh", ["-c", "echo started; exec sleep 60"])
        let error = try #require(throws: ChildProcessFailure.self) { try child.wait(within: 1) }
        #expect(Date().timeIntervalSince(started) < 15, "the deadline fired late")
        #expect(error.description.contains("did not finish within 1.0 s and was killed"), "\(error)")
        #expect(error.description.contains("started"), "what it printed is in the report")
        #expect(!child.isRunning)
    }

    /// The server form: waiting for a line that never comes also ends at the deadline, with the child killed.
    @Test func waitingForOutputThatNeverComesEndsAtTheDeadline() throws {
        let child = try ChildProcess("/bin/sh", ["-c", "echo not-yet >&2; exec sleep 60"])
        let error = try #require(throws: ChildProcessFailure.self) {
            try child.waitForStdout("the port", within: 1) { $0.contains("port") }
        }
        #expect(error.description.contains("did not print the port within 1.0 s"), "\(error)")
        #expect(error.description.contains("not-yet"))
        #expect(!child.isRunning)
    }

    /// A child that exits before printing what the test waits for is reported at once, not at the deadline.
    @Test func aChildExitingEarlyIsReportedAtOnce() throws {
        let started = Date()
        let child = try ChildProcess("/bin/sh", ["-c", "echo bad flag >&2; exit 64"])
        let error = try #require(throws: ChildProcessFailure.self) {
            try child.waitForStdout("the port", within: 60) { $0.contains("port") }
        }
        #expect(Date().timeIntervalSince(started) < 15)
        #expect(error.description.contains("exited before printing the port"))
        #expect(error.description.contains("bad flag"))
    }

    @Test func stopSignalsAndReportsAGracefulExit() throws {
        let script = "trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.05; done"
        let child = try ChildProcess("/bin/sh", ["-c", script])
        try child.waitForStdout("up", within: 30) { $0.contains("up\n") }
        let (output, graceful) = child.stop(signal: SIGTERM, within: 30)
        #expect(graceful)
        #expect(output.succeeded)
        #expect(output.stdout == "up\nbye\n")
    }

    /// A process that outlives the child and holds what it inherited (its output pipes) must not hide the exit: the
    /// wait ends soon after the child's own exit, with its status and output. Before the launcher polled `waitid`,
    /// this waited for the grandchild's 20 s.
    @Test func anExitIsSeenWhileAnotherProcessHoldsTheChildsDescriptors() throws {
        let started = Date()
        let script = "sleep 20 & echo $! >&2; echo done; exit 7"
        let output = try ChildProcess.run("/bin/sh", ["-c", script], within: 15)
        defer {
            if let pid = Int32(output.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) { kill(pid, SIGKILL) }
        }
        #expect(Date().timeIntervalSince(started) < 10, "the wait outlasted the child by the grandchild's sleep")
        #expect(output.status == 7 && !output.signalled)
        #expect(output.stdout == "done\n")
    }

    /// A child holds its own stdin, stdout and stderr and nothing else: not the pipes of a child started before it
    /// and still running (which would keep that child's output open past its exit), nor a descriptor the test
    /// process opened without close-on-exec. (Foundation's `Process` left it a socket of its own as well.)
    @Test func aChildHoldsOnlyItsOwnThreeDescriptors() throws {
        let first = try ChildProcess("/bin/sh", ["-c", "echo up; exec sleep 30"])
        defer { first.stop(signal: SIGKILL, within: 10) }
        try first.waitForStdout("up", within: 30) { $0.contains("up\n") }
        let inheritable = open("/dev/null", O_RDONLY)
        defer { close(inheritable) }
        let second = try ChildProcess("/bin/sleep", ["30"])
        defer { second.stop(signal: SIGKILL, within: 10) }
        // posix_spawn returns once the child has run exec: its descriptors are final.
        let held = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(second.processIdentifier)/fd")
        #expect(held.sorted() == ["0", "1", "2"])
    }

    /// The signal that ended a child is reported as such, also when the exit is seen through `waitid`.
    /// Each child leads a process group of its own, so stopping it reaches what it started.
    @Test func aChildLeadsAProcessGroupOfItsOwn() throws {
        let r = try ChildProcess.run("/bin/sh", ["-c", "echo $$ $(ps -o pgid= -p $$)"])
        let ids = r.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(ids.count == 2 && ids[0] == ids[1], "pid and process group: \(r.stdout)")
        #expect(ids.first.map { Int32($0) != getpgrp() } == true)
    }

    @Test func aChildKilledBySIGKILLReportsTheSignal() throws {
        let child = try ChildProcess("/bin/sh", ["-c", "sleep 20 & echo up; exec sleep 60"])
        try child.waitForStdout("up", within: 30) { $0.contains("up\n") }
        let (output, graceful) = child.stop(signal: SIGKILL, within: 10)
        #expect(graceful)
        #expect(output.signalled && output.status == SIGKILL)
    }
}
