import Foundation
import LogFormat
import PropertyBased
import SyntheticTraffic
import Testing

@testable import CollectorParsers

@Suite struct TraceParentTests {
    static let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test func parsesTheSpecExample() throws {
        let tp = try #require(TraceParent(Self.valid))
        #expect(tp.traceID.hex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(tp.parentID.hex == "00f067aa0ba902b7")
        #expect(tp.sampled)
        #expect(tp.header == Self.valid)
    }

    @Test(arguments: [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // uppercase
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero parent id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // version 00 with more
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",  // short flags
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",  // wrong separators
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // bad version hex
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // higher version, no dash after flags
        "",
    ])
    func invalidHeadersAreRefused(header: String) {
        #expect(TraceParent(header) == nil)
    }

    @Test func higherVersionsParseTheirFirstFields() throws {
        let tp = try #require(
            TraceParent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02-what-the-future-holds"))
        #expect(tp.version == 0xcc)
        #expect(!tp.sampled)
        #expect(tp.flags == 2)
    }

    /// The parser before it worked in place (an array per header and per hex field), kept as the reference.
    static func reference(_ header: String) -> TraceParent? {
        let b = Array(header.utf8)
        guard b.count >= 55, b[2] == UInt8(ascii: "-"), b[35] == UInt8(ascii: "-"), b[52] == UInt8(ascii: "-") else {
            return nil
        }
        func lowerHex(_ r: Range<Int>) -> [UInt8]? {
            guard b[r].allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
            return HexCoding.decode(b[r])
        }
        guard let v = lowerHex(0..<2), let t = lowerHex(3..<35), let p = lowerHex(36..<52), let f = lowerHex(53..<55)
        else { return nil }
        guard v[0] != 0xff else { return nil }
        if v[0] == 0 {
            guard b.count == 55 else { return nil }
        } else if b.count > 55 {
            guard b[55] == UInt8(ascii: "-") else { return nil }
        }
        guard let trace = TraceID(bytes: t), !trace.isZero, let parent = SpanID(bytes: p), !parent.isZero else {
            return nil
        }
        var tp = TraceParent(traceID: trace, parentID: parent, flags: f[0])
        tp.version = v[0]
        return tp
    }

    /// Headers near the valid one (bytes replaced by hex of either case, dashes, zeros, other letters and
    /// non-ASCII; cut or extended) parse exactly as the reference parser does.
    @Test func mutatedHeadersParseAsTheReferenceDoes() async {
        let alphabet: [UInt8] = Array("0123456789abcdefABCDEF-g0000 ".utf8) + [0xC3, 0xA9, 0xFF]
        await propertyCheck(
            count: 3_000,
            input: Gen.int(in: 0...2), Gen.int(in: 0...5), Gen.uint64(), Gen.int(in: -3...8)
        ) { start, edits, seed, extend in
            var rng = seed | 1
            func next() -> Int {
                rng ^= rng << 13
                rng ^= rng >> 7
                rng ^= rng << 17
                return Int(truncatingIfNeeded: rng >> 1)
            }
            let bases = [
                Self.valid, "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02",
                "01-" + String(repeating: "0", count: 31) + "1-0000000000000001-00",
            ]
            var bytes = Array(bases[start].utf8)
            for _ in 0..<edits { bytes[next() % bytes.count] = alphabet[next() % alphabet.count] }
            if extend < 0 {
                bytes.removeLast(-extend)
            } else {
                for _ in 0..<extend { bytes.append(alphabet[next() % alphabet.count]) }
            }
            let header = String(decoding: bytes, as: UTF8.self)
            #expect(TraceParent(header) == Self.reference(header), "\(header)")
        }
    }
}

