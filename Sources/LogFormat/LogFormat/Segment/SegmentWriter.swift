// The segment writer: appends records into blocks of the active segment, rolls by size and age, seals with
// the index, Merkle root, chain link and optional signature, and recovers unsealed segments on open.
// Not thread-safe: one owner drives it (DurableLog puts it on its own serial queue).
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

public struct WriterOptions: Sendable {
    /// Codec of data blocks: LZ4 for the hot tier.
    public var codec: CompressionCodec = .lz4
    /// A block is written once its raw payload reaches this size (a flush may write a smaller one).
    public var targetBlockBytes: Int = 64 << 10
    /// Roll (seal and start a new segment) once the file reaches this many bytes.
    public var maxSegmentBytes: Int = 256 << 20
    /// Roll once the active segment holds this many records (bounds the writer's memory for leaf hashes and
    /// the index: about 32 bytes per record plus the terms).
    public var maxSegmentRecords: Int = 4_000_000
    /// Roll once the active segment is this old (monotonic nanoseconds).
    public var maxSegmentAgeNanos: UInt64 = 3_600 * 1_000_000_000
    /// Roll once the active segment's records take this many bytes uncompressed. Sealing lays a segment out
    /// in memory (about this much plus one block of events), so this bounds the memory sealing needs.
    public var maxSegmentRawBytes: Int = 128 << 20
    /// How sealing writes the sealed file: laid out anew as columns (version 2, the default), or the blocks of
    /// rows kept in place (version 1, for tools and tests that need version 1 files).
    public var sealLayout: SealLayout = .columns
    /// Rows per column block when laying out (a trace is kept whole up to four times this): big enough for
    /// the columns and dictionaries to pay, small enough that a light user's query decodes little else.
    public var columnBlockRows: Int = 4096
    /// Signs every seal when set.
    public var signer: SealSigner?
    /// Supplies the last records of every segment (the collector's completeness ledger); see `SegmentTrailer`.
    public var trailer: (any SegmentTrailer)?
    /// Tests only: fails chosen writes of segment data (see `WriteFaults`).
    package var writeFaults: (any WriteFaults)?
    /// Tests only: false seals version 2 indexes with layout 1 for every string field, as writers did before the
    /// compact term layouts (docs/format/index.md, "Term layouts"), so that readers of such segments stay tested.
    package var compactIndexTerms = true
    /// Tests only: false seals version 2 indexes without the count rollup (index version 2, as writers did before
    /// it; docs/format/index.md, "Count rollup"), so that counting such segments stays tested.
    package var countRollup = true

    public init() {}
}

/// How a segment is laid out when it is sealed (docs/format/segment.md).
public enum SealLayout: Sendable {
    /// Version 1: the write-ahead log's blocks of rows, in arrival order, sealed in place.
    case rows
    /// Version 2: records ordered by user and trace, in column blocks, written to a new file.
    case columns
}

/// What recovery found in an unsealed segment left by a crash, and what it did.
public struct RecoveryReport: Sendable, CustomStringConvertible {
    public enum Action: String, Sendable {
        /// Valid blocks were kept (after truncating any torn tail) and the segment was sealed.
        case sealed
        /// The file held no complete block and was removed.
        case removedEmpty
        /// The file header itself was unreadable: the file was renamed to `.damaged` and left for inspection.
        case quarantined
        /// The segment had been laid out and sealed before the crash, which came before its write-ahead log was
        /// removed: the sealed file holds exactly the log's records, and the log was removed.
        case logRemoved
    }
    public var path: String
    public var action: Action
    public var recordsRecovered: UInt32
    public var blocksRecovered: Int
    public var bytesTruncated: Int
    /// Why the scan stopped before the end of the file, when it did.
    public var tailProblem: String?

    public var description: String {
        "\(path): \(action.rawValue), \(recordsRecovered) records in \(blocksRecovered) blocks kept, "
            + "\(bytesTruncated) bytes truncated" + (tailProblem.map { " (\($0))" } ?? "")
    }
}

/// Where an appended batch landed.
public struct AppendReceipt: Sendable, Hashable {
    public var segmentSequence: UInt64
    public var count: Int
}

public final class SegmentWriter {
    public let directory: DataDirectory
    public let nodeID: NodeID
    public let options: WriterOptions
    private let logger: Logger

    public private(set) var recoveries: [RecoveryReport] = []
    private var active: ActiveSegment?
    private var nextSequence: UInt64

    /// What sealing owns: the chain, the catalog, and the logs retired from appending that await their lay-out.
    /// Laying out may run on another thread than appending (`layOutRetired()`, see DurableLog), so this state
    /// is behind a lock; the appending side touches only `active` and the buffers.
    private struct SealState {
        var catalog: Catalog
        var chainHead: (sequence: UInt64, root: Digest32)
        /// Write-ahead logs closed for appending, oldest first, to be laid out and sealed in this order.
        /// `hints`: what the writer kept of its records for the seal (nil for a log recovery found).
        var retired: [(path: String, sequence: UInt64, records: UInt32, hints: SealHints?)] = []
        /// Sealed segments not yet renamed to `.seg` or not yet in the saved catalog (a rename or the catalog
        /// write failed, e.g. on a full disk). Their seals are durable; publishing is retried before every
        /// seal, and before every append that finds no lay-out running. Readers see them meanwhile as unsealed
        /// files, and recovery at start-up re-seals a file left unrenamed with the same records and the same
        /// chain link.
        var unpublished: [(from: String, entry: CatalogEntry)] = []
        var catalogNeedsSave = false
        /// Write-ahead logs of segments laid out and sealed, removed once the catalog names the sealed files.
        /// Until then readers skip a log whose sealed file exists, and recovery removes it after comparing.
        var logsToRemove: [String] = []
        var segmentsSealed: UInt64 = 0
        var bytesLaidOut: UInt64 = 0
    }
    private let sealing: Mutex<SealState>
    /// Held for a whole lay-out and publication, so retired logs are sealed one at a time and in order.
    private let sealTurn = Mutex(())

