// Realistic synthetic audit traffic for tests, benchmarks and demos.
//
// One request at a time, the generator produces what the collector would receive for it: the nginx edge's
// access event (the only event that names the user) and the spans of the trace it started, from the Istio
// ingress gateway through each service's sidecar and app to, for some requests, the analytics SQL pool.
// Everything is derived from a seed, so the same configuration always produces the same events.
import LogFormat

/// A deterministic source of realistic edge + mesh + analytics traffic.
///
/// Each call to `nextRequest()` returns the events of one request, edge access event first, then the spans
/// of its trace in start order:
///
/// ```
/// edge access event (edge-nginx, user, HTTP facts)                         kind .access, root
/// └─ ingress gateway span (istio-ingressgateway, client)                    source .sidecar
///    └─ entry service inbound sidecar span (server)                         source .sidecar
///       └─ entry service app span (server)                                  source .app
///          ├─ outbound sidecar span (client) → callee inbound sidecar → callee app span …
///          └─ analytics SQL pool span (client, microsoft.sql_server)        ~30% of requests
/// ```
///
/// - Users are drawn from a Zipf distribution over `userCount` users, so a few heavy users make a large
///   share of requests (`heavyUser`, `lightUser` name one of each for benchmarks).
/// - Request start times follow a day/night curve (busiest 09:00–18:00 UTC); request `k` of a day falls in
///   the `k`-th of `requestsPerDay` equal slices of that curve, so starts are non-decreasing across requests
///   and every configured day gets exactly `requestsPerDay` requests. After `totalRequests` requests the
///   generator simply continues into the following days.
/// - About `deniedFraction` of requests are refused at the edge (401 without a user, 403 with one) and have
///   no spans; about `errorFraction` fail with a 5xx somewhere along the call chain, with an `exception`
///   event on the span where it started and error status on every span above it.
/// - Spans downstream of the edge never carry the user, as in real traffic: the user → trace join is the
///   trace id (which is also nginx's `request_id` and Envoy's `guid:x-request-id`, unless
///   `independentRequestIDs`).
/// - Some leaf services (inventory, pricing, notifications) run without an OpenTelemetry SDK: only their
///   sidecars report them, and, as such apps do not propagate trace context, they are always leaves.
/// - Events look as the collector stores them after normalization: keys it lifts into first-class fields
///   (`http.request.method`, `url.path`, `http.route`, `http.response.status_code`, `client.address`,
///   Envoy's `http.url`/`peer.address`, nginx's `$request_uri`/`$status`/`$remote_addr`/`$http_traceparent`)
///   are not repeated in `attributes`. Rendered by `EventJSON`, an event averages about 1,020 bytes.
/// - Each app span carries its SDK's whole resource (15 attributes: service, namespace, version, instance id,
///   Kubernetes namespace, deployment, pod name and uid, node, container id, host, pid, SDK name, language and
///   version) and its instrumentation scope, as exporters send them; sidecar and edge spans carry what Envoy and
///   nginx send (service and host names).
///
/// The generator is a value: a copy continues the same stream independently.
public struct TrafficGenerator: Sendable {
    /// What to generate. Every field has a realistic default.
    public struct Configuration: Sendable, Hashable {
        /// Seeds every random choice: equal configurations produce equal events.
        public var seed: UInt64
        /// Size of the user population (subjects `u-000000` … ), at least 1 and below 2^31.
        public var userCount: Int
        /// Zipf exponent `s` of user activity: the user of rank `r` is drawn with weight `1 / r^s`.
        public var zipfExponent: Double
        /// Start of the first day, Unix nanoseconds (UTC). Defaults to 2025-03-03T00:00:00Z, a Monday.
        public var startUnixNano: UInt64
        /// Number of days the configured traffic covers.
        public var days: Int
        /// Requests (not events) per day; a request averages `TrafficGenerator.meanEventsPerRequest` events.
        public var requestsPerDay: Int
        /// Number of mesh services (at least 2): the first 12 are named (orders, reporting, catalog,
        /// payments, accounts, inventory, search, billing, shipping, notifications, pricing, ledger), any
        /// further ones are `svc-13`, `svc-14`, … Orders and reporting always take part.
        public var serviceCount: Int
        /// Share of requests refused at the edge with 401 or 403.
        public var deniedFraction: Double
        /// Share of requests that fail with a 5xx somewhere in the mesh or the SQL pool.
        public var errorFraction: Double
        /// Share of requests that end in a query to the analytics SQL pool.
        public var analyticsFraction: Double
        /// nginx's `request_id` (passed on as `x-request-id`) drawn on its own instead of being the trace id, as
        /// at an edge whose request ids are not its trace ids: their bytes are then random, not a repeat.
        public var independentRequestIDs = false

