// A column block's string table (docs/format/columns.md): the first strings of the segment dictionary that its
// `segmentStrings` column names, then the block's own from its `dictionary` column. The own strings are checked
// when the table is read — every check decoding them makes, so damage is found as before — and each `String` is
// built the first time a row names it: a query that asks for some rows of a block names a few of its strings,
// and building all of them was a fifth of a count and a tenth of a search.

/// The strings rows of one column block name by number. Not shared between threads: one decoder's.
package final class BlockStrings {
    /// The segment's dictionary; its first `segmentCount` strings are this table's first.
    private let segment: SegmentDictionary
    private let segmentCount: Int
    /// The strings built for this block, in the order built: segment string `i` is `built[sharedPlace[i]]`, own
    /// string `k` is `built[ownPlace[k]]` (-1 until built); each table of places is made when its first string is
    /// asked for. Places of four bytes rather than a `String?` of sixteen for each of the segment's thousands of
    /// strings: that array, made for every block read, was a fifteenth of a heavy search's page faults.
    private var sharedPlace: [Int32] = []
    private var ownPlace: [Int32] = []
    private var built: [String] = []
    /// A string's bytes, gathered before it is built (one buffer for all, not an array for each).
    private var scratch: [UInt8] = []
    /// The `dictionary` column and where each own string starts in it.
    private let column: [UInt8]
    private let starts: [Int32]
    /// How many strings rows may name.
    package let count: Int

    /// An empty table, or one of strings decoded already.
    package init(strings: [String] = []) {
        segment = SegmentDictionary(strings: strings)
        segmentCount = strings.count
        column = []
        starts = []
        count = strings.count
    }

    /// The table of a block whose `dictionary` column is `column`, its strings starting at `starts` (from
    /// `starts(_:)`, which checks them), naming `segmentCount` strings of `segment` (checked by the caller).
    init(column: [UInt8], starts: [Int32], segment: SegmentDictionary?, segmentCount: Int) {
        self.column = column
        self.segment = segment ?? SegmentDictionary(strings: [])
        self.segmentCount = segmentCount
        self.starts = starts
        count = segmentCount + starts.count
    }

    /// Where each string of a `dictionary` column starts, every string checked as `TokenizedString.decode` checks it.
    static func starts(_ column: [UInt8]) throws(LogFormatError) -> [Int32] {
        try column.withBytes { (b) throws(LogFormatError) -> [Int32] in
            var r = BinaryReader(b)
            let n = try r.uvarint(max: b.count, "a string count")
            var out: [Int32] = []
            out.reserveCapacity(n)
            var scratch: [UInt8] = []
            for _ in 0..<n {
                out.append(Int32(r.offset))
                try TokenizedString.check(&r, scratch: &scratch)
            }
            try ColumnBlock.Decoder.end(r, .dictionary)
            return out
        }
    }

    /// String `i` (`i` < `count`, checked by the caller).
    package func string(_ i: Int) throws(LogFormatError) -> String {
        if i < segmentCount {
            if sharedPlace.isEmpty { sharedPlace = Array(repeating: -1, count: segmentCount) }
            let place = Int(sharedPlace[i])
            if place >= 0 { return built[place] }
            scratch.removeAll(keepingCapacity: true)
            try segment.appendUTF8(i, to: &scratch)
            let s = try TokenizedString.string(scratch)
            sharedPlace[i] = Int32(built.count)
            built.append(s)
            return s
        }
        let k = i - segmentCount
        if ownPlace.isEmpty { ownPlace = Array(repeating: -1, count: starts.count) }
        let place = Int(ownPlace[k])
        if place >= 0 { return built[place] }
        scratch.removeAll(keepingCapacity: true)
        try column.withBytes { (b) throws(LogFormatError) in
            var r = BinaryReader(b, offset: Int(starts[k]))
            try TokenizedString.decode(&r, appendingTo: &scratch)
        }
        let s = try TokenizedString.string(scratch)
        ownPlace[k] = Int32(built.count)
        built.append(s)
        return s
    }

    /// Appends the UTF-8 bytes of string `i` to `out`, without building a `String` for it.
    package func appendUTF8(_ i: Int, to out: inout [UInt8]) throws(LogFormatError) {
        if i < segmentCount {
            if !sharedPlace.isEmpty, sharedPlace[i] >= 0 {
                var s = built[Int(sharedPlace[i])]
                s.withUTF8 { out.append(contentsOf: $0) }
                return
            }
            try segment.appendUTF8(i, to: &out)
            return
        }
        let k = i - segmentCount
        if !ownPlace.isEmpty, ownPlace[k] >= 0 {
            var s = built[Int(ownPlace[k])]
            s.withUTF8 { out.append(contentsOf: $0) }
            return
        }
        try column.withBytes { (b) throws(LogFormatError) in
            var r = BinaryReader(b, offset: Int(starts[k]))
            try TokenizedString.decode(&r, appendingTo: &out)
        }
    }

    /// Every string, built.
    package func all() throws(LogFormatError) -> [String] {
        var out: [String] = []
        out.reserveCapacity(count)
        for i in 0..<count { out.append(try string(i)) }
        return out
    }
}
