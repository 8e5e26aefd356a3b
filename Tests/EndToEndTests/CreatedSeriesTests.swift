// `_created` in multiprocess mode: two worker processes (prom-multiproc-testworker created)
// create the same series one after the other and exit; the merge exports, per series, the
// first one's creation time, placed as prometheus_client's single-process mode places it (its
// own output for the same metrics is the reference), through compaction and a compactor
// killed mid-way, and not at all when turned off.
import Foundation
import MultiprocessCollector
import PromHTTP
import PromMetrics
import Testing
import TestSupport

private let openMetricsAccept = [HTTPHeader(name: "Accept", value: "application/openmetrics-text; version=1.0.0")]

/// The OpenMetrics answer of a quiet handler (no self-metrics, no process metrics).
private func openMetrics(_ dir: TempDirectory, createdSeries: Bool? = nil) -> String {
    let handler = MetricsHandler(collector: MultiProcessCollector(directory: dir.path, includeSelfMetrics: false),
                                 processMetrics: false, createdSeries: createdSeries)
    return String(decoding: handler.respond(method: "GET", query: "name[]=jobs_total&name[]=jobs_created"
        + "&name[]=latency_seconds_bucket&name[]=latency_seconds_count&name[]=latency_seconds_sum&name[]=latency_seconds_created"
        + "&name[]=size_bytes_count&name[]=size_bytes_sum&name[]=size_bytes_created", headers: openMetricsAccept).body, as: UTF8.self)
}

/// Runs the `created` worker; returns the wall-clock interval around its creating the series.
private func createdWorker(_ dir: TempDirectory) throws -> (before: Double, after: Double) {
    let r = try run(executable("prom-multiproc-testworker"), ["created", dir.path])
    let parts = r.stdout.split(whereSeparator: \.isWhitespace)
    guard r.status == 0, parts.count == 3, parts[0] == "created", let before = Double(parts[1]), let after = Double(parts[2]) else {
        throw CreatedTestError(description: "worker: \(r.status) \(r.stdout) \(r.stderr)")
    }
    return (before, after)
}

private struct CreatedTestError: Error, CustomStringConvertible {
    var description: String
}

