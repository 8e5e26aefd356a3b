// The test worker: a real child process for the multiprocess tests and benchmarks.
//
//     prom-multiproc-testworker <mode> [arguments...]
//
// Each area keeps its modes in its own file (StoreModes.swift, ...) as a `[String: WorkerMode]`
// table; this file only dispatches on argv[1]. To add an area, add its table to `tables`.
import Foundation

/// One mode of the worker.
struct WorkerMode: Sendable {
    /// `mode ARG...`, for the usage text.
    let usage: String
    /// Runs the mode with the arguments after the mode name; returns the exit status.
    let run: @Sendable ([String]) throws -> Int32
}

/// An invalid command line for a mode.
struct UsageError: Error, CustomStringConvertible {
    let description: String
}

let tables: [[String: WorkerMode]] = [storeModes, metricsModes, maintenanceModes, nativeModes, quantileModes, exemplarModes]
let modes = tables.reduce(into: [String: WorkerMode]()) { all, table in all.merge(table) { first, _ in first } }

let arguments = CommandLine.arguments
guard arguments.count >= 2, let mode = modes[arguments[1]] else {
    let usage = modes.values.map { "  prom-multiproc-testworker " + $0.usage }.sorted().joined(separator: "\n")
    FileHandle.standardError.write(Data("usage:\n\(usage)\n".utf8))
    exit(64)
}
do {
    let status = try mode.run(Array(arguments.dropFirst(2)))
    fflush(nil)
    exit(status)
} catch {
    fflush(nil)
    FileHandle.standardError.write(Data("\(arguments[1]): \(error)\n".utf8))
    exit(1)
}
