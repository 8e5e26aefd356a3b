import SystemCalls
import MmapStore

/// How a compaction should treat files whose owner may be dead.
public struct CompactionOptions: Sendable {
    /// Also remove `gauge_all`/`gauge_liveall` files of dead processes (their per-pid series
    /// then disappear from the output). Off by default: `all` gauges keep dead pids' series.
    public var dropDeadAllGauges = false
    /// Where `/proc` cannot be scanned (another pid namespace, no permission): treat a file
    /// prometheus_client wrote as dead when no process has its pid, even without `mark-dead`.
    /// Unsafe for identities that are not pids of this pid namespace; off by default. Where
    /// `/proc` can be scanned it changes nothing: a file nobody maps or holds is dead anyway.
    public var checkPythonPids = false
    /// Where procfs is mounted, for the scan of the files in use; nil: no scan (the fallback
    /// to the dead list and running pids). Tests point it elsewhere to force the fallback.
    package var procRoot: String? = "/proc"

    /// Whether liveness is decided by a scan of `/proc` (the default). Turn it off when the
    /// directory is shared with writers this process cannot see (other containers, each in its
    /// own pid namespace): then the dead list (`mark-dead`) decides for prometheus_client's
    /// files, and a file whose pid has a running process here is never folded.
    public var scansProcesses: Bool {
        get { procRoot != nil }
        set { procRoot = newValue ? "/proc" : nil }
    }
    /// Called right after each step of the commit, before the next one. A seam for the tests
    /// that kill the compactor at every step (through the test worker's `compact-crash-after`
    /// mode); no shipped program sets it.
    package var afterStep: (@Sendable (CompactionStep) -> Void)?
    /// The same seam for the steps of the native-histogram files' fold, which runs after the
    /// `*.db` files' one under its own journal.
    package var afterNativeStep: (@Sendable (CompactionStep) -> Void)?

    /// Default options.
    public init() {}
}

/// The steps of a compaction that change the directory, in order; tests kill the compactor
/// after each one.
package enum CompactionStep: String, CaseIterable, Sendable {
    /// The staging journal names the files to fold and their hidden names; none renamed yet.
    case journalStaged = "journal-staged"
    /// The first source has been renamed out of the `*.db` (or `*.pmh`) namespace.
    case firstSourceHidden = "first-source-hidden"
    /// Every source is hidden.
    case sourcesHidden = "sources-hidden"
    /// Liveness re-checked; sources found in use put back.
    case rechecked = "rechecked"
    /// Temporary archives written and synced; the journal still the staging one.
    case archivesWritten = "archives-written"
    /// The commit journal is written: from here the compaction is rolled forward.
    case journalWritten = "journal-written"
    /// The first archive has been renamed into place.
    case firstArchiveRenamed = "first-archive-renamed"
    /// Every archive is in place; sources not yet removed.
    case archivesRenamed = "archives-renamed"
    /// The first source file has been removed.
    case firstSourceRemoved = "first-source-removed"
    /// Every source is removed; the journal not yet.
    case sourcesRemoved = "sources-removed"
}

/// What a compaction did.
public struct CompactionReport: Sendable {
    /// Files folded into archives and removed.
    public var folded: [String] = []
    /// Live-mode (or, on request, all-mode) gauge files of dead processes removed.
    public var removed: [String] = []
    /// Archives written.
    public var archives: [String] = []
    /// Files left as they were, with why (in use, unreadable, unknown liveness).
    public var kept: [(name: String, reason: String)] = []
    /// An interrupted compaction that was completed or rolled back first.
    public var recovered = false
    /// How liveness was decided: the `/proc` scans (processes, time), or why the dead list
    /// and running pids had to do.
    public var liveness = ""
}

