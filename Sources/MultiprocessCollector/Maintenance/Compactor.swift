import SystemCalls
import MmapStore

/// How a compaction should treat files whose owner may be dead.
public struct CompactionOptions: Sendable {
    /// Also remove `gauge_all`/`gauge_liveall` files of dead processes (their per-pid series
    /// then disappear from the output). Off by default: `all` gauges keep dead pids' series.
    public var dropDeadAllGauges = false
    /// Treat a prometheus_client file as dead when no process with its pid exists. Unsafe under
    /// pid reuse; off by default (then only pids declared dead with mark-dead are compacted).
    public var checkPythonPids = false
    /// Called right after each step of the commit, before the next one. A seam for the tests
    /// that kill the compactor at every step (through the test worker's `compact-crash-after`
    /// mode); no shipped program sets it.
    package var afterStep: (@Sendable (CompactionStep) -> Void)?

    /// Default options.
    public init() {}
}

/// The steps of a compaction's commit, in order; tests kill the compactor after each one.
package enum CompactionStep: String, CaseIterable, Sendable {
    /// Temporary archives written and synced; no journal yet.
    case archivesWritten = "archives-written"
    /// The journal is written: from here the compaction is rolled forward.
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
    /// Files left as they were, with why (alive, unreadable, unknown liveness).
    public var kept: [(name: String, reason: String)] = []
    /// An interrupted compaction that was completed first.
    public var recovered = false
}

/// Folds the files of dead processes into archive files (`counter_archive.db`,
/// `gauge_sum_archive.db`, ...) so that the number of files stays bounded under worker churn,
/// while the merged output stays the same.
///
/// The files of each kind are read and folded by the collector's merge engine (`MergeEngine`),
/// so a compaction combines values exactly as a scrape does (counters, summaries and histograms
/// summed; gauges by their mode's min, max, sum or most recent), and skips exactly the files a
/// scrape skips. Values are folded per key, by the key's exact bytes, and each archive entry
/// keeps the bytes its key was written with (a key prometheus_client spelled stays spelled so):
/// label values that are canonically equivalent but different code points stay different
/// series, as in prometheus_client and Prometheus.
///
/// Safety:
/// - One compactor at a time: it holds the directory lock exclusively (a second one waits).
/// - A file is folded only while the compactor holds its exclusive lock, so no writer can adopt
///   it meanwhile; files of this package are dead when nobody holds their lock; files of
///   prometheus_client only when their pid was declared dead (mark-dead) or, on request, no
///   process has that pid.
/// - New archives are written under temporary names and synced; then a journal names them and
///   the sources; then the archives are renamed into place and the sources removed; then the
///   journal goes. Killed at any point, the next run rolls a journaled compaction forward and
///   deletes unjournaled temporary archives. The collector reads under the shared directory
///   lock and, after a crash, uses the journal to leave out sources already folded, so it never
///   counts a value twice or loses one.
/// - Unreadable files are reported and kept, never removed.
public enum Compactor {
    /// The journal's name inside the directory.
    package static let journalName = ".prom-multiproc-compaction-journal"
    static let tempArchivePrefix = ".tmp-archive-"

