// The merge on several threads gives the bytes of the merge on one: for directories written by
// prometheus_client, by this package and by both, with damaged files among good ones, cold (a
// fresh catalog), warm (the catalog of the previous scrape, with a file added since) and
// through the kept mappings, for 1, 2, 4 and 7 threads. The valid directories are also compared with prometheus_client's merge.
import Foundation
import MmapStore
import MultiprocessCollector
import PromExposition
import PromMetrics
import Testing
import TestSupport

@Suite("Merge on several threads")
struct ParallelMergeTests {
    static let threadCounts = [1, 2, 4, 7]

    /// One scrape's output: the text and OpenMetrics bytes, and every problem with its reason.
    struct Scrape: Equatable {
        var text: [UInt8]
        var openMetrics: [UInt8]
        var problems: [String]
    }

    static func scrape(_ collector: MultiProcessCollector) -> Scrape {
        let r = collector.collect()
        return Scrape(text: Exposition.render(r.families, format: .prometheusText),
                      openMetrics: Exposition.render(r.families, format: .openMetrics),
                      problems: r.problems.map { "\($0.path): \($0.reasonCode.rawValue): \($0.reason)" })
    }

    /// For each thread count: a cold scrape, then `change`, then a warm scrape with the same
    /// collector (files read before are trusted), then one more (files read twice the same
    /// are read through their mappings). Expects every thread count's scrapes to equal one
    /// thread's.
    static func expectSameForEveryThreadCount(_ dir: String, change: () throws -> Void = {}) throws -> [Scrape] {
        let collectors = threadCounts.map { t in testCollector(dir, threads: t) }
        let cold = collectors.map(scrape)
        try change()
        let warm = collectors.map(scrape)
        let mapped = collectors.map(scrape)
        for (i, t) in threadCounts.enumerated().dropFirst() {
            #expect(cold[i] == cold[0], "cold scrape, \(t) threads: \(String(decoding: cold[i].text, as: UTF8.self))")
            #expect(warm[i] == warm[0], "warm scrape, \(t) threads: \(String(decoding: warm[i].text, as: UTF8.self))")
            #expect(mapped[i] == mapped[0], "third scrape, \(t) threads: \(String(decoding: mapped[i].text, as: UTF8.self))")
        }
        return [cold[0], warm[0], mapped[0]]
    }

    @Test func pythonWrittenDirectoryOfManyProcesses() throws {
        let dir = TempDirectory("par"); defer { dir.remove() }
        for pid in [101, 102, 103, 104, 105, 106, 107, 108, 109] {
            var ops = MergeDifferentialTests.pythonOps(pid: pid, seed: Double(pid % 10) + 0.25)
            // Processes create their series in different orders, and some have their own.
            if pid % 2 == 0 { ops.reverse() }
            ops.append(PyOp(type: "counter", name: "only_\(pid % 3)", help: "Some processes.", labelnames: ["p"], labels: ["\(pid)"],
                            op: "inc", amount: 1))
            try pythonWrite(dir.path, pid: "\(pid)", ops)
        }
        // A name used with two types.
        try pythonWrite(dir.path, pid: "101", [PyOp(type: "counter", name: "dup", help: "as counter", op: "inc", amount: 2)])
        try pythonWrite(dir.path, pid: "4567", [PyOp(type: "gauge", name: "dup", help: "as gauge", op: "set", amount: 5, mode: "all")])
        let scrapes = try Self.expectSameForEveryThreadCount(dir.path) {
            try pythonWrite(dir.path, pid: "110", [PyOp(type: "counter", name: "late", help: "New since.", op: "inc", amount: 4)]
                            + MergeDifferentialTests.pythonOps(pid: 110, seed: 1.5))
        }
        // And what they all give is prometheus_client's merge.
        let collector = MultiProcessCollector(directory: dir.path, includeSelfMetrics: false, reporter: ReportLog().reporter,
                                              maxMergeThreads: 7)
        let ours = flatten(collector.collect().families)
        let theirs = try pythonCollect(dir.path)
        #expect(ours == theirs, "\(Set(ours).symmetricDifference(Set(theirs)).sorted { $0.description < $1.description })")
        #expect(scrapes[1].problems.isEmpty)
    }

