// Evidence bundles of an access answer (`auditq evidence --service/--workload/--path-prefix/--db-namespace/--table`):
// who reached a target in a time range, as a directory an auditor checks offline like a per-user bundle. It
// holds the answer (access.ndjson, access.csv: the `auditq access` JSON and CSV), every request that reached the
// target with every stored record of its trace (traces.ndjson, events.ndjson, events.csv), each record's
// canonical bytes and inclusion proof against its sealed segment's root (proofs.ndjson), the seals
// (seals.ndjson), the segments' completeness ledgers (ledgers.ndjson), report.txt and report.html. The answer
// is a pure function of the proven records (`Reach.answer`), so `verify --bundle` recomputes it and compares,
// as it rebuilds every other derived file. Format auditq-evidence version 4, manifest kind "access"
// (docs/format/evidence-bundle.md).
import Foundation
import LogFormat
import StoreQuery

/// What was reached, as query.json states it.
public struct BundleTarget: Codable, Sendable, Hashable, CustomStringConvertible {
    public var service: String?
    public var workload: String?
    public var pathPrefix: String?
    public var dbNamespace: String?
    public var table: String?

    enum CodingKeys: String, CodingKey {
        case service, workload, table
        case pathPrefix = "path_prefix"
        case dbNamespace = "db_namespace"
    }

    public init(_ t: ReachTarget) {
        service = t.service
        workload = t.workload
        pathPrefix = t.pathPrefix
        dbNamespace = t.dbNamespace
        table = t.dbTable
    }

    public var target: ReachTarget {
        ReachTarget(
            service: service, workload: workload, pathPrefix: pathPrefix, dbNamespace: dbNamespace, dbTable: table)
    }

    /// "service orders, path prefix /admin", in the order of the options.
    public var description: String {
        var parts: [String] = []
        if let service { parts.append("service \(service)") }
        if let workload { parts.append("workload \(workload)") }
        if let pathPrefix { parts.append("path prefix \(pathPrefix)") }
        if let dbNamespace { parts.append("db.namespace \(dbNamespace)") }
        if let table { parts.append("table \(table)") }
        return parts.isEmpty ? "(nothing)" : parts.joined(separator: ", ")
    }
}

/// query.json of an access bundle: the target and range asked, who asked it where and when, and the counts.
public struct AccessEvidenceQuery: Codable, Sendable, Hashable {
    public var target: BundleTarget
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
    public var unsealedRecordsOmitted: Int = 0
    /// Lines of access.ndjson.
    public var users: Int = 0
    /// Lines of traces.ndjson: the requests that reached the target.
    public var requests: Int = 0
    /// Requests without any user.
    public var unattributedTraces: Int = 0
    /// Distinct proven records of those requests (ledgers not counted).
    public var records: Int = 0

    public init(
        target: BundleTarget, fromUnixNano: String, toUnixNano: String, from: String, to: String, timeZone: String,
        dataDirectories: [String], commandLine: [String], runBy: String, host: String, runAt: String,
        toolVersion: String
    ) {
        self.target = target
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
    }

    enum CodingKeys: String, CodingKey {
        case target, from, to, host, users, requests, records
        case fromUnixNano = "from_unix_nano"
        case toUnixNano = "to_unix_nano"
        case timeZone = "time_zone"
        case dataDirectories = "data_directories"
        case commandLine = "command_line"
        case runBy = "run_by"
        case runAt = "run_at"
        case toolVersion = "tool_version"
        case unsealedRecordsOmitted = "unsealed_records_omitted"
        case unattributedTraces = "unattributed_traces"
    }

    /// The range asked: from `from_unix_nano` to `to_unix_nano` exclusive ("0": no end). Nil when unreadable.
    public var timeRange: ClosedRange<UInt64>? {
        guard let lo = UInt64(fromUnixNano), let hi = UInt64(toUnixNano) else { return nil }
        if hi == 0 { return lo...UInt64.max }
        guard hi > lo else { return nil }
        return lo...(hi - 1)
    }
}

