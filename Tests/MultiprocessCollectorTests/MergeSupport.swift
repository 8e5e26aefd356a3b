// Helpers for the merge and collector tests: Swift-side writers playing given pids,
// Python-side writers (prometheus_client 0.26.0), and prometheus_client's collector output.
import SystemCalls
import Foundation
import MmapStore
import MultiprocessCollector
import PromMetrics
import Synchronization
import Testing
import TestSupport

/// Python's default histogram buckets, as `floatToGoString` renders them (hand-written facts).
let defaultBucketLabels = ["0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0", "7.5", "10.0", "+Inf"]
let defaultBucketBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, .infinity]

/// One process's metric files, written with MmapStore's `ProcessStore` under a fixed pid.
final class FakeProcess {
    let store: ProcessStore

    init(_ directory: String, pid: String) throws {
        store = try ProcessStore(directory: directory, identity: .fixed(pid))
    }

    func counter(_ family: String, help: String = "help", labels: [Label] = []) throws -> SeriesHandle {
        try store.series(kind: .counter, key: SeriesKey(family: family, sample: family + "_total", labels: labels, help: help))
    }

    func gauge(_ family: String, mode: GaugeMode, help: String = "help", labels: [Label] = []) throws -> SeriesHandle {
        try store.series(kind: .gauge(mode), key: SeriesKey(family: family, sample: family, labels: labels, help: help))
    }

    func summary(_ family: String, help: String = "help", labels: [Label] = []) throws -> (count: SeriesHandle, sum: SeriesHandle) {
        let count = try store.series(kind: .summary, key: SeriesKey(family: family, sample: family + "_count", labels: labels, help: help))
        let sum = try store.series(kind: .summary, key: SeriesKey(family: family, sample: family + "_sum", labels: labels, help: help))
        return (count, sum)
    }

    /// A histogram child as prometheus_client lays it out: `_sum` first, then one
    /// non-cumulative `_bucket` entry per bound.
    func histogram(_ family: String, help: String = "help", labels: [Label] = [],
                   bounds: [Double] = defaultBucketBounds, leLabels: [String] = defaultBucketLabels) throws -> FakeHistogram {
        let sum = try store.series(kind: .histogram, key: SeriesKey(family: family, sample: family + "_sum", labels: labels, help: help))
        var buckets: [(Double, SeriesHandle)] = []
        for (bound, le) in zip(bounds, leLabels) {
            let h = try store.series(kind: .histogram, key: SeriesKey(
                family: family, sample: family + "_bucket", labels: labels + [Label("le", le)], help: help))
            buckets.append((bound, h))
        }
        return FakeHistogram(sum: sum, buckets: buckets)
    }

    func close() { store.close() }
}

/// A histogram child in a fake process's file.
struct FakeHistogram {
    var sum: SeriesHandle
    var buckets: [(Double, SeriesHandle)]

    func observe(_ v: Double) {
        sum.add(v)
        if let b = buckets.first(where: { v <= $0.0 }) { b.1.add(1) }
    }
}

// MARK: reading results

extension CollectResult {
    func family(_ name: String) -> MetricFamilySnapshot? { families.first { $0.name == name } }
}

extension MetricFamilySnapshot {
    /// The value of the sample `name` with exactly `labels`, or nil.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && labelDictionary($0.labels) == labels }?.value
    }
}

extension Array where Element == MetricFamilySnapshot {
    /// The value of sample `name` with exactly `labels`, in whichever family holds it.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        for f in self { if let v = f.value(name, labels) { return v } }
        return nil
    }

    var withoutSelfMetrics: [MetricFamilySnapshot] { filter { !$0.name.hasPrefix("prom_multiproc_collector_") } }
}

func labelDictionary(_ labels: [Label]) -> [String: String] {
    var d: [String: String] = [:]
    for l in labels { d[l.name] = l.value }
    return d
}

/// A sample in a form both sides can produce: family, type, help, name, labels, value text.
struct FlatSample: Hashable, CustomStringConvertible {
    var family: String
    var type: String
    var help: String
    var name: String
    var labels: [String: String]
    var value: String

    var description: String {
        let l = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",")
        return "\(family)(\(type)) \(name){\(l)} \(value)"
    }
}

func valueText(_ v: Double) -> String {
    if v.isNaN { return "NaN" }
    if v == .infinity { return "+Inf" }
    if v == -.infinity { return "-Inf" }
    return "\(v)"
}

/// Our families as a sorted list of flat samples; families without samples appear as one
/// entry with an empty sample name, as they do in Python's output.
func flatten(_ families: [MetricFamilySnapshot]) -> [FlatSample] {
    var out: [FlatSample] = []
    for f in families {
        if f.samples.isEmpty { out.append(FlatSample(family: f.name, type: f.kind.rawValue, help: f.help, name: "", labels: [:], value: "")) }
        for s in f.samples {
            out.append(FlatSample(family: f.name, type: f.kind.rawValue, help: f.help, name: s.name,
                                  labels: labelDictionary(s.labels), value: valueText(s.value)))
        }
    }
    return out.sorted { $0.description < $1.description }
}

// MARK: prometheus_client

