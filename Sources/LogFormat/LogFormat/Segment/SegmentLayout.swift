// The fixed structures at both ends of a segment file: the file header and the footer with its seal
// (docs/format/segment.md, "File header" and "Footer").

/// A collector's node id: 16 random bytes, written in every segment it produces.
public struct NodeID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var raw: TraceID  // reuse the 16-byte inline storage

    public init(high: UInt64, low: UInt64) { raw = TraceID(high: high, low: low) }

    public static func random() -> NodeID {
        var g = SystemRandomNumberGenerator()
        return NodeID(high: g.next(), low: g.next())
    }

    public init?(hex: String) {
        guard hex.utf8.count == 32, let id = TraceID(hex: hex) else { return nil }
        raw = id
    }

    public var hex: String { raw.hex }
    public var description: String { raw.hex }
    public static func < (a: NodeID, b: NodeID) -> Bool { a.raw < b.raw }
}

/// The first 64 bytes of a segment file.
public struct SegmentFileHeader: Sendable, Hashable {
    public var version: UInt16
    public var nodeID: NodeID
    public var sequence: UInt64
    public var createdUnixNano: UInt64

    public init(
        version: UInt16 = FormatConstants.segmentVersionRows, nodeID: NodeID, sequence: UInt64, createdUnixNano: UInt64
    ) {
        self.version = version
        self.nodeID = nodeID
        self.sequence = sequence
        self.createdUnixNano = createdUnixNano
    }

    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: FormatConstants.fileHeaderSize)
        w.raw(FormatConstants.segmentMagic)
        w.u16(version)
        w.u16(0)
        w.u32(UInt32(FormatConstants.fileHeaderSize))
        w.u64BigEndian(nodeID.raw.high)
        w.u64BigEndian(nodeID.raw.low)
        w.u64(sequence)
        w.u64(createdUnixNano)
        w.raw([UInt8](repeating: 0, count: 12))
        w.u32(Checksum.crc32(w.bytes))
        return w.bytes
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(LogFormatError) -> SegmentFileHeader {
        let size = FormatConstants.fileHeaderSize
        guard bytes.count >= size else {
            if bytes.count >= 8, !bytes.prefix(8).elementsEqual(FormatConstants.segmentMagic) {
                throw LogFormatError(.badMagic, "not a segment file: the magic AQSEGMNT is missing", offset: 0)
            }
            throw LogFormatError(.truncated, "file header needs \(size) bytes, the file has \(bytes.count)", offset: 0)
        }
        guard bytes.prefix(8).elementsEqual(FormatConstants.segmentMagic) else {
            throw LogFormatError(.badMagic, "not a segment file: the magic AQSEGMNT is missing", offset: 0)
        }
        var r = BinaryReader(bytes, offset: 8)
        let version = try r.u16()
        guard version <= FormatConstants.segmentVersion, version >= 1 else {
            throw LogFormatError(
                .unsupportedVersion,
                "segment format version \(version); this reader knows versions 1…\(FormatConstants.segmentVersion)",
                offset: 8)
        }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: size - 4, as: UInt32.self))
        let computed = Checksum.crc32(UnsafeRawBufferPointer(rebasing: bytes[0..<size - 4]))
        guard stored == computed else {
            throw LogFormatError(
                .checksumMismatch,
                "file header checksum: stored \(BlockHeader.hex32(stored)), computed \(BlockHeader.hex32(computed))",
                offset: size - 4)
        }
        guard try r.u16() == 0 else { throw LogFormatError(.malformed, "file header flags are not zero", offset: 10) }
        let headerSize = try r.u32()
        guard headerSize == UInt32(size) else {
            throw LogFormatError(.malformed, "file header size \(headerSize), expected \(size)", offset: 12)
        }
        let node = NodeID(high: try r.u64BigEndian(), low: try r.u64BigEndian())
        let header = SegmentFileHeader(
            version: version, nodeID: node, sequence: try r.u64(), createdUnixNano: try r.u64())
        guard try r.bytes(12).allSatisfy({ $0 == 0 }) else {
            throw LogFormatError(.malformed, "file header reserved bytes are not zero", offset: 48)
        }
        return header
    }
}

