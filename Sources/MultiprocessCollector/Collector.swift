import MmapStore
import SystemCalls
import PromMetrics
import Synchronization

/// What one collection of a multiprocess directory produced.
public struct CollectResult: Sendable {
    /// The metric families, sorted by name; in each, series sorted by labels.
    public var families: [MetricFamilySnapshot]
    /// The files that were skipped, each with its path and the reason.
    public var problems: [MetricFileError]
    /// Names of in-process families that were left out because the directory (or an earlier
    /// in-process family) already exports that family name or one of its sample names.
    public var droppedFamilies: [String]
    /// Counts and timing of the collection.
    public var statistics: CollectStatistics
}

/// Counts and timing of one collection.
public struct CollectStatistics: Hashable, Sendable {
    /// Files whose entries were merged.
    public var mergedFiles: Int
    /// Live-mode gauge files left out because their owner is provably dead.
    public var deadOwnerFiles: Int
    /// Files skipped because they could not be named or read.
    public var badFiles: Int
    /// File entries read.
    public var entries: Int
    /// Wall time of the collection, in seconds.
    public var durationSeconds: Double
    /// Entries of files read by an earlier collection whose keys were trusted, not checked again.
    package var knownEntries = 0
    /// Of those, entries whose values were read from the file's kept mapping.
    package var mappedEntries = 0
}

/// Merges the metric files of a multiprocess directory, as prometheus_client's
/// `MultiProcessCollector` does, for exposition.
///
/// Every `*.db` file written by this package or by prometheus_client (0.18 and later) is
/// merged with Python's semantics for each type and gauge mode. Beyond Python:
///
/// - **Native histograms**: the native buckets of every process (`native_<pid>.pmh`, files
///   prometheus_client never reads) are merged into the histogram families'
///   `nativeHistograms`, at the lowest schema and the widest zero bucket among the processes
///   (see `Histogram` and `NativeHistogramOptions`); the protobuf exposition carries them.
/// - **Exemplars**: the most recent exemplar of each counter and histogram bucket across every
///   process, live or dead (`exemplars_<pid>.pmx`, which prometheus_client never reads); the
///   OpenMetrics and protobuf expositions carry them.
/// - **Dead owners**: a live-mode gauge file (`gauge_live*_<pid>.db`) whose owner is provably
///   dead (this package's file lock is free) is left out, without anyone calling mark-dead.
///   Files prometheus_client wrote carry no lock and are always merged.
/// - **Damage**: a file that is empty, truncated, garbage, of an unknown format version,
///   wrongly named, a symbolic link, or that vanished between listing and reading, is skipped;
///   the collection names it in ``CollectResult/problems``, tells its `ProblemReporter`
///   (standard error by default) once while the problem lasts, and counts it in a
///   self-metric. Everything else is still exported. A live-mode gauge file deleted during the collection (mark-dead) is
///   skipped silently, as in Python.
/// - **Determinism**: files are merged in name order, families are sorted by name and series
///   by labels, so the same directory always gives the same output.
///
/// ```swift
/// let collector = MultiProcessCollector(directory: "/run/metrics")
/// let result = collector.collect()
/// for family in result.families { print(family.name, family.samples.count) }
/// ```
///
/// The serving process's own registry can be exported alongside (see
/// ``collect(including:)``). The collector keeps no state between collections except which
/// problems it has already reported; it is safe to call from several threads at once.
public final class MultiProcessCollector: Sendable {
    /// The multiprocess directory.
    public let directory: String
    /// Whether collections add the `prom_multiproc_collector_*` self-metrics.
    package let includesSelfMetrics: Bool
    /// Whether live-mode gauge files of provably dead owners are left out.
    package let skipsDeadOwners: Bool
    /// How many threads a collection reads and merges files on.
    package let mergeThreads: Int
    /// How many entries the files a collection reads must hold, as the last collection knew
    /// them, before other threads read ahead of the merge (fewer: starting them costs more).
    /// 0 (tests) also makes the families of any merge on several threads.
    package let readAheadEntries: Int
    private let reporter: ProblemReporter
    /// Problems already reported (`path NUL reason`), so a lasting problem is reported once.
    private let reported = Locked<Set<String>>([])
    /// Keys decoded (and files read, and mapped) by earlier collections. A collection holds
    /// it for its whole merge, so concurrent collections merge one after the other.
    private let catalog = Locked<KeyCatalog?>(nil)

