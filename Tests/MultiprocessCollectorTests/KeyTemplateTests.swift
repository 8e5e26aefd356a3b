// Files that hold the keys of the file read before them, in the same order (workers of one
// application), are checked block by block against an image of that file's keys
// (KeyTemplate). These tests give the merge such files, equal and almost equal to the one
// before, and check every value, key and problem against prometheus_client or the file
// format's own arithmetic.
import Foundation
import MmapStore
import PromMetrics
import Testing
import TestSupport

@Suite("Files compared with the last file's keys")
struct KeyTemplateTests {
    static let entries = 1000

    static func key(_ i: Int, value: String? = nil) -> String { #"["c", "c_total", {"i": "\#(value ?? String(i))"}, "h"]"# }

    /// A Python-format file: header, then per key its 4-byte length, the key, `8 - (L + 4) % 8`
    /// padding bytes, the value `values(i)` and a zero timestamp; and each entry's offset.
    static func file(_ keys: [String], pad: UInt8 = 0x20, values: (Int) -> Double) -> (bytes: [UInt8], offsets: [Int]) {
        var body: [UInt8] = []
        var offsets: [Int] = []
        for (i, k) in keys.enumerated() {
            offsets.append(8 + body.count)
            let key = Array(k.utf8)
            body += withUnsafeBytes(of: Int32(key.count).littleEndian) { Array($0) } + key
            body += [UInt8](repeating: pad, count: 8 - (key.count + 4) % 8)
            body += withUnsafeBytes(of: values(i).bitPattern.littleEndian) { Array($0) }
            body += [UInt8](repeating: 0, count: 8)
        }
        return (CollectorTests.header(used: 8 + body.count, marker: [0, 0, 0, 0]) + body, offsets)
    }

    static func values(_ family: MetricFamilySnapshot) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: family.samples.map { ($0.labels.first?.value ?? "", $0.value) })
    }

    @Test func filesEqualAndAlmostEqualToTheLastMergeAsPrometheusClientMergesThem() throws {
        let dir = TempDirectory("template-diff"); defer { dir.remove() }
        func ops(changing changed: [Int: String] = [:], count: Int = 300) -> [PyOp] {
            var ops: [PyOp] = (0..<count).map { i in
                PyOp(type: "counter", name: "req", help: "Requests.", labelnames: ["series"], labels: [changed[i] ?? "s\(i)"],
                     op: "inc", amount: Double(i % 7 + 1))
            }
            ops += (0..<20).map { j in
                PyOp(type: "histogram", name: "lat", help: "Latency.", labelnames: ["series"], labels: ["h\(j)"], op: "observe",
                     amount: Double(j % 5) / 10)
            }
            return ops
        }
        try pythonWrite(dir.path, pid: "1", ops())
        try pythonWrite(dir.path, pid: "2", ops())  // the same keys: every block as the last file's
        try pythonWrite(dir.path, pid: "3", ops(changing: [150: "x150"]))  // one key of a block another, same length
        try pythonWrite(dir.path, pid: "4", ops(changing: [70: "a much longer label value"]))  // the rest shifted
        try pythonWrite(dir.path, pid: "5", ops(count: 200))  // fewer series, then the histograms earlier
        try pythonWrite(dir.path, pid: "6", ops(count: 400))  // more series
        let ours = flatten(testCollector(dir.path).collect().families)
        let theirs = try pythonCollect(dir.path)
        #expect(ours == theirs, "\(Set(ours).symmetricDifference(Set(theirs)).sorted { $0.description < $1.description })")
        #expect(ours.count > 400)
    }

    @Test func everyValueOfAFileEqualToTheLastIsReadFromItsOwnEntry() throws {
        let dir = TempDirectory("template"); defer { dir.remove() }
        let keys = (0..<Self.entries).map { Self.key($0) }
        try CollectorTests.write(Self.file(keys) { Double($0) }.bytes, to: dir.file("counter_1.db"))
        try CollectorTests.write(Self.file(keys) { Double($0) * 1000 }.bytes, to: dir.file("counter_2.db"))
        let r = testCollector(dir.path).collect()
        #expect(r.problems.isEmpty)
        let c = Self.values(try #require(r.family("c")))
        #expect(c.count == Self.entries)
        for i in 0..<Self.entries { #expect(c[String(i)] == Double(i) * 1001) }
    }

    @Test func aKeyOfAnotherLengthShiftsNothingIntoTheNextFiles() throws {
        let dir = TempDirectory("template"); defer { dir.remove() }
        let keys = (0..<Self.entries).map { Self.key($0) }
        var longer = keys
        longer[100] = Self.key(100, value: "one hundred")
        try CollectorTests.write(Self.file(keys) { _ in 1 }.bytes, to: dir.file("counter_1.db"))
        try CollectorTests.write(Self.file(longer) { _ in 2 }.bytes, to: dir.file("counter_2.db"))
        // Compared with the first file's image again: the second one's values must not have
        // been written over its keys.
        try CollectorTests.write(Self.file(keys) { _ in 4 }.bytes, to: dir.file("counter_3.db"))
        let r = testCollector(dir.path).collect()
        #expect(r.problems.isEmpty)
        let c = Self.values(try #require(r.family("c")))
        #expect(c.count == Self.entries + 1)
        #expect(c["100"] == 5)
        #expect(c["one hundred"] == 2)
        for i in 0..<Self.entries where i != 100 { #expect(c[String(i)] == 7) }
    }

    @Test func paddingOtherThanSpacesIsReadAsPythonReadsIt() throws {
        let dir = TempDirectory("template"); defer { dir.remove() }
        let keys = (0..<Self.entries).map { Self.key($0) }
        try CollectorTests.write(Self.file(keys) { _ in 1 }.bytes, to: dir.file("counter_1.db"))
        try CollectorTests.write(Self.file(keys, pad: 0) { _ in 2 }.bytes, to: dir.file("counter_2.db"))
        let r = testCollector(dir.path).collect()
        #expect(r.problems.isEmpty)
        let c = Self.values(try #require(r.family("c")))
        #expect(c.count == Self.entries)
        #expect(c.values.allSatisfy { $0 == 3 })
    }

    @Test func aBadKeyInAFileOtherwiseEqualToTheLastIsReportedAtItsOffset() throws {
        let dir = TempDirectory("template"); defer { dir.remove() }
        let keys = (0..<Self.entries).map { Self.key($0) }
        var broken = keys
        broken[700] = #"["c", "c_total", {"i": "700"}, "h""#
        try CollectorTests.write(Self.file(keys) { _ in 1 }.bytes, to: dir.file("counter_1.db"))
        let (bad, offsets) = Self.file(broken) { _ in 2 }
        try CollectorTests.write(bad, to: dir.file("counter_2.db"))
        let r = testCollector(dir.path).collect()
        #expect(r.problems.count == 1)
        guard case .invalidKey(let offset, _)? = r.problems.first?.kind else {
            Issue.record("expected an invalid key, got \(r.problems)")
            return
        }
        #expect(offset == offsets[700])
        let c = Self.values(try #require(r.family("c")))
        #expect(c.count == Self.entries)
        #expect(c.values.allSatisfy { $0 == 1 }, "nothing of the bad file merged")
    }
}
