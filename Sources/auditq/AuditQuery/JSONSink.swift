// The pieces of JSON text every writer of this module appends (literal text, numbers, ids, base64), written once
// over any sink of bytes: `JSONWriter` appends them to an array (events, shapes, resources), `ByteArena` stores them
// into memory of its own (the rows of `RowJSON`, a heavy user's day: 25 MB of lines), where a piece costs a
// capacity check and a copy and no more. An array's append was a call, a uniqueness check and a capacity check per
// piece, about a tenth of a heavy search's CPU, for the few dozen pieces of every row.

import JSONText
import LogFormat

/// Where JSON text goes: bytes appended at the end.
protocol JSONSink {
    /// Appends the `count` bytes at `bytes`.
    mutating func append(_ bytes: UnsafeRawPointer, count: Int)
    mutating func byte(_ b: UInt8)
    /// A quoted, escaped JSON string.
    mutating func string(_ s: String)
}

extension JSONSink {
    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { quoted($0) }
    }

    /// The UTF-8 bytes `utf8` as a quoted, escaped JSON string: copied as they are when nothing in them needs an
    /// escape (`JSONString.isPlain`, most strings), else escaped by `JSONString`, the one escaper.
    mutating func quoted(_ utf8: UnsafeBufferPointer<UInt8>) {
        byte(UInt8(ascii: "\""))
        if JSONString.isPlain(utf8) {
            if let p = utf8.baseAddress { append(p, count: utf8.count) }
        } else {
            var escaped: [UInt8] = []
            JSONString.appendEscaped(utf8, to: &escaped)
            escaped.withUnsafeBufferPointer { append($0.baseAddress!, count: $0.count) }
        }
        byte(UInt8(ascii: "\""))
    }

    @inline(__always)
    mutating func raw(_ s: StaticString) { append(s.utf8Start, count: s.utf8CodeUnitCount) }

    /// A `String`'s bytes as they are. Not an overload of `raw`: a literal would take it over `StaticString`'s (a
    /// literal's default type wins), and every fixed piece of a row went through a call and `withUTF8`'s checks.
    mutating func text(_ s: String) {
        var s = s
        s.withUTF8 { if let p = $0.baseAddress { append(p, count: $0.count) } }
    }

    /// The `resource` and `scope` members of an event with these fields, each omitted when empty.
    mutating func resourceAndScope(
        attributes resourceAttributes: [Attribute], dropped: UInt32, schemaURL: String, scope: InstrumentationScope,
        scopeSchemaURL: String
    ) {
        if !resourceAttributes.isEmpty || !schemaURL.isEmpty || dropped != 0 {
            raw(",\"resource\":{\"attributes\":")
            attributes(resourceAttributes)
            if !schemaURL.isEmpty {
                raw(",\"schema_url\":")
                string(schemaURL)
            }
            droppedCount(dropped, key: ",\"dropped_attributes_count\":")
            byte(UInt8(ascii: "}"))
        }
        if !scope.name.isEmpty || !scope.version.isEmpty || !scope.attributes.isEmpty
            || scope.droppedAttributesCount != 0
            || !scopeSchemaURL.isEmpty
        {
            raw(",\"scope\":{\"name\":")
            string(scope.name)
            if !scope.version.isEmpty {
                raw(",\"version\":")
                string(scope.version)
            }
            if !scope.attributes.isEmpty {
                raw(",\"attributes\":")
                attributes(scope.attributes)
            }
            droppedCount(scope.droppedAttributesCount, key: ",\"dropped_attributes_count\":")
            if !scopeSchemaURL.isEmpty {
                raw(",\"schema_url\":")
                string(scopeSchemaURL)
            }
            byte(UInt8(ascii: "}"))
        }
    }

    mutating func attributes(_ list: [Attribute]) {
        byte(UInt8(ascii: "{"))
        // By index: each attribute is lent, not copied (a copy retains its key and value).
        for i in list.indices {
            if i > 0 { byte(UInt8(ascii: ",")) }
            string(list[i].key)
            byte(UInt8(ascii: ":"))
            value(list[i].value)
        }
        byte(UInt8(ascii: "}"))
    }

    mutating func value(_ v: AttributeValue) {
        switch v {
        case .empty:
            raw("null")
        case .string(let s):
            string(s)
        case .bool(let b):
            raw(b ? "true" : "false")
        case .int(let i):
            integer(i)
        case .double(let d):
            double(d)
        case .bytes(let bytes):
            base64(bytes)
        case .array(let items):
            byte(UInt8(ascii: "["))
            for i in items.indices {
                if i > 0 { byte(UInt8(ascii: ",")) }
                value(items[i])
            }
            byte(UInt8(ascii: "]"))
        case .keyValueList(let list):
            attributes(list)
        }
    }

    mutating func droppedCount(_ count: UInt32, key: StaticString) {
        guard count != 0 else { return }
        raw(key)
        decimal(UInt64(count))
    }

    /// An integer as a JSON number when exact in a double, else as a quoted decimal.
    mutating func integer(_ i: Int64) {
        if i.magnitude <= JSONWriter.exactIntegerLimit {
            if i < 0 { byte(UInt8(ascii: "-")) }
            decimal(i.magnitude)
        } else {
            byte(UInt8(ascii: "\""))
            if i < 0 { byte(UInt8(ascii: "-")) }
            decimal(i.magnitude)
            byte(UInt8(ascii: "\""))
        }
    }

    mutating func double(_ d: Double) {
        if d.isNaN {
            raw("\"NaN\"")
        } else if d.isInfinite {
            raw(d < 0 ? "\"-Infinity\"" : "\"Infinity\"")
        } else {
            // Swift's description is the shortest representation that round-trips ("1.0", "1e-05", "5e+20"),
            // and every finite form it produces is a valid JSON number.
            text(d.description)
        }
    }

    /// The text `double` writes for the double nearest to m × 10^e, written from the digits of m without the double,
    /// when that text is those digits with a point: m has at most 15 significant digits and the double lies between
    /// 0.0001 and 10^15. Then no shorter decimal comes back to the same double (every decimal of 15 digits or fewer
    /// comes back from its double to itself, so two of them never share one), and Swift's description (the
    /// shortest form that comes back) is m's digits: "0.0001", "0.021", "12.5", "12920.0"; below 0.0001 and from
    /// 2^53 on it is exponential ("1e-05"), which is left to `double`. Returns false, having written nothing,
    /// otherwise.
    mutating func shortDecimal(_ m: Int64, _ e: Int64) -> Bool {
        guard m != 0, e >= -40, e <= 40 else { return false }
        var digits = m.magnitude
        var e = Int(e)
        while digits % 10 == 0 {
            digits /= 10
            e += 1
        }
        guard digits < 1_000_000_000_000_000 else { return false }
        var count = 1
        var power: UInt64 = 10
        while power <= digits {
            count += 1
            power &*= 10
        }
        // The exponent of the first digit: -4 is 0.000d…, 14 is a 15-digit integer part.
        let first = e + count - 1
        guard first >= -4, first <= 14 else { return false }
        var scratch: (UInt64, UInt64) = (0, 0)  // 15 digits at most
        withUnsafeMutableBytes(of: &scratch) { buffer in
            let out = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var v = digits
            for i in stride(from: count - 1, through: 0, by: -1) {
                out[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
            let zeros = zeroDigits.utf8Start
            if m < 0 { byte(UInt8(ascii: "-")) }
            if first < 0 {
                raw("0.")
                append(zeros, count: -first - 1)
                append(out, count: count)
            } else if first + 1 < count {
                append(out, count: first + 1)
                byte(UInt8(ascii: "."))
                append(out + first + 1, count: count - first - 1)
            } else {
                append(out, count: count)
                append(zeros, count: first + 1 - count)
                raw(".0")
            }
        }
        return true
    }

    mutating func base64(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { base64($0) }
    }

    mutating func base64(_ bytes: UnsafeRawBufferPointer) {
        byte(UInt8(ascii: "\""))
        let alphabet = JSONWriter.base64Alphabet
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            byte(alphabet[Int(n >> 18 & 0x3f)])
            byte(alphabet[Int(n >> 12 & 0x3f)])
            byte(alphabet[Int(n >> 6 & 0x3f)])
            byte(alphabet[Int(n & 0x3f)])
            i += 3
        }
        switch bytes.count - i {
        case 1:
            let n = UInt32(bytes[i]) << 16
            byte(alphabet[Int(n >> 18 & 0x3f)])
            byte(alphabet[Int(n >> 12 & 0x3f)])
            raw("==")
        case 2:
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            byte(alphabet[Int(n >> 18 & 0x3f)])
            byte(alphabet[Int(n >> 12 & 0x3f)])
            byte(alphabet[Int(n >> 6 & 0x3f)])
            byte(UInt8(ascii: "="))
        default:
            break
        }
        byte(UInt8(ascii: "\""))
    }

    mutating func decimal(_ value: UInt64) {
        if value < 10 {
            byte(UInt8(ascii: "0") + UInt8(value))
            return
        }
        digits(value, quoted: false)
    }

    mutating func quotedDecimal(_ value: UInt64) { digits(value, quoted: true) }

    /// `value` in decimal, in quotes when `quoted`, in one append; two digits at a time (a row's times are 19
    /// digits each).
    @inline(__always) private mutating func digits(_ value: UInt64, quoted: Bool) {
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: UInt64.max has 20 digits, and 2 quotes
        withUnsafeMutableBytes(of: &scratch) { digits in
            let out = digits.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let pairs = decimalPairs.utf8Start
            var v = value
            var start = 24
            if quoted {
                start -= 1
                out[start] = UInt8(ascii: "\"")
            }
            while v >= 100 {
                let pair = Int(v % 100) &* 2
                v /= 100
                start -= 2
                out[start] = pairs[pair]
                out[start + 1] = pairs[pair + 1]
            }
            if v >= 10 {
                start -= 2
                out[start] = pairs[Int(v) &* 2]
                out[start + 1] = pairs[Int(v) &* 2 + 1]
            } else {
                start -= 1
                out[start] = UInt8(ascii: "0") + UInt8(v)
            }
            if quoted {
                start -= 1
                out[start] = UInt8(ascii: "\"")
            }
            append(out + start, count: 24 - start)
        }
    }

    /// The id in hex, quoted, in one append (a byte at a time, the ids were about 70 appends of a row's JSON).
    mutating func traceID(_ id: TraceID) {
        let quote = UInt64(UInt8(ascii: "\""))
        // The opening quote is the last byte of the first word, the closing one the first byte of the last.
        var text = (
            (quote << 56).littleEndian, JSONWriter.hexDigits(id.high >> 32), JSONWriter.hexDigits(id.high),
            JSONWriter.hexDigits(id.low >> 32), JSONWriter.hexDigits(id.low), quote.littleEndian
        )
        withUnsafeBytes(of: &text) { append($0.baseAddress! + 7, count: 34) }
    }

    mutating func spanID(_ id: SpanID) {
        let quote = UInt64(UInt8(ascii: "\""))
        var text = (
            (quote << 56).littleEndian, JSONWriter.hexDigits(id.value >> 32), JSONWriter.hexDigits(id.value),
            quote.littleEndian
        )
        withUnsafeBytes(of: &text) { append($0.baseAddress! + 7, count: 18) }
    }

    /// The 16 lowercase hex digits of `v`, most significant first, in one append.
    mutating func hex64(_ v: UInt64) {
        var text = (JSONWriter.hexDigits(v >> 32), JSONWriter.hexDigits(v))
        withUnsafeBytes(of: &text) { append($0.baseAddress!, count: 16) }
    }
}