    /// Creates a collector over `directory`.
    /// - Parameters:
    ///   - directory: the multiprocess directory (`PROMETHEUS_MULTIPROC_DIR`).
    ///   - includeSelfMetrics: add the `prom_multiproc_collector_*` families (files merged,
    ///     bad files by reason, dead-owner files, entries, duration). Tests that compare
    ///     against prometheus_client turn them off.
    ///   - skipDeadOwners: leave out live-mode gauge files whose owner is provably dead.
    ///   - reporter: told once about each new problem: a skipped file, as a `Problem` with
    ///     the code `skipped_metric_file` whose `error` is the file's `MetricFileError`. By
    ///     default the process-wide reporter (`ProblemReporter.default`, standard error unless
    ///     the application bootstrapped another).
    ///   - maxMergeThreads: the most threads a collection reads files on; by default one per
    ///     processor the process can use (its CPU affinity and its cgroup's CPU quota count,
    ///     as they are when the process makes its first collector), at most 8. The output is
    ///     the same for any number. One thread merges; in directories of about 20,000
    ///     entries or more, the others read ahead the values of files whose keys are known:
    ///     files the last collection read (a serving collector's scrapes after its first), and
    ///     files equal but for their values to the last file of their kind.
    public convenience init(directory: String, includeSelfMetrics: Bool = true, skipDeadOwners: Bool = true,
                            reporter: ProblemReporter = .default, maxMergeThreads: Int? = nil) {
        self.init(directory: directory, includeSelfMetrics: includeSelfMetrics, skipDeadOwners: skipDeadOwners,
                  reporter: reporter, maxMergeThreads: maxMergeThreads, readAheadEntries: 20_000)
    }

    /// One merge thread per processor the process may use, at most 8: read once per process
    /// (a few small files under `/proc` and `/sys`), not for every collector, as applications
    /// that make a collector per scrape would.
    private static let defaultMergeThreads = Swift.min(8, Sys.usableProcessors())

    /// Creates a collector whose merge threads read ahead once the files hold about
    /// `readAheadEntries` entries (tests read ahead in small directories).
    package init(directory: String, includeSelfMetrics: Bool, skipDeadOwners: Bool = true, reporter: ProblemReporter,
                 maxMergeThreads: Int?, readAheadEntries: Int) {
        self.directory = directory
        self.includesSelfMetrics = includeSelfMetrics
        self.skipsDeadOwners = skipDeadOwners
        self.reporter = reporter
        self.mergeThreads = Swift.max(1, maxMergeThreads ?? Self.defaultMergeThreads)
        self.readAheadEntries = readAheadEntries
    }

    /// Creates a collector whose reporter takes the skipped file's error directly.
    /// - Parameters:
    ///   - directory: the multiprocess directory.
    ///   - includeSelfMetrics: add the `prom_multiproc_collector_*` families.
    ///   - skipDeadOwners: leave out live-mode gauge files whose owner is provably dead.
    ///   - reporter: called once for each new problem (a skipped file).
    @available(*, deprecated, message: "pass a ProblemReporter: a skipped file's MetricFileError is the error of its Problem")
    public convenience init(directory: String, includeSelfMetrics: Bool = true, skipDeadOwners: Bool = true,
                            reporter: @escaping @Sendable (MetricFileError) -> Void) {
        self.init(directory: directory, includeSelfMetrics: includeSelfMetrics, skipDeadOwners: skipDeadOwners,
                  reporter: ProblemReporter { problem in
                      if let error = problem.error as? MetricFileError { reporter(error) }
                  })
    }

    /// Writes `prom-multiproc: skipping metric file <path>: <reason>` to standard error.
    @available(*, deprecated, message: "use ProblemReporter.standardError, the collector's default")
    public static let standardErrorReporter: @Sendable (MetricFileError) -> Void = { error in
        ProblemReporter.standardError.report(skippedFile(error))
    }

    /// The problem reported for a file a collection skipped.
    static func skippedFile(_ error: MetricFileError) -> Problem {
        Problem(code: "skipped_metric_file", message: "skipping metric file \(error.path): \(error.reason)", error: error)
    }

