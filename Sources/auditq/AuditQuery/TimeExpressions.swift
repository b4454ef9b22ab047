// Time expressions an auditor types: ISO 8601 days and instants, Unix nanoseconds, and relative words.
// Independent of the locale. Day boundaries (days, `today`, `yesterday`, `this-week`) fall at midnight in the
// zone given with `--tz` (UTC by default); instants carry their own offset.
import Foundation
import LogFormat

/// The zone whose midnights bound days: UTC, a fixed offset, or an IANA zone (with its daylight-saving rules).
public struct TimeZoneSpec: Sendable, Hashable, CustomStringConvertible {
    enum Storage: Sendable, Hashable {
        case fixed(Int)
        case named(String)
    }

    let storage: Storage

    public static let utc = TimeZoneSpec(storage: .fixed(0))

    /// `UTC`, `Z`, `+02:00`, `-0530`, or an IANA name such as `Europe/Berlin`.
    public init(parsing text: String) throws(TimeExpression.ParseError) {
        if text == "UTC" || text == "Z" || text == "utc" {
            storage = .fixed(0)
            return
        }
        if let first = text.first, first == "+" || first == "-" {
            let digits = text.dropFirst().filter { $0 != ":" }
            guard digits.count == 4, digits.allSatisfy(\.isASCII), let h = Int(digits.prefix(2)),
                let m = Int(digits.suffix(2)),
                h < 24, m < 60
            else {
                throw TimeExpression.ParseError(
                    description:
                        "cannot read time zone \(text.debugDescription): use UTC, +02:00 or a name like Europe/Berlin")
            }
            storage = .fixed((h * 3600 + m * 60) * (first == "+" ? 1 : -1))
            return
        }
        guard TimeZone(identifier: text) != nil else {
            throw TimeExpression.ParseError(
                description: "unknown time zone \(text.debugDescription): use UTC, +02:00 or a name like Europe/Berlin")
        }
        storage = .named(text)
    }

    init(storage: Storage) { self.storage = storage }

    /// Seconds east of UTC at the instant `ns`.
    public func offsetSeconds(at ns: UInt64) -> Int {
        switch storage {
        case .fixed(let s): return s
        case .named(let name):
            guard let zone = TimeZone(identifier: name) else { return 0 }
            return zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(ns / 1_000_000_000)))
        }
    }

    /// The UTC instant of midnight starting local day `day` (days since 1970-01-01 in this zone).
    func midnight(ofLocalDay day: Int) -> UInt64 {
        let local = Int64(day) * 86_400
        var t = local - Int64(offsetSeconds(at: UInt64(max(0, local)) * 1_000_000_000))
        t = local - Int64(offsetSeconds(at: UInt64(max(0, t)) * 1_000_000_000))
        return UInt64(max(0, t)) * 1_000_000_000
    }

    /// The local day (days since 1970-01-01 in this zone) containing the instant `ns`.
    func localDay(of ns: UInt64) -> Int {
        let local = Int64(ns / 1_000_000_000) + Int64(offsetSeconds(at: ns))
        return Int((local - (local < 0 ? 86_399 : 0)) / 86_400)
    }

    public var description: String {
        switch storage {
        case .fixed(0): return "UTC"
        case .fixed(let s): return TimeExpression.offsetText(s)
        case .named(let n): return n
        }
    }
}

public enum TimeExpression {
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    static let nanosPerSecond: UInt64 = 1_000_000_000
    static let nanosPerDay: UInt64 = 86_400 * nanosPerSecond

    /// The range of start times a `--date`/`--from`/`--to` combination selects. A day covers [00:00, 24:00) in
    /// `zone`; `--to` with a day includes that whole day.
    public static func range(
        date: String?, from: String?, to: String?, now: UInt64, zone: TimeZoneSpec = .utc
    ) throws(ParseError) -> ClosedRange<UInt64>? {
        if let date {
            guard from == nil, to == nil else {
                throw ParseError(description: "give either --date or --from/--to, not both")
            }
            let (start, end) = try interval(date, now: now, zone: zone)
            return start...(end - 1)
        }
        guard from != nil || to != nil else { return nil }
        let lower = try from.map { (t) throws(ParseError) in try interval(t, now: now, zone: zone).start } ?? 0
        let upper = try to.map { (t) throws(ParseError) in try interval(t, now: now, zone: zone).end - 1 } ?? UInt64.max
        guard lower <= upper else { throw ParseError(description: "--from is after --to") }
        return lower...upper
    }

