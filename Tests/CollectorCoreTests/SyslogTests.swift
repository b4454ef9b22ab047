import Foundation
import LogFormat
import PropertyBased
import StoreQuery
import SyntheticTraffic
import TestSupport
import Testing

@testable import CollectorCore
@testable import CollectorParsers

/// Syslog as nginx, rsyslog and syslog-ng send it: the header grammars, the TCP framings, hostile bytes, and
/// a real collector fed over UDP and TCP sockets.
@Suite(.serialized, .ownThreads) struct SyslogTests {
    static let line =
        #"{"time_iso8601":"2026-11-02T10:00:00+00:00","request_method":"GET","request_uri":"/api/orders?page=2","status":"200","remote_user":"alice","request_id":"7f3a","http_traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#

    @Test func nginxRFC3164WithHostname() throws {
        let m = try Syslog.parse(Array("<190>Nov  2 10:00:00 edge-1 nginx: \(Self.line)".utf8))
        #expect(m.format == .rfc3164)
        #expect(m.facility == 23 && m.severity == 6)  // local7.info, nginx's default
        #expect(m.timestamp == "Nov  2 10:00:00")
        #expect(m.hostname == "edge-1")
        #expect(m.appName == "nginx")
        #expect(String(decoding: m.body, as: UTF8.self) == Self.line)
    }

    @Test func nginxRFC3164WithoutHostnameAndWithAPid() throws {
        let bare = try Syslog.parse(Array("<190>Nov 27 17:28:08 nginx: \(Self.line)".utf8))
        #expect(bare.hostname == nil)
        #expect(bare.appName == "nginx")
        let pid = try Syslog.parse(Array("<134>Nov 27 17:28:08 edge-2 nginx[4711]: \(Self.line)".utf8))
        #expect(pid.hostname == "edge-2" && pid.appName == "nginx" && pid.procID == "4711")
        #expect(String(decoding: pid.body, as: UTF8.self) == Self.line)
    }

    @Test func rfc5424WithStructuredDataAndBOM() throws {
        let text =
            "<165>1 2026-11-02T10:00:00.123Z edge-1 nginx 4711 access [exampleSDID@32473 iut=\"3\" note=\"a \\] b\"][x@1 y=\"z\"] \u{FEFF}\(Self.line)"
        let m = try Syslog.parse(Array(text.utf8))
        #expect(m.format == .rfc5424)
        #expect(m.timestamp == "2026-11-02T10:00:00.123Z")
        #expect(m.hostname == "edge-1" && m.appName == "nginx" && m.procID == "4711" && m.msgID == "access")
        #expect(m.structuredData == "[exampleSDID@32473 iut=\"3\" note=\"a \\] b\"][x@1 y=\"z\"]")
        #expect(String(decoding: m.body, as: UTF8.self) == Self.line)
        let nils = try Syslog.parse(Array("<14>1 - - - - - - \(Self.line)".utf8))
        #expect(nils.timestamp == nil && nils.hostname == nil && nils.structuredData == nil)
    }

    @Test(arguments: [
        ("no pri", "Nov  2 10:00:00 edge nginx: {}", "<PRI>"),
        ("big pri", "<192>Nov  2 10:00:00 edge nginx: {}", "191"),
        ("open pri", "<19", "<PRI>"),
        ("5424 cut", "<14>1 2026-11-02T10:00:00Z host", "header ends"),
        ("5424 sd", "<14>1 - - - - - [a b=\"c\" {}", "not closed"),
        ("5424 sd junk", "<14>1 - - - - - x {}", "structured data"),
    ])
    func badHeadersAreNamed(name: String, text: String, reason: String) {
        #expect(throws: SyslogError.self) { try Syslog.parse(Array(text.utf8)) }
        do { _ = try Syslog.parse(Array(text.utf8)) } catch {
            #expect(error.message.contains(reason), "\(name): \(error)")
        }
    }

