// Built with `-sanitize=fuzzer -DFUZZING` (Makefile `fuzz`, `fuzz-smoke`): a libFuzzer binary whose target is
// named by the environment variable FUZZ_TARGET (one binary, one link, for every target). Built plainly (as
// `swift build` does), a replayer: `AuditFuzz <target> FILE…` runs files through a target, and
// `AuditFuzz --write-seeds DIR` writes the seed corpus.
import FuzzHarness

#if FUZZING
    import Glibc

    // Written once in `AuditFuzz_main` before libFuzzer starts, then only read, from libFuzzer's single thread.
    nonisolated(unsafe) var selected: FuzzTarget = .otlpProto

    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
        selected.run(bytes)
        return 0
    }

    typealias CArgv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

    @_silgen_name("LLVMFuzzerRunDriver")
    func llvmFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<CArgv>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    /// SwiftPM links an executable with `main` aliased to `<module>_main`; this is it, handing over to libFuzzer.
    @_cdecl("AuditFuzz_main")
    func auditFuzzMain(_ argc: CInt, _ argv: CArgv) -> CInt {
        guard let name = getenv("FUZZ_TARGET").map({ String(cString: $0) }), let target = FuzzTarget(rawValue: name)
        else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            let message = Array("set FUZZ_TARGET to one of: \(names)\n".utf8)
            _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            return 2
        }
        selected = target
        var argc = argc
        var argv = argv
        return llvmFuzzerRunDriver(&argc, &argv, fuzzOne)
    }
#else
    import Foundation

    @main
    enum Replayer {
        static func main() throws {
            let args = Array(CommandLine.arguments.dropFirst())
            if args.count == 2, args[0] == "--write-seeds" {
                for (target, seeds) in try FuzzSeeds.all() {
                    let dir = args[1] + "/" + target.rawValue
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    for seed in seeds { try Data(seed.bytes).write(to: URL(fileURLWithPath: dir + "/" + seed.name)) }
                    print("\(target.rawValue): \(seeds.count) seeds")
                }
                return
            }
            guard let name = args.first, let target = FuzzTarget(rawValue: name), args.count >= 2 else {
                let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
                FileHandle.standardError.write(
                    Data("usage: AuditFuzz <\(names)> FILE... | AuditFuzz --write-seeds DIR\n".utf8))
                exit(2)
            }
            for path in args.dropFirst() {
                let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
                print("\(path): \(target.run(bytes)) accepted")
            }
        }
    }
#endif