    /// The catalog as this writer last saved or read it.
    public var catalog: Catalog { sealing.withLock { $0.catalog } }
    private var chainHead: (sequence: UInt64, root: Digest32) {
        get { sealing.withLock { $0.chainHead } }
        set { sealing.withLock { $0.chainHead = newValue } }
    }

    private var blockOut = BinaryWriter(capacity: 160 << 10)
    /// The last write of a batch failed and was rolled back; cleared by the next successful block write.
    private var lastWriteFailed = false
    /// Where a rollback's truncation failed: the file must be cut there before anything else is written.
    private var pendingTruncation: Int?
    /// True while recovery seals a log a crash left: no trailer is added to it.
    private var recovering = false

    // Counters for metrics.
    public private(set) var recordsAppended: UInt64 = 0
    /// Bytes written: the logs' blocks and seals, and the sealed files laid out.
    public var bytesWritten: UInt64 { logBytesWritten + sealing.withLock { $0.bytesLaidOut } }
    private var logBytesWritten: UInt64 = 0
    public private(set) var blocksWritten: UInt64 = 0
    public var segmentsSealed: UInt64 { sealing.withLock { $0.segmentsSealed } }

    struct ActiveSegment {
        let path: String
        let fd: Int32
        let header: SegmentFileHeader
        let openedMonotonic: UInt64
        var fileOffset: Int
        var recordCount: UInt32 = 0
        /// Uncompressed bytes of the records in written blocks.
        var rawBytes = 0
        var minTime = UInt64.max
        var maxTime = UInt64.min
        /// Merkle state and index terms of the records in written blocks, in file order. The accumulator keeps
        /// O(log n) subtree roots, not every leaf hash: proofs are computed later from the sealed records.
        var merkle = MerkleAccumulator()
        var index = IndexBuilder()
        /// What the seal needs of each record in written blocks, kept as they are written (`SealHints`); nil for
        /// a segment recovery rebuilt from its file, which the seal then reads for it.
        var sealHints: SealHints? = SealHints()
        /// Records waiting in a block, one builder per stream (see `Stream`).
        var streams: [PendingStream]
        var dirty = false

        var bufferedCount: Int { streams.reduce(0) { $0 + Int($1.block.recordCount) } }
    }

    /// The records of a block being built. Ordinals are assigned when the block is written, so each block
    /// holds a contiguous range of ordinals even though streams interleave.
    struct PendingStream {
        var block: BlockBuilder
        var leafHashes: [Digest32] = []
        var terms: [RecordTerms] = []
        var hints: [SealHints.Record] = []
    }

    /// Records are kept in two streams of blocks: events that carry a user identity or come from the edge,
    /// and everything else. A query by user then decompresses only the identity stream's blocks (about a
    /// seventh of the data in mesh traffic) instead of every block of the time range.
    enum Stream {
        static let identity = 0
        static let other = 1
        static let count = 2

        static func of(_ event: borrowing AuditEvent) -> Int {
            event.user != nil || event.kind == .access ? identity : other
        }
    }

    private func emptyStreams() -> [PendingStream] {
        (0..<Stream.count).map { _ in PendingStream(block: BlockBuilder(codec: options.codec)) }
    }

    /// Opens (creating if needed) a data directory for writing: recovers and seals any unsealed segment a
    /// crash left behind, and repairs the catalog if it disagrees with the files.
    public init(directory: DataDirectory, options: WriterOptions = WriterOptions(), logger: Logger)
        throws(LogFormatError)
    {
        self.directory = directory
        var options = options
        // A block's raw payload must stay within what readers accept (64 MiB), with room for one large record.
        options.targetBlockBytes = min(max(options.targetBlockBytes, 1), FormatConstants.maxBlockPayload / 2)
        self.options = options
        self.logger = logger
        try directory.create()
        nodeID = try directory.loadOrCreateNodeID()
        let catalog = try directory.currentCatalog(repair: true)
        let files = try directory.listSegmentFiles()
        // Every file with a sequence prefix counts, quarantined ones included, so no number is reused.
        // Tombstones count too: an expired segment's sequence is never reused, and when the newest segment of
        // this node has expired (a collector stopped for longer than the retention), the chain continues from
        // the root its tombstone keeps.
        let tombstones = (try? directory.loadTombstones().tombstones.map(\.tombstone.seal)) ?? []
        let sequences =
            try FileIO.listDirectory(directory.segmentsPath).compactMap(DataDirectory.sequence(ofFileName:))
            + catalog.entries.map(\.sequence)
            + (try directory.listTombstoneFiles()).compactMap(DataDirectory.sequence(ofFileName:))
        nextSequence = (sequences.max() ?? 0) + 1
        let node = nodeID
        let own = (catalog.entries.map(\.seal) + tombstones).filter { $0.nodeID == node }.max {
            $0.sequence < $1.sequence
        }
        sealing = Mutex(SealState(catalog: catalog, chainHead: own.map { ($0.sequence, $0.merkleRoot) } ?? (0, .zero)))
        // A lay-out cut short by a crash: its write-ahead log is still there and is sealed again below.
        for name in try FileIO.listDirectory(directory.segmentsPath) where name.hasSuffix(Self.layOutSuffix) {
            try FileIO.remove(directory.segmentsPath + "/" + name)
        }
        // In sequence order (names are zero-padded): each is chained to the one before.
        for name in files.open.sorted() {
            let path = directory.segmentsPath + "/" + name
            if let sequence = DataDirectory.sequence(ofFileName: name),
                FileIO.exists(directory.segmentsPath + "/" + DataDirectory.fileName(sequence: sequence, sealed: true))
            {
                try reconcileLaidOut(log: path, sequence: sequence)
                if !FileIO.exists(path) { continue }
            }
            try recover(path: path)
        }
    }

