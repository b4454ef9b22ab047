// Blocks: the unit of writing, compression and checksumming (docs/format/segment.md, "Blocks").
//
//   block := header(48 bytes) payload(storedLength bytes)
//   header := magic u32 | type u8 | codec u8 | reserved u16 | storedLength u32 | rawLength u32
//             | recordCount u32 | firstOrdinal u32 | minTime u64 | maxTime u64 | payloadCRC u32 | headerCRC u32
//
// A data block's raw payload is `(uvarint length | canonical record)*`.

public struct BlockHeader: Sendable, Hashable {
    public var type: FormatConstants.BlockType
    public var codec: CompressionCodec
    public var storedLength: UInt32
    public var rawLength: UInt32
    public var recordCount: UInt32
    /// Position of the block's first record among all records of the segment (0 for the index block, whose
    /// `recordCount` is the segment's).
    public var firstOrdinal: UInt32
    /// Smallest and largest record start time in the block (Unix ns); for the index block, the segment's.
    public var minTime: UInt64
    public var maxTime: UInt64
    /// CRC-32 of the stored (compressed) payload.
    public var payloadCRC: UInt32

    /// Total bytes of the block on disk.
    public var totalSize: Int { FormatConstants.blockHeaderSize + Int(storedLength) }

    public func write(into w: inout BinaryWriter) {
        let start = w.count
        w.u32(FormatConstants.blockMagic)
        w.u8(type.rawValue)
        w.u8(codec.rawValue)
        w.u16(0)
        w.u32(storedLength)
        w.u32(rawLength)
        w.u32(recordCount)
        w.u32(firstOrdinal)
        w.u64(minTime)
        w.u64(maxTime)
        w.u32(payloadCRC)
        let crc = w.bytes.withUnsafeBytes { Checksum.crc32(UnsafeRawBufferPointer(rebasing: $0[start..<w.count])) }
        w.u32(crc)
    }

    /// Parses and checks a header at the start of `bytes` (which must hold at least the header).
    /// Errors carry offsets relative to `bytes`.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(LogFormatError) -> BlockHeader {
        guard bytes.count >= FormatConstants.blockHeaderSize else {
            throw LogFormatError(
                .truncated, "block header needs \(FormatConstants.blockHeaderSize) bytes, \(bytes.count) remain",
                offset: 0)
        }
        var r = BinaryReader(UnsafeRawBufferPointer(rebasing: bytes[0..<FormatConstants.blockHeaderSize]))
        let magic = try r.u32()
        guard magic == FormatConstants.blockMagic else {
            throw LogFormatError(
                .badMagic, "expected a block header (magic AQBK), found bytes \(hex32(magic))", offset: 0)
        }
        let storedCRC = UInt32(
            littleEndian: bytes.loadUnaligned(fromByteOffset: FormatConstants.blockHeaderSize - 4, as: UInt32.self))
        let computedCRC = Checksum.crc32(
            UnsafeRawBufferPointer(rebasing: bytes[0..<FormatConstants.blockHeaderSize - 4]))
        guard storedCRC == computedCRC else {
            throw LogFormatError(
                .checksumMismatch,
                "block header checksum: stored \(hex32(storedCRC)), computed \(hex32(computedCRC))", offset: 0)
        }
        let typeByte = try r.u8()
        guard let type = FormatConstants.BlockType(rawValue: typeByte) else {
            throw LogFormatError(.malformed, "unknown block type \(typeByte)", offset: 4)
        }
        let codecByte = try r.u8()
        guard let codec = CompressionCodec(rawValue: codecByte) else {
            throw LogFormatError(.malformed, "unknown compression codec \(codecByte)", offset: 5)
        }
        guard try r.u16() == 0 else {
            throw LogFormatError(.malformed, "block header reserved field is not zero", offset: 6)
        }
        let stored = try r.u32()
        let raw = try r.u32()
        guard stored <= FormatConstants.maxBlockPayload, raw <= FormatConstants.maxBlockPayload else {
            throw LogFormatError(
                .malformed, "block payload of \(stored) stored / \(raw) raw bytes exceeds the 64 MiB limit", offset: 8)
        }
        let header = BlockHeader(
            type: type, codec: codec, storedLength: stored, rawLength: raw, recordCount: try r.u32(),
            firstOrdinal: try r.u32(), minTime: try r.u64(), maxTime: try r.u64(), payloadCRC: try r.u32())
        return header
    }

    static func hex32(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
    }
}

