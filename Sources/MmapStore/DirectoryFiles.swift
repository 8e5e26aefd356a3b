import SystemCalls
/// A lock on a whole multiprocess directory, held through a hidden lock file
/// (`.prom-multiproc.lock`, which no reader of `*.db` files ever sees).
///
/// The compactor holds it exclusively while it changes the directory; a collector holds it
/// shared while it reads, so it never sees an archive and the files folded into it at once.
/// The kernel releases it when the holder dies, however it dies.
package final class DirectoryLock: Sendable {
    /// The lock file's name inside the directory.
    package static let fileName = ".prom-multiproc.lock"

    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit {
        Sys.unlock(fd)
        Sys.close(fd)
    }

    /// Takes the directory's lock, waiting for it when `wait` is true.
    /// - Parameters:
    ///   - directory: the multiprocess directory.
    ///   - exclusive: exclusive (compactor, wipe) or shared (collector).
    ///   - wait: block until the lock is free; otherwise return nil when it is held.
    /// - Returns: the held lock, released when the value is deallocated; nil when not waiting
    ///   and the lock is held elsewhere.
    /// - Throws: `SystemError` when the lock file cannot be opened or created (a read-only
    ///   directory with no lock file yet is not an error for a shared lock: see
    ///   ``acquireShared(directory:)``).
    package static func acquire(directory: String, exclusive: Bool, wait: Bool) throws(SystemError) -> DirectoryLock? {
        let path = directory + "/" + fileName
        let fd = try Sys.open(path, [.readWrite, .create, .noFollow], mode: 0o644)
        if wait {
            do {
                try Sys.flockBlocking(fd, exclusive: exclusive, path: path)
            } catch {
                Sys.close(fd)
                throw error
            }
            return DirectoryLock(fd: fd)
        }
        switch try Sys.flock(fd, exclusive: exclusive, path: path) {
        case .acquired: return DirectoryLock(fd: fd)
        case .heldElsewhere: Sys.close(fd); return nil
        }
    }

    /// A shared lock for a reader; nil when the directory is read-only and has no lock file
    /// (no compactor can run there either).
    package static func acquireShared(directory: String) -> DirectoryLock? {
        let path = directory + "/" + fileName
        // Non-blocking: opening a FIFO planted under the lock file's name must not hang.
        guard let fd = try? Sys.open(path, [.readOnly, .noFollow, .nonBlocking]) else {
            return try? acquire(directory: directory, exclusive: false, wait: true)
        }
        do {
            try Sys.flockBlocking(fd, exclusive: false, path: path)
        } catch {
            Sys.close(fd)
            return nil
        }
        return DirectoryLock(fd: fd)
    }
}

/// Small directory operations the collector, compactor and CLI share.
package enum DirectoryFiles {
    /// The names in `directory` (not `.` and `..`), sorted.
    /// - Throws: `SystemError` naming the directory.
    package static func names(in directory: String) throws(SystemError) -> [String] {
        try Sys.listDirectory(directory).sorted()
    }

    /// What `lstat` says about a path, without following a symbolic link.
    package static func status(_ path: String) throws(SystemError) -> FileStatus {
        FileStatus(try Sys.lstat(path))
    }

    /// Removes a file.
    package static func remove(_ path: String) throws(SystemError) { try Sys.unlink(path) }

    /// Renames a file, replacing the target atomically.
    package static func rename(_ from: String, to: String) throws(SystemError) { try Sys.rename(from, to) }

    /// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, then rename.
    package static func writeAtomically(_ bytes: [UInt8], to path: String, mode: UInt32 = 0o644) throws(SystemError) {
        let slash = path.lastIndex(of: "/").map { path[..<$0] } ?? "."
        let temp = "\(slash)/.tmp-write-\(String(Sys.randomUInt64() & 0xFFFF_FFFF, radix: 16))"
        let fd = try Sys.open(temp, [.writeOnly, .create, .exclusive, .noFollow], mode: mode)
        do {
            try Sys.pwrite(fd, bytes, offset: 0, path: temp)
            try Sys.fsync(fd, path: temp)
            Sys.close(fd)
            try Sys.rename(temp, path)
        } catch {
            Sys.close(fd)
            try? Sys.unlink(temp)
            throw error
        }
    }

    /// Reads a whole (small) file.
    ///
    /// A symbolic link is not followed (ELOOP), and anything but a regular file is refused
    /// (EINVAL) without blocking: a FIFO planted under a bookkeeping file's name must not hang
    /// the reader.
    package static func read(_ path: String, limit: Int = 16 << 20) throws(SystemError) -> [UInt8] {
        let fd = try Sys.open(path, [.readOnly, .noFollow, .nonBlocking])
        defer { Sys.close(fd) }
        let status = try Sys.fstat(fd, path: path)
        guard status.isRegular else { throw SystemError(call: "read", path: path, errno: .invalidArgument) }
        return try Sys.pread(fd, count: Swift.min(status.size, limit), offset: 0, path: path)
    }

    /// Whether the current user may see `path` exists (no error for a missing file).
    package static func exists(_ path: String) -> Bool { (try? Sys.lstat(path)) != nil }

    /// The umask of this process.
    package static var umask: UInt32 { Sys.currentUmask() }

    /// The wall-clock time in UNIX seconds.
    package static func wallClock() -> Double { Sys.wallClock() }

    /// The effective user id.
    package static var effectiveUserID: UInt32 { Sys.geteuid() }
}

/// What `lstat` says about a file.
package struct FileStatus: Sendable {
    /// Size in bytes.
    package var size: Int
    /// Permission bits (`0o644`).
    package var permissions: UInt32
    /// Whether it is a regular file.
    package var isRegular: Bool
    /// Whether it is a directory.
    package var isDirectory: Bool
    /// Whether it is a symbolic link.
    package var isSymlink: Bool
    /// Whether the sticky bit is set (directories).
    package var isSticky: Bool
    /// The owner's user id.
    package var ownerID: UInt32
    /// The inode number.
    package var inode: UInt64
    /// Last modification, in UNIX seconds.
    package var modificationTime: Double

    init(_ s: Sys.FileStatus) {
        size = s.size
        permissions = s.permissions & 0o777
        isRegular = s.isRegular
        isDirectory = s.isDirectory
        isSymlink = s.isSymlink
        isSticky = s.permissions & 0o1000 != 0
        ownerID = s.uid
        inode = s.inode
        modificationTime = s.modificationTime
    }
}

/// Builds whole metric files in memory, for compaction archives and tests.
package enum MetricFileBuilder {
    /// The bytes of a complete file of this package holding `entries` in order, padded with
    /// zeros to the capacity prometheus_client would have grown to (64 KiB doubled).
    package static func bytes(entries: [(key: [UInt8], value: Double, timestamp: Double)]) -> [UInt8] {
        var body: [UInt8] = []
        for e in entries { body += FileFormat.entryBytes(key: e.key, value: e.value, timestamp: e.timestamp) }
        let used = FileFormat.headerSize + body.count
        var capacity = FileFormat.initialSize
        while capacity < used { capacity *= 2 }
        var out = FileFormat.headerBytes(used: used)
        out += body
        out += [UInt8](repeating: 0, count: capacity - used)
        return out
    }
}

extension DirectoryFiles {
    /// Creates a fresh private directory under `$TMPDIR` (or `/tmp`).
    package static func makeTemporaryDirectory(prefix: String) throws(SystemError) -> String {
        let base = Sys.environment("TMPDIR") ?? "/tmp"
        return try Sys.mkdtemp("\(base)/\(prefix)-XXXXXX")
    }
}
