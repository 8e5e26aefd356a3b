// swift-tools-version: 6.0
import PackageDescription

// A Hummingbird app whose MetricsMiddleware writes through the swift-metrics backend into one
// multiprocess directory shared by N worker processes, and which serves the merged metrics at
// /metrics with the core's MetricsHandler.
let package = Package(
    name: "swift-prom-multiproc-hummingbird-example",
    platforms: [.macOS(.v15)],
    dependencies: [
        // `name:` because a path dependency's identity is its folder's name.
        .package(name: "swift-prom-multiproc", path: "../.."),
        .package(name: "swift-prom-multiproc-swift-metrics", path: "../SwiftMetrics"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        // Hummingbird's own dependency, named for HTTPField in the /metrics route.
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
    ],
    targets: [
        .executableTarget(
            name: "hummingbird-example",
            dependencies: [
                .product(name: "PromMultiprocMetrics", package: "swift-prom-multiproc-swift-metrics"),
                .product(name: "PromHTTP", package: "swift-prom-multiproc"),
                .product(name: "PromMetrics", package: "swift-prom-multiproc"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        // End-to-end: the app as a pool of worker processes under load, one killed and
        // restarted, `prom-multiproc-cli serve` scraped by a real Prometheus. The dependencies
        // on the two executables only make `swift build --build-tests` build them next to the
        // test bundle, where the tests start them as child processes.
        .testTarget(
            name: "HummingbirdExampleTests",
            dependencies: [
                "hummingbird-example",
                .product(name: "prom-multiproc-cli", package: "swift-prom-multiproc"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
