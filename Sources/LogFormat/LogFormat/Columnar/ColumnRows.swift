// A column block's rows for output, without building events: the block's tables (strings, resources, shapes) and
// its per-row columns, with each asked-for row's fixed fields (times, ids) and where its parts start in the
// identities, HTTP, values and extras columns. A writer (auditq's JSON) reads a row's parts from there, in the
// order its format wants them. The storage library knows no output format: this is the row access it gives.
//
// Every row up to the last one asked for is walked and checked as the decoder checks it (ids in range, value
// nesting, counts) before any row is handed out, so a writer reading a row again meets only bytes that were
// checked; it still reads them with checked readers (`ColumnRowReader`), so a mistake is an error, never a trap.
// The rows after the last asked for are counted against the block header, their shapes and trace runs checked and
// their span ids stepped over, and no more: their parents, times and parts are never read, so neither are those
// columns' ends. Damage there is still refused, by the checksums every column's bytes pass before any is read (the
// block's payload CRC, or each column's); what only a whole walk would refuse is a block whose CRCs were made to
// match bytes that lie after the rows read, and that block could as well have been made to lie consistently
// (integrity against a deliberate rewrite is the Merkle root's, which `verify` checks).

/// One row of a column block held for output: the fields a query orders and compares by, and where the row's parts
/// start in its block's per-row columns.
package struct ColumnRow: Sendable {
    /// The row's number within its block.
    package var row: Int32
    /// Its shape: an index into `ColumnRows.layouts` (which holds only the shapes of the rows asked for).
    package var shape: Int32
    package var start: UInt64
    package var end: UInt64
    /// 0 when the row has none.
    package var observed: UInt64
    package var traceID: TraceID
    package var spanID: SpanID
    /// The parent span id, when the shape says the row has one.
    package var parent: SpanID
    /// Offsets of the row's parts in the identities, HTTP, values and extras columns.
    var user: Int32
    var http: Int32
    var value: Int32
    var extra: Int32
}

