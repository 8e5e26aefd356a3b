import Foundation
import MmapStore
import MultiprocessCollector
import PromMetrics
import Synchronization
import SystemCalls
import Testing
import TestSupport

/// Native histograms written by real processes (`prom-multiproc-testworker` native modes,
/// Sources/prom-multiproc-testworker/NativeModes.swift): merged across processes, safe across
/// fork, readable whenever a writer is killed, and invisible to prometheus_client.
@Suite(.serialized) struct NativeProcessTests {
    static let family = "native_e2e_seconds"

    func collect(_ dir: TempDirectory) -> CollectResult {
        MultiProcessCollector(directory: dir.path, includeSelfMetrics: false, reporter: ProblemReporter { _ in }).collect()
    }

    func native(_ result: CollectResult, route: String) -> NativeHistogramSnapshot? {
        result.family(Self.family)?.nativeHistograms.first { $0.labels == [Label("route", route)] }
    }

    /// Runs `native-observe` workers at once; returns every value they observed.
    func observe(_ dir: TempDirectory, _ workers: [[String]]) throws -> [Double] {
        try observeInWorkers("native-observe", dir, workers)
    }

    /// The native series one process observing `values` at `schema` and `zeroThreshold` has.
    func reference(_ values: [Double], schema: Int8, zeroThreshold: Double) -> NativeHistogramSnapshot {
        var counts = NativeBucketCounts(schema: schema, zeroThreshold: zeroThreshold)
        for v in values { counts.observe(v) }
        return counts.snapshot(labels: [Label("route", "/a")], sum: values.reduce(0, +))
    }

    /// Four processes: schemas 8, 3 and -1 with zero thresholds 2^-128, 2^-10 and 2^-6, and a
    /// fourth at schema 3 whose bucket limit lowers its resolution. The merge is one
    /// histogram at the lowest schema and the widest zero bucket that observed every value
    /// (the sums are exact: the values are multiples of 1/1024).
    @Test(.timeLimit(.minutes(2)))
    func realProcessesAtDifferentSchemasAndZeroThresholdsMerge() throws {
        let dir = TempDirectory("pmp-native-procs"); defer { dir.remove() }
        let values = try observe(dir, [
            ["1.001", "0x1p-128", "0", "3000", "1", "signed"],
            ["1.1", "0x1p-10", "0", "3000", "2", "signed"],
            ["4", "0x1p-6", "0", "3000", "3", "signed"],
            ["1.1", "0x1p-128", "12", "3000", "4", "signed"],
        ])
        #expect(values.count == 12_000)
        let files = dir.names().filter { $0.hasSuffix(".pmh") }
        #expect(files.count == 4)
        // The limited process's schema, as its file says.
        var reader = MetricFileReader()
        let schemas = try files.map { try NativeHistogramFile.read(path: dir.file($0), reader: &reader).series[0].schema ?? 99 }
        #expect(schemas.filter { $0 != schemas.min() }.sorted() == [-1, 3, 8], "\(schemas)")
        let lowest = try #require(schemas.min())
        #expect(lowest < -1, "the limited process kept schema \(schemas)")
        let result = collect(dir)
        #expect(result.problems.isEmpty, "\(result.problems)")
        let merged = try #require(native(result, route: "/a"))
        #expect(merged.schema == lowest)
        // 2^-6 is a bucket boundary at schema -1 but not necessarily at the lower one: the
        // zero bucket then widens to the next boundary, as the specification merges.
        // (2^-6 is the upper bound of bucket -6 at schema 0.)
        let threshold = NativeHistogramMath.upperBound(index: NativeHistogramMath.reducedIndex(-6, from: 0, to: lowest), schema: lowest)
        #expect(merged.zeroThreshold == threshold)
        #expect(merged == reference(values, schema: lowest, zeroThreshold: threshold))
        #expect(result.family(Self.family)?.value(Self.family + "_sum", ["route": "/a"]) == values.reduce(0, +))
    }

    /// A forked child writes its own native file from zero; the parent's files keep their
    /// bytes; the merge counts both.
    @Test func aForkedChildWritesItsOwnNativeFile() throws {
        let dir = TempDirectory("pmp-native-fork"); defer { dir.remove() }
        let r = try run(executable("prom-multiproc-testworker"), ["native-fork", dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        let parent = try #require(report["parent"] as? Int), child = try #require(report["child"] as? Int)
        #expect(report["childStatus"] as? Int == 0, "the child's store did not take the child's pid")
        #expect(report["parentFilesUnchanged"] as? Bool == true, "the child wrote into the parent's files")
        #expect(dir.names().filter { $0.hasSuffix(".pmh") } == ["native_\(child).pmh", "native_\(parent).pmh"].sorted())
        var reader = MetricFileReader()
        let childSeries = try NativeHistogramFile.read(path: dir.file("native_\(child).pmh"), reader: &reader).series
        #expect(childSeries.count == 1 && childSeries[0].schema == 0)
        #expect(childSeries[0].buckets.map(\.count).reduce(0, +) == 3)
        // Parent: 1.5, 3, then 6; child: 1.5, 100, -2. Schema 0: (1, 2] is 1, (2, 4] is 2,
        // (4, 8] is 3, (64, 128] is 7.
        let merged = try #require(collect(dir).family(Self.family)?.nativeHistograms.first { $0.labels == [Label("route", "/fork")] })
        #expect(merged.count == 6 && merged.sum == 110)
        #expect(merged.positiveBuckets == [.init(index: 1, count: 2), .init(index: 2, count: 1), .init(index: 3, count: 1),
                                           .init(index: 7, count: 1)])
        #expect(merged.negativeBuckets == [.init(index: 1, count: 1)])
    }

