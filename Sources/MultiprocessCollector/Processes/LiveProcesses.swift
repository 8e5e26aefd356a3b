import MmapStore

/// Which processes of a multiprocess directory are alive now: the one place that decides it,
/// so that process metrics have one seam: our writers by their locks, prometheus_client's
/// workers (whose files carry no lock) by the files they map or hold.
package enum LiveProcesses {
    /// The pids, in this process's pid namespace, of the writers that hold a metric file of
    /// `listedPaths` locked now; sorted, each once.
    ///
    /// A file's owner is taken from its name (``MetricFileName/pid``: `counter_123.db` and the
    /// suffixed `counter_123-1.db` both name pid 123); archives and non-numeric identities name
    /// no process. One file per owner is looked at (the first that still exists), not every
    /// file: a writer holds all of its files for as long as it lives.
    ///
    /// With `/proc/locks` readable, an owner is live when the process *this* `/proc` calls by
    /// that pid holds the file's lock (``LockHolders``). That is ``Liveness/probe(path:)``'s
    /// `alive` plus the proof that the pid names the writer here and not another process:
    /// a reader in another pid namespace than the writers (a sidecar container) sees none of
    /// them instead of the wrong ones. It costs one read of `/proc/locks` and one `lstat` per
    /// owner. Without `/proc/locks`, the lock is probed (open, read 8 bytes, `flock`, close),
    /// and owners with a suffixed name are left out together with the plain owner of the same
    /// pid: two writers claimed that pid, so at most one of them is the process of that pid
    /// here, and nothing says which.
    ///
    /// Files prometheus_client wrote carry no lock. An owner no lock showed live whose name is
    /// a plain pid (`counter_123.db`) is live when process 123 of this `/proc` maps or holds
    /// that file, by device and inode (``FilesInUse/process(_:uses:procRoot:buffer:)``: its
    /// `fd` entries, then its `maps`): a running process that only got a dead writer's pid is
    /// not included. This costs one `lstat` and one or two reads of `/proc/<pid>` per such owner.
    /// - Parameters:
    ///   - listedPaths: the paths of a directory listing (a collection's), in any order.
    ///   - procRoot: where `/proc` is mounted.
    package static func pids(inListing listedPaths: [String], procRoot: String = "/proc") -> [Int32] {
        // Owner string -> its files, in listing order.
        var byOwner: [String: (pid: Int32, paths: [String])] = [:]
        for path in listedPaths {
            guard let name = MetricFileName(parsing: MetricFileName.baseName(of: path)), !name.isArchive,
                  let pid = name.pid, pid > 0
            else { continue }
            byOwner[name.owner, default: (pid, [])].paths.append(path)
        }
        guard !byOwner.isEmpty else { return [] }
        var live = Set<Int32>()
        if let holders = LockHolders.read(procRoot: procRoot) {
            for (_, owner) in byOwner where !live.contains(owner.pid) {
                for path in owner.paths {
                    guard let file = try? LockHolders.FileID(path: path) else { continue }  // vanished: try the next
                    if holders.holder(of: file) == owner.pid { live.insert(owner.pid) }
                    break
                }
            }
        } else {
            let ambiguous = Set(byOwner.filter { $0.key != String($0.value.pid) }.map(\.value.pid))
            for (name, owner) in byOwner where name == String(owner.pid) && !ambiguous.contains(owner.pid) {
                for path in owner.paths {
                    guard let liveness = try? Liveness.probe(path: path) else { continue }
                    if liveness == .alive { live.insert(owner.pid) }
                    break
                }
            }
        }
        // Owners no lock showed live: prometheus_client's workers (their files carry no lock),
        // or writers that exited. A plain pid counts when the process of that pid maps or
        // holds that very file (one process's `fd` and `maps`, not a scan of `/proc`), so a
        // process that merely got a dead writer's pid is not taken for it.
        var buffer: [UInt8] = []
        for (name, owner) in byOwner where name == String(owner.pid) && !live.contains(owner.pid) {
            for path in owner.paths {
                guard let status = try? DirectoryFiles.status(path) else { continue }  // vanished: try the next
                if FilesInUse.process(owner.pid, uses: status, procRoot: procRoot, buffer: &buffer) {
                    live.insert(owner.pid)
                }
                break
            }
        }
        return live.sorted()
    }
}
