import SystemCalls
import Foundation
import PromMetrics
import Synchronization

// The hot-path benchmarks: tight loops over the metric operations in multiprocess mode (the
// values live in the mmap'd files of a temporary directory), timed with the monotonic clock.
//
// Every loop is `@inline(never)` and takes its inputs as arguments whose values the compiler
// cannot know (the label values come from the environment), so the loop body is the real
// operation; the writes are atomic operations on the shared mapping, which cannot be elided.

/// One hot-path operation, as named in the results (the Python side uses the same names).
enum HotOperation: String, CaseIterable {
    case counterIncCached = "counter_inc_cached"
    case counterLabels2Inc = "counter_labels2_inc"
    case histogramObserveBucket = "histogram_observe_0.3"
    case histogramObserveInf = "histogram_observe_inf"
    case nativeObserve = "native_observe_0.3"
    case classicNativeObserve = "classic_native_observe_0.3"
    case summaryQuantilesObserve = "summary_quantiles_observe_0.3"
    case gaugeSetAll = "gauge_set_all"
    case gaugeIncCached = "gauge_inc_cached"
    case summaryObserveCached = "summary_observe_cached"
    // The same operations on unlabelled metrics: each should cost what the cached child's does.
    case counterIncUnlabelled = "counter_inc_unlabelled"
    case gaugeSetUnlabelled = "gauge_set_unlabelled"
    case gaugeIncUnlabelled = "gauge_inc_unlabelled"
    case histogramObserveUnlabelled = "histogram_observe_unlabelled_0.3"
    case summaryObserveUnlabelled = "summary_observe_unlabelled"
    /// An increment with a prepared exemplar (32-character trace id, time of the update).
    case counterIncExemplar = "counter_inc_exemplar"
    /// The same with the exemplar made for each increment, as per request.
    case counterIncNewExemplar = "counter_inc_new_exemplar"
    /// An observation of 0.3 with a prepared exemplar.
    case histogramObserveExemplar = "histogram_observe_exemplar_0.3"

    /// Iterations per thread for one timed run at scale 1: about 50–200 ms each.
    var iterations: Int {
        switch self {
        case .counterLabels2Inc, .counterIncNewExemplar: return 2_000_000
        case .counterIncExemplar, .histogramObserveExemplar: return 5_000_000
        default: return 10_000_000
        }
    }
}

/// The metrics the loops run against, in a fresh multiprocess directory.
struct HotFixture: Sendable {
    let counter: Counter
    let cachedCounter: CounterChild
    let histogram: HistogramChild
    /// Native buckets only (schema 3; the classic part is the `+Inf` bucket).
    let native: HistogramChild
    /// The default classic buckets and native buckets (schema 3).
    let classicNative: HistogramChild
    let gauge: GaugeChild
    /// A summary with quantiles (0.5, 0.9, 0.99 within 1%, 10 minutes in 5 age buckets).
    let quantileSummary: SummaryChild
    /// A summary with a count and a sum only.
    let summary: SummaryChild
    let plainCounter: Counter
    let plainGauge: Gauge
    let plainHistogram: Histogram
    let plainSummary: Summary
    let labelA: String
    let labelB: String
    let traceID: String
    let exemplar: Exemplar

    init(directory: String) throws {
        let registry = Registry(storage: try .multiprocess(directory: directory))
        // Opaque to the optimizer: the label values come from the environment.
        labelA = Sys.environment("BENCH_LABEL_A") ?? "a"
        labelB = Sys.environment("BENCH_LABEL_B") ?? "b"
        traceID = Sys.environment("BENCH_TRACE_ID") ?? "4bf92f3577b34da6a3ce929d0e0e4736"
        exemplar = try Exemplar(["trace_id": traceID])
        counter = try Counter("bench_requests_total", help: "Requests.", labelNames: ["method", "code"], registry: registry)
        // About 100 children exist, as in a real service with a few routes and codes.
        for i in 0..<99 { _ = counter.labels("m\(i)", "c\(i)") }
        cachedCounter = counter.labels(labelA, labelB)
        histogram = try Histogram("bench_latency_seconds", help: "Latency.", labelNames: ["route"], registry: registry).labels("/api")
        native = try Histogram("bench_native_seconds", help: "Latency, native buckets.", labelNames: ["route"],
                               native: NativeHistogramOptions(bucketFactor: 1.1), registry: registry).labels("/api")
        classicNative = try Histogram("bench_both_seconds", help: "Latency, classic and native buckets.", labelNames: ["route"],
                                      buckets: Histogram.defaultBuckets, native: NativeHistogramOptions(bucketFactor: 1.1),
                                      registry: registry).labels("/api")
        // The bucket of 0.3 exists before timing starts: the rows time an existing bucket.
        native.observe(0.3)
        classicNative.observe(0.3)
        quantileSummary = try Summary("bench_job_seconds", help: "Jobs, with quantiles.", labelNames: ["route"],
                                      quantiles: SummaryQuantiles(), registry: registry).labels("/api")
        quantileSummary.observe(0.3)
        gauge = try Gauge("bench_temperature", help: "A gauge.", labelNames: ["sensor"], mode: .all, registry: registry).labels("x")
        summary = try Summary("bench_size_bytes", help: "Sizes.", labelNames: ["route"], registry: registry).labels("/api")
        plainCounter = try Counter("bench_plain_total", help: "Unlabelled counter.", registry: registry)
        plainGauge = try Gauge("bench_plain_gauge", help: "Unlabelled gauge.", mode: .all, registry: registry)
        plainHistogram = try Histogram("bench_plain_seconds", help: "Unlabelled histogram.", registry: registry)
        plainSummary = try Summary("bench_plain_bytes", help: "Unlabelled summary.", registry: registry)
    }

