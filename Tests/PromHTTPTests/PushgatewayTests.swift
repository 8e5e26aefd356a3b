// Pushgateway URLs and the HTTP client, without a real gateway (EndToEndTests has those):
// the URL layout against prometheus_client's own push functions and the Pushgateway README's
// examples, and the client against one-connection servers that misbehave on purpose.
import Dispatch
import Foundation
import SystemCalls
import Testing
import TestSupport

@testable import PromHTTP

@Suite("Pushgateway URLs")
struct PushgatewayURLTests {
    @Test(arguments: [
        ("http://127.0.0.1:9091", "http://127.0.0.1:9091", "127.0.0.1", 9091, ""),
        ("127.0.0.1:9091", "http://127.0.0.1:9091", "127.0.0.1", 9091, ""),
        ("HTTP://Gateway.example:9091/", "http://Gateway.example:9091", "Gateway.example", 9091, ""),
        ("http://gw", "http://gw:80", "gw", 80, ""),
        ("http://[::1]:9091/proxy/pgw//", "http://[::1]:9091/proxy/pgw", "::1", 9091, "/proxy/pgw"),
        ("http://push_gw.svc.cluster.local:9091/a%20b", "http://push_gw.svc.cluster.local:9091/a%20b", "push_gw.svc.cluster.local", 9091, "/a%20b"),
    ])
    func usableURLsAreNormalized(given: String, url: String, host: String, port: Int, prefix: String) throws {
        let gateway = try Pushgateway(url: given)
        #expect(gateway.url == url)
        #expect(gateway.host == host)
        #expect(gateway.port == port)
        #expect(gateway.pathPrefix == prefix)
        #expect(gateway.timeout == 10)
    }

    @Test(arguments: [
        ("", "empty"),
        ("https://127.0.0.1:9091", "https is not supported"),
        ("ftp://h:21", "unsupported scheme 'ftp'"),
        ("http://", "no host"),
        ("http://:9091", "not a host name"),
        ("http://h:0", "port must be a number from 1 to 65535"),
        ("http://h:65536", "port must be"),
        ("http://h:x", "port must be"),
        ("http://h:", "port must be"),
        ("http://::1:9091", "IPv6 address goes in brackets"),
        ("http://[::1:9091", "closing ]"),
        ("http://[::1]x", "after the IPv6 address"),
        ("http://user:pw@h:9091", "credentials"),
        ("http://h:9091/?x=1", "no query"),
        ("http://h:9091#top", "no query or fragment"),
        ("http://h 1:9091", "spaces"),
        ("http://hé:9091", "non-ASCII"),
    ])
    func unusableURLsAreRefusedWithTheReason(given: String, reason: String) {
        let e = #expect(throws: PushgatewayError.self) { try Pushgateway(url: given) }
        #expect(e?.kind == .invalidURL)
        #expect(e?.reason.contains(reason) == true, "\(String(describing: e))")
        #expect(e?.description.contains("'\(given)'") == true)
    }

