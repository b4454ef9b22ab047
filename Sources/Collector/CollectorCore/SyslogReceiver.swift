// Syslog listeners (UDP and TCP) for nginx access lines, on SwiftNIO. UDP has no acknowledgement, so the
// receiver batches datagrams into appends and, under overload, stops reading the socket until it has room: the
// kernel's receive buffer (sized for bursts) holds the rest, and its drops are read from /proc/net/udp and
// exposed. TCP pushes back: a connection is not read further while its batch waits for the disk, and a refused
// batch is retried.
import Dispatch
import Foundation
import LogFormat
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

public final class SyslogReceiver: Sendable {
    public let ingest: IngestService
    /// Datagrams waiting to be parsed: at this many, or at `maxBufferedBytes` of them, the socket is read no
    /// further until the flusher has taken a batch (what one read brought beyond is kept).
    public let maxBufferedEvents: Int
    public let maxBufferedBytes: Int
    /// A batch is appended when it holds this many events, or after `flushInterval`.
    public let batchEvents: Int
    public let flushInterval: Duration
    private let logger: Logger

    /// Raw datagrams wait here: the event loop only copies bytes, and parsing happens in batches on the
    /// flusher's side, spread over the cores (one UDP socket is served by one event-loop thread).
    private struct Buffer {
        var queue: DatagramQueue
        var closed = false
        /// The socket's reader holds its reads (`DatagramReader`) until the flusher makes room.
        var readingPaused = false
        /// Asks the socket's reader to read again (set by the reader when it joins its channel).
        var resumeReading: (@Sendable () -> Void)?
    }
    private let buffer: Mutex<Buffer>
    /// Cores to parse a batch on, asked once: Foundation reads the cgroup's CPU quota from files for it.
    private let cores = ProcessInfo.processInfo.activeProcessorCount
    /// Open TCP connections, closed on shutdown so their tasks end.
    let openConnections = Mutex([ObjectIdentifier: any Channel]())
    private let wakeFlusher: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>

    public init(
        ingest: IngestService, maxBufferedEvents: Int = 100_000, maxBufferedBytes: Int = 64 << 20,
        batchEvents: Int = 2_000, flushInterval: Duration = .milliseconds(10), logger: Logger
    ) {
        self.ingest = ingest
        self.maxBufferedEvents = maxBufferedEvents
        self.maxBufferedBytes = maxBufferedBytes
        self.batchEvents = batchEvents
        buffer = Mutex(Buffer(queue: DatagramQueue(batchDatagrams: batchEvents)))
        self.flushInterval = flushInterval
        self.logger = logger
        (wakes, wakeFlusher) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    static let udp = Receiver.syslogUDP.label
    static let tcp = Receiver.syslogTCP.label

    // MARK: Messages

    /// Parses one message into an access event, counting what was received and refused.
    func event(_ bytes: ArraySlice<UInt8>, peer: String?, receiver: String) -> AuditEvent? {
        ingest.metrics.received(receiver, items: 1)
        do {
            let message = try Syslog.parse(bytes)
            return try Syslog.event(from: message, peer: peer, options: ingest.access)
        } catch {
            ingest.metrics.rejected(receiver, reason: .invalidLine)
            return nil
        }
    }

    /// One datagram read from the socket, kept for the flusher. Returns false when the buffer is full: the
    /// caller then reads the socket no further until `resumeReading` is called. A datagram after the socket was
    /// closed is not kept.
    func datagram(_ bytes: ByteBufferView, from peer: SocketAddress?) -> Bool {
        let (room, batchClosed, pausedNow) = buffer.withLock { b -> (Bool, Bool, Bool) in
            guard !b.closed else { return (true, false, false) }
            let ready = b.queue.batchesReady
            b.queue.append(bytes, from: peer)
            var paused = false
            if !b.readingPaused, b.queue.datagrams >= maxBufferedEvents || b.queue.footprint >= maxBufferedBytes {
                b.readingPaused = true
                paused = true
            }
            // The flusher is woken once per batch closed (and by its ticker), not per datagram.
            return (!b.readingPaused, b.queue.batchesReady > ready, paused)
        }
        if pausedNow { ingest.metrics.syslogUDPReadPaused() }
        if batchClosed { wakeFlusher.yield() }
        return room
    }

    /// Called by the socket's reader with the closure that makes it read again.
    func onResumeReading(_ resume: (@Sendable () -> Void)?) {
        buffer.withLock { $0.resumeReading = resume }
    }

    /// Parses a batch of datagrams on every core (order within the batch is kept).
    func parse(_ datagrams: DatagramBatch) -> [AuditEvent] {
        let workers = min(cores, max(1, datagrams.count / 256))
        let chunk = (datagrams.count + workers - 1) / workers
        let parts = Mutex([[AuditEvent]](repeating: [], count: workers))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var mine: [AuditEvent] = []
            mine.reserveCapacity(chunk)
            for i in (w * chunk)..<min(datagrams.count, (w + 1) * chunk) {
                let (bytes, peer) = datagrams[i]
                if let e = event(bytes, peer: peer, receiver: Self.udp) { mine.append(e) }
            }
            parts.withLock { $0[w] = mine }
        }
        return parts.withLock { $0.flatMap { $0 } }
    }

