import CoreMetrics
import PromMetrics

/// What identifies a handler: the swift-metrics label and dimensions exactly as given.
///
/// The cache is keyed by the raw values, so a hit costs one hash and compare of the strings
/// the caller passed, without sanitizing or sorting anything.
struct HandlerKey: Hashable, Sendable {
    let label: String
    let dimensions: [(String, String)]

    static func == (a: HandlerKey, b: HandlerKey) -> Bool {
        guard a.label == b.label, a.dimensions.count == b.dimensions.count else { return false }
        for i in a.dimensions.indices where a.dimensions[i] != b.dimensions[i] { return false }
        return true
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(label)
        hasher.combine(dimensions.count)
        for (name, value) in dimensions {
            hasher.combine(name)
            hasher.combine(value)
        }
    }
}

/// A handler the backend caches, so a `destroy` can find its entry.
protocol CachedHandler: AnyObject, Sendable {
    var key: HandlerKey { get }
}

/// The handler of swift-metrics' `Counter` and `FloatingPointCounter`: one series of a
/// Prometheus counter.
///
/// Both swift-metrics types of one label feed the same counter, as in swift-prometheus. An
/// increment is one atomic add on the series' slot: no lock, no allocation.
final class CounterBackend: CounterHandler, FloatingPointCounterHandler, CachedHandler {
    let series: CounterSeries
    let key: HandlerKey
    private let onReset: @Sendable () -> Void

    init(series: CounterSeries, key: HandlerKey, onReset: @escaping @Sendable () -> Void) {
        self.series = series
        self.key = key
        self.onReset = onReset
    }

    /// Adds `amount`; a negative amount is dropped (a counter only goes up), as swift-metrics'
    /// own wrappers drop amounts they cannot record.
    func increment(by amount: Int64) {
        if amount > 0 { series.increment(by: Double(amount)) }
    }

    /// Adds `amount`; a negative, NaN or infinite amount is dropped: any of them would leave
    /// the counter wrong for the rest of the process's life.
    func increment(by amount: Double) {
        if amount > 0 && amount < .infinity { series.increment(by: amount) }
    }

    /// Not supported: the series keeps its value, and the reporter is told once.
    ///
    /// A counter's slot in a multiprocess file only grows (the core has no reset), and a drop
    /// of one worker's share would read as a counter reset of the whole family anyway.
    func reset() { onReset() }
}

/// The handler of swift-metrics' `Meter` and non-aggregating `Recorder` (`Gauge`): one series
/// of a Prometheus gauge in the family's multiprocess mode.
final class GaugeBackend: MeterHandler, RecorderHandler, CachedHandler {
    let series: GaugeSeries
    let key: HandlerKey
    /// Whether the mode is `mostrecent` or `livemostrecent`, where the core only allows `set`.
    private let isMostRecent: Bool
    private let readModifyWrite: ReadModifyWriteLock

    init(series: GaugeSeries, key: HandlerKey, mode: GaugeMode, readModifyWrite: ReadModifyWriteLock) {
        self.series = series
        self.key = key
        self.isMostRecent = mode == .mostrecent || mode == .livemostrecent
        self.readModifyWrite = readModifyWrite
    }

    func set(_ value: Int64) { series.set(Double(value)) }

    func set(_ value: Double) { series.set(value) }

    func record(_ value: Int64) { series.set(Double(value)) }

    func record(_ value: Double) { series.set(value) }

    func increment(by amount: Double) { add(amount) }

    func decrement(by amount: Double) { add(-amount) }

    @inline(__always)
    private func add(_ amount: Double) {
        if isMostRecent {
            // A mostrecent slot holds a value and its timestamp, updated together by `set`
            // only; an increment becomes a read and a set, under a lock so that two threads do
            // not lose one of their increments.
            readModifyWrite.withLock { series.set(series.value + amount) }
        } else {
            series.increment(by: amount)
        }
    }
}

/// The handler of swift-metrics' `Timer` and aggregating `Recorder`: one series of a
/// Prometheus histogram.
///
/// A Timer's nanoseconds are observed in seconds, the Prometheus base unit.
final class HistogramBackend: RecorderHandler, TimerHandler, CachedHandler {
    let series: HistogramSeries
    let key: HandlerKey

    init(series: HistogramSeries, key: HandlerKey) {
        self.series = series
        self.key = key
    }

    func record(_ value: Int64) { series.observe(Double(value)) }

    func record(_ value: Double) { series.observe(value) }

    func recordNanoseconds(_ duration: Int64) {
        // A division, not a multiplication by 1e-9 (which is not exact in binary): 5 ms must
        // be exactly 0.005 to land in the bucket `le="0.005"`.
        series.observe(Double(duration) / 1_000_000_000)
    }
}
