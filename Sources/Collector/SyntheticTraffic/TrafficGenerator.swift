// Realistic synthetic audit traffic for tests, benchmarks and demos.
//
// One request at a time, the generator produces what the collector would receive for it: the nginx edge's
// access event (the only event that names the user) and the spans of the trace it started, from the Istio
// ingress gateway through each service's sidecar and app to, for some requests, the analytics SQL pool.
// Everything is derived from a seed, so the same configuration always produces the same events.
import LogFormat

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

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

// MARK: - The model: fixed tables built once per configuration

/// A call the app of one service may make to another, with its probability per request.
struct Callee: Sendable {
    var service: Int
    var probability: Double
}

/// How a route's `{id}` placeholder is filled.
enum IDKind: Sendable {
    case none, orderID, sku, paymentID, invoiceID, shipmentID, reportName, dashboardID, userID, resourceID
}

/// Which query string a route carries.
enum QueryKind: Sendable {
    case none, orderList, search, reportRange, historyRange, invoiceYear
}

/// A route of the public API (or a service's internal one). A class: requests share it without copying.
final class RouteModel: Sendable {
    let method: String
    let template: String
    let prefix: String
    let suffix: String
    let target: IDKind
    let query: QueryKind
    let service: Int
    let successStatus: UInt16
    let callees: [Callee]?
    let linksToJob: Bool
    let spanName: String
    let methodValue: AttributeValue
    let routeValue: AttributeValue

    init(
        _ method: String, _ template: String, service: Int, target: IDKind = .none, query: QueryKind = .none,
        status: UInt16 = 200, callees: [Callee]? = nil, linksToJob: Bool = false
    ) {
        self.method = method
        self.template = template
        if let open = template.firstIndex(of: "{"), let close = template.firstIndex(of: "}") {
            prefix = String(template[..<open])
            suffix = String(template[template.index(after: close)...])
        } else {
            prefix = template
            suffix = ""
        }
        self.target = target
        self.query = query
        self.service = service
        self.successStatus = status
        self.callees = callees
        self.linksToJob = linksToJob
        self.spanName = method + " " + template
        self.methodValue = .string(method)
        self.routeValue = .string(template)
    }
}

struct Pod: Sendable {
    var name: String
    var address: String
    var appResource: [Attribute]
}

/// A workload in the mesh as its Envoy sidecar reports it.
struct MeshWorkload: Sendable {
    var serviceName: String
    var spiffeID: String
    var pods: [Pod]
    var resource: [Attribute]
    /// `orders.commerce.svc.cluster.local:8080/*`: Istio's span name for calls to this workload.
    var spanName: String
    /// `server.address` = `orders.commerce`: the short host name in-cluster callers use, as apps see it.
    var serverAttributes: [Attribute]
    var inboundCluster: AttributeValue
    var outboundCluster: AttributeValue
}

struct SQLQuery: Sendable {
    var collection: AttributeValue
    var text: AttributeValue
    var spanName: String
}

struct LanguageModel: Sendable {
    struct Note: Sendable {
        var name: String
        var attributes: [Attribute]
    }

    var scope: InstrumentationScope
    var databaseScope: InstrumentationScope
    var sdkLanguage: String
    var sdkVersion: String
    /// The schema URL the SDK puts on its resource (the Java agent sets one; the others here leave it empty).
    var schemaURL: String
    var errorType: String
    var exceptionMessage: String
    var exceptionAttributes: [Attribute]
    var sqlErrorType: AttributeValue
    var sqlErrorCode: AttributeValue
    var sqlExceptionMessage: String
    var sqlExceptionAttributes: [Attribute]
    var note: Note?

    func exceptionEvent(at time: UInt64) -> SpanEvent {
        SpanEvent(timeUnixNano: time, name: "exception", attributes: exceptionAttributes)
    }

    func sqlExceptionEvent(at time: UInt64) -> SpanEvent {
        SpanEvent(timeUnixNano: time, name: "exception", attributes: sqlExceptionAttributes)
    }
}

/// A service of the mesh. A class: hops share it without copying its many strings and arrays.
final class ServiceModel: Sendable {
    let name: String
    /// False for workloads without an OpenTelemetry SDK: only their sidecar reports them.
    let instrumented: Bool
    let language: LanguageModel
    let mesh: MeshWorkload
    let internalRoute: RouteModel
    let callees: [Callee]
    let sqlQueries: [SQLQuery]

    init(
        name: String, instrumented: Bool, language: LanguageModel, mesh: MeshWorkload, internalRoute: RouteModel,
        callees: [Callee], sqlQueries: [SQLQuery]
    ) {
        self.name = name
        self.instrumented = instrumented
        self.language = language
        self.mesh = mesh
        self.internalRoute = internalRoute
        self.callees = callees
        self.sqlQueries = sqlQueries
    }
}

struct EdgeHost: Sendable {
    var address: String
    var resource: [Attribute]
}

/// Maps activity ranks to user indexes with a seeded affine permutation, so the heaviest user is not
/// always `u-000000`.
struct UserPermutation: Sendable {
    let count: Int
    let multiplier: Int
    let offset: Int

    init(userCount: Int, seed: UInt64) {
        count = userCount
        guard userCount > 1 else {
            multiplier = 1
            offset = 0
            return
        }
        var a = Int(SplitMix64.mix(seed ^ 0x7573_6572_7065_726d) % UInt64(userCount))
        func gcd(_ x: Int, _ y: Int) -> Int { y == 0 ? x : gcd(y, x % y) }
        while a == 0 || gcd(a, userCount) != 1 { a = (a + 1) % userCount }
        multiplier = a
        offset = Int(SplitMix64.mix(seed ^ 0x6f66_6673_6574_0001) % UInt64(userCount))
    }

