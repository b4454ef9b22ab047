// The one record type the store holds: spans, access events and log records.
//
// Lossless for everything OTLP carries (ids, times, flags, trace state, attributes of every value type,
// events, links, resource and scope, dropped counts, status) plus the first-class audit fields the design
// names: user identity, workload identity, service, source and HTTP facts. The canonical binary form is
// in `RecordCodec.swift`; the format spec is `docs/format/segment.md`.

/// What produced an event. Raw values are written to disk: never renumber.
public enum EventKind: UInt8, Sendable, Hashable, CaseIterable {
    case span = 1
    case access = 2
    case log = 3
}

/// OTLP span kind (0 unspecified … 5 consumer). Raw values match OTLP and are written to disk.
public enum SpanKind: UInt8, Sendable, Hashable, CaseIterable {
    case unspecified = 0
    case `internal` = 1
    case server = 2
    case client = 3
    case producer = 4
    case consumer = 5
}

/// Which hop reported an event. Raw values are written to disk: never renumber.
public enum EventSource: UInt8, Sendable, Hashable, CaseIterable {
    case unknown = 0
    case edge = 1
    case sidecar = 2
    case app = 3
}

/// OTLP status code. Raw values match OTLP and are written to disk.
public enum StatusCode: UInt8, Sendable, Hashable, CaseIterable {
    case unset = 0
    case ok = 1
    case error = 2
}

/// Where a user identity was taken from, in the collector's order of trust. Written to disk: never renumber.
public enum IdentityOrigin: UInt8, Sendable, Hashable, CaseIterable {
    case unknown = 0
    /// A configured attribute key such as `user.id` or `enduser.id`.
    case attribute = 1
    /// A field the edge set after it verified the caller (`remote_user`, a header from `auth_request`).
    case edge = 2
    /// The claims of a bearer JWT whose signature the collector verified.
    case verifiedToken = 3
    /// The claims of a bearer JWT that was only decoded, not verified.
    case decodedToken = 4
    /// A client certificate (subject or SPIFFE URI SAN).
    case certificate = 5
    /// The claims of a bearer JWT whose signature verified but whose `exp` had passed (beyond the leeway) when
    /// the collector received it.
    case expiredToken = 6
    /// The claims of a bearer JWT whose signature verified but whose `nbf` was still ahead (beyond the leeway).
    case notYetValidToken = 7
    /// The claims of a bearer JWT whose signature verified but whose `aud` names none of the configured
    /// audiences.
    case wrongAudienceToken = 8
}

/// The person (or client) on whose behalf a request was made.
public struct UserIdentity: Sendable, Hashable {
    public var subject: String
    public var email: String?
    public var groups: [String]
    public var issuer: String?
    public var origin: IdentityOrigin
    /// SHA-256 of the bearer token the claims came from; the token itself is never stored.
    public var tokenFingerprint: [UInt8]?

    public init(
        subject: String, email: String? = nil, groups: [String] = [], issuer: String? = nil,
        origin: IdentityOrigin = .unknown, tokenFingerprint: [UInt8]? = nil
    ) {
        self.subject = subject
        self.email = email
        self.groups = groups
        self.issuer = issuer
        self.origin = origin
        self.tokenFingerprint = tokenFingerprint
    }
}

/// The HTTP facts of a request, whichever hop saw it.
public struct HTTPFacts: Sendable, Hashable {
    public var method: String?
    /// The request target as sent (path and query), after redaction.
    public var target: String?
    /// The route template where the hop knows it (`/users/{id}`).
    public var route: String?
    /// Response status; 0 when unknown.
    public var statusCode: UInt16
    public var clientAddress: String?

    public init(
        method: String? = nil, target: String? = nil, route: String? = nil, statusCode: UInt16 = 0,
        clientAddress: String? = nil
    ) {
        self.method = method
        self.target = target
        self.route = route
        self.statusCode = statusCode
        self.clientAddress = clientAddress
    }
}

/// OTLP `InstrumentationScope`.
public struct InstrumentationScope: Sendable, Hashable {
    public var name: String
    public var version: String
    public var attributes: [Attribute]
    public var droppedAttributesCount: UInt32

    public init(
        name: String = "", version: String = "", attributes: [Attribute] = [], droppedAttributesCount: UInt32 = 0
    ) {
        self.name = name
        self.version = version
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
    }
}

/// OTLP `Span.Event`.
public struct SpanEvent: Sendable, Hashable {
    public var timeUnixNano: UInt64
    public var name: String
    public var attributes: [Attribute]
    public var droppedAttributesCount: UInt32

    public init(timeUnixNano: UInt64, name: String, attributes: [Attribute] = [], droppedAttributesCount: UInt32 = 0) {
        self.timeUnixNano = timeUnixNano
        self.name = name
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
    }
}

/// OTLP `Span.Link`.
public struct SpanLink: Sendable, Hashable {
    public var traceID: TraceID
    public var spanID: SpanID
    public var traceState: String
    public var attributes: [Attribute]
    public var droppedAttributesCount: UInt32
    public var flags: UInt32

