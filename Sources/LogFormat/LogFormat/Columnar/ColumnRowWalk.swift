// The one walk over a column block's rows (columns.md, columns 4 to 12), which every reader of rows uses: the
// decoder building events, the rows held for output (`ColumnBlock.rows`), counting and the canonical bytes. It
// reads each row's fixed fields (shape, trace run, times, span id, parent) and hands the row to a visitor with the
// readers at the start of its parts in the identities, HTTP, values and extras columns; a visitor that does not
// want a row's parts skips them with `skipParts`, which checks every reference as building would. Each shape's
// layout is plain values (`RowLayout`), so walking a row takes no reference count.

extension ColumnBlock {
    /// What the rows of one shape hold in the per-row columns, and the shape's fields a row's writer asks of
    /// every row, as plain values.
    package struct RowLayout: ColumnShapeParts, Sendable {
        package var kind: EventKind
        package var source: EventSource
        package var parts: UInt8
        package var httpParts: UInt8
        package var hasEmail: Bool
        package var hasFingerprint: Bool
        package var groupCount: Int
        package var eventCount: Int
        package var linkCount: Int
        /// The shape's resource: an index into the block's resources.
        package var resource: Int
        /// Where the shape's attribute value tags are in `RowLayouts.tags`.
        package var tagStart: Int
        package var tagCount: Int
        /// What a table shows of every row: the shape's status code and HTTP status, and its name, service and HTTP
        /// method as string ids of the block (-1: none). `Decoder.rowLayout` reads them; a layout made from a built
        /// `Shape` (the decoder's own) leaves the ids at -1.
        package var status = StatusCode.unset
        package var httpStatus: UInt16 = 0
        package var name = -1
        package var service = -1
        package var method = -1

        /// A layout read without its shape, the rest filled in by its reader: `ColumnBlock.countShape` fills in
        /// the parts it reads (no resource, events, links or attribute value tags, which a count does not walk),
        /// `Decoder.rowLayout` all of it.
        init(counting kind: EventKind, source: EventSource, parts: UInt8) {
            self.kind = kind
            self.source = source
            self.parts = parts
            httpParts = 0
            hasEmail = false
            hasFingerprint = false
            groupCount = 0
            eventCount = 0
            linkCount = 0
            resource = 0
            tagStart = 0
            tagCount = 0
        }

        init(_ s: Shape, tagStart: Int) {
            kind = s.kind
            source = s.source
            parts = s.parts
            httpParts = s.httpParts
            hasEmail = s.hasEmail
            hasFingerprint = s.hasFingerprint
            groupCount = s.groupCount
            eventCount = s.eventCount
            linkCount = s.linkCount
            resource = s.resource
            self.tagStart = tagStart
            tagCount = s.attributes.count
            status = s.status
            httpStatus = s.httpStatus
        }
    }

    /// The layouts of a block's shapes, index for index, with their attribute value tags back to back.
    package struct RowLayouts: Sendable {
        package var layouts: [RowLayout] = []
        package var tags: [UInt8] = []

        init(_ shapes: [Shape]) {
            layouts.reserveCapacity(shapes.count)
            for s in shapes {
                layouts.append(RowLayout(s, tagStart: tags.count))
                for a in s.attributes { tags.append(a.tag) }
            }
        }
    }

    /// A row's fixed fields, as the walk reads them.
    struct RowHead {
        /// The row's number within its block.
        var row: Int
        /// Its shape: an index into the block's shapes.
        var shape: Int
        var start: UInt64
        var end: UInt64
        /// 0 when the row has none.
        var observed: UInt64
        var traceID: TraceID
        var spanID: SpanID
        /// The parent span id when the layout says the row has one (and the walk reads parents); else 0.
        var parent: SpanID
    }
}

/// What the walk calls for each row, in row order, with the readers at the start of the row's parts. `row` must
/// read the row's parts (identities, HTTP, values, extras) to their end, or skip them with `skipParts`; a walk
/// without those columns (counting) may leave them.
protocol ColumnRowVisitor {
    mutating func row(
        _ head: ColumnBlock.RowHead, _ layout: ColumnBlock.RowLayout, _ r: inout ColumnBlock.Decoder.Readers
    ) throws(LogFormatError)
}

/// Where `skipParts` reports each string id it reads (after checking it against the dictionary).
protocol ColumnStringSink {
    mutating func use(_ id: Int)
}

extension ColumnBlock.Decoder {
    /// Strings read and checked, not recorded.
    struct NoStrings: ColumnStringSink {
        @inline(__always) mutating func use(_ id: Int) {}
    }

