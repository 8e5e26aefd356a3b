import MmapStore
import SystemCalls

extension Compactor {
    /// The journal: its phase, the archives (temporary and final names) and the sources of one
    /// compaction, each with the hidden name it has while it is folded (none in the first
    /// format, whose sources kept their names). One line each: the header, `phase <phase>`,
    /// `archive <temp> <final>`, `fold|remove <hidden> <name>`, then `end`. The `*.db` files
    /// and the native-histogram files each have a journal file of their own, with its own
    /// header, that names files of its kind only (why: ``Compactor``, "Native-histogram files").
    struct Journal {
        enum Phase: String { case staging, commit }
        /// Which files a journal's compaction folds: each has its own journal file.
        enum Files {
            /// The `*.db` files: `.prom-multiproc-compaction-journal`.
            case metricFiles
            /// The native-histogram files: `.prom-multiproc-native-compaction-journal`.
            case nativeHistograms

            var journalName: String { self == .metricFiles ? Compactor.journalName : Compactor.nativeJournalName }
            var header: String { self == .metricFiles ? Journal.header : Journal.nativeHeader }
            var tempArchivePrefix: String { self == .metricFiles ? Compactor.tempArchivePrefix : Compactor.nativeTempArchivePrefix }
        }
        struct Source {
            var hidden: String?
            var name: String
            var folds: Bool
        }
        var files = Files.metricFiles
        var phase: Phase
        var archives: [(temp: String, final: String)]
        var sources: [Source]

        init(files: Files = .metricFiles, phase: Phase, archives: [(temp: String, final: String)], sources: [Source]) {
            self.files = files
            self.phase = phase
            self.archives = archives
            self.sources = sources
        }

        static let header = "prom-multiproc compaction journal v2"
        static let headerV1 = "prom-multiproc compaction journal v1"
        static let nativeHeader = "prom-multiproc native-histogram compaction journal v1"

        func encoded() -> [UInt8] {
            var lines = [files.header, "phase \(phase.rawValue)"]
            for a in archives { lines.append("archive \(a.temp) \(a.final)") }
            for s in sources { lines.append("\(s.folds ? "fold" : "remove") \(s.hidden ?? s.name) \(s.name)") }
            lines.append("end")
            return Array((lines.joined(separator: "\n") + "\n").utf8)
        }

        static func read(directory: String, files: Files) -> Journal? {
            guard let bytes = try? DirectoryFiles.read(directory + "/" + files.journalName) else { return nil }
            let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
            // Written atomically, so a journal is either whole or absent; check anyway.
            guard lines.count >= 2, lines.first == files.header || (files == .metricFiles && lines.first == headerV1),
                  lines.last == "end" else { return nil }
            let v1 = lines.first == headerV1
            // Each journal names the files of its own kind only.
            let native = files == .nativeHistograms
            var j = Journal(files: files, phase: .commit, archives: [], sources: [])
            var body = lines.dropFirst().dropLast()
            if !v1 {
                guard let first = body.first, first.hasPrefix("phase "), let phase = Phase(rawValue: String(first.dropFirst(6))) else { return nil }
                j.phase = phase
                body = body.dropFirst()
            }
            for line in body {
                let parts = line.split(separator: " ").map(String.init)
                // Names never contain `/`: refuse anything that could point outside the directory.
                guard !parts.contains(where: { $0.contains("/") || $0 == ".." }) else { return nil }
                // Only our own names: a forged journal must not make recovery rename or delete
                // anything else (temporary archives by their prefix, archives and sources by
                // the metric file naming scheme, hidden sources by the staged naming scheme of
                // the very name they stand for).
                if parts.count == 3 && parts[0] == "archive" {
                    guard parts[1].hasPrefix(files.tempArchivePrefix), let final = MetricFileName(parsing: parts[2]), final.isArchive,
                          final.isNativeHistogram == native else { return nil }
                    j.archives.append((parts[1], parts[2]))
                } else if v1 && parts.count == 2 && parts[0] == "source" {
                    guard let name = MetricFileName(parsing: parts[1]), !name.isArchive, !name.isNativeHistogram else { return nil }
                    j.sources.append(Source(hidden: nil, name: parts[1], folds: true))
                } else if !v1 && parts.count == 3 && (parts[0] == "fold" || parts[0] == "remove") {
                    guard let name = MetricFileName(parsing: parts[2]), !name.isArchive, name.isNativeHistogram == native,
                          !native || parts[0] == "fold", MetricFileName(parsingStaged: parts[1]) == name else { return nil }
                    j.sources.append(Source(hidden: parts[1], name: parts[2], folds: parts[0] == "fold"))
                } else {
                    return nil
                }
            }
            return j
        }
    }
}
