import Foundation
import MultiprocessCollector
import PromMetrics
import PromMultiprocMetrics

/// A fresh, empty temporary directory for one test.
struct TempDirectory: Sendable {
    let path: String

    init(_ prefix: String = "pmp-swift-metrics") {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        path = "\(base)/\(prefix)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    /// The names in the directory, sorted.
    func names() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    /// The `*.db` names: the files prometheus_client reads (the core also writes sidecar files,
    /// such as `meta_<pid>.pmm` with creation times, that it never reads).
    func dbNames() -> [String] { names().filter { $0.hasSuffix(".db") } }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A factory writing into `dir` as process `pid`, with `configure` applied to the defaults.
func makeFactory(_ dir: TempDirectory, pid: String = "123",
                 configure: (inout PrometheusMultiprocessMetricsFactory.Configuration) -> Void = { _ in })
    throws -> PrometheusMultiprocessMetricsFactory {
    var configuration = PrometheusMultiprocessMetricsFactory.Configuration()
    configure(&configuration)
    let registry = Registry(storage: try .multiprocess(directory: dir.path, identity: .fixed(pid)))
    return PrometheusMultiprocessMetricsFactory(registry: registry, configuration: configuration)
}

/// `name{a="x",b="y"}`, labels sorted by name: one sample, as the tests spell it.
func sampleKey(_ name: String, _ labels: [Label]) -> String {
    let sorted = labels.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    return name + "{" + sorted.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",") + "}"
}

/// What the collector merges from a directory: every sample by ``sampleKey(_:_:)``, and each
/// family's type by name.
struct Merged {
    var samples: [String: Double] = [:]
    var kinds: [String: MetricKind] = [:]

    init(families: [MetricFamilySnapshot]) {
        for family in families {
            kinds[family.name] = family.kind
            for sample in family.samples { samples[sampleKey(sample.name, sample.labels)] = sample.value }
        }
    }

    /// The samples whose name starts with `prefix`.
    func samples(startingWith prefix: String) -> [String: Double] {
        samples.filter { $0.key.hasPrefix(prefix) }
    }
}

/// Merges `dir` with the package's collector, as a scrape would (without self-metrics).
func collect(_ dir: TempDirectory) -> Merged {
    Merged(families: MultiProcessCollector(directory: dir.path, includeSelfMetrics: false).collect().families)
}

/// Messages a reporter received.
final class ReportLog: Sendable {
    private let lines = NSLock()
    nonisolated(unsafe) private var stored: [String] = []

    var messages: [String] { lines.lock(); defer { lines.unlock() }; return stored }

    var reporter: @Sendable (String) -> Void {
        { [self] message in lines.lock(); stored.append(message); lines.unlock() }
    }
}
