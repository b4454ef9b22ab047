// OTLP protobuf bytes -> AuditEvent in one walk over the wire format, without swift-protobuf message trees: the
// receivers' hot path (OTLP/HTTP protobuf bodies, OTLP/gRPC messages). The result is exactly
// `OTLPMapping.events(from: Request(serializedBytes:))`: the same events, the same rejected items and reasons,
// and the same requests refused. So it follows the wire rules of swift-protobuf's binary decoder, which are
// protobuf's: a known field with another wire type is an unknown field and skipped; a repeated singular field
// merges (the last scalar wins, sub-messages merge, a oneof's message merges only into the same case); strings
// must be UTF-8; a varint has at most 10 bytes, a tag at most 5 (field numbers below 2^29); wire types 6 and 7,
// field 0 and a stray end-group are malformed; lengths must fit in what is left and below 2^31 - 1; messages and
// unknown groups nest at most 100 deep, the request itself counting as one.
// Field numbers are those of the committed opentelemetry-proto files in Sources/Collector/OTLPProto/protos.
import LogFormat

/// Why a protobuf request could not be decoded, and where.
public struct OTLPWireError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// Input ended inside a field (a length, fixed-width value or group runs past the end).
        case truncated
        /// Bytes that are not protobuf: a bad tag, an over-long varint, a stray end-group.
        case malformed
        /// A string field that is not UTF-8.
        case invalidUTF8
        /// Messages nested deeper than the limit.
        case depthLimit
        /// More spans or log records than the caller's limit (counted before any is decoded).
        case tooManyItems
        /// More attributes, array and list values, span events and links than the caller's limit (counted as they
        /// are decoded, and decoding stops at the first one over).
        case tooManyValues
    }

    /// A request over one of the caller's limits on what it may hold: well formed, but too large.
    public var isOverRequestLimit: Bool { code == .tooManyItems || code == .tooManyValues }

    public var code: Code
    /// Offset in the request of the field where decoding stopped.
    public var offset: Int
    public var message: String

    public var description: String { "\(message) at byte \(offset)" }
}

public enum OTLPWireDecoder {
    /// How deep messages (and unknown groups) may nest, the request counting as one: swift-protobuf's default.
    public static let depthLimit = 100

    /// At most this many events are reserved from the count of a request's items; a larger request grows its
    /// array as it decodes.
    static let reservedEventsLimit = 16_384

    /// An `ExportTraceServiceRequest`, decoded and mapped. A request of more than `maxItems` spans is refused
    /// (`.tooManyItems`) before any is decoded; one of more than `maxValues` attributes, array and list values,
    /// span events and links (`.tooManyValues`) when the next one is met.
    public static func traces(protobuf bytes: [UInt8], maxItems: Int = .max, maxValues: Int = .max)
        throws(OTLPWireError) -> OTLPMapping.Imported
    {
        try decode(bytes, maxItems, maxValues) { (reader, out) throws(OTLPWireError) in
            try reader.traceRequest(into: &out)
        }
    }

    /// An `ExportLogsServiceRequest`, decoded and mapped; `maxItems` and `maxValues` as for traces.
    public static func logs(protobuf bytes: [UInt8], maxItems: Int = .max, maxValues: Int = .max)
        throws(OTLPWireError) -> OTLPMapping.Imported
    {
        try decode(bytes, maxItems, maxValues) { (reader, out) throws(OTLPWireError) in
            try reader.logsRequest(into: &out)
        }
    }