        /// 2025-03-03T00:00:00Z.
        public static let defaultStartUnixNano: UInt64 = 1_740_960_000_000_000_000

        public init(
            seed: UInt64 = 1,
            userCount: Int = 50_000,
            zipfExponent: Double = 1.0,
            startUnixNano: UInt64 = Configuration.defaultStartUnixNano,
            days: Int = 7,
            requestsPerDay: Int = 20_000,
            serviceCount: Int = 8,
            deniedFraction: Double = 0.03,
            errorFraction: Double = 0.02,
            analyticsFraction: Double = 0.30
        ) {
            self.seed = seed
            self.userCount = userCount
            self.zipfExponent = zipfExponent
            self.startUnixNano = startUnixNano
            self.days = days
            self.requestsPerDay = requestsPerDay
            self.serviceCount = serviceCount
            self.deniedFraction = deniedFraction
            self.errorFraction = errorFraction
            self.analyticsFraction = analyticsFraction
        }

        /// A configuration whose `days` hold about `events` events in total.
        public static func sized(events: Int, days: Int = 7, seed: UInt64 = 1) -> Configuration {
            let days = max(1, days)
            let perDay = (Double(max(0, events)) / TrafficGenerator.meanEventsPerRequest / Double(days)).rounded(.up)
            return Configuration(seed: seed, days: days, requestsPerDay: max(1, Int(perDay)))
        }

        /// `requestsPerDay × days`: the requests that fall inside the configured days.
        public var totalRequests: Int { requestsPerDay * days }

        /// The end of the last configured day, Unix nanoseconds (exclusive).
        public var endUnixNano: UInt64 { startUnixNano + UInt64(days) * TrafficModel.nanosPerDay }
    }

    /// The average number of events (edge event plus spans) per request with the default fractions, measured
    /// over 200,000 requests; used by `Configuration.sized(events:days:seed:)`.
    public static let meanEventsPerRequest: Double = 6.6

    public let configuration: Configuration
    /// Requests generated so far (including the one whose events may still be pending in `nextEvents`).
    public private(set) var requestsGenerated = 0

    private let model: TrafficModel
    private var rng: Xoshiro256StarStar
    /// Events of a request that `nextEvents` has not handed out yet.
    private var pending: [AuditEvent] = []
    private var pendingIndex = 0
    /// Scratch for the call plan of the current request (service index and parent hop of each hop).
    private var planService: [Int] = []
    private var planParent: [Int] = []

    public init(configuration: Configuration = Configuration()) {
        precondition(configuration.userCount >= 1 && configuration.userCount < 1 << 31, "userCount must be in 1..<2^31")
        precondition(configuration.days >= 1, "days must be at least 1")
        precondition(configuration.requestsPerDay >= 1, "requestsPerDay must be at least 1")
        precondition(
            configuration.zipfExponent >= 0 && configuration.zipfExponent.isFinite, "zipfExponent must be >= 0")
        for fraction in [configuration.deniedFraction, configuration.errorFraction, configuration.analyticsFraction] {
            precondition(fraction >= 0 && fraction <= 1, "fractions must be within 0...1")
        }
        self.configuration = configuration
        self.model = TrafficModel(configuration)
        self.rng = Xoshiro256StarStar(seed: configuration.seed)
        planService.reserveCapacity(8)
        planParent.reserveCapacity(8)
    }

    public init(seed: UInt64) {
        self.init(configuration: Configuration(seed: seed))
    }

    // MARK: Users

    /// The subject of the user with activity rank `rank` (1 = the heaviest user).
    public func userSubject(rank: Int) -> String {
        model.permutation.subject(rank: rank)
    }

    /// The subject of the heaviest (rank 1) user: about `expectedShare(rank: 1)` of all requests.
    public var heavyUser: String { userSubject(rank: 1) }

