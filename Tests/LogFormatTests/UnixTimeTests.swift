import LogFormat
import Testing

/// ISO 8601 parsing at the end of 64-bit Unix nanoseconds (2554-07-21T23:34:33.709551615Z). Found by the
/// access-ndjson fuzz target: a `start_time` in the year 3456 overflowed `days * nanosPerDay` and trapped.
@Suite struct UnixTimeTests {
    @Test func theLastRepresentableInstantParsesAndTheNextIsNil() {
        #expect(UnixTime.parseInstant("2554-07-21T23:34:33.709551615Z") == UInt64.max)
        #expect(UnixTime.parseInstant("2554-07-21T23:34:33.709551616Z") == nil)
        #expect(UnixTime.parseInstant("2554-07-21T23:34:34Z") == nil)
        #expect(UnixTime.parseInstant("2554-07-22T00:00:00+01:00") == nil)
    }

    @Test(arguments: ["2554-07-22", "2555-01-01", "3456-11-02", "9999-12-31"])
    func daysPastTheRangeAreNil(day: String) {
        #expect(UnixTime.parseDay(Substring(day)) == nil)
        #expect(UnixTime.parseInstant(day + "T10:00:00.123Z") == nil)
    }

    @Test func theLastRepresentableDayParses() {
        #expect(UnixTime.parseDay("2554-07-21") == 18_446_659_200 * UnixTime.nanosPerSecond)
        #expect(UnixTime.parseDay("1970-01-01") == 0)
    }
}
