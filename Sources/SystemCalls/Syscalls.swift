// With SocketSyscalls.swift and ClientSocketSyscalls.swift, the only place that imports Glibc.
// Each system call is wrapped once: calls that can be interrupted retry EINTR, `close` does
// not, and every failure becomes a `SystemError` naming the call and the path.
import CGuardedRead
import Glibc
import Synchronization

/// Thin, package-internal wrappers over the system calls the store needs.
package enum Sys {
    /// Runs `body` until it does not fail with EINTR; returns its result or the errno.
    @inline(__always)
    static func retrying<T: BinaryInteger>(_ body: () -> T) -> Result<T, Errno> {
        while true {
            let r = body()
            if r >= 0 { return .success(r) }
            let e = Glibc.errno
            if e != EINTR { return .failure(Errno(e)) }
        }
    }

    /// An error for `call`, when a wrapper makes a call other than the one it is named after.
    package static func fail(_ call: String, _ path: String?, _ e: Errno) -> SystemError {
        SystemError(call: call, path: path, errno: e)
    }

    /// An error named after the calling wrapper (`open(_:_:mode:)` reports `open`): the one
    /// place call names come from, so a message cannot drift from the call.
    package static func fail(_ path: String?, _ e: Errno, function: String = #function) -> SystemError {
        SystemError(call: String(function.prefix { $0 != "(" }), path: path, errno: e)
    }

    // MARK: memory

    /// Whether the `count` bytes at `a` and at `b` are equal: the C library's `memcmp`, which
    /// compares with the widest vector instructions the machine has. (Not a system call, but
    /// this is the one place the C library is imported.)
    package static func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
        memcmp(a, b, count) == 0
    }

    // MARK: files

    /// Flags for `open`.
    package struct OpenFlags: OptionSet, Sendable {
        package let rawValue: Int32
        package init(rawValue: Int32) { self.rawValue = rawValue }
        package static let readOnly = OpenFlags(rawValue: O_RDONLY)
        package static let readWrite = OpenFlags(rawValue: O_RDWR)
        package static let writeOnly = OpenFlags(rawValue: O_WRONLY)
        package static let create = OpenFlags(rawValue: O_CREAT)
        package static let exclusive = OpenFlags(rawValue: O_EXCL)
        package static let truncate = OpenFlags(rawValue: O_TRUNC)
        package static let noFollow = OpenFlags(rawValue: O_NOFOLLOW)
        package static let directory = OpenFlags(rawValue: O_DIRECTORY)
        package static let nonBlocking = OpenFlags(rawValue: O_NONBLOCK)
    }

    package static func open(_ path: String, _ flags: OpenFlags, mode: UInt32 = 0o644) throws(SystemError) -> Int32 {
        switch retrying({ Glibc.open(path, flags.rawValue | O_CLOEXEC, mode) }) {
        case .success(let fd): return fd
        case .failure(let e): throw fail(path, e)
        }
    }

    package static func close(_ fd: Int32) {
        // Never retried: on Linux the descriptor is released even when close reports EINTR.
        _ = Glibc.close(fd)
    }

    /// What `fstat`/`lstat` tell about a file.
    package struct FileStatus: Sendable {
        package var size: Int
        package var mode: UInt32
        package var inode: UInt64
        package var device: UInt64
        package var uid: UInt32
        /// The number of hard links (names) the file has.
        package var links: UInt64
        package var modificationTime: Double
        package var isRegular: Bool { mode & S_IFMT == S_IFREG }
        package var isDirectory: Bool { mode & S_IFMT == S_IFDIR }
        package var isSymlink: Bool { mode & S_IFMT == S_IFLNK }
        package var permissions: UInt32 { mode & 0o7777 }
        /// The major number of the device holding the file (glibc's `major()`), as
        /// `/proc/locks` prints it.
        package var deviceMajor: UInt32 { UInt32(truncatingIfNeeded: ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff)) }
        /// The minor number of the device holding the file (glibc's `minor()`).
        package var deviceMinor: UInt32 { UInt32(truncatingIfNeeded: (device & 0xff) | ((device >> 12) & ~0xff)) }
        init(_ st: stat) {
            size = Int(st.st_size); mode = st.st_mode; inode = UInt64(st.st_ino)
            device = UInt64(st.st_dev); uid = st.st_uid; links = UInt64(st.st_nlink)
            modificationTime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        }
    }

    package static func fstat(_ fd: Int32, path: String) throws(SystemError) -> FileStatus {
        var st = Glibc.stat()
        switch retrying({ c_fstat(fd, &st) }) {
        case .success: return FileStatus(st)
        case .failure(let e): throw fail(path, e)
        }
    }

    package static func lstat(_ path: String) throws(SystemError) -> FileStatus {
        var st = Glibc.stat()
        switch retrying({ c_lstat(path, &st) }) {
        case .success: return FileStatus(st)
        case .failure(let e): throw fail(path, e)
        }
    }

    package static func stat(_ path: String) throws(SystemError) -> FileStatus {
        var st = Glibc.stat()
        switch retrying({ c_stat(path, &st) }) {
        case .success: return FileStatus(st)
        case .failure(let e): throw fail(path, e)
        }
    }

    /// Reserves `[0, length)` so that later writes through a mapping cannot hit SIGBUS.
    package static func fallocate(_ fd: Int32, length: Int, path: String) throws(SystemError) {
        while true {
            // posix_fallocate returns the error code instead of setting errno.
            let r = posix_fallocate(fd, 0, off_t(length))
            if r == 0 { return }
            if r == EINTR { continue }
            throw fail("posix_fallocate", path, Errno(r))
        }
    }

    package static func ftruncate(_ fd: Int32, length: Int, path: String) throws(SystemError) {
        switch retrying({ Glibc.ftruncate(fd, off_t(length)) }) {
        case .success: return
        case .failure(let e): throw fail(path, e)
        }
    }

    package static func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, offset: Int, path: String) throws(SystemError) -> Int {
        var done = 0
        while done < buffer.count {
            let r = retrying { Glibc.pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done)) }
            switch r {
            case .success(let n):
                if n == 0 { return done }
                done += n
            case .failure(let e): throw fail(path, e)
            }
        }
        return done
    }

    package static func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, offset: Int, path: String) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            switch retrying({ Glibc.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done)) }) {
            case .success(let n): done += n
            case .failure(let e): throw fail(path, e)
            }
        }
    }

    package static func pwrite(_ fd: Int32, _ bytes: [UInt8], offset: Int, path: String) throws(SystemError) {
        let r: Result<Void, SystemError> = bytes.withUnsafeBytes { b in
            do throws(SystemError) { try pwrite(fd, b, offset: offset, path: path); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }

    /// Reads up to `count` bytes at `offset`; fewer at the end of the file.
    package static func pread(_ fd: Int32, count: Int, offset: Int, path: String) throws(SystemError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let r: Result<Int, SystemError> = out.withUnsafeMutableBytes { b in
            do throws(SystemError) { return .success(try pread(fd, into: b, offset: offset, path: path)) } catch { return .failure(error) }
        }
        out.removeLast(count - (try r.get()))
        return out
    }

    package static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            switch retrying({ Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done) }) {
            case .success(let n): done += n
            case .failure(let e): throw fail(path, e)
            }
        }
    }

    package static func fsync(_ fd: Int32, path: String) throws(SystemError) {
        switch retrying({ Glibc.fsync(fd) }) {
        case .success: return
        case .failure(let e): throw fail(path, e)
        }
    }

    package static func link(_ from: String, _ to: String) throws(SystemError) {
        switch retrying({ Glibc.link(from, to) }) {
        case .success: return
        case .failure(let e): throw fail(to, e)
        }
    }

    package static func rename(_ from: String, _ to: String) throws(SystemError) {
        switch retrying({ Glibc.rename(from, to) }) {
        case .success: return
        case .failure(let e): throw fail(to, e)
        }
    }

    /// Renames `from` to `to` unless `to` exists (EEXIST then): `renameat2(RENAME_NOREPLACE)`,
    /// atomic, so the file never has two names. Where the kernel or the file system lacks it
    /// (EINVAL, ENOSYS), `link` then `unlink`: equally no-clobber, but the file has both names
    /// for a moment.
    package static func renameNoReplace(_ from: String, _ to: String) throws(SystemError) {
        if let renameat2 = renameat2Function {
            switch retrying({ renameat2(AT_FDCWD, from, AT_FDCWD, to, 1 /* RENAME_NOREPLACE */) }) {
            case .success: return
            case .failure(let e):
                if e.rawValue != EINVAL && e.rawValue != ENOSYS { throw fail("renameat2", to, e) }
            }
        }
        try link(from, to)
        try unlink(from)
    }

    private typealias Renameat2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

    /// glibc (2.28 and later) has `renameat2`, but Swift's Glibc module does not declare it
    /// (it is behind `_GNU_SOURCE`): look it up once.
    private static let renameat2Function: Renameat2? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0) /* RTLD_DEFAULT */, "renameat2") else { return nil }
        return unsafeBitCast(symbol, to: Renameat2.self)
    }()

    /// When the open file `fd` was created (`statx`'s `stx_btime`), or nil where the kernel or
    /// the file system does not record it. With the device and inode it names one file for
    /// good: an inode number freed by a deleted file is soon given to a new one, a birth time
    /// never is.
    package static func birthTime(_ fd: Int32) -> (seconds: Int64, nanoseconds: UInt32)? {
        guard let statx = statxFunction else { return nil }
        // `struct statx` is 256 bytes: `stx_mask` at 0, `stx_btime` (`tv_sec` Int64,
        // `tv_nsec` UInt32) at 80; the kernel's ABI, stable since Linux 4.11.
        return withUnsafeTemporaryAllocation(byteCount: 256, alignment: 8) { buffer in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            let statxBirthTime: UInt32 = 0x800, emptyPath: Int32 = 0x1000
            guard statx(fd, "", emptyPath, statxBirthTime, buffer.baseAddress!) == 0,
                  buffer.load(fromByteOffset: 0, as: UInt32.self) & statxBirthTime != 0 else { return nil }
            return (buffer.load(fromByteOffset: 80, as: Int64.self), buffer.load(fromByteOffset: 88, as: UInt32.self))
        }
    }

    private typealias Statx = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UInt32, UnsafeMutableRawPointer) -> Int32

    /// glibc (2.28 and later) has `statx`, but Swift's Glibc module does not declare it (it is
    /// behind `_GNU_SOURCE`): look it up once.
    private static let statxFunction: Statx? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0) /* RTLD_DEFAULT */, "statx") else { return nil }
        return unsafeBitCast(symbol, to: Statx.self)
    }()

    package static func unlink(_ path: String) throws(SystemError) {
        switch retrying({ Glibc.unlink(path) }) {
        case .success: return
        case .failure(let e): throw fail(path, e)
        }
    }

    package static func mkdir(_ path: String, mode: UInt32 = 0o755) throws(SystemError) {
        switch retrying({ Glibc.mkdir(path, mode) }) {
        case .success: return
        case .failure(let e): throw fail(path, e)
        }
    }

    package static func rmdir(_ path: String) throws(SystemError) {
        switch retrying({ Glibc.rmdir(path) }) {
        case .success: return
        case .failure(let e): throw fail(path, e)
        }
    }

    /// Creates a fresh private directory from a template ending in `XXXXXX`.
    package static func mkdtemp(_ template: String) throws(SystemError) -> String {
        var bytes = Array(template.utf8CString)
        let r = bytes.withUnsafeMutableBufferPointer { Glibc.mkdtemp($0.baseAddress!) }
        if r == nil { throw fail(template, Errno(Glibc.errno)) }
        return bytes.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Where `d_name` starts in a `dirent` (19 on Linux x86_64 and arm64).
    private static let direntNameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name) ?? 19

    /// The names in a directory, without `.` and `..`.
    package static func listDirectory(_ path: String) throws(SystemError) -> [String] {
        guard let dir = opendir(path) else { throw fail("opendir", path, Errno(Glibc.errno)) }
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            Glibc.errno = 0
            guard let entry = readdir(dir) else {
                let e = Glibc.errno
                if e != 0 { throw fail("readdir", path, Errno(e)) }
                break
            }
            // Read the name in place: a `dirent` is only as long as its name (`d_reclen`), so
            // copying the whole 256-byte `d_name` out of it reads past the kernel's record.
            let name = String(cString: UnsafeRawPointer(entry).advanced(by: direntNameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Reads a whole file whose size `stat` cannot tell, such as a `/proc` file (which reports
    /// 0 bytes): reads until the end of the file, at most `limit` bytes.
    package static func readWholeFile(_ path: String, limit: Int = 1 << 20) throws(SystemError) -> [UInt8] {
        let fd = try open(path, [.readOnly, .nonBlocking])
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while out.count < limit {
            let r = chunk.withUnsafeMutableBytes { b in retrying { Glibc.read(fd, b.baseAddress!, b.count) } }
            switch r {
            case .success(0): return out
            case .success(let n): out += chunk[..<n]
            case .failure(let e): throw fail("read", path, e)
            }
        }
        return out
    }

    /// The number of names in a directory, not counting `.` and `..`, without building them
    /// (a process's `/proc/<pid>/fd` can hold many thousands).
    package static func countDirectoryEntries(_ path: String) throws(SystemError) -> Int {
        guard let dir = opendir(path) else { throw fail("opendir", path, Errno(Glibc.errno)) }
        defer { closedir(dir) }
        var count = 0
        while true {
            Glibc.errno = 0
            guard let entry = readdir(dir) else {
                let e = Glibc.errno
                if e != 0 { throw fail("readdir", path, Errno(e)) }
                return count
            }
            // In place, as in `listDirectory`: the name is NUL-terminated, so n[1] and n[2] are
            // read only when the bytes before them are dots.
            let n = UnsafeRawPointer(entry).advanced(by: direntNameOffset).assumingMemoryBound(to: UInt8.self)
            let isDot = n[0] == UInt8(ascii: ".") && (n[1] == 0 || (n[1] == UInt8(ascii: ".") && n[2] == 0))
            if !isDot { count += 1 }
        }
    }

    // MARK: system configuration

    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of the times in
    /// `/proc/<pid>/stat`; 100, as prometheus_client assumes, when the system does not say.
    package static func clockTicksPerSecond() -> Double {
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? Double(ticks) : 100
    }

    /// The size of a memory page in bytes (`sysconf(_SC_PAGESIZE)`), the unit of the resident
    /// set size in `/proc/<pid>/stat`.
    package static func pageSize() -> Int {
        let size = sysconf(Int32(_SC_PAGESIZE))
        return size > 0 ? size : 4096
    }

    /// The target of a symbolic link (for `/proc/self`).
    package static func readLink(_ path: String) throws(SystemError) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBufferPointer { Glibc.readlink(path, $0.baseAddress!, $0.count) }
        if n < 0 { throw fail(path, Errno(Glibc.errno)) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Reads a file with read(2) until its end into `buffer`, which grows as needed and is
    /// never shrunk (a scan reuses one buffer for every process), at most `limit` bytes: for
    /// files whose size `stat` does not tell, such as those of /proc.
    /// - Returns: the number of bytes read, at the start of `buffer`.
    package static func readWhole(_ path: String, into buffer: inout [UInt8], limit: Int = 64 << 20) throws(SystemError) -> Int {
        let fd = try open(path, [.readOnly, .noFollow, .nonBlocking])
        defer { close(fd) }
        if buffer.count < 1 << 16 { buffer = [UInt8](repeating: 0, count: 1 << 16) }
        var done = 0
        while done < limit {
            if done == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
            let r = buffer.withUnsafeMutableBytes { b in retrying { Glibc.read(fd, b.baseAddress! + done, b.count - done) } }
            switch r {
            case .success(let n):
                if n == 0 { return done }
                done += n
            case .failure(let e): throw fail("read", path, e)
            }
        }
        return done
    }

    // MARK: mappings

    package static func mapShared(_ fd: Int32, length: Int, writable: Bool, path: String) throws(SystemError) -> UnsafeMutableRawPointer {
        let prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ
        guard let p = mmap(nil, length, prot, MAP_SHARED | MAP_NORESERVE, fd, 0), p != MAP_FAILED else {
            throw fail("mmap", path, Errno(Glibc.errno))
        }
        return p
    }

    package static func unmap(_ base: UnsafeMutableRawPointer, length: Int) {
        _ = munmap(base, length)
    }

    /// Copies the double at `base + offsets[i]` to `values[i]`, and the one after it to
    /// `stamps[i]`, for every `i`, from a read-only mapping of a file that another process may
    /// truncate: a read past the file's end is caught (SIGBUS, for this thread and only while
    /// it reads here; any other SIGBUS goes to the handler installed before the first call).
    /// - Returns: whether every value was read: false when a read raised SIGBUS (the mapped
    ///   file no longer reaches it), or when another SIGBUS handler replaced the guard since
    ///   it was installed (then nothing is read).
    package static func guardedGather(_ base: UnsafeRawPointer, offsets: UnsafeBufferPointer<UInt32>,
                                      values: UnsafeMutablePointer<Double>, stamps: UnsafeMutablePointer<Double>) -> Bool {
        guard let first = offsets.baseAddress else { return true }
        return pmp_guarded_gather(base.assumingMemoryBound(to: UInt8.self), first, offsets.count, values, stamps) == 0
    }

    // MARK: locks and processes

    /// How many processors are online (`sysconf`; at least 1).
    package static func onlineProcessors() -> Int { Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// The processors this process can use: the online ones, or fewer when its CPU affinity
    /// (`taskset`, a container's `cpuset`: `Cpus_allowed_list` in `/proc/self/status`) or the
    /// CPU quota of its cgroup or an ancestor (`cpu.max` in cgroup v2, `cpu.cfs_quota_us` in
    /// v1; a quota of 1.5 processors counts as 2) allows fewer. At least 1; what cannot be
    /// read does not count.
    package static func usableProcessors() -> Int {
        var count = onlineProcessors()
        if let status = try? readWholeFile("/proc/self/status", limit: 1 << 16),
           let line = String(decoding: status, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }),
           let allowed = cpuListCount(line.dropFirst("Cpus_allowed_list:".count)) {
            count = Swift.min(count, allowed)
        }
        if let quota = cgroupCPUQuota() { count = Swift.min(count, quota) }
        return Swift.max(1, count)
    }

    /// The number of processors in a Linux CPU list such as `0-3,8,10-11` (nil when it is not one).
    package static func cpuListCount(_ text: Substring) -> Int? {
        var count = 0
        for part in text.trimmingWhitespace.split(separator: ",") {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count <= 2, let first = Int(bounds[0]), let last = Int(bounds[bounds.count - 1]), first <= last
            else { return nil }
            count += last - first + 1
        }
        return count > 0 ? count : nil
    }

    /// The processors a cgroup v2 `cpu.max` (`max 100000`, `150000 100000`) or a v1 quota and
    /// period allow, rounded up; nil for no limit or text that is not a limit.
    package static func cpuQuota(_ text: Substring) -> Int? {
        let fields = text.trimmingWhitespace.split(separator: " ")
        guard fields.count == 2, let quota = Int(fields[0]), let period = Int(fields[1]), quota > 0, period > 0 else { return nil }
        return (quota + period - 1) / period
    }

    /// The smallest CPU quota of this process's cgroup and its ancestors, in processors.
    private static func cgroupCPUQuota() -> Int? {
        guard let text = try? readWholeFile("/proc/self/cgroup", limit: 1 << 16) else { return nil }
        var smallest: Int?
        func consider(_ quota: Int?) {
            if let quota { smallest = Swift.min(smallest ?? quota, quota) }
        }
        func read(_ path: String) -> Substring? {
            (try? readWholeFile(path, limit: 4096)).map { Substring(String(decoding: $0, as: UTF8.self)) }
        }
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") {
            // `hierarchy-id:controllers:path`: v2 is `0::/path`; v1 names `cpu` among its controllers.
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = fields[1].split(separator: ",")
            var path = String(fields[2])
            while true {
                if fields[0] == "0" && fields[1].isEmpty {
                    consider(read("/sys/fs/cgroup\(path)/cpu.max").flatMap(cpuQuota))
                } else if controllers.contains("cpu") {
                    let directory = "/sys/fs/cgroup/\(fields[1])\(path)"
                    if let quota = read(directory + "/cpu.cfs_quota_us"), let period = read(directory + "/cpu.cfs_period_us") {
                        consider(cpuQuota(Substring(quota.trimmingWhitespace + " " + period.trimmingWhitespace)))
                    }
                } else {
                    break
                }
                guard path != "/", let slash = path.lastIndex(of: "/") else { break }
                path = slash == path.startIndex ? "/" : String(path[..<slash])
            }
        }
        return smallest
    }

    /// Gives the processor to another runnable thread, if there is one (`sched_yield`): a
    /// thread waiting a few microseconds for another asks again after it.
    package static func yieldProcessor() { _ = sched_yield() }

    /// Outcome of a non-blocking `flock`.
    package enum LockOutcome: Sendable { case acquired, heldElsewhere }

    package static func flock(_ fd: Int32, exclusive: Bool, path: String) throws(SystemError) -> LockOutcome {
        let op = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB
        switch retrying({ c_flock(fd, op) }) {
        case .success: return .acquired
        case .failure(let e):
            if e.rawValue == EWOULDBLOCK { return .heldElsewhere }
            throw fail(path, e)
        }
    }

    /// Takes `flock` in blocking mode (used for the compactor's directory lock).
    package static func flockBlocking(_ fd: Int32, exclusive: Bool = true, path: String) throws(SystemError) {
        switch retrying({ c_flock(fd, exclusive ? LOCK_EX : LOCK_SH) }) {
        case .success: return
        case .failure(let e): throw fail("flock", path, e)
        }
    }

    package static func unlock(_ fd: Int32) {
        _ = c_flock(fd, LOCK_UN)
    }

    package static func getpid() -> Int32 { Glibc.getpid() }

    /// Ends this process with SIGKILL at once (a test hook for crash-at-a-step tests).
    package static func killSelf() -> Never {
        _ = Glibc.kill(Glibc.getpid(), SIGKILL)
        _exit(137)
    }

    package static func geteuid() -> UInt32 { Glibc.geteuid() }

    /// Sleeps for `seconds` (nanosleep; an interrupted sleep just returns early).
    package static func sleep(seconds: Double) {
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        _ = nanosleep(&ts, nil)
    }

    package static func currentUmask() -> UInt32 {
        // umask can only be read by setting it; restore at once. Not thread-safe against a
        // concurrent umask change, which no sane program does.
        let old = Glibc.umask(0o022)
        _ = Glibc.umask(old)
        return UInt32(old)
    }

    /// Whether a process with this pid exists (zombies count as existing).
    package static func processExists(_ pid: Int32) -> Bool {
        if Glibc.kill(pid, 0) == 0 { return true }
        return Glibc.errno == EPERM
    }

    package static func wallClock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// The wall clock to its tick (`CLOCK_REALTIME_COARSE`, a few milliseconds): several times
    /// cheaper than ``wallClock()``, for a clock read on every observation.
    package static func coarseWallClock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    package static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    package static func randomUInt64() -> UInt64 {
        UInt64.random(in: 0...UInt64.max)
    }

    package static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        return String(cString: v)
    }

    package static func writeStandardError(_ text: String) {
        var t = text
        t.withUTF8 { u in
            var done = 0
            while done < u.count {
                let r = Glibc.write(STDERR_FILENO, u.baseAddress! + done, u.count - done)
                if r < 0 { if Glibc.errno == EINTR { continue }; return }
                done += r
            }
        }
    }

    package static func strerror(_ code: Int32) -> String {
        guard let s = Glibc.strerror(code) else { return "errno \(code)" }
        return String(cString: s)
    }

    // MARK: fork

    /// Installs the fork handlers once per process.
    package static func installForkHandlers(
        prepare: @convention(c) () -> Void, parent: @convention(c) () -> Void, child: @convention(c) () -> Void
    ) {
        _ = pthread_atfork(prepare, parent, child)
    }

    /// A mutex that can be locked in one function and unlocked in another, as the fork handlers
    /// need (Synchronization.Mutex only offers a scoped `withLock`).
    package final class PthreadMutex: @unchecked Sendable {
        private let m: UnsafeMutablePointer<pthread_mutex_t>
        package init() {
            m = .allocate(capacity: 1)
            m.initialize(to: pthread_mutex_t())
            pthread_mutex_init(m, nil)
        }
        deinit { pthread_mutex_destroy(m); m.deallocate() }
        package func lock() { pthread_mutex_lock(m) }
        package func unlock() { pthread_mutex_unlock(m) }
        /// Re-initialises the mutex in a fork child, where its owner thread may not exist.
        package func reinitialize() { pthread_mutex_init(m, nil) }
        @inline(__always)
        package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
            lock(); defer { unlock() }
            return try body()
        }
    }
}

extension Errno {
    /// The C library's text for this code.
    package var message: String { Sys.strerror(rawValue) }
    /// ENOSPC: no space left on the device.
    package static let noSpace = Errno(ENOSPC)
    /// ENOENT: no such file or directory.
    package static let noEntry = Errno(ENOENT)
    /// ESRCH: no such process (a `/proc/<pid>` file read while its process exits).
    package static let noSuchProcess = Errno(ESRCH)
    /// EEXIST: the file exists.
    package static let exists = Errno(EEXIST)
    /// EWOULDBLOCK: the operation would block (a lock is held elsewhere).
    package static let wouldBlock = Errno(EWOULDBLOCK)
    /// ELOOP: a symbolic link was met where none is followed.
    package static let symlinkLoop = Errno(ELOOP)
    /// ENOTDIR: not a directory.
    package static let notDirectory = Errno(ENOTDIR)
    /// EINVAL: an invalid argument (also: not a regular file where one is required).
    package static let invalidArgument = Errno(EINVAL)
    /// EFBIG/E2BIG stand-in for a file the format cannot address.
    package static let tooBig = Errno(EFBIG)
}

// File-scope forwarders: inside `Sys`, the names `stat` and `flock` would resolve to the
// wrappers or to the C structs of the same name.
@inline(__always) private func c_stat(_ path: String, _ st: inout stat) -> Int32 { stat(path, &st) }
@inline(__always) private func c_lstat(_ path: String, _ st: inout stat) -> Int32 { lstat(path, &st) }
@inline(__always) private func c_fstat(_ fd: Int32, _ st: inout stat) -> Int32 { fstat(fd, &st) }
@inline(__always) private func c_flock(_ fd: Int32, _ op: Int32) -> Int32 { flock(fd, op) }

extension Substring {
    /// Without leading and trailing spaces, tabs and newlines.
    fileprivate var trimmingWhitespace: Substring {
        func blank(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\r" }
        var text = self
        while let first = text.first, blank(first) { text = text.dropFirst() }
        while let last = text.last, blank(last) { text = text.dropLast() }
        return text
    }
}
