// Shipping sealed segments and tombstones to S3-compatible object storage (`shipping:` in the config file).
// A segment counts as shipped only once the stored object is checked (size and the SHA-256 stored with it); the
// local copy goes only after that, and only after `keep_local_seconds`. A store that is down or slow makes
// segments wait and the uploads back off; the backlog is in /metrics; past the local disk budget the collector
// refuses new data (503 / UNAVAILABLE), as for a full disk. docs/object-store.md describes it all.
import Crypto
import Dispatch
import Foundation
import LogFormat
import Logging
import ObjectStore
import Prometheus
import RemoteStore
import ServiceLifecycle
import Synchronization
import Yams

public struct ShippingPolicy: Sendable, Equatable {
    /// `s3://bucket/prefix`; empty: shipping is off.
    public var store = ""
    /// The S3 endpoint; empty: AWS_ENDPOINT_URL. Keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY only,
    /// never from the file.
    public var endpoint = ""
    public var region = ""
    /// Seconds between looks at the data directory when nothing failed.
    public var intervalSeconds = 10
    /// Seconds a shipped and verified segment stays on local disk; -1 keeps it for good.
    public var keepLocalSeconds = -1
    /// Object Lock COMPLIANCE for this many days from the upload (the bucket must have Object Lock on); 0: none.
    public var objectLockDays = 0
    /// Bytes of segments the data directory may hold before ingest is refused; 0: no budget.
    public var localBudgetBytes: Int64 = 0
    /// Upper bound of the wait between failed attempts (it doubles from 1 s).
    public var maxBackoffSeconds = 60
    /// Deadline of one request to the store; a store that does not answer counts as down after it.
    public var requestTimeoutSeconds = 30

    public init() {}

    public var enabled: Bool { !store.isEmpty }

    static let keys = [
        "store", "endpoint", "region", "interval_seconds", "keep_local_seconds", "object_lock_days",
        "local_budget_bytes", "max_backoff_seconds", "request_timeout_seconds",
    ]

    /// Reads the `shipping:` section of a collector config file.
    public static func parse(yaml text: String, source: String) throws(CollectorConfig.Problem) -> ShippingPolicy {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch {
            throw CollectorConfig.Problem(messages: ["\(source): not valid YAML: \(error)"])
        }
        guard let map = root as? [String: Any], let section = map["shipping"] else { return ShippingPolicy() }
        guard let m = section as? [String: Any] else {
            throw CollectorConfig.Problem(messages: ["\(source): shipping must be a mapping"])
        }
        var problems: [String] = []
        for k in m.keys.sorted() where !keys.contains(k) { problems.append("\(source): unknown key shipping.\(k)") }
        var p = ShippingPolicy()
        func string(_ k: String, _ set: (String) -> Void) {
            guard let v = m[k] else { return }
            if let s = v as? String { set(s) } else { problems.append("\(source): shipping.\(k) must be a string") }
        }
        func int(_ k: String, min: Int, _ set: (Int) -> Void) {
            guard let v = m[k] else { return }
            guard let i = v as? Int, !(v is Bool) else {
                problems.append("\(source): shipping.\(k) must be an integer")
                return
            }
            guard i >= min else {
                problems.append("\(source): shipping.\(k) must be at least \(min), found \(i)")
                return
            }
            set(i)
        }
        string("store") { p.store = $0 }
        string("endpoint") { p.endpoint = $0 }
        string("region") { p.region = $0 }
        int("interval_seconds", min: 1) { p.intervalSeconds = $0 }
        int("keep_local_seconds", min: -1) { p.keepLocalSeconds = $0 }
        int("object_lock_days", min: 0) { p.objectLockDays = $0 }
        int("local_budget_bytes", min: 0) { p.localBudgetBytes = Int64($0) }
        int("max_backoff_seconds", min: 1) { p.maxBackoffSeconds = $0 }
        int("request_timeout_seconds", min: 1) { p.requestTimeoutSeconds = $0 }
        if !p.store.isEmpty {
            do { _ = try S3Location(url: p.store) } catch {
                problems.append("\(source): shipping.store: \(error.message)")
            }
        }
        guard problems.isEmpty else { throw CollectorConfig.Problem(messages: problems) }
        return p
    }

