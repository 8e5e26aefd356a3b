// `/metrics?name[]=...` against prometheus_client: the same directory (files of a Swift and
// of a Python worker) and the same server-side metrics, read through prometheus_client's
// `restricted_registry` and `generate_latest`, must give the same samples. The query decoding
// is compared with Python's `urllib.parse.parse_qs`, which prometheus_client's exporters use.
import Foundation
import MultiprocessCollector
import PromHTTP
import PromMetrics
import Testing
import TestSupport

private struct Mismatch: Error, CustomStringConvertible {
    var description: String
}

/// A directory with the files of a Swift worker (pid 11: a labelled counter, a histogram, an
/// `all`-mode gauge) and of a prometheus_client worker (a counter, the same histogram, a
/// summary and a `livesum` gauge).
private func mixedDirectory() throws -> TempDirectory {
    let dir = TempDirectory("pmp-names")
    let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("11"))
    defer { storage.store?.close() }
    let registry = Registry(storage: storage)
    let requests = try Counter("http_requests_total", help: "Requests.", labelNames: ["route"], registry: registry)
    requests.labels("/a").increment(by: 3)
    requests.labels("/b").increment()
    let latency = try Histogram("http_request_seconds", help: "Latency.", buckets: [0.1, 1], registry: registry)
    latency.observe(0.05)
    latency.observe(0.5)
    try Gauge("open_connections", help: "Connections.", mode: .all, registry: registry).set(5)

    let writer = #"""
        from prometheus_client import Counter, Gauge, Histogram, Summary
        Counter("py_jobs", "Jobs.", ["queue"]).labels("mail").inc(7)
        h = Histogram("http_request_seconds", "Latency.", buckets=[0.1, 1])
        h.observe(0.7); h.observe(3)
        Summary("py_latency_seconds", "Latency.").observe(0.25)
        Gauge("py_queue", "Queue.", multiprocess_mode="livesum").set(4)
        """#
    let wrote = try run(try ExternalTool.python.path(), ["-c", writer], environment: ["PROMETHEUS_MULTIPROC_DIR": dir.path])
    guard wrote.status == 0 else { throw Mismatch(description: "the Python worker failed: \(wrote.stderr)") }
    return dir
}

/// Compares our body with prometheus_client's restricted view of the same directory and the
/// same server metrics (parsed on both sides, so only content counts); returns the number of
/// samples compared.
private func compareWithPrometheusClient(directory: String, names: [String], body: String) throws -> Int {
    let script = #"""
        import json, sys
        from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector
        from prometheus_client.parser import text_string_to_metric_families

        # A collector without describe() takes part in restricted scrapes only in a registry
        # made with support_collectors_without_names (otherwise prometheus_client serves nothing
        # of the directory for any name[]).
        r = CollectorRegistry(support_collectors_without_names=True)
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

        names = json.loads(sys.argv[2])
        theirs = content(generate_latest(r.restricted_registry(names)).decode())
        ours = content(sys.stdin.read())
        if theirs != ours:
            print(json.dumps({"prometheus_client": theirs, "MetricsHandler": ours}, indent=1))
            sys.exit(1)
        print(len(ours))
        """#
    let namesJSON = String(decoding: try JSONSerialization.data(withJSONObject: names), as: UTF8.self)
    let compared = try run(try ExternalTool.python.path(), ["-c", script, directory, namesJSON],
                           environment: ["PROMETHEUS_DISABLE_CREATED_SERIES": "True"], input: body)
    guard compared.status == 0, let count = Int(compared.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw Mismatch(description: "prometheus_client differs for \(names):\n\(compared.stdout)\(compared.stderr)")
    }
    return count
}

/// `name[]=<name>` for each name, the brackets percent-encoded every other time, as clients
/// send either.
private func query(_ names: [String]) -> String {
    names.enumerated().map { i, name in
        let value = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? name
        return (i % 2 == 0 ? "name[]=" : "name%5B%5D=") + value
    }.joined(separator: "&")
}

@Suite struct MetricsHandlerNameFilterTests {
    /// Each case: the names asked for, and how many samples prometheus_client keeps for them.
    @Test(arguments: [
        (["http_requests_total"], 2),
        (["http_request_seconds_bucket"], 3),
        (["http_request_seconds_count", "http_request_seconds_sum", "open_connections"], 3),
        (["py_jobs_total", "py_latency_seconds_count", "py_queue"], 3),
        (["worker_pool_size", "config_reloads_total", "http_requests_total"], 4),
        // Family names without their samples' suffixes select nothing, as in prometheus_client.
        (["http_requests", "http_request_seconds", "py_latency_seconds", "config_reloads"], 0),
        (["no_such_metric"], 0),
    ] as [([String], Int)])
    func keepsTheSamplesPrometheusClientsRestrictedRegistryKeeps(names: [String], samples: Int) throws {
        let dir = try mixedDirectory(); defer { dir.remove() }
        let server = Registry()
        try Gauge("worker_pool_size", help: "Workers in the pool.", registry: server).set(4)
        try Counter("config_reloads_total", help: "Reloads.", registry: server).increment(by: 2)
        let handler = MetricsHandler(collector: MultiProcessCollector(directory: dir.path, includeSelfMetrics: false),
                                     registry: server, processMetrics: false)
        let response = handler.respond(method: "GET", query: query(names))
        #expect(response.status == 200)
        let body = String(decoding: response.body, as: UTF8.self)
        #expect(try compareWithPrometheusClient(directory: dir.path, names: names, body: body) == samples, "\(body)")
        #expect(!body.contains("prom_multiproc_scrapes_total"), "the handler's own metrics are restricted too")
    }

    /// The same restriction in OpenMetrics: the output stays valid for the strict parser (a
    /// histogram with only its buckets, a counter with only `_total`).
    @Test func restrictedOpenMetricsPassesTheStrictParser() throws {
        let dir = try mixedDirectory(); defer { dir.remove() }
        let handler = MetricsHandler(collector: MultiProcessCollector(directory: dir.path, includeSelfMetrics: false),
                                     processMetrics: false)
        let response = handler.respond(
            method: "GET", query: query(["http_request_seconds_bucket", "http_requests_total", "py_queue"]),
            headers: [HTTPHeader(name: "Accept", value: "application/openmetrics-text; version=1.0.0")])
        let body = String(decoding: response.body, as: UTF8.self)
        let parsed = try run(try ExternalTool.python.path(), ["-c", #"""
            import sys
            from prometheus_client.openmetrics.parser import text_string_to_metric_families
            print(sorted(f.name for f in text_string_to_metric_families(sys.stdin.read())))
            """#], input: body)
        #expect(parsed.status == 0, "\(parsed.stderr)\n\(body)")
        #expect(parsed.stdout == "['http_request_seconds', 'http_requests', 'py_queue']\n", "\(body)")
    }

    /// Without `name[]`, or with only empty values (which `parse_qs` drops), everything is
    /// exported.
    @Test(arguments: ["", "name[]=", "name[]", "other=1", "name=http_requests_total"])
    func noNameMeansEverything(query: String) throws {
        let dir = try mixedDirectory(); defer { dir.remove() }
        let handler = MetricsHandler(collector: MultiProcessCollector(directory: dir.path, includeSelfMetrics: false),
                                     processMetrics: false)
        let all = String(decoding: handler.respond(method: "GET").body, as: UTF8.self)
        let body = String(decoding: handler.respond(method: "GET", query: query).body, as: UTF8.self)
        for family in ["http_requests_total", "http_request_seconds", "open_connections", "py_jobs_total", "py_queue"] {
            #expect(body.contains("# TYPE \(family) "), "\(family) for query '\(query)'")
        }
        #expect(body.split(separator: "\n").count == all.split(separator: "\n").count)
    }

    /// Our decoding of `name[]` values equals Python's `parse_qs(query).get("name[]", [])`.
    @Test func queryDecodingMatchesPythonsParseQs() throws {
        let queries = [
            "name[]=a&name[]=b", "name%5B%5D=a%5Fb&name%5b%5d=c", "name[]=a+b%20c", "name[]=&name[]=x&name[]",
            "name[]=%zz%4&name[]=%", "name[]=%C3%A9&name[]=%FF%FE", "x=1&&name[]=a=b&;name[]=c", "NAME[]=a&name[]=b;c",
            "name[]=caf%C3%A9&name[]=cafe%CC%81", "name+[]=a&name[]=%2B",
        ]
        let script = #"""
            import json, sys
            from urllib.parse import parse_qs
            print(json.dumps([parse_qs(q).get("name[]", []) for q in json.loads(sys.stdin.read())]))
            """#
        let input = String(decoding: try JSONSerialization.data(withJSONObject: queries), as: UTF8.self)
        let python = try run(try ExternalTool.python.path(), ["-c", script], input: input)
        #expect(python.status == 0, "\(python.stderr)")
        let theirs = try JSONSerialization.jsonObject(with: Data(python.stdout.utf8)) as? [[String]] ?? []
        #expect(theirs.count == queries.count)
        for (q, expected) in zip(queries, theirs) {
            let ours = QueryString.values(of: "name[]", in: q)
            // Compared by code points, as Python does (Swift's == would equate é and e + U+0301).
            #expect(ours.map { Array($0.unicodeScalars) } == expected.map { Array($0.unicodeScalars) }, "query \(q)")
        }
    }
}
