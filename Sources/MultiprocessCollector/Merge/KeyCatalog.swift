import MmapStore
import PromMetrics

/// Everything the merge learns from keys, independent of values: the raw keys seen, what
/// each decodes to, the families and series, and their output order.
///
/// Decoding a key (JSON, strings, a series lookup) costs microseconds, reading its entry a
/// few nanoseconds, and a directory holds the same keys scrape after scrape; so a collector
/// keeps its catalog between collections and only new keys are decoded. Series are
/// identified by `(family, sample, labels)`, interned as their canonical JSON, so keys that
/// differ only in help text or in JSON spelling merge into one series, as in
/// prometheus_client.
///
/// Everything is interned by its bytes (keys, series, families, file owners), never by Swift
/// `String` equality: that equates canonically equivalent text, such as `"caf\u{e9}"` and
/// `"cafe\u{301}"`, which Python and Prometheus keep apart.
struct KeyCatalog: ~Copyable, Sendable {
    // Raw keys.
    var keys = KeyInterner()
    /// Per key id: its series, or -1 when the key does not decode.
    var keySeries: [Int32] = []
    /// Per key id: its help text, as an index into `helpTexts`.
    var keyHelp: [Int32] = []
    /// Distinct help texts, interned by their UTF-8 bytes (most keys of a family share one).
    var helps = KeyInterner()
    var helpTexts: [String] = []
    /// Scratch for `decode`: a canonical identity being built, and label offsets.
    var canonicalScratch: [UInt8] = []
    var labelScratch: [Int] = []
    var keyErrors: [Int32: KeyDecodingError] = [:]
    /// Per key id, what the checks of an entry make of it: 0 good in any file, 1 good except
    /// in a histogram file (its `le` is not a number), 2 bad (it does not decode).
    var keyCheck: [UInt8] = []
    /// Per key id: the key that followed it in the last file read (-1: none yet).
    var successor: [Int32] = []
    /// Per file kind: the first key of the last file of that kind.
    var firstKeyOfKind: [FileKind: Int32] = [:]

    // Families.
    /// Family names by their UTF-8 bytes; ids are family indexes.
    var familyNames = KeyInterner()
    var familyName: [String] = []
    /// Per family: `<name>_bucket` and `<name>_count`, made once, so that every scrape's
    /// histogram samples share these strings (the exposition cache recognises them by storage).
    var familyBucketName: [String] = []
    var familyCountName: [String] = []
    var familySeries: [[Int32]] = []
    /// Per family, cached: its series by (labels, sample name); nil when a series was added.
    var plainOrder: [[Int32]?] = []
    /// Per family, cached: its series by (labels without `le`, buckets first by `le`,
    /// sample name); nil when a series was added.
    var histogramOrder: [[Int32]?] = []

    // Series: ids are the ids of their canonical `[family, sample, labels, ""]` JSON without
    // its help text (up to the `, ` before it). A plain key's identity is kept where it lies
    // in `keys` (`KeyInterner.intern(keeping:)`), so the two are never replaced apart.
    var identities = KeyInterner()
    var seriesFamily: [Int32] = []
    var seriesSample: [String] = []
    /// Per series: its sample name's id in `sampleNames`.
    var seriesSampleID: [Int32] = []
    /// Labels sorted by code point.
    var seriesLabels: [[Label]] = []
    /// 0: no `le` label; 1: a numeric `le` (in `seriesLe`); 2: an `le` that is not a number.
    var seriesLeState: [UInt8] = []
    var seriesLe: [Double] = []
    /// The label set without `le` (ids of canonical JSON), grouping a histogram's samples;
    /// -1 until a histogram needs it.
    var seriesGroup: [Int32] = []
    /// Labels for output as a histogram bucket: without `le`, then `le` in Go's form; set
    /// with `seriesGroup`.
    var seriesBucketLabels: [[Label]] = []
    var groups = KeyInterner()
    var groupLabels: [[Label]] = []
    var groupScratch = SortKey()
    /// Distinct `le` texts and what they parse to; bounds rendered in Go's form.
    var leTexts = KeyInterner()
    var leParsed: [(UInt8, Double)] = []
    var leGoTexts: [String] = []
    /// Per `le` text: whether it is a number spelled as Go writes it (as prometheus_client
    /// writes every bound), so that a bucket's labels can give it back as its key spells it.
    var leIsGoText: [Bool] = []
    var lastLeText: Int32 = -1
    /// The group of the last series whose group was computed from its key's bytes.
    var lastGroup: Int32 = -1
    var goTexts: [UInt64: String] = [:]
    /// The family, sample name, label names and help text of the last key decoded: the
    /// interners' hints, as keys come in runs of one family.
    var lastFamily: Int32 = -1
    var lastSample: Int32 = -1
    var lastLabelNames: [Int32] = []
    var lastHelp: Int32 = -1
    /// The last plain key decoded to a new series: where the next key differs from it only
    /// inside one label value, nearly every key of a file (a counter's children, a histogram
    /// child's buckets), most of what it decodes to is the same (``parseSibling(_:)``).
    var sibling = PlainSibling()
    /// Sample and label names by their UTF-8 bytes, each made a `String` once.
    var sampleNames = KeyInterner()
    var sampleTexts: [String] = []
    var labelNames = KeyInterner()
    var labelNameTexts: [String] = []
    /// Derived series (pid removed, or replaced by a file's owner), by `series << 32 | owner + 1`.
    var derived: [UInt64: Int32] = [:]
    /// File owners by their UTF-8 bytes; ids index `owners`.
    var ownerNames = KeyInterner()
    var owners: [String] = []

