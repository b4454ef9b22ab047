// Sealed segments in a bucket, as an `AuditStore` reads them: listed by the key layout, each opened over a sparse
// local cache file whose ranges are fetched with ranged GETs before the reader touches them.
import AsyncHTTPClient
import Foundation
import LogFormat
import ObjectStore
import StoreQuery
import Synchronization

/// What the store was asked for, for figures (`AUDITQ_FETCH_STATS=1` prints them).
public final class FetchStats: Sendable {
    private let state = Mutex(
        (gets: 0, bytes: 0, lists: 0, listNanos: UInt64(0), openNanos: UInt64(0), opened: 0, reused: 0))
    public init() {}
    func opening(listNanos: UInt64, openNanos: UInt64, segments: Int) {
        state.withLock {
            $0.listNanos += listNanos
            $0.openNanos += openNanos
            $0.opened += segments
        }
    }
    /// Wall time spent listing, and opening the listed segments (footer, header, index present), in ns.
    public var listNanos: UInt64 { state.withLock { $0.listNanos } }
    public var openNanos: UInt64 { state.withLock { $0.openNanos } }
    func got(_ bytes: Int) {
        state.withLock {
            $0.gets += 1
            $0.bytes += bytes
        }
    }
    func listed() { state.withLock { $0.lists += 1 } }
    func reusedListing() { state.withLock { $0.reused += 1 } }
    private let provisional = Atomic<Int>(0)
    func openedProvisionally() { provisional.add(1, ordering: .relaxed) }
    /// Stores opened on the saved listing while the fresh one was in flight.
    public var provisionalOpenings: Int { provisional.load(ordering: .relaxed) }
    public var gets: Int { state.withLock { $0.gets } }
    public var bytes: Int { state.withLock { $0.bytes } }
    public var lists: Int { state.withLock { $0.lists } }
    public var summary: String {
        let (listMs, openMs, opened) = state.withLock {
            (Double($0.listNanos) / 1e6, Double($0.openNanos) / 1e6, $0.opened)
        }
        let reused = state.withLock { $0.reused }
        return
            "\(lists) LIST\(reused > 0 ? " (a saved listing reused)" : "")"
            + "\(provisionalOpenings > 0 ? " (opened on the last listing meanwhile)" : ""), "
            + "\(gets) ranged GET, \(bytes) bytes fetched; "
            + "listing \(Self.ms(listMs)) ms, "
            + "opening \(opened) segments \(Self.ms(openMs)) ms"
    }

    static func ms(_ v: Double) -> String { String(Int(v)) + "." + String(Int(v * 10) % 10) }
}

/// Fetches ranges of one object with ranged GETs, several at a time. Errors name the object's URL.
struct S3RangeFetcher: RangeFetcher {
    let client: S3Client
    let location: S3Location
    /// The key relative to the location's prefix.
    let key: String
    let stats: FetchStats
    let width: Int

    var url: String { "s3://\(location.bucket)/\(location.key(key))" }

    func fetch(_ ranges: [Range<Int>]) throws(LogFormatError) -> [[UInt8]] {
        do {
            return try Blocking.run { try await fetchAsync(ranges) }
        } catch let e as LogFormatError {
            throw e
        } catch {
            throw Self.logFormatError(error, url: url)
        }
    }

    func fetchAsync(_ ranges: [Range<Int>]) async throws -> [[UInt8]] {
        try await concurrentMap(ranges, width: width) { r in
            let bytes = try await client.getExactly(
                location, key: key, range: UInt64(r.lowerBound)..<UInt64(r.upperBound))
            stats.got(bytes.count)
            return bytes
        }
    }

    static func logFormatError(_ error: any Error, url: String) -> LogFormatError {
        guard let e = error as? ObjectStoreError else {
            return LogFormatError(.io, "\(error)", path: url)
        }
        if e.code == .notFound { return LogFormatError(.io, "not in the bucket: \(e)", path: url) }
        if e.code == .truncated || e.code == .invalidRange {
            return LogFormatError(.truncated, "the object is shorter than listed: \(e)", path: url)
        }
        return LogFormatError(.io, "\(e)", path: url)
    }
}

