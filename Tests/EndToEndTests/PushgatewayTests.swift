// Deployment tests, part 4: `push` against a real Pushgateway (Debian's package
// prometheus-pushgateway, PROM_MULTIPROC_PUSHGATEWAY). Each test starts its own gateway on a
// free 127.0.0.1 port, bounded by `timeout`, and stops it at the end.
//
// What the gateway holds is read back from its own /metrics and /api/v1/metrics and parsed by
// prometheus_client's parser (scripts/python/parse_text.py); the expected samples come from
// prometheus_client's MultiProcessCollector over the same directory (scripts/python/collect.py),
// and the expected grouping key from prometheus_client's own push_to_gateway.
import Foundation
import PromMetrics
import SystemCalls
import Testing
import TestSupport

extension DeploymentTests {
    @Suite struct PushgatewayTests {
        @Test(.timeLimit(.minutes(2)))
        func aPushedDirectoryReadsBackFromTheGatewayAsPrometheusClientMergesIt() throws {
            let dir = TempDirectory("pmp-push-dir"); defer { dir.remove() }
            // Two prometheus_client workers and one Swift worker share the directory.
            try writeWithPrometheusClient(dir, pid: "101", [
                ["type": "counter", "name": "batch_records", "help": "Records processed.", "labelnames": ["stage"], "labels": ["parse"], "op": "inc", "amount": 3],
                ["type": "counter", "name": "batch_records", "help": "Records processed.", "labelnames": ["stage"],
                 "labels": ["quote\" back\\slash\nnewline é"], "op": "inc", "amount": 0.1],
                ["type": "gauge", "name": "batch_inflight", "help": "In flight.", "mode": "livesum", "op": "set", "amount": 2],
                ["type": "histogram", "name": "batch_duration_seconds", "help": "Duration.", "op": "observe", "amount": 0.3],
                ["type": "histogram", "name": "batch_duration_seconds", "help": "Duration.", "op": "observe", "amount": 2.5],
                ["type": "summary", "name": "batch_payload_bytes", "help": "Payload \\ size\nin bytes.", "op": "observe", "amount": 512],
            ])
            try writeWithPrometheusClient(dir, pid: "102", [
                ["type": "counter", "name": "batch_records", "help": "Records processed.", "labelnames": ["stage"], "labels": ["parse"], "op": "inc", "amount": 4],
                ["type": "counter", "name": "batch_records", "help": "Records processed.", "labelnames": ["stage"],
                 "labels": ["quote\" back\\slash\nnewline é"], "op": "inc", "amount": 0.2],
                ["type": "gauge", "name": "batch_last_success", "help": "Last success.", "mode": "all", "op": "set", "amount": 1.7e9],
            ])
            let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("7"))
            defer { storage.store?.close() }
            let registry = Registry(storage: storage)
            try Counter("batch_records", help: "Records processed.", labelNames: ["stage"], registry: registry).labels("parse").increment(by: 5)
            try Histogram("batch_duration_seconds", help: "Duration.", registry: registry).observe(0.05)
            try Gauge("batch_peak_memory_bytes", help: "Peak memory.", mode: .max, registry: registry).set(1234.5)

            let state = TempDirectory("pmp-push-state"); defer { state.remove() }
            let gateway = try startPushgateway(state: state)
            defer { gateway.child.stop() }

            let push = try cli(["push", "--gateway", gateway.url, "--job", "e2e_batch", "--dir", dir.path, "--no-self-metrics", "--replace"])
            #expect(push.status == 0, "push failed: \(push.stderr)\ngateway log:\n\(gateway.child.log())")
            #expect(push.stdout == "pushed 6 families (24 samples) to \(gateway.url)/metrics/job/e2e_batch with PUT\n")

            let pushed = try gateway.families(job: "e2e_batch")
            let prometheusClient = try parseFamilies(runPython("collect.py", [dir.path]))
            let collected = try cli(["collect", "--dir", dir.path, "--no-self-metrics"])
            try #require(collected.status == 0, "collect failed: \(collected.stderr)")
            let ours = try parseFamilies(runPython("parse_text.py", [], input: collected.stdout))

