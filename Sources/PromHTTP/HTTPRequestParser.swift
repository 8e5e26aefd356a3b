// Parsing of an HTTP/1.x request head (RFC 9112), strict where leniency would help request
// smuggling or resource abuse, and free of I/O so it can be tested on byte arrays.

/// The outcome of parsing the bytes received so far on a connection.
enum HTTPHeadParseResult: Equatable {
    /// The head is not complete yet and still within the size limit.
    case incomplete
    /// A complete, acceptable request whose head took `headLength` bytes.
    case request(HTTPRequest, headLength: Int, keepAlive: Bool)
    /// Answer with `status` and close the connection.
    case reject(status: Int, message: String)
}

/// Finds and parses a request head. Leading empty lines are dropped by the caller before the
/// bytes are buffered (RFC 9112 §2.2 lets a server ignore them).
struct HTTPRequestParser {
    var maxHeadBytes: Int
    var maxHeaderCount: Int

    private static let lf: UInt8 = 0x0A
    private static let cr: UInt8 = 0x0D

    /// The index just past the empty line that ends the head, searching from `from` (bytes
    /// before it were searched already), or nil when there is none yet.
    static func headEnd(in bytes: [UInt8], from: Int) -> Int? {
        var i = max(from, 0)
        while i < bytes.count {
            if bytes[i] == lf {
                if i >= 1 && bytes[i - 1] == lf { return i + 1 }
                if i >= 2 && bytes[i - 1] == cr && bytes[i - 2] == lf { return i + 1 }
            }
            i += 1
        }
        return nil
    }

    /// Parses `bytes`, given that the first `scannedUpTo` of them were already searched for
    /// the head's end (the caller remembers `bytes.count` after an `.incomplete`).
    func parse(_ bytes: [UInt8], scannedUpTo: Int = 0) -> HTTPHeadParseResult {
        let end = Self.headEnd(in: bytes, from: scannedUpTo)
        if let end, end <= maxHeadBytes { return parseHead(bytes[0..<end], length: end) }
        if end == nil && bytes.count < maxHeadBytes { return .incomplete }
        if bytes.prefix(maxHeadBytes).firstIndex(of: Self.lf) == nil {
            return .reject(status: 414, message: "request line too long")
        }
        return .reject(status: 431, message: "request header fields too large")
    }

    private func parseHead(_ head: ArraySlice<UInt8>, length: Int) -> HTTPHeadParseResult {
        var lines: [ArraySlice<UInt8>] = []
        var start = head.startIndex
        for i in head.indices where head[i] == Self.lf {
            var line = head[start..<i]
            if line.last == Self.cr { line = line.dropLast() }
            lines.append(line)
            start = i + 1
        }
        // The last line is the empty one that ended the head.
        lines.removeLast()
        guard let requestLine = lines.first else { return .reject(status: 400, message: "empty request") }

        // request-line = method SP request-target SP HTTP-version
        let parts = requestLine.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(Self.isTokenByte),
            !parts[1].isEmpty, parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return .reject(status: 400, message: "malformed request line") }
        let method = String(decoding: parts[0], as: UTF8.self)
        let target = String(decoding: parts[1], as: UTF8.self)
        let versionBytes = Array(parts[2])
        guard versionBytes.count == 8, versionBytes[0..<5].elementsEqual("HTTP/".utf8), versionBytes[6] == 0x2E,
            Self.isDigit(versionBytes[5]), Self.isDigit(versionBytes[7])
        else { return .reject(status: 400, message: "malformed HTTP version") }
        guard versionBytes[5] == 0x31 else { return .reject(status: 505, message: "only HTTP/1.x is supported") }
        let isHTTP10 = versionBytes[7] == 0x30
        let version = isHTTP10 ? "HTTP/1.0" : "HTTP/1.1"