/// One sealed segment object of a listing.
public struct ListedSegment: Sendable, Hashable {
    /// The key relative to the location's prefix (`<node>/<day>/<seq>.seg`).
    public var key: String
    public var node: NodeID
    public var sequence: UInt64
    public var size: Int
    public var etag: String
}

/// The sealed segments of every node in `s3://bucket/prefix`.
public final class BucketSegments: RemoteSegments {
    public let client: S3Client
    public let bucket: S3Location
    public let cache: RangeCacheDirectory
    /// When set, only the days this range needs are listed (with each node's span markers).
    public let timeRange: ClosedRange<UInt64>?
    public let stats: FetchStats
    /// Requests in flight at most.
    public let width: Int
    /// A listing this many seconds old or younger, kept in the cache directory, is used instead of listing again
    /// (0: always list). Segments shipped since are not seen until it is older; Tempo's queriers work the same way
    /// with a polled blocklist.
    public let listingMaxAgeSeconds: Int
    /// Bytes read from the end of an object when it is opened (at least the footer); the index head follows in a
    /// second round, the sections a query reads when it reads them. The default, 16 KiB, holds the footer and the
    /// end of the index: its last section, the trace ids', whole when it is that small (sections are written in
    /// field order, trace ids last), so that a cold trace look-up costs no request for it.
    public let tailBytes: Int
    /// Cache files opened by this process, by key, with the ETag they were opened for.
    private let files = Mutex<[String: (etag: String, file: SparseCacheFile)]>([:])
    /// The listing in flight, started before it is needed (`startListing`), and what answered it.
    private let listing = Mutex<ListingState>(ListingState())

    struct ListingState {
        var pending: Task<[ListedSegment], any Error>?
        /// The saved listing the store was opened on while the fresh one was in flight (`provisionalEntries`).
        var provisional: [ListedSegment]?
        /// The fresh listing `settle` waited for, for the next `entries()`.
        var settled: [ListedSegment]?
    }

    public init(
        client: S3Client, location: S3Location, cache: RangeCacheDirectory, timeRange: ClosedRange<UInt64>? = nil,
        stats: FetchStats = FetchStats(), width: Int = 32, tailBytes: Int = 16 << 10,
        listingMaxAgeSeconds: Int = 0
    ) {
        self.listingMaxAgeSeconds = listingMaxAgeSeconds
        self.tailBytes = tailBytes
        self.client = client
        self.bucket = location
        self.cache = cache
        self.timeRange = timeRange
        self.stats = stats
        self.width = width
    }

    public var location: String { bucket.description }

    /// Readers fetch the ranges they touch (index sections, blocks) when they touch them.
    public var fetchesOnDemand: Bool { true }

    public var requestsMade: Int { stats.gets }

    func url(_ key: String) -> String { "s3://\(bucket.bucket)/\(bucket.key(key))" }

    private var rootPrefix: String { bucket.prefix.isEmpty ? "" : bucket.prefix + "/" }

    private func relative(_ fullKey: String) -> String { String(fullKey.dropFirst(rootPrefix.count)) }

    /// The node ids under the prefix.
    public func nodes() async throws -> [NodeID] {
        stats.listed()
        return try await client.listPrefixes(bucket: bucket.bucket, prefix: rootPrefix).compactMap {
            NodeID(hex: String(relative($0).dropLast()))
        }
    }

    /// Every object under one node (segments, tombstones, span markers), relative keys with sizes and ETags.
    public func objects(node: NodeID) async throws -> [ListedObject] {
        stats.listed()
        return try await client.listAll(bucket: bucket.bucket, prefix: rootPrefix + node.hex + "/").map {
            var o = $0
            o.key = relative(o.key)
            return o
        }
    }

