import MmapStore
import PromMetrics

/// The protobuf exposition format: `application/vnd.google.protobuf;
/// proto=io.prometheus.client.MetricFamily; encoding=delimited`, written by hand from the
/// message definitions of `io/prometheus/client/metrics.proto` (prometheus/client_model), with
/// no protobuf library.
///
/// The body is a sequence of `MetricFamily` messages, each preceded by its length as a varint.
/// The messages and fields written (proto2; numbers as in the `.proto`):
///
/// | message | fields |
/// | --- | --- |
/// | `MetricFamily` | 1 `name` string, 2 `help` string, 3 `type` enum, 4 `metric` repeated `Metric`, 5 `unit` string |
/// | `MetricType` | `COUNTER` 0, `GAUGE` 1, `SUMMARY` 2, `UNTYPED` 3, `HISTOGRAM` 4 |
/// | `Metric` | 1 `label` repeated `LabelPair`, 2 `gauge`, 3 `counter`, 4 `summary`, 5 `untyped`, 7 `histogram` |
/// | `LabelPair` | 1 `name` string, 2 `value` string |
/// | `Gauge`, `Untyped` | 1 `value` double |
/// | `Counter` | 1 `value` double, 2 `exemplar` `Exemplar`, 3 `created_timestamp` `Timestamp` |
/// | `Summary` | 1 `sample_count` uint64, 2 `sample_sum` double, 3 `quantile` repeated `Quantile`, 4 `created_timestamp` |
/// | `Quantile` | 1 `quantile` double, 2 `value` double |
/// | `Histogram` | 1 `sample_count` uint64, 2 `sample_sum` double, 3 `bucket` repeated `Bucket`, 4 `sample_count_float` double, 5 `schema` sint32, 6 `zero_threshold` double, 7 `zero_count` uint64, 8 `zero_count_float` double, 9 `negative_span` repeated `BucketSpan`, 10 `negative_delta` repeated sint64, 11 `negative_count` repeated double, 12 `positive_span`, 13 `positive_delta`, 14 `positive_count`, 15 `created_timestamp` |
/// | `Bucket` | 1 `cumulative_count` uint64, 2 `upper_bound` double, 3 `exemplar` `Exemplar`, 4 `cumulative_count_float` double |
/// | `Exemplar` | 1 `label` repeated `LabelPair`, 2 `value` double, 3 `timestamp` `Timestamp` |
/// | `BucketSpan` | 1 `offset` sint32, 2 `length` uint32 |
/// | `google.protobuf.Timestamp` | 1 `seconds` int64, 2 `nanos` int32 |
///
/// Repeated scalars are not packed (proto2's default, what client_golang writes). Every field
/// of a written message is present, zero values included, as client_golang writes them.
///
/// How the model maps, as client_golang and Prometheus expect it:
/// - a counter family is named with `_total`, as its samples are (Prometheus takes the family
///   name as the series name); `_created` goes into `created_timestamp`;
/// - an info is a gauge named `<name>_info`, a stateset a gauge with one series per state, an
///   unknown family `UNTYPED`;
/// - a summary's or histogram's samples are grouped into one `Metric` per run of samples with
///   the same labels (the family's samples are grouped by label set), not counting `quantile`
///   and `le`; a histogram series with a native part (``NativeHistogramSnapshot``, matched by
///   labels) carries both in one `Histogram`, and a native-only series follows the classic ones;
/// - a sample that fits none of these (such as `_gsum`) becomes a family of its own after its
///   family, as in the text format: a gauge for `_created`, `_gcount` and `_gsum`, untyped
///   otherwise;
/// - a family with no series is left out, as client_golang leaves it out.
///
/// Names are escaped under the negotiated ``NameEscaping`` as in the text formats, except that
/// ``NameEscaping/allowUTF8`` writes them unquoted: a protobuf string needs no quoting.
enum ProtobufExposition {
    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
    }

    enum MetricType: UInt64 {
        case counter = 0
        case gauge = 1
        case summary = 2
        case untyped = 3
        case histogram = 4
    }

    enum Field {
        static let familyName: UInt64 = 1, familyHelp: UInt64 = 2, familyType: UInt64 = 3
        static let familyMetric: UInt64 = 4, familyUnit: UInt64 = 5
        static let metricLabel: UInt64 = 1, metricGauge: UInt64 = 2, metricCounter: UInt64 = 3
        static let metricSummary: UInt64 = 4, metricUntyped: UInt64 = 5, metricHistogram: UInt64 = 7
        static let labelName: UInt64 = 1, labelValue: UInt64 = 2
        /// `Gauge.value`, `Untyped.value`, `Counter.value`.
        static let value: UInt64 = 1
        static let counterCreated: UInt64 = 3
        static let counterExemplar: UInt64 = 2, bucketExemplar: UInt64 = 3
        static let exemplarValue: UInt64 = 2, exemplarTimestamp: UInt64 = 3
        static let summaryCount: UInt64 = 1, summarySum: UInt64 = 2, summaryQuantile: UInt64 = 3
        static let summaryCreated: UInt64 = 4
        static let quantileQuantile: UInt64 = 1, quantileValue: UInt64 = 2
        static let histogramCount: UInt64 = 1, histogramSum: UInt64 = 2, histogramBucket: UInt64 = 3
        static let histogramCountFloat: UInt64 = 4, histogramSchema: UInt64 = 5
        static let histogramZeroThreshold: UInt64 = 6, histogramZeroCount: UInt64 = 7
        static let histogramZeroCountFloat: UInt64 = 8
        static let histogramNegativeSpan: UInt64 = 9, histogramNegativeDelta: UInt64 = 10
        static let histogramNegativeCount: UInt64 = 11
        static let histogramPositiveSpan: UInt64 = 12, histogramPositiveDelta: UInt64 = 13
        static let histogramPositiveCount: UInt64 = 14
        static let histogramCreated: UInt64 = 15
        static let bucketCumulativeCount: UInt64 = 1, bucketUpperBound: UInt64 = 2
        static let bucketCumulativeCountFloat: UInt64 = 4
        static let spanOffset: UInt64 = 1, spanLength: UInt64 = 2
        static let timestampSeconds: UInt64 = 1, timestampNanos: UInt64 = 2
    }

    /// What a sample name adds to its family name.
    enum SampleRole {
        case exact, total, created, bucket, count, sum, info, gcount, gsum, other
    }

    private static let suffixes: [(StaticString, SampleRole)] = [
        ("_total", .total), ("_created", .created), ("_bucket", .bucket), ("_count", .count), ("_sum", .sum),
        ("_info", .info), ("_gcount", .gcount), ("_gsum", .gsum),
    ]

    /// The role of `sample` in the family `family`, comparing bytes.
    @inline(__always)
    static func role(_ sample: String, family: String) -> SampleRole {
        sample.withUTF8Bytes { s in
            family.withUTF8Bytes { f in
                guard s.count >= f.count else { return .other }
                for i in 0 ..< f.count where s[i] != f[i] { return .other }
                let extra = s.count - f.count
                if extra == 0 { return .exact }
                for (suffix, role) in suffixes where suffix.utf8CodeUnitCount == extra {
                    let tail = suffix.utf8Start
                    var equal = true
                    for i in 0 ..< extra where s[f.count + i] != tail[i] {
                        equal = false
                        break
                    }
                    if equal { return role }
                }
                return .other
            }
        }
    }

    // MARK: - Families

    /// Appends the delimited `MetricFamily` message(s) of `family`: nothing for a family with
    /// no series, more than one when stray samples need families of their own.
    static func render(_ family: MetricFamilySnapshot, escaping: NameEscaping, into w: inout ByteWriter) {
        var strays: [Int] = []
        let familyStart = w.count
        let frame = w.beginLengthPrefixed()
        let metrics: Int
        switch family.kind {
        case .counter:
            writeHeader(family, name: family.name + "_total", type: .counter, escaping: escaping, into: &w)
            metrics = writeCounters(family, escaping: escaping, strays: &strays, into: &w)
        case .gauge, .stateset:
            writeHeader(family, name: family.name, type: .gauge, escaping: escaping, into: &w)
            metrics = writeValues(family, role: .exact, field: Field.metricGauge, escaping: escaping, strays: &strays, into: &w)
        case .info:
            writeHeader(family, name: family.name + "_info", type: .gauge, escaping: escaping, into: &w)
            metrics = writeValues(family, role: .info, field: Field.metricGauge, escaping: escaping, strays: &strays, into: &w)
        case .unknown:
            writeHeader(family, name: family.name, type: .untyped, escaping: escaping, into: &w)
            metrics = writeValues(family, role: .exact, field: Field.metricUntyped, escaping: escaping, strays: &strays, into: &w)
        case .summary:
            writeHeader(family, name: family.name, type: .summary, escaping: escaping, into: &w)
            metrics = writeSummaries(family, escaping: escaping, strays: &strays, into: &w)
        case .histogram:
            writeHeader(family, name: family.name, type: .histogram, escaping: escaping, into: &w)
            metrics = writeHistograms(family, escaping: escaping, strays: &strays, into: &w)
        }
        if let unit = family.unit, !unit.isEmpty { w.writeStringField(Field.familyUnit, unit) }
        if metrics == 0 {
            w.rewind(to: familyStart)
        } else {
            w.endLengthPrefixed(frame)
        }
        if !strays.isEmpty { writeStrays(family, strays.sorted(), escaping: escaping, into: &w) }
    }

    private static func writeHeader(_ family: MetricFamilySnapshot, name: String, type: MetricType,
                                    escaping: NameEscaping, into w: inout ByteWriter) {
        writeName(Field.familyName, name, metric: true, escaping: escaping, into: &w)
        w.writeStringField(Field.familyHelp, family.help)
        w.writeUInt64Field(Field.familyType, type.rawValue)
    }

    /// Counters: one `Metric` per `_total` sample, with the `_created` sample that follows it
    /// (same labels) as its creation time.
    private static func writeCounters(_ family: MetricFamilySnapshot, escaping: NameEscaping, strays: inout [Int],
                                      into w: inout ByteWriter) -> Int {
        var metrics = 0
        family.samples.withUnsafeBufferPointer { samples in
            let familyName = family.name
            var i = 0
            while i < samples.count {
                defer { i += 1 }
                guard role(samples[i].name, family: familyName) == .total else {
                    strays.append(i)
                    continue
                }
                let metric = w.beginMessageField(Field.familyMetric)
                writeLabels(samples[i].labels, excluding: nil, escaping: escaping, into: &w)
                let counter = w.beginMessageField(Field.metricCounter)
                w.writeDoubleField(Field.value, samples[i].value)
                if let e = samples[i].exemplar { writeExemplar(e, field: Field.counterExemplar, escaping: escaping, into: &w) }
                if i + 1 < samples.count, role(samples[i + 1].name, family: familyName) == .created,
                   SeriesLabels.equal(samples[i + 1].labels, samples[i].labels, excluding: nil) {
                    w.writeTimestampField(Field.counterCreated, seconds: samples[i + 1].value)
                    i += 1
                }
                w.endLengthPrefixed(counter)
                w.endLengthPrefixed(metric)
                metrics += 1
            }
        }
        return metrics
    }

    /// Gauges, infos, statesets, unknowns: one `Metric` per sample named as the family's
    /// samples are, its value in the message `field` (`Gauge` or `Untyped`).
    private static func writeValues(_ family: MetricFamilySnapshot, role expected: SampleRole, field: UInt64,
                                    escaping: NameEscaping, strays: inout [Int], into w: inout ByteWriter) -> Int {
        var metrics = 0
        family.samples.withUnsafeBufferPointer { samples in
            let familyName = family.name
            for i in samples.indices {
                guard role(samples[i].name, family: familyName) == expected else {
                    strays.append(i)
                    continue
                }
                let metric = w.beginMessageField(Field.familyMetric)
                writeLabels(samples[i].labels, excluding: nil, escaping: escaping, into: &w)
                let value = w.beginMessageField(field)
                w.writeDoubleField(Field.value, samples[i].value)
                w.endLengthPrefixed(value)
                w.endLengthPrefixed(metric)
                metrics += 1
            }
        }
        return metrics
    }

    /// Summaries: one `Metric` per run of samples with the same labels (not counting
    /// `quantile`): `_count`, `_sum`, quantile samples and `_created`.
    private static func writeSummaries(_ family: MetricFamilySnapshot, escaping: NameEscaping, strays: inout [Int],
                                       into w: inout ByteWriter) -> Int {
        var metrics = 0
        var quantiles: [(index: Int, quantile: Double)] = []
        family.samples.withUnsafeBufferPointer { samples in
            forEachSeries(samples, family: family.name, excluding: "quantile", strays: &strays, starting: {
                quantiles.removeAll(keepingCapacity: true)
            }, other: { i, role in
                guard role == .exact, let label = samples[i].labels.last(where: { SeriesLabels.isNamed($0, "quantile") }),
                      let quantile = parseFloat(label.value) else { return false }
                quantiles.append((i, quantile))
                return true
            }) { series in
                let (start, count, sum, created) = (series.start, series.count, series.sum, series.created)
                guard count >= 0 || sum >= 0 || !quantiles.isEmpty else { return }
                let metric = w.beginMessageField(Field.familyMetric)
                writeLabels(samples[start].labels, excluding: "quantile", escaping: escaping, into: &w)
                let summary = w.beginMessageField(Field.metricSummary)
                // `sample_count` is an integer with no float twin: a fractional or negative count
                // (which no summary records) is rounded down into its range.
                if count >= 0 { w.writeUInt64Field(Field.summaryCount, clampedUInt64(samples[count].value)) }
                if sum >= 0 { w.writeDoubleField(Field.summarySum, samples[sum].value) }
                for (index, quantile) in quantiles {
                    let message = w.beginMessageField(Field.summaryQuantile)
                    w.writeDoubleField(Field.quantileQuantile, quantile)
                    w.writeDoubleField(Field.quantileValue, samples[index].value)
                    w.endLengthPrefixed(message)
                }
                if created >= 0 { w.writeTimestampField(Field.summaryCreated, seconds: samples[created].value) }
                w.endLengthPrefixed(summary)
                w.endLengthPrefixed(metric)
                metrics += 1
            }
        }
        return metrics
    }

    /// Histograms: one `Metric` per run of samples with the same labels (not counting `le`),
    /// with the native part of the same series when there is one; then the native-only series.
    private static func writeHistograms(_ family: MetricFamilySnapshot, escaping: NameEscaping, strays: inout [Int],
                                        into w: inout ByteWriter) -> Int {
        var natives = NativeHistogramMatch(family.nativeHistograms)
        var metrics = 0
        // Reused across series: the bucket list, and the bounds parsed for the previous series,
        // which the next series almost always repeats (parsing `le` is the costly part).
        var buckets: [(index: Int, upperBound: Double)] = []
        var bounds = BoundCache()
        family.samples.withUnsafeBufferPointer { samples in
            forEachSeries(samples, family: family.name, excluding: "le", strays: &strays, starting: {
                buckets.removeAll(keepingCapacity: true)
            }, other: { i, role in
                guard role == .bucket, let label = samples[i].labels.last(where: { SeriesLabels.isNamed($0, "le") }),
                      let bound = bounds.value(label.value, position: buckets.count) else { return false }
                buckets.append((i, bound))
                return true
            }) { series in
                let (start, count, sum, created) = (series.start, series.count, series.sum, series.created)
                guard count >= 0 || sum >= 0 || !buckets.isEmpty else { return }
                let native = natives.take(samples[start].labels)
                let metric = w.beginMessageField(Field.familyMetric)
                writeLabels(samples[start].labels, excluding: "le", escaping: escaping, into: &w)
                let histogram = w.beginMessageField(Field.metricHistogram)
                let integer = native.map { isIntegerHistogram($0) } ?? true
                let countValue = native?.count ?? (count >= 0 ? samples[count].value : nil)
                if let countValue, integer && isWhole(countValue) {
                    w.writeUInt64Field(Field.histogramCount, UInt64(countValue))
                }
                if let sumValue = native?.sum ?? (sum >= 0 ? samples[sum].value : nil) {
                    w.writeDoubleField(Field.histogramSum, sumValue)
                }
                for (index, bound) in buckets {
                    let bucket = w.beginMessageField(Field.histogramBucket)
                    let cumulative = samples[index].value
                    if isWhole(cumulative) { w.writeUInt64Field(Field.bucketCumulativeCount, UInt64(cumulative)) }
                    w.writeDoubleField(Field.bucketUpperBound, bound)
                    if let e = samples[index].exemplar { writeExemplar(e, field: Field.bucketExemplar, escaping: escaping, into: &w) }
                    if !isWhole(cumulative) { w.writeDoubleField(Field.bucketCumulativeCountFloat, cumulative) }
                    w.endLengthPrefixed(bucket)
                }
                if let countValue, !(integer && isWhole(countValue)) {
                    w.writeDoubleField(Field.histogramCountFloat, countValue)
                }
                if let native { writeNativePart(native, integer: integer, into: &w) }
                if created >= 0 { w.writeTimestampField(Field.histogramCreated, seconds: samples[created].value) }
                w.endLengthPrefixed(histogram)
                w.endLengthPrefixed(metric)
                metrics += 1
            }
        }
        for native in natives.remaining() {
            let metric = w.beginMessageField(Field.familyMetric)
            writeLabels(native.labels, excluding: "le", escaping: escaping, into: &w)
            let histogram = w.beginMessageField(Field.metricHistogram)
            let integer = isIntegerHistogram(native)
            if integer { w.writeUInt64Field(Field.histogramCount, UInt64(native.count)) }
            w.writeDoubleField(Field.histogramSum, native.sum)
            if !integer { w.writeDoubleField(Field.histogramCountFloat, native.count) }
            writeNativePart(native, integer: integer, into: &w)
            w.endLengthPrefixed(histogram)
            w.endLengthPrefixed(metric)
            metrics += 1
        }
        return metrics
    }

    /// Where a summary's or histogram's series has its `_count`, `_sum` and `_created` samples
    /// (-1: none), and its first sample.
    private struct SeriesParts {
        var start: Int
        var count = -1, sum = -1, created = -1
    }

    /// Walks the runs of samples with the same labels apart from `label` (`quantile`, `le`):
    /// for each run, `starting`, then `other` for each sample that is not its first `_count`,
    /// `_sum` or `_created` (false: a stray, added to `strays`), then `body`.
    @inline(__always)
    private static func forEachSeries(_ samples: UnsafeBufferPointer<Sample>, family: String, excluding label: StaticString,
                                      strays: inout [Int], starting: () -> Void, other: (Int, SampleRole) -> Bool,
                                      body: (SeriesParts) -> Void) {
        let familyName = family
        var start = 0
        while start < samples.count {
            var end = start + 1
            let groupLabels = samples[start].labels
            while end < samples.count && SeriesLabels.equal(samples[end].labels, groupLabels, excluding: label) {
                end += 1
            }
            var parts = SeriesParts(start: start)
            starting()
            for i in start ..< end {
                let r = role(samples[i].name, family: familyName)
                switch r {
                case .count where parts.count < 0: parts.count = i
                case .sum where parts.sum < 0: parts.sum = i
                case .created where parts.created < 0: parts.created = i
                default: if !other(i, r) { strays.append(i) }
                }
            }
            body(parts)
            start = end
        }
    }

    /// Samples that fit no field of their family's messages, as families of their own: one per
    /// sample name, in order of first appearance; gauges for `_created`, `_gcount` and `_gsum`
    /// (as the text format moves them), untyped otherwise.
    private static func writeStrays(_ family: MetricFamilySnapshot, _ strays: [Int], escaping: NameEscaping,
                                    into w: inout ByteWriter) {
        var done = [Bool](repeating: false, count: strays.count)
        for first in strays.indices where !done[first] {
            let name = family.samples[strays[first]].name
            let type: MetricType
            switch role(name, family: family.name) {
            case .created, .gcount, .gsum: type = .gauge
            default: type = .untyped
            }
            let frame = w.beginLengthPrefixed()
            writeName(Field.familyName, name, metric: true, escaping: escaping, into: &w)
            w.writeStringField(Field.familyHelp, family.help)
            w.writeUInt64Field(Field.familyType, type.rawValue)
            for position in first ..< strays.count where !done[position] {
                let sample = family.samples[strays[position]]
                guard SeriesLabels.bytesEqual(sample.name, name) else { continue }
                done[position] = true
                let metric = w.beginMessageField(Field.familyMetric)
                writeLabels(sample.labels, excluding: nil, escaping: escaping, into: &w)
                let value = w.beginMessageField(type == .gauge ? Field.metricGauge : Field.metricUntyped)
                w.writeDoubleField(Field.value, sample.value)
                w.endLengthPrefixed(value)
                w.endLengthPrefixed(metric)
            }
            w.endLengthPrefixed(frame)
        }
    }

    // MARK: - Names, labels, numbers

    /// An `Exemplar` message as field `field`: labels, value, timestamp.
    private static func writeExemplar(_ e: RecordedExemplar, field: UInt64, escaping: NameEscaping, into w: inout ByteWriter) {
        let message = w.beginMessageField(field)
        writeLabels(e.labels, excluding: nil, escaping: escaping, into: &w)
        w.writeDoubleField(Field.exemplarValue, e.value)
        w.writeTimestampField(Field.exemplarTimestamp, seconds: e.timestamp)
        w.endLengthPrefixed(message)
    }

    /// A metric or label name as a string field, escaped under `escaping`.
    @inline(__always)
    static func writeName(_ field: UInt64, _ name: String, metric: Bool, escaping: NameEscaping,
                          into w: inout ByteWriter) {
        if escaping == .allowUTF8 || (escaping != .dots && ExpositionNames.isLegacy(name, metric: metric)) {
            w.writeStringField(field, name)
            return
        }
        let payload = w.beginMessageField(field)
        ExpositionNames.write(name, metric: metric, escaping: escaping, to: &w)
        w.endLengthPrefixed(payload)
    }

    /// `Metric.label`: the labels sorted by name (as the text formats write them), without the
    /// ones named `excluding`.
    @inline(__always)
    static func writeLabels(_ labels: [Label], excluding: StaticString?, escaping: NameEscaping,
                            into w: inout ByteWriter) {
        labels.withUnsafeBufferPointer { labels in
            if labels.count == 2 {
                // A histogram bucket's `le` after one label: one comparison, as the text renderer.
                let swap = Exposition.nameLess(labels[1].name, labels[0].name)
                writeLabel(labels[swap ? 1 : 0], excluding: excluding, escaping: escaping, into: &w)
                writeLabel(labels[swap ? 0 : 1], excluding: excluding, escaping: escaping, into: &w)
                return
            }
            var sorted = true
            var i = 1
            while i < labels.count {
                if Exposition.nameLess(labels[i].name, labels[i - 1].name) {
                    sorted = false
                    break
                }
                i += 1
            }
            if sorted {
                for index in labels.indices { writeLabel(labels[index], excluding: excluding, escaping: escaping, into: &w) }
                return
            }
            // An insertion sort of the indices on the stack, stable, as the text renderer sorts.
            withUnsafeTemporaryAllocation(of: Int.self, capacity: labels.count) { order in
                for index in labels.indices {
                    var position = index
                    while position > 0 && Exposition.nameLess(labels[index].name, labels[order[position - 1]].name) {
                        order[position] = order[position - 1]
                        position -= 1
                    }
                    order[position] = index
                }
                for position in labels.indices {
                    writeLabel(labels[order[position]], excluding: excluding, escaping: escaping, into: &w)
                }
            }
        }
    }

    @inline(__always)
    private static func writeLabel(_ label: Label, excluding: StaticString?, escaping: NameEscaping,
                                   into w: inout ByteWriter) {
        if let excluding, SeriesLabels.isNamed(label, excluding) { return }
        let pair = w.beginMessageField(Field.metricLabel)
        writeName(Field.labelName, label.name, metric: false, escaping: escaping, into: &w)
        w.writeStringField(Field.labelValue, label.value)
        w.endLengthPrefixed(pair)
    }

    /// The value of an `le` or `quantile` label, as written by `GoFloat` or by Python's
    /// `floatToGoString` (`+Inf`, `1.0`, `1e+06`).
    static func parseFloat(_ text: String) -> Double? {
        let bytes = text.utf8.span
        if !bytes.isEmpty, [0x2B, 0x2D, 0x49, 0x4E].contains(bytes[0]) {  // + - I N
            if SeriesLabels.bytesEqual(text, "+Inf") || SeriesLabels.bytesEqual(text, "Inf") { return .infinity }
            if SeriesLabels.bytesEqual(text, "-Inf") { return -.infinity }
            if SeriesLabels.bytesEqual(text, "NaN") { return .nan }
        }
        return Double(text)
    }

    /// The `le` bounds of the previous series by position: a series' bucket at a position
    /// whose label text is the same bytes reuses the parsed value.
    struct BoundCache {
        private var entries: [(text: String, value: Double)] = []

        mutating func value(_ text: String, position: Int) -> Double? {
            if position < entries.count && SeriesLabels.bytesEqual(entries[position].text, text) {
                return entries[position].value
            }
            guard let value = parseFloat(text) else { return nil }
            if position < entries.count {
                entries[position] = (text, value)
            } else if position == entries.count {
                entries.append((text, value))
            }
            return value
        }
    }

    /// Whether `value` is a whole number a `uint64` and an `int64` delta can both hold.
    @inline(__always)
    static func isWhole(_ value: Double) -> Bool {
        value >= 0 && value < 9_223_372_036_854_775_808.0 && value == value.rounded(.towardZero)
    }

    /// `value` rounded down into `UInt64`'s range; NaN and negatives become 0.
    static func clampedUInt64(_ value: Double) -> UInt64 {
        guard value > 0 else { return 0 }
        guard value < 18_446_744_073_709_551_616.0 else { return .max }
        return UInt64(value.rounded(.down))
    }
}
