// The inverted index of a sealed segment (docs/format/index.md).
//
// index payload := version u16 | fieldCount u16 | blockCount u32
//                  | blockEntry[blockCount]          (40 bytes each)
//                  | fieldEntry[fieldCount]          (24 bytes each)
//                  | per field: termEntry[termCount] (16 bytes each) | key bytes | postings
// Terms are sorted by their key bytes (memcmp order), so a look-up is a binary search over the mapped file.
// Postings are record ordinals, ascending, delta + LEB128 varint encoded.

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

    public init() {}

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
        var fields: [(IndexField, [([UInt8], [UInt32])])] = []
        for field in IndexField.allCases {
            if field == .traceID {
                guard !traces.isEmpty else { continue }
                let sorted = traces.sorted { $0.key < $1.key }.map { ($0.key.bytes, $0.value) }
                fields.append((field, sorted))
            } else if case let terms = strings[Int(field.rawValue) - 1], !terms.isEmpty {
                let sorted = terms.map { (Array($0.key.utf8), $0.value) }.sorted {
                    $0.0.lexicographicallyPrecedes($1.0)
                }
                fields.append((field, sorted))
            }
        }
        var w = BinaryWriter(capacity: 64 << 10)
        w.u16(FormatConstants.indexVersion)
        w.u16(UInt16(fields.count))
        w.u32(UInt32(blocks.count))
        for b in blocks {
            w.u64(b.offset)
            w.u32(b.firstOrdinal)
            w.u32(b.recordCount)
            w.u64(b.minTime)
            w.u64(b.maxTime)
            w.u32(b.storedLength)
            w.u32(b.rawLength)
        }
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

/// Read-only view of a serialised index, over bytes that must stay valid (a mapped file).
public struct SegmentIndexView: @unchecked Sendable {
    // @unchecked: `bytes` points into a MappedFile kept alive by `owner`; the memory is never written.
    private let bytes: UnsafeRawBufferPointer
    private let owner: AnyObject?
    public let blocks: [BlockLocation]
    private let fields: [IndexField: FieldSection]

    struct FieldSection {
        var termCount: Int
        var termTable: Int
        var keys: Int
        var postings: Int
        var postingsLength: Int
    }