    /// One node's segments filed under the days `range` needs: the span markers and the range's own days are
    /// listed together, the days before them only when a marker says segments reach that far.
    func objects(node: NodeID, covering range: ClosedRange<UInt64>) async throws -> [ListedObject] {
        let base = rootPrefix + node.hex + "/"
        let days = BucketLayout.days(covering: range, span: 0)
        let first = try await concurrentMap(["span"] + days, width: width) { day in
            self.stats.listed()
            return try await self.client.listAll(bucket: self.bucket.bucket, prefix: base + day + "/")
        }
        let span = first[0].compactMap { Int($0.key.split(separator: "/").last ?? "") }.max() ?? 0
        var found = first.dropFirst().flatMap { $0 }
        if span > 0 {
            let earlier = BucketLayout.days(covering: range, span: span).filter { !days.contains($0) }
            found += try await concurrentMap(earlier, width: width) { day in
                self.stats.listed()
                return try await self.client.listAll(bucket: self.bucket.bucket, prefix: base + day + "/")
            }.flatMap { $0 }
        }
        return found.map {
            var o = $0
            o.key = relative(o.key)
            return o
        }
    }

    /// The sealed segments the time range needs (every one without a range), by node and sequence. Without a
    /// range, one listing of the whole prefix (every key must be seen anyway); with one, the nodes, then per node
    /// its span markers and the range's days together, then the earlier days a span marker asks for, if any.
    public func listSegments() async throws -> [ListedSegment] {
        if listingMaxAgeSeconds > 0, let cached = cachedListing() { return cached }
        let (settled, pending) = listing.withLock { l in
            defer { (l.settled, l.pending) = (nil, nil) }
            return (l.settled, l.pending)
        }
        if let settled { return settled }
        let segments: [ListedSegment]
        if let pending { segments = try await pending.value } else { segments = try await listSegmentsFromStore() }
        saveListing(segments, always: listingMaxAgeSeconds > 0)
        return segments
    }

    /// Starts listing the bucket now, for `entries()` or `settle()` to collect (nothing when a saved listing young
    /// enough for `listingMaxAgeSeconds` will be used). Idempotent until the listing is collected.
    public func startListing() {
        if listingMaxAgeSeconds > 0 && cachedListing(counting: false) != nil { return }
        listing.withLock { l in
            guard l.pending == nil && l.settled == nil else { return }
            l.pending = Task { try await self.listSegmentsFromStore() }
        }
    }

    /// The catalog entries of the listing saved by the last process to list this location (any age), when every
    /// one of its segments has its footer and index head in the cache: nothing is fetched. The fresh listing is
    /// started first and runs meanwhile; `settle()` waits for it and says whether it differs. Nil when there is no
    /// saved listing, a segment of it is not in the cache, or a saved listing is reused anyway
    /// (`listingMaxAgeSeconds`).
    public func provisionalEntries() -> [CatalogEntry]? {
        guard listingMaxAgeSeconds == 0 else { return nil }
        startListing()
        guard let saved = cachedListing(counting: false, anyAge: true) else { return nil }
        var out: [CatalogEntry] = []
        out.reserveCapacity(saved.count)
        for s in saved {
            guard let file = try? cacheFile(s), let entry = Self.entryIfPresent(s, file) else { return nil }
            out.append(entry)
        }
        listing.withLock { $0.provisional = saved }
        stats.openedProvisionally()
        return out
    }

    /// Waits for the fresh listing when the store was opened on a saved one (`provisionalEntries`), keeps it for
    /// the next `entries()`, and says whether it differs from the saved one (segments added, deleted or replaced).
    public func settle() throws(LogFormatError) -> Bool {
        guard
            let provisional = listing.withLock({ l -> [ListedSegment]? in
                defer { l.provisional = nil }
                return l.provisional
            })
        else { return false }
        let fresh: [ListedSegment]
        do {
            fresh = try Blocking.run {
                let t0 = FileIO.monotonicNanos()
                let fresh = try await self.listSegments()
                self.stats.opening(listNanos: FileIO.monotonicNanos() - t0, openNanos: 0, segments: 0)
                return fresh
            }
        } catch let e as LogFormatError {
            throw e
        } catch {
            throw S3RangeFetcher.logFormatError(error, url: location)
        }
        listing.withLock { $0.settled = fresh }
        return fresh != provisional
    }

