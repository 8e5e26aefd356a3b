// The event loop: one thread, `poll` over the listener, a wake-up pipe and every connection,
// each connection a small state machine with one deadline. Handlers run on HTTPHandlerPool;
// their responses come back through HTTPServerShared and the wake-up pipe.
//
// Connection states and their deadlines:
//   readingHead       header timeout (from acceptance, or from the first byte of a request on
//                     a kept-alive connection); idle timeout while a kept-alive connection has
//                     received nothing yet
//   awaitingHandler   none (the shutdown timeout bounds it); the socket is not read, so a
//                     pipelining client is held back
//   writing           write timeout for the whole response
//   lingering         after the last response of a closing connection: the sending side is
//                     shut down and unread input is drained until the peer closes (at most
//                     2 s), so that closing cannot turn into a reset that destroys the response
//                     in flight; while shutting down, closed as soon as the input is drained
import SystemCalls
import PromMetrics

final class HTTPEventLoop {
    private final class Connection {
        enum State {
            case readingHead
            case awaitingHandler(headOnly: Bool, keepAlive: Bool)
            case writing(keepAlive: Bool)
            case lingering
        }

        let id: UInt64
        let fd: Int32
        var state: State = .readingHead
        /// Bytes received and not yet consumed; at most one request head plus what a
        /// pipelining client sent after it.
        var input: [UInt8] = []
        /// How many bytes of `input` were already searched for the end of the head.
        var scanned = 0
        /// A kept-alive connection between requests that has received nothing yet.
        var idle = false
        /// The peer shut down its sending side; answer what it sent, then close.
        var peerClosed = false
        /// When the current state's time runs out (monotonic nanoseconds).
        var deadline: UInt64
        /// When the connection last started waiting for a request head: the eviction order.
        var waitingSince: UInt64
        var output: [UInt8] = []
        var written = 0

        init(id: UInt64, fd: Int32, now: UInt64, headerDeadline: UInt64) {
            self.id = id
            self.fd = fd
            deadline = headerDeadline
            waitingSince = now
        }

        var isEvictable: Bool {
            switch state {
            case .readingHead, .lingering: true
            case .awaitingHandler, .writing: false
            }
        }
    }

    /// How long a closing connection's unread input is drained at most.
    private static let lingerNanoseconds: UInt64 = 2_000_000_000
    /// How long accepting pauses after the process ran out of descriptors or memory.
    private static let acceptBackoffNanoseconds: UInt64 = 100_000_000
    /// The most connections accepted per wake-up, so a flood cannot starve other work.
    private static let acceptBatch = 64
    private static let overloadedResponse = Array(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)

    private var listener: Int32
    private let configuration: HTTPServerConfiguration
    private let shared: HTTPServerShared
    private let pool: HTTPHandlerPool
    private let handler: MetricsHTTPServer.Handler
    private let parser: HTTPRequestParser

    private var connections: [UInt64: Connection] = [:]
    private var nextID: UInt64 = 0
    private var acceptResumesAt: UInt64 = 0
    private var stopping = false
    private var stopDeadline: UInt64 = .max
    private var receiveBuffer = [UInt8](repeating: 0, count: 16 * 1024)
    private var cachedDate: (second: Int, text: String) = (-1, "")

    private let headerTimeout: UInt64
    private let idleTimeout: UInt64
    private let writeTimeout: UInt64
    private let maxConnections: Int

    init(listener: Int32, configuration: HTTPServerConfiguration, shared: HTTPServerShared, pool: HTTPHandlerPool,
         handler: @escaping MetricsHTTPServer.Handler) {
        self.listener = listener
        self.configuration = configuration
        self.shared = shared
        self.pool = pool
        self.handler = handler
        parser = HTTPRequestParser(
            maxHeadBytes: max(64, configuration.maxRequestHeadBytes), maxHeaderCount: max(1, configuration.maxHeaderCount))
        headerTimeout = Self.nanoseconds(configuration.headerTimeout)
        idleTimeout = Self.nanoseconds(configuration.idleTimeout)
        writeTimeout = Self.nanoseconds(configuration.writeTimeout)
        maxConnections = max(1, configuration.maxConnections)
    }

    private static func nanoseconds(_ seconds: Double) -> UInt64 {
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return seconds >= 1e9 ? UInt64.max / 2 : UInt64(seconds * 1e9)
    }

    // MARK: the loop

