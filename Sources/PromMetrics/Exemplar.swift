import MmapStore

/// An exemplar to attach to a counter increment or a histogram observation: labels that point
/// from the sample to an example of what it counts (typically a trace), and when it happened.
///
/// OpenMetrics limits the label names and values of an exemplar to 128 UTF-8 characters in
/// all; the initializer checks that limit and the label names, so an exemplar that exists is
/// valid. Build it once per trace, then pass it to ``CounterChild/increment(by:exemplar:)`` or
/// ``HistogramChild/observe(_:exemplar:)``; the latest exemplar of each series (of each bucket)
/// is kept, in multiprocess mode per process, and the collector exposes the most recent one.
/// Exemplars are rendered in OpenMetrics and protobuf, never in the text format 0.0.4.
///
/// ```swift
/// let served = try Counter("exemplar_requests_total", help: "Requests.", registry: Registry())
/// served.increment(by: 1, exemplar: try Exemplar(labels: [Label("trace_id", "4bf92f3577b34da6")]))
/// ```
public struct Exemplar: Hashable, Sendable {
    /// The most characters (Unicode scalars) the label names and values may have in all.
    public static let maximumLabelCharacters = 128

    /// The labels.
    public let labels: [Label]
    /// The time of the exemplar in UNIX seconds; nil means the time of the update that records it.
    public let timestamp: Double?
    /// The labels as a record stores them, encoded once.
    let encodedLabels: [UInt8]

    /// Creates an exemplar.
    /// - Parameters:
    ///   - labels: the labels, such as `trace_id`; names must be valid label names, and
    ///     names and values may have ``maximumLabelCharacters`` characters in all.
    ///   - timestamp: the time in UNIX seconds; nil (the default) for the time of the update.
    /// - Throws: ``ExemplarError`` when a name is invalid or repeated, the labels are too
    ///   long, or the timestamp is not finite.
    public init(labels: [Label], timestamp: Double? = nil) throws(ExemplarError) {
        var total = 0
        for (i, label) in labels.enumerated() {
            guard MetricNaming.isValidLabelName(label.name) else {
                throw ExemplarError(labels: labels, reason: "invalid label name '\(label.name)'")
            }
            // A handful of labels: a scan costs less than a set.
            guard !labels[..<i].contains(where: { $0.name == label.name }) else {
                throw ExemplarError(labels: labels, reason: "label '\(label.name)' given twice")
            }
            total += Self.characters(label.name) + Self.characters(label.value)
        }
        guard total <= Self.maximumLabelCharacters else {
            throw ExemplarError(labels: labels, reason: "label names and values have \(total) characters, more than \(Self.maximumLabelCharacters)")
        }
        if let timestamp, !timestamp.isFinite { throw ExemplarError(labels: labels, reason: "timestamp \(timestamp) is not finite") }
        self.labels = labels
        self.timestamp = timestamp
        encodedLabels = ExemplarFile.encodeLabels(labels)
    }

    /// The Unicode scalars of `text` (what OpenMetrics counts as characters): its UTF-8 bytes
    /// that do not continue a scalar.
    private static func characters(_ text: String) -> Int {
        var n = 0
        for byte in text.utf8 where byte & 0xC0 != 0x80 { n += 1 }
        return n
    }

    /// Creates an exemplar from label names and values, such as `["trace_id": "4bf92f35"]`.
    /// - Throws: ``ExemplarError``, as ``init(labels:timestamp:)``.
    public init(_ labels: KeyValuePairs<String, String>, timestamp: Double? = nil) throws(ExemplarError) {
        try self.init(labels: labels.map { Label($0.key, $0.value) }, timestamp: timestamp)
    }
}

/// Why an ``Exemplar`` cannot be made.
public struct ExemplarError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The labels given.
    public var labels: [Label]
    /// What is wrong.
    public var reason: String

    /// Creates an error.
    package init(labels: [Label], reason: String) {
        self.labels = labels
        self.reason = reason
    }

    /// `exemplar {trace_id="..."}: reason`.
    public var description: String {
        "exemplar {\(labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ","))}: \(reason)"
    }
}

/// An exemplar as collected: its labels, the value it was recorded with (a counter's
/// increment, a histogram's observation) and its time.
public struct RecordedExemplar: Hashable, Sendable {
    /// The labels.
    public var labels: [Label]
    /// The value of the increment or observation.
    public var value: Double
    /// The time, in UNIX seconds.
    public var timestamp: Double

    /// Creates a recorded exemplar.
    public init(labels: [Label], value: Double, timestamp: Double) {
        self.labels = labels
        self.value = value
        self.timestamp = timestamp
    }

    package init(_ e: ExemplarFile.Exemplar) {
        self.init(labels: e.labels, value: e.value, timestamp: e.timestamp)
    }
}
