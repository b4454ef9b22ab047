// Writes generator traffic into a data directory through the real writer: the demo's data, the benchmarks'
// data sets and the collector's `ingest-synthetic` command all come from here.
import LogFormat
import Logging

public enum SyntheticLoad {
    public struct Summary: Sendable {
        public var events = 0
        public var requests = 0
        public var segmentsSealed = 0
        public var bytesWritten: UInt64 = 0
        /// Wall-clock nanoseconds spent writing (generation excluded).
        public var writeNanos: UInt64 = 0
        /// Wall-clock nanoseconds spent generating.
        public var generateNanos: UInt64 = 0
    }

    /// Generates `requests` requests (all events of each) and writes them in batches of about `batchEvents`
    /// events, rolling segments as `options` says, then seals. `fsync` follows the policy per batch.
    public static func write(
        into directory: DataDirectory, configuration: TrafficGenerator.Configuration, requests: Int,
        options: WriterOptions, fsync: FsyncPolicy = .never, batchEvents: Int = 2_000,
        logger: Logger, progress: ((Summary) -> Void)? = nil
    ) throws(LogFormatError) -> Summary {
        let writer = try SegmentWriter(directory: directory, options: options, logger: logger)
        var generator = TrafficGenerator(configuration: configuration)
        var summary = Summary()
        var batch: [AuditEvent] = []
        batch.reserveCapacity(batchEvents + 16)
        var lastSync = FileIO.monotonicNanos()
        var batches = 0
        while summary.requests < requests {
            let g0 = FileIO.monotonicNanos()
            batch.removeAll(keepingCapacity: true)
            while batch.count < batchEvents && summary.requests < requests {
                batch.append(contentsOf: generator.nextRequest())
                summary.requests += 1
            }
            let t0 = FileIO.monotonicNanos()
            summary.generateNanos += t0 - g0
            try writer.append(batch)
            try writer.flush()
            switch fsync {
            case .always: try writer.sync()
            case .interval(let ms):
                if FileIO.monotonicNanos() - lastSync >= UInt64(ms) * 1_000_000 {
                    try writer.sync()
                    lastSync = FileIO.monotonicNanos()
                }
            case .never: break
            }
            if try writer.rollIfNeeded() != nil { summary.segmentsSealed += 1 }
            summary.events += batch.count
            summary.writeNanos += FileIO.monotonicNanos() - t0
            batches += 1
            if let progress, batches % 100 == 0 { progress(summary) }
        }
        let t0 = FileIO.monotonicNanos()
        if try writer.seal() != nil { summary.segmentsSealed += 1 }
        summary.writeNanos += FileIO.monotonicNanos() - t0
        summary.bytesWritten =
            writer.bytesWritten + UInt64(FormatConstants.fileHeaderSize) * UInt64(summary.segmentsSealed)
        return summary
    }
}