    // Files.
    /// Per path: the file read there last and the key ids of its entries, in file order, so
    /// that the next read of the same file (``FileIdentity``) trusts them instead of
    /// interning every key again (see ``MergeEngine``'s doc comment).
    var knownFiles: [String: KnownFile] = [:]

    var seriesCount: Int { seriesFamily.count }
    var familyCount: Int { familyName.count }

    init() {}

    /// Makes room for about `n` new keys, each a new series: a file whose keys are mostly new
    /// (a fresh merge's first file of a kind) grows the per-key and per-series arrays and the
    /// interners once, where appending would grow them over and over, each time in new
    /// memory. Grows by at least half again, so that small reservations cannot copy an array
    /// every time.
    mutating func reserve(newKeys n: Int) {
        func room<T>(_ array: inout [T], _ extra: Int) {
            let needed = array.count + extra
            if needed > array.capacity { array.reserveCapacity(Swift.max(needed, array.capacity + array.capacity / 2)) }
        }
        room(&keySeries, n); room(&keyHelp, n); room(&keyCheck, n); room(&successor, n)
        room(&seriesFamily, n); room(&seriesSample, n); room(&seriesSampleID, n); room(&seriesLabels, n)
        room(&seriesLeState, n); room(&seriesLe, n); room(&seriesGroup, n); room(&seriesBucketLabels, n)
        keys.reserve(n)
        identities.reserve(n)
    }

    /// Decodes a new key (just interned as `id`); records -1 for a key that is not valid.
    ///
    /// Keys spelled exactly as prometheus_client writes them with plain ASCII strings (no
    /// escapes) and label names in ascending order, nearly every key, are read straight from
    /// their bytes: their series identity is their own bytes up to the help text, and no
    /// string is built unless the series is new. Every other key goes through
    /// `SeriesKey(decoding:)`, which accepts and rejects exactly what it always has.
    ///
    /// - Parameter histogramFile: whether the key comes from a histogram file: the group of a
    ///   new series (``computeGroup(_:)``) is then computed at once, from the key's bytes.
    mutating func decode(id: Int32, histogramFile: Bool) {
        // The interned copy, which lives as long as the catalog: a series identity is kept
        // where its bytes lie in it.
        decodeSeries(id: id, key: keys.bytes(of: id), histogramFile: histogramFile)
        let s = Int(keySeries[Int(id)])
        keyCheck.append(s < 0 ? 2 : seriesLeState[s] == 2 ? 1 : 0)
    }

    private mutating func decodeSeries(id: Int32, key: UnsafeRawBufferPointer, histogramFile: Bool) {
        successor.append(-1)
        labelScratch.removeAll(keepingCapacity: true)
        let changed = sibling.key >= 0 && sibling.histogramFile == histogramFile ? parseSibling(key) : nil
        if let plain = changed?.plain ?? PlainKey(parsing: key, labels: &labelScratch) {
            // The series identity: the key's bytes up to its help text (see `series`), where they
            // lie in `keys`.
            let (s, isNew) = identities.intern(keeping: UnsafeRawBufferPointer(rebasing: key[0..<plain.helpQuote]))
            let helpText = changed != nil ? sibling.help : help(UnsafeRawBufferPointer(rebasing: key[plain.help]))
            if isNew {
                let f: Int32
                let sample: Int32
                let le: Int
                let leText: Int32
                let labels: [Label]
                if let k = changed?.label {
                    // The sibling's, but for label `k`'s value.
                    (f, sample, le) = (sibling.family, sibling.sample, sibling.le)
                    let value = UnsafeRawBufferPointer(rebasing: key[labelScratch[4 * k + 2]..<labelScratch[4 * k + 3]])
                    leText = k == le ? self.leText(value) : sibling.leText
                    if k == le, histogramFile, sibling.group >= 0, leIsGoText[Int(leText)] {
                        // Only the bound changed: the series' labels are its group's and this
                        // bound, which its bucket labels hold (``labels(of:)``); none made here.
                        labels = []
                    } else {
                        let siblings = self.labels(of: Int(sibling.series))
                        labels = Label.array(count: siblings.count) { j in
                            j == k ? Label(siblings[j].name, String(decoding: value, as: UTF8.self)) : siblings[j]
                        }
                    }
                } else {
                    // Names and samples repeat from key to key: interned by their bytes, each
                    // made a `String` once.
                    f = family(bytes: UnsafeRawBufferPointer(rebasing: key[plain.family]))
                    let (id, newSample) = sampleNames.intern(UnsafeRawBufferPointer(rebasing: key[plain.sample]), hint: lastSample)
                    if newSample {
                        sampleTexts.append(String(decoding: UnsafeRawBufferPointer(rebasing: key[plain.sample]), as: UTF8.self))
                    }
                    sample = id
                    lastSample = sample
                    var leAt = -1
                    var leID: Int32 = -1
                    let count = labelScratch.count / 4
                    for k in 0..<count {
                        let name = UnsafeRawBufferPointer(rebasing: key[labelScratch[4 * k]..<labelScratch[4 * k + 1]])
                        let (n, newName) = labelNames.intern(name, hint: k < lastLabelNames.count ? lastLabelNames[k] : -1)
                        if newName { labelNameTexts.append(String(decoding: name, as: UTF8.self)) }
                        if k < lastLabelNames.count { lastLabelNames[k] = n } else { lastLabelNames.append(n) }
                        if name.count == 2 && name[0] == 0x6C && name[1] == 0x65 {  // "le"
                            leAt = k
                            leID = self.leText(UnsafeRawBufferPointer(rebasing: key[labelScratch[4 * k + 2]..<labelScratch[4 * k + 3]]))
                        }
                    }
                    (le, leText) = (leAt, leID)
                    labels = Label.array(count: count) { k in
                        let value = UnsafeRawBufferPointer(rebasing: key[labelScratch[4 * k + 2]..<labelScratch[4 * k + 3]])
                        return Label(labelNameTexts[Int(lastLabelNames[k])], String(decoding: value, as: UTF8.self))
                    }
                }
                let (leState, leValue) = leText >= 0 ? leParsed[Int(leText)] : (0, 0)
                addSeries(s, family: f, sample: sampleTexts[Int(sample)], sampleID: sample, labels: labels, leState: leState, le: leValue)
                if histogramFile {
                    if let k = changed?.label, k == le, sibling.group >= 0 {
                        // Only the bound changed: the sibling's group (its labels without `le`).
                        setGroup(sibling.group, isNew: false, of: Int(s), goLe: { $0.leGoTexts[Int(leText)] })
                    } else {
                        computeGroup(Int(s), plainKey: key, skipping: le, leText: leText)
                    }
                }
                sibling.remember(key: id, plain: plain, series: s, family: f, sample: sample, help: helpText, le: le, leText: leText,
                                 group: histogramFile ? seriesGroup[Int(s)] : -1, histogramFile: histogramFile, labels: &labelScratch)
            }
            keySeries.append(s)
            keyHelp.append(helpText)
            return
        }
        let decoded: SeriesKey
        do {
            decoded = try SeriesKey(decoding: key)
        } catch {
            keySeries.append(-1)
            keyHelp.append(-1)
            keyErrors[id] = error
            return
        }
        let f = family(named: decoded.family)
        keySeries.append(series(family: f, sample: decoded.sample, labels: decoded.labels))
        var text = decoded.help
        keyHelp.append(text.withUTF8 { help(UnsafeRawBufferPointer($0)) })
    }

