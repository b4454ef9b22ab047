// Time expressions an auditor types: ISO 8601 days and instants, Unix nanoseconds, and relative words.
// Independent of the locale; UTC unless an offset is given. (Time zones for day boundaries: the auditq issue.)
import LogFormat

public enum TimeExpression {
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    static let nanosPerSecond: UInt64 = 1_000_000_000
    static let nanosPerDay: UInt64 = 86_400 * nanosPerSecond

    /// The range of start times a `--date`/`--from`/`--to` combination selects. A day covers
    /// [00:00, 24:00) UTC; `--to` with a day includes that whole day.
    public static func range(date: String?, from: String?, to: String?, now: UInt64) throws -> ClosedRange<UInt64>? {
        if let date {
            let (start, end) = try interval(date, now: now)
            return start...(end - 1)
        }
        guard from != nil || to != nil else { return nil }
        let lower = try from.map { try interval($0, now: now).start } ?? 0
        let upper = try to.map { try interval($0, now: now).end - 1 } ?? UInt64.max
        guard lower <= upper else { throw ParseError(description: "--from is after --to") }
        return lower...upper
    }

    /// The half-open interval an expression denotes: a day for a date or day word, one nanosecond for an
    /// instant, the last N days up to now for `Nd`.
    public static func interval(_ text: String, now: UInt64) throws -> (start: UInt64, end: UInt64) {
        let today = now / nanosPerDay * nanosPerDay
        switch text {
        case "today": return (today, today + nanosPerDay)
        case "yesterday": return (today - nanosPerDay, today)
        case "now": return (now, now + 1)
        default: break
        }
        if text.hasSuffix("d"), let n = UInt64(text.dropLast()), n > 0 {
            return (now.subtractingReportingOverflow(n * nanosPerDay).overflow ? 0 : now - n * nanosPerDay, now + 1)
        }
        if let ns = UInt64(text), text.count > 10 { return (ns, ns + 1) }
        if let day = parseDay(Substring(text)) { return (day, day + nanosPerDay) }
        if let instant = parseInstant(text) { return (instant, instant + 1) }
        throw ParseError(
            description: "cannot read time \(text.debugDescription): use 2026-11-02, 2026-11-02T10:00:00Z, an offset like +01:00, Unix nanoseconds, today, yesterday or 7d")
    }

    static func parseDay(_ s: Substring) -> UInt64? { UnixTime.parseDay(s) }

    static func parseInstant(_ s: String) -> UInt64? { UnixTime.parseInstant(s) }

    /// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` for Unix nanoseconds.
    public static func format(_ ns: UInt64) -> String { UnixTime.format(ns) }
}
