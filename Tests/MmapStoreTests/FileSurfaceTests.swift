// The file surface of a multiprocess directory (SECURITY.md): permissions, symbolic links,
// planted files, and what wipe and compact may delete. Maintenance runs through the
// command-line tool in a child process (it only parses arguments and calls Wipe.run and
// Compactor.compact), which also lets a test give the child its own umask.
import SystemCalls
import Foundation
import MmapStore
import Testing
import TestSupport

/// Runs `prom-multiproc-cli` with `umask` set in the child only (umask is per process, and the
/// test runner's threads create files concurrently).
private func surfaceCLI(_ args: [String], umask: String = "022") throws -> ProcessResult {
    try run("/bin/sh", ["-c", "umask \(umask) && exec \"$0\" \"$@\"", executable("prom-multiproc-cli")] + args, timeout: 120)
}

/// A closed file of this package (so its owner counts as dead) holding one counter value.
private func deadCounterFile(_ dir: TempDirectory, owner: String, value: Double) throws -> String {
    let f = try MetricFile.claim(directory: dir.path, kind: .counter, pid: owner)
    try f.slot(for: SeriesKey(family: "jobs", sample: "jobs_total", labels: [], help: "Jobs.").encoded()).set(value)
    let path = f.path
    f.close()
    return path
}

private func permissions(_ path: String) throws -> UInt32 {
    try DirectoryFiles.status(path).permissions
}

private func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

/// Files and links a hostile or careless user planted in the directory; none is ours to delete.
private struct Plants {
    let outside: TempDirectory
    let target: String
    let targetBytes = Data("outside the directory\n".utf8)
    let notesBytes = Data("operator notes\n".utf8)
    let weirdBytes = Data("not a metric file\n".utf8)

    init(in dir: TempDirectory) throws {
        outside = TempDirectory("pmp-outside")
        target = outside.file("file")
        try targetBytes.write(to: URL(fileURLWithPath: target))
        try notesBytes.write(to: URL(fileURLWithPath: dir.file("notes.txt")))
        try weirdBytes.write(to: URL(fileURLWithPath: dir.file("weird_1.db")))
        try FileManager.default.createSymbolicLink(atPath: dir.file("counter_9.db"), withDestinationPath: target)
        try FileManager.default.createDirectory(atPath: dir.file("x.db"), withIntermediateDirectories: false)
        try Data("inside a planted directory\n".utf8).write(to: URL(fileURLWithPath: dir.file("x.db") + "/keep"))
    }

    /// Every planted thing is still there, unchanged, and the link's target is untouched.
    func expectIntact(_ dir: TempDirectory) throws {
        #expect(bytes(target) == targetBytes)
        #expect(outside.names() == ["file"])
        #expect(bytes(dir.file("notes.txt")) == notesBytes)
        #expect(bytes(dir.file("weird_1.db")) == weirdBytes)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("counter_9.db")) == target)
        #expect(try DirectoryFiles.status(dir.file("counter_9.db")).isSymlink)
        #expect(try DirectoryFiles.status(dir.file("x.db")).isDirectory)
        #expect(bytes(dir.file("x.db") + "/keep") == Data("inside a planted directory\n".utf8))
    }
}

@Suite("File surface: permissions, symbolic links, planted files")
struct FileSurfaceTests {
    // MARK: permissions

    @Test func aNewMetricFileHasMode0644LessTheUmaskAndIsNeverWorldWritable() throws {
        let dir = TempDirectory("pmp-perm")
        defer { dir.remove() }
        let f = try MetricFile.claim(directory: dir.path, kind: .gauge(.livesum), pid: "31")
        defer { f.close() }
        let mode = try permissions(f.path)
        #expect(mode == 0o644 & ~DirectoryFiles.umask)
        #expect(mode & 0o002 == 0)
        // No temporary file is left behind with other permissions.
        #expect(dir.names() == ["gauge_livesum_31.db"])
    }

    @Test(arguments: [("000", UInt32(0o644)), ("077", UInt32(0o600))])
    func aWriterProcessCreatesItsFileWithMode0644LessItsUmask(umask: String, expected: UInt32) throws {
        let dir = TempDirectory("pmp-umask")
        defer { dir.remove() }
        let out = Pipe()
        let worker = try launch("/bin/sh", ["-c", "umask \(umask) && exec \"$0\" \"$@\"",
                                            executable("prom-multiproc-testworker"), "hold", dir.path, "4242"], stdout: out)
        // SIGKILL: a child may inherit a signal mask that blocks SIGTERM.
        defer { kill(worker.processIdentifier, SIGKILL); worker.waitUntilExit() }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        #expect(String(decoding: line, as: UTF8.self).hasPrefix("ready "), "the worker did not start")
        let mode = try permissions(dir.file("counter_4242.db"))
        #expect(mode == expected, "mode \(String(mode, radix: 8)) under umask \(umask)")
        #expect(mode & 0o002 == 0)
        #expect(dir.names() == ["counter_4242.db"], "no temporary file is left behind")
    }

