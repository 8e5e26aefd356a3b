// The /metrics endpoint as a plain function, for any Swift HTTP server: request in, response
// out, no sockets (client_golang's promhttp.HandlerFor is the model). The CLI's `serve` and
// `demo` use it too, so there is one scrape path.
import MultiprocessCollector
import PromExposition
import PromMetrics

/// Answers scrapes: merges the multiprocess directory, adds the server's own in-process
/// metrics, and renders them in the format the scraper asks for.
///
/// A Swift server calls ``respond(method:path:query:headers:)`` once per request to its metrics
/// route. For `GET` the handler
/// 1. chooses the format from the `Accept` header as prometheus_client does
///    (`NegotiatedExposition`): OpenMetrics 1.0.0 for Prometheus, protobuf for Prometheus
///    with native histograms on (it asks for it first), text 0.0.4 otherwise;
/// 2. merges every file of the multiprocess directory (a `MultiProcessCollector`), and adds
///    the families of the server's own `Registry`, if given, that the directory does not
///    already export;
/// 3. renders them (`Exposition.render`) with the negotiated `Content-Type`, gzip-compressed
///    (`Content-Encoding: gzip`) when `Accept-Encoding` allows it, as Prometheus's does.
///
/// A query naming samples (`?name[]=http_requests_total&name[]=build_info`, as Prometheus's
/// federation and prometheus_client's exporters take it) restricts the answer to those
/// samples, with prometheus_client's `restricted_registry` rule: a sample is kept when its
/// full name is listed, a family when one of its samples is. The merge then accumulates only
/// the families that can hold a listed sample. Without `name[]` (or with empty values only)
/// everything is exported.
///
/// In OpenMetrics, Info and Enum metrics of this package's workers are typed `info` and
/// `stateset` (their files store them as gauges, as prometheus_client does; a metadata file
/// next to them, which prometheus_client never reads, says what they are). Text 0.0.4 and
/// protobuf, which have no such types, export them as gauges, as prometheus_client does.
///
/// In OpenMetrics (and protobuf, as `created_timestamp`), each counter, histogram and summary
/// series of this package's workers has `<name>_created`, as prometheus_client's
/// single-process mode exports it: the earliest time any process merged created the series,
/// kept after the process exits and its values are compacted. `PROMETHEUS_DISABLE_CREATED_SERIES`
/// (`true`, `1` or `t`) or `createdSeries: false` turns them off. Text 0.0.4 has none, as
/// prometheus_client's multiprocess collector has none.
///
/// `HEAD` gets the same status and headers, no body, and a `Content-Length` giving the length
/// a `GET` would get. Any other method gets `405 Method Not Allowed` with `Allow: GET, HEAD`.
/// The handler does not look at the path: the caller routes (mount it at `/metrics`).
///
/// Alongside the collector's `prom_multiproc_collector_*` families, the handler exports
/// `prom_multiproc_scrapes_total{format}`: the `GET` and `HEAD` requests it answered, by
/// format (`text`, `openmetrics` or `protobuf`). It lives in the handler's memory, never in the
/// directory.
///
/// Unless turned off, it also exports prometheus_client's process metrics
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
/// `process_start_time_seconds`), read from `/proc` on every scrape. Without a directory they
/// describe the serving process, unlabelled, as prometheus_client's default registry does.
/// With a directory every series has a `pid` label: one per live worker (a process holding the
/// lock of one of its metric files, and visible under that pid in this process's `/proc`) and
/// one for the serving process. prometheus_client's workers, whose files carry no lock, are
/// not included. A worker that exits is gone from the next scrape.
///
/// With Hummingbird 2, the route of `Integrations/HummingbirdExample` (which compiles and
/// tests it; `HTTPField` comes from swift-http-types, whose `HTTPResponse` is also imported by
/// `import Hummingbird`: name ours `PromHTTP.HTTPResponse` where needed). `registry: .default`
/// serves the app's own metrics too when there is no directory:
///
/// ```swift
/// let metrics = MetricsHandler(registry: .default)   // the directory of PROMETHEUS_MULTIPROC_DIR
/// router.get("metrics") { request, _ -> Response in
///     let r = metrics.respond(
///         method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
///         headers: request.headers.map { HTTPHeader(name: $0.name.rawName, value: $0.value) })
///     var headers = HTTPFields()
///     for field in r.headers {
///         if let name = HTTPField.Name(field.name) { headers.append(HTTPField(name: name, value: field.value)) }
///     }
///     return Response(status: .init(code: r.status), headers: headers,
///                     body: .init(byteBuffer: ByteBuffer(bytes: r.body)))
/// }
/// ```
///
/// The handler is safe to call from several threads at once; each call merges the directory
/// afresh. While the series stay the same from scrape to scrape, a text or OpenMetrics answer
/// is the last one with the new values written into it (the same bytes, a fraction of the
/// rendering); the handler keeps the last body of each of the two formats for that.
public final class MetricsHandler: Sendable {
    private let collector: MultiProcessCollector?
    /// The server's own registry, if given.
    private let registry: Registry?
    /// Whether the registry's metrics write into the merged directory: then the merge already
    /// has their values, and only the registry's custom collectors are read.
    private let registryWritesIntoTheDirectory: Bool
    /// The handler's own metrics, in memory.
    private let ownMetrics: Registry
    private let scrapes: Counter
    /// Reads `/proc` for the process metrics; nil when they are turned off or there is no
    /// `/proc`.
    private let processMetrics: ProcessMetrics?
    /// Whether OpenMetrics and protobuf answers carry `_created` series.
    private let createdSeries: Bool
    /// The last text and OpenMetrics bodies, rewritten with new values while the series stay
    /// the same.
    private let exposition: ExpositionCache

