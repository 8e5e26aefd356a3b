// Process metrics: prometheus_client's ProcessCollector arithmetic over a fake /proc tree
// (compared with prometheus_client reading the same tree), and which processes of a directory
// count as live workers (real child processes holding their files).
import Foundation
import MmapStore
import MultiprocessCollector
import PromExposition
import PromMetrics
import Testing
import TestSupport

/// A fake `/proc`: `stat` with `btime`, and one directory per process.
private struct FakeProc {
    let dir = TempDirectory("pmp-proc")
    static let btime = 1_700_000_000.0

    init() throws {
        try write("stat", "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime \(Int(Self.btime))\nprocesses 7\n")
    }

    func write(_ relative: String, _ text: String) throws {
        let path = dir.file(relative)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    /// A process whose command name holds spaces and parentheses, as `/proc/<pid>/stat` allows.
    func addProcess(_ name: String, utime: Int, stime: Int, starttime: Int, vsize: Int, rss: Int,
                    maxOpenFiles: String = "1024", fds: Int? = 3) throws {
        try write("\(name)/stat", "42 (my (odd) worker) S 1 42 42 0 -1 4194560 1234 0 0 0 \(utime) \(stime) 0 0 20 0 4 0 "
                  + "\(starttime) \(vsize) \(rss) 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n")
        try write("\(name)/limits", """
            Limit                     Soft Limit           Hard Limit           Units     
            Max cpu time              unlimited            unlimited            seconds   
            Max open files            \(maxOpenFiles)                 524288               files     
            Max locked memory         8388608              8388608              bytes     

            """)
        if let fds {
            try FileManager.default.createDirectory(atPath: dir.file("\(name)/fd"), withIntermediateDirectories: true)
            for i in 0..<fds { try write("\(name)/fd/\(i)", "") }
        } else {
            // Unreadable but present, as another user's fd directory is (the tests run as root,
            // whom permission bits do not stop: a file where the directory should be fails too).
            try write("\(name)/fd", "")
        }
    }
}

/// The blocks of an exposition, one per family (from its `# HELP` line), sorted: the content
/// without the order of families (prometheus_client keeps the collector's order, we sort).
private func familyBlocks(_ text: String) -> [String] {
    var blocks: [String] = [], current = ""
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
        if line.hasPrefix("# HELP ") || line == "# EOF", !current.isEmpty { blocks.append(current); current = "" }
        if line != "# EOF" { current += line + "\n" }
    }
    if !current.isEmpty { blocks.append(current) }
    return blocks.sorted()
}

@Suite("Process metrics")
struct ProcessMetricsTests {
    @Test func readingsFollowProcWithPrometheusClientsArithmetic() throws {
        let proc = try FakeProc(); defer { proc.dir.remove() }
        try proc.addProcess("self", utime: 1507, stime: 253, starttime: 98765, vsize: 1_234_567_890, rss: 4321)
        let metrics = try #require(ProcessMetrics(procRoot: proc.dir.path, ticks: 100, pageSize: 4096))
        let reading = try #require(metrics.read("self"))
        #expect(reading.cpuSeconds == 1507.0 / 100 + 253.0 / 100)
        #expect(reading.residentMemoryBytes == 4321 * 4096)
        #expect(reading.virtualMemoryBytes == 1_234_567_890)
        #expect(reading.startTimeSeconds == 98765.0 / 100 + FakeProc.btime)
        #expect(reading.openFDs == 3)
        #expect(reading.maxFDs == 1024)
    }

    @Test func unreadableValuesAreLeftOutAndAGoneProcessIsSkipped() throws {
        let proc = try FakeProc(); defer { proc.dir.remove() }
        try proc.addProcess("7", utime: 1, stime: 1, starttime: 1, vsize: 1, rss: 1, maxOpenFiles: "unlimited", fds: nil)
        let metrics = try #require(ProcessMetrics(procRoot: proc.dir.path, ticks: 100, pageSize: 4096))
        let reading = try #require(metrics.read("7"))
        #expect(reading.maxFDs == .infinity)
        #expect(reading.openFDs == nil, "an unreadable fd directory: left out, the other values kept")
        #expect(metrics.read("8") == nil, "no such process")
        let families = ProcessMetrics.families([(pid: "7", reading: reading)])
        #expect(!families.map(\.name).contains("process_open_fds"), "a family without samples is left out")
        #expect(families.count == 5)
    }