/// Builds a data block from records, compresses it and frames it with its header.
public struct BlockBuilder: Sendable {
    public let codec: CompressionCodec
    public let zlibLevel: Int32
    /// Raw payload being built: `(uvarint length | record)*`.
    public private(set) var raw = BinaryWriter(capacity: 128 << 10)
    public private(set) var recordCount: UInt32 = 0
    public private(set) var minTime = UInt64.max
    public private(set) var maxTime = UInt64.min
    private var compressed: [UInt8] = []

    public init(codec: CompressionCodec, zlibLevel: Int32 = 6) {
        self.codec = codec
        self.zlibLevel = zlibLevel
    }

    public var isEmpty: Bool { recordCount == 0 }
    public var rawSize: Int { raw.count }

    /// Adds one canonical record.
    public mutating func add(record: UnsafeRawBufferPointer, startTime: UInt64) {
        raw.uvarint(record.count)
        raw.raw(record)
        recordCount += 1
        minTime = Swift.min(minTime, startTime)
        maxTime = Swift.max(maxTime, startTime)
    }

    /// Compresses the records added so far into a framed block, appends it to `out` and resets the builder.
    public mutating func finish(firstOrdinal: UInt32, into out: inout BinaryWriter) throws(LogFormatError)
        -> BlockHeader
    {
        let codec = self.codec
        let level = self.zlibLevel
        var compressed = self.compressed
        try raw.bytes.withBytes { (buffer) throws(LogFormatError) in
            try BlockCompression.compress(buffer, codec: codec, level: level, into: &compressed)
        }
        let header = BlockHeader(
            type: .data, codec: codec, storedLength: UInt32(compressed.count), rawLength: UInt32(raw.count),
            recordCount: recordCount, firstOrdinal: firstOrdinal, minTime: isEmpty ? 0 : minTime,
            maxTime: isEmpty ? 0 : maxTime, payloadCRC: Checksum.crc32(compressed))
        header.write(into: &out)
        out.raw(compressed)
        self.compressed = compressed
        raw.bytes.removeAll(keepingCapacity: true)
        recordCount = 0
        minTime = .max
        maxTime = .min
        return header
    }
}

/// Walks the records of a raw (decompressed) data block payload.
public struct BlockRecordIterator: IteratorProtocol {
    private var reader: BinaryReader
    private var remainingRecords: Int
    /// Set when the payload does not hold the number of records the header promised.
    public private(set) var error: LogFormatError?

    public init(payload: UnsafeRawBufferPointer, recordCount: Int) {
        reader = BinaryReader(payload)
        remainingRecords = recordCount
    }

    /// Offset of the next record's length prefix within the payload.
    public var offset: Int { reader.offset }

    public mutating func next() -> UnsafeRawBufferPointer? {
        guard remainingRecords > 0, error == nil else { return nil }
        do {
            let length = try reader.uvarint(max: FormatConstants.maxRecordBytes, "record length")
            let slice = try reader.rawSlice(length)
            remainingRecords -= 1
            return slice
        } catch {
            self.error = error
            return nil
        }
    }

    /// After iteration: throws if records were missing or bytes were left over.
    public func finish() throws(LogFormatError) {
        if let error { throw error }
        guard reader.isAtEnd else {
            throw LogFormatError(
                .malformed, "\(reader.remaining) bytes after the last record of the block",
                offset: reader.offset)
        }
    }
}
