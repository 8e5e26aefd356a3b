import MmapStore
/// One labelled series of a ``Histogram``: non-cumulative bucket counts and a sum, and native
/// buckets when the histogram has them.
///
/// An observation adds 1 to one classic bucket and the value to the sum: two atomic
/// operations, no lock, no allocation; with native buckets, one more atomic add once its
/// bucket exists. Buckets are made cumulative when collected.
public final class HistogramChild: Sendable, DurationRecording {
    @usableFromInline let upperBounds: [Double]
    @usableFromInline let buckets: [SeriesHandle]
    // The same handles, unretained: `buckets` keeps them alive, and reading a class reference
    // out of an array would otherwise cost a retain and a release per observation.
    @usableFromInline let unretainedBuckets: [Unmanaged<SeriesHandle>]
    @usableFromInline let sum: SeriesHandle
    @usableFromInline let clock: MetricClock
    let exemplarSlots: [ExemplarSlot]
    let storage: MetricStorage?
    let metricName: String
    @usableFromInline let native: NativeBuckets?
    // The same, unretained (`native` keeps it alive): loading a class reference from a stored
    // property would otherwise cost a retain and a release per observation.
    @usableFromInline let unretainedNative: Unmanaged<NativeBuckets>?

    init(upperBounds: [Double], buckets: [SeriesHandle], sum: SeriesHandle, clock: MetricClock,
         exemplarSlots: [ExemplarSlot], storage: MetricStorage?, metricName: String,
         native: (_ resetClassic: @escaping @Sendable (Double?) -> Void) -> NativeBuckets?) {
        self.exemplarSlots = exemplarSlots
        self.storage = storage
        self.metricName = metricName
        self.upperBounds = upperBounds
        self.buckets = buckets
        self.unretainedBuckets = buckets.map { Unmanaged.passUnretained($0) }
        self.sum = sum
        self.clock = clock
        // A reset (single-process native buckets) starts the classic part again too, as in
        // client_golang, and counts the observation that caused it.
        let nativeBuckets = native { [buckets, sum, upperBounds] value in
            for b in buckets { b.set(0) }
            sum.set(0)
            guard let value else { return }
            if let i = upperBounds.firstIndex(where: { value <= $0 }) { buckets[i].add(1) }
            sum.add(value)
        }
        self.native = nativeBuckets
        self.unretainedNative = nativeBuckets.map { Unmanaged.passUnretained($0) }
    }

    /// Records one observation.
    @inlinable
    public func observe(_ value: Double) {
        // The last bound is +Inf, so the scan stops there; NaN lands in no bucket (as in Python).
        var i = 0
        let last = upperBounds.count - 1
        while i < last && !(value <= upperBounds[i]) { i += 1 }
        if value <= upperBounds[i] { unretainedBuckets[i]._withUnsafeGuaranteedRef { $0.add(1) } }
        sum.add(value)
        if let unretainedNative { unretainedNative._withUnsafeGuaranteedRef { $0.observe(value) } }
    }

    /// Records one observation and keeps `exemplar` as the latest exemplar of the bucket it
    /// falls in, with the observed value (the bucket's previous exemplar is replaced).
    ///
    /// Lock-free, like ``observe(_:)``, but it also writes the exemplar's labels (see
    /// BENCHMARKS.md for the cost). NaN falls in no bucket and keeps no exemplar.
    /// - Parameters:
    ///   - value: the observation.
    ///   - exemplar: the exemplar; its timestamp defaults to now.
    public func observe(_ value: Double, exemplar: Exemplar) {
        observe(value)
        guard let i = upperBounds.firstIndex(where: { value <= $0 }) else { return }
        exemplarSlots[i].record(labels: exemplar.encodedLabels, value: value, timestamp: exemplar.timestamp ?? clock.wallTime()) {
            [storage, metricName] in storage?.reportExemplarFailure($0, series: metricName)
        }
    }

    /// The latest exemplar of each classic bucket recorded by this process (nil where none).
    package var bucketExemplars: [RecordedExemplar?] { exemplarSlots.map { $0.latest.map(RecordedExemplar.init) } }

    func recordDuration(_ seconds: Double) { observe(seconds) }

    /// Runs `body` and observes its duration in seconds, even when it throws.
    public func time<T>(_ body: () throws -> T) rethrows -> T { try timed(body) }

    /// Runs async `body` and observes its duration in seconds, even when it throws.
    public func time<T>(_ body: () async throws -> T) async rethrows -> T { try await timed(body) }

