import Foundation
import MmapStore
import MultiprocessCollector
import PromExposition
import PromMetrics
import SystemCalls
import Testing
import TestSupport

/// Exemplars written by real processes (`prom-multiproc-testworker` exemplar modes,
/// Sources/prom-multiproc-testworker/ExemplarModes.swift): the most recent one per sample
/// across processes, read by prometheus_client's strict OpenMetrics parser and by protoc,
/// readable after a writer is killed, and invisible to prometheus_client's collector.
@Suite(.serialized) struct ExemplarProcessTests {
    /// What each worker writes: (trace id, value, timestamp). Counter `exemplar_requests_total`
    /// is incremented by the value and histogram `exemplar_latency_seconds` (buckets 0.1, 1,
    /// 10) observes it, both on route `/a` with the exemplar.
    static let writes: [(trace: String, value: Double, time: Double)] = [
        ("t1", 0.05, 1000), ("t3", 5, 3000), ("t2", 0.5, 2000), ("t4", 0.0625, 4000), ("t0", 0.08, 500),
    ]

    /// The expected exemplars, from `writes`: the latest of all for the counter, the latest of
    /// those in each bucket (no observation lands above 10).
    static let expected: [String: (trace: String, value: Double, time: Double)] = [
        "exemplar_requests_total": ("t4", 0.0625, 4000),
        "exemplar_latency_seconds_bucket 0.1": ("t4", 0.0625, 4000),
        "exemplar_latency_seconds_bucket 1.0": ("t2", 0.5, 2000),
        "exemplar_latency_seconds_bucket 10.0": ("t3", 5, 3000),
    ]

    /// Runs one `exemplar-write` worker per entry of `writes`, one after the other.
    func write(_ dir: TempDirectory) throws {
        for w in Self.writes {
            let r = try run(executable("prom-multiproc-testworker"),
                            ["exemplar-write", dir.path, "/a", w.trace, String(w.value), String(w.time)])
            try #require(r.status == 0, "exemplar-write failed: \(r.stderr)")
        }
    }

    func collect(_ dir: TempDirectory) -> CollectResult {
        MultiProcessCollector(directory: dir.path, includeSelfMetrics: false, reporter: ProblemReporter { _ in }).collect()
    }

    @Test(.timeLimit(.minutes(2)))
    func theMostRecentExemplarAcrossProcessesWinsPerSeriesAndBucket() throws {
        let dir = TempDirectory("pmp-exemplar-procs"); defer { dir.remove() }
        try write(dir)
        #expect(dir.names().filter { $0.hasPrefix("exemplars_") && $0.hasSuffix(".pmx") }.count == Self.writes.count)
        let result = collect(dir)
        #expect(result.problems.isEmpty, "\(result.problems)")
        let counter = try #require(result.family("exemplar_requests")?.samples.first { $0.name == "exemplar_requests_total" })
        #expect(counter.value == Self.writes.map(\.value).reduce(0, +))
        #expect(counter.exemplar == RecordedExemplar(labels: [Label("trace_id", "t4")], value: 0.0625, timestamp: 4000))
        let buckets = try #require(result.family("exemplar_latency_seconds")).samples.filter { $0.name == "exemplar_latency_seconds_bucket" }
        func bucket(_ le: String) -> RecordedExemplar? { buckets.first { $0.labels.contains(Label("le", le)) }?.exemplar }
        #expect(bucket("0.1") == RecordedExemplar(labels: [Label("trace_id", "t4")], value: 0.0625, timestamp: 4000))
        #expect(bucket("1.0") == RecordedExemplar(labels: [Label("trace_id", "t2")], value: 0.5, timestamp: 2000))
        #expect(bucket("10.0") == RecordedExemplar(labels: [Label("trace_id", "t3")], value: 5, timestamp: 3000))
        #expect(bucket("+Inf") == nil)
    }

