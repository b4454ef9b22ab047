// `writeLinesOnEveryCore` must write exactly what rendering the items one after another writes, whatever the runs,
// keys, cores and flush sizes; and when an item fails, only what came before it, and its error.
import Foundation
import PropertyBased
import Synchronization
import TestSupport
import Testing

@testable import AuditQuery

@Suite(.ownThreads) struct LinesOnEveryCoreTests {
    struct Failed: Error, Equatable {
        var item: Int
    }

    /// Item `i`'s line: its number repeated a length taken from the seed (some lines longer than a flush).
    static func line(_ i: Int, _ lengths: [Int]) -> [UInt8] {
        Array(String(repeating: "\(i).", count: lengths[i % lengths.count]).utf8)
    }

    /// What `write` was handed, in the order it was handed it, and whether two calls ever overlapped.
    final class Sink: Sendable {
        let state = Mutex((bytes: [UInt8](), pieces: 0, active: 0, overlapped: false))
        func write(_ b: [UInt8]) {
            state.withLock { s in
                s.active += 1
                if s.active > 1 { s.overlapped = true }
            }
            state.withLock { s in
                s.bytes += b
                s.pieces += 1
                s.active -= 1
            }
        }
    }

    static func run(
        _ count: Int, run: Int, keys: [Int32], lengths: [Int], cores: Int, flush: Int, failing: Set<Int> = []
    ) -> (Sink, Failed?) {
        let sink = Sink()
        let items = Array(0..<count)
        do throws(Failed) {
            try writeLinesOnEveryCore(
                items, run: run, key: { keys[$0 % keys.count] }, cores: cores, flushBytes: flush,
                renderer: { 0 },
                { (calls: inout Int, i: Int, buffer: LineArena) throws(Failed) in
                    calls += 1
                    // A failing item leaves part of its line behind, as a writer in place does: none of it may be
                    // written.
                    if failing.contains(i) {
                        buffer.arena.append(Array(line(i, lengths).prefix(3)) + Array("!".utf8))
                        throw Failed(item: i)
                    }
                    buffer.arena.append(line(i, lengths))
                }, write: { sink.write(Array($0)) })
        } catch {
            return (sink, error)
        }
        return (sink, nil)
    }

    static func serial(_ items: Range<Int>, _ lengths: [Int]) -> [UInt8] {
        items.flatMap { line($0, lengths) + [UInt8(ascii: "\n")] }
    }

    @Test func theBytesAreThoseOfOneCoreInOrder() async {
        await propertyCheck(
            count: 150, input: Gen.int(in: 0...600), Gen.int(in: 1...40), Gen.int(in: 1...4), Gen.uint64()
        ) { count, run, cores, seed in
            var rng = SplitMix(seed)
            let keys = (0..<Int.random(in: 1...50, using: &rng)).map { _ in Int32.random(in: 0...3, using: &rng) }
            let lengths = (0..<7).map { _ in Int.random(in: 0...200, using: &rng) }
            let flush = Int.random(in: 1...4096, using: &rng)
            let (sink, error) = Self.run(count, run: run, keys: keys, lengths: lengths, cores: cores, flush: flush)
            #expect(error == nil)
            let s = sink.state.withLock { $0 }
            #expect(s.bytes == Self.serial(0..<count, lengths))
            #expect(!s.overlapped)
        }
    }

    @Test func aFailingItemStopsTheOutputBeforeItAndItsErrorIsThrown() async {
        await propertyCheck(
            count: 150, input: Gen.int(in: 1...600), Gen.int(in: 1...40), Gen.int(in: 1...4), Gen.uint64()
        ) { count, run, cores, seed in
            var rng = SplitMix(seed)
            let keys = [Int32.random(in: 0...3, using: &rng)]
            let lengths = (0..<5).map { _ in Int.random(in: 0...300, using: &rng) }
            let first = Int.random(in: 0..<count, using: &rng)
            // Sometimes a second failure later on: the first one's error is what the caller meets.
            let second = Int.random(in: first..<count, using: &rng)
            let failing: Set<Int> = Bool.random(using: &rng) ? [first, second] : [first]
            let flush = Int.random(in: 1...2048, using: &rng)
            let (sink, error) = Self.run(
                count, run: run, keys: keys, lengths: lengths, cores: cores, flush: flush, failing: failing)
            #expect(error == Failed(item: first))
            let written = sink.state.withLock { $0.bytes }
            let before = Self.serial(0..<first, lengths)
            #expect(written.count <= before.count && Array(before.prefix(written.count)) == written)
        }
    }

    /// A core whose run fails gives back its place only once the failure is recorded: a core woken by that place
    /// before then rendered a run that is never written, then waited for a place nobody gave (a whole-suite run
    /// hung so in the property test above). Many runs of one item, failing early, on two cores: each must end.
    @Test func aCoreWokenByAFailingCoresPlaceSeesTheFailure() {
        for round in 0..<3_000 {
            let failing = 1 + round % 6
            let finished = DispatchSemaphore(value: 0)
            let outcome = Mutex<Failed?>(nil)
            Thread {
                let (_, error) = Self.run(
                    48, run: 1, keys: [0], lengths: [2], cores: 2, flush: 1 << 20, failing: [failing])
                outcome.withLock { $0 = error }
                finished.signal()
            }.start()
            guard finished.wait(timeout: .now() + 30) == .success else {
                Issue.record("round \(round): the cores never finished (one waits for a place nobody gives)")
                return
            }
            #expect(outcome.withLock { $0 } == Failed(item: failing))
        }
    }

    @Test func aSlowWriterHoldsBackTheRendering() {
        // Lines rendered and not yet written, at their most: at most two runs per core are taken and not written.
        let counts = Mutex((rendered: 0, written: 0, mostAhead: 0))
        let (run, cores) = (5, 2)
        writeLinesOnEveryCore(
            Array(0..<400), run: run, key: { _ in 0 }, cores: cores, flushBytes: 1, renderer: { 0 },
            { (_: inout Int, i: Int, buffer: LineArena) in
                counts.withLock { c in
                    c.rendered += 1
                    c.mostAhead = max(c.mostAhead, c.rendered - c.written)
                }
                buffer.arena.append(Array("\(i)".utf8))
            },
            write: { bytes in
                usleep(200)
                counts.withLock { $0.written += bytes.count { $0 == UInt8(ascii: "\n") } }
            })
        let c = counts.withLock { $0 }
        #expect(c.written == 400)
        #expect(c.mostAhead <= 2 * cores * 2 * run)
    }

    @Test func theRunsAreCutWhereTheKeyChangesUpToTwiceTheirLength() {
        let keys: [Int32] = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3]
        #expect(Runs.cut(keys, run: 3, key: { $0 }) == [0..<5, 5..<11, 11..<15, 15..<17])
        #expect(Runs.cut([Int32](), run: 3, key: { $0 }).isEmpty)
        #expect(Runs.cut(keys, run: 100, key: { $0 }) == [0..<17])
    }
}
