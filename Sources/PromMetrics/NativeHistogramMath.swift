/// The arithmetic of native (sparse, exponential) histograms, shared by the instrumentation and
/// the collector: which bucket an observation falls in at a schema, which schema a bucket
/// factor asks for, the bounds of a bucket, and the two ways of coarsening a set of buckets
/// (a lower schema, a wider zero bucket).
///
/// At schema `s` (from -4 to 8) every power of two is split into `2^s` buckets, so the bucket
/// boundaries are the powers of `base = 2^(2^-s)`. The positive bucket with index `i` holds
/// the observations `v` with `base^(i-1) < v <= base^i`, the negative bucket with index `i`
/// those with `-base^i <= v < -base^(i-1)`, and the zero bucket those with
/// `|v| <= zeroThreshold`. The bucket that holds the largest finite double has its upper bound
/// clamped to it, and `+Inf` (`-Inf`) goes to the bucket after it; NaN goes to no bucket (it
/// only counts). This follows Prometheus's native-histogram specification as client_golang
/// implements it: for schemas above 0, the boundaries inside a power of two are
/// client_golang's own table of doubles (below), so that a value lands in the same bucket as
/// in a Go program and as Prometheus's `histogram_quantile` assumes, down to the last bit.
@usableFromInline
package enum NativeHistogramMath {
    /// The lowest schema: each bucket spans a factor of `2^16`.
    package static let minimumSchema: Int8 = -4
    /// The highest schema: each power of two is split into 256 buckets.
    package static let maximumSchema: Int8 = 8
    /// client_golang's default zero threshold, `2^-128`: a bucket boundary at every schema.
    package static let defaultZeroThreshold: Double = 0x1p-128

    // MARK: bucket boundaries

    /// The boundaries within one power of two at schema 8, as fractions in `[0.5, 1)`:
    /// `bounds[j]` stands for `2^(j/256) / 2`. These are the doubles client_golang
    /// (`nativeHistogramBounds`) and Prometheus use, which differ from the correctly rounded
    /// values by up to 4 units in the last place; a schema `s` below 8 uses every
    /// `2^(8-s)`-th of them (client_golang's tables for lower schemas are exactly these). A
    /// 257th entry, 1.0, closes the range.
    static let schema8Bounds: [Double] = [
        0x1.0000000000000p-1, 0x1.00b1afa5abcbfp-1, 0x1.0163da9fb3335p-1, 0x1.02168143b0281p-1,
        0x1.02c9a3e778061p-1, 0x1.037d42e11bbccp-1, 0x1.04315e86e7f84p-1, 0x1.04e5f72f654b1p-1,
        0x1.059b0d3158574p-1, 0x1.0650a0e3c1f89p-1, 0x1.0706b29ddf6ddp-1, 0x1.07bd42b72a836p-1,
        0x1.0874518759bc8p-1, 0x1.092bdf66607e0p-1, 0x1.09e3ecac6f383p-1, 0x1.0a9c79b1f3919p-1,
        0x1.0b5586cf9890fp-1, 0x1.0c0f145e46c85p-1, 0x1.0cc922b7247f6p-1, 0x1.0d83b23395deap-1,
        0x1.0e3ec32d3d1a2p-1, 0x1.0efa55fdfa9c5p-1, 0x1.0fb66affed31ap-1, 0x1.1073028d7233dp-1,
        0x1.11301d0125b50p-1, 0x1.11edbab5e2ab5p-1, 0x1.12abdc06c31cbp-1, 0x1.136a814f204aap-1,
        0x1.1429aaea92ddfp-1, 0x1.14e95934f312dp-1, 0x1.15a98c8a58e50p-1, 0x1.166a45471c3c1p-1,
        0x1.172b83c7d517bp-1, 0x1.17ed48695bbc0p-1, 0x1.18af9388c8de9p-1, 0x1.1972658375d2fp-1,
        0x1.1a35beb6fcb75p-1, 0x1.1af99f8138a1cp-1, 0x1.1bbe084045cd3p-1, 0x1.1c82f95281c6bp-1,
        0x1.1d4873168b9aap-1, 0x1.1e0e75eb44026p-1, 0x1.1ed5022fcd91cp-1, 0x1.1f9c18438ce4cp-1,
        0x1.2063b88628cd6p-1, 0x1.212be3578a819p-1, 0x1.21f49917ddc95p-1, 0x1.22bdda27912d0p-1,
        0x1.2387a6e756238p-1, 0x1.2451ffb82140ap-1, 0x1.251ce4fb2a63ep-1, 0x1.25e85711ece74p-1,
        0x1.26b4565e27cddp-1, 0x1.2780e341ddf2ap-1, 0x1.284dfe1f56380p-1, 0x1.291ba7591bb6fp-1,
        0x1.29e9df51fdee1p-1, 0x1.2ab8a66d10f13p-1, 0x1.2b87fd0dad98fp-1, 0x1.2c57e39771b2ep-1,
        0x1.2d285a6e4030bp-1, 0x1.2df961f641589p-1, 0x1.2ecafa93e2f55p-1, 0x1.2f9d24abd886ap-1,
        0x1.306fe0a31b715p-1, 0x1.31432edeeb2fdp-1, 0x1.32170fc4cd831p-1, 0x1.32eb83ba8ea32p-1,
        0x1.33c08b26416ffp-1, 0x1.3496266e3fa2dp-1, 0x1.356c55f929ff0p-1, 0x1.36431a2de883ap-1,
        0x1.371a7373aa9cap-1, 0x1.37f26231e7549p-1, 0x1.38cae6d05d864p-1, 0x1.39a401b7140edp-1,
        0x1.3a7db34e59ff6p-1, 0x1.3b57fbfec6cf4p-1, 0x1.3c32dc313a8e3p-1, 0x1.3d0e544ede172p-1,
        0x1.3dea64c123422p-1, 0x1.3ec70df1c5175p-1, 0x1.3fa4504ac801bp-1, 0x1.40822c367a024p-1,
        0x1.4160a21f72e2ap-1, 0x1.423fb2709468ap-1, 0x1.431f5d950a896p-1, 0x1.43ffa3f84b9d4p-1,
        0x1.44e086061892dp-1, 0x1.45c2042a7d232p-1, 0x1.46a41ed1d0057p-1, 0x1.4786d668b3236p-1,
        0x1.486a2b5c13cd0p-1, 0x1.494e1e192aed2p-1, 0x1.4a32af0d7d3dep-1, 0x1.4b17dea6db7d7p-1,
        0x1.4bfdad5362a27p-1, 0x1.4ce41b817c114p-1, 0x1.4dcb299fddd0dp-1, 0x1.4eb2d81d8abfep-1,
        0x1.4f9b2769d2ca7p-1, 0x1.508417f4531efp-1, 0x1.516daa2cf6642p-1, 0x1.5257de83f4eefp-1,
        0x1.5342b569d4f81p-1, 0x1.542e2f4f6ad27p-1, 0x1.551a4ca5d920dp-1, 0x1.56070dde910d0p-1,
        0x1.56f4736b527dap-1, 0x1.57e27dbe2c4cfp-1, 0x1.58d12d497c7fcp-1, 0x1.59c0827ff07cbp-1,
        0x1.5ab07dd485429p-1, 0x1.5ba11fba87a02p-1, 0x1.5c9268a5946b6p-1, 0x1.5d84590998b92p-1,
        0x1.5e76f15ad2148p-1, 0x1.5f6a320dceb71p-1, 0x1.605e1b976dc08p-1, 0x1.6152ae6cdf6f4p-1,
        0x1.6247eb03a5584p-1, 0x1.633dd1d1929fdp-1, 0x1.6434634ccc31ep-1, 0x1.652b9febc8fb5p-1,
        0x1.6623882552224p-1, 0x1.671c1c70833f5p-1, 0x1.68155d44ca972p-1, 0x1.690f4b19e9537p-1,
        0x1.6a09e667f3bccp-1, 0x1.6b052fa75173ep-1, 0x1.6c012750bdabep-1, 0x1.6cfdcddd47645p-1,
        0x1.6dfb23c651a2ep-1, 0x1.6ef9298593ae4p-1, 0x1.6ff7df9519482p-1, 0x1.70f7466f42e85p-1,
        0x1.71f75e8ec5f73p-1, 0x1.72f8286ead089p-1, 0x1.73f9a48a58172p-1, 0x1.74fbd35d7cbfcp-1,
        0x1.75feb564267c8p-1, 0x1.77024b1ab6e09p-1, 0x1.780694fde5d3ep-1, 0x1.790b938ac1cf5p-1,
        0x1.7a11473eb0186p-1, 0x1.7b17b0976cfdap-1, 0x1.7c1ed0130c131p-1, 0x1.7d26a62ff86efp-1,
        0x1.7e2f336cf4e61p-1, 0x1.7f3878491c490p-1, 0x1.80427543e1a10p-1, 0x1.814d2add106d8p-1,
        0x1.82589994cce11p-1, 0x1.8364c1eb941f6p-1, 0x1.8471a4623c7abp-1, 0x1.857f4179f5b1fp-1,
        0x1.868d99b4492ebp-1, 0x1.879cad931a435p-1, 0x1.88ac7d98a6697p-1, 0x1.89bd0a478580dp-1,
        0x1.8ace5422aa0dbp-1, 0x1.8be05bad61778p-1, 0x1.8cf3216b5448bp-1, 0x1.8e06a5e0866d8p-1,
        0x1.8f1ae99157736p-1, 0x1.902fed0282c8ap-1, 0x1.9145b0b91ffc5p-1, 0x1.925c353aa2fe2p-1,
        0x1.93737b0cdc5e4p-1, 0x1.948b82b5f98e4p-1, 0x1.95a44cbc8520dp-1, 0x1.96bdd9a7670b1p-1,
        0x1.97d829fde4e4fp-1, 0x1.98f33e47a22a2p-1, 0x1.9a0f170ca07b8p-1, 0x1.9b2bb4d53fe0bp-1,
        0x1.9c49182a3f08fp-1, 0x1.9d674194bb8d4p-1, 0x1.9e86319e32321p-1, 0x1.9fa5e8d07f29cp-1,
        0x1.a0c667b5de564p-1, 0x1.a1e7aed8eb8bbp-1, 0x1.a309bec4a2d32p-1, 0x1.a42c980460ad7p-1,
        0x1.a5503b23e255bp-1, 0x1.a674a8af46051p-1, 0x1.a799e1330b356p-1, 0x1.a8bfe53c12e57p-1,
        0x1.a9e6b5579fdbep-1, 0x1.ab0e521356eb9p-1, 0x1.ac36bbfd3f378p-1, 0x1.ad5ff3a3c2773p-1,
        0x1.ae89f995ad3acp-1, 0x1.afb4ce622f2fep-1, 0x1.b0e07298db663p-1, 0x1.b20ce6c9a8950p-1,
        0x1.b33a2b84f15fap-1, 0x1.b468415b749b0p-1, 0x1.b59728de55938p-1, 0x1.b6c6e29f1c529p-1,
        0x1.b7f76f2fb5e45p-1, 0x1.b928cf22749e2p-1, 0x1.ba5b030a10647p-1, 0x1.bb8e0b79a6f1dp-1,
        0x1.bcc1e904bc1d0p-1, 0x1.bdf69c3f3a205p-1, 0x1.bf2c25bd71e06p-1, 0x1.c06286141b33bp-1,
        0x1.c199bdd85529ap-1, 0x1.c2d1cd9fa652ap-1, 0x1.c40ab5fffd078p-1, 0x1.c544778fafb20p-1,
        0x1.c67f12e57d149p-1, 0x1.c7ba88988c931p-1, 0x1.c8f6d9406e7b2p-1, 0x1.ca3405751c4d8p-1,
        0x1.cb720dcef9066p-1, 0x1.ccb0f2e6d1672p-1, 0x1.cdf0b555dc3f6p-1, 0x1.cf3155b5bab70p-1,
        0x1.d072d4a078979p-1, 0x1.d1b532b08c966p-1, 0x1.d2f87080d89eep-1, 0x1.d43c8eacaa1d3p-1,
        0x1.d5818dcfba486p-1, 0x1.d6c76e862e6d2p-1, 0x1.d80e316c98396p-1, 0x1.d955d71ff6074p-1,
        0x1.da9e603db3284p-1, 0x1.dbe7cd63a8313p-1, 0x1.dd321f301b45ep-1, 0x1.de7d5641c0656p-1,
        0x1.dfc97337b9b5dp-1, 0x1.e11676b197d16p-1, 0x1.e264614f5a126p-1, 0x1.e3b333b16ee0fp-1,
        0x1.e502ee78b3ff5p-1, 0x1.e653924676d75p-1, 0x1.e7a51fbc74c81p-1, 0x1.e8f7977cdb73ep-1,
        0x1.ea4afa2a490d8p-1, 0x1.eb9f4867cca6dp-1, 0x1.ecf482d8e67eep-1, 0x1.ee4aaa218850ep-1,
        0x1.efa1bee615a26p-1, 0x1.f0f9c1cb64129p-1, 0x1.f252b376bba95p-1, 0x1.f3ac948dd7272p-1,
        0x1.f50765b6e453ep-1, 0x1.f6632798844f6p-1, 0x1.f7bfdad9cbe10p-1, 0x1.f91d802243c86p-1,
        0x1.fa7c1819e90d6p-1, 0x1.fbdba3692d512p-1, 0x1.fd3c22b8f71eep-1, 0x1.fe9d96b2a23d6p-1,
        1.0,
    ]

    /// For each cell of 1/1024 of the fraction range `[0.5, 1)` (the top nine bits of a
    /// double's significand), the first boundary at or above the cell's start. Schema-8
    /// boundaries are more than 1/1024 apart, so a cell holds at most one: one comparison
    /// after the look-up finds a value's bucket.
    static let firstBoundaryInCell: [UInt16] = {
        var out = [UInt16](repeating: 0, count: 512)
        var j = 0
        for cell in 0..<512 {
            let start = 0.5 + Double(cell) / 1024
            while schema8Bounds[j] < start { j += 1 }
            out[cell] = UInt16(j)
        }
        return out
    }()

    /// The tables of the bucket search, as raw pointers that the hot path keeps, so that an
    /// observation reads no global (whose lazy initialisation is a call per access).
    @usableFromInline
    package struct Tables: @unchecked Sendable {
        @usableFromInline let bounds: UnsafePointer<Double>
        @usableFromInline let cells: UnsafePointer<UInt16>

        /// The process-wide tables, built once.
        package static let shared: Tables = {
            let bounds = UnsafeMutablePointer<Double>.allocate(capacity: schema8Bounds.count)
            bounds.initialize(from: schema8Bounds, count: schema8Bounds.count)
            let cells = UnsafeMutablePointer<UInt16>.allocate(capacity: firstBoundaryInCell.count)
            cells.initialize(from: firstBoundaryInCell, count: firstBoundaryInCell.count)
            return Tables(bounds: UnsafePointer(bounds), cells: UnsafePointer(cells))
        }()
    }

    // MARK: placing an observation

    /// Where one observation goes.
    package enum Placement: Hashable, Sendable {
        /// The positive bucket with this index.
        case positive(Int32)
        /// The negative bucket with this index.
        case negative(Int32)
        /// The zero bucket.
        case zero
        /// No bucket: the observation is NaN (it counts, but in no bucket).
        case none
    }

    /// The bucket of observation `value` at `schema` with zero threshold `zeroThreshold`.
    package static func placement(of value: Double, schema: Int8, zeroThreshold: Double) -> Placement {
        if value.isNaN { return .none }
        let magnitude = value.magnitude
        if magnitude <= zeroThreshold { return .zero }
        let index = key(magnitude: magnitude, schema: schema, tables: .shared)
        return value > 0 ? .positive(index) : .negative(index)
    }

    /// The index of the bucket that holds `magnitude` (positive, possibly `+Inf`; not NaN) at
    /// `schema`, which must be in -4...8.
    ///
    /// As client_golang: with `frac, exp = frexp(magnitude)` (`frac` in `[0.5, 1)`), the index
    /// at schema 8 is `(exp - 1) * 256 + j`, where `j` is the first boundary `>= frac`; at a
    /// lower schema it is that index divided by `2^(8 - schema)`, rounded up (the boundaries
    /// of lower schemas are among schema 8's). `+Inf` is placed as the largest finite double,
    /// one bucket further.
    @inlinable @inline(__always)
    package static func key(magnitude: Double, schema: Int8, tables: Tables) -> Int32 {
        var m = magnitude
        var overflow: Int32 = 0
        if _slowPath(m == .infinity) {
            m = .greatestFiniteMagnitude
            overflow = 1
        }
        // m = (1 + significand / 2^52) * 2^exponent, read from the bits (Double's `exponent`
        // and `significand` are calls into the runtime); a subnormal is normalised. So frexp's
        // frac is (1 + significand / 2^52) / 2 and its exp is exponent + 1.
        let bits = m.bitPattern
        var significand = bits & 0x000F_FFFF_FFFF_FFFF
        var exponent = Int32(truncatingIfNeeded: bits &>> 52) &- 1023
        if _slowPath(exponent == -1023) {
            let top = Int32(63 &- significand.leadingZeroBitCount)  // m = significand * 2^-1074
            exponent = top &- 1074
            significand = (significand &<< UInt64(52 &- top)) & 0x000F_FFFF_FFFF_FFFF
        }
        if schema <= 0 {
            // Schema 0: the index is exp, or exp - 1 for an exact power of two.
            let k0 = exponent &+ (significand == 0 ? 0 : 1)
            let shift = Int32(truncatingIfNeeded: -schema)
            return ((k0 &+ (1 &<< shift) &- 1) &>> shift) &+ overflow
        }
        let cell = Int(truncatingIfNeeded: significand &>> 43)
        var j = Int32(truncatingIfNeeded: tables.cells[cell])
        let frac = Double(bitPattern: 0x3FE0_0000_0000_0000 | significand)
        if tables.bounds[Int(j)] < frac { j &+= 1 }
        let k8 = exponent &* 256 &+ j
        let shift = Int32(truncatingIfNeeded: 8 &- schema)
        return ((k8 &+ (1 &<< shift) &- 1) &>> shift) &+ overflow
    }

    // MARK: schema from a bucket factor

    /// The schema client_golang picks for `NativeHistogramBucketFactor`: the largest `n` in
    /// -4...8 with `2^(2^-n) <= bucketFactor`; 8 for factors closer to 1 than schema 8 gets.
    /// - Precondition: `bucketFactor > 1`.
    package static func schema(forBucketFactor bucketFactor: Double) -> Int8 {
        precondition(bucketFactor > 1, "native histogram bucket factor \(bucketFactor) must be above 1")
        // client_golang takes floor(log2(log2(factor))); the same choice without logarithms:
        // the factors 2^(2^-n) are 65536, 256, 16, 4, 2 for n = -4...0, and each next one is
        // the square root of the one before.
        var schema = minimumSchema
        var factor = 65536.0
        while factor > bucketFactor && schema < maximumSchema {
            schema += 1
            factor = factor.squareRoot()
        }
        return schema
    }

    // MARK: bucket bounds

    /// The upper (inclusive, by magnitude) bound of bucket `index` at `schema`, as client_golang's
    /// `getLe`: the bucket of the largest finite double ends there, the next one at `+Inf`.
    package static func upperBound(index: Int32, schema: Int8) -> Double {
        if schema < 0 {
            let exp = Int(index) << Int(-schema)
            if exp == 1024 { return .greatestFiniteMagnitude }
            return exp > 1024 ? .infinity : Double(sign: .plus, exponent: exp, significand: 1)
        }
        let fracIndex = Int(index) & ((1 << Int(schema)) - 1)
        let frac = schema8Bounds[fracIndex << (8 - Int(schema))]
        let exp = (Int(index) >> Int(schema)) + 1
        if frac == 0.5 && exp == 1025 { return .greatestFiniteMagnitude }
        if exp > 1025 { return .infinity }
        return Double(sign: .plus, exponent: exp, significand: frac)
    }

    /// The lower (exclusive, by magnitude) bound of bucket `index` at `schema`.
    package static func lowerBound(index: Int32, schema: Int8) -> Double {
        upperBound(index: index - 1, schema: schema)
    }

    // MARK: coarsening

    /// The index at schema `target` of the bucket that contains bucket `index` of schema
    /// `source` (`target <= source`): `index / 2^(source - target)`, rounded up, as
    /// client_golang's `doubleBucketWidth` and Prometheus's schema reduction merge buckets.
    @inlinable
    package static func reducedIndex(_ index: Int32, from source: Int8, to target: Int8) -> Int32 {
        precondition(target <= source, "cannot raise a native histogram's schema from \(source) to \(target)")
        let shift = Int64(source - target)
        return Int32(truncatingIfNeeded: (Int64(index) + (1 << shift) - 1) >> shift)
    }
}