@Suite struct HexIdTests {
    /// `TraceID(hex:)` and `SpanID(hex:)` read digits in place now; the arrays they built before are the reference.
    @Test func idsFromHexMatchTheBytesDecoding() async {
        let alphabet = Array("0123456789abcdefABCDEFxg-".utf8)
        await propertyCheck(count: 3_000, input: Gen.int(in: 0...34), Gen.uint64()) { length, seed in
            var rng = seed | 1
            var bytes: [UInt8] = []
            for _ in 0..<length {
                rng ^= rng << 13
                rng ^= rng >> 7
                rng ^= rng << 17
                // Mostly hex digits, so that valid ids are common.
                let i = Int(rng >> 33) % (rng & 7 == 0 ? alphabet.count : 22)
                bytes.append(alphabet[i])
            }
            let text = String(decoding: bytes, as: UTF8.self)
            let decoded = HexCoding.decode(bytes)
            let expectedTrace: TraceID? =
                (length == 32 || length == 16)
                ? decoded.flatMap { TraceID(bytes: [UInt8](repeating: 0, count: 16 - $0.count) + $0) } : nil
            #expect(TraceID(hex: text) == expectedTrace, "\(text)")
            let expectedSpan: SpanID? = length == 16 ? decoded.flatMap { SpanID(bytes: $0) } : nil
            #expect(SpanID(hex: text) == expectedSpan, "\(text)")
        }
    }
}

