import Foundation
import MmapStore
@testable import PromExposition
import PromMetrics
import Testing
import TestSupport

/// The renderer copies a name or label value while it classifies its bytes with one table
/// (`ExpositionBytes.classes`), and only when a byte says so goes back and escapes it the slow
/// way. These tests put every byte value into every place a name or value can go, next to
/// legacy neighbours of the same length, and take the expected bytes from prometheus_client.
@Suite("The one-pass copy of names and values agrees with prometheus_client for every byte")
struct ExpositionFastPathTests {
    /// Every ASCII character but NUL, and UTF-8 characters of 2, 3 and 4 bytes.
    static let characters: [Character] =
        (0x01 ... 0x7F).map { Character(Unicode.Scalar(UInt8($0))) } + ["é", "☕", "𝄞"]

    /// One gauge family per character `c`: `c` first, inside and near the end of a name longer
    /// than a machine word, in the family name, in label names (first and inside) and in label
    /// values and the help text; then a family whose consecutive samples alternate legacy and
    /// non-legacy label names of the same length and values with and without escapes.
    static func families(excluding excluded: Set<Character> = []) -> [MetricFamilySnapshot] {
        var families: [MetricFamilySnapshot] = []
        for (index, c) in characters.enumerated() where !excluded.contains(c) {
            for name in ["g\(index)_\(c)x", "\(c)g\(index)", "a_long_metric_name_\(index)_with_\(c)_inside"] {
                families.append(MetricFamilySnapshot(name: name, kind: .gauge, help: "help \(c) text", samples: [
                    Sample(name: name, labels: [Label("l\(c)x", "v\(c)w"), Label("\(c)m", "a longer value \(c) here")],
                           value: 1),
                    Sample(name: name, labels: [Label("plain", "\(c)")], value: 2),
                ]))
            }
        }
        var alternating: [Sample] = []
        for c in characters where !excluded.contains(c) {
            alternating.append(Sample(name: "alternating", labels: [Label("a_b", "x_y")], value: 1))
            alternating.append(Sample(name: "alternating", labels: [Label("a\(c)b", "x\(c)y")], value: 2))
            alternating.append(Sample(name: "alternating", labels: [Label("a_b", "x\(c)y"), Label("le", "+Inf")], value: 3))
        }
        families.append(MetricFamilySnapshot(name: "alternating", kind: .gauge, help: "h", samples: alternating))
        return families
    }

    /// The table's name bits against prometheus_client's own legacy-name regexes
    /// (`METRIC_NAME_RE`, `METRIC_LABEL_NAME_RE`), tried on `a<c>a` for each ASCII character so
    /// that the regex's `$` cannot match before a final newline; its escape bits against the
    /// exposition formats' escapes (`\`, `"` and newline in label values, `\` and newline in
    /// text-format help). Bytes from 0x80 up belong to multi-byte UTF-8 characters, which are in
    /// no legacy name and never escaped.
    @Test func byteClassesAgreeWithPrometheusClientsLegacyNameRegexes() throws {
        let script = """
            from prometheus_client.validation import METRIC_NAME_RE, METRIC_LABEL_NAME_RE
            for b in range(128):
                s = 'a' + chr(b) + 'a'
                print(int(METRIC_NAME_RE.match(s) is None), int(METRIC_LABEL_NAME_RE.match(s) is None))
            """
        let result = try run(try ExternalTool.python.path(), ["-c", script])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        try #require(lines.count == 128)
        for b in 0 ... 255 {
            let byteClass = ExpositionBytes.ByteClass(rawValue: ExpositionBytes.classes[b])
            let outsideMetric: Bool, outsideLabel: Bool
            if b < 128 {
                let fields = lines[b].split(separator: " ")
                (outsideMetric, outsideLabel) = (fields[0] == "1", fields[1] == "1")
            } else {
                (outsideMetric, outsideLabel) = (true, true)
            }
            #expect(byteClass.contains(.outsideMetricName) == outsideMetric, "byte \(b)")
            #expect(byteClass.contains(.outsideLabelName) == outsideLabel, "byte \(b)")
            #expect(byteClass.contains(.escapedInQuotes) == [0x0A, 0x22, 0x5C].contains(b), "byte \(b)")
            #expect(byteClass.contains(.escapedInHelp) == [0x0A, 0x5C].contains(b), "byte \(b)")
        }
    }

    /// The text format under every escaping, byte for byte as prometheus_client writes it.
    @Test func textFormatMatchesPrometheusClientForEveryByte() throws {
        try ExpositionDifferentialTests.compare(Self.families(), renders: NameEscaping.allCases.map { (.prometheusText, $0) })
    }

    /// OpenMetrics in the escapings where prometheus_client's sample names agree with its family
    /// names (no `:`, no `values`: see `Exposition`'s documentation).
    @Test func openMetricsMatchesPrometheusClientForEveryByte() throws {
        try ExpositionDifferentialTests.compare(Self.families(excluding: [":"]),
                                                renders: [NameEscaping.underscores, .allowUTF8, .dots].map { (.openMetrics, $0) })
    }

    /// Protobuf: each family and label name is prometheus_client's `escape_metric_name` /
    /// `escape_label_name` of the original (unquoted and unescaped under `allow-utf-8`: a
    /// protobuf string needs neither), each label value the original, the labels in code-point
    /// order of their original names; read back with Google's protobuf package
    /// (scripts/python/proto_check.py's schema).
    @Test(arguments: NameEscaping.allCases)
    func protobufNamesMatchPrometheusClientsEscapingForEveryByte(escaping: NameEscaping) throws {
        let families = Self.families()
        let dir = TempDirectory("pmp-fastpath")
        defer { dir.remove() }
        try Data(Exposition.render(families, format: .protobuf, escaping: escaping))
            .write(to: URL(fileURLWithPath: dir.file("body.bin")))
        let original: [[String: Any]] = families.map { family in
            ["name": family.name, "metrics": family.samples.map { $0.labels.map { [$0.name, $0.value] } }]
        }
        try JSONSerialization.data(withJSONObject: original).write(to: URL(fileURLWithPath: dir.file("original.json")))
        let script = #"""
            import json, sys
            sys.path.insert(0, sys.argv[1])
            from proto_check import metric_family_class
            from google.protobuf.internal.decoder import _DecodeVarint32
            from prometheus_client.openmetrics.exposition import escape_metric_name, escape_label_name
            escaping = sys.argv[4]
            def expected(escape, name):
                return name if escaping == 'allow-utf-8' else escape(name, escaping)
            MetricFamily = metric_family_class()
            data = open(sys.argv[2], 'rb').read()
            got, pos = [], 0
            while pos < len(data):
                size, pos = _DecodeVarint32(data, pos)
                family = MetricFamily.FromString(data[pos:pos + size])
                pos += size
                got.append([family.name, [[[l.name, l.value] for l in m.label] for m in family.metric]])
            want = []
            for family in json.load(open(sys.argv[3])):
                want.append([expected(escape_metric_name, family['name']),
                             [[[expected(escape_label_name, n), v] for n, v in sorted(m, key=lambda l: l[0])]
                              for m in family['metrics']]])
            for g, w in zip(got, want):
                if g != w:
                    print(json.dumps({'got': g, 'want': w}))
            print(len(got), len(want))
            """#
        let result = try run(try ExternalTool.python.path(),
                             ["-c", script, repositoryRoot() + "/scripts/python", dir.file("body.bin"),
                              dir.file("original.json"), escaping.rawValue])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "\(families.count) \(families.count)\n", "\(result.stdout.prefix(2000))")
    }
}
