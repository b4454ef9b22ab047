// Reading a column block back into events. Every length, count and reference is checked against what the
// block holds before it is used: a damaged or hostile block is an error naming the column, never a trap.

extension ColumnBlock {
    /// The events of a column block, in row order. `payloadChecked`: as for `columns`.
    package static func decode(
        _ payload: UnsafeRawBufferPointer, segment: SegmentDictionary? = nil, payloadChecked: Bool = false
    ) throws(LogFormatError) -> [AuditEvent] {
        let c = try columns(payload, payloadChecked: payloadChecked)
        var d = try Decoder(c)
        d.segment = segment
        return try d.events()
    }

    /// The events at `rows` (ascending row numbers within the block) of a column block. Every row is still read
    /// and checked, but only these are built into events: a query that needs a few rows of a block does not pay
    /// for allocating and releasing the rest.
    package static func decode(
        _ payload: UnsafeRawBufferPointer, rows: [Int], segment: SegmentDictionary? = nil, payloadChecked: Bool = false
    ) throws(LogFormatError) -> [AuditEvent] {
        let c = try columns(payload, payloadChecked: payloadChecked)
        var d = try Decoder(c)
        d.segment = segment
        d.wanted = rows
        return try d.events()
    }

    /// The block's trace runs, `(trace id, rows)` in row order, read from that column alone: enough to find a
    /// trace's rows without decoding the block.
    package static func traceRuns(_ payload: UnsafeRawBufferPointer, payloadChecked: Bool = false)
        throws(LogFormatError) -> [(TraceID, Int)]
    {
        let column = try columns(payload, only: .traceRuns, payloadChecked: payloadChecked)[.traceRuns] ?? []
        return try column.withBytes { (b) throws(LogFormatError) -> [(TraceID, Int)] in
            var r = BinaryReader(b)
            let count = try r.uvarint(max: r.remaining, "a run count")
            var out: [(TraceID, Int)] = []
            out.reserveCapacity(count)
            for _ in 0..<count {
                let length = try r.uvarint(max: Int(UInt32.max), "a run length")
                guard length > 0 else { throw LogFormatError(.malformed, "column block: an empty trace run") }
                out.append((TraceID(high: try r.u64BigEndian(), low: try r.u64BigEndian()), length))
            }
            try Decoder.end(r, .traceRuns)
            return out
        }
    }

    /// Stored bytes of each part of a column block: its directory and each column by name (for `stats --layout`).
    package static func storedSizes(_ payload: UnsafeRawBufferPointer) throws(LogFormatError) -> [(String, Int)] {
        var r = BinaryReader(payload)
        let count = Int(try r.u16())
        _ = try r.u16()
        var out = [("column directory", 4 + 12 * count)]
        for _ in 0..<count {
            let id = try r.u8()
            _ = try r.u8()
            _ = try r.u16()
            let stored = Int(try r.u32())
            _ = try r.u64()
            out.append(("column " + (ColumnID(rawValue: id).map { "\($0)" } ?? "\(id)"), stored))
        }
        return out
    }

    /// The block's columns (or only `only`, or only those `among`), each checked against its CRC and
    /// decompressed. With `payloadChecked` the caller has checked the block's payload CRC, which covers every
    /// column's bytes, so the columns' own CRCs are not computed again (columns.md, "Reading some columns").
    static func columns(
        _ payload: UnsafeRawBufferPointer, only: ColumnID? = nil, among: Set<ColumnID>? = nil,
        payloadChecked: Bool = false
    ) throws(LogFormatError) -> [ColumnID: [UInt8]] {
        var r = BinaryReader(payload)
        let count = Int(try r.u16())
        guard try r.u16() == 0 else { throw LogFormatError(.malformed, "column block: reserved bytes are not zero") }
        var entries: [(id: ColumnID, codec: CompressionCodec, stored: Int, raw: Int, crc: UInt32)] = []
        for _ in 0..<count {
            let rawID = try r.u8()
            guard let id = ColumnID(rawValue: rawID) else {
                throw LogFormatError(.unsupportedVersion, "column block: unknown column \(rawID)")
            }
            let rawCodec = try r.u8()
            guard let codec = CompressionCodec(rawValue: rawCodec) else {
                throw LogFormatError(.malformed, "column block: unknown codec \(rawCodec) of column \(rawID)")
            }
            guard try r.u16() == 0 else {
                throw LogFormatError(.malformed, "column block: reserved bytes of column \(rawID) are not zero")
            }
            let stored = Int(try r.u32())
            let raw = Int(try r.u32())
            guard raw <= FormatConstants.maxBlockPayload else {
                throw LogFormatError(.limitExceeded, "column block: column \(rawID) claims \(raw) bytes")
            }
            entries.append((id, codec, stored, raw, try r.u32()))
        }
        var out: [ColumnID: [UInt8]] = [:]
        for e in entries {
            guard e.stored <= r.remaining else {
                throw LogFormatError(.truncated, "column block: column \(e.id) runs past the block")
            }
            let bytes = try r.rawSlice(e.stored)
            // The revision is read by every reader: it says how the other columns are written.
            if let only, e.id != only && e.id != .revision { continue }
            if let among, !among.contains(e.id) && e.id != .revision { continue }
            guard payloadChecked || Checksum.crc32(bytes) == e.crc else {
                throw LogFormatError(.checksumMismatch, "column block: column \(e.id) fails its CRC")
            }
            guard out[e.id] == nil else { throw LogFormatError(.malformed, "column block: column \(e.id) twice") }
            var raw: [UInt8] = []
            try BlockCompression.decompress(bytes, codec: e.codec, rawLength: e.raw, into: &raw)
            out[e.id] = raw
        }
        guard r.remaining == 0 else {
            throw LogFormatError(.malformed, "column block: \(r.remaining) bytes after the last column")
        }
        _ = try revision(out)
        for id in ColumnID.required
        where out[id] == nil && (only == nil || only == id) && (among?.contains(id) ?? true) {
            throw LogFormatError(.malformed, "column block: column \(id) is missing")
        }
        return out
    }

