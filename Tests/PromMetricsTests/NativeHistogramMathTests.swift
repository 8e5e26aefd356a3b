import Foundation
import PromMetrics
import Testing
import TestSupport

/// The bucket arithmetic of native histograms, checked against values computed without it:
/// bucket indices from the specification's formula in exact arithmetic (a Python script), and
/// hand-derived schema reductions, zero-bucket widenings and schema choices.
@Suite struct NativeHistogramMathTests {
    /// Every observation of scripts/python/native_bucket_index.py (edge cases and a seeded
    /// sample across the whole double range), at every schema, lands where the specification's
    /// `v <= (2^2^-s)^i` puts it, computed with frexp and exact fractions; negative values in
    /// the negative bucket of the same index.
    @Test func bucketIndicesMatchTheSpecificationComputedExactly() throws {
        let result = try runPython("native_bucket_index.py", [])
        try #require(result.status == 0, "native_bucket_index.py failed: \(result.stderr)")
        var compared = 0, ambiguous = 0
        var failures: [String] = []
        for line in result.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            try #require(parts.count == 3, "unexpected line \(line)")
            let value = try #require(Double(String(parts[0])), "unparsable value \(parts[0])")
            let schema = try #require(Int8(String(parts[1])))
            guard let expected = Int32(String(parts[2])) else { ambiguous += 1; continue }
            compared += 1
            let positive = NativeHistogramMath.placement(of: value, schema: schema, zeroThreshold: 0)
            let negative = NativeHistogramMath.placement(of: -value, schema: schema, zeroThreshold: 0)
            if positive != .positive(expected) || negative != .negative(expected) {
                failures.append("\(parts[0]) (\(value)) at schema \(schema): \(positive), \(negative), want \(expected)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) wrong:\n\(failures.prefix(20).joined(separator: "\n"))")
        #expect(compared > 3_000 && ambiguous < compared / 100, "compared \(compared), ambiguous \(ambiguous)")
    }

    /// Next to an irrational boundary the result is client_golang's, whose boundary doubles
    /// are a few units in the last place off the exact values. Schema 8's last boundary below
    /// 1 is 0.9972960560854698 in client_golang (exactly, 0.99729605608547007...), so
    /// 0.9972960560854699 is above client_golang's boundary and in bucket 0 (exactly, it would
    /// be in bucket -1); the boundary itself is in bucket -1. The same at schema 1, where
    /// client_golang's `sqrt(1/2)` is 0.7071067811865475.
    @Test func valuesNextToABoundaryLandWhereClientGolangPutsThem() {
        #expect(NativeHistogramMath.placement(of: 0.9972960560854698, schema: 8, zeroThreshold: 0) == .positive(-1))
        #expect(NativeHistogramMath.placement(of: 0.9972960560854699, schema: 8, zeroThreshold: 0) == .positive(0))
        #expect(NativeHistogramMath.placement(of: 0.7071067811865475, schema: 1, zeroThreshold: 0) == .positive(-1))
        #expect(NativeHistogramMath.placement(of: 0.7071067811865476, schema: 1, zeroThreshold: 0) == .positive(0))
        // Scaled by powers of two, the same boundary one power further.
        #expect(NativeHistogramMath.placement(of: 1.414213562373095, schema: 1, zeroThreshold: 0) == .positive(1))
        #expect(NativeHistogramMath.placement(of: 1.4142135623730951, schema: 1, zeroThreshold: 0) == .positive(2))
        #expect(NativeHistogramMath.placement(of: -1.4142135623730951, schema: 1, zeroThreshold: 0) == .negative(2))
    }

    /// Zero, the zero threshold (inclusive), infinities and NaN, as client_golang handles them.
    @Test func zeroBucketInfinitiesAndNaN() {
        let threshold = 0x1p-128
        for schema in NativeHistogramMath.minimumSchema...NativeHistogramMath.maximumSchema {
            let perPowerOfTwo = Int32(1) << Int32(max(schema, 0))
            // 2^-128 is the upper bound of bucket -128 * 2^s (for s <= 0: -128 / 2^-s).
            let atThreshold = schema >= 0 ? -128 * perPowerOfTwo : -128 >> Int32(-schema)
            #expect(NativeHistogramMath.placement(of: 0, schema: schema, zeroThreshold: threshold) == .zero)
            #expect(NativeHistogramMath.placement(of: -0.0, schema: schema, zeroThreshold: 0) == .zero)
            #expect(NativeHistogramMath.placement(of: threshold, schema: schema, zeroThreshold: threshold) == .zero)
            #expect(NativeHistogramMath.placement(of: -threshold, schema: schema, zeroThreshold: threshold) == .zero)
            #expect(NativeHistogramMath.placement(of: threshold, schema: schema, zeroThreshold: 0) == .positive(atThreshold))
            #expect(NativeHistogramMath.placement(of: threshold.nextUp, schema: schema, zeroThreshold: threshold)
                    == .positive(atThreshold + 1))
            #expect(NativeHistogramMath.placement(of: .nan, schema: schema, zeroThreshold: threshold) == .none)
            // The largest double is in bucket 1024 * 2^s (at schema 8: 262144, as the
            // specification says); the infinities one further.
            let maxIndex = schema >= 0 ? 1024 * perPowerOfTwo : 1024 >> Int32(-schema)
            #expect(NativeHistogramMath.placement(of: .greatestFiniteMagnitude, schema: schema, zeroThreshold: threshold)
                    == .positive(maxIndex))
            #expect(NativeHistogramMath.placement(of: .infinity, schema: schema, zeroThreshold: threshold) == .positive(maxIndex + 1))
            #expect(NativeHistogramMath.placement(of: -.infinity, schema: schema, zeroThreshold: threshold) == .negative(maxIndex + 1))
            #expect(NativeHistogramMath.upperBound(index: maxIndex, schema: schema) == .greatestFiniteMagnitude)
            #expect(NativeHistogramMath.upperBound(index: maxIndex + 1, schema: schema) == .infinity)
        }
    }

    /// client_golang's choice of schema for a bucket factor: the largest factor `2^(2^-n)`
    /// that does not exceed it (schema 3 for the recommended 1.1).
    @Test(arguments: [
        (1.0001, 8), (1.0027, 8), (1.0028, 8), (1.006, 7), (1.05, 4), (1.1, 3), (1.2, 2), (1.4142135623730951, 1),
        (1.5, 1), (2.0, 0), (3.9, 0), (4.0, -1), (15.9, -1), (16.0, -2), (255.0, -2), (256.0, -3), (65535.0, -3),
        (65536.0, -4), (1e300, -4),
    ] as [(Double, Int8)])
    func schemaForBucketFactor(factor: Double, schema: Int8) {
        #expect(NativeHistogramMath.schema(forBucketFactor: factor) == schema)
    }

    /// Bucket bounds: powers of two exactly, and within a power of two 2^(j/2^s) to a few
    /// units in the last place (client_golang's doubles are up to 4 off).
    @Test func bucketBounds() {
        #expect(NativeHistogramMath.upperBound(index: 0, schema: 0) == 1)
        #expect(NativeHistogramMath.upperBound(index: 1, schema: 0) == 2)
        #expect(NativeHistogramMath.upperBound(index: -3, schema: 0) == 0.125)
        #expect(NativeHistogramMath.upperBound(index: 1, schema: -1) == 4)
        #expect(NativeHistogramMath.upperBound(index: -1, schema: -4) == 0x1p-16)
        #expect(NativeHistogramMath.lowerBound(index: 1, schema: 2) == 1)
        for schema in Int8(1)...8 {
            for index in Int32(-20)...20 {
                let exact = pow(2.0, Double(index) / Double(1 << Int(schema)))
                let got = NativeHistogramMath.upperBound(index: index, schema: schema)
                #expect(abs(got - exact) <= 8 * exact.ulp, "schema \(schema) index \(index): \(got) vs \(exact)")
            }
        }
    }

    /// Reducing a schema by `d` maps index `i` to `i / 2^d` rounded up, for negative indices
    /// too; computed here with floating-point division and `ceil`.
    @Test func reducedIndexIsTheCeilingOfTheQuotient() {
        for from in Int8(-3)...8 {
            for to in NativeHistogramMath.minimumSchema...from {
                for index in Int32(-300)...300 {
                    let expected = Int32(ceil(Double(index) / pow(2, Double(from - to))))
                    #expect(NativeHistogramMath.reducedIndex(index, from: from, to: to) == expected)
                }
            }
        }
    }

    /// Buckets by hand, schema 1 to schema 0: indices 1 and 2 merge into 1, 3 and 4 into 2,
    /// -1 and 0 into 0.
    @Test func schemaReductionMergesNeighbouringBuckets() {
        var counts = NativeBucketCounts(schema: 1, zeroThreshold: 0)
        counts.positive = [1: 2, 2: 3, 3: 1, 4: 5, -1: 1, 0: 2]
        counts.negative = [5: 7]
        counts.reduce(toSchema: 0)
        #expect(counts.schema == 0)
        #expect(counts.positive == [1: 5, 2: 6, 0: 3])
        #expect(counts.negative == [3: 7])
        counts.reduce(toSchema: -2)  // i / 4 rounded up
        #expect(counts.positive == [1: 11, 0: 3])
        #expect(counts.negative == [1: 7])
    }

    /// Observing at a fine schema and reducing gives the buckets of observing at the coarse
    /// schema directly, for every pair of schemas.
    @Test func reducingEqualsObservingAtTheLowerSchema() {
        var rng = SystemRandomNumberGenerator()
        let values = (0..<2_000).map { _ in
            (Bool.random(using: &rng) ? 1.0 : -1.0) * pow(10, Double.random(in: -8...8, using: &rng))
        } + [0, 1, 2, 0.5, -4, 1e-300, .infinity, -.infinity, .greatestFiniteMagnitude]
        for from in NativeHistogramMath.minimumSchema...NativeHistogramMath.maximumSchema {
            var fine = NativeBucketCounts(schema: from, zeroThreshold: 0x1p-128)
            for v in values { fine.observe(v) }
            for to in NativeHistogramMath.minimumSchema...from {
                var reduced = fine
                reduced.reduce(toSchema: to)
                var direct = NativeBucketCounts(schema: to, zeroThreshold: 0x1p-128)
                for v in values { direct.observe(v) }
                #expect(reduced == direct, "schema \(from) reduced to \(to)")
            }
        }
    }

    /// Widening the zero bucket moves every bucket that reaches below the new threshold into
    /// it; one that straddles the threshold widens it to its upper bound (the specification's
    /// rule for merging zero buckets).
    @Test func wideningTheZeroBucketMovesTheBucketsBelowIt() {
        var counts = NativeBucketCounts(schema: 0, zeroThreshold: 0x1p-128)
        counts.zeroCount = 1
        // (0.25, 0.5], (0.5, 1], (1, 2] and their negative mirrors.
        counts.positive = [-1: 2, 0: 3, 1: 4]
        counts.negative = [-1: 20, 0: 30, 1: 40]
        #expect(counts.widenZeroBucket(to: 0.5) == 0.5)
        #expect(counts.zeroCount == 23 && counts.positive == [0: 3, 1: 4] && counts.negative == [0: 30, 1: 40])
        // 0.7 falls inside (0.5, 1]: that bucket moves too, and the threshold becomes 1.
        #expect(counts.widenZeroBucket(to: 0.7) == 1)
        #expect(counts.zeroCount == 56 && counts.positive == [1: 4] && counts.negative == [1: 40])
        // A narrower threshold changes nothing.
        #expect(counts.widenZeroBucket(to: 0.25) == 1)
        #expect(counts.zeroCount == 56 && counts.count == 100)
    }

    /// Merging histograms of different schemas and zero thresholds gives what one histogram
    /// at the lowest schema and the widest threshold counts from all the observations (the
    /// thresholds are powers of two, bucket boundaries at every schema).
    @Test func mergingEqualsObservingEverythingAtTheCoarsestSettings() {
        var rng = SystemRandomNumberGenerator()
        let settings: [(Int8, Double)] = [(8, 0x1p-128), (3, 0.25), (5, 0), (-1, 0x1p-10), (0, 0x1p-128)]
        var merged: NativeBucketCounts?
        var all: [Double] = []
        for (schema, threshold) in settings {
            var one = NativeBucketCounts(schema: schema, zeroThreshold: threshold)
            for _ in 0..<500 {
                let v = (Double.random(in: 0...1, using: &rng) < 0.2 ? -1.0 : 1.0) * pow(2, Double.random(in: -14...14, using: &rng))
                one.observe(v)
                all.append(v)
            }
            one.observe(.nan)
            all.append(.nan)
            if merged == nil { merged = one } else { merged!.merge(one) }
        }
        var reference = NativeBucketCounts(schema: -1, zeroThreshold: 0.25)
        for v in all { reference.observe(v) }
        #expect(merged == reference)
        #expect(merged?.count == Double(all.count))
    }
}
