// swift-prometheus-hot: scripts/bench.sh's hot-path rows on swift-prometheus 2.4.1.
//
//   swift-prometheus-hot [--scale S] [--reps R]
//
// One JSON line per operation, in the format of `prom-multiproc-bench hot` (one thread):
// {"impl": "swift-prometheus", "op": ..., "threads": 1, "n": ..., "ns_per_op_wall": ...}.
// Operation names are ours (HOT_OPS in scripts/bench/run.py) where swift-prometheus has the
// same operation, with a suffix where it has two (Int and Double counter increments).
// Every loop is `@inline(never)` and gets its metric as an argument; label values come from
// the environment, as in prom-multiproc-bench, so the optimizer cannot fold them.
import Foundation
import Prometheus

/// Python's (and our) default histogram buckets.
let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

@inline(never) func loopIncrementInt(_ c: Counter, _ n: Int) { for _ in 0..<n { c.increment() } }
@inline(never) func loopIncrementDouble(_ c: Counter, _ n: Int) { for _ in 0..<n { c.increment(by: 1.0) } }
@inline(never) func loopSet(_ g: Gauge, _ n: Int) { for i in 0..<n { g.set(to: Double(i)) } }
@inline(never) func loopIncrement(_ g: Gauge, _ n: Int) { for _ in 0..<n { g.increment(by: 1.0) } }
@inline(never) func loopRecord(_ h: ValueHistogram, _ v: Double, _ n: Int) { for _ in 0..<n { h.record(v) } }
@inline(never) func loopLookupIncrement(
    _ r: PrometheusCollectorRegistry, _ d: MetricNameDescriptor, _ a: String, _ b: String, _ n: Int
) {
    for _ in 0..<n { r.makeCounter(descriptor: d, labels: [("method", a), ("code", b)]).increment() }
}

/// A descriptor (swift-prometheus' non-deprecated way to name a metric) for `NAME_UNIT`.
func descriptor(_ name: String, _ unit: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: unit, helpText: "A benchmark metric.")
}

func monotonicNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func argument(_ name: String) -> Double? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: "--\(name)"), i + 1 < args.count else { return nil }
    return Double(args[i + 1])
}

let scale = argument("scale") ?? 1
let reps = Int(argument("reps") ?? 3)
let environment = ProcessInfo.processInfo.environment
let labelA = environment["BENCH_LABEL_A"] ?? "a"
let labelB = environment["BENCH_LABEL_B"] ?? "b"

let registry = PrometheusCollectorRegistry()
// About 100 children, as in prom-multiproc-bench's fixture.
let requests = descriptor("bench_requests", "total")
for i in 0..<99 { _ = registry.makeCounter(descriptor: requests, labels: [("method", "m\(i)"), ("code", "c\(i)")]) }
let cachedCounter = registry.makeCounter(descriptor: requests, labels: [("method", labelA), ("code", labelB)])
let plainCounter = registry.makeCounter(descriptor: descriptor("bench_plain", "total"))
let gauge = registry.makeGauge(descriptor: descriptor("bench", "temperature"), labels: [("sensor", "x")])
let plainGauge = registry.makeGauge(descriptor: descriptor("bench_plain", "gauge"))
let histogram = registry.makeValueHistogram(
    descriptor: descriptor("bench_latency", "seconds"), labels: [("route", "/api")], buckets: defaultBuckets)
let plainHistogram = registry.makeValueHistogram(descriptor: descriptor("bench_plain", "seconds"), buckets: defaultBuckets)

/// (operation name, iterations at scale 1, loop)
let operations: [(String, Int, (Int) -> Void)] = [
    ("counter_inc_cached/int", 10_000_000, { loopIncrementInt(cachedCounter, $0) }),
    ("counter_inc_cached/double", 10_000_000, { loopIncrementDouble(cachedCounter, $0) }),
    ("counter_labels2_inc", 2_000_000, { loopLookupIncrement(registry, requests, labelA, labelB, $0) }),
    ("histogram_observe_0.3", 10_000_000, { loopRecord(histogram, 0.3, $0) }),
    ("histogram_observe_inf", 10_000_000, { loopRecord(histogram, 100, $0) }),
    ("gauge_set_all", 10_000_000, { loopSet(gauge, $0) }),
    ("gauge_inc_cached", 10_000_000, { loopIncrement(gauge, $0) }),
    ("counter_inc_unlabelled/int", 10_000_000, { loopIncrementInt(plainCounter, $0) }),
    ("counter_inc_unlabelled/double", 10_000_000, { loopIncrementDouble(plainCounter, $0) }),
    ("gauge_set_unlabelled", 10_000_000, { loopSet(plainGauge, $0) }),
    ("gauge_inc_unlabelled", 10_000_000, { loopIncrement(plainGauge, $0) }),
    ("histogram_observe_unlabelled_0.3", 10_000_000, { loopRecord(plainHistogram, 0.3, $0) }),
]

for (name, iterations, loop) in operations {
    let n = max(1, Int(Double(iterations) * scale))
    loop(max(1, n / 10))  // warm up
    var walls: [UInt64] = []
    for _ in 0..<max(1, reps) {
        let start = monotonicNanoseconds()
        loop(n)
        walls.append(monotonicNanoseconds() - start)
    }
    let wall = Double(walls.sorted()[walls.count / 2])
    print("{\"impl\": \"swift-prometheus\", \"op\": \"\(name)\", \"threads\": 1, \"n\": \(n), \"ns_per_op_wall\": \(wall / Double(n))}")
}
