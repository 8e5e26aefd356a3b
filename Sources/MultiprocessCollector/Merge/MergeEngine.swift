import Dispatch
import MmapStore
import PromMetrics
import Synchronization

/// What merging a list of metric files produced.
package struct MergeOutput: Sendable {
    /// The merged families, sorted by name; series sorted by labels.
    package var families: [MetricFamilySnapshot]
    /// Files that were skipped because they could not be read or named.
    package var problems: [MetricFileError]
    /// The gauge mode each gauge family was merged with (the last gauge file's mode, as in
    /// prometheus_client); compaction needs it to write merged gauges back.
    package var gaugeModes: [String: GaugeMode]
    /// The files whose entries were merged.
    package var mergedFiles: Int
    /// Live-mode gauge files left out because their owner is provably dead.
    package var deadOwnerFiles: [String]
    /// Entries read from the merged files.
    package var entries: Int
    /// Series that received a value.
    package var seriesMerged: Int
    /// Entries whose keys were known from the last read of the same file, so not checked again.
    package var knownEntries = 0
    /// Of those, entries whose values were read from the file's kept mapping.
    package var mappedEntries = 0
}

/// A finished merge, and the catalog it leaves for the next one.
struct MergeRun: ~Copyable {
    var output: MergeOutput
    var catalog: KeyCatalog
}

/// One merge: values accumulated per series of a ``KeyCatalog``.
///
/// Merging follows prometheus_client's `MultiProcessCollector.merge` (python-format.md §4):
///
/// - a family's type is the type of the first file (in the given order) with an entry of it,
///   and its help text that of the first key seen; a gauge family's mode is the mode of the
///   last gauge file with an entry of it;
/// - counters, summaries and histograms are summed; histogram buckets are summed per float
///   `le`, made cumulative, and `_count` is their total;
/// - gauges per mode: `all`/`liveall` one series per file owner with a `pid` label that
///   overwrites a user label of that name; `min`/`max` seeded by the first value (an entry
///   never set counts as its initial 0); `sum`; `mostrecent` the value with the largest
///   timestamp above 0 (ties: the first file wins; label sets never set are omitted); the
///   aggregated modes drop every `pid` label.
///
/// Each file is read whole with ``MetricFileReader`` and checked first (entry bounds, key
/// syntax, a numeric `le` in histogram files): a bad file contributes nothing and becomes a
/// problem, the others are merged. Entries of counter, summary and histogram files are added
/// to their series' slot at once; entries of gauge files are kept (24 bytes each) and combined
/// at the end, when every family's type and mode are known.
///
/// A scrape that names the samples it wants (``SampleNameFilter``, `name[]`) still reads and
/// checks every file, but accumulates only the families that may hold a listed sample.
///
/// Compaction folds the files of one kind with the same engine (``init(folding:)``): each file
/// is read and checked as a scrape reads it, and each key's values are combined as a scrape
/// combines a series' values in files of that kind (``Combination``). Everything is keyed by
/// the exact key bytes, never by Swift `String` equality, which would make one series of
/// label values that are canonically equivalent but different code points (`"caf\u{e9}"` and
/// `"cafe\u{301}"`), as Python and Prometheus do not.
///
/// Known differences from Python, all in corner cases Python itself leaves undefined: files
/// are merged in name order (Python: directory order); when one name is used with two types,
/// sums are added in a different order (rounding only); two entries whose labels become equal
/// once `pid` is overwritten give one series (the later file wins) instead of a duplicate.
struct MergeEngine: ~Copyable {
    var catalog: KeyCatalog

    // Per family, for this merge: created on first sighting in a good file.
    private var familyKind: [FileKind?] = []
    private var familyHelp: [String] = []
    private var familyMode: [GaugeMode?] = []
    /// Only families that may hold a listed sample are accumulated (nil: every family).
    private let filter: SampleNameFilter?
    /// Per family, for `filter`: 0 not decided yet, 1 accumulated, 2 skipped.
    private var familyWanted: [UInt8] = []

    // Accumulators, one per series.
    private var values: [Double] = []
    private var stamps: [Double] = []
    private var seen: [Bool] = []

    // Entries of gauge files, and of other files whose family turned out a gauge, in order.
    private struct Contribution {
        var series: Int32
        var owner: Int32
        var value: Double
        var timestamp: Double
    }
    private var contributions: [Contribution] = []

    /// Per file kind: the key ids of the last file of that kind remembered in the catalog.
    /// Workers of one application usually create their series in the same order, so their
    /// files' key sequences are equal: kept once, they cost the catalog one array, not one
    /// per file.
    private var lastKeySequence: [FileKind: KeySequence] = [:]
    /// Per file kind: how many times `lastKeySequence` was replaced, and the image of its
    /// entries that files of that kind are compared with block by block (``KeyTemplate``).
    private var sequenceGeneration: [FileKind: Int] = [:]
    private var templates: [FileKind: KeyTemplate] = [:]

    // Folding only: the kind folded; how many entries of the file read last are not folded
    // yet; per key id, the combined value and timestamp, whether a value counted, and whether
    // the key is in `foldOrder` (key ids in the order first read).
    private var foldKind: FileKind?
    private var unfolded = 0
    private var foldValues: [Double] = []
    private var foldStamps: [Double] = []
    private var foldSeen: [Bool] = []
    private var foldListed: [Bool] = []
    private var foldOrder: [Int32] = []

    // Scratch for the file being read: key ids, values, timestamps.
    var scratch = EntryScratch(capacity: 4096)

    var problems: [MetricFileError] = []
    private(set) var mergedFiles = 0
    var deadOwnerFiles: [String] = []
    private(set) var entries = 0
    var knownEntries = 0
    private(set) var mappedEntries = 0

    init(catalog: consuming KeyCatalog, filter: SampleNameFilter? = nil) {
        self.catalog = catalog
        self.filter = filter
    }

