import SystemCalls
import MmapStore

/// The pids a supervisor declared dead with `mark-dead`, kept in a hidden file
/// (`.prom-multiproc-dead-pids`, one pid a line) so that compaction may fold the files
/// prometheus_client wrote for them: those files carry no lock that could tell.
package enum DeadProcessList {
    /// The list's file name inside the directory.
    package static let fileName = ".prom-multiproc-dead-pids"

    /// The pids in the list.
    package static func read(directory: String) -> Set<String> {
        guard let bytes = try? DirectoryFiles.read(directory + "/" + fileName) else { return [] }
        return Set(String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.isEmpty })
    }

    /// Replaces the list (atomically).
    package static func write(_ pids: Set<String>, directory: String) throws(SystemError) {
        let path = directory + "/" + fileName
        if pids.isEmpty {
            if DirectoryFiles.exists(path) { try DirectoryFiles.remove(path) }
            return
        }
        try DirectoryFiles.writeAtomically(Array(pids.sorted().joined(separator: "\n").utf8) + [0x0A], to: path)
    }
}

/// What happened to the files of one pid declared dead.
public struct MarkDeadReport: Sendable {
    /// Live-mode gauge files removed.
    public var removed: [String] = []
    /// Files left alone because a live process still holds them (a reused pid), with why.
    public var keptAlive: [String] = []
}

/// prometheus_client's `mark_process_dead`, made safe against pid reuse.
public enum MarkDead {
    /// Removes `gauge_<live mode>_<pid>.db` files of `pid` (exactly the files
    /// prometheus_client removes), except a file a live process still holds; records the pid as
    /// dead for compaction.
    /// - Parameters:
    ///   - pid: the dead process's id.
    ///   - directory: the multiprocess directory.
    /// - Returns: what was removed and what was kept.
    /// - Throws: `SystemError` when the directory cannot be read or a file cannot be removed.
    public static func run(pid: Int32, directory: String) throws(SystemError) -> MarkDeadReport {
        var report = MarkDeadReport()
        let owner = String(pid)
        for mode in GaugeMode.allCases where mode.isLive {
            let name = MetricFileName(kind: .gauge(mode), owner: owner).description
            let path = directory + "/" + name
            guard DirectoryFiles.exists(path) else { continue }
            let status = try DirectoryFiles.status(path)
            guard status.isRegular else { continue }
            let lock: FileLock?
            do { lock = try FileLock.exclusiveIfFree(path: path) } catch {
                if error.errno == .noEntry { continue }
                throw error
            }
            guard lock != nil else { report.keptAlive.append(name); continue }
            do { try DirectoryFiles.remove(path) } catch {
                if error.errno != .noEntry { throw error }
            }
            report.removed.append(name)
        }
        var dead = DeadProcessList.read(directory: directory)
        dead.insert(owner)
        try DeadProcessList.write(dead, directory: directory)
        return report
    }
}
