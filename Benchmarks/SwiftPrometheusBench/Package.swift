// swift-tools-version: 6.2
import PackageDescription

// The peer for scripts/bench.sh's hot-path rows: the same operations as
// `prom-multiproc-bench hot`, on swift-prometheus 2.4.1's in-process metrics. A separate
// package, because it depends on swift-prometheus, which the core must not; it does not depend
// on the core at all (our figures come from prom-multiproc-bench in the same bench run).
let package = Package(
    name: "swift-prometheus-bench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
    ],
    targets: [
        .executableTarget(
            name: "swift-prometheus-hot",
            dependencies: [.product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
