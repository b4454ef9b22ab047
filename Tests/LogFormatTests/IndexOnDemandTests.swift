import Synchronization
import TestSupport
import Testing

@testable import LogFormat

/// A version 2 index read over a byte source that fetches on demand (a sparse cache file, as a bucket's object is
/// read): opening fetches the index head, a look-up the section's table and the group or chunk it reads. Bytes
/// never fetched read as zeros, so a part read without being asked for would fail its checksum.
@Suite struct IndexOnDemandTests {
    /// Serves ranges of a local file and records what was asked for.
    final class RecordingFetcher: RangeFetcher {
        let bytes: [UInt8]
        let asked = Mutex<[Range<Int>]>([])
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        func fetch(_ ranges: [Range<Int>]) throws(LogFormatError) -> [[UInt8]] {
            asked.withLock { $0 += ranges }
            return ranges.map { Array(bytes[$0]) }
        }
        /// Bytes of `within` asked for so far.
        func fetched(within: Range<Int>) -> Int {
            SparseCacheFile.union([], asked.withLock { $0 }).reduce(0) { $0 + $1.clamped(to: within).count }
        }
    }

    static func trace(_ i: Int) -> TraceID {
        TraceID(high: UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15, low: UInt64(i))
    }

    @Test func aLookUpFetchesTheIndexHeadTheSectionTableAndWhatItReads() throws {
        try TempDir.with("index-on-demand") { tmp in
            var options = WriterOptions()
            options.maxSegmentBytes = 64 << 20
            let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
            // 8,000 traces (packed, about 3 bytes each) and 3,000 users: sections well past the size fetched whole
            // (16 KiB).
            let events = (0..<24_000).map { i in
                var e = RandomEvents.small(seed: UInt64(i))
                e.traceID = Self.trace(i / 3)
                e.user = UserIdentity(subject: "u-\(i % 3_000)")
                return e
            }
            try writer.append(events)
            try writer.close()
            let entry = try #require(try tmp.dataDirectory.currentCatalog(repair: false).entries.first)
            let path = tmp.dataDirectory.path(relative: entry.relativePath)
            let local = try SegmentReader(path: path, sealed: true)
            let fetcher = RecordingFetcher(try FileIO.readFile(path))
            let cache = try RangeCacheDirectory(root: tmp.path + "/cache", capacityBytes: 1 << 30)
            let file = try cache.open(
                object: "bucket/key", identity: "etag", size: fetcher.bytes.count, displayPath: "s3://bucket/key",
                fetcher: fetcher)
            let reader = try SegmentReader(source: file, sealed: true)
            let footer = try #require(local.footer)
            let index = Int(footer.indexOffset)..<Int(footer.indexOffset + footer.indexLength)
            let sizes = Dictionary(uniqueKeysWithValues: try #require(local.index).partSizes)
            let traceSection = try #require(sizes["index trace"])
            let userSection = try #require(sizes["index user"])
            #expect(
                traceSection > SegmentIndexView.wholeSectionBytes && userSection > SegmentIndexView.wholeSectionBytes,
                "\(sizes)")

            // Opening: the index's block header and head, nothing of its sections.
            let head = FormatConstants.blockHeaderSize + SegmentReader.indexHeadGuess(footer)
            #expect(fetcher.fetched(within: index) <= head)

            // A trace: its section's fences and one or two chunks of 512 packed entries (at most 6 bytes each).
            let id = Self.trace(1_234)
            #expect(try reader.ordinals(.traceID, key: id.bytes) == (try local.ordinals(.traceID, key: id.bytes)))
            #expect(!(try local.ordinals(.traceID, key: id.bytes)).isEmpty)
            let afterTrace = fetcher.fetched(within: index)
            let fences = (8_000 + 511) / 512 * PackedTraceSection.fenceSize
            #expect(afterTrace > head)
            #expect(afterTrace <= head + fences + 2 * 512 * 6, "\(afterTrace) of an index of \(index.count)")

            // A user: the section's group table, the groups its binary search probes, the group holding the term.
            let user = Array("u-1234".utf8)
            #expect(try reader.ordinals(.user, key: user) == (try local.ordinals(.user, key: user)))
            #expect(!(try local.ordinals(.user, key: user)).isEmpty)
            let afterUser = fetcher.fetched(within: index)
            #expect(afterUser > afterTrace)
            #expect(afterUser - afterTrace < userSection / 4, "\(afterUser - afterTrace) of \(userSection)")

            // Checking every section fetches the rest, one request a section, and finds it intact.
            try reader.checkIndex()
            #expect(fetcher.fetched(within: index) == index.count)
        }
    }
}