    /// Compacts `directory`.
    /// - Throws: `SystemError` naming the call and file when the directory cannot be changed;
    ///   `MetricFileError` when an existing archive is unreadable (nothing is changed then).
    public static func compact(directory: String, options: CompactionOptions = CompactionOptions()) throws -> CompactionReport {
        let lock = try FileLock.directory(directory, exclusive: true)
        defer { withExtendedLifetime(lock) {} }
        var report = CompactionReport()
        report.recovered = try recover(directory: directory)

        let deadPython = DeadProcessList.read(directory: directory)
        // The metric files by kind, in the order a merge reads them (their names' bytes).
        var byKind: [FileKind: [(name: String, parsed: MetricFileName)]] = [:]
        for name in try DirectoryFiles.names(in: directory) where name.hasSuffix(".db") {
            guard let parsed = MetricFileName(parsing: name) else { continue }
            byKind[parsed.kind, default: []].append((name, parsed))
        }
        var held: [FileLock] = []
        var toRemove: [String] = []
        var compactedPids = Set<String>()
        var newArchives: [(kind: FileKind, entries: [(key: [UInt8], value: Double, timestamp: Double)], sources: [String])] = []
        var reader = MetricFileReader()

        for kind in FileKind.allKinds {
            guard var files = byKind[kind] else { continue }
            files.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            // Live-mode gauge files of dead processes go, as with mark-dead; all-mode ones keep
            // their per-pid series; the others are folded into the kind's archive.
            let folds: Bool
            switch kind {
            case .gauge(let mode): folds = !mode.isLive && mode.aggregation != .all
            case .counter, .histogram, .summary: folds = true
            }
            // Every file is read and checked by the merge engine, as a scrape reads it; the
            // dead ones, and the archive there already, are folded by it in name order, the
            // order a scrape reads them in.
            var engine = MergeEngine(folding: kind)
            var folded: [String] = []
            var archiveProblem: MetricFileError?
            for (name, parsed) in files {
                let path = directory + "/" + name
                if parsed.isArchive {
                    // Written by a compactor and owned by nobody; rewritten only with new sources.
                    guard folds else { continue }
                    do { _ = try engine.read(path: path, reader: &reader); engine.foldRead() } catch { archiveProblem = error }
                    continue
                }
                guard let status = try? DirectoryFiles.status(path), status.isRegular else {
                    report.kept.append((name, "not a regular file")); continue
                }
                let lockOutcome: FileLock?
                do { lockOutcome = try FileLock.exclusiveIfFree(path: path) } catch {
                    report.kept.append((name, error.description)); continue
                }
                guard let fileLock = lockOutcome else { report.kept.append((name, "alive")); continue }
                let writer: FileFormat.Writer
                do { writer = try engine.read(path: path, reader: &reader) } catch {
                    report.kept.append((name, error.reason)); continue
                }
                if writer == .python {
                    let known = deadPython.contains(parsed.owner)
                    let checked = options.checkPythonPids && parsed.pid.map { !Liveness.processExists(pid: $0) } == true
                    guard known || checked else {
                        report.kept.append((name, "written by prometheus_client; liveness unknown (use mark-dead)")); continue
                    }
                    compactedPids.insert(parsed.owner)
                }
                held.append(fileLock)
                if folds {
                    engine.foldRead()
                    folded.append(name)
                } else if case .gauge(let mode) = kind, !mode.isLive && !options.dropDeadAllGauges {
                    report.kept.append((name, "all-mode gauge keeps its pid series"))
                } else {
                    toRemove.append(name)
                }
            }
            guard !folded.isEmpty else { continue }
            // Nothing is changed yet: an unreadable archive stops the compaction here.
            if let archiveProblem { throw archiveProblem }
            newArchives.append((kind, engine.foldedEntries(), folded))
        }
        report.kept.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        guard !newArchives.isEmpty || !toRemove.isEmpty else { return report }

        // Write the new archives under temporary names.
        var archives: [(temp: String, final: String)] = []
        for a in newArchives {
            let finalName = MetricFileName(kind: a.kind, owner: MetricFileName.archiveOwner).description
            let temp = tempArchivePrefix + a.kind.prefix + "-" + String(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF, radix: 16)
            try DirectoryFiles.writeAtomically(MetricFileBuilder.bytes(entries: a.entries), to: directory + "/" + temp)
            archives.append((temp, finalName))
            report.folded += a.sources
        }
        report.removed = toRemove
        step(.archivesWritten, options)

        let journal = Journal(archives: archives, sources: report.folded + toRemove)
        try DirectoryFiles.writeAtomically(journal.encoded(), to: directory + "/" + journalName)
        step(.journalWritten, options)
        try complete(journal, directory: directory, options: options)
        report.archives = archives.map(\.final)

        var dead = DeadProcessList.read(directory: directory)
        dead.subtract(compactedPids)
        try DeadProcessList.write(dead, directory: directory)
        withExtendedLifetime(held) {}
        return report
    }