    @Test(arguments: [("000", UInt32(0o644)), ("077", UInt32(0o600)), ("027", UInt32(0o640))])
    func filesTheMaintenanceToolCreatesFollowTheUmaskAndAreNeverWorldWritable(umask: String, expected: UInt32) throws {
        let dir = TempDirectory("pmp-umask")
        defer { dir.remove() }
        let source = try deadCounterFile(dir, owner: "41", value: 3)
        // mark-dead writes the dead-pid list; compact writes the lock file and an archive.
        let marked = try surfaceCLI(["mark-dead", "--pid", "40", "--dir", dir.path], umask: umask)
        #expect(marked.status == 0, "\(marked.stderr)")
        let compacted = try surfaceCLI(["compact", "--dir", dir.path], umask: umask)
        #expect(compacted.status == 0, "\(compacted.stderr)")
        #expect(!FileManager.default.fileExists(atPath: source))
        let created = [FileLock.directoryLockName, "counter_archive.db", ".prom-multiproc-dead-pids"]
        for name in created {
            let mode = try permissions(dir.file(name))
            #expect(mode == expected, "\(name) has mode \(String(mode, radix: 8)) under umask \(umask)")
            #expect(mode & 0o002 == 0, "\(name) is world-writable")
        }
    }

    // MARK: symbolic links

