// The traffic model: the fixed tables a `TrafficGenerator` draws from, built once per configuration (routes,
// services and their calls, mesh workloads, SQL queries, SDK languages, users and edge hosts), and the sampling
// over them.
import LogFormat

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

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