            #expect(pushed.map(\.name) == ["batch_duration_seconds", "batch_inflight", "batch_last_success", "batch_payload_bytes",
                                           "batch_peak_memory_bytes", "batch_records"])
            #expect(pushed == prometheusClient, "the gateway holds other samples than prometheus_client merges:\n\(difference(pushed, prometheusClient))")
            #expect(pushed == ours, "the gateway holds other samples than collect prints:\n\(difference(pushed, ours))")
            // Spot checks by hand, from the operations above.
            let records = pushed.first { $0.name == "batch_records" }?.samples ?? []
            #expect(records.contains(Sample(name: "batch_records_total", labels: ["stage": "parse"], value: "12.0")))
            #expect(records.contains(Sample(name: "batch_records_total", labels: ["stage": "quote\" back\\slash\nnewline é"],
                                            value: "\(0.1 + 0.2)")))
            // The gateway stamped the group with its push time.
            let group = try #require(try gateway.groups().first { $0.labels["job"] == "e2e_batch" })
            #expect(group.pushTime > 0)
        }

        @Test(.timeLimit(.minutes(2)))
        func replaceDropsAFamilyNoLongerPushedAndAddKeepsIt() throws {
            let first = TempDirectory("pmp-push-first"); defer { first.remove() }
            try writeWithPrometheusClient(first, pid: "201", [
                ["type": "counter", "name": "e2e_rows", "help": "Rows.", "op": "inc", "amount": 10],
                ["type": "gauge", "name": "e2e_backlog", "help": "Backlog.", "mode": "livesum", "op": "set", "amount": 7],
            ])
            let second = TempDirectory("pmp-push-second"); defer { second.remove() }
            try writeWithPrometheusClient(second, pid: "202", [["type": "counter", "name": "e2e_rows", "help": "Rows.", "op": "inc", "amount": 25]])

            let state = TempDirectory("pmp-push-state"); defer { state.remove() }
            let gateway = try startPushgateway(state: state)
            defer { gateway.child.stop() }
            func push(_ dir: TempDirectory, replace: Bool) throws {
                let r = try cli(["push", "--gateway", gateway.url, "--job", "e2e_rows", "--dir", dir.path, "--no-self-metrics"]
                                + (replace ? ["--replace"] : []))
                #expect(r.status == 0, "push failed: \(r.stderr)")
                #expect(r.stdout.hasSuffix(" with \(replace ? "PUT" : "POST")\n"))
            }
            func values() throws -> [String: String] {
                var out: [String: String] = [:]
                for family in try gateway.families(job: "e2e_rows") {
                    for s in family.samples { out[s.name] = s.value }
                }
                return out
            }

            try push(first, replace: true)
            #expect(try values() == ["e2e_rows_total": "10.0", "e2e_backlog": "7.0"])
            // POST (pushadd_to_gateway): e2e_rows is replaced, e2e_backlog stays.
            try push(second, replace: false)
            #expect(try values() == ["e2e_rows_total": "25.0", "e2e_backlog": "7.0"])
            // PUT (push_to_gateway): the whole group is replaced, e2e_backlog is gone.
            try push(second, replace: true)
            #expect(try values() == ["e2e_rows_total": "25.0"])
        }

        @Test(.timeLimit(.minutes(2)))
        func groupingLabelsWithSlashesSpacesAndEmptyValuesLandAsThePrometheusClientGroup() throws {
            let dir = TempDirectory("pmp-push-group"); defer { dir.remove() }
            try writeWithPrometheusClient(dir, pid: "301", [["type": "gauge", "name": "e2e_grouped", "help": "Grouped.", "mode": "max", "op": "set", "amount": 1]])
            let state = TempDirectory("pmp-push-state"); defer { state.remove() }
            let gateway = try startPushgateway(state: state)
            defer { gateway.child.stop() }

            let grouping = ["path": "/var/tmp", "instance": "worker 1", "shard": "3", "empty": "", "name": "Προμηθεύς", "expr": "a+b&c=d%"]
            let options = grouping.sorted { $0.key < $1.key }.flatMap { ["--grouping", "\($0.key)=\($0.value)"] }
            let push = try cli(["push", "--gateway", gateway.url, "--job", "e2e/group", "--dir", dir.path, "--no-self-metrics", "--replace"] + options)
            #expect(push.status == 0, "push failed: \(push.stderr)")

            // The gateway's own view of the group: exactly these labels.
            var expectedGroup = grouping
            expectedGroup["job"] = "e2e/group"
            let groups = try gateway.groups()
            #expect(groups.map(\.labels) == [expectedGroup])
            // And on every pushed sample, as labels (the empty one as an empty value).
            let pushed = try gateway.families(job: "e2e/group")
            let sample = try #require(pushed.first { $0.name == "e2e_grouped" }?.samples.first)
            var expectedLabels = expectedGroup
            expectedLabels["job"] = nil
            #expect(sample.labels == expectedLabels)

            // prometheus_client pushing with the same grouping key lands in the same group:
            // its PUT replaces what we pushed, and no second group appears.
            let python = try ExternalTool.python.path()
            let program = """
                import sys
                from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
                r = CollectorRegistry()
                Gauge('from_python', 'Pushed by prometheus_client.', registry=r).set(1)
                push_to_gateway(sys.argv[1], job=sys.argv[2], registry=r, grouping_key=dict(a.split('=', 1) for a in sys.argv[3:]))
                """
            let py = try run(python, ["-c", program, gateway.url, "e2e/group"] + grouping.map { "\($0.key)=\($0.value)" }, timeout: 60)
            #expect(py.status == 0, "push_to_gateway failed: \(py.stderr)")
            #expect(try gateway.groups().map(\.labels) == [expectedGroup])
            #expect(try gateway.families(job: "e2e/group").map(\.name) == ["from_python"])
        }

        @Test(.timeLimit(.minutes(2)))
        func aRefusedPushExitsOneWithTheGatewaysReason() throws {
            let counter = TempDirectory("pmp-push-counter"); defer { counter.remove() }
            try writeWithPrometheusClient(counter, pid: "401", [["type": "counter", "name": "e2e_clash", "help": "A counter.", "op": "inc", "amount": 1]])
            // A gauge named like the counter's sample: the gateway keeps one type per name.
            let gauge = TempDirectory("pmp-push-gauge"); defer { gauge.remove() }
            try writeWithPrometheusClient(gauge, pid: "402", [["type": "gauge", "name": "e2e_clash_total", "help": "A gauge.", "mode": "max", "op": "set", "amount": 2]])
            let state = TempDirectory("pmp-push-state"); defer { state.remove() }
            let gateway = try startPushgateway(state: state)
            defer { gateway.child.stop() }

            let accepted = try cli(["push", "--gateway", gateway.url, "--job", "first", "--dir", counter.path, "--no-self-metrics"])
            #expect(accepted.status == 0, "push failed: \(accepted.stderr)")

            let clash = try cli(["push", "--gateway", gateway.url, "--job", "second", "--dir", gauge.path, "--no-self-metrics"])
            #expect(clash.status == 1)
            #expect(clash.stdout.isEmpty)
            #expect(clash.stderr.hasPrefix("prom-multiproc-cli push: POST \(gateway.url)/metrics/job/second: the gateway answered 400 Bad Request: "
                                           + "pushed metrics are invalid or inconsistent with existing metrics: "), "\(clash.stderr)")
            #expect(clash.stderr.contains("e2e_clash_total"))
            // The gateway's own record: the group of the refused push holds nothing but a
            // failure time, the other group is untouched.
            let groups = try gateway.groups().sorted { ($0.labels["job"] ?? "") < ($1.labels["job"] ?? "") }
            #expect(groups.map { $0.labels["job"] } == ["first", "second"])
            #expect(groups.map(\.lastPushSucceeded) == [true, false])
            #expect(groups.map { $0.failureTime > 0 } == [false, true])
            #expect(try gateway.families(job: "second").isEmpty)
            #expect(try gateway.families(job: "first").map(\.name) == ["e2e_clash"])

            let noJob = try cli(["push", "--gateway", gateway.url, "--job", "", "--dir", counter.path])
            #expect(noJob.status == 1)
            #expect(noJob.stderr == "prom-multiproc-cli push: POST \(gateway.url)/metrics/job@base64/=: the gateway answered 400 Bad Request: job name is required\n")

            let reserved = try cli(["push", "--gateway", gateway.url, "--job", "j", "--grouping", "__reserved=x", "--dir", counter.path])
            #expect(reserved.status == 1)
            #expect(reserved.stderr.contains("/metrics/job/j/__reserved/x: the gateway answered 400 Bad Request: improper label name \"__reserved\""),
                    "\(reserved.stderr)")
        }

        @Test(.timeLimit(.minutes(1)))
        func anUnreachableGatewayFailsQuicklyAndASilentOneWithinTheTimeout() throws {
            let dir = TempDirectory("pmp-push-unreachable"); defer { dir.remove() }
            let port = try freePort()  // closed again at once: nothing listens there
            var start = Date()
            let refused = try cli(["push", "--gateway", "http://127.0.0.1:\(port)", "--job", "j", "--dir", dir.path, "--timeout", "5"])
            #expect(Date().timeIntervalSince(start) < 2)
            #expect(refused.status == 1)
            #expect(refused.stderr == "prom-multiproc-cli push: POST http://127.0.0.1:\(port)/metrics/job/j: the gateway is unreachable: "
                                      + "connect(127.0.0.1:\(port)): Connection refused (errno 111)\n")

            // A listener that never accepts: the connection completes in the kernel's queue and
            // no answer ever comes.
            let (listener, silentPort) = try Sys.listenTCP(host: "127.0.0.1", port: 0)
            defer { Sys.close(listener) }
            start = Date()
            let silent = try cli(["push", "--gateway", "http://127.0.0.1:\(silentPort)", "--job", "j", "--dir", dir.path, "--timeout", "1"])
            let took = Date().timeIntervalSince(start)
            #expect(took >= 1 && took < 4, "took \(took) s")
            #expect(silent.status == 1)
            #expect(silent.stderr == "prom-multiproc-cli push: POST http://127.0.0.1:\(silentPort)/metrics/job/j: timed out: no response within 1 s\n")
        }
    }
}