    @Test func theReaderReportsASymbolicLinkAndDoesNotFollowIt() throws {
        let dir = TempDirectory("pmp-link")
        let elsewhere = TempDirectory("pmp-outside")
        defer { dir.remove(); elsewhere.remove() }
        // A perfectly valid metric file, reachable only through the link.
        let real = try deadCounterFile(elsewhere, owner: "7", value: 5)
        try FileManager.default.createSymbolicLink(atPath: dir.file("counter_7.db"), withDestinationPath: real)
        var reader = MetricFileReader()
        #expect(throws: MetricFileError(path: dir.file("counter_7.db"), kind: .symlink)) {
            _ = try reader.load(path: dir.file("counter_7.db"))
        }
        #expect(throws: SystemError.self) { _ = try Liveness.probe(path: dir.file("counter_7.db")) }
        #expect(throws: SystemError.self) { _ = try FileLock.exclusiveIfFree(path: dir.file("counter_7.db")) }
    }

    @Test func theWriterNeverWritesThroughASymbolicLinkPlantedAtItsFileName() throws {
        let dir = TempDirectory("pmp-link")
        let outside = TempDirectory("pmp-victim")
        defer { dir.remove(); outside.remove() }
        let victim = outside.file("victim")
        let victimBytes = Data("precious data that is not a metric file\n".utf8)
        try victimBytes.write(to: URL(fileURLWithPath: victim))
        try FileManager.default.createSymbolicLink(atPath: dir.file("counter_4242.db"), withDestinationPath: victim)
        // A dangling link: following it with O_CREAT would create the missing target.
        let missing = outside.file("would-be-created")
        try FileManager.default.createSymbolicLink(atPath: dir.file("counter_4243.db"), withDestinationPath: missing)

        for pid in ["4242", "4243"] {
            let f = try MetricFile.claim(directory: dir.path, kind: .counter, pid: pid)
            try f.slot(for: SeriesKey(family: "c", sample: "c_total", labels: [], help: "h").encoded()).add(7)
            #expect(f.path == dir.file("counter_\(pid)-1.db"), "the writer moved to a suffixed name")
            #expect(try !DirectoryFiles.status(f.path).isSymlink)
            f.close()
        }
        #expect(bytes(victim) == victimBytes)
        #expect(!FileManager.default.fileExists(atPath: missing))
        #expect(outside.names() == ["victim"])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("counter_4242.db")) == victim)
    }

    // MARK: hard links

    @Test func theReaderReportsAHardLinkAndTheWriterNeverAdoptsOne() throws {
        let dir = TempDirectory("pmp-hardlink")
        let elsewhere = TempDirectory("pmp-outside")
        defer { dir.remove(); elsewhere.remove() }
        // A valid metric file outside the directory, whose data a second name inside shares:
        // adopting it would write into the outside file.
        let real = try deadCounterFile(elsewhere, owner: "7", value: 5)
        let realBytes = bytes(real)
        try FileManager.default.linkItem(atPath: real, toPath: dir.file("counter_7.db"))
        var reader = MetricFileReader()
        #expect(throws: MetricFileError(path: dir.file("counter_7.db"), kind: .hardLink(links: 2))) {
            _ = try reader.load(path: dir.file("counter_7.db"))
        }
        #expect(MetricFileError(path: "p", kind: .hardLink(links: 2)).reasonCode.rawValue == "hard_link")

        let f = try MetricFile.claim(directory: dir.path, kind: .counter, pid: "7")
        try f.slot(for: SeriesKey(family: "jobs", sample: "jobs_total", labels: [], help: "Jobs.").encoded()).add(1)
        #expect(f.path == dir.file("counter_7-1.db"), "the writer moved to a suffixed name")
        f.close()
        #expect(bytes(real) == realBytes, "the outside file is untouched")

        // compact and mark-dead leave it alone; inspect reports it.
        let compact = try surfaceCLI(["compact", "--dir", dir.path, "--verbose"])
        #expect(compact.status == 0, "\(compact.stderr)")
        #expect(compact.stdout.contains("kept counter_7.db: a hard link"), "\(compact.stdout)")
        #expect(dir.names().contains("counter_7.db") && bytes(real) == realBytes)
        let inspect = try surfaceCLI(["inspect", dir.file("counter_7.db")])
        #expect(inspect.status == 1 && inspect.stderr.contains("hard link"), "\(inspect.stderr)")
    }

    @Test(.timeLimit(.minutes(1)))
    func aFifoUnderABookkeepingNameIsRefusedWithoutBlocking() throws {
        let dir = TempDirectory("pmp-fifo")
        defer { dir.remove() }
        let fifo = dir.file(".prom-multiproc-dead-pids")
        #expect(mkfifo(fifo, 0o600) == 0)
        // Opening a FIFO for reading blocks until a writer comes, unless O_NONBLOCK is used.
        #expect(throws: SystemError.self) { _ = try DirectoryFiles.read(fifo) }
        #expect(mkfifo(dir.file(FileLock.directoryLockName), 0o600) == 0)
        _ = FileLock.sharedDirectory(dir.path)
    }

    @Test(.timeLimit(.minutes(2)))
    func maintenanceDoesNotHangOnFifosPlantedUnderItsNames() throws {
        let dir = TempDirectory("pmp-fifo")
        defer { dir.remove() }
        _ = try deadCounterFile(dir, owner: "51", value: 1)
        #expect(mkfifo(dir.file(".prom-multiproc-dead-pids"), 0o600) == 0)
        #expect(mkfifo(dir.file(".prom-multiproc-compaction-journal"), 0o600) == 0)
        #expect(mkfifo(dir.file(".prom-multiproc-native-compaction-journal"), 0o600) == 0)
        #expect(mkfifo(dir.file("counter_52.db"), 0o600) == 0)
        #expect(mkfifo(dir.file("native_52.pmh"), 0o600) == 0)
        let r = try run("/bin/sh", ["-c", "exec \"$0\" \"$@\"", executable("prom-multiproc-cli"), "compact", "--dir", dir.path], timeout: 60)
        #expect(!r.signaled, "compact hung on a FIFO and was killed")
        let fifo = try DirectoryFiles.status(dir.file("counter_52.db"))
        #expect(!fifo.isRegular && !fifo.isDirectory && !fifo.isSymlink, "the FIFO is left alone")
        let nativeFifo = try DirectoryFiles.status(dir.file("native_52.pmh"))
        #expect(!nativeFifo.isRegular && !nativeFifo.isDirectory && !nativeFifo.isSymlink, "the native FIFO is left alone")
        #expect(!FileManager.default.fileExists(atPath: dir.file("counter_51.db")), "the dead file was still compacted")
    }

    // MARK: directory warnings

    @Test func aWorldWritableDirectoryWithoutTheStickyBitIsWarnedAbout() throws {
        let dir = TempDirectory("pmp-warn")
        defer { dir.remove() }
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: dir.path)
        let open = DirectorySafety.directoryWarnings(dir.path)
        #expect(open.contains { $0.contains("world-writable without the sticky bit") && $0.contains(dir.path) })
        #expect(open.contains { $0.contains("writable by its group and all other users") })

        try FileManager.default.setAttributes([.posixPermissions: 0o1777], ofItemAtPath: dir.path)
        let sticky = DirectorySafety.directoryWarnings(dir.path)
        #expect(!sticky.contains { $0.contains("sticky") })
        #expect(sticky.contains { $0.contains("writable by its group and all other users") })

        try FileManager.default.setAttributes([.posixPermissions: 0o770], ofItemAtPath: dir.path)
        #expect(DirectorySafety.directoryWarnings(dir.path).map { $0.contains("writable by its group (mode 0770)") } == [true])

        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir.path)
        #expect(DirectorySafety.directoryWarnings(dir.path) == [])
    }

    @Test func aDirectoryOwnedBySomeoneElseIsWarnedAbout() throws {
        let dir = TempDirectory("pmp-owner")
        defer { dir.remove() }
        let path: String
        if DirectoryFiles.effectiveUserID == 0 {
            // As root, give the directory away; otherwise `/` belongs to someone else already.
            #expect(chown(dir.path, 65_534, 65_534) == 0)
            path = dir.path
        } else {
            path = "/"
        }
        let warnings = DirectorySafety.directoryWarnings(path)
        #expect(warnings.contains { $0.contains("not by the current user (uid \(DirectoryFiles.effectiveUserID))") })
    }

    @Test func aMissingPathOrAFileIsWarnedAbout() throws {
        let dir = TempDirectory("pmp-warn")
        defer { dir.remove() }
        #expect(DirectorySafety.directoryWarnings(dir.file("missing")).first?.contains("cannot be inspected") == true)
        try Data().write(to: URL(fileURLWithPath: dir.file("plain")))
        #expect(DirectorySafety.directoryWarnings(dir.file("plain")) == ["\(dir.file("plain")): is not a directory"])
    }

    // MARK: wipe and compact delete only our files

    @Test func wipeRemovesOurFilesAndNothingElse() throws {
        let dir = TempDirectory("pmp-wipe")
        defer { dir.remove() }
        let plants = try Plants(in: dir)
        defer { plants.outside.remove() }
        let ours = try deadCounterFile(dir, owner: "11", value: 2)
        let r = try surfaceCLI(["wipe", "--dir", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ours))
        try plants.expectIntact(dir)
        #expect(Set(dir.names()).subtracting([FileLock.directoryLockName]) == ["counter_9.db", "notes.txt", "weird_1.db", "x.db"])
    }

    @Test func compactRemovesOnlyTheFilesItFoldedAndNothingElse() throws {
        let dir = TempDirectory("pmp-compact")
        defer { dir.remove() }
        let plants = try Plants(in: dir)
        defer { plants.outside.remove() }
        let a = try deadCounterFile(dir, owner: "12", value: 2)
        let b = try deadCounterFile(dir, owner: "13", value: 5)
        let r = try surfaceCLI(["compact", "--dir", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: a))
        #expect(!FileManager.default.fileExists(atPath: b))
        let archive = try MetricFileReader.decodeAll(path: dir.file("counter_archive.db"))
        #expect(archive.entries.map(\.value) == [7])
        try plants.expectIntact(dir)
        #expect(Set(dir.names()).subtracting([FileLock.directoryLockName])
                == ["counter_9.db", "counter_archive.db", "notes.txt", "weird_1.db", "x.db"])
    }

    @Test func aForgedCompactionJournalCannotMakeCompactDeleteOrRenameOtherFiles() throws {
        let dir = TempDirectory("pmp-journal")
        defer { dir.remove() }
        let plants = try Plants(in: dir)
        defer { plants.outside.remove() }
        // A journal in the right format naming files that are not ours: recovery rolls a
        // journal forward (renames its archives into place, deletes its sources).
        let journal = """
            prom-multiproc compaction journal v1
            archive notes.txt weird_1.db
            source notes.txt
            source weird_1.db
            source x.db
            end

            """
        try Data(journal.utf8).write(to: URL(fileURLWithPath: dir.file(".prom-multiproc-compaction-journal")))
        // The same through the native-histogram journal, which must name native files only.
        let native = """
            prom-multiproc native-histogram compaction journal v1
            phase commit
            archive notes.txt native_archive.pmh
            archive .fold-archive-1 weird_1.db
            fold notes.txt native_1.pmh
            fold .fold-1-counter_9 counter_9.db
            fold .fold-1-x x.db
            end

            """
        try Data(native.utf8).write(to: URL(fileURLWithPath: dir.file(".prom-multiproc-native-compaction-journal")))
        let r = try surfaceCLI(["compact", "--dir", dir.path])
        #expect(!r.signaled)
        try plants.expectIntact(dir)
    }
}