/// Parses `body` with prometheus_client's strict OpenMetrics parser and prints, per sample in
/// order, `family type sample labels`, then every `_created` value; checks that the layout
/// (values aside) is the one prometheus_client's single-process registry gives the same
/// metrics, and that every sample but `_created` equals prometheus_client's view of the files.
private func checkWithPrometheusClient(_ body: String, directory: String) throws -> [Double] {
    let script = #"""
        import json, sys
        from prometheus_client import CollectorRegistry, Counter, Histogram, Summary, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector
        from prometheus_client.openmetrics.exposition import generate_latest as om_latest
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as strict

        def layout(text):
            return [[f.name, f.type, s.name, sorted(s.labels.items())] for f in strict(text) for s in f.samples]

        single = CollectorRegistry()
        Counter("jobs", "Jobs.", ["queue"], registry=single).labels("a").inc(2)
        Histogram("latency_seconds", "Latency.", buckets=[0.5, 1], registry=single).observe(0.25)
        Summary("size_bytes", "Size.", registry=single).observe(3)
        ours = sys.stdin.read()
        problems = []
        if layout(ours) != layout(om_latest(single).decode()):
            problems.append(f"layout: {layout(ours)}\nsingle-process prometheus_client: {layout(om_latest(single).decode())}")
        files = CollectorRegistry()
        MultiProcessCollector(files, path=sys.argv[1])
        def values(text):
            return sorted([s.name, sorted(s.labels.items()), s.value] for f in strict(text) for s in f.samples
                          if not s.name.endswith("_created"))
        if values(ours) != values(om_latest(files).decode()):
            problems.append(f"values: {values(ours)}\nprometheus_client: {values(om_latest(files).decode())}")
        if problems:
            print("\n".join(problems)); sys.exit(1)
        print(json.dumps([s.value for f in strict(ours) for s in f.samples if s.name.endswith("_created")]))
        """#
    let r = try run(try ExternalTool.python.path(), ["-c", script, directory], input: body)
    guard r.status == 0, let created = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [Double] else {
        throw CreatedTestError(description: "\(r.stdout)\(r.stderr)\n\(body)")
    }
    return created
}

@Suite struct CreatedSeriesTests {
    @Test func earliestCreationAcrossProcessesSurvivesCompactionAndACompactorCrash() throws {
        let dir = TempDirectory("pmp-created"); defer { dir.remove() }
        let first = try createdWorker(dir)
        let second = try createdWorker(dir)
        #expect(second.before >= first.after)

        let body = openMetrics(dir)
        let created = try checkWithPrometheusClient(body, directory: dir.path)
        #expect(created.count == 3, "one per series: jobs{queue=a}, latency_seconds, size_bytes")
        for c in created { #expect(c >= first.before && c <= first.after, "\(c) not in the first worker's [\(first.before), \(first.after)]") }

        // Protobuf carries the same times as `created_timestamp` (read by Google's protobuf).
        let out = TempDirectory("pmp-created-out"); defer { out.remove() }
        let proto = try cli(["collect", "--dir", dir.path, "--no-self-metrics", "--format", "protobuf", "--output", out.file("m.bin")])
        #expect(proto.status == 0, "\(proto.stderr)")
        let decoded = try runPython("proto_check.py", [out.file("m.bin")])
        #expect(decoded.status == 0, "\(decoded.stderr)")
        let stamps = decoded.stdout.components(separatedBy: "created_timestamp {").dropFirst().map { block -> Double in
            func field(_ name: String) -> Double {
                guard let line = block.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(name + ":") })
                else { return 0 }
                return Double(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? -1
            }
            return field("seconds") + field("nanos") / 1e9
        }
        #expect(stamps.count == 3, "\(decoded.stdout)")
        for t in stamps { #expect(t >= first.before - 1e-6 && t <= first.after + 1e-6, "\(t)") }

        // Killed after hiding the sources, then completed by a second run: same answer.
        let killed = try run(executable("prom-multiproc-testworker"), ["compact-crash-after", dir.path, "sources-hidden"])
        #expect(killed.signaled, "\(killed.stdout)\(killed.stderr)")
        #expect(openMetrics(dir) == body, "after a compactor killed mid-way")
        let compacted = try cli(["compact", "--dir", dir.path])
        #expect(compacted.status == 0, "\(compacted.stderr)")
        #expect(!dir.names().contains { $0.hasPrefix("counter_") && !$0.contains("archive") }, "\(dir.names())")
        #expect(openMetrics(dir) == body, "after compaction")
        _ = try checkWithPrometheusClient(openMetrics(dir), directory: dir.path)
    }

    @Test func textFormatAndTheOffSwitchesHaveNoCreated() throws {
        let dir = TempDirectory("pmp-created"); defer { dir.remove() }
        _ = try createdWorker(dir)
        #expect(openMetrics(dir).contains("jobs_created{queue=\"a\"} "))
        #expect(!openMetrics(dir, createdSeries: false).contains("_created"))
        let text = try cli(["collect", "--dir", dir.path, "--no-self-metrics"])
        #expect(text.status == 0 && text.stdout.contains("jobs_total") && !text.stdout.contains("_created"), "\(text.stdout)")
        let on = try cli(["collect", "--dir", dir.path, "--no-self-metrics", "--format", "openmetrics"])
        #expect(on.stdout.contains("jobs_created{queue=\"a\"} "), "\(on.stdout)")
        let flag = try cli(["collect", "--dir", dir.path, "--no-self-metrics", "--format", "openmetrics", "--no-created"])
        #expect(flag.status == 0 && flag.stdout.contains("jobs_total") && !flag.stdout.contains("_created"), "\(flag.stdout)")
        let env = try cli(["collect", "--dir", dir.path, "--no-self-metrics", "--format", "openmetrics"],
                          environment: ["PROMETHEUS_DISABLE_CREATED_SERIES": "True"])
        #expect(env.status == 0 && env.stdout.contains("jobs_total") && !env.stdout.contains("_created"), "\(env.stdout)")
    }

    /// The environment variable is read as prometheus_client reads it.
    @Test func environmentVariableIsReadAsPrometheusClientReadsIt() throws {
        let values = ["true", "True", "TRUE", "1", "t", "T", "false", "0", "yes", "", " true", "on", "İ"]
        let script = #"""
            import json, sys
            print(json.dumps([v.lower() in ("true", "1", "t") for v in json.loads(sys.stdin.read())]))
            """#
        let input = String(decoding: try JSONSerialization.data(withJSONObject: values), as: UTF8.self)
        let r = try run(try ExternalTool.python.path(), ["-c", script], input: input)
        let theirs = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [Bool] ?? []
        #expect(theirs.count == values.count, "\(r.stderr)")
        for (value, disabled) in zip(values, theirs) {
            #expect(CreatedSeries.disabledByEnvironment(lookup: { _ in value }) == disabled, "PROMETHEUS_DISABLE_CREATED_SERIES=\(value)")
        }
        #expect(CreatedSeries.disabledByEnvironment(lookup: { _ in nil }) == false)
    }
}