    /// The block's revision (docs/format/columns.md, "Revisions"): 1 without a revision column; a revision this
    /// reader does not know is unsupported.
    static func revision(_ c: [ColumnID: [UInt8]]) throws(LogFormatError) -> UInt64 {
        guard let column = c[.revision] else { return Revision.first }
        return try column.withBytes { (b) throws(LogFormatError) -> UInt64 in
            var r = BinaryReader(b)
            let v = try r.uvarint()
            try Decoder.end(r, .revision)
            guard v >= Revision.parentTimes && v <= Revision.current else {
                throw LogFormatError(.unsupportedVersion, "column block: revision \(v)")
            }
            return v
        }
    }

    package struct Resource {
        package var attributes: [Attribute]
        package var dropped: UInt32
        package var schemaURL: String
        package var scope: InstrumentationScope
        package var scopeSchemaURL: String
    }

    /// A class, so that taking a row's shape costs one retain rather than one per string it holds.
    package final class Shape: ColumnShapeParts {
        package var kind: EventKind
        package var spanKind: SpanKind
        package var source: EventSource
        package var status: StatusCode
        package var severity: UInt8
        package var parts: UInt8
        package var flags: UInt32
        package var name: String
        package var service: String
        package var traceState: String
        package var statusMessage: String
        package var severityText: String
        package var eventName: String
        package var resource: Int
        package var attributes: [(key: String, tag: UInt8)]
        /// The values of attributes of tag `ShapeTag.constant`, index for index with `attributes` (`.empty` for the
        /// others); empty when the shape has none.
        package var constants: [AttributeValue] = []
        package var droppedAttributes: UInt32
        package var eventCount: Int
        package var droppedEvents: UInt32
        package var linkCount: Int
        package var droppedLinks: UInt32
        package var origin = IdentityOrigin.unknown
        package var issuer: String?
        package var hasEmail = false
        package var groupCount = 0
        package var hasFingerprint = false
        package var workload: String?
        package var method: String?
        package var route: String?
        package var httpStatus: UInt16 = 0
        package var httpParts: UInt8 = 0

        init(
            kind: EventKind, spanKind: SpanKind, source: EventSource, status: StatusCode, severity: UInt8,
            parts: UInt8, flags: UInt32, name: String, service: String, traceState: String, statusMessage: String,
            severityText: String, eventName: String, resource: Int, attributes: [(key: String, tag: UInt8)],
            droppedAttributes: UInt32, eventCount: Int, droppedEvents: UInt32, linkCount: Int, droppedLinks: UInt32
        ) {
            self.kind = kind
            self.spanKind = spanKind
            self.source = source
            self.status = status
            self.severity = severity
            self.parts = parts
            self.flags = flags
            self.name = name
            self.service = service
            self.traceState = traceState
            self.statusMessage = statusMessage
            self.severityText = severityText
            self.eventName = eventName
            self.resource = resource
            self.attributes = attributes
            self.droppedAttributes = droppedAttributes
            self.eventCount = eventCount
            self.droppedEvents = droppedEvents
            self.linkCount = linkCount
            self.droppedLinks = droppedLinks
        }
    }

