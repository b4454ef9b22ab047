// A minimal blocking HTTP/1.1 client over one keep-alive TCP connection, for the load generator: it costs a few
// microseconds per request where URLSession (libcurl underneath on Linux) costs far more, so a load test on
// a small machine measures the collector rather than the client. Plain HTTP only; answers with a
// Content-Length or chunked bodies.
#if canImport(Glibc)
    import Glibc
#endif

/// Where to send: `http://host:port` (the host a name or an IPv4/IPv6 literal).
public struct HTTPTarget: Sendable, Hashable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `http://host[:port][/…]`; nil for anything else.
    public init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        var rest = Substring(url.dropFirst("http://".count))
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if rest.hasPrefix("[") {  // [v6]:port
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            port = after.hasPrefix(":") ? Int(after.dropFirst()) ?? -1 : 80
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            port = Int(rest[rest.index(after: colon)...]) ?? -1
        } else {
            host = String(rest)
            port = 80
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
    }

    init(_ url: String) { self = HTTPTarget(url: url) ?? HTTPTarget(host: "127.0.0.1", port: 4318) }
}

public struct HTTPClientError: Error, CustomStringConvertible {
    public var description: String
}

public final class HTTPClientConnection {
    public struct Answer {
        public var status: Int
        public var retryAfter: Int?
        public var body: [UInt8]
    }

    private let fd: Int32
    private let hostHeader: String
    private var input: [UInt8] = []
    private var readBuffer = [UInt8](repeating: 0, count: 64 << 10)
    /// False once the server said it closes the connection after its answer.
    public private(set) var isReusable = true

    public init(_ target: HTTPTarget) throws(HTTPClientError) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard rc == 0, let first = list else {
            throw HTTPClientError(description: "cannot resolve \(target.host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        var lastError: Int32 = 0
        var opened: Int32 = -1
        while let a = candidate, opened < 0 {
            let s = socket(
                a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
            if s >= 0 {
                if connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 {
                    opened = s
                } else {
                    lastError = errno
                    close(s)
                }
            } else {
                lastError = errno
            }
            candidate = a.pointee.ai_next
        }
        guard opened >= 0 else {
            throw HTTPClientError(
                description: "cannot connect to \(target.host):\(target.port): \(String(cString: strerror(lastError)))")
        }
        var one: Int32 = 1
        setsockopt(opened, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        fd = opened
        hostHeader = target.host.contains(":") ? "[\(target.host)]:\(target.port)" : "\(target.host):\(target.port)"
    }

    deinit { close(fd) }

    /// Sends one POST and reads its answer.
    public func post(_ path: String, contentType: String, body: [UInt8], headers: [(String, String)] = [])
        throws(HTTPClientError) -> Answer
    {
        var head =
            "POST \(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        try writeAll(Array(head.utf8))
        try writeAll(body)
        return try readAnswer()
    }

    private func writeAll(_ bytes: [UInt8]) throws(HTTPClientError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw HTTPClientError(description: "send failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    /// Reads more bytes into `input`; throws at end of stream.
    private func fill() throws(HTTPClientError) {
        let n = readBuffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
        if n < 0, errno == EINTR { return }
        guard n > 0 else {
            throw HTTPClientError(
                description: n == 0
                    ? "connection closed by the server" : "recv failed: \(String(cString: strerror(errno)))")
        }
        input.append(contentsOf: readBuffer[0..<n])
    }

    /// Index just past the first CRLF at or after `from` in `input`, reading more as needed.
    private func line(from: Int) throws(HTTPClientError) -> Int {
        var i = from
        while true {
            while i + 1 < input.count {
                if input[i] == 13 && input[i + 1] == 10 { return i + 2 }
                i += 1
            }
            guard input.count - from < 64 << 10 else {
                throw HTTPClientError(description: "answer line longer than 64 KiB")
            }
            try fill()
        }
    }

    private func readAnswer() throws(HTTPClientError) -> Answer {
        // Status line, then headers up to the empty line.
        let statusEnd = try line(from: 0)
        let statusLine = String(decoding: input[0..<statusEnd - 2], as: UTF8.self)
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw HTTPClientError(description: "not an HTTP/1.x answer: \(statusLine.prefix(80))")
        }
        var contentLength: Int?
        var chunked = false
        var retryAfter: Int?
        var closeAfter = false
        var at = statusEnd
        while true {
            let end = try line(from: at)
            if end - at == 2 {
                at = end
                break
            }
            let header = String(decoding: input[at..<end - 2], as: UTF8.self)
            at = end
            guard let colon = header.firstIndex(of: ":") else { continue }
            let name = header[..<colon].lowercased()
            let value = header[header.index(after: colon)...].trimmingPrefix(" ")
            switch name {
            case "content-length": contentLength = Int(value)
            case "transfer-encoding": chunked = value.lowercased().contains("chunked")
            case "retry-after": retryAfter = Int(value)
            case "connection": closeAfter = value.lowercased() == "close"
            default: break
            }
        }
        var body: [UInt8] = []
        if chunked {
            while true {
                let sizeEnd = try line(from: at)
                let sizeText =
                    String(decoding: input[at..<sizeEnd - 2], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingPrefix(" "), radix: 16) else {
                    throw HTTPClientError(description: "bad chunk size \(sizeText.prefix(20))")
                }
                at = sizeEnd
                while input.count < at + size + 2 { try fill() }
                body += input[at..<at + size]
                at += size + 2
                if size == 0 { break }
            }
        } else if let length = contentLength {
            while input.count < at + length { try fill() }
            body = Array(input[at..<at + length])
            at += length
        }
        input.removeFirst(at)
        if closeAfter { isReusable = false }
        return Answer(status: status, retryAfter: retryAfter, body: body)
    }
}
