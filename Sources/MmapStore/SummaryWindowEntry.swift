/// One age bucket of a summary's quantile window, as stored in a process's
/// `native_<pid>.pmh` (``NativeHistogramFile``): the one place that knows how such an entry is
/// told apart from a native histogram's series and what its fields mean.
///
/// A summary with quantiles keeps, per series, a ring of age buckets (client_golang's
/// `AgeBuckets`), each a set of log buckets of one schema (a DDSketch). Age bucket `k` of a
/// series is a series entry of the native-histogram file whose key is the series' key with
/// the sample name `quantiles <k> <q1> <q2> ...`: the word `quantiles`, the age bucket's
/// number and the objectives, separated by single spaces (a space is never part of a metric
/// name, so no native histogram's series looks like this). Its bucket entries are those of a
/// native histogram (`p`, `n`, `z`; never `u`: NaN observations have no rank), and:
///
/// | field of the series entry | native histogram              | summary age bucket                                   |
/// |---------------------------|-------------------------------|------------------------------------------------------|
/// | value                     | schema and set flag           | the same: the schema of every bucket                 |
/// | timestamp                 | the zero threshold            | the age bucket's expiry: wall-clock seconds (UNIX time) after which its counts are out of the window |
///
/// The zero threshold of an age bucket is ``zeroThreshold`` (client_golang's default for
/// native histograms). A writer starting a new period in an age bucket sets its counts to 0
/// first and writes the new expiry after: a reader that sees the old expiry sees an age bucket
/// that is already out of the window.
package struct SummaryWindowEntry: Hashable, Sendable {
    /// The zero threshold of every age bucket: observations `v` with `|v| <= zeroThreshold`
    /// count as 0.
    package static let zeroThreshold: Double = 0x1p-128
    /// The first word of the sample name of an age bucket's entry.
    package static let marker = "quantiles"

    /// The age bucket's number in its ring.
    package var ageBucket: Int
    /// The quantiles the summary reports, in the order given.
    package var objectives: [Double]

    /// An age bucket's identity.
    package init(ageBucket: Int, objectives: [Double]) {
        self.ageBucket = ageBucket
        self.objectives = objectives
    }

    /// The sample name of the entry: `quantiles <k> <q1> <q2> ...`; objectives are written
    /// in Swift's shortest round-tripping form.
    package var sampleName: String {
        ([Self.marker, String(ageBucket)] + objectives.map { "\($0)" }).joined(separator: " ")
    }

    /// Parses `sample`; nil when it is not an age bucket's sample name (a native histogram's
    /// series) or it is malformed (an objective that is not a number in `0...1`).
    package init?(sample: String) {
        guard sample.hasPrefix(Self.marker + " ") else { return nil }
        let words = sample.split(separator: " ", omittingEmptySubsequences: false)
        guard words.count >= 2, words[0] == Self.marker, let k = Int(words[1]), k >= 0 else { return nil }
        var objectives: [Double] = []
        for w in words.dropFirst(2) {
            guard let q = Double(w), q >= 0, q <= 1 else { return nil }
            objectives.append(q)
        }
        self.init(ageBucket: k, objectives: objectives)
    }
}