    /// `key` parsed from the last plain key decoded to a new series (`sibling`), where it is
    /// that key with the value of one label (`label`) changed to other plain text: its label
    /// ranges in `labelScratch`, exactly as `PlainKey(parsing:labels:)` would put them. Nil
    /// (and `labelScratch` untouched) for any other key.
    ///
    /// `key` is compared with the sibling's bytes: the same up to somewhere in that label's
    /// value, plain text (0x20...0x7E but `"` and `\`) from there to a quote, and from that
    /// quote to its end the same as the sibling's from its value's closing quote: the key
    /// spells the same family, sample, label names and help text, and only that value differs.
    mutating func parseSibling(_ key: UnsafeRawBufferPointer) -> (plain: PlainKey, label: Int)? {
        let old = keys.bytes(of: sibling.key)
        guard let p = key.baseAddress, let q = old.baseAddress else { return nil }
        let shorter = Swift.min(key.count, old.count)
        var same = 0
        while same &+ 8 <= shorter,
              p.loadUnaligned(fromByteOffset: same, as: UInt64.self) == q.loadUnaligned(fromByteOffset: same, as: UInt64.self) {
            same &+= 8
        }
        while same < shorter && p.load(fromByteOffset: same, as: UInt8.self) == q.load(fromByteOffset: same, as: UInt8.self) { same &+= 1 }
        // The label whose value (from its first byte to its closing quote) holds the first difference.
        let ranges = sibling.labels
        let count = ranges.count / 4
        var k = 0
        while k < count && ranges[4 * k + 3] < same { k += 1 }
        guard k < count, ranges[4 * k + 2] <= same else { return nil }
        let shift = key.count - old.count
        let quote = ranges[4 * k + 3]
        let newQuote = quote + shift
        guard newQuote >= same, KeyInterner.equal(p + newQuote, q + quote, old.count - quote) else { return nil }
        for i in same..<newQuote {
            let b = p.load(fromByteOffset: i, as: UInt8.self)
            guard b >= 0x20, b < 0x7F, b != 0x22, b != 0x5C else { return nil }
        }
        for j in 0..<count {
            let by = j > k ? shift : 0
            labelScratch.append(ranges[4 * j] + by)
            labelScratch.append(ranges[4 * j + 1] + by)
            labelScratch.append(ranges[4 * j + 2] + by)
            labelScratch.append(ranges[4 * j + 3] + (j >= k ? shift : 0))
        }
        var plain = sibling.plain
        plain.help = (plain.help.lowerBound + shift)..<(plain.help.upperBound + shift)
        plain.helpQuote += shift
        return (plain, k)
    }

    /// The index in `helpTexts` of the help text whose UTF-8 bytes are `bytes`.
    mutating func help(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        let (h, isNew) = helps.intern(bytes, hint: lastHelp)
        if isNew { helpTexts.append(String(decoding: bytes, as: UTF8.self)) }
        lastHelp = h
        return h
    }

    /// The help text of key `id` ("" for a key that does not decode).
    func helpText(ofKey id: Int) -> String {
        let h = keyHelp[id]
        return h >= 0 ? helpTexts[Int(h)] : ""
    }

    mutating func family(named name: String) -> Int32 {
        var name = name
        let (f, isNew) = name.withUTF8 { familyNames.intern(UnsafeRawBufferPointer($0), hint: -1) }
        guard isNew else { return f }
        precondition(Int(f) == familyName.count)
        familyName.append(name)
        familyBucketName.append(name + "_bucket")
        familyCountName.append(name + "_count")
        familySeries.append([])
        plainOrder.append(nil)
        histogramOrder.append(nil)
        return f
    }

