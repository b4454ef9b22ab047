// The segment dictionary (docs/format/dictionary.md): strings used by more than one column block of a segment,
// stored once in a block of their own (type 4) just before the index instead of once in every block's dictionary.
// It is append-only while a segment is laid out: a block names how many of its strings existed when it was
// encoded (column `segmentStrings`), and its string ids index that prefix followed by its own dictionary.
//
// dictionary-payload (before compression) = uvarint count  tokenized{count}

/// Builds a segment's dictionary while its blocks are encoded, one block after the other.
struct SegmentDictionaryBuilder {
    /// Promoted strings and their ids (ids are positions in `strings`).
    private(set) var ids = ByteKeyTable(capacity: 4096)
    private(set) var strings: [String] = []
    /// The tokenized strings, back to back: the payload after its count.
    private(set) var bytes = BinaryWriter(capacity: 1 << 16)
    /// How many blocks' own dictionaries held each string so far (by bytes, hashed a word at a time: a `Set` of
    /// `String`s spent most of this step in SipHash).
    private var blocksHolding = ByteKeyTable(capacity: 4096)
    /// Stop promoting past this many bytes of tokenized strings, so the block stays well inside what readers accept.
    static let maxBytes = 16 << 20

    var count: Int { strings.count }

    /// After block `own` (its own dictionary's strings, in id order) was written: promotes every string that an
    /// earlier block's own dictionary held too, so the blocks after this one name it from the segment dictionary.
    /// Order is the blocks' order of first use, so the same log always gives the same bytes.
    mutating func blockWritten(own: [String]) {
        for s in own {
            // The second block to hold a string promotes it (a string not promoted, past `maxBytes`, is tried
            // again at its fourth, sixth, … block).
            guard blocksHolding.addOne(to: s) % 2 == 0 else { continue }
            guard bytes.count < Self.maxBytes else { continue }
            // Only a string that comes back byte for byte through its tokenized form is shared (the encoder
            // makes sure of it; checked here because the block's own exactness check does not see these bytes).
            let start = bytes.count
            TokenizedString.encode(s, into: &bytes)
            let back: String? = bytes.bytes.withUnsafeBytes { b in
                var r = BinaryReader(UnsafeRawBufferPointer(rebasing: b[start...]))
                guard let d = try? TokenizedString.decode(&r), r.remaining == 0 else { return nil }
                return d
            }
            guard let back, Array(back.utf8) == Array(s.utf8) else {
                bytes.bytes.removeLast(bytes.count - start)
                continue
            }
            ids.insert(s, UInt64(strings.count))
            strings.append(s)
        }
    }

    /// The dictionary block's payload before compression.
    func payload() -> [UInt8] {
        var w = BinaryWriter(capacity: bytes.count + 10)
        w.uvarint(strings.count)
        w.raw(bytes.bytes)
        return w.bytes
    }
}

