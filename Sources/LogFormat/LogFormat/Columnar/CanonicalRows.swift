// A column block's records as canonical record bytes (RecordCodec, record version 1), written straight from the
// columns: no `AuditEvent`, `String` or `AttributeValue` is built per row. This is what integrity checks hash
// (the Merkle leaves are over these bytes), so it must equal `RecordCodec.encode` of the decoded events byte for
// byte; the differential tests in CanonicalRowsTests hold it to that. Every check the decoder makes is made
// here too, in the same order: ids in range, value nesting, counts, every column read to its end.

extension ColumnBlock {
    /// Appends the block's rows, `(uvarint n, <n bytes: canonical record>)*` in row order, to `out`, and returns
    /// how many there are. The same bytes as encoding each event of `decode(_:segment:)`, the same errors.
    package static func canonicalRows(
        _ payload: UnsafeRawBufferPointer, segment: SegmentDictionary? = nil, payloadChecked: Bool = false,
        into out: inout BinaryWriter
    ) throws(LogFormatError) -> Int {
        var d = try Decoder(try columns(payload, payloadChecked: payloadChecked))
        d.segment = segment
        try d.tables()
        return try CanonicalRows(d).write(d, into: &out)
    }
}

/// The per-block tables of the transcoder: each string's UTF-8 bytes, and each shape's fixed parts already in
/// canonical form, so a row is a copy of these interleaved with what its columns hold.
struct CanonicalRows {
    typealias Parts = ColumnBlock.Parts
    typealias Tag = RecordCodec.ValueTag

    /// UTF-8 of every string of the block's table, back to back; string `i` is `text[starts[i]..<starts[i+1]]`.
    var text: [UInt8] = []
    var starts: [Int] = [0]
    /// Canonical bytes of the shapes' fixed parts, back to back. Piece `k` of shape `i` is
    /// `fixed[bounds[first[i] + k]..<bounds[first[i] + k + 1]]`: header, after-ids, [user: groups, issuer+origin],
    /// workload+method, route+status, attribute count, one per attribute (key + tag), then events head, links
    /// head, tail (with resource).
    var fixed: [UInt8] = []
    var bounds: [Int] = []
    var first: [Int] = []

    init(_ d: ColumnBlock.Decoder) throws(LogFormatError) {
        text.reserveCapacity(d.strings.count * 16)
        starts.reserveCapacity(d.strings.count + 1)
        for i in 0..<d.strings.count {
            try d.strings.appendUTF8(i, to: &text)
            starts.append(text.count)
        }
        var w = BinaryWriter(capacity: 256 * max(1, d.shapes.count))
        var resourceTails: [[UInt8]] = []
        for r in d.resources {
            var t = BinaryWriter(capacity: 256)
            RecordCodec.encodeAttributes(r.attributes, into: &t)
            t.uvarint(UInt64(r.dropped))
            t.string(r.schemaURL)
            t.string(r.scope.name)
            t.string(r.scope.version)
            RecordCodec.encodeAttributes(r.scope.attributes, into: &t)
            t.uvarint(UInt64(r.scope.droppedAttributesCount))
            t.string(r.scopeSchemaURL)
            resourceTails.append(t.bytes)
        }
        first.reserveCapacity(d.shapes.count)
        var bounds: [Int] = []
        for s in d.shapes {
            first.append(bounds.count)
            bounds.append(w.count)
            func mark() { bounds.append(w.count) }
            var presence: UInt16 = 0
            if s.parts & Parts.parent != 0 { presence |= RecordCodec.Presence.parent }
            if s.parts & Parts.user != 0 { presence |= RecordCodec.Presence.user }
            if s.parts & Parts.workload != 0 { presence |= RecordCodec.Presence.workload }
            if s.parts & Parts.http != 0 { presence |= RecordCodec.Presence.http }
            if s.parts & Parts.body != 0 { presence |= RecordCodec.Presence.body }
            w.u8(FormatConstants.recordVersion)
            w.u8(s.kind.rawValue)
            w.u8(s.spanKind.rawValue)
            w.u8(s.source.rawValue)
            w.u8(s.status.rawValue)
            w.u8(s.severity)
            w.u16(presence)
            mark()  // 1: header; the row's times and ids follow
            w.uvarint(UInt64(s.flags))
            w.string(s.name)
            w.string(s.service)
            w.string(s.traceState)
            w.string(s.statusMessage)
            w.string(s.severityText)
            w.string(s.eventName)
            mark()  // 2: flags and names; the row's subject and e-mail follow
            w.uvarint(s.groupCount)
            mark()  // 3: group count; the row's groups follow
            w.optionalString(s.issuer)
            w.u8(s.origin.rawValue)
            mark()  // 4: issuer and origin; the row's fingerprint follows
            if let workload = s.workload { w.string(workload) }
            if s.parts & Parts.http != 0 { w.optionalString(s.method) }
            mark()  // 5: workload and method; the row's target follows
            w.optionalString(s.route)
            w.uvarint(UInt64(s.httpStatus))
            mark()  // 6: route and status; the row's client address, then its body follow
            w.uvarint(s.attributes.count)
            mark()  // 7: attribute count
            for (k, a) in s.attributes.enumerated() {
                w.string(a.key)
                if a.tag == ColumnBlock.ShapeTag.constant {
                    RecordCodec.encodeValue(s.constants[k], into: &w)
                } else {
                    w.u8(ColumnBlock.ShapeTag.canonical(a.tag))
                }
                mark()  // 8…: one attribute's key and tag (and a constant value); the row's value follows
            }
            w.uvarint(UInt64(s.droppedAttributes))
            w.uvarint(s.eventCount)
            mark()  // events follow
            w.uvarint(UInt64(s.droppedEvents))
            w.uvarint(s.linkCount)
            mark()  // links follow
            w.uvarint(UInt64(s.droppedLinks))
            w.raw(resourceTails[s.resource])
            mark()
        }
        fixed = w.bytes
        self.bounds = bounds
    }

