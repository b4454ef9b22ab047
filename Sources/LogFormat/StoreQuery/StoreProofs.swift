// Inclusion proofs for the records a query found, one pass over each segment they lie in.
import LogFormat

extension AuditStore {
    /// Inclusion proofs for records found by a query, grouped so each segment is hashed once. Records of
    /// unsealed segments have no proof yet (their segment is not sealed) and are skipped.
    public func proofs(for locations: [RecordLocation]) throws(LogFormatError) -> [RecordProof] {
        let wanted = Dictionary(
            grouping: locations, by: { SegmentKey(nodeID: $0.nodeID, sequence: $0.segmentSequence) })
        var out: [RecordProof] = []
        for handle in handles {
            let key = SegmentKey(nodeID: handle.entry.nodeID, sequence: handle.entry.sequence)
            guard let here = wanted[key] else { continue }
            out += try handle.reader().proofs(for: here.map(\.ordinal).sorted())
        }
        return out
    }

    struct SegmentKey: Hashable {
        var nodeID: NodeID
        var sequence: UInt64
    }
}