    // MARK: reading

    /// Merges the files at `paths` in the order given (callers sort them by name).
    mutating func add(paths: [String], skipDeadOwners: Bool) {
        var reader = MetricFileReader()
        defer { forgetFiles(except: paths) }
        for path in paths { add(path: path, skipDeadOwners: skipDeadOwners, reader: &reader, ready: nil) }
    }

    /// Merges the file at `path`, or the values a read-ahead thread read from it (see
    /// ReadAhead.swift), exactly as reading them here would.
    mutating func add(path: String, skipDeadOwners: Bool, reader: inout MetricFileReader, ready: ReadValues?) {
        let base = MetricFileName.baseName(of: path)
        // A source an interrupted compaction hid (`.fold-...`) is read as the file it was.
        guard let name = MetricFileName(parsing: base) ?? MetricFileName(parsingStaged: base) else {
            problems.append(MetricFileError(path: path, kind: .badName(MetricFileName.problem(with: base))))
            return
        }
        let isLiveGauge: Bool
        if case .gauge(let mode) = name.kind { isLiveGauge = mode.isLive } else { isLiveGauge = false }
        if isLiveGauge && skipDeadOwners {
            do {
                if try Liveness.probe(path: path) == .dead {
                    deadOwnerFiles.append(path)
                    return
                }
            } catch {
                // Deleted by mark-dead since the listing: like Python, not a problem.
                if error.errno == .noEntry { return }
                // Anything else: let the reader below name the problem.
            }
        }
        if let ready, takeReadAhead(ready, path: path, name: name) { return }
        if let entries = readMapped(path: path, reader: &reader) {
            accumulate(count: entries.keys.count, name: name, entries: entries, keys: scratch.keys, values: scratch.values,
                       timestamps: scratch.stamps)
            return
        }
        do {
            let (count, _, entries) = try check(path: path, kind: name.kind, reader: &reader)
            accumulate(count: count, name: name, entries: entries, keys: scratch.keys, values: scratch.values,
                       timestamps: scratch.stamps)
        } catch {
            if case .vanished = error.kind, isLiveGauge { return }
            problems.append(error)
        }
    }

    /// Merges the values a read-ahead thread read from a file, with the effects reading them
    /// here has (``readMapped(path:reader:)`` for a mapped file, ``check(path:kind:reader:)``
    /// for one whose every entry is trusted, or is its kind's template's).
    /// - Returns: false, having done nothing, where the catalog no longer knows the file as
    ///   the thread did (then the file is read here).
    private mutating func takeReadAhead(_ ready: ReadValues, path: String, name: MetricFileName) -> Bool {
        let n = ready.count
        let entries: KeySequence?
        switch ready.source {
        case .mapping:
            guard let known = catalog.knownFiles[path], known.entries.keys.count == n else { return false }
            knownEntries += n
            mappedEntries += n
            entries = known.entries
        case .file(let identity, let used, let mapping):
            guard let known = catalog.knownFiles[path], known.entries.keys.count == n else { return false }
            knownEntries += n
            catalog.knownFiles[path] = nil
            entries = remember(path: path, identity: identity, used: used, kind: name.kind, count: n, keys: scratch.keys,
                               known: known.entries)
            catalog.knownFiles[path]?.mapping = known.mapping.flatMap { $0.length >= used ? $0 : nil } ?? mapping
        case .template(let identity, let used, let sequence):
            guard catalog.knownFiles[path] == nil, n <= sequence.keys.count else { return false }
            // Timestamps not read, where they would count: read here.
            if ready.stamps == nil, sequence.families.contains(where: { familyIsGauge($0.family) }) { return false }
            return sequence.keys.withUnsafeBufferPointer { keys in
                guard let keys = keys.baseAddress else { return false }
                let entries = identity.map { remember(path: path, identity: $0, used: used, kind: name.kind, count: n, keys: keys, known: nil) }
                accumulate(count: n, name: name, entries: entries, keys: keys, values: ready.values, timestamps: ready.stamps)
                return true
            }
        case .lead:
            // Not taken as `template` by the merge loop (ReadAhead.swift): read here.
            return false
        }
        accumulate(count: n, name: name, entries: entries, keys: scratch.keys, values: ready.values, timestamps: ready.stamps)
        return true
    }

    /// Whether a gauge file typed family `f` (so far).
    private func familyIsGauge(_ f: Int32) -> Bool {
        guard Int(f) < familyKind.count, let kind = familyKind[Int(f)], case .gauge = kind else { return false }
        return true
    }

    /// Pass 1: reads a file piece by piece and checks every entry (bounds, exactly as
    /// `LoadedMetricFile.forEachEntry` does, written out so the loop calls nothing per entry
    /// but the interner; keys; `le` in histogram files), resolving it to a key id in the
    /// scratch buffers.
    /// - Returns: the number of entries, who wrote the file, and the entries' keys as the
    ///   catalog now remembers them (nil where the file's identity is unknown).
    private mutating func check(path: String, kind: FileKind, reader: inout MetricFileReader)
        throws(MetricFileError) -> (count: Int, writer: FileFormat.Writer, entries: KeySequence?) {
        let isHistogramFile = kind == .histogram
        var n = 0
        var previous: Int32 = -1
        // The file opened, and how many of its first entries are known from the last read.
        var identity: FileIdentity?
        var used = 0
        var trusted = 0
        var known = catalog.knownFiles.removeValue(forKey: path)
        let mapping = known?.mapping
        let knownSequence = known?.entries ?? KeySequence()
        let template = keyTemplate(for: kind)
        let writer = try knownSequence.withUnsafeBuffers { (knownKeys, knownLengths) throws(MetricFileError) in
            try reader.streamEntries(path: path, opened: { opened, usedNow in
                identity = opened
                used = usedNow
                trusted = known?.trustedEntries(opened: opened, used: usedNow) ?? 0
            }) { (bytes, base, used) throws(MetricFileError) -> Int in
                try checkEntries(bytes, base: base, used: used, path: path, kind: kind, isHistogramFile: isHistogramFile,
                                 count: &n, previous: &previous, trusted: &trusted, knownKeys: knownKeys, knownLengths: knownLengths,
                                 template: template)
            }
        }
        knownEntries += Swift.min(trusted, n)
        guard let identity else { return (n, writer, nil) }
        let kept = trusted > 0 && trusted == n ? known.take()?.entries : nil
        let entries = remember(path: path, identity: identity, used: used, kind: kind, count: n, keys: scratch.keys, known: kept)
        if kept != nil {
            // Read twice the same (a serving collector's steady state): map it for the next
            // scrape (`readMapped`), or keep the mapping it has if that still covers it.
            catalog.knownFiles[path]?.mapping = mapping.flatMap { $0.length >= used ? $0 : nil }
                ?? ReadMapping(path: path, identity: identity, length: used)
        }
        return (n, writer, entries)
    }

