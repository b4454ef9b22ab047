// --store: segments shipped to an object store, read where they lie, beside the local data directories.
import ArgumentParser
import Foundation
import LogFormat
import ObjectStore
import RemoteStore
import StoreQuery
import Synchronization

/// --store s3://bucket/prefix (repeatable), with where the endpoint and keys come from and the local cache.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .customLong("store"),
        help: ArgumentHelp(
            """
            Shipped segments in an object store, s3://bucket/prefix (repeatable): every node in it, beside the local \
            data directories. Endpoint and keys: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
            AWS_REGION, or --s3-config.
            """, valueName: "s3-url"))
    var stores: [String] = []
    @Option(
        name: .customLong("s3-config"),
        help: ArgumentHelp(
            "A file of NAME=value lines in the AWS_* names (overrides the environment). Default: $AUDITQ_S3_CONFIG.",
            valueName: "file"))
    var s3Config: String?
    @Option(
        name: .customLong("cache-dir"),
        help: ArgumentHelp(
            "Local cache of fetched ranges. Default: $AUDITQ_CACHE_DIR, else ~/.cache/auditq.", valueName: "dir"))
    var cacheDir: String?
    @Option(
        name: .customLong("cache-mib"),
        help: ArgumentHelp(
            "Bound on the local cache, MiB (least recently used objects go). Default: $AUDITQ_CACHE_MIB_S3 or 1024.",
            valueName: "mib"))
    var cacheMiB: Int?
    @Option(
        name: .customLong("listing-max-age"),
        help: ArgumentHelp(
            "Reuse a listing of the bucket saved in the cache up to this many seconds ago (segments shipped since "
                + "are not seen). Default: $AUDITQ_LISTING_MAX_AGE or 0: always list.",
            valueName: "seconds"))
    var listingMaxAge: Int?

    func validate() throws {
        for s in stores {
            do { _ = try S3Location(url: s) } catch { throw ValidationError(error.message) }
        }
        if let cacheMiB, cacheMiB < 1 { throw ValidationError("--cache-mib must be at least 1") }
        if let listingMaxAge, listingMaxAge < 0 { throw ValidationError("--listing-max-age must be at least 0") }
    }

    var isEmpty: Bool { stores.isEmpty }

    static let environment = ProcessInfo.processInfo.environment

    var resolvedCacheDir: String { Self.resolvedCacheDir(cacheDir) }

    static func resolvedCacheDir(_ cacheDir: String?) -> String {
        if let cacheDir { return cacheDir }
        if let d = environmentValue("AUDITQ_CACHE_DIR"), !d.isEmpty { return d }
        if let x = environmentValue("XDG_CACHE_HOME"), !x.isEmpty { return x + "/auditq" }
        if let h = environmentValue("HOME"), !h.isEmpty { return h + "/.cache/auditq" }
        return "/tmp/auditq-cache-\(getuid())"
    }

    /// The stores as remote segment sets. With `timeRange`, only the days it needs are listed.
    func remotes(timeRange: ClosedRange<UInt64>? = nil) throws -> [BucketSegments] {
        let options = Plain(
            stores: stores, s3Config: s3Config, cacheDir: cacheDir, cacheMiB: cacheMiB, listingMaxAge: listingMaxAge)
        if timeRange == nil, let early = EarlyListing.take(options) { return [early] }
        return try Self.buckets(options, timeRange: timeRange)
    }

    /// The options `remotes` reads, as plain values (`EarlyListing` finds them before argument-parser runs).
    struct Plain: Equatable {
        var stores: [String]
        var s3Config: String?
        var cacheDir: String?
        var cacheMiB: Int?
        var listingMaxAge: Int?
    }

    static func buckets(_ o: Plain, timeRange: ClosedRange<UInt64>?) throws -> [BucketSegments] {
        guard !o.stores.isEmpty else { return [] }
        let configuration: S3Configuration
        do {
            configuration = try BucketConfiguration.load(
                configFile: o.s3Config ?? environmentValue("AUDITQ_S3_CONFIG"), environment: Self.environment)
        } catch let e as ObjectStoreError {
            throw ValidationError("--store: \(e.message)")
        }
        let client = try S3Client.forQueries(configuration)
        let mib = o.cacheMiB ?? Int(environmentValue("AUDITQ_CACHE_MIB_S3") ?? "") ?? 1024
        let cache = try RangeCacheDirectory(root: resolvedCacheDir(o.cacheDir), capacityBytes: mib << 20)
        StoreFetchReport.register(cache)
        return try o.stores.map {
            let b = BucketSegments(
                client: client, location: try S3Location(url: $0), cache: cache, timeRange: timeRange,
                stats: StoreFetchReport.stats,
                listingMaxAgeSeconds: o.listingMaxAge ?? Int(environmentValue("AUDITQ_LISTING_MAX_AGE") ?? "") ?? 0)
            // The LIST runs while the rest of the store opens.
            b.startListing()
            return b
        }
    }

    /// `range` widened by the hour around a request within which `AuditStore.activity` looks up its trace: what a
    /// bucket must list for an activity (or evidence) query over `range`.
    static func withTraceReach(_ range: ClosedRange<UInt64>) -> ClosedRange<UInt64> {
        let hour: UInt64 = 3_600 * 1_000_000_000
        let lo = range.lowerBound > hour ? range.lowerBound - hour : 0
        let hi = range.upperBound > UInt64.max - hour ? UInt64.max : range.upperBound + hour
        return lo...hi
    }

    /// `data`'s directories, each of which must exist; none when --store is given without --data or $AUDITQ_DATA.
    func localDirectories(_ data: DataOptions) throws -> [DataDirectory] {
        if !stores.isEmpty && data.directories.isEmpty && environmentValue("AUDITQ_DATA") == nil { return [] }
        return try data.existing()
    }

    /// The store over `data`'s directories (none by default when --store is given and $AUDITQ_DATA is unset) and
    /// the object stores.
    /// `provisional`: a bucket whose last listing is in the cache is opened on it while the fresh LIST runs; ask
    /// such a store only through `AuditStore.answer`, which settles it.
    func openStore(_ data: DataOptions, timeRange: ClosedRange<UInt64>? = nil, provisional: Bool = false) throws
        -> AuditStore
    {
        let local = try localDirectories(data)
        let mib = Int(environmentValue("AUDITQ_CACHE_MIB") ?? "") ?? 32
        let store = try AuditStore(
            directories: local, remotes: try remotes(timeRange: timeRange), cacheBytes: mib << 20,
            cacheDecodedBlocks: false, provisional: provisional)
        ProcessLifetime.keep(store)
        return store
    }
}

