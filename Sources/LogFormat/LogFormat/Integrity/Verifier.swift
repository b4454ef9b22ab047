// Verification of single segments: checksums, record decoding, Merkle roots, the index (rebuilt from the
// records and compared byte for byte), seals and signatures, and per-collector chain continuity over seals.
// Whole data directories (catalog, tombstones, tiers) are verified by StoreQuery on top of this. Every problem
// names the file and, where it applies, the block, record or offset, with what was expected and what was found
// (CloudTrail's validate-logs is the model).

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
        var place = file
        if let block { place += " block \(block)" }
        if let record { place += " record \(record)" }
        if let offset { place += " at offset \(offset)" }
        var s = "\(place): \(kind.rawValue): \(detail)"
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

    public init(
        publicKeys: [SealVerifierKey] = [], requireSignatures: Bool = false, checkIndex: Bool = true,
        decodeAll: Bool = false
    ) {
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
                        .metadataMismatch, file: path, block: b, offset: Int(location.offset),
                        expected: "offset \(expectedOffset)",
                        found: "offset \(location.offset)", detail: "data blocks do not follow each other without gaps")
                )
            }
            expectedOffset = location.offset + UInt64(FormatConstants.blockHeaderSize) + UInt64(location.storedLength)
        }
        // Then the segment dictionary, when the segment has one (the block between the last block and the index).
        if let range = reader.dictionaryRange, UInt64(range.lowerBound) == expectedOffset {
            do throws(LogFormatError) { _ = try reader.segmentDictionary() } catch {
                result.problems.append(
                    IntegrityProblem(
                        .blockDamaged, file: path, offset: error.offset ?? range.lowerBound,
                        detail: error.message))
            }
            expectedOffset = UInt64(range.upperBound)
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
        if !options.decodeAll
            && (!pass.intact || UInt64(pass.leaves.count) != seal.recordCount || root != seal.merkleRoot)
        {
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
                    let firstDiff =
                        zip(stored, rebuilt).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                        ?? min(stored.count, rebuilt.count)
                    // Which sections differ (e.g. "counts", a changed rollup), when the stored one can be read.
                    var part = ""
                    if storedIndex.version >= FormatConstants.indexVersion,
                        let differ = rebuilt.withUnsafeBytes({ b -> [String]? in
                            guard let view = try? SegmentIndexView(payload: b, owner: nil) else { return nil }
                            return IndexField.allCases.filter { f in
                                switch (storedIndex.sectionBytes(f), view.sectionBytes(f)) {
                                case (nil, nil): false
                                case (let x?, let y?): !x.elementsEqual(y)
                                default: true
                                }
                            }.map(\.description)
                        }), !differ.isEmpty
                    {
                        part = "; sections that differ: \(differ.joined(separator: ", "))"
                    }
                    result.problems.append(
                        IntegrityProblem(
                            .indexMismatch, file: path, offset: indexStart + firstDiff,
                            detail:
                                "the stored index differs from the one rebuilt from the records (\(storedIndex.fieldsPresent.count) fields\(part))"
                        ))
                }
            }
        }

        // Seal signature.
        let (checked, problems) = signatureProblems(
            seal: seal, signature: footer.signature, options: options, file: path,
            offset: reader.file.count - FormatConstants.footerSize,
            what: "the seal")
        result.signatureChecked = checked
        result.problems += problems
        return result
    }

    /// The problems of a seal's Ed25519 signature (a segment's, or the copy a tombstone keeps), and whether a
    /// key was there to check it: a bad signature; a key not given (when keys are given or required); no
    /// signature when signatures are required.
    package static func signatureProblems(
        seal: SegmentSeal, signature: [UInt8], options: VerifyOptions, file: String, offset: Int? = nil, what: String
    ) -> (checked: Bool, problems: [IntegrityProblem]) {
        guard seal.isSigned else {
            return (
                false,
                options.requireSignatures
                    ? [IntegrityProblem(.signatureMissing, file: file, detail: "\(what) is not signed")] : []
            )
        }
        guard let key = options.publicKeys.first(where: { $0.keyID == seal.signingKeyID }) else {
            guard options.requireSignatures || !options.publicKeys.isEmpty else { return (false, []) }
            return (
                false,
                [
                    IntegrityProblem(
                        .publicKeyNotFound, file: file,
                        detail:
                            "\(what) is signed by key \(hexKeyID(seal.signingKeyID)), which is not among the \(options.publicKeys.count) keys given"
                    )
                ]
            )
        }
        guard key.isValidSignature(signature, for: seal.encoded()) else {
            return (
                true,
                [
                    IntegrityProblem(
                        .signatureInvalid, file: file, offset: offset,
                        detail:
                            "the Ed25519 signature over \(what) does not verify with key \(hexKeyID(seal.signingKeyID)): forged or damaged"
                    )
                ]
            )
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
        // Rebuilt in the version, term and trace layouts stored, so the comparison is byte for byte (a version 2 index
        // written before the compact layouts keeps layout 1 for every string field).
        pass.index = IndexBuilder(
            version: reader.index?.version ?? FormatConstants.indexVersionPostings,
            compactTerms: reader.index?.compactTerms ?? true, packedTraces: reader.index?.packedTraces ?? true,
            widePackedUsers: reader.index?.widePackedUsers ?? false,
            relativeUserLists: reader.index?.relativeUserLists ?? false,
            shortTracePrefixes: reader.index?.shortTracePrefixes ?? false)
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
                    let leaf = MerkleTree.leafHash(record)
                    pass.leaves.append(leaf)
                    do throws(LogFormatError) {
                        let start: UInt64
                        if decode {
                            let event = try RecordCodec.decode(record)
                            pass.index.add(event, ordinal: ordinal)
                            start = event.startTimeUnixNano
                            pass.index.addCounts(CountRollupKind(event), start: start, leaf: leaf)
                        } else {
                            var r = BinaryReader(record)
                            let head = try indexedFields(&r)
                            pass.index.add(head.terms, ordinal: ordinal)
                            start = head.start
                            // The rollup is rebuilt from the records like the terms, so a changed one is found.
                            if pass.index.rollup != nil {
                                let kind = try CountRollupKind.of(head, rest: &r, record: record)
                                pass.index.addCounts(kind, start: start, leaf: leaf)
                            }
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
    package static func indexedFields(_ record: UnsafeRawBufferPointer) throws(LogFormatError) -> (RecordTerms, UInt64)
    {
        var r = BinaryReader(record)
        let head = try indexedFields(&r)
        return (head.terms, head.start)
    }

    /// `indexedFields` from `r`, which is left after the workload (where the HTTP facts begin), with the record's
    /// kind, source and status codes and presence bits: what the count rollup reads on (`CountRollupKind.of`).
    package static func indexedFields(_ r: inout BinaryReader) throws(LogFormatError) -> (
        terms: RecordTerms, start: UInt64, codes: (kind: UInt8, source: UInt8, status: UInt8), presence: UInt16
    ) {
        let version = try r.u8()
        guard version == FormatConstants.recordVersion else {
            throw LogFormatError(.malformed, "record version \(version)", offset: 0)
        }
        let kind = try r.u8()
        _ = try r.u8()  // span kind
        let codes = (kind: kind, source: try r.u8(), status: try r.u8())
        _ = try r.u8()  // severity
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
        return (RecordTerms(user: user, service: service, workload: workload, traceID: traceID), start, codes, presence)
    }

    /// A key id as 16 hex digits.
    public static func hexKeyID(_ id: UInt64) -> String {
        let s = String(id, radix: 16)
        return String(repeating: "0", count: max(0, 16 - s.count)) + s
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
                            .unexpectedSegment, file: link.path,
                            detail: "a second segment with sequence \(seal.sequence) of node \(seal.nodeID)"))
                    continue
                }
                if seal.previousSequence == 0 {
                    if seal.previousRoot != .zero {
                        problems.append(
                            IntegrityProblem(
                                .chainBroken, file: link.path, expected: Digest32.zero.hex,
                                found: seal.previousRoot.hex,
                                detail: "the first segment of a chain must have a zero previous root"))
                    }
                    if i > 0 {
                        problems.append(
                            IntegrityProblem(
                                .chainBroken, file: link.path,
                                expected: "previous segment \(sorted[i - 1].seal.sequence)",
                                found: "none", detail: "the segment claims to start the chain but follows another"))
                    }
                    continue
                }
                guard let previous = bySequence[seal.previousSequence] else {
                    problems.append(
                        IntegrityProblem(
                            .missingSegment, file: link.path,
                            expected: "segment \(seal.previousSequence) of node \(seal.nodeID)",
                            found: "nothing",
                            detail: "the previous segment in the chain is missing, and no tombstone records its expiry")
                    )
                    continue
                }
                if previous.seal.merkleRoot != seal.previousRoot {
                    problems.append(
                        IntegrityProblem(
                            .chainBroken, file: link.path, expected: previous.seal.merkleRoot.hex,
                            found: seal.previousRoot.hex,
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
