import MmapStore

/// The type of a metric family, as exposition formats name it.
public enum MetricKind: String, Hashable, Sendable, CaseIterable {
    /// A monotonic counter; samples `<name>_total`.
    case counter
    /// A value that goes up and down.
    case gauge
    /// Buckets, `_count` and `_sum`.
    case histogram
    /// `_count` and `_sum`, and samples named after the family with a `quantile` label.
    case summary
    /// Constant labels with value 1; sample `<name>_info`.
    case info
    /// One series per state, 1 for the current state (an Enum).
    case stateset
    /// A metric of unknown type (`untyped` in the text format).
    case unknown
}

/// One sample: a full sample name (such as `requests_total` or `latency_bucket`), its labels in
/// the order they are rendered, and its value.
public struct Sample: Hashable, Sendable {
    /// The sample name, including suffixes such as `_total`, `_bucket`, `_info`.
    public var name: String
    /// The labels, in rendering order (histogram `le` last).
    public var labels: [Label]
    /// The value.
    public var value: Double
    /// The latest exemplar of a counter's `_total` or a histogram's `_bucket`, if any
    /// (rendered in OpenMetrics and protobuf only).
    public var exemplar: RecordedExemplar?

    /// Creates a sample.
    public init(name: String, labels: [Label] = [], value: Double, exemplar: RecordedExemplar? = nil) {
        self.name = name
        self.labels = labels
        self.value = value
        self.exemplar = exemplar
    }
}

/// A metric family ready to be rendered: name, type, help, unit and samples.
///
/// The family name follows prometheus_client: a counter's family name has no `_total`
/// (its samples do), an Info's family name has no `_info` (its sample does).
public struct MetricFamilySnapshot: Hashable, Sendable {
    /// The family name.
    public var name: String
    /// The family type.
    public var kind: MetricKind
    /// The help text (unescaped).
    public var help: String
    /// The unit (such as `seconds`), when known; rendered as `# UNIT` in OpenMetrics.
    public var unit: String?
    /// The samples, grouped by label set; for histograms `_bucket`s ascending, then `_count`, `_sum`.
    public var samples: [Sample]
    /// The native-histogram series of a histogram family (empty for every other kind, and
    /// ignored there).
    ///
    /// A series may have a classic part in ``samples`` (the same labels, without `le`) and a
    /// native part here; the protobuf exposition writes both in one message. See
    /// ``NativeHistogramSnapshot``.
    public var nativeHistograms: [NativeHistogramSnapshot]

    /// Creates a family.
    /// - Parameters:
    ///   - name: The family name (a counter's without `_total`, an Info's without `_info`).
    ///   - kind: The family type.
    ///   - help: The help text (unescaped).
    ///   - unit: The unit, when known.
    ///   - samples: The samples, grouped by label set.
    ///   - nativeHistograms: The native-histogram series of a histogram family.
    public init(name: String, kind: MetricKind, help: String, unit: String? = nil, samples: [Sample],
                nativeHistograms: [NativeHistogramSnapshot] = []) {
        self.name = name
        self.kind = kind
        self.help = help
        self.unit = unit
        self.samples = samples
        self.nativeHistograms = nativeHistograms
    }
}
