// A retention run in the test process can find the directory's lock busy with no other job about: another test
// may be starting a child at the moment the run before closed the lock. The child starts with a copy of every
// descriptor, and close-on-exec drops them only at its exec, so for that moment the copy keeps the lock held.
import Foundation
import LogFormat
import StoreQuery

/// Runs `apply` again while its report says the retention lock was busy, for up to `seconds`; then returns the
/// busy report, for the test's expectations to fail on.
public func applyWhenLockFree(
    within seconds: Double = 10, _ apply: () throws(LogFormatError) -> RetentionJob.Report
) throws(LogFormatError) -> RetentionJob.Report {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        let report = try apply()
        if !report.busy || Date() >= deadline { return report }
        usleep(20_000)
    }
}
