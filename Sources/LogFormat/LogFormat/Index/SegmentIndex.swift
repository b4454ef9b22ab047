// The inverted index of a sealed segment (docs/format/index.md): the terms and block table a writer gathers, and
// their serialisation in either version. Version 1 (row segments) checksums the whole payload and lists every
// ordinal; version 2 (column segments) gives each section its own checksum, so a reader checks only what a
// query touches, stores postings as runs (sealed order makes a user's or service's records contiguous), and maps
// trace ids to the blocks holding them (a trace's records are contiguous in sealed order, and its block names
// them in its trace-run column).

/// A term of the index: a string for most fields, 16 bytes for trace ids.
public enum IndexTerm: Sendable, Hashable {
    case string(String)
    case trace(TraceID)

    /// The key bytes stored in the index.
    public var keyBytes: [UInt8] {
        switch self {
        case .string(let s): Array(s.utf8)
        case .trace(let t): t.bytes
        }
    }
}

/// The indexed parts of one event, small enough to keep per record until its block is written.
public struct RecordTerms: Sendable {
    public var user: UserIdentity?
    public var service: String
    public var workload: String?
    public var traceID: TraceID

    public init(_ event: borrowing AuditEvent) {
        user = event.user
        service = event.service
        workload = event.workload
        traceID = event.traceID
    }

    /// Every (field, term) this record is indexed under.
    @inlinable
    public func forEachTerm(_ body: (IndexField, IndexTerm) -> Void) {
        if let user {
            body(.user, .string(user.subject))
            if let email = user.email, email != user.subject { body(.user, .string(email)) }
            for g in user.groups { body(.group, .string(g)) }
        }
        if !service.isEmpty { body(.service, .string(service)) }
        if let workload, !workload.isEmpty { body(.workload, .string(workload)) }
        if !traceID.isZero { body(.traceID, .trace(traceID)) }
    }
}

/// Which terms an event is indexed under. The index builder and the brute-force matcher both use
/// `RecordTerms`, so an index look-up and a scan can never disagree about what matches.
public enum IndexTerms {
    @inlinable
    public static func forEach(_ event: AuditEvent, _ body: (IndexField, IndexTerm) -> Void) {
        RecordTerms(event).forEachTerm(body)
    }

    /// Whether `event` is indexed under `term` in `field`.
    public static func matches(_ event: AuditEvent, _ field: IndexField, _ term: IndexTerm) -> Bool {
        var found = false
        forEach(event) { f, t in
            if !found, f == field, t == term { found = true }
        }
        return found
    }
}

/// One entry of the block table: where a data block is and what it holds.
public struct BlockLocation: Sendable, Hashable {
    public var offset: UInt64
    public var firstOrdinal: UInt32
    public var recordCount: UInt32
    public var minTime: UInt64
    public var maxTime: UInt64
    public var storedLength: UInt32
    public var rawLength: UInt32

    public init(
        offset: UInt64, firstOrdinal: UInt32, recordCount: UInt32, minTime: UInt64, maxTime: UInt64,
        storedLength: UInt32, rawLength: UInt32
    ) {
        self.offset = offset
        self.firstOrdinal = firstOrdinal
        self.recordCount = recordCount
        self.minTime = minTime
        self.maxTime = maxTime
        self.storedLength = storedLength
        self.rawLength = rawLength
    }

    func write(into w: inout BinaryWriter) {
        w.u64(offset)
        w.u32(firstOrdinal)
        w.u32(recordCount)
        w.u64(minTime)
        w.u64(maxTime)
        w.u32(storedLength)
        w.u32(rawLength)
    }

    static func read(_ r: inout BinaryReader) throws(LogFormatError) -> BlockLocation {
        BlockLocation(
            offset: try r.u64(), firstOrdinal: try r.u32(), recordCount: try r.u32(), minTime: try r.u64(),
            maxTime: try r.u64(), storedLength: try r.u32(), rawLength: try r.u32())
    }

    init(_ header: BlockHeader, offset: UInt64) {
        self.init(
            offset: offset, firstOrdinal: header.firstOrdinal, recordCount: header.recordCount,
            minTime: header.minTime, maxTime: header.maxTime, storedLength: header.storedLength,
            rawLength: header.rawLength)
    }
}

