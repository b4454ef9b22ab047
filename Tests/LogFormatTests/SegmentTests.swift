import Foundation
import PropertyBased
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

@Suite struct SegmentWriteReadTests {
    func writeEvents(
        _ events: [AuditEvent], to dir: DataDirectory, options: WriterOptions = WriterOptions(), seal: Bool = true
    )
        throws -> SegmentWriter
    {
        let writer = try SegmentWriter(directory: dir, options: options, logger: quietLogger)
        var i = 0
        while i < events.count {
            let n = min(37, events.count - i)
            try writer.append(events[i..<i + n])
            i += n
        }
        try writer.flush()
        if seal { try writer.seal() }
        return writer
    }

    /// Sealing reads the write-ahead log into one buffer sized from the block headers, not grown by doubling:
    /// grown, a segment's records were copied into a buffer up to twice their size with the old one alive, the
    /// collector's memory peak at every seal.
    @Test func theWriteAheadLogIsReadIntoOneBufferOfItsSize() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let events = (0..<3000).map { RandomEvents.small(seed: UInt64($0)) }
        let writer = try writeEvents(events, to: tmp.dataDirectory, seal: false)
        _ = writer
        let name = try #require(try tmp.dataDirectory.listSegmentFiles().open.first)
        let path = tmp.dataDirectory.segmentsPath + "/" + name
        let (_, records) = try WALRecords.read(path: path)
        #expect(records.count == events.count)
        let raw = try MappedFile(path: path).withBytes { b in
            var total = 0
            _ = SegmentScanner.scan(b, decode: false, visitBlock: { h, _ in total += Int(h.rawLength) })
            return total
        }
        // The framing inside blocks is dropped, so the records fill most, not all, of what the blocks hold.
        #expect(records.bytes.capacity <= raw + 4096)  // malloc may round a request up to its page
        #expect(records.bytes.count * 10 >= raw * 9)
        #expect(records.starts.capacity <= events.count + 1 + 16)
    }

    /// Read a block at a time, the log gives the records a scan of the whole file gives, and a damaged log the
    /// error that scan reports, at the same offset.
    @Test func theWriteAheadLogReadABlockAtATimeIsTheWholeFileScan() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var options = WriterOptions()
        options.targetBlockBytes = 4 << 10
        let events = (0..<600).map { RandomEvents.small(seed: UInt64($0)) }
        _ = try writeEvents(events, to: tmp.dataDirectory, options: options, seal: false)
        let name = try #require(try tmp.dataDirectory.listSegmentFiles().open.first)
        let path = tmp.dataDirectory.segmentsPath + "/" + name
        func wholeFile() throws -> (records: [[UInt8]], stop: LogFormatError?) {
            try MappedFile(path: path).withBytes { b in
                var records: [[UInt8]] = []
                let scan = SegmentScanner.scan(b, decode: true, visit: { _, _, r in records.append(Array(r)) })
                return (records, scan.stop)
            }
        }
        let (_, records) = try WALRecords.read(path: path)
        let whole = try wholeFile()
        #expect(whole.stop == nil)
        #expect((0..<records.count).map { i in records.withRecord(i) { Array($0) } } == whole.records)
        let blocks = try MappedFile(path: path).withBytes { SegmentScanner.scan($0, decode: false).blocks }
        #expect(blocks.count > 3)
        let third = Int(blocks[2].offset)
        for damage in ["payload", "header", "cut"] {
            let copy = path + ".\(damage)"
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            defer { try? FileManager.default.removeItem(atPath: copy) }
            switch damage {
            case "payload": try Damage.flip(copy, at: third + FormatConstants.blockHeaderSize + 5)
            case "header": try Damage.flip(copy, at: third + 9)
            default: try Damage.cut(copy, to: third + FormatConstants.blockHeaderSize + 3)
            }
            let expected = try #require(
                try MappedFile(path: copy).withBytes { SegmentScanner.scan($0, decode: true).stop }, "\(damage)")
            do throws(LogFormatError) {
                _ = try WALRecords.read(path: copy)
                Issue.record("\(damage): the damaged log was read")
            } catch {
                #expect(error.code == expected.code, "\(damage)")
                #expect(error.offset == expected.offset, "\(damage)")
                #expect(error.message == "write-ahead log: \(expected.message)", "\(damage)")
            }
        }
    }

    /// A log larger than the seal's budget for records in memory is laid out in parts, each read from the log
    /// again: the file is the one a seal holding every record writes, byte for byte up to the footer's time.
    @Test(arguments: [1, 40_000, 300_000])
    func aLogSealedInPartsGivesTheSameFile(budget: Int) throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var options = WriterOptions()
        options.targetBlockBytes = 8 << 10
        let events = (0..<4_000).map { i in
            var e = RandomEvents.small(seed: UInt64(i))
            e.traceID = TraceID(high: 9, low: UInt64(i / 5))
            return e
        }
        _ = try writeEvents(events, to: tmp.dataDirectory, options: options, seal: false)
        let name = try #require(try tmp.dataDirectory.listSegmentFiles().open.first)
        let wal = tmp.dataDirectory.segmentsPath + "/" + name
        func sealed(_ target: String, recordsInMemory: Int) throws -> (bytes: [UInt8], result: ColumnSealResult) {
            let result = try ColumnSealer.seal(
                walPath: wal, targetPath: tmp.path + "/" + target, directory: tmp.path, codec: .lz4, blockRows: 256,
                previous: (0, .zero), signer: nil, faults: nil, recordsInMemory: recordsInMemory)
            return (try FileIO.readFile(tmp.path + "/" + target), result)
        }
        let whole = try sealed("whole.seg", recordsInMemory: Int.max)
        let parts = try sealed("parts.seg", recordsInMemory: budget)
        #expect(whole.result.blockCount > 10)
        #expect(parts.result.seal.merkleRoot == whole.result.seal.merkleRoot)
        #expect(parts.result.seal.recordCount == UInt64(events.count))
        // Everything but the footer, whose seal holds the time of sealing (and the CRC over it).
        let footer = FormatConstants.footerSize
        #expect(parts.bytes.count == whole.bytes.count)
        #expect(parts.bytes.dropLast(footer) == whole.bytes.dropLast(footer))
        #expect(try SegmentReader(path: tmp.path + "/parts.seg", sealed: true).scan().count == events.count)
    }

    /// The seal's exactness check: rows rebuilt from a column block must be the records, byte for byte, every
    /// length and every row, nothing more.
    @Test func theExactnessCheckFindsAnyDifferenceInTheRebuiltRows() {
        var records = WALRecords()
        for r in [[1, 2, 3], [], [4, 5, 6, 7]] as [[UInt8]] {
            records.bytes += r
            records.starts.append(records.bytes.count)
        }
        let order = [2, 0, 1][...]
        let rows: [UInt8] = [4, 4, 5, 6, 7, 3, 1, 2, 3, 0]
        #expect(ColumnSealer.sameRows(rows, records: records, order: order))
        for i in rows.indices {
            var flipped = rows
            flipped[i] ^= 1
            #expect(!ColumnSealer.sameRows(flipped, records: records, order: order), "flip at \(i)")
        }
        #expect(!ColumnSealer.sameRows(rows + [0], records: records, order: order))
        #expect(!ColumnSealer.sameRows(Array(rows.dropLast()), records: records, order: order))
        #expect(!ColumnSealer.sameRows(rows, records: records, order: [2, 1, 0][...]))
    }

    @Test(arguments: CompressionCodec.allCases)
    func sealedSegmentReadsBackEveryRecordInTheSealOrder(codec: CompressionCodec) throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        // Many records to a trace, so traces and users group, and more records than one column block holds.
        let events = (0..<9000).map { i in
            var e = RandomEvents.small(seed: UInt64(i))
            e.traceID = TraceID(high: 7, low: UInt64(i / 6))
            return e
        }
        var options = WriterOptions()
        options.codec = codec
        let writer = try writeEvents(events, to: tmp.dataDirectory, options: options)
        let entry = try #require(writer.catalog.entries.first)
        #expect(writer.catalog.entries.count == 1)
        let reader = try SegmentReader(path: tmp.dataDirectory.path(relative: entry.relativePath), sealed: true)
        #expect(reader.header.version == FormatConstants.segmentVersionColumns)
        #expect(reader.blocks.count > 1)
        #expect((0..<reader.blocks.count).allSatisfy { reader.isColumnBlock($0) })
        let back = try reader.scan()
        let order = SealOrder.permutation(events.map { SealOrderFields($0) })
        #expect(back.map(\.event) == order.map { events[$0] })
        #expect(back.map(\.location.ordinal) == Array(0..<UInt32(events.count)))
        #expect(entry.seal.recordCount == UInt64(events.count))
        let leaves = order.map { MerkleTree.leafHash(RecordCodec.encode(events[$0])) }
        #expect(entry.seal.merkleRoot == MerkleTree.root(leafHashes: leaves))
        // The write-ahead log is gone once the sealed file is in the catalog.
        #expect(try tmp.dataDirectory.listSegmentFiles().open.isEmpty)
    }

    @Test(arguments: CompressionCodec.allCases)
    func rowsSealedInPlaceReadBackEveryRecordInOrder(codec: CompressionCodec) throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let events = (0..<500).map { RandomEvents.make(seed: UInt64($0)) }
        var options = WriterOptions()
        options.codec = codec
        options.sealLayout = .rows
        options.targetBlockBytes = 16 << 10
        let writer = try writeEvents(events, to: tmp.dataDirectory, options: options)
        #expect(writer.catalog.entries.count == 1)
        let entry = try #require(writer.catalog.entries.first)
        let reader = try SegmentReader(path: tmp.dataDirectory.path(relative: entry.relativePath), sealed: true)
        #expect(reader.blocks.count > 1)
        let back = try reader.scan()
        #expect(back.count == events.count)
        // Two streams of blocks (identity events and the rest): each keeps the order of appending.
        let isIdentity: (AuditEvent) -> Bool = { $0.user != nil || $0.kind == .access }
        #expect(back.map(\.event).filter(isIdentity) == events.filter(isIdentity))
        #expect(back.map(\.event).filter { !isIdentity($0) } == events.filter { !isIdentity($0) })
        #expect(back.map(\.location.ordinal) == Array(0..<UInt32(events.count)))
        #expect(entry.seal.recordCount == 500)
        #expect(entry.seal.minTime == events.map(\.startTimeUnixNano).min())
        #expect(entry.seal.maxTime == events.map(\.startTimeUnixNano).max())
    }

    @Test func rollsBySizeAndChainsSealedSegments() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var options = WriterOptions()
        options.targetBlockBytes = 4 << 10
        options.maxSegmentBytes = 8 << 10
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        for i in 0..<60 {
            try writer.append((0..<20).map { RandomEvents.small(seed: UInt64(i * 20 + $0)) })
            try writer.flush()
            try writer.rollIfNeeded()
        }
        try writer.seal()
        let entries = writer.catalog.entries
        #expect(entries.count > 3)
        #expect(entries.reduce(0) { $0 + $1.seal.recordCount } == 1_200)
        #expect(entries.first?.seal.previousSequence == 0)
        #expect(entries.first?.seal.previousRoot == .zero)
        for (prev, next) in zip(entries, entries.dropFirst()) {
            #expect(next.seal.previousSequence == prev.seal.sequence)
            #expect(next.seal.previousRoot == prev.seal.merkleRoot)
        }
        // The catalog on disk matches the writer's and a rebuild from the files.
        #expect(try tmp.dataDirectory.loadCatalog() == writer.catalog)
        #expect(try tmp.dataDirectory.rebuildCatalog().catalog == writer.catalog)
    }

    @Test func rollsByAge() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var options = WriterOptions()
        options.maxSegmentAgeNanos = 1
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        try writer.append([RandomEvents.small(seed: 1)])
        try writer.flush()
        let sealed = try writer.rollIfNeeded(nowMonotonic: FileIO.monotonicNanos() + 10)
        #expect(sealed?.seal.recordCount == 1)
        #expect(writer.activeSequence == nil)
    }

    @Test func merkleRootInFooterCoversTheCanonicalRecords() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let events = (0..<100).map { RandomEvents.small(seed: UInt64($0)) }
        let writer = try writeEvents(events, to: tmp.dataDirectory)
        // Leaves are the canonical encodings of the events, in file (ordinal) order.
        let entry = writer.catalog.entries[0]
        let stored = try SegmentReader(path: tmp.dataDirectory.path(relative: entry.relativePath), sealed: true).scan()
        #expect(Set(stored.map(\.event.spanID)) == Set(events.map(\.spanID)))
        let leaves = stored.map { r in RecordCodec.encode(r.event).withUnsafeBytes { MerkleTree.leafHash($0) } }
        #expect(entry.seal.merkleRoot == MerkleTree.root(leafHashes: leaves))
    }

    @Test func emptySegmentIsNotSealed() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        try writer.append([AuditEvent]())
        #expect(try writer.seal() == nil)
        #expect(try tmp.dataDirectory.listSegmentFiles().sealed.isEmpty)
        #expect(try tmp.dataDirectory.listSegmentFiles().open.isEmpty)
    }

    @Test func oversizedRecordRejectsTheWholeBatch() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        let huge = AuditEvent(
            kind: .log, startTimeUnixNano: 1,
            body: .bytes([UInt8](repeating: 1, count: FormatConstants.maxRecordBytes + 1)))
        #expect { try writer.append([RandomEvents.small(seed: 1), huge]) } throws: {
            ($0 as? LogFormatError)?.code == .limitExceeded
        }
        #expect(writer.activeRecordCount == 0)
    }

    @Test func unsealedSegmentIsReadableWhileWritten() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let events = (0..<300).map { RandomEvents.small(seed: UInt64($0)) }
        let writer = try writeEvents(events, to: tmp.dataDirectory, seal: false)
        let name = try #require(try tmp.dataDirectory.listSegmentFiles().open.first)
        let reader = try SegmentReader(path: tmp.dataDirectory.segmentsPath + "/" + name, sealed: false)
        #expect(Set(try reader.scan().map(\.event.spanID)) == Set(events.map(\.spanID)))
        #expect(reader.recordCount == 300)
        #expect(reader.tailProblem == nil)
        _ = writer
    }

    @Test func writerCountersAddUp() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let events = (0..<50).map { RandomEvents.small(seed: UInt64($0)) }
        var rows = WriterOptions()
        rows.sealLayout = .rows
        let writer = try writeEvents(events, to: tmp.dataDirectory, options: rows)
        #expect(writer.recordsAppended == 50)
        #expect(writer.segmentsSealed == 1)
        #expect(writer.bytesWritten + UInt64(FormatConstants.fileHeaderSize) == writer.catalog.entries[0].fileSize)
        // Laid out: the log's blocks, then the whole sealed file (the log's header is not counted).
        let other = TempDir()
        defer { other.remove() }
        let laidOut = try writeEvents(events, to: other.dataDirectory)
        #expect(laidOut.bytesWritten > laidOut.catalog.entries[0].fileSize)
    }
}

