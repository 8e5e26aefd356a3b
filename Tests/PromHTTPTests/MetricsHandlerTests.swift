// MetricsHandler without sockets: request values in, response values out. What the merged
// exposition should hold comes from prometheus_client (the interop venv, $PROM_MULTIPROC_PYTHON)
// or is asserted structurally (status, content type, which families appear and how often).
import Foundation
import MmapStore
import MultiprocessCollector
import PromHTTP
import PromMetrics
import Testing
import TestSupport

/// What Prometheus 2.x sends.
private let prometheusAccept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

/// prometheus_client's `CONTENT_TYPE_PLAIN_0_0_4` and its OpenMetrics `CONTENT_TYPE_LATEST`.
private let textContentType = "text/plain; version=0.0.4; charset=utf-8"
private let openMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

/// A directory holding what one worker (pid 11) wrote through the metrics API: a labelled
/// counter, a histogram, and an `all`-mode gauge.
private func workerDirectory() throws -> TempDirectory {
    let dir = TempDirectory("pmp-handler")
    let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("11"))
    defer { storage.store?.close() }
    let registry = Registry(storage: storage)
    let requests = try Counter("http_requests_total", help: "Requests.", labelNames: ["route"], registry: registry)
    requests.labels("/a").increment(by: 3)
    requests.labels("/b").increment()
    let latency = try Histogram("http_request_seconds", help: "Latency.", buckets: [0.1, 1], registry: registry)
    latency.observe(0.05)
    latency.observe(0.5)
    let connections = try Gauge("open_connections", help: "Connections.", mode: .all, registry: registry)
    connections.set(5)
    return dir
}

/// A handler without the collector's self-metrics and the process metrics, whose values (a
/// duration, CPU time, memory) change the length of every scrape.
private func quietHandler(_ dir: TempDirectory, registry: Registry? = nil) -> MetricsHandler {
    MetricsHandler(collector: MultiProcessCollector(directory: dir.path, includeSelfMetrics: false), registry: registry,
                   processMetrics: false)
}

private func header(_ response: HTTPResponse, _ name: String) -> String? {
    response.headers.first { $0.name.lowercased() == name.lowercased() }?.value
}

private func text(_ response: HTTPResponse) -> String { String(decoding: response.body, as: UTF8.self) }

/// The lines of `body` that start with `prefix`.
private func lines(_ body: String, startingWith prefix: String) -> [Substring] {
    body.split(separator: "\n").filter { $0.hasPrefix(prefix) }
}

@Suite struct MetricsHandlerTests {
    @Test(arguments: [
        (nil, textContentType),
        ("*/*", textContentType),
        ("text/plain;version=0.0.4", textContentType),
        (prometheusAccept, openMetricsContentType + "; escaping=underscores"),
        ("application/openmetrics-text", openMetricsContentType),
    ] as [(String?, String)])
    func acceptHeaderChoosesTheFormat(accept: String?, contentType: String) throws {
        let dir = try workerDirectory(); defer { dir.remove() }
        let handler = MetricsHandler(directory: dir.path)
        let response = handler.respond(
            method: "GET", path: "/metrics", query: "",
            headers: accept.map { [HTTPHeader(name: "accept", value: $0)] } ?? [])
        #expect(response.status == 200)
        #expect(header(response, "Content-Type") == contentType)
        let body = text(response)
        if contentType.hasPrefix("application/openmetrics-text") {
            #expect(body.hasSuffix("# EOF\n"))
            #expect(body.contains("# TYPE http_requests counter\n"))
            #expect(body.contains(#"http_requests_total{route="/a"} 3.0"#))
        } else {
            #expect(!body.contains("# EOF"))
            #expect(body.contains("# TYPE http_requests_total counter\n"))
            #expect(body.contains(#"http_requests_total{route="/a"} 3.0"#))
        }
        #expect(body.contains("# TYPE prom_multiproc_collector_files gauge\n"), "the collector's self-metrics")
    }