    private static func decode(
        _ bytes: [UInt8], _ maxItems: Int, _ maxValues: Int,
        _ body: (inout WireReader, inout OTLPMapping.Imported) throws(OTLPWireError) -> Void
    ) throws(OTLPWireError) -> OTLPMapping.Imported {
        var out = OTLPMapping.Imported()
        let keys = KeyTable()
        // On the stack, reached through a pointer: no allocation, and no run-time exclusivity check per value (as a
        // class's stored property would have).
        var values = ValueBudget(limit: maxValues)
        let failure: OTLPWireError? = withUnsafeMutablePointer(to: &values) { values in
            bytes.withUnsafeBytes { raw in
                var reader = WireReader(raw, budget: depthLimit - 1, keys: keys, values: values)
                // An item can take two bytes (an empty log record is valid) and become an event of several hundred:
                // a limit on the bytes alone let one small gzip body grow into gigabytes of events.
                var counter = reader
                let items = counter.itemCount()
                guard items <= maxItems else {
                    return OTLPWireError(
                        code: .tooManyItems, offset: 0,
                        message: "the request holds \(items) items, more than the limit of \(maxItems) per request")
                }
                // Sized once: grown by doubling, the array of a post of 500 spans was reallocated nine times, each
                // time moving its events (several hundred bytes each). Capped: the count includes refused items.
                out.events.reserveCapacity(min(items, OTLPWireDecoder.reservedEventsLimit))
                do throws(OTLPWireError) {
                    try body(&reader, &out)
                    return nil
                } catch {
                    return error
                }
            }
        }
        if let failure { throw failure }
        withExtendedLifetime(keys) {}
        return out
    }
}

/// The attribute keys of one request, each decoded once: SDKs repeat the same keys on every span, and a key
/// longer than 15 bytes (most semantic-convention keys) is a heap String, so without this every attribute of
/// every span cost an allocation and a UTF-8 validation for its key. A hit shares the first String's storage.
private final class KeyTable {
    static let slots = 256
    /// The key and its bytes, by a hash of the bytes (a collision replaces the entry: it is only a cache).
    var strings = [String?](repeating: nil, count: KeyTable.slots)
    var bytes = [[UInt8]](repeating: [], count: KeyTable.slots)

    /// The key for these bytes, already validated, or nil when not seen (or not worth keeping).
    @inline(__always)
    func lookUp(_ b: UnsafeBufferPointer<UInt8>) -> (slot: Int, key: String?) {
        var h: UInt32 = 0x811c_9dc5
        for c in b { h = (h ^ UInt32(c)) &* 0x0100_0193 }
        let slot = Int(h & UInt32(Self.slots - 1))
        guard let s = strings[slot] else { return (slot, nil) }
        let same = bytes[slot].withUnsafeBufferPointer { stored in
            stored.count == b.count && stored.elementsEqual(b)
        }
        return (slot, same ? s : nil)
    }

    func store(_ key: String, _ b: UnsafeBufferPointer<UInt8>, at slot: Int) {
        strings[slot] = key
        bytes[slot] = Array(b)
    }
}

/// How many more attributes, array and list values, span events and links a request may hold. Each is two bytes
/// of protobuf at least and tens of bytes once decoded (a 60 MB span of empty attributes took 1.4 GB), so the
/// body limit alone does not bound a request's memory.
private struct ValueBudget {
    let limit: Int
    var left: Int
    init(limit: Int) {
        self.limit = limit
        left = limit
    }
}

/// Protobuf wire types.
private enum Wire {
    static let varint: UInt8 = 0
    static let fixed64: UInt8 = 1
    static let lengthDelimited: UInt8 = 2
    static let startGroup: UInt8 = 3
    static let endGroup: UInt8 = 4
    static let fixed32: UInt8 = 5
}

/// A cursor over one message's bytes (`position..<end` of the request), with the nesting still allowed below it.
private struct WireReader {
    let base: UnsafeRawBufferPointer
    var position: Int
    let end: Int
    /// How many more messages may nest inside this one.
    let budget: Int
    /// The request's key table; owned by `OTLPWireDecoder.decode`, which outlives every reader.
    unowned(unsafe) let keys: KeyTable
    /// The request's value budget, on `OTLPWireDecoder.decode`'s stack for as long as any reader.
    let values: UnsafeMutablePointer<ValueBudget>
    /// The current field: its number, wire type and where its tag began.
    var field = 0
    var wire: UInt8 = 0
    var fieldStart = 0

    init(_ base: UnsafeRawBufferPointer, budget: Int, keys: KeyTable, values: UnsafeMutablePointer<ValueBudget>) {
        self.base = base
        self.position = 0
        self.end = base.count
        self.budget = budget
        self.keys = keys
        self.values = values
    }