    func userIndex(rank: Int) -> Int {
        (multiplier * ((rank - 1) % count) + offset) % count
    }

    func subject(rank: Int) -> String {
        SyntheticText.subject(userIndex(rank: rank))
    }
}

/// Everything fixed for a configuration: users' Zipf table, services, pods, routes and constant values.
/// Immutable and shared by copies of a generator.
final class TrafficModel: Sendable {
    static let nanosPerDay: UInt64 = 86_400_000_000_000

    let zipfCDF: [Double]
    let permutation: UserPermutation
    let hourCDF: [Double]
    let services: [ServiceModel]
    let gateway: MeshWorkload
    let edgeHosts: [EdgeHost]
    let routes: [RouteModel]
    let routeCDF: [Double]
    let analyticsRoutes: [RouteModel]
    let analyticsCDF: [Double]
    let userAgents: [AttributeValue]
    let browserAgentCount: Int
    let traceStates: [String]
    let groupSets: [[String]]
    let monthRanges: [String]
    let months: [String]

    init(_ c: TrafficGenerator.Configuration) {
        // Zipf: weight 1 / rank^s, cumulated for a binary search.
        var cdf = [Double]()
        cdf.reserveCapacity(c.userCount)
        var total = 0.0
        for rank in 1...c.userCount {
            total += c.zipfExponent == 1 ? 1 / Double(rank) : pow(Double(rank), -c.zipfExponent)
            cdf.append(total)
        }
        zipfCDF = cdf
        permutation = UserPermutation(userCount: c.userCount, seed: c.seed)

        // Day/night curve (UTC), one weight per hour: quiet nights, busy 09:00–18:00.
        let hourly: [Double] = [
            0.20, 0.15, 0.12, 0.10, 0.10, 0.14, 0.25, 0.45, 0.75, 1.00, 1.00, 0.95,
            0.85, 0.95, 1.00, 1.00, 0.95, 0.85, 0.65, 0.50, 0.42, 0.36, 0.30, 0.25,
        ]
        let hourTotal = hourly.reduce(0, +)
        var hc = [0.0]
        for w in hourly { hc.append(hc[hc.count - 1] + w / hourTotal) }
        hc[24] = 1
        hourCDF = hc

        let languages = Self.languages()
        var services: [ServiceModel] = []
        let specs = Self.serviceSpecs
        let count = max(2, c.serviceCount)
        var nameToIndex: [String: Int] = [:]
        for i in 0..<count {
            let name = i < specs.count ? specs[i].name : "svc-\(i + 1)"
            nameToIndex[name] = i
        }
        for i in 0..<count {
            let spec = i < specs.count ? specs[i] : Self.genericSpec(index: i)
            let language = languages[spec.language]!
            let mesh = Self.meshWorkload(
                name: spec.name, namespace: spec.namespace, version: spec.version, port: spec.port, pods: 3,
                language: language, seed: c.seed &+ UInt64(i))
            let callees = spec.callees.compactMap { name, p in
                nameToIndex[name].map { Callee(service: $0, probability: p) }
            }
            let queries = Self.sqlQueries(for: spec.name)
            services.append(
                ServiceModel(
                    name: spec.name, instrumented: spec.instrumented, language: language, mesh: mesh,
                    internalRoute: RouteModel(
                        spec.method, spec.route, service: i, target: spec.idKind, query: spec.queryKind,
                        status: spec.method == "POST" ? 201 : 200),
                    callees: callees, sqlQueries: queries))
        }
        self.services = services
        gateway = Self.meshWorkload(
            name: "istio-ingressgateway", namespace: "istio-system", version: "1.25.2", port: 8443, pods: 2,
            language: nil, seed: c.seed ^ 0x6761_7465)
        edgeHosts = (1...3).map { n in
            EdgeHost(
                address: "10.10.0.1\(n)",
                resource: [
                    Attribute("service.name", .string(Self.edgeService)),
                    Attribute("host.name", .string("edge-nginx-\(n)")),
                ])
        }

        // Public API routes; the `analytics` ones end in a query to the SQL pool. The uninstrumented leaf
        // services (inventory, pricing, notifications) are internal only.
        func idx(_ name: String) -> Int? { nameToIndex[name] }
        func callees(_ list: [(String, Double)]) -> [Callee] {
            list.compactMap { name, p in idx(name).map { Callee(service: $0, probability: p) } }
        }
        var regular: [(RouteModel, Double)] = []
        var analytic: [(RouteModel, Double)] = []
        func add(_ weight: Double, _ service: String, analytics: Bool = false, _ make: (Int) -> RouteModel) {
            guard let s = idx(service) else { return }
            if analytics { analytic.append((make(s), weight)) } else { regular.append((make(s), weight)) }
        }
        add(10, "orders") { RouteModel("GET", "/api/v1/orders/{orderId}", service: $0, target: .orderID) }
        add(7, "orders") { RouteModel("GET", "/api/v1/orders", service: $0, query: .orderList) }
        add(3, "orders") {
            RouteModel(
                "POST", "/api/v1/orders", service: $0, status: 201,
                callees: callees([("catalog", 0.9), ("pricing", 0.5), ("payments", 0.8), ("notifications", 0.3)]))
        }
        add(0.5, "orders") {
            RouteModel("DELETE", "/api/v1/orders/{orderId}", service: $0, target: .orderID, status: 204)
        }
        add(12, "catalog") { RouteModel("GET", "/api/v1/catalog/items/{sku}", service: $0, target: .sku) }
        add(7, "search") { RouteModel("GET", "/api/v1/search", service: $0, query: .search) }
        add(6, "accounts") { RouteModel("GET", "/api/v1/accounts/me", service: $0) }
        add(1, "accounts") { RouteModel("PATCH", "/api/v1/accounts/me", service: $0) }
        add(2, "payments") { RouteModel("POST", "/api/v1/payments", service: $0, status: 201) }
        add(2, "payments") { RouteModel("GET", "/api/v1/payments/{paymentId}", service: $0, target: .paymentID) }
        add(2, "billing") { RouteModel("GET", "/api/v1/invoices/{invoiceId}", service: $0, target: .invoiceID) }
        add(2.5, "shipping") { RouteModel("GET", "/api/v1/shipments/{shipmentId}", service: $0, target: .shipmentID) }
        add(0.3, "ledger") { RouteModel("GET", "/api/v1/ledger/entries", service: $0, query: .historyRange) }
        for i in specs.count..<max(specs.count, count) {
            let name = "svc-\(i + 1)"
            add(1, name) {
                RouteModel("GET", "/api/v1/\(name)/resources/{resourceId}", service: $0, target: .resourceID)
            }
        }
        add(10, "reporting", analytics: true) {
            RouteModel("GET", "/api/v1/reports/{reportName}", service: $0, target: .reportName, query: .reportRange)
        }
        add(2, "reporting", analytics: true) {
            RouteModel(
                "POST", "/api/v1/reports/{reportName}/exports", service: $0, target: .reportName, status: 202,
                linksToJob: true)
        }
        add(4, "reporting", analytics: true) {
            RouteModel("GET", "/api/v1/dashboards/{dashboardId}", service: $0, target: .dashboardID)
        }
        add(3, "orders", analytics: true) {
            RouteModel(
                "GET", "/api/v1/orders/history", service: $0, query: .historyRange,
                callees: callees([("accounts", 0.3)]))
        }
        add(2, "billing", analytics: true) {
            RouteModel("GET", "/api/v1/invoices/summary", service: $0, query: .invoiceYear)
        }
        func cumulative(_ list: [(RouteModel, Double)]) -> [Double] {
            var sum = 0.0
            return list.map {
                sum += $0.1
                return sum
            }
        }
        routes = regular.map(\.0)
        routeCDF = cumulative(regular)
        analyticsRoutes = analytic.map(\.0)
        analyticsCDF = cumulative(analytic)

        let browsers = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36 Edg/133.0.0.0",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Safari/605.1.15",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:135.0) Gecko/20100101 Firefox/135.0",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36",
        ]
        let clients = [
            "python-requests/2.32.3", "curl/8.5.0",
            "Microsoft.Data.Mashup (https://go.microsoft.com/fwlink/?LinkID=304225)",
            "okhttp/4.12.0", "PostmanRuntime/7.43.0",
        ]
        userAgents = (browsers + clients).map { .string($0) }
        browserAgentCount = browsers.count
        traceStates = ["rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE", "az=eu-west;sampling=1"]
        groupSets = [
            ["employees"], ["employees"], ["employees", "sales"], ["employees", "sales"], ["employees", "finance"],
            ["employees", "analysts"], ["employees", "engineering"], ["employees", "support"],
            ["employees", "analysts", "finance"], ["employees", "engineering", "platform-admins"],
            ["employees", "auditors"], ["employees", "sales", "analysts"],
        ]
        var ranges: [String] = []
        var monthNames: [String] = []
        let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for (year, monthsOfYear) in [(2024, 1...12), (2025, 1...2)] {
            for m in monthsOfYear {
                let mm = SyntheticText.padded(m, width: 2)
                let last = m == 2 && year == 2024 ? 29 : lengths[m - 1]
                ranges.append("from=\(year)-\(mm)-01&to=\(year)-\(mm)-\(last)")
                monthNames.append("\(year)-\(mm)")
            }
        }
        monthRanges = ranges
        months = monthNames
    }

    // MARK: Sampling

    func sampleRank(_ rng: inout Xoshiro256StarStar) -> Int {
        let u = rng.unit() * zipfCDF[zipfCDF.count - 1]
        var low = 0
        var high = zipfCDF.count - 1
        while low < high {
            let mid = (low + high) / 2
            if zipfCDF[mid] > u { high = mid } else { low = mid + 1 }
        }
        return low + 1
    }

    func pickRoute(_ rng: inout Xoshiro256StarStar) -> RouteModel {
        routes[Self.pick(routeCDF, &rng)]
    }

    func pickAnalyticsRoute(_ rng: inout Xoshiro256StarStar) -> RouteModel {
        analyticsRoutes[Self.pick(analyticsCDF, &rng)]
    }

    private static func pick(_ cdf: [Double], _ rng: inout Xoshiro256StarStar) -> Int {
        let u = rng.unit() * cdf[cdf.count - 1]
        var i = 0
        while i < cdf.count - 1 && cdf[i] <= u { i += 1 }
        return i
    }

    func pickFailureStatus(_ rng: inout Xoshiro256StarStar) -> UInt16 {
        let u = rng.below(20)
        return u < 10 ? 500 : u < 15 ? 503 : u < 18 ? 502 : 504
    }

    // MARK: Users

    func user(index: Int, at time: UInt64, seed: UInt64) -> UserIdentity {
        let h = SplitMix64.mix(UInt64(index) ^ 0x0075_7365_7200)
        let partner = h % 100 < 5
        let first = Self.firstNames[index % Self.firstNames.count]
        let last = Self.lastNames[(index / Self.firstNames.count) % Self.lastNames.count]
        let round = index / (Self.firstNames.count * Self.lastNames.count)
        var email = first
        email.reserveCapacity(40)
        email += "."
        email += last
        if round > 0 { email += String(round + 1) }
        email += partner ? "@partner.example.net" : "@example.com"
        // Tokens are reissued hourly: the fingerprint is stable within an hour for a user.
        var tokenRNG = SplitMix64(seed: SplitMix64.mix(UInt64(index)) ^ (time / 3_600_000_000_000) ^ seed)
        var fingerprint = [UInt8]()
        fingerprint.reserveCapacity(32)
        for _ in 0..<4 {
            let word = tokenRNG.next()
            for shift in stride(from: 56, through: 0, by: -8) {
                fingerprint.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        return UserIdentity(
            subject: SyntheticText.subject(index), email: email,
            groups: partner ? Self.partnerGroups : groupSets[Int((h >> 8) % UInt64(groupSets.count))],
            issuer: partner ? Self.partnerIssuer : Self.corporateIssuer, origin: .edge, tokenFingerprint: fingerprint)
    }

    func userAgentIndex(_ userIndex: Int) -> Int {
        let h = SplitMix64.mix(UInt64(userIndex) ^ 0x0075_6167_656e_7400)
        // Two in three users browse; the rest use scripts and BI tools.
        return h % 3 == 0
            ? browserAgentCount + Int((h >> 8) % UInt64(userAgents.count - browserAgentCount))
            : Int((h >> 8) % UInt64(browserAgentCount))
    }

    func isBrowser(_ agent: AttributeValue) -> Bool {
        guard case .string(let s) = agent else { return false }
        return s.hasPrefix("Mozilla/")
    }

    func homeAddress(_ userIndex: Int) -> String {
        let h = SplitMix64.mix(UInt64(userIndex) ^ 0x0068_6f6d_6500)
        return Self.address(h)
    }

    func roamingAddress(_ rng: inout Xoshiro256StarStar) -> String {
        Self.address(rng.next())
    }

    private static func address(_ h: UInt64) -> String {
        let a = Int((h >> 8) & 0xff)
        let b = Int((h >> 16) & 0xff)
        let d = Int((h >> 24) % 254) + 1
        switch h % 10 {
        case 0...6:
            let nets = ["203.0.113.", "198.51.100.", "192.0.2."]
            return nets[Int(h >> 32) % 3] + String(d)
        case 7, 8:
            return SyntheticText.ipv4(10, 40 + a % 8, b, d)
        default:
            return "2001:db8:" + String(a * 256 + b, radix: 16) + "::" + String(d, radix: 16)
        }
    }

    // MARK: Requests

    /// The path (with its `{id}` filled) and query string of a request to a route.
    func buildRequest(
        _ kind: IDKind, _ queryKind: QueryKind, prefix: String, suffix: String, userIndex: Int,
        _ rng: inout Xoshiro256StarStar
    ) -> (String, String?) {
        var path = prefix
        switch kind {
        case .none: break
        case .orderID: path += String(1_000_000 + rng.below(9_000_000))
        case .sku: path += "SKU-" + SyntheticText.padded(rng.below(60_000), width: 5)
        case .paymentID: path += "pay_" + SyntheticText.hex(rng.next())
        case .invoiceID: path += "INV-2025-" + SyntheticText.padded(rng.below(1_000_000), width: 6)
        case .shipmentID: path += "SHP" + String(100_000_000 + rng.below(900_000_000))
        case .reportName: path += Self.reportNames[rng.below(Self.reportNames.count)]
        case .dashboardID: path += "dash-" + String(rng.below(400) + 1)
        case .userID: path += String(100_000_000 + userIndex)
        case .resourceID: path += String(rng.below(100_000))
        }
        path += suffix
        let query: String?
        switch queryKind {
        case .none: query = nil
        case .orderList:
            query =
                "status=" + Self.orderStatuses[rng.below(Self.orderStatuses.count)] + "&page="
                + String(rng.below(5) + 1) + "&page_size=25"
        case .search:
            query = "q=" + Self.searchTerms[rng.below(Self.searchTerms.count)] + "&limit=20"
        case .reportRange:
            query =
                "month=" + months[rng.below(months.count)] + "&region=" + Self.regions[rng.below(Self.regions.count)]
        case .historyRange:
            query = monthRanges[rng.below(monthRanges.count)]
        case .invoiceYear:
            query = rng.chance(0.5) ? "year=2024" : "year=2025"
        }
        return (path, query)
    }

    // MARK: Constants

    static let edgeService = "edge-nginx"
    static let reportingIndex = 1
    static let edgeScope = InstrumentationScope(name: "auditq.collector.nginx_json", version: "1")
    static let envoyScope = InstrumentationScope(name: "envoy", version: "1.33.2")
    static let gatewayAddress: AttributeValue = .string("10.0.112.34:443")
    static let authVerifierAddress: AttributeValue = .string("10.10.0.21:9091")
    static let publicServerAttributes = [Attribute("server.address", .string("api.example.com"))]
    static let dash: AttributeValue = .string("-")
    static let trueValue: AttributeValue = .string("true")
    static let flagsUpstreamFailure: AttributeValue = .string("UF")
    static let edgeHTTP2: AttributeValue = .string("HTTP/2.0")
    static let edgeHTTP11: AttributeValue = .string("HTTP/1.1")
    static let tls13: AttributeValue = .string("TLSv1.3")
    static let tls12: AttributeValue = .string("TLSv1.2")
    static let cipher13: AttributeValue = .string("TLS_AES_256_GCM_SHA384")
    static let cipher12: AttributeValue = .string("ECDHE-RSA-AES128-GCM-SHA256")
    static let meshID: AttributeValue = .string("cluster.local")
    static let sqlServerSystem: AttributeValue = .string("microsoft.sql_server")
    static let analyticsDatabase: AttributeValue = .string("salesdw")
    static let analyticsServer: AttributeValue = .string("analytics-pool.sql.azuresynapse.net")
    static let analyticsPeer: AttributeValue = .string("analytics-pool")
    static let selectOperation: AttributeValue = .string("SELECT")
    static let sqlPort: AttributeValue = .int(1433)
    static let jobLinkAttributes = [Attribute("link.reason", .string("export_job"))]
    static let retryLinkAttributes = [Attribute("link.reason", .string("client_retry"))]
    static let corporateIssuer = "https://login.example.com/realms/corp"
    static let partnerIssuer = "https://login.example.com/realms/partners"
    static let partnerGroups = ["partners"]

    static let firstNames = [
        "olivia", "liam", "emma", "noah", "ava", "oliver", "sophia", "elijah", "mia", "lucas", "amelia", "mateo",
        "harper", "levi", "ella", "ethan", "aria", "james", "chloe", "leo", "nora", "jack", "zoe", "luca",
        "hana", "yuki", "aisha", "omar", "fatima", "ali", "ingrid", "lars", "sofia", "marco", "giulia", "pierre",
        "camille", "jonas", "lea", "pavel", "anna", "mehmet", "elif", "ravi", "priya", "chen", "mei", "kwame",
    ]
    static let lastNames = [
        "smith", "johnson", "garcia", "martin", "brown", "müller", "rossi", "dubois", "novak", "kowalski", "silva",
        "santos", "nguyen", "tanaka", "kim", "patel", "singh", "haddad", "yilmaz", "jensen", "larsen", "nielsen",
        "schmidt", "fischer", "weber", "moreau", "lopez", "gonzalez", "wilson", "taylor", "anderson", "thomas",
        "moore", "jackson", "white", "harris", "clark", "lewis", "walker", "young", "allen", "wright", "scott",
        "green", "baker", "adams", "nelson", "hill",
    ]
    static let reportNames = [
        "sales-by-region", "top-products", "weekly-active-users", "revenue-forecast", "churn-cohorts",
        "inventory-aging",
    ]
    static let orderStatuses = ["open", "shipped", "delivered", "cancelled"]
    static let regions = ["emea", "amer", "apac"]
    static let searchTerms = [
        "wireless+headphones", "usb-c+cable", "standing+desk", "coffee+grinder", "running+shoes", "monitor+27",
        "office+chair", "backpack", "water+bottle", "mechanical+keyboard", "caf%C3%A9+cups", "led+lamp",
    ]

    // MARK: Services

    struct ServiceSpec: Sendable {
        var name: String
        var namespace: String
        var language: String
        var version: String
        var port: Int
        var method: String
        var route: String
        var idKind: IDKind
        var queryKind: QueryKind = .none
        var callees: [(String, Double)]
        var instrumented = true
    }

    /// The named services, in the order `serviceCount` takes them (orders and reporting always exist).
    /// Calls only go "down" this graph (no cycles), and uninstrumented services call nobody.
    static let serviceSpecs: [ServiceSpec] = [
        ServiceSpec(
            name: "orders", namespace: "commerce", language: "java", version: "3.14.2", port: 8080, method: "GET",
            route: "/v1/orders/{orderId}", idKind: .orderID,
            callees: [
                ("catalog", 0.8), ("pricing", 0.5), ("inventory", 0.5), ("payments", 0.2), ("notifications", 0.1),
            ]),
        ServiceSpec(
            name: "reporting", namespace: "analytics", language: "python", version: "2.3.0", port: 8000, method: "GET",
            route: "/v1/reports/{reportName}", idKind: .reportName, callees: [("accounts", 0.7)]),
        ServiceSpec(
            name: "catalog", namespace: "catalog", language: "go", version: "1.28.4", port: 8080, method: "GET",
            route: "/v1/items/{sku}", idKind: .sku, callees: [("inventory", 0.6), ("pricing", 0.5)]),
        ServiceSpec(
            name: "payments", namespace: "commerce", language: "dotnet", version: "5.2.1", port: 8080, method: "POST",
            route: "/v1/authorizations", idKind: .none, callees: [("ledger", 0.7), ("accounts", 0.3)]),
        ServiceSpec(
            name: "accounts", namespace: "identity", language: "java", version: "7.0.3", port: 8080, method: "GET",
            route: "/v1/users/{userId}", idKind: .userID, callees: [("notifications", 0.1)]),
        ServiceSpec(
            name: "inventory", namespace: "catalog", language: "go", version: "2.6.0", port: 8080, method: "GET",
            route: "/v1/stock/{sku}", idKind: .sku, callees: [], instrumented: false),
        ServiceSpec(
            name: "search", namespace: "catalog", language: "java", version: "4.1.0", port: 8080, method: "GET",
            route: "/v1/search", idKind: .none, queryKind: .search, callees: [("catalog", 0.7), ("pricing", 0.3)]),
        ServiceSpec(
            name: "billing", namespace: "commerce", language: "dotnet", version: "1.19.0", port: 8080, method: "GET",
            route: "/v1/invoices/{invoiceId}", idKind: .invoiceID, callees: [("ledger", 0.5), ("accounts", 0.4)]),
        ServiceSpec(
            name: "shipping", namespace: "fulfilment", language: "nodejs", version: "3.2.5", port: 3000, method: "GET",
            route: "/v1/shipments/{shipmentId}", idKind: .shipmentID, callees: [("notifications", 0.4)]),
        ServiceSpec(
            name: "notifications", namespace: "fulfilment", language: "nodejs", version: "1.8.0", port: 3000,
            method: "POST", route: "/v1/messages", idKind: .none, callees: [], instrumented: false),
        ServiceSpec(
            name: "pricing", namespace: "catalog", language: "go", version: "1.4.7", port: 8080, method: "POST",
            route: "/v1/quotes", idKind: .none, callees: [], instrumented: false),
        ServiceSpec(
            name: "ledger", namespace: "commerce", language: "java", version: "2.0.9", port: 8080, method: "POST",
            route: "/v1/entries", idKind: .none, callees: []),
    ]

    static func genericSpec(index: Int) -> ServiceSpec {
        ServiceSpec(
            name: "svc-\(index + 1)", namespace: "platform", language: "go", version: "1.0.\(index)", port: 8080,
            method: "GET", route: "/v1/resources/{resourceId}", idKind: .resourceID, callees: [])
    }

    static func sqlQueries(for service: String) -> [SQLQuery] {
        func q(_ table: String, _ text: String) -> SQLQuery {
            SQLQuery(collection: .string(table), text: .string(text), spanName: "SELECT " + table)
        }
        switch service {
        case "reporting":
            return [
                q(
                    "sales.daily_revenue",
                    "SELECT region, SUM(net_amount) AS revenue, COUNT(*) AS orders FROM sales.daily_revenue WHERE day BETWEEN ? AND ? AND region = ? GROUP BY region"
                ),
                q(
                    "sales.product_performance",
                    "SELECT TOP (?) sku, SUM(quantity) AS units, SUM(net_amount) AS revenue FROM sales.product_performance WHERE day BETWEEN ? AND ? GROUP BY sku ORDER BY revenue DESC"
                ),
                q(
                    "web.sessions",
                    "SELECT CAST(started_at AS date) AS day, COUNT(DISTINCT user_key) AS users FROM web.sessions WHERE started_at >= ? AND started_at < ? GROUP BY CAST(started_at AS date)"
                ),
            ]
        case "orders":
            return [
                q(
                    "sales.order_history",
                    "SELECT order_id, placed_at, status, net_amount FROM sales.order_history WHERE customer_key = ? AND placed_at BETWEEN ? AND ? ORDER BY placed_at DESC"
                )
            ]
        case "billing":
            return [
                q(
                    "finance.invoice_summary",
                    "SELECT month, SUM(amount_due) AS due, SUM(amount_paid) AS paid FROM finance.invoice_summary WHERE customer_key = ? AND year = ? GROUP BY month"
                )
            ]
        default:
            return []
        }
    }

    static func meshWorkload(
        name: String, namespace: String, version: String, port: Int, pods podCount: Int, language: LanguageModel?,
        seed: UInt64
    ) -> MeshWorkload {
        let host = "\(name).\(namespace).svc.cluster.local"
        let serviceAccount = language == nil ? "\(name)-service-account" : name
        var h = SplitMix64(seed: SplitMix64.mix(seed ^ 0x706f_6473))
        let replicaSet = SyntheticText.podSuffix(h.next(), length: 10)
        let meshService = AttributeValue.string(name)
        let namespaceValue = AttributeValue.string(namespace)
        var pods: [Pod] = []
        for _ in 0..<podCount {
            let r = h.next()
            let podName = "\(name)-\(replicaSet)-\(SyntheticText.podSuffix(r, length: 5))"
            let address = SyntheticText.ipv4(10, 244, Int(r >> 40) % 16, Int(r >> 48) % 250 + 2)
            let node = "aks-userpool-31337642-vmss00000\(Int(r >> 56) % 6)"
            var resource: [Attribute] = []
            if let language {
                // What an SDK with the Kubernetes resource detectors sends on every export: 15 attributes, among
                // them random ids (pod uid, container id, instance id) that no compressor shrinks.
                let u = h.next()
                let v = h.next()
                resource = [
                    Attribute("service.name", meshService),
                    Attribute("service.namespace", namespaceValue),
                    Attribute("service.version", .string(version)),
                    Attribute("service.instance.id", .string(SyntheticText.uuid(u, v))),
                    Attribute("k8s.namespace.name", namespaceValue),
                    Attribute("k8s.deployment.name", meshService),
                    Attribute("k8s.pod.name", .string(podName)),
                    Attribute("k8s.pod.uid", .string(SyntheticText.uuid(v, u))),
                    Attribute("k8s.node.name", .string(node)),
                    Attribute(
                        "container.id", .string(SyntheticText.hex(u) + SyntheticText.hex(v) + SyntheticText.hex(r))),
                    Attribute("host.name", .string(podName)),
                    Attribute("process.pid", .int(Int64(1 + u % 64))),
                    Attribute("telemetry.sdk.name", .string("opentelemetry")),
                    Attribute("telemetry.sdk.language", .string(language.sdkLanguage)),
                    Attribute("telemetry.sdk.version", .string(language.sdkVersion)),
                ]
            }
            pods.append(Pod(name: podName, address: address, appResource: resource))
        }
        return MeshWorkload(
            serviceName: "\(name).\(namespace)",
            spiffeID: "spiffe://cluster.local/ns/\(namespace)/sa/\(serviceAccount)",
            pods: pods,
            resource: [Attribute("service.name", .string("\(name).\(namespace)"))],
            spanName: "\(host):\(port)/*",
            serverAttributes: [Attribute("server.address", .string("\(name).\(namespace)"))],
            inboundCluster: .string("inbound|\(port)||"),
            outboundCluster: .string("outbound|\(port)||\(host)"))
    }

    static func languages() -> [String: LanguageModel] {
        func exception(_ type: String, _ message: String, _ stack: String?) -> [Attribute] {
            var list = [Attribute("exception.type", .string(type)), Attribute("exception.message", .string(message))]
            if let stack { list.append(Attribute("exception.stacktrace", .string(stack))) }
            return list
        }
        return [
            "java": LanguageModel(
                scope: InstrumentationScope(name: "io.opentelemetry.tomcat-10.0", version: "2.11.0-alpha"),
                databaseScope: InstrumentationScope(name: "io.opentelemetry.jdbc", version: "2.11.0-alpha"),
                sdkLanguage: "java", sdkVersion: "1.45.0", schemaURL: "https://opentelemetry.io/schemas/1.24.0",
                errorType: "java.sql.SQLTransientConnectionException",
                exceptionMessage: "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
                exceptionAttributes: exception(
                    "java.sql.SQLTransientConnectionException",
                    "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
                    "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out after 30000ms.\n\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)\n\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)\n\tat org.springframework.jdbc.datasource.DataSourceUtils.fetchConnection(DataSourceUtils.java:160)"
                ),
                sqlErrorType: .string("com.microsoft.sqlserver.jdbc.SQLServerException"), sqlErrorCode: .string("8623"),
                sqlExceptionMessage:
                    "The query processor ran out of internal resources and could not produce a query plan.",
                sqlExceptionAttributes: exception(
                    "com.microsoft.sqlserver.jdbc.SQLServerException",
                    "The query processor ran out of internal resources and could not produce a query plan.", nil),
                note: .init(
                    name: "hikari.connection.acquired", attributes: [Attribute("pool", .string("HikariPool-1"))])),
            "go": LanguageModel(
                scope: InstrumentationScope(
                    name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", version: "0.58.0"),
                databaseScope: InstrumentationScope(name: "github.com/XSAM/otelsql", version: "0.36.0"),
                sdkLanguage: "go", sdkVersion: "1.33.0", schemaURL: "",
                errorType: "*net.OpError", exceptionMessage: "dial tcp 10.0.43.17:6379: connect: connection refused",
                exceptionAttributes: exception(
                    "*net.OpError", "dial tcp 10.0.43.17:6379: connect: connection refused", nil),
                sqlErrorType: .string("*mssql.Error"), sqlErrorCode: .string("-2"),
                sqlExceptionMessage: "mssql: Execution Timeout Expired.",
                sqlExceptionAttributes: exception("*mssql.Error", "mssql: Execution Timeout Expired.", nil),
                note: .init(name: "cache.miss", attributes: [Attribute("cache.name", .string("redis-items"))])),
            "dotnet": LanguageModel(
                scope: InstrumentationScope(name: "Microsoft.AspNetCore", version: ""),
                databaseScope: InstrumentationScope(
                    name: "OpenTelemetry.Instrumentation.SqlClient", version: "1.10.0-beta.1"),
                sdkLanguage: "dotnet", sdkVersion: "1.10.0", schemaURL: "",
                errorType: "System.TimeoutException", exceptionMessage: "The operation has timed out.",
                exceptionAttributes: exception(
                    "System.TimeoutException", "The operation has timed out.",
                    "System.TimeoutException: The operation has timed out.\n   at Api.Services.Gateway.SendAsync(Request request) in /src/Api/Services/Gateway.cs:line 87\n   at Api.Controllers.MainController.Post(Body body) in /src/Api/Controllers/MainController.cs:line 41"
                ),
                sqlErrorType: .string("Microsoft.Data.SqlClient.SqlException"), sqlErrorCode: .string("-2"),
                sqlExceptionMessage:
                    "Execution Timeout Expired.  The timeout period elapsed prior to completion of the operation or the server is not responding.",
                sqlExceptionAttributes: exception(
                    "Microsoft.Data.SqlClient.SqlException",
                    "Execution Timeout Expired.  The timeout period elapsed prior to completion of the operation or the server is not responding.",
                    nil),
                note: .init(name: "polly.retry", attributes: [Attribute("attempt", .int(1))])),
            "python": LanguageModel(
                scope: InstrumentationScope(name: "opentelemetry.instrumentation.flask", version: "0.50b0"),
                databaseScope: InstrumentationScope(name: "opentelemetry.instrumentation.dbapi", version: "0.50b0"),
                sdkLanguage: "python", sdkVersion: "1.29.0", schemaURL: "",
                errorType: "redis.exceptions.ConnectionError",
                exceptionMessage: "Error 111 connecting to redis-master.analytics.svc:6379. Connection refused.",
                exceptionAttributes: exception(
                    "redis.exceptions.ConnectionError",
                    "Error 111 connecting to redis-master.analytics.svc:6379. Connection refused.",
                    "Traceback (most recent call last):\n  File \"/app/reporting/cache.py\", line 42, in get\n    return self.client.get(key)\nredis.exceptions.ConnectionError: Error 111 connecting to redis-master.analytics.svc:6379. Connection refused."
                ),
                sqlErrorType: .string("pyodbc.OperationalError"), sqlErrorCode: .string("HYT00"),
                sqlExceptionMessage:
                    "('HYT00', '[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Query timeout expired (0) (SQLExecDirectW)')",
                sqlExceptionAttributes: exception(
                    "pyodbc.OperationalError",
                    "('HYT00', '[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Query timeout expired (0) (SQLExecDirectW)')",
                    nil),
                note: .init(name: "cache.miss", attributes: [Attribute("cache.name", .string("report-cache"))])),
            "nodejs": LanguageModel(
                scope: InstrumentationScope(name: "@opentelemetry/instrumentation-http", version: "0.57.1"),
                databaseScope: InstrumentationScope(name: "@opentelemetry/instrumentation-tedious", version: "0.18.0"),
                sdkLanguage: "nodejs", sdkVersion: "1.30.0", schemaURL: "",
                errorType: "Error", exceptionMessage: "connect ECONNREFUSED 10.0.61.9:5672",
                exceptionAttributes: exception(
                    "Error", "connect ECONNREFUSED 10.0.61.9:5672",
                    "Error: connect ECONNREFUSED 10.0.61.9:5672\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1611:16)"
                ),
                sqlErrorType: .string("RequestError"), sqlErrorCode: .string("ETIMEOUT"),
                sqlExceptionMessage: "Timeout: Request failed to complete in 15000ms",
                sqlExceptionAttributes: exception(
                    "RequestError", "Timeout: Request failed to complete in 15000ms", nil),
                note: nil),
        ]
    }
}

// MARK: - Text formatting without Foundation

/// Hex, decimal and address formatting for the hot path (the standard library's `String(_:radix:)` and
/// interpolation are fine for short values, but not for fixed-width or zero-padded output).
enum SyntheticText {
    @inline(__always)
    static func hexDigit(_ v: UInt64) -> UInt8 {
        let n = UInt8(truncatingIfNeeded: v & 0x0f)
        return n < 10 ? 0x30 + n : 0x57 + n
    }

    /// 32 lowercase hex digits.
    static func hex(_ id: TraceID) -> String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            for i in 0..<16 {
                buffer[i] = hexDigit(id.high >> UInt64(60 - 4 * i))
                buffer[16 + i] = hexDigit(id.low >> UInt64(60 - 4 * i))
            }
            return 32
        }
    }

    /// 16 lowercase hex digits.
    static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            for i in 0..<16 { buffer[i] = hexDigit(value >> UInt64(60 - 4 * i)) }
            return 16
        }
    }

    /// `value` in decimal, zero-padded on the left to at least `width` digits.
    static func padded(_ value: Int, width: Int) -> String {
        precondition(value >= 0, "value must not be negative")
        var digits = 1
        var v = value / 10
        while v > 0 {
            digits += 1
            v /= 10
        }
        let length = max(width, digits)
        return String(unsafeUninitializedCapacity: length) { b in
            var v = value
            for i in stride(from: length - 1, through: 0, by: -1) {
                b[i] = 0x30 + UInt8(v % 10)
                v /= 10
            }
            return length
        }
    }

    /// `u-000123`: a user subject.
    static func subject(_ index: Int) -> String {
        "u-" + padded(index, width: 6)
    }

    /// Nanoseconds as seconds with millisecond precision, as nginx writes times: `0.118`.
    static func seconds(nanos: UInt64) -> String {
        let millis = (nanos + 500_000) / 1_000_000
        return String(millis / 1000) + "." + padded(Int(millis % 1000), width: 3)
    }

    /// A lowercase RFC 9562 version-4 UUID from two random words.
    static func uuid(_ a: UInt64, _ b: UInt64) -> String {
        let hi = a & ~0xF000 | 0x4000
        let lo = b & ~(0xC << 60) | (0x8 << 60)
        let h = hex(hi)
        let l = hex(lo)
        let hc = Array(h.utf8)
        let lc = Array(l.utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        out += hc[0..<8]
        out.append(UInt8(ascii: "-"))
        out += hc[8..<12]
        out.append(UInt8(ascii: "-"))
        out += hc[12..<16]
        out.append(UInt8(ascii: "-"))
        out += lc[0..<4]
        out.append(UInt8(ascii: "-"))
        out += lc[4..<16]
        return String(decoding: out, as: UTF8.self)
    }

    static func ipv4(_ a: Int, _ b: Int, _ c: Int, _ d: Int) -> String {
        var s = String(a)
        s += "."
        s += String(b)
        s += "."
        s += String(c)
        s += "."
        s += String(d)
        return s
    }

    /// Kubernetes-style random name suffix (`7d9f8c6b5`, `x2k9p`): consonants and digits without vowels.
    static func podSuffix(_ value: UInt64, length: Int) -> String {
        let alphabet: [UInt8] = Array("bcdfghjklmnpqrstvwxz2456789".utf8)
        var v = value
        return String(unsafeUninitializedCapacity: length) { b in
            for i in 0..<length {
                b[i] = alphabet[Int(v % UInt64(alphabet.count))]
                v /= UInt64(alphabet.count)
            }
            return length
        }
    }
}
