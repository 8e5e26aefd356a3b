/// One series of a native histogram, ready to be rendered: exponential buckets addressed by
/// index, a zero bucket, the count and the sum.
///
/// A native (sparse) histogram with schema `s` has bucket boundaries at powers of
/// `base = 2^(2^-s)`: the positive bucket with index `i` holds the observations `v` with
/// `base^(i-1) < v <= base^i`, the negative bucket with index `i` those with
/// `-base^i <= v < -base^(i-1)`, and the zero bucket those with `|v| <= zeroThreshold`. Only
/// buckets that hold observations need to be listed, which is what makes the histogram cheap
/// at high resolution. The layout and the meaning follow Prometheus's native histograms (the
/// `Histogram` message of `io.prometheus.client`'s metrics.proto).
///
/// A histogram family (``MetricKind/histogram``) carries its native series in
/// ``MetricFamilySnapshot/nativeHistograms``, next to the classic `_bucket`, `_count` and `_sum`
/// samples. The protobuf exposition writes a series that has both parts, matched by labels,
/// as one `Histogram` message; the text formats, which cannot express native buckets, write
/// the classic part, and for a series with only a native part its `_count`, `_sum` and an
/// `le="+Inf"` bucket.
///
/// Counts are `Double`s, as every value of the multiprocess files is: a series whose counts
/// are all whole numbers is written as an integer histogram, any other as a float histogram.
///
/// ```swift
/// // Observations 0.0, 1.5, 3.0 and -2.5 at schema 0 (boundaries at powers of 2).
/// let latency = NativeHistogramSnapshot(
///     labels: [Label("route", "/api")], schema: 0, zeroThreshold: 1e-128, zeroCount: 1,
///     count: 4, sum: 2.0,
///     positiveBuckets: [.init(index: 1, count: 1), .init(index: 2, count: 1)],
///     negativeBuckets: [.init(index: 2, count: 1)])
/// let family = MetricFamilySnapshot(name: "latency_seconds", kind: .histogram, help: "Latency.",
///                                   samples: [], nativeHistograms: [latency])
/// ```
public struct NativeHistogramSnapshot: Hashable, Sendable {
    /// One populated bucket: its index and the number of observations in it.
    public struct Bucket: Hashable, Sendable {
        /// The bucket's index; see ``NativeHistogramSnapshot`` for the boundaries it stands for.
        public var index: Int32
        /// The observations in the bucket (not cumulative).
        public var count: Double

        /// Creates a bucket.
        /// - Parameters:
        ///   - index: The bucket's index.
        ///   - count: The observations in the bucket.
        public init(index: Int32, count: Double) {
            self.index = index
            self.count = count
        }
    }

    /// The schemas Prometheus defines: each power of two is split into `2^schema` buckets.
    public static let schemaRange: ClosedRange<Int8> = -4...8

    /// The series' labels (never `le`), in rendering order.
    public var labels: [Label]
    /// The resolution: each power of two is divided into `2^schema` buckets; in
    /// ``schemaRange``.
    public var schema: Int8
    /// The zero bucket holds observations `v` with `|v| <= zeroThreshold`.
    public var zeroThreshold: Double
    /// The observations in the zero bucket.
    public var zeroCount: Double
    /// All observations, including the zero bucket and any NaN observations.
    public var count: Double
    /// The sum of all observations.
    public var sum: Double
    /// The populated buckets for positive observations, by ascending index.
    public var positiveBuckets: [Bucket]
    /// The populated buckets for negative observations, by ascending index.
    public var negativeBuckets: [Bucket]

    /// Creates a native histogram series.
    ///
    /// - Parameters:
    ///   - labels: The series' labels.
    ///   - schema: The resolution, in ``schemaRange``.
    ///   - zeroThreshold: The width of the zero bucket (0 or more).
    ///   - zeroCount: The observations in the zero bucket.
    ///   - count: All observations.
    ///   - sum: The sum of all observations.
    ///   - positiveBuckets: The populated positive buckets, by ascending index.
    ///   - negativeBuckets: The populated negative buckets, by ascending index.
    /// - Precondition: `schema` is in ``schemaRange``; the indices of each bucket list ascend
    ///   strictly.
    public init(labels: [Label] = [], schema: Int8, zeroThreshold: Double = 0, zeroCount: Double = 0,
                count: Double, sum: Double, positiveBuckets: [Bucket] = [], negativeBuckets: [Bucket] = []) {
        precondition(Self.schemaRange.contains(schema), "native histogram schema \(schema) is outside -4...8")
        precondition(Self.ascending(positiveBuckets), "positive native histogram buckets must have ascending, distinct indices")
        precondition(Self.ascending(negativeBuckets), "negative native histogram buckets must have ascending, distinct indices")
        self.labels = labels
        self.schema = schema
        self.zeroThreshold = zeroThreshold
        self.zeroCount = zeroCount
        self.count = count
        self.sum = sum
        self.positiveBuckets = positiveBuckets
        self.negativeBuckets = negativeBuckets
    }

    /// Whether the indices of `buckets` ascend strictly.
    package static func ascending(_ buckets: [Bucket]) -> Bool {
        var index = 1
        while index < buckets.count {
            if buckets[index].index <= buckets[index - 1].index { return false }
            index += 1
        }
        return true
    }
}
