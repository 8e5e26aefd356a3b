import Foundation
import PromExposition
import PromMetrics
import Testing
import TestSupport

/// The protobuf exposition, read back by decoders that share no code with ours:
/// - `protoc --decode=io.prometheus.client.MetricFamily` with the metrics.proto of
///   prometheus/client_model 0.3.0 as Debian ships it (the schema Prometheus 2.42 reads with; it
///   predates `MetricFamily.unit` and the created timestamps, which it prints as raw field
///   numbers);
/// - `protoc --decode_raw`, for the wire format itself;
/// - Google's Python protobuf with the current schema (scripts/python/proto_check.py), which
///   also fails on any field the schema does not know.
///
/// Every expected text below was written by hand from the input families; protoc prints
/// fields by number, doubles in their shortest form (`1027`, `inf`), and strings C-escaped
/// (non-ASCII as octal bytes: see `cEscaped`).
@Suite("Protobuf exposition, decoded by protoc and Python's protobuf")
struct ExpositionProtobufTests {
    // MARK: - Decoders

    /// The messages of a delimited stream, each without its length prefix; nil when the stream
    /// does not split exactly.
    static func split(_ bytes: [UInt8]) -> [[UInt8]]? {
        var messages: [[UInt8]] = [], position = 0
        while position < bytes.count {
            var length = 0, shift = 0
            while true {
                guard position < bytes.count, shift < 64 else { return nil }
                let byte = bytes[position]
                position += 1
                length |= Int(byte & 0x7F) << shift
                shift += 7
                if byte < 0x80 { break }
            }
            guard position + length <= bytes.count else { return nil }
            messages.append(Array(bytes[position ..< (position + length)]))
            position += length
        }
        return messages
    }

    /// Runs protoc on one message read from a file: `--decode` with Debian's metrics.proto, or
    /// `--decode_raw`.
    static func protoc(_ message: [UInt8], raw: Bool = false) throws -> String {
        let protoc = try ExternalTool.protoc.path()
        let clientModel = try ExternalTool.clientModel.path()
        let dir = TempDirectory("pmp-protoc")
        defer { dir.remove() }
        // metrics.proto imports google/protobuf/timestamp.proto, which Debian's protoc does not
        // ship; only `Exemplar` (never written here) uses it.
        try FileManager.default.createDirectory(atPath: dir.file("google/protobuf"), withIntermediateDirectories: true)
        try """
        syntax = "proto3";
        package google.protobuf;
        message Timestamp { int64 seconds = 1; int32 nanos = 2; }

        """.write(toFile: dir.file("google/protobuf/timestamp.proto"), atomically: true, encoding: .utf8)
        try Data(message).write(to: URL(fileURLWithPath: dir.file("message.bin")))
        let arguments = raw
            ? ["--decode_raw"]
            : ["-I", clientModel, "-I", dir.path, "--decode=io.prometheus.client.MetricFamily",
               "io/prometheus/client/metrics.proto"]
        let result = try run("/bin/sh", ["-c", #"f="$1"; shift; exec "$@" < "$f""#, "sh", dir.file("message.bin"),
                                         protoc] + arguments)
        guard result.status == 0, result.stderr.isEmpty else {
            throw DecodeFailure(description: "protoc \(arguments.joined(separator: " ")): \(result.status) \(result.stderr)")
        }
        return result.stdout
    }

    /// Every message of `bytes` through `protoc --decode`, separated by `---` lines.
    static func decoded(_ bytes: [UInt8]) throws -> String {
        guard let messages = split(bytes) else { throw DecodeFailure(description: "the stream does not split into messages") }
        return try messages.map { try protoc($0) }.joined(separator: "---\n")
    }

