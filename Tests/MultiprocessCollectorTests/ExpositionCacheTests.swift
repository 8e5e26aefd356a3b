import Dispatch
import MmapStore
import PromExposition
import PromMetrics
import SystemCalls
import Testing
import TestSupport

/// The exposition cache writes new values into the last body while the series stay the same.
/// Every body it returns, reused or not, is compared with prometheus_client's rendering of the
/// same families (the differential tests' script), and the tests check which renders reused a
/// body: a reuse that should not happen shows as a difference, one that should but does not
/// as a count.
@Suite("The exposition cache rewrites only values, and only for the same series")
struct ExpositionCacheTests {
    typealias Differential = ExpositionDifferentialTests

    /// Random families (names, labels, help texts and values of every shape, `_created`,
    /// `_gsum` and `_gcount` samples that the text format moves to the end). Summary values are
    /// non-negative: OpenMetrics leaves negative ones out, so no body with them is kept.
    static func families(seed: UInt64, colons: Bool) -> [MetricFamilySnapshot] {
        var generator = Differential.Generator(random: ExpositionRandom(seed: seed), colons: colons)
        return (0 ..< 60).map { _ in generator.family() }.map(nonNegativeSummaries)
    }

    static func nonNegativeSummaries(_ family: MetricFamilySnapshot) -> MetricFamilySnapshot {
        guard family.kind == .summary else { return family }
        var family = family
        for i in family.samples.indices { family.samples[i].value = abs(family.samples[i].value) }
        return family
    }

    /// `families` with new values for about half of their samples, of every shape (lengths
    /// change, so the slots after a changed value move).
    static func revalued(_ families: [MetricFamilySnapshot], seed: UInt64) -> [MetricFamilySnapshot] {
        var generator = Differential.Generator(random: ExpositionRandom(seed: seed), colons: false)
        return families.map { family in
            var family = family
            for i in family.samples.indices where generator.chance(50) { family.samples[i].value = generator.value() }
            return nonNegativeSummaries(family)
        }
    }

    @Test(arguments: [(ExpositionFormat.prometheusText, 11 as UInt64), (.openMetrics, 12)])
    func newValuesAreWrittenIntoTheLastBody(format: ExpositionFormat, seed: UInt64) throws {
        // OpenMetrics where prometheus_client's sample names agree with its family names (see
        // ExpositionDifferentialTests).
        let escapings: [NameEscaping] = format == .openMetrics ? [.underscores, .allowUTF8, .dots] : NameEscaping.allCases
        let first = Self.families(seed: seed, colons: format == .prometheusText)
        let second = Self.revalued(first, seed: seed &+ 100)
        let third = Self.revalued(second, seed: seed &+ 200)
        let renders = escapings.map { (format, $0) }
        let python = try [first, second, third].map { try Differential.pythonRenders($0, renders: renders) }
        for (e, escaping) in escapings.enumerated() {
            let cache = ExpositionCache()
            for (round, families) in [first, second, third].enumerated() {
                let body = cache.render(families, format: format, escaping: escaping)
                Differential.expectSameText(body, python[round][e], "\(format) \(escaping) round \(round)")
            }
            #expect(cache.reusedRenders == 2, "\(format) \(escaping)")
        }
    }

    /// Anything but a value changed: the families are rendered in full.
    @Test func anotherSeriesSetIsRenderedInFull() throws {
        let families = [
            MetricFamilySnapshot(name: "requests", kind: .counter, help: "Requests.", samples: [
                Sample(name: "requests_total", labels: [Label("path", "/café")], value: 1),
                Sample(name: "requests_total", labels: [Label("path", "/b")], value: 2),
            ]),
            MetricFamilySnapshot(name: "temperature", kind: .gauge, help: "Temperature.", samples: [
                Sample(name: "temperature", value: 20.5),
            ]),
        ]
        func changed(_ change: (inout [MetricFamilySnapshot]) -> Void) -> [MetricFamilySnapshot] {
            var copy = families
            change(&copy)
            return copy
        }
        let variants: [(String, [MetricFamilySnapshot])] = [
            ("a label value", changed { $0[0].samples[1].labels = [Label("path", "/c")] }),
            // Canonically equivalent to "/café" (e and a combining acute accent): equal as
            // Swift strings, other bytes on the wire.
            ("a label value's bytes", changed { $0[0].samples[0].labels = [Label("path", "/cafe\u{301}")] }),
            ("a help text", changed { $0[1].help = "Temperature in °C." }),
            ("a sample added", changed { $0[0].samples.append(Sample(name: "requests_total", labels: [Label("path", "/d")], value: 4)) }),
            ("a family removed", changed { $0.removeLast() }),
            ("a type", changed { $0[1].kind = .unknown }),
        ]
        let python = try variants.map { try Differential.pythonRenders($0.1, renders: [(.prometheusText, .underscores)])[0] }
        for ((what, variant), expected) in zip(variants, python) {
            let cache = ExpositionCache()
            _ = cache.render(families, format: .prometheusText)
            Differential.expectSameText(cache.render(variant, format: .prometheusText), expected, what)
            #expect(cache.reusedRenders == 0, "\(what)")
        }
        // And another escaping of the same families.
        let cache = ExpositionCache()
        _ = cache.render(families, format: .prometheusText, escaping: .underscores)
        let values = try Differential.pythonRenders(families, renders: [(.prometheusText, .values)])[0]
        Differential.expectSameText(cache.render(families, format: .prometheusText, escaping: .values), values, "values escaping")
        #expect(cache.reusedRenders == 0)
    }

