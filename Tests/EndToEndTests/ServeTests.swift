import Foundation
import Testing
import PromMetrics
import TestSupport

/// A running `serve` (or `demo`) process and the port it printed.
struct RunningServer {
    let process: Process
    let port: Int
    let stdout: Pipe
    let stderr: Pipe

    /// Starts the CLI (`cli`, the debug build by default) with `args` and waits for its
    /// `listening on http://...:PORT/metrics` line.
    static func start(_ args: [String], cli: String = executable("prom-multiproc-cli")) throws -> RunningServer {
        let out = Pipe(), err = Pipe()
        let p = try launch(cli, args, stdout: out, stderr: err)
        var seen = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
            if let range = seen.range(of: #"listening on http://[^ ]+:(\d+)/metrics"#, options: .regularExpression) {
                let line = String(seen[range])
                let port = Int(line.split(separator: ":").last!.split(separator: "/").first!)!
                return RunningServer(process: p, port: port, stdout: out, stderr: err)
            }
        }
        p.terminate()
        throw ClientError(description: "serve did not print its address: \(seen)")
    }

    func get(_ path: String = "/metrics", accept: String? = nil, method: String = "GET") throws -> ClientResponse {
        let client = try TestClient(port: port, timeoutSeconds: 10)
        try client.request(method, path, extra: accept.map { "Accept: \($0)\r\n" } ?? "")
        return try client.readResponse(bodyExpected: method != "HEAD")
    }

    /// Sends SIGTERM and returns the exit status.
    func stop() -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
    }
}

let prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

@Suite struct ServeTests {
    @Test func servesTheMergedDirectoryInBothFormatsAndStopsOnSIGTERM() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("11"))
        defer { storage.store?.close() }
        let r = Registry(storage: storage)
        let c = try Counter("jobs_total", help: "Jobs \"done\".\nSecond line.", labelNames: ["queue"], registry: r)
        c.labels("a\\b").increment(by: 3)
        let h = try Histogram("job_seconds", help: "Job time.", registry: r)
        h.observe(0.2)
        _ = FileManager.default.createFile(atPath: dir.file("counter_99.db"), contents: Data())  // a bad file

        let server = try RunningServer.start(["serve", "--dir", dir.path, "--port", "0"])
        let text = try server.get()
        #expect(text.status == 200)
        #expect(text.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(text.text.contains(#"jobs_total{queue="a\\b"} 3.0"#))
        #expect(text.text.contains(#"prom_multiproc_collector_bad_files{reason="empty"} 1.0"#))
        let promtool = try run(try ExternalTool.promtool.path(), ["check", "metrics"], input: text.text)
        #expect(promtool.status == 0, "promtool: \(promtool.stdout) \(promtool.stderr)")

        let om = try server.get(accept: prometheusAccept)
        #expect(om.header("Content-Type")?.hasPrefix("application/openmetrics-text; version=1.0.0") == true)
        #expect(om.text.hasSuffix("# EOF\n"))
        let parsed = try runPython("om_check.py", [], input: om.text)
        #expect(parsed.status == 0, "strict OpenMetrics parser: \(parsed.stdout) \(parsed.stderr)")

        let head = try server.get(method: "HEAD")
        #expect(head.status == 200 && head.body.isEmpty && head.header("Content-Length") != nil)
        #expect(try server.get("/nope").status == 404)

        c.labels("a\\b").increment()
        #expect(try server.get().text.contains(#"jobs_total{queue="a\\b"} 4.0"#))
        #expect(server.stop() == 0)
        let stderr = String(decoding: server.stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(stderr.contains("counter_99.db") && stderr.contains("empty"))
    }

    @Test func collectWritesAtomicallyForTheTextfileCollector() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let out = TempDirectory("pmp-out"); defer { out.remove() }
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("5"))
        let g = try Gauge("temperature_celsius", help: "T.", mode: .max, registry: Registry(storage: storage))
        g.set(21.5)
        storage.store?.close()
        let r = try cli(["collect", "--dir", dir.path, "--output", out.file("metrics.prom")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(out.names() == ["metrics.prom"])
        let written = try String(contentsOfFile: out.file("metrics.prom"), encoding: .utf8)
        #expect(written.contains("temperature_celsius 21.5"))
        let om = try cli(["collect", "--dir", dir.path, "--format", "openmetrics"])
        #expect(om.stdout.hasSuffix("# EOF\n"))
        #expect(try cli(["collect", "--dir", dir.path, "--format", "xml"]).status == 2)
    }

    @Test func demoRunsWorkersKillsOneAndServesTheMergedMetrics() throws {
        let r = try cli(["demo", "--port", "0", "--workers", "2", "--duration", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("killed worker") && r.stdout.contains("first scrape"))
        #expect(r.stdout.contains("demo_http_requests_total{route="))
        #expect(r.stdout.contains("demo_http_request_duration_seconds_bucket"))
        #expect(r.stdout.contains("demo: stopped"))
    }
}
