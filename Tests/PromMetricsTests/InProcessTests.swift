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

    @Test func removeAndClearForgetChildrenInProcess() throws {
        let r = Registry()
        let c = try Counter("c", help: "h", labelNames: ["a"], registry: r)
        c.labels("x").increment(); c.labels("y").increment()
        c.remove("x")
        #expect(r.collect()[0].samples.map(\.labels) == [[Label("a", "y")]])
        c.clear()
        #expect(r.collect()[0].samples.isEmpty)
    }
}
