// The one reader of a shape's stored bytes (columns.md, "shapes"): the decoder builds its `Shape` from it, the row
// walk its `RowLayout`, and a writer renders a shape straight from it. Strings come out as ids of the block's
// dictionary, each checked against it and handed to a sink; every code is checked to be known. A shape is read in
// three steps, head, attributes and tail, so that each caller handles the attributes its own way without a list
// being built for it.

extension ColumnBlock {
    /// A shape's fields before its attributes.
    package struct ShapeHead {
        package var kind: EventKind
        package var spanKind: SpanKind
        package var source: EventSource
        package var status: StatusCode
        package var severity: UInt8
        /// Which optional parts follow the attributes (`Parts`).
        package var parts: UInt8
        package var flags: UInt32
        /// String ids.
        package var name: Int
        package var service: Int
        package var traceState: Int
        package var statusMessage: Int
        package var severityText: Int
        package var eventName: Int
        /// An index into the block's resources.
        package var resource: Int
        /// How many `Decoder.shapeAttribute` reads follow.
        package var attributeCount: Int
    }

    /// A shape's fields after its attributes. String ids are -1 where the shape has none.
    package struct ShapeTail {
        package var droppedAttributes: UInt32 = 0
        package var eventCount = 0
        package var droppedEvents: UInt32 = 0
        package var linkCount = 0
        package var droppedLinks: UInt32 = 0
        /// The user part.
        package var origin = IdentityOrigin.unknown
        package var issuer = -1
        package var hasEmail = false
        package var groupCount = 0
        package var hasFingerprint = false
        /// The workload part.
        package var workload = -1
        /// The HTTP part.
        package var method = -1
        package var route = -1
        package var httpStatus: UInt16 = 0
        package var httpParts: UInt8 = 0
    }
}

extension ColumnBlock.Decoder {
    /// A shape's one-byte code of `type`, refused when unknown.
    static func shapeCode<T: RawRepresentable>(
        _ type: T.Type, _ what: StaticString, _ r: inout BinaryReader
    ) throws(LogFormatError) -> T where T.RawValue == UInt8 {
        let v = try r.u8()
        guard let x = T(rawValue: v) else { throw LogFormatError(.malformed, "shape: unknown \(what) \(v)") }
        return x
    }

    /// An optional string id (0: none, else the id plus one) checked against a table of `n` strings; -1 for none.
    static func optionalStringID<S: ColumnStringSink>(
        _ r: inout BinaryReader, _ n: Int, _ sink: inout S
    ) throws(LogFormatError) -> Int {
        let i = try r.uvarint()
        guard i > 0 else { return -1 }
        guard i - 1 < UInt64(n) else {
            throw LogFormatError(.malformed, "column block: string \(i - 1) of a dictionary of \(n)")
        }
        sink.use(Int(i - 1))
        return Int(i - 1)
    }

    /// A shape's fields up to its attributes, its strings checked against a table of `n` and its resource against
    /// `resources`.
    static func shapeHead<S: ColumnStringSink>(
        _ r: inout BinaryReader, strings n: Int, resources: Int, _ sink: inout S
    ) throws(LogFormatError) -> ColumnBlock.ShapeHead {
        let kind = try shapeCode(EventKind.self, "kind", &r)
        let spanKind = try shapeCode(SpanKind.self, "span kind", &r)
        let source = try shapeCode(EventSource.self, "source", &r)
        let status = try shapeCode(StatusCode.self, "status", &r)
        let severity = try r.u8()
        let parts = try r.u8()
        guard parts & ~ColumnBlock.Parts.known == 0 else {
            throw LogFormatError(.malformed, "shape: unknown parts \(parts)")
        }
        let flags = try count32(&r)
        func string(_ r: inout BinaryReader, _ sink: inout S) throws(LogFormatError) -> Int {
            let id = try stringID(&r, n)
            sink.use(id)
            return id
        }
        let name = try string(&r, &sink)
        let service = try string(&r, &sink)
        let traceState = try string(&r, &sink)
        let statusMessage = try string(&r, &sink)
        let severityText = try string(&r, &sink)
        let eventName = try string(&r, &sink)
        let resource = try index(&r, count: resources, "a resource")
        return ColumnBlock.ShapeHead(
            kind: kind, spanKind: spanKind, source: source, status: status, severity: severity, parts: parts,
            flags: flags, name: name, service: service, traceState: traceState, statusMessage: statusMessage,
            severityText: severityText, eventName: eventName, resource: resource,
            attributeCount: try r.uvarint(max: r.remaining, "an attribute count"))
    }

