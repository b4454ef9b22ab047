// What sealing reads of a write-ahead log, and how it hands the records to the lay-out. A log whose records fit
// `ColumnSealer.recordsInMemory` is held whole, as before. A larger one (a full segment holds up to
// `maxSegmentRawBytes`, 128 MiB) is read once for what orders its records and cuts them into blocks, then again
// for each part of the sealed order, whole blocks up to that budget: the records were most of a seal's memory,
// and a seal the collector's memory peak (issue 15). The blocks, and so the file, are the same either way.

/// A write-ahead log read for sealing.
struct SealInput {
    var header: SegmentFileHeader
    /// The sealed order: `order[k]` is the arrival index of the record with ordinal `k`.
    var order: [Int]
    var rawBytes: Int
    /// Every record, when they fit the budget; nil when they are read again a part at a time.
    var records: WALRecords?
    /// By arrival index, when read in parts: each record's size and trace id (what cuts blocks).
    var sizes: [Int] = []
    var traces: [TraceID?] = []
    /// By arrival index, each record's Merkle leaf, when the writer kept them (`SealHints`); nil: hashed here.
    var leaves: [Digest32]? = nil

    /// Reads the log at `path` for sealing: with `hints` (what the writer kept of its records, `SealHints`), only
    /// its records, and those only when they fit `budget`; without, as `read(path:budget:)`. Throws `.integrity`
    /// when the log does not hold the records the hints describe.
    static func read(path: String, budget: Int, hints: consuming SealHints?) throws(LogFormatError) -> SealInput {
        guard let hints else { return try read(path: path, budget: budget) }
        let order = SealOrder.permutation(hints.orderFields)
        let leaves = hints.records.map(\.leaf)
        let sizes = hints.records.map { Int($0.size) }
        let rawBytes = sizes.reduce(0, +)
        if rawBytes > budget {
            // Read in parts (`addBlocks`), each pass checking every record's size against `sizes`.
            return SealInput(
                header: try WALRecords.header(path: path), order: order, rawBytes: rawBytes, records: nil,
                sizes: sizes, traces: hints.records.map { $0.traceID }, leaves: leaves)
        }
        let (header, records) = try WALRecords.read(path: path)
        guard records.count == sizes.count,
            sizes.indices.allSatisfy({ records.starts[$0 + 1] - records.starts[$0] == sizes[$0] })
        else {
            throw LogFormatError(
                .integrity,
                "write-ahead log: \(records.count) records (\(records.bytes.count) bytes), the writer kept \(sizes.count) (\(rawBytes) bytes)",
                path: path)
        }
        return SealInput(header: header, order: order, rawBytes: rawBytes, records: records, leaves: leaves)
    }

    /// Reads the log at `path`, keeping its records when their bytes are at most `budget`.
    static func read(path: String, budget: Int) throws(LogFormatError) -> SealInput {
        var fields: [SealOrderFields] = []
        var whole = WALRecords()
        var keep = true
        var rawBytes = 0
        var sizes: [Int] = []
        var traces: [TraceID?] = []
        let header = try WALRecords.forEachRecord(
            path: path,
            sized: { raw, count in
                keep = raw <= budget
                fields.reserveCapacity(count)
                if keep {
                    whole.bytes.reserveCapacity(raw)
                    whole.starts.reserveCapacity(count + 1)
                } else {
                    sizes.reserveCapacity(count)
                    traces.reserveCapacity(count)
                }
            },
            { (_, record) throws(LogFormatError) in
                fields.append(try SealOrderFields.peek(record))
                rawBytes += record.count
                if keep {
                    whole.bytes.append(contentsOf: record)
                    whole.starts.append(whole.bytes.count)
                } else {
                    sizes.append(record.count)
                    traces.append(SealOrderFields.peekTraceID(record))
                }
            })
        return SealInput(
            header: header, order: SealOrder.permutation(fields), rawBytes: rawBytes, records: keep ? whole : nil,
            sizes: sizes, traces: traces)
    }

    /// Adds the records to `body` as blocks in the sealed order (not the dictionary block that follows them).
    /// Read in parts, each part is whole blocks of at most `budget` bytes of records (at least one block), read
    /// from the log at `path` in one pass over it.
    consuming func addBlocks(
        to body: inout ColumnSealer.LaidOut, path: String, budget: Int, codec: CompressionCodec, level: Int32,
        blockRows: Int
    ) throws(LogFormatError) {
        if let records {
            try body.addBlocks(
                records: records, order: order, leaves: leaves, codec: codec, level: level, blockRows: blockRows)
            return
        }
        // Where the part holding each record puts it (by arrival index), -1 when in another part.
        var slot = [Int](repeating: -1, count: order.count)
        var k = 0
        while k < order.count {
            var end = k
            var bytes = 0
            while end < order.count {
                let next = ColumnSealer.blockEnd(
                    order: order, from: end, rows: blockRows, size: { sizes[$0] }, trace: { traces[$0] })
                let blockBytes = order[end..<next].reduce(0) { $0 + sizes[$1] }
                if end > k && bytes + blockBytes > budget { break }
                bytes += blockBytes
                end = next
            }
            var part = WALRecords()
            part.starts.reserveCapacity(end - k + 1)
            for p in k..<end {
                slot[order[p]] = p - k
                part.starts.append(part.starts[p - k] + sizes[order[p]])
            }
            part.bytes = [UInt8](repeating: 0, count: bytes)
            var found = 0
            _ = try WALRecords.forEachRecord(path: path) { (i, record) throws(LogFormatError) in
                guard i < slot.count else {
                    throw LogFormatError(
                        .integrity, "write-ahead log: record \(i) appeared since it was read", path: path)
                }
                let p = slot[i]
                guard p >= 0 else { return }
                guard record.count == sizes[i] else {
                    throw LogFormatError(
                        .integrity,
                        "write-ahead log: record \(i) is \(record.count) bytes, \(sizes[i]) when first read",
                        path: path)
                }
                part.bytes.withUnsafeMutableBytes { b in
                    UnsafeMutableRawBufferPointer(rebasing: b[part.starts[p]..<part.starts[p + 1]]).copyMemory(
                        from: record)
                }
                found += 1
            }
            guard found == end - k else {
                throw LogFormatError(
                    .integrity, "write-ahead log: \(end - k - found) records of a part are gone since it was read",
                    path: path)
            }
            try body.addBlocks(
                records: part, order: Array(0..<(end - k)), leaves: leaves.map { l in (k..<end).map { l[order[$0]] } },
                codec: codec, level: level, blockRows: blockRows)
            for p in k..<end { slot[order[p]] = -1 }
            k = end
        }
    }
}