@Suite("push: the command line")
struct PushCommandLineTests {
    @Test func helpNamesBothMethodsAndTheExitCodes() throws {
        let r = try cli(["push", "--help"])
        #expect(r.status == 0)
        for text in ["--gateway", "--job", "--grouping", "--replace", "--timeout", "POST (pushadd_to_gateway)", "PUT (push_to_gateway)",
                     "1 the push failed"] {
            #expect(r.stdout.contains(text), "missing \(text)")
        }
        #expect(try cli(["--help"]).stdout.contains("  push       push the merged metrics to a Prometheus Pushgateway"))
    }

    @Test(arguments: [
        (["--job", "j"], "--gateway URL is required"),
        (["--gateway", "http://127.0.0.1:9"], "--job NAME is required"),
        (["--gateway", "https://127.0.0.1:9", "--job", "j"], "https is not supported"),
        (["--gateway", "http://127.0.0.1:9", "--job", "j", "--grouping", "novalue"], "--grouping takes NAME=VALUE, not 'novalue'"),
        (["--gateway", "http://127.0.0.1:9", "--job", "j", "--grouping", "a=1", "--grouping", "a=2"], "--grouping a is given twice"),
        (["--gateway", "http://127.0.0.1:9", "--job", "j", "--grouping", "0a=1"], "'0a' is not a valid label name"),
        (["--gateway", "http://127.0.0.1:9", "--job", "j", "--grouping", "job=x"], "the job label is given by the job"),
        (["--gateway", "http://127.0.0.1:9", "--job", "j", "--timeout", "0"], "--timeout must be a number"),
    ])
    func usageErrorsExitTwoBeforeAnythingIsSent(arguments: [String], message: String) throws {
        let dir = TempDirectory("pmp-push-usage"); defer { dir.remove() }
        let r = try cli(["push"] + arguments + ["--dir", dir.path])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("prom-multiproc-cli push: "))
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }
}

