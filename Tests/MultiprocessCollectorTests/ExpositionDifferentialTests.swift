import MmapStore
import PromExposition
import Foundation
import PromMetrics
import Testing
import TestSupport

/// Random family sets rendered by Swift and by prometheus_client, compared byte for byte.
///
/// Python gets the very same families (as JSON, values as bit patterns) and builds them as raw
/// `prometheus_client.metrics_core.Metric`s yielded by a custom collector, so any name, label,
/// help text and value shape can be tried, not only what the typed families allow.
@Suite("Exposition matches prometheus_client on random family sets")
struct ExpositionDifferentialTests {
    /// Characters for help texts and label values: every escape, quotes, braces, non-ASCII
    /// of 2, 3 and 4 UTF-8 bytes.
    static let valueCharacters: [Character] = [
        "a", "Z", "_", "0", "9", ":", ".", "-", " ", "\\", "\"", "\n", "\t", "{", "}", "=", ",", "#",
        "é", "☕", "日", "𝄞",
    ]
    /// Characters for names. No newline: Python's legacy-name regex ends in `$`, which also
    /// matches before a final newline, so Python would write `abc\n` unescaped and break the line.
    static let nameCharacters: [Character] = ["a", "b", "Z", "_", "0", "9", ":", ".", "-", "é", "☕", "𝄞", " ", "\""]

    struct Generator {
        var random: ExpositionRandom
        let colons: Bool

        mutating func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
        mutating func chance(_ percent: UInt64) -> Bool { random.next() % 100 < percent }

        mutating func string(_ characters: [Character], length: ClosedRange<Int>) -> String {
            let count = length.lowerBound + Int(random.next() % UInt64(length.count))
            return String((0 ..< count).map { _ in pick(characters) })
        }

        mutating func name(legacy: Bool) -> String {
            if legacy {
                let first = pick(["a", "job", "http", "_x", "Z"])
                return first + string(["a", "b", "_", "1", "9"] + (colons ? [":"] : []), length: 0 ... 8)
            }
            let chars = colons ? nameCharacters : nameCharacters.filter { $0 != ":" }
            return string(chars, length: 1 ... 6)
        }

        mutating func value() -> Double {
            switch random.next() % 6 {
            case 0: return Double(random.next() % 2_000_000)
            case 1: return Double(bitPattern: random.next())
            case 2: return pick([0, -0.0, .infinity, -.infinity, .nan, 1e6, 1e-05, 0.005, 1e16, -1e22])
            case 3: return Double(random.next() % 1000) / 100
            default: return Double(Int64(bitPattern: random.next()) >> Int64(random.next() % 60)) / 1000
            }
        }

        mutating func labels(extra: [Label] = []) -> [Label] {
            var labels: [Label] = []
            var used = Set(extra.map(\.name))
            for _ in 0 ..< Int(random.next() % 4) {
                let n = name(legacy: chance(75))
                guard !used.contains(n) else { continue }
                used.insert(n)
                labels.append(Label(n, string(Self.values, length: 0 ... 6)))
            }
            // Put extra labels (such as `le`) last, as the metrics API does.
            return labels + extra
        }

        static let values = ExpositionDifferentialTests.valueCharacters

        mutating func family() -> MetricFamilySnapshot {
            let kind = pick(MetricKind.allCases)
            let base = name(legacy: chance(70))
            var samples: [Sample] = []
            func suffix(_ s: String) -> String { base + s }
            for _ in 0 ..< Int(random.next() % 3) + 1 {
                switch kind {
                case .counter:
                    let l = labels()
                    samples.append(Sample(name: suffix("_total"), labels: l, value: value()))
                    if chance(30) { samples.append(Sample(name: suffix("_created"), labels: l, value: value())) }
                case .gauge, .unknown:
                    let l = labels()
                    samples.append(Sample(name: base, labels: l, value: value()))
                    if chance(10) { samples.append(Sample(name: suffix(pick(["_gsum", "_gcount"])), labels: l, value: value())) }
                case .histogram:
                    let l = labels()
                    for le in ["0.005", "1.0", "+Inf"] {
                        samples.append(Sample(name: suffix("_bucket"), labels: l + [Label("le", le)], value: value()))
                    }
                    samples.append(Sample(name: suffix("_count"), labels: l, value: value()))
                    samples.append(Sample(name: suffix("_sum"), labels: l, value: value()))
                    if chance(30) { samples.append(Sample(name: suffix("_created"), labels: l, value: value())) }
                case .summary:
                    let l = labels()
                    samples.append(Sample(name: suffix("_count"), labels: l, value: value()))
                    samples.append(Sample(name: suffix("_sum"), labels: l, value: value()))
                case .info:
                    samples.append(Sample(name: suffix("_info"), labels: labels(), value: 1))
                case .stateset:
                    let l = labels()
                    samples.append(Sample(name: base, labels: l.filter { $0.name != base } + [Label(base, "on")], value: 1))
                }
            }
            let unit: String? = chance(20) ? pick(["seconds", "bytes", "ratio"]) : nil
            let help = chance(10) ? "" : string(Self.values, length: 0 ... 12)
            return MetricFamilySnapshot(name: base, kind: kind, help: help, unit: unit, samples: samples)
        }
    }

