// A minimal HTTP/1.1 client: one request per connection (`Connection: close`), no redirects,
// no TLS, no proxies. Everything (name lookup aside) runs against one deadline, so a gateway
// that accepts and then says nothing cannot hold the caller longer than its timeout.
import SystemCalls

/// A request for ``HTTPClient``.
package struct HTTPClientRequest: Sendable, Hashable {
    /// The method, such as `PUT`.
    package var method: String
    /// The request target in origin form, such as `/metrics/job/nightly`, already encoded.
    package var target: String
    /// Header fields besides `Host`, `Content-Length` and `Connection`, which the client sets.
    package var headers: [HTTPHeader]
    /// The body; a `Content-Length` is always sent for it (also `0`).
    package var body: [UInt8]

    package init(method: String, target: String, headers: [HTTPHeader] = [], body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }
}

/// Why an exchange did not produce a response.
package struct HTTPClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kinds of failure, coarse enough for a caller to decide what to tell its user.
    package enum Kind: Sendable, Hashable {
        /// The host name did not resolve.
        case resolve
        /// No connection: refused, unreachable, reset while sending, closed without an answer.
        case connect
        /// The deadline passed (while connecting, sending or waiting for the response).
        case timeout
        /// The peer's answer is not a usable HTTP/1.x response (malformed, too large).
        case badResponse
    }

    /// What kind of failure this is.
    package let kind: Kind
    /// What happened, naming the call or the limit, such as
    /// `connect(127.0.0.1:9091): Connection refused (errno 111)`.
    package let message: String

    package var description: String { message }
}

