// Readers survive a live writer (issue 16): the collector may cut an `.open` segment (torn-tail recovery, the
// rollback of a refused batch) while a reader holds it. A reader must not crash (a cut memory map raises SIGBUS)
// and answers from blocks that were complete.
import Foundation
import TestSupport
import Testing

@testable import LogFormat

@Suite struct OpenSegmentTruncationTests {
    @Test(arguments: [false, true])
    func aReaderOfAnOpenSegmentSurvivesTheFileBeingCutUnderIt(toHeaderOnly: Bool) throws {
        let tmp = TempDir()
        defer { tmp.remove() }
        var options = WriterOptions()
        options.targetBlockBytes = 2 << 10
        let writer = try SegmentWriter(directory: tmp.dataDirectory, options: options, logger: quietLogger)
        try writer.append(FaultEvents.batch(1, 2_000))
        try writer.flush()
        let path = tmp.dataDirectory.segmentsPath + "/" + (try tmp.dataDirectory.listSegmentFiles().open[0])
        let reader = try SegmentReader(path: path, sealed: false)
        #expect(reader.tailProblem == nil)
        // Cut pages the reader has not yet read from (with a memory map, pages past the new end raise SIGBUS).
        let kept = try #require(reader.blocks.firstIndex { $0.offset > 8_192 })
        let cut = toHeaderOnly ? FormatConstants.fileHeaderSize : Int(reader.blocks[kept].offset) + 20
        #expect(truncate(path, off_t(cut)) == 0)

        // The reader opened before the cut answers from what was complete when it was opened (before the fix
        // this scan died of SIGBUS).
        let before = try reader.scan().map(\.event.spanID.value).sorted()
        #expect(before == Array(1...2_000))

        // A reader opened after the cut answers from the complete blocks and reports the cut block.
        let after = try SegmentReader(path: path, sealed: false)
        #expect(after.blocks.count == (toHeaderOnly ? 0 : kept))
        if toHeaderOnly {
            #expect(after.tailProblem == nil)
        } else {
            #expect(after.tailProblem?.code == .truncated)
        }
        let prefix = try after.scan().map(\.event.spanID.value)
        #expect(prefix.count == Int(after.recordCount))
        #expect(Set(prefix).isSubset(of: Set(1...2_000)))
    }
}