    /// The cumulative count per upper bound.
    package var cumulativeCounts: [Double] {
        var total = 0.0
        return buckets.map { total += $0.value; return total }
    }

    /// The sum of observations.
    package var sumValue: Double { sum.value }

    /// The native part of the series, when the histogram has native buckets.
    package func nativeSnapshot(labels: [Label]) -> NativeHistogramSnapshot? {
        native?.snapshot(labels: labels, sum: { sum.value })
    }
}

/// A histogram: observations counted in buckets, with their count and sum; classic buckets
/// with fixed bounds, native (sparse, exponential) buckets, or both.
///
/// In multiprocess mode the `histogram_<pid>.db` file holds `_sum` and one `_bucket` entry per
/// bound with non-cumulative counts, exactly as prometheus_client writes them; native buckets
/// live in `native_<pid>.pmh`, which prometheus_client never reads, and the collector merges
/// them across processes.
///
/// ```swift
/// let latency = try Histogram("request_duration_seconds", help: "Latency.", labelNames: ["route"])
/// let api = latency.labels("/api")
/// try api.time { try serve() }
/// ```
///
/// With ``NativeHistogramOptions`` and no `buckets`, a histogram keeps native buckets only (and
/// the classic `+Inf` bucket, so that the text formats and prometheus_client still see its
/// count and sum); with both, it keeps both, as client_golang does.
public final class Histogram: MetricBase<HistogramChild>, MetricCollectable, @unchecked Sendable {
    /// prometheus_client's default buckets.
    public static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, .infinity]

    /// The upper bounds of the classic buckets, ascending, ending with `+Inf`.
    public let upperBounds: [Double]

    /// The native buckets' options, or nil when the histogram has classic buckets only.
    public let native: NativeHistogramOptions?

    /// The unlabelled child, in a `let` of this class made before the base class's initialiser
    /// runs: an update loads it like a cached child's handle, with no run-time exclusivity
    /// check, no retain and release, and a loop keeps it in a register, so an unlabelled update
    /// costs what one on a cached child does. A labelled metric has a stand-in here whose
    /// handles refuse every use (`SeriesHandle(refusing:)`): the fork-epoch check each update
    /// makes stops the process naming the metric and its labels, so the update itself tests
    /// nothing more.
    @usableFromInline let unlabelledChild: HistogramChild

    /// Creates and registers a histogram.
    /// - Parameters:
    ///   - name: the metric name.
    ///   - help: the help text.
    ///   - labelNames: the label names (`le` is reserved).
    ///   - namespace: prefix joined with `_`.
    ///   - subsystem: second prefix joined with `_`.
    ///   - unit: unit suffix, appended unless already there.
    ///   - buckets: classic upper bounds in ascending order; `+Inf` is added when missing. By
    ///     default ``defaultBuckets``, or only `+Inf` when `native` is given.
    ///   - native: native buckets and their options; none by default.
    ///   - registry: the registry (``Registry/default`` when nil).
    /// - Throws: `MetricError` for invalid names, unsorted or NaN buckets, too few buckets,
    ///   invalid native options, or a duplicate registration.
    public init(_ name: String, help: String, labelNames: [String] = [], namespace: String = "", subsystem: String = "",
                unit: String = "", buckets: [Double]? = nil, native: NativeHistogramOptions? = nil,
                registry: Registry? = nil) throws(MetricError) {
        let family = try MetricNaming.familyName(name: name, namespace: namespace, subsystem: subsystem, unit: unit, kind: .histogram)
        if let problem = native?.problem() { throw MetricError(metric: family, reason: problem) }
        let given = buckets ?? (native == nil ? Histogram.defaultBuckets : [])
        var bounds = given
        if bounds.contains(where: \.isNaN) { throw MetricError(metric: family, reason: "bucket bounds must not be NaN") }
        if bounds != bounds.sorted() { throw MetricError(metric: family, reason: "buckets not in sorted order: \(given)") }
        if bounds.last != .infinity { bounds.append(.infinity) }
        if bounds.count < 2 && native == nil {
            throw MetricError(metric: family, reason: "a histogram needs at least two buckets (one plus +Inf)")
        }
        if Set(bounds).count != bounds.count { throw MetricError(metric: family, reason: "duplicate bucket bounds: \(given)") }
        self.upperBounds = bounds
        self.native = native
        let finalBounds = bounds
        let leValues = bounds.map(BucketBound.format)
        let target = registry ?? Registry.default
        let storage = target.storage
        let clock = target.clock
        let make: @Sendable ([Label]) -> HistogramChild = { labels in
            func key(_ sample: String, _ labels: [Label]) -> SeriesKey { SeriesKey(family: family, sample: sample, labels: labels, help: help) }
            storage.recordCreated(family: family, labels: labels, clock: clock)
            // Python creates `_sum` first, then the buckets in order: same file layout.
            let sum = storage.handle(kind: .histogram, key: key(family + "_sum", labels))
            let bucketKeys = leValues.map { le in key(family + "_bucket", labels + [Label("le", le)]) }
            let handles = bucketKeys.map { storage.handle(kind: .histogram, key: $0) }
            let slots = bucketKeys.map { ExemplarSlot(store: storage.store, key: $0) }
            return HistogramChild(upperBounds: finalBounds, buckets: handles, sum: sum, clock: clock, exemplarSlots: slots,
                                  storage: storage, metricName: family) { resetClassic in
                guard let native else { return nil }
                return NativeBuckets(
                    options: native, storage: storage.nativeStorage(key: key(family, labels)), clock: clock,
                    reportFailure: { storage.reportNativeFailure($0, series: family) }, resetClassic: resetClassic)
            }
        }
        let child = labelNames.isEmpty ? make([]) : nil
        unlabelledChild = child ?? {
            // One handle for every bucket and the sum: it refuses every use.
            let refusing = SeriesHandle(refusing: Self.unlabelledUseMessage(name: family, labelNames: labelNames))
            let slot = ExemplarSlot(store: nil, key: SeriesKey(family: family, sample: family, labels: [], help: help))
            return HistogramChild(upperBounds: finalBounds, buckets: finalBounds.map { _ in refusing }, sum: refusing, clock: clock,
                                  exemplarSlots: finalBounds.map { _ in slot }, storage: nil, metricName: family) { _ in nil }
        }()
        try super.init(name: family, help: help, labelNames: labelNames, unit: unit, registry: registry, kind: .histogram) { base, values in
            make(zip(base.labelNames, values).map { Label($0, $1) })
        }
        try finishInit(self, registry: registry, kind: .histogram, unlabelled: child)
    }

    /// Records one observation on an unlabelled histogram.
    @inlinable
    public func observe(_ value: Double) {
        unlabelledChild.observe(value)
    }

    /// Records one observation on an unlabelled histogram, with an exemplar for its bucket.
    /// - Parameters:
    ///   - value: the observation.
    ///   - exemplar: the exemplar; its timestamp defaults to now.
    public func observe(_ value: Double, exemplar: Exemplar) { only.observe(value, exemplar: exemplar) }

    /// Observes the duration of `body` on an unlabelled histogram.
    public func time<T>(_ body: () throws -> T) rethrows -> T { try only.time(body) }

    /// Observes the duration of async `body` on an unlabelled histogram.
    public func time<T>(_ body: () async throws -> T) async rethrows -> T { try await only.time(body) }

    /// The sample names: `_bucket`, `_count`, `_sum`.
    public var sampleNames: [String] { [name + "_bucket", name + "_count", name + "_sum", name + "_created"] }

    /// A snapshot: cumulative buckets, `_count` and `_sum` per child, and each child's native
    /// buckets in ``MetricFamilySnapshot/nativeHistograms``.
    public func collect() -> [MetricFamilySnapshot] {
        var samples: [Sample] = []
        var natives: [NativeHistogramSnapshot] = []
        let les = upperBounds.map(BucketBound.format)
        for (labels, child) in children() {
            // The native part first: collecting it may reset the series (see
            // NativeHistogramOptions.minResetDuration), classic part included.
            let native = child.nativeSnapshot(labels: labels)
            let counts = child.cumulativeCounts
            let exemplars = child.bucketExemplars
            for (i, (le, count)) in zip(les, counts).enumerated() {
                samples.append(Sample(name: name + "_bucket", labels: labels + [Label("le", le)], value: count, exemplar: exemplars[i]))
            }
            samples.append(Sample(name: name + "_count", labels: labels, value: counts.last ?? 0))
            samples.append(Sample(name: name + "_sum", labels: labels, value: child.sumValue))
            if let native { natives.append(native) }
        }
        return [MetricFamilySnapshot(name: name, kind: .histogram, help: help, unit: unit.isEmpty ? nil : unit, samples: samples,
                                     nativeHistograms: natives)]
    }
}

/// Formats bucket bounds for the `le` label as prometheus_client's `floatToGoString` does.
enum BucketBound {
    static func format(_ d: Double) -> String { GoFloat.format(d) }
}
