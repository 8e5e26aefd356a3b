// Helpers for the end-to-end tests: child processes with a bounded lifetime and a log file,
// a plain HTTP client over a socket, the external tools scripts/setup.sh provides, wrk and
// Prometheus. Written here rather than shared with the core's tests, whose TestSupport is not
// a product of the core package.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Files and executables

/// The directory holding this package's built executables (next to the test bundle).
func productsDirectory() -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = (exe as NSString).deletingLastPathComponent
    if dir.hasSuffix(".xctest") { dir = (dir as NSString).deletingLastPathComponent }
    return dir
}

/// The repository root, found from this file's path
/// (`Integrations/HummingbirdExample/Tests/HummingbirdExampleTests/Support.swift`).
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<5 { url.deleteLastPathComponent() }
    return url.path
}()

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ prefix: String) {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed under \(base)")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// An external tool that scripts/setup.sh installs and names in `PROM_MULTIPROC_*` (written to
/// .build/test-env.sh; scripts/test.sh and scripts/integrations.sh run with it). A missing tool
/// fails the test loudly, in CI and out of it: nothing is skipped.
enum ExternalTool: String {
    case wrk = "PROM_MULTIPROC_WRK"
    case prometheus = "PROM_MULTIPROC_PROMETHEUS"

    func path() throws -> String {
        guard let path = ProcessInfo.processInfo.environment[rawValue], !path.isEmpty,
              FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("""
                \(rawValue) is not set or not executable: run scripts/test.sh or scripts/integrations.sh, \
                or `bash scripts/setup.sh && source .build/test-env.sh` first
                """)
        }
        return path
    }
}

// MARK: - Child processes

/// The environment for children: this process's, with crash reports off (a crashing child
/// must not hang the run) and no multiprocess directory unless given.
func childEnvironment(_ extra: [String: String]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment["SWIFT_BACKTRACE"] = "enable=no"
    environment.removeValue(forKey: "PROMETHEUS_MULTIPROC_DIR")
    environment.removeValue(forKey: "prometheus_multiproc_dir")
    for (key, value) in extra { environment[key] = value }
    return environment
}

/// A child process whose output goes to a log file, started under coreutils' `timeout` so that
/// it ends by itself even if the test process dies first (SIGTERM at `lifetime` seconds,
/// SIGKILL 5 s later). `timeout` passes SIGTERM on to the child and exits with its status.
struct Child {
    let process: Process
    let logPath: String

    static func start(_ path: String, _ arguments: [String], environment: [String: String] = [:],
                      lifetime: Int, log: String) throws -> Child {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: log) else { throw TestFailure("cannot open \(log)") }
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["--kill-after=5", "\(lifetime)s", path] + arguments
        process.environment = childEnvironment(environment)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        try runWithNoSignalsBlocked(process)
        return Child(process: process, logPath: log)
    }

    /// Everything the child wrote so far.
    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The pid of the program itself (the child of `timeout`), once it runs.
    var programPID: pid_t? { childrenOf(process.processIdentifier).first }

    /// SIGTERM, then SIGKILL after `grace` seconds; the exit status (128 + signal when killed).
    /// Safe to call again.
    @discardableResult
    func stop(grace: Double = 10) -> Int32 {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(grace)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        // Bounded: a child that outlives SIGKILL (it cannot) must not hang the test.
        _ = waitUntil(seconds: 10, interval: 0.02) { !process.isRunning }
        guard !process.isRunning else { return -1 }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}

/// Starts `process` with an empty signal mask. A child inherits the mask of the thread that
/// starts it, and the tests run on threads that block SIGTERM and SIGINT: coreutils' `timeout`
/// would then never see the SIGTERM that should make it stop its child.
func runWithNoSignalsBlocked(_ process: Process) throws {
    var none = sigset_t(), previous = sigset_t()
    sigemptyset(&none)
    pthread_sigmask(SIG_SETMASK, &none, &previous)
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    try process.run()
}

/// Runs a command to completion (at most `lifetime` seconds) and returns its exit status and
/// output (standard output and error together).
func runToEnd(_ path: String, _ arguments: [String], lifetime: Int = 60, in directory: TemporaryDirectory) throws
    -> (status: Int32, output: String) {
    let log = directory.file("run-\(UUID().uuidString).log")
    let child = try Child.start(path, arguments, lifetime: lifetime, log: log)
    _ = waitUntil(seconds: Double(lifetime) + 10, interval: 0.02) { !child.process.isRunning }
    let status = child.stop()
    defer { try? FileManager.default.removeItem(atPath: log) }
    return (status, child.log())
}

