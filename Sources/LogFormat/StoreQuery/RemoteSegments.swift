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
    /// Entries to start answering on before `entries()` can (the last listing, opened from a local cache while a
    /// fresh one is in flight); nil when there are none. `settle()` then says whether they were right.
    func provisionalEntries() -> [CatalogEntry]?
    /// After `provisionalEntries()`: waits for the fresh catalog and says whether it differs from them (then
    /// `entries()` gives the fresh one). False when nothing was provisional.
    func settle() throws(LogFormatError) -> Bool
    /// Whether its readers fetch what they read on demand: look-ups over many of its segments then run several at
    /// a time, so that their fetches overlap.
    var fetchesOnDemand: Bool { get }
    /// Requests made so far (ranged GETs): a look-up that made none found everything in the local cache.
    var requestsMade: Int { get }
}

extension RemoteSegments {
    public func provisionalEntries() -> [CatalogEntry]? { nil }
    public func settle() throws(LogFormatError) -> Bool { false }
    public var fetchesOnDemand: Bool { false }
    public var requestsMade: Int { 0 }
}
