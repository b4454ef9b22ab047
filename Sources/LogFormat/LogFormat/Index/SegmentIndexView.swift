// Reading a serialised index in place (docs/format/index.md). Version 1 is checked whole when the segment is
// opened (its block CRC); version 2 checks its head when opened and each section the first time a query uses
// it, so opening a segment costs its block table, not its whole index. Over a byte source that fetches on demand (a
// cached remote object), version 2 asks for each range before it touches it: a look-up fetches the head, the
// section's table and the group or chunk it reads, not the index.
import Synchronization

/// How a version 2 section is laid out. Written to disk: never renumber.
enum IndexSectionLayout: UInt8, Sendable {
    /// Sorted string keys with their postings as runs.
    case terms = 1
    /// Trace-id prefixes (first four bytes, big-endian) with the block holding the trace, `u16` block numbers.
    case traceBlocks16 = 2
    /// As `traceBlocks16` with `u32` block numbers (segments of more than 65,536 blocks).
    case traceBlocks32 = 3
    /// As `terms`, each posting list naming the blocks that hold the term's records rather than the records
    /// (services, workloads, groups: scattered over the records of a segment in sealed order).
    case blockTerms = 4
    /// As `terms` in groups of 64, each group's first key stored whole and the rest compressed with zlib (users).
    case packedTerms = 5
    /// The count rollup (field 6, version 3 indexes; `CountRollup`).
    case rollup = 6
    /// The entries of `traceBlocks16` in chunks of Rice-coded prefix gaps and narrow block numbers
    /// (`PackedTraceSection`), each chunk behind a fence holding its offset.
    case tracePacked = 7
    /// As `packedTerms` in groups of 256 terms: the archive tier's users, where zlib gains from longer groups and
    /// look-ups are rare.
    case widePackedTerms = 8
    /// As `widePackedTerms`, each posting list's first token a signed gap from the end of the previous term's list
    /// in the group: the archive tier's users since 2026-12-06 (subjects in key order name ascending records).
    case relativeWidePackedTerms = 9
    /// As `tracePacked`, with prefixes of the trace id's first three bytes: the archive tier's trace ids since
    /// 2026-12-06 (a byte less per entry, a look-up's false hits about entries / 2^24).
    case tracePacked24 = 10

    /// Whether the layout holds string terms (every layout but the trace ones and the rollup).
    var isTerms: Bool { self == .terms || self == .blockTerms || isPacked }

    /// Whether the layout's groups are compressed with zlib (layouts 5, 8 and 9).
    var isPacked: Bool { self == .packedTerms || self == .widePackedTerms || self == .relativeWidePackedTerms }

    /// Whether each posting list's first token counts from the previous term's end (layout 9).
    var hasRelativeLists: Bool { self == .relativeWidePackedTerms }

    /// Whether the layout maps trace-id prefixes to blocks.
    var isTrace: Bool { self == .traceBlocks16 || self == .traceBlocks32 || isPackedTrace }

    /// Whether the trace entries are bit-packed in chunks (layouts 7 and 10).
    var isPackedTrace: Bool { self == .tracePacked || self == .tracePacked24 }

    /// Bits of a trace layout's prefixes: the first three bytes of the id in layout 10, else four.
    var tracePrefixBits: Int { self == .tracePacked24 ? 24 : 32 }

    /// Terms per group of a terms layout.
    var termsPerGroup: Int {
        switch self {
        case .packedTerms: FormatConstants.termsPerPackedGroup
        case .widePackedTerms, .relativeWidePackedTerms: FormatConstants.termsPerWidePackedGroup
        default: FormatConstants.termsPerGroup
        }
    }
}

/// Read-only view of a serialised index, over bytes that must stay valid (a mapped file).
public struct SegmentIndexView: @unchecked Sendable {
    // @unchecked: `bytes` points into a MappedFile kept alive by `owner`; the memory is never written. `checked`
    // is atomic.
    private let bytes: UnsafeRawBufferPointer
    private let owner: AnyObject?
    /// Where ranges of a version 2 payload are made present before they are read (nil: all of it is present),
    /// and the payload's offset in it.
    private let source: (any SegmentByteSource)?
    private let base: Int
    public let version: UInt16
    public let blocks: [BlockLocation]
    private let fields: [IndexField: FieldSection]
    private let checked: SectionChecks
    /// Records the block table accounts for: no posting list names more.
    private let recordTotal: Int

    struct FieldSection {
        var termCount: Int
        var termTable: Int
        var keys: Int
        var postings: Int
        var postingsLength: Int
        // Version 2 only: the whole section, its layout, checksum and position in the directory.
        var layout: IndexSectionLayout = .terms
        var start = 0
        var length = 0
        var crc: UInt32 = 0
        var slot = 0
    }

    /// Which version 2 sections have passed their checksum (one bit per directory slot).
    final class SectionChecks: Sendable {
        let bits = Atomic<UInt64>(0)
        /// Trace chunks that passed their checksum: a look-up per trace id hashed its chunk again each time (a heavy
        /// user's activity looks up thousands of ids in a few dozen chunks).
        let traceChunks = Mutex<Set<Int>>([])
        /// Chunks of a packed trace section (layout 7) that passed their checksum, decoded: a look-up binary-searches
        /// them instead of decoding a chunk again.
        let packedChunks = Mutex<[Int: [UInt64]]>([:])
        /// Chunks of a packed trace section read once, up to a look-up's prefix: a second look-up decodes the chunk
        /// whole and keeps it (one look-up per segment, as a trace by id makes, decodes half a chunk on average).
        let packedChunksRead = Mutex<Set<Int>>([])
    }

