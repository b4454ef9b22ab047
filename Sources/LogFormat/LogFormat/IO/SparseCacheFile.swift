// A bounded local cache of remote objects, range by range (docs/object-store.md, "The local cache"):
//
//   CACHE/<h>.obj      a sparse file of the object's full size; only fetched ranges hold data
//   CACHE/<h>.ranges   which ranges of it are present: text, rewritten atomically after each fetch
//
// <h> is the first 32 hex digits of the SHA-256 of the object's name (bucket/key). The `.ranges` file records the
// object's identity (its ETag), size and the `.obj` file's inode: a cache file replaced, evicted or left by another
// object under the same key never lends its ranges to the new one. Several processes may share a directory: a
// cached object is immutable, so two that fetch the same range write the same bytes, and the range list is merged
// under an flock(2) of the `.obj` file. Files are never truncated in place (a reader elsewhere may map them):
// eviction and replacement unlink, and a mapping of the old inode stays valid until it is unmapped.
import Crypto
import Glibc
import Synchronization

/// The cache directory: where cached objects live and how much they may take.
public struct RangeCacheDirectory: Sendable {
    public let root: String
    /// The bound on the bytes the cached objects occupy on disk (allocated blocks, not their sparse sizes).
    public let capacityBytes: Int

    public init(root: String, capacityBytes: Int) throws(LogFormatError) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
        self.capacityBytes = capacityBytes
        try FileIO.makeDirectories(r)
    }

    /// The file names (without suffix) of the object called `name` (e.g. `bucket/key`).
    public func baseName(of name: String) -> String {
        SHA256.hash(data: Array(name.utf8)).prefix(16).map { b in
            let s = String(b, radix: 16)
            return b < 16 ? "0" + s : s
        }.joined()
    }

    /// Opens the cache file of the object `name`, creating it (empty, sparse, `size` bytes) when it is missing or
    /// belongs to another object. `identity` is what makes the object this one (its ETag); `displayPath` names it
    /// in messages.
    public func open(
        object name: String, identity: String, size: Int, displayPath: String, fetcher: any RangeFetcher
    ) throws(LogFormatError) -> SparseCacheFile {
        let base = root + "/" + baseName(of: name)
        return try SparseCacheFile(
            dataPath: base + ".obj", rangesPath: base + ".ranges", identity: identity, size: size,
            displayPath: displayPath, fetcher: fetcher)
    }

    /// The cached objects: data file, allocated bytes, last use (the `.ranges` file's mtime, touched on open).
    func entries() -> [(base: String, bytes: Int, lastUse: Int)] {
        guard let names = try? FileIO.listDirectory(root) else { return [] }
        var out: [(base: String, bytes: Int, lastUse: Int)] = []
        for name in names where name.hasSuffix(".obj") {
            let base = root + "/" + name.dropLast(4)
            var st = stat()
            guard stat(base + ".obj", &st) == 0 else { continue }
            let bytes = Int(st.st_blocks) * 512
            var rs = stat()
            let lastUse = stat(base + ".ranges", &rs) == 0 ? Int(rs.st_mtim.tv_sec) : 0
            out.append((base, bytes, lastUse))
        }
        return out
    }

    /// Bytes the cached objects occupy on disk.
    public func allocatedBytes() -> Int { entries().reduce(0) { $0 + $1.bytes } }

    /// Removes the least recently used objects until what is left takes at most `capacityBytes`. Returns how many
    /// objects and bytes went. A process still reading a removed object keeps its mapping.
    @discardableResult
    public func trim() -> (objects: Int, bytes: Int) {
        var all = entries()
        var total = all.reduce(0) { $0 + $1.bytes }
        guard total > capacityBytes else { return (0, 0) }
        all.sort { ($0.lastUse, $0.base) < ($1.lastUse, $1.base) }
        var removed = (objects: 0, bytes: 0)
        for e in all where total > capacityBytes {
            _ = unlink(e.base + ".ranges")
            _ = unlink(e.base + ".obj")
            total -= e.bytes
            removed.objects += 1
            removed.bytes += e.bytes
        }
        return removed
    }
}