@Suite struct ByteJSONTests {
    @Test func keepsRawHighBytesAndUnescapes() throws {
        let line: [UInt8] =
            Array(#"{"a":"x\"y\\z\n","b":""#.utf8) + [0xC3, 0x28, 0xFF] + Array(#"","c":"\u00e9\ud83d\ude00"}"#.utf8)
        guard case .object(let m) = try ByteJSONParser.parse(line) else {
            Issue.record("not an object")
            return
        }
        #expect(m[0].1 == .string(Array("x\"y\\z\n".utf8)))
        #expect(m[1].1 == .string([0xC3, 0x28, 0xFF]))
        #expect(m[2].1 == .string(Array("é😀".utf8)))
    }

    @Test(arguments: [
        (#"{"a":"#, "the JSON ends early"), (#"{"a":"x"#, "a string is not closed"),
        (#"{"a":1,}"#, "expected a member name"),
        (#"{"a" 1}"#, "expected : after a member name"), (#"{"a":01x}"#, "expected , or } in an object"),
        (#"{"a":"\q"}"#, "unknown escape"), (#"{"a":tru}"#, "expected true"), (#"{"a":1} x"#, "unexpected bytes after"),
        (#"{"a":"\u12"}"#, "four hex digits"), (#"{"a":"\u+FFF"}"#, "four hex digits"),
        (#"{"a":"\u-000"}"#, "four hex digits"), (#"{"a":-}"#, "a number needs digits"),
        (#"[1,2"#, "an array is not closed"),
    ])
    func malformedJSONIsNamed(text: String, expected: String) {
        #expect { try ByteJSONParser.parse(Array(text.utf8)) } throws: {
            ($0 as? JSONSyntaxError)?.message.contains(expected) == true
        }
    }

    @Test func rawControlBytesAndDeepNestingAreRefused() {
        #expect(throws: JSONSyntaxError.self) { try ByteJSONParser.parse(Array("{\"a\":\"x\u{01}\"}".utf8)) }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect { try ByteJSONParser.parse(Array(deep.utf8)) } throws: {
            ($0 as? JSONSyntaxError)?.message.contains("nested deeper") == true
        }
    }
}

@Suite struct AccessEventMappingTests {
    static let nginxLine =
        #"{"time_iso8601":"2026-11-02T10:00:00+00:00","msec":"1793613600.125","request_id":"4bf92f3577b34da6a3ce929d0e0e4736","remote_addr":"203.0.113.9","remote_user":"-","upstream_http_x_user_id":"alice","upstream_http_x_user_email":"alice@example.com","upstream_http_x_user_groups":"auditors, admins","request_method":"GET","request_uri":"/api/v1/orders?page=2","status":"200","body_bytes_sent":"512","request_time":"0.012","upstream_response_time":"0.010, 0.001 : 0.000","http_traceparent":"-","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","ssl_client_s_dn":"-"}"#

    static let istioLine =
        #"{"start_time":"2026-11-02T10:00:00.130Z","method":"GET","path":"/v1/items/SKU-1?x=1","protocol":"HTTP/1.1","response_code":"503","response_flags":"UF","response_code_details":"upstream_reset_before_response_started","bytes_received":"0","bytes_sent":"91","duration":"4","upstream_service_time":"-","x_forwarded_for":"203.0.113.9","user_agent":"curl/8.5","request_id":"b1c3c9f4-7a8e-4d5c-9f7e-1f2a3b4c5d6e","authority":"catalog.catalog:8080","upstream_host":"10.1.2.3:8080","upstream_cluster":"outbound|8080||catalog.catalog.svc.cluster.local","downstream_remote_address":"10.1.0.7:52344","route_name":"default","downstream_peer_uri_san":"spiffe://cluster.local/ns/shop/sa/orders"}"#

    @Test func nginxLineBecomesAnEdgeAccessEvent() throws {
        let e = try derivedAccessEvent(Array(Self.nginxLine.utf8))
        #expect(e.kind == .access)
        #expect(e.source == .edge)
        #expect(e.service == "edge-nginx")
        // msec is when nginx logged, request_time (12 ms) after the start.
        #expect(e.startTimeUnixNano == 1_793_613_600_113_000_000)
        #expect(e.durationNanos == 12_000_000)
        #expect(e.traceID.hex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(e.spanID.hex == "00f067aa0ba902b7")
        #expect(e.parentSpanID == nil)
        #expect(
            e.user
                == UserIdentity(
                    subject: "alice", email: "alice@example.com", groups: ["auditors", "admins"], origin: .edge))
        #expect(
            e.http
                == HTTPFacts(
                    method: "GET", target: "/api/v1/orders?page=2", statusCode: 200, clientAddress: "203.0.113.9"))
        #expect(e.name == "GET /api/v1/orders")
        #expect(e.attributes.count == 17 + 2)  // every field, then the attempts derived from upstream_response_time
        #expect(e.attributes.value(forKey: "nginx.upstream.attempts") == .int(3))
        if case .double(let total)? = e.attributes.value(forKey: "nginx.upstream.response_time_total") {
            #expect(abs(total - 0.011) < 1e-9)
        } else {
            Issue.record("no upstream total")
        }
        #expect(e.attributes.value(forKey: "upstream_response_time") == .string("0.010, 0.001 : 0.000"))
    }

    @Test func istioLineBecomesASidecarAccessEvent() throws {
        let e = try derivedAccessEvent(Array(Self.istioLine.utf8))
        #expect(e.source == .sidecar)
        #expect(e.service == "istio-proxy")
        #expect(e.startTimeUnixNano == 1_793_613_600_130_000_000)
        #expect(e.durationNanos == 4_000_000)
        #expect(e.traceID.isZero)  // the default Istio format carries no trace id; request_id is the join key
        #expect(e.http?.statusCode == 503)
        #expect(e.statusCode == .error)
        #expect(e.workload == "spiffe://cluster.local/ns/shop/sa/orders")
        #expect(e.user == nil)
        #expect(e.attributes.value(forKey: "upstream_service_time") == .string("-"))
    }

    @Test func invalidUTF8IsStoredSafelyNotRefused() throws {
        var line = Array(#"{"msec":"1793613600.000","request_uri":"/caf"#.utf8)
        line += [0xE9]  // Latin-1 é, as a raw byte
        line += Array(#"","remote_user":"b"#.utf8) + [0xF6] + Array(#"b","status":"200"}"#.utf8)
        let e = try derivedAccessEvent(line)
        #expect(e.attributes.value(forKey: "request_uri") == .bytes(Array("/caf".utf8) + [0xE9]))
        #expect(e.http?.target == "/caf\u{FFFD}")
        #expect(e.user?.subject == "b\u{FFFD}b")
        // And it survives the canonical encoding exactly.
        #expect(try RecordCodec.decode(RecordCodec.encode(e)) == e)
    }

    @Test func aRetriedLineGivesTheSameIds() throws {
        let line = Array(#"{"msec":"1793613600.5","request_id":"not-hex-at-all","status":"204"}"#.utf8)
        let a = try AccessEventMapping.event(fromLine: line)
        let b = try AccessEventMapping.event(fromLine: line)
        #expect(a == b)
        #expect(!a.spanID.isZero)
        #expect(a.traceID.isZero)
    }

    @Test func badLinesAreNamedAndGoodLinesKept() throws {
        let body = Array(
            (Self.nginxLine + "\n" + "not json\n" + "\n" + #"["an","array"]"# + "\r\n" + #"{"status":"200"}"# + "\n"
                + Self.istioLine + "\n").utf8)
        let (events, errors) = try AccessEventMapping.events(fromNDJSON: body)
        #expect(events.count == 2)
        #expect(errors.map(\.line) == [2, 4, 5])
        #expect(errors[0].reason.hasPrefix("not JSON:"))
        #expect(errors[1].reason == "a line must be a JSON object")
        #expect(errors[2].reason.hasPrefix("no readable time"))
    }

    @Test func oversizedLinesAreRefused() throws {
        let body = Array((#"{"msec":"1","pad":""# + String(repeating: "x", count: 2_000) + "\"}\n").utf8)
        let (events, errors) = try AccessEventMapping.events(fromNDJSON: body, maxLineBytes: 1_000)
        #expect(events.isEmpty)
        #expect(errors.first?.reason.contains("exceeds the 1000-byte limit") == true)
    }

    @Test func envoysSixteenDigitTraceIDsArePadded() throws {
        let line =
            #"{"start_time":"2026-11-02T10:00:00.000Z","method":"GET","path":"/x","response_code":"200","duration":"3","trace_id":"a3ce929d0e0e4736","request_id":"-","upstream_cluster":"inbound|80||"}"#
        let e = try derivedAccessEvent(Array(line.utf8))
        #expect(e.traceID == TraceID(hex: "0000000000000000a3ce929d0e0e4736"))
        #expect(e.source == .sidecar)
    }

    @Test(arguments: [
        ("0.012", UInt64(1_000_000_000), UInt64(12_000_000)), ("4", 1_000_000, 4_000_000),
        ("1793613600.125", 1_000_000_000, 1_793_613_600_125_000_000), ("1.5", 1_000_000, 1_500_000),
    ])
    func decimalTimesAreExact(text: String, unit: UInt64, expected: UInt64) {
        #expect(AccessEventMapping.decimalNanos(text, unit: unit) == expected)
    }

    @Test(arguments: [
        "", "-1", "1.", "1.x", "abc", "99999999999999999999", ".5", "+5", "1.2.3", " 1",
        // Numerals that Character.isNumber accepts: "½" has no whole-number value and trapped the collector.
        "1700000000.½", "½", "1.٣", "١٧",
    ])
    func badDecimalTimesAreNil(text: String) {
        #expect(AccessEventMapping.decimalNanos(text, unit: 1_000_000_000) == nil)
    }

    @Test func aLineWhoseTimeHasAFractionNumeralIsRefusedNotATrap() {
        let line = #"{"msec":"1700000000.½","request_method":"GET","request_uri":"/","status":200}"#
        #expect(throws: AccessEventMapping.Refusal.self) { try AccessEventMapping.event(fromLine: Array(line.utf8)) }
    }
}

@Suite struct NginxLineRenderingTests {
    @Test func renderedLinesMapBackToTheSameAccessEvent() throws {
        var g = TrafficGenerator(seed: 21)
        let edge = g.nextEvents(400).filter { $0.kind == .access }
        #expect(edge.count > 20)
        for e in edge {
            let back = try derivedAccessEvent(Array(NginxAccessLine.render(e).utf8))
            #expect(back.traceID == e.traceID)
            #expect(back.spanID == e.spanID)
            #expect(back.user?.subject == e.user?.subject)
            #expect(back.user?.email == e.user?.email)
            #expect(back.user?.groups == e.user?.groups)
            #expect(back.http?.method == e.http?.method)
            #expect(back.http?.target == e.http?.target)
            #expect(back.http?.statusCode == e.http?.statusCode)
            // nginx's msec: milliseconds.
            #expect(back.startTimeUnixNano == e.startTimeUnixNano / 1_000_000 * 1_000_000)
            #expect(back.durationNanos == e.durationNanos / 1_000_000 * 1_000_000)
        }
    }

    @Test func escapingSurvivesTheParser() throws {
        var e = AuditEvent(kind: .access, startTimeUnixNano: 1_700_000_000_123_000_000)
        e.http = HTTPFacts(method: "GET", target: "/q?x=\"a\\b\"\n\u{01}é", statusCode: 200)
        let back = try derivedAccessEvent(Array(NginxAccessLine.render(e).utf8))
        #expect(back.http?.target == e.http?.target)
    }
}

/// A line as the collector derives its audit fields: decoded (raw), then step 0 of the normalising stage.
private func derivedAccessEvent(_ line: [UInt8]) throws -> AuditEvent {
    var e = try AccessEventMapping.event(fromLine: line)
    AccessEventMapping.deriveAuditFields(&e, options: AccessEventOptions())
    return e
}
