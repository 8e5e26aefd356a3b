/// A child that records how long a closure took: histograms and summaries observe the
/// duration, gauges are set to it. The duration is measured on the registry's monotonic clock
/// and recorded even when the closure throws.
protocol DurationRecording {
    var clock: MetricClock { get }
    func recordDuration(_ seconds: Double)
}

extension DurationRecording {
    func timed<T>(_ body: () throws -> T) rethrows -> T {
        let start = clock.monotonicTime()
        defer { recordDuration(Swift.max(clock.monotonicTime() - start, 0)) }
        return try body()
    }

    func timed<T>(_ body: () async throws -> T) async rethrows -> T {
        let start = clock.monotonicTime()
        defer { recordDuration(Swift.max(clock.monotonicTime() - start, 0)) }
        return try await body()
    }
}