    /// Parses and bounds-checks the index payload. Errors carry offsets relative to the payload.
    public init(payload: UnsafeRawBufferPointer, owner: AnyObject?) throws(LogFormatError) {
        bytes = payload
        self.owner = owner
        var r = BinaryReader(payload)
        let version = try r.u16()
        guard version == FormatConstants.indexVersion else {
            throw LogFormatError(
                version > FormatConstants.indexVersion ? .unsupportedVersion : .malformed,
                "index version \(version); this reader knows version \(FormatConstants.indexVersion)", offset: 0)
        }
        let fieldCount = Int(try r.u16())
        let blockCount = Int(try r.u32())
        guard blockCount <= r.remaining / FormatConstants.blockEntrySize else {
            throw LogFormatError(.malformed, "index claims \(blockCount) blocks, more than its size allows", offset: 4)
        }
        var blocks = [BlockLocation]()
        blocks.reserveCapacity(blockCount)
        for _ in 0..<blockCount {
            blocks.append(
                BlockLocation(
                    offset: try r.u64(), firstOrdinal: try r.u32(), recordCount: try r.u32(), minTime: try r.u64(),
                    maxTime: try r.u64(), storedLength: try r.u32(), rawLength: try r.u32()))
        }
        self.blocks = blocks
        var fields: [IndexField: FieldSection] = [:]
        for _ in 0..<fieldCount {
            let at = r.offset
            let fieldByte = try r.u8()
            guard let field = IndexField(rawValue: fieldByte) else {
                throw LogFormatError(.malformed, "unknown index field \(fieldByte)", offset: at)
            }
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
        self.fields = fields
    }

    public var fieldsPresent: [IndexField] { IndexField.allCases.filter { fields[$0] != nil } }

    public func termCount(_ field: IndexField) -> Int { fields[field]?.termCount ?? 0 }

    private func entry(_ s: FieldSection, _ i: Int) -> (keyOffset: Int, keyLength: Int, postings: Int, count: Int) {
        let base = s.termTable + i * FormatConstants.termEntrySize
        func u32(_ o: Int) -> Int {
            Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: base + o, as: UInt32.self)))
        }
        return (u32(0), u32(4), u32(8), u32(12))
    }

    private func compare(_ s: FieldSection, _ i: Int, _ key: UnsafeRawBufferPointer) -> Int {
        let e = entry(s, i)
        let start = s.keys + e.keyOffset
        guard start + e.keyLength <= s.postings else { return 1 }  // damaged: treat as greater, look-up misses
        let stored = UnsafeRawBufferPointer(rebasing: bytes[start..<start + e.keyLength])
        let n = min(stored.count, key.count)
        if n > 0 {
            let c = memcmpBytes(stored.baseAddress!, key.baseAddress!, n)
            if c != 0 { return c }
        }
        return stored.count == key.count ? 0 : (stored.count < key.count ? -1 : 1)
    }

    /// The ascending record ordinals indexed under `term`; empty when absent.
    public func postings(_ field: IndexField, _ term: IndexTerm) throws(LogFormatError) -> [UInt32] {
        try postings(field, key: term.keyBytes)
    }

    /// The postings of the term whose stored key bytes are `key` (saves re-encoding a term looked up often).
    public func postings(_ field: IndexField, key: [UInt8]) throws(LogFormatError) -> [UInt32] {
        guard let s = fields[field], s.termCount > 0 else { return [] }
        return try key.withBytes { (k) throws(LogFormatError) -> [UInt32] in
            var lo = 0
            var hi = s.termCount - 1
            while lo <= hi {
                let mid = (lo + hi) / 2
                let c = compare(s, mid, k)
                if c == 0 { return try decodePostings(s, entry(s, mid)) }
                if c < 0 { lo = mid + 1 } else { hi = mid - 1 }
            }
            return []
        }
    }

    private func decodePostings(
        _ s: FieldSection, _ e: (keyOffset: Int, keyLength: Int, postings: Int, count: Int)
    ) throws(LogFormatError) -> [UInt32] {
        guard e.postings <= s.postingsLength, e.count <= s.postingsLength - e.postings else {
            throw LogFormatError(.malformed, "a posting list lies outside its field's postings", offset: s.postings)
        }
        var r = BinaryReader(
            UnsafeRawBufferPointer(rebasing: bytes[s.postings + e.postings..<s.postings + s.postingsLength]))
        var out = [UInt32]()
        out.reserveCapacity(e.count)
        var value: UInt64 = 0
        for i in 0..<e.count {
            let d = try r.uvarint()
            value = i == 0 ? d : value + d
            guard value <= UInt64(UInt32.max), i == 0 || d > 0 else {
                throw LogFormatError(
                    .malformed, "a posting list is not strictly ascending", offset: s.postings + e.postings)
            }
            out.append(UInt32(value))
        }
        return out
    }

    /// Every term of `field` with its posting list, in key order (for verification and statistics).
    public func allTerms(_ field: IndexField) throws(LogFormatError) -> [([UInt8], [UInt32])] {
        guard let s = fields[field] else { return [] }
        var out: [([UInt8], [UInt32])] = []
        out.reserveCapacity(s.termCount)
        for i in 0..<s.termCount {
            let e = entry(s, i)
            let start = s.keys + e.keyOffset
            guard start + e.keyLength <= s.postings else {
                throw LogFormatError(
                    .malformed, "term \(i) of \(field) lies outside the key section", offset: s.termTable)
            }
            out.append(
                (Array(UnsafeRawBufferPointer(rebasing: bytes[start..<start + e.keyLength])), try decodePostings(s, e)))
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