    /// Runs `n` iterations of `op` on the calling thread.
    func run(_ op: HotOperation, _ n: Int) {
        switch op {
        case .counterIncCached: loopIncrement(cachedCounter, n)
        case .counterLabels2Inc: loopLabelsIncrement(counter, labelA, labelB, n)
        case .histogramObserveBucket: loopObserve(histogram, 0.3, n)
        case .histogramObserveInf: loopObserve(histogram, 100, n)
        case .nativeObserve: loopObserve(native, 0.3, n)
        case .classicNativeObserve: loopObserve(classicNative, 0.3, n)
        case .summaryQuantilesObserve: loopObserve(quantileSummary, 0.3, n)
        case .gaugeSetAll: loopSet(gauge, n)
        case .gaugeIncCached: loopIncrement(gauge, n)
        case .summaryObserveCached: loopObserve(summary, 0.3, n)
        case .counterIncUnlabelled: loopIncrement(plainCounter, n)
        case .gaugeSetUnlabelled: loopSet(plainGauge, n)
        case .gaugeIncUnlabelled: loopIncrement(plainGauge, n)
        case .histogramObserveUnlabelled: loopObserve(plainHistogram, 0.3, n)
        case .summaryObserveUnlabelled: loopObserve(plainSummary, 0.3, n)
        case .counterIncExemplar: loopIncrementExemplar(cachedCounter, exemplar, n)
        case .counterIncNewExemplar: loopIncrementNewExemplar(cachedCounter, traceID, n)
        case .histogramObserveExemplar: loopObserveExemplar(histogram, 0.3, exemplar, n)
        }
    }
}

@inline(never)
func loopIncrement(_ child: CounterChild, _ n: Int) {
    for _ in 0..<n { child.increment() }
}

@inline(never)
func loopIncrementExemplar(_ child: CounterChild, _ exemplar: Exemplar, _ n: Int) {
    for _ in 0..<n { child.increment(by: 1, exemplar: exemplar) }
}

@inline(never)
func loopIncrementNewExemplar(_ child: CounterChild, _ traceID: String, _ n: Int) {
    for _ in 0..<n {
        guard let exemplar = try? Exemplar(["trace_id": traceID]) else { continue }
        child.increment(by: 1, exemplar: exemplar)
    }
}

@inline(never)
func loopObserveExemplar(_ child: HistogramChild, _ value: Double, _ exemplar: Exemplar, _ n: Int) {
    for _ in 0..<n { child.observe(value, exemplar: exemplar) }
}

@inline(never)
func loopLabelsIncrement(_ counter: Counter, _ a: String, _ b: String, _ n: Int) {
    for _ in 0..<n { counter.labels(a, b).increment() }
}

@inline(never)
func loopObserve(_ child: HistogramChild, _ value: Double, _ n: Int) {
    for _ in 0..<n { child.observe(value) }
}

@inline(never)
func loopObserve(_ child: SummaryChild, _ value: Double, _ n: Int) {
    for _ in 0..<n { child.observe(value) }
}

@inline(never)
func loopSet(_ child: GaugeChild, _ n: Int) {
    for i in 0..<n { child.set(Double(i)) }
}

@inline(never)
func loopIncrement(_ child: GaugeChild, _ n: Int) {
    for _ in 0..<n { child.increment() }
}

