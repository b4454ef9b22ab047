// Sealing by lay-out (docs/format/segment.md, "Version 2"): the open segment is a write-ahead log in arrival
// order; sealing reads it back, orders its records by user and trace (`SealOrder`), writes them as column blocks
// into `<seq>.seg.tmp`, seals that, and renames it into place. The write-ahead log is removed only after the
// rename is durable, so a crash at any point is recovered by sealing again from it: the same records in the
// same order give the same root.
#if canImport(Glibc)
    import Glibc
#endif

/// What a lay-out produced: the sealed file's catalog facts.
struct ColumnSealResult {
    var seal: SegmentSeal
    var blockCount: UInt32
    var fileSize: UInt64
    /// Blocks kept as rows because their columns did not give back the exact canonical bytes (never expected;
    /// a safety net that keeps the data whole if the column codec ever meets a value it cannot carry).
    var rowBlocks: Int
}

/// The records of a write-ahead log, canonical bytes back to back, in arrival order.
struct WALRecords {
    var bytes: [UInt8] = []
    /// Record `i` is `bytes[starts[i]..<starts[i + 1]]`.
    var starts: [Int] = [0]
    var count: Int { starts.count - 1 }

    func withRecord<R, E: Error>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let range = starts[i]..<starts[i + 1]
        let result: Result<R, E> = bytes.withUnsafeBytes { b in
            Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(rebasing: b[range])) }
        }
        return try result.get()
    }

    /// Reads the valid blocks of a write-ahead log (the file must already be cut to its last valid block).
    static func read(path: String) throws(LogFormatError) -> (header: SegmentFileHeader, records: WALRecords) {
        var out = WALRecords()
        // Sized once from the block headers: grown by appending, the bytes of a 128 MiB segment were copied into a
        // 256 MiB buffer at the last doubling, old and new alive together.
        let header = try forEachRecord(
            path: path,
            sized: { rawBytes, records in
                out.bytes.reserveCapacity(rawBytes)
                out.starts.reserveCapacity(records + 1)
            },
            { (_, record) throws(LogFormatError) in
                out.bytes.append(contentsOf: record)
                out.starts.append(out.bytes.count)
            })
        return (header, out)
    }

    /// The file header of the log at `path`.
    static func header(path: String) throws(LogFormatError) -> SegmentFileHeader {
        let fd = try FileIO.open(path, flags: O_RDONLY)
        defer { FileIO.close(fd) }
        let size = try FileIO.fileSize(fd, path: path)
        return try FileIO.pread(fd, count: min(size, FormatConstants.fileHeaderSize), at: 0, path: path)
            .withBytes { (b) throws(LogFormatError) in try SegmentFileHeader.parse(b) }
    }

    /// Calls `visit` with each record of the log at `path` (its arrival index and bytes), after telling `sized`
    /// the raw bytes and records its block headers claim. The file is read a block at a time, so a caller holds
    /// only what it keeps: the collector's memory peaks at seals (BENCHMARKS.md).
    static func forEachRecord(
        path: String, sized: (_ rawBytes: Int, _ records: Int) -> Void = { _, _ in },
        _ visit: (Int, UnsafeRawBufferPointer) throws(LogFormatError) -> Void
    ) throws(LogFormatError) -> SegmentFileHeader {
        let fd = try FileIO.open(path, flags: O_RDONLY)
        defer { FileIO.close(fd) }
        let size = try FileIO.fileSize(fd, path: path)
        let header = try FileIO.pread(fd, count: min(size, FormatConstants.fileHeaderSize), at: 0, path: path)
            .withBytes { (b) throws(LogFormatError) in try SegmentFileHeader.parse(b) }
        let blocks = try blockSpans(fd, size: size, path: path)
        sized(blocks.rawBytes, blocks.records)
        var next: UInt32 = 0
        for span in blocks.spans {
            let block = try FileIO.pread(fd, count: span.count, at: span.lowerBound, path: path)
            let scan = block.withUnsafeBytes { b in
                SegmentScanner.scan(
                    b, from: 0, firstOrdinal: next, decode: true,
                    visit: { (_, ordinal, record) throws(LogFormatError) in try visit(ordinal, record) })
            }
            if let stop = scan.stop {
                throw LogFormatError(
                    stop.code, "write-ahead log: \(stop.message)", path: path,
                    offset: stop.offset.map { span.lowerBound + $0 })
            }
            next = scan.recordCount
            if scan.reachedIndex { break }
        }
        return header
    }

    /// Where each block of the log lies, from its header alone, with the raw bytes and records the headers
    /// claim. A header that does not parse, or a block cut off, ends the list with the bytes its scan needs to
    /// say what is wrong.
    private static func blockSpans(_ fd: Int32, size: Int, path: String) throws(LogFormatError) -> (
        spans: [Range<Int>], rawBytes: Int, records: Int
    ) {
        var spans: [Range<Int>] = []
        var rawBytes = 0
        var records = 0
        var offset = FormatConstants.fileHeaderSize
        while offset < size {
            let head = try FileIO.pread(
                fd, count: min(FormatConstants.blockHeaderSize, size - offset), at: offset, path: path)
            guard let h = try? head.withBytes({ (b) throws(LogFormatError) in try BlockHeader.parse(b) }) else {
                spans.append(offset..<(offset + head.count))
                break
            }
            guard h.type != .index, h.totalSize <= size - offset else {
                spans.append(offset..<(h.type == .index ? offset + head.count : size))
                break
            }
            spans.append(offset..<(offset + h.totalSize))
            rawBytes += Int(h.rawLength)
            records += Int(h.recordCount)
            offset += h.totalSize
        }
        return (spans, rawBytes, records)
    }
}