    /// One attribute of a shape: its key's string id and its value tag. When the tag is `ShapeTag.constant`, the
    /// value, the same in every row of the shape, follows: the caller reads it (builds, renders or skips it).
    @inline(__always) static func shapeAttribute<S: ColumnStringSink>(
        _ r: inout BinaryReader, strings n: Int, revision: UInt64, _ sink: inout S
    ) throws(LogFormatError) -> (key: Int, tag: UInt8) {
        let key = try stringID(&r, n)
        sink.use(key)
        let tag = try r.u8()
        guard ColumnBlock.ShapeTag.isKnown(tag, revision: revision) else {
            throw LogFormatError(.malformed, "shape: unknown value tag \(tag)")
        }
        return (key, tag)
    }

    /// A shape's fields after its attributes: counts, then the parts `parts` names.
    static func shapeTail<S: ColumnStringSink>(
        _ r: inout BinaryReader, strings n: Int, parts: UInt8, _ sink: inout S
    ) throws(LogFormatError) -> ColumnBlock.ShapeTail {
        var t = ColumnBlock.ShapeTail()
        t.droppedAttributes = try count32(&r)
        t.eventCount = try r.uvarint(max: Int(UInt32.max), "an event count")
        t.droppedEvents = try count32(&r)
        t.linkCount = try r.uvarint(max: Int(UInt32.max), "a link count")
        t.droppedLinks = try count32(&r)
        if parts & ColumnBlock.Parts.user != 0 {
            t.origin = try shapeCode(IdentityOrigin.self, "identity origin", &r)
            t.issuer = try optionalStringID(&r, n, &sink)
            t.hasEmail = try r.u8() != 0
            t.groupCount = try r.uvarint(max: Int(UInt32.max), "a group count")
            t.hasFingerprint = try r.u8() != 0
        }
        if parts & ColumnBlock.Parts.workload != 0 {
            t.workload = try stringID(&r, n)
            sink.use(t.workload)
        }
        if parts & ColumnBlock.Parts.http != 0 {
            t.method = try optionalStringID(&r, n, &sink)
            t.route = try optionalStringID(&r, n, &sink)
            t.httpStatus = UInt16(try r.uvarint(max: Int(UInt16.max), "an HTTP status"))
            t.httpParts = try r.u8()
            guard t.httpParts & ~3 == 0 else { throw LogFormatError(.malformed, "shape: unknown HTTP parts") }
        }
        return t
    }
}

extension ColumnRowReader {
    /// `Decoder.shapeHead` on this reader (a shape's bytes: `ColumnRows.shapeReader`).
    package mutating func shapeHead(resources: Int) throws(LogFormatError) -> ColumnBlock.ShapeHead {
        var none = ColumnBlock.Decoder.NoStrings()
        return try ColumnBlock.Decoder.shapeHead(&r, strings: strings, resources: resources, &none)
    }

    /// `Decoder.shapeAttribute` on this reader; a constant's value follows (`tag()` and the value readers).
    package mutating func shapeAttribute(revision: UInt64) throws(LogFormatError) -> (key: Int, tag: UInt8) {
        var none = ColumnBlock.Decoder.NoStrings()
        return try ColumnBlock.Decoder.shapeAttribute(&r, strings: strings, revision: revision, &none)
    }

    /// `Decoder.shapeTail` on this reader.
    package mutating func shapeTail(parts: UInt8) throws(LogFormatError) -> ColumnBlock.ShapeTail {
        var none = ColumnBlock.Decoder.NoStrings()
        return try ColumnBlock.Decoder.shapeTail(&r, strings: strings, parts: parts, &none)
    }
}
