import MmapStore
import PromMetrics

/// The quantile window of one summary series, merged across processes: the counts of every
/// process's age buckets (``SummaryWindowEntry``) still in the window, added at the lowest
/// schema among them. Counts of one schema add exactly, so the quantiles are those of one
/// sketch that saw every process's observations of the window.
struct SummaryWindowMerge {
    var family: String
    var labelKey: [UInt8]
    /// The objectives, in the order the first process gave them (others' are appended).
    var objectives: [Double]
    /// Nil while no age bucket in the window has been seen: the quantiles are NaN.
    var counts: NativeBucketCounts?

    /// The estimate of each objective, NaN for an empty window.
    var quantiles: [Double] { objectives.map { counts?.quantile($0) ?? .nan } }
}

extension NativeMerge {
    /// One age bucket of one process's summary window: its counts are added when it has not
    /// expired at ``now``.
    mutating func addWindow(_ s: NativeHistogramFile.Series, _ entry: SummaryWindowEntry) {
        let labelKey = SeriesKey(family: "", sample: "", labels: s.key.labels, help: "").encoded()
        let identity = SeriesKey(family: s.key.family, sample: "", labels: s.key.labels, help: "").encoded()
        var merged = windows[identity] ?? SummaryWindowMerge(family: s.key.family, labelKey: labelKey, objectives: [], counts: nil)
        for q in entry.objectives where !merged.objectives.contains(q) { merged.objectives.append(q) }
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
