import Foundation
import MmapStore
import Testing
import TestSupport

@Suite("Series key codec")
struct KeyCodecTests {
    /// Strings with every kind of character the encoder treats specially.
    static let awkward: [String] = [
        "", "plain", "q\"uo\\te\n\t", "caf\u{e9}", "e\u{301}", "\u{1F600}", "\u{7f}", "\u{0}\u{1}\u{1f}", "\u{8}\u{c}\r",
        "/", "\u{2028}\u{ffff}", "\u{10FFFF}", "\u{fb01}", "mixed \u{e9}\u{1F600}\"\\/\u{7f}",
        String(repeating: "\u{20ac}", count: 300),
    ]

    static func randomString(_ rng: inout some RandomNumberGenerator) -> String {
        let pool: [Unicode.Scalar] = ["a", "Z", "_", " ", "\"", "\\", "/", "\n", "\t", "\r", "\u{0}", "\u{1}", "\u{7f}",
                                      "\u{80}", "\u{e9}", "\u{301}", "\u{20ac}", "\u{fffd}", "\u{1F600}", "\u{10FFFF}", "\u{d7ff}", "\u{e000}"]
        var s = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...12, using: &rng) { s.append(pool.randomElement(using: &rng) ?? "a") }
        return String(s)
    }

    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func randomKeys(count: Int) -> [SeriesKey] {
        var rng = SplitMix(state: 42)
        var keys: [SeriesKey] = []
        for i in 0..<count {
            var labels: [Label] = []
            var seen = Set<[Unicode.Scalar]>()
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                let name = randomString(&rng)
                if seen.insert(Array(name.unicodeScalars)).inserted { labels.append(Label(name, randomString(&rng))) }
            }
            let a = awkward[i % awkward.count]
            keys.append(SeriesKey(family: randomString(&rng) + a, sample: randomString(&rng), labels: labels, help: a + randomString(&rng)))
        }
        return keys
    }

    @Test("encoding equals prometheus_client's mmap_key (json.dumps, sort_keys) byte for byte")
    func encodingMatchesPython() throws {
        var keys = Self.randomKeys(count: 400)
        keys.append(SeriesKey(family: "m", sample: "m_total",
                              labels: [Label("\u{e9}", "x"), Label("e\u{301}", "y"), Label("B", "1"), Label("a", "2"), Label("\u{1F600}", "3")],
                              help: "h"))
        // Labels travel as [name, value] pairs (a dictionary would merge "é" and "e\u{301}").
        let input: [[Any]] = keys.map { k in [k.family, k.sample, k.labels.reversed().map { [$0.name, $0.value] }, k.help] }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: input), as: UTF8.self)
        let r = try runPython("mmap_keys.py", [], input: json)
        try #require(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == keys.count)
        for (key, line) in zip(keys, lines) {
            #expect(key.encoded() == Array(line.utf8), "\(key)")
        }
        // A few facts written out by hand.
        #expect(keys.last?.description == #"["m", "m_total", {"B": "1", "a": "2", "e\u0301": "y", "\u00e9": "x", "\ud83d\ude00": "3"}, "h"]"#)
    }

    @Test("encode then decode gives back the same key", arguments: awkward)
    func roundTrip(_ s: String) throws {
        let key = SeriesKey(family: s, sample: s + "_total", labels: [Label("a", s), Label(s.isEmpty ? "b" : s, "v")], help: s)
        let decoded = try SeriesKey(decoding: key.encoded())
        #expect(decoded.family.unicodeScalars.elementsEqual(s.unicodeScalars))
        #expect(decoded.help.unicodeScalars.elementsEqual(s.unicodeScalars))
        #expect(decoded.encoded() == key.encoded())
    }

    @Test("random keys round-trip")
    func randomRoundTrip() throws {
        for key in Self.randomKeys(count: 2000) {
            let decoded = try SeriesKey(decoding: key.encoded())
            #expect(decoded.encoded() == key.encoded())
            #expect(decoded.labels.count == key.labels.count)
        }
    }

    @Test("canonically equivalent label names stay distinct")
    func canonicallyEquivalentNames() throws {
        let key = SeriesKey(family: "f", sample: "f", labels: [Label("\u{e9}", "1"), Label("e\u{301}", "2")], help: "")
        let decoded = try SeriesKey(decoding: key.encoded())
        #expect(decoded.labels.count == 2)
        #expect(decoded.labels.map { Array($0.name.unicodeScalars) } == [["e", "\u{301}"], ["\u{e9}"]])
    }

    @Test("decoding accepts other valid JSON: \\/, upper-case hex, whitespace, surrogate pairs")
    func decodesOtherJSON() throws {
        let cases: [(String, SeriesKey)] = [
            (#"["a\/b", "s", {}, "h"]"#, SeriesKey(family: "a/b", sample: "s", labels: [], help: "h")),
            (#"["\u00E9\u00e9", "s", {"\u004C": "\uD83D\uDE00"}, "\u20AC"]"#,
             SeriesKey(family: "\u{e9}\u{e9}", sample: "s", labels: [Label("L", "\u{1F600}")], help: "\u{20ac}")),
            (" \n\t[ \"f\" ,\r\"s\"\n,{ \"b\" :\"1\" , \"a\":\"2\" } ,\"h\" ] \n",
             SeriesKey(family: "f", sample: "s", labels: [Label("a", "2"), Label("b", "1")], help: "h")),
            (#"["f","s",{},""]"#, SeriesKey(family: "f", sample: "s", labels: [], help: "")),
            (#"["\"\\\b\f\n\r\t", "s", {}, "h"]"#, SeriesKey(family: "\"\\\u{8}\u{c}\n\r\t", sample: "s", labels: [], help: "h")),
            ("[\"caf\u{e9}\", \"s\", {}, \"h\"]", SeriesKey(family: "caf\u{e9}", sample: "s", labels: [], help: "h")),
        ]
        for (text, expected) in cases {
            let decoded = try SeriesKey(decoding: Array(text.utf8))
            #expect(decoded == expected, "\(text)")
            #expect(decoded.encoded() == expected.encoded())
        }
    }

    @Test("decoding rejects what is not a key, with an offset")
    func rejectsBadKeys() {
        let bad: [String] = [
            "", "[", "not json", #"["a", "b", {}]"#, #"["a", "b", {}, "h", "x"]"#, #"["a", "b", [], "h"]"#,
            #"["a", "b", {"x": 1}, "h"]"#, #"["a", "b", {"x": "1",}, "h"]"#, #"["a\q", "b", {}, "h"]"#,
            #"["a\u12", "b", {}, "h"]"#, #"["a\u12G4", "b", {}, "h"]"#, "[\"a\nb\", \"b\", {}, \"h\"]",
            #"["a", "b", {}, "h"] x"#, #"["a", "b", {"x": "1", "x": "2"}, "h"]"#, #"["a" "b", {}, "h"]"#,
        ]
        for text in bad {
            #expect(throws: KeyDecodingError.self, "\(text.debugDescription)") { try SeriesKey(decoding: Array(text.utf8)) }
        }
        // Invalid UTF-8 inside a string.
        #expect(throws: KeyDecodingError.self) { try SeriesKey(decoding: Array(#"[""#.utf8) + [0xFF, 0xFE] + Array(#"", "b", {}, "h"]"#.utf8)) }
    }

    @Test("padding is 1 to 8 spaces, never 0 (hand-derived from Python's rule)")
    func padding() {
        let expected = [1: 3, 2: 2, 3: 1, 4: 8, 5: 7, 6: 6, 7: 5, 8: 4, 9: 3, 92: 8, 93: 7, 28: 8, 0: 4]
        for (length, pad) in expected {
            #expect(FileFormat.padding(keyLength: length) == pad, "L=\(length)")
            #expect(FileFormat.entrySize(keyLength: length) % 8 == 0)
        }
    }
}
