import MmapStore
import Synchronization

/// The native buckets of one histogram series: counts by bucket, found and incremented
/// without a lock once the bucket exists.
///
/// Counts are `UInt64`s, each at an address that never moves: private memory in
/// single-process mode, an entry of this process's `native_<pid>.pmh` in multiprocess mode
/// (``NativeSeriesStorage``). A *layout* (schema, zero threshold, and a table from bucket
/// index to address for each sign) says where observations go; it is immutable once published
/// through one atomic pointer, so an observation sees a consistent one. A new bucket, the
/// limit on the number of buckets, and a reset take the lock and publish a new layout. Nothing
/// is ever moved between counts: when the schema goes down or the zero bucket widens, new
/// observations go to the new layout's buckets, and the existing counts are brought to the
/// layout when collected (as the collector does with the file). So no observation is lost to
/// a concurrent change, and layouts and counts stay allocated until the series goes away.
@usableFromInline
final class NativeBuckets: @unchecked Sendable {
    // MARK: hot path

    /// The current layout: the address of a ``Layout``.
    @usableFromInline let current = Atomic<UInt>(0)
    /// The addresses of the zero bucket's count and of the NaN count, once they exist.
    @usableFromInline let zeroCount = Atomic<UInt>(0)
    @usableFromInline let nanCount = Atomic<UInt>(0)
    @usableFromInline let tables = NativeHistogramMath.Tables.shared
    // The fork epochs (the process-wide one twice when there is no file: never a fork).
    @usableFromInline let epochSource: UnsafePointer<Atomic<UInt64>>
    @usableFromInline let boundEpoch: UnsafePointer<Atomic<UInt64>>

    /// Where observations go: immutable once published.
    @usableFromInline
    struct Layout {
        @usableFromInline var schema: Int8
        @usableFromInline var zeroThreshold: Double
        @usableFromInline var positive: Table
        @usableFromInline var negative: Table
    }

    /// Bucket index → count address, for indices in `-2^19 ..< 2^19` (every index of every
    /// schema): three levels of 64, 256 and 64 atomic words, allocated as buckets need them and
    /// read without a lock.
    @usableFromInline
    struct Table {
        @usableFromInline let root: UnsafeMutablePointer<Atomic<UInt>>

        @inlinable @inline(__always)
        func address(of index: Int32) -> UnsafeMutableRawPointer? {
            let u = UInt(bitPattern: Int(index) &+ (1 << 19))
            let middle = root[Int(u >> 14)].load(ordering: .acquiring)
            guard middle != 0 else { return nil }
            let leaf = UnsafeMutablePointer<Atomic<UInt>>(bitPattern: middle).unsafelyUnwrapped[Int((u >> 6) & 0xFF)]
                .load(ordering: .acquiring)
            guard leaf != 0 else { return nil }
            return UnsafeMutableRawPointer(
                bitPattern: UnsafeMutablePointer<Atomic<UInt>>(bitPattern: leaf).unsafelyUnwrapped[Int(u & 0x3F)].load(ordering: .acquiring))
        }
    }

    // MARK: state, guarded by the lock (the store's lock when the counts live in a file)

    private let options: NativeHistogramOptions
    private let initialSchema: Int8
    private let initialThreshold: Double
    private let storage: NativeSeriesStorage?
    private let lock = ForkAwareLock()
    private let clock: MetricClock
    private let reportFailure: @Sendable (SystemError) -> Void
    /// Zeroes the classic buckets and the sum, and observes the value again if one is given
    /// (a reset in single-process mode).
    private let resetClassic: @Sendable (Double?) -> Void
    private let arena = Arena()
    /// Every count, with what it counts.
    private var counts: [(bucket: NativeHistogramFile.Bucket, address: UnsafeMutableRawPointer)] = []
    private var tablesBySchema: [Int8: (positive: Table, negative: Table)] = [:]
    private var layouts: [LayoutKey: UnsafeMutablePointer<Layout>] = [:]
    /// The populated buckets at the current layout (existing counts brought to it), as
    /// `index << 1 | negative`: what the limit counts.
    private var populated = Set<Int64>()
    private var lastReset: Double

    private struct LayoutKey: Hashable { var schema: Int8; var threshold: UInt64 }