/// The asked-for rows of one column block, with the block's tables and the asked-for rows' parts of its
/// identities, HTTP, values and extras columns (only theirs: a query that wants one row in seven holds a seventh of
/// those columns). A class: handles name it by position, and the parts stay put while rows are read.
///
/// Sendable (a long-lived store's `BlockCache` keeps a block's every row this way for later queries) because it
/// never changes once built: every stored property is a `let`, the memory `storage` owns is written only in `init`,
/// and the shapes it holds are built by the decoder for it alone and only read after.
package final class ColumnRows: @unchecked Sendable {
    /// Where each string the rows name lies in `text`, in order of id: the string in slot `k` (`slot(id)`) is
    /// `text[bounds[k]..<bounds[k + 1]]`. Its UTF-8 bytes only: a writer copies them, and building a `String` of
    /// each (an allocation that stays until the process ends) cost a heavy search about a tenth of its time.
    private let bounds: [Int32]
    private let text: UnsafeBufferPointer<UInt8>
    /// For each string id of the block, its slot, or -1 when no row asked for names it.
    private let slots: [Int32]
    package let resources: [ColumnBlock.Resource]
    /// The stored bytes of the shapes the rows have (columns.md, "shapes"), back to back: shape `i`'s are
    /// `shapeBytes[shapeBounds[i]..<shapeBounds[i + 1]]`. Their strings are among the rows' (`slot`), so a writer
    /// renders a shape from them without building it (`shapeReader`); `shape(_:)` builds one.
    private let shapeBounds: [Int32]
    private let shapeBytes: UnsafeRawBufferPointer
    /// The row layouts of the rows' shapes (`ColumnRow.shape` indexes them): what a writer asks of every row,
    /// without reference counting.
    package let layouts: [ColumnBlock.RowLayout]
    /// The block's format revision, which a shape's bytes are read by.
    package let revision: UInt64
    /// The attribute value tags the layouts name.
    package let tags: [UInt8]
    package let rows: [ColumnRow]
    /// The rows' parts of the identities, HTTP, values and extras columns and the strings' bytes, back to back in
    /// memory this object owns (so readers of them need no closure to pin them).
    private let storage: UnsafeMutableRawBufferPointer
    private let user: UnsafeRawBufferPointer
    private let http: UnsafeRawBufferPointer
    private let values: UnsafeRawBufferPointer
    private let extras: UnsafeRawBufferPointer

    init(_ d: ColumnBlock.Decoder, rows: [ColumnRow], parts columns: [[UInt8]], used: [Bool]) throws(LogFormatError) {
        // Only the shapes the rows have (a block has hundreds), kept as their bytes, and the resources of those.
        // Building each as a `Shape` (a class of a dozen `String`s) and rendering its strings again from those was
        // about a tenth of a heavy search; their strings join the rows' instead, and a writer quotes each once.
        var index = [Int32](repeating: -1, count: d.layouts.layouts.count)
        var layouts: [ColumnBlock.RowLayout] = []
        var shapeBytes: [UInt8] = []
        var shapeBounds: [Int32] = [0]
        var rows = rows
        var strings = ColumnBlock.UsedStrings(used: used)
        let shapesColumn = d.column(.shapes)
        var shapeTags: [UInt8] = []  // the layouts have them already
        for i in rows.indices {
            let old = Int(rows[i].shape)
            if index[old] < 0 {
                index[old] = Int32(layouts.count)
                layouts.append(d.layouts.layouts[old])
                // Read again to mark its strings (`tables` checked it whole already).
                let start = d.shapeStarts[old]
                try shapesColumn.withBytes { (b) throws(LogFormatError) in
                    var r = BinaryReader(b, offset: start)
                    _ = try ColumnBlock.Decoder.rowLayout(
                        &r, strings: d.strings.count, resources: d.resourceStarts.count, revision: d.revision,
                        tags: &shapeTags, &strings)
                    shapeBytes.append(contentsOf: b[start..<r.offset])
                }
                shapeBounds.append(Int32(shapeBytes.count))
            }
            rows[i].shape = index[old]
        }
        var keep = [Bool](repeating: false, count: d.resourceStarts.count)
        for l in layouts { keep[l.resource] = true }
        var resources: [ColumnBlock.Resource] = []
        resources.reserveCapacity(keep.count)
        for i in keep.indices {
            resources.append(
                keep[i]
                    ? try d.resource(i)
                    : ColumnBlock.Resource(
                        attributes: [], dropped: 0, schemaURL: "", scope: InstrumentationScope(), scopeSchemaURL: ""))
        }
        // Only the strings the rows and their shapes name are kept: a block's table is mostly the strings of rows
        // not asked for, and resources hold their own.
        let used = strings.used
        var slots = [Int32](repeating: -1, count: d.strings.count)
        var text: [UInt8] = []
        var bounds: [Int32] = [0]
        for i in 0..<d.strings.count where used[i] {
            slots[i] = Int32(bounds.count - 1)
            try d.strings.appendUTF8(i, to: &text)
            bounds.append(Int32(text.count))
        }
        self.bounds = bounds
        self.slots = slots
        self.shapeBounds = shapeBounds
        self.layouts = layouts
        revision = d.revision
        tags = d.layouts.tags
        self.resources = resources
        self.rows = rows
        let held = columns + [text, shapeBytes]
        storage = .allocate(byteCount: max(1, held.reduce(0) { $0 + $1.count }), alignment: 8)
        var parts: [UnsafeRawBufferPointer] = []
        var at = 0
        for c in held {
            let part = UnsafeMutableRawBufferPointer(rebasing: storage[at..<at + c.count])
            c.withUnsafeBytes { part.copyMemory(from: $0) }
            parts.append(UnsafeRawBufferPointer(part))
            at += c.count
        }
        user = parts[0]
        http = parts[1]
        values = parts[2]
        extras = parts[3]
        self.text = parts[4].bindMemory(to: UInt8.self)
        self.shapeBytes = parts[5]
    }

    deinit { storage.deallocate() }

    /// Bytes held, for a cache's bound: the parts, strings and shapes, the rows and layouts, and an estimate for
    /// each resource.
    package var bytesHeld: Int {
        storage.count + rows.count * MemoryLayout<ColumnRow>.stride
            + layouts.count * (MemoryLayout<ColumnBlock.RowLayout>.stride + 4) + resources.count * 512 + slots.count * 4
    }

    /// The slot of string `id` (one that a row read through `readers` names), or -1.
    @inline(__always) package func slot(_ id: Int) -> Int { Int(slots[id]) }

    /// `slot(id)` of every string id of the block, index for index (a writer in another module keeps them, so
    /// that looking a string up costs no call).
    package var slotTable: [Int32] { slots }

    /// How many strings the rows name (slots `0..<stringCount`).
    package var stringCount: Int { bounds.count - 1 }

    /// The UTF-8 bytes of the string in `slot`, in memory this object owns: keep it alive while they are used.
    @inline(__always) package func utf8(_ slot: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: text[Int(bounds[slot])..<Int(bounds[slot + 1])])
    }

    /// The string in `slot`.
    package func string(_ slot: Int) -> String { String(decoding: utf8(slot), as: UTF8.self) }

    /// A reader of shape `i`'s stored bytes (`ColumnRow.shape` numbers them; columns.md, "shapes"), whose string
    /// ids are among the rows' (`slot`). It reads memory this object owns: keep it alive while it is used.
    package func shapeReader(_ i: Int) -> ColumnRowReader {
        ColumnRowReader(
            BinaryReader(
                UnsafeRawBufferPointer(
                    rebasing: shapeBytes[Int(shapeBounds[i])..<Int(shapeBounds[i + 1])])),
            strings: slots.count)
    }

    /// Shape `i` (`ColumnRow.shape` numbers them), built from its bytes: for readers of a few fields (a writer
    /// renders it from `shapeReader` instead).
    package func shape(_ i: Int) throws(LogFormatError) -> ColumnBlock.Shape {
        try shape(i, stringTable())
    }

    private func shape(_ i: Int, _ strings: BlockStrings) throws(LogFormatError) -> ColumnBlock.Shape {
        let resources = resources.count
        let revision = revision
        return try withExtendedLifetime(self) { () throws(LogFormatError) -> ColumnBlock.Shape in
            var r = shapeReader(i).r
            return try ColumnBlock.Decoder.shape(&r, strings, resources: resources, revision: revision)
        }
    }

    /// The block's strings as a table for the decoder: the ones the rows and their shapes name, the others empty.
    private func stringTable() -> BlockStrings {
        var table = [String](repeating: "", count: slots.count)
        for (id, k) in slots.enumerated() where k >= 0 { table[id] = string(Int(k)) }
        return BlockStrings(strings: table)
    }

    /// Readers at the start of row `i`'s (an index into `rows`) parts in the identities, HTTP, values and extras
    /// columns. They read memory this object owns: keep it alive while they are used.
    package func readers(_ i: Int) -> ColumnRowReaders {
        let row = rows[i]
        let n = slots.count
        return ColumnRowReaders(
            user: ColumnRowReader(BinaryReader(user, offset: Int(row.user)), strings: n),
            http: ColumnRowReader(BinaryReader(http, offset: Int(row.http)), strings: n),
            value: ColumnRowReader(BinaryReader(values, offset: Int(row.value)), strings: n),
            extra: ColumnRowReader(BinaryReader(extras, offset: Int(row.extra)), strings: n))
    }

    /// The event of row `i` (an index into `rows`), built as the decoder builds it (rarely needed: comparing retry
    /// duplicates).
    package func event(_ i: Int) throws(LogFormatError) -> AuditEvent {
        let row = rows[i]
        let table = stringTable()
        let s = try shape(Int(row.shape), table)
        let r = readers(i)
        let none = BinaryReader(UnsafeRawBufferPointer(start: nil, count: 0))
        var all = ColumnBlock.Decoder.Readers(
            shape: none, runs: none, span: none, parent: none, time: none, user: r.user.r, http: r.http.r,
            value: r.value.r, extra: r.extra.r)
        return try withExtendedLifetime(self) { () throws(LogFormatError) -> AuditEvent in
            try ColumnBlock.Decoder.buildRow(
                s, start: row.start, end: row.end, observed: row.observed, traceID: row.traceID, spanID: row.spanID,
                parent: s.hasParent ? row.parent : nil, &all, table, resources[s.resource])
        }
    }
}

