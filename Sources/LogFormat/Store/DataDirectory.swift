// The layout of one collector's data directory (LogFormat.docc/SegmentFormat.md, "Data directory"):
//
//   DIR/node.id                 32 hex digits: this collector's node id, created once
//   DIR/catalog.aqc             catalog of sealed segments (derived, rebuildable)
//   DIR/segments/NNNN….open     the active segment (at most one per writer)
//   DIR/segments/NNNN….seg      sealed hot-tier segments, NNNN = 16-digit sequence number
//   DIR/archive/NNNN….seg       sealed archive-tier segments (retention)

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
        guard let dot = name.firstIndex(of: ".") else { return nil }
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
            throw LogFormatError(.malformed, "node id must be 32 hex digits, found \(text.debugDescription)", path: nodeIDPath)
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
        let hot = try listSegmentFiles().sealed.map { ("segments/" + $0, StorageTier.hot) }
        let archive = try listArchiveFiles().map { ("archive/" + $0, StorageTier.archive) }
        for (relative, tier) in hot + archive {
            do {
                let file = try MappedFile(path: path(relative: relative))
                let footer = try file.withBytes { (b) throws(LogFormatError) in try SegmentFooter.parse(fileBytes: b) }
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

    /// The catalog, rebuilt (and saved when `repair`) if it is missing, damaged or disagrees with the files.
    public func currentCatalog(repair: Bool) throws(LogFormatError) -> Catalog {
        let onDisk = Set(try listSegmentFiles().sealed.map { "segments/" + $0 } + (try listArchiveFiles()).map { "archive/" + $0 })
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