enum ColumnSealer {
    /// A block is cut at this many canonical bytes even inside a trace, so it stays well inside what readers
    /// accept. (Rows per block are the writer's `columnBlockRows`; a trace is cut only past four times that.)
    static let maxBlockRawBytes = 8 << 20

    /// `maxBlockRawBytes` of the archive tier's blocks (`SegmentArchiver`): larger blocks hold a string, shape or
    /// resource that their rows share once where smaller ones each held it; half of what readers accept.
    static let maxArchiveBlockRawBytes = 32 << 20

    /// A write-ahead log whose records take more bytes than this is laid out in parts of about this many
    /// (`SealInput`): half a full segment (`WriterOptions.maxSegmentRawBytes`), so a full one is read three
    /// times instead of once and its seal holds half its records at a time.
    static let recordsInMemory = 64 << 20

    /// The sealed order of `records` and the Merkle root over it, without writing anything: what sealing
    /// would produce, for recovery to compare a sealed file against its write-ahead log.
    static func order(of records: WALRecords) throws(LogFormatError) -> [Int] {
        var fields: [SealOrderFields] = []
        fields.reserveCapacity(records.count)
        for i in 0..<records.count {
            fields.append(try records.withRecord(i) { (r) throws(LogFormatError) in try SealOrderFields.peek(r) })
        }
        return SealOrder.permutation(fields)
    }

    static func root(of records: WALRecords, order: [Int]) throws(LogFormatError) -> Digest32 {
        var merkle = MerkleAccumulator()
        for i in order {
            merkle.append(records.withRecord(i) { MerkleTree.leafHash($0) })
        }
        return merkle.root
    }

    /// Lays out the write-ahead log at `walPath` as a sealed version 2 segment at `targetPath`, through
    /// `targetPath + ".tmp"`. Leaves the write-ahead log alone: the caller removes it once this returns.
    /// `hints`: what the writer kept of the log's records (`SealHints`), so they are neither hashed nor read for
    /// their order again; the file is the same without them. Throws `.integrity` when the log does not hold the
    /// records the hints describe.
    static func seal(
        walPath: String, targetPath: String, directory: String, codec: CompressionCodec, blockRows: Int,
        previous: (sequence: UInt64, root: Digest32), signer: SealSigner?, faults: (any WriteFaults)?,
        compactIndexTerms: Bool = true, countRollup: Bool = true, recordsInMemory: Int = recordsInMemory,
        hints: consuming SealHints? = nil, flushBytes: Int = LaidOut.flushBytes
    ) throws(LogFormatError) -> ColumnSealResult {
        let input = try SealInput.read(path: walPath, budget: recordsInMemory, hints: hints)
        guard !input.order.isEmpty else {
            throw LogFormatError(.malformed, "write-ahead log holds no records to seal", path: walPath)
        }
        let tmpPath = targetPath + ".tmp"
        _ = unlink(tmpPath)
        let fd = try FileIO.open(tmpPath, flags: O_RDWR | O_CREAT | O_TRUNC)
        do {
            let result = try write(
                input, walPath: walPath, recordsInMemory: recordsInMemory, fd: fd, path: tmpPath, codec: codec,
                blockRows: blockRows, previous: previous, signer: signer, faults: faults,
                compactIndexTerms: compactIndexTerms, countRollup: countRollup, flushBytes: flushBytes)
            try FileIO.fsync(fd, path: tmpPath)
            FileIO.close(fd)
            try FileIO.renameDurably(tmpPath, targetPath, directory: directory)
            return result
        } catch {
            FileIO.close(fd)
            _ = unlink(tmpPath)
            throw error
        }
    }

