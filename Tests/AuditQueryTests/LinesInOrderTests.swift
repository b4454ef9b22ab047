// `writeLinesInOrder` must write exactly what rendering the batches' items one after another writes, whatever order
// the reads end in and however the merge cuts the batches; a failure must leave only a prefix of that and its error;
// and a batch must be let go once its lines are taken, so that a slow writer does not have every piece held.
import Foundation
import PropertyBased
import Synchronization
import TestSupport
import Testing

@testable import AuditQuery

@Suite(.ownThreads) struct LinesInOrderTests {
    enum Failed: Error, Equatable {
        case read(Int)
        case merge(Int)
        case item(Int)
    }

    /// How many batch contexts are alive, and the most at once.
    final class Alive: Sendable {
        let count = Mutex((now: 0, most: 0))
    }

    /// A batch's context, counted while alive.
    final class Context: Sendable {
        let alive: Alive
        init(_ alive: Alive) {
            self.alive = alive
            alive.count.withLock { a in
                a.now += 1
                a.most = max(a.most, a.now)
            }
        }
        deinit { alive.count.withLock { $0.now -= 1 } }
    }

    /// The pieces' items, merged: a piece's items go out once it and every piece before it are read, cut into
    /// batches of at most `batch` items.
    struct Merge {
        let pieces: [Range<Int>]
        let batch: Int
        var read: [Bool]
        var next = 0

        mutating func add(_ i: Int) -> [Range<Int>] {
            read[i] = true
            var out: [Range<Int>] = []
            while next < pieces.count && read[next] {
                var a = pieces[next].lowerBound
                while a < pieces[next].upperBound {
                    let b = min(a + batch, pieces[next].upperBound)
                    out.append(a..<b)
                    a = b
                }
                next += 1
            }
            return out
        }
    }

    struct Outcome {
        var bytes: [UInt8]
        var overlapped: Bool
        var error: Failed?
        var count: Int?
        var mostAlive: Int
        var aliveAfter: Int
        var pieces: [Range<Int>]
    }

    /// `count` items in `pieces` pieces cut at random (or `evenPieces`), read with random delays; `first` items go
    /// out before any read.
    static func run(
        _ count: Int, pieces: Int, first: Int, batch: Int, run: Int, cores: Int, flush: Int, seed: UInt64,
        failingReads: Set<Int> = [], failingMerges: Set<Int> = [], failingItems: Set<Int> = [],
        evenPieces: Bool = false, slowWriter: Bool = false
    ) -> Outcome {
        var rng = SplitMix(seed)
        var cuts = (0..<max(0, pieces - 1)).map { _ in Int.random(in: first...count, using: &rng) }.sorted()
        if evenPieces { cuts = (1..<max(1, pieces)).map { first + $0 * (count - first) / pieces } }
        let ranges = pieces == 0 ? [] : zip([first] + cuts, cuts + [count]).map { $0..<$1 }
        let delays = ranges.map { _ in UInt32.random(in: 0...300, using: &rng) }
        let lengths = Self.lengths(seed)
        let alive = Alive()
        let merge = Mutex(Merge(pieces: ranges, batch: batch, read: [Bool](repeating: false, count: ranges.count)))
        let sink = LinesOnEveryCoreTests.Sink()
        let batches = { @Sendable (r: Range<Int>) in LineBatch(Context(alive), Array(r)) }
        var outcome = Outcome(bytes: [], overlapped: false, mostAlive: 0, aliveAfter: 0, pieces: ranges)
        do throws(Failed) {
            outcome.count = try writeLinesInOrder(
                first: first > 0 ? [batches(0..<first)] : [], reads: ranges.count,
                read: { (i) throws(Failed) -> Int in
                    usleep(delays[i])
                    if failingReads.contains(i) { throw .read(i) }
                    return i
                },
                merge: { (i, piece) throws(Failed) in
                    if failingMerges.contains(i) { throw .merge(i) }
                    return merge.withLock { $0.add(piece) }.map { batches($0) }
                }, run: run, key: { Int32($0 / 7) }, cores: cores, flushBytes: flush,
                renderer: { (c: Context) in c },
                { (_: inout Context, i: Int, buffer: LineArena) throws(Failed) in
                    if failingItems.contains(i) {
                        buffer.arena.append(Array(LinesOnEveryCoreTests.line(i, lengths).prefix(3)) + Array("!".utf8))
                        throw .item(i)
                    }
                    buffer.arena.append(LinesOnEveryCoreTests.line(i, lengths))
                },
                write: { bytes in
                    if slowWriter { usleep(100) }
                    sink.write(Array(bytes))
                })
        } catch {
            outcome.error = error
        }
        let s = sink.state.withLock { $0 }
        outcome.bytes = s.bytes
        outcome.overlapped = s.overlapped
        (outcome.mostAlive, outcome.aliveAfter) = alive.count.withLock { ($0.most, $0.now) }
        return outcome
    }

