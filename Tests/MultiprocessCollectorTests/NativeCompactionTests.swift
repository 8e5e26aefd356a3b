// Compaction of native-histogram files (`native_<pid>.pmh`): dead writers' native series and
// summary age buckets are folded into `native_archive.pmh` and the scrape stays the same, byte
// for byte, in text and in protobuf (the only format with native histograms). The writers are
// real processes (`prom-multiproc-testworker native-observe` / `summary-observe`) that exited;
// the live writer is this test process (its files are locked and mapped here), named `9z` so
// that it sorts after every dead pid and before `native_archive.pmh`: the order in which the
// files are read changes with compaction. The compactor is `prom-multiproc-cli compact` or the
// test worker's `compact-crash-after`, in a process of its own.
import Foundation
import MmapStore
import MultiprocessCollector
import PromExposition
import PromMetrics
import SystemCalls
import Testing
import TestSupport

@Suite(.serialized) struct NativeCompactionTests {
    static let histogram = "native_e2e_seconds"
    static let summary = "quantile_e2e_seconds"

    /// The scrape as bytes: text 0.0.4 (quantile lines, classic buckets) and protobuf (native
    /// histograms), from a fresh collector; and the problems it reported.
    func scrape(_ dir: TempDirectory) -> (text: [UInt8], protobuf: [UInt8], problems: [String]) {
        let result = MultiProcessCollector(directory: dir.path, includeSelfMetrics: false, reporter: ProblemReporter { _ in }).collect()
        return (Exposition.render(result.families, format: .prometheusText), Exposition.render(result.families, format: .protobuf),
                result.problems.map(\.description))
    }

    func families(_ dir: TempDirectory) -> [MetricFamilySnapshot] {
        MultiProcessCollector(directory: dir.path, includeSelfMetrics: false, reporter: ProblemReporter { _ in }).collect().families
    }

    /// Runs a test-worker mode to its end; returns the number of values it observed.
    @discardableResult
    func worker(_ dir: TempDirectory, _ mode: String, _ args: [String]) throws -> Int {
        let r = try run(executable("prom-multiproc-testworker"), [mode, dir.path] + args)
        return try r.observedValues(mode: "\(mode) \(args)").count
    }

    func compact(_ dir: TempDirectory) throws -> String {
        let r = try run(executable("prom-multiproc-cli"), ["compact", "--dir", dir.path, "--verbose"])
        #expect(r.status == 0 && !r.signaled, "\(r.stderr)")
        return r.stdout
    }

    func nativeFiles(_ dir: TempDirectory) -> [String] { dir.names().filter { $0.hasSuffix(".pmh") } }

    func leftovers(_ dir: TempDirectory) -> [String] {
        dir.names().filter { $0.hasPrefix(".fold-") || $0.hasPrefix(".tmp-") || $0.hasPrefix(".prom-multiproc-") && $0.contains("journal") }
    }