    @Test func headHasNoBodyAndTheLengthAGetWouldHave() throws {
        let dir = try workerDirectory(); defer { dir.remove() }
        let handler = quietHandler(dir)
        let accept = [HTTPHeader(name: "Accept", value: prometheusAccept)]
        let head = handler.respond(method: "HEAD", headers: accept)
        let get = handler.respond(method: "GET", headers: accept)
        #expect(head.status == 200 && get.status == 200)
        #expect(head.body.isEmpty)
        #expect(!get.body.isEmpty)
        #expect(header(head, "Content-Length") == String(get.body.count))
        #expect(header(head, "Content-Type") == header(get, "Content-Type"))
        #expect(header(get, "Content-Length") == nil, "a GET's length is the server's to frame")
    }

    /// With `Accept-Encoding: gzip` (Prometheus sends it on every scrape) the body is the same
    /// exposition, compressed: Python's gzip module turns it back into the bytes an uncompressed
    /// first scrape of an identical handler gets. HEAD states the compressed length.
    @Test func gzipWhenAcceptEncodingAllowsIt() throws {
        let dir = try workerDirectory(); defer { dir.remove() }
        let gzip = [HTTPHeader(name: "Accept-Encoding", value: "gzip")]
        let plain = quietHandler(dir).respond(method: "GET")
        let compressed = quietHandler(dir).respond(method: "GET", headers: gzip)
        let head = quietHandler(dir).respond(method: "HEAD", headers: gzip)
        #expect(header(plain, "Content-Encoding") == nil)
        #expect(header(compressed, "Content-Encoding") == "gzip")
        #expect(header(compressed, "Content-Type") == textContentType)
        #expect(header(head, "Content-Encoding") == "gzip")
        #expect(header(head, "Content-Length") == String(compressed.body.count))
        #expect(compressed.body.count < plain.body.count)

        let file = dir.file("scrape.gz")
        try Data(compressed.body).write(to: URL(fileURLWithPath: file))
        let python = try ExternalTool.python.path()
        let decoded = try run(python, ["-c", "import gzip, sys; sys.stdout.write(gzip.open(sys.argv[1]).read().decode())", file])
        #expect(decoded.status == 0, "\(decoded.stderr)")
        #expect(decoded.stdout == text(plain))
        #expect(quietHandler(dir).respond(method: "GET", headers: [HTTPHeader(name: "Accept-Encoding", value: "gzip;q=0")]).body
                == plain.body)
    }

    @Test(arguments: ["POST", "PUT", "DELETE", "OPTIONS", "get", "head"])
    func otherMethodsGet405WithAllowAndAreNotCounted(method: String) throws {
        let dir = try workerDirectory(); defer { dir.remove() }
        let handler = quietHandler(dir)
        let refused = handler.respond(method: method)
        #expect(refused.status == 405)
        #expect(header(refused, "Allow") == "GET, HEAD")
        #expect(!text(refused).contains("http_requests"))
        let scrapes = lines(text(handler.respond(method: "GET")), startingWith: "prom_multiproc_scrapes_total")
        #expect(scrapes == [#"prom_multiproc_scrapes_total{format="text"} 1.0"#])
    }

    @Test func selfMetricCountsScrapesByFormat() throws {
        let dir = try workerDirectory(); defer { dir.remove() }
        let handler = MetricsHandler(directory: dir.path)
        let openMetrics = [HTTPHeader(name: "Accept", value: prometheusAccept)]
        _ = handler.respond(method: "GET")
        _ = handler.respond(method: "GET", headers: [HTTPHeader(name: "Accept", value: "text/plain;version=0.0.4")])
        _ = handler.respond(method: "GET", headers: openMetrics)
        _ = handler.respond(method: "HEAD")
        _ = handler.respond(method: "POST")
        let last = text(handler.respond(method: "GET"))
        #expect(last.contains("# HELP prom_multiproc_scrapes_total Scrapes served by this endpoint, by format.\n"))
        #expect(last.contains("# TYPE prom_multiproc_scrapes_total counter\n"))
        // In-process series come in creation order, as in prometheus_client.
        #expect(Set(lines(last, startingWith: "prom_multiproc_scrapes_total{")) == [
            #"prom_multiproc_scrapes_total{format="openmetrics"} 1.0"#,
            #"prom_multiproc_scrapes_total{format="text"} 4.0"#,
        ])
        let om = text(handler.respond(method: "GET", headers: openMetrics))
        #expect(om.contains(#"prom_multiproc_scrapes_total{format="openmetrics"} 2.0"#))
    }

    /// The directory merged with the server's own in-process metrics, compared with what
    /// prometheus_client exports for a registry holding its MultiProcessCollector over the
    /// same directory and the same in-process metrics (parsed on both sides, so only the
    /// content counts, not the order of families).
    @Test func mergesTheDirectoryWithTheServersRegistryAsPrometheusClientDoes() throws {
        let dir = try workerDirectory(); defer { dir.remove() }
        let server = Registry()
        try Gauge("worker_pool_size", help: "Workers in the pool.", registry: server).set(4)
        try Counter("config_reloads_total", help: "Reloads.", registry: server).increment(by: 2)
        let body = text(quietHandler(dir, registry: server).respond(method: "GET"))

        let script = #"""
            import json, sys
            from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
            from prometheus_client.multiprocess import MultiProcessCollector
            from prometheus_client.parser import text_string_to_metric_families

            r = CollectorRegistry()
            MultiProcessCollector(r, path=sys.argv[1])
            Gauge("worker_pool_size", "Workers in the pool.", registry=r).set(4)
            Counter("config_reloads", "Reloads.", registry=r).inc(2)

            def content(text):
                out = []
                for f in text_string_to_metric_families(text):
                    if f.name.startswith("prom_multiproc_"):
                        continue
                    for s in f.samples:
                        out.append([f.name, f.type, f.documentation, s.name, sorted(s.labels.items()), repr(s.value)])
                return sorted(out)

            theirs, ours = content(generate_latest(r).decode()), content(sys.stdin.read())
            if theirs != ours:
                print(json.dumps({"prometheus_client": theirs, "MetricsHandler": ours}, indent=1))
                sys.exit(1)
            print(len(ours))
            """#
        let python = try ExternalTool.python.path()
        let compared = try run(python, ["-c", script, dir.path], environment: ["PROMETHEUS_DISABLE_CREATED_SERIES": "True"],
                               input: body)
        #expect(compared.status == 0, "\(compared.stdout)\(compared.stderr)")
        // The worker's 2 counter, 5 histogram and 1 gauge samples, and the server's 2.
        #expect(compared.stdout == "10\n", "\(compared.stdout)")
    }

    /// A family the directory exports is never also taken from the registry: a registry that
    /// writes into the merged directory is not read at all, and a clashing in-process family
    /// is left out (the directory's value wins).
    @Test func familiesBackedByTheDirectoryAreNotCountedTwice() throws {
        let dir = try workerDirectory(); defer { dir.remove() }
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("12"))
        defer { storage.store?.close() }
        let worker = Registry(storage: storage)
        try Counter("http_requests_total", help: "Requests.", labelNames: ["route"], registry: worker).labels("/a").increment()
        _ = try Counter("jobs_total", help: "Jobs not run yet.", labelNames: ["queue"], registry: worker)
        let body = text(quietHandler(dir, registry: worker).respond(method: "GET"))
        #expect(lines(body, startingWith: "# TYPE http_requests_total ").count == 1)
        #expect(body.contains(#"http_requests_total{route="/a"} 4.0"#), "3 from pid 11, 1 from pid 12")
        #expect(!body.contains("jobs_total"), "an empty family of the directory's own writer is not exported")

        let server = Registry()
        try Gauge("http_requests", help: "A clash.", registry: server).set(99)
        try Gauge("local_only", help: "Local.", registry: server).set(1)
        let merged = text(quietHandler(dir, registry: server).respond(method: "GET"))
        #expect(!merged.contains("99"))
        #expect(lines(merged, startingWith: "# TYPE http_requests").count == 1)
        #expect(merged.contains("# TYPE local_only gauge\nlocal_only 1.0\n"))
    }

    @Test func withoutADirectoryTheRegistryIsServedAlone() throws {
        let server = Registry()
        try Counter("jobs_total", help: "Jobs.", registry: server).increment(by: 3)
        let handler = MetricsHandler(collector: nil, registry: server)
        let body = text(handler.respond(method: "GET"))
        #expect(body.contains("# TYPE jobs_total counter\njobs_total 3.0\n"))
        #expect(body.contains(#"prom_multiproc_scrapes_total{format="text"} 1.0"#))
        #expect(!body.contains("prom_multiproc_collector_"))
    }
}