    /// OpenMetrics bodies whose lines depend on more than the samples' values are never
    /// reused: exemplars (a value and a time of their own) and negative summary values (left
    /// out of OpenMetrics).
    @Test func openMetricsWithExemplarsOrNegativeSummaryValuesIsRenderedInFull() throws {
        func requests(_ value: Double, exemplar: RecordedExemplar?) -> [MetricFamilySnapshot] {
            var sample = Sample(name: "requests_total", value: value)
            sample.exemplar = exemplar
            return [MetricFamilySnapshot(name: "requests", kind: .counter, help: "Requests.", samples: [sample])]
        }
        let cache = ExpositionCache()
        _ = cache.render(requests(1, exemplar: nil), format: .openMetrics)
        let exemplar = RecordedExemplar(labels: [Label("trace_id", "abc")], value: 2.5, timestamp: 1_700_000_000.25)
        for value in [2.0, 3.0] {
            let body = String(decoding: cache.render(requests(value, exemplar: exemplar), format: .openMetrics), as: UTF8.self)
            // OpenMetrics 1.0, section Exemplars: `# {labels} value timestamp` after the value.
            #expect(body.contains("requests_total \(value) # {trace_id=\"abc\"} 2.5 1700000000.25\n"), "\(body)")
        }
        #expect(cache.reusedRenders == 0)

        func latency(_ quantile: Double) -> [MetricFamilySnapshot] {
            [MetricFamilySnapshot(name: "latency", kind: .summary, help: "Latency.", samples: [
                Sample(name: "latency", labels: [Label("quantile", "0.5")], value: quantile),
                Sample(name: "latency_count", value: 3),
                Sample(name: "latency_sum", value: 1.5),
            ])]
        }
        let summaries = ExpositionCache()
        let sets = [latency(-1), latency(0.5), latency(-2)]
        let python = try sets.map { try Differential.pythonRenders($0, renders: [(.openMetrics, .underscores)])[0] }
        for (families, expected) in zip(sets, python) {
            Differential.expectSameText(summaries.render(families, format: .openMetrics), expected, "summary")
        }
        // Only the body of `latency(0.5)` could be kept, and the next one has a negative value.
        #expect(summaries.reusedRenders == 0)
    }

    /// Histograms with native buckets are rendered in full: their classic part in text comes
    /// from the native buckets when a series has no classic samples.
    @Test func familiesWithNativeHistogramsAreRenderedInFull() throws {
        func latency(_ count: Double) -> [MetricFamilySnapshot] {
            let native = NativeHistogramSnapshot(labels: [Label("method", "GET")], schema: 0, count: count, sum: 1.5,
                                                 positiveBuckets: [.init(index: 1, count: count)])
            return [MetricFamilySnapshot(name: "latency", kind: .histogram, help: "Latency.", samples: [
                Sample(name: "latency_bucket", labels: [Label("method", "PUT"), Label("le", "+Inf")], value: 1),
                Sample(name: "latency_count", labels: [Label("method", "PUT")], value: 1),
                Sample(name: "latency_sum", labels: [Label("method", "PUT")], value: 0.5),
            ], nativeHistograms: [native])]
        }
        func classic(_ count: Double) -> [MetricFamilySnapshot] {
            [MetricFamilySnapshot(name: "latency", kind: .histogram, help: "Latency.", samples: latency(count)[0].samples + [
                Sample(name: "latency_bucket", labels: [Label("method", "GET"), Label("le", "+Inf")], value: count),
                Sample(name: "latency_count", labels: [Label("method", "GET")], value: count),
                Sample(name: "latency_sum", labels: [Label("method", "GET")], value: 1.5),
            ])]
        }
        let cache = ExpositionCache()
        for count in [3.0, 4.0, 4.0] {
            let expected = try Differential.pythonRenders(classic(count), renders: [(.prometheusText, .underscores)])[0]
            Differential.expectSameText(cache.render(latency(count), format: .prometheusText), expected, "count \(count)")
        }
        #expect(cache.reusedRenders == 0)
    }

