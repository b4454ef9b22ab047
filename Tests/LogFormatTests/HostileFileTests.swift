import Foundation
import TestSupport
import Testing

@testable import LogFormat

/// Damaged, truncated, zero-filled and newer-version files: each gives a clear error naming the file and
/// offset, never a crash or a silent wrong answer.
@Suite struct HostileFileTests {
    /// A sealed segment of 120 events in several blocks, in traces of three that carry a request id of their own
    /// (as hex, and as a UUID: column blocks keep a trace run's once); returns its path and footer.
    func sealedSegment(_ tmp: TempDir, codec: CompressionCodec = .lz4) throws -> (String, SegmentFooter) {
        var options = WriterOptions()
        options.targetBlockBytes = 4 << 10
        options.codec = codec
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        var events = (0..<120).map { RandomEvents.small(seed: UInt64($0)) }
        for i in events.indices {
            events[i].traceID = events[i - i % 3].traceID
            let id = OwnRequestID.hex(events[i].traceID)
            events[i].attributes.append(Attribute("x-request-id", .string(i % 3 == 2 ? OwnRequestID.uuid(id) : id)))
        }
        try writer.append(events)
        let entry = try #require(try writer.seal())
        let path = tmp.dataDirectory.path(relative: entry.relativePath)
        let footer = try MappedFile(path: path).withBytes { (b) throws(LogFormatError) in
            try SegmentFooter.parse(fileBytes: b)
        }
        return (path, footer)
    }

    /// Opens and fully reads a sealed segment; returns the error, if any.
    func readAll(_ path: String) -> LogFormatError? {
        do {
            let reader = try SegmentReader(path: path, sealed: true)
            try reader.checkIndex()
            _ = try reader.scan()
            return nil
        } catch {
            return error
        }
    }

