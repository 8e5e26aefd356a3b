/// A value behind a pthread mutex: `Synchronization.Mutex`'s shape, used instead of it
/// throughout the package.
///
/// Why not `Mutex`: on Linux its lock is implemented inside the standard library, which the
/// thread sanitizer does not instrument, so TSan cannot see that two threads are synchronised
/// by it and reports false races on the protected value. The package runs its whole test suite
/// under TSan; a pthread mutex is intercepted by TSan. It costs a few nanoseconds more
/// uncontended, on paths that are not the per-update hot path.
package final class Locked<Value: ~Copyable>: @unchecked Sendable {
    private let mutex = Sys.PthreadMutex()
    private var value: Value

    /// Wraps `value`.
    package init(_ value: consuming Value) { self.value = value }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    package func withLock<R: ~Copyable, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        mutex.lock()
        defer { mutex.unlock() }
        return try body(&value)
    }
}
