// The seed corpus, written from real samples: the project's traffic generator (the same events the load
// generator sends), the store's own writer, and the wire samples the receivers' tests use. Regenerate with
// `AuditFuzz --write-seeds Tests/Fuzz/corpus` (a plain build of AuditFuzz); the files are committed.
import CollectorParsers
import Foundation
import LogFormat
import Logging
import OTLPBridge
import OTLPProto
import SwiftProtobuf
import SyntheticTraffic

public enum FuzzSeeds {
    public static func all() throws -> [FuzzTarget: [(name: String, bytes: [UInt8])]] {
        var generator = TrafficGenerator(seed: 8)
        var requests: [[AuditEvent]] = []
        for _ in 0..<3 { requests.append(generator.nextRequest()) }
        let spans = requests.map { $0.filter { $0.kind == .span } }
        var out: [FuzzTarget: [(name: String, bytes: [UInt8])]] = [:]

        out[.otlpProto] = try spans.enumerated().map { i, events in
            ("generator-trace-\(i).pb", try OTLPMapping.traceRequest(from: events).serializedBytes())
        }
        var logs = OTLPLogsRequest()
        var resourceLogs = Opentelemetry_Proto_Logs_V1_ResourceLogs()
        var scope = Opentelemetry_Proto_Logs_V1_ScopeLogs()
        var record = Opentelemetry_Proto_Logs_V1_LogRecord()
        record.timeUnixNano = 1_740_960_000_000_000_000
        record.severityText = "INFO"
        record.body.stringValue = "user alice exported report 42"
        record.traceID = Data(repeating: 0xAB, count: 16)
        record.spanID = Data(repeating: 0xCD, count: 8)
        var kv = OTLPKeyValue()
        kv.key = "enduser.id"
        kv.value.stringValue = "alice"
        record.attributes = [kv]
        scope.logRecords = [record]
        resourceLogs.scopeLogs = [scope]
        logs.resourceLogs = [resourceLogs]
        out[.otlpProto]?.append(("logs.pb", try logs.serializedBytes()))

        out[.otlpJSON] = [
            ("trace.json", Array(Samples.otlpJSONTrace.utf8)),
            ("logs.json", Array(Samples.otlpJSONLogs.utf8)),
        ]
        out[.zipkin] = [("envoy.json", Array(Samples.zipkin.utf8))]

        let access = requests.flatMap { $0 }.filter { $0.kind == .access }.prefix(3)
        out[.accessNDJSON] = [
            ("generator-nginx.ndjson", Array(access.map { NginxAccessLine.render($0) + "\n" }.joined().utf8)),
            ("envoy.ndjson", Array(Samples.envoyAccess.utf8)),
        ]
        let line = access.first.map(NginxAccessLine.render) ?? "{}"
        let rfc3164 = "<190>Nov  2 10:00:00 edge-1 nginx: \(line)"
        let rfc5424 = "<165>1 2026-11-02T10:00:00.123Z edge-1 nginx 4711 access [x@1 y=\"z\"] \u{FEFF}\(line)"
        out[.syslog] = [
            ("rfc3164.txt", Array(rfc3164.utf8)),
            ("rfc5424.txt", Array(rfc5424.utf8)),
            ("octet-counted.txt", Array("\(rfc5424.utf8.count) \(rfc5424)\(rfc3164.utf8.count) \(rfc3164)".utf8)),
            ("newline-framed.txt", Array("\(rfc3164)\n\(rfc3164)\n".utf8)),
        ]
        out[.jwt] = [
            ("jwt.txt", Array(Samples.jwt.utf8)),
            ("bearer-header.txt", Array("Bearer \(Samples.jwt)".utf8)),
            ("query.txt", Array("/api/orders?access_token=s3cr3t&page=2".utf8)),
            ("xfcc.txt", Array(Samples.xfcc.utf8)),
            ("traceparent.txt", Array("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".utf8)),
        ]

        // A small sealed segment of several blocks and a segment dictionary, for each codec, with its catalog entry.
        var segment: [(name: String, bytes: [UInt8])] = []
        let events = Array(requests.joined())
        // And one of requests whose ids are their own, not the trace id (column blocks keep a run's id once).
        var drawn = TrafficGenerator.Configuration(seed: 8)
        drawn.independentRequestIDs = true
        var drawnGenerator = TrafficGenerator(configuration: drawn)
        let drawnEvents = (0..<3).flatMap { _ in drawnGenerator.nextRequest() }
        for codec in [CompressionCodec.lz4, .zlib] {
            let root = NSTemporaryDirectory() + "/auditfuzz-seeds-\(getpid())-\(codec)"
            defer { try? FileManager.default.removeItem(atPath: root) }
            let directory = DataDirectory(root)
            var options = WriterOptions()
            options.targetBlockBytes = 2 << 10
            options.codec = codec
            // Several column blocks, so the seed holds a segment dictionary (block type 4) for the fuzzer to reach.
            options.columnBlockRows = 8
            let writer = try SegmentWriter(
                directory: directory, options: options,
                logger: Logger(label: "seeds", factory: { _ in SwiftLogNoOpLogHandler() }))
            try writer.append(events)
            guard let entry = try writer.seal() else { continue }
            let file = Array(try Data(contentsOf: URL(fileURLWithPath: directory.path(relative: entry.relativePath))))
            segment.append(("sealed-\(codec).seg", [0] + file))
            if codec == .lz4 {
                // Its archive copy: one block of every record, zlib columns, span ids stored as is.
                let hot = try SegmentReader(path: directory.path(relative: entry.relativePath), sealed: true)
                segment.append(("sealed-archive.seg", [0] + (try SegmentArchiver.archived(hot))))
                // And as archived before 2026-12-06 (users in index layout 8, trace ids in layout 7).
                segment.append(
                    ("sealed-archive-layout8.seg", [0] + (try SegmentArchiver.archived(hot, compactIndex: false))))
            }
            segment.append(("catalog-\(codec).bin", [3] + Catalog(entries: [entry]).encoded()))
            try writer.append(drawnEvents)
            guard let drawnEntry = try writer.seal() else { continue }
            let drawnFile = Array(
                try Data(contentsOf: URL(fileURLWithPath: directory.path(relative: drawnEntry.relativePath))))
            segment.append(("sealed-\(codec)-request-ids.seg", [0] + drawnFile))
            // And one whose edge events carry their own traceparent, as nginx logs it (revision 4's tag 0x85).
            let withTraceParents = events.map { e -> AuditEvent in
                guard e.kind == .access else { return e }
                var e = e
                e.attributes.append(Attribute("traceparent", .string("00-\(e.traceID.hex)-\(e.spanID.hex)-01")))
                return e
            }
            try writer.append(withTraceParents)
            guard let traceParentEntry = try writer.seal() else { continue }
            let traceParentFile = Array(
                try Data(contentsOf: URL(fileURLWithPath: directory.path(relative: traceParentEntry.relativePath))))
            segment.append(("sealed-\(codec)-traceparents.seg", [0] + traceParentFile))
            // The scanner reads row blocks (write-ahead logs, version 1 files): a segment sealed in place.
            let rowsRoot = root + "-rows"
            defer { try? FileManager.default.removeItem(atPath: rowsRoot) }
            var rowOptions = options
            rowOptions.sealLayout = .rows
            let rowWriter = try SegmentWriter(
                directory: DataDirectory(rowsRoot), options: rowOptions,
                logger: Logger(label: "seeds", factory: { _ in SwiftLogNoOpLogHandler() }))
            try rowWriter.append(events)
            guard let rowEntry = try rowWriter.seal() else { continue }
            let rows = Array(
                try Data(
                    contentsOf: URL(fileURLWithPath: DataDirectory(rowsRoot).path(relative: rowEntry.relativePath))))
            segment.append(("scan-\(codec).seg", [1] + rows))
        }
        for (i, e) in events.prefix(3).enumerated() { segment.append(("record-\(i).bin", [2] + RecordCodec.encode(e))) }
        out[.segment] = segment
        return out
    }