    @Test func emptyFile() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let path = tmp.path + "/empty.seg"
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        let e = try #require(readAll(path))
        #expect(e.code == .truncated)
        #expect(e.path == path)
    }

    @Test func notASegmentFile() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let path = tmp.path + "/other.seg"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x41, count: 4_096)))
        #expect(readAll(path)?.code == .badMagic)
    }

    @Test func zeroFilledFile() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, _) = try sealedSegment(tmp)
        try Damage.zero(path, range: 0..<Damage.size(path))
        #expect(readAll(path)?.code == .badMagic)
    }

    @Test func newerSegmentVersionIsNamed() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, _) = try sealedSegment(tmp)
        try Damage.flip(path, at: 8, mask: 0x01)  // version 2 -> 3
        let e = try #require(readAll(path))
        #expect(e.code == .unsupportedVersion)
        #expect(e.message.contains("version 3"))
        #expect(e.offset == 8)
    }

    @Test(arguments: [1, 100, FormatConstants.footerSize - 1, FormatConstants.footerSize + 10])
    func truncatedTail(cut: Int) throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, _) = try sealedSegment(tmp)
        try Damage.cut(path, to: Damage.size(path) - cut)
        let e = try #require(readAll(path))
        #expect(e.code == .badMagic)
        #expect(e.message.contains("unsealed or truncated"))
        #expect(e.path == path)
    }

    @Test func badFooterChecksum() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, _) = try sealedSegment(tmp)
        try Damage.flip(path, at: Damage.size(path) - FormatConstants.footerSize + 40)
        let e = try #require(readAll(path))
        #expect(e.code == .checksumMismatch)
        #expect(e.offset == Damage.size(path) - 16)
    }

    @Test func badBlockHeaderChecksum() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, _) = try sealedSegment(tmp)
        try Damage.flip(path, at: FormatConstants.fileHeaderSize + 12)  // stored length of block 0
        let e = try #require(readAll(path))
        #expect(e.code == .checksumMismatch)
        #expect(e.offset == FormatConstants.fileHeaderSize)
        #expect(e.message.contains("block header checksum"))
    }

    @Test func badBlockPayloadChecksum() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, _) = try sealedSegment(tmp)
        try Damage.flip(path, at: FormatConstants.fileHeaderSize + FormatConstants.blockHeaderSize + 5)
        let e = try #require(readAll(path))
        #expect(e.code == .checksumMismatch)
        #expect(e.message.contains("block 0 payload"))
    }

    @Test func badIndexChecksum() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, footer) = try sealedSegment(tmp)
        // Inside the block table, which the version 2 head checksum covers: the segment does not open.
        try Damage.flip(path, at: Int(footer.indexOffset) + FormatConstants.blockHeaderSize + 8 + 10)
        let e = try #require(readAll(path))
        #expect(e.code == .checksumMismatch)
        #expect(e.message.contains("index head"))
    }

    @Test func badIndexSectionIsFoundWhenUsed() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, footer) = try sealedSegment(tmp)
        let payloadStart = Int(footer.indexOffset) + FormatConstants.blockHeaderSize
        let original = try SegmentReader(path: path, sealed: true)
        let index = try #require(original.index)
        #expect(index.version == FormatConstants.indexVersionRollup)
        let service = try #require(try original.scan().first?.event.service)
        // The last byte of the trace section (the count rollup follows it); damage it.
        var traceEnd = 0
        for (name, size) in index.partSizes {
            traceEnd += size
            if name == "index trace" { break }
        }
        try Damage.flip(path, at: payloadStart + traceEnd - 1)
        let reader = try SegmentReader(path: path, sealed: true)  // the head is intact: it opens
        #expect(try !reader.ordinals(.service, key: Array(service.utf8)).isEmpty)
        do {
            _ = try reader.ordinals(.traceID, key: try reader.scan()[0].event.traceID.bytes)
            Issue.record("a damaged trace section was used")
        } catch {
            #expect(error.code == .checksumMismatch)
            #expect(error.message.contains("index section trace"))
            #expect(error.path == path)
            #expect((error.offset ?? 0) > payloadStart)
        }
        #expect(readAll(path)?.code == .checksumMismatch)
    }

    @Test func unknownCodecInAnOtherwiseValidBlockHeader() throws {
        // Rewrite block 0's codec byte and re-seal its header checksum: the reader must name the codec.
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, _) = try sealedSegment(tmp)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let h = FormatConstants.fileHeaderSize
        bytes[h + 5] = 9
        let crc = Checksum.crc32(bytes[h..<h + FormatConstants.blockHeaderSize - 4])
        withUnsafeBytes(of: crc.littleEndian) { for (i, b) in $0.enumerated() { bytes[h + 44 + i] = b } }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let e = try #require(readAll(path))
        #expect(e.code == .malformed)
        #expect(e.message.contains("unknown compression codec 9"))
    }

    @Test(arguments: CompressionCodec.allCases)
    func everySingleByteFlipIsDetected(codec: CompressionCodec) throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, _) = try sealedSegment(tmp, codec: codec)
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        var rng = SplitMix(UInt64(codec.rawValue) + 77)
        var offsets = (0..<150).map { _ in Int(rng.next() % UInt64(original.count)) }
        offsets += [0, 7, 63, 64, original.count - 1, original.count - 9, original.count - 12]
        for offset in offsets {
            var damaged = [UInt8](original)
            damaged[offset] ^= UInt8(1 + rng.next() % 255)
            try Data(damaged).write(to: URL(fileURLWithPath: path))
            let e = readAll(path)
            #expect(e != nil, "a flip at offset \(offset) went unnoticed")
            #expect(e?.path == path)
        }
    }

    @Test func randomCutsAndGarbageNeverCrash() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, _) = try sealedSegment(tmp)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var rng = SplitMix(4242)
        var detected = 0
        for _ in 0..<100 {
            var damaged = Array(original.prefix(Int(rng.next() % UInt64(original.count))))
            damaged += (0..<Int(rng.next() % 600)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            try Data(damaged).write(to: URL(fileURLWithPath: path))
            if readAll(path) != nil { detected += 1 }
            // As an unsealed segment the same bytes must scan without crashing, keeping only whole blocks.
            if let reader = try? SegmentReader(path: path, sealed: false) { _ = try? reader.scan() }
        }
        #expect(detected == 100)
    }

    @Test func damagedCatalogIsRebuiltFromTheSegments() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        _ = try sealedSegment(tmp)
        let catalog = try tmp.dataDirectory.loadCatalog()
        try Damage.flip(tmp.dataDirectory.catalogPath, at: 20)
        #expect { try tmp.dataDirectory.loadCatalog() } throws: {
            let e = $0 as? LogFormatError
            return e?.code == .checksumMismatch && e?.path == tmp.dataDirectory.catalogPath
        }
        #expect(try tmp.dataDirectory.currentCatalog(repair: true) == catalog)
        #expect(try tmp.dataDirectory.loadCatalog() == catalog)
    }

    @Test(arguments: [0, 5, 19])
    func truncatedCatalog(length: Int) throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        _ = try sealedSegment(tmp)
        try Damage.cut(tmp.dataDirectory.catalogPath, to: length)
        #expect { try tmp.dataDirectory.loadCatalog() } throws: { ($0 as? LogFormatError)?.code == .truncated }
    }
}