// MARK: - A Pushgateway for one test

/// A Pushgateway started for one test.
struct StartedPushgateway {
    let child: LoggedChild
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    /// One group of the gateway (`/api/v1/metrics`).
    struct Group {
        var labels: [String: String]
        /// `push_time_seconds`: the last successful push (0 for none).
        var pushTime: Double
        /// `push_failure_time_seconds`: the last refused push (0 for none).
        var failureTime: Double
        /// `last_push_successful`.
        var lastPushSucceeded: Bool
    }

    /// The groups the gateway holds, as it reports them (in no particular order).
    func groups() throws -> [Group] {
        let response = try httpGet(port: port, "/api/v1/metrics", timeout: 5)
        guard response.status == 200, let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
              let data = object["data"] as? [[String: Any]] else {
            throw ClientError(description: "/api/v1/metrics: \(response.status) \(response.text)")
        }
        func time(_ group: [String: Any], _ name: String) -> Double {
            let metrics = (group[name] as? [String: Any])?["metrics"] as? [[String: Any]]
            return Double(metrics?.first?["value"] as? String ?? "") ?? 0
        }
        return data.map { group in
            Group(labels: group["labels"] as? [String: String] ?? [:], pushTime: time(group, "push_time_seconds"),
                  failureTime: time(group, "push_failure_time_seconds"),
                  lastPushSucceeded: group["last_push_successful"] as? Bool ?? false)
        }
    }

