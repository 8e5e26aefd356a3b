import Testing
import PromMetrics
import TestSupport

@Suite struct NamingTests {
    @Test(arguments: [
        ("http_requests", true), ("http_2xx", true), ("a:b", true), (":x", true), ("_x", true),
        ("2xx", false), ("", false), ("a-b", false), ("a b", false), ("é", false), ("x9", true), ("x09", true),
    ])
    func metricNames(name: String, valid: Bool) {
        #expect(MetricNaming.isValidMetricName(name) == valid)
    }

    @Test(arguments: [
        ("method", true), ("http_2xx", true), ("_x", true), ("a:b", false), ("9a", false), ("", false), ("le", true),
    ])
    func labelNames(name: String, valid: Bool) {
        #expect(MetricNaming.isValidLabelName(name) == valid)
    }

    @Test func counterTotalSuffixIsDroppedFromTheFamilyAndAddedToTheSample() throws {
        let r = Registry()
        let c = try Counter("http_requests_total", help: "h", registry: r)
        #expect(c.name == "http_requests")
        #expect(r.collect().first?.samples.first?.name == "http_requests_total")
    }

    @Test func namespaceSubsystemAndUnitAreJoinedOnce() throws {
        let r = Registry()
        let c = try Counter("m", help: "h", namespace: "ns", subsystem: "ss", unit: "seconds", registry: r)
        #expect(c.name == "ns_ss_m_seconds")
        let c2 = try Counter("m_seconds_total", help: "h", namespace: "ns2", unit: "seconds", registry: r)
        #expect(c2.name == "ns2_m_seconds")
        #expect(r.collect().flatMap(\.samples).map(\.name).sorted() == ["ns2_m_seconds_total", "ns_ss_m_seconds_total"])
    }

    @Test func invalidMetricNameIsRejected() {
        #expect(throws: MetricError.self) { try Counter("2xx", help: "h", registry: Registry()) }
        #expect(throws: MetricError.self) { try Gauge("a-b", help: "h", registry: Registry()) }
        #expect(throws: MetricError.self) { try Gauge("", help: "h", registry: Registry()) }
    }

    @Test func invalidAndReservedLabelNamesAreRejected() {
        let r = Registry()
        #expect(throws: MetricError.self) { try Counter("c1", help: "h", labelNames: ["a-b"], registry: r) }
        #expect(throws: MetricError.self) { try Counter("c2", help: "h", labelNames: ["__x"], registry: r) }
        #expect(throws: MetricError.self) { try Counter("c3", help: "h", labelNames: ["a", "a"], registry: r) }
        #expect(throws: MetricError.self) { try Histogram("h1", help: "h", labelNames: ["le"], registry: r) }
        #expect(throws: MetricError.self) { try Summary("s1", help: "h", labelNames: ["quantile"], registry: r) }
        // `le` and `quantile` are fine elsewhere, and pid is fine on a gauge in memory.
        #expect(throws: Never.self) { try Counter("c4", help: "h", labelNames: ["le", "quantile"], registry: r) }
        #expect(throws: Never.self) { try Gauge("g1", help: "h", labelNames: ["pid"], registry: r) }
    }

    @Test func pidLabelOnAGaugeIsRejectedInMultiprocessMode() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let r = Registry(storage: try .multiprocess(directory: dir.path, identity: .fixed("1")))
        #expect(throws: MetricError.self) { try Gauge("g", help: "h", labelNames: ["pid"], registry: r) }
        #expect(throws: Never.self) { try Counter("c", help: "h", labelNames: ["pid"], registry: r) }
    }

    @Test func duplicateRegistrationIsRejected() throws {
        let r = Registry()
        _ = try Counter("c", help: "h", registry: r)
        #expect(throws: MetricError.self) { try Counter("c_total", help: "h", registry: r) }
        #expect(throws: MetricError.self) { try Gauge("c_total", help: "h", registry: r) }
        #expect(throws: MetricError.self) { try Gauge("c", help: "h", registry: r) }
        let h = try Histogram("h", help: "h", registry: r)
        _ = h
        #expect(throws: MetricError.self) { try Gauge("h_bucket", help: "h", registry: r) }
        // Another registry is independent.
        #expect(throws: Never.self) { try Counter("c", help: "h", registry: Registry()) }
    }

    @Test func histogramBucketsMustBeSortedAndGetInf() throws {
        let r = Registry()
        #expect(throws: MetricError.self) { try Histogram("h1", help: "h", buckets: [2, 1], registry: r) }
        #expect(throws: MetricError.self) { try Histogram("h2", help: "h", buckets: [.nan], registry: r) }
        #expect(throws: MetricError.self) { try Histogram("h3", help: "h", buckets: [.infinity], registry: r) }
        let h = try Histogram("h4", help: "h", buckets: [1, 2], registry: r)
        #expect(h.upperBounds == [1, 2, .infinity])
        #expect(try Histogram("h5", help: "h", registry: r).upperBounds == Histogram.defaultBuckets)
    }

    @Test func infoAndEnumDeclarationErrors() {
        let r = Registry()
        #expect(throws: MetricError.self) { try Enum("e1", help: "h", states: [], registry: r) }
        #expect(throws: MetricError.self) { try Enum("e2", help: "h", states: ["a", "a"], registry: r) }
        #expect(throws: MetricError.self) { try Enum("e3", help: "h", labelNames: ["e3"], states: ["a"], registry: r) }
        #expect(throws: MetricError.self) { try MetricNaming.familyName(name: "i", namespace: "", subsystem: "", unit: "seconds", kind: .info) }
    }
}