    /// Parses and bounds-checks the index payload. Errors carry offsets relative to the payload. Version 1 must
    /// have passed its block CRC; version 2 checks its own head here and its sections on first use.
    public init(payload: UnsafeRawBufferPointer, owner: AnyObject?) throws(LogFormatError) {
        try self.init(payload: payload, owner: owner, source: nil, base: 0)
    }

    /// As `init(payload:owner:)` over `payload` at offset `base` of `source`, of which only the first 8 bytes need
    /// be present for version 2: the head is made present here, each section's parts when a look-up reads them.
    /// Version 1 must be present whole.
    /// `head`, when given, is a copy of the payload's first bytes read on its own (`SegmentOpeningBytes`): the head
    /// is parsed from it when it holds all of it, and only sections are read from `payload`.
    public init(
        payload: UnsafeRawBufferPointer, source: any SegmentByteSource, base: Int, head: UnsafeRawBufferPointer? = nil
    ) throws(LogFormatError) {
        try self.init(payload: payload, owner: source, source: source, base: base, head: head)
    }

    private init(
        payload: UnsafeRawBufferPointer, owner: AnyObject?, source: (any SegmentByteSource)?, base: Int,
        head: UnsafeRawBufferPointer? = nil
    ) throws(LogFormatError) {
        bytes = payload
        self.owner = owner
        // A mapped file has every byte: no need to ask it (and no call per range read).
        self.source = source is MappedFile ? nil : source
        self.base = base
        checked = SectionChecks()
        let counts = head.flatMap { $0.count >= min(8, payload.count) ? $0 : nil } ?? payload
        var r = BinaryReader(UnsafeRawBufferPointer(rebasing: counts[..<min(8, payload.count)]))
        let version = try r.u16()
        guard version >= FormatConstants.indexVersionPostings && version <= FormatConstants.indexVersionRollup else {
            throw LogFormatError(
                version > FormatConstants.indexVersionRollup ? .unsupportedVersion : .malformed,
                "index version \(version); this reader knows versions 1, 2 and 3", offset: 0)
        }
        self.version = version
        let fieldCount = Int(try r.u16())
        let blockCount = Int(try r.u32())
        guard blockCount <= (payload.count - 8) / FormatConstants.blockEntrySize else {
            throw LogFormatError(.malformed, "index claims \(blockCount) blocks, more than its size allows", offset: 4)
        }
        // Where the head is read from: the copy when it holds all of it.
        var headBytes = payload
        if version >= FormatConstants.indexVersion {
            // The head's checksum before anything in it is believed.
            let headEnd =
                8 + blockCount * FormatConstants.blockEntrySize + fieldCount * FormatConstants.sectionEntrySize
            guard headEnd <= payload.count - 4 else {
                throw LogFormatError(.malformed, "index head runs past the index", offset: 2)
            }
            if let head, head.count >= headEnd + 4 {
                headBytes = head
            } else if let source {
                try source.makePresent(base..<base + headEnd + 4)
            }
            let stored = UInt32(littleEndian: headBytes.loadUnaligned(fromByteOffset: headEnd, as: UInt32.self))
            guard Checksum.crc32(UnsafeRawBufferPointer(rebasing: headBytes[..<headEnd])) == stored else {
                throw LogFormatError(.checksumMismatch, "index head checksum does not match", offset: headEnd)
            }
        }
        r = BinaryReader(headBytes, offset: 8)
        var blocks = [BlockLocation]()
        blocks.reserveCapacity(blockCount)
        for _ in 0..<blockCount { blocks.append(try BlockLocation.read(&r)) }
        self.blocks = blocks
        recordTotal = blocks.reduce(0) { $0 + Int($1.recordCount) }
        fields =
            version == FormatConstants.indexVersionPostings
            ? try Self.fieldDirectory(&r, fieldCount, payload)
            : try Self.sectionDirectory(&r, fieldCount, payload, rollup: version >= FormatConstants.indexVersionRollup)
    }

    /// Version 1: the field directory, each field's term table, keys and postings inside the payload in order.
    private static func fieldDirectory(_ r: inout BinaryReader, _ fieldCount: Int, _ payload: UnsafeRawBufferPointer)
        throws(LogFormatError) -> [IndexField: FieldSection]
    {
        var fields: [IndexField: FieldSection] = [:]
        for _ in 0..<fieldCount {
            let at = r.offset
            let field = try fieldCode(&r, at)
            _ = try r.u8()
            _ = try r.u16()
            let section = FieldSection(
                termCount: Int(try r.u32()), termTable: Int(try r.u32()), keys: Int(try r.u32()),
                postings: Int(try r.u32()), postingsLength: Int(try r.u32()))
            guard section.termTable <= payload.count,
                section.termCount <= (payload.count - section.termTable) / FormatConstants.termEntrySize,
                section.termTable + section.termCount * FormatConstants.termEntrySize <= section.keys,
                section.keys <= section.postings, section.postings + section.postingsLength <= payload.count
            else {
                throw LogFormatError(.malformed, "index field \(field) has sections outside the index", offset: at)
            }
            fields[field] = section
        }
        return fields
    }

