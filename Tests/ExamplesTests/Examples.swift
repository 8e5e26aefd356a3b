// Every Swift example of the README, the DocC articles and the documentation comments, as
// code the compiler checks. Each example sits between `// example:` and `// end example`
// lines; ExamplesTests checks that every ```swift block of the documentation appears in one
// of them (import lines aside, indentation aside), so a renamed API breaks the build here
// before it misleads a reader. The code around a region supplies what the snippet assumes
// (a request, a handler, a directory).
import MmapStore
import MultiprocessCollector
import PromExposition
import PromHTTP
import PromMetrics

/// Stand-ins for what the documentation's snippets assume exists in the reader's program.
enum Context {
    struct Request { var accept: String? }
    static func handle() throws {}
    static func handle(_ request: Request) throws {}
    static func serve() throws {}
    static func render() -> String { "" }
}

enum Examples {
    /// README: the first of the three ways in (default registry: compiled, never run).
    static func readmeFirstWayIn() throws {
        // example: readme-first-way-in
        let requests = try Counter("jobs_total", help: "Jobs done.", labelNames: ["queue"])
        requests.labels("default").increment()
        // end example
    }

    /// README: instrumenting a worker (default registry: compiled, never run by the tests).
    static func readmeInstrumenting() throws {
        func handle() throws { try Context.handle() }
        // example: readme-instrumenting
        // Multiprocess mode follows PROMETHEUS_MULTIPROC_DIR, as in prometheus_client.
        let requests = try Counter("http_requests_total", help: "Requests served.", labelNames: ["route", "status"])
        let latency = try Histogram("http_request_duration_seconds", help: "Latency.", labelNames: ["route"])
        let inProgress = try Gauge("http_requests_in_progress", help: "In progress.", mode: .livesum)

        let ok = requests.labels("/api", "200")      // keep children for hot paths: an update is one atomic add
        try inProgress.trackInProgress {
            try latency.labels("/api").time { try handle() }
        }
        ok.increment()
        // end example
    }

    /// README: exemplars (default registry: compiled, never run by the tests).
    static func readmeExemplars() throws {
        // example: readme-exemplars
        let checkout = try Counter("checkout_requests_total", help: "Checkouts.", labelNames: ["route"])
        let traced = try Exemplar(["trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"])  // throws past 128 characters
        checkout.labels("/cart").increment(by: 1, exemplar: traced)
        let latency = try Histogram("checkout_duration_seconds", help: "Checkout latency.")
        latency.observe(0.42, exemplar: traced)  // the exemplar of the bucket 0.42 falls in
        // end example
    }

    /// The doc comment of `Exemplar`, on a registry of its own. Returns the counter.
    static func exemplarDoc() throws -> Counter {
        // example: exemplar-doc
        let served = try Counter("exemplar_requests_total", help: "Requests.", registry: Registry())
        served.increment(by: 1, exemplar: try Exemplar(labels: [Label("trace_id", "4bf92f3577b34da6")]))
        // end example
        return served
    }

    /// README: merging a directory into exposition bytes, run on `directory` instead of the
    /// README's path. Returns what it printed.
    static func readmeMerging(directory: String) -> String {
        var printed = ""
        func print(_ text: String) { printed = text }
        func MultiProcessCollector(directory _: String) -> MultiprocessCollector.MultiProcessCollector {
            .init(directory: directory, includeSelfMetrics: false)
        }
        // example: readme-merging
        let merged = MultiProcessCollector(directory: "/run/app-metrics").collect()
        let bytes = Exposition.render(merged.families, format: .prometheusText)   // or .openMetrics
        print(String(decoding: bytes, as: UTF8.self))
        // end example
        return printed
    }

    /// PromMetrics.docc overview.
    static func doccOverview(registry: Registry) throws -> CounterChild {
        func Counter(_ name: String, help: String, labelNames: [String]) throws -> PromMetrics.Counter {
            try PromMetrics.Counter(name, help: help, labelNames: labelNames, registry: registry)
        }
        // example: docc-overview
        let requests = try Counter("http_requests_total", help: "Requests.", labelNames: ["route", "status"])
        let ok = requests.labels("/api", "200")
        ok.increment()
        // end example
        return ok
    }