    deinit {
        if let active { FileIO.close(active.fd) }
    }

    /// Records appended to the active segment, written or not.
    public var activeRecordCount: UInt32 { active?.recordCount ?? 0 }
    public var activeSequence: UInt64? { active?.header.sequence }
    public var activeFileBytes: Int { active?.fileOffset ?? 0 }
    /// True when records were written since the last `sync()`.
    public var needsSync: Bool { active?.dirty ?? false }
    /// True when records are buffered in a block not yet written.
    public var hasBufferedRecords: Bool { (active?.bufferedCount ?? 0) > 0 }

    /// True after a block write failed (disk full, I/O error) until one succeeds. The batch it belonged to was
    /// rolled back whole (see `append`); nothing of it is buffered or retried.
    public var hasUnwrittenBlock: Bool { lastWriteFailed }

    /// The writer's state at a batch boundary, to return to when a later write fails (see `rollBack(to:)`).
    package struct Mark {
        fileprivate var sequence: UInt64?
        fileprivate var fileOffset = 0
        fileprivate var recordCount: UInt32 = 0
        fileprivate var rawBytes = 0
        fileprivate var blockCount = 0
        fileprivate var minTime = UInt64.max
        fileprivate var maxTime = UInt64.min
        fileprivate var merkle = MerkleAccumulator()
        fileprivate var streams: [PendingStream] = []
        fileprivate var recordsAppended: UInt64 = 0
    }

    /// Marks the current state: buffered records and everything written so far.
    package func mark() -> Mark {
        guard let a = active else { return Mark(sequence: nil, recordsAppended: recordsAppended) }
        return Mark(
            sequence: a.header.sequence, fileOffset: a.fileOffset, recordCount: a.recordCount, rawBytes: a.rawBytes,
            blockCount: a.index.blocks.count, minTime: a.minTime, maxTime: a.maxTime, merkle: a.merkle,
            streams: a.streams, recordsAppended: recordsAppended)
    }

    /// Undoes everything appended since `mark`: blocks written since are cut off the file again and their
    /// records forgotten (Merkle state, index, counts), and the buffers hold what they held at the mark. So a
    /// refused batch is never stored, neither now nor by a later flush. A mark of an earlier (sealed) segment,
    /// or of no segment, leaves the active segment empty. Does nothing to a sealed segment.
    package func rollBack(to mark: Mark) {
        guard var a = active else { return }
        recordsAppended = mark.recordsAppended
        guard mark.sequence == a.header.sequence else {
            // The segment was opened after the mark: it holds only what came after.
            rollBack(
                to: Mark(
                    sequence: a.header.sequence, fileOffset: FormatConstants.fileHeaderSize,
                    streams: emptyStreams(), recordsAppended: mark.recordsAppended))
            return
        }
        if a.fileOffset != mark.fileOffset || pendingTruncation != nil {
            if Glibc.ftruncate(a.fd, off_t(mark.fileOffset)) == 0 {
                pendingTruncation = nil
            } else {
                pendingTruncation = mark.fileOffset
                logger.error(
                    "cutting a refused batch off the segment failed; retried before the next write",
                    metadata: ["path": "\(a.path)", "error": "\(FileIO.errnoMessage())"])
            }
        }
        a.fileOffset = mark.fileOffset
        a.recordCount = mark.recordCount
        a.rawBytes = mark.rawBytes
        a.index.truncate(blocks: mark.blockCount, records: mark.recordCount)
        a.minTime = mark.minTime
        a.maxTime = mark.maxTime
        a.merkle = mark.merkle
        a.streams = mark.streams
        a.sealHints?.truncate(to: Int(mark.recordCount))
        active = a
    }

    // MARK: Appending

    /// Appends `events` to the active segment (creating it if needed). All events are encoded and checked
    /// first, and a block write that fails rolls the batch back (`rollBack(to:)`), so a batch is taken whole
    /// or not at all. Full blocks are written as they fill; call `flush()` to write the rest and `sync()` to
    /// make it durable. Records of earlier batches still buffered stay buffered when a batch fails.
    @discardableResult
    public func append(_ events: some Collection<AuditEvent>) throws(LogFormatError) -> AppendReceipt {
        try append(try PreparedBatch(events))
    }

    /// Appends a batch encoded beforehand (see `PreparedBatch`: the costly part runs on the caller's thread,
    /// so only copying, compression and the file write remain on the writer's).
    @discardableResult
    public func append(_ batch: PreparedBatch) throws(LogFormatError) -> AppendReceipt {
        if hasUnpublishedSeals { try? publishSealedUnlessLayingOut() }
        if active == nil { try openNewSegment() }
        guard UInt64(active!.recordCount) + UInt64(active!.bufferedCount) + UInt64(batch.count) <= UInt64(UInt32.max)
        else {
            throw LogFormatError(.limitExceeded, "a segment holds at most \(UInt32.max) records; seal it first")
        }
        let start = mark()
        do throws(LogFormatError) {
            try add(batch)
        } catch {
            rollBack(to: start)
            throw error
        }
        recordsAppended += UInt64(batch.count)
        return AppendReceipt(segmentSequence: active!.header.sequence, count: batch.count)
    }

