import CoreMetrics
import Foundation
import PromMetrics
import PromMultiprocMetrics
import Prometheus

// Counter and Timer are swift-metrics' types here (PromMetrics, Prometheus and Foundation have
// types of those names too).
typealias Counter = CoreMetrics.Counter
typealias Timer = CoreMetrics.Timer

/// One measured operation: a name and, per backend, a loop that runs it `ops` times.
struct Operation {
    let name: String
    let ours: (Int) -> Void
    let theirs: (Int) -> Void
}

enum Bench {
    static func main(_ arguments: [String]) {
        var rounds = 15
        var ops = 2_000_000
        var i = 1
        while i < arguments.count {
            switch arguments[i] {
            case "--rounds" where i + 1 < arguments.count: rounds = Int(arguments[i + 1]) ?? rounds; i += 1
            case "--ops" where i + 1 < arguments.count: ops = Int(arguments[i + 1]) ?? ops; i += 1
            default:
                print("usage: swift-metrics-bench [--rounds N] [--ops N]")
                exit(2)
            }
            i += 1
        }

        // Ours writes where a deployment writes: memory-mapped files in a multiprocess directory.
        let directory = NSTemporaryDirectory() + "swift-metrics-bench-\(getpid())"
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ours = PrometheusMultiprocessMetricsFactory(
            registry: Registry(storage: try! .multiprocess(directory: directory)))
        let theirs = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())

        let dimensions = [("route", "/api/users"), ("method", "GET"), ("status", "200")]
        let operations = [
            Operation(
                name: "Counter.increment()",
                ours: counterLoop(Counter(label: "bench_requests", dimensions: dimensions, factory: ours)),
                theirs: counterLoop(Counter(label: "bench_requests", dimensions: dimensions, factory: theirs))),
            Operation(
                name: "Timer.recordNanoseconds(_:)",
                ours: timerLoop(Timer(label: "bench_duration", dimensions: dimensions, factory: ours)),
                theirs: timerLoop(Timer(label: "bench_duration", dimensions: dimensions, factory: theirs))),
            Operation(
                name: "Counter(label:dimensions:) + increment()",
                ours: makeAndIncrementLoop(ours, dimensions: dimensions),
                theirs: makeAndIncrementLoop(theirs, dimensions: dimensions)),
        ]

        // Warm up (page faults, caches, lazy set-up), then interleave: every round runs every
        // operation on both backends, alternating which goes first, so that drift of the
        // machine (other builds share these cores) hits both sides alike.
        for op in operations { op.ours(ops / 10); op.theirs(ops / 10) }
        var samples = Array(repeating: (ours: [Double](), theirs: [Double]()), count: operations.count)
        for round in 0..<rounds {
            for (n, op) in operations.enumerated() {
                if round % 2 == 0 {
                    samples[n].ours.append(nanosecondsPerOp(ops, op.ours))
                    samples[n].theirs.append(nanosecondsPerOp(ops, op.theirs))
                } else {
                    samples[n].theirs.append(nanosecondsPerOp(ops, op.theirs))
                    samples[n].ours.append(nanosecondsPerOp(ops, op.ours))
                }
            }
        }

        print("swift-metrics API, \(rounds) interleaved rounds of \(ops) ops; medians (min..max) in ns/op")
        print("ours: PrometheusMultiprocessMetricsFactory, multiprocess storage (mmap files)")
        print("swift-prometheus: PrometheusMetricsFactory 2.4.1, in-process")
        print("")
        print("| operation | ours ns/op | swift-prometheus ns/op | ours / swift-prometheus |")
        print("| --- | ---: | ---: | ---: |")
        for (n, op) in operations.enumerated() {
            let o = samples[n].ours.sorted()
            let t = samples[n].theirs.sorted()
            let ratio = median(o) / median(t)
            print("| \(op.name) | \(format(median(o))) (\(format(o.first!))..\(format(o.last!))) "
                + "| \(format(median(t))) (\(format(t.first!))..\(format(t.last!))) | \(String(format: "%.2f", ratio)) |")
        }
    }

    // The loops are not inlined into the caller and take the metric as an argument, so the
    // optimiser cannot fold the work away or hoist it out of the loop.

    static func counterLoop(_ counter: Counter) -> (Int) -> Void {
        { ops in incrementLoop(counter, ops) }
    }

    @inline(never)
    static func incrementLoop(_ counter: Counter, _ ops: Int) {
        for _ in 0..<ops { counter.increment() }
    }

    static func timerLoop(_ timer: Timer) -> (Int) -> Void {
        { ops in recordLoop(timer, ops) }
    }

    /// Durations from 0.5 ms to about 1.5 s, spread over the buckets of both backends.
    static let durations: [Int64] = (0..<1024).map { Int64(500_000 + ($0 * 7919 % 1024) * 1_500_000) }

    @inline(never)
    static func recordLoop(_ timer: Timer, _ ops: Int) {
        durations.withUnsafeBufferPointer { d in
            for i in 0..<ops { timer.recordNanoseconds(d[i & 1023]) }
        }
    }

    static func makeAndIncrementLoop(_ factory: any MetricsFactory, dimensions: [(String, String)]) -> (Int) -> Void {
        { ops in makeLoop(factory, dimensions, ops) }
    }

    @inline(never)
    static func makeLoop(_ factory: any MetricsFactory, _ dimensions: [(String, String)], _ ops: Int) {
        for _ in 0..<ops { Counter(label: "bench_made", dimensions: dimensions, factory: factory).increment() }
    }

    static func nanosecondsPerOp(_ ops: Int, _ body: (Int) -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body(ops)
        return Double(DispatchTime.now().uptimeNanoseconds - start) / Double(ops)
    }

    static func median(_ sorted: [Double]) -> Double {
        sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func format(_ ns: Double) -> String { String(format: ns < 10 ? "%.2f" : "%.1f", ns) }
}
