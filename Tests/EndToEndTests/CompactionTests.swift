import Foundation
import Testing
import MmapStore
import MultiprocessCollector
import PromMetrics
import TestSupport

/// Writes one process's worth of every metric type and gauge mode into `dir` as `pid`.
/// Returns the storage; close its store to make the process "dead".
@discardableResult
func writeEveryType(_ dir: TempDirectory, pid: String, scale: Double, wall: Double) throws -> MetricStorage {
    let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed(pid))
    let clock = MetricClock(wallTime: { wall }, monotonicTime: { 0 })
    let r = Registry(storage: storage, clock: clock)
    let c = try Counter("requests_total", help: "Requests.", labelNames: ["route"], registry: r)
    c.labels("/a").increment(by: 1 * scale)
    c.labels("/b").increment(by: 2 * scale)
    let h = try Histogram("latency_seconds", help: "Latency.", labelNames: ["route"], buckets: [0.1, 1], registry: r)
    h.labels("/a").observe(0.05 * scale)
    h.labels("/a").observe(3)
    let s = try Summary("size_bytes", help: "Size.", registry: r)
    s.observe(10 * scale)
    for mode in GaugeMode.allCases {
        let g = try Gauge("g_\(mode.rawValue)", help: "Gauge \(mode.rawValue).", labelNames: ["k"], mode: mode, registry: r)
        g.labels("x").set(scale)
        _ = g.labels("never-set")
    }
    return storage
}

/// The merged text exposition of `dir` (no self-metrics), through the CLI.
func collectText(_ dir: TempDirectory) throws -> String {
    let r = try cli(["collect", "--dir", dir.path, "--no-self-metrics"])
    #expect(r.status == 0, "\(r.stderr)")
    return r.stdout
}