    /// Writers appending buckets (two at schema 8 with no limit, one that keeps halving its
    /// resolution) are SIGKILLed at random moments and replaced, while the directory is
    /// collected again and again: every file stays readable, the merged histogram never goes
    /// down (its schema only falls, and brought to the new schema no count is lower), and at
    /// the end it holds what the writers reported, give or take the batch each was in.
    @Test(.timeLimit(.minutes(5)))
    func writersKilledWhileAppendingBucketsLeaveReadableFilesAndCountsNeverDecrease() throws {
        let dir = TempDirectory("pmp-native-kill"); defer { dir.remove() }
        let configs: [(factor: String, limit: String)] = [("1.001", "0"), ("1.001", "0"), ("1.1", "50")]
        var seed = 100
        func start(_ i: Int) throws -> NativeLoopWorker {
            seed += 1
            return try NativeLoopWorker(dir, factor: configs[i % 3].factor, limit: configs[i % 3].limit, seed: seed)
        }
        var workers = try (0..<3).map(start)
        var done: [NativeLoopWorker] = []
        var previous: NativeHistogramSnapshot?
        var rounds = 0
        var kills = 0
        func check() throws {
            let result = collect(dir)
            #expect(result.problems.isEmpty, "\(result.problems)")
            let now = try #require(native(result, route: "/loop"))
            if let previous { #expect(Self.notBelow(previous, now), "went down: \(previous) then \(now)") }
            previous = now
        }
        // 12 s, or longer (up to 60 s) until at least 3 kills and 6 collections happened: under
        // the thread sanitizer a collection takes seconds, and 12 s saw only 4 and 1 kill.
        let deadline = Date().addingTimeInterval(12), hardDeadline = Date().addingTimeInterval(60)
        while Date() < deadline || ((kills < 3 || rounds < 6) && Date() < hardDeadline) {
            usleep(UInt32.random(in: 20_000...200_000))
            if Bool.random() || kills * 2 < rounds {
                let i = Int.random(in: 0..<workers.count)
                workers[i].kill()
                done.append(workers[i])
                kills += 1
                workers[i] = try start(i)
            }
            try check()
            rounds += 1
        }
        for w in workers { w.kill() }
        done += workers
        try check()
        let final = try #require(previous)
        let reported = done.map(\.lastTotal).reduce(0, +)
        #expect(final.count >= Double(reported) && final.count <= Double(reported + done.count * NativeLoopWorker.batch),
                "count \(final.count), writers reported \(reported)")
        #expect(kills >= 3 && rounds >= 6, "kills \(kills), rounds \(rounds)")
        print("native kill test: \(rounds) collections, \(kills) writers killed, \(Int(final.count)) observations, schema \(final.schema)")
        var reader = MetricFileReader()
        for name in dir.names() where name.hasSuffix(".pmh") {
            #expect(throws: Never.self) { _ = try NativeHistogramFile.read(path: dir.file(name), reader: &reader) }
        }
    }

    /// Whether every count of `later` is at least the same count of `earlier` brought to
    /// `later`'s schema and zero bucket (neither of which ever goes back).
    static func notBelow(_ earlier: NativeHistogramSnapshot, _ later: NativeHistogramSnapshot) -> Bool {
        guard later.schema <= earlier.schema, later.zeroThreshold >= earlier.zeroThreshold, later.count >= earlier.count else { return false }
        var e = NativeBucketCounts(schema: earlier.schema, zeroThreshold: earlier.zeroThreshold)
        e.zeroCount = earlier.zeroCount
        for b in earlier.positiveBuckets { e.positive[b.index] = b.count }
        for b in earlier.negativeBuckets { e.negative[b.index] = b.count }
        e.reduce(toSchema: later.schema)
        e.widenZeroBucket(to: later.zeroThreshold)
        let positive = Dictionary(uniqueKeysWithValues: later.positiveBuckets.map { ($0.index, $0.count) })
        let negative = Dictionary(uniqueKeysWithValues: later.negativeBuckets.map { ($0.index, $0.count) })
        return e.zeroCount <= later.zeroCount
            && e.positive.allSatisfy { $0.value <= positive[$0.key] ?? 0 }
            && e.negative.allSatisfy { $0.value <= negative[$0.key] ?? 0 }
    }