    /// `MultiProcessCollector`'s doc comment (compiled only: it names a fixed directory).
    static func collectorDoc() {
        // example: collector
        let collector = MultiProcessCollector(directory: "/run/metrics")
        let result = collector.collect()
        for family in result.families { print(family.name, family.samples.count) }
        // end example
    }

    /// `NegotiatedExposition`'s doc comment. Returns what it printed.
    static func negotiationDoc() -> [String] {
        var printed: [String] = []
        func print(_ value: Any) { printed.append("\(value)") }
        // example: negotiation
        let choice = NegotiatedExposition(acceptHeader: "application/openmetrics-text;version=1.0.0")
        print(choice.format)       // openMetrics
        print(choice.contentType)  // application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores
        // end example
        return printed
    }

    /// `Exposition`'s doc comment.
    static func renderDoc(families: [MetricFamilySnapshot], request: Context.Request) -> [UInt8] {
        // example: render
        var body: [UInt8] = []
        let choice = NegotiatedExposition(acceptHeader: request.accept)
        Exposition.render(families, format: choice.format, escaping: choice.escaping, into: &body)
        // respond with body and choice.contentType
        // end example
        return body
    }

    /// `NativeHistogramSnapshot`'s doc comment.
    static func nativeHistogramDoc() -> MetricFamilySnapshot {
        // example: native-histogram
        // Observations 0.0, 1.5, 3.0 and -2.5 at schema 0 (boundaries at powers of 2).
        let latency = NativeHistogramSnapshot(
            labels: [Label("route", "/api")], schema: 0, zeroThreshold: 1e-128, zeroCount: 1,
            count: 4, sum: 2.0,
            positiveBuckets: [.init(index: 1, count: 1), .init(index: 2, count: 1)],
            negativeBuckets: [.init(index: 2, count: 1)])
        let family = MetricFamilySnapshot(name: "latency_seconds", kind: .histogram, help: "Latency.",
                                          samples: [], nativeHistograms: [latency])
        // end example
        return family
    }

    /// `MetricFileReader`'s doc comment (compiled only).
    static func readerDoc() throws {
        // example: reader
        var reader = MetricFileReader()
        let contents = try reader.load(path: "/run/metrics/counter_123.db")
        try contents.forEachEntry { entry in print(entry.value) }
        // end example
    }

    /// `ProcessStore`'s doc comment (compiled only).
    static func storeDoc() throws {
        // example: store
        let store = try ProcessStore(directory: "/run/metrics")
        let requests = try store.series(kind: .counter, key: SeriesKey(
            family: "requests", sample: "requests_total", labels: [], help: "Requests."))
        requests.add(1)
        // end example
    }

    /// `HTTPServerConfiguration`'s doc comment.
    static func configurationDoc() -> HTTPServerConfiguration {
        // example: configuration
        var configuration = HTTPServerConfiguration()
        configuration.bindAddress = "0.0.0.0"
        configuration.port = 9100
        // end example
        return configuration
    }

    /// `HTTPRequest.header(_:)`'s doc comment.
    static func headerDoc(_ request: HTTPRequest) -> String {
        // example: header
        let accept = request.header("accept") ?? "*/*"
        // end example
        return accept
    }

    /// `MetricsHTTPServer`'s doc comment (compiled only: it binds 0.0.0.0 and waits for a signal).
    static func serverDoc() throws {
        // example: server
        let metrics = MetricsHandler()   // merges PROMETHEUS_MULTIPROC_DIR on every scrape
        let server = try MetricsHTTPServer(
            configuration: HTTPServerConfiguration(bindAddress: "0.0.0.0", port: 9100),
            routes: ["/metrics": { request in
                metrics.respond(method: request.method, path: request.path, query: request.query, headers: request.headers)
            }])
        try server.start()
        try server.shutdownOnSignals()   // SIGTERM or SIGINT: finish in-flight scrapes, then stop
        server.waitUntilStopped()
        // end example
    }

