// Deployment tests, part 1: a real Prometheus server (Debian's package) scrapes `serve`.
//
// Also home of the helpers the deployment suites share (GunicornTests.swift,
// ServeAbuseTests.swift): children with a log file that are always stopped, a plain HTTP GET
// read to the end of the stream, a free port, polling with a deadline.
import SystemCalls
import Foundation
import PromExposition
import PromHTTP
import PromMetrics
import Testing
import TestSupport

/// The deployment suites (Prometheus, gunicorn, HTTP abuse) run one after the other: each
/// starts servers and worker pools, and their timing limits assume they do not share the
/// machine's two cores with one another.
@Suite(.serialized) struct DeploymentTests {}

extension DeploymentTests {
    @Suite struct PrometheusServerTests {
        @Test(.timeLimit(.minutes(2)))
        func prometheusScrapesServeOverOpenMetricsAndIngestsTheMergedSamples() throws {
            let dir = TempDirectory("pmp-prom-metrics"); defer { dir.remove() }
            let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("1"))
            defer { storage.store?.close() }
            let registry = Registry(storage: storage)
            let jobs = try Counter("e2e_jobs", help: "Jobs done.", labelNames: ["queue"], registry: registry)
            jobs.labels("a").increment(by: 3)
            jobs.labels("a").increment(by: 4)
            jobs.labels("b").increment()
            let latency = try Histogram("e2e_latency_seconds", help: "Latency.", registry: registry)
            latency.observe(0.25)
            latency.observe(0.5)

            let serve = try RunningServer.start(["serve", "--dir", dir.path, "--port", "0"])
            defer { _ = stopChild(serve.process) }

            let state = TempDirectory("pmp-prom-server"); defer { state.remove() }
            try """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: prom-multiproc
                metrics_path: /metrics
                static_configs:
                  - targets: ["127.0.0.1:\(serve.port)"]

            """.write(toFile: state.file("prometheus.yml"), atomically: true, encoding: .utf8)

            let prometheus = try startPrometheus(config: state.file("prometheus.yml"), state: state)
            defer { _ = prometheus.child.stop() }
            let api = PrometheusAPI(port: prometheus.port)

