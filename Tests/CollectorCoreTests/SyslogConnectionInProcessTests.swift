import LogFormat
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import CollectorCore

/// One syslog TCP connection served by the real handler over NIO's `NIOAsyncTestingChannel`: the framing
/// edge cases a socket cannot produce on demand (a frame split at every byte boundary, frames of both
/// framings in one read, a length that cannot be honoured) with the exact outcome of each.
@Suite(.timeLimit(.minutes(10))) struct SyslogConnectionInProcessTests {
    typealias Fixture = IngestServiceTests.Fixture

    /// Feeds `chunks` to a connection, one read each, waits until `events` are stored and, with `closes`, until the
    /// handler closed the connection itself (a fatal frame); then ends the connection.
    static func serve(
        _ chunks: [[UInt8]], maxFrameBytes: Int = 4_096, until events: Int, closes: Bool, _ f: Fixture
    ) async throws -> (closedByHandler: Bool, stored: [AuditEvent]) {
        let channel = NIOAsyncTestingChannel()
        let connection = try await channel.testingEventLoop.executeInContext {
            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
        try await channel.connect(to: SocketAddress(ipAddress: "10.0.0.9", port: 40_000)).get()
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let receiver = SyslogReceiver(ingest: f.service, logger: logger)
        let serving = Task { await receiver.serve(connection: connection, maxFrameBytes: maxFrameBytes) }
        for chunk in chunks where channel.isActive {
            // The handler may close the connection between two reads (that is what some tests are about).
            _ = try? await channel.writeInbound(ByteBuffer(bytes: chunk))
        }
        // Let the handler read what was written before the connection ends. No deadline of its own: a
        // whole-suite run can leave the handler no thread for a minute and more; the suite's time limit guards
        // a hang.
        while try f.stored().count < events || (closes && channel.isActive) {
            try await Task.sleep(for: .milliseconds(5))
        }
        let closedByHandler = !channel.isActive
        // The handler may close it between the check and the call: that is not a failure of the test.
        if channel.isActive {
            do { try await channel.close().get() } catch ChannelError.alreadyClosed {}
        }
        await serving.value
        return (closedByHandler, try f.stored())
    }

    static let message = Array("<190>Nov  2 10:00:00 edge-1 nginx: \(SyslogTests.line)".utf8)

    @Test func anOctetCountedFrameSplitAtEveryByteIsOneEvent() async throws {
        let f = try Fixture()
        let frame = Array("\(Self.message.count) ".utf8) + Self.message
        let (closed, stored) = try await Self.serve(frame.map { [$0] }, until: 1, closes: false, f)
        #expect(!closed)
        #expect(stored.count == 1)
        #expect(stored.first?.user?.subject == "alice")
        #expect(stored.first?.attributes.value(forKey: "syslog.peer") == .string("10.0.0.9"))
        try await f.log.close()
    }

    @Test func bothFramingsInOneReadAreTwoEvents() async throws {
        let f = try Fixture()
        let counted = Array("\(Self.message.count) ".utf8) + Self.message
        let (closed, stored) = try await Self.serve([counted + Self.message + [0x0A]], until: 2, closes: false, f)
        #expect(!closed)
        #expect(stored.count == 2)
        try await f.log.close()
    }

    @Test(arguments: [
        ("99999 <190>", "a length over the limit"),
        ("12x<190>", "a length not followed by a space"),
    ])
    func aLengthThatCannotBeHonouredClosesTheConnection(frame: String, why: String) async throws {
        let f = try Fixture()
        let good = Array("\(Self.message.count) ".utf8) + Self.message
        // Frames in the same read as the fatal one are not stored (the read is abandoned), so the good one
        // comes in a read of its own.
        let chunks = [good, Array(frame.utf8), Array("more bytes\n".utf8)]
        let (closed, stored) = try await Self.serve(chunks, until: 1, closes: true, f)
        #expect(closed, "\(why)")
        #expect(stored.count == 1, "\(why): the frame before it is kept")
        try await f.log.close()
    }

    @Test func aLineWithoutNewlineOverTheLimitClosesTheConnection() async throws {
        let f = try Fixture()
        let line = [UInt8](repeating: UInt8(ascii: "<"), count: 200)
        let (closed, stored) = try await Self.serve([line], maxFrameBytes: 100, until: 0, closes: true, f)
        #expect(closed)
        #expect(stored.isEmpty)
        try await f.log.close()
    }

    /// UDP datagrams arrive a socket read at a time: the read that fills the receiver's buffer is kept whole, and
    /// the receiver answers that it has no room (its reader then holds the socket's reads, counted as a pause);
    /// once the flusher has taken a batch, it asks the reader to read again. Nothing read is refused.
    @Test func aFullBufferPausesReadingKeepsWhatWasReadAndResumesWithRoom() async throws {
        let f = try Fixture()
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let receiver = SyslogReceiver(ingest: f.service, maxBufferedEvents: 10, batchEvents: 4, logger: logger)
        let resumed = Mutex(0)
        receiver.onResumeReading { resumed.withLock { $0 += 1 } }
        let peer = try SocketAddress(ipAddress: "10.0.0.7", port: 514)
        let datagram = ByteBuffer(bytes: Self.message)
        let room = (0..<13).map { _ in receiver.datagram(datagram.readableBytesView, from: peer) }
        #expect(room == Array(repeating: true, count: 9) + Array(repeating: false, count: 4))
        let samples = MetricsTests.samples(String(decoding: f.service.metrics.exposition(log: f.log), as: UTF8.self))
        #expect(samples["audit_collector_syslog_udp_read_pauses_total"] == 1)
        #expect(samples[#"audit_collector_rejected_items_total{receiver="syslog_udp",reason="queue_full"}"#] == nil)
        let flushing = Task { await receiver.runFlusher() }
        receiver.stop()
        await flushing.value
        #expect(resumed.withLock { $0 } == 1)
        let stored = try f.stored()
        #expect(stored.count == 13)
        #expect(stored.allSatisfy { $0.attributes.value(forKey: "syslog.peer") == .string("10.0.0.7") })
        try await f.log.close()
    }
}
