import SystemCalls
import MmapStore

/// The pids a supervisor declared dead with `mark-dead`, kept in a hidden file
/// (`.prom-multiproc-dead-pids`) for compaction's fallback: where `/proc` cannot be scanned
/// (``FilesInUse``), a file prometheus_client wrote (it carries no lock) is folded only when
/// its pid is listed here and no process has that pid.
///
/// The list stays small and current: `mark-dead` adds a pid only while it still has files
/// compaction could fold and none of them is in use; compaction removes every pid with no
/// such file left (its files folded, or never written). Changes are read-modify-write under an
/// exclusive `flock` on the list file itself, so a `mark-dead` racing a compaction is never
/// lost; the file is rewritten in place (truncated, then written), and a list without its
/// closing line (a writer killed half-way) reads as empty: a lost entry only delays a fold,
/// a garbled one could name a wrong pid.
package enum DeadProcessList {
    /// The list's file name inside the directory.
    package static let fileName = ".prom-multiproc-dead-pids"
    static let header = "prom-multiproc dead pids v2"
    static let trailer = "end"

    /// The pids in the list (empty when there is none, or it cannot be read).
    package static func read(directory: String) -> Set<String> {
        let path = directory + "/" + fileName
        guard let fd = try? Sys.open(path, [.readOnly, .noFollow, .nonBlocking]) else { return [] }
        defer { Sys.close(fd) }
        guard (try? Sys.fstat(fd, path: path))?.isRegular == true,
              (try? Sys.flockBlocking(fd, exclusive: false, path: path)) != nil else { return [] }
        defer { Sys.unlock(fd) }
        return (try? contents(fd, path: path)) ?? []
    }

    /// Changes the list under its lock.
    /// - Parameters:
    ///   - directory: the multiprocess directory.
    ///   - change: edits the set of pids.
    /// - Throws: `SystemError` when the list cannot be opened, locked or written.
    package static func update(directory: String, _ change: (inout Set<String>) -> Void) throws(SystemError) {
        let path = directory + "/" + fileName
        let fd = try Sys.open(path, [.readWrite, .create, .noFollow, .nonBlocking], mode: 0o644)
        defer { Sys.close(fd) }
        guard try Sys.fstat(fd, path: path).isRegular else { throw SystemError(call: "open", path: path, errno: .invalidArgument) }
        try Sys.flockBlocking(fd, exclusive: true, path: path)
        defer { Sys.unlock(fd) }
        let before = try contents(fd, path: path)
        var pids = before
        change(&pids)
        guard pids != before else { return }
        try Sys.ftruncate(fd, length: 0, path: path)
        guard !pids.isEmpty else { return }
        let text = ([header] + pids.sorted() + [trailer]).joined(separator: "\n") + "\n"
        try Sys.pwrite(fd, Array(text.utf8), offset: 0, path: path)
    }

    private static func contents(_ fd: Int32, path: String) throws(SystemError) -> Set<String> {
        let size = try Sys.fstat(fd, path: path).size
        let bytes = try Sys.pread(fd, count: Swift.min(size, 16 << 20), offset: 0, path: path)
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        guard let first = lines.first else { return [] }
        if first == header {
            // Whole, or nothing: a list cut short by a crash is ignored.
            guard lines.last == trailer else { return [] }
            return Set(lines.dropFirst().dropLast())
        }
        // The first version: one pid a line, written atomically.
        return Set(lines.filter { !$0.isEmpty && !$0.contains(" ") })
    }
}

/// What happened to the files of one pid declared dead.
public struct MarkDeadReport: Sendable {
    /// Live-mode gauge files removed.
    public var removed: [String] = []
    /// Files left alone because a running process still holds its lock, maps it or has it
    /// open (the pid was reused), or, where `/proc` cannot be scanned, because a process with
    /// that pid runs.
    public var keptAlive: [String] = []
    /// Every file of the pid found in use (live-mode gauges among them are in ``keptAlive``
    /// too): a running process has the pid now.
    public var inUse: [String] = []
    /// Whether the pid was recorded as dead for compaction: not when one of its files is in
    /// use (the pid belongs to a running process again), nor when it has no file left that
    /// compaction could fold.
    public var recorded = false
    /// How the liveness of files without a lock was decided (the `/proc` scan, or why not).
    public var liveness = ""
}

/// prometheus_client's `mark_process_dead`, made safe against pid reuse.
public enum MarkDead {
    /// Removes `gauge_<live mode>_<pid>.db` files of `pid` (exactly the files
    /// prometheus_client removes), except a file a running process still holds (its lock,
    /// or, for files prometheus_client wrote, a mapping or an open descriptor seen in
    /// `/proc`); records the pid as dead for compaction's fallback, unless one of its files
    /// is in use.
    /// - Parameters:
    ///   - pid: the dead process's id.
    ///   - directory: the multiprocess directory.
    ///   - scansProcesses: decide by a scan of `/proc` (the default); without it, any file of
    ///     `pid` counts as in use while a process with that pid runs (for a directory shared
    ///     with writers in other pid namespaces, which `/proc` does not show).
    /// - Returns: what was removed and what was kept.
    /// - Throws: `SystemError` when the directory cannot be read or a file cannot be removed.
    public static func run(pid: Int32, directory: String, scansProcesses: Bool = true) throws(SystemError) -> MarkDeadReport {
        try run(pid: pid, directory: directory, procRoot: scansProcesses ? "/proc" : nil)
    }

    /// ``run(pid:directory:)`` with procfs at `procRoot` (nil: do not scan).
    package static func run(pid: Int32, directory: String, procRoot: String?) throws(SystemError) -> MarkDeadReport {
        var report = MarkDeadReport()
        let owner = String(pid)
        var files: [(name: String, parsed: MetricFileName)] = []
        for name in try DirectoryFiles.names(in: directory) {
            guard let parsed = MetricFileName(parsing: name), parsed.owner == owner else { continue }
            files.append((name, parsed))
        }
        // One scan, only when there is a file to judge, and before this process opens any.
        let inUse = files.isEmpty ? FilesInUse.unavailable("no file") :
            procRoot.map { FilesInUse.scan(directory: directory, procRoot: $0) } ?? .unavailable("turned off")
        report.liveness = files.isEmpty ? "no file of pid \(owner)" : inUse.summary
        var foldable = 0
        for (name, parsed) in files {
            let path = directory + "/" + name
            guard let status = try? DirectoryFiles.status(path), status.isRegular else { continue }
            let lock: FileLock?
            do { lock = try FileLock.exclusiveIfFree(path: path) } catch {
                if error.errno == .noEntry { continue }
                throw error
            }
            let held: Bool
            switch inUse.state(of: status) {
            case .inUse: held = true
            case .free: held = lock == nil
            case .unknown: held = lock == nil || Sys.processExists(pid)
            }
            if held { report.inUse.append(name) }
            guard case .gauge(let mode) = parsed.kind, mode.isLive else {
                if case .gauge(let mode) = parsed.kind, mode.aggregation == .all {} else if parsed.isFoldable { foldable += 1 }
                continue
            }
            guard !held else { report.keptAlive.append(name); continue }
            do { try DirectoryFiles.remove(path) } catch {
                if error.errno != .noEntry { throw error }
            }
            withExtendedLifetime(lock) {}
            report.removed.append(name)
        }
        report.recorded = report.inUse.isEmpty && foldable > 0
        let recorded = report.recorded
        try DeadProcessList.update(directory: directory) { dead in
            if recorded { dead.insert(owner) } else { dead.remove(owner) }
        }
        return report
    }
}
