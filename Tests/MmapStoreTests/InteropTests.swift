import Foundation
import MmapStore
import Testing
import TestSupport

/// Directories written by one side are read by the other: Swift → Python's
/// MultiProcessCollector, Python → MetricFileReader, and reopening each other's files.
@Suite("Interop with prometheus_client 0.26.0")
struct InteropTests {
    static let buckets: [(bound: Double, le: String)] = [(0.1, "0.1"), (1.0, "1.0"), (.infinity, "+Inf")]

    @Test("Python's MultiProcessCollector merges a directory MmapStore wrote")
    func pythonCollectsOurDirectory() throws {
        let dir = TempDirectory("interop-swift")
        defer { dir.remove() }
        let first: [MetricOp] = [
            MetricOp(kind: .counter, name: "req", help: "Requests", labelNames: ["method"], labels: ["GET"], op: "inc", amount: 2),
            MetricOp(kind: .histogram(Self.buckets), name: "lat", help: "Latency", op: "observe", amount: 0.05),
            MetricOp(kind: .histogram(Self.buckets), name: "lat", help: "Latency", op: "observe", amount: 3),
            MetricOp(kind: .gauge(.livesum), name: "inprog", help: "In progress", op: "inc", amount: 3),
            MetricOp(kind: .gauge(.all), name: "temp", help: "Temperature", op: "set", amount: 20.5),
            MetricOp(kind: .summary, name: "sz", help: "Size", op: "observe", amount: 4),
            MetricOp(kind: .counter, name: "uni", help: "h\u{e9}", labelNames: ["\u{e9}", "e\u{301}"], labels: ["\u{1F600}", "\"\\\n"], op: "inc", amount: 1),
        ]
        let second: [MetricOp] = [
            MetricOp(kind: .counter, name: "req", help: "Requests", labelNames: ["method"], labels: ["GET"], op: "inc", amount: 3),
            MetricOp(kind: .counter, name: "req", help: "Requests", labelNames: ["method"], labels: ["POST"]),
            MetricOp(kind: .gauge(.livesum), name: "inprog", help: "In progress", op: "inc", amount: 1),
            MetricOp(kind: .gauge(.all), name: "temp", help: "Temperature", op: "set", amount: 19),
            MetricOp(kind: .histogram(Self.buckets), name: "lat", help: "Latency", op: "observe", amount: 0.7),
        ]
        for (pid, ops) in [("123", first), ("456", second)] {
            let store = try ProcessStore(directory: dir.path, identity: .fixed(pid))
            try apply(ops, to: store)
            store.close()
        }
        let got = Set(try pythonCollect(dir.path))
        let expected: Set<PySample> = [
            PySample(family: "req", type: "counter", name: "req_total", labels: [["method", "GET"]], value: 5),
            PySample(family: "req", type: "counter", name: "req_total", labels: [["method", "POST"]], value: 0),
            PySample(family: "lat", type: "histogram", name: "lat_sum", labels: [], value: (0.05 + 3) + 0.7),
            PySample(family: "lat", type: "histogram", name: "lat_bucket", labels: [["le", "0.1"]], value: 1),
            PySample(family: "lat", type: "histogram", name: "lat_bucket", labels: [["le", "1.0"]], value: 2),
            PySample(family: "lat", type: "histogram", name: "lat_bucket", labels: [["le", "+Inf"]], value: 3),
            PySample(family: "lat", type: "histogram", name: "lat_count", labels: [], value: 3),
            PySample(family: "inprog", type: "gauge", name: "inprog", labels: [], value: 4),
            PySample(family: "temp", type: "gauge", name: "temp", labels: [["pid", "123"]], value: 20.5),
            PySample(family: "temp", type: "gauge", name: "temp", labels: [["pid", "456"]], value: 19),
            PySample(family: "sz", type: "summary", name: "sz_count", labels: [], value: 1),
            PySample(family: "sz", type: "summary", name: "sz_sum", labels: [], value: 4),
            PySample(family: "uni", type: "counter", name: "uni_total", labels: [["e\u{301}", "\"\\\n"], ["\u{e9}", "\u{1F600}"]], value: 1),
        ]
        #expect(got.count == expected.count)
        #expect(got.subtracting(expected).isEmpty, "unexpected: \(got.subtracting(expected))")
        #expect(expected.subtracting(got).isEmpty, "missing: \(expected.subtracting(got))")
    }

