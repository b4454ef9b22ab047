// Reading a column block for counting: only the columns a grouping and its conditions need (row shapes, trace
// runs, span ids, times, and identities or HTTP facts when asked), never building events. The block's tables are
// loaded as the decoder loads them; every reference read is checked the same way, and so is each column read to
// its end. Columns not asked for (parents, values, extras, and identities or HTTP facts when not needed) are not
// decompressed or checked: a full decode of the block still checks them.

/// A shape of a column block as counting sees it: the fields shared by every row of the shape.
package struct ColumnCountShape: Sendable {
    package var kind: EventKind
    package var source: EventSource
    package var status: StatusCode
    package var service: String
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
        var d = try Decoder(c)
        d.segment = segment
        try d.tables()
        let shapes = d.shapes.map { s in
            ColumnCountShape(
                kind: s.kind, source: s.source, status: s.status, service: s.service, eventName: s.eventName,
                attributeKeys: s.attributes.map(\.key), workload: s.workload, hasUser: s.parts & Parts.user != 0,
                hasHTTP: s.parts & Parts.http != 0, method: s.method, route: s.route, httpStatus: s.httpStatus,
                hasTarget: s.parts & Parts.http != 0 && s.httpParts & 1 != 0)
        }
        let strings = d.strings
        let layouts = d.layouts
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
                if s.httpParts & 1 != 0 { target = Int32(try Decoder.index(&r.http, count: n, "a string")) }
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