    /// Reads a known file through its kept mapping, when it is the file mapped and used
    /// exactly as far as when it was read last: only its entries' values and timestamps are
    /// read, into the scratch buffers, at the offsets its entries had.
    /// - Returns: its entries; nil, having read nothing, where the file must be read whole
    ///   (not mapped, replaced, grown, shrunk, damaged, or truncated under the mapping, which
    ///   then is dropped).
    private mutating func readMapped(path: String, reader: inout MetricFileReader) -> KeySequence? {
        guard let known = catalog.knownFiles[path], let mapping = known.mapping,
              case let (identity, used)? = try? reader.peek(path: path),
              identity == known.identity, used == known.used, used <= mapping.length else { return nil }
        let entries = known.entries
        let n = entries.keys.count
        if n > scratch.capacity { scratch.grow(to: n, keeping: 0) }
        let (values, stamps) = (scratch.values, scratch.stamps)
        let read = entries.valueOffsets.withUnsafeBufferPointer { mapping.gather(offsets: $0, values: values, stamps: stamps) }
        guard read else {
            catalog.knownFiles[path]?.mapping = nil
            return nil
        }
        knownEntries += n
        mappedEntries += n
        return entries
    }

    /// Remembers a good file read whole, for the next merge (``KeyCatalog/knownFiles``).
    /// - Parameters:
    ///   - keys: its entries' key ids; not read when `known` holds them (every entry was
    ///     trusted: the same entries as last time).
    /// - Returns: the entries remembered.
    mutating func remember(path: String, identity: FileIdentity, used: Int, kind: FileKind, count n: Int,
                           keys: UnsafePointer<Int32>, known: KeySequence?) -> KeySequence {
        let entries: KeySequence
        if let known, known.keys.count == n {
            entries = known
        } else if let last = lastKeySequence[kind], last.keys.count == n, n > 0,
                  last.keys.withUnsafeBytes({ KeyInterner.equal($0.baseAddress!, UnsafeRawPointer(keys), n * 4) }) {
            // The same keys as the last file of this kind: shared.
            entries = last
        } else {
            entries = KeySequence(keys: Array(UnsafeBufferPointer(start: keys, count: n)), catalog: catalog)
            lastKeySequence[kind] = entries
            sequenceGeneration[kind, default: 0] += 1
        }
        catalog.knownFiles[path] = KnownFile(identity: identity, used: used, entries: entries)
        return entries
    }

    /// The image of the last key sequence of `kind` (made when that sequence is new to it),
    /// when it has at least a block of entries.
    mutating func keyTemplate(for kind: FileKind) -> KeyTemplate? {
        guard let sequence = lastKeySequence[kind], sequence.keys.count >= KeyTemplate.block else { return nil }
        let generation = sequenceGeneration[kind] ?? 0
        if let template = templates[kind], template.generation == generation { return template }
        let template = KeyTemplate(sequence: sequence, keys: catalog.keys, generation: generation)
        templates[kind] = template
        return template
    }

    /// The generation of the template ``keyTemplate(for:)`` returns for `kind`, without
    /// making it (nil: none).
    func templateGeneration(for kind: FileKind) -> Int? {
        guard let sequence = lastKeySequence[kind], sequence.keys.count >= KeyTemplate.block else { return nil }
        return sequenceGeneration[kind] ?? 0
    }

    /// Drops what the catalog knows of files that were not listed this time.
    mutating func forgetFiles(except paths: [String]) {
        guard catalog.knownFiles.count > 0 else { return }
        let listed = Set(paths)
        for path in catalog.knownFiles.keys where !listed.contains(path) { catalog.knownFiles[path] = nil }
    }