/// Readers of one row's parts, one per column.
package struct ColumnRowReaders {
    package var user: ColumnRowReader
    package var http: ColumnRowReader
    package var value: ColumnRowReader
    package var extra: ColumnRowReader
}

/// Reads one column of a row with the decoder's checks: string ids against the block's dictionary, counts against
/// what remains, value tags known and nested at most `RecordCodec.maxValueDepth` deep. The readers a writer calls
/// per value are inlinable (a writer lives in another module), so reading a string id costs no call.
package struct ColumnRowReader {
    @usableFromInline package var r: BinaryReader
    @usableFromInline let strings: Int

    init(_ r: BinaryReader, strings: Int) {
        self.r = r
        self.strings = strings
    }

    /// A string id, checked against the dictionary.
    @inlinable @inline(__always) package mutating func string() throws(LogFormatError) -> Int {
        let i = try r.uvarint()
        guard i < UInt64(strings) else {
            throw LogFormatError(.malformed, "column block: string \(i) of a dictionary of \(strings)")
        }
        return Int(i)
    }

    /// An optional string id (0 for none, else the id plus one), checked against the dictionary.
    @inline(__always) package mutating func optionalString() throws(LogFormatError) -> Int? {
        let i = try r.uvarint()
        guard i > 0 else { return nil }
        guard i - 1 < UInt64(strings) else {
            throw LogFormatError(.malformed, "column block: string \(i - 1) of a dictionary of \(strings)")
        }
        return Int(i - 1)
    }

    @inlinable @inline(__always) package mutating func u8() throws(LogFormatError) -> UInt8 { try r.u8() }
    @inlinable @inline(__always) package mutating func svarint() throws(LogFormatError) -> Int64 {
        try r.svarint()
    }
    @inline(__always) package mutating func u64() throws(LogFormatError) -> UInt64 { try r.u64() }
    @inline(__always) package mutating func u64BigEndian() throws(LogFormatError) -> UInt64 {
        try r.u64BigEndian()
    }
    /// A count of items that follow (each at least one byte): at most what remains.
    @inline(__always) package mutating func count(_ what: StaticString) throws(LogFormatError) -> Int {
        try r.uvarint(max: r.remaining, what)
    }
    /// A 32-bit count (dropped counts, flags).
    @inline(__always) package mutating func count32() throws(LogFormatError) -> UInt32 {
        try ColumnBlock.Decoder.count32(&r)
    }
    /// A double of shape tag `ColumnBlock.ShapeTag.decimalDouble`.
    @inline(__always) package mutating func decimalDouble() throws(LogFormatError) -> Double {
        try ColumnBlock.Decoder.decimalDouble(&r)
    }
    /// A double of shape tag `ColumnBlock.ShapeTag.decimalDouble` as stored, mantissa and exponent, unchecked:
    /// `decimalDouble(m:e:)` makes the double of them, or refuses them as the decoder does.
    @inline(__always) package mutating func decimalParts() throws(LogFormatError) -> (m: Int64, e: Int64) {
        let m = try r.svarint()
        return (m, try r.svarint())
    }
    /// The double of `decimalParts`, as `decimalDouble()` reads it (the same error for an exponent no writer stores).
    package static func decimalDouble(m: Int64, e: Int64) throws(LogFormatError) -> Double {
        try ColumnBlock.Decoder.decimalDouble(m: m, e: e)
    }
    /// The 16 bytes of a run's request id (shape tags 0x83 and 0x84), which a held row holds at its first use.
    @inline(__always) package mutating func runRequestID() throws(LogFormatError) -> RunRequestID {
        try RunRequestID.read(&r)
    }
    /// `n` bytes, valid while the row's readers are.
    @inline(__always) package mutating func bytes(_ n: Int) throws(LogFormatError) -> UnsafeRawBufferPointer {
        try r.rawSlice(n)
    }
    /// A value's tag, checked to be known.
    @inlinable @inline(__always) package mutating func tag() throws(LogFormatError) -> UInt8 {
        let t = try r.u8()
        guard t <= RecordCodec.ValueTag.keyValueList else {
            throw LogFormatError(.malformed, "column block: unknown value tag \(t)")
        }
        return t
    }
    /// Fails for values nested `depth` deep or more, as the decoder does.
    @inline(__always) package static func checkDepth(_ depth: Int) throws(LogFormatError) {
        guard depth < RecordCodec.maxValueDepth else {
            throw LogFormatError(.malformed, "column block: values nested \(depth) deep")
        }
    }
}

