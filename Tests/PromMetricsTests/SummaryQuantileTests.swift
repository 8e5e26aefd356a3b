import Foundation
import MmapStore
import PromMetrics
import SystemCalls
import Testing

/// Summary quantiles in one process: the schema chosen for a relative error, the estimates
/// against exact nearest-rank quantiles, the window on an injected clock, and bad options.
@Suite struct SummaryQuantileTests {
    /// A clock the test moves.
    final class TestClock: Sendable {
        let now = Locked<Double>(1_000_000)
        var clock: MetricClock {
            MetricClock(wallTime: { [self] in now.withLock { $0 } }, monotonicTime: { [self] in now.withLock { $0 } })
        }
        func advance(_ seconds: Double) { now.withLock { $0 += seconds } }
    }

    /// The bound of each schema from the formula (g = 2^(2^-n), (g - 1) / (g + 1)), computed
    /// here with `pow`, and the schema picked for a few requested errors: the lowest whose
    /// bound is at most the request.
    @Test func schemaIsTheCheapestMeetingTheRelativeError() {
        for n in Int8(-4)...8 {
            let g = pow(2, pow(2, -Double(n)))
            #expect(abs(SummaryQuantiles.relativeError(schema: n) - (g - 1) / (g + 1)) <= 1e-15, "schema \(n)")
        }
        // alpha(-2) = 0.882, alpha(0) = 1/3, alpha(2) = 0.0864, alpha(3) = 0.0433, alpha(5) = 0.0108,
        // alpha(6) = 0.00542, alpha(8) = 0.00135.
        let cases: [(Double, Int8)] = [(0.05, 3), (0.0433, 3), (0.01, 6), (0.011, 5), (0.5, 0), (0.9, -2), (0.0014, 8)]
        for (error, schema) in cases {
            #expect(SummaryQuantiles(relativeError: error).schema == schema, "relative error \(error)")
            let cheapest = (-4...8).first { n in
                let g = pow(2, pow(2, -Double(n)))
                return (g - 1) / (g + 1) <= error
            }
            #expect(cheapest.map(Int8.init) == schema, "relative error \(error)")
        }
    }

    @Test func quantilesOfOneProcessAreWithinTheBound() throws {
        let registry = Registry()
        let options = SummaryQuantiles(objectives: [0, 0.05, 0.5, 0.9, 0.99, 1], relativeError: 0.02)
        let s = try Summary("job_seconds", help: "Jobs.", quantiles: options, registry: registry)
        var rng = SystemRandomNumberGenerator()
        var values: [Double] = []
        for _ in 0..<5000 {
            let v = Double.random(in: -3...3, using: &rng)
            let value = Int.random(in: 0..<20, using: &rng) == 0 ? 0 : exp(v) * (Bool.random(using: &rng) ? 1 : -1)
            s.observe(value)
            values.append(value)
        }
        s.observe(.nan)
        values.sort()
        let alpha = SummaryQuantiles.relativeError(schema: options.schema)
        let samples = try #require(registry.collect().first).samples
        #expect(samples.map(\.name) == Array(repeating: "job_seconds", count: 6) + ["job_seconds_count", "job_seconds_sum"])
        for (q, sample) in zip(options.objectives, samples) {
            #expect(sample.labels == [Label("quantile", q == 0 ? "0.0" : q == 1 ? "1.0" : "\(q)")])
            let exact = values[max(1, Int((q * Double(values.count)).rounded(.up))) - 1]
            #expect(abs(sample.value - exact) <= alpha * abs(exact) * (1 + 1e-12), "q=\(q): \(sample.value) vs \(exact)")
        }
        #expect(samples[6].value == 5001)
    }

    /// 10 s in 5 age buckets of 2 s: quantiles cover the age buckets not yet expired, an
    /// empty window is NaN, and an age bucket reused for a new period starts from zero.
    @Test func theWindowRotatesWithTheClock() throws {
        let time = TestClock()
        let registry = Registry(clock: time.clock)
        let s = try Summary("w", help: "h", labelNames: ["k"],
                            quantiles: SummaryQuantiles(objectives: [0.5], relativeError: 0.01, maxAge: 10, ageBuckets: 5),
                            registry: registry)
        func median() -> Double { registry.collect()[0].samples.first { $0.name == "w" }?.value ?? -1 }
        _ = s.labels("a")
        #expect(median().isNaN)
        for _ in 0..<10 { s.labels("a").observe(100) }
        #expect(abs(median() - 100) <= 1)
        time.advance(4)
        for _ in 0..<11 { s.labels("a").observe(1) }
        #expect(abs(median() - 1) <= 0.01)
        // The 100s' period ends its window 10 s after it began (at 1,000,000): 1,000,010.
        time.advance(5.9)
        #expect(abs(median() - 1) <= 0.01)
        for _ in 0..<20 { s.labels("a").observe(100) }
        #expect(abs(median() - 100) <= 1)
        time.advance(0.2)  // 1,000,010.1: the first 100s are gone; 11 ones and 20 hundreds remain.
        #expect(abs(median() - 100) <= 1)
        time.advance(30)
        #expect(median().isNaN)
        #expect(registry.collect()[0].samples.first { $0.name == "w_count" }?.value == 41)
        // An age bucket used before, for a new period: only the new observation counts.
        time.advance(4.9)
        s.labels("a").observe(7)
        #expect(abs(median() - 7) <= 0.07)
    }

    /// Four tasks observe 1, 2, 3 and 4, 50,000 times each, on one series: no count is lost
    /// (one lost 1 would move the 0.25 quantile, of nearest rank 50,000, to 2).
    @Test func concurrentObservationsAreAllCounted() async throws {
        let registry = Registry()
        let s = try Summary("c", help: "h", quantiles: SummaryQuantiles(objectives: [0.25, 0.5, 0.75, 1]), registry: registry)
        await withTaskGroup(of: Void.self) { group in
            for v in 1...4 { group.addTask { for _ in 0..<50_000 { s.observe(Double(v)) } } }
        }
        let values = registry.collect()[0].samples.filter { $0.name == "c" }.map(\.value)
        #expect(values.count == 4)
        for (value, exact) in zip(values, [1.0, 2, 3, 4]) {
            #expect(abs(value - exact) <= 0.01 * exact, "\(values)")
        }
    }

    @Test func invalidOptionsAreRejected() {
        for bad in [SummaryQuantiles(objectives: [1.5]), SummaryQuantiles(objectives: [.nan]), SummaryQuantiles(objectives: [0.5, 0.5]),
                    SummaryQuantiles(relativeError: 0.001), SummaryQuantiles(relativeError: 1), SummaryQuantiles(maxAge: 0),
                    SummaryQuantiles(maxAge: .infinity), SummaryQuantiles(ageBuckets: 0), SummaryQuantiles(ageBuckets: 256)] {
            #expect(throws: MetricError.self, "\(bad)") { try Summary("s", help: "h", quantiles: bad, registry: Registry()) }
        }
    }

    /// Without quantiles a summary stays what it was: `_count` and `_sum` only.
    @Test func aSummaryWithoutQuantilesHasCountAndSumOnly() throws {
        let registry = Registry()
        let s = try Summary("plain", help: "h", registry: registry)
        s.observe(2)
        #expect(registry.collect()[0].samples.map(\.name) == ["plain_count", "plain_sum"])
    }
}