    /// Checks and resolves the whole entries in `buffer` (the file from offset `base` on, as
    /// `streamEntries` read it); returns the bytes consumed. A method of its own, so the
    /// interner is inlined into it.
    ///
    /// The first `trusted` entries are those of the last read of the same file, whose key ids
    /// and key lengths are `knownKeys` and `knownLengths`: their bounds are checked, their keys
    /// only by length (a length that differs ends the trust: the rest is interned and checked
    /// as new). Their ids are not put in the scratch buffer unless entries follow that are not
    /// trusted (then `check` builds a new ``KeySequence`` from the buffer).
    private mutating func checkEntries(_ buffer: UnsafeMutableRawBufferPointer, base: Int, used: Int, path: String, kind: FileKind,
                                       isHistogramFile: Bool, count n: inout Int, previous: inout Int32, trusted: inout Int,
                                       knownKeys: UnsafeBufferPointer<Int32>, knownLengths: UnsafeBufferPointer<Int32>,
                                       template: KeyTemplate?)
        throws(MetricFileError) -> Int {
        // Written only where the template resolves a block (it zeroes the values it took).
        let bytes = UnsafeRawBufferPointer(buffer)
        // The smallest entry is 24 bytes (an empty key padded to 8, value, timestamp).
        let most = n + bytes.count / 24 + 1
        if most > scratch.capacity { scratch.grow(to: most, keeping: n) }
        // A file the catalog knows nothing of, and no template for: its keys are likely new
        // (prometheus_client's entries take about 100 bytes). At most 2^18 of them: the file's
        // `used` is only its claim (a damaged or sparse file may claim gigabytes).
        if n == 0, template == nil, knownKeys.isEmpty, used >= 1 << 16 { catalog.reserve(newKeys: Swift.min(used / 96, 1 << 18)) }
        var pos = base
        if n < trusted {
            let (i, end, ended) = EntryBounds.known(from: n, to: trusted, at: pos, in: bytes, base: base, used: used,
                                                    lengths: knownLengths, values: scratch.values, stamps: scratch.stamps)
            if i > n { previous = knownKeys[i - 1] }
            n = i
            pos = end
            if ended { trusted = i }
            // Still trusted: the next entry is not read whole yet.
            if n < trusted { return pos - base }
            // Entries follow that are not trusted: the new sequence starts with the trusted ones.
            if pos < used { scratch.keys.update(from: knownKeys.baseAddress!, count: n) }
        }
        // After a block that is not the template's, the template is tried again a block on.
        var retryAt = 0
        while pos < used {
            if let template, n >= retryAt, n < template.count, pos == template.start(of: n) {
                let (next, at) = template.run(from: n, at: pos, in: buffer, base: base, used: used, into: scratch, ids: true, stamps: true)
                if next > n {
                    previous = template.sequence?.keys[next - 1] ?? previous
                    n = next
                    pos = at
                    if pos >= used { break }
                } else {
                    retryAt = n + KeyTemplate.block
                }
            }
            if previous >= 0 {
                // Most entries hold the key that followed the previous key in the last file
                // read, one that passed these checks before: a run of them costs a length and
                // a byte comparison each.
                (n, pos, previous) = catalog.successor.withUnsafeBufferPointer { successor in
                    catalog.keyCheck.withUnsafeBufferPointer { check in
                        EntryBounds.expected(from: n, at: pos, previous: previous, in: bytes, base: base, used: used,
                                             successor: successor, check: check, allowed: isHistogramFile ? 0 : 1,
                                             keys: catalog.keys.view, into: scratch)
                    }
                }
                if pos >= used { break }
            }
            // The entry the run stopped at: a new key, another key than expected, a bad key, a
            // bound crossed, or the end of what was read.
            guard case let (key, valueAt, end)? = try EntryBounds.entry(at: pos, in: bytes, base: base, used: used, path: path) else { break }
            let hint = previous >= 0 ? catalog.successor[Int(previous)] : catalog.firstKeyOfKind[kind] ?? -1
            let (id, isNew) = catalog.keys.intern(key, hint: hint)
            if isNew { catalog.decode(id: id, histogramFile: isHistogramFile) }
            if id != hint {
                if previous >= 0 { catalog.successor[Int(previous)] = id } else { catalog.firstKeyOfKind[kind] = id }
            }
            previous = id
            let series = catalog.keySeries[Int(id)]
            if series < 0 {
                throw MetricFileError(path: path, kind: .invalidKey(
                    offset: pos, catalog.keyErrors[id] ?? KeyDecodingError(offset: 0, reason: "invalid key")))
            }
            if isHistogramFile && catalog.seriesLeState[Int(series)] == 2 {
                let le = catalog.labels(of: Int(series)).first { $0.name == "le" }?.value ?? ""
                throw MetricFileError(path: path, kind: .invalidKey(
                    offset: pos, KeyDecodingError(offset: 0, reason: "bucket bound le=\"\(le)\" is not a number")))
            }
            scratch.keys[n] = id
            scratch.values[n] = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: valueAt, as: UInt64.self)))
            scratch.stamps[n] = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: valueAt + 8, as: UInt64.self)))
            n += 1
            pos = end
        }
        return pos - base
    }

    /// Grows the per-merge arrays to the catalog's families and series.
    private mutating func syncSizes() {
        let families = catalog.familyCount
        if familyKind.count < families {
            let extra = families - familyKind.count
            familyKind.append(contentsOf: repeatElement(nil, count: extra))
            familyHelp.append(contentsOf: repeatElement("", count: extra))
            familyMode.append(contentsOf: repeatElement(nil, count: extra))
            familyWanted.append(contentsOf: repeatElement(0, count: extra))
        }
        let series = catalog.seriesCount
        if values.count < series {
            let extra = series - values.count
            values.append(contentsOf: repeatElement(0, count: extra))
            stamps.append(contentsOf: repeatElement(0, count: extra))
            seen.append(contentsOf: repeatElement(false, count: extra))
        }
    }

    /// Pass 2 for a good file whose keys are `entries` (as remembered), else `keys`.
    mutating func accumulate(count n: Int, name: MetricFileName, entries: KeySequence?, keys: UnsafePointer<Int32>,
                             values: UnsafePointer<Double>, timestamps: UnsafePointer<Double>?) {
        guard let entries else {
            accumulate(count: n, name: name, keys: keys, values: values, timestamps: timestamps)
            return
        }
        if accumulate(count: n, name: name, entries: entries, values: values) { return }
        entries.keys.withUnsafeBufferPointer { keys in
            accumulate(count: n, name: name, keys: keys.baseAddress!, values: values, timestamps: timestamps)
        }
    }

    /// Pass 2 for a good counter, summary or histogram file whose entries are `entries`: each
    /// value added to its series, as the general pass below adds it, without looking up each
    /// entry's series, family and type. The file's families are typed first (those it is the
    /// first to hold, with the help text of their first entry's key).
    /// - Returns: false, having done nothing, where the general pass is needed: a gauge file,
    ///   a family a gauge file typed, a scrape that names its samples.
    private mutating func accumulate(count n: Int, name: MetricFileName, entries: KeySequence,
                                     values entryValues: UnsafePointer<Double>) -> Bool {
        let kind = name.kind
        guard filter == nil, n == entries.keys.count else { return false }
        if case .gauge = kind { return false }
        syncSizes()
        if entries.families.contains(where: { familyIsGauge($0.family) }) { return false }
        for (f, firstKey) in entries.families where familyKind[Int(f)] == nil {
            familyKind[Int(f)] = kind
            familyHelp[Int(f)] = catalog.helpText(ofKey: Int(firstKey))
        }
        mergedFiles += 1
        self.entries += n
        values.withUnsafeMutableBufferPointer { sums in
            seen.withUnsafeMutableBufferPointer { touched in
                entries.series.withUnsafeBufferPointer { series in
                    // Every series is below the catalog's count (`syncSizes`).
                    for i in 0..<n {
                        let s = Int(series[i])
                        sums[s] += entryValues[i]
                        touched[s] = true
                    }
                }
            }
        }
        return true
    }

    /// Pass 2, entry by entry: each entry's series, family and type looked up.
    /// - Parameter entryStamps: the entries' timestamps; nil only for a counter, summary or
    ///   histogram file none of whose families a gauge file typed (``ReadValues/stamps``), so
    ///   that none of its entries is kept as a gauge contribution.
    private mutating func accumulate(count n: Int, name: MetricFileName, keys entryKeys: UnsafePointer<Int32>,
                             values entryValues: UnsafePointer<Double>, timestamps entryStamps: UnsafePointer<Double>?) {
        syncSizes()
        mergedFiles += 1
        entries += n
        let kind = name.kind
        var owner: Int32 = -1
        var mode: GaugeMode?
        if case .gauge(let m) = kind {
            mode = m
            owner = catalog.owner(name.owner)
        }
        // Locals, so the loop mutates unique buffers without per-element checks.
        var sums = [Double](), touched = [Bool]()
        swap(&sums, &values)
        swap(&touched, &seen)
        defer {
            swap(&sums, &values)
            swap(&touched, &seen)
        }
        sums.withUnsafeMutableBufferPointer { sums in
            touched.withUnsafeMutableBufferPointer { touched in
                for i in 0..<n {
                    let id = Int(entryKeys[i])
                    let s = catalog.keySeries[id]
                    let f = Int(catalog.seriesFamily[Int(s)])
                    if let filter {
                        // Skipped families are never typed, so they are never output.
                        if familyWanted[f] == 0 { familyWanted[f] = filter.mayKeep(familyNamed: catalog.familyName[f]) ? 1 : 2 }
                        if familyWanted[f] == 2 { continue }
                    }
                    var familyIsGauge: Bool
                    if let k = familyKind[f] {
                        if case .gauge = k { familyIsGauge = true } else { familyIsGauge = false }
                    } else {
                        familyKind[f] = kind
                        familyHelp[f] = catalog.helpText(ofKey: id)
                        familyIsGauge = mode != nil
                    }
                    if let mode {
                        familyMode[f] = mode
                        contributions.append(Contribution(series: s, owner: owner, value: entryValues[i], timestamp: entryStamps?[i] ?? 0))
                    } else if familyIsGauge {
                        contributions.append(Contribution(series: s, owner: -1, value: entryValues[i], timestamp: entryStamps?[i] ?? 0))
                    } else {
                        // `Combination.sum`, written out for the loop.
                        sums[Int(s)] += entryValues[i]
                        touched[Int(s)] = true
                    }
                }
            }
        }
    }

    // MARK: combining

    /// Applies the kept gauge-file entries, now that every family's type and mode are known.
    private mutating func combineContributions() {
        for c in contributions {
            let f = Int(catalog.seriesFamily[Int(c.series)])
            guard let kind = familyKind[f] else { continue }
            let combination: Combination
            let d: Int
            if case .gauge = kind, let mode = familyMode[f] {
                combination = Combination(mode)
                // Per file owner (`pid` label) in the modes that keep one series per process;
                // every `pid` label dropped in the others.
                if combination == .last {
                    d = Int(c.owner >= 0 ? catalog.derive(c.series, owner: c.owner) : c.series)
                } else {
                    d = Int(catalog.derive(c.series, owner: -1))
                }
            } else {
                // A gauge file's entry in a family of another type: summed, with its pid.
                combination = .sum
                d = Int(c.owner >= 0 ? catalog.derive(c.series, owner: c.owner) : c.series)
            }
            syncSizes()
            combination.apply(c.value, timestamp: c.timestamp, to: &values[d], stamp: &stamps[d], seen: &seen[d])
        }
        contributions = []
    }

    // MARK: folding (compaction)

    /// An engine that folds files of `kind` into the entries of one archive file.
    init(folding kind: FileKind) {
        self.init(catalog: KeyCatalog())
        foldKind = kind
    }

    /// Reads and checks a file of the kind being folded, exactly as a merge reads it (a file
    /// that throws here is one a scrape skips). Its entries are folded by ``foldRead()``, or
    /// dropped by the next read.
    /// - Returns: who wrote the file.
    /// - Throws: ``MetricFileError`` naming the file and the problem.
    mutating func read(path: String, reader: inout MetricFileReader) throws(MetricFileError) -> FileFormat.Writer {
        guard let kind = foldKind else { preconditionFailure("MergeEngine.read(path:reader:) needs an engine made with init(folding:)") }
        unfolded = 0
        let (n, writer, entries) = try check(path: path, kind: kind, reader: &reader)
        // A known file's keys may not be in the scratch buffer (see `checkEntries`).
        entries?.keys.withUnsafeBufferPointer { scratch.keys.update(from: $0.baseAddress!, count: n) }
        unfolded = n
        return writer
    }

    /// Folds in the entries of the file read last: per key, by its exact bytes, the value is
    /// combined with those read before as a merge combines one series' values from files of
    /// this kind. Keys are not merged by what they decode to (keys that differ only in help
    /// text or in JSON spelling stay apart); a scrape merges them as it did before the fold.
    mutating func foldRead() {
        guard let kind = foldKind else { preconditionFailure("MergeEngine.foldRead() needs an engine made with init(folding:)") }
        let combination = Combination(kind)
        precondition(combination != .last, "\(kind) files keep one series per process; they are never folded")
        let keys = catalog.keys.count
        if foldValues.count < keys {
            let extra = keys - foldValues.count
            foldValues.append(contentsOf: repeatElement(0, count: extra))
            foldStamps.append(contentsOf: repeatElement(0, count: extra))
            foldSeen.append(contentsOf: repeatElement(false, count: extra))
            foldListed.append(contentsOf: repeatElement(false, count: extra))
        }
        for i in 0..<unfolded {
            let id = Int(scratch.keys[i])
            if !foldListed[id] {
                foldListed[id] = true
                foldOrder.append(Int32(id))
            }
            combination.apply(scratch.values[i], timestamp: scratch.stamps[i], to: &foldValues[id], stamp: &foldStamps[id], seen: &foldSeen[id])
        }
        mergedFiles += 1
        entries += unfolded
        unfolded = 0
    }

    /// The folded entries, for an archive file: every key with its bytes as read, in the order
    /// first read, with its combined value and timestamp. A key whose values never counted (a
    /// `mostrecent` gauge never set) is written as a fresh entry, 0 with timestamp 0, which a
    /// merge leaves out just the same.
    consuming func foldedEntries() -> [(key: [UInt8], value: Double, timestamp: Double)] {
        var out: [(key: [UInt8], value: Double, timestamp: Double)] = []
        out.reserveCapacity(foldOrder.count)
        for id in foldOrder {
            let i = Int(id)
            let counted = foldSeen[i]
            out.append((Array(catalog.keys.bytes(of: id)), counted ? foldValues[i] : 0, counted ? foldStamps[i] : 0))
        }
        return out
    }

    // MARK: output

    /// Finishes the merge and hands the catalog back for the next one.
    /// - Parameters:
    ///   - accumulate: `true` for exposition (cumulative buckets and `_count`); `false` for
    ///     writing merged data back into a file (per-bucket counts, no `_count`).
    ///   - threads: the most threads that sort families and make their samples at once.
    ///   - parallelSeries: how many series the families must have for more than one thread.
    consuming func finish(accumulate: Bool, threads: Int = 1, parallelSeries: Int = parallelFinishSeries) -> MergeRun {
        combineContributions()
        syncSizes()
        var modes: [String: GaugeMode] = [:]
        var work: [FamilyWork] = []
        var series = 0
        for f in 0..<catalog.familyCount {
            guard let kind = familyKind[f] else { continue }
            let metricKind: MetricKind
            switch kind {
            case .counter: metricKind = .counter
            case .summary: metricKind = .summary
            case .histogram:
                metricKind = .histogram
                // Computing a group may intern one: done here, on one thread.
                if catalog.histogramOrder[f] == nil { catalog.groupSeries(of: f) }
            case .gauge:
                metricKind = .gauge
                if let m = familyMode[f] { modes[catalog.familyName[f]] = m }
            }
            work.append(FamilyWork(family: f, kind: metricKind))
            series += catalog.familySeries[f].count
        }
        let built = UnsafeMutablePointer<BuiltFamily>.allocate(capacity: work.count)
        defer { built.deallocate() }
        let makers = Swift.min(threads, work.count)
        if makers > 1 && series >= parallelSeries {
            // The largest families first, each to whichever thread is free next.
            work.sort { catalog.familySeries[$0.family].count > catalog.familySeries[$1.family].count }
            let next = FamilyQueue()
            withUnsafeMutablePointer(to: &self) { engine in
                let shared = FinishShared(engine: engine, work: work, built: built)
                DispatchQueue.concurrentPerform(iterations: makers) { _ in
                    while true {
                        let i = next.take()
                        guard i < shared.work.count else { return }
                        (shared.built + i).initialize(to: shared.engine.pointee.build(shared.work[i], accumulate: accumulate))
                    }
                }
            }
        } else {
            for (i, item) in work.enumerated() { (built + i).initialize(to: build(item, accumulate: accumulate)) }
        }
        var families: [MetricFamilySnapshot] = []
        families.reserveCapacity(work.count)
        for (i, item) in work.enumerated() {
            let done = (built + i).move()
            if let order = done.newOrder {
                if item.kind == .histogram { catalog.histogramOrder[item.family] = order } else { catalog.plainOrder[item.family] = order }
            }
            families.append(done.snapshot)
        }
        families.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        let output = MergeOutput(families: families, problems: problems, gaugeModes: modes, mergedFiles: mergedFiles,
                                 deadOwnerFiles: deadOwnerFiles, entries: entries, seriesMerged: seen.count { $0 }, knownEntries: knownEntries,
                                 mappedEntries: mappedEntries)
        return MergeRun(output: output, catalog: catalog)
    }

    /// Below this many series, a merge's families are made on one thread.
    static let parallelFinishSeries = 8192

    /// A family to make: its index and type.
    private struct FamilyWork {
        var family: Int
        var kind: MetricKind
    }

    /// A family made, and its sort order when the catalog had none cached.
    private struct BuiltFamily {
        var snapshot: MetricFamilySnapshot
        var newOrder: [Int32]?
    }

    /// What the threads of ``finish(accumulate:threads:parallelSeries:)`` share (`@unchecked Sendable`: they
    /// only read the engine, which nothing changes meanwhile, and each initializes its own
    /// results).
    private struct FinishShared: @unchecked Sendable {
        let engine: UnsafeMutablePointer<MergeEngine>
        let work: [FamilyWork]
        let built: UnsafeMutablePointer<BuiltFamily>
    }

    /// The family `item` with its samples in output order, changing nothing: several threads
    /// make families at once.
    private func build(_ item: FamilyWork, accumulate: Bool) -> BuiltFamily {
        let f = item.family
        let histogram = item.kind == .histogram
        let cached = histogram ? catalog.histogramOrder[f] : catalog.plainOrder[f]
        let order = cached ?? (histogram ? catalog.sortedHistogram(f) : catalog.sortedPlain(f))
        let samples: [Sample]
        if histogram {
            samples = histogramSamples(family: f, order: order, accumulate: accumulate)
        } else {
            samples = order.compactMap { s in
                seen[Int(s)] ? Sample(name: catalog.seriesSample[Int(s)], labels: catalog.labels(of: Int(s)), value: values[Int(s)]) : nil
            }
        }
        let snapshot = MetricFamilySnapshot(name: catalog.familyName[f], kind: item.kind, help: familyHelp[f], samples: samples)
        return BuiltFamily(snapshot: snapshot, newOrder: cached == nil ? order : nil)
    }

    /// Samples of a histogram, per label set (sorted): buckets ascending by `le` (summed per
    /// float value, re-rendered in Go's form, `le` last), `_count`, then the other samples
    /// (`_sum`) by name. Without `accumulate`, bucket counts stay per bucket and no `_count`
    /// is made. `order` is the family's series in ``KeyCatalog/sortedHistogram(_:)``'s order.
    private func histogramSamples(family f: Int, order: [Int32], accumulate: Bool) -> [Sample] {
        let bucketName = catalog.familyBucketName[f]
        let countName = catalog.familyCountName[f]
        var out: [Sample] = []
        // At most one sample per series and a `_count` per label set.
        out.reserveCapacity(order.count + order.count / 2)
        var i = 0
        while i < order.count {
            let group = catalog.seriesGroup[Int(order[i])]
            var total = 0.0
            var buckets = 0
            // Buckets of this label set, equal bounds merged.
            while i < order.count, catalog.seriesGroup[Int(order[i])] == group, catalog.seriesLeState[Int(order[i])] != 0 {
                let s = Int(order[i])
                i += 1
                // An `le` that is not a number only comes from another type's file here;
                // Python would fail the whole scrape on it, so leave the sample out.
                guard seen[s], catalog.seriesLeState[s] == 1 else { continue }
                var v = values[s]
                let le = catalog.seriesLe[s]
                while i < order.count, catalog.seriesGroup[Int(order[i])] == group, catalog.seriesLeState[Int(order[i])] == 1,
                      catalog.seriesLe[Int(order[i])] == le {
                    if seen[Int(order[i])] { v += values[Int(order[i])] }
                    i += 1
                }
                total += v
                buckets += 1
                out.append(Sample(name: bucketName, labels: catalog.seriesBucketLabels[s], value: accumulate ? total : v))
            }
            let madeCount = accumulate && buckets > 0
            if madeCount { out.append(Sample(name: countName, labels: catalog.groupLabels[Int(group)], value: total)) }
            while i < order.count, catalog.seriesGroup[Int(order[i])] == group {
                let s = Int(order[i])
                i += 1
                // (Lengths first: `elementsEqual` is a generic loop, about 1,600 instructions for a `_sum`.)
                guard seen[s], !(madeCount && catalog.seriesSample[s].utf8.count == countName.utf8.count
                                 && catalog.seriesSample[s].utf8.elementsEqual(countName.utf8)) else { continue }
                out.append(Sample(name: catalog.seriesSample[s], labels: catalog.groupLabels[Int(group)], value: values[s]))
            }
        }
        return out
    }
}

