import MmapStore
import PromMetrics
import SystemCalls

/// The merge of a directory's native-histogram files (`native_<pid>.pmh`,
/// ``NativeHistogramFile``) into the native series of histogram families.
///
/// Each process's series is first brought to its own settings (its buckets reduced to the
/// lowest of its configured schema and the schemas its buckets were counted at; buckets that
/// reach into its zero bucket moved there), then the processes' series with the same family
/// and labels are added: all at the lowest schema among them, with the widest zero bucket
/// (widened further when it cuts through a bucket, as the native-histogram specification
/// merges zero buckets). So the result is what one process observing every value at that
/// schema and zero threshold counts. A series that has counted nothing yet does not lower the
/// others' resolution; a series that no process has counted into yet takes the lowest schema
/// and the widest zero threshold among the processes' settings. So the result does not depend
/// on the order of the files, which lets compaction fold some of them into an archive that
/// sorts elsewhere (`native_archive.pmh`) without changing it. Files of dead processes count,
/// as counters do; a bad file is skipped and reported, like a bad `*.db` file. The count of a
/// merged series is the sum of its buckets; its sum of observations is the series' `_sum` from
/// the `*.db` merge.
struct NativeMerge {
    private(set) var problems: [MetricFileError] = []
    private(set) var mergedFiles = 0
    private(set) var entries = 0

    struct Merged {
        var family: String
        var help: String
        var labels: [Label]
        var labelKey: [UInt8]
        var counts: NativeBucketCounts
    }

    /// By the series' identity: its family and labels, as canonical JSON.
    private(set) var series: [[UInt8]: Merged] = [:]
    /// Summary quantile windows (``SummaryWindowEntry``), by the same identity.
    var windows: [[UInt8]: SummaryWindowMerge] = [:]
    /// The wall-clock time whose window the summary quantiles cover.
    var now = Sys.wallClock()
    /// Whether each summary window also keeps its unexpired age buckets apart by expiry
    /// (``SummaryWindowMerge/periods``), as compaction writes them.
    var keepsPeriods = false

    /// Reads and merges the files at `paths`, in the order given.
    mutating func add(paths: [String]) {
        add(files: paths.map { ($0, MetricFileName.baseName(of: $0)) })
    }

    /// Reads and merges the files at `path`, each as if it had the file name `name` (a source
    /// an interrupted compaction hid is read under its own name), in the order given.
    mutating func add(files: [(path: String, name: String)]) {
        var reader = MetricFileReader()
        for (path, name) in files {
            let parsed: MetricFileName
            do { parsed = try MetricFileName(validatingPath: name) } catch {
                problems.append(MetricFileError(path: path, kind: error.kind))
                continue
            }
            guard parsed.isNativeHistogram else {
                problems.append(MetricFileError(path: path, kind: .badName("not a native-histogram file name")))
                continue
            }
            do {
                let file = try NativeHistogramFile.read(path: path, reader: &reader)
                add(file)
            } catch {
                problems.append(error)
            }
        }
    }

    /// Merges one file's series, as read (``NativeHistogramFile/read(path:reader:)``).
    mutating func add(_ file: (series: [NativeHistogramFile.Series], entries: Int)) {
        mergedFiles += 1
        entries += file.entries
        for s in file.series {
            if let window = SummaryWindowEntry(sample: s.key.sample) {
                addWindow(s, window)
            } else {
                add(s)
            }
        }
    }

    /// One process's series: brought to its own settings, then added to the others.
    private mutating func add(_ s: NativeHistogramFile.Series) {
        var schema = s.schema ?? NativeHistogramMath.maximumSchema
        for b in s.buckets where b.count > 0 && (b.bucket.kind == .positive || b.bucket.kind == .negative) {
            schema = Swift.min(schema, b.bucket.schema)
        }
        var counts = NativeBucketCounts(schema: schema, zeroThreshold: s.zeroThreshold ?? 0)
        for (bucket, n) in s.buckets where n > 0 {
            switch bucket.kind {
            case .positive, .negative:
                counts.add(positive: bucket.kind == .positive, index: bucket.index, schema: bucket.schema, count: Double(n))
            case .zero: counts.zeroCount += Double(n)
            case .unbucketed: counts.unbucketedCount += Double(n)
            }
        }
        let labelKey = SeriesKey(family: "", sample: "", labels: s.key.labels, help: "").encoded()
        let identity = SeriesKey(family: s.key.family, sample: "", labels: s.key.labels, help: "").encoded()
        guard var merged = series[identity] else {
            series[identity] = Merged(family: s.key.family, help: s.key.help, labels: SeriesKey(
                family: "", sample: "", labels: s.key.labels, help: "").labels, labelKey: labelKey, counts: counts)
            return
        }
        if counts.count == 0 {
            // Nothing counted here: only the settings of a series nobody has counted into yet
            // change, to the lowest schema and the widest zero bucket (whatever the order).
            guard merged.counts.count == 0 else { return }
            merged.counts.schema = Swift.min(merged.counts.schema, counts.schema)
            merged.counts.zeroThreshold = Swift.max(merged.counts.zeroThreshold, counts.zeroThreshold)
            series[identity] = merged
            return
        }
        if merged.counts.count == 0 {
            merged.counts = counts
        } else {
            merged.counts.merge(counts)
        }
        series[identity] = merged
    }

    /// Adds the merged native series to `families` (sorted by name): to the histogram family
    /// of the same name, with the sum of its `_sum` sample of the same labels; a family that
    /// only has native series becomes a histogram family of its own. Native series of a name
    /// the `*.db` files use for another type are left out, as prometheus_client keeps the
    /// first type it sees.
    func attach(to families: inout [MetricFamilySnapshot]) {
        attachQuantiles(to: &families)
        guard !series.isEmpty else { return }
        var byFamily: [String: [Merged]] = [:]
        for m in series.values { byFamily[m.family, default: []].append(m) }
        var index: [String: Int] = [:]
        for (i, f) in families.enumerated() { index[f.name] = i }
        for (name, list) in byFamily {
            let natives = list.sorted { $0.labelKey.lexicographicallyPrecedes($1.labelKey) }
            if let i = index[name] {
                guard families[i].kind == .histogram else { continue }
                var sums: [[UInt8]: Double] = [:]
                for sample in families[i].samples where sample.name == name + "_sum" {
                    sums[SeriesKey(family: "", sample: "", labels: sample.labels, help: "").encoded()] = sample.value
                }
                families[i].nativeHistograms = natives.map { $0.counts.snapshot(labels: $0.labels, sum: sums[$0.labelKey] ?? 0) }
            } else {
                families.append(MetricFamilySnapshot(
                    name: name, kind: .histogram, help: natives[0].help, samples: [],
                    nativeHistograms: natives.map { $0.counts.snapshot(labels: $0.labels, sum: 0) }))
            }
        }
        families.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }
}