/// The tier-independent, signed part of the footer: what an auditor's trust rests on.
public struct SegmentSeal: Sendable, Hashable {
    public var version: UInt16 = FormatConstants.footerVersion
    public var flags: UInt16 = 0
    public var nodeID: NodeID
    public var sequence: UInt64
    public var recordCount: UInt64
    public var minTime: UInt64
    public var maxTime: UInt64
    /// RFC 6962 root over the canonical bytes of the segment's records, in order.
    public var merkleRoot: Digest32
    /// Sequence of the previous sealed segment of the same node; 0 for the first.
    public var previousSequence: UInt64
    /// Merkle root of that previous segment; zero for the first.
    public var previousRoot: Digest32
    public var sealedAtUnixNano: UInt64
    /// Key id of the Ed25519 key that signed this seal; 0 when unsigned.
    public var signingKeyID: UInt64

    public init(
        nodeID: NodeID, sequence: UInt64, recordCount: UInt64, minTime: UInt64, maxTime: UInt64, merkleRoot: Digest32,
        previousSequence: UInt64, previousRoot: Digest32, sealedAtUnixNano: UInt64, signingKeyID: UInt64 = 0
    ) {
        self.nodeID = nodeID
        self.sequence = sequence
        self.recordCount = recordCount
        self.minTime = minTime
        self.maxTime = maxTime
        self.merkleRoot = merkleRoot
        self.previousSequence = previousSequence
        self.previousRoot = previousRoot
        self.sealedAtUnixNano = sealedAtUnixNano
        self.signingKeyID = signingKeyID
    }

    public var isSigned: Bool { flags & FormatConstants.footerFlagSigned != 0 }

    /// The exact bytes the signature covers (144 bytes).
    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: FormatConstants.footerSignedSize)
        w.u16(version)
        w.u16(flags)
        w.u32(0)
        w.u64BigEndian(nodeID.raw.high)
        w.u64BigEndian(nodeID.raw.low)
        w.u64(sequence)
        w.u64(recordCount)
        w.u64(minTime)
        w.u64(maxTime)
        w.digest(merkleRoot)
        w.u64(previousSequence)
        w.digest(previousRoot)
        w.u64(sealedAtUnixNano)
        w.u64(signingKeyID)
        assert(w.count == FormatConstants.footerSignedSize)
        return w.bytes
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(LogFormatError) -> SegmentSeal {
        guard bytes.count >= FormatConstants.footerSignedSize else {
            throw LogFormatError(.truncated, "a seal needs \(FormatConstants.footerSignedSize) bytes", offset: 0)
        }
        var r = BinaryReader(bytes)
        let version = try r.u16()
        guard version >= 1, version <= FormatConstants.footerVersion else {
            throw LogFormatError(
                .unsupportedVersion,
                "footer version \(version); this reader knows versions 1…\(FormatConstants.footerVersion)", offset: 0)
        }
        let flags = try r.u16()
        guard try r.u32() == 0 else {
            throw LogFormatError(.malformed, "the seal's reserved word is not zero", offset: 4)
        }
        var seal = SegmentSeal(
            nodeID: NodeID(high: try r.u64BigEndian(), low: try r.u64BigEndian()), sequence: try r.u64(),
            recordCount: try r.u64(), minTime: try r.u64(), maxTime: try r.u64(), merkleRoot: try r.digest(),
            previousSequence: try r.u64(), previousRoot: try r.digest(), sealedAtUnixNano: try r.u64(),
            signingKeyID: try r.u64())
        seal.version = version
        seal.flags = flags
        return seal
    }
}

/// The footer: seal, signature, where the index is, and a checksum; last 248 bytes of a sealed segment.
public struct SegmentFooter: Sendable, Hashable {
    public var seal: SegmentSeal
    /// Ed25519 signature over `seal.encoded()`; all zero when unsigned.
    public var signature: [UInt8]
    /// Offset of the index block (the end of the data blocks).
    public var indexOffset: UInt64
    /// Length of the index block including its header.
    public var indexLength: UInt64
    public var blockCount: UInt32

