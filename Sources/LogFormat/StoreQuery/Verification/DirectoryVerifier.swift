// Verification of whole data directories: every segment (in LogFormat's `Verifier`), the chain of each node,
// the catalog against the files, tombstones, the archive tier and the unsealed segments' readable prefix.
import Dispatch
import LogFormat
import Synchronization

/// The outcome of verifying one or more data directories.
public struct StoreVerification: Sendable {
    public var segments: [SegmentVerification]
    /// Problems that belong to no single segment's content: chain, catalog, missing and unexpected files.
    public var storeProblems: [IntegrityProblem]
    /// Segments expired by policy, from their tombstones: accounted for, not missing.
    public var expired: [Tombstone] = []
    /// States an interrupted retention job leaves and the next run finishes (not problems).
    public var retentionPending: [String] = []

    public init(segments: [SegmentVerification], storeProblems: [IntegrityProblem]) {
        self.segments = segments
        self.storeProblems = storeProblems
    }

    public var problems: [IntegrityProblem] { segments.flatMap(\.problems) + storeProblems }
    public var isValid: Bool { problems.isEmpty }
    public var validSegmentCount: Int { segments.filter(\.isValid).count }
    public var bytesChecked: Int { segments.reduce(0) { $0 + $1.bytesChecked } }

    /// The closing line, e.g. "22/23 segments valid, 1 store problem".
    public var summary: String {
        let sig = segments.filter(\.signatureChecked).count
        return
            "\(validSegmentCount)/\(segments.count) segments valid, \(segments.reduce(0) { $0 + $1.recordsChecked }) records checked, "
            + "\(sig) signatures checked, \(storeProblems.count) store problem\(storeProblems.count == 1 ? "" : "s")"
            + (expired.isEmpty
                ? ""
                : ", \(expired.count) segment\(expired.count == 1 ? "" : "s") (\(expired.reduce(0) { $0 + $1.seal.recordCount }) records) expired by policy")
    }
}

