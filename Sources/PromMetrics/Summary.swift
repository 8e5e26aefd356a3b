import MmapStore
/// One labelled series of a ``Summary``: a count and a sum (no quantiles).
public final class SummaryChild: Sendable, DurationRecording {
    @usableFromInline let count: SeriesHandle
    @usableFromInline let sum: SeriesHandle
    @usableFromInline let clock: MetricClock

    init(count: SeriesHandle, sum: SeriesHandle, clock: MetricClock) {
        self.count = count
        self.sum = sum
        self.clock = clock
    }

    /// Records one observation.
    @inlinable
    public func observe(_ value: Double) {
        count.add(1)
        sum.add(value)
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

/// A summary: the count and sum of observations (prometheus_client has no quantiles in
/// multiprocess mode either).
public final class Summary: MetricBase<SummaryChild>, MetricCollectable, @unchecked Sendable {
    /// Creates and registers a summary.
    /// - Parameters:
    ///   - name: the metric name.
    ///   - help: the help text.
    ///   - labelNames: the label names (`quantile` is reserved).
    ///   - namespace: prefix joined with `_`.
    ///   - subsystem: second prefix joined with `_`.
    ///   - unit: unit suffix, appended unless already there.
    ///   - registry: the registry (``Registry/default`` when nil).
    /// - Throws: `MetricError` for invalid names or a duplicate registration.
    public init(_ name: String, help: String, labelNames: [String] = [], namespace: String = "", subsystem: String = "",
                unit: String = "", registry: Registry? = nil) throws(MetricError) {
        let family = try MetricNaming.familyName(name: name, namespace: namespace, subsystem: subsystem, unit: unit, kind: .summary)
        try super.init(name: family, help: help, labelNames: labelNames, unit: unit, registry: registry, kind: .summary) { base, values in
            let labels = zip(base.labelNames, values).map { Label($0, $1) }
            base.storage.recordCreated(family: base.name, labels: labels, clock: base.clock)
            // Python creates `_count` first, then `_sum`.
            let count = base.storage.handle(kind: .summary, key: base.key(sample: base.name + "_count", labels: labels))
            let sum = base.storage.handle(kind: .summary, key: base.key(sample: base.name + "_sum", labels: labels))
            return SummaryChild(count: count, sum: sum, clock: base.clock)
        }
        try finishInit(self, registry: registry, kind: .summary)
    }

    /// Records one observation on an unlabelled summary.
    @inlinable
    public func observe(_ value: Double) { only.observe(value) }

    /// Observes the duration of `body` on an unlabelled summary.
    public func time<T>(_ body: () throws -> T) rethrows -> T { try only.time(body) }

    /// Observes the duration of async `body` on an unlabelled summary.
    public func time<T>(_ body: () async throws -> T) async rethrows -> T { try await only.time(body) }

    /// The sample names: `_count`, `_sum`.
    public var sampleNames: [String] { [name + "_count", name + "_sum", name + "_created"] }

    /// A snapshot: `_count` and `_sum` per child.
    public func collect() -> [MetricFamilySnapshot] {
        var samples: [Sample] = []
        for (labels, child) in children() {
            samples.append(Sample(name: name + "_count", labels: labels, value: child.countValue))
            samples.append(Sample(name: name + "_sum", labels: labels, value: child.sumValue))
        }
        return [MetricFamilySnapshot(name: name, kind: .summary, help: help, unit: unit.isEmpty ? nil : unit, samples: samples)]
    }
}
