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

extension ColumnCountShape {
    /// The rows of a count rollup's kind as counting sees them: no user, route or target (a rollup does not
    /// answer groupings or conditions that need them).
    package init(_ k: CountRollupKind) {
        self.init(
            kind: k.kind, source: k.source, status: k.status, service: k.service,
            eventName: k.isLedger ? CountRollupKind.ledgerEventName : "",
            attributeKeys: k.isLedger ? [CountRollupKind.ledgerVersionKey] : [], workload: k.workload, hasUser: false,
            hasHTTP: k.hasHTTP, method: k.method, route: nil, httpStatus: k.httpStatus, hasTarget: false)
    }
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
            // Revision 2 times count from the parent row's.
            .parents,
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
        let revision = try revision(c)
        // Only the resource count: a shape names its resource, which counting does not read.
        let resourceCount = try (c[.resources] ?? []).withBytes { (b) throws(LogFormatError) -> Int in
            var r = BinaryReader(b)
            return try r.uvarint(max: b.count, "a resource count")
        }
        var shapes: [ColumnCountShape] = []
        var layouts = RowLayouts([])
        try (c[.shapes] ?? []).withBytes { (b) throws(LogFormatError) in
            var r = BinaryReader(b)
            let n = try r.uvarint(max: b.count, "a shape count")
            shapes.reserveCapacity(n)
            layouts.layouts.reserveCapacity(n)
            for _ in 0..<n {
                let (shape, layout) = try countShape(&r, strings, resources: resourceCount, revision: revision)
                shapes.append(shape)
                layouts.layouts.append(layout)
            }
            try Decoder.end(r, .shapes)
        }
        var d = try Decoder(c)
        d.segment = segment
        var v = CountingRows(timeRange: timeRange, identities: identities, http: http, strings: strings.count)
        try d.withReaders { (r) throws(LogFormatError) in
            let total = try Decoder.walkRows(&r, layouts, parents: false, &v)
            guard total == expectedRows else {
                throw LogFormatError(.malformed, "column block: holds \(total) rows, its header says \(expectedRows)")
            }
            var skipping: [ColumnID] = [.parents, .values, .extras]
            if !identities { skipping.append(.identities) }
            if !http { skipping.append(.http) }
            try Decoder.end(r, skipping: skipping)
        }
        let rows = v.out
        return ColumnCountBlock(shapes: shapes, strings: strings, rows: rows)
    }

    /// A shape as counting reads it: read and checked by the shape reader `Decoder.shape` uses, but of its strings
    /// only those counting uses built (service, workload, method, route; a log's event name and attribute keys),
    /// and no `Shape` made.
    static func countShape(
        _ r: inout BinaryReader, _ d: BlockStrings, resources: Int, revision: UInt64
    ) throws(LogFormatError) -> (ColumnCountShape, RowLayout) {
        let n = d.count
        var none = Decoder.NoStrings()
        let h = try Decoder.shapeHead(&r, strings: n, resources: resources, &none)
        var keys: [String] = []
        for _ in 0..<h.attributeCount {
            let (key, tag) = try Decoder.shapeAttribute(&r, strings: n, revision: revision, &none)
            if h.kind == .log { keys.append(try d.string(key)) }
            if tag == ShapeTag.constant { try Decoder.skipConstant(&r, n) }
        }
        let t = try Decoder.shapeTail(&r, strings: n, parts: h.parts, &none)
        var layout = RowLayout(counting: h.kind, source: h.source, parts: h.parts)
        layout.hasEmail = t.hasEmail
        layout.groupCount = t.groupCount
        layout.hasFingerprint = t.hasFingerprint
        layout.httpParts = t.httpParts
        func optional(_ id: Int) throws(LogFormatError) -> String? { id < 0 ? nil : try d.string(id) }
        let shape = ColumnCountShape(
            kind: h.kind, source: h.source, status: h.status, service: try d.string(h.service),
            eventName: h.kind == .log ? try d.string(h.eventName) : "", attributeKeys: keys,
            workload: try optional(t.workload), hasUser: h.parts & Parts.user != 0, hasHTTP: h.parts & Parts.http != 0,
            method: try optional(t.method), route: try optional(t.route), httpStatus: t.httpStatus,
            hasTarget: h.parts & Parts.http != 0 && t.httpParts & 1 != 0)
        return (shape, layout)
    }

    /// The walk's visitor for counting: reads a row's subject and target when asked, keeps rows in the range.
    struct CountingRows: ColumnRowVisitor {
        let timeRange: ClosedRange<UInt64>?
        let identities: Bool
        let http: Bool
        let strings: Int
        var out: [ColumnCountRow] = []

        mutating func row(_ h: RowHead, _ s: RowLayout, _ r: inout Decoder.Readers) throws(LogFormatError) {
            let n = strings
            var subject: Int32 = -1
            if identities, s.parts & Parts.user != 0 {
                subject = Int32(try Decoder.index(&r.user, count: n, "a string"))
                if s.hasEmail { try Decoder.skipString(&r.user, n) }
                for _ in 0..<s.groupCount { try Decoder.skipString(&r.user, n) }
                if s.hasFingerprint {
                    let length = try r.user.uvarint(max: r.user.remaining, "a fingerprint length")
                    _ = try r.user.rawSlice(length)
                }
            }
            var target: Int32 = -1
            if http, s.parts & Parts.http != 0 {
                if s.httpParts & 1 != 0 { target = Int32(try Decoder.target(&r, n)) }
                if s.httpParts & 2 != 0 { try Decoder.skipString(&r.http, n) }
            }
            if let timeRange, !timeRange.contains(h.start) { return }
            out.append(
                ColumnCountRow(
                    row: Int32(h.row), shape: Int32(h.shape), subject: subject, target: target, traceID: h.traceID,
                    spanID: h.spanID, start: h.start, end: h.end))
        }
    }
}
