// The idle timeout of the syslog TCP and gRPC connections (the HTTP ones have Hummingbird's).
import NIOCore

/// Closes a connection that the collector is ready to read from and that sends nothing for `timeout` (a stalled
/// sender, or one that never finishes its TLS handshake, would hold its socket and buffers forever). Only time
/// spent waiting for the peer counts: while the receiver holds reads back (its batch waits for the disk), no
/// `read` reaches this handler and the clock does not run.
///
/// The close comes one grace period after the timeout fires, not at once: an event loop that was held up (a
/// loaded machine) runs the due timer before it reads what arrived meanwhile, and an active connection would be
/// cut. Any read in the grace period cancels the close.
final class IdleReadCloser: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    static let grace: TimeAmount = .seconds(1)

    init(timeout: TimeAmount) { self.timeout = timeout }

    func read(context: ChannelHandlerContext) {
        if timer == nil {
            let loop = context.eventLoop.assumeIsolated()
            timer = loop.scheduleTask(in: timeout) { [self, context] in
                self.timer = loop.scheduleTask(in: Self.grace) { [context] in context.close(promise: nil) }
            }
        }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        timer?.cancel()
        timer = nil
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }
}
