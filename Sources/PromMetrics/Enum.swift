import SystemCalls
import MmapStore
import Synchronization

/// One labelled series of an ``Enum``: exactly one of its states is current.
public final class EnumChild: Sendable {
    // Unowned: the metric owns its children (a strong reference would be a cycle).
    private unowned let metric: Enum
    private let handles: [SeriesHandle]
    private let current = Locked(0)

    init(metric: Enum, handles: [SeriesHandle]) {
        self.metric = metric
        self.handles = handles
        handles[0].set(1)
    }

    /// Makes `state` the current state.
    /// - Precondition: `state` is one of the metric's states.
    public func state(_ state: String) {
        guard let index = metric.states.firstIndex(of: state) else {
            misuse("enum '\(metric.name)': unknown state '\(state)', states are \(metric.states)")
        }
        current.withLock { c in
            handles[c].set(0)
            handles[index].set(1)
            c = index
        }
    }

    /// The current state.
    public var currentState: String { metric.states[current.withLock { $0 }] }

    /// The value (1 or 0) of each state, in the metric's state order.
    var stateValues: [Double] { handles.map(\.value) }
}

/// Enum: which of a fixed set of states something is in (an OpenMetrics StateSet).
///
/// Each state is a series `<name>{<name>="<state>"}` with value 1 for the current state and 0
/// for the others. prometheus_client cannot store Enum in multiprocess mode; this package stores
/// the states as gauges (`gauge_livemax_<pid>.db`), so prometheus_client's collector reads them
/// as a gauge `<name>` with the state label, and the merged value of a state is 1 when any live
/// process is in it.
///
/// ```swift
/// let phase = try Enum("worker_phase", help: "Worker phase.", states: ["starting", "serving", "draining"])
/// phase.state("serving")
/// ```
public final class Enum: MetricBase<EnumChild>, MetricCollectable, @unchecked Sendable {
    /// The possible states; the first is the initial state.
    public let states: [String]

    /// Creates and registers an Enum.
    /// - Parameters:
    ///   - name: the metric name, also the state label's name.
    ///   - help: the help text.
    ///   - labelNames: label names for labelled children (not the metric name).
    ///   - namespace: prefix joined with `_`.
    ///   - subsystem: second prefix joined with `_`.
    ///   - states: the states; at least one, no repeats.
    ///   - registry: the registry (``Registry/default`` when nil).
    /// - Throws: `MetricError` for invalid names, empty or repeated states, or a duplicate registration.
    public init(_ name: String, help: String, labelNames: [String] = [], namespace: String = "", subsystem: String = "",
                states: [String], registry: Registry? = nil) throws(MetricError) {
        let family = try MetricNaming.familyName(name: name, namespace: namespace, subsystem: subsystem, unit: "", kind: .stateset)
        guard !states.isEmpty else { throw MetricError(metric: family, reason: "an Enum needs at least one state") }
        guard Set(states).count == states.count else { throw MetricError(metric: family, reason: "repeated states in \(states)") }
        guard !labelNames.contains(family) else { throw MetricError(metric: family, reason: "a label may not be named like the Enum itself") }
        guard MetricNaming.isValidLabelName(family) else {
            throw MetricError(metric: family, reason: "an Enum's name is also its state label, and '\(family)' is not a valid label name")
        }
        self.states = states
        try super.init(name: family, help: help, labelNames: labelNames, unit: "", registry: registry, kind: .stateset) { base, values in
            let labels = zip(base.labelNames, values).map { Label($0, $1) }
            let handles = states.map { state in
                base.storage.handle(kind: .gauge(Enum.multiprocessMode), key: base.key(sample: base.name, labels: labels + [Label(base.name, state)]))
            }
            return EnumChild(metric: base as! Enum, handles: handles)  // swiftlint:disable:this force_cast
        }
        try finishInit(self, registry: registry, kind: .stateset)
        storage.recordFamilyType(family, as: .stateset)
    }

    /// The gauge mode Enum states are stored with in multiprocess mode.
    package static let multiprocessMode = GaugeMode.livemax

    /// Makes `state` current on an unlabelled Enum.
    public func state(_ state: String) { only.state(state) }

    /// The sample names: the family name.
    public var sampleNames: [String] { [name] }

    /// A snapshot: one sample per state per child.
    public func collect() -> [MetricFamilySnapshot] {
        var samples: [Sample] = []
        for (labels, child) in children() {
            for (state, value) in zip(states, child.stateValues) {
                samples.append(Sample(name: name, labels: labels + [Label(name, state)], value: value))
            }
        }
        return [MetricFamilySnapshot(name: name, kind: .stateset, help: help, samples: samples)]
    }
}
