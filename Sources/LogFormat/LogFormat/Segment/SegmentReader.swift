// Reading segments: sealed ones through their footer and index, open (active) ones by scanning blocks.
import Glibc
import Synchronization

/// A record read back from a segment, with where it lives.
public struct StoredRecord: Sendable {
    public var event: AuditEvent
    public var location: RecordLocation
}

/// Where a record lives: enough to fetch it again or to prove its inclusion.
public struct RecordLocation: Sendable, Hashable, Comparable {
    public var nodeID: NodeID
    public var segmentSequence: UInt64
    public var ordinal: UInt32

    public static func < (a: RecordLocation, b: RecordLocation) -> Bool {
        (a.nodeID, a.segmentSequence, a.ordinal) < (b.nodeID, b.segmentSequence, b.ordinal)
    }
}

/// An opened segment file, sealed or still being written. Immutable once opened: a reader of an active
/// segment sees the blocks that were complete when it was opened. A sealed segment is memory-mapped (it never
/// changes); an open one is read into memory when opened, because the collector may cut it (recovering a
/// torn tail, rolling back a refused batch) and a cut mapping would raise SIGBUS here. A sealed segment may also be
/// read from any `SegmentByteSource` (a cached remote object): the reader asks for each range before it touches it.
public final class SegmentReader: Sendable {
    public let path: String
    public let file: any SegmentByteSource
    public let header: SegmentFileHeader
    /// The footer of a sealed segment; nil for an open one.
    public let footer: SegmentFooter?
    /// The index of a sealed segment; nil for an open one.
    public let index: SegmentIndexView?
    public let blocks: [BlockLocation]
    public let recordCount: UInt32
    /// For an open segment: why the scan stopped before the end (a block still being written, or damage).
    public let tailProblem: LogFormatError?

    /// Opens a segment. A sealed file must have a valid footer and index; an unsealed one (`sealed: false`)
    /// is scanned up to its last complete block.
    public convenience init(path: String, sealed: Bool) throws(LogFormatError) {
        guard sealed else {
            try self.init(source: try MappedFile(path: path, snapshot: true), sealed: false)
            return
        }
        let fd = try FileIO.open(path, flags: O_RDONLY)
        defer { FileIO.close(fd) }
        let size = try FileIO.fileSize(fd, path: path)
        let opening = try SegmentOpeningBytes(fd: fd, size: size, path: path)
        try self.init(source: try MappedFile(fd: fd, size: size, path: path), sealed: true, opening: opening)
    }

    /// Opens a segment over `source`; messages name `source.path`.
    public convenience init(source: any SegmentByteSource, sealed: Bool) throws(LogFormatError) {
        try self.init(source: source, sealed: sealed, opening: nil)
    }

