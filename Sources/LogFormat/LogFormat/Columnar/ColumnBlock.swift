// A column block (docs/design/logformat-v2.md, "Column block"): the records of a run of whole traces stored one
// column per kind of field, each column compressed on its own, so a query decompresses only what it reads. The
// encoding is lossless for everything an `AuditEvent` holds: decoding gives back events whose canonical record
// bytes (RecordCodec) are the bytes that were hashed into the segment's Merkle root.
//
// column-block = u16 columnCount  u16 reserved(0)  column-entry{columnCount}  column-bytes*
// column-entry = u8 column  u8 codec  u16 reserved(0)  u32 storedLength  u32 rawLength  u32 crc32(stored)
//
// Rows share a *shape*: every low-cardinality field of an event (kind, span kind, source, status, severity,
// presence of optional parts, flags, name, service, trace state, status message, severity text, event name,
// resource and scope, the attribute keys with their value types, HTTP method, route and status, identity
// origin and issuer, workload, counts of events and links, dropped counts). A row stores its shape's index and
// then only what varies: ids, times, attribute values, identity and HTTP strings. Strings are ids into the
// block's dictionary, whose entries are tokenized (ids inside strings stored as bytes).

/// What a column holds. Written to disk: never renumber.
package enum ColumnID: UInt8, Sendable, CaseIterable {
    /// The block's strings, tokenized, in order of first use: `uvarint count, tokenized{count}`.
    case dictionary = 1
    /// Distinct resources with their scopes: `uvarint count, resource{count}`.
    case resources = 2
    /// Distinct shapes: `uvarint count, shape{count}`.
    case shapes = 3
    /// Per row: `uvarint shape`.
    case rowShapes = 4
    /// Runs of rows with one trace id: `uvarint runs, (uvarint length, <16b trace id>){runs}`.
    case traceRuns = 5
    /// Per row: `<8b span id>`, big-endian.
    case spanIDs = 6
    /// Per row with a parent: `uvarint k`: k ≥ 1 the k-th row of its trace run; 0 then `<8b span id>`.
    case parents = 7
    /// `u64` the block's first start, then per row: start (a run's first row: `svarint` from the block's first
    /// start; else `svarint` from the run's first row), `svarint` end − start, and where the shape says, `svarint`
    /// observed − start. Differences wrap modulo 2^64, so any times round-trip.
    case times = 8
    /// Per row with a user: subject, e-mail (where the shape says), groups (count in the shape) as string ids,
    /// then the token fingerprint (where the shape says) as `uvarint n, <n bytes>`.
    case identities = 9
    /// Per row with HTTP facts: target and client address (where the shape says) as string ids.
    case http = 10
    /// Per row, per attribute of its shape in order, the value's variable part (see `encodeValueBody`).
    case values = 11
    /// Per row: body (where present), events and links, in full.
    case extras = 12
    /// `uvarint n`: the block's string ids 0..<n are the segment dictionary's first n strings and its own
    /// dictionary's strings follow from n (docs/format/dictionary.md). Written in every block since the segment
    /// dictionary; a block without it (written before) uses no segment strings.
    case segmentStrings = 13
    /// `uvarint revision`: how the other columns are written (`ColumnBlock.Revision`). Written in every block since
    /// revision 2; a block without it (written before) is revision 1.
    case revision = 14

    /// Columns every block holds.
    static let required: [ColumnID] = allCases.filter { $0 != .segmentStrings && $0 != .revision }
}