    /// A render cut into pieces on several threads (down to a line each, so that families are
    /// cut between any two samples) writes prometheus_client's bytes, and its body takes the
    /// next values as a one-thread body does.
    @Test(arguments: [(ExpositionFormat.prometheusText, 2), (.prometheusText, 5), (.openMetrics, 3)])
    func bodiesRenderedInPiecesMatchPrometheusClient(format: ExpositionFormat, threads: Int) throws {
        let seed = UInt64(30 + threads)
        let first = Self.families(seed: seed, colons: format == .prometheusText)
        let second = Self.revalued(first, seed: seed &+ 100)
        let third = Self.revalued(second, seed: seed &+ 200)
        let python = try [first, second, third].map { try Differential.pythonRenders($0, renders: [(format, .underscores)])[0] }
        for minimumPieceLines in [1, 7, 40] {
            let cache = ExpositionCache(threads: threads, minimumPieceLines: minimumPieceLines)
            for (round, families) in [first, second, third].enumerated() {
                let body = cache.render(families, format: format)
                Differential.expectSameText(body, python[round], "\(format) \(threads) threads, \(minimumPieceLines) lines, round \(round)")
            }
            #expect(cache.reusedRenders == 2, "\(format) \(threads) threads, \(minimumPieceLines) lines")
        }
    }

    /// A body is written in place in the array returned where it fits the room the renderer
    /// expects (80 bytes a line), and joined from pieces of their own where it does not.
    /// Lines of hundreds of bytes, in the first piece or after it, and short lines around
    /// them: on one thread and in pieces, every body is prometheus_client's, and the next one
    /// takes the new values.
    @Test(arguments: [1, 2, 3])
    func bodiesLongerThanTheRoomExpectedMatchPrometheusClient(threads: Int) throws {
        func family(_ name: String, valueLength: Int, seed: Int) -> MetricFamilySnapshot {
            let path = "/" + String(repeating: "ab", count: valueLength / 2)
            let samples = (0 ..< 40).map { (i: Int) -> Sample in
                let value = Double(seed * 100 + i) + 0.25
                return Sample(name: name, labels: [Label("path", "\(path)/\(i)")], value: value)
            }
            return MetricFamilySnapshot(name: name, kind: .gauge, help: "Lines of about \(valueLength) bytes.", samples: samples)
        }
        for (long, short) in [(600, 4), (4, 600), (600, 600), (4, 4)] {
            let rounds = (0 ..< 2).map { seed in
                [family("a_first", valueLength: long, seed: seed), family("b_second", valueLength: short, seed: seed),
                 family("c_third", valueLength: long, seed: seed)]
            }
            for format in [ExpositionFormat.prometheusText, .openMetrics] {
                let python = try rounds.map { try Differential.pythonRenders($0, renders: [(format, .underscores)])[0] }
                let cache = ExpositionCache(threads: threads, minimumPieceLines: 1)
                for (round, families) in rounds.enumerated() {
                    Differential.expectSameText(cache.render(families, format: format), python[round],
                                                "\(format), lines of \(long) and \(short) bytes, \(threads) threads, round \(round)")
                }
                Differential.expectSameText(Exposition.render(rounds[0], format: format), python[0],
                                            "\(format), lines of \(long) and \(short) bytes, Exposition.render")
            }
        }
    }

