import ArgumentParser
import AuditQuery
import LogFormat
import StoreQuery

extension AuditQ {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check data directories (checksums, Merkle roots, indexes, signatures, chains, catalog) or an "
                + "evidence bundle.",
            discussion: "Exit status: 0 when everything verifies, 3 when any problem is found.")
        @OptionGroup var data: DataOptions
        @OptionGroup var store: StoreOptions
        @Option(name: .customLong("public-key"), help: "A file with a base64 Ed25519 public key (repeatable).")
        var publicKeys: [String] = []
        @Flag(help: "Report unsigned seals as problems.") var requireSignatures = false
        @Option(help: "Check this evidence bundle offline instead of a data directory.") var bundle: String?
        @Flag(help: "Decode every record fully even when the records hash to their seal's root.") var decodeAll = false

        func validate() throws {
            if bundle != nil && !data.directories.isEmpty { throw ValidationError("give --bundle or --data, not both") }
            if bundle != nil && !store.isEmpty { throw ValidationError("give --bundle or --store, not both") }
        }

        func run() throws {
            let keys = try publicKeys.map { try SealVerifierKey.load(from: $0) }
            if let bundle {
                let outcome = BundleVerifier.verify(
                    bundle: bundle, publicKeys: keys, requireSignatures: requireSignatures)
                for p in outcome.problems { print(p) }
                print("\(bundle): \(outcome.summary)")
                if !outcome.isValid { throw ExitCode(ExitStatus.problemsFound) }
                return
            }
            if !store.isEmpty { return try verifyWithStores(keys) }
            var failed = false
            for d in data.resolved {
                let started = FileIO.monotonicNanos()
                let options = VerifyOptions(
                    publicKeys: keys, requireSignatures: requireSignatures, decodeAll: decodeAll)
                let outcome = Verifier.verifyDirectory(d, options: options) { done, all, bytes in
                    let seconds = Double(FileIO.monotonicNanos() - started) / 1e9
                    let rate = Int(Double(bytes >> 20) / max(seconds, 0.001))
                    progress("\(d.root): \(done)/\(all) segments, \(bytes >> 20) MiB, \(rate) MiB/s")
                }
                progressDone()
                for p in outcome.problems { print(p) }
                for n in outcome.retentionPending { print("\(d.root)/\(n)") }
                print("\(d.root): \(outcome.summary)")
                failed = failed || !outcome.isValid
            }
            if failed { throw ExitCode(ExitStatus.problemsFound) }
        }

        /// The local directories and every --store: each object in a bucket fetched and checked, each collector's
        /// chain judged across what is local and what is remote, the shipped ledgers against the bucket.
        func verifyWithStores(_ keys: [SealVerifierKey]) throws {
            let options = VerifyOptions(publicKeys: keys, requireSignatures: requireSignatures, decodeAll: decodeAll)
            let local = try store.localDirectories(data).map { d in
                (directory: d, outcome: Verifier.verifyDirectory(d, options: options))
            }
            var failed = false
            for bucket in try store.remotes() {
                let started = FileIO.monotonicNanos()
                let combined = try bucket.verify(local: local, options: options) { done, all, bytes in
                    let seconds = Double(FileIO.monotonicNanos() - started) / 1e9
                    let rate = Int(Double(bytes >> 20) / max(seconds, 0.001))
                    progress("\(bucket.location): \(done)/\(all) objects, \(bytes >> 20) MiB, \(rate) MiB/s")
                }
                progressDone()
                for (d, outcome) in combined.local {
                    for p in outcome.problems { print(p) }
                    for n in outcome.retentionPending { print("\(d.root)/\(n)") }
                    print("\(d.root): \(outcome.summary)")
                }
                for p in combined.bucket.problems { print(p) }
                print("\(bucket.location): \(combined.bucket.summary)")
                for p in combined.chainProblems { print(p) }
                let nodes = Set(
                    (combined.bucket.segments.compactMap(\.seal)
                        + combined.local.flatMap { $0.outcome.segments.compactMap(\.seal) })
                        .map(\.nodeID))
                print(
                    "chains across \((combined.local.map(\.directory.root) + [bucket.location]).joined(separator: ", ")): "
                        + "\(nodes.count) node\(nodes.count == 1 ? "" : "s"), "
                        + "\(combined.chainProblems.count) problem\(combined.chainProblems.count == 1 ? "" : "s")")
                failed = failed || !combined.isValid
            }
            if failed { throw ExitCode(ExitStatus.problemsFound) }
        }
    }
}
