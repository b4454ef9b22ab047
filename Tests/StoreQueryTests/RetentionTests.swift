// Retention: archive tier (same seals, roots and signatures; smaller), expiry behind tombstones, legal holds,
// crash safety at every step, and hostile inputs (bad policies, damaged archive files, damaged or forged
// tombstones). Expected answers come from a model of what was written, never from the code under test.
import Foundation
import PropertyBased
import StoreQuery
import Synchronization
import SyntheticTraffic
import TestSupport
import Testing

@testable import LogFormat

let day = UnixTime.nanosPerDay
let retentionBase = TrafficGenerator.Configuration.defaultStartUnixNano

/// Synthetic requests on `dayOffset` days after the base, from `seed`.
func trafficEvents(dayOffset: Int, seed: UInt64, requests: Int = 15) -> [AuditEvent] {
    var g = TrafficGenerator(
        configuration: .init(
            seed: seed, startUnixNano: retentionBase + UInt64(dayOffset) * day, days: 1,
            requestsPerDay: max(requests, 1)))
    return (0..<requests).flatMap { _ in g.nextRequest() }
}

/// Writes one sealed segment per batch; returns the catalog entries.
@discardableResult
func writeSegments(
    _ batches: [[AuditEvent]], to dir: DataDirectory, signer: SealSigner? = nil, layout: SealLayout = .columns
) throws -> [CatalogEntry] {
    var options = WriterOptions()
    options.signer = signer
    options.sealLayout = layout
    let writer = try SegmentWriter(directory: dir, options: options, logger: quietLogger)
    var out: [CatalogEntry] = []
    for b in batches {
        try writer.append(b)
        try writer.flush()
        if let e = try writer.seal() { out.append(e) }
    }
    return out
}

func storeRecords(_ dir: DataDirectory) throws -> [StoredRecord] {
    var q = EventQuery()
    q.includeDuplicates = true
    return try AuditStore(directories: [dir]).search(q)
}

func problemsOf(_ dir: DataDirectory, _ options: VerifyOptions = VerifyOptions()) -> [IntegrityProblem] {
    Verifier.verifyDirectory(dir, options: options).problems
}

@Suite struct RetentionPolicyParsingTests {
    @Test func fullPolicyParses() throws {
        let p = try RetentionPolicy.parse(
            yaml: """
                data: ./data
                receivers: {otlp_http: {address: 127.0.0.1:4318}}
                retention:
                  archive_after_days: 7
                  expire_after_days: 400
                  archive_level: 8
                  schedule_interval_seconds: 3600
                  legal_holds:
                    - {name: case-17, user: alice@example.com}
                    - {name: incident, from: 2026-01-01, to: 2026-01-31T12:00:00Z}
                    - {name: keep-these, segments: [3, 4]}
                """)
        #expect(p.archiveAfterDays == 7)
        #expect(p.expireAfterDays == 400)
        #expect(p.archiveLevel == 8)
        #expect(p.scheduleIntervalSeconds == 3600)
        #expect(p.legalHolds.map(\.name) == ["case-17", "incident", "keep-these"])
        #expect(p.legalHolds[0].user == "alice@example.com")
        #expect(p.legalHolds[1].from == UnixTime.parseDay("2026-01-01"))
        #expect(p.legalHolds[1].to == UnixTime.parseInstant("2026-01-31T12:00:00Z"))
        #expect(p.legalHolds[2].segments == [3, 4])
        #expect(try RetentionPolicy.parse(yaml: "data: x\n") == RetentionPolicy())
        #expect(try RetentionPolicy.parse(yaml: "retention:\n") == RetentionPolicy())
    }