    /// Creates a handler over a multiprocess directory and, optionally, the server's own
    /// registry.
    ///
    /// - Parameters:
    ///   - directory: the multiprocess directory to merge on every scrape. When nil (the
    ///     default), the directory named by `PROMETHEUS_MULTIPROC_DIR` (or the deprecated
    ///     `prometheus_multiproc_dir`, with a warning), as `Registry.default` chooses it; when
    ///     neither is set, no directory is merged and the handler serves `registry` alone, as
    ///     a single-process server does.
    ///     Problems with the directory's files are reported to `ProblemReporter.default` and
    ///     counted in `prom_multiproc_collector_bad_files`.
    ///   - registry: the server's own metrics, added to every scrape: families not backed by
    ///     the directory, such as process-local gauges. A family the directory already exports
    ///     (by family or sample name) is left out. The metrics of a registry whose values live
    ///     in the merged directory itself (such as `Registry.default` in multiprocess mode) are
    ///     not read: the merge already holds their values; its custom collectors (anything
    ///     registered with `Registry.register(_:)`) are. So `MetricsHandler(registry: .default)`
    ///     serves the right metrics in both single-process and multiprocess mode.
    ///   - processMetrics: export the `process_*` families of the serving process and, with a
    ///     directory, of every live worker. On by default.
    ///   - createdSeries: export `_created` in OpenMetrics and protobuf. nil (the default):
    ///     unless `PROMETHEUS_DISABLE_CREATED_SERIES` is `true`, `1` or `t`, as in
    ///     prometheus_client.
    public convenience init(directory: String? = nil, registry: Registry? = nil, processMetrics: Bool = true,
                            createdSeries: Bool? = nil) {
        let merged = directory ?? MetricStorage.environmentDirectory()
        self.init(collector: merged.map { MultiProcessCollector(directory: $0) }, registry: registry,
                  processMetrics: processMetrics, createdSeries: createdSeries)
    }

    /// Creates a handler over a collector configured by the caller (its reporter, whether it
    /// adds its self-metrics, whether it leaves out dead owners' live gauges).
    ///
    /// - Parameters:
    ///   - collector: merges the multiprocess directory on every scrape; nil to serve
    ///     `registry` alone.
    ///   - registry: the server's own metrics, as for ``init(directory:registry:processMetrics:createdSeries:)``.
    ///   - processMetrics: export the `process_*` families, as for
    ///     ``init(directory:registry:processMetrics:createdSeries:)``.
    ///   - createdSeries: export `_created`, as for
    ///     ``init(directory:registry:processMetrics:createdSeries:)``.
    public init(collector: MultiProcessCollector?, registry: Registry? = nil, processMetrics: Bool = true,
                createdSeries: Bool? = nil) {
        self.collector = collector
        // Renders in full on as many threads as the merge reads on.
        exposition = ExpositionCache(threads: collector?.mergeThreads ?? 1)
        self.createdSeries = createdSeries ?? !CreatedSeries.disabledByEnvironment()
        self.registry = registry
        if let registry, let collector, let store = registry.storage.store,
           Self.sameDirectory(store.directory, collector.directory) {
            registryWritesIntoTheDirectory = true
        } else {
            registryWritesIntoTheDirectory = false
        }
        self.processMetrics = processMetrics ? ProcessMetrics() : nil
        ownMetrics = Registry(storage: .inProcess)
        do {
            scrapes = try Counter(
                "prom_multiproc_scrapes_total", help: "Scrapes served by this endpoint, by format.",
                labelNames: ["format"], registry: ownMetrics)
        } catch {
            // A fixed, valid name in a registry of its own cannot clash: a bug if it does.
            preconditionFailure("MetricsHandler: \(error)")
        }
    }

