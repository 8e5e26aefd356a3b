// Pushing metric families to a Prometheus Pushgateway, as prometheus_client's
// `push_to_gateway` (PUT) and `pushadd_to_gateway` (POST) do: the same URL layout and
// grouping-key encoding, the text format 0.0.4 body and its Content-Type.
import PromExposition
import PromMetrics

/// A Prometheus Pushgateway to push metric families to, for batch jobs that end before any
/// scrape could reach them.
///
/// A push sends the families in the text format 0.0.4 to
/// `<gateway>/metrics/job/<job>{/<label>/<value>}` over HTTP/1.1, as prometheus_client does:
///
/// - `replace: true` sends `PUT`, which replaces every metric of the group (the job and
///   grouping labels), like prometheus_client's `push_to_gateway`;
/// - `replace: false` sends `POST`, which replaces only the families pushed and keeps the
///   group's others, like `pushadd_to_gateway`.
///
/// The job and the grouping values are encoded as prometheus_client 0.26.0 encodes them: an
/// empty value becomes `<label>@base64/=`, a value containing `/` or a space becomes
/// `<label>@base64/<URL-safe base64>`, any other value is percent-encoded. Grouping labels
/// are sent sorted by name.
///
/// ```swift
/// // At the end of a batch job whose workers wrote into the multiprocess directory:
/// let merged = MultiProcessCollector(directory: "/run/batch-metrics").collect()
/// let gateway = try Pushgateway(url: "http://pushgateway.example.org:9091", timeout: 10)
/// try gateway.push(merged.families, job: "nightly_report", grouping: ["shard": "3"], replace: true)
/// ```
///
/// Only plain HTTP is spoken (no TLS, no authentication, no redirects); host names are
/// resolved with the system's resolver.
public struct Pushgateway: Sendable, Hashable {
    /// The gateway's base URL as used: `http://host:port` and the path prefix, if any.
    public let url: String
    /// Seconds a push may take in all: connecting, sending the body and receiving the answer.
    /// (The host name lookup before it is bounded by the system's resolver settings.)
    public var timeout: Double
    /// The host name or numeric address (an IPv6 address without brackets).
    package let host: String
    /// The TCP port: the URL's, or 80.
    package let port: Int
    /// The path before `/metrics/...`, such as `/pushgateway`; empty for none.
    package let pathPrefix: String

    /// Creates a gateway from its base URL.
    ///
    /// The URL is `http://host[:port][/prefix]`; the scheme may be left out (`host:9091`), as
    /// prometheus_client allows, and the port defaults to 80. `host` is a name, an IPv4
    /// address, or an IPv6 address in brackets (`http://[::1]:9091`). A path prefix is kept for
    /// gateways behind a reverse proxy (`http://proxy/pushgateway` pushes to
    /// `/pushgateway/metrics/job/...`).
    /// - Parameters:
    ///   - url: The gateway's base URL, without `/metrics/...`.
    ///   - timeout: Seconds a push may take in all (connect, send, receive); default 10.
    /// - Throws: ``PushgatewayError`` of kind ``PushgatewayError/Kind/invalidURL`` for a URL
    ///   that is not plain `http` (such as `https://...`), has no host, a bad port, a query,
    ///   a fragment or credentials.
    public init(url: String, timeout: Double = 10) throws(PushgatewayError) {
        let parts = try Self.parse(url)
        host = parts.host
        port = parts.port
        pathPrefix = parts.prefix
        self.timeout = timeout
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        self.url = "http://\(authority)\(pathPrefix)"
    }

