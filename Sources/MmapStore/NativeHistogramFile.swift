/// The native-histogram buckets of one process: the file `native_<pid>.pmh` and its format
/// (its name is a ``MetricFileName`` with ``MetricFileName/isNativeHistogram`` set).
///
/// prometheus_client's collector parses every `*.db` file of the directory and has no native
/// histograms, so the buckets live under another suffix (design decision 15). The container
/// is the one of the `*.db` files (``FileFormat``: the same header with this package's marker
/// and version, the same entries `[L][key][pad][8 bytes][8 bytes]`, 8-byte aligned), and the
/// file is claimed, grown, locked and appended to by ``MetricFile`` with the same crash-safe
/// rules: a new entry is complete before `used` is published, so a killed writer leaves a
/// readable file; counts are updated in place by atomic adds, without a lock.
///
/// Two kinds of entries share the file. A **series** entry comes first, then the **bucket**
/// entries that refer to it:
///
/// | entry  | key                                  | value (8 bytes)              | timestamp (8 bytes)       |
/// |--------|--------------------------------------|------------------------------|---------------------------|
/// | series | JSON `[family, family, {labels}, help]` (``SeriesKey``; first byte `[`) | configuration, see below | the zero threshold (float64) |
/// | bucket | 11 bytes, see below                  | the count: a `UInt64`, not a float64 | 0 |
///
/// A series entry's configuration is the writer's current schema and zero threshold: byte 0
/// of the value is the schema (`Int8`, -4...8), byte 1 is 1 once it is set, bytes 2...7 are 0.
/// An entry whose byte 1 is 0 (it was just appended, or re-created after a fork) says nothing
/// yet. The writer lowers its schema and widens its zero threshold when it holds too many
/// buckets, by rewriting the configuration: buckets already written keep their schema and
/// stay where they are, and the reader brings them to the configuration.
///
/// A bucket key (11 bytes, so an entry is 32 bytes):
///
/// | offset | size | field                                                                 |
/// |--------|------|-----------------------------------------------------------------------|
/// | 0      | 1    | kind: `p` positive bucket, `n` negative bucket, `z` zero bucket, `u` observations in no bucket (NaN) |
/// | 1      | 1    | schema of the index (`Int8`, -4...8); 0 for `z` and `u`               |
/// | 2      | 1    | 0                                                                     |
/// | 3      | 4    | the series: the file offset of its series entry's value (`UInt32`)    |
/// | 7      | 4    | the bucket index (`Int32`, Prometheus's: at schema `s` positive bucket `i` holds `(2^((i-1)/2^s), 2^(i/2^s)]`); 0 for `z` and `u` |
///
/// All integers are little-endian. Reading a process's series, the reader takes the lowest
/// of the configured schema and the schemas of its buckets, reduces every bucket to it, and
/// moves every bucket that reaches below the zero threshold into the zero bucket; the count
/// is the sum of all buckets, the zero bucket and `u`. The sum of the observations is not
/// here: it is the series' `_sum` in the process's `histogram_<pid>.db`.
///
/// The age buckets of summaries' quantile windows share the file: series entries whose sample
/// name starts with `quantiles ` (``SummaryWindowEntry``, which says how their fields differ),
/// with bucket entries as above.
package enum NativeHistogramFile {
    /// The length of a bucket key.
    package static let bucketKeyLength = 11
    /// The schemas of native histograms.
    package static let schemas: ClosedRange<Int8> = -4...8

    /// What a bucket entry counts.
    package enum BucketKind: UInt8, Hashable, Sendable {
        /// A positive bucket (`p`).
        case positive = 0x70
        /// A negative bucket (`n`).
        case negative = 0x6E
        /// The zero bucket (`z`).
        case zero = 0x7A
        /// Observations in no bucket: NaN (`u`).
        case unbucketed = 0x75
    }

    /// One bucket entry's identity within its series.
    package struct Bucket: Hashable, Sendable {
        /// What it counts.
        package var kind: BucketKind
        /// The schema of `index` (0 for the zero bucket and NaN).
        package var schema: Int8
        /// The bucket index (0 for the zero bucket and NaN).
        package var index: Int32

        /// Creates a bucket identity.
        package init(kind: BucketKind, schema: Int8 = 0, index: Int32 = 0) {
            self.kind = kind
            self.schema = kind == .positive || kind == .negative ? schema : 0
            self.index = kind == .positive || kind == .negative ? index : 0
        }
    }

    /// The key of `bucket` in the series whose entry's value is at file offset `series`.
    package static func key(_ bucket: Bucket, series: UInt32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: bucketKeyLength)
        out[0] = bucket.kind.rawValue
        out[1] = UInt8(bitPattern: bucket.schema)
        withUnsafeBytes(of: series.littleEndian) { for i in 0..<4 { out[3 + i] = $0[i] } }
        withUnsafeBytes(of: bucket.index.littleEndian) { for i in 0..<4 { out[7 + i] = $0[i] } }
        return out
    }

    /// The value of a series entry that configures `schema` and says it is set.
    package static func configuration(schema: Int8) -> UInt64 {
        UInt64(UInt8(bitPattern: schema)) | 1 << 8
    }

    /// The valid bucket indices at `schema`: from the bucket of the smallest subnormal to the
    /// one of the infinities.
    package static func indexRange(schema: Int8) -> ClosedRange<Int32> {
        schema >= 0
            ? (-1075 << Int32(schema))...((1024 << Int32(schema)) + 1)
            : (-(1075 >> Int32(-schema)) - 1)...((1024 >> Int32(-schema)) + 1)
    }

    /// One series of a native-histogram file, as read.
    package struct Series: Sendable {
        /// The series' key (its sample name is the family name).
        package var key: SeriesKey
        /// The configured schema, when the writer had set it.
        package var schema: Int8?
        /// The configured zero threshold, when the writer had set it.
        package var zeroThreshold: Double?
        /// The bucket entries, with their counts.
        package var buckets: [(bucket: Bucket, count: UInt64)] = []
    }

    /// Reads and checks a native-histogram file.
    ///
    /// Every entry is bounds-checked as a `*.db` entry is; a series key must decode, a bucket
    /// key must be 11 bytes of a known kind and a valid schema and index, and refer to a series
    /// entry before it; a configuration must be well-formed.
    /// - Returns: the series in file order, and how many entries the file holds.
    /// - Throws: ``MetricFileError`` naming the file and the first problem.
    package static func read(path: String, reader: inout MetricFileReader) throws(MetricFileError) -> (series: [Series], entries: Int) {
        let file = try reader.load(path: path)
        var series: [Series] = []
        var byOffset: [UInt32: Int] = [:]
        var seen = Set<[UInt8]>()
        var problem: MetricFileError?
        var entries = 0
        try file.forEachEntry { entry in
            guard problem == nil else { return }
            entries += 1
            func fail(_ reason: String) {
                problem = MetricFileError(path: path, kind: .invalidKey(offset: entry.offset, KeyDecodingError(offset: 0, reason: reason)))
            }
            guard seen.insert(Array(entry.key)).inserted else { return fail("duplicate key") }
            let valueOffset = entry.offset + 4 + entry.key.count + FileFormat.padding(keyLength: entry.key.count)
            let raw = entry.value.bitPattern
            if entry.key.first == UInt8(ascii: "[") {
                let key: SeriesKey
                do throws(KeyDecodingError) { key = try SeriesKey(decoding: entry.key) } catch {
                    problem = MetricFileError(path: path, kind: .invalidKey(offset: entry.offset, error))
                    return
                }
                var s = Series(key: key)
                switch raw >> 8 {
                case 0: guard raw == 0 else { return fail("configuration without its set flag") }
                case 1:
                    let schema = Int8(bitPattern: UInt8(truncatingIfNeeded: raw))
                    guard schemas.contains(schema) else { return fail("schema \(schema) outside -4...8") }
                    guard entry.timestamp >= 0, entry.timestamp.isFinite else { return fail("zero threshold \(entry.timestamp)") }
                    s.schema = schema
                    s.zeroThreshold = entry.timestamp
                default: return fail("configuration \(raw) is not a schema")
                }
                byOffset[UInt32(truncatingIfNeeded: valueOffset)] = series.count
                series.append(s)
                return
            }
            guard entry.key.count == bucketKeyLength, let kind = BucketKind(rawValue: entry.key[0]), entry.key[2] == 0 else {
                return fail("neither a series key nor a bucket key")
            }
            let schema = Int8(bitPattern: entry.key[1])
            let ref = entry.key.loadUnaligned(fromByteOffset: 3, as: UInt32.self).littleEndian
            let index = entry.key.loadUnaligned(fromByteOffset: 7, as: Int32.self).littleEndian
            guard let owner = byOffset[ref] else { return fail("bucket of no series (offset \(ref))") }
            switch kind {
            case .positive, .negative:
                guard schemas.contains(schema) else { return fail("schema \(schema) outside -4...8") }
                guard indexRange(schema: schema).contains(index) else { return fail("index \(index) impossible at schema \(schema)") }
            case .zero, .unbucketed:
                guard schema == 0, index == 0 else { return fail("zero or NaN bucket with a schema or index") }
            }
            guard entry.timestamp.bitPattern == 0 else { return fail("bucket with a timestamp") }
            series[owner].buckets.append((Bucket(kind: kind, schema: schema, index: index), raw))
        }
        if let problem { throw problem }
        return (series, entries)
    }
}