    /// Reads the columns into events. Each column is read front to back by its own reader.
    struct Decoder {
        let c: [ColumnID: [UInt8]]
        var strings = BlockStrings()
        var resources: [Resource] = []
        /// Where each resource starts in the resources column.
        var resourceStarts: [Int] = []
        var shapes: [Shape] = []
        /// Where each shape starts in the shapes column.
        var shapeStarts: [Int] = []
        /// The shapes' row layouts, index for index: what the walk over the rows reads.
        var layouts = RowLayouts([])
        /// Rows to build, ascending; nil builds every row.
        var wanted: [Int]?
        /// The segment's dictionary, whose first strings a block with a `segmentStrings` column names.
        var segment: SegmentDictionary?
        /// How the columns are written (`ColumnBlock.Revision`).
        let revision: UInt64

        init(_ columns: [ColumnID: [UInt8]]) throws(LogFormatError) {
            c = columns
            revision = try ColumnBlock.revision(columns)
        }

        func column(_ id: ColumnID) -> [UInt8] { c[id] ?? [] }

        mutating func events() throws(LogFormatError) -> [AuditEvent] {
            // A few rows asked (a trace's records in a block of thousands) need few of the block's shapes.
            try tables(buildShapes: wanted == nil)
            return try rows()
        }

        /// Loads the block's string, resource and shape tables (every reference checked), which the rows name.
        /// Without `buildShapes`, the shapes and resources are read and checked only and `shapes` and `resources`
        /// stay empty: `shape(_:)` and `resource(_:)` build one when asked (a reader that keeps a few rows needs few
        /// of a block's hundreds of shapes and dozens of resources, and building one builds each of its strings).
        mutating func tables(buildShapes: Bool = true) throws(LogFormatError) {
            strings = try Self.strings(c, segment: segment)
            let dictionary = strings
            (resources, resourceStarts) = try column(.resources).withBytes {
                (b) throws(LogFormatError) -> ([Resource], [Int]) in
                var r = BinaryReader(b)
                let n = try r.uvarint(max: b.count, "a resource count")
                var out: [Resource] = []
                var starts: [Int] = []
                starts.reserveCapacity(n)
                for _ in 0..<n {
                    starts.append(r.offset)
                    if buildShapes {
                        out.append(try Self.resource(&r, dictionary))
                    } else {
                        try Self.skipResource(&r, dictionary.count)
                    }
                }
                try Self.end(r, .resources)
                return (out, starts)
            }
            let resourceCount = resourceStarts.count
            let revision = revision
            guard buildShapes else {
                // Only each shape's row layout, read straight from its bytes: building a `Shape` (a class) for
                // every one of a block's hundreds of shapes to take its layout was a twentieth of a heavy search.
                (layouts, shapeStarts) = try column(.shapes).withBytes {
                    (b) throws(LogFormatError) -> (RowLayouts, [Int]) in
                    var r = BinaryReader(b)
                    let n = try r.uvarint(max: b.count, "a shape count")
                    var layouts = RowLayouts([])
                    layouts.layouts.reserveCapacity(n)
                    var starts: [Int] = []
                    starts.reserveCapacity(n)
                    for _ in 0..<n {
                        starts.append(r.offset)
                        var none = NoStrings()
                        layouts.layouts.append(
                            try Self.rowLayout(
                                &r, strings: dictionary.count, resources: resourceCount, revision: revision,
                                tags: &layouts.tags, &none))
                    }
                    try Self.end(r, .shapes)
                    return (layouts, starts)
                }
                shapes = []
                return
            }
            let (built, starts) = try column(.shapes).withBytes {
                (b) throws(LogFormatError) -> ([Shape], [Int]) in
                var r = BinaryReader(b)
                let n = try r.uvarint(max: b.count, "a shape count")
                var out: [Shape] = []
                var starts: [Int] = []
                starts.reserveCapacity(n)
                for _ in 0..<n {
                    starts.append(r.offset)
                    out.append(try Self.shape(&r, dictionary, resources: resourceCount, revision: revision))
                }
                try Self.end(r, .shapes)
                return (out, starts)
            }
            layouts = RowLayouts(built)
            shapeStarts = starts
            shapes = built
        }

        /// Shape `i` with its strings (`tables(buildShapes: false)` checked it whole already).
        func shape(_ i: Int) throws(LogFormatError) -> Shape {
            if !shapes.isEmpty { return shapes[i] }
            let start = shapeStarts[i]
            let d = strings
            let resourceCount = resourceStarts.count
            let revision = revision
            return try column(.shapes).withBytes { (b) throws(LogFormatError) -> Shape in
                var r = BinaryReader(b, offset: start)
                return try Self.shape(&r, d, resources: resourceCount, revision: revision)
            }
        }

        /// Resource `i` with its strings (`tables(buildShapes: false)` checked it whole already).
        func resource(_ i: Int) throws(LogFormatError) -> Resource {
            if !resources.isEmpty { return resources[i] }
            let start = resourceStarts[i]
            let d = strings
            return try column(.resources).withBytes { (b) throws(LogFormatError) -> Resource in
                var r = BinaryReader(b, offset: start)
                return try Self.resource(&r, d)
            }
        }

