// The writer's trailer hook (the collector's completeness ledger rides on it): the owner's last records of each
// segment, under the seal, exactly once: not lost or doubled by a close that fails and is tried again, and never
// added by recovery to a log a crash left.
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import LogFormat

/// Counts appends by origin and writes the count since the last durable trailer as a log record.
final class CountingTrailer: SegmentTrailer {
    struct State {
        var counted = 0
        var offered: Int?
        var asked = 0
        var written: [UInt64] = []
    }
    let state = Mutex(State())

    func appended(origin: String, count: Int) { state.withLock { $0.counted += count } }

    func trailer(closing sequence: UInt64?, final: Bool) -> [AuditEvent] {
        state.withLock { s in
            s.asked += 1
            s.offered = s.counted
            return [
                AuditEvent(
                    kind: .log, startTimeUnixNano: 1, service: "owner", eventName: "trailer",
                    attributes: [Attribute("n", .int(Int64(s.counted)))])
            ]
        }
    }

    func trailerWritten(segment sequence: UInt64) {
        state.withLock { s in
            s.counted -= s.offered ?? 0
            s.offered = nil
            s.written.append(sequence)
        }
    }

    static func trailers(_ path: String) throws -> [Int64] {
        try SegmentReader(path: path, sealed: true).scan().compactMap { r in
            guard r.event.eventName == "trailer", case .int(let n)? = r.event.attributes.first?.value else {
                return nil
            }
            return n
        }
    }
}

@Suite struct SegmentTrailerTests {
    @Test(arguments: [SealLayout.columns, .rows])
    func aCloseThatFailsLeavesNoTrailerAndTheRetryWritesOne(layout: SealLayout) async throws {
        let dir = TempDir()
        let trailer = CountingTrailer()
        let faults = FailingWrites(failing: 1)
        var options = DurableLog.Options()
        options.fsync = .always
        options.writer.sealLayout = layout
        options.writer.trailer = trailer
        options.writer.writeFaults = faults
        let log = try DurableLog(directory: DataDirectory(dir.path), options: options, logger: quietLogger)
        _ = try await log.append(FaultEvents.batch(1, 5), origin: "a")
        _ = try await log.append(FaultEvents.batch(10, 3), origin: "b")
        faults.arm()  // the next block write, the trailer's, fails on a full disk
        await #expect(throws: LogFormatError.self) { try await log.sealNow() }
        faults.disarm()
        #expect(trailer.state.withLock { $0.written.isEmpty && $0.counted == 8 })
        _ = try await log.append(FaultEvents.batch(20, 2), origin: "a")
        let entry = try #require(try await log.sealNow())
        let path = DataDirectory(dir.path).path(relative: entry.relativePath)
        #expect(try CountingTrailer.trailers(path) == [10])
        #expect(entry.seal.recordCount == 11)
        #expect(trailer.state.withLock { $0.written == [entry.sequence] && $0.counted == 0 })
        #expect(Verifier.verifySegment(path: path).isValid)
        // Closing with no segment open asks once more (final); a trailer that has something to say gets a segment.
        try await log.close()
        #expect(trailer.state.withLock { $0.written } == [entry.sequence, entry.sequence + 1])
        let last = try #require(
            try DataDirectory(dir.path).currentCatalog(repair: false).entries.first {
                $0.sequence == entry.sequence + 1
            })
        #expect(try CountingTrailer.trailers(DataDirectory(dir.path).path(relative: last.relativePath)) == [0])
    }

    @Test func recoveryAddsNoTrailerToALogACrashLeft() throws {
        let dir = TempDir()
        let trailer = CountingTrailer()
        var options = WriterOptions()
        options.trailer = trailer
        do {
            let writer = try SegmentWriter(directory: DataDirectory(dir.path), options: options, logger: quietLogger)
            try writer.append(FaultEvents.batch(1, 4))
            try writer.flush()
            try writer.sync()
            // Dropped without sealing: what a crash leaves.
        }
        let reopened = try SegmentWriter(directory: DataDirectory(dir.path), options: options, logger: quietLogger)
        #expect(reopened.recoveries.map(\.action) == [.sealed])
        let entry = try #require(reopened.catalog.entries.first)
        #expect(try CountingTrailer.trailers(DataDirectory(dir.path).path(relative: entry.relativePath)).isEmpty)
        #expect(entry.seal.recordCount == 4)
        #expect(trailer.state.withLock { $0.asked } == 0)
        // With nothing appended since, a seal that is not the final close opens no segment for the trailer.
        #expect(try reopened.seal() == nil)
        #expect(trailer.state.withLock { $0.asked } == 0)
    }
}
