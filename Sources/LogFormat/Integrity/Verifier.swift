// Verification of segments and data directories: checksums, record decoding, Merkle roots, the index
// (rebuilt from the records and compared byte for byte), seals and signatures, per-collector chain continuity,
// and the catalog against the files. Every problem names the file and, where it applies, the block, record
// or offset, with what was expected and what was found (CloudTrail's validate-logs is the model).

/// One thing wrong with the store.
public struct IntegrityProblem: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// The file cannot be parsed as a segment (bad magic, truncated, unsupported version, bad footer).
        case invalidFormat = "invalid format"
        /// A block's header or payload checksum does not match, or it does not decompress.
        case blockDamaged = "block damaged"
        /// A record inside an intact block does not decode.
        case recordDamaged = "record damaged"
        /// The Merkle root recomputed over the records differs from the one in the seal.
        case rootMismatch = "hash does not match"
        /// The index differs from the one rebuilt from the records.
        case indexMismatch = "index does not match records"
        /// Counts or time ranges in the seal or block table disagree with the records.
        case metadataMismatch = "metadata does not match records"
        case signatureMissing = "signature missing"
        case signatureInvalid = "signature verification failed"
        case publicKeyNotFound = "public key not found"
        /// The seal's link to the previous segment does not match that segment.
        case chainBroken = "chain broken"
        /// A segment the chain or the catalog names is not there.
        case missingSegment = "not found"
        /// A segment file the catalog does not list, or one in a place it does not belong.
        case unexpectedSegment = "unexpected file"
        /// The catalog's record of a segment differs from the segment's own seal.
        case catalogMismatch = "catalog does not match"
        /// The tail of an unsealed segment is torn or damaged (expected after a crash, until recovery).
        case openSegmentTail = "unsealed segment tail"
        /// A tombstone is damaged, misnamed, records an expiry its own age limit did not allow, or names a
        /// segment that is still there with a different seal.
        case tombstoneInvalid = "tombstone invalid"
    }

    public var kind: Kind
    public var file: String
    public var block: Int?
    public var record: UInt32?
    public var offset: Int?
    public var expected: String?
    public var found: String?
    public var detail: String

    public init(
        _ kind: Kind, file: String, block: Int? = nil, record: UInt32? = nil, offset: Int? = nil,
        expected: String? = nil, found: String? = nil, detail: String
    ) {
        self.kind = kind
        self.file = file
        self.block = block
        self.record = record
        self.offset = offset
        self.expected = expected
        self.found = found
        self.detail = detail
    }

    public var description: String {
        var where_ = file
        if let block { where_ += " block \(block)" }
        if let record { where_ += " record \(record)" }
        if let offset { where_ += " at offset \(offset)" }
        var s = "\(where_): \(kind.rawValue): \(detail)"
        if let expected { s += "; expected \(expected)" }
        if let found { s += ", found \(found)" }
        return s
    }
}

/// The outcome of verifying one segment file.
public struct SegmentVerification: Sendable {
    public var path: String
    public var seal: SegmentSeal?
    public var problems: [IntegrityProblem]
    public var recordsChecked: Int
    public var bytesChecked: Int
    public var signatureChecked: Bool
    /// Blocks according to the footer (for comparison with the catalog).
    public var blockCount: UInt32 = 0

    public var isValid: Bool { problems.isEmpty }
}

/// The outcome of verifying one or more data directories.
public struct StoreVerification: Sendable {
    public var segments: [SegmentVerification]
    /// Problems that belong to no single segment's content: chain, catalog, missing and unexpected files.
    public var storeProblems: [IntegrityProblem]
    /// Segments expired by policy, from their tombstones: accounted for, not missing.
    public var expired: [Tombstone] = []
    /// States an interrupted retention job leaves and the next run finishes (not problems).
    public var retentionPending: [String] = []

    public var problems: [IntegrityProblem] { segments.flatMap(\.problems) + storeProblems }
    public var isValid: Bool { problems.isEmpty }
    public var validSegmentCount: Int { segments.filter(\.isValid).count }
    public var bytesChecked: Int { segments.reduce(0) { $0 + $1.bytesChecked } }

