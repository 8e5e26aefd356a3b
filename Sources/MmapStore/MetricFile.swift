import SystemCalls
import Synchronization

/// One process's metric file, open for writing.
///
/// Creating or claiming a file follows the store's invariants:
///
/// 1. A new file is created under a name the collector ignores (`.tmp-...`), reserved with
///    `posix_fallocate` (never a sparse `ftruncate`, so a full disk is ENOSPC and never
///    SIGBUS), given its header, locked with an exclusive `flock`, and only then renamed into
///    place with `renameat2(RENAME_NOREPLACE)` (or `link`), which never clobbers. No 0-byte
///    or half-made `*.db` file is ever visible.
/// 2. An existing file of the same name (a restarted process, a reused pid) is adopted and
///    its values continue, as in prometheus_client, provided its lock is free and it has no
///    other name (a hard link, perhaps to a file outside the directory). If a live
///    process holds it (two containers with one pid sharing a directory), the next suffixed
///    name (`counter_123-1.db`) is used instead of sharing the file.
/// 3. The whole reservation (1 GiB by default) is mapped once and only the file grows, so the
///    base address never moves and slots handed to other threads stay valid.
///
/// Value updates go through ``ValueSlot`` without any lock; appending a key takes a lock and
/// publishes `used` with a release store after the entry is complete.
package final class MetricFile: @unchecked Sendable {
    /// The file's path.
    package let path: String
    /// The file's parsed name.
    package let name: MetricFileName
    /// The default size of the address range reserved for a file's mapping.
    package static let defaultReservation = 1 << 30

    let fd: Int32
    let base: UnsafeMutableRawPointer
    let reservation: Int
    // Fork-aware: the fork handlers hold it across fork(), so a child never inherits it locked.
    private let lock = ForkAwareLock()
    // Guarded by `lock`.
    private var capacity: Int
    private var used: Int
    private var index: [[UInt8]: Int]
    private var order: [[UInt8]]
    private var isOpen = true
    private var descriptorReleased = false

    private init(path: String, name: MetricFileName, fd: Int32, base: UnsafeMutableRawPointer, reservation: Int,
                 capacity: Int, used: Int, index: [[UInt8]: Int], order: [[UInt8]]) {
        self.path = path; self.name = name; self.fd = fd; self.base = base; self.reservation = reservation
        self.capacity = capacity; self.used = used; self.index = index; self.order = order
    }

    deinit { close() }

    /// Opens this process's file of `kind` in `directory`, creating or adopting it as
    /// described above.
    /// - Parameters:
    ///   - directory: the multiprocess directory; it must exist.
    ///   - kind: what the file holds.
    ///   - pid: this process's identifier, in decimal.
    ///   - reservation: the size of the mapping, and so the largest the file may grow to.
    /// - Throws: `SystemError` naming the call and the file (ENOSPC on a full disk).
    package static func claim(directory: String, kind: FileKind, pid: String, reservation: Int = defaultReservation) throws(SystemError) -> MetricFile {
        try claim(directory: directory, pid: pid, reservation: reservation) { MetricFileName(kind: kind, owner: $0) }
    }

    /// Opens this process's file named `name(owner)` in `directory` (such as its
    /// native-histogram file), creating or adopting it as described above.
    /// - Parameters:
    ///   - directory: the multiprocess directory; it must exist.
    ///   - pid: this process's identifier, in decimal.
    ///   - reservation: the size of the mapping, and so the largest the file may grow to.
    ///   - name: the file's name for an owner (the pid, or the pid with a suffix such as `123-1`).
    /// - Throws: `SystemError` naming the call and the file (ENOSPC on a full disk).
    package static func claim(directory: String, pid: String, reservation: Int = defaultReservation,
                              name makeName: (String) -> MetricFileName) throws(SystemError) -> MetricFile {
        var suffix = 0
        var attempts = 0
        while suffix < 10_000 {
            attempts += 1
            let owner = suffix == 0 ? pid : "\(pid)-\(suffix)"
            let name = makeName(owner)
            let path = directory + "/" + name.description
            switch try tryAdopt(path: path, name: name, reservation: reservation) {
            case .adopted(let file): return file
            case .taken: suffix += 1; continue
            case .missing: break
            }
            if let file = try tryCreate(directory: directory, path: path, name: name, reservation: reservation) {
                return file
            }
            // Someone created the name between our look and our link: look again.
            if attempts > 100 { suffix += 1 }
        }
        throw SystemError(call: "claim", path: directory + "/" + makeName(pid).description, errno: .exists)
    }

    private enum AdoptOutcome { case adopted(MetricFile), taken, missing }

    private static func tryAdopt(path: String, name: MetricFileName, reservation: Int) throws(SystemError) -> AdoptOutcome {
        let fd: Int32
        do {
            fd = try Sys.open(path, [.readWrite, .noFollow])
        } catch {
            if error.errno == .noEntry { return .missing }
            if error.errno == .symlinkLoop { return .taken }  // never write through a link
            throw error
        }
        var keepFD = false
        defer { if !keepFD { Sys.close(fd) } }
        guard try Sys.flock(fd, exclusive: true, path: path) == .acquired else { return .taken }
        // The file may have been compacted away (unlinked) between our open and our lock.
        let st = try Sys.fstat(fd, path: path)
        guard let current = try? Sys.lstat(path), current.inode == st.inode, current.device == st.device else {
            return .missing
        }
        // Never write into a file with a second name: it may be a file outside the directory.
        guard st.isRegular, st.links == 1 else { return .taken }
        // Read and check it the defensive way; a damaged or foreign file is left for the
        // collector to report, and we move on to a suffixed name.
        var reader = MetricFileReader()
        var index: [[UInt8]: Int] = [:]
        var order: [[UInt8]] = []
        var used = FileFormat.headerSize
        do {
            let loaded = try reader.load(path: path)
            if loaded.bytes.count >= FileFormat.headerSize { used = loaded.bytes.count }
            var duplicate = false
            try loaded.forEachEntry { e in
                let key = Array(e.key)
                let valueOffset = e.offset + 4 + e.key.count + FileFormat.padding(keyLength: e.key.count)
                if index[key] != nil { duplicate = true }
                index[key] = valueOffset
                order.append(key)
            }
            if duplicate { return .taken }
        } catch {
            return .taken
        }
        let size = st.size
        let mapLength = Swift.max(reservation, size)
        let base = try Sys.mapShared(fd, length: mapLength, writable: true, path: path)
        // Mark the file as ours (Python never reads bytes 4...7) and make `used` valid.
        let header = FileFormat.headerBytes(used: used)
        header.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: 8) }
        keepFD = true
        return .adopted(MetricFile(path: path, name: name, fd: fd, base: base, reservation: mapLength,
                                   capacity: size, used: used, index: index, order: order))
    }

    private static func tryCreate(directory: String, path: String, name: MetricFileName, reservation: Int) throws(SystemError) -> MetricFile? {
        let temp = directory + "/.tmp-" + name.stem + "-" + String(Sys.randomUInt64() & 0xFFFF_FFFF, radix: 16)
        let fd = try Sys.open(temp, [.readWrite, .create, .exclusive, .noFollow], mode: 0o644)
        var keepFD = false
        defer {
            if !keepFD { Sys.close(fd) }
            try? Sys.unlink(temp)
        }
        try Sys.fallocate(fd, length: FileFormat.initialSize, path: temp)
        try Sys.pwrite(fd, FileFormat.headerBytes(used: FileFormat.headerSize), offset: 0, path: temp)
        guard try Sys.flock(fd, exclusive: true, path: temp) == .acquired else {
            throw SystemError(call: "flock", path: temp, errno: .wouldBlock)
        }
        do {
            // No clobbering, and (with renameat2) never a moment with two names, which a
            // reader would report as a hard link.
            try Sys.renameNoReplace(temp, path)
        } catch {
            if error.errno == .exists { return nil }
            throw error
        }
        let base = try Sys.mapShared(fd, length: reservation, writable: true, path: path)
        keepFD = true
        return MetricFile(path: path, name: name, fd: fd, base: base, reservation: reservation,
                          capacity: FileFormat.initialSize, used: FileFormat.headerSize, index: [:], order: [])
    }

    /// The slot of `key`, appending the entry with value and timestamp 0 if it is new.
    ///
    /// The entry is written completely before `used` is published with a release store, so
    /// a reader in another process never sees a torn entry.
    /// - Throws: `SystemError`: ENOSPC when the file cannot grow, EFBIG past the reservation.
    package func slot(for key: [UInt8]) throws(SystemError) -> ValueSlot {
        ValueSlot(base + (try offset(for: key)))
    }

    /// The byte offset of `key`'s value, appending the entry if it is new.
    package func offset(for key: [UInt8]) throws(SystemError) -> Int {
        try lock.withLock { () throws(SystemError) -> Int in try appendLocked(key) }
    }

    private func appendLocked(_ key: [UInt8]) throws(SystemError) -> Int {
        if let existing = index[key] { return existing }
        guard isOpen else { throw SystemError(call: "append", path: path, errno: Errno(9)) }  // EBADF
        let size = FileFormat.entrySize(keyLength: key.count)
        if used + size > capacity {
            var newCapacity = Swift.max(capacity, FileFormat.initialSize)
            while used + size > newCapacity { newCapacity *= 2 }
            guard newCapacity <= reservation, newCapacity <= FileFormat.maximumSize + 1 else {
                throw SystemError(call: "grow", path: path, errno: .tooBig)
            }
            try Sys.fallocate(fd, length: newCapacity, path: path)
            capacity = newCapacity
        }
        let entry = FileFormat.entryBytes(key: key)
        entry.withUnsafeBytes { (base + used).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let valueOffset = used + size - 16
        used += size
        base.assumingMemoryBound(to: Atomic<UInt32>.self).pointee.store(UInt32(used), ordering: .releasing)
        index[key] = valueOffset
        order.append(key)
        return valueOffset
    }

    /// The keys in the file, in file order.
    package var keys: [[UInt8]] { lock.withLock { order } }

    /// The bytes in use, as last published.
    package var usedBytes: Int { lock.withLock { used } }

    /// The file's current size (capacity).
    package var capacityBytes: Int { lock.withLock { capacity } }

    /// Unmaps the file and closes it, releasing its lock. Slots into it must not be used after.
    package func close() {
        lock.withLock { closeLocked() }
    }

    private func closeLocked() {
        guard isOpen else { return }
        isOpen = false
        Sys.unmap(base, length: reservation)
        if !descriptorReleased { Sys.close(fd) }
    }

    /// In a fork child, closes the descriptor inherited from the parent at once, so that the
    /// child does not keep the parent's lock (and so its liveness) alive. The mapping stays
    /// until the child re-binds its series. Called by the fork handler, which already holds
    /// every fork-aware lock: it takes none and only calls close(2).
    func releaseInheritedDescriptor() {
        guard isOpen, !descriptorReleased else { return }
        descriptorReleased = true
        Sys.close(fd)
    }
}

