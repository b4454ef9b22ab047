// What the writer keeps of each record of the open segment as it appends it, for that segment's seal: its Merkle
// leaf (hashed at ingest, `PreparedBatch.leafHashes`), its size, and the fields that place it in the sealed order
// (`SealOrderFields`). A seal given these neither hashes the records again nor reads the log once more for their
// order. Recovery after a crash has no such memory and reads both from the log (`SealInput.read`); either way the
// sealed file is the same, as both come from the same canonical bytes.

/// What the writer kept of the records of one write-ahead log, in the log's record order (arrival index).
struct SealHints: Sendable {
    struct Record: Sendable {
        var leaf: Digest32
        var traceID: TraceID
        var start: UInt64
        var size: UInt32
        /// The user's subject: its number in `names` plus one; 0 without a user.
        var user: UInt32
        /// The service: its number in `names`.
        var service: UInt32
        var isEdgeAccess: Bool
    }

    /// By arrival index, for the records in written blocks.
    var records: [Record] = []
    /// The users and services named, each once (by bytes).
    var names: [String] = []
    private var nameNumbers = ByteKeyTable(capacity: 1024)

    var count: Int { records.count }

    /// The hint of `record`, whose leaf and index terms ingest computed (`PreparedBatch`), naming its strings here.
    mutating func hint(
        _ record: UnsafeRawBufferPointer, leaf: Digest32, terms: borrowing RecordTerms, start: UInt64
    ) -> Record {
        Record(
            leaf: leaf, traceID: terms.traceID, start: start, size: UInt32(record.count),
            user: terms.user.map { number($0.subject) + 1 } ?? 0, service: number(terms.service),
            isEdgeAccess: SealOrderFields.isEdgeAccess(record))
    }

    private mutating func number(_ s: String) -> UInt32 {
        if let n = nameNumbers.value(s) { return UInt32(n) }
        let n = UInt32(names.count)
        nameNumbers.insert(s, UInt64(n))
        names.append(s)
        return n
    }

    /// Forgets the records from `count` on (a batch rolled back).
    mutating func truncate(to count: Int) {
        if records.count > count { records.removeLast(records.count - count) }
    }

    /// What the seal order reads of each record, as `SealOrderFields.peek` reads it from the record.
    var orderFields: [SealOrderFields] {
        records.map { r in
            SealOrderFields(
                traceID: r.traceID, startTimeUnixNano: r.start, user: r.user == 0 ? nil : names[Int(r.user) - 1],
                service: names[Int(r.service)], isEdgeAccess: r.isEdgeAccess)
        }
    }
}
