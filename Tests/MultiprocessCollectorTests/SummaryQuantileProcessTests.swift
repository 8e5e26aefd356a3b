import Foundation
import MmapStore
import MultiprocessCollector
import PromExposition
import PromMetrics
import Testing
import TestSupport

/// Summary quantiles written by real processes (`prom-multiproc-testworker summary-observe`,
/// Sources/prom-multiproc-testworker/QuantileModes.swift), merged across processes: each
/// reported quantile is within the chosen relative error of the exact quantile of every
/// process's observations, the window forgets, prometheus_client still reads `_count` and
/// `_sum`, and the exposition passes the validators.
///
/// The exact quantile is computed here from the values the workers print: the observation of
/// rank `max(1, ceil(q * n))` in ascending order (the nearest rank, as client_golang's exact
/// streams answer); the bound is the DDSketch bound `(g - 1) / (g + 1)` the user asked for.
@Suite(.serialized) struct SummaryQuantileProcessTests {
    static let family = "quantile_e2e_seconds"
    static let objectives: [Double] = [0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1]

    func collect(_ dir: TempDirectory) -> CollectResult {
        MultiProcessCollector(directory: dir.path, includeSelfMetrics: false, reporter: ProblemReporter { _ in }).collect()
    }

    /// Runs `summary-observe` workers at once; returns every value they observed.
    func observe(_ dir: TempDirectory, _ workers: [[String]]) throws -> [Double] {
        try observeInWorkers("summary-observe", dir, workers)
    }

    /// The reported quantiles of route `/a`, by objective.
    func quantiles(_ families: [MetricFamilySnapshot], route: String = "/a") -> [Double: Double] {
        var out: [Double: Double] = [:]
        for s in families.first(where: { $0.name == Self.family })?.samples ?? [] where s.name == Self.family {
            guard s.labels.contains(Label("route", route)),
                  let q = s.labels.first(where: { $0.name == "quantile" }).flatMap({ Double($0.value) }) else { continue }
            out[q] = s.value
        }
        return out
    }

    static func exact(_ sorted: [Double], _ q: Double) -> Double {
        let rank = max(1, Int((q * Double(sorted.count)).rounded(.up)))
        return sorted[rank - 1]
    }

    /// The relative error of schema n, from the formula: g = 2^(2^-n), (g - 1) / (g + 1).
    static func bound(_ relativeError: Double) -> Double {
        var best = 0.0
        for n in -4...8 {
            let g = pow(2, pow(2, -Double(n)))
            let alpha = (g - 1) / (g + 1)
            if alpha <= relativeError { best = alpha; break }
        }
        return best
    }

