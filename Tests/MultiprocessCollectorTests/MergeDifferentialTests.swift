// Differential tests: for the same directory, our merged samples equal those of
// prometheus_client 0.26.0's MultiProcessCollector (scripts/python/collect.py, which merges in
// name order as we do). Samples are compared parsed, never as bytes.
import Foundation
import MmapStore
import MultiprocessCollector
import PromMetrics
import Testing
import TestSupport

@Suite("Merge equals prometheus_client's")
struct MergeDifferentialTests {
    static let tricky = "caf\u{e9} \u{1F600} \u{7f} \u{1} / q\"uo\\te\nnl\t"

    /// Operations for one Python process: every type, all ten gauge modes, escapes, a user
    /// `pid` label, custom buckets, never-set children.
    static func pythonOps(pid: Int, seed: Double) -> [PyOp] {
        var ops: [PyOp] = [
            PyOp(type: "counter", name: "requests", help: "Requests.", labelnames: ["code", "method"], labels: ["200", "GET"], op: "inc", amount: seed),
            PyOp(type: "counter", name: "requests", help: "Requests.", labelnames: ["code", "method"], labels: ["500", "POST"], op: "inc", amount: 0.5),
            PyOp(type: "counter", name: "escaped", help: "help \u{fc}\n\\", labelnames: ["a", "\u{e9}"], labels: [tricky, "x"], op: "inc", amount: 1),
            PyOp(type: "counter", name: "untouched", help: "never incremented", op: "create"),
            PyOp(type: "summary", name: "latency", help: "Latency.", labelnames: ["path"], labels: ["/"], op: "observe", amount: seed * 0.1),
            PyOp(type: "histogram", name: "size", help: "Sizes.", labelnames: ["kind"], labels: ["a"], op: "observe", amount: seed),
            PyOp(type: "histogram", name: "size", help: "Sizes.", labelnames: ["kind"], labels: ["b"], op: "observe", amount: 100),
            PyOp(type: "histogram", name: "big", help: "Custom buckets.", op: "observe", amount: 2e6 * seed, buckets: [0.5, 1e6, 5e6, 1e7]),
        ]
        for mode in GaugeMode.allCases {
            let name = "g_\(mode.rawValue)"
            ops.append(PyOp(type: "gauge", name: name, help: "Gauge \(mode.rawValue).", labelnames: ["k"], labels: ["set"], op: "set", amount: seed * Double(pid % 7 + 1), mode: mode.rawValue))
            ops.append(PyOp(type: "gauge", name: name, help: "Gauge \(mode.rawValue).", labelnames: ["k"], labels: ["never"], op: "create", mode: mode.rawValue))
        }
        ops.append(PyOp(type: "gauge", name: "withpid", help: "User pid label.", labelnames: ["pid"], labels: ["user\(pid)"], op: "set", amount: seed, mode: "all"))
        ops.append(PyOp(type: "gauge", name: "withpid_sum", help: "User pid label.", labelnames: ["pid"], labels: ["user\(pid)"], op: "set", amount: seed, mode: "livesum"))
        ops.append(PyOp(type: "gauge", name: "low", help: "Min of 5 and never set.", op: pid == 123 ? "set" : "create", amount: 5, mode: "min"))
        return ops
    }

    @Test func pythonWrittenDirectory() throws {
        let dir = TempDirectory("diff"); defer { dir.remove() }
        try pythonWrite(dir.path, pid: "123", Self.pythonOps(pid: 123, seed: 3))
        try pythonWrite(dir.path, pid: "456", Self.pythonOps(pid: 456, seed: 7))
        // A name used with two types: a counter in 123, a gauge in 4567.
        try pythonWrite(dir.path, pid: "123", [PyOp(type: "counter", name: "dup", help: "as counter", op: "inc", amount: 2)])
        try pythonWrite(dir.path, pid: "4567", [PyOp(type: "gauge", name: "dup", help: "as gauge", op: "set", amount: 5, mode: "all")])
        let ours = flatten(testCollector(dir.path).collect().families)
        let theirs = try pythonCollect(dir.path)
        #expect(ours == theirs, "\(Set(ours).symmetricDifference(Set(theirs)).sorted { $0.description < $1.description })")
        #expect(ours.count > 60)
    }