/// A line of traces.ndjson: one request that reached the target.
public struct BundleTrace: Codable, Sendable, Hashable {
    /// 32 hex; zeros for a record without a trace id (a request of its own, the only record of its line).
    public var traceID: String
    /// The user's subject (absent when no record of the trace carries a user).
    public var user: String?
    /// The record the user is taken from.
    public var request: BundleLocation?
    /// The records that reached the target, by (start time, location), each event once.
    public var reached: [BundleLocation]
    /// Every stored record of the trace, by start time.
    public var records: [BundleLocation]

    enum CodingKeys: String, CodingKey {
        case user, request, reached, records
        case traceID = "trace_id"
    }

    init(_ q: Reach.Request) {
        traceID = (q.id ?? q.hops[0].event.traceID).hex
        let head = q.userRecord
        user = head?.event.user?.subject
        request = head.map { BundleLocation($0.location) }
        reached = q.hops.map { BundleLocation($0.location) }
        records = q.trace.map { BundleLocation($0.location) }
    }
}

public enum AccessEvidence {
    public static let kind = EvidenceBundle.Kind.access
    /// The first bundle version with kinds.
    public static let formatVersion = 4
    /// Files every access bundle has, besides the manifest.
    public static let fileNames = [
        "README.txt", "query.json", "access.ndjson", "access.csv", "traces.ndjson", "events.ndjson", "events.csv",
        "report.txt", "report.html", "proofs.ndjson", "seals.ndjson", "ledgers.ndjson",
    ]

    /// Builds the bundle of the answer over `all` (from `AuditStore.reachRequests(…, includeDuplicates: true)`)
    /// into the empty or new directory `out`. Records of segments not yet sealed have no proof and are left out;
    /// the answer is computed from the records that remain, as the verifier recomputes it.
    public static func write(
        requests all: [Reach.Request], query: AccessEvidenceQuery, store: AuditStore, to out: String
    ) throws -> EvidenceBundle.Summary {
        guard let range = query.timeRange else { throw EvidenceError("the query's range cannot be read") }
        let isSealed = EvidenceBundle.sealedTest(store)
        let target = query.target.target
        var omitted = 0
        var requests: [Reach.Request] = []
        for q in all {
            let kept = q.trace.filter { isSealed($0.location) }
            omitted += q.trace.count - kept.count
            if let r = Reach.Request(trace: kept, target: target, timeRange: range) { requests.append(r) }
        }
        requests = Reach.ordered(requests)
        var locations: [RecordLocation] = []
        var seen = Set<RecordLocation>()
        for q in requests {
            for r in q.trace where seen.insert(r.location).inserted { locations.append(r.location) }
        }
        let (ledgers, ledgerLocations) = try EvidenceBundle.ledgers(drawnOnBy: locations, store: store)
        let proven = EvidenceBundle.proofFiles(try store.proofs(for: locations + ledgerLocations))
        let answer = Reach.answer(requests)
        var query = query
        query.unsealedRecordsOmitted = omitted
        query.users = answer.users.count
        query.requests = requests.count
        query.unattributedTraces = requests.filter { $0.userRecord == nil }.count
        query.records = locations.count

        var files = derivedFiles(query: query, requests: requests, seals: proven.segmentSeals, ledgers: ledgers)
        files["query.json"] = EvidenceBundle.jsonLine(query) + "\n"
        files["README.txt"] = readme
        files["proofs.ndjson"] = proven.proofs
        files["seals.ndjson"] = proven.seals
        let written = try EvidenceBundle.writeFiles(files, to: out, version: formatVersion, kind: kind.rawValue)
        return EvidenceBundle.Summary(
            requests: requests.count, records: locations.count, segments: proven.segmentSeals.count,
            unsealedOmitted: omitted, files: written, users: answer.users.count)
    }