extension ColumnBlock {
    /// The rows at `rows` (ascending row numbers within the block) whose start lies in `timeRange` (all when nil),
    /// with the block's tables and columns. Every row up to the last asked for is read and checked as the decoder
    /// does, the rest only counted (the file's head says how), and the block must hold `expectedRows` rows (its
    /// header's count).
    package static func rows(
        _ payload: UnsafeRawBufferPointer, rows wanted: [Int], segment: SegmentDictionary?, expectedRows: Int,
        timeRange: ClosedRange<UInt64>?, payloadChecked: Bool = false
    ) throws(LogFormatError) -> ColumnRows {
        var d = try Decoder(try columns(payload, payloadChecked: payloadChecked))
        d.segment = segment
        try d.tables(buildShapes: false)
        var v = OutputRows(wanted: wanted, timeRange: timeRange, tags: d.layouts.tags, strings: d.strings.count)
        // Room for the kept rows' parts at the block's size per row and a quarter more: grown from nothing, the
        // parts were copied a dozen times over for a block of which most rows are kept.
        func room(_ id: ColumnID) -> Int {
            let size = d.column(id).count
            return min(size, size * wanted.count / max(1, expectedRows)) * 5 / 4 + 64
        }
        v.user.reserveCapacity(room(.identities))
        v.http.reserveCapacity(room(.http))
        v.value.reserveCapacity(room(.values))
        v.extra.reserveCapacity(room(.extras))
        let layouts = d.layouts
        // The rows after the last asked for are not read for their parts (`walkRows(through:)`).
        let last = wanted.last ?? -1
        try d.withReaders { (r) throws(LogFormatError) in
            let count = try Decoder.walkRows(&r, layouts, through: last, &v)
            if v.nextWanted < wanted.count {
                throw LogFormatError(
                    .malformed, "column block: row \(wanted[v.nextWanted]) asked of a block of \(count)")
            }
            guard count == expectedRows else {
                throw LogFormatError(.malformed, "column block: holds \(count) rows, its header says \(expectedRows)")
            }
            try Decoder.end(r, skipping: last + 1 < count ? Self.columnsAfterTheLastRowRead : [])
        }
        // Handed over, not shared: the initializer renumbers the rows' shapes, which would copy a shared array.
        let rows = v.out
        v.out = []
        return try ColumnRows(d, rows: consume rows, parts: [v.user, v.http, v.value, v.extra], used: v.used.used)
    }