    @Test("MetricFileReader reads a directory prometheus_client wrote, with Python's own keys and values")
    func weReadPythonsDirectory() throws {
        let dir = TempDirectory("interop-py")
        defer { dir.remove() }
        let names = ["b", "a", "B", "\u{e9}", "e\u{301}", "\u{1F600}"]
        var spec: [[String: Any]] = [
            MetricOp(kind: .counter, name: "c", help: "C \u{fc}", labelNames: ["a"], labels: ["x"], op: "inc", amount: 2).pythonSpec,
            MetricOp(kind: .counter, name: "sorted", labelNames: names, labels: ["\u{7f}", "\u{1}", "/", "\t", "\u{10FFFF}", "\u{e9}"], op: "inc", amount: 0.5).pythonSpec,
            MetricOp(kind: .histogram(Self.buckets), name: "h", labelNames: ["p"], labels: ["/x"], op: "observe", amount: 0.5).pythonSpec,
            MetricOp(kind: .gauge(.mostrecent), name: "recent", op: "set", amount: 42).pythonSpec,
            ["op": "pid", "pid": "456"],
            MetricOp(kind: .counter, name: "c", help: "C \u{fc}", labelNames: ["a"], labels: ["x"], op: "inc", amount: 3).pythonSpec,
            MetricOp(kind: .summary, name: "s", op: "observe", amount: 7).pythonSpec,
        ]
        spec.append(MetricOp(kind: .gauge(.livesum), name: "g", op: "dec", amount: 1.5).pythonSpec)
        try pythonWrite(dir.path, pid: "123", spec)
        let files = dbNames(dir)
        // After the pid changes, prometheus_client re-creates every known series (at 0) in the
        // new pid's files, as after a fork.
        #expect(files == ["counter_123.db", "counter_456.db", "gauge_livesum_456.db", "gauge_mostrecent_123.db",
                          "gauge_mostrecent_456.db", "histogram_123.db", "histogram_456.db", "summary_456.db"])
        let python = try pythonEntries(files.map(dir.file))
        var total = 0
        for name in files {
            let decoded = try MetricFileReader.decodeAll(path: dir.file(name))
            #expect(decoded.writer == .python)
            let theirs = python[name] ?? []
            #expect(decoded.entries.count == theirs.count, "\(name)")
            for (ours, their) in zip(decoded.entries, theirs) {
                #expect(ours.key.description == their.key, "\(name): key re-encodes to Python's bytes")
                #expect(ours.value == their.value && ours.timestamp == their.timestamp, "\(name) \(their.key)")
                total += 1
            }
        }
        #expect(total == 2 + 2 + 1 + 1 + 1 + 4 + 4 + 2)
        // Hand-derived facts about what was written.
        let c123 = try decodedValues(dir.file("counter_123.db"))
        #expect(c123.count == 2)
        #expect(c123[#"["c", "c_total", {"a": "x"}, "C \u00fc"]"#] == 2)
        let labels = try MetricFileReader.decodeAll(path: dir.file("counter_123.db")).entries[1].key.labels
        // Code-point order: B < a < b < e + U+0301 < U+00E9 < U+1F600.
        #expect(labels.map { Array($0.name.unicodeScalars) } ==
                ["B", "a", "b", "e\u{301}", "\u{e9}", "\u{1F600}"].map { Array($0.unicodeScalars) })
        #expect(labels.first { $0.name == "a" }?.value == "\u{1}")
        #expect(labels.first { $0.name.unicodeScalars.elementsEqual("\u{1F600}".unicodeScalars) }?.value == "\u{e9}")
        let recent = try MetricFileReader.decodeAll(path: dir.file("gauge_mostrecent_123.db")).entries
        #expect(recent.count == 1 && recent[0].value == 42 && recent[0].timestamp > 1_700_000_000)
        #expect(try decodedValues(dir.file("gauge_livesum_456.db")) == [#"["g", "g", {}, "h"]"#: -1.5])
        #expect(try decodedValues(dir.file("counter_456.db")).values.sorted() == [0, 3])
        #expect(try decodedValues(dir.file("histogram_456.db")).values.allSatisfy { $0 == 0 })
    }

    @Test("a store reopening a Python-written file of its pid continues its values, and Python continues ours")
    func reopenEachOthersFiles() throws {
        let dir = TempDirectory("interop-reopen")
        defer { dir.remove() }
        let c = MetricOp(kind: .counter, name: "c", help: "h", labelNames: ["a"], labels: ["x"], op: "inc", amount: 5)
        try pythonWrite(dir.path, pid: "777", [c.pythonSpec])
        #expect(try MetricFileReader.decodeAll(path: dir.file("counter_777.db")).writer == .python)

        let store = try ProcessStore(directory: dir.path, identity: .fixed("777"))
        let h = try store.series(kind: .counter, key: c.seriesKeys[0])
        #expect(h.value == 5)
        h.add(1)
        let only = try store.series(kind: .counter, key: SeriesKey(family: "swift", sample: "swift_total", labels: [], help: "s"))
        only.add(9)
        #expect(store.openPaths == [dir.file("counter_777.db")])
        store.close()
        #expect(dbNames(dir) == ["counter_777.db"])
        let afterSwift = try MetricFileReader.decodeAll(path: dir.file("counter_777.db"))
        #expect(afterSwift.writer == .swift(version: FileFormat.version))
        #expect(afterSwift.entries.map(\.value) == [6, 9])

        var again = c
        again.amount = 2
        try pythonWrite(dir.path, pid: "777", [again.pythonSpec])
        let python = try pythonEntries([dir.file("counter_777.db")])["counter_777.db"] ?? []
        #expect(python.map(\.key) == [c.seriesKeys[0].description, #"["swift", "swift_total", {}, "s"]"#])
        #expect(python.map(\.value) == [8, 9])
        #expect(try MetricFileReader.decodeAll(path: dir.file("counter_777.db")).entries.map(\.value) == [8, 9])
    }
}
