// The Hummingbird worker pool end to end: the example app as several worker processes writing
// into one PROMETHEUS_MULTIPROC_DIR, driven by wrk, one worker killed with SIGKILL and
// restarted under the load, `prom-multiproc-cli serve` as the one scrape endpoint, and a real
// Prometheus (Debian's 2.42, PROM_MULTIPROC_PROMETHEUS) scraping it every second.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The suites here start servers and worker pools; they run one after the other.
@Suite(.serialized) struct HummingbirdDeploymentTests {}

extension HummingbirdDeploymentTests {
    @Suite struct WorkerPoolTests {
        /// The merged `hb_requests_total` of the load route equals, exactly, the responses wrk
        /// received, across a worker killed with SIGKILL while it had requests in flight, and
        /// Prometheus never saw it go down.
        ///
        /// Why exactly: every wrk thread has one connection and stops itself after a response
        /// (`WrkRun`), so wrk leaves no request unanswered. Hummingbird's `MetricsMiddleware`
        /// counts a request after its response is written; a fast request in flight on a
        /// killed worker could therefore be delivered and not counted, or counted and not
        /// delivered. So the victim's wrk run ends before the kill, and what is in flight on
        /// the victim when it dies are requests parked in the `/slow` handler, which neither
        /// side counts: the clients get no response, and the counter never saw them (they do
        /// show in the in-progress gauge until the worker dies). The two other workers stay
        /// under wrk's load throughout.
        @Test(.timeLimit(.minutes(3)))
        func theMergedRequestCountIsWhatWrkReceivedAcrossAKilledWorker() throws {
            let wrk = try ExternalTool.wrk.path()
            let prometheusBinary = try ExternalTool.prometheus.path()
            let app = productsDirectory() + "/hummingbird-example"
            let cli = productsDirectory() + "/prom-multiproc-cli"
            let work = TemporaryDirectory("pmp-hb-pool"); defer { work.remove() }
            let directory = work.file("metrics")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            let began = Date()
            let probes = Probes()

            // Three workers (each on its own port), serve, and Prometheus scraping serve.
            let pool = try WorkerPool.start(app, directory: directory, workers: 3, logs: work, probes: probes)
            defer { pool.supervisor.stop() }
            let serve = try Serve.start(cli, directory: directory, logs: work)
            defer { serve.child.stop() }
            let prometheus = try PrometheusServer.start(prometheusBinary, job: "hb", target: "127.0.0.1:\(serve.port)",
                                                        state: work, lifetime: 300)
            defer { prometheus.child.stop() }
            // Prometheus scrapes before the load starts (it batches a new target for about 5 s).
            let scraping = waitUntil(seconds: 40, interval: 0.25) { (try? prometheus.value(#"up{job="hb"}"#)) == 1 }
            try #require(scraping, "Prometheus never scraped serve:\n\(prometheus.child.log().suffix(2000))")

            // The load: wrk on every worker, the survivors for 12 s.
            let script = try WrkRun.writeScript(in: work)
            let route = "/users/42"
            let loadStart = Date()
            let now = Int(loadStart.timeIntervalSince1970)
            let end = now + 12
            let victimPort = pool.ports[2]
            var runs: [WrkRun] = []
            for port in pool.ports.dropLast() {
                runs.append(try WrkRun.start(wrk, script: script, port: port, path: route, until: end, threads: 2,
                                             log: work.file("wrk-\(port).log")))
            }
            defer { for run in runs { run.child.stop() } }
            let victimBefore = try WrkRun.start(wrk, script: script, port: victimPort, path: route, until: now + 4,
                                                threads: 2, log: work.file("wrk-\(victimPort)-before.log"))
            runs.append(victimBefore)
            let victimBeforeReport = try victimBefore.finish()

            // Requests in flight on the victim: parked in the /slow handler for 20 s.
            let victim = try #require(pool.pid(on: victimPort), "no worker pid for port \(victimPort):\n\(pool.supervisor.log())")
            var parked: [Connection] = []
            for _ in 0..<3 {
                let connection = try Connection(port: victimPort, timeout: 10)
                try connection.send("GET /slow?ms=20000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                parked.append(connection)
            }
            // They are in the handler once the victim's own in-progress gauge (its livesum file;
            // its wrk run is over) holds exactly them.
            let victimGauge = "\(directory)/gauge_livesum_\(victim).db"
            var inProgress = 0.0
            let parkedSeen = waitUntil(seconds: 10) {
                inProgress = (try? entries(cli, victimGauge, work)).map { sum($0, "http_server_active_requests") } ?? -1
                return inProgress == 3
            }
            #expect(parkedSeen, "the killed worker's in-progress gauge never held the 3 parked requests (saw \(inProgress))")

            // SIGKILL, under the survivors' load.
            #expect(kill(victim, SIGKILL) == 0)
            let killedAt = Date()
            for connection in parked {
                let bytes = try connection.readToEnd()
                #expect(bytes.isEmpty, "a request in flight on the killed worker got a response: \(String(decoding: bytes, as: UTF8.self))")
            }
            parked.removeAll()

            // The supervisor starts a new worker on the port; wrk drives it until the end.
            var replacement: pid_t? = nil
            let restarted = waitUntil(seconds: 20) {
                guard let pid = pool.pid(on: victimPort), pid != victim, probes.pid(port: victimPort) == pid else { return false }
                replacement = pid
                return true
            }
            try #require(restarted, "no worker came back on port \(victimPort):\n\(pool.supervisor.log())")
            let restartedAt = Date()
            let restartSeconds = restartedAt.timeIntervalSince(killedAt)
            let victimAfter = try WrkRun.start(wrk, script: script, port: victimPort, path: route,
                                               until: max(end, Int(Date().timeIntervalSince1970) + 3), threads: 2,
                                               log: work.file("wrk-\(victimPort)-after.log"))
            runs.append(victimAfter)

            var reports = [victimBeforeReport]
            for run in runs where run.child.process.processIdentifier != victimBefore.child.process.processIdentifier {
                reports.append(try run.finish())
            }
            let loadEnd = Date()
            let loadSeconds = loadEnd.timeIntervalSince(loadStart)
            for report in reports {
                #expect(report.requests > 0 && report.socketErrors == [0, 0, 0, 0] && report.non2xx == 0,
                        "a wrk run did not go cleanly:\n\(report.output)")
            }
            let received = reports.reduce(0) { $0 + $1.requests }

            // serve's merge: exactly what wrk received (the counter is written just after the
            // response, so it may lag wrk's last response by a moment).
            let loadRoute = ["http_route": "/users/{id}", "http_request_method": "GET", "http_response_status_code": "200"]
            var merged = -1.0
            _ = waitUntil(seconds: 10, interval: 0.2) {
                merged = (try? serve.scrape()).map { sum($0, "hb_requests_total", loadRoute) } ?? -1
                return merged == Double(received)
            }
            #expect(merged == Double(received), "serve merged \(merged) requests of the load route; wrk received \(received)")
            // The killed worker's counts are still in the merge: its file stays, and holds
            // exactly the responses of its wrk run (and nothing of the parked requests).
            let victimCounts = try entries(cli, "\(directory)/counter_\(victim).db", work)
            #expect(sum(victimCounts, "hb_requests_total", "/users/{id}") == Double(victimBeforeReport.requests),
                    "the killed worker's file: \(victimCounts); its wrk run received \(victimBeforeReport.requests)")
            #expect(sum(victimCounts, "hb_requests_total", "/slow") == 0)

            // Every worker's own /metrics route serves the same merge (text and OpenMetrics),
            // with the process metrics of the live workers and not of the killed one.
            let inApp = try get(port: pool.ports[0], "/metrics")
            #expect(inApp.status == 200 && inApp.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8",
                    "the app's /metrics: \(inApp.status) \(inApp.header("Content-Type") ?? "no Content-Type")")
            let inAppSamples = samples(inApp.body)
            #expect(sum(inAppSamples, "hb_requests_total", loadRoute) == Double(received))
            let workerPIDs = Set(inAppSamples.filter { $0.name == "process_resident_memory_bytes" }.compactMap { $0.labels["pid"] })
            let live = Set(pool.ports.compactMap { pool.pid(on: $0) }.map(String.init))
            #expect(live.count == 3 && live.isSubset(of: workerPIDs) && !workerPIDs.contains(String(victim)),
                    "process metrics for pids \(workerPIDs.sorted()); live workers \(live.sorted()), killed \(victim)")
            let openMetrics = try get(port: pool.ports[1], "/metrics",
                                      headers: ["Accept": "application/openmetrics-text;version=1.0.0"])
            #expect(openMetrics.status == 200 && openMetrics.header("Content-Type")?.hasPrefix("application/openmetrics-text") == true
                    && openMetrics.body.hasSuffix("# EOF\n"), "OpenMetrics from the app: \(openMetrics.header("Content-Type") ?? "?")")
            let appScrapes = 2