/// Accumulates terms while a segment is written and serialises the index at seal time.
public struct IndexBuilder: Sendable {
    /// String-keyed fields, at `field.rawValue - 1` (user, group, service, workload).
    private var strings: [[String: [UInt32]]] = Array(repeating: [:], count: 4)
    private var traces: [TraceID: [UInt32]] = [:]
    public private(set) var blocks: [BlockLocation] = []
    /// The index version `serialize` writes.
    public let version: UInt16
    /// Version 2 only: write the compact term layouts (users in packed groups, services, workloads and groups
    /// listing blocks) rather than layout 1 for every string field. A verifier rebuilds what the segment holds.
    public let compactTerms: Bool

    /// Version 3: the count rollup, fed by `addCounts`.
    public private(set) var rollup: CountRollupBuilder?

    /// Version 2 and later: write the trace section packed (layout 7) rather than with fixed-width entries (layouts
    /// 2 and 3, as written before it). A verifier rebuilds what the segment holds.
    public let packedTraces: Bool
    /// Version 2 and later with compact terms: pack the user section in groups of 256 terms (layout 8) rather than 64
    /// (layout 5): what archive copies are written with.
    public let widePackedUsers: Bool
    /// With wide packed users: each user's posting list counting from the previous term's end (layout 9 rather than
    /// 8): what archive copies are written with since it.
    public let relativeUserLists: Bool
    /// With packed traces: prefixes of the trace ids' first three bytes (layout 10 rather than 7): what archive copies
    /// are written with since it.
    public let shortTracePrefixes: Bool

    public init(
        version: UInt16 = FormatConstants.indexVersionPostings, compactTerms: Bool = true, packedTraces: Bool = true,
        widePackedUsers: Bool = false, relativeUserLists: Bool = false, shortTracePrefixes: Bool = false
    ) {
        self.version = version
        self.compactTerms = compactTerms
        self.packedTraces = packedTraces
        self.widePackedUsers = widePackedUsers
        self.relativeUserLists = relativeUserLists
        self.shortTracePrefixes = shortTracePrefixes
        if version >= FormatConstants.indexVersionRollup { rollup = CountRollupBuilder() }
    }

    /// Counts a record in the rollup (version 3; ignored by earlier versions): its kind, start and Merkle leaf.
    public mutating func addCounts(_ kind: CountRollupKind, start: UInt64, leaf: Digest32) {
        rollup?.add(kind, start: start, leaf: leaf)
    }

    public mutating func add(_ event: AuditEvent, ordinal: UInt32) {
        add(RecordTerms(event), ordinal: ordinal)
    }

    public mutating func add(_ terms: RecordTerms, ordinal: UInt32) {
        terms.forEachTerm { field, term in
            switch term {
            case .trace(let id):
                traces[id, default: []].appendIfNew(ordinal)
            case .string(let s):
                strings[Int(field.rawValue) - 1][s, default: []].appendIfNew(ordinal)
            }
        }
    }

    public mutating func addBlock(_ location: BlockLocation) { blocks.append(location) }

    /// Forgets every block after the first `blockCount` and every ordinal from `recordCount` on: undoes the
    /// blocks of a batch whose write failed. Ordinals are added in ascending order, so they sit at the ends.
    package mutating func truncate(blocks blockCount: Int, records recordCount: UInt32) {
        blocks.removeLast(max(0, blocks.count - blockCount))
        func cut<Key>(_ postings: inout [Key: [UInt32]]) {
            for key in Array(postings.keys) where postings[key]!.last! >= recordCount {
                postings[key]!.removeAll { $0 >= recordCount }
                if postings[key]!.isEmpty { postings[key] = nil }
            }
        }
        cut(&traces)
        for i in strings.indices { cut(&strings[i]) }
    }

    /// Number of distinct terms so far (for memory accounting).
    public var termCount: Int { strings.reduce(traces.count) { $0 + $1.count } }

    /// The index payload, deterministic for a given sequence of `add` and `addBlock` calls.
    public func serialize() -> [UInt8] {
        version >= FormatConstants.indexVersion ? serializeSections() : serializePostings()
    }

    /// The string fields present, each with its terms sorted by key bytes (memcmp order).
    private func sortedStringFields() -> [(IndexField, [([UInt8], [UInt32])])] {
        var out: [(IndexField, [([UInt8], [UInt32])])] = []
        for field in IndexField.allCases where field != .traceID && field != .counts {
            let terms = strings[Int(field.rawValue) - 1]
            guard !terms.isEmpty else { continue }
            let sorted = terms.map { (Array($0.key.utf8), $0.value) }.sorted { $0.0.lexicographicallyPrecedes($1.0) }
            out.append((field, sorted))
        }
        return out
    }