    /// prometheus_client's strict OpenMetrics parser reads every exemplar back, on the sample
    /// it belongs to; the text format 0.0.4 has none.
    @Test(.timeLimit(.minutes(2)))
    func strictOpenMetricsParserReadsTheExemplars() throws {
        let dir = TempDirectory("pmp-exemplar-om"); defer { dir.remove() }
        try write(dir)
        let families = collect(dir).families
        let body = String(decoding: Exposition.render(families, format: .openMetrics), as: UTF8.self)
        let r = try runPython("om_exemplars.py", [], input: body)
        try #require(r.status == 0, "strict parser: \(r.stderr)\n\(body)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        var seen: [String: (trace: String, value: Double, time: Double)] = [:]
        for e in parsed {
            let name = try #require(e["name"] as? String)
            let labels = try #require(e["labels"] as? [String: String])
            let exemplar = try #require(e["exemplar"] as? [String: Any])
            let key = labels["le"].map { name + " " + $0 } ?? name
            #expect(labels["route"] == "/a")
            seen[key] = (try #require((exemplar["labels"] as? [String: String])?["trace_id"]),
                         try #require((exemplar["value"] as? NSNumber)?.doubleValue),
                         try #require((exemplar["timestamp"] as? NSNumber)?.doubleValue))
        }
        #expect(seen.keys.sorted() == Self.expected.keys.sorted())
        for (key, want) in Self.expected {
            #expect(seen[key].map { "\($0)" } == "\(want)", "\(key)")
        }
        let text = String(decoding: Exposition.render(families, format: .prometheusText), as: UTF8.self)
        #expect(!text.contains("trace_id"), "text 0.0.4 must not carry exemplars:\n\(text)")
    }

    /// protoc, with client_model's metrics.proto, finds the exemplar in the `Counter` message
    /// and in the `Bucket` it belongs to.
    @Test(.timeLimit(.minutes(2)))
    func protobufCarriesTheExemplarInCounterAndBucket() throws {
        let dir = TempDirectory("pmp-exemplar-pb"); defer { dir.remove() }
        try write(dir)
        let families = collect(dir).families.filter { $0.name.hasPrefix("exemplar_") }
        let messages = try #require(ExpositionProtobufTests.split(Exposition.render(families, format: .protobuf)))
        #expect(messages.count == 2)
        func lines(_ text: String) -> [String] { text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) } }
        func exemplar(_ trace: String, _ value: String, _ seconds: Int) -> [String] {
            ["exemplar {", "label {", "name: \"trace_id\"", "value: \"\(trace)\"", "}", "value: \(value)", "timestamp {",
             "seconds: \(seconds)", "}", "}"]
        }
        let decoded = try messages.map { lines(try ExpositionProtobufTests.protoc($0)) }
        let histogram = try #require(decoded.first { $0.contains("name: \"exemplar_latency_seconds\"") })
        let counter = try #require(decoded.first { $0.contains("name: \"exemplar_requests_total\"") })
        // Counter { value: 5.6125 exemplar {...} }
        let counterAt = try #require(counter.firstIndex(of: "counter {"))
        #expect(Array(counter[(counterAt + 2)...].prefix(10)) == exemplar("t4", "0.0625", 4000), "\(counter)")
        // Each bucket: cumulative_count, upper_bound, then its exemplar.
        for (bound, trace, value, seconds) in [("0.1", "t4", "0.0625", 4000), ("1", "t2", "0.5", 2000), ("10", "t3", "5", 3000)] {
            let at = try #require(histogram.firstIndex(of: "upper_bound: \(bound)"), "\(histogram)")
            #expect(Array(histogram[(at + 1)...].prefix(10)) == exemplar(trace, value, seconds), "bucket \(bound): \(histogram)")
        }
        let inf = try #require(histogram.firstIndex(of: "upper_bound: inf"))
        #expect(histogram[inf + 1] == "}", "the +Inf bucket has no exemplar")
        // The wire format itself: field 2 of Counter is a message (the exemplar).
        let raw = try ExpositionProtobufTests.protoc(try #require(messages.first { lines(try ExpositionProtobufTests.protoc($0)) == counter }), raw: true)
        #expect(lines(raw).contains("2 {"), "\(raw)")
    }