    private func add(_ batch: PreparedBatch) throws(LogFormatError) {
        try batch.bytes.withBytes { (all) throws(LogFormatError) in
            for i in 0..<batch.count {
                let time = batch.times[i]
                let stream = Int(batch.streams[i])
                let record = UnsafeRawBufferPointer(rebasing: all[batch.offsets[i]..<batch.offsets[i + 1]])
                active!.streams[stream].leafHashes.append(batch.leafHashes[i])
                active!.streams[stream].block.add(record: record, startTime: time)
                active!.streams[stream].terms.append(batch.terms[i])
                if active!.sealHints != nil {
                    let hint = active!.sealHints!.hint(
                        record, leaf: batch.leafHashes[i], terms: batch.terms[i], start: time)
                    active!.streams[stream].hints.append(hint)
                }
                active!.minTime = min(active!.minTime, time)
                active!.maxTime = max(active!.maxTime, time)
                if active!.streams[stream].block.rawSize >= options.targetBlockBytes { try writeBlock(stream: stream) }
            }
        }
    }

    /// Writes any buffered records as (possibly small) blocks. When a write fails, the blocks this flush
    /// wrote are cut off again and the records stay buffered; a caller that refuses their batches on that
    /// error must also `rollBack` to a mark taken before them.
    public func flush() throws(LogFormatError) {
        guard active != nil else { return }
        let start = mark()
        do throws(LogFormatError) {
            for stream in 0..<Stream.count where !active!.streams[stream].block.isEmpty {
                try writeBlock(stream: stream)
            }
        } catch {
            rollBack(to: start)
            throw error
        }
    }

    /// Tells whether the disk has room for a block again after a failed write, without touching the segment:
    /// writes a block's worth of zeros to a scratch file beside it and removes it. Clears `hasUnwrittenBlock`
    /// when that succeeds.
    package func probeSpace() throws(LogFormatError) {
        guard lastWriteFailed else { return }
        let path = directory.segmentsPath + "/.space-probe"
        let fd = try FileIO.open(path, flags: O_WRONLY | O_CREAT | O_TRUNC)
        defer {
            FileIO.close(fd)
            _ = unlink(path)
        }
        try FileIO.pwriteAll(
            fd, [UInt8](repeating: 0, count: options.targetBlockBytes), at: 0, path: path, faults: options.writeFaults)
        lastWriteFailed = false
    }

    /// fsyncs the active segment if anything was written since the last sync.
    public func sync() throws(LogFormatError) {
        guard let a = active, a.dirty else { return }
        try FileIO.fsync(a.fd, path: a.path)
        active!.dirty = false
    }

    /// Seals the active segment when it has reached its size or age limit. With `layOut: false` and the
    /// `.columns` layout, only retires it (see `retire()`), leaving the lay-out to `layOutRetired()`.
    @discardableResult
    public func rollIfNeeded(nowMonotonic: UInt64 = FileIO.monotonicNanos(), layOut: Bool = true)
        throws(LogFormatError) -> CatalogEntry?
    {
        guard let a = active else { return nil }
        let tooBig =
            a.fileOffset >= options.maxSegmentBytes || Int(a.recordCount) >= options.maxSegmentRecords
            || a.rawBytes >= options.maxSegmentRawBytes
        let tooOld = nowMonotonic &- a.openedMonotonic >= options.maxSegmentAgeNanos
        guard tooBig || tooOld else { return nil }
        if !layOut && options.sealLayout == .columns {
            try retire()
            return nil
        }
        return try seal()
    }

    private func writeBlock(stream: Int) throws(LogFormatError) {
        blockOut.bytes.removeAll(keepingCapacity: true)
        let first = active!.recordCount
        var block = active!.streams[stream].block
        let header = try block.finish(firstOrdinal: first, into: &blockOut)
        let offset = active!.fileOffset
        do {
            if let cut = pendingTruncation {
                try FileIO.ftruncate(active!.fd, to: cut, path: active!.path)
                pendingTruncation = nil
            }
            try FileIO.pwriteAll(
                active!.fd, blockOut.bytes, at: offset, path: active!.path, faults: options.writeFaults)
        } catch {
            // Cut any partial bytes now; the caller rolls the batch back (cutting its earlier blocks). A cut
            // that fails is retried before the next write, so no stale bytes follow the blocks written next.
            lastWriteFailed = true
            if Glibc.ftruncate(active!.fd, off_t(offset)) != 0 { pendingTruncation = offset }
            throw error
        }
        // The block is on disk: its records take the next ordinals, in file order.
        let pending = active!.streams[stream]
        active!.streams[stream] = PendingStream(block: block)
        for leaf in pending.leafHashes { active!.merkle.append(leaf) }
        active!.sealHints?.append(contentsOf: pending.hints)
        // Only a seal in place (version 1) writes these postings; a lay-out builds its index in the sealed order.
        if options.sealLayout == .rows {
            for (k, terms) in pending.terms.enumerated() { active!.index.add(terms, ordinal: first + UInt32(k)) }
        }
        active!.recordCount += header.recordCount
        active!.rawBytes += Int(header.rawLength)
        lastWriteFailed = false
        active!.index.addBlock(BlockLocation(header, offset: UInt64(offset)))
        active!.fileOffset += blockOut.count
        active!.dirty = true
        logBytesWritten += UInt64(blockOut.count)
        blocksWritten += 1
    }

    private func openNewSegment() throws(LogFormatError) {
        let sequence = nextSequence
        nextSequence += 1
        let path = directory.segmentsPath + "/" + DataDirectory.fileName(sequence: sequence, sealed: false)
        let header = SegmentFileHeader(nodeID: nodeID, sequence: sequence, createdUnixNano: FileIO.nowUnixNano())
        let fd = try FileIO.open(path, flags: O_RDWR | O_CREAT | O_EXCL)
        do {
            try FileIO.pwriteAll(fd, header.encoded(), at: 0, path: path, faults: options.writeFaults)
            try FileIO.fsync(fd, path: path)
            try FileIO.fsyncDirectory(directory.segmentsPath)
        } catch {
            FileIO.close(fd)
            _ = unlink(path)
            throw error
        }
        active = ActiveSegment(
            path: path, fd: fd, header: header, openedMonotonic: FileIO.monotonicNanos(),
            fileOffset: FormatConstants.fileHeaderSize, streams: emptyStreams())
        logger.debug("opened segment", metadata: ["path": "\(path)"])
    }