    /// Version 2: head (counts, block table, section directory, head CRC), then one section per field.
    private func serializeSections() -> [UInt8] {
        var sections: [(field: IndexField, layout: IndexSectionLayout, termCount: Int, bytes: [UInt8], crc: UInt32)] =
            []
        for (field, terms) in sortedStringFields() {
            let users: IndexSectionLayout =
                !widePackedUsers ? .packedTerms : relativeUserLists ? .relativeWidePackedTerms : .widePackedTerms
            let layout: IndexSectionLayout = !compactTerms ? .terms : field == .user ? users : .blockTerms
            let units = layout == .blockTerms ? terms.map { ($0.0, blockNumbers($0.1)) } : terms
            let (bytes, crc) = Self.termGroups(units, layout: layout)
            sections.append((field, layout, terms.count, bytes, crc))
        }
        if !traces.isEmpty {
            // One entry per (trace, block holding some of its records), by the id's first four bytes (three in
            // layout 10).
            let short = packedTraces && shortTracePrefixes
            var pairs: [UInt64] = []
            pairs.reserveCapacity(traces.count)
            for (id, ordinals) in traces {
                let prefix = UInt64(id.high >> (short ? 40 : 32))
                var last = -1
                var b = 0
                for ordinal in ordinals {
                    while b < blocks.count && ordinal >= blocks[b].firstOrdinal + blocks[b].recordCount { b += 1 }
                    guard b < blocks.count, ordinal >= blocks[b].firstOrdinal else { break }
                    if b != last { pairs.append(prefix << 32 | UInt64(b)) }
                    last = b
                }
            }
            // Traces sharing a prefix and a block make one entry.
            pairs.sort()
            pairs = pairs.enumerated().filter { $0.offset == 0 || pairs[$0.offset - 1] != $0.element }.map(\.element)
            if packedTraces {
                let (bytes, crc) = PackedTraceSection.encode(pairs)
                sections.append((.traceID, short ? .tracePacked24 : .tracePacked, pairs.count, bytes, crc))
            } else {
                sections.append(Self.fixedTraceSection(pairs, blockCount: blocks.count))
            }
        }
        if let rollup, rollup.kindCount > 0 {
            let bytes = rollup.serialize()
            sections.append((.counts, .rollup, rollup.kindCount, bytes, Checksum.crc32(bytes)))
        }
        return Self.assemble(version: version, blocks: blocks, sections: sections)
    }

    /// A trace section of layout 2 or 3 (fixed-width entries), as written before layout 7.
    private static func fixedTraceSection(_ pairs: [UInt64], blockCount: Int) -> (
        field: IndexField, layout: IndexSectionLayout, termCount: Int, bytes: [UInt8], crc: UInt32
    ) {
        let wide = blockCount > Int(UInt16.max) + 1
        var entries = BinaryWriter(capacity: pairs.count * (wide ? 8 : 6))
        for p in pairs {
            entries.u32(UInt32(p >> 32))
            if wide {
                entries.u32(UInt32(truncatingIfNeeded: p))
            } else {
                entries.u16(UInt16(truncatingIfNeeded: p))
            }
        }
        // Fences: each chunk's first prefix and checksum, so a look-up checks one chunk, not the section.
        let chunk = FormatConstants.traceChunkEntries * (wide ? 8 : 6)
        var section = BinaryWriter(capacity: entries.count + entries.count / chunk * 8 + 8)
        var at = 0
        while at < entries.count {
            let end = min(at + chunk, entries.count)
            section.u32(UInt32(pairs[at / (wide ? 8 : 6)] >> 32))
            section.u32(
                entries.bytes.withUnsafeBytes { Checksum.crc32(UnsafeRawBufferPointer(rebasing: $0[at..<end])) })
            at = end
        }
        let fences = section.count
        section.raw(entries.bytes)
        return (
            .traceID, wide ? .traceBlocks32 : .traceBlocks16, pairs.count, section.bytes,
            Checksum.crc32(section.bytes[..<fences])
        )
    }