/// The buckets of one native histogram series, by index, while they are being combined: the
/// form in which a process's buckets are brought to a common schema and zero threshold and
/// added to others'.
package struct NativeBucketCounts: Hashable, Sendable {
    /// The schema of the indices.
    package var schema: Int8
    /// The zero bucket holds the observations `v` with `|v| <= zeroThreshold`.
    package var zeroThreshold: Double
    /// The observations in the zero bucket.
    package var zeroCount: Double = 0
    /// The observations in no bucket (NaN).
    package var unbucketedCount: Double = 0
    /// Positive buckets by index.
    package var positive: [Int32: Double] = [:]
    /// Negative buckets by index.
    package var negative: [Int32: Double] = [:]

    /// An empty set of buckets.
    package init(schema: Int8, zeroThreshold: Double) {
        self.schema = schema
        self.zeroThreshold = zeroThreshold
    }

    /// Every observation: the buckets, the zero bucket and the NaNs.
    package var count: Double {
        positive.values.reduce(0, +) + negative.values.reduce(0, +) + zeroCount + unbucketedCount
    }

    /// Counts `count` observations of `value`, placed at this schema and zero threshold.
    package mutating func observe(_ value: Double, count: Double = 1) {
        switch NativeHistogramMath.placement(of: value, schema: schema, zeroThreshold: zeroThreshold) {
        case .positive(let i): positive[i, default: 0] += count
        case .negative(let i): negative[i, default: 0] += count
        case .zero: zeroCount += count
        case .none: unbucketedCount += count
        }
    }

    /// Adds `count` to a bucket of schema `schema`, which may be finer than this one's (it is
    /// merged into the bucket that contains it). A bucket inside the zero bucket is added to
    /// the zero bucket, widening it to the bucket's upper bound when it straddles the
    /// threshold.
    package mutating func add(positive: Bool, index: Int32, schema source: Int8, count: Double) {
        let i = NativeHistogramMath.reducedIndex(index, from: source, to: schema)
        if NativeHistogramMath.lowerBound(index: i, schema: schema) < zeroThreshold {
            zeroCount += count
            zeroThreshold = Swift.max(zeroThreshold, NativeHistogramMath.upperBound(index: i, schema: schema))
            foldIntoZeroBucket()
            return
        }
        if positive { self.positive[i, default: 0] += count } else { self.negative[i, default: 0] += count }
    }

    /// Lowers the resolution to `target` (at most the current schema): each bucket is added to
    /// the bucket of `target` that contains it.
    package mutating func reduce(toSchema target: Int8) {
        guard target < schema else { return }
        func merged(_ buckets: [Int32: Double]) -> [Int32: Double] {
            var out: [Int32: Double] = [:]
            for (i, c) in buckets { out[NativeHistogramMath.reducedIndex(i, from: schema, to: target), default: 0] += c }
            return out
        }
        positive = merged(positive)
        negative = merged(negative)
        schema = target
        foldIntoZeroBucket()
    }

    /// Widens the zero bucket to at least `threshold`, as the native-histogram specification
    /// merges zero buckets: every bucket that reaches below the new threshold moves into the
    /// zero bucket, and when one straddles it the threshold grows to that bucket's upper bound.
    /// - Returns: the zero threshold now, at least `threshold`.
    @discardableResult
    package mutating func widenZeroBucket(to threshold: Double) -> Double {
        if threshold > zeroThreshold { zeroThreshold = threshold }
        foldIntoZeroBucket()
        return zeroThreshold
    }

    /// Moves the buckets that reach below the zero threshold into the zero bucket, raising the
    /// threshold to the upper bound of any that straddles it, until none is left.
    private mutating func foldIntoZeroBucket() {
        while true {
            var widest = zeroThreshold
            var moved = false
            for side in [true, false] {
                let buckets = side ? positive : negative
                for (i, c) in buckets where NativeHistogramMath.lowerBound(index: i, schema: schema) < zeroThreshold {
                    zeroCount += c
                    widest = Swift.max(widest, NativeHistogramMath.upperBound(index: i, schema: schema))
                    if side { positive[i] = nil } else { negative[i] = nil }
                    moved = true
                }
            }
            zeroThreshold = widest
            if !moved { return }
        }
    }

    /// Adds `other`, first bringing both to the lower of the two schemas and the wider of the
    /// two zero buckets.
    package mutating func merge(_ other: NativeBucketCounts) {
        var other = other
        let target = Swift.min(schema, other.schema)
        reduce(toSchema: target)
        other.reduce(toSchema: target)
        var threshold = Swift.max(zeroThreshold, other.zeroThreshold)
        // Widening one side can raise the threshold past buckets of the other: repeat until
        // both agree (with aligned schemas, at most twice).
        while true {
            let a = widenZeroBucket(to: threshold)
            let b = other.widenZeroBucket(to: a)
            if a == b { break }
            threshold = Swift.max(a, b)
        }
        zeroCount += other.zeroCount
        unbucketedCount += other.unbucketedCount
        for (i, c) in other.positive { positive[i, default: 0] += c }
        for (i, c) in other.negative { negative[i, default: 0] += c }
    }

    /// The populated buckets by ascending index: positive, then negative.
    package var sortedBuckets: (positive: [(index: Int32, count: Double)], negative: [(index: Int32, count: Double)]) {
        (positive.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
         negative.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }
}