/// Folds the files of dead processes into archive files (`counter_archive.db`,
/// `gauge_sum_archive.db`, ..., and `native_archive.pmh` for native histograms and summary
/// quantile windows) so that the number of files stays bounded under worker churn, while the
/// merged output stays the same.
///
/// The files of each kind are read and folded by the collector's merge engine (`MergeEngine`),
/// so a compaction combines values exactly as a scrape does (counters, summaries and histograms
/// summed; gauges by their mode's min, max, sum or most recent), and skips exactly the files a
/// scrape skips. Values are folded per key, by the key's exact bytes, and each archive entry
/// keeps the bytes its key was written with (a key prometheus_client spelled stays spelled so):
/// label values that are canonically equivalent but different code points stay different
/// series, as in prometheus_client and Prometheus.
///
/// ## When a file is dead
///
/// A file is folded (or, for a live-mode gauge, removed) only when no process can write into
/// it any more:
/// - its `flock` is free (a writer of this package holds its files' locks while it lives),
///   and this compactor takes it, so no writer of this package adopts the file meanwhile;
/// - no process on the host maps it or holds it open (``FilesInUse``: one scan of `/proc` per
///   compaction, matching each file's device and inode). This is what decides for the files
///   of prometheus_client, which carry no lock: a file nobody maps or holds is dead whatever
///   `mark-dead` said or did not say, and one a running process maps is kept even when its
///   pid is on the dead list (pid reuse);
/// - where `/proc` cannot be trusted (another pid namespace, no permission, a file system
///   whose mappings `/proc` names by another device), the fallback: no process may have the
///   file's pid, and a file of prometheus_client must have its pid declared dead
///   (`mark-dead`) or, on request, ``CompactionOptions/checkPythonPids``.
/// - A hard link (a second name) is never folded or removed; nor is anything but a regular
///   file.
///
/// ## Closing the race between the check and the fold
///
/// A process may open a file between the check and the fold: a prometheus_client worker that
/// reuses the pid opens `counter_<pid>.db` by name and continues its values. So the sources
/// are first renamed out of the `*.db` namespace, to `.fold-<nonce>-<name>`, and checked again:
/// - after the rename no writer can open a source: writers open their files by name, and a
///   late opener finds none and creates a fresh file (of this package: its lock would have
///   told it off anyway, since the compactor holds the lock). Nothing can start using the file
///   except by inheriting it: a process forked by one that holds it.
/// - the second scan lists the processes again until no new one appears. A process that holds
///   the source after the scan held it when it was scanned (it could not have opened it since,
///   nor inherited it from a holder without that holder having been seen holding it, or the
///   child having been listed and seen itself): if any holder is seen, the source is put back
///   under its name with `renameat2(RENAME_NOREPLACE)` — never over a new file of that name;
///   when one exists, under `<type>_<owner>~<n>.db`, which both collectors read and no writer
///   claims. A source nobody holds after the rename is dead for good: its values are final.
///
/// ## Crashes
///
/// One compactor at a time: it holds the directory lock exclusively (a second one waits), and
/// collectors read under the shared lock, so they see only states a crash can leave. The
/// journal (`.prom-multiproc-compaction-journal`, replaced atomically) tells them and the next
/// compaction what such a state means:
/// 1. *staging*: written before any rename; names each source and its hidden name. Killed
///    here (hiding, re-checking, writing temporary archives), a collector reads each hidden
///    source that exists as if it had its name (and a source both hidden and linked back, a
///    moment of the `link` fallback, once); the next compaction rolls back: every hidden
///    source is put back as above, the temporary archives are deleted.
/// 2. *commit*: written once the temporary archives are synced; names the archives and the
///    sources folded or removed. From here the compaction is rolled forward: archives renamed
///    into place, hidden sources removed, journal removed. A collector reads the hidden sources
///    of a kind whose archive is not in place yet and leaves out those whose archive is; hidden
///    live-mode gauges are dead and left out, as `mark-dead` would remove them.
/// So at every point each value is counted once by this package's collector. prometheus_client's
/// collector, which knows no journal, misses the hidden sources of an interrupted compaction
/// until the next one completes or rolls it back.
///
/// ## Native-histogram files
///
/// A dead process's `native_<pid>.pmh` (``NativeHistogramFile``: native-histogram series and
/// summary age buckets) is judged dead exactly as its `*.db` files are (its writer locks and
/// maps it through the same store), and folded into `native_archive.pmh` by the merge a scrape
/// uses (`NativeMerge`): each native series at the lowest schema and the widest zero bucket,
/// counts added; a series nobody counted into keeps the lowest schema and widest zero
/// threshold among its processes' settings; each summary window's age buckets added per
/// period (their expiry), the periods expired at compaction left out, and a window left with
/// none keeps one empty entry carrying its objectives, so its quantile lines (NaN) stay. The
/// native merge does not depend on the order of the files, so the archive, which sorts
/// elsewhere than the files it replaces, changes nothing. (One limit: a summary age bucket
/// stores no zero threshold, so one whose zero bucket widened past 2^-128 while merging, which
/// takes observations below about 1e-38, is read back at 2^-128.)
///
/// This fold runs after the `*.db` one, with the same steps (stage, hide as
/// `.fold-<nonce>-native_<pid>`, re-check, write `.fold-archive-<n>`, commit, complete) and its
/// own journal, `.prom-multiproc-native-compaction-journal`; collectors read its hidden sources
/// under their names until its archive is in place (``interruptedNative(directory:)``), and
/// ``CompactionOptions/afterNativeStep`` is its test seam. A separate journal, rather than
/// `.pmh` lines in the `*.db` journal, because earlier versions of this package reject a
/// journal with a line they do not know, or of a version they do not know, as if there were
/// none: an older compactor would then start a new compaction over the journal and leave the
/// `*.db` sources it named hidden for ever. With two journals an older binary sees the `*.db`
/// journal it knows, and ignores the native one: it neither recovers nor reads the hidden
/// native sources (an older collector undercounts the native part of an interrupted fold until
/// a compactor of this version completes or rolls it back), and it deletes nothing of it, since
/// the temporary archive is not named `.tmp-*` (which older compactors delete on recovery).
///
/// Unreadable files are reported and kept (put back), never removed. The dead list loses every
/// pid that has no file left to fold.
public enum Compactor {
    /// The journal's name inside the directory.
    package static let journalName = ".prom-multiproc-compaction-journal"
    static let tempArchivePrefix = ".tmp-archive-"
    /// The native-histogram compaction's journal.
    package static let nativeJournalName = ".prom-multiproc-native-compaction-journal"
    /// The temporary name of a native-histogram archive: not `.tmp-`, which compactors of
    /// earlier versions delete on recovery whatever journal names it.
    static let nativeTempArchivePrefix = ".fold-archive-"