    // MARK: Sealing

    /// Seals the active segment (see `SealLayout`) and updates the catalog; with `.columns`, lays out every
    /// retired log first, then this one. Returns the entry of the segment sealed last; nil (and the file is
    /// removed) when the active segment holds no records and no log was retired. When sealing fails (a full
    /// disk), the log stays as it is, every block intact, and sealing is tried again later.
    /// With a `trailer`, its records are appended first (`final`: the writer is being closed, see
    /// `SegmentTrailer`).
    @discardableResult
    public func seal(final: Bool = false) throws(LogFormatError) -> CatalogEntry? {
        switch options.sealLayout {
        case .columns:
            try retire(final: final)
            return try layOutRetired().last
        case .rows:
            try sealTurn.withLock { (_) throws(LogFormatError) in
                if hasUnpublishedSeals { try publishLocked() }
            }
            let trailed = try appendTrailer(final: final)
            guard active != nil else { return nil }
            do throws(LogFormatError) {
                try flush()
            } catch {
                if let trailed { rollBack(to: trailed) }
                throw error
            }
            let a = active!
            if a.recordCount == 0 {
                FileIO.close(a.fd)
                try FileIO.remove(a.path)
                active = nil
                return nil
            }
            let sealed: (seal: SegmentSeal, blockCount: UInt32, fileSize: UInt64, log: String?)
            do throws(LogFormatError) {
                sealed = try sealInPlace(a)
            } catch {
                if let trailed { rollBack(to: trailed) }
                throw error
            }
            if trailed != nil { options.trailer?.trailerWritten(segment: a.header.sequence) }
            // The seal is durable: from here the segment is final and the chain moves on, whatever follows fails.
            FileIO.close(a.fd)
            active = nil
            return sealTurn.withLock { _ in
                published(sealed.seal, blockCount: sealed.blockCount, fileSize: sealed.fileSize, from: a.path, log: nil)
            }
        }
    }

    /// Closes the active segment for appending: its buffered records are written and fsynced, and the log joins
    /// the logs to lay out (`layOutRetired()`). The next append opens a new segment. An empty one is removed.
    package func retire(final: Bool = false) throws(LogFormatError) {
        let trailed = try appendTrailer(final: final)
        guard active != nil else { return }
        do throws(LogFormatError) {
            try flush()
        } catch {
            if let trailed { rollBack(to: trailed) }
            throw error
        }
        let a = active!
        if a.recordCount == 0 {
            FileIO.close(a.fd)
            try FileIO.remove(a.path)
            active = nil
            return
        }
        // The lay-out reads the log from the file: make what it reads the durable truth first.
        do throws(LogFormatError) {
            try FileIO.fsync(a.fd, path: a.path)
        } catch {
            // The trailer is cut off again, so that the next try appends one trailer, not a second.
            if let trailed { rollBack(to: trailed) }
            throw error
        }
        if trailed != nil { options.trailer?.trailerWritten(segment: a.header.sequence) }
        FileIO.close(a.fd)
        active = nil
        // Hints that do not cover exactly the records written are dropped: the seal then reads the log for them.
        var hints = a.sealHints.flatMap { $0.count == Int(a.recordCount) ? $0 : nil }
        // Behind another log's seal, this one's hints would wait in memory: they wait in a file instead.
        if sealing.withLock({ !$0.retired.isEmpty }) { hints?.spill(in: directory.segmentsPath) }
        sealing.withLock { $0.retired.append((a.path, a.header.sequence, a.recordCount, hints)) }
    }

    /// Appends the trailer's records to the active segment (opening one only when `final` and the trailer has
    /// something to say), and returns the mark before them, to cut them off again if closing fails. A segment
    /// that took no records gets no trailer: it is removed, and what the trailer counted goes to the next.
    private func appendTrailer(final: Bool) throws(LogFormatError) -> Mark? {
        guard !recovering, let trailer = options.trailer else { return nil }
        if let a = active {
            guard a.recordCount > 0 || a.bufferedCount > 0 else { return nil }
        } else if !final {
            return nil
        }
        let records = trailer.trailer(closing: active?.header.sequence, final: final)
        guard !records.isEmpty else { return nil }
        if active == nil { try openNewSegment() }
        let start = mark()
        try append(records)  // a failing append rolls its batch back itself
        return start
    }

    /// True while retired logs await their lay-out.
    public var hasRetiredLogs: Bool { sealing.withLock { !$0.retired.isEmpty } }

    /// Retired logs awaiting their lay-out, the one being laid out included.
    public var retiredLogCount: Int { sealing.withLock { $0.retired.count } }

