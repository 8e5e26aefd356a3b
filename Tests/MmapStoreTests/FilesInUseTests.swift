// Liveness of files that carry no lock: a scan of /proc for the files processes map or hold
// open (FilesInUse), against real child processes.
import Foundation
import MmapStore
import SystemCalls
import Testing
import TestSupport

@Suite struct FilesInUseTests {
    /// A file in `dir` that nobody holds (written and closed by this process).
    func plainFile(_ dir: TempDirectory, _ name: String) throws -> String {
        let path = dir.file(name)
        // Close-on-exec (Data.write is not): a child another test spawns meanwhile must not
        // inherit the descriptor and so hold the file.
        try DirectoryFiles.writeAtomically([UInt8](repeating: 0, count: 8192), to: path)
        return path
    }

    func state(_ scan: FilesInUse, _ path: String) throws -> FilesInUse.State {
        scan.state(of: try DirectoryFiles.status(path))
    }

    @Test func aFileAWriterHoldsIsInUseAndAFileNobodyHoldsIsNot() throws {
        let dir = TempDirectory("pmp-inuse"); defer { dir.remove() }
        let free = try plainFile(dir, "counter_1.db")
        let holder = try WorkerProcess(["hold", dir.path, "4242"])
        defer { holder.kill() }
        let held = try #require(holder.readLine()?.split(separator: " ").last.map(String.init), "the holder did not start")
        let scan = FilesInUse.scan(directory: dir.path)
        #expect(scan.availability == .complete, "\(scan.summary)")
        #expect(scan.processes > 1)
        #expect(try state(scan, held) == .inUse)
        #expect(try state(scan, free) == .free)
        holder.kill()
        #expect(try state(FilesInUse.scan(directory: dir.path), held) == .free, "a dead writer's file is free")
    }

    /// prometheus_client keeps its files open and mapped; either alone keeps a file in use.
    @Test(arguments: ["open-only", "map-only"])
    func aFileOnlyMappedOrOnlyOpenIsInUse(mode: String) throws {
        let dir = TempDirectory("pmp-inuse"); defer { dir.remove() }
        let path = try plainFile(dir, "counter_2.db")
        let child = try LineChild.python("counter_worker.py", [dir.path, mode, path])
        defer { child.finish() }
        let ready = child.readLine()
        #expect(ready?.hasPrefix("ready ") == true, "\(ready ?? "no output")")
        let scan = FilesInUse.scan(directory: dir.path)
        #expect(try state(scan, path) == .inUse, "\(mode): \(scan.summary)")
        child.finish()
        #expect(try state(FilesInUse.scan(directory: dir.path), path) == .free)
    }

    /// A serving collector keeps read-only mappings of the files it reads unchanged
    /// (`ReadMapping`): a reader, not a writer, so the file stays free for compaction.
    @Test func aReadOnlyMappingDoesNotKeepAFileInUse() throws {
        let dir = TempDirectory("pmp-inuse"); defer { dir.remove() }
        let path = try plainFile(dir, "counter_5.db")
        var reader = MetricFileReader()
        let identity = try #require(try reader.peek(path: path).identity)
        let mapping = try #require(ReadMapping(path: path, identity: identity, length: 8192))
        let scan = FilesInUse.scan(directory: dir.path)
        #expect(scan.availability == .complete, "\(scan.summary)")
        #expect(try state(scan, path) == .free, "\(scan.summary)")
        var buffer: [UInt8] = []
        #expect(!FilesInUse.process(getpid(), uses: try DirectoryFiles.status(path), buffer: &buffer))
        withExtendedLifetime(mapping) {}
    }

    @Test func descriptorsOfThisProcessCanBeLeftOut() throws {
        let dir = TempDirectory("pmp-inuse"); defer { dir.remove() }
        let path = try plainFile(dir, "counter_3.db")
        let fd = try Sys.open(path, [.readOnly])
        defer { Sys.close(fd) }
        #expect(try state(FilesInUse.scan(directory: dir.path), path) == .inUse)
        #expect(try state(FilesInUse.scan(directory: dir.path, ignoring: [fd]), path) == .free)
    }

    /// A procfs that does not show this process (another pid namespace, or none) is not
    /// trusted: every file's liveness is unknown.
    @Test func aProcfsThatDoesNotShowThisProcessIsNotTrusted() throws {
        let dir = TempDirectory("pmp-inuse"); defer { dir.remove() }
        let fakeProc = TempDirectory("pmp-fakeproc"); defer { fakeProc.remove() }
        let path = try plainFile(dir, "counter_4.db")
        let scan = FilesInUse.scan(directory: dir.path, procRoot: fakeProc.path)
        guard case .unavailable(let why) = scan.availability else {
            Issue.record("an empty procfs was trusted: \(scan.summary)")
            return
        }
        #expect(why.contains("/self"), "\(why)")
        guard case .unknown = try state(scan, path) else { Issue.record("a file's liveness was decided without procfs"); return }
    }

    @Test func mapsLinesGiveTheInodesOfTheDevice() {
        // st_dev as glibc encodes major:minor: fe:00 is 0xfe00; a large minor spreads.
        #expect(FilesInUse.deviceNumber(major: 0xFE, minor: 0) == 0xFE00)
        #expect(FilesInUse.deviceNumber(major: 0, minor: 0x2A) == 0x2A)
        #expect(FilesInUse.deviceNumber(major: 0x103, minor: 0x12345) == 0x1231_0345)
        let text = """
        5603b4b1f000-5603b4b21000 r--p 00000000 fe:00 254163                     /usr/bin/head
        7f00-8f00 rw-s 00000000 fe:00 77 /tmp/d/counter_1.db
        7f00-8f00 rw-s 00000000 00:2a 78 /dev/shm/counter_2.db
        7ffd-7ffe rw-p 00000000 00:00 0                          [stack]
        7f00-8f00 rw-s 00000000 FE:00 79 /tmp/d/gauge_all_1.db (deleted)
        garbage line
        """
        var found: [UInt64] = [], writable: [Bool] = []
        FilesInUse.parseMaps(Array(text.utf8)[...], device: 0xFE00) { found.append($0); writable.append($1) }
        #expect(found == [254163, 77, 79])
        // Only a writer's mapping is writable; `r--p` (and a reader's `r--s`) is not.
        #expect(writable == [false, true, true])
        found = []
        FilesInUse.parseMaps(Array(text.utf8)[...], device: 0x2A) { found.append($0); _ = $1 }
        #expect(found == [78])
    }
}
