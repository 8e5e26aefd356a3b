// swift-tools-version: 6.0
import PackageDescription

// A swift-metrics backend over the core package's instrumentation API. It lives in its own
// package so that the core keeps zero package dependencies.
let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "swift-prom-multiproc-swift-metrics",
    // Synchronization.Mutex needs macOS 15; the package targets Linux, this only keeps a
    // macOS build of the manifest honest.
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "PromMultiprocMetrics", targets: ["PromMultiprocMetrics"]),
    ],
    dependencies: [
        // `name:` because a path dependency's identity is its folder's name, which differs
        // between clones and worktrees; the products below name the core by this name.
        .package(name: "swift-prom-multiproc", path: "../.."),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "PromMultiprocMetrics",
            dependencies: [
                .product(name: "PromMetrics", package: "swift-prom-multiproc"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "swift-metrics-worker",
            dependencies: [
                "PromMultiprocMetrics",
                .product(name: "PromMetrics", package: "swift-prom-multiproc"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "PromMultiprocMetricsTests",
            dependencies: [
                "PromMultiprocMetrics", "swift-metrics-worker",
                .product(name: "PromMetrics", package: "swift-prom-multiproc"),
                .product(name: "MultiprocessCollector", package: "swift-prom-multiproc"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
    ]
)
