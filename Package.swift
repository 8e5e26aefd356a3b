// swift-tools-version: 6.0
import PackageDescription

// No package dependencies: the Swift toolchain only (Glibc, Foundation, Dispatch,
// Synchronization, Testing). Integrations with other packages live in separate packages
// under Integrations/.
//
// Dependencies point one way (docs/ARCHITECTURE.md):
//
//   CGuardedRead <- SystemCalls <- MmapStore <- PromMetrics <- MultiprocessCollector
//                                PromMetrics <- PromExposition
//                  MultiprocessCollector, PromExposition <- PromHTTP <- prom-multiproc-cli
let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "swift-prom-multiproc",
    products: [
        .library(name: "PromMetrics", targets: ["PromMetrics"]),
        .library(name: "MultiprocessCollector", targets: ["MultiprocessCollector"]),
        .library(name: "PromExposition", targets: ["PromExposition"]),
        .library(name: "PromHTTP", targets: ["PromHTTP"]),
        .executable(name: "prom-multiproc-cli", targets: ["prom-multiproc-cli"]),
    ],
    targets: [
        // Reads from a kept read-only file mapping that survive a truncation under it (SIGBUS
        // caught for the reading thread, others passed on): C, for sigsetjmp.
        .target(name: "CGuardedRead"),
        // Every system call (files, sockets, threads, signals), wrapped once; the only target
        // that imports Glibc. Internal: no product exposes it.
        .target(name: "SystemCalls", dependencies: ["CGuardedRead"], swiftSettings: strict),
        // The per-process metric file: format, create, grow, update, read, liveness.
        .target(name: "MmapStore", dependencies: ["SystemCalls"], swiftSettings: strict),
        // The data model (families, samples, naming) and the instrumentation API.
        .target(name: "PromMetrics", dependencies: ["MmapStore", "SystemCalls"], swiftSettings: strict),
        // The one merge engine; compaction, mark-dead and wipe built on it.
        .target(
            name: "MultiprocessCollector", dependencies: ["MmapStore", "PromMetrics", "SystemCalls"],
            swiftSettings: strict),
        // zlib from the system, for gzip-compressed scrapes (a system library, not a package).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Text 0.0.4 and OpenMetrics renderers, content negotiation, compression: bytes out, no I/O.
        .target(name: "PromExposition", dependencies: ["SystemCalls", "PromMetrics", "CZlib"], swiftSettings: strict),
        // The HTTP/1.1 server and the embeddable /metrics handler.
        .target(
            name: "PromHTTP",
            dependencies: ["SystemCalls", "PromMetrics", "MultiprocessCollector", "PromExposition"],
            swiftSettings: strict),
        // Argument parsing and printing only.
        .executableTarget(
            name: "prom-multiproc-cli",
            dependencies: ["SystemCalls", "MmapStore", "PromMetrics", "MultiprocessCollector", "PromExposition", "PromHTTP"],
            swiftSettings: strict),
        // Release-build benchmarks run side by side with prometheus_client by scripts/bench.sh.
        .executableTarget(
            name: "prom-multiproc-bench",
            dependencies: ["SystemCalls", "MmapStore", "PromMetrics", "MultiprocessCollector", "PromExposition"],
            swiftSettings: strict),
        // A worker used by the multiprocess tests and benchmarks: tests spawn it as a real
        // child process (never fork() inside the test runner).
        .executableTarget(
            name: "prom-multiproc-testworker", dependencies: ["SystemCalls", "MmapStore", "PromMetrics", "MultiprocessCollector"],
            swiftSettings: strict),
        // The fuzz harness for the file reader and the key decoder (see Fuzz/README.md): a
        // seeded mutation driver in a normal build, libFuzzer's entry point when built with
        // `-sanitize=fuzzer -D PMP_LIBFUZZER`.
        .executableTarget(name: "prom-multiproc-fuzz", dependencies: ["SystemCalls", "MmapStore"], swiftSettings: strict),
        // Shared helpers for the test targets (temporary directories, child processes, tools).
        .target(name: "TestSupport", dependencies: ["SystemCalls", "MmapStore"], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(
            name: "MmapStoreTests",
            dependencies: ["SystemCalls", "MmapStore", "TestSupport", "prom-multiproc-testworker"],
            swiftSettings: strict),
        .testTarget(
            name: "PromMetricsTests",
            dependencies: ["SystemCalls", "PromMetrics", "MmapStore", "TestSupport", "prom-multiproc-testworker"],
            swiftSettings: strict),
        .testTarget(
            name: "MultiprocessCollectorTests",
            dependencies: [
                "SystemCalls", "MultiprocessCollector", "PromExposition", "PromMetrics", "MmapStore", "TestSupport",
                "prom-multiproc-testworker",
            ],
            swiftSettings: strict),
        // The README's and the documentation's Swift examples, compiled and checked against the docs.
        .testTarget(
            name: "ExamplesTests",
            dependencies: ["MmapStore", "PromMetrics", "MultiprocessCollector", "PromExposition", "PromHTTP", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "PromHTTPTests",
            dependencies: ["SystemCalls", "PromHTTP", "PromMetrics", "MultiprocessCollector", "MmapStore", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "SystemCalls", "MultiprocessCollector", "PromExposition", "PromHTTP", "PromMetrics", "MmapStore",
                "prom-multiproc-cli", "prom-multiproc-testworker", "TestSupport",
            ],
            swiftSettings: strict),
    ]
)
