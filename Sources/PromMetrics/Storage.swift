import MmapStore
import SystemCalls
import Synchronization

/// The clocks metrics read: wall-clock time for `mostrecent` gauges and `setToCurrentTime`,
/// and a monotonic clock for durations. Injectable so tests control time.
public struct MetricClock: Sendable {
    /// Seconds since the UNIX epoch.
    public let wallTime: @Sendable () -> Double
    /// Monotonic seconds, for measuring durations.
    public let monotonicTime: @Sendable () -> Double

    /// Seconds since the UNIX epoch, possibly only to the system clock's tick (a few
    /// milliseconds), read on every observation of a summary with quantiles; ``wallTime``
    /// unless the clock is ``system``.
    package let coarseWallTime: @Sendable () -> Double

    /// A clock made of two functions.
    public init(wallTime: @escaping @Sendable () -> Double, monotonicTime: @escaping @Sendable () -> Double) {
        self.wallTime = wallTime
        self.monotonicTime = monotonicTime
        self.coarseWallTime = wallTime
    }

    private init(wallTime: @escaping @Sendable () -> Double, monotonicTime: @escaping @Sendable () -> Double,
                 coarseWallTime: @escaping @Sendable () -> Double) {
        self.wallTime = wallTime
        self.monotonicTime = monotonicTime
        self.coarseWallTime = coarseWallTime
    }

    /// The system's clocks.
    public static let system = MetricClock(
        wallTime: { Sys.wallClock() },
        monotonicTime: { Double(Sys.monotonicNanoseconds()) / 1e9 },
        coarseWallTime: { Sys.coarseWallClock() })
}

/// Where metric values live: in this process's memory, or in per-process files under a
/// multiprocess directory.
///
/// By default (``fromEnvironment``) the choice follows prometheus_client: multiprocess mode
/// when `PROMETHEUS_MULTIPROC_DIR` (or the deprecated `prometheus_multiproc_dir`) is set.
/// Tests use ``multiprocess(directory:identity:reporter:)`` explicitly instead of the
/// environment.
///
/// Problems the storage and its metrics work around (a series that cannot be stored, `remove`
/// in multiprocess mode) go to its ``ProblemReporter``.
public final class MetricStorage: Sendable {
    /// The per-process file store, in multiprocess mode.
    package let store: ProcessStore?
    /// Where this storage and the metrics over it report problems.
    let reporter: ProblemReporter
    private let failures = Atomic<Int>(0)

    /// How many series could not be given a slot in a file (disk full, permissions) and count
    /// in this process's memory only.
    public var failedSeriesCount: Int { failures.load(ordering: .relaxed) }

    private init(store: ProcessStore?, reporter: ProblemReporter) {
        self.store = store
        self.reporter = reporter
    }

    /// Whether values are written into a multiprocess directory.
    public var isMultiprocess: Bool { store != nil }

    /// Values in this process's memory only.
    public static let inProcess = MetricStorage(store: nil, reporter: .default)

    /// Values in per-process files under `directory`.
    /// - Parameters:
    ///   - directory: the multiprocess directory; it must exist.
    ///   - identity: the process identifier used in file names (the pid by default).
    ///   - reporter: where problems go, such as a series that cannot be stored because the
    ///     disk is full; the process-wide reporter by default.
    /// - Throws: `SystemError` when the directory is missing or not a directory.
    public static func multiprocess(
        directory: String, identity: ProcessIdentity = .processID, reporter: ProblemReporter = .default
    ) throws(SystemError) -> MetricStorage {
        MetricStorage(store: try ProcessStore(directory: directory, identity: identity), reporter: reporter)
    }

    /// The storage chosen from the environment, decided once per process.
    ///
    /// Multiprocess when `PROMETHEUS_MULTIPROC_DIR` is set; the deprecated lowercase
    /// `prometheus_multiproc_dir` works too, with a warning to ``ProblemReporter/default``.
    /// A directory that cannot be used is reported there too, and values stay in memory.
    public static let fromEnvironment: MetricStorage = {
        let reporter = ProblemReporter.default
        guard let directory = environmentDirectory(lookup: { Sys.environment($0) }, reporter: reporter) else {
            return .inProcess
        }
        do {
            return try multiprocess(directory: directory, reporter: reporter)
        } catch {
            reporter.report(Problem(
                code: "unusable_directory",
                message: "PROMETHEUS_MULTIPROC_DIR unusable, metrics stay in memory: \(error)", error: error))
            return .inProcess
        }
    }()

