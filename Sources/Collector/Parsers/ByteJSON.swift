// A small JSON parser over raw bytes, for access-log lines. nginx's `escape=json` escapes quotes, backslashes
// and control bytes but passes bytes >= 0x80 through unchanged, so a line may be invalid UTF-8: Foundation's
// parser would refuse the whole line. This one keeps each string's bytes and lets the caller decide.

public indirect enum JSONValue: Sendable, Hashable {
    /// The unescaped bytes of a string (not necessarily valid UTF-8).
    case string([UInt8])
    /// A number as written (kept textual so 64-bit integers and decimals are not rounded).
    case number(String)
    case bool(Bool)
    case null
    case array([JSONValue])
    /// Members in the order written (duplicates kept).
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public func hash(into h: inout Hasher) {
        switch self {
        case .string(let s):
            h.combine(0)
            h.combine(s)
        case .number(let n):
            h.combine(1)
            h.combine(n)
        case .bool(let b):
            h.combine(2)
            h.combine(b)
        case .null: h.combine(3)
        case .array(let a):
            h.combine(4)
            h.combine(a)
        case .object(let o):
            h.combine(5)
            for (k, v) in o {
                h.combine(k)
                h.combine(v)
            }
        }
    }
}

public struct JSONSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public var offset: Int
    public var message: String
    public var description: String { "\(message) at byte \(offset)" }

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }
}

public struct ByteJSONParser {
    /// Nesting deeper than this is refused (hostile input must not exhaust the stack).
    public static let maxDepth = 64

    let bytes: [UInt8]
    var i = 0

    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONValue {
        var p = ByteJSONParser(bytes: bytes)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == bytes.count else {
            throw JSONSyntaxError(offset: p.i, message: "unexpected bytes after the JSON value")
        }
        return v
    }

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
    }

    func fail(_ message: String) -> JSONSyntaxError { JSONSyntaxError(offset: i, message: message) }

    private mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        switch try token(depth: depth) {
        case .object: return try object(depth: depth)
        case .array: return try array(depth: depth)
        case .string(let b): return .string(Array(b))
        case .number(let r): return .number(String(decoding: bytes[r], as: UTF8.self))
        case .bool(let b): return .bool(b)
        case .null: return .null
        }
    }

    private mutating func literal(_ word: String) throws(JSONSyntaxError) {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<i + w.count]) == w else { throw fail("expected \(word)") }
        i += w.count
    }

    /// Where the number at `i` is written, read past it.
    mutating func numberRange() throws(JSONSyntaxError) -> Range<Int> {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        var digits = 0
        while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) {
            i += 1
            digits += 1
        }
        guard digits > 0 else { throw fail("a number needs digits") }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            var frac = 0
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) {
                i += 1
                frac += 1
            }
            guard frac > 0 else { throw fail("a decimal point needs digits after it") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            var exp = 0
            while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) {
                i += 1
                exp += 1
            }
            guard exp > 0 else { throw fail("an exponent needs digits") }
        }
        return start..<i
    }

    private mutating func string() throws(JSONSyntaxError) -> [UInt8] {
        i += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("a string is not closed") }
            let c = bytes[i]
            i += 1
            switch c {
            case UInt8(ascii: "\""): return out
            case UInt8(ascii: "\\"):
                guard i < bytes.count else { throw fail("an escape is cut off") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"),
                        bytes[i + 1] == UInt8(ascii: "u")
                    {
                        i += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("a surrogate pair is broken") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    // A lone surrogate cannot be UTF-8: keep the replacement character.
                    let s = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    out.append(contentsOf: Array(String(Character(s)).utf8))
                default: throw fail("unknown escape \\\(Character(Unicode.Scalar(e)))")
                }
            case 0x00..<0x20: throw fail("a raw control byte inside a string")
            default: out.append(c)
            }
        }
    }

    /// Four hex digits, exactly (a sign is not a digit, as `UInt32(_:radix:)` would take it).
    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("\\u needs four hex digits") }
        var v: UInt32 = 0
        for k in i..<i + 4 {
            let b = bytes[k]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default: throw fail("\\u needs four hex digits")
            }
            v = v << 4 | UInt32(digit)
        }
        i += 4
        return v
    }

    private mutating func array(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        var out: [JSONValue] = []
        guard beginArray() else { return .array(out) }
        repeat { out.append(try value(depth: depth + 1)) } while try nextElement()
        return .array(out)
    }

    private mutating func object(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        var out: [(String, JSONValue)] = []
        guard beginObject() else { return .object(out) }
        repeat {
            let key = String(decoding: try memberName(), as: UTF8.self)
            out.append((key, try value(depth: depth + 1)))
        } while try nextMember()
        return .object(out)
    }
}

extension ByteJSONParser {
    /// A member's value as `scanObject` hands it over: a string's bytes (a slice of the input when it has no
    /// escapes), a number as written, a literal, or a nested array or object parsed as usual.
    public enum ScannedValue {
        case string(ArraySlice<UInt8>)
        case number(String)
        case bool(Bool)
        case null
        case nested(JSONValue)
    }

    /// Reads a top-level object member by member, in order and with duplicates, without building its tree:
    /// the one pass of access lines. Accepts and refuses exactly what `parse` does, with the same errors.
    /// Returns false, having read nothing, when the input is not an object (`parse` then says what it is).
    public static func scanObject(
        _ bytes: [UInt8], _ member: (String, ScannedValue) -> Void
    ) throws(JSONSyntaxError) -> Bool {
        var p = ByteJSONParser(bytes: bytes)
        p.skipSpace()
        guard p.i < bytes.count, bytes[p.i] == UInt8(ascii: "{") else { return false }
        // As `object(depth: 0)`, with members handed over instead of collected.
        if p.beginObject() {
            repeat {
                let key = String(decoding: try p.memberName(), as: UTF8.self)
                member(key, try p.scannedValue())
            } while try p.nextMember()
        }
        p.skipSpace()
        guard p.i == bytes.count else { throw p.fail("unexpected bytes after the JSON value") }
        return true
    }

