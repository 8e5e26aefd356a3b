import MmapStore
import SystemCalls

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
    /// With a `memo` kept from scrape to scrape, the verdict on such an owner is remembered
    /// with the process (its command name and start time in `/proc/<pid>/stat`) and the
    /// file's identity: one read of `stat` instead of walking the process's descriptors and
    /// mappings (about 140 µs each on a busy machine). A live verdict holds while the same
    /// process runs (not a zombie) with the same command name: prometheus_client's worker
    /// keeps its files open and mapped until it exits. A verdict of not live holds for
    /// ``LivenessMemo/rejudgeAfter`` only, since a worker that got a dead writer's pid opens
    /// that writer's file again on its first update; a pid taken by a new process is judged
    /// again at once.
    /// - Parameters:
    ///   - listedPaths: the paths of a directory listing (a collection's), in any order.
    ///   - procRoot: where `/proc` is mounted.
    ///   - memo: verdicts on prometheus_client's workers from the last call, updated.
    package static func pids(inListing listedPaths: [String], procRoot: String = "/proc",
                             memo: LivenessMemo? = nil) -> [Int32] {
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
        let known = memo?.verdicts.withLock { $0 } ?? [:]
        let now = Sys.monotonicNanoseconds()
        var verdicts: [Int32: LivenessMemo.Verdict] = [:]
        for (name, owner) in byOwner where name == String(owner.pid) && !live.contains(owner.pid) {
            for path in owner.paths {
                guard let status = try? DirectoryFiles.status(path) else { continue }  // vanished: try the next
                // No mark: no such process (or no memo). The walk below finds nothing then.
                let mark = memo == nil ? nil : LivenessMemo.ProcessMark(pid: owner.pid, procRoot: procRoot, buffer: &buffer)
                if let mark, let memo, let verdict = known[owner.pid], verdict.process == mark,
                   verdict.device == status.device, verdict.inode == status.inode,
                   verdict.live || now &- verdict.judgedAt < memo.rejudgeAfter {
                    if verdict.live { live.insert(owner.pid) }
                    verdicts[owner.pid] = verdict
                    break
                }
                let uses = FilesInUse.process(owner.pid, uses: status, procRoot: procRoot, buffer: &buffer)
                if uses { live.insert(owner.pid) }
                if let mark {
                    verdicts[owner.pid] = LivenessMemo.Verdict(process: mark, device: status.device, inode: status.inode,
                                                               live: uses, judgedAt: now)
                }
                break
            }
        }
        // Only the owners of this listing: a gone owner's verdict is dropped.
        memo?.verdicts.withLock { $0 = verdicts }
        return live.sorted()
    }
}

/// Verdicts on prometheus_client's workers kept between scrapes (``LiveProcesses/pids(inListing:procRoot:memo:)``):
/// whether the process of an owner's pid used the owner's file.
package final class LivenessMemo: Sendable {
    /// A process, as far as a verdict goes: its command name and start time. A zombie (exited,
    /// not reaped) has no mark: it uses no file any more.
    struct ProcessMark: Equatable, Sendable {
        /// The command name with its parentheses, as `/proc/<pid>/stat` gives it (an `exec`
        /// changes it).
        var command: [UInt8]
        /// Field 22 of `stat`: clock ticks after boot.
        var startTime: UInt64

        /// Reads the mark of process `pid`; nil when there is none or it is a zombie.
        init?(pid: Int32, procRoot: String, buffer: inout [UInt8]) {
            guard let count = try? Sys.readWhole(procRoot + "/" + String(pid) + "/stat", into: &buffer) else { return nil }
            let text = buffer[0..<count]
            // The command name may hold spaces and parentheses: the fields count from the last `)`.
            guard let open = text.firstIndex(of: UInt8(ascii: "(")), let close = text.lastIndex(of: UInt8(ascii: ")")),
                  open < close else { return nil }
            var field = 0, i = close + 1, start: UInt64?
            // Fields after the `)`: 1 is the state, 20 the start time.
            while i < text.endIndex && field < 20 {
                while i < text.endIndex && text[i] == UInt8(ascii: " ") { i += 1 }
                let first = i
                while i < text.endIndex && text[i] != UInt8(ascii: " ") && text[i] != UInt8(ascii: "\n") { i += 1 }
                guard first < i else { break }
                field += 1
                if field == 1 && (text[first] == UInt8(ascii: "Z") || text[first] == UInt8(ascii: "X")) { return nil }
                if field == 20 { start = UInt64(String(decoding: text[first..<i], as: UTF8.self)) }
            }
            guard let start else { return nil }
            command = Array(text[open...close])
            startTime = start
        }
    }

    /// One owner's verdict and what it was about.
    struct Verdict: Sendable {
        /// The process judged.
        var process: ProcessMark
        /// The device of the file looked at.
        var device: UInt64
        /// The inode of the file looked at.
        var inode: UInt64
        /// Whether the process mapped or held it.
        var live: Bool
        /// When (monotonic nanoseconds).
        var judgedAt: UInt64
    }

    /// By pid: the verdicts of the last call.
    let verdicts = Locked<[Int32: Verdict]>([:])
    /// How long a verdict of not live is kept, in nanoseconds.
    let rejudgeAfter: UInt64

    /// An empty memo.
    /// - Parameter rejudgeAfter: how long a verdict of not live is kept, in seconds: a new
    ///   worker's process metrics appear at most that late if it got a dead writer's pid and
    ///   was scraped before its first update.
    package init(rejudgeAfter: Double = 5) {
        self.rejudgeAfter = UInt64(min(max(0, rejudgeAfter), 86_400) * 1e9)
    }
}
