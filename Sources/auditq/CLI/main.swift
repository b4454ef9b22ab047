// auditq: query the audit trail. A thin shell over LogFormat's store and AuditQuery's rendering.
//
// Exit status: 0 success (no matches included: a message goes to stderr), 1 an operational failure (a file
// cannot be read or written), 2 a usage error, 3 verification found problems, 4 damaged data met while
// answering a query (the message names the file).
import ArgumentParser
import AuditQuery
import Foundation
import LogFormat
import StoreQuery

enum ExitStatus {
    static let failure: Int32 = 1
    static let usage: Int32 = 2
    static let problemsFound: Int32 = 3
    static let damagedData: Int32 = 4
}

func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

let stderrIsTerminal = isatty(2) == 1
let stdoutIsTerminal = isatty(1) == 1

/// Progress on stderr, only when it is a terminal.
func progress(_ s: String) {
    guard stderrIsTerminal else { return }
    FileHandle.standardError.write(Data(("\r\u{1B}[K" + s).utf8))
}

func progressDone() {
    guard stderrIsTerminal else { return }
    FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
}

struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: "A collector data directory (repeatable). Default: $AUDITQ_DATA (colon-separated) or ./data.")
    var directories: [String] = []

    var resolved: [DataDirectory] {
        if !directories.isEmpty { return directories.map(DataDirectory.init) }
        let env = ProcessInfo.processInfo.environment["AUDITQ_DATA"] ?? "./data"
        return env.split(separator: ":").map { DataDirectory(String($0)) }
    }

    func openStore() throws -> AuditStore {
        for d in resolved where !FileManager.default.fileExists(atPath: d.root) {
            throw ValidationError("no data directory at \(d.root)")
        }
        // One query per process: blocks are rarely read twice, and a large cache only costs fresh pages.
        let mib = Int(ProcessInfo.processInfo.environment["AUDITQ_CACHE_MIB"] ?? "") ?? 32
        return try AuditStore(directories: resolved, cacheBytes: mib << 20)
    }
}

struct TimeOptions: ParsableArguments {
    @Option(help: "A day (2026-11-02, today, yesterday), a week (this-week, last-week), or 7d / 12h up to now.")
    var date: String?
    @Option(help: "Start: a day, an instant with offset (2026-11-02T10:00:00Z, …+01:00), Unix ns, or a relative word.")
    var from: String?
    @Option(help: "End (inclusive; a day includes the whole day).") var to: String?
    @Option(help: "Time zone for day boundaries and printed times: UTC (default), +02:00, or a name like Europe/Berlin.")
    var tz: String = "UTC"

    func zone() throws -> TimeZoneSpec {
        do { return try TimeZoneSpec(parsing: tz) } catch { throw ValidationError(error.description) }
    }

    /// The resolved range (printed on stderr), or `fallback` when no time option is given.
    func range(fallback: String? = nil) throws -> ClosedRange<UInt64>? {
        let zone = try zone()
        let r: ClosedRange<UInt64>?
        do {
            r = try TimeExpression.range(
                date: date ?? (from == nil && to == nil ? fallback : nil), from: from, to: to, now: FileIO.nowUnixNano(), zone: zone)
        } catch {
            throw ValidationError(error.description)
        }
        if let r { note(TimeExpression.describe(r, zone: zone)) }
        return r
    }
}

struct FormatOptions: ParsableArguments {
    @Option(help: "Output: table (default), json (NDJSON), csv, or otlp (OTLP/JSON of the spans).")
    var format: String = "table"