    private static func write(
        _ input: consuming SealInput, walPath: String, recordsInMemory: Int, fd: Int32, path: String,
        codec: CompressionCodec, blockRows: Int, previous: (sequence: UInt64, root: Digest32), signer: SealSigner?,
        faults: (any WriteFaults)?, compactIndexTerms: Bool, countRollup: Bool, flushBytes: Int
    ) throws(LogFormatError) -> ColumnSealResult {
        let walHeader = input.header
        let recordCount = input.order.count
        let header = SegmentFileHeader(
            version: FormatConstants.segmentVersionColumns, nodeID: walHeader.nodeID, sequence: walHeader.sequence,
            createdUnixNano: walHeader.createdUnixNano)
        // Blocks go to the file as they are made, so the seal does not hold its whole output beside a part of
        // records (17 MB of a full segment, at the collector's memory peak: BENCHMARKS.md).
        // Room for a flush's worth and the block that passes it (tests flush never, or after every block).
        var body = LaidOut(header: header, capacity: min(flushBytes, LaidOut.flushBytes) + (1 << 20))
        body.file = LaidOut.File(fd: fd, path: path, faults: faults, flushBytes: flushBytes)
        body.index = IndexBuilder(
            version: countRollup ? FormatConstants.indexVersionRollup : FormatConstants.indexVersion,
            compactTerms: compactIndexTerms)
        // Consumed: the records (up to `maxSegmentRawBytes`) are freed before the index and footer are built.
        try input.addBlocks(
            to: &body, path: walPath, budget: recordsInMemory, codec: codec, level: 6, blockRows: blockRows)
        try body.addDictionary(codec: codec, level: 6)
        let trailer = try SealTrailer.build(
            index: body.index, nodeID: header.nodeID, sequence: header.sequence, recordCount: UInt32(recordCount),
            minTime: body.minTime, maxTime: body.maxTime, root: body.merkle.root, previous: previous, signer: signer,
            indexOffset: body.position)
        body.out.raw(trailer.bytes)
        try body.flush()
        return ColumnSealResult(
            seal: trailer.seal, blockCount: UInt32(body.index.blocks.count), fileSize: UInt64(body.position),
            rowBlocks: body.rowBlocks)
    }

    /// A version 2 file being built: the header, then column blocks, with the index, Merkle state and times of
    /// what was added. Built in memory (`out`) and, when `file` is set, written to it a few blocks at a time.
    struct LaidOut {
        /// Where the bytes go once `out` holds `flushBytes`: nil keeps the whole file in `out`.
        struct File {
            var fd: Int32
            var path: String
            var faults: (any WriteFaults)?
            var flushBytes: Int
        }
        static let flushBytes = 4 << 20

        var out: BinaryWriter
        var file: File? = nil
        /// Bytes of the file already written to `file` (and gone from `out`).
        private(set) var flushed = 0
        /// The file's size so far: where the next byte added to `out` lands.
        var position: Int { flushed + out.count }
        var merkle = MerkleAccumulator()
        var index = IndexBuilder(version: FormatConstants.indexVersionRollup)
        var minTime = UInt64.max
        var maxTime = UInt64.min
        var rowBlocks = 0
        var recordCount = 0
        /// Strings shared by the blocks written so far (docs/format/dictionary.md).
        var dictionary = SegmentDictionaryBuilder()
        /// Whether blocks share strings through a segment dictionary (off: the layout of version 2 segments
        /// written before the dictionary, which readers keep reading).
        var sharesStrings = true
        /// A block is cut at this many canonical bytes even inside a trace.
        var maxBlockRaw = ColumnSealer.maxBlockRawBytes
        /// The rows rebuilt from the last column block, to compare with its records (reused across blocks).
        var rebuilt = BinaryWriter(capacity: 1 << 20)
        /// The resources of the records decoded so far, shared by the events that have them.
        var resources = SharedResources()

