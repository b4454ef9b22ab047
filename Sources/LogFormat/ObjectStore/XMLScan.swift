// S3 answers (ListBucketResult, Error) are flat documents of known elements, so a small scanner reads them;
// FoundationXML would pull libxml2 into every binary that links this module.
enum XMLScan {
    /// The text inside each `<name>…</name>` in `text`, in order, entities decoded. Elements of that name must not
    /// nest, which holds for every element this module reads.
    static func all(_ name: String, in text: Substring) -> [Substring] {
        let open = Array("<\(name)>".utf8)
        let close = Array("</\(name)>".utf8)
        // Over the UTF-8 bytes: a LIST page of 1,000 keys is scanned for each element of each entry, and Foundation's
        // `range(of:)` goes through UTF-16 (a millisecond of a warm query's 20 for a page of 100).
        let u = text.utf8
        let spans: [(Int, Int)]? = u.withContiguousStorageIfAvailable { bytes in
            var out: [(Int, Int)] = []
            var at = 0
            while let o = find(open, in: bytes, from: at) {
                let start = o + open.count
                guard let c = find(close, in: bytes, from: start) else { break }
                out.append((start, c))
                at = c + close.count
            }
            return out
        }
        guard let spans else { return allSlowly(open: "<\(name)>", close: "</\(name)>", in: text) }
        return spans.map { text[u.index(u.startIndex, offsetBy: $0.0)..<u.index(u.startIndex, offsetBy: $0.1)] }
    }

    /// Whether `needle` occurs in `text` (over the UTF-8 bytes, as `all`).
    static func contains(_ needle: String, in text: Substring) -> Bool {
        let n = Array(needle.utf8)
        return text.utf8.withContiguousStorageIfAvailable { find(n, in: $0, from: 0) != nil }
            ?? (text.range(of: needle) != nil)
    }

    /// The offset of the first `needle` in `bytes` at or after `from`.
    private static func find(_ needle: [UInt8], in bytes: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        guard let first = needle.first, needle.count <= bytes.count else { return nil }
        var i = from
        let last = bytes.count - needle.count
        while i <= last {
            if bytes[i] == first {
                var j = 1
                while j < needle.count && bytes[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

    /// `all` for text without contiguous UTF-8 storage (a bridged string).
    private static func allSlowly(open: String, close: String, in text: Substring) -> [Substring] {
        var out: [Substring] = []
        var rest = text[...]
        while let o = rest.range(of: open) {
            guard let c = rest[o.upperBound...].range(of: close) else { break }
            out.append(rest[o.upperBound..<c.lowerBound])
            rest = rest[c.upperBound...]
        }
        return out
    }

    static func first(_ name: String, in text: Substring) -> String? {
        all(name, in: text).first.map { decode($0) }
    }

    static func decode(_ s: Substring) -> String {
        guard s.contains("&") else { return String(s) }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let semi = s[i...].firstIndex(of: ";") {
                let entity = s[s.index(after: i)..<semi]
                var replacement: String?
                switch entity {
                case "amp": replacement = "&"
                case "lt": replacement = "<"
                case "gt": replacement = ">"
                case "quot": replacement = "\""
                case "apos": replacement = "'"
                default:
                    if entity.hasPrefix("#x"), let v = UInt32(entity.dropFirst(2), radix: 16),
                        let u = Unicode.Scalar(v)
                    {
                        replacement = String(u)
                    } else if entity.hasPrefix("#"), let v = UInt32(entity.dropFirst()), let u = Unicode.Scalar(v) {
                        replacement = String(u)
                    }
                }
                if let replacement {
                    out += replacement
                    i = s.index(after: semi)
                    continue
                }
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        return out
    }
}
