// The canonical binary record encoding, version 1 (docs/format/segment.md, "Records").
//
// Deterministic: one `AuditEvent` value has exactly one encoding, so the Merkle leaves computed over these
// bytes are stable across recompression and across readers. Fixed-width fields come first, so a reader can
// take the kind and times from fixed offsets without decoding the rest.

public enum RecordCodec {
    /// Presence bits of the record header. Written to disk: never renumber.
    enum Presence {
        static let parent: UInt16 = 1 << 0
        static let user: UInt16 = 1 << 1
        static let workload: UInt16 = 1 << 2
        static let http: UInt16 = 1 << 3
        static let body: UInt16 = 1 << 4
        static let known: UInt16 = 0x1f
    }

    /// Attribute value tags. Written to disk: never renumber.
    package enum ValueTag {
        package static let empty: UInt8 = 0
        package static let string: UInt8 = 1
        package static let boolFalse: UInt8 = 2
        package static let boolTrue: UInt8 = 3
        package static let int: UInt8 = 4
        package static let double: UInt8 = 5
        package static let bytes: UInt8 = 6
        package static let array: UInt8 = 7
        package static let keyValueList: UInt8 = 8
    }

    /// Byte offsets of the fixed header fields.
    public enum Offsets {
        public static let version = 0
        public static let kind = 1
        public static let startTime = 8
        public static let endTime = 16
        public static let traceID = 32
        /// Size of the fixed part before the optional parent span id.
        public static let fixedHeader = 56
    }

    // MARK: Encoding

    /// Appends the canonical encoding of `event` to `w`. Returns the deepest nesting of attribute values met
    /// (as `valueDepth(of:)`), so a writer can refuse what a reader would not decode without a second walk.
    ///
    /// Written in two walks of one description (`write(_:into:)`): the first counts the bytes, the second stores
    /// them in place into room of that size at the end of `w`. Appended primitive by primitive, each of a record's
    /// ~70 appends checked the array's capacity and uniqueness, which made the encoder a tenth of the collector's
    /// CPU per access line.
    @discardableResult
    public static func encode(_ event: AuditEvent, into w: inout BinaryWriter) -> Int {
        var counter = ByteCounter()
        write(event, into: &counter)
        let start = w.bytes.count
        let size = counter.count
        RawByteSink.makeRoom(size, in: &w.bytes)
        return w.bytes.withUnsafeMutableBytes { all in
            var out = RawByteSink(all.baseAddress! + start)
            let depth = write(event, into: &out)
            // The two walks read the same event through the same description; a difference would be a bug here.
            precondition(out.offset == size, "record encoder: \(out.offset) bytes written of \(size) counted")
            return depth
        }
    }

    /// The canonical bytes of `event`.
    public static func encode(_ event: AuditEvent) -> [UInt8] {
        var w = BinaryWriter(capacity: 512)
        encode(event, into: &w)
        return w.bytes
    }

