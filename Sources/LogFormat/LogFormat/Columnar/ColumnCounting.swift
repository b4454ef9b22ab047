// Reading a column block for counting: only the columns a grouping and its conditions need (row shapes, trace
// runs, span ids, times, and identities or HTTP facts when asked), never building events. The string table is
// checked as the decoder checks it; each shape is read with the decoder's checks (`countShape`), building only
// the strings counting uses; of the resources only their count is read (shapes name one, rows never). Every
// reference read is checked the same way, and each row column read to its end. Columns not asked for (parents,
// values, extras, and identities or HTTP facts when not needed) are not decompressed or checked, nor is the
// block's payload CRC (docs/format/columns.md, "Reading some columns"): a full decode of the block checks them.

/// A shape of a column block as counting sees it: the fields shared by every row of the shape.
package struct ColumnCountShape: Sendable {
    package var kind: EventKind
    package var source: EventSource
    package var status: StatusCode
    package var service: String
    /// The log event name and attribute keys: read for log shapes only (a ledger record, which counting leaves
    /// out unless asked, is a log); "" and none for spans.
    package var eventName: String
    package var attributeKeys: [String]
    package var workload: String?
    /// Whether rows of this shape have a user identity (its subject is then in `ColumnCountRow.subject` when
    /// identities were asked for).
    package var hasUser: Bool
    /// Whether rows of this shape have HTTP facts.
    package var hasHTTP: Bool
    package var method: String?
    package var route: String?
    package var httpStatus: UInt16
    /// Whether rows of this shape have an HTTP target (then in `ColumnCountRow.target` when asked for).
    package var hasTarget: Bool
}

/// A row of a column block as counting sees it: plain numbers, so that walking many rows costs no reference
/// counting.
package struct ColumnCountRow: Sendable {
    /// The row's number within the block.
    package var row: Int32
    /// Its shape: an index into `ColumnCountBlock.shapes`.
    package var shape: Int32
    /// The user's subject, when identities were asked for and the shape has a user: an index into
    /// `ColumnCountBlock.strings`; else -1.
    package var subject: Int32
    /// The HTTP target, when HTTP facts were asked for and the shape has one: an index into
    /// `ColumnCountBlock.strings`; else -1.
    package var target: Int32
    package var traceID: TraceID
    package var spanID: SpanID
    package var start: UInt64
    package var end: UInt64
}

/// The rows of a column block whose start lies in a time range, with the block's shapes and strings.
package struct ColumnCountBlock {
    package var shapes: [ColumnCountShape]
    package var strings: BlockStrings
    package var rows: [ColumnCountRow]

    /// The string a row's `subject` or `target` names; nil for -1.
    package func string(_ i: Int32) throws(LogFormatError) -> String? { i < 0 ? nil : try strings.string(Int(i)) }
}

extension ColumnBlock {
    /// The rows of a column block whose start lies in `timeRange` (all when nil), read from the row shapes,
    /// trace runs, span ids and times columns, and the identities (`identities`) and HTTP (`http`) columns when
    /// asked for. `expectedRows` is the row count the block's header gives; a block holding another is malformed.
    package static func countRows(
        _ payload: UnsafeRawBufferPointer, segment: SegmentDictionary?, expectedRows: Int,
        timeRange: ClosedRange<UInt64>?, identities: Bool, http: Bool
    ) throws(LogFormatError) -> ColumnCountBlock {
        var wanted: Set<ColumnID> = [
            .dictionary, .segmentStrings, .resources, .shapes, .rowShapes, .traceRuns, .spanIDs, .times,
        ]
        if identities { wanted.insert(.identities) }
        if http { wanted.insert(.http) }
        return try countRows(
            columns: try columns(payload, among: wanted), segment: segment, expectedRows: expectedRows,
            timeRange: timeRange, identities: identities, http: http)
    }

