import PromMetrics
import Testing

/// The exemplar API: OpenMetrics' limit of 128 characters on the label names and values
/// together, label name rules, and the latest exemplar per series (per bucket) in one process.
@Suite struct ExemplarTests {
    /// Lengths from the specification's rule: the characters (code points) of every name and
    /// value, summed; at most 128.
    @Test(arguments: [
        ("trace_id", String(repeating: "a", count: 120), true),   // 8 + 120 = 128
        ("trace_id", String(repeating: "a", count: 121), false),  // 129
        ("trace_id", String(repeating: "é", count: 120), true),   // 240 bytes, 128 characters
        ("trace_id", String(repeating: "é", count: 121), false),
        ("trace_id", String(repeating: "😀", count: 120), true),  // 480 bytes, 128 characters
        ("t", "", true),
    ])
    func labelLengthIsLimitedTo128Characters(name: String, value: String, accepted: Bool) throws {
        if accepted {
            let e = try Exemplar(labels: [Label(name, value)])
            #expect(e.labels == [Label(name, value)])
        } else {
            let error = #expect(throws: ExemplarError.self) { try Exemplar(labels: [Label(name, value)]) }
            #expect(error?.reason == "label names and values have 129 characters, more than 128")
            #expect(error?.description.hasPrefix("exemplar {trace_id=\"") == true)
        }
    }

    @Test func severalLabelsCountTogether() throws {
        let half = String(repeating: "x", count: 54)  // 2 * (10 + 54) = 128
        _ = try Exemplar(["trace_id_1": half, "trace_id_2": half])
        #expect(throws: ExemplarError.self) { try Exemplar(["trace_id_1": half, "trace_id_2": half + "x"]) }
    }

    @Test func badNamesAndTimestampsAreRefused() {
        let reasons = [
            (try? Exemplar(["1trace": "a"])) == nil,
            (try? Exemplar(["trace-id": "a"])) == nil,
            (try? Exemplar(labels: [Label("a", "1"), Label("a", "2")])) == nil,
            (try? Exemplar(["a": "1"], timestamp: .nan)) == nil,
            (try? Exemplar(["a": "1"], timestamp: .infinity)) == nil,
        ]
        #expect(reasons == [true, true, true, true, true])
        #expect(throws: ExemplarError(labels: [Label("trace-id", "a")], reason: "invalid label name 'trace-id'")) {
            try Exemplar(["trace-id": "a"])
        }
    }

    /// In one process: the counter's exemplar carries the increment, the histogram's the
    /// observation, in the bucket it fell in; a later exemplar replaces the earlier one; the
    /// timestamp defaults to the registry's clock.
    @Test func theLatestExemplarPerSeriesAndBucketIsCollected() throws {
        let clock = ManualClock(1_700_000_000.5)
        let registry = Registry(clock: clock.metricClock)
        let counter = try Counter("jobs_total", help: "Jobs.", labelNames: ["queue"], registry: registry)
        let histogram = try Histogram("wait_seconds", help: "Wait.", buckets: [1, 2], registry: registry)
        counter.labels("a").increment(by: 2, exemplar: try Exemplar(["trace_id": "old"]))
        clock.set(1_700_000_001.25)
        counter.labels("a").increment(by: 3, exemplar: try Exemplar(["trace_id": "new"]))
        counter.labels("b").increment(by: 1)
        histogram.observe(1.5, exemplar: try Exemplar(["trace_id": "h1"], timestamp: 42))
        histogram.observe(0.5)
        histogram.observe(5, exemplar: try Exemplar(["trace_id": "h2"]))
        histogram.observe(.nan, exemplar: try Exemplar(["trace_id": "nan"]))

        let jobs = try #require(counter.collect().first).samples
        #expect(jobs.map(\.exemplar) == [
            RecordedExemplar(labels: [Label("trace_id", "new")], value: 3, timestamp: 1_700_000_001.25), nil,
        ])
        #expect(jobs.map(\.value) == [5, 1])
        let buckets = try #require(histogram.collect().first).samples.filter { $0.name == "wait_seconds_bucket" }
        #expect(buckets.map(\.exemplar) == [
            nil,
            RecordedExemplar(labels: [Label("trace_id", "h1")], value: 1.5, timestamp: 42),
            RecordedExemplar(labels: [Label("trace_id", "h2")], value: 5, timestamp: 1_700_000_001.25),
        ])
    }
}
