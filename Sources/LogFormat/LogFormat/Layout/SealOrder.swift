// The order in which sealing lays out a segment's records (docs/design/logformat-v2.md, "Sealing: the order"):
// a trace's records together, traces ordered by the user of their edge access event and then by time, traces
// without a user by service and then time. One user's requests, with every downstream hop that does not carry
// the user, then form one contiguous run of ordinals.

/// What the seal order reads of one record: the fields that place it, nothing else.
package struct SealOrderFields: Sendable, Hashable {
    package var traceID: TraceID
    package var startTimeUnixNano: UInt64
    /// The user's subject, when the record carries a user.
    package var user: String?
    package var service: String
    /// The edge's access event of a request: its user names the trace.
    package var isEdgeAccess: Bool

    package init(traceID: TraceID, startTimeUnixNano: UInt64, user: String?, service: String, isEdgeAccess: Bool) {
        self.traceID = traceID
        self.startTimeUnixNano = startTimeUnixNano
        self.user = user
        self.service = service
        self.isEdgeAccess = isEdgeAccess
    }

    package init(_ event: borrowing AuditEvent) {
        traceID = event.traceID
        startTimeUnixNano = event.startTimeUnixNano
        user = event.user?.subject
        service = event.service
        isEdgeAccess = event.kind == .access || event.source == .edge
    }

    /// The fields of a canonical record, read without decoding its attributes, events and links.
    package static func peek(_ record: UnsafeRawBufferPointer) throws(LogFormatError) -> SealOrderFields {
        let (terms, start) = try Verifier.indexedFields(record)
        return SealOrderFields(
            traceID: terms.traceID, startTimeUnixNano: start, user: terms.user?.subject, service: terms.service,
            isEdgeAccess: isEdgeAccess(record))
    }

    /// Whether a canonical record is the edge's access event: bytes 1 and 3 of a record are its kind and source
    /// (docs/format/segment.md, "Records").
    static func isEdgeAccess(_ record: UnsafeRawBufferPointer) -> Bool {
        EventKind(rawValue: record[1]) == .access || EventSource(rawValue: record[3]) == .edge
    }

    /// The trace id of a canonical record (nil for a record too short to hold one).
    static func peekTraceID(_ record: UnsafeRawBufferPointer) -> TraceID? { RecordCodec.peekTraceID(record) }
}

package enum SealOrder {
    /// The sealed order of `records` (given in arrival order): `result[k]` is the arrival index of the record
    /// that gets ordinal `k`. Deterministic: the same records in the same arrival order give the same result.
    ///
    /// A trace is named by the user of its edge access event, else by the user of its earliest record that has
    /// one, else (no user at all) by the service of its earliest record. Traces sort by (has a user first, that
    /// name, the trace's earliest start, the trace id); records within a trace by (start, arrival). A record
    /// without a trace id is a trace of its own.
    package static func permutation(_ records: [SealOrderFields]) -> [Int] {
        guard !records.isEmpty else { return [] }
        // Group by trace id; records without one are groups of one.
        var groupOf = [Int](repeating: 0, count: records.count)
        var groups: [[Int]] = []
        var groupByTrace: [TraceID: Int] = [:]
        groupByTrace.reserveCapacity(records.count / 4)
        for (i, r) in records.enumerated() {
            if r.traceID.isZero {
                groupOf[i] = groups.count
                groups.append([i])
            } else if let g = groupByTrace[r.traceID] {
                groupOf[i] = g
                groups[g].append(i)
            } else {
                groupByTrace[r.traceID] = groups.count
                groupOf[i] = groups.count
                groups.append([i])
            }
        }
        // Within a group: by start, then arrival (the arrays are already in arrival order).
        for g in groups.indices where groups[g].count > 1 {
            groups[g].sort { (records[$0].startTimeUnixNano, $0) < (records[$1].startTimeUnixNano, $1) }
        }
        // Each group's name, compared as a rank so the sort below compares integers, not strings.
        var names: [(hasUser: Bool, name: String)] = []
        names.reserveCapacity(groups.count)
        for members in groups {
            let edge = members.first { records[$0].isEdgeAccess && records[$0].user != nil }
            let named = edge ?? members.first { records[$0].user != nil }
            if let named, let user = records[named].user {
                names.append((true, user))
            } else {
                names.append((false, records[members[0]].service))
            }
        }
        let rank = ranks(of: names)
        var order = Array(groups.indices)
        order.sort { a, b in
            let ka = (rank[a], records[groups[a][0]].startTimeUnixNano)
            let kb = (rank[b], records[groups[b][0]].startTimeUnixNano)
            if ka != kb { return ka < kb }
            let ta = records[groups[a][0]].traceID
            let tb = records[groups[b][0]].traceID
            if ta != tb { return ta < tb }
            return groups[a][0] < groups[b][0]
        }
        var out: [Int] = []
        out.reserveCapacity(records.count)
        for g in order { out += groups[g] }
        return out
    }

    /// Dense ranks of the group names: users before services, each by UTF-8 bytes.
    static func ranks(of names: [(hasUser: Bool, name: String)]) -> [Int] {
        var distinct = Array(Set(names.map { NameKey(hasUser: $0.hasUser, name: $0.name) }))
        distinct.sort()
        var rankOf: [NameKey: Int] = [:]
        rankOf.reserveCapacity(distinct.count)
        for (i, k) in distinct.enumerated() { rankOf[k] = i }
        return names.map { rankOf[NameKey(hasUser: $0.hasUser, name: $0.name)]! }
    }

    struct NameKey: Hashable, Comparable {
        var hasUser: Bool
        var name: String

        static func < (a: NameKey, b: NameKey) -> Bool {
            if a.hasUser != b.hasUser { return a.hasUser }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
    }
}
