// `serve` exports the process metrics of every live worker and of itself: checked against
// /proc read here independently, through both validators, and gone for a killed worker.
import Foundation
import Testing
import TestSupport

/// What /proc says about one process, read here without the library's code.
private struct ProcView {
    var cpuSeconds: Double
    var residentBytes: Double
    var virtualBytes: Double
    var startTime: Double
    var openFDs: Double
    var maxFDs: Double

    static let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    static let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
    static let bootTime: Double = {
        let stat = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8)) ?? ""
        let line = stat.split(separator: "\n").first { $0.hasPrefix("btime ") } ?? "btime 0"
        return Double(line.split(separator: " ")[1]) ?? 0
    }()

    init(pid: Int32) throws {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let afterName = stat[stat.index(after: try #require(stat.lastIndex(of: ")")))...]
        let f = afterName.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { Double($0) ?? .nan }
        cpuSeconds = f[11] / Self.ticks + f[12] / Self.ticks
        startTime = f[19] / Self.ticks + Self.bootTime
        virtualBytes = f[20]
        residentBytes = f[21] * Self.pageSize
        openFDs = Double(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count)
        let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        let line = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        maxFDs = Double(line.split(separator: " ")[3]) ?? .nan
    }
}

/// The value of `name{pid="<pid>"}` in a text-format body.
private func value(_ body: String, _ name: String, pid: Int32) -> Double? {
    let prefix = "\(name){pid=\"\(pid)\"} "
    return body.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
}

/// The six `process_*` series of `pid` in `text` lie between what `/proc` said just before
/// (`before`) and just after (`after`) the scrape. CPU time only grows; memory of an idle
/// worker barely moves: allow a page or so.
private func expectProcessMetrics(_ text: String, pid: Int32, before: ProcView, after: ProcView) throws {
    func scraped(_ name: String) throws -> Double { try #require(value(text, name, pid: pid), "\(name) of \(pid)") }
    func between(_ name: String, _ key: KeyPath<ProcView, Double>, slack: Double = 0) throws {
        let v = try scraped(name)
        let low = min(before[keyPath: key], after[keyPath: key]) - slack
        let high = max(before[keyPath: key], after[keyPath: key]) + slack
        #expect(v >= low && v <= high, "\(name){pid=\"\(pid)\"} = \(v), /proc said \(low)...\(high)")
    }
    try between("process_cpu_seconds_total", \.cpuSeconds, slack: 1e-9)
    try between("process_resident_memory_bytes", \.residentBytes, slack: 1_048_576)
    try between("process_virtual_memory_bytes", \.virtualBytes, slack: 1_048_576)
    try between("process_open_fds", \.openFDs)
    #expect(try scraped("process_max_fds") == before.maxFDs)
    #expect(abs(try scraped("process_start_time_seconds") - before.startTime) < 1e-6)
}

private let processFamilies = [
    "process_cpu_seconds_total", "process_max_fds", "process_open_fds", "process_resident_memory_bytes",
    "process_start_time_seconds", "process_virtual_memory_bytes",
]

@Suite struct ProcessMetricsEndToEndTests {
    @Test func serveExportsEachLiveWorkersProcessMetricsAsProcSaysAndDropsAKilledOne() throws {
        let dir = TempDirectory("pmp-procm"); defer { dir.remove() }
        let workers = try (0..<3).map { _ in try LiveWorker(directory: dir.path) }
        let server = try RunningServer.start(["serve", "--dir", dir.path, "--port", "0"])
        defer { _ = server.stop() }

        let before = try workers.map { try ProcView(pid: $0.pid) }
        let response = try server.get()
        let after = try workers.map { try ProcView(pid: $0.pid) }
        #expect(response.status == 200)
        let text = response.text
        for (i, worker) in workers.enumerated() {
            try expectProcessMetrics(text, pid: worker.pid, before: before[i], after: after[i])
        }
        // serve's own series, under its pid; nobody else's.
        let servePID = server.process.processIdentifier
        #expect(abs((value(text, "process_start_time_seconds", pid: servePID) ?? 0) - (try ProcView(pid: servePID).startTime)) < 1e-6)
        for name in processFamilies {
            #expect(text.split(separator: "\n").filter { $0.hasPrefix(name + "{") }.count == 4, "\(name): 3 workers and serve")
        }

        // Both validators accept the families.
        let promtool = try run(try ExternalTool.promtool.path(), ["check", "metrics"], input: text)
        #expect(promtool.status == 0, "promtool: \(promtool.stdout)\(promtool.stderr)")
        let om = try server.get(accept: prometheusAccept)
        #expect(om.text.contains("# TYPE process_cpu_seconds counter\n"))
        let parsed = try runPython("om_check.py", [], input: om.text)
        #expect(parsed.status == 0, "strict OpenMetrics parser: \(parsed.stdout)\(parsed.stderr)")

        // A killed worker's series are gone from the next scrape; the others stay.
        workers[1].kill()
        let next = try server.get().text
        for name in processFamilies {
            #expect(value(next, name, pid: workers[1].pid) == nil, "\(name) of the killed worker")
            #expect(value(next, name, pid: workers[0].pid) != nil && value(next, name, pid: workers[2].pid) != nil)
        }
    }

    /// prometheus_client's workers (files without a lock) are found by the files they hold:
    /// three live ones appear with what /proc says; a live process whose pid names a dead
    /// worker's file does not; a worker that exits is gone from the next scrape.
    @Test func serveExportsLivePrometheusClientWorkersButNotAPidThatDoesNotUseTheFile() throws {
        let dir = TempDirectory("pmp-pyprocm"); defer { dir.remove() }
        func startWorker() throws -> (LineChild, Int32) {
            let child = try LineChild.python("counter_worker.py", [dir.path])
            let ready = child.readLine() ?? "no output"
            guard ready.hasPrefix("ready "), let pid = Int32(ready.dropFirst("ready ".count)) else {
                child.finish()
                throw ClientError(description: "the prometheus_client worker did not get ready: \(ready)")
            }
            #expect(FileManager.default.fileExists(atPath: dir.file("counter_\(pid).db")))
            return (child, pid)
        }
        let workers = try (0..<3).map { _ in try startWorker() }
        defer { for (child, _) in workers { child.finish() } }
        // A worker that exited, whose file is renamed after a live process that never opened it.
        let (gone, gonePID) = try startWorker()
        #expect(gone.finish() == 0)
        let unrelated = try launch("/bin/sleep", ["600"])
        defer { kill(unrelated.processIdentifier, SIGKILL); unrelated.waitUntilExit() }
        try FileManager.default.moveItem(atPath: dir.file("counter_\(gonePID).db"),
                                         toPath: dir.file("counter_\(unrelated.processIdentifier).db"))

        let server = try RunningServer.start(["serve", "--dir", dir.path, "--port", "0"])
        defer { _ = server.stop() }
        let before = try workers.map { try ProcView(pid: $0.1) }
        let response = try server.get()
        let after = try workers.map { try ProcView(pid: $0.1) }
        #expect(response.status == 200)
        let text = response.text
        #expect(text.contains("jobs_total 4.0"), "the four files are merged: \(text)")
        for (i, (_, pid)) in workers.enumerated() {
            try expectProcessMetrics(text, pid: pid, before: before[i], after: after[i])
        }
        for name in processFamilies {
            #expect(value(text, name, pid: unrelated.processIdentifier) == nil, "\(name): the pid of the name does not use the file")
            #expect(text.split(separator: "\n").filter { $0.hasPrefix(name + "{") }.count == 4, "\(name): 3 workers and serve")
        }

        // A worker that exits is gone from the next scrape; the others stay.
        #expect(workers[1].0.finish() == 0)
        let next = try server.get().text
        for name in processFamilies {
            #expect(value(next, name, pid: workers[1].1) == nil, "\(name) of the exited worker")
            #expect(value(next, name, pid: workers[0].1) != nil && value(next, name, pid: workers[2].1) != nil)
        }
    }

    @Test func noProcessMetricsLeavesThemOut() throws {
        let dir = TempDirectory("pmp-procm"); defer { dir.remove() }
        let worker = try LiveWorker(directory: dir.path)
        let server = try RunningServer.start(["serve", "--dir", dir.path, "--port", "0", "--no-process-metrics"])
        defer { _ = server.stop() }
        let text = try server.get().text
        #expect(text.contains("held_total"), "the worker's metrics are served")
        #expect(!text.contains("process_"), "\(text)")
        withExtendedLifetime(worker) {}
    }
}
