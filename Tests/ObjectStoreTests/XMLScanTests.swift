// The scanner of S3's XML answers reads LIST pages from the network: over hostile and broken documents it must give
// what a plain search of the text gives (elements unclosed, nested, empty, split by multi-byte text) and never trap.
import PropertyBased
import Testing

@testable import ObjectStore

@Suite struct XMLScanTests {
    /// The same search over Swift's own string search, element after element.
    static func reference(_ name: String, in text: Substring) -> [Substring] {
        var out: [Substring] = []
        var rest = text[...]
        while let o = rest.firstRange(of: "<\(name)>") {
            guard let c = rest[o.upperBound...].firstRange(of: "</\(name)>") else { break }
            out.append(rest[o.upperBound..<c.lowerBound])
            rest = rest[c.upperBound...]
        }
        return out
    }

    /// Documents glued from the pieces a LIST page is made of, broken ones and multi-byte text among them.
    static let pieces = [
        "<Key>", "</Key>", "<Contents>", "</Contents>", "<Size>", "</Size>", "<Key", "Key>", "</Ke", "<", ">", "/",
        "a", "node/0001.seg", "é", "日本", "🔐", "&amp;", "&lt;", "&#x41;", "&#65;", "&bogus;", "&", ";", " ", "\n",
        "<ListBucketResult>", "</ListBucketResult>", "<IsTruncated>true</IsTruncated>",
    ]

    @Test func elementsAreThoseAPlainSearchFinds() async {
        await propertyCheck(count: 3_000, input: Gen.int(in: 0...1_000_000), Gen.int(in: 0...40)) { seed, n in
            var x = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1
            var doc = ""
            for _ in 0..<n {
                x ^= x << 13
                x ^= x >> 7
                x ^= x << 17
                doc += Self.pieces[Int(x % UInt64(Self.pieces.count))]
            }
            let text = doc[...]
            for name in ["Key", "Contents", "Size"] {
                #expect(XMLScan.all(name, in: text) == Self.reference(name, in: text), "\(doc)")
            }
            #expect(XMLScan.contains("<ListBucketResult", in: text) == doc.contains("<ListBucketResult"))
            // Entity decoding never traps, whatever follows an ampersand.
            for element in XMLScan.all("Key", in: text) { _ = XMLScan.decode(element) }
        }
    }

    @Test func entitiesAndBrokenDocuments() {
        #expect(XMLScan.first("Key", in: "<Key>a&amp;b&lt;&#x41;&#66;&nope;</Key>") == "a&b<AB&nope;")
        #expect(XMLScan.all("Key", in: "<Key>unclosed").isEmpty)
        #expect(XMLScan.all("Key", in: "<Key></Key><Key>x</Key>") == ["", "x"])
        #expect(XMLScan.first("Key", in: "") == nil)
        #expect(!XMLScan.contains("<ListBucketResult", in: "<ListBucket"))
        #expect(XMLScan.decode("&#x110000;&#xD800;") == "&#x110000;&#xD800;", "not scalars: kept as text")
    }
}
