import PromMetrics

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
}

/// The state of one merge: interned raw keys, decoded series, and one numeric slot per series.
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
/// problem, the others are merged. Raw keys are interned by their bytes, so each distinct key
/// is decoded once per merge; entries of counter, summary and histogram files are added to
/// their series' slot directly, entries of gauge files are kept (24 bytes each) and combined at
/// the end, when every family's type and mode are known.
///
/// Known differences from Python, all in corner cases Python itself leaves undefined: files
/// are merged in name order (Python: directory order); when one name is used with two types,
/// sums are added in a different order (rounding only); two entries whose labels become equal
/// once `pid` is overwritten give one series (the later file wins) instead of a duplicate.
struct MergeEngine: ~Copyable {
    // Raw keys.
    private var keys = KeyInterner()
    /// Per key id: its series, or -1 when the key does not decode.
    private var keySeries: [Int32] = []
    /// Per key id: its help text.
    private var keyHelp: [String] = []
    private var keyErrors: [Int32: KeyDecodingError] = [:]

    // Families, created on first sighting in a good file.
    private var familyIndex: [String: Int32] = [:]
    private var familyName: [String] = []
    private var familyKind: [FileKind?] = []
    private var familyHelp: [String] = []
    private var familyMode: [GaugeMode?] = []
    private var familySeries: [[Int32]] = []

    // Series: one per distinct (family, sample name, labels).
    private struct SeriesIdentity: Hashable {
        var family: Int32
        var sample: String
        var labels: [Label]
    }
    private var seriesIndex: [SeriesIdentity: Int32] = [:]
    private var seriesFamily: [Int32] = []
    private var seriesSample: [String] = []
    private var seriesLabels: [[Label]] = []
    /// The `le` value: NaN-free when `seriesLeState` is 1.
    private var seriesLe: [Double] = []
    /// 0: no `le` label; 1: a numeric `le`; 2: an `le` that is not a number.
    private var seriesLeState: [UInt8] = []
    private var derived: [UInt64: Int32] = [:]

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
    private var owners: [String] = []

    // Scratch for the file being read: key ids, values, timestamps.
    private var scratchKeys: [Int32] = []
    private var scratchValues: [Double] = []
    private var scratchStamps: [Double] = []

    private(set) var problems: [MetricFileError] = []
    private(set) var mergedFiles = 0
    private(set) var deadOwnerFiles: [String] = []
    private(set) var entries = 0

    init() {}

    // MARK: reading

    /// Merges the files at `paths` in the order given (callers sort them by name).
    mutating func add(paths: [String], skipDeadOwners: Bool) {
        var reader = MetricFileReader()
        for path in paths {
            let base = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? path
            guard let name = MetricFileName(parsing: base) else {
                problems.append(MetricFileError(path: path, kind: .badName(MetricFileName.problem(with: base))))
                continue
            }
            let isLiveGauge: Bool
            if case .gauge(let mode) = name.kind { isLiveGauge = mode.isLive } else { isLiveGauge = false }
            if isLiveGauge && skipDeadOwners {
                do {
                    if try Liveness.probe(path: path) == .dead {
                        deadOwnerFiles.append(path)
                        continue
                    }
                } catch {
                    // Deleted by mark-dead since the listing: like Python, not a problem.
                    if error.errno == .noEntry { continue }
                    // Anything else: let the reader below name the problem.
                }
            }
            do {
                let file = try reader.load(path: path)
                try add(file: file, name: name)
            } catch {
                if case .vanished = error.kind, isLiveGauge { continue }
                problems.append(error)
            }
        }
    }

