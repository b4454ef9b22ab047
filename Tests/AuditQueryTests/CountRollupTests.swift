// Counting from the segments' count rollups (docs/format/index.md, "Count rollup"): equal to counting from columns
// and to a brute-force count of the distinct stored events, with retry copies within and across segments and
// directories; refused when the rollup is damaged; rebuilt and compared by verify; kept by the archive step.
import Foundation
import PropertyBased
import SyntheticTraffic
import TestSupport
import Testing

@testable import AuditQuery
@testable import LogFormat
@testable import StoreQuery

@Suite struct CountRollupTests {
    static let hour: UInt64 = 3_600_000_000_000

    /// Rollup counts equal the column path and brute force over every grouping and condition, on directories of
    /// version 3 indexes (rollups), version 2 indexes (none), version 1 segments and mixes, with copies of events
    /// (some without a trace id) stored in one segment, two segments and two directories, for aligned, whole and
    /// cut time ranges. Where every segment has a rollup, nothing is unsealed and the range is whole hours, the
    /// rollups answer (unless records without a trace id would need matching across segments).
    @Test func rollupCountEqualsColumnsAndBruteForce() async throws {
        await propertyCheck(
            count: 40, input: Gen.uint64(in: 0...UInt64.max), Gen.int(in: 0...3), Gen.int(in: 0...8)
        ) { seed, layout, condition in
            let tmp = TempDir("auditq-count-rollup")
            defer { tmp.remove() }
            var rng = SplitMix(seed ^ 0xC0FFEE)
            let layouts: [[Layout]] = [[.rollup], [.rollup, .rollup], [.rows, .rollup], [.noRollup, .rollup]]
            let sealLayouts = layouts[layout].map { $0 == .rows ? SealLayout.rows : .columns }
            let openTail = Int.random(in: 0..<4, using: &rng) == 0
            let withoutTrace = Int.random(in: 0..<3, using: &rng) == 0
            let (directories, writers, stored) = try CountTests.build(
                root: tmp.path, seed: seed, layouts: sealLayouts, countRollups: layouts[layout].map { $0 == .rollup },
                openTail: openTail, withoutTrace: withoutTrace)
            let times = stored.map(\.startTimeUnixNano).sorted()
            let t = times[Int.random(in: 0..<times.count, using: &rng)]
            let low = t - t % Self.hour
            let rangeKind = Int.random(in: 0..<4, using: &rng)
            let range: ClosedRange<UInt64>? =
                switch rangeKind {
                case 0: nil
                case 1: low...(low + Self.hour - 1)
                case 2: low...(low + UInt64(Int.random(in: 2...4, using: &rng)) * Self.hour - 1)
                default: (low + 1)...(t + 1)
                }
            var query = EventQuery(timeRange: range)
            CountTests.apply(condition: condition, to: &query)
            // The verifier rebuilds each rollup from the records, reading only some fields of each (and logs
            // whole), or decoding every record: both equal what sealing counted.
            for directory in directories {
                for name in try directory.listSegmentFiles().sealed {
                    let path = directory.segmentsPath + "/" + name
                    var all = VerifyOptions()
                    all.decodeAll = true
                    #expect(Verifier.verifySegment(path: path).isValid, "seed \(seed), \(name)")
                    #expect(Verifier.verifySegment(path: path, options: all).isValid, "seed \(seed), \(name)")
                }
            }
            let store = try AuditStore(directories: directories)
            let keySets: [[CountKey]] =
                CountKey.allCases.map { [$0] } + [
                    [.service, .statusClass], [.edgeStatus, .source], [.workload, .service, .edgeStatus],
                    [.service, .user],
                ]
            let rollupsCanAnswer =
                layouts[layout].allSatisfy { $0 == .rollup } && !openTail && !withoutTrace && rangeKind < 3
                && condition != 5 && condition != 6 && condition != 7
            for keys in keySets {
                var groups: [[String]: Int] = [:]
                let events = query.includeDuplicates ? stored : Array(Set(stored))
                for e in events where query.matches(e) { groups[keys.map { $0.value(e) }, default: 0] += 1 }
                let what =
                    "seed \(seed), layouts \(layouts[layout]), keys \(keys), condition \(condition), range \(rangeKind)"
                let summed = try store.countFromRollups(query, by: keys)
                if let summed { #expect(summed == groups, "\(what)") }
                if rollupsCanAnswer && !keys.contains(.user) && !keys.contains(.route) {
                    #expect(summed != nil, "the rollups did not answer: \(what)")
                }
                #expect(try store.countFromColumns(query, by: keys) == groups, "\(what)")
                let counted = try store.count(query, by: keys)
                var answer: [[String]: Int] = [:]
                for g in counted { answer[g.values] = g.count }
                #expect(answer == groups, "\(what)")
            }
            withExtendedLifetime(writers) {}
        }
    }

    /// A copy stored in two segments is in both rollups; the sum is corrected by the traces the segments share,
    /// and only then equals the distinct count. With the first segment an archive copy (trace prefixes of three
    /// bytes, index layout 10) beside a hot one (four), the prefixes compare at three bytes and the correction holds.
    @Test(arguments: [false, true]) func copiesInTwoSegmentsCountOnce(archiveFirst: Bool) throws {
        let tmp = TempDir("auditq-count-rollup-copies")
        defer { tmp.remove() }
        var g = TrafficGenerator(
            configuration: .init(seed: 3, userCount: 4, days: 1, requestsPerDay: 100, serviceCount: 3))
        let request = g.nextRequest()
        let next = g.nextRequest()
        let directory = try Self.directory(tmp.path + "/data", node: 7)
        let writer = try SegmentWriter(directory: directory, options: WriterOptions(), logger: quietLogger)
        _ = try writer.append(request)
        _ = try writer.seal()
        _ = try writer.append(request + next)  // a client's retry of the whole batch, and more
        _ = try writer.seal()
        let store = try AuditStore(directories: [directory])
        var readers = try directory.listSegmentFiles().sealed.sorted().map {
            try SegmentReader(path: directory.segmentsPath + "/" + $0, sealed: true)
        }
        #expect(readers.count == 2)
        if archiveFirst {
            let path = tmp.path + "/archived.seg"
            try Data(try SegmentArchiver.archived(readers[0])).write(to: URL(fileURLWithPath: path))
            readers[0] = try SegmentReader(path: path, sealed: true)
            #expect(readers[0].index?.tracePrefixBits == 24 && readers[1].index?.tracePrefixBits == 32)
        }
        let correction = try store.sharedTraceCorrection(readers, query: EventQuery(), keys: [.service])
        let corrected: Int = correction.values.reduce(0, +)
        #expect(corrected == -Set(request).count)
        let summed = try #require(try store.countFromRollups(EventQuery(), by: [.service]))
        #expect(summed == (try store.countFromColumns(EventQuery(), by: [.service])))
        let total: Int = summed.values.reduce(0, +)
        #expect(total == Set(request + next).count)
        withExtendedLifetime(writer) {}
    }

    /// docs/format/index.md, "Count rollup", worked example, byte for byte; a copy (the same leaf) counts once.
    @Test func workedExample() throws {
        func span(_ service: String) -> CountRollupKind {
            CountRollupKind(
                kind: .span, source: .app, status: .unset, service: service, workload: nil, hasHTTP: false,
                method: nil, httpStatus: 0, isLedger: false, hasTraceID: true)
        }
        let leaf0 = try #require(Digest32(bytes: [UInt8](repeating: 1, count: 32)))
        let leaf1 = try #require(Digest32(bytes: [UInt8](repeating: 2, count: 32)))
        var b = CountRollupBuilder()
        b.add(span("orders"), start: 1_700_000_000_000_000_000, leaf: leaf0)
        b.add(span("inventory"), start: 1_700_000_000_000_200_000, leaf: leaf1)
        b.add(span("inventory"), start: 1_700_000_000_000_200_000, leaf: leaf1)
        var expected: [UInt8] = [0x00, 0x90, 0x1c, 2, 9] + Array("inventory".utf8) + [6] + Array("orders".utf8)
        expected += [2, 1, 3, 0, 0, 0, 0, 1, 3, 0, 0, 1, 0]
        expected += [1, 0x9e, 0xe9, 0x1c, 2, 0, 1, 0, 1]
        #expect(b.serialize() == expected)
        #expect(expected.count == 43)
    }

    enum Layout: CustomStringConvertible {
        case rows, noRollup, rollup
        var description: String {
            switch self {
            case .rows: "v1"
            case .noRollup: "v2"
            case .rollup: "v3"
            }
        }
    }

    static func directory(_ path: String, node: UInt64) throws -> DataDirectory {
        let directory = DataDirectory(path)
        try FileManager.default.createDirectory(atPath: directory.root, withIntermediateDirectories: true)
        try (NodeID(high: node, low: node &* 31).hex + "\n").write(
            toFile: directory.nodeIDPath, atomically: true, encoding: .utf8)
        return directory
    }
}

/// Damage, tampering and the archive step, on one sealed segment of generated traffic.
@Suite struct CountRollupFileTests {
    /// A directory of one sealed version 3 segment; returns it and the segment's path.
    static func sealed(_ root: String, layout: SealLayout = .columns) throws -> (DataDirectory, String) {
        var g = TrafficGenerator(
            configuration: .init(seed: 11, userCount: 6, days: 1, requestsPerDay: 200, serviceCount: 4))
        let directory = try CountRollupTests.directory(root + "/data", node: 5)
        var options = WriterOptions()
        options.sealLayout = layout
        let writer = try SegmentWriter(directory: directory, options: options, logger: quietLogger)
        let batch = (0..<60).flatMap { _ in g.nextRequest() }
        _ = try writer.append(batch + batch.prefix(5))  // retry copies: the rollup counts fewer than the records
        _ = try writer.seal()
        let name = try #require(try directory.listSegmentFiles().sealed.first)
        return (directory, directory.segmentsPath + "/" + name)
    }

