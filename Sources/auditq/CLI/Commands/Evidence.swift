import ArgumentParser
import AuditQuery
import Foundation
import LogFormat
import StoreQuery

extension AuditQ {
    struct Evidence: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "evidence",
            abstract:
                "Write a self-contained, offline-verifiable evidence bundle of what a user did, or of who reached a target.",
            discussion: """
                With --user: what the user did (the answer of auditq activity). With --service, --workload, \
                --path-prefix, --db-namespace or --table: who reached that target (the answer of auditq access, \
                with every trace that reached it). Check either with: auditq verify --bundle DIR. Records of \
                segments not yet sealed have no proof and are left out (counted in query.json); an access answer \
                is computed from the records that remain.
                """)
        @OptionGroup var data: DataOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var time: TimeOptions
        @Option(help: "User subject or email.") var user: String?
        @OptionGroup var reached: TargetOptions
        @Option(help: "The bundle directory to create (must not exist or be empty).") var out: String

        func validate() throws {
            if time.isEmpty { throw ValidationError("give --date or --from/--to") }
            if (user == nil) == reached.target.isEmpty {
                throw ValidationError(
                    "give --user, or what was reached (--service, --workload, --path-prefix, --db-namespace, --table)")
            }
            if let items = try? FileManager.default.contentsOfDirectory(atPath: out), !items.isEmpty {
                throw ValidationError("--out \(out) exists and is not empty")
            }
        }

        func run() throws {
            let zone = try time.zone
            guard let range = try time.range() else { return }
            // Over a bucket, only the days the range and its requests' traces reach are listed.
            let store = try self.store.openStore(data, timeRange: StoreOptions.withTraceReach(range))
            guard let user else { return try writeAccess(store: store, zone: zone, range: range) }
            progress("finding the requests of \(user)…")
            // Evidence shows every stored copy: a retried export stored twice appears twice, marked in the report.
            let requests = try store.activity(user: user, timeRange: range, includeDuplicates: true)
            let now = FileIO.nowUnixNano()
            let env = ProcessInfo.processInfo.environment
            let query = EvidenceQuery(
                user: user, fromUnixNano: String(range.lowerBound), toUnixNano: String(range.upperBound &+ 1),
                from: TimeExpression.format(range.lowerBound, zone: zone),
                to: range.upperBound == .max ? "(no end)" : TimeExpression.format(range.upperBound + 1, zone: zone),
                timeZone: zone.description,
                dataDirectories: (try self.store.localDirectories(data)).map(\.root) + self.store.stores,
                commandLine: CommandLine.arguments, runBy: env["USER"] ?? env["LOGNAME"] ?? "uid \(getuid())",
                host: ProcessInfo.processInfo.hostName, runAt: TimeExpression.format(now),
                toolVersion: AuditQVersion.current, unsealedRecordsOmitted: 0, requests: 0, records: 0)
            progress("proving \(requests.reduce(0) { $0 + $1.trace.count }) records…")
            let summary = try EvidenceBundle.write(requests: requests, query: query, store: store, to: out)
            progressDone()
            if summary.requests == 0 { note("no requests by \(user) in that range; the bundle records that") }
            if summary.unsealedOmitted > 0 {
                note("\(summary.unsealedOmitted) records are in segments not yet sealed and have no proof: left out")
            }
            print(
                "\(out): \(summary.requests) requests, \(summary.records) records with inclusion proofs from "
                    + "\(summary.segments) sealed segments")
            print("files: \(summary.files.joined(separator: ", "))")
        }

        /// The bundle of who reached the target.
        func writeAccess(store: AuditStore, zone: TimeZoneSpec, range: ClosedRange<UInt64>) throws {
            let target = reached.target
            progress("finding what reached \(BundleTarget(target)) and their traces…")
            let requests = try store.reachRequests(of: target, timeRange: range, includeDuplicates: true)
            let now = FileIO.nowUnixNano()
            let env = ProcessInfo.processInfo.environment
            let query = AccessEvidenceQuery(
                target: BundleTarget(target), fromUnixNano: String(range.lowerBound),
                toUnixNano: String(range.upperBound &+ 1),
                from: TimeExpression.format(range.lowerBound, zone: zone),
                to: range.upperBound == .max ? "(no end)" : TimeExpression.format(range.upperBound + 1, zone: zone),
                timeZone: zone.description, dataDirectories: data.resolved.map(\.root),
                commandLine: CommandLine.arguments, runBy: env["USER"] ?? env["LOGNAME"] ?? "uid \(getuid())",
                host: ProcessInfo.processInfo.hostName, runAt: TimeExpression.format(now),
                toolVersion: AuditQVersion.current)
            progress("proving \(requests.reduce(0) { $0 + $1.trace.count }) records…")
            let summary = try AccessEvidence.write(requests: requests, query: query, store: store, to: out)
            progressDone()
            if summary.requests == 0 { note("nothing reached it in that range; the bundle records that") }
            if summary.unsealedOmitted > 0 {
                note("\(summary.unsealedOmitted) records are in segments not yet sealed and have no proof: left out")
            }
            print(
                "\(out): \(summary.users) users, \(summary.requests) requests, \(summary.records) records with "
                    + "inclusion proofs from \(summary.segments) sealed segments")
            print("files: \(summary.files.joined(separator: ", "))")
        }
    }
}
