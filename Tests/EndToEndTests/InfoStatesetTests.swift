// Info and Enum written by two live worker processes (prom-multiproc-testworker info-enum):
// typed `info` and `stateset` in OpenMetrics through the metadata files, gauges in text 0.0.4,
// and prometheus_client's collector sees the same gauges as before. Expected values come from
// prometheus_client's own MultiProcessCollector on the directory; OpenMetrics is checked by its
// strict parser, the text by promtool.
import Foundation
import MultiprocessCollector
import PromHTTP
import Testing
import TestSupport

@Suite struct InfoStatesetTests {
    /// Two workers: versions 1.2 and 1.3, states running and done.
    private func workers(_ dir: TempDirectory) throws -> [LineChild] {
        let children = try [("1.2", "running"), ("1.3", "done")].map { version, state in
            try LineChild(executable("prom-multiproc-testworker"), ["info-enum", dir.path, version, state])
        }
        for child in children { #expect(child.readLine() == "ready") }
        return children
    }

    @Test func openMetricsTypesInfoAndStatesetAsPrometheusClientsGaugesSay() throws {
        let dir = TempDirectory("pmp-info"); defer { dir.remove() }
        let children = try workers(dir)
        defer { for c in children { c.finish() } }
        #expect(dir.names().contains { $0.hasPrefix("meta_") && $0.hasSuffix(".pmm") }, "\(dir.names())")

        let handler = MetricsHandler(collector: MultiProcessCollector(directory: dir.path, includeSelfMetrics: false),
                                     processMetrics: false)
        let om = String(decoding: handler.respond(
            method: "GET", headers: [HTTPHeader(name: "Accept", value: "application/openmetrics-text; version=1.0.0")]).body,
                        as: UTF8.self)
        let text = String(decoding: handler.respond(method: "GET").body, as: UTF8.self)

        // prometheus_client's view of the same files: gauges. The typed view we must give is
        // derived from it: an info holds the `_info` samples at 1, a stateset every state.
        let script = #"""
            import json, sys
            from prometheus_client import CollectorRegistry, generate_latest
            from prometheus_client.multiprocess import MultiProcessCollector
            from prometheus_client.openmetrics.parser import text_string_to_metric_families as strict
            from prometheus_client.parser import text_string_to_metric_families as lenient

            r = CollectorRegistry()
            MultiProcessCollector(r, path=sys.argv[1])
            python_text = generate_latest(r).decode()
            gauges = {f.name: f for f in lenient(python_text)}
            assert gauges["build_info"].type == "gauge" and gauges["task_state"].type == "gauge", python_text
            expected = sorted(
                [["build", "info", s.name, sorted(s.labels.items()), s.value] for s in gauges["build_info"].samples if s.value == 1]
                + [["task_state", "stateset", s.name, sorted(s.labels.items()), s.value] for s in gauges["task_state"].samples])
            # The handler's own scrape counter is not the directory's.
            ours_om = sorted([f.name, f.type, s.name, sorted(s.labels.items()), s.value]
                             for f in strict(open(sys.argv[2]).read()) for s in f.samples if f.name != "prom_multiproc_scrapes")
            def content(body):
                return sorted([f.name, f.type, s.name, sorted(s.labels.items()), s.value]
                              for f in lenient(body) for s in f.samples if not f.name.startswith("prom_multiproc_scrapes"))
            ours_text = content(open(sys.argv[3]).read())
            problems = []
            if ours_om != expected: problems.append(f"openmetrics: {ours_om}\nexpected {expected}")
            if ours_text != content(python_text): problems.append(f"text: {ours_text}\nprometheus_client {content(python_text)}")
            print("\n".join(problems) if problems else json.dumps(expected))
            """#
        try om.write(toFile: dir.file("om.txt"), atomically: true, encoding: .utf8)
        try text.write(toFile: dir.file("text.txt"), atomically: true, encoding: .utf8)
        let compared = try run(try ExternalTool.python.path(), ["-c", script, dir.path, dir.file("om.txt"), dir.file("text.txt")])
        #expect(compared.status == 0, "\(compared.stderr)")
        // Both workers' versions at 1 (the replaced version "0" left out); running and done at 1.
        #expect(compared.stdout == """
            [["build", "info", "build_info", [["component", "api"], ["version", "1.2"]], 1.0], \
            ["build", "info", "build_info", [["component", "api"], ["version", "1.3"]], 1.0], \
            ["task_state", "stateset", "task_state", [["task_state", "done"]], 1.0], \
            ["task_state", "stateset", "task_state", [["task_state", "idle"]], 0.0], \
            ["task_state", "stateset", "task_state", [["task_state", "running"]], 1.0]]

            """, "\(compared.stdout)\n\(om)")
        #expect(om.contains("# TYPE build info\n") && om.contains("# TYPE task_state stateset\n"), "\(om)")
        #expect(text.contains("# TYPE build_info gauge\n") && text.contains("# TYPE task_state gauge\n"), "\(text)")
        let promtool = try run(try ExternalTool.promtool.path(), ["check", "metrics"], input: text)
        #expect(promtool.status == 0, "promtool: \(promtool.stdout)\(promtool.stderr)")

        // The CLI gives the same typed OpenMetrics.
        let cliOM = try cli(["collect", "--dir", dir.path, "--format", "openmetrics", "--no-self-metrics"])
        let withoutScrapes = om.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.contains("prom_multiproc_scrapes") }.joined(separator: "\n")
        #expect(cliOM.status == 0 && cliOM.stdout == withoutScrapes, "\(cliOM.stderr)\n\(cliOM.stdout)")
    }

    /// A damaged metadata file is skipped and reported; the families stay gauges, their values
    /// all there.
    @Test func damagedMetadataFileIsReportedAndTheFamiliesStayGauges() throws {
        let dir = TempDirectory("pmp-info"); defer { dir.remove() }
        let children = try workers(dir)
        defer { for c in children { c.finish() } }
        for name in dir.names() where name.hasPrefix("meta_") {
            // A key length far past the end of the file.
            let handle = try #require(FileHandle(forWritingAtPath: dir.file(name)))
            try handle.seek(toOffset: 8)
            handle.write(Data([0xFF, 0xFF, 0x00, 0x00]))
            try handle.close()
        }
        let result = MultiProcessCollector(directory: dir.path, includeSelfMetrics: false)
            .collect(including: [], alongside: { _ in [] }, typesFromMetadata: true)
        #expect(result.problems.count == 2 && result.problems.allSatisfy { $0.path.hasSuffix(".pmm") }, "\(result.problems)")
        #expect(result.families.map { "\($0.name) \($0.kind)" } == ["build_info gauge", "task_state gauge"])
        #expect(result.families.map(\.samples.count) == [3, 3], "version 0, 1.2 and 1.3; three states")
    }
}
