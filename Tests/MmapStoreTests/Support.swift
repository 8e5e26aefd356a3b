import Foundation
import MmapStore
import Testing
import TestSupport

extension Tag {
    /// Slow tests (seconds): exactness, crash safety, growth under a reader.
    @Tag static var expensive: Tag
}

/// The test worker's path.
let worker = executable("prom-multiproc-testworker")

/// The whole file's bytes.
func readBytes(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Little-endian int32 at `offset`.
func int32(_ bytes: [UInt8], at offset: Int) -> Int32 {
    Int32(bitPattern: UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24)
}

/// The `*.db` names in a directory, sorted.
func dbNames(_ dir: TempDirectory) -> [String] { dir.names().filter { $0.hasSuffix(".db") } }

/// `[key text: value]` of a file, via MetricFileReader.decodeAll; keys re-encoded the Python way.
func decodedValues(_ path: String) throws -> [String: Double] {
    var out: [String: Double] = [:]
    for e in try MetricFileReader.decodeAll(path: path).entries { out[e.key.description] = e.value }
    return out
}

/// Runs `python scripts/python/<script>` and decodes its JSON standard output.
func pythonJSON(_ script: String, _ arguments: [String], input: String? = nil) throws -> Any {
    let r = try runPython(script, arguments, input: input)
    guard r.status == 0 else { throw PythonFailed(script: script, result: r) }
    return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8), options: [.fragmentsAllowed])
}

struct PythonFailed: Error, CustomStringConvertible {
    var script: String
    var result: ProcessResult
    var description: String { "\(script) exited \(result.status): \(result.stderr)" }
}

/// Runs write.py (prometheus_client 0.26.0 as process `pid`) with `spec`.
func pythonWrite(_ dir: String, pid: String, _ spec: [[String: Any]]) throws {
    let data = try JSONSerialization.data(withJSONObject: spec)
    let specPath = dir + "/../" + URL(fileURLWithPath: dir).lastPathComponent + "-spec.json"
    try data.write(to: URL(fileURLWithPath: specPath))
    defer { try? FileManager.default.removeItem(atPath: specPath) }
    let r = try runPython("write.py", [dir, pid, specPath])
    guard r.status == 0 else { throw PythonFailed(script: "write.py", result: r) }
}

/// What prometheus_client's own reader finds in each file: `[file name: [(key, value, ts)]]`.
func pythonEntries(_ paths: [String]) throws -> [String: [(key: String, value: Double, timestamp: Double)]] {
    let json = try pythonJSON("mmap_read.py", paths) as? [String: [[Any]]] ?? [:]
    return json.mapValues { rows in
        rows.map { row in
            // Exact values from their bit patterns; the JSON floats are only approximate here.
            func exact(_ i: Int) -> Double { (row[i] as? String).flatMap { UInt64($0, radix: 16) }.map(Double.init(bitPattern:)) ?? .nan }
            return (row[0] as? String ?? "", exact(3), exact(4))
        }
    }
}

/// A sample as Python's MultiProcessCollector reports it.
struct PySample: Hashable, CustomStringConvertible {
    var family: String
    var type: String
    var name: String
    /// `[name, value]` pairs in code-point order of the names (as Python sorts them).
    var labels: [[String]]
    var value: Double
    var description: String { "\(family)/\(type) \(name)\(labels) = \(value)" }
}

/// Merges `dir` with prometheus_client's MultiProcessCollector.
func pythonCollect(_ dir: String) throws -> [PySample] {
    let rows = try pythonJSON("mmap_collect.py", [dir]) as? [[Any]] ?? []
    return rows.map {
        PySample(family: $0[0] as? String ?? "", type: $0[1] as? String ?? "", name: $0[2] as? String ?? "",
                 labels: $0[3] as? [[String]] ?? [["?"]],
                 value: ($0[5] as? String).flatMap { UInt64($0, radix: 16) }.map(Double.init(bitPattern:)) ?? .nan)
    }
}

/// A running test worker whose standard output is read line by line.
final class WorkerProcess {
    let process: Process
    private let pipe = Pipe()
    private var buffer = Data()

    init(_ arguments: [String]) throws {
        process = try launch(worker, arguments, stdout: pipe)
    }

    var pid: Int32 { process.processIdentifier }

    /// The next line of output, or nil at end of output.
    func readLine() -> String? {
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...nl)
                return line
            }
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            buffer.append(chunk)
        }
    }

    /// SIGKILLs the worker and reaps it.
    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Waits for the worker's exit; returns its status.
    func wait() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }
}