/// "00" to "99", back to back: the two digits of `n` start at `2 * n`. A static string, so reading it takes neither a
/// bounds check nor a reference count.
private var decimalPairs: StaticString {
    """
    00010203040506070809101112131415161718192021222324252627282930313233343536373839\
    40414243444546474849505152535455565758596061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899
    """
}

/// Zeros enough for `shortDecimal`.
private var zeroDigits: StaticString { "00000000000000000000" }

/// Bytes back to back in memory its owner frees (`deallocate`), a `JSONSink`. Copying a range out of it takes no
/// reference count, as a range of an array held by a class does (the writer copies a dozen ranges per row), and
/// appending to it takes a capacity check and a copy: no call, no uniqueness check.
struct ByteArena: JSONSink {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 4096) {
        base = .allocate(capacity: capacity)
        self.capacity = capacity
    }

    /// The bytes appended (valid until the next append or `deallocate`).
    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

    /// Forgets the bytes, keeping the memory.
    mutating func removeAll() { count = 0 }

    @inline(__always) mutating func append(_ bytes: UnsafeRawPointer, count n: Int) {
        if _slowPath(count &+ n > capacity) { grow(n) }
        UnsafeMutableRawPointer(base + count).copyMemory(from: bytes, byteCount: n)
        count &+= n
    }

    @inline(__always) mutating func byte(_ b: UInt8) {
        if _slowPath(count == capacity) { grow(1) }
        base[count] = b
        count &+= 1
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { if let p = $0.baseAddress { append(p, count: $0.count) } }
    }

    /// Appends `bytes` (a range of another arena's memory, or its own).
    @inline(__always) mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        if let p = bytes.baseAddress { append(p, count: bytes.count) }
    }

    /// Room for `n` more bytes, in memory twice as large at least.
    @inline(never) private mutating func grow(_ n: Int) {
        let grown = max(capacity * 2, count + n)
        let new = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
        new.update(from: base, count: count)
        base.deallocate()
        base = new
        capacity = grown
    }

    /// Appends the bytes at `range` (within `0..<count`) to `buffer`.
    @inline(__always) func copy(_ range: Range<Int>, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: UnsafeBufferPointer(start: base + range.lowerBound, count: range.count))
    }

    /// The bytes at `range` (within `0..<count`), valid until the next append or `deallocate`.
    @inline(__always) func slice(_ range: Range<Int>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    func deallocate() { base.deallocate() }
}
