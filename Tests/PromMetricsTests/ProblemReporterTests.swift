// Problems the metrics library works around go to a replaceable reporter, never straight to
// standard error: a reporter given to one storage in-process (nothing global changes), and
// the process-wide one bootstrapped in a child process.
import Foundation
import MmapStore
import PromMetrics
import SystemCalls
import Testing
import TestSupport

/// A reporter that keeps every problem it is given.
final class ProblemLog: Sendable {
    private let items = Locked<[Problem]>([])
    var all: [Problem] { items.withLock { $0 } }
    var reporter: ProblemReporter { ProblemReporter { problem in self.items.withLock { $0.append(problem) } } }
}

@Suite struct ProblemReporterTests {
    @Test func deprecatedLowercaseVariableIsReportedToTheGivenReporter() {
        let log = ProblemLog()
        let lower = ["prometheus_multiproc_dir": "/run/metrics"]
        #expect(MetricStorage.environmentDirectory(lookup: { lower[$0] }, reporter: log.reporter) == "/run/metrics")
        #expect(log.all.map(\.code) == ["deprecated_environment_variable"])
        #expect(log.all.first?.message == "prometheus_multiproc_dir is deprecated, use PROMETHEUS_MULTIPROC_DIR instead")

        let upper = ["PROMETHEUS_MULTIPROC_DIR": "/a", "prometheus_multiproc_dir": "/b"]
        #expect(MetricStorage.environmentDirectory(lookup: { upper[$0] }, reporter: log.reporter) == "/a")
        #expect(MetricStorage.environmentDirectory(lookup: { _ in nil }, reporter: log.reporter) == nil)
        #expect(log.all.count == 1, "only the lowercase name alone warns")
    }

    /// The path a full disk takes (ENOSPC while claiming or growing a file): the series gets
    /// no slot, counts in memory, and the storage's reporter hears why. A directory removed
    /// after the storage opened it fails the same way (ENOENT) without needing a tiny tmpfs.
    @Test func seriesThatCannotBeStoredIsReportedAndCountsInMemory() throws {
        let dir = TempDirectory()
        let log = ProblemLog()
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("7"), reporter: log.reporter)
        dir.remove()
        let registry = Registry(storage: storage)
        let jobs = try Counter("jobs_total", help: "Jobs.", registry: registry)
        jobs.increment(by: 2)

        // The metadata file (its creation time) cannot be written either: reported apart,
        // and not counted as a series lost to memory.
        #expect(log.all.map(\.code) == ["metadata_not_stored", "series_not_stored"])
        #expect(log.all.first?.message.hasPrefix("cannot record when jobs was created in \(dir.path): ") == true)
        let problem = try #require(log.all.first { $0.code == "series_not_stored" })
        #expect(problem.message.hasPrefix("cannot store series jobs_total in \(dir.path): "), "\(problem.message)")
        #expect(problem.message.hasSuffix("; counting in memory only"))
        let error = problem.error as? SystemCalls.SystemError
        #expect(error?.errno.rawValue == 2, "ENOENT: \(String(describing: problem.error))")
        #expect(storage.failedSeriesCount == 1)
        #expect(registry.collect().first?.samples.first?.value == 2)
    }

    @Test func removeAndClearInMultiprocessModeAreReported() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let log = ProblemLog()
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("8"), reporter: log.reporter)
        defer { storage.store?.close() }
        let requests = try Counter("requests_total", help: "R.", labelNames: ["code"], registry: Registry(storage: storage))
        requests.labels("200").increment()
        requests.remove("200")
        requests.clear()
        #expect(log.all.map(\.code) == ["no_effect_in_multiprocess_mode", "no_effect_in_multiprocess_mode"])
        #expect(log.all.map(\.message) == [
            "remove() on 'requests' has no effect on the files in multiprocess mode",
            "clear() on 'requests' has no effect on the files in multiprocess mode",
        ])
    }

    /// `ProblemReporter.bootstrap` in a real process: the warning about the lowercase variable
    /// (raised when the default registry first reads the environment) reaches the application's
    /// reporter, and nothing is written to standard error.
    @Test func bootstrappedReporterReceivesTheEnvironmentWarning() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let r = try run(executable("prom-multiproc-testworker"), ["bootstrapped-reporter"],
                        environment: ["prometheus_multiproc_dir": dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains(
            "problem deprecated_environment_variable: prometheus_multiproc_dir is deprecated, use PROMETHEUS_MULTIPROC_DIR instead\n"),
            "\(r.stdout)")
        #expect(r.stdout.contains(dir.path + "\n"))
        #expect(r.stderr.isEmpty, "\(r.stderr)")
    }
}
