import MmapStore
/// One labelled series of a ``Counter``. Keep it for hot paths: an increment is one atomic
/// operation, with no lock and no allocation.
public final class CounterChild: Sendable {
    @usableFromInline let handle: SeriesHandle
    @usableFromInline let metricName: String
    let exemplarSlot: ExemplarSlot
    let storage: MetricStorage
    let clock: MetricClock

    init(handle: SeriesHandle, metricName: String, exemplarSlot: ExemplarSlot, storage: MetricStorage, clock: MetricClock) {
        self.handle = handle
        self.metricName = metricName
        self.exemplarSlot = exemplarSlot
        self.storage = storage
        self.clock = clock
    }

    /// Adds `amount` (1 by default).
    /// - Precondition: `amount` is not negative; a counter only goes up.
    @inlinable
    public func increment(by amount: Double = 1) {
        if amount < 0 { refuseNegative(amount) }
        handle.add(amount)
    }

    /// Adds `amount` and keeps `exemplar` as the series' latest exemplar, with `amount` as
    /// its value (the previous one is replaced).
    ///
    /// Lock-free, like ``increment(by:)``, but it also writes the exemplar's labels (see
    /// BENCHMARKS.md for the cost); an exemplar written by two threads at the same instant
    /// keeps one of them.
    /// - Parameters:
    ///   - amount: the increment.
    ///   - exemplar: the exemplar; its timestamp defaults to now.
    /// - Precondition: `amount` is not negative; a counter only goes up.
    public func increment(by amount: Double = 1, exemplar: Exemplar) {
        if amount < 0 { refuseNegative(amount) }
        handle.add(amount)
        exemplarSlot.record(labels: exemplar.encodedLabels, value: amount, timestamp: exemplar.timestamp ?? clock.wallTime()) { [storage, metricName] in
            storage.reportExemplarFailure($0, series: metricName)
        }
    }

    /// The latest exemplar recorded by this process, if any.
    public var exemplar: RecordedExemplar? { exemplarSlot.latest.map(RecordedExemplar.init) }

    // fatalError, not precondition: an optimised build drops a precondition's message.
    @usableFromInline @inline(never)
    func refuseNegative(_ amount: Double) -> Never {
        fatalError("counter '\(metricName)': increment by a negative amount (\(amount))")
    }

    /// The current value.
    public var value: Double { handle.value }

    /// Runs `body` and counts one when it throws; rethrows the error.
    public func countErrors<T>(_ body: () throws -> T) rethrows -> T {
        do { return try body() } catch { increment(); throw error }
    }

    /// Runs `body` and counts one when it throws an error of type `type`; rethrows every error.
    public func countErrors<T, E: Error>(of type: E.Type, _ body: () throws -> T) rethrows -> T {
        do { return try body() } catch { if error is E { increment() }; throw error }
    }

    /// Runs async `body` and counts one when it throws; rethrows the error.
    public func countErrors<T>(_ body: () async throws -> T) async rethrows -> T {
        do { return try await body() } catch { increment(); throw error }
    }

    /// Runs async `body` and counts one when it throws an error of type `type`.
    public func countErrors<T, E: Error>(of type: E.Type, _ body: () async throws -> T) async rethrows -> T {
        do { return try await body() } catch { if error is E { increment() }; throw error }
    }
}

/// A counter: a value that only goes up, such as requests served.
///
/// As in prometheus_client, a `_total` suffix on the name is dropped from the family name and
/// added to the sample name: `Counter("http_requests_total", ...)` is family `http_requests`
/// with sample `http_requests_total`.
///
/// ```swift
/// let requests = try Counter("http_requests_total", help: "Requests served.", labelNames: ["method", "code"])
/// let ok = requests.labels("GET", "200")   // keep this for the hot path
/// ok.increment()
/// ```
public final class Counter: MetricBase<CounterChild>, MetricCollectable, @unchecked Sendable {
    /// The unlabelled child, in a `let` of this class made before the base class's initialiser
    /// runs: an update loads it like a cached child's handle, with no run-time exclusivity
    /// check, no retain and release, and a loop keeps it in a register, so an unlabelled update
    /// costs what one on a cached child does. A labelled metric has a stand-in here whose
    /// handles refuse every use (`SeriesHandle(refusing:)`): the fork-epoch check each update
    /// makes stops the process naming the metric and its labels, so the update itself tests
    /// nothing more.
    @usableFromInline let unlabelledChild: CounterChild

