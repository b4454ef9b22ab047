// Counting from the segments' count rollups (docs/format/index.md, "Count rollup"): a count over whole hours, by
// fields the rollup keeps, is the sum of the buckets in range, corrected for retry copies stored in two segments.
import LogFormat

extension AuditStore {
    /// `count` of a query without terms from the sealed segments' rollups; nil when they cannot answer it exactly
    /// (a grouping or condition they do not keep, a range that cuts a bucket, a segment without a rollup, an
    /// unsealed segment in range, records without a trace id counted in two segments): the caller then counts from
    /// columns. Equal to `countFromColumns` whenever it answers.
    /// `unsealed`: the unsealed segments' readers, when opened already.
    package func countFromRollups(
        _ query: EventQuery, by keys: [CountKey], unsealed: [SegmentReader]? = nil
    ) throws(LogFormatError) -> [[String]: Int]? {
        let filter = query.filter
        guard query.terms.isEmpty, !query.includeDuplicates, filter.pathPrefix == nil, filter.minDurationNanos == nil,
            keys.allSatisfy({ $0 != .user && $0 != .route })
        else { return nil }
        let range = query.timeRange
        func overlaps(_ low: UInt64, _ high: UInt64) -> Bool {
            range.map { high >= $0.lowerBound && low <= $0.upperBound } ?? true
        }
        for reader in try unsealedReaders(unsealed)
        where reader.blocks.contains(where: { overlaps($0.minTime, $0.maxTime) }) {
            return nil
        }
        var segments: [(reader: SegmentReader, rollup: CountRollup)] = []
        for handle in handles where range.map(handle.entry.overlaps) ?? true {
            let reader: SegmentReader
            do { reader = try handle.reader() } catch  where handle.expired { continue }
            guard let rollup = try reader.index?.countRollup() else { return nil }
            segments.append((reader, rollup))
        }
        var counter = ColumnCounter(query: query, keys: keys)
        var withoutTraceID = 0
        for (_, rollup) in segments {
            var groups: [Int] = []
            var passes: [Bool] = []
            for kind in rollup.kinds {
                let shape = ColumnCountShape(kind)
                var values: [String] = []
                for key in keys {
                    guard let v = ColumnCounter.value(key, shape) else { return nil }
                    values.append(v)
                }
                groups.append(counter.group(values))
                passes.append(ColumnCounter.passes(shape, filter))
            }
            let width = rollup.bucketNanos
            var counted = false
            for (i, bucket) in rollup.buckets.enumerated() {
                let low = bucket * width
                let high = low.addingReportingOverflow(width - 1)
                let end = high.overflow ? UInt64.max : high.partialValue
                guard overlaps(low, end) else { continue }
                // A bucket the range cuts cannot be split: the columns answer.
                if let range, low < range.lowerBound || end > range.upperBound { return nil }
                for e in rollup.entryStarts[i]..<rollup.entryStarts[i + 1] {
                    let kind = Int(rollup.entryKinds[e])
                    guard passes[kind] else { continue }
                    counter.counts[groups[kind]] += rollup.entryCounts[e]
                    if !rollup.kinds[kind].hasTraceID { counted = true }
                }
            }
            if counted { withoutTraceID += 1 }
        }
        // Copies of a record without a trace id in two segments could not be found by trace.
        guard withoutTraceID <= 1 else { return nil }
        var groups = counter.groups()
        if segments.count > 1 {
            let correction = try sharedTraceCorrection(segments.map(\.reader), query: query, keys: keys)
            for (values, n) in correction {
                let c = groups[values, default: 0] + n
                guard c >= 0 else { return nil }
                groups[values] = c == 0 ? nil : c
            }
        }
        return groups
    }

    /// What to add to the sum of `readers`' rollups so that a record stored in two of them counts once: over the
    /// traces two or more of them hold, the count across all (copies dropped) minus the count of each alone (what
    /// its rollup holds). Traces are found by their trace-id sections (first four bytes, or three where any of the
    /// segments has layout 10: prefixes compare at the narrowest width), then by the full ids in those blocks' rows.
    func sharedTraceCorrection(_ readers: [SegmentReader], query: EventQuery, keys: [CountKey])
        throws(LogFormatError) -> [[String]: Int]
    {
        let range = query.timeRange
        var entries: [[(prefix: UInt32, block: Int)]] = []
        var prefixes: [[UInt32]] = []
        let bits = readers.map { $0.index?.tracePrefixBits ?? 32 }.min() ?? 32
        for reader in readers {
            let narrow = UInt32((reader.index?.tracePrefixBits ?? 32) - bits)
            let all = (try reader.index?.allTracePrefixes() ?? []).map {
                (prefix: $0.prefix >> narrow, block: $0.block)
            }
            let e = all.filter { entry in
                let b = reader.blocks[entry.block]
                return range.map { b.maxTime >= $0.lowerBound && b.minTime <= $0.upperBound } ?? true
            }
            entries.append(e)
            var p = e.map(\.prefix)
            p = p.enumerated().filter { $0.offset == 0 || p[$0.offset - 1] != $0.element }.map(\.element)
            prefixes.append(p)
        }
        var shared = Set<UInt32>()
        for i in readers.indices {
            for j in readers.indices where j > i {
                for p in intersectSorted(prefixes[i], prefixes[j]) { shared.insert(p) }
            }
        }
        guard !shared.isEmpty else { return [:] }
        // The blocks holding those prefixes, read once each; the full trace ids of their rows in range.
        let reading = ColumnCounter(query: query, keys: keys)
        var blocks: [[(block: Int, rows: ColumnCountBlock?)]] = []
        var traces: [Set<TraceID>] = []
        for (s, reader) in readers.enumerated() {
            var numbers: [Int] = []
            for entry in entries[s] where shared.contains(entry.prefix) { numbers.append(entry.block) }
            numbers = Array(Set(numbers)).sorted()
            var read: [(block: Int, rows: ColumnCountBlock?)] = []
            var ids = Set<TraceID>()
            for b in numbers {
                if reader.isColumnBlock(b) {
                    guard let rows = try reading.countRows(reader, b) else { continue }
                    for row in rows.rows
                    where shared.contains(UInt32(truncatingIfNeeded: row.traceID.high >> UInt64(64 - bits))) {
                        ids.insert(row.traceID)
                    }
                    read.append((b, rows))
                } else {
                    for e in try reader.blockEvents(b) where range?.contains(e.startTimeUnixNano) ?? true {
                        ids.insert(e.traceID)
                    }
                    read.append((b, nil))
                }
            }
            blocks.append(read)
            traces.append(ids)
        }
        var seen = Set<TraceID>()
        var inTwo = Set<TraceID>()
        for ids in traces {
            for id in ids where !id.isZero && !seen.insert(id).inserted { inTwo.insert(id) }
        }
        guard !inTwo.isEmpty else { return [:] }
        var across = ColumnCounter(query: query, keys: keys)
        across.onlyTraces = inTwo
        var out: [[String]: Int] = [:]
        for (s, reader) in readers.enumerated() where !traces[s].isDisjoint(with: inTwo) {
            var alone = ColumnCounter(query: query, keys: keys)
            alone.onlyTraces = inTwo
            try alone.add(reader, blocks: blocks[s])
            for (values, n) in alone.groups() { out[values, default: 0] -= n }
            try across.add(reader, blocks: blocks[s])
        }
        for (values, n) in across.groups() { out[values, default: 0] += n }
        return out
    }
}
