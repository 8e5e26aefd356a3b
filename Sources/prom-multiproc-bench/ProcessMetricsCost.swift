import MultiprocessCollector
import SystemCalls

// `process-metrics`: what the process metrics add to one scrape of a directory whose workers
// are alive (start them first, for example `prom-multiproc-testworker hold DIR pid` N times).
// Prints the medians over R rounds of: finding the live workers alone, their families (finding
// them included), and a whole collection without and with them.

func processMetricsCommand(_ options: Options) throws {
    guard let directory = options.directory else { throw UsageError("process-metrics needs --dir") }
    let reps = options.int("reps") ?? 200
    guard let metrics = ProcessMetrics() else { throw UsageError("no /proc/stat with btime: no process metrics here") }
    let collector = MultiProcessCollector(directory: directory, includeSelfMetrics: false)
    guard case .success(let listed) = MultiProcessCollector.listMetricFiles(in: directory) else {
        throw UsageError("cannot list \(directory)")
    }
    func median(_ body: () -> Void) -> Double {
        var times: [Double] = []
        for _ in 0..<reps {
            let start = Sys.monotonicNanoseconds()
            body()
            times.append(Double(Sys.monotonicNanoseconds() - start) / 1e6)
        }
        return times.sorted()[times.count / 2]
    }
    let live = LiveProcesses.pids(inListing: listed)
    let livePIDs = median { _ = LiveProcesses.pids(inListing: listed) }
    let families = median { _ = metrics.familiesOfLiveWorkers(listedPaths: listed) }
    let without = median { _ = collector.collect() }
    let with = median { _ = collector.collect(including: [], alongside: { metrics.familiesOfLiveWorkers(listedPaths: $0) }) }
    print(jsonLine([
        "files": .int(listed.count), "live_workers": .int(live.count), "live_pids_ms": .double(livePIDs),
        "process_families_ms": .double(families), "collect_ms": .double(without), "collect_with_process_metrics_ms": .double(with),
    ]))
}
