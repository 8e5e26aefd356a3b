import MmapStore
import PromExposition
import Foundation
import PromMetrics
import Testing
import TestSupport

/// The golden family set, in Swift and in Python, and what prometheus_client renders for it.
///
/// How the goldens were made: `ExpositionGolden.pythonScript` below builds the same families with
/// prometheus_client.core's metric families and a custom collector, and prints
/// `prometheus_client.exposition.generate_latest` (argument `text`) or
/// `prometheus_client.openmetrics.exposition.generate_latest` (argument `openmetrics`). Its output
/// under prometheus_client 0.26.0 (`$PROM_MULTIPROC_PYTHON -c "$SCRIPT" text`) was pasted as
/// `text` and `openMetrics`; `goldensAreWhatPrometheusClientRendersLive` re-runs it through
/// PROM_MULTIPROC_PYTHON and must still match.
enum ExpositionGolden {
    /// Mirrors the Python families sample for sample, in prometheus_client's sample order;
    /// labels are in the order the metrics API keeps them (label names as declared, `le` last),
    /// so the renderer's sorting is exercised.
    static let families: [MetricFamilySnapshot] = [
        MetricFamilySnapshot(name: "http_requests", kind: .counter, help: "Total HTTP requests.", samples: [
            Sample(name: "http_requests_total", labels: [Label("method", "GET"), Label("code", "200")], value: 1027),
            Sample(name: "http_requests_total", labels: [Label("method", "POST"), Label("code", "500")], value: 3),
            Sample(name: "http_requests_total", labels: [Label("method", "GET"), Label("code", "404")], value: 1_234_567),
        ]),
        MetricFamilySnapshot(
            name: "room_temperature_celsius", kind: .gauge,
            help: "Temperature of a room, \"quoted\" \\ and\nsplit.", unit: "celsius",
            samples: [
                Sample(name: "room_temperature_celsius", labels: [Label("room", "kitchen")], value: 21.5),
                Sample(name: "room_temperature_celsius", labels: [Label("room", "café ☕")], value: -0.0),
                Sample(name: "room_temperature_celsius", labels: [Label("room", "a \"quoted\" \\ back\nslash")], value: .nan),
                Sample(name: "room_temperature_celsius", labels: [Label("room", "hot")], value: .infinity),
                Sample(name: "room_temperature_celsius", labels: [Label("room", "cold")], value: -.infinity),
                Sample(name: "room_temperature_celsius", labels: [Label("room", "big")], value: 1e6),
                Sample(name: "room_temperature_celsius", labels: [Label("room", "small")], value: 0.005),
                Sample(name: "room_temperature_celsius", labels: [Label("room", "tiny")], value: 1e-05),
            ]),
        MetricFamilySnapshot(
            name: "request_latency_seconds", kind: .histogram, help: "Request latency.", unit: "seconds",
            samples: histogram("request_latency_seconds", path: "/api",
                               buckets: [("0.005", 1), ("0.01", 3), ("0.1", 7), ("1.0", 9), ("2.5", 10), ("+Inf", 11)],
                               sum: 4.25)
                + histogram("request_latency_seconds", path: "/",
                            buckets: [("0.005", 0), ("0.01", 0), ("0.1", 0), ("1.0", 0), ("2.5", 0), ("+Inf", 0)],
                            sum: 0)),
        MetricFamilySnapshot(name: "rpc_duration_seconds", kind: .summary, help: "RPC duration.", samples: [
            Sample(name: "rpc_duration_seconds_count", labels: [Label("service", "auth")], value: 12),
            Sample(name: "rpc_duration_seconds_sum", labels: [Label("service", "auth")], value: 0.3),
            Sample(name: "rpc_duration_seconds_count", labels: [Label("service", "日本")], value: 0),
            Sample(name: "rpc_duration_seconds_sum", labels: [Label("service", "日本")], value: 0),
        ]),
        MetricFamilySnapshot(name: "build", kind: .info, help: "Build information.", samples: [
            Sample(name: "build_info", labels: [Label("version", "1.2.3"), Label("revision", "abc\"1\\")], value: 1),
        ]),
        MetricFamilySnapshot(name: "service_state", kind: .stateset, help: "Service state.", samples: [
            Sample(name: "service_state", labels: [Label("instance", "a"), Label("service_state", "running")], value: 1),
            Sample(name: "service_state", labels: [Label("instance", "a"), Label("service_state", "stopped")], value: 0),
        ]),
        MetricFamilySnapshot(name: "legacy_thing", kind: .unknown, help: "Something untyped ünïcödé.", samples: [
            Sample(name: "legacy_thing", value: 42),
        ]),
    ]

    /// Buckets, `_count`, `_sum`: HistogramMetricFamily's sample order.
    static func histogram(_ name: String, path: String, buckets: [(String, Double)], sum: Double) -> [Sample] {
        var samples = buckets.map { le, count in
            Sample(name: name + "_bucket", labels: [Label("path", path), Label("le", le)], value: count)
        }
        samples.append(Sample(name: name + "_count", labels: [Label("path", path)], value: buckets.last?.1 ?? 0))
        samples.append(Sample(name: name + "_sum", labels: [Label("path", path)], value: sum))
        return samples
    }

