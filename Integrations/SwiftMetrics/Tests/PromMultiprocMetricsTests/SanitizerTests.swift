import PromMultiprocMetrics
import Testing

@Suite struct PrometheusNameSanitizerTests {
    /// swift-prometheus 2.4.1's rules, plus the cases where it keeps an invalid name.
    @Test(arguments: [
        ("http.server.request.duration", "http_server_request_duration"),
        ("requests_total", "requests_total"),
        ("ns:requests", "ns:requests"),
        ("http_2xx", "http_2xx"),
        ("x9", "x9"),
        ("1st", "_st"),
        ("9lives", "_lives"),
        ("a b-c/d", "a_b_c_d"),
        ("µs", "_s"),
        ("caf\u{E9}", "caf_"),
        ("cafe\u{301}", "caf_"),      // one character, two scalars: one `_`
        ("👍🏽ok", "_ok"),
        ("a\r\nb", "a_b"),
        ("A\u{20DD}", "_"),           // swift-prometheus keeps this (invalid) name
        ("", "_"),                    // swift-prometheus keeps it empty
        ("_", "_"),
        ("__private", "__private"),   // only label names reserve `__`
    ])
    func metricNames(raw: String, expected: String) {
        #expect(PrometheusNameSanitizer.metricName(raw) == expected)
    }

    @Test(arguments: [
        ("http.request.method", "http_request_method"),
        ("status", "status"),
        ("ns:x", "ns_x"),
        ("0", "_"),
        ("2xx", "_xx"),
        ("HTTP-Status", "HTTP_Status"),
        ("__meta", "_meta"),
        ("___x", "_x"),
        ("__", "_"),
        ("_x", "_x"),
        ("", "_"),
    ])
    func labelNames(raw: String, expected: String) {
        #expect(PrometheusNameSanitizer.labelName(raw) == expected)
    }

    @Test func validNamesAreReturnedAsGiven() {
        for name in ["a", "http_requests_total", "ns:sub:name", "_x9"] {
            #expect(PrometheusNameSanitizer.metricName(name) == name)
        }
    }
}

@Suite struct LabelSetTests {
    @Test func dimensionsAreSortedByName() {
        let a = LabelSet(dimensions: [("method", "GET"), ("code", "200")], reserved: .none)
        let b = LabelSet(dimensions: [("code", "200"), ("method", "GET")], reserved: .none)
        #expect(a.names == ["code", "method"])
        #expect(a.values == ["200", "GET"])
        #expect(a == b)
    }

    @Test func reservedNamesAreRenamedForTheirTypeOnly() {
        #expect(LabelSet(dimensions: [("le", "x")], reserved: .histogram).names == ["_le"])
        #expect(LabelSet(dimensions: [("pid", "1")], reserved: .gauge).names == ["_pid"])
        #expect(LabelSet(dimensions: [("le", "x"), ("pid", "1")], reserved: .none).names == ["le", "pid"])
    }

    @Test func namesThatCollideGetASuffixInTheOrderGiven() {
        let set = LabelSet(dimensions: [("a-b", "1"), ("a_b", "2"), ("a.b", "3"), ("a_b_2", "4")], reserved: .none)
        #expect(set.names == ["a_b", "a_b_2", "a_b_3", "a_b_2_2"].sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        let byName = Dictionary(uniqueKeysWithValues: zip(set.names, set.values))
        #expect(byName == ["a_b": "1", "a_b_2": "2", "a_b_3": "3", "a_b_2_2": "4"])
    }

    @Test func renamedReservedNameCollidesLikeAnyOther() {
        let set = LabelSet(dimensions: [("le", "1"), ("_le", "2")], reserved: .histogram)
        let byName = Dictionary(uniqueKeysWithValues: zip(set.names, set.values))
        #expect(byName == ["_le": "1", "_le_2": "2"])
    }
}
