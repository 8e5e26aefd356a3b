// swift-prometheus-hot: scripts/bench.sh's hot-path rows on swift-prometheus 2.4.1.
//
//   swift-prometheus-hot [--scale S] [--reps R]
//
// One JSON line per operation and thread count, in the format of `prom-multiproc-bench hot`:
// {"impl": "swift-prometheus", "op": ..., "threads": 1|2, "n": ..., "ns_per_op_wall": ...};
// with 2 threads both run the loop on the same metric, timed from the first thread's start to
// the last one's end, divided by the operations of both (as ours).
// Operation names are ours (HOT_OPS in scripts/bench/run.py) where swift-prometheus has the
// same operation, with a suffix where it has two (Int and Double counter increments).
// Every loop is `@inline(never)` and gets its metric as an argument; label values come from
// the environment, as in prom-multiproc-bench, so the optimizer cannot fold them.
import Foundation
import Prometheus
import Synchronization

/// Python's (and our) default histogram buckets.
let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

@inline(never) func loopIncrementInt(_ c: Counter, _ n: Int) { for _ in 0..<n { c.increment() } }
@inline(never) func loopIncrementDouble(_ c: Counter, _ n: Int) { for _ in 0..<n { c.increment(by: 1.0) } }
@inline(never) func loopSet(_ g: Gauge, _ n: Int) { for i in 0..<n { g.set(to: Double(i)) } }
@inline(never) func loopIncrement(_ g: Gauge, _ n: Int) { for _ in 0..<n { g.increment(by: 1.0) } }
@inline(never) func loopRecord(_ h: ValueHistogram, _ v: Double, _ n: Int) { for _ in 0..<n { h.record(v) } }
@inline(never) func loopLookupIncrement(_ r: PrometheusCollectorRegistry, _ a: String, _ b: String, _ n: Int) {
    let d = descriptor("bench_requests", "total")  // made once, as a service would keep it
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
let operations: [(String, Int, @Sendable (Int) -> Void)] = [
    ("counter_inc_cached/int", 10_000_000, { [cachedCounter] in loopIncrementInt(cachedCounter, $0) }),
    ("counter_inc_cached/double", 10_000_000, { [cachedCounter] in loopIncrementDouble(cachedCounter, $0) }),
    ("counter_labels2_inc", 2_000_000, { [registry, labelA, labelB] in loopLookupIncrement(registry, labelA, labelB, $0) }),
    ("histogram_observe_0.3", 10_000_000, { [histogram] in loopRecord(histogram, 0.3, $0) }),
    ("histogram_observe_inf", 10_000_000, { [histogram] in loopRecord(histogram, 100, $0) }),
    ("gauge_set_all", 10_000_000, { [gauge] in loopSet(gauge, $0) }),
    ("gauge_inc_cached", 10_000_000, { [gauge] in loopIncrement(gauge, $0) }),
    ("counter_inc_unlabelled/int", 10_000_000, { [plainCounter] in loopIncrementInt(plainCounter, $0) }),
    ("counter_inc_unlabelled/double", 10_000_000, { [plainCounter] in loopIncrementDouble(plainCounter, $0) }),
    ("gauge_set_unlabelled", 10_000_000, { [plainGauge] in loopSet(plainGauge, $0) }),
    ("gauge_inc_unlabelled", 10_000_000, { [plainGauge] in loopIncrement(plainGauge, $0) }),
    ("histogram_observe_unlabelled_0.3", 10_000_000, { [plainHistogram] in loopRecord(plainHistogram, 0.3, $0) }),
]

/// The start and end times of the threads of one timed run.
final class RunTimes: Sendable {
    let go = Atomic<Bool>(false)
    let ready = Atomic<Int>(0)
    let done = Atomic<Int>(0)
    let times = Mutex<[(start: UInt64, end: UInt64)]>([])
}

/// Wall time of `n` iterations of `loop` on each of `threads` threads, first start to last end.
func timeRun(_ loop: @escaping @Sendable (Int) -> Void, threads: Int, n: Int) -> UInt64 {
    if threads == 1 {
        let start = monotonicNanoseconds()
        loop(n)
        return monotonicNanoseconds() - start
    }
    let run = RunTimes()
    for _ in 0..<threads {
        Thread {
            run.ready.add(1, ordering: .acquiringAndReleasing)
            while !run.go.load(ordering: .acquiring) {}
            let start = monotonicNanoseconds()
            loop(n)
            let end = monotonicNanoseconds()
            run.times.withLock { $0.append((start, end)) }
            run.done.add(1, ordering: .acquiringAndReleasing)
        }.start()
    }
    while run.ready.load(ordering: .acquiring) < threads { Thread.sleep(forTimeInterval: 0.0005) }
    run.go.store(true, ordering: .releasing)
    while run.done.load(ordering: .acquiring) < threads { Thread.sleep(forTimeInterval: 0.001) }
    return run.times.withLock { t in (t.map(\.end).max() ?? 0) - (t.map(\.start).min() ?? 0) }
}

for (name, iterations, loop) in operations {
    for threads in [1, 2] {
        // Contended runs are several times slower per op: fewer iterations, as in ours.
        let n = max(1, Int(Double(iterations) * scale) / (threads == 1 ? 1 : 4))
        _ = timeRun(loop, threads: threads, n: max(1, n / 10))  // warm up
        var walls: [UInt64] = []
        for _ in 0..<max(1, reps) { walls.append(timeRun(loop, threads: threads, n: n)) }
        let wall = Double(walls.sorted()[walls.count / 2])
        print("{\"impl\": \"swift-prometheus\", \"op\": \"\(name)\", \"threads\": \(threads), \"n\": \(n), "
            + "\"ns_per_op_wall\": \(wall / Double(n * threads))}")
    }
}