    @Test func swiftAndPythonWrittenDirectory() throws {
        let dir = TempDirectory("par"); defer { dir.remove() }
        var open: [FakeProcess] = []
        defer { open.forEach { $0.close() } }
        // Seeds whose tenths are whole numbers: sums that do not depend on their order, which
        // differs from prometheus_client's for files of several writers.
        for (pid, seed) in [("201", 10.0), ("202", 20), ("203", 30)] {
            try MergeDifferentialTests.writeSwift(dir.path, pid: pid, seed: seed, keepOpen: &open)
        }
        try pythonWrite(dir.path, pid: "204", MergeDifferentialTests.pythonOps(pid: 204, seed: 40))
        _ = try Self.expectSameForEveryThreadCount(dir.path) {
            try MergeDifferentialTests.writeSwift(dir.path, pid: "205", seed: 50, keepOpen: &open)
        }
        let collector = MultiProcessCollector(directory: dir.path, includeSelfMetrics: false, reporter: ReportLog().reporter,
                                              maxMergeThreads: 4)
        let ours = flatten(collector.collect().families)
        let theirs = try pythonCollect(dir.path)
        #expect(ours == theirs, "\(Set(ours).symmetricDifference(Set(theirs)).sorted { $0.description < $1.description })")
    }

    /// Files of processes that create the same series in the same order are read ahead on
    /// other threads, compared with their kind's template; files that differ from it (fewer
    /// entries, one more, another order, one key changed in place, cut short, used up to 2
    /// bytes into an entry) are read by the merging thread: the output is the same for every
    /// thread count, and prometheus_client's merge.
    @Test func filesLikeTheirKindsTemplateAndFilesUnlikeItAreMergedAlike() throws {
        let dir = TempDirectory("par"); defer { dir.remove() }
        // 120 counter entries and 5 × 17 histogram entries per process: more than a block.
        var ops = (0..<120).map { i in
            PyOp(type: "counter", name: "requests", help: "Requests.", labelnames: ["path"], labels: ["/p\(i)"], op: "inc", amount: Double(i + 1))
        }
        ops += (0..<5).map { i in
            PyOp(type: "histogram", name: "latency", help: "Latency.", labelnames: ["route"], labels: ["r\(i)"], op: "observe",
                 amount: 0.01 * Double(i + 1))
        }
        for pid in ["301", "302", "303"] { try pythonWrite(dir.path, pid: pid, ops) }
        try pythonWrite(dir.path, pid: "304", Array(ops.prefix(70)))
        try pythonWrite(dir.path, pid: "305", ops + [PyOp(type: "counter", name: "requests", help: "Requests.", labelnames: ["path"],
                                                              labels: ["/extra"], op: "inc", amount: 3)])
        try pythonWrite(dir.path, pid: "306", ops.reversed())
        // A copy of a file with one label value changed in place (same length): another series.
        var changed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.file("counter_302.db"))))
        let needle = Array(#""/p77""#.utf8)
        let at = try #require((0...(changed.count - needle.count)).first { Array(changed[$0..<($0 + needle.count)]) == needle })
        changed[at + 2] = UInt8(ascii: "q")
        try CollectorTests.write(changed, to: dir.file("counter_307.db"))
        // Counted as its own process by prometheus_client too.
        _ = try Self.expectSameForEveryThreadCount(dir.path) {
            try pythonWrite(dir.path, pid: "308", ops)
            try pythonWrite(dir.path, pid: "309", ops)
        }
        let ours = flatten(testCollector(dir.path, threads: 3).collect().families)
        let theirs = try pythonCollect(dir.path)
        #expect(ours == theirs, "\(Set(ours).symmetricDifference(Set(theirs)).sorted { $0.description < $1.description })")
        #expect(ours.contains { $0.labels["path"] == "/q77" })
        // One file cut short in the middle of an entry: reported, whoever reads it.
        let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.file("counter_303.db"))))
        let used = Int(whole[0]) | Int(whole[1]) << 8 | Int(whole[2]) << 16 | Int(whole[3]) << 24
        try CollectorTests.write(Array(whole.prefix(used / 2 + 3)), to: dir.file("counter_310.db"))
        // One whose `used` ends 2 bytes into the entry after its 70th: too short for a length.
        var stray = whole
        var end = 8
        for _ in 0..<70 {
            let length = Int(stray[end]) | Int(stray[end + 1]) << 8 | Int(stray[end + 2]) << 16 | Int(stray[end + 3]) << 24
            end += ((length + 4) & ~7) + 8 + 16
        }
        for k in 0..<4 { stray[k] = UInt8(truncatingIfNeeded: (end + 2) >> (8 * k)) }
        try CollectorTests.write(stray, to: dir.file("counter_311.db"))
        let scrapes = try Self.expectSameForEveryThreadCount(dir.path)
        #expect(scrapes[0].problems.count == 2, "\(scrapes[0].problems)")
        #expect(scrapes[0].problems.first?.contains("counter_310.db: truncated") == true, "\(scrapes[0].problems)")
        #expect(scrapes[0].problems.last?.contains("counter_311.db: entry_out_of_bounds") == true, "\(scrapes[0].problems)")
    }

    /// 120 counter series of one family.
    static let requests = (0..<120).map { i in
        PyOp(type: "counter", name: "requests", help: "Requests.", labelnames: ["path"], labels: ["/p\(i)"], op: "inc", amount: Double(i + 1))
    }

    /// `good`, a Python-written file, damaged at random in way `how % 5`: a byte changed,
    /// `used` moved anywhere, the file cut short, `used` moved 1-3 bytes past an entry's
    /// start, an entry's length rewritten.
    static func damage(_ good: [UInt8], how: Int, using rng: inout ExpositionRandom) -> [UInt8] {
        let used = Int(good[0]) | Int(good[1]) << 8 | Int(good[2]) << 16 | Int(good[3]) << 24
        var starts: [Int] = []
        var at = 8
        while at < used {
            starts.append(at)
            let length = Int(good[at]) | Int(good[at + 1]) << 8 | Int(good[at + 2]) << 16 | Int(good[at + 3]) << 24
            at += ((length + 4) & ~7) + 8 + 16
        }
        var bytes = good
        func put(_ value: Int, at offset: Int) {
            for k in 0..<4 { bytes[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
        }
        switch how % 5 {
        case 0: bytes[Int.random(in: 8..<used, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
        case 1: put(Int.random(in: 8...(used + 64), using: &rng), at: 0)
        case 2: bytes = Array(bytes.prefix(Int.random(in: 0...used, using: &rng)))
        case 3: put(starts[Int.random(in: 1..<starts.count, using: &rng)] + Int.random(in: 1...3, using: &rng), at: 0)
        default:
            let start = starts[Int.random(in: 0..<starts.count, using: &rng)]
            put(Int.random(in: -8...(used + 8), using: &rng), at: start)
        }
        return bytes
    }

    /// Copies of a file that gives its kind a template, each damaged at random (``damage(_:how:using:)``),
    /// merge to the same bytes and problems on every thread count: whatever a reading thread
    /// makes of them, the merging thread reads them itself.
    @Test(arguments: [UInt64(1), 2, 3]) func randomlyDamagedCopiesOfATemplateFileMergeAlike(seed: UInt64) throws {
        let dir = TempDirectory("par"); defer { dir.remove() }
        try pythonWrite(dir.path, pid: "401", Self.requests)
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.file("counter_401.db"))))
        var rng = ExpositionRandom(seed: seed)
        for copy in 0..<24 {
            try CollectorTests.write(Self.damage(good, how: copy, using: &rng), to: dir.file("counter_\(500 + copy).db"))
        }
        try CollectorTests.write(good, to: dir.file("counter_600.db"))
        let scrapes = try Self.expectSameForEveryThreadCount(dir.path)
        #expect(!scrapes[0].problems.isEmpty)
    }

    /// A kind's lead file (its first, whose bytes threads compare the files after it with
    /// before the merging thread has decoded it) damaged at random, then exact copies of it
    /// and of the file whole: merged as one thread merges them, on every thread count, and
    /// the copies of a lead the merging thread finds bad are as bad (never taken for the
    /// keys of its image).
    @Test(arguments: [UInt64(1), 2, 3]) func randomlyDamagedLeadFilesMergeAlike(seed: UInt64) throws {
        let dir = TempDirectory("par"); defer { dir.remove() }
        try pythonWrite(dir.path, pid: "401", Self.requests)
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.file("counter_401.db"))))
        var rng = ExpositionRandom(seed: seed)
        for how in 0..<5 {
            let lead = Self.damage(good, how: how, using: &rng)
            for pid in 401...405 { try CollectorTests.write(lead, to: dir.file("counter_\(pid).db")) }
            for pid in 500...503 { try CollectorTests.write(good, to: dir.file("counter_\(pid).db")) }
            let scrapes = try Self.expectSameForEveryThreadCount(dir.path)
            #expect([0, 5].contains(scrapes[0].problems.count), "damage \(how): \(scrapes[0].problems)")
        }
    }

    @Test func damagedFilesAmongGoodOnesAreReportedAlike() throws {
        let dir = TempDirectory("par"); defer { dir.remove() }
        func write(_ name: String, _ bytes: [UInt8]) throws { try CollectorTests.write(bytes, to: dir.file(name)) }
        let good = CollectorTests.goodKey
        let other = #"["c", "c_total", {"a": "b"}, "help"]"#
        let invalid = #"["c", "c_total", {}"#
        let badLe = #"["h", "h_bucket", {"le": "abc"}, "help"]"#
        let bucket = #"["h", "h_bucket", {"le": "1.0"}, "help"]"#
        for pid in 1...6 { try write("counter_\(pid).db", CollectorTests.pythonFile([good, other], value: Double(pid))) }
        // A bad key after good ones: those are interned (and the next files see them), the file is not merged.
        try write("counter_10.db", CollectorTests.pythonFile([#"["c", "c_total", {"x": "new"}, "help"]"#, invalid, good]))
        // A bad key, then an entry out of bounds: the bad key is reported.
        var bounds = CollectorTests.pythonFile([good, invalid, other])
        bounds += [0xE8, 0x03, 0, 0] + [UInt8](repeating: 0x41, count: 12)
        bounds.replaceSubrange(0..<4, with: CollectorTests.header(used: bounds.count, marker: [0, 0, 0, 0])[0..<4])
        try write("counter_11.db", bounds)
        // An entry out of bounds after a good key never seen before.
        var bounds2 = CollectorTests.pythonFile([#"["c", "c_total", {"y": "z"}, "help"]"#])
        bounds2 += [0xE8, 0x03, 0, 0] + [UInt8](repeating: 0x41, count: 12)
        bounds2.replaceSubrange(0..<4, with: CollectorTests.header(used: bounds2.count, marker: [0, 0, 0, 0])[0..<4])
        try write("counter_12.db", bounds2)
        // A bad key in a file shorter than its header says: truncation is reported.
        var short = CollectorTests.pythonFile([good, invalid, other])
        short.replaceSubrange(0..<4, with: CollectorTests.header(used: short.count + 4096, marker: [0, 0, 0, 0])[0..<4])
        try write("counter_13.db", short)
        try write("counter_14.db", [])
        try write("weird_1.db", CollectorTests.pythonFile([good]))
        try write("histogram_1.db", CollectorTests.pythonFile([bucket]))
        try write("histogram_2.db", CollectorTests.pythonFile([bucket, badLe, bucket]))
        try write("histogram_3.db", CollectorTests.pythonFile([bucket], value: 2))
        let scrapes = try Self.expectSameForEveryThreadCount(dir.path) {
            try write("counter_15.db", CollectorTests.pythonFile([other, #"["c", "c_total", {"w": "late"}, "help"]"#, good]))
            try write("counter_16.db", CollectorTests.pythonFile([good, invalid]))
        }
        // What one thread reports, checked on its own terms.
        let reasons = scrapes[0].problems.map { $0.split(separator: ":").dropFirst().first.map { String($0.dropFirst()) } ?? "" }
        #expect(reasons == ["invalid_key", "invalid_key", "entry_out_of_bounds", "truncated", "empty", "invalid_key", "bad_name"])
        #expect(scrapes[1].problems.count == 8)
        let text = String(decoding: scrapes[0].text, as: UTF8.self)
        #expect(text.contains("c_total 21.0\n") && text.contains("c_total{a=\"b\"} 21.0\n"), "\(text)")
        #expect(text.contains("h_bucket{le=\"1.0\"} 3.0\n"), "\(text)")
    }
}
