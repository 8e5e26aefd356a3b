// Compaction folds dead processes' files with the collector's merge, keyed by the exact key
// bytes. Label values that Unicode calls equivalent but that are different code points are
// different label values to prometheus_client and to Prometheus; they must stay different
// series through compaction (Swift's String ==, which equates canonically equivalent text,
// must never decide). The oracle is prometheus_client 0.26.0's own MultiProcessCollector
// (scripts/python/collect.py) run on the directory before compaction.
import Foundation
import MmapStore
import MultiprocessCollector
import PromExposition
import PromMetrics
import SystemCalls
import Testing
import TestSupport

@Suite("Compactor")
struct CompactorTests {
    /// Pairs of label values that are one string to some Unicode equivalence but different
    /// code points.
    static let lookalikes: [(a: String, b: String)] = [
        // Canonical: a precomposed letter and a letter with a combining mark (Swift: ==).
        ("caf\u{E9}", "cafe\u{301}"),
        // Compatibility: a ligature and its letters (NFKC folds them; Swift does not).
        ("\u{FB01}x", "fix"),
        // Canonical singleton: OHM SIGN decomposes to GREEK CAPITAL LETTER OMEGA (Swift: ==).
        ("\u{2126}", "\u{3A9}"),
        // Canonical: a precomposed Hangul syllable and its conjoining jamo (Swift: ==).
        ("\u{D55C}", "\u{1112}\u{1161}\u{11AB}"),
    ]

    /// The dead workers: two prometheus_client processes and two of this package, each with a
    /// weight that makes every sum tell which workers it holds.
    static let pythonWorkers: [(pid: Int32, weight: Double)] = [(201, 1), (202, 2)]
    static let swiftWorkers: [(pid: String, weight: Double)] = [("301", 4), ("302", 8)]

    /// What a worker of weight `w` writes for pair `i`, spelling `b` (else `a`).
    static func counterAmount(_ w: Double, _ i: Int, b: Bool) -> Double { w * (b ? 16 : 1) * Double(i + 1) }
    static func maxValue(_ w: Double, _ i: Int, b: Bool) -> Double { (b ? 100 - w : w) + 1000 * Double(i) }
    /// Observations of the histogram: spelling `a` observes 0.5 once, `b` observes 3 twice.
    static func observations(b: Bool) -> [Double] { b ? [3, 3] : [0.5] }

    static func pythonOps(weight w: Double) -> [PyOp] {
        var ops: [PyOp] = []
        for (i, pair) in lookalikes.enumerated() {
            for (isB, value) in [(false, pair.a), (true, pair.b)] {
                let amount = counterAmount(w, i, b: isB)
                ops.append(PyOp(type: "counter", name: "shop_orders", help: "Orders.", labelnames: ["shop"], labels: [value], op: "inc", amount: amount))
                for o in observations(b: isB) {
                    ops.append(PyOp(type: "histogram", name: "shop_wait_seconds", help: "Wait.", labelnames: ["shop"], labels: [value],
                                    op: "observe", amount: o, buckets: [1, 5]))
                }
                ops.append(PyOp(type: "gauge", name: "shop_stock", help: "Stock.", labelnames: ["shop"], labels: [value], op: "set", amount: amount, mode: "sum"))
                ops.append(PyOp(type: "gauge", name: "shop_peak", help: "Peak.", labelnames: ["shop"], labels: [value],
                                op: "set", amount: maxValue(w, i, b: isB), mode: "max"))
                // prometheus_client stamps `set` with time.time(): later than the Swift
                // workers' `a` writes, earlier than their `b` writes.
                ops.append(PyOp(type: "gauge", name: "shop_last_seen", help: "Last seen.", labelnames: ["shop"], labels: [value],
                                op: "set", amount: amount, mode: "mostrecent"))
            }
        }
        return ops
    }

    /// Writes a worker of this package through the metrics API and returns its storage (close
    /// its store to make the worker dead).
    static func writeSwift(_ dir: String, pid: String, weight w: Double, now: Double) throws -> MetricStorage {
        let storage = try MetricStorage.multiprocess(directory: dir, identity: .fixed(pid))
        let wall = Locked(0.0)
        let r = Registry(storage: storage, clock: MetricClock(wallTime: { wall.withLock { $0 } }, monotonicTime: { 0 }))
        let orders = try Counter("shop_orders", help: "Orders.", labelNames: ["shop"], registry: r)
        let wait = try Histogram("shop_wait_seconds", help: "Wait.", labelNames: ["shop"], buckets: [1, 5], registry: r)
        let stock = try Gauge("shop_stock", help: "Stock.", labelNames: ["shop"], mode: .sum, registry: r)
        let peak = try Gauge("shop_peak", help: "Peak.", labelNames: ["shop"], mode: .max, registry: r)
        let lastSeen = try Gauge("shop_last_seen", help: "Last seen.", labelNames: ["shop"], mode: .mostrecent, registry: r)
        for (i, pair) in lookalikes.enumerated() {
            for (isB, value) in [(false, pair.a), (true, pair.b)] {
                let amount = counterAmount(w, i, b: isB)
                orders.labels(value).increment(by: amount)
                for o in observations(b: isB) { wait.labels(value).observe(o) }
                stock.labels(value).set(amount)
                peak.labels(value).set(maxValue(w, i, b: isB))
                wall.withLock { $0 = now + (isB ? 1000 : -1000) + w }
                lastSeen.labels(value).set(amount)
            }
        }
        return storage
    }

