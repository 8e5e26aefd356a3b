/// The Prometheus labels of one swift-metrics handler: its dimensions with sanitized names,
/// sorted by name.
///
/// Sorting makes the order of dimensions irrelevant: `[("a", "1"), ("b", "2")]` and
/// `[("b", "2"), ("a", "1")]` are one series, as they are in the exposition (the key in the
/// file sorts labels too).
///
/// Names that the core would refuse are renamed, because a backend cannot throw and should not
/// crash an application over a name a library picked:
///
/// - `le` on a histogram (Timer, aggregating Recorder) becomes `_le`; `le` is the bucket label.
/// - `pid` on a gauge (Meter, non-aggregating Recorder) becomes `_pid`; the collector adds `pid`
///   to gauges of the `all` and `liveall` modes. The rename applies in every mode and in
///   single-process use too, so a label keeps its name when the deployment changes.
/// - A name that is taken already (two dimensions that sanitize to one name, or a dimension
///   given twice) gets the first free suffix `_2`, `_3`, … in the order the dimensions were
///   given.
package struct LabelSet: Hashable, Sendable {
    /// The label names, sorted by their UTF-8 bytes.
    package var names: [String]
    /// The label values, in the order of ``names``.
    package var values: [String]

    /// The label names that a metric type reserves.
    package enum Reserved: Sendable {
        /// Histograms reserve `le`.
        case histogram
        /// Gauges reserve `pid` (multiprocess mode).
        case gauge
        /// Counters reserve nothing.
        case none

        var name: String? {
            switch self {
            case .histogram: return "le"
            case .gauge: return "pid"
            case .none: return nil
            }
        }
    }

    /// Builds the labels of a handler from swift-metrics dimensions.
    package init(dimensions: [(String, String)], reserved: Reserved) {
        if dimensions.isEmpty {
            names = []
            values = []
            return
        }
        var taken = Set<String>()
        var pairs: [(name: String, value: String)] = []
        pairs.reserveCapacity(dimensions.count)
        for (rawName, value) in dimensions {
            var name = PrometheusNameSanitizer.labelName(rawName)
            if name == reserved.name { name = "_" + name }
            if taken.contains(name) {
                var n = 2
                while taken.contains("\(name)_\(n)") { n += 1 }
                name = "\(name)_\(n)"
            }
            taken.insert(name)
            pairs.append((name, value))
        }
        pairs.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        names = pairs.map(\.name)
        values = pairs.map(\.value)
    }
}