    /// The canonical encoding of `event`, as primitives to `s`; returns the deepest value nesting.
    @discardableResult
    static func write<S: RecordByteSink>(_ event: AuditEvent, into w: inout S) -> Int {
        var depth = 0
        var presence: UInt16 = 0
        if event.parentSpanID != nil { presence |= Presence.parent }
        if event.user != nil { presence |= Presence.user }
        if event.workload != nil { presence |= Presence.workload }
        if event.http != nil { presence |= Presence.http }
        if event.body != nil { presence |= Presence.body }

        w.u8(FormatConstants.recordVersion)
        w.u8(event.kind.rawValue)
        w.u8(event.spanKind.rawValue)
        w.u8(event.source.rawValue)
        w.u8(event.statusCode.rawValue)
        w.u8(event.severityNumber)
        w.u16(presence)
        w.u64(event.startTimeUnixNano)
        w.u64(event.endTimeUnixNano)
        w.u64(event.observedTimeUnixNano)
        w.u64BigEndian(event.traceID.high)
        w.u64BigEndian(event.traceID.low)
        w.u64BigEndian(event.spanID.value)
        if let parent = event.parentSpanID { w.u64BigEndian(parent.value) }
        w.uvarint(UInt64(event.flags))
        w.string(event.name)
        w.string(event.service)
        w.string(event.traceState)
        w.string(event.statusMessage)
        w.string(event.severityText)
        w.string(event.eventName)
        if let user = event.user {
            w.string(user.subject)
            w.optionalString(user.email)
            w.uvarint(user.groups.count)
            for g in user.groups { w.string(g) }
            w.optionalString(user.issuer)
            w.u8(user.origin.rawValue)
            if let fp = user.tokenFingerprint {
                w.uvarint(fp.count + 1)
                fp.withUnsafeBytes { w.raw($0) }
            } else {
                w.u8(0)
            }
        }
        if let workload = event.workload { w.string(workload) }
        if let http = event.http {
            w.optionalString(http.method)
            w.optionalString(http.target)
            w.optionalString(http.route)
            w.uvarint(UInt64(http.statusCode))
            w.optionalString(http.clientAddress)
        }
        if let body = event.body { depth = max(depth, encodeValue(body, into: &w)) }
        depth = max(depth, encodeAttributes(event.attributes, into: &w))
        w.uvarint(UInt64(event.droppedAttributesCount))
        w.uvarint(event.events.count)
        for e in event.events {
            w.u64(e.timeUnixNano)
            w.string(e.name)
            depth = max(depth, encodeAttributes(e.attributes, into: &w))
            w.uvarint(UInt64(e.droppedAttributesCount))
        }
        w.uvarint(UInt64(event.droppedEventsCount))
        w.uvarint(event.links.count)
        for l in event.links {
            w.u64BigEndian(l.traceID.high)
            w.u64BigEndian(l.traceID.low)
            w.u64BigEndian(l.spanID.value)
            w.string(l.traceState)
            depth = max(depth, encodeAttributes(l.attributes, into: &w))
            w.uvarint(UInt64(l.droppedAttributesCount))
            w.uvarint(UInt64(l.flags))
        }
        w.uvarint(UInt64(event.droppedLinksCount))
        depth = max(depth, encodeAttributes(event.resourceAttributes, into: &w))
        w.uvarint(UInt64(event.resourceDroppedAttributesCount))
        w.string(event.resourceSchemaURL)
        w.string(event.scope.name)
        w.string(event.scope.version)
        depth = max(depth, encodeAttributes(event.scope.attributes, into: &w))
        w.uvarint(UInt64(event.scope.droppedAttributesCount))
        w.string(event.scopeSchemaURL)
        return depth
    }

    /// Returns the deepest value nesting among the attributes (0 for none).
    @discardableResult
    static func encodeAttributes<S: RecordByteSink>(_ attributes: [Attribute], into w: inout S) -> Int {
        w.uvarint(attributes.count)
        var depth = 0
        for a in attributes {
            w.string(a.key)
            depth = max(depth, encodeValue(a.value, into: &w))
        }
        return depth
    }

    /// Returns the value's nesting depth (1 for a plain value).
    @discardableResult
    static func encodeValue<S: RecordByteSink>(_ value: AttributeValue, into w: inout S) -> Int {
        switch value {
        case .empty: w.u8(ValueTag.empty)
        case .string(let s):
            w.u8(ValueTag.string)
            w.string(s)
        case .bool(let b): w.u8(b ? ValueTag.boolTrue : ValueTag.boolFalse)
        case .int(let i):
            w.u8(ValueTag.int)
            w.svarint(i)
        case .double(let d):
            w.u8(ValueTag.double)
            w.u64(d.bitPattern)
        case .bytes(let b):
            w.u8(ValueTag.bytes)
            w.lengthPrefixed(b)
        case .array(let values):
            w.u8(ValueTag.array)
            w.uvarint(values.count)
            var depth = 0
            for v in values { depth = max(depth, encodeValue(v, into: &w)) }
            return depth + 1
        case .keyValueList(let list):
            w.u8(ValueTag.keyValueList)
            return encodeAttributes(list, into: &w) + 1
        }
        return 1
    }

    /// Deepest nesting of arrays and key-value lists in any value of `event` (a plain value is depth 1).
    /// The writer refuses events deeper than `maxValueDepth`, which the reader would refuse to decode.
    public static func valueDepth(of event: AuditEvent) -> Int {
        func depth(_ v: AttributeValue) -> Int {
            switch v {
            case .array(let values): return 1 + (values.map(depth).max() ?? 0)
            case .keyValueList(let list): return 1 + (list.map { depth($0.value) }.max() ?? 0)
            default: return 1
            }
        }
        func depth(_ attributes: [Attribute]) -> Int { attributes.map { depth($0.value) }.max() ?? 0 }
        var d = max(depth(event.attributes), depth(event.resourceAttributes), depth(event.scope.attributes))
        if let body = event.body { d = max(d, depth(body)) }
        for e in event.events { d = max(d, depth(e.attributes)) }
        for l in event.links { d = max(d, depth(l.attributes)) }
        return d
    }

