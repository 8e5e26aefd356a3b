import PromMetrics

/// Renders metric families into the bytes of an exposition format, with no I/O.
///
/// The output is byte for byte what prometheus_client 0.26.0 writes for the same families:
/// `prometheus_client.exposition.generate_latest` for ``ExpositionFormat/prometheusText`` and
/// `prometheus_client.openmetrics.exposition.generate_latest` for
/// ``ExpositionFormat/openMetrics``. Families are written in the order given; labels are
/// written sorted by name (by code point), as prometheus_client sorts them.
///
/// ```swift
/// var body: [UInt8] = []
/// let choice = NegotiatedExposition(acceptHeader: request.accept)
/// Exposition.render(families, format: choice.format, escaping: choice.escaping, into: &body)
/// // respond with body and choice.contentType
/// ```
///
/// One deliberate difference: in OpenMetrics, prometheus_client escapes *sample* names with
/// the label-name character set, so under `underscores` the `:` of `job:requests` becomes `_`
/// in the samples but not in `# TYPE` (and under `values` every sample name gets `U__`); the
/// samples then fall outside their family (the strict parser reads them as separate `unknown`
/// families). Here sample names are escaped with the metric-name rules used for the family
/// name, so the two always agree. For names without `:` under `underscores` and `allow-utf-8`
/// the bytes are identical.
public enum Exposition {
    /// Appends the exposition of `families` to `buffer`.
    ///
    /// The buffer is not cleared, so a server can keep one buffer across scrapes
    /// (`removeAll(keepingCapacity: true)` before each) and avoid growing it again.
    ///
    /// - Parameters:
    ///   - families: The families, in output order.
    ///   - format: Prometheus text 0.0.4 or OpenMetrics 1.0.0.
    ///   - escaping: How names outside the legacy character set are written.
    ///   - buffer: The buffer the UTF-8 bytes are appended to.
    public static func render(_ families: [MetricFamilySnapshot], format: ExpositionFormat,
                              escaping: NameEscaping = .underscores, into buffer: inout [UInt8]) {
        var sampleCount = 0
        for family in families { sampleCount += family.samples.count }
        buffer.reserveCapacity(buffer.count + families.count * 96 + sampleCount * 64 + 8)
        switch format {
        case .prometheusText:
            for family in families { renderText(family, escaping: escaping, into: &buffer) }
        case .openMetrics:
            for family in families { renderOpenMetrics(family, escaping: escaping, into: &buffer) }
            ExpositionBytes.append("# EOF\n", to: &buffer)
        }
    }

    /// Returns the exposition of `families` as bytes.
    /// - Parameters:
    ///   - families: The families, in output order.
    ///   - format: Prometheus text 0.0.4 or OpenMetrics 1.0.0.
    ///   - escaping: How names outside the legacy character set are written.
    /// - Returns: The UTF-8 bytes of the exposition.
    public static func render(_ families: [MetricFamilySnapshot], format: ExpositionFormat,
                              escaping: NameEscaping = .underscores) -> [UInt8] {
        var buffer: [UInt8] = []
        render(families, format: format, escaping: escaping, into: &buffer)
        return buffer
    }

    // MARK: - Prometheus text 0.0.4

    /// Samples that only OpenMetrics has; the text format moves them into gauges of their own
    /// after the family, in this (sorted) order, as prometheus_client does.
    private static let openMetricsOnlySuffixes = ["_created", "_gcount", "_gsum"]