    /// Lays out and seals the retired logs, oldest first, up to `limit` of them, and publishes them. Safe to call
    /// from another thread than the one appending (DurableLog runs it on a queue of its own, so appends go on
    /// meanwhile); calls are serialised. A failure leaves that log and the ones after it retired, for a later call.
    @discardableResult
    public func layOutRetired(limit: Int = .max) throws(LogFormatError) -> [CatalogEntry] {
        try sealTurn.withLock { (_) throws(LogFormatError) -> [CatalogEntry] in
            if hasUnpublishedSeals { try publishLocked() }
            var out: [CatalogEntry] = []
            while out.count < limit, let next = sealing.withLock({ $0.retired.first }) {
                let name = DataDirectory.fileName(sequence: next.sequence, sealed: true)
                let result: ColumnSealResult
                var hints: SealHints? = nil
                do throws(LogFormatError) {
                    hints = try next.hints?.loaded()
                } catch {
                    // Only a cost: the seal reads the log for what the hints held.
                    logger.warning(
                        "the seal hints kept in a file could not be read back; sealing from the log alone",
                        metadata: ["segment": "\(name)", "error": "\(error)"])
                }
                do throws(LogFormatError) {
                    result = try ColumnSealer.seal(
                        walPath: next.path, targetPath: directory.segmentsPath + "/" + name,
                        directory: directory.segmentsPath, codec: options.codec,
                        blockRows: max(1, options.columnBlockRows), previous: chainHead, signer: options.signer,
                        faults: options.writeFaults, compactIndexTerms: options.compactIndexTerms,
                        countRollup: options.countRollup, hints: hints)
                } catch {
                    // The log does not hold the records its hints describe (never expected): seal it from the log
                    // alone, as recovery would.
                    guard next.hints != nil, error.code == .integrity else { throw error }
                    logger.error(
                        "the write-ahead log disagrees with what the writer kept of it; sealing from the log alone",
                        metadata: ["segment": "\(name)", "error": "\(error)"])
                    sealing.withLock { $0.retired[0].hints = nil }
                    continue
                }
                if result.rowBlocks > 0 {
                    logger.error(
                        "column blocks did not give back the exact records; kept those blocks as rows",
                        metadata: ["segment": "\(name)", "row blocks": "\(result.rowBlocks)"])
                }
                sealing.withLock {
                    $0.retired.removeFirst()
                    $0.bytesLaidOut += result.fileSize
                }
                out.append(
                    published(
                        result.seal, blockCount: result.blockCount, fileSize: result.fileSize,
                        from: directory.segmentsPath + "/" + name, log: next.path))
            }
            return out
        }
    }

    /// Records a durable seal (the chain moves on) and publishes it. Called with `sealTurn` held.
    private func published(
        _ seal: SegmentSeal, blockCount: UInt32, fileSize: UInt64, from path: String, log: String?
    ) -> CatalogEntry {
        let name = DataDirectory.fileName(sequence: seal.sequence, sealed: true)
        let entry = CatalogEntry(
            relativePath: "segments/" + name, tier: .hot, seal: seal, blockCount: blockCount, fileSize: fileSize)
        sealing.withLock {
            $0.chainHead = (seal.sequence, seal.merkleRoot)
            $0.segmentsSealed += 1
            $0.unpublished.append((from: path, entry: entry))
            if let log { $0.logsToRemove.append(log) }
        }
        logger.info(
            "sealed segment",
            metadata: ["segment": "\(name)", "records": "\(seal.recordCount)", "bytes": "\(entry.fileSize)"])
        do {
            try publishLocked()
        } catch {
            logger.warning(
                "a sealed segment awaits its rename or catalog entry; will retry", metadata: ["error": "\(error)"])
        }
        return entry
    }

    /// Version 1: writes the index and footer after the blocks and fsyncs; the caller renames the file.
    private func sealInPlace(_ a: ActiveSegment) throws(LogFormatError) -> (
        seal: SegmentSeal, blockCount: UInt32, fileSize: UInt64, log: String?
    ) {
        let trailer = try SealTrailer.build(
            index: a.index, nodeID: nodeID, sequence: a.header.sequence, recordCount: a.recordCount,
            minTime: a.minTime, maxTime: a.maxTime, root: a.merkle.root, previous: chainHead, signer: options.signer,
            indexOffset: a.fileOffset)
        do {
            try FileIO.pwriteAll(a.fd, trailer.bytes, at: a.fileOffset, path: a.path, faults: options.writeFaults)
            try FileIO.ftruncate(a.fd, to: a.fileOffset + trailer.bytes.count, path: a.path)
            try FileIO.fsync(a.fd, path: a.path)
        } catch {
            // Disk full or failing: cut what was written of the index and footer.
            _ = Glibc.ftruncate(a.fd, off_t(a.fileOffset))
            throw error
        }
        logBytesWritten += UInt64(trailer.bytes.count)
        return (trailer.seal, trailer.footer.blockCount, UInt64(a.fileOffset + trailer.bytes.count), nil)
    }

    /// True while a sealed segment awaits its rename, the catalog a save, or a sealed log its removal.
    public var hasUnpublishedSeals: Bool {
        sealing.withLock { !$0.unpublished.isEmpty || $0.catalogNeedsSave || !$0.logsToRemove.isEmpty }
    }

    /// Renames sealed segments to their final names, saves the catalog and removes the logs of laid-out
    /// segments; keeps what fails for the next try.
    public func publishSealed() throws(LogFormatError) {
        try sealTurn.withLock { (_) throws(LogFormatError) in try publishLocked() }
    }

    /// `publishSealed`, unless a lay-out holds the turn: that one publishes when it is done, and it can take
    /// seconds (a seal, or a catalog lock held by a retention job), so an append must not wait for it: every
    /// acknowledgement would wait behind it.
    private func publishSealedUnlessLayingOut() throws(LogFormatError) {
        try sealTurn.withLockIfAvailable { (_) throws(LogFormatError) in try publishLocked() }
    }

    /// `publishSealed` with `sealTurn` held.
    private func publishLocked() throws(LogFormatError) {
        var added: [CatalogEntry] = []
        while let next = sealing.withLock({ $0.unpublished.first }) {
            let target = directory.path(relative: next.entry.relativePath)
            if next.from != target && FileIO.exists(next.from) {
                try FileIO.renameDurably(next.from, target, directory: directory.segmentsPath)
            }
            added.append(next.entry)
            sealing.withLock {
                $0.catalog.upsert(next.entry)
                $0.catalogNeedsSave = true
                $0.unpublished.removeFirst()
            }
        }
        if sealing.withLock({ $0.catalogNeedsSave }) {
            // A retention job may have moved or expired segments since this writer last read the catalog: start
            // from the saved one, under the catalog lock, and add what was sealed.
            let saved = try directory.updateCatalog { (c) throws(LogFormatError) in
                for e in added { c.upsert(e) }
            }
            sealing.withLock {
                $0.catalog = saved
                $0.catalogNeedsSave = false
            }
        }
        let logs = sealing.withLock { $0.logsToRemove }
        if !logs.isEmpty {
            for log in logs where FileIO.exists(log) { try FileIO.remove(log) }
            sealing.withLock { $0.logsToRemove.removeAll() }
            try FileIO.fsyncDirectory(directory.segmentsPath)
        }
    }