/// The pids whose parent is `pid`, from /proc.
func childrenOf(_ pid: pid_t) -> [pid_t] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { pid_t($0) }.filter { processStat($0)?.parent == pid }.sorted()
}

/// The state letter and parent pid of a process, from /proc/<pid>/stat; nil when it is gone.
func processStat(_ pid: pid_t) -> (state: Character, parent: pid_t)? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count >= 2, let state = fields[0].first, let parent = pid_t(fields[1]) else { return nil }
    return (state, parent)
}

/// Whether a process has exited (gone, or a zombie nobody reaped yet).
func hasExited(_ pid: pid_t) -> Bool {
    guard let stat = processStat(pid) else { return true }
    return stat.state == "Z" || stat.state == "X"
}

/// Polls `condition` every `interval` seconds until it holds or `seconds` pass.
func waitUntil(seconds: Double, interval: Double = 0.1, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        if condition() { return true }
        if Date() >= deadline { return false }
        usleep(UInt32(interval * 1_000_000))
    }
}

// MARK: - Ports and sockets

/// Whether a server could listen on a TCP port of 127.0.0.1 right now: bound with
/// SO_REUSEADDR, as Hummingbird and serve bind, so that connections the last server on the
/// port closed (TIME_WAIT, for a minute) do not count, and a listener does.
func portIsFree(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var on: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
    var address = loopback(port)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// A port on 127.0.0.1 that was free a moment ago, chosen by the kernel.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
    defer { close(fd) }
    var address = loopback(0)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure("bind: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// `count` consecutive ports on 127.0.0.1 that were free a moment ago, below Linux's ephemeral
/// range (32768 and up), so that no client connection of the test can take one.
func freeConsecutivePorts(_ count: Int) throws -> [Int] {
    for _ in 0..<200 {
        let first = Int.random(in: 20_000...(32_000 - count))
        let ports = Array(first..<(first + count))
        if ports.allSatisfy(portIsFree) { return ports }
    }
    throw TestFailure("no \(count) consecutive free ports between 20000 and 32000")
}

private func loopback(_ port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

/// A TCP connection to 127.0.0.1 with send and receive timeouts, so no test can hang.
final class Connection {
    let fd: Int32

    /// Connects; throws `ConnectionRefused` when nothing listens on the port.
    init(port: Int, timeout: Double) throws {
        // The socket is owned (closed by deinit) only once connected: a class whose
        // initializer throws after setting every property is deinitialized too.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var time = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected != 0 {
            let error = errno
            close(fd)
            if error == ECONNREFUSED { throw ConnectionRefused() }
            throw TestFailure("connect to 127.0.0.1:\(port): errno \(error)")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw TestFailure("send: errno \(errno)")
            }
            bytes = bytes.dropFirst(sent)
        }
    }

    /// The next bytes the peer sends; nil once it closed the connection (or reset it). A
    /// timeout throws.
    func receive() throws -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { return Array(buffer[0..<n]) }
            if n == 0 { return nil }
            if errno == EINTR { continue }
            if errno == ECONNRESET { return nil }
            throw TestFailure("recv: errno \(errno)\(errno == EAGAIN ? " (timed out)" : "")")
        }
    }

    /// Everything the peer sends until it closes or resets the connection.
    func readToEnd() throws -> [UInt8] {
        var bytes: [UInt8] = []
        while let chunk = try receive() { bytes += chunk }
        return bytes
    }
}

struct ConnectionRefused: Error {}

/// A response read to the end of the stream.
struct Response {
    var status: Int
    var headers: [(String, String)]
    var body: String

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// One HTTP/1.0 GET (so no server answers with a chunked body) with `Connection: close`, read
/// to the end of its `Content-Length` body, or of the stream when there is none (Hummingbird
/// answers HTTP/1.0 with HTTP/1.1 and may keep the connection open). Throws
/// `ConnectionRefused` when nothing listens, `TestFailure` for anything else.
func get(port: Int, _ target: String, headers: [String: String] = [:], timeout: Double = 10) throws -> Response {
    let connection = try Connection(port: port, timeout: timeout)
    let extra = headers.map { "\($0.key): \($0.value)\r\n" }.joined()
    try connection.send("GET \(target) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\(extra)\r\n")
    var bytes: [UInt8] = []
    var head: (end: Int, response: Response, length: Int?)? = nil
    while true {
        if head == nil, let end = headEnd(bytes) {
            let text = String(decoding: bytes[..<end], as: UTF8.self)
            var lines = text.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ")
            guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
                throw TestFailure("GET \(target) on port \(port): bad status line in \(text)")
            }
            let fields = lines.compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            let response = Response(status: status, headers: fields, body: "")
            head = (end + 4, response, response.header("Content-Length").flatMap { Int($0) })
        }
        if let head, let length = head.length, bytes.count >= head.end + length {
            var response = head.response
            response.body = String(decoding: bytes[head.end..<(head.end + length)], as: UTF8.self)
            return response
        }
        guard let chunk = try connection.receive() else {
            guard let head, head.length == nil else {
                throw TestFailure("GET \(target) on port \(port): connection closed after \(bytes.count) bytes")
            }
            var response = head.response
            response.body = String(decoding: bytes[head.end...], as: UTF8.self)
            return response
        }
        bytes += chunk
    }
}

