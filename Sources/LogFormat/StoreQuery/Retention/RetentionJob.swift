import Glibc
// The retention job (docs/format/data-directory.md, "Retention"): archives sealed segments into the archive
// tier (zlib, same seals and roots), expires old ones behind a tombstone, and honours legal holds. `plan` is a
// dry run; `apply` does the work in a crash-safe order, finishes whatever an interrupted run left, and may run
// while a collector writes and queries read: it only touches sealed segments, and the catalog only under its lock.
import LogFormat
import Logging

/// The points between the durable steps of `apply`, where a test can stop the job as a crash would.
public enum RetentionCrashPoint: String, Sendable, CaseIterable {
    /// The archive copy is written and fsynced under its temporary name.
    case archiveTempWritten
    /// The verified archive copy has its final name; the catalog still names the hot file.
    case archiveRenamed
    /// The catalog names the archive copy; the hot file is still there.
    case archiveCataloged
    /// The tombstone is durable; the catalog still lists the segment.
    case tombstoneWritten
    /// The catalog no longer lists the segment; its file is still there.
    case expiryCataloged
}

public struct RetentionPlan: Sendable {
    public enum Action: String, Sendable, Hashable {
        /// Recompress a hot segment into the archive tier.
        case archive
        /// Remove a segment past its expiry, leaving a tombstone.
        case expire
        /// Past its expiry but kept: a legal hold covers it.
        case held
        /// Finish what an interrupted run left (an archive copy to publish, an expired file to remove).
        case finish
    }

    public struct Item: Sendable, Hashable {
        public var action: Action
        public var relativePath: String
        public var nodeID: NodeID
        public var sequence: UInt64
        public var tier: StorageTier
        public var recordCount: UInt64
        public var minTime: UInt64
        public var maxTime: UInt64
        public var bytesBefore: UInt64
        /// After the action: the archive size (estimated by `plan` from a sample of blocks, exact after
        /// `apply`), the tombstone's size for an expiry, unchanged for a hold.
        public var bytesAfter: UInt64
        /// Names of the legal holds that cover the segment.
        public var holds: [String]
        public var note: String

        public init(
            action: Action, relativePath: String, nodeID: NodeID, sequence: UInt64, tier: StorageTier,
            recordCount: UInt64, minTime: UInt64, maxTime: UInt64, bytesBefore: UInt64, bytesAfter: UInt64,
            holds: [String], note: String
        ) {
            self.action = action
            self.relativePath = relativePath
            self.nodeID = nodeID
            self.sequence = sequence
            self.tier = tier
            self.recordCount = recordCount
            self.minTime = minTime
            self.maxTime = maxTime
            self.bytesBefore = bytesBefore
            self.bytesAfter = bytesAfter
            self.holds = holds
            self.note = note
        }
    }

    public init(now: UInt64, items: [Item], unchanged: Int) {
        self.now = now
        self.items = items
        self.unchanged = unchanged
    }

    public var now: UInt64
    public var items: [Item]
    /// Segments the policy leaves where they are.
    public var unchanged: Int

    public var bytesBefore: UInt64 { items.reduce(0) { $0 + $1.bytesBefore } }
    public var bytesAfter: UInt64 { items.reduce(0) { $0 + $1.bytesAfter } }
    public func count(_ a: Action) -> Int { items.filter { $0.action == a }.count }
}

public struct RetentionJob: Sendable {
    public let directory: DataDirectory
    public let policy: RetentionPolicy
    /// Called at each crash point; throwing stops the job there, exactly as a crash would. A test hook, so
    /// `package`: visible to the tests and auditq of this package, not to users of the library.
    package var crashHook: (@Sendable (RetentionCrashPoint) throws(LogFormatError) -> Void)?
    /// A pause after each durable step (tests that kill a real process use it to land between steps).
    package var stepDelayNanos: UInt64 = 0

    public init(directory: DataDirectory, policy: RetentionPolicy) {
        self.directory = directory
        self.policy = policy
    }

    static let dayNanos = UnixTime.nanosPerDay