    /// The per-row columns `rows` leaves unread after the last row asked for, whose ends it does not check then.
    static let columnsAfterTheLastRowRead: [ColumnID] = [.parents, .times, .identities, .http, .values, .extras]

    /// The walk's visitor of `rows`: keeps the asked-for rows in the time range with their parts, and marks the
    /// strings those parts name.
    struct OutputRows: ColumnRowVisitor {
        let wanted: [Int]
        let timeRange: ClosedRange<UInt64>?
        let tags: [UInt8]
        let strings: Int
        var nextWanted = 0
        var out: [ColumnRow] = []
        /// The kept rows' parts of the identities, HTTP, values and extras columns (four arrays, not an array of
        /// them: appending to an element of an array checks both for sharing).
        var user: [UInt8] = []
        var http: [UInt8] = []
        var value: [UInt8] = []
        var extra: [UInt8] = []
        var used: UsedStrings

        init(wanted: [Int], timeRange: ClosedRange<UInt64>?, tags: [UInt8], strings: Int) {
            self.wanted = wanted
            self.timeRange = timeRange
            self.tags = tags
            self.strings = strings
            used = UsedStrings(used: [Bool](repeating: false, count: strings))
            out.reserveCapacity(wanted.count)
        }

        mutating func row(_ h: RowHead, _ layout: RowLayout, _ r: inout Decoder.Readers) throws(LogFormatError) {
            guard nextWanted < wanted.count && wanted[nextWanted] == h.row else {
                var none = Decoder.NoStrings()
                try Decoder.skipParts(layout, tags, &r, strings: strings, &none)
                return
            }
            nextWanted += 1
            guard timeRange?.contains(h.start) ?? true else {
                var none = Decoder.NoStrings()
                try Decoder.skipParts(layout, tags, &r, strings: strings, &none)
                return
            }
            let before = (r.user.offset, r.http.offset, r.value.offset, r.extra.offset)
            let requestIDRead = r.runRequestID != nil
            r.requestIDAt = -1
            try Decoder.skipParts(layout, tags, &r, strings: strings, &used)
            out.append(
                ColumnRow(
                    row: Int32(h.row), shape: Int32(h.shape), start: h.start, end: h.end, observed: h.observed,
                    traceID: h.traceID, spanID: h.spanID, parent: h.parent, user: Int32(user.count),
                    http: Int32(http.count), value: Int32(value.count), extra: Int32(extra.count)))
            user.append(contentsOf: r.user.buffer[before.0..<r.user.offset])
            if layout.hasTarget && r.revision >= Revision.parentTimes {
                // The held part names its target by id, as revision 1 does: a writer reads it without its run.
                var stored = BinaryReader(r.http.buffer, offset: before.1)
                _ = try stored.uvarint()
                var id = UInt64(r.runTarget)
                while id >= 0x80 {
                    http.append(UInt8(truncatingIfNeeded: id) | 0x80)
                    id >>= 7
                }
                http.append(UInt8(id))
                http.append(contentsOf: r.http.buffer[stored.offset..<r.http.offset])
            } else {
                http.append(contentsOf: r.http.buffer[before.1..<r.http.offset])
            }
            if r.requestIDAt >= 0 && requestIDRead, let id = r.runRequestID {
                // Held as if the row were its run's first: its first use of the run's request id holds the bytes.
                value.append(contentsOf: r.value.buffer[before.2..<r.requestIDAt])
                id.append(to: &value)
                value.append(contentsOf: r.value.buffer[r.requestIDAt..<r.value.offset])
            } else {
                value.append(contentsOf: r.value.buffer[before.2..<r.value.offset])
            }
            extra.append(contentsOf: r.extra.buffer[before.3..<r.extra.offset])
        }
    }