    /// Version 2: the section directory and the head checksum; each section within the payload after the head.
    private static func sectionDirectory(
        _ r: inout BinaryReader, _ sectionCount: Int, _ payload: UnsafeRawBufferPointer, rollup: Bool
    ) throws(LogFormatError) -> [IndexField: FieldSection] {
        guard sectionCount <= 64, sectionCount <= r.remaining / FormatConstants.sectionEntrySize else {
            throw LogFormatError(.malformed, "index claims \(sectionCount) sections, more than it can hold", offset: 2)
        }
        var fields: [IndexField: FieldSection] = [:]
        var entries: [(at: Int, field: IndexField, section: FieldSection)] = []
        for slot in 0..<sectionCount {
            let at = r.offset
            let field = try fieldCode(&r, at)
            let rawLayout = try r.u8()
            guard let layout = IndexSectionLayout(rawValue: rawLayout) else {
                throw LogFormatError(
                    .unsupportedVersion, "index section \(field) has layout \(rawLayout), unknown to this reader",
                    offset: at + 1)
            }
            let fits =
                switch field {
                case .traceID: layout.isTrace
                case .counts: layout == .rollup && rollup
                default: layout.isTerms && (layout != .blockTerms || field != .user)
                }
            guard fits else {
                throw LogFormatError(.malformed, "index section \(field) has layout \(rawLayout)", offset: at + 1)
            }
            _ = try r.u16()
            var s = FieldSection(termCount: Int(try r.u32()), termTable: 0, keys: 0, postings: 0, postingsLength: 0)
            s.layout = layout
            s.start = Int(try r.u32())
            s.length = Int(try r.u32())
            s.crc = try r.u32()
            s.slot = slot
            guard fields[field] == nil else {
                throw LogFormatError(.malformed, "index field \(field) has two sections", offset: at)
            }
            fields[field] = s
            entries.append((at, field, s))
        }
        _ = try r.u32()  // the head checksum, checked before the head was read
        for (at, field, s) in entries {
            guard s.start >= r.offset, s.start <= payload.count, s.length <= payload.count - s.start else {
                throw LogFormatError(.malformed, "index section \(field) lies outside the index", offset: at)
            }
            if s.layout.isPackedTrace,
                s.length < Self.fenceBytes(s) || s.termCount > s.length * 8
            {
                throw LogFormatError(
                    .malformed, "index section \(field) holds \(s.length) bytes for \(s.termCount) entries", offset: at)
            }
            if s.layout.isTrace, !s.layout.isPackedTrace,
                s.termCount > s.length || s.length != Self.fenceBytes(s) + s.termCount * Self.width(s)
            {
                throw LogFormatError(
                    .malformed, "index section \(field) holds \(s.length) bytes for \(s.termCount) entries", offset: at)
            }
        }
        return fields
    }

    private static func fieldCode(_ r: inout BinaryReader, _ at: Int) throws(LogFormatError) -> IndexField {
        let fieldByte = try r.u8()
        guard let field = IndexField(rawValue: fieldByte) else {
            throw LogFormatError(.malformed, "unknown index field \(fieldByte)", offset: at)
        }
        return field
    }

    public var fieldsPresent: [IndexField] { IndexField.allCases.filter { fields[$0] != nil } }

    public func termCount(_ field: IndexField) -> Int { fields[field]?.termCount ?? 0 }

    /// Whether trace ids map to blocks (version 2) rather than to record ordinals (version 1).
    public var tracesMapToBlocks: Bool { version >= FormatConstants.indexVersion }

    /// Entry width of a trace section.
    private static func width(_ s: FieldSection) -> Int { s.layout == .traceBlocks16 ? 6 : 8 }

    /// Bytes of a trace section's fences: (first prefix, CRC) per chunk of entries.
    private static func fenceBytes(_ s: FieldSection) -> Int {
        (s.termCount + FormatConstants.traceChunkEntries - 1) / FormatConstants.traceChunkEntries
            * (s.layout.isPackedTrace ? PackedTraceSection.fenceSize : 8)
    }

    /// Whether the trace section is packed (layout 7 or 10), as every index written since layout 7 is; true without
    /// one.
    public var packedTraces: Bool { fields[.traceID].map { $0.layout.isPackedTrace } ?? true }

    /// Whether the trace section's prefixes are the ids' first three bytes (layout 10, archive copies since it).
    public var shortTracePrefixes: Bool { fields[.traceID]?.layout == .tracePacked24 }

    /// Bits of the trace section's prefixes: 24 (layout 10) or 32 (every other trace layout, and without one). Two
    /// segments' prefixes compare at the narrower of their widths.
    public var tracePrefixBits: Int { fields[.traceID]?.layout.tracePrefixBits ?? 32 }

    /// The section of `field` with its table placed and checked (version 2): the directory's checksum covers a
    /// terms section's group table, a trace section's fences; each group of terms and each chunk of trace entries
    /// carries its own.
    private func section(_ field: IndexField) throws(LogFormatError) -> FieldSection? {
        guard var s = fields[field] else { return nil }
        guard version >= FormatConstants.indexVersion else { return s }
        // A small section is fetched whole with its table: one request instead of the table's and then a group's or
        // a chunk's (or the several a binary search over groups makes).
        if s.length <= Self.wholeSectionBytes { try present(s.start..<s.start + s.length) }
        let tableEnd: Int
        if s.layout == .rollup {
            // No table: the section is read whole, and its checksum covers all of it.
            tableEnd = s.start + s.length
            try present(s.start..<tableEnd)
        } else if s.layout.isTerms {
            let groups = Self.groupCount(s)
            guard s.length >= 4 + groups * 8 else {
                throw LogFormatError(
                    .malformed, "index section \(field) does not hold the group table of its \(s.termCount) terms",
                    offset: s.start)
            }
            try present(s.start..<s.start + 4 + groups * 8)
            guard u32(s.start) == groups else {
                throw LogFormatError(
                    .malformed, "index section \(field) does not hold the group table of its \(s.termCount) terms",
                    offset: s.start)
            }
            s.termTable = s.start + 4
            tableEnd = s.termTable + groups * 8
        } else {
            tableEnd = s.start + Self.fenceBytes(s)
            try present(s.start..<tableEnd)
        }
        let bit: UInt64 = 1 << UInt64(s.slot)
        if checked.bits.load(ordering: .acquiring) & bit == 0 {
            guard Checksum.crc32(UnsafeRawBufferPointer(rebasing: bytes[s.start..<tableEnd])) == s.crc else {
                throw LogFormatError(
                    .checksumMismatch, "index section \(field) checksum does not match", offset: s.start)
            }
            checked.bits.bitwiseOr(bit, ordering: .releasing)
        }
        return s
    }