    /// The catalog entry of `s` when its cache file holds its header, footer and index head; nil otherwise.
    static func entryIfPresent(_ s: ListedSegment, _ file: SparseCacheFile) -> CatalogEntry? {
        let footerRange = max(0, s.size - FormatConstants.footerSize)..<s.size
        guard file.missing([footerRange], askOthers: false).isEmpty,
            let footer = try? SegmentFooter.parse(fileBytes: file.bytes),
            file.missing(SegmentReader.openingRanges(footer, fileSize: s.size), askOthers: false).isEmpty
        else { return nil }
        return CatalogEntry(
            relativePath: s.key, tier: .hot, seal: footer.seal, blockCount: footer.blockCount,
            fileSize: UInt64(s.size))
    }

    /// The file a listing of this location and range is kept in, when `listingMaxAgeSeconds` allows reusing one.
    var listingPath: String {
        let range = timeRange.map {
            "\($0.lowerBound / BucketLayout.nanosPerDay)-\($0.upperBound / BucketLayout.nanosPerDay)"
        }
        return cache.root + "/" + cache.baseName(of: "listing \(bucket.bucket)/\(bucket.prefix) \(range ?? "all")")
            + ".listing"
    }

    /// A listing saved at most `listingMaxAgeSeconds` ago (`anyAge`: whenever), if any.
    func cachedListing(counting: Bool = true, anyAge: Bool = false) -> [ListedSegment]? {
        var st = stat()
        guard stat(listingPath, &st) == 0,
            anyAge || Int(Date().timeIntervalSince1970) - st.st_mtim.tv_sec <= listingMaxAgeSeconds,
            let bytes = try? FileIO.readFile(listingPath)
        else { return nil }
        var out: [ListedSegment] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 3, let size = Int(f[1]),
                case .segment(let node, _, let seq)? = BucketLayout.parse(String(f[0]))
            else { return nil }
            out.append(ListedSegment(key: String(f[0]), node: node, sequence: seq, size: size, etag: String(f[2])))
        }
        if counting { stats.reusedListing() }
        return out
    }

    /// Saves a fresh listing for the next process: to reuse (`listingMaxAgeSeconds`, `always`: its age matters) or
    /// to open provisionally while it lists again (written only when it changed).
    func saveListing(_ segments: [ListedSegment], always: Bool) {
        let text = segments.map { "\($0.key) \($0.size) \($0.etag.isEmpty ? "-" : $0.etag)" }.joined(separator: "\n")
        let bytes = Array(text.utf8)
        if !always, let old = try? FileIO.readFile(listingPath), old == bytes { return }
        try? FileIO.writeAtomically(bytes, to: listingPath, directory: cache.root)
    }

    func listSegmentsFromStore() async throws -> [ListedSegment] {
        let listed: [ListedObject]
        if let range = timeRange {
            let nodes = try await nodes()
            listed = try await concurrentMap(nodes, width: width) { node -> [ListedObject] in
                try await self.objects(node: node, covering: range)
            }.flatMap { $0 }
        } else {
            stats.listed()
            listed = try await client.listAll(bucket: bucket.bucket, prefix: rootPrefix).map {
                var o = $0
                o.key = relative(o.key)
                return o
            }
        }
        var out: [ListedSegment] = []
        for o in listed {
            guard case .segment(let node, _, let sequence)? = BucketLayout.parse(o.key) else { continue }
            out.append(
                ListedSegment(
                    key: o.key, node: node, sequence: sequence, size: Int(o.size),
                    etag: (o.etag ?? "").filter { $0 != "\"" && !$0.isWhitespace }))
        }
        return out.sorted { ($0.node, $0.sequence) < ($1.node, $1.sequence) }
    }

    /// The cache file of a listed segment (opened once per process).
    public func cacheFile(_ s: ListedSegment) throws(LogFormatError) -> SparseCacheFile {
        if let f = files.withLock({ $0[s.key] }), f.file.count == s.size, f.etag == s.etag { return f.file }
        let fetcher = S3RangeFetcher(client: client, location: bucket, key: s.key, stats: stats, width: width)
        let f = try cache.open(
            object: bucket.bucket + "/" + bucket.key(s.key), identity: s.etag.isEmpty ? "-" : s.etag, size: s.size,
            displayPath: url(s.key), fetcher: fetcher)
        files.withLock { $0[s.key] = (s.etag, f) }
        return f
    }

    /// Makes what a reader opening `s` reads present (the header, footer and index head; not the index's sections)
    /// and returns its catalog entry: the header and the last `tailBytes` (the footer) in one round of ranged
    /// GETs, the index head in a second.
    func prepare(_ s: ListedSegment) async throws -> CatalogEntry {
        let file = try cacheFile(s)
        let fetcher = S3RangeFetcher(client: client, location: bucket, key: s.key, stats: stats, width: width)
        let footerRange = max(0, s.size - FormatConstants.footerSize)..<s.size
        if !file.missing([footerRange]).isEmpty {
            let first = file.missing([
                0..<FormatConstants.fileHeaderSize,
                max(0, s.size - max(tailBytes, FormatConstants.footerSize))..<s.size,
            ])
            try file.fill(Array(zip(first, try await fetcher.fetchAsync(first))))
        }
        let needFooter = file.missing([footerRange])
        if !needFooter.isEmpty {
            try file.fill(Array(zip(needFooter, try await fetcher.fetchAsync(needFooter))))
        }
        let footer: SegmentFooter
        do throws(LogFormatError) { footer = try SegmentFooter.parse(fileBytes: file.bytes) } catch {
            throw error.at(path: url(s.key))
        }
        let rest = file.missing(SegmentReader.openingRanges(footer, fileSize: s.size))
        if !rest.isEmpty { try file.fill(Array(zip(rest, try await fetcher.fetchAsync(rest)))) }
        return CatalogEntry(
            relativePath: s.key, tier: .hot, seal: footer.seal, blockCount: footer.blockCount,
            fileSize: UInt64(s.size))
    }

    public func entries() throws(LogFormatError) -> [CatalogEntry] {
        do {
            return try Blocking.run {
                let t0 = FileIO.monotonicNanos()
                let listed = try await self.listSegments()
                let t1 = FileIO.monotonicNanos()
                let entries = try await concurrentMap(listed, width: self.width) { try await self.prepare($0) }
                self.stats.opening(
                    listNanos: t1 - t0, openNanos: FileIO.monotonicNanos() - t1, segments: entries.count)
                return entries
            }
        } catch let e as LogFormatError {
            throw e
        } catch {
            throw S3RangeFetcher.logFormatError(error, url: location)
        }
    }

    public func open(_ entry: CatalogEntry) throws(LogFormatError) -> SegmentReader {
        guard let file = files.withLock({ $0[entry.relativePath]?.file }) else {
            throw LogFormatError(.io, "not listed in this store", path: url(entry.relativePath))
        }
        return try SegmentReader(source: file, sealed: true)
    }
}