    /// The closing line, e.g. "22/23 segments valid, 1 store problem".
    public var summary: String {
        let sig = segments.filter(\.signatureChecked).count
        return "\(validSegmentCount)/\(segments.count) segments valid, \(segments.reduce(0) { $0 + $1.recordsChecked }) records checked, "
            + "\(sig) signatures checked, \(storeProblems.count) store problem\(storeProblems.count == 1 ? "" : "s")"
            + (expired.isEmpty ? "" : ", \(expired.count) segment\(expired.count == 1 ? "" : "s") (\(expired.reduce(0) { $0 + $1.seal.recordCount }) records) expired by policy")
    }
}

public struct VerifyOptions: Sendable {
    /// Public keys that may have signed seals, matched by key id.
    public var publicKeys: [SealVerifierKey] = []
    /// Report unsigned seals as problems.
    public var requireSignatures = false
    /// Rebuild each index from the records and compare (catches an index edited to hide records).
    public var checkIndex = true
    /// Decode every record completely even when the records hash to the sealed root. Off by default: records
    /// that hash to the seal's root are byte for byte the ones sealed, so only the fields the index and the
    /// time ranges need are read; a segment whose root differs is always decoded record by record to name
    /// the damage.
    public var decodeAll = false

    public init(publicKeys: [SealVerifierKey] = [], requireSignatures: Bool = false, checkIndex: Bool = true, decodeAll: Bool = false) {
        self.publicKeys = publicKeys
        self.requireSignatures = requireSignatures
        self.checkIndex = checkIndex
        self.decodeAll = decodeAll
    }
}

public enum Verifier {
    /// Verifies one sealed segment file completely, continuing past damaged blocks to report them all.
    public static func verifySegment(path: String, options: VerifyOptions = VerifyOptions()) -> SegmentVerification {
        var result = SegmentVerification(
            path: path, seal: nil, problems: [], recordsChecked: 0, bytesChecked: 0, signatureChecked: false)
        let reader: SegmentReader
        do throws(LogFormatError) {
            reader = try SegmentReader(path: path, sealed: true)
        } catch {
            result.problems.append(
                IntegrityProblem(.invalidFormat, file: path, offset: error.offset, detail: error.message))
            result.bytesChecked = FileIO.fileSize(path: path) ?? 0
            return result
        }
        result.bytesChecked = reader.file.count
        guard let footer = reader.footer, let storedIndex = reader.index else { return result }
        let seal = footer.seal
        result.seal = seal
        result.blockCount = footer.blockCount

        // Data blocks must tile the area between the file header and the index, with nothing hidden between.
        var expectedOffset = UInt64(FormatConstants.fileHeaderSize)
        for (b, location) in reader.blocks.enumerated() {
            if location.offset != expectedOffset {
                result.problems.append(
                    IntegrityProblem(
                        .metadataMismatch, file: path, block: b, offset: Int(location.offset), expected: "offset \(expectedOffset)",
                        found: "offset \(location.offset)", detail: "data blocks do not follow each other without gaps"))
            }
            expectedOffset = location.offset + UInt64(FormatConstants.blockHeaderSize) + UInt64(location.storedLength)
        }
        if expectedOffset != footer.indexOffset {
            result.problems.append(
                IntegrityProblem(
                    .metadataMismatch, file: path, offset: Int(expectedOffset), expected: "index at \(expectedOffset)",
                    found: "index at \(footer.indexOffset)", detail: "bytes between the last data block and the index"))
        }

        // First pass: leaf hashes, and only the indexed fields and start time of each record. When the
        // root matches the seal, those are the bytes that were sealed; otherwise (or with `decodeAll`) a
        // second pass decodes every record to name each damaged one.
        let before = result.problems.count
        var pass = scan(reader, decode: options.decodeAll, result: &result)
        var root = MerkleTree.root(leafHashes: pass.leaves)
        if !options.decodeAll && (!pass.intact || UInt64(pass.leaves.count) != seal.recordCount || root != seal.merkleRoot) {
            result.problems.removeLast(result.problems.count - before)
            result.recordsChecked = 0
            pass = scan(reader, decode: true, result: &result)
            root = MerkleTree.root(leafHashes: pass.leaves)
        }
        let leaves = pass.leaves
        let index = pass.index
        let minTime = pass.minTime
        let maxTime = pass.maxTime
        let intact = pass.intact

        if intact {
            if UInt64(leaves.count) != seal.recordCount {
                result.problems.append(
                    IntegrityProblem(
                        .metadataMismatch, file: path, expected: "\(seal.recordCount)", found: "\(leaves.count)",
                        detail: "record count in the seal"))
            }
            if root != seal.merkleRoot {
                result.problems.append(
                    IntegrityProblem(
                        .rootMismatch, file: path, expected: seal.merkleRoot.hex, found: root.hex,
                        detail: "Merkle root over the records"))
            }
            if !leaves.isEmpty && (minTime != seal.minTime || maxTime != seal.maxTime) {
                result.problems.append(
                    IntegrityProblem(
                        .metadataMismatch, file: path, expected: "\(minTime)…\(maxTime)",
                        found: "\(seal.minTime)…\(seal.maxTime)", detail: "time range in the seal"))
            }
            if options.checkIndex {
                let rebuilt = index.serialize()
                let indexStart = Int(footer.indexOffset) + FormatConstants.blockHeaderSize
                let stored = UnsafeRawBufferPointer(
                    rebasing: reader.file.bytes[indexStart..<Int(footer.indexOffset + footer.indexLength)])
                if !stored.elementsEqual(rebuilt) {
                    let firstDiff = zip(stored, rebuilt).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                        ?? min(stored.count, rebuilt.count)
                    result.problems.append(
                        IntegrityProblem(
                            .indexMismatch, file: path, offset: indexStart + firstDiff,
                            detail: "the stored index differs from the one rebuilt from the records (\(storedIndex.fieldsPresent.count) fields)"))
                }
            }
        }

        // Seal signature.
        let (checked, problems) = signatureProblems(
            seal: seal, signature: footer.signature, options: options, file: path, offset: reader.file.count - FormatConstants.footerSize,
            what: "the seal")
        result.signatureChecked = checked
        result.problems += problems
        return result
    }

