// The count rollup of a version 3 index (docs/format/index.md, "Count rollup"): per hour of record start time, how
// many distinct records of each *kind* a segment holds, a kind being the fields `auditq count` groups and filters
// by that have few values. Sealed order is by user, so every block spans most of a segment's hours; the rollup
// answers an hour's count without reading them.

/// What a count rollup keeps of one record.
public struct CountRollupKind: Sendable, Hashable {
    public var kind: EventKind
    public var source: EventSource
    public var status: StatusCode
    public var service: String
    public var workload: String?
    public var hasHTTP: Bool
    /// The HTTP method, when the record has HTTP facts and a method.
    public var method: String?
    /// The HTTP status; 0 without HTTP facts.
    public var httpStatus: UInt16
    /// A collector's completeness ledger record ([ledger.md](ledger.md)), which queries leave out unless asked.
    public var isLedger: Bool
    /// Whether the trace id is not zero: records without one cannot be matched across segments by trace.
    public var hasTraceID: Bool

    public init(
        kind: EventKind, source: EventSource, status: StatusCode, service: String, workload: String?, hasHTTP: Bool,
        method: String?, httpStatus: UInt16, isLedger: Bool, hasTraceID: Bool
    ) {
        self.kind = kind
        self.source = source
        self.status = status
        self.service = service
        self.workload = workload
        self.hasHTTP = hasHTTP
        self.method = method
        self.httpStatus = httpStatus
        self.isLedger = isLedger
        self.hasTraceID = hasTraceID
    }

    public init(_ e: borrowing AuditEvent) {
        self.init(
            kind: e.kind, source: e.source, status: e.statusCode, service: e.service, workload: e.workload,
            hasHTTP: e.http != nil, method: e.http?.method, httpStatus: e.http?.statusCode ?? 0,
            isLedger: Self.isLedger(e), hasTraceID: !e.traceID.isZero)
    }

    /// The event name and attribute key that make a log record a ledger record (docs/format/ledger.md).
    public static let ledgerEventName = "audit.ledger"
    public static let ledgerVersionKey = "audit.ledger.version"

    static func isLedger(_ e: borrowing AuditEvent) -> Bool {
        e.kind == .log && e.eventName == ledgerEventName && e.attributes.contains { $0.key == ledgerVersionKey }
    }

    /// The kind and start time of a canonical record, read without decoding its attributes, events and links
    /// unless it is a log record (whose attributes tell a ledger record). Equal to `init(RecordCodec.decode(r))`:
    /// the same fields are read the same way.
    public static func of(record: UnsafeRawBufferPointer) throws(LogFormatError) -> (CountRollupKind, UInt64) {
        var r = BinaryReader(record)
        let head = try Verifier.indexedFields(&r)
        return (try of(head, rest: &r, record: record), head.start)
    }

    /// The kind of `record`, whose fields up to its workload are `head` and whose HTTP facts (if any) `r` is at.
    static func of(
        _ head: (
            terms: RecordTerms, start: UInt64, codes: (kind: UInt8, source: UInt8, status: UInt8), presence: UInt16
        ),
        rest r: inout BinaryReader, record: UnsafeRawBufferPointer
    ) throws(LogFormatError) -> CountRollupKind {
        guard let kind = EventKind(rawValue: head.codes.kind), kind != .log,
            let source = EventSource(rawValue: head.codes.source), let status = StatusCode(rawValue: head.codes.status)
        else {
            // A log (is it a ledger?) or a code this reader refuses: decoded whole, which says why.
            return CountRollupKind(try RecordCodec.decode(record))
        }
        var method: String?
        var httpStatus: UInt16 = 0
        let hasHTTP = head.presence & 8 != 0
        if hasHTTP {
            method = try r.optionalString()
            for _ in 0..<2 {  // target, route: skipped, not built
                let n = try r.uvarint(max: r.remaining + 1, "a string length")
                if n > 0 { _ = try r.rawSlice(n - 1) }
            }
            httpStatus = UInt16(try r.uvarint(max: Int(UInt16.max), "HTTP status"))
        }
        return CountRollupKind(
            kind: kind, source: source, status: status, service: head.terms.service, workload: head.terms.workload,
            hasHTTP: hasHTTP, method: method, httpStatus: httpStatus, isLedger: false,
            hasTraceID: !head.terms.traceID.isZero)
    }