    /// Writes every row of the block (the decoder's `build`, with bytes for events), then checks every column
    /// was read to its end.
    func write(_ d: ColumnBlock.Decoder, into out: inout BinaryWriter) throws(LogFormatError) -> Int {
        try text.withBytes { (t) throws(LogFormatError) -> Int in
            try fixed.withBytes { (f) throws(LogFormatError) -> Int in
                let result: Result<Int, LogFormatError> = starts.withUnsafeBufferPointer { st in
                    Result { () throws(LogFormatError) -> Int in
                        var table = Table(
                            text: t, starts: st, fixed: f, bounds: bounds, first: first, tags: d.layouts.tags,
                            out: BinaryWriter(capacity: 0))
                        // The output is lent to the walk's visitor and taken back, never copied.
                        swap(&table.out, &out)
                        defer { swap(&table.out, &out) }
                        let layouts = d.layouts
                        return try d.withReaders { (r) throws(LogFormatError) -> Int in
                            let count = try ColumnBlock.Decoder.walkRows(&r, layouts, &table)
                            try ColumnBlock.Decoder.end(r)
                            return count
                        }
                    }
                }
                return try result.get()
            }
        }
    }

    /// The walk's visitor: each row's canonical bytes, appended to `out`.
    struct Table: ColumnRowVisitor {
        let text: UnsafeRawBufferPointer
        let starts: UnsafeBufferPointer<Int>
        let fixed: UnsafeRawBufferPointer
        let bounds: [Int]
        let first: [Int]
        let tags: [UInt8]
        var out: BinaryWriter
        /// Attribute bytes of a row with a body, which the record puts after the body but the columns before.
        var held = BinaryWriter(capacity: 0)
        var count: Int { starts.count - 1 }

        /// Piece `k` of the shape whose pieces start at `bounds[at]`.
        @inline(__always) func piece(_ at: Int, _ k: Int, _ out: inout BinaryWriter) {
            out.raw(UnsafeRawBufferPointer(rebasing: fixed[bounds[at + k]..<bounds[at + k + 1]]))
        }

        /// A string id read from `r`, written as `uvarint length | UTF-8` (or `uvarint length + 1 | UTF-8` for an
        /// optional string that is present).
        @inline(__always) func string(_ r: inout BinaryReader, _ out: inout BinaryWriter, optional: Bool = false)
            throws(LogFormatError)
        {
            let i = try r.uvarint()
            guard i < UInt64(count) else {
                throw LogFormatError(.malformed, "column block: string \(i) of a dictionary of \(count)")
            }
            string(Int(i), &out, optional: optional)
        }

