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
    ],
    targets: [
        // libcurl as a system library; the typed shim wraps its variadic calls.
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(name: "CCurlShim", dependencies: ["CCurl"]),
        .target(name: "JSON"),
        .target(name: "BridgeCore", dependencies: ["JSON"]),
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
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "jobylon-bridge",
            dependencies: [
                "BridgeHTTP",
                "BridgeCore",
                "CurlClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .executableTarget(name: "json-bench", dependencies: ["JSON"], path: "Benchmarks/JSONBench"),
        .testTarget(name: "JSONTests", dependencies: ["JSON"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "CurlClientTests",
            dependencies: [
                "CurlClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
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