    /// The problems of a seal's Ed25519 signature (a segment's, or the copy a tombstone keeps), and whether a
    /// key was there to check it: a bad signature; a key not given (when keys are given or required); no
    /// signature when signatures are required.
    static func signatureProblems(
        seal: SegmentSeal, signature: [UInt8], options: VerifyOptions, file: String, offset: Int? = nil, what: String
    ) -> (checked: Bool, problems: [IntegrityProblem]) {
        guard seal.isSigned else {
            return (false, options.requireSignatures ? [IntegrityProblem(.signatureMissing, file: file, detail: "\(what) is not signed")] : [])
        }
        guard let key = options.publicKeys.first(where: { $0.keyID == seal.signingKeyID }) else {
            guard options.requireSignatures || !options.publicKeys.isEmpty else { return (false, []) }
            return (false, [IntegrityProblem(
                .publicKeyNotFound, file: file,
                detail: "\(what) is signed by key \(hexKeyID(seal.signingKeyID)), which is not among the \(options.publicKeys.count) keys given")])
        }
        guard key.isValidSignature(signature, for: seal.encoded()) else {
            return (true, [IntegrityProblem(
                .signatureInvalid, file: file, offset: offset,
                detail: "the Ed25519 signature over \(what) does not verify with key \(hexKeyID(seal.signingKeyID)): forged or damaged")])
        }
        return (true, [])
    }

    struct Pass {
        var leaves: [Digest32] = []
        var index = IndexBuilder()
        var minTime = UInt64.max
        var maxTime = UInt64.min
        var intact = true
    }