    /// Each bad policy is refused with a message naming the key and what is wrong.
    @Test(arguments: [
        (
            "retention: {expire_after_days: -3}",
            "p.yaml: retention.expire_after_days must be between 1 and 1000000, found -3"
        ),
        (
            "retention: {expire_after_days: ten}",
            "p.yaml: retention.expire_after_days must be an integer, found the string \"ten\""
        ),
        ("retention: {expire_after_day: 10}", "p.yaml: unknown key retention.expire_after_day"),
        (
            "retention: {archive_after_days: 30, expire_after_days: 10}",
            "p.yaml: retention.expire_after_days (10) must be greater than archive_after_days (30)"
        ),
        ("retention: {archive_level: 12}", "p.yaml: retention.archive_level must be between 1 and 9, found 12"),
        ("retention: [1, 2]", "p.yaml: retention must be a mapping"),
        ("retention: {legal_holds: {name: x}}", "p.yaml: retention.legal_holds must be a list, found a mapping"),
        ("retention: {legal_holds: [{user: bob}]}", "p.yaml: retention.legal_holds[0]: name is required"),
        ("retention: {legal_holds: [{name: a}]}", "p.yaml: retention.legal_holds[0] (a) covers nothing"),
        (
            "retention: {legal_holds: [{name: a, from: yesterday}]}",
            "p.yaml: retention.legal_holds[0].from must be an ISO 8601 day or instant"
        ),
        (
            "retention: {legal_holds: [{name: a, from: 2026-02-01, to: 2026-01-01}]}",
            "p.yaml: retention.legal_holds[0]: from (2026-02-01T00:00:00.000000000Z) is after to (2026-01-01T23:59:59.999999999Z)"
        ),
        (
            "retention: {legal_holds: [{name: a, segments: [0]}]}",
            "p.yaml: retention.legal_holds[0].segments must be a non-empty list of segment sequence numbers"
        ),
        (
            "retention: {legal_holds: [{name: a, user: x}, {name: a, user: y}]}",
            "p.yaml: retention.legal_holds[1]: a second hold named \"a\""
        ),
        ("retention: {legal_holds: [{name: a, usr: x}]}", "p.yaml: retention.legal_holds[0]: unknown key usr"),
        ("retention: {expire_after_days: [", "p.yaml: not valid YAML"),
    ])
    func badPolicyIsRefusedPrecisely(yaml: String, message: String) {
        do {
            _ = try RetentionPolicy.parse(yaml: yaml, source: "p.yaml")
            Issue.record("accepted \(yaml)")
        } catch {
            #expect(error.messages.contains { $0.hasPrefix(message) }, "\(error.messages)")
        }
    }
}

@Suite struct ArchiveTierTests {
    /// A version 1 segment (rows, arrival order) is archived as version 2 in its own record order: the seal and
    /// signature stay, the records and their ordinals answer the same, verification is clean.
    @Test func versionOneSegmentsAreArchivedAsColumnsInTheirOwnOrder() throws {
        try TempDir.with("ret-v1") { tmp in
            let dir = tmp.dataDirectory
            let signer = SealSigner.generate()
            let entries = try writeSegments(
                (0..<2).map { trafficEvents(dayOffset: $0, seed: UInt64($0) + 7, requests: 200) }, to: dir,
                signer: signer, layout: .rows)
            for e in entries {
                #expect(try SegmentReader(path: dir.path(relative: e.relativePath), sealed: true).header.version == 1)
            }
            let before = try storeRecords(dir)
            let report = try applyWhenLockFree { () throws(LogFormatError) in
                try RetentionJob(directory: dir, policy: RetentionPolicy(archiveAfterDays: 1))
                    .apply(now: retentionBase + 30 * day)
            }
            #expect(report.problems.isEmpty)
            let catalog = try dir.loadCatalog()
            #expect(catalog.entries.map(\.seal) == entries.map(\.seal))
            for e in catalog.entries {
                let r = try SegmentReader(path: dir.path(relative: e.relativePath), sealed: true)
                #expect(r.header.version == FormatConstants.segmentVersionColumns)
                #expect(r.isColumnBlock(0))
            }
            let after = try storeRecords(dir)
            #expect(after.map(\.event) == before.map(\.event))
            #expect(after.map(\.location) == before.map(\.location))
            #expect(problemsOf(dir, VerifyOptions(publicKeys: [signer.publicKey], requireSignatures: true)).isEmpty)
        }
    }