@inline(never)
func loopIncrement(_ metric: Counter, _ n: Int) {
    for _ in 0..<n { metric.increment() }
}

@inline(never)
func loopSet(_ metric: Gauge, _ n: Int) {
    for i in 0..<n { metric.set(Double(i)) }
}

@inline(never)
func loopIncrement(_ metric: Gauge, _ n: Int) {
    for _ in 0..<n { metric.increment() }
}

@inline(never)
func loopObserve(_ metric: Histogram, _ value: Double, _ n: Int) {
    for _ in 0..<n { metric.observe(value) }
}

@inline(never)
func loopObserve(_ metric: Summary, _ value: Double, _ n: Int) {
    for _ in 0..<n { metric.observe(value) }
}

/// The start and end times of the threads of one timed run.
final class RunTimes: Sendable {
    let go = Atomic<Bool>(false)
    let ready = Atomic<Int>(0)
    let done = Atomic<Int>(0)
    let times = Mutex<[(start: UInt64, end: UInt64)]>([])
}

/// Times `n` iterations of `op` on each of `threads` threads, all on the same series.
/// - Returns: the wall time from the first thread's start to the last thread's end, in ns.
func timeRun(_ fixture: HotFixture, _ op: HotOperation, threads: Int, n: Int) -> UInt64 {
    if threads == 1 {
        let start = Sys.monotonicNanoseconds()
        fixture.run(op, n)
        return Sys.monotonicNanoseconds() - start
    }
    let run = RunTimes()
    for _ in 0..<threads {
        let thread = Thread {
            run.ready.add(1, ordering: .acquiringAndReleasing)
            while !run.go.load(ordering: .acquiring) {}
            let start = Sys.monotonicNanoseconds()
            fixture.run(op, n)
            let end = Sys.monotonicNanoseconds()
            run.times.withLock { $0.append((start, end)) }
            run.done.add(1, ordering: .acquiringAndReleasing)
        }
        thread.start()
    }
    while run.ready.load(ordering: .acquiring) < threads { Thread.sleep(forTimeInterval: 0.0005) }
    run.go.store(true, ordering: .releasing)
    while run.done.load(ordering: .acquiring) < threads { Thread.sleep(forTimeInterval: 0.001) }
    return run.times.withLock { t in
        (t.map(\.end).max() ?? 0) - (t.map(\.start).min() ?? 0)
    }
}

/// `hot`: one round of every requested operation; one JSON line per (operation, threads).
func hotCommand(_ options: Options) throws {
    let directory = try options.directory ?? Sys.mkdtemp("/tmp/prom-bench-hot-XXXXXX")
    let fixture = try HotFixture(directory: directory)
    var ops = HotOperation.allCases
    if let names = try options.list("ops") {
        ops = try names.map { name in
            guard let op = HotOperation(rawValue: name) else { throw UsageError("unknown operation \(name)") }
            return op
        }
    }
    let threadCounts = try options.list("threads").map { $0.compactMap(Int.init) } ?? [1, 2]
    let scale = options.double("scale") ?? 1
    let reps = options.int("reps") ?? 3
    for op in ops {
        for threads in threadCounts {
            // Contended runs are several times slower per op: fewer iterations keep rounds short.
            let n = Swift.max(1, Int(Double(op.iterations) * scale) / (threads == 1 ? 1 : 4))
            _ = timeRun(fixture, op, threads: threads, n: Swift.max(1, n / 10))  // warm up
            var walls: [UInt64] = []
            for _ in 0..<reps { walls.append(timeRun(fixture, op, threads: threads, n: n)) }
            let wall = Double(walls.sorted()[walls.count / 2])
            print(jsonLine([
                "impl": .string("swift"), "op": .string(op.rawValue), "threads": .int(threads), "n": .int(n),
                "wall_ns": .double(wall),
                "ns_per_op_per_thread": .double(wall / Double(n)),
                "ns_per_op_wall": .double(wall / Double(n * threads)),
            ]))
        }
    }
    if options.directory == nil { removeTree(directory) }
}

/// `alloc-probe`: runs one operation `n` times and exits; run under valgrind twice with
/// different `n` to see whether the operation allocates.
func allocProbeCommand(_ options: Options) throws {
    let directory = try Sys.mkdtemp("/tmp/prom-bench-alloc-XXXXXX")
    defer { removeTree(directory) }
    let fixture = try HotFixture(directory: directory)
    guard let name = options.string("op"), let op = HotOperation(rawValue: name) else {
        throw UsageError("alloc-probe needs --op")
    }
    fixture.run(op, options.int("n") ?? 1000)
}
