import Foundation
import StoreQuery
import TestSupport
import Testing

@testable import LogFormat

/// Tampering that keeps every checksum valid (an attacker who knows the format) must still be caught by the
/// Merkle root, the rebuilt index, the chain or the catalog — and named precisely.
@Suite struct VerifierTests {
    /// Three sealed segments, uncompressed blocks (so a test can edit a record in place), and the directory.
    func store(_ tmp: TempDir, signer: SealSigner? = nil, layout: SealLayout = .columns) throws -> [CatalogEntry] {
        var options = WriterOptions()
        options.sealLayout = layout
        options.codec = .none
        options.targetBlockBytes = 4 << 10
        options.columnBlockRows = 16
        options.signer = signer
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        for s in 0..<3 {
            try writer.append((0..<80).map { RandomEvents.small(seed: UInt64(s * 100 + $0)) })
            try writer.seal()
        }
        return writer.catalog.entries
    }

    /// Edits one byte of block `block`'s payload and re-forges its payload and header checksums.
    func forgeBlockEdit(_ path: String, block: Int, payloadOffset: Int) throws {
        let reader = try SegmentReader(path: path, sealed: true)
        let start = Int(reader.blocks[block].offset)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let header = try bytes.withBytes { (b) throws(LogFormatError) in
            try BlockHeader.parse(UnsafeRawBufferPointer(rebasing: b[start...]))
        }
        let p = start + FormatConstants.blockHeaderSize
        bytes[p + payloadOffset] ^= 0x01
        var h = header
        h.payloadCRC = Checksum.crc32(bytes[p..<p + Int(header.storedLength)])
        var w = BinaryWriter()
        h.write(into: &w)
        bytes.replaceSubrange(start..<p, with: w.bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func intactStoreVerifies() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        _ = try store(tmp)
        let v = Verifier.verifyDirectory(tmp.dataDirectory)
        #expect(v.problems.isEmpty, "\(v.problems)")
        #expect(v.validSegmentCount == 3)
        #expect(v.summary.hasPrefix("3/3 segments valid, 240 records checked"))
    }

    @Test func flippedByteWithForgedChecksumsIsARootMismatch() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        // Rows: a forged edit of a column block also needs its column's checksum forged (covered by the column
        // block's damage tests); here the edit must decode, to reach the root.
        let entries = try store(tmp, layout: .rows)
        let path = tmp.dataDirectory.path(relative: entries[1].relativePath)
        // Payload offset 60 is inside the first record's name ("op-N" after a 1-byte length, 56-byte header, flags, name length): it still decodes.
        try forgeBlockEdit(path, block: 0, payloadOffset: 60)
        let v = Verifier.verifyDirectory(tmp.dataDirectory)
        let root = try #require(v.problems.first { $0.kind == .rootMismatch })
        #expect(root.file == path)
        #expect(root.expected == entries[1].seal.merkleRoot.hex)
        #expect(root.found != root.expected)
        #expect(v.validSegmentCount == 2)
    }

