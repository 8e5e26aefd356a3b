// Deployment tests, part 1d: a real Prometheus 2.42 ingests the summary quantiles `serve`
// merges from several worker processes, over OpenMetrics and over protobuf.
import Foundation
import SystemCalls
import Testing
import TestSupport

extension DeploymentTests {
    @Suite struct PrometheusSummaryQuantileTests {
        static let family = "quantile_e2e_seconds"
        static let relativeError = 0.01

        /// The objectives `summary-observe` asks for (Sources/prom-multiproc-testworker/
        /// QuantileModes.swift), each with the `quantile` label Prometheus 2.42 stores: Go's
        /// shortest float with `.0` added to integers, both as OpenMetrics writes it and as
        /// 2.42's protobuf parser (`formatOpenMetricsFloat`) turns the double into a label.
        static let objectives: [(q: Double, label: String)] = [
            (0, "0.0"), (0.01, "0.01"), (0.25, "0.25"), (0.5, "0.5"), (0.75, "0.75"),
            (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999"), (1, "1.0"),
        ]

        /// The `Accept` header of Prometheus 2.42 without features, and with native histograms.
        static let openMetricsAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        static let protobufAccept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

        /// Four worker processes at once observe 2,500 values each of `grid-lognormal` (seeded;
        /// every partial sum exact, so any summation order gives the exact sum) into
        /// `quantile_e2e_seconds{route="/a"}`, quantiles within 1% over 10 minutes in 5 age
        /// buckets. Returns every value observed.
        static func observe(_ dir: TempDirectory) throws -> [Double] {
            let results = Locked<[Int: ProcessResult]>([:])
            let errors = Locked<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 4) { i in
                do {
                    let r = try run(executable("prom-multiproc-testworker"),
                                    ["summary-observe", dir.path, "grid-lognormal", "2500", String((i + 1) * 104_729),
                                     String(relativeError), "600", "5"], timeout: 60)
                    results.withLock { $0[i] = r }
                } catch {
                    errors.withLock { $0.append("\(error)") }
                }
            }
            try #require(errors.withLock { $0 }.isEmpty, "\(errors.withLock { $0 })")
            return try results.withLock({ $0 }).sorted(by: { $0.key < $1.key }).flatMap { try $0.value.observedValues(mode: "summary-observe") }
        }

        /// The observation of nearest rank `max(1, ceil(q n))` in ascending order.
        static func exact(_ sorted: [Double], _ q: Double) -> Double {
            sorted[max(1, Int((q * Double(sorted.count)).rounded(.up))) - 1]
        }

        /// The DDSketch bound of the coarsest schema n whose buckets meet `relativeError`:
        /// g = 2^(2^-n), alpha = (g - 1) / (g + 1).
        static func bound(_ relativeError: Double) -> Double {
            for n in -4...8 {
                let g = pow(2, pow(2, -Double(n)))
                if (g - 1) / (g + 1) <= relativeError { return (g - 1) / (g + 1) }
            }
            return 0
        }

