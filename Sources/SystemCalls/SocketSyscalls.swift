// Socket, poll, pipe, thread and signal wrappers for the HTTP server in MultiprocessCollector.
// Same rules as Syscalls.swift: each call is wrapped once, interruptible calls retry EINTR,
// `close` does not, and failures become a `SystemError` naming the call and the endpoint
// (`bind(127.0.0.1:9100): Address already in use (errno 98)`).
import Glibc
import Synchronization

extension Sys {
    // MARK: sockets

    /// What a non-blocking `recv` or `send` did.
    package enum TransferOutcome: Sendable, Equatable {
        /// This many bytes (at least one) were moved.
        case transferred(Int)
        /// Nothing can move now (EAGAIN); for a socket with a timeout, the timeout expired.
        case wouldBlock
        /// The peer closed its side (`recv` returned 0).
        case endOfStream
    }

    /// What a non-blocking `accept4` did.
    package enum AcceptOutcome: Sendable, Equatable {
        /// A new connection, already non-blocking and close-on-exec.
        case accepted(Int32)
        /// No connection is waiting.
        case wouldBlock
    }

    /// A numeric IPv4 or IPv6 address and a port, as `bind` and `connect` want it.
    private struct Endpoint {
        var storage = sockaddr_storage()
        var length: socklen_t = 0
        var family: Int32 = AF_INET
        /// `127.0.0.1:9100` or `[::1]:9100`, for error messages.
        var label: String

        init(host: String, port: Int) throws(SystemError) {
            let h = host == "localhost" ? "127.0.0.1" : host
            label = h.contains(":") ? "[\(h)]:\(port)" : "\(h):\(port)"
            guard (0...65535).contains(port) else { throw fail("bind", label, Errno(EINVAL)) }
            var v4 = in_addr()
            var v6 = in6_addr()
            if inet_pton(AF_INET, h, &v4) == 1 {
                var sa = sockaddr_in()
                sa.sin_family = sa_family_t(AF_INET)
                sa.sin_port = in_port_t(UInt16(port).bigEndian)
                sa.sin_addr = v4
                withUnsafeBytes(of: sa) { src in
                    withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
                }
                length = socklen_t(MemoryLayout<sockaddr_in>.size)
                family = AF_INET
            } else if inet_pton(AF_INET6, h, &v6) == 1 {
                var sa = sockaddr_in6()
                sa.sin6_family = sa_family_t(AF_INET6)
                sa.sin6_port = in_port_t(UInt16(port).bigEndian)
                sa.sin6_addr = v6
                withUnsafeBytes(of: sa) { src in
                    withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
                }
                length = socklen_t(MemoryLayout<sockaddr_in6>.size)
                family = AF_INET6
            } else {
                // Names are not resolved: a metrics endpoint binds a numeric address.
                throw fail("inet_pton", label, Errno(EINVAL))
            }
        }

