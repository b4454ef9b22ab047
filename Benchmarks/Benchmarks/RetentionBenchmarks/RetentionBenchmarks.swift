// Retention on the realistic synthetic traffic: archive throughput (hot segments recompressed per second on one
// core), the archive tier's size against the hot tier's, and query latency on each tier.
//
// The data set: AUDIT_BENCH_RETENTION_EVENTS events (default 1,000,000) over 7 days in segments of 100,000
// records, written once into AUDIT_BENCH_RETENTION_DATA (default /tmp/audit-trail-retention-<events>)/hot, and
// an archived copy of the same segments in …/archive (made by the retention job itself). Both are reused.
import Benchmark
import Foundation
import LogFormat
import Logging
import StoreQuery
import SyntheticTraffic

final class RetentionFixture: @unchecked Sendable {
    // @unchecked: every field is assigned inside `lock` once, then only read.
    static let shared = RetentionFixture()
    private let lock = NSLock()
    private var _stores: (hot: AuditStore, archive: AuditStore)?

    static let events = Int(ProcessInfo.processInfo.environment["AUDIT_BENCH_RETENTION_EVENTS"] ?? "") ?? 1_000_000
    static let days = 7
    static var root: String {
        ProcessInfo.processInfo.environment["AUDIT_BENCH_RETENTION_DATA"] ?? "/tmp/audit-trail-retention-\(events)"
    }
    static var hot: DataDirectory { DataDirectory(root + "/hot") }
    static var archive: DataDirectory { DataDirectory(root + "/archive") }

    static var logger: Logger {
        var l = Logger(label: "bench")
        l.logLevel = .error
        return l
    }

    let configuration: TrafficGenerator.Configuration = {
        var c = TrafficGenerator.Configuration()
        c.days = RetentionFixture.days
        c.requestsPerDay = Int(
            Double(RetentionFixture.events) / TrafficGenerator.meanEventsPerRequest / Double(RetentionFixture.days))
        return c
    }()

    var day: ClosedRange<UInt64> {
        let start = configuration.startUnixNano + 2 * UnixTime.nanosPerDay
        return start...(start + UnixTime.nanosPerDay - 1)
    }