/// An 8-byte value (and the timestamp after it) inside a mapping, updated atomically.
///
/// Adds are a compare-and-exchange loop on the value's bit pattern, sets an atomic store;
/// no lock is taken. The value and the timestamp are two separate atomics, as in Python's
/// format: a reader may see a new value with the previous timestamp.
@usableFromInline
package struct ValueSlot: @unchecked Sendable, Hashable {
    /// The address of the value; the timestamp follows it.
    @usableFromInline package let address: UnsafeMutableRawPointer

    /// Wraps the address of a value; it must be 8-byte aligned and stay mapped.
    @inlinable
    package init(_ address: UnsafeMutableRawPointer) { self.address = address }

    @inlinable
    var value64: UnsafeMutablePointer<Atomic<UInt64>> { address.assumingMemoryBound(to: Atomic<UInt64>.self) }

    @inlinable
    var timestamp64: UnsafeMutablePointer<Atomic<UInt64>> { (address + 8).assumingMemoryBound(to: Atomic<UInt64>.self) }

    /// Adds `delta` without a lock.
    @inlinable
    package func add(_ delta: Double) {
        let p = value64
        var expected = p.pointee.load(ordering: .relaxed)
        while true {
            let desired = (Double(bitPattern: expected) + delta).bitPattern
            let (done, current) = p.pointee.weakCompareExchange(expected: expected, desired: desired, ordering: .relaxed)
            if done { return }
            expected = current
        }
    }

    /// Stores `value`.
    @inlinable
    package func set(_ value: Double) {
        value64.pointee.store(value.bitPattern, ordering: .releasing)
    }

    /// Stores `value` and then `timestamp` (for the mostrecent gauge modes).
    @inlinable
    package func set(_ value: Double, timestamp: Double) {
        value64.pointee.store(value.bitPattern, ordering: .releasing)
        timestamp64.pointee.store(timestamp.bitPattern, ordering: .releasing)
    }

    /// The stored value.
    @inlinable
    package var value: Double { Double(bitPattern: value64.pointee.load(ordering: .acquiring)) }

    /// The stored timestamp (0 when never set).
    @inlinable
    package var timestamp: Double { Double(bitPattern: timestamp64.pointee.load(ordering: .acquiring)) }
}