@Suite struct RecoveryTests {
    @Test func tornTailIsTruncatedAndTheSegmentSealed() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let events = (0..<200).map { RandomEvents.small(seed: UInt64($0)) }
        var openPath = ""
        do {
            var options = WriterOptions()
            options.targetBlockBytes = 2 << 10
            let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
            try writer.append(events)
            try writer.flush()
            openPath = tmp.dataDirectory.segmentsPath + "/" + (try tmp.dataDirectory.listSegmentFiles().open[0])
        }  // writer dropped without sealing: as after a crash
        let good = Damage.size(openPath)
        // A torn block: a valid-looking header prefix and half a payload.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: openPath))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0x41, 0x51, 0x42, 0x4B, 1, 1, 0, 0] + [UInt8](repeating: 7, count: 100)))
        try handle.close()

        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        let report = try #require(writer.recoveries.first)
        #expect(report.action == .sealed)
        #expect(report.recordsRecovered == 200)
        #expect(report.bytesTruncated == 108)
        #expect(Damage.size(openPath) == -1)
        let store = try AuditStore(directories: [tmp.dataDirectory])
        #expect(
            try store.search(EventQuery()).map(\.event).sorted { $0.spanID < $1.spanID }
                == events.sorted { $0.spanID < $1.spanID })
        #expect(good > FormatConstants.fileHeaderSize)
    }

    @Test func interruptedSealIsRedone() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let events = (0..<50).map { RandomEvents.small(seed: UInt64($0)) }
        // Sealing in place (version 1) leaves a half-written index in the file; laid-out sealing never does.
        var rows = WriterOptions()
        rows.sealLayout = .rows
        do {
            let writer = try SegmentWriter(directory: tmp.dataDirectory, options: rows, logger: quietLogger)
            try writer.append(events)
            try writer.seal()
        }
        // Turn the sealed file back into an open one cut in the middle of its index: a crash during seal.
        let sealed = tmp.dataDirectory.segmentsPath + "/" + (try tmp.dataDirectory.listSegmentFiles().sealed[0])
        let footer = try MappedFile(path: sealed).withBytes { (b) throws(LogFormatError) in
            try SegmentFooter.parse(fileBytes: b)
        }
        try Damage.cut(sealed, to: Int(footer.indexOffset) + 60)
        let open = sealed.replacingOccurrences(of: ".seg", with: ".open")
        try FileManager.default.moveItem(atPath: sealed, toPath: open)
        try FileManager.default.removeItem(atPath: tmp.dataDirectory.catalogPath)

        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: rows, logger: quietLogger)
        #expect(writer.recoveries.first?.recordsRecovered == 50)
        #expect(writer.recoveries.first?.tailProblem == "an interrupted seal")
        #expect(writer.catalog.entries.first?.seal.merkleRoot == footer.seal.merkleRoot)
    }

    @Test func segmentWithOnlyAPartialHeaderIsRemoved() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        try tmp.dataDirectory.create()
        let path = tmp.dataDirectory.segmentsPath + "/" + DataDirectory.fileName(sequence: 1, sealed: false)
        try Data(FormatConstants.segmentMagic + [1, 0]).write(to: URL(fileURLWithPath: path))
        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        #expect(writer.recoveries.first?.action == .removedEmpty)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func segmentWithDamagedHeaderIsQuarantinedNotDeleted() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        do {
            let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
            try writer.append([RandomEvents.small(seed: 1)])
            try writer.flush()
        }
        let open = tmp.dataDirectory.segmentsPath + "/" + (try tmp.dataDirectory.listSegmentFiles().open[0])
        try Damage.flip(open, at: 30)
        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        #expect(writer.recoveries.first?.action == .quarantined)
        #expect(FileManager.default.fileExists(atPath: open + ".damaged"))
    }

    @Test func sequencesContinueAfterRecovery() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        do {
            let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
            try writer.append([RandomEvents.small(seed: 1)])
            try writer.seal()
            try writer.append([RandomEvents.small(seed: 2)])
            try writer.flush()
        }
        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        try writer.append([RandomEvents.small(seed: 3)])
        try writer.seal()
        let seqs = writer.catalog.entries.map(\.sequence)
        #expect(seqs == [1, 2, 3])
        let e = writer.catalog.entries
        #expect(e[1].seal.previousRoot == e[0].seal.merkleRoot)
        #expect(e[2].seal.previousRoot == e[1].seal.merkleRoot)
    }
}