    /// Seals the active segment and releases the writer's file.
    public func close() throws(LogFormatError) {
        try seal(final: true)
    }

    // MARK: Recovery

    /// Renames an unsealed segment that recovery must not touch to `<name>.damaged` and reports it.
    private func quarantine(_ path: String, size: Int, reason: String) throws(LogFormatError) {
        var target = path + ".damaged"
        var n = 1
        while FileIO.exists(target) {
            n += 1
            target = path + ".damaged-\(n)"
        }
        try FileIO.renameDurably(path, target, directory: directory.segmentsPath)
        let report = RecoveryReport(
            path: path, action: .quarantined, recordsRecovered: 0, blocksRecovered: 0, bytesTruncated: 0,
            tailProblem: reason)
        recoveries.append(report)
        logger.error("recovery quarantined a segment", metadata: ["report": "\(report)", "moved to": "\(target)"])
    }

    /// Suffix of a sealed file being laid out (`ColumnSealer` writes `<seq>.seg.tmp`).
    static let layOutSuffix = DataDirectory.sealedSuffix + ".tmp"

    /// A write-ahead log beside its sealed file: the crash came after the lay-out's rename and before the log's
    /// removal. When the sealed file holds exactly the log's records in the seal order (count and root), the log
    /// is removed; otherwise the sealed file is quarantined and the log is recovered and sealed again.
    private func reconcileLaidOut(log path: String, sequence: UInt64) throws(LogFormatError) {
        let sealedPath = directory.segmentsPath + "/" + DataDirectory.fileName(sequence: sequence, sealed: true)
        var mismatch: String
        do throws(LogFormatError) {
            let reader = try SegmentReader(path: sealedPath, sealed: true)
            let seal = reader.footer!.seal
            let (_, records) = try WALRecords.read(path: path)
            let root = try ColumnSealer.root(of: records, order: try ColumnSealer.order(of: records))
            // Every block is read back, not just the footer: the log is removed only if the file holds it all.
            var stored = MerkleAccumulator()
            for b in 0..<reader.blocks.count {
                try reader.forEachRecord(inBlock: b) { (_, record) throws(LogFormatError) in
                    stored.append(MerkleTree.leafHash(record))
                }
            }
            if seal.recordCount == UInt64(records.count) && seal.merkleRoot == root && stored.root == root {
                try FileIO.remove(path)
                try FileIO.fsyncDirectory(directory.segmentsPath)
                let report = RecoveryReport(
                    path: path, action: .logRemoved, recordsRecovered: UInt32(records.count),
                    blocksRecovered: Int(reader.blocks.count), bytesTruncated: 0, tailProblem: nil)
                recoveries.append(report)
                logger.warning("recovery found a segment sealed before the crash", metadata: ["report": "\(report)"])
                return
            }
            mismatch =
                "the sealed file holds \(seal.recordCount) records with root \(seal.merkleRoot), the log \(records.count) with root \(root)"
        } catch {
            mismatch = error.description
        }
        var target = sealedPath + ".damaged"
        var n = 1
        while FileIO.exists(target) {
            n += 1
            target = sealedPath + ".damaged-\(n)"
        }
        try FileIO.renameDurably(sealedPath, target, directory: directory.segmentsPath)
        logger.error(
            "recovery quarantined a sealed segment that does not match its write-ahead log; sealing again",
            metadata: ["segment": "\(sealedPath)", "moved to": "\(target)", "why": "\(mismatch)"])
        // The chain continues from the segment before this one, as it did when this one was first sealed.
        let node = nodeID
        let saved = try directory.updateCatalog { (c) throws(LogFormatError) in
            c.remove(nodeID: node, sequence: sequence)
        }
        sealing.withLock { $0.catalog = saved }
        if chainHead.sequence >= sequence {
            let tombstones = (try? directory.loadTombstones().tombstones.map(\.tombstone.seal)) ?? []
            let own = (saved.entries.map(\.seal) + tombstones).filter { $0.nodeID == node && $0.sequence < sequence }
                .max { $0.sequence < $1.sequence }
            chainHead = own.map { ($0.sequence, $0.merkleRoot) } ?? (0, .zero)
        }
    }

