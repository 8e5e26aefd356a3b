import MultiprocessCollector
import MmapStore
import Foundation
import PromMetrics
import TestSupport

/// A registry writing into `dir` as process `pid`.
func multiprocessRegistry(_ dir: TempDirectory, pid: String, clock: MetricClock = .system) throws -> Registry {
    Registry(storage: try .multiprocess(directory: dir.path, identity: .fixed(pid)), clock: clock)
}

/// The merged samples prometheus_client's own MultiProcessCollector reads from `dir`, as
/// `name{a="x",b="y"}` → value (labels sorted by name).
func pythonMerged(_ dir: TempDirectory) throws -> [String: Double] {
    let code = """
    import sys, json
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector
    r = CollectorRegistry()
    MultiProcessCollector(r, path=sys.argv[1])
    for fam in r.collect():
        for s in fam.samples:
            labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
            print(json.dumps([s.name + "{" + labels + "}", s.value]))
    """
    let python = try ExternalTool.python.path()
    let result = try run(python, ["-c", code, dir.path])
    guard result.status == 0 else { throw PythonFailed(message: result.stderr) }
    var out: [String: Double] = [:]
    for line in result.stdout.split(separator: "\n") {
        guard let data = line.data(using: .utf8),
              let pair = try JSONSerialization.jsonObject(with: data) as? [Any],
              let key = pair.first as? String, let value = pair.last as? Double else { continue }
        out[key] = value
    }
    return out
}

struct PythonFailed: Error, CustomStringConvertible {
    var message: String
    var description: String { "prometheus_client failed: \(message)" }
}

/// Every entry of every file in `dir`, as `file: sample{labels} → (value, timestamp)`.
func fileEntries(_ dir: TempDirectory) throws -> [String: [String: (Double, Double)]] {
    var out: [String: [String: (Double, Double)]] = [:]
    for name in dir.names() where name.hasSuffix(".db") {
        let decoded = try MetricFileReader.decodeAll(path: dir.file(name))
        var entries: [String: (Double, Double)] = [:]
        for e in decoded.entries {
            let labels = e.key.labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",")
            entries["\(e.key.sample){\(labels)}"] = (e.value, e.timestamp)
        }
        out[name] = entries
    }
    return out
}

/// A clock whose wall time the test sets.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var now: Double
    init(_ start: Double) { now = start }
    func set(_ t: Double) { lock.lock(); now = t; lock.unlock() }
    var metricClock: MetricClock {
        MetricClock(wallTime: { [self] in lock.lock(); defer { lock.unlock() }; return now },
                    monotonicTime: { [self] in lock.lock(); defer { lock.unlock() }; return now })
    }
}
