import MmapStore
import Testing
import PromMetrics

@Suite struct InProcessTests {
    @Test func collectReturnsEveryTypeSortedByName() throws {
        let r = Registry()
        let c = try Counter("requests_total", help: "Requests.", labelNames: ["code"], registry: r)
        c.labels("200").increment(by: 2)
        let h = try Histogram("latency_seconds", help: "Latency.", buckets: [0.1, 1], registry: r)
        h.observe(0.05); h.observe(0.5); h.observe(5); h.observe(.nan)
        let info = try Info("build", help: "Build.", registry: r)
        info.info(["version": "1"])
        let e = try Enum("phase", help: "Phase.", states: ["a", "b"], registry: r)
        e.state("b")
        let families = r.collect()
        #expect(families.map(\.name) == ["build", "latency_seconds", "phase", "requests"])
        #expect(families[0].kind == .info && families[0].samples == [Sample(name: "build_info", labels: [Label("version", "1")], value: 1)])
        let hs = families[1].samples
        #expect(hs.map(\.name) == ["latency_seconds_bucket", "latency_seconds_bucket", "latency_seconds_bucket", "latency_seconds_count", "latency_seconds_sum"])
        #expect(hs.map(\.value)[0..<4] == [1, 2, 3, 3])
        #expect(hs[4].value.isNaN)
        #expect(hs[0].labels == [Label("le", "0.1")] && hs[2].labels == [Label("le", "+Inf")])
        #expect(families[2].kind == .stateset && families[2].samples.map(\.value) == [0, 1])
        #expect(families[3].samples == [Sample(name: "requests_total", labels: [Label("code", "200")], value: 2)])
    }

    @Test func concurrentIncrementsFromManyTasksAreExact() async throws {
        let c = try Counter("c", help: "h", registry: Registry())
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { for _ in 0..<50_000 { c.increment() } } }
        }
        #expect(c.value == 200_000)
    }

    @Test func labelsWithNoValuesOnAnUnlabelledMetricIsTheMetricsOwnChild() throws {
        let r = Registry()
        let c = try Counter("c", help: "h", registry: r)
        let g = try Gauge("g", help: "h", registry: r)
        let h = try Histogram("h", help: "h", buckets: [1], registry: r)
        let s = try Summary("s", help: "h", registry: r)
        #expect(c.labels([]) === c.labels() && c.labels() === c.labels([:]))
        c.increment()
        c.labels([]).increment(by: 2)
        c.labels().increment(by: 4)
        g.labels([]).set(5)
        g.labels().increment()
        h.labels([]).observe(0.5)
        h.observe(2)
        s.labels().observe(3)
        s.observe(4)
        // What the updates add up to, each series once and without labels.
        let all = r.collect().flatMap(\.samples)
        #expect(all.count == 8)  // c_total, g, two h_bucket, h_count, h_sum, s_count, s_sum
        #expect(all.filter { $0.name == "h_bucket" }.map(\.value) == [1, 2])
        #expect(all.allSatisfy { $0.labels.isEmpty || $0.labels.map(\.name) == ["le"] })
        let samples = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(samples["c_total"]?.value == 7 && c.value == 7)
        #expect(samples["g"]?.value == 6 && g.value == 6)
        #expect(samples["h_count"]?.value == 2 && samples["h_sum"]?.value == 2.5)
        #expect(samples["s_count"]?.value == 2 && samples["s_sum"]?.value == 7)
    }

    @Test func removeAndClearForgetChildrenInProcess() throws {
        let r = Registry()
        let c = try Counter("c", help: "h", labelNames: ["a"], registry: r)
        c.labels("x").increment(); c.labels("y").increment()
        c.remove("x")
        #expect(r.collect()[0].samples.map(\.labels) == [[Label("a", "y")]])
        c.labels("z").increment()
        c.remove(["y"])
        #expect(r.collect()[0].samples.map(\.labels) == [[Label("a", "z")]])
        c.clear()
        #expect(r.collect()[0].samples.isEmpty)
    }
}