    // MARK: Plan

    /// What `apply` would do at `now`, without changing anything.
    public func plan(now: UInt64 = FileIO.nowUnixNano(), estimate: Bool = true) throws(LogFormatError) -> RetentionPlan
    {
        var items = try pending()
        let catalog = try directory.currentCatalog(repair: false)
        let finishing = Set(items.map(\.sequence))
        var unchanged = 0
        for entry in catalog.entries where !finishing.contains(entry.sequence) {
            let seal = entry.seal
            let age = now > seal.maxTime ? now - seal.maxTime : 0
            let expire = policy.expireAfterDays.map { age >= UInt64($0) * Self.dayNanos } ?? false
            let archive =
                entry.tier == .hot && (policy.archiveAfterDays.map { age >= UInt64($0) * Self.dayNanos } ?? false)
            guard expire || archive else {
                unchanged += 1
                continue
            }
            var item = RetentionPlan.Item(
                action: .archive, relativePath: entry.relativePath, nodeID: seal.nodeID, sequence: seal.sequence,
                tier: entry.tier,
                recordCount: seal.recordCount, minTime: seal.minTime, maxTime: seal.maxTime,
                bytesBefore: entry.fileSize,
                bytesAfter: entry.fileSize, holds: [], note: "")
            if expire {
                item.holds = try holds(covering: entry)
                if item.holds.isEmpty {
                    item.action = .expire
                    item.bytesAfter = UInt64(Tombstone.fixedSize + 4 + policy.summary.utf8.count + 2)
                    item.note = "newest record \(age / Self.dayNanos) days old"
                    items.append(item)
                    continue
                }
                item.action = .held
                item.note = "held by " + item.holds.joined(separator: ", ")
                items.append(item)
                guard archive else { continue }
                item.holds = []
            }
            item.action = .archive
            item.note = "newest record \(age / Self.dayNanos) days old"
            if estimate {
                item.bytesAfter = try estimateArchivedSize(entry)
            }
            items.append(item)
        }
        return RetentionPlan(now: now, items: items, unchanged: unchanged)
    }

    /// Names of the legal holds that cover a segment.
    func holds(covering entry: CatalogEntry) throws(LogFormatError) -> [String] {
        try Self.holds(policy, covering: entry) { () throws(LogFormatError) in
            try SegmentReader(path: directory.path(relative: entry.relativePath), sealed: true)
        }
    }

    /// Names of `policy`'s legal holds that cover a segment, opening its reader with `open` only when a hold
    /// names a user (a segment in a bucket is read the same way as a local one).
    package static func holds(
        _ policy: RetentionPolicy, covering entry: CatalogEntry,
        open: () throws(LogFormatError) -> SegmentReader
    ) throws(LogFormatError) -> [String] {
        var names: [String] = []
        var reader: SegmentReader?
        for hold in policy.legalHolds {
            if !hold.segments.isEmpty {
                if hold.segments.contains(entry.sequence) { names.append(hold.name) }
                continue
            }
            if let range = hold.timeRange, !entry.overlaps(range) { continue }
            if let user = hold.user {
                if reader == nil { reader = try open() }
                guard let index = reader?.index else { continue }
                let postings: [UInt32]
                do { postings = try index.postings(.user, .string(user)) } catch { throw error.at(path: reader?.path) }
                if postings.isEmpty { continue }
                if let range = hold.timeRange, let r = reader {
                    // Held when one of the user's records starts within the range.
                    var out: [StoredRecord] = []
                    try r.records(at: postings, timeRange: range, cache: nil, into: &out)
                    if out.isEmpty { continue }
                }
            }
            names.append(hold.name)
        }
        return names
    }

