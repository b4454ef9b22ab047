// ISO 8601 days and instants <-> Unix nanoseconds, independent of the locale and of Foundation's formatters.

public enum UnixTime {
    public static let nanosPerSecond: UInt64 = 1_000_000_000
    public static let nanosPerDay: UInt64 = 86_400 * nanosPerSecond

    /// `YYYY-MM-DD` → Unix nanoseconds of its midnight UTC; nil past what 64-bit nanoseconds hold (2554-07-21).
    public static func parseDay(_ s: Substring) -> UInt64? {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m),
            (1...daysIn(month: m, year: y)).contains(d), y >= 1970
        else { return nil }
        let (ns, overflow) = UInt64(daysFromCivil(y, m, d)).multipliedReportingOverflow(by: nanosPerDay)
        return overflow ? nil : ns
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)`; the offset is required. Nil past 2554-07-21T23:34:33.709551615Z.
    public static func parseInstant(_ s: some StringProtocol) -> UInt64? {
        let s = Substring(s)
        guard let t = s.firstIndex(where: { $0 == "T" || $0 == " " }), let day = parseDay(s[..<t]) else { return nil }
        var rest = s[s.index(after: t)...]
        var offsetSeconds = 0
        if rest.hasSuffix("Z") || rest.hasSuffix("z") {
            rest = rest.dropLast()
        } else if let sign = rest.lastIndex(where: { $0 == "+" || $0 == "-" }) {
            let text = rest[rest.index(after: sign)...].filter { $0 != ":" }
            guard text.count == 4, let h = Int(text.prefix(2)), let m = Int(text.suffix(2)), h < 24, m < 60 else {
                return nil
            }
            offsetSeconds = (h * 3600 + m * 60) * (rest[sign] == "+" ? 1 : -1)
            rest = rest[..<sign]
        } else {
            return nil
        }
        let hms = rest.split(separator: ":")
        guard hms.count == 3, let h = Int(hms[0]), let mi = Int(hms[1]), h < 24, mi < 60 else { return nil }
        let secParts = hms[2].split(separator: ".", maxSplits: 1)
        guard let sec = Int(secParts[0]), sec < 61 else { return nil }
        var nanos: UInt64 = 0
        if secParts.count == 2 {
            let digits = secParts[1].prefix(9)
            guard !digits.isEmpty, digits.allSatisfy(\.isNumber), let f = UInt64(digits) else { return nil }
            nanos = f * UInt64((0..<(9 - digits.count)).reduce(1) { r, _ in r * 10 })
        }
        let seconds = Int(day / nanosPerSecond) + h * 3600 + mi * 60 + sec - offsetSeconds
        guard seconds >= 0 else { return nil }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: nanosPerSecond)
        let (ns, carry) = whole.addingReportingOverflow(nanos)
        return overflow || carry ? nil : ns
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil algorithm).
    public static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
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
        let (y, m, d) = civil(days)
        return
            "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(secOfDay / 3600, 2)):\(pad(secOfDay / 60 % 60, 2)):\(pad(secOfDay % 60, 2)).\(pad(Int(ns % nanosPerSecond), 9))Z"
    }

    /// `YYYY-MM-DD` of the UTC day containing `ns`.
    public static func formatDay(_ ns: UInt64) -> String {
        let (y, m, d) = civil(Int(ns / nanosPerDay))
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }

    static func civil(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = z / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func pad(_ v: Int, _ w: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, w - s.count)) + s
    }
}
