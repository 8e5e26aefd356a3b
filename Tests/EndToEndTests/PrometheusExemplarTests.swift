// Deployment tests, part 1c: a real Prometheus 2.42 with exemplar storage on scrapes `serve`
// over OpenMetrics, while several worker processes write exemplars.
import Foundation
import PromMetrics
import Testing
import TestSupport

extension DeploymentTests {
    @Suite struct PrometheusExemplarTests {
        /// The exemplars Prometheus stored for the series `query` selects: per series (its
        /// `le`, or "" for none), the trace ids, values and timestamps in Prometheus's order.
        func exemplars(_ port: Int, _ query: String, since start: Double) throws -> [String: [(trace: String, value: Double, time: Double)]] {
            let path = "/api/v1/query_exemplars?query=" + percentEncoded(query) + "&start=\(Int(start) - 60)&end=\(Int(Date().timeIntervalSince1970) + 60)"
            let response = try httpGet(port: port, path, timeout: 5)
            guard response.status == 200, let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
                  let data = object["data"] as? [[String: Any]] else {
                throw ClientError(description: "\(path): \(response.status) \(response.text)")
            }
            var out: [String: [(trace: String, value: Double, time: Double)]] = [:]
            for series in data {
                let labels = series["seriesLabels"] as? [String: String] ?? [:]
                for e in series["exemplars"] as? [[String: Any]] ?? [] {
                    out[labels["le"] ?? "", default: []].append((
                        (e["labels"] as? [String: String])?["trace_id"] ?? "?", Double(e["value"] as? String ?? "") ?? .nan,
                        (e["timestamp"] as? NSNumber)?.doubleValue ?? .nan))
                }
            }
            return out
        }

        /// Three worker processes (one after the other) increment `exemplar_requests_total` and
        /// observe into `exemplar_latency_seconds` with exemplars `w1` (0.05), `w2` (0.5), `w3`
        /// (5) at the time of the update; Prometheus, started with
        /// `--enable-feature=exemplar-storage`, scrapes `serve` and returns through
        /// `/api/v1/query_exemplars` the latest exemplar of the counter (`w3`) and the one of each
        /// bucket. A fourth worker's exemplar then reaches Prometheus on the next scrapes.
        @Test(.timeLimit(.minutes(2)))
        func prometheusStoresTheMergedExemplars() throws {
            let dir = TempDirectory("pmp-prom-exemplars"); defer { dir.remove() }
            let start = Date().timeIntervalSince1970
            func write(_ trace: String, _ value: String) throws {
                let r = try run(executable("prom-multiproc-testworker"), ["exemplar-write", dir.path, "/a", trace, value, "now"])
                try #require(r.status == 0, "exemplar-write failed: \(r.stderr)")
            }
            try write("w1", "0.05")
            try write("w2", "0.5")
            try write("w3", "5")

            let serve = try RunningServer.start(["serve", "--dir", dir.path, "--port", "0"])
            defer { _ = stopChild(serve.process) }
            let state = TempDirectory("pmp-prom-exemplars-server"); defer { state.remove() }
            try writeScrapeConfig(target: serve.port, to: state.file("prometheus.yml"))
            let prometheus = try startPrometheus(config: state.file("prometheus.yml"), state: state,
                                                 extraArguments: ["--enable-feature=exemplar-storage"])
            defer { _ = prometheus.child.stop() }
            let api = PrometheusAPI(port: prometheus.port)

            var counter: [String: [(trace: String, value: Double, time: Double)]] = [:]
            let ingested = waitUntil(seconds: 40) {
                guard let target = try? api.targets().first, target.health == "up", target.lastError.isEmpty,
                      let found = try? exemplars(prometheus.port, "exemplar_requests_total", since: start), !found.isEmpty else { return false }
                counter = found
                return true
            }
            try #require(ingested, "no exemplar reached Prometheus; targets: \((try? api.raw("/api/v1/targets")) ?? "?")\nlog:\n\(prometheus.child.log().suffix(3000))")
            let now = Date().timeIntervalSince1970
            let latest = try #require(counter[""]?.last)
            #expect(latest.trace == "w3" && latest.value == 5)
            #expect(latest.time >= start - 1 && latest.time <= now + 1)
            #expect(counter[""]?.map(\.trace) == ["w3"], "only the latest exemplar is exposed")
            let buckets = try exemplars(prometheus.port, "exemplar_latency_seconds_bucket", since: start)
            #expect(buckets.mapValues { $0.map(\.trace) } == ["0.1": ["w1"], "1.0": ["w2"], "10.0": ["w3"]])
            #expect(buckets.mapValues { $0.map(\.value) } == ["0.1": [0.05], "1.0": [0.5], "10.0": [5]])
            #expect(try api.value(#"exemplar_requests_total{route="/a"}"#) == 5.55)

            try write("w4", "0.07")
            let updated = waitUntil(seconds: 20) {
                (try? exemplars(prometheus.port, "exemplar_requests_total", since: start))?[""]?.last?.trace == "w4"
            }
            #expect(updated, "the fourth worker's exemplar never reached Prometheus")
            let after = try exemplars(prometheus.port, "exemplar_latency_seconds_bucket", since: start)
            #expect(after["0.1"]?.map(\.trace) == ["w1", "w4"])

            #expect(prometheus.child.stop() == 0, "prometheus did not stop cleanly:\n\(prometheus.child.log().suffix(2000))")
            #expect(stopChild(serve.process) == 0)
        }
    }
}