    /// On the real /proc: the soft limit on open files, and a reaped process is gone.
    @Test func aRealProcessReadsItsSoftOpenFilesLimitAndIsGoneOnceReaped() throws {
        let dir = TempDirectory("pmp-limits"); defer { dir.remove() }
        let worker = try LiveWorker(directory: dir.path)
        let metrics = try #require(ProcessMetrics())
        for process in ["self", String(worker.pid)] {
            let limits = try String(contentsOfFile: "/proc/\(process)/limits", encoding: .utf8)
            let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
            let soft = line.split(separator: " ")[3]
            #expect(metrics.read(process)?.maxFDs == (soft == "unlimited" ? .infinity : Double(soft)), "\(process)")
        }
        worker.kill()
        #expect(metrics.read(String(worker.pid)) == nil, "a reaped process is gone")
    }

    @Test func withoutBootTimeThereAreNoProcessMetrics() throws {
        let proc = try FakeProc(); defer { proc.dir.remove() }
        try proc.write("stat", "cpu 1 2 3\n")
        #expect(ProcessMetrics(procRoot: proc.dir.path) == nil)
        #expect(ProcessMetrics(procRoot: proc.dir.file("missing")) == nil)
    }

    /// Names, types, help texts and values equal to prometheus_client's ProcessCollector
    /// reading the same tree, in both formats (family order aside).
    @Test(arguments: [ExpositionFormat.prometheusText, .openMetrics])
    func singleProcessOutputIsPrometheusClients(format: ExpositionFormat) throws {
        let proc = try FakeProc(); defer { proc.dir.remove() }
        try proc.addProcess("self", utime: 1507, stime: 253, starttime: 98765, vsize: 1_234_567_890, rss: 4321)
        let metrics = try #require(ProcessMetrics(procRoot: proc.dir.path))
        let ours = String(decoding: Exposition.render(metrics.familiesOfThisProcess(), format: format), as: UTF8.self)
        let script = #"""
            import sys
            from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
            from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
            r = CollectorRegistry()
            ProcessCollector(proc=sys.argv[1], registry=r)
            sys.stdout.write((generate_openmetrics if sys.argv[2] == "openmetrics" else generate_latest)(r).decode())
            """#
        let python = try ExternalTool.python.path()
        let theirs = try run(python, ["-c", script, proc.dir.path, format == .openMetrics ? "openmetrics" : "text"])
        #expect(theirs.status == 0, "\(theirs.stderr)")
        #expect(familyBlocks(ours) == familyBlocks(theirs.stdout))
        #expect(familyBlocks(ours).count == 6)
        #expect(!ours.contains("pid="))
    }

    @Test func lockHoldersAreReadFromProcLocksLines() {
        let text = """
            1: FLOCK  ADVISORY  WRITE 15360 fe:00:16319007 0 EOF
            1: -> FLOCK  ADVISORY  WRITE 999 fe:00:16319007 0 EOF
            2: FLOCK  ADVISORY  READ 11702 fe:00:16312860 0 EOF
            3: POSIX  ADVISORY  WRITE 11703 00:2e:77 0 EOF
            4: OFDLCK ADVISORY  WRITE -1 00:2e:78 0 EOF
            5: FLOCK  ADVISORY  WRITE 0 00:2e:79 0 EOF
            6: FLOCK  ADVISORY  WRITE 4242 103:1a2:80 0 EOF
            7: garbage

            """
        let holders = LockHolders(parsing: Array(text.utf8))
        #expect(holders.holder(of: .init(major: 0xfe, minor: 0, inode: 16_319_007)) == 15360)
        #expect(holders.holder(of: .init(major: 0xfe, minor: 0, inode: 16_312_860)) == nil, "shared")
        #expect(holders.holder(of: .init(major: 0, minor: 0x2e, inode: 77)) == nil, "POSIX")
        #expect(holders.holder(of: .init(major: 0, minor: 0x2e, inode: 78)) == nil, "OFD")
        #expect(holders.holder(of: .init(major: 0, minor: 0x2e, inode: 79)) == nil, "not visible here")
        #expect(holders.holder(of: .init(major: 0x103, minor: 0x1a2, inode: 80)) == 4242)
    }

    /// The live workers are the processes that hold one of their files locked and are that
    /// pid in this process's /proc: not a dead owner, not a Python file (no lock), not a file
    /// held by this process under another identity, and a killed worker is gone at once.
    @Test func liveWorkersAreTheLockHoldersVisibleUnderTheirPids() throws {
        let dir = TempDirectory("pmp-live"); defer { dir.remove() }
        let workers = try (0..<2).map { _ in try LiveWorker(directory: dir.path) }
        // Held by this test process, but under identities that are not its pid.
        let fixed = try FakeProcess(dir.path, pid: "12")
        _ = try fixed.counter("held_by_the_runner")
        let suffixed = try FakeProcess(dir.path, pid: "\(workers[0].pid)-1")
        _ = try suffixed.counter("held_by_the_runner")
        // A dead owner (its lock released), and a prometheus_client file of a live pid.
        let dead = try FakeProcess(dir.path, pid: "13")
        _ = try dead.counter("dead")
        dead.store.close()
        try Data(CollectorTests.pythonFile([CollectorTests.goodKey])).write(to: URL(fileURLWithPath: dir.file("counter_1.db")))
        defer { fixed.store.close(); suffixed.store.close() }

        let listed = try #require(try? MultiProcessCollector.listMetricFiles(in: dir.path).get())
        #expect(LiveProcesses.pids(inListing: listed) == workers.map(\.pid).sorted())

        workers[1].kill()
        #expect(LiveProcesses.pids(inListing: listed) == [workers[0].pid])

        // Without /proc/locks, the lock is probed: the fixed identity counts (nothing says it
        // is not pid 12), and a pid claimed twice (plain and suffixed) is left out.
        let noLocks = TempDirectory("pmp-nolocks"); defer { noLocks.remove() }
        let probed = LiveProcesses.pids(inListing: listed, procRoot: noLocks.path)
        #expect(probed == [12])
    }

    /// prometheus_client's files carry no lock: their owner is live when the process of the
    /// name's pid maps or holds that file (by its descriptors, or by its mappings alone), not
    /// when a process merely has that pid, and no longer once it exits.
    @Test func prometheusClientWorkersAreLiveWhileTheyMapOrHoldTheirFile() throws {
        let dir = TempDirectory("pmp-pylive"); defer { dir.remove() }
        func ready(_ child: LineChild) throws -> Int32 {
            let line = child.readLine() ?? "no output"
            guard line.hasPrefix("ready "), let pid = Int32(line.dropFirst("ready ".count)) else {
                child.finish()
                throw ClientError(description: "the Python child did not get ready: \(line)")
            }
            return pid
        }
        let worker = try LineChild.python("counter_worker.py", [dir.path])
        defer { worker.finish() }
        let workerPID = try ready(worker)
        // Files only mapped, or only open, by a process: renamed after its pid once it has them.
        var held: [LineChild] = []
        defer { for child in held { child.finish() } }
        var holderPIDs: [Int32] = []
        for mode in ["map-only", "open-only"] {
            let path = dir.file("\(mode).tmp")
            try Data(CollectorTests.pythonFile([CollectorTests.goodKey])).write(to: URL(fileURLWithPath: path))
            let child = try LineChild.python("counter_worker.py", [dir.path, mode, path])
            held.append(child)
            let pid = try ready(child)
            holderPIDs.append(pid)
            try FileManager.default.moveItem(atPath: path, toPath: dir.file("counter_\(pid).db"))
        }
        // A worker that exited, its file renamed after a live process that never opened it.
        let exited = try LineChild.python("counter_worker.py", [dir.path])
        let exitedPID = try ready(exited)
        #expect(exited.finish() == 0)
        let sleeper = try launch("/bin/sleep", ["600"])
        defer { kill(sleeper.processIdentifier, SIGKILL); sleeper.waitUntilExit() }
        try FileManager.default.moveItem(atPath: dir.file("counter_\(exitedPID).db"),
                                         toPath: dir.file("counter_\(sleeper.processIdentifier).db"))

        let listed = try #require(try? MultiProcessCollector.listMetricFiles(in: dir.path).get())
        #expect(listed.count == 4)
        #expect(LiveProcesses.pids(inListing: listed) == ([workerPID] + holderPIDs).sorted(),
                "the sleeper \(sleeper.processIdentifier) has the pid of a file it does not use")
        // The same, twice, with the verdicts kept between the calls.
        let memo = LivenessMemo()
        for _ in 0..<2 { #expect(LiveProcesses.pids(inListing: listed, memo: memo) == ([workerPID] + holderPIDs).sorted()) }
        #expect(worker.finish() == 0)
        #expect(LiveProcesses.pids(inListing: listed) == holderPIDs.sorted(), "the exited worker is gone")
        #expect(LiveProcesses.pids(inListing: listed, memo: memo) == holderPIDs.sorted(), "the exited worker is gone")
    }

    /// A verdict on a prometheus_client worker is kept while the process of its pid keeps its
    /// start time and command name and the file its identity; a verdict of not live only for
    /// a while; anything else is judged again.
    @Test func aVerdictOnAPrometheusClientWorkerLastsAsLongAsItsProcess() throws {
        let dir = TempDirectory("pmp-memo"); defer { dir.remove() }
        let file = dir.file("counter_42.db")
        try Data(CollectorTests.pythonFile([CollectorTests.goodKey])).write(to: URL(fileURLWithPath: file))
        let proc = try FakeProc()
        try proc.write("locks", "")
        func process(startingAt start: Int, holding target: String?, state: String = "S") throws {
            try? FileManager.default.removeItem(atPath: proc.dir.file("42"))
            try proc.addProcess("42", utime: 1, stime: 1, starttime: start, vsize: 1, rss: 1, fds: 0)
            if state != "S" {
                let stat = try String(contentsOfFile: proc.dir.file("42/stat"), encoding: .utf8)
                try proc.write("42/stat", stat.replacingOccurrences(of: ") S ", with: ") \(state) "))
            }
            if let target { try FileManager.default.createSymbolicLink(atPath: proc.dir.file("42/fd/3"), withDestinationPath: target) }
        }
        func holds(_ target: String?) throws {
            try? FileManager.default.removeItem(atPath: proc.dir.file("42/fd/3"))
            if let target { try FileManager.default.createSymbolicLink(atPath: proc.dir.file("42/fd/3"), withDestinationPath: target) }
        }
        let memo = LivenessMemo()
        func live(_ memo: LivenessMemo?) -> [Int32] { LiveProcesses.pids(inListing: [file], procRoot: proc.dir.path, memo: memo) }

        try process(startingAt: 100, holding: file)
        #expect(live(memo) == [42])
        // Its descriptor is not walked again (here it is gone; a worker keeps it until it exits).
        try holds(nil)
        #expect(live(nil) == [])
        #expect(live(memo) == [42])
        // It exited and is not reaped yet.
        try process(startingAt: 100, holding: nil, state: "Z")
        #expect(live(memo) == [])
        // Another process got pid 42: judged again. It opens the dead writer's file on its first
        // update: a verdict of not live lasts `rejudgeAfter` (5 s by default) only.
        try process(startingAt: 250, holding: nil)
        let immediate = LivenessMemo(rejudgeAfter: 0)
        #expect(live(memo) == [])
        #expect(live(immediate) == [])
        try holds(file)
        #expect(live(memo) == [], "within 5 s of the verdict")
        #expect(live(immediate) == [42])
        // A new file under the name, the process holding the old one: judged again.
        try FileManager.default.moveItem(atPath: file, toPath: dir.file("old"))
        try holds(dir.file("old"))
        try Data(CollectorTests.pythonFile([CollectorTests.goodKey])).write(to: URL(fileURLWithPath: file))
        #expect(live(immediate) == [])
        // A worker of pid 42 again (it started later), then no process 42 any more.
        try process(startingAt: 400, holding: file)
        #expect(live(memo) == [42])
        try FileManager.default.removeItem(atPath: proc.dir.file("42"))
        #expect(live(memo) == [])
    }

    /// The families of the live workers and of this process: one series per process, labelled
    /// with its pid, sorted by label.
    @Test func liveWorkersFamiliesHaveOneSeriesPerProcess() throws {
        let dir = TempDirectory("pmp-live"); defer { dir.remove() }
        let workers = try (0..<3).map { _ in try LiveWorker(directory: dir.path) }
        let listed = try #require(try? MultiProcessCollector.listMetricFiles(in: dir.path).get())
        let metrics = try #require(ProcessMetrics())
        let families = metrics.familiesOfLiveWorkers(listedPaths: listed)
        let expected = (workers.map(\.pid) + [getpid()]).map { String($0) }.sorted {
            $0.utf8.lexicographicallyPrecedes($1.utf8)
        }
        #expect(families.map(\.name) == [
            "process_cpu_seconds", "process_max_fds", "process_open_fds", "process_resident_memory_bytes",
            "process_start_time_seconds", "process_virtual_memory_bytes",
        ])
        for family in families {
            #expect(family.samples.map { $0.labels } == expected.map { [Label("pid", $0)] }, "\(family.name)")
        }
        #expect(families[0].samples.allSatisfy { $0.name == "process_cpu_seconds_total" })
    }
}