    /// Batches parsed and stored at the same time. One at a time left a core idle while a batch waited for
    /// its write, and the datagrams of a burst piled up meanwhile; batches are independent (a datagram has no
    /// order to keep), so a second one is parsed and normalised while the first is written.
    static let batchesInFlight = 2

    /// Appends buffered datagram events in batches until `stop()`, then appends what is left.
    func runFlusher() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [wakeFlusher, flushInterval] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: flushInterval)
                    wakeFlusher.yield()
                }
            }
            var inFlight = 0
            for await _ in wakes {
                // At most `batchEvents` per append: taking the whole buffer at once (up to `maxBufferedEvents`
                // after a stall) held every one of those lines as parsed events, records and blocks at the same
                // time, the 500 MiB peak of the UDP flood (BENCHMARKS.md). What is left waits in raw form.
                let (taken, closed, more, resume) = buffer.withLock { b in
                    let taken = b.queue.takeBatch()
                    // Reading resumes as soon as there is room again: while it is paused the socket's buffer takes
                    // the whole arrival rate, not only what the flusher cannot keep up with, so waiting for more room
                    // (half the buffer, at first) overflowed it sooner and lost more of a burst (BENCHMARKS.md).
                    var resume: (@Sendable () -> Void)?
                    if b.readingPaused, b.queue.datagrams < maxBufferedEvents, b.queue.footprint < maxBufferedBytes {
                        b.readingPaused = false
                        resume = b.resumeReading
                    }
                    return (taken, b.closed && b.queue.isEmpty, !b.queue.isEmpty, resume)
                }
                resume?()
                if let datagrams = taken, !datagrams.isEmpty {
                    if inFlight == Self.batchesInFlight {
                        // The ticker never ends on its own, so this is a batch finishing.
                        _ = await group.next()
                        inFlight -= 1
                    }
                    inFlight += 1
                    group.addTask { await self.store(datagrams) }
                }
                if more { wakeFlusher.yield() }
                if closed { break }
            }
            while inFlight > 0 {
                _ = await group.next()
                inFlight -= 1
            }
            group.cancelAll()
        }
    }

    /// Parses a batch of datagrams and appends its events; durable on return, or counted as dropped.
    private func store(_ datagrams: DatagramBatch) async {
        let batch = parse(datagrams)
        guard !batch.isEmpty else { return }
        let count = batch.count
        do throws(IngestService.Refusal) {
            // Datagrams carry no credentials, and a batch mixes peers: each event keeps its own in `syslog.peer`.
            _ = try await ingest.store(accessEvents: consume batch, from: SenderContext(receiver: .syslogUDP))
        } catch {
            // UDP cannot be told to retry: the loss is counted (by reason) and logged at most now and then.
            logger.warning("syslog datagrams dropped", metadata: ["events": "\(count)", "why": "\(error.message)"])
        }
    }

    func stop() {
        buffer.withLock { $0.closed = true }
        wakeFlusher.yield()
    }

    /// One TCP connection: frames are parsed as they arrive and appended per read; the connection is read
    /// no further until its batch is durable (or, if refused as busy, retried after Retry-After).
    func serve(connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, maxFrameBytes: Int, tlsPeer: TLSPeer? = nil) async {
        let peer = connection.channel.remoteAddress?.ipAddress
        let id = ObjectIdentifier(connection.channel)
        openConnections.withLock { $0[id] = connection.channel }
        defer { openConnections.withLock { _ = $0.removeValue(forKey: id) } }
        var framer = SyslogFramer(maxFrameBytes: maxFrameBytes)
        // The sender is decided once, on the first bytes (after the TLS handshake): a connection has no
        // per-message credentials, so only its client certificate and address can name it.
        var sender: SenderContext?
        do {
            try await connection.executeThenClose { inbound, _ in
                for try await chunk in inbound {
                    if sender == nil {
                        let identity = tlsPeer?.identity
                        let address = connection.channel.remoteAddress
                        switch ingest.authorize(.syslogTCP, authorization: nil, identity: identity, peer: address) {
                        case .success(let s): sender = s
                        case .failure: return
                        }
                    }
                    framer.append(chunk.readableBytesView)
                    var events: [AuditEvent] = []
                    while let output = framer.next() {
                        switch output {
                        case .frame(let bytes):
                            if let e = event(bytes[...], peer: peer, receiver: Self.tcp) { events.append(e) }
                        case .fatal(let why):
                            ingest.metrics.received(Self.tcp, items: 1)
                            ingest.metrics.rejected(Self.tcp, reason: .invalidLine)
                            logger.warning(
                                "closing a syslog TCP connection",
                                metadata: ["peer": "\(peer ?? "?")", "why": "\(why)"])
                            // The good frames before the bad one, from the same read, are kept.
                            if !events.isEmpty, let sender { await storeWithRetry(events, from: sender) }
                            return
                        }
                    }
                    framer.compactIfWorthIt()
                    if !events.isEmpty, let sender { await storeWithRetry(events, from: sender) }
                }
            }
        } catch {
            logger.debug("syslog TCP connection ended", metadata: ["peer": "\(peer ?? "?")", "error": "\(error)"])
        }
    }

    private func storeWithRetry(_ events: [AuditEvent], from sender: SenderContext) async {
        for _ in 0..<600 {
            do throws(IngestService.Refusal) {
                _ = try await ingest.store(accessEvents: events, from: sender)
                return
            } catch  where error.kind == .busy || error.kind == .unavailable {
                try? await Task.sleep(for: .seconds(ingest.limits.retryAfterSeconds))
            } catch {
                return  // invalid items: counted by the store path
            }
        }
    }

    // MARK: Kernel drops

    /// Datagrams the kernel dropped on the UDP socket bound to `port` (the `drops` column of /proc/net/udp
    /// and udp6), or nil when it cannot be read.
    public static func kernelDrops(port: Int) -> UInt64? {
        var total: UInt64?
        for file in ["/proc/net/udp", "/proc/net/udp6"] {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 13, let colon = fields[1].lastIndex(of: ":"),
                    Int(fields[1][fields[1].index(after: colon)...], radix: 16) == port, let drops = UInt64(fields[12])
                else { continue }
                total = (total ?? 0) + drops
            }
        }
        return total
    }
}

