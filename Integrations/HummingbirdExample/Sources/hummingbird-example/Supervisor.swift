import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts N workers, each its own process on its own port (Hummingbird binds one listener per
/// process, without SO_REUSEPORT), all writing into one PROMETHEUS_MULTIPROC_DIR.
///
/// A worker that dies is started again on its port after a second, as a prefork supervisor
/// would; its counters stay in its old files and its `livesum` gauges drop out of the merged
/// output without any hook (the collector sees that the dead owner's file lock is free).
/// SIGTERM or SIGINT stops every worker and then the supervisor; a worker whose supervisor
/// dies otherwise (SIGKILL) stops by itself.
final class Supervisor: @unchecked Sendable {
    private let executable: String
    private let host: String
    private let ports: [Int]
    private let queue = DispatchQueue(label: "supervisor")
    private var workers: [Int: Process] = [:]   // by port; touched on `queue` only
    private var stopping = false
    private var signalSources: [DispatchSourceSignal] = []

    init(executable: String, host: String, firstPort: Int, count: Int) {
        self.executable = executable
        self.host = host
        self.ports = (0..<count).map { firstPort + $0 }
    }

    /// Runs until a signal stops the workers; returns the exit status.
    func run() -> Int32 {
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler { [self] in stop() }
            source.resume()
            signalSources.append(source)
        }
        queue.sync { for port in ports { start(port: port) } }
        let done = DispatchSemaphore(value: 0)
        queue.async { [self] in waitForAll(done) }
        done.wait()
        return 0
    }

    private func start(port: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["worker", "--host", host, "--port", String(port), "--supervisor-pid", String(getpid())]
        process.terminationHandler = { [self] ended in
            queue.async { [self] in
                log("worker pid \(ended.processIdentifier) on port \(port) exited (status \(ended.terminationStatus))")
                workers[port] = nil
                guard !stopping else { return }
                queue.asyncAfter(deadline: .now() + 1) { [self] in
                    if !stopping && workers[port] == nil { start(port: port) }
                }
            }
        }
        do {
            try process.run()
            workers[port] = process
            log("worker pid \(process.processIdentifier) serving http://\(host):\(port)/")
        } catch {
            log("cannot start a worker on port \(port): \(error)")
        }
    }

    private func stop() {
        guard !stopping else { return }
        stopping = true
        log("stopping \(workers.count) worker(s)")
        for process in workers.values where process.isRunning { kill(process.processIdentifier, SIGTERM) }
    }

    private func waitForAll(_ done: DispatchSemaphore) {
        if stopping && workers.isEmpty {
            done.signal()
            return
        }
        queue.asyncAfter(deadline: .now() + 0.1) { [self] in waitForAll(done) }
    }

    private func log(_ message: String) {
        FileHandle.standardError.write(Data("[supervisor] \(message)\n".utf8))
    }
}
