// What a sealed-segment reader reads from: every byte at hand (a mapped local file), or a local stand-in of the
// object's full size whose ranges are filled on demand (a cached object in a remote store). The reader asks for a
// range to be present before it touches it; the storage library never fetches anything itself.

/// The bytes of a segment as a reader sees them. `bytes` spans the whole segment; a range may be read only after
/// `makePresent` returned for it, and stays present and unchanged for the life of the source.
public protocol SegmentByteSource: AnyObject, Sendable {
    /// Names the segment in messages (a file path, or `s3://bucket/key`).
    var path: String { get }
    var count: Int { get }
    var bytes: UnsafeRawBufferPointer { get }
    /// Makes every range of `ranges` readable in `bytes`: nothing to do for a local file; a remote one fetches the
    /// missing parts, several at a time. Ranges are clamped to the source.
    func makePresent(_ ranges: [Range<Int>]) throws(LogFormatError)
    /// One range: the call a reader makes before each part it reads (a source can answer "already there" without
    /// building an array).
    func makePresent(_ range: Range<Int>) throws(LogFormatError)
}

extension SegmentByteSource {
    public func makePresent(_ range: Range<Int>) throws(LogFormatError) { try makePresent([range]) }
}

extension MappedFile: SegmentByteSource {
    public func makePresent(_ ranges: [Range<Int>]) throws(LogFormatError) {}
    public func makePresent(_ range: Range<Int>) throws(LogFormatError) {}
}

/// Fetches byte ranges of one immutable object from somewhere else (an object store), for a `SparseCacheFile`.
/// Injected: the storage library holds no network code.
public protocol RangeFetcher: Sendable {
    /// The bytes of each of `ranges`, in order, each exactly as long as its range; fetched several at a time where
    /// the fetcher can. A failure is a `LogFormatError` (`.io` for the store, `.truncated` for a short object).
    func fetch(_ ranges: [Range<Int>]) throws(LogFormatError) -> [[UInt8]]
}
