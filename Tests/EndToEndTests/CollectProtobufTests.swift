import Foundation
import PromMetrics
import Testing
import TestSupport

/// `collect --format protobuf` writes the delimited MetricFamily messages, read back by Python's
/// protobuf (scripts/python/proto_check.py).
@Suite struct CollectProtobufTests {
    @Test func collectWritesProtobufThatPythonReads() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let out = TempDirectory("pmp-out"); defer { out.remove() }
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("5"))
        let registry = Registry(storage: storage)
        let jobs = try Counter("jobs", help: "Jobs.", labelNames: ["queue"], registry: registry)
        jobs.labels("a").increment(by: 3)
        let latency = try Histogram("latency_seconds", help: "Latency.", buckets: [0.1, 1], registry: registry)
        latency.observe(0.5)
        storage.store?.close()

        let r = try cli(["collect", "--dir", dir.path, "--format", "protobuf", "--no-self-metrics",
                         "--output", out.file("metrics.bin")])
        #expect(r.status == 0, "\(r.stderr)")
        let decoded = try runPython("proto_check.py", ["--summary", out.file("metrics.bin")])
        #expect(decoded.status == 0, "\(decoded.stderr)")
        #expect(decoded.stdout == """
            {"name": "jobs_total", "type": 0, "metrics": 1, "unit": null}
            {"name": "latency_seconds", "type": 4, "metrics": 1, "unit": null}

            """)
        let usage = try cli(["collect", "--dir", dir.path, "--format", "xml"])
        #expect(usage.status == 2 && usage.stderr.contains("text, openmetrics or protobuf"))
    }
}
