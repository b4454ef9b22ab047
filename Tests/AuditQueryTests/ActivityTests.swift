import Foundation
import Logging
import StoreQuery
import Testing

@testable import AuditQuery
@testable import LogFormat

/// A small store written on purpose: two requests by alice across two sealed segments and an unsealed one,
/// with downstream hops that do not carry the user, a retry copy, an orphan and clock skew; one request by bob.
final class CraftedStore: @unchecked Sendable {
    // @unchecked: every property is set in init and only read afterwards.
    let path: String
    let directory: DataDirectory
    let signer: SealSigner?
    let t0: UInt64 = 1_793_613_600_000_000_000  // 2026-11-02T10:00:00Z
    let ms: UInt64 = 1_000_000
    let trace1 = TraceID(high: 0xA1, low: 1)
    let trace2 = TraceID(high: 0xA1, low: 2)
    let trace3 = TraceID(high: 0xB0, low: 3)
    let missingParent = SpanID(value: 0xDEAD)
    let writer: SegmentWriter

    static let logger: Logger = {
        var l = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        l.logLevel = .critical
        return l
    }()

    func span(
        _ trace: TraceID, _ id: UInt64, parent: UInt64?, service: String, source: EventSource, start: UInt64,
        durationMs: UInt64,
        user: String? = nil, http: HTTPFacts? = nil, status: StatusCode = .unset, kind: EventKind = .span
    ) -> AuditEvent {
        AuditEvent(
            kind: kind, startTimeUnixNano: start, endTimeUnixNano: start + durationMs * ms, traceID: trace,
            spanID: SpanID(value: id),
            parentSpanID: parent.map { SpanID(value: $0) }, flags: 1, spanKind: .server, name: "\(service) op",
            service: service,
            source: source,
            user: user.map { UserIdentity(subject: $0, email: "\($0)@example.com", groups: ["staff"], origin: .edge) },
            http: http, statusCode: status, attributes: [Attribute("k", .string("v\(id)"))],
            resourceAttributes: [Attribute("service.name", .string(service))])
    }

    var edge1: AuditEvent {
        span(
            trace1, 1, parent: nil, service: "edge-nginx", source: .edge, start: t0, durationMs: 100, user: "alice",
            http: HTTPFacts(method: "GET", target: "/orders/7", statusCode: 200), kind: .access)
    }
    var sidecar1: AuditEvent {
        span(trace1, 2, parent: 1, service: "orders-sidecar", source: .sidecar, start: t0 + 1 * ms, durationMs: 90)
    }
    var app1: AuditEvent {
        span(trace1, 3, parent: 2, service: "orders", source: .app, start: t0 + 2 * ms, durationMs: 80)
    }
    /// Ends 120 ms after its parent (app1) ends.
    var analytics1: AuditEvent {
        span(trace1, 4, parent: 3, service: "synapse", source: .app, start: t0 + 10 * ms, durationMs: 192)
    }
    /// Starts 1 ms before its parent (app1) starts.
    var early1: AuditEvent {
        span(trace1, 5, parent: 3, service: "cache", source: .app, start: t0 + 1 * ms, durationMs: 2)
    }
    var orphan1: AuditEvent {
        var e = span(trace1, 6, parent: nil, service: "audit-log", source: .app, start: t0 + 50 * ms, durationMs: 1)
        e.parentSpanID = missingParent
        return e
    }
    var edge2: AuditEvent {
        span(
            trace2, 11, parent: nil, service: "edge-nginx", source: .edge, start: t0 + 3_600_000 * ms, durationMs: 30,
            user: "alice",
            http: HTTPFacts(method: "POST", target: "/reports", statusCode: 503), status: .error, kind: .access)
    }
    var app2: AuditEvent {
        span(trace2, 12, parent: 11, service: "reports", source: .app, start: t0 + 3_600_001 * ms, durationMs: 20)
    }
    var edge3: AuditEvent {
        span(
            trace3, 21, parent: nil, service: "edge-nginx", source: .edge, start: t0 + 5 * ms, durationMs: 10,
            user: "bob",
            http: HTTPFacts(method: "GET", target: "/orders/9", statusCode: 200), kind: .access)
    }

