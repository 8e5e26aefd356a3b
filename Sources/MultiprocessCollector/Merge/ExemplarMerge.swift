import MmapStore
import PromMetrics

/// The merge of a directory's exemplar files (`exemplars_<pid>.pmx`, ``ExemplarFile``): for
/// each sample (a counter's `_total`, a histogram's `_bucket`), the most recent exemplar
/// across every process, live or dead.
///
/// Samples are matched by sample name and labels, as their `*.db` entries are (the key bytes of
/// the canonical JSON, never `String` equality). An exemplar whose sample the `*.db` merge does
/// not export (a family of another type, say) is left out. A bad file is skipped and reported,
/// like a bad `*.db` file. Of two exemplars with the same timestamp, the one in the file later
/// in name order wins, so the result does not depend on the listing's order.
struct ExemplarMerge {
    private(set) var problems: [MetricFileError] = []
    private(set) var mergedFiles = 0
    private(set) var entries = 0
    /// By the sample's identity: its name and labels, as canonical JSON.
    private var latest: [[UInt8]: ExemplarFile.Exemplar] = [:]
    /// The sample names that have an exemplar, so that the others are not looked up (a filter
    /// only: a sample matches by the bytes of its identity).
    private var sampleNames: Set<String> = []

    private static func identity(sample: String, labels: [Label]) -> [UInt8] {
        SeriesKey(family: "", sample: sample, labels: labels, help: "").encoded()
    }

    /// Reads the files at `paths`, in the order given, keeping the latest exemplar per sample.
    mutating func add(paths: [String]) {
        var reader = MetricFileReader()
        for path in paths {
            do {
                let name = try MetricFileName(validatingPath: path)
                guard name.isExemplars else {
                    problems.append(MetricFileError(path: path, kind: .badName("not an exemplar file name")))
                    continue
                }
                let file = try ExemplarFile.read(path: path, reader: &reader)
                mergedFiles += 1
                entries += file.count
                for e in file.entries {
                    sampleNames.insert(e.key.sample)
                    let id = Self.identity(sample: e.key.sample, labels: e.key.labels)
                    if let known = latest[id], known.timestamp > e.exemplar.timestamp { continue }
                    latest[id] = e.exemplar
                }
            } catch {
                problems.append(error)
            }
        }
    }

    /// Sets the exemplar of every counter `_total` and histogram `_bucket` sample of
    /// `families` that has one.
    func attach(to families: inout [MetricFamilySnapshot]) {
        guard !latest.isEmpty else { return }
        for f in families.indices where families[f].kind == .counter || families[f].kind == .histogram {
            let suffix = families[f].kind == .counter ? "_total" : "_bucket"
            for s in families[f].samples.indices
            where families[f].samples[s].name.hasSuffix(suffix) && sampleNames.contains(families[f].samples[s].name) {
                let sample = families[f].samples[s]
                if let e = latest[Self.identity(sample: sample.name, labels: sample.labels)] {
                    families[f].samples[s].exemplar = RecordedExemplar(e)
                }
            }
        }
    }
}