    /// README: serving /metrics from one's own server, for the given request headers (the
    /// default registry: compiled, never run by the tests).
    static func readmeHandler(requestHeaders: [HTTPHeader]) -> HTTPResponse {
        // example: readme-handler
        let metrics = MetricsHandler(registry: .default)   // the directory of PROMETHEUS_MULTIPROC_DIR
        // in the route your server mounts at /metrics:
        let response = metrics.respond(method: "GET", path: "/metrics", query: "", headers: requestHeaders)
        // response.status, response.headers, response.body
        // end example
        return response
    }

    /// `MetricsHandler`'s doc comment, with `MetricsHTTPServer` (compiled only: it binds 0.0.0.0).
    static func handlerDoc(serverRegistry: Registry) throws -> MetricsHTTPServer {
        // example: handler-server
        let metrics = MetricsHandler(directory: "/run/metrics", registry: serverRegistry)
        let server = try MetricsHTTPServer(configuration: .init(bindAddress: "0.0.0.0", port: 9464), routes: [
            "/metrics": { request in
                metrics.respond(method: request.method, path: request.path, query: request.query, headers: request.headers)
            },
        ])
        // end example
        return server
    }

    /// `ProblemReporter`'s doc comment: bootstrapping (compiled only: it sets process-wide state).
    static func problemReporterBootstrapDoc() {
        /// A stand-in for swift-log's `Logger`.
        struct Logger { func warning(_ message: String, metadata: [String: String]) {} }
        let logger = Logger()
        // example: problem-reporter-bootstrap
        ProblemReporter.bootstrap(ProblemReporter { problem in
            logger.warning("\(problem.message)", metadata: ["code": "\(problem.code)"])
        })
        // end example
    }

    /// `ProblemReporter`'s doc comment: one storage's own reporter, run in `dir`; `record`
    /// receives the problems.
    static func problemReporterStorageDoc(dir: String, record: @escaping @Sendable (Problem) -> Void) throws -> Registry {
        // example: problem-reporter-storage
        let seen = ProblemReporter { problem in record(problem) }
        let registry = Registry(storage: try .multiprocess(directory: dir, reporter: seen))
        // end example
        return registry
    }

    /// `Pushgateway`'s doc comment and the README's push section (compiled only: it needs a
    /// gateway at that address; EndToEndTests pushes to a real one).
    static func pushgatewayDoc() throws {
        // example: pushgateway
        // At the end of a batch job whose workers wrote into the multiprocess directory:
        let merged = MultiProcessCollector(directory: "/run/batch-metrics").collect()
        let gateway = try Pushgateway(url: "http://pushgateway.example.org:9091", timeout: 10)
        try gateway.push(merged.families, job: "nightly_report", grouping: ["shard": "3"], replace: true)
        // end example
    }

    /// `GoFloat`'s doc comment.
    static func goFloatDoc() {
        // example: gofloat
        assert(GoFloat.format(1_000_000) == "1e+06")
        assert(GoFloat.format(0.005) == "0.005")
        assert(GoFloat.format(-.infinity) == "-Inf")
        // end example
    }

