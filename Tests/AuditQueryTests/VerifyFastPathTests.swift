import Foundation
import Logging
import StoreQuery
import Testing

@testable import LogFormat

/// `verify` reads only the indexed fields of records whose bytes hash to the sealed root; it must reach the
/// same verdicts as decoding every record, and still name a record that does not decode when the root differs.
@Suite struct VerifyFastPathTests {
    static func uncompressedStore(_ path: String) throws -> DataDirectory {
        let dir = DataDirectory(path + "/data")
        var options = WriterOptions()
        options.codec = .none
        // Rows, so a record's canonical bytes lie in the file as they are and can be edited in place.
        options.sealLayout = .rows
        let writer = try SegmentWriter(directory: dir, options: options, logger: CraftedStore.logger)
        let s = try CraftedStore()  // borrows its events
        _ = try writer.append([
            s.edge1, s.sidecar1, s.app1, s.analytics1, s.early1, s.orphan1, s.edge2, s.app2, s.edge3,
        ])
        _ = try writer.seal()
        return dir
    }

    @Test func fastAndFullVerificationAgreeOnIntactData() throws {
        let s = try CraftedStore(signed: true)
        _ = try s.writer.seal()
        let fast = Verifier.verifyDirectory(s.directory, options: VerifyOptions(publicKeys: [s.signer!.publicKey]))
        let full = Verifier.verifyDirectory(
            s.directory, options: VerifyOptions(publicKeys: [s.signer!.publicKey], decodeAll: true))
        #expect(fast.problems.isEmpty, "\(fast.problems)")
        #expect(full.problems.isEmpty, "\(full.problems)")
        #expect(fast.segments.map(\.recordsChecked) == full.segments.map(\.recordsChecked))
        #expect(fast.segments.count == 3)
        // The fields read without decoding give the same index terms and start time as a full decode.
        for v in fast.segments {
            let reader = try SegmentReader(path: v.path, sealed: true)
            for b in reader.blocks.indices {
                try reader.forEachRecord(inBlock: b) { (_, record) throws(LogFormatError) in
                    let event = try RecordCodec.decode(record)
                    let (terms, start) = try Verifier.indexedFields(record)
                    var a: [String] = []
                    var e: [String] = []
                    terms.forEachTerm { f, t in a.append("\(f)=\(t)") }
                    RecordTerms(event).forEachTerm { f, t in e.append("\(f)=\(t)") }
                    #expect(a == e)
                    #expect(start == event.startTimeUnixNano)
                }
            }
        }
    }

    @Test func aRecordThatNoLongerDecodesIsNamedEvenWithForgedChecksums() throws {
        var template = Array((NSTemporaryDirectory() + "/auditq-fast-XXXXXX").utf8CString)
        let path = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let dir = try Self.uncompressedStore(path)
        let file = dir.segmentsPath + "/" + (try dir.listSegmentFiles().sealed[0])
        let reader = try SegmentReader(path: file, sealed: true)
        var first: [UInt8] = []
        try reader.forEachRecord(inBlock: 0) { (ordinal, record) throws(LogFormatError) in
            if ordinal == 0 { first = Array(record) }
        }
        let blockStart = Int(reader.blocks[0].offset)
        let payloadStart = blockStart + FormatConstants.blockHeaderSize
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        // Find the first record in the stored (uncompressed) payload and make its last byte a string length
        // that runs past the record's end: the record no longer decodes, its indexed fields still do.
        let payloadEnd = payloadStart + Int(reader.blocks[0].storedLength)
        let at = try #require(
            (payloadStart..<payloadEnd - first.count).first { bytes[$0..<$0 + first.count].elementsEqual(first) })
        let last = at + first.count - 1
        #expect(bytes[last] == 0)
        bytes[last] = 0x05
        let header = try bytes.withBytes { (b) throws(LogFormatError) in
            try BlockHeader.parse(UnsafeRawBufferPointer(rebasing: b[blockStart...]))
        }
        var h = header
        h.payloadCRC = Checksum.crc32(bytes[payloadStart..<payloadEnd])
        var w = BinaryWriter()
        h.write(into: &w)
        bytes.replaceSubrange(blockStart..<payloadStart, with: w.bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: file))

        let v = Verifier.verifySegment(path: file)
        let damaged = try #require(v.problems.first { $0.kind == .recordDamaged })
        #expect(damaged.block == 0)
        #expect(damaged.record == 0)
        #expect(damaged.file == file)
        #expect(v.recordsChecked == 9)
    }
}
