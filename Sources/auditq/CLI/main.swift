// auditq: query the audit trail. A thin shell over StoreQuery's store and AuditQuery's rendering. This file is the
// root command; each subcommand lives in Commands/, the options they share in Options.swift.
import ArgumentParser
import AuditQuery
import Foundation
import LogFormat

/// The exit statuses of every auditq command, the one table (it is also printed by `auditq --help`). Never
/// renumber: scripts and CronJobs act on them.
enum ExitStatus {
    static let success: Int32 = 0
    /// A file could not be read or written; `retention apply` could not handle a segment.
    static let failure: Int32 = 1
    /// A usage error: an unknown option, a bad value, a missing data directory, an unreadable policy.
    static let usage: Int32 = 2
    /// `verify` found problems; `completeness` found time or segments its ledgers cannot vouch for.
    static let problemsFound: Int32 = 3
    /// A query met damaged data (the message names the file).
    static let damagedData: Int32 = 4

    static let table = """
        Exit status (every command):
          0  success, also when nothing matches (a note says so on stderr)
          1  a file could not be read or written; retention apply: a segment failed
          2  usage error: bad option or value, no data directory, bad policy
          3  verify found problems; completeness found a period it cannot vouch for
          4  damaged data met while answering a query (the file is named)
        """
}

struct AuditQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auditq",
        abstract: "Query the audit trail: who did what, and where each request went.",
        discussion: ExitStatus.table,
        version: AuditQVersion.current,
        subcommands: [
            Activity.self, Access.self, Search.self, Count.self, Completeness.self, Trace.self, Stats.self,
            Evidence.self, Verify.self, Retention.self,
        ])

    static func main() {
        keepFreedMemory()
        EarlyListing.start(CommandLine.arguments)
        do {
            // The plain lines of the query commands without argument-parser's reflection (PlainCommandLine).
            var command = try PlainCommandLine.command(Array(CommandLine.arguments.dropFirst())) ?? parseAsRoot()
            try command.run()
        } catch let error as LogFormatError {
            let damaged: Set<LogFormatError.Code> = [
                .truncated, .badMagic, .unsupportedVersion, .checksumMismatch, .malformed, .compression, .integrity,
            ]
            if damaged.contains(error.code) {
                note("auditq: damaged data in \(error.path ?? "the store"): \(error)")
                Foundation.exit(ExitStatus.damagedData)
            }
            note("auditq: \(error)")
            Foundation.exit(ExitStatus.failure)
        } catch {
            // argument-parser's own code for usage errors is EX_USAGE (64); auditq's is 2.
            if exitCode(for: error) == .validationFailure {
                note(fullMessage(for: error))
                Foundation.exit(ExitStatus.usage)
            }
            // --help and --version exit 0, ExitCode keeps its status, anything else is 1.
            exit(withError: error)
        }
    }
}

AuditQ.main()

/// One question per process: freed memory is kept for the next allocation instead of going back to the kernel
/// (glibc returns large blocks and the heap's top), which would hand out fresh pages, a fault each, for every
/// block's columns. The process exits soon after its answer, so nothing is held for long. `mallopt` is looked up
/// by name because Swift's Glibc module does not include <malloc.h>; elsewhere this does nothing.
private func keepFreedMemory() {
    #if canImport(Glibc)
        typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
        guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
        let trimThreshold: Int32 = -1
        let mmapThreshold: Int32 = -3  // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD (<malloc.h>)
        _ = mallopt(mmapThreshold, 256 << 20)
        _ = mallopt(trimThreshold, 1 << 30)
    #endif
}
