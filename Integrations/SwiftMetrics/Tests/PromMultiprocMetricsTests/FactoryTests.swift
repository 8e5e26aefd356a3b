import CoreMetrics
import PromMetrics
import PromMultiprocMetrics
import Testing

// Every test makes its metrics with an explicit factory over its own directory (pid 123), so
// no test touches MetricsSystem's global factory.
@Suite struct MetricsFactoryTests {
    @Test func counterAndFloatingPointCounterShareOneCounter() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir)
        let counter = CoreMetrics.Counter(label: "http.requests", dimensions: [("method", "GET")], factory: factory)
        counter.increment()
        counter.increment(by: 4)
        FloatingPointCounter(label: "http.requests", dimensions: [("method", "GET")], factory: factory).increment(by: 0.5)

        #expect(dir.dbNames() == ["counter_123.db"])
        let merged = collect(dir)
        #expect(merged.kinds == ["http_requests": .counter])
        #expect(merged.samples == [#"http_requests_total{method="GET"}"#: 5.5])
    }

    @Test func counterNameWithTotalIsNotSuffixedTwice() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir)
        CoreMetrics.Counter(label: "jobs_total", factory: factory).increment()
        CoreMetrics.Counter(label: "jobs", factory: factory).increment()
        #expect(collect(dir).samples == ["jobs_total{}": 2])
    }

    @Test func negativeNaNAndInfiniteIncrementsAreDropped() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir)
        let counter = CoreMetrics.Counter(label: "c", factory: factory)
        counter.increment(by: 3)
        counter.increment(by: -2)
        let floating = FloatingPointCounter(label: "f", factory: factory)
        floating.increment(by: 0.25)
        floating.increment(by: -1.0)
        floating.increment(by: Double.nan)
        floating.increment(by: Double.infinity)
        #expect(collect(dir).samples == ["c_total{}": 3, "f_total{}": 0.25])
    }

    @Test func meterAndGaugeAreLivesumGaugesByDefault() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir)
        let meter = Meter(label: "connections.open", factory: factory)
        meter.set(5)
        meter.increment(by: 2.0)
        meter.decrement()
        CoreMetrics.Gauge(label: "temperature", dimensions: [("room", "a")], factory: factory).record(21.5)

        #expect(dir.dbNames() == ["gauge_livesum_123.db"])
        let merged = collect(dir)
        #expect(merged.kinds == ["connections_open": .gauge, "temperature": .gauge])
        #expect(merged.samples == ["connections_open{}": 6, #"temperature{room="a"}"#: 21.5])
    }

    @Test func gaugeModeIsConfigurablePerLabelAsWrittenOrAsExported() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir) {
            $0.gaugeModes["queue.depth"] = .max
            $0.gaugeModes["config_version"] = .mostrecent
            $0.defaultGaugeMode = .liveall
        }
        Meter(label: "queue.depth", factory: factory).set(7)
        let version = Meter(label: "config.version", factory: factory)
        version.set(3)
        version.increment(by: 2.0)  // mostrecent allows only set: the backend reads and sets
        CoreMetrics.Gauge(label: "other", factory: factory).record(1)

        #expect(dir.dbNames() == ["gauge_liveall_123.db", "gauge_max_123.db", "gauge_mostrecent_123.db"])
        #expect(collect(dir).samples == ["queue_depth{}": 7, "config_version{}": 5, #"other{pid="123"}"#: 1])
    }

    @Test func aggregatingRecorderIsAHistogramWithValueBuckets() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir)
        let recorder = Recorder(label: "payload.bytes", factory: factory)
        recorder.record(7)
        recorder.record(20.0)

        #expect(dir.dbNames() == ["histogram_123.db"])
        let merged = collect(dir)
        #expect(merged.kinds == ["payload_bytes": .histogram])
        #expect(merged.samples[#"payload_bytes_bucket{le="5.0"}"#] == 0)
        #expect(merged.samples[#"payload_bytes_bucket{le="10.0"}"#] == 1)
        #expect(merged.samples[#"payload_bytes_bucket{le="25.0"}"#] == 2)
        #expect(merged.samples[#"payload_bytes_bucket{le="10000.0"}"#] == 2)
        #expect(merged.samples[#"payload_bytes_bucket{le="+Inf"}"#] == 2)
        #expect(merged.samples["payload_bytes_count{}"] == 2)
        #expect(merged.samples["payload_bytes_sum{}"] == 27)
        #expect(merged.samples(startingWith: "payload_bytes_bucket").count == 12)
    }

    @Test func timerIsAHistogramInSeconds() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir)
        let timer = CoreMetrics.Timer(label: "http.server.request.duration", dimensions: [("route", "/")], factory: factory)
        timer.recordNanoseconds(5_000_000)  // exactly 0.005: the bucket le="0.005"
        timer.recordMilliseconds(250)
        timer.recordSeconds(20)

        let merged = collect(dir)
        #expect(merged.kinds == ["http_server_request_duration": .histogram])
        let name = "http_server_request_duration"
        #expect(merged.samples[#"\#(name)_bucket{le="0.005",route="/"}"#] == 1)
        #expect(merged.samples[#"\#(name)_bucket{le="0.1",route="/"}"#] == 1)
        #expect(merged.samples[#"\#(name)_bucket{le="0.25",route="/"}"#] == 2)
        #expect(merged.samples[#"\#(name)_bucket{le="10.0",route="/"}"#] == 2)
        #expect(merged.samples[#"\#(name)_bucket{le="+Inf",route="/"}"#] == 3)
        #expect(merged.samples[#"\#(name)_count{route="/"}"#] == 3)
        #expect(merged.samples[#"\#(name)_sum{route="/"}"#] == 20.255)
        // prometheus_client's default buckets, so Swift and Python workers agree.
        #expect(merged.samples(startingWith: "\(name)_bucket").count == Histogram.defaultBuckets.count)
    }

    @Test func bucketsAreConfigurablePerLabel() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir) {
            $0.timerBuckets["fast.op"] = [0.001, 0.01]
            $0.recorderBuckets["sizes"] = [1, 2]
        }
        CoreMetrics.Timer(label: "fast.op", factory: factory).recordMicroseconds(500)
        Recorder(label: "sizes", factory: factory).record(2)

        let merged = collect(dir)
        #expect(merged.samples(startingWith: "fast_op_bucket") == [
            #"fast_op_bucket{le="0.001"}"#: 1, #"fast_op_bucket{le="0.01"}"#: 1, #"fast_op_bucket{le="+Inf"}"#: 1,
        ])
        #expect(merged.samples(startingWith: "sizes_bucket") == [
            #"sizes_bucket{le="1.0"}"#: 0, #"sizes_bucket{le="2.0"}"#: 1, #"sizes_bucket{le="+Inf"}"#: 1,
        ])
    }

    @Test func dimensionsBecomeSanitizedLabelsInAnyOrder() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir)
        CoreMetrics.Counter(label: "hb.requests", dimensions: [("http.route", "/users/:id"), ("HTTP-Status", "200")], factory: factory)
            .increment()
        CoreMetrics.Counter(label: "hb.requests", dimensions: [("HTTP-Status", "200"), ("http.route", "/users/:id")], factory: factory)
            .increment()
        #expect(collect(dir).samples == [#"hb_requests_total{HTTP_Status="200",http_route="/users/:id"}"#: 2])
    }

    @Test func reservedAndCollidingLabelNamesAreRenamed() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir) { $0.timerBuckets["t"] = [1] }
        CoreMetrics.Timer(label: "t", dimensions: [("le", "x")], factory: factory).recordSeconds(2)
        Meter(label: "m", dimensions: [("pid", "7")], factory: factory).set(1)
        CoreMetrics.Counter(label: "c", dimensions: [("a-b", "1"), ("a_b", "2"), ("__meta", "3")], factory: factory).increment()

        let merged = collect(dir)
        #expect(merged.samples[#"t_bucket{_le="x",le="+Inf"}"#] == 1)
        #expect(merged.samples[#"m{_pid="7"}"#] == 1)
        #expect(merged.samples[#"c_total{_meta="3",a_b="1",a_b_2="2"}"#] == 1)
    }

    @Test func oneNameWithSeveralDimensionSetsIsOneFamily() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir)
        CoreMetrics.Counter(label: "jobs", factory: factory).increment()
        CoreMetrics.Counter(label: "jobs", dimensions: [("queue", "mail")], factory: factory).increment(by: 2)
        CoreMetrics.Counter(label: "jobs", dimensions: [("queue", "mail"), ("tenant", "t1")], factory: factory).increment(by: 3)

        let merged = collect(dir)
        #expect(merged.kinds == ["jobs": .counter])
        #expect(merged.samples == [
            "jobs_total{}": 1, #"jobs_total{queue="mail"}"#: 2, #"jobs_total{queue="mail",tenant="t1"}"#: 3,
        ])
        // The registry holds one family for all three, in creation order.
        let families = factory.registry.collect()
        #expect(families.map(\.name) == ["jobs"])
        #expect(families.first?.samples.map { sampleKey($0.name, $0.labels) } == [
            "jobs_total{}", #"jobs_total{queue="mail"}"#, #"jobs_total{queue="mail",tenant="t1"}"#,
        ])
    }

    @Test func sameLabelAndDimensionsGiveTheSameHandler() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir)
        let dimensions = [("route", "/a"), ("code", "200")]
        let counter = factory.makeCounter(label: "r", dimensions: dimensions)
        #expect(factory.makeCounter(label: "r", dimensions: dimensions) === counter)
        #expect(factory.makeFloatingPointCounter(label: "r", dimensions: dimensions) === counter)
        let meter = factory.makeMeter(label: "g", dimensions: dimensions)
        #expect(factory.makeRecorder(label: "g", dimensions: dimensions, aggregate: false) === meter)
        let timer = factory.makeTimer(label: "h", dimensions: dimensions)
        #expect(factory.makeRecorder(label: "h", dimensions: dimensions, aggregate: true) === timer)
        #expect(factory.backend.cachedHandlerCount == 3)

        // Another order of the same dimensions is another cache entry, but the same series.
        let reordered = factory.makeCounter(label: "r", dimensions: dimensions.reversed())
        counter.increment(by: 1)
        reordered.increment(by: 1)
        #expect(collect(dir).samples[#"r_total{code="200",route="/a"}"#] == 2)
    }

    @Test func destroyForgetsTheHandlerAndKeepsTheSeries() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir)
        let first = factory.makeCounter(label: "d", dimensions: [("k", "v")])
        first.increment(by: 2)
        factory.destroyCounter(first)
        #expect(factory.backend.cachedHandlerCount == 0)

        let second = factory.makeCounter(label: "d", dimensions: [("k", "v")])
        #expect(second !== first)
        second.increment(by: 1)
        first.increment(by: 1)  // a handler still held keeps working
        #expect(collect(dir).samples == [#"d_total{k="v"}"#: 4])

        // Destroying through swift-metrics' types reaches every kind of handler.
        let meter = Meter(label: "dm", factory: factory)
        let recorder = Recorder(label: "dr", factory: factory)
        let timer = CoreMetrics.Timer(label: "dt", factory: factory)
        let floating = FloatingPointCounter(label: "df", factory: factory)
        #expect(factory.backend.cachedHandlerCount == 5)
        meter.destroy()
        recorder.destroy()
        timer.destroy()
        floating.destroy()
        #expect(factory.backend.cachedHandlerCount == 1)
    }

    @Test func resetIsNotSupportedAndReportedOnce() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let log = ReportLog()
        let factory = try makeFactory(dir) { $0.reporter = log.reporter }
        let counter = CoreMetrics.Counter(label: "resets", factory: factory)
        counter.increment(by: 5)
        counter.reset()
        counter.reset()
        #expect(collect(dir).samples == ["resets_total{}": 5])
        #expect(log.messages == ["Counter.reset() of 'resets' is not supported; the Prometheus counter 'resets_total' keeps counting"])
    }

    @Test func inProcessStorageCollectsThroughTheRegistry() {
        let registry = Registry(storage: .inProcess)
        let factory = PrometheusMultiprocessMetricsFactory(registry: registry)
        CoreMetrics.Counter(label: "a", dimensions: [("x", "1")], factory: factory).increment(by: 2)
        Meter(label: "b", factory: factory).set(4)
        CoreMetrics.Timer(label: "c", factory: factory).recordSeconds(1)

        let merged = Merged(families: registry.collect())
        #expect(merged.kinds == ["a": .counter, "b": .gauge, "c": .histogram])
        #expect(merged.samples[#"a_total{x="1"}"#] == 2)
        #expect(merged.samples["b{}"] == 4)
        #expect(merged.samples[#"c_bucket{le="1.0"}"#] == 1)
        #expect(merged.samples["c_count{}"] == 1)
    }

    @Test func concurrentMakersGetOneHandlerAndExactCounts() async throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let factory = try makeFactory(dir)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for i in 0..<10_000 {
                        CoreMetrics.Counter(label: "hot", dimensions: [("shard", "\(i % 4)")], factory: factory).increment()
                    }
                }
            }
        }
        #expect(factory.backend.cachedHandlerCount == 4)
        let merged = collect(dir)
        for shard in 0..<4 { #expect(merged.samples[#"hot_total{shard="\#(shard)"}"#] == 10_000) }
    }
}
