import Foundation
import MmapStore
import Testing
import TestSupport

/// The files MmapStore writes are byte for byte what prometheus_client 0.26.0 writes for the
/// same operations, except header bytes 4...7, which carry our marker (zero in Python's).
@Suite("Golden bytes against prometheus_client 0.26.0")
struct GoldenBytesTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let ops: @Sendable () -> [MetricOp]
        var testDescription: String { name }
    }

    static let inf = Double.infinity

    static let cases: [Case] = [
        Case(name: "pad-8 key and empty labels") {
            // ["c", "c_total", {}, "hhhh"] is 28 bytes: (28 + 4) % 8 == 0, so 8 spaces of padding.
            [MetricOp(kind: .counter, name: "c", help: "hhhh", op: "inc", amount: 1),
             MetricOp(kind: .gauge(.livesum), name: "inprogress", help: "In progress", op: "inc", amount: 3)]
        },
        Case(name: "escaped and non-ASCII label values and help") {
            [MetricOp(kind: .counter, name: "esc", help: "help \u{fc}\n\u{20ac} \u{1F600}\u{7f}\t\"\\",
                      labelNames: ["a", "z", "\u{e9}"],
                      labels: ["caf\u{e9} \u{1F600} \u{7f} \u{01} / \u{8} \u{c} \r", "q\"uo\\te\nnl\t", "x"],
                      op: "inc", amount: 2.5)]
        },
        Case(name: "several labels sorted by code point") {
            let names = ["b", "a", "B", "_x", "\u{e9}", "e\u{301}", "Z", "aa", "\u{fc}", "\u{1F600}", "\u{fb01}", "a0"]
            return [MetricOp(kind: .counter, name: "sorted", labelNames: names,
                             labels: names.indices.map { "v\($0)" }, op: "inc", amount: 1),
                    MetricOp(kind: .gauge(.all), name: "sorted_gauge", labelNames: names.reversed(),
                             labels: names.indices.map { "w\($0)" }, op: "set", amount: -4)]
        },
        Case(name: "keys larger than the initial file grow it") {
            [MetricOp(kind: .counter, name: "small", labelNames: ["i"], labels: ["1"], op: "inc", amount: 1),
             MetricOp(kind: .counter, name: "big", labelNames: ["v"], labels: [String(repeating: "x", count: 70_000)], op: "inc", amount: 1),
             MetricOp(kind: .counter, name: "small", labelNames: ["i"], labels: ["2"], op: "inc", amount: 2),
             MetricOp(kind: .gauge(.max), name: "bigger", help: String(repeating: "\u{e9}", count: 25_000), op: "set", amount: 9)]
        },
        Case(name: "histogram, summary and every gauge mode") {
            let buckets: [(bound: Double, le: String)] = [(0.1, "0.1"), (1.0, "1.0"), (inf, "+Inf")]
            var ops: [MetricOp] = []
            for v in [0.05, 0.7, 3.0, 1.0] {
                ops.append(MetricOp(kind: .histogram(buckets), name: "lat", help: "Latency", labelNames: ["path"], labels: ["/a"], op: "observe", amount: v))
            }
            ops.append(MetricOp(kind: .histogram(buckets), name: "lat", help: "Latency", labelNames: ["path"], labels: ["/b"]))
            ops.append(MetricOp(kind: .summary, name: "size", op: "observe", amount: 1.5))
            ops.append(MetricOp(kind: .summary, name: "size", op: "observe", amount: 2.25))
            for _ in 0..<3 { ops.append(MetricOp(kind: .counter, name: "tenths", op: "inc", amount: 0.1)) }
            for (i, mode) in GaugeMode.allCases.enumerated() where !mode.isMostRecent {
                ops.append(MetricOp(kind: .gauge(mode), name: "g_\(mode.rawValue)", op: "set", amount: Double(i) + 0.5))
                ops.append(MetricOp(kind: .gauge(mode), name: "g_\(mode.rawValue)", op: "dec", amount: 2))
                ops.append(MetricOp(kind: .gauge(mode), name: "g_\(mode.rawValue)", op: "inc", amount: 0.25))
            }
            return ops
        },
    ]

    @Test("files equal prometheus_client's, except the marker", arguments: cases)
    func filesEqualPythons(_ c: Case) throws {
        let py = TempDirectory("golden-py"), sw = TempDirectory("golden-swift")
        defer { py.remove(); sw.remove() }
        try writeBoth(c.ops(), pid: "4242", python: py, swift: sw)
        try expectSameFiles(python: py, swift: sw)
    }

    @Test("the pad-8 case really has 8 spaces in Python's file")
    func padEightIsExercised() throws {
        let py = TempDirectory("golden-py"), sw = TempDirectory("golden-swift")
        defer { py.remove(); sw.remove() }
        try writeBoth(Self.cases[0].ops(), pid: "7", python: py, swift: sw)
        for dir in [py, sw] {
            let b = try readBytes(dir.file("counter_7.db"))
            #expect(int32(b, at: 8) == 28)
            #expect(Array(b[40..<48]) == Array(repeating: 0x20, count: 8))
            #expect(b[48..<56].elementsEqual(withUnsafeBytes(of: (1.0).bitPattern.littleEndian) { Array($0) }))
            #expect(int32(b, at: 0) == 64)
        }
    }

    @Test("escapes are lower-case \\u, surrogate pairs, and 0x7f is escaped")
    func escapesAreAsInPython() throws {
        let py = TempDirectory("golden-py"), sw = TempDirectory("golden-swift")
        defer { py.remove(); sw.remove() }
        try writeBoth(Self.cases[1].ops(), pid: "7", python: py, swift: sw)
        for dir in [py, sw] {
            let text = String(decoding: try readBytes(dir.file("counter_7.db")), as: UTF8.self)
            for fragment in [#"\u00e9"#, #"\ud83d\ude00"#, #"\u007f"#, #"\u0001"#, #"\b"#, #"\f"#, #"\r"#, #"q\"uo\\te\nnl\t"#,
                             #"\u20ac"#, " / "] {
                #expect(text.contains(fragment), "missing \(fragment)")
            }
        }
    }

    @Test("a key larger than the initial file doubles it to 128 KiB and 256 KiB, as in Python")
    func growthSizes() throws {
        let py = TempDirectory("golden-py"), sw = TempDirectory("golden-swift")
        defer { py.remove(); sw.remove() }
        try writeBoth(Self.cases[3].ops(), pid: "7", python: py, swift: sw)
        for dir in [py, sw] {
            #expect(try readBytes(dir.file("counter_7.db")).count == 131_072)
            // 25,000 × "\u00e9" is 150,000 key bytes: 64 KiB → 128 KiB → 256 KiB.
            #expect(try readBytes(dir.file("gauge_max_7.db")).count == 262_144)
        }
    }

    func expectSameFiles(python: TempDirectory, swift: TempDirectory, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let names = dbNames(python)
        #expect(!names.isEmpty, sourceLocation: sourceLocation)
        #expect(dbNames(swift) == names, sourceLocation: sourceLocation)
        for name in names {
            let p = try readBytes(python.file(name))
            guard FileManager.default.fileExists(atPath: swift.file(name)) else { continue }
            let s = try readBytes(swift.file(name))
            #expect(s.count == p.count, "\(name): size \(s.count), Python's \(p.count)", sourceLocation: sourceLocation)
            #expect(Array(p[4..<8]) == [0, 0, 0, 0], "\(name): Python's header bytes 4..7", sourceLocation: sourceLocation)
            #expect(Array(s[4..<8]) == [0x50, 0x4D, 0x50, FileFormat.version], "\(name): our marker", sourceLocation: sourceLocation)
            var pm = p, sm = s
            pm.replaceSubrange(4..<8, with: [0, 0, 0, 0])
            sm.replaceSubrange(4..<8, with: [0, 0, 0, 0])
            if pm != sm {
                let first = (0..<min(pm.count, sm.count)).first { pm[$0] != sm[$0] } ?? min(pm.count, sm.count)
                let lo = max(0, first - 16)
                Issue.record("""
                    \(name): first difference at byte \(first) (used: ours \(int32(s, at: 0)), Python's \(int32(p, at: 0)))
                      python: \(String(decoding: pm[lo..<min(pm.count, first + 48)], as: UTF8.self).debugDescription)
                      swift:  \(String(decoding: sm[lo..<min(sm.count, first + 48)], as: UTF8.self).debugDescription)
                    """, sourceLocation: sourceLocation)
            }
        }
    }
}
