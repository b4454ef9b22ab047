// swift-tools-version: 6.2
// Micro-benchmarks of the storage core with ordo-one/benchmark, kept out of the main build and tests.
// Run: `make bench` (or `swift package benchmark` here). Figures and how to reproduce them: ../BENCHMARKS.md.
import PackageDescription

let package = Package(
    name: "audit-trail-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(name: "audit-trail", path: "../"),
    ],
    targets: [
        .executableTarget(
            name: "LogFormatBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "AuditQuery", package: "audit-trail"),
                .product(name: "LogFormat", package: "audit-trail"),
                .product(name: "SyntheticTraffic", package: "audit-trail"),
                .product(name: "StoreQuery", package: "audit-trail"),
            ],
            path: "Benchmarks/LogFormatBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "RetentionBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "LogFormat", package: "audit-trail"),
                .product(name: "SyntheticTraffic", package: "audit-trail"),
                .product(name: "StoreQuery", package: "audit-trail"),
            ],
            path: "Benchmarks/RetentionBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "NormalizerBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "LogFormat", package: "audit-trail"),
                .product(name: "SyntheticTraffic", package: "audit-trail"),
                .product(name: "CollectorCore", package: "audit-trail"),
            ],
            path: "Benchmarks/NormalizerBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "IngestBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "LogFormat", package: "audit-trail"),
                .product(name: "SyntheticTraffic", package: "audit-trail"),
                .product(name: "CollectorCore", package: "audit-trail"),
            ],
            path: "Benchmarks/IngestBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
