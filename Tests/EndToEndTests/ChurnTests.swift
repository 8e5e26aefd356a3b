import PromExposition
import Foundation
import Testing
import MmapStore
import MultiprocessCollector
import TestSupport

/// Worker churn (issue 5): 2,000 short-lived worker processes, `compact` after each batch.
@Suite struct ChurnTests {
    static let batches = 20
    static let workersPerBatch = 100
    /// Workers running at once (the machine has two cores).
    static let lanes = 2

    /// One batch's figures.
    struct BatchFigures: CustomStringConvertible {
        var batch: Int
        var filesBeforeCompaction: Int
        var filesAfterCompaction: Int
        var scrapeMillisBefore: Double
        var scrapeMillisAfter: Double
        var compactMillis: Double
        var spawnMillis: Double
        var description: String {
            String(format: "batch %2d: files %3d -> %d, scrape %6.2f ms -> %5.2f ms, compact %6.1f ms, %d workers in %6.0f ms",
                   batch, filesBeforeCompaction, filesAfterCompaction, scrapeMillisBefore, scrapeMillisAfter, compactMillis,
                   ChurnTests.workersPerBatch, spawnMillis)
        }
    }

    @Test func twoThousandShortLivedWorkersStayExactAndBoundedWithCompaction() throws {
        let dir = TempDirectory("pmp-churn"); defer { dir.remove() }
        var figures: [BatchFigures] = []
        var expected = (a: 0, b: 0, observations: 0, sum: 0.0)
        var archiveEntries: [Int] = []
        for batch in 1...Self.batches {
            // Worker w of the batch does 1 + w % 7 iterations: both routes, every bucket.
            let counts = (0..<Self.workersPerBatch).map { 1 + $0 % 7 }
            let started = Date()
            let reports = try runWorkers(dir, counts)
            let spawnMillis = Date().timeIntervalSince(started) * 1000
            for (n, report) in zip(counts, reports) {
                // Hand-derived from the mode's definition: iteration i goes to /a when even,
                // observes (i % 4) / 4.
                let a = (n + 1) / 2, b = n / 2
                let sum = (0..<n).reduce(0.0) { $0 + Double($1 % 4) * 0.25 }
                #expect(report.increments == n && report.a == Double(a) && report.b == Double(b) && report.sum == sum,
                        "worker \(report.pid) reported \(report)")
                expected.a += a; expected.b += b; expected.observations += n; expected.sum += sum
            }
            let dbBefore = dbFiles(dir)
            #expect(dbBefore.count == 3 * Self.workersPerBatch + (batch == 1 ? 0 : 2))
            let scrapeBefore = try scrapeMillis(dir)

            let compactStarted = Date()
            let compact = try cli(["compact", "--dir", dir.path])
            let compactMillis = Date().timeIntervalSince(compactStarted) * 1000
            #expect(compact.status == 0, "\(compact.stderr)")
            // Every worker is dead: their counters and histograms are folded into one archive
            // each, their live gauges removed. Nothing else may remain.
            let dbAfter = dbFiles(dir)
            #expect(dbAfter == ["counter_archive.db", "histogram_archive.db"], "after batch \(batch): \(dbAfter)")
            #expect(!dir.names().contains { $0.hasPrefix(".tmp-") || $0.hasPrefix(".prom-multiproc-compaction") })
            archiveEntries.append(try dbAfter.reduce(0) { $0 + (try MetricFileReader.decodeAll(path: dir.file($1)).entries.count) })

            figures.append(BatchFigures(batch: batch, filesBeforeCompaction: dbBefore.count, filesAfterCompaction: dbAfter.count,
                                        scrapeMillisBefore: scrapeBefore, scrapeMillisAfter: try scrapeMillis(dir),
                                        compactMillis: compactMillis, spawnMillis: spawnMillis))
            // The merged totals are exactly what the workers did, after every batch.
            let text = try collectText(dir)
            #expect(text.contains(#"churn_jobs_total{route="/a"} \#(Double(expected.a))"#), "after batch \(batch)")
            #expect(text.contains(#"churn_jobs_total{route="/b"} \#(Double(expected.b))"#), "after batch \(batch)")
            #expect(text.contains("churn_job_seconds_count \(Double(expected.observations))"), "after batch \(batch)")
            #expect(text.contains("churn_job_seconds_sum \(expected.sum)"), "after batch \(batch)")
            // Each dead worker left its in-progress gauge at 1; none of that survives.
            #expect(!text.contains("churn_in_progress "), "after batch \(batch)")
        }
        // Flat: the archives hold the same series after 100 workers as after 2,000.
        #expect(Set(archiveEntries) == [archiveEntries[0]], "archive entries per batch: \(archiveEntries)")
        #expect(expected.a + expected.b == Self.batches * (0..<Self.workersPerBatch).reduce(0) { $0 + 1 + $1 % 7 })
        print("churn figures (\(Self.batches * Self.workersPerBatch) workers, \(Self.lanes) at a time; scrape = in-process merge + text render, best of 3):")
        for f in figures { print("  \(f)") }
    }

    /// What one `metrics-burst` worker printed.
    struct BurstReport: Decodable, CustomStringConvertible {
        var pid: Int
        var increments: Int
        var a: Double
        var b: Double
        var observations: Int
        var sum: Double
        var description: String { "pid \(pid): \(increments) increments (a \(a), b \(b)), sum \(sum)" }
    }

    /// Runs one `metrics-burst DIR n` worker per entry of `counts`, `lanes` at a time, and
    /// returns their reports in the order of `counts`.
    func runWorkers(_ dir: TempDirectory, _ counts: [Int]) throws -> [BurstReport] {
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var reports: [Int: BurstReport] = [:]
            var failures: [String] = []
        }
        let results = Results()
        let worker = executable("prom-multiproc-testworker")
        let lanes = Self.lanes
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            for i in stride(from: lane, to: counts.count, by: lanes) {
                do {
                    let r = try run(worker, ["metrics-burst", dir.path, String(counts[i])], timeout: 60)
                    guard r.status == 0 else { throw WorkerFailed(message: "status \(r.status): \(r.stderr)") }
                    let report = try JSONDecoder().decode(BurstReport.self, from: Data(r.stdout.utf8))
                    results.lock.withLock { results.reports[i] = report }
                } catch {
                    results.lock.withLock { results.failures.append("worker \(i): \(error)") }
                }
            }
        }
        guard results.failures.isEmpty else { throw WorkerFailed(message: results.failures.joined(separator: "\n")) }
        return try counts.indices.map { i in
            guard let r = results.reports[i] else { throw WorkerFailed(message: "worker \(i) did not report") }
            return r
        }
    }

    struct WorkerFailed: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    func dbFiles(_ dir: TempDirectory) -> [String] { dir.names().filter { $0.hasSuffix(".db") } }

    /// The best of three scrapes of `dir` (a fresh collector each: no catalog carried over),
    /// in milliseconds: merge plus text rendering, in this process.
    func scrapeMillis(_ dir: TempDirectory) throws -> Double {
        var best = Double.infinity
        for _ in 0..<3 {
            let started = DispatchTime.now().uptimeNanoseconds
            let collector = MultiProcessCollector(directory: dir.path, includeSelfMetrics: false)
            let result = collector.collect()
            let body = Exposition.render(result.families, format: .prometheusText)
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
            #expect(result.problems.isEmpty && !body.isEmpty)
            best = min(best, elapsed)
        }
        return best
    }
}
