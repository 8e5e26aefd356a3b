// Parsing of an HTTP/1.x response (RFC 9112) as a client receives it: the status line, the
// header fields and the body framed by Content-Length, chunked transfer coding or the end of
// the connection. Free of I/O so it can be tested on byte arrays; bounded in every size.

/// A response as the client received it.
package struct HTTPClientResponse: Sendable, Hashable {
    /// The status code, such as 200 or 400.
    package var status: Int
    /// The reason phrase as sent (may be empty).
    package var reason: String
    /// The header fields in the order they arrived.
    package var headers: [HTTPHeader]
    /// The body, de-chunked.
    package var body: [UInt8]

    package init(status: Int, reason: String, headers: [HTTPHeader], body: [UInt8]) {
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
    }

    /// The value of the first field called `name` (case-insensitive), repeated fields joined
    /// with `, `.
    package func header(_ name: String) -> String? {
        let matching = headers.filter { asciiCaseInsensitiveEquals($0.name, name) }
        return matching.isEmpty ? nil : matching.map(\.value).joined(separator: ", ")
    }
}

/// What the bytes received so far amount to.
package enum HTTPResponseParseResult: Sendable, Hashable {
    /// More bytes are needed (and the connection is still open).
    case incomplete
    /// A complete final response.
    case response(HTTPClientResponse)
    /// Not an acceptable HTTP/1.x response; the text says why.
    case invalid(String)
}

