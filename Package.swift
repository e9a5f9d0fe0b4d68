// swift-tools-version: 6.2
import PackageDescription

// Module layout (see docs/ARCHITECTURE.md): the folder list under Sources/
// is the pipeline, and arrows only point down.
//   jobylon-bridge (CLI: argument parsing) → BridgeApp (configuration, service group)
//   BridgeApp → BridgeHTTP, StoreSQLite, FileArchive, CSVExport, RESTDelivery, Routing
//   targets → JobEngine, DurableFiles, CurlClient → Domain → Mapping → JSON, Clocks
// JSON, Clocks, Mapping and Domain are pure: no Hummingbird, NIO, SQL or curl.

let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let metrics: Target.Dependency = .product(name: "Metrics", package: "swift-metrics")
let lifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")

let package = Package(
    name: "jobylon-bridge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "jobylon-bridge", targets: ["jobylon-bridge"]),
        .library(name: "JSON", targets: ["JSON"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.60.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.0.0"),
    ],
    targets: [
        // libcurl as a system library; the typed shim wraps its variadic calls.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(name: "CCurlShim", dependencies: ["CCurl"]),
        .target(name: "CSystemShim"),

        // Pure: no I/O, no HTTP, SQL or curl.
        .target(name: "JSON"),
        .target(name: "Clocks"),
        .target(name: "Mapping", dependencies: ["JSON", "Clocks", crypto]),
        .target(name: "Domain", dependencies: ["JSON", "Clocks", "Mapping"]),

        // The pipeline, in order: routing, the job engine, the targets.
        .target(name: "Routing", dependencies: ["Domain", "Mapping", "JSON", "Clocks", logging, lifecycle]),
        .target(name: "JobEngine", dependencies: ["Domain", "Clocks", "JSON", logging, metrics, lifecycle]),
        .target(name: "DurableFiles", dependencies: [.product(name: "NIOPosix", package: "swift-nio")]),
        .target(name: "CurlClient", dependencies: ["CCurlShim", logging]),
        .target(name: "RESTDelivery", dependencies: ["JobEngine", "Domain", "Mapping", "JSON", "Clocks", "CurlClient", logging, metrics, lifecycle]),
        .target(
            name: "CSVExport",
            dependencies: ["JobEngine", "Domain", "Mapping", "JSON", "Clocks", "DurableFiles", "CurlClient", crypto, logging, metrics, lifecycle]),
        .target(
            name: "FileArchive",
            dependencies: ["JobEngine", "Domain", "Mapping", "JSON", "Clocks", "CurlClient", "DurableFiles", crypto, logging, metrics, lifecycle]
        ),

        // Edges: the store and the HTTP server.
        .target(
            name: "StoreSQLite",
            dependencies: [
                "Domain", "JSON", "Clocks", "Mapping",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                crypto, logging,
            ]
        ),
        .target(
            name: "BridgeHTTP",
            dependencies: [
                "Domain", "JSON", "Clocks", crypto,
                .product(name: "CompressNIO", package: "compress-nio"),
                metrics,
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                logging,
            ]
        ),

        // The composition root: configuration and the service group.
        .target(
            name: "BridgeApp",
            dependencies: [
                "Clocks", "JSON", "Mapping", "Domain", "Routing", "JobEngine", "DurableFiles", "CurlClient",
                "RESTDelivery", "CSVExport", "FileArchive", "StoreSQLite", "BridgeHTTP", "CSystemShim",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                metrics, logging, lifecycle,
            ]
        ),
        // Argument parsing only.
        .executableTarget(
            name: "jobylon-bridge",
            dependencies: [
                "BridgeApp", "Clocks", "JSON", "Mapping", "Domain", "CurlClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                logging,
            ]
        ),
        .executableTarget(name: "json-bench", dependencies: ["JSON"], path: "Benchmarks/JSONBench"),

        // Test helpers: a manual clock, seeded randomness, local servers.
        .target(name: "TestSupport", dependencies: ["Clocks", "Domain", "Routing", "StoreSQLite", logging], path: "Tests/TestSupport"),
        .target(
            name: "TestServers",
            dependencies: ["JSON", .product(name: "Hummingbird", package: "hummingbird"), lifecycle, logging],
            path: "Tests/TestServers"
        ),
        .testTarget(name: "JSONTests", dependencies: ["JSON", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ClocksTests", dependencies: ["Clocks", "Mapping", "TestSupport"]),
        .testTarget(name: "MappingTests", dependencies: ["Mapping", "JSON", "Clocks", "TestSupport"]),
        .testTarget(name: "DomainTests", dependencies: ["Domain", "JSON", "Clocks", "Mapping", "TestSupport"]),
        .testTarget(
            name: "RoutingTests",
            dependencies: [
                "Routing", "Domain", "Mapping", "JSON", "Clocks", "StoreSQLite", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                lifecycle,
            ]),
        .testTarget(
            name: "JobEngineTests",
            dependencies: [
                "JobEngine", "Routing", "Domain", "JSON", "Clocks", "StoreSQLite", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                lifecycle,
            ]
        ),
        .testTarget(name: "DurableFilesTests", dependencies: ["DurableFiles"]),
        .testTarget(name: "RESTDeliveryTests", dependencies: ["RESTDelivery", "Domain", "Mapping", "JSON", "Clocks", "CurlClient"]),
        .testTarget(
            name: "CSVExportTests",
            dependencies: [
                "CSVExport", "JobEngine", "Domain", "Mapping", "JSON", "Clocks", "DurableFiles", "StoreSQLite", "CurlClient", "TestSupport",
                "TestServers",
                lifecycle,
            ]
        ),
        .testTarget(name: "FileArchiveTests", dependencies: ["FileArchive", "Domain", "Mapping", "JSON", "Clocks", "TestSupport"]),
        .testTarget(
            name: "CurlClientTests",
            dependencies: ["CurlClient", "TestServers", .product(name: "Hummingbird", package: "hummingbird"), lifecycle]
        ),
        .testTarget(
            name: "StoreSQLiteTests",
            dependencies: ["StoreSQLite", "Domain", "JSON", "Clocks", "Mapping", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "BridgeHTTPTests",
            dependencies: [
                "BridgeHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "BridgeAppTests",
            dependencies: [
                "BridgeApp", "Clocks", "JSON", "Mapping", "Domain", "Routing", "StoreSQLite", "CurlClient", "TestSupport", "TestServers",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                logging, lifecycle,
            ]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "CurlClient", "JSON", "TestServers", .product(name: "GRDB", package: "GRDB.swift"),
                crypto,
                .product(name: "Hummingbird", package: "hummingbird"),
                lifecycle,
            ],
            resources: [.copy("Fixtures")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