    /// Merges the directory, and adds the serving process's own families.
    ///
    /// Never fails: a directory that cannot be listed gives no directory families and one
    /// problem naming it.
    ///
    /// In-process families are added after the directory's and never double-count: a family
    /// whose name, or any of whose sample names, is already exported by the directory (or by
    /// an earlier in-process family, the self-metrics first) is left out and named in
    /// ``CollectResult/droppedFamilies``. Give only what is not backed by the directory, for
    /// example a registry of process-local metrics; metrics that live in the directory are
    /// already merged from it.
    /// - Parameter inProcess: families from the serving process's registry.
    /// - Returns: the families sorted by name, and the files that were skipped.
    public func collect(including inProcess: [MetricFamilySnapshot] = []) -> CollectResult {
        collect(including: inProcess, alongside: { _ in [] })
    }

    /// Merges the directory, and adds the serving process's own families and those `alongside`
    /// makes from this collection's listing (such as the live workers' process metrics), so
    /// the directory is listed once per scrape.
    ///
    /// `alongside` is called after the merge, once the directory lock is released, with the
    /// paths of the `*.db` files listed (sorted by name; those an interrupted compaction
    /// already folded are left out). Its families come after `inProcess`, under the same rule:
    /// a family that clashes with an earlier one is left out.
    ///
    /// With `names`, only the listed samples are exported (prometheus_client's
    /// `restricted_registry`, see ``SampleNameFilter``), from the directory and from every
    /// other source alike; the merge skips the families that cannot hold one.
    ///
    /// With `typesFromMetadata` (for OpenMetrics), the gauge families that the directory's
    /// metadata files record as Info or Enum are typed `info` and `stateset`
    /// (``DirectoryMetadata``); without it they stay the gauges prometheus_client exports.
    /// With `createdSeries` (for OpenMetrics and protobuf), each counter, histogram and
    /// summary series the metadata files know gets `<name>_created`: the earliest time a
    /// process created it. Without `exemplars` (for text 0.0.4, which has none), the exemplar
    /// files are not read.
    package func collect(including inProcess: [MetricFamilySnapshot],
                         alongside: (_ listedPaths: [String]) -> [MetricFamilySnapshot],
                         names: SampleNameFilter? = nil, typesFromMetadata: Bool = false,
                         createdSeries: Bool = false, exemplars: Bool = true) -> CollectResult {
        let started = Sys.monotonicNanoseconds()
        var listProblems: [MetricFileError] = []
        var paths: [String] = []
        // Read under the shared directory lock: a compactor commits (renames its archives and
        // removes their sources) under the exclusive lock, so a scrape never sees an archive
        // together with the files folded into it. After a compactor crash, its journal tells
        // which of the sources it renamed out of the `*.db` namespace still count.
        var directoryLock = FileLock.sharedDirectory(directory)
        var nativeFiles: [(path: String, name: String)] = []
        var metadataPaths: [String] = []
        var exemplarPaths: [String] = []
        // The `*.db` files listed (for `alongside`); `paths` adds hidden sources to merge.
        var listed: [String] = []
        switch DirectoryListing.read(directory) {
        case .success(let listing):
            let p = listing.metricFiles
            // After a compactor crash: sources it hid are read under their names, sources
            // already folded into an archive in place are left out.
            let interrupted = Compactor.interrupted(directory: directory)
            if interrupted.leaveOut.isEmpty && interrupted.include.isEmpty {
                paths = p
                listed = p
            } else {
                var named = p.map { (path: $0, name: MetricFileName.baseName(of: $0)) }.filter { !interrupted.leaveOut.contains($0.name) }
                listed = named.map(\.path)
                named += interrupted.include
                named.sort { $0.name != $1.name ? $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) : $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
                paths = named.map(\.path)
            }
            nativeFiles = listing.nativeHistogramFiles.map { ($0, MetricFileName.baseName(of: $0)) }
            // The native-histogram files an interrupted compaction hid and has not folded into
            // an archive in place count under their names, once (its own journal).
            let hiddenNatives = Compactor.interruptedNative(directory: directory)
            if !hiddenNatives.isEmpty {
                nativeFiles += hiddenNatives
                nativeFiles.sort { $0.name != $1.name ? $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) : $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
            }
            if typesFromMetadata || createdSeries { metadataPaths = listing.metadataFiles }
            if exemplars { exemplarPaths = listing.exemplarFiles }
        case .failure(let e): listProblems.append(e)
        }
        // One merge at a time: each starts from the catalog the last one left, where two at
        // once would leave one to decode every key again (several times a warm merge's work).
        var output = catalog.withLock { kept in
            let start: KeyCatalog
            switch kept.take() {
            case .some(let c): start = c
            case .none: start = KeyCatalog()
            }
            let run = Self.merge(sortedPaths: paths, accumulate: true, skipDeadOwners: skipsDeadOwners, threads: mergeThreads,
                                 readAheadEntries: readAheadEntries, catalog: start, filter: names)
            // Keep the catalog unless most of it is stale (series churn): then start afresh.
            // A filtered merge fills only part of it: keep it then.
            if names != nil || run.catalog.seriesCount <= 2 * run.output.seriesMerged + 10_000 {
                kept = consume run.catalog
            }
            return run.output
        }
        // Native-histogram buckets, read under the same lock (wipe removes them under the
        // exclusive one); merged across processes into the histogram families below.
        var natives = NativeMerge()
        natives.add(files: nativeFiles)
        var metadata = DirectoryMetadata()
        metadata.add(paths: metadataPaths, creationTimes: createdSeries)
        var exemplarMerge = ExemplarMerge()
        exemplarMerge.add(paths: exemplarPaths)
        // Released here, not at the end: what `alongside` reads is not in the directory.
        withExtendedLifetime(directoryLock) {}
        directoryLock = nil
        natives.attach(to: &output.families)
        if typesFromMetadata { metadata.applyTypes(to: &output.families) }
        if createdSeries { metadata.attachCreated(to: &output.families) }
        exemplarMerge.attach(to: &output.families)
        output.problems = listProblems + output.problems + natives.problems + metadata.problems + exemplarMerge.problems
        report(output.problems)
        var statistics = CollectStatistics(
            mergedFiles: output.mergedFiles + natives.mergedFiles + metadata.mergedFiles + exemplarMerge.mergedFiles,
            deadOwnerFiles: output.deadOwnerFiles.count, badFiles: output.problems.count,
            entries: output.entries + natives.entries + metadata.entries + exemplarMerge.entries, durationSeconds: 0)
        statistics.durationSeconds = Double(Sys.monotonicNanoseconds() &- started) / 1e9
        statistics.knownEntries = output.knownEntries
        statistics.mappedEntries = output.mappedEntries
        var extra: [MetricFamilySnapshot] = []
        if includesSelfMetrics { extra += Self.selfMetrics(statistics, problems: output.problems) }
        extra += inProcess
        extra += alongside(listed)
        var (families, dropped) = Self.combine(directory: output.families, inProcess: extra)
        if let names { families = names.restrict(families) }
        return CollectResult(families: families, problems: output.problems, droppedFamilies: dropped, statistics: statistics)
    }

