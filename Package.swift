// swift-tools-version: 6.2
import PackageDescription

// Module layout (see docs/ARCHITECTURE.md): arrows only point down.
//   jobylon-bridge (CLI) → BridgeHTTP → BridgeCore → JSON
//                        → CurlClient → CCurlShim → CCurl (system libcurl)
// JSON and BridgeCore are pure: no Hummingbird, NIO, SQL or curl.
let package = Package(
    name: "jobylon-bridge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "jobylon-bridge", targets: ["jobylon-bridge"]),
        .library(name: "JSON", targets: ["JSON"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
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
        .target(name: "JSON"),
        .target(name: "Mapping", dependencies: ["JSON", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "BridgeCore", dependencies: ["JSON", "Mapping"]),
        .target(
            name: "StoreSQLite",
            dependencies: [
                "BridgeCore",
                "JSON",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Runtime",
            dependencies: [
                "BridgeCore",
                "JSON",
                "Mapping",
                "CurlClient",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "CurlClient",
            dependencies: [
                "CCurlShim",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "BridgeHTTP",
            dependencies: [
                "BridgeCore",
                "JSON",
                "Runtime",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "jobylon-bridge",
            dependencies: [
                "BridgeHTTP",
                "CSystemShim",
                "BridgeCore",
                "CurlClient",
                "JSON",
                "Mapping",
                "Runtime",
                "StoreSQLite",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .executableTarget(name: "json-bench", dependencies: ["JSON"], path: "Benchmarks/JSONBench"),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .target(
            name: "TestServers",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestServers"
        ),
        .testTarget(name: "JSONTests", dependencies: ["JSON", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "CurlClientTests",
            dependencies: [
                "CurlClient",
                "TestServers",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "BridgeCoreTests", dependencies: ["BridgeCore", "JSON", "Mapping", "TestSupport"]),
        .testTarget(name: "MappingTests", dependencies: ["Mapping", "JSON", "TestSupport"]),
        .testTarget(
            name: "StoreSQLiteTests",
            dependencies: ["StoreSQLite", "BridgeCore", "JSON", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(
            name: "RuntimeTests",
            dependencies: ["Runtime", "StoreSQLite", "BridgeCore", "JSON", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "CurlClient", "JSON", "TestServers", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "BridgeHTTPTests",
            dependencies: [
                "BridgeHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