extension Verifier {
    /// Verifies every segment of `directory`, the chain of each node, the catalog against the files, and the
    /// unsealed segments' readable prefix.
    /// `progress`, when given, is called after each segment with (segments done, segments in all, bytes done).
    public static func verifyDirectory(
        _ directory: DataDirectory, options: VerifyOptions = VerifyOptions(),
        progress: (@Sendable (Int, Int, Int) -> Void)? = nil
    ) -> StoreVerification {
        var outcome = StoreVerification(segments: [], storeProblems: [])
        let files: (sealed: [String], open: [String])
        let archive: [String]
        do throws(LogFormatError) {
            files = try directory.listSegmentFiles()
            archive = try directory.listArchiveFiles()
        } catch {
            outcome.storeProblems.append(
                IntegrityProblem(.missingSegment, file: directory.root, detail: error.description))
            return outcome
        }
        // A hot file beside its archive copy: an archive step was interrupted after the copy was verified and
        // named; the copy stands and the next retention run removes the hot file.
        let archivedNames = Set(archive)
        let twinned = files.sealed.filter { archivedNames.contains($0) }
        var pendingSequences = Set(twinned.compactMap(DataDirectory.sequence(ofFileName:)))
        for name in twinned {
            outcome.retentionPending.append(
                "segments/\(name): already in the archive tier; the next retention run removes this hot copy")
        }
        let relatives =
            files.sealed.filter { !archivedNames.contains($0) }.map { "segments/" + $0 }
            + archive.map { "archive/" + $0 }
        // Segments are independent: check them on every core (decoding column blocks is the cost), in any
        // order, and report them in file order.
        let results = Mutex((done: [SegmentVerification?](repeating: nil, count: relatives.count), count: 0, bytes: 0))
        DispatchQueue.concurrentPerform(iterations: relatives.count) { i in
            let v = verifySegment(path: directory.path(relative: relatives[i]), options: options)
            results.withLock { r in
                r.done[i] = v
                r.count += 1
                r.bytes += v.bytesChecked
                progress?(r.count, relatives.count, r.bytes)
            }
        }
        outcome.segments = results.withLock { $0.done.compactMap { $0 } }

        // File names must match the sequence in the seal (a swapped or renamed segment shows here).
        for (relative, v) in zip(relatives, outcome.segments) {
            guard let seal = v.seal else { continue }
            let name = String(relative.split(separator: "/").last ?? "")
            if DataDirectory.sequence(ofFileName: name) != seal.sequence {
                outcome.storeProblems.append(
                    IntegrityProblem(
                        .unexpectedSegment, file: v.path,
                        expected: DataDirectory.fileName(sequence: seal.sequence, sealed: true),
                        found: name,
                        detail:
                            "moved from its original location: the file name does not match the sequence in its seal"))
            }
        }

        // Tombstones: what expired by policy. Each must be intact, named after its segment, signed like it, and
        // due by its own age limit; a segment still beside its tombstone is an interrupted expiry.
        var tombstones: [(path: String, tombstone: Tombstone)] = []
        do throws(LogFormatError) {
            let loaded = try directory.loadTombstones()
            tombstones = loaded.tombstones
            for error in loaded.damaged {
                outcome.storeProblems.append(
                    IntegrityProblem(
                        .tombstoneInvalid, file: error.path ?? directory.tombstonesPath, offset: error.offset,
                        detail: error.message))
            }
        } catch {
            outcome.storeProblems.append(
                IntegrityProblem(.tombstoneInvalid, file: directory.tombstonesPath, detail: error.description))
        }
        let liveSeals = Dictionary(
            outcome.segments.compactMap { v in v.seal.map { ($0.sequence, (v.path, $0)) } },
            uniquingKeysWith: { a, _ in a })
        var chainTombstones: [(path: String, seal: SegmentSeal)] = []
        for (path, t) in tombstones {
            outcome.expired.append(t)
            let name = String(path.split(separator: "/").last ?? "")
            if DataDirectory.sequence(ofFileName: name) != t.seal.sequence {
                outcome.storeProblems.append(
                    IntegrityProblem(
                        .tombstoneInvalid, file: path,
                        expected: "segment \(DataDirectory.sequence(ofFileName: name).map { String($0) } ?? "?")",
                        found: "segment \(t.seal.sequence)",
                        detail: "the tombstone's file name does not match the segment it records"))
            }
            if !t.expiryWasDue {
                let ageDays =
                    t.expiredAtUnixNano > t.seal.maxTime
                    ? (t.expiredAtUnixNano - t.seal.maxTime) / UnixTime.nanosPerDay : 0
                outcome.storeProblems.append(
                    IntegrityProblem(
                        .tombstoneInvalid, file: path,
                        expected: "newest record at least \(t.expireAfterNanos / UnixTime.nanosPerDay) days old",
                        found: "\(ageDays) days old at \(UnixTime.format(t.expiredAtUnixNano))",
                        detail: "the segment was expired before its policy allowed"))
            }
            outcome.storeProblems +=
                signatureProblems(
                    seal: t.seal, signature: t.signature, options: options, file: path, what: "the tombstone's seal"
                ).problems
            if let live = liveSeals[t.seal.sequence] {
                let (segmentPath, seal) = live
                if seal == t.seal {
                    pendingSequences.insert(seal.sequence)
                    outcome.retentionPending.append(
                        "\(segmentPath): expired (tombstone written); the next retention run removes it")
                } else {
                    outcome.storeProblems.append(
                        IntegrityProblem(
                            .tombstoneInvalid, file: path, expected: "root \(seal.merkleRoot.hex)",
                            found: "root \(t.seal.merkleRoot.hex)",
                            detail:
                                "a tombstone for segment \(t.seal.sequence), which is still there with a different seal"
                        ))
                }
            } else {
                chainTombstones.append((path, t.seal))
            }
        }

        // Catalog against files.
        do throws(LogFormatError) {
            let catalog = try directory.loadCatalog()
            let byPath = Dictionary(outcome.segments.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            for entry in catalog.entries {
                let path = directory.path(relative: entry.relativePath)
                if pendingSequences.contains(entry.sequence) { continue }
                guard let v = byPath[path] else {
                    outcome.storeProblems.append(
                        IntegrityProblem(.missingSegment, file: path, detail: "listed in the catalog but not on disk"))
                    continue
                }
                if v.seal != nil && (UInt64(v.bytesChecked) != entry.fileSize || v.blockCount != entry.blockCount) {
                    outcome.storeProblems.append(
                        IntegrityProblem(
                            .catalogMismatch, file: path, expected: "\(v.bytesChecked) bytes in \(v.blockCount) blocks",
                            found: "\(entry.fileSize) bytes in \(entry.blockCount) blocks",
                            detail: "the catalog's size of the segment differs from the file"))
                }
                let expectedTier: StorageTier = entry.relativePath.hasPrefix("archive/") ? .archive : .hot
                if entry.tier != expectedTier {
                    outcome.storeProblems.append(
                        IntegrityProblem(
                            .catalogMismatch, file: path, expected: "\(expectedTier)", found: "\(entry.tier)",
                            detail: "the catalog's tier does not match the file's directory"))
                }
                if let seal = v.seal, seal != entry.seal {
                    outcome.storeProblems.append(
                        IntegrityProblem(
                            .catalogMismatch, file: path, expected: "root \(seal.merkleRoot.hex)",
                            found: "root \(entry.seal.merkleRoot.hex)",
                            detail: "the catalog's seal differs from the file's"))
                }
            }
            let listed = Set(catalog.entries.map { directory.path(relative: $0.relativePath) })
            for v in outcome.segments
            where !listed.contains(v.path) && !(v.seal.map { pendingSequences.contains($0.sequence) } ?? false) {
                outcome.storeProblems.append(
                    IntegrityProblem(
                        .unexpectedSegment, file: v.path, detail: "a sealed segment the catalog does not list"))
            }
        } catch {
            outcome.storeProblems.append(
                IntegrityProblem(
                    .catalogMismatch, file: directory.catalogPath, offset: error.offset, detail: error.message))
        }

        outcome.storeProblems += chainProblems(
            outcome.segments.compactMap { v in v.seal.map { (v.path, $0) } } + chainTombstones)

        // Unsealed segments: report a damaged tail; it is expected after a crash until the collector recovers.
        for name in files.open {
            let path = directory.segmentsPath + "/" + name
            do throws(LogFormatError) {
                let reader = try SegmentReader(path: path, sealed: false)
                if let tail = reader.tailProblem {
                    outcome.storeProblems.append(
                        IntegrityProblem(.openSegmentTail, file: path, offset: tail.offset, detail: tail.message))
                }
            } catch {
                outcome.storeProblems.append(
                    IntegrityProblem(.openSegmentTail, file: path, offset: error.offset, detail: error.message))
            }
        }
        return outcome
    }

}