    /// prometheus_client's MultiProcessCollector reads a directory where Swift workers wrote
    /// classic and native buckets and a Python worker wrote classic ones: no error, and the
    /// same result with or without the native files, equal to our collector's classic part.
    @Test(.timeLimit(.minutes(2)))
    func prometheusClientReadsAMixedDirectoryAndIgnoresNativeFiles() throws {
        let dir = TempDirectory("pmp-native-python"); defer { dir.remove() }
        let swiftValues = try observe(dir, [["1.1", "0x1p-128", "0", "500", "7", "signed"], ["2", "0x1p-128", "0", "500", "8"]])
        let pythonValues = [0.05, 0.5, 5, 50, -1]
        try pythonWrite(dir.path, pid: "py1", pythonValues.map {
            PyOp(type: "histogram", name: Self.family, help: "Native histogram end to end.", labelnames: ["route"], labels: ["/a"],
                 op: "observe", amount: $0, buckets: [0.1, 1, 10])
        } + [PyOp(type: "counter", name: "py_jobs", labelnames: [], labels: [], op: "inc", amount: 3)])
        #expect(dir.names().filter { $0.hasSuffix(".pmh") }.count == 2)

        let python = try pythonCollect(dir.path)
        let text = try runPython("collect.py", [dir.path, "--text", "--glob-order"])
        #expect(text.status == 0, "prometheus_client's own glob order failed: \(text.stderr)")
        let ours = collect(dir)
        #expect(ours.problems.isEmpty)
        #expect(flatten(ours.families) == python)
        let family = try #require(ours.family(Self.family))
        #expect(family.value(Self.family + "_count", ["route": "/a"]) == Double(swiftValues.count + pythonValues.count))
        // The native part holds the Swift workers' observations (prometheus_client has none).
        #expect(family.nativeHistograms.first?.count == Double(swiftValues.count))

        let classicOnly = TempDirectory("pmp-native-python-classic"); defer { classicOnly.remove() }
        for name in dir.names() where name.hasSuffix(".db") {
            try FileManager.default.copyItem(atPath: dir.file(name), toPath: classicOnly.file(name))
        }
        #expect(try pythonCollect(classicOnly.path) == python)
    }
}

/// A `native-loop` worker: started, ready, its output drained in the background so that it
/// never blocks on a full pipe.
final class NativeLoopWorker: @unchecked Sendable {
    static let batch = 200
    let process: Process
    private let output = Pipe()
    // Locked, not Mutex: the thread sanitizer cannot see Synchronization.Mutex (see Locked).
    private let state = Locked((text: "", total: 0, ended: false))
    private let drained = DispatchSemaphore(value: 0)

    init(_ dir: TempDirectory, factor: String, limit: String, seed: Int) throws {
        process = try launch(executable("prom-multiproc-testworker"),
                             ["native-loop", dir.path, factor, limit, String(seed), String(Self.batch), "500"], stdout: output)
        let handle = output.fileHandleForReading
        DispatchQueue.global().async { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                state.withLock { s in
                    s.text += String(decoding: chunk, as: UTF8.self)
                    // Keep only the last line that may be incomplete; remember the last total.
                    var lines = s.text.split(separator: "\n", omittingEmptySubsequences: false)
                    let rest = lines.removeLast()
                    if let last = lines.last(where: { $0.hasPrefix("total ") }), let t = Int(last.dropFirst(6)) { s.total = t }
                    s.text = String(rest)
                }
            }
            state.withLock { $0.ended = true }
            drained.signal()
        }
        let deadline = Date().addingTimeInterval(20)
        while state.withLock({ $0.total }) == 0 && Date() < deadline && process.isRunning { usleep(5_000) }
        guard state.withLock({ $0.total }) > 0 else {
            process.terminate()
            throw WorkerNotReady(output: state.withLock { $0.text })
        }
    }

    /// The last `total` the worker printed; final once it was killed.
    var lastTotal: Int { state.withLock { $0.total } }

    /// SIGKILL (once); waits until the process is gone and its output is read to the end.
    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        drained.wait()
    }
}

struct WorkerNotReady: Error, CustomStringConvertible {
    var output: String
    var description: String { "worker did not get ready: \(output)" }
}

/// A child process whose output is captured; `finish()` waits for it.
struct CapturedChild {
    let process: Process
    let out: Pipe, err: Pipe
    let outData: BackgroundReader, errData: BackgroundReader

    /// Waits for the child: its exit status (128 + signal when killed) and its output.
    func finish() throws -> (status: Int32, stdout: String, stderr: String) {
        process.waitUntilExit()
        let signaled = process.terminationReason == .uncaughtSignal
        return (signaled ? 128 + process.terminationStatus : process.terminationStatus, outData.text(), errData.text())
    }
}

/// Output read in the background until the end of the stream.
final class BackgroundReader: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var data = Data()

    init(_ pipe: Pipe) {
        DispatchQueue.global().async { [self] in
            data = pipe.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
    }

    func text() -> String {
        done.wait()
        done.signal()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Starts `path` with `arguments`, capturing its output, without waiting for it.
func launchCapturing(_ path: String, _ arguments: [String]) throws -> CapturedChild {
    let out = Pipe(), err = Pipe()
    let p = try launch(path, arguments, stdout: out, stderr: err)
    return CapturedChild(process: p, out: out, err: err, outData: BackgroundReader(out), errData: BackgroundReader(err))
}