    func resolved(allowed: [OutputFormat] = OutputFormat.allCases) throws -> OutputFormat {
        guard let f = OutputFormat(rawValue: format), allowed.contains(f) else {
            throw ValidationError("--format is one of \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
        return f
    }

    var palette: Palette {
        Palette(enabled: stdoutIsTerminal && ProcessInfo.processInfo.environment["NO_COLOR"] == nil)
    }
}

struct FilterOptions: ParsableArguments {
    @Option(help: "error (OTLP error or HTTP 5xx), ok, an HTTP status (404) or class (4xx).") var status: String?
    @Option(help: "HTTP method.") var method: String?
    @Option(name: .customLong("path-prefix"), help: "Prefix of the HTTP target or route.") var pathPrefix: String?
    @Option(name: .customLong("min-duration"), help: "At least this long: 250ms, 1.5s, 2m.") var minDuration: String?

    func filter() throws -> EventFilter {
        var f = EventFilter(method: method, pathPrefix: pathPrefix)
        if let status {
            switch status.lowercased() {
            case "error": f.status = .error
            case "ok": f.status = .ok
            case let s where s.count == 3 && s.hasSuffix("xx"):
                guard let k = UInt16(s.prefix(1)), (1...5).contains(k) else { throw ValidationError("--status \(status): use error, ok, 404 or 5xx") }
                f.status = .httpClass(k)
            case let s:
                guard let c = UInt16(s), (100...599).contains(c) else { throw ValidationError("--status \(status): use error, ok, 404 or 5xx") }
                f.status = .http(c)
            }
        }
        if let minDuration {
            guard let ns = DurationExpression.parse(minDuration) else {
                throw ValidationError("--min-duration \(minDuration): use 250ms, 1.5s, 2m, 100us")
            }
            f.minDurationNanos = ns
        }
        return f
    }
}

func emit(_ records: [StoredRecord], format: OutputFormat, zone: TimeZoneSpec, palette: Palette) {
    switch format {
    case .table: print(Rendering.table(records, zone: zone, palette: palette))
    case .json: print(records.map { RecordJSON.line($0) }.joined(separator: "\n"))
    case .csv: FileHandle.standardOutput.write(Data(CSVOutput.table(records).utf8))
    case .otlp: emitOTLP(records.map(\.event))
    }
}

func emitOTLP(_ events: [AuditEvent]) {
    let spans = events.filter { $0.kind == .span }
    if spans.count < events.count {
        note("otlp: \(events.count - spans.count) access or log events are not spans and are left out")
    }
    print(OTLPExport.json(spans))
}

@main
struct AuditQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auditq",
        abstract: "Query the audit trail: who did what, and where each request went.",
        discussion: """
            Exit status: 0 success (also when nothing matches), 1 a file could not be read or written, 2 a usage \
            error, 3 verification found problems, 4 damaged data met while answering (the file is named).
            """,
        version: AuditQVersion.current,
        subcommands: [Activity.self, Search.self, Trace.self, Stats.self, Evidence.self, Verify.self, Retention.self])

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as LogFormatError {
            let damaged: Set<LogFormatError.Code> = [.truncated, .badMagic, .unsupportedVersion, .checksumMismatch, .malformed, .compression, .integrity]
            if damaged.contains(error.code) {
                note("auditq: damaged data in \(error.path ?? "the store"): \(error)")
                Foundation.exit(ExitStatus.damagedData)
            }
            note("auditq: \(error)")
            Foundation.exit(ExitStatus.failure)
        } catch {
            if exitCode(for: error) == .validationFailure {
                note(fullMessage(for: error))
                Foundation.exit(ExitStatus.usage)
            }
            exit(withError: error)
        }
    }

    struct Activity: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What a user did: one entry per request, each with the whole trace it started.",
            discussion: "Without a time option, today (in --tz). Downstream hops need not carry the user: they are found by trace id.")
        @OptionGroup var data: DataOptions
        @OptionGroup var time: TimeOptions
        @OptionGroup var output: FormatOptions
        @OptionGroup var filters: FilterOptions
        @Option(help: "User subject or email.") var user: String
        @Option(help: "At most this many requests.") var limit: Int?
        @Flag(help: "Table output: print each request's trace as a tree under it.") var tree = false

        func validate() throws {
            _ = try output.resolved()
            _ = try filters.filter()
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() throws {
            let store = try data.openStore()
            let zone = try time.zone()
            guard let range = try time.range(fallback: "today") else { return }
            progress("reading the requests of \(user) and their traces…")
            let requests = try store.activity(user: user, timeRange: range, filter: try filters.filter(), limit: limit)
            progressDone()
            guard !requests.isEmpty else {
                note("no requests by \(user) in that range")
                return
            }
            let hops = requests.reduce(0) { $0 + $1.trace.count }
            note("\(requests.count) requests by \(user), \(hops) records in their traces")
            switch try output.resolved() {
            case .table:
                if tree {
                    for q in requests {
                        print(Rendering.activityTable([q], zone: zone, palette: output.palette))
                        print(Rendering.traceTree(q.trace, zone: zone, palette: output.palette) + "\n")
                    }
                } else {
                    print(Rendering.activityTable(requests, zone: zone, palette: output.palette))
                }
            case .json: print(requests.map(RecordJSON.activityLine).joined(separator: "\n"))
            case .csv:
                var out = (CSVOutput.columns + ["request"]).joined(separator: ",") + "\r\n"
                for (n, q) in requests.enumerated() {
                    for r in q.trace { out += CSVOutput.row(r, extra: [String(n + 1)]) + "\r\n" }
                }
                FileHandle.standardOutput.write(Data(out.utf8))
            case .otlp: emitOTLP(requests.flatMap { $0.trace.map(\.event) })
            }
        }
    }

    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Events matching all the given conditions and the time range.")
        @OptionGroup var data: DataOptions
        @OptionGroup var time: TimeOptions
        @OptionGroup var output: FormatOptions
        @OptionGroup var filters: FilterOptions
        @Option(help: "User subject or email.") var user: String?
        @Option(help: "Group or role.") var group: String?
        @Option(help: "Service name.") var service: String?
        @Option(help: "Workload identity (SPIFFE id).") var workload: String?
        @Option(help: "Trace id (32 hex digits).") var trace: String?
        @Option(help: "At most this many events.") var limit: Int?
        @Flag(help: "Table output: also print each event's whole trace as a tree.") var traces = false

        func validate() throws {
            if let trace, trace.count != 32 || TraceID(hex: trace) == nil { throw ValidationError("--trace needs 32 hex digits") }
            _ = try output.resolved()
            _ = try filters.filter()
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() throws {
            let store = try data.openStore()
            var terms: [EventQuery.Term] = []
            if let user { terms.append(.user(user)) }
            if let group { terms.append(.group(group)) }
            if let service { terms.append(.service(service)) }
            if let workload { terms.append(.workload(workload)) }
            if let trace, let id = TraceID(hex: trace) { terms.append(.trace(id)) }
            let zone = try time.zone()
            let range = try time.range()
            progress("searching…")
            let records = try store.search(EventQuery(terms: terms, timeRange: range, limit: limit, filter: try filters.filter()))
            progressDone()
            guard !records.isEmpty else {
                note("no matching events")
                return
            }
            emit(records, format: try output.resolved(), zone: zone, palette: output.palette)
            if traces, try output.resolved() == .table {
                let ids = Array(Set(records.map(\.event.traceID).filter { !$0.isZero }))
                let found = try store.traces(ids)
                for id in ids.sorted() {
                    print("\ntrace \(id.hex)")
                    print(Rendering.traceTree(found[id] ?? [], zone: zone, palette: output.palette))
                }
            }
        }
    }

    struct Trace: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One trace as a tree across every hop, with timings and a waterfall.",
            discussion: "Every stored copy is shown: retries as copies, orphans and clock skew as notes; times are as stored.")
        @OptionGroup var data: DataOptions
        @OptionGroup var output: FormatOptions
        @Option(help: "Time zone for printed times (UTC by default).") var tz: String = "UTC"
        @Argument(help: "Trace id (32 hex digits).") var id: String

        func validate() throws {
            if TraceID(hex: id) == nil || id.count != 32 { throw ValidationError("a trace id is 32 hex digits") }
            _ = try output.resolved()
        }

        func run() throws {
            let zone: TimeZoneSpec
            do { zone = try TimeZoneSpec(parsing: tz) } catch { throw ValidationError(error.description) }
            let records = try data.openStore().trace(TraceID(hex: id)!, includeDuplicates: true)
            guard !records.isEmpty else {
                note("no events for trace \(id)")
                return
            }
            switch try output.resolved() {
            case .table: print(Rendering.traceTree(records, zone: zone, palette: output.palette))
            case .json:
                let analysis = TraceAnalysis(records)
                for node in analysis.ordered {
                    var extra: [(String, String)] = [("depth", String(node.depth)), ("orphan", String(node.orphan))]
                    if let d = node.duplicateOf { extra.append(("duplicate_of", RecordJSON.location(d))) }
                    if let s = node.startsBeforeParent { extra.append(("starts_before_parent_ns", String(s))) }
                    if let s = node.endsAfterParent { extra.append(("ends_after_parent_ns", String(s))) }
                    print(RecordJSON.line(node.record, extra: extra))
                }
            case .csv: FileHandle.standardOutput.write(Data(CSVOutput.table(TraceAnalysis(records).ordered.map(\.record)).utf8))
            case .otlp: emitOTLP(AuditStore.droppingDuplicates(records).map(\.event))
            }
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Segments per tier, events, bytes, compression and time coverage.")
        @OptionGroup var data: DataOptions
        @Option(help: "table (default) or json.") var format: String = "table"
        @Option(help: "Time zone for printed times.") var tz: String = "UTC"

        func validate() throws {
            guard format == "table" || format == "json" else { throw ValidationError("--format is table or json") }
        }

        func run() throws {
            let zone: TimeZoneSpec
            do { zone = try TimeZoneSpec(parsing: tz) } catch { throw ValidationError(error.description) }
            let stats = try StoreStats.collect(try data.openStore())
            print(format == "json" ? stats.json() : stats.table(zone: zone))
        }
    }

    struct Evidence: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a self-contained, offline-verifiable evidence bundle of what a user did.",
            discussion: "Check it with: auditq verify --bundle DIR. Records of segments not yet sealed have no proof and are left out (counted in query.json).")
        @OptionGroup var data: DataOptions
        @OptionGroup var time: TimeOptions
        @Option(help: "User subject or email.") var user: String
        @Option(help: "The bundle directory to create (must not exist or be empty).") var out: String

        func validate() throws {
            if time.date == nil && time.from == nil && time.to == nil { throw ValidationError("give --date or --from/--to") }
            if let items = try? FileManager.default.contentsOfDirectory(atPath: out), !items.isEmpty {
                throw ValidationError("--out \(out) exists and is not empty")
            }
        }

        func run() throws {
            let store = try data.openStore()
            let zone = try time.zone()
            guard let range = try time.range() else { return }
            progress("finding the requests of \(user)…")
            // Evidence shows every stored copy: a retried export stored twice appears twice, marked in the report.
            let requests = try store.activity(user: user, timeRange: range, includeDuplicates: true)
            let now = FileIO.nowUnixNano()
            let env = ProcessInfo.processInfo.environment
            let query = EvidenceQuery(
                user: user, fromUnixNano: String(range.lowerBound), toUnixNano: String(range.upperBound &+ 1),
                from: TimeExpression.format(range.lowerBound, zone: zone),
                to: range.upperBound == .max ? "(no end)" : TimeExpression.format(range.upperBound + 1, zone: zone),
                timeZone: zone.description, dataDirectories: data.resolved.map(\.root), commandLine: CommandLine.arguments,
                runBy: env["USER"] ?? env["LOGNAME"] ?? "uid \(getuid())", host: ProcessInfo.processInfo.hostName,
                runAt: TimeExpression.format(now), toolVersion: AuditQVersion.current, unsealedRecordsOmitted: 0, requests: 0, records: 0)
            progress("proving \(requests.reduce(0) { $0 + $1.trace.count }) records…")
            let summary = try EvidenceBundle.write(requests: requests, query: query, store: store, to: out)
            progressDone()
            if summary.requests == 0 { note("no requests by \(user) in that range; the bundle records that") }
            if summary.unsealedOmitted > 0 {
                note("\(summary.unsealedOmitted) records are in segments not yet sealed and have no proof: left out")
            }
            print("\(out): \(summary.requests) requests, \(summary.records) records with inclusion proofs from \(summary.segments) sealed segments")
            print("files: \(summary.files.joined(separator: ", "))")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check data directories (checksums, Merkle roots, indexes, signatures, chains, catalog) or an evidence bundle.",
            discussion: "Exit status: 0 when everything verifies, 3 when any problem is found.")
        @OptionGroup var data: DataOptions
        @Option(name: .customLong("public-key"), help: "A file with a base64 Ed25519 public key (repeatable).")
        var publicKeys: [String] = []
        @Flag(help: "Report unsigned seals as problems.") var requireSignatures = false
        @Option(help: "Check this evidence bundle offline instead of a data directory.") var bundle: String?
        @Flag(help: "Decode every record fully even when the records hash to their seal's root.") var decodeAll = false

        func validate() throws {
            if bundle != nil && !data.directories.isEmpty { throw ValidationError("give --bundle or --data, not both") }
        }

        func run() throws {
            let keys = try publicKeys.map { try SealVerifierKey.load(from: $0) }
            if let bundle {
                let outcome = BundleVerifier.verify(bundle: bundle, publicKeys: keys, requireSignatures: requireSignatures)
                for p in outcome.problems { print(p) }
                print("\(bundle): \(outcome.summary)")
                if !outcome.isValid { throw ExitCode(ExitStatus.problemsFound) }
                return
            }
            var failed = false
            for d in data.resolved {
                let started = FileIO.monotonicNanos()
                let outcome = Verifier.verifyDirectory(
                    d, options: VerifyOptions(publicKeys: keys, requireSignatures: requireSignatures, decodeAll: decodeAll)
                ) { done, all, bytes in
                    let seconds = Double(FileIO.monotonicNanos() - started) / 1e9
                    progress("\(d.root): \(done)/\(all) segments, \(bytes >> 20) MiB, \(Int(Double(bytes >> 20) / max(seconds, 0.001))) MiB/s")
                }
                progressDone()
                for p in outcome.problems { print(p) }
                for n in outcome.retentionPending { print("\(d.root)/\(n)") }
                print("\(d.root): \(outcome.summary)")
                failed = failed || !outcome.isValid
            }
            if failed { throw ExitCode(ExitStatus.problemsFound) }
        }
    }

    struct Retention: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Archive and expire sealed segments by the retention policy, honouring legal holds.",
            discussion: """
                The policy is the retention: section of the collector's YAML file (--config) or of a file of its own                 (--policy). `plan` is a dry run; `apply` does the work, crash-safe and idempotent: run it from cron or                 a Kubernetes CronJob while the collector writes. Exit status: 0 done (or another job was running:                 nothing done, said on stderr), 1 a segment could not be handled (named; the next run retries), 2 a                 usage or policy error.
                """,
            subcommands: [Plan.self, Apply.self])

        struct PolicyOptions: ParsableArguments {
            @OptionGroup var data: DataOptions
            @Option(name: [.customLong("config"), .customLong("policy")], help: "The YAML file with the retention: section.")
            var policyFile: String
            @Option(help: "table (default) or json.") var format: String = "table"
            @Option(help: "Evaluate the policy as of this instant (ISO 8601 with offset, or Unix ns) instead of now.")
            var now: String?
            @Option(help: "Time zone for printed times.") var tz: String = "UTC"

            func validate() throws {
                guard format == "table" || format == "json" else { throw ValidationError("--format is table or json") }
                if let now, UnixTime.parseInstant(now) == nil && UInt64(now) == nil {
                    throw ValidationError("--now must be an ISO 8601 instant with an offset (2026-11-02T10:00:00Z) or Unix ns")
                }
            }

            func policy() throws -> RetentionPolicy {
                guard let data = FileManager.default.contents(atPath: policyFile) else {
                    throw ValidationError("cannot read the policy file \(policyFile)")
                }
                do {
                    return try RetentionPolicy.parse(yaml: String(decoding: data, as: UTF8.self), source: policyFile)
                } catch {
                    throw ValidationError(error.description)
                }
            }

            var instant: UInt64 { now.flatMap { UnixTime.parseInstant($0) ?? UInt64($0) } ?? FileIO.nowUnixNano() }

            func directories() throws -> [DataDirectory] {
                for d in data.resolved where !FileManager.default.fileExists(atPath: d.root) {
                    throw ValidationError("no data directory at \(d.root)")
                }
                return data.resolved
            }
        }

        struct Plan: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Dry run: which segments would be archived, expired or held, with bytes before and after.")
            @OptionGroup var options: PolicyOptions

            func run() throws {
                let policy = try options.policy()
                let zone: TimeZoneSpec
                do { zone = try TimeZoneSpec(parsing: options.tz) } catch { throw ValidationError(error.description) }
                for d in try options.directories() {
                    let plan = try RetentionJob(directory: d, policy: policy).plan(now: options.instant)
                    if options.format == "json" {
                        print(RetentionOutput.json(plan.items, now: plan.now, unchanged: plan.unchanged, applied: false))
                    } else {
                        print("\(d.root):")
                        print(RetentionOutput.table(plan.items, unchanged: plan.unchanged, applied: false, zone: zone))
                    }
                }
            }
        }

        struct Apply: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Archive, expire (leaving tombstones) and finish interrupted work; safe to run again at any time.")
            @OptionGroup var options: PolicyOptions
            @Option(help: .hidden) var stepDelayMs: UInt64 = 0

            func run() throws {
                let policy = try options.policy()
                let zone: TimeZoneSpec
                do { zone = try TimeZoneSpec(parsing: options.tz) } catch { throw ValidationError(error.description) }
                var failed = false
                for d in try options.directories() {
                    var job = RetentionJob(directory: d, policy: policy)
                    job.stepDelayNanos = stepDelayMs * 1_000_000
                    let report = try job.apply(now: options.instant)
                    if report.busy {
                        note("auditq: \(d.root): another retention job is running; nothing done")
                        continue
                    }
                    let held = report.plan.items.filter { $0.action == .held }
                    if options.format == "json" {
                        print(RetentionOutput.json(report.done + held, now: report.plan.now, unchanged: report.plan.unchanged, problems: report.problems, applied: true))
                    } else {
                        print("\(d.root):")
                        print(RetentionOutput.table(report.done + held, unchanged: report.plan.unchanged, problems: report.problems, applied: true, zone: zone))
                    }
                    failed = failed || !report.problems.isEmpty
                }
                if failed { throw ExitCode(ExitStatus.failure) }
            }
        }
    }
}