    /// The version 2 payload: head (counts, block table, section directory, head CRC), then the sections.
    private static func assemble(
        version: UInt16, blocks: [BlockLocation],
        sections: [(field: IndexField, layout: IndexSectionLayout, termCount: Int, bytes: [UInt8], crc: UInt32)]
    ) -> [UInt8] {
        let headSize =
            8 + blocks.count * FormatConstants.blockEntrySize + sections.count * FormatConstants.sectionEntrySize + 4
        var w = BinaryWriter(capacity: headSize + sections.reduce(0) { $0 + $1.bytes.count })
        w.u16(version)
        w.u16(UInt16(sections.count))
        w.u32(UInt32(blocks.count))
        for b in blocks { b.write(into: &w) }
        var offset = headSize
        for s in sections {
            w.u8(s.field.rawValue)
            w.u8(s.layout.rawValue)
            w.u16(0)
            w.u32(UInt32(s.termCount))
            w.u32(UInt32(offset))
            w.u32(UInt32(s.bytes.count))
            w.u32(s.crc)
            offset += s.bytes.count
        }
        w.u32(Checksum.crc32(w.bytes))
        for s in sections { w.raw(s.bytes) }
        return w.bytes
    }

    /// The ascending numbers of the blocks holding `ordinals` (ascending), each once.
    private func blockNumbers(_ ordinals: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        var b = 0
        for ordinal in ordinals {
            while b < blocks.count && ordinal >= blocks[b].firstOrdinal + blocks[b].recordCount { b += 1 }
            guard b < blocks.count, ordinal >= blocks[b].firstOrdinal else { break }
            if out.last != UInt32(b) { out.append(UInt32(b)) }
        }
        return out
    }

    /// A version 2 terms section: groups of sorted terms (16, or 64 for a packed section), each key sharing a
    /// prefix with the one before it in its group, each posting list (ordinals, or block numbers for layout 4)
    /// after its key, or "the same as the previous term's", as a user's e-mail usually is. A packed group keeps
    /// its first key whole and compresses the rest with zlib. Returns the bytes and the CRC of the group table,
    /// which the section directory holds.
    static func termGroups(_ terms: [([UInt8], [UInt32])], layout: IndexSectionLayout = .terms) -> ([UInt8], UInt32) {
        let packed = layout.isPacked
        let perGroup = layout.termsPerGroup
        let groupCount = (terms.count + perGroup - 1) / perGroup
        var groups = BinaryWriter(capacity: terms.count * 24)
        var table = BinaryWriter(capacity: 4 + groupCount * 8)
        table.u32(UInt32(groupCount))
        var list = BinaryWriter(capacity: 64)
        var body = BinaryWriter(capacity: packed ? 4096 : 0)
        var deflated: [UInt8] = []
        for g in 0..<groupCount {
            let start = groups.count
            var previous: ([UInt8], [UInt32])? = nil
            // Layout 9: where the previous term's list ends, which the next list's first token counts from.
            var end: UInt64 = 0
            for (key, ordinals) in terms[g * perGroup..<min((g + 1) * perGroup, terms.count)] {
                var shared = 0
                if let p = previous?.0 {
                    while shared < min(p.count, key.count) && p[shared] == key[shared] { shared += 1 }
                }
                groups.uvarint(shared)
                groups.uvarint(key.count - shared)
                groups.raw(key[shared...])
                if packed && previous == nil {
                    // The first key stays readable for the search over groups; the rest is compressed below.
                    body = BinaryWriter(capacity: 4096)
                    swap(&groups, &body)
                }
                groups.uvarint(ordinals.count)
                if let p = previous, p.1 == ordinals {
                    groups.uvarint(0)
                } else {
                    list.bytes.removeAll(keepingCapacity: true)
                    if layout.hasRelativeLists {
                        PostingRuns.encode(ordinals, from: end, into: &list)
                        if let last = ordinals.last { end = UInt64(last) + 1 }
                    } else {
                        PostingRuns.encode(ordinals, into: &list)
                    }
                    groups.uvarint(list.count)
                    groups.raw(list.bytes)
                }
                previous = (key, ordinals)
            }
            if packed {
                swap(&groups, &body)
                // zlib at level 6 over a few kilobytes: deterministic for the library this was built with, as the
                // archive tier's columns are; a verifier rebuilding the payload compresses the same way.
                deflated.removeAll(keepingCapacity: true)
                do throws(LogFormatError) {
                    try body.bytes.withBytes { (raw) throws(LogFormatError) in
                        try BlockCompression.compress(raw, codec: .zlib, level: 6, into: &deflated)
                    }
                } catch {
                    // zlib fails only without memory, which a writer cannot go on from.
                    preconditionFailure("deflating a group of index terms failed: \(error)")
                }
                // A few terms do not pay zlib's header and checksum: such a group is stored as is, length 0.
                if deflated.count < body.count {
                    groups.uvarint(body.count)
                    groups.raw(deflated)
                } else {
                    groups.uvarint(0)
                    groups.raw(body.bytes)
                }
            }
            table.u32(UInt32(start))  // made relative to the section below
            table.u32(groups.bytes.withUnsafeBytes { Checksum.crc32(UnsafeRawBufferPointer(rebasing: $0[start...])) })
        }
        // Group offsets count from the section's start: past the table.
        for g in 0..<groupCount {
            let at = 4 + g * 8
            let relative = table.bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
            table.patchU32(UInt32(littleEndian: relative) + UInt32(table.count), at: at)
        }
        let crc = Checksum.crc32(table.bytes)
        return (table.bytes + groups.bytes, crc)
    }

