import SystemCalls
import Synchronization

/// The latest exemplar of one sample (a counter's `_total`, one bucket of a histogram): a
/// record in this process's `exemplars_<pid>.pmx` (``ExemplarFile``) in multiprocess mode, or
/// in this process's memory.
///
/// Nothing is written until the first exemplar: the record is created then, under the store's
/// lock, and later writes are lock-free (``ExemplarFile/write(at:labels:value:timestamp:)``).
/// After a fork the slot forgets its record (``ProcessStore`` tells it under its lock, before
/// the child's first update), so a child never writes into its parent's file; its next
/// exemplar creates a record in the child's own file. Once the store is closed, exemplars go
/// to private memory, as closed stores' values do.
package final class ExemplarSlot: @unchecked Sendable {
    let store: ProcessStore?
    let key: SeriesKey
    /// The record's first byte; 0 until the first exemplar (or after a fork).
    private let address = Atomic<UInt>(0)
    private let epochSource: UnsafePointer<Atomic<UInt64>>
    private let boundEpoch: UnsafePointer<Atomic<UInt64>>
    // Guarded by the store's lock (or by `privateRecords` without a store).
    private var registered = false
    private var closed = false
    /// Records in private memory, freed with the slot.
    private let privateRecords = Locked<[UnsafeMutableRawPointer]>([])

    /// A slot for the sample of `key` in `store`'s exemplar file, or in memory when `store` is nil.
    package init(store: ProcessStore?, key: SeriesKey) {
        self.store = store
        self.key = key
        epochSource = store?.epochSource ?? ForkEpoch.pointer
        boundEpoch = store.map { UnsafePointer($0.boundEpoch) } ?? ForkEpoch.pointer
    }

    deinit {
        for p in privateRecords.withLock({ $0 }) { p.deallocate() }
    }

    /// Records an exemplar, replacing the previous one.
    /// - Parameters:
    ///   - labels: the encoded labels (``ExemplarFile/encodeLabels(_:)``).
    /// - Returns: false when it was dropped: another thread was writing the same record, or
    ///   the file could not take the record (`failure` says why then).
    @discardableResult
    package func record(labels: [UInt8], value: Double, timestamp: Double, failure: (SystemError) -> Void = { _ in }) -> Bool {
        if _slowPath(boundEpoch.pointee.load(ordering: .acquiring) != epochSource.pointee.load(ordering: .relaxed)) {
            store?.rebindIfNeeded()
        }
        var a = address.load(ordering: .acquiring)
        if _slowPath(a == 0) {
            do { a = try bind() } catch {
                failure(error)
                return false
            }
        }
        return ExemplarFile.write(at: UnsafeMutableRawPointer(bitPattern: a).unsafelyUnwrapped, labels: labels, value: value, timestamp: timestamp)
    }

    /// The latest exemplar, when one was recorded in this process (since its last fork).
    package var latest: ExemplarFile.Exemplar? {
        if boundEpoch.pointee.load(ordering: .acquiring) != epochSource.pointee.load(ordering: .relaxed) { store?.rebindIfNeeded() }
        guard let p = UnsafeMutableRawPointer(bitPattern: address.load(ordering: .acquiring)) else { return nil }
        return ExemplarFile.readRecord(at: p)
    }

    private func bind() throws(SystemError) -> UInt {
        guard let store else { return bindPrivate() }
        return try store.lock.withLock { () throws(SystemError) -> UInt in
            let current = address.load(ordering: .acquiring)
            if current != 0 { return current }
            if !registered {
                store.registerLocked(self)
                registered = true
            }
            if closed { return bindPrivate() }
            let file = try store.file(.exemplars)
            let seriesValue = try file.offset(for: key.encoded())
            let link = (file.base + seriesValue).assumingMemoryBound(to: Atomic<UInt64>.self)
            var record = Int(link.pointee.load(ordering: .acquiring))
            // An adopted file's link is trusted only when it points at this series' own record.
            if record == 0 || !file.isRecord(at: record, ofSeries: seriesValue) {
                let recordValue = try file.offset(for: ExemplarFile.emptyRecord(seriesOffset: UInt32(truncatingIfNeeded: seriesValue)))
                record = recordValue - FileFormat.padding(keyLength: ExemplarFile.recordLength) - ExemplarFile.recordLength
                link.pointee.store(UInt64(record), ordering: .releasing)
            }
            ExemplarFile.resetIfTorn(file.base + record)
            let a = UInt(bitPattern: file.base + record)
            address.store(a, ordering: .releasing)
            return a
        }
    }

    /// A zeroed record in private memory (8-byte aligned at its sequence, as in a file).
    private func bindPrivate() -> UInt {
        privateRecords.withLock { records in
            let current = address.load(ordering: .acquiring)
            if current != 0 { return current }
            let memory = UnsafeMutableRawPointer.allocate(byteCount: ExemplarFile.recordLength + 4, alignment: 8)
            memory.initializeMemory(as: UInt8.self, repeating: 0, count: ExemplarFile.recordLength + 4)
            records.append(memory)
            let a = UInt(bitPattern: memory + 4)
            address.store(a, ordering: .releasing)
            return a
        }
    }

    /// Called by the store, under its lock, when the process changed: the next exemplar
    /// creates a record in the new process's file.
    func processChanged() {
        address.store(0, ordering: .releasing)
    }

    /// Called by the store, under its lock, before it unmaps its files: exemplars go to
    /// private memory from now on.
    func storeClosed() {
        closed = true
        address.store(0, ordering: .releasing)
    }
}

extension MetricFile {
    /// Whether a record entry of the series whose value is at `seriesValue` starts at `record`.
    func isRecord(at record: Int, ofSeries seriesValue: Int) -> Bool {
        let entry = record - 4
        guard entry >= FileFormat.headerSize, entry % 8 == 0,
              entry + FileFormat.entrySize(keyLength: ExemplarFile.recordLength) <= usedBytes else { return false }
        let length = Int(Int32(littleEndian: base.loadUnaligned(fromByteOffset: entry, as: Int32.self)))
        return length == ExemplarFile.recordLength && base.load(fromByteOffset: record, as: UInt8.self) == ExemplarFile.recordKind
            && UInt32(littleEndian: base.loadUnaligned(fromByteOffset: record + ExemplarFile.Field.series, as: UInt32.self))
                == UInt32(truncatingIfNeeded: seriesValue)
    }
}
