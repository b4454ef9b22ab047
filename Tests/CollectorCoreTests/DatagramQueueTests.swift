import NIOCore
import Testing

@testable import CollectorCore

/// The syslog receiver's queue of datagrams: batches of at most `batchDatagrams`, each datagram's bytes and
/// sender given back exactly, and a footprint that counts what the batches hold.
@Suite struct DatagramQueueTests {
    static func view(_ text: String) -> ByteBufferView { ByteBuffer(string: text).readableBytesView }

    @Test func batchesCloseAtTheirSizeAndGiveBackEachDatagramWithItsSender() throws {
        var q = DatagramQueue(batchDatagrams: 3)
        let a = try SocketAddress(ipAddress: "10.0.0.1", port: 514)
        let b = try SocketAddress(ipAddress: "10.0.0.2", port: 514)
        let aOtherPort = try SocketAddress(ipAddress: "10.0.0.1", port: 40_000)
        let sent: [(String, SocketAddress?)] = [
            ("one", a), ("two", a), ("three", b), ("", b), ("five", nil), ("six", aOtherPort), ("seven", a),
        ]
        for (text, peer) in sent { q.append(Self.view(text), from: peer) }
        #expect(q.datagrams == 7)
        #expect(q.batchesReady == 2)
        var got: [(String, String?)] = []
        var sizes: [Int] = []
        while let batch = q.takeBatch() {
            sizes.append(batch.count)
            for i in 0..<batch.count {
                got.append((String(decoding: batch[i].bytes, as: UTF8.self), batch[i].sender))
            }
        }
        #expect(sizes == [3, 3, 1])
        #expect(got.map(\.0) == sent.map(\.0))
        #expect(got.map(\.1) == sent.map { $0.1?.ipAddress })
        #expect(q.isEmpty && q.footprint == 0 && q.datagrams == 0)
    }

    /// A datagram that does not fit the filling batch's reserve closes it and starts the next, reserved for at
    /// least its size, rather than doubling the filling batch's array.
    @Test func aDatagramBeyondTheReserveStartsTheNextBatch() {
        var q = DatagramQueue(batchDatagrams: 100)
        q.append(Self.view("small"), from: nil)
        let big = String(repeating: "x", count: 65_000)
        q.append(Self.view(big), from: nil)
        q.append(Self.view("after"), from: nil)
        #expect(q.batchesReady == 1)
        #expect(q.footprint >= 65_000 + 100 * 5)
        let first = q.takeBatch()
        #expect(first?.count == 1)
        #expect(first.map { String(decoding: $0[0].bytes, as: UTF8.self) } == "small")
        let second = q.takeBatch()
        #expect(second?.count == 2)
        #expect(second.map { String(decoding: $0[0].bytes, as: UTF8.self) } == big)
        #expect(second.map { String(decoding: $0[1].bytes, as: UTF8.self) } == "after")
        #expect(q.takeBatch() == nil)
        #expect(q.footprint == 0)
    }

    /// The footprint is what the arrays hold, capacity included, and no more than about an eighth over the
    /// datagrams' bytes for a steady size (a batch reserved by doubling would hold up to twice).
    @Test func theFootprintFollowsTheBytesHeld() {
        var q = DatagramQueue(batchDatagrams: 2_000)
        let line = Self.view(String(repeating: "l", count: 400))
        for _ in 0..<10_000 { q.append(line, from: nil) }
        let bytes = 10_000 * 400
        #expect(q.footprint >= bytes)
        #expect(q.footprint < bytes + bytes / 4)
        _ = q.takeBatch()
        #expect(q.datagrams == 8_000)
        #expect(q.footprint < 8_000 * 400 + 8_000 * 400 / 4)
    }
}
