import MmapStore
import PromMetrics

/// Renders metric families into the bytes of an exposition format, with no I/O.
///
/// The text output is byte for byte what prometheus_client 0.26.0 writes for the same
/// families: `prometheus_client.exposition.generate_latest` for
/// ``ExpositionFormat/prometheusText`` and
/// `prometheus_client.openmetrics.exposition.generate_latest` for
/// ``ExpositionFormat/openMetrics``. ``ExpositionFormat/protobuf`` writes the delimited
/// `io.prometheus.client.MetricFamily` messages that client_golang writes, including native
/// histograms (``MetricFamilySnapshot/nativeHistograms``), which the text formats cannot
/// express: they write a native series' classic part, or for a series with none its `_count`,
/// `_sum` and `le="+Inf"` bucket. Families are written in the order given; labels are written
/// sorted by name (by code point), as prometheus_client sorts them.
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
    ///   - format: Prometheus text 0.0.4, OpenMetrics 1.0.0 or protobuf.
    ///   - escaping: How names outside the legacy character set are written.
    ///   - buffer: The buffer the bytes are appended to.
    public static func render(_ families: [MetricFamilySnapshot], format: ExpositionFormat,
                              escaping: NameEscaping = .underscores, into buffer: inout [UInt8]) {
        var writer = write(families, format: format, escaping: escaping, log: nil)
        buffer.reserveCapacity(buffer.count + writer.count)
        writer.append(to: &buffer)
    }

    /// The exposition of `families` in a writer; with a `log` (text formats only), where each
    /// sample's value went (``ExpositionCache``).
    static func write(_ families: [MetricFamilySnapshot], format: ExpositionFormat, escaping: NameEscaping,
                      log: UnsafeMutablePointer<ValueLog>?) -> ByteWriter {
        var sampleCount = 0
        for family in families { sampleCount += family.samples.count + family.nativeHistograms.count * 4 }
        var writer = ByteWriter(capacity: families.count * 96 + sampleCount * 80 + 8)
        writer.valueLog = log
        // Native histograms write samples made while rendering, whose values are not logged.
        if families.contains(where: { !$0.nativeHistograms.isEmpty }) { log?.pointee.reusable = false }
        switch format {
        case .prometheusText:
            for (index, family) in families.enumerated() {
                log?.pointee.family = index
                renderText(family, escaping: escaping, into: &writer)
            }
        case .openMetrics:
            for (index, family) in families.enumerated() {
                log?.pointee.family = index
                renderOpenMetrics(family, escaping: escaping, into: &writer)
            }
            writer.write("# EOF\n" as StaticString)
        case .protobuf:
            log?.pointee.reusable = false
            for family in families { ProtobufExposition.render(family, escaping: escaping, into: &writer) }
        }
        return writer
    }

    /// Returns the exposition of `families` as bytes.
    /// - Parameters:
    ///   - families: The families, in output order.
    ///   - format: Prometheus text 0.0.4, OpenMetrics 1.0.0 or protobuf.
    ///   - escaping: How names outside the legacy character set are written.
    /// - Returns: The bytes of the exposition (UTF-8 text for the text formats).
    public static func render(_ families: [MetricFamilySnapshot], format: ExpositionFormat,
                              escaping: NameEscaping = .underscores) -> [UInt8] {
        var buffer: [UInt8] = []
        render(families, format: format, escaping: escaping, into: &buffer)
        return buffer
    }

    // MARK: - Prometheus text 0.0.4

    /// Samples that only OpenMetrics has; the text format moves them into gauges of their own
    /// after the family, in this (sorted) order, as prometheus_client does.
    private static let openMetricsOnlySuffixes: [StaticString] = ["_created", "_gcount", "_gsum"]

    private static func renderText(_ family: MetricFamilySnapshot, escaping: NameEscaping,
                                   into buffer: inout ByteWriter) {
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
        family.samples.withUnsafeBufferPointer { samples in
            buffer.valueLog?.pointee.samples = samples
            defer { buffer.valueLog?.pointee.samples = UnsafeBufferPointer(start: nil, count: 0) }
            if let first = samples.baseAddress {
                for index in samples.indices {
                    if let suffix = openMetricsOnlyIndex(samples[index].name, familyName: family.name,
                                                         familyLength: familyLength) {
                        deferred |= 1 << suffix
                        continue
                    }
                    appendSample(first + index, escaping: escaping, into: &buffer)
                }
            }
            // A native-only histogram has no samples, and still its classic part.
            for sample in classicFallbackSamples(family) { appendSample(sample, escaping: escaping, into: &buffer) }
            guard deferred != 0, let first = samples.baseAddress else { return }
            for (suffix, text) in openMetricsOnlySuffixes.enumerated() where deferred & (1 << suffix) != 0 {
                appendTextHeader(name: family.name + "\(text)", help: family.help, type: "gauge", escaping: escaping,
                                 into: &buffer)
                for index in samples.indices
                where openMetricsOnlyIndex(samples[index].name, familyName: family.name, familyLength: familyLength) == suffix {
                    appendSample(first + index, escaping: escaping, into: &buffer)
                }
            }
        }
    }

    /// Whether `sampleName` is exactly `familyName` + one of ``openMetricsOnlySuffixes``
    /// (compared by bytes, as Python compares code points; `hasSuffix` would compare
    /// canonically equivalent characters).
    @inline(__always)
    private static func openMetricsOnlyIndex(_ sampleName: String, familyName: String, familyLength: Int) -> Int? {
        sampleName.withUTF8Bytes { sample in
            let extra = sample.count - familyLength
            guard extra == 5 || extra == 7 || extra == 8 else { return nil }  // _gsum, _gcount, _created
            let sameFamily = familyName.withUTF8Bytes { family in
                for i in 0 ..< familyLength where sample[i] != family[i] { return false }
                return true
            }
            guard sameFamily else { return nil }
            for (index, suffix) in openMetricsOnlySuffixes.enumerated() where suffix.utf8CodeUnitCount == extra {
                let tail = suffix.utf8Start
                var equal = true
                for i in 0 ..< extra where sample[familyLength + i] != tail[i] {
                    equal = false
                    break
                }
                if equal { return index }
            }
            return nil
        }
    }

    private static func appendTextHeader(name: String, help: String, type: StaticString, escaping: NameEscaping,
                                         into buffer: inout ByteWriter) {
        buffer.write("# HELP " as StaticString)
        ExpositionNames.write(name, metric: true, escaping: escaping, to: &buffer)
        buffer.write(ExpositionBytes.space)
        buffer.writeEscaped(help, quote: false)
        buffer.write("\n# TYPE " as StaticString)
        ExpositionNames.write(name, metric: true, escaping: escaping, to: &buffer)
        buffer.write(ExpositionBytes.space)
        buffer.write(type)
        buffer.write(ExpositionBytes.newline)
    }

    // MARK: - OpenMetrics 1.0.0

    private static func renderOpenMetrics(_ family: MetricFamilySnapshot, escaping: NameEscaping,
                                          into buffer: inout ByteWriter) {
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
        buffer.write("# HELP " as StaticString)
        ExpositionNames.write(family.name, metric: true, escaping: escaping, to: &buffer)
        buffer.write(ExpositionBytes.space)
        buffer.writeEscaped(family.help, quote: true)
        buffer.write("\n# TYPE " as StaticString)
        ExpositionNames.write(family.name, metric: true, escaping: escaping, to: &buffer)
        buffer.write(ExpositionBytes.space)
        buffer.write(typeName)
        buffer.write(ExpositionBytes.newline)
        if let unit = family.unit, !unit.isEmpty {
            buffer.write("# UNIT " as StaticString)
            ExpositionNames.write(family.name, metric: true, escaping: escaping, to: &buffer)
            buffer.write(ExpositionBytes.space)
            buffer.write(unit)
            buffer.write(ExpositionBytes.newline)
        }
        let withoutSum = family.kind == .histogram ? seriesWithNegativeBuckets(family) : []
        family.samples.withUnsafeBufferPointer { samples in
            buffer.valueLog?.pointee.samples = samples
            defer { buffer.valueLog?.pointee.samples = UnsafeBufferPointer(start: nil, count: 0) }
            guard let first = samples.baseAddress else { return }
            for index in samples.indices {
                if !withoutSum.isEmpty, samples[index].name == family.name + "_sum" || samples[index].name == family.name + "_count",
                   withoutSum.contains(samples[index].labels.sorted { nameLess($0.name, $1.name) }) {
                    continue
                }
                if family.kind == .summary, isNegativeSummaryValue(samples[index], family: family.name) {
                    // Which samples are written depends on a value here, not only on names.
                    buffer.valueLog?.pointee.reusable = false
                    continue
                }
                appendSample(first + index, escaping: escaping, exemplar: true, into: &buffer)
            }
        }
        for sample in classicFallbackSamples(family) { appendSample(sample, escaping: escaping, into: &buffer) }
    }

    /// Whether `sample` is a negative quantile or `_sum` of summary `family`: OpenMetrics 1.0
    /// (section Summary) makes both non-negative (prometheus_client's strict parser refuses
    /// "Quantile values cannot be negative" and "Counter-like samples cannot be negative"), so
    /// the OpenMetrics body leaves them out; text 0.0.4 and protobuf keep them.
    private static func isNegativeSummaryValue(_ sample: Sample, family: String) -> Bool {
        sample.value < 0 && (sample.name == family || sample.name == family + "_sum")
    }

    /// The label sets (without `le`) of a histogram's series that have a bucket with a negative
    /// bound. OpenMetrics 1.0 forbids their `_sum` (section Histogram), and a `_count` appears
    /// if and only if the `_sum` does (section Text format, Histogram), so both are left out;
    /// the count remains the `+Inf` bucket. prometheus_client's writer emits them and its own
    /// strict parser then rejects the body. Empty, without allocating, for the usual histogram
    /// whose bounds are all positive.
    private static func seriesWithNegativeBuckets(_ family: MetricFamilySnapshot) -> Set<[Label]> {
        var out: Set<[Label]> = []
        let bucketName = family.name + "_bucket"
        for sample in family.samples where sample.name == bucketName {
            guard let le = sample.labels.first(where: { $0.name == "le" }), le.value.utf8.first == UInt8(ascii: "-"),
                  let bound = Double(le.value), bound < 0 else { continue }
            out.insert(sample.labels.filter { $0.name != "le" }.sorted { nameLess($0.name, $1.name) })
        }
        return out
    }

    // MARK: - Sample lines (the same in both formats)

    /// `name{label="value",...} value\n`, or `{"name",label="value",...} value\n` for a
    /// non-legacy name under `allow-utf-8`; with `exemplar` (OpenMetrics only), the sample's
    /// exemplar, if any, before the newline: ` # {trace_id="..."} value timestamp`.
    @inline(__always)
    private static func appendSample(_ sample: borrowing Sample, escaping: NameEscaping, exemplar: Bool = false, into buffer: inout ByteWriter) {
        withUnsafePointer(to: sample) { appendSample($0, escaping: escaping, exemplar: exemplar, into: &buffer) }
    }

    /// The same, for a sample in a buffer the caller holds for the duration of the call.
    ///
    /// The loops over a family's samples call this one. Passed by value (`borrowing` or not),
    /// each sample was copied out of the buffer into a temporary and destroyed after the call,
    /// about 190 instructions of retains and releases per sample, and the function was not
    /// inlined; by pointer it is inlined into the loop, and the fields are read in place.
    private static func appendSample(_ pointer: UnsafePointer<Sample>, escaping: NameEscaping, exemplar: Bool = false,
                                     into buffer: inout ByteWriter) {
        let sample = pointer.pointee
        if escaping == .allowUTF8 && !ExpositionNames.isLegacy(sample.name, metric: true) {
            buffer.write(ExpositionBytes.openBrace)
            ExpositionNames.write(sample.name, metric: true, escaping: escaping, to: &buffer)
            if !sample.labels.isEmpty {
                buffer.write(ExpositionBytes.comma)
                appendLabels(sample.labels, escaping: escaping, into: &buffer)
            }
            buffer.write(ExpositionBytes.closeBrace)
        } else {
            ExpositionNames.write(sample.name, metric: true, escaping: escaping, to: &buffer)
            if !sample.labels.isEmpty {
                buffer.write(ExpositionBytes.openBrace)
                appendLabels(sample.labels, escaping: escaping, into: &buffer)
                buffer.write(ExpositionBytes.closeBrace)
            }
        }
        buffer.write(ExpositionBytes.space)
        let valueStart = buffer.count
        buffer.writeValue(sample.value)
        if let log = buffer.valueLog { log.pointee.record(pointer, start: valueStart, end: buffer.count) }
        if exemplar, let e = sample.exemplar {
            // The exemplar's value and time change between scrapes, outside the logged slots.
            buffer.valueLog?.pointee.reusable = false
            buffer.write(" # {" as StaticString)
            appendLabels(e.labels, escaping: escaping, exemplar: true, into: &buffer)
            buffer.write("} " as StaticString)
            buffer.writeValue(e.value)
            buffer.write(ExpositionBytes.space)
            // Shortest round-trip decimal (`1700000000.25`), as Python prints the time.
            buffer.write(String(e.timestamp))
        }
        buffer.write(ExpositionBytes.newline)
    }

    /// The labels sorted by name, comma-separated, without braces. A sample's label names
    /// follow prometheus_client's reserved-name rule (``ExpositionNames/writeTextLabelName(_:escaping:to:)``);
    /// an exemplar's (`exemplar`), which prometheus_client writes as they are, do not.
    @inline(__always)
    private static func appendLabels(_ labels: borrowing [Label], escaping: NameEscaping, exemplar: Bool = false,
                                     into buffer: inout ByteWriter) {
        labels.withUnsafeBufferPointer { labels in
            if labels.count == 2 {
                // The usual unsorted case, a histogram bucket's `le` after one label: one
                // comparison. (Equal names keep their order, as the stable sort below keeps them.)
                let swap = nameLess(labels[1].name, labels[0].name)
                appendLabel(labels[swap ? 1 : 0], escaping: escaping, exemplar: exemplar, into: &buffer)
                buffer.write(ExpositionBytes.comma)
                appendLabel(labels[swap ? 0 : 1], escaping: escaping, exemplar: exemplar, into: &buffer)
                return
            }
            if isSortedByName(labels) {
                for index in labels.indices {
                    if index != 0 { buffer.write(ExpositionBytes.comma) }
                    appendLabel(labels[index], escaping: escaping, exemplar: exemplar, into: &buffer)
                }
                return
            }
            // Typically a histogram bucket, whose `le` comes last: an insertion sort of the
            // indices, on the stack, puts it in place with a handful of comparisons. Stable, so
            // duplicate names (which a well-formed sample never has) keep their order.
            withUnsafeTemporaryAllocation(of: Int.self, capacity: labels.count) { order in
                for index in labels.indices {
                    var position = index
                    while position > 0 && nameLess(labels[index].name, labels[order[position - 1]].name) {
                        order[position] = order[position - 1]
                        position -= 1
                    }
                    order[position] = index
                }
                for position in labels.indices {
                    if position != 0 { buffer.write(ExpositionBytes.comma) }
                    appendLabel(labels[order[position]], escaping: escaping, exemplar: exemplar, into: &buffer)
                }
            }
        }
    }

    @inline(__always)
    private static func appendLabel(_ label: borrowing Label, escaping: NameEscaping, exemplar: Bool,
                                    into buffer: inout ByteWriter) {
        if exemplar {
            ExpositionNames.write(label.name, metric: false, escaping: escaping, to: &buffer)
        } else {
            ExpositionNames.writeTextLabelName(label.name, escaping: escaping, to: &buffer)
        }
        buffer.write(ExpositionBytes.equals)
        buffer.write(ExpositionBytes.quote)
        buffer.writeEscaped(label.value, quote: true)
        buffer.write(ExpositionBytes.quote)
    }

    @inline(__always)
    private static func isSortedByName(_ labels: UnsafeBufferPointer<Label>) -> Bool {
        var index = 1
        while index < labels.count {
            if nameLess(labels[index].name, labels[index - 1].name) { return false }
            index += 1
        }
        return true
    }

    /// Code-point order, as Python's `sorted` on strings: UTF-8 byte order is code-point order.
    @inline(__always)
    static func nameLess(_ a: String, _ b: String) -> Bool {
        a.withUTF8Bytes { x in
            b.withUTF8Bytes { y in
                let n = min(x.count, y.count)
                var i = 0
                while i < n {
                    let p = x[i], q = y[i]
                    if p != q { return p < q }
                    i += 1
                }
                return x.count < y.count
            }
        }
    }
}
