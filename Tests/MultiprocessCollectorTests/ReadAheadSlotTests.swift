// What a read-ahead thread writes for the merging thread: a file's values, and its timestamps
// only where they can count (gauge files); never key ids from a lead image, which has none.
import Foundation
import MmapStore
@testable import MultiprocessCollector
import Testing
import TestSupport

@Suite("What reading threads hand over")
struct ReadAheadSlotTests {
    /// A Python-format file of `keys`: per entry its length, key, padding, `values(i)` and the
    /// timestamp `stamps(i)`.
    static func file(_ keys: [String], values: (Int) -> Double, stamps: (Int) -> Double) -> [UInt8] {
        var body: [UInt8] = []
        for (i, k) in keys.enumerated() {
            let key = Array(k.utf8)
            body += withUnsafeBytes(of: Int32(key.count).littleEndian) { Array($0) } + key
            body += [UInt8](repeating: 0x20, count: 8 - (key.count + 4) % 8)
            body += withUnsafeBytes(of: values(i).bitPattern.littleEndian) { Array($0) }
            body += withUnsafeBytes(of: stamps(i).bitPattern.littleEndian) { Array($0) }
        }
        return CollectorTests.header(used: 8 + body.count, marker: [0, 0, 0, 0]) + body
    }

    /// A file matched against a lead image of its own keys (300 entries: four blocks, then 44
    /// matched one by one): every value is copied, timestamps only when asked, and the key ids
    /// in the scratch are left as they were (a lead image has none; an empty array's buffer
    /// still has an address, which was once taken for ids to copy).
    @Test(arguments: [false, true]) func aLeadImageGivesValuesAndNoKeyIDs(stamps: Bool) {
        let keys = (0..<300).map { KeyTemplateTests.key($0) }
        let image = LeadAgreementTests.image(of: keys)
        let scratch = EntryScratch(capacity: keys.count)
        for i in 0..<keys.count {
            scratch.keys[i] = -7
            scratch.stamps[i] = -1
        }
        var bytes = Self.file(keys, values: { Double($0) * 2 }, stamps: { Double($0) + 0.5 })
        let (next, _, differs) = bytes.withUnsafeMutableBytes { raw in
            image.match(from: 0, at: FileFormat.headerSize, in: raw, base: 0, used: raw.count, into: scratch, stamps: stamps)
        }
        #expect(next == keys.count)
        #expect(!differs)
        #expect((0..<keys.count).allSatisfy { scratch.values[$0] == Double($0) * 2 })
        #expect((0..<keys.count).allSatisfy { scratch.keys[$0] == -7 })
        #expect((0..<keys.count).allSatisfy { scratch.stamps[$0] == (stamps ? Double($0) + 0.5 : -1) })
    }

