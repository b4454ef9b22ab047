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
        let n = records.count
        guard n > 0 else { return [] }
        // Each record's group: its trace, numbered by first arrival; a record without a trace id is a group of
        // its own. Flat arrays, not an array per group: a segment of access lines is a group per record.
        var groupOf = [Int](repeating: 0, count: n)
        var groupCount = 0
        var groupByTrace: [TraceID: Int] = [:]
        groupByTrace.reserveCapacity(n / 4)
        for i in 0..<n {
            let trace = records.traceID(i)
            if trace.isZero {
                groupOf[i] = groupCount
                groupCount += 1
            } else if let g = groupByTrace[trace] {
                groupOf[i] = g
            } else {
                groupByTrace[trace] = groupCount
                groupOf[i] = groupCount
                groupCount += 1
            }
        }
        groupByTrace = [:]
        // The members of group g are members[starts[g]..<starts[g + 1]], in arrival order (a counting sort).
        var starts = [Int](repeating: 0, count: groupCount + 1)
        for g in groupOf { starts[g + 1] += 1 }
        for g in 0..<groupCount { starts[g + 1] += starts[g] }
        var members = [Int](repeating: 0, count: n)
        var next = starts
        for i in 0..<n {
            members[next[groupOf[i]]] = i
            next[groupOf[i]] += 1
        }
        next = []
        groupOf = []
        // Within a group: by start, then arrival.
        for g in 0..<groupCount where starts[g + 1] - starts[g] > 1 {
            members[starts[g]..<starts[g + 1]].sort { (records.start($0), $0) < (records.start($1), $1) }
        }
        // Each group's name, as a rank so the sort below compares integers, not strings.
        let rank = ranks(groupCount) { g in
            let group = members[starts[g]..<starts[g + 1]]
            let edge = group.first { records.isEdgeAccess($0) && records.user($0) != nil }
            let named = edge ?? group.first { records.user($0) != nil }
            if let named, let user = records.user(named) { return NameKey(hasUser: true, name: user) }
            return NameKey(hasUser: false, name: records.service(group.first!))
        } precedes: {
            records.precedes($0, $1)
        }
        // Traces by (name, earliest start, trace id, arrival of that earliest record), read from one array.
        var keys: [GroupKey] = []
        keys.reserveCapacity(groupCount)
        for g in 0..<groupCount {
            let first = members[starts[g]]
            keys.append(
                GroupKey(
                    rank: rank[g], start: records.start(first), traceID: records.traceID(first), first: first,
                    group: g))
        }
        keys.sort()
        var out: [Int] = []
        out.reserveCapacity(n)
        for k in keys { out += members[starts[k.group]..<starts[k.group + 1]] }
        return out
    }

    /// What orders one group among the others; `first` (an arrival index) is unique, so no two keys are equal.
    struct GroupKey: Comparable {
        var rank: Int
        var start: UInt64
        var traceID: TraceID
        var first: Int
        var group: Int

        static func < (a: GroupKey, b: GroupKey) -> Bool {
            if a.rank != b.rank { return a.rank < b.rank }
            if a.start != b.start { return a.start < b.start }
            if a.traceID != b.traceID { return a.traceID < b.traceID }
            return a.first < b.first
        }
    }

    /// Dense ranks of the names of `count` groups: users before services, each by UTF-8 bytes. Each name is
    /// hashed once: a group keeps the index of its distinct name, and the distinct names are sorted.
    static func ranks<Name: Hashable>(
        _ count: Int, name: (Int) -> NameKey<Name>, precedes: (Name, Name) -> Bool
    ) -> [Int] {
        var distinctIndex: [NameKey<Name>: Int] = [:]
        var distinct: [NameKey<Name>] = []
        var nameOf = [Int](repeating: 0, count: count)
        for g in 0..<count {
            let key = name(g)
            if let d = distinctIndex[key] {
                nameOf[g] = d
            } else {
                distinctIndex[key] = distinct.count
                nameOf[g] = distinct.count
                distinct.append(key)
            }
        }
        distinctIndex = [:]
        var byName = Array(distinct.indices)
        byName.sort { a, b in
            if distinct[a].hasUser != distinct[b].hasUser { return distinct[a].hasUser }
            return precedes(distinct[a].name, distinct[b].name)
        }
        var rankOfDistinct = [Int](repeating: 0, count: distinct.count)
        for (r, d) in byName.enumerated() { rankOfDistinct[d] = r }
        return nameOf.map { rankOfDistinct[$0] }
    }

    struct NameKey<Name: Hashable>: Hashable {
        var hasUser: Bool
        var name: Name
    }
}