    /// Creates and registers a counter.
    /// - Parameters:
    ///   - name: the metric name; a `_total` suffix is dropped from the family name.
    ///   - help: the help text.
    ///   - labelNames: the label names, in the order `labels(...)` takes values.
    ///   - namespace: prefix joined with `_`.
    ///   - subsystem: second prefix joined with `_`.
    ///   - unit: unit suffix (such as `seconds`), appended unless already there.
    ///   - registry: the registry (``Registry/default`` when nil).
    /// - Throws: `MetricError` for invalid names or a duplicate registration.
    public init(_ name: String, help: String, labelNames: [String] = [], namespace: String = "", subsystem: String = "",
                unit: String = "", registry: Registry? = nil) throws(MetricError) {
        let family = try MetricNaming.familyName(name: name, namespace: namespace, subsystem: subsystem, unit: unit, kind: .counter)
        let target = registry ?? Registry.default
        let storage = target.storage
        let clock = target.clock
        let make: @Sendable ([Label]) -> CounterChild = { labels in
            storage.recordCreated(family: family, labels: labels, clock: clock)
            let key = SeriesKey(family: family, sample: family + "_total", labels: labels, help: help)
            return CounterChild(handle: storage.handle(kind: .counter, key: key), metricName: family,
                                exemplarSlot: ExemplarSlot(store: storage.store, key: key), storage: storage, clock: clock)
        }
        let child = labelNames.isEmpty ? make([]) : nil
        unlabelledChild = child ?? CounterChild(handle: SeriesHandle(refusing: Self.unlabelledUseMessage(name: family, labelNames: labelNames)),
                                                metricName: family,
                                                exemplarSlot: ExemplarSlot(store: nil, key: SeriesKey(family: family, sample: family, labels: [], help: help)),
                                                storage: storage, clock: clock)
        try super.init(name: family, help: help, labelNames: labelNames, unit: unit, registry: registry, kind: .counter) { base, values in
            make(zip(base.labelNames, values).map { Label($0, $1) })
        }
        try finishInit(self, registry: registry, kind: .counter, unlabelled: child)
    }

    /// Adds `amount` to an unlabelled counter.
    @inlinable
    public func increment(by amount: Double = 1) {
        unlabelledChild.increment(by: amount)
    }

    /// Adds `amount` to an unlabelled counter and keeps `exemplar` as its latest exemplar.
    /// - Parameters:
    ///   - amount: the increment.
    ///   - exemplar: the exemplar; its timestamp defaults to now.
    public func increment(by amount: Double = 1, exemplar: Exemplar) { only.increment(by: amount, exemplar: exemplar) }

    /// The latest exemplar of an unlabelled counter recorded by this process, if any.
    public var exemplar: RecordedExemplar? { only.exemplar }

    /// The value of an unlabelled counter.
    public var value: Double { only.value }

    /// Runs `body` and counts one when it throws (unlabelled counter).
    public func countErrors<T>(_ body: () throws -> T) rethrows -> T { try only.countErrors(body) }

    /// Runs `body` and counts one when it throws an error of type `type` (unlabelled counter).
    public func countErrors<T, E: Error>(of type: E.Type, _ body: () throws -> T) rethrows -> T { try only.countErrors(of: type, body) }

    /// The sample names: `<name>_total`.
    public var sampleNames: [String] { [name + "_total", name + "_created"] }

    /// A snapshot of every child's value.
    public func collect() -> [MetricFamilySnapshot] {
        let samples = children().map { Sample(name: name + "_total", labels: $0.labels, value: $0.child.value, exemplar: $0.child.exemplar) }
        return [MetricFamilySnapshot(name: name, kind: .counter, help: help, unit: unit.isEmpty ? nil : unit, samples: samples)]
    }
}