/// The UDP and TCP listeners as a service: graceful shutdown closes them and appends what was buffered.
public struct SyslogService: Service {
    public let receiver: SyslogReceiver
    public let udp: (host: String, port: Int)?
    public let tcp: (host: String, port: Int)?
    /// TLS for the TCP listener (syslog over TLS, RFC 5425 framing is the same octet counting).
    public let tls: ReloadableCertificates?
    /// With the CA bundle: must a TCP client present a certificate.
    public let clientCertificates: ClientCertificates
    /// A TCP connection the collector waits on for this long without a byte is closed.
    public let idleTimeout: TimeAmount
    /// SO_RCVBUF asked for the UDP socket (the kernel may grant less: see `run`).
    public let udpReceiveBufferBytes: Int
    /// Called with the bound ports ("udp"/"tcp", port).
    let onListening: @Sendable (String, Int) async -> Void
    let logger: Logger

    public init(
        receiver: SyslogReceiver, udp: (host: String, port: Int)?, tcp: (host: String, port: Int)?,
        tls: ReloadableCertificates? = nil, clientCertificates: ClientCertificates = .required,
        idleTimeout: TimeAmount = .seconds(300),
        udpReceiveBufferBytes: Int = 32 << 20, logger: Logger,
        onListening: @escaping @Sendable (String, Int) async -> Void = { _, _ in }
    ) {
        self.tls = tls
        self.clientCertificates = clientCertificates
        self.idleTimeout = idleTimeout
        self.udpReceiveBufferBytes = udpReceiveBufferBytes
        self.receiver = receiver
        self.udp = udp
        self.tcp = tcp
        self.logger = logger
        self.onListening = onListening
    }

    /// Largest datagram: the whole of the largest UDP payload.
    static let maxDatagram = 65_536
    /// Datagrams taken per recvmmsg(2) call: one system call per batch instead of per line. Each gets a
    /// whole `maxDatagram` slot of the read buffer (NIO cuts it evenly), so no line is truncated.
    static let datagramsPerRead = 32