    /// The archive size of a segment, from archiving a run of its blocks from the middle (about 16,384 records,
    /// or all when the segment is small) the way `SegmentArchiver` does, scaled by records to the whole segment;
    /// the index keeps about its size. The sample is a quarter of an archive block, so a plan stays cheap; its
    /// block, holding fewer rows, errs by a few per cent on the large side.
    func estimateArchivedSize(_ entry: CatalogEntry) throws(LogFormatError) -> UInt64 {
        let reader = try SegmentReader(path: directory.path(relative: entry.relativePath), sealed: true)
        let n = reader.blocks.count
        guard n > 0, reader.recordCount > 0 else { return entry.fileSize }
        let sampleRecords = 16_384
        // From the middle when the second half holds a full sample, else from the start.
        var first = reader.blocks[(n / 2)...].reduce(0) { $0 + Int($1.recordCount) } >= sampleRecords ? n / 2 : 0
        var end = first
        var taken = 0
        while end < n && taken < sampleRecords {
            taken += Int(reader.blocks[end].recordCount)
            end += 1
        }
        if taken == 0 { first = 0 }
        let sample = try SegmentArchiver.archivedDataBytes(reader, blocks: first..<end, level: policy.archiveLevel)
        let dataStored = reader.blocks.reduce(0) { $0 + Int($1.storedLength) + FormatConstants.blockHeaderSize }
        let scaled = Double(sample.bytes) * Double(reader.recordCount) / Double(max(sample.records, 1))
        return entry.fileSize - UInt64(dataStored) + UInt64(scaled.rounded())
    }

    /// Work an interrupted run left: segments in both tiers, and segment files beside their tombstones.
    func pending() throws(LogFormatError) -> [RetentionPlan.Item] {
        var items: [RetentionPlan.Item] = []
        let archived = Set(try directory.listArchiveFiles())
        let tombstones = try directory.loadTombstones().tombstones
        let tombstoned = Set(tombstones.map(\.tombstone.seal.sequence))
        for name in try directory.listSegmentFiles().sealed where archived.contains(name) {
            guard let seq = DataDirectory.sequence(ofFileName: name), !tombstoned.contains(seq) else { continue }
            let size = UInt64(FileIO.fileSize(path: directory.segmentsPath + "/" + name) ?? 0)
            items.append(
                RetentionPlan.Item(
                    action: .finish, relativePath: "segments/" + name, nodeID: NodeID(high: 0, low: 0), sequence: seq,
                    tier: .hot, recordCount: 0, minTime: 0, maxTime: 0, bytesBefore: size, bytesAfter: 0, holds: [],
                    note: "archived copy in place; remove the hot file"))
        }
        for (_, t) in tombstones {
            for relative in ["segments/", "archive/"].map({
                $0 + DataDirectory.fileName(sequence: t.seal.sequence, sealed: true)
            })
            where FileIO.exists(directory.path(relative: relative)) {
                items.append(
                    RetentionPlan.Item(
                        action: .finish, relativePath: relative, nodeID: t.seal.nodeID, sequence: t.seal.sequence,
                        tier: relative.hasPrefix("archive/") ? .archive : .hot, recordCount: t.seal.recordCount,
                        minTime: t.seal.minTime, maxTime: t.seal.maxTime,
                        bytesBefore: UInt64(FileIO.fileSize(path: directory.path(relative: relative)) ?? 0),
                        bytesAfter: 0, holds: [],
                        note: "expired (tombstone written); remove the file"))
            }
        }
        return items
    }

    // MARK: Apply

    public struct Report: Sendable {
        public var plan: RetentionPlan
        /// Items done, with their actual sizes after.
        public var done: [RetentionPlan.Item]
        /// Problems that stopped an item (the item is left as it was; the next run tries again).
        public var problems: [String]
        /// True when another retention job held the lock and nothing was done.
        public var busy = false

        public init(plan: RetentionPlan, done: [RetentionPlan.Item], problems: [String], busy: Bool = false) {
            self.plan = plan
            self.done = done
            self.problems = problems
            self.busy = busy
        }
    }

