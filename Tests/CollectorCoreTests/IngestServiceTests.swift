import CZlib
import Foundation
import LogFormat
import Logging
import OTLPBridge
import OTLPProto
import StoreQuery
import SyntheticTraffic
import Testing

@testable import CollectorCore

/// The receivers' logic in process: every answer an OTLP/HTTP or NDJSON client can get, and what is stored.
@Suite struct IngestServiceTests {
    final class Fixture: @unchecked Sendable {
        // @unchecked: immutable after init.
        let dir: String
        let log: DurableLog
        let service: IngestService

        init(limits: IngestLimits = IngestLimits(), options: DurableLog.Options = DurableLog.Options()) throws {
            dir = NSTemporaryDirectory() + "/ingest-\(UInt64.random(in: 0...UInt64.max))"
            var l = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            l.logLevel = .critical
            log = try DurableLog(directory: DataDirectory(dir), options: options, logger: l)
            service = IngestService(log: log, limits: limits, logger: l)
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }

        /// Every stored copy (the tests here count what was written, duplicates included).
        func stored() throws -> [AuditEvent] {
            var all = EventQuery()
            all.includeDuplicates = true
            return try AuditStore(directories: [DataDirectory(dir)]).search(all).map(\.event)
        }
    }

    static func spans(_ n: Int) -> [AuditEvent] {
        var g = TrafficGenerator(seed: 11)
        return Array(g.nextEvents(n * 2).filter { $0.kind == .span }.prefix(n))
    }

