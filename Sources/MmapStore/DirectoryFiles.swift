import SystemCalls
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

    /// Renames a file unless the target exists (EEXIST then), never clobbering it.
    package static func renameNoReplace(_ from: String, to: String) throws(SystemError) { try Sys.renameNoReplace(from, to) }

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
    /// The device the file lives on (`st_dev`).
    package var device: UInt64
    /// The number of hard links (names) the file has.
    package var links: UInt64
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
        device = s.device
        links = s.links
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