    /// The files derived from the requests (their proven records), the seals, the ledgers and the query: the
    /// answer, the trace index, events, CSV, ledgers and both reports. The verifier rebuilds them and compares.
    static func derivedFiles(
        query: AccessEvidenceQuery, requests unordered: [Reach.Request], seals: [SegmentSeal],
        ledgers: [BundleLocation: AuditEvent]
    ) -> [String: String] {
        let requests = Reach.ordered(unordered)
        let answer = Reach.answer(requests)
        var traces = ""
        var ndjson = ""
        var csv = CSVOutput.columns.joined(separator: ",") + "\r\n"
        var pages: [EvidenceHTML.Request] = []
        let table =
            answer.users.isEmpty
            ? "no user's request reached it in this range\n" : ReachOutput.table(answer.users) + "\n"
        var report = """
            AUDIT EVIDENCE: who reached \(query.target.description)
            range:        \(query.from) … \(query.to) (end exclusive; day boundaries in \(query.timeZone))
            run by:       \(query.runBy) on \(query.host) at \(query.runAt) with auditq \(query.toolVersion)
            command:      \(query.commandLine.joined(separator: " "))
            data:         \(query.dataDirectories.joined(separator: ", "))
            answer:       \(answerLine(query))
            Every record below is in proofs.ndjson with its inclusion proof against its segment's sealed Merkle root
            (seals.ndjson), and the answer (access.ndjson, access.csv, the table below) is what those records give.
            Check the whole bundle with: auditq verify --bundle <this directory> [--public-key FILE]

            \(table)
            """
        if !answer.unattributedTraces.isEmpty {
            report += "traces without any user: \(answer.unattributedTraces.map(\.hex).joined(separator: " "))\n"
        }
        var drawn = Set<String>()
        for (n, q) in requests.enumerated() {
            let line = BundleTrace(q)
            traces += EvidenceBundle.jsonLine(line) + "\n"
            for r in q.trace {
                drawn.insert(BundleLocation(r.location).segmentKey)
                ndjson += RecordJSON.line(r) + "\n"
                csv += CSVOutput.row(r) + "\r\n"
            }
            let head = q.userRecord?.event
            let first = q.hops[0].event
            report +=
                "\nrequest \(n + 1): \(line.user ?? "(no user)"): "
                + (head.map {
                    "\(TimeExpression.format($0.startTimeUnixNano)) \(Rendering.what($0)) \(Rendering.status($0))"
                }
                    ?? "?")
                + " trace \(line.traceID) (\(q.trace.count) records)\n"
                + "  reached at \(TimeExpression.format(first.startTimeUnixNano)) by \(q.hops.count) record"
                + (q.hops.count == 1 ? "" : "s") + ": "
                + line.reached.map(\.description).joined(separator: ", ") + "\n"
            report += Rendering.traceTree(q.trace) + "\n"
            pages.append(
                EvidenceHTML.Request(
                    head: head, traceID: line.traceID, records: q.trace, user: line.user,
                    reached: Set(q.hops.map(\.location))))
        }
        report += EvidenceBundle.ledgerReport(ledgers, segments: drawn)
        return [
            "access.ndjson": answer.users.map { ReachOutput.jsonLine($0) + "\n" }.joined(),
            "access.csv": ReachOutput.csv(answer.users),
            "traces.ndjson": traces,
            "events.ndjson": ndjson,
            "events.csv": csv,
            "report.txt": report,
            "ledgers.ndjson": ledgers.keys.sorted().map {
                EvidenceBundle.jsonLine(BundleLedger($0, ledgers[$0]!)) + "\n"
            }
            .joined(),
            "report.html": EvidenceHTML.renderAccess(query: query, answer: answer, requests: pages, seals: seals),
        ]
    }

    static func answerLine(_ q: AccessEvidenceQuery) -> String {
        "\(q.users) users, \(q.requests) requests (\(q.unattributedTraces) without any user), records: \(q.records), "
            + "left out (segment not yet sealed): \(q.unsealedRecordsOmitted)"
    }