    enum Parts {
        static let http: UInt8 = 1
        static let workload: UInt8 = 2
        static let method: UInt8 = 4
        static let ledger: UInt8 = 8
        static let noTraceID: UInt8 = 16
        static let known: UInt8 = 31
    }

    var parts: UInt8 {
        (hasHTTP ? Parts.http : 0) | (workload != nil ? Parts.workload : 0) | (method != nil ? Parts.method : 0)
            | (isLedger ? Parts.ledger : 0) | (hasTraceID ? 0 : Parts.noTraceID)
    }
}

/// Gathers a count rollup while a segment is laid out (or rebuilt by a verifier) and serialises its section.
public struct CountRollupBuilder: Sendable {
    private var kindNumbers: [CountRollupKind: Int] = [:]
    private var kinds: [CountRollupKind] = []
    /// Distinct records so far, by Merkle leaf: equal canonical bytes, equal leaves.
    private var seen = LeafSet()
    /// Counts by bucket number and kind number.
    private var counts: [BucketKind: Int] = [:]

    struct BucketKind: Hashable {
        var bucket: UInt64
        var kind: Int
    }
    public let bucketSeconds: Int

    public init(bucketSeconds: Int = FormatConstants.rollupBucketSeconds) {
        self.bucketSeconds = bucketSeconds
    }

    /// Counts a record of `kind` starting at `start` whose Merkle leaf is `leaf`, unless an equal record was
    /// counted already.
    public mutating func add(_ kind: CountRollupKind, start: UInt64, leaf: Digest32) {
        guard seen.insert(leaf) else { return }
        let number: Int
        if let n = kindNumbers[kind] {
            number = n
        } else {
            number = kinds.count
            kindNumbers[kind] = number
            kinds.append(kind)
        }
        counts[BucketKind(bucket: start / (UInt64(bucketSeconds) * 1_000_000_000), kind: number), default: 0] += 1
    }

    public var kindCount: Int { kinds.count }

    /// The section's bytes: deterministic for the records added, whatever their order.
    public func serialize() -> [UInt8] {
        var strings = Set<String>()
        for k in kinds {
            strings.insert(k.service)
            if let w = k.workload { strings.insert(w) }
            if let m = k.method { strings.insert(m) }
        }
        let table = strings.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        let ids = Dictionary(uniqueKeysWithValues: table.enumerated().map { ($0.element, $0.offset) })
        func fields(_ k: CountRollupKind) -> [Int] {
            [
                Int(k.kind.rawValue), Int(k.source.rawValue), Int(k.status.rawValue), Int(k.parts), ids[k.service]!,
                k.workload.map { ids[$0]! } ?? -1, k.method.map { ids[$0]! } ?? -1, Int(k.httpStatus),
            ]
        }
        let order = kinds.indices.sorted { fields(kinds[$0]).lexicographicallyPrecedes(fields(kinds[$1])) }
        var position = [Int](repeating: 0, count: kinds.count)
        for (p, k) in order.enumerated() { position[k] = p }

        var w = BinaryWriter(capacity: 4096)
        w.uvarint(bucketSeconds)
        w.uvarint(table.count)
        for s in table { w.string(s) }
        w.uvarint(kinds.count)
        for k in order.map({ kinds[$0] }) {
            w.u8(k.kind.rawValue)
            w.u8(k.source.rawValue)
            w.u8(k.status.rawValue)
            w.u8(k.parts)
            w.uvarint(ids[k.service]!)
            if let x = k.workload { w.uvarint(ids[x]!) }
            if let x = k.method { w.uvarint(ids[x]!) }
            w.uvarint(UInt64(k.httpStatus))
        }
        var buckets: [UInt64: [(Int, Int)]] = [:]
        for (key, count) in counts { buckets[key.bucket, default: []].append((position[key.kind], count)) }
        w.uvarint(buckets.count)
        var previous: UInt64? = nil
        for bucket in buckets.keys.sorted() {
            w.uvarint(previous.map { bucket - $0 - 1 } ?? bucket)
            previous = bucket
            let entries = buckets[bucket]!.sorted { $0.0 < $1.0 }
            w.uvarint(entries.count)
            var last = -1
            for (kind, count) in entries {
                w.uvarint(kind - last - 1)
                w.uvarint(count)
                last = kind
            }
        }
        // zlib at level 6 when shorter, as packed index groups are; deterministic for the library built with.
        var deflated: [UInt8] = []
        do throws(LogFormatError) {
            try w.bytes.withBytes { (raw) throws(LogFormatError) in
                try BlockCompression.compress(raw, codec: .zlib, level: 6, into: &deflated)
            }
        } catch {
            preconditionFailure("deflating a count rollup failed: \(error)")
        }
        var out = BinaryWriter(capacity: deflated.count + 8)
        if deflated.count < w.bytes.count {
            out.uvarint(w.bytes.count)
            out.raw(deflated)
        } else {
            out.uvarint(0)
            out.raw(w.bytes)
        }
        return out.bytes
    }
}