    /// The subject of a light user (rank `userCount / 2`): a handful of requests per million.
    public var lightUser: String { userSubject(rank: Self.lightRank(configuration)) }

    /// The heaviest user of `configuration`, without building a generator.
    public static func heavyUser(for configuration: Configuration) -> String {
        UserPermutation(userCount: configuration.userCount, seed: configuration.seed).subject(rank: 1)
    }

    /// The light user of `configuration` (see `lightUser`), without building a generator.
    public static func lightUser(for configuration: Configuration) -> String {
        UserPermutation(userCount: configuration.userCount, seed: configuration.seed)
            .subject(rank: lightRank(configuration))
    }

    /// The probability that a request is made by the user of rank `rank`.
    public func expectedShare(rank: Int) -> Double {
        guard rank >= 1 && rank <= model.zipfCDF.count else { return 0 }
        let below = rank == 1 ? 0 : model.zipfCDF[rank - 2]
        return (model.zipfCDF[rank - 1] - below) / model.zipfCDF[model.zipfCDF.count - 1]
    }

    private static func lightRank(_ configuration: Configuration) -> Int {
        max(1, configuration.userCount / 2)
    }

    // MARK: Generating

    /// The events of the next request: its edge access event, then its spans in start order. If an earlier
    /// `nextEvents` call stopped in the middle of a request, the rest of that request comes first.
    public mutating func nextRequest() -> [AuditEvent] {
        if pendingIndex < pending.count {
            let rest = Array(pending[pendingIndex...])
            pending.removeAll(keepingCapacity: true)
            pendingIndex = 0
            return rest
        }
        var events = [AuditEvent]()
        events.reserveCapacity(13)
        generateRequest(into: &events)
        return events
    }

    /// Exactly `n` events, request after request; a request cut at the end continues in the next call.
    public mutating func nextEvents(_ n: Int) -> [AuditEvent] {
        precondition(n >= 0, "n must not be negative")
        var out = [AuditEvent]()
        out.reserveCapacity(n + 12)
        while out.count < n {
            if pendingIndex < pending.count {
                let take = min(n - out.count, pending.count - pendingIndex)
                out.append(contentsOf: pending[pendingIndex..<(pendingIndex + take)])
                pendingIndex += take
                continue
            }
            pending.removeAll(keepingCapacity: true)
            pendingIndex = 0
            generateRequest(into: &out)
            if out.count > n {
                pending.append(contentsOf: out[n...])
                out.removeSubrange(n...)
            }
        }
        return out
    }

    // MARK: One request

    /// What every span of one request shares.
    private struct RequestContext {
        var traceID: TraceID
        var requestID: String
        /// `guid:x-request-id`, built once and shared by every sidecar span of the request.
        var requestIDAttribute: Attribute
        var traceState: String
        var route: RouteModel
        var path: String
        var query: String?
        var target: String
        /// The hop whose app fails first (root cause), `sqlFailure` for the SQL query, or -1 for none.
        var failingHop: Int
        var failureStatus: UInt16
        var successStatus: UInt16
        var analytics: Bool
        var userIndex: Int

        static let sqlFailure = 1_000
    }