    /// The families the gateway exposes for `job`, read with prometheus_client's parser: only
    /// samples with that `job` label, without the labels the gateway adds (`job`, the empty
    /// `instance` it adds when the grouping key has none, and the grouping labels named) and
    /// without its `push_time_seconds` and `push_failure_time_seconds`.
    func families(job: String, groupingLabels: [String] = []) throws -> [Family] {
        let response = try httpGet(port: port, "/metrics", timeout: 5)
        guard response.status == 200 else { throw ClientError(description: "/metrics: \(response.status)") }
        let dropped = Set(["job"] + groupingLabels)
        return try parseFamilies(runPython("parse_text.py", [], input: response.text)).compactMap { family in
            if family.name == "push_time_seconds" || family.name == "push_failure_time_seconds" { return nil }
            var f = family
            f.samples = family.samples.filter { $0.labels["job"] == job }.map { s in
                var s = s
                s.labels = s.labels.filter { !dropped.contains($0.key) && !($0.key == "instance" && $0.value.isEmpty) }
                return s
            }
            return f.samples.isEmpty ? nil : f
        }
    }
}

/// Starts `prometheus-pushgateway` on a free 127.0.0.1 port under `timeout 300` (so it cannot
/// outlive a test process that dies before stopping it) and waits until `/-/ready` answers.
/// `--persistence.file=` keeps its metrics in memory: Debian's default writes them to
/// /var/lib/prometheus/pushgateway.data, which would outlive the test and be loaded by the next.
func startPushgateway(state: TempDirectory) throws -> StartedPushgateway {
    let binary = try ExternalTool.pushgateway.path()
    var lastLog = ""
    for attempt in 1...3 {
        let port = try freePort()
        let child = try startWithNoSignalBlocked("/usr/bin/timeout", [
            "300", binary, "--web.listen-address=127.0.0.1:\(port)", "--persistence.file=", "--log.level=info",
        ], log: state.file("pushgateway-\(attempt).log"))
        let ready = waitUntil(seconds: 20) {
            !child.process.isRunning || (try? httpGet(port: port, "/-/ready", timeout: 2).status) == 200
        }
        if ready && child.process.isRunning { return StartedPushgateway(child: child, port: port) }
        lastLog = child.log()
        _ = child.stop()
        if !lastLog.contains("address already in use") { break }
    }
    throw ClientError(description: "the pushgateway did not become ready:\n\(lastLog.suffix(3000))")
}

