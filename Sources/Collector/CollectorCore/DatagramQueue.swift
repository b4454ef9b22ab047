// Syslog datagrams waiting to be parsed, kept end to end in byte arrays of one batch each. A burst of 100,000
// datagrams held as an array and a socket address apiece cost about 600 bytes each in the heap (BENCHMARKS.md,
// "the collector's memory peak, the syslog buffer and malloc_trim after a seal"); here a datagram costs its bytes
// and 6 bytes of index.
import NIOCore

/// One batch of datagrams: their bytes back to back, where each ends, and who sent each.
struct DatagramBatch: Sendable {
    private(set) var bytes: [UInt8] = []
    /// `ends[i]` is where datagram `i` ends in `bytes`.
    private(set) var ends: [UInt32] = []
    /// `senderOf[i]` is datagram `i`'s sender: its number in `senders`.
    private(set) var senderOf: [UInt16] = []
    /// The distinct senders of this batch, as the text `syslog.peer` records (nil: the address had none).
    private(set) var senders: [String?] = []
    private var lastSender: SocketAddress?

    init(reservingBytes: Int) { bytes.reserveCapacity(reservingBytes) }

    var count: Int { ends.count }
    var isEmpty: Bool { ends.isEmpty }
    /// What this batch holds in memory: its byte array's whole capacity, not only what is used.
    var footprint: Int { bytes.capacity + ends.capacity * 6 }
    /// Room left without growing the byte array.
    var spareBytes: Int { bytes.capacity - bytes.count }

    mutating func append(_ datagram: ByteBufferView, from sender: SocketAddress?) {
        bytes.append(contentsOf: datagram)
        ends.append(UInt32(bytes.count))
        // A burst mostly comes from one sender, so only a change of sender is looked up; a batch is far shorter
        // than 65,536 datagrams (`SyslogReceiver.batchEvents`).
        if senders.isEmpty || sender != lastSender {
            let text = sender?.ipAddress
            if let n = senders.lastIndex(where: { $0 == text }) {
                senderOf.append(UInt16(n))
            } else {
                senderOf.append(UInt16(senders.count))
                senders.append(text)
            }
            lastSender = sender
        } else {
            senderOf.append(senderOf[senderOf.count - 1])
        }
    }

    /// Datagram `i`'s bytes and its sender.
    subscript(i: Int) -> (bytes: ArraySlice<UInt8>, sender: String?) {
        let start = i == 0 ? 0 : Int(ends[i - 1])
        return (bytes[start..<Int(ends[i])], senders[Int(senderOf[i])])
    }
}

/// Batches in arrival order: the filling one takes datagrams as they arrive, and the flusher takes closed ones
/// from the front (the filling one too when nothing else waits).
struct DatagramQueue: Sendable {
    /// A batch is closed at this many datagrams.
    let batchDatagrams: Int
    private var closed = CircularBuffer<DatagramBatch>()
    private var filling: DatagramBatch?
    private(set) var datagrams = 0
    /// Memory held by the waiting batches (`DatagramBatch.footprint`).
    private(set) var footprint = 0
    /// Running mean of a datagram's size, to reserve a new batch's bytes close to what it will hold: a byte array
    /// grown by doubling would hold up to twice its bytes for as long as the batch waits.
    /// Kept times 64, so that the average of the last 64 or so converges to the size (in whole bytes, a step of
    /// a 64th would stop short of it).
    private var meanBytesTimes64 = 512 * 64

    init(batchDatagrams: Int) {
        precondition(batchDatagrams > 0 && batchDatagrams <= Int(UInt16.max))
        self.batchDatagrams = batchDatagrams
    }

    var isEmpty: Bool { datagrams == 0 }
    /// Batches closed and waiting.
    var batchesReady: Int { closed.count }

    mutating func append(_ datagram: ByteBufferView, from sender: SocketAddress?) {
        meanBytesTimes64 += datagram.count - meanBytesTimes64 / 64
        let meanBytes = meanBytesTimes64 / 64
        // A datagram that does not fit the filling batch's reserve starts the next batch rather than double the
        // array (a datagram larger than any reserve gets a batch of its own size).
        if let f = filling, !f.isEmpty, f.spareBytes < datagram.count { close() }
        var batch =
            filling.take()
            ?? DatagramBatch(reservingBytes: max(datagram.count, batchDatagrams * (meanBytes + meanBytes / 8)))
        let before = batch.count == 0 ? 0 : batch.footprint
        batch.append(datagram, from: sender)
        footprint += batch.footprint - before
        datagrams += 1
        filling = batch
        if batch.count >= batchDatagrams { close() }
    }

    private mutating func close() {
        if let batch = filling.take() { closed.append(batch) }
    }

    /// The oldest batch (the filling one when no other waits), or nil when none waits.
    mutating func takeBatch() -> DatagramBatch? {
        guard let batch = closed.popFirst() ?? filling.take() else { return nil }
        datagrams -= batch.count
        footprint -= batch.footprint
        return batch
    }
}