    /// Marks each string id a kept row names.
    struct UsedStrings: ColumnStringSink {
        var used: [Bool]
        @inline(__always) mutating func use(_ id: Int) { used[id] = true }
    }
}

/// A record an answer holds without its event: what ordering and duplicate checks need, and where to read the rest
/// (its segment, block and row, through the `RecordHandles` that holds it).
public struct RecordHandle: Sendable {
    /// The record's start time (Unix nanoseconds).
    public package(set) var start: UInt64
    /// Its segment (node and sequence) and ordinal there.
    public package(set) var location: RecordLocation
    public package(set) var traceID: TraceID
    public package(set) var spanID: SpanID
    /// An index into `RecordHandles.blocks` (then `item` indexes that block's `rows`), or -1 (then `item` indexes
    /// `RecordHandles.records`).
    package var block: Int32
    package var item: Int32
}

/// The records of an answer as handles: rows of column blocks, and decoded records for what has no columns (row
/// blocks, open segments). The handles name rows of the blocks read; each column is decoded only when asked for
/// (`RecordHandleColumns.swift`), or a writer renders a row straight from its block (auditq's JSON).
public struct RecordHandles: Sendable {
    package var blocks: [ColumnRows] = []
    package var records: [StoredRecord] = []
    /// The answer's records, in the order of the query that made them.
    public package(set) var handles: [RecordHandle] = []

    package init() {}

    /// Adds every row of `rows`, which lie in the segment of `node` and `sequence` from ordinal `firstOrdinal`.
    package mutating func append(_ rows: ColumnRows, node: NodeID, sequence: UInt64, firstOrdinal: UInt32) {
        guard !rows.rows.isEmpty else { return }
        let b = append(block: rows)
        for i in rows.rows.indices { appendRow(i, of: b, node: node, sequence: sequence, firstOrdinal: firstOrdinal) }
    }

