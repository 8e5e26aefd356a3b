import SystemCalls
/// Whether the process that owns a metric file is alive, as far as the file can tell.
package enum Liveness: Hashable, Sendable, CustomStringConvertible {
    /// A live process holds the file's lock.
    case alive
    /// The file carries this package's marker and nobody holds its lock: its owner is dead.
    case dead
    /// The file was written by prometheus_client, which takes no lock: only a scan of the
    /// files in use (``FilesInUse``), `mark-dead` or a pid check can tell.
    case unknown

    /// `alive`, `dead` or `unknown`.
    package var description: String {
        switch self {
        case .alive: return "alive"
        case .dead: return "dead"
        case .unknown: return "unknown"
        }
    }

    /// Probes the owner of `path` with a non-blocking shared lock, released at once.
    ///
    /// Immune to zombies and to pid reuse, unlike `kill(pid, 0)`.
    /// - Throws: `SystemError` when the file cannot be opened (for example, it vanished).
    package static func probe(path: String) throws(SystemError) -> Liveness {
        let fd = try Sys.open(path, [.readOnly, .noFollow, .nonBlocking])
        defer { Sys.close(fd) }
        let header = try Sys.pread(fd, count: 8, offset: 0, path: path)
        guard header.count == 8, case .swift = FileFormat.writer(marker: (header[4], header[5], header[6], header[7])) else {
            return .unknown
        }
        switch try Sys.flock(fd, exclusive: false, path: path) {
        case .heldElsewhere: return .alive
        case .acquired:
            Sys.unlock(fd)
            return .dead
        }
    }

    /// Whether a process with `pid` exists now (zombies and other users' processes count).
    ///
    /// The opt-in check for files prometheus_client wrote; unreliable under pid reuse.
    package static func processExists(pid: Int32) -> Bool { Sys.processExists(pid) }
}
