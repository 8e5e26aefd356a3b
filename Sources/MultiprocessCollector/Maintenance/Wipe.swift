import SystemCalls
import MmapStore

/// What `wipe` removed or would not remove.
public struct WipeReport: Sendable {
    /// Files removed.
    public var removed: [String] = []
    /// Files held by live writers (wipe refused unless forced).
    public var live: [String] = []
}

/// The start-up clean of a multiprocess directory: removes every metric file, archive,
/// temporary file and bookkeeping file of this package — and nothing else.
public enum Wipe {
    /// A refusal: live writers still hold files.
    public struct LiveWritersError: Error, CustomStringConvertible {
        /// The files held by live processes.
        public var files: [String]
        /// A one-line description.
        public var description: String {
            "\(files.count) file(s) are held by live writers (\(files.prefix(5).joined(separator: ", "))\(files.count > 5 ? ", ..." : "")); use --force to wipe anyway"
        }
    }

    /// Whether `name` is one of the names this package (or prometheus_client) puts in a
    /// multiprocess directory.
    package static func isOurs(_ name: String) -> Bool {
        if MetricFileName(parsing: name) != nil { return true }
        if name == FileLock.directoryLockName || name == DeadProcessList.fileName || name == Compactor.journalName
            || name == Compactor.nativeJournalName { return false }
        return (name.hasPrefix(".tmp-") || name.hasPrefix(MetricFileName.stagedPrefix)) && !name.contains("/")
    }

    /// Removes this package's files from `directory`.
    /// - Parameters:
    ///   - directory: the multiprocess directory.
    ///   - force: wipe even while live writers hold files.
    /// - Throws: `LiveWritersError` when live writers hold files and `force` is false;
    ///   `SystemError` when a file cannot be removed.
    public static func run(directory: String, force: Bool) throws -> WipeReport {
        let lock = try FileLock.directory(directory, exclusive: true)
        defer { withExtendedLifetime(lock) {} }
        var report = WipeReport()
        let names = try DirectoryFiles.names(in: directory)
        for name in names where MetricFileName(parsing: name) != nil {
            if (try? Liveness.probe(path: directory + "/" + name)) == .alive { report.live.append(name) }
        }
        if !report.live.isEmpty && !force { throw LiveWritersError(files: report.live) }
        for name in names where isOurs(name) {
            let path = directory + "/" + name
            // Regular files only: a symbolic link or a directory under one of our names was
            // not made by us, and is left alone (a link's target is never touched either way).
            guard let st = try? DirectoryFiles.status(path), st.isRegular else { continue }
            do { try DirectoryFiles.remove(path) } catch {
                if error.errno != .noEntry { throw error }
            }
            report.removed.append(name)
        }
        for name in [DeadProcessList.fileName, Compactor.journalName, Compactor.nativeJournalName] where DirectoryFiles.exists(directory + "/" + name) {
            try DirectoryFiles.remove(directory + "/" + name)
            report.removed.append(name)
        }
        return report
    }
}