    func run() {
        var polled: [Connection] = []
        while true {
            let now = Sys.monotonicNanoseconds()
            let level = shared.shutdownLevel
            if level >= 1 && !stopping { beginStopping(now) }
            if stopping && (connections.isEmpty || now >= stopDeadline || level >= 2) { break }

            var descriptors = [Sys.PollDescriptor(fd: shared.wakeRead, events: .readable)]
            let listening = listener >= 0 && now >= acceptResumesAt
            if listening { descriptors.append(Sys.PollDescriptor(fd: listener, events: .readable)) }
            polled.removeAll(keepingCapacity: true)
            var nearest = stopDeadline
            if listener >= 0 && !listening { nearest = min(nearest, acceptResumesAt) }
            for connection in connections.values {
                let events: Sys.PollEvents
                switch connection.state {
                case .readingHead, .lingering: events = .readable
                case .writing: events = .writable
                case .awaitingHandler: continue
                }
                descriptors.append(Sys.PollDescriptor(fd: connection.fd, events: events))
                polled.append(connection)
                nearest = min(nearest, connection.deadline)
            }
            // Wake at the nearest deadline (rounded up), and at least once a second.
            let waitNanoseconds = min(nearest > now ? nearest - now : 0, 1_000_000_000)
            let timeout = Int32((waitNanoseconds + 999_999) / 1_000_000)

            do {
                _ = try Sys.poll(&descriptors, timeoutMilliseconds: timeout)
            } catch {
                // EINVAL or ENOMEM from poll cannot be fixed by retrying at once; stop
                // rather than spin.
                ProblemReporter.default.report(Problem(
                    code: "http_server_stopped", message: "MetricsHTTPServer: \(error); stopping", error: error))
                break
            }
            let after = Sys.monotonicNanoseconds()
            if !descriptors[0].returned.isEmpty { Sys.drain(shared.wakeRead) }
            for (id, response) in shared.takeCompletions() { deliver(response, to: id, now: after) }
            let offset = listening ? 2 : 1
            for (i, connection) in polled.enumerated() {
                let events = descriptors[i + offset].returned
                // A connection closed earlier in this pass may have had its descriptor reused.
                guard !events.isEmpty, connections[connection.id] === connection else { continue }
                service(connection, now: after)
            }
            if listening && !descriptors[1].returned.isEmpty { acceptConnections(now: after) }
            expireDeadlines(now: after)
        }

        if listener >= 0 { Sys.close(listener); listener = -1 }
        for connection in connections.values { Sys.close(connection.fd) }
        connections.removeAll()
        pool.stop()
    }

    private func beginStopping(_ now: UInt64) {
        stopping = true
        let grace = Self.nanoseconds(configuration.shutdownTimeout)
        stopDeadline = grace >= UInt64.max - now ? .max : now + grace
        if listener >= 0 { Sys.close(listener); listener = -1 }
        for connection in Array(connections.values) {
            switch connection.state {
            case .readingHead: close(connection)
            case .writing: connection.state = .writing(keepAlive: false)
            case .lingering: drainLingering(connection)
            case .awaitingHandler: break
            }
        }
    }

    // MARK: accepting

    private func acceptConnections(now: UInt64) {
        for _ in 0..<Self.acceptBatch {
            let fd: Int32
            do {
                switch try Sys.accept(listener) {
                case .wouldBlock: return
                case .accepted(let accepted): fd = accepted
                }
            } catch {
                // Out of descriptors or memory: the listener stays readable, so pause it
                // instead of spinning; timeouts will free descriptors.
                acceptResumesAt = now + Self.acceptBackoffNanoseconds
                return
            }
            try? Sys.setNoDelay(fd)
            if connections.count >= maxConnections {
                // Displace the connection that has waited longest for a request head (an
                // idle keep-alive one, a slow sender, a silent one) or that is already closing.
                let victim = connections.values.filter(\.isEvictable).min { a, b in
                    if case .lingering = a.state { if case .lingering = b.state {} else { return true } }
                    if case .lingering = b.state { if case .lingering = a.state {} else { return false } }
                    return a.waitingSince < b.waitingSince
                }
                guard let victim else {
                    // Every connection is being answered: tell the newcomer and let it go.
                    Self.overloadedResponse.withUnsafeBytes { _ = try? Sys.send(fd, $0) }
                    Sys.close(fd)
                    continue
                }
                close(victim)
            }
            nextID += 1
            let connection = Connection(id: nextID, fd: fd, now: now, headerDeadline: now &+ headerTimeout)
            connections[connection.id] = connection
        }
    }

    // MARK: per-connection work

    private func service(_ connection: Connection, now: UInt64) {
        switch connection.state {
        case .readingHead: readHead(connection, now: now)
        case .lingering: drainLingering(connection)
        case .writing: flush(connection, now: now)
        case .awaitingHandler: break
        }
    }