    /// Applies the policy at `now`. Takes the directory's retention lock (without waiting: when another job
    /// holds it, nothing is done and `busy` is set). Errors from one segment are reported and the job moves on.
    public func apply(now: UInt64 = FileIO.nowUnixNano(), logger: Logger? = nil) throws(LogFormatError) -> Report {
        guard let lock = try DataDirectory.tryLock(directory.retentionLockPath) else {
            return Report(plan: RetentionPlan(now: now, items: [], unchanged: 0), done: [], problems: [], busy: true)
        }
        defer { FileIO.close(lock) }
        try directory.create()
        // Temporary archive copies of an interrupted run are incomplete or unverified: start them again.
        for name in try FileIO.listDirectory(directory.archivePath)
        where name.hasSuffix(DataDirectory.sealedSuffix + ".tmp") {
            try FileIO.remove(directory.archivePath + "/" + name)
        }
        let plan = try self.plan(now: now, estimate: false)
        var report = Report(plan: plan, done: [], problems: [])
        for item in plan.items where item.action != .held {
            do throws(LogFormatError) {
                var done = item
                switch item.action {
                case .finish: try finish(item)
                case .archive: done.bytesAfter = try archive(item)
                case .expire: done.bytesAfter = try expire(item, now: now)
                case .held: break
                }
                report.done.append(done)
                logger?.info(
                    "retention",
                    metadata: [
                        "action": "\(item.action)", "segment": "\(item.relativePath)", "bytes": "\(done.bytesAfter)",
                    ])
            } catch  where error.code == Self.crashCode {
                throw error
            } catch {
                report.problems.append("\(item.relativePath): \(item.action) failed: \(error)")
                logger?.error(
                    "retention step failed", metadata: ["segment": "\(item.relativePath)", "error": "\(error)"])
            }
        }
        return report
    }

    /// The code a crash hook throws with; apply passes it through untouched.
    public static let crashCode = LogFormatError.Code.interrupted

    private func step(_ point: RetentionCrashPoint) throws(LogFormatError) {
        if stepDelayNanos > 0 {
            var ts = timespec(tv_sec: Int(stepDelayNanos / 1_000_000_000), tv_nsec: Int(stepDelayNanos % 1_000_000_000))
            _ = nanosleep(&ts, nil)
        }
        try crashHook?(point)
    }

