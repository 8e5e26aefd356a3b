// Compaction and mark-dead against pid reuse: files prometheus_client wrote carry no lock, so
// whether a process still maps or holds them (FilesInUse, /proc) decides, and the dead list
// only where /proc cannot be used. Files in the prometheus_client format are made by hand
// (marker zero); "live" holders are descriptors this test process opens. Every descriptor is
// close-on-exec: other tests spawn children concurrently, and a child that inherited one would
// hold the file (rightly) in use.
import Foundation
import MmapStore
import MultiprocessCollector
import SystemCalls
import Testing
import TestSupport

@Suite struct CompactionLivenessTests {
    static let key = #"["jobs", "jobs_total", {}, "Jobs."]"#
    /// Owners far above any pid_max: no process ever has them.
    static let nobody = ["2147480000", "2147480001", "2147480002", "2147480003", "2147480004", "2147480005"]

    @discardableResult
    func pythonFile(_ dir: TempDirectory, owner: String, value: Double) throws -> String {
        let path = dir.file("counter_\(owner).db")
        // Through a close-on-exec descriptor (Foundation's Data.write has none): a child that
        // another test spawns meanwhile must not inherit it and keep the file in use.
        try DirectoryFiles.writeAtomically(CollectorTests.pythonFile([Self.key], value: value), to: path)
        return path
    }

    func total(_ dir: TempDirectory) -> Double? {
        testCollector(dir.path).collect().families.value("jobs_total")
    }

    func pythonTotal(_ dir: TempDirectory) throws -> String {
        let r = try runPython("collect.py", [dir.path, "--text"])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").first { $0.hasPrefix("jobs_total ") }.map(String.init) ?? "none"
    }

    /// Compacts until `done` holds, at most five times. Other tests spawn children
    /// concurrently, and until it execs a child holds copies of every descriptor of this
    /// process, the compactor's own locks among them: a scan that meets it sees those files in
    /// use, rightly, and a later run folds them.
    func compact(_ dir: TempDirectory, _ options: CompactionOptions = CompactionOptions(),
                 until done: (CompactionReport) -> Bool) throws -> CompactionReport {
        var report = try Compactor.compact(directory: dir.path, options: options)
        for _ in 1..<5 where !done(report) {
            report = try Compactor.compact(directory: dir.path, options: options)
        }
        return report
    }

    func leftovers(_ dir: TempDirectory) -> [String] {
        dir.names().filter { $0.hasPrefix(".fold-") || $0.hasPrefix(".tmp-") || $0 == ".prom-multiproc-compaction-journal" }
    }

    @Test func aPrometheusClientFileInUseIsKeptWhateverTheDeadListSays() throws {
        let dir = TempDirectory("pmp-reuse"); defer { dir.remove() }
        let owner = Self.nobody[3]
        let path = try pythonFile(dir, owner: owner, value: 1)
        // A worker that reused the pid holds the file.
        let fd = try Sys.open(path, [.readWrite])
        let marked = try MarkDead.run(pid: Int32(owner)!, directory: dir.path)
        #expect(marked.inUse == ["counter_\(owner).db"] && !marked.recorded, "\(marked)")
        #expect(!DeadProcessList.read(directory: dir.path).contains(owner))
        // Even a stale entry does not make compaction fold a file in use.
        try DeadProcessList.update(directory: dir.path) { $0.insert(owner) }
        let kept = try Compactor.compact(directory: dir.path)
        #expect(kept.folded.isEmpty && kept.kept.map(\.name) == ["counter_\(owner).db"], "\(kept.kept)")
        #expect(kept.kept.first?.reason.hasPrefix("in use") == true)
        #expect(kept.liveness.hasPrefix("/proc scan: "), "\(kept.liveness)")
        Sys.close(fd)
        // Nobody holds it any more: folded, and the pid leaves the dead list.
        let folded = try compact(dir) { !$0.folded.isEmpty }
        #expect(folded.folded == ["counter_\(owner).db"], "\(folded.kept)")
        #expect(DeadProcessList.read(directory: dir.path).isEmpty)
        #expect(total(dir) == 1)
    }

    @Test func markDeadRecordsOnlyPidsWithFilesToFoldAndCompactionPrunesThem() throws {
        let dir = TempDirectory("pmp-deadlist"); defer { dir.remove() }
        let owner = Self.nobody[0]
        try pythonFile(dir, owner: owner, value: 2)
        #expect(try MarkDead.run(pid: Int32(owner)!, directory: dir.path).recorded)
        // A pid with no file (a worker that never wrote) is not recorded.
        #expect(try !MarkDead.run(pid: Int32(Self.nobody[1])!, directory: dir.path).recorded)
        #expect(DeadProcessList.read(directory: dir.path) == [owner])
        _ = try compact(dir) { !$0.folded.isEmpty }
        #expect(DeadProcessList.read(directory: dir.path).isEmpty)
        #expect(total(dir) == 2)
    }