    /// The client configuration: this section over the AWS_* environment.
    public func s3Configuration(environment env: [String: String]) throws(ObjectStoreError) -> S3Configuration {
        var env = env
        if !endpoint.isEmpty { env["AWS_ENDPOINT_URL"] = endpoint }
        if !region.isEmpty { env["AWS_REGION"] = region }
        var c = try S3Configuration.fromEnvironment(env)
        c.timeoutSeconds = Int64(requestTimeoutSeconds)
        return c
    }
}

/// Object keys in the bucket: the layout `auditq --store` reads (RemoteStore's `BucketLayout`).
public typealias ShippingLayout = BucketLayout

/// Lets the shipper stop ingest when the local disk budget is spent; IngestService asks it before each write.
public final class LocalSpaceGate: Sendable {
    private let refusal = Mutex<String?>(nil)
    public init() {}
    /// Why new data is refused now, or nil.
    public var refusing: String? { refusal.withLock { $0 } }
    func set(_ why: String?) { refusal.withLock { $0 = why } }
}

/// One pass over the data directory at a time; state between passes is the ledger under `<data>/shipped/`.
public final class SegmentShipper: Sendable {
    public let directory: DataDirectory
    public let policy: ShippingPolicy
    public let location: S3Location
    let client: S3Client
    let gate: LocalSpaceGate
    let logger: Logger

    let backlogSegments: Prometheus.Gauge
    let backlogBytes: Prometheus.Gauge
    let localBytes: Prometheus.Gauge
    let shippedObjects: Prometheus.Counter
    let shippedBytes: Prometheus.Counter
    let failures: Prometheus.Counter
    let conflicts: Prometheus.Counter
    let removedLocal: Prometheus.Counter