    private static func renderText(_ family: MetricFamilySnapshot, escaping: NameEscaping,
                                   into buffer: inout [UInt8]) {
        let headerName: String
        let typeName: StaticString
        switch family.kind {
        case .counter: headerName = family.name + "_total"; typeName = "counter"
        case .gauge: headerName = family.name; typeName = "gauge"
        case .histogram: headerName = family.name; typeName = "histogram"
        case .summary: headerName = family.name; typeName = "summary"
        case .info: headerName = family.name + "_info"; typeName = "gauge"
        case .stateset: headerName = family.name; typeName = "gauge"
        case .unknown: headerName = family.name; typeName = "untyped"
        }
        appendTextHeader(name: headerName, help: family.help, type: typeName, escaping: escaping, into: &buffer)

        // Which of the three suffixes appear (bit i for openMetricsOnlySuffixes[i]).
        var deferred: UInt8 = 0
        let familyLength = family.name.utf8.count
        for sample in family.samples {
            if let index = openMetricsOnlyIndex(sample.name, familyName: family.name, familyLength: familyLength) {
                deferred |= 1 << index
                continue
            }
            appendSample(sample, escaping: escaping, into: &buffer)
        }
        guard deferred != 0 else { return }
        for (index, suffix) in openMetricsOnlySuffixes.enumerated() where deferred & (1 << index) != 0 {
            appendTextHeader(name: family.name + suffix, help: family.help, type: "gauge", escaping: escaping,
                             into: &buffer)
            for sample in family.samples
            where openMetricsOnlyIndex(sample.name, familyName: family.name, familyLength: familyLength) == index {
                appendSample(sample, escaping: escaping, into: &buffer)
            }
        }
    }

    @inline(__always)
    private static func openMetricsOnlyIndex(_ sampleName: String, familyName: String, familyLength: Int) -> Int? {
        let extra = sampleName.utf8.count - familyLength
        guard extra == 5 || extra == 7 || extra == 8 else { return nil }  // _gsum, _gcount, _created
        for (index, suffix) in openMetricsOnlySuffixes.enumerated()
        where suffix.utf8.count == extra && sampleName.hasSuffix(suffix) && sampleName.hasPrefix(familyName) {
            return index
        }
        return nil
    }

    private static func appendTextHeader(name: String, help: String, type: StaticString, escaping: NameEscaping,
                                         into buffer: inout [UInt8]) {
        ExpositionBytes.append("# HELP ", to: &buffer)
        ExpositionNames.append(name, metric: true, escaping: escaping, to: &buffer)
        buffer.append(ExpositionBytes.space)
        ExpositionBytes.appendEscaped(help, quote: false, to: &buffer)
        ExpositionBytes.append("\n# TYPE ", to: &buffer)
        ExpositionNames.append(name, metric: true, escaping: escaping, to: &buffer)
        buffer.append(ExpositionBytes.space)
        ExpositionBytes.append(type, to: &buffer)
        buffer.append(ExpositionBytes.newline)
    }

    // MARK: - OpenMetrics 1.0.0

    private static func renderOpenMetrics(_ family: MetricFamilySnapshot, escaping: NameEscaping,
                                          into buffer: inout [UInt8]) {
        let typeName: StaticString
        switch family.kind {
        case .counter: typeName = "counter"
        case .gauge: typeName = "gauge"
        case .histogram: typeName = "histogram"
        case .summary: typeName = "summary"
        case .info: typeName = "info"
        case .stateset: typeName = "stateset"
        case .unknown: typeName = "unknown"
        }
        ExpositionBytes.append("# HELP ", to: &buffer)
        ExpositionNames.append(family.name, metric: true, escaping: escaping, to: &buffer)
        buffer.append(ExpositionBytes.space)
        ExpositionBytes.appendEscaped(family.help, quote: true, to: &buffer)
        ExpositionBytes.append("\n# TYPE ", to: &buffer)
        ExpositionNames.append(family.name, metric: true, escaping: escaping, to: &buffer)
        buffer.append(ExpositionBytes.space)
        ExpositionBytes.append(typeName, to: &buffer)
        buffer.append(ExpositionBytes.newline)
        if let unit = family.unit, !unit.isEmpty {
            ExpositionBytes.append("# UNIT ", to: &buffer)
            ExpositionNames.append(family.name, metric: true, escaping: escaping, to: &buffer)
            buffer.append(ExpositionBytes.space)
            ExpositionBytes.append(unit, to: &buffer)
            buffer.append(ExpositionBytes.newline)
        }
        for sample in family.samples { appendSample(sample, escaping: escaping, into: &buffer) }
    }

    // MARK: - Sample lines (the same in both formats)