    /// The family whose name's UTF-8 bytes are `name`, added when new.
    mutating func family(bytes name: UnsafeRawBufferPointer) -> Int32 {
        // Keys of one family come in runs: the last family is checked first.
        var f = familyNames.find(name, hint: lastFamily)
        if f < 0 { f = family(named: String(decoding: name, as: UTF8.self)) }
        lastFamily = f
        return f
    }

    /// The series of `(family, sample, labels)`; `labels` must be sorted by code point.
    mutating func series(family f: Int32, sample: String, labels: [Label]) -> Int32 {
        let name = familyName[Int(f)]
        // The identity is the canonical key without its help text: up to the `, ` before it,
        // as `decode` takes it from a plain key (the encoding ends in `""]` for an empty help).
        let canonical = SeriesKey(family: name, sample: sample, labels: labels, help: "").encoded()
        let (id, isNew) = canonical.withUnsafeBytes { identities.intern(UnsafeRawBufferPointer(rebasing: $0.dropLast(3)), hint: -1) }
        if isNew { addSeries(id, family: f, sample: sample, labels: labels) }
        return id
    }

    /// Records the new series `id` (just interned in `identities`).
    mutating func addSeries(_ id: Int32, family f: Int32, sample: String, labels: [Label]) {
        var leState: UInt8 = 0
        var le = 0.0
        if var text = labels.first(where: { $0.name == "le" })?.value {
            (leState, le) = text.withUTF8 { parseLe(UnsafeRawBufferPointer($0)) }
        }
        var name = sample
        let (sampleID, isNew) = name.withUTF8 { sampleNames.intern(UnsafeRawBufferPointer($0), hint: -1) }
        if isNew { sampleTexts.append(sample) }
        addSeries(id, family: f, sample: sample, sampleID: sampleID, labels: labels, leState: leState, le: le)
    }

    /// Records the new series `id` whose `le` label, if any, is already parsed (``parseLe(_:)``).
    mutating func addSeries(_ id: Int32, family f: Int32, sample: String, sampleID: Int32, labels: [Label], leState: UInt8,
                            le: Double) {
        let s = Int(id)
        precondition(s == seriesFamily.count)
        seriesFamily.append(f)
        seriesSample.append(sample)
        seriesSampleID.append(sampleID)
        seriesLabels.append(labels)
        seriesLeState.append(leState)
        seriesLe.append(le)
        seriesGroup.append(-1)
        seriesBucketLabels.append([])
        familySeries[Int(f)].append(id)
        plainOrder[Int(f)] = nil
        histogramOrder[Int(f)] = nil
    }

    /// The labels of series `s` as its key spells them (sorted by name). A bucket decoded from
    /// the key before it, where only the bound changed, keeps none of its own (`decodeSeries`):
    /// they are its bucket labels, its group's then `le`, with `le` moved to its place.
    func labels(of s: Int) -> [Label] {
        let stored = seriesLabels[s]
        // Any other series with an `le` label keeps its labels, so they are not empty.
        guard stored.isEmpty, seriesLeState[s] == 1, let le = seriesBucketLabels[s].last else { return stored }
        var labels = Array(seriesBucketLabels[s].dropLast())
        labels.insert(le, at: labels.firstIndex { Label.codePointLess(le.name, $0.name) } ?? labels.count)
        return labels
    }

    /// Computes the group (label set without `le`) of series `s`, once. Groups are interned
    /// by the label set's sort key, so the key doubles as the start of the series' sort key.
    mutating func computeGroup(_ s: Int) {
        guard seriesGroup[s] < 0 else { return }
        let labels = self.labels(of: s)
        let hasLe = seriesLeState[s] != 0
        groupScratch.bytes.removeAll(keepingCapacity: true)
        groupScratch.append(labels: labels, skippingLe: hasLe)
        let (g, isNew) = groupScratch.bytes.withUnsafeBytes { groups.intern($0, hint: -1) }
        setGroup(g, isNew: isNew, of: s, goLe: { $0.goText($0.seriesLe[s]) })
    }

    /// Records group `g` (just interned from `groupScratch`) of series `s`: a new group's
    /// labels are the series' without `le`; a bucket's output labels are the group's, then
    /// `le` as `goLe` writes it in Go's form.
    private mutating func setGroup(_ g: Int32, isNew: Bool, of s: Int, goLe: (inout KeyCatalog) -> String) {
        // Not read for a bucket of a group met before (whose labels may not be kept).
        if isNew {
            let labels = self.labels(of: s)
            groupLabels.append(seriesLeState[s] != 0 ? labels.filter { $0.name != "le" } : labels)
        }
        seriesGroup[s] = g
        if seriesLeState[s] == 1 {
            let group = groupLabels[Int(g)]
            let le = Label("le", goLe(&self))
            seriesBucketLabels[s] = Label.array(count: group.count + 1) { $0 < group.count ? group[$0] : le }
        } else {
            seriesBucketLabels[s] = self.labels(of: s)
        }
    }