    public func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        var udpChannel: (any Channel)?
        if let address = udp {
            let receiver = self.receiver
            udpChannel = try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(
                    .socketOption(.so_rcvbuf), value: SocketOptionValue(clamping: udpReceiveBufferBytes)
                )
                .channelOption(.datagramVectorReadMessageCount, value: Self.datagramsPerRead)
                .channelOption(
                    .recvAllocator,
                    value: FixedSizeRecvByteBufferAllocator(capacity: Self.maxDatagram * Self.datagramsPerRead)
                )
                .channelOption(.maxMessagesPerRead, value: 4)
                .bind(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DatagramReader(receiver))
                        return channel
                    }
                }
        }
        var tcpChannel: NIOAsyncChannel<(NIOAsyncChannel<ByteBuffer, ByteBuffer>, TLSPeer?), Never>?
        if let address = tcp {
            let sslContext = try tls.map { try $0.serverContext(clientCertificates: clientCertificates) }
            let metrics = receiver.ingest.metrics
            let idleTimeout = self.idleTimeout
            tcpChannel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        var peer: TLSPeer?
                        if let sslContext {
                            peer = TLSPeer()
                            try HandshakeFailureCounter.addTLS(
                                to: channel, context: sslContext, listener: "syslog_tcp", metrics: metrics, peer: peer)
                        }
                        try channel.pipeline.syncOperations.addHandler(IdleReadCloser(timeout: idleTimeout))
                        return (
                            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel), peer
                        )
                    }
                }
        }
        let udpListener = udpChannel
        let tcpListener = tcpChannel
        if let channel = udpChannel, let port = channel.localAddress?.port {
            // Linux doubles what it grants (bookkeeping) and caps the request at net.core.rmem_max: say what
            // the socket really has, and warn when that is less than asked.
            var granted = Int(try await channel.getOption(.socketOption(.so_rcvbuf)))
            #if os(Linux)
                if granted < udpReceiveBufferBytes {
                    // SO_RCVBUFFORCE passes the cap for a process with CAP_NET_ADMIN (as systemd-journald and
                    // rsyslog do); without it the call fails and the granted size stands.
                    let force = ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_RCVBUFFORCE))
                    let asked = SocketOptionValue(clamping: udpReceiveBufferBytes)
                    if (try? await channel.setOption(force, value: asked).get()) != nil {
                        granted = Int(try await channel.getOption(.socketOption(.so_rcvbuf)))
                    }
                }
            #endif
            receiver.ingest.metrics.syslogUDPReceiveBuffer(bytes: granted)
            if granted < udpReceiveBufferBytes {
                logger.warning(
                    "the syslog UDP receive buffer is smaller than configured: raise net.core.rmem_max",
                    metadata: ["asked": "\(udpReceiveBufferBytes)", "granted": "\(granted)"])
            }
            receiver.ingest.metrics.kernelDropsPort.store(port, ordering: .relaxed)
            receiver.ingest.metrics.ledger.kernelDropsPort.store(port, ordering: .relaxed)
            await onListening("udp", port)
        }
        if let port = tcpChannel?.channel.localAddress?.port { await onListening("tcp", port) }
        let maxFrame = receiver.ingest.limits.maxAccessLineBytes

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { tasks in
                if let udpChannel = udpListener {
                    tasks.addTask { await receiver.runFlusher() }
                    tasks.addTask {
                        defer { receiver.stop() }
                        try await udpChannel.closeFuture.get()
                    }
                }
                if let tcpChannel = tcpListener {
                    tasks.addTask {
                        try await tcpChannel.executeThenClose { inbound in
                            try await withThrowingDiscardingTaskGroup { connections in
                                for try await (connection, peer) in inbound {
                                    connections.addTask {
                                        await receiver.serve(
                                            connection: connection, maxFrameBytes: maxFrame, tlsPeer: peer)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            if udpListener != nil { receiver.ingest.metrics.ledger.udpSocketClosing() }
            udpListener?.close(promise: nil)
            tcpListener?.channel.close(promise: nil)
            for channel in receiver.openConnections.withLock({ Array($0.values) }) { channel.close(promise: nil) }
        }
    }
}

/// Takes datagrams on the event loop that read them. A task reading them waited for a thread of the cooperative
/// pool, which parsing and appending keep busy at full load, and the socket was read no further meanwhile, so a
/// burst overflowed the kernel's buffer instead of the receiver's. When the receiver's buffer is full, the reads
/// NIO asks for are held until the receiver has room: the datagrams wait in the kernel's receive buffer, where a
/// burst costs no heap and an overflow is counted as the socket's drops.
private final class DatagramReader: ChannelDuplexHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundIn = AddressedEnvelope<ByteBuffer>
    private let receiver: SyslogReceiver
    private var paused = false
    private var readHeld = false

    init(_ receiver: SyslogReceiver) { self.receiver = receiver }

    func handlerAdded(context: ChannelHandlerContext) {
        let loop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        receiver.onResumeReading { loop.execute { bound.value.handler.resume(bound.value.context) } }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        receiver.onResumeReading(nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        if !receiver.datagram(envelope.data.readableBytesView, from: envelope.remoteAddress) { paused = true }
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readHeld = true
        } else {
            context.read()
        }
    }

    private func resume(_ context: ChannelHandlerContext) {
        paused = false
        if readHeld {
            readHeld = false
            context.read()
        }
    }

    /// A failed receive concerns one datagram (none is lost that the socket had): keep reading.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {}
}