    @Test func theReadmesEncodingExamplesAreReproduced() throws {
        // The Pushgateway README's URL section: `/var/tmp`, `Προμηθεύς` as base64 and as a URI
        // component (padding is optional there; Python's urlsafe_b64encode writes it).
        #expect(Pushgateway.base64URLSafe(Array("/var/tmp".utf8)) == "L3Zhci90bXA=")
        #expect(Pushgateway.base64URLSafe(Array("Προμηθεύς".utf8)) == "zqDPgc6_zrzOt864zrXPjc-C")
        #expect(Pushgateway.percentEncoded("Προμηθεύς") == "%CE%A0%CF%81%CE%BF%CE%BC%CE%B7%CE%B8%CE%B5%CF%8D%CF%82")
        // RFC 4648 §10's test vectors.
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors { #expect(Pushgateway.base64URLSafe(Array(plain.utf8)) == encoded) }
        let gateway = try Pushgateway(url: "http://pushgateway.example.org:9091")
        #expect(try gateway.path(job: "directory_cleaner", grouping: ["path": "/var/tmp"])
            == "/metrics/job/directory_cleaner/path@base64/L3Zhci90bXA=")
        #expect(try gateway.path(job: "example", grouping: ["first_label": "", "second_label": "foobar"])
            == "/metrics/job/example/first_label@base64/=/second_label/foobar")
        #expect(try gateway.path(job: "titan", grouping: ["name": "Προμηθεύς"])
            == "/metrics/job/titan/name/%CE%A0%CF%81%CE%BF%CE%BC%CE%B7%CE%B8%CE%B5%CF%8D%CF%82")
    }

    @Test func urlsMethodsAndContentTypeAreThoseOfPrometheusClient() throws {
        struct Case: Codable {
            var gateway: String
            var job: String
            var grouping: [String: String]
            var add: Bool
        }
        let cases = [
            Case(gateway: "http://127.0.0.1:9091", job: "batch", grouping: [:], add: false),
            Case(gateway: "127.0.0.1:9091", job: "batch", grouping: [:], add: true),
            Case(gateway: "http://gw:9091/prefix/", job: "a/b", grouping: ["instance": "host-1:8080"], add: false),
            Case(gateway: "http://gw:9091", job: "", grouping: ["empty": "", "b": "x y", "a": "/var/tmp"], add: true),
            Case(gateway: "http://gw:9091", job: "nightly report", grouping: ["z": "a+b&c=d%e", "Z": "~._-", "_u": "Προμηθεύς"], add: false),
            Case(gateway: "http://gw:9091", job: "ünïcode", grouping: ["q": "\"quoted\" \\ back", "nl": "line\nbreak", "s": "//"], add: true),
            Case(gateway: "http://[::1]:9091", job: "j", grouping: ["x": "=", "y": "@base64"], add: false),
        ]
        let python = try ExternalTool.python.path()
        let input = String(decoding: try JSONEncoder().encode(cases), as: UTF8.self)
        let result = try run(python, [repositoryRoot() + "/scripts/python/push_url.py"], input: input, timeout: 60)
        try #require(result.status == 0, "push_url.py failed: \(result.stderr)")
        struct Seen: Codable {
            var url: String
            var method: String
            var headers: [String: String]
        }
        let expected = try JSONDecoder().decode([Seen].self, from: Data(result.stdout.utf8))
        try #require(expected.count == cases.count)
        for (c, python) in zip(cases, expected) {
            let gateway = try Pushgateway(url: c.gateway)
            #expect(try gateway.pushURL(job: c.job, grouping: c.grouping) == python.url, "job \(c.job) grouping \(c.grouping)")
            #expect((c.add ? "POST" : "PUT") == python.method)
            #expect(python.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8")
        }
    }

    @Test(arguments: [
        (["0bad": "x"], "'0bad' is not a valid label name"),
        (["a-b": "x"], "'a-b' is not a valid label name"),
        (["a/b": "x"], "'a/b' is not a valid label name"),
        (["": "x"], "'' is not a valid label name"),
        (["job": "x"], "the job label is given by the job"),
    ])
    func unusableGroupingNamesAreRefusedBeforeAnythingIsSent(grouping: [String: String], reason: String) throws {
        // Port 9 (discard) on a documentation address: nothing must be sent anywhere.
        let gateway = try Pushgateway(url: "http://192.0.2.1:9", timeout: 0.1)
        let e = #expect(throws: PushgatewayError.self) { try gateway.push([], job: "j", grouping: grouping, replace: true) }
        #expect(e?.kind == .invalidGroupingKey)
        #expect(e?.reason.contains(reason) == true, "\(String(describing: e))")
    }
}

// MARK: - The client against servers that misbehave on purpose

/// A server for one connection on 127.0.0.1: it accepts, reads the request head (and, when
/// asked, the body its Content-Length announces), sends `reply`, then keeps the connection
/// open for `holdSeconds` before closing it. `accept: false` never accepts: connections wait
/// in the kernel's queue and are never answered.
private final class OneShotServer: Sendable {
    let port: Int
    private let listener: Int32
    private let received = Locked<[UInt8]>([])
    private let requestRead = DispatchSemaphore(value: 0)