    /// Archiving rewrites every block as zlib columns and keeps the seal, signature, roots and chain; the store
    /// answers the same over the archive tier, the archive is smaller, and evidence proofs hold.
    @Test func archiveKeepsSealsAndAnswersAndShrinks() throws {
        let tmp = TempDir("ret-archive")
        defer { tmp.remove() }
        let dir = tmp.dataDirectory
        let signer = SealSigner.generate()
        let entries = try writeSegments(
            (0..<4).map { trafficEvents(dayOffset: $0, seed: UInt64($0) + 1, requests: 300) }, to: dir, signer: signer)
        let before = try storeRecords(dir)
        let hotBytes = entries.reduce(0) { $0 + $1.fileSize }
        let user = try #require(before.compactMap(\.event.user?.subject).first)
        let byUser = try AuditStore(directories: [dir]).search(EventQuery(terms: [.user(user)]))

        let policy = RetentionPolicy(archiveAfterDays: 1)
        let plan = try RetentionJob(directory: dir, policy: policy).plan(now: retentionBase + 30 * day)
        #expect(plan.items.map(\.action) == Array(repeating: .archive, count: 4))
        #expect(plan.bytesAfter < plan.bytesBefore)
        #expect(try FileIO.listDirectory(dir.archivePath).isEmpty, "plan is a dry run")

        let report = try applyWhenLockFree { () throws(LogFormatError) in
            try RetentionJob(directory: dir, policy: policy).apply(now: retentionBase + 30 * day)
        }
        #expect(report.problems.isEmpty)
        #expect(report.done.count == 4)
        let catalog = try dir.loadCatalog()
        #expect(catalog.entries.allSatisfy { $0.tier == .archive && $0.relativePath.hasPrefix("archive/") })
        #expect(catalog.entries.map(\.seal) == entries.map(\.seal))
        #expect(try dir.listSegmentFiles().sealed.isEmpty)
        let archiveBytes = catalog.entries.reduce(0) { $0 + $1.fileSize }
        // Hot segments are already columns (LZ4 per column); the archive's zlib columns in larger blocks gain
        // less than over rows, and small segments (2,000 events) carry a large share of uncompressed index.
        #expect(Double(hotBytes) / Double(archiveBytes) >= 1.05, "hot \(hotBytes) archive \(archiveBytes)")
        #expect(catalog.entries.allSatisfy { $0.blockCount <= entries.first!.blockCount }, "blocks are merged")
        for e in catalog.entries {
            let r = try SegmentReader(path: dir.path(relative: e.relativePath), sealed: true)
            #expect(r.header.version == FormatConstants.segmentVersionColumns)
            #expect(r.blocks.count > 0)
            for i in r.blocks.indices {
                let h = try BlockHeader.parse(
                    UnsafeRawBufferPointer(rebasing: r.file.bytes[Int(r.blocks[i].offset)...]))
                #expect(h.type == .column)
            }
        }
        // The signature still verifies with the collector's public key, and the chain across the tier holds.
        #expect(problemsOf(dir, VerifyOptions(publicKeys: [signer.publicKey], requireSignatures: true)).isEmpty)
        let after = try storeRecords(dir)
        #expect(after.map(\.event) == before.map(\.event))
        #expect(after.map(\.location) == before.map(\.location))
        #expect(
            try AuditStore(directories: [dir]).search(EventQuery(terms: [.user(user)])).map(\.event)
                == byUser.map(\.event))
        // Inclusion proofs from the archive tier check against the same seals.
        let store = try AuditStore(directories: [dir])
        let proofs = try store.proofs(for: Array(after.prefix(20).map(\.location)))
        #expect(proofs.count == 20)
        for p in proofs { #expect(p.problems(publicKey: signer.publicKey).isEmpty) }
        // Idempotent: nothing left to do.
        let again = try applyWhenLockFree { () throws(LogFormatError) in
            try RetentionJob(directory: dir, policy: policy).apply(now: retentionBase + 30 * day)
        }
        #expect(again.done.isEmpty && again.plan.items.isEmpty)
    }