/// The listing of `auditq trace --store URL` started before the arguments are parsed: argument-parser's reflection
/// and the HTTP client's start take a few ms of a warm trace's 20, which the LIST's round trip can overlap. Only
/// the plain spellings of the options `remotes` reads are recognised (`--store URL` or `--store=URL` once, and
/// likewise `--s3-config`, `--cache-dir`, `--cache-mib`, `--listing-max-age`); `remotes` uses the listing only when
/// the parsed options are the same, else it is dropped (a LIST wasted, nothing else).
enum EarlyListing {
    private static let started = Mutex<(StoreOptions.Plain, BucketSegments)?>(nil)

    static func start(_ arguments: [String]) {
        guard arguments.count > 2, arguments[1] == "trace" else { return }
        let names = ["--store", "--s3-config", "--cache-dir", "--cache-mib", "--listing-max-age"]
        var values: [String: String] = [:]
        var i = 2
        while i < arguments.count, arguments[i] != "--" {
            let a = arguments[i]
            for name in names where a == name || a.hasPrefix(name + "=") {
                guard values[name] == nil else { return }
                if a == name {
                    guard i + 1 < arguments.count else { return }
                    i += 1
                    values[name] = arguments[i]
                } else {
                    values[name] = String(a.dropFirst(name.count + 1))
                }
            }
            i += 1
        }
        guard let store = values["--store"] else { return }
        let options = StoreOptions.Plain(
            stores: [store], s3Config: values["--s3-config"], cacheDir: values["--cache-dir"],
            cacheMiB: values["--cache-mib"].flatMap { Int($0) },
            listingMaxAge: values["--listing-max-age"].flatMap { Int($0) })
        guard let bucket = try? StoreOptions.buckets(options, timeRange: nil).first else { return }
        started.withLock { $0 = (options, bucket) }
    }

    /// The bucket whose listing was started early, when `options` are those it was started for.
    static func take(_ options: StoreOptions.Plain) -> BucketSegments? {
        started.withLock { s in
            defer { s = nil }
            guard let (o, bucket) = s, o == options else { return nil }
            return bucket
        }
    }
}

/// Objects that live until the process exits: an auditq command opens one store and is done when it returns, so
/// tearing down the store's readers, mappings and caches one by one (2 ms of a 20 ms warm query over a bucket) is
/// left to the kernel.
enum ProcessLifetime {
    private static let kept = Mutex<[AuditStore]>([])
    static func keep(_ store: AuditStore) { kept.withLock { $0.append(store) } }
}

/// At exit: the cache trimmed to its bound when this process fetched anything, and with AUDITQ_FETCH_STATS=1 what was fetched, on stderr.
enum StoreFetchReport {
    static let stats = FetchStats()
    static let caches = Mutex<[RangeCacheDirectory]>([])
    static let started = FileIO.monotonicNanos()

    static func register(_ cache: RangeCacheDirectory) {
        let first = caches.withLock { c in
            c.append(cache)
            return c.count == 1
        }
        guard first else { return }
        _ = started
        atexit {
            // Only a process that fetched can have grown the cache past its bound (each one that did trims on its
            // way out), so a warm query, which fetches nothing, does not walk the cache directory.
            if StoreFetchReport.stats.bytes > 0 || StoreFetchReport.stats.gets > 0 {
                for c in StoreFetchReport.caches.withLock({ $0 }) { c.trim() }
            }
            if environmentValue("AUDITQ_FETCH_STATS") == "1" {
                let ms = Double(FileIO.monotonicNanos() - StoreFetchReport.started) / 1e6
                note("store: \(StoreFetchReport.stats.summary); \(String(format: "%.1f", ms)) ms from opening to exit")
            }
        }
    }
}