    init(reply: [UInt8], readBody: Bool = true, accept: Bool = true, holdSeconds: Double = 0) throws {
        (listener, port) = try Sys.listenTCP(host: "127.0.0.1", port: 0)
        guard accept else { return }
        try Sys.startThread(name: "one-shot-server") { [self] in
            var watched = [Sys.PollDescriptor(fd: listener, events: .readable)]
            guard (try? Sys.poll(&watched, timeoutMilliseconds: 10_000)) == 1,
                case .accepted(let fd)? = try? Sys.accept(listener)
            else {
                requestRead.signal()
                return
            }
            defer { Sys.close(fd) }
            var bytes: [UInt8] = []
            let deadline = Sys.monotonicNanoseconds() + 10_000_000_000
            var want: Int? = nil
            while Sys.monotonicNanoseconds() < deadline {
                if want == nil, let end = HTTPRequestParser.headEnd(in: bytes, from: 0) {
                    let head = String(decoding: bytes[..<end], as: UTF8.self).lowercased()
                    let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                    want = end + (readBody ? length : 0)
                }
                if let want, bytes.count >= want { break }
                var conn = [Sys.PollDescriptor(fd: fd, events: .readable)]
                _ = try? Sys.poll(&conn, timeoutMilliseconds: 100)
                guard let chunk = try? Sys.receive(fd, maximum: 256 * 1024) else { continue }
                if chunk.isEmpty { break }
                bytes += chunk
            }
            received.withLock { $0 = bytes }
            requestRead.signal()
            var sent = 0
            while sent < reply.count {
                let r: Sys.TransferOutcome? = reply.withUnsafeBytes { b in try? Sys.send(fd, UnsafeRawBufferPointer(rebasing: b[sent...])) }
                if case .transferred(let n)? = r { sent += n } else { break }
            }
            // Keep the connection open (a client must not need the close to finish), then
            // end it as Go's net/http does after a body it did not read: FIN, then close.
            Sys.sleep(seconds: holdSeconds)
            Sys.shutdownWrite(fd)
        }
    }

    deinit { Sys.close(listener) }

    /// The request bytes the server read, once it has read them (waiting at most 15 s).
    func request() -> String {
        _ = requestRead.wait(timeout: .now() + 15)
        return received.withLock { String(decoding: $0, as: UTF8.self) }
    }
}