    /// One pass over the data blocks: leaf hashes, the rebuilt index, time ranges; block and record damage
    /// is appended to `result.problems`. `decode` decodes whole records, else only the indexed fields.
    static func scan(_ reader: SegmentReader, decode: Bool, result: inout SegmentVerification) -> Pass {
        var pass = Pass()
        pass.leaves.reserveCapacity(Int(reader.recordCount))
        let path = reader.path
        for (b, location) in reader.blocks.enumerated() {
            let payload: [UInt8]
            do throws(LogFormatError) {
                payload = try reader.blockPayload(b)
            } catch {
                pass.intact = false
                result.problems.append(
                    IntegrityProblem(.blockDamaged, file: path, block: b, offset: error.offset, detail: error.message))
                continue
            }
            var blockMin = UInt64.max
            var blockMax = UInt64.min
            var checked = 0
            var damaged: [IntegrityProblem] = []
            do throws(LogFormatError) {
                try reader.forEachRecord(inBlock: b, payload: payload) { (ordinal, record) throws(LogFormatError) in
                    pass.leaves.append(MerkleTree.leafHash(record))
                    do throws(LogFormatError) {
                        let start: UInt64
                        if decode {
                            let event = try RecordCodec.decode(record)
                            pass.index.add(event, ordinal: ordinal)
                            start = event.startTimeUnixNano
                        } else {
                            let (terms, t) = try indexedFields(record)
                            pass.index.add(terms, ordinal: ordinal)
                            start = t
                        }
                        blockMin = min(blockMin, start)
                        blockMax = max(blockMax, start)
                    } catch {
                        pass.intact = false
                        damaged.append(
                            IntegrityProblem(
                                .recordDamaged, file: path, block: b, record: ordinal, offset: Int(location.offset),
                                detail: error.message))
                    }
                    checked += 1
                }
            } catch {
                pass.intact = false
                result.problems += damaged
                result.recordsChecked += checked
                result.problems.append(
                    IntegrityProblem(.recordDamaged, file: path, block: b, offset: error.offset, detail: error.message))
                continue
            }
            result.problems += damaged
            result.recordsChecked += checked
            pass.index.addBlock(location)
            if blockMin != location.minTime || blockMax != location.maxTime {
                result.problems.append(
                    IntegrityProblem(
                        .metadataMismatch, file: path, block: b, expected: "\(blockMin)…\(blockMax)",
                        found: "\(location.minTime)…\(location.maxTime)", detail: "block time range"))
            }
            pass.minTime = min(pass.minTime, blockMin)
            pass.maxTime = max(pass.maxTime, blockMax)
        }
        return pass
    }

    /// What the index and the time checks read from a canonical record (its terms: trace id, service, user,
    /// workload; and its start time), taken without decoding attributes, events and links. The terms equal
    /// those of the fully decoded record: the same strings are read the same way.
    static func indexedFields(_ record: UnsafeRawBufferPointer) throws(LogFormatError) -> (RecordTerms, UInt64) {
        var r = BinaryReader(record)
        let version = try r.u8()
        guard version == FormatConstants.recordVersion else {
            throw LogFormatError(.malformed, "record version \(version)", offset: 0)
        }
        _ = try r.rawSlice(5)  // kind, span kind, source, status, severity
        let presence = try r.u16()
        let start = try r.u64()
        _ = try r.rawSlice(16)  // end and observed times
        let traceID = TraceID(high: try r.u64BigEndian(), low: try r.u64BigEndian())
        _ = try r.u64BigEndian()  // span id
        if presence & 1 != 0 { _ = try r.u64BigEndian() }  // parent span id
        _ = try r.uvarint()  // flags
        _ = try r.lengthPrefixedSlice()  // name
        let service = try r.string()
        for _ in 0..<4 { _ = try r.lengthPrefixedSlice() }  // trace state, status message, severity text, event name
        var user: UserIdentity?
        if presence & 2 != 0 {
            let subject = try r.string()
            let email = try r.optionalString()
            let groupCount = try r.uvarint(max: r.remaining, "group count")
            var groups: [String] = []
            groups.reserveCapacity(groupCount)
            for _ in 0..<groupCount { groups.append(try r.string()) }
            _ = try r.optionalString()  // issuer
            _ = try r.u8()  // origin
            let fingerprint = try r.uvarint(max: r.remaining + 1, "fingerprint length")
            if fingerprint > 0 { _ = try r.rawSlice(fingerprint - 1) }
            user = UserIdentity(subject: subject, email: email, groups: groups)
        }
        let workload = presence & 4 != 0 ? try r.string() : nil
        return (RecordTerms(user: user, service: service, workload: workload, traceID: traceID), start)
    }

    /// A key id as 16 hex digits.
    public static func hexKeyID(_ id: UInt64) -> String {
        let s = String(id, radix: 16)
        return String(repeating: "0", count: max(0, 16 - s.count)) + s
    }