    /// prometheus_client's MultiProcessCollector never sees the exemplar files (it globs
    /// `*.db`) and merges the same values as ours.
    @Test(.timeLimit(.minutes(2)))
    func prometheusClientCollectorStillReadsTheDirectory() throws {
        let dir = TempDirectory("pmp-exemplar-py"); defer { dir.remove() }
        try write(dir)
        let python = try pythonCollect(dir.path)
        func value(_ name: String, _ labels: [String: String]) -> String? {
            python.first { $0.name == name && $0.labels == labels }?.value
        }
        let ours = collect(dir)
        let total = Self.writes.map(\.value).reduce(0, +)
        #expect(value("exemplar_requests_total", ["route": "/a"]) == valueText(total))
        #expect(value("exemplar_latency_seconds_sum", ["route": "/a"]) == valueText(total))
        #expect(value("exemplar_latency_seconds_bucket", ["route": "/a", "le": "0.1"]) == valueText(3))
        var compared = 0
        for f in ours.families where f.name.hasPrefix("exemplar_") {
            for s in f.samples {
                #expect(value(s.name, labelDictionary(s.labels)) == valueText(s.value), "\(s.name) \(s.labels)")
                compared += 1
            }
        }
        #expect(compared == 1 + 4 + 2)
    }

    /// Compaction folds the dead workers' `*.db` files and leaves their exemplar files alone:
    /// the values are the same after it, and so are the exemplars.
    @Test(.timeLimit(.minutes(2)))
    func compactionKeepsTheExemplarsOfDeadWorkers() throws {
        let dir = TempDirectory("pmp-exemplar-compact"); defer { dir.remove() }
        try write(dir)
        let before = collect(dir).families.filter { $0.name.hasPrefix("exemplar_") }
        // A child another test spawns may hold copies of our descriptors for a moment: retry.
        var report = try Compactor.compact(directory: dir.path)
        for _ in 1..<5 where !report.kept.isEmpty { report = try Compactor.compact(directory: dir.path) }
        #expect(report.folded.count == 2 * Self.writes.count, "\(report.folded) kept \(report.kept)")
        #expect(dir.names().filter { $0.hasSuffix(".pmx") }.count == Self.writes.count)
        #expect(dir.names().filter { $0.hasSuffix(".db") }.sorted() == ["counter_archive.db", "histogram_archive.db"])
        let after = collect(dir).families.filter { $0.name.hasPrefix("exemplar_") }
        #expect(after == before)
        #expect(after.first { $0.name == "exemplar_requests" }?.samples.first?.exemplar?.labels == [Label("trace_id", "t4")])
    }

    /// A writer killed with SIGKILL while it writes exemplars as fast as it can leaves a file
    /// the collector reads without a problem, with a complete exemplar (never a torn one).
    @Test(.timeLimit(.minutes(2)))
    func aKilledWriterLeavesAReadableFile() throws {
        let dir = TempDirectory("pmp-exemplar-kill"); defer { dir.remove() }
        let child = try LineChild(executable("prom-multiproc-testworker"), ["exemplar-loop", dir.path, "/k"])
        let ready = try #require(child.readLine(), "no ready line")
        #expect(ready.hasPrefix("ready "))
        usleep(300_000)
        kill(child.pid, SIGKILL)
        _ = child.finish()
        let result = collect(dir)
        #expect(result.problems.isEmpty, "\(result.problems)")
        let families = result.families
        let counter = try #require(families.first { $0.name == "exemplar_requests" }?.samples.first)
        let e = try #require(counter.exemplar)
        let trace = try #require(e.labels.first { $0.name == "trace_id" }?.value)
        #expect(trace == "t" + String(repeating: "x", count: Int(e.value)), "a torn exemplar: \(e)")
        let body = String(decoding: Exposition.render(families, format: .openMetrics), as: UTF8.self)
        let strict = try runPython("om_exemplars.py", [], input: body)
        #expect(strict.status == 0, "\(strict.stderr)")
        _ = try pythonCollect(dir.path)
    }