    /// Every format, with native histograms (never cut, and writing classic samples of their
    /// own after their last sample) and empty families among the others: a render in pieces
    /// has the bytes of a render on one thread, whatever the number of threads.
    @Test func piecesJoinIntoOneThreadsBytesInEveryFormat() {
        var families = Self.families(seed: 41, colons: false)
        let native = NativeHistogramSnapshot(labels: [Label("method", "GET")], schema: 0, count: 12, sum: 1.5,
                                             positiveBuckets: [.init(index: -2, count: 5), .init(index: 1, count: 7)])
        families.insert(MetricFamilySnapshot(name: "native_only", kind: .histogram, help: "Native.", samples: [],
                                             nativeHistograms: [native]), at: 7)
        families.insert(MetricFamilySnapshot(name: "mixed", kind: .histogram, help: "Mixed.", samples: [
            Sample(name: "mixed_bucket", labels: [Label("method", "PUT"), Label("le", "+Inf")], value: 1),
            Sample(name: "mixed_count", labels: [Label("method", "PUT")], value: 1),
            Sample(name: "mixed_sum", labels: [Label("method", "PUT")], value: 0.5),
        ], nativeHistograms: [native]), at: 20)
        families.insert(MetricFamilySnapshot(name: "empty", kind: .gauge, help: "Nothing yet.", samples: []), at: 0)
        families.append(MetricFamilySnapshot(name: "empty_last", kind: .counter, help: "Nothing yet.", samples: []))
        for format in [ExpositionFormat.prometheusText, .openMetrics, .protobuf] {
            let expected = Exposition.render(families, format: format)
            for threads in [2, 3, 4, 9, 64, 500] {
                for minimumPieceLines in [1, 3, 50] {
                    let body = ExpositionCache(threads: threads, minimumPieceLines: minimumPieceLines).render(families, format: format)
                    #expect(body == expected, "\(format), \(threads) threads, \(minimumPieceLines) lines")
                }
            }
        }
    }

    /// Several threads rendering four value sets of the same series with one cache: each body
    /// is the one prometheus_client writes for its set.
    @Test func concurrentRendersEachGetTheirOwnValues() throws {
        let base = Self.families(seed: 21, colons: true)
        let sets = (0 ..< 4).map { Self.revalued(base, seed: 300 + UInt64($0)) }
        let python = try sets.map { try Differential.pythonRenders($0, renders: [(.prometheusText, .underscores)])[0] }
        let cache = ExpositionCache()
        let wrong = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for i in 0 ..< 40 {
                let set = (thread + i) % sets.count
                let body = cache.render(sets[set], format: .prometheusText)
                if String(decoding: body, as: UTF8.self) != python[set] { wrong.withLock { $0.append("thread \(thread) render \(i) set \(set)") } }
            }
        }
        #expect(wrong.withLock { $0 }.isEmpty, "\(wrong.withLock { $0 })")
        #expect(cache.reusedRenders > 0)
    }

    /// Scrapes of a directory prometheus_client's workers keep writing: each body has the lines
    /// prometheus_client's `generate_latest` writes for the directory at that moment, and
    /// once a scrape has seen every series, the next ones rewrite only values.
    @Test func scrapesOfADirectoryWhoseValuesChangeMatchPrometheusClient() throws {
        let dir = TempDirectory("pmp-cache"); defer { dir.remove() }
        let paths = (0 ..< 40).map { "/path-\($0)" }
        func round(_ r: Int) throws {
            for pid in ["71", "72"] {
                try pythonWrite(dir.path, pid: pid, WarmScrapeTests.counterOps(paths.enumerated().filter { $0.offset % 3 != r % 3 }.map(\.element),
                                                                           amount: Double(r) + 0.25) + [
                    PyOp(type: "histogram", name: "size", help: "Sizes.", op: "observe", amount: Double(r) / 3),
                    PyOp(type: "gauge", name: "temp", help: "Temperature.", op: "set", amount: Double(r) * 1.5, mode: "all"),
                    PyOp(type: "summary", name: "wait", help: "Waits.", op: "observe", amount: 0.1 * Double(r)),
                ])
            }
        }
        let collector = testCollector(dir.path)
        let cache = ExpositionCache()
        // Every series exists from the first round on (amount 0 creates it).
        try pythonWrite(dir.path, pid: "71", WarmScrapeTests.counterOps(paths, amount: 0))
        try pythonWrite(dir.path, pid: "72", WarmScrapeTests.counterOps(paths, amount: 0))
        for r in 0 ..< 4 {
            try round(r)
            let body = String(decoding: cache.render(collector.collect().families, format: .prometheusText), as: UTF8.self)
            let python = try runPython("collect.py", [dir.path, "--text"])
            #expect(python.status == 0, "\(python.stderr)")
            // prometheus_client lists families in the order it met them; compare lines.
            #expect(body.split(separator: "\n").sorted() == python.stdout.split(separator: "\n").sorted(), "round \(r)")
        }
        #expect(cache.reusedRenders == 3)
    }
}
