// The client's response parser on byte arrays, without sockets: framing by Content-Length,
// chunked coding and the end of the connection; interim responses; every limit.
import Testing

@testable import PromHTTP

@Suite("HTTPResponseParser")
struct HTTPResponseParserTests {
    private let parser = HTTPResponseParser(maxBodyBytes: 64)

    private func parse(_ text: String, end: Bool = false) -> HTTPResponseParseResult {
        parser.parse(Array(text.utf8), endOfStream: end)
    }

    private func body(_ text: String, end: Bool = false) -> String? {
        if case .response(let r) = parse(text, end: end) { return String(decoding: r.body, as: UTF8.self) }
        return nil
    }

    private func isInvalid(_ text: String, end: Bool = false) -> Bool {
        if case .invalid = parse(text, end: end) { return true }
        return false
    }

    @Test func contentLengthFramesTheBodyAndExtraBytesAreIgnored() {
        let text = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\n\r\njob name is required\nGARBAGE"
        guard case .response(let r) = parse(text) else { Issue.record("not parsed"); return }
        #expect(r.status == 400)
        #expect(r.reason == "Bad Request")
        #expect(r.header("content-type") == "text/plain; charset=utf-8")
        #expect(String(decoding: r.body, as: UTF8.self) == "job name is required\n")
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        "HTTP/1.1 200 OK\r\n\r\nuntil the close",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "",
    ])
    func partialResponsesAreIncomplete(text: String) {
        #expect(parse(text) == .incomplete)
    }

    @Test func aResponseWithoutLengthRunsToTheClose() {
        // Go's net/http answers a malformed request this way.
        let text = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"
        #expect(parse(text) == .incomplete)
        #expect(body(text, end: true) == "400 Bad Request")
    }

    @Test func chunkedBodiesAreDecodedWithExtensionsAndTrailers() {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            + "4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n"
        #expect(body(text) == "Wikipedia in\r\n\r\nchunks.")
        // Bare line feeds, as in the head.
        #expect(body("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n") == "abc")
        // Without the final empty line the trailer section is not over.
        #expect(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n") == .incomplete)
    }

    @Test func interimResponsesAreSkipped() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
        guard case .response(let r) = parse(text) else { Issue.record("not parsed"); return }
        #expect(r.status == 202)
        #expect(r.body.isEmpty)
    }

    @Test func noContentAndNotModifiedHaveNoBody() {
        #expect(body("HTTP/1.1 204 No Content\r\n\r\n") == "")
        #expect(body("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n") == "")
        // A status line without a reason phrase, with or without the space.
        #expect(body("HTTP/1.0 200\r\nContent-Length: 2\r\n\r\nok") == "ok")
        #expect(body("HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok") == "ok")
    }

    @Test(arguments: [
        ("HTTP/2 200 OK\r\n\r\n", false),
        ("SSH-2.0-OpenSSH_9.2\r\n\r\n", false),
        ("HTTP/1.1 20 OK\r\n\r\n", false),
        ("HTTP/1.1 200OK\r\n\r\n", false),
        ("HTTP/1.1 101 Switching Protocols\r\n\r\n", false),
        ("HTTP/1.1 200 OK\r\n folded: value\r\n\r\n", false),
        ("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", false),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab", false),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", false),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", true),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", true),
        ("HTTP/1.1 200 OK\r\n", true),
        ("", true),
    ])
    func malformedOrCutShortResponsesAreInvalid(text: String, end: Bool) {
        #expect(isInvalid(text, end: end))
    }

    @Test func everySizeIsBounded() {
        let big = String(repeating: "x", count: 65)
        // The declared length is refused before the body arrives.
        #expect(isInvalid("HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n"))
        #expect(body("HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n" + String(big.dropFirst())) == String(big.dropFirst()))
        #expect(isInvalid("HTTP/1.1 200 OK\r\n\r\n" + big))
        #expect(isInvalid("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n" + big + "\r\n0\r\n\r\n"))
        #expect(isInvalid("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n"))
        // A head that never ends is refused once it passes the head limit.
        #expect(isInvalid("HTTP/1.1 200 OK\r\n" + String(repeating: "X-A: b\r\n", count: 3000)))
        let manyFields = (0..<101).map { "X-\($0): v\r\n" }.joined()
        #expect(isInvalid("HTTP/1.1 200 OK\r\n" + manyFields + "\r\n"))
    }

    @Test func headResponsesHaveNoBodyWhateverTheyDeclare() {
        let head = HTTPResponseParser(answersHead: true)
        guard case .response(let r) = head.parse(Array("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".utf8), endOfStream: false) else {
            Issue.record("not parsed")
            return
        }
        #expect(r.body.isEmpty)
    }
}
