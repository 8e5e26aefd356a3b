import MmapStore
import SystemCalls
import Synchronization

/// The labelled children of one metric: created on first use, then found again without
/// allocating (a hash of the label values, computed with FNV-1a over their UTF-8, and an
/// open-addressing table under a mutex).
///
/// Not generic on purpose: a generic table's nested types need a runtime metadata lookup on
/// every call from the unspecialised `MetricBase.labels`, which cost more than the lookup
/// itself. ``MetricBase`` downcasts the children it stored.
final class ChildTable: Sendable {
    private struct Entry {
        var hash: UInt64
        var values: [String]
        var child: AnyObject & Sendable
    }

    private struct Table {
        var slots: [Int32] = Array(repeating: -1, count: 16)
        var entries: [Entry] = []

        /// Rebuilds the slots for `slotCount` slots (a power of two) from the entries.
        mutating func reindex(slotCount: Int) {
            var fresh = [Int32](repeating: -1, count: slotCount)
            let m = slotCount - 1
            for (n, e) in entries.enumerated() {
                var j = Int(truncatingIfNeeded: e.hash) & m
                while fresh[j] >= 0 { j = (j + 1) & m }
                fresh[j] = Int32(n)
            }
            slots = fresh
        }
    }

    private let table = Locked(Table())

    @inline(__always)
    static func hash(_ s: String, into h: inout UInt64) {
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        h = (h ^ 0xFF) &* 0x100_0000_01b3  // separator, so ("ab","c") != ("a","bc")
    }

    @inline(__always)
    static func hash(_ values: some Collection<String>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in values { hash(v, into: &h) }
        return h
    }

    /// Finds the child whose values match, or creates it with `make`.
    @inline(__always)
    func child(hash: UInt64, count: Int, matches: (borrowing [String]) -> Bool, values: () -> [String], make: ([String]) -> AnyObject & Sendable) -> AnyObject & Sendable {
        table.withLock { t in
            let mask = t.slots.count - 1
            var i = Int(truncatingIfNeeded: hash) & mask
            while true {
                let s = t.slots[i]
                if s < 0 { break }
                let e = t.entries[Int(s)]
                if e.hash == hash && e.values.count == count && matches(e.values) { return e.child }
                i = (i + 1) & mask
            }
            let v = values()
            let c = make(v)
            t.entries.append(Entry(hash: hash, values: v, child: c))
            if t.entries.count * 2 > t.slots.count {
                t.reindex(slotCount: t.slots.count * 2)
            } else {
                t.slots[i] = Int32(t.entries.count - 1)
            }
            return c
        }
    }

    /// Removes the child with these values (single-process mode only).
    func remove(_ values: [String]) {
        table.withLock { t in
            t.entries.removeAll { $0.values == values }
            t.reindex(slotCount: t.slots.count)
        }
    }

    /// Removes every child.
    func removeAll() {
        table.withLock { t in t = Table() }
    }

    /// The children with their label values, in creation order.
    func all() -> [(values: [String], child: AnyObject & Sendable)] {
        table.withLock { t in t.entries.map { ($0.values, $0.child) } }
    }
}

/// What every metric shares: its names, help, label names, registry and storage, and its table
/// of children. `Child` is the per-label-set handle type (`CounterChild`, `GaugeChild`, ...).
public class MetricBase<Child: AnyObject & Sendable>: @unchecked Sendable {
    /// The family name (after namespace, subsystem and unit; without `_total` for counters).
    public let name: String
    /// The help text.
    public let help: String
    /// The label names, in declaration order.
    public let labelNames: [String]
    /// The unit, or empty.
    package let unit: String
    /// Where the values live.
    package let storage: MetricStorage
    let clock: MetricClock
    let table = ChildTable()
    private let makeChild: @Sendable (MetricBase<Child>, [String]) -> Child
    /// The child of an unlabelled metric, created with the metric (as in prometheus_client).
    /// Set once, at the end of the subclass's initialiser, before the metric is shared. The
    /// hot paths of unlabelled counters, gauges, histograms and summaries do not read it: each
    /// of those classes keeps the same child in a `let` of its own (see `Counter.unlabelledChild`).
    var unlabelled: Child?

    init(name: String, help: String, labelNames: [String], unit: String, registry: Registry?, kind: MetricKind,
         makeChild: @escaping @Sendable (MetricBase<Child>, [String]) -> Child) throws(MetricError) {
        let registry = registry ?? Registry.default
        self.name = name
        self.help = help
        self.labelNames = labelNames
        self.unit = unit
        self.storage = registry.storage
        self.clock = registry.clock
        self.makeChild = makeChild
        try MetricNaming.validateLabelNames(labelNames, metric: name, kind: kind, multiprocess: storage.isMultiprocess)
    }