    /// The doc comments of the metric types, on an explicit registry so that they can run.
    static func metricDocs(registry: Registry) throws {
        func Enum(_ name: String, help: String, states: [String]) throws -> PromMetrics.Enum {
            try PromMetrics.Enum(name, help: help, states: states, registry: registry)
        }
        func Info(_ name: String, help: String) throws -> PromMetrics.Info {
            try PromMetrics.Info(name, help: help, registry: registry)
        }
        func Gauge(_ name: String, help: String, mode: GaugeMode) throws -> PromMetrics.Gauge {
            try PromMetrics.Gauge(name, help: help, mode: mode, registry: registry)
        }
        func Histogram(_ name: String, help: String, labelNames: [String]) throws -> PromMetrics.Histogram {
            try PromMetrics.Histogram(name, help: help, labelNames: labelNames, registry: registry)
        }
        func Counter(_ name: String, help: String, labelNames: [String]) throws -> PromMetrics.Counter {
            try PromMetrics.Counter(name, help: help, labelNames: labelNames, registry: registry)
        }
        func Histogram(_ name: String, help: String, native: NativeHistogramOptions) throws -> PromMetrics.Histogram {
            try PromMetrics.Histogram(name, help: help, native: native, registry: registry)
        }
        func Summary(_ name: String, help: String, quantiles: SummaryQuantiles) throws -> PromMetrics.Summary {
            try PromMetrics.Summary(name, help: help, quantiles: quantiles, registry: registry)
        }
        func Summary(_ name: String, help: String, labelNames: [String], quantiles: SummaryQuantiles) throws -> PromMetrics.Summary {
            try PromMetrics.Summary(name, help: help, labelNames: labelNames, quantiles: quantiles, registry: registry)
        }
        let request = Context.Request(accept: nil)
        func handle(_ request: Context.Request) throws { try Context.handle(request) }
        func serve() throws { try Context.serve() }
        do {
            // example: summary
            let latency = try Summary("request_latency_seconds", help: "Latency.",
                                      quantiles: SummaryQuantiles(objectives: [0.5, 0.99], relativeError: 0.005))
            latency.observe(0.25)
            // end example
        }
        do {
            // example: summary-quantiles
            let queries = try Summary("db_query_seconds", help: "Query latency.",
                                      quantiles: SummaryQuantiles(objectives: [0.5, 0.9, 0.99], relativeError: 0.01))
            queries.observe(0.042)
            // end example
        }
        do {
            // example: readme-summary-quantiles
            let rpc = try Summary("rpc_duration_seconds", help: "RPC latency.", labelNames: ["method"],
                                  quantiles: SummaryQuantiles(objectives: [0.5, 0.9, 0.99], relativeError: 0.01,
                                                              maxAge: 600, ageBuckets: 5))
            rpc.labels("get").observe(0.012)
            // end example
        }
        do {
            // example: enum
            let phase = try Enum("worker_phase", help: "Worker phase.", states: ["starting", "serving", "draining"])
            phase.state("serving")
            // end example
        }
        do {
            // example: info
            let build = try Info("build", help: "Build information.")
            build.info(["version": "1.2.3", "commit": "abc123"])
            // end example
        }
        do {
            // example: gauge
            let inProgress = try Gauge("http_requests_in_progress", help: "Requests in progress.", mode: .livesum)
            try inProgress.trackInProgress { try handle(request) }
            // end example
        }
        do {
            // example: histogram
            let latency = try Histogram("request_duration_seconds", help: "Latency.", labelNames: ["route"])
            let api = latency.labels("/api")
            try api.time { try serve() }
            // end example
        }
        do {
            // example: native-histogram-options
            let sizes = try Histogram("response_size_bytes", help: "Response sizes.",
                                      native: NativeHistogramOptions(bucketFactor: 1.1, maxBucketNumber: 100))
            sizes.observe(1_520)
            // end example
        }
        do {
            // example: counter
            let requests = try Counter("http_requests_total", help: "Requests served.", labelNames: ["method", "code"])
            let ok = requests.labels("GET", "200")   // keep this for the hot path
            ok.increment()
            // end example
        }
    }

    /// A stand-in for the application's queue in `Gauge`'s function example.
    final class JobQueue: Sendable {
        var count: Int { 3 }
    }

    /// The doc comment of `Gauge`'s initialiser with a function, on `serverRegistry`.
    static func functionGaugeDoc(serverRegistry: Registry) throws -> Gauge {
        // example: gauge-function
        let queue = JobQueue()
        let queued = try Gauge("jobs_queued", help: "Jobs waiting to run.", registry: serverRegistry) {
            Double(queue.count)
        }
        // end example
        return queued
    }

    /// `Registry`'s doc comment, run in `dir`.
    static func registryDoc(dir: String) throws -> Registry {
        // example: registry
        let registry = Registry(storage: try .multiprocess(directory: dir, identity: .fixed("123")))
        let requests = try Counter("http_requests_total", help: "Requests.", labelNames: ["method"], registry: registry)
        requests.labels("GET").increment()
        // end example
        return registry
    }
}
