import SystemCalls
import Synchronization

/// Who this process is, for file names: its pid by default, injectable for tests.
public struct ProcessIdentity: Sendable {
    /// Returns the current process identifier; called at start and after each fork.
    public let current: @Sendable () -> String

    /// An identity computed by `current`.
    public init(_ current: @escaping @Sendable () -> String) { self.current = current }

    /// The real process id, in decimal.
    public static let processID = ProcessIdentity { String(Sys.getpid()) }

    /// A fixed identifier, so that one test process can play pid 123 and pid 456.
    public static func fixed(_ id: String) -> ProcessIdentity { ProcessIdentity { id } }
}

/// All of one process's metric files in a directory, and every series written into them.
///
/// A store hands out ``SeriesHandle``s whose updates are lock-free. It survives `fork`: a
/// `pthread_atfork` child handler bumps a process-wide epoch (no system call per update), the
/// next update in the child notices the changed epoch, opens the child's own files, re-creates
/// every known series there at zero (as prometheus_client does) and re-points the handles, so
/// the child never writes into its parent's files.
///
/// ```swift
/// let store = try ProcessStore(directory: "/run/metrics")
/// let requests = try store.series(kind: .counter, key: SeriesKey(
///     family: "requests", sample: "requests_total", labels: [], help: "Requests."))
/// requests.add(1)
/// ```
@usableFromInline
package final class ProcessStore: @unchecked Sendable {
    /// The multiprocess directory.
    package let directory: String
    /// How the store learns its process identifier.
    package let identity: ProcessIdentity
    /// The mapping reservation per file.
    package let reservation: Int

    let lock = ForkAwareLock()
    @usableFromInline let epochSource: UnsafePointer<Atomic<UInt64>>
    /// The fork epoch the files are bound to; on the heap so that handles can read it through
    /// a plain pointer (no retain of the store per update). Handles keep the store alive.
    @usableFromInline let boundEpoch: UnsafeMutablePointer<Atomic<UInt64>>
    // Guarded by `lock`.
    private var pid: String
    private var files: [StoreFile: MetricFile] = [:]
    private var handles: [SeriesHandle] = []
    private var byKey: [HandleKey: SeriesHandle] = [:]
    private var natives: [NativeSeriesStorage] = []
    private var exemplars: [ExemplarSlot] = []
    /// Series created while the disk was full (or another system error): they count in memory only.
    private var failedAppends = 0

    private struct HandleKey: Hashable { var file: StoreFile; var key: [UInt8] }

    /// Opens a store over `directory`, which must exist and be a directory.
    /// - Parameters:
    ///   - directory: the multiprocess directory.
    ///   - identity: the process identifier used in file names.
    ///   - reservation: the address range mapped per file.
    /// - Throws: `SystemError` when the directory cannot be used.
    package init(directory: String, identity: ProcessIdentity = .processID, reservation: Int = MetricFile.defaultReservation) throws(SystemError) {
        let st = try Sys.stat(directory)
        guard st.isDirectory else { throw SystemError(call: "stat", path: directory, errno: .notDirectory) }
        self.directory = directory
        self.identity = identity
        self.reservation = reservation
        self.pid = identity.current()
        epochSource = ForkEpoch.pointer
        boundEpoch = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 1)
        boundEpoch.initialize(to: Atomic(epochSource.pointee.load(ordering: .acquiring)))
        // In a fork child, drop the parent's descriptors at once (the lock is held by the fork
        // handler, so `files` is consistent); the series re-bind on their next update.
        lock.childHook = { [unowned self] in
            for f in files.values { f.releaseInheritedDescriptor() }
        }
    }

    deinit {
        boundEpoch.deinitialize(count: 1)
        boundEpoch.deallocate()
    }

    /// The identifier the store's files are named after now.
    package var currentOwner: String { lock.withLock { pid } }

    /// The paths of the files this store has open.
    package var openPaths: [String] { lock.withLock { files.values.map(\.path).sorted() } }

    /// How many series could not be appended (disk full or another error) and count in memory only.
    package var failedAppendCount: Int { lock.withLock { failedAppends } }

    /// The handle for `key` in the file of `kind`, creating its entry (at zero) if needed.
    ///
    /// Asking twice for the same series returns the same handle.
    /// - Throws: `SystemError` (ENOSPC on a full disk). The caller may keep counting in memory.
    package func series(kind: FileKind, key: SeriesKey) throws(SystemError) -> SeriesHandle {
        try series(kind: kind, encodedKey: key.encoded())
    }

    /// The handle for an already encoded key.
    package func series(kind: FileKind, encodedKey key: [UInt8]) throws(SystemError) -> SeriesHandle {
        try series(in: .values(kind), encodedKey: key)
    }

    /// The handle for an already encoded key in one of this process's files.
    func series(in which: StoreFile, encodedKey key: [UInt8]) throws(SystemError) -> SeriesHandle {
        rebindIfNeeded()
        return try lock.withLock { () throws(SystemError) -> SeriesHandle in
            let hk = HandleKey(file: which, key: key)
            if let h = byKey[hk] { return h }
            let file = try file(which)
            let slot = try file.slot(for: key)
            let h = SeriesHandle(store: self, file: which, key: key, address: slot.address)
            handles.append(h)
            byKey[hk] = h
            return h
        }
    }

    /// Records a key in this process's metadata file (``MetadataFile``), once; after a fork
    /// the child's own metadata file gets it too, as every series does.
    /// - Throws: `SystemError` (ENOSPC on a full disk).
    package func recordMetadata(key: [UInt8]) throws(SystemError) {
        _ = try series(in: .metadata, encodedKey: key)
    }

    /// The handle of a key in this process's metadata file (``MetadataFile``), created at 0 if
    /// new; after a fork the child's own metadata file gets the key at 0, as every series.
    /// - Throws: `SystemError` (ENOSPC on a full disk).
    package func metadataHandle(key: [UInt8]) throws(SystemError) -> SeriesHandle {
        try series(in: .metadata, encodedKey: key)
    }

    /// This process's file `which`, claimed on first use. The caller holds `lock`.
    func file(_ which: StoreFile) throws(SystemError) -> MetricFile {
        if let f = files[which] { return f }
        let f: MetricFile
        switch which {
        case .values(let kind): f = try MetricFile.claim(directory: directory, kind: kind, pid: pid, reservation: reservation)
        case .nativeHistogram:
            f = try MetricFile.claim(directory: directory, pid: pid, reservation: reservation) { MetricFileName(nativeHistogramOwner: $0) }
        case .metadata:
            f = try MetricFile.claim(directory: directory, pid: pid, reservation: reservation) { MetricFileName(metadataOwner: $0) }
        case .exemplars:
            f = try MetricFile.claim(directory: directory, pid: pid, reservation: reservation) { MetricFileName(exemplarsOwner: $0) }
        }
        files[which] = f
        return f
    }

    /// Registers a native-histogram series, so that it moves to the new process's file after
    /// a fork.
    func register(_ native: NativeSeriesStorage) {
        lock.withLock { natives.append(native) }
    }

    /// Registers an exemplar slot once it has a record, so that it forgets it after a fork.
    /// The caller holds `lock`.
    func registerLocked(_ slot: ExemplarSlot) { exemplars.append(slot) }

    /// Declares that the process identity may have changed, as a fork does; the next update
    /// re-checks it. Tests use it to play a second process without forking.
    package func processIdentityMayHaveChanged() {
        boundEpoch.pointee.store(UInt64.max, ordering: .releasing)
    }

    /// Closes every file (releasing their locks). Handles then write into private memory.
    package func close() {
        lock.withLock {
            for h in handles { h.detach() }
            // Before the files are unmapped: native series must not use their addresses.
            for n in natives { n.storeClosed() }
            for e in exemplars { e.storeClosed() }
            for f in files.values { f.close() }
            files = [:]
        }
    }

    @usableFromInline
    func rebindIfNeeded() {
        let epoch = epochSource.pointee.load(ordering: .acquiring)
        if boundEpoch.pointee.load(ordering: .acquiring) == epoch { return }
        lock.withLock {
            if boundEpoch.pointee.load(ordering: .acquiring) == epoch { return }
            let newPid = identity.current()
            if newPid != pid {
                // Never write into the parent's files: drop them (closing our copy of the
                // descriptor keeps the parent's lock intact) and re-create every series at 0.
                for f in files.values { f.close() }
                files = [:]
                pid = newPid
                for h in handles {
                    do {
                        let slot = try file(h.file).slot(for: h.key)
                        h.rebind(to: slot.address)
                    } catch {
                        failedAppends += 1
                        h.detach()
                    }
                }
                // Before the epoch is published: no thread may use a native series' addresses
                // into the parent's file once this returns.
                for n in natives { n.processChanged() }
                for e in exemplars { e.processChanged() }
            }
            boundEpoch.pointee.store(epoch, ordering: .releasing)
        }
    }
}

