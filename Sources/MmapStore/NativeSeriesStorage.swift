import SystemCalls
import Synchronization

/// One native-histogram series in this process's `native_<pid>.pmh` (``NativeHistogramFile``):
/// its series entry, and the bucket entries appended as the series needs them.
///
/// The caller (the histogram child) keeps the addresses of the bucket counts and adds to them
/// without a lock; it asks for a new bucket, and records a new configuration, under
/// ``withLock(_:)``, which is the store's lock: so a fork's re-binding, which runs under the
/// same lock, never interleaves with it. After a fork, the series moves to the child's own
/// file: its series entry is re-created there (with the configuration), the bucket addresses
/// are forgotten, and the owner is told (``onProcessChange``) before any thread of the child can
/// use the old addresses; buckets are then re-created at zero as observations need them, so
/// a child never writes into its parent's file. When the store is closed the owner is told
/// the same way, and counts on in its own memory.
package final class NativeSeriesStorage: @unchecked Sendable {
    let store: ProcessStore
    let seriesKey: [UInt8]
    let header: SeriesHandle
    // Guarded by the store's lock.
    private var seriesOffset: UInt32?
    private var closed = false
    private var configuration: (schema: Int8, zeroThreshold: Double)?
    /// Called under the store's lock when the series has moved to a new process's file, or
    /// the store was closed; it must take no lock of the store. Set once, before the storage
    /// is shared.
    package nonisolated(unsafe) var onProcessChange: (() -> Void)?

    /// Creates the series entry of `key` in the store's native-histogram file.
    /// - Throws: `SystemError` when the file cannot be claimed or grown (ENOSPC).
    package init(store: ProcessStore, key: SeriesKey) throws(SystemError) {
        self.store = store
        seriesKey = key.encoded()
        header = try store.series(in: .nativeHistogram, encodedKey: seriesKey)
        store.register(self)
    }

    /// The process-wide fork epoch, which the hot path compares with ``boundEpoch``.
    package var epochSource: UnsafePointer<Atomic<UInt64>> { store.epochSource }
    /// The fork epoch the store's files are bound to.
    package var boundEpoch: UnsafePointer<Atomic<UInt64>> { UnsafePointer(store.boundEpoch) }

    /// Moves the store to this process's files if it forked since they were opened (it calls
    /// ``onProcessChange``).
    package func rebindIfNeeded() { store.rebindIfNeeded() }

    /// Runs `body` under the store's lock, after moving to this process's files if needed.
    package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        store.rebindIfNeeded()
        return try store.lock.withLock(body)
    }

    /// The address of `bucket`'s count (a `UInt64`), appending its entry at 0 if it is new;
    /// nil once the store is closed (the caller counts in its own memory then, as closed
    /// stores' series do). Call it inside ``withLock(_:)``.
    /// - Throws: `SystemError` when the file cannot take the entry (ENOSPC).
    package func countAddressLocked(_ bucket: NativeHistogramFile.Bucket) throws(SystemError) -> UnsafeMutableRawPointer? {
        guard !closed else { return nil }
        let file = try store.file(.nativeHistogram)
        let series: UInt32
        if let known = seriesOffset {
            series = known
        } else {
            series = UInt32(truncatingIfNeeded: try file.offset(for: seriesKey))
            seriesOffset = series
        }
        return try file.slot(for: NativeHistogramFile.key(bucket, series: series)).address
    }

    /// Records the writer's schema and zero threshold in the series entry. Call it inside
    /// ``withLock(_:)``.
    package func configureLocked(schema: Int8, zeroThreshold: Double) {
        configuration = (schema, zeroThreshold)
        writeConfiguration()
    }

    private func writeConfiguration() {
        guard let c = configuration, let address = UnsafeMutableRawPointer(bitPattern: header.address.load(ordering: .acquiring)) else {
            return
        }
        // The threshold first: a reader that sees the configuration set sees the threshold too.
        let slot = ValueSlot(address)
        slot.timestamp64.pointee.store(c.zeroThreshold.bitPattern, ordering: .releasing)
        slot.value64.pointee.store(NativeHistogramFile.configuration(schema: c.schema), ordering: .releasing)
    }

    /// Called by the store, under its lock, once the series entry has been re-created in a new
    /// process's file.
    func processChanged() {
        seriesOffset = nil
        writeConfiguration()
        onProcessChange?()
    }

    /// Called by the store, under its lock, before it unmaps its files: the owner forgets the
    /// addresses of its counts, and new ones come from its own memory.
    func storeClosed() {
        closed = true
        seriesOffset = nil
        onProcessChange?()
    }
}