    /// Verifies every segment of `directory`, the chain of each node, the catalog against the files, and the
    /// unsealed segments' readable prefix.
    /// `progress`, when given, is called after each segment with (segments done, segments in all, bytes done).
    public static func verifyDirectory(
        _ directory: DataDirectory, options: VerifyOptions = VerifyOptions(), progress: ((Int, Int, Int) -> Void)? = nil
    ) -> StoreVerification {
        var outcome = StoreVerification(segments: [], storeProblems: [])
        let files: (sealed: [String], open: [String])
        let archive: [String]
        do throws(LogFormatError) {
            files = try directory.listSegmentFiles()
            archive = try directory.listArchiveFiles()
        } catch {
            outcome.storeProblems.append(IntegrityProblem(.missingSegment, file: directory.root, detail: error.description))
            return outcome
        }
        // A hot file beside its archive copy: an archive step was interrupted after the copy was verified and
        // named; the copy stands and the next retention run removes the hot file.
        let archivedNames = Set(archive)
        let twinned = files.sealed.filter { archivedNames.contains($0) }
        var pendingSequences = Set(twinned.compactMap(DataDirectory.sequence(ofFileName:)))
        for name in twinned {
            outcome.retentionPending.append("segments/\(name): already in the archive tier; the next retention run removes this hot copy")
        }
        let relatives = files.sealed.filter { !archivedNames.contains($0) }.map { "segments/" + $0 } + archive.map { "archive/" + $0 }
        for relative in relatives {
            outcome.segments.append(verifySegment(path: directory.path(relative: relative), options: options))
            progress?(outcome.segments.count, relatives.count, outcome.bytesChecked)
        }

        // File names must match the sequence in the seal (a swapped or renamed segment shows here).
        for (relative, v) in zip(relatives, outcome.segments) {
            guard let seal = v.seal else { continue }
            let name = String(relative.split(separator: "/").last ?? "")
            if DataDirectory.sequence(ofFileName: name) != seal.sequence {
                outcome.storeProblems.append(
                    IntegrityProblem(
                        .unexpectedSegment, file: v.path, expected: DataDirectory.fileName(sequence: seal.sequence, sealed: true),
                        found: name, detail: "moved from its original location: the file name does not match the sequence in its seal"))
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
                    IntegrityProblem(.tombstoneInvalid, file: error.path ?? directory.tombstonesPath, offset: error.offset, detail: error.message))
            }
        } catch {
            outcome.storeProblems.append(IntegrityProblem(.tombstoneInvalid, file: directory.tombstonesPath, detail: error.description))
        }
        let liveSeals = Dictionary(outcome.segments.compactMap { v in v.seal.map { ($0.sequence, (v.path, $0)) } }, uniquingKeysWith: { a, _ in a })
        var chainTombstones: [(path: String, seal: SegmentSeal)] = []
        for (path, t) in tombstones {
            outcome.expired.append(t)
            let name = String(path.split(separator: "/").last ?? "")
            if DataDirectory.sequence(ofFileName: name) != t.seal.sequence {
                outcome.storeProblems.append(
                    IntegrityProblem(
                        .tombstoneInvalid, file: path, expected: "segment \(DataDirectory.sequence(ofFileName: name).map { String($0) } ?? "?")",
                        found: "segment \(t.seal.sequence)", detail: "the tombstone's file name does not match the segment it records"))
            }
            if !t.expiryWasDue {
                let ageDays = t.expiredAtUnixNano > t.seal.maxTime ? (t.expiredAtUnixNano - t.seal.maxTime) / UnixTime.nanosPerDay : 0
                outcome.storeProblems.append(
                    IntegrityProblem(
                        .tombstoneInvalid, file: path, expected: "newest record at least \(t.expireAfterNanos / UnixTime.nanosPerDay) days old",
                        found: "\(ageDays) days old at \(UnixTime.format(t.expiredAtUnixNano))",
                        detail: "the segment was expired before its policy allowed"))
            }
            outcome.storeProblems += signatureProblems(
                seal: t.seal, signature: t.signature, options: options, file: path, what: "the tombstone's seal").problems
            if let live = liveSeals[t.seal.sequence] {
                let (segmentPath, seal) = live
                if seal == t.seal {
                    pendingSequences.insert(seal.sequence)
                    outcome.retentionPending.append("\(segmentPath): expired (tombstone written); the next retention run removes it")
                } else {
                    outcome.storeProblems.append(
                        IntegrityProblem(
                            .tombstoneInvalid, file: path, expected: "root \(seal.merkleRoot.hex)", found: "root \(t.seal.merkleRoot.hex)",
                            detail: "a tombstone for segment \(t.seal.sequence), which is still there with a different seal"))
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
                            found: "\(entry.fileSize) bytes in \(entry.blockCount) blocks", detail: "the catalog's size of the segment differs from the file"))
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
                            found: "root \(entry.seal.merkleRoot.hex)", detail: "the catalog's seal differs from the file's"))
                }
            }
            let listed = Set(catalog.entries.map { directory.path(relative: $0.relativePath) })
            for v in outcome.segments where !listed.contains(v.path) && !(v.seal.map { pendingSequences.contains($0.sequence) } ?? false) {
                outcome.storeProblems.append(
                    IntegrityProblem(.unexpectedSegment, file: v.path, detail: "a sealed segment the catalog does not list"))
            }
        } catch {
            outcome.storeProblems.append(
                IntegrityProblem(.catalogMismatch, file: directory.catalogPath, offset: error.offset, detail: error.message))
        }

        outcome.storeProblems += chainProblems(outcome.segments.compactMap { v in v.seal.map { (v.path, $0) } } + chainTombstones)

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

    /// Chain continuity per node: each seal's previous link must name the segment before it, whose root must
    /// match; a gap is a missing segment, not silence.
    public static func chainProblems(_ seals: [(path: String, seal: SegmentSeal)]) -> [IntegrityProblem] {
        var problems: [IntegrityProblem] = []
        let byNode = Dictionary(grouping: seals, by: { $0.seal.nodeID })
        for (_, chain) in byNode.sorted(by: { $0.key < $1.key }) {
            let sorted = chain.sorted { $0.seal.sequence < $1.seal.sequence }
            let bySequence = Dictionary(sorted.map { ($0.seal.sequence, $0) }, uniquingKeysWith: { a, _ in a })
            for (i, link) in sorted.enumerated() {
                let seal = link.seal
                if i > 0 && sorted[i - 1].seal.sequence == seal.sequence {
                    problems.append(
                        IntegrityProblem(
                            .unexpectedSegment, file: link.path, detail: "a second segment with sequence \(seal.sequence) of node \(seal.nodeID)"))
                    continue
                }
                if seal.previousSequence == 0 {
                    if seal.previousRoot != .zero {
                        problems.append(
                            IntegrityProblem(
                                .chainBroken, file: link.path, expected: Digest32.zero.hex, found: seal.previousRoot.hex,
                                detail: "the first segment of a chain must have a zero previous root"))
                    }
                    if i > 0 {
                        problems.append(
                            IntegrityProblem(
                                .chainBroken, file: link.path, expected: "previous segment \(sorted[i - 1].seal.sequence)",
                                found: "none", detail: "the segment claims to start the chain but follows another"))
                    }
                    continue
                }
                guard let previous = bySequence[seal.previousSequence] else {
                    problems.append(
                        IntegrityProblem(
                            .missingSegment, file: link.path, expected: "segment \(seal.previousSequence) of node \(seal.nodeID)",
                            found: "nothing", detail: "the previous segment in the chain is missing, and no tombstone records its expiry"))
                    continue
                }
                if previous.seal.merkleRoot != seal.previousRoot {
                    problems.append(
                        IntegrityProblem(
                            .chainBroken, file: link.path, expected: previous.seal.merkleRoot.hex, found: seal.previousRoot.hex,
                            detail: "previous root does not match segment \(seal.previousSequence)"))
                }
                if i > 0 && sorted[i - 1].seal.sequence != seal.previousSequence {
                    problems.append(
                        IntegrityProblem(
                            .chainBroken, file: link.path, expected: "previous segment \(sorted[i - 1].seal.sequence)",
                            found: "previous segment \(seal.previousSequence)", detail: "the chain skips or forks"))
                }
            }
        }
        return problems
    }
}

extension RecordTerms {
    init(user: UserIdentity?, service: String, workload: String?, traceID: TraceID) {
        self.user = user
        self.service = service
        self.workload = workload
        self.traceID = traceID
    }
}