/// A set of Merkle leaves: open addressing on their first 8 bytes (uniformly random), compared whole. Cheaper than a
/// `Set<Digest32>`, whose hashing of 32 bytes per record was a tenth of `verify`'s time.
struct LeafSet: Sendable {
    private var leaves: [Digest32] = []
    /// Per slot: the leaf's number plus one (0: an empty slot) and the high half of its first word, so a probe
    /// reads the leaves array only for a likely match (a seal inserts every leaf of a segment, nearly all new).
    private var slots: [(number: UInt32, tag: UInt32)] = []
    private var mask = -1

    /// Inserts `leaf`; false when it was present.
    mutating func insert(_ leaf: Digest32) -> Bool {
        if (leaves.count + 1) * 2 > mask + 1 { grow() }
        let word = leaf.firstWord
        let tag = UInt32(truncatingIfNeeded: word >> 32)
        var i = Int(truncatingIfNeeded: word) & mask
        while slots[i].number != 0 {
            if slots[i].tag == tag && leaves[Int(slots[i].number) - 1] == leaf { return false }
            i = (i + 1) & mask
        }
        leaves.append(leaf)
        slots[i] = (UInt32(leaves.count), tag)
        return true
    }

    private mutating func grow() {
        let size = max(1 << 10, (mask + 1) * 2)
        slots = Array(repeating: (0, 0), count: size)
        mask = size - 1
        for (n, leaf) in leaves.enumerated() {
            let word = leaf.firstWord
            var i = Int(truncatingIfNeeded: word) & mask
            while slots[i].number != 0 { i = (i + 1) & mask }
            slots[i] = (UInt32(n + 1), UInt32(truncatingIfNeeded: word >> 32))
        }
    }
}

/// A count rollup as read from a segment's index: its kinds, and per bucket the counts of each kind.
public struct CountRollup: Sendable {
    public let bucketSeconds: Int
    public let kinds: [CountRollupKind]
    /// Bucket numbers, ascending; bucket `i`'s entries are `entryKinds[entryStarts[i]..<entryStarts[i + 1]]`.
    public let buckets: [UInt64]
    public let entryStarts: [Int]
    public let entryKinds: [Int32]
    public let entryCounts: [Int]

    /// The largest inflated section a reader accepts.
    public static let maxRawBytes = 16 << 20

    /// The nanoseconds a bucket spans.
    public var bucketNanos: UInt64 { UInt64(bucketSeconds) * 1_000_000_000 }

    /// Parses a rollup section whose CRC has been checked. `records` is what the block table holds and `times`
    /// the segment's time range: no sum may exceed the one, and every bucket overlaps the other.
    public init(section: UnsafeRawBufferPointer, records: Int, times: ClosedRange<UInt64>) throws(LogFormatError) {
        var r = BinaryReader(section)
        let rawLength = try r.uvarint(max: Self.maxRawBytes, "a rollup length")
        if rawLength == 0 {
            self = try Self(body: try r.rawSlice(r.remaining), records: records, times: times)
            return
        }
        var inflated: [UInt8] = []
        try BlockCompression.decompress(
            try r.rawSlice(r.remaining), codec: .zlib, rawLength: rawLength, into: &inflated)
        self = try inflated.withBytes { (b) throws(LogFormatError) in try Self(body: b, records: records, times: times)
        }
    }