    /// Checks one file completely, then adds its entries.
    private mutating func add(file: borrowing LoadedMetricFile, name: MetricFileName) throws(MetricFileError) {
        scratchKeys.removeAll(keepingCapacity: true)
        scratchValues.removeAll(keepingCapacity: true)
        scratchStamps.removeAll(keepingCapacity: true)
        let isHistogramFile = name.kind == .histogram
        // Pass 1: bounds, keys, values, exactly as LoadedMetricFile.forEachEntry checks them,
        // written out here so the loop calls nothing per entry but the interner.
        let bytes = file.bytes
        let used = bytes.count
        var pos = FileFormat.headerSize
        while pos < used {
            guard pos + 4 <= used else { throw MetricFileError(path: file.path, kind: .entryOutOfBounds(offset: pos, keyLength: -1)) }
            let length = Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: pos, as: Int32.self)))
            guard length >= 0, length <= used else {
                throw MetricFileError(path: file.path, kind: .entryOutOfBounds(offset: pos, keyLength: length))
            }
            let keyStart = pos + 4
            let valueOffset = keyStart + length + FileFormat.padding(keyLength: length)
            let end = valueOffset + 16
            guard end <= used else { throw MetricFileError(path: file.path, kind: .entryOutOfBounds(offset: pos, keyLength: length)) }
            let key = UnsafeRawBufferPointer(rebasing: bytes[keyStart..<(keyStart + length)])
            let (id, isNew) = keys.intern(key)
            if isNew { decode(id: id, key: key) }
            let series = keySeries[Int(id)]
            if series < 0 {
                throw MetricFileError(path: file.path, kind: .invalidKey(offset: pos, keyErrors[id] ?? KeyDecodingError(offset: 0, reason: "invalid key")))
            }
            if isHistogramFile && seriesLeState[Int(series)] == 2 {
                let le = seriesLabels[Int(series)].first { $0.name == "le" }?.value ?? ""
                throw MetricFileError(path: file.path, kind: .invalidKey(offset: pos, KeyDecodingError(offset: 0, reason: "bucket bound le=\"\(le)\" is not a number")))
            }
            scratchKeys.append(id)
            scratchValues.append(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: valueOffset, as: UInt64.self))))
            scratchStamps.append(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: valueOffset + 8, as: UInt64.self))))
            pos = end
        }
        // Pass 2: the file is good; accumulate.
        mergedFiles += 1
        entries += scratchKeys.count
        let kind = name.kind
        var owner: Int32 = -1
        var mode: GaugeMode?
        if case .gauge(let m) = kind {
            mode = m
            owners.append(name.owner)
            owner = Int32(owners.count - 1)
        }
        for i in 0..<scratchKeys.count {
            let id = Int(scratchKeys[i])
            let s = keySeries[id]
            let f = Int(seriesFamily[Int(s)])
            let familyKindNow: FileKind
            if let k = familyKind[f] {
                familyKindNow = k
            } else {
                familyKind[f] = kind
                familyHelp[f] = keyHelp[id]
                familyKindNow = kind
            }
            if let mode {
                familyMode[f] = mode
                contributions.append(Contribution(series: s, owner: owner, value: scratchValues[i], timestamp: scratchStamps[i]))
            } else if case .gauge = familyKindNow {
                contributions.append(Contribution(series: s, owner: -1, value: scratchValues[i], timestamp: scratchStamps[i]))
            } else {
                values[Int(s)] += scratchValues[i]
                seen[Int(s)] = true
            }
        }
    }

    /// Decodes a new key; records -1 for a key that is not valid.
    private mutating func decode(id: Int32, key: UnsafeRawBufferPointer) {
        let decoded: SeriesKey
        do {
            decoded = try SeriesKey(decoding: key)
        } catch {
            keySeries.append(-1)
            keyHelp.append("")
            keyErrors[id] = error
            return
        }
        let f = family(named: decoded.family)
        let s = series(family: f, sample: decoded.sample, labels: decoded.labels)
        keySeries.append(s)
        keyHelp.append(decoded.help)
    }

    private mutating func family(named name: String) -> Int32 {
        if let f = familyIndex[name] { return f }
        let f = Int32(familyName.count)
        familyIndex[name] = f
        familyName.append(name)
        familyKind.append(nil)
        familyHelp.append("")
        familyMode.append(nil)
        familySeries.append([])
        return f
    }

    /// The series of `(family, sample, labels)`; labels must be sorted by code point.
    private mutating func series(family f: Int32, sample: String, labels: [Label]) -> Int32 {
        let identity = SeriesIdentity(family: f, sample: sample, labels: labels)
        if let s = seriesIndex[identity] { return s }
        let s = Int32(seriesSample.count)
        seriesIndex[identity] = s
        seriesFamily.append(f)
        seriesSample.append(sample)
        seriesLabels.append(labels)
        if let le = labels.first(where: { $0.name == "le" }) {
            if let v = pythonFloat(le.value) {
                seriesLe.append(v); seriesLeState.append(1)
            } else {
                seriesLe.append(0); seriesLeState.append(2)
            }
        } else {
            seriesLe.append(0); seriesLeState.append(0)
        }
        values.append(0)
        stamps.append(0)
        seen.append(false)
        familySeries[Int(f)].append(s)
        return s
    }

    /// Series `s` with every `pid` label removed and, when `owner` is given, `pid="<owner>"`
    /// added: how prometheus_client labels gauge samples.
    private mutating func derive(_ s: Int32, owner: Int32) -> Int32 {
        let memo = UInt64(UInt32(bitPattern: s)) << 32 | UInt64(UInt32(bitPattern: owner &+ 1))
        if let d = derived[memo] { return d }
        let labels = seriesLabels[Int(s)]
        var d = s
        if owner >= 0 || labels.contains(where: { $0.name == "pid" }) {
            var new = labels.filter { $0.name != "pid" }
            if owner >= 0 {
                new.append(Label("pid", owners[Int(owner)]))
                new.sort { Label.codePointLess($0.name, $1.name) }
            }
            d = series(family: seriesFamily[Int(s)], sample: seriesSample[Int(s)], labels: new)
        }
        derived[memo] = d
        return d
    }

    // MARK: combining

    /// Applies the kept gauge-file entries, now that every family's type and mode are known.
    private mutating func combineContributions() {
        for c in contributions {
            let f = Int(seriesFamily[Int(c.series)])
            guard let kind = familyKind[f] else { continue }
            guard case .gauge = kind, let mode = familyMode[f]?.aggregation else {
                // A gauge file's entry in a family of another type: summed, with its pid.
                let d = c.owner >= 0 ? derive(c.series, owner: c.owner) : c.series
                values[Int(d)] += c.value
                seen[Int(d)] = true
                continue
            }
            switch mode {
            case .all, .liveall:
                let d = c.owner >= 0 ? derive(c.series, owner: c.owner) : c.series
                values[Int(d)] = c.value
                seen[Int(d)] = true
            case .min, .livemin:
                let d = Int(derive(c.series, owner: -1))
                if !seen[d] { values[d] = c.value; seen[d] = true } else if c.value < values[d] { values[d] = c.value }
            case .max, .livemax:
                let d = Int(derive(c.series, owner: -1))
                if !seen[d] { values[d] = c.value; seen[d] = true } else if c.value > values[d] { values[d] = c.value }
            case .sum, .livesum:
                let d = Int(derive(c.series, owner: -1))
                values[d] += c.value
                seen[d] = true
            case .mostrecent, .livemostrecent:
                let d = Int(derive(c.series, owner: -1))
                if stamps[d] < c.timestamp {
                    values[d] = c.value
                    stamps[d] = c.timestamp
                    seen[d] = true
                }
            }
        }
        contributions = []
    }

    // MARK: output

    /// Finishes the merge.
    /// - Parameter accumulate: `true` for exposition (cumulative buckets and `_count`);
    ///   `false` for writing merged data back into a file (per-bucket counts, no `_count`).
    consuming func finish(accumulate: Bool) -> MergeOutput {
        combineContributions()
        var families: [MetricFamilySnapshot] = []
        var modes: [String: GaugeMode] = [:]
        for f in 0..<familyName.count {
            guard let kind = familyKind[f] else { continue }
            let name = familyName[f]
            var metricKind: MetricKind
            switch kind {
            case .counter: metricKind = .counter
            case .summary: metricKind = .summary
            case .histogram: metricKind = .histogram
            case .gauge:
                metricKind = .gauge
                if let m = familyMode[f] { modes[name] = m }
            }
            let live = familySeries[f].filter { seen[Int($0)] }
            let samples = metricKind == .histogram
                ? histogramSamples(family: name, series: live, accumulate: accumulate)
                : plainSamples(series: live)
            families.append(MetricFamilySnapshot(name: name, kind: metricKind, help: familyHelp[f], samples: samples))
        }
        families.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        return MergeOutput(families: families, problems: problems, gaugeModes: modes, mergedFiles: mergedFiles,
                           deadOwnerFiles: deadOwnerFiles, entries: entries)
    }

    /// Samples of a counter, gauge or summary: sorted by labels, then by sample name.
    private func plainSamples(series: [Int32]) -> [Sample] {
        let sorted = series.sorted { a, b in
            let la = seriesLabels[Int(a)], lb = seriesLabels[Int(b)]
            if la != lb { return labelsPrecede(la, lb) }
            return seriesSample[Int(a)].utf8.lexicographicallyPrecedes(seriesSample[Int(b)].utf8)
        }
        return sorted.map { Sample(name: seriesSample[Int($0)], labels: seriesLabels[Int($0)], value: values[Int($0)]) }
    }

    /// Samples of a histogram, per label set (sorted): buckets ascending by `le` (summed per
    /// float value, re-rendered in Go's form, `le` last), `_count`, then the other samples
    /// (`_sum`) by name. Without `accumulate`, bucket counts stay per bucket and no `_count`
    /// is made.
    private func histogramSamples(family: String, series: [Int32], accumulate: Bool) -> [Sample] {
        struct Group {
            var labels: [Label]
            var buckets: [(le: Double, value: Double)] = []
            var others: [Int32] = []
        }
        var groups: [[Label]: Int] = [:]
        var list: [Group] = []
        for s in series {
            let labels = seriesLabels[Int(s)]
            let isBucket = seriesLeState[Int(s)] != 0
            let key = isBucket ? labels.filter { $0.name != "le" } : labels
            let g: Int
            if let existing = groups[key] { g = existing } else {
                g = list.count
                groups[key] = g
                list.append(Group(labels: key))
            }
            if isBucket {
                // An `le` that is not a number can only come from another type's file here;
                // Python would fail the whole scrape on it, so leave the sample out.
                if seriesLeState[Int(s)] == 1 { list[g].buckets.append((seriesLe[Int(s)], values[Int(s)])) }
            } else {
                list[g].others.append(s)
            }
        }
        list.sort { labelsPrecede($0.labels, $1.labels) }
        var out: [Sample] = []
        let bucketName = family + "_bucket"
        let countName = family + "_count"
        for group in list {
            var buckets = group.buckets
            buckets.sort { a, b in
                // NaN last; otherwise ascending.
                if a.le.isNaN { return false }
                if b.le.isNaN { return true }
                return a.le < b.le
            }
            var total = 0.0
            var i = 0
            while i < buckets.count {
                let le = buckets[i].le
                var v = buckets[i].value
                var j = i + 1
                while j < buckets.count && buckets[j].le == le { v += buckets[j].value; j += 1 }
                total += v
                out.append(Sample(name: bucketName, labels: group.labels + [Label("le", goFloatStandIn(le))],
                                  value: accumulate ? total : v))
                i = j
            }
            let madeCount = accumulate && !buckets.isEmpty
            if madeCount { out.append(Sample(name: countName, labels: group.labels, value: total)) }
            let others = group.others.sorted { seriesSample[Int($0)].utf8.lexicographicallyPrecedes(seriesSample[Int($1)].utf8) }
            for s in others where !(madeCount && seriesSample[Int(s)] == countName) {
                out.append(Sample(name: seriesSample[Int(s)], labels: group.labels, value: values[Int(s)]))
            }
        }
        return out
    }
}