/// One series' value in a process's file; cheap to update from any thread.
///
/// Keep the handle (through the metric child that owns it) on hot paths: an update is one
/// atomic operation on the mapping plus a check of the fork epoch.
@usableFromInline
package final class SeriesHandle: @unchecked Sendable {
    @usableFromInline let store: ProcessStore?
    @usableFromInline let address = Atomic<UInt>(0)
    private let privateMemory = Locked<UInt>(0)
    // The store's fork epochs, read through plain pointers so that an update retains nothing.
    @usableFromInline let epochSource: UnsafePointer<Atomic<UInt64>>
    @usableFromInline let boundEpoch: UnsafePointer<Atomic<UInt64>>
    let file: StoreFile
    let key: [UInt8]
    /// What every use of the handle stops the process with (see ``init(refusing:)``); nil for
    /// every other handle.
    let refusal: String?

    init(store: ProcessStore?, file: StoreFile, key: [UInt8], address: UnsafeMutableRawPointer) {
        self.store = store
        self.epochSource = store?.epochSource ?? ForkEpoch.pointer
        self.boundEpoch = store.map { UnsafePointer($0.boundEpoch) } ?? ForkEpoch.pointer
        self.file = file
        self.key = key
        refusal = nil
        self.address.store(UInt(bitPattern: address), ordering: .releasing)
    }

    /// A handle over private memory, for single-process use and for series that could not be
    /// stored in a file.
    package convenience init() { self.init(privateRefusing: nil) }

    /// A handle whose every use stops the process with `message`: a labelled metric's
    /// stand-in for its unlabelled operations. Its bound epoch never equals the process's, so
    /// the check every update makes anyway (``slot``) takes it to the refusal; an unlabelled
    /// update then tests nothing that a cached child's does not.
    package convenience init(refusing message: String) { self.init(privateRefusing: message) }

    /// A store-less handle over private memory; with a `refusal`, bound to an epoch no process
    /// has, else to the process epoch itself (so it never takes the slow path).
    private init(privateRefusing refusal: String?) {
        store = nil
        epochSource = ForkEpoch.pointer
        boundEpoch = refusal == nil ? ForkEpoch.pointer : ForkEpoch.never
        file = .values(.counter)
        key = []
        self.refusal = refusal
        detach()
    }

    func rebind(to address: UnsafeMutableRawPointer) {
        self.address.store(UInt(bitPattern: address), ordering: .releasing)
    }

    /// Moves the handle to private memory, where its value restarts at zero (the old mapping
    /// may already be gone, so it is not read).
    func detach() {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)
        memory.initializeMemory(as: UInt64.self, repeating: 0, count: 2)
        self.address.store(UInt(bitPattern: memory), ordering: .releasing)
        // The newest private slot is freed with the handle. An earlier one (a handle detached
        // twice) is left alone: another thread may still be updating it.
        privateMemory.withLock { $0 = UInt(bitPattern: memory) }
    }

    deinit {
        if let p = UnsafeMutableRawPointer(bitPattern: privateMemory.withLock { $0 }) { p.deallocate() }
    }

    /// The slot currently backing this series, after checking for a fork.
    @inlinable
    package var slot: ValueSlot {
        if _slowPath(boundEpoch.pointee.load(ordering: .acquiring) != epochSource.pointee.load(ordering: .relaxed)) {
            epochChanged()
        }
        return ValueSlot(UnsafeMutableRawPointer(bitPattern: address.load(ordering: .acquiring)).unsafelyUnwrapped)
    }

    /// The slow path of ``slot``: the process forked since the store's files were bound (they
    /// are re-created for this process), or the handle refuses every use.
    @usableFromInline @inline(never)
    func epochChanged() {
        // fatalError, not precondition: an optimised build drops a precondition's message.
        if let refusal { fatalError(refusal) }
        store?.rebindIfNeeded()
    }

    /// Adds `delta` to the value.
    @inlinable
    package func add(_ delta: Double) { slot.add(delta) }

    /// Sets the value.
    @inlinable
    package func set(_ value: Double) { slot.set(value) }

    /// Sets the value and the timestamp (mostrecent gauges).
    @inlinable
    package func set(_ value: Double, timestamp: Double) { slot.set(value, timestamp: timestamp) }

    /// The current value.
    @inlinable
    package var value: Double { slot.value }

    /// The current timestamp.
    @inlinable
    package var timestamp: Double { slot.timestamp }
}

