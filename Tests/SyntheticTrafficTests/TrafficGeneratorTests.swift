import LogFormat
import Testing

@testable import SyntheticTraffic

@Suite("TrafficGenerator")
struct TrafficGeneratorTests {
    /// `count` whole requests from a generator with `configuration`.
    private func requests(_ count: Int, _ configuration: TrafficGenerator.Configuration = .init()) -> [[AuditEvent]] {
        var generator = TrafficGenerator(configuration: configuration)
        return (0..<count).map { _ in generator.nextRequest() }
    }

    private func isAnalytics(_ event: AuditEvent) -> Bool {
        event.attributes.value(forKey: "db.system.name")?.stringValue == "microsoft.sql_server"
    }

    // MARK: PRNG

    @Test func splitMix64ReferenceVector() {
        var rng = SplitMix64(seed: 1_234_567)
        #expect(
            [rng.next(), rng.next(), rng.next()] == [
                6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
            ])
    }

    @Test func xoshiro256StarStarReferenceVectors() {
        var rng = Xoshiro256StarStar(state: (1, 2, 3, 4))
        let expected: [UInt64] = [
            11520, 0, 1_509_978_240, 1_215_971_899_390_074_240, 1_216_172_134_540_287_360, 607_988_272_756_665_600,
        ]
        #expect((0..<6).map { _ in rng.next() } == expected)
        var seeded = Xoshiro256StarStar(seed: 42)
        #expect([seeded.next(), seeded.next()] == [1_546_998_764_402_558_742, 6_990_951_692_964_543_102])
    }

    @Test func boundedDrawsStayInRange() {
        var rng = Xoshiro256StarStar(seed: 9)
        var seen = Set<Int>()
        for _ in 0..<10_000 {
            let v = rng.below(7)
            #expect(v >= 0 && v < 7)
            seen.insert(v)
            let u = rng.unit()
            #expect(u >= 0 && u < 1)
            let s = rng.skewed(10, 20, power: 3)
            #expect(s >= 10 && s <= 20)
        }
        #expect(seen.count == 7)
    }

    // MARK: Determinism and shape

    @Test func sameSeedSameEvents() {
        var a = TrafficGenerator(seed: 42)
        var b = TrafficGenerator(seed: 42)
        var c = TrafficGenerator(seed: 43)
        let first = a.nextEvents(3_000)
        #expect(first == b.nextEvents(3_000))
        #expect(first.count == 3_000)
        let other = c.nextEvents(3_000)
        #expect(first != other)
        #expect(first.map(\.traceID) != other.map(\.traceID))
        #expect(a.heavyUser == b.heavyUser && a.heavyUser == TrafficGenerator.heavyUser(for: a.configuration))
    }

    @Test func nextEventsSplitsTheSameStreamAsNextRequest() {
        var whole = TrafficGenerator(seed: 5)
        var stream: [AuditEvent] = []
        for _ in 0..<300 { stream += whole.nextRequest() }
        var chunked = TrafficGenerator(seed: 5)
        var pieces: [AuditEvent] = []
        for size in [1, 7, 0, 13, 100, 3] { pieces += chunked.nextEvents(size) }
        pieces += chunked.nextRequest()  // the rest of the request cut by the last chunk
        while pieces.count < stream.count { pieces += chunked.nextRequest() }
        #expect(Array(pieces.prefix(stream.count)) == stream)
    }

    @Test func independentRequestIDsAreSharedByTheHopsButAreNotTheTraceID() throws {
        var configuration = TrafficGenerator.Configuration()
        configuration.independentRequestIDs = true
        var ids = Set<String>()
        for request in requests(500, configuration) {
            let edge = try #require(request.first)
            let id = try #require(edge.attributes.value(forKey: "request_id")?.stringValue)
            #expect(id.utf8.count == 32 && id != edge.traceID.hex)
            ids.insert(id)
            for span in request.dropFirst() {
                if let forwarded = span.attributes.value(forKey: "guid:x-request-id")?.stringValue {
                    #expect(forwarded == id, "the sidecars pass on the edge's request id")
                }
            }
        }
        #expect(ids.count == 500)
    }

    @Test func requestsAreWellFormedTraces() throws {
        for request in requests(3_000) {
            let edge = try #require(request.first)
            #expect(edge.kind == .access && edge.source == .edge && edge.service == "edge-nginx")
            #expect(edge.parentSpanID == nil && !edge.spanID.isZero && !edge.traceID.isZero)
            #expect(edge.attributes.value(forKey: "request_id")?.stringValue == edge.traceID.hex)
            #expect(edge.flags == 0x01 && edge.isSampled, "the traceparent the edge forwarded is sampled")
            let http = try #require(edge.http)
            #expect(http.method != nil && http.target != nil && http.route != nil && http.clientAddress != nil)
            if http.statusCode != 401 {
                let user = try #require(edge.user)
                #expect(user.subject.hasPrefix("u-") && user.email != nil && !user.groups.isEmpty)
                #expect(user.origin == .edge && user.tokenFingerprint?.count == 32)
            }

            let spans = request.dropFirst()
            if http.statusCode == 401 || http.statusCode == 403 {
                #expect(spans.isEmpty, "denied requests have no downstream spans")
                continue
            }
            #expect((3...12).contains(spans.count), "\(spans.count) spans")
            var byID: [SpanID: AuditEvent] = [edge.spanID: edge]
            for span in spans {
                #expect(span.kind == .span)
                #expect(span.traceID == edge.traceID)
                #expect(span.user == nil, "downstream spans do not carry the user")
                #expect(byID[span.spanID] == nil, "span ids are unique")
                byID[span.spanID] = span
            }
            let first = try #require(spans.first)
            #expect(first.source == .sidecar && first.parentSpanID == edge.spanID)
            #expect(first.workload?.hasPrefix("spiffe://cluster.local/ns/") == true)
            for span in spans {
                let parentID = try #require(span.parentSpanID)
                let parent = try #require(byID[parentID], "parent exists within the request")
                #expect(parent.startTimeUnixNano <= span.startTimeUnixNano, "child starts inside its parent")
                #expect(span.endTimeUnixNano <= parent.endTimeUnixNano, "child ends inside its parent")
                #expect(span.startTimeUnixNano < span.endTimeUnixNano)
                if span.source == .app && span.spanKind == .server {
                    #expect(
                        parent.source == .sidecar && parent.service.hasPrefix(span.service + "."),
                        "each app span has its sidecar")
                }
                if span.source == .sidecar {
                    #expect(span.attributes.value(forKey: "guid:x-request-id")?.stringValue == edge.traceID.hex)
                    #expect(span.attributes.value(forKey: "istio.mesh_id") != nil)
                }
                if span.source == .app {
                    #expect(span.resourceAttributes.value(forKey: "service.name")?.stringValue == span.service)
                    #expect(span.resourceAttributes.value(forKey: "k8s.pod.name") != nil)
                    #expect(span.resourceAttributes.value(forKey: "telemetry.sdk.language") != nil)
                    #expect(!span.scope.name.isEmpty)
                }
            }
        }
    }

    @Test func errorsCarryExceptionsAndStatus() throws {
        let all = requests(20_000)
        var failed = 0
        var withException = 0
        for request in all where (request[0].http?.statusCode ?? 0) >= 500 {
            failed += 1
            #expect(request[0].statusCode == .error)
            // One root cause; it carries an exception event unless only a sidecar saw the failing service.
            let exceptions = request.flatMap(\.events).filter { $0.name == "exception" }
            #expect(exceptions.count <= 1)
            #expect(exceptions.allSatisfy { $0.attributes.value(forKey: "exception.type") != nil })
            withException += exceptions.count
            #expect(request.dropFirst().contains { $0.statusCode == .error })
            // Every span on the path from the edge to the root cause is an error.
            let errors = request.dropFirst().filter { $0.statusCode == .error }
            let ids = Set(request.map(\.spanID))
            #expect(errors.allSatisfy { ids.contains($0.parentSpanID!) })
            #expect(request[1].statusCode == .error, "the gateway span reports the 5xx")
        }
        #expect(withException > failed / 2)
        let share = Double(failed) / Double(all.count)
        #expect(share > 0.012 && share < 0.03, "error share \(share)")
    }

    @Test func deniedShare() {
        let all = requests(20_000)
        let denied = all.filter { [401, 403].contains($0[0].http?.statusCode) }
        let share = Double(denied.count) / Double(all.count)
        #expect(share > 0.022 && share < 0.038, "denied share \(share)")
        #expect(denied.allSatisfy { $0.count == 1 })
        #expect(denied.contains { $0[0].user == nil } && denied.contains { $0[0].user != nil })
    }

    @Test func aboutThirtyPercentReachTheAnalyticsPool() throws {
        let all = requests(20_000)
        var withAnalytics = 0
        for request in all {
            let hops = request.filter(isAnalytics)
            #expect(hops.count <= 1)
            guard let hop = hops.first else { continue }
            withAnalytics += 1
            #expect(hop.spanKind == .client && hop.source == .app)
            #expect(
                hop.attributes.value(forKey: "server.address")?.stringValue == "analytics-pool.sql.azuresynapse.net")
            #expect(hop.attributes.value(forKey: "service.peer.name") != nil)
            #expect(hop.attributes.value(forKey: "db.namespace") != nil)
            let text = try #require(hop.attributes.value(forKey: "db.query.text")?.stringValue)
            #expect(text.hasPrefix("SELECT ") && !text.contains("'"), "sanitised query")
        }
        let share = Double(withAnalytics) / Double(all.count)
        #expect(share > 0.27 && share < 0.33, "analytics share \(share)")
    }

    // MARK: Users

    @Test func usersAreZipfSkewed() {
        let configuration = TrafficGenerator.Configuration(seed: 11)
        let generator = TrafficGenerator(configuration: configuration)
        let all = requests(30_000, configuration)
        var counts: [String: Int] = [:]
        var withUser = 0
        for request in all {
            guard let subject = request[0].user?.subject else { continue }
            counts[subject, default: 0] += 1
            withUser += 1
        }
        let top = counts.max { $0.value < $1.value }!
        #expect(top.key == generator.heavyUser, "the rank-1 user is the busiest")
        let share = Double(top.value) / Double(withUser)
        let uniform = 1.0 / Double(configuration.userCount)
        #expect(share > 100 * uniform, "top share \(share) vs uniform \(uniform)")
        #expect(share > 0.03 && share < 0.15, "top user makes a few percent: \(share)")
        #expect(abs(share - generator.expectedShare(rank: 1)) < 0.015)
        // The ten busiest users make a large share; most users appear rarely if at all.
        let topTen = counts.values.sorted(by: >).prefix(10).reduce(0, +)
        #expect(Double(topTen) / Double(withUser) > 0.2)
        #expect((counts[generator.lightUser] ?? 0) <= 3)
        #expect(generator.heavyUser != generator.lightUser)
        #expect(TrafficGenerator.lightUser(for: configuration) == generator.lightUser)
    }

    // MARK: Time

    @Test func dayNightCurve() throws {
        let configuration = TrafficGenerator.Configuration(seed: 3, days: 2, requestsPerDay: 10_000)
        let all = requests(configuration.totalRequests, configuration)
        var perHour = [Int](repeating: 0, count: 24)
        var previous: UInt64 = 0
        for request in all {
            let start = request[0].startTimeUnixNano
            #expect(start >= previous, "request starts are non-decreasing")
            previous = start
            #expect(start >= configuration.startUnixNano && start < configuration.endUnixNano)
            perHour[Int((start - configuration.startUnixNano) / 3_600_000_000_000 % 24)] += 1
            for event in request { #expect(event.startTimeUnixNano >= start) }
        }
        let business = Double(perHour[9..<18].reduce(0, +)) / 9
        let night = Double(perHour[0..<6].reduce(0, +)) / 6
        #expect(business > 4 * night, "business hours \(business)/h vs night \(night)/h")
        // Exactly requestsPerDay per day.
        let firstDay = all.filter { $0[0].startTimeUnixNano < configuration.startUnixNano + 86_400_000_000_000 }
        #expect(firstDay.count == 10_000)
    }

    @Test func configurationCanBeSizedInEvents() {
        let configuration = TrafficGenerator.Configuration.sized(events: 100_000, days: 2, seed: 8)
        var generator = TrafficGenerator(configuration: configuration)
        var events = 0
        for _ in 0..<configuration.totalRequests { events += generator.nextRequest().count }
        #expect(abs(Double(events) - 100_000) / 100_000 < 0.05, "\(events) events")
    }

    @Test func uninstrumentedServicesAreSeenOnlyThroughTheirSidecars() {
        let events = requests(3_000, .init(serviceCount: 12)).flatMap { $0 }
        let appServices = Set(events.filter { $0.source == .app }.map(\.service))
        let sidecarServices = Set(events.filter { $0.source == .sidecar }.map(\.service))
        for leaf in ["inventory", "pricing", "notifications"] {
            #expect(!appServices.contains(leaf))
        }
        #expect(sidecarServices.contains("inventory.catalog") && sidecarServices.contains("pricing.catalog"))
        #expect(appServices.isSuperset(of: ["orders", "reporting", "catalog", "payments", "accounts", "search"]))
    }

    @Test func serviceCountIsHonoured() {
        for count in [2, 5, 12, 15] {
            let all = requests(2_000, .init(seed: 2, serviceCount: count))
            // Sidecar spans name every service that took part, instrumented or not (`<name>.<namespace>`).
            let services = Set(
                all.flatMap { $0 }.filter { $0.source == .sidecar && !$0.service.hasPrefix("istio-ingressgateway") }
                    .map { $0.service.split(separator: ".")[0] })
            #expect(services.count <= count && services.count >= min(count, 4), "\(count): \(services.sorted())")
            if count > 12 { #expect(services.contains("svc-13")) }
        }
    }
}
