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
        #expect(try TimeExpression.interval("2026-11-02T10:00:00.123456789Z", now: 0).start == 1_793_613_600_123_456_789)
    }

    @Test func relativeWords() throws {
        let today = Self.now / Self.day * Self.day
        #expect(try TimeExpression.interval("today", now: Self.now) == (today, today + Self.day))
        #expect(try TimeExpression.interval("yesterday", now: Self.now) == (today - Self.day, today))
        #expect(try TimeExpression.interval("7d", now: Self.now) == (Self.now - 7 * Self.day, Self.now + 1))
    }

    @Test(arguments: ["2026-13-01", "2026-02-30", "2025-02-29", "26-11-02", "2026-11-02T10:00:00", "2026-11-02T25:00:00Z",
                      "yesterday-ish", "0d", "", "2026-11-02T10:00:00+24:00"])
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
}