    /// A section up to this long is made present whole when first used (as the cache joins ranges closer than
    /// this); a longer one by its table, groups and chunks.
    public static let wholeSectionBytes = 16 << 10

    /// Makes `range` of the payload present in the source (nothing to do over a mapped file).
    private func present(_ range: Range<Int>) throws(LogFormatError) {
        guard let source, !range.isEmpty else { return }
        try source.makePresent(base + range.lowerBound..<base + range.upperBound)
    }

    /// Makes a whole section present in one request (a reader of every term or chunk).
    private func presentWhole(_ s: FieldSection) throws(LogFormatError) {
        if version >= FormatConstants.indexVersion { try present(s.start..<s.start + s.length) }
    }

    private func u32(_ at: Int) -> Int {
        Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
    }

    /// Term `i` of a version 1 field: its key range (absolute), its postings' start and end (relative to the
    /// postings) and count.
    private func entry(_ s: FieldSection, _ i: Int) throws(LogFormatError) -> (
        key: Range<Int>, postings: Range<Int>, count: Int
    ) {
        guard version == FormatConstants.indexVersionPostings else {
            throw LogFormatError(.malformed, "version 2 terms are read by group")
        }
        let base = s.termTable + i * FormatConstants.termEntrySize
        let keyStart = s.keys + u32(base)
        let keyEnd = keyStart + u32(base + 4)
        guard keyStart <= keyEnd, keyEnd <= s.postings else {
            throw LogFormatError(.malformed, "term \(i) lies outside the key section", offset: base)
        }
        let p = u32(base + 8)
        guard p <= s.postingsLength else {
            throw LogFormatError(.malformed, "a posting list lies outside its field's postings", offset: base)
        }
        return (keyStart..<keyEnd, p..<s.postingsLength, u32(base + 12))
    }

    private func compare(_ key: Range<Int>, _ wanted: UnsafeRawBufferPointer) -> Int {
        let stored = UnsafeRawBufferPointer(rebasing: bytes[key])
        let n = min(stored.count, wanted.count)
        if n > 0 {
            let c = memcmpBytes(stored.baseAddress!, wanted.baseAddress!, n)
            if c != 0 { return c }
        }
        return stored.count == wanted.count ? 0 : (stored.count < wanted.count ? -1 : 1)
    }

    /// The ascending record ordinals indexed under `term`; empty when absent. Trace ids of a version 2 index
    /// map to blocks instead (see `traceBlocks`), and so may a version 2 string field (see `termBlocks`).
    public func postings(_ field: IndexField, _ term: IndexTerm) throws(LogFormatError) -> [UInt32] {
        try postings(field, key: term.keyBytes)
    }

    /// Whether the posting lists of `field` name blocks rather than records: version 2 trace ids, and the
    /// services, workloads and groups of a layout 4 section. The records are then found in the blocks' columns.
    public func postingsMapToBlocks(_ field: IndexField) -> Bool {
        guard version >= FormatConstants.indexVersion else { return false }
        return field == .traceID || fields[field]?.layout == .blockTerms
    }

    /// Whether the string sections use the compact layouts (4 and 5): a verifier rebuilds the index the same way.
    public var compactTerms: Bool { fields.values.contains { $0.layout == .blockTerms || $0.layout.isPacked } }

    /// Whether the user section is packed in groups of 256 terms (layout 8, archive copies since it).
    public var widePackedUsers: Bool {
        fields[.user]?.layout == .widePackedTerms || fields[.user]?.layout == .relativeWidePackedTerms
    }

    /// Whether the user section's posting lists count from the previous term's end (layout 9, archive copies since
    /// it).
    public var relativeUserLists: Bool { fields[.user]?.layout == .relativeWidePackedTerms }

    /// The postings of the term whose stored key bytes are `key` (saves re-encoding a term looked up often).
    public func postings(_ field: IndexField, key: [UInt8]) throws(LogFormatError) -> [UInt32] {
        guard !postingsMapToBlocks(field) else {
            throw LogFormatError(.malformed, "a version 2 index maps \(field) terms to blocks, not to records")
        }
        guard let s = try section(field), s.termCount > 0 else { return [] }
        if version >= FormatConstants.indexVersion { return try groupedPostings(s, key) }
        return try key.withBytes { (k) throws(LogFormatError) -> [UInt32] in
            var lo = 0
            var hi = s.termCount - 1
            while lo <= hi {
                let mid = (lo + hi) / 2
                let e = try entry(s, mid)
                let c = compare(e.key, k)
                if c == 0 { return try decodePostings(s, e) }
                if c < 0 { lo = mid + 1 } else { hi = mid - 1 }
            }
            return []
        }
    }

    /// The ascending numbers of the blocks holding records indexed under `key` in a string field whose postings
    /// name blocks (layout 4); empty when absent. The caller reads those blocks' columns to find the records.
    public func termBlocks(_ field: IndexField, key: [UInt8]) throws(LogFormatError) -> [Int] {
        guard field != .traceID, postingsMapToBlocks(field), let s = try section(field), s.termCount > 0 else {
            return []
        }
        return try groupedPostings(s, key).map { Int($0) }
    }

    private static func groupCount(_ s: FieldSection) -> Int {
        (s.termCount + s.layout.termsPerGroup - 1) / s.layout.termsPerGroup
    }

    /// The most a posting list of `s` may name: records, or blocks for layout 4.
    private func unitLimit(_ s: FieldSection) -> Int { s.layout == .blockTerms ? blocks.count : recordTotal }

