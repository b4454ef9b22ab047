// The bound on how many values one request may hold once decoded (`limits.max_values_per_request`): what each
// decoder counts, its message, and the error of the decoders that count what they made after each item (access
// lines, each already bounded by the line limit) rather than as they read.
import LogFormat

/// A well-formed request that holds more than a limit of the collector allows: too large, not malformed.
public struct RequestLimitExceeded: Error, Sendable, Hashable, CustomStringConvertible {
    public var limit: Int
    public var message: String
    public var description: String { message }

    /// A request over `limit` values (`ValueCount`).
    public init(values limit: Int) {
        self.limit = limit
        message = ValueCount.overLimit(limit)
    }
}

public enum ValueCount {
    /// The attributes, and the elements of the array and key-value list values inside them, at every level: what
    /// a request's value limit counts (`limits.max_values_per_request`).
    public static func of(_ attributes: [Attribute]) -> Int {
        var n = attributes.count
        for a in attributes { n += nested(a.value) }
        return n
    }

    /// The elements of `value` at every level (0 for a scalar).
    static func nested(_ value: AttributeValue) -> Int {
        switch value {
        case .array(let values):
            var n = values.count
            for v in values { n += nested(v) }
            return n
        case .keyValueList(let list): return of(list)
        default: return 0
        }
    }

    /// The message of a request over `limit` values.
    public static func overLimit(_ limit: Int) -> String {
        "the request holds more than \(limit) attributes, array and list values, span events and links, the limit per request"
    }
}
