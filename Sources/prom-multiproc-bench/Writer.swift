import PromMetrics

// `write-dir`: Swift workers' share of a collect-benchmark directory. The Python workers
// (scripts/bench/gen_dir.py) write exactly the same series and values, so that the two kinds of
// directory differ only in who wrote them.
//
// Each worker (pid) writes S counter children of `bench_requests_total{series="s<i>"}`
// (incremented by i % 7 + 1) and S/10 histogram children of `bench_latency_seconds{series="h<j>"}`
// with the default buckets (one observation of (j % 50) / 100 each).
//
// `--pids A-B` plays several workers one after the other in this process (each with its own
// store, closed before the next), which the growth curve uses to make thousands of files
// quickly; the collect benchmark runs one real process per pid instead.

func writeDirectoryCommand(_ options: Options) throws {
    guard let directory = options.directory, let pids = options.string("pids"), let series = options.int("series") else {
        throw UsageError("write-dir needs --dir, --pids (N or A-B) and --series")
    }
    let bounds = pids.split(separator: "-").compactMap { Int($0) }
    guard let first = bounds.first, let last = bounds.last, bounds.count <= 2, first <= last else {
        throw UsageError("--pids must be N or A-B")
    }
    for pid in first...last {
        let storage = try MetricStorage.multiprocess(directory: directory, identity: .fixed(String(pid)))
        let registry = Registry(storage: storage)
        let counter = try Counter("bench_requests_total", help: "Requests.", labelNames: ["series"], registry: registry)
        let histogram = try Histogram("bench_latency_seconds", help: "Latency.", labelNames: ["series"], registry: registry)
        for i in 0..<series {
            counter.labels("s\(i)").increment(by: Double(i % 7 + 1))
        }
        for j in 0..<(series / 10) {
            histogram.labels("h\(j)").observe(Double(j % 50) / 100)
        }
        storage.store?.close()
    }
}
