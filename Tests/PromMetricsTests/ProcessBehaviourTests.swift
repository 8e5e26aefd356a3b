import Foundation
import Testing
import MmapStore
import TestSupport

/// What only real processes can show: a refused update kills the process with a message, a
/// forked child writes its own files, and a dead worker's live gauge leaves the merged output.
/// The workers are `prom-multiproc-testworker` modes (Sources/prom-multiproc-testworker/MetricsModes.swift).
@Suite struct ProcessBehaviourTests {
    @Test(arguments: [("mostrecent", "increment"), ("mostrecent", "decrement"),
                      ("livemostrecent", "increment"), ("livemostrecent", "decrement")])
    func incrementingAMostRecentGaugeStopsTheProcessNamingTheGaugeAndTheMode(mode: String, op: String) throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let r = try run(executable("prom-multiproc-testworker"), ["mostrecent-increment", dir.path, mode, op])
        #expect(r.signaled, "the \(op) was not refused: status \(r.status), stdout \(r.stdout)")
        #expect(r.stdout.contains("set") && !r.stdout.contains("not refused"))
        #expect(r.stderr.contains("gauge 'last_seen_seconds': increment/decrement is not allowed in \(mode) mode, use set()"),
                "stderr: \(r.stderr)")
        // The refused update changed nothing: the file keeps the value set before it.
        let files = dir.names().filter { $0.hasPrefix("gauge_\(mode)_") }
        #expect(files.count == 1)
        let entries = try MetricFileReader.decodeAll(path: dir.file(files.first ?? "missing")).entries
        #expect(entries.map(\.value) == [5])
        #expect(entries.first.map { $0.timestamp > 1_600_000_000 } == true)
    }

    /// An unlabelled update of a labelled metric is refused, for every kind and operation: by
    /// the stand-in child's handle, which refuses every use (the metric itself tests nothing,
    /// to cost what a cached child's update does). The message names the metric and its
    /// labels, whatever the gauge's mode, and the file keeps only the labelled child's values.
    @Test(arguments: [("counter-increment", "counter"), ("gauge-set", "gauge_all"), ("gauge-increment", "gauge_all"),
                      ("gauge-decrement", "gauge_all"), ("mostrecent-gauge-set", "gauge_mostrecent"),
                      ("mostrecent-gauge-increment", "gauge_mostrecent"), ("histogram-observe", "histogram"),
                      ("histogram-observe-nan", "histogram"), ("summary-observe", "summary")])
    func anUnlabelledUpdateOfALabelledMetricStopsTheProcessNamingTheMetricAndItsLabels(op: String, file: String) throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let r = try run(executable("prom-multiproc-testworker"), ["labelled-unlabelled-use", dir.path, op])
        #expect(r.signaled, "the \(op) was not refused: status \(r.status), stdout \(r.stdout)")
        #expect(r.stdout.contains("updated") && !r.stdout.contains("not refused"))
        #expect(r.stderr.contains("metric 'queue_depth' has labels [\"path\"]: call labels(...) first"), "stderr: \(r.stderr)")
        // Only the labelled child's series are in the file, with the values of its one update:
        // +5 on a counter, 5 on a gauge, an observation of 0.25 (buckets 0.5, 1, +Inf).
        let files = dir.names().filter { $0.hasPrefix(file + "_") }
        #expect(files.count == 1, "\(dir.names())")
        let entries = try MetricFileReader.decodeAll(path: dir.file(files.first ?? "missing")).entries
        #expect(entries.allSatisfy { $0.key.labels.contains(Label("path", "a")) }, "\(entries)")
        let values = Dictionary(entries.map { ($0.key.sample + ($0.key.labels.first { $0.name == "le" }.map { "@" + $0.value } ?? ""), $0.value) },
                                uniquingKeysWith: +)
        switch file {
        case "counter": #expect(values == ["queue_depth_total": 5])
        case "histogram":
            #expect(values == ["queue_depth_sum": 0.25, "queue_depth_bucket@0.5": 1, "queue_depth_bucket@1.0": 0, "queue_depth_bucket@+Inf": 0])
        case "summary": #expect(values == ["queue_depth_count": 1, "queue_depth_sum": 0.25])
        default: #expect(values == ["queue_depth": 5])
        }
    }

    @Test func aForkedChildWritesItsOwnFilesFromZeroAndLeavesTheParentsAlone() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let r = try run(executable("prom-multiproc-testworker"), ["fork-metrics", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        let parent = try #require(report["parent"] as? Int), child = try #require(report["child"] as? Int)
        #expect(report["childStatus"] as? Int == 0, "the child's store did not take the child's pid")
        #expect(report["parentFilesUnchanged"] as? Bool == true, "the child wrote into the parent's files")
        // The metadata file (`meta_<pid>.pmm`: creation times) is the process's own too.
        #expect(report["parentFiles"] as? [String] == ["counter_\(parent).db", "gauge_livesum_\(parent).db", "histogram_\(parent).db",
                                                       "meta_\(parent).pmm"])
        #expect(dir.names() == (["counter", "gauge_livesum", "histogram"].flatMap { ["\($0)_\(child).db", "\($0)_\(parent).db"] }
                                + ["meta_\(child).pmm", "meta_\(parent).pmm"]).sorted())

        // Hand-derived: the parent added 5 then 10 to `a`; the child's series start at zero in
        // its own files (as prometheus_client re-creates them after a fork), then +1 to `a`,
        // +7 to the new `c`, one observation of 2 (the +Inf bucket), +1 on the gauge.
        let entries = try fileEntries(dir)
        let parentCounter = entries["counter_\(parent).db"] ?? [:], childCounter = entries["counter_\(child).db"] ?? [:]
        #expect(parentCounter.mapValues(\.0) == [#"forked_requests_total{route="a"}"#: 15, #"forked_requests_total{route="b"}"#: 0])
        #expect(childCounter.mapValues(\.0) == [#"forked_requests_total{route="a"}"#: 1, #"forked_requests_total{route="b"}"#: 0,
                                                #"forked_requests_total{route="c"}"#: 7])
        #expect(entries["gauge_livesum_\(parent).db"]?["forked_in_progress{}"]?.0 == 2)
        #expect(entries["gauge_livesum_\(child).db"]?["forked_in_progress{}"]?.0 == 1)
        #expect(entries["histogram_\(child).db"]?[#"forked_seconds_bucket{le="1.0"}"#]?.0 == 0)
        #expect(entries["histogram_\(child).db"]?[#"forked_seconds_bucket{le="+Inf"}"#]?.0 == 1)
        #expect(entries["histogram_\(child).db"]?["forked_seconds_sum{}"]?.0 == 2)

        // prometheus_client's own merge of both processes' files.
        let merged = try pythonMerged(dir)
        #expect(merged[#"forked_requests_total{route="a"}"#] == 16)
        #expect(merged[#"forked_requests_total{route="b"}"#] == 0)
        #expect(merged[#"forked_requests_total{route="c"}"#] == 7)
        #expect(merged["forked_seconds_count{}"] == 2 && merged["forked_seconds_sum{}"] == 2.5)
        #expect(merged[#"forked_seconds_bucket{le="1.0"}"#] == 1)
    }

    @Test func aKilledWorkersLiveGaugeLeavesTheMergedOutputWithoutMarkDead() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let first = try LoopWorker(dir), second = try LoopWorker(dir)
        defer { first.kill(); second.kill() }
        #expect(try mergedValue(dir, "soak_writers_alive") == 2)

        first.kill()
        #expect(try mergedValue(dir, "soak_writers_alive") == 1)
        // Nobody called mark-dead: the dead worker's files are all still there, and its counts
        // still count.
        #expect(dir.names().contains("gauge_livesum_\(first.pid).db") && dir.names().contains("counter_\(first.pid).db"))
        let deadCount = try MetricFileReader.decodeAll(path: dir.file("counter_\(first.pid).db")).entries.first?.value ?? 0
        #expect(deadCount >= 1)
        #expect(try mergedValue(dir, "soak_increments_total").map { $0 >= deadCount } == true)

        second.kill()
        let gone = try mergedValue(dir, "soak_writers_alive")
        #expect(gone == nil || gone == 0)
        // prometheus_client cannot tell a dead writer from a live one: it needs mark_process_dead.
        #expect(try pythonMerged(dir)["soak_writers_alive{}"] == 2)
    }
}