    /// As `value(depth: 1)`, scalars without a tree node.
    private mutating func scannedValue() throws(JSONSyntaxError) -> ScannedValue {
        let start = i
        switch try token(depth: 1) {
        case .string(let b): return .string(b)
        case .object, .array:
            i = start
            return .nested(try value(depth: 1))
        case .number(let r): return .number(String(decoding: bytes[r], as: UTF8.self))
        case .bool(let b): return .bool(b)
        case .null: return .null
        }
    }

    /// A string's bytes: a slice of the input up to the closing quote when nothing needs unescaping (most of
    /// an access line), else `string()`'s unescaped copy and its errors.
    mutating func scannedString() throws(JSONSyntaxError) -> ArraySlice<UInt8> {
        var j = i + 1
        while j < bytes.count {
            let c = bytes[j]
            if c == UInt8(ascii: "\"") {
                defer { i = j + 1 }
                return bytes[(i + 1)..<j]
            }
            if c == UInt8(ascii: "\\") || c < 0x20 { break }
            j += 1
        }
        return ArraySlice(try string())
    }
}

// MARK: Pulling a document apart

extension ByteJSONParser {
    /// The value at `i` as the one-pass decoders (OTLP/JSON, Zipkin) pull it: scalars read past, an object or
    /// array only recognised (`i` still at its bracket, for `beginObject` / `beginArray` or `skipValue`).
    enum Token {
        case string(ArraySlice<UInt8>)
        case number(Range<Int>)
        case bool(Bool)
        case null
        case object
        case array
    }

    /// As `value(depth:)` begins: the same depth limit, errors and dispatch, without building anything.
    mutating func token(depth: Int) throws(JSONSyntaxError) -> Token {
        guard depth < Self.maxDepth else { throw fail("JSON nested deeper than \(Self.maxDepth) levels") }
        guard i < bytes.count else { throw fail("the JSON ends early") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string(try scannedString())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try numberRange())
        default: throw fail("unexpected byte 0x\(String(bytes[i], radix: 16)) where a JSON value should start")
        }
    }

    /// Enters the object at `i` (its `{`); false when it is empty (and read past).
    mutating func beginObject() -> Bool {
        i += 1
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            return false
        }
        return true
    }

    /// The next member's name (unescaped bytes), read up to its value, as `object(depth:)` reads it.
    mutating func memberName() throws(JSONSyntaxError) -> ArraySlice<UInt8> {
        skipSpace()
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
        let key = try scannedString()
        skipSpace()
        guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected : after a member name") }
        i += 1
        skipSpace()
        return key
    }

    /// After a member's value: true when another member follows, false at the closing `}` (read past).
    mutating func nextMember() throws(JSONSyntaxError) -> Bool {
        skipSpace()
        guard i < bytes.count else { throw fail("an object is not closed") }
        if bytes[i] == UInt8(ascii: ",") {
            i += 1
            return true
        }
        if bytes[i] == UInt8(ascii: "}") {
            i += 1
            return false
        }
        throw fail("expected , or } in an object")
    }

    /// Enters the array at `i` (its `[`); false when it is empty (and read past). Elements start after `skipSpace`.
    mutating func beginArray() -> Bool {
        i += 1
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            return false
        }
        skipSpace()
        return true
    }

    /// After an element: true when another follows (space skipped up to it), false at the closing `]`.
    mutating func nextElement() throws(JSONSyntaxError) -> Bool {
        skipSpace()
        guard i < bytes.count else { throw fail("an array is not closed") }
        if bytes[i] == UInt8(ascii: ",") {
            i += 1
            skipSpace()
            return true
        }
        if bytes[i] == UInt8(ascii: "]") {
            i += 1
            return false
        }
        throw fail("expected , or ] in an array")
    }

    /// Reads past the value at `i`, accepting and refusing exactly what `value(depth:)` does.
    mutating func skipValue(depth: Int) throws(JSONSyntaxError) {
        switch try token(depth: depth) {
        case .object:
            guard beginObject() else { return }
            repeat {
                _ = try memberName()
                try skipValue(depth: depth + 1)
            } while try nextMember()
        case .array:
            guard beginArray() else { return }
            repeat { try skipValue(depth: depth + 1) } while try nextElement()
        default: return
        }
    }

    /// Reads past space after the top-level value, refusing anything else, as `parse` does.
    mutating func end() throws(JSONSyntaxError) {
        skipSpace()
        guard i == bytes.count else { throw fail("unexpected bytes after the JSON value") }
    }

    /// 1 to 19 ASCII digits as their value (below 10^19, so no overflow); nil for any other byte. The number
    /// fields' fast path, before the rule that reads other text.
    static func digits(_ b: ArraySlice<UInt8>) -> UInt64? {
        var v: UInt64 = 0
        for c in b {
            let d = c &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            v = v &* 10 &+ UInt64(d)
        }
        return v
    }

    /// Checks a whole document as `parse` does, building nothing: the same first error, or none.
    static func validate(_ bytes: [UInt8]) throws(JSONSyntaxError) {
        var p = ByteJSONParser(bytes: bytes)
        p.skipSpace()
        try p.skipValue(depth: 0)
        try p.end()
    }
}