    /// scripts/python/proto_check.py on `bytes` (written to a file) with `arguments` before the
    /// file's path and `after` behind it.
    static func python(_ bytes: [UInt8], _ arguments: [String] = [], after: [String] = []) throws -> ProcessResult {
        let dir = TempDirectory("pmp-proto-py")
        defer { dir.remove() }
        try Data(bytes).write(to: URL(fileURLWithPath: dir.file("body.bin")))
        return try runPython("proto_check.py", arguments + [dir.file("body.bin")] + after)
    }

    struct DecodeFailure: Error, CustomStringConvertible { var description: String }

    /// A string as protoc's text format prints it (C++ `CEscape`): `\n`, `\r`, `\t`, `\"`,
    /// `\'`, `\\`, printable ASCII as itself, every other byte as three octal digits.
    static func cEscaped(_ text: String) -> String {
        var out = "\""
        for byte in text.utf8 {
            switch byte {
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x22: out += "\\\""
            case 0x27: out += "\\'"
            case 0x5C: out += "\\\\"
            case 0x20 ..< 0x7F: out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let octal = String(byte, radix: 8)
                out += "\\" + String(repeating: "0", count: 3 - octal.count) + octal
            }
        }
        return out + "\""
    }

    // MARK: - Every type of the model

    /// The golden family set of the text formats (ExpositionGoldenTests): a counter, a gauge
    /// with a unit and every special value, a histogram with a unit and two series, a summary,
    /// an info, a stateset, an unknown; escapes and UTF-8 in labels and help texts.
    @Test func everyTypeDecodesWithTheUpstreamSchema() throws {
        let bytes = Exposition.render(ExpositionGolden.families, format: .protobuf)
        let c = Self.cEscaped
        let gauge = [("kitchen", "21.5"), ("café ☕", "-0"), ("a \"quoted\" \\ back\nslash", "nan"), ("hot", "inf"),
                     ("cold", "-inf"), ("big", "1000000"), ("small", "0.005"), ("tiny", "1e-05")]
        func bucket(_ count: Int, _ bound: String) -> String {
            "    bucket {\n      cumulative_count: \(count)\n      upper_bound: \(bound)\n    }\n"
        }
        let bounds = ["0.005", "0.01", "0.1", "1", "2.5", "inf"]
        let expected = """
            name: "http_requests_total"
            help: "Total HTTP requests."
            type: COUNTER
            metric {
              label {
                name: "code"
                value: "200"
              }
              label {
                name: "method"
                value: "GET"
              }
              counter {
                value: 1027
              }
            }
            metric {
              label {
                name: "code"
                value: "500"
              }
              label {
                name: "method"
                value: "POST"
              }
              counter {
                value: 3
              }
            }
            metric {
              label {
                name: "code"
                value: "404"
              }
              label {
                name: "method"
                value: "GET"
              }
              counter {
                value: 1234567
              }
            }
            ---
            name: "room_temperature_celsius"
            help: \(c("Temperature of a room, \"quoted\" \\ and\nsplit."))
            type: GAUGE

            """
            + gauge.map { room, value in
                "metric {\n  label {\n    name: \"room\"\n    value: \(c(room))\n  }\n  gauge {\n    value: \(value)\n  }\n}\n"
            }.joined()
            + """
            5: "celsius"
            ---
            name: "request_latency_seconds"
            help: "Request latency."
            type: HISTOGRAM
            metric {
              label {
                name: "path"
                value: "/api"
              }
              histogram {
                sample_count: 11
                sample_sum: 4.25

            """
            + zip([1, 3, 7, 9, 10, 11], bounds).map { bucket($0, $1) }.joined()
            + """
              }
            }
            metric {
              label {
                name: "path"
                value: "/"
              }
              histogram {
                sample_count: 0
                sample_sum: 0

            """
            + bounds.map { bucket(0, $0) }.joined()
            + """
              }
            }
            5: "seconds"
            ---
            name: "rpc_duration_seconds"
            help: "RPC duration."
            type: SUMMARY
            metric {
              label {
                name: "service"
                value: "auth"
              }
              summary {
                sample_count: 12
                sample_sum: 0.3
              }
            }
            metric {
              label {
                name: "service"
                value: \(c("日本"))
              }
              summary {
                sample_count: 0
                sample_sum: 0
              }
            }
            ---
            name: "build_info"
            help: "Build information."
            type: GAUGE
            metric {
              label {
                name: "revision"
                value: \(c("abc\"1\\"))
              }
              label {
                name: "version"
                value: "1.2.3"
              }
              gauge {
                value: 1
              }
            }
            ---
            name: "service_state"
            help: "Service state."
            type: GAUGE
            metric {
              label {
                name: "instance"
                value: "a"
              }
              label {
                name: "service_state"
                value: "running"
              }
              gauge {
                value: 1
              }
            }
            metric {
              label {
                name: "instance"
                value: "a"
              }
              label {
                name: "service_state"
                value: "stopped"
              }
              gauge {
                value: 0
              }
            }
            ---
            name: "legacy_thing"
            help: \(c("Something untyped ünïcödé."))
            type: UNTYPED
            metric {
              untyped {
                value: 42
              }
            }

            """
        let decoded = try Self.decoded(bytes)
        #expect(decoded == expected)
        if decoded != expected {
            for (line, (a, b)) in zip(decoded.split(separator: "\n"), expected.split(separator: "\n")).enumerated() where a != b {
                Issue.record("first difference at line \(line + 1): decoded \(a) expected \(b)")
                break
            }
        }
    }