/// A `metrics-loop` worker, started and ready (its metrics exist).
final class LoopWorker {
    let process: Process
    let output = Pipe()
    var pid: Int32 { process.processIdentifier }

    init(_ dir: TempDirectory) throws {
        // One increment every 20 ms: a few lines a second, far from filling the pipe.
        process = try launch(executable("prom-multiproc-testworker"), ["metrics-loop", dir.path, "1", "20000"], stdout: output)
        var seen = ""
        let deadline = Date().addingTimeInterval(20)
        while !seen.contains("total 1\n") && Date() < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        guard seen.contains("ready \(process.processIdentifier)\n") && seen.contains("total 1\n") else {
            process.terminate()
            throw WorkerNotReady(output: seen)
        }
    }

    /// Sends SIGKILL (once) and waits until the process is gone.
    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(pid, SIGKILL)
        process.waitUntilExit()
    }
}

struct WorkerNotReady: Error, CustomStringConvertible {
    var output: String
    var description: String { "metrics-loop did not get ready: \(output)" }
}

/// The value of the unlabelled sample `name` in our collector's merge of `dir`
/// (`prom-multiproc-cli collect`), or nil when it is not exported.
func mergedValue(_ dir: TempDirectory, _ name: String) throws -> Double? {
    let r = try run(executable("prom-multiproc-cli"), ["collect", "--no-self-metrics", "--dir", dir.path])
    #expect(r.status == 0, "\(r.stderr)")
    for line in r.stdout.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Double(line.dropFirst(name.count + 1))
    }
    return nil
}

/// prometheus_client's TestMultiProcessDeprecation cases: multiprocess mode follows the
/// environment, and the deprecated lowercase variable still works, with a warning.
@Suite struct EnvironmentSelectionTests {
    @Test func multiprocessModeFollowsTheEnvironmentAndTheLowercaseNameWarns() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let worker = executable("prom-multiproc-testworker")
        let upper = try run(worker, ["default-registry"], environment: ["PROMETHEUS_MULTIPROC_DIR": dir.path])
        #expect(upper.status == 0 && upper.stdout == dir.path + "\n")
        #expect(!upper.stderr.contains("deprecated"))
        let lower = try run(worker, ["default-registry"], environment: ["prometheus_multiproc_dir": dir.path])
        #expect(lower.status == 0 && lower.stdout == dir.path + "\n")
        #expect(lower.stderr.contains("prometheus_multiproc_dir is deprecated") && lower.stderr.contains("PROMETHEUS_MULTIPROC_DIR"))
        #expect(dir.names().filter { $0.hasPrefix("counter_") }.count == 2)
        let none = try run(worker, ["default-registry"])
        #expect(none.status == 0 && none.stdout == "in-process\n")
        let missing = try run(worker, ["default-registry"], environment: ["PROMETHEUS_MULTIPROC_DIR": dir.path + "/missing"])
        #expect(missing.status == 0 && missing.stdout == "in-process\n")
        #expect(missing.stderr.contains("unusable"))
    }
}
