// Most keys of a file differ from the key decoded before them only in one label's value (a
// counter's children, the buckets of one histogram child), and the catalog decodes such a key
// from that one (`KeyCatalog.parseSibling`) instead of parsing it whole. These tests hold the
// shortcut to the full parser's answer on chosen and on randomly edited keys, and what a merge
// makes of a file's keys to the general key decoder's (`SeriesKey(decoding:)`).
import Foundation
import MmapStore
@testable import MultiprocessCollector
import Testing
import TestSupport

@Suite("Keys decoded from the key before them")
struct SiblingKeyTests {
    /// A key's parse: its family, sample and help ranges, the offset of its help's quote, and
    /// its label ranges (name start, name end, value start, value end per label).
    struct Parse: Equatable {
        var family: Range<Int>
        var sample: Range<Int>
        var help: Range<Int>
        var helpQuote: Int
        var labels: [Int]
        init(_ plain: PlainKey, labels: [Int]) {
            (family, sample, help, helpQuote, self.labels) = (plain.family, plain.sample, plain.help, plain.helpQuote, labels)
        }
    }

    /// What the shortcut makes of `key` after the catalog decoded `previous` (nil: it declines),
    /// with the label whose value it found changed; and what the full parser makes of `key`.
    static func parse(_ key: String, after previous: String) -> (sibling: (Parse, label: Int)?, full: Parse?) {
        var catalog = KeyCatalog()
        let previousBytes = Array(previous.utf8)
        previousBytes.withUnsafeBytes { previous in
            let id = catalog.keys.intern(previous, hint: -1).id
            catalog.decode(id: id, histogramFile: false)
        }
        return Array(key.utf8).withUnsafeBytes { key in
            catalog.labelScratch.removeAll()
            let sibling = catalog.parseSibling(key).map { (Parse($0.plain, labels: catalog.labelScratch), $0.label) }
            var labels: [Int] = []
            let full = PlainKey(parsing: key, labels: &labels).map { Parse($0, labels: labels) }
            return (sibling, full)
        }
    }

    static let previous = #"["f", "f_total", {"a": "x1", "le": "0.5", "z": "q"}, "Help."]"#

