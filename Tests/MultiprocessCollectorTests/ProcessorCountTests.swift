// How many threads a collector merges on by default: no more than the processors the process
// may use. A process started under `taskset` (util-linux, part of every Debian system) is
// allowed one processor; the kernel's CPU-list and cgroup quota formats are read as
// Documentation/admin-guide/cgroup-v2.rst and cpuset(7) define them.
import MultiprocessCollector
import SystemCalls
import Testing
import TestSupport

@Suite("Merge threads follow the processors the process may use")
struct ProcessorCountTests {
    /// `Cpus_allowed_list` (cpuset(7), "List format"): ranges and single processors, comma-separated.
    @Test func cpuListsAreCounted() {
        #expect(Sys.cpuListCount("0-3,8,10-11\n") == 7)
        #expect(Sys.cpuListCount("\t5") == 1)
        #expect(Sys.cpuListCount("0-63") == 64)
        #expect(Sys.cpuListCount("") == nil)
        #expect(Sys.cpuListCount("3-1") == nil)
        #expect(Sys.cpuListCount("0-2-4") == nil)
        #expect(Sys.cpuListCount("cpu") == nil)
    }

    /// `cpu.max` (cgroup-v2.rst: "$MAX $PERIOD", `max` for no limit), and v1's quota and
    /// period (-1 for no limit): the processors the quota buys, rounded up.
    @Test func cpuQuotasAreRoundedUp() {
        #expect(Sys.cpuQuota("max 100000\n") == nil)
        #expect(Sys.cpuQuota("150000 100000") == 2)
        #expect(Sys.cpuQuota("200000 100000\n") == 2)
        #expect(Sys.cpuQuota("50000 100000") == 1)
        #expect(Sys.cpuQuota("-1 100000") == nil)
        #expect(Sys.cpuQuota("100000") == nil)
    }

    /// A collector in a process that `taskset -c 0` pins to one processor merges on one thread.
    @Test func aProcessPinnedToOneProcessorMergesOnOneThread() throws {
        let dir = TempDirectory("threads"); defer { dir.remove() }
        let pinned = try launchCapturing("/usr/bin/taskset", ["-c", "0", executable("prom-multiproc-testworker"), "merge-threads", dir.path])
            .finish()
        #expect(pinned.status == 0, "\(pinned.stderr)")
        #expect(pinned.stdout == "merge-threads 1\n", "\(pinned.stdout) \(pinned.stderr)")
        // And this process, however many it may use, merges on at most 8.
        let own = MultiProcessCollector(directory: dir.path, includeSelfMetrics: false).mergeThreads
        #expect((1...8).contains(own))
        #expect(own <= Sys.usableProcessors())
    }
}
