// S3 answers (ListBucketResult, Error) are flat documents of known elements, so a small scanner reads them;
// FoundationXML would pull libxml2 into every binary that links this module.
enum XMLScan {
    /// The text inside each `<name>…</name>` in `text`, in order, entities decoded. Elements of that name must not
    /// nest, which holds for every element this module reads.
    static func all(_ name: String, in text: Substring) -> [Substring] {
        let open = "<\(name)>"
        let close = "</\(name)>"
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