    /// `countRows` of a block's columns, decompressed.
    static func countRows(
        columns c: [ColumnID: [UInt8]], segment: SegmentDictionary?, expectedRows: Int,
        timeRange: ClosedRange<UInt64>?, identities: Bool, http: Bool
    ) throws(LogFormatError) -> ColumnCountBlock {
        let strings = try Decoder.strings(c, segment: segment)
        // Only the resource count: a shape names its resource, which counting does not read.
        let resourceCount = try (c[.resources] ?? []).withBytes { (b) throws(LogFormatError) -> Int in
            var r = BinaryReader(b)
            return try r.uvarint(max: b.count, "a resource count")
        }
        var shapes: [ColumnCountShape] = []
        var table: [RowLayout] = []
        try (c[.shapes] ?? []).withBytes { (b) throws(LogFormatError) in
            var r = BinaryReader(b)
            let n = try r.uvarint(max: b.count, "a shape count")
            shapes.reserveCapacity(n)
            table.reserveCapacity(n)
            for _ in 0..<n {
                let (shape, layout) = try countShape(&r, strings, resources: resourceCount)
                shapes.append(shape)
                table.append(layout)
            }
            try Decoder.end(r, .shapes)
        }
        func bytes(_ id: ColumnID) -> [UInt8] { c[id] ?? [] }
        let rows = try bytes(.rowShapes).withBytes { (bs) throws(LogFormatError) -> [ColumnCountRow] in
            try bytes(.traceRuns).withBytes { (bt) throws(LogFormatError) -> [ColumnCountRow] in
                try bytes(.spanIDs).withBytes { (bi) throws(LogFormatError) -> [ColumnCountRow] in
                    try bytes(.times).withBytes { (bm) throws(LogFormatError) -> [ColumnCountRow] in
                        try bytes(.identities).withBytes { (bu) throws(LogFormatError) -> [ColumnCountRow] in
                            try bytes(.http).withBytes { (bh) throws(LogFormatError) -> [ColumnCountRow] in
                                var r = CountReaders(
                                    shape: BinaryReader(bs), runs: BinaryReader(bt), span: BinaryReader(bi),
                                    time: BinaryReader(bm), user: BinaryReader(bu), http: BinaryReader(bh))
                                let rows = try walk(
                                    &r, table, strings, timeRange: timeRange, identities: identities, http: http)
                                guard rows.total == expectedRows else {
                                    throw LogFormatError(
                                        .malformed,
                                        "column block: holds \(rows.total) rows, its header says \(expectedRows)")
                                }
                                try Decoder.end(r.shape, .rowShapes)
                                try Decoder.end(r.runs, .traceRuns)
                                try Decoder.end(r.span, .spanIDs)
                                try Decoder.end(r.time, .times)
                                if identities { try Decoder.end(r.user, .identities) }
                                if http { try Decoder.end(r.http, .http) }
                                return rows.kept
                            }
                        }
                    }
                }
            }
        }
        return ColumnCountBlock(shapes: shapes, strings: strings, rows: rows)
    }

    struct CountReaders {
        var shape, runs, span, time, user, http: BinaryReader
    }

    /// What walking a row needs of its shape: plain values, so that reading a row's shape costs no reference
    /// counting.
    struct RowLayout {
        var parts: UInt8
        var hasEmail = false
        var hasFingerprint = false
        var httpParts: UInt8 = 0
        var groupCount = 0
    }