/// Parses the bytes of one response, re-run on the whole buffer as bytes arrive (responses
/// here are small and bounded, so the simplicity is worth the repeated work).
package struct HTTPResponseParser: Sendable {
    /// The most bytes of status line plus header fields (of each interim and the final head).
    package var maxHeadBytes: Int = 16 * 1024
    /// The most header fields in one head.
    package var maxHeaderCount: Int = 100
    /// The most body bytes (after de-chunking; chunk framing counts towards it too).
    package var maxBodyBytes: Int = 1024 * 1024
    /// The response answers a `HEAD` request: it has no body whatever its fields say.
    package var answersHead: Bool = false

    package init(maxBodyBytes: Int = 1024 * 1024, answersHead: Bool = false) {
        self.maxBodyBytes = maxBodyBytes
        self.answersHead = answersHead
    }

    private static let lf: UInt8 = 0x0A
    private static let cr: UInt8 = 0x0D

    /// Parses `bytes`; `endOfStream` says the peer has closed the connection, which completes
    /// a body delimited by the close and makes anything else still incomplete invalid.
    package func parse(_ bytes: [UInt8], endOfStream: Bool) -> HTTPResponseParseResult {
        var start = 0
        while true {
            guard let end = HTTPRequestParser.headEnd(in: bytes, from: start) else {
                if bytes.count - start > maxHeadBytes { return .invalid("response head larger than \(maxHeadBytes) bytes") }
                if endOfStream {
                    return .invalid(bytes.count == start ? "the connection closed without a response" : "the connection closed in the middle of the response head")
                }
                return .incomplete
            }
            if end - start > maxHeadBytes { return .invalid("response head larger than \(maxHeadBytes) bytes") }
            let head: (status: Int, reason: String, headers: [HTTPHeader])
            switch parseHead(bytes[start..<end]) {
            case .success(let h): head = h
            case .failure(let problem): return .invalid(problem.text)
            }
            // 1xx responses are interim (100 Continue, 103 Early Hints): the final one follows.
            // 101 would switch protocols, which no request of ours asks for.
            if (100...199).contains(head.status) {
                if head.status == 101 { return .invalid("unexpected 101 Switching Protocols") }
                start = end
                continue
            }
            var response = HTTPClientResponse(status: head.status, reason: head.reason, headers: head.headers, body: [])
            switch body(of: head.status, headers: head.headers, in: bytes[end...], endOfStream: endOfStream) {
            case .incomplete: return .incomplete
            case .invalid(let why): return .invalid(why)
            case .complete(let body):
                response.body = body
                return .response(response)
            }
        }
    }

    private struct Problem: Error { var text: String }

    private func parseHead(_ head: ArraySlice<UInt8>) -> Result<(status: Int, reason: String, headers: [HTTPHeader]), Problem> {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = head.startIndex
        for i in head.indices where head[i] == Self.lf {
            var line = head[lineStart..<i]
            if line.last == Self.cr { line = line.dropLast() }
            lines.append(line)
            lineStart = i + 1
        }
        lines.removeLast()  // the empty line that ended the head
        guard let statusLine = lines.first else { return .failure(Problem(text: "empty response head")) }
        // status-line = HTTP-version SP 3DIGIT SP [reason-phrase]; some servers drop the
        // second SP when the reason is empty.
        let v = Array(statusLine.prefix(12))
        guard v.count >= 12, v[0..<7].elementsEqual("HTTP/1.".utf8), HTTPRequestParser.isDigit(v[7]), v[8] == 0x20,
            v[9...11].allSatisfy(HTTPRequestParser.isDigit),
            statusLine.count == 12 || statusLine[statusLine.startIndex + 12] == 0x20
        else {
            let shown = String(decoding: statusLine.prefix(60), as: UTF8.self)
            return .failure(Problem(text: "not an HTTP/1.x status line: \"\(shown)\""))
        }
        let status = v[9...11].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        let reason = String(decoding: statusLine.dropFirst(13), as: UTF8.self)
        var headers: [HTTPHeader] = []
        for line in lines.dropFirst() {
            guard let first = line.first, first != 0x20, first != 0x09,
                let colon = line.firstIndex(of: 0x3A), colon > line.startIndex,
                line[line.startIndex..<colon].allSatisfy(HTTPRequestParser.isTokenByte)
            else { return .failure(Problem(text: "malformed response header field")) }
            var value = line[(colon + 1)...]
            while let b = value.first, b == 0x20 || b == 0x09 { value = value.dropFirst() }
            while let b = value.last, b == 0x20 || b == 0x09 { value = value.dropLast() }
            headers.append(HTTPHeader(
                name: String(decoding: line[line.startIndex..<colon], as: UTF8.self),
                value: String(decoding: value, as: UTF8.self)))
            if headers.count > maxHeaderCount { return .failure(Problem(text: "more than \(maxHeaderCount) response header fields")) }
        }
        return .success((status, reason, headers))
    }

    private enum BodyOutcome {
        case incomplete
        case complete([UInt8])
        case invalid(String)
    }

    /// The body after a final head (RFC 9112 §6.3, in its order of precedence).
    private func body(of status: Int, headers: [HTTPHeader], in rest: ArraySlice<UInt8>, endOfStream: Bool) -> BodyOutcome {
        if answersHead || status == 204 || status == 304 { return .complete([]) }
        let codings = headers.filter { asciiCaseInsensitiveEquals($0.name, "Transfer-Encoding") }
            .flatMap { $0.value.split(separator: ",").map { String($0.trimmingASCIISpaces()) } }
        if let last = codings.last {
            // Only a final `chunked` frames the body; any other coding runs to the close.
            if asciiCaseInsensitiveEquals(last, "chunked") { return chunkedBody(rest, endOfStream: endOfStream) }
            return bodyUntilClose(rest, endOfStream: endOfStream)
        }
        var length: Int? = nil
        for field in headers where asciiCaseInsensitiveEquals(field.name, "Content-Length") {
            for item in field.value.split(separator: ",", omittingEmptySubsequences: false) {
                let digits = item.trimmingASCIISpaces()
                guard !digits.isEmpty, digits.utf8.count <= 18, digits.utf8.allSatisfy(HTTPRequestParser.isDigit),
                    let n = Int(digits), length == nil || length == n
                else { return .invalid("invalid Content-Length \"\(field.value)\"") }
                length = n
            }
        }
        guard let length else { return bodyUntilClose(rest, endOfStream: endOfStream) }
        if length > maxBodyBytes { return .invalid("response body of \(length) bytes is larger than the limit of \(maxBodyBytes)") }
        if rest.count >= length { return .complete(Array(rest.prefix(length))) }
        if endOfStream { return .invalid("the connection closed after \(rest.count) of \(length) body bytes") }
        return .incomplete
    }

    private func bodyUntilClose(_ rest: ArraySlice<UInt8>, endOfStream: Bool) -> BodyOutcome {
        if rest.count > maxBodyBytes { return .invalid("response body larger than the limit of \(maxBodyBytes) bytes") }
        return endOfStream ? .complete(Array(rest)) : .incomplete
    }

    /// chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 §7.1); bare LF line
    /// ends are accepted as in the head.
    private func chunkedBody(_ rest: ArraySlice<UInt8>, endOfStream: Bool) -> BodyOutcome {
        if rest.count > maxBodyBytes + maxHeadBytes { return .invalid("response body larger than the limit of \(maxBodyBytes) bytes") }
        var out: [UInt8] = []
        var i = rest.startIndex
        let cutShort: BodyOutcome = endOfStream ? .invalid("the connection closed in the middle of a chunked body") : .incomplete
        /// The line starting at `from` without its line end, and the index after the end.
        func line(from: Int) -> (ArraySlice<UInt8>, Int)? {
            guard let lf = rest[from...].firstIndex(of: Self.lf) else { return nil }
            var l = rest[from..<lf]
            if l.last == Self.cr { l = l.dropLast() }
            return (l, lf + 1)
        }
        while true {
            guard let (sizeLine, afterSize) = line(from: i) else { return cutShort }
            // chunk-size [ chunk-ext ]: hex digits, then optional `;name=value` extensions.
            let hex = sizeLine.prefix { $0 != 0x3B && $0 != 0x20 && $0 != 0x09 }
            guard !hex.isEmpty, hex.count <= 15, let size = Int(String(decoding: hex, as: UTF8.self), radix: 16) else {
                return .invalid("malformed chunk size")
            }
            if size == 0 {
                // Trailer fields, ignored, up to the empty line.
                var t = afterSize
                while true {
                    guard let (trailer, next) = line(from: t) else { return cutShort }
                    if trailer.isEmpty { return .complete(out) }
                    t = next
                }
            }
            if out.count + size > maxBodyBytes { return .invalid("response body larger than the limit of \(maxBodyBytes) bytes") }
            guard rest.endIndex - afterSize >= size else { return cutShort }
            out += rest[afterSize..<(afterSize + size)]
            let dataEnd = afterSize + size
            // The data is followed by CRLF (or LF).
            if dataEnd < rest.endIndex && rest[dataEnd] == Self.lf {
                i = dataEnd + 1
            } else if rest.endIndex - dataEnd >= 2 {
                guard rest[dataEnd] == Self.cr, rest[dataEnd + 1] == Self.lf else { return .invalid("chunk data not followed by CRLF") }
                i = dataEnd + 2
            } else {
                return cutShort
            }
        }
    }
}
