import MmapStore
import PromMetrics
import SystemCalls

/// What a directory's metadata files (`meta_<pid>.pmm`, ``MetadataFile``), which
/// prometheus_client never reads, add to the merge: which gauge families are Infos and Enums
/// (its files store both as gauges), and when each counter, histogram and summary series was
/// first created.
///
/// ``applyTypes(to:)`` types a merged gauge family as `info` or `stateset` when some process
/// recorded it so and its samples have that shape (an Info: family `<name>_info` whose samples
/// are all `<name>_info`, value 0 or 1; an Enum: every sample labelled with the family name,
/// value 0 or 1). Otherwise the family stays a gauge: nothing is lost. Used for OpenMetrics,
/// the one format that has these types.
///
/// ``attachCreated(to:)`` adds `<name>_created` to every series of a counter, histogram or
/// summary family for which some process recorded a creation time: the earliest of them.
/// Metadata files are never folded or removed by compaction, so a creation time outlives the
/// process and the compaction of its values.
struct DirectoryMetadata: ~Copyable {
    private(set) var types: [String: MetadataFile.FamilyType] = [:]
    /// The series keys (key JSON of family and labels) met, by their bytes; processes list
    /// them in the same order, so each file mostly follows the hint.
    private var keys = KeyInterner()
    /// Per key id, the earliest creation time (0: none yet).
    private var earliest: [Double] = []
    private(set) var problems: [MetricFileError] = []
    private(set) var mergedFiles = 0
    private(set) var entries = 0

    /// Reads the metadata files at `paths`; a bad one becomes a problem, the others count.
    /// Without `creationTimes`, creation entries are checked but not kept.
    mutating func add(paths: [String], creationTimes: Bool = true) {
        var reader = MetricFileReader()
        for path in paths {
            // Times are taken as they are read, and rolled back if the file turns out bad.
            var taken: [(id: Int32, previous: Double)] = []
            do throws(MetricFileError) {
                let name = MetricFileName.baseName(of: path)
                guard MetricFileName(parsing: name)?.isMetadata == true else {
                    throw MetricFileError(path: path, kind: .badName("not a metadata file name (meta_<pid>.pmm)"))
                }
                var previous: Int32 = -1
                let file = try MetadataFile.read(path: path, reader: &reader) { key, time in
                    guard creationTimes else { return }
                    let (id, isNew) = keys.intern(key, hint: previous + 1)
                    previous = id
                    if isNew { earliest.append(0) }
                    let old = earliest[Int(id)]
                    if old == 0 || time < old {
                        taken.append((id, old))
                        earliest[Int(id)] = time
                    }
                }
                mergedFiles += 1
                entries += file.entries
                for (family, type) in file.types { types[family] = type }
            } catch {
                for t in taken.reversed() { earliest[Int(t.id)] = t.previous }
                // A file removed since the listing (wipe) is no problem.
                if case .vanished = error.kind { continue }
                problems.append(error)
            }
        }
    }

    /// Types the gauge families recorded as Info or Enum whose samples fit (see above).
    func applyTypes(to families: inout [MetricFamilySnapshot]) {
        guard !types.isEmpty else { return }
        var renamed = false
        for i in families.indices where families[i].kind == .gauge {
            let family = families[i]
            guard let type = types[family.name] else { continue }
            let binary = family.samples.allSatisfy { $0.value == 0 || $0.value == 1 }
            switch type {
            case .info:
                let suffix = "_info"
                guard binary, family.name.utf8.count > suffix.utf8.count, family.name.hasSuffix(suffix),
                      family.samples.allSatisfy({ $0.name.utf8.elementsEqual(family.name.utf8) }) else { continue }
                families[i].name = String(family.name.dropLast(suffix.count))
                families[i].kind = .info
                // Pairs an Info no longer holds are kept at 0 in the files; an info sample is 1.
                families[i].samples = family.samples.filter { $0.value == 1 }
                renamed = true
            case .stateset:
                guard binary, family.samples.allSatisfy({ s in s.labels.contains { $0.name.utf8.elementsEqual(family.name.utf8) } })
                else { continue }
                families[i].kind = .stateset
            }
        }
        if renamed { families.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) } }
    }
}

extension DirectoryMetadata {
    /// Adds `<name>_created` after each series of the counter, histogram and summary families
    /// (after `_total`; after a histogram's buckets, `_count` and `_sum`; after a summary's
    /// samples), as prometheus_client's single-process mode exports it in OpenMetrics.
    mutating func attachCreated(to families: inout [MetricFamilySnapshot]) {
        guard !earliest.isEmpty else { return }
        for i in families.indices {
            let family = families[i]
            guard family.kind == .counter || family.kind == .histogram || family.kind == .summary else { continue }
            let createdName = family.name + "_created"
            var out: [Sample] = []
            out.reserveCapacity(family.samples.count + family.samples.count / 2)
            var group: [Label]?
            func flush() {
                guard let group else { return }
                let key = SeriesKey(family: family.name, sample: "", labels: group, help: "").encoded()
                if let time = earliestTime(of: key) { out.append(Sample(name: createdName, labels: group, value: time)) }
            }
            for sample in family.samples {
                let labels = sample.labels.filter { $0.name != "le" }
                if labels != group {
                    flush()
                    group = labels
                }
                out.append(sample)
            }
            flush()
            families[i].samples = out
        }
    }
}

extension DirectoryMetadata {
    /// The earliest creation time recorded for the series key `key`, if any.
    private mutating func earliestTime(of key: [UInt8]) -> Double? {
        let id = key.withUnsafeBytes { keys.intern($0, hint: -1).id }
        guard Int(id) < earliest.count, earliest[Int(id)] > 0 else { return nil }
        return earliest[Int(id)]
    }
}
