import Testing

@testable import AuditQuery

@Suite struct TimeExpressionTests {
    static let day: UInt64 = 86_400_000_000_000
    // 2026-11-27T13:54:00Z
    static let now: UInt64 = 1_795_787_640_000_000_000

    @Test(arguments: [
        ("1970-01-01", UInt64(0)), ("2026-11-02", UInt64(1_793_577_600) * 1_000_000_000),
        ("2024-02-29", UInt64(1_709_164_800) * 1_000_000_000), ("2000-03-01", UInt64(951_868_800) * 1_000_000_000),
    ])
    func daysAreUTCMidnights(text: String, start: UInt64) throws {
        let (s, e) = try TimeExpression.interval(text, now: Self.now)
        #expect(s == start)
        #expect(e == start + Self.day)
    }

    @Test func instantsWithOffsetsAndFractions() throws {
        #expect(try TimeExpression.interval("2026-11-02T10:00:00Z", now: 0).start == 1_793_613_600_000_000_000)
        #expect(try TimeExpression.interval("2026-11-02T11:30:00+01:30", now: 0).start == 1_793_613_600_000_000_000)
        #expect(try TimeExpression.interval("2026-11-02T08:00:00-02:00", now: 0).start == 1_793_613_600_000_000_000)
        #expect(try TimeExpression.interval("2026-11-02T10:00:00.5Z", now: 0).start == 1_793_613_600_500_000_000)
        #expect(
            try TimeExpression.interval("2026-11-02T10:00:00.123456789Z", now: 0).start == 1_793_613_600_123_456_789)
    }

    @Test func relativeWords() throws {
        let today = Self.now / Self.day * Self.day
        #expect(try TimeExpression.interval("today", now: Self.now) == (today, today + Self.day))
        #expect(try TimeExpression.interval("yesterday", now: Self.now) == (today - Self.day, today))
        #expect(try TimeExpression.interval("7d", now: Self.now) == (Self.now - 7 * Self.day, Self.now + 1))
    }

    @Test(arguments: [
        "2026-13-01", "2026-02-30", "2025-02-29", "26-11-02", "2026-11-02T10:00:00", "2026-11-02T25:00:00Z",
        "yesterday-ish", "0d", "", "2026-11-02T10:00:00+24:00",
    ])
    func nonsenseIsRefusedWithAHint(text: String) {
        #expect(throws: TimeExpression.ParseError.self) { try TimeExpression.interval(text, now: Self.now) }
    }

    @Test func rangesFromDateOrFromTo() throws {
        let d = try #require(try TimeExpression.range(date: "2026-11-02", from: nil, to: nil, now: Self.now))
        #expect(d.upperBound - d.lowerBound == Self.day - 1)
        let ft = try #require(try TimeExpression.range(date: nil, from: "2026-11-01", to: "2026-11-02", now: Self.now))
        #expect(ft.upperBound - ft.lowerBound == 2 * Self.day - 1)
        #expect(try TimeExpression.range(date: nil, from: nil, to: nil, now: Self.now) == nil)
        #expect(throws: TimeExpression.ParseError.self) {
            try TimeExpression.range(date: nil, from: "2026-11-03", to: "2026-11-02", now: Self.now)
        }
    }

    @Test func formatRoundTripsWithParse() throws {
        for ns: UInt64 in [0, 1_793_613_600_123_456_789, 951_868_800_000_000_000, 4_102_444_799_999_999_999] {
            let text = TimeExpression.format(ns)
            #expect(try TimeExpression.interval(text, now: 0).start == ns, "\(text)")
        }
    }

    @Test func dayBoundariesFollowTheTimeZone() throws {
        let plus2 = try TimeZoneSpec(parsing: "+02:00")
        let (s, e) = try TimeExpression.interval("2026-11-02", now: Self.now, zone: plus2)
        #expect(s == 1_793_577_600_000_000_000 - 7_200_000_000_000)
        #expect(e - s == Self.day)
        let minus0530 = try TimeZoneSpec(parsing: "-0530")
        #expect(
            try TimeExpression.interval("2026-11-02", now: 0, zone: minus0530).start == 1_793_577_600_000_000_000
                + 19_800_000_000_000)
        // Instants keep their own offset whatever the zone.
        #expect(
            try TimeExpression.interval("2026-11-02T10:00:00Z", now: 0, zone: plus2).start == 1_793_613_600_000_000_000)
        // now = 2026-11-27T13:54Z is 2026-11-28T00:54 in +11:00: "today" is the 28th there.
        let plus11 = try TimeZoneSpec(parsing: "+11:00")
        let today = try TimeExpression.interval("today", now: Self.now, zone: plus11)
        #expect(today.start == 1_795_824_000_000_000_000 - 39_600_000_000_000)
    }

    @Test func namedZonesUseTheirRulesOnEachDay() throws {
        let berlin = try TimeZoneSpec(parsing: "Europe/Berlin")
        // Winter (UTC+1) and summer (UTC+2) midnights.
        #expect(
            try TimeExpression.interval("2026-01-15", now: 0, zone: berlin).start == 1_768_435_200_000_000_000
                - 3_600_000_000_000)
        #expect(
            try TimeExpression.interval("2026-07-15", now: 0, zone: berlin).start == 1_784_073_600_000_000_000
                - 7_200_000_000_000)
        // The day daylight saving starts is 23 hours long.
        let (s, e) = try TimeExpression.interval("2026-03-29", now: 0, zone: berlin)
        #expect(e - s == 23 * 3_600_000_000_000)
        #expect(TimeExpression.format(1_784_073_600_000_000_000, zone: berlin) == "2026-07-15T02:00:00.000000000+02:00")
        #expect(throws: TimeExpression.ParseError.self) { try TimeZoneSpec(parsing: "Mars/Olympus_Mons") }
        #expect(throws: TimeExpression.ParseError.self) { try TimeZoneSpec(parsing: "+25:00") }
    }

    @Test func weeksAndHours() throws {
        // 2026-11-27 is a Friday; its ISO week starts on Monday 2026-11-23.
        let monday: UInt64 = 1_795_392_000_000_000_000
        #expect(try TimeExpression.interval("this-week", now: Self.now) == (monday, monday + 7 * Self.day))
        #expect(try TimeExpression.interval("last-week", now: Self.now) == (monday - 7 * Self.day, monday))
        #expect(try TimeExpression.interval("12h", now: Self.now) == (Self.now - 12 * 3_600_000_000_000, Self.now + 1))
        let r = try #require(try TimeExpression.range(date: nil, from: "this-week", to: "today", now: Self.now))
        #expect(r.lowerBound == monday)
        #expect(throws: TimeExpression.ParseError.self) {
            try TimeExpression.range(date: "today", from: "7d", to: nil, now: Self.now)
        }
    }
}