    /// prometheus_client 0.26.0's `generate_latest` for the golden families.
    static let text = #"""
# HELP http_requests_total Total HTTP requests.
# TYPE http_requests_total counter
http_requests_total{code="200",method="GET"} 1027.0
http_requests_total{code="500",method="POST"} 3.0
http_requests_total{code="404",method="GET"} 1.234567e+06
# HELP room_temperature_celsius Temperature of a room, "quoted" \\ and\nsplit.
# TYPE room_temperature_celsius gauge
room_temperature_celsius{room="kitchen"} 21.5
room_temperature_celsius{room="café ☕"} -0.0
room_temperature_celsius{room="a \"quoted\" \\ back\nslash"} NaN
room_temperature_celsius{room="hot"} +Inf
room_temperature_celsius{room="cold"} -Inf
room_temperature_celsius{room="big"} 1e+06
room_temperature_celsius{room="small"} 0.005
room_temperature_celsius{room="tiny"} 1e-05
# HELP request_latency_seconds Request latency.
# TYPE request_latency_seconds histogram
request_latency_seconds_bucket{le="0.005",path="/api"} 1.0
request_latency_seconds_bucket{le="0.01",path="/api"} 3.0
request_latency_seconds_bucket{le="0.1",path="/api"} 7.0
request_latency_seconds_bucket{le="1.0",path="/api"} 9.0
request_latency_seconds_bucket{le="2.5",path="/api"} 10.0
request_latency_seconds_bucket{le="+Inf",path="/api"} 11.0
request_latency_seconds_count{path="/api"} 11.0
request_latency_seconds_sum{path="/api"} 4.25
request_latency_seconds_bucket{le="0.005",path="/"} 0.0
request_latency_seconds_bucket{le="0.01",path="/"} 0.0
request_latency_seconds_bucket{le="0.1",path="/"} 0.0
request_latency_seconds_bucket{le="1.0",path="/"} 0.0
request_latency_seconds_bucket{le="2.5",path="/"} 0.0
request_latency_seconds_bucket{le="+Inf",path="/"} 0.0
request_latency_seconds_count{path="/"} 0.0
request_latency_seconds_sum{path="/"} 0.0
# HELP rpc_duration_seconds RPC duration.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds_count{service="auth"} 12.0
rpc_duration_seconds_sum{service="auth"} 0.3
rpc_duration_seconds_count{service="日本"} 0.0
rpc_duration_seconds_sum{service="日本"} 0.0
# HELP build_info Build information.
# TYPE build_info gauge
build_info{revision="abc\"1\\",version="1.2.3"} 1.0
# HELP service_state Service state.
# TYPE service_state gauge
service_state{instance="a",service_state="running"} 1.0
service_state{instance="a",service_state="stopped"} 0.0
# HELP legacy_thing Something untyped ünïcödé.
# TYPE legacy_thing untyped
legacy_thing 42.0

"""#

    /// prometheus_client 0.26.0's `openmetrics.exposition.generate_latest` for the golden families.
    static let openMetrics = #"""
# HELP http_requests Total HTTP requests.
# TYPE http_requests counter
http_requests_total{code="200",method="GET"} 1027.0
http_requests_total{code="500",method="POST"} 3.0
http_requests_total{code="404",method="GET"} 1.234567e+06
# HELP room_temperature_celsius Temperature of a room, \"quoted\" \\ and\nsplit.
# TYPE room_temperature_celsius gauge
# UNIT room_temperature_celsius celsius
room_temperature_celsius{room="kitchen"} 21.5
room_temperature_celsius{room="café ☕"} -0.0
room_temperature_celsius{room="a \"quoted\" \\ back\nslash"} NaN
room_temperature_celsius{room="hot"} +Inf
room_temperature_celsius{room="cold"} -Inf
room_temperature_celsius{room="big"} 1e+06
room_temperature_celsius{room="small"} 0.005
room_temperature_celsius{room="tiny"} 1e-05
# HELP request_latency_seconds Request latency.
# TYPE request_latency_seconds histogram
# UNIT request_latency_seconds seconds
request_latency_seconds_bucket{le="0.005",path="/api"} 1.0
request_latency_seconds_bucket{le="0.01",path="/api"} 3.0
request_latency_seconds_bucket{le="0.1",path="/api"} 7.0
request_latency_seconds_bucket{le="1.0",path="/api"} 9.0
request_latency_seconds_bucket{le="2.5",path="/api"} 10.0
request_latency_seconds_bucket{le="+Inf",path="/api"} 11.0
request_latency_seconds_count{path="/api"} 11.0
request_latency_seconds_sum{path="/api"} 4.25
request_latency_seconds_bucket{le="0.005",path="/"} 0.0
request_latency_seconds_bucket{le="0.01",path="/"} 0.0
request_latency_seconds_bucket{le="0.1",path="/"} 0.0
request_latency_seconds_bucket{le="1.0",path="/"} 0.0
request_latency_seconds_bucket{le="2.5",path="/"} 0.0
request_latency_seconds_bucket{le="+Inf",path="/"} 0.0
request_latency_seconds_count{path="/"} 0.0
request_latency_seconds_sum{path="/"} 0.0
# HELP rpc_duration_seconds RPC duration.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds_count{service="auth"} 12.0
rpc_duration_seconds_sum{service="auth"} 0.3
rpc_duration_seconds_count{service="日本"} 0.0
rpc_duration_seconds_sum{service="日本"} 0.0
# HELP build Build information.
# TYPE build info
build_info{revision="abc\"1\\",version="1.2.3"} 1.0
# HELP service_state Service state.
# TYPE service_state stateset
service_state{instance="a",service_state="running"} 1.0
service_state{instance="a",service_state="stopped"} 0.0
# HELP legacy_thing Something untyped ünïcödé.
# TYPE legacy_thing unknown
legacy_thing 42.0
# EOF

"""#

    /// The Python that produced the goldens; argument `text` or `openmetrics`.
    static let pythonScript = #"""
import sys
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as om
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily,
    SummaryMetricFamily, InfoMetricFamily, StateSetMetricFamily, UnknownMetricFamily)

