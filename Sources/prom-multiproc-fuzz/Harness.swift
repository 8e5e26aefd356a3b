import SystemCalls
import MmapStore

/// The checks run on one fuzz input. Every violated property ends the process with a
/// `fatalError` naming it, which libFuzzer (or the mutation driver) reports as a crash.
///
/// One input is used five ways:
/// 1. as the used bytes of a metric file: `LoadedMetricFile.forEachEntry(in:)` walks it, and
///    the entries it yields are compared with an independent, obviously-correct walk;
/// 2. as the whole contents of a file on disk: `MetricFileReader.load(path:)`, then the walk
///    and the key decoder on every entry (what the collector does on each scrape);
/// 3. as the same file read as a native-histogram file: `NativeHistogramFile.read`, whose
///    series must hold only valid schemas, thresholds and indices;
/// 4. as the same file read as an exemplar file: `ExemplarFile.read`, whose exemplars must have
///    valid label names;
/// 5. as one key: `SeriesKey(decoding:)`.
/// Every key that decodes must survive the round trip: `encoded()` decodes to an equal key,
/// and encoding that key gives the same bytes again.
final class Harness {
    /// The scratch file `load(path:)` reads; rewritten for every input.
    let path: String
    let fd: Int32
    /// One reader reused for every input, as the collector reuses one per scrape.
    var reader = MetricFileReader()

    /// Creates the scratch file under `directory`.
    init(directory: String) throws(SystemError) {
        path = directory + "/counter_1.db"
        fd = try Sys.open(path, [.readWrite, .create, .truncate, .noFollow], mode: 0o600)
    }

    /// Runs every check on `data`.
    func run(_ data: UnsafeRawBufferPointer) {
        walkAsUsedBytes(data)
        loadFromDisk(data)
        readAsNativeFile()
        readAsExemplarFile()
        decodeAsKey(data)
    }

    // MARK: 1. the entry walk over arbitrary bytes

    func walkAsUsedBytes(_ data: UnsafeRawBufferPointer) {
        var seen: [ReferenceEntry] = []
        var failed = false
        do {
            try LoadedMetricFile.forEachEntry(in: data, path: "fuzz") { e in
                check(entry: e, within: data)
                seen.append(ReferenceEntry(offset: e.offset, keyLength: e.key.count, value: e.value.bitPattern, timestamp: e.timestamp.bitPattern))
                roundTrip(e.key)
            }
        } catch {
            failed = true
        }
        let expected = referenceWalk(data)
        guard seen == expected.entries, failed == expected.failed else {
            fatalError("forEachEntry disagrees with the reference walk: got \(seen.count) entries (failed: \(failed)), expected \(expected.entries.count) (failed: \(expected.failed))")
        }
    }

    // MARK: 2. load(path:) on a file with arbitrary contents

    func loadFromDisk(_ data: UnsafeRawBufferPointer) {
        do {
            try Sys.ftruncate(fd, length: 0, path: path)
            try Sys.pwrite(fd, data, offset: 0, path: path)
            // Inputs whose last byte is odd get a zero tail past 64 KiB, so that `used`
            // values beyond the reader's first buffer (its growth path) are reachable.
            if let last = data.last, last & 1 == 1 {
                try Sys.ftruncate(fd, length: data.count + 65_536 + Int(last) * 64, path: path)
            }
        } catch {
            fatalError("cannot write the scratch file: \(error)")
        }
        let size = data.count + ((data.last ?? 0) & 1 == 1 ? 65_536 + Int(data.last ?? 0) * 64 : 0)
        do {
            let loaded = try reader.load(path: path)
            // Whatever load accepts must be consistent with the header and the file.
            if loaded.bytes.count > 0 {
                let used = Int(Int32(littleEndian: loaded.bytes.loadUnaligned(fromByteOffset: 0, as: Int32.self)))
                guard used == loaded.bytes.count, used >= 8, used <= size else {
                    fatalError("load returned \(loaded.bytes.count) bytes for used=\(used), file size \(size)")
                }
                for i in 0..<min(used, data.count) where loaded.bytes[i] != data[i] {
                    fatalError("load returned different bytes at offset \(i)")
                }
            }
            guard loaded.fileSize == size else { fatalError("load reported size \(loaded.fileSize), file has \(size)") }
            try? loaded.forEachEntry { e in
                check(entry: e, within: loaded.bytes)
                _ = try? SeriesKey(decoding: e.key)
            }
        } catch {
            // Refusing a damaged file is the expected outcome; it must name the file.
            guard error.path == path else { fatalError("error names \(error.path), not \(path)") }
            _ = error.description
        }
    }

    // MARK: 3. the native-histogram reader on the file just written