    /// Called by subclasses once fully initialised: creates the unlabelled child and
    /// registers the metric.
    /// - Parameter made: the unlabelled child when the subclass made it already.
    func finishInit(_ metric: MetricCollectable, registry: Registry?, kind: MetricKind, unlabelled made: Child? = nil) throws(MetricError) {
        if labelNames.isEmpty { unlabelled = made ?? makeChild(self, []) }
        try (registry ?? Registry.default).register(metric, kind: kind)
    }

    /// The unlabelled child; a programming error on a labelled metric.
    var only: Child {
        guard let unlabelled else { refuseUnlabelledUse() }
        return unlabelled
    }

    // Out of line: the message is built only when the program is about to stop.
    @usableFromInline @inline(never)
    func refuseUnlabelledUse() -> Never {
        misuse(Self.unlabelledUseMessage(name: name, labelNames: labelNames))
    }

    /// What an unlabelled operation on labelled metric `name` stops the process with.
    static func unlabelledUseMessage(name: String, labelNames: [String]) -> String {
        "metric '\(name)' has labels \(labelNames): call labels(...) first"
    }

    /// The child for these label values, in the order of ``labelNames``.
    ///
    /// The child exists (at zero, in multiprocess mode in the file) from this call on. Keep
    /// it for hot paths.
    /// - Precondition: as many values as label names (a programming error otherwise).
    public func labels(_ values: String...) -> Child { labels(values) }

    /// The child for these label values, in the order of ``labelNames``.
    ///
    /// On an unlabelled metric, `labels([])` (and `labels()`) is the metric's own child, so its
    /// updates are the ones the metric exports.
    public func labels(_ values: [String]) -> Child {
        if values.count != labelNames.count {
            misuse("metric '\(name)': \(values.count) label values given for \(labelNames.count) label names \(labelNames)")
        }
        if let unlabelled { return unlabelled }
        let h = ChildTable.hash(values)
        let child = table.child(hash: h, count: values.count, matches: { $0 == values }, values: { values }, make: { makeChild(self, $0) })
        return unsafeDowncast(child, to: Child.self)
    }

    /// The child for two label values, without allocating when it exists already.
    public func labels(_ a: String, _ b: String) -> Child {
        if labelNames.count != 2 { misuse("metric '\(name)': 2 label values given for \(labelNames.count) label names \(labelNames)") }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        ChildTable.hash(a, into: &h)
        ChildTable.hash(b, into: &h)
        let child = table.child(hash: h, count: 2, matches: { $0[0] == a && $0[1] == b }, values: { [a, b] }, make: { makeChild(self, $0) })
        return unsafeDowncast(child, to: Child.self)
    }

    /// The child for one label value, without allocating when it exists already.
    public func labels(_ a: String) -> Child {
        if labelNames.count != 1 { misuse("metric '\(name)': 1 label value given for \(labelNames.count) label names \(labelNames)") }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        ChildTable.hash(a, into: &h)
        let child = table.child(hash: h, count: 1, matches: { $0[0] == a }, values: { [a] }, make: { makeChild(self, $0) })
        return unsafeDowncast(child, to: Child.self)
    }

    /// The child for label values given by name.
    /// - Precondition: exactly the metric's label names (a programming error otherwise).
    public func labels(_ byName: [String: String]) -> Child {
        if Set(byName.keys) != Set(labelNames) {
            misuse("metric '\(name)': labels \(byName.keys.sorted()) do not match label names \(labelNames)")
        }
        return labels(labelNames.map { byName[$0] ?? "" })
    }

    /// Removes the child with these label values.
    ///
    /// In multiprocess mode the entry stays in the file and keeps being exported (as in
    /// prometheus_client); only single-process collection forgets it.
    public func remove(_ values: String...) { remove(values) }

    /// Removes the child with these label values, given as an array (for label values
    /// computed at run time, such as a swift-metrics backend's `destroy`).
    ///
    /// In multiprocess mode the entry stays in the file and keeps being exported (as in
    /// prometheus_client); only single-process collection forgets it.
    public func remove(_ values: [String]) {
        if storage.isMultiprocess {
            storage.reporter.report(Problem(
                code: "no_effect_in_multiprocess_mode",
                message: "remove() on '\(name)' has no effect on the files in multiprocess mode"))
        }
        table.remove(values)
    }

    /// Removes every child (see ``remove(_:)`` for multiprocess mode).
    public func clear() {
        if storage.isMultiprocess {
            storage.reporter.report(Problem(
                code: "no_effect_in_multiprocess_mode",
                message: "clear() on '\(name)' has no effect on the files in multiprocess mode"))
        }
        table.removeAll()
    }

    /// Every child with its labels, in creation order.
    func children() -> [(labels: [Label], child: Child)] {
        if let unlabelled { return [([], unlabelled)] }
        return table.all().map { entry in (zip(labelNames, entry.values).map { Label($0, $1) }, unsafeDowncast(entry.child, to: Child.self)) }
    }

    /// The key of one of this metric's series.
    func key(sample: String, labels: [Label]) -> SeriesKey {
        SeriesKey(family: name, sample: sample, labels: labels, help: help)
    }
}
