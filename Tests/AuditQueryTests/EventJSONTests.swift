import AuditQuery
import Foundation
import JSONText
import PropertyBased
import SyntheticTraffic
import TestSupport
import Testing

@testable import LogFormat

/// Parses one rendered event with Foundation (allowed in tests) as an independent check of the JSON.
private func parse(_ json: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
    return try #require(object as? [String: Any])
}

private func span(
    attributes: [Attribute] = [], parent: SpanID? = SpanID(value: 0x0102_0304_0506_0708), name: String = "GET /x"
) -> AuditEvent {
    AuditEvent(
        kind: .span, startTimeUnixNano: 1_740_960_000_123_456_789, endTimeUnixNano: 1_740_960_000_223_456_789,
        traceID: TraceID(high: 0x4bf9_2f35_77b3_4da6, low: 0xa3ce_929d_0e0e_4736),
        spanID: SpanID(value: 0x00f0_67aa_0ba9_02b7),
        parentSpanID: parent, flags: 0x301, spanKind: .server, name: name, service: "orders", source: .app,
        attributes: attributes)
}

@Suite("EventJSON")
struct EventJSONTests {
    @Test func fixedFieldsAndOrder() throws {
        let json = EventJSON.render(span())
        // The always-present core; everything empty or default is left out.
        #expect(
            json
                == #"{"kind":"span","start_time_unix_nano":"1740960000123456789","end_time_unix_nano":"1740960000223456789","duration_ns":100000000,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","parent_span_id":"0102030405060708","flags":769,"span_kind":"server","name":"GET /x","service":"orders","source":"app","attributes":{}}"#
        )
        #expect(!json.contains("\n"))
        let object = try parse(json)
        #expect(object["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(object["duration_ns"] as? Int == 100_000_000)
        // Optional parts are omitted, never null.
        for key in [
            "trace_state", "user", "workload", "http", "status", "severity_number", "body", "observed_time_unix_nano",
            "events", "links", "resource", "scope", "dropped_attributes_count",
        ] {
            #expect(object[key] == nil, "\(key) should be omitted")
        }
        // The same event rendered twice is byte-identical.
        #expect(EventJSON.render(span()) == json)
    }

    @Test func parentOmittedForRoots() throws {
        let json = EventJSON.render(span(parent: nil))
        #expect(!json.contains("parent_span_id"))
        #expect(try parse(json)["parent_span_id"] == nil)
        #expect(try parse(EventJSON.render(span()))["parent_span_id"] as? String == "0102030405060708")
    }

    @Test(arguments: [
        ("plain", #""plain""#),
        ("say \"hi\"", #""say \"hi\"""#),
        ("back\\slash", #""back\\slash""#),
        ("tab\there\nnew\rret", #""tab\there\nnew\rret""#),
        ("\u{08}\u{0C}", #""\b\f""#),
        ("\u{00}\u{01}\u{1F}", #""\u0000\u0001\u001f""#),
        ("\u{7F}", "\"\u{7F}\""),
        ("café Müller 日本 😀", "\"café Müller 日本 😀\""),
        ("line\u{2028}sep\u{2029}", #""line\u2028sep\u2029""#),
        ("</script>", #""</script>""#),
        ("", #""""#),
    ])
    func stringEscaping(input: String, expected: String) throws {
        let json = EventJSON.render(span(attributes: [Attribute("k", .string(input))], name: input))
        #expect(json.contains(#""attributes":{"k":"# + expected + "}"))
        #expect(json.contains(#""name":"# + expected + ","))
        let object = try parse(json)
        #expect(object["name"] as? String == input)
        let attributes = try #require(object["attributes"] as? [String: Any])
        #expect(attributes["k"] as? String == input)
    }

    @Test func escapedKeys() throws {
        let json = EventJSON.render(span(attributes: [Attribute("we\"ird\\key\n", .bool(true))]))
        #expect(json.contains(#""we\"ird\\key\n":true"#))
        let attributes = try #require(try parse(json)["attributes"] as? [String: Any])
        #expect(attributes["we\"ird\\key\n"] as? Bool == true)
    }

    @Test func everyValueType() throws {
        let attributes: [Attribute] = [
            Attribute("empty", .empty),
            Attribute("s", .string("x")),
            Attribute("t", .bool(true)),
            Attribute("f", .bool(false)),
            Attribute("i", .int(-42)),
            Attribute("i53", .int(1 << 53)),
            Attribute("i53neg", .int(-(1 << 53))),
            Attribute("ibig", .int((1 << 53) + 1)),
            Attribute("imin", .int(.min)),
            Attribute("imax", .int(.max)),
            Attribute("d", .double(0.1)),
            Attribute("d1", .double(1)),
            Attribute("dexp", .double(1e-5)),
            Attribute("dbig", .double(5e20)),
            Attribute("dneg0", .double(-0.0)),
            Attribute("nan", .double(.nan)),
            Attribute("inf", .double(.infinity)),
            Attribute("ninf", .double(-.infinity)),
            Attribute("b0", .bytes([])),
            Attribute("b1", .bytes([0xff])),
            Attribute("b2", .bytes([0xff, 0xee])),
            Attribute("b3", .bytes(Array("Man".utf8))),
            Attribute("arr", .array([.int(1), .string("two"), .array([]), .keyValueList([])])),
            Attribute(
                "kv", .keyValueList([Attribute("a", .int(1)), Attribute("b", .keyValueList([Attribute("c", .empty)]))])),
        ]
        let json = EventJSON.render(span(attributes: attributes))
        let expected =
            #""attributes":{"empty":null,"s":"x","t":true,"f":false,"i":-42,"i53":9007199254740992,"#
            + #""i53neg":-9007199254740992,"ibig":"9007199254740993","imin":"-9223372036854775808","#
            + #""imax":"9223372036854775807","d":0.1,"d1":1.0,"dexp":1e-05,"dbig":5e+20,"dneg0":-0.0,"#
            + #""nan":"NaN","inf":"Infinity","ninf":"-Infinity","b0":"","b1":"/w==","b2":"/+4=","b3":"TWFu","#
            + #""arr":[1,"two",[],{}],"kv":{"a":1,"b":{"c":null}}}"#
        #expect(json.contains(expected))

        let parsed = try #require(try parse(json)["attributes"] as? [String: Any])
        #expect(parsed["empty"] is NSNull)
        #expect(parsed["i"] as? Int == -42)
        #expect(parsed["i53"] as? Int == 1 << 53)
        #expect(parsed["ibig"] as? String == "9007199254740993")
        #expect(parsed["d"] as? Double == 0.1)
        #expect(parsed["dexp"] as? Double == 1e-5)
        #expect(parsed["dbig"] as? Double == 5e20)
        #expect(parsed["nan"] as? String == "NaN")
        #expect(parsed["b3"] as? String == "TWFu")
        #expect(Data(base64Encoded: try #require(parsed["b2"] as? String)) == Data([0xff, 0xee]))
        let array = try #require(parsed["arr"] as? [Any])
        #expect(array.count == 4)
        #expect(array[1] as? String == "two")
        let kv = try #require(parsed["kv"] as? [String: Any])
        #expect((kv["b"] as? [String: Any])?["c"] is NSNull)
    }

    @Test func doublesRoundTrip() throws {
        let values: [Double] = [
            0, 1, -1, 0.1, 1.0 / 3, 123_456.789, 1e-300, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 2.5e15, 1e16,
            -7.25e-8,
        ]
        for value in values {
            let json = EventJSON.render(span(attributes: [Attribute("v", .double(value))]))
            let parsed = try #require(try parse(json)["attributes"] as? [String: Any])
            #expect((parsed["v"] as? NSNumber)?.doubleValue == value, "\(value)")
        }
    }

    @Test func identityHTTPEventsLinksResourceScope() throws {
        var event = span()
        event.kind = .access
        event.source = .edge
        event.traceState = "rojo=00f067aa0ba902b7"
        event.user = UserIdentity(
            subject: "u-000123", email: "ana@example.com", groups: ["staff", "finance"],
            issuer: "https://login.example.com", origin: .verifiedToken, tokenFingerprint: [0xde, 0xad, 0xbe, 0xef])
        event.workload = "spiffe://cluster.local/ns/shop/sa/orders"
        event.http = HTTPFacts(
            method: "GET", target: "/a?b=c", route: "/a", statusCode: 404, clientAddress: "203.0.113.9")
        event.statusCode = .error
        event.statusMessage = "boom"
        event.droppedAttributesCount = 3
        event.events = [
            SpanEvent(
                timeUnixNano: 1_740_960_000_200_000_000, name: "exception",
                attributes: [Attribute("exception.type", .string("E"))], droppedAttributesCount: 1)
        ]
        event.links = [
            SpanLink(traceID: TraceID(high: 1, low: 2), spanID: SpanID(value: 3), traceState: "a=b", flags: 0x101)
        ]
        event.resourceAttributes = [Attribute("service.name", .string("orders"))]
        event.resourceSchemaURL = "https://opentelemetry.io/schemas/1.26.0"
        event.scope = InstrumentationScope(
            name: "io.opentelemetry.tomcat-10.0", version: "2.11.0", attributes: [Attribute("x", .int(1))])
        event.scopeSchemaURL = "https://opentelemetry.io/schemas/1.25.0"
        let json = EventJSON.render(event)
        #expect(
            json.contains(
                #""user":{"subject":"u-000123","email":"ana@example.com","groups":["staff","finance"],"issuer":"https://login.example.com","origin":"verified_token","token_fingerprint":"deadbeef"},"workload":"spiffe://cluster.local/ns/shop/sa/orders","http":{"method":"GET","target":"/a?b=c","route":"/a","status_code":404,"client_address":"203.0.113.9"},"status":{"code":"error","message":"boom"}"#
            ))
        #expect(json.contains(#""trace_state":"rojo=00f067aa0ba902b7","flags":769,"#))
        #expect(
            json.contains(
                #""dropped_attributes_count":3,"events":[{"time_unix_nano":"1740960000200000000","name":"exception","attributes":{"exception.type":"E"},"dropped_attributes_count":1}]"#
            ))
        #expect(
            json.contains(
                #""links":[{"trace_id":"00000000000000010000000000000002","span_id":"0000000000000003","trace_state":"a=b","flags":257,"attributes":{}}]"#
            ))
        let withoutState = EventJSON.render(
            {
                var e = event
                e.links[0].traceState = ""
                return e
            }())
        #expect(withoutState.contains(#""span_id":"0000000000000003","flags":257,"attributes":{}}]"#))
        #expect(
            json.hasSuffix(
                #""resource":{"attributes":{"service.name":"orders"},"schema_url":"https://opentelemetry.io/schemas/1.26.0"},"scope":{"name":"io.opentelemetry.tomcat-10.0","version":"2.11.0","attributes":{"x":1},"schema_url":"https://opentelemetry.io/schemas/1.25.0"}}"#
            ))
        let object = try parse(json)
        #expect(object["kind"] as? String == "access")
        let user = try #require(object["user"] as? [String: Any])
        #expect(user["groups"] as? [String] == ["staff", "finance"])

        // A user with only a subject: optional members are left out.
        event.user = UserIdentity(subject: "svc")
        event.http = HTTPFacts()
        event.statusMessage = ""
        event.scope = InstrumentationScope(name: "only-name")
        event.scopeSchemaURL = ""
        event.resourceSchemaURL = ""
        event.events = []
        event.droppedEventsCount = 2
        event.droppedLinksCount = 1
        let minimal = EventJSON.render(event)
        #expect(minimal.contains(#""user":{"subject":"svc","groups":[],"origin":"unknown"}"#))
        #expect(minimal.contains(#""http":{"status_code":0},"status":{"code":"error"},"#))
        #expect(minimal.contains(#""dropped_attributes_count":3,"dropped_events_count":2,"links":[{"#))
        #expect(
            minimal.contains(
                #"}],"dropped_links_count":1,"resource":{"attributes":{"service.name":"orders"}},"scope":{"name":"only-name"}}"#
            ))
        // A message without a code is still written; an unset status with no message is not.
        event.statusCode = .unset
        event.statusMessage = "note"
        #expect(EventJSON.render(event).contains(#""status":{"code":"unset","message":"note"}"#))
    }

    @Test func logRecords() throws {
        let log = AuditEvent(
            kind: .log, startTimeUnixNano: 1_740_960_000_000_000_000, observedTimeUnixNano: 1_740_960_000_000_000_500,
            severityNumber: 17, severityText: "ERROR", body: .keyValueList([Attribute("msg", .string("denied"))]),
            eventName: "auth.denied")
        let json = EventJSON.render(log)
        #expect(
            json.contains(
                #""observed_time_unix_nano":"1740960000000000500","duration_ns":0,"trace_id":"00000000000000000000000000000000","span_id":"0000000000000000","flags":0,"span_kind":"unspecified","#
            ))
        #expect(
            json.contains(
                #""severity_number":17,"severity_text":"ERROR","body":{"msg":"denied"},"event_name":"auth.denied","attributes""#
            ))
        #expect(try parse(json)["severity_text"] as? String == "ERROR")
    }

    @Test func negativeDurationAndLargeDuration() throws {
        var event = span()
        event.endTimeUnixNano = event.startTimeUnixNano - 5
        #expect(EventJSON.render(event).contains(#""duration_ns":-5,"#))
        event.endTimeUnixNano = event.startTimeUnixNano + (1 << 60)
        #expect(EventJSON.render(event).contains(#""duration_ns":"1152921504606846976","#))
    }

    /// Ids and times are each written in one append, their hex and decimal digits built in machine words: every
    /// digit against the standard library's, at the edges (0, 9, 10, 15, 16, the largest) and for random values.
    @Test func idsAndTimesAgainstTheStandardLibrary() async {
        func hex(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        func check(_ a: UInt64, _ b: UInt64) {
            var event = span(parent: SpanID(value: b))
            event.traceID = TraceID(high: a, low: b)
            event.spanID = SpanID(value: a ^ b)
            event.startTimeUnixNano = a
            event.endTimeUnixNano = b
            let json = EventJSON.render(event)
            #expect(json.contains(#""trace_id":"\#(hex(a))\#(hex(b))","#), "\(a) \(b)")
            #expect(json.contains(#""span_id":"\#(hex(a ^ b))","#), "\(a) \(b)")
            #expect(json.contains(#""parent_span_id":"\#(hex(b))","#), "\(a) \(b)")
            #expect(json.contains(#""start_time_unix_nano":"\#(a)","end_time_unix_nano":"\#(b)","#), "\(a) \(b)")
        }
        let edges: [UInt64] = [0, 1, 9, 10, 15, 16, 99, 100, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, .max]
        for a in edges { for b in edges { check(a, b) } }
        await propertyCheck(count: 500, input: Gen.uint64(), Gen.uint64()) { a, b in check(a, b) }
    }

    /// The escaper skips plain text eight bytes at a time: against an escaper of one byte at a time, for random
    /// bytes drawn mostly from those it looks at (quotes, backslashes, control bytes, U+2028/U+2029 and their
    /// near misses) at every offset and length.
    @Test func escapingAgainstOneByteAtATime() async {
        func reference(_ bytes: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            var i = 0
            while i < bytes.count {
                let b = bytes[i]
                switch b {
                case 0x22: out += Array(#"\""#.utf8)
                case 0x5C: out += Array(#"\\"#.utf8)
                case 0x08: out += Array(#"\b"#.utf8)
                case 0x09: out += Array(#"\t"#.utf8)
                case 0x0A: out += Array(#"\n"#.utf8)
                case 0x0C: out += Array(#"\f"#.utf8)
                case 0x0D: out += Array(#"\r"#.utf8)
                case 0x00..<0x20: out += Array(#"\u00"#.utf8) + Array(String(format: "%02x", b).utf8)
                case 0xE2
                where i + 2 < bytes.count && bytes[i + 1] == 0x80 && (bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9):
                    out += Array((bytes[i + 2] == 0xA8 ? #"\u2028"# : #"\u2029"#).utf8)
                    i += 2
                default: out.append(b)
                }
                i += 1
            }
            return out
        }
        let alphabet: [UInt8] = [
            0x22, 0x5C, 0x00, 0x08, 0x0A, 0x1F, 0x20, 0x21, 0x41, 0x7F, 0x80, 0xA8, 0xA9, 0xE2, 0xFF,
        ]
        await propertyCheck(count: 2_000, input: Gen.uint64(), Gen.int(in: 0...40)) { seed, length in
            var g = SplitMix64(seed: seed)
            let bytes = (0..<length).map { _ -> UInt8 in
                let r = g.next()
                return r % 3 == 0
                    ? alphabet[Int((r >> 8) % UInt64(alphabet.count))] : UInt8(truncatingIfNeeded: r >> 16)
            }
            var out: [UInt8] = []
            bytes.withUnsafeBufferPointer { JSONString.appendEscaped($0, to: &out) }
            #expect(out == reference(bytes), "\(bytes)")
        }
    }

    @Test func repeatedKeysAreKeptInOrder() {
        let json = EventJSON.render(span(attributes: [Attribute("a", .int(1)), Attribute("a", .int(2))]))
        #expect(json.contains(#""attributes":{"a":1,"a":2}"#))
    }

    @Test func ndjsonAndRenderInto() throws {
        let events = [span(), span(parent: nil)]
        let text = EventJSON.ndjson(events)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty)
        #expect(String(lines[0]) == EventJSON.render(events[0]))
        var buffer: [UInt8] = Array("prefix ".utf8)
        EventJSON.render(events[1], into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "prefix " + EventJSON.render(events[1]))
    }

    @Test func generatedTrafficParses() throws {
        var generator = TrafficGenerator(seed: 7)
        for event in generator.nextEvents(500) {
            let object = try parse(EventJSON.render(event))
            #expect(object["trace_id"] as? String == event.traceID.hex)
        }
    }

    // MARK: Size of generated traffic

    /// Spans carry their SDK's whole resource (15 attributes for the apps), as real exporters send it.
    @Test func averageNDJSONSizeIsAbout1000Bytes() {
        var generator = TrafficGenerator(seed: 1)
        let events = generator.nextEvents(5_000)
        let bytes = EventJSON.ndjson(events).utf8.count
        let average = Double(bytes) / Double(events.count)
        print("average NDJSON bytes/event over 5000 events: \(average)")
        #expect(average >= 900 && average <= 1_150, "average \(average) bytes/event")
    }
    // MARK: Reusing a rendered resource

    /// Rendering a run of events through one memo gives, event for event, the bytes each renders to alone: for
    /// events decoded from column blocks (which share their resource's storage) and for events that merely have
    /// equal resources, different scopes or schema URLs, or none.
    @Test func memoNeverChangesTheBytes() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var generator = TrafficGenerator(seed: 11)
        var events = generator.nextEvents(3_000)
        // Same attributes, other schema URL / scope version / dropped count: must not reuse.
        for i in stride(from: 1, to: events.count, by: 7) {
            events[i].resourceAttributes = events[i - 1].resourceAttributes
            events[i].scope = events[i - 1].scope
            switch i % 3 {
            case 0: events[i].resourceSchemaURL = "https://opentelemetry.io/schemas/1.9.0"
            case 1: events[i].scope.version += "-x"
            default: events[i].resourceDroppedAttributesCount += 1
            }
        }
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: WriterOptions(), logger: quietLogger)
        try writer.append(events)
        let entry = try #require(try writer.seal())
        let decoded = try SegmentReader(path: tmp.dataDirectory.path(relative: entry.relativePath), sealed: true)
            .scan().map(\.event)
        #expect(decoded.count == events.count)
        for run in [events, decoded] {
            var memo = EventJSONMemo()
            var reused: [UInt8] = []
            var alone: [UInt8] = []
            for e in run {
                EventJSON.render(e, into: &reused, memo: &memo)
                EventJSON.render(e, into: &alone)
            }
            #expect(reused == alone)
        }
        // Record lines reuse their segment's prefix: records of three segments of two nodes, interleaved.
        let nodes = [NodeID.random(), NodeID.random()]
        let records = decoded.prefix(300).enumerated().map { i, e in
            StoredRecord(
                event: e,
                location: RecordLocation(
                    nodeID: nodes[i % 3 == 0 ? 1 : 0], segmentSequence: UInt64(i % 2 + 1), ordinal: UInt32(i)))
        }
        var memo = EventJSONMemo()
        var lines: [UInt8] = []
        for r in records {
            RecordJSON.line(r, into: &lines, memo: &memo)
            lines.append(UInt8(ascii: "\n"))
        }
        #expect(String(decoding: lines, as: UTF8.self) == records.map { RecordJSON.line($0) + "\n" }.joined())
    }
}