    /// Keys that are `previous` with one label's value changed to other plain text: the
    /// shortcut parses each as the full parser does, and names that label.
    @Test(arguments: [
        (#"["f", "f_total", {"a": "x2", "le": "0.5", "z": "q"}, "Help."]"#, 0),
        (#"["f", "f_total", {"a": "x10", "le": "0.5", "z": "q"}, "Help."]"#, 0),
        (#"["f", "f_total", {"a": "x", "le": "0.5", "z": "q"}, "Help."]"#, 0),
        (#"["f", "f_total", {"a": "", "le": "0.5", "z": "q"}, "Help."]"#, 0),
        (#"["f", "f_total", {"a": "1x", "le": "0.5", "z": "q"}, "Help."]"#, 0),
        (#"["f", "f_total", {"a": "x1", "le": "+Inf", "z": "q"}, "Help."]"#, 1),
        (#"["f", "f_total", {"a": "x1", "le": "0.05", "z": "q"}, "Help."]"#, 1),
        (#"["f", "f_total", {"a": "x1", "le": "0.5", "z": ""}, "Help."]"#, 2),
        (#"["f", "f_total", {"a": "x1", "le": "0.5", "z": "qq"}, "Help."]"#, 2),
        (#"["f", "f_total", {"a": "x1", "le": "0.5", "z": "a ~!{}[]:,' b"}, "Help."]"#, 2),
    ])
    func aKeyWithOneValueChangedIsParsedFromTheKeyBefore(key: String, label: Int) {
        let (sibling, full) = Self.parse(key, after: Self.previous)
        #expect(full != nil)
        #expect(sibling?.0 == full)
        #expect(sibling?.label == label)
    }

    /// Keys that differ from `previous` in more than one value, in anything but a value, or
    /// in a value spelled with what a plain key cannot hold: the shortcut declines each (the
    /// full parser then decides).
    @Test(arguments: [
        #"["f", "f_total", {"a": "x2", "le": "0.5", "z": "r"}, "Help."]"#,
        #"["f", "f_total", {"a": "x1", "le": "0.5", "z": "q"}, "Help!"]"#,
        #"["g", "f_total", {"a": "x1", "le": "0.5", "z": "q"}, "Help."]"#,
        #"["f", "f_sum", {"a": "x1", "le": "0.5", "z": "q"}, "Help."]"#,
        #"["f", "f_total", {"b": "x1", "le": "0.5", "z": "q"}, "Help."]"#,
        #"["f", "f_total", {"a": "x1", "le": "0.5"}, "Help."]"#,
        #"["f", "f_total", {"a": "x1", "le": "0.5", "y": "q"}, "Help."]"#,
        #"["f", "f_total", {"a": "x1", "m": "1", "le": "0.5", "z": "q"}, "Help."]"#,
        #"["f", "f_total", {"a": "x\"1", "le": "0.5", "z": "q"}, "Help."]"#,
        #"["f", "f_total", {"a": "x\\1", "le": "0.5", "z": "q"}, "Help."]"#,
        #"["f", "f_total", {"a": "x", "b": "1", "le": "0.5", "z": "q"}, "Help."]"#,
        "[\"f\", \"f_total\", {\"a\": \"x\u{7F}\", \"le\": \"0.5\", \"z\": \"q\"}, \"Help.\"]",
        "[\"f\", \"f_total\", {\"a\": \"x\t\", \"le\": \"0.5\", \"z\": \"q\"}, \"Help.\"]",
        "[\"f\", \"f_total\", {\"a\": \"xé\", \"le\": \"0.5\", \"z\": \"q\"}, \"Help.\"]",
        #"["f", "f_total", {"a": "x1", "le": "0.5", "z": "q"}, "Help."] "#,
        #"["f", "f_total", {"a": "x1", "le": "0.5", "z": "q"},"Help."]"#,
    ])
    func otherKeysAreNotParsedFromTheKeyBefore(key: String) {
        #expect(Self.parse(key, after: Self.previous).sibling == nil)
    }

    /// `previous` edited at random (bytes inserted, deleted or replaced, from an alphabet rich
    /// in a key's punctuation): wherever the shortcut parses an edit, the full parser parses it
    /// the same; and wherever the general decoder finds an edit that is a plain key (the full
    /// parser's) with only one label value changed, the shortcut parses it.
    @Test(arguments: [UInt64(1), 2, 3])
    func randomEditsAreParsedAsTheFullParserParsesThem(seed: UInt64) throws {
        var rng = ExpositionRandom(seed: seed)
        let alphabet = Array(#"ax1 "\,:{}[]e"#.utf8) + [0x09, 0x7F, 0xC3]
        let base = Array(Self.previous.utf8)
        let decodedBase = try SeriesKey(decoding: base)
        // Half the edits land in a label value of `previous` (or at its closing quote).
        var ranges: [Int] = []
        _ = base.withUnsafeBytes { PlainKey(parsing: $0, labels: &ranges) }
        let values = stride(from: 0, to: ranges.count, by: 4).map { ranges[$0 + 2]...ranges[$0 + 3] }
        var shortcuts = 0
        for _ in 0..<3000 {
            var key = base
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let anywhere = Bool.random(using: &rng) || values.isEmpty
                let at = anywhere ? Int.random(in: 0...key.count, using: &rng) : Int.random(in: values.randomElement(using: &rng) ?? 0...0, using: &rng)
                let byte = alphabet.randomElement(using: &rng) ?? 0x61
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: key.insert(byte, at: at)
                case 1: if at < key.count { key.remove(at: at) }
                default: if at < key.count { key[at] = byte }
                }
            }
            guard key != base else { continue }
            let text = String(decoding: key, as: UTF8.self)
            guard Array(text.utf8) == key else { continue }
            let (sibling, full) = Self.parse(text, after: Self.previous)
            if let sibling {
                shortcuts += 1
                #expect(sibling.0 == full, "\(text)")
            }
            if full != nil, let decoded = try? SeriesKey(decoding: key), decoded.family == decodedBase.family,
               decoded.sample == decodedBase.sample, decoded.help == decodedBase.help,
               decoded.labels.map(\.name) == decodedBase.labels.map(\.name),
               zip(decoded.labels, decodedBase.labels).count(where: { $0.value != $1.value }) == 1 {
                #expect(sibling != nil, "\(text)")
            }
        }
        // The edits meet the shortcut often enough to mean something.
        #expect(shortcuts > 300)
    }

    /// The keys of a histogram file (several children, bounds in several spellings, a label
    /// before and one after `le`, help texts that change, keys the plain spelling does not
    /// cover) merged: every key's series, labels, help text, group and bucket labels are what
    /// the general decoder reads from its bytes, with the bounds in Go's form.
    @Test func aMergedFilesKeysDecodeAsTheGeneralDecoderReadsThem() throws {
        // Each bound and its output form: prometheus_client's floatToGoString of float(bound).
        let bounds: [(String, String)] = [("0.005", "0.005"), ("2.5e-2", "0.025"), ("1.0", "1.0"), ("10", "10.0"), ("1e3", "1000.0"), ("+Inf", "+Inf"),
                      ("NaN", "NaN")]
        var keys: [String] = []
        for child in ["GET", "POST", "PUT", "DEL", "caf\\u00e9", "a\\\"b"] {
            for help in ["Latency.", "Latency seconds."] {
                for (bound, _) in bounds {
                    keys.append(#"["h", "h_bucket", {"code": "200", "le": "\#(bound)", "method": "\#(child)"}, "\#(help)"]"#)
                }
                keys.append(#"["h", "h_sum", {"code": "200", "method": "\#(child)"}, "\#(help)"]"#)
            }
        }
        let dir = TempDirectory("sibling"); defer { dir.remove() }
        let path = dir.file("histogram_7.db")
        try CollectorTests.write(KeyTemplateTests.file(keys) { Double($0) }.bytes, to: path)
        var engine = MergeEngine(catalog: KeyCatalog())
        engine.add(paths: [path], skipDeadOwners: false)
        #expect(engine.problems.isEmpty)
        #expect(engine.catalog.keys.count == keys.count)
        for id in 0..<engine.catalog.keys.count {
            let expected = try SeriesKey(decoding: Array(engine.catalog.keys.bytes(of: Int32(id))))
            let s = Int(engine.catalog.keySeries[id])
            #expect(engine.catalog.familyName[Int(engine.catalog.seriesFamily[s])] == expected.family)
            #expect(engine.catalog.seriesSample[s] == expected.sample)
            #expect(engine.catalog.labels(of: s) == expected.labels)
            #expect(engine.catalog.helpText(ofKey: id) == expected.help)
            let withoutLe = expected.labels.filter { $0.name != "le" }
            // Keys not in the plain spelling get their group when the family is output.
            engine.catalog.computeGroup(s)
            #expect(engine.catalog.groupLabels[Int(engine.catalog.seriesGroup[s])] == withoutLe)
            if let bound = expected.labels.first(where: { $0.name == "le" })?.value {
                let go = try #require(bounds.first { $0.0 == bound }?.1)
                #expect(engine.catalog.seriesBucketLabels[s] == withoutLe + [Label("le", go)])
            } else {
                #expect(engine.catalog.seriesBucketLabels[s] == expected.labels)
            }
        }
        // Keys that differ only in help text are one series.
        #expect(engine.catalog.seriesCount == keys.count / 2)
    }
}
