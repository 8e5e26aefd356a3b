import MmapStore
/// One labelled series of a ``Gauge``.
public final class GaugeChild: Sendable, DurationRecording {
    @usableFromInline let handle: SeriesHandle
    @usableFromInline let mode: GaugeMode
    // Cached: `GaugeMode.isMostRecent` is not inlinable, and `set` is a hot path.
    @usableFromInline let isMostRecent: Bool
    @usableFromInline let clock: MetricClock
    @usableFromInline let metricName: String

    init(handle: SeriesHandle, mode: GaugeMode, clock: MetricClock, metricName: String) {
        self.handle = handle
        self.mode = mode
        self.isMostRecent = mode.isMostRecent
        self.clock = clock
        self.metricName = metricName
    }

    /// Adds `amount` (1 by default).
    /// - Precondition: the gauge is not in a `mostrecent` mode, where only `set` is allowed.
    @inlinable
    public func increment(by amount: Double = 1) {
        if isMostRecent { refuseIncrement() }
        handle.add(amount)
    }

    // fatalError, not precondition: an optimised build drops a precondition's message, and the
    // message is the only way a user learns which gauge and why.
    @usableFromInline @inline(never)
    func refuseIncrement() -> Never {
        fatalError("gauge '\(metricName)': increment/decrement is not allowed in \(mode.rawValue) mode, use set()")
    }

    /// Subtracts `amount` (1 by default).
    /// - Precondition: the gauge is not in a `mostrecent` mode.
    @inlinable
    public func decrement(by amount: Double = 1) { increment(by: -amount) }

    /// Sets the value; in the `mostrecent` modes the wall-clock time is stored with it.
    @inlinable
    public func set(_ value: Double) {
        if isMostRecent {
            handle.set(value, timestamp: clock.wallTime())
        } else {
            handle.set(value)
        }
    }

    /// Sets the value to the current wall-clock time in seconds.
    public func setToCurrentTime() { set(clock.wallTime()) }

    /// The current value.
    public var value: Double { handle.value }

    /// Adds one while `body` runs and subtracts it after, even when `body` throws.
    public func trackInProgress<T>(_ body: () throws -> T) rethrows -> T {
        increment()
        defer { decrement() }
        return try body()
    }

    /// Adds one while async `body` runs and subtracts it after, even when `body` throws.
    public func trackInProgress<T>(_ body: () async throws -> T) async rethrows -> T {
        increment()
        defer { decrement() }
        return try await body()
    }

    func recordDuration(_ seconds: Double) { set(seconds) }

    /// Runs `body` and sets the gauge to its duration in seconds, even when `body` throws.
    public func time<T>(_ body: () throws -> T) rethrows -> T { try timed(body) }

    /// Runs async `body` and sets the gauge to its duration in seconds, even when it throws.
    public func time<T>(_ body: () async throws -> T) async rethrows -> T { try await timed(body) }
}

/// A gauge: a value that goes up and down, such as requests in progress.
///
/// In multiprocess mode, `mode` says how the values of several processes are merged
/// (``GaugeMode``); `all` (the default, as in prometheus_client) keeps one series per process
/// with a `pid` label.
///
/// ```swift
/// let inProgress = try Gauge("http_requests_in_progress", help: "Requests in progress.", mode: .livesum)
/// try inProgress.trackInProgress { try handle(request) }
/// ```
public final class Gauge: MetricBase<GaugeChild>, MetricCollectable, @unchecked Sendable {
    /// How values of several processes are merged.
    public let mode: GaugeMode
    /// The function that computes the value at collection time, if the gauge has one.
    private let function: (@Sendable () -> Double)?

    /// The unlabelled child, in a `let` of this class made before the base class's initialiser
    /// runs: an update loads it like a cached child's handle, with no run-time exclusivity
    /// check, no retain and release, and a loop keeps it in a register, so an unlabelled update
    /// costs what one on a cached child does. A labelled metric has a stand-in here whose
    /// handle refuses every use (`SeriesHandle(refusing:)`): the fork-epoch check each update
    /// makes stops the process naming the gauge and its labels, so the update itself tests
    /// nothing more.
    @usableFromInline let unlabelledChild: GaugeChild

    /// Creates and registers a gauge.
    /// - Parameters:
    ///   - name: the metric name.
    ///   - help: the help text.
    ///   - labelNames: the label names (`pid` is reserved in multiprocess mode).
    ///   - namespace: prefix joined with `_`.
    ///   - subsystem: second prefix joined with `_`.
    ///   - unit: unit suffix, appended unless already there.
    ///   - mode: the multiprocess merge mode.
    ///   - registry: the registry (``Registry/default`` when nil).
    /// - Throws: `MetricError` for invalid names or a duplicate registration.
    public convenience init(_ name: String, help: String, labelNames: [String] = [], namespace: String = "",
                            subsystem: String = "", unit: String = "", mode: GaugeMode = .all,
                            registry: Registry? = nil) throws(MetricError) {
        try self.init(name, help: help, labelNames: labelNames, namespace: namespace, subsystem: subsystem, unit: unit,
                      mode: mode, registry: registry, function: nil)
    }

