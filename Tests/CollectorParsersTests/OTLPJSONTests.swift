import Foundation
import LogFormat
import OTLPBridge
import OTLPProto
import SyntheticTraffic
import Testing

@testable import CollectorParsers

@Suite struct OTLPJSONTests {
    static let sample = #"""
        {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"orders"}}]},
          "scopeSpans":[{"scope":{"name":"my.lib","version":"1.0.0"},"spans":[
            {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173",
             "name":"GET /orders","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
             "flags":257,"unknownField":{"ignored":true},
             "attributes":[{"key":"http.status_code","value":{"intValue":"200"}},{"key":"ratio","value":{"doubleValue":0.5}},
                           {"key":"ok","value":{"boolValue":true}},{"key":"raw","value":{"bytesValue":"AQID"}},
                           {"key":"list","value":{"arrayValue":{"values":[{"intValue":1},{"stringValue":"x"}]}}},
                           {"key":"map","value":{"kvlistValue":{"values":[{"key":"k","value":{"doubleValue":"NaN"}}]}}},
                           {"key":"empty","value":{}}],
             "events":[{"timeUnixNano":"1544712660500000000","name":"exception","attributes":[]}],
             "links":[{"trace_id":"5b8efff798038103d269b633813fc60d","span_id":"eee19b7ec3c1b175","flags":1}],
             "status":{"code":2,"message":"boom"}}]}]}]}
        """#

    /// `maxItems` on OTLP/JSON: a body of exactly that many spans or log records (rejected ones count) decodes;
    /// one more is refused as too many, not as malformed.
    @Test func moreOTLPJSONItemsThanTheLimitAreRefused() throws {
        let items = Array(repeating: "{}", count: 5).joined(separator: ",")
        let logs = Array(#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[\#(items)]},{"logRecords":[{}]}]}]}"#.utf8)
        #expect(try OTLPJSON.logs(json: logs, maxItems: 6).events.count == 6)
        let refused = #expect(throws: OTLPJSON.DecodeError.self) { try OTLPJSON.logs(json: logs, maxItems: 5) }
        #expect(refused?.requestLimit == 5 && refused?.message.contains("more than 5 items") == true)
        let spans = Array(#"{"resourceSpans":[{"scopeSpans":[{"spans":[\#(items)]}]}]}"#.utf8)
        let rejected = try OTLPJSON.traces(json: spans, maxItems: 5)
        #expect(rejected.events.isEmpty && rejected.rejected.count == 5)
        #expect(throws: OTLPJSON.DecodeError.self) { try OTLPJSON.traces(json: spans, maxItems: 4) }
        let malformed = #expect(throws: OTLPJSON.DecodeError.self) {
            try OTLPJSON.logs(json: Array(#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{}"#.utf8), maxItems: 5)
        }
        #expect(malformed?.requestLimit == nil)
    }

    /// `maxValues` on the JSON routes: a body holding exactly that many attributes, array and list values, span
    /// events and links (Zipkin: tags and annotations; NDJSON: the attributes its lines make and the values nested
    /// in them) decodes as without the limit; one fewer allowed refuses it as over the limit, not as malformed.
    @Test func moreValuesThanTheLimitAreRefusedOnTheJSONRoutes() throws {
        // The sample: one resource attribute; seven span attributes, two array elements and one list entry; one
        // span event; one link.
        let spans = Array(Self.sample.utf8)
        // Compared as records: the sample holds a NaN, never equal to itself.
        let bounded = try OTLPJSON.traces(json: spans, maxValues: 13)
        #expect(
            bounded.events.map(RecordCodec.encode) == (try OTLPJSON.traces(json: spans)).events.map(RecordCodec.encode))
        #expect(bounded.events.count == 1)
        let refused = #expect(throws: OTLPJSON.DecodeError.self) { try OTLPJSON.traces(json: spans, maxValues: 12) }
        #expect(refused?.requestLimit == 12 && refused?.message.contains("more than 12 attributes") == true)
        // A log body's array elements count; the body itself does not.
        let logs = Array(
            #"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"arrayValue":{"values":[{},{}]}},"attributes":[{"key":"a","value":{"kvlistValue":{"values":[{"key":"b"}]}}}]}]}]}]}"#
                .utf8)
        #expect(try OTLPJSON.logs(json: logs, maxValues: 4).events.count == 1)
        #expect(throws: OTLPJSON.DecodeError.self) { try OTLPJSON.logs(json: logs, maxValues: 3) }

        // Zipkin: three tags and two annotations over two spans (one of them rejected: its values still count).
        let zipkin = Array(
            #"""
            [{"traceId":"0101010101010101","id":"0202020202020202","timestamp":1700000000000000,
              "tags":{"a":"1","b":"2"},"annotations":[{"timestamp":1700000000000001,"value":"x"}]},
             {"traceId":"bad","tags":{"c":"3"},"annotations":[{"timestamp":1,"value":"y"}]}]
            """#.utf8)
        var left = 5
        let taken = try ZipkinMapping.events(fromJSON: zipkin, valuesLeft: &left)
        #expect(left == 0 && taken.events.count == 1 && taken.rejected.count == 1)
        left = 4
        _ = try ZipkinMapping.events(fromJSON: zipkin, valuesLeft: &left)
        #expect(left < 0)

        // NDJSON: each line's attributes and what is nested in them, as `ValueCount` counts them.
        let ndjson = Array(
            #"""
            {"msec":"1700000000.123","status":"200","list":[1,[2,3]],"map":{"k":"v"}}
            {"msec":"1700000000.124","status":"404"}
            """#.utf8)
        let (events, _) = try AccessEventMapping.events(fromNDJSON: ndjson)
        let values = events.reduce(0) { $0 + ValueCount.of($1.attributes) }
        #expect(values >= 2 + 4 + 1)
        #expect(try AccessEventMapping.events(fromNDJSON: ndjson, maxValues: values).events == events)
        let over = #expect(throws: RequestLimitExceeded.self) {
            try AccessEventMapping.events(fromNDJSON: ndjson, maxValues: values - 1)
        }
        #expect(over?.limit == values - 1)
    }

    /// The counts that bound NDJSON and Zipkin requests before decoding: exact past the limit, blank lines not
    /// counted, nil at or under it and for bodies too short to hold more.
    @Test func accessLinesAndZipkinSpansAreCountedPastTheLimit() throws {
        func lines(_ text: String, _ limit: Int) -> Int? {
            AccessEventMapping.linesOverLimit(Array(text.utf8), limit: limit)
        }
        #expect(lines("a\n\n \t\r\nb\r\nc", 2) == 3)
        #expect(lines("a\n\n \t\r\nb\r\nc", 3) == nil)
        #expect(lines("a\nb\nc\n", 2) == 3)
        #expect(lines("\n\n\n\n\n\n", 1) == nil)
        #expect(lines("ab", 1) == nil)
        // A CR is dropped only just before the newline, as the decoder does: these lines are not blank.
        #expect(lines(" \r \n\r\r\nx\r", 2) == 3)
        #expect(lines(" \r\n\t\r\n\r", 0) == nil)
        // The count is the decoder's: its events and refused lines, over bodies of blanks, CRs and text.
        var random = SplitMix64(seed: 15)
        for _ in 0..<2_000 {
            let body = (0..<Int.random(in: 1...24, using: &random)).map { _ in
                [UInt8(0x20), 0x09, 0x0D, 0x0A, 0x0A, 0x78].randomElement(using: &random)!
            }
            let decoded = try AccessEventMapping.events(fromNDJSON: body)
            let count = decoded.events.count + decoded.errors.count
            #expect(AccessEventMapping.linesOverLimit(body, limit: 0) == (count > 0 ? count : nil), "\(body)")
        }
        func spans(_ text: String, _ limit: Int) -> Int? {
            ZipkinMapping.spansOverLimit(Array(text.utf8), limit: limit)
        }
        #expect(spans("[{},{},{\"a\":[1,2]}]", 2) == 3)
        #expect(spans("[{},{},{\"a\":[1,2]}]", 3) == nil)
        #expect(spans("[{}, {} ,{}]", 2) == 3)
        #expect(spans("{\"a\":[{},{},{},{}]}", 1) == nil)
        #expect(spans("[{},{},{}", 2) == 3)
        #expect(spans("[{},{}", 1) == 2)
    }

    @Test func decodesTheOTLPJSONRules() throws {
        let imported = try OTLPJSON.traces(json: Array(Self.sample.utf8))
        let span = try #require(imported.events.first)
        #expect(span.traceID.hex == "5b8efff798038103d269b633813fc60c")
        #expect(span.parentSpanID?.hex == "eee19b7ec3c1b173")
        #expect(span.spanKind == .server)
        #expect(span.startTimeUnixNano == 1_544_712_660_000_000_000)
        #expect(span.endTimeUnixNano == 1_544_712_661_000_000_000)
        #expect(span.flags == 257)
        #expect(span.statusCode == .error)
        #expect(span.links.first?.spanID.hex == "eee19b7ec3c1b175")
        #expect(imported.rejected.isEmpty)
        var e = try #require(imported.events.first)
        OTLPMapping.deriveAuditFields(&e, identity: IdentityKeys())
        #expect(e.service == "orders")
        #expect(e.http?.statusCode == 200)
        #expect(e.attributes.map(\.key) == ["http.status_code", "ratio", "ok", "raw", "list", "map", "empty"])
        #expect(e.attributes[3].value == .bytes([1, 2, 3]))
        #expect(e.attributes[4].value == .array([.int(1), .string("x")]))
        #expect(e.attributes[6].value == .empty)
        if case .keyValueList(let m) = e.attributes[5].value, case .double(let d) = m[0].value {
            #expect(d.isNaN)
        } else {
            Issue.record("map attribute lost its NaN")
        }
    }

    @Test func snakeCaseKeysDecodeTheSame() throws {
        let snake = Self.sample.replacingOccurrences(of: "resourceSpans", with: "resource_spans")
            .replacingOccurrences(of: "scopeSpans", with: "scope_spans").replacingOccurrences(
                of: "traceId", with: "trace_id"
            )
            .replacingOccurrences(of: "startTimeUnixNano", with: "start_time_unix_nano")
        // Compared as bytes: the sample holds a NaN, which is never == itself.
        let a = try OTLPJSON.traces(json: Array(snake.utf8)).events.map(RecordCodec.encode)
        let b = try OTLPJSON.traces(json: Array(Self.sample.utf8)).events.map(RecordCodec.encode)
        #expect(a == b)
    }

    @Test func proto3JSONFromSwiftProtobufAlsoDecodes() throws {
        // Base64 ids and enum names (plain proto3 JSON, as some exporters send) are accepted leniently.
        var g = TrafficGenerator(seed: 3)
        let events = g.nextEvents(300).filter { $0.kind == .span }
        let request = OTLPMapping.traceRequest(from: events)
        let json = try request.jsonString()
        let imported = try OTLPJSON.traces(json: Array(json.utf8))
        #expect(imported.rejected.isEmpty)
        #expect(imported.events == OTLPMapping.events(from: request).events)
    }

    @Test(arguments: [
        (#"{"resourceSpans":{}}"#, "resourceSpans: expected an array"),
        (
            #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"-5"}]}]}]}"#,
            "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: \"-5\" is not an unsigned integer"
        ),
        (
            #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"a","value":{"intValue":"1.5"}}]}]}]}]}"#,
            "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.intValue: \"1.5\" is not a 64-bit integer"
        ),
        (
            #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":5}]}]}]}"#,
            "resourceSpans[0].scopeSpans[0].spans[0].name: expected a string"
        ),
        (
            #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"flags":"4294967296"}]}]}]}"#,
            "is not an unsigned integer up to 4294967295"
        ),
        (#"{"resourceSpans":["#, "malformed JSON"),
        (#"[1]"#, "expected an object"),
    ])
    func malformedDocumentsNameThePlace(json: String, expected: String) {
        #expect { try OTLPJSON.traces(json: Array(json.utf8)) } throws: {
            ($0 as? OTLPJSON.DecodeError)?.description.contains(expected) == true
        }
    }

    @Test func badIdsReachTheMappingAndAreRejectedThere() throws {
        let json = #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abc","spanId":"eee19b7ec3c1b174"}]}]}]}"#
        let imported = try OTLPJSON.traces(json: Array(json.utf8))
        #expect(imported.rejected.map(\.reason) == ["trace_id must be 16 bytes, got 3"])
    }

    @Test func logsDecode() throws {
        let json =
            #"{"resource_logs":[{"scope_logs":[{"log_records":[{"time_unix_nano":"1700000000000000000","severity_number":9,"severity_text":"INFO","body":{"stringValue":"hello"},"trace_id":"5b8efff798038103d269b633813fc60c","event_name":"login"}]}]}]}"#
        let e = try #require(try OTLPJSON.logs(json: Array(json.utf8)).events.first)
        #expect(e.severityNumber == 9)
        #expect(e.body == .string("hello"))
        #expect(e.eventName == "login")
        #expect(e.traceID.hex == "5b8efff798038103d269b633813fc60c")
    }
}
