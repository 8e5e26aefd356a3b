import Foundation
import PromMetrics
import Testing

/// Histograms with native buckets in one process: what they collect, how they limit their
/// buckets (client_golang's strategy), and that concurrent observations are all counted.
@Suite struct NativeHistogramTests {
    /// The buckets one histogram at `schema` and `threshold` counts for `values` (the bucket
    /// arithmetic itself is checked in NativeHistogramMathTests).
    func expected(_ values: [Double], schema: Int8, threshold: Double = 0x1p-128) -> NativeBucketCounts {
        var counts = NativeBucketCounts(schema: schema, zeroThreshold: threshold)
        for v in values { counts.observe(v) }
        return counts
    }

    func native(_ family: MetricFamilySnapshot, _ index: Int = 0) throws -> NativeHistogramSnapshot {
        try #require(family.nativeHistograms.count > index, "no native series \(index) in \(family.name)")
        return family.nativeHistograms[index]
    }

    /// Without classic buckets the histogram keeps native buckets and the classic `+Inf`
    /// bucket: the text formats and prometheus_client see its count and sum.
    @Test func nativeOnlyHistogramCollectsItsBucketsCountAndSum() throws {
        let r = Registry()
        let h = try Histogram("latency_seconds", help: "Latency.", native: NativeHistogramOptions(bucketFactor: 1.1), registry: r)
        #expect(h.upperBounds == [.infinity])
        let values = [0.001, 0.02, 0.02, 0.3, 1, 1.5, 7.25, 0, -0.5]
        for v in values { h.observe(v) }
        let family = try #require(r.collect().first)
        #expect(family.samples == [
            Sample(name: "latency_seconds_bucket", labels: [Label("le", "+Inf")], value: 9),
            Sample(name: "latency_seconds_count", value: 9),
            Sample(name: "latency_seconds_sum", value: values.reduce(0, +)),
        ])
        let n = try native(family)
        #expect(n.schema == 3 && n.zeroThreshold == 0x1p-128 && n.zeroCount == 1 && n.count == 9 && n.sum == values.reduce(0, +))
        #expect(n == expected(values, schema: 3).snapshot(labels: [], sum: values.reduce(0, +)))
        #expect(n.positiveBuckets.map(\.count).reduce(0, +) == 7 && n.negativeBuckets == [.init(index: -8, count: 1)])
    }

    /// With classic bounds and native options, the classic samples are exactly those of the
    /// same histogram without native buckets; the native part comes in addition, per child.
    @Test func classicAndNativeTogetherKeepTheClassicPartUnchanged() throws {
        let r1 = Registry(), r2 = Registry()
        let both = try Histogram("h", help: "H.", labelNames: ["route"], buckets: [0.1, 1],
                                 native: NativeHistogramOptions(bucketFactor: 2), registry: r1)
        let classic = try Histogram("h", help: "H.", labelNames: ["route"], buckets: [0.1, 1], registry: r2)
        let values = [0.05, 0.5, 5, .nan, .infinity, -3]
        for v in values {
            both.labels("/a").observe(v); classic.labels("/a").observe(v)
            both.labels("/b").observe(v * 2); classic.labels("/b").observe(v * 2)
        }
        let f1 = try #require(r1.collect().first), f2 = try #require(r2.collect().first)
        #expect(f1.samples.count == f2.samples.count)
        for (a, b) in zip(f1.samples, f2.samples) {
            #expect(a.name == b.name && a.labels == b.labels && (a.value == b.value || a.value.isNaN && b.value.isNaN))
        }
        #expect(f2.nativeHistograms.isEmpty)
        #expect(f1.nativeHistograms.map(\.labels) == [[Label("route", "/a")], [Label("route", "/b")]])
        let a = try native(f1)
        // NaN counts, in no bucket; +Inf in the overflow bucket (schema 0: 1025).
        #expect(a.schema == 0 && a.count == 6 && a.sum.isNaN)
        #expect(a.positiveBuckets == [.init(index: -4, count: 1), .init(index: -1, count: 1), .init(index: 3, count: 1), .init(index: 1025, count: 1)])
        #expect(a.negativeBuckets == [.init(index: 2, count: 1)])
    }

    @Test func invalidOptionsAreRefused() {
        for options in [NativeHistogramOptions(bucketFactor: 1), NativeHistogramOptions(bucketFactor: .nan),
                        NativeHistogramOptions(zeroThreshold: .nan), NativeHistogramOptions(maxBucketNumber: -1),
                        NativeHistogramOptions(minResetDuration: .seconds(-1)), NativeHistogramOptions(maxZeroThreshold: -1)] {
            #expect(throws: MetricError.self) { try Histogram("h", help: "H.", native: options, registry: Registry()) }
        }
        // A negative zero threshold means 0, as in client_golang: only exact zeros go there.
        let h = try? Histogram("h", help: "H.", native: NativeHistogramOptions(zeroThreshold: -1), registry: Registry())
        h?.observe(1e-300)
        #expect(h?.collect().first?.nativeHistograms.first?.zeroThreshold == 0)
        #expect(h?.collect().first?.nativeHistograms.first?.zeroCount == 0)
    }

    /// client_golang's limit: each observation that takes the series over the bucket limit
    /// halves its resolution once. Simulated here with a set of bucket indices; the counts at
    /// the end are those of observing everything at the final schema.
    @Test func exceedingTheBucketLimitHalvesTheResolution() throws {
        let r = Registry()
        let h = try Histogram("h", help: "H.", native: NativeHistogramOptions(bucketFactor: 1.01, maxBucketNumber: 6), registry: r)
        var rng = SystemRandomNumberGenerator()
        let values = (0..<300).map { _ in pow(2, Double.random(in: -6...6, using: &rng)) }
        // 2^(2^-7) = 1.0054 is the largest factor not above 1.01 (2^(2^-6) = 1.0109).
        var schema: Int8 = 7
        #expect(NativeHistogramMath.schema(forBucketFactor: 1.01) == schema)
        var buckets = Set<Int32>()
        for v in values {
            h.observe(v)
            guard case .positive(let i) = NativeHistogramMath.placement(of: v, schema: schema, zeroThreshold: 0x1p-128) else { continue }
            buckets.insert(i)
            if buckets.count > 6 && schema > -4 {
                buckets = Set(buckets.map { NativeHistogramMath.reducedIndex($0, from: schema, to: schema - 1) })
                schema -= 1
            }
        }
        let n = try native(try #require(r.collect().first))
        #expect(n.schema == schema)
        #expect(n == expected(values, schema: schema).snapshot(labels: [], sum: n.sum))
        #expect(n.positiveBuckets.count <= 6)
    }

    /// Before halving, the zero bucket widens over the bucket closest to zero, up to
    /// `maxZeroThreshold`. Schema 0: buckets (0.25, 0.5], (0.5, 1], (1, 2], (2, 4], (4, 8].
    @Test func theZeroBucketWidensBeforeTheResolutionHalves() throws {
        let r = Registry()
        let h = try Histogram("h", help: "H.", native: NativeHistogramOptions(bucketFactor: 2, maxBucketNumber: 2, maxZeroThreshold: 1),
                              registry: r)
        func state() throws -> NativeHistogramSnapshot { try native(try #require(r.collect().first)) }
        h.observe(0.3); h.observe(0.7); h.observe(3)
        var n = try state()
        #expect(n.zeroThreshold == 0.5 && n.zeroCount == 1 && n.positiveBuckets == [.init(index: 0, count: 1), .init(index: 2, count: 1)])
        h.observe(1.5)
        n = try state()
        #expect(n.zeroThreshold == 1 && n.zeroCount == 2 && n.positiveBuckets == [.init(index: 1, count: 1), .init(index: 2, count: 1)])
        // Widening to 2 would pass maxZeroThreshold: the resolution halves (schema -1, buckets
        // (1, 4], (4, 16]).
        h.observe(5)
        n = try state()
        #expect(n.schema == -1 && n.zeroThreshold == 1 && n.zeroCount == 2)
        #expect(n.positiveBuckets == [.init(index: 1, count: 2), .init(index: 2, count: 1)])
        #expect(n.count == 5)
    }

    /// With a min reset duration (single-process mode), a series over its limit starts again
    /// from its initial settings once that long has passed since its last reset, keeping the
    /// observation that hit the limit; and a series whose resolution was reduced is reset when
    /// collected after that time.
    @Test func aSeriesResetsAfterTheMinResetDuration() throws {
        let clock = ManualClock(1000)
        let r = Registry(clock: clock.metricClock)
        let h = try Histogram("h", help: "H.", buckets: [1],
                              native: NativeHistogramOptions(bucketFactor: 2, maxBucketNumber: 2, minResetDuration: .seconds(10)),
                              registry: r)
        func family() throws -> MetricFamilySnapshot { try #require(r.collect().first) }
        clock.set(1005)
        h.observe(0.3); h.observe(0.7); h.observe(3)  // too early to reset: halves
        #expect(try native(family()).schema == -1)
        clock.set(1011)
        h.observe(5)  // a third bucket at schema -1, 11 s after the start: reset, and counted again
        var f = try family()
        #expect(try native(f) == expected([5], schema: 0).snapshot(labels: [], sum: 5))
        #expect(f.samples.map(\.value) == [0, 1, 1, 5])  // le=1, +Inf, _count, _sum
        // Reduced again (too soon to reset), then collected 10 s after the reset: back to the start.
        h.observe(0.3); h.observe(3)
        #expect(try native(family()).schema == -1)
        clock.set(1021)
        f = try family()
        let afterReset = try native(f)
        #expect(afterReset == expected([], schema: 0).snapshot(labels: [], sum: 0), "\(afterReset)")
        #expect(f.samples.map(\.value) == [0, 0, 0, 0])
    }

    /// Several threads observing the same series, creating buckets and halving the resolution
    /// as they go: every observation is counted once, where observing them all at the final
    /// schema would put it.
    @Test(arguments: [0, 8]) func concurrentObservationsAreAllCounted(limit: Int) async throws {
        let r = Registry()
        let h = try Histogram("h", help: "H.", native: NativeHistogramOptions(bucketFactor: 1.001, maxBucketNumber: limit), registry: r)
        let perTask = 20_000
        func value(_ i: Int, _ t: Int) -> Double {
            let sign: Double = i % 7 == 0 ? -1 : 1
            let exponent = Double((i * 7919 + t * 31) % 4000) / 200 - 10
            return sign * pow(2, exponent)
        }
        let values: [[Double]] = (0..<4).map { t in (0..<perTask).map { i in value(i, t) } }
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<4 { group.addTask { for v in values[t] { h.observe(v) } } }
        }
        let n = try native(try #require(r.collect().first))
        #expect(n.count == Double(4 * perTask))
        #expect(n == expected(values.flatMap { $0 }, schema: n.schema).snapshot(labels: [], sum: n.sum))
        if limit > 0 { #expect(n.schema < 8 && n.positiveBuckets.count + n.negativeBuckets.count <= limit * 2) }
    }
}
