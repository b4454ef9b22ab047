import Foundation
import LogFormat
import Logging
import ServiceLifecycle
import Testing

@testable import CollectorCore

/// The syslog UDP receiver on a real socket, with a buffer far smaller than a burst: while the buffer is full its
/// reader holds NIO's reads, so the datagrams wait in the kernel's receive buffer instead of being read and
/// dropped, and every datagram the kernel did not drop is stored exactly once.
@Suite(.timeLimit(.minutes(10))) struct SyslogUDPBurstTests {
    @Test func aBurstBeyondTheBufferWaitsInTheSocketAndIsStoredOnce() async throws {
        let f = try IngestServiceTests.Fixture()
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let receiver = SyslogReceiver(ingest: f.service, maxBufferedEvents: 64, batchEvents: 16, logger: logger)
        let (ports, bound) = AsyncStream.makeStream(of: Int.self)
        let service = SyslogService(receiver: receiver, udp: ("127.0.0.1", 0), tcp: nil, logger: logger) { _, port in
            bound.yield(port)
        }
        let group = ServiceGroup(services: [service], logger: logger)
        let running = Task { try await group.run() }
        var listening = ports.makeAsyncIterator()
        let port = try #require(await listening.next())

        let sent = 3_000
        SyslogTests.udpSend(
            (0..<sent).map {
                Array("<190>Nov  2 10:00:00 edge-1 nginx: \(SyslogTests.accessLine($0, user: "burst"))".utf8)
            }, port: port)
        // Loopback delivers within sendto, so the socket's drops are final once the burst is sent.
        let kernelDrops = Int(SyslogReceiver.kernelDrops(port: port) ?? 0)
        while try f.stored().count < sent - kernelDrops {
            try await Task.sleep(for: .milliseconds(20))
        }
        let samples = MetricsTests.samples(String(decoding: f.service.metrics.exposition(log: f.log), as: UTF8.self))
        #expect((samples["audit_collector_syslog_udp_read_pauses_total"] ?? 0) >= 1)
        #expect(samples[#"audit_collector_rejected_items_total{receiver="syslog_udp",reason="queue_full"}"#] == nil)
        // 3,000 lines take a few MiB of socket buffer; where the kernel granted that much, none may be dropped.
        if (samples["audit_collector_syslog_udp_receive_buffer_bytes"] ?? 0) >= Double(16 << 20) {
            #expect(kernelDrops == 0)
        }
        await group.triggerGracefulShutdown()
        try await running.value
        let stored = try f.stored()
        let ids = Set(stored.compactMap { $0.http?.target })
        #expect(stored.count == sent - kernelDrops)
        #expect(ids.count == stored.count, "no datagram stored twice")
        try await f.log.close()
    }
}