        func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
            withUnsafeBytes(of: storage) { raw in
                body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
            }
        }
    }

    private static let streamFlags = Int32(bitPattern: SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue)

    /// Sets close-on-exec and, when asked, non-blocking mode (pipe2 and accept4 are not
    /// exported by Swift's Glibc module).
    private static func setDescriptorFlags(_ fd: Int32, nonBlocking: Bool) {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        if nonBlocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }

    /// Creates a non-blocking, close-on-exec TCP socket bound to `host:port` and listening.
    ///
    /// `SO_REUSEADDR` is set so a restarted server can bind while old connections sit in
    /// TIME_WAIT. For `::` Linux's default (dual stack) applies.
    /// - Parameters:
    ///   - host: a numeric IPv4 or IPv6 address (`localhost` means `127.0.0.1`).
    ///   - port: the port, or 0 for one the kernel picks.
    ///   - backlog: the length of the kernel's queue of completed connections.
    /// - Returns: the descriptor and the port actually bound.
    package static func listenTCP(host: String, port: Int, backlog: Int32 = 128) throws(SystemError) -> (fd: Int32, port: Int) {
        let endpoint = try Endpoint(host: host, port: port)
        let fd: Int32
        switch retrying({ Glibc.socket(endpoint.family, streamFlags | Int32(bitPattern: SOCK_NONBLOCK.rawValue), 0) }) {
        case .success(let s): fd = s
        case .failure(let e): throw fail("socket", endpoint.label, e)
        }
        do throws(SystemError) {
            try setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)", endpoint.label)
            let bound = endpoint.withSockaddr { Glibc.bind(fd, $0, $1) }
            if bound != 0 { throw fail("bind", endpoint.label, Errno(Glibc.errno)) }
            if Glibc.listen(fd, backlog) != 0 { throw fail("listen", endpoint.label, Errno(Glibc.errno)) }
            return (fd, try localPort(fd, label: endpoint.label))
        } catch {
            close(fd)
            throw error
        }
    }

    /// The local port a socket is bound to.
    package static func localPort(_ fd: Int32, label: String) throws(SystemError) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.getsockname(fd, $0, &length) }
        }
        if r != 0 { throw fail("getsockname", label, Errno(Glibc.errno)) }
        return withUnsafeBytes(of: storage) { raw -> Int in
            if Int32(storage.ss_family) == AF_INET6 {
                return Int(UInt16(bigEndian: raw.loadUnaligned(as: sockaddr_in6.self).sin6_port))
            }
            return Int(UInt16(bigEndian: raw.loadUnaligned(as: sockaddr_in.self).sin_port))
        }
    }

    /// Accepts one waiting connection as a non-blocking, close-on-exec socket.
    ///
    /// A connection that was reset before it could be accepted (ECONNABORTED) counts as none
    /// waiting. Running out of descriptors (EMFILE, ENFILE) or memory is thrown, so the caller
    /// can back off instead of spinning on a listener that stays readable.
    package static func accept(_ listener: Int32) throws(SystemError) -> AcceptOutcome {
        // accept4 is a GNU extension Swift's Glibc module does not export; accept + fcntl
        // leaves a short window in which an exec in another thread inherits the descriptor.
        switch retrying({ Glibc.accept(listener, nil, nil) }) {
        case .success(let fd):
            setDescriptorFlags(fd, nonBlocking: true)
            return .accepted(fd)
        case .failure(let e):
            if e.rawValue == EAGAIN || e.rawValue == EWOULDBLOCK || e.rawValue == ECONNABORTED { return .wouldBlock }
            throw fail(nil, e)
        }
    }

    /// Connects a blocking TCP socket to `host:port` with send and receive timeouts: a `recv`
    /// or `send` that waits longer than `timeoutSeconds` reports `wouldBlock`.
    /// Used by tests and health checks, never by the server's event loop.
    package static func connectTCP(host: String, port: Int, timeoutSeconds: Double) throws(SystemError) -> Int32 {
        let endpoint = try Endpoint(host: host, port: port)
        let fd: Int32
        switch retrying({ Glibc.socket(endpoint.family, streamFlags, 0) }) {
        case .success(let s): fd = s
        case .failure(let e): throw fail("socket", endpoint.label, e)
        }
        do throws(SystemError) {
            var tv = timeval()
            tv.tv_sec = Int(timeoutSeconds)
            tv.tv_usec = Int((timeoutSeconds - Double(Int(timeoutSeconds))) * 1e6)
            for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
                if setsockopt(fd, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size)) != 0 {
                    throw fail("setsockopt(\(option == SO_RCVTIMEO ? "SO_RCVTIMEO" : "SO_SNDTIMEO"))", endpoint.label, Errno(Glibc.errno))
                }
            }
            // connect is not retried on EINTR (the connection proceeds asynchronously then).
            let r = endpoint.withSockaddr { Glibc.connect(fd, $0, $1) }
            if r != 0 { throw fail("connect", endpoint.label, Errno(Glibc.errno)) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// Turns off Nagle's algorithm, so a response's last segment is not held back.
    package static func setNoDelay(_ fd: Int32) throws(SystemError) {
        try setIntOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "setsockopt(TCP_NODELAY)", nil)
    }

    private static func setIntOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ call: String, _ label: String?) throws(SystemError) {
        var v = value
        if setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw fail(call, label, Errno(Glibc.errno))
        }
    }

    /// Reads what is available, at most `buffer.count` bytes.
    package static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> TransferOutcome {
        switch retrying({ Glibc.recv(fd, buffer.baseAddress, buffer.count, 0) }) {
        case .success(let n): return n == 0 ? .endOfStream : .transferred(n)
        case .failure(let e):
            if e.rawValue == EAGAIN || e.rawValue == EWOULDBLOCK { return .wouldBlock }
            throw fail("recv", nil, e)
        }
    }

    /// Sends what the socket takes now. `MSG_NOSIGNAL`: a peer that went away is an EPIPE
    /// error, never a SIGPIPE that would kill the process.
    package static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) -> TransferOutcome {
        if bytes.isEmpty { return .transferred(0) }
        switch retrying({ Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }) {
        case .success(let n): return .transferred(n)
        case .failure(let e):
            if e.rawValue == EAGAIN || e.rawValue == EWOULDBLOCK { return .wouldBlock }
            throw fail(nil, e)
        }
    }

    /// Sends all of `bytes` on a blocking socket (test clients).
    package static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            let outcome: Result<TransferOutcome, SystemError> = bytes.withUnsafeBytes { b in
                do throws(SystemError) {
                    return .success(try send(fd, UnsafeRawBufferPointer(rebasing: b[done...])))
                } catch { return .failure(error) }
            }
            switch try outcome.get() {
            case .transferred(let n): done += n
            case .wouldBlock: throw fail("send", nil, Errno(ETIMEDOUT))
            case .endOfStream: throw fail("send", nil, Errno(EPIPE))
            }
        }
    }

    /// Receives up to `maximum` bytes into a new array: empty at end of stream, nil on timeout
    /// (or when a non-blocking socket has nothing).
    package static func receive(_ fd: Int32, maximum: Int) throws(SystemError) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: maximum)
        let r: Result<TransferOutcome, SystemError> = out.withUnsafeMutableBytes { b in
            do throws(SystemError) { return .success(try receive(fd, into: b)) } catch { return .failure(error) }
        }
        switch try r.get() {
        case .transferred(let n): out.removeLast(maximum - n); return out
        case .endOfStream: return []
        case .wouldBlock: return nil
        }
    }

    /// Half-closes the sending side: the peer reads the end of the stream after our last byte.
    package static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    // MARK: poll

    /// The `poll` event bits we use.
    package struct PollEvents: OptionSet, Sendable {
        package let rawValue: Int16
        package init(rawValue: Int16) { self.rawValue = rawValue }
        package static let readable = PollEvents(rawValue: Int16(POLLIN))
        package static let writable = PollEvents(rawValue: Int16(POLLOUT))
        package static let error = PollEvents(rawValue: Int16(POLLERR))
        package static let hangUp = PollEvents(rawValue: Int16(POLLHUP))
        package static let invalid = PollEvents(rawValue: Int16(POLLNVAL))
    }

    /// One descriptor to watch, and what `poll` reported for it.
    package struct PollDescriptor: Sendable {
        package var fd: Int32
        package var events: PollEvents
        package var returned: PollEvents = []
        package init(fd: Int32, events: PollEvents) { self.fd = fd; self.events = events }
    }

    /// Waits until one of `descriptors` is ready or `timeoutMilliseconds` pass (-1: forever).
    /// An interrupted wait returns 0, so the caller recomputes its deadlines.
    /// - Returns: how many descriptors have events; their `returned` fields are filled in.
    package static func poll(_ descriptors: inout [PollDescriptor], timeoutMilliseconds: Int32) throws(SystemError) -> Int {
        var fds = descriptors.map { pollfd(fd: $0.fd, events: $0.events.rawValue, revents: 0) }
        let r = fds.withUnsafeMutableBufferPointer { Glibc.poll($0.baseAddress, nfds_t($0.count), timeoutMilliseconds) }
        if r < 0 {
            let e = Glibc.errno
            if e == EINTR { return 0 }
            throw fail(nil, Errno(e))
        }
        for i in descriptors.indices { descriptors[i].returned = PollEvents(rawValue: fds[i].revents) }
        return Int(r)
    }

    // MARK: pipes

    /// A close-on-exec pipe whose both ends are non-blocking: a poll loop's wake-up channel.
    package static func makeWakePipe() throws(SystemError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        let r = fds.withUnsafeMutableBufferPointer { Glibc.pipe($0.baseAddress) }
        if r != 0 { throw fail("pipe", nil, Errno(Glibc.errno)) }
        setDescriptorFlags(fds[0], nonBlocking: true)
        setDescriptorFlags(fds[1], nonBlocking: true)
        return (fds[0], fds[1])
    }

    /// Writes one byte to a wake pipe; a full pipe already means "wake up", so EAGAIN is fine.
    package static func wake(_ fd: Int32) {
        var byte: UInt8 = 1
        while Glibc.write(fd, &byte, 1) < 0 && Glibc.errno == EINTR {}
    }

    /// Empties a non-blocking wake pipe.
    package static func drain(_ fd: Int32) {
        var sink = [UInt8](repeating: 0, count: 256)
        while true {
            let r = sink.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if r > 0 { continue }
            if r < 0 && Glibc.errno == EINTR { continue }
            return
        }
    }

    // MARK: threads

    private final class ThreadBody: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }

    /// Starts a detached thread running `body`. `name` appears in errors (pthread_setname_np
    /// is a GNU extension Swift's Glibc module does not export).
    package static func startThread(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let context = Unmanaged.passRetained(ThreadBody(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let r = pthread_create(&thread, &attributes, { raw in
            guard let raw else { return nil }
            let job = Unmanaged<ThreadBody>.fromOpaque(raw).takeRetainedValue()
            job.body()
            return nil
        }, context)
        if r != 0 {
            Unmanaged<ThreadBody>.fromOpaque(context).release()
            throw fail("pthread_create", name, Errno(r))
        }
    }

    // MARK: signals

    /// The signals a server shuts down on, by name, so callers need not import Glibc.
    package enum Signal: Sendable, CaseIterable {
        case terminate, interrupt, hangUp
        package var number: Int32 {
            switch self {
            case .terminate: SIGTERM
            case .interrupt: SIGINT
            case .hangUp: SIGHUP
            }
        }
    }

    /// Runs `callback` on a dedicated thread (not in signal context) each time one of
    /// `signals` arrives. Callbacks accumulate; the first call starts the watcher thread.
    ///
    /// The C handler only writes the signal number to a non-blocking self-pipe, which is
    /// async-signal-safe; the watcher thread reads the pipe and calls the callbacks.
    package static func onSignals(_ signals: [Signal], _ callback: @escaping @Sendable (Signal) -> Void) throws(SystemError) {
        try SignalRelay.ensureStarted()
        SignalRelay.callbacks.withLock { list in
            for s in signals { list.append((s, callback)) }
        }
        for s in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = relaySignal
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            if sigaction(s.number, &action, nil) != 0 { throw fail("sigaction", "\(s)", Errno(Glibc.errno)) }
            // A parent may have started us with the signal blocked (some process launchers
            // pass their thread's mask on): unblock it, or it would stay pending forever.
            var unblock = sigset_t()
            sigemptyset(&unblock)
            sigaddset(&unblock, s.number)
            _ = pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        }
    }

    /// Unblocks every signal in the calling thread. A command-line tool calls it first thing:
    /// some launchers pass a blocked mask on to their children, and a blocked SIGTERM would
    /// make the process unstoppable by a supervisor's polite kill.
    package static func unblockAllSignals() {
        var empty = sigset_t()
        sigemptyset(&empty)
        _ = pthread_sigmask(SIG_SETMASK, &empty, nil)
    }

    /// Sends `signal` to the calling process (tests of signal handling).
    package static func raise(_ signal: Signal) {
        _ = Glibc.kill(Glibc.getpid(), signal.number)
    }
}