    /// The multiprocess directory named by the environment, if any.
    ///
    /// `PROMETHEUS_MULTIPROC_DIR`, or else the deprecated `prometheus_multiproc_dir`, whose use
    /// is reported to ``ProblemReporter/default``.
    package static func environmentDirectory() -> String? {
        environmentDirectory(lookup: { Sys.environment($0) }, reporter: .default)
    }

    /// ``environmentDirectory()`` with the environment and the reporter given, so that tests
    /// change neither.
    package static func environmentDirectory(lookup: (String) -> String?, reporter: ProblemReporter) -> String? {
        if let d = lookup("PROMETHEUS_MULTIPROC_DIR") { return d }
        if let d = lookup("prometheus_multiproc_dir") {
            reporter.report(Problem(
                code: "deprecated_environment_variable",
                message: "prometheus_multiproc_dir is deprecated, use PROMETHEUS_MULTIPROC_DIR instead"))
            return d
        }
        return nil
    }

    /// The entries of a native-histogram series in this process's `native_<pid>.pmh`, or nil
    /// in single-process mode, or when the file cannot take it (the failure is reported and
    /// counted, and the series counts in memory only).
    func nativeStorage(key: SeriesKey) -> NativeSeriesStorage? {
        guard let store else { return nil }
        do {
            return try NativeSeriesStorage(store: store, key: key)
        } catch {
            reportNativeFailure(error, series: key.family)
            return nil
        }
    }

    /// Reports that a native-histogram count of `series` could not be given a place in the
    /// file and counts in memory only.
    func reportNativeFailure(_ error: SystemError, series: String) {
        failures.add(1, ordering: .relaxed)
        reporter.report(Problem(
            code: "series_not_stored",
            message: "cannot store native histogram buckets of \(series) in \(store?.directory ?? "memory"): \(error); counting in memory only",
            error: error))
    }

    /// Reports that an exemplar of `series` could not be given a record in the exemplar file
    /// (disk full, permissions) and was dropped.
    func reportExemplarFailure(_ error: SystemError, series: String) {
        failures.add(1, ordering: .relaxed)
        reporter.report(Problem(
            code: "exemplar_not_stored",
            message: "cannot store an exemplar of \(series) in \(store?.directory ?? "memory"): \(error); exemplar dropped",
            error: error))
    }

    /// A handle for one series: a slot in this process's file of `kind`, or private memory.
    ///
    /// When the file cannot take the series (disk full, permissions), the series counts in
    /// memory only; the failure is reported and counted in ``failedSeriesCount``.
    /// Records in the process's metadata file that the gauge family `family` (as named in the
    /// files' keys) is an Info or an Enum, so that a collector can type it in OpenMetrics. A
    /// failure is reported and counted; the values are stored all the same.
    func recordFamilyType(_ family: String, as type: MetadataFile.FamilyType) {
        guard let store else { return }
        do {
            try store.recordMetadata(key: MetadataFile.typeKey(family: family, type: type))
        } catch {
            reporter.report(Problem(
                code: "metadata_not_stored",
                message: "cannot record the type of \(family) in \(store.directory): \(error); it is exported as a gauge",
                error: error))
        }
    }

    /// Records in the process's metadata file when this process created the series `labels`
    /// of the counter, histogram or summary `family`, unless an earlier time is there (a
    /// restarted process of the same pid continues its old file). The merge exports the
    /// earliest across processes as `_created` in OpenMetrics. A failure is reported
    /// (`metadata_not_stored`); the values are stored all the same.
    func recordCreated(family: String, labels: [Label], clock: MetricClock) {
        guard let store else { return }
        do {
            let handle = try store.metadataHandle(key: MetadataFile.createdKey(family: family, labels: labels))
            if handle.value == 0 { handle.set(clock.wallTime()) }
        } catch {
            reporter.report(Problem(
                code: "metadata_not_stored",
                message: "cannot record when \(family) was created in \(store.directory): \(error); it has no _created",
                error: error))
        }
    }

    func handle(kind: FileKind, key: SeriesKey) -> SeriesHandle {
        guard let store else { return SeriesHandle() }
        do {
            return try store.series(kind: kind, key: key)
        } catch {
            failures.add(1, ordering: .relaxed)
            reporter.report(Problem(
                code: "series_not_stored",
                message: "cannot store series \(key.sample) in \(store.directory): \(error); counting in memory only",
                error: error))
            return SeriesHandle()
        }
    }
}