        /// String `i` (checked against the table), written as `string(_:_:optional:)` writes it.
        @inline(__always) func string(_ i: Int, _ out: inout BinaryWriter, optional: Bool = false) {
            let a = starts[i]
            let b = starts[i + 1]
            out.uvarint(b - a + (optional ? 1 : 0))
            out.raw(UnsafeRawBufferPointer(rebasing: text[a..<b]))
        }

        mutating func row(_ h: ColumnBlock.RowHead, _ p: ColumnBlock.RowLayout, _ r: inout ColumnBlock.Decoder.Readers)
            throws(LogFormatError)
        {
            typealias D = ColumnBlock.Decoder
            // The writers are taken out of `self` for the row: the helpers below are methods of `self`, and passing
            // `&self.out` to one would make the call copy `self` and with it share the output's buffer, so every
            // append copied the whole block written so far (verify went from 0.9 s to 35 s on a million records).
            var out = BinaryWriter(capacity: 0)
            var held = BinaryWriter(capacity: 0)
            swap(&out, &self.out)
            swap(&held, &self.held)
            defer {
                swap(&out, &self.out)
                swap(&held, &self.held)
            }
            let at = first[h.shape]
            // The record's length is not known until it is written: two bytes are kept for it (most records take
            // 128 to 16383 bytes), and moved when it takes one or three or more.
            let lengthAt = out.count
            out.u16(0)
            piece(at, 0, &out)
            out.u64(h.start)
            out.u64(h.end)
            out.u64(h.observed)
            out.u64BigEndian(h.traceID.high)
            out.u64BigEndian(h.traceID.low)
            out.u64BigEndian(h.spanID.value)
            if p.hasParent { out.u64BigEndian(h.parent.value) }
            piece(at, 1, &out)
            if p.parts & Parts.user != 0 {
                try string(&r.user, &out)
                if p.hasEmail { try string(&r.user, &out, optional: true) } else { out.u8(0) }
                piece(at, 2, &out)
                for _ in 0..<p.groupCount { try string(&r.user, &out) }
                piece(at, 3, &out)
                if p.hasFingerprint {
                    let n = try r.user.uvarint(max: r.user.remaining, "a fingerprint length")
                    out.uvarint(n + 1)
                    out.raw(try r.user.rawSlice(n))
                } else {
                    out.u8(0)
                }
            }
            piece(at, 4, &out)
            if p.parts & Parts.http != 0 {
                if p.httpParts & 1 != 0 {
                    string(try ColumnBlock.Decoder.target(&r, count), &out, optional: true)
                } else {
                    out.u8(0)
                }
                piece(at, 5, &out)
                if p.httpParts & 2 != 0 { try string(&r.http, &out, optional: true) } else { out.u8(0) }
            }
            if p.parts & Parts.body != 0 {
                held.bytes.removeAll(keepingCapacity: true)
                try attributeValues(at, p, h.traceID, h.spanID, &r, &held)
                let tag = try r.extra.u8()
                out.u8(tag)
                try valueBody(tag, &r.extra, &out, depth: 0)
                out.raw(held.bytes)
            } else {
                try attributeValues(at, p, h.traceID, h.spanID, &r, &out)
            }
            let a = 7 + p.tagCount
            piece(at, a, &out)
            for _ in 0..<p.eventCount {
                out.u64(h.start &+ UInt64(bitPattern: try r.extra.svarint()))
                try string(&r.extra, &out)
                try attributes(&r.extra, &out, depth: 0)
                out.uvarint(UInt64(try D.count32(&r.extra)))
            }
            piece(at, a + 1, &out)
            for _ in 0..<p.linkCount {
                out.raw(try r.extra.rawSlice(24))
                try string(&r.extra, &out)
                try attributes(&r.extra, &out, depth: 0)
                out.uvarint(UInt64(try D.count32(&r.extra)))
                out.uvarint(UInt64(try D.count32(&r.extra)))
            }
            piece(at, a + 2, &out)
            Self.patchLength(&out, at: lengthAt)
        }

