// Evidence bundles: what a user did in a time range, as a self-contained directory an auditor can check
// offline. Every event in it comes with its canonical record bytes and an RFC 6962 inclusion proof against the
// Merkle root of the sealed segment it was stored in, and with that segment's seal (and signature). Every
// other file (events, CSV, the per-request index, the report) is derived from the proven records and the
// query, so `verify --bundle` rebuilds them and compares, and a manifest lists the SHA-256 of every file.
//
// Layout (all text, UTF-8; NDJSON = one JSON object per line, each line ending in "\n"):
//
//   README.txt        what the files are and how to check them
//   query.json        the query: user, range, zone, data directories, command line, who ran it, where, when,
//                     the auditq version, and how many records were left out because not yet sealed
//   activity.ndjson   one line per request: {"request": <location>, "trace_id", "records": [<location>, …]}
//   events.ndjson     one line per record of every request's trace, in activity order: {"record", "event"}
//                     (the `search --format json` line)
//   events.csv        the same records as CSV (the `--format csv` columns), RFC 4180, CRLF line ends
//   report.txt        the same, for people: each request with its trace as a tree
//   report.html       the same for a browser, self-contained: each trace as a waterfall, and the seals
//   proofs.ndjson     one line per record: {"record": <location>, "leaf_index", "tree_size", "canonical": base64
//                     of the record's canonical bytes, "leaf_hash", "audit_path": [hex, …]} (RFC 9162 §2.1.3)
//   seals.ndjson      one line per segment: {"node", "segment", "seal": base64 of the 144 signed seal bytes,
//                     "signature": base64 (when signed), and the seal's fields spelt out for people}
//   ledgers.ndjson    one line per completeness ledger of those segments (proven in proofs.ndjson too):
//                     {"record", "period_start", "period_end", …, "receivers", "senders"} (docs/format/ledger.md)
//   manifest.json     {"format": "auditq-evidence", "version": 3, "files": [{"path", "bytes", "sha256"}, …]}
//                     (versions 1 and 2, written before report.html and ledgers.ndjson, lack them and still verify)
//
// A <location> is {"node": 32 hex, "segment": sequence, "ordinal": record number in the segment}.
import Crypto
import Foundation
import LogFormat
import StoreQuery

/// The query an evidence bundle answers, and who asked it when.
public struct EvidenceQuery: Codable, Sendable, Hashable {
    public var user: String
    public var fromUnixNano: String
    public var toUnixNano: String
    public var from: String
    public var to: String
    public var timeZone: String
    public var dataDirectories: [String]
    public var commandLine: [String]
    public var runBy: String
    public var host: String
    public var runAt: String
    public var toolVersion: String
    public var unsealedRecordsOmitted: Int
    public var requests: Int
    public var records: Int

    public init(
        user: String, fromUnixNano: String, toUnixNano: String, from: String, to: String, timeZone: String,
        dataDirectories: [String], commandLine: [String], runBy: String, host: String, runAt: String,
        toolVersion: String,
        unsealedRecordsOmitted: Int, requests: Int, records: Int
    ) {
        self.user = user
        self.fromUnixNano = fromUnixNano
        self.toUnixNano = toUnixNano
        self.from = from
        self.to = to
        self.timeZone = timeZone
        self.dataDirectories = dataDirectories
        self.commandLine = commandLine
        self.runBy = runBy
        self.host = host
        self.runAt = runAt
        self.toolVersion = toolVersion
        self.unsealedRecordsOmitted = unsealedRecordsOmitted
        self.requests = requests
        self.records = records
    }

    enum CodingKeys: String, CodingKey {
        case user, from, to, host, requests, records
        case fromUnixNano = "from_unix_nano"
        case toUnixNano = "to_unix_nano"
        case timeZone = "time_zone"
        case dataDirectories = "data_directories"
        case commandLine = "command_line"
        case runBy = "run_by"
        case runAt = "run_at"
        case toolVersion = "tool_version"
        case unsealedRecordsOmitted = "unsealed_records_omitted"
    }
}

/// Where a record lives, as written in bundles.
public struct BundleLocation: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var node: String
    public var segment: UInt64
    public var ordinal: UInt32

    public init(_ l: RecordLocation) {
        node = l.nodeID.hex
        segment = l.segmentSequence
        ordinal = l.ordinal
    }

    public var description: String { "\(node)/\(segment)/\(ordinal)" }
    public var json: String { "{\"node\":\"\(node)\",\"segment\":\(segment),\"ordinal\":\(ordinal)}" }

    public static func < (a: BundleLocation, b: BundleLocation) -> Bool {
        (a.node, a.segment, a.ordinal) < (b.node, b.segment, b.ordinal)
    }
}

