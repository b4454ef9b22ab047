// Sequential block scanning, shared by crash recovery, the reader of unsealed segments and verification.

/// How a scan of a segment's blocks ended.
public struct ScanResult: Sendable {
    /// Offset just past the last valid data block.
    public var validEnd: Int
    public var blocks: [BlockLocation]
    /// Records of the valid blocks, counted from the scan's `firstOrdinal`: the ordinal the next block starts at.
    public var recordCount: UInt32
    /// Why scanning stopped before the end of the bytes: nil when every byte was consumed by valid blocks.
    public var stop: LogFormatError?
    /// True when scanning stopped at an index block (a seal was in progress or the file is sealed).
    public var reachedIndex: Bool
}

public enum SegmentScanner {
    /// Walks data blocks from just after the file header (or from `start`, the first block's records then
    /// numbered from `firstOrdinal`: for a reader that hands over a file a block at a time). Each block's header
    /// checksum and payload checksum are checked; with `decode`, the payload is decompressed and each record is
    /// passed to `visit` with its ordinal. Stops at the first damaged, torn or non-data block, reporting where
    /// (relative to `bytes`) and why.
    public static func scan(
        _ bytes: UnsafeRawBufferPointer, end: Int? = nil, from start: Int = FormatConstants.fileHeaderSize,
        firstOrdinal: UInt32 = 0, decode: Bool,
        visit: (BlockHeader, Int, UnsafeRawBufferPointer) throws(LogFormatError) -> Void = {
            _, _, _ throws(LogFormatError) in
        },
        visitBlock: (BlockHeader, Int) -> Void = { _, _ in }
    ) -> ScanResult {
        let limit = end ?? bytes.count
        var offset = start
        var result = ScanResult(validEnd: offset, blocks: [], recordCount: firstOrdinal, stop: nil, reachedIndex: false)
        var scratch: [UInt8] = []
        while offset < limit {
            let remaining = UnsafeRawBufferPointer(rebasing: bytes[offset..<limit])
            do throws(LogFormatError) {
                let header = try BlockHeader.parse(remaining)
                if header.type == .index {
                    result.reachedIndex = true
                    return result
                }
                guard header.totalSize <= remaining.count else {
                    throw LogFormatError(
                        .truncated,
                        "block of \(header.totalSize) bytes is cut off: only \(remaining.count) bytes remain", offset: 0
                    )
                }
                guard header.firstOrdinal == result.recordCount else {
                    throw LogFormatError(
                        .malformed,
                        "block starts at record \(header.firstOrdinal), expected \(result.recordCount)", offset: 20)
                }
                let stored = UnsafeRawBufferPointer(
                    rebasing: remaining[FormatConstants.blockHeaderSize..<header.totalSize])
                let crc = Checksum.crc32(stored)
                guard crc == header.payloadCRC else {
                    throw LogFormatError(
                        .checksumMismatch,
                        "block payload checksum: stored \(BlockHeader.hex32(header.payloadCRC)), computed \(BlockHeader.hex32(crc))",
                        offset: FormatConstants.blockHeaderSize)
                }
                if decode {
                    try BlockCompression.decompress(
                        stored, codec: header.codec, rawLength: Int(header.rawLength), into: &scratch)
                    try scratch.withBytes { (raw) throws(LogFormatError) in
                        var it = BlockRecordIterator(payload: raw, recordCount: Int(header.recordCount))
                        var ordinal = Int(header.firstOrdinal)
                        while let record = it.next() {
                            try visit(header, ordinal, record)
                            ordinal += 1
                        }
                        try it.finish()
                    }
                }
                visitBlock(header, offset)
                result.blocks.append(BlockLocation(header, offset: UInt64(offset)))
                result.recordCount += header.recordCount
                offset += header.totalSize
                result.validEnd = offset
            } catch {
                result.stop = error.at(path: nil, base: offset)
                return result
            }
        }
        return result
    }
}