    /// The lines' lengths `run` uses for `seed` (`LinesOnEveryCoreTests.line`).
    static func lengths(_ seed: UInt64) -> [Int] {
        var rng = SplitMix(seed ^ 0x5eed)
        return (0..<7).map { _ in Int.random(in: 0...200, using: &rng) }
    }

    /// What rendering `items` one after another writes.
    static func expected(_ items: Range<Int>, seed: UInt64) -> [UInt8] {
        LinesOnEveryCoreTests.serial(items, lengths(seed))
    }

    @Test func theBytesAreThoseOfTheBatchesOneAfterAnother() async {
        await propertyCheck(
            count: 120, input: Gen.int(in: 0...500), Gen.int(in: 0...20), Gen.int(in: 1...4), Gen.uint64()
        ) { count, pieces, cores, seed in
            var rng = SplitMix(seed ^ 0x9e37)
            let first = pieces == 0 ? count : Int.random(in: 0...min(count, 30), using: &rng)
            let batch = Int.random(in: 1...60, using: &rng)
            let run = Int.random(in: 1...40, using: &rng)
            let flush = Int.random(in: 1...4096, using: &rng)
            let out = Self.run(
                count, pieces: pieces, first: first, batch: batch, run: run, cores: cores, flush: flush, seed: seed)
            #expect(out.error == nil)
            #expect(out.count == count)
            #expect(out.bytes == Self.expected(0..<count, seed: seed))
            #expect(!out.overlapped)
            #expect(out.aliveAfter == 0)
        }
    }

    @Test func aFailureLeavesAPrefixAndTheFirstReadFailureIsThrown() async {
        await propertyCheck(
            count: 150, input: Gen.int(in: 1...400), Gen.int(in: 1...12), Gen.int(in: 1...4), Gen.uint64()
        ) { count, pieces, cores, seed in
            var rng = SplitMix(seed ^ 0x77)
            let batch = Int.random(in: 1...60, using: &rng)
            let run = Int.random(in: 1...30, using: &rng)
            let flush = Int.random(in: 1...2048, using: &rng)
            // One kind of failure, sometimes twice: a read, a merge, or an item's rendering.
            let kind = Int.random(in: 0...2, using: &rng)
            let limit = kind == 2 ? count : pieces
            let a = Int.random(in: 0..<limit, using: &rng)
            let b = Int.random(in: a..<limit, using: &rng)
            // (Merges are made in the order reads end: of two failing, either may be met first.)
            let failing: Set<Int> = kind != 1 && Bool.random(using: &rng) ? [a, b] : [a]
            let out = Self.run(
                count, pieces: pieces, first: 0, batch: batch, run: run, cores: cores, flush: flush, seed: seed,
                failingReads: kind == 0 ? failing : [], failingMerges: kind == 1 ? failing : [],
                failingItems: kind == 2 ? failing : [])
            #expect(out.error == [Failed.read(a), .merge(a), .item(a)][kind])
            let all = Self.expected(0..<count, seed: seed)
            #expect(out.bytes.count <= all.count && Array(all.prefix(out.bytes.count)) == out.bytes)
            // Nothing of the failing item or piece, or after it.
            let before = kind == 2 ? a : out.pieces[a].lowerBound
            #expect(out.bytes.count <= Self.expected(0..<before, seed: seed).count)
            #expect(!out.overlapped)
            #expect(out.aliveAfter == 0)
        }
    }

    @Test func aSlowWriterHoldsBackTheReading() {
        // 300 pieces of one item each, a batch each: behind a writer slower than the cores, the batches held at
        // once are those of fewer than eight runs per core waiting to be taken, of the reads ended after one that
        // has not (up to four per core) and of each core's renderer, not the 300 that reading on would hold.
        for cores in [1, 2, 4] {
            let out = Self.run(
                300, pieces: 300, first: 0, batch: 1, run: 1, cores: cores, flush: 1, seed: UInt64(cores),
                evenPieces: true, slowWriter: true)
            #expect(out.error == nil)
            #expect(out.bytes == Self.expected(0..<300, seed: UInt64(cores)))
            #expect(out.mostAlive <= 13 * cores, "\(cores) cores: \(out.mostAlive) batches held at once")
            #expect(out.aliveAfter == 0)
        }
    }

    @Test func withoutReadsTheFirstBatchesAreWritten() {
        let out = Self.run(50, pieces: 0, first: 50, batch: 50, run: 8, cores: 2, flush: 64, seed: 3)
        #expect(out.error == nil && out.count == 50)
        #expect(out.bytes == Self.expected(0..<50, seed: 3))
        let none = Self.run(0, pieces: 0, first: 0, batch: 1, run: 8, cores: 2, flush: 64, seed: 3)
        #expect(none.error == nil && none.count == 0 && none.bytes.isEmpty)
    }
}
