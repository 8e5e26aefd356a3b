import MmapStore
import PromMetrics

/// The quantile window of one summary series, merged across processes: the counts of every
/// process's age buckets (``SummaryWindowEntry``) still in the window, added at the lowest
/// schema among them. Counts of one schema add exactly, so the quantiles are those of one
/// sketch that saw every process's observations of the window.
struct SummaryWindowMerge {
    var family: String
    var labelKey: [UInt8]
    var labels: [Label]
    /// The help text of the first age bucket seen (the scrape takes the family's help from
    /// the `*.db` files; compaction keeps it in the archive's keys).
    var help = ""
    /// The objectives of the first age bucket seen, in its order.
    private var firstObjectives: [Double]?
    /// Every objective seen, once processes disagree about them.
    private var union: Set<Double> = []
    private var disagree = false
    /// Nil while no age bucket in the window has been seen: the quantiles are NaN.
    var counts: NativeBucketCounts?
    /// With ``NativeMerge/keepsPeriods``: the unexpired age buckets' counts, added per
    /// expiry time (its bit pattern), so that compaction can keep each period apart.
    var periods: [UInt64: NativeBucketCounts] = [:]

    init(family: String, labelKey: [UInt8], labels: [Label], help: String) {
        self.family = family
        self.labelKey = labelKey
        self.labels = labels
        self.help = help
    }

    /// The objectives: in the order the processes give them when they all give the same,
    /// else every objective any process gives, ascending. Either way, it does not depend on
    /// the order in which the files are read.
    var objectives: [Double] {
        disagree ? union.sorted() : firstObjectives ?? []
    }

    /// Records one age bucket's objectives.
    mutating func see(_ objectives: [Double]) {
        guard let first = firstObjectives else { firstObjectives = objectives; return }
        // Every process of a summary normally gives the same list: compare, nothing else.
        if first == objectives { return }
        if !disagree {
            disagree = true
            union = Set(first)
        }
        union.formUnion(objectives)
    }

    /// The estimate of each objective, NaN for an empty window.
    var quantiles: [Double] { objectives.map { counts?.quantile($0) ?? .nan } }
}

extension NativeMerge {
    /// One age bucket of one process's summary window: its counts are added when it has not
    /// expired at ``now``.
    mutating func addWindow(_ s: NativeHistogramFile.Series, _ entry: SummaryWindowEntry) {
        let labelKey = SeriesKey(family: "", sample: "", labels: s.key.labels, help: "").encoded()
        let identity = SeriesKey(family: s.key.family, sample: "", labels: s.key.labels, help: "").encoded()
        var merged = windows[identity] ?? SummaryWindowMerge(family: s.key.family, labelKey: labelKey, labels: s.key.labels, help: s.key.help)
        merged.see(entry.objectives)
        defer { windows[identity] = merged }
        guard let configured = s.schema, let expiry = s.zeroThreshold, expiry > now else { return }
        var schema = configured
        for b in s.buckets where b.count > 0 && (b.bucket.kind == .positive || b.bucket.kind == .negative) {
            schema = Swift.min(schema, b.bucket.schema)
        }
        var counts = NativeBucketCounts(schema: schema, zeroThreshold: SummaryWindowEntry.zeroThreshold)
        for (bucket, n) in s.buckets where n > 0 {
            switch bucket.kind {
            case .positive, .negative:
                counts.add(positive: bucket.kind == .positive, index: bucket.index, schema: bucket.schema, count: Double(n))
            case .zero: counts.zeroCount += Double(n)
            case .unbucketed: break  // NaN has no rank.
            }
        }
        if var existing = merged.counts {
            existing.merge(counts)
            merged.counts = existing
        } else {
            merged.counts = counts
        }
        if keepsPeriods {
            if var existing = merged.periods[expiry.bitPattern] {
                existing.merge(counts)
                merged.periods[expiry.bitPattern] = existing
            } else {
                merged.periods[expiry.bitPattern] = counts
            }
        }
    }

    /// Puts each merged window's quantile samples in front of the first sample of its series
    /// in the summary family of its name (as client_golang orders them: quantiles, then sum
    /// and count); windows of families that are not summaries in the `*.db` files, or of
    /// series without `_count` and `_sum` there, are left out.
    func attachQuantiles(to families: inout [MetricFamilySnapshot]) {
        guard !windows.isEmpty else { return }
        var byFamily: [String: [[UInt8]: SummaryWindowMerge]] = [:]
        for w in windows.values { byFamily[w.family, default: [:]][w.labelKey] = w }
        for i in families.indices where families[i].kind == .summary {
            guard let list = byFamily[families[i].name] else { continue }
            let name = families[i].name
            var out: [Sample] = []
            out.reserveCapacity(families[i].samples.count + list.count * 3)
            var done = Set<[UInt8]>()
            for sample in families[i].samples {
                let key = SeriesKey(family: "", sample: "", labels: sample.labels, help: "").encoded()
                if sample.name != name, let w = list[key], done.insert(key).inserted {
                    for (q, value) in zip(w.objectives, w.quantiles) {
                        out.append(Sample(name: name, labels: sample.labels + [Label("quantile", GoFloat.format(q))], value: value))
                    }
                }
                out.append(sample)
            }
            families[i].samples = out
        }
    }
}
