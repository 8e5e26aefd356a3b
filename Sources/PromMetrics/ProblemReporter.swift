// Where the libraries send the problems they work around (design decision 14: libraries do
// not print). One shape for every library of the package: a value wrapping a function of a
// `Problem`, standard error by default, replaceable once per process or per object.
import SystemCalls

/// A problem a library of this package met and worked around instead of failing: a metric
/// file skipped by a collection, a series kept in memory because its file could not grow, a
/// deprecated environment variable.
///
/// Problems are not thrown: the call that met one goes on. They go to a ``ProblemReporter``,
/// which writes them to standard error unless the application gives another.
///
/// The codes in use:
///
/// | ``code`` | what happened | ``error`` |
/// | --- | --- | --- |
/// | `deprecated_environment_variable` | `prometheus_multiproc_dir` (lowercase) names the directory | none |
/// | `unusable_directory` | the environment's multiprocess directory cannot be used; values stay in memory | `SystemError` |
/// | `series_not_stored` | a series got no slot in its file (disk full, permissions); it counts in memory only | `SystemError` |
/// | `metadata_not_stored` | an Info or Enum type, or a series' creation time, could not be written to the metadata file; the values are stored, the family stays a gauge or has no `_created` | `SystemError` |
/// | `no_effect_in_multiprocess_mode` | `remove` or `clear` on a metric whose values live in files | none |
/// | `skipped_metric_file` | a collection skipped a damaged or unreadable file | `MetricFileError` |
/// | `http_server_stopped` | the HTTP server's event loop failed and stopped | `SystemError` |
public struct Problem: Sendable, CustomStringConvertible {
    /// A stable, machine-readable name of the kind of problem, such as `series_not_stored`:
    /// for counting or filtering problems. New codes may be added.
    public var code: String
    /// What happened, in one line, naming the file or directory concerned, such as
    /// `skipping metric file /run/metrics/counter_12.db: file is empty (0 bytes)`.
    public var message: String
    /// The error behind the problem, if there is one (a `SystemError`, a `MetricFileError`).
    public var error: (any Error & Sendable)?

    /// Creates a problem.
    /// - Parameters:
    ///   - code: the kind of problem, in `snake_case`.
    ///   - message: what happened, in one line.
    ///   - error: the error behind it, if any.
    package init(code: String, message: String, error: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.error = error
    }

    /// The ``message``.
    public var description: String { message }
}

/// Where problems that a library of this package works around are sent: a function of a
/// ``Problem``.
///
/// Libraries never print. Every object that can meet a problem (a ``MetricStorage``, and so
/// every metric of a ``Registry`` over it; a `MultiProcessCollector`; the HTTP server) sends
/// it to a reporter, by default ``default``, which forwards to the reporter the application
/// set once at start-up with ``bootstrap(_:)``, and writes to standard error until then.
///
/// Set the process-wide reporter first thing in `main`, as with swift-log's
/// `LoggingSystem.bootstrap`:
///
/// ```swift
/// ProblemReporter.bootstrap(ProblemReporter { problem in
///     logger.warning("\(problem.message)", metadata: ["code": "\(problem.code)"])
/// })
/// ```
///
/// Or give one object its own reporter, as tests do, so that nothing global changes:
///
/// ```swift
/// let seen = ProblemReporter { problem in record(problem) }
/// let registry = Registry(storage: try .multiprocess(directory: dir, reporter: seen))
/// ```
///
/// Implementation requirements: the function may be called from any thread, concurrently, and
/// while the library holds no lock of its own; it should return quickly and must not call
/// back into the object that reported.
public struct ProblemReporter: Sendable {
    private let body: @Sendable (Problem) -> Void

    /// Creates a reporter that calls `report` with each problem.
    /// - Parameter report: called once per problem, from any thread.
    public init(_ report: @escaping @Sendable (Problem) -> Void) {
        body = report
    }

    /// Reports `problem`.
    /// - Parameter problem: what happened.
    public func report(_ problem: Problem) {
        body(problem)
    }

    /// Writes `prom-multiproc: <message>` and a newline to standard error.
    public static let standardError = ProblemReporter { problem in
        Sys.writeStandardError("prom-multiproc: \(problem.message)\n")
    }

    /// The process-wide reporter: forwards each problem to the reporter given to
    /// ``bootstrap(_:)``, or to ``standardError`` before that (or without it).
    ///
    /// It looks the bootstrapped reporter up on every problem, so objects made before
    /// ``bootstrap(_:)`` follow it too; problems reported before it went to standard error.
    public static let `default` = ProblemReporter { problem in
        processReporter.withLock { $0.reporter }.report(problem)
    }

    /// Sets the reporter that ``default`` forwards to, for the rest of the process.
    ///
    /// Call it once, at start-up, before metrics are created (the environment's multiprocess
    /// directory is checked when ``Registry/default`` is first used, and its problems are
    /// reported then).
    /// - Parameter reporter: the application's reporter; it must not be ``default`` itself.
    /// - Precondition: not called before in this process (a programming error, as for
    ///   swift-log's bootstrap: two parts of a program would each believe they own the
    ///   reporting).
    public static func bootstrap(_ reporter: ProblemReporter) {
        let first = processReporter.withLock { state in
            if state.bootstrapped { return false }
            state = (reporter, true)
            return true
        }
        precondition(first, "ProblemReporter.bootstrap(_:) can only be called once per process")
    }
}

/// The reporter ``ProblemReporter/default`` forwards to, and whether it was bootstrapped.
private let processReporter = Locked<(reporter: ProblemReporter, bootstrapped: Bool)>((.standardError, false))