        /// One resource with its scope, read from `r`.
        static func resource(_ r: inout BinaryReader, _ d: BlockStrings) throws(LogFormatError) -> Resource {
            let attributes = try fullAttributes(&r, d, depth: 0)
            let dropped = try count32(&r)
            let schemaURL = try string(&r, d)
            let name = try string(&r, d)
            let version = try string(&r, d)
            let scopeAttributes = try fullAttributes(&r, d, depth: 0)
            let scopeDropped = try count32(&r)
            let scopeSchemaURL = try string(&r, d)
            return Resource(
                attributes: attributes, dropped: dropped, schemaURL: schemaURL,
                scope: InstrumentationScope(
                    name: name, version: version, attributes: scopeAttributes, droppedAttributesCount: scopeDropped),
                scopeSchemaURL: scopeSchemaURL)
        }

        /// `resource(_:_:)` without building it: the same checks, in the same order, against a table of `n` strings.
        static func skipResource(_ r: inout BinaryReader, _ n: Int) throws(LogFormatError) {
            var none = NoStrings()
            try skipAttributes(&r, n, &none, depth: 0)
            _ = try count32(&r)
            for _ in 0..<3 { try skipString(&r, n) }
            try skipAttributes(&r, n, &none, depth: 0)
            _ = try count32(&r)
            try skipString(&r, n)
        }

        /// The string table of a block's columns: its own strings checked, none built yet.
        static func strings(_ c: [ColumnID: [UInt8]], segment: SegmentDictionary?) throws(LogFormatError)
            -> BlockStrings
        {
            let own = c[.dictionary] ?? []
            let ownStarts = try BlockStrings.starts(own)
            var segmentCount = 0
            if let column = c[.segmentStrings] { segmentCount = try segmentStrings(column, segment) }
            return BlockStrings(column: own, starts: ownStarts, segment: segment, segmentCount: segmentCount)
        }

        /// How many of the segment dictionary's first strings a block's `segmentStrings` column names.
        static func segmentStrings(_ column: [UInt8], _ segment: SegmentDictionary?) throws(LogFormatError) -> Int {
            try column.withBytes { (b) throws(LogFormatError) -> Int in
                var r = BinaryReader(b)
                let n = try r.uvarint(max: Int(UInt32.max), "a segment string count")
                try end(r, .segmentStrings)
                let have = segment?.count ?? 0
                guard n <= have else {
                    throw LogFormatError(
                        .malformed,
                        "column block: names \(n) strings of the segment dictionary, the segment has \(segment == nil ? "no dictionary" : "\(have)")"
                    )
                }
                return n
            }
        }

        /// One shape read from `r`, with its strings from `d`.
        static func shape(
            _ r: inout BinaryReader, _ d: BlockStrings, resources: Int, revision: UInt64
        ) throws(LogFormatError) -> Shape {
            var none = NoStrings()
            let n = d.count
            let h = try shapeHead(&r, strings: n, resources: resources, &none)
            var attributes: [(key: String, tag: UInt8)] = []
            attributes.reserveCapacity(h.attributeCount)
            var constants: [AttributeValue] = []
            for i in 0..<h.attributeCount {
                let (key, tag) = try shapeAttribute(&r, strings: n, revision: revision, &none)
                attributes.append((try d.string(key), tag))
                if tag == ShapeTag.constant {
                    if constants.isEmpty { constants = Array(repeating: .empty, count: h.attributeCount) }
                    constants[i] = try fullValue(&r, d, depth: 0)
                }
            }
            let t = try shapeTail(&r, strings: n, parts: h.parts, &none)
            func optional(_ id: Int) throws(LogFormatError) -> String? { id < 0 ? nil : try d.string(id) }
            let s = Shape(
                kind: h.kind, spanKind: h.spanKind, source: h.source, status: h.status, severity: h.severity,
                parts: h.parts, flags: h.flags, name: try d.string(h.name), service: try d.string(h.service),
                traceState: try d.string(h.traceState), statusMessage: try d.string(h.statusMessage),
                severityText: try d.string(h.severityText), eventName: try d.string(h.eventName),
                resource: h.resource, attributes: attributes, droppedAttributes: t.droppedAttributes,
                eventCount: t.eventCount, droppedEvents: t.droppedEvents, linkCount: t.linkCount,
                droppedLinks: t.droppedLinks)
            s.constants = constants
            if h.parts & Parts.user != 0 {
                s.origin = t.origin
                s.issuer = try optional(t.issuer)
                s.hasEmail = t.hasEmail
                s.groupCount = t.groupCount
                s.hasFingerprint = t.hasFingerprint
            }
            if h.parts & Parts.workload != 0 { s.workload = try d.string(t.workload) }
            if h.parts & Parts.http != 0 {
                s.method = try optional(t.method)
                s.route = try optional(t.route)
                s.httpStatus = t.httpStatus
                s.httpParts = t.httpParts
            }
            return s
        }

