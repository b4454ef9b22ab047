import CollectorParsers
import Foundation
import FuzzHarness
import LogFormat
import Testing

/// Every input the fuzzers ever crashed on (Tests/Fuzz/regressions/<target>/) and every seed (Tests/Fuzz/corpus/
/// <target>/) goes through the same entry point as under libFuzzer, which checks the parsers' invariants: a
/// crash here is a regression. The seeds must also still be accepted, or the fuzzers start from nothing useful.
@Suite struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func files(_ kind: String, _ target: FuzzTarget) -> [URL] {
        let dir = root.appendingPathComponent(kind).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { dir.appendingPathComponent($0) }
    }

    /// What each committed regression input must come to: how many events its fuzz target accepts from it. A
    /// crash is the regression itself; the count is the documented outcome, so a new file in
    /// Tests/Fuzz/regressions/ needs its line here.
    static let regressionOutcomes: [String: Int] = [
        // Both lines refused: the first has a start time past 2554 (no readable time), the second is not JSON.
        "access-ndjson/year-3456-overflows-unix-nanos.ndjson": 0,
        // Found by reading the code (issue 15): "½" passed `Character.isNumber` and trapped on its missing digit
        // value. The line has no other time, so it is refused.
        "access-ndjson/fraction-numeral-in-msec.ndjson": 0,
    ]

    /// The replay below passes vacuously when there is nothing to replay: the directory must exist, hold
    /// inputs, and hold exactly those with a documented outcome.
    @Test func theRegressionInputsArePresentAndEachHasADocumentedOutcome() {
        var isDirectory: ObjCBool = false
        let regressions = Self.root.appendingPathComponent("regressions").path
        #expect(
            FileManager.default.fileExists(atPath: regressions, isDirectory: &isDirectory) && isDirectory.boolValue,
            "\(regressions) is missing")
        let found = FuzzTarget.allCases.flatMap { target in
            Self.files("regressions", target).map { "\(target.rawValue)/\($0.lastPathComponent)" }
        }
        #expect(!found.isEmpty, "no regression inputs under \(regressions)")
        #expect(Set(found) == Set(Self.regressionOutcomes.keys))
    }

    @Test(arguments: FuzzTarget.allCases)
    func regressionInputsStayFixed(target: FuzzTarget) throws {
        for file in Self.files("regressions", target) {
            let name = "\(target.rawValue)/\(file.lastPathComponent)"
            let accepted = target.run(Array(try Data(contentsOf: file)))
            let expected = try #require(Self.regressionOutcomes[name], "\(name) has no documented outcome")
            #expect(accepted == expected, "\(name): \(accepted) events accepted")
        }
    }

    /// access-ndjson, found in the first campaign: `"start_time":"3456-11-02T10:00:00.123Z"` trapped on an
    /// overflow of 64-bit nanoseconds. Now the line is refused with a reason, and the others are kept.
    @Test func anAccessLineFromTheYear3456IsRefusedNotACrash() throws {
        let body = Array(
            #"""
            {"start_time":"3456-11-02T10:00:00.123Z","method":"GET","path":"/x","response_code":200}
            {"start_time":"2026-11-02T10:00:00.123Z","method":"GET","path":"/y","response_code":200}
            """#.utf8)
        let (events, errors) = try AccessEventMapping.events(fromNDJSON: body)
        #expect(events.count == 1)
        #expect(errors.map(\.line) == [1])
        #expect(errors.first?.reason.contains("no readable time") == true)
    }

    @Test(arguments: FuzzTarget.allCases)
    func seedsAreAcceptedWhole(target: FuzzTarget) throws {
        let seeds = Self.files("corpus", target)
        #expect(!seeds.isEmpty, "no seed corpus for \(target.rawValue)")
        for file in seeds {
            let accepted = target.run(Array(try Data(contentsOf: file)))
            #expect(accepted > 0, "the seed \(file.lastPathComponent) is not accepted by \(target.rawValue)")
        }
    }

    /// The committed seeds are what the generator writes today, plus the Python SDK exporters' bodies
    /// (`python-sdk-*`, from scripts/fuzz-sdk-seeds.sh): a seed nobody can regenerate shows up here.
    @Test func seedsComeFromTheGeneratorOrThePythonSDK() throws {
        for (target, seeds) in try FuzzSeeds.all() {
            let committed = Set(Self.files("corpus", target).map(\.lastPathComponent))
            #expect(committed.filter { !$0.hasPrefix("python-sdk-") } == Set(seeds.map(\.name)), "\(target.rawValue)")
        }
        #expect(Self.files("corpus", .otlpProto).contains { $0.lastPathComponent.hasPrefix("python-sdk-") })
    }
}
