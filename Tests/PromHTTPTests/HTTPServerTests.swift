// MetricsHTTPServer over real sockets on 127.0.0.1. Every client has a receive timeout and
// every test bounds its own duration, so a broken server fails a test instead of hanging it.
import SystemCalls
import Dispatch
import Foundation
import TestSupport
import Synchronization
import Testing

@testable import PromHTTP

private let metricsBody = "# TYPE up gauge\nup 1\n"

private func metricsRoutes(_ extra: [String: MetricsHTTPServer.Handler] = [:]) -> [String: MetricsHTTPServer.Handler] {
    var routes: [String: MetricsHTTPServer.Handler] = [
        "/metrics": { _ in
            HTTPResponse(
                status: 200, headers: [HTTPHeader(name: "Content-Type", value: "text/plain; version=0.0.4")],
                body: Array(metricsBody.utf8))
        }
    ]
    routes.merge(extra) { a, _ in a }
    return routes
}

/// Starts a server on an ephemeral port, runs `body`, then shuts it down and waits.
private func withServer<T>(
    _ configure: (inout HTTPServerConfiguration) -> Void = { _ in },
    routes: [String: MetricsHTTPServer.Handler] = metricsRoutes(),
    _ body: (MetricsHTTPServer) throws -> T
) throws -> T {
    var configuration = HTTPServerConfiguration()
    configure(&configuration)
    let server = try MetricsHTTPServer(configuration: configuration, routes: routes)
    try server.start()
    defer {
        server.shutdown()
        server.waitUntilStopped()
    }
    return try body(server)
}

private func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// Runs `body` on its own thread (blocking socket work must not sit on Swift's cooperative
/// pool) and returns a way to wait for its result.
private func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> @Sendable () throws -> T {
    let result = Locked<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    try Sys.startThread(name: "test-client") {
        let r = Result { try body() }
        result.withLock { $0 = r }
        done.signal()
    }
    return {
        guard done.wait(timeout: .now() + 10) == .success else { throw ClientError(description: "client thread timed out") }
        return try result.withLock { $0! }.get()
    }
}