/// Where the response head ends (the index of its blank line's CR LF CR LF).
private func headEnd(_ bytes: [UInt8]) -> Int? {
    guard bytes.count >= 4 else { return nil }
    return (0...(bytes.count - 4)).first { bytes[$0] == 13 && bytes[$0 + 1] == 10 && bytes[$0 + 2] == 13 && bytes[$0 + 3] == 10 }
}

// MARK: - The text exposition

/// One sample line of a text exposition: name, labels, value.
struct Sample {
    var name: String
    var labels: [String: String]
    var value: Double
}

/// The sample lines of a Prometheus text (0.0.4) exposition.
func samples(_ exposition: String) -> [Sample] {
    exposition.split(separator: "\n").compactMap { line -> Sample? in
        guard !line.hasPrefix("#") else { return nil }
        var labels: [String: String] = [:]
        var rest = Substring(line)
        let name = rest.prefix { $0 != "{" && $0 != " " }
        rest = rest.dropFirst(name.count)
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let key = rest.prefix { $0 != "=" }
                rest = rest.dropFirst(key.count + 2)   // `="`
                var value = ""
                while let c = rest.first, c != "\"" {
                    if c == "\\", let escaped = rest.dropFirst().first {
                        value.append(escaped == "n" ? "\n" : escaped)
                        rest = rest.dropFirst(2)
                    } else {
                        value.append(c)
                        rest = rest.dropFirst()
                    }
                }
                rest = rest.dropFirst()   // `"`
                if rest.first == "," { rest = rest.dropFirst() }
                labels[String(key)] = value
                if rest.isEmpty { return nil }
            }
            rest = rest.dropFirst()
        }
        guard let valueText = rest.split(separator: " ").first, let value = Double(valueText) else { return nil }
        return Sample(name: String(name), labels: labels, value: value)
    }
}

/// The sum of the samples called `name` whose labels include `matching`.
func sum(_ samples: [Sample], _ name: String, _ matching: [String: String] = [:]) -> Double {
    samples.filter { sample in sample.name == name && matching.allSatisfy { sample.labels[$0.key] == $0.value } }
        .reduce(0) { $0 + $1.value }
}

// MARK: - wrk

/// A wrk run whose threads stop by themselves: `wrk.lua` stops each thread after the first
/// response at or past `until` (seconds since the epoch). With one connection per thread no
/// request is then left in flight, so wrk's count of responses is exactly the number of
/// requests the server answered. (A run ended by `-d` alone leaves each connection's last
/// request unread: answered, and counted by the server, but not by wrk.) `-d` runs 3 s past
/// `until`, as a bound.
struct WrkRun {
    let child: Child
    let target: String