            // Every request of every route, the test's own included, is counted once; the
            // parked requests on the killed worker are in no count, and the in-progress gauge
            // no longer holds them (a livesum gauge of a dead worker drops out).
            var total = -1.0, active = -1.0
            let allCounted = Double(received + probes.answered + appScrapes)
            let settled = waitUntil(seconds: 10, interval: 0.2) {
                guard let all = try? serve.scrape() else { return false }
                total = sum(all, "hb_requests_total")
                active = sum(all, "http_server_active_requests")
                return total >= allCounted && total <= allCounted + Double(probes.uncertain) && active == 0
            }
            #expect(settled, """
                serve: \(total) requests in all (expected \(Int(allCounted)): wrk \(received), probes \(probes.answered) \
                (+\(probes.uncertain) unsure), app scrapes \(appScrapes)), \(active) in progress (expected 0)
                """)

            // Prometheus: the final value, and never a decrease over the whole run.
            let loadQuery = #"sum(hb_requests_total{http_route="/users/{id}"})"#
            var scraped: Double? = nil
            _ = waitUntil(seconds: 15, interval: 0.25) {
                scraped = try? prometheus.value(loadQuery)
                return scraped == Double(received)
            }
            #expect(scraped == Double(received), "Prometheus's last value \(scraped.map { "\($0)" } ?? "none"); wrk received \(received)")
            let window = Int(Date().timeIntervalSince(began).rounded(.up)) + 5
            let series = try prometheus.rangeSamples(#"hb_requests_total{http_route="/users/{id}"}[\#(window)s]"#)
            #expect(series.count == 1, "series of the load route: \(series.keys.sorted())")
            let counted = series.values.first ?? []
            let values = counted.map(\.value)
            let decreases = zip(values, values.dropFirst()).filter { $0.1 < $0.0 }
            #expect(decreases.isEmpty && !values.isEmpty, "the load route's counter went down in Prometheus: \(decreases)")
            #expect(values.last == Double(received))
            // The samples span the kill: some before it, some after the new worker was up.
            let beforeKill = counted.filter { $0.time < killedAt }.count
            let afterRestart = counted.filter { $0.time > restartedAt }.count
            #expect(beforeKill >= 2 && afterRestart >= 2,
                    "\(beforeKill) samples before the kill, \(afterRestart) after the restart: too few to see a decrease")
            #expect(try prometheus.value("max(resets(hb_requests_total[\(window)s]))") == 0)
            // Every scrape of serve, during the load and after it. On 2 cores that the workers
            // saturate (and, on a developer's machine, other builds share) a scrape that
            // usually takes 20 ms can miss Prometheus's 1 s timeout, the most a 1 s interval
            // allows. A failed scrape stores no sample, so it cannot hide a decrease between
            // the samples checked above; failures are allowed only as timeouts (an error or a
            // refused connection fails the test at once) and only for a third of the scrapes.
            // Both series at one evaluation time, paired by timestamp (a scrape stores both).
            let evaluation = Date()
            let up = try prometheus.rangeSamples(#"up{job="hb"}[\#(window)s]"#, at: evaluation).values.first ?? []
            let durations = Dictionary(
                (try prometheus.rangeSamples(#"scrape_duration_seconds{job="hb"}[\#(window)s]"#, at: evaluation).values.first ?? [])
                    .map { ($0.time, $0.value) }, uniquingKeysWith: { first, _ in first })
            let failed = up.filter { $0.value != 1 }.map { durations[$0.time] ?? -1 }
            let slowestScrape = durations.values.max() ?? -1
            #expect(up.count >= 10 && up.allSatisfy { durations[$0.time] != nil },
                    "\(up.count) scrapes, \(durations.count) durations")
            #expect(failed.allSatisfy { $0 >= 0.9 } && failed.count * 3 <= up.count, """
                \(failed.count) of \(up.count) scrapes of serve failed, taking \(failed) s (only timeouts, at most a \
                third, are allowed); targets: \((try? get(port: prometheus.port, "/api/v1/targets").body) ?? "?")
                """)
            let sinceLoad = Int(Date().timeIntervalSince(loadEnd).rounded(.down))
            let scrapesDuringLoad = try prometheus.value(
                #"count_over_time(up{job="hb"}[\#(Int(loadSeconds.rounded(.down)))s]\#(sinceLoad > 0 ? " offset \(sinceLoad)s" : ""))"#) ?? 0
            #expect(scrapesDuringLoad >= loadSeconds / 2, "Prometheus scraped \(scrapesDuringLoad) times in \(loadSeconds) s of load")

            // A clean stop: the supervisor stops every worker, then itself.
            let workers = pool.ports.compactMap { pool.pid(on: $0) }
            #expect(pool.supervisor.stop() == 0, "supervisor:\n\(pool.supervisor.log().suffix(2000))")
            #expect(waitUntil(seconds: 5) { workers.allSatisfy(hasExited) }, "workers left running: \(workers.filter { !hasExited($0) })")
            #expect(serve.child.stop() == 0, "serve:\n\(serve.child.log().suffix(2000))")
            #expect(prometheus.child.stop() == 0, "prometheus:\n\(prometheus.child.log().suffix(2000))")

            print("""
                hummingbird pool: 3 workers on ports \(pool.ports.map(String.init).joined(separator: ",")); \
                1 SIGKILL (pid \(victim), 3 requests in flight, its file holds \(Int(sum(victimCounts, "hb_requests_total", "/users/{id}")))), restarted as pid \(replacement.map(String.init) ?? "?") \
                in \(String(format: "%.1f", restartSeconds)) s; wrk: \(reports.count) runs, \
                \(reports.map { String($0.requests) }.joined(separator: " + ")) = \(received) responses in \
                \(String(format: "%.1f", loadSeconds)) s; hb_requests_total{http_route="/users/{id}"}: serve \(Int(merged)), \
                Prometheus \(scraped.map { String(Int($0)) } ?? "none") (\(values.count) samples, \(beforeKill) before the kill, \
                \(afterRestart) after the restart, \(decreases.count) decreases, \
                \(Int(scrapesDuringLoad)) scrapes during the load, \(failed.count) of \(up.count) timed out, slowest \
                \(String(format: "%.3f", slowestScrape)) s); all routes \(Int(total)) = wrk + \(probes.answered) probes \
                + \(appScrapes) app scrapes; test took \(String(format: "%.1f", Date().timeIntervalSince(began))) s
                """)
        }
    }
}

// MARK: - The pool and serve

/// The test's own requests to `/`, which the workers count too.
final class Probes {
    /// Requests answered with 200.
    private(set) var answered = 0
    /// Requests sent whose answer was lost (a worker that died, a timeout): each may or may
    /// not be in the count.
    private(set) var uncertain = 0

    /// `GET /` on `port`: the pid the worker names, or nil when nothing answers.
    func pid(port: Int) -> pid_t? {
        do {
            let response = try get(port: port, "/", timeout: 5)
            guard response.status == 200 else { uncertain += 1; return nil }
            answered += 1
            guard let range = response.body.range(of: #"worker pid (\d+)"#, options: .regularExpression) else { return nil }
            return pid_t(response.body[range].split(separator: " ").last ?? "")
        } catch is ConnectionRefused {
            return nil
        } catch {
            uncertain += 1
            return nil
        }
    }
}

/// `hummingbird-example supervise`: N workers on consecutive ports, restarted when they die.
struct WorkerPool {
    let supervisor: Child
    let ports: [Int]

    /// Starts the pool and waits until every worker answers. Ports taken between choosing
    /// and binding (a worker that exits at once) are chosen again.
    static func start(_ app: String, directory: String, workers: Int, logs: TemporaryDirectory,
                      probes: Probes) throws -> WorkerPool {
        var lastLog = ""
        for attempt in 1...3 {
            let ports = try freeConsecutivePorts(workers)
            let supervisor = try Child.start(app, [
                "supervise", "--host", "127.0.0.1", "--port", String(ports[0]), "--workers", String(workers),
            ], environment: ["PROMETHEUS_MULTIPROC_DIR": directory], lifetime: 300, log: logs.file("supervisor-\(attempt).log"))
            let pool = WorkerPool(supervisor: supervisor, ports: ports)
            let ready = waitUntil(seconds: 30) {
                if supervisor.log().contains(" exited (status ") || !supervisor.process.isRunning { return true }
                return ports.allSatisfy { port in pool.pid(on: port).map { probes.pid(port: port) == $0 } ?? false }
            }
            lastLog = supervisor.log()
            if ready && !lastLog.contains(" exited (status ") && supervisor.process.isRunning { return pool }
            supervisor.stop()
            lastLog = supervisor.log()
        }
        throw TestFailure("the worker pool did not start:\n\(lastLog.suffix(3000))")
    }

    /// The pid of the worker the supervisor last started on `port`.
    func pid(on port: Int) -> pid_t? {
        var pid: pid_t? = nil
        for line in supervisor.log().split(separator: "\n") where line.hasSuffix(":\(port)/") {
            if let range = line.range(of: #"worker pid (\d+) serving"#, options: .regularExpression) {
                pid = pid_t(line[range].split(separator: " ")[2])
            }
        }
        return pid
    }
}

/// `prom-multiproc-cli serve` on a port of the kernel's choosing.
struct Serve {
    let child: Child
    let port: Int

    static func start(_ cli: String, directory: String, logs: TemporaryDirectory) throws -> Serve {
        let child = try Child.start(cli, ["serve", "--dir", directory, "--bind", "127.0.0.1", "--port", "0"],
                                    lifetime: 300, log: logs.file("serve.log"))
        var port: Int? = nil
        _ = waitUntil(seconds: 20) {
            let log = child.log()
            guard let range = log.range(of: #"listening on http://127\.0\.0\.1:\d+/metrics"#, options: .regularExpression) else {
                return !child.process.isRunning
            }
            port = Int(log[range].split(separator: ":").last?.split(separator: "/").first ?? "")
            return true
        }
        guard let port else {
            child.stop()
            throw TestFailure("serve did not start:\n\(child.log())")
        }
        return Serve(child: child, port: port)
    }

    /// One scrape in the text format.
    func scrape() throws -> [Sample] {
        let response = try get(port: port, "/metrics")
        guard response.status == 200 else { throw TestFailure("serve answered \(response.status)") }
        return samples(response.body)
    }
}

/// The entries of one metric file as `prom-multiproc-cli inspect` prints them: (key, value).
func entries(_ cli: String, _ file: String, _ work: TemporaryDirectory) throws -> [(key: String, value: Double)] {
    let (status, output) = try runToEnd(cli, ["inspect", file], in: work)
    guard status == 0 else { throw TestFailure("inspect \(file): status \(status)\n\(output)") }
    // "  @OFFSET value=V ts=T KEY"
    return output.split(separator: "\n").compactMap { line in
        guard line.hasPrefix("  @"), let value = line.split(separator: " ").first(where: { $0.hasPrefix("value=") }),
              let number = Double(value.dropFirst("value=".count)), let ts = line.range(of: " ts=") else { return nil }
        let key = line[ts.upperBound...].drop { $0 != " " }.dropFirst()
        return (String(key), number)
    }
}

/// The sum of the entries whose key contains every one of `parts`.
func sum(_ entries: [(key: String, value: Double)], _ parts: String...) -> Double {
    entries.filter { entry in parts.allSatisfy { entry.key.contains($0) } }.reduce(0) { $0 + $1.value }
}