    private init(body: UnsafeRawBufferPointer, records: Int, times: ClosedRange<UInt64>) throws(LogFormatError) {
        func malformed(_ what: String) -> LogFormatError { LogFormatError(.malformed, "count rollup: \(what)") }
        var r = BinaryReader(body)
        bucketSeconds = try r.uvarint(max: Int(UInt32.max), "a bucket width")
        guard bucketSeconds >= 1 else { throw malformed("a bucket of 0 seconds") }
        let stringCount = try r.uvarint(max: r.remaining, "a string count")
        var strings: [String] = []
        strings.reserveCapacity(stringCount)
        for _ in 0..<stringCount { strings.append(try r.string()) }
        let kindCount = try r.uvarint(max: min(r.remaining / 5, records), "a kind count")
        var kinds: [CountRollupKind] = []
        kinds.reserveCapacity(kindCount)
        var previous: [Int]? = nil
        for _ in 0..<kindCount {
            let kindByte = try r.u8()
            let sourceByte = try r.u8()
            let statusByte = try r.u8()
            let parts = try r.u8()
            guard let kind = EventKind(rawValue: kindByte), let source = EventSource(rawValue: sourceByte),
                let status = StatusCode(rawValue: statusByte), parts & ~CountRollupKind.Parts.known == 0
            else { throw malformed("unknown codes \(kindByte) \(sourceByte) \(statusByte) \(parts) in a kind") }
            let service = try r.uvarint(max: stringCount - 1, "a string id")
            let workload =
                parts & CountRollupKind.Parts.workload != 0 ? try r.uvarint(max: stringCount - 1, "a string id") : -1
            let method =
                parts & CountRollupKind.Parts.method != 0 ? try r.uvarint(max: stringCount - 1, "a string id") : -1
            let httpStatus = try r.uvarint(max: Int(UInt16.max), "an HTTP status")
            let fields = [
                Int(kindByte), Int(sourceByte), Int(statusByte), Int(parts), service, workload, method, httpStatus,
            ]
            if let previous, !previous.lexicographicallyPrecedes(fields) { throw malformed("kinds out of order") }
            previous = fields
            kinds.append(
                CountRollupKind(
                    kind: kind, source: source, status: status, service: strings[service],
                    workload: workload >= 0 ? strings[workload] : nil, hasHTTP: parts & CountRollupKind.Parts.http != 0,
                    method: method >= 0 ? strings[method] : nil, httpStatus: UInt16(httpStatus),
                    isLedger: parts & CountRollupKind.Parts.ledger != 0,
                    hasTraceID: parts & CountRollupKind.Parts.noTraceID == 0))
        }
        self.kinds = kinds
        let bucketCount = try r.uvarint(max: r.remaining / 2, "a bucket count")
        let width = UInt64(bucketSeconds) * 1_000_000_000
        var buckets: [UInt64] = []
        var starts: [Int] = [0]
        var entryKinds: [Int32] = []
        var entryCounts: [Int] = []
        var total = 0
        var number: UInt64? = nil
        for _ in 0..<bucketCount {
            let gap = try r.uvarint()
            let (next, o1) = number.map { $0.addingReportingOverflow(gap) } ?? (gap, false)
            let (n, o2) = number == nil ? (next, false) : next.addingReportingOverflow(1)
            guard !o1, !o2, n <= UInt64.max / width else { throw malformed("a bucket number out of range") }
            let low = n * width
            let high = low.addingReportingOverflow(width - 1)
            guard low <= times.upperBound, high.overflow || high.partialValue >= times.lowerBound else {
                throw malformed("bucket \(n) lies outside the segment's time range")
            }
            number = n
            buckets.append(n)
            let entries = try r.uvarint(max: min(r.remaining / 2, kindCount), "an entry count")
            var kind = -1
            for _ in 0..<entries {
                kind += 1 + (try r.uvarint(max: kindCount, "a kind gap"))
                guard kind < kindCount else { throw malformed("an entry names kind \(kind) of \(kindCount)") }
                let count = try r.uvarint(max: records, "a count")
                guard count >= 1 else { throw malformed("an entry of count 0") }
                total += count
                guard total <= records else { throw malformed("counts more records than the segment holds") }
                entryKinds.append(Int32(kind))
                entryCounts.append(count)
            }
            starts.append(entryKinds.count)
        }
        guard r.remaining == 0 else { throw malformed("\(r.remaining) bytes after the last bucket") }
        self.buckets = buckets
        self.entryStarts = starts
        self.entryKinds = entryKinds
        self.entryCounts = entryCounts
    }
}
