// The catalog of sealed segments (docs/format/catalog.md): what a query planner needs
// to open only the segments it must. Derived data: rebuilt from segment footers whenever it is missing,
// damaged or disagrees with the directory.
//
// catalog := magic "AQCATLOG" | version u16 | reserved u16 | count u32 | entry* | crc32 u32
// entry   := uvarint length | entry bytes (see CatalogEntry.write)

public struct CatalogEntry: Sendable, Hashable {
    /// File name relative to the data directory (`segments/…` or `archive/…`).
    public var relativePath: String
    public var tier: StorageTier
    public var seal: SegmentSeal
    public var blockCount: UInt32
    public var fileSize: UInt64

    public init(relativePath: String, tier: StorageTier, seal: SegmentSeal, blockCount: UInt32, fileSize: UInt64) {
        self.relativePath = relativePath
        self.tier = tier
        self.seal = seal
        self.blockCount = blockCount
        self.fileSize = fileSize
    }

    public var nodeID: NodeID { seal.nodeID }
    public var sequence: UInt64 { seal.sequence }

    /// Whether any record of the segment may start within `range`.
    public func overlaps(_ range: ClosedRange<UInt64>) -> Bool {
        seal.recordCount > 0 && seal.minTime <= range.upperBound && seal.maxTime >= range.lowerBound
    }

    func write(into w: inout BinaryWriter) {
        var e = BinaryWriter(capacity: 256)
        e.string(relativePath)
        e.u8(tier.rawValue)
        e.raw(seal.encoded())
        e.u32(blockCount)
        e.u64(fileSize)
        w.uvarint(e.count)
        w.raw(e.bytes)
    }

    static func read(from r: inout BinaryReader) throws(LogFormatError) -> CatalogEntry {
        let body = try r.lengthPrefixedSlice()
        var e = BinaryReader(body)
        let path = try e.string()
        let tierByte = try e.u8()
        guard let tier = StorageTier(rawValue: tierByte) else {
            throw LogFormatError(.malformed, "unknown tier \(tierByte) for \(path)", offset: r.offset)
        }
        let seal = try SegmentSeal.parse(try e.rawSlice(FormatConstants.footerSignedSize))
        return CatalogEntry(relativePath: path, tier: tier, seal: seal, blockCount: try e.u32(), fileSize: try e.u64())
    }
}

public struct Catalog: Sendable, Hashable {
    /// Entries ordered by node id, then sequence.
    public private(set) var entries: [CatalogEntry]

    public init(entries: [CatalogEntry] = []) {
        self.entries = entries.sorted { ($0.nodeID, $0.sequence) < ($1.nodeID, $1.sequence) }
    }

    public mutating func upsert(_ entry: CatalogEntry) {
        entries.removeAll { $0.nodeID == entry.nodeID && $0.sequence == entry.sequence }
        entries.append(entry)
        entries.sort { ($0.nodeID, $0.sequence) < ($1.nodeID, $1.sequence) }
    }

    public mutating func remove(nodeID: NodeID, sequence: UInt64) {
        entries.removeAll { $0.nodeID == nodeID && $0.sequence == sequence }
    }

    /// Segments whose time range overlaps `range` (all segments when nil).
    public func segments(overlapping range: ClosedRange<UInt64>?) -> [CatalogEntry] {
        guard let range else { return entries }
        return entries.filter { $0.overlaps(range) }
    }

    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: 64 + entries.count * 200)
        w.raw(FormatConstants.catalogMagic)
        w.u16(FormatConstants.catalogVersion)
        w.u16(0)
        w.u32(UInt32(entries.count))
        for e in entries { e.write(into: &w) }
        w.u32(Checksum.crc32(w.bytes))
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8], path: String? = nil) throws(LogFormatError) -> Catalog {
        do {
            return try bytes.withBytes { (b) throws(LogFormatError) -> Catalog in
                guard b.count >= 20 else {
                    throw LogFormatError(
                        .truncated, "catalog of \(b.count) bytes is shorter than its header", offset: 0)
                }
                guard b.prefix(8).elementsEqual(FormatConstants.catalogMagic) else {
                    throw LogFormatError(.badMagic, "not a catalog: the magic AQCATLOG is missing", offset: 0)
                }
                let stored = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: b.count - 4, as: UInt32.self))
                let computed = Checksum.crc32(UnsafeRawBufferPointer(rebasing: b[0..<b.count - 4]))
                var r = BinaryReader(UnsafeRawBufferPointer(rebasing: b[0..<b.count - 4]), offset: 8)
                let version = try r.u16()
                guard version == FormatConstants.catalogVersion else {
                    throw LogFormatError(.unsupportedVersion, "catalog version \(version)", offset: 8)
                }
                guard stored == computed else {
                    throw LogFormatError(
                        .checksumMismatch,
                        "catalog checksum: stored \(BlockHeader.hex32(stored)), computed \(BlockHeader.hex32(computed))",
                        offset: b.count - 4)
                }
                _ = try r.u16()
                let n = Int(try r.u32())
                var entries: [CatalogEntry] = []
                for _ in 0..<n { entries.append(try CatalogEntry.read(from: &r)) }
                guard r.isAtEnd else {
                    throw LogFormatError(
                        .malformed, "\(r.remaining) bytes after the last catalog entry", offset: r.offset)
                }
                return Catalog(entries: entries)
            }
        } catch {
            throw error.at(path: path)
        }
    }
}