    /// A query that opened a segment before it moved keeps reading it; one that planned before the move finds
    /// the archive copy.
    @Test func queriesSurviveAMoveUnderThem() throws {
        let tmp = TempDir("ret-move")
        defer { tmp.remove() }
        let dir = tmp.dataDirectory
        try writeSegments(
            [
                trafficEvents(dayOffset: 0, seed: 9, requests: 100),
                trafficEvents(dayOffset: 1, seed: 10, requests: 100),
            ], to: dir)
        let store = try AuditStore(directories: [dir])
        let expected = try store.search(EventQuery()).map(\.event)
        let opened = try store.reader(dir, try #require(store.sealedSegments.first).entry)
        _ = try RetentionJob(directory: dir, policy: RetentionPolicy(archiveAfterDays: 1)).apply(
            now: retentionBase + 10 * day)
        #expect(try opened.scan().count == Int(opened.recordCount))
        #expect(try store.search(EventQuery()).map(\.event) == expected)
        try store.refresh()
        #expect(try store.search(EventQuery()).map(\.event) == expected)
    }

    /// A damaged archive file is reported by verify (file and block), refused by queries, and a damaged archive
    /// copy beside its intact hot file is dropped and made again by the next run.
    @Test func damagedArchiveFile() throws {
        let tmp = TempDir("ret-damaged")
        defer { tmp.remove() }
        let dir = tmp.dataDirectory
        try writeSegments([trafficEvents(dayOffset: 0, seed: 3, requests: 200)], to: dir)
        let hot = dir.path(relative: try #require(try dir.loadCatalog().entries.first).relativePath)
        let hotCopy = try FileIO.readFile(hot)
        _ = try RetentionJob(directory: dir, policy: RetentionPolicy(archiveAfterDays: 1)).apply(
            now: retentionBase + 10 * day)
        let archived = dir.archivePath + "/" + URL(fileURLWithPath: hot).lastPathComponent
        var bytes = try FileIO.readFile(archived)
        bytes[64 + 48 + 10] ^= 0x40  // inside the first block's payload
        try Data(bytes).write(to: URL(fileURLWithPath: archived))
        let problems = problemsOf(dir)
        #expect(problems.contains { $0.kind == .blockDamaged && $0.file == archived && $0.block == 0 }, "\(problems)")
        #expect(throws: LogFormatError.self) { try storeRecords(dir) }

        // An interrupted run's state: the hot file back beside a damaged archive copy.
        try Data(hotCopy).write(to: URL(fileURLWithPath: hot))
        let report = try RetentionJob(directory: dir, policy: RetentionPolicy(archiveAfterDays: 1)).apply(
            now: retentionBase + 10 * day)
        #expect(report.problems.count == 1 && report.problems[0].contains("did not verify"), "\(report.problems)")
        #expect(!FileIO.exists(archived) && FileIO.exists(hot), "the bad copy goes, the good original stays")
        let redo = try RetentionJob(directory: dir, policy: RetentionPolicy(archiveAfterDays: 1)).apply(
            now: retentionBase + 10 * day)
        #expect(redo.problems.isEmpty && redo.done.map(\.action) == [.archive])
        #expect(problemsOf(dir).isEmpty)
        #expect(try storeRecords(dir).count == 0 + Int(try dir.loadCatalog().entries[0].seal.recordCount))
    }
}

@Suite struct ExpiryTests {
    /// Expired segments leave tombstones; verify tells them from missing ones and the chain verifies across.
    @Test func expiredVersusMissing() throws {
        let tmp = TempDir("ret-expire")
        defer { tmp.remove() }
        let dir = tmp.dataDirectory
        let signer = SealSigner.generate()
        let entries = try writeSegments(
            (0..<5).map { trafficEvents(dayOffset: $0 * 10, seed: UInt64($0) + 20) }, to: dir, signer: signer)
        let policy = RetentionPolicy(archiveAfterDays: 5, expireAfterDays: 25)
        // At day 45: segments of days 0, 10, 20 expire (newest record ≥ 25 days old); 30 and 40 archive.
        let report = try applyWhenLockFree { () throws(LogFormatError) in
            try RetentionJob(directory: dir, policy: policy).apply(now: retentionBase + 45 * day + 1)
        }
        #expect(report.problems.isEmpty)
        #expect(report.done.filter { $0.action == .expire }.map(\.sequence) == [1, 2])
        #expect(report.done.filter { $0.action == .archive }.map(\.sequence) == [3, 4])
        let keyed = VerifyOptions(publicKeys: [signer.publicKey], requireSignatures: true)
        let outcome = Verifier.verifyDirectory(dir, options: keyed)
        #expect(outcome.problems.isEmpty, "\(outcome.problems)")
        #expect(outcome.expired.map(\.seal) == Array(entries.prefix(2).map(\.seal)))
        #expect(
            outcome.summary.contains(
                "2 segments (\(entries[0].seal.recordCount + entries[1].seal.recordCount) records) expired by policy"))
        #expect(try Set(storeRecords(dir).map(\.location.segmentSequence)) == [3, 4, 5])

        // A segment removed without a tombstone is missing, not expired.
        try FileIO.remove(
            dir.path(relative: try #require(try dir.loadCatalog().entries.first { $0.sequence == 3 }).relativePath))
        let missing = problemsOf(dir, keyed)
        #expect(
            missing.contains {
                $0.kind == .missingSegment && $0.file.hasSuffix("0000000000000004.seg")
                    && $0.detail.contains("previous segment")
            })
        #expect(missing.contains { $0.kind == .missingSegment && $0.detail.contains("listed in the catalog") })
        #expect(!missing.contains { $0.file.contains("tombstones") })

        // A new writer continues the chain and never reuses an expired sequence.
        try writeSegments([trafficEvents(dayOffset: 50, seed: 99)], to: dir, signer: signer)
        #expect(try dir.loadCatalog().entries.last?.sequence == 6)
    }

    @Test func everythingExpiredThenWriterRestarts() throws {
        let tmp = TempDir("ret-all")
        defer { tmp.remove() }
        let dir = tmp.dataDirectory
        try writeSegments([trafficEvents(dayOffset: 0, seed: 1), trafficEvents(dayOffset: 1, seed: 2)], to: dir)
        _ = try RetentionJob(directory: dir, policy: RetentionPolicy(expireAfterDays: 5)).apply(
            now: retentionBase + 20 * day)
        #expect(try dir.loadCatalog().entries.isEmpty)
        let e = try writeSegments([trafficEvents(dayOffset: 21, seed: 3)], to: dir)
        #expect(e.first?.sequence == 3)
        #expect(e.first?.seal.previousSequence == 2, "the chain continues from the tombstone's root")
        #expect(problemsOf(dir).isEmpty)
    }

    /// Holds by user, by time range and by segment each stop expiry of what they cover, and only that.
    @Test func legalHoldsStopExpiry() throws {
        let tmp = TempDir("ret-holds")
        defer { tmp.remove() }
        let dir = tmp.dataDirectory
        let batches = (0..<6).map { trafficEvents(dayOffset: $0, seed: UInt64($0) + 40, requests: 10) }
        try writeSegments(batches, to: dir)
        // A user who appears in exactly one segment, not the one held by number (sequence 6), picked by name so
        // every run picks the same (a dictionary's order changes from process to process).
        var appearances: [String: Set<Int>] = [:]
        for (i, b) in batches.enumerated() {
            for e in b { if let s = e.user?.subject { appearances[s, default: []].insert(i) } }
        }
        let (user, segs) = try #require(
            appearances.filter { $0.value.count == 1 && !$0.value.contains(5) }.min { $0.key < $1.key })
        let userSegment = UInt64(segs.first! + 1)
        let rangeDay = UInt64(userSegment == 3 ? 4 : 3)  // segment of day 2 or 3 (sequence 3 or 4)
        let policy = RetentionPolicy(
            expireAfterDays: 10,
            legalHolds: [
                .init(name: "case-user", user: user),
                .init(
                    name: "case-range", from: retentionBase + (rangeDay - 1) * day + day / 2,
                    to: retentionBase + (rangeDay - 1) * day + day / 2 + 1_000),
                .init(name: "case-seg", segments: [6]),
            ])
        let plan = try RetentionJob(directory: dir, policy: policy).plan(now: retentionBase + 30 * day)
        let held = Dictionary(
            uniqueKeysWithValues: plan.items.filter { $0.action == .held }.map { ($0.sequence, $0.holds) })
        #expect(held[userSegment] == ["case-user"] || held[userSegment]?.contains("case-user") == true)
        #expect(held[rangeDay]?.contains("case-range") == true)
        #expect(held[6] == ["case-seg"])
        let report = try applyWhenLockFree { () throws(LogFormatError) in
            try RetentionJob(directory: dir, policy: policy).apply(now: retentionBase + 30 * day)
        }
        let kept = Set(try dir.loadCatalog().entries.map(\.sequence))
        #expect(kept == Set(held.keys))
        #expect(Set(report.done.map(\.sequence)) == Set<UInt64>(1...6).subtracting(held.keys))
        #expect(problemsOf(dir).isEmpty)
    }

    /// Damaged and forged tombstones are reported precisely; a forged tombstone never removes a live segment.
    @Test func hostileTombstones() throws {
        let tmp = TempDir("ret-tomb")
        defer { tmp.remove() }
        let dir = tmp.dataDirectory
        let signer = SealSigner.generate()
        let entries = try writeSegments(
            (0..<3).map { trafficEvents(dayOffset: $0, seed: UInt64($0) + 60) }, to: dir, signer: signer)
        let keyed = VerifyOptions(publicKeys: [signer.publicKey])
        _ = try RetentionJob(directory: dir, policy: RetentionPolicy(expireAfterDays: 10)).apply(
            now: retentionBase + 11 * day)
        // Only segment 1 (day 0) was 10 days old.
        let path1 = dir.tombstonePath(sequence: 1)
        let good = try FileIO.readFile(path1)
        #expect(problemsOf(dir, keyed).isEmpty)

        // Damage: one flipped bit.
        var damaged = good
        damaged[40] ^= 0x01
        try Data(damaged).write(to: URL(fileURLWithPath: path1))
        var p = problemsOf(dir, keyed)
        #expect(
            p.contains { $0.kind == .tombstoneInvalid && $0.file == path1 && $0.detail.contains("checksum") }, "\(p)")
        #expect(
            p.contains { $0.kind == .missingSegment && $0.detail.contains("previous segment") },
            "without it, segment 1 is missing")