    /// Native buckets configured by `options`, in `storage` (a file) or in memory when nil.
    init(options: NativeHistogramOptions, storage: NativeSeriesStorage?, clock: MetricClock,
         reportFailure: @escaping @Sendable (SystemError) -> Void, resetClassic: @escaping @Sendable (Double?) -> Void) {
        self.options = options
        self.storage = storage
        self.clock = clock
        self.reportFailure = reportFailure
        self.resetClassic = resetClassic
        initialSchema = options.schema
        initialThreshold = options.effectiveZeroThreshold
        epochSource = storage?.epochSource ?? ForkEpoch.pointer
        boundEpoch = storage?.boundEpoch ?? ForkEpoch.pointer
        lastReset = clock.monotonicTime()
        locked { publish(schema: initialSchema, zeroThreshold: initialThreshold) }
        storage?.onProcessChange = { [weak self] in self?.processChanged() }
    }

    /// Counts one observation.
    @inlinable @inline(__always)
    func observe(_ value: Double) {
        if _slowPath(boundEpoch.pointee.load(ordering: .acquiring) != epochSource.pointee.load(ordering: .relaxed)) {
            rebind()
        }
        let layout = UnsafePointer<Layout>(bitPattern: current.load(ordering: .acquiring)).unsafelyUnwrapped
        let magnitude = value.magnitude
        if magnitude > layout.pointee.zeroThreshold {
            let index = NativeHistogramMath.key(magnitude: magnitude, schema: layout.pointee.schema, tables: tables)
            let table = value > 0 ? layout.pointee.positive : layout.pointee.negative
            if let address = table.address(of: index) {
                let (old, _) = address.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.wrappingAdd(1, ordering: .relaxed)
                if _slowPath(old == 0) { bucketPopulated(positive: value > 0, index: index, schema: layout.pointee.schema, value: value) }
                return
            }
        } else if let address = UnsafeMutableRawPointer(
            bitPattern: value.isNaN ? nanCount.load(ordering: .acquiring) : zeroCount.load(ordering: .acquiring)) {
            address.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.wrappingAdd(1, ordering: .relaxed)
            return
        }
        observeSlowly(value)
    }

    // MARK: slow paths

    @usableFromInline @inline(never)
    func rebind() { storage?.rebindIfNeeded() }

    private func locked<T>(_ body: () -> T) -> T {
        if let storage { return storage.withLock(body) }
        return lock.withLock(body)
    }

    /// An observation whose count does not exist yet.
    @usableFromInline @inline(never)
    func observeSlowly(_ value: Double) {
        locked { addLocked(value) }
    }

    /// A bucket went from 0 to 1: it counts towards the limit.
    @usableFromInline @inline(never)
    func bucketPopulated(positive: Bool, index: Int32, schema: Int8, value: Double) {
        locked { registerLocked(positive: positive, index: index, schema: schema, value: value) }
    }

    private var layout: Layout { UnsafePointer<Layout>(bitPattern: current.load(ordering: .acquiring)).unsafelyUnwrapped.pointee }

    /// Counts `value` at the current layout, creating its count if needed.
    private func addLocked(_ value: Double) {
        let l = layout
        switch NativeHistogramMath.placement(of: value, schema: l.schema, zeroThreshold: l.zeroThreshold) {
        case .positive(let i), .negative(let i):
            let positive = value > 0
            let table = positive ? l.positive : l.negative
            let address = table.address(of: i) ?? {
                let a = countAddress(NativeHistogramFile.Bucket(kind: positive ? .positive : .negative, schema: l.schema, index: i))
                insert(a, at: i, into: table)
                return a
            }()
            let (old, _) = address.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.wrappingAdd(1, ordering: .relaxed)
            if old == 0 { registerLocked(positive: positive, index: i, schema: l.schema, value: value) }
        case .zero, .none:
            let isNaN = value.isNaN
            var address = UnsafeMutableRawPointer(
                bitPattern: isNaN ? nanCount.load(ordering: .acquiring) : zeroCount.load(ordering: .acquiring))
            if address == nil {
                let a = countAddress(NativeHistogramFile.Bucket(kind: isNaN ? .unbucketed : .zero))
                if isNaN {
                    nanCount.store(UInt(bitPattern: a), ordering: .releasing)
                } else {
                    zeroCount.store(UInt(bitPattern: a), ordering: .releasing)
                }
                address = a
            }
            address.unsafelyUnwrapped.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.wrappingAdd(1, ordering: .relaxed)
        }
    }

    /// The address of a new count: in the file, or in memory when there is none (single-process
    /// mode, a closed store) or it is full.
    private func countAddress(_ bucket: NativeHistogramFile.Bucket) -> UnsafeMutableRawPointer {
        var address: UnsafeMutableRawPointer?
        if let storage {
            do { address = try storage.countAddressLocked(bucket) } catch { reportFailure(error) }
        }
        let a = address ?? arena.count()
        counts.append((bucket, a))
        return a
    }