    /// The Lua script, written into `directory`.
    static func writeScript(in directory: TemporaryDirectory) throws -> String {
        let path = directory.file("wrk.lua")
        try """
        -- Stops this thread after the first response at or past the deadline (seconds since
        -- the epoch, the script's argument), leaving no request of its one connection in flight.
        local deadline
        function init(args) deadline = tonumber(args[1]) end
        function response(status, headers, body)
          if os.time() >= deadline then wrk.thread:stop() end
        end

        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func start(_ wrk: String, script: String, port: Int, path: String, until: Int, threads: Int,
                      log: String) throws -> WrkRun {
        let seconds = max(1, until - Int(Date().timeIntervalSince1970)) + 3
        let target = "http://127.0.0.1:\(port)\(path)"
        // Niced: wrk stands for clients on other machines, and should not starve the
        // workers and serve of the two cores they share with it.
        let child = try Child.start("/usr/bin/nice", [
            "-n", "10", wrk, "-t\(threads)", "-c\(threads)", "-d\(seconds)s", "--timeout", "10s", "-s", script, target, "--", String(until),
        ], lifetime: seconds + 30, log: log)
        return WrkRun(child: child, target: target)
    }

    /// Waits for wrk to finish (it stops itself) and reads its report.
    func finish() throws -> WrkReport {
        let finished = waitUntil(seconds: 60, interval: 0.05) { !child.process.isRunning }
        let status = child.stop()
        let output = child.log()
        guard finished, status == 0 else { throw TestFailure("wrk on \(target) exited with status \(status):\n\(output)") }
        return WrkReport(output)
    }
}

/// The figures of a wrk report.
struct WrkReport {
    var requests = -1
    /// connect, read, write, timeout (all zero when wrk prints no "Socket errors" line).
    var socketErrors = [0, 0, 0, 0]
    var non2xx = 0
    let output: String

    init(_ output: String) {
        self.output = output
        for line in output.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.contains(" requests in "), let n = Int(line.prefix { $0.isNumber }) {
                requests = n
            } else if line.hasPrefix("Socket errors:") {
                socketErrors = line.dropFirst("Socket errors:".count).split(separator: ",").map {
                    Int($0.split(separator: " ").last ?? "") ?? -1
                }
            } else if line.hasPrefix("Non-2xx or 3xx responses:") {
                non2xx = Int(line.dropFirst("Non-2xx or 3xx responses:".count).trimmingCharacters(in: .whitespaces)) ?? -1
            }
        }
    }
}

// MARK: - Prometheus

/// A Prometheus server on a free 127.0.0.1 port, its data under `state`, ready to query.
struct PrometheusServer {
    let child: Child
    let port: Int

    /// Starts Prometheus scraping `target` (host:port) every second as job `job` and waits
    /// until `/-/ready` answers 200. A port taken between choosing and binding is tried again.
    static func start(_ binary: String, job: String, target: String, state: TemporaryDirectory,
                      lifetime: Int) throws -> PrometheusServer {
        let config = state.file("prometheus.yml")
        try """
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
          evaluation_interval: 1s
        scrape_configs:
          - job_name: \(job)
            static_configs:
              - targets: ["\(target)"]

        """.write(toFile: config, atomically: true, encoding: .utf8)
        var lastLog = ""
        for attempt in 1...3 {
            let port = try freePort()
            let child = try Child.start(binary, [
                "--config.file=\(config)", "--storage.tsdb.path=\(state.path)/data-\(attempt)",
                "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
            ], lifetime: lifetime, log: state.file("prometheus-\(attempt).log"))
            let ready = waitUntil(seconds: 30, interval: 0.2) {
                !child.process.isRunning || (try? get(port: port, "/-/ready", timeout: 2).status) == 200
            }
            if ready && child.process.isRunning { return PrometheusServer(child: child, port: port) }
            lastLog = child.log()
            child.stop()
            if !lastLog.contains("address already in use") { break }
        }
        throw TestFailure("prometheus did not become ready:\n\(lastLog.suffix(3000))")
    }

    /// The `data.result` of an instant query.
    /// Evaluated at `time`, or now.
    func query(_ promQL: String, at time: Date? = nil) throws -> [[String: Any]] {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let encoded = promQL.addingPercentEncoding(withAllowedCharacters: allowed) ?? promQL
        let evaluation = time.map { "&time=" + String(format: "%.3f", $0.timeIntervalSince1970) } ?? ""
        let response = try get(port: port, "/api/v1/query?query=" + encoded + evaluation, timeout: 10)
        guard response.status == 200,
              let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any],
              object["status"] as? String == "success",
              let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]] else {
            throw TestFailure("query \(promQL): \(response.status) \(response.body.prefix(500))")
        }
        return result
    }

    /// The value of an instant query selecting at most one series; nil when it selects none.
    func value(_ promQL: String) throws -> Double? {
        let result = try query(promQL)
        guard let first = result.first else { return nil }
        guard result.count == 1, let pair = first["value"] as? [Any], pair.count == 2, let text = pair[1] as? String,
              let value = Double(text) else {
            throw TestFailure("query \(promQL): expected one sample, got \(result)")
        }
        return value
    }

    /// The raw samples of a range-vector selector (`name{...}[Ns]`) as (time, value), per
    /// series (keyed by its labels as Prometheus prints them), oldest first.
    func rangeSamples(_ selector: String, at time: Date? = nil) throws -> [String: [(time: Date, value: Double)]] {
        var series: [String: [(time: Date, value: Double)]] = [:]
        for entry in try query(selector, at: time) {
            let labels = (entry["metric"] as? [String: String] ?? [:]).sorted { $0.key < $1.key }
                .map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",")
            let values = (entry["values"] as? [[Any]] ?? []).compactMap { pair -> (time: Date, value: Double)? in
                guard pair.count == 2, let time = (pair[0] as? NSNumber)?.doubleValue,
                      let value = (pair[1] as? String).flatMap(Double.init) else { return nil }
                return (Date(timeIntervalSince1970: time), value)
            }
            series["{\(labels)}"] = values
        }
        return series
    }
}