        // Forgery 1: a tombstone that claims an earlier expiry than its policy allowed.
        var early = try Tombstone.decode(good)
        early.expiredAtUnixNano = early.seal.maxTime + day
        try Data(early.encoded()).write(to: URL(fileURLWithPath: path1))
        p = problemsOf(dir, keyed)
        #expect(p.contains { $0.kind == .tombstoneInvalid && $0.detail.contains("before its policy allowed") }, "\(p)")

        // Forgery 2: a tombstone for live segment 2 with a made-up seal; apply must not delete segment 2.
        var fake = try Tombstone.decode(good)
        fake.seal = entries[1].seal
        fake.seal.merkleRoot = Digest32.zero
        try Data(try Tombstone.decode(good).encoded()).write(to: URL(fileURLWithPath: path1))
        try Data(fake.encoded()).write(to: URL(fileURLWithPath: dir.tombstonePath(sequence: 2)))
        p = problemsOf(dir, keyed)
        #expect(
            p.contains { $0.kind == .tombstoneInvalid && $0.detail.contains("still there with a different seal") },
            "\(p)")
        let report = try RetentionJob(directory: dir, policy: RetentionPolicy(expireAfterDays: 1000)).apply(
            now: retentionBase + 11 * day)
        #expect(report.problems.contains { $0.contains("not the segment's") }, "\(report.problems)")
        #expect(FileIO.exists(dir.path(relative: entries[1].relativePath)))
        try FileIO.remove(dir.tombstonePath(sequence: 2))

        // Forgery 3: segment 2 deleted and a tombstone written with its true seal but no valid signature.
        try FileIO.remove(dir.path(relative: entries[1].relativePath))
        var forged = try Tombstone.decode(good)
        forged.seal = entries[1].seal
        forged.signature = [UInt8](repeating: 7, count: 64)
        forged.expiredAtUnixNano = entries[1].seal.maxTime + 20 * day
        try Data(forged.encoded()).write(to: URL(fileURLWithPath: dir.tombstonePath(sequence: 2)))
        p = problemsOf(dir, keyed)
        #expect(p.contains { $0.kind == .signatureInvalid && $0.file == dir.tombstonePath(sequence: 2) }, "\(p)")

        // Not a tombstone at all, and a newer version.
        try Data("not a tombstone at all, just some text that is long enough to be read".utf8).write(
            to: URL(fileURLWithPath: path1))
        #expect(
            problemsOf(dir, keyed).contains { $0.kind == .tombstoneInvalid && $0.detail.contains("magic AQTOMBST") })
        var newer = good
        newer[8] = 2
        #expect(throws: LogFormatError.self) { try Tombstone.decode(newer) }
        do { _ = try Tombstone.decode(newer) } catch { #expect(error.code == .unsupportedVersion) }
    }
}

