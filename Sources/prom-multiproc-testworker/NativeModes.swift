// Worker modes for native histograms in multiprocess mode, for
// Tests/MultiprocessCollectorTests/NativeProcessTests and the Prometheus end-to-end test.
//
// Every mode writes `native_e2e_seconds{route}` through the public metrics API into
// `Registry(storage: .multiprocess(...))` with the real pid, as a worker of a prefork server
// would; the histogram has classic buckets 0.1, 1 and 10 (in histogram_<pid>.db, which
// prometheus_client reads) and native buckets (in native_<pid>.pmh).
import Foundation
import MmapStore
import PromMetrics

let nativeModes: [String: WorkerMode] = [
    "native-observe": WorkerMode(
        usage: "native-observe DIR BUCKET_FACTOR ZERO_THRESHOLD MAX_BUCKETS N SEED [positive|signed] [ROUTE]", run: nativeObserveMode),
    "native-loop": WorkerMode(usage: "native-loop DIR BUCKET_FACTOR MAX_BUCKETS SEED [BATCH] [PAUSE_MICROSECONDS]", run: nativeLoopMode),
    "native-fork": WorkerMode(usage: "native-fork DIR", run: nativeForkMode),
]

/// A deterministic generator (SplitMix64), so a run can be repeated from its seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The native end-to-end histogram of `registry`.
func nativeE2EHistogram(_ registry: Registry, bucketFactor: Double, zeroThreshold: Double = 0x1p-128, maxBuckets: Int) throws -> Histogram {
    try Histogram("native_e2e_seconds", help: "Native histogram end to end.", labelNames: ["route"], buckets: [0.1, 1, 10],
                  native: NativeHistogramOptions(bucketFactor: bucketFactor, zeroThreshold: zeroThreshold, maxBucketNumber: maxBuckets),
                  registry: registry)
}

/// `native-observe`: observes N values drawn from SEED on route ROUTE (default `/a`), then
/// prints one JSON line `{"pid":P,"values":[...]}` with every value observed, and exits 0.
/// The values are multiples of 1/1024 between 1/1024 and 64, spread evenly over powers of
/// two (so every sum of them is exact); `signed` makes about one in eight negative and one in
/// sixteen zero.
@Sendable func nativeObserveMode(_ a: [String]) throws -> Int32 {
    let usage = "native-observe DIR BUCKET_FACTOR ZERO_THRESHOLD MAX_BUCKETS N SEED [positive|signed] [ROUTE]"
    let dir = try argument(a, 0, usage)
    guard let factor = Double(try argument(a, 1, usage)), let threshold = Double(try argument(a, 2, usage)) else {
        throw UsageError(description: usage)
    }
    let maxBuckets = try intArgument(a, 3, usage)
    let n = try intArgument(a, 4, usage)
    var rng = SeededGenerator(state: UInt64(try intArgument(a, 5, usage)))
    let signed = a.count > 6 && a[6] == "signed"
    let route = a.count > 7 ? a[7] : "/a"
    let registry = Registry(storage: try .multiprocess(directory: dir))
    let child = try nativeE2EHistogram(registry, bucketFactor: factor, zeroThreshold: threshold, maxBuckets: maxBuckets).labels(route)
    var values: [Double] = []
    values.reserveCapacity(n)
    for _ in 0..<n {
        var v = (exp2(Double.random(in: 0...16, using: &rng)) - 1).rounded(.down) / 1024
        if v == 0 { v = 1.0 / 1024 }
        if signed {
            let r = Int.random(in: 0..<16, using: &rng)
            if r == 0 { v = 0 } else if r < 3 { v = -v }
        }
        child.observe(v)
        values.append(v)
    }
    say(#"{"pid":\#(getpid()),"values":[\#(values.map { "\($0)" }.joined(separator: ","))]}"#)
    return 0
}

/// `native-loop`: a long-lived writer for the kill test. Prints `ready <pid>`, then loops:
/// BATCH times (default 200) observe a value spread over 2^-20 ... 2^20 with either sign (so
/// new buckets keep being appended, and with MAX_BUCKETS > 0 the resolution keeps halving),
/// print `total T`, sleep PAUSE_MICROSECONDS (default 200). Runs until killed.
@Sendable func nativeLoopMode(_ a: [String]) throws -> Int32 {
    let usage = "native-loop DIR BUCKET_FACTOR MAX_BUCKETS SEED [BATCH] [PAUSE_MICROSECONDS]"
    let dir = try argument(a, 0, usage)
    guard let factor = Double(try argument(a, 1, usage)) else { throw UsageError(description: usage) }
    let maxBuckets = try intArgument(a, 2, usage)
    var rng = SeededGenerator(state: UInt64(try intArgument(a, 3, usage)))
    let batch = a.count > 4 ? try intArgument(a, 4, usage) : 200
    let pause = a.count > 5 ? try intArgument(a, 5, usage) : 200
    let registry = Registry(storage: try .multiprocess(directory: dir))
    let child = try nativeE2EHistogram(registry, bucketFactor: factor, maxBuckets: maxBuckets).labels("/loop")
    say("ready \(getpid())")
    var total = 0
    while true {
        for _ in 0..<batch {
            let v = exp2(Double.random(in: -20...20, using: &rng))
            child.observe(Bool.random(using: &rng) ? v : -v)
        }
        total += batch
        say("total \(total)")
        if pause > 0 { usleep(UInt32(pause)) }
    }
}

/// `native-fork`: fork safety of native buckets. The parent (schema 0) observes 1.5 and 3 and
/// forks (``forkComparingParentFiles(_:inChild:afterChild:)``, which prints the report); the
/// child observes 1.5, 100 and -2; the parent, once the child is gone, 6.
@Sendable func nativeForkMode(_ a: [String]) throws -> Int32 {
    let dir = try argument(a, 0, "native-fork DIR")
    let storage = try MetricStorage.multiprocess(directory: dir)
    let child = try nativeE2EHistogram(Registry(storage: storage), bucketFactor: 2, maxBuckets: 0).labels("/fork")
    child.observe(1.5)
    child.observe(3)
    return try forkComparingParentFiles(storage, inChild: {
        child.observe(1.5)
        child.observe(100)
        child.observe(-2)
    }, afterChild: {
        child.observe(6)
    })
}