    /// Finishes a journaled compaction: archives into place, sources removed, journal removed.
    static func complete(_ journal: Journal, directory: String, options: CompactionOptions) throws(SystemError) {
        for (i, a) in journal.archives.enumerated() {
            let temp = directory + "/" + a.temp
            if DirectoryFiles.exists(temp) { try DirectoryFiles.rename(temp, to: directory + "/" + a.final) }
            if i == 0 { step(.firstArchiveRenamed, options) }
        }
        step(.archivesRenamed, options)
        for (i, s) in journal.sources.enumerated() {
            do { try DirectoryFiles.remove(directory + "/" + s) } catch {
                if error.errno != .noEntry { throw error }
            }
            if i == 0 { step(.firstSourceRemoved, options) }
        }
        step(.sourcesRemoved, options)
        try DirectoryFiles.remove(directory + "/" + journalName)
    }

    /// Completes an interrupted compaction (rolls a journaled one forward) and deletes
    /// temporary archives no journal names. Call with the directory lock held exclusively.
    /// - Returns: whether there was an interrupted compaction to complete.
    static func recover(directory: String) throws(SystemError) -> Bool {
        var recovered = false
        if let journal = Journal.read(directory: directory) {
            try complete(journal, directory: directory, options: CompactionOptions())
            recovered = true
        }
        let now = DirectoryFiles.wallClock()
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

    /// The source files a reader must leave out because an interrupted compaction already
    /// folded them into an archive that is in place. Read under the shared directory lock.
    package static func alreadyFolded(directory: String) -> Set<String> {
        guard let journal = Journal.read(directory: directory) else { return [] }
        var renamedKinds = Set<String>()
        for a in journal.archives where !DirectoryFiles.exists(directory + "/" + a.temp) {
            renamedKinds.insert(a.final)
        }
        var out = Set<String>()
        for s in journal.sources {
            guard let parsed = MetricFileName(parsing: s) else { continue }
            let archive = MetricFileName(kind: parsed.kind, owner: MetricFileName.archiveOwner).description
            // Removed live gauges are equivalent to mark-dead: leave them out as well.
            if renamedKinds.contains(archive) || !journal.archives.contains(where: { $0.final == archive }) { out.insert(s) }
        }
        return out
    }

    private static func step(_ s: CompactionStep, _ options: CompactionOptions) {
        options.afterStep?(s)
    }

    /// The journal: the archives (temporary and final names) and the sources of one compaction.
    struct Journal {
        var archives: [(temp: String, final: String)]
        var sources: [String]

        static let header = "prom-multiproc compaction journal v1"

        func encoded() -> [UInt8] {
            var lines = [Self.header]
            for a in archives { lines.append("archive \(a.temp) \(a.final)") }
            for s in sources { lines.append("source \(s)") }
            lines.append("end")
            return Array((lines.joined(separator: "\n") + "\n").utf8)
        }

        static func read(directory: String) -> Journal? {
            guard let bytes = try? DirectoryFiles.read(directory + "/" + Compactor.journalName) else { return nil }
            let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
            // Written atomically, so a journal is either whole or absent; check anyway.
            guard lines.first == header, lines.last == "end" else { return nil }
            var j = Journal(archives: [], sources: [])
            for line in lines.dropFirst().dropLast() {
                let parts = line.split(separator: " ").map(String.init)
                // Names never contain `/`: refuse anything that could point outside the directory.
                guard !parts.contains(where: { $0.contains("/") || $0 == ".." }) else { return nil }
                // Only our own names: a forged journal must not make recovery rename or delete
                // anything else (temporary archives by their prefix, archives and sources by
                // the metric file naming scheme).
                if parts.count == 3 && parts[0] == "archive" {
                    guard parts[1].hasPrefix(tempArchivePrefix), MetricFileName(parsing: parts[2])?.isArchive == true else { return nil }
                    j.archives.append((parts[1], parts[2]))
                } else if parts.count == 2 && parts[0] == "source" {
                    guard let name = MetricFileName(parsing: parts[1]), !name.isArchive else { return nil }
                    j.sources.append(parts[1])
                } else {
                    return nil
                }
            }
            return j
        }
    }
}