        /// One shape's row layout read from `r`, its attribute value tags appended to `tags` and each string id it
        /// names handed to `sink`: `shape` without building the shape or any of its strings (the same reader, so the
        /// same checks in the same order).
        static func rowLayout<S: ColumnStringSink>(
            _ r: inout BinaryReader, strings n: Int, resources: Int, revision: UInt64, tags: inout [UInt8],
            _ sink: inout S
        ) throws(LogFormatError) -> RowLayout {
            let h = try shapeHead(&r, strings: n, resources: resources, &sink)
            var layout = RowLayout(counting: h.kind, source: h.source, parts: h.parts)
            layout.status = h.status
            layout.name = h.name
            layout.service = h.service
            layout.resource = h.resource
            layout.tagStart = tags.count
            layout.tagCount = h.attributeCount
            for _ in 0..<h.attributeCount {
                let tag = try shapeAttribute(&r, strings: n, revision: revision, &sink).tag
                tags.append(tag)
                if tag == ShapeTag.constant { try skipValueBody(try r.u8(), &r, n, &sink, depth: 0) }
            }
            let t = try shapeTail(&r, strings: n, parts: h.parts, &sink)
            layout.eventCount = t.eventCount
            layout.linkCount = t.linkCount
            layout.hasEmail = t.hasEmail
            layout.groupCount = t.groupCount
            layout.hasFingerprint = t.hasFingerprint
            layout.method = t.method
            layout.httpStatus = t.httpStatus
            layout.httpParts = t.httpParts
            return layout
        }

        func rows() throws(LogFormatError) -> [AuditEvent] {
            let d = strings
            return try withReaders { (readers) throws(LogFormatError) -> [AuditEvent] in try build(&readers, d) }
        }

