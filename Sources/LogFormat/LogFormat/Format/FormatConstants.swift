// Every number that LogFormat writes to disk, in one place. The format spec these implement is
// docs/format/ (one document per file type): change both together. Raw values written to disk are never renumbered.

public enum FormatConstants {
    // MARK: Records
    /// Version of the canonical record encoding (byte 0 of every record).
    public static let recordVersion: UInt8 = 1
    /// Largest canonical record accepted by the writer and reader (16 MiB).
    public static let maxRecordBytes = 16 << 20

    // MARK: Segment file header
    /// "AQSEGMNT": first 8 bytes of every segment file.
    public static let segmentMagic: [UInt8] = Array("AQSEGMNT".utf8)
    /// The highest segment format version this code reads; a reader refuses higher versions.
    public static let segmentVersion: UInt16 = 2
    /// Version 1: blocks of row records. Every open segment (the write-ahead log) has this layout, and so do
    /// segments sealed before version 2 or sealed with `SealLayout.rows`.
    public static let segmentVersionRows: UInt16 = 1
    /// Version 2: a sealed segment laid out anew by user and trace, in column blocks (docs/format/segment.md).
    public static let segmentVersionColumns: UInt16 = 2
    public static let fileHeaderSize = 64

    // MARK: Blocks
    /// "AQBK" read as a little-endian u32, at the start of every block header.
    public static let blockMagic: UInt32 = 0x4B42_5141
    public static let blockHeaderSize = 48
    /// Largest stored or raw block payload a reader accepts (64 MiB).
    public static let maxBlockPayload = 64 << 20

    /// Block types. Never renumber.
    public enum BlockType: UInt8, Sendable {
        case data = 1
        case index = 2
        /// A run of records as columns (version 2 segments; docs/format/columns.md).
        case column = 3
        /// The strings column blocks of the segment share (version 2 segments; docs/format/dictionary.md).
        case dictionary = 4
    }

    // MARK: Footer
    /// "AQSEALED": last 8 bytes of a sealed segment.
    public static let footerMagic: [UInt8] = Array("AQSEALED".utf8)
    public static let footerVersion: UInt16 = 1
    /// The seal: the tier-independent part of the footer that the signature covers (identity, counts,
    /// time range, Merkle root, chain link). Recompression rewrites blocks but never these bytes.
    public static let footerSignedSize = 144
    public static let signatureSize = 64
    /// Physical layout fields after the signature: index offset u64, index length u64, block count u32,
    /// reserved u32.
    public static let footerPhysicalSize = 24
    /// Whole footer: seal, signature, physical fields, crc32, reserved u32, magic.
    public static let footerSize = footerSignedSize + signatureSize + footerPhysicalSize + 4 + 4 + 8
    /// Footer flag: a signature is present.
    public static let footerFlagSigned: UInt16 = 1

    // MARK: Index
    /// Index format version (first u16 of the index payload) that this writer produces for version 2 segments:
    /// sections with their own checksums, postings as runs, trace ids mapped to blocks.
    public static let indexVersion: UInt16 = 2
    /// Version 2 with the count rollup section (field 6): what version 2 segments are sealed and archived with
    /// since issue 17 (docs/format/index.md, "Count rollup"). Readers of version 2 say "unsupported" of it.
    public static let indexVersionRollup: UInt16 = 3
    /// Seconds per bucket of a count rollup.
    public static let rollupBucketSeconds = 3600
    /// The version 1 index (whole-payload checksum, every posting a delta), written with row segments.
    public static let indexVersionPostings: UInt16 = 1
    /// Size of one section-directory entry of a version 2 index.
    public static let sectionEntrySize = 20
    /// Terms per checksummed group of a version 2 terms section.
    public static let termsPerGroup = 16
    /// Terms per group of a packed terms section (layout 5: each group compressed with zlib).
    public static let termsPerPackedGroup = 64
    /// Terms per group of a wide packed terms section (layout 8: archive copies' users).
    public static let termsPerWidePackedGroup = 256
    /// The most bytes a packed group of terms may inflate to: a reader refuses a larger claim before inflating.
    public static let maxPackedGroupBytes = 1 << 20
    /// Entries per checksummed chunk of a version 2 trace section.
    public static let traceChunkEntries = 512
    /// Size of one term-table entry: key offset, key length, postings offset, postings count (4 × u32).
    public static let termEntrySize = 16
    /// Size of one block-table entry in the index.
    public static let blockEntrySize = 40

    // MARK: Catalog
    /// "AQCATLOG": first 8 bytes of the catalog file.
    public static let catalogMagic: [UInt8] = Array("AQCATLOG".utf8)
    public static let catalogVersion: UInt16 = 1

    // MARK: Tombstone (docs/format/tombstone.md)
    /// "AQTOMBST": first 8 bytes of a tombstone file.
    public static let tombstoneMagic: [UInt8] = Array("AQTOMBST".utf8)
    public static let tombstoneVersion: UInt16 = 1
    /// The policy text a tombstone keeps is cut to this many bytes, at a character boundary.
    public static let tombstoneMaxPolicyBytes = 64 << 10

    // MARK: Merkle tree (RFC 6962 / 9162)
    public static let merkleLeafPrefix: UInt8 = 0x00
    public static let merkleNodePrefix: UInt8 = 0x01
}

/// Compression codec of a block. Written to disk: never renumber.
public enum CompressionCodec: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case none = 0
    /// LZ4 block format: the hot tier.
    case lz4 = 1
    /// zlib (RFC 1950) stream: the archive tier.
    case zlib = 2

    public var description: String {
        switch self {
        case .none: "none"
        case .lz4: "lz4"
        case .zlib: "zlib"
        }
    }
}

/// Which tier a sealed segment lives in. Written to the catalog: never renumber.
public enum StorageTier: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case hot = 1
    case archive = 2

    public var description: String { self == .hot ? "hot" : "archive" }
}

/// The indexed fields. Written to the index: never renumber.
public enum IndexField: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// User subject and, where known, email (both map to the same records).
    case user = 1
    case group = 2
    case service = 3
    case workload = 4
    /// 16-byte trace ids.
    case traceID = 5
    /// The count rollup (version 3 indexes): not a field of records, a section of counts.
    case counts = 6

    public var description: String {
        switch self {
        case .user: "user"
        case .group: "group"
        case .service: "service"
        case .workload: "workload"
        case .traceID: "trace"
        case .counts: "counts"
        }
    }
}
