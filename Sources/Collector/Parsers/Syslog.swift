// Syslog messages carrying access-log lines: RFC 3164 as nginx sends it (`access_log syslog:server=…` with a
// JSON `log_format … escape=json`: `<PRI>Mmm dd hh:mm:ss [HOSTNAME ]TAG: MSG`, no year, so the time comes from
// the JSON body), RFC 5424 as rsyslog and syslog-ng forward it (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`),
// and the two TCP framings of RFC 6587 (octet counting `LEN SP MSG`, and newline-terminated).
import LogFormat

public struct SyslogMessage: Sendable, Hashable {
    public enum Format: String, Sendable { case rfc3164, rfc5424 }
    public var format: Format
    public var facility: UInt8
    public var severity: UInt8
    /// The header's timestamp as written (RFC 3164 has no year or zone; RFC 5424 is ISO 8601 or `-`).
    public var timestamp: String?
    public var hostname: String?
    /// RFC 3164 TAG or RFC 5424 APP-NAME.
    public var appName: String?
    public var procID: String?
    public var msgID: String?
    public var structuredData: String?
    /// The message itself (for nginx, the JSON access line), as raw bytes: a slice of the bytes parsed, so that a
    /// datagram is not copied on its way to the line scanner.
    public var body: ArraySlice<UInt8>
}

public struct SyslogError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

public enum Syslog {
    /// Parses one syslog message (a UDP datagram or a TCP frame).
    public static func parse(_ bytes: [UInt8]) throws(SyslogError) -> SyslogMessage { try parse(bytes[...]) }

    /// Parses one syslog message held in a slice (a datagram in its batch's bytes); indices are the slice's own.
    public static func parse(_ bytes: ArraySlice<UInt8>) throws(SyslogError) -> SyslogMessage {
        // <PRI>: 1-3 digits, at most 191.
        guard bytes.first == UInt8(ascii: "<") else {
            throw SyslogError(message: "no <PRI> at the start of the message")
        }
        var i = bytes.startIndex + 1
        var pri = 0
        var digits = 0
        while i < bytes.endIndex, bytes[i] >= 0x30, bytes[i] <= 0x39, digits < 3 {
            pri = pri * 10 + Int(bytes[i] - 0x30)
            i += 1
            digits += 1
        }
        guard digits > 0, i < bytes.endIndex, bytes[i] == UInt8(ascii: ">"), pri <= 191 else {
            throw SyslogError(message: "bad <PRI>: it must be 1-3 digits up to 191 followed by >")
        }
        i += 1
        // RFC 5424: VERSION "1" then a space.
        if i + 1 < bytes.endIndex, bytes[i] == UInt8(ascii: "1"), bytes[i + 1] == 0x20 {
            return try parse5424(bytes, from: i + 2, pri: pri)
        }
        return try parse3164(bytes, from: i, pri: pri)
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func parse3164(_ b: ArraySlice<UInt8>, from start: Int, pri: Int) throws(SyslogError) -> SyslogMessage {
        var m = SyslogMessage(format: .rfc3164, facility: UInt8(pri / 8), severity: UInt8(pri % 8), body: [])
        var i = start
        // TIMESTAMP "Mmm dd hh:mm:ss" (day space-padded), optional in practice: keep it when present.
        if b.endIndex >= i + 16, months.contains(String(decoding: b[i..<i + 3], as: UTF8.self)), b[i + 3] == 0x20,
            b[i + 15] == 0x20, b[i + 9] == UInt8(ascii: ":"), b[i + 12] == UInt8(ascii: ":")
        {
            m.timestamp = String(decoding: b[i..<i + 15], as: UTF8.self)
            i += 16
        }
        // [HOSTNAME SP] TAG ":" — a first word ending in ':' (or '[pid]:') is the tag; otherwise it is the host.
        func word(_ at: Int) -> Range<Int> {
            var e = at
            while e < b.endIndex, b[e] != 0x20 { e += 1 }
            return at..<e
        }
        let first = word(i)
        if !isTag(b[first]), first.upperBound < b.endIndex {
            m.hostname = String(decoding: b[first], as: UTF8.self)
            i = first.upperBound + 1
        }
        let tagWord = word(i)
        if isTag(b[tagWord]) {
            var tag = b[tagWord].dropLast()  // the ':'
            if tag.last == UInt8(ascii: "]"), let open = tag.firstIndex(of: UInt8(ascii: "[")) {
                m.procID = String(decoding: tag[(open + 1)..<(tag.endIndex - 1)], as: UTF8.self)
                tag = tag[..<open]
            }
            m.appName = String(decoding: tag, as: UTF8.self)
            i = min(b.endIndex, tagWord.upperBound + 1)
        }
        m.body = b[i...]
        return m
    }

    static func isTag(_ w: ArraySlice<UInt8>) -> Bool { w.count >= 2 && w.last == UInt8(ascii: ":") }

    static func parse5424(_ b: ArraySlice<UInt8>, from start: Int, pri: Int) throws(SyslogError) -> SyslogMessage {
        var m = SyslogMessage(format: .rfc5424, facility: UInt8(pri / 8), severity: UInt8(pri % 8), body: [])
        var i = start
        func field(_ name: String) throws(SyslogError) -> String? {
            var e = i
            while e < b.endIndex, b[e] != 0x20 { e += 1 }
            guard e > i, e < b.endIndex || name == "MSGID" else {
                throw SyslogError(message: "RFC 5424 header ends before \(name)")
            }
            let value = String(decoding: b[i..<e], as: UTF8.self)
            i = min(b.endIndex, e + 1)
            return value == "-" ? nil : value
        }
        m.timestamp = try field("TIMESTAMP")
        m.hostname = try field("HOSTNAME")
        m.appName = try field("APP-NAME")
        m.procID = try field("PROCID")
        m.msgID = try field("MSGID")
        // STRUCTURED-DATA: "-" or one or more [ … ] elements (']' inside values is escaped as \]).
        guard i < b.endIndex else { return m }
        if b[i] == UInt8(ascii: "-") {
            i += 1
        } else if b[i] == UInt8(ascii: "[") {
            let sdStart = i
            var inElement = false
            var escaped = false
            while i < b.endIndex {
                let c = b[i]
                if inElement {
                    if escaped {
                        escaped = false
                    } else if c == UInt8(ascii: "\\") {
                        escaped = true
                    } else if c == UInt8(ascii: "]") {
                        inElement = false
                    }
                } else if c == UInt8(ascii: "[") {
                    inElement = true
                } else {
                    break
                }
                i += 1
            }
            guard !inElement else { throw SyslogError(message: "RFC 5424 structured data is not closed with ]") }
            m.structuredData = String(decoding: b[sdStart..<i], as: UTF8.self)
        } else {
            throw SyslogError(message: "RFC 5424 structured data must be - or [...]")
        }
        if i < b.endIndex, b[i] == 0x20 { i += 1 }
        // An optional UTF-8 byte-order mark before the message.
        if b.endIndex >= i + 3, b[i] == 0xEF, b[i + 1] == 0xBB, b[i + 2] == 0xBF { i += 3 }
        m.body = b[i...]
        return m
    }

    /// The access event a syslog message carries (its body must be a JSON access line); the syslog header is
    /// kept as attributes (`syslog.*`), and the sender's address as `syslog.peer`.
    public static func event(
        from message: SyslogMessage, peer: String?, options: AccessEventOptions
    ) throws(AccessEventMapping.Refusal) -> AuditEvent {
        var body = message.body[...]
        while let last = body.last, last == 0x0A || last == 0x0D || last == 0x00 { body.removeLast() }
        while let first = body.first, first == 0x20 { body.removeFirst() }
        guard body.first == UInt8(ascii: "{") else {
            throw AccessEventMapping.Refusal(
                message: "the syslog message is not a JSON access-log line (log_format … escape=json)")
        }
        var e = try AccessEventMapping.event(fromLine: body, options: options)
        e.attributes.append(Attribute("syslog.format", .string(message.format.rawValue)))
        e.attributes.append(Attribute("syslog.facility", .int(Int64(message.facility))))
        e.attributes.append(Attribute("syslog.severity", .int(Int64(message.severity))))
        if let v = message.timestamp { e.attributes.append(Attribute("syslog.timestamp", .string(v))) }
        if let v = message.hostname { e.attributes.append(Attribute("syslog.hostname", .string(v))) }
        if let v = message.appName { e.attributes.append(Attribute("syslog.app_name", .string(v))) }
        if let v = message.procID { e.attributes.append(Attribute("syslog.proc_id", .string(v))) }
        if let v = message.msgID { e.attributes.append(Attribute("syslog.msg_id", .string(v))) }
        if let v = message.structuredData { e.attributes.append(Attribute("syslog.structured_data", .string(v))) }
        if let peer { e.attributes.append(Attribute("syslog.peer", .string(peer))) }
        return e
    }
}

/// Splits a TCP byte stream into syslog frames (RFC 6587): octet counting (`LEN SP MSG`, recognised by a
/// leading digit) or non-transparent framing ending in LF; the framing may differ from frame to frame.
public struct SyslogFramer: Sendable {
    public let maxFrameBytes: Int
    private var buffer: [UInt8] = []
    private var start = 0