    /// The live writer, process `9z` of this test: a native histogram at schema 0 with zero
    /// threshold 2^-8 (counting on `/a`, nothing yet on `/empty`), and the summary with other
    /// objectives, in another order, than the dead workers'.
    final class LiveWriter {
        let storage: MetricStorage
        init(_ dir: TempDirectory) throws {
            storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("9z"))
            let registry = Registry(storage: storage)
            let h = try Histogram(NativeCompactionTests.histogram, help: "Native histogram end to end.", labelNames: ["route"],
                                  buckets: [0.1, 1, 10], native: NativeHistogramOptions(bucketFactor: 2, zeroThreshold: 0x1p-8, maxBucketNumber: 0),
                                  registry: registry)
            for v in [0.75, 3, -2, 0.001, 40] { h.labels("/a").observe(v) }
            _ = h.labels("/empty")
            let s = try Summary(NativeCompactionTests.summary, help: "Summary quantiles end to end.", labelNames: ["route"],
                                quantiles: SummaryQuantiles(objectives: [0.9, 0.5, 0.05], relativeError: 0.02, maxAge: 600, ageBuckets: 5),
                                registry: registry)
            for _ in 0..<20 { s.labels("/a").observe(0.125) }
        }
        func close() { storage.store?.close() }
    }

    /// Dead writers of native histograms at schemas 8 and -1 (zero thresholds 2^-128, 2^-6),
    /// one that created `/empty` at schema 3 and observed nothing, and summaries: two on `/a`
    /// at other relative errors, one on `/old` whose window has expired.
    func deadWriters(_ dir: TempDirectory) throws -> Int {
        var observed = 0
        observed += try worker(dir, "native-observe", ["1.001", "0x1p-128", "0", "400", "11", "signed"])
        observed += try worker(dir, "native-observe", ["4", "0x1p-6", "0", "400", "12", "signed"])
        try worker(dir, "native-observe", ["1.1", "0x1p-10", "0", "0", "13", "positive", "/empty"])
        try worker(dir, "summary-observe", ["constant:0.5", "100", "1", "0.01", "600", "5"])
        try worker(dir, "summary-observe", ["constant:6", "50", "2", "0.05", "600", "5"])
        try worker(dir, "summary-observe", ["constant:2", "10", "3", "0.01", "1", "1", "/old"])
        return observed
    }

    /// The protobuf and text scrapes are the same bytes before and after compaction: native
    /// series at different schemas and zero thresholds, an all-empty series whose settings
    /// differ between a dead and the live writer, summary windows with different objectives
    /// and one that has expired (its quantile lines stay, NaN). Only the dead writers' files
    /// are folded; a second compaction folds a new dead writer into the archive.
    @Test(.timeLimit(.minutes(3)))
    func compactionFoldsDeadNativeFilesAndTheScrapeKeepsItsBytes() throws {
        let dir = TempDirectory("pmp-native-compact"); defer { dir.remove() }
        let live = try LiveWriter(dir)
        defer { live.close() }
        let observed = try deadWriters(dir)
        Thread.sleep(forTimeInterval: 1.5)  // `/old`'s one-second window is over.
        let deadNatives = nativeFiles(dir).filter { $0 != "native_9z.pmh" }
        #expect(deadNatives.count == 6)
        let before = scrape(dir)
        #expect(before.problems.isEmpty, "\(before.problems)")

        let out = try compact(dir)
        for name in deadNatives { #expect(out.contains("folded \(name)"), "\(out)") }
        #expect(out.contains("kept native_9z.pmh: alive"), "\(out)")
        #expect(nativeFiles(dir) == ["native_9z.pmh", "native_archive.pmh"])
        #expect(leftovers(dir).isEmpty, "\(leftovers(dir))")
        let after = scrape(dir)
        #expect(after.problems.isEmpty, "\(after.problems)")
        #expect(after.text == before.text, "text:\n\(String(decoding: before.text, as: UTF8.self))\n---\n\(String(decoding: after.text, as: UTF8.self))")
        #expect(after.protobuf == before.protobuf)

        // What the scrape says, from what the workers did: every observation on `/a` once
        // (400 + 400 dead, 5 live), at the lowest schema (-1) and the widest zero bucket; the
        // all-empty series at the live writer's coarser settings; the union of the objectives,
        // ascending; `/old` with its quantile lines, NaN.
        let fams = families(dir)
        let natives = try #require(fams.first { $0.name == Self.histogram }?.nativeHistograms)
        let a = try #require(natives.first { $0.labels == [Label("route", "/a")] })
        #expect(a.count == Double(observed + 5) && a.schema == -1)
        let empty = try #require(natives.first { $0.labels == [Label("route", "/empty")] })
        #expect(empty.count == 0 && empty.schema == 0 && empty.zeroThreshold == 0x1p-8)
        let quantileLines = try #require(fams.first { $0.name == Self.summary }).samples.filter { $0.name == Self.summary }
        let aQuantiles = quantileLines.filter { $0.labels.first == Label("route", "/a") }.compactMap { $0.labels.last.flatMap { Double($0.value) } }
        #expect(aQuantiles == [0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1])
        let old = quantileLines.filter { $0.labels.first == Label("route", "/old") }
        #expect(old.count == 9 && old.allSatisfy { $0.value.isNaN }, "\(old)")

        // Another writer dies; the next compaction folds it into the archive there.
        try worker(dir, "native-observe", ["1.1", "0x1p-10", "0", "300", "14", "signed"])
        let before2 = scrape(dir)
        let out2 = try compact(dir)
        #expect(out2.contains("folded native_"), "\(out2)")
        #expect(nativeFiles(dir) == ["native_9z.pmh", "native_archive.pmh"])
        let after2 = scrape(dir)
        #expect(after2.text == before2.text)
        #expect(after2.protobuf == before2.protobuf)
        #expect(families(dir).first { $0.name == Self.histogram }?.nativeHistograms.first { $0.labels == [Label("route", "/a")] }?.count
                == Double(observed + 5 + 300))
    }

    /// A compactor killed after any step of either fold (the `*.db` files', then the native
    /// files'): every scrape meanwhile counts each observation once, the next compaction
    /// completes or rolls back, and leaves no hidden file, temporary archive or journal.
    @Test(.timeLimit(.minutes(5)), arguments: CompactionStep.allCases, [false, true])
    func aCompactorKilledAtAnyStepWithNativeFilesNeverDoubleCountsOrLoses(step: CompactionStep, native: Bool) throws {
        let dir = TempDirectory("pmp-native-crash"); defer { dir.remove() }
        let live = try LiveWriter(dir)
        defer { live.close() }
        _ = try deadWriters(dir)
        Thread.sleep(forTimeInterval: 1.1)
        let before = scrape(dir)
        let killed = try run(executable("prom-multiproc-testworker"), ["compact-crash-after", dir.path, step.rawValue] + (native ? ["native"] : []))
        #expect(killed.signaled && killed.status == 128 + SIGKILL,
                "the compactor was not killed at \(step) (native: \(native)): \(killed.status) \(killed.stdout) \(killed.stderr)")
        // The `*.db` journal, which older binaries read, never names a native file (they would
        // reject it whole); the native fold has a journal of its own.
        if let journal = try? DirectoryFiles.read(dir.file(".prom-multiproc-compaction-journal")) {
            let text = String(decoding: journal, as: UTF8.self)
            #expect(text.hasPrefix("prom-multiproc compaction journal v2\n") && !text.contains("native"), "\(text)")
        }
        #expect(native || !dir.names().contains(Compactor.nativeJournalName), "the native fold started before the *.db fold ended")
        let interrupted = scrape(dir)
        #expect(interrupted.problems.isEmpty, "\(interrupted.problems)")
        #expect(interrupted.text == before.text, "after a kill at \(step) (native: \(native))")
        #expect(interrupted.protobuf == before.protobuf, "after a kill at \(step) (native: \(native))")
        _ = try compact(dir)
        let after = scrape(dir)
        #expect(after.text == before.text && after.protobuf == before.protobuf, "after recovering from \(step) (native: \(native))")
        #expect(leftovers(dir).isEmpty, "\(dir.names())")
        #expect(nativeFiles(dir) == ["native_9z.pmh", "native_archive.pmh"])
    }

    /// A damaged dead native file is reported by the compaction and left as it is (never
    /// deleted, never read into the archive); the scrape, which skips and reports it, stays the
    /// same; the other dead files are folded.
    @Test(.timeLimit(.minutes(2)))
    func aDamagedDeadNativeFileIsReportedAndLeftAlone() throws {
        let dir = TempDirectory("pmp-native-damaged"); defer { dir.remove() }
        _ = try worker(dir, "native-observe", ["1.1", "0x1p-128", "0", "200", "21", "signed"])
        // A complete file of this package whose one entry is neither a series nor a bucket.
        let damaged = "native_2147480000.pmh"
        let bytes = MetricFileBuilder.bytes(entries: [(key: Array("qqqqqqqqqqq".utf8), value: 0, timestamp: 0)])
        try DirectoryFiles.writeAtomically(bytes, to: dir.file(damaged))
        let before = scrape(dir)
        #expect(before.problems.count == 1 && before.problems.first?.contains(damaged) == true, "\(before.problems)")
        let out = try compact(dir)
        #expect(out.contains("kept \(damaged)"), "\(out)")
        #expect(!out.contains("folded \(damaged)"))
        #expect(nativeFiles(dir) == [damaged, "native_archive.pmh"])
        #expect(try DirectoryFiles.read(dir.file(damaged)) == bytes)
        let after = scrape(dir)
        #expect(after.text == before.text && after.protobuf == before.protobuf)
        #expect(after.problems == before.problems)
        #expect(leftovers(dir).isEmpty)
    }

    /// A collector reading during an interrupted native compaction: a hidden source counts
    /// under its name until its archive is in place, then not at all.
    @Test func aScrapeDuringAnInterruptedNativeCompactionCountsEachSourceOnce() throws {
        let dir = TempDirectory("pmp-native-journal"); defer { dir.remove() }
        _ = try worker(dir, "native-observe", ["2", "0x1p-128", "0", "100", "31", "positive"])
        let name = try #require(nativeFiles(dir).first)
        let count = { (self.families(dir).first { $0.name == Self.histogram }?.nativeHistograms.first?.count) ?? 0 }
        #expect(count() == 100)
        let parsed = try #require(MetricFileName(parsing: name))
        let hidden = parsed.stagedName(nonce: "1a2b")
        #expect(hidden == ".fold-1a2b-" + String(name.dropLast(4)))
        try DirectoryFiles.rename(dir.file(name), to: dir.file(hidden))
        let staging = "prom-multiproc native-histogram compaction journal v1\nphase staging\nfold \(hidden) \(name)\nend\n"
        try DirectoryFiles.writeAtomically(Array(staging.utf8), to: dir.file(Compactor.nativeJournalName))
        #expect(count() == 100, "a hidden source counts under its name")
        // Committed, the archive still under its temporary name: the source counts.
        try DirectoryFiles.writeAtomically(try DirectoryFiles.read(dir.file(hidden)), to: dir.file(".fold-archive-5"))
        let commit = "prom-multiproc native-histogram compaction journal v1\nphase commit\narchive .fold-archive-5 native_archive.pmh\nfold \(hidden) \(name)\nend\n"
        try DirectoryFiles.writeAtomically(Array(commit.utf8), to: dir.file(Compactor.nativeJournalName))
        #expect(count() == 100)
        // The archive in place holds it: the hidden source no longer counts.
        try DirectoryFiles.rename(dir.file(".fold-archive-5"), to: dir.file("native_archive.pmh"))
        #expect(count() == 100)
        // The next compaction rolls the commit forward.
        _ = try compact(dir)
        #expect(nativeFiles(dir) == ["native_archive.pmh"] && leftovers(dir).isEmpty, "\(dir.names())")
        #expect(count() == 100)
    }

    /// A native file a process opens while it is being compacted (played through the native
    /// fold's seam, by this test process) is seen by the re-check and put back; a new file that
    /// took its name meanwhile is never clobbered: the put-back one becomes
    /// `native_<owner>~1.pmh`, and a scrape counts both. Once closed, both are folded.
    @Test func aNativeFileOpenedWhileItIsBeingCompactedIsPutBesideANewFileOfItsName() throws {
        let dir = TempDirectory("pmp-native-putback"); defer { dir.remove() }
        _ = try worker(dir, "native-observe", ["2", "0x1p-128", "0", "100", "41", "positive"])
        let name = try #require(nativeFiles(dir).first)
        let owner = String(name.dropFirst("native_".count).dropLast(".pmh".count))
        let path = dir.file(name)
        let copy = try DirectoryFiles.read(path)
        let count = { (self.families(dir).first { $0.name == Self.histogram }?.nativeHistograms.first?.count) ?? 0 }
        let held = Locked<Int32>(-1)
        var options = CompactionOptions()
        options.afterNativeStep = { step in
            if step == .journalStaged { held.withLock { $0 = (try? Sys.open(path, [.readWrite])) ?? -2 } }
            // A new process of that pid creates a fresh file under the now free name.
            if step == .sourcesHidden { try? DirectoryFiles.writeAtomically(copy, to: path) }
        }
        // Other suites spawn children meanwhile, which may hold this process's descriptors
        // (the compactor's own locks) for a moment: then the file is rightly kept; try again.
        var r = try Compactor.compact(directory: dir.path, options: options)
        for _ in 1..<5 where held.withLock({ $0 }) == -1 { r = try Compactor.compact(directory: dir.path, options: options) }
        #expect(held.withLock { $0 } >= 0)
        #expect(r.kept.contains { $0.name == "native_\(owner)~1.pmh" && $0.reason.contains("put back") }, "\(r.kept)")
        #expect(nativeFiles(dir) == [name, "native_\(owner)~1.pmh"] && leftovers(dir).isEmpty, "\(dir.names())")
        #expect(count() == 200)
        held.withLock { Sys.close($0) }
        _ = try compact(dir)
        #expect(nativeFiles(dir) == ["native_archive.pmh"] && leftovers(dir).isEmpty, "\(dir.names())")
        #expect(count() == 200)
    }

    /// `wipe` removes what a native fold killed half-way leaves: the hidden sources, the
    /// temporary archive and the native journal.
    @Test func wipeRemovesWhatAnInterruptedNativeFoldLeaves() throws {
        let dir = TempDirectory("pmp-native-wipe"); defer { dir.remove() }
        _ = try worker(dir, "native-observe", ["2", "0x1p-128", "0", "50", "51", "positive"])
        let killed = try run(executable("prom-multiproc-testworker"), ["compact-crash-after", dir.path, "archives-written", "native"])
        #expect(killed.signaled, "\(killed.stdout) \(killed.stderr)")
        #expect(dir.names().contains(Compactor.nativeJournalName) && dir.names().contains { $0.hasPrefix(".fold-archive-") }, "\(dir.names())")
        let wiped = try run(executable("prom-multiproc-cli"), ["wipe", "--dir", dir.path])
        #expect(wiped.status == 0, "\(wiped.stderr)")
        #expect(dir.names().filter { $0 != FileLock.directoryLockName }.isEmpty, "\(dir.names())")
    }

    /// Hidden names round-trip for both kinds of files compaction folds; other names and the
    /// native archive's temporary name do not parse as hidden sources.
    @Test func stagedNamesRoundTripForMetricAndNativeFiles() throws {
        for name in ["counter_123.db", "gauge_livesum_7-1.db", "histogram_abc.db", "native_123.pmh", "native_9z.pmh", "native_1-2.pmh"] {
            let parsed = try #require(MetricFileName(parsing: name))
            let hidden = parsed.stagedName(nonce: "0fa9")
            #expect(!hidden.hasSuffix(".db") && !hidden.hasSuffix(".pmh"), "\(hidden) is listed by a collector")
            #expect(MetricFileName(parsingStaged: hidden) == parsed, "\(name) -> \(hidden)")
        }
        for bad in [".fold-archive-1f", ".fold-xyz-native_1", ".fold--native_1", ".fold-1f-meta_1", ".fold-1f-native_a_b", "native_1.pmh"] {
            #expect(MetricFileName(parsingStaged: bad) == nil, "\(bad)")
        }
    }
}