    private mutating func generateRequest(into events: inout [AuditEvent]) {
        let c = configuration
        let index = requestsGenerated
        requestsGenerated += 1

        let start = startTime(ofRequest: index)
        let traceID = TraceID(high: Self.nonZero(rng.next()), low: rng.next())
        let edgeSpan = SpanID(value: Self.nonZero(rng.next()))
        // Drawn only when asked for, so the default stream of random numbers (and every event) stays the same.
        let requestID =
            c.independentRequestIDs
            ? SyntheticText.hex(TraceID(high: rng.next(), low: rng.next())) : SyntheticText.hex(traceID)
        let traceState = rng.chance(0.03) ? model.traceStates[rng.below(model.traceStates.count)] : ""

        // Outcome: denied at the edge, or let in (then maybe analytics, maybe failing).
        let denied = rng.unit() < c.deniedFraction
        let admitted = max(1e-9, 1 - c.deniedFraction)
        let analytics = !denied && rng.unit() < min(1, c.analyticsFraction / admitted)
        let failing = !denied && rng.unit() < min(1, c.errorFraction / admitted)

        // Who: a Zipf-ranked user; a 401 has no verified user.
        let rank = model.sampleRank(&rng)
        let userIndex = model.permutation.userIndex(rank: rank)
        let unauthenticated = denied && rng.below(3) == 0
        let user = unauthenticated ? nil : model.user(index: userIndex, at: start, seed: c.seed)
        let clientAddress = rng.chance(0.85) ? model.homeAddress(userIndex) : model.roamingAddress(&rng)
        let userAgent =
            rng.chance(0.92)
            ? model.userAgents[model.userAgentIndex(userIndex)] : model.userAgents[rng.below(model.userAgents.count)]

        // What: a route of the public API.
        let route = analytics ? model.pickAnalyticsRoute(&rng) : model.pickRoute(&rng)
        let (path, query) = model.buildRequest(
            route.target, route.query, prefix: route.prefix, suffix: route.suffix, userIndex: userIndex, &rng)
        var target = path
        if let query {
            target.reserveCapacity(path.utf8.count + query.utf8.count + 1)
            target += "?"
            target += query
        }
        let edgeHost = model.edgeHosts[rng.below(model.edgeHosts.count)]

        if denied {
            let status: UInt16 = unauthenticated ? 401 : 403
            let end = start + rng.skewed(400_000, 12_000_000, power: 3)
            let authTime = (end - start) * 8 / 10
            events.append(
                edgeEvent(
                    start: start, end: end, traceID: traceID, spanID: edgeSpan, traceState: traceState,
                    requestID: requestID,
                    route: route, target: target, status: status, user: user, clientAddress: clientAddress,
                    userAgent: userAgent, host: edgeHost, upstreamAddress: TrafficModel.authVerifierAddress,
                    upstreamTime: authTime, responseBytes: UInt64(rng.below(120)) + 130))
            return
        }

        // Plan the call tree: the entry service and the services it calls, depth first.
        planService.removeAll(keepingCapacity: true)
        planParent.removeAll(keepingCapacity: true)
        planService.append(route.service)
        planParent.append(-1)
        var calls = 0
        expand(
            hop: 0, callees: route.callees ?? model.services[route.service].callees, calls: &calls,
            maxCalls: analytics ? 2 : 3)

        var failingHop = -1
        if failing {
            let candidates = planService.count + (analytics ? 1 : 0)
            let pick = rng.below(candidates)
            failingHop = pick < planService.count ? pick : RequestContext.sqlFailure
        }
        let successStatus: UInt16 =
            route.successStatus == 200 && route.target != .none && rng.chance(0.015) ? 404 : route.successStatus
        var ctx = RequestContext(
            traceID: traceID, requestID: requestID,
            requestIDAttribute: Attribute("guid:x-request-id", .string(requestID)), traceState: traceState,
            route: route, path: path, query: query,
            target: target, failingHop: failingHop,
            failureStatus: model.pickFailureStatus(&rng), successStatus: successStatus, analytics: analytics,
            userIndex: userIndex)

        // The edge event is written last (it needs the end time) into the first slot.
        let edgeSlot = events.count
        events.append(AuditEvent(kind: .access, startTimeUnixNano: start))

        // Ingress gateway: nginx → istio-ingressgateway → entry service.
        let gatewayPod = model.gateway.pods[rng.below(model.gateway.pods.count)]
        let gatewaySpan = SpanID(value: Self.nonZero(rng.next()))
        let gatewayStart = start + rng.skewed(300_000, 5_000_000, power: 3)  // TLS, auth_request, proxying
        let gatewaySlot = events.count
        events.append(AuditEvent(kind: .span, startTimeUnixNano: gatewayStart))
        let entry = model.services[route.service]
        let entryPod = entry.mesh.pods[rng.below(entry.mesh.pods.count)]
        let hopStart = gatewayStart + rng.skewed(150_000, 1_200_000)
        let result = renderHop(
            0, pod: entryPod, parentSpan: gatewaySpan, callerAddress: gatewayPod.address, start: hopStart, ctx: &ctx,
            events: &events)
        let gatewayEnd = result.end + rng.skewed(100_000, 900_000)
        let status = result.status
        let responseBytes = result.responseBytes
        events[gatewaySlot] = sidecarSpan(
            mesh: model.gateway, kind: .client, spanID: gatewaySpan, parent: edgeSpan, start: gatewayStart,
            end: gatewayEnd, ctx: ctx, name: entry.mesh.spanName,
            method: route.methodValue, target: target, status: status, peerAddress: edgeHost.address,
            upstreamCluster: entry.mesh.outboundCluster)

        let end = gatewayEnd + rng.skewed(60_000, 700_000)
        events[edgeSlot] = edgeEvent(
            start: start, end: end, traceID: traceID, spanID: edgeSpan, traceState: traceState, requestID: requestID,
            route: route, target: target, status: status, user: user, clientAddress: clientAddress,
            userAgent: userAgent, host: edgeHost, upstreamAddress: TrafficModel.gatewayAddress,
            upstreamTime: gatewayEnd - gatewayStart + 200_000, responseBytes: responseBytes)
    }

