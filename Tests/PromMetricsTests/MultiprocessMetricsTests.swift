import MmapStore
import Foundation
import Testing
import PromMetrics
import TestSupport

/// The API cases of prometheus_client's tests/test_multiprocess.py, ported: two registries
/// with fixed pids 123 and 456 play two processes sharing one directory, and prometheus_client's
/// own MultiProcessCollector reads the result.
@Suite struct MultiprocessMetricsTests {
    @Test func counterAdds() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let c1 = try Counter("c", help: "help", registry: multiprocessRegistry(dir, pid: "123"))
        let c2 = try Counter("c", help: "help", registry: multiprocessRegistry(dir, pid: "456"))
        #expect(try pythonMerged(dir)["c_total{}"] == 0)
        c1.increment(by: 1)
        c2.increment(by: 2)
        #expect(try pythonMerged(dir)["c_total{}"] == 3)
        #expect(dir.names() == ["counter_123.db", "counter_456.db", "meta_123.pmm", "meta_456.pmm"], "values, and creation times")
    }

    @Test func summaryAdds() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let s1 = try Summary("s", help: "help", registry: multiprocessRegistry(dir, pid: "123"))
        let s2 = try Summary("s", help: "help", registry: multiprocessRegistry(dir, pid: "456"))
        var merged = try pythonMerged(dir)
        #expect(merged["s_count{}"] == 0 && merged["s_sum{}"] == 0)
        s1.observe(1)
        s2.observe(2)
        merged = try pythonMerged(dir)
        #expect(merged["s_count{}"] == 2)
        #expect(merged["s_sum{}"] == 3)
    }

    @Test func histogramAdds() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let h1 = try Histogram("h", help: "help", registry: multiprocessRegistry(dir, pid: "123"))
        let h2 = try Histogram("h", help: "help", registry: multiprocessRegistry(dir, pid: "456"))
        var merged = try pythonMerged(dir)
        #expect(merged["h_count{}"] == 0 && merged["h_sum{}"] == 0 && merged["h_bucket{le=\"5.0\"}"] == 0)
        h1.observe(1)
        h2.observe(2)
        merged = try pythonMerged(dir)
        #expect(merged["h_count{}"] == 2)
        #expect(merged["h_sum{}"] == 3)
        #expect(merged["h_bucket{le=\"5.0\"}"] == 2)
        #expect(merged["h_bucket{le=\"1.0\"}"] == 1)
        #expect(merged["h_bucket{le=\"0.5\"}"] == 0)
        // In the file the buckets are non-cumulative, and `_sum` comes first (Python's layout).
        let entries = try fileEntries(dir)["histogram_123.db"]
        #expect(entries?["h_bucket{le=\"1.0\"}"]?.0 == 1)
        #expect(entries?["h_bucket{le=\"2.5\"}"]?.0 == 0)
        #expect(entries?["h_bucket{le=\"+Inf\"}"]?.0 == 0)
        let order = try MetricFileReader.decodeAll(path: dir.file("histogram_123.db")).entries.map(\.key.sample)
        #expect(order.first == "h_sum" && order.count == 16)
    }

    /// Sets or increments the two processes' gauges and returns Python's merged view,
    /// before and after mark-dead of pid 123 (the live files removed, as mark_process_dead does).
    private func gaugeScenario(_ mode: GaugeMode, _ act: (Gauge, Gauge, ManualClock) -> Void) throws -> (before: [String: Double], after: [String: Double]) {
        let dir = TempDirectory(); defer { dir.remove() }
        let clock = ManualClock(1000)
        let g1 = try Gauge("g", help: "help", mode: mode, registry: multiprocessRegistry(dir, pid: "123", clock: clock.metricClock))
        let g2 = try Gauge("g", help: "help", mode: mode, registry: multiprocessRegistry(dir, pid: "456", clock: clock.metricClock))
        act(g1, g2, clock)
        let before = try pythonMerged(dir)
        let dead = try run(try ExternalTool.python.path(), ["-c",
            "import sys; from prometheus_client.multiprocess import mark_process_dead; mark_process_dead(123, sys.argv[1])", dir.path])
        #expect(dead.status == 0, "\(dead.stderr)")
        return (before, try pythonMerged(dir))
    }

    @Test func gaugeAllKeepsOneSeriesPerPidEvenAfterMarkDead() throws {
        let r = try gaugeScenario(.all) { g1, g2, _ in g1.set(1); g2.set(2) }
        #expect(r.before["g{pid=\"123\"}"] == 1 && r.before["g{pid=\"456\"}"] == 2)
        #expect(r.after["g{pid=\"123\"}"] == 1 && r.after["g{pid=\"456\"}"] == 2)
    }

    @Test func gaugeLiveallDropsTheDeadPid() throws {
        let r = try gaugeScenario(.liveall) { g1, g2, _ in g1.set(1); g2.set(2) }
        #expect(r.before["g{pid=\"123\"}"] == 1 && r.before["g{pid=\"456\"}"] == 2)
        #expect(r.after["g{pid=\"123\"}"] == nil && r.after["g{pid=\"456\"}"] == 2)
    }

    @Test(arguments: [
        (GaugeMode.min, 1.0, 1.0), (.livemin, 1.0, 2.0), (.max, 2.0, 2.0), (.livemax, 2.0, 2.0), (.sum, 3.0, 3.0), (.livesum, 3.0, 2.0),
    ])
    func aggregatingGaugeModes(mode: PromMetrics.GaugeMode, before: Double, after: Double) throws {
        let r = try gaugeScenario(mode) { g1, g2, _ in g1.set(1); g2.set(2) }
        #expect(r.before["g{}"] == before)
        #expect(r.after["g{}"] == after)
    }

    @Test func livemaxAfterMarkDeadUsesTheLiveProcess() throws {
        let r = try gaugeScenario(.livemax) { g1, g2, _ in g1.set(2); g2.set(1) }
        #expect(r.before["g{}"] == 2)
        #expect(r.after["g{}"] == 1)
    }

    @Test func mostrecentTakesTheLatestSet() throws {
        let r = try gaugeScenario(.mostrecent) { g1, g2, clock in clock.set(1000); g2.set(2); clock.set(1001); g1.set(1) }
        #expect(r.before["g{}"] == 1)
        #expect(r.after["g{}"] == 1)
        let live = try gaugeScenario(.livemostrecent) { g1, g2, clock in clock.set(1000); g2.set(2); clock.set(1001); g1.set(1) }
        #expect(live.before["g{}"] == 1)
        #expect(live.after["g{}"] == 2)
    }

    @Test func mostrecentStoresTheWallClockTimestamp() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let clock = ManualClock(1_795_316_513.25)
        let g = try Gauge("g", help: "help", mode: .mostrecent, registry: multiprocessRegistry(dir, pid: "1", clock: clock.metricClock))
        #expect(try fileEntries(dir)["gauge_mostrecent_1.db"]?["g{}"]?.1 == 0)
        g.set(42)
        let e = try fileEntries(dir)["gauge_mostrecent_1.db"]?["g{}"]
        #expect(e?.0 == 42 && e?.1 == 1_795_316_513.25)
    }

    @Test func namespaceAndSubsystem() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let c = try Counter("c", help: "help", labelNames: ["a"], namespace: "ns", subsystem: "ss", registry: multiprocessRegistry(dir, pid: "1"))
        c.labels("x").increment()
        #expect(try pythonMerged(dir)["ns_ss_c_total{a=\"x\"}"] == 1)
    }

    @Test func childNameIsBuiltOnceWithNamespaceSubsystemAndUnit() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let c = try Counter("m", help: "help", labelNames: ["l"], namespace: "ns", subsystem: "ss", unit: "seconds",
                            registry: multiprocessRegistry(dir, pid: "1"))
        c.labels("v").increment()
        let merged = try pythonMerged(dir)
        #expect(merged == ["ns_ss_m_seconds_total{l=\"v\"}": 1])
    }

    @Test func counterAcrossAProcessChangeContinuesInTheNewFile() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        final class Pid: @unchecked Sendable { var value = "0"; let lock = NSLock() }
        let pid = Pid()
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: ProcessIdentity { pid.lock.lock(); defer { pid.lock.unlock() }; return pid.value })
        let registry = Registry(storage: storage)
        let c = try Counter("c", help: "help", labelNames: ["k"], registry: registry)
        c.labels("a").increment(by: 2)
        _ = c.labels("b")
        #expect(dir.names() == ["counter_0.db", "meta_0.pmm"])
        pid.lock.lock(); pid.value = "1"; pid.lock.unlock()
        storage.store?.processIdentityMayHaveChanged()
        c.labels("a").increment(by: 1)
        // The new process's values restart at 0; every known series is re-created in its file.
        #expect(c.labels("a").value == 1)
        #expect(dir.names() == ["counter_0.db", "counter_1.db", "meta_0.pmm", "meta_1.pmm"])
        let entries = try fileEntries(dir)
        #expect(entries["counter_0.db"]?["c_total{k=\"a\"}"]?.0 == 2)
        #expect(entries["counter_1.db"]?["c_total{k=\"a\"}"]?.0 == 1)
        #expect(entries["counter_1.db"]?["c_total{k=\"b\"}"]?.0 == 0)
        #expect(try pythonMerged(dir)["c_total{k=\"a\"}"] == 3)
        // A metric created after the change goes to the new file only.
        _ = try Gauge("g", help: "help", registry: registry)
        #expect(dir.names() == ["counter_0.db", "counter_1.db", "gauge_all_1.db", "meta_0.pmm", "meta_1.pmm"])
    }

    @Test func labelledChildExistsAtZeroFromCreation() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let c = try Counter("c", help: "help", labelNames: ["a", "b"], registry: multiprocessRegistry(dir, pid: "1"))
        _ = c.labels("x", "y")
        _ = c.labels(["b": "w", "a": "v"])
        let merged = try pythonMerged(dir)
        #expect(merged["c_total{a=\"x\",b=\"y\"}"] == 0)
        #expect(merged["c_total{a=\"v\",b=\"w\"}"] == 0)
        #expect(c.labels("x", "y") === c.labels(["x", "y"]))
    }

    @Test func infoAndEnumAreStoredAsGaugesPythonCanRead() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let r = try multiprocessRegistry(dir, pid: "1")
        let info = try Info("build", help: "Build.", registry: r)
        info.info(["version": "1.2", "commit": "abc"])
        let phase = try Enum("phase", help: "Phase.", states: ["starting", "serving"], registry: r)
        var merged = try pythonMerged(dir)
        #expect(merged["build_info{commit=\"abc\",version=\"1.2\"}"] == 1)
        #expect(merged["phase{phase=\"starting\"}"] == 1 && merged["phase{phase=\"serving\"}"] == 0)
        phase.state("serving")
        info.info(["version": "1.3", "commit": "def"])
        merged = try pythonMerged(dir)
        #expect(merged["phase{phase=\"starting\"}"] == 0 && merged["phase{phase=\"serving\"}"] == 1)
        #expect(merged["build_info{commit=\"def\",version=\"1.3\"}"] == 1)
        #expect(merged["build_info{commit=\"abc\",version=\"1.2\"}"] == 0)
        #expect(dir.names() == ["gauge_livemax_1.db", "meta_1.pmm"], "the gauges, and their types in the metadata file")
    }

    @Test func everyOperationLandsInTheFile() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let clock = ManualClock(50)
        let r = try multiprocessRegistry(dir, pid: "7", clock: clock.metricClock)
        let g = try Gauge("g", help: "help", mode: .livesum, registry: r)
        g.increment(by: 5); g.decrement(by: 2)
        #expect(g.value == 3)
        g.setToCurrentTime()
        #expect(g.value == 50)
        g.trackInProgress { #expect(g.value == 51) }
        #expect(g.value == 50)
        let t = try Gauge("t", help: "help", mode: .livesum, registry: r)
        let result = t.time { () -> Int in clock.set(52.5); return 9 }
        #expect(result == 9 && t.value == 2.5)
        let h = try Histogram("h", help: "help", buckets: [1, 2], registry: r)
        struct Boom: Error {}
        clock.set(0)
        #expect(throws: Boom.self) { try h.time { clock.set(1.5); throw Boom() } }
        let errors = try Counter("errors", help: "help", registry: r)
        #expect(throws: Boom.self) { try errors.countErrors { throw Boom() } }
        struct Other: Error {}
        #expect(throws: Other.self) { try errors.countErrors(of: Boom.self) { throw Other() } }
        #expect(throws: Boom.self) { try errors.countErrors(of: Boom.self) { throw Boom() } }
        #expect(errors.countErrors { 4 } == 4)
        let entries = try fileEntries(dir)
        #expect(entries["gauge_livesum_7.db"]?["g{}"]?.0 == 50)
        #expect(entries["gauge_livesum_7.db"]?["t{}"]?.0 == 2.5)
        #expect(entries["histogram_7.db"]?["h_bucket{le=\"2.0\"}"]?.0 == 1)
        #expect(entries["histogram_7.db"]?["h_sum{}"]?.0 == 1.5)
        #expect(entries["counter_7.db"]?["errors_total{}"]?.0 == 2)
        let merged = try pythonMerged(dir)
        #expect(merged["h_count{}"] == 1 && merged["errors_total{}"] == 2 && merged["g{}"] == 50)
    }

    @Test func asyncTimersRecordEvenWhenTheBodyThrows() async throws {
        let clock = ManualClock(0)
        let r = Registry(clock: clock.metricClock)
        let s = try Summary("s", help: "help", registry: r)
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await s.time { () async throws -> Int in clock.set(3); throw Boom() }
        }
        let v = await s.time { () async -> String in clock.set(4); return "ok" }
        #expect(v == "ok")
        let fam = r.collect().first
        #expect(fam?.samples.map(\.value) == [2, 4])
        let g = try Gauge("g", help: "help", registry: r)
        let n = await g.trackInProgress { () async -> Double in g.value }
        #expect(n == 1 && g.value == 0)
    }
}
