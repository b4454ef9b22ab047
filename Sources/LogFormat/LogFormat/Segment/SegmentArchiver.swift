// The archive tier's copy of a sealed segment: the same records, seal and signature, recompressed with zlib in
// larger blocks. Roots cover canonical record bytes, so every root and signature stays valid.

/// Rewrites a sealed segment for the archive tier: adjacent data blocks merged up to `targetBlockBytes` of raw
/// payload (zlib's 32 KiB window loses less at block starts in larger blocks) and compressed with zlib; the index
/// keeps its terms and postings (ordinals do not change) with a new block table; the footer's physical fields are
/// updated. The file header, every canonical record in order, the seal and the signature are kept byte for byte.
public enum SegmentArchiver {
    /// Raw bytes per archive block: 1 MiB.
    public static let defaultTargetBlockBytes = 1 << 20

    public static func archived(
        _ reader: SegmentReader, level: Int32 = 9, targetBlockBytes: Int = defaultTargetBlockBytes
    ) throws(LogFormatError) -> [UInt8] {
        guard let footer = reader.footer else {
            throw LogFormatError(.invalidState, "only a sealed segment can be archived", path: reader.path)
        }
        let target = min(max(targetBlockBytes, 1), FormatConstants.maxBlockPayload / 2)
        let file = reader.file.bytes
        var out = BinaryWriter(capacity: file.count)
        out.raw(UnsafeRawBufferPointer(rebasing: file[0..<FormatConstants.fileHeaderSize]))
        var index = IndexBuilder()
        var group: [UInt8] = []
        var groupFirst: UInt32 = 0
        var groupCount: UInt32 = 0
        var groupMin = UInt64.max
        var groupMax = UInt64.min
        var compressed: [UInt8] = []
        func writeGroup() throws(LogFormatError) {
            guard groupCount > 0 else { return }
            try group.withBytes { (b) throws(LogFormatError) in
                try BlockCompression.compress(b, codec: .zlib, level: level, into: &compressed)
            }
            let header = BlockHeader(
                type: .data, codec: .zlib, storedLength: UInt32(compressed.count), rawLength: UInt32(group.count),
                recordCount: groupCount, firstOrdinal: groupFirst, minTime: groupMin, maxTime: groupMax,
                payloadCRC: Checksum.crc32(compressed))
            index.addBlock(BlockLocation(header, offset: UInt64(out.count)))
            header.write(into: &out)
            out.raw(compressed)
            group.removeAll(keepingCapacity: true)
            groupCount = 0
            groupMin = .max
            groupMax = .min
        }
        for (i, location) in reader.blocks.enumerated() {
            let raw = try reader.blockPayload(i)
            if groupCount > 0 && group.count + raw.count > target { try writeGroup() }
            if groupCount == 0 { groupFirst = location.firstOrdinal }
            try reader.forEachRecord(inBlock: i, payload: raw) { (ordinal, record) throws(LogFormatError) in
                let (terms, _) = try Verifier.indexedFields(record)
                index.add(terms, ordinal: ordinal)
            }
            group += raw
            groupCount += location.recordCount
            groupMin = min(groupMin, location.minTime)
            groupMax = max(groupMax, location.maxTime)
        }
        try writeGroup()
        // The index block: same header fields (counts and the segment's times), the rebuilt payload.
        let indexStart = Int(footer.indexOffset)
        var indexHeader: BlockHeader
        do throws(LogFormatError) {
            indexHeader = try BlockHeader.parse(UnsafeRawBufferPointer(rebasing: file[indexStart...]))
        } catch {
            throw error.at(path: reader.path, base: indexStart)
        }
        let payload = index.serialize()
        indexHeader.storedLength = UInt32(payload.count)
        indexHeader.rawLength = UInt32(payload.count)
        indexHeader.payloadCRC = Checksum.crc32(payload)
        let newIndexOffset = UInt64(out.count)
        indexHeader.write(into: &out)
        out.raw(payload)
        let newFooter = SegmentFooter(
            seal: footer.seal, signature: footer.signature, indexOffset: newIndexOffset,
            indexLength: UInt64(FormatConstants.blockHeaderSize + payload.count), blockCount: UInt32(index.blocks.count)
        )
        out.raw(newFooter.encoded())
        return out.bytes
    }
}
