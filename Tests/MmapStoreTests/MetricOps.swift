import Foundation
import MmapStore
import Testing
import TestSupport

/// One operation on a metric, performed the same way by prometheus_client (through
/// scripts/python/write.py) and by a `ProcessStore` (through `apply`), so that the files can
/// be compared.
///
/// The Swift side re-states by hand what prometheus_client does (python-format.md §1–§3):
/// which series a metric creates, in which order, and what each operation adds.
struct MetricOp {
    enum Kind {
        case counter
        case gauge(GaugeMode)
        /// Upper bounds with their `le` text as Python's floatToGoString renders them,
        /// `+Inf` included.
        case histogram([(bound: Double, le: String)])
        case summary
    }

    var kind: Kind
    var name: String
    var help: String = "h"
    var labelNames: [String] = []
    var labels: [String] = []
    /// create, inc, dec, set, observe.
    var op: String = "create"
    var amount: Double = 1

    /// The object write.py reads.
    var pythonSpec: [String: Any] {
        var d: [String: Any] = ["name": name, "help": help, "labelnames": labelNames, "labels": labels,
                                "op": op, "amount": amount]
        switch kind {
        case .counter: d["type"] = "counter"
        case .gauge(let mode): d["type"] = "gauge"; d["mode"] = mode.rawValue
        case .histogram(let buckets):
            d["type"] = "histogram"
            d["buckets"] = buckets.map(\.bound).filter { $0.isFinite }
        case .summary: d["type"] = "summary"
        }
        return d
    }

    var fileKind: FileKind {
        switch kind {
        case .counter: return .counter
        case .gauge(let mode): return .gauge(mode)
        case .histogram: return .histogram
        case .summary: return .summary
        }
    }

    /// The series of this metric's child, in the order prometheus_client creates them.
    var seriesKeys: [SeriesKey] {
        let l = zip(labelNames, labels).map { Label($0, $1) }
        func key(_ sample: String, _ labels: [Label]) -> SeriesKey {
            SeriesKey(family: name, sample: sample, labels: labels, help: help)
        }
        switch kind {
        case .counter: return [key(name + "_total", l)]
        case .gauge: return [key(name, l)]
        case .summary: return [key(name + "_count", l), key(name + "_sum", l)]
        case .histogram(let buckets):
            return [key(name + "_sum", l)] + buckets.map { key(name + "_bucket", l + [Label("le", $0.le)]) }
        }
    }
}

/// Performs `ops` on `store` as prometheus_client would, then closes the store.
func apply(_ ops: [MetricOp], to store: ProcessStore) throws {
    for op in ops {
        let handles = try op.seriesKeys.map { try store.series(kind: op.fileKind, key: $0) }
        switch (op.kind, op.op) {
        case (_, "create"): break
        case (.counter, "inc"), (.gauge, "inc"): handles[0].add(op.amount)
        case (.gauge, "dec"): handles[0].add(-op.amount)
        case (.gauge, "set"): handles[0].set(op.amount)
        case (.summary, "observe"):
            handles[0].add(1)
            handles[1].add(op.amount)
        case (.histogram(let buckets), "observe"):
            handles[0].add(op.amount)
            if let i = buckets.firstIndex(where: { op.amount <= $0.bound }) { handles[1 + i].add(1) }
        default: Issue.record("unsupported op \(op.op)")
        }
    }
}

/// Python (write.py as `pid`) and Swift (`ProcessStore` as `.fixed(pid)`) perform `ops` in two
/// fresh directories.
func writeBoth(_ ops: [MetricOp], pid: String, python: TempDirectory, swift: TempDirectory) throws {
    try pythonWrite(python.path, pid: pid, ops.map(\.pythonSpec))
    let store = try ProcessStore(directory: swift.path, identity: .fixed(pid))
    try apply(ops, to: store)
    store.close()
}