@Suite("MetricsHTTPServer", .serialized)
struct HTTPServerTests {
    @Test func getReturnsTheHandlersBodyWithFraming() throws {
        try withServer { server in
            let client = try TestClient(port: server.port)
            try client.request("GET", "/metrics")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.text == metricsBody)
            #expect(response.header("Content-Length") == "\(metricsBody.utf8.count)")
            #expect(response.header("Content-Type") == "text/plain; version=0.0.4")
            #expect(response.header("Connection") == "keep-alive")
            #expect(response.header("Date")?.hasSuffix(" GMT") == true)
        }
    }

    @Test func headSendsTheSameLengthAndNoBody() throws {
        try withServer { server in
            let client = try TestClient(port: server.port)
            try client.request("HEAD", "/metrics")
            let head = try client.readResponse(bodyExpected: false)
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "\(metricsBody.utf8.count)")
            // A body after the HEAD response would be read as the start of this one.
            try client.request("GET", "/metrics")
            let get = try client.readResponse()
            #expect(get.status == 200)
            #expect(get.text == metricsBody)
            #expect(client.unreadBytes == 0)
        }
    }

    @Test(arguments: ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"])
    func methodsOtherThanGetAndHeadAreRefusedWithAllow(method: String) throws {
        try withServer { server in
            let client = try TestClient(port: server.port)
            try client.request(method, "/metrics")
            let response = try client.readResponse()
            #expect(response.status == 405)
            #expect(response.header("Allow") == "GET, HEAD")
            #expect(response.header("Connection") == "close")
            #expect(client.readsEndOfStream())
        }
    }

    @Test func routingAnswersUnknownPaths404AndIgnoresTheQuery() throws {
        try withServer { server in
            let client = try TestClient(port: server.port)
            try client.request("GET", "/other")
            #expect(try client.readResponse().status == 404)
            try client.request("GET", "/metrics/")
            #expect(try client.readResponse().status == 404)
            try client.request("GET", "/metrics?name[]=up")
            let response = try client.readResponse()
            #expect(response.status == 200)
            #expect(response.text == metricsBody)
        }
    }

    @Test func handlerSeesMethodPathQueryAndHeaders() throws {
        let seen = Locked<HTTPRequest?>(nil)
        let routes: [String: MetricsHTTPServer.Handler] = [
            "/echo": { request in
                seen.withLock { $0 = request }
                return .text(200, "ok")
            }
        ]
        try withServer(routes: routes) { server in
            let client = try TestClient(port: server.port)
            try client.request("GET", "/echo?a=1&b=2", extra: "Accept: application/openmetrics-text; version=1.0.0\r\nX-Two: a\r\nx-two:  b \r\n")
            #expect(try client.readResponse().status == 200)
        }
        let request = try #require(seen.withLock { $0 })
        #expect(request.method == "GET")
        #expect(request.path == "/echo")
        #expect(request.query == "a=1&b=2")
        #expect(request.version == "HTTP/1.1")
        #expect(request.header("ACCEPT") == "application/openmetrics-text; version=1.0.0")
        #expect(request.header("X-Two") == "a, b")
        #expect(request.header("Missing") == nil)
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnectionIncludingPipelined() throws {
        try withServer { server in
            let client = try TestClient(port: server.port)
            for _ in 0..<3 {
                try client.request("GET", "/metrics")
                #expect(try client.readResponse().text == metricsBody)
            }
            // Two requests in one write: both answered, in order.
            try client.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try client.readResponse().status == 200)
            #expect(try client.readResponse().status == 404)
        }
    }

    @Test func connectionCloseAndHTTP10CloseAfterTheResponse() throws {
        try withServer { server in
            let a = try TestClient(port: server.port)
            try a.request("GET", "/metrics", extra: "Connection: close\r\n")
            let first = try a.readResponse()
            #expect(first.status == 200)
            #expect(first.header("Connection") == "close")
            #expect(a.readsEndOfStream())

            let b = try TestClient(port: server.port)
            try b.send("GET /metrics HTTP/1.0\r\n\r\n")
            let second = try b.readResponse()
            #expect(second.status == 200)
            #expect(second.text == metricsBody)
            #expect(second.header("Connection") == "close")
            #expect(b.readsEndOfStream())
        }
    }

    @Test func aRequestFollowedByTheClientsHalfCloseIsStillAnswered() throws {
        // The request and the end of stream are queued before the server starts, so its first
        // read sees both together (`printf 'GET ...' | nc -N` does this).
        let server = try MetricsHTTPServer(configuration: HTTPServerConfiguration(), routes: metricsRoutes())
        defer {
            server.shutdown()
            server.waitUntilStopped()
        }
        let client = try TestClient(port: server.port)
        try client.request("GET", "/metrics")
        Sys.shutdownWrite(client.fd)
        try server.start()
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.text == metricsBody)
        #expect(response.header("Connection") == "close")
        #expect(client.readsEndOfStream())
    }

    @Test func oversizedHeadIsRefused431AndLongRequestLine414ThenClosed() throws {
        try withServer({ $0.maxRequestHeadBytes = 1024 }) { server in
            let a = try TestClient(port: server.port)
            let filler = String(repeating: "X-Filler: " + String(repeating: "f", count: 90) + "\r\n", count: 20)
            try a.send("GET /metrics HTTP/1.1\r\nHost: x\r\n" + filler + "\r\n")
            #expect(try a.readResponse().status == 431)
            #expect(a.readsEndOfStream())

            let b = try TestClient(port: server.port)
            try b.send("GET /" + String(repeating: "a", count: 2000) + " HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try b.readResponse().status == 414)
            #expect(b.readsEndOfStream())

            // A head just under the limit is still served.
            let c = try TestClient(port: server.port)
            let head = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: "
            try c.send(head + String(repeating: "p", count: 1024 - head.utf8.count - 4) + "\r\n\r\n")
            #expect(try c.readResponse().status == 200)
        }
    }

    @Test(arguments: [
        ("GARBAGE\r\n\r\n", 400),
        ("GET /metrics\r\nHost: x\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\n\r\n", 400),  // HTTP/1.1 without Host
        ("GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n", 400),
        ("GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
    ])
    func malformedOrUnsupportedRequestsAreRefusedAndClosed(request: String, status: Int) throws {
        try withServer { server in
            let client = try TestClient(port: server.port)
            try client.send(request)
            let response = try client.readResponse()
            #expect(response.status == status)
            #expect(response.header("Connection") == "close")
            #expect(client.readsEndOfStream())
        }
    }

    @Test func slowlorisIsCutOffWhileAGoodClientKeepsBeingServed() throws {
        try withServer({ $0.headerTimeout = 0.5 }) { server in
            let port = server.port
            let slow = try onThread { () throws -> (status: Int?, closedAfter: Double) in
                let client = try TestClient(port: port, timeoutSeconds: 5)
                let start = ContinuousClock.now
                let request = Array("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: \(String(repeating: "s", count: 60))\r\n\r\n".utf8)
                for byte in request {
                    do { try client.send([byte]) } catch { break }
                    // Wait 100 ms between bytes, or less if the server answers.
                    var watch = [Sys.PollDescriptor(fd: client.fd, events: .readable)]
                    if try Sys.poll(&watch, timeoutMilliseconds: 100) > 0 { break }
                    if seconds(since: start) > 3 { break }
                }
                let status = try? client.readResponse().status
                let closed = client.readsEndOfStream()
                return (closed ? status : nil, seconds(since: start))
            }
            // Meanwhile, a well-behaved client scrapes repeatedly, each on a new connection.
            let start = ContinuousClock.now
            var served = 0
            while seconds(since: start) < 1.0 {
                let client = try TestClient(port: port, timeoutSeconds: 2)
                try client.request("GET", "/metrics")
                if try client.readResponse().status == 200 { served += 1 }
                Thread.sleep(forTimeInterval: 0.05)
            }
            #expect(served >= 5)
            let outcome = try slow()
            #expect(outcome.status == 408)
            // Cut off at the header timeout (0.5 s), well before the ~7 s the head would take.
            #expect(outcome.closedAfter < 2.5)
        }
    }

    @Test func manyIdleConnectionsCannotLockOutAScraper() throws {
        try withServer({
            $0.maxConnections = 64
            $0.headerTimeout = 30
            $0.idleTimeout = 30
        }) { server in
            var idle: [TestClient] = []
            // 100 kept-alive connections that finished a request, then 100 that never send.
            for _ in 0..<100 {
                let c = try TestClient(port: server.port)
                try c.request("GET", "/metrics")
                _ = try c.readResponse()
                idle.append(c)
            }
            for _ in 0..<100 { idle.append(try TestClient(port: server.port)) }
            for _ in 0..<5 {
                let start = ContinuousClock.now
                let client = try TestClient(port: server.port, timeoutSeconds: 2)
                try client.request("GET", "/metrics")
                let response = try client.readResponse()
                #expect(response.status == 200)
                #expect(response.text == metricsBody)
                #expect(seconds(since: start) < 1.5)
            }
            // The oldest idle connections were the ones displaced.
            #expect(idle[0].readsEndOfStream())
            withExtendedLifetime(idle) {}
        }
    }

    @Test func atTheCapWithEveryConnectionBusyANewcomerGets503() throws {
        let release = DispatchSemaphore(value: 0)
        let entered = DispatchSemaphore(value: 0)
        let routes: [String: MetricsHTTPServer.Handler] = [
            "/slow": { _ in
                entered.signal()
                _ = release.wait(timeout: .now() + 5)
                return .text(200, "done")
            }
        ]
        try withServer({
            $0.maxConnections = 2
            $0.handlerConcurrency = 2
        }, routes: routes) { server in
            let a = try TestClient(port: server.port)
            let b = try TestClient(port: server.port)
            try a.request("GET", "/slow")
            try b.request("GET", "/slow")
            #expect(entered.wait(timeout: .now() + 3) == .success)
            #expect(entered.wait(timeout: .now() + 3) == .success)
            let c = try TestClient(port: server.port)
            let refused = try c.readResponse()
            #expect(refused.status == 503)
            #expect(c.readsEndOfStream())
            release.signal()
            release.signal()
            #expect(try a.readResponse().text == "done")
            #expect(try b.readResponse().text == "done")
        }
    }

    @Test func idleKeepAliveConnectionsAreClosedAfterTheIdleTimeout() throws {
        try withServer({ $0.idleTimeout = 0.3 }) { server in
            let client = try TestClient(port: server.port)
            try client.request("GET", "/metrics")
            #expect(try client.readResponse().status == 200)
            let start = ContinuousClock.now
            #expect(client.readsEndOfStream())
            let waited = seconds(since: start)
            #expect(waited > 0.2 && waited < 2)
        }
    }

    @Test func aClientThatDoesNotReadIsDroppedAfterTheWriteTimeout() throws {
        // Far more than loopback socket buffers hold, so the write cannot finish unread.
        let big = [UInt8](repeating: 0x61, count: 32 << 20)
        let routes = metricsRoutes(["/big": { _ in HTTPResponse(status: 200, body: big) }])
        try withServer({ $0.writeTimeout = 0.5 }, routes: routes) { server in
            let reader = try TestClient(port: server.port)
            try reader.request("GET", "/big")
            Thread.sleep(forTimeInterval: 1.0)
            // Others are served meanwhile.
            let other = try TestClient(port: server.port)
            try other.request("GET", "/metrics")
            #expect(try other.readResponse().status == 200)
            // The stalled reader finds its response cut short: the server gave up on it.
            #expect(throws: (any Error).self) { _ = try reader.readResponse() }
        }
    }

    @Test func aSlowHandlerDoesNotDelayOtherRequests() throws {
        let release = DispatchSemaphore(value: 0)
        let routes = metricsRoutes([
            "/slow": { _ in
                _ = release.wait(timeout: .now() + 5)
                return .text(200, "slow")
            }
        ])
        try withServer({ $0.handlerConcurrency = 2 }, routes: routes) { server in
            let slow = try TestClient(port: server.port)
            try slow.request("GET", "/slow")
            let start = ContinuousClock.now
            let fast = try TestClient(port: server.port)
            try fast.request("GET", "/metrics")
            #expect(try fast.readResponse().status == 200)
            #expect(seconds(since: start) < 1)
            release.signal()
            #expect(try slow.readResponse().text == "slow")
        }
    }

    @Test func shutdownFinishesTheRequestInFlightThenStops() throws {
        let entered = DispatchSemaphore(value: 0)
        let routes = metricsRoutes([
            "/slow": { _ in
                entered.signal()
                Thread.sleep(forTimeInterval: 0.3)
                return .text(200, "finished")
            }
        ])
        let server = try MetricsHTTPServer(configuration: HTTPServerConfiguration(), routes: routes)
        try server.start()
        let busy = try TestClient(port: server.port)
        let idle = try TestClient(port: server.port)
        try idle.request("GET", "/metrics")
        #expect(try idle.readResponse().status == 200)
        try busy.request("GET", "/slow")
        #expect(entered.wait(timeout: .now() + 3) == .success)
        server.shutdown()
        let response = try busy.readResponse()
        #expect(response.status == 200)
        #expect(response.text == "finished")
        #expect(response.header("Connection") == "close")
        #expect(busy.readsEndOfStream())
        #expect(idle.readsEndOfStream())
        let start = ContinuousClock.now
        server.waitUntilStopped()
        #expect(seconds(since: start) < 3)
        #expect(throws: SystemError.self) { _ = try TestClient(port: server.port) }
    }

    @Test func shutdownBeforeStartReleasesThePortAndWaitReturns() throws {
        let server = try MetricsHTTPServer(configuration: HTTPServerConfiguration(), routes: metricsRoutes())
        let port = server.port
        server.shutdown()
        server.waitUntilStopped()
        #expect(throws: SystemError.self) { try server.start() }
        // The port is free again: a new server can bind it.
        let again = try MetricsHTTPServer(configuration: HTTPServerConfiguration(bindAddress: "127.0.0.1", port: port), routes: [:])
        #expect(again.port == port)
        again.shutdown()
    }

    @Test func aServerReleasedWithoutStartingFreesItsPort() throws {
        var server: MetricsHTTPServer? = try MetricsHTTPServer(configuration: HTTPServerConfiguration(), routes: [:])
        let port = try #require(server?.port)
        server = nil
        let again = try MetricsHTTPServer(configuration: HTTPServerConfiguration(bindAddress: "127.0.0.1", port: port), routes: [:])
        again.shutdown()
    }

    @Test func bindingABusyPortOrANameNamesTheCall() throws {
        let first = try MetricsHTTPServer(configuration: HTTPServerConfiguration(), routes: [:])
        defer { first.shutdown() }
        do {
            _ = try MetricsHTTPServer(configuration: HTTPServerConfiguration(bindAddress: "127.0.0.1", port: first.port), routes: [:])
            Issue.record("binding a busy port succeeded")
        } catch {
            #expect(error.call == "bind")
            #expect(error.path == "127.0.0.1:\(first.port)")
            #expect(error.errno.rawValue == 98)  // EADDRINUSE
        }
        #expect(throws: SystemError.self) {
            _ = try MetricsHTTPServer(configuration: HTTPServerConfiguration(bindAddress: "example.com", port: 0), routes: [:])
        }
    }

    @Test func ipv6LoopbackIsServed() throws {
        try withServer({ $0.bindAddress = "::1" }) { server in
            let fd = try Sys.connectTCP(host: "::1", port: server.port, timeoutSeconds: 3)
            defer { Sys.close(fd) }
            try Sys.sendAll(fd, Array("GET /metrics HTTP/1.0\r\n\r\n".utf8))
            var received: [UInt8] = []
            while let chunk = try Sys.receive(fd, maximum: 4096), !chunk.isEmpty { received += chunk }
            let text = String(decoding: received, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(text.hasSuffix("\r\n\r\n" + metricsBody))
        }
    }

    @Test func aSignalRelayedByOnSignalsRunsTheCallbackOffTheHandler() throws {
        let received = DispatchSemaphore(value: 0)
        try Sys.onSignals([.hangUp]) { signal in
            if signal == .hangUp { received.signal() }
        }
        Sys.raise(.hangUp)
        #expect(received.wait(timeout: .now() + 3) == .success)
    }
}
