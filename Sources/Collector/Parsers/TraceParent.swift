// W3C Trace Context `traceparent`: version-traceid-parentid-flags, lowercase hex only.
import LogFormat

public struct TraceParent: Sendable, Hashable {
    public var version: UInt8
    public var traceID: TraceID
    public var parentID: SpanID
    public var flags: UInt8

    public var sampled: Bool { flags & 0x01 != 0 }

    /// Parses a header value; nil when it is not a valid `traceparent` (uppercase hex, version ff, all-zero
    /// ids, wrong lengths, or for version 00 anything after the flags). For a higher version only the first
    /// four fields are read, and what follows the flags must start with `-`.
    public init?(_ header: some StringProtocol) {
        // In place over the header's bytes: it runs for every access line, so it allocates nothing.
        var text = String(header)
        guard let parsed = text.withUTF8({ TraceParent(utf8: $0) }) else { return nil }
        self = parsed
    }

    init?(utf8 b: UnsafeBufferPointer<UInt8>) {
        guard b.count >= 55, b[2] == UInt8(ascii: "-"), b[35] == UInt8(ascii: "-"), b[52] == UInt8(ascii: "-") else {
            return nil
        }
        // Lowercase only, checked and read in one pass per field (each is at most 16 digits).
        func lowerHex(_ r: Range<Int>) -> UInt64? {
            HexCoding.word(UnsafeBufferPointer(rebasing: b[r]), lowercaseOnly: true)
        }
        guard let v = lowerHex(0..<2), let high = lowerHex(3..<19), let low = lowerHex(19..<35),
            let p = lowerHex(36..<52), let f = lowerHex(53..<55)
        else {
            return nil
        }
        version = UInt8(v)
        guard version != 0xff else { return nil }
        if version == 0 {
            guard b.count == 55 else { return nil }
        } else if b.count > 55 {
            guard b[55] == UInt8(ascii: "-") else { return nil }
        }
        let trace = TraceID(high: high, low: low)
        let parent = SpanID(value: p)
        guard !trace.isZero, !parent.isZero else { return nil }
        traceID = trace
        parentID = parent
        flags = UInt8(f)
    }

    public init(traceID: TraceID, parentID: SpanID, flags: UInt8 = 1) {
        version = 0
        self.traceID = traceID
        self.parentID = parentID
        self.flags = flags
    }

    /// The header value, version 00.
    public var header: String { "00-\(traceID.hex)-\(parentID.hex)-\(HexCoding.encode([flags]))" }
}