private func elapsed(_ start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

@Suite("HTTPClient", .serialized)
struct HTTPClientTests {
    @Test func aChunkedAnswerCompletesByItsFramingWithoutWaitingForTheClose() throws {
        let server = try OneShotServer(
            reply: Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".utf8), holdSeconds: 5)
        let client = HTTPClient(host: "127.0.0.1", port: server.port, timeout: 4)
        let start = ContinuousClock.now
        let response = try client.send(HTTPClientRequest(
            method: "PUT", target: "/metrics/job/j",
            headers: [HTTPHeader(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")],
            body: Array("up 1\n".utf8)))
        #expect(elapsed(start) < 2)
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "hello")
        #expect(server.request() == """
            PUT /metrics/job/j HTTP/1.1\r
            Host: 127.0.0.1:\(server.port)\r
            Content-Type: text/plain; version=0.0.4; charset=utf-8\r
            Content-Length: 5\r
            Connection: close\r
            \r
            up 1

            """)
    }

    @Test func anAnswerBeforeTheWholeBodyIsSentIsStillRead() throws {
        // The server refuses after the head and never reads the 8 MiB body: the client must
        // stop sending and read the refusal, not wait for room until its timeout.
        let refusal = "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large"
        let server = try OneShotServer(reply: Array(refusal.utf8), readBody: false, holdSeconds: 0.5)
        let client = HTTPClient(host: "127.0.0.1", port: server.port, timeout: 5)
        let start = ContinuousClock.now
        let response = try client.send(HTTPClientRequest(method: "POST", target: "/", body: [UInt8](repeating: 0x41, count: 8 << 20)))
        #expect(elapsed(start) < 3)
        #expect(response.status == 413)
        #expect(String(decoding: response.body, as: UTF8.self) == "too large")
    }

    @Test func aSilentServerTimesOutWithinTheTimeout() throws {
        for accept in [true, false] {
            let server = try OneShotServer(reply: [], accept: accept, holdSeconds: 3)
            let client = HTTPClient(host: "127.0.0.1", port: server.port, timeout: 0.5)
            let start = ContinuousClock.now
            let e = #expect(throws: HTTPClientError.self) { _ = try client.send(HTTPClientRequest(method: "GET", target: "/")) }
            #expect(e?.kind == .timeout, "\(String(describing: e))")
            let took = elapsed(start)
            #expect(took >= 0.45 && took < 1.5, "took \(took) s (accept: \(accept))")
        }
    }

    @Test func aClosedPortIsRefusedAtOnceAndAnUnknownNameDoesNotResolve() throws {
        let (fd, port) = try Sys.listenTCP(host: "127.0.0.1", port: 0)
        Sys.close(fd)
        let start = ContinuousClock.now
        let refused = #expect(throws: HTTPClientError.self) {
            _ = try HTTPClient(host: "127.0.0.1", port: port, timeout: 5).send(HTTPClientRequest(method: "GET", target: "/"))
        }
        #expect(refused?.kind == .connect)
        #expect(refused?.message == "connect(127.0.0.1:\(port)): Connection refused (errno 111)")
        #expect(elapsed(start) < 1)
        let unknown = #expect(throws: HTTPClientError.self) {
            _ = try HTTPClient(host: "name.invalid", port: 80, timeout: 5).send(HTTPClientRequest(method: "GET", target: "/"))
        }
        #expect(unknown?.kind == .resolve)
        #expect(unknown?.message.hasPrefix("getaddrinfo(name.invalid): ") == true, "\(String(describing: unknown))")
    }

    @Test func aServerThatClosesWithoutAnsweringIsReported() throws {
        let server = try OneShotServer(reply: [])
        let closed = #expect(throws: HTTPClientError.self) {
            _ = try HTTPClient(host: "127.0.0.1", port: server.port, timeout: 3).send(HTTPClientRequest(method: "GET", target: "/"))
        }
        #expect(closed?.kind == .connect)
        #expect(closed?.message.contains("closed without a response") == true, "\(String(describing: closed))")
        let garbage = try OneShotServer(reply: Array("SSH-2.0-OpenSSH_9.2\r\n\r\n".utf8))
        let bad = #expect(throws: HTTPClientError.self) {
            _ = try HTTPClient(host: "127.0.0.1", port: garbage.port, timeout: 3).send(HTTPClientRequest(method: "GET", target: "/"))
        }
        #expect(bad?.kind == .badResponse, "\(String(describing: bad))")
    }

    @Test func aRefusalBecomesAPushgatewayErrorWithTheStatusAndTheGatewaysText() throws {
        let text = "pushed metrics are invalid or inconsistent with existing metrics: x\n"
        let server = try OneShotServer(reply: Array("HTTP/1.1 400 Bad Request\r\nContent-Length: \(text.utf8.count)\r\n\r\n\(text)".utf8))
        let gateway = try Pushgateway(url: "http://127.0.0.1:\(server.port)/prefix", timeout: 3)
        let e = #expect(throws: PushgatewayError.self) { try gateway.push([], job: "j", grouping: ["path": "/tmp"], replace: false) }
        #expect(e?.kind == .refused)
        #expect(e?.status == 400)
        #expect(e?.responseBody == text)
        #expect(e?.method == "POST")
        #expect(e?.description == "POST http://127.0.0.1:\(server.port)/prefix/metrics/job/j/path@base64/L3RtcA==: "
            + "the gateway answered 400 Bad Request: pushed metrics are invalid or inconsistent with existing metrics: x")
        #expect(server.request().hasPrefix("POST /prefix/metrics/job/j/path@base64/L3RtcA== HTTP/1.1\r\n"))
    }
}
