import SystemCalls
import Synchronization

/// Something a ``Registry`` can collect: a metric, or a custom collector.
public protocol MetricCollectable: AnyObject, Sendable {
    /// The family name.
    var name: String { get }
    /// The sample names this metric exposes, checked for clashes at registration.
    var sampleNames: [String] { get }
    /// A snapshot of the current values.
    func collect() -> [MetricFamilySnapshot]
}

/// A set of metrics collected together, with the storage and clock they share.
///
/// Metrics register with ``Registry/default`` unless given another one. Tests make their own
/// registry with an explicit storage (for example multiprocess mode with a fixed pid) and
/// clock, so no test touches global state.
///
/// ```swift
/// let registry = Registry(storage: try .multiprocess(directory: dir, identity: .fixed("123")))
/// let requests = try Counter("http_requests_total", help: "Requests.", labelNames: ["method"], registry: registry)
/// requests.labels("GET").increment()
/// ```
public final class Registry: Sendable {
    /// Where the values of this registry's metrics live.
    public let storage: MetricStorage
    /// The clock this registry's metrics read.
    public let clock: MetricClock
    private let metrics = Locked<(byName: [String: MetricCollectable], order: [MetricCollectable])>(([:], []))

    /// The registry metrics use when none is given; its storage follows the environment.
    public static let `default` = Registry(storage: .fromEnvironment)

    /// Creates a registry.
    /// - Parameters:
    ///   - storage: where values live; in memory by default.
    ///   - clock: the clock metrics read.
    public init(storage: MetricStorage = .inProcess, clock: MetricClock = .system) {
        self.storage = storage
        self.clock = clock
    }

    /// Registers a metric or collector.
    /// - Throws: `MetricError` when one of its names is already registered.
    public func register(_ metric: MetricCollectable) throws(MetricError) {
        try register(metric, kind: nil)
    }

    func register(_ metric: MetricCollectable, kind: MetricKind?) throws(MetricError) {
        let names = Set([metric.name] + metric.sampleNames)
        let r: Result<Void, MetricError> = metrics.withLock { m in
            for n in names.sorted() where m.byName[n] != nil {
                return .failure(MetricError(metric: metric.name, reason: "duplicate registration: '\(n)' is already registered in this registry"))
            }
            for n in names { m.byName[n] = metric }
            m.order.append(metric)
            return .success(())
        }
        try r.get()
    }

    /// Removes a metric or collector.
    public func unregister(_ metric: MetricCollectable) {
        metrics.withLock { m in
            m.byName = m.byName.filter { $0.value !== metric }
            m.order.removeAll { $0 === metric }
        }
    }

    /// Snapshots of every registered metric, sorted by family name.
    public func collect() -> [MetricFamilySnapshot] {
        let all = metrics.withLock { $0.order }
        return all.flatMap { $0.collect() }.sorted { $0.name < $1.name }
    }

    /// Snapshots of the registered collectables whose values do not live in multiprocess
    /// files (custom collectors, and every metric of an in-process registry), sorted by family
    /// name: what a server that merges the directory still needs from a registry whose
    /// metrics write into it.
    package func collectNotInFiles() -> [MetricFamilySnapshot] {
        let all = metrics.withLock { $0.order }
        return all.filter { !(($0 as? any StorageBackedMetric)?.storage.isMultiprocess ?? false) }
            .flatMap { $0.collect() }.sorted { $0.name < $1.name }
    }
}

/// A metric whose values live in a ``MetricStorage``: every metric type of this package, not
/// a custom collector.
package protocol StorageBackedMetric: AnyObject {
    /// Where the values live.
    var storage: MetricStorage { get }
}

extension MetricBase: StorageBackedMetric {}