/// Which of a process's files: a `*.db` file of a kind, or the native-histogram file.
enum StoreFile: Hashable {
    /// `counter_<pid>.db`, `gauge_<mode>_<pid>.db`, ...
    case values(FileKind)
    /// `native_<pid>.pmh` (``NativeHistogramFile``).
    case nativeHistogram
    /// `meta_<pid>.pmm` (``MetadataFile``).
    case metadata
    /// `exemplars_<pid>.pmx` (``ExemplarFile``).
    case exemplars
}

/// The process-wide fork epoch: bumped in the child by a `pthread_atfork` handler.
package enum ForkEpoch {
    /// The epoch's address; a handle bound to it never sees a fork (it compares it with itself).
    nonisolated(unsafe) package static let pointer: UnsafePointer<Atomic<UInt64>> = {
        let p = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 1)
        p.initialize(to: Atomic(1))
        ForkAwareLock.installHandlers(epoch: p)
        return UnsafePointer(p)
    }()

    /// An epoch no process ever has (epochs count forks up from 1): a handle bound to it
    /// takes its slow path on every use (``SeriesHandle/init(refusing:)``).
    nonisolated(unsafe) package static let never: UnsafePointer<Atomic<UInt64>> = {
        let p = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 1)
        p.initialize(to: Atomic(.max))
        return UnsafePointer(p)
    }()
}