    /// Hot → archive: write the copy under a temporary name, fsync it and the directory, verify it (same seal and
    /// signature, every block and root), give it its final name, point the catalog at it, then remove the hot file.
    func archive(_ item: RetentionPlan.Item) throws(LogFormatError) -> UInt64 {
        let source = directory.path(relative: item.relativePath)
        let name = String(item.relativePath.split(separator: "/").last ?? "")
        let target = directory.archivePath + "/" + name
        let temporary = target + ".tmp"
        let reader = try SegmentReader(path: source, sealed: true)
        guard let footer = reader.footer else { throw LogFormatError(.invalidState, "not sealed", path: source) }
        let bytes = try SegmentArchiver.archived(reader, level: policy.archiveLevel)
        let fd = try FileIO.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC)
        do {
            try FileIO.pwriteAll(fd, bytes, at: 0, path: temporary)
            try FileIO.fsync(fd, path: temporary)
        } catch {
            FileIO.close(fd)
            _ = unlink(temporary)
            throw error
        }
        FileIO.close(fd)
        try FileIO.fsyncDirectory(directory.archivePath)
        try step(.archiveTempWritten)
        let check = Verifier.verifySegment(path: temporary)
        let copied = try? SegmentReader(path: temporary, sealed: true).footer
        guard check.isValid, let copied, copied.seal == footer.seal, copied.signature == footer.signature else {
            _ = unlink(temporary)
            throw LogFormatError(
                .integrity,
                "the archive copy did not verify: \(check.problems.map(\.description).joined(separator: "; "))",
                path: temporary)
        }
        try FileIO.renameDurably(temporary, target, directory: directory.archivePath)
        try step(.archiveRenamed)
        let entry = CatalogEntry(
            relativePath: "archive/" + name, tier: .archive, seal: footer.seal, blockCount: copied.blockCount,
            fileSize: UInt64(bytes.count))
        try directory.updateCatalog { (c) throws(LogFormatError) in c.upsert(entry) }
        try step(.archiveCataloged)
        try FileIO.remove(source)
        try FileIO.fsyncDirectory(directory.segmentsPath)
        return UInt64(bytes.count)
    }

    /// Expiry: write the tombstone durably, drop the catalog entry, then remove the file.
    func expire(_ item: RetentionPlan.Item, now: UInt64) throws(LogFormatError) -> UInt64 {
        let path = directory.path(relative: item.relativePath)
        let reader = try SegmentReader(path: path, sealed: true)
        guard let footer = reader.footer, let days = policy.expireAfterDays else {
            throw LogFormatError(.invalidState, "not sealed or no expiry in the policy", path: path)
        }
        let tombstone = Tombstone(
            seal: footer.seal, signature: footer.signature, tier: item.tier, blockCount: footer.blockCount,
            fileSize: UInt64(reader.file.count), expiredAtUnixNano: now, expireAfterNanos: UInt64(days) * Self.dayNanos,
            policy: policy.summary)
        let encoded = tombstone.encoded()
        try FileIO.makeDirectories(directory.tombstonesPath)
        try FileIO.writeAtomically(
            encoded, to: directory.tombstonePath(sequence: footer.seal.sequence), directory: directory.tombstonesPath)
        try step(.tombstoneWritten)
        let node = footer.seal.nodeID
        let seq = footer.seal.sequence
        try directory.updateCatalog { (c) throws(LogFormatError) in c.remove(nodeID: node, sequence: seq) }
        try step(.expiryCataloged)
        try FileIO.remove(path)
        try FileIO.fsyncDirectory(
            path.hasPrefix(directory.archivePath) ? directory.archivePath : directory.segmentsPath)
        return UInt64(encoded.count)
    }

    /// Finishes an interrupted archive (the archive copy is checked again before the hot file goes) or expiry
    /// (the file goes only when its seal is the one its tombstone records).
    func finish(_ item: RetentionPlan.Item) throws(LogFormatError) {
        let path = directory.path(relative: item.relativePath)
        let reader = try SegmentReader(path: path, sealed: true)
        guard let footer = reader.footer else { throw LogFormatError(.invalidState, "not sealed", path: path) }
        let tombstonePath = directory.tombstonePath(sequence: footer.seal.sequence)
        if FileIO.exists(tombstonePath) {
            let tombstone = try Tombstone.decode(try FileIO.readFile(tombstonePath), path: tombstonePath)
            guard tombstone.seal == footer.seal else {
                throw LogFormatError(
                    .integrity,
                    "the tombstone's seal (root \(tombstone.seal.merkleRoot.hex)) is not the segment's (root \(footer.seal.merkleRoot.hex)); both left as they are",
                    path: tombstonePath)
            }
            let node = footer.seal.nodeID
            let seq = footer.seal.sequence
            try directory.updateCatalog { (c) throws(LogFormatError) in c.remove(nodeID: node, sequence: seq) }
            try FileIO.remove(path)
            try FileIO.fsyncDirectory(
                path.hasPrefix(directory.archivePath) ? directory.archivePath : directory.segmentsPath)
            return
        }
        let name = String(item.relativePath.split(separator: "/").last ?? "")
        let archived = directory.archivePath + "/" + name
        let check = Verifier.verifySegment(path: archived)
        guard check.isValid, check.seal == footer.seal else {
            // The archive copy is bad; the hot file is the data. Drop the copy so the next run makes a new one.
            if Verifier.verifySegment(path: path).isValid {
                try FileIO.remove(archived)
                try FileIO.fsyncDirectory(directory.archivePath)
            }
            throw LogFormatError(
                .integrity,
                "the archive copy did not verify, removed: \(check.problems.map(\.description).joined(separator: "; "))",
                path: archived)
        }
        let entry = CatalogEntry(
            relativePath: "archive/" + name, tier: .archive, seal: footer.seal, blockCount: check.blockCount,
            fileSize: UInt64(check.bytesChecked))
        try directory.updateCatalog { (c) throws(LogFormatError) in c.upsert(entry) }
        try FileIO.remove(path)
        try FileIO.fsyncDirectory(directory.segmentsPath)
    }
}