        /// Calls `body` with a reader on each per-row column.
        func withReaders<R>(_ body: (inout Readers) throws(LogFormatError) -> R) throws(LogFormatError) -> R {
            let rowShapes = column(.rowShapes)
            let traceRuns = column(.traceRuns)
            let spanIDs = column(.spanIDs)
            let parents = column(.parents)
            let times = column(.times)
            let identities = column(.identities)
            let http = column(.http)
            let values = column(.values)
            let extras = column(.extras)
            let revision = revision
            return try rowShapes.withBytes { (bs) throws(LogFormatError) -> R in
                try traceRuns.withBytes { (bt) throws(LogFormatError) -> R in
                    try spanIDs.withBytes { (bi) throws(LogFormatError) -> R in
                        try parents.withBytes { (bp) throws(LogFormatError) -> R in
                            try times.withBytes { (bm) throws(LogFormatError) -> R in
                                try identities.withBytes { (bu) throws(LogFormatError) -> R in
                                    try http.withBytes { (bh) throws(LogFormatError) -> R in
                                        try values.withBytes { (bv) throws(LogFormatError) -> R in
                                            try extras.withBytes { (bx) throws(LogFormatError) -> R in
                                                var readers = Readers(
                                                    shape: BinaryReader(bs), runs: BinaryReader(bt),
                                                    span: BinaryReader(bi), parent: BinaryReader(bp),
                                                    time: BinaryReader(bm), user: BinaryReader(bu),
                                                    http: BinaryReader(bh), value: BinaryReader(bv),
                                                    extra: BinaryReader(bx), revision: revision)
                                                return try body(&readers)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        struct Readers {
            var shape, runs, span, parent, time, user, http, value, extra: BinaryReader
            /// The block's revision, which says how the walk reads times and targets.
            var revision = Revision.first
            /// The string id of the current run's last HTTP target (revision 2 names a repeat of it as 0), or -1.
            var runTarget = -1
            /// The current run's request id once a row of it has read it (revision 3, `runRequestID`).
            var runRequestID: RunRequestID?
            /// Where in the values column the row being read met the run's request id (its bytes, or where they
            /// would be had the row been its run's first), or -1: a reader that sets -1 before a row learns it.
            var requestIDAt = -1
        }

        /// The trace run's request id for a value of tag 0x83 or 0x84: read from the values column at the run's first
        /// use of it, kept for the rest of the run (columns.md, "Revisions").
        @inline(__always) static func runRequestID(_ r: inout Readers) throws(LogFormatError) -> RunRequestID {
            if r.requestIDAt < 0 { r.requestIDAt = r.value.offset }
            if let id = r.runRequestID { return id }
            let id = try RunRequestID.read(&r.value)
            r.runRequestID = id
            return id
        }

        /// A row's HTTP target, as a string id checked against a table of `n` strings: in revision 2, 0 is the
        /// run's last target and others are id + 1 (columns.md, column 10).
        @inline(__always) static func target(_ r: inout Readers, _ n: Int) throws(LogFormatError) -> Int {
            guard r.revision >= Revision.parentTimes else { return try stringID(&r.http, n) }
            let v = try r.http.uvarint()
            let id: Int
            if v == 0 {
                guard r.runTarget >= 0 else {
                    throw LogFormatError(.malformed, "column block: a target repeating none before it in its run")
                }
                id = r.runTarget
            } else {
                guard v - 1 < UInt64(n) else {
                    throw LogFormatError(.malformed, "column block: string \(v - 1) of a dictionary of \(n)")
                }
                id = Int(v - 1)
            }
            r.runTarget = id
            return id
        }

        func build(_ r: inout Readers, _ d: BlockStrings) throws(LogFormatError) -> [AuditEvent] {
            var v = EventRows(decoder: self, tags: layouts.tags, strings: d, wanted: wanted)
            if let wanted { v.out.reserveCapacity(wanted.count) }
            let count = try Self.walkRows(&r, layouts, &v)
            if let wanted, v.nextWanted < wanted.count {
                throw LogFormatError(
                    .malformed, "column block: row \(wanted[v.nextWanted]) asked of a block of \(count)")
            }
            try Self.end(r)
            return v.out
        }

        /// The walk's visitor that builds events: every row, or the rows of `wanted`.
        struct EventRows: ColumnRowVisitor {
            /// Whose shapes and resources the rows name: built already (every row wanted) or built here when first
            /// named (`tables(buildShapes: false)`).
            let decoder: Decoder
            let tags: [UInt8]
            let strings: BlockStrings
            let wanted: [Int]?
            var nextWanted = 0
            var out: [AuditEvent] = []
            private var shapes: [Int: Shape] = [:]
            private var resources: [Int: Resource] = [:]

            init(decoder: Decoder, tags: [UInt8], strings: BlockStrings, wanted: [Int]?) {
                self.decoder = decoder
                self.tags = tags
                self.strings = strings
                self.wanted = wanted
            }

            private mutating func shape(_ i: Int) throws(LogFormatError) -> Shape {
                if !decoder.shapes.isEmpty { return decoder.shapes[i] }
                if let s = shapes[i] { return s }
                let s = try decoder.shape(i)
                shapes[i] = s
                return s
            }

            private mutating func resource(_ i: Int) throws(LogFormatError) -> Resource {
                if !decoder.resources.isEmpty { return decoder.resources[i] }
                if let r = resources[i] { return r }
                let r = try decoder.resource(i)
                resources[i] = r
                return r
            }

            mutating func row(_ h: RowHead, _ layout: RowLayout, _ r: inout Readers) throws(LogFormatError) {
                if let wanted {
                    guard nextWanted < wanted.count && wanted[nextWanted] == h.row else {
                        var none = NoStrings()
                        try skipParts(layout, tags, &r, strings: strings.count, &none)
                        return
                    }
                    nextWanted += 1
                }
                let s = try shape(h.shape)
                let resource = try resource(s.resource)
                out.append(
                    try buildRow(
                        s, start: h.start, end: h.end, observed: h.observed, traceID: h.traceID, spanID: h.spanID,
                        parent: layout.hasParent ? h.parent : nil, &r, strings, resource))
            }
        }

        /// The event of one row: its shape, its fixed fields (times and ids) and its parts read from the identities,
        /// HTTP, values and extras readers of `r`.
        static func buildRow(
            _ s: Shape, start: UInt64, end: UInt64, observed: UInt64, traceID: TraceID, spanID: SpanID,
            parent: SpanID?, _ r: inout Readers, _ d: BlockStrings, _ resource: Resource
        ) throws(LogFormatError) -> AuditEvent {
            var e = AuditEvent(
                kind: s.kind, startTimeUnixNano: start, endTimeUnixNano: end,
                observedTimeUnixNano: observed, traceID: traceID, spanID: spanID, parentSpanID: parent,
                traceState: s.traceState, flags: s.flags, spanKind: s.spanKind, name: s.name,
                service: s.service)
            e.source = s.source
            e.statusCode = s.status
            e.statusMessage = s.statusMessage
            e.severityNumber = s.severity
            e.severityText = s.severityText
            e.eventName = s.eventName
            if s.parts & Parts.user != 0 {
                let subject = try Self.string(&r.user, d)
                let email = s.hasEmail ? try Self.string(&r.user, d) : nil
                var groups: [String] = []
                for _ in 0..<s.groupCount { groups.append(try Self.string(&r.user, d)) }
                var fingerprint: [UInt8]?
                if s.hasFingerprint {
                    let n = try r.user.uvarint(max: r.user.remaining, "a fingerprint length")
                    fingerprint = try r.user.bytes(n)
                }
                e.user = UserIdentity(
                    subject: subject, email: email, groups: groups, issuer: s.issuer, origin: s.origin,
                    tokenFingerprint: fingerprint)
            }
            e.workload = s.workload
            if s.parts & Parts.http != 0 {
                let target = s.httpParts & 1 != 0 ? try d.string(Self.target(&r, d.count)) : nil
                let client = s.httpParts & 2 != 0 ? try Self.string(&r.http, d) : nil
                e.http = HTTPFacts(
                    method: s.method, target: target, route: s.route, statusCode: s.httpStatus,
                    clientAddress: client)
            }
            var attributes: [Attribute] = []
            attributes.reserveCapacity(s.attributes.count)
            for (k, a) in s.attributes.enumerated() {
                attributes.append(
                    Attribute(
                        a.key,
                        a.tag == ShapeTag.constant
                            ? s.constants[k] : try Self.rowValue(a.tag, &r, d, traceID: traceID, spanID: e.spanID)))
            }
            e.attributes = attributes
            e.droppedAttributesCount = s.droppedAttributes
            if s.parts & Parts.body != 0 { e.body = try Self.fullValue(&r.extra, d, depth: 0) }
            var events: [SpanEvent] = []
            for _ in 0..<s.eventCount {
                let time = start &+ UInt64(bitPattern: try r.extra.svarint())
                let name = try Self.string(&r.extra, d)
                let attributes = try Self.fullAttributes(&r.extra, d, depth: 0)
                events.append(
                    SpanEvent(
                        timeUnixNano: time, name: name, attributes: attributes,
                        droppedAttributesCount: try Self.count32(&r.extra)))
            }
            e.events = events
            e.droppedEventsCount = s.droppedEvents
            var links: [SpanLink] = []
            for _ in 0..<s.linkCount {
                let trace = TraceID(high: try r.extra.u64BigEndian(), low: try r.extra.u64BigEndian())
                let span = SpanID(value: try r.extra.u64BigEndian())
                let state = try Self.string(&r.extra, d)
                let attributes = try Self.fullAttributes(&r.extra, d, depth: 0)
                let dropped = try Self.count32(&r.extra)
                links.append(
                    SpanLink(
                        traceID: trace, spanID: span, traceState: state, attributes: attributes,
                        droppedAttributesCount: dropped, flags: try Self.count32(&r.extra)))
            }
            e.links = links
            e.droppedLinksCount = s.droppedLinks
            resource.apply(to: &e)
            return e
        }

        /// A row's start, end and observed time from the times column (columns.md, column 8): a run's first row
        /// counts from the block's first start and sets `runStart`, the others count from `runStart`; in revision
        /// 2 a row with a parent row in its run (`parent`, that row's start and end) counts from the parent's start
        /// and end. Every reader of rows (events, canonical bytes, counts) reads times through this one function.
        static func rowTimes(
            _ r: inout BinaryReader, firstOfRun: Bool, blockStart: UInt64, runStart: inout UInt64,
            parent: (start: UInt64, end: UInt64)? = nil, parts: UInt8
        ) throws(LogFormatError) -> (start: UInt64, end: UInt64, observed: UInt64) {
            let delta = UInt64(bitPattern: try r.svarint())
            let start: UInt64
            let end: UInt64
            if let parent {
                start = parent.start &+ delta
                end = parent.end &+ UInt64(bitPattern: try r.svarint())
            } else {
                if firstOfRun {
                    start = blockStart &+ delta
                    runStart = start
                } else {
                    start = runStart &+ delta
                }
                end = start &+ UInt64(bitPattern: try r.svarint())
            }
            guard parts & Parts.observed != 0 else { return (start, end, 0) }
            let observed = start &+ UInt64(bitPattern: try r.svarint())
            if observed == 0 {
                throw LogFormatError(.malformed, "column block: an observed time of 0 marked present")
            }
            return (start, end, observed)
        }

        // MARK: Primitives

        /// An index into a table of `count` entries.
        static func index(_ r: inout BinaryReader, count: Int, _ what: StaticString) throws(LogFormatError) -> Int {
            let v = try r.uvarint()
            guard v < UInt64(count) else {
                throw LogFormatError(.malformed, "column block: \(what) \(v) of a table of \(count)")
            }
            return Int(v)
        }

        static func end(_ r: BinaryReader, _ id: ColumnID) throws(LogFormatError) {
            guard r.remaining == 0 else {
                throw LogFormatError(.malformed, "column block: \(r.remaining) bytes left over in column \(id)")
            }
        }

        static func string(_ r: inout BinaryReader, _ d: BlockStrings) throws(LogFormatError) -> String {
            let i = try r.uvarint()
            guard i < UInt64(d.count) else {
                throw LogFormatError(.malformed, "column block: string \(i) of a dictionary of \(d.count)")
            }
            return try d.string(Int(i))
        }

        static func optionalString(_ r: inout BinaryReader, _ d: BlockStrings) throws(LogFormatError) -> String? {
            let i = try r.uvarint()
            guard i > 0 else { return nil }
            guard i - 1 < UInt64(d.count) else {
                throw LogFormatError(.malformed, "column block: string \(i - 1) of a dictionary of \(d.count)")
            }
            return try d.string(Int(i - 1))
        }

        static func count32(_ r: inout BinaryReader) throws(LogFormatError) -> UInt32 {
            UInt32(try r.uvarint(max: Int(UInt32.max), "a count"))
        }

        static func valueBody(_ tag: UInt8, _ r: inout BinaryReader, _ d: BlockStrings, depth: Int)
            throws(LogFormatError) -> AttributeValue
        {
            guard depth < RecordCodec.maxValueDepth else {
                throw LogFormatError(.malformed, "column block: values nested \(depth) deep")
            }
            switch tag {
            case RecordCodec.ValueTag.empty: return .empty
            case RecordCodec.ValueTag.string: return .string(try string(&r, d))
            case RecordCodec.ValueTag.boolFalse: return .bool(false)
            case RecordCodec.ValueTag.boolTrue: return .bool(true)
            case RecordCodec.ValueTag.int: return .int(try r.svarint())
            case RecordCodec.ValueTag.double: return .double(Double(bitPattern: try r.u64()))
            case RecordCodec.ValueTag.bytes:
                let n = try r.uvarint(max: r.remaining, "a bytes length")
                return .bytes(try r.bytes(n))
            case RecordCodec.ValueTag.array:
                let n = try r.uvarint(max: r.remaining, "an array length")
                var items: [AttributeValue] = []
                items.reserveCapacity(n)
                for _ in 0..<n { items.append(try fullValue(&r, d, depth: depth + 1)) }
                return .array(items)
            case RecordCodec.ValueTag.keyValueList:
                return .keyValueList(try fullAttributes(&r, d, depth: depth + 1))
            default:
                throw LogFormatError(.malformed, "column block: unknown value tag \(tag)")
            }
        }

        /// The value of a row's attribute whose shape tag is `tag`: the shape-only tags (`ShapeTag`) or a value body.
        static func rowValue(_ tag: UInt8, _ r: inout Readers, _ d: BlockStrings, traceID: TraceID, spanID: SpanID)
            throws(LogFormatError) -> AttributeValue
        {
            switch tag {
            case ShapeTag.traceIDString: return .string(traceID.hex)
            case ShapeTag.traceParent:
                return .string(RowTraceParent.text(traceID: traceID, spanID: spanID, flags: try r.value.u8()))
            case ShapeTag.runRequestIDHex, ShapeTag.runRequestIDUUID: return .string(try runRequestID(&r).text(tag))
            case ShapeTag.decimalDouble: return .double(try decimalDouble(&r.value))
            default: return try valueBody(tag, &r.value, d, depth: 0)
            }
        }

        /// Steps over the full value a shape holds after tag `ShapeTag.constant`, checking it as `fullValue` does
        /// against a table of `n` strings.
        static func skipConstant(_ r: inout BinaryReader, _ n: Int) throws(LogFormatError) {
            var none = NoStrings()
            try skipValueBody(try r.u8(), &r, n, &none, depth: 0)
        }

        /// A double of tag `ShapeTag.decimalDouble`: `svarint m, svarint e`.
        static func decimalDouble(_ r: inout BinaryReader) throws(LogFormatError) -> Double {
            let m = try r.svarint()
            return try decimalDouble(m: m, e: try r.svarint())
        }

        /// The double nearest to m × 10^e of a `decimalDouble` value read as its two numbers, or the decoder's error
        /// for an exponent no writer stores.
        static func decimalDouble(m: Int64, e: Int64) throws(LogFormatError) -> Double {
            guard let d = DecimalDouble.value(m: m, e: e) else {
                throw LogFormatError(.malformed, "column block: a decimal double with exponent \(e)")
            }
            return d
        }

        static func fullValue(_ r: inout BinaryReader, _ d: BlockStrings, depth: Int) throws(LogFormatError)
            -> AttributeValue
        {
            try valueBody(try r.u8(), &r, d, depth: depth)
        }

        static func fullAttributes(_ r: inout BinaryReader, _ d: BlockStrings, depth: Int) throws(LogFormatError)
            -> [Attribute]
        {
            let n = try r.uvarint(max: r.remaining, "an attribute count")
            var out: [Attribute] = []
            out.reserveCapacity(n)
            for _ in 0..<n {
                let key = try string(&r, d)
                out.append(Attribute(key, try fullValue(&r, d, depth: depth)))
            }
            return out
        }
    }
}