    /// A shape as counting reads it (the grammar of docs/format/columns.md, "shapes"): every field read and
    /// checked as `Decoder.shape` checks it — codes, string ids against the string table, the resource against
    /// the resource count, value tags, HTTP parts — but of its strings only those counting uses built (service,
    /// workload, method, route; a log's event name and attribute keys), and no `Shape` made.
    static func countShape(_ r: inout BinaryReader, _ d: BlockStrings, resources: Int) throws(LogFormatError) -> (
        ColumnCountShape, RowLayout
    ) {
        func code<T: RawRepresentable>(_ type: T.Type, _ what: StaticString) throws(LogFormatError) -> T
        where T.RawValue == UInt8 {
            let v = try r.u8()
            guard let x = T(rawValue: v) else { throw LogFormatError(.malformed, "shape: unknown \(what) \(v)") }
            return x
        }
        let n = d.count
        let kind = try code(EventKind.self, "kind")
        _ = try code(SpanKind.self, "span kind")
        let source = try code(EventSource.self, "source")
        let status = try code(StatusCode.self, "status")
        _ = try r.u8()  // severity
        let parts = try r.u8()
        guard parts & ~Parts.known == 0 else { throw LogFormatError(.malformed, "shape: unknown parts \(parts)") }
        _ = try Decoder.count32(&r)  // flags
        try Decoder.skipString(&r, n)  // name
        let service = try Decoder.string(&r, d)
        for _ in 0..<3 { try Decoder.skipString(&r, n) }  // trace state, status message, severity text
        var eventName = ""
        if kind == .log { eventName = try Decoder.string(&r, d) } else { try Decoder.skipString(&r, n) }
        _ = try Decoder.index(&r, count: resources, "a resource")
        let attributeCount = try r.uvarint(max: r.remaining, "an attribute count")
        var keys: [String] = []
        for _ in 0..<attributeCount {
            if kind == .log { keys.append(try Decoder.string(&r, d)) } else { try Decoder.skipString(&r, n) }
            let tag = try r.u8()
            guard tag <= RecordCodec.ValueTag.keyValueList else {
                throw LogFormatError(.malformed, "shape: unknown value tag \(tag)")
            }
        }
        _ = try Decoder.count32(&r)  // dropped attributes
        _ = try r.uvarint(max: Int(UInt32.max), "an event count")
        _ = try Decoder.count32(&r)  // dropped events
        _ = try r.uvarint(max: Int(UInt32.max), "a link count")
        _ = try Decoder.count32(&r)  // dropped links
        var layout = RowLayout(parts: parts)
        if parts & Parts.user != 0 {
            _ = try code(IdentityOrigin.self, "identity origin")
            let issuer = try r.uvarint()  // an optional string: 0 absent, else 1 + its id
            guard issuer == 0 || issuer - 1 < UInt64(n) else {
                throw LogFormatError(.malformed, "column block: string \(issuer - 1) of a dictionary of \(n)")
            }
            layout.hasEmail = try r.u8() != 0
            layout.groupCount = try r.uvarint(max: Int(UInt32.max), "a group count")
            layout.hasFingerprint = try r.u8() != 0
        }
        var workload: String?
        if parts & Parts.workload != 0 { workload = try Decoder.string(&r, d) }
        var method: String?
        var route: String?
        var httpStatus: UInt16 = 0
        if parts & Parts.http != 0 {
            method = try Decoder.optionalString(&r, d)
            route = try Decoder.optionalString(&r, d)
            httpStatus = UInt16(try r.uvarint(max: Int(UInt16.max), "an HTTP status"))
            layout.httpParts = try r.u8()
            guard layout.httpParts & ~3 == 0 else { throw LogFormatError(.malformed, "shape: unknown HTTP parts") }
        }
        let shape = ColumnCountShape(
            kind: kind, source: source, status: status, service: service, eventName: eventName, attributeKeys: keys,
            workload: workload, hasUser: parts & Parts.user != 0, hasHTTP: parts & Parts.http != 0, method: method,
            route: route, httpStatus: httpStatus, hasTarget: parts & Parts.http != 0 && layout.httpParts & 1 != 0)
        return (shape, layout)
    }

    private static func walk(
        _ r: inout CountReaders, _ shapes: [RowLayout], _ d: BlockStrings, timeRange: ClosedRange<UInt64>?,
        identities: Bool, http: Bool
    ) throws(LogFormatError) -> (kept: [ColumnCountRow], total: Int) {
        let stringCount = d.count
        let runCount = try r.runs.uvarint(max: r.runs.remaining, "a run count")
        let blockStart = try r.time.u64()
        var out: [ColumnCountRow] = []
        var blockRow = 0
        for _ in 0..<runCount {
            let length = try r.runs.uvarint(max: r.shape.remaining, "a run length")
            guard length > 0 else { throw LogFormatError(.malformed, "column block: an empty trace run") }
            let traceID = TraceID(high: try r.runs.u64BigEndian(), low: try r.runs.u64BigEndian())
            var runStart: UInt64 = 0
            for row in 0..<length {
                defer { blockRow += 1 }
                let shapeIndex = try Decoder.index(&r.shape, count: shapes.count, "a shape")
                let s = shapes[shapeIndex]
                let (start, end, _) = try Decoder.rowTimes(
                    &r.time, firstOfRun: row == 0, blockStart: blockStart, runStart: &runStart, parts: s.parts)
                let spanID = SpanID(value: try r.span.u64BigEndian())
                var subject: Int32 = -1
                if identities, s.parts & Parts.user != 0 {
                    subject = Int32(try Decoder.index(&r.user, count: stringCount, "a string"))
                    if s.hasEmail { try Decoder.skipString(&r.user, stringCount) }
                    for _ in 0..<s.groupCount { try Decoder.skipString(&r.user, stringCount) }
                    if s.hasFingerprint {
                        let n = try r.user.uvarint(max: r.user.remaining, "a fingerprint length")
                        _ = try r.user.rawSlice(n)
                    }
                }
                var target: Int32 = -1
                if http, s.parts & Parts.http != 0 {
                    if s.httpParts & 1 != 0 {
                        target = Int32(try Decoder.index(&r.http, count: stringCount, "a string"))
                    }
                    if s.httpParts & 2 != 0 { try Decoder.skipString(&r.http, stringCount) }
                }
                if let timeRange, !timeRange.contains(start) { continue }
                out.append(
                    ColumnCountRow(
                        row: Int32(blockRow), shape: Int32(shapeIndex), subject: subject, target: target,
                        traceID: traceID, spanID: spanID, start: start, end: end))
            }
        }
        return (out, blockRow)
    }
}