    @Test func damagedBlockIsNamedAndTheRestStillChecked() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let entries = try store(tmp)
        let path = tmp.dataDirectory.path(relative: entries[0].relativePath)
        let reader = try SegmentReader(path: path, sealed: true)
        #expect(reader.blocks.count > 2)
        try Damage.flip(path, at: Int(reader.blocks[1].offset) + FormatConstants.blockHeaderSize + 10)
        let v = Verifier.verifySegment(path: path)
        #expect(v.problems.count == 1)
        #expect(v.problems[0].kind == .blockDamaged)
        #expect(v.problems[0].block == 1)
        #expect(v.recordsChecked == 80 - Int(reader.blocks[1].recordCount))
    }

    @Test func indexEditedToHideRecordsIsCaught() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let entries = try store(tmp)
        let path = tmp.dataDirectory.path(relative: entries[2].relativePath)
        let reader = try SegmentReader(path: path, sealed: true)
        let footer = try #require(reader.footer)
        // Change one byte of the postings area and re-forge the index block's checksums.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let start = Int(footer.indexOffset)
        let header = try bytes.withBytes { (b) throws(LogFormatError) in
            try BlockHeader.parse(UnsafeRawBufferPointer(rebasing: b[start...]))
        }
        let last = start + header.totalSize - 1
        bytes[last] ^= 0x01
        var h = header
        h.payloadCRC = Checksum.crc32(bytes[start + FormatConstants.blockHeaderSize...last])
        var w = BinaryWriter()
        h.write(into: &w)
        bytes.replaceSubrange(start..<start + FormatConstants.blockHeaderSize, with: w.bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let v = Verifier.verifySegment(path: path)
        #expect(v.problems.map(\.kind).contains(.indexMismatch) || v.problems.map(\.kind).contains(.invalidFormat))
        #expect(v.problems.allSatisfy { $0.file == path })
    }

    @Test func deletedMiddleSegmentBreaksTheChain() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let entries = try store(tmp)
        try FileManager.default.removeItem(atPath: tmp.dataDirectory.path(relative: entries[1].relativePath))
        let v = Verifier.verifyDirectory(tmp.dataDirectory)
        let kinds = v.storeProblems.map(\.kind)
        #expect(kinds.contains(.missingSegment))
        let chain = try #require(
            v.storeProblems.first { $0.kind == .missingSegment && $0.file.hasSuffix(entries[2].relativePath) })
        #expect(chain.expected?.contains("segment 2") == true)
        // The catalog still lists it: also reported as not found.
        #expect(v.storeProblems.contains { $0.kind == .missingSegment && $0.detail.contains("catalog") })
    }

    @Test func swappedSegmentFilesAreNamed() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let entries = try store(tmp)
        let a = tmp.dataDirectory.path(relative: entries[0].relativePath)
        let b = tmp.dataDirectory.path(relative: entries[1].relativePath)
        try FileManager.default.moveItem(atPath: a, toPath: a + ".x")
        try FileManager.default.moveItem(atPath: b, toPath: a)
        try FileManager.default.moveItem(atPath: a + ".x", toPath: b)
        let v = Verifier.verifyDirectory(tmp.dataDirectory)
        let moved = v.storeProblems.filter { $0.kind == .unexpectedSegment && $0.detail.contains("moved") }
        #expect(moved.count == 2)
        #expect(v.storeProblems.contains { $0.kind == .catalogMismatch })
    }

    @Test func unlistedSegmentAndStaleCatalogAreReported() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let entries = try store(tmp)
        var catalog = try tmp.dataDirectory.loadCatalog()
        catalog.remove(nodeID: entries[0].nodeID, sequence: entries[0].sequence)
        try tmp.dataDirectory.saveCatalog(catalog)
        let v = Verifier.verifyDirectory(tmp.dataDirectory)
        #expect(
            v.storeProblems.contains { $0.kind == .unexpectedSegment && $0.file.hasSuffix(entries[0].relativePath) })
    }

    @Test func tornOpenSegmentTailIsReported() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        _ = try store(tmp)
        let writer = try SegmentWriter(directory: tmp.dataDirectory, logger: quietLogger)
        try writer.append([RandomEvents.small(seed: 1)])
        try writer.flush()
        let open = tmp.dataDirectory.segmentsPath + "/" + (try tmp.dataDirectory.listSegmentFiles().open[0])
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: open))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([1, 2, 3]))
        try handle.close()
        let v = Verifier.verifyDirectory(tmp.dataDirectory)
        #expect(v.storeProblems.map(\.kind) == [.openSegmentTail])
    }
}

@Suite struct SignedSealTests {
    func signedStore(_ tmp: TempDir) throws -> (SealSigner, [CatalogEntry]) {
        let signer = SealSigner.generate()
        var options = WriterOptions()
        options.signer = signer
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        for s in 0..<2 {
            try writer.append((0..<40).map { RandomEvents.small(seed: UInt64(s * 50 + $0)) })
            try writer.seal()
        }
        return (signer, writer.catalog.entries)
    }

    @Test func signedSealsVerifyWithTheRightKey() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (signer, entries) = try signedStore(tmp)
        #expect(entries.allSatisfy { $0.seal.isSigned && $0.seal.signingKeyID == signer.publicKey.keyID })
        let v = Verifier.verifyDirectory(
            tmp.dataDirectory, options: VerifyOptions(publicKeys: [signer.publicKey], requireSignatures: true))
        #expect(v.problems.isEmpty, "\(v.problems)")
        #expect(v.segments.allSatisfy { $0.signatureChecked })
    }

    @Test func unknownKeyAndMissingSignatureAreNamed() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        _ = try signedStore(tmp)
        let other = SealSigner.generate().publicKey
        let v = Verifier.verifyDirectory(tmp.dataDirectory, options: VerifyOptions(publicKeys: [other]))
        #expect(v.problems.map(\.kind) == [.publicKeyNotFound, .publicKeyNotFound])

        let unsigned = TempDir()
        defer { unsigned.remove() }
        let writer = try SegmentWriter(directory: unsigned.dataDirectory, logger: quietLogger)
        try writer.append([RandomEvents.small(seed: 1)])
        try writer.seal()
        let u = Verifier.verifyDirectory(unsigned.dataDirectory, options: VerifyOptions(requireSignatures: true))
        #expect(u.problems.map(\.kind) == [.signatureMissing])
    }

    @Test func sealEditedWithForgedChecksumFailsTheSignature() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (signer, entries) = try signedStore(tmp)
        let path = tmp.dataDirectory.path(relative: entries[0].relativePath)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let footerStart = bytes.count - FormatConstants.footerSize
        bytes[footerStart + 128] ^= 0x01  // sealedAtUnixNano: not checked against the records, only by the signature
        let crcOffset =
            footerStart + FormatConstants.footerSignedSize + FormatConstants.signatureSize
            + FormatConstants.footerPhysicalSize
        let crc = Checksum.crc32(bytes[footerStart..<crcOffset])
        withUnsafeBytes(of: crc.littleEndian) { for (i, b) in $0.enumerated() { bytes[crcOffset + i] = b } }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let v = Verifier.verifySegment(path: path, options: VerifyOptions(publicKeys: [signer.publicKey]))
        #expect(v.problems.map(\.kind) == [.signatureInvalid])
        #expect(v.problems.first?.file == path)
    }
}
