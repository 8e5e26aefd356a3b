import Synchronization

/// The latest exemplar of each series (each bucket of a histogram) of one process: the file
/// `exemplars_<pid>.pmx` and its format (its name is a ``MetricFileName`` with
/// ``MetricFileName/isExemplars`` set).
///
/// prometheus_client's collector parses every `*.db` file and has no exemplars in
/// multiprocess mode, so they live under another suffix (design decision 15). The container is
/// the one of the `*.db` files (``FileFormat``: the same header with this package's marker and
/// version, the same entries `[L][key][pad][8 bytes][8 bytes]`, 8-byte aligned), claimed,
/// grown, locked and appended to by ``MetricFile`` with the same crash-safe rules.
///
/// Two kinds of entries share the file. A **series** entry names a sample; its **record**
/// entry holds that sample's latest exemplar:
///
/// | entry  | key                                         | value (8 bytes)                          | timestamp (8 bytes) |
/// |--------|---------------------------------------------|------------------------------------------|---------------------|
/// | series | JSON `[family, sample, {labels}, help]` (``SeriesKey``; first byte `[`), the key of the sample's `*.db` entry (`x_total`; `x_bucket` with its `le`) | the file offset of its record's key (`UInt64`; 0 until linked) | 0 |
/// | record | ``recordLength`` bytes, see below; first byte `x` | 0 | 0 |
///
/// A record's key bytes are its storage, rewritten in place by its writer (the key of a record
/// is not an identity: nothing looks a record up by its key). It holds two copies of the
/// exemplar's fields, so that the last complete exemplar stays readable while the other copy is
/// being written, or after its writer was killed in the middle:
///
/// | offset | size | field                                                                      |
/// |--------|------|----------------------------------------------------------------------------|
/// | 0      | 1    | `x` (0x78)                                                                 |
/// | 1      | 3    | 0                                                                          |
/// | 4      | 8    | sequence `s` (`UInt64`; 8-byte aligned in the file): below 2 never written; else copy `(s >> 1) & 1` holds the latest complete exemplar, and an odd `s` says the other copy is being written |
/// | 12     | 4    | the series: the file offset of its series entry's value (`UInt32`)         |
/// | 16     | 4    | 0                                                                          |
/// | 20     | 536  | copy 0                                                                     |
/// | 556    | 536  | copy 1                                                                     |
///
/// A copy:
///
/// | offset | size | field                                                                      |
/// |--------|------|----------------------------------------------------------------------------|
/// | 0      | 8    | the exemplar's value (float64)                                             |
/// | 8      | 8    | the exemplar's timestamp (float64, UNIX seconds)                           |
/// | 16     | 4    | `n`, the length of the labels (`UInt32`, at most 512)                       |
/// | 20     | 4    | 0                                                                          |
/// | 24     | n    | the labels, each `[name length: UInt8][name][value length: UInt16][value]` (UTF-8), then zeros up to 512 bytes |
///
/// 512 bytes always suffice: OpenMetrics allows 128 characters of names and values, a character
/// takes at most 4 bytes, and a label's 3 length bytes come with a name of at least one ASCII
/// character.
///
/// All integers are little-endian. A writer updates a record without a lock: it moves the
/// sequence from even `s` to `s + 1` with a compare-and-exchange (another thread already
/// writing: the newer exemplar is dropped), writes copy `((s + 2) >> 1) & 1` (the one readers
/// are not reading), then stores `s + 2`, which publishes it. A reader takes `s1`, reads copy
/// `(s1 >> 1) & 1`, then takes `s2`; the copy was untouched if `s2 - s1` is at most 2 for an
/// even `s1` and at most 1 for an odd one (the next write into that copy starts after that).
/// Reading a file, the reader copies it three times and takes `s1` from the first copy, the
/// fields from the second and `s2` from the third. A writer killed in the middle leaves an odd
/// sequence: readers still read the last complete copy, and a process that adopts the file
/// (same pid, lock free) moves the sequence back to `s - 1`, which names the same copy.
package enum ExemplarFile {
    /// The length of a record's key.
    package static let recordLength = 20 + 2 * copyLength
    /// The first byte of a record's key.
    package static let recordKind: UInt8 = 0x78
    /// The length of one copy of the fields.
    package static let copyLength = 24 + labelsCapacity
    /// The most label bytes a copy holds.
    package static let labelsCapacity = 512

    /// The offsets of the fields in a record and in a copy.
    package enum Field {
        /// The sequence.
        package static let sequence = 4
        /// The series reference.
        package static let series = 12
        /// The first copy.
        package static let copies = 20
        /// The value, in a copy.
        package static let value = 0
        /// The timestamp, in a copy.
        package static let timestamp = 8
        /// The labels' length, in a copy.
        package static let labelsLength = 16
        /// The labels, in a copy.
        package static let labels = 24
    }

    /// The offset in a record of the copy a reader reads at sequence `s`.
    @inline(__always)
    package static func copyOffset(sequence s: UInt64) -> Int { Field.copies + Int((s >> 1) & 1) * copyLength }

    /// Whether a copy read at sequence `first` was untouched until the sequence read `second`.
    @inline(__always)
    package static func untouched(first: UInt64, second: UInt64) -> Bool {
        first >= 2 && second >= first && second - first <= (first & 1 == 0 ? 2 : 1)
    }

    /// A new record's key for the series whose entry's value is at `seriesOffset`: never
    /// written.
    package static func emptyRecord(seriesOffset: UInt32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: recordLength)
        out[0] = recordKind
        withUnsafeBytes(of: seriesOffset.littleEndian) { for i in 0..<4 { out[Field.series + i] = $0[i] } }
        return out
    }

    /// The encoded form of exemplar labels, as a record stores them. The caller has checked the
    /// OpenMetrics limit (128 characters), so the result fits ``labelsCapacity``.
    package static func encodeLabels(_ labels: [Label]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(labels.reduce(0) { $0 + 3 + $1.name.utf8.count + $1.value.utf8.count })
        for label in labels {
            out.append(UInt8(truncatingIfNeeded: label.name.utf8.count))
            out.append(contentsOf: label.name.utf8)
            let n = UInt16(truncatingIfNeeded: label.value.utf8.count)
            out.append(UInt8(truncatingIfNeeded: n)); out.append(UInt8(truncatingIfNeeded: n >> 8))
            out.append(contentsOf: label.value.utf8)
        }
        return out
    }

    /// Decodes labels encoded by ``encodeLabels(_:)``; nil when the bytes are not well-formed
    /// (a length past the end, an invalid label name, invalid UTF-8).
    package static func decodeLabels(_ b: UnsafeRawBufferPointer) -> [Label]? {
        var labels: [Label] = []
        var i = 0
        while i < b.count {
            let nameLength = Int(b[i])
            guard i + 1 + nameLength + 2 <= b.count else { return nil }
            let name = UnsafeRawBufferPointer(rebasing: b[(i + 1)..<(i + 1 + nameLength)])
            guard isLabelName(name) else { return nil }
            let v = i + 1 + nameLength
            let valueLength = Int(b[v]) | Int(b[v + 1]) << 8
            guard v + 2 + valueLength <= b.count,
                  let value = String(validating: UnsafeRawBufferPointer(rebasing: b[(v + 2)..<(v + 2 + valueLength)]), as: UTF8.self)
            else { return nil }
            labels.append(Label(String(decoding: name, as: UTF8.self), value))
            i = v + 2 + valueLength
        }
        return labels
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, so that a damaged file cannot inject text into an exposition.
    private static func isLabelName(_ b: UnsafeRawBufferPointer) -> Bool {
        guard let first = b.first, !(0x30...0x39).contains(first) else { return false }
        return b.allSatisfy { (0x61...0x7A).contains($0) || (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }
    }

    /// One exemplar as read.
    package struct Exemplar: Hashable, Sendable {
        /// Its labels.
        package var labels: [Label]
        /// The observed value.
        package var value: Double
        /// When it was recorded (UNIX seconds).
        package var timestamp: Double

        /// Creates an exemplar.
        package init(labels: [Label], value: Double, timestamp: Double) {
            self.labels = labels
            self.value = value
            self.timestamp = timestamp
        }
    }

    /// One sample's exemplar in a file, as read.
    package struct Entry: Sendable {
        /// The sample's key (sample name and labels as in its `*.db` entry).
        package var key: SeriesKey
        /// Its latest exemplar.
        package var exemplar: Exemplar
    }

    @inline(__always)
    static func word(_ p: UnsafeMutableRawPointer, _ offset: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (p + offset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    @inline(__always)
    static func word32(_ p: UnsafeMutableRawPointer, _ offset: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (p + offset).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    /// Reads the record at `record` (its key's first byte) in memory this process maps or owns:
    /// the read described above, every field through relaxed atomics (so that a concurrent
    /// writer is no data race), retried a few times if writers overtook it.
    /// - Returns: the exemplar, or nil when none was written or the bytes are not well-formed.
    package static func readRecord(at record: UnsafeMutableRawPointer) -> Exemplar? {
        let sequence = word(record, Field.sequence)
        for _ in 0..<8 {
            let first = sequence.pointee.load(ordering: .acquiring)
            if first < 2 { return nil }
            let copy = record + copyOffset(sequence: first)
            let value = word(copy, Field.value).pointee.load(ordering: .relaxed)
            let time = word(copy, Field.timestamp).pointee.load(ordering: .relaxed)
            let n = Int(word32(copy, Field.labelsLength).pointee.load(ordering: .relaxed))
            var labels: [UInt8] = []
            if n <= labelsCapacity {
                labels.reserveCapacity(n + 8)
                for w in stride(from: 0, to: n, by: 8) {
                    withUnsafeBytes(of: word(copy, Field.labels + w).pointee.load(ordering: .relaxed)) { labels.append(contentsOf: $0) }
                }
                labels.removeLast(labels.count - n)
            }
            atomicMemoryFence(ordering: .acquiring)
            guard untouched(first: first, second: sequence.pointee.load(ordering: .relaxed)) else { continue }
            guard n <= labelsCapacity, let decoded = labels.withUnsafeBytes({ decodeLabels($0) }) else { return nil }
            return Exemplar(labels: decoded, value: Double(bitPattern: value), timestamp: Double(bitPattern: time))
        }
        return nil
    }

    /// Writes an exemplar into the record at `record` without a lock.
    /// - Parameters:
    ///   - labels: the encoded labels (``encodeLabels(_:)``), at most ``labelsCapacity`` bytes.
    /// - Returns: false when another thread was writing the record, and this exemplar was dropped.
    @discardableResult
    package static func write(at record: UnsafeMutableRawPointer, labels: [UInt8], value: Double, timestamp: Double) -> Bool {
        guard labels.count <= labelsCapacity else { return false }
        let sequence = word(record, Field.sequence)
        let s = sequence.pointee.load(ordering: .relaxed)
        guard s & 1 == 0, sequence.pointee.compareExchange(expected: s, desired: s &+ 1, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        let copy = record + copyOffset(sequence: s &+ 2)
        word(copy, Field.value).pointee.store(value.bitPattern, ordering: .relaxed)
        word(copy, Field.timestamp).pointee.store(timestamp.bitPattern, ordering: .relaxed)
        word32(copy, Field.labelsLength).pointee.store(UInt32(labels.count), ordering: .relaxed)
        labels.withUnsafeBytes { b in
            // Whole words straight from the bytes, the tail assembled (little-endian, as in memory).
            let whole = b.count & ~7
            var w = 0
            while w < whole {
                word(copy, Field.labels + w).pointee.store(b.loadUnaligned(fromByteOffset: w, as: UInt64.self), ordering: .relaxed)
                w += 8
            }
            if whole < b.count {
                var bits: UInt64 = 0
                for i in whole..<b.count { bits |= UInt64(b[i]) << (8 * UInt64(i - whole)) }
                word(copy, Field.labels + whole).pointee.store(bits, ordering: .relaxed)
            }
        }
        sequence.pointee.store(s &+ 2, ordering: .releasing)
        return true
    }

    /// Makes a record left odd by a killed writer writable again, naming the same complete
    /// copy. Only the file's owner calls it, before any thread writes the record.
    static func resetIfTorn(_ record: UnsafeMutableRawPointer) {
        let sequence = word(record, Field.sequence)
        let s = sequence.pointee.load(ordering: .acquiring)
        if s & 1 == 1 { sequence.pointee.store(s - 1, ordering: .releasing) }
    }

    /// Reads and checks an exemplar file.
    ///
    /// The file is read three times (see above); every entry is bounds-checked as a `*.db`
    /// entry is; a series key must decode, a record must be ``recordLength`` bytes of kind `x`
    /// and refer back to its series entry; a series entry must point at a record or be 0; a
    /// copy's labels must be well-formed. Records never written, or overtaken by writers during
    /// the read, or not linked from a series, are left out.
    /// - Returns: one entry per sample with an exemplar, in file order, and how many entries
    ///   the file holds.
    /// - Throws: ``MetricFileError`` naming the file and the first problem.
    package static func read(path: String, reader: inout MetricFileReader) throws(MetricFileError) -> (entries: [Entry], count: Int) {
        let first = Array(try reader.load(path: path).bytes)
        let middleBytes = Array(try reader.load(path: path).bytes)
        let last = Array(try reader.load(path: path).bytes)
        var out: [Entry] = []
        var count = 0
        let result = middleBytes.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> Result<Void, MetricFileError> in
            do throws(MetricFileError) {
                try parse(bytes, first: first, last: last, path: path, into: &out, count: &count)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
        return (out, count)
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer, first: [UInt8], last: [UInt8], path: String,
                              into out: inout [Entry], count: inout Int) throws(MetricFileError) {
        func problem(_ offset: Int, _ reason: String) -> MetricFileError {
            MetricFileError(path: path, kind: .invalidKey(offset: offset, KeyDecodingError(offset: 0, reason: reason)))
        }
        var series: [(key: SeriesKey, valueOffset: Int, record: Int)] = []
        var records: [Int: Int] = [:]  // record key offset -> its series reference
        var failure: MetricFileError?
        try LoadedMetricFile.forEachEntry(in: bytes, path: path) { entry in
            guard failure == nil else { return }
            count += 1
            let keyOffset = entry.offset + 4
            let valueOffset = keyOffset + entry.key.count + FileFormat.padding(keyLength: entry.key.count)
            if entry.key.first == UInt8(ascii: "[") {
                let key: SeriesKey
                do throws(KeyDecodingError) { key = try SeriesKey(decoding: entry.key) } catch {
                    failure = MetricFileError(path: path, kind: .invalidKey(offset: entry.offset, error))
                    return
                }
                guard entry.timestamp.bitPattern == 0 else { return failure = problem(entry.offset, "exemplar series entry with a timestamp") }
                let target = entry.value.bitPattern
                guard target < UInt64(bytes.count) else {
                    return failure = problem(entry.offset, "exemplar series entry points past the file (\(target))")
                }
                series.append((key, valueOffset, Int(target)))
                return
            }
            guard entry.key.count == recordLength, entry.key[0] == recordKind, entry.key[1] == 0, entry.key[2] == 0, entry.key[3] == 0 else {
                return failure = problem(entry.offset, "neither a series key nor an exemplar record")
            }
            guard entry.value.bitPattern == 0, entry.timestamp.bitPattern == 0 else { return failure = problem(entry.offset, "exemplar record with a value") }
            records[keyOffset] = Int(entry.key.loadUnaligned(fromByteOffset: Field.series, as: UInt32.self).littleEndian)
        }
        if let failure { throw failure }
        for s in series where s.record != 0 {
            guard let ref = records[s.record], ref == s.valueOffset else {
                throw problem(s.valueOffset, "exemplar series entry points at no record of its own (\(s.record))")
            }
            let at = s.record + Field.sequence
            guard at + 8 <= first.count, at + 8 <= last.count else { continue }  // appended during the read
            let before = first.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian }
            let after = last.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian }
            guard untouched(first: before, second: after) else { continue }
            let copy = s.record + copyOffset(sequence: before)
            let n = Int(bytes.loadUnaligned(fromByteOffset: copy + Field.labelsLength, as: UInt32.self).littleEndian)
            guard n <= labelsCapacity,
                  let labels = decodeLabels(UnsafeRawBufferPointer(rebasing: bytes[(copy + Field.labels)..<(copy + Field.labels + n)]))
            else { throw problem(s.record - 4, "exemplar labels not well-formed (\(n) bytes)") }
            let value = Double(bitPattern: bytes.loadUnaligned(fromByteOffset: copy + Field.value, as: UInt64.self).littleEndian)
            let time = Double(bitPattern: bytes.loadUnaligned(fromByteOffset: copy + Field.timestamp, as: UInt64.self).littleEndian)
            out.append(Entry(key: s.key, exemplar: Exemplar(labels: labels, value: value, timestamp: time)))
        }
    }
}
