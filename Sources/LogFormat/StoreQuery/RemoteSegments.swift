// Sealed segments kept somewhere other than a data directory (an object store), beside the local directories of
// an `AuditStore`. The store plans over their catalog entries and reads them through the readers they open; the
// fetching lives with whoever implements this (the RemoteStore target), never in the storage library.
import LogFormat

public protocol RemoteSegments: Sendable {
    /// Where the segments are, e.g. `s3://bucket/prefix`; a segment's path is `location + "/" + relativePath`.
    var location: String { get }
    /// The sealed segments (catalog entries with `relativePath` relative to `location`), with their seals.
    func entries() throws(LogFormatError) -> [CatalogEntry]
    /// A reader of one of `entries()`.
    func open(_ entry: CatalogEntry) throws(LogFormatError) -> SegmentReader
}