    /// Steps 4 and 5 of `verify --bundle` for an access bundle: the query, the trace index, the answer and
    /// every derived file, from the proven records.
    static func verify(
        contents: [String: [UInt8]], proven: [BundleLocation: AuditEvent], seals: [SegmentSeal],
        into v: inout BundleVerification
    ) {
        var query: AccessEvidenceQuery?
        if let q = contents["query.json"] {
            do { query = try JSONDecoder().decode(AccessEvidenceQuery.self, from: Data(q)) } catch {
                v.add(.invalidFormat, "query.json", "cannot read the query: \(error)")
            }
        } else {
            v.add(.missingSegment, "query.json", "the bundle has no query")
        }
        let range = query?.timeRange
        if query != nil, range == nil {
            v.add(.invalidFormat, "query.json", "the range (from_unix_nano, to_unix_nano) cannot be read")
        }
        if let target = query?.target, target.target.isEmpty {
            v.add(.invalidFormat, "query.json", "the query names no target")
        }
        // The trace index: every record listed proven, of the line's trace, listed once; every line a request
        // that reached the target.
        var requests: [Reach.Request] = []
        var listed = Set<BundleLocation>()
        var traceLines: [String: Int] = [:]
        for (n, line) in BundleVerifier.lines(contents["traces.ndjson"]) {
            guard let t = try? JSONDecoder().decode(BundleTrace.self, from: Data(line.utf8)) else {
                v.add(.invalidFormat, "traces.ndjson", line: n, "not a trace line")
                continue
            }
            let zero = t.traceID == TraceID.zero.hex
            if !zero, let earlier = traceLines.updateValue(n, forKey: t.traceID) {
                v.add(
                    .unexpectedSegment, "traces.ndjson", line: n,
                    "trace \(t.traceID) is on line \(earlier) too: a request counted twice")
            }
            if zero && t.records.count != 1 {
                v.add(
                    .metadataMismatch, "traces.ndjson", line: n, expected: "1 record", found: "\(t.records.count)",
                    "a record without a trace id is a request of its own")
            }
            var records: [StoredRecord] = []
            for l in t.records {
                if !listed.insert(l).inserted {
                    v.add(.unexpectedSegment, "traces.ndjson", line: n, record: l.description, "a record listed twice")
                }
                guard let e = proven[l], let node = NodeID(hex: l.node) else {
                    v.add(
                        .missingSegment, "traces.ndjson", line: n, record: l.description,
                        "a record of trace \(t.traceID) has no valid proof")
                    continue
                }
                if e.traceID.hex != t.traceID {
                    v.add(
                        .metadataMismatch, "traces.ndjson", line: n, record: l.description,
                        expected: "trace \(t.traceID)", found: "trace \(e.traceID.hex)", "a record of another trace")
                    continue
                }
                records.append(StoredRecord(e, at: RecordLocation(node: node, segment: l.segment, ordinal: l.ordinal)))
            }
            guard let query, let range else { continue }
            guard let r = Reach.Request(trace: records, target: query.target.target, timeRange: range) else {
                v.add(
                    .metadataMismatch, "traces.ndjson", line: n, expected: "a record reaching \(query.target)",
                    found: "none in the range", "trace \(t.traceID) did not reach the target")
                continue
            }
            requests.append(r)
            // What the line states of the request, against what its proven records give.
            let rebuilt = BundleTrace(r)
            if rebuilt.user != t.user {
                v.add(
                    .metadataMismatch, "traces.ndjson", line: n, record: rebuilt.request?.description,
                    expected: "user \(rebuilt.user ?? "none")", found: "user \(t.user ?? "none")",
                    "the user of trace \(t.traceID) is not what its proven records give")
            }
            if rebuilt.request != t.request {
                v.add(
                    .metadataMismatch, "traces.ndjson", line: n, expected: rebuilt.request?.description ?? "none",
                    found: t.request?.description ?? "none", "the record the user of trace \(t.traceID) is taken from")
            }
            if rebuilt.reached != t.reached {
                v.add(
                    .metadataMismatch, "traces.ndjson", line: n,
                    expected: rebuilt.reached.map(\.description).joined(separator: " "),
                    found: t.reached.map(\.description).joined(separator: " "),
                    "the records of trace \(t.traceID) that reached the target")
            }
        }
        // Proven records no line lists: ledgers of segments drawn on, or a trace missing from the index.
        let drawn = Set(listed.map(\.segmentKey))
        var ledgers: [BundleLocation: AuditEvent] = [:]
        var unlisted: [String: [BundleLocation]] = [:]
        for l in proven.keys.sorted() where !listed.contains(l) {
            let e = proven[l]!
            if LedgerRecord.isLedger(e) {
                ledgers[l] = e
                if !drawn.contains(l.segmentKey) {
                    v.add(
                        .unexpectedSegment, "proofs.ndjson", record: l.description,
                        "a ledger of a segment no trace draws on")
                }
                continue
            }
            unlisted[e.traceID.hex, default: []].append(l)
        }
        for (id, records) in unlisted.sorted(by: { $0.key < $1.key }) {
            v.add(
                .unexpectedSegment, "traces.ndjson", record: records[0].description, expected: "a line for trace \(id)",
                found: "none",
                "\(records.count) proven record\(records.count == 1 ? "" : "s") of trace \(id) in proofs.ndjson that no line lists"
            )
        }
        guard let query, range != nil else { return }
        let answer = Reach.answer(requests)
        let unattributed = requests.filter { $0.userRecord == nil }.count
        let expected =
            "\(answer.users.count) users, \(requests.count) requests, \(unattributed) without a user, \(listed.count) records"
        let found =
            "\(query.users) users, \(query.requests) requests, \(query.unattributedTraces) without a user, \(query.records) records"
        if expected != found {
            v.add(.metadataMismatch, "query.json", expected: expected, found: found, "the counts in the query")
        }
        let derived = derivedFiles(query: query, requests: requests, seals: seals, ledgers: ledgers)
        for name in [
            "traces.ndjson", "access.ndjson", "access.csv", "events.ndjson", "events.csv", "report.txt", "report.html",
            "ledgers.ndjson",
        ] {
            BundleVerifier.compare(name, expected: derived[name] ?? "", found: contents[name], into: &v)
        }
    }