    /// A file chosen for folding or removal, with its lock.
    struct Candidate {
        var name: String
        var parsed: MetricFileName
        var hidden: String
        var folds: Bool
        var lock: FileLock
        var writer: FileFormat.Writer?
    }

    /// Compacts `directory`.
    /// - Throws: `SystemError` naming the call and file when the directory cannot be changed;
    ///   `MetricFileError` when an existing archive is unreadable (the sources are put back).
    public static func compact(directory: String, options: CompactionOptions = CompactionOptions()) throws -> CompactionReport {
        let lock = try FileLock.directory(directory, exclusive: true)
        defer { withExtendedLifetime(lock) {} }
        var report = CompactionReport()
        report.recovered = try recover(directory: directory)
        let deadPython = DeadProcessList.read(directory: directory)
        let nonce = String(Sys.randomUInt64() & 0xFFFF_FFFF, radix: 16)

        // The files whose lock is free, by kind, in name order (the native-histogram files
        // last); the archives already there.
        var byKind: [FileKind: [(name: String, parsed: MetricFileName)]] = [:]
        var natives: [(name: String, parsed: MetricFileName)] = []
        for name in try DirectoryFiles.names(in: directory) where name.hasSuffix(".db") || name.hasSuffix(MetricFileName.nativeHistogramSuffix) {
            guard let parsed = MetricFileName(parsing: name) else { continue }
            if parsed.isNativeHistogram { natives.append((name, parsed)) } else if name.hasSuffix(".db") { byKind[parsed.kind, default: []].append((name, parsed)) }
        }
        natives.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var archivesThere: [FileKind: String] = [:]
        var nativeArchiveThere: String?
        var unlocked: [(name: String, parsed: MetricFileName, status: FileStatus, lock: FileLock)] = []
        func judge(_ name: String, _ parsed: MetricFileName) {
            let path = directory + "/" + name
            guard let status = try? DirectoryFiles.status(path), status.isRegular else {
                report.kept.append((name, "not a regular file")); return
            }
            guard status.links == 1 else { report.kept.append((name, "a hard link (\(status.links) names)")); return }
            // The journal is a list of space-separated names: a name it cannot hold whole
            // (a custom identity with a space or a control character) is never folded.
            guard name.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
                report.kept.append((name, "a name the compaction journal cannot hold")); return
            }
            let lockOutcome: FileLock?
            do { lockOutcome = try FileLock.exclusiveIfFree(path: path) } catch {
                report.kept.append((name, error.description)); return
            }
            guard let fileLock = lockOutcome else { report.kept.append((name, "alive: a process holds its lock")); return }
            unlocked.append((name, parsed, status, fileLock))
        }
        for kind in FileKind.allKinds {
            guard var files = byKind[kind] else { continue }
            files.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            for (name, parsed) in files {
                if parsed.isArchive { archivesThere[kind] = name; continue }
                judge(name, parsed)
            }
        }
        for (name, parsed) in natives {
            if parsed.isArchive { nativeArchiveThere = name; continue }
            judge(name, parsed)
        }
        defer { withExtendedLifetime(unlocked) {} }