@Suite struct DurableLogTests {
    @Test(arguments: [FsyncPolicy.always, .interval(milliseconds: 5), .never])
    func concurrentAppendsAreAllDurableAndShareCommits(policy: FsyncPolicy) async throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var options = DurableLog.Options()
        options.fsync = policy
        let log = try DurableLog(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        let receipts = try await withThrowingTaskGroup(of: AppendReceipt.self) { group in
            for i in 0..<200 {
                group.addTask { try await log.append((0..<5).map { RandomEvents.small(seed: UInt64(i * 5 + $0)) }) }
            }
            return try await group.reduce(into: [AppendReceipt]()) { $0.append($1) }
        }
        #expect(receipts.count == 200)
        #expect(receipts.allSatisfy { $0.count == 5 })
        let stats = log.statistics
        #expect(stats.appendedEvents == 1_000)
        #expect(stats.commits < 200)  // group commit: callers shared writes
        if policy == .always { #expect(stats.fsyncs == stats.commits) }
        // Everything acknowledged is readable before the seal, from the open segment.
        let store = try AuditStore(directories: [tmp.dataDirectory])
        #expect(try store.search(EventQuery()).count == 1_000)
        try await log.close()
        let store2 = try AuditStore(directories: [tmp.dataDirectory])
        #expect(try store2.search(EventQuery(), includeOpenSegments: false).count == 1_000)
    }

    /// Full segments are retired by the writer queue and laid out on the sealer's queue while appends go on:
    /// every acknowledged event ends up sealed exactly once, in a chain of segments, whatever the interleaving.
    @Test func segmentsAreLaidOutInTheBackgroundWhileAppendsGoOn() async throws {
        try await TempDir.with { tmp in
            var options = DurableLog.Options()
            options.fsync = .interval(milliseconds: 2)
            options.writer.maxSegmentRecords = 300
            let log = try DurableLog(directory: tmp.dataDirectory, options: options, logger: quietLogger)
            let events = (0..<6_000).map { RandomEvents.small(seed: UInt64($0)) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for k in 0..<4 {
                    group.addTask {
                        for chunk in stride(from: k * 1_500, to: (k + 1) * 1_500, by: 50) {
                            _ = try await log.append(Array(events[chunk..<chunk + 50]))
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await log.close()
            let stats = log.statistics
            #expect(stats.segmentsSealed >= 15)
            let dir = tmp.dataDirectory
            #expect(try dir.listSegmentFiles().open.isEmpty)
            let catalog = try dir.loadCatalog()
            #expect(UInt64(catalog.entries.count) == stats.segmentsSealed)
            // The chain: each seal names the one before it.
            for (a, b) in zip(catalog.entries, catalog.entries.dropFirst()) {
                #expect(b.seal.previousSequence == a.seal.sequence)
                #expect(b.seal.previousRoot == a.seal.merkleRoot)
            }
            var q = EventQuery()
            q.includeDuplicates = true
            let stored = try AuditStore(directories: [dir]).search(q, includeOpenSegments: false)
            #expect(stored.map(\.event.spanID).sorted() == events.map(\.spanID).sorted())
            #expect(Verifier.verifyDirectory(dir).problems.isEmpty)
        }
    }

    /// An append never waits for a lay-out. Here the sealer's publish of a laid-out segment waits for the catalog
    /// lock, which the test holds as a retention job would; appends must still be acknowledged meanwhile. (The
    /// writer queue used to try publishing as well, wait for the lay-out's turn, and hold every acknowledgement
    /// behind it: the seconds-long acknowledgement stalls of BENCHMARKS.md while a seal ran.)
    @Test func appendsAreAcknowledgedWhileALayOutWaits() async throws {
        try await TempDir.with { tmp in
            var options = DurableLog.Options()
            options.fsync = .interval(milliseconds: 2)
            options.writer.maxSegmentRecords = 100
            let dir = tmp.dataDirectory
            let log = try DurableLog(directory: dir, options: options, logger: quietLogger)
            let events = (0..<200).map { RandomEvents.small(seed: UInt64($0)) }
            let lock = try #require(try DataDirectory.tryLock(dir.catalogLockPath))
            _ = try await log.append(Array(events[0..<150]))  // past 100 records: the segment is retired
            // Its sealed file appears, then the publish waits for the catalog lock with the lay-out's turn held.
            var waited = 0
            while try dir.listSegmentFiles().sealed.isEmpty && waited < 600 {
                try await Task.sleep(for: .milliseconds(50))
                waited += 1
            }
            #expect(try dir.listSegmentFiles().sealed.count == 1)
            try await Task.sleep(for: .milliseconds(200))
            #expect(try dir.loadCatalog().entries.isEmpty)  // still unpublished: the lock is held
            let outcome = await withTaskGroup(of: String.self) { group in
                group.addTask {
                    do {
                        _ = try await log.append(Array(events[150...]))
                        return "acknowledged"
                    } catch {
                        return "refused: \(error)"
                    }
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(30))
                    return "timed out"
                }
                let first = await group.next() ?? "none"
                group.cancelAll()
                // A stuck append would keep the group waiting: let the lay-out go on so the test ends either way.
                FileIO.close(lock)
                await group.waitForAll()
                return first
            }
            #expect(outcome == "acknowledged")
            try await log.close()
            #expect(try dir.loadCatalog().entries.count == 2)
            var q = EventQuery()
            q.includeDuplicates = true
            let stored = try AuditStore(directories: [dir]).search(q, includeOpenSegments: false)
            #expect(stored.map(\.event.spanID).sorted() == events.map(\.spanID).sorted())
            #expect(Verifier.verifyDirectory(dir).problems.isEmpty)
        }
    }

    @Test func fullQueueRefusesInsteadOfBuffering() async throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var options = DurableLog.Options()
        options.maxPendingEvents = 10
        options.fsync = .always
        let log = try DurableLog(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<100 {
                group.addTask {
                    (try? await log.append((0..<8).map { RandomEvents.small(seed: UInt64(i * 8 + $0)) })) != nil
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        let accepted = outcomes.filter { $0 }.count
        #expect(accepted >= 1)
        #expect(log.statistics.refusedEvents == UInt64((100 - accepted) * 8))
        try await log.close()
        let store = try AuditStore(directories: [tmp.dataDirectory])
        #expect(try store.search(EventQuery()).count == accepted * 8)
    }

    @Test func appendAfterCloseIsRefused() async throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let log = try DurableLog(directory: tmp.dataDirectory, logger: quietLogger)
        try await log.close()
        await #expect { try await log.append([RandomEvents.small(seed: 1)]) } throws: {
            ($0 as? LogFormatError)?.code == .invalidState
        }
    }
}

@Suite struct WriterLimitTests {
    @Test func tooDeeplyNestedEventIsRefusedAtWriteNotAtRead() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        var value = AttributeValue.int(1)
        for _ in 0..<RecordCodec.maxValueDepth { value = .keyValueList([Attribute("k", value)]) }
        let deep = AuditEvent(kind: .span, startTimeUnixNano: 1, attributes: [Attribute("deep", value)])
        #expect(RecordCodec.valueDepth(of: deep) == RecordCodec.maxValueDepth + 1)
        #expect { try writer.append([deep]) } throws: { ($0 as? LogFormatError)?.code == .limitExceeded }
        var ok = AttributeValue.int(1)
        for _ in 0..<(RecordCodec.maxValueDepth - 1) { ok = .array([ok]) }
        let fine = AuditEvent(kind: .span, startTimeUnixNano: 1, attributes: [Attribute("ok", ok)])
        try writer.append([fine])
        let entry = try #require(try writer.seal())
        let back = try SegmentReader(path: tmp.dataDirectory.path(relative: entry.relativePath), sealed: true).scan()
        #expect(back.map(\.event) == [fine])
    }

    @Test func recoveryKeepsTheBytesItCutAndQuarantinesForeignSegments() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        do {
            let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
            try writer.append((0..<10).map { RandomEvents.small(seed: UInt64($0)) })
            try writer.flush()
        }
        let open = tmp.dataDirectory.segmentsPath + "/" + (try tmp.dataDirectory.listSegmentFiles().open[0])
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: open))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([9, 9, 9]))
        try handle.close()
        let size = Damage.size(open)
        _ = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        #expect(Damage.size(open + ".tail-\(size - 3)") == 3)

        // An unsealed segment of another node in this directory is left alone, renamed, never sealed as ours.
        let other = TempDir()
        defer { other.remove() }
        do {
            let writer = try SegmentWriter(directory: other.dataDirectory, logger: quietLogger)
            try writer.append([RandomEvents.small(seed: 1)])
            try writer.flush()
        }
        let foreign = other.dataDirectory.segmentsPath + "/" + (try other.dataDirectory.listSegmentFiles().open[0])
        let moved = tmp.dataDirectory.segmentsPath + "/" + DataDirectory.fileName(sequence: 9, sealed: false)
        try FileManager.default.copyItem(atPath: foreign, toPath: moved)
        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        #expect(writer.recoveries.first?.action == .quarantined)
        #expect(FileManager.default.fileExists(atPath: moved + ".damaged"))
        // Its sequence number is not reused.
        try writer.append([RandomEvents.small(seed: 2)])
        #expect(writer.activeSequence == 10)
    }
}
