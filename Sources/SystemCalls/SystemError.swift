/// An error code from the C library. A struct, not an enum, because errno is an open set.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    /// The raw `errno` value.
    public let rawValue: Int32

    /// Wraps a raw `errno` value.
    package init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The code's message and number, such as `No space left on device (errno 28)`.
    public var description: String { "\(message) (errno \(rawValue))" }
}

/// A failed system call, naming the call, the file and the error.
///
/// Its description reads like `open(/srv/metrics/counter_123.db): Permission denied (errno 13)`.
public struct SystemError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The name of the system call that failed, such as `posix_fallocate`.
    public let call: String
    /// The file the call was made on, when there is one.
    public let path: String?
    /// The error the call reported.
    public let errno: Errno

    /// Creates an error for a failed call.
    package init(call: String, path: String?, errno: Errno) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    /// A one-line description naming the call, the file and the error.
    public var description: String { "\(call)(\(path ?? "")): \(errno)" }
}
