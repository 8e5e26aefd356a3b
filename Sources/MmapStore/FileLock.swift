import SystemCalls

/// An `flock` this process holds on a file, released when the value is deallocated (and by
/// the kernel when the process dies, however it dies).
///
/// The package's one lock holder, for two uses:
/// - the directory lock, on the hidden file `.prom-multiproc.lock` (no reader of `*.db` files
///   ever sees it): a compactor or `wipe` holds it exclusively while it changes the
///   directory; a collector holds it shared while it reads, so it never sees an archive
///   together with the files folded into it;
/// - a metric file locked exclusively, so that no writer adopts it while it is folded or
///   removed.
package final class FileLock: Sendable {
    /// The directory lock file's name inside a multiprocess directory.
    package static let directoryLockName = ".prom-multiproc.lock"

    /// The locked file's path.
    package let path: String
    private let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit {
        Sys.unlock(fd)
        Sys.close(fd)
    }

    /// Waits for the directory's lock, creating the lock file when it is missing.
    /// - Parameters:
    ///   - directory: the multiprocess directory.
    ///   - exclusive: exclusive (compactor, wipe) or shared.
    /// - Throws: `SystemError` when the lock file cannot be opened or created, or locking fails.
    package static func directory(_ directory: String, exclusive: Bool) throws(SystemError) -> FileLock {
        let path = directory + "/" + directoryLockName
        let fd = try Sys.open(path, [.readWrite, .create, .noFollow], mode: 0o644)
        do {
            try Sys.flockBlocking(fd, exclusive: exclusive, path: path)
        } catch {
            Sys.close(fd)
            throw error
        }
        return FileLock(path: path, fd: fd)
    }

    /// Waits for the directory's lock shared, for a reader; nil when the directory is
    /// read-only and has no lock file (no compactor can run there either) or the lock file
    /// cannot be locked.
    package static func sharedDirectory(_ directory: String) -> FileLock? {
        let path = directory + "/" + directoryLockName
        // Non-blocking open: opening a FIFO planted under the lock file's name must not hang.
        guard let fd = try? Sys.open(path, [.readOnly, .noFollow, .nonBlocking]) else {
            return try? Self.directory(directory, exclusive: false)
        }
        do {
            try Sys.flockBlocking(fd, exclusive: false, path: path)
        } catch {
            Sys.close(fd)
            return nil
        }
        return FileLock(path: path, fd: fd)
    }

    /// The descriptor holding the lock (a scan of the files in use leaves it out).
    package var descriptor: Int32 { fd }

    /// Who wrote the locked file, from its header's marker; nil when the header is missing or
    /// unknown. Read through the locked descriptor, so it is the locked file's even after a
    /// rename.
    package func writer() -> FileFormat.Writer? {
        guard let header = try? Sys.pread(fd, count: 8, offset: 0, path: path), header.count == 8 else { return nil }
        return FileFormat.writer(marker: (header[4], header[5], header[6], header[7]))
    }

    /// Locks the file at `path` exclusively if nobody holds it.
    /// - Returns: the lock, or nil when a live process holds the file.
    /// - Throws: `SystemError` when the file cannot be opened (vanished, symlink, permissions).
    package static func exclusiveIfFree(path: String) throws(SystemError) -> FileLock? {
        let fd = try Sys.open(path, [.readOnly, .noFollow, .nonBlocking])
        switch try? Sys.flock(fd, exclusive: true, path: path) {
        case .acquired?: return FileLock(path: path, fd: fd)
        default: Sys.close(fd); return nil
        }
    }
}