    /// Metadata and exemplar files are never folded: they neither get a pid recorded nor keep
    /// it in the dead list once its metric files are folded (else the list only grows under
    /// worker churn), and they stay where they are.
    @Test func filesCompactionNeverFoldsDoNotKeepAPidInTheDeadList() throws {
        let dir = TempDirectory("pmp-deadlist"); defer { dir.remove() }
        let owner = Self.nobody[2], other = Self.nobody[4]
        try pythonFile(dir, owner: owner, value: 3)
        let sidecars = ["meta_\(owner).pmm", "exemplars_\(owner).pmx", "meta_\(other).pmm", "exemplars_\(other).pmx"]
        for name in sidecars { #expect(FileManager.default.createFile(atPath: dir.file(name), contents: Data([0]))) }
        #expect(try MarkDead.run(pid: Int32(owner)!, directory: dir.path).recorded)
        // Only files that are never folded: nothing to record.
        #expect(try !MarkDead.run(pid: Int32(other)!, directory: dir.path).recorded)
        #expect(DeadProcessList.read(directory: dir.path) == [owner])
        // Metadata files parse as all-mode gauges, which this option makes prunable too.
        var options = CompactionOptions()
        options.dropDeadAllGauges = true
        let folded = try compact(dir, options) { !$0.folded.isEmpty }
        #expect(folded.folded == ["counter_\(owner).db"], "\(folded.kept)")
        #expect(DeadProcessList.read(directory: dir.path).isEmpty)
        for name in sidecars { #expect(FileManager.default.fileExists(atPath: dir.file(name)), "\(name)") }
    }

    /// Where /proc cannot be scanned: the dead list decides for prometheus_client's files, the
    /// lock for ours, and a pid that has a running process is never folded.
    @Test func whereProcCannotBeScannedTheDeadListDecidesAndARunningPidIsNeverFolded() throws {
        let dir = TempDirectory("pmp-fallback"); defer { dir.remove() }
        let fakeProc = TempDirectory("pmp-fakeproc"); defer { fakeProc.remove() }
        let me = String(getpid())
        try pythonFile(dir, owner: me, value: 1)                // a running pid, listed dead (stale)
        try pythonFile(dir, owner: Self.nobody[0], value: 2)    // dead and listed: folded
        try pythonFile(dir, owner: Self.nobody[1], value: 4)    // not listed: unknown
        let ours = try MetricFile.claim(directory: dir.path, kind: .counter, pid: Self.nobody[2])
        try ours.slot(for: Array(Self.key.utf8)).set(8)
        ours.close()                                           // ours, its lock free: folded
        #expect(try MarkDead.run(pid: Int32(Self.nobody[0])!, directory: dir.path, procRoot: nil).recorded)
        let mine = try MarkDead.run(pid: getpid(), directory: dir.path, procRoot: nil)
        #expect(!mine.recorded && mine.inUse == ["counter_\(me).db"], "a running pid is in use")
        try DeadProcessList.update(directory: dir.path) { $0.insert(me) }

        var options = CompactionOptions()
        options.procRoot = fakeProc.path
        let r = try Compactor.compact(directory: dir.path, options: options)
        #expect(r.liveness.hasPrefix("/proc cannot be used"), "\(r.liveness)")
        #expect(r.folded == ["counter_\(Self.nobody[0]).db", "counter_\(Self.nobody[2]).db"], "\(r.kept)")
        let reasons = Dictionary(r.kept.map { ($0.name, $0.reason) }, uniquingKeysWith: { a, _ in a })
        #expect(reasons["counter_\(me).db"]?.contains("is running") == true, "\(reasons)")
        #expect(reasons["counter_\(Self.nobody[1]).db"]?.contains("use mark-dead") == true, "\(reasons)")
        #expect(total(dir) == 15)
        // The listed pid whose files are folded left the list; the running one's file is left.
        #expect(DeadProcessList.read(directory: dir.path) == [me])
    }

    /// A process that opens a source between the first check and the rename (a late opener,
    /// played through the compactor's seam) is seen by the re-check: the file is put back.
    @Test func aFileOpenedWhileItIsBeingCompactedIsPutBack() throws {
        let dir = TempDirectory("pmp-putback"); defer { dir.remove() }
        let owner = Self.nobody[4]
        let path = try pythonFile(dir, owner: owner, value: 1)
        let held = Locked<Int32>(-1)
        var options = CompactionOptions()
        options.afterStep = { step in
            if step == .journalStaged { held.withLock { $0 = (try? Sys.open(path, [.readWrite])) ?? -2 } }
        }
        let r = try compact(dir, options) { _ in held.withLock { $0 } != -1 }
        #expect(held.withLock { $0 } >= 0)
        #expect(r.folded.isEmpty, "\(r.folded)")
        #expect(r.kept.map(\.name) == ["counter_\(owner).db"] && r.kept.first?.reason.contains("put back") == true, "\(r.kept)")
        #expect(dir.names().contains("counter_\(owner).db") && leftovers(dir).isEmpty, "\(dir.names())")
        #expect(total(dir) == 1)
        held.withLock { Sys.close($0) }
        #expect(try compact(dir) { !$0.folded.isEmpty }.folded == ["counter_\(owner).db"])
        #expect(total(dir) == 1)
    }

    /// The file put back never replaces a new file that took its name meanwhile: it gets a
    /// name of its own that both collectors read and no writer claims.
    @Test func aFilePutBackNeverClobbersANewFileOfItsName() throws {
        let dir = TempDirectory("pmp-putback"); defer { dir.remove() }
        let owner = Self.nobody[5]
        let path = try pythonFile(dir, owner: owner, value: 1)
        let held = Locked<Int32>(-1)
        var options = CompactionOptions()
        options.afterStep = { step in
            if step == .journalStaged { held.withLock { $0 = (try? Sys.open(path, [.readWrite])) ?? -2 } }
            // A new process of that pid creates a fresh file under the now free name.
            if step == .sourcesHidden {
                try? DirectoryFiles.writeAtomically(CollectorTests.pythonFile([Self.key], value: 5), to: path)
            }
        }
        let r = try compact(dir, options) { _ in held.withLock { $0 } != -1 }
        #expect(r.kept.map(\.name).contains("counter_\(owner)~1.db"), "\(r.kept)")
        #expect(dir.names().contains("counter_\(owner).db") && dir.names().contains("counter_\(owner)~1.db"))
        #expect(leftovers(dir).isEmpty)
        #expect(total(dir) == 6)
        #expect(try pythonTotal(dir) == "jobs_total 6.0")
        held.withLock { Sys.close($0) }
        var folded: Set<String> = []
        let again = try compact(dir) { folded.formUnion($0.folded); return folded.count == 2 }
        #expect(folded == ["counter_\(owner).db", "counter_\(owner)~1.db"], "\(again.kept) \(again.liveness)")
        #expect(total(dir) == 6)
    }

    /// The state a compactor killed after hiding a source leaves, when a new process of that pid
    /// then created a fresh file under the name: a scrape counts both, once each, and the next
    /// compaction puts the hidden one back beside the new one.
    @Test func aScrapeAfterACrashCountsAHiddenSourceAndANewFileOfItsNameOnce() throws {
        let dir = TempDirectory("pmp-crashed"); defer { dir.remove() }
        let owner = Self.nobody[2]
        let name = "counter_\(owner).db"
        let hidden = ".fold-1a2b-counter_\(owner)"
        try DirectoryFiles.writeAtomically(CollectorTests.pythonFile([Self.key], value: 3), to: dir.file(hidden))
        try pythonFile(dir, owner: owner, value: 5)
        let journal = "prom-multiproc compaction journal v2\nphase staging\nfold \(hidden) \(name)\nend\n"
        try DirectoryFiles.writeAtomically(Array(journal.utf8), to: dir.file(".prom-multiproc-compaction-journal"))
        #expect(total(dir) == 8)
        // The same journal committed with the archive still under its temporary name: the
        // hidden source still counts; once the archive is in place, it does not.
        let committed = "prom-multiproc compaction journal v2\nphase commit\narchive .tmp-archive-counter-1 counter_archive.db\nfold \(hidden) \(name)\nend\n"
        try DirectoryFiles.writeAtomically(Array(committed.utf8), to: dir.file(".prom-multiproc-compaction-journal"))
        try DirectoryFiles.writeAtomically(CollectorTests.pythonFile([Self.key], value: 3), to: dir.file(".tmp-archive-counter-1"))
        #expect(total(dir) == 8)
        try DirectoryFiles.rename(dir.file(".tmp-archive-counter-1"), to: dir.file("counter_archive.db"))
        #expect(total(dir) == 8, "the archive in place holds the hidden source's values")
        // Back to the staging state: recovery puts the hidden file back without clobbering.
        try DirectoryFiles.remove(dir.file("counter_archive.db"))
        try DirectoryFiles.writeAtomically(Array(journal.utf8), to: dir.file(".prom-multiproc-compaction-journal"))
        let r = try Compactor.compact(directory: dir.path, options: { var o = CompactionOptions(); o.procRoot = nil; return o }())
        #expect(r.recovered)
        #expect(dir.names().contains(name) && dir.names().contains("counter_\(owner)~1.db") && leftovers(dir).isEmpty, "\(dir.names())")
        #expect(total(dir) == 8)
    }
}