    static func u64(_ b: [UInt8], _ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) } }
    static func u32(_ b: [UInt8], _ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) } }
    static func put32(_ b: inout [UInt8], _ at: Int, _ v: Int) {
        for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }

    /// Rewrites the index payload of the segment at `path` with `transform`, then sets the index block's lengths
    /// and CRCs and the footer's index length and CRC, as a tamperer who knows the format would.
    static func rewriteIndex(_ path: String, _ transform: (inout [UInt8]) throws -> Void) throws {
        let file = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let footerAt = file.count - FormatConstants.footerSize
        var footer = Array(file[footerAt...])
        let indexAt = u64(footer, 208)
        var header = Array(file[indexAt..<indexAt + 48])
        var payload = Array(file[indexAt + 48..<footerAt])
        try transform(&payload)
        put32(&header, 8, payload.count)
        put32(&header, 12, payload.count)
        put32(&header, 40, Int(Checksum.crc32(payload)))
        put32(&header, 44, Int(Checksum.crc32(header[0..<44])))
        for i in 0..<8 { footer[216 + i] = UInt8(truncatingIfNeeded: (48 + payload.count) >> (8 * i)) }
        put32(&footer, 232, Int(Checksum.crc32(footer[0..<232])))
        try Data(Array(file[..<indexAt]) + header + payload + footer).write(to: URL(fileURLWithPath: path))
    }

    /// Rewrites the rollup section: `transform` gets its body inflated and returns the new body, which `stored`
    /// makes the section's bytes (by default stored as is, `rawLength` 0). `fixCRC` sets the section's directory
    /// entry and the head's CRC to match.
    static func rewriteRollup(
        _ path: String, fixCRC: Bool = true, stored store: ([UInt8]) throws -> [UInt8] = { [0] + $0 },
        _ transform: ([UInt8]) -> [UInt8]
    ) throws {
        try rewriteIndex(path) { payload in
            let sections = Int(payload[2]) | Int(payload[3]) << 8
            let blocks = u32(payload, 4)
            let directory = 8 + blocks * 40
            let entry = try #require((0..<sections).map { directory + $0 * 20 }.first { payload[$0] == 6 })
            let start = u32(payload, entry + 8)
            let length = u32(payload, entry + 12)
            #expect(start + length == payload.count, "the rollup is the last section")
            let stored = Array(payload[start..<start + length])
            var body: [UInt8] = []
            try stored.withBytes { (b) throws(LogFormatError) in
                var r = BinaryReader(b)
                let raw = try r.uvarint(max: 1 << 24, "length")
                let rest = try r.rawSlice(r.remaining)
                if raw == 0 {
                    body = Array(rest)
                } else {
                    try BlockCompression.decompress(rest, codec: .zlib, rawLength: raw, into: &body)
                }
            }
            let section = try store(transform(body))
            payload = Array(payload[..<start]) + section
            put32(&payload, entry + 12, section.count)
            if fixCRC { put32(&payload, entry + 16, Int(Checksum.crc32(section))) }
            // The head's CRC is set either way: its directory holds the section's new length.
            let headEnd = directory + sections * 20
            put32(&payload, headEnd, Int(Checksum.crc32(payload[..<headEnd])))
        }
    }

    /// The last count of the last bucket plus one (a one-byte varint below 127 in generated data; the segment holds
    /// retry copies, so the counts stay below its records, which a reader checks).
    static func oneMore(_ body: [UInt8]) -> [UInt8] {
        var b = body
        precondition(b[b.count - 1] < 0x7F)
        b[b.count - 1] += 1
        return b
    }

    /// A rollup changed with every checksum set to match: `count` believes it (derived data, as the index
    /// terms are), and `verify`, which rebuilds the index from the records, reports the index, naming the rollup.
    @Test func verifyCatchesAChangedRollup() throws {
        let tmp = TempDir("auditq-rollup-tamper")
        defer { tmp.remove() }
        let (directory, path) = try Self.sealed(tmp.path)
        #expect(Verifier.verifySegment(path: path).isValid)
        let before = try AuditStore(directories: [directory]).countFromRollups(EventQuery(), by: [.source])
        try Self.rewriteRollup(path, Self.oneMore)
        let store = try AuditStore(directories: [directory])
        let after = try #require(try store.countFromRollups(EventQuery(), by: [.source]))
        let beforeTotal: Int = before?.values.reduce(0, +) ?? 0
        let afterTotal: Int = after.values.reduce(0, +)
        #expect(afterTotal == beforeTotal + 1)
        let problems = Verifier.verifySegment(path: path).problems
        #expect(problems.count == 1)
        #expect(problems.first?.kind == .indexMismatch)
        #expect(problems.first?.detail.hasSuffix("sections that differ: counts)") == true, "\(problems)")
    }

    /// Hostile rollup bytes (checksums set to match, or not) are refused with an error naming the rollup: never a
    /// wrong count, never a crash. The column path, which does not read the rollup, still answers.
    @Test(arguments: 0..<7) func hostileRollupIsRefused(_ damage: Int) throws {
        let tmp = TempDir("auditq-rollup-hostile")
        defer { tmp.remove() }
        let (directory, path) = try Self.sealed(tmp.path)
        let transforms: [([UInt8]) -> [UInt8]] = [
            { $0 + [0] },  // a byte after the last bucket
            { Array($0.dropLast()) },  // cut short
            { [0] + $0.dropFirst(2) },  // a bucket of 0 seconds (3600 is two bytes)
            { $0.map { _ in 0xFF } },  // varints that never end
            { Array($0.prefix(3)) + [0xFF, 0xFF, 0xFF, 0x7F] },  // a string count past the bytes
            { b in  // a count of 0
                var b = b
                b[b.count - 1] = 0
                return b
            },
            Self.oneMore,  // a count changed, the section's checksum left as it was
        ]
        try Self.rewriteRollup(path, fixCRC: damage != 6, transforms[damage])
        let store = try AuditStore(directories: [directory])
        do {
            let got = try store.count(EventQuery(), by: [.service])
            Issue.record("a hostile rollup gave \(got)")
        } catch {
            #expect(error.message.contains("counts"), "\(error)")
            #expect([.malformed, .truncated, .checksumMismatch, .limitExceeded].contains(error.code), "\(error)")
        }
        #expect(try !store.countFromColumns(EventQuery(), by: [.service]).isEmpty)
        #expect(!Verifier.verifySegment(path: path).isValid)
    }

    /// An oversized or lying compressed rollup (checksums set to match): a declared length past the 16 MiB limit is
    /// refused before anything is inflated, and zlib that inflates to more than it declares is refused while
    /// inflating; the count names the section, the columns still answer, verify reports the segment.
    @Test(arguments: [true, false]) func oversizedRollupIsRefused(_ pastTheLimit: Bool) throws {
        let tmp = TempDir("auditq-rollup-oversized")
        defer { tmp.remove() }
        let (directory, path) = try Self.sealed(tmp.path)
        try Self.rewriteRollup(
            path,
            stored: { body in
                // A megabyte of zeros after the body: the inflated bytes are far more than `body.count`.
                let bomb = body + [UInt8](repeating: 0, count: 1 << 20)
                var z: [UInt8] = []
                try bomb.withBytes { (b) throws(LogFormatError) in
                    try BlockCompression.compress(b, codec: .zlib, into: &z)
                }
                var w = BinaryWriter()
                w.uvarint(pastTheLimit ? CountRollup.maxRawBytes + 1 : body.count)
                return w.bytes + z
            }, { $0 })
        let store = try AuditStore(directories: [directory])
        do {
            let got = try store.count(EventQuery(), by: [.service])
            Issue.record("an oversized rollup gave \(got)")
        } catch {
            #expect(error.message.contains("counts"), "\(error)")
            // Past the limit: refused by the length, before zlib runs; otherwise by zlib.
            let expected: [LogFormatError.Code] = pastTheLimit ? [.malformed, .limitExceeded] : [.compression]
            #expect(expected.contains(error.code), "\(error)")
        }
        #expect(try !store.countFromColumns(EventQuery(), by: [.service]).isEmpty)
        #expect(!Verifier.verifySegment(path: path).isValid)
    }

    /// A reader meets an index version newer than it knows as "unsupported", not damage: how a reader from before
    /// the rollup (which knew versions 1 and 2) treats version 3.
    @Test func newerIndexVersionIsUnsupported() throws {
        let tmp = TempDir("auditq-rollup-version")
        defer { tmp.remove() }
        let (_, path) = try Self.sealed(tmp.path)
        #expect(try SegmentReader(path: path, sealed: true).index?.version == 3)
        try Self.rewriteIndex(path) { payload in
            payload[0] = 4
            let sections = Int(payload[2]) | Int(payload[3]) << 8
            let headEnd = 8 + Self.u32(payload, 4) * 40 + sections * 20
            Self.put32(&payload, headEnd, Int(Checksum.crc32(payload[..<headEnd])))
        }
        do {
            _ = try SegmentReader(path: path, sealed: true)
            Issue.record("an index of version 4 was read")
        } catch {
            #expect(error.code == .unsupportedVersion, "\(error)")
        }
    }

    /// The archive step rebuilds the rollup over the same records: the same kinds and counts, verify clean; a
    /// version 1 segment archived gains one.
    @Test(arguments: [SealLayout.columns, .rows]) func archiveKeepsTheRollup(_ layout: SealLayout) throws {
        let tmp = TempDir("auditq-rollup-archive")
        defer { tmp.remove() }
        let (directory, path) = try Self.sealed(tmp.path, layout: layout)
        let hot = try SegmentReader(path: path, sealed: true)
        let archivedPath = tmp.path + "/archived.seg"
        try Data(try SegmentArchiver.archived(hot, blockRows: 1_024)).write(to: URL(fileURLWithPath: archivedPath))
        #expect(Verifier.verifySegment(path: archivedPath).isValid)
        let archived = try #require(try SegmentReader(path: archivedPath, sealed: true).index?.countRollup())
        if layout == .columns {
            let original = try #require(try hot.index?.countRollup())
            #expect(archived.kinds == original.kinds)
            #expect(archived.buckets == original.buckets)
            #expect(archived.entryKinds == original.entryKinds)
            #expect(archived.entryCounts == original.entryCounts)
        } else {
            #expect(try hot.index?.countRollup() == nil)
            let columns = try AuditStore(directories: [directory]).countFromColumns(EventQuery(), by: [.service])
            let rolled: Int = archived.entryCounts.reduce(0, +)
            let counted: Int = columns.values.reduce(0, +)
            #expect(rolled == counted)
        }
    }
}
