// The one way tests start another program. Stdout and stderr are each drained by a thread of their own from the
// moment the child starts, so a child can write any amount to either without blocking on a full pipe (the old
// launchers read stdout to the end before stderr and hung once a child wrote more than 64 KiB to stderr), and
// every wait has a deadline that does not depend on a read returning: when it passes, the child is killed
// with SIGKILL and the wait throws, naming the program, the deadline and the tail of what it printed.
//
// The exit is also seen without Foundation: on Linux, `Process` learns of it when the last holder of a socket it
// hands the child closes it (swift-corelibs-foundation issue 4795), and a process another test starts at that
// moment can inherit that socket, or this child's pipes, and hold them long after this child died. So every wait
// polls `waitid(WNOWAIT)`, which sees the exit without reaping it, and once the child has exited, waits for the end
// of its output only for `outputGrace`: whatever it wrote is in the pipes by then and read at once.
import Foundation

/// Why a child process did not give the test what it waited for.
public struct ChildProcessFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What a finished child left: its exit status (or the signal that ended it) and everything it printed.
public struct ChildOutput: Sendable {
    /// The exit status, or the signal number when `signalled`.
    public var status: Int32
    public var signalled: Bool
    public var stdoutData: Data
    public var stderrData: Data
    public var stdout: String { String(decoding: stdoutData, as: UTF8.self) }
    public var stderr: String { String(decoding: stderrData, as: UTF8.self) }
    /// True when the child exited by itself with status 0.
    public var succeeded: Bool { !signalled && status == 0 }
}