    /// `computeGroup(s)` for the new series `s` of the plain key `key` (its label ranges in
    /// `labelScratch`), whose label number `le` (-1: none) is its `le`, of text `leText`: the
    /// sort key of a label set of printable ASCII is its bytes as they are, so it is copied
    /// from the key; the series of one histogram child come in a run, so the last group is
    /// checked first.
    private mutating func computeGroup(_ s: Int, plainKey key: UnsafeRawBufferPointer, skipping le: Int, leText: Int32) {
        groupScratch.bytes.removeAll(keepingCapacity: true)
        var j = 0
        while j + 3 < labelScratch.count {
            if j / 4 != le {
                groupScratch.bytes.appendShort(UnsafeRawBufferPointer(rebasing: key[labelScratch[j]..<labelScratch[j + 1]]))
                groupScratch.bytes.append(0)
                groupScratch.bytes.appendShort(UnsafeRawBufferPointer(rebasing: key[labelScratch[j + 2]..<labelScratch[j + 3]]))
                groupScratch.bytes.append(0)
            }
            j += 4
        }
        groupScratch.bytes.append(0)
        let (g, isNew) = groupScratch.bytes.withUnsafeBytes { groups.intern($0, hint: lastGroup) }
        lastGroup = g
        setGroup(g, isNew: isNew, of: s, goLe: { $0.leGoTexts[Int(leText)] })
    }

    /// `le` parsed as Python's `float()` does: state 1 and the value, or state 2 when it is
    /// not a number. A directory holds a few distinct bounds, each in thousands of keys.
    mutating func parseLe(_ text: UnsafeRawBufferPointer) -> (UInt8, Double) {
        leParsed[Int(leText(text))]
    }

    /// The id of the `le` text `text` in `leTexts`, parsed (`leParsed`) and, when a number,
    /// rendered in Go's form (`leGoTexts`) the first time it is met.
    mutating func leText(_ text: UnsafeRawBufferPointer) -> Int32 {
        // A histogram's bounds come in the same order key after key: the one after the last.
        let (t, isNew) = leTexts.intern(text, hint: lastLeText &+ 1)
        lastLeText = t
        if isNew {
            let raw = String(decoding: text, as: UTF8.self)
            if let v = pythonFloat(raw) {
                leParsed.append((1, v))
                let go = goText(v)
                leGoTexts.append(go)
                leIsGoText.append(go == raw)
            } else {
                leParsed.append((2, 0))
                leGoTexts.append("")
                leIsGoText.append(false)
            }
        }
        return t
    }

    /// `GoFloat.format(value)`, remembered.
    mutating func goText(_ value: Double) -> String {
        if let text = goTexts[value.bitPattern] { return text }
        let text = GoFloat.format(value)
        goTexts[value.bitPattern] = text
        return text
    }

    mutating func owner(_ name: String) -> Int32 {
        var name = name
        let (o, isNew) = name.withUTF8 { ownerNames.intern(UnsafeRawBufferPointer($0), hint: -1) }
        if isNew { owners.append(name) }
        return o
    }

    /// Series `s` with every `pid` label removed and, when `owner >= 0`, `pid="<owner>"`
    /// added: how prometheus_client labels gauge samples.
    mutating func derive(_ s: Int32, owner: Int32) -> Int32 {
        let memo = UInt64(UInt32(bitPattern: s)) << 32 | UInt64(UInt32(bitPattern: owner &+ 1))
        if let d = derived[memo] { return d }
        let labels = self.labels(of: Int(s))
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

    /// The family's series sorted for output as a counter, gauge or summary: by labels,
    /// then sample name. Changes nothing: threads may sort several families at once (the
    /// merge caches the order in `plainOrder`).
    func sortedPlain(_ f: Int) -> [Int32] {
        let series = familySeries[f]
        // The sample name as its rank among the family's names (fixed width, after a
        // prefix-free label key: the same order as the name's own sort key).
        let texts = sampleTexts
        let sampleRank = rank(of: series, count: sampleNames.count, id: { seriesSampleID[Int($0)] }) {
            codePointPrecedes(texts[Int($0)], texts[Int($1)])
        }
        var keys = SortKeys(count: series.count)
        for s in series {
            keys.key.append(labels: labels(of: Int(s)))
            keys.key.append(rank: sampleRank[Int(seriesSampleID[Int(s)])])
            keys.next()
        }
        return keys.sorted(series)
    }

    /// Computes the group of each of the family's series that has none yet
    /// (``computeGroup(_:)``), as ``sortedHistogram(_:)`` needs.
    mutating func groupSeries(of f: Int) {
        for s in familySeries[f] { computeGroup(Int(s)) }
    }

    /// The family's series sorted for output as a histogram: by label set without `le`,
    /// then buckets ascending by `le` (NaN first, as its byte key has it), then the other
    /// samples by name. Changes nothing, once the series' groups are computed
    /// (``groupSeries(of:)``): threads may sort several families at once (the merge caches the
    /// order in `histogramOrder`).
    ///
    /// That is the byte order of the key `group's sort key, 1, le (8 bytes, order-preserving)
    /// or 2, sample name's sort key`; as label-set and name sort keys are prefix-free, it is
    /// the order of the integers `(rank of the group, 0 or 1, le, rank of the sample name)`,
    /// which are compared instead (groups and names ranked once, ties by the family's order,
    /// as the stable sort of byte keys leaves them).
    func sortedHistogram(_ f: Int) -> [Int32] {
        let series = familySeries[f]
        let groupRank = rank(of: series, count: groups.count, id: { seriesGroup[Int($0)] }) {
            bytesPrecede(groups.bytes(of: $0).assumingMemoryBound(to: UInt8.self), groups.bytes(of: $1).assumingMemoryBound(to: UInt8.self))
        }
        let texts = sampleTexts
        let sampleRank = rank(of: series, count: sampleNames.count, id: { seriesSampleID[Int($0)] }) {
            codePointPrecedes(texts[Int($0)], texts[Int($1)])
        }
        struct Key: Comparable {
            var group: UInt64, le: UInt64, sample: UInt64
            static func < (a: Key, b: Key) -> Bool { (a.group, a.le, a.sample) < (b.group, b.le, b.sample) }
        }
        var keys: [Key] = []
        keys.reserveCapacity(series.count)
        for (i, id) in series.enumerated() {
            let s = Int(id)
            let state = seriesLeState[s]
            let group = UInt64(groupRank[Int(seriesGroup[s])]) << 1 | (state != 0 ? 0 : 1)
            let le = state == 0 ? 0 : SortKey.orderPreserving(state == 1 ? seriesLe[s] : .nan)
            keys.append(Key(group: group, le: le, sample: UInt64(sampleRank[Int(seriesSampleID[s])]) << 32 | UInt64(i)))
        }
        keys.sort()
        return keys.map { series[Int(truncatingIfNeeded: $0.sample & 0xFFFF_FFFF)] }
    }

    /// Per id (of `0..<count`), the rank by `precedes` among the ids of `series` (-1 for an
    /// id no series has).
    private func rank(of series: [Int32], count: Int, id: (Int32) -> Int32, by precedes: (Int32, Int32) -> Bool) -> [Int32] {
        var rank = [Int32](repeating: -1, count: count)
        var distinct: [Int32] = []
        for s in series {
            let i = id(s)
            if rank[Int(i)] < 0 {
                rank[Int(i)] = 0
                distinct.append(i)
            }
        }
        distinct.sort(by: precedes)
        for (r, i) in distinct.enumerated() { rank[Int(i)] = Int32(r) }
        return rank
    }
}

/// Whether `a` sorts before `b` by code point (the order of their sort keys).
func codePointPrecedes(_ a: String, _ b: String) -> Bool {
    var ka = SortKey(), kb = SortKey()
    ka.append(a)
    kb.append(b)
    return bytesPrecede(ka.bytes, kb.bytes)
}

/// The sort keys of a list of series, back to back in one buffer.
struct SortKeys {
    var key = SortKey()
    private var starts: [Int] = [0]

