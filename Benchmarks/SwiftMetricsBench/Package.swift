// swift-tools-version: 6.0
import PackageDescription

// Side-by-side micro-benchmark: swift-metrics through this project's multiprocess backend and
// through swift-prometheus' in-process PrometheusMetricsFactory. A separate package, because it
// depends on swift-prometheus, which neither the core nor the integration needs.
let package = Package(
    name: "swift-metrics-bench",
    platforms: [.macOS(.v15)],
    dependencies: [
        // `name:` because a path dependency's identity is its folder's name.
        .package(name: "swift-prom-multiproc", path: "../.."),
        .package(name: "swift-prom-multiproc-swift-metrics", path: "../../Integrations/SwiftMetrics"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .executableTarget(
            name: "swift-metrics-bench",
            dependencies: [
                .product(name: "PromMetrics", package: "swift-prom-multiproc"),
                .product(name: "PromMultiprocMetrics", package: "swift-prom-multiproc-swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