        /// Prometheus 2.42 scrapes `serve` over OpenMetrics (its default negotiation) and, with
        /// `--enable-feature=native-histograms`, over protobuf. Every merged quantile it ingests,
        /// queried by its `quantile` label, is within the DDSketch bound of 1% (about 0.54%) of
        /// the exact nearest-rank quantile of the 10,000 observations of four workers; `_count`
        /// and `_sum` are the exact count and sum; `_created` is stored from OpenMetrics only;
        /// an empty window's quantiles are stored as NaN; serve counted only scrapes of that
        /// format, and Prometheus dropped nothing.
        @Test(.timeLimit(.minutes(2)), arguments: ["openmetrics", "protobuf"])
        func prometheusIngestsTheMergedQuantiles(format: String) throws {
            let dir = TempDirectory("pmp-prom-quantiles"); defer { dir.remove() }
            let start = Date().timeIntervalSince1970
            let values = try Self.observe(dir)
            #expect(values.count == 10_000)
            let sorted = values.sorted()
            let sum = values.reduce(0, +)
            // The grid makes the sum exact: another order gives the same double.
            #expect(sorted.reduce(0, +) == sum && sorted.reversed().reduce(0, +) == sum)
            // Route /idle: ten observations in a 1 s window, over before Prometheus's first
            // scrape (5 s after its start at the earliest): its quantiles are NaN.
            let idle = try run(executable("prom-multiproc-testworker"),
                               ["summary-observe", dir.path, "constant:1", "10", "1", String(Self.relativeError), "1", "1", "/idle"])
            try #require(idle.status == 0, "summary-observe failed: \(idle.stderr)")

            let serve = try RunningServer.start(["serve", "--dir", dir.path, "--port", "0"])
            defer { _ = stopChild(serve.process) }
            let state = TempDirectory("pmp-prom-quantiles-server"); defer { state.remove() }
            try writeScrapeConfig(target: serve.port, to: state.file("prometheus.yml"))
            let prometheus = try startPrometheus(config: state.file("prometheus.yml"), state: state,
                                                 extraArguments: format == "protobuf" ? ["--enable-feature=native-histograms"] : [])
            defer { _ = prometheus.child.stop() }
            let api = PrometheusAPI(port: prometheus.port)
            let series = #"\#(Self.family){route="/a""#

            let ingested = waitUntil(seconds: 40) {
                guard let target = try? api.targets().first, target.health == "up", target.lastError.isEmpty,
                      (try? api.value("count(\(series)})")) == Double(Self.objectives.count),
                      (try? api.value(Self.family + "_count" + #"{route="/a"}"#)) == 10_000 else { return false }
                // The idle window's quantiles, once a scrape after its end reached Prometheus.
                return Self.objectives.allSatisfy {
                    (try? api.value(#"\#(Self.family){route="/idle",quantile="\#($0.label)"}"#))??.isNaN == true
                }
            }
            try #require(ingested, "Prometheus did not ingest the quantiles; targets: \((try? api.raw("/api/v1/targets")) ?? "?")\nseries: \((try? api.raw("/api/v1/series?match[]=" + percentEncoded(Self.family))) ?? "?")\nlog:\n\(prometheus.child.log().suffix(3000))")

            let alpha = Self.bound(Self.relativeError)
            #expect(alpha > 0 && alpha <= Self.relativeError)
            for (q, label) in Self.objectives {
                let estimate = try #require(try api.value(series + #",quantile="\#(label)"}"#), "no quantile=\"\(label)\" series")
                let truth = Self.exact(sorted, q)
                let error = abs(estimate - truth) / truth
                print("prometheus \(format): \(Self.family){quantile=\"\(label)\"} = \(estimate), exact \(truth), relative error \(error) (bound \(alpha))")
                #expect(error <= alpha * (1 + 1e-12), "q=\(q): \(estimate) vs exact \(truth)")
            }
            #expect(try api.value(Self.family + "_sum" + #"{route="/a"}"#) == sum)
            // `_created`: Prometheus 2.42 stores OpenMetrics' `_created` line as a series, and
            // skips protobuf's `created_timestamp` (field 4 of `Summary`, which its copy of
            // client_model does not have), as README.md says.
            let created = try api.value(Self.family + "_created" + #"{route="/a"}"#)
            if format == "openmetrics" {
                let time = try #require(created, "no _created series")
                #expect(time >= start - 1 && time <= Date().timeIntervalSince1970, "_created = \(time)")
            } else {
                #expect(created == nil)
            }

            let formats = ["openmetrics", "protobuf", "text"]
            #expect(try api.value(#"prom_multiproc_scrapes_total{format="\#(format)"}"#).map { $0 >= 1 } == true)
            for other in formats where other != format {
                #expect(try api.value(#"prom_multiproc_scrapes_total{format="\#(other)"}"#) == nil, "a scrape was \(other)")
            }
            // Samples Prometheus drops on append (out of order, duplicates) it logs at warn.
            let warnings = prometheus.child.log().split(separator: "\n").filter { $0.contains("level=warn") || $0.contains("level=error") }
            #expect(warnings.isEmpty, "Prometheus warned:\n\(warnings.joined(separator: "\n"))")
            #expect(prometheus.child.stop() == 0, "prometheus did not stop cleanly:\n\(prometheus.child.log().suffix(2000))")
            #expect(stopChild(serve.process) == 0)
        }

        /// What `serve` answers Prometheus 2.42 with, for the same four workers: the protobuf
        /// and OpenMetrics negotiations get their Content-Types; the text 0.0.4 body with the
        /// quantiles passes `promtool check metrics`, the OpenMetrics body prometheus_client's
        /// strict parser, and both carry every objective's `quantile` label.
        @Test(.timeLimit(.minutes(2)))
        func serveExposesQuantilesThatPromtoolAndTheOpenMetricsParserAccept() throws {
            let dir = TempDirectory("pmp-serve-quantiles"); defer { dir.remove() }
            _ = try Self.observe(dir)
            let serve = try RunningServer.start(["serve", "--dir", dir.path, "--port", "0"])
            defer { _ = stopChild(serve.process) }

            let proto = try serve.get(accept: Self.protobufAccept)
            #expect(proto.status == 200 && !proto.body.isEmpty)
            #expect(proto.header("Content-Type") == "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")

            let om = try serve.get(accept: Self.openMetricsAccept)
            #expect(om.status == 200)
            #expect(om.header("Content-Type")?.hasPrefix("application/openmetrics-text; version=1.0.0") == true)
            let strict = try runPython("om_check.py", [], input: om.text)
            #expect(strict.status == 0, "\(strict.stderr)")

            let text = try serve.get(accept: "text/plain;version=0.0.4")
            #expect(text.status == 200)
            #expect(text.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
            let promtool = try run(try ExternalTool.promtool.path(), ["check", "metrics"], input: text.text)
            #expect(promtool.status == 0, "promtool: \(promtool.stdout)\(promtool.stderr)")

            for body in [om.text, text.text] {
                for (_, label) in Self.objectives {
                    #expect(body.contains(#"\#(Self.family){quantile="\#(label)",route="/a"} "#), "no quantile \(label) in:\n\(body)")
                }
                #expect(sampleValue(body, Self.family + "_count" + #"{route="/a"}"#) == 10_000)
            }
            #expect(stopChild(serve.process) == 0)
        }
    }
}