    private init(_ parent: WireReader, _ range: Range<Int>) {
        base = parent.base
        keys = parent.keys
        values = parent.values
        position = range.lowerBound
        end = range.upperBound
        budget = parent.budget - 1
        fieldStart = range.lowerBound
    }

    func error(_ code: OTLPWireError.Code, _ message: String) -> OTLPWireError {
        OTLPWireError(code: code, offset: fieldStart, message: message)
    }

    @inline(__always) func byte(_ i: Int) -> UInt8 { base[i] }

    /// Takes one attribute, array or list value, span event or link from the request's budget.
    @inline(__always) func countValue() throws(OTLPWireError) {
        values.pointee.left -= 1
        guard values.pointee.left >= 0 else {
            throw error(.tooManyValues, ValueCount.overLimit(values.pointee.limit))
        }
    }

    // MARK: Primitives

    /// The next field's tag, or false at the end of the message. A tag is at most 5 bytes, as in swift-protobuf.
    mutating func next() throws(OTLPWireError) -> Bool {
        guard position < end else { return false }
        fieldStart = position
        let c0 = byte(position)
        wire = c0 & 7
        guard wire <= 5 else { throw error(.malformed, "invalid wire type \(wire)") }
        var number = Int(c0 & 0x7f) >> 3
        var length = 1
        if c0 & 0x80 != 0 {
            var shift = 4
            while true {
                guard position + length < end else { throw error(.malformed, "truncated field tag") }
                let c = byte(position + length)
                if length == 4 && c > 15 { throw error(.malformed, "field tag longer than 5 bytes") }
                number |= Int(c & 0x7f) << shift
                length += 1
                if c & 0x80 == 0 { break }
                shift += 7
            }
        }
        position += length
        field = number
        guard number != 0 else { throw error(.malformed, "field number 0") }
        if wire == Wire.endGroup { throw error(.malformed, "end of a group that was not started") }
        return true
    }

    mutating func varint() throws(OTLPWireError) -> UInt64 {
        guard position < end else { throw error(.truncated, "truncated varint") }
        var c = byte(position)
        position += 1
        if c & 0x80 == 0 { return UInt64(c) }
        var value = UInt64(c & 0x7f)
        var shift: UInt64 = 7
        while true {
            guard position < end else { throw error(.malformed, "truncated varint") }
            guard shift <= 63 else { throw error(.malformed, "varint longer than 10 bytes") }
            c = byte(position)
            position += 1
            value |= UInt64(c & 0x7f) &<< shift
            if c & 0x80 == 0 { return value }
            shift &+= 7
        }
    }

