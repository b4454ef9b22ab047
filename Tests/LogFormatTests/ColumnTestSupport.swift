// What the column-block suites (decoding, counting, canonical bytes) share: events in sealed order, and columns
// that pass their checksums but lie.
import TestSupport

@testable import LogFormat

/// Events of a few traces in sealed order: each trace's records together, parents inside the trace.
func tracesOf(_ events: [AuditEvent]) -> [AuditEvent] {
    SealOrder.permutation(events.map { SealOrderFields($0) }).map { events[$0] }
}

/// `columns` with one column, chosen by `seed`, changed the way a hostile writer would: one to three bytes
/// overwritten and, one time in four, its tail cut. The caller re-encodes them with good checksums.
func lyingColumns(_ columns: [ColumnID: [UInt8]], seed: UInt64) -> (columns: [ColumnID: [UInt8]], damaged: ColumnID) {
    var rng = SplitMix(seed)
    var c = columns
    let id = ColumnID.allCases[Int(rng.next() % UInt64(ColumnID.allCases.count))]
    var bytes = c[id] ?? []
    if !bytes.isEmpty {
        for _ in 0..<(1 + rng.next() % 3) {
            bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
        }
    }
    if rng.next() % 4 == 0, !bytes.isEmpty { bytes.removeLast(Int(rng.next() % UInt64(bytes.count))) }
    c[id] = bytes
    return (c, id)
}
