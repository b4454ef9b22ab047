import ArgumentParser
import AuditQuery
import LogFormat
import StoreQuery
import Synchronization

extension AuditQ {
    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "search",
            abstract: "Events matching all the given conditions and the time range.")
        @OptionGroup var data: DataOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var time: TimeOptions
        @OptionGroup var output: FormatOptions
        @OptionGroup var filters: FilterOptions
        @OptionGroup var terms: TermOptions
        @Option(help: "At most this many events.") var limit: Int?
        @Flag(help: "Table output: also print each event's whole trace as a tree.") var traces = false

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() throws {
            let zone = try time.zone
            let range = try time.range()
            let store = try self.store.openStore(data, timeRange: range, provisional: true)
            progress("searching…")
            let query = EventQuery(terms: terms.terms, timeRange: range, limit: limit, filter: try filters.filter())
            // JSON is written straight from the column blocks when the query needs no decoded events, each
            // segment's lines as soon as the segments that could hold earlier ones are read, so that the blocks of
            // the lines written are freed for later ones (over a bucket, as one answer: `answer` may ask again).
            if try output.resolved() == .json, store.remotes.isEmpty,
                let search = try store.searchInOrder(query)
            {
                var merge = search.merge()
                let first = try merge.start()
                let merging = Mutex(merge)
                progressDone()
                let written = try writeLinesInOrder(
                    first: first.map { LineBatch($0, $0.handles) }, reads: search.count,
                    read: { (i) throws(LogFormatError) in try search.read(i) },
                    merge: { (i, rows) throws(LogFormatError) in
                        try merging.withLock { (m) throws(LogFormatError) in try m.add(i, rows) }
                            .map { LineBatch($0, $0.handles) }
                    }, run: 128, key: \.block, cores: search.shared ? onlineCores : 1, renderer: { RowJSON($0) },
                    { (writer, h, buffer) throws(LogFormatError) in try writer.line(h, into: buffer) },
                    write: { writeStdout(UnsafeRawBufferPointer($0)) })
                guard written > 0 else {
                    note("no matching events")
                    return
                }
                exitAfterAnswer()
            }
            if try output.resolved() == .json,
                let found = try store.answer({ (s) throws(LogFormatError) in try s.searchHandles(query) })
            {
                progressDone()
                guard !found.handles.isEmpty else {
                    note("no matching events")
                    return
                }
                try writeLinesOnEveryCore(found.handles, run: 256, key: \.block, renderer: RowJSON(found)) {
                    (writer, h, buffer) throws(LogFormatError) in try writer.line(h, into: buffer)
                }
                exitAfterAnswer()
            }
            let records = try store.answer { (s) throws(LogFormatError) -> [StoredRecord] in try s.search(query) }
            progressDone()
            guard !records.isEmpty else {
                note("no matching events")
                return
            }
            emit(records, format: try output.resolved(), zone: zone, palette: output.palette)
            if traces, try output.resolved() == .table {
                let ids = Array(Set(records.map(\.event.traceID).filter { !$0.isZero }))
                let found = try store.traces(ids)
                for id in ids.sorted() {
                    print("\ntrace \(id.hex)")
                    print(Rendering.traceTree(found[id] ?? [], zone: zone, palette: output.palette))
                }
            }
            exitAfterAnswer()
        }
    }
}
