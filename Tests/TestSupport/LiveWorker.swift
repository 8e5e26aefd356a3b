import Foundation

/// A live worker: `prom-multiproc-testworker hold DIR pid`, a real child process that claims
/// its counter file under its own pid, holds the file's lock, and sleeps until killed.
public final class LiveWorker {
    /// The child process.
    public let process: Process
    /// The paths of the files it holds, as it printed them.
    public let paths: [String]

    /// Starts a worker writing into `directory` and waits until its file exists and is locked.
    public init(directory: String) throws {
        let out = Pipe()
        process = try launch(executable("prom-multiproc-testworker"), ["hold", directory, "pid"], stdout: out)
        var seen = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !seen.contains("\n") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        guard let line = seen.split(separator: "\n").first, line.hasPrefix("ready ") else {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw ClientError(description: "the worker did not get ready: \(seen)")
        }
        paths = line.dropFirst("ready ".count).split(separator: " ").map(String.init)
    }

    /// The worker's pid.
    public var pid: Int32 { process.processIdentifier }

    /// SIGKILLs the worker and reaps it, so its locks are released when this returns.
    public func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { kill() }
    }
}