    mutating func fixed32() throws(OTLPWireError) -> UInt32 {
        guard end - position >= 4 else { throw error(.truncated, "truncated fixed32") }
        defer { position += 4 }
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    mutating func fixed64() throws(OTLPWireError) -> UInt64 {
        guard end - position >= 8 else { throw error(.truncated, "truncated fixed64") }
        defer { position += 8 }
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    /// The body of a length-delimited field.
    mutating func body() throws(OTLPWireError) -> Range<Int> {
        let length = try varint()
        guard length < 0x7fff_ffff else { throw error(.malformed, "length \(length) over 2 GiB") }
        guard length <= UInt64(end - position) else {
            throw error(.truncated, "length \(length) runs past the end (\(end - position) bytes left)")
        }
        let r = position..<(position + Int(length))
        position = r.upperBound
        return r
    }

    mutating func string() throws(OTLPWireError) -> String {
        let r = try body()
        if r.isEmpty { return "" }
        let bytes = UnsafeBufferPointer(rebasing: base.assumingMemoryBound(to: UInt8.self)[r])
        guard let s = UTF8Text.string(validating: bytes) else {
            throw error(.invalidUTF8, "string field \(field) is not UTF-8")
        }
        return s
    }

    /// An attribute key: as `string()`, through the request's key table when longer than a small string.
    mutating func key() throws(OTLPWireError) -> String {
        let r = try body()
        guard r.count > 15, r.count <= 128 else { return try text(r) }
        let bytes = UnsafeBufferPointer(rebasing: base.assumingMemoryBound(to: UInt8.self)[r])
        let (slot, found) = keys.lookUp(bytes)
        if let found { return found }
        let s = try text(r)
        keys.store(s, bytes, at: slot)
        return s
    }

    func text(_ r: Range<Int>) throws(OTLPWireError) -> String {
        if r.isEmpty { return "" }
        let bytes = UnsafeBufferPointer(rebasing: base.assumingMemoryBound(to: UInt8.self)[r])
        guard let s = UTF8Text.string(validating: bytes) else {
            throw error(.invalidUTF8, "string field \(field) is not UTF-8")
        }
        return s
    }

    func bytes(_ r: Range<Int>) -> [UInt8] { Array(base[r]) }

    /// A reader over a sub-message's body, one level deeper.
    mutating func message() throws(OTLPWireError) -> WireReader {
        let r = try body()
        guard budget > 0 else { throw error(.depthLimit, "messages nested deeper than \(OTLPWireDecoder.depthLimit)") }
        return WireReader(self, r)
    }

    /// Skips the current field (unknown, or known with another wire type), checking it is well formed.
    mutating func skip() throws(OTLPWireError) {
        try skip(wire: wire, field: field, budget: budget)
    }

    private mutating func skip(wire: UInt8, field: Int, budget: Int) throws(OTLPWireError) {
        switch wire {
        case Wire.varint: _ = try varint()
        case Wire.fixed64: _ = try fixed64()
        case Wire.fixed32: _ = try fixed32()
        case Wire.lengthDelimited: _ = try body()
        case Wire.startGroup:
            // A group counts as a nested message; its tags are read as full varints, as swift-protobuf does.
            guard budget > 0 else {
                throw error(.depthLimit, "groups nested deeper than \(OTLPWireDecoder.depthLimit)")
            }
            while true {
                guard position < end else { throw error(.truncated, "group \(field) is not closed") }
                let t = try varint()
                guard t < UInt64(UInt32.max), t & ~7 != 0, t & 7 <= 5 else {
                    throw error(.malformed, "invalid tag \(t) in group \(field)")
                }
                let innerWire = UInt8(t & 7)
                let innerField = Int(t >> 3)
                if innerWire == Wire.endGroup {
                    guard innerField == field else {
                        throw error(.malformed, "group \(field) closed by end of group \(innerField)")
                    }
                    return
                }
                try skip(wire: innerWire, field: innerField, budget: budget - 1)
            }
        default:
            throw error(.truncated, "end of a group that was not started")
        }
    }

    // MARK: OTLP messages

    mutating func traceRequest(into out: inout OTLPMapping.Imported) throws(OTLPWireError) {
        var r = 0
        while try next() {
            if field == 1 && wire == Wire.lengthDelimited {
                var m = try message()
                try m.resourceItems(index: r, into: &out, item: .span)
                r += 1
            } else {
                try skip()
            }
        }
    }

    mutating func logsRequest(into out: inout OTLPMapping.Imported) throws(OTLPWireError) {
        var r = 0
        while try next() {
            if field == 1 && wire == Wire.lengthDelimited {
                var m = try message()
                try m.resourceItems(index: r, into: &out, item: .log)
                r += 1
            } else {
                try skip()
            }
        }
    }

    enum Item { case span, log }

    /// How many spans or log records the request holds (request field 1, then field 2 of each resource and of
    /// each scope), from the framing alone. Damage ends the count early: the decoding pass says what is wrong.
    mutating func itemCount() -> Int {
        var n = 0
        do throws(OTLPWireError) {
            while try next() {
                guard field == 1, wire == Wire.lengthDelimited else {
                    try skip()
                    continue
                }
                var resource = try message()
                while try resource.next() {
                    guard resource.field == 2, resource.wire == Wire.lengthDelimited else {
                        try resource.skip()
                        continue
                    }
                    var scope = try resource.message()
                    while try scope.next() {
                        if scope.field == 2 && scope.wire == Wire.lengthDelimited { n += 1 }
                        try scope.skip()
                    }
                }
            }
        } catch {}
        return n
    }

    /// Where one scope's items landed in `out.events`, to stamp them once the scope is known.
    struct ScopeRun {
        var scope: InstrumentationScope
        var schemaURL: String
        var events: Range<Int>
    }

    /// `ResourceSpans` or `ResourceLogs`: resource 1, scope items 2, schema_url 3. The resource and the scopes may
    /// come after the items (or twice, merging), so the events are stamped when the message ends.
    mutating func resourceItems(
        index r: Int, into out: inout OTLPMapping.Imported, item: Item
    ) throws(OTLPWireError) {
        var attributes: [Attribute] = []
        var dropped: UInt32 = 0
        var schemaURL = ""
        var runs: [ScopeRun] = []
        var s = 0
        while try next() {
            switch (field, wire) {
            case (1, Wire.lengthDelimited):
                var m = try message()
                try m.resource(&attributes, &dropped)
            case (2, Wire.lengthDelimited):
                var m = try message()
                let first = out.events.count
                var run = ScopeRun(scope: InstrumentationScope(), schemaURL: "", events: first..<first)
                try m.scopeItems(resource: r, scope: s, into: &out, item: item, run: &run)
                run.events = first..<out.events.count
                runs.append(run)
                s += 1
            case (3, Wire.lengthDelimited): schemaURL = try string()
            default: try skip()
            }
        }
        let service = attributes.value(forKey: "service.name")?.stringValue ?? "unknown_service"
        for run in runs {
            for i in run.events {
                // An access event from a log record may name its service itself (AccessLogRecord).
                if out.events[i].service.isEmpty { out.events[i].service = service }
                out.events[i].resourceAttributes = attributes
                out.events[i].resourceDroppedAttributesCount = dropped
                out.events[i].resourceSchemaURL = schemaURL
                out.events[i].scope = run.scope
                out.events[i].scopeSchemaURL = run.schemaURL
            }
        }
    }

    /// `Resource`: attributes 1, dropped_attributes_count 2.
    mutating func resource(_ attributes: inout [Attribute], _ dropped: inout UInt32) throws(OTLPWireError) {
        while try next() {
            switch (field, wire) {
            case (1, Wire.lengthDelimited):
                if attributes.isEmpty { attributes.reserveCapacity(16) }
                attributes.append(try keyValue())
            case (2, Wire.varint): dropped = UInt32(truncatingIfNeeded: try varint())
            default: try skip()
            }
        }
    }

    /// `ScopeSpans` or `ScopeLogs`: scope 1, items 2, schema_url 3.
    mutating func scopeItems(
        resource r: Int, scope s: Int, into out: inout OTLPMapping.Imported, item: Item, run: inout ScopeRun
    ) throws(OTLPWireError) {
        var i = 0
        while try next() {
            switch (field, wire) {
            case (1, Wire.lengthDelimited):
                var m = try message()
                try m.scope(&run.scope)
            case (2, Wire.lengthDelimited):
                var m = try message()
                // Appended where they are made: an event passed back in a `Result` was copied on its way.
                let invalid = item == .span ? try m.span(into: &out.events) : try m.logRecord(into: &out.events)
                if let invalid {
                    out.rejected.append(RejectedItem(resource: r, scope: s, item: i, reason: invalid.reason))
                }
                i += 1
            case (3, Wire.lengthDelimited): run.schemaURL = try string()
            default: try skip()
            }
        }
    }

    /// `InstrumentationScope`: name 1, version 2, attributes 3, dropped_attributes_count 4.
    mutating func scope(_ scope: inout InstrumentationScope) throws(OTLPWireError) {
        while try next() {
            switch (field, wire) {
            case (1, Wire.lengthDelimited): scope.name = try string()
            case (2, Wire.lengthDelimited): scope.version = try string()
            case (3, Wire.lengthDelimited): scope.attributes.append(try keyValue())
            case (4, Wire.varint): scope.droppedAttributesCount = UInt32(truncatingIfNeeded: try varint())
            default: try skip()
            }
        }
    }

    /// A link as read, validated after the span's own ids as the mapping does.
    struct RawLink {
        var traceID: Range<Int>? = nil
        var spanID: Range<Int>? = nil
        var traceState = ""
        var attributes: [Attribute] = []
        var dropped: UInt32 = 0
        var flags: UInt32 = 0
    }

    /// `Span` (field numbers in trace.proto), appended to `events`. Wire damage throws; a well-formed span that
    /// breaks OTLP's rules (ids, kind, status) is not appended, and its reason is returned.
    mutating func span(into events: inout [AuditEvent]) throws(OTLPWireError) -> OTLPMapping.Invalid? {
        var traceID: Range<Int>? = nil
        var spanID: Range<Int>? = nil
        var parentID: Range<Int>? = nil
        var traceState = ""
        var name = ""
        var kind = 0
        var start: UInt64 = 0
        var end: UInt64 = 0
        var attributes: [Attribute] = []
        var dropped: UInt32 = 0
        var spanEvents: [SpanEvent] = []
        var droppedEvents: UInt32 = 0
        var links: [RawLink] = []
        var droppedLinks: UInt32 = 0
        var statusMessage = ""
        var statusCode = 0
        var flags: UInt32 = 0
        while try next() {
            switch (field, wire) {
            case (1, Wire.lengthDelimited): traceID = try body()
            case (2, Wire.lengthDelimited): spanID = try body()
            case (3, Wire.lengthDelimited): traceState = try string()
            case (4, Wire.lengthDelimited): parentID = try body()
            case (5, Wire.lengthDelimited): name = try string()
            case (6, Wire.varint): kind = Self.enumValue(try varint())
            case (7, Wire.fixed64): start = try fixed64()
            case (8, Wire.fixed64): end = try fixed64()
            case (9, Wire.lengthDelimited):
                // One allocation for a span's usual attributes instead of growing 1, 2, 4, 8, 16.
                if attributes.isEmpty { attributes.reserveCapacity(16) }
                attributes.append(try keyValue())
            case (10, Wire.varint): dropped = UInt32(truncatingIfNeeded: try varint())
            case (11, Wire.lengthDelimited):
                try countValue()
                var m = try message()
                spanEvents.append(try m.spanEvent())
            case (12, Wire.varint): droppedEvents = UInt32(truncatingIfNeeded: try varint())
            case (13, Wire.lengthDelimited):
                try countValue()
                var m = try message()
                links.append(try m.link())
            case (14, Wire.varint): droppedLinks = UInt32(truncatingIfNeeded: try varint())
            case (15, Wire.lengthDelimited):
                var m = try message()
                try m.status(&statusMessage, &statusCode)
            case (16, Wire.fixed32): flags = try fixed32()
            default: try skip()
            }
        }
        do throws(OTLPMapping.Invalid) {
            let trace = try id16(traceID, "trace_id", required: true)
            let span = try id8(spanID, "span_id", required: true)
            var parent: SpanID? = nil
            if let parentID, !parentID.isEmpty { parent = try id8(parentID, "parent_span_id", required: true) }
            guard (0...5).contains(kind), let spanKind = SpanKind(rawValue: UInt8(kind)) else {
                throw OTLPMapping.Invalid(reason: "unknown span kind \(kind)")
            }
            guard (0...2).contains(statusCode), let status = StatusCode(rawValue: UInt8(statusCode)) else {
                throw OTLPMapping.Invalid(reason: "unknown status code \(statusCode)")
            }
            var spanLinks: [SpanLink] = []
            spanLinks.reserveCapacity(links.count)
            for l in links {
                spanLinks.append(
                    SpanLink(
                        traceID: try id16(l.traceID, "link trace_id", required: true),
                        spanID: try id8(l.spanID, "link span_id", required: true), traceState: l.traceState,
                        attributes: l.attributes, droppedAttributesCount: l.dropped, flags: l.flags))
            }
            events.append(
                AuditEvent(
                    kind: .span, startTimeUnixNano: start, endTimeUnixNano: end, traceID: trace, spanID: span,
                    parentSpanID: parent, traceState: traceState, flags: flags, spanKind: spanKind, name: name,
                    statusCode: status, statusMessage: statusMessage, attributes: attributes,
                    droppedAttributesCount: dropped, events: spanEvents, droppedEventsCount: droppedEvents,
                    links: spanLinks, droppedLinksCount: droppedLinks))
            return nil
        } catch {
            return error
        }
    }

    /// An open enum's value as swift-protobuf keeps it: the varint's low 32 bits, signed.
    static func enumValue(_ v: UInt64) -> Int { Int(Int32(truncatingIfNeeded: v)) }

    /// `Span.Event`: time_unix_nano 1, name 2, attributes 3, dropped_attributes_count 4.
    mutating func spanEvent() throws(OTLPWireError) -> SpanEvent {
        var e = SpanEvent(timeUnixNano: 0, name: "")
        while try next() {
            switch (field, wire) {
            case (1, Wire.fixed64): e.timeUnixNano = try fixed64()
            case (2, Wire.lengthDelimited): e.name = try string()
            case (3, Wire.lengthDelimited): e.attributes.append(try keyValue())
            case (4, Wire.varint): e.droppedAttributesCount = UInt32(truncatingIfNeeded: try varint())
            default: try skip()
            }
        }
        return e
    }

    /// `Span.Link`: trace_id 1, span_id 2, trace_state 3, attributes 4, dropped_attributes_count 5, flags 6.
    mutating func link() throws(OTLPWireError) -> RawLink {
        var l = RawLink()
        while try next() {
            switch (field, wire) {
            case (1, Wire.lengthDelimited): l.traceID = try body()
            case (2, Wire.lengthDelimited): l.spanID = try body()
            case (3, Wire.lengthDelimited): l.traceState = try string()
            case (4, Wire.lengthDelimited): l.attributes.append(try keyValue())
            case (5, Wire.varint): l.dropped = UInt32(truncatingIfNeeded: try varint())
            case (6, Wire.fixed32): l.flags = try fixed32()
            default: try skip()
            }
        }
        return l
    }

    /// `Status`: message 2, code 3 (field 1 is reserved).
    mutating func status(_ message: inout String, _ code: inout Int) throws(OTLPWireError) {
        while try next() {
            switch (field, wire) {
            case (2, Wire.lengthDelimited): message = try string()
            case (3, Wire.varint): code = Self.enumValue(try varint())
            default: try skip()
            }
        }
    }

    /// `LogRecord` (field numbers in logs.proto), appended to `events` as `span(into:)` does.
    mutating func logRecord(into events: inout [AuditEvent]) throws(OTLPWireError) -> OTLPMapping.Invalid? {
        var time: UInt64 = 0
        var observed: UInt64 = 0
        var severity = 0
        var severityText = ""
        var body: AttributeValue? = nil
        var attributes: [Attribute] = []
        var dropped: UInt32 = 0
        var flags: UInt32 = 0
        var traceID: Range<Int>? = nil
        var spanID: Range<Int>? = nil
        var eventName = ""
        while try next() {
            switch (field, wire) {
            case (1, Wire.fixed64): time = try fixed64()
            case (11, Wire.fixed64): observed = try fixed64()
            case (2, Wire.varint): severity = Self.enumValue(try varint())
            case (3, Wire.lengthDelimited): severityText = try string()
            case (5, Wire.lengthDelimited):
                var m = try message()
                var value = body ?? .empty
                try m.anyValue(&value)
                body = value
            case (6, Wire.lengthDelimited): attributes.append(try keyValue())
            case (7, Wire.varint): dropped = UInt32(truncatingIfNeeded: try varint())
            case (8, Wire.fixed32): flags = try fixed32()
            case (9, Wire.lengthDelimited): traceID = try self.body()
            case (10, Wire.lengthDelimited): spanID = try self.body()
            case (12, Wire.lengthDelimited): eventName = try string()
            default: try skip()
            }
        }
        do throws(OTLPMapping.Invalid) {
            guard (0...24).contains(severity) else {
                throw OTLPMapping.Invalid(reason: "severity_number \(severity) is outside 0-24")
            }
            // On log records the ids are optional; when present they must have the right length.
            let trace = try id16(traceID, "trace_id", required: false)
            let span = try id8(spanID, "span_id", required: false)
            var e = AuditEvent(
                kind: .log, startTimeUnixNano: time, observedTimeUnixNano: observed, traceID: trace, spanID: span,
                flags: flags, severityNumber: UInt8(severity), severityText: severityText, body: body,
                eventName: eventName, attributes: attributes, droppedAttributesCount: dropped)
            // An access event exported as a log record (`auditq --format otlp`) comes back as the access event.
            try OTLPMapping.restoreAccessEvent(&e)
            events.append(consume e)
            return nil
        } catch {
            return error
        }
    }

    /// A `KeyValue` field's message: key 1, value 2 (absent or empty: `.empty`).
    mutating func keyValue() throws(OTLPWireError) -> Attribute {
        try countValue()
        var m = try message()
        var key = ""
        var value = AttributeValue.empty
        while try m.next() {
            switch (m.field, m.wire) {
            case (1, Wire.lengthDelimited): key = try m.key()
            case (2, Wire.lengthDelimited):
                var v = try m.message()
                try v.anyValue(&value)
            default: try m.skip()
            }
        }
        return Attribute(key, value)
    }

    /// `AnyValue`, merged into `value` as a repeated field merges: a scalar replaces it, an array or key-value
    /// list extends one of the same kind and replaces anything else.
    mutating func anyValue(_ value: inout AttributeValue) throws(OTLPWireError) {
        while try next() {
            switch (field, wire) {
            case (1, Wire.lengthDelimited): value = .string(try string())
            case (2, Wire.varint): value = .bool(try varint() != 0)
            case (3, Wire.varint): value = .int(Int64(bitPattern: try varint()))
            case (4, Wire.fixed64): value = .double(Double(bitPattern: try fixed64()))
            case (5, Wire.lengthDelimited):
                var m = try message()
                var values: [AttributeValue] = []
                if case .array(let existing) = value { values = existing }
                while try m.next() {
                    if m.field == 1 && m.wire == Wire.lengthDelimited {
                        try m.countValue()
                        var element = try m.message()
                        var v = AttributeValue.empty
                        try element.anyValue(&v)
                        values.append(v)
                    } else {
                        try m.skip()
                    }
                }
                value = .array(values)
            case (6, Wire.lengthDelimited):
                var m = try message()
                var list: [Attribute] = []
                if case .keyValueList(let existing) = value { list = existing }
                while try m.next() {
                    if m.field == 1 && m.wire == Wire.lengthDelimited {
                        list.append(try m.keyValue())
                    } else {
                        try m.skip()
                    }
                }
                value = .keyValueList(list)
            case (7, Wire.lengthDelimited): value = .bytes(bytes(try body()))
            default: try skip()
            }
        }
    }

    // MARK: Ids, with the mapping's rules and reasons

    func id16(_ r: Range<Int>?, _ what: String, required: Bool) throws(OTLPMapping.Invalid) -> TraceID {
        let count = r?.count ?? 0
        if count == 0 && !required { return .zero }
        guard let r, count == 16, let id = TraceID(raw: UnsafeRawBufferPointer(rebasing: base[r])) else {
            throw OTLPMapping.Invalid(reason: "\(what) must be 16 bytes, got \(count)")
        }
        guard !id.isZero || !required else { throw OTLPMapping.Invalid(reason: "\(what) is all zeros") }
        return id
    }

    func id8(_ r: Range<Int>?, _ what: String, required: Bool) throws(OTLPMapping.Invalid) -> SpanID {
        let count = r?.count ?? 0
        if count == 0 && !required { return .zero }
        guard let r, count == 8, let id = SpanID(raw: UnsafeRawBufferPointer(rebasing: base[r])) else {
            throw OTLPMapping.Invalid(reason: "\(what) must be 8 bytes, got \(count)")
        }
        guard !id.isZero || !required else { throw OTLPMapping.Invalid(reason: "\(what) is all zeros") }
        return id
    }
}
