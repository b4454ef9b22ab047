import Logging
import Synchronization

/// A log handler that keeps every entry in memory, for tests that read what the services logged. It is handed
/// to the services under test through their `Logger`; the global `LoggingSystem` is never bootstrapped.
final class CapturedLogs: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
        /// The message and every metadata key and value, as one text to search.
        var rendered: String {
            ([message] + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
        }
    }

    private let entries = Mutex<[Entry]>([])

    var all: [Entry] { entries.withLock { $0 } }

    /// A logger at trace level writing here.
    func logger(_ label: String = "test") -> Logger {
        var logger = Logger(label: label, factory: { _ in Handler(sink: self) })
        logger.logLevel = .trace
        return logger
    }

    fileprivate func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    struct Handler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            sink.append(Entry(level: event.level, message: "\(event.message)", metadata: merged))
        }
    }
}