    /// Calls the reporter for problems not reported by the previous collections; forgets
    /// problems that are gone, so one that comes back is reported again.
    private func report(_ problems: [MetricFileError]) {
        var fresh: [MetricFileError] = []
        reported.withLock { seen in
            var now = Set<String>()
            for p in problems {
                let key = p.path + "\u{0}" + p.reasonCode.rawValue
                now.insert(key)
                if !seen.contains(key) { fresh.append(p) }
            }
            seen = now
        }
        for p in fresh { reporter.report(Self.skippedFile(p)) }
    }

    // MARK: package API (the CLI and compaction)

    /// The paths of the `*.db` names in `directory`, sorted by name. Other names (such as the
    /// store's `.tmp-*` files) are ignored.
    package static func listMetricFiles(in directory: String) -> Result<[String], MetricFileError> {
        DirectoryListing.read(directory).map(\.metricFiles)
    }

    /// Merges the given files, like prometheus_client's `MultiProcessCollector.merge`.
    ///
    /// Files are merged in the order of their names (not the order given), so the result is
    /// deterministic. With `accumulate: false`, histogram buckets keep per-bucket counts and
    /// no `_count` is made: the form compaction writes back into a file.
    /// - Parameters:
    ///   - files: paths of metric files.
    ///   - accumulate: `true` for exposition, `false` for writing back.
    ///   - skipDeadOwners: leave out live-mode gauge files whose owner is provably dead.
    ///   - threads: how many threads read the files (the output does not depend on it).
    package static func merge(files: [String], accumulate: Bool = true, skipDeadOwners: Bool = true,
                              threads: Int = 1) -> MergeOutput {
        let ordered = files.sorted {
            MetricFileName.baseName(of: $0).utf8.lexicographicallyPrecedes(MetricFileName.baseName(of: $1).utf8)
        }
        return merge(sortedPaths: ordered, accumulate: accumulate, skipDeadOwners: skipDeadOwners, threads: threads,
                     readAheadEntries: 0, catalog: KeyCatalog()).output
    }