        // Which of them a process maps or holds open: one scan, leaving out this process's
        // own locks on them; none when every file is locked by its writer.
        let held = Set(unlocked.map(\.lock.descriptor))
        let scan = unlocked.isEmpty ? .unavailable("no file without a held lock") :
            options.procRoot.map { FilesInUse.scan(directory: directory, procRoot: $0, ignoring: held) } ?? .unavailable("no /proc scan asked for")
        report.liveness = unlocked.isEmpty ? "no file to judge" : scan.summary
        var candidates: [Candidate] = []
        for (name, parsed, status, fileLock) in unlocked {
            let writer = fileLock.writer()
            if let why = whyAlive(parsed, status, writer, scan, deadPython, options) {
                report.kept.append((name, why)); continue
            }
            // Live-mode gauge files of dead processes go, as with mark-dead; all-mode ones keep
            // their per-pid series; the others (native-histogram files too) are folded into
            // the kind's archive.
            let folds: Bool
            switch parsed.kind {
            case .gauge(let mode):
                folds = !mode.isLive && mode.aggregation != .all
                if !mode.isLive && !folds && !options.dropDeadAllGauges {
                    report.kept.append((name, "all-mode gauge keeps its pid series")); continue
                }
            case .counter, .histogram, .summary: folds = true
            }
            candidates.append(Candidate(name: name, parsed: parsed, hidden: parsed.stagedName(nonce: nonce),
                                        folds: folds, lock: fileLock, writer: writer))
        }
        defer { withExtendedLifetime(candidates) {} }
        let pass = Pass(directory: directory, options: options, scan: scan, held: held, deadPython: deadPython)
        // Two compactions, one after the other, each with its own journal: the `*.db` files,
        // then the native-histogram files (see "Native-histogram files" above for why).
        let metricCandidates = candidates.filter { !$0.parsed.isNativeHistogram }
        if !metricCandidates.isEmpty {
            try foldMetricFiles(metricCandidates, archivesThere: archivesThere, pass, &report)
        }
        let nativeCandidates = candidates.filter { $0.parsed.isNativeHistogram }
        if !nativeCandidates.isEmpty {
            try foldNativeFiles(nativeCandidates, archiveThere: nativeArchiveThere, pass, &report)
        }
        try pruneDeadList(directory: directory, options: options)
        report.kept.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        return report
    }

    /// What both folds of one compaction share: the directory, the options, the liveness
    /// scan done before hiding, this process's own lock descriptors and the dead list.
    struct Pass {
        var directory: String
        var options: CompactionOptions
        var scan: FilesInUse
        var held: Set<Int32>
        var deadPython: Set<String>
    }

    /// Folds and removes the `*.db` candidates under the compaction journal.
    private static func foldMetricFiles(_ candidates: [Candidate], archivesThere: [FileKind: String], _ pass: Pass,
                                        _ report: inout CompactionReport) throws {
        let directory = pass.directory, options = pass.options
        // Stage: the journal first, then every source out of the `*.db` namespace.
        let staging = Journal(phase: .staging, archives: [], sources: candidates.map { .init(hidden: $0.hidden, name: $0.name, folds: $0.folds) })
        try DirectoryFiles.writeAtomically(staging.encoded(), to: directory + "/" + journalName)
        step(.journalStaged, .metricFiles, options)
        let confirmed = try hideAndRecheck(candidates, staging, pass, &report)

        // Fold each kind's sources and its archive, in name order (as a scrape reads them).
        var newArchives: [(kind: FileKind, entries: [(key: [UInt8], value: Double, timestamp: Double)], sources: [Candidate])] = []
        var reader = MetricFileReader()
        for kind in FileKind.allKinds {
            let sources = confirmed.filter { $0.folds && $0.parsed.kind == kind }
            guard !sources.isEmpty else { continue }
            var order: [(name: String, source: Candidate?)] = sources.map { ($0.name, $0) }
            if let archive = archivesThere[kind] { order.append((archive, nil)) }
            order.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            var engine = MergeEngine(folding: kind)
            var folded: [Candidate] = []
            for (name, source) in order {
                guard let source else {
                    do { _ = try engine.read(path: directory + "/" + name, reader: &reader) } catch {
                        // Nothing is changed yet: put every source back, and say why.
                        try rollBack(staging, directory: directory)
                        throw error
                    }
                    engine.foldRead()
                    continue
                }
                do { _ = try engine.read(path: directory + "/" + source.hidden, reader: &reader) } catch {
                    let back = try putBack(source.hidden, as: source.parsed, directory: directory)
                    report.kept.append((back, error.reason))
                    continue
                }
                engine.foldRead()
                folded.append(source)
            }
            guard !folded.isEmpty else { continue }
            newArchives.append((kind, engine.foldedEntries(), folded))
        }
        let removals = confirmed.filter { !$0.folds }

        // Write the new archives under temporary names, then commit.
        var archives: [(temp: String, final: String)] = []
        var committed: [Journal.Source] = []
        for a in newArchives {
            let finalName = MetricFileName(kind: a.kind, owner: MetricFileName.archiveOwner).description
            let temp = tempArchivePrefix + a.kind.prefix + "-" + String(Sys.randomUInt64() & 0xFFFF_FFFF, radix: 16)
            try DirectoryFiles.writeAtomically(MetricFileBuilder.bytes(entries: a.entries), to: directory + "/" + temp)
            archives.append((temp, finalName))
            report.folded += a.sources.map(\.name)
            committed += a.sources.map { .init(hidden: $0.hidden, name: $0.name, folds: true) }
        }
        report.removed = removals.map(\.name)
        committed += removals.map { .init(hidden: $0.hidden, name: $0.name, folds: false) }
        step(.archivesWritten, .metricFiles, options)

        let journal = Journal(phase: .commit, archives: archives, sources: committed)
        try DirectoryFiles.writeAtomically(journal.encoded(), to: directory + "/" + journalName)
        step(.journalWritten, .metricFiles, options)
        try complete(journal, directory: directory, options: options)
        report.archives += archives.map(\.final)
    }

    /// Renames every candidate out of the listed namespaces (its journal, `staging`, already
    /// names it), scans `/proc` again and puts back what is in use.
    /// - Returns: the candidates still hidden and dead: their values are final.
    static func hideAndRecheck(_ candidates: [Candidate], _ staging: Journal, _ pass: Pass,
                               _ report: inout CompactionReport) throws -> [Candidate] {
        let directory = pass.directory, options = pass.options, scan = pass.scan
        var staged: [Candidate] = []
        for c in candidates {
            do { try DirectoryFiles.renameNoReplace(directory + "/" + c.name, to: directory + "/" + c.hidden) } catch {
                // Removed meanwhile (mark-dead takes no directory lock): nothing to fold.
                if error.errno == .noEntry { continue }
                try rollBack(staging, directory: directory)
                throw error
            }
            staged.append(c)
            if staged.count == 1 { step(.firstSourceHidden, staging.files, options) }
        }
        step(.sourcesHidden, staging.files, options)

        // Re-check: no writer can open a hidden source by name any more.
        var recheck = scan
        if case .complete = scan.availability, let procRoot = options.procRoot {
            recheck = FilesInUse.scan(directory: directory, procRoot: procRoot, ignoring: pass.held)
            report.liveness += (staging.files == .metricFiles ? "; re-check after hiding: " : "; re-check after hiding the native-histogram files: ")
                + recheck.summary
        }
        var confirmed: [Candidate] = []
        for c in staged {
            let hiddenPath = directory + "/" + c.hidden
            guard let status = try? DirectoryFiles.status(hiddenPath) else { continue }
            if let why = whyAlive(c.parsed, status, c.writer, recheck, pass.deadPython, options) {
                let back = try putBack(c.hidden, as: c.parsed, directory: directory)
                report.kept.append((back, why + " (seen after it was hidden: put back)"))
                continue
            }
            confirmed.append(c)
        }
        step(.rechecked, staging.files, options)
        return confirmed
    }

    /// Why a file whose lock is free cannot be folded (it is alive, or may be), or nil when
    /// it is dead.
    private static func whyAlive(_ parsed: MetricFileName, _ status: FileStatus, _ writer: FileFormat.Writer?,
                                 _ scan: FilesInUse, _ deadPython: Set<String>, _ options: CompactionOptions) -> String? {
        switch scan.state(of: status) {
        case .inUse: return "in use: a running process maps it or holds it open"
        case .free: return nil
        case .unknown(let why):
            if let pid = parsed.pid, Sys.processExists(pid) {
                return "a process with pid \(pid) is running (no /proc liveness: \(why))"
            }
            if case .swift = writer { return nil }
            guard deadPython.contains(parsed.owner) || (options.checkPythonPids && parsed.pid != nil) else {
                return "written by prometheus_client, no /proc liveness (\(why)): use mark-dead"
            }
            return nil
        }
    }

    /// Renames a hidden source back to its name, or, when a new file took that name meanwhile,
    /// to `<type>_<owner>~<n>.db` (`native_<owner>~<n>.pmh`); never over an existing file.
    /// - Returns: the name it has now.
    static func putBack(_ hidden: String, as name: MetricFileName, directory: String) throws(SystemError) -> String {
        let hiddenPath = directory + "/" + hidden
        var target = name.description
        for n in 1...1000 {
            do {
                try DirectoryFiles.renameNoReplace(hiddenPath, to: directory + "/" + target)
                return target
            } catch {
                if error.errno == .noEntry { return target }
                guard error.errno == .exists else { throw error }
                // The same file under both names (the `link` fallback, interrupted): drop one.
                if let a = try? DirectoryFiles.status(hiddenPath), let b = try? DirectoryFiles.status(directory + "/" + target),
                   a.device == b.device, a.inode == b.inode {
                    try DirectoryFiles.remove(hiddenPath)
                    return target
                }
                let owner = "\(name.owner)~\(n)"
                target = (name.isNativeHistogram ? MetricFileName(nativeHistogramOwner: owner) : MetricFileName(kind: name.kind, owner: owner)).description
            }
        }
        throw SystemError(call: "rename", path: hiddenPath, errno: .exists)
    }

    /// Removes from the dead list every pid with no file left that compaction could fold or
    /// remove (all-mode gauges count only when they would be dropped).
    private static func pruneDeadList(directory: String, options: CompactionOptions) throws(SystemError) {
        guard DirectoryFiles.exists(directory + "/" + DeadProcessList.fileName) else { return }
        var owners = Set<String>()
        for name in try DirectoryFiles.names(in: directory) {
            // Metadata and exemplar files are never folded: a pid with only those has nothing
            // left to fold.
            guard let parsed = MetricFileName(parsing: name), !parsed.isArchive, parsed.isFoldable else { continue }
            if case .gauge(let mode) = parsed.kind, mode == .all, !options.dropDeadAllGauges { continue }
            owners.insert(parsed.owner)
        }
        try DeadProcessList.update(directory: directory) { dead in dead.formIntersection(owners) }
    }

    /// Finishes a committed compaction: archives into place, sources removed, journal removed.
    static func complete(_ journal: Journal, directory: String, options: CompactionOptions) throws(SystemError) {
        for (i, a) in journal.archives.enumerated() {
            let temp = directory + "/" + a.temp
            if DirectoryFiles.exists(temp) { try DirectoryFiles.rename(temp, to: directory + "/" + a.final) }
            if i == 0 { step(.firstArchiveRenamed, journal.files, options) }
        }
        step(.archivesRenamed, journal.files, options)
        for (i, s) in journal.sources.enumerated() {
            do { try DirectoryFiles.remove(directory + "/" + (s.hidden ?? s.name)) } catch {
                if error.errno != .noEntry { throw error }
            }
            if i == 0 { step(.firstSourceRemoved, journal.files, options) }
        }
        step(.sourcesRemoved, journal.files, options)
        try DirectoryFiles.remove(directory + "/" + journal.files.journalName)
    }

    /// Undoes a staged compaction: every hidden source back under its name (never over a new
    /// file), then the journal removed. Temporary archives are left to ``recover(directory:)``.
    static func rollBack(_ journal: Journal, directory: String) throws(SystemError) {
        for s in journal.sources {
            guard let hidden = s.hidden, let name = MetricFileName(parsing: s.name),
                  DirectoryFiles.exists(directory + "/" + hidden) else { continue }
            _ = try putBack(hidden, as: name, directory: directory)
        }
        try DirectoryFiles.remove(directory + "/" + journal.files.journalName)
    }

    /// Completes an interrupted compaction (rolls a committed one forward, a staged one back)
    /// and deletes temporary archives no journal names. Call with the directory lock held
    /// exclusively.
    /// - Returns: whether there was an interrupted compaction to complete.
    static func recover(directory: String) throws(SystemError) -> Bool {
        var recovered = false
        for files in [Journal.Files.metricFiles, .nativeHistograms] {
            guard let journal = Journal.read(directory: directory, files: files) else { continue }
            switch journal.phase {
            case .commit: try complete(journal, directory: directory, options: CompactionOptions())
            case .staging: try rollBack(journal, directory: directory)
            }
            recovered = true
        }
        let now = DirectoryFiles.wallClock()
        for name in try DirectoryFiles.names(in: directory) where name.hasPrefix(nativeTempArchivePrefix) {
            // No journal names it any more: a native-histogram archive never committed.
            try? DirectoryFiles.remove(directory + "/" + name)
            recovered = true
        }
        for name in try DirectoryFiles.names(in: directory) where name.hasPrefix(".tmp-") {
            let path = directory + "/" + name
            if name.hasPrefix(tempArchivePrefix) || name.hasPrefix(".tmp-write-") {
                try? DirectoryFiles.remove(path)
                recovered = true
                continue
            }
            // A writer killed while creating its file leaves `.tmp-<kind>_<pid>-*`. One that
            // is unlocked and a minute old is abandoned (a live creator locks it within
            // microseconds).
            guard let st = try? DirectoryFiles.status(path), st.isRegular, now - st.modificationTime > 60,
                  let held = try? FileLock.exclusiveIfFree(path: path) else { continue }
            try? DirectoryFiles.remove(path)
            withExtendedLifetime(held) {}
        }
        return recovered
    }

    /// What a reader must do about an interrupted compaction: the `*.db` names to leave out
    /// (sources a compaction of the first journal format folded into an archive in place), and
    /// the hidden sources to read as if they had their names (`path`, `name`). Read under the
    /// shared directory lock.
    package static func interrupted(directory: String) -> (leaveOut: Set<String>, include: [(path: String, name: String)]) {
        guard let journal = Journal.read(directory: directory, files: .metricFiles) else { return ([], []) }
        var leaveOut = Set<String>()
        var include: [(path: String, name: String)] = []
        var inPlace = Set<String>()
        for a in journal.archives where !DirectoryFiles.exists(directory + "/" + a.temp) { inPlace.insert(a.final) }
        for s in journal.sources {
            guard let parsed = MetricFileName(parsing: s.name) else { continue }
            let archive = MetricFileName(kind: parsed.kind, owner: MetricFileName.archiveOwner).description
            // Folded (its archive is in place), or removed (a live gauge: like mark-dead).
            let gone = journal.phase == .commit && (inPlace.contains(archive) || !journal.archives.contains { $0.final == archive })
            guard let hidden = s.hidden else {
                if gone { leaveOut.insert(s.name) }
                continue
            }
            guard !gone, let h = try? DirectoryFiles.status(directory + "/" + hidden) else { continue }
            // Put back by `link` and not yet unlinked: the same file, already listed by name.
            if let n = try? DirectoryFiles.status(directory + "/" + s.name), n.device == h.device, n.inode == h.inode { continue }
            include.append((directory + "/" + hidden, s.name))
        }
        return (leaveOut, include)
    }

    static func step(_ s: CompactionStep, _ files: Journal.Files, _ options: CompactionOptions) {
        switch files {
        case .metricFiles: options.afterStep?(s)
        case .nativeHistograms: options.afterNativeStep?(s)
        }
    }
}
