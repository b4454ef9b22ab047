// Readers survive a live writer (issue 16), across processes: `auditq search` runs in a loop while another
// thread appends to and cuts the `.open` segment it reads, as the collector does when it recovers a torn tail
// or rolls back a refused batch. No auditq may die of a signal, and every answer holds only appended records.
import Dispatch
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import LogFormat

@Suite(.ownThreads) struct LiveSegmentQueryTests {
    @Test func auditqQueriesSurviveAnOpenSegmentBeingAppendedAndCut() throws {
        let tmp = TempDir("live-segment")
        defer { tmp.remove() }
        let dir = tmp.dataDirectory
        var options = WriterOptions()
        options.targetBlockBytes = 4 << 10
        let truth: Set<String>
        do {
            let writer = try SegmentWriter(directory: dir, options: options, logger: quietLogger)
            let events = (0..<3_000).map { RandomEvents.small(seed: UInt64($0)) }
            try writer.append(events)
            try writer.flush()
            truth = Set(events.map { String(format: "%016llx", $0.spanID.value) })
        }  // the writer goes away without sealing: the `.open` file stays, as after a crash
        let path = dir.segmentsPath + "/" + (try dir.listSegmentFiles().open[0])
        let full = try FileIO.readFile(path)
        let stopWriting = Atomic(false)
        let cuts = Atomic(0)

        // On a thread of its own: a block queued on a global queue waited behind other suites' blocked pool
        // threads for the whole test once (CI, no cut made in 87 s).
        let writing = DispatchSemaphore(value: 0)
        let writer = Thread {
            defer { writing.signal() }
            let fd = open(path, O_RDWR)
            defer { close(fd) }
            var g = SplitMix(42)
            while !stopWriting.load(ordering: .acquiring) {
                // Cut to anywhere from just the header to mid-block, hold it, then append the rest in pieces.
                let cut =
                    FormatConstants.fileHeaderSize + Int(g.next() % UInt64(full.count - FormatConstants.fileHeaderSize))
                _ = ftruncate(fd, off_t(cut))
                cuts.add(1, ordering: .relaxed)
                usleep(UInt32(g.next() % 2_000))
                var at = cut
                while at < full.count {
                    let n = min(full.count - at, 1 + Int(g.next() % 8_192))
                    _ = full[at..<at + n].withUnsafeBytes { pwrite(fd, $0.baseAddress, n, off_t(at)) }
                    at += n
                    if g.next() % 4 == 0 { usleep(200) }
                }
            }
        }
        writer.start()

        var runs = 0
        var failures: [String] = []
        // Twenty queries, or as many as 8 seconds allow on a loaded machine.
        let deadline = Date().addingTimeInterval(8)
        while runs < 20 && Date() < deadline {
            let r = try ChildProcess.run(
                ChildProcess.product("auditq"), ["search", "--data", tmp.path + "/data", "--format", "json"],
                within: 30)
            runs += 1
            if r.signalled || r.status != 0 {
                failures.append("run \(runs): status \(r.status), signalled \(r.signalled): \(r.stderr.prefix(300))")
                continue
            }
            for line in r.stdout.split(separator: "\n") {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                let event = try #require(object?["event"] as? [String: Any], "\(line)")
                let span = try #require(event["span_id"] as? String)
                if !truth.contains(span) { failures.append("run \(runs): span \(span) was never appended") }
            }
        }
        stopWriting.store(true, ordering: .releasing)
        writing.wait()
        #expect(failures.isEmpty, "\(failures.count) of \(runs) runs failed: \(failures.prefix(5))")
        #expect(runs >= 3)
        #expect(cuts.load(ordering: .relaxed) >= 5)
    }
}
