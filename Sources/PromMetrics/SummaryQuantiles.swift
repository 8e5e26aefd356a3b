/// The quantiles a ``Summary`` reports, how precisely, and over which time window.
///
/// As in client_golang, a summary reports its objectives (for example the median and the 90th
/// and 99th percentiles) over a sliding window of `maxAge` seconds, kept as a ring of
/// `ageBuckets` age buckets that rotate every `maxAge / ageBuckets` seconds; the quantiles
/// cover the age buckets still in the window, that is the last `maxAge` seconds, give or take
/// one age bucket. Unlike client_golang's, the window is a mergeable sketch (DDSketch: counts
/// in log-spaced buckets, the buckets of native histograms), so quantiles are exact up to a
/// *relative* error you choose and are merged across the processes of a multiprocess
/// directory by adding counts. Age buckets are aligned to wall-clock time, so every process
/// agrees on them.
///
/// Each reported quantile `q` is the estimate of the bucket holding the observation of rank
/// `max(1, ceil(q * n))` among the `n` observations of the window (the nearest rank, as
/// client_golang's exact streams rank); that estimate is within ``relativeError`` of the
/// observation (see ``schema``). An empty window reports `NaN`, as client_golang does. NaN
/// observations count in `_count` and `_sum` but have no rank; observations with a magnitude
/// of at most 2^-128 are reported as 0.
///
/// ```swift
/// let queries = try Summary("db_query_seconds", help: "Query latency.",
///                           quantiles: SummaryQuantiles(objectives: [0.5, 0.9, 0.99], relativeError: 0.01))
/// queries.observe(0.042)
/// ```
public struct SummaryQuantiles: Hashable, Sendable {
    /// The quantiles to report, each in `0...1`.
    public var objectives: [Double]
    /// The largest relative error of a reported quantile: `|estimate - exact| <= relativeError * |exact|`.
    public var relativeError: Double
    /// The window, in seconds (client_golang's default: 10 minutes).
    public var maxAge: Double
    /// The number of age buckets the window is kept in (client_golang's default: 5).
    public var ageBuckets: Int

    /// Creates quantile options.
    /// - Parameters:
    ///   - objectives: the quantiles to report; by default the median, the 90th and the 99th percentile.
    ///   - relativeError: the largest relative error; 1% by default. At least
    ///     `relativeError(schema: 8)` (about 0.14%) and below 1.
    ///   - maxAge: the window in seconds; 600 by default.
    ///   - ageBuckets: the number of age buckets, 1...255; 5 by default.
    public init(objectives: [Double] = [0.5, 0.9, 0.99], relativeError: Double = 0.01, maxAge: Double = 600, ageBuckets: Int = 5) {
        self.objectives = objectives
        self.relativeError = relativeError
        self.maxAge = maxAge
        self.ageBuckets = ageBuckets
    }

    /// The relative error of the DDSketch estimate at native-histogram schema `schema`:
    /// `(g - 1) / (g + 1)` with the bucket growth `g = 2^(2^-schema)`.
    ///
    /// A bucket of schema `s` holds `(L, g L]`; its estimate `2 g L / (g + 1)` (the harmonic
    /// mean of its bounds) is off by at most `(g - 1) / (g + 1)` of any value in it, at both
    /// ends alike.
    /// - Parameter schema: a native-histogram schema, -4...8.
    /// - Returns: the relative error bound.
    public static func relativeError(schema: Int8) -> Double {
        // g = 2^(2^-schema): 65536 at schema -4, and each next schema's is the square root.
        var g = 65536.0
        var s = NativeHistogramMath.minimumSchema
        while s < schema {
            g = g.squareRoot()
            s += 1
        }
        return (g - 1) / (g + 1)
    }

    /// The schema the window counts at: the lowest (fewest buckets, so cheapest) whose
    /// relative error is at most ``relativeError``; 8 when none is (``problem()`` rejects that).
    public var schema: Int8 {
        for s in NativeHistogramMath.minimumSchema...NativeHistogramMath.maximumSchema where Self.relativeError(schema: s) <= relativeError {
            return s
        }
        return NativeHistogramMath.maximumSchema
    }

    /// The seconds one age bucket covers.
    var ageBucketSeconds: Double { maxAge / Double(ageBuckets) }

    /// Why these options are invalid, or nil.
    func problem() -> String? {
        if let q = objectives.first(where: { !($0 >= 0 && $0 <= 1) }) { return "quantile objective \(q) is not in 0...1" }
        if Set(objectives).count != objectives.count { return "duplicate quantile objectives: \(objectives)" }
        let finest = Self.relativeError(schema: NativeHistogramMath.maximumSchema)
        if !(relativeError >= finest && relativeError < 1) {
            return "relative error \(relativeError) is not in \(finest)..<1 (the finest is that of schema 8)"
        }
        if !(maxAge > 0 && maxAge.isFinite) { return "max age \(maxAge) is not a positive number of seconds" }
        if !(1...255).contains(ageBuckets) { return "age buckets \(ageBuckets) not in 1...255" }
        if !(ageBucketSeconds >= 0.001) { return "an age bucket of \(ageBucketSeconds) s is shorter than 1 ms" }
        return nil
    }
}

extension NativeBucketCounts {
    /// The DDSketch estimate of quantile `q`: the estimate of the bucket holding the
    /// observation of rank `max(1, ceil(q * n))` among the `n` bucketed observations (NaN
    /// left out), ordered from the most negative; NaN when there are none.
    ///
    /// A bucket with bounds `(L, U]` by magnitude gives `2 L U / (L + U)` (`U = g L`), 0 for
    /// the zero bucket, and the sign of its side; see ``SummaryQuantiles/relativeError(schema:)``.
    package func quantile(_ q: Double) -> Double {
        let n = count - unbucketedCount
        guard n > 0 else { return .nan }
        let rank = Swift.max(1, (q * n).rounded(.up))
        var seen = 0.0
        for (index, c) in negative.sorted(by: { $0.key > $1.key }) {
            seen += c
            if seen >= rank { return -Self.estimate(index: index, schema: schema) }
        }
        seen += zeroCount
        if seen >= rank { return 0 }
        var last = 0.0
        for (index, c) in positive.sorted(by: { $0.key < $1.key }) {
            seen += c
            last = Self.estimate(index: index, schema: schema)
            if seen >= rank { return last }
        }
        return last
    }

    /// The estimate for any value of bucket `index` at `schema` (by magnitude).
    static func estimate(index: Int32, schema: Int8) -> Double {
        let upper = NativeHistogramMath.upperBound(index: index, schema: schema)
        let lower = NativeHistogramMath.lowerBound(index: index, schema: schema)
        if upper.isInfinite { return .infinity }
        // 2 L U / (L + U), written so that neither the product nor the sum overflows.
        return 2 * upper / (1 + upper / lower)
    }
}
