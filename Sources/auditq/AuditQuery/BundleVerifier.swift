// `auditq verify --bundle DIR`: checks an evidence bundle offline, without the data directory. Every problem
// names the file, the line or record, and what was expected and found:
//   - the manifest: every listed file present, of the listed size and SHA-256; no file unlisted;
//   - every seal: its 144 bytes parse, the fields spelt out match them, its signature verifies (with a key);
//   - every proof: the record's leaf hash, its audit path up to the seal's root at its ordinal and tree size;
//   - activity, events, CSV and report: exactly what the proven records and the query give (a dropped,
//     added, edited, reordered or swapped record shows as a difference at its line).
import Crypto
import Foundation
import LogFormat
import StoreQuery

public struct BundleProblem: Sendable, Hashable, CustomStringConvertible {
    public var kind: IntegrityProblem.Kind
    public var file: String
    /// Line number (from 1) in the file, when the problem is on one line.
    public var line: Int?
    /// The record, as node/segment/ordinal.
    public var record: String?
    public var expected: String?
    public var found: String?
    public var detail: String

    public var description: String {
        var s = file
        if let line { s += " line \(line)" }
        if let record { s += " record \(record)" }
        s += ": \(kind.rawValue): \(detail)"
        if let expected { s += "; expected \(expected)" }
        if let found { s += ", found \(found)" }
        return s
    }
}

public struct BundleVerification: Sendable {
    public var problems: [BundleProblem] = []
    public var filesChecked = 0
    public var filesValid = 0
    public var proofsChecked = 0
    public var proofsValid = 0
    public var sealsChecked = 0
    public var signaturesChecked = 0
    public var signaturesValid = 0

    public var isValid: Bool { problems.isEmpty }

    mutating func add(
        _ kind: IntegrityProblem.Kind, _ file: String, line: Int? = nil, record: String? = nil, expected: String? = nil,
        found: String? = nil, _ detail: String
    ) {
        problems.append(
            BundleProblem(
                kind: kind, file: file, line: line, record: record, expected: expected, found: found, detail: detail))
    }

    public var summary: String {
        "\(filesValid)/\(filesChecked) files valid, \(proofsValid)/\(proofsChecked) record proofs valid, "
            + "\(sealsChecked) seals, \(signaturesValid)/\(signaturesChecked) signatures valid, \(problems.count) problem\(problems.count == 1 ? "" : "s")"
    }
}