            // The first scrape happens up to one interval after start-up and becomes queryable
            // a few seconds later; the whole wait is bounded.
            var ingestedAfter: Double? = nil
            let ingested = waitUntil(seconds: 40) {
                guard let target = try? api.targets().first, target.health == "up", target.lastError.isEmpty,
                      (try? api.value(#"e2e_jobs_total{queue="a"}"#)) == 7 else { return false }
                ingestedAfter = Date().timeIntervalSince(prometheus.startedAt)
                return true
            }
            try #require(ingested, "Prometheus did not ingest the target in time; targets: \((try? api.raw("/api/v1/targets")) ?? "?")\nlog:\n\(prometheus.child.log().suffix(3000))")
            print("prometheus: first ingestion \(String(format: "%.1f", ingestedAfter ?? -1)) s after start")

            let targets = try api.targets()
            #expect(targets.count == 1)
            #expect(targets.first?.scrapeURL == "http://127.0.0.1:\(serve.port)/metrics")
            #expect(try api.value(#"up{job="prom-multiproc"}"#) == 1)
            #expect(try api.value(#"e2e_jobs_total{queue="b"}"#) == 1)
            // Histogram samples, by hand from the two observations and the default buckets.
            #expect(try api.value("e2e_latency_seconds_count") == 2)
            #expect(try api.value("e2e_latency_seconds_sum") == 0.75)
            #expect(try api.value(#"e2e_latency_seconds_bucket{le="0.25"}"#) == 1)
            #expect(try api.value(#"e2e_latency_seconds_bucket{le="0.5"}"#) == 2)
            #expect(try api.value(#"e2e_latency_seconds_bucket{le="+Inf"}"#) == 2)

            // Prometheus asked for OpenMetrics and got it: serve counts every scrape by format,
            // and Prometheus itself ingested that count.
            let openMetricsScrapes = try api.value(#"prom_multiproc_scrapes_total{format="openmetrics"}"#)
            #expect((openMetricsScrapes ?? 0) >= 1, "serve saw no OpenMetrics scrape")
            #expect(try api.value(#"prom_multiproc_scrapes_total{format="text"}"#) == nil, "a scrape fell back to the text format")

            // serve merges on every scrape: a new increment reaches Prometheus.
            jobs.labels("a").increment(by: 5)
            let updated = waitUntil(seconds: 20) { (try? api.value(#"e2e_jobs_total{queue="a"}"#)) == 12 }
            #expect(updated, "the increment after start-up never reached Prometheus")

            #expect(prometheus.child.stop() == 0, "prometheus did not stop cleanly:\n\(prometheus.child.log().suffix(2000))")
            #expect(stopChild(serve.process) == 0)
        }

        /// With `--enable-feature=native-histograms`, Prometheus 2.42 asks for protobuf first;
        /// serve answers it, and Prometheus ingests a counter (named with `_total`, as the
        /// protobuf family is) and a classic histogram from it.
        @Test(.timeLimit(.minutes(2)))
        func prometheusWithNativeHistogramsScrapesServeOverProtobuf() throws {
            let dir = TempDirectory("pmp-prom-proto"); defer { dir.remove() }
            let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("1"))
            defer { storage.store?.close() }
            let registry = Registry(storage: storage)
            let jobs = try Counter("e2e_jobs", help: "Jobs done.", labelNames: ["queue"], registry: registry)
            jobs.labels("a").increment(by: 7)
            let latency = try Histogram("e2e_latency_seconds", help: "Latency.", registry: registry)
            latency.observe(0.25)
            latency.observe(0.5)

            let serve = try RunningServer.start(["serve", "--dir", dir.path, "--port", "0"])
            defer { _ = stopChild(serve.process) }
            // Prometheus 2.42's header with the feature on, as it sends it.
            let accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            let direct = try serve.get(accept: accept)
            #expect(direct.status == 200 && !direct.body.isEmpty)
            #expect(direct.header("Content-Type") == "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")

            let state = TempDirectory("pmp-prom-proto-server"); defer { state.remove() }
            try writeScrapeConfig(target: serve.port, to: state.file("prometheus.yml"))
            let prometheus = try startPrometheus(config: state.file("prometheus.yml"), state: state,
                                                 extraArguments: ["--enable-feature=native-histograms"])
            defer { _ = prometheus.child.stop() }
            let api = PrometheusAPI(port: prometheus.port)

            let ingested = waitUntil(seconds: 40) {
                guard let target = try? api.targets().first, target.health == "up", target.lastError.isEmpty,
                      (try? api.value(#"e2e_jobs_total{queue="a"}"#)) == 7 else { return false }
                return true
            }
            try #require(ingested, "Prometheus did not ingest the target in time; targets: \((try? api.raw("/api/v1/targets")) ?? "?")\nlog:\n\(prometheus.child.log().suffix(3000))")
            #expect(try api.value(#"up{job="prom-multiproc"}"#) == 1)
            #expect(try api.value("e2e_latency_seconds_count") == 2)
            #expect(try api.value("e2e_latency_seconds_sum") == 0.75)
            #expect(try api.value(#"e2e_latency_seconds_bucket{le="0.1"}"#) == 0)
            #expect(try api.value(#"e2e_latency_seconds_bucket{le="0.25"}"#) == 1)
            #expect(try api.value(#"e2e_latency_seconds_bucket{le="0.5"}"#) == 2)
            #expect(try api.value(#"e2e_latency_seconds_bucket{le="+Inf"}"#) == 2)
            // The family is named with `_total`: nothing was ingested under the bare name.
            #expect(try api.value(#"e2e_jobs{queue="a"}"#) == nil)

            // Every scrape was protobuf: serve counts scrapes by format, and Prometheus
            // ingested that count over protobuf too.
            let protobufScrapes = try api.value(#"prom_multiproc_scrapes_total{format="protobuf"}"#)
            #expect((protobufScrapes ?? 0) >= 1, "serve saw no protobuf scrape")
            #expect(try api.value(#"prom_multiproc_scrapes_total{format="openmetrics"}"#) == nil)
            #expect(try api.value(#"prom_multiproc_scrapes_total{format="text"}"#) == nil)

            jobs.labels("a").increment(by: 5)
            let updated = waitUntil(seconds: 20) { (try? api.value(#"e2e_jobs_total{queue="a"}"#)) == 12 }
            #expect(updated, "the increment after start-up never reached Prometheus")

            #expect(prometheus.child.stop() == 0, "prometheus did not stop cleanly:\n\(prometheus.child.log().suffix(2000))")
            #expect(stopChild(serve.process) == 0)
        }

        /// Native histograms, hand-built (the collector does not produce them yet), served in
        /// protobuf by an in-process server: Prometheus 2.42 reads the spans, deltas, zero
        /// bucket and schema back into the buckets they stand for. At schema `s` the positive
        /// bucket `i` is `(2^((i-1)/2^s), 2^(i/2^s)]` and the negative bucket `i` its mirror.
        @Test(.timeLimit(.minutes(2)))
        func prometheusIngestsNativeHistogramsOverProtobuf() throws {
            let family = MetricFamilySnapshot(name: "e2e_native_seconds", kind: .histogram, help: "Native.", samples: [],
                                              nativeHistograms: [
                // Observations 0.0, 1.5, 3.0 and -2.5 at schema 0.
                NativeHistogramSnapshot(labels: [Label("route", "/a")], schema: 0, zeroThreshold: 0.001, zeroCount: 1,
                                        count: 4, sum: 2, positiveBuckets: [.init(index: 1, count: 1), .init(index: 2, count: 1)],
                                        negativeBuckets: [.init(index: 2, count: 1)]),
                // Two spans with a gap, negative buckets, schema 3.
                NativeHistogramSnapshot(labels: [Label("route", "/b")], schema: 3, zeroThreshold: 0.001, zeroCount: 2,
                                        count: 17, sum: 42.5,
                                        positiveBuckets: [.init(index: -2, count: 1), .init(index: -1, count: 3), .init(index: 3, count: 2),
                                                          .init(index: 4, count: 5), .init(index: 5, count: 1)],
                                        negativeBuckets: [.init(index: 0, count: 2), .init(index: 1, count: 1)]),
            ])
            let server = try MetricsHTTPServer(configuration: HTTPServerConfiguration(), handler: { request in
                let choice = NegotiatedExposition(acceptHeader: request.header("Accept"))
                return HTTPResponse(status: 200, headers: [HTTPHeader(name: "Content-Type", value: choice.contentType)],
                                    body: Exposition.render([family], format: choice.format, escaping: choice.escaping))
            })
            try server.start()
            defer { server.shutdown(); server.waitUntilStopped() }

            let state = TempDirectory("pmp-prom-native"); defer { state.remove() }
            try """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: native
                static_configs:
                  - targets: ["127.0.0.1:\(server.port)"]

            """.write(toFile: state.file("prometheus.yml"), atomically: true, encoding: .utf8)
            let prometheus = try startPrometheus(config: state.file("prometheus.yml"), state: state,
                                                 extraArguments: ["--enable-feature=native-histograms"])
            defer { _ = prometheus.child.stop() }
            let api = PrometheusAPI(port: prometheus.port)

            let ingested = waitUntil(seconds: 40) {
                (try? api.value(#"histogram_count(e2e_native_seconds{route="/b"})"#)) == 17
            }
            try #require(ingested, "Prometheus did not ingest the native histogram; targets: \((try? api.raw("/api/v1/targets")) ?? "?")\nlog:\n\(prometheus.child.log().suffix(3000))")
            #expect(try api.value(#"histogram_count(e2e_native_seconds{route="/a"})"#) == 4)
            #expect(try api.value(#"histogram_sum(e2e_native_seconds{route="/a"})"#) == 2)
            #expect(try api.value(#"histogram_sum(e2e_native_seconds{route="/b"})"#) == 42.5)

            func upper(_ index: Int, _ schema: Int) -> Double { pow(2, Double(index) / Double(1 << schema)) }
            func positive(_ index: Int, _ schema: Int, _ count: Double) -> [Double] {
                [upper(index - 1, schema), upper(index, schema), count]
            }
            func negative(_ index: Int, _ schema: Int, _ count: Double) -> [Double] {
                [-upper(index, schema), -upper(index - 1, schema), count]
            }
            let expectedA = [negative(2, 0, 1), [-0.001, 0.001, 1], positive(1, 0, 1), positive(2, 0, 1)]
            let expectedB = [negative(1, 3, 1), negative(0, 3, 2), [-0.001, 0.001, 2],
                             positive(-2, 3, 1), positive(-1, 3, 3), positive(3, 3, 2), positive(4, 3, 5), positive(5, 3, 1)]
            for (route, expected) in [("/a", expectedA), ("/b", expectedB)] {
                let buckets = try api.histogramBuckets(#"e2e_native_seconds{route="\#(route)"}"#)
                let sorted = buckets.sorted { $0[0] < $1[0] }
                #expect(sorted.count == expected.count, "\(route): \(sorted)")
                for (got, want) in zip(sorted, expected) {
                    #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) }, "\(route): \(got) != \(want)")
                }
            }
            #expect(prometheus.child.stop() == 0, "prometheus did not stop cleanly:\n\(prometheus.child.log().suffix(2000))")
        }
    }
}

// MARK: - Prometheus

/// A Prometheus server started for one test, and when it started.
struct StartedPrometheus {
    let child: LoggedChild
    let port: Int
    let startedAt: Date
}

/// Starts Prometheus on a free 127.0.0.1 port with its data in `state` and any
/// `extraArguments` (such as `--enable-feature=native-histograms`), and waits until
/// `/-/ready` answers 200. A port taken between choosing it and Prometheus binding it is tried
/// again with another port.
/// A Prometheus configuration scraping `127.0.0.1:port` every second (job `prom-multiproc`).
func writeScrapeConfig(target port: Int, to path: String) throws {
    try """
    global:
      scrape_interval: 1s
      scrape_timeout: 1s
      evaluation_interval: 1s
    scrape_configs:
      - job_name: prom-multiproc
        static_configs:
          - targets: ["127.0.0.1:\(port)"]

    """.write(toFile: path, atomically: true, encoding: .utf8)
}

func startPrometheus(config: String, state: TempDirectory, extraArguments: [String] = []) throws -> StartedPrometheus {
    let binary = try ExternalTool.prometheus.path()
    var lastLog = ""
    for attempt in 1...3 {
        let port = try freePort()
        let startedAt = Date()
        let child = try LoggedChild.start(binary, [
            "--config.file=\(config)",
            "--storage.tsdb.path=\(state.path)/data-\(attempt)",
            "--web.listen-address=127.0.0.1:\(port)",
            "--log.level=info",
        ] + extraArguments, log: state.file("prometheus-\(attempt).log"))
        let ready = waitUntil(seconds: 30) {
            !child.process.isRunning || (try? httpGet(port: port, "/-/ready", timeout: 2).status) == 200
        }
        if ready && child.process.isRunning { return StartedPrometheus(child: child, port: port, startedAt: startedAt) }
        lastLog = child.log()
        _ = child.stop()
        if !lastLog.contains("address already in use") { break }
    }
    throw ClientError(description: "prometheus did not become ready:\n\(lastLog.suffix(3000))")
}

/// The few calls of Prometheus's HTTP API the test needs.
struct PrometheusAPI {
    let port: Int

    struct Target {
        var health: String
        var lastError: String
        var scrapeURL: String
    }

    func raw(_ path: String) throws -> String { try httpGet(port: port, path, timeout: 5).text }

    private func json(_ path: String) throws -> [String: Any] {
        let response = try httpGet(port: port, path, timeout: 5)
        guard response.status == 200,
              let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
              object["status"] as? String == "success" else {
            throw ClientError(description: "\(path): \(response.status) \(response.text)")
        }
        return object
    }

    /// The active targets.
    func targets() throws -> [Target] {
        let data = try json("/api/v1/targets?state=active")["data"] as? [String: Any]
        let active = data?["activeTargets"] as? [[String: Any]] ?? []
        return active.map {
            Target(health: $0["health"] as? String ?? "", lastError: $0["lastError"] as? String ?? "",
                   scrapeURL: $0["scrapeUrl"] as? String ?? "")
        }
    }

    /// The buckets of the native histogram an instant query selects (exactly one series), as
    /// (lower bound, upper bound, count) triples, each in Prometheus's order.
    func histogramBuckets(_ query: String) throws -> [[Double]] {
        let data = try json("/api/v1/query?query=" + percentEncoded(query))["data"] as? [String: Any]
        let result = data?["result"] as? [[String: Any]] ?? []
        guard result.count == 1, let pair = result[0]["histogram"] as? [Any], pair.count == 2,
              let histogram = pair[1] as? [String: Any], let buckets = histogram["buckets"] as? [[Any]] else {
            throw ClientError(description: "no native histogram for \(query): \(result)")
        }
        return try buckets.map { bucket in
            // [boundary rule, "lower", "upper", "count"]
            let numbers = bucket.dropFirst().compactMap { ($0 as? String).flatMap(Double.init) }
            guard numbers.count == 3 else { throw ClientError(description: "unexpected bucket \(bucket) for \(query)") }
            return numbers
        }
    }

    /// The value of an instant query that selects at most one series; nil when it selects none.
    func value(_ query: String) throws -> Double? {
        let data = try json("/api/v1/query?query=" + percentEncoded(query))["data"] as? [String: Any]
        let result = data?["result"] as? [[String: Any]] ?? []
        guard let first = result.first else { return nil }
        guard result.count == 1, let pair = first["value"] as? [Any], pair.count == 2, let text = pair[1] as? String else {
            throw ClientError(description: "unexpected result for \(query): \(result)")
        }
        return Double(text)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
func percentEncoded(_ text: String) -> String {
    let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
    return text.utf8.map { unreserved.contains($0) ? String(UnicodeScalar($0)) : String(format: "%%%02X", $0) }.joined()
}

// MARK: - Helpers shared by the deployment suites

/// A child process whose standard output and error go to a log file (a pipe nobody reads
/// could fill and block it).
struct LoggedChild {
    let process: Process
    let logPath: String

    /// Starts `path` with `arguments`, its output appended to `log`.
    static func start(_ path: String, _ arguments: [String], environment: [String: String] = [:],
                      log: String) throws -> LoggedChild {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: log) else {
            throw ClientError(description: "cannot open \(log)")
        }
        defer { try? handle.close() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        p.environment = childEnvironment(environment)
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return LoggedChild(process: p, logPath: log)
    }

    /// Everything the child wrote so far.
    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGTERM, then SIGKILL after `grace` seconds; the exit status.
    @discardableResult
    func stop(grace: Double = 10) -> Int32 { stopChild(process, grace: grace) }
}

/// Stops a child: SIGTERM, then SIGKILL if it is still running after `grace` seconds. Safe to
/// call again on a stopped child. Returns the exit status (128 + signal when killed).
@discardableResult
func stopChild(_ process: Process, grace: Double = 10) -> Int32 {
    if process.isRunning {
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
    process.waitUntilExit()
    return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound with port 0, then closed).
func freePort() throws -> Int {
    let (fd, port) = try Sys.listenTCP(host: "127.0.0.1", port: 0)
    Sys.close(fd)
    return port
}

/// Polls `condition` every `interval` seconds until it holds or `seconds` pass.
func waitUntil(seconds: Double, interval: Double = 0.2, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        if condition() { return true }
        if Date() >= deadline { return false }
        usleep(UInt32(interval * 1_000_000))
    }
}

/// One `GET` with `Connection: close`, read to the end of the stream: works with any
/// HTTP/1.x server (chunked bodies included), not only with ours.
func httpGet(port: Int, _ path: String, timeout: Double = 5) throws -> ClientResponse {
    let client = try TestClient(port: port, timeoutSeconds: timeout)
    defer { client.close() }
    try client.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    var bytes: [UInt8] = []
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        guard let chunk = try Sys.receive(client.fd, maximum: 64 * 1024) else {
            throw ClientError(description: "GET \(path) on port \(port): timed out after \(bytes.count) bytes: \(String(decoding: bytes.prefix(300), as: UTF8.self))")
        }
        if chunk.isEmpty { break }
        bytes += chunk
        if Date() > deadline { throw ClientError(description: "GET \(path) on port \(port): timed out") }
    }
    return try parseResponse(bytes, context: "GET \(path) on port \(port)")
}

/// Parses a complete HTTP/1.x response (head and body up to the end of the stream).
func parseResponse(_ bytes: [UInt8], context: String) throws -> ClientResponse {
    let separator: [UInt8] = [13, 10, 13, 10]
    guard bytes.count >= 4, let headEnd = (0...(bytes.count - 4)).first(where: { bytes[$0..<($0 + 4)].elementsEqual(separator) }) else {
        throw ClientError(description: "\(context): no response head in \(bytes.count) bytes")
    }
    var lines = String(decoding: bytes[..<headEnd], as: UTF8.self).components(separatedBy: "\r\n")
    let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
    guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
        throw ClientError(description: "\(context): bad status line")
    }
    let headers = lines.compactMap { line -> (String, String)? in
        guard let colon = line.firstIndex(of: ":") else { return nil }
        return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }
    var response = ClientResponse(status: status, headers: headers, body: Array(bytes[(headEnd + 4)...]))
    if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
        response.body = try dechunked(response.body, context: context)
    } else if let length = response.header("Content-Length").flatMap({ Int($0) }) {
        guard response.body.count >= length else { throw ClientError(description: "\(context): body cut short") }
        response.body = Array(response.body[..<length])
    }
    return response
}

/// Decodes a chunked body.
private func dechunked(_ body: [UInt8], context: String) throws -> [UInt8] {
    var out: [UInt8] = [], i = 0
    while true {
        guard let lineEnd = (i..<max(i, body.count - 1)).first(where: { body[$0] == 13 && body[$0 + 1] == 10 }) else {
            throw ClientError(description: "\(context): bad chunked body")
        }
        let sizeText = String(decoding: body[i..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
        guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
            throw ClientError(description: "\(context): bad chunk size")
        }
        if size == 0 { return out }
        let start = lineEnd + 2
        guard start + size <= body.count else { throw ClientError(description: "\(context): chunk cut short") }
        out += body[start..<(start + size)]
        i = start + size + 2
    }
}

/// The value of the sample line `sample` (name and labels exactly as printed) in a text
/// exposition, or nil when there is no such line.
func sampleValue(_ exposition: String, _ sample: String) -> Double? {
    for line in exposition.split(separator: "\n") where line.hasPrefix(sample + " ") {
        let fields = line.dropFirst(sample.count + 1).split(separator: " ")
        return fields.first.flatMap { Double($0) }
    }
    return nil
}
