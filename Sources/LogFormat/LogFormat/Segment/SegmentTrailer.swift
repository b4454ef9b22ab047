// The hook through which a writer's owner adds records of its own to each segment just before the segment is
// closed for appending, so that the Merkle root, the seal and its signature cover them with no format change.
// The collector uses it for its completeness ledger (docs/ledger.md); the storage library knows nothing of
// what the records say.

/// Supplies the last records of every segment, and is told which appends each segment took.
///
/// Every method is called on the writer's thread (DurableLog's writer queue), in the order the writer does
/// things, so an implementation sees, between two `trailer(closing:)` calls, exactly the appends that went
/// into the segment being closed. It must be quick and must not call back into the writer or the log.
public protocol SegmentTrailer: Sendable {
    /// `count` records appended under `origin` (the label given to `DurableLog.append(_:origin:)`) are now part
    /// of the active segment: written, and not rolled back. Called once per batch after its group commit.
    func appended(origin: String, count: Int)
    /// The records to append to segment `sequence` as its last, now that it is about to be closed for
    /// appending (retired for its lay-out, or sealed in place); empty for none. `final` is true when the
    /// writer is being closed. `sequence` is nil when no segment is open: records returned then open one
    /// (only asked with `final`, so that what was counted since the last segment is not lost on shutdown).
    func trailer(closing sequence: UInt64?, final: Bool) -> [AuditEvent]
    /// The records the last `trailer(closing:final:)` returned are durable (written and fsynced) in segment
    /// `sequence`. Not called when appending or syncing them failed: they were cut off the log again, and the
    /// next close asks again.
    func trailerWritten(segment sequence: UInt64)
}