    /// Appends the services `hop` calls (and, recursively, theirs) to the plan, within the span budget.
    private mutating func expand(hop: Int, callees: [Callee], calls: inout Int, maxCalls: Int) {
        for callee in callees where callee.service < model.services.count {
            guard calls < maxCalls else { return }
            guard rng.chance(callee.probability) else { continue }
            calls += 1
            planService.append(callee.service)
            planParent.append(hop)
            // An app without an OpenTelemetry SDK does not propagate the trace context, so whatever it
            // calls starts new traces: only instrumented services extend the tree.
            guard model.services[callee.service].instrumented else { continue }
            expand(
                hop: planService.count - 1, callees: model.services[callee.service].callees, calls: &calls,
                maxCalls: maxCalls)
        }
    }

    private struct HopResult {
        var end: UInt64
        var status: UInt16
        var responseBytes: UInt64
        var failed: Bool
    }

    /// Renders one service hop (inbound sidecar span, app span, its outbound calls and SQL query) starting at
    /// `start`, appending the spans in start order.
    private mutating func renderHop(
        _ hop: Int, pod: Pod, parentSpan: SpanID, callerAddress: String, start: UInt64, ctx: inout RequestContext,
        events: inout [AuditEvent]
    ) -> HopResult {
        let service = model.services[planService[hop]]
        let isEntry = hop == 0

        // The request this hop receives.
        let method: AttributeValue
        let methodName: String
        let route: AttributeValue
        let spanName: String
        let path: String
        let query: String?
        let target: String
        if isEntry {
            method = ctx.route.methodValue
            methodName = ctx.route.method
            route = ctx.route.routeValue
            spanName = ctx.route.spanName
            path = ctx.path
            query = ctx.query
            target = ctx.target
        } else {
            method = service.internalRoute.methodValue
            methodName = service.internalRoute.method
            route = service.internalRoute.routeValue
            spanName = service.internalRoute.spanName
            (path, query) = model.buildRequest(
                service.internalRoute.target, service.internalRoute.query, prefix: service.internalRoute.prefix,
                suffix: service.internalRoute.suffix, userIndex: ctx.userIndex, &rng)
            target = query.map { path + "?" + $0 } ?? path
        }

        let inboundSpan = SpanID(value: Self.nonZero(rng.next()))
        let appSpan = SpanID(value: Self.nonZero(rng.next()))
        let inboundSlot = events.count
        events.append(AuditEvent(kind: .span, startTimeUnixNano: start))
        let appSlot = events.count
        if service.instrumented { events.append(AuditEvent(kind: .span, startTimeUnixNano: start)) }

        let appStart = start + rng.skewed(30_000, 250_000)
        var cursor = appStart + rng.skewed(200_000, 4_000_000, power: 3)
        var failed = false
        var rootCause = false
        var spanEvents: [SpanEvent] = []
        var statusMessage = ""

        if ctx.failingHop == hop {
            failed = true
            rootCause = true
            cursor += rng.skewed(1_000_000, 30_000_000, power: 3)
            spanEvents.append(service.language.exceptionEvent(at: cursor))
            statusMessage = service.language.exceptionMessage
        } else if service.instrumented {
            // Outbound calls, one after the other; a failing callee aborts the rest.
            for child in (hop + 1)..<planService.count where planParent[child] == hop {
                let callee = model.services[planService[child]]
                let calleePod = callee.mesh.pods[rng.below(callee.mesh.pods.count)]
                let outboundSpan = SpanID(value: Self.nonZero(rng.next()))
                let outboundStart = cursor + rng.skewed(20_000, 120_000)
                let outboundSlot = events.count
                events.append(AuditEvent(kind: .span, startTimeUnixNano: outboundStart))
                let childResult = renderHop(
                    child, pod: calleePod, parentSpan: outboundSpan, callerAddress: pod.address,
                    start: outboundStart + rng.skewed(150_000, 1_200_000), ctx: &ctx, events: &events)
                let outboundEnd = childResult.end + rng.skewed(100_000, 600_000)
                let childTarget = events[outboundSlot + 1].http?.target ?? ""
                events[outboundSlot] = sidecarSpan(
                    mesh: service.mesh, kind: .client, spanID: outboundSpan, parent: appSpan,
                    start: outboundStart, end: outboundEnd, ctx: ctx, name: callee.mesh.spanName,
                    method: callee.internalRoute.methodValue, target: childTarget,
                    status: childResult.status, peerAddress: pod.address, upstreamCluster: callee.mesh.outboundCluster)
                cursor = outboundEnd + rng.skewed(10_000, 300_000)
                if childResult.failed {
                    failed = true
                    statusMessage = "upstream \(callee.name) returned \(childResult.status)"
                    break
                }
            }
            // The analytics query, made by the entry service of an analytics route.
            if isEntry && ctx.analytics && !failed {
                let sqlStart = cursor + rng.skewed(50_000, 400_000)
                let sqlFails = ctx.failingHop == RequestContext.sqlFailure
                let sqlEnd =
                    sqlStart
                    + (sqlFails
                        ? rng.skewed(30_000_000, 30_000_000_000, power: 1)
                        : rng.skewed(12_000_000, 2_500_000_000, power: 4))
                events.append(
                    sqlSpan(
                        service: service, pod: pod, parent: appSpan, start: sqlStart, end: sqlEnd, ctx: ctx,
                        fails: sqlFails))
                cursor = sqlEnd + rng.skewed(100_000, 2_000_000)
                if sqlFails {
                    failed = true
                    rootCause = true
                    statusMessage = service.language.sqlExceptionMessage
                    spanEvents.append(service.language.sqlExceptionEvent(at: sqlEnd + 50_000))
                }
            }
        }
        if !failed, let note = service.language.note, rng.chance(0.06) {
            spanEvents.append(
                SpanEvent(
                    timeUnixNano: appStart + (cursor - appStart) / 2, name: note.name, attributes: note.attributes))
        }
        let appEnd = cursor + rng.skewed(100_000, 3_000_000, power: 3)
        let end = appEnd + rng.skewed(30_000, 250_000)
        let status = failed ? ctx.failureStatus : (isEntry ? ctx.successStatus : service.internalRoute.successStatus)
        let responseBytes: UInt64 = status == 204 ? 0 : UInt64(rng.skewed(180, 48_000, power: 3))

        guard service.instrumented else {
            // Only the sidecar saw this hop: no app span, so no exception event either.
            events[inboundSlot] = sidecarSpan(
                mesh: service.mesh, kind: .server, spanID: inboundSpan, parent: parentSpan, start: start,
                end: end, ctx: ctx, name: service.mesh.spanName, method: method, target: target, status: status,
                peerAddress: callerAddress, upstreamCluster: service.mesh.inboundCluster)
            return HopResult(end: end, status: status, responseBytes: responseBytes, failed: failed)
        }

        var links: [SpanLink] = []
        if isEntry && (ctx.route.linksToJob || rng.chance(0.005)) {
            links.append(
                SpanLink(
                    traceID: TraceID(high: Self.nonZero(rng.next()), low: rng.next()),
                    spanID: SpanID(value: Self.nonZero(rng.next())),
                    attributes: ctx.route.linksToJob
                        ? TrafficModel.jobLinkAttributes : TrafficModel.retryLinkAttributes,
                    flags: 0x101))
        }

        // App server span. As the collector stores it: the keys it lifts into `http` (`http.request.method`,
        // `url.path`, `url.query`, `http.route`, `http.response.status_code`, `client.address`) are not repeated.
        var attributes = isEntry ? TrafficModel.publicServerAttributes : service.mesh.serverAttributes
        if rootCause || (failed && status >= 500) {
            attributes.append(Attribute("error.type", .string(rootCause ? service.language.errorType : String(status))))
        }
        events[appSlot] = AuditEvent(
            kind: .span, startTimeUnixNano: appStart, endTimeUnixNano: appEnd, traceID: ctx.traceID, spanID: appSpan,
            parentSpanID: inboundSpan, traceState: ctx.traceState, flags: 0x301, spanKind: .server, name: spanName,
            service: service.name, source: .app,
            http: HTTPFacts(
                method: methodName, target: target, route: route.stringValue, statusCode: status,
                clientAddress: callerAddress),
            statusCode: failed ? .error : .unset, statusMessage: statusMessage, attributes: attributes,
            events: spanEvents,
            links: links, resourceAttributes: pod.appResource, resourceSchemaURL: service.language.schemaURL,
            scope: service.language.scope)

        // Inbound sidecar span wrapping it.
        events[inboundSlot] = sidecarSpan(
            mesh: service.mesh, kind: .server, spanID: inboundSpan, parent: parentSpan, start: start, end: end,
            ctx: ctx, name: service.mesh.spanName,
            method: method, target: target, status: status, peerAddress: callerAddress,
            upstreamCluster: service.mesh.inboundCluster)
        return HopResult(end: end, status: status, responseBytes: responseBytes, failed: failed)
    }

