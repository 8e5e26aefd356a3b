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
struct KeyCatalog: ~Copyable, Sendable {
    // Raw keys.
    var keys = KeyInterner()
    /// Per key id: its series, or -1 when the key does not decode.
    var keySeries: [Int32] = []
    /// Per key id: its help text.
    var keyHelp: [String] = []
    var keyErrors: [Int32: KeyDecodingError] = [:]
    /// Per key id: the key that followed it in the last file read (-1: none yet).
    var successor: [Int32] = []
    /// Per file kind: the first key of the last file of that kind.
    var firstKeyOfKind: [FileKind: Int32] = [:]

    // Families.
    var familyIndex: [String: Int32] = [:]
    var familyName: [String] = []
    var familySeries: [[Int32]] = []
    /// Per family, cached: its series by (labels, sample name); nil when a series was added.
    var plainOrder: [[Int32]?] = []
    /// Per family, cached: its series by (labels without `le`, buckets first by `le`,
    /// sample name); nil when a series was added.
    var histogramOrder: [[Int32]?] = []

    // Series: ids are the ids of their canonical `[family, sample, labels, ""]` JSON.
    var identities = KeyInterner()
    var seriesFamily: [Int32] = []
    var seriesSample: [String] = []
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
    /// Derived series (pid removed, or replaced by a file's owner), by `series << 32 | owner + 1`.
    var derived: [UInt64: Int32] = [:]
    var ownerIndex: [String: Int32] = [:]
    var owners: [String] = []

    var seriesCount: Int { seriesFamily.count }
    var familyCount: Int { familyName.count }

    init() {}

    /// Decodes a new key (just interned as `id`); records -1 for a key that is not valid.
    mutating func decode(id: Int32, key: UnsafeRawBufferPointer) {
        successor.append(-1)
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
        keySeries.append(series(family: f, sample: decoded.sample, labels: decoded.labels))
        keyHelp.append(decoded.help)
    }

    mutating func family(named name: String) -> Int32 {
        if let f = familyIndex[name] { return f }
        let f = Int32(familyName.count)
        familyIndex[name] = f
        familyName.append(name)
        familySeries.append([])
        plainOrder.append(nil)
        histogramOrder.append(nil)
        return f
    }

    /// The series of `(family, sample, labels)`; `labels` must be sorted by code point.
    mutating func series(family f: Int32, sample: String, labels: [Label]) -> Int32 {
        let name = familyName[Int(f)]
        let canonical = SeriesKey(family: name, sample: sample, labels: labels, help: "").encoded()
        let (id, isNew) = canonical.withUnsafeBytes { identities.intern($0, hint: -1) }
        guard isNew else { return id }
        let s = Int(id)
        precondition(s == seriesFamily.count)
        seriesFamily.append(f)
        seriesSample.append(sample)
        seriesLabels.append(labels)
        var leState: UInt8 = 0
        var le = 0.0
        if let l = labels.first(where: { $0.name == "le" }) {
            if let v = pythonFloat(l.value) { leState = 1; le = v } else { leState = 2 }
        }
        seriesLeState.append(leState)
        seriesLe.append(le)
        seriesGroup.append(-1)
        seriesBucketLabels.append([])
        familySeries[Int(f)].append(id)
        plainOrder[Int(f)] = nil
        histogramOrder[Int(f)] = nil
        return id
    }

    /// Computes the group (label set without `le`) of series `s`, once. Groups are interned
    /// by the label set's sort key, so the key doubles as the start of the series' sort key.
    mutating func computeGroup(_ s: Int) {
        guard seriesGroup[s] < 0 else { return }
        let labels = seriesLabels[s]
        let withoutLe = seriesLeState[s] == 0 ? labels : labels.filter { $0.name != "le" }
        var key = SortKey()
        key.append(labels: withoutLe)
        let (g, isNew) = key.bytes.withUnsafeBytes { groups.intern($0, hint: -1) }
        if isNew { groupLabels.append(withoutLe) }
        seriesGroup[s] = g
        seriesBucketLabels[s] = seriesLeState[s] == 1 ? withoutLe + [Label("le", GoFloat.format(seriesLe[s]))] : labels
    }

    mutating func owner(_ name: String) -> Int32 {
        if let o = ownerIndex[name] { return o }
        let o = Int32(owners.count)
        ownerIndex[name] = o
        owners.append(name)
        return o
    }

    /// Series `s` with every `pid` label removed and, when `owner >= 0`, `pid="<owner>"`
    /// added: how prometheus_client labels gauge samples.
    mutating func derive(_ s: Int32, owner: Int32) -> Int32 {
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

    /// The family's series sorted for output as a counter, gauge or summary: by labels,
    /// then sample name.
    mutating func plainOrder(of f: Int) -> [Int32] {
        if let cached = plainOrder[f] { return cached }
        let series = familySeries[f]
        let keys = series.map { s in
            var key = SortKey()
            key.append(labels: seriesLabels[Int(s)])
            key.append(seriesSample[Int(s)])
            return key.bytes
        }
        let order = Array(0..<series.count).sorted { bytesPrecede(keys[$0], keys[$1]) }.map { series[$0] }
        plainOrder[f] = order
        return order
    }

    /// The family's series sorted for output as a histogram: by label set without `le`,
    /// then buckets ascending by `le` (NaN last), then the other samples by name.
    mutating func histogramOrder(of f: Int) -> [Int32] {
        if let cached = histogramOrder[f] { return cached }
        let series = familySeries[f]
        for s in series { computeGroup(Int(s)) }
        let keys = series.map { s in
            var key = SortKey()
            key.bytes.append(contentsOf: groups.bytes(of: seriesGroup[Int(s)]))
            if seriesLeState[Int(s)] != 0 {
                key.bytes.append(1)
                key.append(orderPreserving: seriesLeState[Int(s)] == 1 ? seriesLe[Int(s)] : .nan)
            } else {
                key.bytes.append(2)
            }
            key.append(seriesSample[Int(s)])
            return key.bytes
        }
        let order = Array(0..<series.count).sorted { bytesPrecede(keys[$0], keys[$1]) }.map { series[$0] }
        histogramOrder[f] = order
        return order
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
        for b in s.utf8 {
            if b <= 1 { bytes.append(1); bytes.append(b + 1) } else { bytes.append(b) }
        }
        bytes.append(0)
    }

    mutating func append(labels: [Label]) {
        for l in labels {
            append(l.name)
            append(l.value)
        }
        // Label names are never empty, so every label starts with a byte >= 1.
        bytes.append(0)
    }

    /// A double as 8 bytes in ascending numeric order (NaN above +Inf).
    mutating func append(orderPreserving d: Double) {
        let bits = d.isNaN ? UInt64.max : d.bitPattern
        let ordered = bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: ordered >> UInt64(shift))) }
    }
}

/// Byte-wise order of two byte strings, a prefix first.
func bytesPrecede(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
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
    }
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