    /// Walks every row of the block, calling `visitor` for each, and returns how many there are. Trace runs,
    /// shapes, times and span ids are read and checked for every row; parents too unless `parents` is false (a
    /// reader that does not ask for them: counting) and the block's revision does not need them for times. The
    /// caller checks the columns' ends (`end(_:skipping:)`).
    ///
    /// With `through`, the rows after row `through` are not visited: of them only the trace runs and shapes are
    /// read and checked and their span ids stepped over (so those three columns still end where the rows do); their
    /// parents, times and parts are left unread, and the caller checks the ends of those columns only when no row
    /// was left (`through` at or past the last row).
    static func walkRows<V: ColumnRowVisitor>(
        _ r: inout Readers, _ layouts: ColumnBlock.RowLayouts, parents: Bool = true, through last: Int = .max,
        _ visitor: inout V
    ) throws(LogFormatError) -> Int {
        let shapes = layouts.layouts
        let runCount = try r.runs.uvarint(max: r.runs.remaining, "a run count")
        let blockStart = try r.time.u64()
        var blockRow = 0
        // Revision 2 times count from the parent row's: the parents column is read before the times.
        let parentTimes = r.revision >= ColumnBlock.Revision.parentTimes
        let parents = parents || parentTimes
        // Span ids and times of the current run's rows, for parents named by position.
        var runSpans: [SpanID] = []
        var runTimes: [(start: UInt64, end: UInt64)] = []
        var left = 0
        for _ in 0..<runCount {
            let length = try r.runs.uvarint(max: r.shape.remaining, "a run length")
            guard length > 0 else { throw LogFormatError(.malformed, "column block: an empty trace run") }
            let traceID = TraceID(high: try r.runs.u64BigEndian(), low: try r.runs.u64BigEndian())
            // The run's rows up to the last asked for are visited; the rest are counted and their shapes checked.
            let visit = last - blockRow >= length - 1 ? length : max(0, last - blockRow + 1)
            runSpans.removeAll(keepingCapacity: true)
            runTimes.removeAll(keepingCapacity: true)
            r.runTarget = -1
            r.runRequestID = nil
            var runStart: UInt64 = 0
            for row in 0..<visit {
                let shape = try index(&r.shape, count: shapes.count, "a shape")
                let layout = shapes[shape]
                var parent = SpanID(value: 0)
                var parentRow = 0
                if parents && layout.parts & ColumnBlock.Parts.parent != 0 {
                    parentRow = try r.parent.uvarint(max: row, "a parent row")
                    parent = parentRow == 0 ? SpanID(value: try r.parent.u64BigEndian()) : runSpans[parentRow - 1]
                }
                let (start, end, observed) = try rowTimes(
                    &r.time, firstOfRun: row == 0, blockStart: blockStart, runStart: &runStart,
                    parent: parentTimes && parentRow > 0 ? runTimes[parentRow - 1] : nil, parts: layout.parts)
                let spanID = SpanID(value: try r.span.u64BigEndian())
                if parents {
                    runSpans.append(spanID)
                    if parentTimes { runTimes.append((start, end)) }
                }
                try visitor.row(
                    ColumnBlock.RowHead(
                        row: blockRow, shape: shape, start: start, end: end, observed: observed, traceID: traceID,
                        spanID: spanID, parent: parent),
                    layout, &r)
                blockRow += 1
            }
            for _ in visit..<length { _ = try index(&r.shape, count: shapes.count, "a shape") }
            left += length - visit
            blockRow += length - visit
        }
        if left > 0 { _ = try r.span.rawSlice(8 * left) }
        return blockRow
    }

    /// Checks that every per-row column but those in `skipping` was read to its end.
    static func end(_ r: Readers, skipping: [ColumnID] = []) throws(LogFormatError) {
        let all: [(BinaryReader, ColumnID)] = [
            (r.shape, .rowShapes), (r.runs, .traceRuns), (r.span, .spanIDs), (r.parent, .parents), (r.time, .times),
            (r.user, .identities), (r.http, .http), (r.value, .values), (r.extra, .extras),
        ]
        for (reader, id) in all where !skipping.contains(id) { try end(reader, id) }
    }

