// The merge's speed and memory on the issue's benchmark directories: P processes, each with S
// labelled counter children and S/10 labelled histogram children (default buckets), i.e.
// 2.6 * S entries per process. Off unless PROM_MULTIPROC_MERGE_BENCH is set; run it in a
// release build:
//
//   PROM_MULTIPROC_MERGE_BENCH=64x10000,8x1000 swift test -c release --filter MergeBenchmark
//
// PROM_MULTIPROC_MERGE_BENCH_DIR=/some/dir keeps the generated directories there (and reuses
// them on the next run) so prometheus_client can be timed on the same files.
import Foundation
import MmapStore
import MultiprocessCollector
import Testing
import TestSupport

@Suite("Merge benchmark", .enabled(if: ProcessInfo.processInfo.environment["PROM_MULTIPROC_MERGE_BENCH"] != nil))
struct MergeBenchmarkTests {
    static var sizes: [(processes: Int, series: Int)] {
        let spec = ProcessInfo.processInfo.environment["PROM_MULTIPROC_MERGE_BENCH"] ?? ""
        return spec.split(separator: ",").compactMap { item in
            let parts = item.split(separator: "x").compactMap { Int($0) }
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
    }

    /// Writes the benchmark directory with MmapStore's MetricFile, one file pair per process.
    static func generate(_ directory: String, processes: Int, series: Int) throws {
        var counterKeys: [[UInt8]] = []
        for i in 0..<series {
            counterKeys.append(SeriesKey(family: "http_requests", sample: "http_requests_total",
                                         labels: [Label("method", i % 2 == 0 ? "GET" : "POST"), Label("path", "/api/v1/resource/\(i)")],
                                         help: "Total HTTP requests.").encoded())
        }
        var histogramKeys: [[UInt8]] = []
        for i in 0..<(series / 10) {
            let labels = [Label("path", "/api/v1/resource/\(i)")]
            histogramKeys.append(SeriesKey(family: "http_latency_seconds", sample: "http_latency_seconds_sum", labels: labels, help: "Latency.").encoded())
            for le in defaultBucketLabels {
                histogramKeys.append(SeriesKey(family: "http_latency_seconds", sample: "http_latency_seconds_bucket",
                                               labels: labels + [Label("le", le)], help: "Latency.").encoded())
            }
        }
        for p in 0..<processes {
            let pid = String(10_000 + p)
            let counters = try MetricFile.claim(directory: directory, kind: .counter, pid: pid)
            for (i, key) in counterKeys.enumerated() { try counters.slot(for: key).set(Double(i % 13 + p)) }
            counters.close()
            let histograms = try MetricFile.claim(directory: directory, kind: .histogram, pid: pid)
            for (i, key) in histogramKeys.enumerated() { try histograms.slot(for: key).set(Double(i % 5)) }
            histograms.close()
        }
    }

    /// VmHWM or VmRSS of this process, in MiB.
    static func memory(_ field: String) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? -1
            return kb / 1024
        }
        return -1
    }

    @Test func mergeSpeedAndPeakMemory() throws {
        for (processes, series) in Self.sizes {
            let keep = ProcessInfo.processInfo.environment["PROM_MULTIPROC_MERGE_BENCH_DIR"]
            let temp = TempDirectory("bench")
            let dir = keep.map { "\($0)/\(processes)x\(series)" } ?? temp.path
            defer { temp.remove() }
            if !FileManager.default.fileExists(atPath: dir + "/counter_10000.db") {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                let t0 = Date()
                try Self.generate(dir, processes: processes, series: series)
                print("generated \(processes)x\(series) in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
            }
            // Cold: a fresh collector decodes every key once. Reset the peak-RSS mark first
            // (Linux: writing 5 to clear_refs) so it measures the merge alone.
            var coldTimes: [Double] = []
            var coldPeak = 0.0
            for _ in 0..<3 {
                try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = MultiProcessCollector(directory: dir, includeSelfMetrics: false).collect()
                coldTimes.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                coldPeak = max(coldPeak, Self.memory("VmHWM"))
            }
            // Warm: one collector scraping again and again keeps its decoded keys.
            let collector = MultiProcessCollector(directory: dir, includeSelfMetrics: false)
            _ = collector.collect()
            try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
            let rssBefore = Self.memory("VmRSS")
            var times: [Double] = []
            var result: CollectResult?
            for _ in 0..<7 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                result = collector.collect()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            let peak = Self.memory("VmHWM")
            times.sort()
            coldTimes.sort()
            let r = try #require(result)
            let samples = r.families.reduce(0) { $0 + $1.samples.count }
            func ms(_ v: Double) -> String { String(format: "%.1f", v) }
            print("""
                merge \(processes)x\(series): \(r.statistics.entries) entries, \(r.statistics.mergedFiles) files, \(samples) samples; \
                cold (fresh collector) min \(ms(coldTimes[0])) ms, median \(ms(coldTimes[1])) ms, peak RSS \(ms(coldPeak)) MiB; \
                warm min \(ms(times[0])) ms, median \(ms(times[times.count / 2])) ms, RSS before \(ms(rssBefore)) MiB, peak \(ms(peak)) MiB
                """)
            #expect(r.problems.isEmpty)
            #expect(r.statistics.entries == processes * (series + series / 10 * 16))
            #expect(samples == series + series / 10 * 17)
        }
    }
}
