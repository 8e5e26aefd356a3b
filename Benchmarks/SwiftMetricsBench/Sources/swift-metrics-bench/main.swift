// swift-metrics through this project's multiprocess backend vs swift-prometheus 2.4.1's
// in-process PrometheusMetricsFactory, side by side in one process.
//
//   swift run -c release --package-path Benchmarks/SwiftMetricsBench swift-metrics-bench [--rounds N] [--ops N]
//
// The work lives in Bench.swift (code in this file is main-actor code).
Bench.main(CommandLine.arguments)
