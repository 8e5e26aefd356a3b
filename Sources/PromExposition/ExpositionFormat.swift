/// An exposition format.
public enum ExpositionFormat: String, Sendable, Hashable, CaseIterable {
    /// The Prometheus text format 0.0.4 (`text/plain`).
    case prometheusText = "text"
    /// OpenMetrics 1.0.0 (`application/openmetrics-text`), ending in `# EOF`.
    case openMetrics = "openmetrics"
    /// Length-delimited `io.prometheus.client.MetricFamily` protobuf messages
    /// (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited`),
    /// the only format that carries native histograms.
    case protobuf
}

/// The format, name escaping and `Content-Type` to answer a scrape with, chosen from its
/// `Accept` header as prometheus_client 0.26.0 chooses (`exposition.choose_encoder`), plus
/// the protobuf format, which prometheus_client does not have.
///
/// prometheus_client ignores `q=` weights: it walks the comma-separated entries in order and
/// takes the first that is
/// - `application/openmetrics-text` without a `version` (OpenMetrics 1.0.0, underscores), or
///   with a version of at least 1.0.0 (OpenMetrics, the entry's `escaping`, and a
///   Content-Type that repeats the requested version);
/// - `text/plain` with a version of at least 1.0.0 (the text format, with
///   `text/plain; version=1.0.0; charset=utf-8; escaping=...`).
///
/// Here an entry `application/vnd.google.protobuf` with `proto=io.prometheus.client.MetricFamily`
/// and `encoding=delimited` is also taken, in its turn, as client_golang takes it: the protobuf
/// format, the entry's `escaping` (underscores without one), and that media type as the
/// Content-Type. A header without such an entry is answered exactly as prometheus_client
/// answers it.
///
/// Anything else, including `text/plain;version=0.0.4`, `*/*` and no header at all, falls
/// through to the text format 0.0.4. Prometheus 2.x asks
/// `application/openmetrics-text;version=1.0.0,...` and so gets OpenMetrics; with its
/// `native-histograms` feature on it asks
/// `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,...`
/// first and gets protobuf.
///
/// ```swift
/// let choice = NegotiatedExposition(acceptHeader: "application/openmetrics-text;version=1.0.0")
/// print(choice.format)       // openMetrics
/// print(choice.contentType)  // application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores
/// ```
///
/// One difference: a version prometheus_client cannot compare with `(1, 0, 0)` (such as
/// `1.0.0-rc1` or `abc`) makes Python raise `TypeError` and answer 500; here that entry is
/// passed over like a too-old version.
public struct NegotiatedExposition: Sendable, Hashable {
    /// The format to render.
    public var format: ExpositionFormat
    /// How names outside the legacy character set are written.
    public var escaping: NameEscaping
    /// The `Content-Type` header value to send with the body.
    public var contentType: String

    /// `text/plain; version=0.0.4; charset=utf-8`, prometheus_client's `CONTENT_TYPE_PLAIN_0_0_4`.
    package static let textContentType = "text/plain; version=0.0.4; charset=utf-8"
    /// `application/openmetrics-text; version=1.0.0; charset=utf-8`, prometheus_client's
    /// `openmetrics.CONTENT_TYPE_LATEST`.
    package static let openMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    /// The protobuf format's Content-Type, as client_golang's `expfmt` writes it.
    package static let protobufContentType =
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

    /// The answer when nothing acceptable is asked for: the text format 0.0.4.
    package static let prometheusText = NegotiatedExposition(
        format: .prometheusText, escaping: .underscores, contentType: textContentType)

    /// Creates a choice directly.
    /// - Parameters:
    ///   - format: The format.
    ///   - escaping: The name escaping.
    ///   - contentType: The `Content-Type` value.
    package init(format: ExpositionFormat, escaping: NameEscaping, contentType: String) {
        self.format = format
        self.escaping = escaping
        self.contentType = contentType
    }

    /// Chooses as prometheus_client's `choose_encoder(accept_header)` does, taking protobuf
    /// where the header asks for it.
    /// - Parameter acceptHeader: The request's `Accept` header value, or nil when absent.
    public init(acceptHeader: String?) {
        self = Self.choose(acceptHeader ?? "")
    }

