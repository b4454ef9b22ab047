// The columns of a record named by a handle, each decoded alone: what an auditor's table shows (times, kind, source,
// service, user, what was asked, outcome, trace) without building the event. Fields a row's shape holds (kind,
// source, service, name, method, statuses) are read from the block's shape table; the user and the HTTP target from
// the row's own part of the identities and HTTP columns, with the decoder's checks. A handle of a decoded record
// (row blocks, open segments) answers from its event.

extension RecordHandles {
    /// The record's end time (Unix nanoseconds).
    public func end(_ h: RecordHandle) -> UInt64 {
        h.block < 0 ? records[Int(h.item)].event.endTimeUnixNano : blocks[Int(h.block)].rows[Int(h.item)].end
    }

    /// End minus start, as `AuditEvent.durationNanos`.
    public func durationNanos(_ h: RecordHandle) -> Int64 { Int64(bitPattern: end(h) &- h.start) }

    public func kind(_ h: RecordHandle) -> EventKind {
        h.block < 0 ? records[Int(h.item)].event.kind : layout(h).kind
    }

    public func source(_ h: RecordHandle) -> EventSource {
        h.block < 0 ? records[Int(h.item)].event.source : layout(h).source
    }

    /// `service.name`.
    public func service(_ h: RecordHandle) throws(LogFormatError) -> String {
        h.block < 0 ? records[Int(h.item)].event.service : try string(layout(h).service, h)
    }

    /// The span or event name.
    public func name(_ h: RecordHandle) throws(LogFormatError) -> String {
        h.block < 0 ? records[Int(h.item)].event.name : try string(layout(h).name, h)
    }

    /// The OTLP status code.
    public func statusCode(_ h: RecordHandle) -> StatusCode {
        h.block < 0 ? records[Int(h.item)].event.statusCode : layout(h).status
    }

    /// The HTTP status, 0 when the record has none.
    public func httpStatus(_ h: RecordHandle) -> UInt16 {
        guard h.block >= 0 else { return records[Int(h.item)].event.http?.statusCode ?? 0 }
        let l = layout(h)
        return l.hasHTTP ? l.httpStatus : 0
    }

    /// The HTTP method, nil when the record has none.
    public func httpMethod(_ h: RecordHandle) throws(LogFormatError) -> String? {
        guard h.block >= 0 else { return records[Int(h.item)].event.http?.method }
        let l = layout(h)
        return l.hasHTTP && l.method >= 0 ? try string(l.method, h) : nil
    }

    /// The HTTP target (path and query), nil when the record has none: the first string of the row's HTTP part.
    public func httpTarget(_ h: RecordHandle) throws(LogFormatError) -> String? {
        guard h.block >= 0 else { return records[Int(h.item)].event.http?.target }
        let rows = blocks[Int(h.block)]
        let l = layout(h)
        guard l.hasHTTP, l.hasTarget else { return nil }
        var r = rows.readers(Int(h.item)).http
        return try rows.string(slot(try r.string(), rows))
    }

    /// The user's subject, nil when the record carries no user: the first string of the row's identities part.
    public func userSubject(_ h: RecordHandle) throws(LogFormatError) -> String? {
        guard h.block >= 0 else { return records[Int(h.item)].event.user?.subject }
        let rows = blocks[Int(h.block)]
        guard layout(h).hasUser else { return nil }
        var r = rows.readers(Int(h.item)).user
        return try rows.string(slot(try r.string(), rows))
    }

    private func layout(_ h: RecordHandle) -> ColumnBlock.RowLayout {
        let rows = blocks[Int(h.block)]
        return rows.layouts[Int(rows.rows[Int(h.item)].shape)]
    }

    /// String `id` of `h`'s block (one its shape names, which the rows keep).
    private func string(_ id: Int, _ h: RecordHandle) throws(LogFormatError) -> String {
        let rows = blocks[Int(h.block)]
        guard id >= 0 else { throw LogFormatError(.malformed, "column block: a shape without its string") }
        return rows.string(try slot(id, rows))
    }

    /// The slot of string `id` among the strings the rows name; a miss is a reader out of step with the walk that
    /// kept them: an error, not a trap.
    private func slot(_ id: Int, _ rows: ColumnRows) throws(LogFormatError) -> Int {
        let k = rows.slot(id)
        guard k >= 0 else { throw LogFormatError(.malformed, "column block: string \(id) is not one the rows name") }
        return k
    }
}
