// swift-tools-version: 6.2
// The audit-trail pipeline: the storage core (LogFormat), the collector daemon and the auditq query tool.
// Layout (fixed at the top): Sources/LogFormat, Sources/Collector, Sources/auditq, Tests, Benchmarks.
import PackageDescription

let package = Package(
    name: "audit-trail",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LogFormat", targets: ["LogFormat"]),
        .executable(name: "collector", targets: ["collector"]),
        .executable(name: "auditq", targets: ["auditq"]),
        // For the benchmark package only (it depends on the root by path); not a stable API.
        .library(name: "CollectorCore", targets: ["CollectorCore"]),
    ],
    dependencies: [
        // jwt-kit 5 needs swift-crypto 4 (so 4.x resolves); the range keeps the old lower bound for readers of 3.
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    ],
    targets: [
        // C libraries. zlib's init functions are macros, so CZlib carries a header of inline wrappers.
        .systemLibrary(
            name: "CZlib",
            path: "Sources/LogFormat/CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CLZ4",
            path: "Sources/LogFormat/CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        // Everything about data at rest; knows nothing of the network.
        .target(
            name: "LogFormat",
            dependencies: [
                "CZlib", "CLZ4",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                // The retention policy is YAML, read by both the collector and auditq.
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/LogFormat",
            exclude: ["CZlib", "CLZ4"]
        ),
        // OTLP messages generated from protos/ by regenerate.sh (committed; CI never runs protoc).
        .target(
            name: "OTLPProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Sources/Collector/OTLPProto",
            exclude: ["protos", "regenerate.sh"]
        ),
        // OTLP <-> AuditEvent mapping, shared by the collector (import) and auditq (export).
        .target(
            name: "OTLPBridge",
            dependencies: [
                "LogFormat", "OTLPProto",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Sources/Collector/OTLPBridge"
        ),
        // gRPC stubs of the OTLP TraceService and LogsService, generated from OTLPProto's protos by
        // regenerate.sh (committed; CI never runs protoc).
        .target(
            name: "OTLPGRPC",
            dependencies: [
                "OTLPProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            path: "Sources/Collector/OTLPGRPC",
            exclude: ["regenerate.sh"]
        ),
        // The collector's pure parsers and mappers of what arrives from the network (JSON, NDJSON access lines,
        // OTLP/JSON, Zipkin, syslog, traceparent, JWTs, redaction): no I/O, no server stack, so the fuzz targets
        // build against them alone.
        .target(
            name: "CollectorParsers",
            dependencies: [
                "LogFormat", "OTLPProto", "OTLPBridge",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Collector/Parsers"
        ),
        // The collector daemon: logic in CollectorCore, the executable is a thin shell.
        .target(
            name: "CollectorCore",
            dependencies: [
                "LogFormat", "OTLPProto", "OTLPBridge", "OTLPGRPC", "CollectorParsers",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            path: "Sources/Collector/CollectorCore"
        ),
        .executableTarget(
            name: "collector",
            dependencies: [
                "CollectorCore", "LogFormat", "OTLPBridge",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Collector/Daemon"
        ),
        // The query tool: logic in AuditQuery, the executable is a thin shell.
        .target(
            name: "AuditQuery",
            dependencies: [
                "LogFormat", "OTLPBridge", "OTLPProto",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/auditq/AuditQuery"
        ),
        .executableTarget(
            name: "auditq",
            dependencies: [
                "AuditQuery", "LogFormat",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/auditq/CLI"
        ),
        // A writer process for the SIGKILL crash-recovery test.
        .executableTarget(
            name: "SegmentCrashWriter",
            dependencies: ["LogFormat"],
            path: "Tests/SegmentCrashWriter"
        ),
        // Fuzzing (`make fuzz`, `make fuzz-smoke`): each fuzz target's entry point, the same calls the receivers
        // and the store make, with cheap invariants; shared by the libFuzzer binary and the regression tests.
        .target(
            name: "FuzzHarness",
            dependencies: [
                "CollectorParsers", "LogFormat", "OTLPProto", "OTLPBridge",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Fuzz/Harness"
        ),
        // The libFuzzer binary when built with `-sanitize=fuzzer -DFUZZING` (see the Makefile); a plain build
        // is a replayer that runs files through a fuzz target and writes the seed corpus.
        .executableTarget(
            name: "AuditFuzz",
            dependencies: ["FuzzHarness"],
            path: "Tests/Fuzz/AuditFuzz"
        ),
        .testTarget(
            name: "LogFormatTests",
            dependencies: [
                "LogFormat", "SegmentCrashWriter",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/LogFormatTests"
        ),
        .testTarget(
            name: "CollectorCoreTests",
            dependencies: [
                "CollectorCore", "CollectorParsers", "FuzzHarness", "LogFormat", "OTLPProto", "OTLPBridge", "OTLPGRPC", "CZlib",
                "collector", "auditq",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/CollectorCoreTests"
        ),
        .testTarget(
            name: "AuditQueryTests",
            dependencies: ["AuditQuery", "LogFormat", "CollectorCore", "OTLPBridge", "auditq", "collector"],
            path: "Tests/AuditQueryTests"
        ),
    ]
)

// The same settings for every target of ours: Swift 6 mode, warnings are errors.
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .swiftLanguageMode(.v6),
        .treatAllWarnings(as: .error),
    ]
}