    public init(
        traceID: TraceID, spanID: SpanID, traceState: String = "", attributes: [Attribute] = [],
        droppedAttributesCount: UInt32 = 0, flags: UInt32 = 0
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.traceState = traceState
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
        self.flags = flags
    }
}

/// One record of the audit trail.
public struct AuditEvent: Sendable, Hashable {
    public var kind: EventKind
    /// Start of the span or request (for log records: `time_unix_nano`), Unix nanoseconds.
    public var startTimeUnixNano: UInt64
    /// End of the span or request, Unix nanoseconds; equal to the start for log records.
    /// Kept as sent, even when it precedes the start.
    public var endTimeUnixNano: UInt64
    /// Log records: `observed_time_unix_nano`; 0 when absent.
    public var observedTimeUnixNano: UInt64
    /// All-zero when absent (log records may lack one).
    public var traceID: TraceID
    public var spanID: SpanID
    public var parentSpanID: SpanID?
    public var traceState: String
    /// OTLP flags: low 8 bits are the W3C trace flags, 0x100/0x200 the is-remote bits.
    public var flags: UInt32
    public var spanKind: SpanKind
    public var name: String
    /// `service.name` of the reporting process.
    public var service: String
    public var source: EventSource
    public var user: UserIdentity?
    /// Workload identity, e.g. a SPIFFE id.
    public var workload: String?
    public var http: HTTPFacts?
    public var statusCode: StatusCode
    public var statusMessage: String
    /// Log records: OTLP severity number 0–24, severity text, body and event name.
    public var severityNumber: UInt8
    public var severityText: String
    public var body: AttributeValue?
    public var eventName: String
    /// Every other attribute, in the order received; keys may repeat if the sender repeated them.
    public var attributes: [Attribute]
    public var droppedAttributesCount: UInt32
    public var events: [SpanEvent]
    public var droppedEventsCount: UInt32
    public var links: [SpanLink]
    public var droppedLinksCount: UInt32
    public var resourceAttributes: [Attribute]
    public var resourceDroppedAttributesCount: UInt32
    public var resourceSchemaURL: String
    public var scope: InstrumentationScope
    public var scopeSchemaURL: String

    public init(
        kind: EventKind,
        startTimeUnixNano: UInt64,
        endTimeUnixNano: UInt64? = nil,
        observedTimeUnixNano: UInt64 = 0,
        traceID: TraceID = .zero,
        spanID: SpanID = .zero,
        parentSpanID: SpanID? = nil,
        traceState: String = "",
        flags: UInt32 = 0,
        spanKind: SpanKind = .unspecified,
        name: String = "",
        service: String = "",
        source: EventSource = .unknown,
        user: UserIdentity? = nil,
        workload: String? = nil,
        http: HTTPFacts? = nil,
        statusCode: StatusCode = .unset,
        statusMessage: String = "",
        severityNumber: UInt8 = 0,
        severityText: String = "",
        body: AttributeValue? = nil,
        eventName: String = "",
        attributes: [Attribute] = [],
        droppedAttributesCount: UInt32 = 0,
        events: [SpanEvent] = [],
        droppedEventsCount: UInt32 = 0,
        links: [SpanLink] = [],
        droppedLinksCount: UInt32 = 0,
        resourceAttributes: [Attribute] = [],
        resourceDroppedAttributesCount: UInt32 = 0,
        resourceSchemaURL: String = "",
        scope: InstrumentationScope = InstrumentationScope(),
        scopeSchemaURL: String = ""
    ) {
        self.kind = kind
        self.startTimeUnixNano = startTimeUnixNano
        self.endTimeUnixNano = endTimeUnixNano ?? startTimeUnixNano
        self.observedTimeUnixNano = observedTimeUnixNano
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.traceState = traceState
        self.flags = flags
        self.spanKind = spanKind
        self.name = name
        self.service = service
        self.source = source
        self.user = user
        self.workload = workload
        self.http = http
        self.statusCode = statusCode
        self.statusMessage = statusMessage
        self.severityNumber = severityNumber
        self.severityText = severityText
        self.body = body
        self.eventName = eventName
        self.attributes = attributes
        self.droppedAttributesCount = droppedAttributesCount
        self.events = events
        self.droppedEventsCount = droppedEventsCount
        self.links = links
        self.droppedLinksCount = droppedLinksCount
        self.resourceAttributes = resourceAttributes
        self.resourceDroppedAttributesCount = resourceDroppedAttributesCount
        self.resourceSchemaURL = resourceSchemaURL
        self.scope = scope
        self.scopeSchemaURL = scopeSchemaURL
    }

    /// End minus start in nanoseconds; negative when a sender's end precedes its start.
    public var durationNanos: Int64 {
        Int64(bitPattern: endTimeUnixNano &- startTimeUnixNano)
    }

    /// The W3C sampled flag.
    public var isSampled: Bool { flags & 0x01 != 0 }
}
