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

    /// `YYYY-MM-DD` → Unix nanoseconds of its midnight UTC.
    static func parseDay(_ s: Substring) -> UInt64? {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m),
            (1...daysIn(month: m, year: y)).contains(d), y >= 1970
        else { return nil }
        return UInt64(daysFromCivil(y, m, d)) * nanosPerDay
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    static func parseInstant(_ s: String) -> UInt64? {
        guard let t = s.firstIndex(where: { $0 == "T" || $0 == " " }), let day = parseDay(s[..<t]) else { return nil }
        var rest = s[s.index(after: t)...]
        var offsetSeconds = 0
        if rest.hasSuffix("Z") || rest.hasSuffix("z") {
            rest = rest.dropLast()
        } else if let sign = rest.lastIndex(where: { $0 == "+" || $0 == "-" }) {
            let off = rest[rest.index(after: sign)...].split(separator: ":")
            guard off.count == 2, let h = Int(off[0]), let m = Int(off[1]), h < 24, m < 60 else { return nil }
            offsetSeconds = (h * 3600 + m * 60) * (rest[sign] == "+" ? 1 : -1)
            rest = rest[..<sign]
        } else {
            return nil  // an instant must say its offset
        }
        let hms = rest.split(separator: ":")
        guard hms.count == 3, let h = Int(hms[0]), let mi = Int(hms[1]), h < 24, mi < 60 else { return nil }
        let secParts = hms[2].split(separator: ".", maxSplits: 1)
        guard let sec = Int(secParts[0]), sec < 61 else { return nil }
        var nanos: UInt64 = 0
        if secParts.count == 2 {
            let digits = secParts[1].prefix(9)
            guard let f = UInt64(digits), digits.allSatisfy(\.isNumber) else { return nil }
            nanos = f * UInt64(pow10(9 - digits.count))
        }
        let seconds = Int(day / nanosPerSecond) + h * 3600 + mi * 60 + sec - offsetSeconds
        guard seconds >= 0 else { return nil }
        return UInt64(seconds) * nanosPerSecond + nanos
    }

    static func pow10(_ n: Int) -> Int { (0..<n).reduce(1) { r, _ in r * 10 } }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil algorithm).
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` for Unix nanoseconds.
    public static func format(_ ns: UInt64) -> String {
        let days = Int(ns / nanosPerDay)
        let secOfDay = Int(ns % nanosPerDay / nanosPerSecond)
        let z = days + 719_468
        let era = z / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func pad(_ v: Int, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(secOfDay / 3600, 2)):\(pad(secOfDay / 60 % 60, 2)):\(pad(secOfDay % 60, 2)).\(pad(Int(ns % nanosPerSecond), 9))Z"
    }
}
