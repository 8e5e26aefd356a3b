// Helpers shared by the test targets: temporary directories, the package's own executables,
// child processes, and the external tools the test script installs.
import Foundation

/// A fresh, empty temporary directory for one test; removed by `remove()`.
public struct TempDirectory: Sendable {
    /// The directory's path.
    public let path: String

    /// Creates a directory under `$TMPDIR` (or `/tmp`) whose name starts with `prefix`.
    public init(_ prefix: String = "pmp") {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed under \(base)")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// `path/name`.
    public func file(_ name: String) -> String { path + "/" + name }

    /// The names in the directory, sorted.
    public func names() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    /// Deletes the directory and everything in it.
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// What a finished child process did.
public struct ProcessResult: Sendable {
    /// The exit code, or 128 + signal when it was killed.
    public var status: Int32
    /// Whether it was ended by a signal.
    public var signaled: Bool
    /// Its standard output.
    public var stdout: String
    /// Its standard error.
    public var stderr: String
}

/// The directory holding the package's built executables (next to the test bundle).
public func buildProductsDirectory() -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = (exe as NSString).deletingLastPathComponent
    // On Linux the test binary is `<products>/<Package>PackageTests.xctest`.
    if dir.hasSuffix(".xctest") { dir = (dir as NSString).deletingLastPathComponent }
    return dir
}

/// The path of one of the package's executables, such as `prom-multiproc-cli`.
public func executable(_ name: String) -> String { buildProductsDirectory() + "/" + name }

/// The environment for children: crash reports off, so a crashing child cannot hang the run.
public func childEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    env["SWIFT_BACKTRACE"] = "enable=no"
    env.removeValue(forKey: "PROMETHEUS_MULTIPROC_DIR")
    env.removeValue(forKey: "prometheus_multiproc_dir")
    for (k, v) in extra { env[k] = v }
    return env
}

/// Starts a child process; the caller waits or kills it.
public func launch(_ path: String, _ arguments: [String], environment: [String: String] = [:],
                   stdout: Pipe? = nil, stderr: Pipe? = nil) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    p.environment = childEnvironment(environment)
    p.standardInput = FileHandle.nullDevice
    p.standardOutput = stdout ?? FileHandle.nullDevice
    p.standardError = stderr ?? FileHandle.nullDevice
    try p.run()
    return p
}

/// Runs a child process to completion and captures its output.
///
/// Output is drained while the child runs, so a chatty child cannot fill the pipe and block.
public func run(_ path: String, _ arguments: [String], environment: [String: String] = [:],
                input: String? = nil, timeout: Double = 600) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    p.environment = childEnvironment(environment)
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inPipe = Pipe()
    p.standardInput = input == nil ? FileHandle.nullDevice : inPipe
    final class Box: @unchecked Sendable { var data = Data(); let lock = NSLock() }
    let outBox = Box(), errBox = Box()
    let group = DispatchGroup()
    for (pipe, box) in [(out, outBox), (err, errBox)] {
        group.enter()
        DispatchQueue.global().async {
            let d = pipe.fileHandleForReading.readDataToEndOfFile()
            box.lock.lock(); box.data = d; box.lock.unlock()
            group.leave()
        }
    }
    try p.run()
    if let input {
        inPipe.fileHandleForWriting.write(input.data(using: .utf8)!)
        try? inPipe.fileHandleForWriting.close()
    }
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(5_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    group.wait()
    let signaled = p.terminationReason == .uncaughtSignal
    return ProcessResult(status: signaled ? 128 + p.terminationStatus : p.terminationStatus, signaled: signaled,
                         stdout: String(decoding: outBox.data, as: UTF8.self),
                         stderr: String(decoding: errBox.data, as: UTF8.self))
}

/// An external tool the test script provides, or a loud failure explaining how to get it.
///
/// Tests never skip silently when a tool is missing: `scripts/test.sh` installs everything and
/// exports these variables.
public enum ExternalTool: String, Sendable {
    /// A Python interpreter with prometheus_client 0.26.0 (`PROM_MULTIPROC_PYTHON`).
    case python = "PROM_MULTIPROC_PYTHON"
    /// `promtool` (`PROM_MULTIPROC_PROMTOOL`).
    case promtool = "PROM_MULTIPROC_PROMTOOL"
    /// A directory on a tiny tmpfs (about 1 MiB) for the full-disk test (`PROM_MULTIPROC_TINY_TMPFS`).
    case tinyTmpfs = "PROM_MULTIPROC_TINY_TMPFS"
    /// The Prometheus server, Debian's package (`PROM_MULTIPROC_PROMETHEUS`).
    case prometheus = "PROM_MULTIPROC_PROMETHEUS"
    /// The Prometheus Pushgateway, Debian's package `prometheus-pushgateway` (`PROM_MULTIPROC_PUSHGATEWAY`).
    case pushgateway = "PROM_MULTIPROC_PUSHGATEWAY"
    /// gunicorn from the interop venv, next to prometheus_client (`PROM_MULTIPROC_GUNICORN`).
    case gunicorn = "PROM_MULTIPROC_GUNICORN"
    /// The `wrk` HTTP load generator (`PROM_MULTIPROC_WRK`).
    case wrk = "PROM_MULTIPROC_WRK"
    /// `protoc`, the protobuf compiler, which decodes our protobuf exposition (`PROM_MULTIPROC_PROTOC`).
    case protoc = "PROM_MULTIPROC_PROTOC"
    /// The directory holding `io/prometheus/client/metrics.proto` as Debian's
    /// golang-github-prometheus-client-model-dev ships it (`PROM_MULTIPROC_CLIENT_MODEL`).
    case clientModel = "PROM_MULTIPROC_CLIENT_MODEL"
    /// `prom-multiproc-cli` as shipped to machines without Swift: the statically linked release
    /// build of scripts/release.sh, checked by scripts/check-release.sh
    /// (`PROM_MULTIPROC_RELEASE_CLI`). See ``releaseCLI()``.
    case releaseCLI = "PROM_MULTIPROC_RELEASE_CLI"

