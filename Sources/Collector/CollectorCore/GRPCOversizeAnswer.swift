// The gRPC answer to a request message the transport refuses to decode: RESOURCE_EXHAUSTED, not a reset.
import NIOCore
import NIOHPACK
import NIOHTTP2

/// Sits at the front of every gRPC stream's pipeline. grpc-swift's transport decodes a request message up to its
/// own size cap (twice our limit, so that messages between the limit and the cap reach the handler, which answers
/// RESOURCE_EXHAUSTED itself); past the cap — a message declaring more bytes, or a compressed one (a gzip bomb)
/// inflating past it — the transport closes the stream without a response, which clients see as a reset
/// (UNAVAILABLE) and retry, forever. This handler sees that close: when the stream is closed before any response
/// was written, after a request whose message was over the cap or compressed, it first answers, trailers only,
/// `grpc-status` 8 (RESOURCE_EXHAUSTED) with no RetryInfo, so the client stops; the stream is then closed as the
/// transport asked (the reset that follows a complete response is ignored by clients).
///
/// The transport reports only "Failed to decode message", so a compressed message that does not inflate at all
/// (corrupt data) gets the same answer; the message says both.
final class GRPCOversizeAnswer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// The transport's cap on one message, bytes (before and after decompression).
    let cap: Int
    /// Our limit, for the message to the client.
    let limit: Int
    /// Called with the request's `:path` when the handler answers.
    let onAnswer: @Sendable (String) -> Void
    /// The first message's 5-byte prefix (compressed flag, big-endian length), as it arrives.
    private var prefix: [UInt8] = []
    private var path: String?
    private var responseStarted = false

    init(cap: Int, limit: Int, onAnswer: @escaping @Sendable (String) -> Void = { _ in }) {
        self.cap = cap
        self.limit = limit
        self.onAnswer = onAnswer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers) where path == nil: path = headers.headers.first(name: ":path") ?? ""
        case .data(let frame) where prefix.count < 5:
            if case .byteBuffer(let buffer) = frame.data {
                prefix += buffer.readableBytesView.prefix(5 - prefix.count)
            }
        default: break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .headers = unwrapOutboundIn(data) { responseStarted = true }
        context.write(data, promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all, let path, !responseStarted, let message = refusal() {
            responseStarted = true
            let trailers = HPACKHeaders([
                (":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "8"),
                ("grpc-message", Self.percentEncoded(message)),
            ])
            context.writeAndFlush(
                wrapOutboundOut(.headers(.init(headers: trailers, endStream: true))), promise: nil)
            onAnswer(path)
        }
        context.close(mode: mode, promise: promise)
    }

    /// Why the message was refused, when the transport's refusal was about its size.
    private func refusal() -> String? {
        guard prefix.count == 5 else { return nil }
        let length = prefix[1...4].reduce(0) { $0 << 8 | Int($1) }
        if length > cap {
            return "the request message of \(length) bytes is over the limit of \(limit) bytes"
        }
        if prefix[0] != 0 {
            return
                "the compressed request message inflates past the limit of \(limit) bytes (or is not valid compressed data)"
        }
        return nil
    }

    /// `grpc-message` is percent-encoded (gRPC over HTTP/2): what is not printable ASCII, and `%`.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