        init(header: SegmentFileHeader, capacity: Int = 1 << 20) {
            out = BinaryWriter(capacity: capacity)
            out.raw(header.encoded())
        }

        /// Adds `records` in `order` as blocks of about `blockRows` rows, cut at trace boundaries, then the segment
        /// dictionary block when the blocks share strings. Called once: the index follows.
        mutating func add(
            records: WALRecords, order: [Int], codec: CompressionCodec, level: Int32, blockRows: Int
        ) throws(LogFormatError) {
            try addBlocks(records: records, order: order, codec: codec, level: level, blockRows: blockRows)
            try addDictionary(codec: codec, level: level)
        }

        /// Adds `records` in `order` as blocks (see `add`), after the blocks added before: called once per part
        /// of a segment laid out in parts, each part ending at a block's end.
        /// `leaves`: each record's Merkle leaf, indexed as `records`, when known; nil: hashed here.
        mutating func addBlocks(
            records: WALRecords, order: [Int], leaves: [Digest32]? = nil, codec: CompressionCodec, level: Int32,
            blockRows: Int
        ) throws(LogFormatError) {
            var k = 0
            while k < order.count {
                let end = blockEnd(records: records, order: order, from: k, rows: blockRows, maxRawBytes: maxBlockRaw)
                try addBlock(records: records, order: order[k..<end], leaves: leaves, codec: codec, level: level)
                if let file, out.count >= file.flushBytes { try flush() }
                k = end
            }
        }

        /// Adds the segment dictionary block when the blocks share strings: after the last block.
        mutating func addDictionary(codec: CompressionCodec, level: Int32) throws(LogFormatError) {
            if dictionary.count > 0 {
                out.raw(try SegmentDictionary.block(dictionary.payload(), codec: codec, level: level))
            }
        }

        /// Writes what `out` holds to `file` (if any) and empties it.
        mutating func flush() throws(LogFormatError) {
            guard let file, !out.bytes.isEmpty else { return }
            try FileIO.pwriteAll(file.fd, out.bytes, at: flushed, path: file.path, faults: file.faults)
            flushed += out.count
            out.bytes.removeAll(keepingCapacity: true)
        }

        private mutating func addBlock(
            records: WALRecords, order: ArraySlice<Int>, leaves: [Digest32]?, codec: CompressionCodec, level: Int32
        ) throws(LogFormatError) {
            let first = UInt32(recordCount)
            var events: [AuditEvent] = []
            events.reserveCapacity(order.count)
            var resourceKeys: [Int] = []
            resourceKeys.reserveCapacity(order.count)
            var blockMin = UInt64.max
            var blockMax = UInt64.min
            for i in order {
                // All inside the closure, the event moved into `events` last: an `AuditEvent` copied out of the
                // closure or the array costs a retain and release of each of its strings and arrays.
                try records.withRecord(i) { (r) throws(LogFormatError) in
                    let leaf = leaves?[i] ?? MerkleTree.leafHash(r)
                    merkle.append(leaf)
                    let event = try RecordCodec.decode(r, sharing: &resources)
                    resourceKeys.append(resources.lastEntry)
                    index.add(event, ordinal: UInt32(recordCount))
                    index.addCounts(CountRollupKind(event), start: event.startTimeUnixNano, leaf: leaf)
                    blockMin = min(blockMin, event.startTimeUnixNano)
                    blockMax = max(blockMax, event.startTimeUnixNano)
                    events.append(consume event)
                }
                recordCount += 1
            }
            let offset = position
            let blockHeader: BlockHeader
            if let (payload, own) = try exactColumns(
                &events, records: records, order: order, codec: codec, level: level, dictionary: dictionary,
                segmentStringsColumn: sharesStrings, resourceKeys: resourceKeys, rebuilt: &rebuilt)
            {
                if sharesStrings { dictionary.blockWritten(own: own) }
                // rawLength: the block's size as rows (what `SegmentReader.blockPayload` rebuilds, and the check
                // above did), so compression ratios and decompression limits mean the same for both block types.
                blockHeader = BlockHeader(
                    type: .column, codec: .none, storedLength: UInt32(payload.count), rawLength: UInt32(rebuilt.count),
                    recordCount: UInt32(order.count), firstOrdinal: first, minTime: blockMin, maxTime: blockMax,
                    payloadCRC: Checksum.crc32(payload))
                blockHeader.write(into: &out)
                out.raw(payload)
            } else {
                rowBlocks += 1
                var rows = BlockBuilder(codec: codec, zlibLevel: level)
                for (row, i) in order.enumerated() {
                    records.withRecord(i) { rows.add(record: $0, startTime: events[row].startTimeUnixNano) }
                }
                blockHeader = try rows.finish(firstOrdinal: first, into: &out)
            }
            index.addBlock(BlockLocation(blockHeader, offset: UInt64(offset)))
            minTime = min(minTime, blockMin)
            maxTime = max(maxTime, blockMax)
        }
    }

