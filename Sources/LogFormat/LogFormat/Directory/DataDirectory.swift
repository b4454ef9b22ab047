// The layout of one collector's data directory (docs/format/data-directory.md):
//
//   DIR/node.id                 32 hex digits: this collector's node id, created once
//   DIR/catalog.aqc             catalog of sealed segments (derived, rebuildable)
//   DIR/segments/NNNN….open     the active segment (at most one per writer)
//   DIR/segments/NNNN….seg      sealed hot-tier segments, NNNN = 16-digit sequence number
//   DIR/archive/NNNN….seg       sealed archive-tier segments (retention)
//   DIR/tombstones/NNNN….tomb   what is left of segments expired by policy (retention)
//   DIR/catalog.lock            flock(2) around every read-modify-write of the catalog
//   DIR/retention.lock          flock(2) held by the one retention job that may run at a time
import Glibc

public struct DataDirectory: Sendable, Hashable {
    public let root: String

    public init(_ root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    public var segmentsPath: String { root + "/segments" }
    public var archivePath: String { root + "/archive" }
    public var catalogPath: String { root + "/catalog.aqc" }
    public var nodeIDPath: String { root + "/node.id" }
    public var tombstonesPath: String { root + "/tombstones" }
    public var catalogLockPath: String { root + "/catalog.lock" }
    public var retentionLockPath: String { root + "/retention.lock" }
    public static let tombstoneSuffix = ".tomb"

    public func tombstonePath(sequence: UInt64) -> String {
        let name = DataDirectory.fileName(sequence: sequence, sealed: true)
        return tombstonesPath + "/" + String(name.dropLast(Self.sealedSuffix.count)) + Self.tombstoneSuffix
    }

    /// Names of the tombstone files.
    public func listTombstoneFiles() throws(LogFormatError) -> [String] {
        guard FileIO.exists(tombstonesPath) else { return [] }
        return try FileIO.listDirectory(tombstonesPath).filter {
            $0.hasSuffix(Self.tombstoneSuffix) && Self.sequence(ofFileName: $0) != nil
        }
    }

    /// Every readable tombstone with its path, and the errors of those that are not.
    public func loadTombstones() throws(LogFormatError) -> (
        tombstones: [(path: String, tombstone: Tombstone)], damaged: [LogFormatError]
    ) {
        var out: [(path: String, tombstone: Tombstone)] = []
        var damaged: [LogFormatError] = []
        for name in try listTombstoneFiles() {
            let path = tombstonesPath + "/" + name
            do {
                out.append((path: path, tombstone: try Tombstone.decode(try FileIO.readFile(path), path: path)))
            } catch {
                damaged.append(error)
            }
        }
        return (out, damaged)
    }

    /// Runs `body` holding an exclusive flock(2) on `path` (created if needed); released when it returns.
    public static func withLock<R>(_ path: String, _ body: () throws(LogFormatError) -> R) throws(LogFormatError) -> R {
        let fd = try FileIO.open(path, flags: O_RDWR | O_CREAT | O_CLOEXEC)
        defer { FileIO.close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw FileIO.ioError("flock", path: path) }
        }
        return try body()
    }

