import PromExposition
import SystemCalls
import MultiprocessCollector
import PromMetrics

// `collect`: one scrape of a directory in this fresh process, as `serve` does it (merge every
// file, then render the text format), without the HTTP part. Prints the time of the merge plus
// rendering (and of the rendering alone, `render_ms`), the output size and this process's
// peak RSS (VmHWM) before and after, so that the driver can compare with prometheus_client's
// MultiProcessCollector + generate_latest (scripts/bench/collect.py) measured the same way.
// `--metadata on` reads the metadata files as `/metrics` does for OpenMetrics (Info/Enum types
// and `_created`), to measure what they add; `--names a,b` restricts the scrape to those
// samples, as `name[]` does.
//
// `--threads N` sets the merge threads (default: the collector's, one per usable processor,
// at most 8). `--warm N` first collects N times
// untimed, then times one more collection with the catalog they left: a warm `serve` scrape
// without the HTTP part. `--warm 1` is the second scrape, which trusts the keys the first one
// checked; from `--warm 2` on, the steady state: files read twice the same are mapped and
// only their values read, and the body of the last scrape gets the new values.
//
// `--render-pairs P` then renders the merged families in full P times on one thread and P
// times on the merge threads, alternately, each with a new `ExpositionCache` (as a first
// scrape renders), and prints one more line per render: `{"render_threads": T, "ms": ...}`.

func collectCommand(_ options: Options) throws {
    guard let directory = options.directory else { throw UsageError("collect needs --dir") }
    let format: ExpositionFormat
    switch options.string("format") ?? "text" {
    case "text": format = .prometheusText
    case "openmetrics": format = .openMetrics
    case "protobuf": format = .protobuf
    case let other: throw UsageError("--format must be text, openmetrics or protobuf, not \(other)")
    }
    // No self-metrics: prometheus_client's collector has none, and they would not change the cost.
    let collector = MultiProcessCollector(directory: directory, includeSelfMetrics: false, maxMergeThreads: options.int("threads"))
    let baseline = peakRSSKiB()
    let metadata = options.string("metadata") == "on"
    // `--names a,b`: only those samples, as `/metrics?name[]=a&name[]=b`.
    let names = try options.list("names").map { SampleNameFilter($0) }
    let collect = {
        collector.collect(including: [], alongside: { _ in [] }, names: names, typesFromMetadata: metadata, createdSeries: metadata)
    }
    // Rendered as `serve` renders: a body kept from the last scrape gets the new values when
    // the series are the same.
    let exposition = ExpositionCache(threads: collector.mergeThreads)
    for _ in 0..<(options.int("warm") ?? 0) { _ = exposition.render(collect().families, format: format) }
    let start = Sys.monotonicNanoseconds()
    let result = collect()
    let merged = Sys.monotonicNanoseconds()
    let body = exposition.render(result.families, format: format)
    let elapsed = Sys.monotonicNanoseconds() - start
    if !result.problems.isEmpty {
        Sys.writeStandardError("prom-multiproc-bench: \(result.problems.count) bad files in \(directory)\n")
    }
    print(jsonLine([
        "impl": .string("swift"), "ms": .double(Double(elapsed) / 1e6),
        "render_ms": .double(Double(elapsed - (merged - start)) / 1e6), "bytes": .int(body.count),
        "entries": .int(result.statistics.entries), "mapped_entries": .int(result.statistics.mappedEntries), "baseline_hwm_kib": .int(baseline), "hwm_kib": .int(peakRSSKiB()),
    ]))
    for _ in 0..<(options.int("render-pairs") ?? 0) {
        for threads in [1, collector.mergeThreads] {
            let renderStart = Sys.monotonicNanoseconds()
            let rendered = ExpositionCache(threads: threads).render(result.families, format: format)
            let renderElapsed = Sys.monotonicNanoseconds() - renderStart
            guard rendered == body else { throw UsageError("a render on \(threads) threads differs from the scrape's body") }
            print(jsonLine(["render_threads": .int(threads), "ms": .double(Double(renderElapsed) / 1e6)]))
        }
    }
}