    /// Python's protobuf with the current schema knows every field written (including
    /// `MetricFamily.unit`), and reads the same families.
    @Test func pythonReadsEveryFieldWithTheCurrentSchema() throws {
        let bytes = Exposition.render(ExpositionGolden.families, format: .protobuf)
        let result = try Self.python(bytes, ["--summary"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == """
            {"name": "http_requests_total", "type": 0, "metrics": 3, "unit": null}
            {"name": "room_temperature_celsius", "type": 1, "metrics": 8, "unit": "celsius"}
            {"name": "request_latency_seconds", "type": 4, "metrics": 2, "unit": "seconds"}
            {"name": "rpc_duration_seconds", "type": 2, "metrics": 2, "unit": null}
            {"name": "build_info", "type": 1, "metrics": 1, "unit": null}
            {"name": "service_state", "type": 1, "metrics": 2, "unit": null}
            {"name": "legacy_thing", "type": 3, "metrics": 1, "unit": null}

            """)
    }

    /// A scrape-sized set (long family messages, whose length prefixes take several bytes)
    /// says in protobuf what it says in text: Prometheus's reading of the protobuf families,
    /// sample by sample, equals prometheus_client's parse of our text rendering.
    @Test func realisticScrapeSaysTheSameInProtobufAndText() throws {
        let families = ExpositionValidatorTests.realisticFamilies(series: 2000)
        let dir = TempDirectory("pmp-proto-text")
        defer { dir.remove() }
        let text = dir.file("body.txt")
        try Data(Exposition.render(families, format: .prometheusText)).write(to: URL(fileURLWithPath: text))
        let bytes = Exposition.render(families, format: .protobuf)
        let compared = try Self.python(bytes, ["--compare-text"], after: [text])
        #expect(compared.status == 0, "\(compared.stderr)")
        // 2000 counters, 2000 gauges; 200 histograms of 12 buckets, count and sum; 200
        // summaries of count and sum; an info, two states, an untyped value.
        let expected: Int = 2000 + 2000 + 200 * 14 + 200 * 2 + 1 + 2 + 1
        #expect(compared.stdout == "\(expected) samples agree\n")
        let summary = try Self.python(bytes, ["--summary"])
        #expect(summary.status == 0, "\(summary.stderr)")
        #expect(summary.stdout.split(separator: "\n").map { $0.split(separator: ",")[2] } == [
            #" "metrics": 2000"#, #" "metrics": 2000"#, #" "metrics": 200"#, #" "metrics": 200"#,
            #" "metrics": 1"#, #" "metrics": 2"#, #" "metrics": 1"#,
        ])
    }

    // MARK: - Native histograms

    /// The hand-computed case: positive buckets at -2, -1, 3, 4, 5 make the spans (-2, 2) and
    /// (3, 3); deltas are each count minus the previous one, across spans; negative buckets at
    /// 0 and 1 make the span (0, 2); the zero bucket and schema as given.
    @Test func nativeHistogramSpansAndDeltas() throws {
        let native = NativeHistogramSnapshot(
            labels: [Label("method", "GET")], schema: 3, zeroThreshold: 0.001, zeroCount: 2, count: 17, sum: 42.5,
            positiveBuckets: [.init(index: -2, count: 1), .init(index: -1, count: 3), .init(index: 3, count: 2),
                              .init(index: 4, count: 5), .init(index: 5, count: 1)],
            negativeBuckets: [.init(index: 0, count: 2), .init(index: 1, count: 1)])
        let family = MetricFamilySnapshot(name: "rpc_latency_seconds", kind: .histogram, help: "RPC latency.",
                                          samples: [], nativeHistograms: [native])
        let bytes = Exposition.render([family], format: .protobuf)
        #expect(try Self.decoded(bytes) == """
            name: "rpc_latency_seconds"
            help: "RPC latency."
            type: HISTOGRAM
            metric {
              label {
                name: "method"
                value: "GET"
              }
              histogram {
                sample_count: 17
                sample_sum: 42.5
                schema: 3
                zero_threshold: 0.001
                zero_count: 2
                negative_span {
                  offset: 0
                  length: 2
                }
                negative_delta: 2
                negative_delta: -1
                positive_span {
                  offset: -2
                  length: 2
                }
                positive_span {
                  offset: 3
                  length: 3
                }
                positive_delta: 1
                positive_delta: 2
                positive_delta: -1
                positive_delta: 3
                positive_delta: -4
              }
            }

            """)
        let python = try Self.python(bytes)
        #expect(python.status == 0, "\(python.stderr)")
    }

    /// Repeated scalars are written unpacked, one tag per value, as proto2 declares them: in the
    /// raw wire format each delta is its own field 13 (ZigZag: 1→2, 2→4, -1→1, 3→6, -4→7),
    /// each span its own field 12 (offset -2 → 3).
    @Test func nativeBucketsAreUnpackedOnTheWire() throws {
        let native = NativeHistogramSnapshot(
            schema: 0, count: 12, sum: 1,
            positiveBuckets: [.init(index: -2, count: 1), .init(index: -1, count: 3), .init(index: 3, count: 2),
                              .init(index: 4, count: 5), .init(index: 5, count: 1)])
        let family = MetricFamilySnapshot(name: "h", kind: .histogram, help: "", samples: [], nativeHistograms: [native])
        let messages = try #require(Self.split(Exposition.render([family], format: .protobuf)))
        try #require(messages.count == 1)
        #expect(try Self.protoc(messages[0], raw: true) == """
            1: "h"
            2: ""
            3: 4
            4 {
              7 {
                1: 12
                2: 0x3ff0000000000000
                5: 0
                6: 0x0000000000000000
                7: 0
                12 {
                  1: 3
                  2: 2
                }
                12 {
                  1: 6
                  2: 3
                }
                13: 2
                13: 4
                13: 1
                13: 6
                13: 7
              }
            }

            """)
    }

    /// A series with a classic and a native part is one `Histogram` message holding both (the
    /// count and sum from the native part); a classic-only series has no native fields; a
    /// native-only series comes after the classic ones.
    @Test func classicAndNativePartsShareOneMessage() throws {
        func classic(_ method: String, _ counts: [Double], sum: Double) -> [Sample] {
            zip(["0.5", "+Inf"], counts).map { Sample(name: "req_seconds_bucket", labels: [Label("method", method), Label("le", $0)], value: $1) }
                + [Sample(name: "req_seconds_count", labels: [Label("method", method)], value: counts.last ?? 0),
                   Sample(name: "req_seconds_sum", labels: [Label("method", method)], value: sum)]
        }
        let family = MetricFamilySnapshot(
            name: "req_seconds", kind: .histogram, help: "Requests.", unit: "seconds",
            samples: classic("GET", [1, 2], sum: 1.25) + classic("POST", [3, 4], sum: 2.5),
            nativeHistograms: [
                NativeHistogramSnapshot(labels: [Label("method", "PUT")], schema: -4, count: 1, sum: 100,
                                        positiveBuckets: [.init(index: 1, count: 1)]),
                NativeHistogramSnapshot(labels: [Label("method", "POST")], schema: 0, zeroThreshold: 0.25, zeroCount: 1,
                                        count: 4, sum: 2.5, positiveBuckets: [.init(index: 0, count: 2), .init(index: 1, count: 1)]),
            ])
        #expect(try Self.decoded(Exposition.render([family], format: .protobuf)) == """
            name: "req_seconds"
            help: "Requests."
            type: HISTOGRAM
            metric {
              label {
                name: "method"
                value: "GET"
              }
              histogram {
                sample_count: 2
                sample_sum: 1.25
                bucket {
                  cumulative_count: 1
                  upper_bound: 0.5
                }
                bucket {
                  cumulative_count: 2
                  upper_bound: inf
                }
              }
            }
            metric {
              label {
                name: "method"
                value: "POST"
              }
              histogram {
                sample_count: 4
                sample_sum: 2.5
                bucket {
                  cumulative_count: 3
                  upper_bound: 0.5
                }
                bucket {
                  cumulative_count: 4
                  upper_bound: inf
                }
                schema: 0
                zero_threshold: 0.25
                zero_count: 1
                positive_span {
                  offset: 0
                  length: 2
                }
                positive_delta: 2
                positive_delta: -1
              }
            }
            metric {
              label {
                name: "method"
                value: "PUT"
              }
              histogram {
                sample_count: 1
                sample_sum: 100
                schema: -4
                zero_threshold: 0
                zero_count: 0
                positive_span {
                  offset: 1
                  length: 1
                }
                positive_delta: 1
              }
            }
            5: "seconds"

            """)
    }

    /// Counts that are not whole numbers make a float histogram: `sample_count_float`,
    /// `zero_count_float` and absolute bucket counts instead of deltas. A native histogram with
    /// nothing in it and a zero threshold of 0 carries the empty span that marks it as native.
    @Test func floatAndEmptyNativeHistograms() throws {
        let family = MetricFamilySnapshot(name: "w", kind: .histogram, help: "Weighted.", samples: [], nativeHistograms: [
            NativeHistogramSnapshot(labels: [Label("k", "float")], schema: 1, zeroThreshold: 1e-9, zeroCount: 0.5,
                                    count: 3.75, sum: -1.5,
                                    positiveBuckets: [.init(index: 7, count: 1.25)],
                                    negativeBuckets: [.init(index: -3, count: 2), .init(index: -1, count: 0)]),
            NativeHistogramSnapshot(labels: [Label("k", "empty")], schema: 8, count: 0, sum: 0),
        ])
        #expect(try Self.decoded(Exposition.render([family], format: .protobuf)) == """
            name: "w"
            help: "Weighted."
            type: HISTOGRAM
            metric {
              label {
                name: "k"
                value: "float"
              }
              histogram {
                sample_sum: -1.5
                sample_count_float: 3.75
                schema: 1
                zero_threshold: 1e-09
                zero_count_float: 0.5
                negative_span {
                  offset: -3
                  length: 1
                }
                negative_span {
                  offset: 1
                  length: 1
                }
                negative_count: 2
                negative_count: 0
                positive_span {
                  offset: 7
                  length: 1
                }
                positive_count: 1.25
              }
            }
            metric {
              label {
                name: "k"
                value: "empty"
              }
              histogram {
                sample_count: 0
                sample_sum: 0
                schema: 8
                zero_threshold: 0
                zero_count: 0
                positive_span {
                  offset: 0
                  length: 0
                }
              }
            }

            """)
    }

    /// The text formats cannot carry native buckets: a series with a classic part shows that
    /// part, and a native-only series its `_count`, `_sum` and `le="+Inf"` bucket, so the
    /// family is never lost. Both outputs pass promtool and the strict OpenMetrics parser.
    @Test func textFormatsShowTheClassicPartOrCountAndSum() throws {
        let family = MetricFamilySnapshot(
            name: "req_seconds", kind: .histogram, help: "Requests.",
            samples: [
                Sample(name: "req_seconds_bucket", labels: [Label("method", "GET"), Label("le", "+Inf")], value: 2),
                Sample(name: "req_seconds_count", labels: [Label("method", "GET")], value: 2),
                Sample(name: "req_seconds_sum", labels: [Label("method", "GET")], value: 1.5),
            ],
            nativeHistograms: [
                NativeHistogramSnapshot(labels: [Label("method", "GET")], schema: 0, count: 2, sum: 1.5,
                                        positiveBuckets: [.init(index: 0, count: 2)]),
                NativeHistogramSnapshot(labels: [Label("method", "PUT")], schema: 0, count: 3, sum: 0.75,
                                        positiveBuckets: [.init(index: -1, count: 3)]),
            ])
        let text = Exposition.render([family], format: .prometheusText)
        #expect(String(decoding: text, as: UTF8.self) == """
            # HELP req_seconds Requests.
            # TYPE req_seconds histogram
            req_seconds_bucket{le="+Inf",method="GET"} 2.0
            req_seconds_count{method="GET"} 2.0
            req_seconds_sum{method="GET"} 1.5
            req_seconds_bucket{le="+Inf",method="PUT"} 3.0
            req_seconds_count{method="PUT"} 3.0
            req_seconds_sum{method="PUT"} 0.75

            """)
        let openMetrics = Exposition.render([family], format: .openMetrics)
        #expect(String(decoding: openMetrics, as: UTF8.self) == """
            # HELP req_seconds Requests.
            # TYPE req_seconds histogram
            req_seconds_bucket{le="+Inf",method="GET"} 2.0
            req_seconds_count{method="GET"} 2.0
            req_seconds_sum{method="GET"} 1.5
            req_seconds_bucket{le="+Inf",method="PUT"} 3.0
            req_seconds_count{method="PUT"} 3.0
            req_seconds_sum{method="PUT"} 0.75
            # EOF

            """)
        let promtool = try run(try ExternalTool.promtool.path(), ["check", "metrics"], input: String(decoding: text, as: UTF8.self))
        #expect(promtool.status == 0, "promtool: \(promtool.stdout)\(promtool.stderr)")
        let strict = try runPython("om_check.py", [], input: String(decoding: openMetrics, as: UTF8.self))
        #expect(strict.status == 0, "\(strict.stderr)")
    }

    // MARK: - Names, strays, framing

    /// Names outside the legacy set are escaped as the negotiation says; under `allow-utf-8`
    /// they are written as they are (a protobuf string needs no quotes). Label values are never
    /// escaped.
    @Test func namesAreEscapedAsNegotiated() throws {
        let families = ExpositionValidatorTests.utf8Families
        let underscores = try Self.decoded(Exposition.render(families, format: .protobuf, escaping: .underscores))
        #expect(underscores.contains("name: \"http_requests_total\"\n"))
        #expect(underscores.contains("    name: \"status_code\"\n"))
        #expect(underscores.contains("name: \"temp_rature\"\n"))
        #expect(underscores.contains("    name: \"pi_ce\"\n    value: \"cuisine\"\n"))
        let utf8 = try Self.decoded(Exposition.render(families, format: .protobuf, escaping: .allowUTF8))
        #expect(utf8.contains("name: \"http.requests_total\"\n"))
        #expect(utf8.contains("    name: \"status.code\"\n"))
        #expect(utf8.contains("name: \(Self.cEscaped("température"))\n"))
        #expect(utf8.contains("    name: \(Self.cEscaped("pièce"))\n"))
    }

    /// A counter's `_created` becomes its `created_timestamp` (unknown to the 0.3.0 schema, so
    /// checked with the current one); a sample that fits no field becomes a family of its own,
    /// as the text format moves it; a family with no series is left out.
    @Test func createdTimestampsStraysAndEmptyFamilies() throws {
        let families = [
            MetricFamilySnapshot(name: "jobs", kind: .counter, help: "Jobs.", samples: [
                Sample(name: "jobs_total", labels: [Label("q", "a")], value: 5),
                Sample(name: "jobs_created", labels: [Label("q", "a")], value: 1_700_000_000.5),
            ]),
            MetricFamilySnapshot(name: "nothing", kind: .gauge, help: "No series.", samples: []),
            MetricFamilySnapshot(name: "g", kind: .histogram, help: "Odd.", samples: [
                Sample(name: "g_gsum", labels: [Label("x", "1")], value: 7),
            ]),
        ]
        let bytes = Exposition.render(families, format: .protobuf)
        let result = try Self.python(bytes)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == """
            name: "jobs_total"
            help: "Jobs."
            type: COUNTER
            metric {
              label {
                name: "q"
                value: "a"
              }
              counter {
                value: 5.0
                created_timestamp {
                  seconds: 1700000000
                  nanos: 500000000
                }
              }
            }
            ---
            name: "g_gsum"
            help: "Odd."
            type: GAUGE
            metric {
              label {
                name: "x"
                value: "1"
              }
              gauge {
                value: 7.0
              }
            }

            """)
    }

    /// `render(into:)` appends to what the buffer holds; a long label value (more than 127
    /// bytes, so its length takes two bytes and the enclosing messages move) reads back whole.
    @Test func renderAppendsAndLongLengthsReadBack() throws {
        let long = String(repeating: "é", count: 300)
        let families = [MetricFamilySnapshot(name: "g", kind: .gauge, help: "", samples: [
            Sample(name: "g", labels: [Label("v", long)], value: 1),
        ])]
        var buffer: [UInt8] = [0xAA]
        Exposition.render(families, format: .protobuf, into: &buffer)
        #expect(buffer.first == 0xAA)
        let decoded = try Self.decoded(Array(buffer.dropFirst()))
        #expect(decoded.contains("value: \(Self.cEscaped(long))\n"))
        #expect(Exposition.render([], format: .protobuf).isEmpty)
    }

    // MARK: - Negotiation

    /// Prometheus 2.42 with `--enable-feature=native-histograms` (its header, as captured), the
    /// same with a weight, and an escaping request get protobuf; a protobuf entry with another
    /// encoding or message, or behind an OpenMetrics entry, does not.
    @Test func protobufIsNegotiatedWhenAskedForFirst() {
        let type = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        let cases: [(String, ExpositionFormat, NameEscaping, String)] = [
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
             .protobuf, .underscores, type),
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3",
             .protobuf, .underscores, type),
            ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=allow-utf-8",
             .protobuf, .allowUTF8, type + "; escaping=allow-utf-8"),
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text,application/openmetrics-text;version=1.0.0",
             .openMetrics, .underscores, "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"),
            ("application/vnd.google.protobuf;encoding=delimited", .prometheusText, .underscores,
             "text/plain; version=0.0.4; charset=utf-8"),
            ("application/openmetrics-text;version=1.0.0,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
             .openMetrics, .underscores, "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"),
        ]
        for (accept, format, escaping, contentType) in cases {
            let choice = NegotiatedExposition(acceptHeader: accept)
            #expect(choice.format == format, "\(accept)")
            #expect(choice.escaping == escaping, "\(accept)")
            #expect(choice.contentType == contentType, "\(accept)")
        }
    }
}
