import PromMetrics

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension PrometheusMultiprocessMetricsFactory {
    /// How swift-metrics types become Prometheus metrics: histogram buckets, gauge modes, and
    /// where problems are reported.
    ///
    /// Per-metric settings are keyed by the swift-metrics label, either as the application or
    /// library wrote it (`"http.server.request.duration"`) or as it is exported
    /// (`"http_server_request_duration"`); the label as written is looked up first. A setting
    /// is read once, when the first handler of a metric name is made: every later handler of
    /// that name, whatever its dimensions, shares the same buckets or mode.
    ///
    /// ```swift
    /// var configuration = PrometheusMultiprocessMetricsFactory.Configuration()
    /// configuration.timerBuckets["http.server.request.duration"] = [0.001, 0.01, 0.1, 1]
    /// configuration.gaugeModes["worker.memory.bytes"] = .liveall
    /// MetricsSystem.bootstrap(PrometheusMultiprocessMetricsFactory(configuration: configuration))
    /// ```
    public struct Configuration: Sendable {
        /// The bucket upper bounds, in seconds, of `Timer` histograms without an entry in
        /// ``timerBuckets``: prometheus_client's defaults (5 ms to 10 s), so that Swift and
        /// Python workers of one deployment export the same buckets.
        public var defaultTimerBuckets: [Double]

        /// Bucket upper bounds, in seconds, for the `Timer`s of one label.
        public var timerBuckets: [String: [Double]]

        /// The bucket upper bounds of aggregating `Recorder` histograms without an entry in
        /// ``recorderBuckets``: swift-prometheus' defaults for value histograms, 5 to 10,000.
        public var defaultRecorderBuckets: [Double]

        /// Bucket upper bounds for the aggregating `Recorder`s of one label.
        public var recorderBuckets: [String: [Double]]

        /// How the values of `Meter`s and non-aggregating `Recorder`s (swift-metrics'
        /// `Gauge`) without an entry in ``gaugeModes`` are merged across processes: `livesum`
        /// by default, the sum over live processes, which suits the usual meter (requests in
        /// progress, open connections) and forgets a dead worker's value.
        public var defaultGaugeMode: GaugeMode

        /// The multiprocess gauge mode of the `Meter`s and non-aggregating `Recorder`s of one
        /// label.
        public var gaugeModes: [String: GaugeMode]

        /// Called with a one-line message, once per distinct message, when the backend meets
        /// something it cannot do (for example `Counter.reset()`, which a Prometheus counter
        /// in a shared file cannot honour). Standard error by default.
        public var reporter: @Sendable (String) -> Void

        /// swift-prometheus' default buckets for value histograms.
        public static let swiftPrometheusValueBuckets: [Double] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]

        /// A configuration with the defaults described on each property.
        public init() {
            defaultTimerBuckets = Histogram.defaultBuckets
            timerBuckets = [:]
            defaultRecorderBuckets = Self.swiftPrometheusValueBuckets
            recorderBuckets = [:]
            defaultGaugeMode = .livesum
            gaugeModes = [:]
            reporter = Self.standardErrorReporter
        }

        /// Writes `prom-multiproc (swift-metrics): <message>` and a line feed to standard error.
        public static let standardErrorReporter: @Sendable (String) -> Void = { message in
            var line = "prom-multiproc (swift-metrics): \(message)\n"
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        return
                    }
                }
            }
        }

        /// The setting of `table` for `label`, or for its exported name `sanitized`.
        func value<Value>(_ table: [String: Value], label: String, sanitized: String) -> Value? {
            table[label] ?? (sanitized == label ? nil : table[sanitized])
        }
    }
}