    // MARK: Event builders

    private mutating func edgeEvent(
        start: UInt64, end: UInt64, traceID: TraceID, spanID: SpanID, traceState: String, requestID: String,
        route: RouteModel, target: String, status: UInt16, user: UserIdentity?, clientAddress: String,
        userAgent: AttributeValue, host: EdgeHost, upstreamAddress: AttributeValue,
        upstreamTime: UInt64, responseBytes: UInt64
    ) -> AuditEvent {
        let browser = model.isBrowser(userAgent)
        let tls13 = rng.chance(0.82)
        let headerBytes = UInt64(rng.below(420)) + 180
        // nginx's `escape=json` fields as the collector stores them: `$request_method`, `$request_uri`,
        // `$status`, `$remote_addr`, `$remote_user` and `$http_traceparent` are lifted into `http`, `user` and
        // the trace and span ids, so they are not repeated here.
        var attributes: [Attribute] = []
        attributes.reserveCapacity(12)
        attributes.append(Attribute("request_id", .string(requestID)))
        attributes.append(Attribute("server_protocol", browser ? TrafficModel.edgeHTTP2 : TrafficModel.edgeHTTP11))
        attributes.append(Attribute("bytes_sent", .int(Int64(responseBytes + headerBytes))))
        attributes.append(Attribute("request_time", .double(Double((end - start + 500_000) / 1_000_000) / 1000)))
        attributes.append(Attribute("upstream_addr", upstreamAddress))
        attributes.append(Attribute("upstream_response_time", .string(SyntheticText.seconds(nanos: upstreamTime))))
        attributes.append(Attribute("http_user_agent", userAgent))
        attributes.append(Attribute("ssl_protocol", tls13 ? TrafficModel.tls13 : TrafficModel.tls12))
        attributes.append(Attribute("ssl_cipher", tls13 ? TrafficModel.cipher13 : TrafficModel.cipher12))
        return AuditEvent(
            kind: .access, startTimeUnixNano: start, endTimeUnixNano: end, traceID: traceID, spanID: spanID,
            traceState: traceState, flags: 0x01, spanKind: .server, name: route.spanName,
            service: TrafficModel.edgeService,
            source: .edge, user: user,
            http: HTTPFacts(
                method: route.method, target: target, route: route.template, statusCode: status,
                clientAddress: clientAddress),
            statusCode: status >= 500 ? .error : .unset, attributes: attributes, resourceAttributes: host.resource,
            scope: TrafficModel.edgeScope)
    }