        /// Fills in the two bytes kept at `at` with the uvarint length of what follows them.
        static func patchLength(_ out: inout BinaryWriter, at: Int) {
            let n = out.count - at - 2
            if n >= 0x80 && n < 0x4000 {
                out.bytes[at] = UInt8(truncatingIfNeeded: n) | 0x80
                out.bytes[at + 1] = UInt8(truncatingIfNeeded: n >> 7)
            } else {
                var v = BinaryWriter(capacity: 10)
                v.uvarint(n)
                out.bytes.replaceSubrange(at..<at + 2, with: v.bytes)
            }
        }

        /// The row's value of each attribute of its shape, after the shape's key and tag (the canonical one, for
        /// the shape-only tags).
        @inline(__always) func attributeValues(
            _ at: Int, _ p: ColumnBlock.RowLayout, _ traceID: TraceID, _ spanID: SpanID,
            _ r: inout ColumnBlock.Decoder.Readers,
            _ out: inout BinaryWriter
        ) throws(LogFormatError) {
            piece(at, 6, &out)
            for k in 0..<p.tagCount {
                piece(at, 7 + k, &out)
                switch tags[p.tagStart + k] {
                case ColumnBlock.ShapeTag.traceIDString:
                    out.uvarint(32)
                    HexCoding.appendDigits(of: traceID.high, to: &out)
                    HexCoding.appendDigits(of: traceID.low, to: &out)
                case ColumnBlock.ShapeTag.traceParent:
                    out.uvarint(RowTraceParent.length)
                    RowTraceParent.append(traceID: traceID, spanID: spanID, flags: try r.value.u8(), to: &out)
                case ColumnBlock.ShapeTag.runRequestIDHex, ColumnBlock.ShapeTag.runRequestIDUUID:
                    try ColumnBlock.Decoder.runRequestID(&r).withText(tags[p.tagStart + k]) { text in
                        out.uvarint(text.count)
                        out.raw(text)
                    }
                case ColumnBlock.ShapeTag.decimalDouble:
                    out.u64(try ColumnBlock.Decoder.decimalDouble(&r.value).bitPattern)
                case ColumnBlock.ShapeTag.constant: break
                default:
                    try valueBody(tags[p.tagStart + k], &r.value, &out, depth: 0)
                }
            }
        }

        /// The decoder's `valueBody`, writing the value's canonical bytes after its tag.
        func valueBody(_ tag: UInt8, _ r: inout BinaryReader, _ out: inout BinaryWriter, depth: Int)
            throws(LogFormatError)
        {
            guard depth < RecordCodec.maxValueDepth else {
                throw LogFormatError(.malformed, "column block: values nested \(depth) deep")
            }
            switch tag {
            case Tag.empty, Tag.boolFalse, Tag.boolTrue: return
            case Tag.string: try string(&r, &out)
            case Tag.int: out.svarint(try r.svarint())
            case Tag.double: out.u64(try r.u64())
            case Tag.bytes:
                let n = try r.uvarint(max: r.remaining, "a bytes length")
                out.uvarint(n)
                out.raw(try r.rawSlice(n))
            case Tag.array:
                let n = try r.uvarint(max: r.remaining, "an array length")
                out.uvarint(n)
                for _ in 0..<n {
                    let t = try r.u8()
                    out.u8(t)
                    try valueBody(t, &r, &out, depth: depth + 1)
                }
            case Tag.keyValueList:
                try attributes(&r, &out, depth: depth + 1)
            default:
                throw LogFormatError(.malformed, "column block: unknown value tag \(tag)")
            }
        }

        /// The decoder's `fullAttributes`: `uvarint count (key, full value){count}` in canonical bytes.
        func attributes(_ r: inout BinaryReader, _ out: inout BinaryWriter, depth: Int) throws(LogFormatError) {
            let n = try r.uvarint(max: r.remaining, "an attribute count")
            out.uvarint(n)
            for _ in 0..<n {
                try string(&r, &out)
                let t = try r.u8()
                out.u8(t)
                try valueBody(t, &r, &out, depth: depth)
            }
        }
    }
}
