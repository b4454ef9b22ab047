// swift-tools-version: 6.2
// The audit-trail pipeline. Each target is one layer, listed from the bottom up; the README's module table says
// who imports each. Data flows one way: receivers decode -> the normaliser derives audit fields -> LogFormat
// writes; a query goes auditq -> StoreQuery -> LogFormat and back out as output.
// Layout (fixed at the top): Sources/LogFormat, Sources/Collector, Sources/auditq, Tests, Benchmarks.
import PackageDescription

let package = Package(
    name: "audit-trail",
    // Linux only: the storage core and the daemon call Glibc directly (directory fsync, flock, mmap, sockets) and
    // no Apple-platform build is tested here, so none is claimed.
    products: [
        .library(name: "LogFormat", targets: ["LogFormat"]),
        .library(name: "StoreQuery", targets: ["StoreQuery"]),
        .executable(name: "collector", targets: ["collector"]),
        .executable(name: "auditq", targets: ["auditq"]),
        // For the benchmark package only (it depends on the root by path); not a stable API.
        .library(name: "CollectorCore", targets: ["CollectorCore"]),
        .library(name: "SyntheticTraffic", targets: ["SyntheticTraffic"]),
        .library(name: "AuditQuery", targets: ["AuditQuery"]),
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
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // MARK: Storage layer (Sources/LogFormat)

        // C libraries. zlib's init functions are macros, so CZlib carries a header of inline wrappers.
        .systemLibrary(
            name: "CZlib", path: "Sources/LogFormat/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(
            name: "CLZ4", path: "Sources/LogFormat/CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // CRC-32 with the carry-less multiply: zlib's checksum (the one the format names), about three times as fast
        // on x86-64 with PCLMULQDQ; elsewhere it takes nothing and zlib does it all.
        .target(name: "CCRC32", path: "Sources/LogFormat/CCRC32"),
        // What LogFormat asks of the C library directly: malloc_trim after a seal, the processor a thread runs on.
        .target(name: "CPlatform", path: "Sources/LogFormat/CPlatform"),
        // Data at rest and nothing else: model, canonical records, codecs, blocks, segments, index, integrity,
        // data-directory layout, catalog and tombstone files. No network, no YAML, no demo traffic.
        .target(
            name: "LogFormat",
            dependencies: [
                "CZlib", "CLZ4", "CCRC32", "CPlatform",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/LogFormat/LogFormat"
        ),
        // The store over data directories: catalog-driven planning, search, activity, trace assembly, directory
        // verification, and the retention job with its YAML policy.
        .target(
            name: "StoreQuery",
            dependencies: [
                "LogFormat",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/LogFormat/StoreQuery"
        ),
        // An S3 client of our own (SigV4, path-style, create-only PUT, ranged GET, LIST v2, Object Lock) for the
        // object-store tier; kept out of LogFormat, which knows no network.
        .target(
            name: "ObjectStore",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/LogFormat/ObjectStore"
        ),
        // Sealed segments in an object store as a query reads them: the bucket's key layout, listing, sparse cache
        // files filled by ranged GETs, verification across local directories and the bucket.
        .target(
            name: "RemoteStore",
            dependencies: [
                "LogFormat", "StoreQuery", "ObjectStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Sources/LogFormat/RemoteStore"
        ),
        // The one JSON string escaper of the package, for everything that writes JSON text.
        .target(name: "JSONText", path: "Sources/LogFormat/JSONText"),

        // MARK: Collector (Sources/Collector)

        // OTLP messages generated from protos/ by regenerate.sh (committed; CI never runs protoc).
        .target(
            name: "OTLPProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Sources/Collector/OTLPProto",
            exclude: ["protos", "regenerate.sh"]
        ),
        // gRPC stubs of the OTLP TraceService and LogsService, generated by regenerate.sh (committed).
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
        // OTLP <-> AuditEvent mapping: the collector imports with it, auditq exports with it.
        .target(
            name: "OTLPBridge",
            dependencies: ["LogFormat", "OTLPProto", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Sources/Collector/OTLPBridge"
        ),
        // Decoders of what arrives from the network (OTLP/JSON, Zipkin, access lines, syslog, traceparent, JWTs,
        // redaction, gzip bodies): no I/O and no server stack, so the fuzz targets link them alone.
        .target(
            name: "CollectorParsers",
            dependencies: [
                "LogFormat", "OTLPProto", "OTLPBridge", "CZlib",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/Collector/Parsers"
        ),
        // Realistic edge + mesh traffic: the generator, the load generator and its HTTP client. For loadgen, tests,
        // benchmarks and fuzz seeds; the storage library never imports it.
        .target(
            name: "SyntheticTraffic",
            dependencies: [
                "LogFormat", "JSONText", "CollectorParsers", "OTLPBridge", "OTLPGRPC", "OTLPProto",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Sources/Collector/SyntheticTraffic"
        ),
        // The daemon: receivers, the normalising stage, the ingest pipeline, configuration, TLS and sender
        // authentication, health and metrics, the retention schedule, shipping sealed segments to object storage.
        // The executable is a thin shell over it.
        .target(
            name: "CollectorCore",
            dependencies: [
                "LogFormat", "StoreQuery", "ObjectStore", "RemoteStore", "OTLPProto", "OTLPBridge", "OTLPGRPC",
                "CollectorParsers",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
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
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            path: "Sources/Collector/CollectorCore"
        ),
        .executableTarget(
            name: "collector",
            dependencies: [
                "CollectorCore", "LogFormat", "ObjectStore", "OTLPBridge", "SyntheticTraffic",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Collector/Daemon"
        ),

        // MARK: Query tool (Sources/auditq)

        // auditq's output formats (table, NDJSON, CSV, OTLP JSON), evidence bundles and their verification.
        .target(
            name: "AuditQuery",
            dependencies: [
                "LogFormat", "StoreQuery", "JSONText", "OTLPBridge", "OTLPProto",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/auditq/AuditQuery"
        ),
        .executableTarget(
            name: "auditq",
            dependencies: [
                "AuditQuery", "LogFormat", "StoreQuery", "RemoteStore", "ObjectStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/auditq/CLI"
        ),

        // MARK: Tests (Tests/)

        // A writer process for the SIGKILL crash-recovery test.
        .executableTarget(name: "SegmentCrashWriter", dependencies: ["LogFormat"], path: "Tests/SegmentCrashWriter"),
        // Fuzzing (`make fuzz`, `make fuzz-smoke`): each fuzz target's entry point, the same calls the receivers
        // and the store make, with cheap invariants; shared by the libFuzzer binary and the regression tests.
        .target(
            name: "FuzzHarness",
            dependencies: [
                "CollectorParsers", "LogFormat", "OTLPProto", "OTLPBridge", "SyntheticTraffic",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Fuzz/Harness"
        ),
        // The libFuzzer binary when built with `-sanitize=fuzzer -DFUZZING` (see the Makefile); a plain build
        // is a replayer that runs files through a fuzz target and writes the seed corpus.
        .executableTarget(name: "AuditFuzz", dependencies: ["FuzzHarness"], path: "Tests/Fuzz/AuditFuzz"),
        // Shared by the test targets: temporary directories with an explicit lifetime, byte damage, seeded
        // random events, the one child-process launcher (concurrent stdout/stderr, enforced deadlines), and
        // retention runs that wait out a lock a child being started still holds.
        .target(
            name: "TestSupport",
            dependencies: [
                "LogFormat", "StoreQuery", "SyntheticTraffic", "ObjectStore",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport"
        ),
        // One test target per module, named after it.
        .testTarget(
            name: "TestSupportTests",
            dependencies: ["TestSupport"],
            path: "Tests/TestSupportTests"
        ),
        .testTarget(
            name: "LogFormatTests",
            dependencies: [
                "LogFormat", "CCRC32", "CPlatform", "StoreQuery", "SyntheticTraffic", "SegmentCrashWriter",
                "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/LogFormatTests"
        ),
        // The S3 client: SigV4 against AWS's test suite, requests against a real Ceph RGW on loopback.
        .testTarget(
            name: "ObjectStoreTests",
            dependencies: [
                "ObjectStore", "TestSupport", .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/ObjectStoreTests"
        ),
        // Queries, the cache and verify over a bucket, against a real Ceph RGW on loopback.
        .testTarget(
            name: "RemoteStoreTests",
            dependencies: ["RemoteStore", "ObjectStore", "StoreQuery", "LogFormat", "TestSupport", "auditq"],
            path: "Tests/RemoteStoreTests"
        ),
        .testTarget(
            name: "StoreQueryTests",
            dependencies: [
                "StoreQuery", "LogFormat", "SyntheticTraffic", "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/StoreQueryTests"
        ),
        // The parsers and the OTLP bridge: pure functions over bytes, no server.
        .testTarget(
            name: "CollectorParsersTests",
            dependencies: [
                "CollectorParsers", "OTLPBridge", "OTLPProto", "FuzzHarness", "LogFormat", "SyntheticTraffic",
                "TestSupport", .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/CollectorParsersTests"
        ),
        .testTarget(
            name: "SyntheticTrafficTests",
            dependencies: ["SyntheticTraffic", "LogFormat"],
            path: "Tests/SyntheticTrafficTests"
        ),
        .testTarget(
            name: "CollectorCoreTests",
            dependencies: [
                "CollectorCore", "CollectorParsers", "LogFormat", "StoreQuery", "SyntheticTraffic",
                "OTLPProto", "OTLPBridge", "OTLPGRPC", "CZlib", "collector", "auditq", "TestSupport", "ObjectStore",
                "RemoteStore",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Tests/CollectorCoreTests"
        ),
        .testTarget(
            name: "AuditQueryTests",
            dependencies: [
                "AuditQuery", "LogFormat", "StoreQuery", "SyntheticTraffic", "CollectorCore", "OTLPBridge", "auditq",
                "collector", "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/AuditQueryTests",
            // Evidence bundles written by earlier auditq versions, read by the tests from the source tree.
            exclude: ["Bundles", "Golden"]
        ),
    ]
)

// The same settings for every target of ours: Swift 6 mode, warnings are errors; in release builds, a concrete
// generic type's metadata (`Set<String>`, `[IndexField: …]`, `OptionGroup<DataOptions>`) through its accessor,
// which is handed the conformances it needs, instead of by mangled name, which looks each one up at run time: a
// first look-up scans all of the binary's ~10,000 conformance records, a tenth of a millisecond or more of every
// short auditq process (BENCHMARKS.md, "Plain command lines").
for target in package.targets where target.type != .system {
    target.swiftSettings =
        (target.swiftSettings ?? []) + [
            .swiftLanguageMode(.v6),
            .treatAllWarnings(as: .error),
            .unsafeFlags(
                ["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"],
                .when(configuration: .release)),
        ]
}