/// A child process started by a test: its output is collected as it comes, and every wait has a deadline.
/// `ChildProcess.run` is the form for a command that finishes; `init` and `stop` are the form for a server.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` and `name` are set in init; everything else is guarded by `condition`.
    private let process = Process()
    private let condition = NSCondition()
    private var out = Data()
    private var err = Data()
    private var openStreams = 2
    private var exited = false
    /// The exit status (or signal) once seen, from Foundation's handler or `waitid`.
    private var exitStatus: (status: Int32, signalled: Bool) = (-1, false)
    /// When the exit was first seen: output still open `outputGrace` later is held by another process.
    private var exitedAt: Date?
    private static let outputGrace: TimeInterval = 2
    /// How often a wait looks for an exit Foundation has not reported.
    private static let pollInterval: TimeInterval = 0.05
    private let stdinPipe: Pipe?
    /// The program's file name, for messages.
    public let name: String

    /// Starts `executable` with `arguments`. The child's stdin is /dev/null unless `stdin` is true (then
    /// `write(_:)` feeds it). `environment` replaces the test process's environment when given.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Bool = false
    ) throws {
        name = URL(fileURLWithPath: executable).lastPathComponent
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let outPipe = Pipe()
        let errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        stdinPipe = stdin ? Pipe() : nil
        process.standardInput = stdinPipe ?? FileHandle.nullDevice
        process.terminationHandler = { [weak self] p in
            guard let self else { return }
            condition.lock()
            if !exited {
                exited = true
                exitedAt = Date()
                exitStatus = (p.terminationStatus, p.terminationReason == .uncaughtSignal)
            }
            condition.broadcast()
            condition.unlock()
        }
        try process.run()
        // The parent's copies of the write ends must go, or the readers never see end-of-file.
        try? outPipe.fileHandleForWriting.close()
        try? errPipe.fileHandleForWriting.close()
        try? stdinPipe?.fileHandleForReading.close()
        drain(outPipe.fileHandleForReading, stdout: true)
        drain(errPipe.fileHandleForReading, stdout: false)
    }

    /// Reads `handle` to its end on a thread of its own. The thread owns a duplicate of the descriptor and
    /// closes it; the handle is closed at once, so no descriptor is closed twice.
    private func drain(_ handle: FileHandle, stdout: Bool) {
        let fd = dup(handle.fileDescriptor)
        try? handle.close()
        let thread = Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                condition.lock()
                if n > 0 && stdout {
                    out.append(contentsOf: chunk[0..<n])
                } else if n > 0 {
                    err.append(contentsOf: chunk[0..<n])
                } else {
                    openStreams -= 1
                }
                condition.broadcast()
                condition.unlock()
                if n <= 0 { break }
            }
            close(fd)
        }
        thread.start()
    }

    public var processIdentifier: Int32 { process.processIdentifier }

    public var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        pollExit()
        return !exited
    }

    /// Records the child's exit when it has exited and Foundation has not said so yet. Called with the lock held.
    private func pollExit() {
        guard !exited else { return }
        var info = siginfo_t()
        let pid = process.processIdentifier
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0, info._sifields._sigchld.si_pid == pid
        else { return }
        let code = Int32(info.si_code)
        exited = true
        exitedAt = Date()
        exitStatus = (info._sifields._sigchld.si_status, code == CLD_KILLED || code == CLD_DUMPED)
    }

    /// Whether the child has exited and its output has ended, or stayed open past the grace (held by another
    /// process). Called with the lock held.
    private var finished: Bool {
        pollExit()
        guard exited else { return false }
        return openStreams == 0 || Date() >= exitedAt!.addingTimeInterval(Self.outputGrace)
    }

    /// Waits on the condition until `deadline`, at most one poll interval. Called with the lock held.
    private func waitSlice(until deadline: Date) {
        _ = condition.wait(until: min(deadline, Date().addingTimeInterval(Self.pollInterval)))
    }

    /// The exit status once the child has exited (the signal number when a signal ended it), else -1.
    public var terminationStatus: Int32 { result().status }

    /// What the child printed so far.
    public var stdoutSoFar: String { locked { String(decoding: out, as: UTF8.self) } }
    public var stderrSoFar: String { locked { String(decoding: err, as: UTF8.self) } }

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }

    /// Sends `signal` to the child (nothing when it has exited).
    public func signal(_ signal: Int32) {
        if isRunning { Glibc.kill(process.processIdentifier, signal) }
    }

    /// Writes to the child's stdin (started with `stdin: true`).
    public func write(_ text: String) {
        stdinPipe?.fileHandleForWriting.write(Data(text.utf8))
    }

    /// Waits until `done` holds for the stdout printed so far and returns that text. When the deadline passes
    /// first, or the child exits or closes stdout first, the child is killed and this throws, saying `what`
    /// was awaited.
    @discardableResult
    public func waitForStdout(
        _ what: String, within seconds: Double = 60, until done: (String) -> Bool
    ) throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        while true {
            let text = String(decoding: out, as: UTF8.self)
            if done(text) {
                condition.unlock()
                return text
            }
            if finished || Date() >= deadline { break }
            waitSlice(until: deadline)
        }
        let exitedFirst = exited
        condition.unlock()
        let reason = exitedFirst ? "exited before printing \(what)" : "did not print \(what) within \(seconds) s"
        let output = kill(reason)
        throw ChildProcessFailure(describe(reason, output))
    }

    /// Waits for the next stdout line after the first `consumed` bytes; returns it and the new count.
    public func line(after consumed: Int, within seconds: Double = 60) throws -> (line: String, consumed: Int) {
        var result: (String, Int) = ("", consumed)
        try waitForStdout("a line", within: seconds) { _ in
            let rest = out.dropFirst(consumed)
            guard let newline = rest.firstIndex(of: 0x0A) else { return false }
            result = (String(decoding: rest[rest.startIndex..<newline], as: UTF8.self), newline + 1)
            return true
        }
        return result
    }

    /// Waits for the child to exit and its output to end. Past the deadline it is killed and this throws.
    public func wait(within seconds: Double = 120) throws -> ChildOutput {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        while !finished {
            if Date() >= deadline {
                condition.unlock()
                let reason = "did not finish within \(seconds) s and was killed"
                throw ChildProcessFailure(describe(reason, kill(reason)))
            }
            waitSlice(until: deadline)
        }
        condition.unlock()
        return result()
    }

    /// Sends `signal` and waits up to `seconds` for the child to exit; past that it is killed with SIGKILL.
    /// `graceful` in the answer is false when the deadline passed. For servers; never throws, so it fits `defer`.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, within seconds: Double = 30) -> (output: ChildOutput, graceful: Bool) {
        self.signal(signal)
        do {
            return (try wait(within: seconds), true)
        } catch {
            return (result(), false)
        }
    }

    /// SIGKILL, then a bounded wait for the exit (output a grandchild holds open is not waited for).
    private func kill(_ reason: String) -> ChildOutput {
        if isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        let deadline = Date().addingTimeInterval(10)
        condition.lock()
        while !finished && Date() < deadline { waitSlice(until: deadline) }
        condition.unlock()
        return result()
    }

    private func result() -> ChildOutput {
        locked {
            pollExit()
            return ChildOutput(
                status: exitStatus.status, signalled: exitStatus.signalled, stdoutData: out, stderrData: err)
        }
    }

    private func describe(_ reason: String, _ output: ChildOutput) -> String {
        func tail(_ text: String) -> String { text.count > 2_000 ? "…" + String(text.suffix(2_000)) : text }
        return "\(name) \(process.arguments?.joined(separator: " ") ?? ""): \(reason)\n"
            + "stdout: \(tail(output.stdout))\nstderr: \(tail(output.stderr))"
    }

    /// Runs a command to its end: its output, or a thrown failure naming it when `seconds` pass first (the
    /// child is killed then). A non-zero exit is not an error here; the test checks `status`.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, within seconds: Double = 120
    ) throws -> ChildOutput {
        try ChildProcess(executable, arguments, environment: environment).wait(within: seconds)
    }

    /// The directory of the test bundle's executables (`collector`, `auditq`, `SegmentCrashWriter`).
    public static let buildProducts = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent()

    /// The path of one of the package's executables.
    public static func product(_ name: String) -> String { buildProducts.appendingPathComponent(name).path }
}