    /// Version 1: one field directory, term tables of 16-byte entries, every ordinal as a delta.
    private func serializePostings() -> [UInt8] {
        var fields = sortedStringFields()
        if !traces.isEmpty {
            fields.append((.traceID, traces.sorted { $0.key < $1.key }.map { ($0.key.bytes, $0.value) }))
        }
        var w = BinaryWriter(capacity: 64 << 10)
        w.u16(FormatConstants.indexVersionPostings)
        w.u16(UInt16(fields.count))
        w.u32(UInt32(blocks.count))
        for b in blocks { b.write(into: &w) }
        // Field directory, back-patched once each field's sections are laid out.
        let directoryStart = w.count
        for _ in fields { w.raw([UInt8](repeating: 0, count: 24)) }
        for (i, (field, terms)) in fields.enumerated() {
            let termTableOffset = w.count
            var keyBytes = BinaryWriter(capacity: terms.count * 16)
            var postings = BinaryWriter(capacity: terms.count * 4)
            var entries = BinaryWriter(capacity: terms.count * FormatConstants.termEntrySize)
            for (key, list) in terms {
                entries.u32(UInt32(keyBytes.count))
                entries.u32(UInt32(key.count))
                entries.u32(UInt32(postings.count))
                entries.u32(UInt32(list.count))
                keyBytes.raw(key)
                var previous: UInt32 = 0
                for (j, ordinal) in list.enumerated() {
                    postings.uvarint(UInt64(j == 0 ? ordinal : ordinal - previous))
                    previous = ordinal
                }
            }
            w.raw(entries.bytes)
            let keysOffset = w.count
            w.raw(keyBytes.bytes)
            let postingsOffset = w.count
            w.raw(postings.bytes)
            let entry = directoryStart + i * 24
            w.bytes[entry] = field.rawValue
            w.patchU32(UInt32(terms.count), at: entry + 4)
            w.patchU32(UInt32(termTableOffset), at: entry + 8)
            w.patchU32(UInt32(keysOffset), at: entry + 12)
            w.patchU32(UInt32(postingsOffset), at: entry + 16)
            w.patchU32(UInt32(postings.count), at: entry + 20)
        }
        return w.bytes
    }
}

extension Array where Element == UInt32 {
    /// Appends `v` unless it is already the last element (an event may name the same term twice).
    @inlinable mutating func appendIfNew(_ v: UInt32) {
        if last != v { append(v) }
    }
}

@inline(__always) func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Int {
    for i in 0..<n {
        let x = a.load(fromByteOffset: i, as: UInt8.self)
        let y = b.load(fromByteOffset: i, as: UInt8.self)
        if x != y { return x < y ? -1 : 1 }
    }
    return 0
}

/// Intersection of ascending lists.
public func intersectSorted(_ a: [UInt32], _ b: [UInt32]) -> [UInt32] {
    var out = [UInt32]()
    out.reserveCapacity(min(a.count, b.count))
    var i = 0
    var j = 0
    while i < a.count && j < b.count {
        if a[i] == b[j] {
            out.append(a[i])
            i += 1
            j += 1
        } else if a[i] < b[j] {
            i += 1
        } else {
            j += 1
        }
    }
    return out
}
