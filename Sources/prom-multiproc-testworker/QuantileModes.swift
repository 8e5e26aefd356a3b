// Worker modes for summary quantiles in multiprocess mode, for
// Tests/MultiprocessCollectorTests/SummaryQuantileProcessTests.
//
// Every mode writes `quantile_e2e_seconds{route}` through the public metrics API into
// `Registry(storage: .multiprocess(...))` with the real pid, as a worker of a prefork server
// would: `_count` and `_sum` in summary_<pid>.db (which prometheus_client reads), the
// quantile window in native_<pid>.pmh.
import Foundation
import MmapStore
import PromMetrics

let quantileModes: [String: WorkerMode] = [
    "summary-observe": WorkerMode(
        usage: "summary-observe DIR uniform|lognormal|grid-lognormal|signed|constant:V N SEED RELATIVE_ERROR MAX_AGE AGE_BUCKETS [ROUTE]",
        run: summaryObserveMode),
    "summary-fork": WorkerMode(usage: "summary-fork DIR", run: summaryForkMode),
]

/// The objectives of the end-to-end summary: both ends, the quartiles and the tail.
let quantileE2EObjectives: [Double] = [0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1]

/// `summary-observe`: observes N values drawn from SEED (uniform in [0, 10); lognormal,
/// exp(N(0, 1)); grid-lognormal, exp(N(0, 1)) rounded to a multiple of 2^-16, so that every
/// sum of up to 2^20 of them is exact in any order; signed, 10 N(0, 1) with one in sixteen
/// exactly 0; or the constant V) on route
/// ROUTE (default `/a`), then prints one JSON line `{"pid":P,"values":[...]}` with every value
/// observed (each printed so that it reads back exactly), and exits 0.
@Sendable func summaryObserveMode(_ a: [String]) throws -> Int32 {
    let usage = "summary-observe DIR uniform|lognormal|grid-lognormal|signed|constant:V N SEED RELATIVE_ERROR MAX_AGE AGE_BUCKETS [ROUTE]"
    let dir = try argument(a, 0, usage)
    let distribution = try argument(a, 1, usage)
    let n = try intArgument(a, 2, usage)
    var rng = SeededGenerator(state: UInt64(try intArgument(a, 3, usage)))
    guard let relativeError = Double(try argument(a, 4, usage)), let maxAge = Double(try argument(a, 5, usage)) else {
        throw UsageError(description: usage)
    }
    let ageBuckets = try intArgument(a, 6, usage)
    let route = a.count > 7 ? a[7] : "/a"
    let registry = Registry(storage: try .multiprocess(directory: dir))
    let summary = try Summary("quantile_e2e_seconds", help: "Summary quantiles end to end.", labelNames: ["route"],
                              quantiles: SummaryQuantiles(objectives: quantileE2EObjectives, relativeError: relativeError,
                                                          maxAge: maxAge, ageBuckets: ageBuckets),
                              registry: registry)
    let child = summary.labels(route)
    func normal() -> Double {
        // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
        let u = Double.random(in: 0..<1, using: &rng), v = Double.random(in: 0..<1, using: &rng)
        return (-2 * log(1 - u)).squareRoot() * cos(2 * Double.pi * v)
    }
    var values: [Double] = []
    values.reserveCapacity(n)
    for _ in 0..<n {
        let value: Double
        switch distribution {
        case "uniform": value = Double.random(in: 0..<10, using: &rng)
        case "lognormal": value = exp(normal())
        // |N(0, 1)| <= 8.6 here (Box-Muller with u >= 2^-53), so a value is below 2^13 and
        // needs at most 29 bits on the 2^-16 grid: sums of up to 2^20 values fit 53 bits.
        case "grid-lognormal": value = (exp(normal()) * 65536).rounded() / 65536
        case "signed": value = Int.random(in: 0..<16, using: &rng) == 0 ? 0 : 10 * normal()
        default:
            guard distribution.hasPrefix("constant:"), let v = Double(distribution.dropFirst("constant:".count)) else {
                throw UsageError(description: usage)
            }
            value = v
        }
        child.observe(value)
        values.append(value)
    }
    say(#"{"pid":\#(getpid()),"values":[\#(values.map { "\($0)" }.joined(separator: ","))]}"#)
    return 0
}

/// `summary-fork`: fork safety of quantile windows. The parent (objectives 0, 0.5 and 1
/// within 1%) observes 1.5 and 3 and forks (``forkComparingParentFiles(_:inChild:afterChild:)``,
/// which prints the report); the child observes 100 three times; the parent, once the child
/// is gone, 6.
@Sendable func summaryForkMode(_ a: [String]) throws -> Int32 {
    let dir = try argument(a, 0, "summary-fork DIR")
    let storage = try MetricStorage.multiprocess(directory: dir)
    let child = try Summary("quantile_e2e_seconds", help: "Summary quantiles end to end.", labelNames: ["route"],
                            quantiles: SummaryQuantiles(objectives: [0, 0.5, 1]), registry: Registry(storage: storage)).labels("/fork")
    child.observe(1.5)
    child.observe(3)
    return try forkComparingParentFiles(storage, inChild: {
        for _ in 0..<3 { child.observe(100) }
    }, afterChild: {
        child.observe(6)
    })
}