    @Test func lookalikeLabelValuesStayDistinctSeriesThroughCompaction() throws {
        let dir = TempDirectory("compact-unicode"); defer { dir.remove() }
        let now = Date().timeIntervalSince1970
        for w in Self.pythonWorkers { try pythonWrite(dir.path, pid: String(w.pid), Self.pythonOps(weight: w.weight)) }
        for w in Self.swiftWorkers { try Self.writeSwift(dir.path, pid: w.pid, weight: w.weight, now: now).store?.close() }
        // A live worker, whose file compaction must leave alone: 1000 more on each `b`.
        let live = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("303"))
        defer { live.store?.close() }
        let liveOrders = try Counter("shop_orders", help: "Orders.", labelNames: ["shop"], registry: Registry(storage: live))
        for pair in Self.lookalikes { liveOrders.labels(pair.b).increment(by: 1000) }
        // A third dead prometheus_client-format file whose keys spell the first pair in raw
        // UTF-8 instead of `\u` escapes: the same two series to every collector (100 more on
        // each), but other key bytes, which the archive must keep as they are.
        let utf8Keys = [Self.lookalikes[0].a, Self.lookalikes[0].b].map { #"["shop_orders", "shop_orders_total", {"shop": "\#($0)"}, "Orders."]"# }
        // Close-on-exec (Data.write is not): a child another test spawns must not inherit it.
        try DirectoryFiles.writeAtomically(CollectorTests.pythonFile(utf8Keys, value: 100), to: dir.file("counter_203.db"))
        for pid in Self.pythonWorkers.map(\.pid) + [203] { _ = try MarkDead.run(pid: pid, directory: dir.path) }

        // The oracle, and the hand-derived values it must agree with: every spelling is a
        // series of its own, holding only its own workers' values.
        let oracle = try pythonSamples(dir.path)
        let counters = oracle.filter { $0.hasPrefix("shop_orders counter Orders. shop_orders_total{") }
        #expect(counters.count == 2 * Self.lookalikes.count, "\(counters)")
        let dead = Self.pythonWorkers.map(\.weight) + Self.swiftWorkers.map(\.weight)
        for (i, pair) in Self.lookalikes.enumerated() {
            let raw: Double = i == 0 ? 100 : 0
            let a = dead.reduce(0) { $0 + Self.counterAmount($1, i, b: false) } + raw
            let b = dead.reduce(0) { $0 + Self.counterAmount($1, i, b: true) } + 1000 + raw
            #expect(oracle.contains(#"shop_orders counter Orders. shop_orders_total{shop="\#(ascii(pair.a))"} \#(a)"#))
            #expect(oracle.contains(#"shop_orders counter Orders. shop_orders_total{shop="\#(ascii(pair.b))"} \#(b)"#))
            #expect(oracle.contains(#"shop_peak gauge Peak. shop_peak{shop="\#(ascii(pair.a))"} \#(Self.maxValue(8, i, b: false))"#))
            #expect(oracle.contains(#"shop_peak gauge Peak. shop_peak{shop="\#(ascii(pair.b))"} \#(Self.maxValue(1, i, b: true))"#))
            // The latest `a` is prometheus_client's pid 202; the latest `b` the Swift 302.
            #expect(oracle.contains(#"shop_last_seen gauge Last seen. shop_last_seen{shop="\#(ascii(pair.a))"} \#(Self.counterAmount(2, i, b: false))"#))
            #expect(oracle.contains(#"shop_last_seen gauge Last seen. shop_last_seen{shop="\#(ascii(pair.b))"} \#(Self.counterAmount(8, i, b: true))"#))
            #expect(oracle.contains(#"shop_wait_seconds histogram Wait. shop_wait_seconds_count{shop="\#(ascii(pair.b))"} 8.0"#))
        }
        // 8 label sets: counter, sum, max, mostrecent one sample each; histogram five.
        #expect(oracle.count == 8 * (4 + 5), "\(oracle)")

        let collector = testCollector(dir.path)
        let before = collector.collect()
        #expect(before.problems.isEmpty, "\(before.problems)")
        #expect(samples(before.families) == oracle)
        let textBefore = textLines(before.families)

        // The keys the dead workers wrote, per kind, byte for byte.
        let folded: [FileKind] = [.counter, .histogram, .gauge(.sum), .gauge(.max), .gauge(.mostrecent)]
        var sourceKeys: [String: Set<[UInt8]>] = ["counter": try rawKeys(dir.file("counter_203.db"))]
        for kind in folded {
            for owner in Self.pythonWorkers.map({ String($0.pid) }) + Self.swiftWorkers.map(\.pid) {
                sourceKeys[kind.prefix, default: []].formUnion(try rawKeys(dir.file(MetricFileName(kind: kind, owner: owner).description)))
            }
        }
        #expect(sourceKeys["counter"]?.count == 2 * Self.lookalikes.count + 2)

        // Until it execs, a child another test spawns holds copies of this process's
        // descriptors, the compactor's locks among them: files seen in use then are folded by
        // the next run.
        var report = try Compactor.compact(directory: dir.path)
        var foldedNames = report.folded
        for _ in 1..<5 where report.kept.count > 1 {
            report = try Compactor.compact(directory: dir.path)
            foldedNames += report.folded
        }
        #expect(foldedNames.count == folded.count * 4 + 1, "\(foldedNames)")
        #expect(report.kept.map(\.name) == ["counter_303.db"], "\(report.kept)")
        let names = dir.names().filter { $0.hasSuffix(".db") }
        #expect(names == ["counter_303.db", "counter_archive.db", "gauge_max_archive.db", "gauge_mostrecent_archive.db",
                          "gauge_sum_archive.db", "histogram_archive.db"])

        // The same output, to the byte, from a fresh collector and from the one that scraped
        // before (which keeps its catalog of keys).
        for c in [collector, testCollector(dir.path)] {
            let after = c.collect()
            #expect(after.problems.isEmpty, "\(after.problems)")
            #expect(samples(after.families) == oracle)
            #expect(textLines(after.families) == textBefore)
        }
        // The archives hold every key the workers wrote, with its bytes as written (keys
        // that differ only in their code points are not folded into one)...
        for kind in folded {
            let archive = dir.file(MetricFileName(kind: kind, owner: MetricFileName.archiveOwner).description)
            #expect(try rawKeys(archive) == sourceKeys[kind.prefix], "\(kind)")
        }
        // ... so prometheus_client reads the compacted directory as it read the original.
        #expect(try pythonSamples(dir.path) == oracle)
    }
}

