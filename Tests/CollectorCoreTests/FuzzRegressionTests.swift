import Foundation
import FuzzHarness
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

    @Test(arguments: FuzzTarget.allCases)
    func regressionInputsStayFixed(target: FuzzTarget) throws {
        for file in Self.files("regressions", target) {
            target.run(Array(try Data(contentsOf: file)))
        }
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