    static func gzip(_ bytes: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        _ = czlib_deflateInit2(&stream, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY)
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 32)
        var input = bytes
        let n: Int = input.withUnsafeMutableBufferPointer { inBuf in
            out.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = inBuf.baseAddress
                stream.avail_in = uInt(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = uInt(outBuf.count)
                _ = deflate(&stream, Z_FINISH)
                return Int(stream.total_out)
            }
        }
        return Array(out.prefix(n))
    }

    @Test func protobufTracesAreStoredBeforeTheReply() async throws {
        let f = try Fixture()
        let request = OTLPMapping.traceRequest(from: Self.spans(50))
        let r = await f.service.handle(
            method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: nil,
            body: try request.serializedBytes())
        #expect(r.status == 200)
        #expect(r.headers["Content-Type"] == "application/x-protobuf")
        let response = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse(serializedBytes: r.body)
        #expect(!response.hasPartialSuccess)
        #expect(try f.stored().count == 50)  // durable and readable when the reply is sent
    }

    @Test func gzipJSONWithABadSpanIsAPartialSuccessInJSON() async throws {
        let f = try Fixture()
        var request = OTLPMapping.traceRequest(from: Self.spans(10))
        request.resourceSpans[0].scopeSpans[0].spans[0].spanID = Data([1, 2, 3])
        let json = try request.jsonString()
        let r = await f.service.handle(
            method: "POST", path: "/v1/traces", contentType: "application/json; charset=utf-8", contentEncoding: "gzip",
            body: Self.gzip(Array(json.utf8)))
        #expect(r.status == 200)
        #expect(r.headers["Content-Type"] == "application/json")
        let text = String(decoding: r.body, as: UTF8.self)
        #expect(text.contains(#""rejectedSpans":"1""#))
        #expect(text.contains("span_id must be 8 bytes, got 3"))
        #expect(try f.stored().count == 9)
    }

    @Test func logsAndAccessLinesAreStored() async throws {
        let f = try Fixture()
        let logs =
            #"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","body":{"stringValue":"hi"}}]}]}]}"#
        let a = await f.service.handle(
            method: "POST", path: "/v1/logs", contentType: "application/json", contentEncoding: nil,
            body: Array(logs.utf8))
        #expect(a.status == 200)
        let lines = #"{"msec":"1700000000.5","request_uri":"/x","status":"200","remote_user":"alice"}"# + "\nnot json\n"
        let b = try await Self.postAccess(lines, to: f)
        #expect(b.status == 200)
        #expect(b.accepted == 1)
        #expect(b.rejectedLines.first == 2)
        #expect(try f.stored().map(\.kind).sorted { $0.rawValue < $1.rawValue } == [.access, .log])
    }

    /// Posts `ndjson` to /v1/access: the status, and the accepted count and rejected line numbers of the report.
    static func postAccess(_ ndjson: String, to f: Fixture) async throws -> (
        status: Int, accepted: Int?, rejectedLines: [Int?]
    ) {
        let r = await f.service.handle(
            method: "POST", path: "/v1/access", contentType: "application/x-ndjson", contentEncoding: nil,
            body: Array(ndjson.utf8))
        let report = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]
        let rejected = (report?["rejected"] as? [[String: Any]] ?? []).map { $0["line"] as? Int }
        return (r.status, report?["accepted"] as? Int, rejected)
    }

    /// An NDJSON line that breaks a limit is named by its line number among blank and malformed lines (worked
    /// out only when a line breaks one), and the answer to a post with nothing rejected, written directly, is
    /// what `JSONSerialization` writes.
    @Test func accessLinesBreakingALimitAreNamedByLine() async throws {
        var limits = IngestLimits()
        limits.maxStringBytes = 100
        let f = try Fixture(limits: limits)
        func line(_ uri: String) -> String { #"{"msec":"1700000000.5","request_uri":"\#(uri)","status":"200"}"# }
        let long = "/" + String(repeating: "x", count: 120)
        let body = [line("/a"), "", "not json", line(long), " \r", line("/b"), line(long)].joined(separator: "\n")
        let r = try await Self.postAccess(body, to: f)
        #expect(r.status == 200)
        #expect(r.accepted == 2)
        #expect(r.rejectedLines == [3, 4, 7])
        for accepted in [0, 1, 9, 10, 500, 123_456_789] {
            let obj: [String: Any] = ["accepted": accepted, "rejected": [Any]()]
            let reference = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            #expect(IngestService.accessReport(accepted: accepted, rejected: []) == Array(reference))
        }
    }

    @Test func wrongRoutesMethodsTypesAndEncodingsAreNamed() async throws {
        let f = try Fixture()
        let s = f.service
        #expect(
            await s.handle(
                method: "POST", path: "/v1/metrics", contentType: "application/x-protobuf", contentEncoding: nil,
                body: []
            ).status == 404)
        let get = await s.handle(method: "GET", path: "/v1/traces", contentType: nil, contentEncoding: nil, body: [])
        #expect(get.status == 405)
        #expect(get.headers["Allow"] == "POST")
        let xml = await s.handle(
            method: "POST", path: "/v1/traces", contentType: "application/xml", contentEncoding: nil, body: [])
        #expect(xml.status == 415)
        #expect(String(decoding: xml.body, as: UTF8.self).contains("application/xml"))
        let br = await s.handle(
            method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: "br", body: [])
        #expect(br.status == 415)
        let ndjsonType = await s.handle(
            method: "POST", path: "/v1/access", contentType: "application/x-protobuf", contentEncoding: nil, body: [])
        #expect(ndjsonType.status == 415)
    }

    @Test func malformedBodiesGetA400StatusNamingTheProblem() async throws {
        let f = try Fixture()
        let garbage = await f.service.handle(
            method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: nil,
            body: [0x0A, 0xFF, 0xFF, 0xFF])
        #expect(garbage.status == 400)
        let status = try Google_Rpc_Status(serializedBytes: garbage.body)
        #expect(status.code == 3)
        #expect(status.message.hasPrefix("malformed ExportTraceServiceRequest protobuf"))
        let badJSON = await f.service.handle(
            method: "POST", path: "/v1/logs", contentType: "application/json", contentEncoding: nil,
            body: Array(#"{"resourceLogs":5}"#.utf8))
        #expect(badJSON.status == 400)
        #expect(String(decoding: badJSON.body, as: UTF8.self).contains("resourceLogs: expected an array"))
        let cut = Array(Self.gzip(Array(repeating: 65, count: 10_000)).dropLast(20))
        let truncated = await f.service.handle(
            method: "POST", path: "/v1/traces", contentType: "application/json", contentEncoding: "gzip", body: cut)
        #expect(truncated.status == 400)
        #expect(String(decoding: truncated.body, as: UTF8.self).contains("ends early"))
        #expect(try f.stored().isEmpty)
    }

    @Test func gzipBombsAndOversizedBodiesGet413() async throws {
        var limits = IngestLimits()
        limits.maxBodyBytes = 1 << 20
        let f = try Fixture(limits: limits)
        let bomb = Self.gzip([UInt8](repeating: 0, count: 64 << 20))  // 64 MiB of zeros in ~64 KB
        #expect(bomb.count < 100_000)
        let r = await f.service.handle(
            method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: "gzip",
            body: bomb)
        #expect(r.status == 413)
        let big = await f.service.handle(
            method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: nil,
            body: [UInt8](repeating: 0, count: (1 << 20) + 1))
        #expect(big.status == 413)
        #expect(try Google_Rpc_Status(serializedBytes: big.body).code == 8)
    }

    @Test func recordLimitsRejectItemsNotRequests() async throws {
        var limits = IngestLimits()
        limits.maxAttributesPerRecord = 5
        limits.maxStringBytes = 100
        let f = try Fixture(limits: limits)
        var spans = Self.spans(5).map { e -> AuditEvent in
            var e = e
            e.attributes = Array(e.attributes.prefix(3))
            e.events = []
            e.links = []
            return e
        }
        spans[1].attributes += (0..<10).map { Attribute("k\($0)", .int(Int64($0))) }
        spans[2].name = String(repeating: "n", count: 101)
        // Span events and links count too: too many of them, or too many attributes on one.
        spans[3].events = (0..<6).map { SpanEvent(timeUnixNano: spans[3].startTimeUnixNano, name: "e\($0)") }
        spans[4].links = [
            SpanLink(
                traceID: spans[0].traceID, spanID: spans[0].spanID,
                attributes: (0..<6).map { Attribute("l\($0)", .bool(true)) })
        ]
        let r = await f.service.handle(
            method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: nil,
            body: try OTLPMapping.traceRequest(from: spans).serializedBytes())
        let response = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse(serializedBytes: r.body)
        #expect(response.partialSuccess.rejectedSpans == 4)
        #expect(response.partialSuccess.errorMessage.contains("more than the limit of 5"))
        #expect(response.partialSuccess.errorMessage.contains("6 events and 0 links"))
        #expect(response.partialSuccess.errorMessage.contains("a span event or link with 6 attributes"))
        #expect(response.partialSuccess.errorMessage.contains("a string longer than 100 bytes"))
        #expect(try f.stored().count == 1)
    }

    /// The limit check hands back the array itself when nothing breaks a limit, else the good events in order
    /// with each refused one named by its index.
    @Test(arguments: [[], [1], [0], [4], [0, 4], [1, 3], [0, 1, 2, 3, 4]])
    func withinLimitsKeepsTheGoodEventsInOrder(broken: [Int]) throws {
        var limits = IngestLimits()
        limits.maxStringBytes = 100
        let f = try Fixture(limits: limits)
        var spans = Self.spans(5)
        for i in broken { spans[i].name = String(repeating: "n", count: 101) }
        var refused: [Int] = []
        let kept = f.service.withinLimits(spans) { i, why in
            refused.append(i)
            #expect(why.message == "a string longer than 100 bytes")
        }
        #expect(refused == broken)
        #expect(kept == spans.indices.filter { !broken.contains($0) }.map { spans[$0] })
    }

    @Test(.timeLimit(.minutes(10))) func aFullQueueAnswers503WithRetryAfterAndRetryInfo() async throws {
        var options = DurableLog.Options()
        options.maxPendingEvents = 1
        options.fsync = .always
        let f = try Fixture(options: options)
        let body: [UInt8] = try OTLPMapping.traceRequest(from: Self.spans(20)).serializedBytes()
        // With the writer held, the first request's batch waits in the queue and every later one is refused.
        let pause = f.log.pauseWriter()
        let first = Task {
            await f.service.handle(
                method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: nil,
                body: body)
        }
        // No deadline of its own (a whole-suite run can leave this task no thread for a minute and more); the
        // time limit guards a hang.
        while f.log.statistics.pendingEvents == 0 {
            try await Task.sleep(for: .milliseconds(1))
        }
        var answers = await withTaskGroup(of: IngestResponse.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    await f.service.handle(
                        method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: nil,
                        body: body)
                }
            }
            return await group.reduce(into: [IngestResponse]()) { $0.append($1) }
        }
        pause.resume()
        answers.append(await first.value)
        let busy = answers.filter { $0.status == 503 }
        #expect(busy.count == 10)
        #expect(answers.last?.status == 200)
        let refused = try #require(busy.first)
        #expect(refused.headers["Retry-After"] == "1")
        let status = try Google_Rpc_Status(serializedBytes: refused.body)
        #expect(status.code == 14)
        #expect(status.details.first?.isA(Google_Rpc_RetryInfo.self) == true)
        // Nothing accepted is lost and nothing refused is stored.
        #expect(try f.stored().count == answers.filter { $0.status == 200 }.count * 20)
    }

    @Test func emptyRequestIsASuccess() async throws {
        let f = try Fixture()
        let r = await f.service.handle(
            method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: nil, body: [])
        #expect(r.status == 200)
        #expect(r.body.isEmpty)
    }

    @Test func aRetriedExportIsStoredTwiceAndQueriedOnce() async throws {
        let f = try Fixture()
        let body: [UInt8] = try OTLPMapping.traceRequest(from: Self.spans(15)).serializedBytes()
        for _ in 0..<2 {
            let r = await f.service.handle(
                method: "POST", path: "/v1/traces", contentType: "application/x-protobuf", contentEncoding: nil,
                body: body)
            #expect(r.status == 200)
        }
        #expect(try f.stored().count == 30)
        #expect(try AuditStore(directories: [DataDirectory(f.dir)]).search(EventQuery()).count == 15)
    }
}