@Suite struct CompactionTests {
    /// A directory with three dead processes, one live one, and a prometheus_client process
    /// declared dead.
    func churnedDirectory() throws -> (TempDirectory, MetricStorage) {
        let dir = TempDirectory("pmp-compact")
        for (i, pid) in ["101", "102", "103"].enumerated() {
            try writeEveryType(dir, pid: pid, scale: Double(i + 1), wall: 1000 + Double(i)).store?.close()
        }
        let live = try writeEveryType(dir, pid: "104", scale: 10, wall: 999)
        let spec = #"[{"type":"counter","name":"requests_total","help":"Requests.","labelnames":["route"],"labels":["/a"],"op":"inc","amount":5},{"type":"gauge","mode":"livesum","name":"g_livesum","help":"Gauge livesum.","labelnames":["k"],"labels":["x"],"op":"set","amount":7}]"#
        let specPath = dir.path + "/../pmp-spec-\(UInt32.random(in: 0...UInt32.max)).json"
        try spec.write(toFile: specPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: specPath) }
        let py = try runPython("write.py", [dir.path, "777", specPath])
        #expect(py.status == 0, "\(py.stderr)")
        return (dir, live)
    }

    @Test func compactionKeepsTheMergedOutputIdentical() throws {
        let (dir, live) = try churnedDirectory()
        defer { live.store?.close(); dir.remove() }
        let dead = try cli(["mark-dead", "--pid", "777", "--dir", dir.path])
        #expect(dead.status == 0)
        let before = try collectText(dir)
        let filesBefore = dir.names().filter { $0.hasSuffix(".db") }.count
        let r = try cli(["compact", "--dir", dir.path, "--verbose"])
        #expect(r.status == 0, "\(r.stderr)")
        let after = try collectText(dir)
        #expect(after == before)
        let files = dir.names().filter { $0.hasSuffix(".db") }
        #expect(files.count < filesBefore)
        #expect(files.contains("counter_archive.db") && files.contains("gauge_sum_archive.db") && files.contains("gauge_mostrecent_archive.db"))
        #expect(!files.contains("counter_101.db") && !files.contains("counter_777.db") && !files.contains("gauge_livesum_101.db"))
        #expect(files.contains("counter_104.db") && files.contains("gauge_all_101.db"))
        // prometheus_client still reads the compacted directory, with the same counter total.
        let python = try runPython("collect.py", [dir.path])
        #expect(python.status == 0, "\(python.stderr)")
        #expect(before.contains("requests_total{route=\"/a\"} 21.0"))
        #expect(python.stdout.contains("21.0") || python.stdout.contains("21"))
        // A second compaction with nothing dead changes nothing.
        #expect(try cli(["compact", "--dir", dir.path]).status == 0)
        #expect(try collectText(dir) == before)
    }

    /// prometheus_client's files carry no lock: nobody mapping or holding them open is what
    /// tells they are dead, and no mark-dead is needed (the writer of pid 777 has exited).
    @Test func pythonFilesNobodyHoldsAreCompactedWithoutMarkDead() throws {
        let (dir, live) = try churnedDirectory()
        defer { live.store?.close(); dir.remove() }
        let r = try cli(["compact", "--dir", dir.path, "--verbose"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("liveness: /proc scan: "), "\(r.stdout)")
        #expect(!dir.names().contains("counter_777.db") && !dir.names().contains("gauge_livesum_777.db"))
        #expect(try collectText(dir).contains(#"requests_total{route="/a"} 21.0"#))
    }

    /// The reported bug: a prometheus_client worker with its real pid counts 1; the supervisor
    /// had declared that pid dead for its previous holder (pid reuse). Compaction must keep the
    /// live worker's file, so its next increments count; once it exits, the file is folded
    /// without any hook.
    @Test func aLivePrometheusClientWorkerWhosePidWasDeclaredDeadKeepsCounting() throws {
        let dir = TempDirectory("pmp-reuse"); defer { dir.remove() }
        let worker = try LineChild.python("counter_worker.py", [dir.path])
        defer { worker.finish() }
        let ready = try #require(worker.readLine(), "the worker did not start")
        let pid = String(ready.split(separator: " ").last ?? "")
        try #require(ready.hasPrefix("ready ") && Int32(pid) != nil, "\(ready)")
        let marked = try cli(["mark-dead", "--pid", pid, "--dir", dir.path])
        #expect(marked.status == 0 && marked.stderr.contains("not recorded as dead"), "\(marked.stderr)")
        let compact = try cli(["compact", "--dir", dir.path, "--verbose"])
        #expect(compact.status == 0, "\(compact.stderr)")
        #expect(compact.stdout.contains("kept counter_\(pid).db: in use"), "\(compact.stdout)")
        #expect(try collectText(dir).contains("jobs_total 1.0"))
        worker.send("inc")
        #expect(worker.readLine() == "count 2.0")
        #expect(try collectText(dir).contains("jobs_total 2.0"), "the increment after the compaction counts")
        #expect(worker.finish() == 0)
        // Gone: nobody maps or holds the file any more; no mark-dead needed.
        let after = try cli(["compact", "--dir", dir.path, "--verbose"])
        #expect(after.stdout.contains("folded counter_\(pid).db"), "\(after.stdout)")
        #expect(try collectText(dir).contains("jobs_total 2.0"))
        #expect(dir.names().filter { $0.hasSuffix(".db") } == ["counter_archive.db"])
    }

    /// The compactor is the test worker's `compact-crash-after` mode: the library's compaction
    /// with a SIGKILL injected after the step (the CLI has no such hook).
    @Test(arguments: CompactionStep.allCases)
    func aCompactorKilledAtAnyStepNeverDoubleCountsOrLoses(step: CompactionStep) throws {
        let (dir, live) = try churnedDirectory()
        defer { live.store?.close(); dir.remove() }
        #expect(try cli(["mark-dead", "--pid", "777", "--dir", dir.path]).status == 0)
        let before = try collectText(dir)
        let killed = try run(executable("prom-multiproc-testworker"), ["compact-crash-after", dir.path, step.rawValue])
        #expect(killed.signaled && killed.status == 128 + SIGKILL,
                "the compactor was not killed at \(step): \(killed.status) \(killed.stdout) \(killed.stderr)")
        #expect(try collectText(dir) == before, "after a kill at \(step)")
        let again = try cli(["compact", "--dir", dir.path])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try collectText(dir) == before)
        #expect(!dir.names().contains { $0.hasPrefix(".tmp-") || $0.hasPrefix(".fold-") || $0 == ".prom-multiproc-compaction-journal" })
    }

    @Test func twoCompactorsStartedAtOnceRunOneAfterTheOther() throws {
        let (dir, live) = try churnedDirectory()
        defer { live.store?.close(); dir.remove() }
        // Compaction drops the dead prometheus_client process's live gauge, as mark-dead does.
        #expect(try cli(["mark-dead", "--pid", "777", "--dir", dir.path]).status == 0)
        let before = try collectText(dir)
        let a = try launch(executable("prom-multiproc-cli"), ["compact", "--dir", dir.path])
        let b = try launch(executable("prom-multiproc-cli"), ["compact", "--dir", dir.path])
        a.waitUntilExit(); b.waitUntilExit()
        #expect(a.terminationStatus == 0 && b.terminationStatus == 0)
        #expect(try collectText(dir) == before)
    }
}
