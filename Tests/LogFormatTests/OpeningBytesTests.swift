// A sealed local segment opened by path reads its file header, footer and index head from copies read with pread
// (`SegmentOpeningBytes`), and the rest through the file's mapping. Opened over the mapping alone it must be the
// same segment, or fail with the same error, however the file is damaged where those copies come from.
import Foundation
import PropertyBased
import Synchronization
import SyntheticTraffic
import TestSupport
import Testing

@testable import LogFormat

@Suite struct OpeningBytesTests {
    /// A sealed version 2 segment (column blocks, sectioned index) of 300 events of the generator's traffic.
    static func sealed(_ tmp: TempDir) throws -> (path: String, bytes: [UInt8]) {
        var options = WriterOptions()
        options.targetBlockBytes = 16 << 10
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        var traffic = TrafficGenerator(seed: 11)
        try writer.append(traffic.nextEvents(300))
        let entry = try #require(try writer.seal())
        let path = tmp.dataDirectory.path(relative: entry.relativePath)
        return (path, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    struct Read: Equatable {
        var header: SegmentFileHeader
        var footer: SegmentFooter?
        var blocks: [BlockLocation]
        var records: [AuditEvent]
        var traceBlocks: [Int]
    }

    /// Everything a reader gives of the segment: its parts, every record, and an index look-up.
    static func read(_ open: () throws -> SegmentReader) -> Result<Read, LogFormatError> {
        do {
            let reader = try open()
            try reader.checkIndex()
            let records = try reader.scan()
            let trace = records.first?.event.traceID ?? TraceID(hex: String(repeating: "0", count: 32))!
            return .success(
                Read(
                    header: reader.header, footer: reader.footer, blocks: reader.blocks, records: records.map(\.event),
                    traceBlocks: try reader.index?.traceBlocks(trace) ?? []))
        } catch let error as LogFormatError {
            return .failure(error)
        } catch {
            return .failure(LogFormatError(.io, "\(error)"))
        }
    }

    /// Compares the two ways of opening `path`; returns the error code both gave, nil when both read it.
    @discardableResult
    static func expectSameRead(_ path: String, _ place: String) -> LogFormatError.Code? {
        let copies = read { try SegmentReader(path: path, sealed: true) }
        let mapped = read { try SegmentReader(source: try MappedFile(path: path), sealed: true) }
        switch (copies, mapped) {
        case (.success(let a), .success(let b)):
            #expect(a == b, "\(place)")
            return nil
        case (.failure(let a), .failure(let b)):
            #expect(a.code == b.code && a.message == b.message && a.offset == b.offset, "\(place): \(a) / \(b)")
            return a.code
        default:
            Issue.record("\(place): from the copies \(copies), through the mapping \(mapped)")
            return nil
        }
    }

    @Test func anUndamagedSegmentReadsTheSameBothWays() throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, _) = try Self.sealed(tmp)
        let reader = try SegmentReader(path: path, sealed: true)
        #expect(reader.index?.version ?? 0 >= FormatConstants.indexVersion)
        #expect(reader.isColumnBlock(0))
        guard case .success(let read) = Self.read({ try SegmentReader(path: path, sealed: true) }) else {
            Issue.record("the sealed segment does not read")
            return
        }
        #expect(read.records.count == 300)
        #expect(!read.traceBlocks.isEmpty)
        Self.expectSameRead(path, "undamaged")
    }

    /// A byte flipped in the header, the index head or the footer — the places read from copies — or the file cut
    /// or lengthened: the same outcome both ways.
    @Test func damageWhereTheCopiesComeFromGivesTheSameOutcome() async throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        let (path, original) = try Self.sealed(tmp)
        let footer = try MappedFile(path: path).withBytes { (b) throws(LogFormatError) in
            try SegmentFooter.parse(fileBytes: b)
        }
        let headRange = SegmentReader.openingRanges(footer, fileSize: original.count)[1]
        // Offsets in the header, the index block header and head, and the footer.
        let places =
            Array(0..<FormatConstants.fileHeaderSize) + Array(headRange)
            + Array((original.count - FormatConstants.footerSize)..<original.count)
        let seen = Mutex<Set<LogFormatError.Code>>([])
        await propertyCheck(
            count: 300, input: Gen.int(in: 0...(places.count - 1)), Gen.int(in: 0...7), Gen.int(in: 0...3)
        ) {
            pick, bit, kind in
            var damaged = original
            let offset = places[pick]
            switch kind {
            case 0, 1: damaged[offset] ^= 1 << UInt8(bit)
            case 2: damaged = Array(damaged.prefix(offset))
            default: damaged += [UInt8](repeating: UInt8(bit), count: offset % 700 + 1)
            }
            try? Data(damaged).write(to: URL(fileURLWithPath: path))
            if let code = Self.expectSameRead(path, "kind \(kind) at \(offset), bit \(bit)") {
                seen.withLock { _ = $0.insert(code) }
            }
        }
        // The damage reached each kind of check the copies feed.
        #expect(
            seen.withLock { $0.isSuperset(of: [.badMagic, .checksumMismatch, .truncated]) }, "\(seen.withLock { $0 })")
    }
}