/// One cached object: a sparse local file of its full size, mapped, with the ranges fetched so far. Reading a
/// range means `makePresent` first (the segment reader does); what is missing is fetched through the injected
/// `RangeFetcher`, written into the file and recorded in the `.ranges` file for the next process.
public final class SparseCacheFile: SegmentByteSource {
    public let path: String
    public let dataPath: String
    public let rangesPath: String
    public let count: Int
    let identity: String
    let fetcher: any RangeFetcher
    let fd: Int32
    let inode: UInt64
    // Safe to share: mapped read-only for the object's life; bytes are read only in ranges `present` holds, and
    // ranges once present are never written again (a second write of the same range writes the same bytes).
    nonisolated(unsafe) private let base: UnsafeMutableRawPointer?
    /// Present ranges: sorted, disjoint, not touching.
    private let present = Mutex<[Range<Int>]>([])
    /// Two missing ranges closer than this are fetched as one request (fewer round trips for a few more bytes).
    public static let coalesceGap = 16 << 10

    init(
        dataPath: String, rangesPath: String, identity: String, size: Int, displayPath: String,
        fetcher: any RangeFetcher
    ) throws(LogFormatError) {
        self.path = displayPath
        self.dataPath = dataPath
        self.rangesPath = rangesPath
        self.count = size
        self.identity = identity
        self.fetcher = fetcher
        var fd = try FileIO.open(dataPath, flags: O_RDWR | O_CREAT)
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            FileIO.close(fd)
            throw FileIO.ioError("fstat", path: dataPath)
        }
        let ranges = Self.readRanges(rangesPath, identity: identity, size: size, inode: UInt64(st.st_ino))
        if ranges == nil {
            if st.st_size != 0 {
                // Another object's file, or one whose ranges are unknown: replace it (unlink, never truncate:
                // another process may map it).
                FileIO.close(fd)
                _ = unlink(dataPath)
                fd = try FileIO.open(dataPath, flags: O_RDWR | O_CREAT)
                guard fstat(fd, &st) == 0 else {
                    FileIO.close(fd)
                    throw FileIO.ioError("fstat", path: dataPath)
                }
            }
            do throws(LogFormatError) { try FileIO.ftruncate(fd, to: size, path: dataPath) } catch {
                FileIO.close(fd)
                throw error
            }
        }
        self.fd = fd
        inode = UInt64(st.st_ino)
        present.withLock { $0 = ranges ?? [] }
        if size == 0 {
            base = nil
        } else {
            let p = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0)
            guard let p, p != MAP_FAILED else {
                FileIO.close(fd)
                throw FileIO.ioError("mmap of \(size) bytes", path: dataPath)
            }
            base = p
        }
        if ranges == nil {
            // A new file: record it (empty), so another process opening it does not take it for a stale one.
            try saveRanges([])
        } else {
            // Last use, for eviction.
            _ = utimensat(AT_FDCWD, rangesPath, nil, 0)
        }
    }

    deinit {
        if let base { munmap(base, count) }
        FileIO.close(fd)
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// The ranges present now.
    public var presentRanges: [Range<Int>] { present.withLock { $0 } }

    /// Bytes of the object present in the cache.
    public var presentBytes: Int { presentRanges.reduce(0) { $0 + $1.count } }

    public func makePresent(_ range: Range<Int>) throws(LogFormatError) {
        if isPresent(range) { return }
        try makePresent([range])
    }

    /// Whether `range` (clamped to the object) is present: a binary search, nothing allocated (the warm path of
    /// every part a reader reads).
    func isPresent(_ range: Range<Int>) -> Bool {
        let r = range.clamped(to: 0..<count)
        if r.isEmpty { return true }
        return present.withLock { p in
            var lo = 0
            var hi = p.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if p[mid].upperBound <= r.lowerBound { lo = mid + 1 } else { hi = mid }
            }
            return lo < p.count && p[lo].lowerBound <= r.lowerBound && r.upperBound <= p[lo].upperBound
        }
    }

    public func makePresent(_ ranges: [Range<Int>]) throws(LogFormatError) {
        if ranges.allSatisfy(isPresent) { return }
        let requests = missing(ranges)
        guard !requests.isEmpty else { return }
        let fetched = try fetcher.fetch(requests)
        guard fetched.count == requests.count else {
            throw LogFormatError(.io, "fetched \(fetched.count) ranges of \(requests.count)", path: path)
        }
        try fill(Array(zip(requests, fetched)))
    }

    /// What to fetch so that `ranges` are present: the missing parts, those close together joined. Empty when
    /// everything is there. (For callers that fetch themselves, e.g. many objects at once; then `fill`.)
    /// `askOthers`: read the range file again first when something is missing (another process may have fetched
    /// it); false for a caller that only wants to know what this process has.
    public func missing(_ ranges: [Range<Int>], askOthers: Bool = true) -> [Range<Int>] {
        let wanted = ranges.map { $0.clamped(to: 0..<count) }.filter { !$0.isEmpty }
        var missing = Self.subtract(wanted, present.withLock { $0 })
        guard !missing.isEmpty else { return [] }
        guard askOthers else { return Self.coalesce(missing, gap: Self.coalesceGap) }
        // Another process may have fetched them since this file was opened.
        if let theirs = Self.readRanges(rangesPath, identity: identity, size: count, inode: inode) {
            present.withLock { $0 = Self.union($0, theirs) }
            missing = Self.subtract(wanted, present.withLock { $0 })
        }
        return Self.coalesce(missing, gap: Self.coalesceGap)
    }

    /// Writes fetched ranges of the object into the file and records them as present.
    public func fill(_ pieces: [(range: Range<Int>, bytes: [UInt8])]) throws(LogFormatError) {
        guard !pieces.isEmpty else { return }
        for (range, data) in pieces {
            guard range.lowerBound >= 0, range.upperBound <= count, data.count == range.count else {
                throw LogFormatError(
                    .truncated, "bytes \(range.lowerBound)..<\(range.upperBound): \(data.count) bytes came",
                    path: path, offset: range.lowerBound)
            }
            try FileIO.pwriteAll(fd, data, at: range.lowerBound, path: dataPath)
        }
        let mine = present.withLock { p in
            p = Self.union(p, pieces.map(\.range))
            return p
        }
        try saveRanges(mine)
    }

    /// Merges `ranges` into the `.ranges` file under an flock of the data file, atomically (temporary file and
    /// rename). Not fsynced: after a crash the reader's checksums catch a range recorded but not written.
    private func saveRanges(_ ranges: [Range<Int>]) throws(LogFormatError) {
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw FileIO.ioError("flock", path: dataPath) }
        }
        defer { _ = flock(fd, LOCK_UN) }
        let merged = Self.union(
            ranges, Self.readRanges(rangesPath, identity: identity, size: count, inode: inode) ?? [])
        var text = "audit-trail range cache v1\nidentity \(identity)\nsize \(count)\ninode \(inode)\n"
        for r in merged { text += "\(r.lowerBound) \(r.upperBound)\n" }
        let tmp = rangesPath + ".\(getpid()).tmp"
        let tfd = try FileIO.open(tmp, flags: O_WRONLY | O_CREAT | O_TRUNC)
        defer { FileIO.close(tfd) }
        try FileIO.pwriteAll(tfd, Array(text.utf8), at: 0, path: tmp)
        guard rename(tmp, rangesPath) == 0 else { throw FileIO.ioError("rename to \(rangesPath)", path: tmp) }
    }

    /// The ranges a `.ranges` file records, when it is for this object (identity, size) and this data file
    /// (inode); nil when it is missing, damaged or for something else.
    static func readRanges(_ path: String, identity: String, size: Int, inode: UInt64) -> [Range<Int>]? {
        guard let bytes = try? FileIO.readFile(path) else { return nil }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.count >= 4, lines[0] == "audit-trail range cache v1", lines[1] == "identity \(identity)",
            lines[2] == "size \(size)", lines[3] == "inode \(inode)"
        else { return nil }
        var out: [Range<Int>] = []
        for line in lines.dropFirst(4) {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let lo = Int(parts[0]), let hi = Int(parts[1]), 0 <= lo, lo < hi, hi <= size
            else { return nil }
            out.append(lo..<hi)
        }
        return union([], out)
    }

    // MARK: Range arithmetic

    /// `a ∪ b`, sorted, disjoint, touching ranges joined.
    static func union(_ a: [Range<Int>], _ b: [Range<Int>]) -> [Range<Int>] {
        let all = (a + b).filter { !$0.isEmpty }.sorted { $0.lowerBound < $1.lowerBound }
        var out: [Range<Int>] = []
        for r in all {
            if let last = out.last, r.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    /// The parts of `wanted` that `present` (sorted, disjoint) does not cover, sorted and joined.
    static func subtract(_ wanted: [Range<Int>], _ present: [Range<Int>]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for w in union([], wanted) {
            var lo = w.lowerBound
            for p in present where p.upperBound > lo && p.lowerBound < w.upperBound {
                if p.lowerBound > lo { out.append(lo..<p.lowerBound) }
                lo = max(lo, p.upperBound)
                if lo >= w.upperBound { break }
            }
            if lo < w.upperBound { out.append(lo..<w.upperBound) }
        }
        return out
    }

    /// Joins sorted ranges less than `gap` apart.
    static func coalesce(_ ranges: [Range<Int>], gap: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for r in ranges {
            if let last = out.last, r.lowerBound - last.upperBound < gap {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }
}
