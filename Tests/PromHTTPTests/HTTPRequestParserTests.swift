// The request-head parser and the response encoder on byte arrays, without sockets.
import Testing

@testable import PromHTTP

@Suite("HTTPRequestParser and HTTPResponseEncoder")
struct HTTPRequestParserTests {
    private let parser = HTTPRequestParser(maxHeadBytes: 256, maxHeaderCount: 4)

    private func parse(_ text: String) -> HTTPHeadParseResult { parser.parse(Array(text.utf8)) }

    private func status(_ text: String) -> Int? {
        if case .reject(let status, _) = parse(text) { return status }
        return nil
    }

    @Test func completeHeadIsParsedWithItsLength() {
        let head = "GET /metrics?x=1 HTTP/1.1\r\nHost: h\r\nAccept:  text/plain \r\n\r\n"
        let expected = HTTPRequest(
            method: "GET", path: "/metrics", query: "x=1", version: "HTTP/1.1",
            headers: [HTTPHeader(name: "Host", value: "h"), HTTPHeader(name: "Accept", value: "text/plain")])
        #expect(parser.parse(Array((head + "GET /next").utf8)) == .request(expected, headLength: head.utf8.count, keepAlive: true))
    }

    @Test func bareLineFeedsAndAbsoluteFormAreAccepted() {
        guard case .request(let request, _, let keepAlive) = parse("HEAD http://h:9100/metrics HTTP/1.0\nHost: h\n\n") else {
            Issue.record("not parsed")
            return
        }
        #expect(request.method == "HEAD")
        #expect(request.path == "/metrics")
        #expect(request.version == "HTTP/1.0")
        #expect(!keepAlive)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nHost: h\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\r",
        "GET / HTT",
    ])
    func partialHeadsAreIncomplete(text: String) {
        #expect(parse(text) == .incomplete)
    }

    @Test func resumingTheSearchFindsAnEndSplitAcrossReads() {
        let bytes = Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8)
        // The previous read ended between the two CRLFs.
        guard case .request = parser.parse(bytes, scannedUpTo: bytes.count - 2) else {
            Issue.record("end not found")
            return
        }
    }

    @Test func keepAliveFollowsVersionAndConnectionTokens() {
        func keepAlive(_ text: String) -> Bool? {
            if case .request(_, _, let k) = parse(text) { return k }
            return nil
        }
        #expect(keepAlive("GET / HTTP/1.1\r\nHost: h\r\n\r\n") == true)
        #expect(keepAlive("GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n") == false)
        #expect(keepAlive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == false)
    }

    @Test(arguments: [
        ("POST / HTTP/1.1\r\nHost: h\r\n\r\n", 405),
        ("BREW / HTTP/1.1\r\nHost: h\r\n\r\n", 405),
        ("GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", nil),
        ("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{01}b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\n: empty-name\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400),
        ("GET / http/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505),
        ("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431),
    ] as [(String, Int?)])
    func invalidHeadsAreRejectedWithTheRightStatus(text: String, expected: Int?) {
        #expect(status(text) == expected)
    }

    @Test func sizeLimitDistinguishesTheRequestLineFromTheFields() {
        #expect(status("GET /" + String(repeating: "a", count: 300)) == 414)
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 300)) == 431)
        // A complete head that ends past the limit is refused too.
        #expect(status("GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 300) + "\r\n\r\n") == 431)
    }

    @Test func encoderFramesTheResponseAndDropsUnsafeFields() {
        let response = HTTPResponse(
            status: 200,
            headers: [
                HTTPHeader(name: "Content-Type", value: "text/plain"),
                HTTPHeader(name: "Content-Length", value: "999"),
                HTTPHeader(name: "X-Injected", value: "a\r\nSet-Cookie: x"),
                HTTPHeader(name: "Bad Name", value: "v"),
            ],
            body: Array("abc".utf8))
        let text = String(decoding: HTTPResponseEncoder.encode(response, headOnly: false, keepAlive: true, date: "D"), as: UTF8.self)
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: D\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc")
        let head = String(decoding: HTTPResponseEncoder.encode(response, headOnly: true, keepAlive: false, date: "D"), as: UTF8.self)
        #expect(head == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: D\r\nContent-Length: 3\r\nConnection: close\r\n\r\n")
        let invalid = String(decoding: HTTPResponseEncoder.encode(HTTPResponse(status: 42), headOnly: false, keepAlive: true, date: "D"), as: UTF8.self)
        #expect(invalid.hasPrefix("HTTP/1.1 500 Internal Server Error\r\n"))
    }

    // Expected strings from Python's email.utils.formatdate(t, usegmt=True).
    @Test(arguments: [
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
        (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
    ])
    func httpDateMatchesIMFFixdate(seconds: Int, expected: String) {
        #expect(HTTPResponseEncoder.httpDate(epochSeconds: seconds) == expected)
    }
}
