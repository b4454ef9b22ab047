// The archive tier's copy of a sealed segment: the same records in the same order, as column blocks compressed
// with zlib (docs/format/segment.md, "Archive tier"). Roots cover canonical record bytes, so every root and
// signature stays valid; a version 1 segment becomes version 2 on the way, in its own record order.

/// Rewrites a sealed segment (version 1 or 2) for the archive tier: its records, in ordinal order, laid out as
/// column blocks of about `blockRows` rows with zlib per column; the index rebuilt over the same ordinals with
/// the new block table; the footer's physical fields updated. The seal and the signature are kept byte for byte,
/// after checking that the records still give the seal's root.
public enum SegmentArchiver {
    /// Rows per archive block: more than the hot tier's, since an archive block holds each string, shape and
    /// resource its rows share once, and archived segments are read rarely. Blocks are also cut at
    /// `ColumnSealer.maxArchiveBlockRawBytes` of records (about 55,000 of the synthetic traffic's): a trace or a
    /// user's rows read from the archive tier inflate columns of that many rows.
    public static let defaultBlockRows = 65536

    /// `compactIndex` false writes the index layouts of archive copies made before 2026-12-06 (users in layout 8,
    /// trace ids in layout 7), which readers and the verifier still take: for tests and fuzz seeds of such copies.
    public static func archived(
        _ reader: SegmentReader, level: Int32 = 9, blockRows: Int = defaultBlockRows, compactIndex: Bool = true
    ) throws(LogFormatError) -> [UInt8] {
        guard let footer = reader.footer else {
            throw LogFormatError(.invalidState, "only a sealed segment can be archived", path: reader.path)
        }
        let records = try canonicalRecords(reader, blocks: 0..<reader.blocks.count)
        let header = SegmentFileHeader(
            version: FormatConstants.segmentVersionColumns, nodeID: reader.header.nodeID,
            sequence: reader.header.sequence, createdUnixNano: reader.header.createdUnixNano)
        var body = ColumnSealer.LaidOut(header: header)
        // Users in groups of 256 terms, each list counting from the previous one's end (layout 9), trace ids by their
        // first three bytes (layout 10): an archive copy is read rarely, and its index is a tenth of its bytes.
        body.index = IndexBuilder(
            version: FormatConstants.indexVersionRollup, widePackedUsers: true, relativeUserLists: compactIndex,
            shortTracePrefixes: compactIndex)
        body.maxBlockRaw = ColumnSealer.maxArchiveBlockRawBytes
        try body.add(
            records: records, order: Array(0..<records.count), codec: .zlib, level: level, blockRows: max(1, blockRows))
        guard UInt64(body.recordCount) == footer.seal.recordCount, body.merkle.root == footer.seal.merkleRoot else {
            throw LogFormatError(
                .integrity,
                "the segment's records give root \(body.merkle.root) over \(body.recordCount) records, its seal says \(footer.seal.merkleRoot) over \(footer.seal.recordCount): not archived",
                path: reader.path)
        }
        // The index block: same header fields (counts and the segment's times), the rebuilt payload.
        let file = reader.file.bytes
        let indexStart = Int(footer.indexOffset)
        var indexHeader: BlockHeader
        do throws(LogFormatError) {
            indexHeader = try BlockHeader.parse(UnsafeRawBufferPointer(rebasing: file[indexStart...]))
        } catch {
            throw error.at(path: reader.path, base: indexStart)
        }
        let payload = body.index.serialize()
        indexHeader.storedLength = UInt32(payload.count)
        indexHeader.rawLength = UInt32(payload.count)
        indexHeader.payloadCRC = Checksum.crc32(payload)
        let newIndexOffset = UInt64(body.out.count)
        indexHeader.write(into: &body.out)
        body.out.raw(payload)
        let newFooter = SegmentFooter(
            seal: footer.seal, signature: footer.signature, indexOffset: newIndexOffset,
            indexLength: UInt64(FormatConstants.blockHeaderSize + payload.count),
            blockCount: UInt32(body.index.blocks.count))
        body.out.raw(newFooter.encoded())
        return body.out.bytes
    }

    /// Bytes the data blocks `blocks` of `reader` take once archived: a sample for estimating an archive run.
    public static func archivedDataBytes(
        _ reader: SegmentReader, blocks: Range<Int>, level: Int32 = 9, blockRows: Int = defaultBlockRows
    ) throws(LogFormatError) -> (records: Int, bytes: Int) {
        let records = try canonicalRecords(reader, blocks: blocks)
        var body = ColumnSealer.LaidOut(header: reader.header)
        body.maxBlockRaw = ColumnSealer.maxArchiveBlockRawBytes
        try body.add(
            records: records, order: Array(0..<records.count), codec: .zlib, level: level, blockRows: max(1, blockRows))
        return (records.count, body.out.count - FormatConstants.fileHeaderSize)
    }

    static func canonicalRecords(_ reader: SegmentReader, blocks: Range<Int>) throws(LogFormatError) -> WALRecords {
        var records = WALRecords()
        for b in blocks {
            try reader.forEachRecord(inBlock: b) { (_, record) throws(LogFormatError) in
                records.bytes.append(contentsOf: record)
                records.starts.append(records.bytes.count)
            }
        }
        return records
    }
}
