// A tombstone (docs/format/tombstone.md): what is left of a segment that expired by policy.
// It keeps the segment's seal and signature, so the per-collector chain still verifies across it and a
// tombstone cannot be forged for a signed segment without the collector's key.
//
// tombstone := magic "AQTOMBST" | version u16 | reserved u16 | seal <144b> | signature <64b> | tier u8
//              | blockCount u32 | fileSize u64 | expiredAt u64 | expireAfterNanos u64 | string policy | crc32 u32

public struct Tombstone: Sendable, Hashable {
    public var seal: SegmentSeal
    /// The segment's Ed25519 signature over the seal (all zero when unsigned).
    public var signature: [UInt8]
    /// The tier the segment was in when it expired, its block count and file size.
    public var tier: StorageTier
    public var blockCount: UInt32
    public var fileSize: UInt64
    /// When the segment was expired, Unix ns.
    public var expiredAtUnixNano: UInt64
    /// The policy's age limit that expired it, in ns (expire_after_days × 1 day).
    public var expireAfterNanos: UInt64
    /// The policy in words, as the job that applied it saw it.
    public var policy: String

    public init(
        seal: SegmentSeal, signature: [UInt8], tier: StorageTier, blockCount: UInt32, fileSize: UInt64,
        expiredAtUnixNano: UInt64, expireAfterNanos: UInt64, policy: String
    ) {
        self.seal = seal
        self.signature = signature
        self.tier = tier
        self.blockCount = blockCount
        self.fileSize = fileSize
        self.expiredAtUnixNano = expiredAtUnixNano
        self.expireAfterNanos = expireAfterNanos
        self.policy = policy
    }

    public static let magic = FormatConstants.tombstoneMagic
    public static let version = FormatConstants.tombstoneVersion
    /// Bytes before the policy string.
    package static let fixedSize =
        8 + 2 + 2 + FormatConstants.footerSignedSize + FormatConstants.signatureSize + 1 + 4 + 8 + 8 + 8

    /// The policy text as stored: at most `tombstoneMaxPolicyBytes` of UTF-8, cut between Unicode scalars so the
    /// stored bytes decode to exactly the text kept (a cut inside a scalar would decode to U+FFFD, other bytes).
    static func storedPolicy(_ policy: String) -> String {
        let limit = FormatConstants.tombstoneMaxPolicyBytes
        guard policy.utf8.count > limit else { return policy }
        var kept = String.UnicodeScalarView()
        var bytes = 0
        for scalar in policy.unicodeScalars {
            bytes += UTF8.width(scalar)
            if bytes > limit { break }
            kept.append(scalar)
        }
        return String(kept)
    }

    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: Self.fixedSize + policy.utf8.count + 16)
        w.raw(Self.magic)
        w.u16(Self.version)
        w.u16(0)
        w.raw(seal.encoded())
        w.raw(signature)
        w.u8(tier.rawValue)
        w.u32(blockCount)
        w.u64(fileSize)
        w.u64(expiredAtUnixNano)
        w.u64(expireAfterNanos)
        w.string(Self.storedPolicy(policy))
        w.u32(Checksum.crc32(w.bytes))
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8], path: String? = nil) throws(LogFormatError) -> Tombstone {
        do {
            return try bytes.withBytes { (b) throws(LogFormatError) -> Tombstone in
                guard b.count >= fixedSize + 1 + 4 else {
                    if b.count >= 8 && !b.prefix(8).elementsEqual(magic) {
                        throw LogFormatError(.badMagic, "not a tombstone: the magic AQTOMBST is missing", offset: 0)
                    }
                    throw LogFormatError(
                        .truncated, "tombstone of \(b.count) bytes is shorter than its fixed part", offset: 0)
                }
                guard b.prefix(8).elementsEqual(magic) else {
                    throw LogFormatError(.badMagic, "not a tombstone: the magic AQTOMBST is missing", offset: 0)
                }
                var r = BinaryReader(UnsafeRawBufferPointer(rebasing: b[0..<b.count - 4]), offset: 8)
                let version = try r.u16()
                guard version >= 1, version <= Self.version else {
                    throw LogFormatError(
                        .unsupportedVersion,
                        "tombstone version \(version); this reader knows versions 1…\(Self.version)", offset: 8)
                }
                let stored = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: b.count - 4, as: UInt32.self))
                let computed = Checksum.crc32(UnsafeRawBufferPointer(rebasing: b[0..<b.count - 4]))
                guard stored == computed else {
                    throw LogFormatError(
                        .checksumMismatch,
                        "tombstone checksum: stored \(BlockHeader.hex32(stored)), computed \(BlockHeader.hex32(computed))",
                        offset: b.count - 4)
                }
                guard try r.u16() == 0 else {
                    throw LogFormatError(.malformed, "tombstone reserved bytes are not zero", offset: 10)
                }
                let sealStart = r.offset
                let seal: SegmentSeal
                do throws(LogFormatError) {
                    seal = try SegmentSeal.parse(try r.rawSlice(FormatConstants.footerSignedSize))
                } catch {
                    throw error.at(path: nil, base: sealStart)
                }
                let signature = try r.bytes(FormatConstants.signatureSize)
                let tierByte = try r.u8()
                guard let tier = StorageTier(rawValue: tierByte) else {
                    throw LogFormatError(.malformed, "unknown tier \(tierByte) in tombstone", offset: r.offset - 1)
                }
                let t = Tombstone(
                    seal: seal, signature: signature, tier: tier, blockCount: try r.u32(), fileSize: try r.u64(),
                    expiredAtUnixNano: try r.u64(), expireAfterNanos: try r.u64(), policy: try r.string())
                guard r.isAtEnd else {
                    throw LogFormatError(
                        .malformed, "\(r.remaining) bytes after the tombstone's last field", offset: r.offset)
                }
                return t
            }
        } catch {
            throw error.at(path: path)
        }
    }

    /// Whether the expiry this tombstone records was allowed by its own age limit: the segment's newest record
    /// was at least `expireAfterNanos` old when it expired.
    public var expiryWasDue: Bool {
        expireAfterNanos > 0 && seal.maxTime <= expiredAtUnixNano
            && expiredAtUnixNano - seal.maxTime >= expireAfterNanos
    }
}