    /// Pushes `families` into the group of `job` and `grouping`.
    ///
    /// The families are rendered in the text format 0.0.4 (as `collect` prints them) and
    /// sent with `Content-Type: text/plain; version=0.0.4; charset=utf-8`. Any 2xx answer is
    /// success. The Pushgateway adds the `job` and grouping labels to every sample (replacing
    /// labels of those names in the body) and its own `push_time_seconds`.
    ///
    /// Pushing no families with `replace: true` empties the group; with `replace: false` it
    /// changes nothing but the push time.
    ///
    /// The call blocks the calling thread until the gateway answers or ``timeout`` passes
    /// (plus the host name lookup); call it where blocking is fine, such as at the end of a
    /// batch job, not on Swift concurrency's cooperative threads.
    /// - Parameters:
    ///   - families: The families to push, such as the merge of a `MultiProcessCollector`.
    ///   - job: The `job` label of the group. The Pushgateway refuses an empty one.
    ///   - grouping: More labels of the group, such as `["instance": "host-1"]`; names must
    ///     be valid label names other than `job`.
    ///   - replace: `true` for `PUT` (replace the whole group), `false` for `POST` (replace
    ///     only the families pushed).
    /// - Throws: ``PushgatewayError``: ``PushgatewayError/Kind/invalidGroupingKey`` before
    ///   anything is sent; ``PushgatewayError/Kind/unreachable`` (name lookup, refused
    ///   connection, connection lost), ``PushgatewayError/Kind/timedOut``,
    ///   ``PushgatewayError/Kind/badResponse``, or ``PushgatewayError/Kind/refused`` with the
    ///   gateway's status and its answer, such as a 400 naming an inconsistent metric.
    public func push(_ families: [MetricFamilySnapshot], job: String, grouping: [String: String] = [:],
                     replace: Bool) throws(PushgatewayError) {
        let method = replace ? "PUT" : "POST"
        let target = try path(job: job, grouping: grouping)
        let request = HTTPClientRequest(
            method: method, target: target,
            headers: [
                HTTPHeader(name: "Content-Type", value: NegotiatedExposition.textContentType),
                HTTPHeader(name: "User-Agent", value: "swift-prom-multiproc"),
            ],
            body: Exposition.render(families, format: .prometheusText))
        let pushURL = "http://\(client.authority)\(target)"
        let response: HTTPClientResponse
        do throws(HTTPClientError) {
            response = try client.send(request)
        } catch {
            let kind: PushgatewayError.Kind
            let summary: String
            switch error.kind {
            case .resolve, .connect: (kind, summary) = (.unreachable, "the gateway is unreachable")
            case .timeout: (kind, summary) = (.timedOut, "timed out")
            case .badResponse: (kind, summary) = (.badResponse, "the gateway's answer is not usable")
            }
            throw PushgatewayError(kind: kind, method: method, url: pushURL, reason: "\(summary): \(error.message)")
        }
        guard (200...299).contains(response.status) else {
            let text = String(decoding: response.body, as: UTF8.self)
            var reason = "the gateway answered \(response.status)"
            if !response.reason.isEmpty { reason += " \(response.reason)" }
            let shown = Self.abbreviated(text)
            if !shown.isEmpty { reason += ": " + shown }
            throw PushgatewayError(
                kind: .refused, method: method, url: pushURL, reason: reason,
                status: response.status, responseBody: text)
        }
    }

    /// The client for this gateway.
    package var client: HTTPClient { HTTPClient(host: host, port: port, timeout: timeout) }

    /// The URL a push for this group goes to: `http://host:port<prefix>/metrics/job/...`.
    /// - Throws: as ``path(job:grouping:)``.
    package func pushURL(job: String, grouping: [String: String]) throws(PushgatewayError) -> String {
        "http://\(client.authority)\(try path(job: job, grouping: grouping))"
    }

    // MARK: URL building

    /// The request path for a group: `<prefix>/metrics/job/<job>{/<label>/<value>}`, with the
    /// labels sorted by name and every part encoded as prometheus_client encodes it.
    /// - Throws: ``PushgatewayError/Kind/invalidGroupingKey`` for a grouping name that is not
    ///   a valid label name, or that is `job`.
    package func path(job: String, grouping: [String: String]) throws(PushgatewayError) -> String {
        var out = pathPrefix + "/metrics"
        let (jobName, jobValue) = Self.escapeGroupingKey("job", job)
        out += "/\(jobName)/\(jobValue)"
        let names = grouping.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        for name in names {
            guard MetricNaming.isValidLabelName(name) else {
                throw PushgatewayError(
                    kind: .invalidGroupingKey, method: "", url: url,
                    reason: "grouping label name '\(name)' is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)")
            }
            guard name != "job" else {
                throw PushgatewayError(
                    kind: .invalidGroupingKey, method: "", url: url,
                    reason: "the job label is given by the job, not the grouping labels")
            }
            let (n, v) = Self.escapeGroupingKey(name, grouping[name] ?? "")
            out += "/\(n)/\(v)"
        }
        return out
    }

    /// One label of the grouping key as two path segments, as prometheus_client 0.26.0's
    /// `_escape_grouping_key` writes it: `("k@base64", "=")` for an empty value,
    /// `("k@base64", urlsafe_b64encode(value))` for a value containing `/` or a space, else
    /// `("k", quote_plus(value))`.
    package static func escapeGroupingKey(_ name: String, _ value: String) -> (String, String) {
        if value.isEmpty { return (name + "@base64", "=") }
        if value.utf8.contains(UInt8(ascii: "/")) || value.utf8.contains(UInt8(ascii: " ")) {
            return (name + "@base64", base64URLSafe(Array(value.utf8)))
        }
        return (name, percentEncoded(value))
    }

