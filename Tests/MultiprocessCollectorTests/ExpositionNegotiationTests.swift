import PromExposition
import Foundation
import Testing
import TestSupport

@Suite("NegotiatedExposition chooses as prometheus_client's choose_encoder")
struct ExpositionNegotiationTests {
    /// Expected choices made by prometheus_client 0.26.0 itself: generated once by feeding the
    /// headers to `ExpositionNegotiationTests.pythonScript` (below) with the interop venv's python (`$PROM_MULTIPROC_PYTHON`)
    /// and pasting its JSON lines; `tableMatchesLivePrometheusClient` re-runs it.
    static let pythonTable: [(accept: String, format: ExpositionFormat, escaping: NameEscaping, contentType: String)] = [
        ("", .prometheusText, .underscores,
         "text/plain; version=0.0.4; charset=utf-8"),
        ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", .openMetrics, .underscores,
         "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"),
        ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", .openMetrics, .allowUTF8,
         "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"),
        ("application/openmetrics-text", .openMetrics, .underscores,
         "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        ("application/openmetrics-text; version=0.0.1", .prometheusText, .underscores,
         "text/plain; version=0.0.4; charset=utf-8"),
        ("application/openmetrics-text;version=0.0.1,text/plain;version=1.0.0", .prometheusText, .underscores,
         "text/plain; version=1.0.0; charset=utf-8; escaping=underscores"),
        ("text/plain;version=0.0.4", .prometheusText, .underscores,
         "text/plain; version=0.0.4; charset=utf-8"),
        ("text/plain", .prometheusText, .underscores,
         "text/plain; version=0.0.4; charset=utf-8"),
        ("*/*", .prometheusText, .underscores,
         "text/plain; version=0.0.4; charset=utf-8"),
        ("application/openmetrics-text;version=2.0.0", .openMetrics, .underscores,
         "application/openmetrics-text; version=2.0.0; charset=utf-8; escaping=underscores"),
        ("application/openmetrics-text;version=1.0.0;escaping=dots", .openMetrics, .dots,
         "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=dots"),
        ("application/openmetrics-text;version=1.0.0;escaping=bogus", .openMetrics, .underscores,
         "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"),
        ("application/openmetrics-text;escaping=allow-utf-8", .openMetrics, .underscores,
         "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (" application/openmetrics-text ; version=1.0.0 ", .openMetrics, .underscores,
         "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"),
        ("Application/OpenMetrics-Text;version=1.0.0", .prometheusText, .underscores,
         "text/plain; version=0.0.4; charset=utf-8"),
        ("text/plain;version=1.0.0;escaping=values", .prometheusText, .values,
         "text/plain; version=1.0.0; charset=utf-8; escaping=values"),
        ("application/openmetrics-text;version=1", .prometheusText, .underscores,
         "text/plain; version=0.0.4; charset=utf-8"),
        ("application/openmetrics-text;version=1.0", .prometheusText, .underscores,
         "text/plain; version=0.0.4; charset=utf-8"),
        ("application/openmetrics-text;version=1.0.0.1", .openMetrics, .underscores,
         "application/openmetrics-text; version=1.0.0.1; charset=utf-8; escaping=underscores"),
        ("application/openmetrics-text;version=10", .openMetrics, .underscores,
         "application/openmetrics-text; version=10; charset=utf-8; escaping=underscores"),
        ("application/openmetrics-text;q=0.1;version=1.0.0,text/plain;q=1", .openMetrics, .underscores,
         "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", .prometheusText, .underscores,
         "text/plain; version=0.0.4; charset=utf-8"),
        ("application/openmetrics-text;version=", .openMetrics, .underscores,
         "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        ("application/openmetrics-text;version = 1.0.0", .openMetrics, .underscores,
         "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        ("application/openmetrics-text;version=+1.0.0", .openMetrics, .underscores,
         "application/openmetrics-text; version=+1.0.0; charset=utf-8; escaping=underscores"),
        ("application/openmetrics-text;version=1_0.0.0", .openMetrics, .underscores,
         "application/openmetrics-text; version=1_0.0.0; charset=utf-8; escaping=underscores"),
        ("text/plain;version=1.0.0,application/openmetrics-text;version=1.0.0", .prometheusText, .underscores,
         "text/plain; version=1.0.0; charset=utf-8; escaping=underscores"),
        ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;escaping=dots", .openMetrics, .allowUTF8,
         "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"),
        ("application/openmetrics-text;version=2.x", .openMetrics, .underscores,
         "application/openmetrics-text; version=2.x; charset=utf-8; escaping=underscores"),
        ("application/openmetrics-text;version=0.x", .prometheusText, .underscores,
         "text/plain; version=0.0.4; charset=utf-8"),
        ("application/openmetrics-text;version= 1.0.0", .openMetrics, .underscores,
         "application/openmetrics-text; version= 1.0.0; charset=utf-8; escaping=underscores"),
        ("text/plain;version=2;escaping=underscores", .prometheusText, .underscores,
         "text/plain; version=1.0.0; charset=utf-8; escaping=underscores"),
        ("application/openmetrics-text,text/plain;version=1.0.0", .openMetrics, .underscores,
         "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (",,application/openmetrics-text;version=1.0.0", .openMetrics, .underscores,
         "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"),
        ("application/openmetrics-text;version=1.0.0 ;escaping=allow-utf-8", .openMetrics, .allowUTF8,
         "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"),
        ("text/plain; escaping=allow-utf-8; version=1.0.0", .prometheusText, .allowUTF8,
         "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"),
        ("application/openmetrics-text;version=01.00.00", .openMetrics, .underscores,
         "application/openmetrics-text; version=01.00.00; charset=utf-8; escaping=underscores"),
    ]

    @Test("each Accept header gets prometheus_client's format, escaping and Content-Type",
          arguments: pythonTable.indices)
    func choosesLikePrometheusClient(index: Int) {
        let row = Self.pythonTable[index]
        let choice = NegotiatedExposition(acceptHeader: row.accept)
        #expect(choice.format == row.format, "\(row.accept)")
        #expect(choice.escaping == row.escaping, "\(row.accept)")
        #expect(choice.contentType == row.contentType, "\(row.accept)")
    }

    @Test func missingHeaderGetsTextFormat() {
        #expect(NegotiatedExposition(acceptHeader: nil) == .prometheusText)
        #expect(NegotiatedExposition.prometheusText.contentType == "text/plain; version=0.0.4; charset=utf-8")
    }

    @Test func prometheusServerHeaderGetsOpenMetrics() {
        // The header Prometheus 2.42 sends (validators.md).
        let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
            + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        let choice = NegotiatedExposition(acceptHeader: accept)
        #expect(choice.format == .openMetrics)
        #expect(choice.contentType.hasPrefix("application/openmetrics-text; version=1.0.0"))
    }

    /// Python raises TypeError comparing ('0-rc1',) with (0,), and its server answers 500; we
    /// pass over such an entry as if its version were too old (documented on the type).
    @Test func uncomparableVersionIsPassedOver() {
        #expect(NegotiatedExposition(acceptHeader: "application/openmetrics-text;version=1.0.0-rc1").format == .prometheusText)
        let next = NegotiatedExposition(acceptHeader: "application/openmetrics-text;version=abc,text/plain;version=1.0.0")
        #expect(next.contentType == "text/plain; version=1.0.0; charset=utf-8; escaping=underscores")
    }

    @Test func tableMatchesLivePrometheusClient() throws {
        let python = try ExternalTool.python.path()
        let headers = Self.pythonTable.map(\.accept)
        let input = String(decoding: try JSONSerialization.data(withJSONObject: headers), as: UTF8.self)
        let result = try run(python, ["-c", Self.pythonScript], input: input)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        try #require(lines.count == Self.pythonTable.count)
        for (line, row) in zip(lines, Self.pythonTable) {
            let fields = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String])
            let expectedFormat: ExpositionFormat = row.format
            #expect(fields == [row.accept, expectedFormat == .openMetrics ? "openMetrics" : "prometheusText",
                               row.escaping.rawValue, row.contentType])
        }
    }

    /// Reads a JSON list of Accept headers on stdin; prints one JSON line per header:
    /// [header, format, escaping, content type] as `choose_encoder` decides.
    static let pythonScript = #"""
import json, sys
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.openmetrics import exposition as om
def describe(header):
    encoder, content_type = choose_encoder(header)
    func = getattr(encoder, 'func', encoder)
    escaping = getattr(encoder, 'keywords', {}).get('escaping', 'underscores')
    fmt = 'openMetrics' if func is om.generate_latest else 'prometheusText'
    return fmt, escaping, content_type
for header in json.load(sys.stdin):
    fmt, esc, ct = describe(header)
    print(json.dumps([header, fmt, esc, ct]))
"""#
}