    /// While a worker rewrites an exemplar with trace ids of changing lengths, every exemplar a
    /// scrape exposes is one the worker wrote whole (its value says its trace id's length), and
    /// scrapes keep exposing one.
    @Test(.timeLimit(.minutes(2)))
    func scrapesDuringWritesNeverSeeATornExemplar() throws {
        let dir = TempDirectory("pmp-exemplar-race"); defer { dir.remove() }
        let child = try LineChild(executable("prom-multiproc-testworker"), ["exemplar-loop", dir.path, "/r", "100"])
        defer { kill(child.pid, SIGKILL); _ = child.finish() }
        let ready = try #require(child.readLine(), "no ready line")
        #expect(ready.hasPrefix("ready "))
        // At least 200 scrapes, and until 100 exposed the exemplar (at most 60 s): how many do
        // depends on scheduling (under the thread sanitizer 57 of the first 200 did).
        var seen = 0, scrapes = 0
        let deadline = Date().addingTimeInterval(60)
        while (scrapes < 200 || seen < 100) && Date() < deadline {
            scrapes += 1
            let result = collect(dir)
            #expect(result.problems.isEmpty, "\(result.problems)")
            guard let e = result.families.first(where: { $0.name == "exemplar_requests" })?.samples.first?.exemplar else { continue }
            seen += 1
            let trace = e.labels.first { $0.name == "trace_id" }?.value
            #expect(trace == "t" + String(repeating: "x", count: Int(e.value)), "a torn exemplar: \(e)")
        }
        #expect(seen >= 100, "only \(seen) of \(scrapes) scrapes in 60 s exposed the exemplar")
    }

    /// Threads of one process rewrite one record while another reads it: every exemplar read is
    /// one that was written whole.
    @Test func threadsWritingOneRecordNeverTearARead() throws {
        let counter = try Counter("race_total", help: "h", registry: Registry())
        let exemplars = try (0..<32).map { try Exemplar(["trace_id": String(repeating: "y", count: $0)]) }
        let stop = Locked(false)
        let writers = (0..<2).map { w in
            Thread {
                var i = w
                while !stop.withLock({ $0 }) {
                    counter.increment(by: Double(i & 31), exemplar: exemplars[i & 31])
                    i &+= 1
                }
            }
        }
        writers.forEach { $0.start() }
        // At least 20,000 reads and 2,000 that found an exemplar (on a loaded 2-core machine
        // the writer threads may not run at all during the first 20,000), at most 30 s.
        var reads = 0, iterations = 0
        let deadline = Date().addingTimeInterval(30)
        while (iterations < 20_000 || reads < 2_000) && Date() < deadline {
            iterations += 1
            guard let e = counter.exemplar else { continue }
            reads += 1
            #expect(e.labels == [Label("trace_id", String(repeating: "y", count: Int(e.value)))])
        }
        stop.withLock { $0 = true }
        #expect(reads >= 2_000, "only \(reads) of \(iterations) reads found an exemplar in 30 s")
    }