    /// Reads `{"renders": ["text:underscores", ...], "families": [...]}` on stdin and writes
    /// each rendering, each followed by a NUL byte.
    static let pythonScript = #"""
import json, struct, sys
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as om

request = json.load(sys.stdin)
def value(bits):
    return struct.unpack('<d', int(bits, 16).to_bytes(8, 'little'))[0]
current = {'fmt': 'text'}
def kept(f, s):
    # The deliberate difference: OpenMetrics 1.0 (section Summary) has no negative quantile or
    # summary sum, which prometheus_client writes (and its own strict parser then refuses).
    return not (current['fmt'] == 'om' and f['type'] == 'summary' and value(s['bits']) < 0
                and s['name'] in (f['name'], f['name'] + '_sum'))
class Raw:
    def collect(self):
        for f in request['families']:
            m = Metric(f['name'], f['help'], f['type'])
            m.unit = f['unit']  # set afterwards: the constructor would append it to the name
            for s in f['samples']:
                if kept(f, s):
                    m.add_sample(s['name'], dict(s['labels']), value(s['bits']))
            yield m
registry = CollectorRegistry()
registry.register(Raw())
out = sys.stdout.buffer
for render in request['renders']:
    fmt, escaping = render.split(':')
    current['fmt'] = fmt
    if fmt == 'text':
        out.write(generate_latest(registry, escaping=escaping))
    else:
        out.write(om.generate_latest(registry, escaping=escaping))
    out.write(b'\0')
"""#

    static func json(_ families: [MetricFamilySnapshot], renders: [String]) throws -> String {
        let encoded: [[String: Any]] = families.map { family in
            [
                "name": family.name, "help": family.help, "type": family.kind.rawValue, "unit": family.unit ?? "",
                "samples": family.samples.map { sample in
                    [
                        "name": sample.name, "labels": sample.labels.map { [$0.name, $0.value] },
                        "bits": String(sample.value.bitPattern, radix: 16),
                    ] as [String: Any]
                },
            ]
        }
        let data = try JSONSerialization.data(withJSONObject: ["renders": renders, "families": encoded])
        return String(decoding: data, as: UTF8.self)
    }

    /// prometheus_client's rendering of `families` in each format and escaping of `renders`.
    static func pythonRenders(_ families: [MetricFamilySnapshot], renders: [(ExpositionFormat, NameEscaping)]) throws -> [Substring] {
        let python = try ExternalTool.python.path()
        let names = renders.map { "\($0.0 == .openMetrics ? "om" : "text"):\($0.1.rawValue)" }
        let result = try run(python, ["-c", pythonScript], input: try json(families, renders: names))
        #expect(result.status == 0, "\(result.stderr)")
        let outputs = Array(result.stdout.split(separator: "\0", omittingEmptySubsequences: false).dropLast())
        try #require(outputs.count == renders.count)
        return outputs
    }

    /// Records the first line where `swift` and `python` differ, if any.
    static func expectSameText(_ swift: [UInt8], _ python: Substring, _ what: String,
                               sourceLocation: SourceLocation = #_sourceLocation) {
        let swift = String(decoding: swift, as: UTF8.self)
        guard swift != python else { return }
        let s = swift.split(separator: "\n", omittingEmptySubsequences: false)
        let p = python.split(separator: "\n", omittingEmptySubsequences: false)
        let line = (0 ..< min(s.count, p.count)).first { s[$0] != p[$0] } ?? min(s.count, p.count)
        Issue.record("""
            \(what) differs at line \(line + 1):
            swift:  \(line < s.count ? String(s[line]).debugDescription : "<end>")
            python: \(line < p.count ? String(p[line]).debugDescription : "<end>")
            """, sourceLocation: sourceLocation)
    }

    static func compare(_ families: [MetricFamilySnapshot], renders: [(ExpositionFormat, NameEscaping)]) throws {
        let outputs = try pythonRenders(families, renders: renders)
        for ((format, escaping), python) in zip(renders, outputs) {
            expectSameText(Exposition.render(families, format: format, escaping: escaping), python, "\(format) \(escaping)")
        }
    }

    /// The text format in every escaping, names with colons included.
    @Test(arguments: [1, 2, 3])
    func textFormatMatchesPrometheusClient(seed: UInt64) throws {
        var generator = Generator(random: ExpositionRandom(seed: seed), colons: true)
        let families = (0 ..< 80).map { _ in generator.family() }
        try Self.compare(families, renders: NameEscaping.allCases.map { (.prometheusText, $0) })
    }

    /// OpenMetrics in the escapings where prometheus_client's sample names agree with its family
    /// names: no `:` in names and no `values` escaping (see `Exposition`'s documentation).
    @Test(arguments: [4, 5, 6])
    func openMetricsMatchesPrometheusClient(seed: UInt64) throws {
        var generator = Generator(random: ExpositionRandom(seed: seed), colons: false)
        let families = (0 ..< 80).map { _ in generator.family() }
        try Self.compare(families, renders: [NameEscaping.underscores, .allowUTF8, .dots].map { (.openMetrics, $0) })
    }

    /// A histogram with native buckets only (no classic sample) writes, in the text formats,
    /// the classic part of each native series: what prometheus_client writes for those samples.
    @Test func aNativeOnlyHistogramWritesItsClassicPart() throws {
        let native = NativeHistogramSnapshot(labels: [Label("method", "GET")], schema: 0, count: 12, sum: 1.5,
                                             positiveBuckets: [.init(index: -2, count: 5), .init(index: 1, count: 7)])
        let nativeOnly = [MetricFamilySnapshot(name: "h", kind: .histogram, help: "Help.", samples: [], nativeHistograms: [native])]
        let classic = [MetricFamilySnapshot(name: "h", kind: .histogram, help: "Help.", samples: [
            Sample(name: "h_bucket", labels: [Label("method", "GET"), Label("le", "+Inf")], value: 12),
            Sample(name: "h_count", labels: [Label("method", "GET")], value: 12),
            Sample(name: "h_sum", labels: [Label("method", "GET")], value: 1.5),
        ])]
        let renders: [(ExpositionFormat, NameEscaping)] = [(.prometheusText, .underscores), (.openMetrics, .underscores)]
        let python = try Self.pythonRenders(classic, renders: renders)
        for ((format, escaping), expected) in zip(renders, python) {
            Self.expectSameText(Exposition.render(nativeOnly, format: format, escaping: escaping), expected, "\(format)")
        }
    }

    /// Label names with the reserved `__` prefix are not legacy names for prometheus_client:
    /// quoted under `allow-utf-8`, escaped under `values`, unchanged under `underscores`.
    @Test func reservedLabelNamesAreWrittenAsPrometheusClientWritesThem() throws {
        let families = [MetricFamilySnapshot(name: "jobs", kind: .gauge, help: "Jobs.", samples: [
            Sample(name: "jobs", labels: [Label("__x", "a"), Label("_y", "b"), Label("__", "c"), Label("z__", "d")], value: 1),
        ])]
        try Self.compare(families, renders: NameEscaping.allCases.map { (.prometheusText, $0) }
            + [NameEscaping.underscores, .allowUTF8, .dots].map { (.openMetrics, $0) })
    }

    /// Labels that come again, which a render copies from where it wrote them (`WrittenLabels`):
    /// more distinct labels than it keeps (so kept ones are replaced and met again), values
    /// that need escapes, non-legacy and reserved names, equal long strings that share their
    /// storage and equal ones that do not, and a pair of names in both orders. Every format
    /// and escaping, on one thread and cut into pieces, is what prometheus_client writes.
    @Test func labelsThatComeAgainAreWrittenAsPrometheusClientWritesThem() throws {
        let shared = String(repeating: "long-path/", count: 3) + "x"
        let names = ["path", "__reserved", "dotted.name", "é", "le"]
        var samples: [Sample] = []
        for i in 0 ..< 400 {
            let value: String
            switch i % 5 {
            case 0: value = shared
            case 1: value = String(repeating: "long-path/", count: 3) + "x"  // equal, own storage
            case 2: value = "q\"uote\\back\nline \(i % 97)"
            case 3: value = "v\(i % 131)"
            default: value = "\(i % 7)"
            }
            let other = Label(names[i % 4], value)
            let bound = Label("le", ["0.005", "1.0", "+Inf"][i % 3])
            // Two labels in the order given, then the other way round, then three unsorted.
            let labels = i % 3 == 0 ? [other, bound] : i % 3 == 1 ? [bound, other] : [other, Label("a", value), bound]
            samples.append(Sample(name: "repeated", labels: labels, value: Double(i)))
        }
        let families = [MetricFamilySnapshot(name: "repeated", kind: .gauge, help: "Labels met again.", samples: samples)]
        let renders: [(ExpositionFormat, NameEscaping)] = NameEscaping.allCases.map { (.prometheusText, $0) }
            + [NameEscaping.underscores, .allowUTF8, .dots].map { (.openMetrics, $0) }
        let python = try Self.pythonRenders(families, renders: renders)
        for ((format, escaping), expected) in zip(renders, python) {
            Self.expectSameText(Exposition.render(families, format: format, escaping: escaping), expected, "\(format) \(escaping)")
            let cut = ExpositionCache(threads: 3, minimumPieceLines: 1).render(families, format: format, escaping: escaping)
            Self.expectSameText(cut, expected, "\(format) \(escaping), 3 pieces")
        }
    }

    /// The deliberate difference: a `:` in a family name stays in its OpenMetrics samples, so the
    /// samples belong to the family (prometheus_client writes `job_requests_total` under
    /// `# TYPE job:requests counter`).
    @Test func openMetricsSampleNamesKeepColons() {
        let family = MetricFamilySnapshot(name: "job:requests", kind: .counter, help: "h", samples: [
            Sample(name: "job:requests_total", value: 1),
        ])
        let text = String(decoding: Exposition.render([family], format: .openMetrics), as: UTF8.self)
        #expect(text == "# HELP job:requests h\n# TYPE job:requests counter\njob:requests_total 1.0\n# EOF\n")
    }
}