    /// Reads a row's identity, HTTP, value and extra parts without building them: every reference is checked
    /// against its table (`n` strings) and reported to `strings`, but nothing is retained or allocated.
    static func skipParts<S: ColumnStringSink>(
        _ s: ColumnBlock.RowLayout, _ tags: [UInt8], _ r: inout Readers, strings n: Int, _ sink: inout S
    ) throws(LogFormatError) {
        if s.parts & ColumnBlock.Parts.user != 0 {
            sink.use(try stringID(&r.user, n))
            if s.hasEmail { sink.use(try stringID(&r.user, n)) }
            for _ in 0..<s.groupCount { sink.use(try stringID(&r.user, n)) }
            if s.hasFingerprint {
                let length = try r.user.uvarint(max: r.user.remaining, "a fingerprint length")
                _ = try r.user.rawSlice(length)
            }
        }
        if s.parts & ColumnBlock.Parts.http != 0 {
            if s.httpParts & 1 != 0 { sink.use(try target(&r, n)) }
            if s.httpParts & 2 != 0 { sink.use(try stringID(&r.http, n)) }
        }
        for k in s.tagStart..<s.tagStart + s.tagCount {
            switch tags[k] {
            case ColumnBlock.ShapeTag.traceIDString, ColumnBlock.ShapeTag.constant: break
            case ColumnBlock.ShapeTag.decimalDouble: _ = try decimalDouble(&r.value)
            case ColumnBlock.ShapeTag.traceParent: _ = try r.value.u8()
            case ColumnBlock.ShapeTag.runRequestIDHex, ColumnBlock.ShapeTag.runRequestIDUUID: _ = try runRequestID(&r)
            default: try skipValueBody(tags[k], &r.value, n, &sink, depth: 0)
            }
        }
        if s.parts & ColumnBlock.Parts.body != 0 { try skipValueBody(try r.extra.u8(), &r.extra, n, &sink, depth: 0) }
        for _ in 0..<s.eventCount {
            _ = try r.extra.svarint()
            sink.use(try stringID(&r.extra, n))
            try skipAttributes(&r.extra, n, &sink, depth: 0)
            _ = try count32(&r.extra)
        }
        for _ in 0..<s.linkCount {
            _ = try r.extra.rawSlice(24)
            sink.use(try stringID(&r.extra, n))
            try skipAttributes(&r.extra, n, &sink, depth: 0)
            _ = try count32(&r.extra)
            _ = try count32(&r.extra)
        }
    }

    /// A string id, checked against a dictionary of `n` strings.
    @inline(__always) static func stringID(_ r: inout BinaryReader, _ n: Int) throws(LogFormatError) -> Int {
        let i = try r.uvarint()
        guard i < UInt64(n) else {
            throw LogFormatError(.malformed, "column block: string \(i) of a dictionary of \(n)")
        }
        return Int(i)
    }

    /// `valueBody` without building the value: the same checks, in the same order.
    static func skipValueBody<S: ColumnStringSink>(
        _ tag: UInt8, _ r: inout BinaryReader, _ n: Int, _ sink: inout S, depth: Int
    ) throws(LogFormatError) {
        guard depth < RecordCodec.maxValueDepth else {
            throw LogFormatError(.malformed, "column block: values nested \(depth) deep")
        }
        switch tag {
        case RecordCodec.ValueTag.empty, RecordCodec.ValueTag.boolFalse, RecordCodec.ValueTag.boolTrue: return
        case RecordCodec.ValueTag.string: sink.use(try stringID(&r, n))
        case RecordCodec.ValueTag.int: _ = try r.svarint()
        case RecordCodec.ValueTag.double: _ = try r.u64()
        case RecordCodec.ValueTag.bytes:
            let length = try r.uvarint(max: r.remaining, "a bytes length")
            _ = try r.rawSlice(length)
        case RecordCodec.ValueTag.array:
            let count = try r.uvarint(max: r.remaining, "an array length")
            for _ in 0..<count { try skipValueBody(try r.u8(), &r, n, &sink, depth: depth + 1) }
        case RecordCodec.ValueTag.keyValueList:
            try skipAttributes(&r, n, &sink, depth: depth + 1)
        default:
            throw LogFormatError(.malformed, "column block: unknown value tag \(tag)")
        }
    }

    static func skipAttributes<S: ColumnStringSink>(
        _ r: inout BinaryReader, _ n: Int, _ sink: inout S, depth: Int
    ) throws(LogFormatError) {
        let count = try r.uvarint(max: r.remaining, "an attribute count")
        for _ in 0..<count {
            sink.use(try stringID(&r, n))
            try skipValueBody(try r.u8(), &r, n, &sink, depth: depth)
        }
    }
}

extension ColumnBlock.Decoder {
    /// A string id checked against a dictionary of `n` strings, and dropped.
    @inline(__always) static func skipString(_ r: inout BinaryReader, _ n: Int) throws(LogFormatError) {
        _ = try stringID(&r, n)
    }
}

/// What a shape's `parts` and `httpParts` bits say (columns.md, "shapes"), for the built `Shape` and the walk's
/// `RowLayout` alike.
package protocol ColumnShapeParts {
    var parts: UInt8 { get }
    var httpParts: UInt8 { get }
}

extension ColumnShapeParts {
    package var hasParent: Bool { parts & ColumnBlock.Parts.parent != 0 }
    package var hasUser: Bool { parts & ColumnBlock.Parts.user != 0 }
    package var hasWorkload: Bool { parts & ColumnBlock.Parts.workload != 0 }
    package var hasHTTP: Bool { parts & ColumnBlock.Parts.http != 0 }
    package var hasBody: Bool { parts & ColumnBlock.Parts.body != 0 }
    /// Rows of this shape have an HTTP target (in the http column).
    package var hasTarget: Bool { httpParts & 1 != 0 }
    /// Rows of this shape have an HTTP client address (in the http column, after the target).
    package var hasClientAddress: Bool { httpParts & 2 != 0 }
}