    public init(
        directory: DataDirectory, policy: ShippingPolicy, client: S3Client, gate: LocalSpaceGate,
        registry: PrometheusCollectorRegistry, logger: Logger
    ) throws(ObjectStoreError) {
        self.directory = directory
        self.policy = policy
        location = try S3Location(url: policy.store)
        self.client = client
        self.gate = gate
        self.logger = logger
        func makeGauge(_ name: String, _ unit: String, _ help: String) -> Prometheus.Gauge {
            registry.makeGauge(
                descriptor: MetricNameDescriptor(
                    namespace: "audit_collector", metricName: name, unitName: unit, helpText: help))
        }
        func makeCounter(_ name: String, _ unit: String, _ help: String) -> Prometheus.Counter {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "audit_collector", metricName: name, unitName: unit, helpText: help))
        }
        backlogSegments = makeGauge("ship_backlog", "objects", "Sealed segments and tombstones not yet shipped")
        backlogBytes = makeGauge("ship_backlog", "bytes", "Bytes of sealed segments and tombstones not yet shipped")
        localBytes = makeGauge("local_segment", "bytes", "Bytes of segment files in the data directory")
        shippedObjects = makeCounter("shipped_objects", "total", "Objects uploaded and verified in the store")
        shippedBytes = makeCounter("shipped_bytes", "total", "Bytes uploaded and verified in the store")
        failures = makeCounter(
            "ship_failures", "total", "Upload or check attempts, or reads of the data directory, that failed (retried)")
        conflicts = makeCounter(
            "ship_conflicts", "total",
            "Keys already taken in the store by a different segment (kept local, never overwritten)")
        removedLocal = makeCounter(
            "local_segments_removed", "total",
            "Shipped, verified segments removed from local disk after keep_local_seconds")
    }

    public var ledgerPath: String { directory.root + "/shipped" }

    /// What one pass did.
    public struct Pass: Sendable, Equatable {
        public var shipped: [String] = []
        public var alreadyThere: [String] = []
        public var conflicts: [String] = []
        public var removedLocal: [String] = []
        public var backlog = 0
        /// The error that ended the pass early (the rest waits for the next one).
        public var failure: String?
    }

    struct Item {
        var ledgerName: String
        var path: String
        var key: String
        var seal: SegmentSeal?
    }

    /// Uploads what is not shipped yet (oldest first), checks each, removes local copies that are due, updates
    /// the backlog and the disk-budget gate. Stops at the first store failure; the rest waits.
    public func runPass(now: Date = Date()) async -> Pass {
        var pass = Pass()
        let items: [Item]
        do { items = try pending() } catch {
            // Said and counted like a store failure: a pass that cannot read the directory ships nothing.
            failures.increment()
            pass.failure = "reading \(directory.root): \(error)"
            logger.warning("shipping: cannot read the data directory; segments wait", metadata: ["error": "\(error)"])
            return pass
        }
        var left = items.count
        var leftBytes = items.reduce(Int64(0)) { $0 + Int64(FileIO.fileSize(path: $1.path) ?? 0) }
        backlogSegments.set(Int64(left))
        backlogBytes.set(leftBytes)
        updateGate()
        for item in items {
            do {
                let outcome = try await ship(item)
                switch outcome {
                case .shipped: pass.shipped.append(item.key)
                case .alreadyThere: pass.alreadyThere.append(item.key)
                case .conflict: pass.conflicts.append(item.key)
                }
                if outcome != .conflict {
                    left -= 1
                    leftBytes -= Int64(FileIO.fileSize(path: item.path) ?? 0)
                    backlogSegments.set(Int64(left))
                    backlogBytes.set(leftBytes)
                }
            } catch {
                failures.increment()
                pass.failure = "\(item.key): \(error)"
                logger.warning("shipping: store unavailable; segments wait", metadata: ["error": "\(error)"])
                break
            }
        }
        pass.backlog = left
        if pass.failure == nil { pass.removedLocal = removeDue(now: now) }
        updateGate()
        return pass
    }

    enum Outcome { case shipped, alreadyThere, conflict }

    /// Sealed segments (hot or archive) and tombstones without a ledger entry, by sequence.
    func pending() throws(LogFormatError) -> [Item] {
        let done = Set((try? FileManager.default.contentsOfDirectory(atPath: ledgerPath)) ?? [])
        var items: [Item] = []
        for entry in try directory.loadCatalog().entries.sorted(by: { $0.sequence < $1.sequence }) {
            let name = DataDirectory.fileName(sequence: entry.sequence, sealed: true)
            guard !done.contains(name) else { continue }
            items.append(
                Item(
                    ledgerName: name, path: directory.path(relative: entry.relativePath),
                    key: ShippingLayout.segmentKey(entry.seal), seal: entry.seal))
        }
        let node = try directory.readNodeID()
        for name in try directory.listTombstoneFiles() {
            guard !done.contains(name), let seq = DataDirectory.sequence(ofFileName: name) else { continue }
            items.append(
                Item(
                    ledgerName: name, path: directory.tombstonesPath + "/" + name,
                    key: ShippingLayout.tombstoneKey(node: node, sequence: seq), seal: nil))
        }
        return items
    }

    /// create-only PUT, then HEAD: the same size and SHA-256 as the local file, or it does not count. A key
    /// already taken is compared, never overwritten: the same bytes (an upload whose check a crash interrupted),
    /// or the same seal (the other tier's copy of the segment) count as shipped; anything else is a conflict.
    func ship(_ item: Item) async throws -> Outcome {
        let path = item.path
        let bytes = try await Self.offThePool { () throws(LogFormatError) -> [UInt8] in try FileIO.readFile(path) }
        let sha = Self.hex(SHA256.hash(data: bytes))
        var metadata = ["sha256": sha]
        if let seal = item.seal {
            metadata["merkle-root"] = seal.merkleRoot.hex
            metadata["records"] = "\(seal.recordCount)"
            metadata["min-time"] = "\(seal.minTime)"
            metadata["max-time"] = "\(seal.maxTime)"
        }
        let lock =
            policy.objectLockDays > 0
            ? ObjectLock(
                mode: .compliance, retainUntil: Date().addingTimeInterval(Double(policy.objectLockDays) * 86_400))
            : nil
        let put = try await client.put(location, key: item.key, body: bytes, metadata: metadata, lock: lock)
        let head = try await client.head(location, key: item.key)
        var outcome: Outcome = .shipped
        if head?.size == UInt64(bytes.count), head?.metadata["sha256"] == sha {
            if put == .alreadyExists { outcome = .alreadyThere }
        } else if put == .alreadyExists, let seal = item.seal, let remoteRoot = head?.metadata["merkle-root"],
            remoteRoot == seal.merkleRoot.hex
        {
            outcome = .alreadyThere
        } else if put == .alreadyExists {
            conflicts.increment()
            logger.error(
                "shipping: the key holds a different object; the local copy is kept and the object left alone",
                metadata: ["key": "\(location.key(item.key))", "local": "\(path)"])
            return .conflict
        } else {
            throw ObjectStoreError(
                .badResponse,
                "\(location.key(item.key)): stored object does not match (size \(head.map { "\($0.size)" } ?? "none") "
                    + "for \(bytes.count), sha256 \(head?.metadata["sha256"] ?? "none")); retried")
        }
        if let seal = item.seal, ShippingLayout.spanDays(seal) > 0 {
            _ = try await client.put(
                location, key: ShippingLayout.spanKey(node: seal.nodeID, days: ShippingLayout.spanDays(seal)), body: [])
        }
        try recordShipped(item, size: bytes.count, sha: sha)
        shippedObjects.increment()
        shippedBytes.increment(by: Int64(bytes.count))
        logger.info(
            "shipped", metadata: ["key": "\(location.key(item.key))", "bytes": "\(bytes.count)", "how": "\(outcome)"])
        return outcome
    }

    /// The ledger entry: key, size, SHA-256 and when the stored object was checked, written atomically.
    func recordShipped(_ item: Item, size: Int, sha: String) throws(LogFormatError) {
        try FileIO.makeDirectories(ledgerPath)
        let text = "\(location.key(item.key))\n\(size)\n\(sha)\n\(Int(Date().timeIntervalSince1970))\n"
        try FileIO.writeAtomically(Array(text.utf8), to: ledgerPath + "/" + item.ledgerName, directory: ledgerPath)
    }

    /// Removes shipped segments whose check is `keep_local_seconds` old: under the catalog lock, the file and
    /// then its catalog entry. The newest sealed segment stays, so its sequence number is never handed out again.
    func removeDue(now: Date) -> [String] {
        guard policy.keepLocalSeconds >= 0 else { return [] }
        var removed: [String] = []
        do {
            let catalog = try directory.loadCatalog()
            guard let newest = catalog.entries.map(\.sequence).max() else { return [] }
            for entry in catalog.entries where entry.sequence != newest {
                let ledger = ledgerPath + "/" + DataDirectory.fileName(sequence: entry.sequence, sealed: true)
                guard let text = try? String(contentsOfFile: ledger, encoding: .utf8) else { continue }
                let lines = text.split(separator: "\n")
                guard lines.count >= 4, let checked = Int(lines[3]),
                    Int(now.timeIntervalSince1970) - checked >= policy.keepLocalSeconds
                else { continue }
                _ = try directory.updateCatalog { (c: inout Catalog) throws(LogFormatError) in
                    let path = directory.path(relative: entry.relativePath)
                    try FileIO.remove(path)
                    try FileIO.fsyncDirectory(String(path[..<path.lastIndex(of: "/")!]))
                    c.remove(nodeID: entry.nodeID, sequence: entry.sequence)
                }
                removedLocal.increment()
                removed.append(entry.relativePath)
                logger.info("shipped segment removed locally", metadata: ["segment": "\(entry.relativePath)"])
            }
        } catch {
            logger.error("shipping: removing local copies failed", metadata: ["error": "\(error)"])
        }
        return removed
    }

    /// Bytes of segment files (active, sealed, archive) against the budget; past it, ingest is refused.
    func updateGate() {
        var total: Int64 = 0
        for dir in [directory.segmentsPath, directory.archivePath] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                total += Int64(FileIO.fileSize(path: dir + "/" + name) ?? 0)
            }
        }
        localBytes.set(total)
        guard policy.localBudgetBytes > 0 else { return }
        gate.set(
            total >= policy.localBudgetBytes
                ? "the collector's local disk budget (\(policy.localBudgetBytes) bytes) is spent until sealed segments "
                    + "are shipped; send it again later" : nil)
    }

    static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// Blocking file work off the cooperative pool.
    static func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws(LogFormatError) -> T)
        async throws(LogFormatError) -> T
    {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<T, LogFormatError>, Never>) in
            DispatchQueue.global(qos: .utility).async {
                do throws(LogFormatError) { c.resume(returning: .success(try body())) } catch {
                    c.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }
}

/// Runs passes every `interval_seconds`, and after a failure waits 1, 2, 4 … up to `max_backoff_seconds`.
public struct ShippingService: Service {
    public let shipper: SegmentShipper

    public init(shipper: SegmentShipper) { self.shipper = shipper }

    public func run() async throws {
        var backoff = 1
        // Cancelled too: every await then fails at once, and the loop would spin.
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let pass = await shipper.runPass()
            let wait: Int
            if pass.failure != nil {
                wait = backoff
                backoff = min(backoff * 2, shipper.policy.maxBackoffSeconds)
            } else {
                backoff = 1
                wait = shipper.policy.intervalSeconds
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(wait)) }
        }
    }
}
