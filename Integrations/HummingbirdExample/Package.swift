// swift-tools-version: 6.0
import PackageDescription

// A Hummingbird app whose MetricsMiddleware writes through the swift-metrics backend into one
// multiprocess directory shared by N worker processes.
let package = Package(
    name: "swift-prom-multiproc-hummingbird-example",
    platforms: [.macOS(.v15)],
    dependencies: [
        // `name:` because a path dependency's identity is its folder's name.
        .package(name: "swift-prom-multiproc-swift-metrics", path: "../SwiftMetrics"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    ],
    targets: [
        .executableTarget(
            name: "hummingbird-example",
            dependencies: [
                .product(name: "PromMultiprocMetrics", package: "swift-prom-multiproc-swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
