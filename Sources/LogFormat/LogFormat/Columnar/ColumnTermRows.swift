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
        // Each shape's service or workload string id (-1: none) and what the user part holds.
        let shapes = try (c[.shapes] ?? []).withBytes { (b) throws(LogFormatError) -> [ShapeIDs] in
            var r = BinaryReader(b)
            let n = try r.uvarint(max: b.count, "a shape count")
            var out: [ShapeIDs] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try ShapeIDs(&r, strings: strings.count)) }
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

    /// The string ids of a shape that index terms name, read past everything else (the grammar of
    /// docs/format/columns.md, "shapes"); ids are checked against the string count, nothing is decoded.
    struct ShapeIDs {
        var service = -1
        var workload = -1
        var hasUser = false
        var hasEmail = false
        var groupCount = 0
        var hasFingerprint = false

        init(_ r: inout BinaryReader, strings n: Int) throws(LogFormatError) {
            _ = try r.rawSlice(5)  // kind, span kind, source, status, severity
            let parts = try r.u8()
            guard parts & ~Parts.known == 0 else { throw LogFormatError(.malformed, "shape: unknown parts \(parts)") }
            _ = try Decoder.count32(&r)  // flags
            try Decoder.skipString(&r, n)  // name
            service = try Decoder.index(&r, count: n, "a string")
            for _ in 0..<4 { try Decoder.skipString(&r, n) }  // trace state, status message, severity text, event name
            _ = try r.uvarint()  // resource
            let attributeCount = try r.uvarint(max: r.remaining, "an attribute count")
            for _ in 0..<attributeCount {
                try Decoder.skipString(&r, n)
                if try r.u8() == ShapeTag.constant { try Decoder.skipConstant(&r, n) }
            }
            // Dropped attributes, events, dropped events, links, dropped links.
            for _ in 0..<5 { _ = try Decoder.count32(&r) }
            if parts & Parts.user != 0 {
                hasUser = true
                _ = try r.u8()  // origin
                _ = try r.uvarint()  // issuer (an optional string)
                hasEmail = try r.u8() != 0
                groupCount = try r.uvarint(max: Int(UInt32.max), "a group count")
                hasFingerprint = try r.u8() != 0
            }
            if parts & Parts.workload != 0 { workload = try Decoder.index(&r, count: n, "a string") }
            if parts & Parts.http != 0 {
                for _ in 0..<2 { _ = try r.uvarint() }  // method, route (optional strings)
                _ = try r.uvarint(max: Int(UInt16.max), "an HTTP status")
                _ = try r.u8()
            }
        }
    }
}
