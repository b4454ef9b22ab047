// Public initialisers for the store's record values, for code outside LogFormat that rebuilds them from an
// evidence bundle (where records are named by node, segment and ordinal).

extension RecordLocation {
    public init(node: NodeID, segment: UInt64, ordinal: UInt32) {
        self.init(nodeID: node, segmentSequence: segment, ordinal: ordinal)
    }
}

extension StoredRecord {
    public init(_ event: AuditEvent, at location: RecordLocation) {
        self.init(event: event, location: location)
    }
}