    init(count: Int) {
        key.bytes.reserveCapacity(count * 48)
        starts.reserveCapacity(count + 1)
    }

    /// Ends the current key.
    mutating func next() { starts.append(key.bytes.count) }

    /// `items` (one per key, in the order the keys were made) sorted by their keys.
    func sorted(_ items: [Int32]) -> [Int32] {
        precondition(items.count == starts.count - 1)
        var order = Array(0..<items.count)
        key.bytes.withUnsafeBufferPointer { all in
            starts.withUnsafeBufferPointer { starts in
                order.sort { a, b in
                    bytesPrecede(UnsafeBufferPointer(rebasing: all[starts[a]..<starts[a + 1]]),
                                 UnsafeBufferPointer(rebasing: all[starts[b]..<starts[b + 1]]))
                }
            }
        }
        return order.map { items[$0] }
    }
}

/// Bytes whose byte-wise order is the order of what was appended: strings by code point
/// (UTF-8 bytes, with 0x00 and 0x01 escaped so that 0x00 can end a string and sort below
/// any continuation), label lists label by label with a shorter list first.
struct SortKey {
    var bytes: [UInt8]

    init() {
        bytes = []
        bytes.reserveCapacity(128)
    }

    mutating func append(_ s: String) {
        var s = s
        s.withUTF8 { u in
            var plain = true
            for b in u where b <= 1 { plain = false; break }
            if plain {
                bytes.appendShort(UnsafeRawBufferPointer(u))
            } else {
                for b in u {
                    if b <= 1 { bytes.append(1); bytes.append(b + 1) } else { bytes.append(b) }
                }
            }
        }
        bytes.append(0)
    }

    mutating func append(labels: [Label], skippingLe: Bool = false) {
        for l in labels where !(skippingLe && l.name == "le") {
            append(l.name)
            append(l.value)
        }
        // Label names are never empty, so every label starts with a byte >= 1.
        bytes.append(0)
    }

    /// A rank as 4 bytes in ascending order.
    mutating func append(rank: Int32) {
        let r = UInt32(bitPattern: rank)
        bytes.append(UInt8(truncatingIfNeeded: r >> 24)); bytes.append(UInt8(truncatingIfNeeded: r >> 16))
        bytes.append(UInt8(truncatingIfNeeded: r >> 8)); bytes.append(UInt8(truncatingIfNeeded: r))
    }

    /// A double as 8 bytes in ascending numeric order (NaN, whose bits are taken as all ones,
    /// below -Inf).
    mutating func append(orderPreserving d: Double) {
        let ordered = Self.orderPreserving(d)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: ordered >> UInt64(shift))) }
    }

    /// `d` as an integer in ascending numeric order (NaN below -Inf); the bytes
    /// ``append(orderPreserving:)`` appends, big-endian.
    static func orderPreserving(_ d: Double) -> UInt64 {
        let bits = d.isNaN ? UInt64.max : d.bitPattern
        return bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
    }
}

extension Array where Element == UInt8 {
    /// Appends `b`: byte by byte when it is short (label names and values, mostly), which costs
    /// less than `append(contentsOf:)`'s generic path.
    @inline(__always)
    mutating func appendShort(_ b: UnsafeRawBufferPointer) {
        if b.count > 16 {
            append(contentsOf: b)
            return
        }
        for byte in b { append(byte) }
    }
}

/// Byte-wise order of two byte strings, a prefix first.
func bytesPrecede(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in bytesPrecede(pa, pb) } }
}