/// Stops a job at the `hit`-th time it reaches `point`.
final class CrashAt: Sendable {
    let point: RetentionCrashPoint
    let hit: Int
    let seen = Mutex(0)
    init(_ point: RetentionCrashPoint, hit: Int) {
        self.point = point
        self.hit = hit
    }
    func check(_ p: RetentionCrashPoint) throws(LogFormatError) {
        guard p == point else { return }
        let n = seen.withLock { (v: inout Int) -> Int in
            v += 1
            return v
        }
        if n == hit { throw LogFormatError(RetentionJob.crashCode, "crash at \(p)") }
    }
}

@Suite struct RetentionPropertyTests {
    struct ModelSegment {
        var sequence: UInt64
        var events: [AuditEvent]
        var maxTime: UInt64 { events.map(\.startTimeUnixNano).max() ?? 0 }
        var minTime: UInt64 { events.map(\.startTimeUnixNano).min() ?? 0 }
    }

    static let holdUserRank = 4
    static let policy = RetentionPolicy(
        archiveAfterDays: 7, expireAfterDays: 30,
        legalHolds: [
            .init(name: "by-user", user: TrafficGenerator(seed: 1).userSubject(rank: holdUserRank)),
            .init(name: "by-range", from: retentionBase + 12 * day, to: retentionBase + 13 * day),
            .init(name: "by-segment", segments: [2]),
        ])

