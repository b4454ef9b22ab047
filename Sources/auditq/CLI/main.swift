// auditq: query the audit trail. A thin shell over LogFormat's store and AuditQuery's rendering.
import ArgumentParser
import AuditQuery
import Foundation
import LogFormat

struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: "A collector data directory (repeatable). Default: $AUDITQ_DATA or ./data.")
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
        return try AuditStore(directories: resolved)
    }
}

struct TimeOptions: ParsableArguments {
    @Option(help: "A day (2026-11-02, today, yesterday), UTC.") var date: String?
    @Option(help: "Start: a day, an instant with offset (2026-11-02T10:00:00Z), Unix ns, or Nd.") var from: String?
    @Option(help: "End (inclusive; a day includes the whole day).") var to: String?

    func range() throws -> ClosedRange<UInt64>? {
        do {
            return try TimeExpression.range(date: date, from: from, to: to, now: FileIO.nowUnixNano())
        } catch let e as TimeExpression.ParseError {
            throw ValidationError(e.description)
        }
    }
}

@main
struct AuditQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auditq",
        abstract: "Query the audit trail: who did what, and where each request went.",
        subcommands: [Search.self, Trace.self, Stats.self, Verify.self])

    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Events matching all the given terms and the time range.")
        @OptionGroup var data: DataOptions
        @OptionGroup var time: TimeOptions
        @Option(help: "User subject or email.") var user: String?
        @Option(help: "Group or role.") var group: String?
        @Option(help: "Service name.") var service: String?
        @Option(help: "Workload identity (SPIFFE id).") var workload: String?
        @Option(help: "Trace id (32 hex digits).") var trace: String?
        @Option(help: "At most this many events.") var limit: Int?
        @Flag(help: "Also print each event's whole trace as a tree.") var traces = false

        func validate() throws {
            if let trace, TraceID(hex: trace) == nil { throw ValidationError("--trace needs 32 hex digits") }
        }

        func run() throws {
            let store = try data.openStore()
            var terms: [EventQuery.Term] = []
            if let user { terms.append(.user(user)) }
            if let group { terms.append(.group(group)) }
            if let service { terms.append(.service(service)) }
            if let workload { terms.append(.workload(workload)) }
            if let trace, let id = TraceID(hex: trace) { terms.append(.trace(id)) }
            let range = try time.range()
            if let range {
                FileHandle.standardError.write(
                    Data("searching \(TimeExpression.format(range.lowerBound)) … \(TimeExpression.format(range.upperBound))\n".utf8))
            }
            let records = try store.search(EventQuery(terms: terms, timeRange: range, limit: limit))
            guard !records.isEmpty else {
                FileHandle.standardError.write(Data("no matching events\n".utf8))
                return
            }
            print(Rendering.table(records))
            if traces {
                let ids = Array(Set(records.map(\.event.traceID).filter { !$0.isZero }))
                let found = try store.traces(ids)
                for id in ids.sorted() {
                    print("\ntrace \(id.hex)")
                    print(Rendering.traceTree(found[id] ?? []))
                }
            }
        }
    }

    struct Trace: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One trace as a tree across every hop.")
        @OptionGroup var data: DataOptions
        @Argument(help: "Trace id (32 hex digits).") var id: String

        func validate() throws {
            if TraceID(hex: id) == nil || id.count != 32 { throw ValidationError("a trace id is 32 hex digits") }
        }

        func run() throws {
            let records = try data.openStore().trace(TraceID(hex: id)!)
            guard !records.isEmpty else {
                FileHandle.standardError.write(Data("no events for trace \(id)\n".utf8))
                return
            }
            print(Rendering.traceTree(records))
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Segments, events, bytes and time coverage.")
        @OptionGroup var data: DataOptions

        func run() throws {
            let store = try data.openStore()
            let sealed = store.sealedSegments
            let events = sealed.reduce(0) { $0 + $1.entry.seal.recordCount }
            let bytes = sealed.reduce(0) { $0 + $1.entry.fileSize }
            let open = try store.openSegmentReaders()
            print("sealed segments: \(sealed.count)")
            print("events in sealed segments: \(events)")
            print("bytes on disk: \(bytes)" + (events > 0 ? " (\(String(format: "%.1f", Double(bytes) / Double(events))) bytes/event)" : ""))
            if let lo = sealed.map(\.entry.seal.minTime).min(), let hi = sealed.map(\.entry.seal.maxTime).max() {
                print("time coverage: \(TimeExpression.format(lo)) … \(TimeExpression.format(hi))")
            }
            print("unsealed segments: \(open.count) with \(open.reduce(0) { $0 + Int($1.recordCount) }) readable events")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check checksums, Merkle roots, indexes, signatures, chains and the catalog.",
            discussion: "Exit status: 0 when everything verifies, 3 when any problem is found.")
        @OptionGroup var data: DataOptions
        @Option(name: .customLong("public-key"), help: "A file with a base64 Ed25519 public key (repeatable).")
        var publicKeys: [String] = []
        @Flag(help: "Report unsigned seals as problems.") var requireSignatures = false

        func run() throws {
            let keys = try publicKeys.map { try SealVerifierKey.load(from: $0) }
            var failed = false
            for d in data.resolved {
                let outcome = Verifier.verifyDirectory(
                    d, options: VerifyOptions(publicKeys: keys, requireSignatures: requireSignatures))
                for p in outcome.problems { print(p) }
                print("\(d.root): \(outcome.summary)")
                failed = failed || !outcome.isValid
            }
            if failed { throw ExitCode(3) }
        }
    }
}