    private func insert(_ address: UnsafeMutableRawPointer, at index: Int32, into table: Table) {
        table.insert(address, at: index, arena: arena)
    }

    /// Publishes the layout for `schema` and `zeroThreshold` (its tables are reused when the
    /// series had that schema before), and records it in the file.
    private func publish(schema: Int8, zeroThreshold: Double) {
        let key = LayoutKey(schema: schema, threshold: zeroThreshold.bitPattern)
        let pointer: UnsafeMutablePointer<Layout>
        if let existing = layouts[key] {
            pointer = existing
        } else {
            let t = tablesBySchema[schema] ?? (Table(root: arena.words(64)), Table(root: arena.words(64)))
            tablesBySchema[schema] = t
            pointer = arena.layout(Layout(schema: schema, zeroThreshold: zeroThreshold, positive: t.positive, negative: t.negative))
            layouts[key] = pointer
        }
        current.store(UInt(bitPattern: pointer), ordering: .releasing)
        storage?.configureLocked(schema: schema, zeroThreshold: zeroThreshold)
    }

    // MARK: the limit

    /// Records a newly populated bucket (index at `schema`) and applies the limit.
    private func registerLocked(positive: Bool, index: Int32, schema: Int8, value: Double) {
        let l = layout
        // A bucket of a schema the series has left since: it counts where it now belongs.
        guard schema >= l.schema else { return }
        let i = NativeHistogramMath.reducedIndex(index, from: schema, to: l.schema)
        guard NativeHistogramMath.lowerBound(index: i, schema: l.schema) >= l.zeroThreshold else { return }
        populated.insert(Int64(i) << 1 | (positive ? 0 : 1))
        guard options.maxBucketNumber > 0, populated.count > options.maxBucketNumber else { return }
        if storage == nil, options.minResetSeconds > 0, clock.monotonicTime() - lastReset >= options.minResetSeconds {
            resetLocked(repeating: value)
        } else if !widenZeroBucketLocked() {
            halveResolutionLocked()
        }
    }

    /// Widens the zero bucket over the populated bucket closest to zero, unless that would pass
    /// the largest zero threshold allowed.
    private func widenZeroBucketLocked() -> Bool {
        let l = layout
        guard l.zeroThreshold < options.maxZeroThreshold, let smallest = populated.map({ $0 >> 1 }).min() else { return false }
        let threshold = NativeHistogramMath.upperBound(index: Int32(smallest), schema: l.schema)
        guard threshold <= options.maxZeroThreshold else { return false }
        populated.remove(smallest << 1)
        populated.remove(smallest << 1 | 1)
        publish(schema: l.schema, zeroThreshold: threshold)
        return true
    }

    /// Halves the resolution: the schema goes down by one (not below -4).
    private func halveResolutionLocked() {
        let l = layout
        guard l.schema > NativeHistogramMath.minimumSchema else { return }
        let schema = l.schema - 1
        populated = Set(populated.map { Int64(NativeHistogramMath.reducedIndex(Int32($0 >> 1), from: l.schema, to: schema)) << 1 | $0 & 1 })
        publish(schema: schema, zeroThreshold: l.zeroThreshold)
    }

    /// Starts the series again from nothing at its initial settings (single-process mode):
    /// every count is set to 0 in place (an observation racing with it counts either before
    /// or after), and `value`, the observation that hit the limit, is counted again.
    private func resetLocked(repeating value: Double?) {
        for c in counts { c.address.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.store(0, ordering: .releasing) }
        resetClassic(value)
        populated = []
        lastReset = clock.monotonicTime()
        publish(schema: initialSchema, zeroThreshold: initialThreshold)
        if let value { addLocked(value) }
    }

    /// After a fork, under the store's lock: the counts are in the parent's file; forget them
    /// and start at zero in the child's (the buckets are created again as needed). The same
    /// when the store is closed: its mapping is about to go.
    private func processChanged() {
        let l = layout
        counts = []
        tablesBySchema = [:]
        layouts = [:]
        populated = []
        zeroCount.store(0, ordering: .releasing)
        nanCount.store(0, ordering: .releasing)
        publish(schema: l.schema, zeroThreshold: l.zeroThreshold)
    }

    // MARK: collecting

