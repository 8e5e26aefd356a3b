// A deliberately simple blocking HTTP/1.1 client for the server tests, written separately
// from the server's own parser so the two cannot share a mistake.
import SystemCalls
import Foundation

/// A parsed response as the test client read it.
public struct ClientResponse {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status; self.headers = headers; self.body = body
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
    public var text: String { String(decoding: body, as: UTF8.self) }
}

public struct ClientError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// One TCP connection to 127.0.0.1 with a receive timeout, so no test can hang.
public final class TestClient {
    public let fd: Int32
    private var pending: [UInt8] = []
    private var closed = false

    public init(port: Int, timeoutSeconds: Double = 3) throws {
        fd = try Sys.connectTCP(host: "127.0.0.1", port: port, timeoutSeconds: timeoutSeconds)
    }

    deinit { if !closed { Sys.close(fd) } }

    public func close() {
        if !closed { Sys.close(fd); closed = true }
    }

    public func send(_ text: String) throws { try Sys.sendAll(fd, Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws { try Sys.sendAll(fd, bytes) }

    /// A GET (or other method) request with the Host field and any extra lines.
    public func request(_ method: String = "GET", _ target: String, extra: String = "") throws {
        try send("\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(extra)\r\n")
    }

    /// Reads more bytes; false at end of stream. Throws on timeout or error.
    private func fill() throws -> Bool {
        guard let chunk = try Sys.receive(fd, maximum: 64 * 1024) else {
            throw ClientError(description: "timed out waiting for the server")
        }
        if chunk.isEmpty { return false }
        pending += chunk
        return true
    }

    /// Reads one response; `bodyExpected: false` for HEAD (the body length is not read).
    public func readResponse(bodyExpected: Bool = true) throws -> ClientResponse {
        var headEnd: Int? = nil
        while headEnd == nil {
            if let r = find([13, 10, 13, 10]) { headEnd = r; break }
            guard try fill() else { throw ClientError(description: "connection closed before a response head") }
        }
        let head = String(decoding: pending[0..<headEnd!], as: UTF8.self)
        pending.removeFirst(headEnd! + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let status = Int(statusLine[1]) else {
            throw ClientError(description: "bad status line in \(head)")
        }
        let headers = lines.map { line -> (String, String) in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = ClientResponse(status: status, headers: headers, body: [])
        if bodyExpected, let length = response.header("Content-Length").flatMap({ Int($0) }) {
            while pending.count < length {
                guard try fill() else { throw ClientError(description: "connection closed inside a body") }
            }
            response.body = Array(pending[0..<length])
            pending.removeFirst(length)
        }
        return response
    }

    /// Whether the server closes the connection (end of stream or reset) with no further
    /// bytes within the timeout.
    public func readsEndOfStream() -> Bool {
        if !pending.isEmpty { return false }
        do { return try !fill() } catch let e as SystemError { return e.errno.rawValue == 104 /* ECONNRESET */ } catch { return false }
    }

    /// Bytes received but not consumed by `readResponse`.
    public var unreadBytes: Int { pending.count }

    private func find(_ needle: [UInt8]) -> Int? {
        guard pending.count >= needle.count else { return nil }
        for i in 0...(pending.count - needle.count) where pending[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }
}