    /// The tool's path.
    /// - Throws: `MissingTool` when the variable is unset or the path does not exist.
    public func path() throws -> String {
        guard let p = ProcessInfo.processInfo.environment[rawValue], !p.isEmpty,
              FileManager.default.fileExists(atPath: p) else {
            throw MissingTool(variable: rawValue)
        }
        return p
    }
}

/// A required tool is missing: the test fails and says how to run the suite properly.
public struct MissingTool: Error, CustomStringConvertible {
    /// The environment variable that names the tool.
    public var variable: String
    /// The message.
    public var description: String {
        "\(variable) is not set or does not exist: run the suite with scripts/test.sh, which installs or builds it and exports it"
    }
}

/// Whether the tests run in CI (`CI=true` or `CI=1`, as `pmp_in_ci` in scripts/lib.sh).
public var runningInCI: Bool {
    ["true", "1"].contains(ProcessInfo.processInfo.environment["CI"] ?? "")
}

/// The statically linked release CLI (``ExternalTool/releaseCLI``), for the tests of a deployment
/// that has no Swift toolchain.
///
/// Outside CI, when scripts/test.sh did not provide it (a plain `swift test`), this falls back to
/// the debug-built `prom-multiproc-cli` and prints a warning: the test still checks the
/// deployment, but not the binary that ships.
/// - Returns: The path of the executable to run.
/// - Throws: `MissingTool` under CI when `PROM_MULTIPROC_RELEASE_CLI` is unset or missing.
public func releaseCLI() throws -> String {
    do {
        return try ExternalTool.releaseCLI.path()
    } catch let missing as MissingTool where !runningInCI {
        let fallback = executable("prom-multiproc-cli")
        FileHandle.standardError.write(Data("""
            WARNING: \(missing)
            WARNING: using the debug-built \(fallback) instead, which needs the Swift runtime (not allowed under CI)

            """.utf8))
        return fallback
    }
}

/// The repository root (where Package.swift is), found from this source file's location.
public func repositoryRoot(_ file: String = #filePath) -> String {
    var url = URL(fileURLWithPath: file)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
    }
    return FileManager.default.currentDirectoryPath
}

/// Runs one of the repository's Python scripts (`scripts/python/NAME`) with the interop venv.
public func runPython(_ script: String, _ arguments: [String], input: String? = nil) throws -> ProcessResult {
    let python = try ExternalTool.python.path()
    return try run(python, [repositoryRoot() + "/scripts/python/" + script] + arguments, input: input)
}

/// A child process driven line by line: its standard input is a pipe, and its standard output
/// is read one line at a time, with a time limit.
public final class LineChild: @unchecked Sendable {
    /// The running process.
    public let process: Process
    private let input = Pipe()
    private let output = Pipe()
    private var pending = Data()

    /// Starts `path` with `arguments` (crash reports off, as every test child).
    public init(_ path: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = childEnvironment(environment)
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// The child's pid.
    public var pid: Int32 { process.processIdentifier }

    /// The next line the child prints (without its newline), or nil at the end of its output or
    /// after `timeout` seconds.
    public func readLine(timeout: Double = 30) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        let fd = output.fileHandleForReading.fileDescriptor
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending = Data(pending[pending.index(after: newline)...])
                return line
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(min(left, 1) * 1000)) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress!, $0.count) }
            guard n > 0 else { return nil }
            pending.append(contentsOf: buffer[0..<n])
        }
    }

    /// Sends `line` and a newline to the child.
    public func send(_ line: String) {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// Closes the child's standard input and waits for it to exit (SIGKILL after `timeout`).
    @discardableResult
    public func finish(timeout: Double = 30) -> Int32 {
        try? input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Starts one of `scripts/python/`'s scripts under the interop Python.
    public static func python(_ script: String, _ arguments: [String]) throws -> LineChild {
        try LineChild(try ExternalTool.python.path(), [repositoryRoot() + "/scripts/python/" + script] + arguments)
    }
}

/// A test-worker run that failed, or whose report could not be read.
public struct TestWorkerFailure: Error, CustomStringConvertible {
    /// What went wrong, with the worker's output.
    public var description: String
}

/// The values an observing test-worker mode (`native-observe`, `summary-observe`, ...) reports
/// as `{"values": [...]}` on standard output, once it exited with 0.
/// - Throws: ``TestWorkerFailure`` naming `mode` when it failed or printed no such report.
public func observedValues(mode: String, status: Int32, stdout: String, stderr: String) throws -> [Double] {
    guard status == 0 else { throw TestWorkerFailure(description: "\(mode) failed (\(status)): \(stderr)") }
    guard let report = try? JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any],
          let values = report["values"] as? [NSNumber] else {
        throw TestWorkerFailure(description: "\(mode) printed no values: \(stdout)")
    }
    return values.map(\.doubleValue)
}

extension ProcessResult {
    /// ``observedValues(mode:status:stdout:stderr:)`` of this run.
    public func observedValues(mode: String) throws -> [Double] {
        try TestSupport.observedValues(mode: mode, status: status, stdout: stdout, stderr: stderr)
    }
}