    private func recover(path: String) throws(LogFormatError) {
        let fd = try FileIO.open(path, flags: O_RDWR)
        let size = try FileIO.fileSize(fd, path: path)
        let bytes = try FileIO.pread(fd, count: size, at: 0, path: path)
        let header: SegmentFileHeader
        do {
            header = try bytes.withBytes { (b) throws(LogFormatError) in try SegmentFileHeader.parse(b) }
        } catch {
            FileIO.close(fd)
            // The header is fsynced before any block is written, so a short file never held acknowledged data.
            if error.code == .truncated {
                try FileIO.remove(path)
                let report = RecoveryReport(
                    path: path, action: .removedEmpty, recordsRecovered: 0, blocksRecovered: 0, bytesTruncated: size,
                    tailProblem: error.message)
                recoveries.append(report)
                logger.warning("recovery removed a segment with no complete header", metadata: ["report": "\(report)"])
                return
            }
            try quarantine(path, size: size, reason: error.description)
            return
        }
        guard header.nodeID == nodeID else {
            FileIO.close(fd)
            try quarantine(
                path, size: size, reason: "written by node \(header.nodeID), this directory belongs to \(nodeID)")
            return
        }
        var segment = ActiveSegment(
            path: path, fd: fd, header: header, openedMonotonic: FileIO.monotonicNanos(),
            fileOffset: FormatConstants.fileHeaderSize, sealHints: nil, streams: emptyStreams())
        // Pass 1: find the longest prefix of whole, checksummed blocks whose records all decode.
        let scan = bytes.withUnsafeBytes { b in
            SegmentScanner.scan(
                b, decode: true, visit: { (_, _, record) throws(LogFormatError) in _ = try RecordCodec.decode(record) })
        }
        // Pass 2: rebuild the Merkle state, index and times from those blocks only.
        if scan.recordCount > 0 {
            _ = bytes.withUnsafeBytes { b in
                SegmentScanner.scan(
                    b, end: scan.validEnd, decode: true,
                    visit: { (_, ordinal, record) throws(LogFormatError) in
                        let event = try RecordCodec.decode(record)
                        segment.merkle.append(MerkleTree.leafHash(record))
                        segment.index.add(event, ordinal: UInt32(ordinal))
                        segment.minTime = min(segment.minTime, event.startTimeUnixNano)
                        segment.maxTime = max(segment.maxTime, event.startTimeUnixNano)
                    })
            }
            for b in scan.blocks { segment.index.addBlock(b) }
        }
        if let stop = scan.stop, stop.code == .unsupportedVersion {
            // Written by a newer version of this software: keep it whole for that version to recover.
            FileIO.close(fd)
            try quarantine(path, size: size, reason: stop.description)
            return
        }
        segment.recordCount = scan.recordCount
        segment.fileOffset = scan.validEnd
        let truncated = size - scan.validEnd
        if truncated > 0 && !scan.reachedIndex {
            // Keep the bytes we cut, beside the segment: normally a torn block, but if the damage is in the middle
            // of the file, valid blocks follow it, and nothing is thrown away unseen.
            let tailPath = path + ".tail-\(scan.validEnd)"
            try FileIO.writeAtomically(Array(bytes[scan.validEnd...]), to: tailPath, directory: directory.segmentsPath)
        }
        if truncated > 0 {
            try FileIO.ftruncate(fd, to: scan.validEnd, path: path)
            try FileIO.fsync(fd, path: path)
        }
        var report = RecoveryReport(
            path: path, action: .sealed, recordsRecovered: scan.recordCount, blocksRecovered: scan.blocks.count,
            bytesTruncated: truncated,
            tailProblem: scan.reachedIndex ? "an interrupted seal" : scan.stop?.description)
        if scan.recordCount == 0 {
            FileIO.close(fd)
            try FileIO.remove(path)
            report.action = .removedEmpty
        } else {
            // Seal it with the same sequence number; the chain continues from the last sealed segment.
            // Without a trailer: the records the owner would add describe its own period, not this log's (which
            // keeps the trailer it was retired with, if it got that far).
            let saved = active
            active = segment
            recovering = true
            defer { recovering = false }
            try seal()
            active = saved
        }
        recoveries.append(report)
        logger.warning("recovered an unsealed segment", metadata: ["report": "\(report)"])
    }
}

/// Events encoded into canonical records, with each record's Merkle leaf hash, index terms and stream: all
/// the per-record work that does not depend on the segment. Receivers prepare batches on their own threads
/// so the single writer thread only copies, compresses and writes.
public struct PreparedBatch: Sendable {
    /// The records back to back; record `i` is `bytes[offsets[i]..<offsets[i + 1]]`.
    public private(set) var bytes: [UInt8]
    public private(set) var offsets: [Int]
    public private(set) var times: [UInt64]
    public private(set) var leafHashes: [Digest32]
    public private(set) var terms: [RecordTerms]
    /// `SegmentWriter.Stream` of each record.
    public private(set) var streams: [UInt8]

    public var count: Int { times.count }

    /// Encodes and checks every event; throws `.limitExceeded` naming the first that the reader could not take
    /// back (too large, nested too deep), so a batch is taken whole or not at all.
    public init(_ events: some Collection<AuditEvent>) throws(LogFormatError) {
        var w = BinaryWriter(capacity: events.count * 512)
        offsets = [0]
        offsets.reserveCapacity(events.count + 1)
        times = []
        times.reserveCapacity(events.count)
        terms = []
        terms.reserveCapacity(events.count)
        streams = []
        streams.reserveCapacity(events.count)
        var index = 0
        for event in events {
            let start = w.count
            let depth = RecordCodec.encode(event, into: &w)
            guard w.count - start <= FormatConstants.maxRecordBytes else {
                throw LogFormatError(
                    .limitExceeded,
                    "event \(index) of the batch encodes to \(w.count - start) bytes, more than the \(FormatConstants.maxRecordBytes)-byte record limit"
                )
            }
            guard depth <= RecordCodec.maxValueDepth else {
                throw LogFormatError(
                    .limitExceeded,
                    "event \(index) of the batch nests attribute values deeper than \(RecordCodec.maxValueDepth) levels"
                )
            }
            offsets.append(w.count)
            times.append(event.startTimeUnixNano)
            terms.append(RecordTerms(event))
            streams.append(UInt8(SegmentWriter.Stream.of(event)))
            index += 1
        }
        var hashes: [Digest32] = []
        hashes.reserveCapacity(index)
        let ends = offsets
        w.bytes.withUnsafeBytes { all in
            for i in 0..<index {
                hashes.append(MerkleTree.leafHash(UnsafeRawBufferPointer(rebasing: all[ends[i]..<ends[i + 1]])))
            }
        }
        bytes = w.bytes
        leafHashes = hashes
    }
}
