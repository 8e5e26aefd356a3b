// Files far larger than the reader's 64 KiB buffer: the merge reads them piece by piece, so
// entries straddle the pieces, a key can be larger than the buffer, and a problem deep in a
// file must still be found at its offset with nothing of that file merged.
import Foundation
import MmapStore
import PromMetrics
import Testing
import TestSupport

@Suite("Merge of files larger than the read buffer")
struct MergeLargeFileTests {
    static let entries = 3000

    static func key(_ i: Int) -> String { #"["c", "c_total", {"i": "\#(i)"}, "h"]"# }

    /// A Python-format file of `keys`, each entry with value 1, and the offset of each entry
    /// (header 8 bytes, then each entry: 4-byte length, key, padding to 8, two float64s).
    static func file(_ keys: [String], trailing: [UInt8] = []) -> (bytes: [UInt8], offsets: [Int]) {
        var body: [UInt8] = []
        var offsets: [Int] = []
        for k in keys {
            offsets.append(8 + body.count)
            let key = Array(k.utf8)
            body += withUnsafeBytes(of: Int32(key.count).littleEndian) { Array($0) } + key
            body += [UInt8](repeating: 0x20, count: 8 - (key.count + 4) % 8)
            body += withUnsafeBytes(of: (1.0).bitPattern.littleEndian) { Array($0) }
            body += [UInt8](repeating: 0, count: 8)
        }
        body += trailing
        return (CollectorTests.header(used: 8 + body.count, marker: [0, 0, 0, 0]) + body, offsets)
    }

    @Test func everyEntryOfALargeFileIsMergedIncludingAKeyLargerThanTheBuffer() throws {
        let dir = TempDirectory("merge-large"); defer { dir.remove() }
        let big = String(repeating: "v", count: 100_000)
        var keys = (0..<Self.entries).map(Self.key)
        keys.insert(#"["c", "c_total", {"i": "\#(big)"}, "h"]"#, at: 1500)
        let (bytes, _) = Self.file(keys)
        #expect(bytes.count > 4 * 65_536)
        try CollectorTests.write(bytes, to: dir.file("counter_1.db"))
        try CollectorTests.write(bytes, to: dir.file("counter_2.db"))
        let r = testCollector(dir.path).collect()
        #expect(r.problems.isEmpty)
        let c = try #require(r.family("c"))
        #expect(c.samples.count == Self.entries + 1)
        #expect(c.samples.allSatisfy { $0.value == 2 })
        #expect(r.statistics.entries == 2 * (Self.entries + 1))
        #expect(c.samples.contains { $0.labels == [Label("i", big)] })
        #expect(c.samples.contains { $0.labels == [Label("i", "2999")] })
    }

    @Test func aBadKeyDeepInALargeFileIsReportedAtItsOffsetAndNothingOfTheFileIsMerged() throws {
        let dir = TempDirectory("merge-large"); defer { dir.remove() }
        var keys = (0..<Self.entries).map(Self.key)
        keys[2500] = #"["c", "c_total", {"i": "2500"}, "h""#
        let (bad, offsets) = Self.file(keys)
        try CollectorTests.write(bad, to: dir.file("counter_1.db"))
        let (good, _) = Self.file([Self.key(7)])
        try CollectorTests.write(good, to: dir.file("counter_2.db"))
        let r = testCollector(dir.path).collect()
        #expect(r.problems.count == 1)
        guard case .invalidKey(let offset, _)? = r.problems.first?.kind else {
            Issue.record("expected an invalid key, got \(r.problems)")
            return
        }
        #expect(offset == offsets[2500])
        let c = try #require(r.family("c"))
        #expect(c.samples == [Sample(name: "c_total", labels: [Label("i", "7")], value: 1)])
    }

    @Test func anEntryRunningPastTheEndOfALargeFileIsReportedAndNothingOfTheFileIsMerged() throws {
        let dir = TempDirectory("merge-large"); defer { dir.remove() }
        // After the good entries: a length of 1000 with only 8 bytes left.
        let (bad, _) = Self.file((0..<Self.entries).map(Self.key), trailing: [0xE8, 0x03, 0, 0, 0x20, 0x20, 0x20, 0x20])
        try CollectorTests.write(bad, to: dir.file("counter_1.db"))
        let (good, _) = Self.file([Self.key(7)])
        try CollectorTests.write(good, to: dir.file("counter_2.db"))
        let r = testCollector(dir.path).collect()
        #expect(r.problems.count == 1)
        guard case .entryOutOfBounds(let offset, let keyLength)? = r.problems.first?.kind else {
            Issue.record("expected an entry out of bounds, got \(r.problems)")
            return
        }
        #expect(offset == bad.count - 8, "the trailing 8 bytes")
        #expect(keyLength == 1000)
        let c = try #require(r.family("c"))
        #expect(c.samples == [Sample(name: "c_total", labels: [Label("i", "7")], value: 1)])
    }
}