    private func sidecarSpan(
        mesh: MeshWorkload, kind: SpanKind, spanID: SpanID, parent: SpanID, start: UInt64, end: UInt64,
        ctx: RequestContext, name: String, method: AttributeValue, target: String, status: UInt16,
        peerAddress: String, upstreamCluster: AttributeValue
    ) -> AuditEvent {
        let failed = status >= 500
        // A subset of Envoy's tags, as the collector stores them: `http.url`, `http.method`,
        // `http.status_code` and `peer.address` are lifted into `http`, and the low-value ones
        // (`user_agent`, `request_size`, `response_size`, `istio.canonical_*`, `node_id`, `zone`) are left
        // out to keep the average NDJSON event within the 650–950-byte band the benchmarks assume.
        var attributes: [Attribute] = []
        attributes.reserveCapacity(5)
        attributes.append(ctx.requestIDAttribute)
        attributes.append(Attribute("upstream_cluster", upstreamCluster))
        attributes.append(Attribute("istio.mesh_id", TrafficModel.meshID))
        if failed {
            attributes.append(
                Attribute("response_flags", status == 503 ? TrafficModel.flagsUpstreamFailure : TrafficModel.dash))
            attributes.append(Attribute("error", TrafficModel.trueValue))
        }
        return AuditEvent(
            kind: .span, startTimeUnixNano: start, endTimeUnixNano: end, traceID: ctx.traceID, spanID: spanID,
            parentSpanID: parent, traceState: ctx.traceState, flags: 0x01, spanKind: kind, name: name,
            service: mesh.serviceName, source: .sidecar, workload: mesh.spiffeID,
            http: HTTPFacts(method: method.stringValue, target: target, statusCode: status, clientAddress: peerAddress),
            statusCode: failed ? .error : .unset, attributes: attributes, resourceAttributes: mesh.resource,
            scope: TrafficModel.envoyScope)
    }