    init(signed: Bool = false) throws {
        var template = Array((NSTemporaryDirectory() + "/auditq-crafted-XXXXXX").utf8CString)
        path = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
        directory = DataDirectory(path + "/data")
        var options = WriterOptions()
        signer = signed ? SealSigner.generate() : nil
        options.signer = signer
        writer = try SegmentWriter(directory: directory, options: options, logger: Self.logger)
        _ = try writer.append([edge1, sidecar1, app1, edge3])
        _ = try writer.seal()
        _ = try writer.append([analytics1, early1, orphan1, sidecar1, edge2])  // sidecar1 again: a retried export
        _ = try writer.seal()
        _ = try writer.append([app2])  // stays in the active segment
        try writer.flush()
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    var day: ClosedRange<UInt64> { 1_793_577_600_000_000_000...(1_793_577_600_000_000_000 + 86_400_000_000_000 - 1) }
}

@Suite struct ActivityTests {
    @Test func activityJoinsEachRequestWithItsWholeTraceAcrossSegments() throws {
        let s = try CraftedStore()
        let store = try AuditStore(directories: [s.directory])
        let requests = try store.activity(user: "alice", timeRange: s.day)
        #expect(requests.count == 2)
        let first = try #require(requests.first)
        #expect(first.request.event == s.edge1)
        // Every hop of trace 1 once (the retry copy is dropped by default), though only the edge carries alice.
        #expect(Set(first.trace.map(\.event.spanID.value)) == [1, 2, 3, 4, 5, 6])
        #expect(first.trace.count == 6)
        #expect(first.userEvents.count == 1)
        // The second request's downstream hop is only in the unsealed segment.
        let second = requests[1]
        #expect(second.request.event == s.edge2)
        #expect(second.trace.map(\.event.spanID.value) == [11, 12])
        // Bob's request is not alice's; alice by email finds the same requests.
        #expect(
            try store.activity(user: "alice@example.com", timeRange: s.day).map(\.request.location)
                == requests.map(\.request.location))
        #expect(try store.activity(user: "bob", timeRange: s.day).map(\.request.event.traceID) == [s.trace3])
        // Filters apply to the request: only the failed one.
        let failed = try store.activity(user: "alice", timeRange: s.day, filter: EventFilter(status: .error))
        #expect(failed.map(\.request.event.traceID) == [s.trace2])
        #expect(try store.activity(user: "alice", timeRange: s.day, limit: 1).count == 1)
    }

