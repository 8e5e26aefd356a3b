import CoreMetrics
import PromMetrics

/// A swift-metrics backend that writes every metric into the Prometheus multiprocess directory,
/// through this package's `Counter`, `Gauge` and `Histogram`.
///
/// Bootstrap it once, early in each worker process; every swift-metrics metric of the
/// application and its libraries (Hummingbird's `MetricsMiddleware`, for example) then lands
/// in the worker's files under `PROMETHEUS_MULTIPROC_DIR`, where a `MultiProcessCollector` (or
/// `prom-multiproc-cli serve`, or prometheus_client) merges all workers on each scrape:
///
/// ```swift
/// import Metrics
/// import PromMultiprocMetrics
///
/// // Multiprocess mode follows PROMETHEUS_MULTIPROC_DIR, through Registry.default.
/// MetricsSystem.bootstrap(PrometheusMultiprocessMetricsFactory())
///
/// Counter(label: "jobs.done", dimensions: [("queue", "mail")]).increment()
/// ```
///
/// How each swift-metrics type is exported:
///
/// | swift-metrics | Prometheus | file |
/// | --- | --- | --- |
/// | `Counter`, `FloatingPointCounter` | counter `<name>_total` | `counter_<pid>.db` |
/// | `Meter`, `Recorder(aggregate: false)` (`Gauge`) | gauge, mode ``Configuration/defaultGaugeMode`` (`livesum`) | `gauge_<mode>_<pid>.db` |
/// | `Recorder` (aggregating) | histogram, ``Configuration/defaultRecorderBuckets`` | `histogram_<pid>.db` |
/// | `Timer` | histogram in seconds, ``Configuration/defaultTimerBuckets`` | `histogram_<pid>.db` |
///
/// Names: the label becomes the metric name and each dimension a label, sanitized as
/// swift-prometheus 2.4.1 does (each character outside `[a-zA-Z0-9_:]` becomes `_`, a leading
/// digit becomes `_`, and `:` is not allowed in label names): `http.server.request.duration`
/// becomes `http_server_request_duration`. A counter's name gets the `_total` suffix unless it
/// has it, as in prometheus_client. Labels are sorted by name, so the order of dimensions does
/// not matter. A dimension named `le` on a histogram or `pid` on a gauge is exported as `_le`
/// or `_pid` (the collector owns those labels), and a name given twice gets `_2`, `_3`, ….
///
/// Handlers are cached by label and dimensions: making a metric that exists already returns the
/// same handler, and an update is one atomic operation on a memory-mapped slot, without a lock
/// or an allocation.
///
/// Values that a Prometheus type cannot take are dropped without a word, as swift-metrics' own
/// wrappers drop them: a negative, NaN or infinite counter increment. `Counter.reset()` is not
/// supported (the counter keeps its value) and is reported once through
/// ``Configuration/reporter``. One name used by two kinds of metric (a `Counter` and a `Meter`
/// both labelled `"jobs"`), or by a metric already in the registry, stops the process with a
/// message naming both, as swift-prometheus does: the files would otherwise mix two metrics.
///
/// `destroy()` of any metric forgets the handler; the series stays in the files (an entry cannot
/// leave a multiprocess file, as in prometheus_client) and in the registry's collection, and a
/// metric made again with the same label and dimensions continues it.
public struct PrometheusMultiprocessMetricsFactory: Sendable {
    /// The registry the metric families are registered in; its storage decides where values
    /// live (the multiprocess directory, or this process's memory).
    public let registry: Registry

    /// The buckets, gauge modes and reporter in use.
    public var configuration: PrometheusMultiprocessMetricsFactory.Configuration { backend.configuration }

    /// The caches and families; `package` for the tests.
    package let backend: Backend

    /// Creates a factory over `registry`.
    ///
    /// Bucket settings are checked here, with the same rules as `Histogram` applies (ascending,
    /// no NaN, no duplicates); a bad one stops the process with a message naming the label, at
    /// bootstrap rather than at the metric's first use.
    ///
    /// Make one factory per registry: each factory registers the families it makes, so a
    /// second factory making a metric of the same name in the same registry stops the process
    /// (see the clash rule above).
    ///
    /// - Parameters:
    ///   - registry: where families are registered and values stored. `Registry.default`
    ///     follows `PROMETHEUS_MULTIPROC_DIR`; tests pass a registry over
    ///     `.multiprocess(directory:identity:)`.
    ///   - configuration: buckets, gauge modes and the reporter.
    public init(registry: Registry = .default, configuration: Configuration = Configuration()) {
        Self.checkBuckets(configuration)
        self.registry = registry
        self.backend = Backend(registry: registry, configuration: configuration)
    }