    /// RFC 4648 §5 base64 (the URL- and filename-safe alphabet), with `=` padding, as
    /// Python's `base64.urlsafe_b64encode`.
    package static func base64URLSafe(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let n = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(i + 1 < bytes.count ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(n & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Percent-encodes every byte but `A-Z a-z 0-9 _ . - ~`, as Python's `quote_plus` with
    /// no safe characters (which would write a space as `+`; spaces never get here).
    package static func percentEncoded(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "~"):
                out.append(b)
            default:
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: URL parsing

    private static func parse(_ url: String) throws(PushgatewayError) -> (host: String, port: Int, prefix: String) {
        func invalid(_ why: String) -> PushgatewayError {
            PushgatewayError(kind: .invalidURL, method: "", url: url, reason: why)
        }
        guard !url.isEmpty else { throw invalid("the URL is empty") }
        guard url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw invalid("the URL contains spaces, control or non-ASCII characters (percent-encode them)")
        }
        var rest = Substring(url)
        if let schemeEnd = rest.firstRange(of: "://") {
            let scheme = rest[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "http" else {
                throw invalid(scheme == "https"
                    ? "https is not supported: only plain http (put a TLS-terminating proxy next to the job if the gateway needs TLS)"
                    : "unsupported scheme '\(scheme)': only http")
            }
            rest = rest[schemeEnd.upperBound...]
        }
        if rest.contains("?") || rest.contains("#") { throw invalid("a gateway URL takes no query or fragment") }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var prefix = String(rest[slash...])
        while prefix.hasSuffix("/") { prefix.removeLast() }
        if authority.contains("@") { throw invalid("credentials in the URL are not supported") }
        guard !authority.isEmpty else { throw invalid("no host") }

        var host: Substring
        var portText: Substring? = nil
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw invalid("an IPv6 address without its closing ]") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected text after the IPv6 address") }
                portText = after.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw invalid("'\(host)' is not an IPv6 address")
            }
        } else {
            let pieces = authority.split(separator: ":", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw invalid("an IPv6 address goes in brackets: http://[::1]:9091") }
            host = pieces[0]
            if pieces.count == 2 { portText = pieces[1] }
            guard !host.isEmpty,
                host.utf8.allSatisfy({ b in
                    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x2E || b == 0x5F
                })
            else { throw invalid("'\(host)' is not a host name or address") }
        }
        var port = 80
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCII), let p = Int(portText), (1...65535).contains(p) else {
                throw invalid("the port must be a number from 1 to 65535, not '\(portText)'")
            }
            port = p
        }
        return (String(host), port, prefix)
    }

    /// The gateway's answer as one line for a message: line ends folded, at most 2,000
    /// characters (the whole text stays in ``PushgatewayError/responseBody``).
    private static func abbreviated(_ text: String) -> String {
        var line = text.split(whereSeparator: \.isNewline).map { $0.trimmingASCIISpaces() }.filter { !$0.isEmpty }
            .joined(separator: " ")
        if line.count > 2000 { line = String(line.prefix(2000)) + "…" }
        return line
    }
}

/// Why a push to a ``Pushgateway`` failed.
///
/// Its description names the method, the URL and the reason, such as
/// `PUT http://127.0.0.1:9091/metrics/job/nightly: the gateway answered 400 Bad Request:
/// pushed metrics are invalid or inconsistent with existing metrics: ...` or
/// `POST http://127.0.0.1:9091/metrics/job/nightly: the gateway is unreachable:
/// connect(127.0.0.1:9091): Connection refused (errno 111)`.
public struct PushgatewayError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Hashable {
        /// The gateway URL cannot be used (not http, no host, a bad port, a query).
        case invalidURL
        /// A grouping label name is invalid; nothing was sent.
        case invalidGroupingKey
        /// No connection: the name does not resolve, the port is closed, the host is
        /// unreachable, or the connection broke before an answer.
        case unreachable
        /// The push did not complete within the timeout.
        case timedOut
        /// The answer is not a usable HTTP/1.x response (malformed, or larger than 1 MiB).
        case badResponse
        /// The gateway answered with a status other than 2xx (see ``PushgatewayError/status``
        /// and ``PushgatewayError/responseBody``).
        case refused
    }

    /// What went wrong.
    public let kind: Kind
    /// The HTTP method of the push (`PUT` or `POST`); empty when nothing was sent.
    public let method: String
    /// The URL pushed to (`http://host:port/metrics/job/...`); for an unusable gateway URL or
    /// grouping key, the URL as given.
    public let url: String
    /// The reason in words, such as
    /// `the gateway is unreachable: connect(127.0.0.1:9091): Connection refused (errno 111)`.
    public let reason: String
    /// The gateway's status code, for ``Kind/refused``.
    public let status: Int?
    /// The gateway's answer (its reason for a refusal, such as a 400's text), for
    /// ``Kind/refused``; empty otherwise.
    public let responseBody: String

    package init(kind: Kind, method: String, url: String, reason: String, status: Int? = nil, responseBody: String = "") {
        self.kind = kind
        self.method = method
        self.url = url
        self.reason = reason
        self.status = status
        self.responseBody = responseBody
    }

    /// The method, the URL and the reason on one line.
    public var description: String {
        switch kind {
        case .invalidURL: "gateway URL '\(url)': \(reason)"
        case .invalidGroupingKey: "grouping key for \(url): \(reason)"
        default: "\(method) \(url): \(reason)"
        }
    }
}