    @Test func traceAnalysisShowsOrphansRetriesAndSkewWithoutAdjustingTimes() throws {
        let s = try CraftedStore()
        let store = try AuditStore(directories: [s.directory])
        let all = try store.trace(s.trace1, includeDuplicates: true)
        #expect(all.count == 7)
        let analysis = TraceAnalysis(all)
        #expect(analysis.ordered.count == 7)
        #expect(analysis.orphanCount == 1)
        #expect(analysis.duplicateCount == 1)
        #expect(analysis.skewCount == 2)
        let byID = Dictionary(grouping: analysis.ordered, by: { $0.record.event.spanID.value })
        #expect(byID[6]?.first?.orphan == true)
        #expect(byID[5]?.first?.startsBeforeParent == 1 * s.ms)
        #expect(byID[4]?.first?.endsAfterParent == 120 * s.ms)
        let copies = try #require(byID[2])
        #expect(copies.count == 2)
        #expect(copies[1].duplicateOf == copies[0].record.location)
        #expect(copies[1].conflicting == false)
        // Depths follow the parent links: edge 0, sidecar 1, app 2, analytics and cache 3.
        #expect(byID[1]?.first?.depth == 0)
        #expect(byID[3]?.first?.depth == 2)
        #expect(byID[4]?.first?.depth == 3)
        let text = Rendering.traceTree(all)
        #expect(text.contains("orphan: parent \(s.missingParent.hex) not found"))
        #expect(text.contains("retry copy of"))
        #expect(text.contains("clock skew: starts 1.0ms before its parent"))
        #expect(text.contains("clock skew: ends 120.0ms after its parent"))
        // Raw times are printed as stored.
        #expect(text.contains(TimeExpression.format(s.early1.startTimeUnixNano)))
        #expect(
            text.hasSuffix(
                "7 records, 6 services, 202.0ms from first start to last end; 1 orphans, 1 duplicate copies, 2 with clock skew"
            ))
    }

    /// Skew is judged with the precision of the source: an access event's times are known to 1 ms (nginx logs
    /// milliseconds), a span's to the nanosecond.
    @Test func clockSkewAllowsForTheMillisecondPrecisionOfAccessEvents() throws {
        let s = try CraftedStore()
        let us: UInt64 = 1_000
        func record(_ e: AuditEvent, _ ordinal: UInt32) -> StoredRecord {
            StoredRecord(
                event: e,
                location: RecordLocation(nodeID: NodeID(high: 1, low: 1), segmentSequence: 1, ordinal: ordinal))
        }
        func analysis(edge: EventKind = .access, childStart: UInt64, childEnd: UInt64) -> TraceAnalysis.Node? {
            var parent = s.span(
                s.trace1, 1, parent: nil, service: "edge-nginx", source: .edge, start: s.t0 + 10 * s.ms, durationMs: 50,
                kind: edge)
            parent.endTimeUnixNano = s.t0 + 60 * s.ms
            var child = s.span(
                s.trace1, 2, parent: 1, service: "orders-sidecar", source: .sidecar, start: childStart, durationMs: 0)
            child.endTimeUnixNano = childEnd
            return TraceAnalysis([record(parent, 0), record(child, 1)]).ordered.first {
                $0.record.event.spanID.value == 2
            }
        }
        let start = s.t0 + 10 * s.ms
        let end = s.t0 + 60 * s.ms
        // 0.7 ms outside an access event on either side: within its precision, not skew.
        let within = try #require(analysis(childStart: start - 700 * us, childEnd: end + 700 * us))
        #expect(within.startsBeforeParent == nil)
        #expect(within.endsAfterParent == nil)
        #expect(within.notes.isEmpty)
        // 1.5 ms outside: skew, reported as the raw difference.
        let beyond = try #require(analysis(childStart: start - 1_500 * us, childEnd: end + 1_500 * us))
        #expect(beyond.startsBeforeParent == 1_500 * us)
        #expect(beyond.endsAfterParent == 1_500 * us)
        #expect(beyond.notes.contains("clock skew: starts 1.5ms before its parent"))
        #expect(beyond.notes.contains("clock skew: ends 1.5ms after its parent"))
        // Span to span, exact times: 1 µs outside is skew.
        let spans = try #require(analysis(edge: .span, childStart: start - 1 * us, childEnd: end + 1 * us))
        #expect(spans.startsBeforeParent == 1 * us)
        #expect(spans.endsAfterParent == 1 * us)
        // Inside the parent is never skew.
        let inside = try #require(analysis(edge: .span, childStart: start, childEnd: end))
        #expect(inside.startsBeforeParent == nil && inside.endsAfterParent == nil)
        // The summary counts only flagged records.
        let trace = TraceAnalysis([
            record(
                s.span(
                    s.trace1, 1, parent: nil, service: "edge-nginx", source: .edge, start: start, durationMs: 50,
                    kind: .access), 0),
            record(
                s.span(
                    s.trace1, 2, parent: 1, service: "sidecar", source: .sidecar, start: start - 700 * us,
                    durationMs: 50), 1),
        ])
        #expect(trace.skewCount == 0)
    }

    @Test func searchFiltersOnStatusMethodPathAndDuration() throws {
        let s = try CraftedStore()
        let store = try AuditStore(directories: [s.directory])
        func ids(_ f: EventFilter, terms: [EventQuery.Term] = []) throws -> Set<UInt64> {
            Set(try store.search(EventQuery(terms: terms, timeRange: s.day, filter: f)).map(\.event.spanID.value))
        }
        #expect(try ids(EventFilter(status: .error)) == [11])
        #expect(try ids(EventFilter(status: .http(200))) == [1, 21])
        #expect(try ids(EventFilter(status: .httpClass(5))) == [11])
        #expect(try ids(EventFilter(method: "get")) == [1, 21])
        #expect(try ids(EventFilter(pathPrefix: "/orders/")) == [1, 21])
        #expect(try ids(EventFilter(minDurationNanos: 100 * 1_000_000)) == [1, 4])
        #expect(try ids(EventFilter(method: "GET"), terms: [.user("alice")]) == [1])
        // The limit counts events that pass the filter.
        let limited = try store.search(EventQuery(timeRange: s.day, limit: 1, filter: EventFilter(status: .error)))
        #expect(limited.map(\.event.spanID.value) == [11])
    }

    @Test func outputFormatsFollowTheirSchemas() throws {
        let s = try CraftedStore()
        let store = try AuditStore(directories: [s.directory])
        let records = try store.search(EventQuery(terms: [.user("alice")], timeRange: s.day))
        let line = RecordJSON.line(records[0])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let record = try #require(object["record"] as? [String: Any])
        #expect(record["node"] as? String == records[0].location.nodeID.hex)
        #expect(record["ordinal"] as? Int == Int(records[0].location.ordinal))
        #expect(line.hasSuffix(",\"event\":" + EventJSON.render(s.edge1) + "}"))
        let csv = CSVOutput.table(records).split(separator: "\r\n").map(String.init)
        #expect(csv.count == 3)
        #expect(csv[0] == CSVOutput.columns.joined(separator: ","))
        #expect(
            csv[1].hasPrefix(
                "2026-11-02T10:00:00.000000000Z,1793613600000000000,100000000,access,edge,edge-nginx,alice,GET,/orders/7,200,unset,"
            ))
        #expect(CSVOutput.field("a,\"b\"") == "\"a,\"\"b\"\"\"")
        let activity = try store.activity(user: "alice", timeRange: s.day)
        let a = try #require(
            try JSONSerialization.jsonObject(with: Data(RecordJSON.activityLine(activity[0]).utf8)) as? [String: Any])
        #expect(a["trace_id"] as? String == s.trace1.hex)
        #expect((a["trace"] as? [Any])?.count == 6)
        #expect(a["hops"] as? Int == 6)
    }

    @Test func statsCountTiersBytesAndCoverage() throws {
        let s = try CraftedStore()
        let store = try AuditStore(directories: [s.directory])
        let stats = try StoreStats.collect(store)
        #expect(stats.tiers[0].segments == 2)
        #expect(stats.tiers[0].events == 9)
        #expect(stats.tiers[1].segments == 0)
        #expect(stats.tiers[2].events == 1)
        #expect(stats.total.events == 10)
        #expect(stats.total.minTime == s.t0)
        #expect(stats.total.maxTime == s.app2.startTimeUnixNano)
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: s.directory.segmentsPath).reduce(UInt64(0)) {
            $0
                + ((try FileManager.default.attributesOfItem(atPath: s.directory.segmentsPath + "/" + $1)[.size]
                    as? UInt64) ?? 0)
        }
        #expect(stats.total.bytesOnDisk == onDisk)
        #expect((stats.total.compressionRatio ?? 0) > 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(stats.json().utf8)) as? [String: Any])
        #expect((json["total"] as? [String: Any])?["events"] as? Int == 10)
    }
}