/// prometheus_client's merge of `directory` (scripts/python/collect.py), as flat samples.
func pythonCollect(_ directory: String, accumulate: Bool = true) throws -> [FlatSample] {
    let r = try runPython("collect.py", [directory] + (accumulate ? [] : ["--no-accumulate"]))
    guard r.status == 0 else { throw PythonFailure(message: "collect.py failed: \(r.stderr)") }
    guard let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] else {
        throw PythonFailure(message: "collect.py printed no JSON list: \(r.stdout)")
    }
    var out: [FlatSample] = []
    for f in json {
        let family = f["name"] as? String ?? "", type = f["type"] as? String ?? "", help = f["help"] as? String ?? ""
        let samples = f["samples"] as? [[String: Any]] ?? []
        if samples.isEmpty { out.append(FlatSample(family: family, type: type, help: help, name: "", labels: [:], value: "")) }
        for s in samples {
            let value: String
            if let text = s["value"] as? String { value = text } else { value = valueText((s["value"] as? NSNumber)?.doubleValue ?? .nan) }
            out.append(FlatSample(family: family, type: type, help: help, name: s["name"] as? String ?? "",
                                  labels: s["labels"] as? [String: String] ?? [:], value: value))
        }
    }
    return out.sorted { $0.description < $1.description }
}

struct PythonFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// One operation of the write.py contract (see the common brief).
struct PyOp: Encodable {
    var type: String
    var name: String
    var help: String = "help"
    var labelnames: [String] = []
    var labels: [String] = []
    var op: String = "create"
    var amount: Double = 1
    var mode: String?
    var buckets: [Double]?
}

/// Runs prometheus_client's writer as process `pid` over `directory`, through
/// scripts/python/write.py when the repository has it, else through an inline program
/// implementing the same contract.
func pythonWrite(_ directory: String, pid: String, _ ops: [PyOp]) throws {
    let spec = try JSONEncoder().encode(ops)
    let specPath = NSTemporaryDirectory() + "/pmp-spec-\(pid)-\(UUID().uuidString).json"
    try spec.write(to: URL(fileURLWithPath: specPath))
    defer { try? FileManager.default.removeItem(atPath: specPath) }
    let script = repositoryRoot() + "/scripts/python/write.py"
    let r: ProcessResult
    if FileManager.default.fileExists(atPath: script) {
        r = try runPython("write.py", [directory, pid, specPath])
    } else {
        r = try run(try ExternalTool.python.path(), ["-c", inlineWriter, directory, pid, specPath])
    }
    guard r.status == 0 else { throw PythonFailure(message: "python writer failed: \(r.stderr)") }
}

private let inlineWriter = """
import json, os, sys
directory, pid, spec_path = sys.argv[1:]
os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
from prometheus_client import values, Counter, Gauge, Histogram, Summary
values.ValueClass = values.MultiProcessValue(lambda: pid)
metrics = {}
for op in json.load(open(spec_path, encoding="utf-8")):
    typ, name = op["type"], op["name"]
    labelnames = op.get("labelnames", [])
    key = (typ, name, op.get("mode"))
    m = metrics.get(key)
    if m is None:
        kw = dict(labelnames=labelnames, registry=None)
        doc = op.get("help", "")
        if typ == "counter": m = Counter(name, doc, **kw)
        elif typ == "gauge": m = Gauge(name, doc, multiprocess_mode=op.get("mode", "all"), **kw)
        elif typ == "histogram":
            if op.get("buckets") is not None: kw["buckets"] = [float(b) for b in op["buckets"]]
            m = Histogram(name, doc, **kw)
        elif typ == "summary": m = Summary(name, doc, **kw)
        metrics[key] = m
    child = m.labels(*op.get("labels", [])) if labelnames else m
    action, amount = op.get("op", "create"), op.get("amount", 1)
    if action == "inc": child.inc(amount)
    elif action == "dec": child.dec(amount)
    elif action == "set": child.set(amount)
    elif action == "observe": child.observe(amount)
"""

/// Collects problems reported by a collector.
final class ReportLog: Sendable {
    private let items = Locked<[MetricFileError]>([])
    var all: [MetricFileError] { items.withLock { $0 } }
    /// Keeps the skipped files' errors, the `error` of each problem the collector reports.
    var reporter: ProblemReporter {
        ProblemReporter { problem in
            guard let e = problem.error as? MetricFileError else { return }
            self.items.withLock { $0.append(e) }
        }
    }
}

/// A collector for tests: no self-metrics, problems kept in memory, not on standard error.
func testCollector(_ directory: String, log: ReportLog = ReportLog(), selfMetrics: Bool = false,
                   threads: Int = 1) -> MultiProcessCollector {
    // Read ahead however few entries the files hold, so that small test directories take
    // the path large ones do.
    MultiProcessCollector(directory: directory, includeSelfMetrics: selfMetrics, reporter: log.reporter, maxMergeThreads: threads,
                          readAheadEntries: 0)
}

/// Runs test-worker processes of an observing `mode` at once, each with `mode`, `dir` and its
/// own arguments; returns every value they observed, in worker order.
func observeInWorkers(_ mode: String, _ dir: TempDirectory, _ workers: [[String]]) throws -> [Double] {
    let results = try workers.map { args in
        try launchCapturing(executable("prom-multiproc-testworker"), [mode, dir.path] + args)
    }.map { try $0.finish() }
    return try results.flatMap { try observedValues(mode: mode, status: $0.status, stdout: $0.stdout, stderr: $0.stderr) }
}
