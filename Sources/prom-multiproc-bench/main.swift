import SystemCalls
import Foundation

// prom-multiproc-bench: the Swift side of scripts/bench.sh. Each subcommand does one kind of
// measurement and prints JSON lines; the driver (scripts/bench/run.py) runs it interleaved with
// the prometheus_client equivalents, takes medians over rounds and prints the table.
//
//   hot [--ops a,b] [--threads 1,2] [--scale S] [--reps R] [--dir DIR]
//   alloc-probe --op OP --n N
//   write-dir --dir DIR --pid PID --series S     (one Swift worker writing its share)
//   collect --dir DIR [--reps R] [--metadata on]  (collect + render; prints time and VmHWM)
//   render --dir DIR [--reps R] [--text-out F]    (merge once; render text and protobuf R times, and gzip each)
//   process-metrics --dir DIR [--reps R]          (what process metrics add to a scrape)

let usage = """
    usage: prom-multiproc-bench <command> [options]
      hot [--ops a,b] [--threads 1,2] [--scale S] [--reps R] [--dir DIR]
      alloc-probe --op OP --n N
      write-dir --dir DIR --pid PID --series S
      collect --dir DIR [--reps R] [--format text|openmetrics|protobuf] [--threads N] [--warm 1] [--metadata on|off] [--names a,b]
              [--render-pairs P]
      render --dir DIR [--reps R] [--text-out FILE]
      process-metrics --dir DIR [--reps R]
    """

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// `--name value` options after the subcommand.
struct Options {
    private var values: [String: String] = [:]

    init(_ arguments: ArraySlice<String>) throws {
        var it = arguments.makeIterator()
        while let a = it.next() {
            guard a.hasPrefix("--") else { throw UsageError("unexpected argument \(a)") }
            guard let v = it.next() else { throw UsageError("\(a) needs a value") }
            values[String(a.dropFirst(2))] = v
        }
    }

    func string(_ name: String) -> String? { values[name] }
    func int(_ name: String) -> Int? { values[name].flatMap { Int($0) } }
    func double(_ name: String) -> Double? { values[name].flatMap { Double($0) } }
    func list(_ name: String) throws -> [String]? { values[name].map { $0.split(separator: ",").map(String.init) } }
    var directory: String? { values["dir"] }
}

/// A JSON value for the result lines.
enum JSONValue {
    case string(String), int(Int), double(Double)

    var rendered: String {
        switch self {
        case .string(let s):
            return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case .int(let i): return String(i)
        case .double(let d): return d.isFinite ? String(d) : "null"
        }
    }
}

func jsonLine(_ fields: KeyValuePairs<String, JSONValue>) -> String {
    "{" + fields.map { "\"\($0.key)\": \($0.value.rendered)" }.joined(separator: ", ") + "}"
}

func removeTree(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// The peak resident set size of this process so far, in KiB (VmHWM from /proc/self/status).
func peakRSSKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
    }
    return -1
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    Sys.writeStandardError(usage + "\n")
    exit(2)
}
do {
    let options = try Options(arguments.dropFirst(2))
    switch arguments[1] {
    case "hot": try hotCommand(options)
    case "alloc-probe": try allocProbeCommand(options)
    case "write-dir": try writeDirectoryCommand(options)
    case "collect": try collectCommand(options)
    case "render": try renderCommand(options)
    case "process-metrics": try processMetricsCommand(options)
    default: throw UsageError("unknown command \(arguments[1])\n" + usage)
    }
} catch {
    Sys.writeStandardError("prom-multiproc-bench: \(error)\n")
    exit(1)
}
