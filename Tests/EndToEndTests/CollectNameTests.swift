import Foundation
import PromMetrics
import Testing
import TestSupport

/// `collect --name` keeps the samples prometheus_client's `restricted_registry` keeps for the
/// same directory (compared after parsing both outputs).
@Suite struct CollectNameTests {
    @Test func collectNameKeepsWhatRestrictedRegistryKeeps() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("5"))
        let registry = Registry(storage: storage)
        let jobs = try Counter("jobs", help: "Jobs.", labelNames: ["queue"], registry: registry)
        jobs.labels("a").increment(by: 3)
        jobs.labels("b").increment()
        let latency = try Histogram("latency_seconds", help: "Latency.", buckets: [0.1, 1], registry: registry)
        latency.observe(0.5)
        try Gauge("depth", help: "Depth.", mode: .sum, registry: registry).set(2)
        storage.store?.close()

        let names = ["jobs_total", "latency_seconds_bucket", "latency_seconds_sum", "nothing"]
        let r = try cli(["collect", "--dir", dir.path, "--no-self-metrics"] + names.flatMap { ["--name", $0] })
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.contains("depth"))
        let script = #"""
            import sys
            from prometheus_client import CollectorRegistry, generate_latest
            from prometheus_client.multiprocess import MultiProcessCollector
            from prometheus_client.parser import text_string_to_metric_families as parse

            r = CollectorRegistry(support_collectors_without_names=True)
            MultiProcessCollector(r, path=sys.argv[1])
            def content(text):
                return sorted([f.name, f.type, s.name, sorted(s.labels.items()), repr(s.value)]
                              for f in parse(text) for s in f.samples)
            theirs = content(generate_latest(r.restricted_registry(sys.argv[2:])).decode())
            ours = content(sys.stdin.read())
            print(len(ours) if theirs == ours else f"prometheus_client {theirs}\nours {ours}")
            """#
        let compared = try run(try ExternalTool.python.path(), ["-c", script, dir.path] + names,
                               environment: ["PROMETHEUS_DISABLE_CREATED_SERIES": "True"], input: r.stdout)
        #expect(compared.status == 0, "\(compared.stderr)")
        // 2 counter series, 3 buckets and 1 _sum.
        #expect(compared.stdout == "6\n", "\(compared.stdout)")
    }
}