    @Test(.timeLimit(.minutes(2)), arguments: [("uniform", 0.01), ("lognormal", 0.005), ("signed", 0.02), ("lognormal", 0.05)])
    func fourProcessesReportQuantilesWithinTheRelativeErrorOfAllObservations(distribution: String, relativeError: Double) throws {
        let dir = TempDirectory("pmp-quantiles"); defer { dir.remove() }
        let values = try observe(dir, (1...4).map { seed in
            [distribution, "2500", String(seed * 7919), String(relativeError), "600", "5"]
        })
        #expect(values.count == 10_000)
        let result = collect(dir)
        #expect(result.problems.isEmpty, "\(result.problems)")
        let reported = quantiles(result.families)
        #expect(reported.keys.sorted() == Self.objectives)
        let sorted = values.sorted()
        let alpha = Self.bound(relativeError)
        #expect(alpha > 0 && alpha <= relativeError)
        for q in Self.objectives {
            let exact = Self.exact(sorted, q)
            let estimate = try #require(reported[q])
            // The bound, plus a few ulps for the rounding of the estimate itself.
            #expect(abs(estimate - exact) <= alpha * abs(exact) * (1 + 1e-12),
                    "q=\(q): reported \(estimate), exact \(exact), relative error \(abs(estimate - exact) / abs(exact)) > \(alpha)")
        }
        let family = try #require(result.family(Self.family))
        #expect(family.value(Self.family + "_count", ["route": "/a"]) == 10_000)
        let sum = try #require(family.value(Self.family + "_sum", ["route": "/a"]))
        #expect(abs(sum - values.reduce(0, +)) <= 1e-9 * values.map(abs).reduce(0, +))
    }

    /// A window of 8 s in 4 age buckets: observations older than the window no longer count
    /// in the quantiles (they do in `_count` and `_sum`), and an empty window reports NaN.
    /// (8 s, not less: spawning the second workers and collecting must fit in the window on
    /// a loaded 2-core machine under the thread sanitizer; 3 s did not.)
    @Test(.timeLimit(.minutes(2)))
    func theWindowForgetsOldObservations() throws {
        let dir = TempDirectory("pmp-quantiles-window"); defer { dir.remove() }
        _ = try observe(dir, [["constant:100", "1000", "1", "0.01", "8", "4"]])
        let first = quantiles(collect(dir).families)
        #expect(Self.objectives.allSatisfy { abs((first[$0] ?? 0) - 100) <= 1 }, "\(first)")
        // An age bucket of period p expires at p + 8 s: 8.1 s after the last observation, every
        // age bucket holding it has.
        Thread.sleep(forTimeInterval: 8.1)
        _ = try observe(dir, [["constant:2", "500", "2", "0.01", "8", "4"], ["constant:2", "500", "3", "0.01", "8", "4"]])
        let second = collect(dir)
        let recent = quantiles(second.families)
        #expect(Self.objectives.allSatisfy { abs((recent[$0] ?? 0) - 2) <= 0.02 }, "old observations still count: \(recent)")
        #expect(second.family(Self.family)?.value(Self.family + "_count", ["route": "/a"]) == 2000)
        Thread.sleep(forTimeInterval: 8.1)
        let empty = collect(dir)
        let none = quantiles(empty.families)
        #expect(none.keys.sorted() == Self.objectives)
        #expect(none.values.allSatisfy { $0.isNaN }, "an empty window must report NaN: \(none)")
        #expect(empty.family(Self.family)?.value(Self.family + "_sum", ["route": "/a"]) == 102_000)
    }

    /// prometheus_client's MultiProcessCollector reads the directory without error and finds
    /// every sample of ours but the quantiles (which it has no place for): `_count` and `_sum`
    /// are unchanged by the quantile window beside them.
    @Test(.timeLimit(.minutes(2)))
    func prometheusClientReadsCountAndSumUnchanged() throws {
        let dir = TempDirectory("pmp-quantiles-python"); defer { dir.remove() }
        _ = try observe(dir, [["uniform", "300", "5", "0.01", "600", "5"], ["signed", "300", "6", "0.01", "600", "5", "/b"]])
        #expect(dir.names().filter { $0.hasSuffix(".pmh") }.count == 2)
        let python = try pythonCollect(dir.path)
        let ours = collect(dir)
        #expect(ours.problems.isEmpty)
        let withoutQuantiles = flatten(ours.families).filter { $0.name != Self.family }
        #expect(withoutQuantiles == python)
        #expect(python.contains { $0.name == Self.family + "_count" && $0.labels == ["route": "/b"] && $0.value == "300.0" })
        #expect(flatten(ours.families).filter { $0.name == Self.family }.count == 2 * Self.objectives.count)
    }

    /// The merged quantiles in OpenMetrics pass prometheus_client's strict parser, in text
    /// pass promtool, and in protobuf decode (protoc) as `Summary.quantile` entries; an
    /// empty window's NaN passes too.
    @Test(.timeLimit(.minutes(2)))
    func quantileExpositionPassesTheValidators() throws {
        let dir = TempDirectory("pmp-quantiles-expo"); defer { dir.remove() }
        _ = try observe(dir, [["lognormal", "500", "8", "0.01", "600", "5"], ["signed", "500", "9", "0.01", "1", "1", "/b"],
                              ["signed", "500", "10", "0.01", "600", "5", "/c"]])
        // Route /b's 1 s window is over: its quantiles are NaN.
        Thread.sleep(forTimeInterval: 1.1)
        let families = collect(dir).families
        #expect(quantiles(families, route: "/b").values.allSatisfy { $0.isNaN })
        let om = Exposition.render(families, format: .openMetrics)
        let omText = String(decoding: om, as: UTF8.self)
        #expect(omText.contains("quantile_e2e_seconds{quantile=\"0.5\",route=\"/a\"} "), "\(omText)")
        #expect(omText.contains("quantile_e2e_seconds{quantile=\"0.99\",route=\"/b\"} NaN\n"), "\(omText)")
        let strict = try runPython("om_check.py", [], input: omText)
        #expect(strict.status == 0, "\(strict.stderr)")
        let text = Exposition.render(families, format: .prometheusText)
        let promtool = try run(try ExternalTool.promtool.path(), ["check", "metrics"], input: String(decoding: text, as: UTF8.self))
        #expect(promtool.status == 0, "promtool: \(promtool.stdout)\(promtool.stderr)")
        let decoded = try ExpositionProtobufTests.decoded(Exposition.render(families, format: .protobuf))
        #expect(decoded.components(separatedBy: "quantile {").count - 1 == 3 * Self.objectives.count, "\(decoded)")
        // OpenMetrics 1.0 has no negative quantiles nor a negative summary sum: route /c's
        // lower quantiles (and /b's and /c's sums, when negative) are in text and protobuf only.
        let negative = quantiles(families, route: "/c").filter { $0.value < 0 }.map(\.key).sorted()
        #expect(!negative.isEmpty && negative.allSatisfy { $0 < 0.5 }, "\(negative)")
        let textBody = String(decoding: text, as: UTF8.self)
        for q in negative {
            let line = "quantile_e2e_seconds{quantile=\"\(GoFloat.format(q))\",route=\"/c\"} "
            #expect(textBody.contains(line) && !omText.contains(line), "\(line)")
        }
        #expect(decoded.contains("quantile: 0.999\n"), "\(decoded)")
    }

    /// A forked child keeps its window in its own file, from empty; the parent's files are
    /// untouched by it; the merge holds both. Parent: 1.5, 3, then 6; child: 100 three times.
    @Test(.timeLimit(.minutes(2)))
    func aForkedChildKeepsItsWindowInItsOwnFile() throws {
        let dir = TempDirectory("pmp-quantiles-fork"); defer { dir.remove() }
        let r = try run(executable("prom-multiproc-testworker"), ["summary-fork", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        let parent = try #require(report["parent"] as? Int), child = try #require(report["child"] as? Int)
        #expect(report["childStatus"] as? Int == 0, "the child's store did not take the child's pid")
        #expect(report["parentFilesUnchanged"] as? Bool == true, "the child wrote into the parent's files")
        #expect(dir.names().filter { $0.hasSuffix(".pmh") } == ["native_\(child).pmh", "native_\(parent).pmh"].sorted())
        let result = collect(dir)
        #expect(result.problems.isEmpty, "\(result.problems)")
        let q = quantiles(result.families, route: "/fork")
        // Sorted: 1.5, 3, 6, 100, 100, 100; nearest ranks 1, 3 and 6.
        for (objective, exact) in [(0.0, 1.5), (0.5, 6.0), (1.0, 100.0)] {
            let estimate = try #require(q[objective])
            #expect(abs(estimate - exact) <= 0.01 * exact, "q=\(objective): \(estimate), exact \(exact)")
        }
        #expect(result.family(Self.family)?.value(Self.family + "_count", ["route": "/fork"]) == 6)
    }
}
