// Thin POSIX wrappers: every failure becomes a LogFormatError naming the file and the errno text.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A test seam for failing file writes: consulted before each write of segment data, it may let the write
/// go only part of the way and then fail it with an errno, as a full disk or a failing device would. Not for
/// production: set through `WriterOptions.writeFaults`, package-level only.
package protocol WriteFaults: Sendable {
    /// nil lets the write of `count` bytes at `offset` of `path` happen; otherwise the first `allowed` bytes
    /// (clamped to `count`) are written for real and the write then fails with `errno`.
    func fault(path: String, offset: Int, count: Int) -> (allowed: Int, errno: Int32)?
}

public enum FileIO {
    static func errnoMessage(_ code: Int32 = errno) -> String {
        String(cString: strerror(code)) + " (errno \(code))"
    }

    public static func ioError(_ what: String, path: String, code: Int32 = errno) -> LogFormatError {
        LogFormatError(.io, "\(what) failed: \(errnoMessage(code))", path: path)
    }

    /// True when the last failure was "no space left on device" or a quota error.
    public static func isOutOfSpace(_ error: LogFormatError) -> Bool {
        error.message.contains("(errno \(ENOSPC))") || error.message.contains("(errno \(EDQUOT))")
    }

    public static func open(_ path: String, flags: Int32, mode: mode_t = 0o600) throws(LogFormatError) -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ioError("open", path: path) }
        return fd
    }

    /// Writes all of `bytes` at `offset`, retrying short writes and EINTR.
    public static func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String)
        throws(LogFormatError)
    {
        var done = 0
        while done < bytes.count {
            let n = Glibc.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("write of \(bytes.count) bytes at offset \(offset)", path: path)
            }
            done += n
        }
    }

    public static func pwriteAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String) throws(LogFormatError) {
        try bytes.withBytes { (b) throws(LogFormatError) in try pwriteAll(fd, b, at: offset, path: path) }
    }

    /// `pwriteAll`, first asking `faults` (tests only) whether this write is to fail, and how far it gets.
    package static func pwriteAll(
        _ fd: Int32, _ bytes: [UInt8], at offset: Int, path: String, faults: (any WriteFaults)?
    ) throws(LogFormatError) {
        guard let faults, let fault = faults.fault(path: path, offset: offset, count: bytes.count) else {
            return try pwriteAll(fd, bytes, at: offset, path: path)
        }
        let allowed = max(0, min(fault.allowed, bytes.count))
        if allowed > 0 {
            try bytes.withBytes { (b) throws(LogFormatError) in
                try pwriteAll(fd, UnsafeRawBufferPointer(rebasing: b[0..<allowed]), at: offset, path: path)
            }
        }
        throw ioError("write of \(bytes.count) bytes at offset \(offset)", path: path, code: fault.errno)
    }

    /// Reads exactly `count` bytes at `offset` (fewer only at end of file).
    public static func pread(_ fd: Int32, count: Int, at offset: Int, path: String) throws(LogFormatError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let done = try out.withUnsafeMutableBytes { (b) -> Result<Int, LogFormatError> in
            Result { () throws(LogFormatError) in try pread(fd, into: b, at: offset, path: path) }
        }.get()
        out.removeLast(count - done)
        return out
    }

    public static func fsync(_ fd: Int32, path: String) throws(LogFormatError) {
        guard Glibc.fsync(fd) == 0 else { throw ioError("fsync", path: path) }
    }

    public static func ftruncate(_ fd: Int32, to size: Int, path: String) throws(LogFormatError) {
        guard Glibc.ftruncate(fd, off_t(size)) == 0 else { throw ioError("truncate to \(size) bytes", path: path) }
    }

    public static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// Reads into all of `buffer` from `offset`, retrying short reads and EINTR; fewer bytes only at the end of
    /// the file. Returns how many were read.
    public static func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String)
        throws(LogFormatError) -> Int
    {
        guard let base = buffer.baseAddress else { return 0 }
        var done = 0
        while done < buffer.count {
            let n = Glibc.pread(fd, base + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("read at offset \(offset + done)", path: path)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public static func fileSize(_ fd: Int32, path: String) throws(LogFormatError) -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ioError("fstat", path: path) }
        return Int(st.st_size)
    }

    public static func fileSize(path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int(st.st_size)
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Renames atomically and fsyncs the directory so the rename itself is durable.
    public static func renameDurably(_ from: String, _ to: String, directory: String) throws(LogFormatError) {
        guard Glibc.rename(from, to) == 0 else { throw ioError("rename to \(to)", path: from) }
        try fsyncDirectory(directory)
    }

    public static func fsyncDirectory(_ path: String) throws(LogFormatError) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("open directory", path: path) }
        defer { Glibc.close(fd) }
        guard Glibc.fsync(fd) == 0 else { throw ioError("fsync directory", path: path) }
    }

    /// Creates `path` and missing parents with mode 0700.
    public static func makeDirectories(_ path: String) throws(LogFormatError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw ioError("mkdir", path: current)
            }
        }
    }

    /// Names in a directory (not recursive), sorted.
    public static func listDirectory(_ path: String) throws(LogFormatError) -> [String] {
        guard let dir = opendir(path) else { throw ioError("open directory", path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public static func remove(_ path: String) throws(LogFormatError) {
        guard unlink(path) == 0 else { throw ioError("remove", path: path) }
    }

    /// Writes a whole file atomically: temporary file, fsync, rename, fsync of the directory.
    public static func writeAtomically(_ bytes: [UInt8], to path: String, directory: String) throws(LogFormatError) {
        let tmp = path + ".tmp"
        let fd = try open(tmp, flags: O_WRONLY | O_CREAT | O_TRUNC)
        do {
            try pwriteAll(fd, bytes, at: 0, path: tmp)
            try fsync(fd, path: tmp)
        } catch {
            close(fd)
            _ = unlink(tmp)
            throw error
        }
        close(fd)
        try renameDurably(tmp, path, directory: directory)
    }

    public static func readFile(_ path: String) throws(LogFormatError) -> [UInt8] {
        let fd = try open(path, flags: O_RDONLY)
        defer { close(fd) }
        let size = try fileSize(fd, path: path)
        return try pread(fd, count: size, at: 0, path: path)
    }

    /// Current wall-clock time in Unix nanoseconds.
    public static func nowUnixNano() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Monotonic nanoseconds, for ages and intervals.
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// The bytes of a whole file, read-only: a memory map, or a copy read with `pread` (`snapshot: true`).
/// Immutable after init and released on deinit, hence Sendable.
///
/// Map only files that nobody truncates (sealed segments): a mapped file cut shorter raises SIGBUS in the
/// reader. A file another process may cut (an `.open` segment the collector rolls back or recovers) is read
/// as a snapshot instead: the bytes there when it was read, however the file changes afterwards.
public final class MappedFile: Sendable {
    public let path: String
    // Safe to share: the bytes are never written after init and live until deinit.
    nonisolated(unsafe) private let base: UnsafeMutableRawPointer?
    public let count: Int
    /// True when the bytes are a copy (read with `pread`), not a mapping.
    public let isSnapshot: Bool

    public convenience init(path: String, snapshot: Bool = false) throws(LogFormatError) {
        let fd = try FileIO.open(path, flags: O_RDONLY)
        defer { FileIO.close(fd) }
        try self.init(fd: fd, size: try FileIO.fileSize(fd, path: path), path: path, snapshot: snapshot)
    }

    /// Maps (or, `snapshot`, reads) the `size` bytes of the open file `fd`; the caller closes `fd`.
    public init(fd: Int32, size: Int, path: String, snapshot: Bool = false) throws(LogFormatError) {
        self.path = path
        isSnapshot = snapshot
        if snapshot {
            // The file may shrink or grow while it is read: keep what a single pass of reads returned.
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 16)
            let done: Int
            do throws(LogFormatError) {
                done = try FileIO.pread(
                    fd, into: UnsafeMutableRawBufferPointer(start: buffer, count: size), at: 0, path: path)
            } catch {
                buffer.deallocate()
                throw error
            }
            base = buffer
            count = done
            return
        }
        count = size
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw FileIO.ioError("mmap of \(size) bytes", path: path) }
        base = p
    }

    deinit {
        if isSnapshot {
            base?.deallocate()
        } else if let base {
            munmap(base, count)
        }
    }

    /// The mapped bytes. Valid only while this object is alive: hold it, or use `withBytes`.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Calls `body` with the mapped bytes, keeping the mapping alive for the call.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(LogFormatError) -> R) throws(LogFormatError) -> R {
        try withExtendedLifetime(self) { () throws(LogFormatError) -> R in try body(bytes) }
    }
}
