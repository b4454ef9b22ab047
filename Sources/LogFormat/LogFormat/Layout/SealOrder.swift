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

/// The records a seal orders, read by arrival index: what `SealOrder.permutation` needs of each, with the names of
/// users and services as whatever the source keeps them as (strings, or numbers into a table of them).
package protocol SealOrderRecords {
    associatedtype Name: Hashable
    var count: Int { get }
    func traceID(_ i: Int) -> TraceID
    func start(_ i: Int) -> UInt64
    func isEdgeAccess(_ i: Int) -> Bool
    /// The user's subject, when record `i` carries a user.
    func user(_ i: Int) -> Name?
    func service(_ i: Int) -> Name
    /// Whether name `a` sorts before `b`: by the UTF-8 bytes of the strings they stand for.
    func precedes(_ a: Name, _ b: Name) -> Bool
}

extension Array: SealOrderRecords where Element == SealOrderFields {
    package func traceID(_ i: Int) -> TraceID { self[i].traceID }
    package func start(_ i: Int) -> UInt64 { self[i].startTimeUnixNano }
    package func isEdgeAccess(_ i: Int) -> Bool { self[i].isEdgeAccess }
    package func user(_ i: Int) -> String? { self[i].user }
    package func service(_ i: Int) -> String { self[i].service }
}

extension SealOrderRecords where Name == String {
    package func precedes(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}

package enum SealOrder {
    /// The sealed order of `records` (given in arrival order): `result[k]` is the arrival index of the record
    /// that gets ordinal `k`. Deterministic: the same records in the same arrival order give the same result.
    ///
    /// A trace is named by the user of its edge access event, else by the user of its earliest record that has
    /// one, else (no user at all) by the service of its earliest record. Traces sort by (has a user first, that
    /// name, the trace's earliest start, the trace id); records within a trace by (start, arrival). A record
    /// without a trace id is a trace of its own.
    package static func permutation<R: SealOrderRecords>(_ records: R) -> [Int] {
        guard records.count > 0 else { return [] }
        // Group by trace id; records without one are groups of one.
        var groups: [[Int]] = []
        var groupByTrace: [TraceID: Int] = [:]
        groupByTrace.reserveCapacity(records.count / 4)
        for i in 0..<records.count {
            let trace = records.traceID(i)
            if trace.isZero {
                groups.append([i])
            } else if let g = groupByTrace[trace] {
                groups[g].append(i)
            } else {
                groupByTrace[trace] = groups.count
                groups.append([i])
            }
        }
        groupByTrace = [:]
        // Within a group: by start, then arrival (the arrays are already in arrival order).
        for g in groups.indices where groups[g].count > 1 {
            groups[g].sort { (records.start($0), $0) < (records.start($1), $1) }
        }
        // Each group's name, compared as a rank so the sort below compares integers, not strings.
        var names: [NameKey<R.Name>] = []
        names.reserveCapacity(groups.count)
        for members in groups {
            let edge = members.first { records.isEdgeAccess($0) && records.user($0) != nil }
            let named = edge ?? members.first { records.user($0) != nil }
            if let named, let user = records.user(named) {
                names.append(NameKey(hasUser: true, name: user))
            } else {
                names.append(NameKey(hasUser: false, name: records.service(members[0])))
            }
        }
        let rank = ranks(of: names, records)
        names = []
        var order = Array(groups.indices)
        order.sort { a, b in
            let ka = (rank[a], records.start(groups[a][0]))
            let kb = (rank[b], records.start(groups[b][0]))
            if ka != kb { return ka < kb }
            let ta = records.traceID(groups[a][0])
            let tb = records.traceID(groups[b][0])
            if ta != tb { return ta < tb }
            return groups[a][0] < groups[b][0]
        }
        var out: [Int] = []
        out.reserveCapacity(records.count)
        for g in order { out += groups[g] }
        return out
    }

    /// Dense ranks of the group names: users before services, each by UTF-8 bytes.
    static func ranks<R: SealOrderRecords>(of names: [NameKey<R.Name>], _ records: R) -> [Int] {
        var distinct = Array(Set(names))
        distinct.sort { a, b in
            if a.hasUser != b.hasUser { return a.hasUser }
            return records.precedes(a.name, b.name)
        }
        var rankOf: [NameKey<R.Name>: Int] = [:]
        rankOf.reserveCapacity(distinct.count)
        for (i, k) in distinct.enumerated() { rankOf[k] = i }
        return names.map { rankOf[$0]! }
    }

    struct NameKey<Name: Hashable>: Hashable {
        var hasUser: Bool
        var name: Name
    }
}
