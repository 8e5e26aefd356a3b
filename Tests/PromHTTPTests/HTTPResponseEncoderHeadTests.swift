// The response framing the server adds for HEAD, checked on the encoded bytes; part of the
// parser and encoder suite.
import Testing

@testable import PromHTTP

extension HTTPRequestParserTests {
    private func encoded(_ response: HTTPResponse, headOnly: Bool) -> String {
        String(decoding: HTTPResponseEncoder.encode(response, headOnly: headOnly, keepAlive: true, date: "D"), as: UTF8.self)
    }

    /// A handler that answers HEAD without a body (MetricsHandler) states the length a GET
    /// would get; the server sends that length, once, instead of 0.
    @Test func headKeepsTheLengthAHandlerStatesForItsLeftOutBody() {
        let head = HTTPResponse(status: 200, headers: [HTTPHeader(name: "Content-Length", value: "1234")])
        #expect(encoded(head, headOnly: true) == "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 1234\r\nConnection: keep-alive\r\n\r\n")
    }

    @Test func aHandlersContentLengthIsReplacedWhenItSendsABodyOrItIsNotANumber() {
        let body = HTTPResponse(status: 200, headers: [HTTPHeader(name: "content-length", value: "99")], body: Array("abc".utf8))
        #expect(encoded(body, headOnly: true).contains("Content-Length: 3\r\n"))
        #expect(encoded(body, headOnly: false).hasSuffix("Content-Length: 3\r\nConnection: keep-alive\r\n\r\nabc"))
        for value in ["-1", "12a", "", "1e3", "99999999999999999999"] {
            let odd = HTTPResponse(status: 200, headers: [HTTPHeader(name: "Content-Length", value: value)])
            #expect(encoded(odd, headOnly: true).contains("Content-Length: 0\r\n"), "\(value)")
        }
        let twoValues = HTTPResponse(status: 200, headers: [
            HTTPHeader(name: "Content-Length", value: "5"), HTTPHeader(name: "Content-Length", value: "6"),
        ])
        #expect(encoded(twoValues, headOnly: true).contains("Content-Length: 0\r\n"))
        let empty = HTTPResponse(status: 200, headers: [HTTPHeader(name: "Content-Length", value: "5")])
        #expect(encoded(empty, headOnly: false).contains("Content-Length: 0\r\n"), "a GET sends what it has")
    }
}