    /// The response to one request for the metrics.
    ///
    /// - Parameters:
    ///   - method: the request method, case-sensitive as HTTP defines it: `GET` and `HEAD`
    ///     are answered, anything else gets `405` with `Allow: GET, HEAD`.
    ///   - path: the request path. Not used: the caller routes; it is taken so that the call
    ///     has the shape of a request.
    ///   - query: the query string, without `?`, URL-encoded: each `name[]` field names a
    ///     sample to export (see above); other fields are ignored.
    ///   - headers: the request's header fields (names compared case-insensitively, repeated
    ///     fields joined): `Accept` chooses the format, `Accept-Encoding` whether the body is
    ///     gzip-compressed.
    /// - Returns: `200` with `Content-Type`, `Content-Encoding: gzip` when compressed, and the
    ///   exposition (no body for `HEAD`, whose `Content-Length` gives the length), or `405`.
    public func respond(method: String, path: String = "/metrics", query: String = "",
                        headers: [HTTPHeader] = []) -> HTTPResponse {
        guard method == "GET" || method == "HEAD" else {
            return .text(405, "Method Not Allowed\n", headers: [HTTPHeader(name: "Allow", value: "GET, HEAD")])
        }
        let request = HTTPRequest(method: method, path: path, query: query, headers: headers)
        let negotiated = NegotiatedExposition(acceptHeader: request.header("Accept"))
        scrapes.labels(negotiated.format.rawValue).increment()
        let names = QueryString.values(of: "name[]", in: query)
        let filter = names.isEmpty ? nil : SampleNameFilter(names)
        let created = createdSeries && negotiated.format != .prometheusText
        var body = exposition.render(families(names: filter, openMetrics: negotiated.format == .openMetrics, created: created,
                                                 exemplars: negotiated.format != .prometheusText), format: negotiated.format, escaping: negotiated.escaping)
        var responseHeaders = [HTTPHeader(name: "Content-Type", value: negotiated.contentType)]
        if Gzip.isAccepted(byAcceptEncoding: request.header("Accept-Encoding")) {
            body = Gzip.compress(body)
            responseHeaders.append(HTTPHeader(name: "Content-Encoding", value: "gzip"))
        }
        if method == "HEAD" {
            responseHeaders.append(HTTPHeader(name: "Content-Length", value: String(body.count)))
            return HTTPResponse(status: 200, headers: responseHeaders)
        }
        return HTTPResponse(status: 200, headers: responseHeaders, body: body)
    }

    /// The families of one scrape: the directory's, then the handler's own, the registry's
    /// and the process metrics, each where it clashes with nothing before it (an application's
    /// own `process_*` family wins over ours); sorted by name; only the samples `names` lists,
    /// when given.
    private func families(names: SampleNameFilter?, openMetrics: Bool, created: Bool, exemplars: Bool) -> [MetricFamilySnapshot] {
        var inProcess = ownMetrics.collect()
        if let registry { inProcess += registryWritesIntoTheDirectory ? registry.collectNotInFiles() : registry.collect() }
        guard let collector else {
            let families = MultiProcessCollector.combine(
                directory: [], inProcess: inProcess + (processMetrics?.familiesOfThisProcess() ?? [])).0
            return names?.restrict(families) ?? families
        }
        return collector.collect(including: inProcess, alongside: { listedPaths in
            processMetrics?.familiesOfLiveWorkers(listedPaths: listedPaths) ?? []
        }, names: names, typesFromMetadata: openMetrics, createdSeries: created, exemplars: exemplars).families
    }

    /// Whether two spellings of a directory name the same path (ignoring trailing slashes).
    private static func sameDirectory(_ a: String, _ b: String) -> Bool {
        func trimmed(_ s: String) -> Substring {
            var t = Substring(s)
            while t.count > 1 && t.hasSuffix("/") { t = t.dropLast() }
            return t
        }
        return trimmed(a) == trimmed(b)
    }
}