    /// Tries to take an exclusive flock(2) on `path` without waiting; the descriptor holds it until closed.
    /// Nil when another process holds it.
    public static func tryLock(_ path: String) throws(LogFormatError) -> Int32? {
        let fd = try FileIO.open(path, flags: O_RDWR | O_CREAT | O_CLOEXEC)
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return fd }
        let code = errno
        FileIO.close(fd)
        guard code == EWOULDBLOCK else { throw FileIO.ioError("flock", path: path, code: code) }
        return nil
    }

    /// Reads, changes and saves the catalog under the catalog lock, so a collector sealing and a retention job
    /// moving segments never overwrite each other's entries. Starts from the saved catalog, or from one rebuilt
    /// from the files when it is missing, damaged or stale.
    @discardableResult
    public func updateCatalog(_ change: (inout Catalog) throws(LogFormatError) -> Void) throws(LogFormatError)
        -> Catalog
    {
        try Self.withLock(catalogLockPath) { () throws(LogFormatError) -> Catalog in
            var catalog = try currentCatalog(repair: false)
            try change(&catalog)
            try saveCatalog(catalog)
            return catalog
        }
    }

    public static let sealedSuffix = ".seg"
    public static let openSuffix = ".open"

    public static func fileName(sequence: UInt64, sealed: Bool) -> String {
        let digits = String(sequence)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
            + (sealed ? sealedSuffix : openSuffix)
    }

    public func path(relative: String) -> String { root + "/" + relative }

    /// The sequence number in a segment file name, if it is one.
    public static func sequence(ofFileName name: String) -> UInt64? {
        // By UTF-8 bytes, not Characters: every query lists every segment's name.
        guard let dot = name.utf8.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        return UInt64(name[..<dot])
    }

    /// Creates the directory tree (mode 0700) if needed.
    public func create() throws(LogFormatError) {
        try FileIO.makeDirectories(segmentsPath)
        try FileIO.makeDirectories(archivePath)
    }

    /// Reads the node id, creating it when the directory is new.
    public func loadOrCreateNodeID() throws(LogFormatError) -> NodeID {
        if FileIO.exists(nodeIDPath) {
            return try readNodeID()
        }
        let id = NodeID.random()
        try FileIO.writeAtomically(Array((id.hex + "\n").utf8), to: nodeIDPath, directory: root)
        return id
    }

    public func readNodeID() throws(LogFormatError) -> NodeID {
        let text = String(decoding: try FileIO.readFile(nodeIDPath), as: UTF8.self)
            .trimmingCharacters(in: [" ", "\n", "\t", "\r"])
        guard let id = NodeID(hex: text) else {
            throw LogFormatError(
                .malformed, "node id must be 32 hex digits, found \(text.debugDescription)", path: nodeIDPath)
        }
        return id
    }

    /// Names of the sealed and open segment files of the hot tier.
    public func listSegmentFiles() throws(LogFormatError) -> (sealed: [String], open: [String]) {
        guard FileIO.exists(segmentsPath) else { return ([], []) }
        let names = try FileIO.listDirectory(segmentsPath)
        return (
            names.filter { $0.hasSuffix(Self.sealedSuffix) && Self.sequence(ofFileName: $0) != nil },
            names.filter { $0.hasSuffix(Self.openSuffix) && Self.sequence(ofFileName: $0) != nil }
        )
    }

    /// Names of the sealed segment files of the archive tier.
    public func listArchiveFiles() throws(LogFormatError) -> [String] {
        guard FileIO.exists(archivePath) else { return [] }
        return try FileIO.listDirectory(archivePath).filter {
            $0.hasSuffix(Self.sealedSuffix) && Self.sequence(ofFileName: $0) != nil
        }
    }

    public func loadCatalog() throws(LogFormatError) -> Catalog {
        try Catalog.decode(try FileIO.readFile(catalogPath), path: catalogPath)
    }

    public func saveCatalog(_ catalog: Catalog) throws(LogFormatError) {
        try FileIO.writeAtomically(catalog.encoded(), to: catalogPath, directory: root)
    }

    /// Rebuilds the catalog from the footers of every sealed segment file. Files whose footer cannot be read
    /// are reported in `skipped` rather than guessed at.
    public func rebuildCatalog() throws(LogFormatError) -> (catalog: Catalog, skipped: [LogFormatError]) {
        var entries: [CatalogEntry] = []
        var skipped: [LogFormatError] = []
        let tombstones = Dictionary(
            try loadTombstones().tombstones.map { ($0.tombstone.seal.sequence, $0.tombstone.seal) },
            uniquingKeysWith: { a, _ in a })
        for relative in try liveRelativePaths(excludingTombstoned: false) {
            let tier: StorageTier = relative.hasPrefix("archive/") ? .archive : .hot
            do {
                let file = try MappedFile(path: path(relative: relative))
                let footer = try file.withBytes { (b) throws(LogFormatError) in try SegmentFooter.parse(fileBytes: b) }
                // Expired by policy, its removal interrupted: the tombstone with this very seal stands for it.
                if tombstones[footer.seal.sequence] == footer.seal { continue }
                entries.append(
                    CatalogEntry(
                        relativePath: relative, tier: tier, seal: footer.seal, blockCount: footer.blockCount,
                        fileSize: UInt64(file.count)))
            } catch {
                skipped.append(error.at(path: path(relative: relative)))
            }
        }
        return (Catalog(entries: entries), skipped)
    }

    /// The sealed segment files that hold live data, relative to the root. A retention job interrupted between
    /// its steps can leave a segment in both tiers (the archive copy was verified before it got its final name,
    /// so it stands) or a segment beside its tombstone (expired: the tombstone stands).
    public func liveRelativePaths(excludingTombstoned: Bool) throws(LogFormatError) -> [String] {
        let archive = try listArchiveFiles()
        let archived = Set(archive)
        let tombstoned = excludingTombstoned ? Set(try listTombstoneFiles().compactMap(Self.sequence(ofFileName:))) : []
        let hot = try listSegmentFiles().sealed.filter { !archived.contains($0) }
        let live = { (name: String) in Self.sequence(ofFileName: name).map { !tombstoned.contains($0) } ?? false }
        return hot.filter(live).map { "segments/" + $0 } + archive.filter(live).map { "archive/" + $0 }
    }

    /// The catalog, rebuilt (and saved when `repair`) if it is missing, damaged or disagrees with the files.
    public func currentCatalog(repair: Bool) throws(LogFormatError) -> Catalog {
        let onDisk = Set(try liveRelativePaths(excludingTombstoned: true))
        if let catalog = try? loadCatalog(), Set(catalog.entries.map(\.relativePath)) == onDisk {
            return catalog
        }
        let rebuilt = try rebuildCatalog().catalog
        if repair { try saveCatalog(rebuilt) }
        return rebuilt
    }
}

extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
