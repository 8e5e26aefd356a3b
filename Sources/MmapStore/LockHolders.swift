import SystemCalls

/// Which process holds each exclusive `flock`, as `/proc/locks` tells it.
///
/// ``Liveness/probe(path:)`` says *that* a live process holds a metric file's lock, not *which*
/// one. The owner's pid in the file name says which process it was in the writer's pid
/// namespace, and that may not be the process of that pid here: a `serve` sidecar in a
/// container of its own sees other processes under those numbers (or none), and a fixed
/// process identity names no process at all. The kernel prints each lock's holder translated
/// into the pid namespace of the reader's `/proc` (0, or no line, when the holder is not
/// visible there), so "the lock on `counter_123.db` is held by the process this `/proc` calls
/// 123" is the proof that `/proc/123` is the file's writer.
///
/// A line of `/proc/locks` reads `1: FLOCK  ADVISORY  WRITE 15360 fe:00:16319007 0 EOF`
/// (number, class, mode, access, holder, `major:minor:inode` in hex, hex, decimal, range);
/// a waiter's line has `->` after the number and is not a holder.
package struct LockHolders: Sendable {
    /// A file as `/proc/locks` names it: its device's major and minor numbers and its inode.
    package struct FileID: Hashable, Sendable {
        /// The device's major number.
        package var major: UInt32
        /// The device's minor number.
        package var minor: UInt32
        /// The inode number.
        package var inode: UInt64

        /// Builds an identity from its parts.
        package init(major: UInt32, minor: UInt32, inode: UInt64) {
            self.major = major
            self.minor = minor
            self.inode = inode
        }

        /// The identity of the file at `path` (not following a symbolic link: metric files
        /// are never links, and the collector rejects them).
        /// - Throws: `SystemError` when the file cannot be looked at (it vanished).
        package init(path: String) throws(SystemError) {
            let s = try Sys.lstat(path)
            self.init(major: s.deviceMajor, minor: s.deviceMinor, inode: s.inode)
        }
    }

    private var holders: [FileID: Int32]

    /// Parses the text of `/proc/locks`: the holder of every exclusive `flock` whose holder is
    /// visible (pid above 0). Other locks (POSIX, OFD, shared, leases) and waiters are left
    /// out; a line that does not parse is skipped.
    package init(parsing text: [UInt8]) {
        var holders: [FileID: Int32] = [:]
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "))
            guard fields.count >= 6, Self.equals(fields[1], "FLOCK"), Self.equals(fields[3], "WRITE"),
                  let pid = Int32(String(decoding: fields[4], as: UTF8.self)), pid > 0
            else { continue }
            let device = fields[5].split(separator: UInt8(ascii: ":"))
            guard device.count == 3,
                  let major = UInt32(String(decoding: device[0], as: UTF8.self), radix: 16),
                  let minor = UInt32(String(decoding: device[1], as: UTF8.self), radix: 16),
                  let inode = UInt64(String(decoding: device[2], as: UTF8.self))
            else { continue }
            holders[FileID(major: major, minor: minor, inode: inode)] = pid
        }
        self.holders = holders
    }

    /// Reads `<procRoot>/locks`; nil when it cannot be read (no `/proc`, or a sandbox that
    /// hides it).
    package static func read(procRoot: String = "/proc") -> LockHolders? {
        guard let text = try? Sys.readWholeFile(procRoot + "/locks", limit: 64 << 20) else { return nil }
        return LockHolders(parsing: text)
    }

    /// The pid (in the reader's pid namespace) of the process holding `file`'s exclusive
    /// `flock`, if one visible there does.
    package func holder(of file: FileID) -> Int32? { holders[file] }

    private static func equals(_ bytes: ArraySlice<UInt8>, _ text: StaticString) -> Bool {
        text.withUTF8Buffer { bytes.elementsEqual($0) }
    }
}
