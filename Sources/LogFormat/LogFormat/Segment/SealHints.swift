// What the writer keeps of each record of the open segment as it appends it, for that segment's seal: its Merkle
// leaf (hashed at ingest, `PreparedBatch.leafHashes`), its size, and the fields that place it in the sealed order
// (`SealOrderFields`). A seal given these neither hashes the records again nor reads the log once more for their
// order. Recovery after a crash has no such memory and reads both from the log (`SealInput.read`); either way the
// sealed file is the same, as both come from the same canonical bytes.
import CPlatform

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

    /// By arrival index, for the records in written blocks, in chunks of `chunkSize`: one array grown by doubling
    /// would hold up to twice a full segment's hints (both copies while it grows), and the hints of every retired
    /// log wait for its seal beside those of the open one.
    private var chunks: [[Record]] = []
    private(set) var count = 0
    /// The chunks, moved to an unnamed file while the log waits behind another log's seal (`spill`).
    private var spilled: SpilledChunks? = nil
    static let chunkShift = 13
    static let chunkSize = 1 << chunkShift
    /// The users and services named, each once (by bytes).
    var names: [String] = []
    private var nameNumbers = ByteKeyTable(capacity: 1024)

    subscript(i: Int) -> Record {
        get { chunks[i >> Self.chunkShift][i & (Self.chunkSize - 1)] }
        set { chunks[i >> Self.chunkShift][i & (Self.chunkSize - 1)] = newValue }
    }

    mutating func append(_ record: Record) {
        if count & (Self.chunkSize - 1) == 0 {
            chunks.append([])
            chunks[chunks.count - 1].reserveCapacity(Self.chunkSize)
        }
        chunks[chunks.count - 1].append(record)
        count += 1
    }

    mutating func append(contentsOf records: [Record]) {
        for r in records { append(r) }
    }

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

    /// Whether the chunks are in a file (`spill`), to be read back by `loaded()` before the hints are read.
    var isSpilled: Bool { spilled != nil }

    /// Moves the chunks to an unnamed temporary file in `directory` (`O_TMPFILE`: it has no name to leave behind,
    /// and its blocks are freed when it is closed, after a crash too), so that a log waiting for its seal holds
    /// no memory but its names: with the seals behind a burst, the hints of the logs waiting were a fifth of the
    /// collector's peak (BENCHMARKS.md). Keeps them in memory when the file cannot be made or written.
    mutating func spill(in directory: String) {
        guard spilled == nil, count > 0 else { return }
        let fd = cplatform_open_unnamed_file(directory)
        guard fd >= 0 else { return }
        let file = SpilledChunks(fd: fd)
        var offset = 0
        for chunk in chunks {
            let written = chunk.withUnsafeBytes { raw in
                (try? FileIO.pwriteAll(fd, raw, at: offset, path: directory)) != nil
            }
            guard written else { return }
            offset += Self.byteCount(chunk.count)
        }
        chunks = []
        spilled = file
    }

    /// These hints with their chunks in memory: read back from the file `spill` wrote, if it did.
    func loaded() throws(LogFormatError) -> SealHints {
        guard let spilled else { return self }
        var copy = self
        copy.spilled = nil
        copy.chunks.reserveCapacity((count + Self.chunkSize - 1) >> Self.chunkShift)
        var first = 0
        while first < count {
            let n = min(Self.chunkSize, count - first)
            let offset = Self.byteCount(first)
            var failure: LogFormatError? = nil
            let chunk = [Record](unsafeUninitializedCapacity: Self.chunkSize) { buffer, initialized in
                let raw = UnsafeMutableRawBufferPointer(start: buffer.baseAddress, count: Self.byteCount(n))
                do throws(LogFormatError) {
                    let read = try FileIO.pread(spilled.fd, into: raw, at: offset, path: "seal hints")
                    guard read == raw.count else {
                        throw LogFormatError(.io, "seal hints: \(read) of \(raw.count) bytes read back")
                    }
                    initialized = n
                } catch {
                    failure = error
                    initialized = 0
                }
            }
            if let failure { throw failure }
            copy.chunks.append(chunk)
            first += n
        }
        return copy
    }

    /// The bytes that `records` hints take in a file.
    private static func byteCount(_ records: Int) -> Int { records * MemoryLayout<Record>.stride }

    /// Forgets the records from `count` on (a batch rolled back).
    mutating func truncate(to count: Int) {
        guard self.count > count else { return }
        let kept = (count + Self.chunkSize - 1) >> Self.chunkShift
        chunks.removeLast(chunks.count - kept)
        let inLast = count & (Self.chunkSize - 1)
        if inLast > 0 { chunks[kept - 1].removeLast(chunks[kept - 1].count - inLast) }
        self.count = count
    }
}

/// The seal order reads the hints where they lie, the names as the strings they stand for (as `SealOrderFields`
/// read from the log have them), so a seal from hints and one from the log alone order alike.
extension SealHints: SealOrderRecords {
    func traceID(_ i: Int) -> TraceID { self[i].traceID }
    func start(_ i: Int) -> UInt64 { self[i].start }
    func isEdgeAccess(_ i: Int) -> Bool { self[i].isEdgeAccess }
    func user(_ i: Int) -> String? {
        let u = self[i].user
        return u == 0 ? nil : names[Int(u) - 1]
    }
    func service(_ i: Int) -> String { names[Int(self[i].service)] }
}

/// The unnamed file holding spilled hints, closed (and so freed) with the last hints that name it.
final class SpilledChunks: Sendable {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }
    deinit { FileIO.close(fd) }
}
