// The one way tests start another program. Stdout and stderr are each drained by a thread of their own from the
// moment the child starts, so a child can write any amount to either without blocking on a full pipe (the old
// launchers read stdout to the end before stderr and hung once a child wrote more than 64 KiB to stderr), and
// every wait has a deadline that does not depend on a read returning: when it passes, the child is killed
// with SIGKILL and the wait throws, naming the program, the deadline and the tail of what it printed.
//
// Children are started with `posix_spawn`, not Foundation's `Process`: on Linux, `Process` learns of an exit when
// the last holder of a socket it hands the child closes it (swift-corelibs-foundation issue 4795), on a run-loop
// thread of its own that then blocks in `waitpid`, and its pipes are inheritable, so a process another test
// started at that moment could hold them, or that socket, long after this child died. Here the pipes are
// close-on-exec and every descriptor above stderr is closed in the child, so a child holds its own three and
// nothing else; the exit is found by polling `waitid`, which reaps it. Once the child has exited, the wait for
// the end of its output is bounded by `outputGrace` (a grandchild may still hold it): whatever the child wrote is
// in the pipes by then and read at once.
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
    // @unchecked: `pid`, `arguments`, `stdinHandle` and `name` are set in init; everything else is guarded by
    // `condition`.
    private let pid: pid_t
    private let arguments: [String]
    private let condition = NSCondition()
    private var out = Data()
    private var err = Data()
    private var openStreams = 2
    private var exited = false
    /// The exit status (or signal) once `waitid` has reaped the child.
    private var exitStatus: (status: Int32, signalled: Bool) = (-1, false)
    /// When the exit was first seen: output still open `outputGrace` later is held by another process.
    private var exitedAt: Date?
    private static let outputGrace: TimeInterval = 2
    /// How often a wait looks for the exit.
    private static let pollInterval: TimeInterval = 0.05
    /// The write end of the child's stdin, when started with `stdin: true`.
    private let stdinHandle: FileHandle?
    /// The program's file name, for messages.
    public let name: String

    /// Starts `executable` (a path) with `arguments`. The child's stdin is /dev/null unless `stdin` is true (then
    /// `write(_:)` feeds it). `environment` replaces the test process's environment when given. The child gets a
    /// process group of its own, as Foundation's `Process` gave it, and the test process's signal dispositions.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Bool = false
    ) throws {
        name = URL(fileURLWithPath: executable).lastPathComponent
        self.arguments = arguments
        let output = try Self.pipe()
        let errors = try Self.pipe()
        let input: (read: Int32, write: Int32)
        if stdin {
            input = try Self.pipe()
        } else {
            input = (open("/dev/null", O_RDONLY | O_CLOEXEC), -1)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input.read, 0)
        posix_spawn_file_actions_adddup2(&actions, output.write, 1)
        posix_spawn_file_actions_adddup2(&actions, errors.write, 2)
        Self.closeAbove(2, &actions)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A process group of its own: the group the attributes name by default is 0, the child's own pid.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))

        let argv = ([executable] + arguments).map { strdup($0) }
        let environment = environment ?? ProcessInfo.processInfo.environment
        let envp = environment.map { strdup("\($0.key)=\($0.value)") }
        defer { for string in argv + envp { free(string) } }
        var child = pid_t()
        let status = posix_spawn(&child, executable, &actions, &attributes, argv + [nil], envp + [nil])
        // The parent's copies of the child's ends must go, or the readers never see end-of-file.
        for fd in [input.read, output.write, errors.write] where fd >= 0 { close(fd) }
        guard status == 0 else {
            for fd in [input.write, output.read, errors.read] where fd >= 0 { close(fd) }
            throw ChildProcessFailure("\(name): cannot start \(executable): \(String(cString: strerror(status)))")
        }
        pid = child
        stdinHandle = input.write >= 0 ? FileHandle(fileDescriptor: input.write, closeOnDealloc: true) : nil
        drain(output.read, stdout: true)
        drain(errors.read, stdout: false)
    }

    /// A close-on-exec pipe: (read end, write end). `pipe2` is not imported; a child that another thread starts here
    /// between `pipe` and `fcntl` still closes the pair, with every descriptor above stderr.
    private static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard Glibc.pipe(&fds) == 0 else {
            throw ChildProcessFailure("pipe failed: \(String(cString: strerror(errno)))")
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }

    /// Has the child close every descriptor above `fd` before it runs (glibc 2.34's `closefrom` action, found
    /// at run time: Swift does not import it). Without it, close-on-exec still keeps this file's pipes to their
    /// own child.
    private static func closeAbove(_ fd: Int32, _ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        else { return }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, fd + 1)
    }

    /// Reads `fd` to its end on a thread of its own, which closes it.
    private func drain(_ fd: Int32, stdout: Bool) {
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

    public var processIdentifier: Int32 { pid }

    public var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        pollExit()
        return !exited
    }

    /// Reaps the child when it has exited and records how. Called with the lock held.
    private func pollExit() {
        guard !exited else { return }
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG) == 0, info._sifields._sigchld.si_pid == pid
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
        if isRunning { Glibc.kill(pid, signal) }
    }

    /// Writes to the child's stdin (started with `stdin: true`).
    public func write(_ text: String) {
        stdinHandle?.write(Data(text.utf8))
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
        if isRunning { Glibc.kill(pid, SIGKILL) }
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
        return "\(name) \(arguments.joined(separator: " ")): \(reason)\n"
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