package enum ColumnBlock {
    /// How a block's columns are written (docs/format/columns.md, "Revisions"). Written to disk: never renumber.
    package enum Revision {
        /// Blocks without a revision column.
        static let first: UInt64 = 1
        /// Times from the parent row; value tags `traceIDString` and `decimalDouble` in shapes.
        static let parentTimes: UInt64 = 2
        /// Value tags `runRequestIDHex` and `runRequestIDUUID`: a request id's bytes once per trace run.
        static let runRequestIDs: UInt64 = 3
        /// Value tag `traceParent`: the row's own traceparent as its flags byte.
        static let traceParents: UInt64 = 4
        /// What the writer writes.
        package static let current: UInt64 = 4
    }

    /// Value tags only a shape's attribute list holds, from revision 2 (columns.md, "Revisions"), each standing for
    /// a canonical tag. Written to disk: never renumber.
    package enum ShapeTag {
        /// A string equal to the row's trace id in 32 lowercase hex digits; nothing in the row.
        package static let traceIDString: UInt8 = 0x80
        /// A double stored as `svarint m, svarint e`: the double nearest to m × 10^e.
        package static let decimalDouble: UInt8 = 0x81
        /// The same value in every row of the shape: the shape holds it after the tag as a full value (canonical
        /// tag and variable part); nothing in the row.
        package static let constant: UInt8 = 0x82
        /// Revision 3: a string spelling the trace run's request id (`RunRequestID`) as 32 lowercase hex digits; the
        /// run's first use of it (this tag or `runRequestIDUUID`) holds its 16 bytes in the row, later ones nothing.
        package static let runRequestIDHex: UInt8 = 0x83
        /// Revision 3: the same as `runRequestIDHex`, spelled as a lowercase UUID.
        package static let runRequestIDUUID: UInt8 = 0x84
        /// Revision 4: a string `00-<trace id>-<span id>-<flags>` spelling the row's own ids in lowercase hex
        /// (`RowTraceParent`); the row holds the flags byte (`u8`).
        package static let traceParent: UInt8 = 0x85

        /// Whether `tag` names the run's request id.
        @inline(__always) package static func isRunRequestID(_ tag: UInt8) -> Bool {
            tag == runRequestIDHex || tag == runRequestIDUUID
        }

        /// The canonical tag a shape's tag stands for.
        @inline(__always) package static func canonical(_ tag: UInt8) -> UInt8 {
            switch tag {
            case traceIDString, runRequestIDHex, runRequestIDUUID, traceParent: RecordCodec.ValueTag.string
            case decimalDouble: RecordCodec.ValueTag.double
            default: tag
            }
        }

        /// Whether a shape of a block of `revision` may hold `tag`.
        @inline(__always) static func isKnown(_ tag: UInt8, revision: UInt64) -> Bool {
            tag <= RecordCodec.ValueTag.keyValueList
                || (revision >= Revision.parentTimes
                    && (tag == traceIDString || tag == decimalDouble || tag == constant))
                || (revision >= Revision.runRequestIDs && isRunRequestID(tag))
                || (revision >= Revision.traceParents && tag == traceParent)
        }
    }

    // MARK: Encoding

    /// The payload of a column block holding `events` in this order, each column compressed with `codec`.
    package static func encode(_ events: [AuditEvent], codec: CompressionCodec, level: Int32 = 6)
        throws(LogFormatError) -> [UInt8]
    {
        try encode(events, codec: codec, level: level, shared: ByteKeyTable()).payload
    }

    /// `encode(_:codec:level:shared:segmentStringsColumn:revision:)` with the segment dictionary as a `Dictionary`.
    static func encode(
        _ events: [AuditEvent], codec: CompressionCodec, level: Int32, shared: [String: UInt64],
        segmentStringsColumn: Bool = true, revision: UInt64 = Revision.current
    ) throws(LogFormatError) -> (payload: [UInt8], own: [String]) {
        try encode(
            events, codec: codec, level: level, shared: ByteKeyTable(shared),
            segmentStringsColumn: segmentStringsColumn, revision: revision)
    }

    /// The payload of a column block whose string ids below `shared.count` are those of the segment dictionary
    /// `shared` (string → id), and the block's own strings in id order.
    /// `segmentStringsColumn: false` writes blocks as they were before the segment dictionary (no column 13).
    /// `revision: Revision.first` writes blocks as they were before the revision column (tests of old blocks).
    /// `resourceKeys`, when given, has one entry per event: events with the same key ≥ 0 have the same resource and
    /// scope (`SharedResources.lastEntry`), which is then encoded once (the payload is the same without keys).
    static func encode(
        _ events: [AuditEvent], codec: CompressionCodec, level: Int32, shared: ByteKeyTable,
        segmentStringsColumn: Bool = true, revision: UInt64 = Revision.current, resourceKeys: [Int]? = nil
    ) throws(LogFormatError) -> (payload: [UInt8], own: [String]) {
        var events = events
        return try encode(
            lending: &events, codec: codec, level: level, shared: shared, segmentStringsColumn: segmentStringsColumn,
            revision: revision, resourceKeys: resourceKeys)
    }

    /// `encode(_:codec:level:shared:segmentStringsColumn:revision:resourceKeys:)` of events the caller owns alone
    /// (the seal's): `events` comes back as it was given.
    static func encode(
        lending events: inout [AuditEvent], codec: CompressionCodec, level: Int32, shared: ByteKeyTable,
        segmentStringsColumn: Bool = true, revision: UInt64 = Revision.current, resourceKeys: [Int]? = nil
    ) throws(LogFormatError) -> (payload: [UInt8], own: [String]) {
        func encoder(ownStrings: [String]) -> Encoder {
            var e = Encoder()
            e.segmentStringsColumn = segmentStringsColumn
            e.revision = revision
            e.table.shared = shared
            e.table.base = UInt64(shared.count)
            for s in ownStrings { _ = e.table.id(s) }
            // Each event is moved out of the array for its `add` and back: passed from the array or its buffer, it was
            // copied before every call (a retain and release of each of its strings and arrays), the compiler unable
            // to prove that the mutating `add` leaves that memory alone. A moved-out value is the caller's own.
            events.withUnsafeMutableBufferPointer { b in
                for i in b.indices {
                    e.resourceKey = resourceKeys?[i] ?? -1
                    let slot = b.baseAddress! + i
                    let event = slot.move()
                    e.add(event)
                    slot.initialize(to: consume event)
                }
            }
            return e
        }
        var e = encoder(ownStrings: [])
        if codec == .zlib && e.table.own.count > 1 {
            // zlib blocks (the archive tier, written once and rarely) hold their own strings in memcmp order, where
            // zlib finds more of their shared prefixes (routes and targets): the rows are encoded again with the
            // strings numbered so (docs/format/columns.md, "How the writer orders and compresses").
            let sorted = e.table.own.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            e = encoder(ownStrings: sorted)
        }
        let payload = try e.finish(codec: codec, level: level)
        return (payload, e.table.own)
    }

    /// The block's strings, each stored once (tokenized) and named by its index; strings of the segment
    /// dictionary (`shared`) are named by theirs, below `base`.
    struct StringTable {
        var shared = ByteKeyTable()
        var base: UInt64 = 0
        var ids = ByteKeyTable(capacity: 1024)
        /// The block's own strings in id order (id = base + position).
        var own: [String] = []
        var bytes = BinaryWriter(capacity: 4096)

        mutating func id(_ s: String) -> UInt64 {
            if let id = ids.value(s) { return id }
            if let id = shared.value(s) {
                ids.insert(s, id)
                return id
            }
            let id = base + UInt64(own.count)
            ids.insert(s, id)
            own.append(s)
            TokenizedString.encode(s, into: &bytes)
            return id
        }
    }

    struct Encoder {
        var table = StringTable()
        var segmentStringsColumn = true
        var revision = Revision.current
        var resourceIndex = ByteKeyTable()
        var resources = BinaryWriter(capacity: 1024)
        /// The row being added has the resource and scope of every earlier row with this key, when it is ≥ 0.
        var resourceKey = -1
        /// The resource number of each key met in this block.
        var resourceOfKey: [Int: UInt64] = [:]
        var shapeIndex = ByteKeyTable()
        /// Each shape's bytes as first written, and where each of its attributes' tag lies in them.
        var shapeBytes: [[UInt8]] = []
        var shapeTags: [[Int]] = []
        /// For each shape, each attribute's value so far: `constants` (revision 2) finds those the same in every row.
        var shapeValues: [[SameValue]] = []
        /// Each row's shape, and where each of its attribute values ends in `values`.
        var rowShapeList: [Int] = []
        var valueEnds: [Int] = []
        var runs: [(length: Int, traceID: TraceID)] = []
        var spanIDs = BinaryWriter(capacity: 8192)
        var parents = BinaryWriter(capacity: 4096)
        var times = BinaryWriter(capacity: 8192)
        var identities = BinaryWriter(capacity: 1024)
        var http = BinaryWriter(capacity: 2048)
        var values = BinaryWriter(capacity: 8192)
        var extras = BinaryWriter(capacity: 1024)
        var blockStart: UInt64?
        var runStart: UInt64 = 0
        /// Span id → 1-based row within the current trace run.
        var runRows: [SpanID: Int] = [:]
        /// Start and end of the current run's rows, in row order (revision 2 times count from a parent row's).
        var runTimes: [(start: UInt64, end: UInt64)] = []
        /// The stored value tag of each attribute of the row being added.
        var tags: [UInt8] = []
        /// The HTTP target of the current run's last row with one (revision 2 stores a repeat as 0).
        var runTarget: String?
        /// The current run's request id, once a row of it has named one (revision 3).
        var runRequestID: RunRequestID?
        /// The attribute of the row being added whose value stores the run's request id's bytes (the run's first
        /// use of it), or -1.
        var requestIDBytesAt = -1
        /// `shape(of:)`'s bytes and tag offsets for the row being added, kept from row to row (a writer and an
        /// offsets array grown attribute by attribute were several allocations per row; few rows have a new shape).
        var shapeScratch = BinaryWriter(capacity: 256)
        var tagOffsetScratch: [Int] = []

        mutating func string(_ s: String) -> UInt64 { table.id(s) }

        mutating func optionalString(_ s: String?, into w: inout BinaryWriter) {
            if let s { w.uvarint(string(s) + 1) } else { w.uvarint(0) }
        }

        mutating func add(_ event: AuditEvent) {
            // Trace runs: a row joins the current run when it has the same trace id.
            let firstOfRun: Bool
            if let last = runs.last, last.traceID == event.traceID {
                runs[runs.count - 1].length += 1
                firstOfRun = false
            } else {
                runs.append((1, event.traceID))
                runRows.removeAll(keepingCapacity: true)
                runTimes.removeAll(keepingCapacity: true)
                runTarget = nil
                runRequestID = nil
                blockStart = blockStart ?? event.startTimeUnixNano
                runStart = event.startTimeUnixNano
                firstOfRun = true
            }
            let row = runs[runs.count - 1].length
            if runRows[event.spanID] == nil { runRows[event.spanID] = row }
            // The parent's row in the run: only rows already seen can be named (the decoder rebuilds in order).
            var parentRow = 0
            if let parent = event.parentSpanID {
                if let k = runRows[parent], k < row {
                    parentRow = k
                    parents.uvarint(UInt64(k))
                } else {
                    parents.uvarint(0)
                    parents.u64BigEndian(parent.value)
                }
            }
            let start = event.startTimeUnixNano
            let end = event.endTimeUnixNano
            runTimes.append((start, end))
            if revision >= Revision.parentTimes && parentRow > 0 {
                let p = runTimes[parentRow - 1]
                times.svarint(Int64(bitPattern: start &- p.start))
                times.svarint(Int64(bitPattern: end &- p.end))
            } else {
                // Sealed order puts runs in time order within a user; across users a run may start earlier than
                // the block's first, so this is a zig-zag delta too.
                times.svarint(Int64(bitPattern: start &- (firstOfRun ? blockStart! : runStart)))
                times.svarint(Int64(bitPattern: end &- start))
            }
            if event.observedTimeUnixNano != 0 {
                times.svarint(Int64(bitPattern: event.observedTimeUnixNano &- start))
            }
            spanIDs.u64BigEndian(event.spanID.value)
            tags.removeAll(keepingCapacity: true)
            requestIDBytesAt = -1
            for (j, a) in event.attributes.enumerated() {
                tags.append(storedTag(a.value, traceID: event.traceID, spanID: event.spanID, attribute: j))
            }
            let shapeNumber = Int(shape(of: event))
            rowShapeList.append(shapeNumber)
            if let user = event.user {
                identities.uvarint(string(user.subject))
                if let email = user.email { identities.uvarint(string(email)) }
                for g in user.groups { identities.uvarint(string(g)) }
                if let f = user.tokenFingerprint {
                    identities.uvarint(f.count)
                    identities.raw(f)
                }
            }
            if let h = event.http {
                if let t = h.target {
                    if revision < Revision.parentTimes {
                        http.uvarint(string(t))
                    } else {
                        // A request's hops mostly carry its target: a repeat within the run is 0, others id + 1.
                        http.uvarint(t == runTarget ? 0 : string(t) + 1)
                        runTarget = t
                    }
                }
                if let c = h.clientAddress { http.uvarint(string(c)) }
            }
            for (j, (a, tag)) in zip(event.attributes, tags).enumerated() {
                let start = values.count
                defer {
                    valueEnds.append(values.count)
                    shapeValues[shapeNumber][j].add(values.bytes, start..<values.count, tag: tag)
                }
                switch tag {
                case ShapeTag.traceIDString: break
                case ShapeTag.runRequestIDHex, ShapeTag.runRequestIDUUID:
                    if j == requestIDBytesAt { runRequestID?.write(to: &values) }
                case ShapeTag.traceParent:
                    // `storedTag` checked the text against the row's ids.
                    if case .string(let s) = a.value { values.u8(RowTraceParent.acceptedFlags(s)) }
                case ShapeTag.decimalDouble:
                    if case .double(let d) = a.value, let (m, e) = DecimalDouble.split(d) {
                        values.svarint(m)
                        values.svarint(e)
                    }
                default: Self.encodeValueBody(a.value, &table, into: &values)
                }
            }
            if let body = event.body { Self.encodeFullValue(body, &table, into: &extras) }
            for ev in event.events {
                extras.svarint(Int64(bitPattern: ev.timeUnixNano &- event.startTimeUnixNano))
                extras.uvarint(string(ev.name))
                Self.encodeFullAttributes(ev.attributes, &table, into: &extras)
                extras.uvarint(UInt64(ev.droppedAttributesCount))
            }
            for l in event.links {
                extras.u64BigEndian(l.traceID.high)
                extras.u64BigEndian(l.traceID.low)
                extras.u64BigEndian(l.spanID.value)
                extras.uvarint(string(l.traceState))
                Self.encodeFullAttributes(l.attributes, &table, into: &extras)
                extras.uvarint(UInt64(l.droppedAttributesCount))
                extras.uvarint(UInt64(l.flags))
            }
        }

        /// The index of `event`'s shape, added to the table when new.
        mutating func shape(of event: AuditEvent) -> UInt64 {
            var w = BinaryWriter(capacity: 0)
            var tagOffsets: [Int] = []
            swap(&w, &shapeScratch)
            swap(&tagOffsets, &tagOffsetScratch)
            defer {
                w.bytes.removeAll(keepingCapacity: true)
                tagOffsets.removeAll(keepingCapacity: true)
                swap(&w, &shapeScratch)
                swap(&tagOffsets, &tagOffsetScratch)
            }
            w.u8(event.kind.rawValue)
            w.u8(event.spanKind.rawValue)
            w.u8(event.source.rawValue)
            w.u8(event.statusCode.rawValue)
            w.u8(event.severityNumber)
            var parts: UInt8 = 0
            if event.parentSpanID != nil { parts |= Parts.parent }
            if event.user != nil { parts |= Parts.user }
            if event.workload != nil { parts |= Parts.workload }
            if event.http != nil { parts |= Parts.http }
            if event.body != nil { parts |= Parts.body }
            if event.observedTimeUnixNano != 0 { parts |= Parts.observed }
            w.u8(parts)
            w.uvarint(UInt64(event.flags))
            w.uvarint(string(event.name))
            w.uvarint(string(event.service))
            w.uvarint(string(event.traceState))
            w.uvarint(string(event.statusMessage))
            w.uvarint(string(event.severityText))
            w.uvarint(string(event.eventName))
            w.uvarint(resourceNumber(of: event))
            w.uvarint(event.attributes.count)
            for (a, tag) in zip(event.attributes, tags) {
                w.uvarint(string(a.key))
                tagOffsets.append(w.count)
                w.u8(tag)
            }
            w.uvarint(UInt64(event.droppedAttributesCount))
            w.uvarint(event.events.count)
            w.uvarint(UInt64(event.droppedEventsCount))
            w.uvarint(event.links.count)
            w.uvarint(UInt64(event.droppedLinksCount))
            if let user = event.user {
                w.u8(user.origin.rawValue)
                optionalString(user.issuer, into: &w)
                w.u8(user.email == nil ? 0 : 1)
                w.uvarint(user.groups.count)
                w.u8(user.tokenFingerprint == nil ? 0 : 1)
            }
            if let workload = event.workload { w.uvarint(string(workload)) }
            if let h = event.http {
                optionalString(h.method, into: &w)
                optionalString(h.route, into: &w)
                w.uvarint(UInt64(h.statusCode))
                w.u8((h.target == nil ? 0 : 1) | (h.clientAddress == nil ? 0 : 2))
            }
            if let i = shapeIndex.value(w.bytes) { return i }
            let i = UInt64(shapeIndex.count)
            shapeIndex.insert(w.bytes, i)
            shapeBytes.append(w.bytes)
            shapeTags.append(tagOffsets)
            shapeValues.append(Array(repeating: SameValue.none, count: tagOffsets.count))
            return i
        }

        /// `resource(of:)`, looked up by `resourceKey` when a row before had the same: encoding it again would give
        /// the same bytes, its strings having their ids already.
        mutating func resourceNumber(of event: AuditEvent) -> UInt64 {
            guard resourceKey >= 0 else { return resource(of: event) }
            if let i = resourceOfKey[resourceKey] { return i }
            let i = resource(of: event)
            resourceOfKey[resourceKey] = i
            return i
        }

        mutating func resource(of event: AuditEvent) -> UInt64 {
            var w = BinaryWriter(capacity: 256)
            Self.encodeFullAttributes(event.resourceAttributes, &table, into: &w)
            w.uvarint(UInt64(event.resourceDroppedAttributesCount))
            w.uvarint(string(event.resourceSchemaURL))
            w.uvarint(string(event.scope.name))
            w.uvarint(string(event.scope.version))
            Self.encodeFullAttributes(event.scope.attributes, &table, into: &w)
            w.uvarint(UInt64(event.scope.droppedAttributesCount))
            w.uvarint(string(event.scopeSchemaURL))
            if let i = resourceIndex.value(w.bytes) { return i }
            let i = UInt64(resourceIndex.count)
            resourceIndex.insert(w.bytes, i)
            resources.raw(w.bytes)
            return i
        }

        /// The tag a shape stores for attribute `attribute` of the row being added: in revision 2 a string that is
        /// the row's trace id in lowercase hex, or a double its shortest decimal form gives back exactly, gets a tag
        /// of its own; in revision 3 so does a string spelling the run's request id (the first such string of the
        /// run becomes it); in revision 4 so does the row's own traceparent.
        mutating func storedTag(_ v: AttributeValue, traceID: TraceID, spanID: SpanID, attribute: Int) -> UInt8 {
            guard revision >= Revision.parentTimes else { return valueTag(v) }
            switch v {
            case .string(let s) where s.utf8.count == 32 && Self.isLowercaseHex(s, of: traceID):
                return ShapeTag.traceIDString
            case .string(let s)
            where revision >= Revision.traceParents && RowTraceParent.flags(s, traceID: traceID, spanID: spanID) != nil:
                return ShapeTag.traceParent
            case .string(let s) where revision >= Revision.runRequestIDs:
                guard let (id, tag) = RunRequestID.parse(s) else { return valueTag(v) }
                if let run = runRequestID { return run == id ? tag : valueTag(v) }
                runRequestID = id
                requestIDBytesAt = attribute
                return tag
            case .double(let d) where DecimalDouble.split(d) != nil:
                return ShapeTag.decimalDouble
            default:
                return valueTag(v)
            }
        }

        /// Whether `s` is the 32 lowercase hex digits of `id` (compared in place: most strings of 32 bytes are not).
        static func isLowercaseHex(_ s: String, of id: TraceID) -> Bool {
            var s = s
            return s.withUTF8 { u in
                for (i, c) in u.enumerated() {
                    let word = i < 16 ? id.high : id.low
                    let digit = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * (i % 16))) & 0x0f
                    guard c == (digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10) else {
                        return false
                    }
                }
                return true
            }
        }

        /// A value's variable part, its tag being in the shape: strings as ids, numbers, bytes; nested values
        /// in full. Empty and booleans have none.
        static func encodeValueBody(_ v: AttributeValue, _ t: inout StringTable, into w: inout BinaryWriter) {
            switch v {
            case .empty, .bool: break
            case .string(let s): w.uvarint(t.id(s))
            case .int(let i): w.svarint(i)
            case .double(let d): w.u64(d.bitPattern)
            case .bytes(let b):
                w.uvarint(b.count)
                w.raw(b)
            case .array(let items):
                w.uvarint(items.count)
                for item in items { encodeFullValue(item, &t, into: &w) }
            case .keyValueList(let list): encodeFullAttributes(list, &t, into: &w)
            }
        }

        static func encodeFullValue(_ v: AttributeValue, _ t: inout StringTable, into w: inout BinaryWriter) {
            w.u8(valueTag(v))
            encodeValueBody(v, &t, into: &w)
        }

        static func encodeFullAttributes(_ list: [Attribute], _ t: inout StringTable, into w: inout BinaryWriter) {
            w.uvarint(list.count)
            for a in list {
                w.uvarint(t.id(a.key))
                encodeFullValue(a.value, &t, into: &w)
            }
        }

        /// Revision 2: an attribute whose value is the same in every row of its shape is stored once, in the shape
        /// (tag `ShapeTag.constant` and the full value), and taken out of the rows' values.
        mutating func moveConstantsIntoShapes() {
            var any = false
            for s in shapeBytes.indices {
                guard shapeValues[s].contains(where: \.isConstant) else { continue }
                any = true
                var out: [UInt8] = []
                out.reserveCapacity(shapeBytes[s].count + 16)
                var at = 0
                for (j, offset) in shapeTags[s].enumerated() {
                    guard case .same(let range, let tag) = shapeValues[s][j] else { continue }
                    out.append(contentsOf: shapeBytes[s][at..<offset])
                    out.append(ShapeTag.constant)
                    out.append(tag)
                    out.append(contentsOf: values.bytes[range])
                    at = offset + 1
                }
                out.append(contentsOf: shapeBytes[s][at...])
                shapeBytes[s] = out
            }
            guard any else { return }
            var kept = BinaryWriter(capacity: values.count)
            var at = 0
            var k = 0
            for s in rowShapeList {
                for same in shapeValues[s] {
                    if !same.isConstant { kept.raw(values.bytes[at..<valueEnds[k]]) }
                    at = valueEnds[k]
                    k += 1
                }
            }
            values = kept
        }

        /// The order the shapes column holds the shapes in (old numbers, first-use order, by new number): the 127 most
        /// used (by rows, ties by first use) first, then the rest, each part in memcmp order of their bytes.
        static func shapeOrder(_ shapes: [[UInt8]], uses rows: [Int]) -> [Int] {
            guard shapes.count > 1 else { return Array(shapes.indices) }
            var uses = [Int](repeating: 0, count: shapes.count)
            for s in rows { uses[s] += 1 }
            let oneByte = 127
            var byUse = Array(shapes.indices)
            if shapes.count > oneByte {
                byUse.sort { uses[$0] != uses[$1] ? uses[$0] > uses[$1] : $0 < $1 }
            }
            let bytesOrder: (Int, Int) -> Bool = { a, b in
                shapes[a].lexicographicallyPrecedes(shapes[b]) || (shapes[a] == shapes[b] && a < b)
            }
            let head = byUse.prefix(oneByte).sorted(by: bytesOrder)
            let tail = byUse.dropFirst(oneByte).sorted(by: bytesOrder)
            return head + tail
        }

        mutating func finish(codec: CompressionCodec, level: Int32) throws(LogFormatError) -> [UInt8] {
            var traceRuns = BinaryWriter(capacity: 16 + runs.count * 18)
            traceRuns.uvarint(runs.count)
            for r in runs {
                traceRuns.uvarint(r.length)
                traceRuns.u64BigEndian(r.traceID.high)
                traceRuns.u64BigEndian(r.traceID.low)
            }
            var dictionaryColumn = BinaryWriter(capacity: table.bytes.bytes.count + 8)
            dictionaryColumn.uvarint(table.own.count)
            dictionaryColumn.raw(table.bytes.bytes)
            var resourcesColumn = BinaryWriter(capacity: resources.bytes.count + 8)
            resourcesColumn.uvarint(resourceIndex.count)
            resourcesColumn.raw(resources.bytes)
            if revision >= Revision.parentTimes { moveConstantsIntoShapes() }
            // Shapes in an order that compresses: the most used first (their row ids take one byte), each part in
            // byte order, so that shapes alike lie side by side for LZ4 and zlib to find (docs/format/columns.md,
            // "How the writer orders a block's tables").
            let order = Self.shapeOrder(shapeBytes, uses: rowShapeList)
            var number = [Int](repeating: 0, count: order.count)
            for (new, old) in order.enumerated() { number[old] = new }
            var shapesColumn = BinaryWriter(capacity: shapeBytes.reduce(8) { $0 + $1.count })
            shapesColumn.uvarint(shapeIndex.count)
            for old in order { shapesColumn.raw(shapeBytes[old]) }
            var rowShapes = BinaryWriter(capacity: rowShapeList.count + 16)
            for s in rowShapeList { rowShapes.uvarint(number[s]) }
            // The block's first start, before the times.
            var timesColumn = BinaryWriter(capacity: times.bytes.count + 10)
            timesColumn.u64(blockStart ?? 0)
            timesColumn.raw(times.bytes)
            var columns: [(ColumnID, [UInt8])] = [
                (.dictionary, dictionaryColumn.bytes), (.resources, resourcesColumn.bytes),
                (.shapes, shapesColumn.bytes), (.rowShapes, rowShapes.bytes), (.traceRuns, traceRuns.bytes),
                (.spanIDs, spanIDs.bytes), (.parents, parents.bytes), (.times, timesColumn.bytes),
                (.identities, identities.bytes), (.http, http.bytes), (.values, values.bytes),
                (.extras, extras.bytes),
            ]
            // Written in every block, even with n = 0: a reader from before the segment dictionary then says
            // "unknown column" (unsupported version) instead of meeting newer string pieces as damage.
            if segmentStringsColumn || table.base > 0 {
                var segmentStrings = BinaryWriter(capacity: 10)
                segmentStrings.uvarint(table.base)
                columns.append((.segmentStrings, segmentStrings.bytes))
            }
            // Blocks of revision 1 have no revision column; later ones name theirs, so a reader from before it says
            // "unknown column" (unsupported version) instead of misreading times.
            if revision > Revision.first {
                var r = BinaryWriter(capacity: 10)
                r.uvarint(revision)
                columns.append((.revision, r.bytes))
            }
            var out = BinaryWriter(capacity: 4 + columns.count * 16)
            out.u16(UInt16(columns.count))
            out.u16(0)
            var stored: [[UInt8]] = []
            var scratch: [UInt8] = []
            for (id, raw) in columns {
                var use: CompressionCodec = raw.isEmpty ? .none : codec
                try raw.withBytes { (b) throws(LogFormatError) in
                    if use == .lz4 && ColumnBlock.denseLZ4(id) {
                        try BlockCompression.compressLZ4HC(b, level: ColumnBlock.lz4HCLevel, into: &scratch)
                    } else {
                        try BlockCompression.compress(b, codec: use, level: level, into: &scratch)
                    }
                    // A column its codec does not shrink (span ids: random bytes) is stored as is: fewer bytes,
                    // and a reader copies it instead of decompressing it.
                    if use != .none && scratch.count >= b.count {
                        use = .none
                        scratch.removeAll(keepingCapacity: true)
                        scratch.append(contentsOf: b)
                    }
                }
                out.u8(id.rawValue)
                out.u8(use.rawValue)
                out.u16(0)
                out.u32(UInt32(scratch.count))
                out.u32(UInt32(raw.count))
                out.u32(Checksum.crc32(scratch))
                stored.append(scratch)
            }
            for s in stored { out.raw(s) }
            return out.bytes
        }
    }

    /// An attribute's value across the rows of a shape: not seen yet, the same bytes in every row (where they
    /// first lie in the values column, and the value's canonical tag), or not the same.
    enum SameValue {
        case none
        case same(Range<Int>, tag: UInt8)
        case varies

        var isConstant: Bool {
            if case .same = self { true } else { false }
        }

        /// Adds a row's value, `bytes[range]` of shape tag `tag`. Values without bytes (empty, booleans, trace ids)
        /// and decimal doubles stay where they are.
        mutating func add(_ bytes: [UInt8], _ range: Range<Int>, tag: UInt8) {
            switch self {
            case .none:
                self = range.isEmpty || tag > RecordCodec.ValueTag.keyValueList ? .varies : .same(range, tag: tag)
            case .same(let first, _):
                if !bytes[first].elementsEqual(bytes[range]) { self = .varies }
            case .varies: break
            }
        }
    }

    /// The LZ4 HC level of a column block's structured columns (`denseLZ4`) in the hot tier.
    static let lz4HCLevel: Int32 = 9

    /// Whether a column is written with LZ4's high-compression encoder when the block is LZ4: every column but the
    /// span ids, times and trace runs, which are random bytes that no LZ4 encoder shrinks further.
    static func denseLZ4(_ id: ColumnID) -> Bool {
        switch id {
        case .spanIDs, .times, .traceRuns: false
        default: true
        }
    }

    /// Optional parts of a row, in its shape. Written to disk: never renumber.
    enum Parts {
        static let parent: UInt8 = 1 << 0
        static let user: UInt8 = 1 << 1
        static let workload: UInt8 = 1 << 2
        static let http: UInt8 = 1 << 3
        static let body: UInt8 = 1 << 4
        static let observed: UInt8 = 1 << 5
        static let known: UInt8 = 0x3f
    }

    static func valueTag(_ v: AttributeValue) -> UInt8 {
        switch v {
        case .empty: RecordCodec.ValueTag.empty
        case .string: RecordCodec.ValueTag.string
        case .bool(let b): b ? RecordCodec.ValueTag.boolTrue : RecordCodec.ValueTag.boolFalse
        case .int: RecordCodec.ValueTag.int
        case .double: RecordCodec.ValueTag.double
        case .bytes: RecordCodec.ValueTag.bytes
        case .array: RecordCodec.ValueTag.array
        case .keyValueList: RecordCodec.ValueTag.keyValueList
        }
    }
}