    /// A template compares a block by zeroing its values and timestamps in the bytes read and
    /// comparing them with its image; a block that differs, or does not lie whole in the bytes
    /// given, must get them back, for its entries are then read one by one from the same
    /// bytes (and the bytes not consumed are given again with the next read). The file: 300
    /// entries of the image's keys but for `changed` (another value of the same length, so
    /// every offset stays the image's), read from entry `first` (as a later read of a file
    /// gives its bytes from an entry's offset on) up to file offset `given`.
    @Test(arguments: [(changed: 100, given: Int.max, first: 0), (changed: 63, given: Int.max, first: 0),
                      (changed: 299, given: 9_000, first: 0), (changed: 299, given: Int.max, first: 0),
                      (changed: 150, given: Int.max, first: 64), (changed: 299, given: 12_000, first: 64)])
    func aBlockNotTheImagesKeepsItsValues(changed: Int, given: Int, first: Int) {
        let keys = (0..<300).map { KeyTemplateTests.key($0) }
        let image = LeadAgreementTests.image(of: keys)
        var fileKeys = keys
        fileKeys[changed] = KeyTemplateTests.key(changed, value: String(String(changed).dropLast()) + "x")
        let original = Self.file(fileKeys, values: { Double($0) * 2 + 1 }, stamps: { Double($0) + 0.5 })
        var bytes = original
        let offsets = KeyTemplateTests.file(fileKeys) { _ in 0 }.offsets
        let scratch = EntryScratch(capacity: keys.count)
        let base = offsets[first]
        let count = Swift.min(given, bytes.count)
        let (next, end, differs) = bytes.withUnsafeMutableBytes { raw in
            image.match(from: first, at: base, in: UnsafeMutableRawBufferPointer(rebasing: raw[base..<count]), base: base,
                        used: raw.count, into: scratch, stamps: true)
        }
        // Each entry's value offset (pad = 8 - (L + 4) % 8: python-format.md), and the
        // entries that lie whole inside the first `count` bytes.
        func valueAt(_ i: Int) -> Int { offsets[i] + 4 + fileKeys[i].utf8.count + 8 - (fileKeys[i].utf8.count + 4) % 8 }
        let whole = offsets.indices.count { valueAt($0) + 16 <= count }
        #expect(next == Swift.min(changed, whole))
        #expect(differs == (changed < whole))
        #expect(end == (next < offsets.count ? offsets[next] : original.count))
        #expect((first..<next).allSatisfy { scratch.values[$0] == Double($0) * 2 + 1 && scratch.stamps[$0] == Double($0) + 0.5 })
        // Blocks resolved whole may have their values zeroed; every byte after them is as read,
        // and every key byte.
        let resolved = first + (next - first) / KeyTemplate.block * KeyTemplate.block
        let kept = resolved < offsets.count ? offsets[resolved] : original.count
        #expect(bytes[..<base] == original[..<base])
        #expect(bytes[kept...] == original[kept...])
        for i in first..<resolved {
            #expect(bytes[offsets[i]..<valueAt(i)] == original[offsets[i]..<valueAt(i)])
        }
    }

    /// A family a `mostrecent` gauge file typed first, then summary files with the same keys,
    /// each with its own timestamps. Their entries join the gauge family, where the newest
    /// value wins (python-format.md §4), so their timestamps count; a reading thread does not
    /// read a summary file's timestamps, so the merging thread reads these files itself. Every
    /// thread count merges them as one thread does, each `c_sum` the value of the file with the
    /// largest timestamp for it (the first such file on a tie).
    @Test func filesOfAFamilyAGaugeFileTypedKeepTheirTimestamps() throws {
        let dir = TempDirectory("stamps"); defer { dir.remove() }
        let n = 200
        let gauge = (0..<n).map { #"["c", "c", {"i": "\#($0)"}, "h"]"# }
        try CollectorTests.write(Self.file(gauge, values: { Double($0) }, stamps: { _ in 1 }), to: dir.file("gauge_mostrecent_1.db"))
        let summary = (0..<n).map { #"["c", "c_sum", {"i": "\#($0)"}, "h"]"# }
        let files = 2...7
        func stamp(_ i: Int, _ p: Int) -> Double { Double((i * 7 + p * 13) % 5 + 1) }
        for p in files {
            try CollectorTests.write(Self.file(summary, values: { Double($0 * 10 + p) }, stamps: { stamp($0, p) }),
                                     to: dir.file("summary_\(p).db"))
        }
        let scrapes = try ParallelMergeTests.expectSameForEveryThreadCount(dir.path)
        let text = String(decoding: scrapes[0].text, as: UTF8.self)
        for i in 0..<n {
            // The newest: files are merged in name order, summary_2 ... summary_7.
            var newest = files.lowerBound
            for p in files where stamp(i, p) > stamp(i, newest) { newest = p }
            #expect(text.contains("c_sum{i=\"\(i)\"} \(Double(i * 10 + newest))\n"), "c_sum{i=\"\(i)\"}")
        }
    }
}