    /// `opening`: the file header, footer and index head of a sealed local file, read on their own; they are read
    /// from the copies instead of `source`.
    private init(source: any SegmentByteSource, sealed: Bool, opening: SegmentOpeningBytes?) throws(LogFormatError) {
        let path = source.path
        self.path = path
        file = source
        let bytes = file.bytes
        do throws(LogFormatError) {
            try file.makePresent([
                0..<FormatConstants.fileHeaderSize, (bytes.count - FormatConstants.footerSize)..<bytes.count,
            ])
            header = try SegmentFileHeader.parse(opening?.header ?? bytes)
        } catch {
            throw error.at(path: path)
        }
        if sealed {
            let footer: SegmentFooter
            do throws(LogFormatError) {
                if let opening {
                    footer = try SegmentFooter.parse(last: opening.footer, fileSize: opening.fileSize)
                } else {
                    footer = try SegmentFooter.parse(fileBytes: bytes)
                }
            } catch {
                throw error.at(path: path)
            }
            guard footer.seal.nodeID == header.nodeID, footer.seal.sequence == header.sequence else {
                throw LogFormatError(
                    .integrity,
                    "footer names segment \(footer.seal.nodeID)/\(footer.seal.sequence) but the header names \(header.nodeID)/\(header.sequence)",
                    path: path, offset: bytes.count - FormatConstants.footerSize)
            }
            let indexStart = Int(footer.indexOffset)
            let indexEnd = indexStart + Int(footer.indexLength)
            let indexHeader: BlockHeader
            do throws(LogFormatError) {
                // The block header and the payload's first 8 bytes (version and counts): a version 2 index makes
                // its head present itself and the rest as look-ups read it; a version 1 index is read whole.
                try file.makePresent(
                    indexStart..<min(
                        indexEnd, indexStart + FormatConstants.blockHeaderSize + Self.indexHeadGuess(footer)))
                indexHeader = try BlockHeader.parse(
                    opening?.indexBytes(from: indexStart) ?? UnsafeRawBufferPointer(rebasing: bytes[indexStart...]))
            } catch {
                throw error.at(path: path, base: indexStart)
            }
            guard indexHeader.type == .index, indexHeader.codec == .none,
                indexHeader.totalSize == Int(footer.indexLength)
            else {
                throw LogFormatError(
                    .malformed,
                    "the block at the footer's index offset is not an uncompressed index block of the stated length",
                    path: path, offset: indexStart)
            }
            // A version 2 index checks its head and each section itself, on first use: opening a segment does not
            // read the whole index. Version 1 has only the block's checksum.
            let payloadStart = indexStart + FormatConstants.blockHeaderSize
            let head = opening?.indexBytes(from: payloadStart)
            let front =
                head.flatMap { $0.count >= 2 ? $0 : nil } ?? UnsafeRawBufferPointer(rebasing: bytes[payloadStart...])
            let sectioned =
                indexHeader.totalSize >= FormatConstants.blockHeaderSize + 2
                && UInt16(front[0]) | UInt16(front[1]) << 8 >= FormatConstants.indexVersion
            if !sectioned {
                do throws(LogFormatError) { try file.makePresent(indexStart..<indexEnd) } catch {
                    throw error.at(path: path, base: indexStart)
                }
            }
            let payload =
                sectioned
                ? UnsafeRawBufferPointer(rebasing: bytes[payloadStart..<indexStart + indexHeader.totalSize])
                : try Self.checkedPayload(bytes, blockAt: indexStart, indexHeader, what: "index", path: path)
            let view: SegmentIndexView
            do throws(LogFormatError) {
                view = try SegmentIndexView(
                    payload: payload, source: file, base: payloadStart, head: sectioned ? head : nil)
            } catch {
                throw error.at(path: path, base: indexStart + FormatConstants.blockHeaderSize)
            }
            guard view.blocks.count == Int(footer.blockCount),
                view.blocks.reduce(0, { $0 + UInt64($1.recordCount) }) == footer.seal.recordCount
            else {
                throw LogFormatError(
                    .malformed,
                    "the index's block table does not account for the footer's \(footer.blockCount) blocks and \(footer.seal.recordCount) records",
                    path: path, offset: indexStart)
            }
            for b in view.blocks
            where b.offset < UInt64(FormatConstants.fileHeaderSize) || b.offset >= footer.indexOffset {
                throw LogFormatError(
                    .malformed, "the index places a block at \(b.offset), outside the data area", path: path)
            }
            self.footer = footer
            self.index = view
            self.blocks = view.blocks
            self.recordCount = UInt32(footer.seal.recordCount)
            self.tailProblem = nil
            // The segment dictionary, when there is one, is the block between the last block and the index.
            if header.version >= FormatConstants.segmentVersionColumns, let last = view.blocks.last {
                let end = Int(last.offset) + FormatConstants.blockHeaderSize + Int(last.storedLength)
                self.dictionaryRange = end < indexStart ? end..<indexStart : nil
            } else {
                self.dictionaryRange = nil
            }
        } else {
            let scan = SegmentScanner.scan(bytes, decode: false)
            footer = nil
            index = nil
            blocks = scan.blocks
            recordCount = scan.recordCount
            tailProblem = scan.stop?.at(path: path)
            dictionaryRange = nil
        }
    }

    /// Bytes of a version 2 index payload's head (version, counts, block table, a directory of every field, head
    /// CRC) for a segment of `footer.blockCount` blocks: what a reader of the index needs first. An index with
    /// fewer fields has a shorter head (the surplus is the first section's start); one with more (none yet) makes
    /// the rest present when it is parsed.
    public static func indexHeadGuess(_ footer: SegmentFooter) -> Int {
        8 + Int(footer.blockCount) * FormatConstants.blockEntrySize + IndexField.allCases.count
            * FormatConstants.sectionEntrySize + 4
    }

    /// The bytes a reader opening a sealed segment reads first: the file header, and from the index's block header
    /// to the end of the index head (`indexHeadGuess`) and the footer. A remote store fetches these (after the
    /// footer) in one round.
    public static func openingRanges(_ footer: SegmentFooter, fileSize: Int) -> [Range<Int>] {
        let indexStart = Int(footer.indexOffset)
        let indexEnd = indexStart + Int(footer.indexLength)
        return [
            0..<FormatConstants.fileHeaderSize,
            indexStart..<min(indexEnd, indexStart + FormatConstants.blockHeaderSize + indexHeadGuess(footer)),
            (fileSize - FormatConstants.footerSize)..<fileSize,
        ]
    }

    /// Where the segment dictionary block lies (header and payload): the bytes between the last block and the
    /// index of a sealed version 2 segment. Nil when there are none (no dictionary; version 1; open).
    public let dictionaryRange: Range<Int>?
    private let dictionaryCache = Mutex<SegmentDictionary?>(nil)

    /// The segment dictionary, read and checked on first use and then kept; nil when the segment has none.
    package func segmentDictionary() throws(LogFormatError) -> SegmentDictionary? {
        guard let range = dictionaryRange else { return nil }
        if let hit = dictionaryCache.withLock({ $0 }) { return hit }
        try file.makePresent(range)
        let bytes = file.bytes
        guard range.upperBound <= bytes.count else {
            throw LogFormatError(
                .truncated, "the segment dictionary runs past the end of the file", path: path,
                offset: range.lowerBound)
        }
        let dictionary: SegmentDictionary
        do throws(LogFormatError) {
            dictionary = try SegmentDictionary.read(block: UnsafeRawBufferPointer(rebasing: bytes[range]))
        } catch {
            throw error.at(path: path, base: range.lowerBound)
        }
        dictionaryCache.withLock { $0 = dictionary }
        return dictionary
    }