    private func readHead(_ connection: Connection, now: UInt64) {
        // Read at most one byte past the limit: enough for the parser to reject the head.
        let limit = parser.maxHeadBytes + 1
        while connection.input.count < limit {
            let room = min(receiveBuffer.count, limit - connection.input.count)
            let outcome: Sys.TransferOutcome
            do {
                outcome = try receiveBuffer.withUnsafeMutableBytes { buffer throws(SystemError) in
                    try Sys.receive(connection.fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<room]))
                }
            } catch {
                close(connection)
                return
            }
            switch outcome {
            case .wouldBlock:
                parse(connection, now: now)
                return
            case .endOfStream:
                // A client may send its request and shut down its side at once
                // (`printf ... | nc -N`): answer a complete request, then close.
                connection.peerClosed = true
                parse(connection, now: now)
                if case .readingHead = connection.state { close(connection) }
                return
            case .transferred(let n):
                var bytes = receiveBuffer[0..<n]
                if connection.input.isEmpty {
                    // Empty lines before a request line are ignored (RFC 9112 §2.2).
                    while let b = bytes.first, b == 0x0D || b == 0x0A { bytes = bytes.dropFirst() }
                    if bytes.isEmpty { continue }
                    if connection.idle {
                        connection.idle = false
                        connection.deadline = now &+ headerTimeout
                    }
                }
                connection.input.append(contentsOf: bytes)
            }
        }
        parse(connection, now: now)
    }

    private func parse(_ connection: Connection, now: UInt64) {
        guard !connection.input.isEmpty else { return }
        switch parser.parse(connection.input, scannedUpTo: connection.scanned) {
        case .incomplete:
            connection.scanned = connection.input.count
        case .reject(let status, let message):
            connection.input = []
            startWriting(
                connection,
                HTTPResponseEncoder.rejection(status: status, message: message, headOnly: false, date: date()),
                keepAlive: false, now: now)
        case .request(let request, let headLength, let keepAlive):
            connection.input.removeFirst(headLength)
            connection.scanned = 0
            connection.state = .awaitingHandler(headOnly: request.method == "HEAD", keepAlive: keepAlive)
            let (handler, shared, id) = (self.handler, self.shared, connection.id)
            pool.submit { shared.complete(id, handler(request)) }
        }
    }

    private func deliver(_ response: HTTPResponse, to id: UInt64, now: UInt64) {
        guard let connection = connections[id],
            case .awaitingHandler(let headOnly, let keepAlive) = connection.state
        else { return }
        let keep = keepAlive && !stopping && !connection.peerClosed
        startWriting(
            connection, HTTPResponseEncoder.encode(response, headOnly: headOnly, keepAlive: keep, date: date()),
            keepAlive: keep, now: now)
    }

    private func startWriting(_ connection: Connection, _ bytes: [UInt8], keepAlive: Bool, now: UInt64) {
        connection.output = bytes
        connection.written = 0
        connection.state = .writing(keepAlive: keepAlive)
        connection.deadline = now &+ writeTimeout
        flush(connection, now: now)
    }

    private func flush(_ connection: Connection, now: UInt64) {
        guard case .writing(let keepAlive) = connection.state else { return }
        while connection.written < connection.output.count {
            let outcome: Sys.TransferOutcome
            do {
                outcome = try connection.output.withUnsafeBytes { bytes throws(SystemError) in
                    try Sys.send(connection.fd, UnsafeRawBufferPointer(rebasing: bytes[connection.written...]))
                }
            } catch {
                close(connection)  // EPIPE, ECONNRESET: the client left
                return
            }
            switch outcome {
            case .transferred(let n): connection.written += n
            case .wouldBlock, .endOfStream: return
            }
        }
        connection.output = []
        connection.written = 0
        if keepAlive && !stopping {
            connection.state = .readingHead
            connection.waitingSince = now
            connection.idle = connection.input.isEmpty
            connection.deadline = now &+ (connection.idle ? idleTimeout : headerTimeout)
            // A pipelining client may have sent its next request already.
            parse(connection, now: now)
        } else {
            Sys.shutdownWrite(connection.fd)
            connection.state = .lingering
            connection.input = []
            connection.deadline = now &+ Self.lingerNanoseconds
            drainLingering(connection)
        }
    }

    private func drainLingering(_ connection: Connection) {
        while true {
            let outcome = try? receiveBuffer.withUnsafeMutableBytes { buffer throws(SystemError) in
                try Sys.receive(connection.fd, into: buffer)
            }
            switch outcome {
            case .transferred?: continue
            case .wouldBlock?:
                // Shutting down, a connection whose input is drained can close without a
                // reset; the kernel still delivers what is queued for sending.
                if stopping { close(connection) }
                return
            case .endOfStream?, nil:
                close(connection)
                return
            }
        }
    }

    private func expireDeadlines(now: UInt64) {
        for connection in Array(connections.values) where connection.deadline <= now {
            switch connection.state {
            case .readingHead:
                if connection.input.isEmpty {
                    // Nothing of a request arrived: not a request to answer, just close.
                    close(connection)
                } else {
                    connection.input = []
                    startWriting(
                        connection,
                        HTTPResponseEncoder.rejection(
                            status: 408, message: "request head not received in time", headOnly: false, date: date()),
                        keepAlive: false, now: now)
                }
            case .writing, .lingering:
                close(connection)
            case .awaitingHandler:
                break
            }
        }
    }

    private func close(_ connection: Connection) {
        Sys.close(connection.fd)
        connections.removeValue(forKey: connection.id)
    }

    private func date() -> String {
        let second = Int(Sys.wallClock())
        if second != cachedDate.second { cachedDate = (second, HTTPResponseEncoder.httpDate(epochSeconds: second)) }
        return cachedDate.text
    }
}
