import Foundation
import LogFormat
import OTLPBridge
import StoreQuery
import TestSupport
import Testing

@testable import CollectorCore

/// Connections that stall or send a bad frame, against the real `collector serve` over loopback sockets: the
/// idle timeouts of syslog TCP and gRPC, and good syslog frames ahead of a bad one in the same read.
@Suite(.serialized, .ownThreads) struct ConnectionLimitsTests {
    typealias Raw = HostileInputTests.Raw

    /// A collector whose syslog TCP and gRPC idle timeouts are `seconds`.
    static func withShortIdle(
        _ seconds: Int, _ body: (CollectorProcessTests.Running) async throws -> Void
    ) async throws -> [AuditEvent] {
        let config = TempDir("idle-config")
        defer { config.remove() }
        try """
        receivers:
          syslog:
            tcp_idle_timeout_seconds: \(seconds)
          otlp_grpc:
            idle_timeout_seconds: \(seconds)
        """.write(toFile: config.path + "/collector.yaml", atomically: true, encoding: .utf8)
        return try await HostileInputTests.withCollector(extra: ["--config", config.path + "/collector.yaml"], body)
    }

    /// How long until the server closes `raw` (nil: still open after `within` seconds).
    static func secondsUntilClosed(_ raw: Raw, within: Double) -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < within {
            if raw.readToEnd().closed { return Date().timeIntervalSince(start) }
        }
        return nil
    }

    static func frame(_ i: Int, user: String) -> [UInt8] {
        let m = "<134>1 2026-11-02T10:00:00Z edge-2 nginx - - - \(SyslogTests.accessLine(i, user: user))"
        return Array("\(m.utf8.count) \(m)".utf8)
    }

    @Test func stalledSyslogTCPConnectionsAreClosedAfterTheIdleTimeout() async throws {
        let timeout = 4.0
        var busySent = 0
        var closedEarly: Double?
        var lateSends = 0
        let events = try await Self.withShortIdle(Int(timeout)) { c in
            let silent = try Raw(port: c.syslogTCPPort, timeoutSeconds: 1)
            // One that sends a frame, then half of another, then stalls: the whole frame is kept.
            let stalled = try Raw(port: c.syslogTCPPort, timeoutSeconds: 1)
            stalled.send(Self.frame(1, user: "idle-user") + Array("512 <134>1 2026".utf8))
            for raw in [silent, stalled] {
                let closedAfter = Self.secondsUntilClosed(raw, within: 15)
                #expect(closedAfter != nil, "a silent syslog TCP connection stays open past its idle timeout")
            }
            // A connection that keeps sending is not closed: a frame every 500 ms for 6 s (past the timeout).
            let busy = try Raw(port: c.syslogTCPPort, timeoutSeconds: 1)
            var last = Date()
            for i in 0..<12 {
                let gap = Date().timeIntervalSince(last)
                if !busy.send(Self.frame(10 + i, user: "busy-user")) {
                    // A send fails only once the kernel has the peer's reset for an earlier one: the send that
                    // went into the closed connection succeeded. So the close is early only if no gap so far,
                    // this one included, reached the timeout (on a loaded machine this task's sleeps overrun).
                    if lateSends == 0 && gap < timeout { closedEarly = gap }
                    break
                }
                busySent += 1
                // Sent after the connection was idle past its timeout: it may race the close and be lost.
                if gap >= timeout { lateSends += 1 }
                last = Date()
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        #expect(events.filter { $0.user?.subject == "idle-user" }.count == 1)
        #expect(busySent >= 1)
        #expect(
            closedEarly == nil, "an active syslog TCP connection was closed \(closedEarly ?? 0) s after its last frame")
        let busyStored = events.filter { $0.user?.subject == "busy-user" }.count
        #expect(busyStored <= busySent && busyStored >= busySent - lateSends)
    }

    @Test func idleGRPCConnectionsAreClosedAfterTheIdleTimeout() async throws {
        _ = try await Self.withShortIdle(2) { c in
            // A complete HTTP/2 connection preface and an empty SETTINGS frame, then no RPC.
            let raw = try Raw(port: c.grpcPort, timeoutSeconds: 1)
            raw.send(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0])
            let closedAfter = Self.secondsUntilClosed(raw, within: 15)
            #expect(closedAfter != nil, "an idle gRPC connection stays open past its idle timeout")
            // Real clients reconnect and export as before (retrying UNAVAILABLE, as OTLP exporters do: on a loaded
            // machine the first connection attempt may not be ready in time).
            try await GRPCReceiverTests.withClients(port: c.grpcPort) { traces, _, _ in
                let request = OTLPMapping.traceRequest(from: HostileInputTests.spans(seed: 41, 3))
                var attempt = 0
                while true {
                    attempt += 1
                    do {
                        let ok = try await traces.export(request)
                        #expect(!ok.hasPartialSuccess)
                        break
                    } catch  where attempt < 12 {
                        // grpc-swift backs off between connection attempts; give it the whole backoff to come up.
                        try await Task.sleep(for: .milliseconds(min(500 * attempt, 2_000)))
                    }
                }
            }
        }
    }

    /// Good frames and then a frame with an impossible length, all in one read: the good ones are stored before
    /// the connection is closed.
    @Test func goodFramesBeforeABadLengthInTheSameReadAreStored() async throws {
        let events = try await HostileInputTests.withCollector { c in
            let raw = try Raw(port: c.syslogTCPPort, timeoutSeconds: 5)
            let bytes = (0..<3).flatMap { Self.frame($0, user: "before-bad") } + Array("99999999999999 <14>x".utf8)
            #expect(bytes.count < 4_096, "one segment, one read")
            raw.send(bytes)
            #expect(raw.readToEnd().closed, "the collector closes the connection at the bad frame")
        }
        #expect(events.filter { $0.user?.subject == "before-bad" }.count == 3)
    }
}