    private static func checkBuckets(_ configuration: Configuration) {
        var settings: [(String, [Double])] = [
            ("defaultTimerBuckets", configuration.defaultTimerBuckets),
            ("defaultRecorderBuckets", configuration.defaultRecorderBuckets),
        ]
        settings += configuration.timerBuckets.sorted { $0.key < $1.key }.map { ("timerBuckets[\"\($0.key)\"]", $0.value) }
        settings += configuration.recorderBuckets.sorted { $0.key < $1.key }.map { ("recorderBuckets[\"\($0.key)\"]", $0.value) }
        for (setting, buckets) in settings {
            do {
                // The Histogram initialiser is the one place the bucket rules live; a throwaway
                // in-memory registry keeps the probe out of everything else.
                _ = try PromMetrics.Histogram("bucket_check", help: "", buckets: buckets, registry: Registry(storage: .inProcess))
            } catch {
                fatalError("PrometheusMultiprocessMetricsFactory: invalid \(setting) \(buckets): \(error.reason)")
            }
        }
    }
}

extension PrometheusMultiprocessMetricsFactory: MetricsFactory {
    /// Makes (or finds) the handler of a swift-metrics `Counter`: a series of the Prometheus
    /// counter named after `label`.
    /// - Parameters:
    ///   - label: the metric name, sanitized.
    ///   - dimensions: the labels, names sanitized.
    /// - Returns: the cached handler for this label and these dimensions.
    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        backend.counter(label: label, dimensions: dimensions)
    }

    /// Makes (or finds) the handler of a swift-metrics `FloatingPointCounter`: the same
    /// Prometheus counter as a `Counter` of that label, which takes fractional increments.
    /// - Parameters:
    ///   - label: the metric name, sanitized.
    ///   - dimensions: the labels, names sanitized.
    /// - Returns: the cached handler for this label and these dimensions.
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        backend.counter(label: label, dimensions: dimensions)
    }

    /// Makes (or finds) the handler of a swift-metrics `Meter`: a series of a Prometheus gauge
    /// in the label's multiprocess mode (``Configuration/gaugeModes``, else
    /// ``Configuration/defaultGaugeMode``).
    /// - Parameters:
    ///   - label: the metric name, sanitized.
    ///   - dimensions: the labels, names sanitized.
    /// - Returns: the cached handler for this label and these dimensions.
    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        backend.gauge(label: label, dimensions: dimensions)
    }

    /// Makes (or finds) the handler of a swift-metrics `Recorder`: a series of a Prometheus
    /// histogram when `aggregate` is true (``Configuration/recorderBuckets``), of a gauge when
    /// it is false (swift-metrics' `Gauge`, merged like a `Meter`).
    /// - Parameters:
    ///   - label: the metric name, sanitized.
    ///   - dimensions: the labels, names sanitized.
    ///   - aggregate: whether values are a distribution (histogram) or the latest value (gauge).
    /// - Returns: the cached handler for this label and these dimensions.
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        if aggregate {
            return backend.histogram(label: label, dimensions: dimensions, timer: false)
        }
        return backend.gauge(label: label, dimensions: dimensions)
    }

    /// Makes (or finds) the handler of a swift-metrics `Timer`: a series of a Prometheus
    /// histogram of durations in seconds (``Configuration/timerBuckets``). The preferred
    /// display unit is ignored: Prometheus stores seconds.
    /// - Parameters:
    ///   - label: the metric name, sanitized.
    ///   - dimensions: the labels, names sanitized.
    /// - Returns: the cached handler for this label and these dimensions.
    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        backend.histogram(label: label, dimensions: dimensions, timer: true)
    }

    /// Forgets a counter's handler; its series stays (see the type's documentation).
    /// - Parameter handler: a handler this factory made.
    public func destroyCounter(_ handler: any CounterHandler) {
        backend.forget(handler as? any CachedHandler)
    }

    /// Forgets a floating-point counter's handler; its series stays.
    /// - Parameter handler: a handler this factory made.
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        backend.forget(handler as? any CachedHandler)
    }

    /// Forgets a meter's handler; its series stays, with its last value.
    /// - Parameter handler: a handler this factory made.
    public func destroyMeter(_ handler: any MeterHandler) {
        backend.forget(handler as? any CachedHandler)
    }

    /// Forgets a recorder's handler; its series stays.
    /// - Parameter handler: a handler this factory made.
    public func destroyRecorder(_ handler: any RecorderHandler) {
        backend.forget(handler as? any CachedHandler)
    }

    /// Forgets a timer's handler; its series stays.
    /// - Parameter handler: a handler this factory made.
    public func destroyTimer(_ handler: any TimerHandler) {
        backend.forget(handler as? any CachedHandler)
    }
}
