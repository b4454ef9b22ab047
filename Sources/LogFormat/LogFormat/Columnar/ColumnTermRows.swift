// The rows of a column block indexed under a service, workload or group (docs/format/index.md, "Postings by
// block"): a version 2 index lists the blocks holding such a term, and the block's columns give the rows. Reads
// only the tables, the row shapes and, for a group, the identities column; each is read to its end, so a damaged
// block is reported as any read of it would report it.

extension ColumnBlock {
    /// The rows (ascending, within the block) of a column block indexed under `key` in `field` (service,
    /// workload or group), as `RecordTerms` indexes them. `expectedRows` is the row count of the block's header.
    package static func rowsIndexed(
        _ payload: UnsafeRawBufferPointer, segment: SegmentDictionary?, expectedRows: Int, field: IndexField,
        key: String
    ) throws(LogFormatError) -> [Int] {
        guard field == .service || field == .workload || field == .group, !key.isEmpty || field == .group else {
            return []
        }
        var wanted: Set<ColumnID> = [.dictionary, .segmentStrings, .resources, .shapes, .rowShapes]
        if field == .group { wanted.insert(.identities) }
        let c = try columns(payload, among: wanted)
        var d = try Decoder(c)
        d.segment = segment
        try d.tables()
        let shapes = d.shapes
        // Which shapes match outright (service, workload), and which string ids are the group.
        let shapeMatches: [Bool] = shapes.map { s in
            switch field {
            case .service: s.service == key
            case .workload: s.parts & Parts.workload != 0 && s.workload == key
            default: false
            }
        }
        let strings = d.strings
        let isKey: [Bool] = field == .group ? strings.map { $0 == key } : []
        let shapeBytes = c[.rowShapes] ?? []
        let userBytes = c[.identities] ?? []
        return try shapeBytes.withBytes { (bs) throws(LogFormatError) -> [Int] in
            try userBytes.withBytes { (bu) throws(LogFormatError) -> [Int] in
                var rs = BinaryReader(bs)
                var ru = BinaryReader(bu)
                var out: [Int] = []
                for row in 0..<expectedRows {
                    let shapeIndex = try Decoder.index(&rs, count: shapes.count, "a shape")
                    if shapeMatches[shapeIndex] { out.append(row) }
                    let s = shapes[shapeIndex]
                    guard field == .group, s.parts & Parts.user != 0 else { continue }
                    try Decoder.skipString(&ru, strings.count)
                    if s.hasEmail { try Decoder.skipString(&ru, strings.count) }
                    var found = false
                    for _ in 0..<s.groupCount {
                        if isKey[try Decoder.index(&ru, count: strings.count, "a string")] { found = true }
                    }
                    if found { out.append(row) }
                    if s.hasFingerprint {
                        let n = try ru.uvarint(max: ru.remaining, "a fingerprint length")
                        _ = try ru.rawSlice(n)
                    }
                }
                try Decoder.end(rs, .rowShapes)
                if field == .group { try Decoder.end(ru, .identities) }
                return out
            }
        }
    }
}