    static func merge(sortedPaths: [String], accumulate: Bool, skipDeadOwners: Bool, threads: Int, readAheadEntries: Int,
                      catalog: consuming KeyCatalog, filter: SampleNameFilter? = nil) -> MergeRun {
        var engine = MergeEngine(catalog: catalog, filter: filter)
        engine.add(paths: sortedPaths, skipDeadOwners: skipDeadOwners, threads: threads, readAheadEntries: readAheadEntries)
        return engine.finish(accumulate: accumulate, threads: threads,
                             parallelSeries: readAheadEntries == 0 ? 0 : MergeEngine.parallelFinishSeries)
    }

    // MARK: self-metrics and in-process families

    /// The `prom_multiproc_collector_*` families describing one collection.
    static func selfMetrics(_ s: CollectStatistics, problems: [MetricFileError]) -> [MetricFamilySnapshot] {
        var byReason: [String: Int] = [:]
        // Every reason is present (at 0) before the first problem.
        for code in MetricFileError.ReasonCode.allCases { byReason[code.rawValue] = 0 }
        for p in problems { byReason[p.reasonCode.rawValue, default: 0] += 1 }
        let badSamples = byReason.keys.sorted().map {
            Sample(name: "prom_multiproc_collector_bad_files", labels: [Label("reason", $0)], value: Double(byReason[$0] ?? 0))
        }
        func gauge(_ name: String, _ help: String, _ value: Double, unit: String? = nil) -> MetricFamilySnapshot {
            MetricFamilySnapshot(name: name, kind: .gauge, help: help, unit: unit, samples: [Sample(name: name, value: value)])
        }
        return [
            MetricFamilySnapshot(
                name: "prom_multiproc_collector_bad_files", kind: .gauge,
                help: "Metric files the last collection skipped because they could not be named or read, by reason.",
                samples: badSamples),
            gauge("prom_multiproc_collector_dead_owner_files",
                  "Live-mode gauge files the last collection left out because their owner is dead.", Double(s.deadOwnerFiles)),
            gauge("prom_multiproc_collector_duration_seconds",
                  "Time the last collection took to list, read and merge the directory.", s.durationSeconds, unit: "seconds"),
            gauge("prom_multiproc_collector_entries", "File entries the last collection read.", Double(s.entries)),
            gauge("prom_multiproc_collector_files", "Metric files the last collection merged.", Double(s.mergedFiles)),
        ]
    }

    /// The directory's families plus the in-process ones that clash with nothing, sorted by
    /// name; and the names of those dropped. Package access: the `/metrics` handler combines
    /// its own and the server's families the same way when it merges no directory.
    package static func combine(directory: [MetricFamilySnapshot], inProcess: [MetricFamilySnapshot]) -> ([MetricFamilySnapshot], [String]) {
        guard !inProcess.isEmpty else { return (directory, []) }
        var taken = Set<String>()
        func claim(_ family: MetricFamilySnapshot) {
            taken.insert(family.name)
            var last: String?
            for s in family.samples where s.name != last {
                taken.insert(s.name)
                last = s.name
            }
        }
        for f in directory { claim(f) }
        var result = directory
        var dropped: [String] = []
        for f in inProcess {
            var clash = taken.contains(f.name)
            var last: String?
            for s in f.samples where !clash && s.name != last {
                clash = taken.contains(s.name)
                last = s.name
            }
            if clash { dropped.append(f.name); continue }
            claim(f)
            result.append(f)
        }
        result.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        return (result, dropped)
    }
}