extension Errno {
    /// EBADF: the descriptor (or object) is not open or usable.
    package static let badDescriptor = Errno(EBADF)
}

/// The process-wide self-pipe behind `Sys.onSignals`.
private enum SignalRelay {
    /// The pipe's write end as the C handler sees it; -1 until started.
    static let writeEnd = Atomic<Int32>(-1)
    static let started = Locked(false)
    static let callbacks = Locked<[(Sys.Signal, @Sendable (Sys.Signal) -> Void)]>([])

    static func ensureStarted() throws(SystemError) {
        let result: Result<Void, SystemError> = started.withLock { started in
            if started { return .success(()) }
            do throws(SystemError) {
                var fds: [Int32] = [-1, -1]
                let r = fds.withUnsafeMutableBufferPointer { pipe($0.baseAddress) }
                if r != 0 { throw Sys.fail("pipe", nil, Errno(errno)) }
                _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
                _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
                // The handler must never block: a full pipe drops the byte (a signal is
                // already pending for the watcher then).
                _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
                let readEnd = fds[0]
                try Sys.startThread(name: "pmp-signals") { watch(readEnd) }
                writeEnd.store(fds[1], ordering: .releasing)
                started = true
                return .success(())
            } catch { return .failure(error) }
        }
        try result.get()
    }

    static func watch(_ readEnd: Int32) {
        var byte: UInt8 = 0
        while true {
            let r = read(readEnd, &byte, 1)
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { return }
            guard let signal = Sys.Signal.allCases.first(where: { $0.number == Int32(byte) }) else { continue }
            let matching = callbacks.withLock { $0.filter { $0.0 == signal }.map(\.1) }
            for callback in matching { callback(signal) }
        }
    }
}

/// The C signal handler: async-signal-safe (an atomic load and a `write`), errno preserved.
private func relaySignal(_ number: Int32) {
    let saved = errno
    let fd = SignalRelay.writeEnd.load(ordering: .acquiring)
    if fd >= 0 {
        var byte = UInt8(truncatingIfNeeded: number)
        _ = write(fd, &byte, 1)
    }
    errno = saved
}