    /// Bytes of group `g` of a version 2 terms section, after checking them against the group table.
    private func group(_ s: FieldSection, _ g: Int) throws(LogFormatError) -> Range<Int> {
        let groups = Self.groupCount(s)
        let start = s.start + u32(s.termTable + g * 8)
        let end = g + 1 < groups ? s.start + u32(s.termTable + (g + 1) * 8) : s.start + s.length
        guard s.termTable + groups * 8 <= start, start <= end, end <= s.start + s.length else {
            throw LogFormatError(
                .malformed, "index term group \(g) lies outside its section", offset: s.termTable + g * 8)
        }
        try present(start..<end)
        guard
            Checksum.crc32(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) == UInt32(u32(s.termTable + g * 8 + 4))
        else {
            throw LogFormatError(.checksumMismatch, "index term group \(g) checksum does not match", offset: start)
        }
        return start..<end
    }

    /// The first key of group `g` (stored whole), without checking the group: for the binary search over groups.
    private func firstKey(_ s: FieldSection, _ g: Int) throws(LogFormatError) -> UnsafeRawBufferPointer {
        let groups = Self.groupCount(s)
        let start = s.start + u32(s.termTable + g * 8)
        guard start < s.start + s.length else {
            throw LogFormatError(
                .malformed, "index term group \(g) lies outside its section", offset: s.termTable + g * 8)
        }
        // The group's bytes (its first key is at their start); the group's end is checked when it is read.
        let next = g + 1 < groups ? s.start + u32(s.termTable + (g + 1) * 8) : s.start + s.length
        try present(start..<min(max(next, start + 1), s.start + s.length))
        var r = BinaryReader(UnsafeRawBufferPointer(rebasing: bytes[start..<s.start + s.length]))
        guard try r.uvarint() == 0 else {
            throw LogFormatError(.malformed, "index term group \(g) starts with a shared prefix", offset: start)
        }
        let n = try r.uvarint(max: r.remaining, "a key length")
        return try r.rawSlice(n)
    }

    /// Calls `body` with each term of group `g`: its key, postings count, its postings' bytes (a term stored
    /// as "same as the previous" gets the previous term's bytes), valid during the call, and the base its first
    /// token counts from (layout 9; nil for the others); `body` returns false to stop. A packed group (layouts 5, 8
    /// and 9) is inflated first.
    private func forEachTerm(
        _ s: FieldSection, group g: Int,
        _ body: ([UInt8], Int, UnsafeRawBufferPointer, UInt64?) throws(LogFormatError) -> Bool
    ) throws(LogFormatError) {
        let range = try group(s, g)
        let terms = min(s.layout.termsPerGroup, s.termCount - g * s.layout.termsPerGroup)
        let limit = unitLimit(s)
        let stored = UnsafeRawBufferPointer(rebasing: bytes[range])
        do throws(LogFormatError) {
            guard s.layout.isPacked else {
                var r = BinaryReader(stored)
                try Self.walkTerms(&r, terms: terms, firstKey: nil, limit: limit, relative: false, body)
                return
            }
            // Packed: the first key whole, then the inflated length and the zlib stream of the rest.
            var r = BinaryReader(stored)
            guard try r.uvarint() == 0 else { throw LogFormatError(.malformed, "a group starts with a shared prefix") }
            let first = Array(try r.rawSlice(try r.uvarint(max: r.remaining, "a key length")))
            let rawLength = try r.uvarint(max: FormatConstants.maxPackedGroupBytes, "a packed group length")
            guard rawLength > 0 else {
                // Stored as is: compressing would not have made it smaller.
                try Self.walkTerms(
                    &r, terms: terms, firstKey: first, limit: limit, relative: s.layout.hasRelativeLists, body)
                return
            }
            var inflated: [UInt8] = []
            try BlockCompression.decompress(
                try r.rawSlice(r.remaining), codec: .zlib, rawLength: rawLength, into: &inflated)
            try inflated.withBytes { (raw) throws(LogFormatError) in
                var ri = BinaryReader(raw)
                try Self.walkTerms(
                    &ri, terms: terms, firstKey: first, limit: limit, relative: s.layout.hasRelativeLists, body)
            }
        } catch {
            throw LogFormatError(error.code, "index term group \(g): \(error.message)", offset: range.lowerBound)
        }
    }

    /// The terms of one group from `r`, which must end with them. `firstKey` is the first term's key when stored
    /// apart (a packed group, where it may be the empty key): the first term then holds only its postings.
    /// `relative` (layout 9): each list's first token counts from the previous list's end, so each list is walked to
    /// find where the next one counts from.
    private static func walkTerms(
        _ r: inout BinaryReader, terms: Int, firstKey: [UInt8]?, limit: Int, relative: Bool,
        _ body: ([UInt8], Int, UnsafeRawBufferPointer, UInt64?) throws(LogFormatError) -> Bool
    ) throws(LogFormatError) {
        let packed = firstKey != nil
        var key = firstKey ?? []
        var previous: UnsafeRawBufferPointer? = nil
        // Layout 9: the end of the previous term's list, and the base that list was read from (a list that refers
        // back is that list, read from that base).
        var end: UInt64 = 0
        var previousBase: UInt64 = 0
        for t in 0..<terms {
            if !(packed && t == 0) {
                let shared = try r.uvarint(max: key.count, "a shared key prefix")
                let suffix = try r.rawSlice(try r.uvarint(max: r.remaining, "a key suffix"))
                if t == 0 && shared != 0 { throw LogFormatError(.malformed, "a group starts with a shared prefix") }
                key.removeLast(key.count - shared)
                key.append(contentsOf: suffix)
            }
            let count = try r.uvarint(max: limit, "a posting count")
            let length = try r.uvarint(max: r.remaining, "a posting list length")
            let list: UnsafeRawBufferPointer
            var base = end
            if length == 0 && count > 0 {
                guard let p = previous else {
                    throw LogFormatError(.malformed, "a group's first term repeats a posting list")
                }
                list = p
                base = previousBase
            } else {
                list = try r.rawSlice(length)
                if relative {
                    var lr = BinaryReader(list)
                    var none: [UInt32]? = nil
                    do throws(LogFormatError) {
                        end = try PostingRuns.decode(&lr, count: count, from: base, into: &none)
                    } catch  where error.code == .truncated {
                        throw LogFormatError(.malformed, "a posting list ends before its \(count) records")
                    }
                }
            }
            previous = list
            previousBase = base
            if try !body(key, count, list, relative ? base : nil) { return }
        }
        guard r.remaining == 0 else { throw LogFormatError(.malformed, "bytes after a group's last term") }
    }