    /// The half-open interval an expression denotes: a day for a date or day word, a week for `this-week` and
    /// `last-week` (Monday to Monday), one nanosecond for an instant, the last N days or hours up to now for
    /// `Nd` and `Nh`.
    public static func interval(_ text: String, now: UInt64, zone: TimeZoneSpec = .utc) throws(ParseError) -> (
        start: UInt64, end: UInt64
    ) {
        let today = zone.localDay(of: now)
        func days(_ a: Int, _ b: Int) -> (UInt64, UInt64) {
            (zone.midnight(ofLocalDay: a), zone.midnight(ofLocalDay: b))
        }
        // 1970-01-01 was a Thursday: (day + 3) mod 7 is 0 on Mondays.
        let monday = today - ((today % 7 + 3 + 7) % 7)
        switch text {
        case "today": return days(today, today + 1)
        case "yesterday": return days(today - 1, today)
        case "this-week": return days(monday, monday + 7)
        case "last-week": return days(monday - 7, monday)
        case "now": return (now, now + 1)
        default: break
        }
        for (suffix, unit) in [("d", nanosPerDay), ("h", 3_600 * nanosPerSecond)] where text.hasSuffix(suffix) {
            if let n = UInt64(text.dropLast()), n > 0, text.first?.isASCII == true {
                let span = n.multipliedReportingOverflow(by: unit)
                return (span.overflow || span.partialValue > now ? 0 : now - span.partialValue, now + 1)
            }
        }
        if let ns = UInt64(text), text.count > 10 { return (ns, ns + 1) }
        if let day = UnixTime.parseDay(Substring(text)) {
            let d = Int(day / nanosPerDay)
            return days(d, d + 1)
        }
        if let instant = UnixTime.parseInstant(text) { return (instant, instant + 1) }
        throw ParseError(
            description:
                "cannot read time \(text.debugDescription): use 2026-11-02, 2026-11-02T10:00:00Z, an offset like +01:00, Unix nanoseconds, today, yesterday, this-week, last-week, 7d or 12h"
        )
    }

    /// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` for Unix nanoseconds.
    public static func format(_ ns: UInt64) -> String { UnixTime.format(ns) }

    /// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+HH:MM` in `zone` (`Z` for UTC).
    public static func format(_ ns: UInt64, zone: TimeZoneSpec) -> String {
        let offset = zone.offsetSeconds(at: ns)
        if offset == 0 { return UnixTime.format(ns) }
        let shifted =
            offset >= 0 ? ns + UInt64(offset) * nanosPerSecond : ns.subtractingClamped(UInt64(-offset) * nanosPerSecond)
        return String(UnixTime.format(shifted).dropLast()) + offsetText(offset)
    }

    static func offsetText(_ seconds: Int) -> String {
        let a = abs(seconds)
        let h = a / 3600
        let m = a / 60 % 60
        return (seconds < 0 ? "-" : "+") + (h < 10 ? "0" : "") + "\(h):" + (m < 10 ? "0" : "") + "\(m)"
    }

    /// The line auditq prints on stderr for a resolved range.
    public static func describe(_ range: ClosedRange<UInt64>, zone: TimeZoneSpec) -> String {
        let hi = range.upperBound == .max ? "(no end)" : format(range.upperBound &+ 1, zone: zone)
        return "time range: \(format(range.lowerBound, zone: zone)) … \(hi) (end exclusive, day boundaries in \(zone))"
    }
}

extension UInt64 {
    func subtractingClamped(_ v: UInt64) -> UInt64 { self > v ? self - v : 0 }
}