/// The key ids, values and timestamps of the file being read, in buffers reused from file to
/// file and freed with their owner.
struct EntryScratch: ~Copyable {
    private(set) var keys: UnsafeMutablePointer<Int32>
    private(set) var values: UnsafeMutablePointer<Double>
    private(set) var stamps: UnsafeMutablePointer<Double>
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        keys = .allocate(capacity: capacity)
        values = .allocate(capacity: capacity)
        stamps = .allocate(capacity: capacity)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        stamps.deallocate()
    }

    /// Makes room for `needed` entries, keeping the first `n`.
    mutating func grow(to needed: Int, keeping n: Int) {
        let newCapacity = Swift.max(needed, capacity * 2)
        func grown<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<T> {
            let q = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
            q.moveInitialize(from: p, count: n)
            p.deallocate()
            return q
        }
        keys = grown(keys)
        values = grown(values)
        stamps = grown(stamps)
        capacity = newCapacity
    }
}

/// The bounds checks of entries, shared by the merge on one thread and the merge threads:
/// exactly `LoadedMetricFile.forEachEntry`'s, on a piece of a file read piecewise.
enum EntryBounds {
    /// The entry at file offset `pos`, in `bytes` (the file from offset `base` on, read as far
    /// as `base + bytes.count`; `used` bytes are in use).
    /// - Returns: its key, its value's offset in `bytes` and its end's offset in the file; nil
    ///   when it does not end inside `bytes` (read on, then call again).
    /// - Throws: `entryOutOfBounds` when it does not end inside `used`.
    @inline(__always)
    static func entry(at pos: Int, in bytes: UnsafeRawBufferPointer, base: Int, used: Int, path: String)
        throws(MetricFileError) -> (key: UnsafeRawBufferPointer, valueAt: Int, end: Int)? {
        let available = base + bytes.count
        guard pos + 4 <= used else { throw MetricFileError(path: path, kind: .entryOutOfBounds(offset: pos, keyLength: -1)) }
        guard pos + 4 <= available else { return nil }
        let at = pos - base
        let length = Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: Int32.self)))
        guard length >= 0, length <= used else {
            throw MetricFileError(path: path, kind: .entryOutOfBounds(offset: pos, keyLength: length))
        }
        // `4 + length + FileFormat.padding(keyLength: length)`, for a length known >= 0.
        let valueAt = at + ((length + 4) & ~7) + 8
        let end = base + valueAt + 16
        guard end <= used else { throw MetricFileError(path: path, kind: .entryOutOfBounds(offset: pos, keyLength: length)) }
        guard end <= available else { return nil }
        return (UnsafeRawBufferPointer(rebasing: bytes[(at + 4)..<(at + 4 + length)]), valueAt, end)
    }

    /// Resolves and reads entries from `first` on, the first at file offset `pos`, while each
    /// one lies whole inside `bytes` and `used` and its key is the bytes of the key expected
    /// (the `successor` of the key before it, starting from `previous`) and passes the
    /// checks (`check` at most `allowed`: see ``KeyCatalog/keyCheck``).
    /// - Returns: the entries resolved up to (not including) `next`, the offset of `next`, and
    ///   the key before it; the caller reads `next` with ``entry(at:in:base:used:path:)``.
    ///
    /// Out of line: a run is hundreds of entries, and the loop keeps its pointers in registers
    /// only when it is compiled on its own.
    @inline(never)
    static func expected(from first: Int, at pos: Int, previous: Int32, in bytes: UnsafeRawBufferPointer, base: Int,
                         used: Int, successor: UnsafeBufferPointer<Int32>, check: UnsafeBufferPointer<UInt8>,
                         allowed: UInt8, keys: KeyInterner.View, into scratch: borrowing EntryScratch)
        -> (next: Int, pos: Int, previous: Int32) {
        guard let start = bytes.baseAddress, let successor = successor.baseAddress, let check = check.baseAddress else {
            return (first, pos, previous)
        }
        // Offsets in `bytes`: they stay below `used`, an Int32, plus one entry, and cannot
        // overflow an Int.
        let limit = Swift.min(used, base + bytes.count) &- base
        let ids = scratch.keys, values = scratch.values, stamps = scratch.stamps
        var i = first, at = pos &- base, previous = previous
        while at &+ 4 <= limit {
            let length = Int32(littleEndian: start.loadUnaligned(fromByteOffset: at, as: Int32.self))
            // The key, padded to 8 bytes past its 4-byte length (8 more when it fits exactly:
            // `FileFormat.padding`), then the value and the timestamp.
            let valueAt = at &+ ((Int(length) &+ 4) & ~7) &+ 8
            guard length >= 0, valueAt &+ 16 <= limit else { break }
            // `previous` is a key id; its successor is one too, or -1.
            let id = successor[Int(previous)]
            guard keys.matches(id, start + (at &+ 4), length: length), check[Int(id)] <= allowed else { break }
            ids[i] = id
            values[i] = Double(bitPattern: UInt64(littleEndian: start.loadUnaligned(fromByteOffset: valueAt, as: UInt64.self)))
            stamps[i] = Double(bitPattern: UInt64(littleEndian: start.loadUnaligned(fromByteOffset: valueAt &+ 8, as: UInt64.self)))
            i &+= 1
            previous = id
            at = valueAt &+ 16
        }
        return (i, at &+ base, previous)
    }

    /// Reads the values of entries `first..<trusted` of a file read before (``KnownFile``),
    /// the first at file offset `pos`, checking their bounds and their keys only by length.
    /// - Parameters:
    ///   - lengths: the known key length of each entry.
    ///   - values, stamps: where entry `i`'s value and timestamp go, at index `i`.
    /// - Returns: the entries read up to (not including) `next`, the offset after them, and
    ///   whether trust `ended` at `next`: its key has another length or it ends past `used`
    ///   (read it as new). Otherwise `next` is `trusted`, or the first entry not in `bytes`.
    @inline(__always)
    static func known(from first: Int, to trusted: Int, at pos: Int, in bytes: UnsafeRawBufferPointer, base: Int, used: Int,
                      lengths: UnsafeBufferPointer<Int32>, values: UnsafeMutablePointer<Double>,
                      stamps: UnsafeMutablePointer<Double>) -> (next: Int, end: Int, ended: Bool) {
        let available = base + bytes.count
        // Offsets are below `used`, an Int32, plus one entry: they cannot overflow an Int.
        var i = first, pos = pos
        while i < trusted {
            // A trusted entry lies inside the `used` of the last read, which is at most `used`;
            // it may not have been read whole yet.
            guard pos &+ 4 <= available else { break }
            let at = pos &- base
            let length = Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: Int32.self))
            guard length == lengths[i] else { return (i, pos, true) }
            // The key, padded to 8 bytes past its 4-byte length (8 more when it fits exactly:
            // `FileFormat.padding`), then the value and the timestamp.
            let valueAt = at &+ ((Int(length) &+ 4) & ~7) &+ 8
            let next = base &+ valueAt &+ 16
            guard next <= used else { return (i, pos, true) }
            guard next <= available else { break }
            values[i] = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: valueAt, as: UInt64.self)))
            stamps[i] = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: valueAt &+ 8, as: UInt64.self)))
            i &+= 1
            pos = next
        }
        return (i, pos, false)
    }
}

/// Hands out the indexes `0, 1, 2, ...` to threads, each once.
private final class FamilyQueue: Sendable {
    private let next = Atomic<Int>(0)

    /// The next index.
    func take() -> Int { next.wrappingAdd(1, ordering: .relaxed).oldValue }
}