    // MARK: Decoding

    /// Nesting deeper than this (arrays and key-value lists inside each other) is treated as damage.
    public static let maxValueDepth = 64

    /// Decodes one record that occupies all of `bytes`.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(LogFormatError) -> AuditEvent {
        var r = BinaryReader(bytes)
        let event = try decode(from: &r)
        guard r.isAtEnd else {
            throw LogFormatError(.malformed, "\(r.remaining) unexpected bytes after the record", offset: r.offset)
        }
        return event
    }

    public static func decode(_ bytes: [UInt8]) throws(LogFormatError) -> AuditEvent {
        try bytes.withBytes { (buffer) throws(LogFormatError) in try decode(buffer) }
    }

    static func decode(from r: inout BinaryReader) throws(LogFormatError) -> AuditEvent {
        var strings = FreshStrings()
        var event = try decodeBeforeResource(from: &r, strings: &strings)
        try decodeResource(from: &r, into: &event, strings: &strings)
        return event
    }

    /// Decodes one record that occupies all of `bytes`, as `decode(_:)`, taking its resource and scope (the end
    /// of the record) from `resources` when an earlier record ended in the same bytes: the events then share
    /// those arrays and strings instead of each building its own (a resource is a record's largest group of
    /// strings, and a segment's records share a few hundred of them).
    static func decode(_ bytes: UnsafeRawBufferPointer, sharing resources: inout SharedResources)
        throws(LogFormatError) -> AuditEvent
    {
        var r = BinaryReader(bytes)
        var event = try decodeBeforeResource(from: &r, strings: &resources.strings)
        let tail = UnsafeRawBufferPointer(rebasing: bytes[r.offset...])
        if resources.take(tail, into: &event) { return event }
        try decodeResource(from: &r, into: &event, strings: &resources.strings)
        guard r.isAtEnd else {
            throw LogFormatError(.malformed, "\(r.remaining) unexpected bytes after the record", offset: r.offset)
        }
        resources.keep(tail, from: event)
        return event
    }

    /// Everything of a record up to its resource.
    private static func decodeBeforeResource<S: RecordStrings>(from r: inout BinaryReader, strings: inout S)
        throws(LogFormatError) -> AuditEvent
    {
        let version = try r.u8()
        guard version == FormatConstants.recordVersion else {
            throw LogFormatError(
                version > FormatConstants.recordVersion ? .unsupportedVersion : .malformed,
                "record version \(version); this reader knows version \(FormatConstants.recordVersion)",
                offset: r.offset - 1)
        }
        let kindByte = try r.u8()
        guard let kind = EventKind(rawValue: kindByte) else {
            throw LogFormatError(.malformed, "unknown event kind \(kindByte)", offset: r.offset - 1)
        }
        let spanKindByte = try r.u8()
        guard let spanKind = SpanKind(rawValue: spanKindByte) else {
            throw LogFormatError(.malformed, "unknown span kind \(spanKindByte)", offset: r.offset - 1)
        }
        let sourceByte = try r.u8()
        guard let source = EventSource(rawValue: sourceByte) else {
            throw LogFormatError(.malformed, "unknown source \(sourceByte)", offset: r.offset - 1)
        }
        let statusByte = try r.u8()
        guard let statusCode = StatusCode(rawValue: statusByte) else {
            throw LogFormatError(.malformed, "unknown status code \(statusByte)", offset: r.offset - 1)
        }
        let severity = try r.u8()
        let presence = try r.u16()
        guard presence & ~Presence.known == 0 else {
            throw LogFormatError(.malformed, "unknown presence bits \(presence)", offset: r.offset - 2)
        }
        let start = try r.u64()
        let end = try r.u64()
        let observed = try r.u64()
        let traceID = TraceID(high: try r.u64BigEndian(), low: try r.u64BigEndian())
        let spanID = SpanID(value: try r.u64BigEndian())
        let parent = presence & Presence.parent != 0 ? SpanID(value: try r.u64BigEndian()) : nil
        let flags = try r.uvarint(max: Int(UInt32.max), "flags")
        var event = AuditEvent(
            kind: kind, startTimeUnixNano: start, endTimeUnixNano: end, observedTimeUnixNano: observed,
            traceID: traceID, spanID: spanID, parentSpanID: parent, flags: UInt32(flags), spanKind: spanKind,
            source: source, statusCode: statusCode, severityNumber: severity)
        event.name = try strings.string(&r)
        event.service = try strings.string(&r)
        event.traceState = try strings.string(&r)
        event.statusMessage = try strings.string(&r)
        event.severityText = try strings.string(&r)
        event.eventName = try strings.string(&r)
        if presence & Presence.user != 0 {
            let subject = try strings.string(&r)
            let email = try strings.optionalString(&r)
            let groupCount = try r.uvarint(max: r.remaining, "group count")
            var groups = [String]()
            groups.reserveCapacity(groupCount)
            for _ in 0..<groupCount { groups.append(try strings.string(&r)) }
            let issuer = try strings.optionalString(&r)
            let originByte = try r.u8()
            guard let origin = IdentityOrigin(rawValue: originByte) else {
                throw LogFormatError(.malformed, "unknown identity origin \(originByte)", offset: r.offset - 1)
            }
            let fpLength = try r.uvarint(max: r.remaining + 1, "fingerprint length")
            let fingerprint = fpLength == 0 ? nil : try r.bytes(fpLength - 1)
            event.user = UserIdentity(
                subject: subject, email: email, groups: groups, issuer: issuer, origin: origin,
                tokenFingerprint: fingerprint)
        }
        if presence & Presence.workload != 0 { event.workload = try strings.string(&r) }
        if presence & Presence.http != 0 {
            let method = try strings.optionalString(&r)
            let target = try strings.optionalString(&r)
            let route = try strings.optionalString(&r)
            let status = try r.uvarint(max: Int(UInt16.max), "HTTP status")
            let client = try strings.optionalString(&r)
            event.http = HTTPFacts(
                method: method, target: target, route: route, statusCode: UInt16(status), clientAddress: client)
        }
        if presence & Presence.body != 0 { event.body = try decodeValue(from: &r, depth: 0, strings: &strings) }
        event.attributes = try decodeAttributes(from: &r, depth: 0, strings: &strings)
        event.droppedAttributesCount = try count32(&r)
        let eventCount = try r.uvarint(max: r.remaining, "span event count")
        event.events.reserveCapacity(eventCount)
        for _ in 0..<eventCount {
            let time = try r.u64()
            let name = try strings.string(&r)
            let attributes = try decodeAttributes(from: &r, depth: 0, strings: &strings)
            let dropped = try count32(&r)
            event.events.append(
                SpanEvent(timeUnixNano: time, name: name, attributes: attributes, droppedAttributesCount: dropped))
        }
        event.droppedEventsCount = try count32(&r)
        let linkCount = try r.uvarint(max: r.remaining, "link count")
        event.links.reserveCapacity(linkCount)
        for _ in 0..<linkCount {
            let linkTrace = TraceID(high: try r.u64BigEndian(), low: try r.u64BigEndian())
            let linkSpan = SpanID(value: try r.u64BigEndian())
            let state = try strings.string(&r)
            let attributes = try decodeAttributes(from: &r, depth: 0, strings: &strings)
            let dropped = try count32(&r)
            let linkFlags = try count32(&r)
            event.links.append(
                SpanLink(
                    traceID: linkTrace, spanID: linkSpan, traceState: state, attributes: attributes,
                    droppedAttributesCount: dropped, flags: linkFlags))
        }
        event.droppedLinksCount = try count32(&r)
        return event
    }

    /// A record's resource and scope, its last fields.
    private static func decodeResource<S: RecordStrings>(
        from r: inout BinaryReader, into event: inout AuditEvent, strings: inout S
    ) throws(LogFormatError) {
        event.resourceAttributes = try decodeAttributes(from: &r, depth: 0, strings: &strings)
        event.resourceDroppedAttributesCount = try count32(&r)
        event.resourceSchemaURL = try strings.string(&r)
        let scopeName = try strings.string(&r)
        let scopeVersion = try strings.string(&r)
        let scopeAttributes = try decodeAttributes(from: &r, depth: 0, strings: &strings)
        let scopeDropped = try count32(&r)
        event.scope = InstrumentationScope(
            name: scopeName, version: scopeVersion, attributes: scopeAttributes, droppedAttributesCount: scopeDropped)
        event.scopeSchemaURL = try strings.string(&r)
    }

    private static func count32(_ r: inout BinaryReader) throws(LogFormatError) -> UInt32 {
        UInt32(try r.uvarint(max: Int(UInt32.max), "a 32-bit count"))
    }

    static func decodeAttributes<S: RecordStrings>(from r: inout BinaryReader, depth: Int, strings: inout S)
        throws(LogFormatError) -> [Attribute]
    {
        // Each attribute takes at least 2 bytes (empty key, tag), which bounds the allocation.
        let count = try r.uvarint(max: r.remaining / 2, "attribute count")
        var out = [Attribute]()
        out.reserveCapacity(count)
        for _ in 0..<count {
            let key = try strings.string(&r)
            out.append(Attribute(key, try decodeValue(from: &r, depth: depth, strings: &strings)))
        }
        return out
    }

    static func decodeValue<S: RecordStrings>(from r: inout BinaryReader, depth: Int, strings: inout S)
        throws(LogFormatError) -> AttributeValue
    {
        guard depth < maxValueDepth else {
            throw LogFormatError(.malformed, "values nested deeper than \(maxValueDepth)", offset: r.offset)
        }
        let tag = try r.u8()
        switch tag {
        case ValueTag.empty: return .empty
        case ValueTag.string: return .string(try strings.string(&r))
        case ValueTag.boolFalse: return .bool(false)
        case ValueTag.boolTrue: return .bool(true)
        case ValueTag.int: return .int(try r.svarint())
        case ValueTag.double: return .double(Double(bitPattern: try r.u64()))
        case ValueTag.bytes: return .bytes(Array(try r.lengthPrefixedSlice()))
        case ValueTag.array:
            let count = try r.uvarint(max: r.remaining, "array length")
            var values = [AttributeValue]()
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try decodeValue(from: &r, depth: depth + 1, strings: &strings)) }
            return .array(values)
        case ValueTag.keyValueList:
            return .keyValueList(try decodeAttributes(from: &r, depth: depth + 1, strings: &strings))
        default:
            throw LogFormatError(.malformed, "unknown attribute value tag \(tag)", offset: r.offset - 1)
        }
    }

    // MARK: Peeking

    /// The start time of an encoded record, read from its fixed header without decoding the rest.
    @inlinable public static func peekStartTime(_ record: UnsafeRawBufferPointer) -> UInt64? {
        guard record.count >= Offsets.fixedHeader else { return nil }
        return UInt64(littleEndian: record.loadUnaligned(fromByteOffset: Offsets.startTime, as: UInt64.self))
    }

    /// The trace id of an encoded record, from its fixed header.
    @inlinable public static func peekTraceID(_ record: UnsafeRawBufferPointer) -> TraceID? {
        guard record.count >= Offsets.fixedHeader else { return nil }
        return TraceID(
            high: UInt64(bigEndian: record.loadUnaligned(fromByteOffset: Offsets.traceID, as: UInt64.self)),
            low: UInt64(bigEndian: record.loadUnaligned(fromByteOffset: Offsets.traceID + 8, as: UInt64.self)))
    }
}

