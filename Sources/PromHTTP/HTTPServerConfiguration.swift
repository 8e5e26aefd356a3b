// Limits and addresses for MetricsHTTPServer.

/// Where ``MetricsHTTPServer`` listens and the limits that keep slow or abusive clients from
/// stalling scrapes.
///
/// Timeouts are in seconds and must be positive (zero or less times out at once); counts
/// below 1 are treated as 1. The defaults suit a metrics endpoint on a private network:
///
/// ```swift
/// var configuration = HTTPServerConfiguration()
/// configuration.bindAddress = "0.0.0.0"
/// configuration.port = 9100
/// ```
package struct HTTPServerConfiguration: Sendable, Hashable {
    /// A numeric address to listen on: `127.0.0.1` (the default), `0.0.0.0` (every IPv4
    /// address), `::` (every address, IPv4 too unless the system says otherwise) or `::1`.
    /// `localhost` means `127.0.0.1`; other names are not resolved.
    package var bindAddress: String = "127.0.0.1"
    /// The TCP port; 0 lets the kernel pick one (read it back from ``MetricsHTTPServer/port``).
    package var port: Int = 0
    /// The largest request line plus header fields accepted, in bytes. A longer request line
    /// is answered `414`, longer header fields `431`; either closes the connection.
    package var maxRequestHeadBytes: Int = 8 * 1024
    /// The most header fields in one request; more are answered `431`.
    package var maxHeaderCount: Int = 100
    /// Seconds a client has to send a complete request head, counted from the connection's
    /// acceptance or from the first byte of a later request on a kept-alive connection.
    /// Late clients get `408` and are disconnected, so a client sending one byte a second
    /// cannot hold a connection.
    package var headerTimeout: Double = 5
    /// Seconds a kept-alive connection may wait for its next request before it is closed.
    package var idleTimeout: Double = 30
    /// Seconds a response may take to be written in full before the connection is dropped
    /// (a client that does not read cannot hold a connection).
    package var writeTimeout: Double = 10
    /// The most open connections. At the cap a new connection displaces the open connection
    /// that has gone quiet the longest and is not being answered (an idle keep-alive one, or
    /// one still sending its head); if every connection is being answered, the new one is
    /// answered `503` and closed. Idle connections therefore cannot lock out a scraper.
    package var maxConnections: Int = 64
    /// How many handler calls may run at once. Handlers run on their own threads, never on
    /// the event loop, so a slow scrape does not stop accepting connections or timing out
    /// others; requests beyond this wait in arrival order.
    package var handlerConcurrency: Int = 2
    /// Seconds ``MetricsHTTPServer/shutdown()`` waits for requests in flight before it closes
    /// every connection regardless.
    package var shutdownTimeout: Double = 10
    /// The length of the kernel's queue of connections not yet accepted.
    package var listenBacklog: Int = 128

    /// Creates the default configuration: `127.0.0.1`, an ephemeral port, 8 KiB heads,
    /// 5 s header timeout, 30 s idle timeout, 10 s write timeout, 64 connections, 2 handlers.
    package init() {}

    /// Creates a configuration listening on `bindAddress:port` with the default limits.
    package init(bindAddress: String, port: Int) {
        self.bindAddress = bindAddress
        self.port = port
    }
}
