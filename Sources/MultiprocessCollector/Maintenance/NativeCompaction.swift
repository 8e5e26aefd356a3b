import SystemCalls
import MmapStore
import PromMetrics

extension Compactor {
    /// Folds the native-histogram candidates (`native_<owner>.pmh`) and the archive already
    /// there into a new `native_archive.pmh`, under the native-histogram journal: the same
    /// steps as the `*.db` files' fold (stage, hide, re-check, write, commit, complete).
    static func foldNativeFiles(_ candidates: [Candidate], archiveThere: String?, _ pass: Pass,
                                _ report: inout CompactionReport) throws {
        let directory = pass.directory, options = pass.options
        let staging = Journal(files: .nativeHistograms, phase: .staging, archives: [],
                              sources: candidates.map { .init(hidden: $0.hidden, name: $0.name, folds: true) })
        try DirectoryFiles.writeAtomically(staging.encoded(), to: directory + "/" + nativeJournalName)
        step(.journalStaged, .nativeHistograms, options)
        let confirmed = try hideAndRecheck(candidates, staging, pass, &report)

        // Merged as a scrape merges them (the result does not depend on the order); summary
        // age buckets kept apart by period, those expired now left out.
        var merge = NativeMerge()
        merge.keepsPeriods = true
        var reader = MetricFileReader()
        if let archiveThere {
            do { merge.add(try NativeHistogramFile.read(path: directory + "/" + archiveThere, reader: &reader)) } catch {
                // Nothing is changed yet: put every source back, and say why.
                try rollBack(staging, directory: directory)
                throw error
            }
        }
        var folded: [Candidate] = []
        for source in confirmed {
            do { merge.add(try NativeHistogramFile.read(path: directory + "/" + source.hidden, reader: &reader)) } catch {
                // Damaged: reported and kept, as a scrape skips and reports it.
                let back = try putBack(source.hidden, as: source.parsed, directory: directory)
                report.kept.append((back, error.reason))
                continue
            }
            folded.append(source)
        }
        guard !folded.isEmpty else {
            // Every source was put back: nothing to commit.
            try DirectoryFiles.remove(directory + "/" + nativeJournalName)
            return
        }
        let finalName = MetricFileName(nativeHistogramOwner: MetricFileName.archiveOwner).description
        let temp = nativeTempArchivePrefix + String(Sys.randomUInt64() & 0xFFFF_FFFF, radix: 16)
        try DirectoryFiles.writeAtomically(MetricFileBuilder.bytes(entries: merge.archiveEntries()), to: directory + "/" + temp)
        step(.archivesWritten, .nativeHistograms, options)

        let journal = Journal(files: .nativeHistograms, phase: .commit, archives: [(temp, finalName)],
                              sources: folded.map { .init(hidden: $0.hidden, name: $0.name, folds: true) })
        try DirectoryFiles.writeAtomically(journal.encoded(), to: directory + "/" + nativeJournalName)
        step(.journalWritten, .nativeHistograms, options)
        try complete(journal, directory: directory, options: options)
        report.folded += folded.map(\.name)
        report.archives.append(finalName)
    }

    /// The native-histogram sources an interrupted compaction hid and not yet folded into an
    /// archive in place, to read as if they had their names (`path`, `name`). Read under the
    /// shared directory lock.
    package static func interruptedNative(directory: String) -> [(path: String, name: String)] {
        guard let journal = Journal.read(directory: directory, files: .nativeHistograms) else { return [] }
        // Committed and its archive renamed into place: the archive holds the sources' counts.
        if journal.phase == .commit, journal.archives.allSatisfy({ !DirectoryFiles.exists(directory + "/" + $0.temp) }) {
            return []
        }
        var include: [(path: String, name: String)] = []
        for s in journal.sources {
            guard let hidden = s.hidden, let h = try? DirectoryFiles.status(directory + "/" + hidden) else { continue }
            // Put back by `link` and not yet unlinked: the same file, already listed by name.
            if let n = try? DirectoryFiles.status(directory + "/" + s.name), n.device == h.device, n.inode == h.inode { continue }
            include.append((directory + "/" + hidden, s.name))
        }
        return include
    }
}

extension NativeMerge {
    /// The entries of a native-histogram file (``NativeHistogramFile``) that a scrape merges
    /// into exactly these series and windows: each native series at its merged schema and
    /// zero threshold (a series nobody counted into keeps those settings and no bucket), and
    /// each summary window's unexpired age buckets, one entry per period (its expiry), added
    /// across processes. A window with no unexpired age bucket keeps one empty entry carrying
    /// its objectives, so the scrape still exposes its quantile lines (NaN). Series in the
    /// order of their identities' bytes, so the same merge writes the same bytes.
    func archiveEntries() -> [(key: [UInt8], value: Double, timestamp: Double)] {
        var out: [(key: [UInt8], value: Double, timestamp: Double)] = []
        var offset = FileFormat.headerSize
        func append(_ key: [UInt8], _ value: UInt64, _ timestamp: Double) -> UInt32 {
            let valueOffset = offset + 4 + key.count + FileFormat.padding(keyLength: key.count)
            out.append((key, Double(bitPattern: value), timestamp))
            offset += FileFormat.entrySize(keyLength: key.count)
            return UInt32(truncatingIfNeeded: valueOffset)
        }
        func appendBuckets(_ c: NativeBucketCounts, series: UInt32) {
            func count(_ n: Double) -> UInt64 { UInt64(exactly: n.rounded()) ?? 0 }
            let sorted = c.sortedBuckets
            for (kind, buckets) in [(NativeHistogramFile.BucketKind.positive, sorted.positive), (.negative, sorted.negative)] {
                for b in buckets where b.count > 0 {
                    _ = append(NativeHistogramFile.key(.init(kind: kind, schema: c.schema, index: b.index), series: series), count(b.count), 0)
                }
            }
            if c.zeroCount > 0 { _ = append(NativeHistogramFile.key(.init(kind: .zero), series: series), count(c.zeroCount), 0) }
            if c.unbucketedCount > 0 {
                _ = append(NativeHistogramFile.key(.init(kind: .unbucketed), series: series), count(c.unbucketedCount), 0)
            }
        }
        for (_, m) in series.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let key = SeriesKey(family: m.family, sample: m.family, labels: m.labels, help: m.help).encoded()
            let at = append(key, NativeHistogramFile.configuration(schema: m.counts.schema), m.counts.zeroThreshold)
            appendBuckets(m.counts, series: at)
        }
        for (_, w) in windows.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let objectives = w.objectives
            let periods = w.periods.filter { Double(bitPattern: $0.key) > now }.sorted { Double(bitPattern: $0.key) < Double(bitPattern: $1.key) }
            guard !periods.isEmpty else {
                let sample = SummaryWindowEntry(ageBucket: 0, objectives: objectives).sampleName
                _ = append(SeriesKey(family: w.family, sample: sample, labels: w.labels, help: w.help).encoded(), 0, 0)
                continue
            }
            for (k, (expiry, counts)) in periods.enumerated() {
                let sample = SummaryWindowEntry(ageBucket: k, objectives: objectives).sampleName
                let key = SeriesKey(family: w.family, sample: sample, labels: w.labels, help: w.help).encoded()
                let at = append(key, NativeHistogramFile.configuration(schema: counts.schema), Double(bitPattern: expiry))
                appendBuckets(counts, series: at)
            }
        }
        return out
    }
}
