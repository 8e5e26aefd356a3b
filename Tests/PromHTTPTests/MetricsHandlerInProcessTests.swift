// What the handler exports beyond the directory: custom collectors and function gauges of the
// server's registry, and the server's process metrics when no directory is merged.
import Foundation
import MmapStore
import MultiprocessCollector
import PromHTTP
import PromMetrics
import Synchronization
import Testing
import TestSupport

/// A custom collector, as an application writes one: jobs by state, from its own bookkeeping.
private final class JobStateCollector: MetricCollectable {
    let name = "jobs_by_state"
    var sampleNames: [String] { [name] }
    func collect() -> [MetricFamilySnapshot] {
        [MetricFamilySnapshot(name: name, kind: .gauge, help: "Jobs by state.", samples: [
            Sample(name: name, labels: [Label("state", "queued")], value: 4),
            Sample(name: name, labels: [Label("state", "running")], value: 2),
        ])]
    }
}

private func body(_ handler: MetricsHandler) -> String {
    String(decoding: handler.respond(method: "GET").body, as: UTF8.self)
}

private func lines(_ body: String, startingWith prefix: String) -> [Substring] {
    body.split(separator: "\n").filter { $0.hasPrefix(prefix) }
}

@Suite struct MetricsHandlerInProcessTests {
    @Test func aCustomCollectorOfTheRegistryIsExportedWithAndWithoutADirectory() throws {
        let server = Registry()
        try server.register(JobStateCollector())
        let dir = TempDirectory("pmp-handler"); defer { dir.remove() }
        for handler in [MetricsHandler(collector: nil, registry: server),
                        MetricsHandler(directory: dir.path, registry: server)] {
            let text = body(handler)
            #expect(text.contains("""
                # HELP jobs_by_state Jobs by state.
                # TYPE jobs_by_state gauge
                jobs_by_state{state="queued"} 4.0
                jobs_by_state{state="running"} 2.0

                """))
        }
    }

    /// A registry whose metrics write into the merged directory (`Registry.default` in
    /// multiprocess mode): its metrics come from the merge, once; its custom collectors are
    /// read from the registry.
    @Test func aCustomCollectorOfARegistryWritingIntoTheDirectoryIsExported() throws {
        let dir = TempDirectory("pmp-handler"); defer { dir.remove() }
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("11"))
        defer { storage.store?.close() }
        let registry = Registry(storage: storage)
        try Counter("jobs_done_total", help: "Jobs done.", registry: registry).increment(by: 5)
        try registry.register(JobStateCollector())
        let text = body(MetricsHandler(directory: dir.path, registry: registry, processMetrics: false))
        #expect(lines(text, startingWith: "jobs_done_total").count == 1)
        #expect(text.contains("jobs_done_total 5.0\n"))
        #expect(text.contains(#"jobs_by_state{state="queued"} 4.0"#))
    }

    @Test func aFunctionGaugeIsComputedAtEveryScrape() throws {
        let server = Registry()
        let calls = Atomic<Int>(0)
        let gauge = try Gauge("scrape_calls", help: "Times the function ran.", registry: server) {
            Double(calls.add(1, ordering: .relaxed).newValue)
        }
        gauge.set(100)  // no effect on what is exported
        let handler = MetricsHandler(collector: nil, registry: server)
        #expect(body(handler).contains("# TYPE scrape_calls gauge\nscrape_calls 1.0\n"))
        #expect(body(handler).contains("scrape_calls 2.0\n"))
        let dir = TempDirectory("pmp-handler"); defer { dir.remove() }
        #expect(body(MetricsHandler(directory: dir.path, registry: server)).contains("scrape_calls 3.0\n"))
    }

    @Test func aFunctionGaugeIsRefusedInMultiprocessMode() throws {
        let dir = TempDirectory("pmp-handler"); defer { dir.remove() }
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("11"))
        defer { storage.store?.close() }
        let registry = Registry(storage: storage)
        let error = #expect(throws: MetricError.self) {
            try Gauge("queue_length", help: "Queued.", namespace: "app", registry: registry) { 1 }
        }
        #expect(error?.metric == "app_queue_length")
        #expect(error?.reason.contains("cannot be shared through the multiprocess directory") == true)
        #expect(registry.collect().isEmpty, "nothing registered")
        #expect(dir.names().isEmpty, "nothing written")
    }

    /// Without a directory the process metrics are the server's, unlabelled: what
    /// prometheus_client's default registry exports.
    @Test func withoutADirectoryTheProcessMetricsAreTheServersUnlabelled() throws {
        let text = body(MetricsHandler(collector: nil, registry: Registry()))
        for name in ["process_cpu_seconds_total", "process_max_fds", "process_open_fds", "process_resident_memory_bytes",
                     "process_start_time_seconds", "process_virtual_memory_bytes"] {
            #expect(lines(text, startingWith: name + " ").count == 1, "\(name) in\n\(text)")
        }
        #expect(text.contains("# TYPE process_cpu_seconds_total counter\n"))
        #expect(!text.contains("pid="))
        #expect(!body(MetricsHandler(collector: nil, registry: Registry(), processMetrics: false)).contains("process_"))
    }

    /// A `process_*` family of the application's registry is exported instead of ours.
    @Test func theApplicationsOwnProcessFamilyWins() throws {
        let server = Registry()
        try Gauge("process_open_fds", help: "The application's own.", registry: server).set(7)
        let text = body(MetricsHandler(collector: nil, registry: server))
        #expect(lines(text, startingWith: "process_open_fds").count == 1)
        #expect(text.contains("# HELP process_open_fds The application's own.\n# TYPE process_open_fds gauge\nprocess_open_fds 7.0\n"))
        #expect(lines(text, startingWith: "process_max_fds ").count == 1, "the other families stay")
    }
}