public enum BundleVerifier {
    public static func verify(bundle dir: String, publicKeys: [SealVerifierKey] = [], requireSignatures: Bool = false)
        -> BundleVerification
    {
        var v = BundleVerification()
        func problem(
            _ kind: IntegrityProblem.Kind, _ file: String, line: Int? = nil, record: String? = nil,
            expected: String? = nil,
            found: String? = nil, _ detail: String
        ) {
            v.problems.append(
                BundleProblem(
                    kind: kind, file: file, line: line, record: record, expected: expected, found: found, detail: detail
                ))
        }
        func read(_ name: String) -> [UInt8]? {
            FileManager.default.contents(atPath: dir + "/" + name).map { [UInt8]($0) }
        }

        // 1. The manifest and the files it lists.
        guard FileManager.default.fileExists(atPath: dir) else {
            problem(.missingSegment, dir, "no bundle directory here")
            return v
        }
        let manifestName = EvidenceBundle.manifestName
        var contents: [String: [UInt8]] = [:]
        // Without a readable manifest the bundle is taken for one of the current version, of the kind whose
        // index it holds.
        var version = EvidenceBundle.formatVersion
        var kind = EvidenceBundle.Kind.activity
        func guessKind() {
            if read("activity.ndjson") == nil && read("traces.ndjson") != nil {
                kind = .access
                version = AccessEvidence.formatVersion
            }
            for name in EvidenceBundle.fileNames(version: version, kind: kind) { contents[name] = read(name) }
        }
        if let bytes = read(manifestName) {
            do {
                let m = try JSONDecoder().decode(EvidenceBundle.Manifest.self, from: Data(bytes))
                if m.format != EvidenceBundle.formatName || !EvidenceBundle.readableVersions.contains(m.version) {
                    problem(
                        .invalidFormat, manifestName,
                        expected:
                            "\(EvidenceBundle.formatName) version \(EvidenceBundle.readableVersions.lowerBound) to \(EvidenceBundle.readableVersions.upperBound)",
                        found: "\(m.format) version \(m.version)", "not a bundle this auditq knows")
                } else {
                    version = m.version
                }
                switch m.kind {
                case nil: break
                case let named?
                where version >= AccessEvidence.formatVersion && EvidenceBundle.Kind(rawValue: named) != nil:
                    kind = EvidenceBundle.Kind(rawValue: named)!
                case let named?:
                    problem(
                        .invalidFormat, manifestName, expected: "kind activity or access (version 4 on)",
                        found: "kind \(named) in version \(m.version)", "not a kind of bundle this auditq knows")
                }
                var listed = Set<String>()
                for entry in m.files {
                    v.filesChecked += 1
                    guard !entry.path.contains("/"), entry.path != "..", entry.path != manifestName,
                        listed.insert(entry.path).inserted
                    else {
                        problem(
                            .invalidFormat, manifestName, found: entry.path,
                            "a file name the manifest may not list (a path, itself, or twice)")
                        continue
                    }
                    guard let data = read(entry.path) else {
                        problem(.missingSegment, entry.path, "listed in the manifest but not in the bundle")
                        continue
                    }
                    contents[entry.path] = data
                    let hash = EvidenceBundle.sha256Hex(data)
                    if data.count != entry.bytes || hash != entry.sha256 {
                        problem(
                            .rootMismatch, entry.path, expected: "\(entry.bytes) bytes, SHA-256 \(entry.sha256)",
                            found: "\(data.count) bytes, SHA-256 \(hash)", "the file differs from the manifest")
                    } else {
                        v.filesValid += 1
                    }
                }
                for name in EvidenceBundle.fileNames(version: version, kind: kind) where !listed.contains(name) {
                    problem(
                        .missingSegment, manifestName, expected: name, found: "nothing",
                        "a file every bundle has is not listed")
                    if contents[name] == nil, let data = read(name) { contents[name] = data }
                }
                let present = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
                for name in present.sorted() where name != manifestName && !listed.contains(name) {
                    problem(.unexpectedSegment, name, "a file the manifest does not list")
                }
            } catch {
                problem(.invalidFormat, manifestName, "cannot read the manifest: \(error)")
                guessKind()
            }
        } else {
            problem(.missingSegment, manifestName, "the bundle has no manifest")
            guessKind()
        }

        // 2. Seals.
        var seals: [String: SegmentSeal] = [:]  // "node/segment"
        for (n, line) in lines(contents["seals.ndjson"]) {
            let decoded: BundleSeal
            do { decoded = try JSONDecoder().decode(BundleSeal.self, from: Data(line.utf8)) } catch {
                problem(.invalidFormat, "seals.ndjson", line: n, "not a seal line: \(error)")
                continue
            }
            v.sealsChecked += 1
            let name = "\(decoded.node)/\(decoded.segment)"
            guard let raw = Data(base64Encoded: decoded.seal), raw.count == FormatConstants.footerSignedSize,
                let seal = try? [UInt8](raw).withBytes({ (b) throws(LogFormatError) in try SegmentSeal.parse(b) })
            else {
                problem(
                    .invalidFormat, "seals.ndjson", line: n, record: name, "the seal is not 144 bytes of a valid seal")
                continue
            }
            if seal.nodeID.hex != decoded.node || seal.sequence != decoded.segment
                || seal.merkleRoot.hex != decoded.merkleRoot
                || seal.recordCount != decoded.recordCount || seal.previousRoot.hex != decoded.previousRoot
                || seal.previousSequence != decoded.previousSegment
            {
                problem(
                    .metadataMismatch, "seals.ndjson", line: n, record: name,
                    expected:
                        "segment \(seal.nodeID.hex)/\(seal.sequence) root \(seal.merkleRoot.hex) of \(seal.recordCount) records",
                    found: "segment \(name) root \(decoded.merkleRoot) of \(decoded.recordCount) records",
                    "the fields written out differ from the signed seal bytes")
            }
            if seals[name] != nil {
                problem(.unexpectedSegment, "seals.ndjson", line: n, record: name, "a second seal for the segment")
            }
            seals[name] = seal
            if seal.isSigned {
                if let key = publicKeys.first(where: { $0.keyID == seal.signingKeyID }) {
                    v.signaturesChecked += 1
                    let signature = decoded.signature.flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) } ?? []
                    if key.isValidSignature(signature, for: seal.encoded()) {
                        v.signaturesValid += 1
                    } else {
                        problem(
                            .signatureInvalid, "seals.ndjson", line: n, record: name,
                            "the Ed25519 signature over the seal does not verify with key \(key.keyIDHex)")
                    }
                } else if requireSignatures || !publicKeys.isEmpty {
                    problem(
                        .publicKeyNotFound, "seals.ndjson", line: n, record: name,
                        "signed by key \(Verifier.hexKeyID(seal.signingKeyID)), not among the keys given")
                }
            } else if requireSignatures {
                problem(.signatureMissing, "seals.ndjson", line: n, record: name, "the seal is not signed")
            }
        }
        // Chain links between seals of one node that are both in the bundle.
        for (name, seal) in seals where seal.previousSequence != 0 {
            if let previous = seals["\(seal.nodeID.hex)/\(seal.previousSequence)"],
                previous.merkleRoot != seal.previousRoot
            {
                problem(
                    .chainBroken, "seals.ndjson", record: name, expected: previous.merkleRoot.hex,
                    found: seal.previousRoot.hex,
                    "the previous-root link does not match the previous segment's seal")
            }
        }

        // 3. Proofs.
        var proven: [BundleLocation: AuditEvent] = [:]
        for (n, line) in lines(contents["proofs.ndjson"]) {
            let p: BundleProof
            do { p = try JSONDecoder().decode(BundleProof.self, from: Data(line.utf8)) } catch {
                problem(.invalidFormat, "proofs.ndjson", line: n, "not a proof line: \(error)")
                continue
            }
            v.proofsChecked += 1
            let named = p.record.description
            guard let seal = seals["\(p.record.node)/\(p.record.segment)"] else {
                problem(
                    .missingSegment, "proofs.ndjson", line: n, record: named,
                    "no seal for the record's segment in seals.ndjson")
                continue
            }
            guard let canonical = Data(base64Encoded: p.canonical).map({ [UInt8]($0) }) else {
                problem(.invalidFormat, "proofs.ndjson", line: n, record: named, "the canonical record is not base64")
                continue
            }
            let leaf = MerkleTree.leafHash(canonical)
            let path = p.auditPath.compactMap { Digest32(hex: $0) }
            var ok = true
            if leaf.hex != p.leafHash {
                problem(
                    .rootMismatch, "proofs.ndjson", line: n, record: named, expected: leaf.hex, found: p.leafHash,
                    "the leaf hash of the record bytes")
                ok = false
            }
            if p.leafIndex != UInt64(p.record.ordinal) || p.treeSize != seal.recordCount {
                problem(
                    .metadataMismatch, "proofs.ndjson", line: n, record: named,
                    expected: "leaf \(p.record.ordinal) of \(seal.recordCount)",
                    found: "leaf \(p.leafIndex) of \(p.treeSize)",
                    "the proof's position does not match the record and its seal")
                ok = false
            }
            if path.count != p.auditPath.count || p.leafIndex >= seal.recordCount
                || !MerkleTree.verifyInclusion(
                    leafHash: leaf, leafIndex: Int(p.leafIndex), treeSize: Int(seal.recordCount), proof: path,
                    root: seal.merkleRoot)
            {
                problem(
                    .rootMismatch, "proofs.ndjson", line: n, record: named, expected: "root \(seal.merkleRoot.hex)",
                    found: "a path that does not lead there", "the record is not proven to be in its sealed segment")
                ok = false
            }
            guard ok else { continue }
            do throws(LogFormatError) {
                let event = try RecordCodec.decode(canonical)
                if proven.updateValue(event, forKey: p.record) != nil {
                    problem(
                        .unexpectedSegment, "proofs.ndjson", line: n, record: named, "a second proof for the record")
                }
                v.proofsValid += 1
            } catch {
                problem(
                    .recordDamaged, "proofs.ndjson", line: n, record: named,
                    "the proven bytes do not decode: \(error.message)")
            }
        }

        // 4. The query and the index (of requests or traces); then everything derived from them must match byte
        // for byte.
        if kind == .access {
            AccessEvidence.verify(contents: contents, proven: proven, seals: Array(seals.values), into: &v)
            return v
        }
        var query: EvidenceQuery?
        if let q = contents["query.json"] {
            do { query = try JSONDecoder().decode(EvidenceQuery.self, from: Data(q)) } catch {
                problem(.invalidFormat, "query.json", "cannot read the query: \(error)")
            }
        } else {
            problem(.missingSegment, "query.json", "the bundle has no query")
        }
        var requests: [BundleRequest] = []
        var previous: (UInt64, BundleLocation)?
        for (n, line) in lines(contents["activity.ndjson"]) {
            guard let r = try? JSONDecoder().decode(BundleRequest.self, from: Data(line.utf8)) else {
                problem(.invalidFormat, "activity.ndjson", line: n, "not a request line")
                continue
            }
            requests.append(r)
            guard let head = proven[r.request] else {
                problem(
                    .missingSegment, "activity.ndjson", line: n, record: r.request.description,
                    "the request's record has no valid proof")
                continue
            }
            if let user = query?.user, head.user?.subject != user, head.user?.email != user {
                problem(
                    .metadataMismatch, "activity.ndjson", line: n, record: r.request.description,
                    expected: "user \(user)",
                    found: "user \(head.user?.subject ?? "none")", "the request's proven event is not the user's")
            }
            if !r.records.contains(r.request) {
                problem(
                    .metadataMismatch, "activity.ndjson", line: n, record: r.request.description,
                    "the request is not among its trace's records")
            }
            for l in r.records where proven[l] == nil {
                problem(
                    .missingSegment, "activity.ndjson", line: n, record: l.description,
                    "a record of the trace has no valid proof")
            }
            for l in r.records {
                if let e = proven[l], !head.traceID.isZero, e.traceID != head.traceID {
                    problem(
                        .metadataMismatch, "activity.ndjson", line: n, record: l.description,
                        expected: "trace \(head.traceID.hex)",
                        found: "trace \(e.traceID.hex)", "a record of another trace")
                }
            }
            let key = (head.startTimeUnixNano, r.request)
            if let p = previous, (p.0, p.1) > key {
                problem(
                    .metadataMismatch, "activity.ndjson", line: n, record: r.request.description,
                    "requests are out of time order")
            }
            previous = key
        }
        let listed = Set(requests.flatMap(\.records))
        // Version 3: the collector's ledgers of the segments the records are drawn from are proven too; they are
        // listed in ledgers.ndjson, not by a request.
        var ledgers: [BundleLocation: AuditEvent] = [:]
        let drawn = Set(listed.map(\.segmentKey))
        for l in proven.keys.sorted() where !listed.contains(l) {
            if version >= 3, let e = proven[l], LedgerRecord.isLedger(e) {
                ledgers[l] = e
                if !drawn.contains(l.segmentKey) {
                    problem(
                        .unexpectedSegment, "proofs.ndjson", record: l.description,
                        "a ledger of a segment no request draws on")
                }
                continue
            }
            problem(.unexpectedSegment, "proofs.ndjson", record: l.description, "a proven record no request lists")
        }
        if let query {
            if query.requests != requests.count || query.records != listed.count {
                problem(
                    .metadataMismatch, "query.json", expected: "\(requests.count) requests, \(listed.count) records",
                    found: "\(query.requests) requests, \(query.records) records", "the counts in the query")
            }
            let derived = EvidenceBundle.derivedFiles(
                query: query, requests: requests, events: proven, seals: Array(seals.values), ledgers: ledgers,
                version: version)
            for name in ["events.ndjson", "events.csv", "report.txt", "report.html", "ledgers.ndjson"]
            where derived[name] != nil {
                compare(name, expected: derived[name] ?? "", found: contents[name], into: &v)
            }
        }
        return v
    }

    /// Non-empty lines with their numbers (from 1).
    static func lines(_ bytes: [UInt8]?) -> [(Int, String)] {
        guard let bytes else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated().compactMap { $0.element.isEmpty ? nil : ($0.offset + 1, String($0.element)) }
    }

    static func compare(_ name: String, expected: String, found: [UInt8]?, into v: inout BundleVerification) {
        guard let found else {
            v.problems.append(BundleProblem(kind: .missingSegment, file: name, detail: "the file is missing"))
            return
        }
        let text = String(decoding: found, as: UTF8.self)
        guard text != expected else { return }
        let separator: Character = "\n"
        let a = expected.split(separator: separator, omittingEmptySubsequences: false)
        let b = text.split(separator: separator, omittingEmptySubsequences: false)
        var reported = 0
        for i in 0..<max(a.count, b.count) where i >= a.count || i >= b.count || a[i] != b[i] {
            let exp = i < a.count ? String(a[i].prefix(120)) : "end of file"
            let got = i < b.count ? String(b[i].prefix(120)) : "end of file"
            v.problems.append(
                BundleProblem(
                    kind: .rootMismatch, file: name, line: i + 1, expected: exp.debugDescription,
                    found: got.debugDescription,
                    detail: "differs from what the proven records give"))
            reported += 1
            if reported == 5 {
                v.problems.append(
                    BundleProblem(kind: .rootMismatch, file: name, detail: "further differing lines not listed"))
                break
            }
        }
    }
}