/// A lock that is safe across `fork`: the fork handlers take every such lock before the fork
/// and release them in both parent and child, so a child never inherits a lock held by a
/// thread that does not exist in it (the deadlock of prometheus_client issue #431).
package final class ForkAwareLock: @unchecked Sendable {
    let mutex = Sys.PthreadMutex()
    /// Runs in a fork child while the lock is still held by the fork handler; it must take no
    /// lock. Set once, before the owner is shared.
    nonisolated(unsafe) var childHook: (() -> Void)?

    package init() { Self.register(self) }

    @inline(__always)
    package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        try mutex.withLock(body)
    }

    // MARK: registry

    private final class Weak { weak var lock: ForkAwareLock?; init(_ l: ForkAwareLock) { lock = l } }
    nonisolated(unsafe) private static var registry: [Weak] = []
    private static let registryMutex = Sys.PthreadMutex()
    nonisolated(unsafe) private static var epoch: UnsafeMutablePointer<Atomic<UInt64>>?
    nonisolated(unsafe) private static var held: [ForkAwareLock] = []

    private static func register(_ l: ForkAwareLock) {
        _ = ForkEpoch.pointer  // make sure the handlers are installed
        registryMutex.withLock {
            registry.removeAll { $0.lock == nil }
            registry.append(Weak(l))
        }
    }

    static func installHandlers(epoch e: UnsafeMutablePointer<Atomic<UInt64>>) {
        epoch = e
        Sys.installForkHandlers(
            prepare: {
                // Snapshot the registry, then take the locks in registration order (a store's
                // lock before its files', the order the store itself takes them). The registry
                // mutex is not held meanwhile: a thread creating a file under a store lock
                // registers a new lock and would otherwise deadlock with us.
                ForkAwareLock.registryMutex.lock()
                let all = ForkAwareLock.registry.compactMap(\.lock)
                ForkAwareLock.registryMutex.unlock()
                for l in all { l.mutex.lock() }
                ForkAwareLock.held = all
            },
            parent: {
                for l in ForkAwareLock.held.reversed() { l.mutex.unlock() }
                ForkAwareLock.held = []
            },
            child: {
                ForkAwareLock.epoch?.pointee.wrappingAdd(1, ordering: .releasing)
                for l in ForkAwareLock.held { l.childHook?() }
                for l in ForkAwareLock.held.reversed() { l.mutex.unlock() }
                ForkAwareLock.held = []
                // Another thread of the parent may have held the registry mutex at fork time.
                ForkAwareLock.registryMutex.reinitialize()
            })
    }
}