/// Byte-wise order of two byte strings, a prefix first.
@inline(__always)
func bytesPrecede(_ pa: UnsafeBufferPointer<UInt8>, _ pb: UnsafeBufferPointer<UInt8>) -> Bool {
    let n = Swift.min(pa.count, pb.count)
    var i = 0
    if let ba = pa.baseAddress, let bb = pb.baseAddress {
        let ra = UnsafeRawPointer(ba), rb = UnsafeRawPointer(bb)
        while i + 8 <= n {
            let wa = UInt64(bigEndian: ra.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let wb = UInt64(bigEndian: rb.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            if wa != wb { return wa < wb }
            i += 8
        }
    }
    while i < n {
        if pa[i] != pb[i] { return pa[i] < pb[i] }
        i += 1
    }
    return pa.count < pb.count
}

/// Parses a float as Python's `float()` does for the values that occur as `le`: decimal and
/// exponent forms, `inf`/`infinity`/`nan` in any case with a sign, surrounding whitespace.
func pythonFloat(_ text: String) -> Double? {
    // Fast path: plain decimals such as `0.25`, `10.0` or `1e+06` (Swift alone would also take
    // hexadecimal, which Python refuses).
    if let f = text.utf8.first, f >= UInt8(ascii: "0") && f <= UInt8(ascii: "9"),
       !text.utf8.contains(UInt8(ascii: "x")), !text.utf8.contains(UInt8(ascii: "X")), let v = Double(text) {
        return v
    }
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

/// A key in prometheus_client's exact spelling, `["family", "sample", {"n": "v", ...}, "help"]`
/// with the separators `", "` and `": "`, every string printable ASCII (0x20...0x7E) without
/// `"` or `\`, and label names strictly ascending: the spelling whose series identity is the
/// key's own bytes up to the help text. A key of any other spelling is not a `PlainKey` (it
/// may still be valid: `SeriesKey(decoding:)` decides).
struct PlainKey {
    /// Byte ranges of the strings' contents.
    var family: Range<Int>
    var sample: Range<Int>
    var help: Range<Int>
    /// The offset of the help text's opening quote.
    var helpQuote: Int

    init(family: Range<Int>, sample: Range<Int>, help: Range<Int>, helpQuote: Int) {
        (self.family, self.sample, self.help, self.helpQuote) = (family, sample, help, helpQuote)
    }

    /// Parses `bytes`; appends each label's name start, name end, value start, value end to
    /// `labels`.
    init?(parsing bytes: UnsafeRawBufferPointer, labels: inout [Int]) {
        guard let p = bytes.baseAddress else { return nil }
        let n = bytes.count
        var i = 0
        @inline(__always) func byte(_ c: UInt8) -> Bool {
            guard i < n, p.load(fromByteOffset: i, as: UInt8.self) == c else { return false }
            i += 1
            return true
        }
        @inline(__always) func separator(_ c: UInt8) -> Bool {
            guard i + 1 < n, p.load(fromByteOffset: i, as: UInt8.self) == c,
                  p.load(fromByteOffset: i + 1, as: UInt8.self) == 0x20 else { return false }
            i += 2
            return true
        }
        @inline(__always) func string() -> Range<Int>? {
            guard byte(0x22) else { return nil }
            let start = i
            // Eight bytes at a time: the first byte that is not plain text ends the string
            // when it is a quote, and the plain spelling otherwise.
            while i &+ 8 <= n {
                let look = Self.special(UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                if look == 0 {
                    i &+= 8
                    continue
                }
                i &+= look.trailingZeroBitCount >> 3
                guard p.load(fromByteOffset: i, as: UInt8.self) == 0x22 else { return nil }
                i &+= 1
                return start..<(i &- 1)
            }
            // The last few bytes, one at a time.
            while i < n {
                let b = p.load(fromByteOffset: i, as: UInt8.self)
                if b == 0x22 {
                    i += 1
                    return start..<(i - 1)
                }
                guard b >= 0x20, b < 0x7F, b != 0x5C else { return nil }
                i += 1
            }
            return nil
        }
        guard byte(0x5B), let family = string(), separator(0x2C), let sample = string(), separator(0x2C), byte(0x7B) else {
            return nil
        }
        if !byte(0x7D) {
            var previous: Range<Int>?
            while true {
                guard let name = string(), separator(0x3A), let value = string() else { return nil }
                if let previous {
                    // Strictly ascending: sorted as Python sorts them, and no duplicates.
                    let u = p.assumingMemoryBound(to: UInt8.self)
                    guard bytesPrecede(UnsafeBufferPointer(start: u + previous.lowerBound, count: previous.count),
                                       UnsafeBufferPointer(start: u + name.lowerBound, count: name.count)) else { return nil }
                }
                labels.append(name.lowerBound); labels.append(name.upperBound)
                labels.append(value.lowerBound); labels.append(value.upperBound)
                previous = name
                if separator(0x2C) { continue }
                guard byte(0x7D) else { return nil }
                break
            }
        }
        guard separator(0x2C) else { return nil }
        let helpQuote = i
        guard let help = string(), byte(0x5D), i == n else { return nil }
        self.family = family
        self.sample = sample
        self.help = help
        self.helpQuote = helpQuote
    }

    /// The bytes of `w` (eight bytes, the first in the low bits) that end a plain string or
    /// make it not plain (`"`, `\`, below 0x20, above 0x7E), as their high bits: zero when
    /// there is none; otherwise the lowest bit set is that of the first such byte (a byte
    /// after it may be marked wrongly, through a borrow or carry, but never one before).
    @inline(__always)
    static func special(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let quote = w ^ (ones &* 0x22), backslash = w ^ (ones &* 0x5C)
        let isQuote = (quote &- ones) & ~quote
        let isBackslash = (backslash &- ones) & ~backslash
        let isControl = (w &- ones &* 0x20) & ~w
        let isHigh = w | (w &+ ones)  // 0x7F and above: the high bit, in the byte or once plus one
        return (isQuote | isBackslash | isControl | isHigh) & highs
    }
}

/// The last plain key a catalog decoded to a new series, and what it decoded to: where the
/// next key is the same but for one label's value (``KeyCatalog/decode(id:histogramFile:)``),
/// its family, sample name, label names, help text and, when that label is not `le`, its
/// bound are the same.
struct PlainSibling {
    /// The key's id (-1: none yet) and spelling.
    var key: Int32 = -1
    var plain = PlainKey(family: 0..<0, sample: 0..<0, help: 0..<0, helpQuote: 0)
    /// Its label ranges, as `PlainKey(parsing:labels:)` appends them.
    var labels: [Int] = []
    var series: Int32 = -1
    var family: Int32 = -1
    var sample: Int32 = -1
    var help: Int32 = -1
    /// The number of its `le` label (-1: none), and that label's text in `leTexts`.
    var le = -1
    var leText: Int32 = -1
    /// Its series' group, where it was decoded from a histogram file (-1 otherwise).
    var group: Int32 = -1
    var histogramFile = false

    /// Records the key just decoded; takes its label ranges from `labels`, which it leaves
    /// holding the last key's (to be cleared).
    mutating func remember(key: Int32, plain: PlainKey, series: Int32, family: Int32, sample: Int32, help: Int32, le: Int,
                           leText: Int32, group: Int32, histogramFile: Bool, labels: inout [Int]) {
        (self.key, self.plain, self.series, self.family, self.sample, self.help) = (key, plain, series, family, sample, help)
        (self.le, self.leText, self.group, self.histogramFile) = (le, leText, group, histogramFile)
        swap(&self.labels, &labels)
    }
}

extension Label {
    /// The labels `label(0)`, `label(1)`, ..., `label(count - 1)`: up to four made as an array
    /// literal is (one allocation of the exact size, without the growth path that reserving
    /// capacity takes), as the catalog makes one or two such arrays for nearly every new series.
    @inline(__always)
    static func array(count: Int, _ label: (Int) -> Label) -> [Label] {
        switch count {
        case 0: return []
        case 1: return [label(0)]
        case 2: return [label(0), label(1)]
        case 3: return [label(0), label(1), label(2)]
        case 4: return [label(0), label(1), label(2), label(3)]
        default: return (0..<count).map(label)
        }
    }
}

/// What a merge keeps of a file it read whole and found good: which file it was, how far it
/// was used, and its entries' keys; once it has been read so twice, a mapping of it.
struct KnownFile {
    var identity: FileIdentity
    var used: Int
    var entries: KeySequence
    var mapping: ReadMapping?

    /// How many of its entries a read of the file `opened`, used as far as `used`, may take
    /// as known: all of them when it is the same file used at least as far (files only grow
    /// while they live, so it still holds them where they were); none otherwise.
    func trustedEntries(opened: FileIdentity?, used: Int) -> Int {
        guard let opened, identity == opened, used >= self.used else { return 0 }
        return entries.keys.count
    }
}

/// The keys of a good file's entries in file order, with what accumulating them needs.
///
/// Workers of one application usually create their series in the same order, so many files
/// have equal sequences; the merge shares one value among them (its arrays are copied on
/// write, never written).
struct KeySequence {
    /// Per entry: its key id.
    let keys: [Int32]
    /// Per entry: its key's length in bytes.
    let lengths: [Int32]
    /// Per entry: the file offset of its value (the entries start after the file's header).
    let valueOffsets: [UInt32]
    /// Per entry: its key's series (every key of a good file decodes).
    let series: [Int32]
    /// The entries' families, each once, in the order of its first entry, with that entry's
    /// key: a file that gives a family its type also gives it that key's help text.
    let families: [(family: Int32, firstKey: Int32)]

    /// The sequence of `keys`, all decoded in `catalog`.
    init(keys: [Int32], catalog: borrowing KeyCatalog) {
        self.keys = keys
        lengths = keys.map { Int32(catalog.keys.length(of: $0)) }
        var offsets = [UInt32]()
        offsets.reserveCapacity(keys.count)
        var pos = FileFormat.headerSize
        for length in lengths {
            let valueAt = pos + 4 + Int(length) + FileFormat.padding(keyLength: Int(length))
            offsets.append(UInt32(truncatingIfNeeded: valueAt))
            pos = valueAt + 16
        }
        valueOffsets = offsets
        var series = [Int32]()
        series.reserveCapacity(keys.count)
        var families: [(family: Int32, firstKey: Int32)] = []
        var listed = [Bool](repeating: false, count: catalog.familyCount)
        for id in keys {
            let s = catalog.keySeries[Int(id)]
            series.append(s)
            let f = catalog.seriesFamily[Int(s)]
            if !listed[Int(f)] {
                listed[Int(f)] = true
                families.append((f, id))
            }
        }
        self.series = series
        self.families = families
    }

    /// No entries.
    init() {
        keys = []
        lengths = []
        valueOffsets = []
        series = []
        families = []
    }

    /// Calls `body` with the key ids and key lengths.
    func withUnsafeBuffers<R, E: Error>(
        _ body: (UnsafeBufferPointer<Int32>, UnsafeBufferPointer<Int32>) throws(E) -> R
    ) throws(E) -> R {
        try keys.withUnsafeBufferPointer { (keys) throws(E) -> R in
            try lengths.withUnsafeBufferPointer { (lengths) throws(E) -> R in try body(keys, lengths) }
        }
    }
}