    public init(maxFrameBytes: Int) { self.maxFrameBytes = maxFrameBytes }

    public enum Output: Sendable, Hashable {
        case frame([UInt8])
        /// A frame that cannot be read; the stream cannot be resynchronised after a bad length, so the caller
        /// closes the connection after counting it.
        case fatal(String)
    }

    /// Bytes not yet part of a complete frame.
    public var pendingBytes: Int { buffer.count - start }

    public mutating func append(_ bytes: some Collection<UInt8>) { buffer.append(contentsOf: bytes) }

    /// The next complete frame, nil if more bytes are needed.
    public mutating func next() -> Output? {
        guard start < buffer.count else {
            compact()
            return nil
        }
        let first = buffer[start]
        if first >= 0x31 && first <= 0x39 {  // octet counting: a length without leading zero
            var i = start
            var length = 0
            while i < buffer.count, buffer[i] >= 0x30, buffer[i] <= 0x39 {
                length = length * 10 + Int(buffer[i] - 0x30)
                i += 1
                if length > maxFrameBytes { return .fatal("frame length exceeds the \(maxFrameBytes)-byte limit") }
            }
            guard i < buffer.count else { return nil }
            guard buffer[i] == 0x20 else { return .fatal("octet-counted frame length not followed by a space") }
            guard buffer.count >= i + 1 + length else { return nil }
            let frame = Array(buffer[(i + 1)..<(i + 1 + length)])
            start = i + 1 + length
            return .frame(frame)
        }
        guard let lf = buffer[start...].firstIndex(of: 0x0A) else {
            if pendingBytes > maxFrameBytes {
                return .fatal("line exceeds the \(maxFrameBytes)-byte limit without a newline")
            }
            return nil
        }
        var frame = Array(buffer[start..<lf])
        if frame.last == 0x0D { frame.removeLast() }
        start = lf + 1
        if frame.isEmpty { return next() }
        return .frame(frame)
    }

    private mutating func compact() {
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
    }

    /// Drops consumed bytes once they dominate the buffer (amortised O(1) per byte).
    public mutating func compactIfWorthIt() {
        if start > 64 << 10 && start * 2 > buffer.count { compact() }
    }
}