    @Test func theEventKeepsTheSyslogHeaderAndTheNginxFields() throws {
        let m = try Syslog.parse(Array("<190>Nov  2 10:00:00 edge-1 nginx: \(Self.line)\n".utf8))
        var e = try Syslog.event(from: m, peer: "10.0.0.9", options: AccessEventOptions())
        Normalizer().deriveAuditFields(&e, from: .syslogUDP)
        #expect(e.kind == .access)
        #expect(e.user?.subject == "alice")
        #expect(e.traceID.hex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(e.startTimeUnixNano == 1_793_613_600_000_000_000)  // from the body: the header has no year
        #expect(e.attributes.value(forKey: "syslog.hostname") == .string("edge-1"))
        #expect(e.attributes.value(forKey: "syslog.app_name") == .string("nginx"))
        #expect(e.attributes.value(forKey: "syslog.facility") == .int(23))
        #expect(e.attributes.value(forKey: "syslog.peer") == .string("10.0.0.9"))
        let plain = try Syslog.parse(Array("<190>Nov  2 10:00:00 edge-1 nginx: GET /x 200".utf8))
        #expect(throws: AccessEventMapping.Refusal.self) {
            try Syslog.event(from: plain, peer: nil, options: AccessEventOptions())
        }
    }

    // MARK: Framing

    @Test func octetCountingAndNewlineFramesMix() {
        var f = SyslogFramer(maxFrameBytes: 1 << 20)
        let a = "<14>1 - h app - - - {\"a\":1}"
        f.append(Array("\(a.utf8.count) \(a)<14>plain one\n\r\n<14>plain two\r\n".utf8))
        #expect(f.next() == .frame(Array(a.utf8)))
        #expect(f.next() == .frame(Array("<14>plain one".utf8)))
        #expect(f.next() == .frame(Array("<14>plain two".utf8)))
        #expect(f.next() == nil)
        #expect(f.pendingBytes == 0)
    }

    @Test func framesSurviveAnyChunking() async {
        let frames = (0..<40).map { i in
            "<190>Nov  2 10:00:00 edge nginx: {\"n\":\(i),\"pad\":\"\(String(repeating: "x", count: i * 7))\"}"
        }
        var stream: [UInt8] = []
        for (i, frame) in frames.enumerated() {
            stream += i % 2 == 0 ? Array("\(frame.utf8.count) \(frame)".utf8) : Array("\(frame)\n".utf8)
        }
        let whole = stream
        await propertyCheck(count: 200, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var rng = SplitMix(seed)
            var f = SyslogFramer(maxFrameBytes: 1 << 16)
            var got: [String] = []
            var i = 0
            while i < whole.count {
                let n = Int.random(in: 1...300, using: &rng)
                f.append(whole[i..<min(whole.count, i + n)])
                i += n
                while case .frame(let bytes)? = f.next() { got.append(String(decoding: bytes, as: UTF8.self)) }
            }
            #expect(got == frames)
        }
    }

    /// A datagram is parsed where it lies in its batch's bytes: a slice that starts and ends inside larger bytes
    /// parses exactly as a copy of it does, for whole messages and every cut of them.
    @Test func aMessageInsideLargerBytesParsesAsItsCopy() async {
        let messages = [
            "<190>Nov  2 10:00:00 edge-1 nginx: \(Self.line)",
            "<134>Nov 27 17:28:08 edge-2 nginx[4711]: \(Self.line)",
            "<165>1 2026-11-02T10:00:00.123Z edge-1 nginx 4711 access [a@1 b=\"c \\] d\"] \u{FEFF}\(Self.line)",
        ].map { Array($0.utf8) }
        func outcome(_ r: () throws(SyslogError) -> SyslogMessage) -> String {
            do {
                let m = try r()
                return "\(m.format) \(m.facility) \(m.severity) \(m.timestamp ?? "-") \(m.hostname ?? "-") "
                    + "\(m.appName ?? "-") \(m.procID ?? "-") \(m.msgID ?? "-") \(m.structuredData ?? "-") "
                    + String(decoding: m.body, as: UTF8.self)
            } catch { return "error: \(error)" }
        }
        await propertyCheck(count: 30, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var rng = SplitMix(seed)
            for message in messages {
                for cut in 0...message.count {
                    let alone = Array(message[..<cut])
                    let before = (0..<Int.random(in: 1...40, using: &rng)).map { _ in
                        UInt8.random(in: 0...255, using: &rng)
                    }
                    let after = (0..<Int.random(in: 0...40, using: &rng)).map { _ in
                        UInt8.random(in: 0...255, using: &rng)
                    }
                    let bytes = before + alone + after
                    let inside = bytes[before.count..<(before.count + alone.count)]
                    #expect(
                        outcome { () throws(SyslogError) in try Syslog.parse(inside) }
                            == outcome { () throws(SyslogError) in try Syslog.parse(alone) })
                }
            }
        }
    }

    @Test func hostileFramesAreFatalNotAHang() {
        var long = SyslogFramer(maxFrameBytes: 100)
        long.append(Array("99999999999 <14>x".utf8))
        #expect(long.next() == .fatal("frame length exceeds the 100-byte limit"))
        var noSpace = SyslogFramer(maxFrameBytes: 100)
        noSpace.append(Array("12x<14>hello world".utf8))
        #expect(noSpace.next() == .fatal("octet-counted frame length not followed by a space"))
        var endless = SyslogFramer(maxFrameBytes: 100)
        endless.append([UInt8](repeating: 0x41, count: 101))
        #expect(endless.next() == .fatal("line exceeds the 100-byte limit without a newline"))
        var partial = SyslogFramer(maxFrameBytes: 100)
        partial.append(Array("50 <14>only part".utf8))
        #expect(partial.next() == nil)  // waits for the rest
    }

    // MARK: A real collector

    static func udpSend(_ datagrams: [[UInt8]], port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        for d in datagrams {
            _ = d.withUnsafeBytes { b in
                withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        }
    }

    static func tcpSend(_ chunks: [[UInt8]], port: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else { throw CocoaError(.fileReadUnknown) }
        for c in chunks {
            _ = c.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            usleep(2_000)
        }
    }

    static func accessLine(_ i: Int, user: String, padding: Int = 0) -> String {
        #"{"msec":"1793613600.\#(String(format: "%03d", i % 1000))","request_method":"GET","request_uri":"/r/\#(i)","status":"200","remote_user":"\#(user)","request_id":"req-\#(i)","pad":"\#(String(repeating: "p", count: padding))"}"#
    }

    @Test func nginxShapedUDPAndFramedTCPReachTheStore() async throws {
        let data = CollectorProcessTests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let c = try CollectorProcessTests.Running(data: data)
        defer { if c.process.isRunning { c.stop(signal: SIGKILL) } }
        #expect(c.syslogUDPPort > 0 && c.syslogTCPPort > 0)

        // UDP exactly as nginx frames it (local7.info, "Mmm dd hh:mm:ss host nginx: "), one line per datagram,
        // plus one datagram of 60 KiB (accepted whole) and one that is not syslog at all.
        var datagrams = (0..<200).map {
            Array("<190>Nov  2 10:00:00 edge-1 nginx: \(Self.accessLine($0, user: "udp-user"))".utf8)
        }
        datagrams.append(
            Array("<190>Nov  2 10:00:00 edge-1 nginx: \(Self.accessLine(999, user: "big-user", padding: 60_000))".utf8))
        datagrams.append(Array("garbage without a header".utf8))
        #expect(datagrams[200].count > 60_000)
        Self.udpSend(datagrams, port: c.syslogUDPPort)

        // TCP as rsyslog forwards: RFC 5424 with octet counting, then newline-framed RFC 3164, in odd chunks.
        var stream: [UInt8] = []
        for i in 0..<50 {
            let m = "<134>1 2026-11-02T10:00:00Z edge-2 nginx - - - \(Self.accessLine(1000 + i, user: "tcp-user"))"
            stream += i % 2 == 0 ? Array("\(m.utf8.count) \(m)".utf8) : Array("\(m)\n".utf8)
        }
        let chunks = stride(from: 0, to: stream.count, by: 997).map { Array(stream[$0..<min(stream.count, $0 + 997)]) }
        try Self.tcpSend(chunks, port: c.syslogTCPPort)
        // A connection with an impossible frame length is closed; the receiver carries on.
        try Self.tcpSend([Array("99999999999999 <14>x".utf8)], port: c.syslogTCPPort)

        // UDP is not acknowledged: wait until the store has everything (or give up after 10 s).
        let store = try AuditStore(directories: [DataDirectory(data)])
        var stored: [StoredRecord] = []
        for _ in 0..<100 {
            try store.refresh()
            stored = try store.search(EventQuery())
            if stored.count >= 251 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try store.search(EventQuery(terms: [.user("udp-user")])).count == 200)
        #expect(try store.search(EventQuery(terms: [.user("tcp-user")])).count == 50)
        let big = try store.search(EventQuery(terms: [.user("big-user")]))
        #expect(big.count == 1)
        #expect(big.first?.event.attributes.value(forKey: "pad")?.stringValue?.count == 60_000)
        #expect(big.first?.event.attributes.value(forKey: "syslog.app_name") == .string("nginx"))
        let metrics = try await c.metrics()
        #expect(metrics[#"audit_collector_accepted_items_total{receiver="syslog_udp"}"#] == 201)
        #expect(metrics[#"audit_collector_rejected_items_total{receiver="syslog_udp",reason="invalid_line"}"#] == 1)
        #expect(metrics[#"audit_collector_accepted_items_total{receiver="syslog_tcp"}"#] == 50)
        #expect(metrics[#"audit_collector_rejected_items_total{receiver="syslog_tcp",reason="invalid_line"}"#] == 1)
        #expect(metrics["audit_collector_syslog_udp_kernel_drops"] == 0)
        // The receive buffer asked for by default (32 MiB), as Linux grants it: capped at net.core.rmem_max unless
        // the process may pass the cap (SO_RCVBUFFORCE, CAP_NET_ADMIN), then doubled for its bookkeeping.
        let rmemMax = try #require(
            Int(
                try String(contentsOfFile: "/proc/sys/net/core/rmem_max", encoding: .utf8).trimmingCharacters(
                    in: .whitespacesAndNewlines)))
        let asked = Self.mayForceReceiveBuffer() ? 32 << 20 : min(32 << 20, rmemMax)
        #expect(metrics["audit_collector_syslog_udp_receive_buffer_bytes"] == Double(2 * asked))
        c.stop(signal: SIGTERM)
        #expect(c.process.terminationStatus == 0)
    }

    /// Whether this process (and so the collector it starts) may set a receive buffer over net.core.rmem_max.
    static func mayForceReceiveBuffer() -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var size: Int32 = 1 << 20
        return setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) == 0
    }
}