    public init(seal: SegmentSeal, signature: [UInt8]?, indexOffset: UInt64, indexLength: UInt64, blockCount: UInt32) {
        self.seal = seal
        self.signature = signature ?? [UInt8](repeating: 0, count: FormatConstants.signatureSize)
        self.indexOffset = indexOffset
        self.indexLength = indexLength
        self.blockCount = blockCount
    }

    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: FormatConstants.footerSize)
        w.raw(seal.encoded())
        w.raw(signature)
        w.u64(indexOffset)
        w.u64(indexLength)
        w.u32(blockCount)
        w.u32(0)
        w.u32(Checksum.crc32(w.bytes))
        w.u32(0)
        w.raw(FormatConstants.footerMagic)
        assert(w.count == FormatConstants.footerSize)
        return w.bytes
    }

    /// Parses the footer from the last `footerSize` bytes of `bytes`; offsets in errors are relative to `bytes`.
    public static func parse(fileBytes bytes: UnsafeRawBufferPointer) throws(LogFormatError) -> SegmentFooter {
        try parse(
            last: UnsafeRawBufferPointer(rebasing: bytes.suffix(FormatConstants.footerSize)), fileSize: bytes.count)
    }

    /// `parse(fileBytes:)` from the file's last `footerSize` bytes (all of it when shorter), read on their own.
    public static func parse(last: UnsafeRawBufferPointer, fileSize: Int) throws(LogFormatError) -> SegmentFooter {
        let size = FormatConstants.footerSize
        guard fileSize >= FormatConstants.fileHeaderSize + size, last.count == size else {
            throw LogFormatError(.truncated, "file of \(fileSize) bytes is too short to hold a footer", offset: 0)
        }
        let start = fileSize - size
        let footer = last
        guard footer.suffix(8).elementsEqual(FormatConstants.footerMagic) else {
            throw LogFormatError(
                .badMagic, "no footer: the file does not end with AQSEALED (unsealed or truncated)",
                offset: fileSize - 8)
        }
        let crcOffset =
            FormatConstants.footerSignedSize + FormatConstants.signatureSize + FormatConstants.footerPhysicalSize
        let stored = UInt32(littleEndian: footer.loadUnaligned(fromByteOffset: crcOffset, as: UInt32.self))
        let computed = Checksum.crc32(UnsafeRawBufferPointer(rebasing: footer[0..<crcOffset]))
        guard stored == computed else {
            throw LogFormatError(
                .checksumMismatch,
                "footer checksum: stored \(BlockHeader.hex32(stored)), computed \(BlockHeader.hex32(computed))",
                offset: start + crcOffset)
        }
        guard footer.loadUnaligned(fromByteOffset: crcOffset + 4, as: UInt32.self) == 0 else {
            throw LogFormatError(
                .malformed, "footer's reserved word after the checksum is not zero", offset: start + crcOffset + 4)
        }
        let seal: SegmentSeal
        do { seal = try SegmentSeal.parse(footer) } catch { throw error.at(path: nil, base: start) }
        var r = BinaryReader(footer, offset: FormatConstants.footerSignedSize)
        let signature = try r.bytes(FormatConstants.signatureSize)
        let indexOffset = try r.u64()
        let indexLength = try r.u64()
        let blockCount = try r.u32()
        guard indexOffset >= UInt64(FormatConstants.fileHeaderSize),
            indexLength >= UInt64(FormatConstants.blockHeaderSize),
            indexOffset + indexLength == UInt64(start)
        else {
            throw LogFormatError(
                .malformed,
                "footer places the index at \(indexOffset)+\(indexLength), which does not end where the footer begins (\(start))",
                offset: start + FormatConstants.footerSignedSize + FormatConstants.signatureSize)
        }
        return SegmentFooter(
            seal: seal, signature: signature, indexOffset: indexOffset, indexLength: indexLength, blockCount: blockCount
        )
    }
}
