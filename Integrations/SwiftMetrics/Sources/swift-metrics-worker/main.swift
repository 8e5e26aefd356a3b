// A worker process for the multiprocess tests: it bootstraps swift-metrics with the backend
// (multiprocess mode from PROMETHEUS_MULTIPROC_DIR, as a real worker) and writes known values.
// The tests spawn it as a real child process; they never fork() inside the test runner.
//
//   swift-metrics-worker write ITERATIONS THREADS   write, print "ready", wait for stdin's end
//   swift-metrics-worker clash                      one name as a Counter and a Meter: must stop
//   swift-metrics-worker bad-buckets                unsorted Timer buckets: must stop at bootstrap
//
// The work runs in WorkerModes.swift: closures written in this file would be inferred
// @MainActor, and trap when they run on other threads.
import Foundation

let arguments = CommandLine.arguments
switch arguments.count > 1 ? arguments[1] : "" {
case "write" where arguments.count == 4:
    guard let iterations = Int(arguments[2]), let threads = Int(arguments[3]) else { WorkerModes.usage() }
    WorkerModes.write(iterations: iterations, threads: threads)
case "clash":
    WorkerModes.clash()
case "bad-buckets":
    WorkerModes.badBuckets()
default:
    WorkerModes.usage()
}
