// Worker modes at the PromMetrics level, for Tests/PromMetricsTests/ProcessBehaviourTests,
// the churn test (Tests/EndToEndTests/ChurnTests) and the soak (scripts/soak.sh).
//
// Every mode writes through the public metrics API into `Registry(storage: .multiprocess(...))`
// with the real pid as the identity, as a worker of a prefork server would.
import Foundation
import MmapStore
import PromMetrics

let metricsModes: [String: WorkerMode] = [
    "metrics-burst": WorkerMode(usage: "metrics-burst DIR N", run: metricsBurstMode),
    "metrics-loop": WorkerMode(usage: "metrics-loop DIR [BATCH] [PAUSE_MICROSECONDS]", run: metricsLoopMode),
    "torture-writer": WorkerMode(usage: "torture-writer DIR pid|ID BATCH PAUSE_MICROSECONDS", run: tortureWriterMode),
    "mostrecent-increment": WorkerMode(
        usage: "mostrecent-increment DIR mostrecent|livemostrecent increment|decrement", run: mostRecentIncrementMode),
    "labelled-unlabelled-use": WorkerMode(usage: "labelled-unlabelled-use DIR OPERATION", run: labelledUnlabelledUseMode),
    "fork-metrics": WorkerMode(usage: "fork-metrics DIR", run: forkMetricsMode),
    "default-registry": WorkerMode(usage: "default-registry", run: defaultRegistryMode),
    "bootstrapped-reporter": WorkerMode(usage: "bootstrapped-reporter", run: bootstrappedReporterMode),
    "info-enum": WorkerMode(usage: "info-enum DIR VERSION STATE", run: infoEnumMode),
    "created": WorkerMode(usage: "created DIR", run: createdMode),
]

/// `created`: a counter `jobs{queue="a"}` (+2), a histogram `latency_seconds` (buckets 0.5 and
/// 1, observes 0.25) and a summary `size_bytes` (observes 3), created between two readings of
/// the wall clock, which it prints as `created BEFORE AFTER` (Unix seconds); then exits 0.
@Sendable func createdMode(_ a: [String]) throws -> Int32 {
    let registry = Registry(storage: try .multiprocess(directory: try argument(a, 0, "created DIR")))
    let before = Date().timeIntervalSince1970
    let jobs = try Counter("jobs", help: "Jobs.", labelNames: ["queue"], registry: registry)
    jobs.labels("a").increment(by: 2)
    try Histogram("latency_seconds", help: "Latency.", buckets: [0.5, 1], registry: registry).observe(0.25)
    try Summary("size_bytes", help: "Size.", registry: registry).observe(3)
    let after = Date().timeIntervalSince1970
    say("created \(before) \(after)")
    return 0
}

/// `info-enum`: an Info `build{component="api"}` set to `version="0"`, then to
/// `version=VERSION` (so the file keeps the old pair at 0), and an Enum `task_state` with the
/// states idle, running and done, set to STATE. Prints `ready`, then lives until its standard
/// input ends (Info and Enum are `livemax` gauges: only a live owner's values are exported).
@Sendable func infoEnumMode(_ a: [String]) throws -> Int32 {
    let usage = "info-enum DIR VERSION STATE"
    let registry = Registry(storage: try .multiprocess(directory: try argument(a, 0, usage)))
    let build = try Info("build", help: "Build.", labelNames: ["component"], registry: registry)
    build.labels("api").info(["version": "0"])
    build.labels("api").info(["version": try argument(a, 1, usage)])
    let state = try Enum("task_state", help: "Task state.", states: ["idle", "running", "done"], registry: registry)
    state.state(try argument(a, 2, usage))
    say("ready")
    while readLine() != nil {}
    return 0
}

/// `bootstrapped-reporter`: bootstraps a process-wide problem reporter that prints
/// `problem <code>: <message>` on standard output, then does what `default-registry` does, so
/// a test sees the environment's warnings arrive there instead of on standard error.
@Sendable func bootstrappedReporterMode(_ args: [String]) throws -> Int32 {
    ProblemReporter.bootstrap(ProblemReporter { problem in
        FileHandle.standardOutput.write(Data("problem \(problem.code): \(problem.message)\n".utf8))
    })
    return try defaultRegistryMode(args)
}

/// `default-registry`: a counter on the default registry, whose storage follows the
/// environment (PROMETHEUS_MULTIPROC_DIR, or the deprecated lowercase name); increments it
/// once and prints where its values live.
@Sendable func defaultRegistryMode(_ args: [String]) throws -> Int32 {
    let c = try Counter("env_probe_total", help: "Probe.")
    c.increment()
    print(Registry.default.storage.store?.directory ?? "in-process")
    return 0
}

