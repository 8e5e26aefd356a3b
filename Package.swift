// swift-tools-version: 6.0
import PackageDescription

// No package dependencies: the Swift toolchain only (Glibc, Foundation, Dispatch,
// Synchronization, Testing). Integrations with other packages live in separate packages.
let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "swift-prom-multiproc",
    products: [
        .library(name: "MmapStore", targets: ["MmapStore"]),
        .library(name: "PromMetrics", targets: ["PromMetrics"]),
        .library(name: "MultiprocessCollector", targets: ["MultiprocessCollector"]),
        .executable(name: "prom-multiproc-cli", targets: ["prom-multiproc-cli"]),
    ],
    targets: [
        .target(name: "MmapStore", swiftSettings: strict),
        .target(name: "PromMetrics", dependencies: ["MmapStore"], swiftSettings: strict),
        .target(
            name: "MultiprocessCollector", dependencies: ["MmapStore", "PromMetrics"],
            swiftSettings: strict),
        .executableTarget(
            name: "prom-multiproc-cli",
            dependencies: ["MmapStore", "PromMetrics", "MultiprocessCollector"],
            swiftSettings: strict),
        // Release-build benchmarks run side by side with prometheus_client by scripts/bench.sh.
        .executableTarget(
            name: "prom-multiproc-bench", dependencies: ["MmapStore", "PromMetrics", "MultiprocessCollector"],
            swiftSettings: strict),
        // A worker used by the multiprocess tests and benchmarks: tests spawn it as a real
        // child process (never fork() inside the test runner).
        .executableTarget(
            name: "prom-multiproc-testworker", dependencies: ["MmapStore", "PromMetrics"],
            swiftSettings: strict),
        // The fuzz harness for the file reader and the key decoder (see Fuzz/README.md): a
        // seeded mutation driver in a normal build, libFuzzer's entry point when built with
        // `-sanitize=fuzzer -D PMP_LIBFUZZER`.
        .executableTarget(name: "prom-multiproc-fuzz", dependencies: ["MmapStore"], swiftSettings: strict),
        // Shared helpers for the test targets (temporary directories, child processes, tools).
        .target(name: "TestSupport", dependencies: ["MmapStore"], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(
            name: "MmapStoreTests", dependencies: ["MmapStore", "TestSupport", "prom-multiproc-testworker"],
            swiftSettings: strict),
        .testTarget(
            name: "PromMetricsTests", dependencies: ["PromMetrics", "MmapStore", "TestSupport", "prom-multiproc-testworker"],
            swiftSettings: strict),
        .testTarget(
            name: "MultiprocessCollectorTests",
            dependencies: ["MultiprocessCollector", "PromMetrics", "MmapStore", "TestSupport", "prom-multiproc-testworker"],
            swiftSettings: strict),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "MultiprocessCollector", "PromMetrics", "MmapStore", "prom-multiproc-cli",
                "prom-multiproc-testworker", "TestSupport",
            ],
            swiftSettings: strict),
    ]
)