    /// A series' record moves to the new process's file when the process identity changes (as
    /// after a fork): the parent's exemplar stays in the parent's file, the child starts
    /// without one and writes its own.
    @Test func aNewProcessWritesItsOwnFile() throws {
        let dir = TempDirectory("pmp-exemplar-rebind"); defer { dir.remove() }
        let pid = Locked("1")
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: ProcessIdentity { pid.withLock { $0 } })
        defer { storage.store?.close() }
        let counter = try Counter("moves_total", help: "h", registry: Registry(storage: storage))
        counter.increment(by: 2, exemplar: try Exemplar(["trace_id": "parent"], timestamp: 10))
        pid.withLock { $0 = "2" }
        storage.store?.processIdentityMayHaveChanged()
        #expect(counter.exemplar == nil)
        counter.increment(by: 3, exemplar: try Exemplar(["trace_id": "child"], timestamp: 5))
        #expect(counter.exemplar == RecordedExemplar(labels: [Label("trace_id", "child")], value: 3, timestamp: 5))
        var reader = MetricFileReader()
        let parent = try ExemplarFile.read(path: dir.file("exemplars_1.pmx"), reader: &reader).entries
        let child = try ExemplarFile.read(path: dir.file("exemplars_2.pmx"), reader: &reader).entries
        #expect(parent.map(\.exemplar) == [.init(labels: [Label("trace_id", "parent")], value: 2, timestamp: 10)])
        #expect(child.map(\.exemplar) == [.init(labels: [Label("trace_id", "child")], value: 3, timestamp: 5)])
        // The older exemplar of the parent's file loses to the child's only on time: 10 > 5.
        #expect(collect(dir).family("moves")?.samples.first?.exemplar?.labels == [Label("trace_id", "parent")])
    }

    /// A record left odd by a writer killed in the middle of a write still shows its last
    /// complete exemplar (the copy the writer was not writing), and the process that adopts the
    /// file writes it again.
    @Test func aTornRecordIsSkippedAndResetOnAdoption() throws {
        let dir = TempDirectory("pmp-exemplar-torn"); defer { dir.remove() }
        do {
            let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("7"))
            let counter = try Counter("torn_total", help: "h", registry: Registry(storage: storage))
            counter.increment(by: 1, exemplar: try Exemplar(["trace_id": "a"], timestamp: 1))
            storage.store?.close()
        }
        // Make the sequence odd, as a writer killed between its two stores leaves it.
        let path = dir.file("exemplars_7.pmx")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let record = try #require(ExemplarProcessTests.recordOffset(bytes))
        bytes[record + ExemplarFile.Field.sequence] |= 1
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        var reader = MetricFileReader()
        #expect(try ExemplarFile.read(path: path, reader: &reader).entries.map(\.exemplar.labels) == [[Label("trace_id", "a")]])
        #expect(collect(dir).problems.isEmpty)
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("7"))
        defer { storage.store?.close() }
        let counter = try Counter("torn_total", help: "h", registry: Registry(storage: storage))
        counter.increment(by: 1, exemplar: try Exemplar(["trace_id": "b"], timestamp: 2))
        #expect(try ExemplarFile.read(path: path, reader: &reader).entries.map(\.exemplar.labels) == [[Label("trace_id", "b")]])
        #expect(collect(dir).family("torn")?.samples.first?.value == 2)
    }

    /// OpenMetrics, to the byte: the exemplar after the sample's value, its labels sorted and
    /// escaped as sample labels are; none on `_count`, `_sum` or a sample without one.
    /// prometheus_client 0.26's strict parser reads it, once the escaped quote is taken out: its
    /// exemplar parser looks for the closing brace without honouring `\"` and rejects any
    /// exemplar label value with a quote (the specification allows it), so that escape is
    /// checked here byte for byte only.
    @Test func openMetricsGolden() throws {
        let e1 = RecordedExemplar(labels: [Label("trace_id", "a\"b\\c\nd"), Label("span_id", "7")], value: 2, timestamp: 1_700_000_000.25)
        let e2 = RecordedExemplar(labels: [], value: 0.5, timestamp: 12)
        let families = [
            MetricFamilySnapshot(name: "jobs", kind: .counter, help: "Jobs.", samples: [
                Sample(name: "jobs_total", labels: [Label("q", "a")], value: 3, exemplar: e1),
                Sample(name: "jobs_total", labels: [Label("q", "b")], value: 1),
            ]),
            MetricFamilySnapshot(name: "wait_seconds", kind: .histogram, help: "Wait.", samples: [
                Sample(name: "wait_seconds_bucket", labels: [Label("le", "1.0")], value: 1, exemplar: e2),
                Sample(name: "wait_seconds_bucket", labels: [Label("le", "+Inf")], value: 1),
                Sample(name: "wait_seconds_count", value: 1),
                Sample(name: "wait_seconds_sum", value: 0.5),
            ]),
        ]
        let expected = #"""
        # HELP jobs Jobs.
        # TYPE jobs counter
        jobs_total{q="a"} 3.0 # {span_id="7",trace_id="a\"b\\c\nd"} 2.0 1700000000.25
        jobs_total{q="b"} 1.0
        # HELP wait_seconds Wait.
        # TYPE wait_seconds histogram
        wait_seconds_bucket{le="1.0"} 1.0 # {} 0.5 12.0
        wait_seconds_bucket{le="+Inf"} 1.0
        wait_seconds_count 1.0
        wait_seconds_sum 0.5
        # EOF

        """#
        #expect(String(decoding: Exposition.render(families, format: .openMetrics), as: UTF8.self) == expected)
        let text = String(decoding: Exposition.render(families, format: .prometheusText), as: UTF8.self)
        #expect(!text.contains("#  {") && !text.contains("trace_id"))
        let quoteless = expected.replacingOccurrences(of: #"a\"b"#, with: "ab")
        #expect(quoteless != expected)
        let strict = try runPython("om_check.py", [], input: quoteless)
        #expect(strict.status == 0, "\(strict.stderr)")
    }

    /// A damaged exemplar file is skipped and reported, naming it; the `*.db` files and the
    /// other exemplar files are merged as usual.
    @Test func aDamagedExemplarFileIsReportedAndTheRestMerged() throws {
        let dir = TempDirectory("pmp-exemplar-bad"); defer { dir.remove() }
        try write(dir)
        let good = collect(dir)
        let files = dir.names().filter { $0.hasSuffix(".pmx") }.sorted()
        // A series entry pointing into the middle of another entry, and a truncated file.
        let first = dir.file(files[0])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: first)))
        let record = try #require(Self.recordOffset(bytes))
        var link: Int?
        try bytes.withUnsafeBytes { b in
            try LoadedMetricFile.forEachEntry(in: UnsafeRawBufferPointer(rebasing: b[0..<Int(b.loadUnaligned(as: UInt32.self))]), path: "x") { e in
                if link == nil, e.value.bitPattern == UInt64(record) { link = e.offset + 4 + e.key.count + FileFormat.padding(keyLength: e.key.count) }
            }
        }
        let at = try #require(link)
        bytes[at] &+= 8
        try Data(bytes).write(to: URL(fileURLWithPath: first))
        let second = dir.file(files[1])
        let truncated = [UInt8](try Data(contentsOf: URL(fileURLWithPath: second)))
        try Data(truncated.prefix(Int(truncated.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }) - 100))
            .write(to: URL(fileURLWithPath: second))
        let result = collect(dir)
        #expect(result.problems.count == 2, "\(result.problems)")
        #expect(result.problems.map(\.path).sorted() == [first, second])
        #expect(result.problems.map { "\($0)" }.allSatisfy { $0.contains(".pmx") })
        // Values are unchanged; the exemplars of the three other workers remain.
        func values(_ r: CollectResult) -> [Double] { r.families.filter { $0.name.hasPrefix("exemplar_") }.flatMap { $0.samples.map(\.value) } }
        #expect(values(result) == values(good))
        #expect(result.families.first { $0.name == "exemplar_requests" }?.samples.first?.exemplar != nil)
    }

    /// The longest labels OpenMetrics allows, in the widest characters (4 UTF-8 bytes each) and
    /// with every character JSON would escape, are stored and read back whole.
    @Test func theLongestLabelsRoundTripThroughTheFile() throws {
        let dir = TempDirectory("pmp-exemplar-long"); defer { dir.remove() }
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("3"))
        defer { storage.store?.close() }
        let counter = try Counter("long_total", help: "h", labelNames: ["k"], registry: Registry(storage: storage))
        let wide = [Label("t", String(repeating: "😀", count: 127))]
        let many = (0..<42).map { i in Label(String(UnicodeScalar(UInt8(ascii: "a") + UInt8(i % 26))) + (i < 26 ? "" : "_"), "\u{1}") }
            .prefix(42)
        let control = [Label("c", "\"\\\n\u{0}\t" + String(repeating: "\u{7f}", count: 122))]
        for (i, labels) in [wide, Array(many), control].enumerated() {
            counter.labels("\(i)").increment(by: 1, exemplar: try Exemplar(labels: labels, timestamp: Double(i)))
        }
        let samples = try #require(collect(dir).family("long")).samples
        #expect(samples.map { $0.exemplar?.labels.sorted { $0.name < $1.name } }
                == [wide, Array(many).sorted { $0.name < $1.name }, control])
    }

    /// The offset of the first record's key in a file's bytes.
    static func recordOffset(_ bytes: [UInt8]) -> Int? {
        var offset: Int?
        try? bytes.withUnsafeBytes { b in
            let used = Int(b.loadUnaligned(as: UInt32.self))
            try LoadedMetricFile.forEachEntry(in: UnsafeRawBufferPointer(rebasing: b[0..<used]), path: "x") { e in
                if offset == nil, e.key.count == ExemplarFile.recordLength { offset = e.offset + 4 }
            }
        }
        return offset
    }
}
