// The options commands share, each group declared once and mixed in with @OptionGroup. Rules about a value live
// in the group's validate(), so a bad value is a usage error (exit 2) before any data is read.
import ArgumentParser
import AuditQuery
import Foundation
import LogFormat
import StoreQuery

/// The environment variable `name`, read with getenv: Foundation's `ProcessInfo.environment` copies the whole
/// environment into a dictionary first, a tenth of a millisecond of every query.
func environmentValue(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// Where the data is: --data, repeatable, else $AUDITQ_DATA, else ./data.
struct DataOptions: ParsableArguments {
    @Option(
        name: .customLong("data"),
        help: "A collector data directory (repeatable). Default: $AUDITQ_DATA (colon-separated) or ./data.")
    var directories: [String] = []

    var resolved: [DataDirectory] {
        if !directories.isEmpty { return directories.map(DataDirectory.init) }
        let env = environmentValue("AUDITQ_DATA") ?? "./data"
        return env.split(separator: ":").map { DataDirectory(String($0)) }
    }

    /// The directories, each of which must exist (a usage error otherwise).
    func existing() throws -> [DataDirectory] {
        for d in resolved where !FileIO.exists(d.root) {
            throw ValidationError("no data directory at \(d.root)")
        }
        return resolved
    }

    func openStore() throws -> AuditStore {
        let directories = try existing()
        // One query per process: blocks are rarely read twice, and a large cache only costs fresh pages.
        let mib = Int(environmentValue("AUDITQ_CACHE_MIB") ?? "") ?? 32
        return try AuditStore(directories: directories, cacheBytes: mib << 20, cacheDecodedBlocks: false)
    }
}

/// --tz: the one place a time zone is read, for printed times and day boundaries alike.
struct ZoneOptions: ParsableArguments {
    @Option(
        help: "Time zone for printed times and day boundaries: UTC, +02:00, or a name like Europe/Berlin.")
    var tz: String = Self.defaultZone

    static let defaultZone = "UTC"

    func validate() throws { _ = try zone }

    var zone: TimeZoneSpec {
        get throws {
            do { return try TimeZoneSpec(parsing: tz) } catch { throw ValidationError(error.description) }
        }
    }
}

/// A time range: --date, or --from/--to, read in --tz.
struct TimeOptions: ParsableArguments {
    @Option(help: "A day (2026-11-02, today, yesterday), a week (this-week, last-week), or 7d / 12h up to now.")
    var date: String?
    @Option(
        help: "Start: a day, an instant with offset (2026-11-02T10:00:00Z, …+01:00), Unix ns, or a relative word.")
    var from: String?
    @Option(help: "End (inclusive; a day includes the whole day).") var to: String?
    @OptionGroup var zoneOptions: ZoneOptions

    var isEmpty: Bool { date == nil && from == nil && to == nil }

    var zone: TimeZoneSpec { get throws { try zoneOptions.zone } }

    /// The resolved range (printed on stderr), or `fallback` when no time option is given. Relative words are
    /// read against the clock, so this is resolved when the command runs, not in validate().
    func range(fallback: String? = nil) throws -> ClosedRange<UInt64>? {
        let zone = try zone
        let r: ClosedRange<UInt64>?
        do {
            r = try TimeExpression.range(
                date: date ?? (isEmpty ? fallback : nil), from: from, to: to, now: FileIO.nowUnixNano(), zone: zone)
        } catch {
            throw ValidationError(error.description)
        }
        if let r { note(TimeExpression.describe(r, zone: zone)) }
        return r
    }
}

/// --format for commands that print records: table, json, csv or otlp.
struct FormatOptions: ParsableArguments {
    @Option(
        help:
            "Output: table (default), json (NDJSON), csv, or otlp (OTLP/JSON: a line of spans, then one of access and log records)."
    )
    var format: String = Self.defaultFormat

    static let defaultFormat = "table"

    func validate() throws { _ = try resolved() }

    func resolved(allowed: [OutputFormat] = OutputFormat.allCases) throws -> OutputFormat {
        guard let f = OutputFormat(rawValue: format), allowed.contains(f) else {
            throw ValidationError("--format is one of \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
        return f
    }

    var palette: Palette {
        Palette(enabled: stdoutIsTerminal && environmentValue("NO_COLOR") == nil)
    }
}

/// --format for commands that print a report: table or json.
struct ReportFormatOptions: ParsableArguments {
    @Option(help: "table (default) or json.") var format: String = "table"

    func validate() throws {
        guard format == "table" || format == "json" else { throw ValidationError("--format is table or json") }
    }

    var json: Bool { format == "json" }
}

/// Conditions on the request or event that the index does not answer.
struct FilterOptions: ParsableArguments {
    @Option(help: "error (OTLP error or HTTP 5xx), ok, an HTTP status (404) or class (4xx).") var status: String?
    @Option(help: "HTTP method.") var method: String?
    @Option(name: .customLong("path-prefix"), help: "Prefix of the HTTP target or route.") var pathPrefix: String?
    @Option(name: .customLong("min-duration"), help: "At least this long: 250ms, 1.5s, 2m.") var minDuration: String?
    @Flag(
        name: .customLong("include-ledgers"),
        help: "Also the collectors' completeness ledger records (left out otherwise; see auditq completeness).")
    var includeLedgers = false

    func validate() throws { _ = try filter() }

    func filter() throws -> EventFilter {
        var f = EventFilter(method: method, pathPrefix: pathPrefix)
        f.includeLedgers = includeLedgers
        if let status {
            let usage = ValidationError("--status \(status): use error, ok, 404 or 5xx")
            switch status.lowercased() {
            case "error": f.status = .error
            case "ok": f.status = .ok
            case let s where s.count == 3 && s.hasSuffix("xx"):
                guard let k = UInt16(s.prefix(1)), (1...5).contains(k) else { throw usage }
                f.status = .httpClass(k)
            case let s:
                guard let c = UInt16(s), (100...599).contains(c) else { throw usage }
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

/// Index terms: who, which group, which service or workload, which trace. Each set one must hold.
struct TermOptions: ParsableArguments {
    @Option(help: "User subject or email.") var user: String?
    @Option(help: "Group or role.") var group: String?
    @Option(help: "Service name.") var service: String?
    @Option(help: "Workload identity (SPIFFE id).") var workload: String?
    @Option(help: "Trace id (32 hex digits).") var trace: String?

    func validate() throws {
        if let trace, trace.count != 32 || TraceID(hex: trace) == nil {
            throw ValidationError("--trace needs 32 hex digits")
        }
    }

    var terms: [EventQuery.Term] {
        var terms: [EventQuery.Term] = []
        if let user { terms.append(.user(user)) }
        if let group { terms.append(.group(group)) }
        if let service { terms.append(.service(service)) }
        if let workload { terms.append(.workload(workload)) }
        if let trace, let id = TraceID(hex: trace) { terms.append(.trace(id)) }
        return terms
    }
}
