// The rows of a column block indexed under a service, workload or group (docs/format/index.md, "Postings by
// block"): a version 2 index lists the blocks holding such a term, and the block's columns give the rows. Reads
// only the row shapes, the shapes' string ids and, for a group, the identities column; of the block's strings it
// builds only those a candidate names (`BlockStrings`). The rows found are then decoded in full by the
// query, which checks every column it reads as any read of the block does.

extension ColumnBlock {
    /// The rows (ascending, within the block) of a column block indexed under `key` in `field` (service,
    /// workload or group), as `RecordTerms` indexes them. `expectedRows` is the row count of the block's header.
    package static func rowsIndexed(
        _ payload: UnsafeRawBufferPointer, segment: SegmentDictionary?, expectedRows: Int, field: IndexField,
        key: String, payloadChecked: Bool = false
    ) throws(LogFormatError) -> [Int] {
        guard field == .service || field == .workload || field == .group, !key.isEmpty || field == .group else {
            return []
        }
        var wanted: Set<ColumnID> = [.dictionary, .segmentStrings, .shapes, .rowShapes]
        if field == .group { wanted.insert(.identities) }
        let c = try columns(payload, among: wanted, payloadChecked: payloadChecked)
        let strings = try Decoder.strings(c, segment: segment)
        let revision = try ColumnBlock.revision(c)
        // Each shape's service or workload string id (-1: none) and what the user part holds.
        let shapes = try (c[.shapes] ?? []).withBytes { (b) throws(LogFormatError) -> [ShapeIDs] in
            var r = BinaryReader(b)
            let n = try r.uvarint(max: b.count, "a shape count")
            var out: [ShapeIDs] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try ShapeIDs(&r, strings: strings.count, revision: revision)) }
            try Decoder.end(r, .shapes)
            return out
        }
        var shapeMatches: [Bool] = []
        shapeMatches.reserveCapacity(shapes.count)
        for s in shapes {
            let id = field == .service ? s.service : field == .workload ? s.workload : -1
            shapeMatches.append(id >= 0 ? try strings.string(id) == key : false)
        }
        // For groups: whether each string id is the key, found when first named (0 unknown, 1 no, 2 yes).
        var isKey = [UInt8](repeating: 0, count: field == .group ? strings.count : 0)
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
                    guard field == .group, s.hasUser else { continue }
                    try Decoder.skipString(&ru, strings.count)
                    if s.hasEmail { try Decoder.skipString(&ru, strings.count) }
                    var found = false
                    for _ in 0..<s.groupCount {
                        let id = try Decoder.index(&ru, count: strings.count, "a string")
                        if isKey[id] == 0 { isKey[id] = try strings.string(id) == key ? 2 : 1 }
                        if isKey[id] == 2 { found = true }
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

    /// The string ids of a shape that index terms name and what its user part holds, read by the shape reader;
    /// only its resource is not checked (against a count in the resources column, which term rows do not read: the
    /// query decodes the rows found in full, and checks it then).
    struct ShapeIDs {
        var service = -1
        var workload = -1
        var hasUser = false
        var hasEmail = false
        var groupCount = 0
        var hasFingerprint = false

        init(_ r: inout BinaryReader, strings n: Int, revision: UInt64) throws(LogFormatError) {
            var none = Decoder.NoStrings()
            let h = try Decoder.shapeHead(&r, strings: n, resources: Int.max, &none)
            for _ in 0..<h.attributeCount {
                let tag = try Decoder.shapeAttribute(&r, strings: n, revision: revision, &none).tag
                if tag == ShapeTag.constant { try Decoder.skipConstant(&r, n) }
            }
            let t = try Decoder.shapeTail(&r, strings: n, parts: h.parts, &none)
            service = h.service
            workload = t.workload
            hasUser = h.parts & Parts.user != 0
            hasEmail = t.hasEmail
            groupCount = t.groupCount
            hasFingerprint = t.hasFingerprint
        }
    }
}
