import PromMetrics
import Synchronization

/// A PromMetrics metric a ``Family`` is made of: `Counter`, `Gauge` or `Histogram`.
protocol FamilyMetric: MetricCollectable {
    /// What a handler updates: a labelled child, or the metric itself when it has no labels.
    associatedtype Series: Sendable
    /// The series for label values in the order of the metric's label names.
    func series(_ values: [String]) -> Series
}

/// One Prometheus metric family fed by swift-metrics handlers of one name.
///
/// swift-metrics lets handlers of one label have different sets of dimensions (a `Counter`
/// `"jobs"` with no dimensions and another with `("queue", "mail")`), while a PromMetrics
/// metric has fixed label names. A family therefore holds one PromMetrics metric per set of
/// label names (a variant), each registered in a registry of its own over the same storage
/// (two metrics of one name cannot share a registry); the family itself is what the
/// application's ``Registry`` holds, and it collects every variant as one family. In
/// multiprocess mode all variants write into the same files, and the collector merges their
/// series into one family by name, exactly like a Python worker's.
final class Family<Metric: FamilyMetric>: MetricCollectable, Sendable {
    /// Makes the variant for a set of label names, registered in `registry`.
    typealias MakeVariant = @Sendable (_ labelNames: [String], _ registry: Registry) throws(MetricError) -> Metric

    let name: String
    let sampleNames: [String]
    /// A gauge family's multiprocess mode, fixed by the label that made the family.
    let gaugeMode: GaugeMode?
    private let kind: MetricKind
    private let storage: MetricStorage
    private let clock: MetricClock
    private let makeVariant: MakeVariant
    /// Variants in creation order (a family has very few), so collection is deterministic.
    private let variants = Mutex<[(labelNames: [String], metric: Metric)]>([])

    /// - Parameters:
    ///   - name: the family name, as the PromMetrics metric computes it.
    ///   - kind: `.counter`, `.gauge` or `.histogram`.
    ///   - gaugeMode: a gauge family's mode.
    ///   - registry: the application's registry; variants share its storage and clock.
    init(name: String, kind: MetricKind, gaugeMode: GaugeMode?, registry: Registry, makeVariant: @escaping MakeVariant) {
        self.name = name
        self.gaugeMode = gaugeMode
        self.kind = kind
        switch kind {
        case .counter: sampleNames = [name + "_total", name + "_created"]
        case .histogram: sampleNames = [name + "_bucket", name + "_count", name + "_sum", name + "_created"]
        default: sampleNames = [name]
        }
        self.storage = registry.storage
        self.clock = registry.clock
        self.makeVariant = makeVariant
    }

    /// The series with these labels, creating the variant for their names on first use.
    func series(_ labels: LabelSet) -> Metric.Series {
        let metric = variants.withLock { variants -> Metric in
            if let found = variants.first(where: { $0.labelNames == labels.names }) { return found.metric }
            let made: Metric
            do {
                made = try makeVariant(labels.names, Registry(storage: storage, clock: clock))
            } catch {
                // The names were sanitized and the configuration checked at start-up: a
                // refusal here is a bug of this backend, not something a caller can handle.
                fatalError("swift-metrics backend: cannot create '\(name)' with labels \(labels.names): \(error)")
            }
            variants.append((labels.names, made))
            return made
        }
        return metric.series(labels.values)
    }

    /// Every variant's series, as one family.
    func collect() -> [MetricFamilySnapshot] {
        let metrics = variants.withLock { $0.map(\.metric) }
        guard !metrics.isEmpty else { return [] }
        var samples: [Sample] = []
        for metric in metrics {
            for family in metric.collect() { samples += family.samples }
        }
        return [MetricFamilySnapshot(name: name, kind: kind, help: "", samples: samples)]
    }
}

// MARK: - Series of each type

/// A counter's series: a child, or an unlabelled counter.
///
/// An unlabelled PromMetrics metric keeps its one child private (``Counter/increment(by:)``
/// goes to it), and `labels([])` would make a second child that collection never sees; so
/// the metric itself stands for its series.
enum CounterSeries: Sendable {
    case labelled(CounterChild)
    case unlabelled(PromMetrics.Counter)

    @inline(__always)
    func increment(by amount: Double) {
        switch self {
        case .labelled(let child): child.increment(by: amount)
        case .unlabelled(let counter): counter.increment(by: amount)
        }
    }

    var value: Double {
        switch self {
        case .labelled(let child): return child.value
        case .unlabelled(let counter): return counter.value
        }
    }
}

/// A gauge's series: a child, or an unlabelled gauge.
enum GaugeSeries: Sendable {
    case labelled(GaugeChild)
    case unlabelled(PromMetrics.Gauge)

    @inline(__always)
    func increment(by amount: Double) {
        switch self {
        case .labelled(let child): child.increment(by: amount)
        case .unlabelled(let gauge): gauge.increment(by: amount)
        }
    }

    @inline(__always)
    func set(_ value: Double) {
        switch self {
        case .labelled(let child): child.set(value)
        case .unlabelled(let gauge): gauge.set(value)
        }
    }

    var value: Double {
        switch self {
        case .labelled(let child): return child.value
        case .unlabelled(let gauge): return gauge.value
        }
    }
}

/// A histogram's series: a child, or an unlabelled histogram.
enum HistogramSeries: Sendable {
    case labelled(HistogramChild)
    case unlabelled(PromMetrics.Histogram)

    @inline(__always)
    func observe(_ value: Double) {
        switch self {
        case .labelled(let child): child.observe(value)
        case .unlabelled(let histogram): histogram.observe(value)
        }
    }
}

extension PromMetrics.Counter: FamilyMetric {
    func series(_ values: [String]) -> CounterSeries {
        values.isEmpty ? .unlabelled(self) : .labelled(labels(values))
    }
}

extension PromMetrics.Gauge: FamilyMetric {
    func series(_ values: [String]) -> GaugeSeries {
        values.isEmpty ? .unlabelled(self) : .labelled(labels(values))
    }
}

extension PromMetrics.Histogram: FamilyMetric {
    func series(_ values: [String]) -> HistogramSeries {
        values.isEmpty ? .unlabelled(self) : .labelled(labels(values))
    }
}