/// `s` in printable ASCII, every other code point as `\u{hex}`: texts that differ in any code
/// point differ as bytes, whatever Swift's String == thinks of them.
private func ascii(_ s: String) -> String {
    var out = ""
    for u in s.unicodeScalars {
        if u.value >= 0x20 && u.value < 0x7F && u != "\\" { out.unicodeScalars.append(u) } else { out += "\\u{\(String(u.value, radix: 16))}" }
    }
    return out
}

/// One line per sample, `family type help name{labels} value`, every string through
/// ``ascii(_:)``, labels by name; sorted by their bytes.
private func sampleLine(family: String, type: String, help: String, name: String, labels: [(String, String)], value: String) -> String {
    let l = labels.map { (ascii($0.0), ascii($0.1)) }.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        .map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",")
    return "\(ascii(family)) \(type) \(ascii(help)) \(ascii(name)){\(l)} \(value)"
}

/// The text exposition, line by line through ``ascii(_:)``: equal exactly when the bytes are.
private func textLines(_ families: [MetricFamilySnapshot]) -> [String] {
    Exposition.render(families, format: .prometheusText).split(separator: 0x0A).map { ascii(String(decoding: $0, as: UTF8.self)) }
}

private func sortedBytewise(_ lines: [String]) -> [String] { lines.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) } }

private func samples(_ families: [MetricFamilySnapshot]) -> [String] {
    sortedBytewise(families.flatMap { f in
        f.samples.map { s in
            sampleLine(family: f.name, type: f.kind.rawValue, help: f.help, name: s.name, labels: s.labels.map { ($0.name, $0.value) },
                       value: valueText(s.value))
        }
    })
}

/// prometheus_client's merge of `directory` (scripts/python/collect.py), as sample lines.
private func pythonSamples(_ directory: String) throws -> [String] {
    let r = try runPython("collect.py", [directory])
    guard r.status == 0 else { throw PythonFailure(message: "collect.py failed: \(r.stderr)") }
    guard let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] else {
        throw PythonFailure(message: "collect.py printed no JSON list: \(r.stdout)")
    }
    var out: [String] = []
    for f in json {
        for s in f["samples"] as? [[String: Any]] ?? [] {
            // Label names are ASCII here; the values, compared as lines, keep their code points.
            let labels = (s["labels"] as? [String: Any] ?? [:]).map { ($0.key, $0.value as? String ?? "\($0.value)") }
            let value = (s["value"] as? String) ?? valueText((s["value"] as? NSNumber)?.doubleValue ?? .nan)
            out.append(sampleLine(family: f["name"] as? String ?? "", type: f["type"] as? String ?? "", help: f["help"] as? String ?? "",
                                  name: s["name"] as? String ?? "", labels: labels, value: value))
        }
    }
    return sortedBytewise(out)
}

/// The raw key bytes of every entry of a metric file.
private func rawKeys(_ path: String) throws -> Set<[UInt8]> {
    var reader = MetricFileReader()
    var keys = Set<[UInt8]>()
    try reader.load(path: path).forEachEntry { keys.insert(Array($0.key)) }
    return keys
}
