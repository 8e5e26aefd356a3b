// Outgoing TCP connections for clients (the Pushgateway push): name resolution and a connect
// bounded by a deadline. Same rules as Syscalls.swift: each call is wrapped once, failures
// name the call and the endpoint (`connect(127.0.0.1:9091): Connection refused (errno 111)`).
// The sockets are non-blocking: the caller drives `send`, `receive` and `poll` (in
// SocketSyscalls.swift) against its own deadline, so no single call can outlast it.
import Glibc

extension Sys {
    /// A resolved IPv4 or IPv6 socket address, ready for `connect`.
    package struct SocketAddress: Sendable, Hashable {
        /// The `sockaddr_in` or `sockaddr_in6` bytes.
        fileprivate let bytes: [UInt8]
        /// `AF_INET` or `AF_INET6`.
        fileprivate let family: Int32
        /// `127.0.0.1:9091` or `[::1]:9091`, for error messages.
        package let label: String
    }

    /// A host name that could not be resolved, with the resolver's own words.
    package struct ResolveError: Error, Hashable, Sendable, CustomStringConvertible {
        /// The name as given.
        package let host: String
        /// The resolver's message, such as `Name or service not known`.
        package let message: String
        /// `getaddrinfo(gateway.invalid): Name or service not known`.
        package var description: String { "getaddrinfo(\(host)): \(message)" }
    }

    /// The addresses `host` stands for, in the resolver's order of preference (a name such as
    /// `localhost` may give `::1` before `127.0.0.1`). Numeric addresses are returned as they
    /// are, without a lookup.
    ///
    /// The lookup itself cannot be bounded by a deadline (glibc's resolver has its own,
    /// configured in `/etc/resolv.conf`).
    /// - Throws: `ResolveError` naming the host and the resolver's reason.
    package static func resolveTCP(host: String, port: Int) throws(ResolveError) -> [SocketAddress] {
        guard (0...65535).contains(port) else { throw ResolveError(host: host, message: "port \(port) out of range") }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(bitPattern: SOCK_STREAM.rawValue)
        // No AI_ADDRCONFIG: in a container whose only interface is loopback it would hide
        // 127.0.0.1 and ::1, the very addresses a sidecar gateway listens on.
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>? = nil
        var status: Int32
        repeat {
            status = getaddrinfo(host, String(port), &hints, &list)
        } while status == EAI_SYSTEM && Glibc.errno == EINTR
        if status != 0 {
            let message = status == EAI_SYSTEM ? Errno(Glibc.errno).description : String(cString: gai_strerror(status))
            throw ResolveError(host: host, message: message)
        }
        defer { freeaddrinfo(list) }
        var out: [SocketAddress] = []
        var cursor = list
        while let entry = cursor?.pointee {
            cursor = entry.ai_next
            guard let address = entry.ai_addr, entry.ai_family == AF_INET || entry.ai_family == AF_INET6 else { continue }
            let bytes = Array(UnsafeRawBufferPointer(start: address, count: Int(entry.ai_addrlen)))
            let resolved = SocketAddress(bytes: bytes, family: entry.ai_family, label: addressLabel(bytes, family: entry.ai_family, port: port))
            if !out.contains(resolved) { out.append(resolved) }
        }
        if out.isEmpty { throw ResolveError(host: host, message: "no IPv4 or IPv6 address") }
        return out
    }

    /// `1.2.3.4:80` or `[::1]:80` for a `sockaddr_in` or `sockaddr_in6`.
    private static func addressLabel(_ bytes: [UInt8], family: Int32, port: Int) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let ok: Bool = bytes.withUnsafeBytes { raw in
            if family == AF_INET6 {
                var sa = raw.loadUnaligned(as: sockaddr_in6.self)
                return inet_ntop(AF_INET6, &sa.sin6_addr, &text, socklen_t(text.count)) != nil
            }
            var sa = raw.loadUnaligned(as: sockaddr_in.self)
            return inet_ntop(AF_INET, &sa.sin_addr, &text, socklen_t(text.count)) != nil
        }
        let host = ok ? String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
        return family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Connects a non-blocking, close-on-exec TCP socket to `address`, waiting at most until
    /// `deadline` (``monotonicNanoseconds()``) for the handshake.
    ///
    /// The socket stays non-blocking: drive it with ``send(_:_:)``, ``receive(_:into:)`` and
    /// ``poll(_:timeoutMilliseconds:)``.
    /// - Returns: the connected descriptor.
    /// - Throws: `SystemError` naming `connect` and the address: `ECONNREFUSED` for a closed
    ///   port, `ETIMEDOUT` when the deadline passes first, `ENETUNREACH` and the like.
    package static func connectTCP(to address: SocketAddress, deadline: UInt64) throws(SystemError) -> Int32 {
        let fd: Int32
        let type = Int32(bitPattern: SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue)
        switch retrying({ Glibc.socket(address.family, type, 0) }) {
        case .success(let s): fd = s
        case .failure(let e): throw fail("socket", address.label, e)
        }
        do throws(SystemError) {
            let r = address.bytes.withUnsafeBytes { raw in
                Glibc.connect(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
            }
            if r == 0 { return fd }
            // An interrupted non-blocking connect goes on in the background, like EINPROGRESS.
            let started = Glibc.errno
            guard started == EINPROGRESS || started == EINTR else { throw fail("connect", address.label, Errno(started)) }
            var watched = [PollDescriptor(fd: fd, events: .writable)]
            while true {
                let left = remainingMilliseconds(until: deadline)
                if left == 0 { throw fail("connect", address.label, Errno(ETIMEDOUT)) }
                if try poll(&watched, timeoutMilliseconds: left) > 0 { break }
            }
            var pending: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(fd, SOL_SOCKET, SO_ERROR, &pending, &length) != 0 {
                throw fail("getsockopt(SO_ERROR)", address.label, Errno(Glibc.errno))
            }
            if pending != 0 { throw fail("connect", address.label, Errno(pending)) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// Milliseconds from now until `deadline` (``monotonicNanoseconds()``), rounded up so a
    /// wait never ends just short of it; 0 once it has passed.
    package static func remainingMilliseconds(until deadline: UInt64) -> Int32 {
        let now = monotonicNanoseconds()
        if now >= deadline { return 0 }
        return Int32(clamping: (deadline - now + 999_999) / 1_000_000)
    }
}

extension Errno {
    /// ETIMEDOUT: the deadline passed before the operation completed.
    package static let timedOut = Errno(ETIMEDOUT)
    /// ECONNRESET: the peer reset the connection.
    package static let connectionReset = Errno(ECONNRESET)
    /// EPIPE: the peer closed the connection while we were still sending.
    package static let brokenPipe = Errno(EPIPE)
}
