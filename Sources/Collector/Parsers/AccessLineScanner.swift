// The fast path of access lines: an nginx or Envoy JSON line read in place from the request body, member keys
// looked up on their bytes (the field map's names and common nginx variables are static Strings; other long
// keys are shared within a body), values parsed where they lie, and the fields the mapping reads found by where
// they landed, without a tree, a dictionary or a copy of the line. What it does not take on (an escape in a
// string, a nested value, anything that is not well-formed JSON) it leaves, having built nothing, to the
// general scanner (`ByteJSONParser.scanObject`), so it never refuses a line and never says why: the general
// path decides and words every refusal. `AccessLineScannerTests` proves the two give the same events.
import LogFormat

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension AccessEventMapping {
    /// Keys by their bytes: an open-addressing table over FNV-1a hashes, compared with `memcmp` semantics.
    struct KeyTable {
        private struct Entry {
            var hash: UInt64
            var key: String
            /// The `Field` this key names, or -1.
            var field: Int
        }
        private var entries: [Entry] = []
        /// Indices into `entries` + 1 (0 = empty); a power of two long.
        private var slots: [Int32]
        private let capacity: Int

        init(capacity: Int) {
            var size = 16
            while size < capacity * 2 { size <<= 1 }
            slots = [Int32](repeating: 0, count: size)
            self.capacity = capacity
        }

        static func hash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for c in b {
                h ^= UInt64(c)
                h = h &* 0x0000_0100_0000_01b3
            }
            return h
        }

        func find(_ b: UnsafeBufferPointer<UInt8>, hash h: UInt64) -> (key: String, field: Int)? {
            let mask = slots.count - 1
            var s = Int(truncatingIfNeeded: h) & mask
            while true {
                let e = Int(slots[s])
                if e == 0 { return nil }
                let entry = entries[e - 1]
                if entry.hash == h, Self.equal(entry.key, b) { return (entry.key, entry.field) }
                s = (s + 1) & mask
            }
        }

        /// Adds `key` (not present) unless the table is full.
        mutating func insert(_ key: String, hash h: UInt64, field: Int) {
            guard entries.count < capacity else { return }
            let mask = slots.count - 1
            var s = Int(truncatingIfNeeded: h) & mask
            while slots[s] != 0 { s = (s + 1) & mask }
            entries.append(Entry(hash: h, key: key, field: field))
            slots[s] = Int32(entries.count)
        }

        static func equal(_ key: String, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
            var k = key
            return k.withUTF8 { u in
                u.count == b.count && (u.count == 0 || memcmp(u.baseAddress!, b.baseAddress!, u.count) == 0)
            }
        }

        /// The field map's names, the default user, e-mail, group and TLS peer fields, and the variables of
        /// common nginx and Envoy formats: static Strings, so such a key costs no allocation.
        static let known: KeyTable = {
            var names = Field.allCases.map { ($0.name, $0.rawValue) }
            let options = AccessEventOptions()
            let others =
                options.userFields + options.emailFields + options.groupFields + peerFields + [
                    "http_user_agent", "http_referer", "body_bytes_sent", "bytes_sent", "bytes_received",
                    "request_length", "upstream_addr", "upstream_status", "upstream_connect_time",
                    "upstream_header_time", "upstream_host", "upstream_local_address", "upstream_service_time",
                    "server_name", "server_protocol", "http_host", "host", "scheme", "protocol", "http_x_forwarded_for",
                    "ssl_protocol", "ssl_cipher", "ssl_client_verify", "connection", "connection_requests",
                    "user_agent", "authority", "response_flags", "route_name", "requested_server_name",
                    "downstream_local_address", "upstream_transport_failure_reason", "response_code_details",
                    "connection_termination_details", "x_b3_traceid", "http.user_agent", "http.route",
                ]
            for o in others where !names.contains(where: { $0.0 == o }) { names.append((o, -1)) }
            var t = KeyTable(capacity: names.count)
            for (name, field) in names {
                var n = name
                n.withUTF8 { t.insert(name, hash: hash($0), field: field) }
            }
            return t
        }()
    }

    /// What the fast path keeps across the lines of one body: the long keys it has seen, and the last line's keys.
    struct LineScanner {
        /// Keys of 16 bytes and more not in `KeyTable.known`, so that each body builds each such String once.
        var seen = KeyTable(capacity: 64)
        /// The keys of the last line read, by member position, with their fields: a body's lines repeat the same
        /// keys in the same order, so a key with the bytes of the one at its position before is that key, without
        /// hashing it (a byte at a time) and looking it up.
        var lastKeys: [(key: String, field: Int)] = []
        /// The members of the last line read, to size the next line's attributes (a body's lines are alike).
        var lastMembers = 24

        /// `key(b)`, from the last line's key at `position` when it has the same bytes.
        mutating func key(_ b: UnsafeBufferPointer<UInt8>, at position: Int) -> (String, Int) {
            if position < lastKeys.count, KeyTable.equal(lastKeys[position].key, b) { return lastKeys[position] }
            let found = key(b)
            // Lines of more members than this are rare and gain little.
            if position < lastKeys.count {
                lastKeys[position] = found
            } else if position == lastKeys.count, position < 64 {
                lastKeys.append(found)
            }
            return found
        }

        /// The key of `b` as `String(decoding:as:)` makes it, and the field it names (or -1).
        mutating func key(_ b: UnsafeBufferPointer<UInt8>) -> (String, Int) {
            let h = KeyTable.hash(b)
            if let k = KeyTable.known.find(b, hash: h) { return k }
            let key = String(decoding: b, as: UTF8.self)
            // Up to 15 bytes a String is held inline: nothing to share.
            guard b.count > 15 else { return (key, -1) }
            if let k = seen.find(b, hash: h) { return (k.key, -1) }
            seen.insert(key, hash: h, field: -1)
            return (key, -1)
        }

        /// The event of one line, or nil when the line needs the general path (which may then refuse it).
        mutating func event(_ b: UnsafeBufferPointer<UInt8>, options: AccessEventOptions) throws(Refusal)
            -> AuditEvent?
        {
            let fieldCount = Field.allCases.count
            // Per field: the index + 1 of the attribute of its first occurrence, and for a number its bytes.
            return try withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * fieldCount) {
                slots throws(Refusal) -> AuditEvent? in
                slots.initialize(repeating: 0)
                guard let attributes = scan(b, slots) else { return nil }
                func text(_ f: Field) -> String? {
                    let a = slots[f.rawValue]
                    if a == 0 { return nil }
                    let range = slots[fieldCount + f.rawValue]
                    if range != 0 {
                        return String(
                            decoding: UnsafeBufferPointer(rebasing: b[(range >> 32)..<(range & 0xFFFF_FFFF)]),
                            as: UTF8.self)
                    }
                    let s: String
                    switch attributes[a - 1].value {
                    case .string(let v): s = v
                    case .bytes(let v): s = String(decoding: v, as: UTF8.self)
                    case .bool(let v): return v ? "true" : "false"
                    default: return nil
                    }
                    return s.isEmpty || s == "-" ? nil : s
                }
                return try AccessEventMapping.event(
                    text: text, has: { slots[$0.rawValue] != 0 }, attributes: attributes, options: options)
            }
        }

        /// The members of the line as attributes, with `slots` set as `event` reads them; nil when the line
        /// has anything the fast path leaves to the general one.
        private mutating func scan(_ b: UnsafeBufferPointer<UInt8>, _ slots: UnsafeMutableBufferPointer<Int>)
            -> [Attribute]?
        {
            let n = b.count
            guard n < 1 << 31 else { return nil }
            let fieldCount = Field.allCases.count
            var i = 0
            func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }
            func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
            while i < n, isSpace(b[i]) { i += 1 }
            guard i < n, b[i] == UInt8(ascii: "{") else { return nil }
            i += 1
            // Sized from the body's last line (two more for the upstream attempts the mapping may add): counting the
            // line's colons first was a pass over every byte of it.
            var attributes: [Attribute] = []
            attributes.reserveCapacity(lastMembers + 2)
            defer { lastMembers = attributes.count }
            while i < n, isSpace(b[i]) { i += 1 }
            if i < n, b[i] == UInt8(ascii: "}") {
                i += 1
            } else {
                while true {
                    while i < n, isSpace(b[i]) { i += 1 }
                    // The key: a string without escapes or control bytes.
                    guard i < n, b[i] == UInt8(ascii: "\"") else { return nil }
                    let keyStart = i + 1
                    var j = Self.plainEnd(b, from: keyStart)
                    guard j < n, b[j] == UInt8(ascii: "\"") else { return nil }
                    let (key, field) = self.key(UnsafeBufferPointer(rebasing: b[keyStart..<j]), at: attributes.count)
                    i = j + 1
                    while i < n, isSpace(b[i]) { i += 1 }
                    guard i < n, b[i] == UInt8(ascii: ":") else { return nil }
                    i += 1
                    while i < n, isSpace(b[i]) { i += 1 }
                    guard i < n else { return nil }
                    let value: AttributeValue
                    var numberRange = 0
                    switch b[i] {
                    case UInt8(ascii: "\""):
                        let start = i + 1
                        j = Self.plainEnd(b, from: start)
                        guard j < n, b[j] == UInt8(ascii: "\"") else { return nil }
                        let bytes = UnsafeBufferPointer(rebasing: b[start..<j])
                        value =
                            UTF8Text.string(validating: bytes).map(AttributeValue.string) ?? .bytes(Array(bytes))
                        i = j + 1
                    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                        // As `ByteJSONParser.number`: -?digits(.digits)?([eE][+-]?digits)?
                        let start = i
                        if b[i] == UInt8(ascii: "-") { i += 1 }
                        var digits = 0
                        while i < n, isDigit(b[i]) {
                            i += 1
                            digits += 1
                        }
                        guard digits > 0 else { return nil }
                        if i < n, b[i] == UInt8(ascii: ".") {
                            i += 1
                            var fraction = 0
                            while i < n, isDigit(b[i]) {
                                i += 1
                                fraction += 1
                            }
                            guard fraction > 0 else { return nil }
                        }
                        if i < n, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                            i += 1
                            if i < n, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                            var exponent = 0
                            while i < n, isDigit(b[i]) {
                                i += 1
                                exponent += 1
                            }
                            guard exponent > 0 else { return nil }
                        }
                        value = AccessEventMapping.attributeValue(
                            .number(String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)))
                        numberRange = start << 32 | i
                    case UInt8(ascii: "t"):
                        guard literal(b, &i, "true") else { return nil }
                        value = .bool(true)
                    case UInt8(ascii: "f"):
                        guard literal(b, &i, "false") else { return nil }
                        value = .bool(false)
                    case UInt8(ascii: "n"):
                        guard literal(b, &i, "null") else { return nil }
                        value = .empty
                    default:
                        // A nested value or a syntax error: the general path's.
                        return nil
                    }
                    if field >= 0, slots[field] == 0 {
                        slots[field] = attributes.count + 1
                        slots[fieldCount + field] = numberRange
                    }
                    attributes.append(Attribute(key, value))
                    while i < n, isSpace(b[i]) { i += 1 }
                    guard i < n else { return nil }
                    if b[i] == UInt8(ascii: ",") {
                        i += 1
                        continue
                    }
                    guard b[i] == UInt8(ascii: "}") else { return nil }
                    i += 1
                    break
                }
            }
            while i < n, isSpace(b[i]) { i += 1 }
            return i == n ? attributes : nil
        }

        /// The index of the first byte from `start` that ends a plain JSON string's contents (a quote), or that the
        /// fast path leaves to the general one (a backslash, a control byte); `b.count` when there is none. Eight bytes
        /// at a time: user agents, targets and referrers are most of a line's bytes.
        static func plainEnd(_ b: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
            ByteWord.firstIndex(
                in: b, from: start,
                word: { ByteWord.equal($0, 0x22) | ByteWord.equal($0, 0x5C) | ByteWord.below($0, 0x20) },
                byte: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 < 0x20 })
        }

        private func literal(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int, _ word: StaticString) -> Bool {
            let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
            guard i + w.count <= b.count else { return false }
            for k in 0..<w.count where b[i + k] != w[k] { return false }
            i += w.count
            return true
        }
    }
}

extension AccessEventMapping {
    /// The fast path alone on one line: nil when it leaves the line to the general scanner
    /// (`event(generalLine:)`). For the fuzz target, which checks the two agree.
    package static func fastPathEvent(line: [UInt8], options: AccessEventOptions = AccessEventOptions())
        throws(Refusal) -> AuditEvent?
    {
        var scanner = LineScanner()
        return try line.withUnsafeBufferPointer { b throws(Refusal) in try scanner.event(b, options: options) }
    }
}