/// Orders label sets: label by label, name then value, by Unicode code point (UTF-8 byte
/// order); a shorter set that is a prefix of a longer one comes first.
func labelsPrecede(_ a: [Label], _ b: [Label]) -> Bool {
    let n = min(a.count, b.count)
    for i in 0..<n {
        if a[i].name != b[i].name { return a[i].name.utf8.lexicographicallyPrecedes(b[i].name.utf8) }
        if a[i].value != b[i].value { return a[i].value.utf8.lexicographicallyPrecedes(b[i].value.utf8) }
    }
    return a.count < b.count
}

/// Parses a float as Python's `float()` does for the values that occur as `le`: decimal and
/// exponent forms, `inf`/`infinity`/`nan` in any case with a sign, surrounding whitespace.
func pythonFloat(_ text: String) -> Double? {
    var t = Substring(text)
    while let f = t.first, f == " " || f == "\t" || f == "\n" || f == "\r" { t = t.dropFirst() }
    while let l = t.last, l == " " || l == "\t" || l == "\n" || l == "\r" { t = t.dropLast() }
    if t.isEmpty { return nil }
    var sign = 1.0
    var body = t
    if body.first == "+" { body = body.dropFirst() } else if body.first == "-" { sign = -1; body = body.dropFirst() }
    switch body.lowercased() {
    case "inf", "infinity": return sign * .infinity
    case "nan": return .nan
    default: break
    }
    // Python also accepts `_` between digits; Swift's parser does not.
    let cleaned = body.contains("_") ? String(body.filter { $0 != "_" }) : String(body)
    guard let first = cleaned.first, first.isNumber || first == "." else { return nil }
    guard let v = Double(cleaned) else { return nil }
    return sign * v
}
