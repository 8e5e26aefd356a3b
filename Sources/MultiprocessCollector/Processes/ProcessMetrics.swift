import MmapStore
import PromMetrics
import SystemCalls

/// prometheus_client's `ProcessCollector` (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`,
/// `process_max_fds`, `process_start_time_seconds`: the same names, types, help texts and
/// arithmetic), for one process or for every live worker of a multiprocess directory.
///
/// Everything comes from `/proc`, as in prometheus_client: `/proc/<pid>/stat` (utime + stime
/// in clock ticks, the start time in ticks after boot, vsize, rss in pages), `/proc/stat`'s
/// `btime` (read once, as prometheus_client does), the soft limit of `Max open files` in
/// `/proc/<pid>/limits`, and the entries of `/proc/<pid>/fd`.
///
/// In single-process mode the families describe this process, without labels: the output of
/// prometheus_client's default registry. In multiprocess mode every series carries a `pid`
/// label, one series per live worker (``LiveProcesses``) and one for the serving process: the
/// server is one more process among them, and when it writes metrics itself (a handler
/// embedded in a worker) it must appear once, not once unlabelled and once as a worker, or a
/// `sum()` counts it twice.
package struct ProcessMetrics: Sendable {
    /// Where `/proc` is mounted (tests give a fake tree).
    package let procRoot: String
    private let bootTime: Double
    private let ticks: Double
    private let pageSize: Double
    /// What the last scrapes found out about prometheus_client's workers.
    private let liveness = LivenessMemo()

    /// What one process's `/proc` entries say. Values prometheus_client would leave out (an
    /// unreadable `fd` directory, another user's process) are nil.
    package struct Reading: Hashable, Sendable {
        package var cpuSeconds: Double
        package var virtualMemoryBytes: Double
        package var residentMemoryBytes: Double
        package var startTimeSeconds: Double
        package var openFDs: Double?
        package var maxFDs: Double?
    }

    /// Prepares to read `procRoot`; nil when `<procRoot>/stat` has no boot time (no `/proc`:
    /// prometheus_client then exports no process metrics either).
    /// - Parameters:
    ///   - procRoot: where `/proc` is mounted.
    ///   - ticks: clock ticks per second (`sysconf(_SC_CLK_TCK)` by default).
    ///   - pageSize: bytes per page (`sysconf(_SC_PAGESIZE)` by default).
    package init?(procRoot: String = "/proc", ticks: Double = Sys.clockTicksPerSecond(), pageSize: Int = Sys.pageSize()) {
        guard let stat = try? Sys.readWholeFile(procRoot + "/stat"),
              let btime = Self.bootTime(inStat: stat), btime > 0
        else { return nil }
        self.procRoot = procRoot
        self.bootTime = btime
        self.ticks = ticks
        self.pageSize = Double(pageSize)
    }

    // MARK: families

    /// This process's families, without labels: prometheus_client's single-process output.
    package func familiesOfThisProcess() -> [MetricFamilySnapshot] {
        guard let reading = read("self") else { return [] }
        return Self.families([(nil, reading)])
    }

    /// The families of the live workers of a directory listing and of this process, each
    /// series labelled with its `pid`.
    /// - Parameters:
    ///   - listedPaths: the paths of the directory's metric files (a collection's listing).
    ///   - serverPID: this process's pid, which labels its series.
    package func familiesOfLiveWorkers(listedPaths: [String], serverPID: Int32 = Sys.getpid()) -> [MetricFamilySnapshot] {
        var readings: [(String?, Reading)] = []
        var pids = LiveProcesses.pids(inListing: listedPaths, procRoot: procRoot, memo: liveness)
        if !pids.contains(serverPID) { pids.append(serverPID) }
        var labels = pids.map { String($0) }
        labels.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        for label in labels {
            // A worker that exited since the listing is skipped, as are its files' series.
            if let reading = read(label == String(serverPID) ? "self" : label) { readings.append((label, reading)) }
        }
        return Self.families(readings)
    }

    /// The six families for these readings, each labelled with its `pid` when a label is
    /// given; families with no sample are left out.
    package static func families(_ readings: [(pid: String?, reading: Reading)]) -> [MetricFamilySnapshot] {
        func samples(_ name: String, _ value: (Reading) -> Double?) -> [Sample] {
            readings.compactMap { pid, reading in
                value(reading).map { Sample(name: name, labels: pid.map { [Label("pid", $0)] } ?? [], value: $0) }
            }
        }
        func gauge(_ name: String, _ help: String, _ value: (Reading) -> Double?) -> MetricFamilySnapshot {
            MetricFamilySnapshot(name: name, kind: .gauge, help: help, samples: samples(name, value))
        }
        let all = [
            MetricFamilySnapshot(name: "process_cpu_seconds", kind: .counter,
                                 help: "Total user and system CPU time spent in seconds.",
                                 samples: samples("process_cpu_seconds_total", \.cpuSeconds)),
            gauge("process_max_fds", "Maximum number of open file descriptors.", \.maxFDs),
            gauge("process_open_fds", "Number of open file descriptors.", \.openFDs),
            gauge("process_resident_memory_bytes", "Resident memory size in bytes.", \.residentMemoryBytes),
            gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", \.startTimeSeconds),
            gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", \.virtualMemoryBytes),
        ]
        return all.filter { !$0.samples.isEmpty }
    }

    // MARK: reading /proc

    /// Reads `/proc/<process>` (`process` is a pid or `self`); nil when the process is gone
    /// (it exited since it was found live) or its `stat` cannot be read.
    package func read(_ process: String) -> Reading? {
        let dir = procRoot + "/" + process
        guard let stat = try? Sys.readWholeFile(dir + "/stat"), let fields = Self.statFields(stat) else { return nil }
        // prometheus_client's arithmetic, operation for operation, so the values are equal to the bit.
        var reading = Reading(
            cpuSeconds: fields.utime / ticks + fields.stime / ticks,
            virtualMemoryBytes: fields.vsize,
            residentMemoryBytes: fields.rss * pageSize,
            startTimeSeconds: fields.starttime / ticks + bootTime)
        // A value that cannot be read (another user's `fd` directory) is left out, as
        // prometheus_client does; a process that exited while it was read is left out whole.
        switch Self.optional({ () throws(SystemError) in Self.maxOpenFiles(inLimits: try Sys.readWholeFile(dir + "/limits")) }) {
        case .gone: return nil
        case .value(let v): reading.maxFDs = v
        }
        switch Self.optional({ () throws(SystemError) in Double(try Sys.countDirectoryEntries(dir + "/fd")) }) {
        case .gone: return nil
        case .value(let v): reading.openFDs = v
        }
        return reading
    }

    private enum Outcome {
        case value(Double?)
        case gone
    }

    /// Reads one value: the value, nil when unreadable, or `gone` when the process exited.
    private static func optional(_ body: () throws(SystemError) -> Double?) -> Outcome {
        do {
            return .value(try body())
        } catch {
            return error.errno == .noEntry || error.errno == .noSuchProcess ? .gone : .value(nil)
        }
    }

    /// `btime` of `/proc/stat`: the boot time in UNIX seconds.
    static func bootTime(inStat text: [UInt8]) -> Double? {
        for line in text.split(separator: UInt8(ascii: "\n")) where line.starts(with: "btime ".utf8) {
            let fields = line.split(separator: UInt8(ascii: " "))
            return fields.count > 1 ? Double(String(decoding: fields[1], as: UTF8.self)) : nil
        }
        return nil
    }

    /// The fields prometheus_client reads from `/proc/<pid>/stat` (utime, stime, starttime,
    /// vsize, rss: 14, 15, 22, 23 and 24, counting from 1). The command name (field 2) is in
    /// parentheses and may itself hold spaces and parentheses: the fields are counted from the
    /// last `)`, as prometheus_client does. Scanned in place: this runs for every process on
    /// every scrape.
    static func statFields(_ text: [UInt8]) -> (utime: Double, stime: Double, starttime: Double, vsize: Double, rss: Double)? {
        guard let close = text.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // Indexes after the `)` (0 is the state), as in prometheus_client's `parts`.
        var utime: Double?, stime: Double?, starttime: Double?, vsize: Double?, rss: Double?
        var field = -1, i = close + 1
        while i < text.count && field < 21 {
            while i < text.count && (text[i] == UInt8(ascii: " ") || text[i] == UInt8(ascii: "\n")) { i += 1 }
            guard i < text.count else { break }
            field += 1
            let start = i
            while i < text.count && text[i] != UInt8(ascii: " ") && text[i] != UInt8(ascii: "\n") { i += 1 }
            switch field {
            case 11: utime = unsignedDecimal(text[start..<i])
            case 12: stime = unsignedDecimal(text[start..<i])
            case 19: starttime = unsignedDecimal(text[start..<i])
            case 20: vsize = unsignedDecimal(text[start..<i])
            case 21: rss = unsignedDecimal(text[start..<i])
            default: break
            }
        }
        guard let utime, let stime, let starttime, let vsize, let rss else { return nil }
        return (utime, stime, starttime, vsize, rss)
    }

    /// The soft limit of `Max open files` in `/proc/<pid>/limits` (`unlimited` is +Inf).
    static func maxOpenFiles(inLimits text: [UInt8]) -> Double? {
        for line in text.split(separator: UInt8(ascii: "\n")) where line.starts(with: "Max open file".utf8) {
            let fields = line.split(separator: UInt8(ascii: " "))
            guard fields.count > 3 else { return nil }
            return fields[3].elementsEqual("unlimited".utf8) ? .infinity : unsignedDecimal(fields[3])
        }
        return nil
    }

    /// A field of digits as a `Double`, rounded once as Python's `float()` rounds the same text.
    private static func unsignedDecimal(_ digits: ArraySlice<UInt8>) -> Double? {
        guard !digits.isEmpty, digits.count <= 19 else {
            return digits.isEmpty ? nil : Double(String(decoding: digits, as: UTF8.self))
        }
        var n: UInt64 = 0
        for d in digits {
            guard d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") else { return nil }
            n = n * 10 + UInt64(d - UInt8(ascii: "0"))
        }
        return Double(n)
    }
}
