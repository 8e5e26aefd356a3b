// Worker modes for exemplars in multiprocess mode, for
// Tests/MultiprocessCollectorTests/ExemplarProcessTests and the Prometheus end-to-end test.
//
// Every mode writes, through the public metrics API into `Registry(storage: .multiprocess(...))`
// with the real pid, a counter `exemplar_requests_total{route}` and a histogram
// `exemplar_latency_seconds{route}` with buckets 0.1, 1 and 10.
import Foundation
import MmapStore
import PromMetrics

let exemplarModes: [String: WorkerMode] = [
    "exemplar-write": WorkerMode(usage: "exemplar-write DIR ROUTE TRACE_ID VALUE TIMESTAMP|now", run: exemplarWriteMode),
    "exemplar-loop": WorkerMode(usage: "exemplar-loop DIR ROUTE [PAUSE_MICROSECONDS]", run: exemplarLoopMode),
]

func exemplarMetrics(_ dir: String) throws -> (Counter, Histogram) {
    let registry = Registry(storage: try .multiprocess(directory: dir))
    let counter = try Counter("exemplar_requests_total", help: "Requests with exemplars.", labelNames: ["route"], registry: registry)
    let histogram = try Histogram("exemplar_latency_seconds", help: "Latency with exemplars.", labelNames: ["route"],
                                  buckets: [0.1, 1, 10], registry: registry)
    return (counter, histogram)
}

/// `exemplar-write`: increments the counter by VALUE and observes VALUE, both with the exemplar
/// `{trace_id="TRACE_ID"}` at TIMESTAMP (UNIX seconds, or `now`: the time of the update), then
/// prints `ok <pid>` and exits 0.
@Sendable func exemplarWriteMode(_ a: [String]) throws -> Int32 {
    let usage = "exemplar-write DIR ROUTE TRACE_ID VALUE TIMESTAMP|now"
    let (counter, histogram) = try exemplarMetrics(try argument(a, 0, usage))
    let route = try argument(a, 1, usage)
    guard let value = Double(try argument(a, 3, usage)) else { throw UsageError(description: usage) }
    let time = try argument(a, 4, usage)
    let exemplar = try Exemplar(["trace_id": try argument(a, 2, usage)], timestamp: time == "now" ? nil : Double(time))
    counter.labels(route).increment(by: value, exemplar: exemplar)
    histogram.labels(route).observe(value, exemplar: exemplar)
    say("ok \(getpid())")
    return 0
}

/// `exemplar-loop`: a long-lived writer for the kill and torn-read tests. Prints
/// `ready <pid>`, then increments the counter by `i` with the exemplar `t` followed by `i`
/// times `x` (i = 0...63, round and round), so that an exemplar's value says how long its
/// trace id is, and observes 0.5 with the same exemplar; as fast as it can, or pausing
/// PAUSE_MICROSECONDS after each round of 64; until killed.
@Sendable func exemplarLoopMode(_ a: [String]) throws -> Int32 {
    let usage = "exemplar-loop DIR ROUTE [PAUSE_MICROSECONDS]"
    let pause = a.count > 2 ? UInt32(try intArgument(a, 2, usage)) : 0
    let (counter, histogram) = try exemplarMetrics(try argument(a, 0, usage))
    let child = counter.labels(try argument(a, 1, usage))
    let bucket = histogram.labels(try argument(a, 1, usage))
    let exemplars = try (0..<64).map { i in try Exemplar(["trace_id": "t" + String(repeating: "x", count: i)]) }
    child.increment(by: 0, exemplar: exemplars[0])
    say("ready \(getpid())")
    var i = 0
    while true {
        child.increment(by: Double(i & 63), exemplar: exemplars[i & 63])
        bucket.observe(0.5, exemplar: exemplars[i & 63])
        i &+= 1
        if pause > 0 && i & 63 == 0 { usleep(pause) }
    }
}
