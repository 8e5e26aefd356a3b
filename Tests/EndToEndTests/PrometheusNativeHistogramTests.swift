// Deployment tests, part 1b: a real Prometheus 2.42 with native histograms on scrapes `serve`
// over protobuf, while the native buckets of several worker processes are merged.
import Foundation
import PromMetrics
import Testing
import TestSupport

extension DeploymentTests {
    @Suite struct PrometheusNativeHistogramTests {
        /// Three worker processes observe known values in `native_e2e_seconds{route="/a"}` at
        /// schemas 3, 4 and 5 (bucket factors 1.1, 1.05 and 1.02); `serve` merges them at schema 3
        /// and Prometheus 2.42 scrapes it over protobuf. PromQL's `histogram_count` and
        /// `histogram_sum` of the ingested native histogram are the count and the (exact) sum of
        /// the values, and `histogram_quantile` is within the schema's relative error
        /// (`2^(2^-3) - 1`, about 9%) of the true quantile: both lie in the same bucket.
        @Test(.timeLimit(.minutes(3)))
        func prometheusQueriesTheMergedNativeHistogram() throws {
            let dir = TempDirectory("pmp-prom-native-merge"); defer { dir.remove() }
            var values: [Double] = []
            for (seed, factor) in [(11, "1.1"), (12, "1.05"), (13, "1.02")] {
                let r = try run(executable("prom-multiproc-testworker"),
                                ["native-observe", dir.path, factor, "0x1p-128", "0", "2000", String(seed), "positive"])
                values += try r.observedValues(mode: "native-observe")
            }
            #expect(values.count == 6000)
            let sorted = values.sorted()

            let serve = try RunningServer.start(["serve", "--dir", dir.path, "--port", "0"])
            defer { _ = stopChild(serve.process) }
            let state = TempDirectory("pmp-prom-native-merge-server"); defer { state.remove() }
            try writeScrapeConfig(target: serve.port, to: state.file("prometheus.yml"))
            let prometheus = try startPrometheus(config: state.file("prometheus.yml"), state: state,
                                                 extraArguments: ["--enable-feature=native-histograms"])
            defer { _ = prometheus.child.stop() }
            let api = PrometheusAPI(port: prometheus.port)
            let series = #"native_e2e_seconds{route="/a"}"#

            let ingested = waitUntil(seconds: 40) { (try? api.value("histogram_count(\(series))")) == 6000 }
            try #require(ingested, "Prometheus did not ingest the native histogram; targets: \((try? api.raw("/api/v1/targets")) ?? "?")\nlog:\n\(prometheus.child.log().suffix(3000))")
            let sum = try #require(try api.value("histogram_sum(\(series))"))
            #expect(sum == values.reduce(0, +))
            print("prometheus native: histogram_count = 6000, histogram_sum = \(sum)")

            // Merged at schema 3: every bucket Prometheus reports spans a factor 2^(1/8).
            let buckets = try api.histogramBuckets(series)
            #expect(!buckets.isEmpty)
            for b in buckets where b[0] > 0 {
                #expect(abs(b[1] / b[0] - pow(2, 1.0 / 8)) < 1e-9, "bucket \(b) is not a schema 3 bucket")
            }
            #expect(buckets.map { $0[2] }.reduce(0, +) == 6000)

            let bound = pow(2, 1.0 / 8) - 1
            for q in [0.5, 0.9, 0.99] {
                let estimate = try #require(try api.value("histogram_quantile(\(q), \(series))"))
                // Prometheus's rank is q * count; the observation of that rank, counted from 1.
                let truth = sorted[Int((q * Double(values.count)).rounded(.up)) - 1]
                let error = abs(estimate - truth) / truth
                print("prometheus native: histogram_quantile(\(q)) = \(estimate), true \(truth), relative error \(error) (bound \(bound))")
                #expect(error <= bound * (1 + 1e-12), "q=\(q): \(estimate) vs \(truth)")
            }
            #expect(try api.value(#"prom_multiproc_scrapes_total{format="protobuf"}"#).map { $0 >= 1 } == true)
            #expect(prometheus.child.stop() == 0, "prometheus did not stop cleanly:\n\(prometheus.child.log().suffix(2000))")
            #expect(stopChild(serve.process) == 0)
        }
    }
}
