import MmapStore
/// One labelled series of a ``Summary``: a count and a sum, and a quantile window when the
/// summary has ``SummaryQuantiles``.
public final class SummaryChild: Sendable, DurationRecording {
    @usableFromInline let count: SeriesHandle
    @usableFromInline let sum: SeriesHandle
    @usableFromInline let clock: MetricClock
    @usableFromInline let window: QuantileWindow?
    // The same, unretained (`window` keeps it alive): loading a class reference from a stored
    // property would otherwise cost a retain and a release per observation.
    @usableFromInline let unretainedWindow: Unmanaged<QuantileWindow>?

    init(count: SeriesHandle, sum: SeriesHandle, clock: MetricClock, window: QuantileWindow? = nil) {
        self.count = count
        self.sum = sum
        self.clock = clock
        self.window = window
        self.unretainedWindow = window.map { Unmanaged.passUnretained($0) }
    }

    /// Records one observation.
    @inlinable
    public func observe(_ value: Double) {
        count.add(1)
        sum.add(value)
        if let unretainedWindow { unretainedWindow._withUnsafeGuaranteedRef { $0.observe(value) } }
    }

    func recordDuration(_ seconds: Double) { observe(seconds) }

    /// Runs `body` and observes its duration in seconds, even when it throws.
    public func time<T>(_ body: () throws -> T) rethrows -> T { try timed(body) }

    /// Runs async `body` and observes its duration in seconds, even when it throws.
    public func time<T>(_ body: () async throws -> T) async rethrows -> T { try await timed(body) }

    /// The number of observations.
    package var countValue: Double { count.value }

    /// The sum of observations.
    package var sumValue: Double { sum.value }
}

/// A summary: the count and sum of observations, and quantiles over a sliding time window
/// when it has ``SummaryQuantiles``.
///
/// In multiprocess mode `_count` and `_sum` live in `summary_<pid>.db`, where
/// prometheus_client's collector reads them (it has no quantiles); the quantile window lives
/// in `native_<pid>.pmh` (``SummaryQuantiles``), and this package's collector merges the
/// windows of all processes and reports the quantiles of all their observations.
///
/// ```swift
/// let latency = try Summary("request_latency_seconds", help: "Latency.",
///                           quantiles: SummaryQuantiles(objectives: [0.5, 0.99], relativeError: 0.005))
/// latency.observe(0.25)
/// ```
public final class Summary: MetricBase<SummaryChild>, MetricCollectable, @unchecked Sendable {
    /// The quantiles reported, or nil for a count and a sum only.
    public let quantiles: SummaryQuantiles?
    /// The unlabelled child, in a `let` of this class made before the base class's initialiser
    /// runs: an update loads it like a cached child's handle, with no run-time exclusivity
    /// check, no retain and release, and a loop keeps it in a register, so an unlabelled update
    /// costs what one on a cached child does. A labelled metric has a stand-in here whose
    /// handles refuse every use (`SeriesHandle(refusing:)`): the fork-epoch check each update
    /// makes stops the process naming the metric and its labels, so the update itself tests
    /// nothing more.
    @usableFromInline let unlabelledChild: SummaryChild

    /// Creates and registers a summary.
    /// - Parameters:
    ///   - name: the metric name.
    ///   - help: the help text.
    ///   - labelNames: the label names (`quantile` is reserved).
    ///   - namespace: prefix joined with `_`.
    ///   - subsystem: second prefix joined with `_`.
    ///   - unit: unit suffix, appended unless already there.
    ///   - quantiles: the quantiles to report and over which window; none by default.
    ///   - registry: the registry (``Registry/default`` when nil).
    /// - Throws: `MetricError` for invalid names, invalid quantile options or a duplicate
    ///   registration.
    public init(_ name: String, help: String, labelNames: [String] = [], namespace: String = "", subsystem: String = "",
                unit: String = "", quantiles: SummaryQuantiles? = nil, registry: Registry? = nil) throws(MetricError) {
        let family = try MetricNaming.familyName(name: name, namespace: namespace, subsystem: subsystem, unit: unit, kind: .summary)
        if let problem = quantiles?.problem() { throw MetricError(metric: family, reason: problem) }
        self.quantiles = quantiles
        let target = registry ?? Registry.default
        let storage = target.storage
        let clock = target.clock
        let make: @Sendable ([Label]) -> SummaryChild = { labels in
            func key(_ sample: String) -> SeriesKey { SeriesKey(family: family, sample: sample, labels: labels, help: help) }
            storage.recordCreated(family: family, labels: labels, clock: clock)
            // Python creates `_count` first, then `_sum`.
            let count = storage.handle(kind: .summary, key: key(family + "_count"))
            let sum = storage.handle(kind: .summary, key: key(family + "_sum"))
            let window = quantiles.map { options in
                let storages = (0..<options.ageBuckets).compactMap { k in
                    storage.nativeStorage(key: key(SummaryWindowEntry(ageBucket: k, objectives: options.objectives).sampleName))
                }
                return QuantileWindow(options: options, storages: storages, clock: clock,
                                      reportFailure: { storage.reportNativeFailure($0, series: family) })
            }
            return SummaryChild(count: count, sum: sum, clock: clock, window: window)
        }
        let child = labelNames.isEmpty ? make([]) : nil
        unlabelledChild = child ?? {
            // One handle for the count and the sum: it refuses every use.
            let refusing = SeriesHandle(refusing: Self.unlabelledUseMessage(name: family, labelNames: labelNames))
            return SummaryChild(count: refusing, sum: refusing, clock: clock)
        }()
        try super.init(name: family, help: help, labelNames: labelNames, unit: unit, registry: registry, kind: .summary) { base, values in
            make(zip(base.labelNames, values).map { Label($0, $1) })
        }
        try finishInit(self, registry: registry, kind: .summary, unlabelled: child)
    }

    /// Records one observation on an unlabelled summary.
    @inlinable
    public func observe(_ value: Double) {
        unlabelledChild.observe(value)
    }

    /// Observes the duration of `body` on an unlabelled summary.
    public func time<T>(_ body: () throws -> T) rethrows -> T { try only.time(body) }

    /// Observes the duration of async `body` on an unlabelled summary.
    public func time<T>(_ body: () async throws -> T) async rethrows -> T { try await only.time(body) }

    /// The sample names: `_count`, `_sum` (and the family name for quantiles).
    public var sampleNames: [String] { (quantiles == nil ? [] : [name]) + [name + "_count", name + "_sum", name + "_created"] }

    /// A snapshot: per child, its quantiles over the window (when the summary has them),
    /// `_count` and `_sum`.
    public func collect() -> [MetricFamilySnapshot] {
        var samples: [Sample] = []
        let now = clock.wallTime()
        let quantileLabels = (quantiles?.objectives ?? []).map { Label("quantile", GoFloat.format($0)) }
        for (labels, child) in children() {
            if let quantiles, let window = child.window {
                for (label, value) in zip(quantileLabels, window.quantiles(quantiles.objectives, now: now)) {
                    samples.append(Sample(name: name, labels: labels + [label], value: value))
                }
            }
            samples.append(Sample(name: name + "_count", labels: labels, value: child.countValue))
            samples.append(Sample(name: name + "_sum", labels: labels, value: child.sumValue))
        }
        return [MetricFamilySnapshot(name: name, kind: .summary, help: help, unit: unit.isEmpty ? nil : unit, samples: samples)]
    }
}
