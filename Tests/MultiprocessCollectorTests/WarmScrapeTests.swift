import Foundation
import MmapStore
@testable import MultiprocessCollector
import PromMetrics
import SystemCalls
import Testing
import TestSupport

/// A collector that keeps its catalog trusts the keys of a file it read before (same device,
/// inode and birth time, used at least as far) instead of checking them again. Every test
/// here changes the directory between two scrapes of one collector and compares the second
/// scrape with prometheus_client's merge of the same files, merging on one thread and on two
/// (each directory holds at least two files, so that two threads read them).
@Suite("Warm scrapes trust only the files they read before")
struct WarmScrapeTests {
    /// Increments of `requests{path}` for each of `labels`, by `amount` times its position
    /// (1, 2, ...), so that values put under the wrong key show.
    static func counterOps(_ labels: [String], amount: Double) -> [PyOp] {
        labels.enumerated().map { i, label in
            PyOp(type: "counter", name: "requests", help: "Requests.", labelnames: ["path"], labels: [label], op: "inc", amount: amount * Double(i + 1))
        }
    }

    static func expectSameAsPython(_ collector: MultiProcessCollector, _ dir: TempDirectory,
                                   sourceLocation: SourceLocation = #_sourceLocation) throws -> CollectStatistics {
        let result = collector.collect()
        let ours = flatten(result.families)
        let theirs = try pythonCollect(dir.path)
        #expect(ours == theirs, "\(Set(ours).symmetricDifference(Set(theirs)).sorted { $0.description < $1.description })",
                sourceLocation: sourceLocation)
        return result.statistics
    }

    @Test(arguments: [1, 2]) func newEntriesAndNewValuesInKnownFilesAreMerged(threads: Int) throws {
        let dir = TempDirectory("warm"); defer { dir.remove() }
        try pythonWrite(dir.path, pid: "11", Self.counterOps(["/a", "/b"], amount: 1) + [
            PyOp(type: "histogram", name: "size", help: "Sizes.", op: "observe", amount: 0.3),
            PyOp(type: "gauge", name: "temp", help: "Temperature.", op: "set", amount: 20, mode: "max"),
        ])
        try pythonWrite(dir.path, pid: "12", Self.counterOps(["/b"], amount: 4))
        let collector = testCollector(dir.path, threads: threads)
        let first = try Self.expectSameAsPython(collector, dir)
        #expect(first.knownEntries == 0)
        // The same processes again (their files reopened, not replaced): new values for
        // known entries, new entries appended, and a new process.
        try pythonWrite(dir.path, pid: "11", Self.counterOps(["/a", "/c"], amount: 2) + [
            PyOp(type: "histogram", name: "size", help: "Sizes.", op: "observe", amount: 7),
            PyOp(type: "gauge", name: "temp", help: "Temperature.", op: "set", amount: 31, mode: "max"),
        ])
        try pythonWrite(dir.path, pid: "13", Self.counterOps(["/d"], amount: 8))
        let second = try Self.expectSameAsPython(collector, dir)
        // Every entry of the first scrape was trusted the second time.
        #expect(second.knownEntries == first.entries)
        #expect(second.entries > first.entries)
        let third = try Self.expectSameAsPython(collector, dir)
        #expect(third.knownEntries == third.entries)
    }

    /// Files read twice unchanged are mapped, and later scrapes read their values through the
    /// mapping: values changed in place since (a writer's increments) are merged; a file that
    /// grew, or was replaced, is read whole again.
    @Test(arguments: [1, 2]) func filesReadTwiceUnchangedAreReadThroughMappingsWithTheirNewValues(threads: Int) throws {
        let dir = TempDirectory("warm"); defer { dir.remove() }
        let labels = (0..<300).map { "/path-\($0)" }
        try pythonWrite(dir.path, pid: "51", Self.counterOps(labels, amount: 1) + [
            PyOp(type: "gauge", name: "temp", help: "Temperature.", op: "set", amount: 20, mode: "mostrecent"),
        ])
        try pythonWrite(dir.path, pid: "52", Self.counterOps(labels, amount: 2))
        let collector = testCollector(dir.path, threads: threads)
        let first = try Self.expectSameAsPython(collector, dir)
        let second = try Self.expectSameAsPython(collector, dir)
        #expect(second.mappedEntries == 0)
        // New values for existing series only: every file keeps its `used`.
        try pythonWrite(dir.path, pid: "51", Self.counterOps(labels, amount: 5) + [
            PyOp(type: "gauge", name: "temp", help: "Temperature.", op: "set", amount: 25, mode: "mostrecent"),
        ])
        let third = try Self.expectSameAsPython(collector, dir)
        #expect(third.mappedEntries == first.entries)
        try pythonWrite(dir.path, pid: "52", Self.counterOps(labels, amount: 7))
        let fourth = try Self.expectSameAsPython(collector, dir)
        #expect(fourth.mappedEntries == first.entries)
        // One file grows, one is replaced: both read whole, the others still mapped.
        try pythonWrite(dir.path, pid: "52", Self.counterOps(labels + ["/new"], amount: 1))
        try FileManager.default.removeItem(atPath: dir.path + "/counter_51.db")
        try pythonWrite(dir.path, pid: "51", Self.counterOps(labels.reversed(), amount: 3))
        let fifth = try Self.expectSameAsPython(collector, dir)
        #expect(fifth.mappedEntries == 1) // the gauge file
    }

    /// Scrapes that overlap merge one after the other, each from the catalog the last one
    /// left: none starts afresh and decodes every key again.
    @Test func overlappingScrapesEachStartFromTheKeptCatalog() throws {
        let dir = TempDirectory("warm"); defer { dir.remove() }
        let labels = (0..<3000).map { "/path-\($0)" }
        for pid in 61...64 { try pythonWrite(dir.path, pid: String(pid), Self.counterOps(labels, amount: Double(pid))) }
        let collector = testCollector(dir.path)
        let first = try Self.expectSameAsPython(collector, dir)
        let statistics = Locked<[CollectStatistics]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let s = collector.collect().statistics
            statistics.withLock { $0.append(s) }
        }
        let known = statistics.withLock { $0.map(\.knownEntries) }
        #expect(known == Array(repeating: first.entries, count: 4))
        _ = try Self.expectSameAsPython(collector, dir)
    }

    /// A file deleted and written again under the same name (a worker restarting under the
    /// same pid after `wipe`) is a new file, even where the file system gives it the deleted
    /// file's inode number: its keys come in another order, with the same lengths.
    @Test(arguments: [1, 2]) func aFileReplacedUnderTheSameNameIsCheckedAgain(threads: Int) throws {
        let dir = TempDirectory("warm"); defer { dir.remove() }
        try pythonWrite(dir.path, pid: "21", Self.counterOps(["/a", "/b", "/c"], amount: 1))
        // A process whose file stays as it is.
        try pythonWrite(dir.path, pid: "29", Self.counterOps(["/a"], amount: 3))
        let collector = testCollector(dir.path, threads: threads)
        _ = try Self.expectSameAsPython(collector, dir)
        let path = dir.path + "/counter_21.db"
        var inodes: [UInt64] = []
        for round in 1...3 {
            inodes.append(try inode(path))
            try FileManager.default.removeItem(atPath: path)
            let order = round % 2 == 1 ? ["/c", "/b", "/a"] : ["/b", "/a", "/c"]
            try pythonWrite(dir.path, pid: "21", Self.counterOps(order, amount: Double(10 * round)))
            let statistics = try Self.expectSameAsPython(collector, dir)
            let now = try inode(path)
            // Only the bystander's entry.
            #expect(statistics.knownEntries == 1, "round \(round): inode \(now), before \(inodes)")
        }
    }

    /// A file rewritten in place (the same file, its keys changed under the scrape): keys of
    /// other lengths are noticed and the file is checked again from there.
    @Test(arguments: [1, 2]) func aFileRewrittenInPlaceWithKeysOfOtherLengthsIsCheckedAgain(threads: Int) throws {
        let dir = TempDirectory("warm"), other = TempDirectory("warm-other")
        defer { dir.remove(); other.remove() }
        try pythonWrite(dir.path, pid: "31", Self.counterOps(["/a", "/b"], amount: 1))
        try pythonWrite(dir.path, pid: "39", Self.counterOps(["/b"], amount: 3))
        try pythonWrite(other.path, pid: "31", Self.counterOps(["/a", "/longer-path", "/b", "/x"], amount: 5))
        let collector = testCollector(dir.path, threads: threads)
        _ = try Self.expectSameAsPython(collector, dir)
        // Same inode and birth time, new bytes, `used` grown.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: other.path + "/counter_31.db"))
        let handle = try #require(FileHandle(forWritingAtPath: dir.path + "/counter_31.db"))
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: bytes)
        try handle.close()
        let statistics = try Self.expectSameAsPython(collector, dir)
        // The first entry still matches (`/a`); the second has another length. And the
        // bystander's entry.
        #expect(statistics.knownEntries == 2)
    }

    /// A known file whose header says it holds less than before is read as a new file; one
    /// damaged past what was known is reported, and the rest of the directory merged.
    @Test(arguments: [1, 2]) func aKnownFileThatShrankOrWasDamagedIsNotTrusted(threads: Int) throws {
        let dir = TempDirectory("warm"); defer { dir.remove() }
        try pythonWrite(dir.path, pid: "41", Self.counterOps(["/a", "/b", "/c"], amount: 1))
        try pythonWrite(dir.path, pid: "42", Self.counterOps(["/a"], amount: 2))
        let log = ReportLog()
        let collector = testCollector(dir.path, log: log, threads: threads)
        _ = try Self.expectSameAsPython(collector, dir)
        // `used` set back to the end of the first entry: the file now holds only `/a`.
        let path = dir.path + "/counter_41.db"
        let firstEntryEnd = try entryEnds(path)[0]
        try writeUsed(path, firstEntryEnd)
        let shrunk = try Self.expectSameAsPython(collector, dir)
        #expect(shrunk.knownEntries == 1) // counter_42's entry; counter_41 read afresh
        // `used` now past the end of the file's entries, into bytes that are not an entry.
        try writeUsed(path, try entryEnds(path).last! + 8)
        let damaged = collector.collect()
        #expect(log.all.contains { $0.path == path }, "\(log.all)")
        #expect(damaged.families.first { $0.name == "requests" }?.samples.first?.value == 2)
    }

    private func inode(_ path: String) throws -> UInt64 {
        try (FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
    }

    /// The end offset of each entry of a file, from its bytes (Python's layout).
    private func entryEnds(_ path: String) throws -> [Int] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let used = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        var pos = 8, ends: [Int] = []
        while pos < used {
            let length = Int(bytes[pos]) | Int(bytes[pos + 1]) << 8 | Int(bytes[pos + 2]) << 16 | Int(bytes[pos + 3]) << 24
            pos += 4 + length + (8 - (4 + length) % 8) + 16
            ends.append(pos)
        }
        return ends
    }

    private func writeUsed(_ path: String, _ used: Int) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: withUnsafeBytes(of: UInt32(used).littleEndian) { Data($0) })
        try handle.close()
    }
}