    /// The series' buckets now, at its current layout, and the count of observations; `sum`
    /// reads the sum of observations (after a reset this may make).
    func snapshot(labels: [Label], sum: () -> Double) -> NativeHistogramSnapshot {
        let buckets: NativeBucketCounts = locked {
            if storage == nil, options.minResetSeconds > 0,
               layout.schema != initialSchema || layout.zeroThreshold != initialThreshold,
               clock.monotonicTime() - lastReset >= options.minResetSeconds {
                resetLocked(repeating: nil)
            }
            let l = layout
            var values: [(bucket: NativeHistogramFile.Bucket, count: Double)] = []
            var schema = l.schema
            for c in counts {
                let n = Double(c.address.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .acquiring))
                guard n > 0 else { continue }
                if c.bucket.kind == .positive || c.bucket.kind == .negative { schema = Swift.min(schema, c.bucket.schema) }
                values.append((c.bucket, n))
            }
            var out = NativeBucketCounts(schema: schema, zeroThreshold: l.zeroThreshold)
            for v in values {
                switch v.bucket.kind {
                case .positive, .negative:
                    out.add(positive: v.bucket.kind == .positive, index: v.bucket.index, schema: v.bucket.schema, count: v.count)
                case .zero: out.zeroCount += v.count
                case .unbucketed: out.unbucketedCount += v.count
                }
            }
            return out
        }
        return buckets.snapshot(labels: labels, sum: sum())
    }
}

extension NativeBuckets.Table {
    /// Makes `index` point to `address`, allocating the levels it needs from `arena`. Call it
    /// under the lock of the table's owner; readers see the address once it is stored.
    func insert(_ address: UnsafeMutableRawPointer, at index: Int32, arena: Arena) {
        let u = UInt(bitPattern: Int(index) &+ (1 << 19))
        var middle = root[Int(u >> 14)].load(ordering: .acquiring)
        if middle == 0 {
            middle = UInt(bitPattern: arena.words(256))
            root[Int(u >> 14)].store(middle, ordering: .releasing)
        }
        let middlePointer = UnsafeMutablePointer<Atomic<UInt>>(bitPattern: middle).unsafelyUnwrapped
        var leaf = middlePointer[Int((u >> 6) & 0xFF)].load(ordering: .acquiring)
        if leaf == 0 {
            leaf = UInt(bitPattern: arena.words(64))
            middlePointer[Int((u >> 6) & 0xFF)].store(leaf, ordering: .releasing)
        }
        UnsafeMutablePointer<Atomic<UInt>>(bitPattern: leaf).unsafelyUnwrapped[Int(u & 0x3F)]
            .store(UInt(bitPattern: address), ordering: .releasing)
    }
}

extension NativeBucketCounts {
    /// The series as exposition takes it.
    package func snapshot(labels: [Label], sum: Double) -> NativeHistogramSnapshot {
        let sorted = sortedBuckets
        return NativeHistogramSnapshot(
            labels: labels, schema: schema, zeroThreshold: zeroThreshold, zeroCount: zeroCount, count: count, sum: sum,
            positiveBuckets: sorted.positive.map { .init(index: $0.index, count: $0.count) },
            negativeBuckets: sorted.negative.map { .init(index: $0.index, count: $0.count) })
    }
}

/// Memory that lives as long as its native buckets (or quantile window): zeroed words for
/// tables, counts, layouts.
final class Arena {
    private var blocks: [UnsafeMutableRawPointer] = []
    private var countsLeft = 0
    private var nextCount: UnsafeMutableRawPointer?

    deinit { for b in blocks { b.deallocate() } }

    private func zeroed(_ bytes: Int) -> UnsafeMutableRawPointer {
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        blocks.append(p)
        return p
    }

    /// `n` atomic words, all 0.
    func words(_ n: Int) -> UnsafeMutablePointer<Atomic<UInt>> {
        zeroed(n * MemoryLayout<UInt>.stride).assumingMemoryBound(to: Atomic<UInt>.self)
    }

    /// A count (8 bytes), 0; handed out from blocks of 64.
    func count() -> UnsafeMutableRawPointer {
        if countsLeft == 0 {
            nextCount = zeroed(64 * 8)
            countsLeft = 64
        }
        let p = nextCount.unsafelyUnwrapped
        nextCount = p + 8
        countsLeft -= 1
        return p
    }

    /// A layout, kept until the arena goes.
    func layout(_ value: NativeBuckets.Layout) -> UnsafeMutablePointer<NativeBuckets.Layout> {
        let p = zeroed(MemoryLayout<NativeBuckets.Layout>.stride).bindMemory(to: NativeBuckets.Layout.self, capacity: 1)
        p.initialize(to: value)
        return p
    }
}
