// The merge cases of prometheus_client's tests/test_multiprocess.py (python-format.md §6),
// with the directories written by MmapStore's ProcessStore playing pids 123 and 456, plus the
// extra edge cases python-format.md §4 lists. Expected values are the facts those Python
// tests assert, or derived by hand from §4.
import Foundation
import MmapStore
import MultiprocessCollector
import PromMetrics
import Testing
import TestSupport

@Suite("Merge semantics (prometheus_client test_multiprocess.py)")
struct MergeSemanticsTests {
    // test_counter_adds
    @Test func countersOfTwoProcessesAdd() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let p1 = try FakeProcess(dir.path, pid: "123"), p2 = try FakeProcess(dir.path, pid: "456")
        let c1 = try p1.counter("c"), c2 = try p2.counter("c")
        let collector = testCollector(dir.path)
        #expect(collector.collect().families.value("c_total") == 0)
        c1.add(1); c2.add(2)
        let r = collector.collect()
        #expect(r.family("c")?.kind == .counter)
        #expect(r.families.value("c_total") == 3)
        #expect(r.problems.isEmpty)
    }

    // test_summary_adds
    @Test func summariesOfTwoProcessesAdd() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let s1 = try FakeProcess(dir.path, pid: "123").summary("s"), s2 = try FakeProcess(dir.path, pid: "456").summary("s")
        let collector = testCollector(dir.path)
        #expect(collector.collect().families.value("s_count") == 0)
        #expect(collector.collect().families.value("s_sum") == 0)
        s1.count.add(1); s1.sum.add(1); s2.count.add(1); s2.sum.add(2)
        let f = try #require(collector.collect().family("s"))
        #expect(f.kind == .summary)
        #expect(f.value("s_count") == 2)
        #expect(f.value("s_sum") == 3)
    }

    // test_histogram_adds
    @Test func histogramsOfTwoProcessesAdd() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let h1 = try FakeProcess(dir.path, pid: "123").histogram("h"), h2 = try FakeProcess(dir.path, pid: "456").histogram("h")
        let collector = testCollector(dir.path)
        let before = try #require(collector.collect().family("h"))
        #expect(before.value("h_count") == 0)
        #expect(before.value("h_sum") == 0)
        #expect(before.value("h_bucket", ["le": "5.0"]) == 0)
        h1.observe(1); h2.observe(2)
        let f = try #require(collector.collect().family("h"))
        #expect(f.value("h_count") == 2)
        #expect(f.value("h_sum") == 3)
        #expect(f.value("h_bucket", ["le": "5.0"]) == 2)
    }

    /// One row of test_gauge_* : what pid 123 and pid 456 set, the merged samples, and the
    /// samples after `mark_process_dead(123)` (which deletes only gauge_live*_123.db).
    struct GaugeCase: CustomTestStringConvertible, Sendable {
        var mode: GaugeMode
        var first: Double   // set by pid 123
        var second: Double  // set by pid 456
        var merged: [[String: String]: Double]
        var afterDead: [[String: String]: Double]
        var testDescription: String { mode.rawValue }
    }

    static let gaugeCases: [GaugeCase] = [
        GaugeCase(mode: .all, first: 1, second: 2, merged: [["pid": "123"]: 1, ["pid": "456"]: 2], afterDead: [["pid": "123"]: 1, ["pid": "456"]: 2]),
        GaugeCase(mode: .liveall, first: 1, second: 2, merged: [["pid": "123"]: 1, ["pid": "456"]: 2], afterDead: [["pid": "456"]: 2]),
        GaugeCase(mode: .min, first: 1, second: 2, merged: [[:]: 1], afterDead: [[:]: 1]),
        GaugeCase(mode: .livemin, first: 1, second: 2, merged: [[:]: 1], afterDead: [[:]: 2]),
        GaugeCase(mode: .max, first: 1, second: 2, merged: [[:]: 2], afterDead: [[:]: 2]),
        GaugeCase(mode: .livemax, first: 2, second: 1, merged: [[:]: 2], afterDead: [[:]: 1]),
        GaugeCase(mode: .sum, first: 1, second: 2, merged: [[:]: 3], afterDead: [[:]: 3]),
        GaugeCase(mode: .livesum, first: 1, second: 2, merged: [[:]: 3], afterDead: [[:]: 2]),
        // test_gauge_mostrecent: g2.set(2) then g1.set(1): the later set (pid 123) wins.
        GaugeCase(mode: .mostrecent, first: 1, second: 2, merged: [[:]: 1], afterDead: [[:]: 1]),
        GaugeCase(mode: .livemostrecent, first: 1, second: 2, merged: [[:]: 1], afterDead: [[:]: 2]),
    ]

    // test_gauge_all, _liveall, _min, _livemin, _max, _livemax, _sum, _livesum, _mostrecent,
    // _livemostrecent
    @Test(arguments: gaugeCases)
    func gaugeModesMergeAndMarkDeadRemovesOnlyLiveFiles(_ c: GaugeCase) throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let p1 = try FakeProcess(dir.path, pid: "123"), p2 = try FakeProcess(dir.path, pid: "456")
        defer { p1.close(); p2.close() }
        let g1 = try p1.gauge("g", mode: c.mode), g2 = try p2.gauge("g", mode: c.mode)
        let collector = testCollector(dir.path)
        if c.mode.isMostRecent {
            #expect(collector.collect().family("g")?.samples.isEmpty == true, "never-set mostrecent gauges are omitted")
            g2.set(c.second, timestamp: 1_700_000_000)
            g1.set(c.first, timestamp: 1_700_000_001)
        } else {
            // Both 0 before any set.
            for sample in collector.collect().family("g")?.samples ?? [] { #expect(sample.value == 0) }
            g1.set(c.first); g2.set(c.second)
        }
        func samples() throws -> [[String: String]: Double] {
            let f = try #require(collector.collect().family("g"))
            #expect(f.kind == .gauge)
            var d: [[String: String]: Double] = [:]
            for s in f.samples { d[labelDictionary(s.labels)] = s.value }
            #expect(d.count == f.samples.count, "no duplicate series")
            return d
        }
        #expect(try samples() == c.merged)
        // mark_process_dead(123): remove exactly gauge_live*_123.db, as prometheus_client does.
        for mode in GaugeMode.allCases where mode.isLive {
            try? FileManager.default.removeItem(atPath: dir.file("gauge_\(mode.rawValue)_123.db"))
        }
        #expect(try samples() == c.afterDead)
    }

    // test_collect: counter, gauge and histogram with labels a..d across pids 0 and 1.
    @Test func collectWithLabelsAcrossTwoProcesses() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let labels = ["a", "b", "c", "d"].map { Label($0, $0) }
        let p0 = try FakeProcess(dir.path, pid: "0"), p1 = try FakeProcess(dir.path, pid: "1")
        try p0.counter("c", labels: labels).add(1)
        try p1.counter("c", labels: labels).add(1)
        try p0.gauge("g", mode: .all, labels: labels).set(1)
        try p1.gauge("g", mode: .all, labels: labels).set(1)
        try p0.histogram("h", labels: labels).observe(1)
        try p1.histogram("h", labels: labels).observe(5)
        let r = testCollector(dir.path).collect()
        let abcd = ["a": "a", "b": "b", "c": "c", "d": "d"]

        let c = try #require(r.family("c"))
        #expect(c.samples == [Sample(name: "c_total", labels: labels, value: 2)])

        let g = try #require(r.family("g"))
        #expect(g.samples.count == 2)
        #expect(g.value("g", abcd.merging(["pid": "0"]) { $1 }) == 1)
        #expect(g.value("g", abcd.merging(["pid": "1"]) { $1 }) == 1)

        // Python's list is h_sum, the 15 buckets, h_count; ours puts _sum last (the order
        // MetricFamilySnapshot documents). The values are Python's.
        let bucketValues: [Double] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
        var expected = zip(defaultBucketLabels, bucketValues).map {
            Sample(name: "h_bucket", labels: labels + [Label("le", $0.0)], value: $0.1)
        }
        expected.append(Sample(name: "h_count", labels: labels, value: 2))
        expected.append(Sample(name: "h_sum", labels: labels, value: 6))
        #expect(try #require(r.family("h")).samples == expected)
    }

    // test_collect_histogram_ordering: label sets are not interleaved.
    @Test func histogramLabelSetsAreNotInterleaved() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let p0 = try FakeProcess(dir.path, pid: "0"), p1 = try FakeProcess(dir.path, pid: "1")
        try p0.histogram("h", labels: [Label("view", "view1")]).observe(1)
        try p1.histogram("h", labels: [Label("view", "view1")]).observe(1)
        try p1.histogram("h", labels: [Label("view", "view2")]).observe(1)
        let samples = try #require(testCollector(dir.path).collect().family("h")).samples
        let views = samples.map { labelDictionary($0.labels)["view"] ?? "" }
        #expect(views == Array(repeating: "view1", count: 17) + Array(repeating: "view2", count: 17))
        // Within each label set: buckets ascending, then _count, then _sum.
        let names = samples.prefix(17).map(\.name)
        #expect(names == Array(repeating: "h_bucket", count: 15) + ["h_count", "h_sum"])
        #expect(samples.first { $0.name == "h_count" && labelDictionary($0.labels)["view"] == "view1" }?.value == 2)
    }

    // test_collect_preserves_help
    @Test func helpTextsArePreserved() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let p = try FakeProcess(dir.path, pid: "123")
        _ = try p.counter("c", help: "c help")
        _ = try p.gauge("g", mode: .all, help: "g help")
        _ = try p.histogram("h", help: "h help")
        let r = testCollector(dir.path).collect()
        #expect(r.family("c")?.help == "c help")
        #expect(r.family("g")?.help == "g help")
        #expect(r.family("h")?.help == "h help")
    }

    // test_merge_no_accumulate
    @Test func mergeWithoutAccumulateKeepsBucketsPerBucketAndMakesNoCount() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let labels = ["a", "b", "c", "d"].map { Label($0, $0) }
        try FakeProcess(dir.path, pid: "0").histogram("h", labels: labels).observe(1)
        try FakeProcess(dir.path, pid: "1").histogram("h", labels: labels).observe(5)
        let files = try #require(try? MultiProcessCollector.listMetricFiles(in: dir.path).get())
        let out = MultiProcessCollector.merge(files: files, accumulate: false)
        let bucketValues: [Double] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0]
        var expected = zip(defaultBucketLabels, bucketValues).map {
            Sample(name: "h_bucket", labels: labels + [Label("le", $0.0)], value: $0.1)
        }
        expected.append(Sample(name: "h_sum", labels: labels, value: 6))
        #expect(out.families.first { $0.name == "h" }?.samples == expected)
    }

    // test_missing_gauge_file_during_merge
    @Test func missingLiveGaugeFilesAreSkippedSilently() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let out = MultiProcessCollector.merge(files: [dir.file("gauge_liveall_9999999.db"), dir.file("gauge_livesum_9999999.db")])
        #expect(out.families.isEmpty)
        #expect(out.problems.isEmpty)
    }

    // MARK: extra cases (python-format.md §4, §6)

    @Test func missingFileOfAnotherTypeIsReportedAsVanished() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let out = MultiProcessCollector.merge(files: [dir.file("counter_9999999.db"), dir.file("gauge_max_9999999.db")])
        #expect(out.problems.map(\.reasonCode.rawValue) == ["vanished", "vanished"])
        #expect(out.problems.map(\.path) == [dir.file("counter_9999999.db"), dir.file("gauge_max_9999999.db")])
    }

    @Test func mostRecentLabelSetsNeverSetAreOmittedButTheFamilyStays() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let p1 = try FakeProcess(dir.path, pid: "123"), p2 = try FakeProcess(dir.path, pid: "456")
        defer { p1.close(); p2.close() }
        _ = try p1.gauge("g", mode: .mostrecent, labels: [Label("k", "never")])
        _ = try p2.gauge("g", mode: .mostrecent, labels: [Label("k", "never")])
        try p1.gauge("g", mode: .mostrecent, labels: [Label("k", "set")]).set(7, timestamp: 5)
        // An entry with timestamp 0 never wins, even if its value is newer.
        try p2.gauge("g", mode: .mostrecent, labels: [Label("k", "set")]).set(9)
        let f = try #require(testCollector(dir.path).collect().family("g"))
        #expect(f.samples == [Sample(name: "g", labels: [Label("k", "set")], value: 7)])
    }

    @Test func mostRecentTieIsWonByTheFirstFileInNameOrder() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let p1 = try FakeProcess(dir.path, pid: "123"), p2 = try FakeProcess(dir.path, pid: "456")
        defer { p1.close(); p2.close() }
        try p2.gauge("g", mode: .mostrecent).set(2, timestamp: 10)
        try p1.gauge("g", mode: .mostrecent).set(1, timestamp: 10)
        #expect(testCollector(dir.path).collect().families.value("g") == 1)
    }

    @Test func minAndMaxAreSeededByNeverSetChildrenAtZero() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let p1 = try FakeProcess(dir.path, pid: "123"), p2 = try FakeProcess(dir.path, pid: "456")
        defer { p1.close(); p2.close() }
        try p1.gauge("lo", mode: .min).set(5)
        _ = try p2.gauge("lo", mode: .min)
        try p1.gauge("hi", mode: .max).set(-5)
        _ = try p2.gauge("hi", mode: .max)
        let r = testCollector(dir.path).collect()
        #expect(r.families.value("lo") == 0)
        #expect(r.families.value("hi") == 0)
    }

    @Test func userPidLabelIsOverwrittenInAllModesAndStrippedInOthers() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let p1 = try FakeProcess(dir.path, pid: "123"), p2 = try FakeProcess(dir.path, pid: "456")
        defer { p1.close(); p2.close() }
        try p1.gauge("a", mode: .all, labels: [Label("pid", "mine"), Label("x", "1")]).set(4)
        try p1.gauge("s", mode: .livesum, labels: [Label("pid", "u1")]).set(1)
        try p2.gauge("s", mode: .livesum, labels: [Label("pid", "u2")]).set(2)
        let r = testCollector(dir.path).collect()
        #expect(r.family("a")?.samples == [Sample(name: "a", labels: [Label("pid", "123"), Label("x", "1")], value: 4)])
        #expect(r.family("s")?.samples == [Sample(name: "s", labels: [], value: 3)])
    }

    @Test func nameUsedWithTwoTypesTakesTheFirstFilesType() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let p1 = try FakeProcess(dir.path, pid: "123"), p2 = try FakeProcess(dir.path, pid: "456")
        defer { p1.close(); p2.close() }
        try p1.gauge("dup", mode: .all, help: "gauge help").set(5)
        try p2.counter("dup", help: "counter help").add(2)
        // counter_456.db sorts before gauge_all_123.db: the family is a counter, its help the
        // counter's, and the gauge sample is summed with its pid label.
        let f = try #require(testCollector(dir.path).collect().family("dup"))
        #expect(f.kind == .counter)
        #expect(f.help == "counter help")
        #expect(f.samples == [
            Sample(name: "dup_total", labels: [], value: 2),
            Sample(name: "dup", labels: [Label("pid", "123")], value: 5),
        ].sorted { $0.labels.count < $1.labels.count })
    }

    @Test func bucketBoundsSpelledDifferentlyMergeByValue() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let h1 = try FakeProcess(dir.path, pid: "1").histogram("h", bounds: [1, .infinity], leLabels: ["1", "+Inf"])
        let h2 = try FakeProcess(dir.path, pid: "2").histogram("h", bounds: [1, .infinity], leLabels: ["1.0", "inf"])
        h1.observe(0.5); h2.observe(0.5); h2.observe(3)
        let f = try #require(testCollector(dir.path).collect().family("h"))
        #expect(f.samples == [
            Sample(name: "h_bucket", labels: [Label("le", "1.0")], value: 2),
            Sample(name: "h_bucket", labels: [Label("le", "+Inf")], value: 3),
            Sample(name: "h_count", labels: [], value: 3),
            Sample(name: "h_sum", labels: [], value: 4),
        ])
    }

    /// prometheus_client parses keys with `json.loads`, so keys spelled differently (label
    /// order, whitespace, escapes, help text) that parse to the same family, sample and labels
    /// are one series; whichever spelling comes first.
    @Test func keysSpelledDifferentlyAreOneSeriesInEitherOrder() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        func write(_ name: String, _ key: String, _ value: Double) throws {
            try CollectorTests.write(CollectorTests.pythonFile([key], value: value), to: dir.file(name))
        }
        // Family c: Python's own spelling first; family d: an unusual spelling first.
        try write("counter_1.db", #"["c", "c_total", {"a": "x", "b": "y"}, "h"]"#, 1)
        try write("counter_2.db", #"["c", "c_total", {"b": "y", "a": "x"}, "other help"]"#, 2)
        try write("counter_3.db", #"[ "c" , "c_total",{"a":"\u0078", "b": "y"}, "h"]"#, 4)
        try write("counter_4.db", #"["c", "c_total", {"a": "x", "b": "y"}, "h\/"]"#, 8)
        try write("counter_5.db", #"["d", "d_total", {"b": "y", "a": "x"}, "first"]"#, 1)
        try write("counter_6.db", #"["d", "d_total", {"a": "x", "b": "y"}, "second"]"#, 2)
        try write("counter_7.db", #"["d", "d_total", {"a": "x", "b": "z"}, "second"]"#, 4)
        // A repeated label name is not a key (json.loads keeps the last; we refuse the file).
        try write("counter_8.db", #"["d", "d_total", {"a": "x", "a": "y"}, "second"]"#, 100)
        let log = ReportLog()
        let r = testCollector(dir.path, log: log).collect()
        let c = try #require(r.family("c"))
        #expect(c.help == "h")
        #expect(c.samples == [Sample(name: "c_total", labels: [Label("a", "x"), Label("b", "y")], value: 15)])
        let d = try #require(r.family("d"))
        #expect(d.help == "first")
        #expect(d.samples == [
            Sample(name: "d_total", labels: [Label("a", "x"), Label("b", "y")], value: 3),
            Sample(name: "d_total", labels: [Label("a", "x"), Label("b", "z")], value: 4),
        ])
        #expect(r.problems.map(\.path) == [dir.file("counter_8.db")])
        #expect(r.problems.map(\.reasonCode.rawValue) == ["invalid_key"])
    }

    @Test func escapedLabelValuesRoundTrip() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        let tricky = "caf\u{e9} \u{1F600} \u{7f} \u{1} / q\"uo\\te\nnl\t"
        let p = try FakeProcess(dir.path, pid: "123")
        try p.counter("c", help: "help \u{fc}\n", labels: [Label("a", tricky), Label("\u{e9}", "x")]).add(1)
        let f = try #require(testCollector(dir.path).collect().family("c"))
        #expect(f.help == "help \u{fc}\n")
        #expect(f.samples == [Sample(name: "c_total", labels: [Label("a", tricky), Label("\u{e9}", "x")], value: 1)])
    }

    @Test func outputIsSortedAndDeterministic() throws {
        let dir = TempDirectory("merge"); defer { dir.remove() }
        for pid in ["7", "30", "200"] {
            let p = try FakeProcess(dir.path, pid: pid)
            for name in ["zeta", "alpha", "mid"] {
                for v in ["b", "a", "c"] { try p.counter(name, labels: [Label("k", v)]).add(1) }
            }
        }
        let collector = testCollector(dir.path)
        let a = collector.collect().families, b = collector.collect().families
        #expect(a == b)
        #expect(a.map(\.name) == ["alpha", "mid", "zeta"])
        #expect(a[0].samples.map { $0.labels[0].value } == ["a", "b", "c"])
        #expect(a[0].samples.allSatisfy { $0.value == 3 })
    }
}