extension BundleLocation {
    /// "node/segment".
    var segmentKey: String { "\(node)/\(segment)" }
}

/// A line of ledgers.ndjson: a proven ledger record, spelt out.
public struct BundleLedger: Codable, Sendable, Hashable {
    public struct Counts: Codable, Sendable, Hashable {
        public var received: UInt64
        public var accepted: UInt64
        public var rejected: [String: UInt64]
        public var dropped: UInt64
        init(_ c: LedgerCounts) {
            received = c.received
            accepted = c.accepted
            rejected = c.rejected
            dropped = c.dropped
        }
    }
    public var record: BundleLocation
    public var periodStart: String?
    public var periodStartUnixNano: String?
    public var periodEnd: String?
    public var periodEndUnixNano: String?
    public var firstPeriod: Bool?
    public var final: Bool?
    public var receivers: [String: Counts]?
    public var senders: [String: Counts]?
    /// Why the record does not read as a ledger (then the other fields are absent).
    public var error: String?

    init(_ l: BundleLocation, _ e: AuditEvent) {
        record = l
        do throws(LedgerRecord.Malformed) {
            let r = try LedgerRecord(e)
            periodStart = TimeExpression.format(r.periodStart)
            periodStartUnixNano = String(r.periodStart)
            periodEnd = TimeExpression.format(r.periodEnd)
            periodEndUnixNano = String(r.periodEnd)
            firstPeriod = r.firstPeriod
            final = r.final
            receivers = r.receivers.mapValues(Counts.init)
            senders = r.senders.mapValues(Counts.init)
        } catch {
            self.error = error.description
        }
    }

    enum CodingKeys: String, CodingKey {
        case record, receivers, senders, error, final
        case periodStart = "period_start"
        case periodStartUnixNano = "period_start_unix_nano"
        case periodEnd = "period_end"
        case periodEndUnixNano = "period_end_unix_nano"
        case firstPeriod = "first_period"
    }
}

public struct BundleProof: Codable, Sendable, Hashable {
    public var record: BundleLocation
    public var leafIndex: UInt64
    public var treeSize: UInt64
    public var canonical: String
    public var leafHash: String
    public var auditPath: [String]

    enum CodingKeys: String, CodingKey {
        case record, canonical
        case leafIndex = "leaf_index"
        case treeSize = "tree_size"
        case leafHash = "leaf_hash"
        case auditPath = "audit_path"
    }
}

public struct BundleSeal: Codable, Sendable, Hashable {
    public var node: String
    public var segment: UInt64
    public var seal: String
    public var signature: String?
    public var merkleRoot: String
    public var recordCount: UInt64
    public var minTime: String
    public var maxTime: String
    public var previousSegment: UInt64
    public var previousRoot: String
    public var sealedAt: String
    public var signingKeyID: String?

    enum CodingKeys: String, CodingKey {
        case node, segment, seal, signature
        case merkleRoot = "merkle_root"
        case recordCount = "record_count"
        case minTime = "min_time"
        case maxTime = "max_time"
        case previousSegment = "previous_segment"
        case previousRoot = "previous_root"
        case sealedAt = "sealed_at"
        case signingKeyID = "signing_key_id"
    }

    init(_ seal: SegmentSeal, signature: [UInt8]?) {
        node = seal.nodeID.hex
        segment = seal.sequence
        self.seal = Data(seal.encoded()).base64EncodedString()
        self.signature = seal.isSigned ? signature.map { Data($0).base64EncodedString() } : nil
        merkleRoot = seal.merkleRoot.hex
        recordCount = seal.recordCount
        minTime = UnixTime.format(seal.minTime)
        maxTime = UnixTime.format(seal.maxTime)
        previousSegment = seal.previousSequence
        previousRoot = seal.previousRoot.hex
        sealedAt = UnixTime.format(seal.sealedAtUnixNano)
        signingKeyID = seal.isSigned ? Verifier.hexKeyID(seal.signingKeyID) : nil
    }
}

public struct BundleRequest: Codable, Sendable, Hashable {
    public var request: BundleLocation
    public var traceID: String
    public var records: [BundleLocation]

    enum CodingKeys: String, CodingKey {
        case request, records
        case traceID = "trace_id"
    }
}

