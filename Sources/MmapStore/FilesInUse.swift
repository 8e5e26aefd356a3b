import SystemCalls

/// The files of one device that running processes map or hold open, from one scan of `/proc`:
/// the liveness of files that carry no lock (prometheus_client's).
///
/// On Linux a file is in use exactly when some process maps it or has it open: every file
/// mapping is listed, with its device (`major:minor`) and inode, in `/proc/<pid>/maps`, and
/// every open file is a link in `/proc/<pid>/fd` whose `stat` gives the file's `st_dev` and
/// `st_ino`. prometheus_client keeps each of its files open and mapped for as long as the
/// process lives, and so does this package, so a metric file nobody maps or holds has no
/// writer left: whatever is in it is final. Only writable mappings count: a read-only one is
/// a reader's (a serving collector keeps one of each file it reads unchanged), which never
/// changes the file. The scan is one pass over every process, once
/// per compaction (not per scrape).
///
/// The scan judges whether it can be trusted, and says ``Availability/unavailable(_:)``
/// otherwise (callers then fall back to `mark-dead` and a check for a running pid):
/// - it maps a file of the directory itself (the directory lock file) and must find that
///   mapping in its own `maps` and the descriptor in its own `fd`: a `/proc` of another pid
///   namespace, a `/proc` that cannot be read, or a file system whose mappings `maps` shows
///   under another device (overlayfs shows the underlying file's) fails this;
/// - pid 1 must be visible when it exists (`hidepid=2` hides other users' processes);
/// - processes kept appearing while it listed them (it re-lists until no new one appears).
///
/// A process it may not inspect (another user's, without the privilege) is recorded by its
/// user id: the files that user owns are then of ``State/unknown(_:)`` liveness, since that
/// process could write them; files of other users are judged by what was seen. A process
/// whose mappings cannot be read but whose descriptors can (one with more capabilities than
/// this one) is judged by its descriptors: every writer keeps a file open while it maps it
/// (prometheus_client keeps the file object, and Python's `mmap` a duplicate descriptor).
///
/// Not seen, by design: processes in another pid namespace that is not a child of ours
/// (containers sharing the directory each with their own `/proc`), descriptors passed over a
/// Unix socket and still in flight, and threads created with their own descriptor table.
package struct FilesInUse: Sendable {
    /// Whether the scan can be trusted.
    package enum Availability: Sendable, Equatable {
        /// Every process was listed, and this process's own probe was seen.
        case complete
        /// The scan cannot tell; the reason in words.
        case unavailable(String)
    }

    /// Whether one file is in use.
    package enum State: Sendable, Equatable {
        /// Some process maps it or holds it open.
        case inUse
        /// No process maps it or holds it open.
        case free
        /// The scan cannot tell; the reason in words.
        case unknown(String)
    }

    /// Whether the scan can be trusted.
    package let availability: Availability
    /// The device scanned for (the directory's).
    package let device: UInt64
    /// Inodes on `device` that some process maps or holds.
    package private(set) var inodes: Set<UInt64> = []
    /// User ids of processes that could not be inspected.
    package private(set) var uninspectableUsers: Set<UInt32> = []
    /// Processes inspected.
    package private(set) var processes = 0
    /// Processes whose mappings could not be read, only their open descriptors.
    package private(set) var descriptorsOnly = 0
    /// Wall time of the scan, in seconds.
    package private(set) var seconds = 0.0

    private init(availability: Availability, device: UInt64) {
        self.availability = availability
        self.device = device
    }

    /// A result that trusts nothing (the scan was not made).
    package static func unavailable(_ reason: String) -> FilesInUse {
        FilesInUse(availability: .unavailable(reason), device: 0)
    }

    /// Whether the file with this status is in use.
    package func state(of status: FileStatus) -> State {
        if case .unavailable(let why) = availability { return .unknown(why) }
        guard status.device == device else { return .unknown("the file is not on the directory's device") }
        if inodes.contains(status.inode) { return .inUse }
        if uninspectableUsers.contains(status.ownerID) {
            return .unknown("a process of user \(status.ownerID), which owns the file, could not be inspected")
        }
        return .free
    }

    /// A one-line description: how many processes, how long, or why it cannot be trusted.
    package var summary: String {
        switch availability {
        case .complete:
            let partly = descriptorsOnly == 0 ? "" : " (\(descriptorsOnly) by their descriptors only)"
            let skipped = uninspectableUsers.isEmpty ? "" : ", not inspectable: processes of users \(uninspectableUsers.sorted().map(String.init).joined(separator: ","))"
            return "/proc scan: \(processes) processes\(partly), \(inodes.count) files in use on the device, \(formatMilliseconds(seconds)) ms\(skipped)"
        case .unavailable(let why): return "/proc cannot be used: \(why)"
        }
    }

    /// Scans every process under `procRoot` for the files of `directory`'s device they map or
    /// hold open.
    /// - Parameters:
    ///   - directory: the multiprocess directory; its lock file serves as the probe.
    ///   - procRoot: where procfs is mounted (tests point it elsewhere).
    ///   - ignoring: descriptors of this process not to count (the caller's own locks on the
    ///     files it judges).
    /// - Returns: the files in use, or a result that says why it cannot be trusted.
    package static func scan(directory: String, procRoot: String = "/proc", ignoring: Set<Int32> = []) -> FilesInUse {
        let started = Sys.monotonicNanoseconds()
        let dirStatus: Sys.FileStatus
        do { dirStatus = try Sys.stat(directory) } catch { return .unavailable("\(error)") }
        var result = FilesInUse(availability: .complete, device: dirStatus.device)
        let reason = result.scanProcesses(directory: directory, procRoot: procRoot, ignoring: ignoring)
        result.seconds = Double(Sys.monotonicNanoseconds() &- started) / 1e9
        guard let reason else { return result }
        var failed = FilesInUse(availability: .unavailable(reason), device: dirStatus.device)
        failed.seconds = result.seconds
        return failed
    }

    /// Fills `inodes`; returns why the scan cannot be trusted, or nil.
    private mutating func scanProcesses(directory: String, procRoot: String, ignoring: Set<Int32>) -> String? {
        // This process as procfs numbers it: absent when procfs belongs to another namespace.
        guard let selfText = try? Sys.readLink(procRoot + "/self"), let selfPid = Int32(selfText) else {
            return "\(procRoot)/self does not name this process (no procfs, or one of another pid namespace)"
        }
        if Sys.processExists(1) && !DirectoryFiles.exists(procRoot + "/1") {
            return "pid 1 is not listed in \(procRoot) (hidepid hides other users' processes)"
        }
        // The probe: the directory lock file, open and mapped by this process during the scan.
        let probePath = directory + "/" + FileLock.directoryLockName
        let probeFD: Int32
        do { probeFD = try Sys.open(probePath, [.readWrite, .create, .noFollow, .nonBlocking], mode: 0o644) } catch {
            return "cannot open the probe file: \(error)"
        }
        defer { Sys.close(probeFD) }
        let probe: Sys.FileStatus
        let mapping: UnsafeMutableRawPointer
        do {
            probe = try Sys.fstat(probeFD, path: probePath)
            guard probe.isRegular else { return "the probe \(probePath) is not a regular file" }
            mapping = try Sys.mapShared(probeFD, length: 4096, writable: false, path: probePath)
        } catch {
            return "cannot map the probe file: \(error)"
        }
        defer { Sys.unmap(mapping, length: 4096) }

        var scanned = Set<Int32>()
        var buffer: [UInt8] = []
        var probeMapped = false, probeOpen = false
        for round in 0... {
            let listed: [String]
            do { listed = try Sys.listDirectory(procRoot) } catch { return "cannot list \(procRoot): \(error)" }
            var fresh: [Int32] = []
            for name in listed {
                guard let first = name.utf8.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9"),
                      let pid = Int32(name), !scanned.contains(pid) else { continue }
                fresh.append(pid)
            }
            if fresh.isEmpty { break }
            if round >= 16 { return "processes kept starting while \(procRoot) was scanned" }
            for pid in fresh {
                scanned.insert(pid)
                let isSelf = pid == selfPid
                let outcome = inspect(pid: pid, procRoot: procRoot, buffer: &buffer,
                                      ignoring: isSelf ? ignoring : [], probe: isSelf ? probe : nil)
                switch outcome {
                case .inspected(let mapped, let open):
                    processes += 1
                    if isSelf { probeMapped = mapped; probeOpen = open }
                case .gone:
                    continue
                case .denied:
                    // Its owner, as procfs shows it (root for a process that is not dumpable).
                    if let st = try? Sys.lstat(procRoot + "/" + String(pid)) { uninspectableUsers.insert(st.uid) } else { continue }
                }
            }
        }
        guard probeMapped && probeOpen else {
            return "this process's own mapping of \(probePath) was not seen in \(procRoot)/\(selfPid) (mapped: \(probeMapped), open: \(probeOpen))"
        }
        return nil
    }

    private enum Outcome { case inspected(probeMapped: Bool, probeOpen: Bool), gone, denied }

    /// Adds the files of `device` that `pid` maps or holds to `inodes`.
    private mutating func inspect(pid: Int32, procRoot: String, buffer: inout [UInt8], ignoring: Set<Int32>,
                                  probe: Sys.FileStatus?) -> Outcome {
        let base = procRoot + "/" + String(pid)
        var probeMapped = false, probeOpen = false
        do {
            let count = try Sys.readWhole(base + "/maps", into: &buffer)
            Self.parseMaps(buffer[0..<count], device: device) { inode, writable in
                if writable { inodes.insert(inode) }
                // The probe is mapped read-only: any mapping of it shows this `/proc` is ours.
                if let probe, inode == probe.inode { probeMapped = true }
            }
        } catch {
            // Its mappings may be unreadable while its descriptors are not (a process with
            // more capabilities than ours): those decide then, as every writer keeps its
            // file open for as long as it maps it.
            guard Self.isDenial(error) else { return .gone }
            descriptorsOnly += 1
        }
        do {
            try Self.forEachDescriptor(of: base, device: device) { fd, inode in
                if let probe, inode == probe.inode { probeOpen = true }
                if !ignoring.contains(fd) { inodes.insert(inode) }
                return true
            }
        } catch {
            return Self.isDenial(error) ? .denied : .gone
        }
        return .inspected(probeMapped: probeMapped, probeOpen: probeOpen)
    }

    /// Calls `body` with the number and inode of every descriptor of the process at `base`
    /// (`<procRoot>/<pid>`) that is open on a file of `device`, until `body` returns false.
    /// Throws when the `fd` directory cannot be listed (the process is gone, or denied).
    private static func forEachDescriptor(of base: String, device: UInt64,
                                          _ body: (Int32, UInt64) -> Bool) throws(SystemError) {
        for fd in try Sys.listDirectory(base + "/fd") {
            // Closed meanwhile (ENOENT), or not a file of a file system (still stat-able).
            guard let st = try? Sys.stat(base + "/fd/" + fd), st.device == device else { continue }
            if !body(Int32(fd) ?? -1, st.inode) { return }
        }
    }

    /// Whether process `pid` maps or holds open the file with this status: one process's
    /// `fd` entries and, when the file is not among them, its `maps` (not a scan of `/proc`).
    ///
    /// This tells a prometheus_client worker (whose files carry no lock) from a process that
    /// merely got the pid of a file's name after the writer exited. False when the process
    /// is gone, exits while it is read, or may not be inspected.
    /// - Parameters:
    ///   - pid: the process, as `procRoot` numbers it.
    ///   - file: the file's status (`lstat` of a metric file).
    ///   - procRoot: where procfs is mounted.
    ///   - buffer: scratch space for `maps`, reused across calls.
    package static func process(_ pid: Int32, uses file: FileStatus, procRoot: String = "/proc",
                                buffer: inout [UInt8]) -> Bool {
        let base = procRoot + "/" + String(pid)
        var found = false
        // prometheus_client keeps each file open as long as it maps it: the few descriptors
        // are cheaper to look at than the mappings of a Python process.
        try? forEachDescriptor(of: base, device: file.device) { _, inode in
            found = inode == file.inode
            return !found
        }
        if found { return true }
        guard let count = try? Sys.readWhole(base + "/maps", into: &buffer) else { return false }
        parseMaps(buffer[0..<count], device: file.device) { inode, writable in
            if writable && inode == file.inode { found = true }
        }
        return found
    }

    private static func isDenial(_ error: SystemError) -> Bool {
        error.errno.rawValue == 13 /* EACCES */ || error.errno.rawValue == 1 /* EPERM */
    }

    /// Calls `body` with the inode of every mapping in `maps` text that lives on `device`, and
    /// whether the mapping is writable.
    ///
    /// A line is `start-end perms offset major:minor inode [path]`, the device numbers in hex
    /// as the kernel splits them (12-bit major, 20-bit minor); `st_dev` encodes the same pair
    /// the glibc way, which ``deviceNumber(major:minor:)`` computes. `perms` is `rwxs`-style,
    /// `w` second.
    package static func parseMaps(_ text: ArraySlice<UInt8>, device: UInt64, _ body: (_ inode: UInt64, _ writable: Bool) -> Void) {
        text.withUnsafeBufferPointer { b in
            let n = b.count
            var i = 0
            while i < n {
                // Skip three space-separated fields: range, permissions, offset.
                var field = 0
                var writable = false
                while i < n && field < 3 {
                    if b[i] == 0x0A { break }
                    if b[i] == 0x20 {
                        field += 1
                        // The permissions follow the first space; `w` is their second letter.
                        if field == 1 { writable = i + 2 < n && b[i + 2] == UInt8(ascii: "w") }
                    }
                    i += 1
                }
                var major: UInt64 = 0, minor: UInt64 = 0, inode: UInt64 = 0
                var ok = field == 3
                if ok {
                    ok = false
                    while i < n, let h = hexValue(b[i]) { major = major << 4 | h; i += 1; ok = true }
                    ok = ok && i < n && b[i] == UInt8(ascii: ":")
                    i += 1
                    while ok && i < n, let h = hexValue(b[i]) { minor = minor << 4 | h; i += 1 }
                    ok = ok && i < n && b[i] == 0x20
                    i += 1
                    while ok && i < n, b[i] >= 0x30 && b[i] <= 0x39 { inode = inode * 10 + UInt64(b[i] - 0x30); i += 1 }
                }
                if ok && inode != 0 && deviceNumber(major: major, minor: minor) == device { body(inode, writable) }
                while i < n && b[i] != 0x0A { i += 1 }
                i += 1
            }
        }
    }

    /// `st_dev` of a device, as glibc's `makedev` builds it.
    package static func deviceNumber(major: UInt64, minor: UInt64) -> UInt64 {
        ((major & 0xFFFF_F000) << 32) | ((major & 0xFFF) << 8) | ((minor & 0xFFFF_FF00) << 12) | (minor & 0xFF)
    }

    private static func hexValue(_ c: UInt8) -> UInt64? {
        switch c {
        case 0x30...0x39: return UInt64(c - 0x30)
        case 0x61...0x66: return UInt64(c - 0x61 + 10)
        case 0x41...0x46: return UInt64(c - 0x41 + 10)
        default: return nil
        }
    }
}

private func formatMilliseconds(_ seconds: Double) -> String {
    let tenths = Int((seconds * 10_000).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}
