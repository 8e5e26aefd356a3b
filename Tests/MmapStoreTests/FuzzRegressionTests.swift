// Regression tests for the fuzz harness (Fuzz/README.md). The 1,000,000-execution libFuzzer
// run under the address sanitizer found no crash, hang or out-of-bounds read; these pin the
// inputs its mutations aim at (length fields at the limits of int32 arithmetic, `used` past the
// reader's first buffer, surrogates and escapes in keys) and replay the committed corpus
// through the harness's own checks, so that a regression fails the ordinary test run too.
import Foundation
import MmapStore
import Testing
import TestSupport

private func le32(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

/// Bytes laid out by hand from the format's description: `used`, a 4-byte marker, entries.
private func fileBytes(used: Int32, entries: [UInt8] = [], marker: [UInt8] = [0, 0, 0, 0]) -> [UInt8] {
    le32(used) + marker + entries
}

private func entriesSeen(_ bytes: [UInt8]) -> (count: Int, error: MetricFileError?) {
    bytes.withUnsafeBytes { raw in
        var count = 0
        do throws(MetricFileError) {
            try LoadedMetricFile.forEachEntry(in: raw, path: "x") { _ in count += 1 }
            return (count, nil)
        } catch {
            return (count, error)
        }
    }
}

@Suite("Fuzz regressions: hostile length fields and keys")
struct FuzzRegressionTests {
    @Test(arguments: [Int32.max, Int32.max - 7, 0x7FFF_FFF8, -1, Int32.min, 65_537])
    func anEntryLengthNearTheLimitsOfInt32StopsTheWalkWithoutReadingPastTheBytes(length: Int32) {
        // One whole 24-byte entry with an empty key, then an entry whose length field lies.
        let good = le32(0) + [0x20, 0x20, 0x20, 0x20] + [UInt8](repeating: 0, count: 16)
        let bytes = fileBytes(used: 0, entries: good + le32(length) + Array("[\"a\"".utf8))
        let seen = entriesSeen(bytes)
        #expect(seen.count == 1)
        #expect(seen.error?.kind == .entryOutOfBounds(offset: 32, keyLength: Int(length)))
    }

    @Test func aLengthFieldCutByTheEndOfTheBytesIsReported() {
        let bytes = fileBytes(used: 0) + [0x05, 0x00]
        #expect(entriesSeen(bytes).error?.kind == .entryOutOfBounds(offset: 8, keyLength: -1))
    }

    @Test(arguments: [Int32.max, 65_537, 1 << 20])
    func aHeaderClaimingMoreBytesThanTheFileHoldsIsTruncated(used: Int32) throws {
        let dir = TempDirectory("pmp-fuzzreg")
        defer { dir.remove() }
        let path = dir.file("counter_1.db")
        // A 70,000-byte file: past the reader's first 64 KiB buffer, short of `used` (or, for
        // 65,537, long enough: then the zero bytes read as entries with empty keys).
        var bytes = fileBytes(used: used)
        bytes += [UInt8](repeating: 0, count: 70_000 - bytes.count)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        var reader = MetricFileReader()
        if used <= 70_000 {
            let loaded = try reader.load(path: path)
            #expect(loaded.bytes.count == Int(used))
            var count = 0
            #expect(throws: MetricFileError.self) { try loaded.forEachEntry { _ in count += 1 } }
            #expect(count == (Int(used) - 8) / 24)
        } else {
            #expect(throws: MetricFileError(path: path, kind: .truncated(size: 70_000, needed: Int(used)))) {
                _ = try reader.load(path: path)
            }
        }
    }

    /// Keys whose decoding takes an unusual path: each must decode, and its encoding must
    /// decode to the same key and be Python's ASCII-only form (checked by hand from
    /// `json.dumps(..., sort_keys=True)`).
    @Test(arguments: [
        (#"["a", "b", {}, "\ud83d\ude00"]"#, #"["a", "b", {}, "\ud83d\ude00"]"#),  // a surrogate pair
        (#"["a", "b", {}, "\ud800"]"#, #"["a", "b", {}, "\ufffd"]"#),  // a lone high surrogate
        (#"["a", "b", {}, "\udc00x"]"#, #"["a", "b", {}, "\ufffdx"]"#),  // a lone low surrogate
        (#"["a", "b", {}, "\ud800\u0041"]"#, #"["a", "b", {}, "\ufffdA"]"#),  // high, then not low
        (#"["a","b",{"z":"1","y":"2"},"h"]"#, #"["a", "b", {"y": "2", "z": "1"}, "h"]"#),  // compact JSON
        ("[ \"a\" ,\t\"b\" ,\n{ } , \"h\" ]", #"["a", "b", {}, "h"]"#),  // whitespace everywhere
        (#"["a", "b", {}, "\u0000\u007F\/\u00E9"]"#, #"["a", "b", {}, "\u0000\u007f/\u00e9"]"#),  // upper-case hex, \/
        ("[\"a\", \"b\", {}, \"\u{E9}\"]", #"["a", "b", {}, "\u00e9"]"#),  // raw UTF-8
    ])
    func unusualKeysSurviveTheRoundTrip(input: String, python: String) throws {
        let key = try SeriesKey(decoding: Array(input.utf8))
        let encoded = key.encoded()
        #expect(String(decoding: encoded, as: UTF8.self) == python)
        #expect(try SeriesKey(decoding: encoded) == key)
    }

    @Test(arguments: [
        #"["a", "b", {}, "\ud83d\ude0"]"#, "[\"a\", \"b\", {}, \"\u{1}\"]", #"["a", "b", {"x": "1", "x": "2"}, "h"]"#,
        #"["a", "b", {}, "h"] "#.dropLast() + "x", #"["a", "b", {}, "h""#, "[", "",
    ])
    func malformedKeysAreRefusedWithAnOffsetInsideTheKey(input: String) {
        // A short \u escape, a raw control character, a duplicate label, trailing bytes, an
        // unterminated array, and nothing at all.
        let bytes = Array(input.utf8)
        do {
            _ = try SeriesKey(decoding: bytes)
            Issue.record("decoded \(input)")
        } catch {
            #expect(error.offset >= 0 && error.offset <= bytes.count)
        }
        var invalid = Array(#"["a", "b", {}, "h"]"#.utf8)
        invalid[10] = 0xFF  // not UTF-8, inside the help string
        #expect(throws: KeyDecodingError.self) { _ = try SeriesKey(decoding: invalid) }
        #expect(throws: KeyDecodingError.self) { _ = try SeriesKey(decoding: Array(#"["a", "b", {}, "\U00E9"]"#.utf8)) }
    }

    @Test func theHarnessFindsNoViolationOnTheCorpusOrOnSeededMutations() throws {
        let tool = executable("prom-multiproc-fuzz")
        let corpus = repositoryRoot() + "/Fuzz/corpus"
        let replay = try run(tool, ["replay", corpus], timeout: 300)
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(replay.stdout.contains("no property violated"))
        let mutate = try run(tool, ["mutate", "--runs", "3000", "--seed", "7", "--max-len", "8192", corpus], timeout: 600)
        #expect(mutate.status == 0, "\(mutate.stdout)\n\(mutate.stderr)")
        #expect(mutate.stdout.contains("done: 3000 execs"))
    }
}
