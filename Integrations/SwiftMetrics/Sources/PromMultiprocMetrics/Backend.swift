import PromMetrics
import Synchronization

/// A lock for the read-then-set increments of `mostrecent` gauges, shared by all their
/// handlers: two handlers of one series (dimensions given in another order) must exclude
/// each other too, and such increments are too rare to deserve a lock each.
final class ReadModifyWriteLock: Sendable {
    private let mutex = Mutex(())

    func withLock<T>(_ body: () -> T) -> T {
        mutex.withLock { _ in body() }
    }
}

/// The state behind a ``PrometheusMultiprocessMetricsFactory``: the families, and the handlers
/// already made, by label and dimensions.
///
/// Making a handler takes one lock and one dictionary lookup when it exists; the first time,
/// it sanitizes the names, finds or creates the family (registering it in the application's
/// registry) and the series, still under the lock, so that two threads asking at once get
/// the same handler.
package final class Backend: Sendable {
    let registry: Registry
    let configuration: PrometheusMultiprocessMetricsFactory.Configuration
    private let readModifyWrite = ReadModifyWriteLock()

    private struct State {
        var counters: [HandlerKey: CounterBackend] = [:]
        var gauges: [HandlerKey: GaugeBackend] = [:]
        var histograms: [HandlerKey: HistogramBackend] = [:]
        /// Families by family name, with the kind they were made as (for clash messages).
        var families: [String: (family: any MetricCollectable, made: String)] = [:]
        var reported: Set<String> = []
    }

    private let state = Mutex(State())

    init(registry: Registry, configuration: PrometheusMultiprocessMetricsFactory.Configuration) {
        self.registry = registry
        self.configuration = configuration
    }

    // MARK: Handlers

    func counter(label: String, dimensions: [(String, String)]) -> CounterBackend {
        let key = HandlerKey(label: label, dimensions: dimensions)
        return state.withLock { state in
            if let found = state.counters[key] { return found }
            let name = PrometheusNameSanitizer.metricName(label)
            let familyName = familyName(of: name, kind: .counter, label: label)
            let family: Family<PromMetrics.Counter> = self.family(
                familyName, kind: .counter, made: "a Counter or FloatingPointCounter", label: label, in: &state
            ) { labelNames, registry throws(MetricError) in
                try PromMetrics.Counter(name, help: "", labelNames: labelNames, registry: registry)
            }
            let series = family.series(LabelSet(dimensions: dimensions, reserved: .none))
            let handler = CounterBackend(series: series, key: key) { [weak self] in
                self?.report("Counter.reset() of '\(label)' is not supported; the Prometheus counter '\(familyName)_total' keeps counting")
            }
            state.counters[key] = handler
            return handler
        }
    }

    func gauge(label: String, dimensions: [(String, String)]) -> GaugeBackend {
        let key = HandlerKey(label: label, dimensions: dimensions)
        return state.withLock { state in
            if let found = state.gauges[key] { return found }
            let name = PrometheusNameSanitizer.metricName(label)
            let familyName = familyName(of: name, kind: .gauge, label: label)
            let mode = configuration.value(configuration.gaugeModes, label: label, sanitized: name)
                ?? configuration.defaultGaugeMode
            let family: Family<PromMetrics.Gauge> = self.family(
                familyName, kind: .gauge, gaugeMode: mode, made: "a Meter or non-aggregating Recorder", label: label, in: &state
            ) { labelNames, registry throws(MetricError) in
                try PromMetrics.Gauge(name, help: "", labelNames: labelNames, mode: mode, registry: registry)
            }
            let series = family.series(LabelSet(dimensions: dimensions, reserved: .gauge))
            // The family's mode, not this label's setting: another label may have made it.
            let handler = GaugeBackend(series: series, key: key, mode: family.gaugeMode ?? mode, readModifyWrite: readModifyWrite)
            state.gauges[key] = handler
            return handler
        }
    }

    func histogram(label: String, dimensions: [(String, String)], timer: Bool) -> HistogramBackend {
        let key = HandlerKey(label: label, dimensions: dimensions)
        return state.withLock { state in
            if let found = state.histograms[key] { return found }
            let name = PrometheusNameSanitizer.metricName(label)
            let familyName = familyName(of: name, kind: .histogram, label: label)
            let buckets = timer
                ? configuration.value(configuration.timerBuckets, label: label, sanitized: name) ?? configuration.defaultTimerBuckets
                : configuration.value(configuration.recorderBuckets, label: label, sanitized: name) ?? configuration.defaultRecorderBuckets
            let family: Family<PromMetrics.Histogram> = self.family(
                familyName, kind: .histogram, made: "a Timer or aggregating Recorder", label: label, in: &state
            ) { labelNames, registry throws(MetricError) in
                try PromMetrics.Histogram(name, help: "", labelNames: labelNames, buckets: buckets, registry: registry)
            }
            let series = family.series(LabelSet(dimensions: dimensions, reserved: .histogram))
            let handler = HistogramBackend(series: series, key: key)
            state.histograms[key] = handler
            return handler
        }
    }

    // MARK: Destroying

    /// Forgets a handler, so that the next `make` of its label and dimensions makes a new one.
    ///
    /// The series itself stays: in multiprocess mode an entry cannot leave its file (as in
    /// prometheus_client), and a series made again continues from its value, which keeps
    /// counters monotonic across a destroy and a re-creation.
    func forget(_ handler: (any CachedHandler)?) {
        guard let handler else { return }
        state.withLock { state in
            switch handler {
            case let counter as CounterBackend:
                if state.counters[counter.key] === counter { state.counters[counter.key] = nil }
            case let gauge as GaugeBackend:
                if state.gauges[gauge.key] === gauge { state.gauges[gauge.key] = nil }
            case let histogram as HistogramBackend:
                if state.histograms[histogram.key] === histogram { state.histograms[histogram.key] = nil }
            default:
                break
            }
        }
    }

    /// How many handlers are cached (for tests).
    package var cachedHandlerCount: Int {
        state.withLock { $0.counters.count + $0.gauges.count + $0.histograms.count }
    }

    // MARK: Families

    /// The family name the core derives from `name`, as prometheus_client's
    /// `_build_full_name` does with no namespace, subsystem or unit: a counter drops a
    /// trailing `_total` (the core's rule, which is not public API; `name` is already
    /// sanitized into a valid metric name).
    private func familyName(of name: String, kind: MetricKind, label: String) -> String {
        var family = name
        if kind == .counter && family.hasSuffix("_total") { family.removeLast(6) }
        guard MetricNaming.isValidMetricName(family) else {
            // Only a counter named `_total` (nothing left once the suffix is dropped) gets here.
            fatalError("swift-metrics backend: label '\(label)' gives no valid Prometheus name: '\(family)'")
        }
        return family
    }

    /// The family `familyName`, made and registered in the application's registry on first
    /// use.
    ///
    /// One name used for two kinds of metric (a `Counter` and a `Meter` both labelled
    /// `"jobs"`), or a family whose names clash with a metric already in the registry, stops
    /// the process with a message naming both: the series would otherwise be summed with
    /// another metric's in the files, or dropped. swift-prometheus stops the process too.
    private func family<Metric: FamilyMetric>(
        _ familyName: String, kind: MetricKind, gaugeMode: GaugeMode? = nil, made: String, label: String,
        in state: inout State,
        makeVariant: @escaping Family<Metric>.MakeVariant
    ) -> Family<Metric> {
        if let existing = state.families[familyName] {
            guard let family = existing.family as? Family<Metric> else {
                fatalError("""
                    swift-metrics backend: '\(label)' is used as \(made), but the Prometheus name \
                    '\(familyName)' is already used by \(existing.made)
                    """)
            }
            return family
        }
        let family = Family<Metric>(name: familyName, kind: kind, gaugeMode: gaugeMode, registry: registry, makeVariant: makeVariant)
        do {
            try registry.register(family)
        } catch {
            fatalError("swift-metrics backend: '\(label)' (\(made)) cannot be registered as '\(familyName)': \(error)")
        }
        state.families[familyName] = (family, made)
        return family
    }

    // MARK: Reporting

    /// Tells the reporter `message`, unless it was told already.
    func report(_ message: String) {
        let isNew = state.withLock { $0.reported.insert(message).inserted }
        if isNew { configuration.reporter(message) }
    }
}
