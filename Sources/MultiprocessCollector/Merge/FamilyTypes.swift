import MmapStore
import PromMetrics
import SystemCalls

/// The Info and Enum families of a directory, from its metadata files (`meta_<pid>.pmm`,
/// ``MetadataFile``), which prometheus_client never reads: its files store both as gauges, and
/// only the metadata says what they are.
///
/// ``apply(to:)`` types a merged gauge family as `info` or `stateset` when some process
/// recorded it so and its samples have that shape (an Info: family `<name>_info` whose samples
/// are all `<name>_info`, value 0 or 1; an Enum: every sample labelled with the family name,
/// value 0 or 1). Otherwise the family stays a gauge: nothing is lost. Used for OpenMetrics,
/// the one format that has these types.
struct FamilyTypes {
    private(set) var types: [String: MetadataFile.FamilyType] = [:]
    private(set) var problems: [MetricFileError] = []
    private(set) var mergedFiles = 0
    private(set) var entries = 0

    /// The paths of the metadata files in `directory`, sorted by name.
    static func list(in directory: String) -> Result<[String], MetricFileError> {
        let names: [String]
        do {
            names = try Sys.listDirectory(directory)
        } catch {
            return .failure(MetricFileError(path: directory, kind: .system(error)))
        }
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        return .success(names.filter { $0.hasSuffix(MetricFileName.metadataSuffix) }
            .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            .map { dir + "/" + $0 })
    }

    /// Reads the metadata files at `paths`; a bad one becomes a problem, the others count.
    mutating func add(paths: [String]) {
        var reader = MetricFileReader()
        for path in paths {
            do throws(MetricFileError) {
                let name = MetricFileName.baseName(of: path)
                guard MetricFileName(parsing: name)?.isMetadata == true else {
                    throw MetricFileError(path: path, kind: .badName("not a metadata file name (meta_<pid>.pmm)"))
                }
                let file = try MetadataFile.readTypes(path: path, reader: &reader)
                mergedFiles += 1
                entries += file.entries
                for (family, type) in file.types { types[family] = type }
            } catch {
                // A file removed since the listing (wipe) is no problem.
                if case .vanished = error.kind { continue }
                problems.append(error)
            }
        }
    }

    /// Types the gauge families recorded as Info or Enum whose samples fit (see above).
    func apply(to families: inout [MetricFamilySnapshot]) {
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