    /// Adds `rows` without handles: its rows are named later (`appendRow`, `appendRows`). Returns its index.
    package mutating func append(block rows: ColumnRows) -> Int32 {
        blocks.append(rows)
        return Int32(blocks.count - 1)
    }

    /// Adds a handle for item `i` of block `b`, which lies in the segment of `node` and `sequence` from ordinal
    /// `firstOrdinal`.
    package mutating func appendRow(_ i: Int, of b: Int32, node: NodeID, sequence: UInt64, firstOrdinal: UInt32) {
        let r = blocks[Int(b)].rows[i]
        handles.append(
            RecordHandle(
                start: r.start,
                location: RecordLocation(
                    nodeID: node, segmentSequence: sequence, ordinal: firstOrdinal + UInt32(r.row)),
                traceID: r.traceID, spanID: r.spanID, block: b, item: Int32(i)))
    }

    /// Adds handles for the rows numbered `rows` (ascending) of block `b` whose start lies in `timeRange` (all when
    /// nil), if block `b` holds every one of them; false, adding nothing, if it lacks any.
    package mutating func appendRows(
        _ rows: [Int], of b: Int32, timeRange: ClosedRange<UInt64>?, node: NodeID, sequence: UInt64,
        firstOrdinal: UInt32
    ) -> Bool {
        let held = blocks[Int(b)].rows
        var items: [Int] = []
        items.reserveCapacity(rows.count)
        var i = 0
        for row in rows {
            // A block read whole (a cache's) holds row `k` at item `k`: no walk to it.
            if i < row && row < held.count && Int(held[row].row) == row { i = row }
            while i < held.count && Int(held[i].row) < row { i += 1 }
            guard i < held.count && Int(held[i].row) == row else { return false }
            items.append(i)
        }
        for i in items where timeRange?.contains(held[i].start) ?? true {
            appendRow(i, of: b, node: node, sequence: sequence, firstOrdinal: firstOrdinal)
        }
        return true
    }

    /// Adds all of `other`'s blocks, records and handles (its handles renumbered to name them here); returns the
    /// index here of `other`'s first block.
    @discardableResult
    package mutating func append(contentsOf other: RecordHandles) -> Int32 {
        let blockOffset = Int32(blocks.count)
        let recordOffset = Int32(records.count)
        blocks += other.blocks
        records += other.records
        // Copied in one piece, then renumbered in place: appending handle by handle was a third of the time a heavy
        // search spends on one thread between reading its blocks and writing its lines.
        let first = handles.count
        handles.append(contentsOf: other.handles)
        guard blockOffset != 0 || recordOffset != 0 else { return blockOffset }
        handles.withUnsafeMutableBufferPointer { added in
            for i in first..<added.count {
                if added[i].block >= 0 { added[i].block += blockOffset } else { added[i].item += recordOffset }
            }
        }
        return blockOffset
    }

    package mutating func append(_ record: StoredRecord) {
        handles.append(
            RecordHandle(
                start: record.event.startTimeUnixNano, location: record.location, traceID: record.event.traceID,
                spanID: record.event.spanID, block: -1, item: Int32(records.count)))
        records.append(record)
    }

    /// The event `h` names: decoded records as they are, rows built by the decoder. (Builds the whole event: a
    /// reader of a few fields asks for those columns instead.)
    public func event(_ h: RecordHandle) throws(LogFormatError) -> AuditEvent {
        h.block < 0 ? records[Int(h.item)].event : try blocks[Int(h.block)].event(Int(h.item))
    }

    /// Whether `h` is an edge's record or an access event (a request's own record, for `activity`).
    package func isEdgeOrAccess(_ h: RecordHandle) -> Bool {
        if h.block < 0 {
            let e = records[Int(h.item)].event
            return e.source == .edge || e.kind == .access
        }
        let rows = blocks[Int(h.block)]
        let s = rows.layouts[Int(rows.rows[Int(h.item)].shape)]
        return s.source == .edge || s.kind == .access
    }
}