    /// The stored payload of the block whose header is at `start`, after checking its CRC.
    private static func checkedPayload(
        _ bytes: UnsafeRawBufferPointer, blockAt start: Int, _ header: BlockHeader, what: String, path: String
    ) throws(LogFormatError) -> UnsafeRawBufferPointer {
        let payload = UnsafeRawBufferPointer(
            rebasing: bytes[start + FormatConstants.blockHeaderSize..<start + header.totalSize])
        guard Checksum.crc32(payload) == header.payloadCRC else {
            throw LogFormatError(
                .checksumMismatch, "\(what) checksum does not match", path: path,
                offset: start + FormatConstants.blockHeaderSize)
        }
        return payload
    }

    /// Trace runs of blocks already looked at by `ordinals(.traceID, …)`.
    private let traceRunCache = Mutex<[Int: [(TraceID, UInt32)]]>([:])

    /// The ascending ordinals of the records indexed under `key` in `field`, exactly (empty for an open segment).
    /// A version 2 index maps trace ids to blocks, and may map services, workloads and groups to blocks: those
    /// blocks' columns give the records. With `timeRange`, the records of a block whose times lie outside it may be
    /// left out (the caller keeps only records in the range), so such blocks are not read.
    public func ordinals(
        _ field: IndexField, key: [UInt8], cache: BlockCache? = nil, timeRange: ClosedRange<UInt64>? = nil
    ) throws(LogFormatError) -> [UInt32] {
        guard let index else { return [] }
        do throws(LogFormatError) {
            guard index.postingsMapToBlocks(field) else { return try index.postings(field, key: key) }
            guard field == .traceID else {
                return try termOrdinals(field, key: key, cache: cache, timeRange: timeRange)
            }
            guard key.count == 16, let id = TraceID(bytes: key) else { return [] }
            var out: [UInt32] = []
            for b in Set(try index.traceBlocks(id)).sorted() {
                for (runID, range) in try traceRuns(b, cache: cache) where runID == id {
                    out.append(contentsOf: range)
                }
            }
            return out
        } catch {
            // The view's offsets are relative to the index payload; block errors already name the file.
            throw error.path == nil
                ? error.at(path: path, base: Int(footer!.indexOffset) + FormatConstants.blockHeaderSize) : error
        }
    }

    /// The ordinals indexed under `key` in a string field whose index section lists blocks (services, workloads
    /// and groups of a version 2 index): the rows of each listed block whose columns (or records) hold the term.
    private func termOrdinals(
        _ field: IndexField, key: [UInt8], cache: BlockCache?, timeRange: ClosedRange<UInt64>?
    ) throws(LogFormatError) -> [UInt32] {
        guard let index, let term = String(validating: key, as: UTF8.self) else { return [] }
        let listed = try index.termBlocks(field, key: key).filter { b in
            timeRange.map { blocks[b].maxTime >= $0.lowerBound && blocks[b].minTime <= $0.upperBound } ?? true
        }
        // A segment in an object store: fetch the listed blocks in one go, as `records(at:)` does.
        if !(file is MappedFile) { try prefetchBlocks(listed) }
        var out: [UInt32] = []
        for b in listed {
            let first = blocks[b].firstOrdinal
            let rows = try withColumnBlock(b) { (stored, segment, rows) throws(LogFormatError) -> [Int] in
                try ColumnBlock.rowsIndexed(
                    stored, segment: segment, expectedRows: rows, field: field, key: term, payloadChecked: true)
            }
            if let rows {
                for row in rows { out.append(first + UInt32(row)) }
                continue
            }
            for (row, event) in try cachedEvents(b, cache: cache).enumerated()
            where IndexTerms.matches(event, field, .string(term)) {
                out.append(first + UInt32(row))
            }
        }
        return out
    }

    /// The ordinals of each trace run of block `b`, from its trace column (a column block) or its records.
    func traceRuns(_ b: Int, cache: BlockCache?) throws(LogFormatError) -> [(TraceID, Range<UInt32>)] {
        let first = blocks[b].firstOrdinal
        let runs: [(TraceID, UInt32)]
        if let hit = traceRunCache.withLock({ $0[b] }) {
            runs = hit
        } else {
            var built: [(TraceID, UInt32)] = []
            if isColumnBlock(b) {
                let (_, stored) = try checkedBlock(b)
                do throws(LogFormatError) {
                    built = try ColumnBlock.traceRuns(stored, payloadChecked: true).map { ($0.0, UInt32($0.1)) }
                } catch {
                    throw LogFormatError(
                        error.code, "column block \(b): \(error.message)", path: path,
                        offset: Int(blocks[b].offset) + FormatConstants.blockHeaderSize)
                }
            } else {
                for event in try cachedEvents(b, cache: cache) {
                    if let last = built.last, last.0 == event.traceID {
                        built[built.count - 1].1 += 1
                    } else {
                        built.append((event.traceID, 1))
                    }
                }
            }
            guard built.reduce(0, { $0 + Int($1.1) }) == Int(blocks[b].recordCount) else {
                throw LogFormatError(
                    .malformed, "block \(b)'s trace runs do not add up to its \(blocks[b].recordCount) records",
                    path: path, offset: Int(blocks[b].offset))
            }
            runs = built
            traceRunCache.withLock { $0[b] = built }
        }
        var out: [(TraceID, Range<UInt32>)] = []
        out.reserveCapacity(runs.count)
        var at = first
        for (id, n) in runs {
            out.append((id, at..<at + n))
            at += n
        }
        return out
    }

