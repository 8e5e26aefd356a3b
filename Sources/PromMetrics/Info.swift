import MmapStore
import SystemCalls
import Synchronization

/// One labelled series of an ``Info``: a set of key-value pairs exposed with value 1.
public final class InfoChild: Sendable {
    // Unowned: the metric owns its children (a strong reference would be a cycle).
    private unowned let metric: Info
    private let labels: [Label]
    private let current = Locked<(values: [String: String], handle: SeriesHandle?)>(([:], nil))

    init(metric: Info, labels: [Label]) {
        self.metric = metric
        self.labels = labels
    }

    /// Replaces the info pairs.
    /// - Precondition: keys are valid label names and do not repeat the metric's label names.
    public func info(_ values: [String: String]) {
        for k in values.keys {
            if !MetricNaming.isValidLabelName(k) || k.hasPrefix("__") { misuse("info '\(metric.name)': invalid info key '\(k)'") }
            if metric.labelNames.contains(k) { misuse("info '\(metric.name)': info key '\(k)' repeats a label name") }
        }
        let handle = metric.storage.isMultiprocess
            ? metric.storage.handle(kind: .gauge(Info.multiprocessMode), key: SeriesKey(
                family: metric.name + "_info", sample: metric.name + "_info",
                labels: labels + values.map { Label($0.key, $0.value) }, help: metric.help))
            : nil
        current.withLock { c in
            // In a file, the previous pairs' entry stays: set it to 0 so only the current one is 1.
            if let old = c.handle, old !== handle { old.set(0) }
            handle?.set(1)
            c = (values, handle)
        }
    }

    /// The current pairs.
    public var values: [String: String] { current.withLock { $0.values } }
}

/// Info: constant key-value pairs about the process or build, exposed as `<name>_info` with
/// value 1.
///
/// prometheus_client cannot store Info in multiprocess mode; this package stores it as a gauge
/// (`gauge_livemax_<pid>.db`, family and sample `<name>_info`, the pairs as labels, value 1),
/// so prometheus_client's collector reads the directory without error and shows it as a
/// gauge `<name>_info`. The text format shows the same for both; in OpenMetrics the merged
/// family is a gauge named `<name>_info` rather than an `info` family. When the pairs change,
/// the old pairs' series stays in the file with value 0.
///
/// ```swift
/// let build = try Info("build", help: "Build information.")
/// build.info(["version": "1.2.3", "commit": "abc123"])
/// ```
public final class Info: MetricBase<InfoChild>, MetricCollectable, @unchecked Sendable {
    /// The gauge mode Info values are stored with in multiprocess mode.
    package static let multiprocessMode = GaugeMode.livemax

    /// Creates and registers an Info metric.
    /// - Parameters:
    ///   - name: the metric name (a trailing `_info` is dropped from the family name).
    ///   - help: the help text.
    ///   - labelNames: label names for labelled children.
    ///   - namespace: prefix joined with `_`.
    ///   - subsystem: second prefix joined with `_`.
    ///   - registry: the registry (``Registry/default`` when nil).
    /// - Throws: `MetricError` for invalid names or a duplicate registration.
    public init(_ name: String, help: String, labelNames: [String] = [], namespace: String = "", subsystem: String = "",
                registry: Registry? = nil) throws(MetricError) {
        let family = try MetricNaming.familyName(name: name, namespace: namespace, subsystem: subsystem, unit: "", kind: .info)
        try super.init(name: family, help: help, labelNames: labelNames, unit: "", registry: registry, kind: .info) { base, values in
            InfoChild(metric: base as! Info, labels: zip(base.labelNames, values).map { Label($0, $1) })  // swiftlint:disable:this force_cast
        }
        try finishInit(self, registry: registry, kind: .info)
        storage.recordFamilyType(family + "_info", as: .info)
    }

    /// Replaces the pairs of an unlabelled Info.
    public func info(_ values: [String: String]) { only.info(values) }

    /// The sample names: `<name>_info`.
    public var sampleNames: [String] { [name + "_info"] }

    /// A snapshot: one `<name>_info` sample per child, value 1.
    public func collect() -> [MetricFamilySnapshot] {
        let samples = children().map { entry in
            let pairs = entry.child.values.map { Label($0.key, $0.value) }.sorted { Label.codePointLess($0.name, $1.name) }
            return Sample(name: name + "_info", labels: entry.labels + pairs, value: 1)
        }
        return [MetricFamilySnapshot(name: name, kind: .info, help: help, samples: samples)]
    }
}