class Golden:
    def collect(self):
        c = CounterMetricFamily('http_requests', 'Total HTTP requests.', labels=['method', 'code'])
        c.add_metric(['GET', '200'], 1027)
        c.add_metric(['POST', '500'], 3)
        c.add_metric(['GET', '404'], 1234567)
        yield c
        g = GaugeMetricFamily('room_temperature_celsius', 'Temperature of a room, "quoted" \\ and\nsplit.',
                              labels=['room'], unit='celsius')
        g.add_metric(['kitchen'], 21.5)
        g.add_metric(['café ☕'], -0.0)
        g.add_metric(['a "quoted" \\ back\nslash'], float('nan'))
        g.add_metric(['hot'], float('inf'))
        g.add_metric(['cold'], float('-inf'))
        g.add_metric(['big'], 1e6)
        g.add_metric(['small'], 0.005)
        g.add_metric(['tiny'], 1e-05)
        yield g
        h = HistogramMetricFamily('request_latency_seconds', 'Request latency.', labels=['path'], unit='seconds')
        h.add_metric(['/api'], buckets=[('0.005', 1), ('0.01', 3), ('0.1', 7), ('1.0', 9), ('2.5', 10), ('+Inf', 11)],
                     sum_value=4.25)
        h.add_metric(['/'], buckets=[('0.005', 0), ('0.01', 0), ('0.1', 0), ('1.0', 0), ('2.5', 0), ('+Inf', 0)],
                     sum_value=0)
        yield h
        s = SummaryMetricFamily('rpc_duration_seconds', 'RPC duration.', labels=['service'])
        s.add_metric(['auth'], count_value=12, sum_value=0.3)
        s.add_metric(['日本'], count_value=0, sum_value=0)
        yield s
        yield InfoMetricFamily('build', 'Build information.', value={'version': '1.2.3', 'revision': 'abc"1\\'})
        st = StateSetMetricFamily('service_state', 'Service state.', labels=['instance'])
        st.add_metric(['a'], {'running': True, 'stopped': False})
        yield st
        yield UnknownMetricFamily('legacy_thing', 'Something untyped ünïcödé.', value=42)

r = CollectorRegistry()
r.register(Golden())
which = sys.argv[1] if len(sys.argv) > 1 else 'both'
if which in ('text', 'both'):
    sys.stdout.write(generate_latest(r).decode())
if which == 'both':
    sys.stdout.write('=====\n')
if which in ('openmetrics', 'both'):
    sys.stdout.write(om.generate_latest(r).decode())
"""#
}

@Suite("Exposition renders golden family sets as prometheus_client does")
struct ExpositionGoldenTests {
    @Test func textFormatMatchesGolden() {
        let bytes = Exposition.render(ExpositionGolden.families, format: .prometheusText)
        #expect(String(decoding: bytes, as: UTF8.self) == ExpositionGolden.text)
    }

    @Test func openMetricsMatchesGolden() {
        let bytes = Exposition.render(ExpositionGolden.families, format: .openMetrics)
        #expect(String(decoding: bytes, as: UTF8.self) == ExpositionGolden.openMetrics)
    }

    @Test func renderingAppendsToExistingBufferContent() {
        var buffer: [UInt8] = Array("prefix\n".utf8)
        Exposition.render(ExpositionGolden.families, format: .openMetrics, into: &buffer)
        #expect(buffer == Array("prefix\n".utf8) + Array(ExpositionGolden.openMetrics.utf8))
    }

    @Test func goldensAreWhatPrometheusClientRendersLive() throws {
        let python = try ExternalTool.python.path()
        for (argument, golden) in [("text", ExpositionGolden.text), ("openmetrics", ExpositionGolden.openMetrics)] {
            let result = try run(python, ["-c", ExpositionGolden.pythonScript, argument])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == golden, "prometheus_client's \(argument) output differs from the golden")
        }
    }
}
