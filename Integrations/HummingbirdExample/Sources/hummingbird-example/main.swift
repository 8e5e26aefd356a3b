// A Hummingbird app whose MetricsMiddleware writes through PrometheusMultiprocessMetricsFactory,
// run as N worker processes sharing one PROMETHEUS_MULTIPROC_DIR (see README.md):
//
//   hummingbird-example worker [--host 127.0.0.1] [--port 8080]             one worker
//   hummingbird-example supervise [--host 127.0.0.1] [--port 8080] [--workers 3]
//                                       workers on ports 8080, 8081, ... restarted when they die
//
// Every worker serves the merged metrics of all of them at /metrics; `prom-multiproc-cli serve`
// (the core package) serves the same as one endpoint that does not depend on any worker.
import Foundation

func usage() -> Never {
    FileHandle.standardError.write(Data("""
        usage: hummingbird-example worker [--host HOST] [--port PORT]
               hummingbird-example supervise [--host HOST] [--port FIRST_PORT] [--workers N]
        supervise needs PROMETHEUS_MULTIPROC_DIR, naming an existing directory; a worker
        without it keeps its metrics in memory (a single-process deployment).

        """.utf8))
    exit(2)
}

// Start from an empty signal mask, whatever the launcher's was. A process inherits the mask
// of the thread that started it, and libdispatch's threads block SIGTERM and SIGINT: started
// from one (as Foundation's Process does from a queue), a worker would keep SIGTERM pending
// forever and never stop gracefully. Threads made from here on inherit this mask.
var noSignals = sigset_t()
sigemptyset(&noSignals)
pthread_sigmask(SIG_SETMASK, &noSignals, nil)

let arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first, command == "worker" || command == "supervise" else { usage() }
var host = "127.0.0.1"
var port = 8080
var workerCount = 3
var supervisor: pid_t? = nil
var rest = arguments.dropFirst()
while let option = rest.popFirst() {
    guard let value = rest.popFirst() else { usage() }
    switch option {
    case "--host": host = value
    case "--port": guard let p = Int(value), (1...65535).contains(p) else { usage() }; port = p
    case "--workers" where command == "supervise": guard let n = Int(value), n >= 1 else { usage() }; workerCount = n
    // Given by `supervise` to its workers: stop when that process is no longer the parent.
    case "--supervisor-pid" where command == "worker": guard let p = pid_t(value), p > 1 else { usage() }; supervisor = p
    default: usage()
    }
}
let directory = ProcessInfo.processInfo.environment["PROMETHEUS_MULTIPROC_DIR"] ?? ""
if command == "supervise" && directory.isEmpty {
    FileHandle.standardError.write(Data("hummingbird-example: PROMETHEUS_MULTIPROC_DIR is not set\n".utf8))
    usage()
}

if command == "worker" {
    try await App.runWorker(host: host, port: port, supervisor: supervisor)
} else {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    exit(Supervisor(executable: executable, host: host, firstPort: port, count: workerCount).run())
}
