import Testing

@testable import auditq

/// `PlainCommandLine` reads the plain lines of search, activity and trace into exactly the command argument-parser
/// builds, and leaves every other line to argument-parser.
@Suite struct PlainCommandLineTests {
    static let trace = "3cc2a5c1da1a1ec434e4a7b675bb4e06"

    @Test(arguments: [
        ["search", "--data", "d", "--user", "u-1", "--date", "2025-03-05", "--format", "json"],
        ["search", "--format=json", "--user=u-1", "--data=d", "--data", "e", "--date", "today", "--tz", "+02:00"],
        ["search", "--user", "u-1", "--from", "2025-03-01", "--to", "2025-03-02", "--limit", "7", "--traces"],
        ["search", "--service", "edge-nginx", "--method", "GET", "--status", "4xx", "--path-prefix", "/api/"],
        ["search", "--group", "admins", "--workload", "spiffe://x/y", "--min-duration", "250ms", "--include-ledgers"],
        ["search", "--trace", trace, "--store", "s3://b/p", "--store", "s3://c/q", "--cache-mib", "64"],
        ["search", "--s3-config", "f", "--cache-dir", "c", "--listing-max-age", "30", "--user", "a=b"],
        ["search"],
        ["activity", "--data", "d", "--user", "u-1", "--date", "2025-03-05", "--format", "json"],
        ["activity", "--user", "u-1", "--limit", "5", "--tree", "--status", "error", "--tz", "Europe/Berlin"],
        ["trace", "--data", "d", trace, "--format", "json"],
        ["trace", trace, "--data=d", "--data", "e", "--tz", "UTC", "--store", "s3://b/p"],
    ])
    func plainLinesAreReadAsArgumentParserReadsThem(_ line: [String]) throws {
        let plain = try #require(PlainCommandLine.command(line), "\(line) should be read without argument-parser")
        let expected = try #require(
            PlainCommandLine.argumentParserReading(line), "argument-parser should accept \(line)")
        #expect(String(describing: plain) == expected)
        #expect(!expected.contains("*definition*"))
    }

    @Test(arguments: [
        ["--version"], ["--help"], ["search", "--help"], ["search", "-h"], ["help", "search"],
        ["stats", "--data", "d"], ["count", "--data", "d"], [],
        // Not plain: repeated, unknown, short or empty names and values, `--`, values that look like options.
        ["search", "--user", "a", "--user", "b"], ["search", "--traces", "--traces"], ["search", "--no-such", "x"],
        ["search", "--user"], ["search", "--user", ""], ["search", "--user", "-x"], ["search", "--tz", "-05:00"],
        ["search", "--", "--user"], ["search", "stray"], ["search", "--traces=yes"], ["search", "-"],
        // Refused by a value's type or a validate() rule: argument-parser says why.
        ["search", "--limit", "seven"], ["search", "--limit", "0"], ["search", "--format", "xml"],
        ["search", "--trace", "xyz"], ["search", "--tz", "Mars/Olympus"], ["search", "--status", "teapot"],
        ["search", "--store", "http://x"],
        ["activity", "--date", "today"], ["activity", "--user", "u", "--limit", "-1"],
        ["trace"], ["trace", "xyz"], ["trace", trace, trace], ["trace", trace, "--user", "u"],
    ])
    func otherLinesAreLeftToArgumentParser(_ line: [String]) {
        #expect(PlainCommandLine.command(line) == nil, "\(line)")
    }
}