    /// Look-up in a version 2 terms section: binary search over the groups' first keys, then a scan of one group.
    private func groupedPostings(_ s: FieldSection, _ key: [UInt8]) throws(LogFormatError) -> [UInt32] {
        let groups = Self.groupCount(s)
        // The last group whose first key is at most `key`.
        var lo = 0
        var hi = groups
        while lo < hi {
            let mid = (lo + hi) / 2
            let first = try firstKey(s, mid)
            let precedesOrEqual = try key.withBytes { (k) throws(LogFormatError) -> Bool in
                Self.compareBytes(first, k) <= 0
            }
            if precedesOrEqual { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return [] }
        var found: [UInt32]? = nil
        try forEachTerm(s, group: lo - 1) { (k, count, list, base) throws(LogFormatError) -> Bool in
            if k == key { found = try decodeRuns(list, count: count, limit: unitLimit(s), from: base) }
            return found == nil && k.lexicographicallyPrecedes(key)
        }
        return found ?? []
    }

    private static func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let n = min(a.count, b.count)
        if n > 0 {
            let c = memcmpBytes(a.baseAddress!, b.baseAddress!, n)
            if c != 0 { return c }
        }
        return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
    }

    /// A version 2 posting list of `count` ordinals (or block numbers), each below `limit`, its first token counting
    /// from `base` in layout 9 (nil: from 0, unsigned). Errors name the group, whose offset the caller adds.
    private func decodeRuns(_ list: UnsafeRawBufferPointer, count: Int, limit: Int, from base: UInt64? = nil)
        throws(LogFormatError) -> [UInt32]
    {
        var r = BinaryReader(list)
        var out: [UInt32] = []
        let unit = limit == recordTotal ? "record" : "block"
        guard count <= limit else {
            throw LogFormatError(.malformed, "a posting list claims more \(unit)s than the segment holds")
        }
        do throws(LogFormatError) {
            if let base {
                var decoded: [UInt32]? = []
                try PostingRuns.decode(&r, count: count, from: base, into: &decoded)
                out = decoded ?? []
            } else {
                try PostingRuns.decode(&r, count: count, into: &out)
            }
        } catch  where error.code == .truncated {
            // The list's bytes lie inside its group: running out of them is a count the list does not hold.
            throw LogFormatError(.malformed, "a posting list ends before its \(count) \(unit)s")
        }
        guard r.remaining == 0 else {
            throw LogFormatError(.malformed, "a posting list has bytes after its last ordinal")
        }
        if let last = out.last, Int(last) >= limit {
            throw LogFormatError(.malformed, "a posting list names \(unit) \(last) of \(limit)")
        }
        return out
    }
    /// A version 1 posting list: `count` deltas from its offset within the field's postings.
    private func decodePostings(
        _ s: FieldSection, _ e: (key: Range<Int>, postings: Range<Int>, count: Int)
    ) throws(LogFormatError) -> [UInt32] {
        let range = e.postings
        let count = e.count
        guard count <= s.postingsLength else {
            throw LogFormatError(.malformed, "a posting list claims more records than it can hold", offset: s.postings)
        }
        var r = BinaryReader(
            UnsafeRawBufferPointer(rebasing: bytes[s.postings + range.lowerBound..<s.postings + range.upperBound]))
        var out = [UInt32]()
        out.reserveCapacity(count)
        do throws(LogFormatError) {
            var value: UInt64 = 0
            for i in 0..<count {
                let d = try r.uvarint()
                value = i == 0 ? d : value + d
                guard value <= UInt64(UInt32.max), i == 0 || d > 0 else {
                    throw LogFormatError(.malformed, "a posting list is not strictly ascending")
                }
                out.append(UInt32(value))
            }
            if let last = out.last, Int(last) >= recordTotal {
                throw LogFormatError(.malformed, "a posting list names record \(last) of \(recordTotal)")
            }
        } catch {
            throw LogFormatError(error.code, error.message, offset: s.postings + range.lowerBound)
        }
        return out
    }

