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
/// is not an identity: nothing looks a record up by its key):
///
/// | offset | size | field                                                                      |
/// |--------|------|----------------------------------------------------------------------------|
/// | 0      | 1    | `x` (0x78)                                                                 |
/// | 1      | 3    | 0                                                                          |
/// | 4      | 8    | sequence (`UInt64`): 0 never written, odd while being written, even once written (8-byte aligned in the file) |
/// | 12     | 8    | the exemplar's value (float64)                                             |
/// | 20     | 8    | the exemplar's timestamp (float64, UNIX seconds)                           |
/// | 28     | 4    | the series: the file offset of its series entry's value (`UInt32`)         |
/// | 32     | 4    | `n`, the length of the labels (`UInt32`)                                   |
/// | 36     | n    | the labels (then zeros), as the JSON of a ``SeriesKey`` with empty family, sample and help (`["","",{"trace_id":"abc"},""]`) |
///
/// All integers are little-endian. A writer updates a record without a lock, as a sequence
/// lock: it moves the sequence from even `s` to `s + 1` with a compare-and-exchange (another
/// thread already writing: the newer exemplar is dropped), writes the fields, then stores
/// `s + 2`. A reader copies the file three times and keeps a record only when its sequence is
/// even, non-zero and equal in the three copies (so no write overlapped the middle copy,
/// whose fields it takes): a torn record is skipped, never exposed. A writer killed in the
/// middle leaves an odd sequence, which readers skip; a process that adopts the file (same
/// pid, lock free) resets such a record before using it.
package enum ExemplarFile {
    /// The length of a record's key.
    package static let recordLength = 1020
    /// The first byte of a record's key.
    package static let recordKind: UInt8 = 0x78
    /// Where the labels start in a record.
    package static let labelsOffset = 36
    /// The most label bytes a record holds; the 128-character limit of OpenMetrics keeps every
    /// exemplar's labels below it, even with every character escaped as `\u00XX`.
    package static let labelsCapacity = recordLength - labelsOffset

    /// The offsets of the fields in a record.
    package enum Field {
        /// The sequence.
        package static let sequence = 4
        /// The value.
        package static let value = 12
        /// The timestamp.
        package static let timestamp = 20
        /// The series reference.
        package static let series = 28
        /// The labels' length.
        package static let labelsLength = 32
    }

    /// A new record's key for the series whose entry's value is at `seriesOffset`: never
    /// written.
    package static func emptyRecord(seriesOffset: UInt32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: recordLength)
        out[0] = recordKind
        withUnsafeBytes(of: seriesOffset.littleEndian) { for i in 0..<4 { out[Field.series + i] = $0[i] } }
        return out
    }

    /// The encoded form of exemplar labels, as a record stores them.
    package static func encodeLabels(_ labels: [Label]) -> [UInt8] {
        SeriesKey(family: "", sample: "", labels: labels, help: "").encoded()
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

    /// Reads the record at `record` (its key's first byte) in memory this process maps or owns:
    /// the sequence-lock read (every field through relaxed atomics, so that a concurrent
    /// writer is no data race), retried a few times while a writer is busy.
    /// - Returns: the exemplar, or nil when none was written, or a writer kept it busy.
    package static func readRecord(at record: UnsafeMutableRawPointer) -> Exemplar? {
        let sequence = word(record, Field.sequence)
        for _ in 0..<8 {
            let before = sequence.pointee.load(ordering: .acquiring)
            if before == 0 { return nil }
            if before & 1 == 1 { continue }
            let value = word(record, Field.value).pointee.load(ordering: .relaxed)
            let time = word(record, Field.timestamp).pointee.load(ordering: .relaxed)
            let n = Int((record + Field.labelsLength).assumingMemoryBound(to: Atomic<UInt32>.self).pointee.load(ordering: .relaxed))
            var labels: [UInt8] = []
            if n <= labelsCapacity {
                labels.reserveCapacity(n + 8)
                for w in stride(from: 0, to: n, by: 8) {
                    withUnsafeBytes(of: word(record, labelsOffset + w).pointee.load(ordering: .relaxed)) { labels.append(contentsOf: $0) }
                }
                labels.removeLast(labels.count - n)
            }
            atomicMemoryFence(ordering: .acquiring)
            guard sequence.pointee.load(ordering: .relaxed) == before else { continue }
            guard n <= labelsCapacity, let key = try? labels.withUnsafeBytes({ b throws(KeyDecodingError) in try SeriesKey(decoding: b) }) else {
                return nil
            }
            return Exemplar(labels: key.labels, value: Double(bitPattern: value), timestamp: Double(bitPattern: time))
        }
        return nil
    }

    /// Writes an exemplar into the record at `record` without a lock (the sequence-lock write).
    /// - Parameters:
    ///   - labels: the encoded labels (``encodeLabels(_:)``), at most ``labelsCapacity`` bytes.
    /// - Returns: false when another thread was writing the record, and this exemplar was dropped.
    @discardableResult
    package static func write(at record: UnsafeMutableRawPointer, labels: [UInt8], value: Double, timestamp: Double) -> Bool {
        guard labels.count <= labelsCapacity else { return false }
        let sequence = (record + Field.sequence).assumingMemoryBound(to: Atomic<UInt64>.self)
        let s = sequence.pointee.load(ordering: .relaxed)
        guard s & 1 == 0, sequence.pointee.compareExchange(expected: s, desired: s &+ 1, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        (record + Field.value).assumingMemoryBound(to: Atomic<UInt64>.self).pointee.store(value.bitPattern, ordering: .relaxed)
        (record + Field.timestamp).assumingMemoryBound(to: Atomic<UInt64>.self).pointee.store(timestamp.bitPattern, ordering: .relaxed)
        (record + Field.labelsLength).assumingMemoryBound(to: Atomic<UInt32>.self).pointee.store(UInt32(labels.count), ordering: .relaxed)
        labels.withUnsafeBytes { b in
            // Whole words straight from the bytes, the tail assembled (little-endian, as in memory).
            let whole = b.count & ~7
            var w = 0
            while w < whole {
                word(record, labelsOffset + w).pointee.store(b.loadUnaligned(fromByteOffset: w, as: UInt64.self), ordering: .relaxed)
                w += 8
            }
            if whole < b.count {
                var bits: UInt64 = 0
                for i in whole..<b.count { bits |= UInt64(b[i]) << (8 * UInt64(i - whole)) }
                word(record, labelsOffset + whole).pointee.store(bits, ordering: .relaxed)
            }
        }
        sequence.pointee.store(s &+ 2, ordering: .releasing)
        return true
    }

    /// Makes a record left odd by a killed writer usable again, as never written. Only the
    /// file's owner calls it, before any thread writes the record.
    static func resetIfTorn(_ record: UnsafeMutableRawPointer) {
        let sequence = (record + Field.sequence).assumingMemoryBound(to: Atomic<UInt64>.self)
        let s = sequence.pointee.load(ordering: .acquiring)
        guard s & 1 == 1 else { return }
        (record + Field.labelsLength).assumingMemoryBound(to: Atomic<UInt32>.self).pointee.store(0, ordering: .relaxed)
        sequence.pointee.store(0, ordering: .releasing)
    }

    /// Reads and checks an exemplar file.
    ///
    /// The file is read three times (see above); every entry is bounds-checked as a `*.db`
    /// entry is; a series key must decode, a record must be ``recordLength`` bytes of kind `x`
    /// and refer back to its series entry; a series entry must point at a record or be 0.
    /// Records being written, never written or not linked from a series are left out.
    /// - Returns: one entry per sample with an exemplar, in file order, and how many entries
    ///   the file holds.
    /// - Throws: ``MetricFileError`` naming the file and the first problem.
    package static func read(path: String, reader: inout MetricFileReader) throws(MetricFileError) -> (entries: [Entry], count: Int) {
        let first = Array(try reader.load(path: path).bytes)
        let middleBytes = Array(try reader.load(path: path).bytes)
        let last = Array(try reader.load(path: path).bytes)
        var out: [Entry] = []
        var problem: MetricFileError?
        var count = 0
        let result = middleBytes.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> Result<Void, MetricFileError> in
          do throws(MetricFileError) {
            // Record key offset -> the value offset of the series entry that points at it.
            var series: [(key: SeriesKey, valueOffset: Int, record: Int)] = []
            var records: [Int: Int] = [:]  // record key offset -> its series reference
            try LoadedMetricFile.forEachEntry(in: bytes, path: path) { entry in
                guard problem == nil else { return }
                count += 1
                func fail(_ reason: String) {
                    problem = MetricFileError(path: path, kind: .invalidKey(offset: entry.offset, KeyDecodingError(offset: 0, reason: reason)))
                }
                let keyOffset = entry.offset + 4
                let valueOffset = keyOffset + entry.key.count + FileFormat.padding(keyLength: entry.key.count)
                if entry.key.first == UInt8(ascii: "[") {
                    let key: SeriesKey
                    do throws(KeyDecodingError) { key = try SeriesKey(decoding: entry.key) } catch {
                        problem = MetricFileError(path: path, kind: .invalidKey(offset: entry.offset, error))
                        return
                    }
                    guard entry.timestamp.bitPattern == 0 else { return fail("exemplar series entry with a timestamp") }
                    let target = entry.value.bitPattern
                    guard target < UInt64(bytes.count) else { return fail("exemplar series entry points past the file (\(target))") }
                    series.append((key, valueOffset, Int(target)))
                    return
                }
                guard entry.key.count == recordLength, entry.key[0] == recordKind, entry.key[1] == 0, entry.key[2] == 0, entry.key[3] == 0 else {
                    return fail("neither a series key nor an exemplar record")
                }
                guard entry.value.bitPattern == 0, entry.timestamp.bitPattern == 0 else { return fail("exemplar record with a value") }
                records[keyOffset] = Int(entry.key.loadUnaligned(fromByteOffset: Field.series, as: UInt32.self).littleEndian)
            }
            if let problem { throw problem }
            for s in series where s.record != 0 {
                guard let ref = records[s.record], ref == s.valueOffset else {
                    throw MetricFileError(path: path, kind: .invalidKey(offset: s.valueOffset, KeyDecodingError(
                        offset: 0, reason: "exemplar series entry points at no record of its own (\(s.record))")))
                }
                let at = s.record + Field.sequence
                guard at + 8 <= first.count, at + 8 <= last.count else { continue }  // appended during the read
                let sequence = bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian
                guard sequence != 0, sequence & 1 == 0,
                      first.withUnsafeBytes({ $0.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian }) == sequence,
                      last.withUnsafeBytes({ $0.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian }) == sequence
                else { continue }
                let n = Int(bytes.loadUnaligned(fromByteOffset: s.record + Field.labelsLength, as: UInt32.self).littleEndian)
                guard n <= labelsCapacity else {
                    throw MetricFileError(path: path, kind: .invalidKey(offset: s.record - 4, KeyDecodingError(offset: 0, reason: "exemplar labels of \(n) bytes")))
                }
                let labels: SeriesKey
                do throws(KeyDecodingError) {
                    labels = try SeriesKey(decoding: UnsafeRawBufferPointer(rebasing: bytes[(s.record + labelsOffset)..<(s.record + labelsOffset + n)]))
                } catch {
                    throw MetricFileError(path: path, kind: .invalidKey(offset: s.record - 4, error))
                }
                let value = Double(bitPattern: bytes.loadUnaligned(fromByteOffset: s.record + Field.value, as: UInt64.self).littleEndian)
                let time = Double(bitPattern: bytes.loadUnaligned(fromByteOffset: s.record + Field.timestamp, as: UInt64.self).littleEndian)
                out.append(Entry(key: s.key, exemplar: Exemplar(labels: labels.labels, value: value, timestamp: time)))
            }
            return .success(())
          } catch {
            return .failure(error)
          }
        }
        try result.get()
        return (out, count)
    }
}