    func readAsNativeFile() {
        do {
            let file = try NativeHistogramFile.read(path: path, reader: &reader)
            for s in file.series {
                if let schema = s.schema, !NativeHistogramFile.schemas.contains(schema) { fatalError("native: schema \(schema) accepted") }
                if let t = s.zeroThreshold, !(t >= 0 && t.isFinite) { fatalError("native: zero threshold \(t) accepted") }
                for (bucket, _) in s.buckets where bucket.kind == .positive || bucket.kind == .negative {
                    guard NativeHistogramFile.schemas.contains(bucket.schema),
                          NativeHistogramFile.indexRange(schema: bucket.schema).contains(bucket.index) else {
                        fatalError("native: bucket \(bucket) accepted")
                    }
                }
            }
        } catch {
            guard error.path == path else { fatalError("native: error names \(error.path), not \(path)") }
            _ = error.description
        }
    }

    // MARK: 4. the same file as an exemplar file

    func readAsExemplarFile() {
        do {
            let file = try ExemplarFile.read(path: path, reader: &reader)
            for e in file.entries {
                for label in e.exemplar.labels {
                    let b = Array(label.name.utf8)
                    guard let first = b.first, !(0x30...0x39).contains(first),
                          b.allSatisfy({ (0x61...0x7A).contains($0) || (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F })
                    else { fatalError("exemplar: label name \(label.name) accepted") }
                }
            }
        } catch {
            guard error.path == path else { fatalError("exemplar: error names \(error.path), not \(path)") }
            _ = error.description
        }
    }

    // MARK: 5. the key decoder on arbitrary bytes

    func decodeAsKey(_ data: UnsafeRawBufferPointer) {
        roundTrip(data)
    }

    /// If `bytes` decode as a key, re-encoding and decoding again gives the same key, and the
    /// encoding is stable.
    func roundTrip(_ bytes: UnsafeRawBufferPointer) {
        let key: SeriesKey
        do { key = try SeriesKey(decoding: bytes) } catch {
            guard error.offset >= 0, error.offset <= bytes.count else {
                fatalError("decoding error offset \(error.offset) outside 0...\(bytes.count)")
            }
            return
        }
        let encoded = key.encoded()
        let again: SeriesKey
        do { again = try SeriesKey(decoding: encoded) } catch {
            fatalError("re-encoded key does not decode: \(error); key \(key)")
        }
        guard again == key, again.family.utf8.elementsEqual(key.family.utf8), again.sample.utf8.elementsEqual(key.sample.utf8),
              again.help.utf8.elementsEqual(key.help.utf8),
              again.labels.count == key.labels.count,
              zip(again.labels, key.labels).allSatisfy({ $0.name.utf8.elementsEqual($1.name.utf8) && $0.value.utf8.elementsEqual($1.value.utf8) })
        else {
            fatalError("round trip changed the key: \(key) became \(again)")
        }
        guard again.encoded() == encoded else { fatalError("encoding is not stable for \(key)") }
        // Python's bytes are ASCII only.
        guard encoded.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { fatalError("encoded key is not printable ASCII: \(key)") }
    }

    /// An entry handed to the callback lies inside the bytes in use, at the layout's offsets.
    func check(entry e: RawEntry, within data: UnsafeRawBufferPointer) {
        let keyStart = e.offset + 4
        guard e.offset >= 8, e.offset % 8 == 0,
              let base = data.baseAddress, let keyBase = e.key.baseAddress ?? (e.key.isEmpty ? base + keyStart : nil),
              keyBase == base + keyStart,
              keyStart + e.key.count + FileFormat.padding(keyLength: e.key.count) + 16 <= data.count
        else {
            fatalError("entry at \(e.offset) with key length \(e.key.count) is outside the \(data.count) bytes in use")
        }
    }
}

/// A reference walk written from the format's description, with no shared code: each entry is
/// a 4-byte little-endian length `L`, `L` key bytes, `8 - (L + 4) % 8` padding bytes, then two
/// 8-byte doubles; entries start at 8 and stop at the end of the bytes in use.
struct ReferenceEntry: Equatable {
    var offset: Int
    var keyLength: Int
    var value: UInt64
    var timestamp: UInt64
}

func referenceWalk(_ data: UnsafeRawBufferPointer) -> (entries: [ReferenceEntry], failed: Bool) {
    func int32(_ at: Int) -> Int {
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(data[at + i]) << (8 * UInt32(i)) }
        return Int(Int32(bitPattern: v))
    }
    func uint64(_ at: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(data[at + i]) << (8 * UInt64(i)) }
        return v
    }
    var out: [ReferenceEntry] = []
    var pos = 8
    while pos < data.count {
        if data.count - pos < 4 { return (out, true) }
        let length = int32(pos)
        if length < 0 || length > data.count { return (out, true) }
        let padding = 8 - (length + 4) % 8
        let valueAt = pos + 4 + length + padding
        if valueAt + 16 > data.count { return (out, true) }
        out.append(ReferenceEntry(offset: pos, keyLength: length, value: uint64(valueAt), timestamp: uint64(valueAt + 8)))
        pos = valueAt + 16
    }
    return (out, false)
}