    /// Where the block starting at sealed position `start` ends: after `target` rows at the next trace boundary,
    /// or at the hard bounds (four times `target` rows, `maxRawBytes` of records).
    static func blockEnd(
        records: WALRecords, order: [Int], from start: Int, rows target: Int, maxRawBytes: Int = maxBlockRawBytes
    ) -> Int {
        blockEnd(
            order: order, from: start, rows: target, maxRawBytes: maxRawBytes,
            size: { records.starts[$0 + 1] - records.starts[$0] },
            trace: { i in records.withRecord(i) { SealOrderFields.peekTraceID($0) } })
    }

    /// `blockEnd(records:order:from:rows:)` from each record's size and trace id (by arrival index).
    static func blockEnd(
        order: [Int], from start: Int, rows target: Int, maxRawBytes: Int = maxBlockRawBytes, size: (Int) -> Int,
        trace: (Int) -> TraceID?
    ) -> Int {
        var j = start
        var raw = 0
        var lastTrace: TraceID? = nil
        while j < order.count {
            let i = order[j]
            let size = size(i)
            let trace = trace(i)
            let rows = j - start
            if rows > 0 {
                if rows >= 4 * target || raw + size > maxRawBytes { break }
                if rows >= target && (trace != lastTrace || trace == nil || trace!.isZero) { break }
            }
            raw += size
            lastTrace = trace
            j += 1
        }
        return j
    }

    /// The column payload of `events`, if rebuilding its rows' canonical bytes from the columns
    /// (`ColumnBlock.canonicalRows`, what verification, proofs and record reads rebuild) gives back exactly the
    /// bytes of the records it came from; nil otherwise (the caller keeps that block as rows). `rebuilt` is
    /// scratch space, kept by the caller from one block to the next.
    /// String ids below `dictionary.count` name the segment dictionary's strings. Also returns the block's own
    /// strings, in id order.
    static func exactColumns(
        _ events: inout [AuditEvent], records: WALRecords, order: ArraySlice<Int>, codec: CompressionCodec,
        level: Int32,
        dictionary: SegmentDictionaryBuilder, segmentStringsColumn: Bool = true, resourceKeys: [Int]? = nil,
        rebuilt: inout BinaryWriter
    ) throws(LogFormatError) -> (payload: [UInt8], own: [String])? {
        let payload: [UInt8]
        let own: [String]
        do {
            (payload, own) = try ColumnBlock.encode(
                lending: &events, codec: codec, level: level, shared: dictionary.ids,
                segmentStringsColumn: segmentStringsColumn,
                resourceKeys: resourceKeys)
        } catch {
            return nil
        }
        let segment = SegmentDictionary(strings: dictionary.strings)
        rebuilt.bytes.removeAll(keepingCapacity: true)
        do {
            let rows = try payload.withBytes { (b) throws(LogFormatError) in
                try ColumnBlock.canonicalRows(b, segment: segment, into: &rebuilt)
            }
            guard rows == order.count else { return nil }
        } catch {
            return nil
        }
        return sameRows(rebuilt.bytes, records: records, order: order) ? (payload, own) : nil
    }

    /// Whether `rows` (`(uvarint n, <n bytes>)*`) holds exactly the records at `order`, in that order.
    static func sameRows(_ rows: [UInt8], records: WALRecords, order: ArraySlice<Int>) -> Bool {
        rows.withUnsafeBytes { rows in
            records.bytes.withUnsafeBytes { all in
                var r = BinaryReader(rows)
                for i in order {
                    let start = records.starts[i]
                    let n = records.starts[i + 1] - start
                    guard let length = try? r.uvarint(), length == UInt64(n), n <= r.remaining else { return false }
                    if n > 0 && memcmp(rows.baseAddress! + r.offset, all.baseAddress! + start, n) != 0 { return false }
                    r.offset += n
                }
                return r.isAtEnd
            }
        }
    }
}