    /// Both tiers, built on first use; prints their sizes and the ratio.
    func stores() throws -> (hot: AuditStore, archive: AuditStore) {
        let c = configuration
        return try lock.withLock {
            if let s = _stores { return s }
            let marker = Self.root + "/complete-\(c.requestsPerDay)x\(c.days)"
            if !FileManager.default.fileExists(atPath: marker) {
                try? FileManager.default.removeItem(atPath: Self.root)
                var options = WriterOptions()
                options.maxSegmentRecords = 100_000
                for d in [Self.hot, Self.archive] {
                    _ = try SyntheticLoad.write(
                        into: d, configuration: c, requests: c.requestsPerDay * c.days, options: options,
                        logger: Self.logger)
                }
                // Archive every segment of the second copy with the retention job (zlib level 9).
                let report = try RetentionJob(directory: Self.archive, policy: RetentionPolicy(archiveAfterDays: 0))
                    .apply()
                precondition(report.problems.isEmpty, "\(report.problems)")
                precondition(FileManager.default.createFile(atPath: marker, contents: Data()), "cannot write \(marker)")
            }
            let hotBytes = try Self.hot.loadCatalog().entries.reduce(0) { $0 + $1.fileSize }
            let archiveBytes = try Self.archive.loadCatalog().entries.reduce(0) { $0 + $1.fileSize }
            FileHandle.standardError.write(
                Data(
                    String(
                        format: "hot tier %d bytes, archive tier %d bytes: the archive is %.2fx smaller (%d events)\n",
                        hotBytes,
                        archiveBytes, Double(hotBytes) / Double(archiveBytes), Self.events
                    ).utf8))
            let s = (
                try AuditStore(directories: [Self.hot], cacheBytes: 512 << 20),
                try AuditStore(directories: [Self.archive], cacheBytes: 512 << 20)
            )
            _stores = s
            return s
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        warmupIterations: 2,
        maxDuration: .seconds(5),
        maxIterations: 1_000
    )
    let fixture = RetentionFixture.shared

    // MARK: Archiving (one core: the job is single-threaded)

    Benchmark(
        "archive: recompress one 100k-event hot segment to zlib 9 (MB of hot segment per op in the custom metric)",
        configuration: .init(metrics: [.wallClock, .throughput, .custom("hot segment MB x100")], maxIterations: 10)
    ) { benchmark in
        let (hot, _) = try fixture.stores()
        let (dir, entry) = hot.sealedSegments[hot.sealedSegments.count / 2]
        let reader = try SegmentReader(path: dir.path(relative: entry.relativePath), sealed: true)
        benchmark.startMeasurement()
        blackHole(try SegmentArchiver.archived(reader, level: 9))
        benchmark.stopMeasurement()
        benchmark.measurement(.custom("hot segment MB x100"), Int(entry.fileSize * 100 / 1_000_000))
    } setup: {
        _ = try fixture.stores()
    }

    Benchmark(
        "archive: full job step for one segment (recompress, write, fsync, verify, catalog, remove)",
        configuration: .init(metrics: [.wallClock, .throughput], maxIterations: 10)
    ) { benchmark in
        let (hot, _) = try fixture.stores()
        let (dir, entry) = hot.sealedSegments[hot.sealedSegments.count / 2]
        let scratch = DataDirectory(NSTemporaryDirectory() + "/audit-ret-step-\(UInt64.random(in: 0...UInt64.max))")
        defer { try? FileManager.default.removeItem(atPath: scratch.root) }
        try scratch.create()
        try FileManager.default.copyItem(atPath: dir.nodeIDPath, toPath: scratch.nodeIDPath)
        try FileManager.default.copyItem(
            atPath: dir.path(relative: entry.relativePath), toPath: scratch.path(relative: entry.relativePath))
        let job = RetentionJob(directory: scratch, policy: RetentionPolicy(archiveAfterDays: 0))
        benchmark.startMeasurement()
        let report = try job.apply()
        benchmark.stopMeasurement()
        precondition(report.done.count == 1 && report.problems.isEmpty)
    } setup: {
        _ = try fixture.stores()
    }

    // MARK: Queries on each tier (warm, in process)

    for tier in ["hot", "archive"] {
        func store() throws -> AuditStore { tier == "hot" ? try fixture.stores().hot : try fixture.stores().archive }

        Benchmark("query \(tier): light user, one day") { benchmark in
            let s = try store()
            let q = EventQuery(
                terms: [.user(TrafficGenerator.lightUser(for: fixture.configuration))], timeRange: fixture.day)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(try s.search(q, includeOpenSegments: false)) }
        } setup: {
            _ = try fixture.stores()
        }

        Benchmark("query \(tier): heavy user, one day") { benchmark in
            let s = try store()
            let q = EventQuery(
                terms: [.user(TrafficGenerator.heavyUser(for: fixture.configuration))], timeRange: fixture.day)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(try s.search(q, includeOpenSegments: false)) }
        } setup: {
            _ = try fixture.stores()
        }

        Benchmark("query \(tier): one service, one hour, cold block cache") { benchmark in
            let dirs = [tier == "hot" ? RetentionFixture.hot : RetentionFixture.archive]
            let hour = fixture.day.lowerBound + 14 * 3_600_000_000_000
            let q = EventQuery(terms: [.service("orders")], timeRange: hour...(hour + 3_600_000_000_000 - 1))
            for _ in benchmark.scaledIterations {
                let s = try AuditStore(directories: dirs, cacheBytes: 64 << 20)
                blackHole(try s.search(q, includeOpenSegments: false))
            }
        } setup: {
            _ = try fixture.stores()
        }
    }
}