        var headers: [HTTPHeader] = []
        for line in lines.dropFirst() {
            guard let first = line.first, first != 0x20, first != 0x09 else {
                // A line starting with whitespace is an obsolete line folding (or an empty name).
                return .reject(status: 400, message: "malformed header field")
            }
            guard let colon = line.firstIndex(of: 0x3A), colon > line.startIndex,
                line[line.startIndex..<colon].allSatisfy(Self.isTokenByte)
            else { return .reject(status: 400, message: "malformed header field") }
            var value = line[(colon + 1)...]
            while let b = value.first, b == 0x20 || b == 0x09 { value = value.dropFirst() }
            while let b = value.last, b == 0x20 || b == 0x09 { value = value.dropLast() }
            // Control characters (CR and NUL among them) never belong in a field value.
            guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                return .reject(status: 400, message: "malformed header field value")
            }
            headers.append(HTTPHeader(
                name: String(decoding: line[line.startIndex..<colon], as: UTF8.self),
                value: String(decoding: value, as: UTF8.self)))
            if headers.count > maxHeaderCount { return .reject(status: 431, message: "too many header fields") }
        }

        // Request target: origin-form, or absolute-form (which proxies send).
        var pathAndQuery = Substring(target)
        if target.first != "/" {
            let lower = target.lowercased()
            let schemeLength = lower.hasPrefix("http://") ? 7 : lower.hasPrefix("https://") ? 8 : 0
            guard schemeLength > 0 else { return .reject(status: 400, message: "unsupported request target") }
            let afterAuthority = target.dropFirst(schemeLength)
            pathAndQuery = afterAuthority.firstIndex(of: "/").map { afterAuthority[$0...] } ?? "/"
        }
        let path: String, query: String
        if let q = pathAndQuery.firstIndex(of: "?") {
            path = String(pathAndQuery[..<q])
            query = String(pathAndQuery[pathAndQuery.index(after: q)...])
        } else {
            path = String(pathAndQuery)
            query = ""
        }
        let request = HTTPRequest(method: method, path: path, query: query, version: version, headers: headers)

        let hosts = headers.filter { asciiCaseInsensitiveEquals($0.name, "Host") }
        if !isHTTP10 && hosts.count != 1 { return .reject(status: 400, message: "HTTP/1.1 needs exactly one Host field") }
        if isHTTP10 && hosts.count > 1 { return .reject(status: 400, message: "more than one Host field") }

        // Content-Length: every value (fields may repeat, values may be lists) must be the same
        // decimal number; anything else is how request smuggling starts.
        var contentLength: Int? = nil
        for field in headers where asciiCaseInsensitiveEquals(field.name, "Content-Length") {
            for item in field.value.split(separator: ",", omittingEmptySubsequences: false) {
                let digits = item.trimmingASCIISpaces()
                guard !digits.isEmpty, digits.utf8.allSatisfy(Self.isDigit), digits.utf8.count <= 18, let n = Int(digits),
                    contentLength == nil || contentLength == n
                else { return .reject(status: 400, message: "invalid Content-Length") }
                contentLength = n
            }
        }
        let hasTransferEncoding = headers.contains { asciiCaseInsensitiveEquals($0.name, "Transfer-Encoding") }

        guard method == "GET" || method == "HEAD" else {
            return .reject(status: 405, message: "only GET and HEAD are allowed")
        }
        if hasTransferEncoding { return .reject(status: 501, message: "request bodies are not supported") }
        if let n = contentLength, n > 0 { return .reject(status: 413, message: "request bodies are not supported") }

        var keepAlive = !isHTTP10
        for field in headers where asciiCaseInsensitiveEquals(field.name, "Connection") {
            for token in field.value.split(separator: ",") where asciiCaseInsensitiveEquals(String(token.trimmingASCIISpaces()), "close") {
                keepAlive = false
            }
        }
        return .request(request, headLength: length, keepAlive: keepAlive)
    }

    @inline(__always)
    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// tchar from RFC 9110 §5.6.2.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: true
        default: false
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    func trimmingASCIISpaces() -> Substring {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