/// Resources and scopes decoded by `RecordCodec.decode(_:sharing:)`, by the bytes that end their records. Holds
/// at most `maxEntries` of them, so records with a resource each cost no more than decoding without it.
struct SharedResources {
    static let maxEntries = 4096
    /// The records' longer strings, each once.
    var strings = SharedStrings()
    private var index = ByteKeyTable()
    private var resources: [ColumnBlock.Resource] = []
    /// The entry holding the resource and scope of the record decoded last, or -1 when none holds them: records
    /// with the same entry end in the same bytes, so the column encoder encodes their resource once per block.
    private(set) var lastEntry = -1

    /// Sets `event`'s resource and scope from the record that ended in `tail` before, if any.
    mutating func take(_ tail: UnsafeRawBufferPointer, into event: inout AuditEvent) -> Bool {
        guard let i = index.value(tail) else {
            lastEntry = -1
            return false
        }
        resources[Int(i)].apply(to: &event)
        lastEntry = Int(i)
        return true
    }

    mutating func keep(_ tail: UnsafeRawBufferPointer, from event: AuditEvent) {
        guard resources.count < Self.maxEntries else { return }
        lastEntry = resources.count
        index.insert(tail, UInt64(resources.count))
        resources.append(ColumnBlock.Resource(of: event))
    }
}

extension ColumnBlock.Resource {
    /// The resource and scope of `event`.
    init(of event: borrowing AuditEvent) {
        self.init(
            attributes: event.resourceAttributes, dropped: event.resourceDroppedAttributesCount,
            schemaURL: event.resourceSchemaURL, scope: event.scope, scopeSchemaURL: event.scopeSchemaURL)
    }

    /// Gives `event` this resource and scope.
    func apply(to event: inout AuditEvent) {
        event.resourceAttributes = attributes
        event.resourceDroppedAttributesCount = dropped
        event.resourceSchemaURL = schemaURL
        event.scope = scope
        event.scopeSchemaURL = scopeSchemaURL
    }
}
