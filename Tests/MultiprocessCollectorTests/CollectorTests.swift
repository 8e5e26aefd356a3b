// What MultiProcessCollector does beyond prometheus_client: damaged files are skipped and
// reported while the rest is exported, dead owners' live gauges are left out by the lock
// probe, problems are reported once, self-metrics, in-process families.
import Foundation
import MmapStore
import MultiprocessCollector
import PromMetrics
import SystemCalls
import Testing
import TestSupport

@Suite("MultiProcessCollector")
struct CollectorTests {
    /// Bytes of a file as prometheus_client writes it: `used`, zero padding, the entries.
    static func pythonFile(_ keys: [String], value: Double = 1) -> [UInt8] {
        var body: [UInt8] = []
        for k in keys { body += FileFormat.entryBytes(key: Array(k.utf8), value: value) }
        return header(used: 8 + body.count, marker: [0, 0, 0, 0]) + body
    }

    static func header(used: Int, marker: [UInt8]) -> [UInt8] {
        var u = UInt32(truncatingIfNeeded: used).littleEndian
        return withUnsafeBytes(of: &u) { Array($0) } + marker
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static let goodKey = #"["c", "c_total", {}, "help"]"#

    @Test func badFilesAreSkippedReportedAndCountedWhileTheRestIsExported() throws {
        let dir = TempDirectory("collect"); defer { dir.remove() }
        // The good part of the directory: a Swift writer and a Python-format file.
        let p = try FakeProcess(dir.path, pid: "123")
        try p.counter("c").add(2)
        try Self.write(Self.pythonFile([Self.goodKey], value: 3), to: dir.file("counter_124.db"))
        // An all-zero file holds nothing, as in Python: not a problem.
        try Self.write([UInt8](repeating: 0, count: 4096), to: dir.file("counter_125.db"))

        var table: [(name: String, reason: String)] = []
        func bad(_ name: String, _ reason: String, _ bytes: [UInt8]) throws {
            try Self.write(bytes, to: dir.file(name))
            table.append((name, reason))
        }
        try bad("counter_1.db", "empty", [])
        try bad("counter_2.db", "truncated", Self.header(used: 4096, marker: [0, 0, 0, 0]) + [UInt8](repeating: 0x20, count: 92))
        try bad("counter_3.db", "unknown_marker", Array("GARBAGE! not a metric file at all".utf8))
        try bad("counter_4.db", "unknown_version", Self.header(used: 8, marker: [0x50, 0x4D, 0x50, 9]) + [UInt8](repeating: 0, count: 56))
        try bad("counter_5.db", "entry_out_of_bounds", Self.header(used: 64, marker: [0, 0, 0, 0]) + [0xE8, 0x03, 0, 0] + [UInt8](repeating: 0x41, count: 52))
        try bad("counter_6.db", "invalid_key", Self.pythonFile(["[\"c\", \"c_total\", {}"]))
        try bad("counter_7.db", "invalid_key", Self.pythonFile(["[\"c\", \"c_total\", {\"a\": \"\u{FF}\"}, \"h\"]"]).map { $0 == 0xC3 ? 0xFF : $0 })
        try bad("histogram_8.db", "invalid_key", Self.pythonFile([#"["h", "h_bucket", {"le": "abc"}, "help"]"#]))
        try bad("counter_9.db", "invalid_header", Self.header(used: 3, marker: [0, 0, 0, 0]) + [UInt8](repeating: 0, count: 56))
        try bad("weird_1.db", "bad_name", Self.pythonFile([Self.goodKey]))
        try bad("gauge_bogus_1.db", "bad_name", Self.pythonFile([Self.goodKey]))
        try FileManager.default.createSymbolicLink(atPath: dir.file("counter_10.db"), withDestinationPath: dir.file("counter_124.db"))
        table.append(("counter_10.db", "symlink"))
        try FileManager.default.createDirectory(atPath: dir.file("counter_11.db"), withIntermediateDirectories: false)
        table.append(("counter_11.db", "not_regular_file"))
        // A second name for a good file (possibly one outside the directory): not read.
        try Self.write(Self.pythonFile([Self.goodKey], value: 100), to: dir.file("counter_12.db"))
        try FileManager.default.linkItem(atPath: dir.file("counter_12.db"), toPath: dir.file("counter_13.db"))
        table.append(("counter_12.db", "hard_link"))
        table.append(("counter_13.db", "hard_link"))
        // Names that are not *.db are not metric files at all.
        try Self.write(Self.pythonFile([Self.goodKey], value: 100), to: dir.file(".tmp-counter_1-abc"))
        try Self.write(Self.pythonFile([Self.goodKey], value: 100), to: dir.file("counter_1.db.bak"))

        let log = ReportLog()
        let collector = MultiProcessCollector(directory: dir.path, reporter: log.reporter)
        let r = collector.collect()
        #expect(r.families.value("c_total") == 5, "the good files are still exported")
        let problems = Dictionary(r.problems.map { ($0.path, $0.reasonCode.rawValue) }, uniquingKeysWith: { a, _ in a })
        for (name, reason) in table {
            #expect(problems[dir.file(name)] == reason, "\(name)")
        }
        #expect(r.problems.count == table.count)
        #expect(Set(log.all.map(\.path)) == Set(table.map { dir.file($0.name) }))
        #expect(r.statistics.mergedFiles == 3)
        #expect(r.statistics.badFiles == table.count)

        // Self-metrics count the skipped files by reason.
        let bad = try #require(r.family("prom_multiproc_collector_bad_files"))
        #expect(bad.value("prom_multiproc_collector_bad_files", ["reason": "invalid_key"]) == 3)
        #expect(bad.value("prom_multiproc_collector_bad_files", ["reason": "bad_name"]) == 2)
        #expect(bad.value("prom_multiproc_collector_bad_files", ["reason": "empty"]) == 1)
        #expect(bad.value("prom_multiproc_collector_bad_files", ["reason": "vanished"]) == 0)
        #expect(r.families.value("prom_multiproc_collector_files") == 3)
        #expect(r.families.value("prom_multiproc_collector_entries") == 2)
        #expect((r.families.value("prom_multiproc_collector_duration_seconds") ?? -1) >= 0)
    }

    @Test func aBadKeyInOneFileDoesNotPoisonTheSameFamilyElsewhere() throws {
        let dir = TempDirectory("collect"); defer { dir.remove() }
        // File 1 starts with good entries, then runs out of bounds: none of it is merged.
        var partial = Self.pythonFile([Self.goodKey], value: 50)
        partial += [0xE8, 0x03, 0, 0, 0, 0, 0, 0]
        partial.replaceSubrange(0..<4, with: Self.header(used: partial.count, marker: [])[0..<4])
        try Self.write(partial, to: dir.file("counter_1.db"))
        try Self.write(Self.pythonFile([Self.goodKey], value: 3), to: dir.file("counter_2.db"))
        let r = testCollector(dir.path).collect()
        #expect(r.families.value("c_total") == 3)
        #expect(r.problems.map(\.reasonCode.rawValue) == ["entry_out_of_bounds"])
    }

    @Test func problemsAreReportedOnceWhileTheyLast() throws {
        let dir = TempDirectory("collect"); defer { dir.remove() }
        try Self.write([], to: dir.file("counter_1.db"))
        let log = ReportLog()
        let collector = testCollector(dir.path, log: log)
        _ = collector.collect()
        let second = collector.collect()
        #expect(second.problems.count == 1, "every result names the problem")
        #expect(log.all.count == 1, "the reporter hears it once")
        try FileManager.default.removeItem(atPath: dir.file("counter_1.db"))
        #expect(collector.collect().problems.isEmpty)
        try Self.write([], to: dir.file("counter_1.db"))
        _ = collector.collect()
        #expect(log.all.count == 2, "a problem that comes back is reported again")
    }

    @Test func liveGaugeFilesOfDeadOwnersAreLeftOutWithoutMarkDead() throws {
        let dir = TempDirectory("collect"); defer { dir.remove() }
        let key = SeriesKey(family: "inprogress", sample: "inprogress", labels: [], help: "help").encoded()
        // Owner 777 wrote and died (its lock is released on close); 778 is alive.
        let dead = try MetricFile.claim(directory: dir.path, kind: .gauge(.livesum), pid: "777")
        try dead.slot(for: key).set(5)
        dead.close()
        let alive = try MetricFile.claim(directory: dir.path, kind: .gauge(.livesum), pid: "778")
        defer { alive.close() }
        try alive.slot(for: key).set(2)
        // A non-live mode of a dead owner stays, as in Python.
        let deadSum = try MetricFile.claim(directory: dir.path, kind: .gauge(.sum), pid: "777")
        try deadSum.slot(for: SeriesKey(family: "total", sample: "total", labels: [], help: "help").encoded()).set(4)
        deadSum.close()
        // prometheus_client's files take no lock: they are always merged.
        try Self.write(Self.pythonFile([#"["inprogress", "inprogress", {}, "help"]"#], value: 10), to: dir.file("gauge_livesum_779.db"))

        let r = testCollector(dir.path).collect()
        #expect(r.families.value("inprogress") == 12)
        #expect(r.families.value("total") == 4)
        #expect(r.statistics.deadOwnerFiles == 1)
        #expect(r.problems.isEmpty)

        let withoutProbe = MultiProcessCollector(directory: dir.path, includeSelfMetrics: false, skipDeadOwners: false, reporter: ReportLog().reporter)
        #expect(withoutProbe.collect().families.value("inprogress") == 17)
    }

    @Test func deadOwnerOfALiveAllGaugeLosesItsSeries() throws {
        let dir = TempDirectory("collect"); defer { dir.remove() }
        let p1 = try FakeProcess(dir.path, pid: "123"), p2 = try FakeProcess(dir.path, pid: "456")
        defer { p2.close() }
        try p1.gauge("g", mode: .liveall).set(1)
        try p2.gauge("g", mode: .liveall).set(2)
        let collector = testCollector(dir.path)
        #expect(collector.collect().family("g")?.samples.count == 2)
        p1.close()  // the process "dies": its lock goes, its file stays
        #expect(FileManager.default.fileExists(atPath: dir.file("gauge_liveall_123.db")))
        // A child process another test spawns at this moment holds a copy of the lock's file
        // description until it execs (then close-on-exec drops it): the owner counts as alive
        // until then. So scrape until the series goes, for at most 10 s.
        let expected = [Sample(name: "g", labels: [Label("pid", "456")], value: 2)]
        let deadline = Sys.monotonicNanoseconds() + 10_000_000_000
        var samples = collector.collect().family("g")?.samples
        while samples != expected && Sys.monotonicNanoseconds() < deadline {
            Sys.sleep(seconds: 0.02)
            samples = collector.collect().family("g")?.samples
        }
        #expect(samples == expected)
    }

    @Test func inProcessFamiliesAreAddedWithoutDoubleCounting() throws {
        let dir = TempDirectory("collect"); defer { dir.remove() }
        try FakeProcess(dir.path, pid: "123").counter("requests").add(4)
        let mine = [
            MetricFamilySnapshot(name: "requests", kind: .counter, help: "dup", samples: [Sample(name: "requests_total", value: 99)]),
            MetricFamilySnapshot(name: "requests_total", kind: .gauge, help: "clash", samples: [Sample(name: "requests_total", value: 98)]),
            MetricFamilySnapshot(name: "a_local", kind: .gauge, help: "local", samples: [Sample(name: "a_local", value: 1)]),
            MetricFamilySnapshot(name: "a_local", kind: .gauge, help: "twice", samples: [Sample(name: "a_local", value: 2)]),
        ]
        let r = testCollector(dir.path).collect(including: mine)
        #expect(r.families.map(\.name) == ["a_local", "requests"])
        #expect(r.families.value("requests_total") == 4)
        #expect(r.families.value("a_local") == 1)
        #expect(r.droppedFamilies == ["requests", "requests_total", "a_local"])
    }

    @Test func selfMetricsCanBeLeftOutAndAreSortedIn() throws {
        let dir = TempDirectory("collect"); defer { dir.remove() }
        try FakeProcess(dir.path, pid: "123").counter("zz").add(1)
        let with = MultiProcessCollector(directory: dir.path, reporter: ReportLog().reporter).collect()
        #expect(with.families.map(\.name) == with.families.map(\.name).sorted())
        #expect(with.families.contains { $0.name == "prom_multiproc_collector_files" })
        #expect(with.family("prom_multiproc_collector_duration_seconds")?.unit == "seconds")
        let without = testCollector(dir.path).collect()
        #expect(without.families.map(\.name) == ["zz"])
    }

    @Test func aMissingDirectoryIsAProblemNotACrash() throws {
        let dir = TempDirectory("collect"); defer { dir.remove() }
        let r = testCollector(dir.file("absent")).collect()
        #expect(r.families.isEmpty)
        #expect(r.problems.count == 1)
        #expect(r.problems.first?.path == dir.file("absent"))
        #expect(r.problems.first?.reasonCode.rawValue == "system_error")
    }

    @Test func temporaryFilesOfAWriterAreIgnored() throws {
        let dir = TempDirectory("collect"); defer { dir.remove() }
        try Self.write([], to: dir.file(".tmp-counter_5-1234abcd"))
        let r = testCollector(dir.path).collect()
        #expect(r.problems.isEmpty)
        #expect(r.families.isEmpty)
    }
}

@Suite("MultiProcessCollector keeps decoded keys between collections")
struct CollectorCatalogTests {
    @Test func aWarmCollectorAgreesWithAFreshOneAsTheDirectoryChanges() throws {
        let dir = TempDirectory("collect"); defer { dir.remove() }
        let warm = testCollector(dir.path)
        func check(_ step: String) {
            let fresh = testCollector(dir.path).collect().families
            #expect(warm.collect().families == fresh, "\(step)")
        }
        let p1 = try FakeProcess(dir.path, pid: "1")
        for i in 0..<50 { try p1.counter("c", labels: [Label("k", "\(i)")]).add(Double(i)) }
        try p1.histogram("h").observe(0.3)
        check("first")
        // Another process creates the same series in the opposite order, plus new ones.
        let p2 = try FakeProcess(dir.path, pid: "2")
        for i in (0..<60).reversed() { try p2.counter("c", labels: [Label("k", "\(i)")]).add(1) }
        try p2.gauge("g", mode: .all).set(3)
        check("second process, other order")
        try p1.histogram("h", labels: [Label("x", "y")]).observe(2)
        try FileManager.default.removeItem(atPath: dir.file("counter_1.db"))
        check("a file gone, a series added")
        #expect(warm.collect().families.value("c_total", ["k": "55"]) == 1)
        #expect(warm.collect().families.value("g", ["pid": "2"]) == 3)
    }
}
