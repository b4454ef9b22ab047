// The end of a sealed segment: the index block and the footer with the seal (docs/format/segment.md). Both
// layouts, rows sealed in place and columns laid out anew, end the same way.

struct SealTrailer {
    /// The index block and the footer, ready to be written at `indexOffset`.
    var bytes: [UInt8]
    var seal: SegmentSeal
    var footer: SegmentFooter

    /// Builds the trailer of segment `sequence` of `nodeID` whose records have `root`, linking it to `previous`
    /// and signing it with `signer` when there is one.
    static func build(
        index: IndexBuilder, nodeID: NodeID, sequence: UInt64, recordCount: UInt32, minTime: UInt64,
        maxTime: UInt64, root: Digest32, previous: (sequence: UInt64, root: Digest32), signer: SealSigner?,
        indexOffset: Int
    ) throws(LogFormatError) -> SealTrailer {
        let indexPayload = index.serialize()
        var w = BinaryWriter(
            capacity: indexPayload.count + FormatConstants.blockHeaderSize + FormatConstants.footerSize)
        let indexHeader = BlockHeader(
            type: .index, codec: .none, storedLength: UInt32(indexPayload.count), rawLength: UInt32(indexPayload.count),
            recordCount: recordCount, firstOrdinal: 0, minTime: minTime, maxTime: maxTime,
            payloadCRC: Checksum.crc32(indexPayload))
        indexHeader.write(into: &w)
        w.raw(indexPayload)
        var seal = SegmentSeal(
            nodeID: nodeID, sequence: sequence, recordCount: UInt64(recordCount), minTime: minTime, maxTime: maxTime,
            merkleRoot: root, previousSequence: previous.sequence, previousRoot: previous.root,
            sealedAtUnixNano: FileIO.nowUnixNano())
        var signature: [UInt8]? = nil
        if let signer {
            seal.flags |= FormatConstants.footerFlagSigned
            seal.signingKeyID = signer.publicKey.keyID
            do {
                signature = try signer.sign(seal.encoded())
            } catch {
                throw LogFormatError(.badKey, "signing the seal of segment \(seal.sequence) failed", cause: error)
            }
        }
        let footer = SegmentFooter(
            seal: seal, signature: signature, indexOffset: UInt64(indexOffset), indexLength: UInt64(w.count),
            blockCount: UInt32(index.blocks.count))
        w.raw(footer.encoded())
        return SealTrailer(bytes: w.bytes, seal: seal, footer: footer)
    }
}
