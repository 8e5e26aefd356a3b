// The public face of the HTTP server: lifecycle (bind, start, shutdown, wait) and routing.
// The connection handling lives in HTTPEventLoop.swift.
import SystemCalls
import Dispatch
import Synchronization

/// A small HTTP/1.1 server for a metrics endpoint, with no dependencies beyond the toolchain.
///
/// One event-loop thread multiplexes non-blocking sockets with `poll`; handlers run on a
/// small pool of their own threads (``HTTPServerConfiguration/handlerConcurrency``), so a slow
/// scrape never stops the server from accepting connections or timing out others. Only `GET`
/// and `HEAD` reach the handler: other methods get `405` with `Allow: GET, HEAD`, malformed
/// requests `400`, oversized heads `414` or `431`, request bodies `413`, heads that arrive too
/// slowly `408`; each of those closes the connection. HTTP/1.1 connections are kept alive
/// unless the client sends `Connection: close`; HTTP/1.0 connections close after one response.
/// See ``HTTPServerConfiguration`` for the limits.
///
/// The server binds when it is created, so ``port`` is known (and a busy port is reported)
/// before ``start()``; connections wait in the kernel's queue until then.
///
/// ```swift
/// let metrics = MetricsHandler()   // merges PROMETHEUS_MULTIPROC_DIR on every scrape
/// let server = try MetricsHTTPServer(
///     configuration: HTTPServerConfiguration(bindAddress: "0.0.0.0", port: 9100),
///     routes: ["/metrics": { request in
///         metrics.respond(method: request.method, path: request.path, query: request.query, headers: request.headers)
///     }])
/// try server.start()
/// try server.shutdownOnSignals()   // SIGTERM or SIGINT: finish in-flight scrapes, then stop
/// server.waitUntilStopped()
/// ```
package final class MetricsHTTPServer: Sendable {
    /// Produces the response to a `GET` or `HEAD` request. Called on one of the server's
    /// handler threads, possibly concurrently; for `HEAD` the server discards the body after
    /// taking its length.
    package typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse

    /// The configuration the server was created with.
    package let configuration: HTTPServerConfiguration
    /// The port the server listens on: the configured one, or the kernel's pick for port 0.
    package let port: Int

    private enum Lifecycle {
        case ready(listener: Int32)
        case running
        case stopped
    }

    private let handler: Handler
    private let shared: HTTPServerShared
    private let lifecycle: Locked<Lifecycle>
    private let stoppedGroup = DispatchGroup()
    private let label: String

    /// Creates a server and binds its listening socket.
    ///
    /// - Parameters:
    ///   - configuration: the address, port and limits.
    ///   - handler: answers every `GET` and `HEAD` request; it decides which paths exist
    ///     (see ``routing(_:)`` for "these paths, else 404").
    /// - Throws: `SystemError` naming the failed call and the address, such as
    ///   `bind(127.0.0.1:9100): Address already in use (errno 98)`, or `inet_pton` for an
    ///   address that is not numeric.
    package init(configuration: HTTPServerConfiguration, handler: @escaping Handler) throws(SystemError) {
        self.configuration = configuration
        self.handler = handler
        let bound = try Sys.listenTCP(
            host: configuration.bindAddress, port: configuration.port,
            backlog: Int32(clamping: max(1, configuration.listenBacklog)))
        port = bound.port
        label = configuration.bindAddress.contains(":")
            ? "[\(configuration.bindAddress)]:\(bound.port)" : "\(configuration.bindAddress):\(bound.port)"
        do throws(SystemError) {
            shared = try HTTPServerShared()
        } catch {
            Sys.close(bound.fd)
            throw error
        }
        lifecycle = Locked(.ready(listener: bound.fd))
        stoppedGroup.enter()
    }

    /// Creates a server that answers the given paths and `404 Not Found` for any other.
    ///
    /// - Parameters:
    ///   - configuration: the address, port and limits.
    ///   - routes: a handler per exact path (without the query), such as `"/metrics"`.
    /// - Throws: `SystemError` as ``init(configuration:handler:)`` does.
    package convenience init(configuration: HTTPServerConfiguration, routes: [String: Handler]) throws(SystemError) {
        try self.init(configuration: configuration, handler: Self.routing(routes))
    }

    /// A handler that passes requests for the given exact paths (compared without the query)
    /// to their handlers and answers every other path with ``HTTPResponse/notFound``.
    package static func routing(_ routes: [String: Handler]) -> Handler {
        { request in routes[request.path]?(request) ?? .notFound }
    }

    deinit {
        // A running server cannot reach deinit (its event loop holds it), so only a server
        // never started needs its socket closed and its stop recorded (a DispatchGroup must
        // be balanced before it is released).
        if case .ready(let fd) = lifecycle.withLock({ $0 }) {
            Sys.close(fd)
            stoppedGroup.leave()
        }
    }

    /// Starts serving on the event-loop thread and the handler threads; returns at once.
    /// Calling it again while running does nothing.
    ///
    /// - Throws: `SystemError` when a thread cannot be created, or when the server was
    ///   already shut down (`start(<address>)` with `EBADF`).
    package func start() throws(SystemError) {
        let result: Result<Void, SystemError> = lifecycle.withLock { state in
            switch state {
            case .running: return .success(())
            case .stopped: return .failure(Sys.fail("start", label, Errno.badDescriptor))
            case .ready(let listener):
                do throws(SystemError) {
                    let pool = try HTTPHandlerPool(threads: configuration.handlerConcurrency)
                    let (configuration, shared, handler) = (self.configuration, self.shared, self.handler)
                    do throws(SystemError) {
                        try Sys.startThread(name: "pmp-http-loop") { [self] in
                            let loop = HTTPEventLoop(
                                listener: listener, configuration: configuration, shared: shared, pool: pool,
                                handler: handler)
                            loop.run()
                            lifecycle.withLock { $0 = .stopped }
                            stoppedGroup.leave()
                        }
                    } catch {
                        pool.stop()
                        throw error
                    }
                    state = .running
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
        }
        try result.get()
    }

    /// Stops the server gracefully and returns at once: it stops accepting, closes idle
    /// connections, lets requests in flight finish (their responses say `Connection: close`),
    /// then ends the event loop. After ``HTTPServerConfiguration/shutdownTimeout`` it closes
    /// whatever is left. A server never started just releases its socket. Safe to call from
    /// any thread and more than once; use ``waitUntilStopped()`` to wait for the end.
    package func shutdown() {
        let listenerToClose: Int32? = lifecycle.withLock { state in
            switch state {
            case .ready(let fd):
                state = .stopped
                return fd
            case .running, .stopped:
                return nil
            }
        }
        if let fd = listenerToClose {
            Sys.close(fd)
            stoppedGroup.leave()
            return
        }
        shared.requestShutdown(immediately: false)
    }

    /// Blocks the calling thread until the server has stopped: its event loop has ended and
    /// every connection is closed (handler calls still running may finish later; their
    /// responses are dropped). Returns at once for a stopped server; blocks until
    /// ``shutdown()`` for one that was never started.
    package func waitUntilStopped() {
        // Wait in short sleeps rather than one long futex wait: under the thread sanitizer a
        // signal that arrives for this thread (SIGTERM for the CLI's main thread) is only
        // handled when the thread enters an intercepted call such as nanosleep, so a thread
        // parked in a futex would never see it and `serve` would not stop.
        while stoppedGroup.wait(timeout: .now()) == .timedOut {
            Sys.sleep(seconds: 0.05)
        }
    }

    /// Starts the server if needed and blocks until it stops.
    ///
    /// - Throws: `SystemError` as ``start()`` does.
    package func run() throws(SystemError) {
        try start()
        waitUntilStopped()
    }

    /// Shuts the server down when the process receives SIGTERM or SIGINT: the first such
    /// signal calls ``shutdown()``, a second one closes every connection at once.
    ///
    /// Installs process-wide signal handlers (replacing any other handler for those two
    /// signals); the C handler only writes to a pipe, and the shutdown runs on a watcher thread.
    /// The registration lasts for the life of the process and keeps this server object alive.
    ///
    /// - Throws: `SystemError` naming `sigaction`, `pipe` or `pthread_create` when the
    ///   handlers cannot be installed.
    package func shutdownOnSignals() throws(SystemError) {
        let received = Atomic<Int>(0)
        let shared = self.shared
        try Sys.onSignals([.terminate, .interrupt]) { [self] _ in
            if received.add(1, ordering: .relaxed).newValue == 1 {
                shutdown()
            } else {
                shared.requestShutdown(immediately: true)
            }
        }
    }
}

/// What the event loop shares with the other threads: a wake-up pipe, finished handler
/// calls, and the shutdown request.
final class HTTPServerShared: Sendable {
    let wakeRead: Int32
    let wakeWrite: Int32
    private let completions = Locked<[(UInt64, HTTPResponse)]>([])
    private let shutdownState = Atomic<Int>(0)  // 0 running, 1 graceful, 2 immediate

    init() throws(SystemError) {
        (wakeRead, wakeWrite) = try Sys.makeWakePipe()
    }

    deinit {
        // Only after the loop and every handler job let go of this object, so no late
        // wake-up can write to a reused descriptor.
        Sys.close(wakeRead)
        Sys.close(wakeWrite)
    }

    /// Hands a handler's response to the event loop (from a handler thread).
    func complete(_ connection: UInt64, _ response: HTTPResponse) {
        completions.withLock { $0.append((connection, response)) }
        Sys.wake(wakeWrite)
    }

    /// The responses finished since the last call.
    func takeCompletions() -> [(UInt64, HTTPResponse)] {
        completions.withLock { list in
            let taken = list
            list.removeAll()
            return taken
        }
    }

    func requestShutdown(immediately: Bool) {
        let target = immediately ? 2 : 1
        var current = shutdownState.load(ordering: .relaxed)
        while current < target {
            let (exchanged, original) = shutdownState.compareExchange(
                expected: current, desired: target, ordering: .acquiringAndReleasing)
            if exchanged { break }
            current = original
        }
        Sys.wake(wakeWrite)
    }

    /// 0: keep serving; 1: shut down gracefully; 2: close everything now.
    var shutdownLevel: Int { shutdownState.load(ordering: .acquiring) }
}