    /// The same operations, written by MmapStore's ProcessStore.
    static func writeSwift(_ dir: String, pid: String, seed: Double, keepOpen: inout [FakeProcess]) throws {
        let p = try FakeProcess(dir, pid: pid)
        keepOpen.append(p)
        let pidNumber = Int(pid) ?? 0
        try p.counter("requests", help: "Requests.", labels: [Label("code", "200"), Label("method", "GET")]).add(seed)
        try p.counter("requests", help: "Requests.", labels: [Label("code", "500"), Label("method", "POST")]).add(0.5)
        try p.counter("escaped", help: "help \u{fc}\n\\", labels: [Label("a", tricky), Label("\u{e9}", "x")]).add(1)
        _ = try p.counter("untouched", help: "never incremented")
        let s = try p.summary("latency", help: "Latency.", labels: [Label("path", "/")])
        s.count.add(1); s.sum.add(seed * 0.1)
        try p.histogram("size", help: "Sizes.", labels: [Label("kind", "a")]).observe(seed)
        try p.histogram("size", help: "Sizes.", labels: [Label("kind", "b")]).observe(100)
        try p.histogram("big", help: "Custom buckets.", bounds: [0.5, 1e6, 5e6, 1e7, .infinity],
                        leLabels: ["0.5", "1e+06", "5e+06", "1e+07", "+Inf"]).observe(2e6 * seed)
        for (i, mode) in GaugeMode.allCases.enumerated() {
            let name = "g_\(mode.rawValue)"
            let g = try p.gauge(name, mode: mode, help: "Gauge \(mode.rawValue).", labels: [Label("k", "set")])
            if mode.isMostRecent {
                g.set(seed * Double(pidNumber % 7 + 1), timestamp: 1_700_000_000 + seed + Double(i))
            } else {
                g.set(seed * Double(pidNumber % 7 + 1))
            }
            _ = try p.gauge(name, mode: mode, help: "Gauge \(mode.rawValue).", labels: [Label("k", "never")])
        }
        try p.gauge("withpid", mode: .all, help: "User pid label.", labels: [Label("pid", "user\(pid)")]).set(seed)
        try p.gauge("withpid_sum", mode: .livesum, help: "User pid label.", labels: [Label("pid", "user\(pid)")]).set(seed)
        let low = try p.gauge("low", mode: .min, help: "Min of 5 and never set.")
        if pid == "123" { low.set(5) }
    }

    @Test func swiftWrittenDirectory() throws {
        let dir = TempDirectory("diff"); defer { dir.remove() }
        var open: [FakeProcess] = []
        defer { open.forEach { $0.close() } }
        try Self.writeSwift(dir.path, pid: "123", seed: 3, keepOpen: &open)
        try Self.writeSwift(dir.path, pid: "456", seed: 7, keepOpen: &open)
        let dupCounter = try FakeProcess(dir.path, pid: "123"), dupGauge = try FakeProcess(dir.path, pid: "4567")
        open += [dupCounter, dupGauge]
        try dupCounter.counter("dup", help: "as counter").add(2)
        try dupGauge.gauge("dup", mode: .all, help: "as gauge").set(5)
        let ours = flatten(testCollector(dir.path).collect().families)
        let theirs = try pythonCollect(dir.path)
        #expect(ours == theirs, "\(Set(ours).symmetricDifference(Set(theirs)).sorted { $0.description < $1.description })")
    }

    @Test func mixedPythonAndSwiftWriters() throws {
        let dir = TempDirectory("diff"); defer { dir.remove() }
        var open: [FakeProcess] = []
        defer { open.forEach { $0.close() } }
        try pythonWrite(dir.path, pid: "123", Self.pythonOps(pid: 123, seed: 3))
        try Self.writeSwift(dir.path, pid: "456", seed: 7, keepOpen: &open)
        let result = testCollector(dir.path).collect()
        let ours = flatten(result.families)
        let theirs = try pythonCollect(dir.path)
        #expect(ours == theirs, "\(Set(ours).symmetricDifference(Set(theirs)).sorted { $0.description < $1.description })")
        // Escaped keys written by both sides are one series.
        #expect(result.families.value("escaped_total", ["a": Self.tricky, "\u{e9}": "x"]) == 2)
    }

    @Test func mergeWithoutAccumulateEqualsPythons() throws {
        let dir = TempDirectory("diff"); defer { dir.remove() }
        try pythonWrite(dir.path, pid: "0", [PyOp(type: "histogram", name: "h", labelnames: ["a"], labels: ["x"], op: "observe", amount: 1)])
        try pythonWrite(dir.path, pid: "1", [PyOp(type: "histogram", name: "h", labelnames: ["a"], labels: ["x"], op: "observe", amount: 5)])
        let files = try MultiProcessCollector.listMetricFiles(in: dir.path).get()
        let ours = flatten(MultiProcessCollector.merge(files: files, accumulate: false).families)
        #expect(ours == (try pythonCollect(dir.path, accumulate: false)))
        #expect(!ours.contains { $0.name == "h_count" })
    }
}