    static let readme = """
        An auditq evidence bundle of an access answer (format auditq-evidence, version 4, kind access): every user
        whose requests reached a service, workload, route or dataset in a time range.

        query.json       the target and range asked, who ran it, where, when, with which auditq version; the counts
        access.ndjson    the answer, one line per user (the auditq access --format json schema): requests, denied,
                         failed, first and last time, example traces, service accounts marked
        access.csv       the same answer as CSV
        traces.ndjson    one line per request that reached the target: its trace id, its user and the record the
                         user is taken from, the records that reached the target, and every record of the trace
        events.ndjson    those records as JSON (the auditq search --format json schema), in the order of the traces
        events.csv       the same records as CSV
        report.txt       the same for people: the answer as a table, each request and its trace as a tree
        report.html      the same for a browser (one file, nothing fetched): each trace as a waterfall, the seals
        proofs.ndjson    for every record: its canonical bytes (base64) and its RFC 6962 inclusion proof (leaf
                         hash SHA-256(0x00 || record), audit path leaf side first) against its segment's root
        seals.ndjson     the seals holding those roots: the 144 signed bytes (base64) and the Ed25519 signature
        ledgers.ndjson   the collector's completeness ledger of each of those segments; proven in proofs.ndjson too
        manifest.json    SHA-256 and size of every other file

        To check it, without the data it came from:
            auditq verify --bundle DIR [--public-key FILE]
        which checks the manifest, every proof against its seal, every signature (with the collector's public
        key), that every request listed reached the target, and recomputes the answer, the trace index, events,
        CSV, ledgers and both reports from the proven records and compares them with the files.

        """
}
