import MmapStore
import PromMetrics

// Native histograms in the exposition formats: their protobuf encoding (spans, deltas, the zero
// bucket), how a native series finds the classic part of the same series, and what the text
// formats write for a series that has no classic part.

/// The native series of one histogram family, handed out to the classic series with the same
/// labels, each at most once.
struct NativeHistogramMatch {
    private let natives: [NativeHistogramSnapshot]
    private var taken: [Bool]
    /// Label key → the first native series with those labels; built only when there are natives.
    private var byLabels: [[UInt8]: Int] = [:]

    init(_ natives: [NativeHistogramSnapshot]) {
        self.natives = natives
        taken = [Bool](repeating: false, count: natives.count)
        for (index, native) in natives.enumerated() {
            let key = SeriesLabels.key(native.labels, excluding: "le")
            if byLabels[key] == nil { byLabels[key] = index }
        }
    }

    /// The native series with the labels `labels` (not counting `le`), unless already taken.
    mutating func take(_ labels: [Label]) -> NativeHistogramSnapshot? {
        guard !natives.isEmpty, let index = byLabels[SeriesLabels.key(labels, excluding: "le")], !taken[index] else {
            return nil
        }
        taken[index] = true
        return natives[index]
    }

    /// The native series no classic series took, in their order.
    func remaining() -> [NativeHistogramSnapshot] {
        natives.indices.filter { !taken[$0] }.map { natives[$0] }
    }
}

extension ProtobufExposition {
    /// Whether every count of `native` is a whole number, so that it is written as an integer
    /// histogram (`zero_count`, deltas) rather than a float one (`zero_count_float`, counts).
    static func isIntegerHistogram(_ native: NativeHistogramSnapshot) -> Bool {
        isWhole(native.count) && isWhole(native.zeroCount)
            && native.positiveBuckets.allSatisfy { isWhole($0.count) }
            && native.negativeBuckets.allSatisfy { isWhole($0.count) }
    }

    /// The native fields of a `Histogram` message (schema to positive buckets, fields 5 to 14);
    /// the caller writes the count and the sum.
    ///
    /// Each run of consecutive bucket indices becomes one span; a span's offset is the gap
    /// after the previous span (the first span's offset is its first index), and a bucket's
    /// delta is its count minus the previous bucket's, across spans, starting from zero. So
    /// buckets at -2, -1, 3, 4, 5 make the spans (-2, 2) and (3, 3). A histogram with no
    /// buckets, no zero-bucket observations and a zero threshold of 0 gets one empty positive
    /// span, the marker Prometheus needs to tell it from a classic histogram.
    static func writeNativePart(_ native: NativeHistogramSnapshot, integer: Bool, into w: inout ByteWriter) {
        w.writeSignedField(Field.histogramSchema, Int64(native.schema))
        w.writeDoubleField(Field.histogramZeroThreshold, native.zeroThreshold)
        if integer {
            w.writeUInt64Field(Field.histogramZeroCount, UInt64(native.zeroCount))
        } else {
            w.writeDoubleField(Field.histogramZeroCountFloat, native.zeroCount)
        }
        let negative = normalized(native.negativeBuckets)
        let positive = normalized(native.positiveBuckets)
        writeBuckets(negative, spanField: Field.histogramNegativeSpan,
                     countField: integer ? Field.histogramNegativeDelta : Field.histogramNegativeCount,
                     integer: integer, into: &w)
        writeBuckets(positive, spanField: Field.histogramPositiveSpan,
                     countField: integer ? Field.histogramPositiveDelta : Field.histogramPositiveCount,
                     integer: integer, into: &w)
        if positive.isEmpty && negative.isEmpty && native.zeroThreshold == 0 && native.zeroCount == 0 {
            let span = w.beginMessageField(Field.histogramPositiveSpan)
            w.writeSignedField(Field.spanOffset, 0)
            w.writeUInt64Field(Field.spanLength, 0)
            w.endLengthPrefixed(span)
        }
    }

    /// The spans of `buckets`, then their deltas (`integer`) or absolute counts.
    private static func writeBuckets(_ buckets: [NativeHistogramSnapshot.Bucket], spanField: UInt64, countField: UInt64,
                                     integer: Bool, into w: inout ByteWriter) {
        var first = 0
        var previousEnd: Int64 = 0
        while first < buckets.count {
            let start = Int64(buckets[first].index)
            var length = 1
            while first + length < buckets.count && Int64(buckets[first + length].index) == start + Int64(length) {
                length += 1
            }
            let span = w.beginMessageField(spanField)
            w.writeSignedField(Field.spanOffset, first == 0 ? start : start - previousEnd)
            w.writeUInt64Field(Field.spanLength, UInt64(length))
            w.endLengthPrefixed(span)
            previousEnd = start + Int64(length)
            first += length
        }
        if integer {
            var previous: Int64 = 0
            for bucket in buckets {
                let count = Int64(bucket.count)
                w.writeSignedField(countField, count - previous)
                previous = count
            }
        } else {
            for bucket in buckets { w.writeDoubleField(countField, bucket.count) }
        }
    }

    /// `buckets` by ascending, distinct index. The initializer requires that order, but the
    /// properties are mutable: a list out of order is sorted, and counts of a repeated index
    /// are added, rather than written as spans Prometheus would reject.
    private static func normalized(_ buckets: [NativeHistogramSnapshot.Bucket]) -> [NativeHistogramSnapshot.Bucket] {
        if NativeHistogramSnapshot.ascending(buckets) { return buckets }
        var merged: [NativeHistogramSnapshot.Bucket] = []
        for bucket in buckets.sorted(by: { $0.index < $1.index }) {
            if let last = merged.last, last.index == bucket.index {
                merged[merged.count - 1].count += bucket.count
            } else {
                merged.append(bucket)
            }
        }
        return merged
    }
}

extension Exposition {
    /// What the text formats write for the native series of a histogram family that have no
    /// classic samples: `_bucket{le="+Inf"}`, `_count` and `_sum`, so that the series is not
    /// lost. (The `+Inf` bucket makes it a complete classic histogram, which OpenMetrics
    /// requires and client_golang's text output also writes.) Empty for other families and
    /// when every native series has a classic part.
    static func classicFallbackSamples(_ family: MetricFamilySnapshot) -> [Sample] {
        guard family.kind == .histogram, !family.nativeHistograms.isEmpty else { return [] }
        var classic = Set<[UInt8]>()
        var previous: [Label]? = nil
        for sample in family.samples {
            if let previous, SeriesLabels.equal(previous, sample.labels, excluding: "le") { continue }
            classic.insert(SeriesLabels.key(sample.labels, excluding: "le"))
            previous = sample.labels
        }
        var samples: [Sample] = []
        for native in family.nativeHistograms where classic.insert(SeriesLabels.key(native.labels, excluding: "le")).inserted {
            samples.append(Sample(name: family.name + "_bucket", labels: native.labels + [Label("le", "+Inf")],
                                  value: native.count))
            samples.append(Sample(name: family.name + "_count", labels: native.labels, value: native.count))
            samples.append(Sample(name: family.name + "_sum", labels: native.labels, value: native.sum))
        }
        return samples
    }
}