    /// Creates and registers an unlabelled gauge whose value `function` computes each time the
    /// gauge is collected, as prometheus_client's `Gauge.set_function` does: for a value the
    /// program already keeps, such as a queue's length or a cache's size.
    ///
    /// ```swift
    /// let queue = JobQueue()
    /// let queued = try Gauge("jobs_queued", help: "Jobs waiting to run.", registry: serverRegistry) {
    ///     Double(queue.count)
    /// }
    /// ```
    ///
    /// `function` is called on the collecting thread, possibly on several at once, and must not
    /// block. ``value`` calls it too; `set`, `increment` and the other methods do not change
    /// what the gauge exports.
    ///
    /// Only for a registry with in-process storage. In multiprocess mode the value would live
    /// in one process's memory, and the directory's files, which are all another process
    /// reads, cannot share it: the initialiser throws instead of exporting a value that never
    /// changes (prometheus_client accepts `set_function` there and exports the file's 0). A
    /// server that merges a directory keeps such gauges in a registry of its own, given to
    /// its metrics handler.
    /// - Parameters:
    ///   - name: the metric name.
    ///   - help: the help text.
    ///   - namespace: prefix joined with `_`.
    ///   - subsystem: second prefix joined with `_`.
    ///   - unit: unit suffix, appended unless already there.
    ///   - registry: the registry (``Registry/default`` when nil).
    ///   - function: computes the value; called at every collection.
    /// - Throws: `MetricError` for invalid names, a duplicate registration, or a registry in
    ///   multiprocess mode.
    public convenience init(_ name: String, help: String, namespace: String = "", subsystem: String = "",
                            unit: String = "", registry: Registry? = nil,
                            function: @escaping @Sendable () -> Double) throws(MetricError) {
        if (registry ?? Registry.default).storage.isMultiprocess {
            let full = (try? MetricNaming.familyName(name: name, namespace: namespace, subsystem: subsystem, unit: unit,
                                                     kind: .gauge)) ?? name
            throw MetricError(metric: full, reason: """
                a gauge computed by a function cannot be shared through the multiprocess directory: \
                register it in a registry with in-process storage (Registry()), and give that registry \
                to the server's metrics handler
                """)
        }
        try self.init(name, help: help, labelNames: [], namespace: namespace, subsystem: subsystem, unit: unit,
                      mode: .all, registry: registry, function: function)
    }

    private init(_ name: String, help: String, labelNames: [String], namespace: String, subsystem: String,
                 unit: String, mode: GaugeMode, registry: Registry?,
                 function: (@Sendable () -> Double)?) throws(MetricError) {
        let family = try MetricNaming.familyName(name: name, namespace: namespace, subsystem: subsystem, unit: unit, kind: .gauge)
        self.mode = mode
        self.function = function
        let target = registry ?? Registry.default
        let storage = target.storage
        let clock = target.clock
        let make: @Sendable ([Label]) -> GaugeChild = { labels in
            GaugeChild(handle: storage.handle(kind: .gauge(mode), key: SeriesKey(family: family, sample: family, labels: labels, help: help)),
                       mode: mode, clock: clock, metricName: family)
        }
        let child = labelNames.isEmpty ? make([]) : nil
        // The stand-in in mode `all`: its every update reaches the handle, which refuses it
        // (an increment in a `mostrecent` mode would otherwise be refused for the mode).
        unlabelledChild = child ?? GaugeChild(handle: SeriesHandle(refusing: Self.unlabelledUseMessage(name: family, labelNames: labelNames)),
                                              mode: .all, clock: clock, metricName: family)
        try super.init(name: family, help: help, labelNames: labelNames, unit: unit, registry: registry, kind: .gauge) { base, values in
            make(zip(base.labelNames, values).map { Label($0, $1) })
        }
        try finishInit(self, registry: registry, kind: .gauge, unlabelled: child)
    }

    /// Adds `amount` to an unlabelled gauge.
    @inlinable
    public func increment(by amount: Double = 1) {
        unlabelledChild.increment(by: amount)
    }

    /// Subtracts `amount` from an unlabelled gauge.
    @inlinable
    public func decrement(by amount: Double = 1) {
        unlabelledChild.decrement(by: amount)
    }

    /// Sets an unlabelled gauge.
    @inlinable
    public func set(_ value: Double) {
        unlabelledChild.set(value)
    }

    /// Sets an unlabelled gauge to the current time.
    public func setToCurrentTime() { only.setToCurrentTime() }

    /// The value of an unlabelled gauge; for a gauge computed by a function, what the
    /// function returns now.
    public var value: Double { function?() ?? only.value }

    /// Tracks `body` as in progress on an unlabelled gauge.
    public func trackInProgress<T>(_ body: () throws -> T) rethrows -> T { try only.trackInProgress(body) }

    /// Tracks async `body` as in progress on an unlabelled gauge.
    public func trackInProgress<T>(_ body: () async throws -> T) async rethrows -> T { try await only.trackInProgress(body) }

    /// Sets an unlabelled gauge to the duration of `body`.
    public func time<T>(_ body: () throws -> T) rethrows -> T { try only.time(body) }

    /// Sets an unlabelled gauge to the duration of async `body`.
    public func time<T>(_ body: () async throws -> T) async rethrows -> T { try await only.time(body) }

    /// The sample names: the family name.
    public var sampleNames: [String] { [name] }

    /// A snapshot of every child's value.
    public func collect() -> [MetricFamilySnapshot] {
        let samples = function.map { [Sample(name: name, value: $0())] }
            ?? children().map { Sample(name: name, labels: $0.labels, value: $0.child.value) }
        return [MetricFamilySnapshot(name: name, kind: .gauge, help: help, unit: unit.isEmpty ? nil : unit, samples: samples)]
    }
}