extension S3Client {
    /// A client for queries: its own connection pool, wider than the shared client's eight connections per host,
    /// so that `width` ranged GETs are in flight at once. Lives as long as the process.
    public static func forQueries(_ configuration: S3Configuration, connections: Int = 32) throws -> S3Client {
        try S3Client(configuration, http: QueryHTTP.client(connections))
    }
}

enum QueryHTTP {
    private static let clients = Mutex<[Int: HTTPClient]>([:])
    static func client(_ connections: Int) -> HTTPClient {
        clients.withLock { c in
            if let h = c[connections] { return h }
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(
                idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
            let h = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            c[connections] = h
            return h
        }
    }
}

/// Where the store is and who we are to it: the usual AWS_* variables, overridden by a config file of
/// `NAME=value` lines in the same names (`scripts/ceph-rgw.sh` writes one: s3.env).
public enum BucketConfiguration {
    public static func load(configFile: String?, environment: [String: String]) throws -> S3Configuration {
        var merged = environment
        if let configFile {
            let text = try String(contentsOfFile: configFile, encoding: .utf8)
            for line in text.split(whereSeparator: \.isNewline) {
                let t = line.trimmingCharacters(in: .whitespaces)
                guard !t.isEmpty, !t.hasPrefix("#"), let eq = t.firstIndex(of: "=") else { continue }
                var name = String(t[..<eq]).trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("export ") { name = String(name.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
                var value = String(t[t.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
                if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f {
                    value = String(value.dropFirst().dropLast())
                }
                merged[name] = value
            }
        }
        return try S3Configuration.fromEnvironment(merged)
    }
}
