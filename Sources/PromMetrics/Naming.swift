/// A problem with how a metric was declared or used: an invalid name, a reserved label, a
/// duplicate registration, a wrong number of label values.
public struct MetricError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The metric's name as given.
    public var metric: String
    /// What is wrong.
    public var reason: String

    /// Creates an error.
    package init(metric: String, reason: String) {
        self.metric = metric
        self.reason = reason
    }

    /// `metric 'name': reason`.
    public var description: String { "metric '\(metric)': \(reason)" }
}

/// Name rules, in one place: metric and label names, reserved labels, and how
/// prometheus_client builds a full name from namespace, subsystem, name and unit.
public enum MetricNaming {
    /// Whether `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    public static func isValidMetricName(_ name: String) -> Bool {
        var first = true
        for b in name.utf8 {
            let ok: Bool
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"), UInt8(ascii: ":"): ok = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"): ok = !first
            default: ok = false
            }
            if !ok { return false }
            first = false
        }
        return !first
    }

    /// Whether `name` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
    public static func isValidLabelName(_ name: String) -> Bool {
        var first = true
        for b in name.utf8 {
            let ok: Bool
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"): ok = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"): ok = !first
            default: ok = false
            }
            if !ok { return false }
            first = false
        }
        return !first
    }

    /// Builds the family name as prometheus_client's `_build_full_name` does: joins
    /// namespace, subsystem and name with `_`; for counters drops a trailing `_total`; appends
    /// `_<unit>` unless the name already ends with it.
    /// - Throws: `MetricError` for an invalid resulting name or a unit on an Info or Enum.
    package static func familyName(name: String, namespace: String, subsystem: String, unit: String, kind: MetricKind) throws(MetricError) -> String {
        guard !name.isEmpty else { throw MetricError(metric: name, reason: "name is empty") }
        var full = [namespace, subsystem, name].filter { !$0.isEmpty }.joined(separator: "_")
        if kind == .counter && full.hasSuffix("_total") { full.removeLast(6) }
        if !unit.isEmpty {
            if kind == .info || kind == .stateset {
                throw MetricError(metric: name, reason: "a unit is not allowed on an \(kind == .info ? "Info" : "Enum")")
            }
            guard isValidLabelName(unit) || isValidMetricName(unit) else {
                throw MetricError(metric: name, reason: "invalid unit '\(unit)'")
            }
            if !full.hasSuffix("_" + unit) { full += "_" + unit }
        }
        guard isValidMetricName(full) else {
            throw MetricError(metric: name, reason: "invalid metric name '\(full)': must match [a-zA-Z_:][a-zA-Z0-9_:]*")
        }
        if kind == .info && full.hasSuffix("_info") { full.removeLast(5) }
        return full
    }

    /// Checks label names for a metric of `kind`.
    /// - Throws: `MetricError` for an invalid or duplicate name, the reserved `__` prefix,
    ///   `le` on a histogram, `quantile` on a summary, or `pid` on a gauge in multiprocess mode.
    package static func validateLabelNames(_ names: [String], metric: String, kind: MetricKind, multiprocess: Bool) throws(MetricError) {
        var seen = Set<String>()
        for n in names {
            guard isValidLabelName(n) else {
                throw MetricError(metric: metric, reason: "invalid label name '\(n)': must match [a-zA-Z_][a-zA-Z0-9_]*")
            }
            if n.hasPrefix("__") { throw MetricError(metric: metric, reason: "label name '\(n)' is reserved (the __ prefix is for internal use)") }
            if kind == .histogram && n == "le" { throw MetricError(metric: metric, reason: "'le' is reserved for histogram buckets") }
            if kind == .summary && n == "quantile" { throw MetricError(metric: metric, reason: "'quantile' is reserved for summaries") }
            if kind == .gauge && multiprocess && n == "pid" {
                throw MetricError(metric: metric, reason: "'pid' is reserved on gauges in multiprocess mode (the collector adds it)")
            }
            guard seen.insert(n).inserted else { throw MetricError(metric: metric, reason: "duplicate label name '\(n)'") }
        }
    }
}

/// Stops the process for a programming error (wrong label count, unknown Enum state, ...),
/// with a message naming the metric. `fatalError` rather than `precondition`: an optimised
/// build drops a precondition's message, and the message is how a user learns what is wrong.
@usableFromInline @inline(never)
func misuse(_ message: String) -> Never {
    fatalError(message)
}
