import PromMetrics

// `write-dir`: one Swift worker's share of a collect-benchmark directory. The Python workers
// (scripts/bench/gen_dir.py) write exactly the same series and values, so that the two kinds of
// directory differ only in who wrote them.
//
// Each worker writes S counter children of `bench_requests_total{series="s<i>"}` (incremented
// by i % 7 + 1) and S/10 histogram children of `bench_latency_seconds{series="h<j>"}` with the
// default buckets (one observation of (j % 50) / 100 each).

func writeDirectoryCommand(_ options: Options) throws {
    guard let directory = options.directory, let pid = options.string("pid"), let series = options.int("series") else {
        throw UsageError("write-dir needs --dir, --pid and --series")
    }
    let registry = Registry(storage: try .multiprocess(directory: directory, identity: .fixed(pid)))
    let counter = try Counter("bench_requests_total", help: "Requests.", labelNames: ["series"], registry: registry)
    let histogram = try Histogram("bench_latency_seconds", help: "Latency.", labelNames: ["series"], registry: registry)
    for i in 0..<series {
        counter.labels("s\(i)").increment(by: Double(i % 7 + 1))
    }
    for j in 0..<(series / 10) {
        histogram.labels("h\(j)").observe(Double(j % 50) / 100)
    }
}