    private static func choose(_ header: String) -> NegotiatedExposition {
        for accepted in header.split(separator: ",", omittingEmptySubsequences: false) {
            let tokens = accepted.split(separator: ";", omittingEmptySubsequences: false)
            let mediaType = pythonStrip(tokens[0])
            if mediaType == "application/openmetrics-text" {
                let version = parameter("version", in: tokens)
                if version.isEmpty {
                    return NegotiatedExposition(format: .openMetrics, escaping: .underscores,
                                                contentType: openMetricsContentType)
                }
                if versionAtLeast1(version) {
                    let escaping = escapingParameter(in: tokens)
                    return NegotiatedExposition(
                        format: .openMetrics, escaping: escaping,
                        contentType: "application/openmetrics-text; version=\(version); charset=utf-8; escaping=\(escaping.rawValue)")
                }
            } else if mediaType == "application/vnd.google.protobuf" {
                if parameter("proto", in: tokens) == "io.prometheus.client.MetricFamily"
                    && parameter("encoding", in: tokens) == "delimited" {
                    let escaping = escapingParameter(in: tokens)
                    let named = !parameter("escaping", in: tokens).isEmpty
                    return NegotiatedExposition(
                        format: .protobuf, escaping: escaping,
                        contentType: protobufContentType + (named ? "; escaping=\(escaping.rawValue)" : ""))
                }
            } else if mediaType == "text/plain" {
                let version = parameter("version", in: tokens)
                if !version.isEmpty && versionAtLeast1(version) {
                    let escaping = escapingParameter(in: tokens)
                    return NegotiatedExposition(
                        format: .prometheusText, escaping: escaping,
                        contentType: "text/plain; version=1.0.0; charset=utf-8; escaping=\(escaping.rawValue)")
                }
            }
        }
        return .prometheusText
    }

    /// `_get_version` / the first half of `_get_escaping`: the value of the first token
    /// `key=value` (after stripping the token) whose key is exactly `key`; "" if none.
    private static func parameter(_ key: String, in tokens: [Substring]) -> Substring {
        for token in tokens {
            let stripped = pythonStrip(token)
            guard let equals = stripped.firstIndex(of: "=") else { continue }
            if stripped[..<equals] == key { return stripped[stripped.index(after: equals)...] }
        }
        return ""
    }

    /// `_get_escaping`: the first `escaping=` token decides; an unknown value means underscores.
    private static func escapingParameter(in tokens: [Substring]) -> NameEscaping {
        for token in tokens {
            let stripped = pythonStrip(token)
            guard let equals = stripped.firstIndex(of: "=") else { continue }
            guard stripped[..<equals] == "escaping" else { continue }
            return NameEscaping(rawValue: String(stripped[stripped.index(after: equals)...])) ?? .underscores
        }
        return .underscores
    }

    /// `parse_version(version) >= (1, 0, 0)`: dot-separated parts, each an int when Python's
    /// `int()` accepts it and a string otherwise, compared as tuples.
    static func versionAtLeast1(_ version: Substring) -> Bool {
        let target = [1, 0, 0]
        let parts = version.split(separator: ".", omittingEmptySubsequences: false)
        for (index, part) in parts.prefix(3).enumerated() {
            // A string part is never equal to an int; Python then raises TypeError.
            guard let number = pythonInt(part) else { return false }
            if number != target[index] { return number > target[index] }
        }
        return parts.count >= 3
    }

    /// Python's `int(text)` for ASCII input: surrounding whitespace, an optional sign, digits
    /// with single underscores between them. Saturates instead of growing without bound.
    static func pythonInt(_ text: Substring) -> Int? {
        var bytes = Array(pythonStrip(text).utf8)[...]
        guard !bytes.isEmpty else { return nil }
        var negative = false
        if let first = bytes.first, first == 0x2B || first == 0x2D {
            negative = first == 0x2D
            bytes = bytes.dropFirst()
        }
        guard let first = bytes.first, let last = bytes.last,
              (0x30...0x39).contains(first), (0x30...0x39).contains(last) else { return nil }
        var value = 0
        var previousUnderscore = false
        for byte in bytes {
            if byte == 0x5F {
                if previousUnderscore { return nil }
                previousUnderscore = true
                continue
            }
            guard (0x30...0x39).contains(byte) else { return nil }
            previousUnderscore = false
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int(byte - 0x30))
            value = overflow1 || overflow2 ? Int.max : sum
        }
        return negative ? -value : value
    }

    /// Python's `str.strip()`: whitespace as `str.isspace` defines it.
    static func pythonStrip(_ text: Substring) -> Substring {
        let scalars = text.unicodeScalars
        guard let start = scalars.firstIndex(where: { !isPythonSpace($0) }),
              let end = scalars.lastIndex(where: { !isPythonSpace($0) }) else { return "" }
        return Substring(scalars[start...end])
    }

    private static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20: return true
        case 0..<0x80: return false
        default: return scalar.properties.isWhitespace
        }
    }
}
