// auditq's output formats: a table for people, NDJSON and CSV for programs (schemas below, stable: fields
// are only ever added at the end), and OTLP JSON for re-ingestion (OTLPExport.swift).
//
// NDJSON, `search`: one line per event
//   {"record":{"node":"<32 hex>","segment":<sequence>,"ordinal":<n>},"event":<EventJSON object>}
// NDJSON, `activity`: one line per request
//   {"request":<record line as above>,"trace_id":"<32 hex>","hops":<n>,"user_events":<n>,
//    "trace":[<record line>, …]}                      (every record of the trace, by start time)
// NDJSON, `trace`: one line per record, as for `search`, plus "depth", "orphan",
//   "duplicate_of", "starts_before_parent_ns", "ends_after_parent_ns".
// CSV: RFC 4180, a header row, the columns of `CSVOutput.columns`.
import JSONText
import LogFormat
import StoreQuery

public enum OutputFormat: String, Sendable, CaseIterable {
    case table, json, csv, otlp
}

public enum RecordJSON {
    public static func location(_ l: RecordLocation) -> String {
        "{\"node\":\"\(l.nodeID.hex)\",\"segment\":\(l.segmentSequence),\"ordinal\":\(l.ordinal)}"
    }

    /// `{"record":…,"event":…}` with `extra` members (already encoded values) at the end.
    public static func line(_ r: StoredRecord, extra: [(String, String)] = []) -> String {
        var s = "{\"record\":" + location(r.location) + ",\"event\":" + EventJSON.render(r.event)
        for (k, v) in extra { s += "," + JSONString.quote(k) + ":" + v }
        return s + "}"
    }

    public static func activityLine(_ request: UserRequest) -> String {
        var buffer: [UInt8] = []
        var memo = EventJSONMemo()
        activityLine(request, into: &buffer, memo: &memo)
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Appends `{"record":…,"event":…}` to `buffer` without building strings (large outputs).
    public static func line(_ r: StoredRecord, into buffer: inout [UInt8], memo: inout EventJSONMemo) {
        var w = JSONWriter(buffer: buffer)
        buffer = []  // hand the storage to the writer so appends do not copy it
        recordHead(r.location, into: &w, memo: &memo)
        w.event(r.event, memo: &memo)
        w.byte(UInt8(ascii: "}"))
        buffer = w.buffer
    }

    /// `{"record":<location>,"event":`, the start of a record line.
    static func recordHead<S: JSONSink>(_ l: RecordLocation, into w: inout S, memo: inout EventJSONMemo) {
        w.raw(#"{"record":"#)
        if memo.segment?.node != l.nodeID || memo.segment?.sequence != l.segmentSequence {
            let prefix = Array("{\"node\":\"\(l.nodeID.hex)\",\"segment\":\(l.segmentSequence),\"ordinal\":".utf8)
            memo.segment = (l.nodeID, l.segmentSequence, prefix)
        }
        memo.segment!.prefix.withUnsafeBufferPointer { w.append($0.baseAddress!, count: $0.count) }
        w.decimal(UInt64(l.ordinal))
        w.raw(#"},"event":"#)
    }

    /// Appends one `activity` line (no newline) to `buffer`.
    public static func activityLine(_ request: UserRequest, into buffer: inout [UInt8], memo: inout EventJSONMemo) {
        buffer.append(contentsOf: #"{"request":"#.utf8)
        line(request.request, into: &buffer, memo: &memo)
        let id = request.request.event.traceID
        buffer.append(
            contentsOf:
                ",\"trace_id\":\"\(id.hex)\",\"hops\":\(request.trace.count),\"user_events\":\(request.userEvents.count),\"trace\":["
                .utf8)
        for i in request.trace.indices {  // by index: each record is lent, not copied
            if i > 0 { buffer.append(UInt8(ascii: ",")) }
            line(request.trace[i], into: &buffer, memo: &memo)
        }
        buffer.append(contentsOf: "]}".utf8)
    }
}

public enum CSVOutput {
    public static let columns = [
        "start_time", "start_time_unix_nano", "duration_ns", "kind", "source", "service", "user", "method", "target",
        "http_status", "status", "name", "trace_id", "span_id", "parent_span_id", "workload", "record",
    ]

    public static func field(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingAll("\"", with: "\"\"") + "\""
    }

    public static func row(_ r: StoredRecord, extra: [String] = []) -> String {
        let e = r.event
        let l = r.location
        let cells =
            [
                TimeExpression.format(e.startTimeUnixNano), String(e.startTimeUnixNano), String(e.durationNanos),
                "\(e.kind)",
                "\(e.source)", e.service, e.user?.subject ?? "", e.http?.method ?? "",
                e.http?.target ?? e.http?.route ?? "",
                e.http.map { $0.statusCode == 0 ? "" : String($0.statusCode) } ?? "", "\(e.statusCode)", e.name,
                e.traceID.isZero ? "" : e.traceID.hex, e.spanID.isZero ? "" : e.spanID.hex, e.parentSpanID?.hex ?? "",
                e.workload ?? "", "\(l.nodeID.hex)/\(l.segmentSequence)/\(l.ordinal)",
            ] + extra
        return cells.map(field).joined(separator: ",")
    }

    public static func table(_ records: [StoredRecord]) -> String {
        ([columns.joined(separator: ",")] + records.map { row($0) }).joined(separator: "\r\n") + "\r\n"
    }
}

extension String {
    func replacingAll(_ a: Character, with b: String) -> String {
        var out = ""
        for c in self { if c == a { out += b } else { out.append(c) } }
        return out
    }
}

/// ANSI colour for the table, used only when stdout is a terminal and NO_COLOR is unset.
public struct Palette: Sendable {
    public var enabled: Bool
    public init(enabled: Bool) { self.enabled = enabled }
    public static let off = Palette(enabled: false)

    func wrap(_ s: String, _ code: String) -> String { enabled ? "\u{1B}[\(code)m" + s + "\u{1B}[0m" : s }
    public func error(_ s: String) -> String { wrap(s, "31") }
    public func warn(_ s: String) -> String { wrap(s, "33") }
    public func dim(_ s: String) -> String { wrap(s, "2") }
    public func bold(_ s: String) -> String { wrap(s, "1") }
}