    /// The blocks that may hold records of trace `id` (version 2): those listed under the id's first four
    /// bytes (three in layout 10). Another trace may share the prefix, so the caller reads the blocks' trace runs
    /// to be exact.
    public func traceBlocks(_ id: TraceID) throws(LogFormatError) -> [Int] {
        guard tracesMapToBlocks, let s = try section(.traceID), s.termCount > 0 else { return [] }
        let prefix = UInt32(truncatingIfNeeded: id.high >> UInt64(64 - s.layout.tracePrefixBits))
        if s.layout.isPackedTrace { return try packedTraceBlocks(s, prefix) }
        let width = Self.width(s)
        let chunkCount = Self.fenceBytes(s) / 8
        let entries = s.start + chunkCount * 8
        // The last chunk whose first prefix is below `prefix` may end with entries of it; start there.
        var lo = 0
        var hi = chunkCount
        while lo < hi {
            let mid = (lo + hi) / 2
            if UInt32(u32(s.start + mid * 8)) < prefix { lo = mid + 1 } else { hi = mid }
        }
        var chunk = max(lo - 1, 0)
        try checkChunk(s, chunk, entries: entries, width: width)
        func prefixAt(_ i: Int) -> UInt32 { UInt32(u32(entries + i * width)) }
        var out: [Int] = []
        // The chunk's first entry not below `prefix`, by binary search (its entries are sorted): a linear scan of
        // up to 512 entries was half of a trace look-up's cost per segment. None in this chunk: the next one's
        // first, which is not below `prefix` (its fence says so).
        var i = chunk * FormatConstants.traceChunkEntries
        var end = min(i + FormatConstants.traceChunkEntries, s.termCount)
        while i < end {
            let mid = (i + end) / 2
            if prefixAt(mid) < prefix { i = mid + 1 } else { end = mid }
        }
        if i % FormatConstants.traceChunkEntries == 0 && i > chunk * FormatConstants.traceChunkEntries
            && i < s.termCount
        {
            chunk += 1
            try checkChunk(s, chunk, entries: entries, width: width)
        }
        while i < s.termCount && prefixAt(i) == prefix {
            let at = entries + i * width + 4
            let block =
                width == 6
                ? Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self))) : u32(at)
            guard block < blocks.count else {
                throw LogFormatError(
                    .malformed, "the trace section names block \(block) of \(blocks.count)", offset: at)
            }
            out.append(block)
            i += 1
            if i % FormatConstants.traceChunkEntries == 0 && i < s.termCount {
                chunk += 1
                try checkChunk(s, chunk, entries: entries, width: width)
            }
        }
        return out
    }

    /// `traceBlocks` in a packed section (layout 7): the chunks that may hold `prefix`, each decoded once.
    private func packedTraceBlocks(_ s: FieldSection, _ prefix: UInt32) throws(LogFormatError) -> [Int] {
        let chunks = PackedTraceSection.chunkCount(s.termCount)
        func fencePrefix(_ k: Int) -> UInt32 { UInt32(u32(s.start + k * PackedTraceSection.fenceSize)) }
        var lo = 0
        var hi = chunks
        while lo < hi {
            let mid = (lo + hi) / 2
            if fencePrefix(mid) < prefix { lo = mid + 1 } else { hi = mid }
        }
        // The last chunk starting below `prefix` may end with entries of it; later ones starting at it may hold more.
        let first = max(lo - 1, 0)
        var out: [Int] = []
        var k = first
        while k < chunks {
            if k > first && fencePrefix(k) > prefix { break }
            let entries = try packedChunk(s, k, upTo: prefix)
            let key = UInt64(prefix) << 32
            var i = 0
            var end = entries.count
            while i < end {
                let mid = (i + end) / 2
                if entries[mid] < key { i = mid + 1 } else { end = mid }
            }
            while i < entries.count && entries[i] >> 32 == UInt64(prefix) {
                out.append(Int(entries[i] & 0xffff_ffff))
                i += 1
            }
            if i < entries.count { break }
            k += 1
        }
        return out
    }

    /// Chunk `k` of a packed trace section, checked against its fence and decoded: whole (kept for the view's later
    /// look-ups), or, the first time a look-up reads it, only up to the first entry past `upTo`.
    private func packedChunk(_ s: FieldSection, _ k: Int, upTo: UInt32? = nil) throws(LogFormatError) -> [UInt64] {
        if let hit = checked.packedChunks.withLock({ $0[k] }) { return hit }
        let partial = upTo != nil && checked.packedChunksRead.withLock { $0.insert(k).inserted }
        let chunks = PackedTraceSection.chunkCount(s.termCount)
        let fence = s.start + k * PackedTraceSection.fenceSize
        let start = s.start + u32(fence + 4)
        let end = k + 1 < chunks ? s.start + u32(fence + PackedTraceSection.fenceSize + 4) : s.start + s.length
        guard s.start + Self.fenceBytes(s) <= start, start <= end, end <= s.start + s.length else {
            throw LogFormatError(.malformed, "index section trace chunk \(k) lies outside its section", offset: fence)
        }
        try present(start..<end)
        let body = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
        guard Checksum.crc32(body) == UInt32(u32(fence + 8)) else {
            throw LogFormatError(
                .checksumMismatch, "index section trace chunk \(k) checksum does not match", offset: start)
        }
        let count = min(FormatConstants.traceChunkEntries, s.termCount - k * FormatConstants.traceChunkEntries)
        let entries: [UInt64]
        do throws(LogFormatError) {
            entries = try PackedTraceSection.decodeChunk(
                body, first: UInt32(u32(fence)), count: count, blockCount: blocks.count,
                prefixBits: s.layout.tracePrefixBits, stopAbove: partial ? upTo : nil)
        } catch {
            checked.packedChunksRead.withLock { _ = $0.remove(k) }
            throw LogFormatError(error.code, "index section trace chunk \(k): \(error.message)", offset: start)
        }
        if !partial { checked.packedChunks.withLock { $0[k] = entries } }
        return entries
    }

    /// Every (trace-id prefix, block) entry of the trace section (version 2 and later), in ascending order, each
    /// chunk checked: for finding the traces two segments share. Prefixes are `tracePrefixBits` wide (three bytes in
    /// layout 10).
    public func allTracePrefixes() throws(LogFormatError) -> [(prefix: UInt32, block: Int)] {
        guard tracesMapToBlocks, let s = try section(.traceID), s.termCount > 0 else { return [] }
        try presentWhole(s)
        if s.layout.isPackedTrace {
            var out: [(prefix: UInt32, block: Int)] = []
            out.reserveCapacity(s.termCount)
            for k in 0..<PackedTraceSection.chunkCount(s.termCount) {
                for e in try packedChunk(s, k) { out.append((UInt32(e >> 32), Int(e & 0xffff_ffff))) }
            }
            return out
        }
        let width = Self.width(s)
        let chunkCount = Self.fenceBytes(s) / 8
        let entries = s.start + chunkCount * 8
        for k in 0..<chunkCount { try checkChunk(s, k, entries: entries, width: width) }
        var out: [(prefix: UInt32, block: Int)] = []
        out.reserveCapacity(s.termCount)
        for i in 0..<s.termCount {
            let at = entries + i * width
            let block =
                width == 6
                ? Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at + 4, as: UInt16.self)))
                : u32(at + 4)
            guard block < blocks.count else {
                throw LogFormatError(
                    .malformed, "the trace section names block \(block) of \(blocks.count)", offset: at)
            }
            out.append((UInt32(u32(at)), block))
        }
        return out
    }

    /// The count rollup (version 3), checked and parsed; nil when the index has none.
    public func countRollup() throws(LogFormatError) -> CountRollup? {
        guard let s = try section(.counts) else { return nil }
        let records = recordTotal
        let low = blocks.map(\.minTime).min() ?? 0
        let high = blocks.map(\.maxTime).max() ?? 0
        do throws(LogFormatError) {
            return try CountRollup(
                section: UnsafeRawBufferPointer(rebasing: bytes[s.start..<s.start + s.length]), records: records,
                times: low...max(low, high))
        } catch {
            throw LogFormatError(error.code, "index section counts: \(error.message)", offset: s.start)
        }
    }

    /// Checks chunk `k` of a trace section against its fence.
    private func checkChunk(_ s: FieldSection, _ k: Int, entries: Int, width: Int) throws(LogFormatError) {
        let first = k * FormatConstants.traceChunkEntries
        let end = min(first + FormatConstants.traceChunkEntries, s.termCount)
        guard first < end else { return }
        try present(entries + first * width..<entries + end * width)
        if checked.traceChunks.withLock({ $0.contains(k) }) { return }
        let body = UnsafeRawBufferPointer(rebasing: bytes[entries + first * width..<entries + end * width])
        guard Checksum.crc32(body) == UInt32(u32(s.start + k * 8 + 4)) else {
            throw LogFormatError(
                .checksumMismatch, "index section trace chunk \(k) checksum does not match",
                offset: entries + first * width)
        }
        guard UInt32(u32(entries + first * width)) == UInt32(u32(s.start + k * 8)) else {
            throw LogFormatError(
                .malformed, "index section trace chunk \(k) does not start at its fence", offset: s.start)
        }
        checked.traceChunks.withLock { _ = $0.insert(k) }
    }

    /// Bytes of each part of the index: its head, and each field's section (version 2) or terms (version 1).
    public var partSizes: [(String, Int)] {
        guard version >= FormatConstants.indexVersion else {
            var out = [("index", bytes.count)]
            for field in fieldsPresent {
                let s = fields[field]!
                out.append(("index \(field) postings", s.postingsLength))
            }
            return out
        }
        let sections = fields.sorted { $0.value.start < $1.value.start }
        var out = [("index head", sections.first?.value.start ?? bytes.count)]
        for (field, s) in sections { out.append(("index \(field)", s.length)) }
        return out
    }

    /// The payload bytes of `field`'s section (version 2 and later), unchecked; nil when absent.
    package func sectionBytes(_ field: IndexField) -> UnsafeRawBufferPointer? {
        guard version >= FormatConstants.indexVersion, let s = fields[field] else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[s.start..<s.start + s.length])
    }

    /// Checks every section's checksum (a reader checks each on first use; verification and a full read check all).
    public func checkSections() throws(LogFormatError) {
        for field in fieldsPresent {
            guard let s = try section(field), version >= FormatConstants.indexVersion else { continue }
            try presentWhole(s)
            if s.layout == .rollup {
                _ = try countRollup()
            } else if s.layout.isTerms {
                for g in 0..<Self.groupCount(s) {
                    try forEachTerm(s, group: g) { (_, count, list, base) throws(LogFormatError) -> Bool in
                        _ = try decodeRuns(list, count: count, limit: unitLimit(s), from: base)
                        return true
                    }
                }
            } else if s.layout.isPackedTrace {
                for k in 0..<PackedTraceSection.chunkCount(s.termCount) { _ = try packedChunk(s, k) }
            } else {
                let chunks = Self.fenceBytes(s) / 8
                for k in 0..<chunks { try checkChunk(s, k, entries: s.start + chunks * 8, width: Self.width(s)) }
            }
        }
    }

    /// Every term of a string field with its posting list, in key order (for verification and statistics): record
    /// ordinals, or block numbers where `postingsMapToBlocks(field)`.
    public func allTerms(_ field: IndexField) throws(LogFormatError) -> [([UInt8], [UInt32])] {
        guard !(field == .traceID && tracesMapToBlocks), field != .counts, let s = try section(field) else { return [] }
        try presentWhole(s)
        var out: [([UInt8], [UInt32])] = []
        out.reserveCapacity(s.termCount)
        if version >= FormatConstants.indexVersion {
            for g in 0..<Self.groupCount(s) {
                try forEachTerm(s, group: g) { (k, count, list, base) throws(LogFormatError) -> Bool in
                    out.append((k, try decodeRuns(list, count: count, limit: unitLimit(s), from: base)))
                    return true
                }
            }
            return out
        }
        for i in 0..<s.termCount {
            let e = try entry(s, i)
            out.append((Array(UnsafeRawBufferPointer(rebasing: bytes[e.key])), try decodePostings(s, e)))
        }
        return out
    }
    /// Index of the block holding `ordinal`.
    public func blockIndex(forOrdinal ordinal: UInt32) -> Int? {
        var lo = 0
        var hi = blocks.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            let b = blocks[mid]
            if ordinal < b.firstOrdinal {
                hi = mid - 1
            } else if ordinal >= b.firstOrdinal + b.recordCount {
                lo = mid + 1
            } else {
                return mid
            }
        }
        return nil
    }
}