    static func held(_ s: ModelSegment) -> Bool {
        let user = TrafficGenerator(seed: 1).userSubject(rank: holdUserRank)
        if s.sequence == 2 { return true }
        if s.minTime <= retentionBase + 13 * day && s.maxTime >= retentionBase + 12 * day { return true }
        return s.events.contains { $0.user?.subject == user || $0.user?.email == user }
    }

    /// Random sequences of ingest (into a live writer), seal, collector restart, clock advance, plan, apply and
    /// apply killed at a random crash point. After every step: verify passes; every record the policy keeps is
    /// in the store exactly as written; after every completed apply, nothing past expiry without a hold is.
    @Test func randomRetentionHistoriesKeepWhatPolicyKeeps() async throws {
        await propertyCheck(count: 12, input: Gen.uint64()) { seed in
            do { try Self.run(seed: seed) } catch { Issue.record("seed \(seed): \(error)") }
        }
    }

    static func run(seed: UInt64) throws {
        var g = SplitMix(seed)
        let tmp = TempDir("ret-prop")
        defer { tmp.remove() }
        let dir = tmp.dataDirectory
        var writer: SegmentWriter? = try SegmentWriter(directory: dir, logger: quietLogger)
        var sealed: [ModelSegment] = []
        var open: [AuditEvent] = []
        var now = retentionBase
        var expiredByApply: Set<UInt64> = []
        var steps: [String] = []

        func check(afterCompleteApply: Bool) throws {
            let outcome = Verifier.verifyDirectory(dir)
            #expect(outcome.problems.isEmpty, "seed \(seed) after \(steps): \(outcome.problems)")
            let tombstoned = Set(try dir.loadTombstones().tombstones.map(\.tombstone.seal.sequence))
            let stored = Dictionary(grouping: try storeRecords(dir), by: \.location.segmentSequence)
            for s in sealed {
                if tombstoned.contains(s.sequence) {
                    #expect(!held(s), "seed \(seed): held segment \(s.sequence) expired after \(steps)")
                    #expect(s.maxTime + 30 * day <= now, "seed \(seed): segment \(s.sequence) expired early")
                    #expect(stored[s.sequence] == nil)
                    continue
                }
                let got = (stored[s.sequence] ?? []).sorted { $0.location.ordinal < $1.location.ordinal }.map(\.event)
                #expect(
                    Set(got.map(\.spanID)) == Set(s.events.map(\.spanID)) && got.count == s.events.count,
                    "seed \(seed): segment \(s.sequence) lost records after \(steps)")
                if afterCompleteApply {
                    let due = s.maxTime + 30 * day <= now
                    #expect(
                        !(due && !held(s)),
                        "seed \(seed): segment \(s.sequence) kept past expiry without a hold after \(steps)")
                }
            }
            if let seq = writer?.activeSequence {
                #expect((stored[seq] ?? []).count == open.count, "seed \(seed): unsealed records after \(steps)")
            }
        }

        func sealNow() throws {
            guard let w = writer, let seq = w.activeSequence else { return }
            if try w.seal() != nil { sealed.append(ModelSegment(sequence: seq, events: open)) }
            open = []
        }

        let ops = 10 + Int(g.next() % 8)
        for _ in 0..<ops {
            switch g.next() % 10 {
            case 0, 1, 2:
                let dayOffset = Int(g.next() % 50)
                let events = trafficEvents(dayOffset: dayOffset, seed: g.next(), requests: 8)
                try writer!.append(events)
                try writer!.flush()
                open += events
                steps.append("ingest(day \(dayOffset))")
            case 3:
                try sealNow()
                steps.append("seal")
            case 4:
                // The collector dies and restarts: recovery seals what it had written, under the same sequence.
                let seq = writer?.activeSequence
                writer = nil
                writer = try SegmentWriter(directory: dir, logger: quietLogger)
                if let seq, !open.isEmpty { sealed.append(ModelSegment(sequence: seq, events: open)) }
                open = []
                steps.append("restart")
            case 5:
                let days = 1 + g.next() % 20
                now += days * day
                steps.append("advance \(days)d")
            case 6:
                let plan = try RetentionJob(directory: dir, policy: policy).plan(now: now, estimate: false)
                for item in plan.items where item.action == .expire {
                    let s = try #require(sealed.first { $0.sequence == item.sequence })
                    #expect(!held(s) && s.maxTime + 30 * day <= now)
                }
                steps.append("plan")
            case 7, 8:
                let point = RetentionCrashPoint.allCases[Int(g.next() % UInt64(RetentionCrashPoint.allCases.count))]
                let crash = CrashAt(point, hit: 1 + Int(g.next() % 3))
                var job = RetentionJob(directory: dir, policy: policy)
                job.crashHook = { p throws(LogFormatError) in try crash.check(p) }
                steps.append("apply killed at \(point)#\(crash.hit)")
                let outcome = Result { () throws(LogFormatError) -> RetentionJob.Report in
                    try applyWhenLockFree { () throws(LogFormatError) in try job.apply(now: now) }
                }
                if case .failure(let error) = outcome, error.code != RetentionJob.crashCode { throw error }
                if case .success(let report) = outcome {
                    #expect(report.problems.isEmpty, "\(report.problems)")
                    steps[steps.count - 1] = "apply (no crash)"
                    try check(afterCompleteApply: true)
                    continue
                }
            default:
                let r = try applyWhenLockFree { () throws(LogFormatError) in
                    try RetentionJob(directory: dir, policy: policy).apply(now: now)
                }
                #expect(r.problems.isEmpty, "seed \(seed): \(r.problems)")
                expiredByApply.formUnion(r.done.filter { $0.action == .expire }.map(\.sequence))
                steps.append("apply")
                try check(afterCompleteApply: true)
                continue
            }
            try check(afterCompleteApply: false)
        }
        // Restart and a complete run finish whatever a crash left.
        try sealNow()
        writer = nil
        let r = try applyWhenLockFree { () throws(LogFormatError) in
            try RetentionJob(directory: dir, policy: policy).apply(now: now)
        }
        #expect(r.problems.isEmpty)
        steps.append("final apply")
        try check(afterCompleteApply: true)
        let again = try RetentionJob(directory: dir, policy: policy).plan(now: now, estimate: false)
        #expect(again.items.allSatisfy { $0.action == .held }, "seed \(seed): apply is not idempotent: \(again.items)")
    }
}