/// ``LoggedChild/start(_:_:environment:log:)`` from a thread of its own with no signal blocked.
///
/// A child inherits the signal mask of the thread that starts it, and the test runner's worker
/// threads block SIGTERM and SIGALRM among others: `timeout` started from one of them would
/// neither pass our SIGTERM on nor end at its limit (a Go program unblocks what it handles,
/// so the gateway alone would not need this).
func startWithNoSignalBlocked(_ path: String, _ arguments: [String], log: String) throws -> LoggedChild {
    let result = Locked<Result<LoggedChild, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    try Sys.startThread(name: "test-launcher") {
        Sys.unblockAllSignals()
        let started = Result { try LoggedChild.start(path, arguments, log: log) }
        result.withLock { $0 = started }
        done.signal()
    }
    guard done.wait(timeout: .now() + 30) == .success, let started = result.withLock({ $0 }) else {
        throw ClientError(description: "could not start \(path) in time")
    }
    return try started.get()
}

// MARK: - Families as prometheus_client sees them

/// One sample: its name, labels, and value as a canonical text (`12.0`, `+Inf`, `NaN`).
struct Sample: Hashable, Comparable, CustomStringConvertible {
    var name: String
    var labels: [String: String]
    var value: String

    static func < (a: Sample, b: Sample) -> Bool { a.description < b.description }
    var description: String {
        "\(name){\(labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.debugDescription)" }.joined(separator: ","))} \(value)"
    }
}

/// One family: name, type, help, and its samples in a canonical order.
struct Family: Equatable {
    var name: String
    var type: String
    var help: String
    var samples: [Sample]
}

/// Decodes the JSON of collect.py or parse_text.py (with JSONDecoder, which reads numbers
/// exactly; JSONSerialization on Linux rounds some, such as 0.30000000000000004). Bucket bounds
/// and quantiles are compared as numbers (`le="1.0"` from prometheus_client is `le="1"` from
/// the gateway).
func parseFamilies(_ result: ProcessResult) throws -> [Family] {
    struct Value: Decodable {
        var text: String
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let d = try? c.decode(Double.self) { text = "\(d)" } else { text = try c.decode(String.self) }
        }
    }
    struct RawSample: Decodable {
        var name: String
        var labels: [String: String]
        var value: Value
    }
    struct RawFamily: Decodable {
        var name: String
        var type: String
        var help: String
        var samples: [RawSample]
    }
    guard result.status == 0 else {
        throw ClientError(description: "the Python helper failed (\(result.status)): \(result.stderr)")
    }
    func number(_ text: String) -> String { Double(text).map { "\($0)" } ?? text }
    return try JSONDecoder().decode([RawFamily].self, from: Data(result.stdout.utf8)).map { f in
        let samples = f.samples.map { s in
            var labels = s.labels
            for key in ["le", "quantile"] { labels[key] = labels[key].map(number) }
            return Sample(name: s.name, labels: labels, value: number(s.value.text))
        }
        return Family(name: f.name, type: f.type, help: f.help, samples: samples.sorted())
    }
}

/// What differs between two lists of families, for a failure message.
func difference(_ a: [Family], _ b: [Family]) -> String {
    var lines: [String] = []
    for name in Set(a.map(\.name) + b.map(\.name)).sorted() {
        let x = a.first { $0.name == name }, y = b.first { $0.name == name }
        guard let x, let y else { lines.append("\(name): only in \(x == nil ? "the second" : "the first")"); continue }
        if x.type != y.type || x.help != y.help { lines.append("\(name): \(x.type) \(x.help.debugDescription) vs \(y.type) \(y.help.debugDescription)") }
        for s in Set(x.samples).symmetricDifference(Set(y.samples)).sorted() {
            lines.append("  \(Set(x.samples).contains(s) ? "-" : "+") \(s)")
        }
    }
    return lines.joined(separator: "\n")
}

/// Writes `operations` (scripts/python/write.py's JSON) as prometheus_client process `pid`.
func writeWithPrometheusClient(_ dir: TempDirectory, pid: String, _ operations: [[String: Any]]) throws {
    let spec = String(decoding: try JSONSerialization.data(withJSONObject: operations), as: UTF8.self)
    let r = try runPython("write.py", [dir.path, pid, "-"], input: spec)
    guard r.status == 0 else { throw ClientError(description: "write.py failed: \(r.stderr)") }
}