/// Sends one request to `host:port` and reads the response.
package struct HTTPClient: Sendable {
    /// A host name, an IPv4 address, or an IPv6 address without brackets.
    package var host: String
    /// The TCP port.
    package var port: Int
    /// Seconds for the whole exchange: connecting, sending and receiving the response.
    package var timeout: Double
    /// Limits for the response.
    package var parser = HTTPResponseParser()

    package init(host: String, port: Int, timeout: Double) {
        self.host = host
        self.port = port
        self.timeout = timeout
    }

    /// The `Host` field's value: `host:port`, IPv6 addresses in brackets.
    package var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The bytes sent for `request`.
    package func encode(_ request: HTTPClientRequest) -> [UInt8] {
        var head = "\(request.method) \(request.target) HTTP/1.1\r\nHost: \(authority)\r\n"
        for field in request.headers { head += "\(field.name): \(field.value)\r\n" }
        head += "Content-Length: \(request.body.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + request.body
    }

    /// Connects, sends `request` and reads the whole response, within ``timeout``.
    ///
    /// Every address the name resolves to is tried in turn until one accepts. A peer that
    /// answers and closes before taking the whole body (a Go server refusing early) still has
    /// its answer read and returned.
    /// - Returns: the final response (interim 1xx responses are skipped).
    /// - Throws: `HTTPClientError` when no complete response arrived in time.
    package func send(_ request: HTTPClientRequest) throws(HTTPClientError) -> HTTPClientResponse {
        // NaN and negative timeouts time out at once; absurdly large ones are capped at a year
        // so the conversion to nanoseconds cannot overflow.
        let budget = timeout.isNaN ? 0 : min(max(timeout, 0), 365 * 86_400)
        let deadline = Sys.monotonicNanoseconds() &+ UInt64(budget * 1e9)
        let addresses: [Sys.SocketAddress]
        do throws(Sys.ResolveError) {
            addresses = try Sys.resolveTCP(host: host, port: port)
        } catch {
            throw HTTPClientError(kind: .resolve, message: error.description)
        }
        var fd: Int32 = -1
        var failures: [SystemError] = []
        for address in addresses {
            do throws(SystemError) {
                fd = try Sys.connectTCP(to: address, deadline: deadline)
                break
            } catch {
                failures.append(error)
                if error.errno == .timedOut { break }
            }
        }
        guard fd >= 0 else {
            let timedOut = failures.last?.errno == .timedOut
            let what = failures.map(\.description).joined(separator: "; ")
            throw HTTPClientError(
                kind: timedOut ? .timeout : .connect,
                message: timedOut ? "no connection within \(seconds(timeout)): \(what)" : what)
        }
        defer { Sys.close(fd) }

        var sendFailure: SystemError? = nil
        do throws(SystemError) {
            try sendAll(encode(request), on: fd, deadline: deadline)
        } catch let e where e.errno == .timedOut {
            throw HTTPClientError(kind: .timeout, message: "the request was not sent within \(seconds(timeout))")
        } catch {
            // The peer may have answered before it stopped reading (a refusal): look for it.
            sendFailure = error
        }
        return try receiveResponse(on: fd, deadline: deadline, sendFailure: sendFailure)
    }

    /// Sends `bytes`, or stops early when the peer answers before taking them all (a server
    /// refusing a body it will not read), so the answer is read instead of waiting for room.
    private func sendAll(_ bytes: [UInt8], on fd: Int32, deadline: UInt64) throws(SystemError) {
        var done = 0
        var watched = [Sys.PollDescriptor(fd: fd, events: [.writable, .readable])]
        while done < bytes.count {
            let outcome: Result<Sys.TransferOutcome, SystemError> = bytes.withUnsafeBytes { all in
                do throws(SystemError) {
                    return .success(try Sys.send(fd, UnsafeRawBufferPointer(rebasing: all[done...])))
                } catch { return .failure(error) }
            }
            switch try outcome.get() {
            case .transferred(let n): done += n
            case .endOfStream: throw Sys.fail("send", nil, .brokenPipe)
            case .wouldBlock:
                let left = Sys.remainingMilliseconds(until: deadline)
                if left == 0 { throw Sys.fail("send", nil, .timedOut) }
                if try Sys.poll(&watched, timeoutMilliseconds: left) > 0,
                    !watched[0].returned.isDisjoint(with: [.readable, .hangUp, .error])
                {
                    return
                }
            }
        }
    }

    private func receiveResponse(on fd: Int32, deadline: UInt64, sendFailure: SystemError?) throws(HTTPClientError) -> HTTPClientResponse {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var watched = [Sys.PollDescriptor(fd: fd, events: .readable)]
        while true {
            let outcome: Result<Sys.TransferOutcome, SystemError> = chunk.withUnsafeMutableBytes { buffer in
                do throws(SystemError) { return .success(try Sys.receive(fd, into: buffer)) } catch { return .failure(error) }
            }
            var endOfStream = false
            switch outcome {
            case .success(.transferred(let n)): received += chunk[0..<n]
            case .success(.endOfStream): endOfStream = true
            case .success(.wouldBlock):
                let left = Sys.remainingMilliseconds(until: deadline)
                if left == 0 {
                    let got = received.isEmpty ? "no response" : "an incomplete response (\(received.count) bytes)"
                    throw HTTPClientError(kind: .timeout, message: "\(got) within \(seconds(timeout))")
                }
                do throws(SystemError) {
                    _ = try Sys.poll(&watched, timeoutMilliseconds: left)
                } catch {
                    throw HTTPClientError(kind: .connect, message: error.description)
                }
                continue
            case .failure(let error):
                // A reset after a complete response changes nothing; before one, it is the
                // answer (or the send failure that led to it).
                if case .response(let r) = parser.parse(received, endOfStream: true) { return r }
                throw HTTPClientError(kind: .connect, message: (sendFailure ?? error).description)
            }
            switch parser.parse(received, endOfStream: endOfStream) {
            case .response(let r): return r
            case .invalid(let why):
                if received.isEmpty, let sendFailure {
                    throw HTTPClientError(kind: .connect, message: sendFailure.description)
                }
                throw HTTPClientError(kind: endOfStream && received.isEmpty ? .connect : .badResponse, message: why)
            case .incomplete:
                if endOfStream {
                    // parse(endOfStream: true) never answers incomplete; kept for safety.
                    throw HTTPClientError(kind: .badResponse, message: "the connection closed before a complete response")
                }
            }
        }
    }

    private func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
    }
}