/// A segment's dictionary as read back: the strings column blocks name by id below their own. Read once per
/// segment and checked whole then; a string is built only when a block's rows name it (`BlockStrings` keeps what
/// it built for its block), since a query that reads a few blocks names a few of the thousands held here.
package struct SegmentDictionary: Sendable {
    /// The payload's tokenized strings and where each starts; empty when made from strings decoded already.
    private let payload: [UInt8]
    private let starts: [Int32]
    private let decoded: [String]

    package var count: Int { decoded.isEmpty ? starts.count : decoded.count }

    package init(strings: [String]) {
        payload = []
        starts = []
        decoded = strings
    }

    private init(payload: [UInt8], starts: [Int32]) {
        self.payload = payload
        self.starts = starts
        decoded = []
    }

    /// Parses a dictionary block's decompressed payload, checking every string as decoding it would.
    package static func parse(_ payload: [UInt8]) throws(LogFormatError) -> SegmentDictionary {
        let starts = try payload.withBytes { (b) throws(LogFormatError) -> [Int32] in
            var r = BinaryReader(b)
            let n = try r.uvarint(max: b.count, "a string count")
            var out: [Int32] = []
            out.reserveCapacity(n)
            var scratch: [UInt8] = []
            for _ in 0..<n {
                out.append(Int32(r.offset))
                try TokenizedString.check(&r, scratch: &scratch)
            }
            guard r.remaining == 0 else {
                throw LogFormatError(.malformed, "segment dictionary: \(r.remaining) bytes after its \(n) strings")
            }
            return out
        }
        return SegmentDictionary(payload: payload, starts: starts)
    }

    /// String `i` (`i` < `count`, checked by the caller), built.
    package func string(_ i: Int) throws(LogFormatError) -> String {
        if !decoded.isEmpty { return decoded[i] }
        return try payload.withBytes { (b) throws(LogFormatError) -> String in
            var r = BinaryReader(b, offset: Int(starts[i]))
            return try TokenizedString.decode(&r)
        }
    }

    /// Appends the UTF-8 bytes of string `i` to `out`, without building it.
    package func appendUTF8(_ i: Int, to out: inout [UInt8]) throws(LogFormatError) {
        if !decoded.isEmpty {
            var s = decoded[i]
            s.withUTF8 { out.append(contentsOf: $0) }
            return
        }
        try payload.withBytes { (b) throws(LogFormatError) in
            var r = BinaryReader(b, offset: Int(starts[i]))
            try TokenizedString.decode(&r, appendingTo: &out)
        }
    }

    /// Every string, built.
    package func all() throws(LogFormatError) -> [String] {
        try (0..<count).map { (i) throws(LogFormatError) -> String in try string(i) }
    }

    /// Reads and checks the dictionary block at the start of `bytes` (header and payload, exactly): header
    /// checks, type 4, payload CRC, decompression to `rawLength`, the strings. Offsets are relative to `bytes`.
    package static func read(block bytes: UnsafeRawBufferPointer) throws(LogFormatError) -> SegmentDictionary {
        let header = try BlockHeader.parse(bytes)
        guard header.type == .dictionary else {
            throw LogFormatError(
                .malformed, "the block before the index is a \(header.type) block, not a segment dictionary",
                offset: 4)
        }
        guard header.totalSize == bytes.count else {
            throw LogFormatError(
                header.totalSize > bytes.count ? .truncated : .malformed,
                "segment dictionary: the block claims \(header.totalSize) bytes, \(bytes.count) lie before the index",
                offset: 8)
        }
        guard header.recordCount == 0, header.firstOrdinal == 0, header.minTime == 0, header.maxTime == 0 else {
            throw LogFormatError(
                .malformed, "segment dictionary: record count, ordinal and times must be zero", offset: 16)
        }
        let stored = UnsafeRawBufferPointer(rebasing: bytes[FormatConstants.blockHeaderSize...])
        guard Checksum.crc32(stored) == header.payloadCRC else {
            throw LogFormatError(
                .checksumMismatch, "segment dictionary: payload checksum does not match",
                offset: FormatConstants.blockHeaderSize)
        }
        var raw: [UInt8] = []
        do throws(LogFormatError) {
            try BlockCompression.decompress(stored, codec: header.codec, rawLength: Int(header.rawLength), into: &raw)
        } catch {
            throw LogFormatError(
                error.code, "segment dictionary: \(error.message)", offset: FormatConstants.blockHeaderSize)
        }
        do throws(LogFormatError) {
            return try parse(raw)
        } catch {
            throw LogFormatError(
                error.code,
                error.message.hasPrefix("segment dictionary")
                    ? error.message
                    : "segment dictionary: \(error.message)", offset: FormatConstants.blockHeaderSize)
        }
    }

    /// The dictionary block (header and compressed payload) for `payload`.
    static func block(_ payload: [UInt8], codec: CompressionCodec, level: Int32) throws(LogFormatError) -> [UInt8] {
        var stored: [UInt8] = []
        try payload.withBytes { (b) throws(LogFormatError) in
            try BlockCompression.compress(b, codec: codec, level: level, into: &stored)
        }
        var w = BinaryWriter(capacity: FormatConstants.blockHeaderSize + stored.count)
        BlockHeader(
            type: .dictionary, codec: codec, storedLength: UInt32(stored.count), rawLength: UInt32(payload.count),
            recordCount: 0, firstOrdinal: 0, minTime: 0, maxTime: 0, payloadCRC: Checksum.crc32(stored)
        ).write(into: &w)
        w.raw(stored)
        return w.bytes
    }
}