    private mutating func sqlSpan(
        service: ServiceModel, pod: Pod, parent: SpanID, start: UInt64, end: UInt64, ctx: RequestContext, fails: Bool
    ) -> AuditEvent {
        let queries =
            service.sqlQueries.isEmpty ? model.services[TrafficModel.reportingIndex].sqlQueries : service.sqlQueries
        let query = queries[rng.below(queries.count)]
        var attributes: [Attribute] = []
        attributes.reserveCapacity(11)
        attributes.append(Attribute("db.system.name", TrafficModel.sqlServerSystem))
        attributes.append(Attribute("db.namespace", TrafficModel.analyticsDatabase))
        attributes.append(Attribute("db.collection.name", query.collection))
        attributes.append(Attribute("db.operation.name", TrafficModel.selectOperation))
        attributes.append(Attribute("db.query.text", query.text))
        attributes.append(Attribute("server.address", TrafficModel.analyticsServer))
        attributes.append(Attribute("server.port", TrafficModel.sqlPort))
        attributes.append(Attribute("service.peer.name", TrafficModel.analyticsPeer))
        if fails {
            attributes.append(Attribute("db.response.status_code", service.language.sqlErrorCode))
            attributes.append(Attribute("error.type", service.language.sqlErrorType))
        } else {
            attributes.append(Attribute("db.response.returned_rows", .int(Int64(rng.skewed(1, 5_000, power: 3)))))
        }
        return AuditEvent(
            kind: .span, startTimeUnixNano: start, endTimeUnixNano: end, traceID: ctx.traceID,
            spanID: SpanID(value: Self.nonZero(rng.next())), parentSpanID: parent, traceState: ctx.traceState,
            flags: 0x101,
            spanKind: .client, name: query.spanName, service: service.name, source: .app,
            statusCode: fails ? .error : .unset, statusMessage: fails ? service.language.sqlExceptionMessage : "",
            attributes: attributes, resourceAttributes: pod.appResource, resourceSchemaURL: service.language.schemaURL,
            scope: service.language.databaseScope)
    }

    // MARK: Time

    /// Request `k` of day `k / requestsPerDay` lands in the `(k mod requestsPerDay)`-th equal-probability slice
    /// of the day's curve, jittered within the slice.
    private mutating func startTime(ofRequest k: Int) -> UInt64 {
        let perDay = configuration.requestsPerDay
        let day = k / perDay
        let q = (Double(k % perDay) + rng.unit()) / Double(perDay)
        let cdf = model.hourCDF
        var hour = 0
        while hour < 23 && cdf[hour + 1] <= q { hour += 1 }
        let within = (q - cdf[hour]) / (cdf[hour + 1] - cdf[hour])
        let offset = min(
            UInt64(hour) * 3_600_000_000_000 + UInt64(within * 3_600_000_000_000), TrafficModel.nanosPerDay - 1)
        return configuration.startUnixNano + UInt64(day) * TrafficModel.nanosPerDay + offset
    }

    @inline(__always)
    private static func nonZero(_ v: UInt64) -> UInt64 { v == 0 ? 1 : v }
}