    /// Checks the checksum of every index section (opening checks only the index head; queries check the
    /// sections they use).
    public func checkIndex() throws(LogFormatError) {
        guard let index else { return }
        do throws(LogFormatError) { try index.checkSections() } catch {
            throw error.at(path: path, base: Int(footer!.indexOffset) + FormatConstants.blockHeaderSize)
        }
    }

    /// The file's bytes by part (for `auditq stats --layout`): file header, block headers, each column of the
    /// column blocks, row blocks, the index by section, and the footer. Reads and checks every block.
    public func layoutBytes() throws(LogFormatError) -> [(String, Int)] {
        var parts: [String: Int] = ["file header": FormatConstants.fileHeaderSize]
        for b in blocks.indices {
            let (header, stored) = try checkedBlock(b)
            parts["block headers", default: 0] += FormatConstants.blockHeaderSize
            if header.type == .column {
                let sizes: [(String, Int)]
                do throws(LogFormatError) { sizes = try ColumnBlock.storedSizes(stored) } catch {
                    throw error.at(path: path, base: Int(blocks[b].offset) + FormatConstants.blockHeaderSize)
                }
                for (name, n) in sizes { parts[name, default: 0] += n }
            } else {
                parts["row blocks", default: 0] += stored.count
            }
        }
        if let range = dictionaryRange {
            _ = try segmentDictionary()
            parts["block headers", default: 0] += FormatConstants.blockHeaderSize
            parts["segment dictionary"] = range.count - FormatConstants.blockHeaderSize
        }
        if let index, footer != nil {
            parts["block headers", default: 0] += FormatConstants.blockHeaderSize
            for (name, n) in index.partSizes { parts[name, default: 0] += n }
            parts["footer"] = FormatConstants.footerSize
        }
        return parts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    public var isSealed: Bool { footer != nil }

    /// The bytes of block `i`, header and stored payload, as the block table places them.
    public func blockRange(_ i: Int) -> Range<Int> {
        let start = Int(blocks[i].offset)
        return start..<(start + FormatConstants.blockHeaderSize + Int(blocks[i].storedLength))
    }

    /// Makes the blocks `indices` present in the source in one go (a remote source fetches them several at a
    /// time), with the segment dictionary their columns may name; a local file has them already.
    public func prefetchBlocks(_ indices: some Sequence<Int>) throws(LogFormatError) {
        var ranges = indices.map(blockRange)
        if !ranges.isEmpty, let dictionaryRange, dictionaryCache.withLock({ $0 == nil }) {
            ranges.append(dictionaryRange)
        }
        try file.makePresent(ranges)
    }
    /// The blocks holding `ordinals` (ascending) whose time range meets `timeRange`: what `records(at:)` reads.
    public func blocks(holding ordinals: [UInt32], timeRange: ClosedRange<UInt64>?) -> [Int] {
        var wanted: [Int] = []
        for o in ordinals {
            if let b = blockIndex(forOrdinal: o), wanted.last != b,
                timeRange.map({ blocks[b].maxTime >= $0.lowerBound && blocks[b].minTime <= $0.upperBound }) ?? true
            {
                wanted.append(b)
            }
        }
        return wanted
    }

    /// The blocks whose time range meets `timeRange` (all without one): what `scan` reads.
    public func blocks(overlapping timeRange: ClosedRange<UInt64>?) -> [Int] {
        blocks.indices.filter { b in
            timeRange.map { blocks[b].maxTime >= $0.lowerBound && blocks[b].minTime <= $0.upperBound } ?? true
        }
    }

    public var nodeID: NodeID { header.nodeID }
    public var sequence: UInt64 { header.sequence }

    /// Block `i`'s header and stored payload, after checking both against the block table and the checksum.
    /// Block `i`'s header, checked against the block table, and its stored payload, whose CRC is checked unless
    /// `payloadCRC` is false (a column block read column by column: each column read is checked by its own CRC).
    private func checkedBlock(_ i: Int, payloadCRC: Bool = true) throws(LogFormatError) -> (
        BlockHeader, UnsafeRawBufferPointer
    ) {
        let location = blocks[i]
        let start = Int(location.offset)
        try file.makePresent(blockRange(i))
        let bytes = file.bytes
        guard start + FormatConstants.blockHeaderSize <= bytes.count else {
            throw LogFormatError(.truncated, "block \(i) starts past the end of the file", path: path, offset: start)
        }
        let header: BlockHeader
        do throws(LogFormatError) {
            header = try BlockHeader.parse(UnsafeRawBufferPointer(rebasing: bytes[start...]))
        } catch {
            throw error.at(path: path, base: start)
        }
        let typeAllowed =
            header.type == .data
            || (header.type == .column && self.header.version >= FormatConstants.segmentVersionColumns
                && header.codec == .none)
        guard typeAllowed, header.firstOrdinal == location.firstOrdinal,
            header.recordCount == location.recordCount, header.storedLength == location.storedLength,
            header.rawLength == location.rawLength, header.minTime == location.minTime,
            header.maxTime == location.maxTime, start + header.totalSize <= bytes.count
        else {
            throw LogFormatError(
                .malformed, "block \(i) does not match the block table (type, ordinal, count, lengths or times)",
                path: path, offset: start)
        }
        // A sealed file's bytes do not change: a block whose checksum this reader checked once is not hashed again
        // (activity reads each of the user's blocks up to three times: the user's rows, trace runs, trace rows).
        let checkedBefore = isSealed && checkedBlocks.withLock { $0.contains(i) }
        guard !checkedBefore, payloadCRC || header.type != .column else {
            return (
                header,
                UnsafeRawBufferPointer(
                    rebasing: bytes[start + FormatConstants.blockHeaderSize..<start + header.totalSize])
            )
        }
        let stored = try Self.checkedPayload(bytes, blockAt: start, header, what: "block \(i) payload", path: path)
        if isSealed { checkedBlocks.withLock { _ = $0.insert(i) } }
        return (header, stored)
    }

    /// Blocks of a sealed segment whose payload checksum was checked (`checkedBlock`).
    private let checkedBlocks = Mutex<Set<Int>>([])

    /// Whether block `i` holds columns (else rows), from its header; nil when the header is unreadable.
    public func isColumnBlock(_ i: Int) -> Bool {
        guard header.version >= FormatConstants.segmentVersionColumns else { return false }
        let start = Int(blocks[i].offset)
        // Unreadable now: the read of the block that follows reports why.
        guard (try? file.makePresent(blockRange(i))) != nil else { return false }
        let bytes = file.bytes
        guard start + FormatConstants.blockHeaderSize <= bytes.count else { return false }
        return bytes[start + 4] == FormatConstants.BlockType.column.rawValue
    }

    /// The events at `rows` (ascending, within the block) of block `i`.
    public func blockEvents(_ i: Int, rows: [Int]) throws(LogFormatError) -> [AuditEvent] {
        let (header, stored) = try checkedBlock(i)
        guard header.type == .column else {
            let all = try blockEvents(i, header, stored)
            return rows.map { all[$0] }
        }
        let segment = try segmentDictionary()
        do throws(LogFormatError) {
            return try ColumnBlock.decode(stored, rows: rows, segment: segment, payloadChecked: true)
        } catch {
            throw LogFormatError(
                error.code, "column block \(i): \(error.message)", path: path,
                offset: Int(blocks[i].offset) + FormatConstants.blockHeaderSize)
        }
    }

    /// Calls `body` with the stored payload of column block `i` (checked as any read of it is), the segment
    /// dictionary its columns may name and the row count its header gives; nil, without calling `body`, for a
    /// row block. Errors from `body` name the block. With `payloadCRC` false the payload's CRC is not checked:
    /// for a `body` that reads only some columns through `ColumnBlock.columns`, which checks each one's own CRC
    /// (columns.md, "Reading some columns").
    package func withColumnBlock<R>(
        _ i: Int, payloadCRC: Bool = true,
        _ body: (UnsafeRawBufferPointer, SegmentDictionary?, Int) throws(LogFormatError) -> R
    ) throws(LogFormatError) -> R? {
        let (header, stored) = try checkedBlock(i, payloadCRC: payloadCRC)
        guard header.type == .column else { return nil }
        let segment = try segmentDictionary()
        do throws(LogFormatError) {
            return try body(stored, segment, Int(header.recordCount))
        } catch {
            throw LogFormatError(
                error.code, "column block \(i): \(error.message)", path: path,
                offset: Int(blocks[i].offset) + FormatConstants.blockHeaderSize)
        }
    }

    /// The events of block `i`, in ordinal order.
    public func blockEvents(_ i: Int) throws(LogFormatError) -> [AuditEvent] {
        let (header, stored) = try checkedBlock(i)
        return try blockEvents(i, header, stored)
    }

    private func blockEvents(_ i: Int, _ header: BlockHeader, _ stored: UnsafeRawBufferPointer) throws(LogFormatError)
        -> [AuditEvent]
    {
        guard header.type == .column else {
            var out: [AuditEvent] = []
            try forEachRecord(inBlock: i) { (_, record) throws(LogFormatError) in
                out.append(try RecordCodec.decode(record))
            }
            return out
        }
        let events: [AuditEvent]
        let segment = try segmentDictionary()
        do throws(LogFormatError) {
            events = try ColumnBlock.decode(stored, segment: segment, payloadChecked: true)
        } catch {
            throw LogFormatError(
                error.code, "column block \(i): \(error.message)", path: path,
                offset: Int(blocks[i].offset) + FormatConstants.blockHeaderSize)
        }
        guard events.count == Int(header.recordCount) else {
            throw LogFormatError(
                .malformed, "column block \(i) holds \(events.count) records, its header says \(header.recordCount)",
                path: path, offset: Int(blocks[i].offset))
        }
        return events
    }

    /// The payload of block `i` as rows (`(uvarint length | canonical record)*`), after checking its header and
    /// checksum: a row block decompressed, a column block rebuilt into the canonical bytes its records were
    /// sealed with.
    public func blockPayload(_ i: Int) throws(LogFormatError) -> [UInt8] {
        let (header, stored) = try checkedBlock(i)
        if header.type == .column {
            // Straight from the columns to the canonical bytes (ColumnBlock.canonicalRows): the same bytes and
            // checks as encoding each decoded event, without building the events.
            var w = BinaryWriter(capacity: Int(header.rawLength))
            let segment = try segmentDictionary()
            let rows: Int
            do throws(LogFormatError) {
                rows = try ColumnBlock.canonicalRows(stored, segment: segment, payloadChecked: true, into: &w)
            } catch {
                throw LogFormatError(
                    error.code, "column block \(i): \(error.message)", path: path,
                    offset: Int(blocks[i].offset) + FormatConstants.blockHeaderSize)
            }
            guard rows == Int(header.recordCount) else {
                throw LogFormatError(
                    .malformed, "column block \(i) holds \(rows) records, its header says \(header.recordCount)",
                    path: path, offset: Int(blocks[i].offset))
            }
            try checkRebuiltLength(w.count, block: i, header)
            return w.bytes
        }
        var out: [UInt8] = []
        do throws(LogFormatError) {
            try BlockCompression.decompress(stored, codec: header.codec, rawLength: Int(header.rawLength), into: &out)
        } catch {
            throw error.at(path: path, base: Int(blocks[i].offset) + FormatConstants.blockHeaderSize)
        }
        return out
    }

    /// `blockPayload(i)` the long way, decoding a column block into events and encoding each: the reference that
    /// tests and the fuzz harness hold the transcoder to (same bytes, same errors).
    package func blockPayloadViaEvents(_ i: Int) throws(LogFormatError) -> [UInt8] {
        let (header, stored) = try checkedBlock(i)
        guard header.type == .column else { return try blockPayload(i) }
        var w = BinaryWriter(capacity: Int(header.rawLength))
        var record = BinaryWriter(capacity: 4096)
        for event in try blockEvents(i, header, stored) {
            record.bytes.removeAll(keepingCapacity: true)
            _ = RecordCodec.encode(event, into: &record)
            w.uvarint(record.count)
            w.raw(record.bytes)
        }
        try checkRebuiltLength(w.count, block: i, header)
        return w.bytes
    }

    /// A column block's records, rebuilt as rows, must take the raw length its header states.
    private func checkRebuiltLength(_ count: Int, block i: Int, _ header: BlockHeader) throws(LogFormatError) {
        guard count == Int(header.rawLength) else {
            throw LogFormatError(
                .malformed, "column block \(i) rebuilds \(count) bytes of records, its header says \(header.rawLength)",
                path: path, offset: Int(blocks[i].offset))
        }
    }

    /// Calls `body` with each record's ordinal and canonical bytes in block `i`.
    public func forEachRecord(
        inBlock i: Int, payload: [UInt8]? = nil,
        _ body: (UInt32, UnsafeRawBufferPointer) throws(LogFormatError) -> Void
    ) throws(LogFormatError) {
        let raw: [UInt8]
        if let payload { raw = payload } else { raw = try blockPayload(i) }
        let location = blocks[i]
        let path = self.path
        try raw.withBytes { (b) throws(LogFormatError) in
            var it = BlockRecordIterator(payload: b, recordCount: Int(location.recordCount))
            var ordinal = location.firstOrdinal
            while let record = it.next() {
                try body(ordinal, record)
                ordinal += 1
            }
            do throws(LogFormatError) { try it.finish() } catch {
                throw error.at(path: path, base: Int(location.offset))
            }
        }
    }

    /// Decodes the records at `ordinals` (ascending), optionally keeping only starts within `timeRange`.
    public func records(
        at ordinals: [UInt32], timeRange: ClosedRange<UInt64>? = nil, cache: BlockCache? = nil
    ) throws(LogFormatError) -> [StoredRecord] {
        var out: [StoredRecord] = []
        try records(at: ordinals, timeRange: timeRange, cache: cache, into: &out)
        return out
    }

    /// As `records(at:timeRange:cache:)`, appending to `out` (saves copying results from many segments).
    public func records(
        at ordinals: [UInt32], timeRange: ClosedRange<UInt64>? = nil, cache: BlockCache? = nil,
        into out: inout [StoredRecord]
    ) throws(LogFormatError) {
        out.reserveCapacity(out.count + ordinals.count)
        if !(file is MappedFile) { try prefetchBlocks(blocks(holding: ordinals, timeRange: timeRange)) }
        try forEachBlock(holding: ordinals, timeRange: timeRange) { (b, location, wanted) throws(LogFormatError) in
            if isColumnBlock(b) {
                let rows = wanted.map { Int($0 - location.firstOrdinal) }
                var events: [AuditEvent]
                if let hit = cache.flatMap({ isSealed ? $0.getEvents(cacheKey(b)) : nil }) {
                    events = rows.map { hit[$0] }
                } else if rows.count * 4 >= Int(location.recordCount), cache?.keepsEvents ?? true {
                    let all = try cachedEvents(b, cache: cache)
                    events = rows.map { all[$0] }
                } else {
                    // A few rows of the block: build only those (not cached: a later query may want others).
                    events = try blockEvents(b, rows: rows)
                }
                // Moved into the records, not copied (a copy retains each of an event's references).
                events.reverse()
                for ordinal in wanted {
                    let event = events.removeLast()
                    if let timeRange, !timeRange.contains(event.startTimeUnixNano) { continue }
                    out.append(StoredRecord(event: event, location: self.location(ordinal)))
                }
                return
            }
            let payload = try cachedPayload(b, cache: cache)
            var w = 0
            try forEachRecord(inBlock: b, payload: payload) { (ordinal, record) throws(LogFormatError) in
                guard w < wanted.count, ordinal == wanted[w] else { return }
                w += 1
                if let timeRange, let start = RecordCodec.peekStartTime(record), !timeRange.contains(start) { return }
                out.append(try decodeRecord(record, ordinal: ordinal, block: b))
            }
        }
    }

    /// The records at `ordinals` (ascending) whose start lies in `timeRange`, as handles appended to `out`: rows
    /// of column blocks read for output without building events (every row of each block still checked), records
    /// of row blocks decoded as `records(at:)` decodes them. A block named in `reusing` (block number → its index in
    /// `out.blocks`, from `rowHandles(withTraceRunsOf:…)`) that holds all the rows asked of it is not read again.
    package func rowHandles(
        at ordinals: [UInt32], timeRange: ClosedRange<UInt64>? = nil, cache: BlockCache? = nil,
        into out: inout RecordHandles, reusing: [Int: Int32] = [:]
    ) throws(LogFormatError) {
        if !(file is MappedFile) {
            try prefetchBlocks(blocks(holding: ordinals, timeRange: timeRange).filter { reusing[$0] == nil })
        }
        var decoded: [StoredRecord] = []
        try forEachBlock(holding: ordinals, timeRange: timeRange) { (b, location, wanted) throws(LogFormatError) in
            let rows = wanted.map { Int($0 - location.firstOrdinal) }
            if let k = reusing[b],
                out.appendRows(
                    rows, of: k, timeRange: timeRange, node: header.nodeID, sequence: header.sequence,
                    firstOrdinal: location.firstOrdinal)
            {
                return
            }
            if let whole = try cachedColumnRows(b, cache: cache) {
                let k = out.append(block: whole)
                guard
                    out.appendRows(
                        rows, of: k, timeRange: timeRange, node: header.nodeID, sequence: header.sequence,
                        firstOrdinal: location.firstOrdinal)
                else {
                    throw LogFormatError(
                        .malformed, "the index names rows past the end of column block \(b)", path: path,
                        offset: Int(location.offset))
                }
                return
            }
            if let read = try columnRows(b, rows, timeRange: timeRange) {
                out.append(read, node: header.nodeID, sequence: header.sequence, firstOrdinal: location.firstOrdinal)
                return
            }
            decoded.removeAll(keepingCapacity: true)
            try records(at: wanted, timeRange: timeRange, cache: cache, into: &decoded)
            for record in decoded { out.append(record) }
        }
    }

    /// Rows `rows` (ascending row numbers) of column block `b` whose start lies in `timeRange`, read for output with
    /// every row of the block checked (`ColumnBlock.rows`); nil for a row block.
    func columnRows(_ b: Int, _ rows: [Int], timeRange: ClosedRange<UInt64>?) throws(LogFormatError) -> ColumnRows? {
        try withColumnBlock(b) { (payload, segment, count) throws(LogFormatError) -> ColumnRows in
            try ColumnBlock.rows(
                payload, rows: rows, segment: segment, expectedRows: count, timeRange: timeRange,
                payloadChecked: true)
        }
    }

    /// Every row of column block `b` read for output, through `cache` when it keeps decoded blocks (a long-lived
    /// store: a later query takes its rows from there without reading the block again); nil without such a cache,
    /// for an unsealed segment and for a row block.
    func cachedColumnRows(_ b: Int, cache: BlockCache?) throws(LogFormatError) -> ColumnRows? {
        guard let cache, cache.keepsEvents, isSealed, isColumnBlock(b) else { return nil }
        let key = cacheKey(b)
        if let hit = cache.getOutputRows(key) { return hit }
        guard let whole = try columnRows(b, Array(0..<Int(blocks[b].recordCount)), timeRange: nil) else { return nil }
        cache.putOutputRows(key, whole)
        return whole
    }

    /// Calls `body` with each block holding some of `ordinals` (ascending), its location and the ordinals it holds,
    /// skipping blocks outside `timeRange`. An ordinal no block holds is a malformed index.
    func forEachBlock(
        holding ordinals: [UInt32], timeRange: ClosedRange<UInt64>?,
        _ body: (Int, BlockLocation, [UInt32]) throws(LogFormatError) -> Void
    ) throws(LogFormatError) {
        var k = 0
        while k < ordinals.count {
            guard let b = blockIndex(forOrdinal: ordinals[k]) else {
                throw LogFormatError(
                    .malformed, "the index names record \(ordinals[k]), which no block holds", path: path)
            }
            let location = blocks[b]
            let end = location.firstOrdinal + location.recordCount
            var wanted: [UInt32] = []
            while k < ordinals.count && ordinals[k] < end {
                wanted.append(ordinals[k])
                k += 1
            }
            if let timeRange, location.maxTime < timeRange.lowerBound || location.minTime > timeRange.upperBound {
                continue
            }
            try body(b, location, wanted)
        }
    }

    /// Every record whose start lies in `timeRange` (all when nil) and for which `filter` holds.
    public func scan(
        timeRange: ClosedRange<UInt64>? = nil, cache: BlockCache? = nil, filter: (AuditEvent) -> Bool = { _ in true }
    ) throws(LogFormatError) -> [StoredRecord] {
        var out: [StoredRecord] = []
        if !(file is MappedFile) { try prefetchBlocks(blocks(overlapping: timeRange)) }
        for (b, location) in blocks.enumerated() {
            if let timeRange, location.maxTime < timeRange.lowerBound || location.minTime > timeRange.upperBound {
                continue
            }
            if isColumnBlock(b) {
                for (row, event) in try cachedEvents(b, cache: cache).enumerated() {
                    if let timeRange, !timeRange.contains(event.startTimeUnixNano) { continue }
                    if filter(event) {
                        out.append(
                            StoredRecord(event: event, location: self.location(location.firstOrdinal + UInt32(row))))
                    }
                }
                continue
            }
            let payload = try cachedPayload(b, cache: cache)
            try forEachRecord(inBlock: b, payload: payload) { (ordinal, record) throws(LogFormatError) in
                if let timeRange, let start = RecordCodec.peekStartTime(record), !timeRange.contains(start) { return }
                let stored = try decodeRecord(record, ordinal: ordinal, block: b)
                if filter(stored.event) { out.append(stored) }
            }
        }
        return out
    }

    /// Decodes one record of block `b`, naming the file, block and record if it is damaged.
    private func decodeRecord(_ record: UnsafeRawBufferPointer, ordinal: UInt32, block b: Int) throws(LogFormatError)
        -> StoredRecord
    {
        do throws(LogFormatError) {
            return StoredRecord(
                event: try RecordCodec.decode(record),
                location: RecordLocation(nodeID: header.nodeID, segmentSequence: header.sequence, ordinal: ordinal))
        } catch {
            throw LogFormatError(
                error.code, "record \(ordinal) in block \(b): \(error.message)", path: path,
                offset: Int(blocks[b].offset))
        }
    }

    public func blockIndex(forOrdinal ordinal: UInt32) -> Int? {
        if let index { return index.blockIndex(forOrdinal: ordinal) }
        return blocks.firstIndex { ordinal >= $0.firstOrdinal && ordinal < $0.firstOrdinal + $0.recordCount }
    }

    private func location(_ ordinal: UInt32) -> RecordLocation {
        RecordLocation(nodeID: header.nodeID, segmentSequence: header.sequence, ordinal: ordinal)
    }

    private func cacheKey(_ b: Int) -> BlockCache.Key {
        BlockCache.Key(
            nodeID: header.nodeID, sequence: header.sequence, firstOrdinal: blocks[b].firstOrdinal,
            recordCount: blocks[b].recordCount)
    }

    /// The decoded events of block `b`, through `cache` for a sealed segment.
    private func cachedEvents(_ b: Int, cache: BlockCache?) throws(LogFormatError) -> [AuditEvent] {
        guard let cache, isSealed else { return try blockEvents(b) }
        let key = cacheKey(b)
        if let hit = cache.getEvents(key) { return hit }
        let events = try blockEvents(b)
        cache.putEvents(key, events)
        return events
    }

    private func cachedPayload(_ b: Int, cache: BlockCache?) throws(LogFormatError) -> [UInt8] {
        guard let cache, isSealed else { return try blockPayload(b) }
        let key = BlockCache.Key(
            nodeID: header.nodeID, sequence: header.sequence, firstOrdinal: blocks[b].firstOrdinal,
            recordCount: blocks[b].recordCount)
        if let hit = cache.get(key) { return hit }
        let payload = try blockPayload(b)
        cache.put(key, payload)
        return payload
    }
}