/// The value the i-th observation of `metrics-burst` and `metrics-loop` records: 0, 0.25, 0.5
/// or 0.75 in turn. Binary fractions, so that any sum of them is exact and a test can derive
/// the expected `_sum` by hand.
func burstObservation(_ i: Int) -> Double { Double(i % 4) * 0.25 }

/// A short-lived worker: creates `churn_jobs_total{route}` (a counter), `churn_job_seconds`
/// (a histogram with buckets 0.3, 0.6 and +Inf) and `churn_in_progress` (a livesum gauge), does
/// N iterations (iteration i adds 1 to route `/a` when i is even and to `/b` when odd, and
/// observes ``burstObservation(_:)``), leaves the gauge at 1 (a worker that dies "in
/// progress", so a test sees dead workers' live gauges vanish), prints one JSON line with
/// what it did and exits 0.
@Sendable func metricsBurstMode(_ a: [String]) throws -> Int32 {
    let usage = "metrics-burst DIR N"
    let dir = try argument(a, 0, usage)
    let n = try intArgument(a, 1, usage)
    let registry = Registry(storage: try .multiprocess(directory: dir))
    let jobs = try Counter("churn_jobs_total", help: "Jobs done by short-lived workers.", labelNames: ["route"], registry: registry)
    let seconds = try Histogram("churn_job_seconds", help: "Job durations.", buckets: [0.3, 0.6], registry: registry)
    let inProgress = try Gauge("churn_in_progress", help: "Workers in progress.", mode: .livesum, registry: registry)
    inProgress.increment()
    let routeA = jobs.labels("/a"), routeB = jobs.labels("/b")
    var sum = 0.0
    for i in 0..<n {
        (i % 2 == 0 ? routeA : routeB).increment()
        let v = burstObservation(i)
        seconds.observe(v)
        sum += v
    }
    say(#"{"pid":\#(getpid()),"increments":\#(n),"a":\#(routeA.value),"b":\#(routeB.value),"observations":\#(n),"sum":\#(sum)}"#)
    return 0
}

/// A long-lived writer for the soak: runs until killed.
///
/// It creates `soak_increments_total` (a counter), `soak_observed` (a histogram),
/// `soak_writers_alive` (a livesum gauge, incremented once: the number of live writers) and
/// `soak_writer_increments_max` (a max gauge), prints `ready <pid>`, then loops: BATCH times
/// (default 100) { add 1 to the counter, observe ``burstObservation(_:)`` }, set the max gauge
/// to its running total T, print `total T`, sleep PAUSE_MICROSECONDS (default 1000).
///
/// What a soak can know about a killed writer, exactly:
/// - The counter in its own file is the number of increments it did. A kill cannot tear an
///   update (each is one aligned 8-byte atomic store into a `MAP_SHARED` mapping), and such a
///   store lives in the page cache, which outlives the process. So the file's value at death
///   is exact, but only until a compactor folds the file into an archive.
/// - To read it before that, the soak freezes the writer with SIGSTOP at a random point,
///   waits until the kernel reports it stopped (it then executes nothing more), reads its
///   files (still locked by the live process, so no compactor may fold them), then SIGKILLs
///   it. The value read is the value the file keeps. Summed over every writer, that is the
///   total the merged counter must show once all are dead, however the compactions and kills
///   interleaved.
/// - Independently of the file, the last `total T` line printed bounds it: T <= value <=
///   T + BATCH (the lines are printed after each whole batch, and written before the next
///   batch starts).
@Sendable func metricsLoopMode(_ a: [String]) throws -> Int32 {
    let usage = "metrics-loop DIR [BATCH] [PAUSE_MICROSECONDS]"
    let dir = try argument(a, 0, usage)
    let batch = a.count > 1 ? try intArgument(a, 1, usage) : 100
    let pause = a.count > 2 ? try intArgument(a, 2, usage) : 1000
    guard batch > 0, pause >= 0 else { throw UsageError(description: "BATCH must be positive and PAUSE not negative: \(usage)") }
    let registry = Registry(storage: try .multiprocess(directory: dir))
    let increments = try Counter("soak_increments_total", help: "Increments done by the soak writers.", registry: registry)
    let observed = try Histogram("soak_observed", help: "Values observed by the soak writers.", buckets: [0.3, 0.6], registry: registry)
    let alive = try Gauge("soak_writers_alive", help: "Soak writers alive.", mode: .livesum, registry: registry)
    let maxTotal = try Gauge("soak_writer_increments_max", help: "The largest running total of one writer.", mode: .max, registry: registry)
    alive.increment()
    say("ready \(getpid())")
    var total = 0
    while true {
        for i in 0..<batch {
            increments.increment()
            observed.observe(burstObservation(i))
        }
        total += batch
        maxTotal.set(Double(total))
        say("total \(total)")
        if pause > 0 { usleep(UInt32(pause)) }
    }
}

/// A writer for the torture run (scripts/torture.sh), the twin of
/// scripts/torture/py_writer.py: the same metrics, keys and loop, so that prometheus_client
/// workers and these write one set of series.
///
/// It writes as the identity ID (`ProcessIdentity.fixed`, playing a reused pid) or its real
/// pid (`pid`), creates `torture_ops_total` (a counter), `torture_latency` (a histogram with
/// buckets 0.3 and 0.6, and native buckets) and `torture_workers` (a livesum gauge, incremented once), prints
/// `ready <identity>`, and waits for a line on standard input: meanwhile the torture reads
/// the values its files start from (an adopted file continues a dead process's values). Then
/// it loops until killed: BATCH times { add 1 to the counter, observe
/// ``burstObservation(_:)`` }, sleep PAUSE_MICROSECONDS.
@Sendable func tortureWriterMode(_ a: [String]) throws -> Int32 {
    let usage = "torture-writer DIR pid|ID BATCH PAUSE_MICROSECONDS"
    let dir = try argument(a, 0, usage)
    let id = try argument(a, 1, usage)
    let batch = try intArgument(a, 2, usage)
    let pause = try intArgument(a, 3, usage)
    let identity: ProcessIdentity = id == "pid" ? .processID : .fixed(id)
    let registry = Registry(storage: try .multiprocess(directory: dir, identity: identity))
    let ops = try Counter("torture_ops_total", help: "Operations done by torture writers.", registry: registry)
    // Native buckets too (scripts/torture: native_<pid>.pmh, folded by compaction).
    let latency = try Histogram("torture_latency", help: "Values observed by torture writers.", buckets: [0.3, 0.6],
                                native: NativeHistogramOptions(bucketFactor: 1.1), registry: registry)
    let workers = try Gauge("torture_workers", help: "Torture writers alive.", mode: .livesum, registry: registry)
    workers.increment()
    say("ready \(id == "pid" ? String(getpid()) : id)")
    guard readLine() != nil else { return 0 }
    while true {
        for i in 0..<batch {
            ops.increment()
            latency.observe(burstObservation(i))
        }
        if pause > 0 { usleep(UInt32(pause)) }
    }
}

/// Creates a gauge `last_seen_seconds` in a `mostrecent` mode, sets it to 5 (printing `set`),
/// then increments or decrements it, which must stop the process with a precondition failure
/// naming the gauge and the mode. Exits 0 (and prints `not refused`) if the update went
/// through.
@Sendable func mostRecentIncrementMode(_ a: [String]) throws -> Int32 {
    let usage = "mostrecent-increment DIR mostrecent|livemostrecent increment|decrement"
    let dir = try argument(a, 0, usage)
    guard let mode = GaugeMode(rawValue: try argument(a, 1, usage)), mode.isMostRecent else { throw UsageError(description: usage) }
    let op = try argument(a, 2, usage)
    guard op == "increment" || op == "decrement" else { throw UsageError(description: usage) }
    let registry = Registry(storage: try .multiprocess(directory: dir))
    let gauge = try Gauge("last_seen_seconds", help: "When it was last seen.", mode: mode, registry: registry)
    gauge.set(5)
    say("set")
    if op == "increment" { gauge.increment() } else { gauge.decrement() }
    say("not refused: value \(gauge.value)")
    return 0
}

/// Creates a metric `queue_depth` with the label `path` of the kind OPERATION names, updates
/// its child `path="a"` once (a counter by 5, a gauge set to 5, an observation of 0.25;
/// printing `updated`), then applies OPERATION to the metric itself, without labels, which
/// must stop the process naming the metric and its labels. Exits 0 (and prints `not refused`)
/// if the update went through. OPERATION: counter-increment, gauge-set, gauge-increment,
/// gauge-decrement, mostrecent-gauge-set, mostrecent-gauge-increment, histogram-observe,
/// histogram-observe-nan, summary-observe.
@Sendable func labelledUnlabelledUseMode(_ a: [String]) throws -> Int32 {
    let usage = "labelled-unlabelled-use DIR OPERATION"
    let registry = Registry(storage: try .multiprocess(directory: try argument(a, 0, usage)))
    let op = try argument(a, 1, usage)
    func gauge(_ mode: GaugeMode) throws -> Gauge {
        let gauge = try Gauge("queue_depth", help: "Queued jobs.", labelNames: ["path"], mode: mode, registry: registry)
        gauge.labels("a").set(5)
        return gauge
    }
    let refused: () -> Void
    switch op {
    case "counter-increment":
        let counter = try Counter("queue_depth", help: "Queued jobs.", labelNames: ["path"], registry: registry)
        counter.labels("a").increment(by: 5)
        refused = { counter.increment() }
    case "gauge-set": let g = try gauge(.all); refused = { g.set(7) }
    case "gauge-increment": let g = try gauge(.all); refused = { g.increment() }
    case "gauge-decrement": let g = try gauge(.all); refused = { g.decrement() }
    case "mostrecent-gauge-set": let g = try gauge(.mostrecent); refused = { g.set(7) }
    case "mostrecent-gauge-increment": let g = try gauge(.mostrecent); refused = { g.increment() }
    case "histogram-observe", "histogram-observe-nan":
        let histogram = try Histogram("queue_depth", help: "Queued jobs.", labelNames: ["path"], buckets: [0.5, 1], registry: registry)
        histogram.labels("a").observe(0.25)
        refused = { histogram.observe(op == "histogram-observe" ? 0.75 : .nan) }
    case "summary-observe":
        let summary = try Summary("queue_depth", help: "Queued jobs.", labelNames: ["path"], registry: registry)
        summary.labels("a").observe(0.25)
        refused = { summary.observe(0.75) }
    default: throw UsageError(description: usage)
    }
    say("updated")
    refused()
    say("not refused")
    return 0
}

/// Fork safety through the metrics API. The parent creates `forked_requests_total{route}` with
/// children `a` (+5) and `b` (untouched), `forked_in_progress` (a livesum gauge, +2) and
/// `forked_seconds` (a histogram with bucket 1, one observation of 0.5), copies the bytes of
/// its files, and forks. The child adds 1 to `a` and 7 to a new child `c`, observes 2, adds 1
/// to the gauge, and exits (status 0, or 3 when its store still names the parent). The parent
/// waits, compares its files' bytes with the copy, adds 10 to `a`, and prints one JSON line:
/// `{"parent":P,"child":C,"childStatus":S,"parentFilesUnchanged":true|false,"parentFiles":[...]}`.
@Sendable func forkMetricsMode(_ a: [String]) throws -> Int32 {
    let dir = try argument(a, 0, "fork-metrics DIR")
    let storage = try MetricStorage.multiprocess(directory: dir)
    let registry = Registry(storage: storage)
    let requests = try Counter("forked_requests_total", help: "Requests.", labelNames: ["route"], registry: registry)
    let inProgress = try Gauge("forked_in_progress", help: "In progress.", mode: .livesum, registry: registry)
    let seconds = try Histogram("forked_seconds", help: "Durations.", buckets: [1], registry: registry)
    let routeA = requests.labels("a")
    routeA.increment(by: 5)
    _ = requests.labels("b")
    inProgress.increment(by: 2)
    seconds.observe(0.5)
    return try forkComparingParentFiles(storage, inChild: {
        routeA.increment()
        requests.labels("c").increment(by: 7)
        seconds.observe(2)
        inProgress.increment()
    }, afterChild: {
        routeA.increment(by: 10)
    })
}

/// The fork-safety protocol of the `*-fork` modes: copies the bytes of `storage`'s files and
/// forks; the child runs `inChild` and exits (status 0, or 3 when its store still names the
/// parent). The parent waits, compares its files' bytes with the copy, runs `afterChild`, and
/// prints one JSON line:
/// `{"parent":P,"child":C,"childStatus":S,"parentFilesUnchanged":true|false,"parentFiles":[...]}`.
func forkComparingParentFiles(_ storage: MetricStorage, inChild: () -> Void, afterChild: () -> Void) throws -> Int32 {
    let parentPaths = storage.store?.openPaths ?? []
    let before = try parentPaths.map { try fileBytes($0) }
    fflush(nil)
    let child = fork()
    if child == 0 {
        inChild()
        _exit(storage.store?.currentOwner == String(getpid()) ? 0 : 3)
    }
    guard child > 0 else { say("fork failed"); return 6 }
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    let after = try parentPaths.map { try fileBytes($0) }
    afterChild()
    let files = parentPaths.map { "\"" + ($0 as NSString).lastPathComponent + "\"" }.joined(separator: ",")
    say(#"{"parent":\#(getpid()),"child":\#(child),"childStatus":\#(status),"parentFilesUnchanged":\#(before == after),"parentFiles":[\#(files)]}"#)
    return 0
}
