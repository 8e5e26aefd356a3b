// The request and response values the HTTP server hands to and takes from its handler.

/// One header field: a name (compared case-insensitively) and its value.
public struct HTTPHeader: Sendable, Hashable {
    /// The field name as the peer or the handler spelled it, such as `Content-Type`.
    public var name: String
    /// The field value, without leading or trailing spaces and tabs.
    public var value: String

    /// Creates a header field.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A parsed HTTP/1.x request head. Requests carry no body: the server rejects bodies.
package struct HTTPRequest: Sendable, Hashable {
    /// The method, such as `GET` or `HEAD` (case-sensitive, as HTTP defines it).
    package var method: String
    /// The path of the request target, before any `?`, as sent (not percent-decoded),
    /// such as `/metrics`.
    package var path: String
    /// The query after the first `?`, without it; empty when there is none.
    package var query: String
    /// `HTTP/1.1` or `HTTP/1.0`.
    package var version: String
    /// The header fields in the order they arrived.
    package var headers: [HTTPHeader]

    /// Creates a request (the server builds these; tests and handlers may too).
    package init(method: String, path: String, query: String = "", version: String = "HTTP/1.1", headers: [HTTPHeader] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
    }

    /// The value of the first header field called `name` (compared case-insensitively);
    /// repeated fields are joined with `, `, as HTTP allows for list-valued fields.
    ///
    /// ```swift
    /// let accept = request.header("accept") ?? "*/*"
    /// ```
    package func header(_ name: String) -> String? {
        let matching = headers.filter { asciiCaseInsensitiveEquals($0.name, name) }
        if matching.isEmpty { return nil }
        return matching.map(\.value).joined(separator: ", ")
    }
}

/// A response from a handler: a status, header fields and a body.
///
/// The server adds `Content-Length`, `Connection` and `Date` itself (a handler's own
/// `Content-Length`, `Transfer-Encoding` or `Connection` fields are replaced), drops any field
/// whose name or value could break the message framing, and sends no body for `HEAD`. A
/// handler answering `HEAD` with an empty body may give the length a `GET` would get in its
/// own `Content-Length` (``MetricsHandler`` does); the server then sends that.
public struct HTTPResponse: Sendable, Hashable {
    /// The status code, such as 200.
    public var status: Int
    /// The header fields to send, such as `Content-Type`.
    public var headers: [HTTPHeader]
    /// The body bytes.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: [HTTPHeader] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A plain-text response (`text/plain; charset=utf-8`), as servers send for errors.
    package static func text(_ status: Int, _ text: String, headers: [HTTPHeader] = []) -> HTTPResponse {
        HTTPResponse(
            status: status,
            headers: [HTTPHeader(name: "Content-Type", value: "text/plain; charset=utf-8")] + headers,
            body: Array(text.utf8))
    }

    /// `404 Not Found` with a short text body.
    package static let notFound = HTTPResponse.text(404, "Not Found\n")

    /// The standard reason phrase for a status code, or `""` for one we do not name.
    package static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }
}

/// ASCII case-insensitive comparison, as HTTP field names and tokens need (no locale rules).
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    let x = a.utf8, y = b.utf8
    if x.count != y.count { return false }
    for (p, q) in zip(x, y) where asciiLower(p) != asciiLower(q) { return false }
    return true
}

@inline(__always)
func asciiLower(_ b: UInt8) -> UInt8 { (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b }