    /// Wire samples as real clients send them (the OTLP/JSON encoding rules, Envoy's Zipkin spans and access lines).
    enum Samples {
        static let otlpJSONTrace = #"""
            {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"orders"}}]},
              "scopeSpans":[{"scope":{"name":"my.lib","version":"1.0.0"},"spans":[
                {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173",
                 "name":"GET /orders","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
                 "flags":257,
                 "attributes":[{"key":"http.status_code","value":{"intValue":"200"}},{"key":"ratio","value":{"doubleValue":0.5}},
                               {"key":"ok","value":{"boolValue":true}},{"key":"raw","value":{"bytesValue":"AQID"}},
                               {"key":"list","value":{"arrayValue":{"values":[{"intValue":1},{"stringValue":"x"}]}}},
                               {"key":"map","value":{"kvlistValue":{"values":[{"key":"k","value":{"doubleValue":"NaN"}}]}}},
                               {"key":"enduser.id","value":{"stringValue":"alice"}}],
                 "events":[{"timeUnixNano":"1544712660500000000","name":"exception","attributes":[]}],
                 "links":[{"trace_id":"5b8efff798038103d269b633813fc60d","span_id":"eee19b7ec3c1b175","flags":1}],
                 "status":{"code":"STATUS_CODE_ERROR","message":"boom"}}]}]}]}
            """#
        static let otlpJSONLogs = #"""
            {"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},
              "scopeLogs":[{"scope":{"name":"audit"},"logRecords":[
                {"timeUnixNano":"1740960000000000000","severityNumber":9,"severityText":"INFO",
                 "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
                 "body":{"stringValue":"invoice 7 paid"},
                 "attributes":[{"key":"enduser.id","value":{"stringValue":"bob"}}]}]}]}]}
            """#
        static let zipkin = #"""
            [{"traceId":"463ac35c9f6413ad","parentId":"a2fb4a1d1a96d312","id":"0020000000000001","kind":"CLIENT",
              "name":"get /api/orders","timestamp":1793613600123456,"duration":2500,"debug":true,"shared":false,
              "localEndpoint":{"serviceName":"frontend-sidecar","ipv4":"10.1.2.3","port":15001},
              "remoteEndpoint":{"serviceName":"orders","ipv6":"2001:db8::1","port":8080},
              "annotations":[{"timestamp":1793613600123500,"value":"cs"},{"timestamp":1793613600125900,"value":"cr"}],
              "tags":{"http.method":"GET","http.url":"http://orders/api/orders?page=2","http.status_code":"200",
                      "upstream_cluster":"outbound|8080||orders.default.svc.cluster.local","guid:x-request-id":"6f1c-9a",
                      "error":"upstream reset"}},
             {"traceId":"5b8efff798038103d269b633813fc60c","id":"eee19b7ec3c1b174","name":"post /pay","timestamp":1793613600200000,
              "duration":100,"localEndpoint":{"serviceName":"billing"},"tags":{"enduser.id":"carol"}}]
            """#
        static let envoyAccess = #"""
            {"start_time":"2026-11-02T10:00:00.123Z","method":"GET","path":"/api/orders?page=2","protocol":"HTTP/1.1","response_code":200,"bytes_received":0,"bytes_sent":512,"duration":12,"upstream_host":"10.1.2.9:8080","x_forwarded_for":"203.0.113.7","user_agent":"curl/8.5","request_id":"6f1c-9a","authority":"orders","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","downstream_peer_uri_san":"spiffe://cluster.local/ns/default/sa/frontend"}
            {"time_iso8601":"2026-11-02T10:00:01+00:00","remote_addr":"198.51.100.4","remote_user":"dave","request":"POST /login HTTP/2.0","status":"401","body_bytes_sent":"0","request_time":"0.004","http_user_agent":"Mozilla/5.0","http_authorization":"Basic ZGF2ZTpodW50ZXIy"}
            """#
        /// `{"alg":"RS256","kid":"k1","typ":"JWT"}.{"sub":"alice","email":"alice@example.com","groups":["ops"],"iss":"https://idp.example","exp":4102444800}.sig`
        static let jwt =
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0"
            + ".eyJzdWIiOiJhbGljZSIsImVtYWlsIjoiYWxpY2VAZXhhbXBsZS5jb20iLCJncm91cHMiOlsib3BzIl0sImlzcyI6Imh0dHBzOi8vaWRwLmV4YW1wbGUiLCJleHAiOjQxMDI0NDQ4MDB9"
            + ".c2lnbmF0dXJl"
        static let xfcc =
            #"By=spiffe://cluster.local/ns/default/sa/orders;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/O=Lyft";URI=spiffe://cluster.local/ns/default/sa/frontend"#
    }
}