    /// `name{label="value",...} value\n`, or `{"name",label="value",...} value\n` for a
    /// non-legacy name under `allow-utf-8`.
    @inline(__always)
    private static func appendSample(_ sample: Sample, escaping: NameEscaping, into buffer: inout [UInt8]) {
        if escaping == .allowUTF8 && !ExpositionNames.isLegacy(sample.name, metric: true) {
            buffer.append(ExpositionBytes.openBrace)
            ExpositionNames.append(sample.name, metric: true, escaping: escaping, to: &buffer)
            if !sample.labels.isEmpty {
                buffer.append(ExpositionBytes.comma)
                appendLabels(sample.labels, escaping: escaping, into: &buffer)
            }
            buffer.append(ExpositionBytes.closeBrace)
        } else {
            ExpositionNames.append(sample.name, metric: true, escaping: escaping, to: &buffer)
            if !sample.labels.isEmpty {
                buffer.append(ExpositionBytes.openBrace)
                appendLabels(sample.labels, escaping: escaping, into: &buffer)
                buffer.append(ExpositionBytes.closeBrace)
            }
        }
        buffer.append(ExpositionBytes.space)
        GoFloat.append(sample.value, to: &buffer)
        buffer.append(ExpositionBytes.newline)
    }

    /// The labels sorted by name, comma-separated, without braces.
    @inline(__always)
    private static func appendLabels(_ labels: [Label], escaping: NameEscaping, into buffer: inout [UInt8]) {
        if isSortedByName(labels) {
            for index in labels.indices {
                if index != labels.startIndex { buffer.append(ExpositionBytes.comma) }
                appendLabel(labels[index], escaping: escaping, into: &buffer)
            }
        } else if labels.count <= 8 {
            // Histogram buckets carry `le` last, so most of them land here: pick the labels in
            // order by selection, which needs no allocation for the handful of labels a series has.
            var previous: Int? = nil
            for position in 0 ..< labels.count {
                var best: Int? = nil
                for candidate in labels.indices {
                    if let previous, !comesAfter(candidate, previous, in: labels) { continue }
                    if let current = best, !nameLess(labels[candidate].name, labels[current].name) { continue }
                    best = candidate
                }
                guard let chosen = best else { break }
                if position != 0 { buffer.append(ExpositionBytes.comma) }
                appendLabel(labels[chosen], escaping: escaping, into: &buffer)
                previous = chosen
            }
        } else {
            let sorted = labels.enumerated().sorted { a, b in
                nameLess(a.element.name, b.element.name) || (a.element.name == b.element.name && a.offset < b.offset)
            }
            for (position, item) in sorted.enumerated() {
                if position != 0 { buffer.append(ExpositionBytes.comma) }
                appendLabel(item.element, escaping: escaping, into: &buffer)
            }
        }
    }

    /// The order used by the selection above: by name, then by position (so duplicate names,
    /// which a well-formed sample never has, are still each written once).
    @inline(__always)
    private static func comesAfter(_ candidate: Int, _ previous: Int, in labels: [Label]) -> Bool {
        let a = labels[candidate].name, b = labels[previous].name
        if nameLess(b, a) { return true }
        return a == b && candidate > previous
    }

    @inline(__always)
    private static func appendLabel(_ label: Label, escaping: NameEscaping, into buffer: inout [UInt8]) {
        ExpositionNames.append(label.name, metric: false, escaping: escaping, to: &buffer)
        buffer.append(ExpositionBytes.equals)
        buffer.append(ExpositionBytes.quote)
        ExpositionBytes.appendEscaped(label.value, quote: true, to: &buffer)
        buffer.append(ExpositionBytes.quote)
    }

    @inline(__always)
    private static func isSortedByName(_ labels: [Label]) -> Bool {
        var index = labels.startIndex + 1
        while index < labels.endIndex {
            if nameLess(labels[index].name, labels[index - 1].name) { return false }
            index += 1
        }
        return true
    }

    /// Code-point order, as Python's `sorted` on strings: UTF-8 byte order is code-point order.
    @inline(__always)
    static func nameLess(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                let n = min(x.count, y.count)
                var i = 0
                while i < n {
                    if x[i] != y[i] { return x[i] < y[i] }
                    i += 1
                }
                return x.count < y.count
            }
        }
    }
}
