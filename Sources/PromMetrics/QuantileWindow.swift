import MmapStore
import Synchronization

/// The quantile window of one summary series: a ring of age buckets, each counting
/// observations in the log buckets of one schema (a DDSketch), found and incremented without a
/// lock once the bucket exists.
///
/// Time is cut into periods of `maxAge / ageBuckets` seconds of wall-clock time, numbered
/// from the UNIX epoch, so every process agrees on them (read to the clock's tick, a few
/// milliseconds, with `CLOCK_REALTIME_COARSE`: the precise clock would cost more than the
/// rest of an observation); period `p` counts in age bucket
/// `p mod ageBuckets`. An observation whose age bucket still holds an older period starts
/// the new one under the lock: its counts are set to 0 (they stay allocated, and in the file),
/// and its expiry, the end of the window that contains the period, is recorded. Quantiles are
/// taken over the age buckets not yet expired, so the window covers between
/// `maxAge - maxAge / ageBuckets` and `maxAge` seconds.
///
/// Counts live where ``NativeBuckets`` keeps a native histogram's: in private memory in
/// single-process mode, in this process's `native_<pid>.pmh` in multiprocess mode, one series
/// entry per age bucket (``SummaryWindowEntry``), so the collector merges the windows of all
/// processes by adding counts. After a fork the child's window starts empty in its own file,
/// as its counts and sums do.
@usableFromInline
final class QuantileWindow: @unchecked Sendable {
    // MARK: hot path

    /// Per age bucket: the period it counts, `Int64.min` for none.
    @usableFromInline let periods: UnsafeMutablePointer<Atomic<Int64>>
    /// Per age bucket: the address of the zero bucket's count, once it exists.
    @usableFromInline let zeroCounts: UnsafeMutablePointer<Atomic<UInt>>
    /// Per age bucket: bucket index to count address, for each sign.
    @usableFromInline let positive: UnsafeMutablePointer<NativeBuckets.Table>
    @usableFromInline let negative: UnsafeMutablePointer<NativeBuckets.Table>
    /// The last period seen and its age bucket, as `period << 8 | ageBucket`: saves a division
    /// per observation.
    @usableFromInline let lastPeriod = Atomic<UInt64>(UInt64.max)
    @usableFromInline let ageBuckets: Int
    @usableFromInline let periodsPerSecond: Double
    @usableFromInline let schema: Int8
    @usableFromInline let zeroThreshold = SummaryWindowEntry.zeroThreshold
    @usableFromInline let tables = NativeHistogramMath.Tables.shared
    @usableFromInline let wallTime: @Sendable () -> Double
    @usableFromInline let epochSource: UnsafePointer<Atomic<UInt64>>
    @usableFromInline let boundEpoch: UnsafePointer<Atomic<UInt64>>

    // MARK: state, guarded by the lock (the store's lock when the counts live in a file)

    private let periodSeconds: Double
    private let storages: [NativeSeriesStorage]
    private let lock = ForkAwareLock()
    private let reportFailure: @Sendable (SystemError) -> Void
    private let arena = Arena()
    /// Per age bucket: every count, with what it counts.
    private var counts: [[(bucket: NativeHistogramFile.Bucket, address: UnsafeMutableRawPointer)]]

    /// A window configured by `options`; `storages` holds one series entry per age bucket in
    /// multiprocess mode and is empty in single-process mode.
    init(options: SummaryQuantiles, storages: [NativeSeriesStorage], clock: MetricClock,
         reportFailure: @escaping @Sendable (SystemError) -> Void) {
        ageBuckets = options.ageBuckets
        periodSeconds = options.ageBucketSeconds
        periodsPerSecond = 1 / options.ageBucketSeconds
        schema = options.schema
        wallTime = clock.coarseWallTime
        self.storages = storages.count == options.ageBuckets ? storages : []
        self.reportFailure = reportFailure
        epochSource = self.storages.first?.epochSource ?? ForkEpoch.pointer
        boundEpoch = self.storages.first?.boundEpoch ?? ForkEpoch.pointer
        counts = Array(repeating: [], count: options.ageBuckets)
        periods = UnsafeMutableRawPointer(arena.words(options.ageBuckets)).bindMemory(to: Atomic<Int64>.self, capacity: options.ageBuckets)
        for k in 0..<options.ageBuckets { periods[k].store(.min, ordering: .relaxed) }
        zeroCounts = arena.words(options.ageBuckets)
        positive = .allocate(capacity: options.ageBuckets)
        negative = .allocate(capacity: options.ageBuckets)
        for k in 0..<options.ageBuckets {
            (positive + k).initialize(to: NativeBuckets.Table(root: arena.words(64)))
            (negative + k).initialize(to: NativeBuckets.Table(root: arena.words(64)))
        }
        for (k, storage) in self.storages.enumerated() {
            storage.onProcessChange = { [weak self] in self?.forget(ageBucket: k) }
        }
    }

    deinit {
        positive.deallocate()
        negative.deallocate()
    }