public enum EvidenceBundle {
    public static let formatName = "auditq-evidence"
    /// 2 added report.html, 3 ledgers.ndjson (and the ledgers' proofs); bundles of versions 1 and 2 are still
    /// read and verified. Version 4 added the manifest's `kind` and bundles of an access answer
    /// (`AccessEvidence`); per-user bundles are still written as version 3, which older auditq verify.
    public static let formatVersion = 3
    public static let readableVersions = 1...4
    public static let manifestName = "manifest.json"
    /// Files every bundle of the current version has, besides the manifest.
    public static let fileNames = fileNames(version: formatVersion)

    /// Files every bundle of `kind` and `version` has, besides the manifest.
    public static func fileNames(version: Int, kind: Kind) -> [String] {
        kind == .access ? AccessEvidence.fileNames : fileNames(version: min(version, formatVersion))
    }

    /// Files every per-user bundle of `version` has, besides the manifest.
    public static func fileNames(version: Int) -> [String] {
        [
            "README.txt", "query.json", "activity.ndjson", "events.ndjson", "events.csv", "report.txt",
            "proofs.ndjson", "seals.ndjson",
        ] + (version >= 2 ? ["report.html"] : []) + (version >= 3 ? ["ledgers.ndjson"] : [])
    }

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    static func jsonLine<T: Encodable>(_ value: T) -> String {
        // Encoding our own plain structs cannot fail.
        String(decoding: (try? encoder().encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public struct Summary: Sendable {
        public var requests: Int
        public var records: Int
        public var segments: Int
        public var unsealedOmitted: Int
        public var files: [String]
        /// Users of an access bundle.
        public var users: Int = 0
    }

    /// Builds the bundle for `requests` (from `AuditStore.activity`) into the empty or new directory `out`.
    public static func write(
        requests all: [UserRequest], query: EvidenceQuery, store: AuditStore, to out: String
    ) throws -> Summary {
        let isSealed = sealedTest(store)
        var omitted = 0
        var requests: [BundleRequest] = []
        var events: [BundleLocation: AuditEvent] = [:]
        var locations: [RecordLocation] = []
        for q in all {
            guard isSealed(q.request.location) else {
                omitted += q.trace.count
                continue
            }
            var records: [BundleLocation] = []
            for r in q.trace {
                guard isSealed(r.location) else {
                    omitted += 1
                    continue
                }
                let l = BundleLocation(r.location)
                if events.updateValue(r.event, forKey: l) == nil { locations.append(r.location) }
                records.append(l)
            }
            requests.append(
                BundleRequest(
                    request: BundleLocation(q.request.location), traceID: q.request.event.traceID.hex, records: records)
            )
        }
        let (ledgers, ledgerLocations) = try self.ledgers(drawnOnBy: locations, store: store)
        let proven = proofFiles(try store.proofs(for: locations + ledgerLocations))
        var query = query
        query.unsealedRecordsOmitted = omitted
        query.requests = requests.count
        query.records = locations.count

        var files: [String: String] = [:]
        files["query.json"] = jsonLine(query) + "\n"
        files["README.txt"] = readme
        files["proofs.ndjson"] = proven.proofs
        files["seals.ndjson"] = proven.seals
        for (name, text) in derivedFiles(
            query: query, requests: requests, events: events, seals: proven.segmentSeals, ledgers: ledgers,
            version: formatVersion)
        {
            files[name] = text
        }
        let written = try writeFiles(files, to: out, version: formatVersion, kind: nil)
        return Summary(
            requests: requests.count, records: locations.count, segments: proven.segmentSeals.count,
            unsealedOmitted: omitted, files: written)
    }

    /// Whether a record is in a sealed segment of `store` (only those have proofs).
    static func sealedTest(_ store: AuditStore) -> (RecordLocation) -> Bool {
        let sealed = Set(store.sealedSegments.map { SegmentKey(node: $0.entry.nodeID, sequence: $0.entry.sequence) })
        return { sealed.contains(SegmentKey(node: $0.nodeID, sequence: $0.segmentSequence)) }
    }

    /// The completeness ledgers of the segments `locations` are drawn from, to be proven like the records.
    static func ledgers(drawnOnBy locations: [RecordLocation], store: AuditStore) throws -> (
        [BundleLocation: AuditEvent], [RecordLocation]
    ) {
        var drawn = Set<SegmentKey>()
        for l in locations { drawn.insert(SegmentKey(node: l.nodeID, sequence: l.segmentSequence)) }
        var ledgers: [BundleLocation: AuditEvent] = [:]
        var ledgerLocations: [RecordLocation] = []
        for key in drawn.sorted(by: { ($0.node, $0.sequence) < ($1.node, $1.sequence) }) {
            for r in try store.ledgerRecords(node: key.node, sequence: key.sequence) {
                ledgers[BundleLocation(r.location)] = r.event
                ledgerLocations.append(r.location)
            }
        }
        return (ledgers, ledgerLocations)
    }

    /// proofs.ndjson and seals.ndjson of `proofs`, and the seals they rest on.
    static func proofFiles(_ proofs: [RecordProof]) -> (proofs: String, seals: String, segmentSeals: [SegmentSeal]) {
        var proofLines = ""
        var seals: [SegmentKey: BundleSeal] = [:]
        var sealOf: [SegmentKey: SegmentSeal] = [:]
        for p in proofs.sorted(by: { $0.location < $1.location }) {
            proofLines +=
                jsonLine(
                    BundleProof(
                        record: BundleLocation(p.location), leafIndex: UInt64(p.location.ordinal),
                        treeSize: p.seal.recordCount,
                        canonical: Data(p.record).base64EncodedString(), leafHash: MerkleTree.leafHash(p.record).hex,
                        auditPath: p.path.map(\.hex))) + "\n"
            seals[SegmentKey(node: p.seal.nodeID, sequence: p.seal.sequence)] = BundleSeal(
                p.seal, signature: p.signature)
            sealOf[SegmentKey(node: p.seal.nodeID, sequence: p.seal.sequence)] = p.seal
        }
        let sealLines = seals.sorted { ($0.key.node, $0.key.sequence) < ($1.key.node, $1.key.sequence) }
            .map { jsonLine($0.value) + "\n" }.joined()
        return (proofLines, sealLines, Array(sealOf.values))
    }

    /// Writes `files` into the empty or new directory `out`, then the manifest; returns the names written.
    static func writeFiles(_ files: [String: String], to out: String, version: Int, kind: String?) throws -> [String] {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let existing = try FileManager.default.contentsOfDirectory(atPath: out)
        guard existing.isEmpty else { throw EvidenceError("the output directory \(out) is not empty") }
        var manifest: [ManifestEntry] = []
        for name in files.keys.sorted() {
            let bytes = Array(files[name]!.utf8)
            try Data(bytes).write(to: URL(fileURLWithPath: out + "/" + name))
            manifest.append(ManifestEntry(path: name, bytes: bytes.count, sha256: sha256Hex(bytes)))
        }
        let m = Manifest(format: formatName, version: version, kind: kind, files: manifest)
        try Data((jsonLine(m) + "\n").utf8).write(to: URL(fileURLWithPath: out + "/" + manifestName))
        return files.keys.sorted() + [manifestName]
    }

    struct SegmentKey: Hashable {
        var node: NodeID
        var sequence: UInt64
    }

    public struct Manifest: Codable, Sendable {
        public var format: String
        public var version: Int
        /// Version 4: what the bundle answers, `activity` (one user's requests) or `access` (who reached a
        /// target); absent, the bundle is of kind `activity`.
        public var kind: String?
        public var files: [ManifestEntry]

        public init(format: String, version: Int, kind: String? = nil, files: [ManifestEntry]) {
            self.format = format
            self.version = version
            self.kind = kind
            self.files = files
        }
    }

    /// What a bundle answers.
    public enum Kind: String, Sendable {
        case activity, access
    }

    public struct ManifestEntry: Codable, Sendable {
        public var path: String
        public var bytes: Int
        public var sha256: String
    }

    public static func sha256Hex(_ bytes: [UInt8]) -> String { HexCoding.encode(SHA256.hash(data: bytes)) }

    /// The files derived from the proven records, the seals and the query, as a bundle of `version` has them;
    /// the verifier rebuilds them and compares.
    static func derivedFiles(
        query: EvidenceQuery, requests: [BundleRequest], events: [BundleLocation: AuditEvent], seals: [SegmentSeal],
        ledgers: [BundleLocation: AuditEvent] = [:], version: Int
    ) -> [String: String] {
        var pages: [EvidenceHTML.Request] = []
        var activity = ""
        var ndjson = ""
        var csv = CSVOutput.columns.joined(separator: ",") + "\r\n"
        var report = """
            AUDIT EVIDENCE: activity of \(query.user)
            range:        \(query.from) … \(query.to) (end exclusive; day boundaries in \(query.timeZone))
            run by:       \(query.runBy) on \(query.host) at \(query.runAt) with auditq \(query.toolVersion)
            command:      \(query.commandLine.joined(separator: " "))
            data:         \(query.dataDirectories.joined(separator: ", "))
            requests:     \(query.requests), records: \(query.records), left out (segment not yet sealed): \(query.unsealedRecordsOmitted)
            Every record below is in proofs.ndjson with its inclusion proof against its segment's sealed Merkle root
            (seals.ndjson). Check the whole bundle with: auditq verify --bundle <this directory> [--public-key FILE]

            """
        for (n, q) in requests.enumerated() {
            activity += jsonLine(q) + "\n"
            var stored: [StoredRecord] = []
            for l in q.records {
                guard let e = events[l], let node = NodeID(hex: l.node) else { continue }
                let record = StoredRecord(e, at: RecordLocation(node: node, segment: l.segment, ordinal: l.ordinal))
                stored.append(record)
                ndjson += RecordJSON.line(record) + "\n"
                csv += CSVOutput.row(record) + "\r\n"
            }
            let head = events[q.request]
            report +=
                "\nrequest \(n + 1): "
                + (head.map {
                    "\(TimeExpression.format($0.startTimeUnixNano)) \(Rendering.what($0)) \(Rendering.status($0))"
                } ?? "?")
                + " trace \(q.traceID) (\(q.records.count) records)\n"
            report += Rendering.traceTree(stored) + "\n"
            pages.append(EvidenceHTML.Request(head: head, traceID: q.traceID, records: stored))
        }
        if version >= 3 {
            report += ledgerReport(ledgers, segments: Set(requests.flatMap { $0.records.map(\.segmentKey) }))
        }
        var files = ["activity.ndjson": activity, "events.ndjson": ndjson, "events.csv": csv, "report.txt": report]
        if version >= 3 {
            files["ledgers.ndjson"] = ledgers.keys.sorted().map { jsonLine(BundleLedger($0, ledgers[$0]!)) + "\n" }
                .joined()
        }
        if version >= 2 { files["report.html"] = EvidenceHTML.render(query: query, requests: pages, seals: seals) }
        return files
    }

    /// The closing section of report.txt (version 3): what the ledgers of the segments drawn on say.
    static func ledgerReport(_ ledgers: [BundleLocation: AuditEvent], segments: Set<String>) -> String {
        var out =
            "\ncompleteness: \(ledgers.count) ledger\(ledgers.count == 1 ? "" : "s") for the \(segments.count) segment"
        out += segments.count == 1 ? " drawn on" : "s drawn on"
        let without = segments.subtracting(ledgers.keys.map(\.segmentKey)).sorted()
        out += without.isEmpty ? "\n" : "; without a ledger (period unknown): \(without.joined(separator: ", "))\n"
        for l in ledgers.keys.sorted() {
            guard let record = try? LedgerRecord(ledgers[l]!) else {
                out += "  \(l.segmentKey): a ledger that does not read\n"
                continue
            }
            var total = LedgerCounts()
            for c in record.receivers.values { total.add(c) }
            out +=
                "  \(l.segmentKey) \(TimeExpression.format(record.periodStart)) … \(TimeExpression.format(record.periodEnd)): "
                + "received \(total.received), accepted \(total.accepted), rejected \(total.rejectedTotal)"
                + (total.rejected.isEmpty ? "" : " (\(CompletenessOutput.reasons(total)))")
                + ", dropped \(total.dropped)\n"
        }
        return out
    }

    static let readme = """
        An auditq evidence bundle (format auditq-evidence, version 3).

        query.json       the question answered, who ran it, where, when, and with which auditq version
        activity.ndjson  one line per request the user made, with every record of the trace it started
        events.ndjson    those records as JSON (the auditq search --format json schema), in activity order
        events.csv       the same records as CSV
        report.txt       the same for people: each request and its trace as a tree
        report.html      the same for a browser (one file, nothing fetched): each trace as a waterfall, the seals
        proofs.ndjson    for every record: its canonical bytes (base64) and its RFC 6962 inclusion proof (leaf
                         hash SHA-256(0x00 || record), audit path leaf side first) against its segment's root
        seals.ndjson     the seals holding those roots: the 144 signed bytes (base64) and the Ed25519 signature
        ledgers.ndjson   the collector's completeness ledger of each of those segments (what each receiver and
                         sender delivered, what was accepted, rejected and dropped); proven in proofs.ndjson too
        manifest.json    SHA-256 and size of every other file

        To check it, without the data it came from:
            auditq verify --bundle DIR [--public-key FILE]
        which checks the manifest, every proof against its seal, every signature (with the collector's public
        key), and that events, CSV, activity, ledgers and both reports are exactly what the proven records give.

        """
}

public struct EvidenceError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
