/// How a ``Histogram`` keeps native (sparse, exponential) buckets: the options of
/// client_golang's `HistogramOpts.NativeHistogram...` fields, with the same meaning.
///
/// A native histogram needs no bucket bounds: each power of two is split into buckets that
/// grow by at most ``bucketFactor`` from one to the next, and only buckets that received an
/// observation exist. Prometheus (2.40 and later, with `--enable-feature=native-histograms`)
/// scrapes them over the protobuf format; the text formats show their count and sum.
///
/// ```swift
/// let sizes = try Histogram("response_size_bytes", help: "Response sizes.",
///                           native: NativeHistogramOptions(bucketFactor: 1.1, maxBucketNumber: 100))
/// sizes.observe(1_520)
/// ```
///
/// When a series holds more than ``maxBucketNumber`` buckets, it first resets (if the last
/// reset is at least ``minResetDuration`` ago, and only in single-process mode), otherwise
/// widens its zero bucket (up to ``maxZeroThreshold``), otherwise halves its resolution (the
/// schema goes down by one, to -4 at the least), as client_golang does.
public struct NativeHistogramOptions: Hashable, Sendable {
    /// The largest factor by which one bucket's upper bound may exceed the previous one's;
    /// above 1. The schema is the largest resolution whose factor `2^(2^-schema)` is not
    /// larger (schema 3, factor about 1.09, for 1.1; schema 8 for anything below about
    /// 1.0027).
    public var bucketFactor: Double
    /// Observations with `|v| <= zeroThreshold` are counted in the zero bucket; 0 keeps only
    /// exact zeros there. The default, `2^-128`, is client_golang's, and a bucket boundary at
    /// every resolution.
    public var zeroThreshold: Double
    /// The most buckets (positive and negative, not counting the zero bucket) a series keeps
    /// before it limits itself as described above; 0 for no limit.
    public var maxBucketNumber: Int
    /// The least time between two resets of a series that reaches ``maxBucketNumber``;
    /// `.zero` never resets. After a reset a series starts again at its initial resolution
    /// and zero bucket. Ignored in multiprocess mode: a reset would make the counts of the
    /// merged histogram go down, which Prometheus takes for a counter reset of every process.
    public var minResetDuration: Duration
    /// The widest the zero bucket may grow to keep within ``maxBucketNumber``; 0 never widens
    /// it.
    public var maxZeroThreshold: Double

    /// Native buckets with the given options.
    /// - Parameters:
    ///   - bucketFactor: the largest growth from one bucket to the next; above 1. 1.1 (8
    ///     buckets per power of two) is client_golang's advice.
    ///   - zeroThreshold: the half-width of the zero bucket; `2^-128` by default.
    ///   - maxBucketNumber: the most buckets per series before it limits itself; 0 for none.
    ///     160 by default.
    ///   - minResetDuration: the least time between resets (single-process mode); `.zero`
    ///     (the default) never resets.
    ///   - maxZeroThreshold: the widest zero bucket the limit may make; 0 (the default)
    ///     never widens it.
    public init(bucketFactor: Double = 1.1, zeroThreshold: Double = 0x1p-128, maxBucketNumber: Int = 160,
                minResetDuration: Duration = .zero, maxZeroThreshold: Double = 0) {
        self.bucketFactor = bucketFactor
        self.zeroThreshold = zeroThreshold
        self.maxBucketNumber = maxBucketNumber
        self.minResetDuration = minResetDuration
        self.maxZeroThreshold = maxZeroThreshold
    }

    /// The reason the options cannot be used, or nil.
    func problem() -> String? {
        if !(bucketFactor > 1) || !bucketFactor.isFinite { return "native bucket factor \(bucketFactor) must be a number above 1" }
        if zeroThreshold.isNaN || zeroThreshold == .infinity { return "native zero threshold \(zeroThreshold) must be a finite number" }
        if maxBucketNumber < 0 { return "native max bucket number \(maxBucketNumber) must not be negative" }
        if minResetDuration < .zero { return "native min reset duration \(minResetDuration) must not be negative" }
        if !(maxZeroThreshold >= 0) || maxZeroThreshold == .infinity {
            return "native max zero threshold \(maxZeroThreshold) must be a finite number, 0 or more"
        }
        return nil
    }

    /// The schema the bucket factor asks for.
    var schema: Int8 { NativeHistogramMath.schema(forBucketFactor: bucketFactor) }

    /// The zero threshold used: a negative one means 0, as in client_golang.
    var effectiveZeroThreshold: Double { Swift.max(zeroThreshold, 0) }

    /// ``minResetDuration`` in seconds.
    var minResetSeconds: Double {
        let c = minResetDuration.components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