    /// Counts one observation in the age bucket of the current period.
    @inlinable @inline(__always)
    func observe(_ value: Double) {
        if _slowPath(boundEpoch.pointee.load(ordering: .acquiring) != epochSource.pointee.load(ordering: .relaxed)) {
            rebind()
        }
        let t = wallTime() * periodsPerSecond
        // A clock before 1970 or past the year 2^55 s has no period: nothing to count.
        guard t >= 0, t < 0x1p55 else { return }
        let period = Int64(t)
        let last = lastPeriod.load(ordering: .relaxed)
        let k: Int
        if _fastPath(last >> 8 == UInt64(period)) {
            k = Int(last & 0xFF)
        } else {
            k = Int(period % Int64(ageBuckets))
            lastPeriod.store(UInt64(period) << 8 | UInt64(k), ordering: .relaxed)
        }
        if _fastPath(periods[k].load(ordering: .acquiring) == period) {
            let magnitude = value.magnitude
            if magnitude > zeroThreshold {
                let index = NativeHistogramMath.key(magnitude: magnitude, schema: schema, tables: tables)
                let table = value > 0 ? positive[k] : negative[k]
                if let address = table.address(of: index) {
                    address.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.wrappingAdd(1, ordering: .relaxed)
                    return
                }
            } else if value.isNaN {
                return
            } else if let address = UnsafeMutableRawPointer(bitPattern: zeroCounts[k].load(ordering: .acquiring)) {
                address.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.wrappingAdd(1, ordering: .relaxed)
                return
            }
        }
        observeSlowly(value, period: period, ageBucket: k)
    }

    // MARK: slow paths

    @usableFromInline @inline(never)
    func rebind() { storages.first?.rebindIfNeeded() }

    private func locked<T>(_ body: () -> T) -> T {
        if let storage = storages.first { return storage.withLock(body) }
        return lock.withLock(body)
    }

    /// An observation that starts a period in its age bucket, or whose count does not exist yet.
    @usableFromInline @inline(never)
    func observeSlowly(_ value: Double, period: Int64, ageBucket k: Int) {
        guard !value.isNaN else { return }
        locked {
            let current = periods[k].load(ordering: .acquiring)
            if current != period {
                // A period this age bucket has left already (the thread was late): out of the window.
                if current > period { return }
                for c in counts[k] { c.address.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.store(0, ordering: .releasing) }
                // Counts first, then the expiry: a reader seeing the old, passed, expiry leaves them out.
                if !storages.isEmpty {
                    storages[k].configureLocked(schema: schema, zeroThreshold: expiry(of: period))
                }
                periods[k].store(period, ordering: .releasing)
            }
            let address: UnsafeMutableRawPointer
            switch NativeHistogramMath.placement(of: value, schema: schema, zeroThreshold: SummaryWindowEntry.zeroThreshold) {
            case .positive(let i), .negative(let i):
                let table = value > 0 ? positive[k] : negative[k]
                if let a = table.address(of: i) {
                    address = a
                } else {
                    address = countAddress(NativeHistogramFile.Bucket(kind: value > 0 ? .positive : .negative, schema: schema, index: i), ageBucket: k)
                    table.insert(address, at: i, arena: arena)
                }
            case .zero, .none:
                if let a = UnsafeMutableRawPointer(bitPattern: zeroCounts[k].load(ordering: .acquiring)) {
                    address = a
                } else {
                    address = countAddress(NativeHistogramFile.Bucket(kind: .zero), ageBucket: k)
                    zeroCounts[k].store(UInt(bitPattern: address), ordering: .releasing)
                }
            }
            address.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.wrappingAdd(1, ordering: .relaxed)
        }
    }

    /// The wall-clock time at which `period` leaves the window.
    private func expiry(of period: Int64) -> Double {
        Double(period + Int64(ageBuckets)) * periodSeconds
    }

    /// The address of a new count of age bucket `k`: in the file, or in memory when there is
    /// none (single-process mode, a closed store) or it is full.
    private func countAddress(_ bucket: NativeHistogramFile.Bucket, ageBucket k: Int) -> UnsafeMutableRawPointer {
        var address: UnsafeMutableRawPointer?
        if !storages.isEmpty {
            do { address = try storages[k].countAddressLocked(bucket) } catch { reportFailure(error) }
        }
        let a = address ?? arena.count()
        counts[k].append((bucket, a))
        return a
    }

    /// Under the store's lock, after a fork or when the store closes: age bucket `k`'s counts
    /// are elsewhere (the parent's file) or about to go; it starts again, empty.
    private func forget(ageBucket k: Int) {
        counts[k] = []
        for i in 0..<64 {
            positive[k].root[i].store(0, ordering: .releasing)
            negative[k].root[i].store(0, ordering: .releasing)
        }
        zeroCounts[k].store(0, ordering: .releasing)
        periods[k].store(.min, ordering: .releasing)
    }

    // MARK: collecting

    /// The counts of the age buckets still in the window at wall-clock time `now`, added up.
    func windowCounts(now: Double) -> NativeBucketCounts {
        locked {
            var out = NativeBucketCounts(schema: schema, zeroThreshold: SummaryWindowEntry.zeroThreshold)
            for k in 0..<ageBuckets {
                let period = periods[k].load(ordering: .acquiring)
                guard period != .min, expiry(of: period) > now else { continue }
                for c in counts[k] {
                    let n = Double(c.address.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .acquiring))
                    guard n > 0 else { continue }
                    switch c.bucket.kind {
                    case .positive, .negative:
                        out.add(positive: c.bucket.kind == .positive, index: c.bucket.index, schema: c.bucket.schema, count: n)
                    case .zero, .unbucketed: out.zeroCount += n
                    }
                }
            }
            return out
        }
    }

    /// The estimates of `objectives` over the window at wall-clock time `now`.
    func quantiles(_ objectives: [Double], now: Double) -> [Double] {
        let counts = windowCounts(now: now)
        return objectives.map { counts.quantile($0) }
    }
}
